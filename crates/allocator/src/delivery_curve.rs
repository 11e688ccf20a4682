//! Delivery curves: an ad set that buys a larger share of its audience pays more for each extra impression
//! (it must outbid more of the auction, and reach saturates), so an ad's return on the next unit of spend
//! falls as its budget grows. Where an ad's own daily reports show that rise, the budget split equalises the
//! ads' returns on their *last* unit of spend instead of funding each ad in proportion to its chance of
//! being best on average.
//!
//! The model is the simplest one the reports can identify: the day's average cost per impression grows
//! linearly with the day's impressions, `cost(n) = c · (1 + n / K)`, so spend is `c · (n + n² / K)` and the
//! marginal cost `c · (1 + 2n / K)`; `K` is the daily volume at which the average CPM doubles. An ad whose
//! days show no rise beyond their noise has no curve, and is split as before.

use adloop_money::MinorUnits;
use rand::SeedableRng as _;
use rand::seq::SliceRandom as _;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

/// How an ad's cost per impression rises with its daily volume.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeliveryCurve {
    /// Cost of 1000 impressions at a vanishing daily volume, in minor units.
    pub base_cpm: f64,
    /// The daily impressions at which the average CPM is twice the base.
    pub cpm_doubling_daily_impressions: f64,
}

/// One day of an ad's delivery, as its daily insights report it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DailyDelivery {
    /// The day's number in the account's calendar (days since 1970-01-01, as the account's time zone dates
    /// it): its weekday is the number modulo 7, for the ad's weekday rhythm.
    #[serde(default)]
    pub day: u32,
    pub spend: MinorUnits,
    pub impressions: u64,
    #[serde(default)]
    pub clicks: u64,
}

/// What an ad's reports say about its delivery: its days, and its lifetime impressions and frequency (from
/// which the size of the audience it reaches follows).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryHistory {
    pub days: Vec<DailyDelivery>,
    pub lifetime_impressions: u64,
    /// Lifetime impressions per person reached, as Meta reports it.
    pub frequency: f64,
}

/// What the estimate needs of the days, and how sure it must be of a rise (`AllocatorConfig::delivery_curve`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryCurveSettings {
    /// The finished days read (today, still under way, is not): four weeks, Meta's longest window, as the
    /// reporting-delay estimate reads the account's (on the tuning seeds 1–20 two weeks kept less than half of
    /// the gain: 0.838 → 0.833 of ts-basic-limited's regret against 0.819).
    pub days: u32,
    /// Days with fewer impressions say little about their cost and are left out.
    pub min_daily_impressions: u64,
    /// An account needs this many usable days across its ads, or no curve.
    pub min_days: usize,
    /// The fitted rise is shrunk towards none by its own evidence: with `t²` the drop in squared error it
    /// explains over the noise, it keeps `1 − (z / t)²` of itself (none once `t ≤ z`), so a day-to-day
    /// wobble in CPM does not read as a curve.
    pub rise_standard_errors: f64,
}

impl Default for DeliveryCurveSettings {
    /// A thousand impressions make a day's CPM precise to a few per cent, and a week of such days, chosen
    /// before any measurement; a rise beyond one standard error (`AllocatorConfig::delivery_curve`).
    fn default() -> Self {
        DeliveryCurveSettings {
            days: 28,
            min_daily_impressions: 1000,
            min_days: 7,
            rise_standard_errors: 1.0,
        }
    }
}

/// The size of the audience an ad reaches, from its lifetime impressions and frequency: the people `A` such
/// that `A · (1 − e^(−I/A))` — the reach of `I` impressions shown at random to `A` people — is `I / f`.
/// `None` when the frequency is too close to 1 to tell (the audience is much larger than the impressions).
pub fn audience_size(lifetime_impressions: u64, frequency: f64) -> Option<f64> {
    const SMALLEST_READABLE_EXCESS_FREQUENCY: f64 = 1e-3;
    let impressions = lifetime_impressions as f64;
    if !(frequency.is_finite() && frequency > 1.0 + SMALLEST_READABLE_EXCESS_FREQUENCY && impressions > 0.0) {
        return None;
    }
    let reach = impressions / frequency;
    let reach_of = |audience: f64| audience * (1.0 - (-impressions / audience).exp());
    // reach_of grows with the audience, from 0 towards the impressions; bisection on its logarithm.
    let (mut low, mut high) = (reach.ln(), (impressions * 1e6).ln());
    for _ in 0..100 {
        let middle = (low + high) / 2.0;
        if reach_of(middle.exp()) < reach {
            low = middle;
        } else {
            high = middle;
        }
    }
    Some(high.exp())
}

