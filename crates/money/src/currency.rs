use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 4217 currency that Meta ad accounts can use, with its number of minor-unit decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: [u8; 3],
    minor_unit_exponent: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a supported ISO 4217 currency code")]
pub struct UnknownCurrency(pub String);

/// ISO 4217 codes and their minor-unit exponents (ISO 4217 table A.1).
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BOB", 2),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("GTQ", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("LKR", 2),
    ("MAD", 2),
    ("MOP", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PEN", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("UYU", 2),
    ("VES", 2),
    ("VND", 0),
    ("ZAR", 2),
];

impl Currency {
    /// Every ISO 4217 code [`Currency::parse`] accepts, in alphabetical order (the OpenAPI documents list
    /// them, and a test holds them to this).
    pub fn supported_codes() -> impl Iterator<Item = &'static str> {
        CURRENCIES.iter().map(|(code, _)| *code)
    }

    /// Parses an upper-case ISO 4217 code such as `USD`.
    pub fn parse(code: &str) -> Result<Currency, UnknownCurrency> {
        CURRENCIES
            .iter()
            .find(|(known_code, _)| *known_code == code)
            .map(|(known_code, exponent)| {
                let bytes = known_code.as_bytes();
                Currency {
                    code: [bytes[0], bytes[1], bytes[2]],
                    minor_unit_exponent: *exponent,
                }
            })
            .ok_or_else(|| UnknownCurrency(code.to_owned()))
    }

    pub fn code(&self) -> &str {
        // The code is always three ASCII letters taken from the table above.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Decimals of the minor unit: 2 for USD, 0 for JPY, 3 for KWD.
    pub fn minor_unit_exponent(&self) -> u8 {
        self.minor_unit_exponent
    }

    pub fn minor_units_per_major(&self) -> i64 {
        10_i64.pow(u32::from(self.minor_unit_exponent))
    }

    /// Meta's "offset" for this currency: how many Graph API amount units make one major unit. 1 for the
    /// currencies Meta budgets in whole units (JPY, but also COP, HUF, IDR, TWD, ... which have cents in
    /// ISO 4217), 100 for the rest, including BHD, JOD and KWD (three ISO decimals, two at Meta).
    pub fn graph_api_offset(&self) -> i64 {
        if GRAPH_API_WHOLE_UNIT_CURRENCIES.contains(&self.code()) {
            1
        } else {
            100
        }
    }
}

/// The currencies of Meta's Marketing API currency table with an offset of 1; every other currency it lists
/// has an offset of 100 (developers.facebook.com/docs/marketing-api/currencies).
const GRAPH_API_WHOLE_UNIT_CURRENCIES: &[&str] = &[
    "CLP", "COP", "CRC", "HUF", "IDR", "ISK", "JPY", "KRW", "PYG", "TWD", "VND",
];

impl std::fmt::Display for Currency {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Currency, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_lower_case_codes_are_rejected() {
        assert_eq!(Currency::parse("XYZ"), Err(UnknownCurrency("XYZ".into())));
        assert!(Currency::parse("usd").is_err());
    }

    #[test]
    fn the_table_is_sorted_and_free_of_duplicates() {
        let codes: Vec<&str> = CURRENCIES.iter().map(|(code, _)| *code).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted);
    }
}
