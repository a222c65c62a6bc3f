//! Your own manifests (`kubernetes.manifests`): YAML or JSON files of the objects to apply
//! in place of the built-in ones, read from one file or every `.yaml`, `.yml` and `.json`
//! file of a directory, with the release filled in. Every problem names the file, line and
//! column of the object it is about.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::apply::{applied_kinds, is_applied_kind};
use crate::manifests::{
    CONFIG_ANNOTATION, ENVIRONMENT_LABEL, MANAGED_BY_LABEL, Manifest, ManifestInput, NAME_LABEL,
    REDACTED, SecretValues, VERSION_ANNOTATION, apply_order, built_in, label_value, name_record,
    short_digest,
};
use crate::verdict::VERSION_LABEL;

/// Where something in the manifests is: `file:line:column` (both from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// The file.
    pub file: PathBuf,
    /// The line.
    pub line: u64,
    /// The column.
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One object as written in the manifests, and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenObject {
    /// The object.
    pub object: Value,
    /// Where it starts.
    pub at: Position,
}

/// Why the manifests cannot be used. Each names the place and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// A file or the directory could not be read.
    #[error("cannot read the manifests {}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The directory holds no manifest file.
    #[error(
        "{}: no .yaml, .yml or .json file in this directory; put the manifests there, or point kubernetes.manifests at a file",
        path.display()
    )]
    NoFiles {
        /// The directory.
        path: PathBuf,
    },
    /// No Deployment of the service.
    #[error(
        "{}: no Deployment named {app}; name the service's Deployment after kubernetes.app, or set kubernetes.app to its name",
        path.display()
    )]
    NoDeployment {
        /// The file or directory.
        path: PathBuf,
        /// The app.
        app: String,
    },
    /// Something at a place in a file.
    #[error("{at}: {problem}")]
    Invalid {
        /// Where.
        at: Position,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

fn invalid(at: &Position, problem: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        at: at.clone(),
        problem: problem.into(),
    }
}

/// The objects in `path`: the file, or every `.yaml`, `.yml` and `.json` file directly in
/// the directory, by name. YAML files may hold several documents (`---`); JSON files one
/// object after another. Empty documents are skipped.
///
/// # Errors
///
/// A file that cannot be read or parsed (naming its line and column), an empty directory,
/// or a document that is not an object with `apiVersion`, `kind` and `metadata.name`.
pub fn read_manifests(path: &Path) -> Result<Vec<WrittenObject>, ManifestError> {
    let read_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ManifestError::Read { path, source }
    };
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(read_error(path))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(ManifestError::NoFiles {
                path: path.to_path_buf(),
            });
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(read_error(&file))?;
        let parsed = if file.extension().is_some_and(|e| e == "json") {
            parse_json(&text, &file)?
        } else {
            parse_yaml(&text, &file)?
        };
        for object in parsed {
            check_shape(&object)?;
            objects.push(object);
        }
    }
    Ok(objects)
}

/// The documents of a YAML text, each with where it starts.
fn parse_yaml(text: &str, file: &Path) -> Result<Vec<WrittenObject>, ManifestError> {
    let documents: Vec<serde_saphyr::Spanned<Value>> =
        serde_saphyr::from_multiple(text).map_err(|e| {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            let message = without_position(&e.without_snippet().to_string());
            invalid(
                &Position {
                    file: file.to_path_buf(),
                    line,
                    column,
                },
                format!("not valid YAML: {message}"),
            )
        })?;
    Ok(documents
        .into_iter()
        .filter(|d| !d.value.is_null())
        .map(|d| WrittenObject {
            at: Position {
                file: file.to_path_buf(),
                line: d.referenced.line(),
                column: d.referenced.column(),
            },
            object: d.value,
        })
        .collect())
}

