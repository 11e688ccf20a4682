//! One executor round: claim due changes, read each object's real state from the Graph API, decide with the
//! guardrails, write what passed (in Graph batches, or one request each in single mode), and record every
//! outcome, fenced on the claim. A batch operation that came back `null` has an unknown outcome: the change
//! is retried with `needs_reconcile`, and its next round reads the object before writing again. Reading
//! lives in `reads`, sending the writes in `writes`, what Meta's answers mean for a change in
//! `meta_answers`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adloop_money::{Currency, GraphAmount, MinorUnits};
use adloop_service_kit::percent_encoding::percent_encode;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::backoff::Backoff;
use super::change::AdChangeRow;
use super::graph_client::{GraphClient, OperationResult};
use super::graph_outcome::{ErrorClass, classify};
use super::guardrail_overrides;
use super::guardrails::{
    AppliedChange, BudgetRequest, Decision, GuardrailSettings, ObjectContext, decide_budget, decide_status,
};
use super::lease_keeper::LeaseKeeper;
use super::metrics::ExecutorMetrics;
use super::pacing;
use super::queue::{self, AttemptError, Fenced, Outcome, QueueError};
use adloop_service_kit::clock::{Clock, ClockError};

mod meta_answers;
mod reads;
mod writes;

use reads::GraphRead;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Writes go out in Graph batch requests of up to 50 operations.
    Batch,
    /// One request per write (for comparison).
    Single,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSettings {
    /// Run the executor's workers in this gateway (they need `graph.access_token`).
    #[serde(default)]
    pub enabled: bool,
    /// How often an idle worker looks for due changes when no notification arrives.
    #[serde(default = "default_poll_interval_milliseconds")]
    pub poll_interval_milliseconds: u64,
    /// How often expired leases are rescued.
    #[serde(default = "default_rescue_interval_seconds")]
    pub rescue_interval_seconds: u64,
    pub claim_batch_size: i64,
    /// Rounds this gateway runs at once, each its own worker with its own claims: while one waits for
    /// Postgres another waits for the Graph API.
    #[serde(default = "default_workers")]
    pub workers: usize,
    pub lease_seconds: f64,
    pub write_mode: WriteMode,
    /// Validate every write with `execution_options=["validate_only"]` and record it, changing nothing.
    pub dry_run: bool,
    /// How long a change waits when its account is throttled and the headers do not say.
    pub throttle_wait_seconds: f64,
    #[serde(default)]
    pub guardrails: GuardrailSettings,
    /// A random delay added to each change the API enqueues; off by default.
    #[serde(default)]
    pub enqueue_jitter: super::enqueue_jitter::EnqueueJitter,
    /// Pausing an account from Meta's usage headers, shared by every worker.
    #[serde(default)]
    pub pacing: super::pacing::PacingSettings,
    /// How long finished changes, the audit trail and idempotency keys are kept.
    #[serde(default)]
    pub retention: super::retention::RetentionSettings,
}

fn default_workers() -> usize {
    4
}

fn default_poll_interval_milliseconds() -> u64 {
    1000
}

fn default_rescue_interval_seconds() -> u64 {
    15
}

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Clock(#[from] ClockError),
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub claimed: usize,
    pub completed: usize,
    pub retried: usize,
    pub discarded: usize,
    pub held: usize,
    pub awaiting_approval: usize,
    pub leases_lost: usize,
}

/// An ad account's currency and minimum budget, as the Graph API reports them.
#[derive(Debug, Clone, Copy)]
struct AccountFacts {
    currency: Currency,
    minimum_budget: MinorUnits,
}

/// An object's state read just before deciding.
#[derive(Debug, Clone)]
struct ObjectState {
    daily_budget: Option<MinorUnits>,
    status: Option<String>,
    effective_status: Option<String>,
}

/// What a round knows when it decides: what was applied lately and Meta's budget locks (from Postgres), and
/// the accounts and objects as the Graph API reported them (or why it could not).
struct RoundKnowledge {
    /// The round's time on the executor's clock.
    now: f64,
    history: queue::AppliedHistory,
    /// Unix seconds when each locked ad set's budget lock ends.
    budget_locks: HashMap<String, f64>,
    accounts: HashMap<String, Value>,
    objects: HashMap<String, Value>,
    failed_reads: HashMap<String, OperationResult>,
}

