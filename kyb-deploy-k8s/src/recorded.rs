//! The manifests of each release, recorded in the cluster beside it: a ConfigMap per pod
//! template, named by the template's [`MANIFESTS_ANNOTATION`], holding every object as it was
//! applied, with the values of generated Secrets left out. A rollback applies the recorded
//! manifests of the release it goes back to (its ConfigMap of variables, its probes, its
//! autoscaler), not today's settings with an older image; only secret values are read again.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::manifests::{
    ENVIRONMENT_LABEL, MANAGED_BY_LABEL, MANIFESTS_ANNOTATION, Manifest, REDACTED,
    VERSION_ANNOTATION, label_value,
};

/// The label marking a record, naming the service whose manifests it holds. Records carry
/// no name label, so pruning (which selects on it) never deletes them.
pub(crate) const RECORD_LABEL: &str = "kyb-deploy.io/manifests-of";

/// The record's key holding the manifests, a JSON array of objects.
const RECORD_KEY: &str = "manifests.json";

/// The name of the record the Deployment among `manifests` points at.
pub(crate) fn record_name(manifests: &[Manifest]) -> Option<&str> {
    manifests
        .iter()
        .find(|m| m.kind() == "Deployment")
        .and_then(|d| {
            d.object["spec"]["template"]["metadata"]["annotations"][MANIFESTS_ANNOTATION].as_str()
        })
}

/// Whether `name` can be the record of service `app` (`<app>-manifests-<digest>`): a
/// release's platform reference may also be an older form (`revision 3`).
pub(crate) fn is_record_of(app: &str, name: &str) -> bool {
    name.strip_prefix(app)
        .and_then(|rest| rest.strip_prefix("-manifests-"))
        .is_some_and(|digest| !digest.is_empty() && digest.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The record of `manifests`, applied by `environment`'s runs, with `version` annotated for
/// a reader; `None` without a Deployment. Every Secret's values are recorded as
/// [`REDACTED`] (`stringData`), whether `manifests` carry them or not.
pub(crate) fn record_of(
    manifests: &[Manifest],
    environment: &str,
    app: &str,
    version: &str,
) -> Option<Manifest> {
    let name = record_name(manifests)?;
    let deployment = manifests.iter().find(|m| m.kind() == "Deployment")?;
    let namespace = deployment.object["metadata"]["namespace"].clone();
    let objects: Vec<Value> = manifests.iter().map(redacted).collect();
    Some(Manifest {
        object: json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {
                    RECORD_LABEL: app,
                    MANAGED_BY_LABEL: "kyb-deploy",
                    ENVIRONMENT_LABEL: label_value(environment),
                },
                "annotations": {VERSION_ANNOTATION: version},
            },
            "data": {RECORD_KEY: Value::Array(objects).to_string()},
        }),
    })
}

/// `manifest`'s object, with a Secret's values (`data` or `stringData`) replaced by
/// `stringData` of [`REDACTED`] under the same keys.
fn redacted(manifest: &Manifest) -> Value {
    let mut object = manifest.object.clone();
    if manifest.kind() != "Secret" {
        return object;
    }
    let fields = object.as_object_mut().expect("a manifest is an object");
    let mut keys = serde_json::Map::new();
    for field in ["data", "stringData"] {
        if let Some(Value::Object(values)) = fields.remove(field) {
            keys.extend(values.into_iter().map(|(key, _)| (key, json!(REDACTED))));
        }
    }
    fields.insert("stringData".to_owned(), Value::Object(keys));
    object
}

/// Why a record cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum RecordProblem {
    /// The record does not hold a JSON array of objects under its key.
    #[error("ConfigMap {name} does not hold recorded manifests under {RECORD_KEY}")]
    Unreadable {
        /// The record.
        name: String,
    },
    /// A generated Secret of the recorded manifests needs a variable no source gives today.
    #[error(
        "the recorded Secret {secret} needs {variable}, which the environment's kubernetes.secrets no longer names; add its source back to roll back to this release"
    )]
    MissingSecret {
        /// The Secret's name.
        secret: String,
        /// The variable.
        variable: String,
    },
}

/// The manifests recorded in `data` (a record's `data`), named `name` for messages.
pub(crate) fn recorded_manifests(
    name: &str,
    data: Option<&BTreeMap<String, String>>,
) -> Result<Vec<Manifest>, RecordProblem> {
    let unreadable = || RecordProblem::Unreadable {
        name: name.to_owned(),
    };
    let text = data
        .and_then(|d| d.get(RECORD_KEY))
        .ok_or_else(unreadable)?;
    let objects: Vec<Value> = serde_json::from_str(text).map_err(|_| unreadable())?;
    if objects.is_empty() || objects.iter().any(|o| !o.is_object()) {
        return Err(unreadable());
    }
    Ok(objects
        .into_iter()
        .map(|object| Manifest { object })
        .collect())
}

/// `manifests` with each recorded Secret's values (recorded as `stringData` of [`REDACTED`])
/// read again from today's `values`, as the `data` a deploy applies.
pub(crate) fn with_secret_values(
    mut manifests: Vec<Manifest>,
    values: &BTreeMap<String, String>,
) -> Result<Vec<Manifest>, RecordProblem> {
    for manifest in &mut manifests {
        if manifest.kind() != "Secret" {
            continue;
        }
        let Some(redacted) = manifest.object["stringData"].as_object().cloned() else {
            continue;
        };
        let mut data = serde_json::Map::new();
        for (variable, _) in redacted {
            let value = values
                .get(&variable)
                .ok_or_else(|| RecordProblem::MissingSecret {
                    secret: manifest.name().to_owned(),
                    variable: variable.clone(),
                })?;
            data.insert(variable, json!(BASE64.encode(value)));
        }
        let object = manifest
            .object
            .as_object_mut()
            .expect("a manifest is an object");
        object.remove("stringData");
        object.insert("data".to_owned(), Value::Object(data));
    }
    Ok(manifests)
}

#[cfg(test)]
mod tests;
