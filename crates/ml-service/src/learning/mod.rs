//! The instant learner in ml-service: an event-sourced model every replica agrees on.
//!
//! `RecordEvent` checks a batch, then under the log's writer lock (one Postgres advisory lock) catches this
//! replica up, appends the batch and commits; only then does it apply the batch from the log and answer, so
//! an acknowledged event is durable and the next prediction here already reflects it. Other replicas apply
//! the same log in the same order (a background catch-up, and before every read), so all hold bit-identical
//! weights. A restart loads the newest snapshot and replays the log after it.

mod log;
pub mod state;
pub mod validate;

pub use log::{decode as decode_snapshot, encode as encode_snapshot};

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adloop_cross_learner::{
    CrossPriorConfig, PatternQuerySettings, StoreConfig, creative_searches, embedding_vector, feature_vector,
    similar_patterns,
};
use adloop_learner::{AppliedUpdate, InstantLearner, LearnerConfig};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{Mutex, watch};

pub use adloop_cross_learner::{CROSS_LEARNER_SOURCE, SimilarPatterns, pattern_id};
pub use state::LearningState;
pub use validate::{AcceptedEvent, EventRules, Refusal, accept_events};

/// The cross-learner's settings (`[cross_learner]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrossLearnerSettings {
    /// Give every ad with creative features in a sharing account the cross-learner's prior in Allocate.
    pub priors_in_allocations: bool,
    /// Length of the hashed feature vectors patterns are compared by.
    pub feature_dimensions: usize,
    /// Similar patterns a prior is made from.
    pub top_k: usize,
    /// The length of the clients' creative embeddings; 0 refuses embeddings.
    pub embedding_dimensions: usize,
    /// The most patterns the store of embedded patterns holds (each is `embedding_dimensions` floats).
    pub max_embedded_patterns: usize,
    pub store: StoreConfig,
    pub prior: CrossPriorConfig,
}

impl Default for CrossLearnerSettings {
    fn default() -> Self {
        CrossLearnerSettings {
            priors_in_allocations: true,
            feature_dimensions: 64,
            top_k: 5,
            embedding_dimensions: 0,
            max_embedded_patterns: 20_000,
            store: StoreConfig::default(),
            prior: CrossPriorConfig::default(),
        }
    }
}

/// What a similar-pattern search compares: a creative's features, or the client's embedding of it.
pub enum PatternQuery {
    Features(adloop_learner::EncodedFeatures),
    Embedding(Vec<f32>),
}

impl CrossLearnerSettings {
    /// The store of embedded patterns: the feature store's rules, its own capacity.
    pub fn embedded_store(&self) -> StoreConfig {
        StoreConfig {
            max_patterns: self.max_embedded_patterns,
            ..self.store.clone()
        }
    }

