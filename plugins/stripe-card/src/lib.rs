//! Rail: card payments through Stripe PaymentIntents.
//!
//! - `collect`: `POST /v1/payment_intents` (form-encoded, `confirm=true`)
//!   with the payment-method token the merchant's page got from Stripe.js,
//!   and `Idempotency-Key` = the gateway's payment id. Stripe replays the
//!   first answer for a repeated key with the same form, so a retry does not
//!   charge twice — while the key lives (24 h at least) and the form is
//!   unchanged (same plugin version); otherwise it is left processing for
//!   the status check and, failing that, reconciliation.
//!   `402` is a decline; a timeout, `409`, `429` or `5xx` leaves the payment
//!   processing.
//! - `status`: `GET /v1/payment_intents/{id}` when the intent's id is known;
//!   otherwise the same create request again under the same key (Stripe
//!   keeps keys at least 24 h; this rail re-sends only within
//!   `RESEND_WINDOW_MS`), and if that replays a saved `5xx`, a search by
//!   our payment id in the intent's metadata.
//! - `handle-callback`: Stripe webhooks, verified with `Stripe-Signature`
//!   (HMAC-SHA256 of `"{t}.{body}"`, 300 s tolerance). `payment_intent.*`
//!   events settle payments; `charge.dispute.created` opens a dispute; other
//!   events are acknowledged and ignored.
//!
//! Config (operator): `secret_key` (`sk_live_…`), `webhook_secret`
//! (`whsec_…`), `base_url` (default `https://api.stripe.com`), `currencies`
//! (default `USD`), `api_version` (optional `Stripe-Version`). The operator
//! must allow `api.stripe.com`. No secret ever appears in a message.

mod protocol;

use protocol::{Event, Standing};
use soxara_sdk::http::{HttpError, Response};
use soxara_sdk::prelude::*;

/// Cards and the USD float move under Cinrique Inc.
const ENTITY: &str = "Cinrique Inc.";
const DEFAULT_BASE_URL: &str = "https://api.stripe.com";
const DEFAULT_CURRENCIES: &str = "USD";
/// How long after creation a payment whose intent id we never learned is
/// asked about by sending the create request again. Stripe keeps keys for
/// at least 24 hours; after that a repeat could create a second charge.
const RESEND_WINDOW_MS: u64 = 3_600_000;

struct StripeCard;

impl Rail for StripeCard {
    fn describe() -> RailInfo {
        let currencies = config::get("currencies").unwrap_or_else(|| DEFAULT_CURRENCIES.to_string());
        RailInfo::new("stripe-card", env!("CARGO_PKG_VERSION"), &currencies).method(PaymentMethod::Card, ENTITY)
    }

    fn collect(request: CollectRequest) -> Result<RailOutcome, Failure> {
        let settings = Settings::from_config()?;
        create_intent(&settings, &request)
    }

    fn status(request: CollectRequest, provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        let settings = Settings::from_config()?;
        match provider_reference {
            Some(intent_id) => {
                let report = settings.retrieve_intent(&intent_id)?;
                Ok(outcome(report.standing, Some(report.id)))
            }
            None if clock::now_ms().saturating_sub(request.created_at_ms) < RESEND_WINDOW_MS => {
                // We never learned the intent's id: the same request under the
                // same key makes Stripe replay its first answer (or run it
                // now, if it never began). A replayed 5xx tells nothing, so
                // then look the intent up by our payment id.
                let replayed = create_intent(&settings, &request)?;
                if replayed.status == TransactionStatus::Processing && replayed.provider_reference.is_none() {
                    return settings.find_intent(&request.payment_id);
                }
                Ok(replayed)
            }
            None => settings.find_intent(&request.payment_id),
        }
    }

