//! Rail: Orange Money Web Payment.
//!
//! The customer pays on Orange's own page, so a payment starts `processing`
//! with a `next_action` redirect for the merchant to send the customer to.
//!
//! - `collect`: `POST /oauth/v3/token` (Basic client id and secret, form
//!   `grant_type=client_credentials`), then
//!   `POST /orange-money-webpay/{country}/v1/webpayment` with `order_id` =
//!   the payment id and `notif_url` = the host's callback URL naming the
//!   payment. The answer's `pay_token` is the provider reference and
//!   `payment_url` the redirect. A timeout or 5xx leaves it processing.
//! - `status`: `POST …/transactionstatus` with `order_id`, `amount` and
//!   `pay_token` (INITIATED/PENDING, SUCCESS, FAILED, EXPIRED). Without a
//!   `pay_token` (the first answer was lost), the web payment is requested
//!   again under the same `order_id` within `RESEND_WINDOW_MS`.
//! - `handle-callback`: the notification is only a prompt. It names the
//!   payment through its URL, signed with a key derived from the client
//!   secret (so only URLs this rail gave out count); the host then checks
//!   the status with our own credentials, so no notification can settle a
//!   payment by itself (and the `notif_token`, which would need per-payment
//!   state here, is not needed).
//! - A payment whose page never reached anyone (the first answer was lost
//!   and Orange refuses a repeat, or it is too old to ask again) fails as
//!   `PAYMENT_NOT_STARTED`: nobody can have paid it.
//!
//! Config (operator): `client_id`, `client_secret`, `merchant_key`,
//! `return_url`, `cancel_url`, `country_path` (`dev` for the sandbox, or the
//! production country path), `base_url` (default `https://api.orange.com`),
//! `currencies` (default `LRD,USD`; the sandbox takes only `OUV`). The host adds `callback_url`. No credential appears in a
//! message.

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
const TOKEN_CACHE_KEY: &str = "oauth-token";
/// A cached token is dropped this long before Orange says it expires.
const TOKEN_MARGIN_S: u64 = 60;

/// Mobile money moves under the Liberian operating company.
const ENTITY: &str = "Phoenix Hub Liberia, Inc.";
const DEFAULT_BASE_URL: &str = "https://api.orange.com";
const DEFAULT_CURRENCIES: &str = "LRD,USD";
/// How long after creation a web payment whose answer was lost is requested
/// again: past this, the customer has long left the merchant's page.
const RESEND_WINDOW_MS: u64 = 10 * 60_000;

struct OrangeMoney;

impl Guest for OrangeMoney {
    fn describe() -> RailInfo {
        let currencies = config::get("currencies").unwrap_or_else(|| DEFAULT_CURRENCIES.to_string());
        RailInfo {
            name: "orange-money".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            methods: vec![SupportedMethod { method: PaymentMethod::OrangeMoney, entity: ENTITY.to_string() }],
            currencies: currencies.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect(),
        }
    }

    fn collect(request: CollectRequest) -> Result<RailOutcome, Failure> {
        let settings = Settings::from_config()?;
        start_web_payment(&settings, &request)
    }

    fn status(request: CollectRequest, provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        let settings = Settings::from_config()?;
        let Some(pay_token) = provider_reference else {
            // No page was ever handed out, so nobody can have paid: ask again
            // (same order_id) while the customer may still be waiting, and
            // otherwise end it.
            let not_started = |why: &str| {
                log::log(Level::Warn, &format!("payment {} never started: {why}", request.payment_id));
                let message = "Orange Money's payment page never reached the customer; nothing was paid";
                Ok(outcome(Standing::Failed { code: "PAYMENT_NOT_STARTED", message }, None, None))
            };
            if clock::now_ms().saturating_sub(request.created_at_ms) >= RESEND_WINDOW_MS {
                return not_started("too old to request the page again");
            }
            return match start_web_payment(&settings, &request) {
                Err(refused) if !refused.retryable => not_started(&refused.code),
                other => other,
            };
        };
        let amount = protocol::whole_units(request.money.amount, &request.money.currency)
            .map_err(|e| failure("INVALID_REQUEST", &e, false))?;
        let url = format!("{}/orange-money-webpay/{}/v1/transactionstatus", settings.base_url, settings.country_path);
        let body = protocol::status_body(&request.payment_id, amount, &pay_token);
        let response = settings.post_json(url, body)?.map_err(unreachable_failure)?;
        if !(200..300).contains(&response.status) {
            let message = format!("Orange's transaction status answered {}", response.status);
            return Err(failure("PROVIDER_UNAVAILABLE", &message, true));
        }
        let standing =
            protocol::parse_status(&response.body).map_err(|e| failure("BAD_PROVIDER_RESPONSE", &e, true))?;
        Ok(outcome(standing, Some(pay_token), None))
    }

