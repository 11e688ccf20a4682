//! Kill / scale / maintain, with the original's thresholds as defaults, decided on posterior intervals (not
//! on noisy point estimates) and explained with the numbers that decided it.

use adloop_money::{Currency, MinorUnits, Money};
use serde::{Deserialize, Serialize};

use crate::config::AllocatorConfig;
use crate::input::{AdStatus, AllocationRequest};
use crate::posterior::{AdPosterior, Interval};

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

/// One ad's decision, the reason that decided it, and the intervals it read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AdDecision {
    pub decision: Decision,
    pub reason: String,
    pub ctr: Interval,
    pub roas: Interval,
}

/// Every ad's decision (`posteriors` in the request's order). Killing every active ad would leave the budget
/// nowhere, so then none is killed: the account's best bets keep it, by P(best).
pub(crate) fn decide_every_ad(
    request: &AllocationRequest,
    posteriors: &[&AdPosterior],
    config: &AllocatorConfig,
) -> Vec<AdDecision> {
    debug_assert_eq!(request.ads.len(), posteriors.len());
    let active_ads = request
        .ads
        .iter()
        .filter(|ad| ad.status == AdStatus::Active)
        .count()
        .max(1);
    let even_daily_share = MinorUnits(request.total_daily_budget.get() / active_ads as i64);
    let accounts_with_conversions: std::collections::HashSet<&str> = request
        .ads
        .iter()
        .filter(|ad| ad.conversions > 0)
        .map(|ad| ad.ids.account_id.as_str())
        .collect();
    let mut decisions: Vec<AdDecision> = request
        .ads
        .iter()
        .zip(posteriors)
        .map(|(ad, posterior)| {
            let roas = posterior.roas();
            let evidence = DecisionEvidence {
                spend: ad.spend,
                even_daily_share,
                account_has_conversions: accounts_with_conversions.contains(ad.ids.account_id.as_str()),
            };
            let (decision, reason) = decide(&roas, evidence, request.currency, config);
            AdDecision {
                decision,
                reason,
                ctr: posterior.ctr(),
                roas,
            }
        })
        .collect();
    let every_active_ad_killed = request
        .ads
        .iter()
        .zip(&decisions)
        .filter(|(ad, _)| ad.status == AdStatus::Active)
        .all(|(_, ad_decision)| ad_decision.decision == Decision::Kill);
    if every_active_ad_killed {
        for (ad, ad_decision) in request.ads.iter().zip(decisions.iter_mut()) {
            if ad.status == AdStatus::Active {
                ad_decision.decision = Decision::Maintain;
                ad_decision
                    .reason
                    .push_str("; every active ad is below the kill line, so none is killed");
            }
        }
    }
    decisions
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
