//! Sending the writes of a round: batches as planned (split when Meta asks for less data, trimmed to each
//! account's shared mutation window), or one request each in single mode; each result becomes its change's
//! outcome. A change whose lease was lost meanwhile gets no write.

use std::time::Duration;

use super::meta_answers::{asks_for_less_data, usage_of_batch};
use super::{Executor, ExecutorError, PendingWrite, RoundReport, WriteMode};
use crate::executor::batch_plan::{MAX_OPERATIONS_PER_BATCH, PlannedWrite, plan_batches};
use crate::executor::change::AdChangeRow;
use crate::executor::graph_client::{GraphClientError, Operation, OperationResult};
use crate::executor::lease_keeper::LeaseKeeper;
use crate::executor::pacing;
use crate::executor::queue::Outcome;

impl Executor {
    /// Sends the writes, except for changes whose lease was lost meanwhile: those are handed back (the
    /// fenced finish records the lost lease) without a call to Meta.
    pub(super) async fn write(
        &self,
        writes: Vec<PendingWrite>,
        report: &mut RoundReport,
        leases: &LeaseKeeper,
    ) -> Result<(), ExecutorError> {
        let (lost, writes): (Vec<PendingWrite>, Vec<PendingWrite>) =
            writes.into_iter().partition(|write| leases.has_lost(write.change.id));
        self.finish_all(
            lost.into_iter().map(|write| (write.change, Outcome::Release)).collect(),
            report,
        )
        .await?;
        match self.settings.write_mode {
            WriteMode::Single => {
                for write in writes {
                    if leases.has_lost(write.change.id) {
                        self.finish(&write.change, Outcome::Release, report).await?;
                        continue;
                    }
                    let still_free = self.hold_writes_to_waiting_accounts(&[&write], vec![0], report).await?;
                    if still_free.is_empty() {
                        continue;
                    }
                    self.wait_for_one_mutation(&write.change.ad_account_id).await?;
                    self.metrics.count_single("write");
                    let answer = self.graph.post(&write.change.object_id, &write.params).await;
                    self.pace(match &answer {
                        Ok(result) | Err(GraphClientError::Refused(result)) => {
                            vec![result.usage.attributed_to(&write.change.ad_account_id)]
                        }
                        Err(GraphClientError::NoAnswer(_)) => Vec::new(),
                    })
                    .await;
                    let result = match answer {
                        Ok(result) => Some(result),
                        Err(GraphClientError::Refused(result)) => Some(result),
                        Err(GraphClientError::NoAnswer(_)) => None,
                    };
                    self.stop_when_meta_says_so(&write.change, result.as_ref()).await?;
                    self.remember_budget_lock(&write.change, result.as_ref()).await?;
                    let outcome = self.outcome_of_write(&write.change, write.detail.clone(), result.as_ref());
                    self.finish(&write.change, outcome, report).await?;
                }
            }
            WriteMode::Batch => {
                let planned: Vec<PlannedWrite> = writes
                    .iter()
                    .map(|write| PlannedWrite {
                        object_id: write.change.object_id.clone(),
                        ad_set_campaign_id: write
                            .change
                            .ad_set_id
                            .as_ref()
                            .filter(|ad_set_id| **ad_set_id == write.change.object_id)
                            .and(write.change.campaign_id.clone()),
                    })
                    .collect();
                let mut pending: Vec<Vec<usize>> = plan_batches(&planned, MAX_OPERATIONS_PER_BATCH);
                pending.reverse();
                // Every batch's outcomes are recorded together once the round's writes are sent: one
                // statement (and one commit) per round instead of one per batch. What was sent before an
                // error is still recorded.
                let mut outcomes = Vec::with_capacity(writes.len());
                let sent = self.send_batches(&writes, pending, &mut outcomes, report).await;
                self.finish_all(outcomes, report).await?;
                sent?;
            }
        }
        Ok(())
    }