    fn handle_callback(callback: Callback) -> Result<CallbackEvent, Failure> {
        let settings = Settings::from_config()?;
        let payment_id = protocol::payment_id_from_query(&callback.query, &settings.client_secret)
            .ok_or_else(|| failure("BAD_CALLBACK", "the notification URL is not one this rail gave out", false))?;
        // Only a prompt: the status check decides.
        Ok(CallbackEvent::Payment(CallbackOutcome { payment_id, outcome: outcome(Standing::Pending, None, None) }))
    }

    fn refund(_request: RefundRequest) -> Result<RailOutcome, Failure> {
        Err(failure("NOT_SUPPORTED", "refunds through Orange Money are not available on this rail yet", false))
    }

    fn refund_status(_request: RefundRequest, _provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        Err(failure("NOT_SUPPORTED", "refunds are not available on this rail yet", false))
    }

    fn payout(_request: PayoutRequest) -> Result<RailOutcome, Failure> {
        Err(failure("NOT_SUPPORTED", "payouts through Orange Money are not available on this rail yet", false))
    }

    fn payout_status(_request: PayoutRequest, _provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        Err(failure("NOT_SUPPORTED", "payouts through Orange Money are not available on this rail yet", false))
    }
}

/// Asks Orange for a payment page. Anything short of a clear refusal leaves
/// the payment processing.
fn start_web_payment(settings: &Settings, request: &CollectRequest) -> Result<RailOutcome, Failure> {
    if request.method != PaymentMethod::OrangeMoney {
        return Err(failure("INVALID_REQUEST", "this rail only serves orange_money payments", false));
    }
    let amount = protocol::whole_units(request.money.amount, &request.money.currency)
        .map_err(|e| failure("INVALID_AMOUNT", &e, false))?;
    let callback_url = settings
        .callback_url
        .as_deref()
        .ok_or_else(|| failure("NOT_CONFIGURED", "the host gave no callback_url", false))?;
    let body = protocol::web_payment_body(
        &settings.merchant_key,
        &request.money.currency,
        &request.payment_id,
        amount,
        &settings.return_url,
        &settings.cancel_url,
        &protocol::notification_url(callback_url, &request.payment_id, &settings.client_secret),
    );
    let url = format!("{}/orange-money-webpay/{}/v1/webpayment", settings.base_url, settings.country_path);
    match settings.post_json(url, body)? {
        Ok(response) if response.status == 201 || response.status == 200 => {
            match protocol::parse_web_payment(&response.body) {
                Ok(web) => Ok(outcome(Standing::Pending, Some(web.pay_token), Some(web.payment_url))),
                Err(why) => {
                    log::log(Level::Error, &format!("unreadable web payment answer ({why}); left processing"));
                    Ok(outcome(Standing::Pending, None, None))
                }
            }
        }
        Ok(response) if response.status == 401 || response.status == 403 => {
            Err(failure("PROVIDER_AUTH_FAILED", "Orange refused the gateway's credentials for this request", false))
        }
        Ok(response) if (400..500).contains(&response.status) && response.status != 408 && response.status != 429 => {
            let message = format!("Orange refused the web payment ({})", response.status);
            Err(failure("PROVIDER_REFUSED", &message, false))
        }
        Ok(response) => {
            log::log(Level::Warn, &format!("web payment answered {}; left processing", response.status));
            Ok(outcome(Standing::Pending, None, None))
        }
        Err(HttpError::Denied(why)) => Err(failure("HTTP_DENIED", &why, false)),
        Err(HttpError::Timeout | HttpError::Transport(_)) => {
            log::log(Level::Warn, "web payment got no answer; left processing");
            Ok(outcome(Standing::Pending, None, None))
        }
    }
}

fn outcome(standing: Standing, pay_token: Option<String>, redirect_url: Option<String>) -> RailOutcome {
    let (status, failure_value) = match standing {
        Standing::Pending => (TransactionStatus::Processing, None),
        Standing::Succeeded => (TransactionStatus::Completed, None),
        Standing::Failed { code, message } => (TransactionStatus::Failed, Some(failure(code, message, false))),
    };
    RailOutcome { status, provider_reference: pay_token, failure: failure_value, redirect_url }
}