/// A write that passed the guardrails, waiting for its Graph call.
struct PendingWrite {
    change: AdChangeRow,
    params: Vec<(&'static str, String)>,
    detail: Value,
}

impl PendingWrite {
    /// The parameters as a URL-encoded form body, as a batch operation carries them.
    fn form_body(&self) -> String {
        self.params
            .iter()
            .map(|(name, value)| format!("{name}={}", percent_encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// One worker of the executor. Workers of one gateway are clones with their own names (their leases are
/// their own) sharing the account facts they read.
#[derive(Clone)]
pub struct Executor {
    pool: PgPool,
    graph: GraphClient,
    settings: ExecutorSettings,
    worker_name: String,
    backoff: Backoff,
    metrics: ExecutorMetrics,
    /// Accounts' currency and minimum budget as last read, and when.
    account_facts_cache: Arc<Mutex<HashMap<String, (Value, Instant)>>>,
    /// Workers of one gateway claim one at a time: claims made at the same moment would look at the same
    /// candidates and skip each other's locks, each getting fewer changes for the same work.
    claim_turn: Arc<tokio::sync::Mutex<()>>,
    /// The time guardrail windows are counted in (simulated in development).
    clock: Clock,
}

const HOUR_SECONDS: f64 = 3600.0;

fn attempt_error(result: &OperationResult) -> AttemptError {
    let (code, subcode) = result.error_code();
    AttemptError {
        code,
        subcode,
        message: result.error_message(),
    }
}

impl Executor {
    pub fn new(pool: PgPool, graph: GraphClient, settings: ExecutorSettings, worker_name: String) -> Executor {
        Executor {
            pool,
            graph,
            settings,
            worker_name,
            backoff: Backoff::default(),
            metrics: ExecutorMetrics::default(),
            account_facts_cache: Arc::new(Mutex::new(HashMap::new())),
            claim_turn: Arc::new(tokio::sync::Mutex::new(())),
            clock: Clock::System,
        }
    }

    /// Counts guardrail windows on `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Clock) -> Executor {
        self.clock = clock;
        self
    }

    /// Counts into `metrics` (registered in the service's registry) instead of unregistered ones.
    pub fn with_metrics(mut self, metrics: ExecutorMetrics) -> Executor {
        self.metrics = metrics;
        self
    }

    /// Worker `index` of this gateway: the same executor under the name `<name>-<index>`.
    pub fn worker(&self, index: usize) -> Executor {
        Executor {
            worker_name: format!("{}-{index}", self.worker_name),
            ..self.clone()
        }
    }

    pub fn worker_name(&self) -> &str {
        &self.worker_name
    }

    pub fn graph(&self) -> &GraphClient {
        &self.graph
    }

    pub fn settings(&self) -> &ExecutorSettings {
        &self.settings
    }

    pub fn metrics(&self) -> &ExecutorMetrics {
        &self.metrics
    }

    fn lease(&self) -> Duration {
        Duration::from_secs_f64(self.settings.lease_seconds)
    }

    async fn finish(
        &self,
        change: &AdChangeRow,
        outcome: Outcome,
        report: &mut RoundReport,
    ) -> Result<(), ExecutorError> {
        let fenced = queue::finish(&self.pool, &self.worker_name, change.id, change.attempt, &outcome).await?;
        self.count_finish(&outcome, fenced, report);
        Ok(())
    }

    fn count_finish(&self, outcome: &Outcome, fenced: Fenced, report: &mut RoundReport) {
        let (counter, name) = match outcome {
            Outcome::Completed { .. } => (&mut report.completed, "completed"),
            Outcome::Retry { .. } => (&mut report.retried, "retried"),
            Outcome::Discard { .. } => (&mut report.discarded, "discarded"),
            Outcome::Hold { .. } | Outcome::Release => (&mut report.held, "held"),
            Outcome::AwaitApproval { .. } => (&mut report.awaiting_approval, "awaiting_approval"),
        };
        match fenced {
            Fenced::Applied => {
                *counter += 1;
                self.metrics.count_change(name);
            }
            Fenced::LeaseLost => {
                report.leases_lost += 1;
                self.metrics.count_change("lease_lost");
            }
        }
    }

    /// Records the outcomes of several changes with one transaction.
    async fn finish_all(
        &self,
        finishes: Vec<(AdChangeRow, Outcome)>,
        report: &mut RoundReport,
    ) -> Result<(), ExecutorError> {
        let started = Instant::now();
        let fenced = queue::finish_many(
            &self.pool,
            &self.worker_name,
            &finishes
                .iter()
                .map(|(change, outcome)| (change.id, change.attempt, outcome))
                .collect::<Vec<_>>(),
        )
        .await?;
        for ((_, outcome), fenced) in finishes.iter().zip(fenced) {
            self.count_finish(outcome, fenced, report);
        }
        self.metrics.add_phase_time("finish", started.elapsed());
        Ok(())
    }

    /// One round; returns what it did.
    pub async fn run_once(&self) -> Result<RoundReport, ExecutorError> {
        let started = Instant::now();
        // Before claiming: a clock that cannot be read leaves the changes where they are.
        let now = self.clock.now_unix().await?;
        let claim_turn = self.claim_turn.lock().await;
        let claimed = queue::claim(
            &self.pool,
            &self.worker_name,
            self.settings.claim_batch_size,
            self.lease(),
        )
        .await?;
        drop(claim_turn);
        self.metrics.add_phase_time("claim", started.elapsed());
        let mut report = RoundReport {
            claimed: claimed.len(),
            ..RoundReport::default()
        };
        if claimed.is_empty() {
            return Ok(report);
        }
        let phase_started = Instant::now();
        let mut tenants: Vec<String> = claimed.iter().map(|change| change.tenant_id.clone()).collect();
        tenants.sort();
        tenants.dedup();
        let guardrail_layers = guardrail_overrides::stored_layers(&self.pool, &tenants).await?;
        let mut history_time = phase_started.elapsed();
        let leases = LeaseKeeper::start(
            self.pool.clone(),
            self.worker_name.clone(),
            claimed.iter().map(|change| (change.id, change.attempt)).collect(),
            self.lease(),
        );
        // Ads have no budget field: asking for one is an error at Meta.
        let object_reads: Vec<GraphRead> = claimed
            .iter()
            .map(|change| {
                let is_ad = change.ad_id.as_deref() == Some(change.object_id.as_str());
                let fields = if is_ad {
                    "status,effective_status"
                } else {
                    "daily_budget,status,effective_status"
                };
                GraphRead {
                    object_id: change.object_id.clone(),
                    fields,
                    ad_account_id: change.ad_account_id.clone(),
                }
            })
            .collect();
        let guardrails_of_changes: Vec<GuardrailSettings> = claimed
            .iter()
            .map(|change| {
                guardrail_overrides::resolve(
                    &self.settings.guardrails,
                    &guardrail_layers,
                    &change.tenant_id,
                    &change.ad_account_id,
                )
            })
            .collect();
        let object_ids: Vec<&str> = claimed.iter().map(|change| change.object_id.as_str()).collect();
        let simulated_now = self.clock.is_simulated().then_some(now);
        // What Meta says of the objects now, and what Postgres says they went through: read side by side.
        let read_from_meta = async {
            let phase_started = Instant::now();
            let accounts = self.accounts_of(&claimed).await;
            let (objects, failed_reads) = self.read_state(&object_reads).await;
            self.metrics.add_phase_time("read", phase_started.elapsed());
            (accounts, objects, failed_reads)
        };
        let read_history = async {
            let phase_started = Instant::now();
            let history = self
                .applied_history(&claimed, &guardrails_of_changes, simulated_now)
                .await?;
            let budget_locks = pacing::budget_locks(&self.pool, &object_ids, simulated_now).await?;
            history_time += phase_started.elapsed();
            Ok::<_, ExecutorError>((history, budget_locks))
        };
        let ((accounts, objects, failed_reads), history_read) = tokio::join!(read_from_meta, read_history);
        let (history, budget_locks) = history_read?;
        self.metrics.add_phase_time("history", history_time);
        let mut known = RoundKnowledge {
            now,
            history,
            budget_locks,
            accounts,
            objects,
            failed_reads,
        };
        let phase_started = Instant::now();

        let mut writes = Vec::new();
        let mut finished_without_write = Vec::new();
        for (change, guardrails) in claimed.into_iter().zip(&guardrails_of_changes) {
            let outcome_without_write = self.decide(&change, guardrails, &known);
            match outcome_without_write {
                Ok(write) => {
                    // The campaign's next change in this round counts this one (at most N actions an hour).
                    if let Some(campaign_id) = &change.campaign_id {
                        known
                            .history
                            .campaign_actions
                            .entry((change.tenant_id.clone(), campaign_id.clone()))
                            .or_default()
                            .push(now);
                    }
                    writes.push(write);
                }
                Err(outcome) => {
                    self.stop_when_meta_says_so(&change, known.failed_reads.get(&change.object_id))
                        .await?;
                    finished_without_write.push((change, outcome));
                }
            }
        }
        self.finish_all(finished_without_write, &mut report).await?;
        self.metrics.add_phase_time("decide", phase_started.elapsed());
        let phase_started = Instant::now();
        self.write(writes, &mut report, &leases).await?;
        self.metrics.add_phase_time("write", phase_started.elapsed());
        self.metrics
            .round_duration_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(report)
    }

    /// What the guardrails need to know about the round's objects and campaigns: two statements for the
    /// whole round, over the longest window any of its accounts' guardrails looks back (`simulated_now`: the
    /// round's time on a simulated clock, `None` on the system clock).
    async fn applied_history(
        &self,
        claimed: &[AdChangeRow],
        guardrails_of_changes: &[GuardrailSettings],
        simulated_now: Option<f64>,
    ) -> Result<queue::AppliedHistory, ExecutorError> {
        let mut objects: Vec<(String, String)> = claimed
            .iter()
            .map(|change| (change.tenant_id.clone(), change.object_id.clone()))
            .collect();
        objects.sort();
        objects.dedup();
        let mut campaigns: Vec<(String, String)> = claimed
            .iter()
            .filter_map(|change| Some((change.tenant_id.clone(), change.campaign_id.clone()?)))
            .collect();
        campaigns.sort();
        campaigns.dedup();
        let longest_window_seconds = guardrails_of_changes
            .iter()
            .map(|guardrails| {
                guardrails
                    .net_change_window_seconds
                    .max(guardrails.min_seconds_between_changes)
            })
            .fold(HOUR_SECONDS, f64::max);
        Ok(queue::applied_history(&self.pool, &objects, &campaigns, longest_window_seconds, simulated_now).await?)
    }

    /// The write a change needs, or the outcome it ends this round with.
    fn decide(
        &self,
        change: &AdChangeRow,
        guardrails_for_account: &GuardrailSettings,
        known: &RoundKnowledge,
    ) -> Result<PendingWrite, Outcome> {
        let history = &known.history;
        let (Some(account), Some(object)) = (
            known.accounts.get(&change.ad_account_id),
            known.objects.get(&change.object_id),
        ) else {
            return Err(self.outcome_of_failed_read(known.failed_reads.get(&change.object_id)));
        };
        let facts = match account_facts(account) {
            Some(facts) => facts,
            None => {
                return Err(Outcome::Discard {
                    error: AttemptError {
                        code: None,
                        subcode: None,
                        message: "the ad account reports no currency adloop knows".into(),
                    },
                });
            }
        };
        let state = object_state(object, facts.currency);
        let no_changes = Vec::new();
        let applied: Vec<AppliedChange> = history
            .object_changes
            .get(&(change.tenant_id.clone(), change.object_id.clone()))
            .unwrap_or(&no_changes)
            .iter()
            .map(|(at, before, after)| AppliedChange {
                at: *at,
                budget_before: before.map(MinorUnits),
                budget_after: after.map(MinorUnits),
            })
            .collect();
        let no_actions = Vec::new();
        let campaign_actions = change
            .campaign_id
            .as_ref()
            .and_then(|campaign_id| {
                history
                    .campaign_actions
                    .get(&(change.tenant_id.clone(), campaign_id.clone()))
            })
            .unwrap_or(&no_actions);
        let context = ObjectContext {
            now: known.now,
            current_budget: state.daily_budget,
            current_status: state.status.as_deref(),
            effective_status: state.effective_status.as_deref(),
            account_minimum_budget: facts.minimum_budget,
            object_history: &applied,
            campaign_actions_last_hour: campaign_actions,
            meta_budget_lock_until: known.budget_locks.get(&change.object_id).copied(),
            confidence: change.confidence,
            fuzz_draw: if guardrails_for_account.budget_fuzz_fraction > 0.0 {
                rand::RngExt::random_range(&mut rand::rng(), -1.0..=1.0)
            } else {
                0.0
            },
        };
        // An approved change is not held for approval again.
        let approved_settings;
        let guardrails = if change.approved_by.is_some() {
            approved_settings = GuardrailSettings {
                approval_above_change_fraction: None,
                ..guardrails_for_account.clone()
            };
            &approved_settings
        } else {
            guardrails_for_account
        };
        let decision = match change.kind.as_str() {
            "status_change" => decide_status(
                guardrails,
                change.requested_status.as_deref().unwrap_or_default(),
                &context,
            ),
            kind => {
                if change.currency.as_deref() != Some(facts.currency.code()) {
                    return Err(Outcome::Discard {
                        error: AttemptError {
                            code: None,
                            subcode: None,
                            message: format!(
                                "the change is in {} but the account is in {}",
                                change.currency.as_deref().unwrap_or("?"),
                                facts.currency
                            ),
                        },
                    });
                }
                let amount = MinorUnits(change.requested_budget_minor.unwrap_or(0));
                let request = match kind {
                    "budget_increase" => BudgetRequest::Increase(amount),
                    "budget_decrease" => BudgetRequest::Decrease(amount),
                    _ => BudgetRequest::Set(amount),
                };
                decide_budget(guardrails, request, &context)
            }
        };
        let mut base_detail = json!({
            "budget_before": state.daily_budget.map(MinorUnits::get),
            "reconciled": change.needs_reconcile,
            "dry_run": self.settings.dry_run,
        });
        // On a simulated clock the guardrails count applied changes by their time on that clock.
        if self.clock.is_simulated() {
            base_detail["clock_unix"] = json!(known.now);
        }
        let with_dry_run = |mut params: Vec<(&'static str, String)>| {
            if self.settings.dry_run {
                params.push(("execution_options", r#"["validate_only"]"#.to_owned()));
            }
            params
        };
        match decision {
            Decision::ApplyBudget { budget } => {
                // Meta's units for the currency; where they are coarser, the budget rounds down.
                let graph_amount = budget.to_graph_amount_rounded_down(facts.currency);
                let sent = graph_amount.to_minor_units(facts.currency);
                let mut detail = base_detail;
                detail["budget_sent"] = json!(sent.get());
                detail["graph_amount"] = json!(graph_amount.get());
                Ok(PendingWrite {
                    change: change.clone(),
                    params: with_dry_run(vec![("daily_budget", graph_amount.get().to_string())]),
                    detail,
                })
            }
            Decision::ApplyStatus { status } => {
                let mut detail = base_detail;
                detail["status_sent"] = json!(status);
                Ok(PendingWrite {
                    change: change.clone(),
                    params: with_dry_run(vec![("status", status)]),
                    detail,
                })
            }
            Decision::AlreadyApplied => {
                let mut detail = base_detail;
                detail["no_write"] = json!(true);
                detail["already_applied"] = json!(true);
                Err(Outcome::Completed { detail })
            }
            Decision::Refuse { rule, detail } => Err(Outcome::Discard {
                error: AttemptError {
                    code: None,
                    subcode: None,
                    message: format!("guardrail {}: {detail}", serde_json::to_value(rule).unwrap_or_default()),
                },
            }),
            Decision::Hold { rule, until } => Err(Outcome::Hold {
                delay: self.clock.real_wait((until - known.now).max(1.0)),
                detail: json!({ "rule": rule }),
            }),
            Decision::NeedsApproval { rule, detail } => Err(Outcome::AwaitApproval {
                detail: json!({ "rule": rule, "detail": detail }),
            }),
        }
    }

    /// A read that failed holds its change (no attempt counted: nothing was written): a transient failure
    /// (5xx, codes 1 and 2) for the backoff's first delay, seconds; throttling until Meta's usage headers say
    /// access returns, or `throttle_wait_seconds` when they do not say.
    fn outcome_of_failed_read(&self, failed_read: Option<&OperationResult>) -> Outcome {
        match failed_read {
            Some(result) => {
                let (code, subcode) = result.error_code();
                let detail = json!({ "read_failed": attempt_error(result).message, "code": code, "subcode": subcode });
                match classify(Some(result.http_status), code, subcode) {
                    ErrorClass::Permanent => Outcome::Discard {
                        error: attempt_error(result),
                    },
                    ErrorClass::Transient => Outcome::Hold {
                        delay: self.backoff.delay_after(1, &mut rand::rng()),
                        detail,
                    },
                    _ => Outcome::Hold {
                        delay: result
                            .usage
                            .accounts
                            .iter()
                            .filter_map(|usage| usage.regain_access_after)
                            .max()
                            .unwrap_or(Duration::from_secs_f64(self.settings.throttle_wait_seconds)),
                        detail,
                    },
                }
            }
            None => Outcome::Hold {
                delay: Duration::from_secs(5),
                detail: json!({ "read_failed": "no answer" }),
            },
        }
    }
}

fn account_facts(account: &Value) -> Option<AccountFacts> {
    let currency = Currency::parse(account["currency"].as_str()?).ok()?;
    let minimum = account["min_daily_budget"]
        .as_i64()
        .or_else(|| account["min_daily_budget"].as_str()?.parse().ok())
        .unwrap_or(0);
    Some(AccountFacts {
        currency,
        minimum_budget: GraphAmount(minimum).to_minor_units(currency),
    })
}

fn object_state(object: &Value, currency: Currency) -> ObjectState {
    let daily_budget = object["daily_budget"]
        .as_str()
        .and_then(|text| text.parse::<i64>().ok())
        .or_else(|| object["daily_budget"].as_i64())
        .map(|amount| GraphAmount(amount).to_minor_units(currency));
    let text = |field: &str| object[field].as_str().map(str::to_owned);
    ObjectState {
        daily_budget,
        status: text("status"),
        effective_status: text("effective_status"),
    }
}
