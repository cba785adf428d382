//! A fake Stripe API on a loopback port, as documented: PaymentIntents
//! created and confirmed from a form body (`Bearer sk_…`), `Idempotency-Key`
//! replaying the first answer and refusing a different request under the
//! same key, `402` card errors, retrieval by id, and webhooks signed with
//! `Stripe-Signature: t=…,v1=HMAC-SHA256("{t}.{body}")`.
//!
//! Payment methods decide outcomes as Stripe's test payment methods do:
//! `pm_card_chargeDeclined` (generic decline),
//! `pm_card_chargeDeclinedInsufficientFunds`, `pm_card_chargeDeclinedExpiredCard`,
//! `pm_card_authenticationRequired` (needs 3-D Secure); anything else
//! succeeds. `pm_card_processing` (this fake's own) stays `processing` until
//! the test completes it. Scripted faults: a `500` before anything runs
//! (nothing saved), or a saved answer sent only after a long wait.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::serve;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

pub const SECRET_KEY: &str = "sk_live_fake_51SoxaraSecretKey";
pub const WEBHOOK_SECRET: &str = "whsec_fake_soxara_endpoint_secret";

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// `500` before execution begins: nothing saved, safe to retry.
    ServerErrorBeforeExecution,
    /// `500` after execution began: the intent exists, and the `500` is
    /// saved and replayed for the key, as Stripe does.
    ServerErrorAfterExecution,
    /// The intent is created and its answer saved, but sent after this wait.
    SlowAnswer(Duration),
}

pub struct FakeStripe {
    pub addr: SocketAddr,
    state: Arc<StripeState>,
}

