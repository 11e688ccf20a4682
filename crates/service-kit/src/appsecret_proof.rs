//! Meta's `appsecret_proof`: the hex HMAC-SHA256 of an access token, keyed with the app's secret. Apps with
//! "Require App Secret" on must send it with every Graph API call; the executor, the relay and meta-sim's
//! check compute it here.

use hmac::{KeyInit as _, Mac as _};

use crate::bearer_tokens::lowercase_hex;

/// The proof for `access_token` under `app_secret`, lowercase hex.
pub fn appsecret_proof(access_token: &str, app_secret: &str) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(app_secret.as_bytes()).expect("hmac keys of any length");
    mac.update(access_token.as_bytes());
    lowercase_hex(&mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proof_is_rfc_4231s_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            appsecret_proof("what do ya want for nothing?", "Jefe"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
