//! The shop's website in the simulated month. For every purchase the world makes, the browser's pixel
//! reports it to Meta unless the browser blocks it (ad blockers, privacy settings: `pixel_loss_percent` of
//! purchases, chosen by the event id), and the shop's server reports every purchase through capi-relay, with
//! the customer's email and phone for the relay to normalise and hash, under the same event id — so Meta
//! counts each purchase once whichever copies arrive.

use adloop_money::{Currency, MinorUnits};
use serde_json::{Value, json};

/// The purchases of one simulated day: how many and their value, as the world made them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayOfPurchases {
    pub day: u32,
    pub count: u64,
    /// Minor units of `currency`.
    pub value: i64,
    /// Unix seconds of the day's first second on the simulated calendar.
    pub day_start_unix: i64,
}

pub struct Website<'a> {
    pub http: &'a reqwest::Client,
    pub meta_sim_url: &'a str,
    pub relay_url: &'a str,
    pub pixel_id: &'a str,
    pub ingest_token: &'a str,
    pub currency: Currency,
    pub pixel_loss_percent: u64,
    /// Makes this run's event ids its own (the relay remembers ids across runs).
    pub run_tag: &'a str,
}

/// What the website sent for a day.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WebsiteCounts {
    pub purchases: u64,
    pub pixel_sent: u64,
    pub relay_accepted: u64,
}

/// FNV-1a: a hash stable across runs and platforms, unlike the standard library's.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether the browser blocks the pixel for this purchase: a stable share of purchases, by event id.
pub fn pixel_blocked(event_id: &str, loss_percent: u64) -> bool {
    stable_hash(event_id) % 100 < loss_percent
}

/// The purchases of a day spread over it: (event id, event time, value in minor units), the value split
/// evenly (the remainder to the first).
pub fn purchases_of_day(purchases: &DayOfPurchases, run_tag: &str) -> Vec<(String, i64, i64)> {
    let count = purchases.count.max(1) as i64;
    let each = purchases.value / count;
    (0..purchases.count as i64)
        .map(|index| {
            let value = if index == 0 {
                purchases.value - each * (count - 1)
            } else {
                each
            };
            let event_time = purchases.day_start_unix + (index * 86_400 + 43_200) / count;
            (
                format!("{run_tag}-day{}-order{index}", purchases.day),
                event_time,
                value,
            )
        })
        .collect()
}

impl Website<'_> {
    /// Sends a day's purchases: each through the pixel unless blocked, all through the relay.
    pub async fn report_day(&self, purchases: &DayOfPurchases) -> Result<WebsiteCounts, String> {
        let orders = purchases_of_day(purchases, self.run_tag);
        let mut counts = WebsiteCounts {
            purchases: orders.len() as u64,
            ..WebsiteCounts::default()
        };
        for (event_id, event_time, value) in &orders {
            if pixel_blocked(event_id, self.pixel_loss_percent) {
                continue;
            }
            let major = MinorUnits(*value).to_major(self.currency);
            let response = self
                .http
                .get(format!("{}/tr", self.meta_sim_url))
                .query(&[
                    ("id", self.pixel_id.to_owned()),
                    ("ev", "Purchase".to_owned()),
                    ("eid", event_id.clone()),
                    ("cd[value]", major.to_string()),
                    ("cd[currency]", self.currency.code().to_owned()),
                    ("ts", (event_time * 1000).to_string()),
                ])
                .send()
                .await
                .map_err(crate::request_failure)?;
            if !response.status().is_success() {
                return Err(format!("the pixel was refused: {}", response.status()));
            }
            counts.pixel_sent += 1;
        }
        for chunk in orders.chunks(1000) {
            let data: Vec<Value> = chunk
                .iter()
                .map(|(event_id, event_time, value)| {
                    // One of 10,000 customers, the same for the same order.
                    let customer = (stable_hash(event_id) >> 32) % 10_000;
                    json!({
                        "event_name": "Purchase",
                        "event_time": event_time,
                        "event_id": event_id,
                        "action_source": "website",
                        "event_source_url": "https://shop.example/checkout",
                        "user_data": {
                            "em": format!("Customer.{customer}@Example.com"),
                            "ph": format!("+1 (650) 555-{customer:04}"),
                            "client_user_agent": "Mozilla/5.0 (adloop month)",
                        },
                        "custom_data": {
                            "value": MinorUnits(*value).to_major(self.currency),
                            "currency": self.currency.code(),
                        },
                    })
                })
                .collect();
            let response = self
                .http
                .post(format!("{}/v25.0/{}/events", self.relay_url, self.pixel_id))
                .json(&json!({ "data": data, "access_token": self.ingest_token }))
                .send()
                .await
                .map_err(crate::request_failure)?;
            let status = response.status();
            let answer: Value = response.json().await.map_err(crate::request_failure)?;
            if !status.is_success() {
                return Err(format!("the relay answered {status}: {answer}"));
            }
            counts.relay_accepted += answer["events_received"].as_u64().unwrap_or(0);
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_days_purchases_keep_its_value_and_stay_within_it() {
        let day = DayOfPurchases {
            day: 3,
            count: 7,
            value: 100_003,
            day_start_unix: 1_000_000,
        };
        let orders = purchases_of_day(&day, "run");
        assert_eq!(orders.len(), 7);
        assert_eq!(orders.iter().map(|order| order.2).sum::<i64>(), 100_003);
        assert!(orders.iter().all(|order| (1_000_000..1_086_400).contains(&order.1)));
        assert_eq!(orders[0].0, "run-day3-order0");
        assert!(purchases_of_day(&DayOfPurchases { count: 0, ..day }, "run").is_empty());
    }

    #[test]
    fn the_pixel_loses_about_its_share_and_always_the_same_purchases() {
        let blocked = (0..10_000)
            .filter(|index| pixel_blocked(&format!("run-day1-order{index}"), 30))
            .count();
        assert!((2_700..3_300).contains(&blocked), "{blocked}");
        assert_eq!(pixel_blocked("order-1", 30), pixel_blocked("order-1", 30));
        assert!(!pixel_blocked("order-1", 0));
        assert!(pixel_blocked("order-1", 100));
    }
}
