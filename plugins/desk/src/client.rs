//! Talking to the desk: the operator's settings, one bearer-authenticated
//! request per endpoint, and what each kind of answer means. The API key
//! and the webhook secret never appear in a log line or a failure message,
//! nor does a card's code or photo.

use crate::protocol::{self, DeskTrade, failure};
use crate::soxara::gateway::http::{self, HttpError, Request, Response};
use crate::soxara::gateway::log::{self, Level};
use crate::soxara::gateway::types::Failure;
use crate::soxara::gateway::{cache, config};

/// How long the catalogue and the RMB terms are reused from the host's
/// cache unless the operator sets `rates_cache_ms` (0: never reused).
const RATES_CACHE_MS: u64 = 30_000;

/// This plugin's operator configuration.
pub struct Settings {
    /// The desk's API, without a trailing slash.
    base_url: String,
    api_key: String,
    /// Where the desk sends callbacks (the host gives it).
    callback_url: Option<String>,
    rates_cache_ms: u64,
}

/// What the desk made of a trade sent to it.
pub enum Submitted {
    /// It answered with the trade (new, or the one it already had under
    /// this trade id).
    Answered(DeskTrade),
    /// It may have it (no answer, a timeout, a 5xx, an unreadable answer):
    /// a status lookup will know.
    Unknown,
    /// It refused the trade's content (`400`, `422`): nothing was created.
    Invalid(Failure),
    /// It refused for another reason (the key, the method): nothing was
    /// created, but the trade itself may be fine.
    Refused(Failure),
}

/// A setting, if the operator set it to something non-empty.
pub fn setting(key: &str) -> Option<String> {
    config::get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn required(key: &str) -> Result<String, Failure> {
    setting(key).ok_or_else(|| {
        failure("NOT_CONFIGURED", format!("the operator has not set `{key}` for the desk trader"), false)
    })
}

fn unavailable(message: String) -> Failure {
    failure("DESK_UNAVAILABLE", message, true)
}

fn auth_failed() -> Failure {
    failure("DESK_AUTH_FAILED", "the desk refused the gateway's API key; check the trader's configuration", false)
}

impl Settings {
    pub fn from_config() -> Result<Settings, Failure> {
        let base_url = required("base_url")?.trim_end_matches('/').to_string();
        if !base_url.starts_with("https://") && !base_url.starts_with("http://") {
            return Err(failure("NOT_CONFIGURED", "`base_url` must be an http(s) URL", false));
        }
        let rates_cache_ms = match setting("rates_cache_ms") {
            None => RATES_CACHE_MS,
            Some(text) => text.parse().map_err(|_| {
                failure("NOT_CONFIGURED", "`rates_cache_ms` must be a whole number of milliseconds", false)
            })?,
        };
        Ok(Settings { base_url, api_key: required("api_key")?, callback_url: setting("callback_url"), rates_cache_ms })
    }

    pub fn callback_url(&self) -> Option<&str> {
        self.callback_url.as_deref()
    }

    fn send(&self, method: &str, path: &str, body: Vec<u8>) -> Result<Response, HttpError> {
        let mut headers = vec![
            ("Authorization".to_string(), format!("Bearer {}", self.api_key)),
            ("Accept".to_string(), "application/json".to_string()),
        ];
        if !body.is_empty() {
            headers.push(("Content-Type".to_string(), "application/json".to_string()));
        }
        http::send(&Request { method: method.into(), url: format!("{}{path}", self.base_url), headers, body })
    }

    /// A `GET` whose answer is needed: no answer, a timeout, a `429` or a
    /// `5xx` is a retryable failure; a refused key is not.
    pub fn read(&self, path: &str, what: &str) -> Result<Response, Failure> {
        match self.send("GET", path, Vec::new()) {
            Ok(response) => match response.status {
                401 | 403 => Err(auth_failed()),
                408 | 429 | 500..=599 => Err(unavailable(format!("the desk's {what} answered {}", response.status))),
                _ => Ok(response),
            },
            Err(HttpError::Denied(why)) => Err(failure("HTTP_DENIED", why, false)),
            Err(HttpError::Timeout) => Err(unavailable(format!("the desk's {what} did not answer in time"))),
            Err(HttpError::Transport(_)) => Err(unavailable(format!("the desk's {what} could not be reached"))),
        }
    }

    /// A listing (catalogue, terms), reused from the host's cache while
    /// fresh: only a `200` is kept.
    pub fn listing(&self, path: &str, what: &str) -> Result<Vec<u8>, Failure> {
        let key = format!("listing:{path}");
        if self.rates_cache_ms > 0
            && let Some(body) = cache::get(&key)
        {
            return Ok(body);
        }
        let response = self.read(path, what)?;
        if response.status != 200 {
            return Err(unavailable(format!("the desk's {what} answered {}", response.status)));
        }
        if self.rates_cache_ms > 0 {
            cache::set(&key, &response.body, self.rates_cache_ms);
        }
        Ok(response.body)
    }

    /// The trade of `kind` under `trade_id`, or `None` when the desk has
    /// none (`404`).
    pub fn lookup(&self, kind: protocol::Kind, trade_id: &str) -> Result<Option<DeskTrade>, Failure> {
        let what = match kind {
            protocol::Kind::GiftCard => "gift card trade lookup",
            protocol::Kind::Rmb => "RMB order lookup",
        };
        let response = self.read(&format!("{}/{}", kind.collection(), protocol::url_encode(trade_id)), what)?;
        match response.status {
            200 => protocol::parse_trade(&response.body)
                .map(Some)
                .map_err(|why| failure("BAD_DESK_RESPONSE", format!("the desk's {what} was unreadable: {why}"), true)),
            404 => Ok(None),
            status => Err(unavailable(format!("the desk's {what} answered {status}"))),
        }
    }

    /// Sends a trade (`POST`). Only a clear refusal means nothing was
    /// created; a timeout, a lost connection or a `5xx` may hide a trade
    /// the desk stored.
    pub fn submit(&self, kind: protocol::Kind, trade_id: &str, body: Vec<u8>) -> Submitted {
        let what = match kind {
            protocol::Kind::GiftCard => "the sale",
            protocol::Kind::Rmb => "the order",
        };
        let response = match self.send("POST", kind.collection(), body) {
            Ok(response) => response,
            Err(HttpError::Denied(why)) => return Submitted::Refused(failure("HTTP_DENIED", why, false)),
            Err(HttpError::Timeout | HttpError::Transport(_)) => {
                log::log(Level::Warn, &format!("trade {trade_id} got no answer from the desk; left processing"));
                return Submitted::Unknown;
            }
        };
        match response.status {
            200..=299 => match protocol::parse_trade(&response.body) {
                Ok(trade) if trade.trade_id == trade_id => Submitted::Answered(trade),
                Ok(_) => {
                    log::log(Level::Error, &format!("the desk answered trade {trade_id} with another trade id"));
                    Submitted::Unknown
                }
                Err(why) => {
                    log::log(Level::Warn, &format!("trade {trade_id}: the desk's answer was unreadable ({why})"));
                    Submitted::Unknown
                }
            },
            400 | 422 => Submitted::Invalid(protocol::refusal(response.status, &response.body, what)),
            401 | 403 => Submitted::Refused(auth_failed()),
            408 | 429 | 500..=599 => {
                log::log(
                    Level::Warn,
                    &format!("trade {trade_id}: the desk answered {}; left processing", response.status),
                );
                Submitted::Unknown
            }
            status => Submitted::Refused(protocol::refusal(status, &response.body, what)),
        }
    }
}
