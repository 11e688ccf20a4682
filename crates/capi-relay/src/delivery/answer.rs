//! What Meta's answer to a batch of events means, by HTTP status and (code, subcode), never by message
//! text (Meta localises it). Pure.

use serde_json::Value;

/// What to do with a batch after Meta answered (or did not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchVerdict {
    /// Meta took the events.
    Delivered,
    /// One invalid event refuses the whole batch at Meta: split it to find it, or, for a single event,
    /// keep it as a dead letter with Meta's answer.
    InvalidEvent,
    /// Meta is busy or the call failed on the way: the same events (same ids) again after a backoff.
    Retry,
    /// Meta throttled the app or pixel: wait, then the same events again.
    Throttled,
    /// The pixel's token is not valid (190): stop sending for this pixel until someone fixes it.
    TokenRejected,
}

/// The verdict for an HTTP `status` with `body` (`None`: no answer, a time-out or a dropped connection).
pub fn verdict(answer: Option<(u16, &Value)>) -> BatchVerdict {
    let Some((status, body)) = answer else {
        return BatchVerdict::Retry;
    };
    if (200..300).contains(&status) {
        return BatchVerdict::Delivered;
    }
    let code = body["error"]["code"].as_u64();
    match code {
        Some(190) => BatchVerdict::TokenRejected,
        Some(4 | 17 | 32 | 613) | Some(80_000..=80_014) => BatchVerdict::Throttled,
        Some(1 | 2) => BatchVerdict::Retry,
        _ if status >= 500 || status == 429 || status == 408 => BatchVerdict::Retry,
        Some(_) => BatchVerdict::InvalidEvent,
        None => BatchVerdict::Retry,
    }
}

/// Whether Meta's refusal names a refused event: the Conversions API's event subcodes (2804xxx, e.g.
/// 2804016 "user data not hashed", 2804003 "event too old"). A refusal without one may be about the request
/// itself (token, app secret, permissions) rather than an event.
pub fn names_a_refused_event(body: &Value) -> bool {
    body["error"]["error_subcode"]
        .as_u64()
        .is_some_and(|subcode| (2_804_000..2_805_000).contains(&subcode))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn answers_are_classed_by_code_never_by_message() {
        let error = |code: u32| json!({"error": {"code": code, "message": "localised text"}});
        assert_eq!(
            verdict(Some((200, &json!({"events_received": 3})))),
            BatchVerdict::Delivered
        );
        assert_eq!(verdict(Some((400, &error(100)))), BatchVerdict::InvalidEvent);
        assert_eq!(verdict(Some((400, &error(190)))), BatchVerdict::TokenRejected);
        assert_eq!(verdict(Some((400, &error(17)))), BatchVerdict::Throttled);
        assert_eq!(verdict(Some((400, &error(80_004)))), BatchVerdict::Throttled);
        assert_eq!(verdict(Some((500, &error(2)))), BatchVerdict::Retry);
        assert_eq!(verdict(Some((503, &json!("<html>")))), BatchVerdict::Retry);
        assert_eq!(verdict(None), BatchVerdict::Retry);
    }

    #[test]
    fn only_conversions_api_subcodes_name_a_refused_event() {
        assert!(names_a_refused_event(
            &json!({"error": {"code": 100, "error_subcode": 2_804_016}})
        ));
        assert!(!names_a_refused_event(&json!({"error": {"code": 100}})));
        assert!(!names_a_refused_event(
            &json!({"error": {"code": 100, "error_subcode": 33}})
        ));
    }
}
