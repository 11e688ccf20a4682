//! The instant learner against streams whose truth is known: accuracy against an offline fit, the concept
//! flip the original missed, no false alarms, replay determinism, and priors that leave an ad's own events out.

use adloop_learner::{
    EncodedFeatures, HeadKind, InstantLearner, LearnerConfig, LearningUpdate, encode_features, fit_offline, rows_by_ad,
};
use rand::{RngExt, SeedableRng};
use rand_distr::{Binomial, Distribution};
use rand_pcg::Pcg64;

const FEATURE_NAMES: [&str; 6] = [
    "has_pain_point",
    "has_number",
    "has_question",
    "has_face",
    "hook_type=demo",
    "duration@16",
];

struct Example {
    present: [bool; 6],
    features: EncodedFeatures,
}

fn random_creative(random: &mut Pcg64) -> Example {
    let present: [bool; 6] = std::array::from_fn(|_| random.random_bool(0.5));
    let raw = FEATURE_NAMES
        .iter()
        .zip(present)
        .filter(|(_, on)| *on)
        .map(|(name, _)| (*name, 1.0));
    Example {
        present,
        features: encode_features(raw, 64).expect("valid features"),
    }
}

fn true_probability(bias: f64, weights: &[f64; 6], present: &[bool; 6]) -> f64 {
    let logit = bias
        + weights
            .iter()
            .zip(present)
            .filter(|(_, on)| **on)
            .map(|(weight, _)| weight)
            .sum::<f64>();
    1.0 / (1.0 + (-logit).exp())
}

fn ctr_update(features: &EncodedFeatures, impressions: f64, clicks: f64) -> LearningUpdate {
    LearningUpdate {
        features: features.clone(),
        impressions,
        clicks,
        ..LearningUpdate::default()
    }
}

fn log_loss(probability: f64, trials: f64, successes: f64) -> f64 {
    let probability = probability.clamp(1e-12, 1.0 - 1e-12);
    -(successes * probability.ln() + (trials - successes) * (1.0 - probability).ln())
}

#[test]
fn on_a_stream_with_known_weights_the_log_loss_is_within_two_percent_of_an_offline_fit() {
    let true_weights = [0.7, 0.4, -0.5, 0.2, 0.9, -0.3];
    let true_bias = -3.5;
    for seed in [101_u64, 202, 303] {
        let mut random = Pcg64::seed_from_u64(seed);
        let mut learner = InstantLearner::new(LearnerConfig::default());
        let mut training = Vec::new();
        for _ in 0..100_000 {
            let creative = random_creative(&mut random);
            let impressions = random.random_range(1..=20) as f64;
            let p = true_probability(true_bias, &true_weights, &creative.present);
            let clicks = Binomial::new(impressions as u64, p).expect("valid").sample(&mut random) as f64;
            let update = ctr_update(&creative.features, impressions, clicks);
            learner.apply(&update);
            training.push(update);
        }
        let offline = fit_offline(&rows_by_ad(&training, HeadKind::Ctr), 0.0);
        let (mut online_loss, mut offline_loss) = (0.0, 0.0);
        for _ in 0..50_000 {
            let creative = random_creative(&mut random);
            let p = true_probability(true_bias, &true_weights, &creative.present);
            let clicks = Binomial::new(100, p).expect("valid").sample(&mut random) as f64;
            online_loss += log_loss(learner.predict_ctr(&creative.features, ""), 100.0, clicks);
            offline_loss += log_loss(offline.predict(&creative.features, ""), 100.0, clicks);
        }
        let ratio = online_loss / offline_loss;
        assert!(
            ratio <= 1.02,
            "seed {seed}: held-out log loss {online_loss:.1} vs offline fit {offline_loss:.1} ({ratio:.4})"
        );
    }
}

