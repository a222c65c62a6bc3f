//! What serde cannot check: value ranges, cross-field rules, and the URLs, names and files
//! the configuration gives. Each problem is one `key: what is wrong; the fix` string, so
//! that `config validate` refuses what a deployment would otherwise trip on later.

use std::path::Path;

use url::Url;

use super::checks::{at_most, http_url, no_nul, port, positive, valid_env_name};
use super::{Config, EnvironmentConfig, ImageConfig, edit_distance, parse_size};

/// Most consecutive probe results, and smoke-test samples, a setting may ask for.
pub(super) const MAX_COUNT: u32 = 1000;

/// The placeholders of `image.tags` and `image.build_args`.
const PLACEHOLDERS: [&str; 3] = ["version", "commit", "environment"];

/// The checks of the whole file except the environments and `notify.attempts` and
/// `notify.budget` (checked beside their definition).
/// `base` is the configuration file's directory, when it is a file.
pub(super) fn config(config: &Config, base: Option<&Path>, problems: &mut Vec<String>) {
    if config.environments.is_empty() {
        problems.push(
            "environments: no environment is defined; add [environments.development] or another"
                .to_owned(),
        );
    }
    image(&config.image, problems);
    for (key, command) in [
        ("tests.unit", &config.tests.unit),
        ("tests.integration", &config.tests.integration),
    ] {
        if let Some(command) = command {
            no_nul(key, command, problems);
        }
    }
    ledger(&config.ledger.path, base, problems);
    for (i, webhook) in config.notify.webhooks.iter().enumerate() {
        // Webhook URLs are secrets: the message names the entry, never the URL.
        let key = format!("notify.webhooks[{i}]");
        match Url::parse(webhook) {
            Ok(url) => http_url(&key, &url, false, problems),
            Err(e) => problems.push(format!(
                "{key}: not a URL ({e}); write the webhook's https:// URL"
            )),
        }
    }
    positive("notify.timeout", config.notify.timeout, problems);
}

fn image(image: &ImageConfig, problems: &mut Vec<String>) {
    if let Err(problem) = repository(&image.repository) {
        problems.push(format!("image.repository: {problem}"));
    }
    for (i, tag) in image.tags.iter().enumerate() {
        if let Err(problem) = tag_template(tag) {
            problems.push(format!("image.tags[{i}]: {problem}"));
        }
    }
    for (name, value) in &image.build_args {
        let key = format!("image.build_args.{name}");
        if name.is_empty() || name.contains(['=', '\0']) || name.chars().any(char::is_whitespace) {
            problems.push(format!(
                "{key}: {name:?} is not a build argument name; use letters, digits and '_', like RUST_VERSION"
            ));
        }
        no_nul(&key, value, problems);
        if let Some(problem) = unknown_placeholder(value) {
            problems.push(format!("{key}: {problem}"));
        }
    }
    if let Err(e) = parse_size(&image.policy.max_size) {
        problems.push(format!("image.policy.max_size: {e}"));
    }
    if !["LOW", "MEDIUM", "HIGH", "CRITICAL"].contains(&image.trivy.fail_on.as_str()) {
        problems.push(format!(
            "image.trivy.fail_on: {:?} is not a severity; use LOW, MEDIUM, HIGH or CRITICAL",
            image.trivy.fail_on
        ));
    }
    for platform in &image.platforms {
        let parts: Vec<&str> = platform.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            problems.push(format!(
                "image.platforms: {platform:?} is not a platform; write os/arch[/variant], like \"linux/arm64\""
            ));
        }
    }
    port("image.port", image.port, problems);
    if let Some(prebuild) = &image.prebuild {
        no_nul("image.prebuild", prebuild, problems);
    }
}

fn ledger(path: &Path, base: Option<&Path>, problems: &mut Vec<String>) {
    let text = path.as_os_str().to_string_lossy();
    if text.trim().is_empty() {
        problems.push(
            "ledger.path: must not be empty; name a file, like \".kyb-deploy/ledger.jsonl\""
                .to_owned(),
        );
    } else if text.ends_with(['/', '\\']) || base.is_some_and(|base| base.join(path).is_dir()) {
        problems.push(format!(
            "ledger.path: {text:?} is a directory; name a file in it, like \"{}/ledger.jsonl\"",
            text.trim_end_matches(['/', '\\'])
        ));
    }
}

