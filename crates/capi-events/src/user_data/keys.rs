//! The `user_data` keys: which are normalised and hashed (and by which rule), which Meta wants as they are.

use super::rules::Rule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyClass {
    Hashed(Rule),
    /// Meta: "do not hash" (identifiers of a browser, a click, a device, an app user, a lead, …).
    NeverHashed,
    Unknown,
}

/// Keys Meta says never to hash.
pub const NEVER_HASHED_KEYS: [&str; 14] = [
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

/// Keys that identify a person on their own. Meta refuses an event whose `user_data` has none of them (nor a
/// client IP address together with a user agent) as "Insufficient Customer Information" (code 100, subcode
/// 2804050), so the relay refuses it at once rather than acknowledge an event that can never be delivered.
pub const IDENTIFYING_KEYS: [&str; 13] = [
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

/// Whether prepared `user_data` keys identify someone: one identifying key, or a client IP address with a
/// user agent.
pub fn identifies_someone<'a>(keys: impl IntoIterator<Item = &'a str> + Clone) -> bool {
    let has = |wanted: &str| keys.clone().into_iter().any(|key| key == wanted);
    keys.clone().into_iter().any(|key| IDENTIFYING_KEYS.contains(&key))
        || (has("client_ip_address") && has("client_user_agent"))
}

pub fn class_of(key: &str) -> KeyClass {
    let rule = match key {
        "em" => Rule::Email,
        "ph" => Rule::Phone,
        "fn" | "ln" => Rule::Name,
        "ct" => Rule::City,
        "st" => Rule::State,
        "zp" => Rule::Zip,
        "country" => Rule::Country,
        "ge" => Rule::Gender,
        "db" => Rule::DateOfBirth,
        "external_id" => Rule::ExternalId,
        // The extra keys Meta's SDKs send: first five letters of the first / last name, first initial,
        // and the date of birth in parts.
        "f5first" | "f5last" => Rule::FirstFiveLetters,
        "fi" => Rule::Initial,
        "dobd" => Rule::BirthDay,
        "dobm" => Rule::BirthMonth,
        "doby" => Rule::BirthYear,
        other if NEVER_HASHED_KEYS.contains(&other) => return KeyClass::NeverHashed,
        _ => return KeyClass::Unknown,
    };
    KeyClass::Hashed(rule)
}