/// Single binary outcomes, labels inverted at event 3,000 of 6,000: the original's detector missed this.
fn flipped_stream(seed: u64) -> Vec<(EncodedFeatures, f64)> {
    let weights = [1.2, 0.8, -1.0, 0.4, 0.9, -0.6];
    let mut random = Pcg64::seed_from_u64(seed);
    (0..6_000)
        .map(|event| {
            let creative = random_creative(&mut random);
            let clicked = random.random_bool(true_probability(-1.0, &weights, &creative.present));
            let label = if event >= 3_000 { !clicked } else { clicked };
            (creative.features, if label { 1.0 } else { 0.0 })
        })
        .collect()
}

fn run(stream: &[(EncodedFeatures, f64)], config: &LearnerConfig) -> (Vec<usize>, f64) {
    let mut learner = InstantLearner::new(config.clone());
    let mut alarms = Vec::new();
    let mut loss_after_flip = 0.0;
    for (index, (features, label)) in stream.iter().enumerate() {
        if index >= 3_500 {
            loss_after_flip += log_loss(learner.predict_ctr(features, ""), 1.0, *label);
        }
        if learner.apply(&ctr_update(features, 1.0, *label)).drift_detected {
            alarms.push(index);
        }
    }
    (alarms, loss_after_flip / 2_500.0)
}

#[test]
fn a_concept_flip_is_detected_soon_after_it_happens_and_the_learner_recovers_faster() {
    let without_drift = LearnerConfig {
        drift: adloop_learner::DriftConfig {
            enabled: false,
            ..Default::default()
        },
        ..LearnerConfig::default()
    };
    for seed in 1..=10 {
        let stream = flipped_stream(seed);
        let (alarms, adapted_loss) = run(&stream, &LearnerConfig::default());
        let (_, unadapted_loss) = run(&stream, &without_drift);
        let first = *alarms
            .first()
            .unwrap_or_else(|| panic!("seed {seed}: the flip was not detected"));
        assert!(
            (3_000..3_300).contains(&first),
            "seed {seed}: first alarm at event {first}, alarms {alarms:?}"
        );
        assert!(
            adapted_loss < unadapted_loss,
            "seed {seed}: loss after the flip {adapted_loss:.4} with drift handling vs {unadapted_loss:.4} without"
        );
    }
}

#[test]
fn a_stationary_stream_raises_no_alarm() {
    let weights = [1.2, 0.8, -1.0, 0.4, 0.9, -0.6];
    for seed in 1..=20 {
        let mut random = Pcg64::seed_from_u64(seed);
        let mut learner = InstantLearner::new(LearnerConfig::default());
        for event in 0..20_000 {
            let creative = random_creative(&mut random);
            let impressions = random.random_range(1..=5) as f64;
            let p = true_probability(-2.0, &weights, &creative.present);
            let clicks = Binomial::new(impressions as u64, p).expect("valid").sample(&mut random) as f64;
            let applied = learner.apply(&ctr_update(&creative.features, impressions, clicks));
            assert!(!applied.drift_detected, "seed {seed}: false alarm at event {event}");
        }
    }
}

#[test]
fn replaying_the_same_updates_gives_identical_state_even_through_a_snapshot() {
    let stream = flipped_stream(7);
    let updates: Vec<LearningUpdate> = stream
        .iter()
        .enumerate()
        .map(|(index, (features, label))| LearningUpdate {
            ad_id: format!("ad-{}", index % 40),
            account_id: format!("act_{}", index % 3),
            features: features.clone(),
            impressions: 1.0,
            clicks: *label,
            matured_clicks: *label,
            conversions: if index % 7 == 0 { *label } else { 0.0 },
        })
        .collect();
    let mut first = InstantLearner::new(LearnerConfig::default());
    let mut second = InstantLearner::new(LearnerConfig::default());
    for update in &updates[..4_000] {
        first.apply(update);
        second.apply(update);
    }
    let snapshot = serde_json::to_string(&second).expect("serialisable");
    let mut restored: InstantLearner = serde_json::from_str(&snapshot).expect("restorable");
    for update in &updates[4_000..] {
        first.apply(update);
        restored.apply(update);
    }
    assert_eq!(first, restored);
}

