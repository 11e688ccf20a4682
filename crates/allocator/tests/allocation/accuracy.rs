//! P(best) from the Rao-Blackwellised sweep against a large reference: joint draws from the exact posteriors
//! (Beta, Gamma, log-normal; no approximation), counting how often each ad wins.

use adloop_allocator::reference::exact_probability_of_being_best;
use adloop_allocator::{
    AllocatorConfig, PriorScales, blended_scores, build_posterior, draw, population_stats, prepare,
    probability_of_being_best,
};

use crate::fixtures::*;

const REFERENCE_JOINT_DRAWS: usize = 200_000;

#[test]
fn probability_of_best_is_within_0_01_of_an_exact_reference() {
    // Near-tied ads with few conversions: where approximations would show.
    let ads: Vec<_> = (0..8)
        .map(|index| {
            let conversions = 3 + index as u64;
            ad(
                &format!("ad-{index}"),
                20_000 + 1_000 * index as u64,
                200 + 5 * index as u64,
                conversions,
                20_000,
                5_000 * conversions as i64,
                96.0,
            )
        })
        .collect();
    let request = request(ads, 80_000);
    let config = AllocatorConfig::default();
    let prepared = prepare(&request, &config).unwrap();
    let draws: Vec<_> = prepared.ads.iter().map(|ad| draw(&prepared, ad)).collect();
    let draw_references: Vec<_> = draws.iter().collect();
    let all_ads: Vec<usize> = (0..draws.len()).collect();
    let scores = blended_scores(&prepared, &draw_references, &all_ads);
    let estimated = probability_of_being_best(&scores.iter().map(Vec::as_slice).collect::<Vec<_>>());

    // The reference uses the same quantised posteriors, drawn exactly.
    let reference = exact_probability_of_being_best(&prepared, REFERENCE_JOINT_DRAWS, 99);
    for (index, (estimate, reference)) in estimated.iter().zip(&reference).enumerate() {
        assert!(
            (estimate - reference).abs() < 0.01,
            "ad {index}: {estimate:.4} vs reference {reference:.4}"
        );
    }
    // The unquantised posterior is within quantisation of the one drawn from.
    let raw = build_posterior(
        &request.ads[0],
        request.currency,
        &population_stats(&request.ads, request.currency, &config),
        &PriorScales::of_request(&request.ads),
        &config,
    );
    assert!((raw.ctr_alpha - prepared.ads[0].posterior.ctr_alpha).abs() / raw.ctr_alpha < 0.01);
}
