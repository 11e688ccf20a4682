use std::path::PathBuf;

/// Why settings could not be loaded. Every message names the offending key or file, never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read secret file {path} for key `{key}`: {source}")]
    SecretFileUnreadable {
        key: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error("unknown setting `{key}` (set by {set_by}): no such key in this service's settings")]
    UnknownSetting { key: String, set_by: String },
    #[error("invalid value for `{key}`: {rule}")]
    RuleViolated { key: String, rule: String },
}

impl ConfigError {
    pub fn rule_violated(key: &str, rule: impl Into<String>) -> Self {
        ConfigError::RuleViolated {
            key: key.to_owned(),
            rule: rule.into(),
        }
    }
}
