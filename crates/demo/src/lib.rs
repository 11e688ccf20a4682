//! The end-to-end run behind `make run`. It talks to services already started by `scripts/services up`
//! (their URLs come from the `ADLOOP_*` variables of `.data/dev.env`) and reports what it saw.

pub mod allocation_step;
pub mod autopilot_client;
pub mod autopilot_step;
pub mod executor_step;
pub mod learning_curve;
pub mod learning_step;
pub mod month;
pub mod month_html;
pub mod month_replay;
pub mod relay_step;
pub mod report;
pub mod steps;
pub mod website;

/// A request failure as the report shows it: without the request's URL, which may carry an access token.
pub(crate) fn request_failure(error: reqwest::Error) -> String {
    error.without_url().to_string()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_failed_request_is_reported_without_its_access_token() {
        // Nothing listens on port 1.
        let error = reqwest::Client::new()
            .get("http://127.0.0.1:1/v25.0/act_1/insights")
            .query(&[("access_token", "secret-token-value")])
            .send()
            .await
            .expect_err("nothing listens on port 1");
        assert!(
            error.to_string().contains("secret-token-value"),
            "reqwest itself shows the URL"
        );
        let reported = super::request_failure(error);
        assert!(!reported.contains("secret-token-value"), "{reported}");
    }
}
