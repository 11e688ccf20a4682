//! Meta's customer-information rules for the Conversions API (`user_data`): each value is normalised by its
//! key's rule, then hashed with SHA-256 (lowercase hex); values that already are a SHA-256 digest pass
//! through; the keys Meta says never to hash are never hashed. The relay calls this before anything is
//! written, so raw PII never reaches disk or a log.
//!
//! - `keys`: which keys are hashed, which never are.
//! - `rules`: one normaliser per hashed key (email, phone, names, city, state, zip, country, gender, date of
//!   birth, the SDKs' extra keys, external id).
//! - `hashing`: SHA-256 hex and the already-hashed test.
//!
//! Where Meta's documentation and its SDKs differ, the documentation wins (see the rule's docs).

use unicode_normalization::UnicodeNormalization as _;

pub mod hashing;
pub mod keys;
pub mod rules;

pub use hashing::{looks_hashed, sha256_hex};
pub use keys::{KeyClass, class_of};
pub use rules::{DateOrder, NormaliseError, NormaliseSettings};

/// What goes to Meta for one `user_data` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// A SHA-256 digest (lowercase hex) of the normalised value, or a digest the client already sent.
    Hashed(String),
    /// A value Meta wants as it is (client_ip_address, fbc, fbp, …), trimmed.
    Plain(String),
}

impl Prepared {
    pub fn as_str(&self) -> &str {
        match self {
            Prepared::Hashed(value) | Prepared::Plain(value) => value,
        }
    }
}

