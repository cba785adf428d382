//! Rail: MTN Mobile Money collections over the MTN MoMo Open API.
//!
//! A payment is a *request to pay*: the customer approves it on their phone,
//! so MTN answers `202 Accepted` and the payment stays `processing` until a
//! status check or MTN's callback says how it ended.
//!
//! - `collect`: `POST /collection/token/` (Basic API user and key), then
//!   `POST /collection/v1_0/requesttopay` with `X-Reference-Id` derived from
//!   the payment id. A repeat for the same payment gets `409` from MTN and
//!   charges nobody twice. A timeout or a 5xx leaves the payment processing.
//! - `status`: `GET /collection/v1_0/requesttopay/{reference}`; a `404` means
//!   MTN never received the request, so it is sent again under the same
//!   reference while the payment is young enough for the customer to still
//!   approve it (`RESEND_WINDOW_MS`); later, the check reports an error and
//!   the payment stays processing for reconciliation, never re-asked.
//! - `handle-callback`: MTN does not sign callbacks, so the body only names
//!   the payment (`externalId`); the outcome always comes from a status
//!   request made with our own credentials.
//!
//! Config (operator): `base_url`, `subscription_key` (the collection
//! product's `Ocp-Apim-Subscription-Key`), `api_user`, `api_key`,
//! `target_environment` (required: `sandbox`, or the production name MTN
//! gives, e.g. `mtnliberia`), `currencies` (default `LRD,USD`; MTN's sandbox
//! takes only `EUR`). The host adds `callback_url`. The operator must allow the
//! host of `base_url`. No credential ever appears in a message.

mod protocol;

wit_bindgen::generate!({
    world: "rail-plugin",
    path: "../../wit",
});

use base64::Engine as _;
use exports::soxara::gateway::rail::{
    Callback, CallbackEvent, CallbackOutcome, CollectRequest, Guest, PayoutRequest, RailInfo, RailOutcome,
    RefundRequest, SupportedMethod,
};
use protocol::Standing;
use soxara::gateway::http::{self, HttpError, Request, Response};
use soxara::gateway::log::{self, Level};
use soxara::gateway::types::{Failure, PaymentMethod, TransactionStatus};
use soxara::gateway::{cache, clock, config};

/// Where the access token is kept between calls (the host's per-plugin cache).
const TOKEN_CACHE_KEY: &str = "collection-token";
/// A cached token is dropped this long before MTN says it expires.
const TOKEN_MARGIN_S: u64 = 60;

/// Mobile money moves under the Liberian operating company.
const ENTITY: &str = "Phoenix Hub Liberia, Inc.";
const DEFAULT_CURRENCIES: &str = "LRD,USD";
/// How long after a payment's creation a request MTN never received is sent
/// again. MTN gives the customer about 5 minutes to approve; past this, a
/// prompt would arrive for an order the customer has likely given up on.
const RESEND_WINDOW_MS: u64 = 3 * 60_000;

struct MtnMomo;

impl Guest for MtnMomo {
    fn describe() -> RailInfo {
        let currencies = config::get("currencies").unwrap_or_else(|| DEFAULT_CURRENCIES.to_string());
        RailInfo {
            name: "mtn-momo".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            methods: vec![SupportedMethod { method: PaymentMethod::MtnMomo, entity: ENTITY.to_string() }],
            currencies: currencies.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect(),
        }
    }

    fn collect(request: CollectRequest) -> Result<RailOutcome, Failure> {
        let settings = Settings::from_config()?;
        let token = settings.token()?;
        request_to_pay(&settings, &token, &request)
    }

    fn status(request: CollectRequest, provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        let reference = protocol::reference_id(&request.payment_id);
        if provider_reference.as_ref().is_some_and(|r| *r != reference) {
            return Err(failure("BAD_REFERENCE", "the stored provider reference is not this payment's", false));
        }
        let settings = Settings::from_config()?;
        let token = settings.token()?;
        match settings.fetch_status(&token, &reference)? {
            Some(standing) => Ok(outcome(standing, &reference)),
            None if clock::now_ms().saturating_sub(request.created_at_ms) < RESEND_WINDOW_MS => {
                // MTN never received it (lost on the way, or refused by a
                // 5xx before it was stored): send it again, same reference.
                log::log(Level::Info, &format!("payment {} unknown to MTN; sending it again", request.payment_id));
                request_to_pay(&settings, &token, &request)
            }
            None => Err(failure(
                "NOT_FOUND_AT_PROVIDER",
                "MTN has no request to pay for this payment and it is too old to send again; reconcile it",
                false,
            )),
        }
    }

