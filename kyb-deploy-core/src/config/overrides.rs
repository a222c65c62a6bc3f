//! `KYB_DEPLOY_*` environment variables as a configuration layer.

use std::str::FromStr;

use figment::value::{Dict, Map, Tag, Value};
use figment::{Error, Metadata, Profile, Provider};

use super::ENV_PREFIX;

/// The `KYB_DEPLOY_<KEY>__<KEY>` variables, as a figment provider.
///
/// Like figment's `Env` provider split on `__`, keys in lower case and values parsed
/// (`true`, `3`, `1.5`), except below the tables whose keys are names the user chooses:
/// `environments.<name>.env`, `environments.<name>.docker.secrets` and `image.build_args`.
/// There the variable keeps its spelling of the name (`LOG_LEVEL`, not `log_level`) and its
/// value stays the text it was (`1`, `true`, `007`): those tables hold strings, and a number
/// parsed and printed back could differ from what was written.
pub(super) struct EnvOverrides {
    vars: Vec<(String, String)>,
}

impl EnvOverrides {
    /// The variables of this process.
    pub(super) fn from_process() -> Self {
        Self::from_vars(std::env::vars_os().map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        }))
    }

    /// The given variables (name, value); those without the prefix or without `__` after it
    /// are not configuration keys and are left out.
    pub(super) fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let prefix = name.get(..ENV_PREFIX.len())?;
                let rest = name.get(ENV_PREFIX.len()..)?.trim();
                (prefix.eq_ignore_ascii_case(ENV_PREFIX) && rest.contains("__"))
                    .then(|| (rest.to_owned(), value))
            })
            .collect();
        Self { vars }
    }
}

/// The key path a variable names (`ENVIRONMENTS__STAGING__ENV__LOG_LEVEL` gives
/// `environments`, `staging`, `env`, `LOG_LEVEL`), and whether its value is verbatim text.
/// `None` for a name with an empty part (`A____B`).
fn key_path(rest: &str) -> Option<(Vec<String>, bool)> {
    let parts: Vec<&str> = rest.split("__").collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut path: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
    let keyed = |path: &[String], table: &[&str]| {
        path.len() > table.len()
            && path
                .iter()
                .zip(table)
                .all(|(part, want)| *want == "*" || part == want)
    };
    // Where the user's own names start, in the tables that map names to strings.
    let names_at = if keyed(&path, &["environments", "*", "env"]) {
        Some(3)
    } else if keyed(&path, &["environments", "*", "docker", "secrets"]) {
        Some(4)
    } else if keyed(&path, &["image", "build_args"]) {
        Some(2)
    } else {
        None
    };
    if let Some(at) = names_at {
        path[at] = parts[at].to_owned();
    }
    Some((path, names_at.is_some()))
}

/// Merges `from` into `into`, tables key by key, `from` winning.
fn merge(into: &mut Dict, from: Dict) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Dict(_, existing)), Value::Dict(_, new)) => merge(existing, new),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// How messages name the layer of the variables.
pub(super) const METADATA_NAME: &str = "`KYB_DEPLOY_` environment variable(s)";

impl Provider for EnvOverrides {
    fn metadata(&self) -> Metadata {
        Metadata::named(METADATA_NAME).interpolater(|_: &Profile, keys: &[&str]| {
            let keys: Vec<String> = keys.iter().map(|k| k.to_ascii_uppercase()).collect();
            format!("{ENV_PREFIX}{}", keys.join("__"))
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut dict = Dict::new();
        for (rest, raw) in &self.vars {
            let Some((path, verbatim)) = key_path(rest) else {
                continue;
            };
            let mut value = if verbatim {
                Value::from(raw.clone())
            } else {
                Value::from_str(raw).unwrap_or_else(|never| match never {})
            };
            for key in path.into_iter().rev() {
                let mut table = Dict::new();
                table.insert(key, value);
                value = Value::Dict(Tag::Default, table);
            }
            if let Value::Dict(_, table) = value {
                merge(&mut dict, table);
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(rest: &str) -> Option<(Vec<String>, bool)> {
        key_path(rest)
    }

    #[test]
    fn key_paths_keep_the_case_of_user_chosen_names_only() {
        let cases: [(&str, &[&str], bool); 7] = [
            (
                "ENVIRONMENTS__STAGING__ROLLBACK",
                &["environments", "staging", "rollback"],
                false,
            ),
            (
                "ENVIRONMENTS__STAGING__ENV__LOG_LEVEL",
                &["environments", "staging", "env", "LOG_LEVEL"],
                true,
            ),
            (
                "ENVIRONMENTS__Staging__Docker__SECRETS__Api_Token__ENV",
                &[
                    "environments",
                    "staging",
                    "docker",
                    "secrets",
                    "Api_Token",
                    "env",
                ],
                true,
            ),
            (
                "IMAGE__BUILD_ARGS__RUST_Version",
                &["image", "build_args", "RUST_Version"],
                true,
            ),
            ("IMAGE__REPOSITORY", &["image", "repository"], false),
            // The table itself, not a name in it: parsed as usual (and refused as a table).
            (
                "ENVIRONMENTS__STAGING__ENV",
                &["environments", "staging", "env"],
                false,
            ),
            (
                "ENVIRONMENTS__STAGING__VERIFY__READINESS__PERIOD",
                &["environments", "staging", "verify", "readiness", "period"],
                false,
            ),
        ];
        for (rest, want, verbatim) in cases {
            let (got, got_verbatim) = path(rest).unwrap();
            assert_eq!(got, want, "{rest}");
            assert_eq!(got_verbatim, verbatim, "{rest}");
        }
        assert_eq!(path("ENVIRONMENTS____ROLLBACK"), None);
    }

    #[test]
    fn the_layer_is_named_after_the_prefix() {
        assert!(METADATA_NAME.starts_with(&format!("`{ENV_PREFIX}`")));
    }

    #[test]
    fn only_prefixed_names_with_a_double_underscore_are_keys() {
        let overrides = EnvOverrides::from_vars([
            ("KYB_DEPLOY_CONFIG".to_owned(), "x".to_owned()),
            ("KYB_DEPLOY_REGISTRY_PASSWORD".to_owned(), "x".to_owned()),
            ("OTHER__KEY".to_owned(), "x".to_owned()),
            ("kyb_deploy_project__name".to_owned(), "api".to_owned()),
        ]);
        assert_eq!(
            overrides.vars,
            [("project__name".to_owned(), "api".to_owned())]
        );
    }
}
