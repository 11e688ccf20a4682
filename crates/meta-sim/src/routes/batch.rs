//! `POST /{version}/` with `batch=[...]`: up to 50 Graph operations in one request. Each operation counts as
//! one call; each answers `{code, headers, body}` with `body` a JSON string and `headers` carrying the usage
//! headers (unless `include_headers=false`); one failing operation does not fail the others; operations that
//! did not run within the batch time-out come back as `null`. As at Meta: operations without `depends_on`
//! run in no promised order (shuffled here), a successful operation that another depends on answers `null`
//! unless it set `omit_response_on_success: false`, `body` is a URL-encoded string, and a batch may write
//! to only one ad set per campaign.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use rand::SeedableRng as _;
use rand::seq::SliceRandom as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::params::{as_text_parameters, form_pairs, merge_parameters};
use super::{AppState, annotated, check_version, injected_fault_response, with_parameter_names, with_usage_headers};
use crate::faults::{Endpoint, Fault};
use crate::graph_error::GraphError;
use crate::objects::ObjectKind;
use crate::state::{GraphCall, SimState};

pub const MAX_BATCH_OPERATIONS: usize = 50;

#[derive(Debug, Deserialize)]
struct BatchOperation {
    method: String,
    relative_url: String,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    depends_on: Option<String>,
    #[serde(default)]
    omit_response_on_success: Option<bool>,
}

