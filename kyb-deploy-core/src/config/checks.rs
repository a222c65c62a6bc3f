//! The checks every key goes through, core's and target backends' alike ([`Problems`]):
//! ports, durations, counts, URLs, names and files, each problem worded `key: what is
//! wrong; the fix`.

use std::path::Path;
use std::time::Duration;

use url::Url;

use super::duration::MAX_TEXT;

/// Problems found in settings, each `key: what is wrong; the fix`. Target backends check
/// their own settings with it ([`crate::TargetBackend::validate`]), with the same rules and
/// words core uses for its keys.
///
/// ```
/// use std::time::Duration;
/// use kyb_deploy_core::config::Problems;
///
/// let mut problems = Problems::default();
/// problems.port("environments.dev.local.port", 0);
/// problems.url("environments.dev.local.endpoint", "ftp://example.com");
/// problems.positive("environments.dev.local.poll", Duration::ZERO);
/// assert_eq!(problems.len(), 3);
/// assert!(problems.as_slice()[0].starts_with("environments.dev.local.port: 0 is not a port"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problems(Vec<String>);

impl Problems {
    /// Adds a problem, worded `key: what is wrong; the fix`.
    pub fn push(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    /// A port must not be 0.
    pub fn port(&mut self, key: &str, value: u16) {
        port(key, value, &mut self.0);
    }

    /// A duration must be longer than zero.
    pub fn positive(&mut self, key: &str, value: Duration) {
        positive(key, value, &mut self.0);
    }

    /// A count must be at most `max`.
    pub fn at_most(&mut self, key: &str, value: u32, max: u32) {
        at_most(key, value, max, &mut self.0);
    }

    /// Text a process receives must hold no NUL character.
    pub fn no_nul(&mut self, key: &str, value: &str) {
        no_nul(key, value, &mut self.0);
    }

    /// An `http://` or `https://` URL with a host, shown in the message.
    pub fn url(&mut self, key: &str, value: &str) {
        match Url::parse(value) {
            Ok(url) => http_url(key, &url, true, &mut self.0),
            Err(e) => self.0.push(format!(
                "{key}: {value:?} is not a URL ({e}); write one like \"https://api.example.com\""
            )),
        }
    }

    /// A portable environment variable name (letters, digits and `_`, not starting with a
    /// digit); `what` says what the name is for.
    pub fn env_name(&mut self, key: &str, name: &str, what: &str) {
        if !valid_env_name(name) {
            self.0.push(format!(
                "{key}: {name:?} is not an environment variable name; use letters, digits and '_', not starting with a digit, {what}"
            ));
        }
    }

    /// A file the settings name: it must exist, be a file (not a directory) and hold UTF-8
    /// text. `written` is the path as written, read relative to `base`; `what` names the file
    /// for the messages (`template`) and `fix` says how to make one.
    pub fn text_file(&mut self, key: &str, written: &Path, base: &Path, what: &str, fix: &str) {
        text_file(key, written, base, what, fix, &mut self.0);
    }

    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems, in the order found.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The problems, in the order found.
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// A file the settings name, read relative to `base`: it must exist, be a file and hold
/// UTF-8 text.
pub(super) fn text_file(
    key: &str,
    written: &Path,
    base: &Path,
    what: &str,
    fix: &str,
    problems: &mut Vec<String>,
) {
    let shown = written.display();
    if written.as_os_str().is_empty() {
        problems.push(format!("{key}: must not be empty; name the {what} file"));
        return;
    }
    let path = base.join(written);
    let problem = match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "{key}: {what} {shown} does not exist; {fix}, or fix the path, which is relative to the configuration file"
        )),
        Err(e) => Some(format!(
            "{key}: {what} {shown} cannot be read ({e}); fix its permissions or the path"
        )),
        Ok(m) if m.is_dir() => Some(format!(
            "{key}: {shown} is a directory; name the {what} file in it"
        )),
        Ok(_) => match std::fs::read(&path) {
            Err(e) => Some(format!(
                "{key}: {what} {shown} cannot be read ({e}); fix its permissions or the path"
            )),
            Ok(bytes) if std::str::from_utf8(&bytes).is_err() => Some(format!(
                "{key}: {what} {shown} is not UTF-8 text; save it as UTF-8"
            )),
            Ok(_) => None,
        },
    };
    problems.extend(problem);
}

/// An `http://` or `https://` URL with a host. `show` says whether the URL may be shown
/// (a webhook's may not: it is a secret).
pub(super) fn http_url(key: &str, url: &Url, show: bool, problems: &mut Vec<String>) {
    let what = if show {
        format!("{:?}", url.as_str())
    } else {
        "the URL".to_owned()
    };
    if !matches!(url.scheme(), "http" | "https") {
        problems.push(format!(
            "{key}: {what} has the scheme {:?}; use an http:// or https:// URL",
            url.scheme()
        ));
    } else if url.host_str().is_none_or(str::is_empty) {
        problems.push(format!(
            "{key}: {what} has no host; write it like \"https://api.example.com\""
        ));
    }
}

/// A duration that must be longer than zero.
pub(super) fn positive(key: &str, value: Duration, problems: &mut Vec<String>) {
    if value.is_zero() {
        problems.push(format!(
            "{key}: must be longer than 0s (and at most {MAX_TEXT}); write a duration like \"30s\""
        ));
    }
}

pub(super) fn port(key: &str, value: u16, problems: &mut Vec<String>) {
    if value == 0 {
        problems.push(format!("{key}: 0 is not a port; use 1-65535"));
    }
}

pub(super) fn at_most(key: &str, value: u32, max: u32, problems: &mut Vec<String>) {
    if value > max {
        problems.push(format!(
            "{key}: {value} is more than {max}; use at most {max}"
        ));
    }
}

pub(super) fn no_nul(key: &str, value: &str, problems: &mut Vec<String>) {
    if value.contains('\0') {
        problems.push(format!(
            "{key}: contains a NUL character, which no process can receive; remove it"
        ));
    }
}

/// A portable environment variable name: letters, digits and `_`, not starting with a digit.
pub(super) fn valid_env_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
