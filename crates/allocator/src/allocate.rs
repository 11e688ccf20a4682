//! The allocation itself: posteriors → draws → P(best) → bounded, conserved budgets → explained
//! recommendations. Split in steps so a service can cache the per-ad draws between them.

use adloop_money::MinorUnits;
use serde::{Deserialize, Serialize};

use crate::account_population::{populations_by_account, with_learned_strengths};
use crate::budget::{BudgetBounds, change_limit_bounds, fit_budgets};
use crate::config::AllocatorConfig;
use crate::decision::{Decision, decide_every_ad};
use crate::delivery_curve::{CurvedAd, shares_equalising_marginal_returns};
use crate::draws::{ComponentNormals, ScoreDraws, draw_scores};
use crate::input::{AdIds, AdStatus, AllocationRequest, InputError, input_error, validate_request};
use crate::learned_prior::PriorScales;
use crate::learning_capacity::{LearningCost, ads_beyond_learning_capacity};
use crate::population::{PopulationStats, evidence_and_population};
use crate::posterior::{AdPosterior, Interval, posterior_from_evidence};
use crate::probability_best::probability_of_being_best;
use crate::quantize::{draws_key, quantize_posterior};
use crate::reasons::{AdOutcome, recommendation_reason};

/// The seed used when a request leaves it at 0: fixed, so repeated polls of an unchanged account get the
/// same allocation (and the same cached draws).
const DEFAULT_SEED: u64 = 0x00AD_100B;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub ids: AdIds,
    pub current_daily_budget: MinorUnits,
    pub recommended_daily_budget: MinorUnits,
    /// (recommended − current) / current; `None` when there is no current budget.
    pub change_fraction: Option<f64>,
    pub probability_best: f64,
    pub ctr: Interval,
    pub roas: Interval,
    pub ctr_blend_weight: f64,
    pub fatigue_factor: f64,
    pub prior_source: String,
    pub decision: Decision,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    pub recommendations: Vec<Recommendation>,
    pub total_daily_budget: MinorUnits,
    pub model_version: String,
    pub seed: u64,
    /// The maximum change per step had to be relaxed to conserve the total (reasons say which ads).
    pub change_limit_relaxed: bool,
}

/// One ad ready for drawing: its quantised posterior and the key of its draws.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedAd {
    pub posterior: AdPosterior,
    pub draws_key: String,
}

/// Everything before the draws: validated input, population, quantised posteriors and their draw keys.
#[derive(Debug, Clone)]
pub struct PreparedAllocation {
    pub population: PopulationStats,
    /// Each ad's own account's population (its prior's), in the request's order: the request's where it
    /// spans one account.
    pub ad_populations: Vec<PopulationStats>,
    pub ads: Vec<PreparedAd>,
    pub draws_per_ad: usize,
    pub seed: u64,
    /// The standard-normal draws every ad's posterior components use.
    pub normals: std::sync::Arc<ComponentNormals>,
}

pub fn prepare(request: &AllocationRequest, config: &AllocatorConfig) -> Result<PreparedAllocation, InputError> {
    check_ad_count(request.ads.len(), config)?;
    validate_request(request)?;
    let seed = if request.seed == 0 { DEFAULT_SEED } else { request.seed };
    let draws_per_ad = config
        .draws_per_ad
        .min((config.max_total_draws / request.ads.len()).max(64));
    let (ad_evidence, population) =
        evidence_and_population(&request.ads, request.currency, &request.reporting_delays, config);
    let prior_scales = PriorScales::of_request(&request.ads).with_conversion_links(
        &request.ads,
        &ad_evidence,
        population.conversion_prior_conversions,
        config,
    );
    let population = with_learned_strengths(&request.ads, &ad_evidence, population, &prior_scales, config);
    let ad_populations = populations_by_account(request, &ad_evidence, &population, &prior_scales, config);
    let common_ctr_trends = crate::fatigue::common_ctr_trends(&request.ads, config);
    let ads = request
        .ads
        .iter()
        .zip(&ad_evidence)
        .zip(common_ctr_trends)
        .zip(&ad_populations)
        .map(|(((ad, evidence), common_ctr_trend), ad_population)| {
            let posterior = quantize_posterior(&posterior_from_evidence(
                ad,
                evidence,
                request.currency,
                ad_population,
                &prior_scales,
                common_ctr_trend,
                config,
            ));
            let draws_key = draws_key(&posterior, draws_per_ad, seed);
            PreparedAd { posterior, draws_key }
        })
        .collect();
    Ok(PreparedAllocation {
        population,
        ad_populations,
        ads,
        draws_per_ad,
        seed,
        normals: ComponentNormals::shared(draws_per_ad, seed),
    })
}