/// The objects of a JSON text (one after another, as `kyb-deploy render` prints them).
fn parse_json(text: &str, file: &Path) -> Result<Vec<WrittenObject>, ManifestError> {
    let at = |offset: usize| {
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        Position {
            file: file.to_path_buf(),
            line: line as u64,
            column: column as u64,
        }
    };
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut objects = Vec::new();
    loop {
        // Where the next value starts: past the whitespace after the last one.
        let start = stream.byte_offset();
        let start = start + (text[start..].len() - text[start..].trim_start().len());
        match stream.next() {
            None => return Ok(objects),
            Some(Ok(object)) => objects.push(WrittenObject {
                object,
                at: at(start),
            }),
            Some(Err(e)) => {
                let position = Position {
                    file: file.to_path_buf(),
                    line: e.line() as u64,
                    column: e.column() as u64,
                };
                let message = without_position(&e.to_string());
                return Err(invalid(&position, format!("not valid JSON: {message}")));
            }
        }
    }
}

/// A parser's message without its trailing ` at line L, column C`: the position is said
/// once, in front.
fn without_position(message: &str) -> String {
    message
        .rsplit_once(" at line ")
        .map_or(message, |(m, _)| m)
        .to_owned()
}

/// An object with a string `apiVersion`, `kind` and `metadata.name`.
fn check_shape(written: &WrittenObject) -> Result<(), ManifestError> {
    let object = &written.object;
    if !object.is_object() {
        return Err(invalid(
            &written.at,
            "each document must be one Kubernetes object (a mapping with apiVersion, kind and metadata); a list is not read, write one document per object",
        ));
    }
    for (field, value) in [
        ("apiVersion", &object["apiVersion"]),
        ("kind", &object["kind"]),
        ("metadata.name", &object["metadata"]["name"]),
    ] {
        if !value.is_string() || value.as_str() == Some("") {
            return Err(invalid(
                &written.at,
                format!(
                    "the object has no {field} (a string); every object needs apiVersion, kind and metadata.name"
                ),
            ));
        }
    }
    Ok(())
}

