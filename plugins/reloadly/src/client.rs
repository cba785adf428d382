//! Talking to Reloadly: the operator's settings, the access token (cached in
//! the host's cache until shortly before it expires, replaced once on a
//! `401`), and one function per endpoint this biller uses. Credentials never
//! appear in a log line or a failure message.

use crate::protocol::{self, Environment, Found, Operator};
use crate::soxara::gateway::http::{self, HttpError, Request, Response};
use crate::soxara::gateway::log::{self, Level};
use crate::soxara::gateway::types::Failure;
use crate::soxara::gateway::{cache, config};

/// A cached token is dropped this long before Reloadly says it expires.
const TOKEN_EXPIRY_MARGIN_S: u64 = 60;

/// This plugin's operator configuration.
pub struct Settings {
    client_id: String,
    client_secret: String,
    pub environment: Environment,
    /// Where tokens come from (`{auth_url}/oauth/token`).
    auth_url: String,
    /// The topups API (the audience's host unless overridden).
    base_url: String,
    /// ISO 3166 alpha-2, e.g. `LR`.
    pub country: String,
    /// Its international dialling code, e.g. `231`.
    pub dial_code: String,
    /// What this biller sells in (ISO 4217).
    pub currency: String,
}

/// What Reloadly made of a top-up sent to it.
pub enum Sent {
    /// It answered with the transaction.
    Answered(Found),
    /// It may have it (no answer, a 5xx): a status check will know.
    Unknown,
    /// It refused the `customIdentifier` as used: the top-up was sent before.
    Duplicate,
    /// It refused it; nothing was bought.
    Refused(Failure),
}

