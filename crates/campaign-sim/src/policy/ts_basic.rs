//! `ts-basic`: textbook Thompson sampling, what a data scientist would write in an afternoon — the peer
//! adloop must beat, not only uniform. Per ad, conversions per click are Beta(1 + conversions, 1 + clicks −
//! conversions) on the lifetime counts reported so far; an ad's value per unit of spend is a draw of that
//! times its observed value per conversion, divided by its observed cost per click (an ad without clicks or
//! conversions yet borrows the account's pooled figures). Budget is split in proportion to each ad's
//! probability of having the highest value per spend, estimated from joint draws. No CTR blend, no fatigue, no
//! reporting-delay model, no floors or change limits.
//!
//! `ts-basic-limited` is the same sampler held to adloop's change limit (each ad with a budget moves at most
//! ±`max_change_fraction` of it per decision, the budgets as near proportional to P(best) as that allows, with
//! the allocator's own `fit_budgets`): the textbook peer under the guard rail adloop keeps, so that adloop's
//! regret over it is the cost of adloop's modelling alone.

use adloop_money::{MinorUnits, split_proportionally};
use rand_distr::{Beta, Distribution as _};

use super::{HiddenTruths, Policy, PolicyError, active_positions, fit_to_minimum_budget};
use crate::observation::{AdObservation, Observation};
use crate::rng::{SimRng, StreamPurpose, stream};

/// Joint draws per decision for the probability of being best (±0.016 at worst, 95%).
const DRAWS: usize = 1_000;

pub struct TsBasic {
    rng: SimRng,
    /// The change limit per decision (`ts-basic-limited`); `None` for none.
    max_change_fraction: Option<f64>,
}

impl TsBasic {
    pub fn new(seed: u64) -> TsBasic {
        TsBasic {
            rng: stream(seed, StreamPurpose::PolicyDraws, 2),
            max_change_fraction: None,
        }
    }

    /// The same sampler (the same draws) held to ±`max_change_fraction` per decision.
    pub fn limited(seed: u64, max_change_fraction: f64) -> TsBasic {
        TsBasic {
            max_change_fraction: Some(max_change_fraction),
            ..TsBasic::new(seed)
        }
    }
}

/// Budgets near proportional to `weights` with each ad at `positions` within ±`max_change_fraction` of its
/// current budget (an ad without one is unbounded) and the total kept; `None` when the limit cannot hold.
fn split_within_change_limit(
    observation: &Observation,
    positions: &[usize],
    weights: &[f64],
    max_change_fraction: f64,
) -> Option<Vec<MinorUnits>> {
    let bounds: Vec<adloop_allocator::BudgetBounds> = positions
        .iter()
        .map(|&position| {
            let (lower, upper) = super::change_limit_bounds(
                observation.ads[position].current_daily_budget,
                max_change_fraction,
                observation.total_daily_budget,
            );
            adloop_allocator::BudgetBounds { lower, upper }
        })
        .collect();
    adloop_allocator::fit_budgets(observation.total_daily_budget, weights, &bounds)
}

/// The account's pooled cost per click and value per conversion (major units; `None` before any click or
/// conversion), the fallback for ads that have none of their own yet.
fn pooled_rates(ads: &[&AdObservation]) -> (Option<f64>, Option<f64>) {
    let clicks: u64 = ads.iter().map(|ad| ad.clicks).sum();
    let spend: i64 = ads.iter().map(|ad| ad.spend.get()).sum();
    let conversions: u64 = ads.iter().map(|ad| ad.conversions).sum();
    let value: i64 = ads.iter().map(|ad| ad.conversion_value.get()).sum();
    let cost_per_click = (clicks > 0).then(|| spend as f64 / clicks as f64);
    let value_per_conversion = (conversions > 0).then(|| value as f64 / conversions as f64);
    (cost_per_click, value_per_conversion)
}

impl Policy for TsBasic {
    fn name(&self) -> &str {
        if self.max_change_fraction.is_some() {
            "ts-basic-limited"
        } else {
            "ts-basic"
        }
    }