/// Prepares one value of `key` for Meta. A value that is already a SHA-256 digest passes through
/// (lowercased); an unknown key is an error naming it.
pub fn prepare(key: &str, raw: &str, settings: &NormaliseSettings) -> Result<Prepared, NormaliseError> {
    match class_of(key) {
        KeyClass::NeverHashed => {
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                // A blank identifier identifies nobody, and Meta refuses an event that only it "identifies".
                return Err(NormaliseError::Invalid {
                    key: key.to_owned(),
                    rule: "must not be empty",
                });
            }
            Ok(Prepared::Plain(trimmed.to_owned()))
        }
        KeyClass::Hashed(rule) => {
            let trimmed = raw.trim();
            if looks_hashed(trimmed) {
                return Ok(Prepared::Hashed(trimmed.to_ascii_lowercase()));
            }
            // One Unicode form (NFC), so "é" typed as e + a combining accent hashes like the precomposed é.
            let composed: String = trimmed.nfc().collect();
            let normalised = rules::normalise(rule, &composed, settings).map_err(|error| error.for_key(key))?;
            Ok(Prepared::Hashed(sha256_hex(&normalised)))
        }
        KeyClass::Unknown => Err(NormaliseError::UnknownKey { key: key.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn us_source() -> NormaliseSettings {
        NormaliseSettings {
            default_calling_code: Some("1".into()),
            date_order: DateOrder::MonthFirst,
            current_year: 2026,
        }
    }

    fn normalised(key: &str, raw: &str) -> String {
        let KeyClass::Hashed(rule) = class_of(key) else {
            panic!("{key} is not hashed");
        };
        rules::normalise(rule, raw.trim(), &us_source()).unwrap_or_else(|error| panic!("{key} {raw:?}: {error}"))
    }

    #[test]
    fn metas_published_vectors_reproduce_exactly() {
        // The email and phone examples Meta's conversions documentation publishes with their hashes.
        assert_eq!(
            prepare("em", "  Person@Example.com ", &us_source()).unwrap(),
            Prepared::Hashed("542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345".into())
        );
        let phone = prepare("ph", "+44 844 412 4653", &us_source()).unwrap();
        assert!(
            phone.as_str().starts_with("dc008fda46e2e64002cf2f82a4906236282d4"),
            "{phone:?}"
        );
    }

    #[test]
    fn a_blank_identifier_that_stays_as_sent_is_refused() {
        for key in ["client_user_agent", "fbc", "ig_sid", "external_id"] {
            if matches!(class_of(key), KeyClass::NeverHashed) {
                assert!(
                    matches!(prepare(key, "   ", &us_source()), Err(NormaliseError::Invalid { .. })),
                    "{key}"
                );
                assert_eq!(prepare(key, " x ", &us_source()).unwrap(), Prepared::Plain("x".into()));
            }
        }
        assert!(matches!(class_of("ig_sid"), KeyClass::NeverHashed));
    }

    #[test]
    fn each_key_follows_its_documented_rule() {
        // (key, raw, normalised): each expected value written from Meta's rules, not from this code.
        let cases = [
            ("em", "John_Smith@gmail.com", "john_smith@gmail.com"),
            ("ph", "(650)555-1212", "16505551212"),
            ("ph", "+1 650-555-1212 ext. 42", "16505551212"),
            ("ph", "0044 20 7946 0958", "442079460958"),
            ("ph", "16505551212", "16505551212"),
            ("fn", "Valéry", "valéry"),
            ("ln", "O'Brien-Smith", "obriensmith"),
            ("fn", "  MARY ", "mary"),
            ("ct", "New York", "newyork"),
            ("ct", "São Paulo", "sãopaulo"),
            ("st", "California", "ca"),
            ("st", "AZ", "az"),
            ("st", "New South Wales", "newsouthwales"),
            ("zp", "94035-1234", "94035"),
            ("zp", "940351234", "94035"),
            ("zp", "M1 1AE", "m11ae"),
            ("country", "US", "us"),
            ("ge", "Female", "f"),
            ("ge", "M", "m"),
            ("db", "2/16/1997", "19970216"),
            ("db", "1997-02-16", "19970216"),
            ("db", "19970216", "19970216"),
            ("external_id", "Loyalty-123", "Loyalty-123"),
            ("f5first", "Jonathan", "jonat"),
            ("f5last", "Li", "li"),
            ("fi", "jonathan", "j"),
            ("dobd", "7", "07"),
            ("dobm", "12", "12"),
            ("doby", "1997", "1997"),
        ];
        for (key, raw, expected) in cases {
            assert_eq!(normalised(key, raw), expected, "{key} {raw:?}");
        }
        assert_eq!(
            sha256_hex(&normalised("em", "John_Smith@gmail.com")),
            "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
        );
        assert_eq!(
            sha256_hex(&normalised("ph", "(650)555-1212")),
            "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
        );
    }

    #[test]
    fn day_first_sources_read_dates_their_way() {
        let european = NormaliseSettings {
            date_order: DateOrder::DayFirst,
            ..us_source()
        };
        assert_eq!(
            rules::normalise(rules::Rule::DateOfBirth, "16.02.1997", &european).unwrap(),
            "19970216"
        );
    }

    #[test]
    fn values_that_cannot_match_anyone_are_refused_naming_the_key_not_the_value() {
        let source = us_source();
        for (key, raw) in [
            ("em", "not-an-email"),
            ("ph", "12"),
            ("db", "2/30/1997"),
            ("db", "1/1/1850"),
            ("db", "1/1/2030"),
            ("ge", "x"),
            ("country", "zz"),
            ("country", "atlantis"),
            ("fn", "1234"),
        ] {
            let error = prepare(key, raw, &source).unwrap_err();
            let message = error.to_string();
            assert!(message.starts_with(&format!("user_data.{key}: ")), "{message}");
            assert!(
                !message.contains(raw),
                "the value never appears in the error: {message}"
            );
        }
        let without_country_code = NormaliseSettings::default();
        assert!(prepare("ph", "(650)555-1212", &without_country_code).is_err());
        assert_eq!(
            prepare("nickname", "x", &source),
            Err(NormaliseError::UnknownKey { key: "nickname".into() })
        );
    }

    #[test]
    fn hashed_values_pass_through_and_never_hashed_keys_stay_plain() {
        let digest = "62A14E44F765419D10FEA99367361A727C12365E2520F32218D505ED9AA0F62F";
        assert_eq!(
            prepare("em", digest, &us_source()).unwrap(),
            Prepared::Hashed(digest.to_ascii_lowercase()),
            "hashing a digest again would never match"
        );
        for key in keys::NEVER_HASHED_KEYS {
            assert_eq!(
                prepare(key, " fb.1.1554763741205.IwAR2F4 ", &us_source()).unwrap(),
                Prepared::Plain("fb.1.1554763741205.IwAR2F4".into()),
                "{key}"
            );
        }
    }

    proptest! {
        #[test]
        fn no_input_panics_and_every_hash_is_64_lowercase_hex(key_index in 0_usize..30, raw in "\\PC{0,40}") {
            let keys = [
                "em", "ph", "fn", "ln", "ct", "st", "zp", "country", "ge", "db", "external_id", "f5first",
                "f5last", "fi", "dobd", "dobm", "doby", "fbc", "client_ip_address", "nickname",
            ];
            let key = keys[key_index % keys.len()];
            if let Ok(Prepared::Hashed(digest)) = prepare(key, &raw, &us_source()) {
                prop_assert_eq!(digest.len(), 64);
                prop_assert!(digest.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)));
            }
        }
    }
}