/// Refuses requests with more ads than `allocator.max_ads_per_request` (a service checks this before it even
/// converts the ads).
pub fn check_ad_count(ad_count: usize, config: &AllocatorConfig) -> Result<(), InputError> {
    if ad_count > config.max_ads_per_request {
        return Err(input_error(
            "ads",
            format!(
                "{ad_count} ads exceed the limit of {} per request (allocator.max_ads_per_request)",
                config.max_ads_per_request
            ),
        ));
    }
    Ok(())
}

/// The draws of one prepared ad (a pure function of its key).
pub fn draw(prepared: &PreparedAllocation, ad: &PreparedAd) -> ScoreDraws {
    draw_scores(&ad.posterior, &prepared.normals)
}

/// Each listed ad's blended score draws (`draws` holds every prepared ad's draws, in order).
pub fn blended_scores(prepared: &PreparedAllocation, draws: &[&ScoreDraws], indices: &[usize]) -> Vec<Vec<f32>> {
    indices
        .iter()
        .map(|&index| draws[index].blended(&prepared.ads[index].posterior, &prepared.population))
        .collect()
}

/// Allocates without a cache: the simulator's and the benchmarks' path.
pub fn allocate(request: &AllocationRequest, config: &AllocatorConfig) -> Result<Allocation, InputError> {
    let prepared = prepare(request, config)?;
    let draws: Vec<ScoreDraws> = prepared.ads.iter().map(|ad| draw(&prepared, ad)).collect();
    let draw_references: Vec<&ScoreDraws> = draws.iter().collect();
    finish_allocation(request, config, &prepared, &draw_references)
}