    fn decide(
        &mut self,
        observation: &Observation,
        _hidden: &HiddenTruths<'_>,
    ) -> Result<Vec<MinorUnits>, PolicyError> {
        let active = active_positions(observation);
        let mut budgets = vec![MinorUnits::ZERO; observation.ads.len()];
        if active.is_empty() {
            return Ok(budgets);
        }
        let active_ads: Vec<&AdObservation> = active.iter().map(|&position| &observation.ads[position]).collect();
        let (pooled_cost_per_click, pooled_value_per_conversion) = pooled_rates(&active_ads);
        let mut samplers = Vec::with_capacity(active_ads.len());
        for ad in &active_ads {
            let conversions = ad.conversions.min(ad.clicks) as f64;
            let conversion_rate =
                Beta::new(1.0 + conversions, 1.0 + ad.clicks as f64 - conversions).map_err(|error| {
                    PolicyError::Failed {
                        policy: "ts-basic".into(),
                        reason: format!("beta for ad {}: {error}", ad.identity.ad_id),
                    }
                })?;
            let cost_per_click = if ad.clicks > 0 {
                ad.spend.get() as f64 / ad.clicks as f64
            } else {
                pooled_cost_per_click.unwrap_or(1.0)
            };
            let value_per_conversion = if ad.conversions > 0 {
                ad.conversion_value.get() as f64 / ad.conversions as f64
            } else {
                pooled_value_per_conversion.unwrap_or(1.0)
            };
            samplers.push((
                conversion_rate,
                value_per_conversion / cost_per_click.max(f64::MIN_POSITIVE),
            ));
        }
        let mut times_best = vec![0_u32; samplers.len()];
        for _ in 0..DRAWS {
            let mut best = (0, f64::NEG_INFINITY);
            for (slot, (conversion_rate, value_per_click_cost)) in samplers.iter().enumerate() {
                let value_per_spend = conversion_rate.sample(&mut self.rng) * value_per_click_cost;
                if value_per_spend > best.1 {
                    best = (slot, value_per_spend);
                }
            }
            times_best[best.0] += 1;
        }
        let weights: Vec<f64> = times_best.iter().map(|&count| f64::from(count)).collect();
        let limited = self
            .max_change_fraction
            .and_then(|fraction| split_within_change_limit(observation, &active, &weights, fraction));
        let shares = limited.unwrap_or_else(|| split_proportionally(observation.total_daily_budget, &weights));
        for (position, share) in active.into_iter().zip(shares) {
            budgets[position] = share;
        }
        fit_to_minimum_budget(&mut budgets, observation.minimum_daily_budget);
        Ok(budgets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::AdStatus;
    use crate::policy::observed_ad_for_tests;

    fn ad(ad_id: &str, clicks: u64, conversions: u64, spend: i64, value: i64) -> AdObservation {
        AdObservation {
            impressions: clicks * 100,
            clicks,
            spend: MinorUnits(spend),
            conversions,
            conversion_value: MinorUnits(value),
            frequency: 1.5,
            ..observed_ad_for_tests(ad_id, 10_000)
        }
    }

    fn observation(ads: Vec<AdObservation>) -> Observation {
        Observation {
            hour: 240,
            currency: adloop_money::Currency::parse("USD").unwrap(),
            total_daily_budget: MinorUnits(100_000),
            minimum_daily_budget: MinorUnits::ZERO,
            ads,
        }
    }

    /// Same clicks and cost; ad b converts three times as often as ad a at the same order value.
    fn ad_b_converting_three_times_as_often() -> Vec<AdObservation> {
        vec![
            ad("a", 2_000, 40, 200_000, 400_000),
            ad("b", 2_000, 120, 200_000, 1_200_000),
            ad("c", 2_000, 60, 200_000, 600_000),
        ]
    }

    #[test]
    fn the_clear_winner_on_value_per_spend_gets_most_of_the_budget_and_the_total_is_kept() {
        let ads = ad_b_converting_three_times_as_often();
        let budgets = TsBasic::new(7)
            .decide(
                &observation(ads),
                &HiddenTruths {
                    true_roas: &[],
                    true_rates: &[],
                    daily_auction_curves: &[],
                },
            )
            .unwrap();
        assert_eq!(budgets.iter().map(|budget| budget.get()).sum::<i64>(), 100_000);
        assert!(budgets[1].get() > 95_000, "{budgets:?}");
    }

    #[test]
    fn ads_without_data_share_the_budget_and_paused_ads_get_none() {
        let mut paused = ad("p", 0, 0, 0, 0);
        paused.status = AdStatus::Paused;
        let budgets = TsBasic::new(7)
            .decide(
                &observation(vec![ad("a", 0, 0, 0, 0), ad("b", 0, 0, 0, 0), paused]),
                &HiddenTruths {
                    true_roas: &[],
                    true_rates: &[],
                    daily_auction_curves: &[],
                },
            )
            .unwrap();
        assert_eq!(budgets[2], MinorUnits::ZERO);
        let (first, second) = (budgets[0].get(), budgets[1].get());
        assert_eq!(first + second, 100_000);
        assert!(
            (first - second).abs() < 10_000,
            "two unknown ads are close to even: {budgets:?}"
        );
    }

    #[test]
    fn the_limited_sampler_moves_each_budget_at_most_half_and_keeps_the_total() {
        // Every ad at 10,000 of a 30,000 total: unlimited, ad b takes nearly all of it.
        let ads = ad_b_converting_three_times_as_often();
        let account = Observation {
            total_daily_budget: MinorUnits(30_000),
            ..observation(ads)
        };
        let no_truths = HiddenTruths {
            true_roas: &[],
            true_rates: &[],
            daily_auction_curves: &[],
        };
        let unlimited = TsBasic::new(7).decide(&account, &no_truths).unwrap();
        assert!(unlimited[1].get() > 28_000, "{unlimited:?}");
        let mut limited_policy = TsBasic::limited(7, 0.5);
        assert_eq!(limited_policy.name(), "ts-basic-limited");
        let limited = limited_policy.decide(&account, &no_truths).unwrap();
        assert_eq!(limited.iter().map(|budget| budget.get()).sum::<i64>(), 30_000);
        assert!(
            limited.iter().all(|budget| (5_000..=15_000).contains(&budget.get())),
            "{limited:?}"
        );
        assert_eq!(
            limited[1],
            MinorUnits(15_000),
            "the winner grows as far as the limit allows"
        );
    }
}
