//! A minimal client of the Soxara merchant API, as a merchant would write
//! one: blocking, a few typed objects, and the one habit that matters for
//! money — every payment carries an idempotency key chosen *before* the first
//! attempt, and a request whose answer was lost is sent again under the same
//! key, so it can never charge twice.
//!
//! ```no_run
//! use merchant_client::{Client, NewPayment};
//! let client = Client::new("http://127.0.0.1:8080", "sxm_test_sk_...");
//! let payment = client.create_payment(&NewPayment::mobile_money(1250, "USD", "mtn_momo", "+231770001234"))?;
//! println!("{} is {}", payment.id, payment.status);
//! # Ok::<(), merchant_client::Error>(())
//! ```

use std::time::Duration;

use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};

/// Attempts for one request whose answer is lost in transit (same key each time).
const ATTEMPTS_MAX: u32 = 3;
/// The longest `Retry-After` this client waits out (the sandbox's is 6 s).
const RETRY_AFTER_MAX_S: u64 = 60;

/// A payment as the API returns it (the fields most merchants use).
#[derive(Debug, Clone, Deserialize)]
pub struct Payment {
    pub id: String,
    /// `processing`, `completed`, `failed`, `refunded` or `cancelled`.
    pub status: String,
    /// Minor units (cents): 1250 is $12.50.
    pub amount: u64,
    pub currency: String,
    pub fee: u64,
    pub net_amount: u64,
    #[serde(default)]
    pub amount_refunded: u64,
    pub idempotency_key: String,
    #[serde(default)]
    pub provider_reference: Option<String>,
    #[serde(default)]
    pub failure: Option<Failure>,
    pub livemode: bool,
}

/// Why a payment or refund failed.
#[derive(Debug, Clone, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    pub status: String,
    pub amount: u64,
    pub currency: String,
}

/// What to charge. Build with [`NewPayment::mobile_money`] or [`NewPayment::card`].
#[derive(Debug, Clone)]
pub struct NewPayment {
    body: Value,
}

impl NewPayment {
    /// From a mobile money number (`method`: `mtn_momo` or `orange_money`).
    pub fn mobile_money(amount: u64, currency: &str, method: &str, phone: &str) -> NewPayment {
        NewPayment {
            body: json!({"amount": amount, "currency": currency, "method": method, "customer": {"phone": phone}}),
        }
    }

    /// From a card: a test card number in sandbox, a payment-method token (`pm_…`) live.
    pub fn card(amount: u64, currency: &str, card: &str) -> NewPayment {
        let card = if card.starts_with("pm_") || card.starts_with("tok_") {
            json!({"token": card})
        } else {
            json!({"number": card})
        };
        NewPayment { body: json!({"amount": amount, "currency": currency, "method": "card", "card": card}) }
    }

    pub fn description(mut self, text: &str) -> NewPayment {
        self.body["description"] = json!(text);
        self
    }
}

#[derive(Debug)]
pub enum Error {
    /// The API answered with an error object (`{"error":{"code","message"}}`).
    Api { status: u16, code: String, message: String },
    /// No answer after every attempt; the idempotency key says where to look.
    Unreachable { idempotency_key: Option<String>, detail: String },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Api { status, code, message } => write!(f, "{status} {code}: {message}"),
            Error::Unreachable { idempotency_key: Some(key), detail } => {
                write!(f, "no answer ({detail}); look the request up with GET /v1/transactions/{key}")
            }
            Error::Unreachable { idempotency_key: None, detail } => write!(f, "no answer ({detail})"),
        }
    }
}

impl std::error::Error for Error {}

pub struct Client {
    base: String,
    key: String,
    agent: ureq::Agent,
}

impl Client {
    /// `base`: e.g. `https://api.soxara.com` or `http://127.0.0.1:8080`; `key`: a
    /// secret key (`sxm_test_sk_…` for the sandbox, `sxm_live_sk_…` for real money).
    pub fn new(base: &str, key: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Client { base: base.trim_end_matches('/').to_string(), key: key.to_string(), agent }
    }

    /// Creates a payment under a new idempotency key.
    pub fn create_payment(&self, payment: &NewPayment) -> Result<Payment, Error> {
        self.create_payment_with_key(&new_idempotency_key(), payment)
    }

