//! ml-service's memory with its pattern stores filled to their capacity (`learner-memory`): the release
//! binary as shipped on a fresh database of the dev stack's Postgres, three accounts sharing their patterns,
//! every feature pattern (and, with embeddings on, every embedded pattern) the stores hold sent through
//! `RecordEvent`, then the
//! background work that follows a fill — the approximate (HNSW) index over the feature patterns and a
//! learner snapshot — waited for, with the process's resident memory sampled throughout. The figure to hold
//! against is the pod's limit in `deploy/kubernetes/base/ml-service.yaml`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use adloop_proto::ml::v1 as proto;
use adloop_proto::ml::v1::ml_service_client::MlServiceClient;

use crate::memory::{resident_mebibytes, sample_until_stopped};
use crate::processes::{ProcessError, ServiceProcess, on_fresh_database, pairs};

const SHARING_ACCOUNTS: [&str; 3] = ["act_memory_1", "act_memory_2", "act_memory_3"];
const FEATURE_VOCABULARY: usize = 60;
/// Events per `RecordEvent`: a thousand feature events, or a hundred with embeddings (400 KiB).
const FEATURE_EVENTS_PER_REQUEST: usize = 1_000;
const EMBEDDED_EVENTS_PER_REQUEST: usize = 100;
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum LearnerMemoryError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot reach ml-service: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("RecordEvent failed: {0}")]
    Record(#[from] tonic::Status),
}

#[derive(Debug, Clone)]
pub struct LearnerMemoryPlan {
    pub binaries_dir: PathBuf,
    /// Feature patterns to send (the store holds 200,000 by default).
    pub feature_patterns: usize,
    /// `cross_learner.embedding_dimensions` (0, as shipped: no embeddings, no embedded patterns).
    pub embedding_dimensions: usize,
    /// Embedded patterns to send when embeddings are on (the store holds 20,000 by default).
    pub embedded_patterns: usize,
    /// How long to wait for the approximate index and a snapshot after the fill.
    pub settle: Duration,
}

/// Resident memory (MiB) at each step, and the peak over the whole run.
#[derive(Debug, Default)]
pub struct LearnerMemoryFigures {
    pub started: f64,
    pub after_feature_patterns: f64,
    pub after_embedded_patterns: f64,
    pub after_settling: f64,
    pub peak: f64,
    /// The feature patterns sent are enough for the store to build its approximate index.
    pub index_expected: bool,
    pub index_built: bool,
    pub snapshot_bytes: Option<i64>,
    pub fill_seconds: f64,
    /// Events in the learning log after the fill (three per pattern: none may be a duplicate).
    pub logged_events: i64,
    /// Embedded patterns sent (none while embeddings are off).
    pub embedded_patterns: usize,
}

/// ml-service's settings as it ships them (its compiled defaults; the database URL, which has none, is a
/// placeholder never connected to).
pub fn shipped_settings() -> ml_service::settings::MlServiceSettings {
    let environment = adloop_config::EnvironmentVariables::from_pairs([("ADLOOP_DATABASE__URL", "postgres://unused")]);
    ml_service::settings::MlServiceSettings::load(&environment).expect("ml-service's compiled defaults load")
}

pub async fn run(plan: &LearnerMemoryPlan) -> Result<LearnerMemoryFigures, LearnerMemoryError> {
    on_fresh_database("learner-memory", async |database| run_on(plan, database).await).await
}