/// The objects kyb-deploy applies for `input` from the user's `written` objects: each
/// checked, in the environment's namespace, labelled as kyb-deploy's (so pruning knows
/// them), in apply order; the service's Deployment (named `app`) runs the release's image
/// in its container named `app` (or its only container), with the version, the
/// configuration digest and the record name on its pod template; the ConfigMap of the
/// environment's variables and the Secret of its secret sources are added as the built-in
/// manifests have them (replacing those objects as `render` prints them), and the container
/// reads them. With an autoscaler for the
/// Deployment, `spec.replicas` is left out.
///
/// # Errors
///
/// A kind kyb-deploy does not apply, an object in another namespace, a Secret with values
/// written in the file, an object twice, a second Deployment, a label kyb-deploy sets with
/// another value, or no Deployment named `app`.
pub fn fill_in(
    path: &Path,
    written: Vec<WrittenObject>,
    input: &ManifestInput<'_>,
    secrets: &SecretValues,
) -> Result<Vec<Manifest>, ManifestError> {
    let s = input.settings;
    let app = s.app.as_str();
    let generated = built_in(input, secrets);
    let labels = json!({
        NAME_LABEL: app,
        MANAGED_BY_LABEL: "kyb-deploy",
        ENVIRONMENT_LABEL: label_value(input.environment),
    });
    let mut seen: Vec<(String, String, Position)> = Vec::new();
    let mut objects: Vec<Value> = Vec::new();
    let mut deployment: Option<(usize, Position)> = None;
    for WrittenObject { mut object, at } in written {
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // The environment's ConfigMap and Secret, as `render` prints them: kyb-deploy
        // writes these itself, from the environment's variables and secret sources.
        if generated
            .iter()
            .any(|g| g.kind() == kind && g.name() == name && is_rendered(&kind, &object))
        {
            continue;
        }
        if !is_applied_kind(&api_version, &kind) {
            return Err(invalid(
                &at,
                format!(
                    "{kind} of apiVersion {api_version} is not a kind kyb-deploy applies (it applies {}); apply it another way, or remove it",
                    applied_kinds()
                ),
            ));
        }
        if let Some((_, _, first)) = seen.iter().find(|(k, n, _)| *k == kind && *n == name) {
            return Err(invalid(
                &at,
                format!("{kind} {name} is written twice (also at {first}); keep one"),
            ));
        }
        seen.push((kind.clone(), name.clone(), at.clone()));
        if kind == "Namespace" {
            if name != s.namespace {
                return Err(invalid(
                    &at,
                    format!(
                        "Namespace {name} is not the environment's namespace {}; kyb-deploy applies objects in kubernetes.namespace only",
                        s.namespace
                    ),
                ));
            }
        } else {
            match object["metadata"]["namespace"].as_str() {
                None => object["metadata"]["namespace"] = json!(s.namespace),
                Some(ns) if ns == s.namespace => {}
                Some(ns) => {
                    return Err(invalid(
                        &at,
                        format!(
                            "{kind} {name} is in namespace {ns}, not the environment's namespace {}; remove metadata.namespace, or set kubernetes.namespace",
                            s.namespace
                        ),
                    ));
                }
            }
        }
        if kind == "Secret"
            && (object.get("data").is_some_and(|d| !d.is_null())
                || object.get("stringData").is_some_and(|d| !d.is_null()))
        {
            return Err(invalid(
                &at,
                format!(
                    "Secret {name} has values written in the manifests, which kyb-deploy never records or prints; give them through kubernetes.secrets (env or file sources), or create the Secret another way and reference it"
                ),
            ));
        }
        merge_labels(&mut object["metadata"], &labels, &at)?;
        if kind == "Deployment" {
            if name != app {
                return Err(invalid(
                    &at,
                    format!(
                        "Deployment {name} is not the service's Deployment {app}; kyb-deploy follows the rollout of one Deployment per environment, named kubernetes.app"
                    ),
                ));
            }
            deployment = Some((objects.len(), at.clone()));
        }
        objects.push(object);
    }
    let Some((index, at)) = deployment else {
        return Err(ManifestError::NoDeployment {
            path: path.to_path_buf(),
            app: app.to_owned(),
        });
    };
    // The environment's variables and secret sources, as the built-in manifests have them.
    let own_config: Vec<Value> = objects
        .iter()
        .filter(|o| o["kind"] == "ConfigMap")
        .map(|o| o["data"].clone())
        .collect();
    let built_in_deployment = generated
        .iter()
        .find(|m| m.kind() == "Deployment")
        .map(|m| m.object.clone())
        .unwrap_or_default();
    let namespace_written = seen.iter().any(|(kind, _, _)| kind == "Namespace");
    for manifest in &generated {
        let wanted = match manifest.kind() {
            "ConfigMap" | "Secret" => true,
            // `create_namespace` applies the Namespace, as with the built-in manifests.
            "Namespace" => !namespace_written,
            _ => false,
        };
        if wanted {
            if let Some((_, _, first)) = seen
                .iter()
                .find(|(k, n, _)| k == manifest.kind() && n == manifest.name())
            {
                return Err(invalid(
                    first,
                    format!(
                        "{} {} is the name kyb-deploy gives the {} of the environment's {}; rename it",
                        manifest.kind(),
                        manifest.name(),
                        manifest.kind(),
                        if manifest.kind() == "Secret" {
                            "kubernetes.secrets"
                        } else {
                            "variables (env)"
                        }
                    ),
                ));
            }
            objects.push(manifest.object.clone());
        }
    }
    let autoscaled = objects.iter().any(|o| {
        o["kind"] == "HorizontalPodAutoscaler"
            && o["spec"]["scaleTargetRef"]["kind"] == "Deployment"
            && o["spec"]["scaleTargetRef"]["name"] == app
    });
    let deployment = &mut objects[index];
    fill_deployment(
        deployment,
        &built_in_deployment,
        input,
        &own_config,
        autoscaled,
        &at,
    )?;
    let mut manifests: Vec<Manifest> = objects
        .into_iter()
        .map(|object| Manifest { object })
        .collect();
    manifests.sort_by_key(|m| apply_order(m.kind()));
    Ok(manifests)
}

/// Whether `object` is the environment's ConfigMap or Secret as `render` prints it (the
/// Secret's values all redacted), which kyb-deploy writes itself.
fn is_rendered(kind: &str, object: &Value) -> bool {
    match kind {
        "ConfigMap" => true,
        "Secret" => {
            object.get("data").is_none_or(Value::is_null)
                && object["stringData"]
                    .as_object()
                    .is_some_and(|values| values.values().all(|v| v == REDACTED))
        }
        _ => false,
    }
}

