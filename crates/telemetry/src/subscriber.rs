use std::sync::OnceLock;

use adloop_config::{LogFormat, TelemetrySettings};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid value for `telemetry.log_filter`: {0}")]
    InvalidLogFilter(#[from] tracing_subscriber::filter::ParseError),
    #[error("cannot build the OTLP exporter for OTEL_EXPORTER_OTLP_ENDPOINT: {0}")]
    OtlpExporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the tracer provider alive; call [`TelemetryGuard::shutdown`] at the end of `main` to flush spans.
pub struct TelemetryGuard {
    tracer_provider: SdkTracerProvider,
}

impl TelemetryGuard {
    /// Flushes buffered spans to the collector. Runs on the blocking pool: the exporter flush blocks.
    pub async fn shutdown(self) {
        let flush_result = tokio::task::spawn_blocking(move || self.tracer_provider.shutdown()).await;
        if let Ok(Err(error)) = flush_result {
            eprintln!("telemetry shutdown failed: {error}");
        }
    }
}

/// Installs the global subscriber: logs in the configured format, filtered by `telemetry.log_filter`, and an
/// OpenTelemetry layer so every span carries a W3C trace id. Spans are exported over OTLP (gRPC) only when
/// `otlp_endpoint` is given; without a collector the service keeps serving and only logs export errors.
pub fn init_telemetry(
    service_name: &'static str,
    settings: &TelemetrySettings,
    otlp_endpoint: Option<&str>,
) -> Result<TelemetryGuard, TelemetryError> {
    let tracer_provider = build_tracer_provider(service_name, otlp_endpoint)?;
    let tracer = tracer_provider.tracer(service_name);
    let filter = EnvFilter::try_new(&settings.log_filter)?;
    let otel_layer = tracing_opentelemetry::layer().with_tracer(tracer);
    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
    match settings.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
            )
            .try_init()?,
        LogFormat::Pretty => registry.with(tracing_subscriber::fmt::layer()).try_init()?,
    }
    Ok(TelemetryGuard { tracer_provider })
}

/// For test binaries: installs the subscriber once per process so spans carry trace ids. Logs go to the test
/// writer only when `TEST_LOG` is set.
pub fn init_telemetry_for_tests() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let tracer_provider = SdkTracerProvider::builder().build();
        let otel_layer = tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer("adloop-tests"));
        let log_filter = if std::env::var_os("TEST_LOG").is_some() {
            "info"
        } else {
            "off"
        };
        let fmt_layer = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(EnvFilter::new(log_filter));
        // Another test harness may have installed one already; spans then still flow through it.
        let _ = tracing_subscriber::registry()
            .with(otel_layer)
            .with(fmt_layer)
            .try_init();
    });
}

fn build_tracer_provider(
    service_name: &'static str,
    otlp_endpoint: Option<&str>,
) -> Result<SdkTracerProvider, TelemetryError> {
    let resource = Resource::builder().with_service_name(service_name).build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let Some(endpoint) = otlp_endpoint else {
        return Ok(builder.build());
    };
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    Ok(builder.with_batch_exporter(exporter).build())
}