#[derive(Default)]
struct StripeState {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    intents: HashMap<String, Value>,
    refunds: HashMap<String, Value>,
    /// Idempotency-Key → (the request's form, the saved status and body).
    saved: HashMap<String, (String, u16, Value)>,
    create_posts: usize,
    faults: VecDeque<Fault>,
    webhook_url: Option<String>,
    next_id: usize,
    /// Every Idempotency-Key seen, in order.
    keys: Vec<String>,
    /// Refunds created from now on are `pending` for this many reads.
    refunds_pending_reads: usize,
    refund_reads: HashMap<String, usize>,
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let state = Arc::new(StripeState::default());
        let app = Router::new()
            .route("/v1/payment_intents", post(create_intent))
            .route("/v1/payment_intents/search", get(search_intents))
            .route("/v1/refunds", post(create_refund).get(list_refunds))
            .route("/v1/refunds/{id}", get(retrieve_refund))
            .route("/v1/payment_intents/{id}", get(retrieve_intent))
            .with_state(Arc::clone(&state));
        let addr = serve("127.0.0.1:0", app).await.expect("a loopback port");
        FakeStripe { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where signed events go (the gateway's `/v1/callbacks/stripe-card`).
    pub fn send_webhooks_to(&self, url: &str) {
        self.state.inner.lock().unwrap().webhook_url = Some(url.to_string());
    }

    pub fn push_fault(&self, fault: Fault) {
        self.state.inner.lock().unwrap().faults.push_back(fault);
    }

    /// Every `POST /v1/payment_intents` received.
    pub fn create_posts(&self) -> usize {
        self.state.inner.lock().unwrap().create_posts
    }

    /// PaymentIntents that exist for our payment id: each is one charge attempt.
    pub fn intents_for(&self, payment_id: &str) -> Vec<Value> {
        let inner = self.state.inner.lock().unwrap();
        inner.intents.values().filter(|pi| pi["metadata"]["soxara_payment_id"] == payment_id).cloned().collect()
    }

    /// Refunds created from now on stay `pending` for `reads` retrievals,
    /// then succeed (as a bank's slow refund does).
    pub fn make_refunds_pending(&self, reads: usize) {
        self.state.inner.lock().unwrap().refunds_pending_reads = reads;
    }

    /// Refunds made against this PaymentIntent.
    pub fn refunds_for(&self, intent_id: &str) -> Vec<Value> {
        let inner = self.state.inner.lock().unwrap();
        inner.refunds.values().filter(|r| r["payment_intent"] == intent_id).cloned().collect()
    }

    pub fn idempotency_keys(&self) -> Vec<String> {
        self.state.inner.lock().unwrap().keys.clone()
    }

    /// A `processing` intent succeeds, and `payment_intent.succeeded` is sent.
    pub async fn complete(&self, intent_id: &str) -> reqwest::StatusCode {
        let intent = {
            let mut inner = self.state.inner.lock().unwrap();
            let intent = inner.intents.get_mut(intent_id).expect("a known intent");
            intent["status"] = json!("succeeded");
            intent.clone()
        };
        self.send_event("payment_intent.succeeded", intent).await
    }

    /// The customer's bank opens dispute `dispute_id`: `charge.dispute.created` is sent.
    pub async fn open_dispute(
        &self,
        dispute_id: &str,
        intent_id: &str,
        amount: u64,
        reason: &str,
    ) -> reqwest::StatusCode {
        let currency = self.state.inner.lock().unwrap().intents[intent_id]["currency"].clone();
        let dispute = json!({
            "id": dispute_id,
            "object": "dispute",
            "amount": amount,
            "currency": currency,
            "reason": reason,
            "status": "needs_response",
            "payment_intent": intent_id,
            "charge": format!("ch_fake_{}", &intent_id[3..]),
        });
        self.send_event("charge.dispute.created", dispute).await
    }

    /// Sends a signed event now; returns the gateway's answer.
    pub async fn send_event(&self, kind: &str, object: Value) -> reqwest::StatusCode {
        let url = self.state.inner.lock().unwrap().webhook_url.clone().expect("send_webhooks_to was called");
        let event =
            json!({ "id": format!("evt_fake_{kind}"), "object": "event", "type": kind, "data": { "object": object } });
        let body = event.to_string();
        let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let header = format!("t={now_s},v1={}", sign(WEBHOOK_SECRET, now_s, body.as_bytes()));
        signed_post(&url, &header, body).await
    }
}

/// Posts a body with a given `Stripe-Signature` header (also for forgeries).
pub async fn signed_post(url: &str, signature_header: &str, body: String) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(url)
        .header("stripe-signature", signature_header)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the gateway answers")
        .status()
}

/// Stripe's `v1` signature.
pub fn sign(secret: &str, timestamp_s: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp_s}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn stripe_error(status: StatusCode, kind: &str, code: &str, extra: Value) -> (u16, Value) {
    let mut error = json!({ "type": kind, "code": code, "message": format!("fake Stripe: {code}") });
    if let Value::Object(fields) = extra {
        for (k, v) in fields {
            error[k] = v;
        }
    }
    (status.as_u16(), json!({ "error": error }))
}

/// Decodes `application/x-www-form-urlencoded` into pairs.
fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let decode = |text: &str| -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Stripe's answer to a missing or wrong secret key.
fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": { "type": "invalid_request_error" } }))).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {SECRET_KEY}"))
}