    fn handle_callback(callback: Callback) -> Result<CallbackEvent, Failure> {
        let settings = Settings::from_config()?;
        let secret = settings
            .webhook_secret
            .as_deref()
            .ok_or_else(|| failure("NOT_CONFIGURED", "the operator has not set `webhook_secret`", false))?;
        let signature = callback
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("stripe-signature"))
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| failure("BAD_SIGNATURE", "the webhook has no Stripe-Signature header", false))?;
        protocol::verify_signature(signature, &callback.body, secret, clock::now_ms() / 1_000)
            .map_err(|why| failure("BAD_SIGNATURE", why, false))?;
        match protocol::parse_event(&callback.body).map_err(|e| failure("BAD_CALLBACK", &e, false))? {
            Event::Intent(report) => match report.payment_id {
                Some(payment_id) => Ok(CallbackEvent::Payment(CallbackOutcome {
                    payment_id,
                    outcome: outcome(report.standing, Some(report.id)),
                })),
                // An intent this gateway did not create (same Stripe account).
                None => Ok(CallbackEvent::Ignored),
            },
            Event::DisputeCreated { dispute_id, intent_id, amount, currency, reason } => {
                // The dispute names the intent; our payment id is on its metadata.
                let intent = settings.retrieve_intent(&intent_id)?;
                match intent.payment_id {
                    Some(payment_id) => Ok(CallbackEvent::DisputeOpened(DisputeNotice {
                        payment_id,
                        provider_dispute_id: dispute_id,
                        money: Money { amount, currency },
                        reason,
                    })),
                    None => Ok(CallbackEvent::Ignored),
                }
            }
            Event::Other => Ok(CallbackEvent::Ignored),
        }
    }

    fn refund(request: RefundRequest) -> Result<RailOutcome, Failure> {
        let settings = Settings::from_config()?;
        if clock::now_ms().saturating_sub(request.created_at_ms) >= RESEND_WINDOW_MS {
            // Asked again long after (crash recovery): Stripe may have
            // forgotten the key, so look for the refund before making one.
            return match settings.find_refund(&request) {
                Err(missing) if missing.code == "NOT_FOUND_AT_PROVIDER" => create_refund(&settings, &request),
                Err(unknown) if unknown.retryable => Ok(outcome(Standing::Processing, None)),
                other => other,
            };
        }
        create_refund(&settings, &request)
    }

    fn refund_status(request: RefundRequest, provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        let settings = Settings::from_config()?;
        match provider_reference {
            Some(stripe_refund_id) => {
                let valid = stripe_refund_id.starts_with("re_")
                    && stripe_refund_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !valid {
                    return Err(failure("BAD_REFERENCE", "the stored provider reference is not a Refund id", false));
                }
                let url = format!("{}/v1/refunds/{stripe_refund_id}", settings.base_url);
                let response =
                    send("GET", url, settings.headers(), Vec::new()).map_err(|e| e.into_failure("Stripe"))?;
                if response.status != 200 {
                    let message = format!("Stripe answered {} for the Refund", response.status);
                    return Err(failure("PROVIDER_UNAVAILABLE", &message, true));
                }
                let report =
                    protocol::parse_refund(&response.body).map_err(|e| failure("BAD_PROVIDER_RESPONSE", &e, true))?;
                Ok(outcome(report.standing, Some(report.id)))
            }
            None if clock::now_ms().saturating_sub(request.created_at_ms) < RESEND_WINDOW_MS => {
                // Same form, same key: Stripe replays the first answer. A clear
                // refusal is the refund's outcome, not "could not find out".
                let replayed = match create_refund(&settings, &request) {
                    Err(refused) if !refused.retryable => {
                        return Ok(RailOutcome {
                            status: TransactionStatus::Failed,
                            provider_reference: None,
                            failure: Some(refused),
                            redirect_url: None,
                        });
                    }
                    other => other?,
                };
                if replayed.status == TransactionStatus::Processing && replayed.provider_reference.is_none() {
                    return settings.find_refund(&request);
                }
                Ok(replayed)
            }
            None => settings.find_refund(&request),
        }
    }

    // Payouts to cards are not offered: the SDK answers NOT_SUPPORTED.
}

