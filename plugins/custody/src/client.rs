//! Talking to the custody provider: the operator's settings, one function
//! per endpoint, the asset listing cached briefly in the host's cache. The
//! API key and the webhook secret never appear in a log line or a failure
//! message.

use crate::exports::soxara::billing::trader::{AddressRequest, CryptoAsset, Deposit};
use crate::protocol::{self, bad_answer, failure};
use crate::soxara::gateway::http::{self, HttpError, Request, Response};
use crate::soxara::gateway::log::{self, Level};
use crate::soxara::gateway::types::Failure;
use crate::soxara::gateway::{cache, config};

/// How long the asset listing (and its rates) is reused. Deposits are
/// credited at the rate the trader gives when they confirm, so this is
/// kept short: a rate at most this old.
pub const ASSETS_CACHE_MS: u64 = 30_000;
const ASSETS_CACHE_KEY: &str = "assets";

/// A setting, if the operator set it to something non-empty.
pub fn setting(key: &str) -> Option<String> {
    config::get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn not_configured(key: &str) -> Failure {
    failure("NOT_CONFIGURED", format!("the operator has not set `{key}` for the custody trader"), false)
}

/// The secret deposit notifications are signed with. Unset, a
/// notification cannot be checked: it is refused as retryable, so that the
/// provider sends it again once the operator has set it.
pub fn webhook_secret() -> Result<String, Failure> {
    setting("webhook_secret").ok_or_else(|| Failure { retryable: true, ..not_configured("webhook_secret") })
}

/// This plugin's operator configuration for calling the provider.
pub struct Settings {
    /// The API's base URL, without a trailing `/`.
    base_url: String,
    api_key: String,
}

impl Settings {
    pub fn from_config() -> Result<Settings, Failure> {
        let base_url = setting("base_url").ok_or_else(|| not_configured("base_url"))?;
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(failure("NOT_CONFIGURED", "`base_url` must be an http(s) URL".into(), false));
        }
        let api_key = setting("api_key").ok_or_else(|| not_configured("api_key"))?;
        Ok(Settings { base_url: base_url.trim_end_matches('/').to_string(), api_key })
    }

    /// The assets, networks and rates taken now (`GET /v1/assets`), from
    /// the cache when a recent listing is there.
    pub fn assets(&self) -> Result<Vec<CryptoAsset>, Failure> {
        if let Some(cached) = cache::get(ASSETS_CACHE_KEY) {
            match protocol::parse_assets(&cached) {
                Ok(assets) => return Ok(assets),
                Err(_) => cache::remove(ASSETS_CACHE_KEY),
            }
        }
        let response = self.call("GET", "/v1/assets", Vec::new(), "asset listing")?;
        let assets = protocol::parse_assets(&response.body).map_err(bad_answer)?;
        cache::set(ASSETS_CACHE_KEY, &response.body, ASSETS_CACHE_MS);
        Ok(assets)
    }

    /// The owner's address for the asset on the network
    /// (`POST /v1/addresses`, idempotent at the provider).
    pub fn address(&self, request: &AddressRequest) -> Result<String, Failure> {
        let response = self.call("POST", "/v1/addresses", protocol::address_body(request), "address request")?;
        protocol::parse_address(&response.body, request).map_err(bad_answer)
    }

    /// Where deposit `deposit_id` stands (`GET /v1/deposits/{id}`).
    pub fn deposit(&self, deposit_id: &str) -> Result<Deposit, Failure> {
        let path = format!("/v1/deposits/{}", protocol::url_encode(deposit_id));
        let response = self.call("GET", &path, Vec::new(), "deposit status")?;
        let deposit = protocol::parse_deposit_answer(&response.body).map_err(bad_answer)?;
        if deposit.deposit_id != deposit_id {
            return Err(bad_answer(format!("asked about deposit {deposit_id}, it answered about another")));
        }
        Ok(deposit)
    }

    /// Sends one request; a 2xx answer is returned, anything else is a
    /// failure: retryable when it may pass (no answer, 5xx), not when the
    /// provider refused the request (4xx).
    fn call(&self, method: &str, path: &str, body: Vec<u8>, what: &str) -> Result<Response, Failure> {
        let mut headers = vec![
            ("Authorization".to_string(), format!("Bearer {}", self.api_key)),
            ("Accept".to_string(), "application/json".to_string()),
        ];
        if !body.is_empty() {
            headers.push(("Content-Type".to_string(), "application/json".to_string()));
        }
        let request = Request { method: method.to_string(), url: format!("{}{path}", self.base_url), headers, body };
        match http::send(&request) {
            Ok(response) if (200..300).contains(&response.status) => Ok(response),
            Ok(response) => {
                let refusal = protocol::refusal(response.status, &response.body, what);
                log::log(Level::Warn, &format!("custody {what}: {} ({})", refusal.code, response.status));
                Err(refusal)
            }
            Err(HttpError::Denied(why)) => Err(failure("HTTP_DENIED", why, false)),
            Err(HttpError::Timeout) => Err(failure(
                "PROVIDER_UNAVAILABLE",
                format!("the custody provider's {what} did not answer in time"),
                true,
            )),
            Err(HttpError::Transport(_)) => Err(failure(
                "PROVIDER_UNAVAILABLE",
                format!("the custody provider's {what} could not be reached"),
                true,
            )),
        }
    }
}