/// From draws to budgets and explanations.
pub fn finish_allocation(
    request: &AllocationRequest,
    config: &AllocatorConfig,
    prepared: &PreparedAllocation,
    draws: &[&ScoreDraws],
) -> Result<Allocation, InputError> {
    let posteriors: Vec<&AdPosterior> = prepared.ads.iter().map(|ad| &ad.posterior).collect();
    let decisions = decide_every_ad(request, &posteriors, config);
    let eligible: Vec<bool> = request
        .ads
        .iter()
        .zip(&decisions)
        .map(|(ad, ad_decision)| ad.status == AdStatus::Active && ad_decision.decision != Decision::Kill)
        .collect();
    let eligible_indices: Vec<usize> = (0..request.ads.len()).filter(|&index| eligible[index]).collect();
    if eligible_indices.is_empty() {
        return Err(input_error(
            "ads",
            "no active ad can take budget (all are paused or killed)",
        ));
    }

    let eligible_scores = blended_scores(prepared, draws, &eligible_indices);
    let eligible_score_slices: Vec<&[f32]> = eligible_scores.iter().map(Vec::as_slice).collect();
    let eligible_probabilities = probability_of_being_best(&eligible_score_slices);
    let mut probability_best = vec![0.0; request.ads.len()];
    for (position, &index) in eligible_indices.iter().enumerate() {
        probability_best[index] = eligible_probabilities[position];
    }

    let (budget_targets, curves_shape_the_split) = budget_targets(
        request,
        prepared,
        &eligible_indices,
        &eligible_score_slices,
        &probability_best,
    );
    // Which ads wait with no budget, and why: the floor does not fit the total (a flag by ad), or the budget
    // cannot learn on them (what telling the ad apart costs, which its reason quotes).
    let ad_count = request.ads.len();
    let mut waiting_for_the_floor = vec![false; ad_count];
    let mut eligible = eligible;
    for index in weakest_beyond_the_floor(request, &eligible_indices, &budget_targets) {
        waiting_for_the_floor[index] = true;
        eligible[index] = false;
    }
    let mut waiting_to_learn: Vec<Option<LearningCost>> = vec![None; ad_count];
    let candidates: Vec<usize> = eligible_indices
        .iter()
        .copied()
        .filter(|&index| eligible[index])
        .collect();
    for (index, learning) in
        ads_beyond_learning_capacity(request, config, &prepared.ad_populations, &candidates, &budget_targets)
    {
        waiting_to_learn[index] = Some(learning);
        eligible[index] = false;
    }
    let mut fitted = fit_with_relaxation(request, config, &eligible, &budget_targets, FitLimits::AS_REQUESTED)?;
    // Only an ad the floor holds up (at the floor, not above it) might do better waiting.
    let floor = request.constraints.per_ad_floor;
    let floor_holds_an_ad_up =
        floor.get() > 0 && (0..eligible.len()).any(|index| eligible[index] && fitted.0[index] <= floor);
    if floor_holds_an_ad_up {
        let dropped = weakest_that_would_fall_below_the_floor(request, config, &mut eligible, &budget_targets);
        if !dropped.is_empty() {
            for index in dropped {
                waiting_for_the_floor[index] = true;
            }
            fitted = fit_with_relaxation(request, config, &eligible, &budget_targets, FitLimits::AS_REQUESTED)?;
        }
    }
    let (budgets, change_limit_relaxed_for, young_floor_dropped) = fitted;
    let change_limit_relaxed = change_limit_relaxed_for.iter().any(|relaxed| *relaxed);

    let recommendations = request
        .ads
        .iter()
        .zip(decisions)
        .enumerate()
        .map(|(index, (ad, decision))| {
            let posterior = &prepared.ads[index].posterior;
            let current = ad.current_daily_budget;
            let recommended = budgets[index];
            let outcome = AdOutcome {
                probability_best: probability_best[index],
                recommended,
                change_fraction: (current.get() > 0)
                    .then(|| (recommended.get() - current.get()) as f64 / current.get() as f64),
                funded_by_marginal_return: curves_shape_the_split && eligible[index],
                waiting_for_the_floor: waiting_for_the_floor[index],
                waiting_to_learn: waiting_to_learn[index],
                change_limit_relaxed: change_limit_relaxed_for[index],
                young_floor_dropped: young_floor_dropped && ad.age_hours < config.young_ad_hours && eligible[index],
            };
            let reason = recommendation_reason(ad, posterior, &decision, &outcome, request.currency, floor, config);
            Recommendation {
                ids: ad.ids.clone(),
                current_daily_budget: current,
                recommended_daily_budget: recommended,
                change_fraction: outcome.change_fraction,
                probability_best: outcome.probability_best,
                ctr: decision.ctr,
                roas: decision.roas,
                ctr_blend_weight: posterior.ctr_weight,
                fatigue_factor: posterior.fatigue_factor,
                prior_source: posterior.prior_source.clone(),
                decision: decision.decision,
                reason,
            }
        })
        .collect();
    Ok(Allocation {
        recommendations,
        total_daily_budget: request.total_daily_budget,
        model_version: crate::MODEL_VERSION.to_owned(),
        seed: prepared.seed,
        change_limit_relaxed,
    })
}

/// The ads at `indices` as the split by marginal return sees them: `None` for an ad without a usable curve.
pub(crate) fn curved_ads(
    request: &AllocationRequest,
    prepared: &PreparedAllocation,
    indices: &[usize],
) -> Vec<Option<CurvedAd>> {
    let minor_units_per_major = request.currency.minor_units_per_major() as f64;
    indices
        .iter()
        .map(|&index| {
            let average_cpm = prepared.ads[index].posterior.cpm * minor_units_per_major;
            request.ads[index]
                .delivery_curve
                .as_ref()
                .and_then(|curve| CurvedAd::new(curve, average_cpm))
        })
        .collect()
}

