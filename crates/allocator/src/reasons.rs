//! How each recommendation explains itself: one sentence built from the very numbers that decided it — P(best),
//! the CTR and ROAS intervals, the decision, the blend, the budget change, the prior's source — and a clause for
//! each thing that shaped the budget beyond P(best) (fatigue, a rising CPM, waiting, a relaxed limit).

use adloop_money::{Currency, MinorUnits, Money};

use crate::config::AllocatorConfig;
use crate::decision::{AdDecision, Decision};
use crate::input::{AdInput, AdStatus};
use crate::learning_capacity::LearningCost;
use crate::posterior::AdPosterior;

/// What became of one ad in the allocation, beyond its decision: what its reason reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AdOutcome {
    pub probability_best: f64,
    pub recommended: MinorUnits,
    /// (recommended − current) / current; `None` without a current budget.
    pub change_fraction: Option<f64>,
    /// Its budget was set where its next unit of spend returns what the other ads' do (its delivery curve).
    pub funded_by_marginal_return: bool,
    /// It waits with no budget: the per-ad floor does not fit the total for every active ad.
    pub waiting_for_the_floor: bool,
    /// It waits with no budget: the total cannot tell it apart in the learning horizon.
    pub waiting_to_learn: Option<LearningCost>,
    /// The ±change limit was relaxed for it to keep the total.
    pub change_limit_relaxed: bool,
    /// It is young and funded, and the young-ad exploration floor did not fit the total.
    pub young_floor_dropped: bool,
}

/// The reason of `ad`'s recommendation.
pub(crate) fn recommendation_reason(
    ad: &AdInput,
    posterior: &AdPosterior,
    decision: &AdDecision,
    outcome: &AdOutcome,
    currency: Currency,
    per_ad_floor: MinorUnits,
    config: &AllocatorConfig,
) -> String {
    let money = |amount: MinorUnits| Money { amount, currency };
    let budget_text = match outcome.change_fraction {
        Some(change) => format!(
            "budget {} → {} ({:+.0}%)",
            money(ad.current_daily_budget),
            money(outcome.recommended),
            change * 100.0
        ),
        None => format!("budget {} (no current budget)", money(outcome.recommended)),
    };
    let decision_reason = &decision.reason;
    let ctr = &decision.ctr;
    let mut reason = match (ad.status, decision.decision) {
        (AdStatus::Paused, _) => format!("paused: no budget; {decision_reason}"),
        (_, Decision::Kill) => format!("kill: {decision_reason}; its budget goes to the other ads"),
        _ => format!(
            "P(best) {:.2}; CTR {:.2}% [{:.2}, {:.2}]; {}; weights {:.0}% CTR / {:.0}% ROAS at {:.0} h; {}; {}",
            outcome.probability_best,
            ctr.mean * 100.0,
            ctr.lower_95 * 100.0,
            ctr.upper_95 * 100.0,
            decision_reason,
            posterior.ctr_weight * 100.0,
            (1.0 - posterior.ctr_weight) * 100.0,
            ad.age_hours,
            budget_text,
            format_args!("prior from {}", posterior.prior_source),
        ),
    };
    if posterior.fatigue_factor < 0.99 {
        let frequency = ad
            .frequency
            .map(|frequency| format!(", frequency {frequency:.1}"))
            .unwrap_or_default();
        reason.push_str(&format!(
            "; fatigue: recent CTR below earlier CTR{frequency}, projected ×{:.2} over the next {:.0} h",
            posterior.fatigue_factor, config.fatigue_projection_hours
        ));
    }
    if let Some(exponent) = posterior.learned_conversion_link {
        reason.push_str(&format!(
            "; its learned conversion lift taken to the power {exponent:.1}, as far as this account's own ads bear \
             the learner out"
        ));
    }
    if crate::weekday_rhythm::weekday_multiplier_is_worth_saying(posterior.weekday_factor) {
        reason.push_str(&format!(
            "; its own weekday rhythm: its CTR over the coming day ×{:.2} its week's",
            posterior.weekday_factor
        ));
    }
    if let Some(curve) = ad.delivery_curve.filter(|_| outcome.funded_by_marginal_return) {
        reason.push_str(&format!(
            "; its CPM rises with its daily volume (from {} per thousand impressions, twice that at {:.0} a day), \
             so it is funded to where its next unit of spend returns what the other ads' do",
            money(MinorUnits(curve.base_cpm.round() as i64)),
            curve.cpm_doubling_daily_impressions
        ));
    }
    if outcome.waiting_for_the_floor {
        reason.push_str(&format!(
            "; no budget this time: an ad gets nothing or at least the per-ad floor of {}, and the total cannot \
             give it to every active ad, so the ads least likely to be best wait",
            money(per_ad_floor)
        ));
    }
    if let Some(learning) = &outcome.waiting_to_learn {
        let major = |amount: f64| money(MinorUnits::from_major_rounded(amount, currency));
        reason.push_str(&format!(
            "; no budget this time: telling an ad apart takes {} conversions, about {} at its account's cost per \
             conversion (about {}), and the {} the total buys in {:.0} days goes to the ads likelier to be best",
            config.conversions_to_tell_an_ad_apart,
            major(learning.cost_to_tell_apart),
            major(learning.cost_per_conversion),
            major(learning.budget_over_horizon),
            config.learning_horizon_days,
        ));
    }
    if outcome.change_limit_relaxed {
        reason.push_str("; the ±change limit was relaxed to keep the total");
    }
    if outcome.young_floor_dropped {
        reason.push_str("; the young-ad exploration floor did not fit the total and was dropped");
    }
    reason
}
