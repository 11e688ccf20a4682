//! A `RecordEvent` request checked and turned into learner updates; every refusal names the event's field.

use adloop_learner::{
    EncodedFeatures, FeatureError, LearningUpdate, UpdateError, ad_age_hours, ad_teaches_ctr_head, encode_features,
};
use adloop_money::Currency;
use adloop_proto::ml::v1::{EventKind, LearningEvent};

pub const MAX_EVENT_ID_LENGTH: usize = 200;
pub const MAX_AD_ID_LENGTH: usize = 100;
/// 9999-12-31T23:59:59Z: later times are no date a log can store (a time in milliseconds lands far beyond it).
pub const LATEST_EVENT_TIME_UNIX_SECONDS: i64 = 253_402_300_799;

/// One accepted event: what the log stores and the learner applies.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedEvent {
    pub event_id: String,
    /// The update, with the ad account (the learner's account offsets and the cross-learner; empty when not
    /// given).
    pub update: LearningUpdate,
    /// The event carried no features: the ad's last known ones are used (looked up under the log's lock).
    pub needs_known_features: bool,
    pub value: Option<(i64, Currency)>,
    pub event_time_unix_seconds: Option<i64>,
    /// The client's embedding of the creative, checked (its length, finite, not all zero).
    pub embedding: Option<Vec<f32>>,
    /// The event's impressions and clicks were withheld from the CTR head: its ad was older than
    /// `ctr_learning_max_ad_age_hours` at the event's time.
    pub ctr_trials_withheld: bool,
}

/// A refused request: the field (`events[3].creative_features.has number`) and the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub field: String,
    pub rule: String,
}

/// What a batch of events is held to (ml-service's `[learning]` and `[cross_learner]` settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventRules {
    pub max_events: usize,
    pub max_features: usize,
    /// The length every creative embedding must have; 0 refuses embeddings.
    pub embedding_dimensions: usize,
    /// An ad older than this at its event's time teaches the CTR head nothing of its impressions and clicks.
    pub ctr_learning_max_ad_age_hours: f64,
}

/// The batch checked and turned into updates; `accepted_at_unix_seconds` stands for the time of an event
/// that carries none (an ad's age is read at the event's time).
pub fn accept_events(
    events: &[LearningEvent],
    rules: &EventRules,
    accepted_at_unix_seconds: i64,
) -> Result<Vec<AcceptedEvent>, Refusal> {
    if events.is_empty() {
        return Err(refusal("events", "must hold at least one event"));
    }
    if events.len() > rules.max_events {
        return Err(refusal(
            "events",
            &format!("at most {} events per request, got {}", rules.max_events, events.len()),
        ));
    }
    events
        .iter()
        .enumerate()
        .map(|(index, event)| accept_event(event, rules, accepted_at_unix_seconds).map_err(|error| error.at(index)))
        .collect()
}

/// An identifier the learning log stores (an event id, an ad or account id), trimmed: at most
/// `max_characters` characters and no NUL character: Postgres text cannot hold one, and a NUL that reached
/// the log's insert would fail the request as "unavailable", which clients retry for ever.
pub fn checked_identifier(id: &str, max_characters: usize) -> Result<&str, String> {
    let id = id.trim();
    if id.chars().count() > max_characters {
        return Err(format!("must be at most {max_characters} characters"));
    }
    if id.contains('\0') {
        return Err("must not contain the NUL character (\\u0000)".to_owned());
    }
    Ok(id)
}

/// A client's embedding, checked: exactly `embedding_dimensions` finite values, not all zero. Empty means
/// none was given. The field is named by the caller.
pub fn accept_embedding(values: &[f32], embedding_dimensions: usize) -> Result<Option<Vec<f32>>, String> {
    if values.is_empty() {
        return Ok(None);
    }
    if embedding_dimensions == 0 {
        return Err("embeddings are off: set cross_learner.embedding_dimensions to the length of yours".into());
    }
    if values.len() != embedding_dimensions {
        return Err(format!(
            "must have {embedding_dimensions} values (cross_learner.embedding_dimensions), got {}",
            values.len()
        ));
    }
    adloop_cross_learner::embedding_vector(values).map_err(|error| error.to_string())?;
    Ok(Some(values.to_vec()))
}

