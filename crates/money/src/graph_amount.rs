//! Amounts as Meta's Graph API writes them: budgets, bids and minimum budgets are integers in units of
//! 1/offset of the major unit, where the offset comes from Meta's currency table, not from ISO 4217 (a
//! Colombian budget of 5000 is 5000 pesos at Meta, 50.00 pesos in ISO minor units).

use serde::{Deserialize, Serialize};

use crate::{Currency, MinorUnits};

/// An amount in the Graph API's units for its currency (see [`Currency::graph_api_offset`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GraphAmount(pub i64);

/// An amount the Graph API cannot express exactly: ISO 4217 has finer units than Meta for the currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "{minor_units} minor units of {currency} is not a whole number of Meta's units ({per_graph_unit} minor units each)"
)]
pub struct InexactGraphAmount {
    pub minor_units: i64,
    pub currency: Currency,
    pub per_graph_unit: i64,
}

/// How the two scales relate: one of them is always a whole multiple of the other.
enum Scale {
    /// This many ISO minor units make one Graph unit (COP: 100; BHD: 10; USD: 1).
    MinorUnitsPerGraphUnit(i64),
    /// This many Graph units make one ISO minor unit (no currency needs it today; kept for completeness).
    GraphUnitsPerMinorUnit(i64),
}

fn scale(currency: Currency) -> Scale {
    let minor_per_major = currency.minor_units_per_major();
    let graph_per_major = currency.graph_api_offset();
    if minor_per_major >= graph_per_major {
        Scale::MinorUnitsPerGraphUnit(minor_per_major / graph_per_major)
    } else {
        Scale::GraphUnitsPerMinorUnit(graph_per_major / minor_per_major)
    }
}

impl GraphAmount {
    pub fn get(self) -> i64 {
        self.0
    }

    /// The amount in ISO minor units (always exact).
    pub fn to_minor_units(self, currency: Currency) -> MinorUnits {
        match scale(currency) {
            Scale::MinorUnitsPerGraphUnit(factor) => MinorUnits(self.0.saturating_mul(factor)),
            Scale::GraphUnitsPerMinorUnit(factor) => MinorUnits(self.0 / factor),
        }
    }
}

impl MinorUnits {
    /// The amount in the Graph API's units, refused when Meta's units are coarser and it does not fit.
    pub fn to_graph_amount(self, currency: Currency) -> Result<GraphAmount, InexactGraphAmount> {
        match scale(currency) {
            Scale::MinorUnitsPerGraphUnit(factor) if self.0 % factor != 0 => Err(InexactGraphAmount {
                minor_units: self.0,
                currency,
                per_graph_unit: factor,
            }),
            Scale::MinorUnitsPerGraphUnit(factor) => Ok(GraphAmount(self.0 / factor)),
            Scale::GraphUnitsPerMinorUnit(factor) => Ok(GraphAmount(self.0.saturating_mul(factor))),
        }
    }

    /// The amount in the Graph API's units, rounded down to a whole Graph unit when Meta's units are
    /// coarser (a budget never exceeds what was decided).
    pub fn to_graph_amount_rounded_down(self, currency: Currency) -> GraphAmount {
        match scale(currency) {
            Scale::MinorUnitsPerGraphUnit(factor) => GraphAmount(self.0.div_euclid(factor)),
            Scale::GraphUnitsPerMinorUnit(factor) => GraphAmount(self.0.saturating_mul(factor)),
        }
    }