/// This plugin's operator configuration.
struct Settings {
    base_url: String,
    country_path: String,
    client_id: String,
    client_secret: String,
    merchant_key: String,
    return_url: String,
    cancel_url: String,
    callback_url: Option<String>,
}

impl Settings {
    fn from_config() -> Result<Settings, Failure> {
        let required = |key: &str| {
            config::get(key).filter(|v| !v.is_empty()).ok_or_else(|| {
                failure("NOT_CONFIGURED", &format!("the operator has not set `{key}` for the orange-money rail"), false)
            })
        };
        Ok(Settings {
            base_url: config::get("base_url")
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_string())
                .trim_end_matches('/')
                .to_string(),
            country_path: required("country_path")?,
            client_id: required("client_id")?,
            client_secret: required("client_secret")?,
            merchant_key: required("merchant_key")?,
            return_url: required("return_url")?,
            cancel_url: required("cancel_url")?,
            callback_url: config::get("callback_url").filter(|v| !v.is_empty()),
        })
    }

    /// POSTs JSON with a bearer token. A cached token Orange refuses is
    /// replaced once (the same `order_id`, so nothing is asked twice).
    /// Failing to get a token is an error: nothing was asked of Orange.
    fn post_json(&self, url: String, body: Vec<u8>) -> Result<Result<Response, HttpError>, Failure> {
        let cached = cache::get(TOKEN_CACHE_KEY).and_then(|bytes| String::from_utf8(bytes).ok());
        if let Some(token) = cached {
            match send("POST", url.clone(), self.json_headers(&token), body.clone()) {
                Ok(response) if response.status == 401 => cache::remove(TOKEN_CACHE_KEY),
                answer => return Ok(answer),
            }
        }
        let token = self.fresh_token()?;
        Ok(send("POST", url, self.json_headers(&token), body))
    }

    /// A new access token from Orange, cached until shortly before it expires.
    fn fresh_token(&self) -> Result<String, Failure> {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.client_id, self.client_secret));
        let headers = vec![
            ("Authorization".to_string(), format!("Basic {basic}")),
            ("Content-Type".to_string(), "application/x-www-form-urlencoded".to_string()),
            ("Accept".to_string(), "application/json".to_string()),
        ];
        let body = b"grant_type=client_credentials".to_vec();
        let response =
            send("POST", format!("{}/oauth/v3/token", self.base_url), headers, body).map_err(unreachable_failure)?;
        match response.status {
            200 => {
                let (token, expires_in_s) =
                    protocol::parse_token(&response.body).map_err(|e| failure("BAD_PROVIDER_RESPONSE", &e, true))?;
                let ttl_ms = expires_in_s.saturating_sub(TOKEN_MARGIN_S).saturating_mul(1_000);
                cache::set(TOKEN_CACHE_KEY, token.as_bytes(), ttl_ms);
                Ok(token)
            }
            401 | 403 => Err(failure(
                "PROVIDER_AUTH_FAILED",
                "Orange refused the client id and secret; check the rail's configuration",
                false,
            )),
            status => Err(failure("PROVIDER_UNAVAILABLE", &format!("Orange's token endpoint answered {status}"), true)),
        }
    }

    fn json_headers(&self, token: &str) -> Vec<(String, String)> {
        vec![
            ("Authorization".to_string(), format!("Bearer {token}")),
            ("Content-Type".to_string(), "application/json".to_string()),
            ("Accept".to_string(), "application/json".to_string()),
        ]
    }
}

fn send(method: &str, url: String, headers: Vec<(String, String)>, body: Vec<u8>) -> Result<Response, HttpError> {
    http::send(&Request { method: method.to_string(), url, headers, body })
}

fn unreachable_failure(error: HttpError) -> Failure {
    match error {
        HttpError::Denied(why) => failure("HTTP_DENIED", &why, false),
        HttpError::Timeout => failure("PROVIDER_TIMEOUT", "Orange did not answer in time", true),
        HttpError::Transport(_) => failure("PROVIDER_UNAVAILABLE", "Orange could not be reached", true),
    }
}

fn failure(code: &str, message: &str, retryable: bool) -> Failure {
    Failure { code: code.to_string(), message: message.to_string(), retryable }
}

export!(OrangeMoney);
