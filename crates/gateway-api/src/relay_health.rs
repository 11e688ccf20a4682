//! capi-relay as the operator's page shows it: whether the relay is ready, and how its events fare, read
//! from the relay's own `/readyz` and `/metrics` (the gateway holds none of the relay's data).

use std::collections::BTreeMap;
use std::time::Duration;

use adloop_telemetry::metrics::{sample_value, samples_by_label};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where the relay answers, for the operator's page; without a URL the page says the relay is not
/// configured.
#[derive(Debug, Clone, Deserialize)]
pub struct RelaySettings {
    /// The relay's base URL as this gateway reaches it (`http://capi-relay:8090`).
    pub url: Option<String>,
    pub timeout_ms: u64,
}

impl RelaySettings {
    /// The failing key and its rule.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if let Some(url) = &self.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(("url", "must start with http:// or https://"));
        }
        if !(1..=30_000).contains(&self.timeout_ms) {
            return Err(("timeout_ms", "must be between 1 and 30000"));
        }
        Ok(())
    }
}

/// The relay's health as `GET /v1/relay/health` answers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RelayHealth {
    pub configured: bool,
    pub ready: bool,
    /// Why the relay could not be read, when it could not.
    pub error: Option<String>,
    /// The relay's own readiness report (its dependencies).
    pub readiness: Option<Value>,
    #[serde(flatten)]
    pub figures: RelayFigures,
}

/// Counters of the relay replica that answered, since it started, and the delivery backlog of the whole
/// relay (every replica reports the same table).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RelayFigures {
    /// Events received, by outcome (stored, deduplicated, refused).
    pub events: BTreeMap<String, f64>,
    /// Delivery attempts' events, by outcome (delivered, retried, dead).
    pub delivered_events: BTreeMap<String, f64>,
    /// Attributed conversions forwarded to ml-service's learner, by outcome.
    pub learning_conversions: BTreeMap<String, f64>,
    /// How long the most overdue pending event has waited to be sent.
    pub oldest_due_event_seconds: Option<f64>,
    /// Times a pixel was paused for a rejected or missing access token.
    pub pixel_pauses: Option<f64>,
}

/// The figures in the relay's Prometheus text.
pub fn relay_figures(metrics_text: &str) -> RelayFigures {
    let by_outcome = |metric: &str| -> BTreeMap<String, f64> {
        samples_by_label(metrics_text, metric, "outcome").into_iter().collect()
    };
    RelayFigures {
        events: by_outcome("adloop_relay_events_total"),
        delivered_events: by_outcome("adloop_relay_delivered_events_total"),
        learning_conversions: by_outcome("adloop_relay_learning_conversions_total"),
        oldest_due_event_seconds: sample_value(metrics_text, "adloop_relay_oldest_due_event_seconds"),
        pixel_pauses: sample_value(metrics_text, "adloop_relay_pixel_pauses_total"),
    }
}

/// Reads the relay's health over HTTP.
#[derive(Debug, Clone)]
pub struct RelayHealthReader {
    http: reqwest::Client,
    base_url: Option<String>,
}

impl RelayHealthReader {
    pub fn new(settings: &RelaySettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .build()?;
        Ok(RelayHealthReader {
            http,
            base_url: settings.url.as_ref().map(|url| url.trim_end_matches('/').to_owned()),
        })
    }

    /// The relay's health; an unreachable relay is a health to show, not an error.
    pub async fn read(&self) -> RelayHealth {
        let Some(base_url) = &self.base_url else {
            return RelayHealth {
                error: Some("no relay configured: set relay.url (ADLOOP_RELAY__URL)".to_owned()),
                ..RelayHealth::default()
            };
        };
        let readiness = self.http.get(format!("{base_url}/readyz")).send().await;
        let (ready, readiness) = match readiness {
            Ok(response) => (response.status().is_success(), response.json::<Value>().await.ok()),
            Err(error) => {
                return RelayHealth {
                    configured: true,
                    error: Some(format!("the relay did not answer: {}", without_url(&error))),
                    ..RelayHealth::default()
                };
            }
        };
        let metrics_text = match self.http.get(format!("{base_url}/metrics")).send().await {
            Ok(response) if response.status().is_success() => response.text().await.ok(),
            _ => None,
        };
        RelayHealth {
            configured: true,
            ready,
            error: metrics_text
                .is_none()
                .then(|| "the relay's metrics could not be read".to_owned()),
            readiness,
            figures: metrics_text.as_deref().map(relay_figures).unwrap_or_default(),
        }
    }
}

/// A request error's kind without its URL (the URL is configuration, not news to the page's reader).
fn without_url(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection refused or unreachable"
    } else {
        "request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_come_from_the_relays_own_metric_names() {
        let text = "# HELP adloop_relay_events Events received\n\
                    adloop_relay_events_total{outcome=\"stored\"} 12\n\
                    adloop_relay_events_total{outcome=\"refused\"} 3\n\
                    adloop_relay_delivered_events_total{outcome=\"delivered\"} 11\n\
                    adloop_relay_learning_conversions_total{outcome=\"forwarded\"} 4\n\
                    adloop_relay_oldest_due_event_seconds 2.5\n\
                    adloop_relay_pixel_pauses_total 0\n";
        let figures = relay_figures(text);
        assert_eq!(figures.events.get("stored"), Some(&12.0));
        assert_eq!(figures.events.get("refused"), Some(&3.0));
        assert_eq!(figures.delivered_events.get("delivered"), Some(&11.0));
        assert_eq!(figures.learning_conversions.get("forwarded"), Some(&4.0));
        assert_eq!(figures.oldest_due_event_seconds, Some(2.5));
        assert_eq!(figures.pixel_pauses, Some(0.0));
    }

    #[test]
    fn a_url_must_be_http() {
        let settings = RelaySettings {
            url: Some("capi-relay:8090".into()),
            timeout_ms: 2000,
        };
        assert_eq!(settings.validate().unwrap_err().0, "url");
    }
}
