//! Wiring: load the scenario, bind the listener, assemble the routes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use adloop_service_kit::serve::{BindError, BoundServer, ServeError};
use adloop_telemetry::http_middleware::traced_and_measured;
use adloop_telemetry::metrics::{HttpMetrics, Registry};

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
    server: BoundServer,
}

impl Application {
    pub async fn build(settings: MetaSimSettings) -> Result<Self, StartupError> {
        let server_settings = settings.server.clone();
        let sim = SimState::new(settings)?;
        let mut metrics_registry = Registry::with_prefix("meta_sim");
        let http_metrics = HttpMetrics::register(&mut metrics_registry);
        let sim = Arc::new(Mutex::new(sim));
        crate::world_keeper::spawn(Arc::downgrade(&sim));
        let state = AppState {
            sim,
            metrics_registry: Arc::new(metrics_registry),
        };
        let router = traced_and_measured(router(state), http_metrics);
        let server = BoundServer::bind(&server_settings, router).await?;
        Ok(Application { server })
    }

    pub fn local_address(&self) -> SocketAddr {
        self.server.local_address()
    }

    pub async fn run_until_stopped(self, stop: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        self.server.run_until_stopped(stop).await
    }
}