async fn run_on(
    plan: &LearnerMemoryPlan,
    database: &adloop_test_support::TestDatabase,
) -> Result<LearnerMemoryFigures, LearnerMemoryError> {
    let redis_url = adloop_test_support::redis_url();
    let embedding_dimensions = plan.embedding_dimensions.to_string();
    let embedded_patterns = if plan.embedding_dimensions > 0 {
        plan.embedded_patterns
    } else {
        0
    };
    let ml_service = ServiceProcess::start(
        &plan.binaries_dir,
        "ml-service",
        &pairs(&[
            ("ADLOOP_DATABASE__URL", &database.url),
            ("ADLOOP_REDIS__URL", &redis_url),
            ("ADLOOP_TELEMETRY__LOG_FILTER", "info"),
            ("ADLOOP_CROSS_LEARNER__EMBEDDING_DIMENSIONS", &embedding_dimensions),
        ]),
    )?;
    let pool = sqlx::PgPool::connect(&database.url).await?;
    for account in SHARING_ACCOUNTS {
        sqlx::query("INSERT INTO ml.pattern_sharing_accounts (account_id, shares) VALUES ($1, true)")
            .bind(account)
            .execute(&pool)
            .await?;
    }
    let mut client = MlServiceClient::connect(ml_service.base_url())
        .await?
        .max_encoding_message_size(64 << 20);
    let pid = ml_service.id();
    let resident_now = || resident_mebibytes(pid).unwrap_or(0.0);
    let (stop_sampling, sampling_stopped) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(sample_until_stopped(vec![pid], SAMPLE_EVERY, sampling_stopped));
    let mut figures = LearnerMemoryFigures {
        started: resident_now(),
        ..LearnerMemoryFigures::default()
    };

    let fill_started = Instant::now();
    eprintln!(
        "learner-memory: {} feature patterns from three accounts…",
        plan.feature_patterns
    );
    let mut combinations = adloop_test_support::four_feature_creatives(FEATURE_VOCABULARY);
    let mut sent = 0;
    while sent < plan.feature_patterns {
        let batch: Vec<[String; 4]> = combinations
            .by_ref()
            .take(FEATURE_EVENTS_PER_REQUEST / SHARING_ACCOUNTS.len())
            .take(plan.feature_patterns - sent)
            .collect();
        if batch.is_empty() {
            break;
        }
        sent += batch.len();
        let events = batch
            .iter()
            .flat_map(|names| SHARING_ACCOUNTS.map(|account| feature_event(account, names, None)))
            .collect();
        client.record_event(proto::RecordEventRequest { events }).await?;
    }
    figures.after_feature_patterns = resident_now();

    eprintln!(
        "learner-memory: {embedded_patterns} embedded patterns of {} dimensions…",
        plan.embedding_dimensions
    );
    let names = [
        "has_face".to_owned(),
        "has_number".to_owned(),
        "has_question".to_owned(),
        "has_pain_point".to_owned(),
    ];
    for first in (0..embedded_patterns).step_by(EMBEDDED_EVENTS_PER_REQUEST / SHARING_ACCOUNTS.len()) {
        let last = (first + EMBEDDED_EVENTS_PER_REQUEST / SHARING_ACCOUNTS.len()).min(embedded_patterns);
        let events = (first..last)
            .flat_map(|pattern| {
                let embedding = embedding(pattern, plan.embedding_dimensions);
                SHARING_ACCOUNTS.map(|account| feature_event(account, &names, Some((pattern, embedding.clone()))))
            })
            .collect();
        client.record_event(proto::RecordEventRequest { events }).await?;
    }
    figures.after_embedded_patterns = resident_now();
    figures.logged_events = sqlx::query_scalar("SELECT count(*) FROM ml.learning_events")
        .fetch_one(&pool)
        .await?;
    figures.fill_seconds = fill_started.elapsed().as_secs_f64();
    figures.embedded_patterns = embedded_patterns;

    eprintln!("learner-memory: waiting for the approximate index and a snapshot…");
    let settle_until = Instant::now() + plan.settle;
    // The snapshot to wait for covers the whole fill but for less than one snapshot interval: ml-service
    // takes none until that many more events arrive, and none come after the fill.
    let shipped = shipped_settings();
    let snapshot_every_events = shipped.learning.snapshot_every_events;
    // The store builds its approximate index from so many patterns on.
    figures.index_expected = plan.feature_patterns >= shipped.cross_learner.store.approximate.above_patterns;
    let last_seq: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM ml.learning_events")
        .fetch_one(&pool)
        .await?;
    let covering_from = last_seq - snapshot_every_events + 1;
    while Instant::now() < settle_until {
        figures.index_built = index_patterns(&ml_service.base_url()).await > 0.0;
        figures.snapshot_bytes = sqlx::query_scalar(
            "SELECT total_bytes FROM ml.learner_state_snapshots WHERE through_seq >= $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(covering_from)
        .fetch_optional(&pool)
        .await?;
        if (figures.index_built || !figures.index_expected) && figures.snapshot_bytes.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    figures.after_settling = resident_now();
    let _ = stop_sampling.send(true);
    let traces = sampler.await.unwrap_or_default();
    figures.peak = traces
        .iter()
        .map(|trace| trace.peak())
        .fold(figures.after_settling, f64::max);
    pool.close().await;
    drop(ml_service);
    Ok(figures)
}

/// One delivery of pattern `pattern` (its features' names, or the number of its embedding) in `account`.
fn feature_event(account: &str, names: &[String; 4], embedding: Option<(usize, Vec<f32>)>) -> proto::LearningEvent {
    let pattern = match &embedding {
        Some((number, _)) => format!("embedded-{number}"),
        None => names.join("+"),
    };
    proto::LearningEvent {
        event_id: format!("memory-{account}-{pattern}"),
        ids: Some(proto::AdIds {
            account_id: account.to_owned(),
            ad_id: format!("{account}-{pattern}"),
            ..proto::AdIds::default()
        }),
        creative_features: names.iter().map(|name| (name.clone(), 1.0)).collect(),
        impressions: 1_000.0,
        clicks: 12.0,
        matured_clicks: 10.0,
        conversions: 1.0,
        creative_embedding: embedding.map(|(_, values)| values).unwrap_or_default(),
        ..proto::LearningEvent::default()
    }
}

/// A deterministic embedding per pattern, different for every pattern: uniform in [-0.5, 0.5) from a
/// SplitMix64 stream seeded by the pattern's number.
fn embedding(pattern: usize, dimensions: usize) -> Vec<f32> {
    let mut state = (pattern as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..dimensions)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut mixed = state;
            mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            mixed ^= mixed >> 31;
            (mixed >> 40) as f32 / (1_u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// Patterns the approximate index covers, from ml-service's `/metrics` (0 while searches are exact).
async fn index_patterns(base_url: &str) -> f64 {
    let Ok(response) = reqwest::get(format!("{base_url}/metrics")).await else {
        return 0.0;
    };
    let text = response.text().await.unwrap_or_default();
    adloop_telemetry::metrics::sample_value(&text, "adloop_ml_pattern_index_patterns").unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_pattern_sent_is_a_different_pattern() {
        let feature_sets: HashSet<[String; 4]> = adloop_test_support::four_feature_creatives(FEATURE_VOCABULARY)
            .take(200_000)
            .collect();
        assert_eq!(
            feature_sets.len(),
            200_000,
            "the feature store's capacity in distinct creatives"
        );
        let embeddings: HashSet<Vec<u32>> = (0..20_000)
            .map(|pattern| embedding(pattern, 16).iter().map(|value| value.to_bits()).collect())
            .collect();
        assert_eq!(
            embeddings.len(),
            20_000,
            "the embedded store's capacity in distinct embeddings"
        );
        let names = ["a".to_owned(), "b".to_owned(), "c".to_owned(), "d".to_owned()];
        let first = feature_event("act_1", &names, Some((1, embedding(1, 4))));
        let second = feature_event("act_1", &names, Some((2, embedding(2, 4))));
        assert_ne!(
            first.event_id, second.event_id,
            "two embedded patterns are two events, not a duplicate"
        );
    }
}
