//! The benchmark's simulated world: many ad accounts, each with campaigns of one-ad ad sets, written as a
//! campaign-sim scenario file for meta-sim.

use std::fmt::Write as _;

/// How the benchmark's ad sets spread over accounts and campaigns.
#[derive(Debug, Clone, Copy)]
pub struct WorldShape {
    pub accounts: u32,
    pub campaigns_per_account: u32,
    pub ad_sets_per_campaign: u32,
}

impl WorldShape {
    /// The shape: 10,000 ad sets over 500 campaigns and 50 ad accounts.
    pub const TEN_THOUSAND_AD_SETS: WorldShape = WorldShape {
        accounts: 50,
        campaigns_per_account: 10,
        ad_sets_per_campaign: 20,
    };

    pub fn ad_sets(&self) -> u32 {
        self.accounts * self.campaigns_per_account * self.ad_sets_per_campaign
    }

    /// The scenario: every ad set starts at 50.00 USD a day (the total is split evenly) and has one ad.
    pub fn scenario_toml(&self) -> String {
        let daily_budget_per_ad_set_minor: u64 = 5_000;
        let mut text = format!(
            "name = \"executor-bench\"\n\
             description = \"The executor benchmark's world: {} ad sets over {} campaigns and {} ad accounts.\"\n\
             currency = \"USD\"\ndays = 30\ndecision_interval_hours = 24\ntotal_daily_budget = {}\n",
            self.ad_sets(),
            self.accounts * self.campaigns_per_account,
            self.accounts,
            u64::from(self.ad_sets()) * daily_budget_per_ad_set_minor,
        );
        for account in 1..=self.accounts {
            for campaign in 1..=self.campaigns_per_account {
                let _ = write!(
                    text,
                    "\n[[ad_groups]]\nname_prefix = \"a{account}-c{campaign}-ad\"\naccount = \"account-{account}\"\n\
                     campaign = \"account-{account}-campaign-{campaign}\"\ncount = {}\n\
                     ctr = {{ median = 0.01, log_sd = 0.3 }}\nconversion_rate = {{ median = 0.02, log_sd = 0.3 }}\n\
                     value_per_conversion = {{ median = 5000, log_sd = 0.3 }}\ncpm = {{ median = 1000, log_sd = 0.2 }}\n",
                    self.ad_sets_per_campaign
                );
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scenario_parses_with_one_ad_per_ad_set() {
        let shape = WorldShape {
            accounts: 2,
            campaigns_per_account: 3,
            ad_sets_per_campaign: 4,
        };
        let scenario = campaign_sim::Scenario::from_toml(&shape.scenario_toml()).unwrap();
        assert_eq!(scenario.ad_count(), 24);
        assert_eq!(scenario.ad_groups.len(), 6);
    }
}
