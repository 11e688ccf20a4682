//! Rate-limit accounting as Meta does it, reported in the `X-App-Usage`, `X-Ad-Account-Usage` and
//! `X-Business-Use-Case-Usage` headers:
//! - the app: calls per window (code 4 when exhausted);
//! - each ad account: a score (reads cost 1, writes 3) that decays over time; reaching the maximum blocks
//!   the account for a while (code 17 / subcode 2446079);
//! - each ad account's business use cases: hourly call quotas that grow with the number of active ads
//!   (ads_management → 80004 / 2446079, ads_insights → 80000 / 2446079);
//! - each ad account's mutations: at most so many writes a second (613 / 5044001).
//!
//! Usage percentages are fractional, as Meta sends them (`9.67`); `X-FB-Ads-Insights-Throttle` joins the
//! others on insights calls; the business-use-case header lists every account a request touched.
//!
//! Every operation in a batch counts as one call. Windows run on real time: limits are about request volume.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::graph_error::GraphError;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RateLimitSettings {
    /// Length of the app and business-use-case windows.
    pub window_seconds: u64,
    pub app_calls_per_window: u64,
    pub ad_account_score_limit: f64,
    /// Seconds for a full score to decay to zero.
    pub ad_account_score_decay_seconds: f64,
    pub ad_account_block_seconds: u64,
    pub read_score_cost: f64,
    pub write_score_cost: f64,
    pub ads_management_base_calls: u64,
    pub ads_management_calls_per_active_ad: u64,
    pub ads_insights_base_calls: u64,
    pub ads_insights_calls_per_active_ad: u64,
    /// `development_access` or `standard_access`, reported in the headers.
    pub access_tier: String,
    /// Writes per second per ad account before 613 / 5044001 (Meta: 100).
    pub mutations_per_second_per_account: usize,
    /// Usage headers are sent only once some usage reaches this percentage (0: always). Meta leaves them out
    /// while usage is negligible, so a client must not depend on them being there.
    pub usage_headers_from_percent: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BusinessUseCase {
    AdsManagement,
    AdsInsights,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Read,
    Write,
}

#[derive(Debug, Default, Clone)]
struct WindowCounter {
    window_started_at: Option<Instant>,
    calls: u64,
}

impl WindowCounter {
    fn roll(&mut self, now: Instant, window_seconds: u64) {
        let expired = self
            .window_started_at
            .is_none_or(|started| now.duration_since(started).as_secs() >= window_seconds);
        if expired {
            self.window_started_at = Some(now);
            self.calls = 0;
        }
    }

    fn seconds_left(&self, now: Instant, window_seconds: u64) -> u64 {
        self.window_started_at
            .map(|started| window_seconds.saturating_sub(now.duration_since(started).as_secs()))
            .unwrap_or(0)
    }
}

#[derive(Debug, Default, Clone)]
struct AccountScore {
    score: f64,
    updated_at: Option<Instant>,
    blocked_until: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct RateLimiter {
    app: WindowCounter,
    accounts: HashMap<String, AccountScore>,
    use_cases: HashMap<(String, BusinessUseCase), WindowCounter>,
    /// Each account's writes within the last second.
    recent_mutations: HashMap<String, VecDeque<Instant>>,
}

/// The accounts a response reports on: the first is the request's own (`X-Ad-Account-Usage`), all are
/// listed in `X-Business-Use-Case-Usage`.
pub struct UsageReport<'a> {
    pub accounts: &'a [(String, u64)],
    pub includes_insights: bool,
}

/// What a call is charged to.
pub struct CallCharge<'a> {
    pub ad_account_id: Option<&'a str>,
    pub kind: CallKind,
    pub use_case: BusinessUseCase,
    pub active_ads_in_account: u64,
}

