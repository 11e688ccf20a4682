//! Async insights report runs, as Meta runs large pulls: `POST /{object}/insights` starts one and answers
//! `{"report_run_id"}`; `GET /{report_run_id}` shows its progress (`async_status`,
//! `async_percent_completion`), which completes after `graph.async_report_polls_before_completion` polls;
//! `GET /{report_run_id}/insights` then pages its rows. Rows are computed when the run starts; the most
//! recent runs are kept (`graph.async_report_runs_kept`).

use std::collections::VecDeque;

use serde_json::{Value, json};

use crate::graph_error::GraphError;

pub struct ReportRun {
    pub id: String,
    pub account_id: String,
    rows: Vec<Value>,
    polls: u32,
    started_unix: i64,
}

pub struct ReportRuns {
    runs: VecDeque<ReportRun>,
    next_number: u64,
    runs_kept: usize,
    polls_before_completion: u32,
}

impl ReportRuns {
    pub fn new(runs_kept: usize, polls_before_completion: u32) -> ReportRuns {
        ReportRuns {
            runs: VecDeque::new(),
            next_number: 1,
            runs_kept: runs_kept.max(1),
            polls_before_completion,
        }
    }

    /// Starts a run over already computed rows; returns its id.
    pub fn start(&mut self, account_id: &str, rows: Vec<Value>, now_unix: i64) -> String {
        let id = format!("6{:013}", self.next_number);
        self.next_number += 1;
        if self.runs.len() >= self.runs_kept {
            self.runs.pop_front();
        }
        self.runs.push_back(ReportRun {
            id: id.clone(),
            account_id: account_id.to_owned(),
            rows,
            polls: 0,
            started_unix: now_unix,
        });
        id
    }

    pub fn get(&self, id: &str) -> Option<&ReportRun> {
        self.runs.iter().find(|run| run.id == id)
    }

    fn is_complete(&self, run: &ReportRun) -> bool {
        run.polls >= self.polls_before_completion
    }

    /// The run's progress, counting this look as one poll.
    pub fn poll(&mut self, id: &str, now_unix: i64) -> Option<Value> {
        let polls_before_completion = self.polls_before_completion;
        let run = self.runs.iter_mut().find(|run| run.id == id)?;
        let (status, percent) = match run.polls {
            polls if polls >= polls_before_completion => ("Job Completed", 100),
            0 => ("Job Not Started", 0),
            polls => ("Job Running", (100 * polls / polls_before_completion).min(99)),
        };
        run.polls += 1;
        let mut report = json!({
            "id": run.id,
            "account_id": run.account_id.trim_start_matches("act_"),
            "async_status": status,
            "async_percent_completion": percent,
            "time_ref": run.started_unix,
        });
        if status == "Job Completed" {
            report["time_completed"] = json!(now_unix);
        }
        Some(report)
    }

    /// A completed run's rows (error 100 while it is still running).
    pub fn rows(&self, id: &str) -> Option<Result<&[Value], GraphError>> {
        let run = self.get(id)?;
        if !self.is_complete(run) {
            return Some(Err(GraphError::invalid_parameter(format!(
                "report run {id} has not completed yet: poll it until async_status is \"Job Completed\""
            ))));
        }
        Some(Ok(&run.rows))
    }
}
