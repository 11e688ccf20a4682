//! Conversions API requests: validated like Meta, then stored (with de-duplication) for inspection.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::capi::{Channel, DeduplicationRules, RequestContext, parse_events, validate_events};
use crate::graph_error::GraphError;
use crate::rate_limits::{BusinessUseCase, CallCharge, CallKind};

use super::SimState;

impl SimState {
    fn deduplication_rules(&self) -> DeduplicationRules {
        DeduplicationRules {
            window_hours: self.settings.capi.deduplication_window_hours,
            same_channel_repeats: self.settings.capi.deduplicate_server_events,
        }
    }

    /// Validates and stores CAPI events for a pixel.
    pub fn receive_capi_events(
        &mut self,
        pixel_id: &str,
        params: &BTreeMap<String, Value>,
    ) -> Result<Value, GraphError> {
        self.counters.capi_requests += 1;
        let token = params.get("access_token").and_then(Value::as_str);
        if !self.settings.capi.pixel_ids.iter().any(|known| known == pixel_id) {
            self.check_token_for_account(token, None)?;
            return Err(GraphError::unknown_object(pixel_id, "post"));
        }
        self.check_token_for_pixel(token, pixel_id)?;
        self.check_appsecret_proof(token, params.get("appsecret_proof").and_then(Value::as_str))?;
        if let Some((code, subcode)) = self.faults.active_throttle() {
            return Err(GraphError::throttled(code, subcode));
        }
        self.rate_limiter.charge(
            &self.settings.rate_limits,
            &CallCharge {
                ad_account_id: None,
                kind: CallKind::Write,
                use_case: BusinessUseCase::AdsManagement,
                active_ads_in_account: 0,
            },
        )?;
        let data = params
            .get("data")
            .ok_or_else(|| GraphError::invalid_parameter("The parameter data is required"))?;
        let events = parse_events(data)?;
        let now_unix = self.now_unix();
        validate_events(&events, now_unix, &self.settings.capi)?;
        let text_param = |name: &str| params.get(name).and_then(Value::as_str).map(str::to_owned);
        let context = RequestContext {
            pixel_id,
            received_at_unix: now_unix,
            test_event_code: text_param("test_event_code"),
            partner_agent: text_param("partner_agent"),
        };
        let received = self
            .capi
            .store(events, &context, Channel::Server, self.deduplication_rules());
        self.counters.capi_events_received += received as u64;
        Ok(json!({
            "events_received": received,
            "messages": [],
            "fbtrace_id": crate::graph_error::new_fbtrace_id(),
        }))
    }

    /// Stores a browser pixel's event (`GET /tr`): no token (the pixel is public), only a pixel meta-sim
    /// knows (the strict reading: Meta answers an image whatever the id).
    pub fn receive_pixel_event(&mut self, pixel_id: &str, event: Value) -> Result<(), String> {
        if !self.settings.capi.pixel_ids.iter().any(|known| known == pixel_id) {
            return Err(format!("meta-sim knows no pixel {pixel_id} (capi.pixel_ids)"));
        }
        self.counters.pixel_events_received += 1;
        let context = RequestContext {
            pixel_id,
            received_at_unix: self.now_unix(),
            test_event_code: None,
            partner_agent: None,
        };
        self.capi
            .store(vec![event], &context, Channel::Browser, self.deduplication_rules());
        Ok(())
    }
}