/// The checks of one environment's core keys, and that its only section is its target's
/// (the target's backend checks what is in it).
pub(super) fn environment(name: &str, env: &EnvironmentConfig, problems: &mut Vec<String>) {
    let key = format!("environments.{name}");
    let valid_name = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if !valid_name {
        problems.push(format!(
            "{key}: environment names use lowercase letters, digits, '-' and '_' and start with a letter or digit"
        ));
    }
    let kind = env.target.as_str();
    let others: Vec<&String> = env.sections.keys().filter(|s| s.as_str() != kind).collect();
    let missing = !env.sections.contains_key(kind);
    // One section, of another name than a well-formed target: one of them is misspelt.
    let lone = match (valid_kind(kind) && missing, others.as_slice()) {
        (true, [section]) => Some(*section),
        _ => None,
    };
    if !valid_kind(kind) {
        problems.push(format!(
            "{key}.target: {kind:?} is not a target kind; kinds are lowercase words, like \"docker\", \"ecs\" or \"kubernetes\""
        ));
    } else if let Some(section) = lone {
        problems.push(format!(
            "{key}.{section}: target = \"{kind}\" has no [{key}.{kind}] section, but [{key}.{section}] is there; rename the section to [{key}.{kind}], or set target = \"{section}\""
        ));
    } else if missing {
        problems.push(format!(
            "{key}.{kind}: target = \"{kind}\" needs a [{key}.{kind}] section"
        ));
    }
    for section in others.into_iter().filter(|_| lone.is_none()) {
        let suggestion = super::ENVIRONMENT_KEYS
            .iter()
            .copied()
            .chain([kind])
            .map(|candidate| (edit_distance(section, candidate), candidate))
            .filter(|(distance, _)| *distance <= 1.max(section.len() / 3))
            .min_by_key(|(distance, _)| *distance)
            .map_or_else(String::new, |(_, c)| format!("did you mean \"{c}\"? "));
        problems.push(format!(
            "{key}.{section}: unknown section; {suggestion}this environment deploys to target = \"{kind}\", whose settings go in [{key}.{kind}]; remove [{key}.{section}] or change the target"
        ));
    }
    let t = &env.timeouts;
    for (stage, limit) in [
        ("overall", t.overall),
        ("tests", t.tests),
        ("build", t.build),
        ("push", t.push),
        ("deploy", t.deploy),
        ("wait", t.wait),
        ("verify", t.verify),
        ("rollback", t.rollback),
    ] {
        positive(&format!("{key}.timeouts.{stage}"), limit, problems);
    }
    for (variable, value) in &env.env {
        let vkey = format!("{key}.env.{variable}");
        if !valid_env_name(variable) {
            problems.push(format!(
                "{vkey}: {variable:?} is not an environment variable name; use letters, digits and '_', not starting with a digit, like LOG_LEVEL"
            ));
        }
        no_nul(&vkey, value, problems);
    }
    verify(&key, env, problems);
    super::state::check(
        &format!("{key}.state"),
        &env.state,
        env.target.as_str(),
        problems,
    );
}

fn verify(key: &str, env: &EnvironmentConfig, problems: &mut Vec<String>) {
    let verify = &env.verify;
    if let Some(url) = &verify.base_url {
        http_url(&format!("{key}.verify.base_url"), url, true, problems);
    }
    if !(0.0..=1.0).contains(&verify.max_failure_ratio) {
        problems.push(format!(
            "{key}.verify.max_failure_ratio: {} is not a fraction; use a number from 0.0 (no failure tolerated) to 1.0, like 0.1",
            verify.max_failure_ratio
        ));
    }
    for (probe, settings) in [
        ("readiness", &verify.readiness),
        ("liveness", &verify.liveness),
    ] {
        let pkey = format!("{key}.verify.{probe}");
        if settings.failure_threshold == 0 || settings.success_threshold == 0 {
            problems.push(format!(
                "{pkey}: failure_threshold and success_threshold must be at least 1"
            ));
        }
        for (field, count) in [
            ("failure_threshold", settings.failure_threshold),
            ("success_threshold", settings.success_threshold),
        ] {
            at_most(&format!("{pkey}.{field}"), count, MAX_COUNT, problems);
        }
        if settings.period.is_zero() || settings.timeout.is_zero() {
            problems.push(format!("{pkey}: period and timeout must be longer than 0s"));
        }
        if !settings.path.starts_with('/') {
            problems.push(format!("{pkey}.path: must start with '/'"));
        }
    }
    if !verify.status.version_pointer.is_empty() && !verify.status.version_pointer.starts_with('/')
    {
        problems.push(format!(
            "{key}.verify.status.version_pointer: a JSON pointer starts with '/', like \"/version\""
        ));
    }
    for (i, smoke) in verify.smoke.iter().enumerate() {
        let skey = format!("{key}.verify.smoke[{i}] ({:?})", smoke.name);
        if reqwest::Method::from_bytes(smoke.method.as_bytes()).is_err()
            || smoke.method.chars().any(|c| c.is_ascii_lowercase())
        {
            problems.push(format!(
                "{skey}.method: {:?} is not an HTTP method; use GET, POST, PUT, PATCH, DELETE or HEAD",
                smoke.method
            ));
        }
        if !(100..=599).contains(&smoke.expect_status) {
            problems.push(format!(
                "{skey}.expect_status: {} is not an HTTP status (100-599)",
                smoke.expect_status
            ));
        }
        if !smoke.path.starts_with('/') {
            problems.push(format!("{skey}.path: must start with '/'"));
        }
        if smoke.samples == 0 {
            problems.push(format!("{skey}.samples: must be at least 1"));
        }
        at_most(
            &format!("{skey}.samples"),
            smoke.samples,
            MAX_COUNT,
            problems,
        );
        if let Some(budget) = smoke.latency_budget {
            positive(&format!("{skey}.latency_budget"), budget, problems);
        }
        if let Some(bad) = smoke.expect_json.keys().find(|k| !k.starts_with('/')) {
            problems.push(format!(
                "{skey}.expect_json: key {bad:?} is not a JSON pointer; write \"/field\""
            ));
        }
    }
}

