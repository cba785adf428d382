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

use protocol::Standing;
use soxara_sdk::http::{HttpError, Response};
use soxara_sdk::prelude::*;
use soxara_sdk::token::AccessToken;

/// Where the access token is kept between calls (the host's per-plugin cache).
const TOKEN_CACHE_KEY: &str = "collection-token";

/// Mobile money moves under the Liberian operating company.
const ENTITY: &str = "Phoenix Hub Liberia, Inc.";
const DEFAULT_CURRENCIES: &str = "LRD,USD";
/// How long after a payment's creation a request MTN never received is sent
/// again. MTN gives the customer about 5 minutes to approve; past this, a
/// prompt would arrive for an order the customer has likely given up on.
const RESEND_WINDOW_MS: u64 = 3 * 60_000;
/// How the provider is named in failure messages.
const PROVIDER: &str = "MTN";

struct MtnMomo;

impl Rail for MtnMomo {
    fn describe() -> RailInfo {
        let currencies = config::get("currencies").unwrap_or_else(|| DEFAULT_CURRENCIES.to_string());
        RailInfo::new("mtn-momo", env!("CARGO_PKG_VERSION"), &currencies).method(PaymentMethod::MtnMomo, ENTITY)
    }

    fn collect(request: CollectRequest) -> Result<RailOutcome, Failure> {
        let settings = Settings::from_config()?;
        let token = settings.token()?;
        request_to_pay(&settings, &token, &request)
    }

    fn status(request: CollectRequest, provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        let reference = protocol::reference_id(&request.payment_id);
        if provider_reference.as_ref().is_some_and(|r| *r != reference) {
            return Err(Failure::new("BAD_REFERENCE", "the stored provider reference is not this payment's"));
        }
        let settings = Settings::from_config()?;
        let token = settings.token()?;
        match settings.fetch_status(&token, &reference)? {
            Some(standing) => Ok(outcome(standing, &reference)),
            None if clock::now_ms().saturating_sub(request.created_at_ms) < RESEND_WINDOW_MS => {
                // MTN never received it (lost on the way, or refused by a
                // 5xx before it was stored): send it again, same reference.
                log::info(&format!("payment {} unknown to MTN; sending it again", request.payment_id));
                request_to_pay(&settings, &token, &request)
            }
            None => Err(Failure::new(
                "NOT_FOUND_AT_PROVIDER",
                "MTN has no request to pay for this payment and it is too old to send again; reconcile it",
            )),
        }
    }

    fn handle_callback(callback: Callback) -> Result<CallbackEvent, Failure> {
        let payment_id = protocol::callback_payment_id(&callback.body).map_err(|e| Failure::new("BAD_CALLBACK", e))?;
        let reference = protocol::reference_id(&payment_id);
        let settings = Settings::from_config()?;
        let token = settings.token()?;
        match settings.fetch_status(&token, &reference)? {
            Some(standing) => {
                Ok(CallbackEvent::Payment(CallbackOutcome { payment_id, outcome: outcome(standing, &reference) }))
            }
            None => Err(Failure::new("UNKNOWN_PAYMENT", "MTN has no request to pay for this callback's externalId")),
        }
    }

    // Refunds and payouts (MTN's disbursement product) are not written yet:
    // the SDK's defaults answer NOT_SUPPORTED, which fails them cleanly.
}

soxara_sdk::export_rail!(MtnMomo);

