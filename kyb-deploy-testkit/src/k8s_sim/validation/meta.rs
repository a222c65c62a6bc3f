//! apimachinery's rules for names, labels, annotations and selectors
//! (`k8s.io/apimachinery/pkg/util/validation`, `.../api/validation`), with its messages.

use serde_json::Value;

use super::errors::FieldErrors;

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
const ANNOTATIONS_MAX: usize = 256 * 1024;

const DNS1123_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// How a kind's object names are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// An RFC 1123 subdomain (most kinds).
    Subdomain,
    /// An RFC 1123 label (Namespaces).
    Label,
    /// An RFC 1035 label (Services).
    Dns1035,
    /// Any path segment: not `.` or `..`, no `/` or `%` (RBAC kinds).
    PathSegment,
}

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Problems of `name` as an RFC 1123 label, as apimachinery words them.
pub(crate) fn dns1123_label(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name.len() > DNS1123_LABEL_MAX {
        problems.push(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    if !is_dns1123_label(name) {
        problems.push(DNS1123_LABEL.to_owned());
    }
    problems
}

fn is_dns1123_label(name: &str) -> bool {
    let bytes: Vec<char> = name.chars().collect();
    !bytes.is_empty()
        && lower_alnum(bytes[0])
        && lower_alnum(bytes[bytes.len() - 1])
        && bytes.iter().all(|c| lower_alnum(*c) || *c == '-')
}

/// Problems of `name` as an RFC 1123 subdomain.
pub(crate) fn dns1123_subdomain(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name.len() > DNS1123_SUBDOMAIN_MAX {
        problems.push(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
        ));
    }
    if name.is_empty() || !name.split('.').all(is_dns1123_label) {
        problems.push(DNS1123_SUBDOMAIN.to_owned());
    }
    problems
}

/// Problems of `name` as an RFC 1035 label.
pub(crate) fn dns1035_label(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name.len() > DNS1123_LABEL_MAX {
        problems.push(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    let starts_alpha = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if !(starts_alpha && is_dns1123_label(name)) {
        problems.push(DNS1035_LABEL.to_owned());
    }
    problems
}

fn path_segment(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|bad| name.contains(*bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

fn name_problems(rule: NameRule, name: &str) -> Vec<String> {
    match rule {
        NameRule::Subdomain => dns1123_subdomain(name),
        NameRule::Label => dns1123_label(name),
        NameRule::Dns1035 => dns1035_label(name),
        NameRule::PathSegment => path_segment(name),
    }
}

fn name_part_ok(name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !chars.is_empty()
        && alnum(chars[0])
        && alnum(chars[chars.len() - 1])
        && chars
            .iter()
            .all(|c| alnum(*c) || matches!(c, '-' | '_' | '.'))
}

/// Problems of `key` as a qualified name (`[prefix/]name`: label and annotation keys).
pub(crate) fn qualified_name(key: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            problems.push("prefix part must be non-empty".to_owned());
        } else {
            problems.extend(
                dns1123_subdomain(prefix)
                    .into_iter()
                    .map(|p| format!("prefix part {p}")),
            );
        }
        if name.contains('/') {
            problems.push(format!("a qualified name {QUALIFIED_NAME} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
            return problems;
        }
    }
    if name.is_empty() {
        problems.push("name part must be non-empty".to_owned());
    } else {
        if name.len() > QUALIFIED_NAME_MAX {
            problems.push(format!(
                "name part must be no more than {QUALIFIED_NAME_MAX} characters"
            ));
        }
        if !name_part_ok(name) {
            problems.push(QUALIFIED_NAME.to_owned());
        }
    }
    problems
}

/// Problems of `value` as a label value.
pub(crate) fn label_value(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        problems.push(format!("must be no more than {LABEL_VALUE_MAX} characters"));
    }
    if !value.is_empty() && !name_part_ok(value) {
        problems.push(LABEL_VALUE.to_owned());
    }
    problems
}

/// Checks a label map at `field`.
pub(crate) fn labels(errors: &mut FieldErrors, field: &str, labels: &Value) {
    let Some(map) = labels.as_object() else {
        return;
    };
    for (key, value) in map {
        for p in qualified_name(key) {
            errors.invalid(field, &Value::String(key.clone()), &p);
        }
        let text = value.as_str().unwrap_or_default();
        for p in label_value(text) {
            errors.invalid(field, value, &p);
        }
    }
}

/// Checks `metadata` of an object of a kind whose names follow `rule`; `namespaced` kinds
/// need a valid namespace.
pub(crate) fn object_meta(
    errors: &mut FieldErrors,
    metadata: &Value,
    rule: NameRule,
    namespaced: bool,
) {
    match metadata["name"].as_str() {
        Some(name) => {
            for p in name_problems(rule, name) {
                errors.invalid("metadata.name", &metadata["name"], &p);
            }
        }
        None if metadata["generateName"].is_string() => {}
        None => errors.required_because("metadata.name", "name or generateName is required"),
    }
    if namespaced && let Some(namespace) = metadata["namespace"].as_str() {
        for p in dns1123_label(namespace) {
            errors.invalid("metadata.namespace", &metadata["namespace"], &p);
        }
    }
    labels(errors, "metadata.labels", &metadata["labels"]);
    if let Some(annotations) = metadata["annotations"].as_object() {
        let mut total = 0;
        for (key, value) in annotations {
            total += key.len() + value.as_str().map_or(0, str::len);
            for p in qualified_name(key) {
                errors.invalid("metadata.annotations", &Value::String(key.clone()), &p);
            }
        }
        if total > ANNOTATIONS_MAX {
            errors.too_long("metadata.annotations", ANNOTATIONS_MAX);
        }
    }
}

/// Checks a `LabelSelector` at `field`: keys, values, operators.
pub(crate) fn label_selector(errors: &mut FieldErrors, field: &str, selector: &Value) {
    labels(
        errors,
        &format!("{field}.matchLabels"),
        &selector["matchLabels"],
    );
    let expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten();
    for (i, expression) in expressions.enumerate() {
        let at = format!("{field}.matchExpressions[{i}]");
        let values = expression["values"].as_array().map_or(0, Vec::len);
        match expression["operator"].as_str() {
            Some("In" | "NotIn") if values == 0 => errors.required_because(
                &format!("{at}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            ),
            Some("Exists" | "DoesNotExist") if values > 0 => errors.forbidden(
                &format!("{at}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            ),
            Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {}
            _ => errors.invalid(
                &format!("{at}.operator"),
                &expression["operator"],
                "not a valid selector operator",
            ),
        }
        if let Some(key) = expression["key"].as_str() {
            for p in qualified_name(key) {
                errors.invalid(&format!("{at}.key"), &expression["key"], &p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_follow_their_rules() {
        assert!(dns1123_subdomain("web.example-1").is_empty());
        assert!(!dns1123_subdomain("Web").is_empty());
        assert!(!dns1123_subdomain("-web").is_empty());
        assert!(!dns1123_subdomain(&"a".repeat(254)).is_empty());
        assert!(dns1123_label("kyb-prod").is_empty());
        assert!(!dns1123_label("kyb.prod").is_empty());
        assert!(dns1035_label("api").is_empty());
        assert!(!dns1035_label("1api").is_empty());
        assert_eq!(path_segment("a/b"), ["may not contain '/'"]);
    }

    #[test]
    fn label_keys_and_values() {
        assert!(qualified_name("app.kubernetes.io/name").is_empty());
        assert!(qualified_name("app").is_empty());
        assert!(!qualified_name("/app").is_empty());
        assert!(!qualified_name("Example.com/app").is_empty());
        assert!(!qualified_name("app-").is_empty());
        assert!(label_value("").is_empty());
        assert!(label_value("v1.2.3").is_empty());
        assert!(!label_value("has space").is_empty());
        assert!(!label_value(&"a".repeat(64)).is_empty());
    }

    #[test]
    fn metadata_problems_name_their_fields() {
        let mut errors = FieldErrors::default();
        object_meta(
            &mut errors,
            &json!({"name": "Web", "labels": {"app": "bad value"}}),
            NameRule::Subdomain,
            true,
        );
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["metadata.name", "metadata.labels"]);
    }
}
