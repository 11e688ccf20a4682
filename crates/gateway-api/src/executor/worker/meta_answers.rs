//! What Meta's answers mean for a change: the outcome of a write from its result, the pauses Meta asks for
//! (613 without a subcode, 2635), and the pacing its usage headers call for.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Executor, ExecutorError, attempt_error};
use crate::executor::change::AdChangeRow;
use crate::executor::controls::{self, PauseScope};
use crate::executor::graph_client::{GraphClientError, OperationResult};
use crate::executor::graph_outcome::{ErrorClass, UsageReport, classify};
use crate::executor::metrics::PauseLabels;
use crate::executor::pacing;
use crate::executor::queue::{AttemptError, Outcome};

impl Executor {
    /// The outcome of a write from its result (`None`: Meta did not say whether it ran).
    pub(super) fn outcome_of_write(
        &self,
        change: &AdChangeRow,
        detail: Value,
        result: Option<&OperationResult>,
    ) -> Outcome {
        let Some(result) = result else {
            // Unknown: the next attempt reads the object first (needs_reconcile) before writing again.
            return Outcome::Retry {
                error: AttemptError {
                    code: None,
                    subcode: None,
                    message: "no result for this operation: its outcome is unknown".into(),
                },
                delay: Duration::from_secs(1),
            };
        };
        if result.is_success() {
            let mut detail = detail;
            if self.settings.dry_run {
                detail["no_write"] = json!(true);
            }
            return Outcome::Completed { detail };
        }
        let (code, subcode) = result.error_code();
        let mut rng = rand::rng();
        match classify(Some(result.http_status), code, subcode) {
            ErrorClass::Transient => Outcome::Retry {
                error: attempt_error(result),
                delay: self.backoff.delay_after(change.attempt.max(1) as u32, &mut rng),
            },
            ErrorClass::Permanent => Outcome::Discard {
                error: attempt_error(result),
            },
            ErrorClass::BudgetLocked => Outcome::Hold {
                delay: pacing::META_BUDGET_LOCK,
                detail: json!({ "meta_budget_lock": attempt_error(result).message, "code": code, "subcode": subcode }),
            },
            ErrorClass::Throttled | ErrorClass::AccountStopped | ErrorClass::VersionRetired => {
                let regain = result
                    .usage
                    .accounts
                    .iter()
                    .filter_map(|usage| usage.regain_access_after)
                    .max()
                    .unwrap_or(Duration::from_secs_f64(self.settings.throttle_wait_seconds));
                tracing::warn!(
                    code,
                    subcode,
                    change = change.id,
                    "graph throttled or stopped: holding the change"
                );
                Outcome::Hold {
                    delay: regain,
                    detail: json!({ "throttled": attempt_error(result).message, "code": code, "subcode": subcode }),
                }
            }
        }
    }

    /// Records what the usage headers of Graph answers say about pacing (shared with every worker).
    pub(super) async fn pace(&self, reports: Vec<UsageReport>) {
        let reports: Vec<&UsageReport> = reports.iter().collect();
        if let Err(error) = pacing::record(&self.pool, &self.settings.pacing, &reports).await {
            tracing::warn!(%error, "executor: could not record account pacing");
        }
    }

    /// Remembers Meta's budget lock on the change's ad set (613 / 1487632), so that every worker holds the
    /// ad set's budget changes until it passes.
    pub(super) async fn remember_budget_lock(
        &self,
        change: &AdChangeRow,
        result: Option<&OperationResult>,
    ) -> Result<(), ExecutorError> {
        let Some(result) = result.filter(|result| !result.is_success()) else {
            return Ok(());
        };
        let (code, subcode) = result.error_code();
        if classify(Some(result.http_status), code, subcode) == ErrorClass::BudgetLocked {
            let simulated_now = match self.clock.is_simulated() {
                true => Some(self.clock.now_unix().await?),
                false => None,
            };
            pacing::remember_budget_lock(&self.pool, &change.object_id, simulated_now).await?;
        }
        Ok(())
    }

    /// Two answers mean no change should go out until a person looks: 613 without a subcode (Meta's abuse
    /// prevention) pauses the change's ad account, 2635 (the configured API version is retired) pauses the
    /// executor for everyone. The pause is a row every replica's claim reads, lifted by `resume`.
    pub(super) async fn stop_when_meta_says_so(
        &self,
        change: &AdChangeRow,
        result: Option<&OperationResult>,
    ) -> Result<(), ExecutorError> {
        let Some(result) = result.filter(|result| !result.is_success()) else {
            return Ok(());
        };
        let (code, subcode) = result.error_code();
        let (scope, scope_name, reason) = match classify(Some(result.http_status), code, subcode) {
            ErrorClass::AccountStopped => (
                PauseScope::Account {
                    tenant_id: change.tenant_id.clone(),
                    ad_account_id: change.ad_account_id.clone(),
                },
                "account",
                "Meta refused with code 613 and no subcode; check the account before resuming",
            ),
            ErrorClass::VersionRetired => (
                PauseScope::Global,
                "global",
                "Meta says the configured graph.api_version is retired (code 2635); upgrade it, then resume",
            ),
            _ => return Ok(()),
        };
        tracing::error!(
            alert = true,
            code,
            subcode,
            change = change.id,
            ad_account = %change.ad_account_id,
            "{reason}: the executor paused itself"
        );
        controls::pause(&self.pool, &scope, reason, &self.worker_name).await?;
        self.metrics
            .self_pauses
            .get_or_create(&PauseLabels { scope: scope_name })
            .inc();
        Ok(())
    }
}

/// The usage reports in a batch answer, each operation's charged to the ad account of that operation
/// (`accounts`, in the batch's order); a refusal of the whole batch is charged to each of its accounts.
pub(super) fn usage_of_batch(
    answer: &Result<Vec<Option<OperationResult>>, GraphClientError>,
    accounts: &[&str],
) -> Vec<UsageReport> {
    match answer {
        Ok(results) => results
            .iter()
            .zip(accounts)
            .filter_map(|(result, account)| Some(result.as_ref()?.usage.attributed_to(account)))
            .collect(),
        Err(GraphClientError::Refused(result)) => {
            let mut distinct: Vec<&str> = accounts.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            distinct
                .into_iter()
                .map(|account| result.usage.attributed_to(account))
                .collect()
        }
        Err(GraphClientError::NoAnswer(_)) => Vec::new(),
    }
}

/// A whole request refused with code 1: Meta's "Please reduce the amount of data you're asking for" shares
/// the code with its unknown error, and errors are classed by code, never by wording, so a multi-operation
/// batch refused with code 1 is split in two and sent again (a single operation retries as transient).
pub(super) fn asks_for_less_data(result: &OperationResult) -> bool {
    result.error_code().0 == Some(1)
}
