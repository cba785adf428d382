//! Access tokens from OAuth-style token endpoints (MTN MoMo, Orange Money:
//! `{"access_token": "…", "expires_in": 3600}`), kept in the plugin's cache
//! between calls until shortly before they expire. A rail that gets `401`
//! with a cached token should [`forget`] it and ask for a fresh one once.

use serde::Deserialize;

use crate::{Failure, cache};

/// A cached token is dropped this long before the provider says it expires.
const EXPIRY_MARGIN_S: u64 = 60;
/// `expires_in` when a provider leaves it out.
const DEFAULT_LIFETIME_S: u64 = 3_600;

/// An access token, and whether it came from the cache (and so may have
/// been revoked since).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub value: String,
    pub cached: bool,
}

/// The token kept under `key`, if any.
pub fn cached(key: &str) -> Option<AccessToken> {
    cache::get_text(key).map(|value| AccessToken { value, cached: true })
}

/// Reads a token answer and keeps the token under `key` until shortly before
/// it expires. `provider` names the provider in the failure message.
pub fn accept(key: &str, body: &[u8], provider: &str) -> Result<AccessToken, Failure> {
    let (value, lifetime_s) = parse(body)
        .map_err(|_| Failure::bad_provider_response(format!("{provider}'s token answer has no access_token")))?;
    let ttl_ms = lifetime_s.saturating_sub(EXPIRY_MARGIN_S).saturating_mul(1_000);
    cache::set(key, value.as_bytes(), ttl_ms);
    Ok(AccessToken { value, cached: false })
}

/// Drops the token kept under `key` (the provider refused it).
pub fn forget(key: &str) {
    cache::remove(key);
}

/// `access_token` and its lifetime in seconds (`expires_in`, 3600 when absent).
pub fn parse(body: &[u8]) -> Result<(String, u64), serde_json::Error> {
    #[derive(Deserialize)]
    struct Answer {
        access_token: String,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let answer: Answer = serde_json::from_slice(body)?;
    Ok((answer.access_token, answer.expires_in.unwrap_or(DEFAULT_LIFETIME_S)))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn token_answers_carry_their_lifetime() {
        let answer = br#"{"access_token":"t","token_type":"access_token","expires_in":1800}"#;
        assert_eq!(parse(answer).unwrap(), ("t".to_string(), 1800));
        assert_eq!(parse(br#"{"access_token":"t"}"#).unwrap().1, 3600);
        assert!(parse(b"{}").is_err());
        assert!(parse(b"<html>").is_err());
    }
}