/// A setting, if the operator set it to something non-empty.
pub fn setting(key: &str) -> Option<String> {
    config::get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn required(key: &str) -> Result<String, Failure> {
    setting(key).ok_or_else(|| not_configured(format!("the operator has not set `{key}` for the reloadly biller")))
}

fn not_configured(message: String) -> Failure {
    protocol::failure("NOT_CONFIGURED", message, false)
}

/// The currency purchases are made in (`currency`, default LRD).
pub fn configured_currency() -> String {
    setting("currency").map(|c| c.to_ascii_uppercase()).unwrap_or_else(|| "LRD".to_string())
}

impl Settings {
    /// Reads the settings and refuses credentials of the other mode: the
    /// gateway says which mode this plugin serves (`mode`), and test keys
    /// must never reach Reloadly's production, nor live keys its sandbox.
    pub fn from_config() -> Result<Settings, Failure> {
        let environment = environment()?;
        match (setting("mode").as_deref(), environment) {
            (Some("test"), Environment::Live) => {
                return Err(protocol::failure(
                    "MODE_MISMATCH",
                    "this biller serves test mode, but its Reloadly audience is the live one".into(),
                    false,
                ));
            }
            (Some("live"), Environment::Sandbox) => {
                return Err(protocol::failure(
                    "MODE_MISMATCH",
                    "this biller serves live mode, but its Reloadly audience is the sandbox one".into(),
                    false,
                ));
            }
            _ => {}
        }
        let country = setting("country").unwrap_or_else(|| "LR".to_string()).to_ascii_uppercase();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(not_configured("`country` must be an ISO 3166 alpha-2 code, e.g. LR".into()));
        }
        let dial_code = match setting("dial_code").or_else(|| protocol::dial_code_for(&country).map(str::to_string)) {
            Some(code) if !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) => code,
            _ => return Err(not_configured(format!("`dial_code` must be set (digits) for country {country}"))),
        };
        let currency = configured_currency();
        if protocol::minor_unit_digits(&currency).is_none() {
            return Err(not_configured(format!("`currency` {currency} is not one this biller knows")));
        }
        let url = |key: &str, default: &str| {
            setting(key).unwrap_or_else(|| default.to_string()).trim_end_matches('/').to_string()
        };
        Ok(Settings {
            client_id: required("client_id")?,
            client_secret: required("client_secret")?,
            environment,
            auth_url: url("auth_url", protocol::AUTH_URL),
            base_url: url("base_url", environment.audience()),
            country,
            dial_code,
            currency,
        })
    }

    /// The operator a phone number belongs to, or `None` when Reloadly
    /// cannot tell (an unknown or invalid number).
    pub fn detect(&self, number: &str) -> Result<Option<Operator>, Failure> {
        let url = format!(
            "{}/operators/auto-detect/phone/{}/countries/{}",
            self.base_url,
            protocol::url_encode(number),
            self.country
        );
        let response = self.read(&url, "operator auto-detect")?;
        match response.status {
            200 => protocol::parse_operator(&response.body).map(Some).map_err(bad_answer),
            404 => Ok(None),
            _ => match protocol::parse_error(&response.body) {
                Some((code, _)) if protocol::is_unknown_phone(&code) => Ok(None),
                _ => Err(unavailable(&format!("Reloadly's operator auto-detect answered {}", response.status))),
            },
        }
    }

    /// The country's operators, data and bundle operators included.
    pub fn operators(&self) -> Result<Vec<Operator>, Failure> {
        let url =
            format!("{}/operators/countries/{}?includeData=true&includeBundles=true", self.base_url, self.country);
        let response = self.read(&url, "operator listing")?;
        if response.status != 200 {
            return Err(unavailable(&format!("Reloadly's operator listing answered {}", response.status)));
        }
        protocol::parse_operators(&response.body).map_err(bad_answer)
    }

    /// Sends a top-up (`POST /topups`). Only a clear refusal means nothing
    /// was bought; a timeout, a lost connection or a 5xx may hide a top-up
    /// Reloadly made.
    pub fn topup(&self, body: &[u8]) -> Result<Sent, Failure> {
        let url = format!("{}/topups", self.base_url);
        let answer = self.send(|token| Request {
            method: "POST".into(),
            url: url.clone(),
            headers: self.headers(token, true),
            body: body.to_vec(),
        })?;
        let response = match answer {
            Ok(response) => response,
            Err(HttpError::Denied(why)) => return Ok(Sent::Refused(protocol::failure("HTTP_DENIED", why, false))),
            Err(HttpError::Timeout | HttpError::Transport(_)) => {
                log::log(Level::Warn, "a top-up got no answer from Reloadly; left processing");
                return Ok(Sent::Unknown);
            }
        };
        match response.status {
            200..=299 => match protocol::parse_topup(&response.body) {
                Ok(found) => Ok(Sent::Answered(found)),
                Err(why) => {
                    // Accepted, but unreadable: the report will say.
                    log::log(Level::Warn, &format!("a top-up's answer was unreadable ({why}); left processing"));
                    Ok(Sent::Unknown)
                }
            },
            401 | 403 => Ok(Sent::Refused(auth_failed())),
            // Timed out or throttled at Reloadly's edge, or failed inside it
            // (possibly after topping up): a status check will know.
            408 | 429 | 500..=599 => {
                log::log(Level::Warn, &format!("a top-up answered {}; left processing", response.status));
                Ok(Sent::Unknown)
            }
            status => Ok(match protocol::parse_error(&response.body) {
                Some((code, message)) if protocol::is_duplicate(&code, &message) => Sent::Duplicate,
                Some((code, message)) => Sent::Refused(protocol::failure_for_error(&code, &message)),
                None => Sent::Refused(protocol::failure(
                    "PROVIDER_REFUSED",
                    format!("Reloadly refused the top-up ({status})"),
                    false,
                )),
            }),
        }
    }

    /// Where top-up `transaction_id` stands, or `None` when Reloadly has
    /// no such transaction.
    pub fn status(&self, transaction_id: &str) -> Result<Option<Found>, Failure> {
        let url = format!("{}/topups/{}/status", self.base_url, protocol::url_encode(transaction_id));
        let response = self.read(&url, "top-up status")?;
        match response.status {
            200 => protocol::parse_status(&response.body).map(Some).map_err(bad_answer),
            404 => Ok(None),
            status => Err(unavailable(&format!("Reloadly's top-up status answered {status}"))),
        }
    }

    /// The top-up made under `custom_identifier`, from the transactions
    /// report, or `None` when Reloadly never made one.
    pub fn report(&self, custom_identifier: &str) -> Result<Option<Found>, Failure> {
        let url = format!(
            "{}/topups/reports/transactions?customIdentifier={}",
            self.base_url,
            protocol::url_encode(custom_identifier)
        );
        let response = self.read(&url, "transactions report")?;
        match response.status {
            200 => protocol::parse_report(&response.body, custom_identifier).map_err(bad_answer),
            404 => Ok(None),
            status => Err(unavailable(&format!("Reloadly's transactions report answered {status}"))),
        }
    }

    /// A `GET` whose answer is needed: no answer is a retryable failure,
    /// and so is a refused token (after one new one).
    fn read(&self, url: &str, what: &str) -> Result<Response, Failure> {
        let answer = self.send(|token| Request {
            method: "GET".into(),
            url: url.to_string(),
            headers: self.headers(token, false),
            body: Vec::new(),
        })?;
        match answer {
            Ok(response) if response.status == 401 || response.status == 403 => Err(auth_failed()),
            Ok(response) => Ok(response),
            Err(HttpError::Denied(why)) => Err(protocol::failure("HTTP_DENIED", why, false)),
            Err(HttpError::Timeout) => Err(unavailable(&format!("Reloadly's {what} did not answer in time"))),
            Err(HttpError::Transport(_)) => Err(unavailable(&format!("Reloadly's {what} could not be reached"))),
        }
    }

    /// Sends the request `build` makes with an access token. A cached token
    /// Reloadly no longer honours (`401`: expired or revoked) is replaced
    /// and the request sent once more: Reloadly refused the first, so it
    /// never acted on it. Fails only when no token can be had (nothing was
    /// then asked of Reloadly).
    fn send(&self, build: impl Fn(&str) -> Request) -> Result<Result<Response, HttpError>, Failure> {
        let cached = cache::get(&self.token_key()).and_then(|bytes| String::from_utf8(bytes).ok());
        let (token, was_cached) = match cached {
            Some(token) => (token, true),
            None => (self.fresh_token()?, false),
        };
        let answer = http::send(&build(&token));
        if was_cached && matches!(&answer, Ok(response) if response.status == 401) {
            log::log(Level::Info, "Reloadly refused the cached access token; asking for a new one");
            cache::remove(&self.token_key());
            return Ok(http::send(&build(&self.fresh_token()?)));
        }
        Ok(answer)
    }

    /// A new access token, cached until shortly before it expires.
    fn fresh_token(&self) -> Result<String, Failure> {
        let request = Request {
            method: "POST".into(),
            url: format!("{}/oauth/token", self.auth_url),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Accept".into(), "application/json".into()),
            ],
            body: protocol::token_body(&self.client_id, &self.client_secret, self.environment.audience()),
        };
        let response = match http::send(&request) {
            Ok(response) => response,
            Err(HttpError::Denied(why)) => return Err(protocol::failure("HTTP_DENIED", why, false)),
            Err(HttpError::Timeout) => return Err(unavailable("Reloadly's token endpoint did not answer in time")),
            Err(HttpError::Transport(_)) => return Err(unavailable("Reloadly's token endpoint could not be reached")),
        };
        match response.status {
            200 => {
                let (token, lifetime_s) = protocol::parse_token(&response.body).map_err(bad_answer)?;
                let ttl_ms = lifetime_s.saturating_sub(TOKEN_EXPIRY_MARGIN_S).saturating_mul(1_000);
                if ttl_ms > 0 {
                    cache::set(&self.token_key(), token.as_bytes(), ttl_ms);
                }
                Ok(token)
            }
            400 | 401 | 403 => Err(protocol::failure(
                "PROVIDER_AUTH_FAILED",
                "Reloadly refused the client id and secret for this audience; check the biller's configuration".into(),
                false,
            )),
            status => Err(unavailable(&format!("Reloadly's token endpoint answered {status}"))),
        }
    }

    /// Tokens are per audience: a sandbox token never serves live calls.
    fn token_key(&self) -> String {
        format!("access-token:{}", self.environment.audience())
    }

    fn headers(&self, token: &str, json_body: bool) -> Vec<(String, String)> {
        let mut headers = vec![
            ("Authorization".to_string(), format!("Bearer {token}")),
            ("Accept".to_string(), protocol::ACCEPT.to_string()),
        ];
        if json_body {
            headers.push(("Content-Type".to_string(), "application/json".to_string()));
        }
        headers
    }
}