/// A target kind's name: a lowercase word (letters, digits, '-'), starting with a letter.
fn valid_kind(kind: &str) -> bool {
    kind.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An image repository as Docker names it: `[host[:port]/]path`, each path component
/// lowercase letters and digits separated by '.', '_', '__' or dashes; no tag, no digest.
fn repository(repository: &str) -> Result<(), String> {
    let fix =
        "write it like \"ghcr.io/acme/kyb-platform-api\" or \"127.0.0.1:5000/kyb-platform-api\"";
    if repository.is_empty() {
        return Err(format!("must not be empty; {fix}"));
    }
    if repository.len() > 255 {
        return Err(format!(
            "is {} characters long, more than Docker's 255; use a shorter name",
            repository.len()
        ));
    }
    if repository.contains('@') {
        return Err(format!(
            "{repository:?} names a digest; give the repository alone (every deployment pushes and uses its own digest)"
        ));
    }
    let (host, path) = match repository.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.starts_with('[') =>
        {
            (Some(first), rest)
        }
        _ => (None, repository),
    };
    if let Some(host) = host
        && !valid_host(host)
    {
        return Err(format!(
            "{repository:?} has an invalid registry host {host:?}; {fix}"
        ));
    }
    if let Some(last) = path.rsplit('/').next()
        && last.contains(':')
    {
        return Err(format!(
            "{repository:?} names a tag; give the repository alone and the tags in image.tags"
        ));
    }
    if let Some(bad) = path.split('/').find(|c| !valid_path_component(c)) {
        return Err(format!(
            "{repository:?} is not an image repository: {bad:?} must be lowercase letters and digits, separated by '.', '_', '__' or '-'; {fix}"
        ));
    }
    Ok(())
}

/// `name[:port]` or `[ipv6][:port]`.
fn valid_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else {
            return false;
        };
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            after => ("", after.strip_prefix(':').unwrap_or("x")),
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, port),
            None => (host, "1"),
        }
    };
    let port_ok = !port.is_empty()
        && port.chars().all(|c| c.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0);
    let name_ok = name.is_empty() && host.starts_with('[')
        || name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    port_ok && name_ok
}

fn valid_path_component(component: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut chars = component.chars().peekable();
    if !component.starts_with(alnum) || !component.ends_with(alnum) {
        return false;
    }
    while let Some(c) = chars.next() {
        if alnum(c) {
            continue;
        }
        let mut separator = String::from(c);
        while let Some(&next) = chars.peek() {
            if alnum(next) {
                break;
            }
            separator.push(next);
            chars.next();
        }
        if !(separator == "."
            || separator == "_"
            || separator == "__"
            || separator.chars().all(|s| s == '-'))
        {
            return false;
        }
    }
    true
}

/// The `{name}` placeholders of `text`, skipping shell-style `${NAME}`.
fn placeholders(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            break;
        };
        let name = &after[..close];
        let shell = text[..offset + open].ends_with('$');
        if !shell && !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            found.push(name);
        }
        offset += open + 1;
        rest = after;
    }
    found
}