/// Each ad's share of the budget before floors and limits, every ad taken as eligible: its P(best), or the
/// split by marginal return where ads have delivery curves. What the accuracy measurement compares with
/// [`crate::reference::exact_target_shares`].
pub fn target_shares(request: &AllocationRequest, prepared: &PreparedAllocation, draws: &[&ScoreDraws]) -> Vec<f64> {
    let every_ad: Vec<usize> = (0..request.ads.len()).collect();
    let scores = blended_scores(prepared, draws, &every_ad);
    let score_slices: Vec<&[f32]> = scores.iter().map(Vec::as_slice).collect();
    let probability_best = probability_of_being_best(&score_slices);
    budget_targets(request, prepared, &every_ad, &score_slices, &probability_best).0
}

/// Each ad's target share of the total: its P(best), unless some eligible ad's cost rises with its volume
/// (a delivery curve), when each draw's budget is split to equalise the ads' returns on their last unit of
/// spend instead ([`shares_equalising_marginal_returns`]); and whether curves shaped them.
fn budget_targets(
    request: &AllocationRequest,
    prepared: &PreparedAllocation,
    eligible_indices: &[usize],
    eligible_scores: &[&[f32]],
    probability_best: &[f64],
) -> (Vec<f64>, bool) {
    let curves = curved_ads(request, prepared, eligible_indices);
    if curves.iter().all(Option::is_none) {
        return (probability_best.to_vec(), false);
    }
    let eligible_shares = shares_equalising_marginal_returns(
        eligible_scores,
        &curves,
        request.total_daily_budget.get() as f64,
        prepared.seed,
    );
    let mut targets = vec![0.0; request.ads.len()];
    for (share, &index) in eligible_shares.into_iter().zip(eligible_indices) {
        targets[index] = share;
    }
    (targets, true)
}

/// Sorts ad `indices` likeliest best first: by target share (`budget_targets`), highest first, ties by position.
pub(crate) fn sort_likeliest_best_first(indices: &mut [usize], targets: &[f64]) {
    indices.sort_by(|&left, &right| targets[right].total_cmp(&targets[left]).then(left.cmp(&right)));
}

/// The eligible ads that must wait when the total cannot give each the per-ad floor: as many as the total
/// can fund at the floor keep their place, by their target share (`budget_targets`: P(best), or the split by
/// marginal return); the rest (the weakest) get nothing this time instead
/// of the allocation being refused. Empty when the floor fits, or when not even one ad can have it (then
/// the request is refused naming the floor).
fn weakest_beyond_the_floor(request: &AllocationRequest, eligible_indices: &[usize], targets: &[f64]) -> Vec<usize> {
    let floor = request.constraints.per_ad_floor.get();
    if floor <= 0 {
        return Vec::new();
    }
    let fundable = usize::try_from(request.total_daily_budget.get() / floor).unwrap_or(usize::MAX);
    if fundable == 0 || eligible_indices.len() <= fundable {
        return Vec::new();
    }
    let mut by_target = eligible_indices.to_vec();
    sort_likeliest_best_first(&mut by_target, targets);
    by_target.split_off(fundable)
}