/// The rises (per day's impressions over the ad's audience) the search considers: a coarse grid over
/// `0..=LARGEST_RISE` finds the valley, a golden-section search inside it the bottom.
const LARGEST_RISE: f64 = 8.0;
const COARSE_RISE_STEPS: usize = 16;
const GOLDEN_SECTION_STEPS: usize = 30;

/// The rise with the smallest squared error, and that error: the best point of a coarse grid, then a
/// golden-section search between its neighbours.
fn smallest_error_rise(squared_error_at: &dyn Fn(f64) -> f64) -> (f64, f64) {
    let step = LARGEST_RISE / COARSE_RISE_STEPS as f64;
    let best_step = (1..=COARSE_RISE_STEPS)
        .map(|index| (index, squared_error_at(step * index as f64)))
        .min_by(|left, right| left.1.total_cmp(&right.1))
        .map_or(1, |(index, _)| index);
    let inverse_golden_ratio = (5.0_f64.sqrt() - 1.0) / 2.0;
    let (mut low, mut high) = (step * (best_step - 1) as f64, step * (best_step + 1) as f64);
    let mut left = high - inverse_golden_ratio * (high - low);
    let mut right = low + inverse_golden_ratio * (high - low);
    let (mut left_error, mut right_error) = (squared_error_at(left), squared_error_at(right));
    for _ in 0..GOLDEN_SECTION_STEPS {
        if left_error <= right_error {
            high = right;
            (right, right_error) = (left, left_error);
            left = high - inverse_golden_ratio * (high - low);
            left_error = squared_error_at(left);
        } else {
            low = left;
            (left, left_error) = (right, right_error);
            right = low + inverse_golden_ratio * (high - low);
            right_error = squared_error_at(right);
        }
    }
    let rise = (low + high) / 2.0;
    (rise, squared_error_at(rise))
}

/// One ad as the fit reads it: its audience, and its days as (impressions over audience, ln cost per
/// impression).
struct AdDays {
    audience: f64,
    points: Vec<(f64, f64)>,
}