#[test]
fn an_ads_prior_leaves_out_its_own_events() {
    let mut learner = InstantLearner::new(LearnerConfig::default());
    let star = encode_features([("has_face", 1.0), ("has_number", 1.0)], 64).expect("valid");
    // One ad with these features has a 10% CTR over 50,000 impressions.
    for _ in 0..500 {
        learner.apply(&LearningUpdate {
            ad_id: "star".into(),
            ..ctr_update(&star, 100.0, 10.0)
        });
    }
    let for_a_new_ad = learner.prior_for("new-ad", "", &star);
    let for_the_star_itself = learner.prior_for("star", "", &star);
    assert!(
        for_a_new_ad.ctr.expected_rate > 0.05,
        "a new ad with the star's features should inherit its CTR: {for_a_new_ad:?}"
    );
    assert!(
        for_the_star_itself.ctr.expected_rate < 0.02,
        "the star's own prior must not count its own events: {for_the_star_itself:?}"
    );
    assert!(for_a_new_ad.ctr.strength_trials > for_the_star_itself.ctr.strength_trials);
    assert!(for_a_new_ad.ctr.strength_trials <= LearnerConfig::default().ctr.max_prior_trials);
}

/// Two accounts at different levels (3% and 1% CTR) in which `has_face` is worth nothing, but three of
/// the better account's four video ads have a face and one of the other's four: 60 days of delivery.
fn learner_after_two_accounts_of_different_levels(account_offsets: bool) -> InstantLearner {
    let mut learner = InstantLearner::new(LearnerConfig {
        account_offsets,
        ..LearnerConfig::default()
    });
    let with_face = encode_features([("is_video", 1.0), ("has_face", 1.0)], 64).expect("valid");
    let without_face = encode_features([("is_video", 1.0)], 64).expect("valid");
    let ads = [
        ("act_high", 0.03, [true, true, true, false]),
        ("act_low", 0.01, [true, false, false, false]),
    ];
    let mut random = Pcg64::seed_from_u64(11);
    for _day in 0..60 {
        for (account, ctr, faces) in ads {
            for (index, has_face) in faces.into_iter().enumerate() {
                let clicks = Binomial::new(2_000, ctr).expect("valid").sample(&mut random) as f64;
                learner.apply(&LearningUpdate {
                    ad_id: format!("{account}-{index}"),
                    account_id: account.to_owned(),
                    ..ctr_update(if has_face { &with_face } else { &without_face }, 2_000.0, clicks)
                });
            }
        }
    }
    learner
}

#[test]
fn account_offsets_keep_a_better_accounts_level_out_of_its_features_weights() {
    let face_weight = |learner: &InstantLearner| {
        learner
            .ctr_head()
            .weights()
            .find(|(name, _)| *name == "has_face")
            .map_or(0.0, |(_, weight)| weight)
    };
    let confounded = learner_after_two_accounts_of_different_levels(false);
    let with_offsets = learner_after_two_accounts_of_different_levels(true);
    assert!(
        face_weight(&confounded) > 0.3,
        "without offsets the face takes the better account's credit: {}",
        face_weight(&confounded)
    );
    assert!(
        face_weight(&with_offsets).abs() < 0.15,
        "with offsets the face is worth about nothing, as it is: {}",
        face_weight(&with_offsets)
    );
    // A new ad with a face in the weaker account is priored at that account's level, not the better one's.
    let face = encode_features([("is_video", 1.0), ("has_face", 1.0)], 64).expect("valid");
    let prior = with_offsets.prior_for("new-ad", "act_low", &face).ctr.expected_rate;
    assert!((0.007..0.014).contains(&prior), "{prior}");
}

#[test]
fn the_recovery_plans_high_ctr_event_raises_the_weights_of_its_features() {
    let mut learner = InstantLearner::new(LearnerConfig::default());
    let features = encode_features(
        [("has_pain_point", 1.0), ("has_number", 1.0), ("has_question", 0.0)],
        64,
    )
    .expect("valid");
    let weight = |learner: &InstantLearner, name: &str| {
        learner
            .ctr_head()
            .weights()
            .find(|(feature, _)| *feature == name)
            .map_or(0.0, |(_, weight)| weight)
    };
    let applied = learner.apply(&ctr_update(&features, 1.0, 0.15));
    assert!(applied.ctr_after > applied.ctr_before);
    assert!(weight(&learner, "has_pain_point") > 0.0);
    assert!(weight(&learner, "has_number") > 0.0);
    assert_eq!(weight(&learner, "has_question"), 0.0);
}