    /// Creates a payment under `idempotency_key` (keep it with your order:
    /// the same key never makes a second payment).
    pub fn create_payment_with_key(&self, idempotency_key: &str, payment: &NewPayment) -> Result<Payment, Error> {
        self.send("POST", "/v1/payments", Some(idempotency_key), Some(&payment.body))
    }

    pub fn payment(&self, id: &str) -> Result<Payment, Error> {
        self.send("GET", &format!("/v1/payments/{id}"), None, None)
    }

    /// Refunds `amount` minor units of a completed payment (all of what is
    /// left: `None`) under a new idempotency key.
    pub fn refund(&self, payment_id: &str, amount: Option<u64>) -> Result<Refund, Error> {
        self.refund_with_key(&new_idempotency_key(), payment_id, amount)
    }

    /// As [`Client::refund`], under `idempotency_key` (keep it with the
    /// return, so a retry after a crash never refunds twice).
    pub fn refund_with_key(
        &self,
        idempotency_key: &str,
        payment_id: &str,
        amount: Option<u64>,
    ) -> Result<Refund, Error> {
        let mut body = json!({"payment_id": payment_id});
        if let Some(amount) = amount {
            body["amount"] = json!(amount);
        }
        self.send("POST", "/v1/refunds", Some(idempotency_key), Some(&body))
    }

    fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        idempotency_key: Option<&str>,
        body: Option<&Value>,
    ) -> Result<T, Error> {
        let url = format!("{}{path}", self.base);
        let mut last_error = String::new();
        // How long the gateway asked us to wait (a 429's Retry-After).
        let mut told_to_wait = Duration::ZERO;
        for attempt in 0..ATTEMPTS_MAX {
            if attempt > 0 {
                std::thread::sleep(told_to_wait.max(Duration::from_millis(200 << attempt)));
                told_to_wait = Duration::ZERO;
            }
            let request = ureq::http::Request::builder()
                .method(method)
                .uri(&url)
                .header("Authorization", format!("Bearer {}", self.key))
                .header("Content-Type", "application/json");
            let request = match idempotency_key {
                Some(key) => request.header("X-Idempotency-Key", key),
                None => request,
            };
            let body = body.map(Value::to_string).unwrap_or_default();
            let request =
                request.body(body).map_err(|e| Error::Unreachable { idempotency_key: None, detail: e.to_string() })?;
            let mut response = match self.agent.run(request) {
                Ok(response) => response,
                // Lost on the way: try again under the same key.
                Err(e) => {
                    last_error = e.to_string();
                    continue;
                }
            };
            let status = response.status().as_u16();
            if status == 429 {
                // Over the key's rate limit: refused before anything was
                // done, so any request may be sent again once the wait is over.
                let seconds = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
                told_to_wait = Duration::from_secs(seconds.unwrap_or(1).min(RETRY_AFTER_MAX_S));
                last_error = format!("HTTP 429 RATE_LIMIT_EXCEEDED (retry after {} s)", told_to_wait.as_secs());
                continue;
            }
            let value: Value = match response.body_mut().read_json() {
                Ok(value) => value,
                Err(e) => {
                    last_error = format!("HTTP {status} with an unreadable body: {e}");
                    continue;
                }
            };
            let text = |name: &str| value["error"][name].as_str().unwrap_or_default().to_string();
            // 409: the first attempt under this key is still running; 5xx: the
            // gateway could not finish it (a rail error leaves the payment
            // processing). Neither is a refusal: ask again under the same key.
            if idempotency_key.is_some() && (status == 409 || status >= 500) {
                last_error = format!("HTTP {status} {}", text("code"));
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(Error::Api { status, code: text("code"), message: text("message") });
            }
            return serde_json::from_value(value).map_err(|e| Error::Api {
                status,
                code: "UNEXPECTED_RESPONSE".into(),
                message: e.to_string(),
            });
        }
        Err(Error::Unreachable { idempotency_key: idempotency_key.map(str::to_string), detail: last_error })
    }
}

/// 128 random bits, hex.
pub fn new_idempotency_key() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