/// Each ad's curve, for ads of one account: the account's ad sets buy in one market, so one rise per share of
/// audience bought a day (`κ`: the average CPM is `c · (1 + κ · n / A)`) is fitted across all their days, each
/// ad with its own base CPM `c` and audience `A` (from its frequency). `None` for ads whose audience cannot be
/// told, and for every ad when the account's days show no rise beyond their noise.
pub fn estimate_delivery_curves(
    histories: &[DeliveryHistory],
    settings: &DeliveryCurveSettings,
) -> Vec<Option<DeliveryCurve>> {
    let mut curves = vec![None; histories.len()];
    let ad_points: Vec<Option<AdDays>> = histories
        .iter()
        .map(|history| {
            let audience = audience_size(history.lifetime_impressions, history.frequency)?;
            let points: Vec<(f64, f64)> = history
                .days
                .iter()
                .filter(|day| day.impressions >= settings.min_daily_impressions.max(1) && day.spend.get() > 0)
                .map(|day| {
                    let impressions = day.impressions as f64;
                    (impressions / audience, (day.spend.get() as f64 / impressions).ln())
                })
                .collect();
            (points.len() >= 2).then_some(AdDays { audience, points })
        })
        .collect();
    let usable_days: usize = ad_points.iter().flatten().map(|ad| ad.points.len()).sum();
    let usable_ads = ad_points.iter().flatten().count();
    if usable_days < settings.min_days.max(3) || usable_days <= usable_ads + 1 {
        return curves;
    }
    // Squared error of ln cost around each ad's own base, for a rise κ; the base is each ad's mean.
    let squared_error_at = |rise: f64| -> f64 {
        ad_points
            .iter()
            .flatten()
            .map(|ad| {
                let (sum, sum_of_squares) = ad.points.iter().fold((0.0, 0.0), |(sum, squares), (share, log_cost)| {
                    let residual = log_cost - (rise * share).ln_1p();
                    (sum + residual, squares + residual * residual)
                });
                (sum_of_squares - sum * sum / ad.points.len() as f64).max(0.0)
            })
            .sum()
    };
    let error_without_rise = squared_error_at(0.0);
    let (best_rise, best_error) = smallest_error_rise(&squared_error_at);
    let degrees_of_freedom = (usable_days - usable_ads - 1) as f64;
    let noise_variance = best_error / degrees_of_freedom;
    if noise_variance.is_nan() || noise_variance <= 0.0 || best_error >= error_without_rise {
        return curves;
    }
    let evidence_squared = (error_without_rise - best_error) / noise_variance;
    let kept_share = 1.0 - settings.rise_standard_errors.powi(2) / evidence_squared;
    if kept_share <= 0.0 {
        return curves;
    }
    let rise = best_rise * kept_share;
    for (curve, points) in curves.iter_mut().zip(&ad_points) {
        let Some(AdDays { audience, points }) = points else {
            continue;
        };
        let log_base_cost = points
            .iter()
            .map(|(share, log_cost)| log_cost - (rise * share).ln_1p())
            .sum::<f64>()
            / points.len() as f64;
        *curve = Some(DeliveryCurve {
            base_cpm: log_base_cost.exp() * 1000.0,
            cpm_doubling_daily_impressions: audience / rise,
        });
    }
    curves
}

/// One ad as the split sees it: its curve and how its score relates to the return of its first impression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CurvedAd {
    /// Cost of one impression at a vanishing volume, in minor units.
    base_cost_per_impression: f64,
    doubling_impressions: f64,
    /// The ad's scores are returns at the CPM it has paid on average; its first impression's return is this
    /// many times that (its average CPM over its base CPM).
    first_impression_return_factor: f64,
}

impl CurvedAd {
    /// `average_cpm` in minor units, as the ad's posterior uses it.
    pub(crate) fn new(curve: &DeliveryCurve, average_cpm: f64) -> Option<CurvedAd> {
        let usable = curve.base_cpm.is_finite()
            && curve.base_cpm > 0.0
            && curve.cpm_doubling_daily_impressions.is_finite()
            && curve.cpm_doubling_daily_impressions > 0.0
            && average_cpm.is_finite()
            && average_cpm > 0.0;
        usable.then(|| CurvedAd {
            base_cost_per_impression: curve.base_cpm / 1000.0,
            doubling_impressions: curve.cpm_doubling_daily_impressions,
            first_impression_return_factor: (average_cpm / curve.base_cpm).max(1.0),
        })
    }

    /// `c · K / 4`: the ad's spend at marginal return `m` is this times `(R / m)² − 1`
    /// ([`spend_at`]).
    fn spend_scale(&self) -> f64 {
        self.base_cost_per_impression * self.doubling_impressions / 4.0
    }
}

/// One curved ad's daily spend at the marginal return whose inverse is `inverse_marginal_return`. At marginal
/// return `m` the ad's volume is `n = (R / m − 1) · K / 2` (`R` its first impression's return), which costs
/// `c · (n + n² / K)`, that is `spend_scale · ((R / m)² − 1)`; nothing where `R ≤ m`.
#[inline]
fn spend_at(spend_scale: f64, first_return: f64, inverse_marginal_return: f64) -> f64 {
    let ratio = first_return * inverse_marginal_return;
    spend_scale * (ratio * ratio - 1.0).max(0.0)
}

