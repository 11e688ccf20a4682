//! What a Graph API answer means for a change, decided by (HTTP status, code, subcode) only: Meta localises
//! its messages, so their text never decides anything.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// 1, 2, 5xx, time-outs, dropped connections: retry with backoff (the outcome of a write may be unknown).
    Transient,
    /// 4, 17, 32, 613 with a subcode, 8000x: wait as the usage headers say, then retry, without counting it
    /// against the change.
    Throttled,
    /// 613 / 1487632: the ad set's budget is locked for an hour from this refusal; hold the change.
    BudgetLocked,
    /// 613 without a subcode (abuse prevention): stop the account and alert a person.
    AccountStopped,
    /// 2635: the configured API version is retired; stop and alert.
    VersionRetired,
    /// 100, 190 (HTTP 400 or 401), 200-range permissions and other validation errors: never retried.
    Permanent,
}

/// The class of a failed Graph call; `code` is `None` when there was no Graph error body (a proxy's 502, a
/// time-out).
pub fn classify(http_status: Option<u16>, code: Option<u32>, subcode: Option<u32>) -> ErrorClass {
    match (code, subcode) {
        (Some(613), Some(1_487_632)) => ErrorClass::BudgetLocked,
        (Some(613), None) => ErrorClass::AccountStopped,
        (Some(4 | 17 | 32 | 613), _) | (Some(80_000..=80_014), _) => ErrorClass::Throttled,
        (Some(1 | 2), _) => ErrorClass::Transient,
        (Some(2635), _) => ErrorClass::VersionRetired,
        (Some(_), _) if http_status.is_some_and(|status| status >= 500) => ErrorClass::Transient,
        (Some(_), _) => ErrorClass::Permanent,
        (None, _) => match http_status {
            Some(status) if (400..500).contains(&status) && status != 408 && status != 429 => ErrorClass::Permanent,
            _ => ErrorClass::Transient,
        },
    }
}

/// Rate-limit usage reported for one ad account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountUsage {
    /// Without the `act_` prefix, as the headers name accounts.
    pub account_id: String,
    /// The highest of its percentages (call count, CPU, time, account score).
    pub highest_percent: f64,
    /// How long until a throttled account may call again, when the headers say.
    pub regain_access_after: Option<Duration>,
}

/// What the usage headers of one response (or one batch operation) say.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct UsageReport {
    pub app_percent: Option<f64>,
    pub accounts: Vec<AccountUsage>,
    /// `X-Ad-Account-Usage` when the caller did not say which account the call was charged to (the header
    /// does not name it); `attributed_to` files it under the account. Its `account_id` is empty.
    pub charged_account: Option<AccountUsage>,
}

impl UsageReport {
    /// The report with the charged account's usage filed under `account_id` (with or without `act_`).
    pub fn attributed_to(&self, account_id: &str) -> UsageReport {
        let mut report = self.clone();
        if let Some(charged) = report.charged_account.take() {
            merge_usage(
                &mut report.accounts,
                account_id.trim_start_matches("act_"),
                Some(charged.highest_percent),
                charged.regain_access_after,
            );
        }
        report
    }
}

/// Adds what one header said about an account to what the others said: the highest percentage and the
/// longest wait win.
fn merge_usage(accounts: &mut Vec<AccountUsage>, account_id: &str, percent: Option<f64>, regain: Option<Duration>) {
    let entry = match accounts.iter().position(|usage| usage.account_id == account_id) {
        Some(position) => &mut accounts[position],
        None => {
            accounts.push(AccountUsage {
                account_id: account_id.to_owned(),
                highest_percent: 0.0,
                regain_access_after: None,
            });
            accounts.last_mut().expect("just pushed")
        }
    };
    if let Some(percent) = percent {
        entry.highest_percent = entry.highest_percent.max(percent);
    }
    if let Some(regain) = regain {
        entry.regain_access_after = Some(entry.regain_access_after.map_or(regain, |known| known.max(regain)));
    }
}