/// The environment the operator configured: `environment` (`sandbox`, the
/// default, or `live`), or the `audience` URL itself.
fn environment() -> Result<Environment, Failure> {
    let named = match setting("environment") {
        Some(text) => Some(
            Environment::parse(&text)
                .ok_or_else(|| not_configured("`environment` must be `sandbox` or `live`".into()))?,
        ),
        None => None,
    };
    let by_audience = match setting("audience") {
        Some(url) => Some(Environment::from_audience(&url).ok_or_else(|| {
            not_configured(format!("`audience` must be {} or {}", protocol::SANDBOX_AUDIENCE, protocol::LIVE_AUDIENCE))
        })?),
        None => None,
    };
    match (named, by_audience) {
        (Some(a), Some(b)) if a != b => {
            Err(not_configured("`environment` and `audience` name different Reloadly environments".into()))
        }
        (Some(environment), _) | (None, Some(environment)) => Ok(environment),
        (None, None) => Ok(Environment::Sandbox),
    }
}

fn auth_failed() -> Failure {
    protocol::failure(
        "PROVIDER_AUTH_FAILED",
        "Reloadly refused the gateway's access token, even a new one".into(),
        false,
    )
}

fn unavailable(message: &str) -> Failure {
    protocol::failure("PROVIDER_UNAVAILABLE", message.to_string(), true)
}

fn bad_answer(why: String) -> Failure {
    protocol::failure("BAD_PROVIDER_RESPONSE", why, true)
}
