//! One server event as Meta's Conversions API defines it, checked field by field and with its `user_data`
//! prepared (normalised, hashed, nulls dropped) — or the first reason Meta would refuse it, naming the
//! event's index, the field and the rule (never a value: it may be PII).

use serde_json::{Map, Value};

use crate::user_data::keys::identifies_someone;
use crate::user_data::{KeyClass, NormaliseSettings, class_of, prepare};

/// Events Meta takes in one request.
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;

/// Meta's `action_source` values.
pub const ACTION_SOURCES: [&str; 9] = [
    "email",
    "website",
    "app",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
];

/// `user_data` keys that may carry a list of values (Meta: "string or list<string>").
const LIST_KEYS: [&str; 11] = [
    "em",
    "ph",
    "fn",
    "ln",
    "db",
    "ge",
    "ct",
    "st",
    "zp",
    "country",
    "external_id",
];

/// The time rules, from the relay's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeRules {
    /// How old an event may be (Meta: 7 days).
    pub max_age_seconds: i64,
    /// How old a `physical_store` event may be (Meta: 62 days).
    pub physical_store_max_age_seconds: i64,
    /// How far in the future `event_time` may be (clock skew).
    pub future_tolerance_seconds: i64,
}

impl Default for TimeRules {
    fn default() -> Self {
        TimeRules {
            max_age_seconds: 7 * 86_400,
            physical_store_max_age_seconds: 62 * 86_400,
            future_tolerance_seconds: 600,
        }
    }
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    pub index: usize,
    /// Empty when the event as a whole is wrong.
    pub field: String,
    pub rule: String,
}

impl std::fmt::Display for EventError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.field.as_str() {
            "" => write!(formatter, "data[{}]: {}", self.index, self.rule),
            field => write!(formatter, "data[{}].{field}: {}", self.index, self.rule),
        }
    }
}

impl std::error::Error for EventError {}

/// An event that passed, as it will be stored and sent: the client's fields with `user_data` prepared.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedEvent {
    pub event_name: String,
    pub event_time: i64,
    pub action_source: String,
    /// The client's `event_id`, if it sent one (the relay assigns one otherwise).
    pub event_id: Option<String>,
    /// The whole event with `user_data` replaced by its prepared form.
    pub body: Map<String, Value>,
}