/// A timestamp field of an event: Unix seconds up to the end of the year 9999 (so milliseconds are refused by
/// `field` and `rule`), 0 meaning not given.
fn optional_unix_seconds(value: i64, field: &str, rule: &str) -> Result<Option<i64>, Refusal> {
    if !(0..=LATEST_EVENT_TIME_UNIX_SECONDS).contains(&value) {
        return Err(refusal(field, rule));
    }
    Ok((value > 0).then_some(value))
}

fn accept_event(
    event: &LearningEvent,
    rules: &EventRules,
    accepted_at_unix_seconds: i64,
) -> Result<AcceptedEvent, Refusal> {
    let event_id =
        checked_identifier(&event.event_id, MAX_EVENT_ID_LENGTH).map_err(|rule| refusal("event_id", &rule))?;
    if event_id.is_empty() {
        return Err(refusal("event_id", "must not be empty"));
    }
    let ad_id = event.ids.as_ref().map(|ids| ids.ad_id.as_str()).unwrap_or_default();
    let ad_id = checked_identifier(ad_id, MAX_AD_ID_LENGTH).map_err(|rule| refusal("ids.ad_id", &rule))?;
    let account_id = event
        .ids
        .as_ref()
        .map(|ids| ids.account_id.as_str())
        .unwrap_or_default();
    let account_id =
        checked_identifier(account_id, MAX_AD_ID_LENGTH).map_err(|rule| refusal("ids.account_id", &rule))?;
    let kind =
        EventKind::try_from(event.kind).map_err(|_| refusal("kind", &format!("unknown event kind {}", event.kind)))?;
    let features = encode_features(
        event
            .creative_features
            .iter()
            .map(|(name, value)| (name.as_str(), *value)),
        rules.max_features,
    )
    .map_err(feature_refusal)?;
    if features.is_empty() && ad_id.is_empty() {
        return Err(refusal(
            "creative_features",
            "an event needs creative features or an ad (ids.ad_id) whose features are known",
        ));
    }
    let mut update = counted_update(ad_id, account_id, features, event, kind);
    update.validate().map_err(count_refusal)?;
    let value = match &event.value {
        None => None,
        Some(money) => {
            let currency = Currency::parse(&money.currency)
                .map_err(|_| refusal("value.currency", "must be an ISO 4217 code adloop knows, e.g. USD"))?;
            if money.minor_units < 0 {
                return Err(refusal("value.minor_units", "must not be negative"));
            }
            Some((money.minor_units, currency))
        }
    };
    let event_time_unix_seconds = optional_unix_seconds(
        event.event_time_unix_seconds,
        "event_time_unix_seconds",
        "must be Unix seconds (not milliseconds) from 0 to the end of the year 9999",
    )?;
    let ad_created_unix_seconds = optional_unix_seconds(
        event.ad_created_unix_seconds,
        "ad_created_unix_seconds",
        "must be Unix seconds (not milliseconds) from 0 (unknown) to the end of the year 9999",
    )?;
    let aged_at = event_time_unix_seconds.unwrap_or(accepted_at_unix_seconds);
    let ad_age_hours = ad_created_unix_seconds.map(|created| ad_age_hours(created, aged_at));
    let ctr_trials_withheld = !ad_teaches_ctr_head(ad_age_hours, rules.ctr_learning_max_ad_age_hours)
        && update.impressions + update.clicks > 0.0;
    if ctr_trials_withheld {
        update.impressions = 0.0;
        update.clicks = 0.0;
    }
    let embedding = accept_embedding(&event.creative_embedding, rules.embedding_dimensions)
        .map_err(|rule| refusal("creative_embedding", &rule))?;
    Ok(AcceptedEvent {
        event_id: event_id.to_owned(),
        needs_known_features: update.features.is_empty(),
        update,
        value,
        event_time_unix_seconds,
        embedding,
        ctr_trials_withheld,
    })
}

/// The event's counts; when it gives none, its kind supplies one.
fn counted_update(
    ad_id: &str,
    account_id: &str,
    features: EncodedFeatures,
    event: &LearningEvent,
    kind: EventKind,
) -> LearningUpdate {
    let mut update = LearningUpdate {
        ad_id: ad_id.to_owned(),
        account_id: account_id.to_owned(),
        features,
        impressions: event.impressions,
        clicks: event.clicks,
        matured_clicks: event.matured_clicks,
        conversions: event.conversions,
    };
    let no_counts = [event.impressions, event.clicks, event.matured_clicks, event.conversions]
        .iter()
        .all(|count| *count == 0.0);
    if no_counts {
        match kind {
            EventKind::Impression => update.impressions = 1.0,
            EventKind::Click => {
                update.impressions = 1.0;
                update.clicks = 1.0;
            }
            EventKind::Conversion => update.conversions = 1.0,
            EventKind::Unspecified => {}
        }
    }
    update
}

