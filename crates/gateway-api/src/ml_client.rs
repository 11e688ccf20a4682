//! The gateway's gRPC client for ml-service. Every call carries the current trace (W3C trace-context in
//! gRPC metadata), so a request traced at the gateway continues in ml-service.

use std::time::Duration;

use adloop_proto::ml::v1::ml_service_client::MlServiceClient;
use adloop_service_kit::grpc_client::{GrpcEndpointSettings, grpc_endpoint};
use adloop_telemetry::propagation::TraceContextInterceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use adloop_service_kit::error::{ErrorCode, ServiceError};

use crate::settings::MlServiceClientSettings;

pub type TracedMlServiceClient = MlServiceClient<InterceptedService<Channel, TraceContextInterceptor>>;

const ML_SERVICE_NAME: &str = "adloop.ml.v1.MlService";

pub use adloop_service_kit::grpc_client::GrpcEndpointError as InvalidEndpoint;

/// A connection to ml-service. Connects lazily, so the gateway starts (and reports itself not fully ready)
/// while ml-service is still starting.
#[derive(Clone)]
pub struct MlServiceConnection {
    channel: Channel,
}

impl MlServiceConnection {
    pub fn connect_lazily(settings: &MlServiceClientSettings) -> Result<Self, InvalidEndpoint> {
        let channel = grpc_endpoint(&GrpcEndpointSettings {
            url: &settings.endpoint,
            url_key: "ml_service.endpoint",
            ca_certificate_path: settings.ca_certificate_path.as_deref(),
            ca_certificate_key: "ml_service.ca_certificate_path",
            connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
            request_timeout: Duration::from_millis(settings.request_timeout_ms),
        })?
        .connect_lazy();
        Ok(MlServiceConnection { channel })
    }

    pub fn client(&self) -> TracedMlServiceClient {
        MlServiceClient::with_interceptor(self.channel.clone(), TraceContextInterceptor)
    }

    /// True when ml-service's gRPC health service reports `adloop.ml.v1.MlService` as serving.
    pub async fn is_serving(&self) -> bool {
        let mut health_client = HealthClient::new(self.channel.clone());
        let request = HealthCheckRequest {
            service: ML_SERVICE_NAME.to_owned(),
        };
        match health_client.check(request).await {
            Ok(response) => response.into_inner().status == ServingStatus::Serving as i32,
            Err(_) => false,
        }
    }
}

/// The API error for a failed ml-service call. tonic reports its own client-side timeout as CANCELLED;
/// for the gateway's callers that is a time-out (504), not a cancellation.
pub fn ml_service_call_failed(status: tonic::Status) -> ServiceError {
    let client_timeout_message = tonic::TimeoutExpired(()).to_string();
    if status.code() == tonic::Code::Cancelled && status.message() == client_timeout_message {
        return ServiceError::new(
            ErrorCode::Timeout,
            "ml-service did not answer in time (ml_service.request_timeout_ms)",
        );
    }
    ServiceError::from(status)
}