    /// How patterns are found and turned into priors, in the library's terms.
    pub fn query_settings(&self) -> PatternQuerySettings {
        PatternQuerySettings {
            feature_dimensions: self.feature_dimensions,
            top_k: self.top_k,
            prior: self.prior.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct LearningSettings {
    /// The most events one `RecordEvent` may carry.
    pub max_events_per_request: usize,
    /// A snapshot after this many events (a restart replays at most this many, or what arrived within
    /// `snapshot_min_interval_seconds`).
    pub snapshot_every_events: i64,
    /// At most one snapshot in this many seconds: one of full pattern stores takes a quarter of a second to
    /// encode, during which this replica's learning, and the learned priors its allocations add, wait.
    pub snapshot_min_interval_seconds: u64,
    /// How often a replica applies events other replicas appended (reads catch up first anyway).
    pub catch_up_interval_milliseconds: u64,
    /// Give every ad with creative features the instant learner's prior in Allocate and Score.
    pub priors_in_allocations: bool,
    /// An event of an ad created more than this many hours before it teaches the CTR head nothing of its
    /// impressions and clicks (`adloop_learner::DEFAULT_CTR_LEARNING_MAX_AD_AGE_HOURS`, the default, says why);
    /// events that do not say when their ad was created count as a new ad's.
    pub ctr_learning_max_ad_age_hours: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum LearningError {
    #[error("the learning log is unavailable: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the stored learner snapshot cannot be read: {0}")]
    Snapshot(#[from] postcard::Error),
}

/// What recording a batch did, event by event in request order.
pub struct RecordedBatch {
    pub outcomes: Vec<EventOutcome>,
    /// The log position now applied (the model version).
    pub applied_through: i64,
    /// Events applied in all (duplicates never reach the log).
    pub events_applied: u64,
}

pub struct EventOutcome {
    pub event_id: String,
    pub duplicate: bool,
    pub applied: AppliedUpdate,
}

struct AppliedState {
    state: LearningState,
    /// The log is applied up to and including this seq.
    applied_through: i64,
    snapshot_through: i64,
    last_snapshot_at: Option<Instant>,
}

#[derive(Clone)]
pub struct LearningMetrics {
    events_applied: Counter,
    duplicates: Counter,
    ctr_trials_withheld: Counter,
    drifts: Counter,
    log_position: Gauge,
    approximate_index_patterns: Gauge,
}

impl LearningMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = LearningMetrics {
            events_applied: Counter::default(),
            duplicates: Counter::default(),
            ctr_trials_withheld: Counter::default(),
            drifts: Counter::default(),
            log_position: Gauge::default(),
            approximate_index_patterns: Gauge::default(),
        };
        registry.register(
            "learner_events_applied",
            "Learning events this replica applied from the log",
            metrics.events_applied.clone(),
        );
        registry.register(
            "learner_duplicate_events",
            "Learning events refused as already recorded (same event id)",
            metrics.duplicates.clone(),
        );
        registry.register(
            "learner_ctr_trials_withheld",
            "Recorded learning events whose impressions and clicks the CTR head did not learn: their ad was older than learning.ctr_learning_max_ad_age_hours",
            metrics.ctr_trials_withheld.clone(),
        );
        registry.register(
            "learner_drifts_detected",
            "Abrupt changes the learner's drift test detected on this replica",
            metrics.drifts.clone(),
        );
        registry.register(
            "learner_log_position",
            "The last learning-log sequence number this replica has applied",
            metrics.log_position.clone(),
        );
        registry.register(
            "pattern_index_patterns",
            "Patterns the cross-learner's approximate (HNSW) index covers (0 while searches are exact)",
            metrics.approximate_index_patterns.clone(),
        );
        metrics
    }
}

pub struct LearningService {
    pool: PgPool,
    settings: LearningSettings,
    cross_learner: CrossLearnerSettings,
    config_fingerprint: String,
    max_features: usize,
    state: Arc<Mutex<AppliedState>>,
    metrics: LearningMetrics,
}

impl LearningService {
    /// Loads the newest snapshot taken under the same constants and replays the log after it.
    pub async fn start(
        pool: PgPool,
        config: LearnerConfig,
        settings: LearningSettings,
        cross_learner: CrossLearnerSettings,
        metrics: LearningMetrics,
    ) -> Result<Arc<Self>, LearningError> {
        // Snapshots hold the learner and the pattern store: one taken under other constants is not reused.
        let config_fingerprint = format!(
            "learner {} patterns {} {:?} embedded {} state v4 postcard",
            config.fingerprint(),
            cross_learner.feature_dimensions,
            cross_learner.store,
            cross_learner.max_embedded_patterns
        );
        let max_features = config.max_features_per_event;
        let (state, applied_through) = match log::newest_snapshot(&pool, &config_fingerprint).await? {
            Some((through_seq, state)) => (log::decode(&state)?, through_seq),
            None => (LearningState::new(InstantLearner::new(config), &cross_learner), 0),
        };
        let service = Arc::new(LearningService {
            pool,
            settings,
            cross_learner,
            config_fingerprint,
            max_features,
            state: Arc::new(Mutex::new(AppliedState {
                state,
                applied_through,
                snapshot_through: applied_through,
                last_snapshot_at: None,
            })),
            metrics,
        });
        let replayed = service.catch_up().await?;
        tracing::info!(
            from_snapshot_through = applied_through,
            replayed,
            "instant learner ready"
        );
        Ok(service)
    }

    pub fn settings(&self) -> &LearningSettings {
        &self.settings
    }

    pub fn max_features_per_event(&self) -> usize {
        self.max_features
    }

    /// What `RecordEvent`'s events are held to.
    pub fn event_rules(&self) -> EventRules {
        EventRules {
            max_events: self.settings.max_events_per_request,
            max_features: self.max_features,
            embedding_dimensions: self.cross_learner_settings().embedding_dimensions,
            ctr_learning_max_ad_age_hours: self.settings.ctr_learning_max_ad_age_hours,
        }
    }

    /// Commits the batch to the log (duplicates skipped), applies it, and says what each event did.
    pub async fn record(&self, mut events: Vec<AcceptedEvent>) -> Result<RecordedBatch, LearningError> {
        let mut state = self.state.lock().await;
        let mut transaction = self.pool.begin().await?;
        log::lock_log_for_writing(&mut transaction).await?;
        self.apply_new_events(&mut transaction, &mut state, None).await?;
        log::resolve_features(&mut transaction, &mut events).await?;
        let appended = log::append(&mut transaction, &events).await?;
        transaction.commit().await?;

        let mut outcomes_by_event = HashMap::with_capacity(appended.len());
        let mut connection = self.pool.acquire().await?;
        self.apply_new_events(&mut connection, &mut state, Some(&mut outcomes_by_event))
            .await?;
        let duplicates = events.len() - appended.len();
        self.metrics.duplicates.inc_by(duplicates as u64);
        let withheld_ids: std::collections::HashSet<&str> = events
            .iter()
            .filter(|event| event.ctr_trials_withheld)
            .map(|event| event.event_id.as_str())
            .collect();
        let withheld = appended.iter().filter(|id| withheld_ids.contains(id.as_str())).count();
        self.metrics.ctr_trials_withheld.inc_by(withheld as u64);
        let outcomes = events
            .iter()
            .map(|event| match outcomes_by_event.remove(&event.event_id) {
                Some(applied) => EventOutcome {
                    event_id: event.event_id.clone(),
                    duplicate: false,
                    applied,
                },
                None => {
                    let (features, account_id) = (&event.update.features, &event.update.account_id);
                    let ctr = state.state.learner.predict_ctr(features, account_id);
                    let conversion_rate = state.state.learner.predict_conversions_per_click(features, account_id);
                    EventOutcome {
                        event_id: event.event_id.clone(),
                        duplicate: true,
                        applied: AppliedUpdate {
                            ctr_before: ctr,
                            ctr_after: ctr,
                            conversion_rate_before: conversion_rate,
                            conversion_rate_after: conversion_rate,
                            drift_detected: false,
                        },
                    }
                }
            })
            .collect();
        let applied_through = state.applied_through;
        let events_applied = state.state.learner.updates_applied();
        Ok(RecordedBatch {
            outcomes,
            applied_through,
            events_applied,
        })
    }

    /// Applies whatever other replicas appended; returns how many events that was.
    pub async fn catch_up(&self) -> Result<u64, LearningError> {
        let mut state = self.state.lock().await;
        let mut connection = self.pool.acquire().await?;
        self.follow_sharing_changes(&mut connection, &mut state).await?;
        let applied = self.apply_new_events(&mut connection, &mut state, None).await?;
        Ok(applied)
    }

    /// Adds the instant learner's prior to every ad with creative features that has none from it yet, as the
    /// learner stands now (the background catch-up keeps it within `catch_up_interval_milliseconds` of the
    /// log; an allocation does not wait for the database).
    pub async fn add_priors(&self, request: &mut adloop_allocator::AllocationRequest) {
        let state = self.state.lock().await;
        adloop_learner::add_instant_learner_priors(&state.state.learner, request);
    }

    /// Runs `read` on the learner after catching up with the log (a read reflects every committed event).
    pub async fn read<T>(&self, read: impl FnOnce(&InstantLearner, i64) -> T) -> Result<T, LearningError> {
        self.catch_up().await?;
        let state = self.state.lock().await;
        Ok(read(&state.state.learner, state.applied_through))
    }

    async fn apply_new_events(
        &self,
        connection: &mut PgConnection,
        state: &mut AppliedState,
        mut outcomes: Option<&mut HashMap<String, AppliedUpdate>>,
    ) -> Result<u64, LearningError> {
        let mut applied_count = 0;
        loop {
            let page = log::events_after(connection, state.applied_through, i64::MAX).await?;
            let page_length = page.len() as i64;
            let page_outcomes = outcomes.as_deref_mut();
            applied_count += off_the_runtime_if_long(page.len(), || self.apply_page(state, page, page_outcomes));
            if page_length < log::CATCH_UP_PAGE {
                break;
            }
        }
        self.metrics.events_applied.inc_by(applied_count);
        self.metrics.log_position.set(state.applied_through);
        Ok(applied_count)
    }

    /// Applies one page of the log in order; returns how many events that was.
    fn apply_page(
        &self,
        state: &mut AppliedState,
        page: Vec<log::LoggedEvent>,
        mut outcomes: Option<&mut HashMap<String, AppliedUpdate>>,
    ) -> u64 {
        let applied_count = page.len() as u64;
        for event in page {
            let applied = state.state.apply(&event.update, event.embedding.as_deref());
            state.applied_through = event.seq;
            if applied.drift_detected {
                self.metrics.drifts.inc();
                tracing::info!(
                    seq = event.seq,
                    "learner detected an abrupt change and learns fast again"
                );
            }
            if let Some(outcomes) = outcomes.as_deref_mut() {
                outcomes.insert(event.event_id, applied);
            }
        }
        applied_count
    }

    /// When the sharing accounts changed, rebuilds the pattern store from the log applied so far (an account
    /// that stops sharing leaves no trace; one that starts brings its history).
    async fn follow_sharing_changes(
        &self,
        connection: &mut PgConnection,
        state: &mut AppliedState,
    ) -> Result<(), LearningError> {
        let sharing: BTreeSet<String> = log::sharing_accounts(connection).await?.into_iter().collect();
        if sharing == state.state.sharing_accounts {
            return Ok(());
        }
        tracing::info!(
            sharing_accounts = sharing.len(),
            "sharing accounts changed: rebuilding the pattern store"
        );
        state.state.reset_patterns(sharing, &self.cross_learner);
        self.metrics.approximate_index_patterns.set(0);
        let mut replayed_through = 0;
        loop {
            let page = log::events_after(connection, replayed_through, state.applied_through).await?;
            let page_length = page.len() as i64;
            replayed_through = off_the_runtime_if_long(page.len(), || {
                for event in &page {
                    state.state.add_to_patterns(&event.update, event.embedding.as_deref());
                }
                page.last().map_or(replayed_through, |event| event.seq)
            });
            if page_length < log::CATCH_UP_PAGE {
                break;
            }
        }
        // The next snapshot records the new store.
        state.snapshot_through = state
            .snapshot_through
            .min(state.applied_through - self.settings.snapshot_every_events);
        Ok(())
    }

    /// The `top_k` patterns most similar to `query` that other accounts shared, and the prior they make,
    /// for `account_id` (which must share to receive).
    pub async fn similar_patterns(
        &self,
        query: &PatternQuery,
        account_id: &str,
        top_k: usize,
    ) -> Result<SimilarPatterns, LearningError> {
        self.catch_up().await?;
        let state = self.state.lock().await;
        let (store, vector) = match query {
            PatternQuery::Features(features) => (
                &state.state.patterns,
                feature_vector(features, self.cross_learner.feature_dimensions),
            ),
            PatternQuery::Embedding(values) => (&state.state.embedded_patterns, embedding_vector(values).ok()),
        };
        let search = || {
            similar_patterns(
                store,
                &state.state.sharing_accounts,
                vector.as_ref(),
                account_id,
                top_k,
                &self.cross_learner.prior,
            )
        };
        Ok(off_the_runtime_if(
            store.pattern_count() > PATTERNS_SEARCHED_ON_THE_RUNTIME,
            search,
        ))
    }

    /// Adds the cross-learner's prior to every ad with creative features in a sharing account that has none
    /// from it yet.
    pub async fn add_cross_learner_priors(&self, request: &mut adloop_allocator::AllocationRequest) {
        let settings = self.cross_learner.query_settings();
        let searches = {
            let state = self.state.lock().await;
            creative_searches(&state.state.sharing_accounts, request, &settings, self.max_features)
        };
        // The lock is taken for one search at a time, so events wait at most one search (a few milliseconds
        // at the exact scan's bound), not a whole request's.
        for search in searches {
            let prior = {
                let state = self.state.lock().await;
                let store = &state.state.patterns;
                off_the_runtime_if(store.pattern_count() > PATTERNS_SEARCHED_ON_THE_RUNTIME, || {
                    search.run(store, &state.state.sharing_accounts, &settings).prior
                })
            };
            search.give_prior(request, prior);
        }
    }

    pub async fn set_sharing(&self, account_id: &str, shares: bool) -> Result<(), LearningError> {
        log::set_sharing(&self.pool, account_id, shares).await?;
        // This replica follows at once (others at their next catch-up).
        self.catch_up().await?;
        Ok(())
    }

    pub async fn shares(&self, account_id: &str) -> Result<bool, LearningError> {
        Ok(log::shares(&self.pool, account_id).await?)
    }

    /// Builds the pattern store's approximate index when it has grown enough to want one: the vectors are
    /// copied under the lock, the index is built on the blocking pool without it (minutes for a million
    /// patterns) and installed if the store was not rebuilt meanwhile.
    pub async fn maintain_approximate_index(&self) {
        let (inputs, generation) = {
            let state = self.state.lock().await;
            if !state.state.patterns.wants_approximate_index() {
                return;
            }
            (
                state.state.patterns.approximate_index_inputs(),
                state.state.pattern_store_generation,
            )
        };
        let Some(inputs) = inputs else {
            return;
        };
        let patterns = inputs.pattern_count();
        tracing::info!(patterns, "building the pattern store's approximate index");
        let built =
            tokio::task::spawn_blocking(move || adloop_cross_learner::ApproximateIndex::build_from(inputs)).await;
        let Ok(index) = built else {
            tracing::warn!("building the approximate index failed; searches stay exact");
            return;
        };
        let mut state = self.state.lock().await;
        if state.state.pattern_store_generation == generation {
            state.state.patterns.install_approximate_index(index);
            self.metrics.approximate_index_patterns.set(patterns as i64);
            tracing::info!(patterns, "approximate index installed");
        }
    }

    pub fn cross_learner_settings(&self) -> &CrossLearnerSettings {
        &self.cross_learner
    }

    /// Takes a snapshot when one is due (`snapshot_every_events` applied since the last, and not within
    /// `snapshot_min_interval_seconds` of it). The background loop calls it, never a request: the state is
    /// encoded on a blocking thread while this replica's learning and learned priors wait (the runtime does
    /// not), then stored in parts. A snapshot that cannot be taken is logged; the log still has everything.
    pub async fn snapshot_if_due(&self) {
        let state = self.state.clone().lock_owned().await;
        let min_interval = Duration::from_secs(self.settings.snapshot_min_interval_seconds);
        let enough_events = state.applied_through - state.snapshot_through >= self.settings.snapshot_every_events;
        let long_enough = state
            .last_snapshot_at
            .is_none_or(|taken| taken.elapsed() >= min_interval);
        if !(enough_events && long_enough) {
            return;
        }
        let started = Instant::now();
        let encoded = tokio::task::spawn_blocking(move || {
            let mut state = state;
            state.snapshot_through = state.applied_through;
            state.last_snapshot_at = Some(Instant::now());
            (state.applied_through, log::encode(&state.state))
        })
        .await;
        let (through_seq, bytes) = match encoded {
            Ok((through_seq, Ok(bytes))) => (through_seq, bytes),
            Ok((through_seq, Err(error))) => {
                tracing::warn!(%error, through_seq, "cannot encode the learner for a snapshot; the log still has everything");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "the snapshot's encoding task failed; the log still has everything");
                return;
            }
        };
        let encoded_in = started.elapsed();
        match log::save_snapshot(&self.pool, &self.config_fingerprint, through_seq, &bytes).await {
            Ok(()) => tracing::info!(
                through_seq,
                bytes = bytes.len(),
                encode_milliseconds = encoded_in.as_millis() as u64,
                total_milliseconds = started.elapsed().as_millis() as u64,
                "learner snapshot saved"
            ),
            Err(error) => {
                tracing::warn!(%error, through_seq, "cannot save a learner snapshot; the log still has everything")
            }
        }
    }
}

/// Pages of the log longer than this are applied off the async runtime: applying an event takes a few
/// microseconds, so this many stay within the half millisecond a task may hold a runtime thread.
const EVENTS_APPLIED_ON_THE_RUNTIME: usize = 100;

/// Searches over more patterns than this (a 64-dimension comparison takes tens of nanoseconds) leave the
/// async runtime, as long pages of events do: an exact search of the store at its exact-scan bound takes
/// about 5 ms.
const PATTERNS_SEARCHED_ON_THE_RUNTIME: usize = 10_000;

/// Runs `work` (applying `events` events) where it does not stall other requests: on the runtime's own
/// thread for a few events, otherwise off it ([`off_the_runtime_if`]).
fn off_the_runtime_if_long<T>(events: usize, work: impl FnOnce() -> T) -> T {
    off_the_runtime_if(events > EVENTS_APPLIED_ON_THE_RUNTIME, work)
}

/// Runs `work` on the runtime's own thread unless it is `long`; long work runs as blocking work the runtime
/// moves its other tasks away from (`block_in_place`; a single-threaded runtime has nowhere to move them, so
/// it runs there too).
fn off_the_runtime_if<T>(long: bool, work: impl FnOnce() -> T) -> T {
    let multi_threaded = tokio::runtime::Handle::try_current()
        .is_ok_and(|runtime| runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if long && multi_threaded {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// Similar shared patterns and their prior, from `state` (nothing for an account that does not share).
/// Catches up with other replicas' events until `stop`.
pub fn spawn_catch_up(service: Arc<LearningService>, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let index_service = service.clone();
    let index_stop = stop.clone();
    tokio::spawn(async move {
        let interval = Duration::from_millis(service.settings.catch_up_interval_milliseconds.max(10));
        let catching_up = async {
            while !*stop.borrow() {
                if let Err(error) = service.catch_up().await {
                    tracing::warn!(%error, "cannot catch up with the learning log");
                }
                service.snapshot_if_due().await;
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stop.changed() => {}
                }
            }
        };
        // Its own loop: a build takes minutes for a million patterns, and catching up must not wait for it.
        tokio::join!(catching_up, maintain_index_until_stopped(index_service, index_stop));
    })
}

/// How often ml-service checks whether the pattern store wants a (new) approximate index.
const APPROXIMATE_INDEX_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Builds and installs the pattern store's approximate index whenever it wants one, until `stop` (a build
/// under way is abandoned then: nothing is installed).
async fn maintain_index_until_stopped(service: Arc<LearningService>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        tokio::select! {
            _ = service.maintain_approximate_index() => {}
            _ = stop.changed() => break,
        }
        tokio::select! {
            _ = tokio::time::sleep(APPROXIMATE_INDEX_CHECK_INTERVAL) => {}
            _ = stop.changed() => {}
        }
    }
}
