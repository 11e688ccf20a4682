//! Who may call: the dev token may use every account and pixel, account tokens only theirs.

use adloop_service_kit::appsecret_proof::appsecret_proof;

use crate::graph_error::GraphError;
use crate::settings::AccountToken;

use super::SimState;

impl SimState {
    /// The grant behind a token: `None` for the default token (every account and pixel), 190 when the
    /// token is missing or unknown.
    fn token_grant(&self, token: Option<&str>) -> Result<Option<&AccountToken>, GraphError> {
        let Some(token) = token.filter(|token| !token.is_empty()) else {
            return Err(GraphError::invalid_access_token(
                "An active access token must be used to query information",
            ));
        };
        if token == self.settings.access.default_token.expose() {
            return Ok(None);
        }
        self.settings
            .access
            .account_tokens
            .iter()
            .find(|grant| grant.token.expose() == token)
            .map(Some)
            .ok_or_else(|| GraphError::invalid_access_token("Cannot parse access token"))
    }

    /// The token must be known (190 otherwise) and, when `account_id` is given, allowed to use that account.
    pub fn check_token_for_account(&self, token: Option<&str>, account_id: Option<&str>) -> Result<(), GraphError> {
        match (self.token_grant(token)?, account_id) {
            (Some(grant), Some(account_id)) if !grant.ad_account_ids.iter().any(|allowed| allowed == account_id) => {
                Err(GraphError::invalid_access_token(
                    "The access token is not authorised for this ad account",
                ))
            }
            _ => Ok(()),
        }
    }

    pub fn check_token_for_pixel(&self, token: Option<&str>, pixel_id: &str) -> Result<(), GraphError> {
        match self.token_grant(token)? {
            Some(grant) if !grant.pixel_ids.iter().any(|allowed| allowed == pixel_id) => Err(
                GraphError::invalid_access_token("The access token is not authorised for this pixel"),
            ),
            _ => Ok(()),
        }
    }

    /// With `access.app_secret` configured, the call must prove it knows the secret: `appsecret_proof` is the
    /// hex HMAC-SHA256 of the access token, keyed with the app secret (error 100 otherwise, as at Meta).
    pub fn check_appsecret_proof(&self, token: Option<&str>, proof: Option<&str>) -> Result<(), GraphError> {
        let Some(app_secret) = &self.settings.access.app_secret else {
            return Ok(());
        };
        let Some(proof) = proof.filter(|proof| !proof.is_empty()) else {
            return Err(GraphError::invalid_parameter(
                "API calls from the server require an appsecret_proof argument",
            ));
        };
        let expected = appsecret_proof(token.unwrap_or_default(), app_secret.expose());
        if expected != proof.to_ascii_lowercase() {
            return Err(GraphError::invalid_parameter(
                "Invalid appsecret_proof provided in the API argument",
            ));
        }
        Ok(())
    }
}
