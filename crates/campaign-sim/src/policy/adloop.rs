//! adloop's own allocator (the library ml-service serves) as a simulator policy.

use adloop_allocator::{
    AdIds, AdInput, AdStatus as AllocatorAdStatus, AllocationConstraints, AllocationRequest, AllocatorConfig,
    RecentWindow, allocate,
};
use adloop_money::MinorUnits;

use super::{HiddenTruths, Policy, PolicyError};
use crate::observation::{AdStatus, Observation};

/// Hours covered by the observation's recent window.
const RECENT_WINDOW_HOURS: f64 = 72.0;

pub struct Adloop {
    config: AllocatorConfig,
    seed: u64,
    /// Largest change per ad per decision, as a fraction of its current budget.
    max_change_fraction: f64,
}

impl Adloop {
    pub fn new(seed: u64) -> Adloop {
        Adloop {
            config: AllocatorConfig::default(),
            seed,
            max_change_fraction: 0.5,
        }
    }

    pub fn with_config(seed: u64, config: AllocatorConfig) -> Adloop {
        Adloop {
            config,
            seed,
            max_change_fraction: 0.5,
        }
    }
}

/// What the simulator observed, in the allocator's terms.
pub fn allocation_request(observation: &Observation, seed: u64, max_change_fraction: f64) -> AllocationRequest {
    let ads = observation
        .ads
        .iter()
        .map(|ad| AdInput {
            ids: AdIds {
                account_id: ad.identity.account_id.clone(),
                campaign_id: ad.identity.campaign_id.clone(),
                ad_set_id: ad.identity.ad_set_id.clone(),
                ad_id: ad.identity.ad_id.clone(),
            },
            impressions: ad.impressions,
            clicks: ad.clicks,
            conversions: ad.conversions,
            spend: ad.spend,
            conversion_value: ad.conversion_value,
            age_hours: ad.age_hours,
            current_daily_budget: ad.current_daily_budget,
            status: match ad.status {
                AdStatus::Active => AllocatorAdStatus::Active,
                AdStatus::Paused => AllocatorAdStatus::Paused,
            },
            creative_features: ad.features.clone(),
            creative_dna_score: None,
            priors: Vec::new(),
            recent: Some(RecentWindow {
                hours: RECENT_WINDOW_HOURS,
                impressions: ad.last_72_hours.impressions,
                clicks: ad.last_72_hours.clicks,
                spend: ad.last_72_hours.spend,
                conversions: ad.last_72_hours.conversions,
                conversion_value: ad.last_72_hours.conversion_value,
            }),
            frequency: Some(ad.frequency),
        })
        .collect();
    AllocationRequest {
        ads,
        total_daily_budget: observation.total_daily_budget,
        currency: observation.currency,
        constraints: AllocationConstraints {
            per_ad_floor: MinorUnits::ZERO,
            per_ad_cap: MinorUnits::ZERO,
            max_change_fraction,
        },
        seed: seed
            .wrapping_mul(1_000_003)
            .wrapping_add(u64::from(observation.hour))
            .max(1),
    }
}

impl Policy for Adloop {
    fn name(&self) -> &str {
        "adloop"
    }

    fn decide(
        &mut self,
        observation: &Observation,
        _hidden: &HiddenTruths<'_>,
    ) -> Result<Vec<MinorUnits>, PolicyError> {
        let request = allocation_request(observation, self.seed, self.max_change_fraction);
        let allocation = allocate(&request, &self.config).map_err(|error| PolicyError::Failed {
            policy: "adloop".into(),
            reason: error.to_string(),
        })?;
        Ok(allocation
            .recommendations
            .iter()
            .map(|recommendation| recommendation.recommended_daily_budget)
            .collect())
    }
}