/// A percentage as Meta may write it: a number (`9.67`, `12`) or a numeric string.
fn percent_of(value: Option<&serde_json::Value>) -> Option<f64> {
    match value? {
        serde_json::Value::Number(number) => number.as_f64(),
        serde_json::Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn highest(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    values.into_iter().flatten().reduce(f64::max)
}

/// The headers `parse_usage` reads (lowercase).
const USAGE_HEADERS: [&str; 4] = [
    "x-app-usage",
    "x-ad-account-usage",
    "x-fb-ads-insights-throttle",
    "x-business-use-case-usage",
];

/// Parses the usage headers among `headers` (name, value): any case, any subset, malformed ones ignored.
/// `own_account` (without `act_`) receives `X-Ad-Account-Usage`, which does not name its account; without
/// it the usage waits in `charged_account` for `attributed_to`.
pub fn parse_usage<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    own_account: Option<&str>,
) -> UsageReport {
    let mut report = UsageReport::default();
    let mut accounts: Vec<AccountUsage> = Vec::new();
    for (name, value) in headers {
        // Every operation of a batch carries headers; only the usage headers are worth parsing.
        let name = name.to_ascii_lowercase();
        if !USAGE_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let Ok(parsed) = serde_json::from_str::<serde_json::Value>(value) else {
            continue;
        };
        match name.as_str() {
            "x-app-usage" => {
                report.app_percent =
                    highest(["call_count", "total_cputime", "total_time"].map(|field| percent_of(parsed.get(field))));
            }
            "x-ad-account-usage" | "x-fb-ads-insights-throttle" => {
                let percent = percent_of(parsed.get("acc_id_util_pct"));
                let reset = parsed
                    .get("reset_time_duration")
                    .and_then(|seconds| percent_of(Some(seconds)))
                    .filter(|seconds| *seconds > 0.0 && percent.is_some_and(|percent| percent >= 100.0))
                    .map(Duration::from_secs_f64);
                match own_account {
                    Some(account_id) => merge_usage(&mut accounts, account_id, percent, reset),
                    None => {
                        let mut charged = report.charged_account.take().unwrap_or(AccountUsage {
                            account_id: String::new(),
                            highest_percent: 0.0,
                            regain_access_after: None,
                        });
                        charged.highest_percent = charged.highest_percent.max(percent.unwrap_or(0.0));
                        charged.regain_access_after = charged.regain_access_after.max(reset);
                        report.charged_account = Some(charged);
                    }
                }
            }
            "x-business-use-case-usage" => {
                let Some(by_account) = parsed.as_object() else { continue };
                for (account_id, entries) in by_account {
                    for entry in entries.as_array().into_iter().flatten() {
                        let percent = highest(
                            ["call_count", "total_cputime", "total_time"].map(|field| percent_of(entry.get(field))),
                        );
                        let regain = percent_of(entry.get("estimated_time_to_regain_access"))
                            .filter(|minutes| *minutes > 0.0)
                            .map(|minutes| Duration::from_secs_f64(minutes * 60.0));
                        merge_usage(&mut accounts, account_id.trim_start_matches("act_"), percent, regain);
                    }
                }
            }
            _ => {}
        }
    }
    report.accounts = accounts;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classed_by_code_and_subcode_never_by_message() {
        assert_eq!(classify(Some(500), Some(2), None), ErrorClass::Transient);
        assert_eq!(classify(Some(500), Some(1), Some(99)), ErrorClass::Transient);
        assert_eq!(classify(Some(502), None, None), ErrorClass::Transient);
        assert_eq!(classify(None, None, None), ErrorClass::Transient, "a time-out");
        assert_eq!(
            classify(Some(400), Some(613), Some(1_487_632)),
            ErrorClass::BudgetLocked
        );
        assert_eq!(classify(Some(400), Some(613), None), ErrorClass::AccountStopped);
        for (code, subcode) in [
            (4, None),
            (17, Some(2_446_079)),
            (32, None),
            (613, Some(5_044_001)),
            (80_004, Some(2_446_079)),
        ] {
            assert_eq!(
                classify(Some(400), Some(code), subcode),
                ErrorClass::Throttled,
                "{code}"
            );
        }
        assert_eq!(classify(Some(400), Some(100), Some(1_885_272)), ErrorClass::Permanent);
        assert_eq!(classify(Some(401), Some(190), None), ErrorClass::Permanent);
        assert_eq!(classify(Some(400), Some(190), None), ErrorClass::Permanent);
        assert_eq!(classify(Some(400), Some(2635), None), ErrorClass::VersionRetired);
        assert_eq!(classify(Some(429), None, None), ErrorClass::Transient);
    }

    #[test]
    fn usage_headers_are_read_tolerantly() {
        let headers = [
            (
                "X-App-Usage",
                r#"{"call_count": 9.67, "total_cputime": 3, "total_time": "12.5"}"#,
            ),
            (
                "x-ad-account-usage",
                r#"{"acc_id_util_pct": 100, "reset_time_duration": 45, "ads_api_access_tier": "standard_access"}"#,
            ),
            (
                "X-Business-Use-Case-Usage",
                r#"{"111": [{"type": "ads_management", "call_count": 40.5, "total_cputime": 1, "total_time": 2, "estimated_time_to_regain_access": 0}],
                    "222": [{"type": "ads_insights", "call_count": 100, "estimated_time_to_regain_access": 7}]}"#,
            ),
            ("X-Garbage", "not json"),
        ];
        let report = parse_usage(headers, Some("111"));
        assert_eq!(report.app_percent, Some(12.5));
        let first = &report.accounts[0];
        assert_eq!((first.account_id.as_str(), first.highest_percent), ("111", 100.0));
        assert_eq!(first.regain_access_after, Some(Duration::from_secs(45)));
        let second = &report.accounts[1];
        assert_eq!(second.account_id, "222");
        assert_eq!(second.regain_access_after, Some(Duration::from_secs(7 * 60)));

        assert_eq!(
            parse_usage([], None),
            UsageReport::default(),
            "no headers: nothing known"
        );
        let malformed = parse_usage([("x-business-use-case-usage", r#"{"111": "oops"}"#)], None);
        assert!(malformed.accounts.is_empty());
    }

    #[test]
    fn the_ad_account_usage_of_a_batch_operation_is_filed_under_the_account_it_was_charged_to() {
        // Inside a batch the caller parses each operation's headers without knowing the account; the
        // executor attributes them to the operation's account before pacing on them.
        let operation_headers = [
            (
                "X-Ad-Account-Usage",
                r#"{"acc_id_util_pct": 92.7, "reset_time_duration": 279}"#,
            ),
            (
                "X-Business-Use-Case-Usage",
                r#"{"111": [{"type": "ads_management", "call_count": 2.3, "estimated_time_to_regain_access": 0}]}"#,
            ),
        ];
        let report = parse_usage(operation_headers, None);
        assert_eq!(report.accounts[0].highest_percent, 2.3, "the header naming the account");
        let attributed = report.attributed_to("act_111");
        assert_eq!(attributed.accounts.len(), 1);
        assert_eq!(
            attributed.accounts[0].highest_percent, 92.7,
            "the account score counts too"
        );
        assert_eq!(
            attributed.accounts[0].regain_access_after, None,
            "below 100%: no reset wait"
        );
        assert!(attributed.charged_account.is_none());
        assert_eq!(
            report.attributed_to("222").accounts[1],
            AccountUsage {
                account_id: "222".into(),
                highest_percent: 92.7,
                regain_access_after: None,
            }
        );
    }
}
