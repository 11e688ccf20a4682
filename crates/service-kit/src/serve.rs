//! Serving a router (HTTP/1.1 and HTTP/2, so gRPC too) on an already-bound listener until a stop signal,
//! then draining in-flight requests for at most the grace period; over TLS when `server.tls_certificate_path`
//! and `server.tls_private_key_path` are set (rustls, ALPN h2 and http/1.1).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt as _;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;

/// Resolves on SIGTERM (Kubernetes, Cloud Run) or Ctrl-C.
pub async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate_signal) => {
                terminate_signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for sigterm, only ctrl-c stops the service");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!(signal = "sigint", "stop signal received"),
        () = terminate => tracing::info!(signal = "sigterm", "stop signal received"),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("in-flight requests did not finish within the {grace_seconds} s grace period")]
    DrainTimedOut { grace_seconds: u64 },
}

/// Serves `router` until `stop` resolves, then stops accepting and waits for in-flight requests to finish,
/// for at most `grace_period`.
pub async fn serve_until_stopped(
    listener: TcpListener,
    router: Router,
    stop: impl Future<Output = ()> + Send + 'static,
    grace_period: Duration,
) -> Result<(), ServeError> {
    let (stop_requested_sender, stop_requested) = tokio::sync::watch::channel(false);
    // TCP_NODELAY on every connection: a response written in more than one segment (headers, then body)
    // would otherwise wait for the client's delayed ACK, about 40 ms on Linux, whenever Nagle holds it back.
    let listener = listener.tap_io(|connection| {
        if let Err(error) = connection.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
    });
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        stop.await;
        let _ = stop_requested_sender.send(true);
    });
    let mut server_task = tokio::spawn(async move { server.await });

    let mut stop_requested = stop_requested;
    tokio::select! {
        finished = &mut server_task => return flatten_server_result(finished),
        _ = stop_requested.wait_for(|requested| *requested) => {}
    }
    tracing::info!(grace_seconds = grace_period.as_secs(), "draining in-flight requests");
    match tokio::time::timeout(grace_period, &mut server_task).await {
        Ok(finished) => flatten_server_result(finished),
        Err(_) => {
            server_task.abort();
            Err(ServeError::DrainTimedOut {
                grace_seconds: grace_period.as_secs(),
            })
        }
    }
}

fn flatten_server_result(finished: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), ServeError> {
    match finished {
        Ok(server_result) => Ok(server_result?),
        Err(join_error) => Err(ServeError::Io(std::io::Error::other(join_error))),
    }
}

/// Serves `router` over TLS until `stop` resolves, then lets in-flight requests finish for at most
/// `grace_period` (connections still open then are closed).
async fn serve_tls_until_stopped(
    listener: TcpListener,
    tls: RustlsConfig,
    router: Router,
    stop: impl Future<Output = ()> + Send + 'static,
    grace_period: Duration,
) -> Result<(), ServeError> {
    let handle = axum_server::Handle::new();
    let stop_handle = handle.clone();
    tokio::spawn(async move {
        stop.await;
        tracing::info!(grace_seconds = grace_period.as_secs(), "draining in-flight requests");
        stop_handle.graceful_shutdown(Some(grace_period));
    });
    axum_server::from_tcp_rustls(listener.into_std()?, tls)?
        .handle(handle)
        .serve(router.into_make_service())
        .await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(transparent)]
    Address(#[from] adloop_config::ConfigError),
    #[error(
        "cannot load the TLS certificate {certificate} and key {private_key} (server.tls_certificate_path, server.tls_private_key_path): {source}"
    )]
    Tls {
        certificate: String,
        private_key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot bind {address} (server.host, server.port): {source}")]
    Bind {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds the configured address and returns the listener with the address actually bound (port 0 in the
/// settings becomes a real port).
pub async fn bind_listener(
    settings: &adloop_config::ServerSettings,
) -> Result<(TcpListener, std::net::SocketAddr), BindError> {
    let requested_address = settings.socket_address()?;
    let bind_failed = |source| BindError::Bind {
        address: requested_address,
        source,
    };
    let listener = TcpListener::bind(requested_address).await.map_err(bind_failed)?;
    let local_address = listener.local_addr().map_err(bind_failed)?;
    Ok((listener, local_address))
}

/// A router on its bound listener, ready to serve: what every service's `Application` holds.
pub struct BoundServer {
    listener: TcpListener,
    local_address: std::net::SocketAddr,
    router: Router,
    shutdown_grace_period: Duration,
    tls: Option<RustlsConfig>,
}

impl BoundServer {
    /// Binds `settings`' address (port 0 picks a free one) for `router`.
    pub async fn bind(settings: &adloop_config::ServerSettings, router: Router) -> Result<BoundServer, BindError> {
        let tls = match settings.tls_files()? {
            None => None,
            Some((certificate, private_key)) => Some(
                RustlsConfig::from_pem_file(certificate, private_key)
                    .await
                    .map_err(|source| BindError::Tls {
                        certificate: certificate.to_owned(),
                        private_key: private_key.to_owned(),
                        source,
                    })?,
            ),
        };
        let (listener, local_address) = bind_listener(settings).await?;
        Ok(BoundServer {
            listener,
            local_address,
            router,
            shutdown_grace_period: Duration::from_secs(settings.shutdown_grace_seconds),
            tls,
        })
    }

    /// The address actually bound.
    pub fn local_address(&self) -> std::net::SocketAddr {
        self.local_address
    }

    /// Serves until `stop` resolves, then drains in-flight requests for at most the grace period.
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        match self.tls {
            None => serve_until_stopped(self.listener, self.router, stop, self.shutdown_grace_period).await,
            Some(tls) => {
                serve_tls_until_stopped(self.listener, tls, self.router, stop, self.shutdown_grace_period).await
            }
        }
    }
}