fn feature_refusal(error: FeatureError) -> Refusal {
    match error.feature_name() {
        Some(name) => refusal(&format!("creative_features.{name}"), &error.to_string()),
        None => refusal("creative_features", &error.to_string()),
    }
}

fn count_refusal(error: UpdateError) -> Refusal {
    let field = match &error {
        UpdateError::CountOutOfRange { field } => field,
        UpdateError::MoreClicksThanImpressions { .. } => "clicks",
        UpdateError::Empty => "impressions",
    };
    refusal(field, &error.to_string())
}

fn refusal(field: &str, rule: &str) -> Refusal {
    Refusal {
        field: field.to_owned(),
        rule: rule.to_owned(),
    }
}

impl Refusal {
    fn at(self, index: usize) -> Refusal {
        Refusal {
            field: format!("events[{index}].{}", self.field),
            rule: self.rule,
        }
    }
}

#[cfg(test)]
mod tests {
    use adloop_proto::ml::v1::{AdIds, Money};

    use super::*;

    const RULES: EventRules = EventRules {
        max_events: 10,
        max_features: 64,
        embedding_dimensions: 0,
        ctr_learning_max_ad_age_hours: 168.0,
    };
    /// 2026-12-01T00:00:00Z.
    const ACCEPTED_AT: i64 = 1_796_083_200;
    const HOUR: i64 = 3600;

    fn event(features: &[(&str, f64)]) -> LearningEvent {
        LearningEvent {
            event_id: "e-1".into(),
            ids: Some(AdIds {
                ad_id: "ad-1".into(),
                ..AdIds::default()
            }),
            kind: EventKind::Unspecified as i32,
            creative_features: features
                .iter()
                .map(|(name, value)| ((*name).to_owned(), *value))
                .collect(),
            impressions: 100.0,
            clicks: 3.0,
            ..LearningEvent::default()
        }
    }

    #[test]
    fn a_relayed_conversion_counts_one_conversion_and_borrows_its_ads_features() {
        let conversion = LearningEvent {
            kind: EventKind::Conversion as i32,
            impressions: 0.0,
            clicks: 0.0,
            value: Some(Money {
                minor_units: 4299,
                currency: "USD".into(),
            }),
            ..event(&[])
        };
        let accepted = accept_events(&[conversion], &RULES, ACCEPTED_AT).unwrap();
        assert_eq!(accepted[0].update.conversions, 1.0);
        assert!(accepted[0].needs_known_features);
        assert_eq!(accepted[0].value.map(|(minor, _)| minor), Some(4299));
    }

    #[test]
    fn refusals_name_the_event_and_its_field() {
        let cases = [
            (event(&[("has number", 1.0)]), "events[1].creative_features.has number"),
            (
                LearningEvent {
                    clicks: 200.0,
                    ..event(&[])
                },
                "events[1].clicks",
            ),
            (
                LearningEvent {
                    impressions: -1.0,
                    ..event(&[])
                },
                "events[1].impressions",
            ),
            (
                LearningEvent {
                    event_id: " ".into(),
                    ..event(&[])
                },
                "events[1].event_id",
            ),
            (
                // Milliseconds where seconds belong: a date no log can store.
                LearningEvent {
                    event_time_unix_seconds: 1_764_000_000_000,
                    ..event(&[])
                },
                "events[1].event_time_unix_seconds",
            ),
            (
                LearningEvent {
                    ids: None,
                    ..event(&[])
                },
                "events[1].creative_features",
            ),
            (
                LearningEvent {
                    value: Some(Money {
                        minor_units: 1,
                        currency: "XYZ".into(),
                    }),
                    ..event(&[])
                },
                "events[1].value.currency",
            ),
        ];
        for (bad, field) in cases {
            let refused = accept_events(&[event(&[("has_number", 1.0)]), bad], &RULES, ACCEPTED_AT).unwrap_err();
            assert_eq!(refused.field, field, "{refused:?}");
        }
        assert_eq!(accept_events(&[], &RULES, ACCEPTED_AT).unwrap_err().field, "events");
        assert_eq!(
            accept_events(&vec![event(&[]); 11], &RULES, ACCEPTED_AT)
                .unwrap_err()
                .field,
            "events"
        );
    }

