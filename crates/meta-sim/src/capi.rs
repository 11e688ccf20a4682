//! The Conversions API: validation as Meta applies it (one invalid event rejects the whole request), and a
//! store of everything received, de-duplicated on (event_name, event_id) within 48 hours, so tests can count
//! deliveries exactly.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;

use crate::graph_error::GraphError;
use crate::settings::CapiSettings;

pub const MAX_EVENTS_PER_REQUEST: usize = 1000;

const ACTION_SOURCES: &[&str] = &[
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

/// user_data keys Meta requires hashed (SHA-256, lower-case hex), including those Meta's SDKs send for first
/// name and last name prefixes (`f5first`, `f5last`), first initial (`fi`) and date-of-birth parts.
const MUST_BE_HASHED: &[&str] = &[
    "em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country", "f5first", "f5last", "fi", "dobd", "dobm", "doby",
];

/// Keys that identify a person on their own; an event needs at least one (or a client IP address together
/// with a user agent), or Meta refuses it for insufficient customer information.
const IDENTIFYING_KEYS: &[&str] = &[
    "em",
    "ph",
    "external_id",
    "fbc",
    "fbp",
    "madid",
    "anon_id",
    "subscription_id",
    "fb_login_id",
    "lead_id",
    "ctwa_clid",
    "page_scoped_user_id",
    "ig_sid",
];

/// user_data keys Meta requires in clear text.
const MUST_NOT_BE_HASHED: &[&str] = &[
    "client_ip_address",
    "client_user_agent",
    "fbc",
    "fbp",
    "subscription_id",
    "fb_login_id",
    "lead_id",
    "anon_id",
    "madid",
    "page_id",
    "page_scoped_user_id",
    "ctwa_clid",
    "ig_account_id",
    "ig_sid",
];

/// Keys that may be hashed or not.
const MAY_BE_HASHED: &[&str] = &["external_id"];

/// Meta's subcodes for refused events (2804016 is documented; the others are what public connectors handle).
const USER_DATA_NOT_HASHED_SUBCODE: u32 = 2_804_016;
const EVENT_TOO_OLD_SUBCODE: u32 = 2_804_003;
const INSUFFICIENT_CUSTOMER_INFORMATION_SUBCODE: u32 = 2_804_050;

fn looks_like_sha256_hex(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// A refused event as Meta answers it: `message` "Invalid parameter", the detail (with the event's index
/// and field) in `error_user_msg`.
fn event_error(index: usize, message: String) -> GraphError {
    GraphError::capi_invalid_parameter(None, "Invalid event", format!("data[{index}]: {message}"))
}

fn event_error_with_subcode(index: usize, subcode: u32, title: &str, message: String) -> GraphError {
    GraphError::capi_invalid_parameter(Some(subcode), title, format!("data[{index}]: {message}"))
}

/// The `data` parameter as events: a JSON array (or a JSON-encoded string of one, as form bodies send it)
/// whose elements are objects or JSON-encoded objects (the Python SDK encodes each event separately).
pub fn parse_events(data: &Value) -> Result<Vec<Value>, GraphError> {
    let array = match data {
        Value::Array(items) => items.clone(),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => items,
            _ => return Err(GraphError::invalid_parameter("param data must be an array")),
        },
        _ => return Err(GraphError::invalid_parameter("param data must be an array")),
    };
    let mut events = Vec::with_capacity(array.len());
    for (index, item) in array.into_iter().enumerate() {
        let event = match item {
            Value::Object(_) => item,
            Value::String(text) => serde_json::from_str::<Value>(&text)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| event_error(index, "each event must be a JSON object".into()))?,
            _ => return Err(event_error(index, "each event must be a JSON object".into())),
        };
        events.push(event);
    }
    Ok(events)
}

/// Checks every event; the first violation rejects the whole request.
pub fn validate_events(events: &[Value], now_unix: i64, settings: &CapiSettings) -> Result<(), GraphError> {
    if events.is_empty() {
        return Err(GraphError::invalid_parameter(
            "param data must contain at least one event",
        ));
    }
    if events.len() > MAX_EVENTS_PER_REQUEST {
        return Err(GraphError::invalid_parameter(format!(
            "param data has {} events; at most {MAX_EVENTS_PER_REQUEST} are allowed per request",
            events.len()
        )));
    }
    for (index, event) in events.iter().enumerate() {
        validate_event(index, event, now_unix, settings)?;
    }
    Ok(())
}