/// Creates and confirms the PaymentIntent (or, for a repeated key, gets
/// Stripe's first answer back).
fn create_intent(settings: &Settings, request: &CollectRequest) -> Result<RailOutcome, Failure> {
    if request.method != PaymentMethod::Card {
        return Err(failure("INVALID_REQUEST", "this rail only serves card payments", false));
    }
    let token = request.card.as_deref().filter(|t| t.starts_with("pm_") || t.starts_with("tok_")).ok_or_else(|| {
        failure("INVALID_REQUEST", "a card payment through Stripe needs a payment-method token", false)
    })?;
    let body = protocol::create_intent_form(
        &request.payment_id,
        request.money.amount,
        &request.money.currency,
        token,
        request.description.as_deref(),
    );
    let mut headers = settings.headers();
    headers.push(("Idempotency-Key".to_string(), request.payment_id.clone()));
    headers.push(("Content-Type".to_string(), "application/x-www-form-urlencoded".to_string()));
    let pending = outcome(Standing::Processing, None);
    match send("POST", format!("{}/v1/payment_intents", settings.base_url), headers, body) {
        Ok(response) if response.status == 200 => match protocol::parse_intent(&response.body) {
            Ok(report) => Ok(outcome(report.standing, Some(report.id))),
            // Stripe may have charged the card: never report that as a failure.
            Err(why) => {
                log::error(&format!("unreadable PaymentIntent from Stripe ({why}); left processing"));
                Ok(pending)
            }
        },
        Ok(response) if response.status == 402 => {
            let (standing, intent_id) = protocol::parse_card_error(&response.body);
            Ok(outcome(standing, intent_id))
        }
        Ok(response) if response.status == 401 || response.status == 403 => Err(failure(
            "PROVIDER_AUTH_FAILED",
            "Stripe refused the gateway's secret key; check the rail's configuration",
            false,
        )),
        // A concurrent request under the same key, or throttled before it
        // ran: Stripe may still act on the first; the status check knows.
        Ok(response) if response.status == 409 || response.status == 429 => Ok(pending),
        // An earlier request under this key had another form (a plugin
        // upgrade between attempts): its outcome is unknown, not a refusal.
        Ok(response) if response.status == 400 && protocol::is_idempotency_error(&response.body) => {
            log::warn("Stripe has another request under this payment's key; left processing");
            Ok(pending)
        }
        Ok(response) if (400..500).contains(&response.status) => {
            let message = format!("Stripe refused the request ({})", response.status);
            Err(failure("PROVIDER_REFUSED", &message, false))
        }
        Ok(response) => {
            log::warn(&format!("Stripe answered {}; left processing", response.status));
            Ok(pending)
        }
        Err(HttpError::Denied(why)) => Err(failure("HTTP_DENIED", &why, false)),
        Err(HttpError::Timeout | HttpError::Transport(_)) => {
            log::warn("Stripe gave no answer; left processing");
            Ok(pending)
        }
    }
}

/// Refunds (part of) the payment's PaymentIntent under the refund's own key.
fn create_refund(settings: &Settings, request: &RefundRequest) -> Result<RailOutcome, Failure> {
    let intent_id = request
        .provider_reference
        .as_deref()
        .filter(|r| r.starts_with("pi_"))
        .ok_or_else(|| failure("INVALID_REQUEST", "the payment has no Stripe PaymentIntent to refund", false))?;
    let body = protocol::create_refund_form(intent_id, request.money.amount, &request.refund_id);
    let mut headers = settings.headers();
    headers.push(("Idempotency-Key".to_string(), request.refund_id.clone()));
    headers.push(("Content-Type".to_string(), "application/x-www-form-urlencoded".to_string()));
    let pending = outcome(Standing::Processing, None);
    match send("POST", format!("{}/v1/refunds", settings.base_url), headers, body) {
        Ok(response) if response.status == 200 => match protocol::parse_refund(&response.body) {
            Ok(report) => Ok(outcome(report.standing, Some(report.id))),
            Err(why) => {
                log::error(&format!("unreadable Refund from Stripe ({why}); left processing"));
                Ok(pending)
            }
        },
        Ok(response) if response.status == 401 || response.status == 403 => Err(failure(
            "PROVIDER_AUTH_FAILED",
            "Stripe refused the gateway's secret key; check the rail's configuration",
            false,
        )),
        Ok(response) if response.status == 409 || response.status == 429 => Ok(pending),
        Ok(response) if response.status == 400 && protocol::is_idempotency_error(&response.body) => Ok(pending),
        Ok(response) if (400..500).contains(&response.status) => {
            let message = format!("Stripe refused the refund ({})", response.status);
            Err(failure("REFUND_REFUSED", &message, false))
        }
        Ok(_) | Err(HttpError::Timeout | HttpError::Transport(_)) => Ok(pending),
        Err(HttpError::Denied(why)) => Err(failure("HTTP_DENIED", &why, false)),
    }
}

fn outcome(standing: Standing, intent_id: Option<String>) -> RailOutcome {
    let (status, failure_value) = match standing {
        Standing::Succeeded => (TransactionStatus::Completed, None),
        Standing::Processing => (TransactionStatus::Processing, None),
        Standing::Canceled => (TransactionStatus::Cancelled, None),
        Standing::Failed { code, message } => (TransactionStatus::Failed, Some(failure(code, message, false))),
    };
    RailOutcome { status, provider_reference: intent_id, failure: failure_value, redirect_url: None }
}

/// This plugin's operator configuration.
struct Settings {
    base_url: String,
    secret_key: String,
    webhook_secret: Option<String>,
    api_version: Option<String>,
}