fn parse_operations(batch: &Value) -> Result<Vec<BatchOperation>, GraphError> {
    let array = match batch {
        Value::String(text) => serde_json::from_str::<Value>(text)
            .map_err(|_| GraphError::invalid_parameter("param batch must be a JSON-encoded array of operations"))?,
        other => other.clone(),
    };
    let Value::Array(items) = array else {
        return Err(GraphError::invalid_parameter(
            "param batch must be a JSON-encoded array of operations",
        ));
    };
    if items.is_empty() {
        return Err(GraphError::invalid_parameter(
            "param batch must contain at least one operation",
        ));
    }
    if items.len() > MAX_BATCH_OPERATIONS {
        return Err(GraphError::invalid_parameter(format!(
            "Too many requests in batch message. Maximum batch size is {MAX_BATCH_OPERATIONS}; got {}",
            items.len()
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            serde_json::from_value::<BatchOperation>(item).map_err(|error| {
                GraphError::invalid_parameter(format!("batch[{index}] needs method and relative_url: {error}"))
            })
        })
        .collect()
}

/// `v25.0/123?fields=x` or `123/insights` → (optional version, object id, optional edge, query).
fn split_relative_url(relative_url: &str) -> (Option<String>, String, Option<String>, Option<String>) {
    let trimmed = relative_url.trim_start_matches('/');
    let (path, query) = match trimmed.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (trimmed, None),
    };
    let mut segments: Vec<&str> = path.split('/').filter(|segment| !segment.is_empty()).collect();
    let version = match segments.first() {
        Some(first) if crate::settings::parse_graph_version(first).is_some() => Some(segments.remove(0).to_owned()),
        _ => None,
    };
    let object_id = segments
        .first()
        .map(|segment| (*segment).to_owned())
        .unwrap_or_default();
    let edge = segments.get(1).map(|segment| (*segment).to_owned());
    (version, object_id, edge, query)
}

fn operation_params(
    operation: &BatchOperation,
    query: Option<&str>,
    batch_token: Option<&str>,
) -> Result<BTreeMap<String, String>, GraphError> {
    let mut params = BTreeMap::new();
    if let Some(query) = query {
        params.extend(form_pairs(query.as_bytes())?);
    }
    match &operation.body {
        Some(Value::String(body)) => params.extend(form_pairs(body.as_bytes())?),
        None | Some(Value::Null) => {}
        Some(_) => {
            return Err(GraphError::invalid_parameter(
                "batch operation body must be a URL-encoded string such as `daily_budget=5000&status=PAUSED`, \
                 not JSON",
            ));
        }
    }
    if !params.contains_key("access_token")
        && let Some(token) = batch_token
    {
        params.insert("access_token".into(), token.to_owned());
    }
    Ok(params)
}

fn operation_result(status: u16, body: &Value, usage_headers: Option<Vec<(&'static str, String)>>) -> Value {
    let Some(usage_headers) = usage_headers else {
        return json!({"code": status, "body": body.to_string()});
    };
    let mut headers = vec![
        json!({"name": "Content-Type", "value": "text/javascript; charset=UTF-8"}),
        json!({"name": "Cache-Control", "value": "private, no-cache, no-store, must-revalidate"}),
    ];
    headers.extend(
        usage_headers
            .into_iter()
            .map(|(name, value)| json!({"name": capitalised_header_name(name), "value": value})),
    );
    json!({"code": status, "headers": headers, "body": body.to_string()})
}

/// `x-app-usage` → `X-App-Usage`, as the names appear in Meta's per-operation headers.
fn capitalised_header_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut characters = part.chars();
            characters
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + characters.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The order operations run in: each after the one it depends on; the others in request order, or shuffled
/// (Meta runs them in parallel). Dependency cycles run last, in request order (and fail on their dependency).
fn execution_order(operations: &[BatchOperation], shuffle_with: Option<&mut rand_pcg::Pcg64Mcg>) -> Vec<usize> {
    let mut pending: Vec<usize> = (0..operations.len()).collect();
    if let Some(rng) = shuffle_with {
        pending.shuffle(rng);
    }
    let index_of_name: HashMap<&str, usize> = operations
        .iter()
        .enumerate()
        .filter_map(|(index, operation)| operation.name.as_deref().map(|name| (name, index)))
        .collect();
    let mut has_run = vec![false; operations.len()];
    let mut order = Vec::with_capacity(operations.len());
    while !pending.is_empty() {
        let waiting_before = pending.len();
        pending.retain(|&index| {
            let dependency = operations[index]
                .depends_on
                .as_deref()
                .and_then(|name| index_of_name.get(name));
            let ready = dependency.is_none_or(|dependency| has_run[*dependency]);
            if ready {
                order.push(index);
                has_run[index] = true;
            }
            !ready
        });
        if pending.len() == waiting_before {
            order.append(&mut pending);
        }
    }
    order
}

/// For each operation, the refusal Meta gives a batch that writes to a second ad set of one campaign (the
/// first ad set of each campaign, in request order, may be written; writes to the same ad set again are fine).
fn second_ad_sets_of_a_campaign(sim: &SimState, operations: &[BatchOperation]) -> Vec<Option<GraphError>> {
    let mut first_ad_set_of_campaign: HashMap<String, String> = HashMap::new();
    operations
        .iter()
        .map(|operation| {
            let is_write = matches!(operation.method.to_uppercase().as_str(), "POST" | "DELETE");
            let (_, object_id, edge, _) = split_relative_url(&operation.relative_url);
            let ad_set = sim
                .objects()
                .get(&object_id)
                .filter(|object| is_write && edge.is_none() && object.kind == ObjectKind::AdSet)?;
            let campaign_id = ad_set.campaign_id.clone()?;
            let first = first_ad_set_of_campaign
                .entry(campaign_id.clone())
                .or_insert_with(|| ad_set.id.clone());
            (*first != ad_set.id).then(|| {
                GraphError::invalid_parameter(format!(
                    "A batch request cannot include multiple ad sets of the same campaign: ad set {} and ad set {} \
                     are both in campaign {campaign_id}; send them in separate batches",
                    first, ad_set.id
                ))
            })
        })
        .collect()
}

/// How one batch runs: its version, token, time-out and whether per-operation headers are wanted.
struct BatchContext<'a> {
    version: &'a str,
    link_base: String,
    token: Option<&'a str>,
    timeout: Duration,
    include_headers: bool,
}

/// Runs the operations (see [`execution_order`]); returns each result (or null) in request order, the calls
/// counted, the accounts touched (in the order first touched) and the simulated time taken.
fn run_operations(
    sim: &mut SimState,
    operations: &[BatchOperation],
    context: &BatchContext<'_>,
) -> (Vec<Value>, usize, Vec<String>, Duration) {
    let mut results = vec![Value::Null; operations.len()];
    let mut succeeded_by_name: HashMap<String, bool> = HashMap::new();
    let mut elapsed = Duration::ZERO;
    let mut calls = 0;
    let mut touched_accounts: Vec<String> = Vec::new();
    let minimum_version = sim.settings.graph.minimum_version.clone();
    let depended_on: HashSet<&str> = operations
        .iter()
        .filter_map(|operation| operation.depends_on.as_deref())
        .collect();
    let mut refusals = if sim.settings.graph.batch_one_ad_set_per_campaign {
        second_ad_sets_of_a_campaign(sim, operations)
    } else {
        vec![None; operations.len()]
    };
    let mut shuffle_rng = sim
        .settings
        .graph
        .batch_shuffle_independent_operations
        .then(|| rand_pcg::Pcg64Mcg::seed_from_u64(sim.settings.graph.batch_order_seed ^ sim.counters.batches));
    for index in execution_order(operations, shuffle_rng.as_mut()) {
        let operation = &operations[index];
        elapsed += sim.faults.draw_latency(Endpoint::BatchOperation);
        if elapsed > context.timeout {
            // Did not run within the batch time-out: the caller may retry it.
            continue;
        }
        let outcome = match refusals[index].take() {
            Some(refusal) => failed(&refusal, false),
            None => run_one_operation(sim, operation, context, &minimum_version, &succeeded_by_name, index),
        };
        let (result, counted_call, succeeded) = match outcome {
            OperationOutcome::NotRun => (Value::Null, false, false),
            OperationOutcome::Finished {
                status,
                body,
                counted_call,
                account_id,
            } => {
                if let Some(account_id) = &account_id
                    && !touched_accounts.contains(account_id)
                {
                    touched_accounts.push(account_id.clone());
                }
                let succeeded = status == 200;
                let another_depends_on_it = operation.name.as_deref().is_some_and(|name| depended_on.contains(name));
                let omitted = match operation.omit_response_on_success {
                    Some(omit) => omit,
                    None => another_depends_on_it,
                };
                let result = if succeeded && omitted {
                    Value::Null
                } else {
                    let is_insights = split_relative_url(&operation.relative_url).2.as_deref() == Some("insights");
                    let headers = context
                        .include_headers
                        .then(|| sim.usage_headers(account_id.as_slice(), is_insights));
                    operation_result(status, &body, headers)
                };
                (result, counted_call, succeeded)
            }
        };
        if counted_call {
            calls += 1;
        }
        if let Some(name) = &operation.name {
            succeeded_by_name.insert(name.clone(), succeeded);
        }
        results[index] = result;
    }
    (results, calls, touched_accounts, elapsed.min(context.timeout))
}

enum OperationOutcome {
    NotRun,
    Finished {
        status: u16,
        body: Value,
        counted_call: bool,
        account_id: Option<String>,
    },
}

fn failed(error: &GraphError, counted_call: bool) -> OperationOutcome {
    OperationOutcome::Finished {
        status: error.http_status,
        body: error.body(),
        counted_call,
        account_id: None,
    }
}

fn run_one_operation(
    sim: &mut SimState,
    operation: &BatchOperation,
    context: &BatchContext<'_>,
    minimum_version: &str,
    succeeded_by_name: &HashMap<String, bool>,
    index: usize,
) -> OperationOutcome {
    if let Some(dependency) = &operation.depends_on
        && succeeded_by_name.get(dependency) != Some(&true)
    {
        let error = GraphError::invalid_parameter(format!(
            "batch[{index}] depends on operation `{dependency}`, which did not succeed"
        ));
        return failed(&error, false);
    }
    match sim.faults.draw_fault(Endpoint::BatchOperation) {
        Some(Fault::GraphError {
            code,
            subcode,
            http_status,
            message,
        }) => {
            sim.counters.faults_injected += 1;
            let error = GraphError::injected(code, subcode, http_status, message);
            return failed(&error, true);
        }
        Some(Fault::HttpStatus { status }) => {
            sim.counters.faults_injected += 1;
            let error = GraphError::transient_service_error(2, status);
            return failed(&error, true);
        }
        Some(Fault::DropConnection | Fault::Timeout { .. }) => {
            sim.counters.faults_injected += 1;
            return OperationOutcome::NotRun;
        }
        None => {}
    }
    let (version, object_id, edge, query) = split_relative_url(&operation.relative_url);
    if let Err(error) = check_version(version.as_deref().unwrap_or(context.version), minimum_version) {
        return failed(&error, false);
    }
    let params = match operation_params(operation, query.as_deref(), context.token) {
        Ok(params) => params,
        Err(error) => return failed(&error, false),
    };
    let method = operation.method.to_uppercase();
    let call = GraphCall {
        method,
        object_id,
        edge,
        params,
        link_base: context.link_base.clone(),
    };
    let account_id = sim.account_of(&call.object_id);
    match sim.execute_graph_call(&call, "batch") {
        Ok(body) => OperationOutcome::Finished {
            status: 200,
            body,
            counted_call: true,
            account_id,
        },
        Err(error) => OperationOutcome::Finished {
            status: error.http_status,
            body: error.body(),
            counted_call: true,
            account_id,
        },
    }
}

type ExecutedBatch = (Vec<Value>, usize, Vec<(&'static str, String)>, Duration);

/// Checks the batch and runs its operations under the lock; the simulated latency is slept afterwards.
fn execute_batch(
    state: &AppState,
    parameters: &BTreeMap<String, Value>,
    version: &str,
    batch_token: Option<&str>,
    link_base: &str,
) -> Result<ExecutedBatch, GraphError> {
    let mut sim = state.lock();
    sim.counters.batches += 1;
    check_version(version, &sim.settings.graph.minimum_version)?;
    sim.check_token_for_account(batch_token, None)?;
    let proof = parameters.get("appsecret_proof").and_then(Value::as_str);
    sim.check_appsecret_proof(batch_token, proof)?;
    let operations = parameters
        .get("batch")
        .ok_or_else(|| GraphError::invalid_parameter("The parameter batch is required"))
        .and_then(parse_operations)?;
    if let Some(limit) = sim.faults.settings().reduce_data_above_operations
        && operations.len() > limit
    {
        return Err(GraphError::injected(
            1,
            None,
            None,
            Some("Please reduce the amount of data you're asking for, then retry your request".into()),
        ));
    }
    let context = BatchContext {
        version,
        link_base: link_base.to_owned(),
        token: batch_token,
        timeout: Duration::from_millis(sim.settings.graph.batch_timeout_milliseconds),
        include_headers: parameters
            .get("include_headers")
            .is_none_or(|value| value.as_str() != Some("false") && *value != Value::Bool(false)),
    };
    let (results, calls, touched_accounts, latency) = run_operations(&mut sim, &operations, &context);
    let includes_insights = operations
        .iter()
        .any(|operation| split_relative_url(&operation.relative_url).2.as_deref() == Some("insights"));
    let usage_headers = sim.usage_headers(&touched_accounts, includes_insights);
    Ok((results, calls, usage_headers, latency))
}

pub async fn post_batch(
    State(state): State<AppState>,
    Path(version): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parameters = match merge_parameters(query.as_deref(), &headers, &body) {
        Ok(parameters) => parameters,
        Err(error) => return annotated(error.clone().into_response(), Some(error.code), 0),
    };
    let parameter_names: Vec<String> = parameters.keys().cloned().collect();
    if let Some(fault_response) = injected_fault_response(&state, Endpoint::Batch).await {
        return with_parameter_names(fault_response, parameter_names);
    }
    let text_parameters = as_text_parameters(&parameters);
    let batch_token = text_parameters.get("access_token").map(String::as_str);

    let executed = execute_batch(
        &state,
        &parameters,
        &version,
        batch_token,
        &super::graph::link_base(&headers, &version),
    );
    let (results, calls, usage_headers, latency) = match executed {
        Ok(executed) => executed,
        Err(error) => {
            return with_parameter_names(
                annotated(error.clone().into_response(), Some(error.code), 0),
                parameter_names,
            );
        }
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = annotated(Json(Value::Array(results)).into_response(), None, calls);
    with_parameter_names(with_usage_headers(response, usage_headers), parameter_names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_urls_split_into_version_object_edge_and_query() {
        assert_eq!(
            split_relative_url("v25.0/123/insights?fields=spend"),
            (
                Some("v25.0".into()),
                "123".into(),
                Some("insights".into()),
                Some("fields=spend".into())
            )
        );
        assert_eq!(split_relative_url("/123"), (None, "123".into(), None, None));
    }
}