fn validate_event(index: usize, event: &Value, now_unix: i64, settings: &CapiSettings) -> Result<(), GraphError> {
    let event_name = event.get("event_name").and_then(Value::as_str).unwrap_or("");
    if event_name.trim().is_empty() {
        return Err(event_error(index, "event_name is required".into()));
    }
    let Some(event_time) = event.get("event_time").and_then(Value::as_i64) else {
        return Err(event_error(
            index,
            "event_time is required and must be an integer of Unix seconds".into(),
        ));
    };
    let Some(action_source) = event.get("action_source").and_then(Value::as_str) else {
        return Err(event_error(index, "action_source is required".into()));
    };
    if !ACTION_SOURCES.contains(&action_source) {
        return Err(event_error(
            index,
            format!(
                "action_source `{action_source}` must be one of {}",
                ACTION_SOURCES.join(", ")
            ),
        ));
    }
    let max_age_days = if action_source == "physical_store" {
        settings.max_physical_store_event_age_days
    } else {
        settings.max_event_age_days
    };
    if now_unix - event_time > (max_age_days * 86_400) as i64 {
        return Err(event_error_with_subcode(
            index,
            EVENT_TOO_OLD_SUBCODE,
            "Event Timestamp Too Old",
            format!("event_time is more than {max_age_days} days in the past"),
        ));
    }
    if event_time - now_unix > settings.future_tolerance_seconds as i64 {
        return Err(event_error(index, "event_time is in the future".into()));
    }
    if let Some(event_id) = event.get("event_id")
        && !event_id.is_string()
    {
        return Err(event_error(index, "event_id must be a string".into()));
    }

    let Some(user_data) = event.get("user_data").and_then(Value::as_object) else {
        return Err(event_error(index, "user_data is required".into()));
    };
    if user_data.is_empty() {
        return Err(event_error(
            index,
            "user_data needs at least one customer information parameter".into(),
        ));
    }
    let identifies_someone = user_data.keys().any(|key| IDENTIFYING_KEYS.contains(&key.as_str()))
        || (user_data.contains_key("client_ip_address") && user_data.contains_key("client_user_agent"));
    if !identifies_someone {
        return Err(event_error_with_subcode(
            index,
            INSUFFICIENT_CUSTOMER_INFORMATION_SUBCODE,
            "Insufficient Customer Information",
            "user_data needs a parameter that identifies someone: em, ph, external_id, fbc, fbp, ... or \
             client_ip_address with client_user_agent"
                .into(),
        ));
    }
    validate_limited_data_use(index, event, user_data)?;
    if action_source == "website" {
        let source_url = event.get("event_source_url").and_then(Value::as_str).unwrap_or("");
        if !(source_url.starts_with("http://") || source_url.starts_with("https://")) {
            return Err(event_error(
                index,
                "event_source_url (http or https) is required for website events".into(),
            ));
        }
        if settings.website_events_require_client_user_agent
            && user_data
                .get("client_user_agent")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Err(event_error(
                index,
                "user_data.client_user_agent is required for website events".into(),
            ));
        }
    }
    for (key, value) in user_data {
        validate_user_data_field(index, key, value)?;
    }
    if let Some(custom_data) = event.get("custom_data") {
        validate_custom_data(index, custom_data)?;
    }
    Ok(())
}

fn user_data_values(value: &Value) -> Vec<Option<String>> {
    match value {
        Value::Array(items) => items.iter().map(|item| item.as_str().map(str::to_owned)).collect(),
        Value::String(text) => vec![Some(text.clone())],
        Value::Number(number) => vec![Some(number.to_string())],
        _ => vec![None],
    }
}

fn validate_user_data_field(index: usize, key: &str, value: &Value) -> Result<(), GraphError> {
    let values = user_data_values(value);
    if MUST_BE_HASHED.contains(&key) {
        for item in &values {
            let hashed = item.as_deref().is_some_and(looks_like_sha256_hex);
            if !hashed {
                return Err(event_error_with_subcode(
                    index,
                    USER_DATA_NOT_HASHED_SUBCODE,
                    "User Parameter Not Hashed",
                    format!("user_data.{key} must be hashed (SHA-256, lower-case hex)"),
                ));
            }
        }
        return Ok(());
    }
    if MUST_NOT_BE_HASHED.contains(&key) {
        for item in &values {
            let Some(text) = item else {
                return Err(event_error(index, format!("user_data.{key} must be a string")));
            };
            if looks_like_sha256_hex(text) {
                return Err(event_error(index, format!("user_data.{key} must not be hashed")));
            }
            if key == "client_ip_address" && text.parse::<IpAddr>().is_err() {
                return Err(event_error(
                    index,
                    "user_data.client_ip_address must be a valid IPv4 or IPv6 address".into(),
                ));
            }
        }
        return Ok(());
    }
    if MAY_BE_HASHED.contains(&key) {
        return Ok(());
    }
    Err(event_error(
        index,
        format!("user_data.{key} is not a customer information parameter"),
    ))
}