/// Sends the request to pay. Anything short of a clear refusal leaves the
/// payment processing: MTN may have queued it, and a status check will know.
fn request_to_pay(settings: &Settings, token: &AccessToken, request: &CollectRequest) -> Result<RailOutcome, Failure> {
    if request.method != PaymentMethod::MtnMomo {
        return Err(Failure::new("INVALID_REQUEST", "this rail only serves mtn_momo payments"));
    }
    let msisdn = phone::msisdn(phone::required(&request.customer_phone)?)?;
    let currency = &request.money.currency;
    let amount = money::to_decimal_text(request.money.amount, currency)?;
    let reference = protocol::reference_id(&request.payment_id);
    let body =
        protocol::request_to_pay_body(&request.payment_id, &amount, currency, &msisdn, request.description.as_deref());
    let mut post = http::post(format!("{}/collection/v1_0/requesttopay", settings.base_url))
        .headers(settings.bearer_headers(&token.value))
        .header("X-Reference-Id", reference.clone())
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(url) = &settings.callback_url {
        post = post.header("X-Callback-Url", url.clone());
    }
    let pending = RailOutcome::processing(Some(reference.clone()));
    match post.send() {
        // Accepted, or already there from an earlier attempt.
        Ok(response) if response.status == 202 || response.status == 409 => Ok(pending),
        // Timed out or throttled at MTN's edge: it may still act on it.
        Ok(response) if response.status == 408 || response.status == 429 => Ok(pending),
        // A cached token MTN no longer honours: once more with a fresh one
        // (same reference, so MTN still asks the customer at most once).
        Ok(response) if response.status == 401 && token.cached => {
            token::forget(TOKEN_CACHE_KEY);
            request_to_pay(settings, &settings.fresh_token()?, request)
        }
        Ok(response) if response.status == 401 || response.status == 403 => {
            Err(Failure::new("PROVIDER_AUTH_FAILED", "MTN refused the gateway's credentials for this request"))
        }
        Ok(response) if (400..500).contains(&response.status) => {
            let message = format!("MTN refused the request to pay ({}): {}", response.status, response.excerpt());
            Err(Failure::new("PROVIDER_REFUSED", message))
        }
        Ok(response) => {
            log::warn(&format!("request to pay answered {}; left processing", response.status));
            Ok(pending)
        }
        Err(HttpError::Denied(why)) => Err(Failure::new("HTTP_DENIED", why)),
        Err(HttpError::Timeout | HttpError::Transport(_)) => {
            log::warn("request to pay got no answer; left processing");
            Ok(pending)
        }
    }
}

/// A status answer as a rail outcome.
fn outcome(standing: Standing, reference: &str) -> RailOutcome {
    let reference = Some(reference.to_string());
    match standing {
        Standing::Pending => RailOutcome::processing(reference),
        Standing::Successful => RailOutcome::completed(reference),
        Standing::Failed { code, message } => RailOutcome::failed(reference, Failure::new(code, message)),
    }
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
        Ok(Settings {
            base_url: config::base_url("base_url", None)?,
            subscription_key: config::required("subscription_key")?,
            api_user: config::required("api_user")?,
            api_key: config::required("api_key")?,
            target_environment: config::required("target_environment")?,
            callback_url: config::get("callback_url"),
        })
    }

    /// An access token: the cached one while it is good, else a fresh one.
    /// Failing here is safe: nothing was asked of MTN.
    fn token(&self) -> Result<AccessToken, Failure> {
        match token::cached(TOKEN_CACHE_KEY) {
            Some(token) => Ok(token),
            None => self.fresh_token(),
        }
    }

    /// A new access token from MTN, cached until shortly before it expires.
    fn fresh_token(&self) -> Result<AccessToken, Failure> {
        let response = http::post(format!("{}/collection/token/", self.base_url))
            .basic_auth(&self.api_user, &self.api_key)
            .header("Ocp-Apim-Subscription-Key", self.subscription_key.clone())
            .send()
            .map_err(|e| e.into_failure(PROVIDER))?;
        match response.status {
            200 => token::accept(TOKEN_CACHE_KEY, &response.body, PROVIDER),
            401 | 403 => Err(Failure::new(
                "PROVIDER_AUTH_FAILED",
                "MTN refused the API user and key; check the rail's configuration",
            )),
            status => {
                Err(Failure::retryable("PROVIDER_UNAVAILABLE", format!("MTN's token endpoint answered {status}")))
            }
        }
    }

    /// Where MTN says the request stands, or `None` when it has no such request.
    fn fetch_status(&self, token: &AccessToken, reference: &str) -> Result<Option<Standing>, Failure> {
        let url = format!("{}/collection/v1_0/requesttopay/{reference}", self.base_url);
        let read = |token: &str| -> Result<Response, Failure> {
            http::get(url.clone()).headers(self.bearer_headers(token)).send().map_err(|e| e.into_failure(PROVIDER))
        };
        let mut response = read(&token.value)?;
        if response.status == 401 && token.cached {
            token::forget(TOKEN_CACHE_KEY);
            response = read(&self.fresh_token()?.value)?;
        }
        match response.status {
            200 => protocol::parse_status(&response.body).map(Some).map_err(Failure::bad_provider_response),
            404 => Ok(None),
            status => {
                Err(Failure::retryable("PROVIDER_UNAVAILABLE", format!("MTN's status endpoint answered {status}")))
            }
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