/// Each ad's expected share of `total` when every posterior draw's budget is split to equalise the ads'
/// returns on their last unit of spend: an ad without a curve takes whatever the curved ads leave once their
/// marginal return falls to its own (the best such ad, as Thompson sampling would give it), an ad with one
/// grows until its marginal return falls to the others'. With no curved ad this is P(best).
/// `scores[ad][draw]` are the ads' return draws on a common scale; `curves[ad]` is `None` for straight ads.
///
/// Every ad's draws come from the same sequence of normals (the allocation shares them, as P(best) reads each
/// ad's draws only as a distribution), so the k-th draws of two ads are not independent: each ad's draws are
/// read in an order of their own, shuffled with `seed`, so that joint draws pair them at random.
pub(crate) fn shares_equalising_marginal_returns(
    scores: &[&[f32]],
    curves: &[Option<CurvedAd>],
    total: f64,
    seed: u64,
) -> Vec<f64> {
    debug_assert_eq!(scores.len(), curves.len());
    let ad_count = scores.len();
    let mut shares = vec![0.0; ad_count];
    let draw_count = scores.iter().map(|draws| draws.len()).min().unwrap_or(0);
    if ad_count == 0 || draw_count == 0 || total.is_nan() || total <= 0.0 {
        return shares;
    }
    // Each ad's draws are gathered in its own shuffled order, one ad at a time (its draws stay in the cache),
    // into what every joint draw needs: the best straight ad and its return, and the curved ads' first returns
    // side by side.
    let mut random = Pcg64Mcg::seed_from_u64(seed);
    let mut draw_order: Vec<u32> = (0..draw_count as u32).collect();
    let mut splitter = DrawSplitter::for_curves(curves);
    let curved_count = splitter.ads.len();
    let mut best_straight_by_draw: Vec<Option<(usize, f64)>> = vec![None; draw_count];
    let mut first_returns_by_draw = vec![0.0; draw_count * curved_count];
    let mut curved_column = 0;
    for (ad, (draws, curve)) in scores.iter().zip(curves).enumerate() {
        // From the identity each time, so an ad's order depends only on the seed and its position.
        draw_order.iter_mut().zip(0..).for_each(|(slot, draw)| *slot = draw);
        draw_order.shuffle(&mut random);
        let joint_draws = draw_order.iter().map(|&draw| f64::from(draws[draw as usize]).max(0.0));
        match curve {
            None => {
                for (best, score) in best_straight_by_draw.iter_mut().zip(joint_draws) {
                    // Ties go to the later ad, as `max_by` would.
                    if best.is_none_or(|(_, best_score)| score >= best_score) {
                        *best = Some((ad, score));
                    }
                }
            }
            Some(curve) => {
                let factor = curve.first_impression_return_factor;
                for (draw, score) in joint_draws.enumerate() {
                    first_returns_by_draw[draw * curved_count + curved_column] = score * factor;
                }
                curved_column += 1;
            }
        }
    }
    let mut curved_shares = vec![0.0; curved_count];
    for (draw, best_straight) in best_straight_by_draw.into_iter().enumerate() {
        let first_returns = &first_returns_by_draw[draw * curved_count..(draw + 1) * curved_count];
        let straight_spend = splitter.split(first_returns, best_straight, total);
        let spent_total = splitter.spends.iter().sum::<f64>() + straight_spend;
        if spent_total <= 0.0 {
            // No ad returns anything on this draw: all tie.
            shares.iter_mut().for_each(|share| *share += 1.0 / ad_count as f64);
            continue;
        }
        let inverse_total = 1.0 / spent_total;
        for (share, spend) in curved_shares.iter_mut().zip(&splitter.spends) {
            *share += spend * inverse_total;
        }
        if let Some((best_straight, _)) = best_straight {
            shares[best_straight] += straight_spend * inverse_total;
        }
    }
    for (&ad, curved_share) in splitter.ads.iter().zip(&curved_shares) {
        shares[ad] += curved_share;
    }
    for share in &mut shares {
        *share /= draw_count as f64;
    }
    shares
}

/// Splits one joint draw at a time. The curved ads are held as columns (their sums are the hot path of an
/// allocation with curves): each one's index and its spend scale ([`CurvedAd::spend_scale`]); a draw's first
/// impression returns come with it, and its split is left in `spends`, in the same order.
///
/// The split has a closed form. Every ad funded at marginal return `m` spends `s · ((R / m)² − 1)`, so the
/// funded set `F` spends `total` where `m² = Σ_F s·R² / (total + Σ_F s)`. Starting from every ad that beats
/// the best straight ad's return, an ad whose `R` does not exceed that `m` is dropped and `m` recomputed; each
/// drop raises `m` (the dropped ad's `R²` was at most the old `m²`), so the set only shrinks and a few passes
/// find the split exactly.
struct DrawSplitter {
    ads: Vec<usize>,
    spend_scales: Vec<f64>,
    /// The last draw's spend on each curved ad.
    spends: Vec<f64>,
}