/// Limited Data Use: `data_processing_options` is `[]` or `["LDU"]`; with LDU, a country (`1` USA, `0` let
/// Meta geolocate) and a state (`1000` California, `0` geolocate) are required, and geolocation needs the
/// client's IP address.
fn validate_limited_data_use(
    index: usize,
    event: &Value,
    user_data: &serde_json::Map<String, Value>,
) -> Result<(), GraphError> {
    // Given codes keep their documented values, LDU or not (the strict reading).
    for (name, allowed) in [
        ("data_processing_options_country", [0, 1]),
        ("data_processing_options_state", [0, 1000]),
    ] {
        if let Some(code) = event.get(name)
            && !code.as_i64().is_some_and(|code| allowed.contains(&code))
        {
            return Err(event_error(
                index,
                format!("{name} must be {} or {}", allowed[0], allowed[1]),
            ));
        }
    }
    let Some(options) = event.get("data_processing_options") else {
        return Ok(());
    };
    let Some(options) = options.as_array() else {
        return Err(event_error(index, "data_processing_options must be an array".into()));
    };
    if options.len() > 1 || options.iter().any(|option| option.as_str() != Some("LDU")) {
        return Err(event_error(
            index,
            "data_processing_options must be [] or [\"LDU\"]".into(),
        ));
    }
    if options.is_empty() {
        return Ok(());
    }
    let code = |name: &str| event.get(name).and_then(Value::as_i64);
    let Some(country) = code("data_processing_options_country") else {
        return Err(event_error(
            index,
            "data_processing_options_country (1 for the USA, 0 to geolocate) is required with LDU".into(),
        ));
    };
    let Some(state) = code("data_processing_options_state") else {
        return Err(event_error(
            index,
            "data_processing_options_state (1000 for California, 0 to geolocate) is required with a country".into(),
        ));
    };
    if !matches!(country, 0 | 1) || !matches!(state, 0 | 1000) {
        return Err(event_error(
            index,
            "data_processing_options_country must be 0 or 1 and data_processing_options_state 0 or 1000".into(),
        ));
    }
    if (country == 0 || state == 0) && !user_data.contains_key("client_ip_address") {
        return Err(event_error(
            index,
            "geolocating a Limited Data Use event (country or state 0) needs user_data.client_ip_address".into(),
        ));
    }
    Ok(())
}

fn validate_custom_data(index: usize, custom_data: &Value) -> Result<(), GraphError> {
    let Some(custom_data) = custom_data.as_object() else {
        return Err(event_error(index, "custom_data must be an object".into()));
    };
    if let Some(value) = custom_data.get("value")
        && !(value.is_number() || value.as_str().is_some_and(|text| text.parse::<f64>().is_ok()))
    {
        return Err(event_error(index, "custom_data.value must be a number".into()));
    }
    if let Some(currency) = custom_data.get("currency") {
        let valid = currency
            .as_str()
            .is_some_and(|code| code.len() == 3 && code.bytes().all(|byte| byte.is_ascii_alphabetic()));
        if !valid {
            return Err(event_error(
                index,
                "custom_data.currency must be a 3-letter ISO 4217 code".into(),
            ));
        }
    }
    Ok(())
}

/// Where an event came from: the browser's pixel (`/tr`) or a server (the Conversions API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Browser,
    Server,
}

/// Meta keeps the browser's copy when the browser and server copies of an event arrive within this long.
const BROWSER_PREFERRED_WITHIN_SECONDS: i64 = 300;

/// How copies of one event (pixel, event_name, event_id) are told apart.
#[derive(Debug, Clone, Copy)]
pub struct DeduplicationRules {
    /// Copies from the other channel within this long of the first are de-duplicated (Meta: 48 h).
    pub window_hours: u64,
    /// Repeats from the same channel are de-duplicated too (off, the strict reading: Meta promises it only
    /// between browser and server).
    pub same_channel_repeats: bool,
}