/// Checks event `index` of a request received at `now_unix` and prepares its `user_data`.
pub fn validate_event(
    index: usize,
    event: &Value,
    now_unix: i64,
    time_rules: &TimeRules,
    normalise: &NormaliseSettings,
) -> Result<ValidatedEvent, EventError> {
    let refuse = |field: &str, rule: &str| EventError {
        index,
        field: field.to_owned(),
        rule: rule.to_owned(),
    };
    let Some(fields) = event.as_object() else {
        return Err(refuse("", "must be an object"));
    };
    let event_name = match fields.get("event_name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
        _ => return Err(refuse("event_name", "is required (a non-empty string)")),
    };
    let Some(event_time) = fields.get("event_time").and_then(whole_seconds) else {
        return Err(refuse("event_time", "is required (Unix seconds, an integer)"));
    };
    let action_source = match fields.get("action_source") {
        Some(Value::String(source)) if ACTION_SOURCES.contains(&source.as_str()) => source.clone(),
        Some(_) => {
            return Err(refuse(
                "action_source",
                "must be one of Meta's action sources (website, app, …)",
            ));
        }
        None => return Err(refuse("action_source", "is required")),
    };
    let max_age = if action_source == "physical_store" {
        time_rules.physical_store_max_age_seconds
    } else {
        time_rules.max_age_seconds
    };
    if event_time < now_unix - max_age {
        return Err(refuse(
            "event_time",
            "is older than Meta accepts (7 days; 62 for physical_store)",
        ));
    }
    if event_time > now_unix + time_rules.future_tolerance_seconds {
        return Err(refuse("event_time", "is in the future"));
    }
    let event_id = match fields.get("event_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
        Some(_) => return Err(refuse("event_id", "must be a non-empty string")),
    };
    // Fields Meta takes as they are still have their types (a wrong one would be refused at Meta, after the
    // relay had acknowledged the event).
    for (field, must_be_object) in [
        ("app_data", true),
        ("original_event_data", true),
        ("event_source_url", false),
        ("referrer_url", false),
    ] {
        match (fields.get(field), must_be_object) {
            (None | Some(Value::Null), _) | (Some(Value::Object(_)), true) | (Some(Value::String(_)), false) => {}
            (Some(_), true) => return Err(refuse(field, "must be an object")),
            (Some(_), false) => return Err(refuse(field, "must be a string")),
        }
    }
    if action_source == "website" {
        match fields.get("event_source_url") {
            Some(Value::String(url)) if url.starts_with("http://") || url.starts_with("https://") => {}
            _ => {
                return Err(refuse(
                    "event_source_url",
                    "is required for website events (an http(s) URL)",
                ));
            }
        }
    }
    let Some(Value::Object(raw_user_data)) = fields.get("user_data") else {
        return Err(refuse("user_data", "is required (an object)"));
    };
    let user_data = prepare_user_data(raw_user_data, normalise)
        .map_err(|(field, rule)| refuse(&format!("user_data.{field}"), &rule))?;
    if user_data.is_empty() {
        return Err(refuse(
            "user_data",
            "must hold at least one customer information parameter",
        ));
    }
    if action_source == "website" && !user_data.contains_key("client_user_agent") {
        return Err(refuse("user_data.client_user_agent", "is required for website events"));
    }
    if !identifies_someone(user_data.keys().map(String::as_str)) {
        return Err(refuse(
            "user_data",
            "must identify someone: an email (em), a phone (ph), external_id, fbc or fbp (or another identifier \
             Meta lists), or client_ip_address with client_user_agent (Meta refuses the event otherwise: \
             insufficient customer information)",
        ));
    }
    if let Some(custom_data) = fields.get("custom_data").filter(|custom_data| !custom_data.is_null()) {
        check_custom_data(custom_data).map_err(|(field, rule)| refuse(&format!("custom_data{field}"), rule))?;
    }
    check_consent(fields, &user_data).map_err(|(field, rule)| refuse(field, rule))?;
    if let Some(field) = field_with_nul(event, "") {
        // Postgres (and so the relay's store) cannot hold U+0000 in JSON text, and no real value has it.
        return Err(refuse(&field, "must not contain the NUL character (\\u0000)"));
    }
    let mut body = without_nulls(fields);
    if let Some(Value::Object(custom_data)) = body.get("custom_data") {
        let custom_data = without_nulls(custom_data);
        body.insert("custom_data".into(), Value::Object(custom_data));
    }
    body.insert("user_data".into(), Value::Object(user_data));
    Ok(ValidatedEvent {
        event_name,
        event_time,
        action_source,
        event_id,
        body,
    })
}

/// The fields that have a value: a null is read as an absent field everywhere, so none is stored or sent to
/// Meta (which may read a null otherwise).
fn without_nulls(fields: &Map<String, Value>) -> Map<String, Value> {
    fields
        .iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// The path of the first key or string value holding U+0000 (`""` for the event itself).
fn field_with_nul(value: &Value, path: &str) -> Option<String> {
    let child = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(text) if text.contains('\0') => Some(path.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| field_with_nul(item, &format!("{path}[{index}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                return Some(child("(a key)"));
            }
            field_with_nul(item, &child(key))
        }),
        _ => None,
    }
}

/// A whole number of seconds, as a JSON integer or a string of digits (as form bodies carry it).
fn whole_seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// The most values one customer information key may list (a bound on what one event may carry).
const MAX_VALUES_PER_KEY: usize = 10;