/// Independent partial sums in [`DrawSplitter::funded_above`].
const SUM_LANES: usize = 4;

/// What the curved ads whose first return beats a marginal return add up to: how many they are, `Σ s·R²` and
/// `Σ s` (see [`DrawSplitter`]).
#[derive(Debug, Clone, Copy, PartialEq)]
struct FundedSums {
    count: usize,
    weighted_squared_returns: f64,
    spend_scales: f64,
}

impl FundedSums {
    /// The marginal return at which these ads spend `total` between them.
    fn marginal_return_spending(&self, total: f64) -> f64 {
        (self.weighted_squared_returns / (total + self.spend_scales)).sqrt()
    }
}

impl DrawSplitter {
    fn for_curves(curves: &[Option<CurvedAd>]) -> DrawSplitter {
        let curved: Vec<(usize, CurvedAd)> = curves
            .iter()
            .enumerate()
            .filter_map(|(ad, curve)| curve.map(|curve| (ad, curve)))
            .collect();
        DrawSplitter {
            ads: curved.iter().map(|(ad, _)| *ad).collect(),
            spend_scales: curved.iter().map(|(_, curve)| curve.spend_scale()).collect(),
            spends: vec![0.0; curved.len()],
        }
    }

    /// Splits `total` for a draw whose curved ads' first impressions return `first_returns`, given the best
    /// straight ad and its return (see [`shares_equalising_marginal_returns`]): the curved ads' parts are left in
    /// `spends`, the straight ad's is returned (nothing without one).
    fn split(&mut self, first_returns: &[f64], best_straight: Option<(usize, f64)>, total: f64) -> f64 {
        debug_assert_eq!(first_returns.len(), self.ads.len());
        let straight_return = best_straight.map_or(0.0, |(_, first_return)| first_return);
        let Some(marginal_return) = self.marginal_return_spending_all(first_returns, straight_return, total) else {
            // No curved ad beats the best straight one even on its first impression: that one takes it all
            // (with no straight ad, no ad returns anything and nothing is spent).
            self.spends.fill(0.0);
            return if best_straight.is_some() { total } else { 0.0 };
        };
        if best_straight.is_some() && marginal_return <= straight_return {
            // At the straight ad's return the curved ads spend no more than the total: they are sated there,
            // and it takes the rest.
            self.set_spends(first_returns, straight_return);
            return (total - self.spends.iter().sum::<f64>()).max(0.0);
        }
        self.set_spends(first_returns, marginal_return);
        0.0
    }

    /// The marginal return at which the curved ads that beat `lowest_return` would spend `total` between them
    /// (see [`DrawSplitter`]): at most `lowest_return` when they cannot spend it all above that return, and
    /// `None` when none beats it.
    fn marginal_return_spending_all(&self, first_returns: &[f64], lowest_return: f64, total: f64) -> Option<f64> {
        let mut funded = self.funded_above(first_returns, lowest_return);
        if funded.count == 0 {
            return None;
        }
        let mut marginal_return = funded.marginal_return_spending(total);
        while marginal_return > lowest_return {
            let still_funded = self.funded_above(first_returns, marginal_return);
            if still_funded.count == funded.count {
                break;
            }
            funded = still_funded;
            marginal_return = funded.marginal_return_spending(total);
        }
        Some(marginal_return)
    }