/// One event as meta-sim received it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub pixel_id: String,
    pub channel: Channel,
    pub event_name: String,
    pub event_id: Option<String>,
    /// A repeat of (event_name, event_id) within the de-duplication window: received, but not counted again.
    pub deduplicated: bool,
    pub received_at_unix: i64,
    pub test_event_code: Option<String>,
    pub partner_agent: Option<String>,
    pub event: Value,
}

/// Everything received, newest last, at most `capacity` events (the oldest go first), and the first time
/// each (pixel, event_name, event_id) was seen within the de-duplication window (older ones are pruned).
#[derive(Debug)]
pub struct CapiStore {
    events: std::collections::VecDeque<StoredEvent>,
    capacity: usize,
    /// The first copy of each event within the window: when, from which channel, and its place in `events`
    /// (counted from the first event ever stored, so it survives the oldest events going).
    first_received: HashMap<(String, String, String), FirstCopy>,
    /// How many events were ever stored (the sequence number of the next one).
    stored_total: u64,
    last_pruned_unix: i64,
}

/// Request-level parameters kept with each event.
pub struct RequestContext<'a> {
    pub pixel_id: &'a str,
    pub received_at_unix: i64,
    pub test_event_code: Option<String>,
    pub partner_agent: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct FirstCopy {
    received_at_unix: i64,
    channel: Channel,
    sequence: u64,
}

impl CapiStore {
    pub fn new(capacity: usize) -> CapiStore {
        CapiStore {
            events: std::collections::VecDeque::new(),
            capacity,
            first_received: HashMap::new(),
            stored_total: 0,
            last_pruned_unix: i64::MIN,
        }
    }

    /// Forgets first sightings older than the window, at most once a simulated hour.
    fn prune_past_window(&mut self, now_unix: i64, window_seconds: i64) {
        if now_unix.saturating_sub(self.last_pruned_unix) < 3600 {
            return;
        }
        self.first_received
            .retain(|_, first| now_unix - first.received_at_unix <= window_seconds);
        self.last_pruned_unix = now_unix;
    }

    /// Stores validated events from `channel`; returns how many were received. A copy of an event already
    /// received from the other channel within the window is de-duplicated — the later one, except that a
    /// browser copy within 5 minutes of the server's is kept in its place (Meta prefers the browser's);
    /// repeats from the same channel only when `rules.same_channel_repeats`.
    pub fn store(
        &mut self,
        events: Vec<Value>,
        context: &RequestContext<'_>,
        channel: Channel,
        rules: DeduplicationRules,
    ) -> usize {
        let received = events.len();
        let window_seconds = (rules.window_hours * 3600) as i64;
        self.prune_past_window(context.received_at_unix, window_seconds);
        for event in events {
            let event_name = event.get("event_name").and_then(Value::as_str).unwrap_or("").to_owned();
            let event_id = event.get("event_id").and_then(Value::as_str).map(str::to_owned);
            let sequence = self.stored_total;
            let mut deduplicated = false;
            if let Some(event_id) = &event_id {
                let key = (context.pixel_id.to_owned(), event_name.clone(), event_id.clone());
                let this_copy = FirstCopy {
                    received_at_unix: context.received_at_unix,
                    channel,
                    sequence,
                };
                match self.first_received.get(&key).copied() {
                    Some(first) if context.received_at_unix - first.received_at_unix <= window_seconds => {
                        let browser_replaces_server = channel == Channel::Browser
                            && first.channel == Channel::Server
                            && context.received_at_unix - first.received_at_unix <= BROWSER_PREFERRED_WITHIN_SECONDS;
                        if browser_replaces_server {
                            self.mark_deduplicated(first.sequence);
                            self.first_received.insert(key, this_copy);
                        } else {
                            deduplicated = first.channel != channel || rules.same_channel_repeats;
                        }
                    }
                    _ => {
                        self.first_received.insert(key, this_copy);
                    }
                }
            }
            if self.events.len() >= self.capacity {
                self.events.pop_front();
            }
            self.events.push_back(StoredEvent {
                pixel_id: context.pixel_id.to_owned(),
                channel,
                event_name,
                event_id,
                deduplicated,
                received_at_unix: context.received_at_unix,
                test_event_code: context.test_event_code.clone(),
                partner_agent: context.partner_agent.clone(),
                event,
            });
            self.stored_total += 1;
        }
        received
    }

