//! Settings for every adloop service, layered in one fixed order:
//!
//! 1. compiled defaults (a TOML document each service ships in its binary);
//! 2. an optional TOML file named by `ADLOOP_CONFIG_FILE`;
//! 3. environment variables `ADLOOP_<SECTION>__<KEY>` (`__` separates nesting levels);
//! 4. secrets from files: `ADLOOP_<SECTION>__<KEY>_FILE=/path` reads the value of `<section>.<key>` from
//!    that file (how Kubernetes and Secret Manager mount secrets).
//!
//! A bad or missing value fails loading with an error that names the key, and so does a key the service does
//! not read (a misspelt setting, or another service's), naming the variable or file that set it.

mod error;
mod layering;
mod secret;
mod sections;

pub use error::ConfigError;
pub use layering::{CONFIG_FILE_VARIABLE, EnvironmentVariables, load_settings};
pub use secret::Secret;
pub use sections::{DatabaseSettings, LogFormat, RedisSettings, ServerSettings, TelemetrySettings};