/// A problem naming the first unknown placeholder of `text`, with the closest known one.
fn unknown_placeholder(text: &str) -> Option<String> {
    let unknown = placeholders(text)
        .into_iter()
        .find(|name| !PLACEHOLDERS.contains(name))?;
    let closest = PLACEHOLDERS
        .iter()
        .min_by_key(|known| edit_distance(unknown, known))
        .map(|known| format!("did you mean {{{known}}}? "))
        .filter(|_| {
            PLACEHOLDERS
                .iter()
                .any(|known| edit_distance(unknown, known) <= 2.max(unknown.len() / 3))
        })
        .unwrap_or_default();
    Some(format!(
        "unknown placeholder {{{unknown}}}; {closest}the placeholders are {{version}}, {{commit}} and {{environment}}"
    ))
}

/// A tag template: known placeholders, and around them what a Docker tag allows.
fn tag_template(template: &str) -> Result<(), String> {
    if let Some(problem) = unknown_placeholder(template) {
        return Err(problem);
    }
    // What the tag looks like with typical values; a version is itself a valid tag and an
    // environment name starts with a letter or digit, so only the literal parts matter.
    let filled = template
        .replace("{version}", "v1")
        .replace("{commit}", "0123456789abcdef0123456789abcdef01234567")
        .replace("{environment}", "e");
    let literal_length = PLACEHOLDERS
        .iter()
        .fold(template.to_owned(), |t, p| {
            t.replace(&format!("{{{p}}}"), "")
        })
        .len();
    let valid = filled
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && filled
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && literal_length <= 128;
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{template:?} is not a Docker tag template; a tag has up to 128 characters from [A-Za-z0-9_.-] and does not start with '.' or '-', like \"{{environment}}-latest\""
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories() {
        for good in [
            "kyb-platform-api",
            "ghcr.io/acme/kyb-platform-api",
            "127.0.0.1:5000/kyb-platform-api",
            "localhost/a__b/c.d-e",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/kyb-platform-api",
            "[::1]:5000/api",
            "Registry.Example.com/api",
        ] {
            assert_eq!(repository(good), Ok(()), "{good}");
        }
        for (bad, expected) in [
            ("", "must not be empty"),
            ("Kyb-Api", "must be lowercase"),
            ("ghcr.io/acme/api:v1", "names a tag"),
            ("ghcr.io/acme/api@sha256:abc", "names a digest"),
            ("acme//api", "must be lowercase"),
            ("ghcr.io:99999/api", "invalid registry host"),
            ("ghcr.io:/api", "invalid registry host"),
            ("-api", "must be lowercase"),
            ("api_", "must be lowercase"),
            ("a...b", "must be lowercase"),
            ("a b", "must be lowercase"),
        ] {
            let err = repository(bad).unwrap_err();
            assert!(err.contains(expected), "{bad:?}: {err}");
        }
    }

    #[test]
    fn tag_templates() {
        for good in [
            "{version}",
            "{commit}",
            "{environment}-latest",
            "latest",
            "v1.2_3-{version}",
        ] {
            assert_eq!(tag_template(good), Ok(()), "{good}");
        }
        for (bad, expected) in [
            (
                "{versoin}",
                "unknown placeholder {versoin}; did you mean {version}?",
            ),
            ("{environment}-{sha}", "unknown placeholder {sha}"),
            ("-latest", "not a Docker tag template"),
            (".x", "not a Docker tag template"),
            ("a/b", "not a Docker tag template"),
            ("", "not a Docker tag template"),
            ("{version", "not a Docker tag template"),
        ] {
            let err = tag_template(bad).unwrap_err();
            assert!(err.contains(expected), "{bad:?}: {err}");
        }
        let long = "x".repeat(129);
        assert!(tag_template(&long).is_err());
    }

    #[test]
    fn placeholders_skip_shell_variables_and_json() {
        assert_eq!(placeholders("{version}-${HOME}-{x_1}"), ["version", "x_1"]);
        assert_eq!(placeholders(r#"{"a": 1}"#), Vec::<&str>::new());
        assert_eq!(unknown_placeholder("${HOME}/{version}"), None);
    }

    #[test]
    fn environment_variable_names() {
        for good in ["LOG_LEVEL", "_X", "a1"] {
            assert!(valid_env_name(good), "{good}");
        }
        for bad in ["", "A=B", "1A", "A-B", "A B", "A\0"] {
            assert!(!valid_env_name(bad), "{bad:?}");
        }
    }
}