    /// Marks the stored event with sequence number `sequence` de-duplicated, if it is still kept.
    fn mark_deduplicated(&mut self, sequence: u64) {
        let oldest_kept = self.stored_total - self.events.len() as u64;
        if let Some(offset) = sequence.checked_sub(oldest_kept)
            && let Some(event) = self.events.get_mut(offset as usize)
        {
            event.deduplicated = true;
        }
    }

    pub fn events(&self) -> &std::collections::VecDeque<StoredEvent> {
        &self.events
    }

    /// Event ids remembered for de-duplication.
    pub fn remembered_event_ids(&self) -> usize {
        self.first_received.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CapiSettings {
        CapiSettings {
            pixel_ids: vec!["1".into()],
            deduplication_window_hours: 48,
            max_event_age_days: 7,
            max_physical_store_event_age_days: 62,
            future_tolerance_seconds: 600,
            stored_event_capacity: 100,
            deduplicate_server_events: false,
            website_events_require_client_user_agent: true,
        }
    }

    const NOW: i64 = 1_800_000_000;
    const HASHED_EMAIL: &str = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b";

    fn website_event() -> Value {
        serde_json::json!({
            "event_name": "Purchase",
            "event_time": NOW - 60,
            "event_id": "order-1",
            "action_source": "website",
            "event_source_url": "https://shop.example/checkout",
            "user_data": {"em": [HASHED_EMAIL], "client_user_agent": "Mozilla/5.0", "client_ip_address": "203.0.113.9"},
            "custom_data": {"value": 12.5, "currency": "USD"}
        })
    }

    #[test]
    fn a_complete_website_event_is_accepted() {
        assert!(validate_events(&[website_event()], NOW, &settings()).is_ok());
    }

    #[test]
    fn limited_data_use_takes_one_option_and_codes_keep_their_values() {
        let refused = |changes: Value| {
            let mut event = website_event();
            for (key, value) in changes.as_object().unwrap() {
                event[key] = value.clone();
            }
            validate_events(&[event], NOW, &settings()).is_err()
        };
        assert!(!refused(serde_json::json!({"data_processing_options": []})));
        assert!(!refused(serde_json::json!({
            "data_processing_options": ["LDU"], "data_processing_options_country": 1, "data_processing_options_state": 1000
        })));
        assert!(refused(serde_json::json!({
            "data_processing_options": ["LDU", "LDU"], "data_processing_options_country": 1, "data_processing_options_state": 1000
        })));
        assert!(refused(
            serde_json::json!({"data_processing_options": [], "data_processing_options_state": {}})
        ));
        assert!(refused(serde_json::json!({"data_processing_options_country": 7})));
    }

    #[test]
    fn plain_text_email_is_rejected_with_metas_not_hashed_subcode() {
        let mut event = website_event();
        event["user_data"]["em"] = serde_json::json!("person@example.com");
        let error = validate_events(&[event], NOW, &settings()).unwrap_err();
        assert_eq!((error.code, error.error_subcode), (100, Some(2_804_016)));
    }

    #[test]
    fn hashed_values_in_clear_text_fields_are_rejected() {
        let mut event = website_event();
        event["user_data"]["fbp"] = serde_json::json!(HASHED_EMAIL);
        let error = validate_events(&[event], NOW, &settings()).unwrap_err();
        assert!(
            error
                .error_user_msg
                .as_deref()
                .unwrap_or_default()
                .contains("user_data.fbp must not be hashed"),
            "{}",
            error.error_user_msg.clone().unwrap_or_default()
        );
    }

    #[test]
    fn website_events_need_a_source_url_and_user_agent() {
        let mut without_url = website_event();
        without_url.as_object_mut().unwrap().remove("event_source_url");
        assert!(
            validate_events(&[without_url], NOW, &settings())
                .unwrap_err()
                .error_user_msg
                .unwrap_or_default()
                .contains("event_source_url")
        );
        let mut without_agent = website_event();
        without_agent["user_data"]
            .as_object_mut()
            .unwrap()
            .remove("client_user_agent");
        assert!(
            validate_events(&[without_agent], NOW, &settings())
                .unwrap_err()
                .error_user_msg
                .unwrap_or_default()
                .contains("client_user_agent")
        );
    }

    #[test]
    fn age_limits_are_7_days_and_62_for_physical_stores() {
        let mut old_web = website_event();
        old_web["event_time"] = serde_json::json!(NOW - 8 * 86_400);
        assert!(validate_events(&[old_web], NOW, &settings()).is_err());
        let store_event = serde_json::json!({
            "event_name": "Purchase", "event_time": NOW - 30 * 86_400, "action_source": "physical_store",
            "user_data": {"ph": [HASHED_EMAIL]}
        });
        assert!(validate_events(&[store_event], NOW, &settings()).is_ok());
    }

    #[test]
    fn one_bad_event_rejects_the_whole_request_naming_its_index() {
        let mut bad = website_event();
        bad["action_source"] = serde_json::json!("billboard");
        let error = validate_events(&[website_event(), bad], NOW, &settings()).unwrap_err();
        assert!(
            error
                .error_user_msg
                .as_deref()
                .is_some_and(|detail| detail.contains("data[1]") && detail.contains("action_source")),
            "{}",
            error.error_user_msg.clone().unwrap_or_default()
        );
    }

    const SERVER_REPEATS_TOO: DeduplicationRules = DeduplicationRules {
        window_hours: 48,
        same_channel_repeats: true,
    };
    const STRICT: DeduplicationRules = DeduplicationRules {
        window_hours: 48,
        same_channel_repeats: false,
    };

    fn context(received_at_unix: i64) -> RequestContext<'static> {
        RequestContext {
            pixel_id: "1",
            received_at_unix,
            test_event_code: None,
            partner_agent: None,
        }
    }

