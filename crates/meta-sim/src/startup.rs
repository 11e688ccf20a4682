//! Wiring: load the scenario, bind the listener, assemble the routes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adloop_service_kit::serve::{BindError, ServeError, bind_listener, serve_until_stopped};
use adloop_telemetry::http_middleware::trace_and_measure_request;
use adloop_telemetry::metrics::{HttpMetrics, Registry};
use axum::Router;
use tokio::net::TcpListener;

use crate::routes::{AppState, router};
use crate::settings::MetaSimSettings;
use crate::state::{SimState, StateError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Bind(#[from] BindError),
}

pub struct Application {
    listener: TcpListener,
    local_address: SocketAddr,
    router: Router,
    shutdown_grace_period: Duration,
}

impl Application {
    pub async fn build(settings: MetaSimSettings) -> Result<Self, StartupError> {
        let shutdown_grace_period = Duration::from_secs(settings.server.shutdown_grace_seconds);
        let (listener, local_address) = bind_listener(&settings.server).await?;
        let sim = SimState::new(settings)?;
        let mut metrics_registry = Registry::with_prefix("meta_sim");
        let http_metrics = HttpMetrics::register(&mut metrics_registry);
        let state = AppState {
            sim: Arc::new(Mutex::new(sim)),
            metrics_registry: Arc::new(metrics_registry),
        };
        let router = router(state).layer(axum::middleware::from_fn_with_state(
            http_metrics,
            trace_and_measure_request,
        ));
        Ok(Application {
            listener,
            local_address,
            router,
            shutdown_grace_period,
        })
    }

    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    pub async fn run_until_stopped(self, stop: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        serve_until_stopped(self.listener, self.router, stop, self.shutdown_grace_period).await
    }
}