/// Each value prepared by its key's rule; nulls dropped; a list only where Meta allows one. An error is
/// (key, rule).
fn prepare_user_data(
    raw: &Map<String, Value>,
    settings: &NormaliseSettings,
) -> Result<Map<String, Value>, (String, String)> {
    let mut prepared = Map::new();
    for (key, value) in raw {
        let prepare_one = |text: &str| prepare(key, text, settings).map_err(|error| (key.clone(), rule_of(&error)));
        // A whole number (a phone, a zip, an id sent unquoted) is read as its decimal text; a fraction is
        // no customer information.
        let as_text = |value: &Value| match value {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) if number.is_i64() || number.is_u64() => Some(number.to_string()),
            _ => None,
        };
        match value {
            Value::Null => {}
            Value::Array(values) => {
                if !LIST_KEYS.contains(&key.as_str()) {
                    return Err((key.clone(), "takes one value, not a list".into()));
                }
                if values.len() > MAX_VALUES_PER_KEY {
                    return Err((key.clone(), format!("takes at most {MAX_VALUES_PER_KEY} values")));
                }
                let mut items = Vec::with_capacity(values.len());
                for item in values.iter().filter(|item| !item.is_null()) {
                    let Some(text) = as_text(item) else {
                        return Err((key.clone(), "must be a list of strings".into()));
                    };
                    items.push(Value::String(prepare_one(&text)?.as_str().to_owned()));
                }
                if !items.is_empty() {
                    prepared.insert(key.clone(), Value::Array(items));
                }
            }
            scalar => {
                let Some(text) = as_text(scalar) else {
                    return Err((key.clone(), "must be a string or a whole number".into()));
                };
                if matches!(class_of(key), KeyClass::Unknown) {
                    return Err((key.clone(), "is not a customer information parameter Meta knows".into()));
                }
                prepared.insert(key.clone(), Value::String(prepare_one(&text)?.as_str().to_owned()));
            }
        }
    }
    Ok(prepared)
}

/// The rule part of a normalising error (its key is named by the caller).
fn rule_of(error: &crate::user_data::NormaliseError) -> String {
    match error {
        crate::user_data::NormaliseError::Invalid { rule, .. } => (*rule).to_owned(),
        crate::user_data::NormaliseError::UnknownKey { .. } => {
            "is not a customer information parameter Meta knows".into()
        }
    }
}

/// Consent as Meta takes it: `opt_out` a boolean; Limited Data Use `data_processing_options` either `[]` or
/// `["LDU"]`, and with LDU a country (`1` USA, `0` let Meta geolocate) and a state (`1000` California, `0`
/// geolocate), geolocation needing the client's IP address. An error is (field, rule).
fn check_consent(
    fields: &Map<String, Value>,
    user_data: &Map<String, Value>,
) -> Result<(), (&'static str, &'static str)> {
    if fields
        .get("opt_out")
        .is_some_and(|opt_out| !opt_out.is_boolean() && !opt_out.is_null())
    {
        return Err(("opt_out", "must be true or false"));
    }
    // The country and state codes keep Meta's values whenever they are given, LDU or not (Meta refuses others).
    let code = |name: &'static str, allowed: [i64; 2], rule: &'static str| match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_i64() {
            Some(code) if allowed.contains(&code) => Ok(Some(code)),
            _ => Err((name, rule)),
        },
    };
    let country = code(
        "data_processing_options_country",
        [0, 1],
        "must be 1 (USA) or 0 (geolocate)",
    )?;
    let state = code(
        "data_processing_options_state",
        [0, 1000],
        "must be 1000 (California) or 0 (geolocate)",
    )?;
    let options = match fields.get("data_processing_options") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(options)) => options,
        Some(_) => return Err(("data_processing_options", "must be an array: [] or [\"LDU\"]")),
    };
    if options.len() > 1 || options.iter().any(|option| option.as_str() != Some("LDU")) {
        return Err(("data_processing_options", "must be [] or [\"LDU\"]"));
    }
    if options.is_empty() {
        return Ok(());
    }
    let Some(country) = country else {
        return Err((
            "data_processing_options_country",
            "is required with LDU (1 for the USA, 0 to let Meta geolocate)",
        ));
    };
    let Some(state) = state else {
        return Err((
            "data_processing_options_state",
            "is required with a country (1000 for California, 0 to let Meta geolocate)",
        ));
    };
    if (country == 0 || state == 0) && !user_data.contains_key("client_ip_address") {
        return Err((
            "user_data.client_ip_address",
            "is required to geolocate a Limited Data Use event (country or state 0)",
        ));
    }
    Ok(())
}

