//! Reading what a round decides on through the Graph API: the accounts' currency and minimum budget (kept
//! for `ACCOUNT_FACTS_TTL`) and each object's current state, in batches (a few at once) or, in single mode,
//! one request each; every answer's usage headers are recorded for pacing, charged to the read's account.

use std::collections::HashMap;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::meta_answers::{asks_for_less_data, usage_of_batch};
use super::{Executor, WriteMode};
use crate::executor::batch_plan::MAX_OPERATIONS_PER_BATCH;
use crate::executor::change::AdChangeRow;
use crate::executor::graph_client::{GraphClientError, Operation, OperationResult};

/// An object to read through the Graph API, with the ad account the read is charged to.
pub(super) struct GraphRead {
    pub(super) object_id: String,
    pub(super) fields: &'static str,
    pub(super) ad_account_id: String,
}

/// How long an account's currency and minimum budget are used before they are read again: every round
/// needs them and they seldom change.
const ACCOUNT_FACTS_TTL: Duration = Duration::from_secs(300);

/// Read batches sent at once within a round.
const READ_BATCHES_AT_ONCE: usize = 4;

impl Executor {
    /// The claimed changes' accounts (currency, minimum budget), read at most once per `ACCOUNT_FACTS_TTL`.
    pub(super) async fn accounts_of(&self, claimed: &[AdChangeRow]) -> HashMap<String, Value> {
        let mut wanted: Vec<String> = claimed.iter().map(|change| change.ad_account_id.clone()).collect();
        wanted.sort();
        wanted.dedup();
        let mut accounts = HashMap::new();
        let mut reads = Vec::new();
        {
            let cache = self.account_facts_cache.lock().unwrap_or_else(PoisonError::into_inner);
            for account_id in wanted {
                match cache.get(&account_id) {
                    Some((facts, read_at)) if read_at.elapsed() < ACCOUNT_FACTS_TTL => {
                        accounts.insert(account_id, facts.clone());
                    }
                    _ => reads.push(GraphRead {
                        object_id: account_id.clone(),
                        fields: "currency,min_daily_budget",
                        ad_account_id: account_id,
                    }),
                }
            }
        }
        let (read, _) = self.read_state(&reads).await;
        let mut cache = self.account_facts_cache.lock().unwrap_or_else(PoisonError::into_inner);
        for (account_id, facts) in read {
            cache.insert(account_id.clone(), (facts.clone(), Instant::now()));
            accounts.insert(account_id, facts);
        }
        accounts
    }

    /// Reads objects (and the accounts' facts) in Graph batches, each with its fields; a failed read leaves
    /// the entry out of the first map and, when Meta said why, puts its answer in the second.
    pub(super) async fn read_state(
        &self,
        reads: &[GraphRead],
    ) -> (HashMap<String, Value>, HashMap<String, OperationResult>) {
        let mut found = HashMap::new();
        let mut failed = HashMap::new();
        if self.settings.write_mode == WriteMode::Single {
            // A client that does not batch: one request per read.
            for read in reads {
                self.metrics.count_single("read");
                let answer = self.graph.get(&read.object_id, read.fields).await;
                match answer {
                    Ok(result) | Err(GraphClientError::Refused(result)) => {
                        self.pace(vec![result.usage.attributed_to(&read.ad_account_id)]).await;
                        if result.is_success() {
                            found.insert(read.object_id.clone(), result.body);
                        } else {
                            failed.insert(read.object_id.clone(), result);
                        }
                    }
                    Err(GraphClientError::NoAnswer(_)) => {}
                }
            }
            return (found, failed);
        }
        let mut pending: Vec<&[GraphRead]> = reads.chunks(MAX_OPERATIONS_PER_BATCH).rev().collect();
        while !pending.is_empty() {
            // Reads change nothing, so a few batches go out at once.
            let wave: Vec<&[GraphRead]> = (0..READ_BATCHES_AT_ONCE).filter_map(|_| pending.pop()).collect();
            let answers = futures_util::future::join_all(wave.iter().map(|chunk| {
                let operations: Vec<Operation> = chunk
                    .iter()
                    .map(|read| Operation {
                        method: "GET",
                        relative_url: format!("{}?fields={}", read.object_id, read.fields),
                        body: None,
                    })
                    .collect();
                self.metrics.count_batch("read", operations.len());
                async move { self.graph.batch(&operations).await }
            }))
            .await;
            for (chunk, answer) in wave.into_iter().zip(answers) {
                let accounts: Vec<&str> = chunk.iter().map(|read| read.ad_account_id.as_str()).collect();
                self.pace(usage_of_batch(&answer, &accounts)).await;
                match answer {
                    Ok(results) => {
                        for (read, result) in chunk.iter().zip(results) {
                            match result {
                                Some(result) if result.is_success() => {
                                    found.insert(read.object_id.clone(), result.body);
                                }
                                Some(result) => {
                                    failed.insert(read.object_id.clone(), result);
                                }
                                None => {}
                            }
                        }
                    }
                    Err(GraphClientError::Refused(result)) if asks_for_less_data(&result) && chunk.len() > 1 => {
                        let (first, second) = chunk.split_at(chunk.len() / 2);
                        pending.push(second);
                        pending.push(first);
                    }
                    Err(GraphClientError::Refused(result)) => {
                        for read in chunk {
                            failed.insert(read.object_id.clone(), result.clone());
                        }
                    }
                    Err(GraphClientError::NoAnswer(_)) => {}
                }
            }
        }
        (found, failed)
    }
}