    #[test]
    fn identifiers_with_a_nul_character_are_refused_by_name_and_lengths_count_characters() {
        let with_ids = |event_id: &str, ad_id: &str, account_id: &str| LearningEvent {
            event_id: event_id.into(),
            ids: Some(AdIds {
                ad_id: ad_id.into(),
                account_id: account_id.into(),
                ..AdIds::default()
            }),
            ..event(&[("has_number", 1.0)])
        };
        for (bad, field) in [
            (with_ids("e\0-1", "ad-1", "act_1"), "events[0].event_id"),
            (with_ids("e-1", "ad\0-1", "act_1"), "events[0].ids.ad_id"),
            (with_ids("e-1", "ad-1", "act\0_1"), "events[0].ids.account_id"),
        ] {
            let refused = accept_events(&[bad], &RULES, ACCEPTED_AT).unwrap_err();
            assert_eq!(refused.field, field, "{refused:?}");
            assert!(refused.rule.contains("NUL"), "{refused:?}");
        }
        // 100 two-byte characters are within the 100-character rule; 101 are not.
        let accepted = accept_events(&[with_ids("e-1", &"é".repeat(100), "act_1")], &RULES, ACCEPTED_AT).unwrap();
        assert_eq!(accepted[0].update.ad_id, "é".repeat(100));
        let refused = accept_events(&[with_ids("e-1", &"é".repeat(101), "act_1")], &RULES, ACCEPTED_AT).unwrap_err();
        assert_eq!(refused.field, "events[0].ids.ad_id");
    }
    #[test]
    fn an_ad_older_than_a_week_at_its_events_time_teaches_conversions_but_not_clicks() {
        let delivery = |created: i64, event_time: i64| LearningEvent {
            ad_created_unix_seconds: created,
            event_time_unix_seconds: event_time,
            matured_clicks: 2.0,
            conversions: 1.0,
            ..event(&[("has_number", 1.0)])
        };
        let taught = |event: LearningEvent| {
            let update = accept_events(&[event], &RULES, ACCEPTED_AT).unwrap().remove(0).update;
            (
                update.impressions,
                update.clicks,
                update.matured_clicks,
                update.conversions,
            )
        };
        let six_days_old = delivery(ACCEPTED_AT - 144 * HOUR, ACCEPTED_AT);
        assert_eq!(taught(six_days_old), (100.0, 3.0, 2.0, 1.0));
        let eight_days_old = delivery(ACCEPTED_AT - 192 * HOUR, ACCEPTED_AT);
        assert_eq!(taught(eight_days_old), (0.0, 0.0, 2.0, 1.0));
        // The age is read at the event's time, or at acceptance for an event without one.
        let young_then = delivery(ACCEPTED_AT - 192 * HOUR, ACCEPTED_AT - 96 * HOUR);
        assert_eq!(taught(young_then), (100.0, 3.0, 2.0, 1.0));
        let old_now = delivery(ACCEPTED_AT - 192 * HOUR, 0);
        assert_eq!(taught(old_now), (0.0, 0.0, 2.0, 1.0));
        let unknown_age = delivery(0, ACCEPTED_AT);
        assert_eq!(taught(unknown_age), (100.0, 3.0, 2.0, 1.0));
    }

    #[test]
    fn an_old_ads_clicks_alone_are_accepted_and_teach_nothing() {
        let clicks_only = LearningEvent {
            ad_created_unix_seconds: ACCEPTED_AT - 30 * 24 * HOUR,
            ..event(&[("has_number", 1.0)])
        };
        let accepted = accept_events(&[clicks_only], &RULES, ACCEPTED_AT).unwrap();
        assert!(!accepted[0].update.carries_counts());
        assert!(accepted[0].ctr_trials_withheld);
    }

    #[test]
    fn a_creation_time_in_milliseconds_is_refused_by_name() {
        let in_milliseconds = LearningEvent {
            ad_created_unix_seconds: ACCEPTED_AT * 1000,
            ..event(&[("has_number", 1.0)])
        };
        let refused = accept_events(&[in_milliseconds], &RULES, ACCEPTED_AT).unwrap_err();
        assert_eq!(refused.field, "events[0].ad_created_unix_seconds");
    }
}