/// Adds `labels` to `metadata.labels`, refusing one set to another value.
fn merge_labels(metadata: &mut Value, labels: &Value, at: &Position) -> Result<(), ManifestError> {
    if !metadata["labels"].is_object() {
        metadata["labels"] = json!({});
    }
    for (key, value) in labels.as_object().into_iter().flatten() {
        match metadata["labels"].get(key) {
            Some(written) if written != value => {
                return Err(invalid(
                    at,
                    format!(
                        "label {key} is {written}, but kyb-deploy sets it to {value} (pruning and rollouts select on it); remove the label"
                    ),
                ));
            }
            _ => metadata["labels"][key] = value.clone(),
        }
    }
    Ok(())
}

/// Fills the release into the service's Deployment.
fn fill_deployment(
    deployment: &mut Value,
    built_in: &Value,
    input: &ManifestInput<'_>,
    own_config: &[Value],
    autoscaled: bool,
    at: &Position,
) -> Result<(), ManifestError> {
    let app = input.settings.app.as_str();
    let version = input.release.version.as_str();
    let template = &mut deployment["spec"]["template"];
    if !template.is_object() {
        return Err(invalid(at, "the Deployment has no spec.template"));
    }
    let template_labels = json!({NAME_LABEL: app, VERSION_LABEL: label_value(version)});
    merge_labels(&mut template["metadata"], &template_labels, at)?;
    let containers = template["spec"]["containers"]
        .as_array_mut()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| invalid(at, "the Deployment has no spec.template.spec.containers"))?;
    let names: Vec<String> = containers
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    let index = match names.iter().position(|n| n == app) {
        Some(index) => index,
        None if containers.len() == 1 => 0,
        None => {
            return Err(invalid(
                at,
                format!(
                    "the Deployment has containers {} and none named {app}; name the service's container {app}",
                    names.join(", ")
                ),
            ));
        }
    };
    let container = &mut containers[index];
    container["image"] = json!(input.release.image);
    let generated = &built_in["spec"]["template"]["spec"]["containers"][0];
    for field in ["envFrom", "env"] {
        let mut merged = container[field].as_array().cloned().unwrap_or_default();
        for entry in generated[field].as_array().into_iter().flatten() {
            if merged.contains(entry) {
                continue;
            }
            if field == "env" && merged.iter().any(|e| e["name"] == entry["name"]) {
                return Err(invalid(
                    at,
                    format!(
                        "the container sets {} itself, and kubernetes.secrets gives it too; keep one",
                        entry["name"]
                    ),
                ));
            }
            merged.push(entry.clone());
        }
        if !merged.is_empty() {
            container[field] = Value::Array(merged);
        }
    }
    let annotations = &mut template["metadata"]["annotations"];
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations[VERSION_ANNOTATION] = json!(version);
    // The environment's configuration and the service's own ConfigMaps: a change to
    // either rolls the pods.
    let environment = &built_in["spec"]["template"]["metadata"]["annotations"][CONFIG_ANNOTATION];
    annotations[CONFIG_ANNOTATION] = if own_config.is_empty() {
        environment.clone()
    } else {
        json!(short_digest(
            &json!({"environment": environment, "configmaps": own_config})
        ))
    };
    let metadata = &mut deployment["metadata"];
    if !metadata["annotations"].is_object() {
        metadata["annotations"] = json!({});
    }
    metadata["annotations"][VERSION_ANNOTATION] = json!(version);
    if autoscaled && let Some(spec) = deployment["spec"].as_object_mut() {
        spec.remove("replicas");
    }
    name_record(deployment, app);
    Ok(())
}

/// Whether the manifests at `path` can be used for environment `environment` with
/// `settings`: read and filled in for a placeholder release, offline.
pub(crate) fn check(
    settings: &crate::settings::KubernetesSettings,
    environment: &str,
    path: &Path,
) -> Result<(), String> {
    let release = kyb_deploy_core::Release::new(
        kyb_deploy_core::Version::parse("check").expect("a valid version"),
        "registry.invalid/check:check",
    );
    let env = std::collections::BTreeMap::new();
    let input = ManifestInput {
        environment,
        settings,
        release: &release,
        env: &env,
    };
    read_manifests(path)
        .and_then(|written| fill_in(path, written, &input, &SecretValues::Redacted))
        .map(|_| ())
        .map_err(|e| kyb_deploy_core::Error::chain_of(&e))
}

#[cfg(test)]
mod tests;