impl RateLimiter {
    /// Counts one call, or refuses it with the throttling error of the first exhausted limit. A refused call
    /// still counts, as at Meta: calling while limited keeps the limit in place.
    pub fn charge(&mut self, settings: &RateLimitSettings, charge: &CallCharge<'_>) -> Result<(), GraphError> {
        let now = Instant::now();
        self.app.roll(now, settings.window_seconds);
        self.app.calls += 1;
        if self.app.calls > settings.app_calls_per_window {
            return Err(GraphError::throttled(4, None));
        }
        let Some(account_id) = charge.ad_account_id else {
            return Ok(());
        };

        if charge.kind == CallKind::Write {
            let mutations = self.recent_mutations.entry(account_id.to_owned()).or_default();
            while mutations
                .front()
                .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1))
            {
                mutations.pop_front();
            }
            if mutations.len() >= settings.mutations_per_second_per_account {
                return Err(GraphError::throttled(613, Some(5_044_001)));
            }
            mutations.push_back(now);
        }
        let account = self.accounts.entry(account_id.to_owned()).or_default();
        decay_score(account, settings, now);
        if account.blocked_until.is_some_and(|until| now < until) {
            return Err(GraphError::throttled(17, Some(2_446_079)));
        }
        account.score += match charge.kind {
            CallKind::Read => settings.read_score_cost,
            CallKind::Write => settings.write_score_cost,
        };
        if account.score >= settings.ad_account_score_limit {
            account.blocked_until = Some(now + std::time::Duration::from_secs(settings.ad_account_block_seconds));
            return Err(GraphError::throttled(17, Some(2_446_079)));
        }

        let quota = use_case_quota(settings, charge.use_case, charge.active_ads_in_account);
        let counter = self
            .use_cases
            .entry((account_id.to_owned(), charge.use_case))
            .or_default();
        counter.roll(now, settings.window_seconds);
        counter.calls += 1;
        if counter.calls > quota {
            let code = match charge.use_case {
                BusinessUseCase::AdsManagement => 80004,
                BusinessUseCase::AdsInsights => 80000,
            };
            return Err(GraphError::throttled(code, Some(2_446_079)));
        }
        Ok(())
    }

    /// The usage headers for a response about `report.accounts` (none while every figure is below
    /// `usage_headers_from_percent`).
    pub fn usage_headers(
        &mut self,
        settings: &RateLimitSettings,
        report: &UsageReport<'_>,
    ) -> Vec<(&'static str, String)> {
        let now = Instant::now();
        let app_percent = percent(self.app.calls, settings.app_calls_per_window);
        let mut highest_percent = app_percent;
        let mut headers = vec![(
            "x-app-usage",
            serde_json::json!({
                "call_count": app_percent,
                "total_cputime": app_percent,
                "total_time": app_percent,
            })
            .to_string(),
        )];
        let mut business_use_cases = serde_json::Map::new();
        for (position, (account_id, active_ads)) in report.accounts.iter().enumerate() {
            let account = self.accounts.entry(account_id.clone()).or_default();
            decay_score(account, settings, now);
            let account_percent = round_percent(account.score / settings.ad_account_score_limit * 100.0);
            highest_percent = highest_percent.max(account_percent);
            if position == 0 {
                let blocked_seconds = account
                    .blocked_until
                    .map(|until| until.saturating_duration_since(now).as_secs())
                    .unwrap_or(0);
                let decay_seconds = (account.score / settings.ad_account_score_limit
                    * settings.ad_account_score_decay_seconds)
                    .ceil() as u64;
                headers.push((
                    "x-ad-account-usage",
                    serde_json::json!({
                        "acc_id_util_pct": account_percent,
                        "reset_time_duration": blocked_seconds.max(decay_seconds),
                        "ads_api_access_tier": settings.access_tier,
                    })
                    .to_string(),
                ));
                if report.includes_insights {
                    headers.push((
                        "x-fb-ads-insights-throttle",
                        serde_json::json!({
                            "app_id_util_pct": app_percent,
                            "acc_id_util_pct": account_percent,
                            "ads_api_access_tier": settings.access_tier,
                        })
                        .to_string(),
                    ));
                }
            }
            let mut entries = Vec::new();
            for use_case in [BusinessUseCase::AdsManagement, BusinessUseCase::AdsInsights] {
                let quota = use_case_quota(settings, use_case, *active_ads);
                let counter = self.use_cases.entry((account_id.clone(), use_case)).or_default();
                counter.roll(now, settings.window_seconds);
                let used_percent = percent(counter.calls, quota);
                highest_percent = highest_percent.max(used_percent);
                let regain_minutes = if counter.calls > quota {
                    counter.seconds_left(now, settings.window_seconds).div_ceil(60)
                } else {
                    0
                };
                entries.push(serde_json::json!({
                    "type": use_case,
                    "call_count": used_percent,
                    "total_cputime": used_percent,
                    "total_time": used_percent,
                    "estimated_time_to_regain_access": regain_minutes,
                    "ads_api_access_tier": settings.access_tier,
                }));
            }
            business_use_cases.insert(account_id.trim_start_matches("act_").to_owned(), entries.into());
        }
        if !business_use_cases.is_empty() {
            headers.push((
                "x-business-use-case-usage",
                serde_json::Value::Object(business_use_cases).to_string(),
            ));
        }
        if highest_percent < settings.usage_headers_from_percent {
            return Vec::new();
        }
        headers
    }
}

fn decay_score(account: &mut AccountScore, settings: &RateLimitSettings, now: Instant) {
    if let Some(updated_at) = account.updated_at {
        let elapsed = now.duration_since(updated_at).as_secs_f64();
        let decay_per_second = settings.ad_account_score_limit / settings.ad_account_score_decay_seconds.max(1.0);
        account.score = (account.score - elapsed * decay_per_second).max(0.0);
    }
    account.updated_at = Some(now);
}

fn use_case_quota(settings: &RateLimitSettings, use_case: BusinessUseCase, active_ads: u64) -> u64 {
    match use_case {
        BusinessUseCase::AdsManagement => {
            settings.ads_management_base_calls + settings.ads_management_calls_per_active_ad * active_ads
        }
        BusinessUseCase::AdsInsights => {
            settings.ads_insights_base_calls + settings.ads_insights_calls_per_active_ad * active_ads
        }
    }
}

/// A usage percentage with two decimals, as Meta reports them (`9.67`).
fn percent(used: u64, allowed: u64) -> f64 {
    if allowed == 0 {
        return 100.0;
    }
    round_percent(used as f64 / allowed as f64 * 100.0)
}

fn round_percent(value: f64) -> f64 {
    (value.min(100.0) * 100.0).round() / 100.0
}