/// The per-ad floor is Meta's minimum budget: an ad set gets nothing or at least the floor. An ad drops out
/// when, fitted without the floor, it would fall below it both within the change limit and by the share its
/// target share earns it without the limit (so an ad that is merely shrinking gradually keeps the floor); the
/// weaker half of such ads drop, least likely best first, and the rest are fitted again, until every ad left
/// reaches the floor one way or the other (the final fit then holds them to it). Marks the dropped ads
/// ineligible and returns them.
fn weakest_that_would_fall_below_the_floor(
    request: &AllocationRequest,
    config: &AllocatorConfig,
    eligible: &mut [bool],
    targets: &[f64],
) -> Vec<usize> {
    let floor = request.constraints.per_ad_floor;
    let mut dropped = Vec::new();
    if floor.get() <= 0 || floor > request.total_daily_budget {
        return dropped;
    }
    loop {
        let funded_count = eligible.iter().filter(|is_eligible| **is_eligible).count();
        if funded_count <= 1 {
            return dropped;
        }
        let fit_without_floor =
            |limits| fit_with_relaxation(request, config, eligible, targets, limits).map(|(budgets, ..)| budgets);
        let (Ok(within_change_limit), Ok(share_earned)) = (
            fit_without_floor(FitLimits::CHANGE_LIMIT_ONLY),
            fit_without_floor(FitLimits::SHARE_EARNED),
        ) else {
            return dropped;
        };
        let mut below_floor: Vec<usize> = (0..share_earned.len())
            .filter(|&index| eligible[index] && within_change_limit[index] < floor && share_earned[index] < floor)
            .collect();
        if below_floor.is_empty() {
            return dropped;
        }
        below_floor.sort_by(|&left, &right| targets[left].total_cmp(&targets[right]).then(right.cmp(&left)));
        // The weaker half of them (at least one) each round, so a request of thousands of ads needs a dozen
        // rounds, not thousands; never the last funded ad.
        let round_size = below_floor.len().div_ceil(2).min(funded_count - 1);
        for &index in &below_floor[..round_size] {
            eligible[index] = false;
            dropped.push(index);
        }
    }
}

/// The change limit lifted for as few ads as keeping the total needs: when the limited ads cannot absorb
/// the total, the likeliest best may rise beyond it first; when they cannot give enough back, the least
/// likely best may fall beyond it first. Returns the bounds and which ads' limit was lifted.
fn relax_change_limit_where_needed(
    total: MinorUnits,
    targets: &[f64],
    limited: &[BudgetBounds],
    unlimited: &[BudgetBounds],
) -> (Vec<BudgetBounds>, Vec<bool>) {
    // Compared with the bounds' sums, in 128 bits (`BudgetBounds::sums`).
    let total = i128::from(total.get());
    let mut bounds = limited.to_vec();
    let mut relaxed = vec![false; bounds.len()];
    let mut best_first: Vec<usize> = (0..bounds.len()).collect();
    sort_likeliest_best_first(&mut best_first, targets);
    // Relaxing upper bounds leaves the lower ones as they are: both sums are taken once, here.
    let (mut lower_sum, mut upper_sum) = BudgetBounds::sums(&bounds);
    for &index in &best_first {
        if upper_sum >= total {
            break;
        }
        if unlimited[index].upper > bounds[index].upper {
            upper_sum += i128::from(unlimited[index].upper) - i128::from(bounds[index].upper);
            bounds[index].upper = unlimited[index].upper;
            relaxed[index] = true;
        }
    }
    for &index in best_first.iter().rev() {
        if lower_sum <= total {
            break;
        }
        if unlimited[index].lower < bounds[index].lower {
            lower_sum -= i128::from(bounds[index].lower) - i128::from(unlimited[index].lower);
            bounds[index].lower = unlimited[index].lower;
            relaxed[index] = true;
        }
    }
    (bounds, relaxed)
}

/// Which of the request's limits a fit holds to (the young-ad floor and the cap always hold).
#[derive(Debug, Clone, Copy)]
struct FitLimits {
    per_ad_floor: bool,
    change_limit: bool,
}

impl FitLimits {
    const AS_REQUESTED: FitLimits = FitLimits {
        per_ad_floor: true,
        change_limit: true,
    };
    const CHANGE_LIMIT_ONLY: FitLimits = FitLimits {
        per_ad_floor: false,
        change_limit: true,
    };
    /// The share of the total each ad's target (its P(best), or its split by marginal return) earns it.
    const SHARE_EARNED: FitLimits = FitLimits {
        per_ad_floor: false,
        change_limit: false,
    };
}