    /// The largest amount not above this one that the Graph API can express exactly.
    pub fn rounded_down_to_graph_units(self, currency: Currency) -> MinorUnits {
        self.to_graph_amount_rounded_down(currency).to_minor_units(currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Meta's Marketing API currency table (code, offset), as published, for every currency it lists.
    const META_CURRENCY_TABLE: &[(&str, i64)] = &[
        ("DZD", 100),
        ("ARS", 100),
        ("AUD", 100),
        ("BHD", 100),
        ("BDT", 100),
        ("BOB", 100),
        ("BGN", 100),
        ("BRL", 100),
        ("GBP", 100),
        ("CAD", 100),
        ("CLP", 1),
        ("CNY", 100),
        ("COP", 1),
        ("CRC", 1),
        ("HRK", 100),
        ("CZK", 100),
        ("DKK", 100),
        ("EGP", 100),
        ("EUR", 100),
        ("GTQ", 100),
        ("HNL", 100),
        ("HKD", 100),
        ("HUF", 1),
        ("ISK", 1),
        ("INR", 100),
        ("IDR", 1),
        ("ILS", 100),
        ("JPY", 1),
        ("JOD", 100),
        ("KES", 100),
        ("KRW", 1),
        ("LVL", 100),
        ("LTL", 100),
        ("MOP", 100),
        ("MYR", 100),
        ("MXN", 100),
        ("NZD", 100),
        ("NIO", 100),
        ("NGN", 100),
        ("NOK", 100),
        ("PKR", 100),
        ("PYG", 1),
        ("PEN", 100),
        ("PHP", 100),
        ("PLN", 100),
        ("QAR", 100),
        ("RON", 100),
        ("RUB", 100),
        ("SAR", 100),
        ("RSD", 100),
        ("SGD", 100),
        ("SKK", 100),
        ("ZAR", 100),
        ("SEK", 100),
        ("CHF", 100),
        ("TWD", 1),
        ("THB", 100),
        ("TRY", 100),
        ("AED", 100),
        ("UYU", 100),
        ("USD", 100),
        ("VEF", 100),
        ("VND", 1),
    ];
    /// Listed by Meta but withdrawn from ISO 4217 (replaced by EUR or VES): ad accounts cannot use them.
    const WITHDRAWN_FROM_ISO_4217: &[&str] = &["HRK", "LVL", "LTL", "SKK", "VEF"];

    fn currency(code: &str) -> Currency {
        Currency::parse(code).unwrap_or_else(|_| panic!("{code} is supported"))
    }

    #[test]
    fn every_currency_in_metas_table_has_metas_offset() {
        for (code, offset) in META_CURRENCY_TABLE {
            if WITHDRAWN_FROM_ISO_4217.contains(code) {
                assert!(Currency::parse(code).is_err(), "{code} was withdrawn");
                continue;
            }
            assert_eq!(currency(code).graph_api_offset(), *offset, "{code}");
        }
        // Not in the table's published excerpt, but Meta's 100 for "the others" (three ISO decimals).
        assert_eq!(currency("KWD").graph_api_offset(), 100);
    }

    #[test]
    fn every_currency_converts_both_ways_and_a_major_unit_is_the_offset() {
        for (code, offset) in META_CURRENCY_TABLE {
            let Ok(currency) = Currency::parse(code) else { continue };
            let one_major = MinorUnits(currency.minor_units_per_major());
            assert_eq!(one_major.to_graph_amount(currency), Ok(GraphAmount(*offset)), "{code}");
            assert_eq!(GraphAmount(*offset).to_minor_units(currency), one_major, "{code}");
            let budget = GraphAmount(123_456);
            assert_eq!(
                budget.to_minor_units(currency).to_graph_amount(currency),
                Ok(budget),
                "{code}"
            );
        }
    }

    #[test]
    fn the_currencies_where_iso_and_meta_differ_convert_by_the_right_factor() {
        // 5,000 Colombian pesos: 5000 at Meta, 500000 ISO minor units.
        assert_eq!(GraphAmount(5000).to_minor_units(currency("COP")), MinorUnits(500_000));
        assert_eq!(
            MinorUnits(500_000).to_graph_amount(currency("COP")),
            Ok(GraphAmount(5000))
        );
        // 12.34 Bahraini dinars: 1234 at Meta, 12340 fils.
        assert_eq!(GraphAmount(1234).to_minor_units(currency("BHD")), MinorUnits(12_340));
        assert_eq!(
            MinorUnits(12_345)
                .to_graph_amount(currency("BHD"))
                .map_err(|error| error.per_graph_unit),
            Err(10)
        );
        assert_eq!(
            MinorUnits(12_345).rounded_down_to_graph_units(currency("BHD")),
            MinorUnits(12_340)
        );
        // USD and JPY are the same at both scales.
        assert_eq!(
            MinorUnits(2_550).to_graph_amount(currency("USD")),
            Ok(GraphAmount(2_550))
        );
        assert_eq!(
            MinorUnits(2_550).to_graph_amount(currency("JPY")),
            Ok(GraphAmount(2_550))
        );
        // Pesos with cents cannot be sent: Meta budgets them in whole pesos.
        assert!(MinorUnits(500_050).to_graph_amount(currency("COP")).is_err());
        assert_eq!(
            MinorUnits(500_050).to_graph_amount_rounded_down(currency("COP")),
            GraphAmount(5000)
        );
    }
}
