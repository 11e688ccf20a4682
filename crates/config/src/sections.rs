//! Settings sections every service shares. Each service composes these with its own sections.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::{ConfigError, Secret};

/// Where a service listens. Port 0 asks the OS for a free port (tests do this).
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// How long in-flight requests may take to finish after a stop signal.
    pub shutdown_grace_seconds: u64,
    /// Serve TLS with this certificate chain and private key (PEM files), e.g. a TLS-serving ml-service whose
    /// clients reach it at an https:// endpoint. Both or neither; without them the service speaks plain
    /// HTTP (behind a TLS-terminating load balancer or inside a private network).
    pub tls_certificate_path: Option<String>,
    pub tls_private_key_path: Option<String>,
}

impl ServerSettings {
    /// The TLS files when both are set; an error naming the missing one when only one is.
    pub fn tls_files(&self) -> Result<Option<(&str, &str)>, ConfigError> {
        match (&self.tls_certificate_path, &self.tls_private_key_path) {
            (None, None) => Ok(None),
            (Some(certificate), Some(private_key)) => Ok(Some((certificate, private_key))),
            (Some(_), None) => Err(ConfigError::rule_violated(
                "server.tls_private_key_path",
                "must be set with server.tls_certificate_path",
            )),
            (None, Some(_)) => Err(ConfigError::rule_violated(
                "server.tls_certificate_path",
                "must be set with server.tls_private_key_path",
            )),
        }
    }

    pub fn socket_address(&self) -> Result<SocketAddr, ConfigError> {
        format!("{}:{}", self.host, self.port)
            .parse()
            .map_err(|_| ConfigError::rule_violated("server.host", format!("`{}` is not an IP address", self.host)))
    }
}

/// A service's PostgreSQL connection. Each service owns one schema in the database and keeps its
/// migration history there.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host:port/database`; a secret because it may carry a password.
    pub url: Secret<String>,
    pub schema: String,
    pub max_connections: u32,
    pub connect_timeout_seconds: u64,
    /// Apply the service's migrations at start-up. Off where a separate step runs `<service> migrate`
    /// first; the service then only checks that every migration is in place.
    #[serde(default = "migrate_on_start_by_default")]
    pub migrate_on_start: bool,
}

fn migrate_on_start_by_default() -> bool {
    true
}

impl DatabaseSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::rule_violated(
                "database.url",
                "must start with postgres:// or postgresql://",
            ));
        }
        let schema_is_identifier = !self.schema.is_empty()
            && self.schema.len() <= 63
            && self
                .schema
                .starts_with(|first: char| first.is_ascii_lowercase() || first == '_')
            && self
                .schema
                .chars()
                .all(|character| character.is_ascii_lowercase() || character.is_ascii_digit() || character == '_');
        if !schema_is_identifier {
            return Err(ConfigError::rule_violated(
                "database.schema",
                format!(
                    "`{}` must be a lower-case SQL identifier of at most 63 characters",
                    self.schema
                ),
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::rule_violated(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// The shared Redis (score cache). A secret because the URL may carry a password.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: Secret<String>,
    pub pool_size: usize,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    /// An `EnvFilter` directive such as `info,sqlx=warn`.
    pub log_filter: String,
}
