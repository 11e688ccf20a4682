//! An attributed conversion as ml-service's learner takes it (pure).

use adloop_money::{Currency, MinorUnits};
use adloop_proto::ml::v1::{AdIds, EventKind, LearningEvent, Money};
use serde_json::Value;

/// A queued conversion, as the outbox holds it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct QueuedConversion {
    pub id: i64,
    pub attempt: i32,
    pub pixel_id: String,
    pub event_id: String,
    pub event_name: String,
    pub event_time: i64,
    pub ad_id: String,
    pub custom_data: Value,
}

/// The learning event for `conversion`: its id is stable (`capi:{pixel}:{event name}:{event id}`, the same
/// triple the relay de-duplicates on), so a re-send has no further effect; its value, when the event has one
/// in a currency adloop knows, in minor units.
pub fn learning_event_of(conversion: &QueuedConversion) -> LearningEvent {
    LearningEvent {
        event_id: format!(
            "capi:{}:{}:{}",
            conversion.pixel_id, conversion.event_name, conversion.event_id
        ),
        ids: Some(AdIds {
            ad_id: conversion.ad_id.clone(),
            ..AdIds::default()
        }),
        kind: EventKind::Conversion as i32,
        event_time_unix_seconds: conversion.event_time,
        creative_features: Default::default(),
        value: value_of(&conversion.custom_data),
        conversions: 1.0,
        ..LearningEvent::default()
    }
}

fn value_of(custom_data: &Value) -> Option<Money> {
    let major = match &custom_data["value"] {
        Value::Number(number) => number.as_f64()?,
        Value::String(text) => text.trim().parse().ok()?,
        _ => return None,
    };
    let currency = Currency::parse(&custom_data["currency"].as_str()?.to_ascii_uppercase()).ok()?;
    if !major.is_finite() {
        return None;
    }
    Some(Money {
        minor_units: MinorUnits::from_major_rounded(major, currency).get(),
        currency: currency.code().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn conversion(custom_data: Value) -> QueuedConversion {
        QueuedConversion {
            id: 1,
            attempt: 1,
            pixel_id: "100000000000001".into(),
            event_id: "order-1".into(),
            event_name: "Purchase".into(),
            event_time: 1_796_000_000,
            ad_id: "120330000000000001".into(),
            custom_data,
        }
    }

    #[test]
    fn a_conversion_keeps_its_ad_its_time_and_its_value_in_minor_units() {
        let event = learning_event_of(&conversion(json!({ "value": 42.99, "currency": "USD", "ad_id": "x" })));
        assert_eq!(event.event_id, "capi:100000000000001:Purchase:order-1");
        assert_eq!(event.ids.unwrap().ad_id, "120330000000000001");
        assert_eq!(event.kind, EventKind::Conversion as i32);
        assert_eq!(event.event_time_unix_seconds, 1_796_000_000);
        assert_eq!(
            event.value,
            Some(Money {
                minor_units: 4299,
                currency: "USD".into()
            })
        );
        let yen = learning_event_of(&conversion(json!({ "value": "4299", "currency": "jpy" })));
        assert_eq!(yen.value.unwrap().minor_units, 4299);
    }

    #[test]
    fn a_conversion_without_a_usable_value_is_still_a_conversion() {
        for custom_data in [
            json!({}),
            json!({ "value": 10 }),
            json!({ "value": 10, "currency": "XYZ" }),
        ] {
            let event = learning_event_of(&conversion(custom_data));
            assert_eq!((event.kind, event.value), (EventKind::Conversion as i32, None));
        }
    }
}