/// Bounds per ad, loosened step by step until budgets that conserve the total exist: first the change
/// limit goes, then the young-ad floors; floors and caps from the request never do.
fn fit_with_relaxation(
    request: &AllocationRequest,
    config: &AllocatorConfig,
    eligible: &[bool],
    targets: &[f64],
    limits: FitLimits,
) -> Result<(Vec<MinorUnits>, Vec<bool>, bool), InputError> {
    let per_ad_floor = if limits.per_ad_floor {
        request.constraints.per_ad_floor
    } else {
        MinorUnits::ZERO
    };
    let total = request.total_daily_budget;
    let eligible_count = eligible.iter().filter(|is_eligible| **is_eligible).count();
    let even_share = total.get() as f64 / eligible_count as f64;
    let constraints = &request.constraints;
    let cap = if constraints.per_ad_cap.get() > 0 {
        constraints.per_ad_cap.get()
    } else {
        total.get()
    };
    let bounds_for = |with_change_limit: bool, with_young_floor: bool| -> Vec<BudgetBounds> {
        request
            .ads
            .iter()
            .enumerate()
            .map(|(index, ad)| {
                if !eligible[index] {
                    return BudgetBounds { lower: 0, upper: 0 };
                }
                let mut lower = per_ad_floor.get();
                if with_young_floor && ad.age_hours < config.young_ad_hours {
                    lower = lower.max((even_share * config.young_ad_floor_of_even_share).floor() as i64);
                }
                let mut upper = cap;
                let change_limit = change_limit_bounds(ad.current_daily_budget, constraints.max_change_fraction)
                    .filter(|_| with_change_limit && limits.change_limit);
                if let Some((lowest_allowed, highest_allowed)) = change_limit {
                    lower = lower.max(lowest_allowed);
                    upper = upper.min(highest_allowed);
                }
                BudgetBounds {
                    lower: lower.min(cap),
                    upper: upper.max(lower.min(cap)),
                }
            })
            .collect()
    };
    let every_eligible_ad = |relaxed: bool| -> Vec<bool> { eligible.iter().map(|&is| is && relaxed).collect() };
    if let Some(budgets) = fit_budgets(total, targets, &bounds_for(true, true)) {
        return Ok((budgets, every_eligible_ad(false), false));
    }
    let (targeted_bounds, relaxed_for) =
        relax_change_limit_where_needed(total, targets, &bounds_for(true, true), &bounds_for(false, true));
    if let Some(budgets) = fit_budgets(total, targets, &targeted_bounds) {
        return Ok((budgets, relaxed_for, false));
    }
    for with_young_floor in [true, false] {
        if let Some(budgets) = fit_budgets(total, targets, &bounds_for(false, with_young_floor)) {
            return Ok((budgets, every_eligible_ad(true), !with_young_floor));
        }
    }
    if per_ad_floor.get().saturating_mul(eligible_count as i64) > total.get() {
        return Err(input_error(
            "constraints.per_ad_floor",
            format!("{eligible_count} active ads at this floor need more than total_daily_budget"),
        ));
    }
    Err(input_error(
        "constraints.per_ad_cap",
        format!("{eligible_count} active ads at this cap cannot spend total_daily_budget"),
    ))
}

/// Per-ad scores for the Score rpc: the posterior mean of the blended score with its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdScore {
    pub ids: AdIds,
    pub score: f64,
    pub ctr: Interval,
    pub roas: Interval,
    pub ctr_blend_weight: f64,
    pub fatigue_factor: f64,
}

pub fn score_ads(request: &AllocationRequest, config: &AllocatorConfig) -> Result<Vec<AdScore>, InputError> {
    let prepared = prepare(request, config)?;
    Ok(score_prepared(request, &prepared))
}

/// [`score_ads`] for a request already prepared (ml-service prepares once for the cache and the scores).
pub fn score_prepared(request: &AllocationRequest, prepared: &PreparedAllocation) -> Vec<AdScore> {
    let population = prepared.population;
    request
        .ads
        .iter()
        .zip(&prepared.ads)
        .map(|(ad, prepared_ad)| {
            let posterior = &prepared_ad.posterior;
            let ctr = posterior.ctr();
            let roas = posterior.roas();
            let score = posterior.coming_day_factor()
                * (posterior.ctr_weight * ctr.mean / population.ctr
                    + (1.0 - posterior.ctr_weight) * roas.mean / population.roas());
            AdScore {
                ids: ad.ids.clone(),
                score,
                ctr,
                roas,
                ctr_blend_weight: posterior.ctr_weight,
                fatigue_factor: posterior.fatigue_factor,
            }
        })
        .collect()
}
