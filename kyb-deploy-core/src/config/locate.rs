//! Where a problem's key was set: the line of the file, or the environment variables.

use figment::Figment;

/// Where the configuration came from, to say where each problem is.
pub(super) struct Origin<'a> {
    /// The file, as shown in messages.
    pub(super) file: String,
    /// Its text, for line numbers.
    pub(super) text: Option<&'a str>,
    /// The merged layers, to tell a value of the file from one of a variable.
    pub(super) figment: Option<&'a Figment>,
}

impl Origin<'_> {
    /// `problems` (each `key: what is wrong; the fix`) as one message, each problem followed
    /// by where it is: `(in kyb-deploy.toml, line 12)` or `(in `KYB_DEPLOY_` environment
    /// variable(s))`.
    pub(super) fn describe(&self, problems: &[String]) -> String {
        problems
            .iter()
            .map(|problem| {
                let key = problem.split_once(": ").map_or("", |(key, _)| key);
                format!("{problem} ({})", self.place(key))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Where `key` was set, as `in <file>[, line N]` or `in <variables>`.
    pub(super) fn place(&self, key: &str) -> String {
        let from_variable = self
            .figment
            .filter(|_| !key.is_empty())
            .and_then(|figment| figment.find_metadata(key))
            .filter(|metadata| metadata.name == super::overrides::METADATA_NAME);
        if let Some(metadata) = from_variable {
            return format!("in {}", metadata.name);
        }
        match self.text.and_then(|text| line_of(text, key)) {
            Some(line) => format!("in {}, line {line}", self.file),
            None => format!("in {}", self.file),
        }
    }
}

/// The line (1-based) of TOML `text` where `key` (a dotted path like
/// `environments.staging.timeouts.overall`) is set; failing that, the line of its nearest
/// enclosing table or key that the text names. `None` when the text names none of it.
///
/// A line scan rather than a parser with spans: it understands table headers, dotted and
/// quoted keys and multi-line strings, which is how configuration files are written; a key
/// inside an inline table is found through the key of that table.
pub(super) fn line_of(text: &str, key: &str) -> Option<usize> {
    // `verify.smoke[1] ("classify").method`: the key path ends at the array of tables, and
    // the index picks its entry.
    let mut wanted: Vec<&str> = Vec::new();
    let mut index: Option<usize> = None;
    for part in key.split('.') {
        if let Some((name, rest)) = part.split_once('[') {
            wanted.push(name);
            index = rest.split(']').next().and_then(|i| i.parse().ok());
            break;
        }
        if part.is_empty() || part.contains([' ', '(']) {
            break;
        }
        wanted.push(part);
    }
    let mut entries: Vec<(Vec<String>, usize)> = Vec::new();
    let mut table: Vec<String> = Vec::new();
    let mut in_multiline: Option<&str> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(quote) = in_multiline {
            if line.matches(quote).count() % 2 == 1 {
                in_multiline = None;
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_start_matches('[');
            let end = header.find(']').unwrap_or(header.len());
            table = split_key(&header[..end]);
            entries.push((table.clone(), index + 1));
            continue;
        }
        let Some(eq) = find_unquoted(line, '=') else {
            continue;
        };
        let mut path = table.clone();
        path.extend(split_key(&line[..eq]));
        entries.push((path, index + 1));
        let value = &line[eq + 1..];
        for quote in ["\"\"\"", "'''"] {
            if value.matches(quote).count() % 2 == 1 {
                in_multiline = Some(quote);
            }
        }
    }
    (1..=wanted.len()).rev().find_map(|n| {
        let nth = if n == wanted.len() {
            index.unwrap_or(0)
        } else {
            0
        };
        entries
            .iter()
            .filter(|(path, _)| path.len() == n && path.iter().zip(&wanted).all(|(a, b)| a == b))
            .nth(nth)
            .map(|(_, line)| *line)
    })
}

/// The parts of a TOML key: `a."b.c".d` gives `a`, `b.c`, `d`.
fn split_key(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, '.') => parts.push(std::mem::take(&mut current).trim().to_owned()),
            (None, c) => current.push(c),
        }
    }
    parts.push(current.trim().to_owned());
    parts
}

/// The byte offset of the first `c` outside quotes.
fn find_unquoted(line: &str, c: char) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, ch) in line.char_indices() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some(_) => {}
            None if ch == '"' || ch == '\'' => quote = Some(ch),
            None if ch == c => return Some(i),
            None => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# a comment = not a key
[image]
repository = "ghcr.io/acme/api"
tags = [
  "{version}",
]
prebuild = """
x = 1
"""
port = 0

[environments.staging]
target = "ecs"
timeouts = { overall = "0s" }
"quoted.key" = 1

[environments.staging.verify.readiness]
period = "0s"

[[environments.staging.verify.smoke]]
name = "a"

[[environments.staging.verify.smoke]]
name = "b"
"#;

    #[test]
    fn keys_are_found_on_their_line_or_on_their_tables() {
        let cases = [
            ("image.repository", Some(3)),
            ("image.tags", Some(4)),
            // The `x = 1` inside the multi-line string is not a key.
            ("image.x", Some(2)),
            ("image.port", Some(10)),
            ("environments.staging.target", Some(13)),
            // Inside an inline table: the line of the table's key.
            ("environments.staging.timeouts.overall", Some(14)),
            ("environments.staging.quoted.key", Some(12)),
            ("environments.staging.verify.readiness.period", Some(18)),
            ("environments.staging.verify.readiness", Some(17)),
            (
                "environments.staging.verify.smoke[0] (\"a\").method",
                Some(20),
            ),
            (
                "environments.staging.verify.smoke[1] (\"b\").path",
                Some(23),
            ),
            ("environments.production.target", None),
            ("ledger.path", None),
            ("", None),
        ];
        for (key, line) in cases {
            assert_eq!(line_of(TEXT, key), line, "{key}");
        }
    }

    #[test]
    fn problems_name_their_place() {
        let origin = Origin {
            file: "kyb-deploy.toml".into(),
            text: Some(TEXT),
            figment: None,
        };
        assert_eq!(
            origin.describe(&[
                "image.port: must be between 1 and 65535".into(),
                "ledger.path: must not be empty".into(),
            ]),
            "image.port: must be between 1 and 65535 (in kyb-deploy.toml, line 10); \
             ledger.path: must not be empty (in kyb-deploy.toml)"
        );
    }
}