    fn handle_callback(callback: Callback) -> Result<CallbackEvent, Failure> {
        let payment_id =
            protocol::callback_payment_id(&callback.body).map_err(|e| failure("BAD_CALLBACK", &e, false))?;
        let reference = protocol::reference_id(&payment_id);
        let settings = Settings::from_config()?;
        let token = settings.token()?;
        match settings.fetch_status(&token, &reference)? {
            Some(standing) => {
                Ok(CallbackEvent::Payment(CallbackOutcome { payment_id, outcome: outcome(standing, &reference) }))
            }
            None => Err(failure("UNKNOWN_PAYMENT", "MTN has no request to pay for this callback's externalId", false)),
        }
    }

    fn refund(_request: RefundRequest) -> Result<RailOutcome, Failure> {
        Err(failure("NOT_SUPPORTED", "refunds through MTN Mobile Money are not available on this rail yet", false))
    }

    fn refund_status(_request: RefundRequest, _provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        Err(failure("NOT_SUPPORTED", "refunds are not available on this rail yet", false))
    }

    fn payout(_request: PayoutRequest) -> Result<RailOutcome, Failure> {
        Err(failure("NOT_SUPPORTED", "payouts through MTN Mobile Money are not available on this rail yet", false))
    }

    fn payout_status(_request: PayoutRequest, _provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        Err(failure("NOT_SUPPORTED", "payouts through MTN Mobile Money are not available on this rail yet", false))
    }
}

/// Sends the request to pay. Anything short of a clear refusal leaves the
/// payment processing: MTN may have queued it, and a status check will know.
fn request_to_pay(settings: &Settings, token: &Token, request: &CollectRequest) -> Result<RailOutcome, Failure> {
    if request.method != PaymentMethod::MtnMomo {
        return Err(failure("INVALID_REQUEST", "this rail only serves mtn_momo payments", false));
    }
    let phone = request
        .customer_phone
        .as_deref()
        .ok_or_else(|| failure("INVALID_REQUEST", "an MTN payment needs the customer's phone", false))?;
    let msisdn = protocol::msisdn(phone).map_err(|e| failure("INVALID_REQUEST", &e, false))?;
    let currency = &request.money.currency;
    let amount =
        protocol::amount_text(request.money.amount, currency).map_err(|e| failure("INVALID_REQUEST", &e, false))?;
    let reference = protocol::reference_id(&request.payment_id);
    let body =
        protocol::request_to_pay_body(&request.payment_id, &amount, currency, &msisdn, request.description.as_deref());
    let mut headers = settings.bearer_headers(&token.value);
    headers.push(("X-Reference-Id".to_string(), reference.clone()));
    headers.push(("Content-Type".to_string(), "application/json".to_string()));
    if let Some(url) = &settings.callback_url {
        headers.push(("X-Callback-Url".to_string(), url.clone()));
    }
    let url = format!("{}/collection/v1_0/requesttopay", settings.base_url);
    let pending = RailOutcome {
        status: TransactionStatus::Processing,
        provider_reference: Some(reference.clone()),
        failure: None,
        redirect_url: None,
    };
    match send("POST", url, headers, body) {
        // Accepted, or already there from an earlier attempt.
        Ok(response) if response.status == 202 || response.status == 409 => Ok(pending),
        // Timed out or throttled at MTN's edge: it may still act on it.
        Ok(response) if response.status == 408 || response.status == 429 => Ok(pending),
        // A cached token MTN no longer honours: once more with a fresh one
        // (same reference, so MTN still asks the customer at most once).
        Ok(response) if response.status == 401 && token.cached => {
            cache::remove(TOKEN_CACHE_KEY);
            request_to_pay(settings, &settings.fresh_token()?, request)
        }
        Ok(response) if response.status == 401 || response.status == 403 => {
            Err(failure("PROVIDER_AUTH_FAILED", "MTN refused the gateway's credentials for this request", false))
        }
        Ok(response) if (400..500).contains(&response.status) => {
            let message = format!("MTN refused the request to pay ({}): {}", response.status, excerpt(&response));
            Err(failure("PROVIDER_REFUSED", &message, false))
        }
        Ok(response) => {
            log::log(Level::Warn, &format!("request to pay answered {}; left processing", response.status));
            Ok(pending)
        }
        Err(HttpError::Denied(why)) => Err(failure("HTTP_DENIED", &why, false)),
        Err(HttpError::Timeout | HttpError::Transport(_)) => {
            log::log(Level::Warn, "request to pay got no answer; left processing");
            Ok(pending)
        }
    }
}

/// A status answer as a rail outcome.
fn outcome(standing: Standing, reference: &str) -> RailOutcome {
    let (status, failure_value) = match standing {
        Standing::Pending => (TransactionStatus::Processing, None),
        Standing::Successful => (TransactionStatus::Completed, None),
        Standing::Failed { code, message } => (TransactionStatus::Failed, Some(failure(code, &message, false))),
    };
    RailOutcome { status, provider_reference: Some(reference.to_string()), failure: failure_value, redirect_url: None }
}

/// An access token, and whether it came from the cache (and so may have
/// been revoked since).
struct Token {
    value: String,
    cached: bool,
}

