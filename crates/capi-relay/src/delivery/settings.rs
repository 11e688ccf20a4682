//! How the relay delivers to Meta, and with which credentials for each pixel: a pixel's own access token
//! and app secret (`[delivery.pixels.<pixel_id>]`) when configured, the relay's default ones otherwise.
//! Secrets come from the environment or `*_FILE` paths (Kubernetes and Secret Manager mounts).

use std::collections::HashMap;

use adloop_config::Secret;
use adloop_service_kit::appsecret_proof::appsecret_proof;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    /// Run delivery workers in this relay (they need an access token: the default or a pixel's own).
    pub enabled: bool,
    /// `https://graph.facebook.com` at Meta; meta-sim locally.
    pub base_url: String,
    pub api_version: String,
    /// The default token the relay sends to Meta with (`ADLOOP_DELIVERY__ACCESS_TOKEN` or `_FILE`).
    #[serde(default)]
    pub access_token: Option<Secret<String>>,
    /// The default app secret: with it every request carries `appsecret_proof`, as apps with "Require App
    /// Secret" on must (`ADLOOP_DELIVERY__APP_SECRET` or `_FILE`).
    #[serde(default)]
    pub app_secret: Option<Secret<String>>,
    /// Credentials of particular pixels (`ADLOOP_DELIVERY__PIXELS__<PIXEL_ID>__ACCESS_TOKEN_FILE`, …).
    #[serde(default)]
    pub pixels: HashMap<String, PixelCredentials>,
    /// Events per request (Meta takes at most 1,000).
    pub batch_size: i64,
    /// Delivery loops in this relay, each with one request to Meta in flight.
    pub workers: usize,
    pub lease_seconds: f64,
    pub poll_interval_milliseconds: u64,
    pub request_timeout_ms: u64,
    /// How long a throttled batch waits before it is sent again.
    pub throttle_wait_seconds: u64,
    /// How long a pixel pauses when Meta rejects its token (190) or it has none (resume earlier with
    /// `capi-relay pixels resume --pixel P`).
    pub token_error_pause_seconds: u64,
    /// Delivered and dead events are kept this long (at least Meta's 48 h de-duplication window, so a
    /// re-sent event is still recognised), then pruned.
    pub keep_events_hours: f64,
}

/// One pixel's own credentials; either may be left to the default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PixelCredentials {
    #[serde(default)]
    pub access_token: Option<Secret<String>>,
    #[serde(default)]
    pub app_secret: Option<Secret<String>>,
}

impl DeliverySettings {
    /// The form fields that authenticate a request for `pixel_id`: `access_token`, and `appsecret_proof`
    /// when an app secret applies. `None`: no token is configured for this pixel.
    pub fn credentials_for(&self, pixel_id: &str) -> Option<Vec<(&'static str, String)>> {
        let own = self.pixels.get(pixel_id);
        let token = own
            .and_then(|pixel| pixel.access_token.as_ref())
            .or(self.access_token.as_ref())?
            .expose();
        let app_secret = own
            .and_then(|pixel| pixel.app_secret.as_ref())
            .or(self.app_secret.as_ref());
        let mut fields = vec![("access_token", token.clone())];
        if let Some(app_secret) = app_secret {
            fields.push(("appsecret_proof", appsecret_proof(token, app_secret.expose())));
        }
        Some(fields)
    }

    /// Whether any token is configured at all.
    pub fn has_any_token(&self) -> bool {
        self.access_token.is_some() || self.pixels.values().any(|pixel| pixel.access_token.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeliverySettings {
        let secret = |text: &str| Some(Secret::new(text.to_owned()));
        DeliverySettings {
            enabled: true,
            base_url: "http://127.0.0.1:1".into(),
            api_version: "v25.0".into(),
            access_token: secret("default-token"),
            app_secret: None,
            pixels: HashMap::from([
                (
                    "111".to_owned(),
                    PixelCredentials {
                        access_token: secret("own-token"),
                        app_secret: secret("own-secret"),
                    },
                ),
                (
                    "222".to_owned(),
                    PixelCredentials {
                        access_token: None,
                        app_secret: secret("secret-only"),
                    },
                ),
            ]),
            batch_size: 1000,
            workers: 1,
            lease_seconds: 60.0,
            poll_interval_milliseconds: 1000,
            request_timeout_ms: 1000,
            throttle_wait_seconds: 60,
            token_error_pause_seconds: 900,
            keep_events_hours: 72.0,
        }
    }

    #[test]
    fn a_pixel_uses_its_own_credentials_and_falls_back_to_the_defaults() {
        let settings = settings();
        let own = settings.credentials_for("111").unwrap();
        assert_eq!(own[0], ("access_token", "own-token".to_owned()));
        assert_eq!(own[1], ("appsecret_proof", appsecret_proof("own-token", "own-secret")));
        let secret_only = settings.credentials_for("222").unwrap();
        assert_eq!(secret_only[0], ("access_token", "default-token".to_owned()));
        assert_eq!(secret_only[1].1, appsecret_proof("default-token", "secret-only"));
        assert_eq!(
            settings.credentials_for("333").unwrap().len(),
            1,
            "no app secret: no proof"
        );
        let without_default = DeliverySettings {
            access_token: None,
            ..settings
        };
        assert!(without_default.credentials_for("333").is_none());
        assert!(without_default.credentials_for("111").is_some());
    }
}