async fn create_intent(State(state): State<Arc<StripeState>>, headers: HeaderMap, body: Bytes) -> Response {
    let (status, answer, wait) = {
        let mut inner = state.inner.lock().unwrap();
        inner.create_posts += 1;
        if !authorized(&headers) {
            let (s, b) = stripe_error(StatusCode::UNAUTHORIZED, "invalid_request_error", "api_key_invalid", json!({}));
            return (StatusCode::from_u16(s).unwrap(), axum::Json(b)).into_response();
        }
        let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        inner.keys.push(key.clone());
        let form_text = String::from_utf8_lossy(&body).into_owned();
        let fault = inner.faults.pop_front();
        if matches!(fault, Some(Fault::ServerErrorBeforeExecution)) {
            let (s, b) = stripe_error(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "api_error", json!({}));
            return (StatusCode::from_u16(s).unwrap(), axum::Json(b)).into_response();
        }
        let saved = if key.is_empty() { None } else { inner.saved.get(&key).cloned() };
        let (status, answer) = match saved {
            Some((first_form, status, answer)) if first_form == form_text => (status, answer),
            Some(_) => (
                400,
                json!({ "error": { "type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters they were first used with." } }),
            ),
            None => {
                let (mut status, mut answer) = execute(&mut inner, &parse_form(&body));
                if matches!(fault, Some(Fault::ServerErrorAfterExecution)) {
                    (status, answer) =
                        stripe_error(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "api_error", json!({}));
                }
                if !key.is_empty() {
                    inner.saved.insert(key, (form_text, status, answer.clone()));
                }
                (status, answer)
            }
        };
        let wait = match fault {
            Some(Fault::SlowAnswer(wait)) => Some(wait),
            _ => None,
        };
        (status, answer, wait)
    };
    if let Some(wait) = wait {
        tokio::time::sleep(wait).await;
    }
    (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response()
}

/// Runs a create-and-confirm: stores the intent, answers as Stripe would.
fn execute(inner: &mut Inner, form: &HashMap<String, String>) -> (u16, Value) {
    let amount = form.get("amount").and_then(|a| a.parse::<u64>().ok()).filter(|a| *a > 0);
    let currency = form.get("currency").filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()));
    let method = form.get("payment_method").or_else(|| form.get("payment_method_data[card][token]"));
    let (Some(amount), Some(currency), Some(method)) = (amount, currency, method) else {
        return stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", "parameter_missing", json!({}));
    };
    if form.get("confirm").map(String::as_str) != Some("true") {
        return stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", "parameter_invalid", json!({}));
    }
    inner.next_id += 1;
    let id = format!("pi_fake{:06}", inner.next_id);
    let metadata: serde_json::Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("metadata[")?.strip_suffix(']')?.to_string(), json!(v))))
        .collect();
    let decline = |code: &str, decline_code: Option<&str>| (code.to_string(), decline_code.map(str::to_string));
    let (status, error) = match method.as_str() {
        "pm_card_chargeDeclined" => {
            ("requires_payment_method", Some(decline("card_declined", Some("generic_decline"))))
        }
        "pm_card_chargeDeclinedInsufficientFunds" => {
            ("requires_payment_method", Some(decline("card_declined", Some("insufficient_funds"))))
        }
        "pm_card_chargeDeclinedExpiredCard" => ("requires_payment_method", Some(decline("expired_card", None))),
        "pm_card_authenticationRequired" if form.get("error_on_requires_action").is_some_and(|v| v == "true") => {
            ("requires_payment_method", Some(decline("authentication_required", None)))
        }
        "pm_card_authenticationRequired" => ("requires_action", None),
        "pm_card_processing" => ("processing", None),
        _ => ("succeeded", None),
    };
    let mut intent = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "currency": currency,
        "status": status,
        "metadata": metadata,
        "description": form.get("description"),
    });
    if let Some((code, decline_code)) = &error {
        intent["last_payment_error"] = json!({ "type": "card_error", "code": code, "decline_code": decline_code });
    }
    inner.intents.insert(id.clone(), intent.clone());
    match error {
        Some((code, decline_code)) => stripe_error(
            StatusCode::PAYMENT_REQUIRED,
            "card_error",
            &code,
            json!({ "decline_code": decline_code, "payment_intent": intent }),
        ),
        None => (200, intent),
    }
}

