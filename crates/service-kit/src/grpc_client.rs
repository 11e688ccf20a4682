//! How adloop's services reach ml-service over gRPC: `http://` in a private network (plain HTTP/2), or
//! `https://` (Cloud Run, any TLS-terminated endpoint) verified against Mozilla's roots, or against the
//! operator's own CA when a `ca_certificate_path` is given (a private PKI, a test certificate).

use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum GrpcEndpointError {
    #[error("invalid value for `{key}`: {source}")]
    InvalidUrl {
        key: &'static str,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("cannot read the CA certificate {path} ({key}): {source}")]
    UnreadableCaCertificate {
        key: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid TLS settings for `{key}`: {source}")]
    Tls {
        key: &'static str,
        #[source]
        source: tonic::transport::Error,
    },
}

/// Where a gRPC client connects, and how.
pub struct GrpcEndpointSettings<'a> {
    /// `http://host:port` or `https://host[:port]`.
    pub url: &'a str,
    /// The settings key the URL came from, for error messages.
    pub url_key: &'static str,
    /// A PEM file of the CA that signed the server's certificate, instead of the public roots.
    pub ca_certificate_path: Option<&'a str>,
    pub ca_certificate_key: &'static str,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

/// The endpoint for `settings`, with TLS when the URL is https://.
pub fn grpc_endpoint(settings: &GrpcEndpointSettings) -> Result<Endpoint, GrpcEndpointError> {
    let endpoint = Endpoint::from_shared(settings.url.to_owned())
        .map_err(|source| GrpcEndpointError::InvalidUrl {
            key: settings.url_key,
            source,
        })?
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout);
    if !settings.url.starts_with("https://") {
        return Ok(endpoint);
    }
    let tls = match settings.ca_certificate_path {
        None => ClientTlsConfig::new().with_webpki_roots(),
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| GrpcEndpointError::UnreadableCaCertificate {
                key: settings.ca_certificate_key,
                path: path.to_owned(),
                source,
            })?;
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
        }
    };
    endpoint.tls_config(tls).map_err(|source| GrpcEndpointError::Tls {
        key: settings.url_key,
        source,
    })
}
