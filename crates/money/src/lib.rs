//! Money in adloop: integer minor units plus an ISO 4217 currency, never floats. The number of minor units
//! per major unit comes from the currency (100 for USD, 1 for JPY, 1000 for KWD), never from a hard-coded ×100.
//! At the Graph API boundary amounts are in Meta's own units ([`GraphAmount`]), whose scale differs from
//! ISO 4217 for some currencies; `MinorUnits::to_graph_amount` and `GraphAmount::to_minor_units` are the one
//! conversion.

mod currency;
mod graph_amount;
mod split;

pub use currency::{Currency, UnknownCurrency};
pub use graph_amount::{GraphAmount, InexactGraphAmount};
pub use split::split_proportionally;

use serde::{Deserialize, Serialize};

/// An amount in a currency's minor unit (cents for USD, yen for JPY).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MinorUnits(pub i64);

impl MinorUnits {
    pub const ZERO: MinorUnits = MinorUnits(0);

    pub fn get(self) -> i64 {
        self.0
    }

    /// The amount in major units as a float, for rates and display only (never for sums of money).
    pub fn to_major(self, currency: Currency) -> f64 {
        self.0 as f64 / currency.minor_units_per_major() as f64
    }

    /// The nearest whole number of minor units to `major` major units.
    pub fn from_major_rounded(major: f64, currency: Currency) -> MinorUnits {
        MinorUnits((major * currency.minor_units_per_major() as f64).round() as i64)
    }

    pub fn saturating_add(self, other: MinorUnits) -> MinorUnits {
        MinorUnits(self.0.saturating_add(other.0))
    }
}

impl std::ops::Add for MinorUnits {
    type Output = MinorUnits;
    fn add(self, other: MinorUnits) -> MinorUnits {
        MinorUnits(self.0 + other.0)
    }
}

impl std::ops::AddAssign for MinorUnits {
    fn add_assign(&mut self, other: MinorUnits) {
        self.0 += other.0;
    }
}

impl std::ops::Sub for MinorUnits {
    type Output = MinorUnits;
    fn sub(self, other: MinorUnits) -> MinorUnits {
        MinorUnits(self.0 - other.0)
    }
}

impl std::iter::Sum for MinorUnits {
    fn sum<I: Iterator<Item = MinorUnits>>(iter: I) -> MinorUnits {
        MinorUnits(iter.map(|amount| amount.0).sum())
    }
}

/// An amount with its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: MinorUnits,
    pub currency: Currency,
}

impl std::fmt::Display for Money {
    /// `12.34 USD`, `1500 JPY`: as many decimals as the currency has.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let decimals = usize::from(self.currency.minor_unit_exponent());
        write!(
            formatter,
            "{:.decimals$} {}",
            self.amount.to_major(self.currency),
            self.currency
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_unit_conversion_follows_the_currency() {
        let usd = Currency::parse("USD").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(MinorUnits::from_major_rounded(1.0, usd), MinorUnits(100));
        assert_eq!(MinorUnits::from_major_rounded(1.0, jpy), MinorUnits(1));
        assert_eq!(MinorUnits::from_major_rounded(1.0, kwd), MinorUnits(1000));
        assert_eq!(
            Money {
                amount: MinorUnits(1234),
                currency: usd
            }
            .to_string(),
            "12.34 USD"
        );
        assert_eq!(
            Money {
                amount: MinorUnits(1500),
                currency: jpy
            }
            .to_string(),
            "1500 JPY"
        );
    }
}