    fn flags(store: &CapiStore) -> Vec<bool> {
        store.events().iter().map(|event| event.deduplicated).collect()
    }

    #[test]
    fn repeats_within_48_hours_are_deduplicated() {
        let mut store = CapiStore::new(100);
        store.store(
            vec![website_event()],
            &context(NOW),
            Channel::Server,
            SERVER_REPEATS_TOO,
        );
        store.store(
            vec![website_event()],
            &context(NOW + 3600),
            Channel::Server,
            SERVER_REPEATS_TOO,
        );
        store.store(
            vec![website_event()],
            &context(NOW + 49 * 3600),
            Channel::Server,
            SERVER_REPEATS_TOO,
        );
        assert_eq!(flags(&store), vec![false, true, false]);
    }

    #[test]
    fn browser_and_server_copies_count_once_and_a_prompt_browser_copy_is_the_one_kept() {
        // The server's copy first, the browser's an hour later: the server's stands.
        let mut store = CapiStore::new(100);
        store.store(vec![website_event()], &context(NOW), Channel::Server, STRICT);
        store.store(vec![website_event()], &context(NOW + 3600), Channel::Browser, STRICT);
        assert_eq!(flags(&store), vec![false, true]);
        // The browser's within five minutes of the server's: the browser's is kept instead.
        let mut store = CapiStore::new(100);
        store.store(vec![website_event()], &context(NOW), Channel::Server, STRICT);
        store.store(vec![website_event()], &context(NOW + 60), Channel::Browser, STRICT);
        assert_eq!(flags(&store), vec![true, false]);
        // Strictly, two server copies both count (Meta promises de-duplication between channels only).
        let mut store = CapiStore::new(100);
        store.store(vec![website_event()], &context(NOW), Channel::Server, STRICT);
        store.store(vec![website_event()], &context(NOW + 60), Channel::Server, STRICT);
        store.store(vec![website_event()], &context(NOW + 120), Channel::Browser, STRICT);
        assert_eq!(
            flags(&store),
            vec![true, false, false],
            "the browser copy replaced the first server copy"
        );
    }

    #[test]
    fn the_store_keeps_at_most_its_capacity_and_forgets_ids_past_the_window() {
        let mut store = CapiStore::new(10);
        for index in 0..25 {
            let mut event = website_event();
            event["event_id"] = Value::from(format!("order-{index}"));
            let context = RequestContext {
                pixel_id: "1",
                received_at_unix: NOW + index * 3600,
                test_event_code: None,
                partner_agent: None,
            };
            let rules = DeduplicationRules {
                window_hours: 12,
                same_channel_repeats: true,
            };
            store.store(vec![event], &context, Channel::Server, rules);
        }
        assert_eq!(store.events().len(), 10, "the oldest events went first");
        assert_eq!(
            store.events().back().map(|event| event.event_id.clone()),
            Some(Some("order-24".into()))
        );
        assert!(
            store.remembered_event_ids() <= 14,
            "ids older than the 12 h window were forgotten: {}",
            store.remembered_event_ids()
        );
    }
}