    /// Sends the planned batches in order (splitting one when Meta asks for less data, holding what an
    /// account's pacing does not allow yet), adding each write's outcome to `outcomes`.
    async fn send_batches(
        &self,
        writes: &[PendingWrite],
        mut pending: Vec<Vec<usize>>,
        outcomes: &mut Vec<(AdChangeRow, Outcome)>,
        report: &mut RoundReport,
    ) -> Result<(), ExecutorError> {
        while let Some(batch) = pending.pop() {
            let batch = self.hold_writes_to_waiting_accounts(writes, batch, report).await?;
            let (batch, deferred, wait) = self.within_mutation_pace(writes, batch).await?;
            if !deferred.is_empty() {
                pending.push(deferred);
            }
            if batch.is_empty() {
                tokio::time::sleep(wait).await;
                continue;
            }
            let operations: Vec<Operation> = batch
                .iter()
                .map(|index| Operation {
                    method: "POST",
                    relative_url: writes[*index].change.object_id.clone(),
                    body: Some(writes[*index].form_body()),
                })
                .collect();
            self.metrics.count_batch("write", operations.len());
            let answer = self.graph.batch(&operations).await;
            let accounts: Vec<&str> = batch
                .iter()
                .map(|index| writes[*index].change.ad_account_id.as_str())
                .collect();
            self.pace(usage_of_batch(&answer, &accounts)).await;
            let results: Vec<Option<OperationResult>> = match answer {
                Ok(results) => results,
                // Refused whole, so nothing in it ran: send it again as two halves (each still
                // obeys the plan's rules, being a part of a batch that did).
                Err(GraphClientError::Refused(result)) if asks_for_less_data(&result) && batch.len() > 1 => {
                    let (first, second) = batch.split_at(batch.len() / 2);
                    pending.push(second.to_vec());
                    pending.push(first.to_vec());
                    continue;
                }
                Err(GraphClientError::Refused(result)) => vec![Some(result); operations.len()],
                Err(GraphClientError::NoAnswer(_)) => vec![None; operations.len()],
            };
            for (position, index) in batch.iter().enumerate() {
                let write = &writes[*index];
                let result = results.get(position).and_then(Option::as_ref);
                self.stop_when_meta_says_so(&write.change, result).await?;
                self.remember_budget_lock(&write.change, result).await?;
                let outcome = self.outcome_of_write(&write.change, write.detail.clone(), result);
                outcomes.push((write.change.clone(), outcome));
            }
        }
        Ok(())
    }

    /// Waits until the account's shared mutation window has room for one write (single mode).
    async fn wait_for_one_mutation(&self, ad_account_id: &str) -> Result<(), ExecutorError> {
        if !self.settings.pacing.pace_mutations {
            return Ok(());
        }
        loop {
            let (granted, wait) =
                pacing::reserve_mutations(&self.pool, &self.settings.pacing, ad_account_id, 1).await?;
            if granted == 1 {
                return Ok(());
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Holds the writes (by index) whose account Meta's usage says must wait now, without calling Meta;
    /// returns the others.
    async fn hold_writes_to_waiting_accounts(
        &self,
        writes: &[impl std::borrow::Borrow<PendingWrite>],
        batch: Vec<usize>,
        report: &mut RoundReport,
    ) -> Result<Vec<usize>, ExecutorError> {
        let mut accounts: Vec<&str> = batch
            .iter()
            .map(|index| writes[*index].borrow().change.ad_account_id.as_str())
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        let waiting = pacing::waiting_accounts(&self.pool, &accounts).await?;
        if waiting.is_empty() {
            return Ok(batch);
        }
        let (held, free): (Vec<usize>, Vec<usize>) = batch
            .into_iter()
            .partition(|index| waiting.contains_key(&writes[*index].borrow().change.ad_account_id));
        let holds = held
            .iter()
            .map(|index| {
                let change = &writes[*index].borrow().change;
                let wait = waiting[&change.ad_account_id];
                (
                    change.clone(),
                    Outcome::Hold {
                        delay: wait.max(Duration::from_secs(1)),
                        detail: serde_json::json!({ "account_waiting_on_meta_seconds": wait.as_secs_f64() }),
                    },
                )
            })
            .collect();
        self.finish_all(holds, report).await?;
        Ok(free)
    }

    /// Splits a planned batch into the writes each account's shared mutation window still allows now and
    /// the rest (still a valid batch, being part of one), with how long until a window starts over.
    async fn within_mutation_pace(
        &self,
        writes: &[PendingWrite],
        batch: Vec<usize>,
    ) -> Result<(Vec<usize>, Vec<usize>, Duration), ExecutorError> {
        if !self.settings.pacing.pace_mutations {
            return Ok((batch, Vec::new(), Duration::ZERO));
        }
        let mut by_account: Vec<(&str, Vec<usize>)> = Vec::new();
        for index in batch {
            let account = writes[index].change.ad_account_id.as_str();
            match by_account.iter_mut().find(|(known, _)| *known == account) {
                Some((_, indices)) => indices.push(index),
                None => by_account.push((account, vec![index])),
            }
        }
        let (mut now, mut later, mut wait) = (Vec::new(), Vec::new(), Duration::ZERO);
        for (account, indices) in by_account {
            let wanted = indices.len() as u32;
            let (granted, until_next_window) =
                pacing::reserve_mutations(&self.pool, &self.settings.pacing, account, wanted).await?;
            let (sendable, deferred) = indices.split_at(granted as usize);
            now.extend_from_slice(sendable);
            if !deferred.is_empty() {
                later.extend_from_slice(deferred);
                wait = wait.max(until_next_window);
            }
        }
        now.sort_unstable();
        later.sort_unstable();
        Ok((now, later, wait))
    }
}