    /// The sums over the curved ads whose first impression returns more than `marginal_return`. Summed in
    /// [`SUM_LANES`] independent lanes, so the additions need not wait on each other and vectorise.
    fn funded_above(&self, first_returns: &[f64], marginal_return: f64) -> FundedSums {
        let mut counts = [0.0; SUM_LANES];
        let mut weighted_squared_returns = [0.0; SUM_LANES];
        let mut spend_scales = [0.0; SUM_LANES];
        let mut add = |lane: usize, first_return: f64, spend_scale: f64| {
            let funded = if first_return > marginal_return { 1.0 } else { 0.0 };
            counts[lane] += funded;
            weighted_squared_returns[lane] += funded * spend_scale * first_return * first_return;
            spend_scales[lane] += funded * spend_scale;
        };
        let returns = first_returns.chunks_exact(SUM_LANES);
        let scales = self.spend_scales.chunks_exact(SUM_LANES);
        let (returns_left, scales_left) = (returns.remainder(), scales.remainder());
        for (return_chunk, scale_chunk) in returns.zip(scales) {
            for lane in 0..SUM_LANES {
                add(lane, return_chunk[lane], scale_chunk[lane]);
            }
        }
        for (lane, (&first_return, &spend_scale)) in returns_left.iter().zip(scales_left).enumerate() {
            add(lane, first_return, spend_scale);
        }
        FundedSums {
            count: counts.iter().sum::<f64>() as usize,
            weighted_squared_returns: weighted_squared_returns.iter().sum(),
            spend_scales: spend_scales.iter().sum(),
        }
    }

