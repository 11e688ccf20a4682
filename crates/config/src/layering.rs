use std::collections::HashMap;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

use crate::ConfigError;

/// Names the optional TOML file layered over the compiled defaults.
pub const CONFIG_FILE_VARIABLE: &str = "ADLOOP_CONFIG_FILE";

const VARIABLE_PREFIX: &str = "ADLOOP_";
const NESTING_SEPARATOR: &str = "__";
const SECRET_FILE_SUFFIX: &str = "_FILE";

/// The environment variables settings are read from. Services take the process environment;
/// tests pass their own so they never mutate global state.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentVariables {
    variables: HashMap<String, String>,
}

impl EnvironmentVariables {
    pub fn from_process() -> Self {
        EnvironmentVariables {
            variables: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        EnvironmentVariables {
            variables: pairs
                .into_iter()
                .map(|(key, value)| (key.into(), value.into()))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.variables.get(name).map(String::as_str)
    }

    /// `ADLOOP_<SECTION>__<KEY>` variables: every setting lives in a section, so a name without `__`
    /// (`ADLOOP_DEV_API_KEY`, which scripts use) is not a setting.
    fn setting_variables(&self) -> impl Iterator<Item = (&String, &String)> {
        self.variables.iter().filter(|(name, _)| {
            name.strip_prefix(VARIABLE_PREFIX)
                .is_some_and(|rest| rest.contains(NESTING_SEPARATOR))
        })
    }
}

/// Builds settings of type `T` from compiled defaults, the optional file, environment variables and secret files.
pub fn load_settings<T: DeserializeOwned>(
    compiled_defaults_toml: &str,
    environment: &EnvironmentVariables,
) -> Result<T, ConfigError> {
    let mut builder =
        config::Config::builder().add_source(config::File::from_str(compiled_defaults_toml, config::FileFormat::Toml));

    if let Some(config_file_path) = environment.get(CONFIG_FILE_VARIABLE) {
        builder = builder.add_source(
            config::File::from(PathBuf::from(config_file_path))
                .format(config::FileFormat::Toml)
                .required(true),
        );
    }

    let mut plain_variables = HashMap::new();
    let mut secret_file_variables = Vec::new();
    for (name, value) in environment.setting_variables() {
        match name.strip_suffix(SECRET_FILE_SUFFIX) {
            Some(name_without_suffix) => secret_file_variables.push((name_without_suffix, value)),
            None => {
                plain_variables.insert(name.clone(), value.clone());
            }
        }
    }
    let mut variable_for_key: HashMap<String, String> = plain_variables
        .keys()
        .map(|name| (settings_key_for_variable(name), name.clone()))
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix(VARIABLE_PREFIX.trim_end_matches('_'))
            .prefix_separator("_")
            .separator(NESTING_SEPARATOR)
            .try_parsing(true)
            .source(Some(plain_variables)),
    );

    for (variable_name, secret_path) in secret_file_variables {
        let key = settings_key_for_variable(variable_name);
        let secret_value = read_secret_file(&key, secret_path)?;
        variable_for_key.insert(key.clone(), format!("{variable_name}{SECRET_FILE_SUFFIX}"));
        builder = builder.set_override(key, secret_value)?;
    }

    let mut ignored_keys = Vec::new();
    let settings = serde_ignored::deserialize(builder.build()?, |path| ignored_keys.push(dotted_key(&path)))?;
    refuse_unknown_keys(compiled_defaults_toml, ignored_keys, &variable_for_key)?;
    Ok(settings)
}

/// A key the settings type did not read is a typo or a setting of another service: refused, naming the
/// variable that set it, so a misspelt setting never silently leaves its default in force. Keys of the
/// compiled defaults are exempt (a loader may read only some of its sections).
fn refuse_unknown_keys(
    compiled_defaults_toml: &str,
    ignored_keys: Vec<String>,
    variable_for_key: &HashMap<String, String>,
) -> Result<(), ConfigError> {
    if ignored_keys.is_empty() {
        return Ok(());
    }
    let compiled_defaults = config::Config::builder()
        .add_source(config::File::from_str(compiled_defaults_toml, config::FileFormat::Toml))
        .build()?;
    let mut unknown: Vec<String> = ignored_keys
        .into_iter()
        .filter(|key| compiled_defaults.get::<config::Value>(key).is_err())
        .collect();
    unknown.sort();
    let Some(key) = unknown.into_iter().next() else {
        return Ok(());
    };
    let set_by = variable_for_key
        .iter()
        .filter(|(variable_key, _)| *variable_key == &key || variable_key.starts_with(&format!("{key}.")))
        .map(|(_, variable)| variable.clone())
        .min()
        .unwrap_or_else(|| format!("the file named by {CONFIG_FILE_VARIABLE}"));
    Err(ConfigError::UnknownSetting { key, set_by })
}

/// serde_ignored's path without its `?` steps through options: `graph.access_token`.
fn dotted_key(path: &serde_ignored::Path) -> String {
    let mut segments = Vec::new();
    let mut step = path;
    loop {
        match step {
            serde_ignored::Path::Root => break,
            serde_ignored::Path::Seq { parent, index } => {
                segments.push(index.to_string());
                step = parent;
            }
            serde_ignored::Path::Map { parent, key } => {
                segments.push(key.clone());
                step = parent;
            }
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => step = parent,
        }
    }
    segments.reverse();
    segments.join(".")
}

/// `ADLOOP_DATABASE__URL` → `database.url`.
fn settings_key_for_variable(variable_name: &str) -> String {
    variable_name
        .trim_start_matches(VARIABLE_PREFIX)
        .to_lowercase()
        .replace(NESTING_SEPARATOR, ".")
}

fn read_secret_file(key: &str, path: &str) -> Result<String, ConfigError> {
    let contents = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFileUnreadable {
        key: key.to_owned(),
        path: PathBuf::from(path),
        source,
    })?;
    // Mounted secrets usually end with a newline that is not part of the value.
    Ok(contents.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_map_to_nested_keys() {
        assert_eq!(settings_key_for_variable("ADLOOP_DATABASE__URL"), "database.url");
        assert_eq!(
            settings_key_for_variable("ADLOOP_ML_SERVICE__REQUEST_TIMEOUT_MS"),
            "ml_service.request_timeout_ms"
        );
    }
}
