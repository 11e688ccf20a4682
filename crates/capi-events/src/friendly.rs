//! adloop's own event shape, for `POST /v1/events`: customer information under plain names (`email`,
//! `phone`, `first_name`, …) in `customer`, money as an integer of minor units (`value_minor` with its
//! ISO 4217 `currency`), the ad the conversion is attributed to as `ad_id`. Each event is rewritten into
//! Meta's shape and then checked exactly as a drop-in event is, so both endpoints store the same thing;
//! a refusal names the field as the client wrote it.

use serde_json::{Map, Value};

use crate::user_data::keys::NEVER_HASHED_KEYS;

/// Plain customer field names and the `user_data` keys Meta knows them by. Keys Meta never hashes (client
/// IP, user agent, fbc, fbp, …) keep their own names.
pub const CUSTOMER_FIELDS: [(&str, &str); 11] = [
    ("email", "em"),
    ("phone", "ph"),
    ("first_name", "fn"),
    ("last_name", "ln"),
    ("gender", "ge"),
    ("date_of_birth", "db"),
    ("city", "ct"),
    ("state", "st"),
    ("zip", "zp"),
    ("country", "country"),
    ("external_id", "external_id"),
];

/// Top-level fields of an event that pass through to Meta under the same name.
const PASSED_THROUGH: [&str; 12] = [
    "event_name",
    "event_time",
    "event_id",
    "action_source",
    "event_source_url",
    "opt_out",
    "referrer_url",
    "data_processing_options",
    "data_processing_options_country",
    "data_processing_options_state",
    "app_data",
    "original_event_data",
];

/// Why an event in adloop's shape could not be rewritten: the field as the client named it, and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendlyError {
    pub field: String,
    pub rule: String,
}

fn refuse(field: &str, rule: &str) -> FriendlyError {
    FriendlyError {
        field: field.to_owned(),
        rule: rule.to_owned(),
    }
}

/// The event in Meta's shape (not yet checked: `event::validate_event` does that).
pub fn to_meta_event(event: &Value) -> Result<Value, FriendlyError> {
    let Some(fields) = event.as_object() else {
        return Err(refuse("", "must be an object"));
    };
    let mut meta_event = Map::new();
    let mut custom_data = match fields.get("custom_data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(custom_data)) => custom_data.clone(),
        Some(_) => return Err(refuse("custom_data", "must be an object")),
    };
    for (name, value) in fields {
        match name.as_str() {
            "customer" => {
                meta_event.insert("user_data".into(), user_data_of(value)?);
            }
            "value_minor" | "currency" | "custom_data" => {}
            "ad_id" => match value {
                Value::String(ad_id) if !ad_id.is_empty() && ad_id.bytes().all(|byte| byte.is_ascii_digit()) => {
                    custom_data.insert("ad_id".into(), value.clone());
                }
                Value::Null => {}
                _ => return Err(refuse("ad_id", "must be an ad id (a string of digits)")),
            },
            known if PASSED_THROUGH.contains(&known) => {
                meta_event.insert(name.clone(), value.clone());
            }
            _ => {
                return Err(refuse(
                    name,
                    "is not a field of an event (see POST /v1/events in the README)",
                ));
            }
        }
    }
    match (fields.get("value_minor"), fields.get("currency")) {
        (None | Some(Value::Null), None | Some(Value::Null)) => {}
        (None | Some(Value::Null), Some(_)) => {
            return Err(refuse(
                "value_minor",
                "is required with currency (an integer of minor units)",
            ));
        }
        (Some(minor), Some(Value::String(code))) => {
            let Some(minor) = minor.as_i64() else {
                return Err(refuse(
                    "value_minor",
                    "must be an integer of minor units (4299 for 42.99 USD)",
                ));
            };
            let Ok(currency) = adloop_money::Currency::parse(code) else {
                return Err(refuse(
                    "currency",
                    "must be an ISO 4217 code adloop knows, in capitals (USD)",
                ));
            };
            if custom_data.contains_key("value") {
                return Err(refuse(
                    "custom_data.value",
                    "give the value once: value_minor or custom_data.value",
                ));
            }
            custom_data.insert("value".into(), major_units(minor, currency.minor_unit_exponent()));
            custom_data.insert("currency".into(), Value::String(code.clone()));
        }
        (Some(_), _) => return Err(refuse("currency", "is required with value_minor (an ISO 4217 code)")),
    }
    if !custom_data.is_empty() {
        meta_event.insert("custom_data".into(), Value::Object(custom_data));
    }
    Ok(Value::Object(meta_event))
}

