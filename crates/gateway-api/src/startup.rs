//! Wiring: connect Postgres, prepare the ml-service client, bind the listener, assemble the routes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use adloop_service_kit::postgres::{DatabaseError, connect_for_serving};
use adloop_service_kit::serve::{BindError, BoundServer, ServeError};
use adloop_telemetry::http_middleware::traced_and_measured;
use adloop_telemetry::metrics::{HttpMetrics, Registry};

use crate::autopilot::cycle::CycleContext;
use crate::autopilot::metrics::AutopilotMetrics;
use crate::autopilot::service::{Scheduler, spawn_scheduler};
use crate::executor::metrics::ExecutorMetrics;
use adloop_service_kit::clock::Clock;

use crate::executor::graph_client::GraphClient;
use crate::executor::service::spawn_executor;
use crate::executor::worker::Executor;
use crate::ml_client::{InvalidEndpoint, MlServiceConnection};
use crate::relay_health::RelayHealthReader;
use crate::routes::{AppState, api_router};
use crate::settings::GatewaySettings;

/// gateway-api's migrations (its schema: the executor's queue and audit trail).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/gateway-api");

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error(transparent)]
    MlServiceEndpoint(#[from] InvalidEndpoint),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cannot build the Graph API client: {0}")]
    GraphClient(#[source] reqwest::Error),
    #[error("cannot build the relay health client: {0}")]
    RelayHealthClient(#[source] reqwest::Error),
}

/// A background task of the gateway and the signal that stops it.
type StoppableTask = (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>);

pub struct Application {
    server: BoundServer,
    executor: Option<StoppableTask>,
    autopilot: Option<StoppableTask>,
}

impl Application {
    pub async fn build(settings: GatewaySettings) -> Result<Self, StartupError> {
        let database_pool = connect_for_serving(&settings.database, &MIGRATOR).await?;
        let ml_service = MlServiceConnection::connect_lazily(&settings.ml_service)?;
        let mut metrics_registry = Registry::with_prefix("adloop_gateway");
        let http_metrics = HttpMetrics::register(&mut metrics_registry);
        let clock = Clock::new(settings.clock.source, &settings.graph.base_url);
        let executor = if settings.executor.enabled {
            let graph = GraphClient::new(settings.graph.clone()).map_err(StartupError::GraphClient)?;
            let worker_name = adloop_service_kit::instance::instance_name(crate::SERVICE_NAME);
            let executor = Executor::new(database_pool.clone(), graph, settings.executor.clone(), worker_name)
                .with_metrics(ExecutorMetrics::register(&mut metrics_registry))
                .with_clock(clock.clone());
            let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
            let task = spawn_executor(executor, database_pool.clone(), stop_receiver);
            Some((stop_sender, task))
        } else {
            None
        };
        let autopilot = if settings.autopilot.enabled {
            let scheduler = Scheduler {
                context: CycleContext {
                    pool: database_pool.clone(),
                    graph: GraphClient::new(settings.graph.clone()).map_err(StartupError::GraphClient)?,
                    ml_service: ml_service.clone(),
                    guardrail_defaults: settings.executor.guardrails.clone(),
                    settings: settings.autopilot.clone(),
                },
                clock: clock.clone(),
                runner: adloop_service_kit::instance::instance_name(crate::SERVICE_NAME),
                metrics: AutopilotMetrics::register(&mut metrics_registry),
            };
            let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
            Some((stop_sender, spawn_scheduler(scheduler, stop_receiver)))
        } else {
            None
        };
        let state = AppState {
            enqueue_jitter: settings.executor.enqueue_jitter,
            guardrail_defaults: settings.executor.guardrails.clone(),
            relay_health: RelayHealthReader::new(&settings.relay).map_err(StartupError::RelayHealthClient)?,
            database_pool,
            ml_service,
            metrics_registry: Arc::new(metrics_registry),
            open_recovery_plan_routes: settings.api_keys.open_recovery_plan_routes,
        };
        if settings.api_keys.open_recovery_plan_routes {
            tracing::warn!(
                "the recovery plan's routes answer requests without an API key (api_keys.open_recovery_plan_routes)"
            );
        }
        let router = traced_and_measured(api_router(state, settings.http_limits.clone()), http_metrics);
        let server = BoundServer::bind(&settings.server, router).await?;
        Ok(Application {
            server,
            executor,
            autopilot,
        })
    }

    pub fn local_address(&self) -> SocketAddr {
        self.server.local_address()
    }

    /// Serves until `stop` resolves, then drains in-flight requests, lets the autopilot finish its cycles and
    /// the executor its round.
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let served = self.server.run_until_stopped(stop).await;
        // The autopilot first: a cycle it finishes may still enqueue changes.
        for (stop_task, task) in [self.autopilot, self.executor].into_iter().flatten() {
            let _ = stop_task.send(true);
            let _ = task.await;
        }
        served
    }
}
