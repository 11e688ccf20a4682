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

    fn adloop_variables(&self) -> impl Iterator<Item = (&String, &String)> {
        self.variables
            .iter()
            .filter(|(name, _)| name.starts_with(VARIABLE_PREFIX) && name.as_str() != CONFIG_FILE_VARIABLE)
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
    for (name, value) in environment.adloop_variables() {
        match name.strip_suffix(SECRET_FILE_SUFFIX) {
            Some(name_without_suffix) => secret_file_variables.push((name_without_suffix, value)),
            None => {
                plain_variables.insert(name.clone(), value.clone());
            }
        }
    }
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
        builder = builder.set_override(key, secret_value)?;
    }

    Ok(builder.build()?.try_deserialize()?)
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