#[test]
fn one_conversion_with_a_huge_value_does_not_teach_that_everything_converts() {
    let mut learner = InstantLearner::new(LearnerConfig::default());
    let deal = encode_features([("pipeline_value", 7_500.0), ("ctr", 0.02)], 64).expect("valid");
    learner.apply(&LearningUpdate {
        ad_id: "deal".into(),
        features: deal.clone(),
        conversions: 1.0,
        ..LearningUpdate::default()
    });
    let other = encode_features([("has_number", 1.0)], 64).expect("valid");
    assert!(learner.predict_conversions_per_click(&other, "") < 0.1);
    assert!(learner.predict_conversions_per_click(&deal, "") < 0.5);
}

/// Held-out calibration: outcomes regressed on the learner's logit by logistic regression (Newton's method
/// on two coefficients); a slope of 1 means its probabilities are neither over- nor under-confident.
fn calibration_slope(predictions: &[(f64, f64, f64)]) -> f64 {
    let (mut intercept, mut slope) = (0.0_f64, 1.0_f64);
    for _ in 0..50 {
        let (mut g0, mut g1, mut h00, mut h01, mut h11) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (probability, trials, successes) in predictions {
            let x = (probability / (1.0 - probability)).ln();
            let p = 1.0 / (1.0 + (-(intercept + slope * x)).exp());
            let residual = trials * p - successes;
            let weight = trials * p * (1.0 - p);
            g0 += residual;
            g1 += residual * x;
            h00 += weight;
            h01 += weight * x;
            h11 += weight * x * x;
        }
        let determinant = h00 * h11 - h01 * h01;
        intercept -= (h11 * g0 - h01 * g1) / determinant;
        slope -= (h00 * g1 - h01 * g0) / determinant;
    }
    slope
}

#[test]
fn on_held_out_events_the_learner_beats_the_base_rate_and_is_calibrated() {
    let true_weights = [0.7, 0.4, -0.5, 0.2, 0.9, -0.3];
    for seed in [404_u64, 505, 606] {
        let mut random = Pcg64::seed_from_u64(seed);
        let mut learner = InstantLearner::new(LearnerConfig::default());
        let (mut training_clicks, mut training_impressions) = (0.0, 0.0);
        for _ in 0..50_000 {
            let creative = random_creative(&mut random);
            let impressions = random.random_range(1..=20) as f64;
            let p = true_probability(-3.5, &true_weights, &creative.present);
            let clicks = Binomial::new(impressions as u64, p).expect("valid").sample(&mut random) as f64;
            learner.apply(&ctr_update(&creative.features, impressions, clicks));
            training_clicks += clicks;
            training_impressions += impressions;
        }
        let base_rate = training_clicks / training_impressions;
        let mut held_out = Vec::new();
        let (mut learner_loss, mut base_loss) = (0.0, 0.0);
        for _ in 0..20_000 {
            let creative = random_creative(&mut random);
            let p = true_probability(-3.5, &true_weights, &creative.present);
            let clicks = Binomial::new(50, p).expect("valid").sample(&mut random) as f64;
            let predicted = learner.predict_ctr(&creative.features, "");
            learner_loss += log_loss(predicted, 50.0, clicks);
            base_loss += log_loss(base_rate, 50.0, clicks);
            held_out.push((predicted, 50.0, clicks));
        }
        let slope = calibration_slope(&held_out);
        assert!(
            learner_loss < base_loss,
            "seed {seed}: {learner_loss:.0} vs base rate {base_loss:.0}"
        );
        assert!(
            (0.9..=1.1).contains(&slope),
            "seed {seed}: calibration slope {slope:.3}"
        );
        println!(
            "seed {seed}: held-out log loss {:.4} per impression vs base rate {:.4}; calibration slope {slope:.3}",
            learner_loss / 1e6,
            base_loss / 1e6
        );
    }
}
