//! The auction curve: how spend buys impressions from an ad set's finite audience.
//!
//! Buying `n` impressions out of a capacity of `c` costs `cpm / 1000 × (n + rise × n² / (2c))`: the
//! marginal CPM starts at the base CPM and rises linearly to `(1 + rise)` times it at capacity, and nothing
//! beyond the capacity can be bought. So doubling a budget less than doubles the impressions, and a budget
//! larger than the audience can absorb goes partly unspent.

/// One ad set's curve over one delivery period (a step or a day).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AuctionCurve {
    /// Cost per 1000 impressions at a vanishing share of the audience, in minor units.
    pub base_cpm: f64,
    /// The most impressions the period can deliver.
    pub capacity_impressions: f64,
    /// The marginal CPM at capacity is `1 + marginal_cpm_rise_at_capacity` times the base CPM.
    pub marginal_cpm_rise_at_capacity: f64,
}

impl AuctionCurve {
    /// What `impressions` (at most the capacity) cost, in minor units.
    pub fn cost_of_impressions(&self, impressions: f64) -> f64 {
        let impressions = impressions.clamp(0.0, self.capacity_impressions);
        let rising_part = if self.capacity_impressions > 0.0 {
            self.marginal_cpm_rise_at_capacity * impressions * impressions / (2.0 * self.capacity_impressions)
        } else {
            0.0
        };
        self.base_cpm / 1000.0 * (impressions + rising_part)
    }

    /// The most this period can spend: the cost of its whole capacity.
    pub fn spend_capacity(&self) -> f64 {
        self.cost_of_impressions(self.capacity_impressions)
    }

    /// The impressions `spend` buys (the inverse of [`Self::cost_of_impressions`], capped at the capacity).
    pub fn impressions_for_spend(&self, spend: f64) -> f64 {
        if !(spend > 0.0 && self.base_cpm > 0.0 && self.capacity_impressions > 0.0) {
            return 0.0;
        }
        if spend >= self.spend_capacity() {
            return self.capacity_impressions;
        }
        let linear = self.base_cpm / 1000.0;
        let quadratic = linear * self.marginal_cpm_rise_at_capacity / (2.0 * self.capacity_impressions);
        if quadratic <= 0.0 {
            return spend / linear;
        }
        // quadratic·n² + linear·n − spend = 0, in the form that keeps its precision when quadratic is tiny.
        let impressions = 2.0 * spend / (linear + (linear * linear + 4.0 * quadratic * spend).sqrt());
        impressions.min(self.capacity_impressions)
    }

    /// Value per unit of spend of the next impression bought after `spend`, for an ad whose value per unit of
    /// spend at the base CPM is `base_roas`: it falls as the marginal CPM rises, and is 0 once the capacity is
    /// bought.
    pub fn marginal_roas(&self, base_roas: f64, spend: f64) -> f64 {
        let impressions = self.impressions_for_spend(spend);
        if impressions >= self.capacity_impressions {
            return 0.0;
        }
        base_roas / (1.0 + self.marginal_cpm_rise_at_capacity * impressions / self.capacity_impressions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve() -> AuctionCurve {
        AuctionCurve {
            base_cpm: 1000.0,
            capacity_impressions: 100_000.0,
            marginal_cpm_rise_at_capacity: 3.0,
        }
    }

    #[test]
    fn spend_and_impressions_invert_each_other_below_capacity() {
        let curve = curve();
        for spend in [1.0, 100.0, 10_000.0, 100_000.0, 200_000.0] {
            let impressions = curve.impressions_for_spend(spend);
            assert!((curve.cost_of_impressions(impressions) - spend).abs() < 1e-6 * spend.max(1.0));
        }
    }

    #[test]
    fn doubling_a_budget_less_than_doubles_the_impressions() {
        let curve = curve();
        let small = curve.impressions_for_spend(20_000.0);
        let double = curve.impressions_for_spend(40_000.0);
        assert!(double < 2.0 * small, "{small} → {double}");
        assert!(curve.marginal_roas(2.0, 40_000.0) < curve.marginal_roas(2.0, 20_000.0));
    }

    #[test]
    fn a_budget_beyond_the_audience_is_not_all_spent() {
        let curve = curve();
        // Capacity costs 1 × (100,000 + 3 × 100,000 / 2) = 250,000 minor units.
        assert!((curve.spend_capacity() - 250_000.0).abs() < 1e-6);
        assert_eq!(curve.impressions_for_spend(1_000_000.0), 100_000.0);
        assert_eq!(curve.marginal_roas(2.0, 1_000_000.0), 0.0);
    }

    #[test]
    fn a_flat_curve_is_linear() {
        let flat = AuctionCurve {
            marginal_cpm_rise_at_capacity: 0.0,
            ..curve()
        };
        assert!((flat.impressions_for_spend(5_000.0) - 5_000.0).abs() < 1e-9);
        assert_eq!(flat.marginal_roas(2.0, 5_000.0), 2.0);
    }
}