/// `value` a number, `currency` three letters, `ad_id` a string. An error is (".field", rule).
fn check_custom_data(custom_data: &Value) -> Result<(), (&'static str, &'static str)> {
    let Some(fields) = custom_data.as_object() else {
        return Err(("", "must be an object"));
    };
    let is_amount = |value: &Value| {
        value.is_null() || value.is_number() || value.as_str().is_some_and(|text| text.trim().parse::<f64>().is_ok())
    };
    if fields.get("value").is_some_and(|value| !is_amount(value)) {
        return Err((".value", "must be a number"));
    }
    // adloop's own key: the attributed ad, sent on to the learner. Ad ids exceed a double's precision, so a
    // number would name another ad.
    if fields
        .get("ad_id")
        .is_some_and(|ad_id| !ad_id.is_string() && !ad_id.is_null())
    {
        return Err((".ad_id", "must be a string (an ad id)"));
    }
    if let Some(currency) = fields.get("currency")
        && !currency.is_null()
        && !currency
            .as_str()
            .is_some_and(|code| code.len() == 3 && code.chars().all(|letter| letter.is_ascii_alphabetic()))
    {
        return Err((".currency", "must be an ISO 4217 code (three letters)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_780_000_000;

    fn settings() -> NormaliseSettings {
        NormaliseSettings {
            default_calling_code: Some("1".into()),
            current_year: 2026,
            ..NormaliseSettings::default()
        }
    }

    fn website_purchase() -> Value {
        json!({
            "event_name": "Purchase",
            "event_time": NOW - 60,
            "action_source": "website",
            "event_source_url": "https://shop.example.com/checkout",
            "event_id": "order-1001",
            "user_data": {
                "em": ["Person@Example.com", null],
                "ph": "+44 844 412 4653",
                "client_user_agent": "Mozilla/5.0",
                "fbp": "fb.1.1596403881668.1116446470",
                "fn": null,
            },
            "custom_data": { "value": 123.45, "currency": "USD" },
        })
    }

    fn check(event: &Value) -> Result<ValidatedEvent, EventError> {
        validate_event(3, event, NOW, &TimeRules::default(), &settings())
    }

    #[test]
    fn a_null_field_is_an_absent_one_and_neither_is_stored_nor_sent() {
        let mut event = website_purchase();
        for field in ["event_id", "referrer_url", "app_data", "original_event_data", "opt_out"] {
            event[field] = Value::Null;
        }
        event["custom_data"]["content_ids"] = Value::Null;
        let validated = check(&event).unwrap();
        assert_eq!(validated.event_id, None);
        for field in ["event_id", "referrer_url", "app_data", "original_event_data", "opt_out"] {
            assert!(validated.body.get(field).is_none(), "{field}");
        }
        assert_eq!(
            validated.body["custom_data"],
            json!({ "value": 123.45, "currency": "USD" })
        );
        event["custom_data"] = Value::Null;
        let without_custom_data = check(&event).unwrap();
        assert!(without_custom_data.body.get("custom_data").is_none());
        assert!(
            !Value::Object(without_custom_data.body).to_string().contains("null"),
            "no null reaches the store or Meta"
        );
    }

    #[test]
    fn a_website_purchase_passes_with_its_user_data_hashed_and_nulls_dropped() {
        let validated = check(&website_purchase()).unwrap();
        assert_eq!(validated.event_id.as_deref(), Some("order-1001"));
        let user_data = &validated.body["user_data"];
        assert_eq!(
            user_data["em"],
            json!(["542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345"])
        );
        assert!(
            user_data["ph"]
                .as_str()
                .unwrap()
                .starts_with("dc008fda46e2e64002cf2f82a4906236282d4")
        );
        assert_eq!(user_data["client_user_agent"], "Mozilla/5.0", "never hashed");
        assert!(user_data.get("fn").is_none(), "a null is dropped");
        let stored = Value::Object(validated.body.clone()).to_string();
        assert!(
            !stored.contains("Example.com") && !stored.contains("844"),
            "no raw PII is kept"
        );
    }

    #[test]
    fn each_rule_names_the_event_field_and_rule() {
        let cases: [(&str, Value, &str); 15] = [
            ("event_name", json!(null), "data[3].event_name"),
            ("event_time", json!("yesterday"), "data[3].event_time"),
            ("event_time", json!(NOW - 8 * 86_400), "data[3].event_time: is older"),
            ("event_time", json!(NOW + 3_600), "data[3].event_time: is in the future"),
            (
                "action_source",
                json!("billboard"),
                "data[3].action_source: must be one of",
            ),
            ("event_source_url", json!(null), "data[3].event_source_url"),
            ("user_data", json!({}), "data[3].user_data: must hold at least one"),
            (
                "user_data",
                json!({"em": "a@b.co"}),
                "data[3].user_data.client_user_agent",
            ),
            (
                "user_data",
                json!({"client_user_agent": "x", "em": "no-at-sign"}),
                "data[3].user_data.em: must be an email",
            ),
            (
                "user_data",
                json!({"client_user_agent": "x", "fbp": ["a", "b"]}),
                "data[3].user_data.fbp: takes one value",
            ),
            (
                "custom_data",
                json!({"value": "lots", "currency": "USD"}),
                "data[3].custom_data.value",
            ),
            (
                "custom_data",
                json!({"value": 1, "currency": "USD", "ad_id": 120330000000000001_u64}),
                "data[3].custom_data.ad_id: must be a string",
            ),
            (
                "user_data",
                json!({"client_user_agent": "x", "fbc": "  "}),
                "data[3].user_data.fbc: must not be empty",
            ),
            (
                "user_data",
                json!({"client_user_agent": "x", "ig_sid": 2.5e-42}),
                "data[3].user_data.ig_sid: must be a string",
            ),
            (
                "user_data",
                json!({"client_user_agent": "x", "external_id": (0..11).map(|n| n.to_string()).collect::<Vec<_>>()}),
                "data[3].user_data.external_id: takes at most 10 values",
            ),
        ];
        for (field, value, expected) in cases {
            let mut event = website_purchase();
            event[field] = value;
            let error = check(&event).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{field}: {error}");
            assert!(!error.contains("no-at-sign"), "never the value: {error}");
        }
    }

    #[test]
    fn physical_store_events_may_be_62_days_old_and_non_web_events_need_no_url() {
        let mut store_sale = website_purchase();
        store_sale["action_source"] = json!("physical_store");
        store_sale["event_time"] = json!(NOW - 30 * 86_400);
        store_sale.as_object_mut().unwrap().remove("event_source_url");
        assert!(check(&store_sale).is_ok());
        store_sale["event_time"] = json!(NOW - 63 * 86_400);
        assert!(check(&store_sale).is_err());
    }

    #[test]
    fn fields_passed_on_as_they_are_keep_their_types() {
        for (field, wrong, expected) in [
            ("app_data", json!("x"), "app_data"),
            ("original_event_data", json!([1]), "original_event_data"),
            ("referrer_url", json!(5), "referrer_url"),
        ] {
            let mut event = website_purchase();
            event[field] = wrong;
            assert_eq!(check(&event).unwrap_err().field, expected);
        }
        let mut event = website_purchase();
        event["original_event_data"] = json!({ "event_name": "Purchase", "event_time": NOW - 20 });
        event["referrer_url"] = json!("https://example.com/");
        assert!(check(&event).is_ok());
    }

    #[test]
    fn user_data_must_identify_someone_as_meta_requires() {
        let with_user_data = |user_data: Value| {
            let mut event = website_purchase();
            event["user_data"] = user_data;
            check(&event).map_err(|error| error.field)
        };
        // A user agent alone, or with a city and a country, identifies nobody: Meta refuses such events.
        assert_eq!(
            with_user_data(json!({ "client_user_agent": "Mozilla/5.0" })).unwrap_err(),
            "user_data"
        );
        assert_eq!(
            with_user_data(json!({ "client_user_agent": "Mozilla/5.0", "ct": "paris", "country": "fr" })).unwrap_err(),
            "user_data"
        );
        assert!(
            with_user_data(json!({ "client_user_agent": "Mozilla/5.0", "client_ip_address": "203.0.113.9" })).is_ok()
        );
        assert!(
            with_user_data(json!({ "client_user_agent": "Mozilla/5.0", "fbp": "fb.1.1596403881668.1116446470" }))
                .is_ok()
        );
        assert!(with_user_data(json!({ "client_user_agent": "Mozilla/5.0", "external_id": "customer-7" })).is_ok());
    }

    #[test]
    fn limited_data_use_needs_its_country_and_state_as_meta_requires() {
        let check = |extra: Value| {
            let mut event = json!({
                "event_name": "Purchase", "event_time": NOW - 10, "action_source": "email",
                "user_data": { "em": "a@example.com" },
            });
            for (key, value) in extra.as_object().unwrap() {
                event[key] = value.clone();
            }
            validate_event(0, &event, NOW, &TimeRules::default(), &settings()).map_err(|error| error.field)
        };
        assert!(check(json!({ "data_processing_options": [] })).is_ok());
        assert!(check(json!({ "opt_out": true })).is_ok());
        let ldu = |country: Value, state: Value| {
            json!({ "data_processing_options": ["LDU"], "data_processing_options_country": country,
                    "data_processing_options_state": state })
        };
        assert!(check(ldu(json!(1), json!(1000))).is_ok());
        assert_eq!(
            check(json!({ "data_processing_options": ["LDU"] })).unwrap_err(),
            "data_processing_options_country"
        );
        assert_eq!(
            check(json!({ "data_processing_options": ["LDU"], "data_processing_options_country": 1 })).unwrap_err(),
            "data_processing_options_state"
        );
        assert_eq!(
            check(ldu(json!(0), json!(0))).unwrap_err(),
            "user_data.client_ip_address"
        );
        assert_eq!(
            check(ldu(json!(2), json!(1000))).unwrap_err(),
            "data_processing_options_country"
        );
        assert_eq!(
            check(json!({ "data_processing_options": ["GDPR"] })).unwrap_err(),
            "data_processing_options"
        );
        assert_eq!(
            check(json!({ "data_processing_options": ["LDU", "LDU"] })).unwrap_err(),
            "data_processing_options"
        );
        assert_eq!(check(json!({ "opt_out": "yes" })).unwrap_err(), "opt_out");
        // Without LDU the codes are not needed, but given ones keep Meta's values (it refuses others).
        assert!(check(json!({ "data_processing_options": [], "data_processing_options_country": 0 })).is_ok());
        assert_eq!(
            check(json!({ "data_processing_options": [], "data_processing_options_state": {} })).unwrap_err(),
            "data_processing_options_state"
        );
        assert_eq!(
            check(json!({ "data_processing_options_state": -58800 })).unwrap_err(),
            "data_processing_options_state"
        );
    }

    #[test]
    fn a_nul_character_anywhere_is_refused_by_its_field() {
        let event = json!({
            "event_name": "Purchase", "event_time": NOW - 10, "action_source": "email",
            "user_data": { "em": "a@example.com" },
            "custom_data": { "order_id": "A\u{0}1" },
        });
        let error = validate_event(0, &event, NOW, &TimeRules::default(), &settings()).unwrap_err();
        assert_eq!(error.field, "custom_data.order_id");
    }

    /// Any JSON a client could send, biased towards the field names the checks look at.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let key = prop_oneof![
            proptest::sample::select(vec![
                "event_name",
                "event_time",
                "event_id",
                "action_source",
                "event_source_url",
                "user_data",
                "custom_data",
                "value",
                "currency",
                "em",
                "ph",
                "fn",
                "db",
                "country",
                "zp",
                "client_user_agent",
                "customer",
                "email",
                "phone",
                "value_minor",
                "ad_id",
                "opt_out",
            ])
            .prop_map(str::to_owned),
            "\\PC{0,8}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|number| json!(number)),
            any::<f64>().prop_map(|number| json!(number)),
            "\\PC{0,24}".prop_map(Value::String),
            Just(json!("website")),
            Just(json!(NOW)),
        ];
        leaf.prop_recursive(4, 48, 8, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(key.clone(), inner, 0..8)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn no_event_a_client_can_send_makes_the_checks_panic(event in any_json()) {
            let _ = validate_event(0, &event, NOW, &TimeRules::default(), &settings());
            if let Ok(meta_event) = crate::friendly::to_meta_event(&event) {
                let _ = validate_event(0, &meta_event, NOW, &TimeRules::default(), &settings());
            }
        }
    }
}
