//! Independent, reproducible random streams. Each purpose (the world's truths, one ad's daily noise, one ad's
//! delivery) gets its own stream derived from the run seed, so two policies run on the same seed see the same
//! truths and the same noise paths (common random numbers), however differently they spend.

use rand_pcg::Pcg64Mcg;

pub type SimRng = Pcg64Mcg;

#[derive(Debug, Clone, Copy)]
pub enum StreamPurpose {
    WorldTruths = 1,
    AdDailyNoise = 2,
    AdDelivery = 3,
    PolicyDraws = 4,
    /// The shape of a random world (`random_world`), before any of its runs' seeds.
    RandomWorld = 5,
}

/// SplitMix64 finaliser: spreads nearby inputs (seed 1, seed 2) over unrelated outputs.
fn mix(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

pub fn stream(seed: u64, purpose: StreamPurpose, index: u64) -> SimRng {
    let stream_seed = mix(mix(mix(seed) ^ purpose as u64) ^ index);
    let high = mix(stream_seed ^ 0xA5A5_A5A5_A5A5_A5A5);
    Pcg64Mcg::new((u128::from(high) << 64) | u128::from(stream_seed))
}
