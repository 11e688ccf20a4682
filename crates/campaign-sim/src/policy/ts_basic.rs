//! `ts-basic`: textbook Thompson sampling, what a data scientist would write in an afternoon — the peer
//! adloop must beat, not only uniform. Per ad, conversions per click are Beta(1 + conversions, 1 + clicks −
//! conversions) on the lifetime counts reported so far; an ad's value per unit of spend is a draw of that
//! times its observed value per conversion, divided by its observed cost per click (an ad without clicks or
//! conversions yet borrows the account's pooled figures). Budget is split in proportion to each ad's
//! probability of having the highest value per spend, estimated from joint draws. No CTR blend, no fatigue, no
//! reporting-delay model, no floors or change limits.

use adloop_money::{MinorUnits, split_proportionally};
use rand_distr::{Beta, Distribution as _};

use super::{HiddenTruths, Policy, PolicyError, active_positions, fit_to_minimum_budget};
use crate::observation::{AdObservation, Observation};
use crate::rng::{SimRng, StreamPurpose, stream};

/// Joint draws per decision for the probability of being best (±0.016 at worst, 95%).
const DRAWS: usize = 1_000;

pub struct TsBasic {
    rng: SimRng,
}

impl TsBasic {
    pub fn new(seed: u64) -> TsBasic {
        TsBasic {
            rng: stream(seed, StreamPurpose::PolicyDraws, 2),
        }
    }
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
        "ts-basic"
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
        for (position, share) in active
            .into_iter()
            .zip(split_proportionally(observation.total_daily_budget, &weights))
        {
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

    #[test]
    fn the_clear_winner_on_value_per_spend_gets_most_of_the_budget_and_the_total_is_kept() {
        // Same clicks and cost; ad b converts three times as often at the same order value.
        let ads = vec![
            ad("a", 2_000, 40, 200_000, 400_000),
            ad("b", 2_000, 120, 200_000, 1_200_000),
            ad("c", 2_000, 60, 200_000, 600_000),
        ];
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
}
