//! The gateway's gRPC client for ml-service. Every call carries the current trace (W3C trace-context in
//! gRPC metadata), so a request traced at the gateway continues in ml-service.

use std::time::Duration;

use adloop_proto::ml::v1::ml_service_client::MlServiceClient;
use adloop_service_kit::google_id_token::IdTokens;
use adloop_service_kit::grpc_client::{GrpcEndpointSettings, grpc_endpoint};
use adloop_telemetry::propagation::TraceContextInterceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use adloop_service_kit::error::{ErrorCode, ServiceError};

use crate::settings::MlServiceClientSettings;

pub type TracedMlServiceClient = MlServiceClient<InterceptedService<Channel, MlCallInterceptor>>;

/// What every call to ml-service carries: the current trace, and where ml-service sits behind Cloud Run's
/// IAM, a Google-signed ID token of the gateway's service account.
#[derive(Clone, Debug)]
pub struct MlCallInterceptor {
    id_tokens: Option<IdTokens>,
}

impl tonic::service::Interceptor for MlCallInterceptor {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut request = TraceContextInterceptor.call(request)?;
        if let Some(id_tokens) = &self.id_tokens {
            id_tokens.attach(request.metadata_mut());
        }
        Ok(request)
    }
}

const ML_SERVICE_NAME: &str = "adloop.ml.v1.MlService";

pub use adloop_service_kit::grpc_client::GrpcEndpointError as InvalidEndpoint;

/// A connection to ml-service. Connects lazily, so the gateway starts (and reports itself not fully ready)
/// while ml-service is still starting.
#[derive(Clone)]
pub struct MlServiceConnection {
    channel: Channel,
    interceptor: MlCallInterceptor,
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
        // Cloud Run checks the token's audience against the called service's URL.
        let id_tokens = settings
            .google_id_token
            .then(|| IdTokens::start(&settings.google_metadata_url, &settings.endpoint));
        Ok(MlServiceConnection {
            channel,
            interceptor: MlCallInterceptor { id_tokens },
        })
    }

    pub fn client(&self) -> TracedMlServiceClient {
        MlServiceClient::with_interceptor(self.channel.clone(), self.interceptor.clone())
    }

    /// True when ml-service's gRPC health service reports `adloop.ml.v1.MlService` as serving.
    pub async fn is_serving(&self) -> bool {
        let mut health_client = HealthClient::with_interceptor(self.channel.clone(), self.interceptor.clone());
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