/// `POST /v1/refunds`: refunds a succeeded intent, at most what is left;
/// idempotent by key like every POST.
async fn create_refund(State(state): State<Arc<StripeState>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut inner = state.inner.lock().unwrap();
    if !authorized(&headers) {
        let (s, b) = stripe_error(StatusCode::UNAUTHORIZED, "invalid_request_error", "api_key_invalid", json!({}));
        return (StatusCode::from_u16(s).unwrap(), axum::Json(b)).into_response();
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    inner.keys.push(key.clone());
    let form_text = String::from_utf8_lossy(&body).into_owned();
    if let Some((first_form, status, answer)) = inner.saved.get(&key).cloned() {
        if first_form == form_text {
            return (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response();
        }
        let error = json!({ "error": { "type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters they were first used with." } });
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    }
    let form = parse_form(&body);
    let intent = form.get("payment_intent").and_then(|id| inner.intents.get(id)).cloned();
    let amount = form.get("amount").and_then(|a| a.parse::<u64>().ok());
    let (status, answer) = match (intent, amount) {
        (Some(intent), Some(amount)) if intent["status"] == "succeeded" => {
            let refunded: u64 = inner
                .refunds
                .values()
                .filter(|r| r["payment_intent"] == intent["id"])
                .filter_map(|r| r["amount"].as_u64())
                .sum();
            if refunded + amount > intent["amount"].as_u64().unwrap_or(0) {
                stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", "amount_too_large", json!({}))
            } else {
                let id = format!("re_fake{:06}", inner.refunds.len() + 1);
                let metadata: serde_json::Map<String, Value> = form
                    .iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix("metadata[")?.strip_suffix(']')?.to_string(), json!(v))))
                    .collect();
                let status = if inner.refunds_pending_reads > 0 { "pending" } else { "succeeded" };
                let refund = json!({
                    "id": id, "object": "refund", "amount": amount, "currency": intent["currency"],
                    "payment_intent": intent["id"], "status": status, "metadata": metadata,
                });
                inner.refunds.insert(id, refund.clone());
                (200, refund)
            }
        }
        (Some(_), Some(_)) => {
            stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", "charge_not_refundable", json!({}))
        }
        _ => stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", "parameter_missing", json!({})),
    };
    if !key.is_empty() {
        inner.saved.insert(key, (form_text, status, answer.clone()));
    }
    (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response()
}

async fn retrieve_refund(
    State(state): State<Arc<StripeState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut inner = state.inner.lock().unwrap();
    let pending_reads = inner.refunds_pending_reads;
    let reads = {
        let reads = inner.refund_reads.entry(id.clone()).or_default();
        *reads += 1;
        *reads
    };
    if let Some(refund) = inner.refunds.get_mut(&id).filter(|r| r["status"] == "pending" && reads >= pending_reads) {
        refund["status"] = json!("succeeded");
    }
    match (authorized(&headers), inner.refunds.get(&id)) {
        (true, Some(refund)) => axum::Json(refund.clone()).into_response(),
        _ => {
            let (s, b) = stripe_error(StatusCode::NOT_FOUND, "invalid_request_error", "resource_missing", json!({}));
            (StatusCode::from_u16(s).unwrap(), axum::Json(b)).into_response()
        }
    }
}

/// `GET /v1/refunds?payment_intent=pi_…`.
async fn list_refunds(
    State(state): State<Arc<StripeState>>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let inner = state.inner.lock().unwrap();
    let wanted = query.get("payment_intent").cloned().unwrap_or_default();
    let data: Vec<Value> = inner.refunds.values().filter(|r| r["payment_intent"] == wanted.as_str()).cloned().collect();
    axum::Json(json!({ "object": "list", "data": data, "has_more": false })).into_response()
}

/// `GET /v1/payment_intents/search?query=metadata['key']:'value'` (only
/// the one query form the gateway sends).
async fn search_intents(
    State(state): State<Arc<StripeState>>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let wanted = query.get("query").and_then(|q| {
        let (key, value) = q.strip_prefix("metadata['")?.split_once("']:'")?;
        Some((key.to_string(), value.strip_suffix('\'')?.to_string()))
    });
    let Some((key, value)) = wanted else {
        let (s, b) = stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", "parameter_invalid", json!({}));
        return (StatusCode::from_u16(s).unwrap(), axum::Json(b)).into_response();
    };
    let inner = state.inner.lock().unwrap();
    let data: Vec<Value> =
        inner.intents.values().filter(|pi| pi["metadata"][key.as_str()] == value.as_str()).cloned().collect();
    axum::Json(json!({ "object": "search_result", "data": data, "has_more": false })).into_response()
}

async fn retrieve_intent(
    State(state): State<Arc<StripeState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let inner = state.inner.lock().unwrap();
    match inner.intents.get(&id) {
        Some(intent) => axum::Json(intent.clone()).into_response(),
        None => {
            let (s, b) = stripe_error(StatusCode::NOT_FOUND, "invalid_request_error", "resource_missing", json!({}));
            (StatusCode::from_u16(s).unwrap(), axum::Json(b)).into_response()
        }
    }
}