/// This plugin's operator configuration.
struct Settings {
    base_url: String,
    subscription_key: String,
    api_user: String,
    api_key: String,
    target_environment: String,
    callback_url: Option<String>,
}

impl Settings {
    fn from_config() -> Result<Settings, Failure> {
        let required = |key: &str| {
            config::get(key).filter(|v| !v.is_empty()).ok_or_else(|| {
                failure("NOT_CONFIGURED", &format!("the operator has not set `{key}` for the mtn-momo rail"), false)
            })
        };
        Ok(Settings {
            base_url: required("base_url")?.trim_end_matches('/').to_string(),
            subscription_key: required("subscription_key")?,
            api_user: required("api_user")?,
            api_key: required("api_key")?,
            target_environment: required("target_environment")?,
            callback_url: config::get("callback_url").filter(|v| !v.is_empty()),
        })
    }

    /// An access token: the cached one while it is good, else a fresh one.
    /// Failing here is safe: nothing was asked of MTN.
    fn token(&self) -> Result<Token, Failure> {
        match cache::get(TOKEN_CACHE_KEY).and_then(|bytes| String::from_utf8(bytes).ok()) {
            Some(value) => Ok(Token { value, cached: true }),
            None => self.fresh_token(),
        }
    }

    /// A new access token from MTN, cached until shortly before it expires.
    fn fresh_token(&self) -> Result<Token, Failure> {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.api_user, self.api_key));
        let headers = vec![
            ("Authorization".to_string(), format!("Basic {basic}")),
            ("Ocp-Apim-Subscription-Key".to_string(), self.subscription_key.clone()),
        ];
        let response = send("POST", format!("{}/collection/token/", self.base_url), headers, Vec::new())
            .map_err(unreachable_failure)?;
        match response.status {
            200 => {
                let (value, expires_in_s) =
                    protocol::parse_token(&response.body).map_err(|e| failure("BAD_PROVIDER_RESPONSE", &e, true))?;
                let ttl_ms = expires_in_s.saturating_sub(TOKEN_MARGIN_S).saturating_mul(1_000);
                cache::set(TOKEN_CACHE_KEY, value.as_bytes(), ttl_ms);
                Ok(Token { value, cached: false })
            }
            401 | 403 => Err(failure(
                "PROVIDER_AUTH_FAILED",
                "MTN refused the API user and key; check the rail's configuration",
                false,
            )),
            status => Err(failure("PROVIDER_UNAVAILABLE", &format!("MTN's token endpoint answered {status}"), true)),
        }
    }

    /// Where MTN says the request stands, or `None` when it has no such request.
    fn fetch_status(&self, token: &Token, reference: &str) -> Result<Option<Standing>, Failure> {
        let url = format!("{}/collection/v1_0/requesttopay/{reference}", self.base_url);
        let response =
            send("GET", url.clone(), self.bearer_headers(&token.value), Vec::new()).map_err(unreachable_failure)?;
        let response = if response.status == 401 && token.cached {
            cache::remove(TOKEN_CACHE_KEY);
            let fresh = self.fresh_token()?;
            send("GET", url, self.bearer_headers(&fresh.value), Vec::new()).map_err(unreachable_failure)?
        } else {
            response
        };
        match response.status {
            200 => {
                let standing =
                    protocol::parse_status(&response.body).map_err(|e| failure("BAD_PROVIDER_RESPONSE", &e, true))?;
                Ok(Some(standing))
            }
            404 => Ok(None),
            status => Err(failure("PROVIDER_UNAVAILABLE", &format!("MTN's status endpoint answered {status}"), true)),
        }
    }

    fn bearer_headers(&self, token: &str) -> Vec<(String, String)> {
        vec![
            ("Authorization".to_string(), format!("Bearer {token}")),
            ("Ocp-Apim-Subscription-Key".to_string(), self.subscription_key.clone()),
            ("X-Target-Environment".to_string(), self.target_environment.clone()),
        ]
    }
}

fn send(method: &str, url: String, headers: Vec<(String, String)>, body: Vec<u8>) -> Result<Response, HttpError> {
    http::send(&Request { method: method.to_string(), url, headers, body })
}

fn unreachable_failure(error: HttpError) -> Failure {
    match error {
        HttpError::Denied(why) => failure("HTTP_DENIED", &why, false),
        HttpError::Timeout => failure("PROVIDER_TIMEOUT", "MTN did not answer in time", true),
        HttpError::Transport(_) => failure("PROVIDER_UNAVAILABLE", "MTN could not be reached", true),
    }
}

/// The start of a provider's error body, for a merchant-safe message.
fn excerpt(response: &Response) -> String {
    protocol::truncate(&String::from_utf8_lossy(&response.body))
}

fn failure(code: &str, message: &str, retryable: bool) -> Failure {
    Failure { code: code.to_string(), message: message.to_string(), retryable }
}

export!(MtnMomo);