impl Settings {
    fn from_config() -> Result<Settings, Failure> {
        let secret_key = config::get("secret_key").filter(|k| !k.is_empty()).ok_or_else(|| {
            failure("NOT_CONFIGURED", "the operator has not set `secret_key` for the stripe-card rail", false)
        })?;
        // Stripe's keys say their mode in their prefix.
        let test_key = ["sk_test_", "rk_test_"].iter().any(|prefix| secret_key.starts_with(prefix));
        config::check_mode(test_key, "secret_key")?;
        Ok(Settings {
            base_url: config::get("base_url")
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_string())
                .trim_end_matches('/')
                .to_string(),
            secret_key,
            webhook_secret: config::get("webhook_secret").filter(|s| !s.is_empty()),
            api_version: config::get("api_version").filter(|v| !v.is_empty()),
        })
    }

    fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![("Authorization".to_string(), format!("Bearer {}", self.secret_key))];
        if let Some(version) = &self.api_version {
            headers.push(("Stripe-Version".to_string(), version.clone()));
        }
        headers
    }

    /// Finds the intent made for `payment_id` by its metadata (Stripe's
    /// search, which may lag a minute behind).
    fn find_intent(&self, payment_id: &str) -> Result<RailOutcome, Failure> {
        let query = String::from_utf8(protocol::search_query(payment_id)).unwrap_or_default();
        let url = format!("{}/v1/payment_intents/search?{query}", self.base_url);
        let response = send("GET", url, self.headers(), Vec::new()).map_err(|e| e.into_failure("Stripe"))?;
        if response.status != 200 {
            let message = format!("Stripe's search answered {}", response.status);
            return Err(failure("PROVIDER_UNAVAILABLE", &message, true));
        }
        let found = protocol::parse_search(&response.body).map_err(|e| failure("BAD_PROVIDER_RESPONSE", &e, true))?;
        match found.into_iter().next() {
            Some(report) => Ok(outcome(report.standing, Some(report.id))),
            None => Err(failure("NOT_FOUND_AT_PROVIDER", "Stripe has no PaymentIntent for this payment (yet)", true)),
        }
    }

    /// Finds our refund among the PaymentIntent's refunds (by metadata).
    fn find_refund(&self, request: &RefundRequest) -> Result<RailOutcome, Failure> {
        let intent_id = request
            .provider_reference
            .as_deref()
            .filter(|r| r.starts_with("pi_") && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .ok_or_else(|| failure("INVALID_REQUEST", "the payment has no Stripe PaymentIntent", false))?;
        let url = format!("{}/v1/refunds?payment_intent={intent_id}&limit=100", self.base_url);
        let response = send("GET", url, self.headers(), Vec::new()).map_err(|e| e.into_failure("Stripe"))?;
        if response.status != 200 {
            let message = format!("Stripe's refund list answered {}", response.status);
            return Err(failure("PROVIDER_UNAVAILABLE", &message, true));
        }
        match protocol::find_refund_in_list(&response.body, &request.refund_id)
            .map_err(|e| failure("BAD_PROVIDER_RESPONSE", &e, true))?
        {
            Some(report) => Ok(outcome(report.standing, Some(report.id))),
            None => Err(failure("NOT_FOUND_AT_PROVIDER", "Stripe has no Refund for this refund (yet)", true)),
        }
    }

    /// `GET /v1/payment_intents/{id}`.
    fn retrieve_intent(&self, intent_id: &str) -> Result<protocol::IntentReport, Failure> {
        let valid_id =
            intent_id.starts_with("pi_") && intent_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid_id {
            return Err(failure("BAD_REFERENCE", "the stored provider reference is not a PaymentIntent id", false));
        }
        let url = format!("{}/v1/payment_intents/{intent_id}", self.base_url);
        let response = send("GET", url, self.headers(), Vec::new()).map_err(|e| e.into_failure("Stripe"))?;
        match response.status {
            200 => protocol::parse_intent(&response.body).map_err(|e| failure("BAD_PROVIDER_RESPONSE", &e, true)),
            status => {
                Err(failure("PROVIDER_UNAVAILABLE", &format!("Stripe answered {status} for the PaymentIntent"), true))
            }
        }
    }
}

fn send(method: &str, url: String, headers: Vec<(String, String)>, body: Vec<u8>) -> Result<Response, HttpError> {
    http::request(method, url).headers(headers).body(body).send()
}

fn failure(code: &str, message: &str, retryable: bool) -> Failure {
    Failure { code: code.to_string(), message: message.to_string(), retryable }
}

soxara_sdk::export_rail!(StripeCard);
