//! Kill / scale / maintain, with the original's thresholds as defaults, decided on posterior intervals (not
//! on noisy point estimates) and explained with the numbers that decided it.

use adloop_money::{Currency, MinorUnits, Money};
use serde::{Deserialize, Serialize};

use crate::config::AllocatorConfig;
use crate::posterior::Interval;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Maintain,
    Scale,
    Kill,
}

/// What a kill or scale decision reads of an ad besides its ROAS interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionEvidence {
    pub spend: MinorUnits,
    /// The account's total daily budget over its active ads.
    pub even_daily_share: MinorUnits,
    /// Whether the ad's account has reported any conversion. Before one, every conversion is valued at one
    /// major unit (a placeholder the ROAS interval reads), so no ROAS line can be judged.
    pub account_has_conversions: bool,
}

/// Kill when, after enough spend (`min_spend_for_decision_even_daily_shares` of the even daily share) in an
/// account whose conversions say what one is worth, even the optimistic end of the ROAS interval is below the
/// kill line; scale when even its pessimistic end is above the scale line. Before the account's first
/// conversion the interval rests on a placeholder value, so nothing is judged (the ads a small budget cannot
/// feed wait instead: `learning_capacity`).
pub fn decide(
    roas: &Interval,
    evidence: DecisionEvidence,
    currency: Currency,
    config: &AllocatorConfig,
) -> (Decision, String) {
    let DecisionEvidence {
        spend,
        even_daily_share,
        account_has_conversions,
    } = evidence;
    let spent = Money {
        amount: spend,
        currency,
    };
    let minimum_spend = MinorUnits(
        (even_daily_share.get() as f64 * config.min_spend_for_decision_even_daily_shares)
            .round()
            .max(1.0) as i64,
    );
    let roas_text = format!(
        "ROAS {:.2} (95% interval {:.2} to {:.2})",
        roas.mean, roas.lower_95, roas.upper_95
    );
    if spend < minimum_spend {
        let minimum = Money {
            amount: minimum_spend,
            currency,
        };
        return (
            Decision::Maintain,
            format!("{roas_text} after {spent} spent: too early to judge before {minimum}"),
        );
    }
    if !account_has_conversions {
        return (
            Decision::Maintain,
            format!(
                "{roas_text} after {spent} spent: too early to judge: the account has reported no conversion \
                 yet, so what one is worth is not known"
            ),
        );
    }
    if roas.upper_95 < config.kill_roas_below {
        return (
            Decision::Kill,
            format!(
                "{roas_text} after {spent} spent: confidently below the {:.2} kill line",
                config.kill_roas_below
            ),
        );
    }
    if roas.lower_95 > config.scale_roas_above {
        return (
            Decision::Scale,
            format!(
                "{roas_text} after {spent} spent: confidently above the {:.2} scale line",
                config.scale_roas_above
            ),
        );
    }
    (
        Decision::Maintain,
        format!(
            "{roas_text} after {spent} spent: between the {:.2} kill and {:.2} scale lines",
            config.kill_roas_below, config.scale_roas_above
        ),
    )
}
