//! Field errors as the API server words them (apimachinery's `field.Error`), and the 422
//! `Invalid` Status they add up to.

use serde_json::{Value, json};

use crate::k8s_sim::error::ApiError;
use crate::k8s_sim::resources::ResourceType;

/// One problem with one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// `FieldValueRequired`, `FieldValueInvalid`, ...
    pub(crate) reason: &'static str,
    /// The field's path, like `spec.template.spec.containers[0].image`.
    pub(crate) field: String,
    /// What is wrong, without the path (`Required value`, `Invalid value: 0: must be ...`).
    pub(crate) message: String,
}

/// The problems found in one object, in the order found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldErrors(pub(crate) Vec<FieldError>);

impl FieldErrors {
    fn push(&mut self, reason: &'static str, field: &str, message: String) {
        self.0.push(FieldError {
            reason,
            field: field.to_owned(),
            message,
        });
    }

    /// `field: Required value`.
    pub(crate) fn required(&mut self, field: &str) {
        self.push("FieldValueRequired", field, "Required value".to_owned());
    }

    /// `field: Required value: detail`.
    pub(crate) fn required_because(&mut self, field: &str, detail: &str) {
        self.push(
            "FieldValueRequired",
            field,
            format!("Required value: {detail}"),
        );
    }

    /// `field: Invalid value: <value>: detail`.
    pub(crate) fn invalid(&mut self, field: &str, value: &Value, detail: &str) {
        self.push(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {}: {detail}", go_value(value)),
        );
    }

    /// `field: Unsupported value: "x": supported values: "a", "b"`.
    pub(crate) fn not_supported(&mut self, field: &str, value: &Value, supported: &[&str]) {
        let supported: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        self.push(
            "FieldValueNotSupported",
            field,
            format!(
                "Unsupported value: {}: supported values: {}",
                go_value(value),
                supported.join(", ")
            ),
        );
    }

    /// `field: Duplicate value: <value>`.
    pub(crate) fn duplicate(&mut self, field: &str, value: &Value) {
        self.push(
            "FieldValueDuplicate",
            field,
            format!("Duplicate value: {}", go_value(value)),
        );
    }

    /// `field: Not found: <value>`.
    pub(crate) fn not_found(&mut self, field: &str, value: &Value) {
        self.push(
            "FieldValueNotFound",
            field,
            format!("Not found: {}", go_value(value)),
        );
    }

    /// `field: Forbidden: detail`.
    pub(crate) fn forbidden(&mut self, field: &str, detail: &str) {
        self.push("FieldValueForbidden", field, format!("Forbidden: {detail}"));
    }

    /// `field: Too long: may not be more than N bytes`.
    pub(crate) fn too_long(&mut self, field: &str, max: usize) {
        self.push(
            "FieldValueTooLong",
            field,
            format!("Too long: may not be more than {max} bytes"),
        );
    }

    /// A port number at `field`: 1-65535, and present when `required`.
    pub(crate) fn port(&mut self, field: &str, value: &Value, required: bool) {
        match value.as_i64() {
            Some(p) if (1..=65535).contains(&p) => {}
            Some(_) => self.invalid(field, value, "must be between 1 and 65535, inclusive"),
            None if required && value.is_null() => self.required(field),
            None => {}
        }
    }

    /// `field: Invalid value: <value>: field is immutable`.
    pub(crate) fn immutable(&mut self, field: &str, value: &Value) {
        self.invalid(field, value, "field is immutable");
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The 422 `Invalid` Status of an object of kind `r` named `name` with these
    /// problems: the message lists them (in brackets when there are several), and
    /// `details.causes` holds each with its field and reason, as kubectl prints them.
    pub(crate) fn into_error(self, r: &ResourceType, name: &str) -> ApiError {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        let problem = match lines.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let causes: Vec<Value> = self
            .0
            .iter()
            .map(|e| json!({"reason": e.reason, "message": e.message, "field": e.field}))
            .collect();
        ApiError::invalid_object(r, name, problem, causes)
    }
}

/// A value as Go's `%v`-ish printing in apimachinery's messages shows it: strings quoted,
/// numbers and booleans bare, maps as `map[string]string{"k":"v"}`.
pub(crate) fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_owned(),
        Value::Object(map) if map.values().all(Value::is_string) => {
            let pairs: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k:?}:{:?}", v.as_str().unwrap_or_default()))
                .collect();
            format!("map[string]string{{{}}}", pairs.join(", "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s_sim::resources::kind;

    #[test]
    fn one_problem_reads_inline_several_in_brackets_and_each_is_a_cause() {
        let mut one = FieldErrors::default();
        one.required("spec.selector");
        let e = one.into_error(kind("Deployment"), "web");
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "Deployment.apps \"web\" is invalid: spec.selector: Required value"
        );
        let details = e.details.unwrap();
        assert_eq!(details["kind"], "Deployment");
        assert_eq!(details["group"], "apps");
        assert_eq!(details["causes"][0]["reason"], "FieldValueRequired");
        assert_eq!(details["causes"][0]["field"], "spec.selector");

        let mut two = FieldErrors::default();
        two.invalid(
            "spec.replicas",
            &json!(-1),
            "must be greater than or equal to 0",
        );
        two.not_supported(
            "spec.strategy.type",
            &json!("Blue"),
            &["Recreate", "RollingUpdate"],
        );
        let e = two.into_error(kind("Deployment"), "web");
        assert_eq!(
            e.message,
            "Deployment.apps \"web\" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.strategy.type: Unsupported value: \"Blue\": supported values: \"Recreate\", \"RollingUpdate\"]"
        );
    }

    #[test]
    fn maps_print_like_go() {
        assert_eq!(
            go_value(&json!({"app": "web"})),
            "map[string]string{\"app\":\"web\"}"
        );
    }
}
