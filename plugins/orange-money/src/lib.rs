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

use protocol::Standing;
use soxara_sdk::http::{HttpError, Response};
use soxara_sdk::prelude::*;

/// Where the access token is kept between calls (the host's per-plugin cache).
const TOKEN_CACHE_KEY: &str = "oauth-token";

/// Mobile money moves under the Liberian operating company.
const ENTITY: &str = "Phoenix Hub Liberia, Inc.";
const DEFAULT_BASE_URL: &str = "https://api.orange.com";
const DEFAULT_CURRENCIES: &str = "LRD,USD";
/// How long after creation a web payment whose answer was lost is requested
/// again: past this, the customer has long left the merchant's page.
const RESEND_WINDOW_MS: u64 = 10 * 60_000;
/// How the provider is named in failure messages.
const PROVIDER: &str = "Orange";

struct OrangeMoney;

impl Rail for OrangeMoney {
    fn describe() -> RailInfo {
        let currencies = config::get("currencies").unwrap_or_else(|| DEFAULT_CURRENCIES.to_string());
        RailInfo::new("orange-money", env!("CARGO_PKG_VERSION"), &currencies).method(PaymentMethod::OrangeMoney, ENTITY)
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
                log::warn(&format!("payment {} never started: {why}", request.payment_id));
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
            .map_err(|e| Failure::new("INVALID_REQUEST", e))?;
        let url = format!("{}/orange-money-webpay/{}/v1/transactionstatus", settings.base_url, settings.country_path);
        let body = protocol::status_body(&request.payment_id, amount, &pay_token);
        let response = settings.post_json(url, body)?.map_err(|e| e.into_failure(PROVIDER))?;
        if !response.is_success() {
            let message = format!("Orange's transaction status answered {}", response.status);
            return Err(Failure::retryable("PROVIDER_UNAVAILABLE", message));
        }
        let standing = protocol::parse_status(&response.body).map_err(Failure::bad_provider_response)?;
        Ok(outcome(standing, Some(pay_token), None))
    }

    fn handle_callback(callback: Callback) -> Result<CallbackEvent, Failure> {
        let settings = Settings::from_config()?;
        let payment_id = protocol::payment_id_from_query(&callback.query, &settings.client_secret)
            .ok_or_else(|| Failure::new("BAD_CALLBACK", "the notification URL is not one this rail gave out"))?;
        // Only a prompt: the status check decides.
        Ok(CallbackEvent::Payment(CallbackOutcome { payment_id, outcome: outcome(Standing::Pending, None, None) }))
    }

    /// Orange Money Web Payment has no refund or cash-in operation (its API
    /// is token, webpayment, transactionstatus and the notification): the
    /// refund fails before anything moves, saying where it can be done.
    fn refund(request: RefundRequest) -> Result<RailOutcome, Failure> {
        let _ = request;
        Err(Failure::new(
            "NOT_SUPPORTED",
            "Orange Money Web Payment offers no refund API; the platform's operator can refund this payment from \
             Orange's merchant portal",
        ))
    }

    // Payouts: the SDK's default answers NOT_SUPPORTED (no cash-in API
    // either).
}

soxara_sdk::export_rail!(OrangeMoney);

/// Asks Orange for a payment page. Anything short of a clear refusal leaves
/// the payment processing.
fn start_web_payment(settings: &Settings, request: &CollectRequest) -> Result<RailOutcome, Failure> {
    if request.method != PaymentMethod::OrangeMoney {
        return Err(Failure::new("INVALID_REQUEST", "this rail only serves orange_money payments"));
    }
    let amount = protocol::whole_units(request.money.amount, &request.money.currency)
        .map_err(|e| Failure::new("INVALID_AMOUNT", e))?;
    let callback_url = settings
        .callback_url
        .as_deref()
        .ok_or_else(|| Failure::new("NOT_CONFIGURED", "the host gave no callback_url"))?;
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
                    log::error(&format!("unreadable web payment answer ({why}); left processing"));
                    Ok(outcome(Standing::Pending, None, None))
                }
            }
        }
        Ok(response) if response.status == 401 || response.status == 403 => {
            Err(Failure::new("PROVIDER_AUTH_FAILED", "Orange refused the gateway's credentials for this request"))
        }
        Ok(response) if (400..500).contains(&response.status) && response.status != 408 && response.status != 429 => {
            Err(Failure::new("PROVIDER_REFUSED", format!("Orange refused the web payment ({})", response.status)))
        }
        Ok(response) => {
            log::warn(&format!("web payment answered {}; left processing", response.status));
            Ok(outcome(Standing::Pending, None, None))
        }
        Err(HttpError::Denied(why)) => Err(Failure::new("HTTP_DENIED", why)),
        Err(HttpError::Timeout | HttpError::Transport(_)) => {
            log::warn("web payment got no answer; left processing");
            Ok(outcome(Standing::Pending, None, None))
        }
    }
}

fn outcome(standing: Standing, pay_token: Option<String>, redirect_url: Option<String>) -> RailOutcome {
    let outcome = match standing {
        Standing::Pending => RailOutcome::processing(pay_token),
        Standing::Succeeded => RailOutcome::completed(pay_token),
        Standing::Failed { code, message } => RailOutcome::failed(pay_token, Failure::new(code, message)),
    };
    RailOutcome { redirect_url, ..outcome }
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
        let country_path = config::required("country_path")?;
        config::check_mode(country_path == "dev", "country_path")?;
        Ok(Settings {
            base_url: config::base_url("base_url", Some(DEFAULT_BASE_URL))?,
            country_path,
            client_id: config::required("client_id")?,
            client_secret: config::required("client_secret")?,
            merchant_key: config::required("merchant_key")?,
            return_url: config::required("return_url")?,
            cancel_url: config::required("cancel_url")?,
            callback_url: config::get("callback_url"),
        })
    }

    /// POSTs JSON with a bearer token. A cached token Orange refuses is
    /// replaced once (the same `order_id`, so nothing is asked twice).
    /// Failing to get a token is an error: nothing was asked of Orange.
    fn post_json(&self, url: String, body: Vec<u8>) -> Result<Result<Response, HttpError>, Failure> {
        let post = |token: &str| {
            http::post(url.clone())
                .bearer(token)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .body(body.clone())
                .send()
        };
        if let Some(token) = token::cached(TOKEN_CACHE_KEY) {
            match post(&token.value) {
                Ok(response) if response.status == 401 => token::forget(TOKEN_CACHE_KEY),
                answer => return Ok(answer),
            }
        }
        let token = self.fresh_token()?;
        Ok(post(&token.value))
    }

    /// A new access token from Orange, cached until shortly before it expires.
    fn fresh_token(&self) -> Result<token::AccessToken, Failure> {
        let response = http::post(format!("{}/oauth/v3/token", self.base_url))
            .basic_auth(&self.client_id, &self.client_secret)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(b"grant_type=client_credentials".to_vec())
            .send()
            .map_err(|e| e.into_failure(PROVIDER))?;
        match response.status {
            200 => token::accept(TOKEN_CACHE_KEY, &response.body, PROVIDER),
            401 | 403 => Err(Failure::new(
                "PROVIDER_AUTH_FAILED",
                "Orange refused the client id and secret; check the rail's configuration",
            )),
            status => {
                Err(Failure::retryable("PROVIDER_UNAVAILABLE", format!("Orange's token endpoint answered {status}")))
            }
        }
    }
}