    /// Sets what each curved ad spends at `marginal_return`.
    fn set_spends(&mut self, first_returns: &[f64], marginal_return: f64) {
        let inverse = 1.0 / marginal_return;
        for ((spend, first_return), spend_scale) in self.spends.iter_mut().zip(first_returns).zip(&self.spend_scales) {
            *spend = spend_at(*spend_scale, *first_return, inverse);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ad of `audience` people that has shown `lifetime_impressions`, with days on the curve
    /// `c · (1 + rise · n / audience)` times each day's noise.
    fn history(audience: f64, rise: f64, days: &[(u64, f64)], lifetime_impressions: u64) -> DeliveryHistory {
        let reach = audience * (1.0 - (-(lifetime_impressions as f64) / audience).exp());
        DeliveryHistory {
            days: days
                .iter()
                .map(|&(impressions, noise)| {
                    let cost_per_impression = 1.0 * (1.0 + rise * impressions as f64 / audience) * noise;
                    DailyDelivery {
                        spend: MinorUnits((cost_per_impression * impressions as f64).round() as i64),
                        impressions,
                        ..DailyDelivery::default()
                    }
                })
                .collect(),
            lifetime_impressions,
            frequency: lifetime_impressions as f64 / reach,
        }
    }

    const NOISES: [f64; 7] = [1.1, 0.9, 1.05, 0.95, 1.0, 1.08, 0.92];

    fn noisy_days(volumes: [u64; 7]) -> Vec<(u64, f64)> {
        volumes.into_iter().zip(NOISES).collect()
    }

    #[test]
    fn the_audience_is_read_back_from_the_frequency() {
        let reach = 150_000.0 * (1.0 - (-600_000.0_f64 / 150_000.0).exp());
        let audience = audience_size(600_000, 600_000.0 / reach).unwrap();
        assert!((audience / 150_000.0 - 1.0).abs() < 1e-6, "{audience}");
        assert_eq!(
            audience_size(600_000, 1.0),
            None,
            "a frequency of 1 says the audience is unbounded"
        );
    }

    #[test]
    fn a_rising_cpm_is_read_back_from_the_account_s_days() {
        let histories = vec![
            history(
                150_000.0,
                0.75,
                &noisy_days([20_000, 40_000, 60_000, 80_000, 30_000, 90_000, 50_000]),
                400_000,
            ),
            history(
                300_000.0,
                0.75,
                &noisy_days([60_000, 10_000, 30_000, 5_000, 90_000, 20_000, 40_000]),
                300_000,
            ),
        ];
        let curves = estimate_delivery_curves(&histories, &DeliveryCurveSettings::default());
        let first = curves[0].expect("a curve");
        assert!((first.base_cpm / 1000.0 - 1.0).abs() < 0.1, "{first:?}");
        let doubling = first.cpm_doubling_daily_impressions / (150_000.0 / 0.75);
        assert!((0.6..1.6).contains(&doubling), "{first:?}");
        let second = curves[1].expect("a curve");
        assert!(
            second.cpm_doubling_daily_impressions > first.cpm_doubling_daily_impressions,
            "{curves:?}"
        );
    }

    #[test]
    fn a_flat_noisy_cpm_or_too_few_days_are_no_curve() {
        let flat = vec![history(
            150_000.0,
            0.0,
            &noisy_days([20_000, 40_000, 60_000, 80_000, 30_000, 90_000, 50_000]),
            400_000,
        )];
        assert_eq!(
            estimate_delivery_curves(&flat, &DeliveryCurveSettings::default()),
            vec![None]
        );
        let few = vec![history(
            150_000.0,
            0.75,
            &[(20_000, 1.0), (60_000, 1.0), (90_000, 1.0)],
            400_000,
        )];
        assert_eq!(
            estimate_delivery_curves(&few, &DeliveryCurveSettings::default()),
            vec![None]
        );
    }

    #[test]
    fn without_curves_the_split_is_close_to_the_probability_of_being_best() {
        // Two ads' draws from one sequence (as the allocation's are), the second a little better.
        let first: Vec<f32> = (0..1000)
            .map(|draw| 1.0 + ((draw * 37) % 1000) as f32 / 1000.0)
            .collect();
        let second: Vec<f32> = first.iter().map(|score| score + 0.2).collect();
        let shares = shares_equalising_marginal_returns(&[&first, &second], &[None, None], 1000.0, 7);
        let probability_best = crate::probability_of_being_best(&[&first, &second]);
        for (share, probability) in shares.iter().zip(&probability_best) {
            assert!(
                (share - probability).abs() < 0.03,
                "{shares:?} against {probability_best:?}"
            );
        }
    }

    /// An ad paying its base CPM of 10 minor units on average, its CPM doubling at 100,000 impressions a day.
    fn curve_doubling_at_100_000_a_day() -> CurvedAd {
        CurvedAd::new(
            &DeliveryCurve {
                base_cpm: 10.0,
                cpm_doubling_daily_impressions: 100_000.0,
            },
            10.0,
        )
        .expect("a usable curve")
    }

    #[test]
    fn a_saturating_best_ad_shares_with_a_straight_second() {
        // The curved ad returns 2 on its first impression and its CPM doubles at 100,000 a day; the straight
        // one returns 1. Marginal return 1 is reached at 50,000 impressions: 0.01 · (50,000 + 25,000) = 750.
        let curve = curve_doubling_at_100_000_a_day();
        let curved: Vec<f32> = vec![2.0];
        let straight: Vec<f32> = vec![1.0];
        let shares = shares_equalising_marginal_returns(&[&curved, &straight], &[Some(curve), None], 1000.0, 7);
        assert!((shares[0] - 0.75).abs() < 1e-9, "{shares:?}");
        assert!((shares[1] - 0.25).abs() < 1e-9, "{shares:?}");
        // With a total it cannot absorb at a marginal return of 1, it still takes everything.
        let small = shares_equalising_marginal_returns(&[&curved, &straight], &[Some(curve), None], 500.0, 7);
        assert_eq!(small, vec![1.0, 0.0]);
    }

    #[test]
    fn the_spend_at_a_marginal_return_is_the_curves() {
        let curve = curve_doubling_at_100_000_a_day();
        // Return 2 on the first impression, 1 on the last: the marginal CPM is twice the base, at K / 2
        // impressions, which cost 0.01 · (50,000 + 25,000).
        let spend_at = |first_return: f64, marginal_return: f64| {
            spend_at(curve.spend_scale(), first_return, 1.0 / marginal_return)
        };
        assert!((spend_at(2.0, 1.0) - 750.0).abs() < 1e-9);
        assert_eq!(spend_at(1.0, 2.0), 0.0);
    }

    #[test]
    fn curved_ads_alone_split_to_equal_marginal_returns() {
        let curve = curve_doubling_at_100_000_a_day();
        let equal: Vec<f32> = vec![1.0];
        let shares = shares_equalising_marginal_returns(&[&equal, &equal], &[Some(curve), Some(curve)], 1000.0, 7);
        assert!((shares[0] - 0.5).abs() < 1e-9, "{shares:?}");
        let better: Vec<f32> = vec![2.0];
        let shares = shares_equalising_marginal_returns(&[&better, &equal], &[Some(curve), Some(curve)], 1000.0, 7);
        assert!(shares[0] > 0.6 && shares[0] < 1.0, "{shares:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// One draw's split, however many ads drop out of it: the curved ads spend the total between them, each
        /// funded ad's next impression returns the same (its first return over its marginal CPM's rise,
        /// `R / (1 + 2n / K)`), and no unfunded ad's first impression returns more than that.
        #[test]
        fn a_draw_is_split_to_equal_marginal_returns(
            ads in proptest::collection::vec((0.01_f64..5.0, 1.0_f64..1000.0, 100.0_f64..1e6), 1..12),
            total in 1.0_f64..1e7,
        ) {
            let curves: Vec<Option<CurvedAd>> = ads
                .iter()
                .map(|&(_, base_cpm, doubling)| {
                    CurvedAd::new(&DeliveryCurve { base_cpm, cpm_doubling_daily_impressions: doubling }, base_cpm)
                })
                .collect();
            let mut splitter = DrawSplitter::for_curves(&curves);
            let first_returns: Vec<f64> = ads.iter().map(|(first_return, _, _)| *first_return).collect();
            splitter.split(&first_returns, None, total);
            let spent: Vec<(usize, f64)> = splitter.spends.iter().copied().enumerate().filter(|(_, spend)| *spend > 0.0).collect();
            let spent_total: f64 = spent.iter().map(|(_, spend)| spend).sum();
            proptest::prop_assert!((spent_total / total - 1.0).abs() < 1e-9, "{} of {}", spent_total, total);
            let marginal_return_of = |ad: usize, spend: f64| {
                let (_, base_cpm, doubling) = ads[ad];
                let cost_per_impression = base_cpm / 1000.0;
                // spend = c·(n + n²/K): the volume that costs it.
                let volume = doubling / 2.0 * ((1.0 + 4.0 * spend / (cost_per_impression * doubling)).sqrt() - 1.0);
                ads[ad].0 / (1.0 + 2.0 * volume / doubling)
            };
            let common = marginal_return_of(spent[0].0, spent[0].1);
            for &(ad, spend) in &spent {
                proptest::prop_assert!((marginal_return_of(ad, spend) / common - 1.0).abs() < 1e-6);
            }
            for (ad, &(first_return, _, _)) in ads.iter().enumerate() {
                if spent.iter().all(|&(funded, _)| funded != ad) {
                    proptest::prop_assert!(first_return <= common * (1.0 + 1e-9), "ad {} left out", ad);
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever the draws, curves and total: every share is finite and non-negative, and they add up to
        /// one (the budget goes somewhere).
        #[test]
        fn shares_are_a_split_of_the_whole(
            ads in proptest::collection::vec(
                (
                    proptest::collection::vec(0.0_f32..5.0, 16),
                    proptest::option::of((1.0_f64..10_000.0, 10.0_f64..1e7, 1.0_f64..3.0)),
                ),
                1..8,
            ),
            total in 1.0_f64..1e9,
            seed in 0_u64..1000,
        ) {
            let scores: Vec<&[f32]> = ads.iter().map(|(draws, _)| draws.as_slice()).collect();
            let curves: Vec<Option<CurvedAd>> = ads
                .iter()
                .map(|(_, curve)| {
                    curve.and_then(|(base_cpm, doubling, average_over_base)| {
                        CurvedAd::new(
                            &DeliveryCurve { base_cpm, cpm_doubling_daily_impressions: doubling },
                            base_cpm * average_over_base,
                        )
                    })
                })
                .collect();
            let shares = shares_equalising_marginal_returns(&scores, &curves, total, seed);
            proptest::prop_assert!(shares.iter().all(|share| share.is_finite() && *share >= 0.0), "{:?}", shares);
            let sum: f64 = shares.iter().sum();
            proptest::prop_assert!((sum - 1.0).abs() < 1e-6, "{:?} add up to {}", shares, sum);
        }
    }
}