/// `customer` rewritten as `user_data`.
fn user_data_of(customer: &Value) -> Result<Value, FriendlyError> {
    let Some(customer) = customer.as_object() else {
        return Err(refuse("customer", "must be an object"));
    };
    let mut user_data = Map::new();
    for (name, value) in customer {
        let meta_key = CUSTOMER_FIELDS
            .iter()
            .find(|(plain, _)| plain == name)
            .map(|(_, meta_key)| *meta_key)
            .or_else(|| NEVER_HASHED_KEYS.iter().copied().find(|key| key == name));
        let Some(meta_key) = meta_key else {
            return Err(refuse(
                &format!("customer.{name}"),
                "is not a customer field (email, phone, first_name, last_name, gender, date_of_birth, city, \
                 state, zip, country, external_id, client_ip_address, client_user_agent, fbc, fbp, …)",
            ));
        };
        user_data.insert(meta_key.to_owned(), value.clone());
    }
    Ok(Value::Object(user_data))
}

/// A whole number of minor units as a decimal of major units (4299 with exponent 2 is 42.99).
fn major_units(minor: i64, exponent: u8) -> Value {
    let major = minor as f64 / 10_f64.powi(i32::from(exponent));
    serde_json::Number::from_f64(major).map_or(Value::Null, Value::Number)
}

/// A field named in a refusal of the rewritten event, as the client named it in adloop's shape.
pub fn client_field_name(meta_field: &str, value_was_minor: bool) -> String {
    if let Some(rest) = meta_field.strip_prefix("user_data.") {
        let (key, suffix) = rest.split_at(rest.find(['[', '.']).unwrap_or(rest.len()));
        let plain = CUSTOMER_FIELDS
            .iter()
            .find(|(_, meta_key)| *meta_key == key)
            .map_or(key, |(plain, _)| *plain);
        return format!("customer.{plain}{suffix}");
    }
    match meta_field {
        "user_data" => "customer".into(),
        "custom_data.value" if value_was_minor => "value_minor".into(),
        "custom_data.currency" if value_was_minor => "currency".into(),
        "custom_data.ad_id" => "ad_id".into(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn plain_names_and_minor_units_become_metas_shape() {
        let event = json!({
            "event_name": "Purchase",
            "event_time": 1_800_000_000,
            "action_source": "website",
            "customer": { "email": "a@b.c", "phone": "+16505551212", "first_name": "Ana", "fbp": "fb.1.2.3" },
            "value_minor": 4299,
            "currency": "USD",
            "ad_id": "120330000000000001",
        });
        let meta_event = to_meta_event(&event).unwrap();
        assert_eq!(
            meta_event["user_data"],
            json!({ "em": "a@b.c", "ph": "+16505551212", "fn": "Ana", "fbp": "fb.1.2.3" })
        );
        assert_eq!(
            meta_event["custom_data"],
            json!({ "value": 42.99, "currency": "USD", "ad_id": "120330000000000001" })
        );
        assert_eq!(meta_event["event_name"], "Purchase");
    }

    #[test]
    fn minor_units_follow_the_currencys_exponent() {
        let value_of = |minor: i64, currency: &str| {
            let event = json!({ "event_name": "Purchase", "value_minor": minor, "currency": currency });
            to_meta_event(&event).unwrap()["custom_data"]["value"].clone()
        };
        assert_eq!(value_of(4299, "USD"), json!(42.99));
        assert_eq!(value_of(4299, "JPY"), json!(4299.0));
        assert_eq!(value_of(4299, "KWD"), json!(4.299));
    }

    #[test]
    fn unknown_fields_and_half_given_money_are_refused_by_name() {
        let refusal = |event: Value| to_meta_event(&event).unwrap_err().field;
        assert_eq!(refusal(json!({ "customer": { "mail": "a@b.c" } })), "customer.mail");
        assert_eq!(refusal(json!({ "value": 3 })), "value");
        assert_eq!(refusal(json!({ "value_minor": 3 })), "currency");
        assert_eq!(refusal(json!({ "currency": "USD" })), "value_minor");
        assert_eq!(refusal(json!({ "value_minor": 3, "currency": "usd" })), "currency");
        assert_eq!(refusal(json!({ "value_minor": 3.5, "currency": "USD" })), "value_minor");
        assert_eq!(refusal(json!({ "ad_id": "ad-1" })), "ad_id");
    }

    #[test]
    fn refusals_of_the_rewritten_event_name_the_clients_fields() {
        assert_eq!(client_field_name("user_data.em[1]", false), "customer.email[1]");
        assert_eq!(
            client_field_name("user_data.client_user_agent", false),
            "customer.client_user_agent"
        );
        assert_eq!(client_field_name("custom_data.value", true), "value_minor");
        assert_eq!(client_field_name("custom_data.value", false), "custom_data.value");
        assert_eq!(client_field_name("event_time", true), "event_time");
    }
}
