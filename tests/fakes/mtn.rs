//! A fake MTN MoMo Open API (collection and disbursement products) on a
//! loopback port, as documented: a token per product with Basic API user and
//! key and the product's subscription key; request to pay, refund and
//! transfer (`202`, or `409 RESOURCE_ALREADY_EXIST` for a repeated
//! `X-Reference-Id`); status by reference (`404` when unknown); and a
//! callback `PUT` to `X-Callback-Url`.
//!
//! Outcomes follow MTN's sandbox MSISDN table (`46733123450` failed,
//! `…51` rejected, `…52` expired, `…53` pending for ever, `…54` delayed,
//! `…55` payer not found, … `…63` could not perform); any other number
//! succeeds. Transfers follow the disbursement rows (`…50` failed … `…55`
//! not enough funds, `…57` payee not found, …). Refunds succeed when they
//! name a successful request to pay, stay within what it collected and the
//! disbursement balance covers them. Scripted faults make the next request
//! (to pay, refund or transfer) fail with a 5xx (not stored) or answer late
//! (stored, then a slow `202`).

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
use base64::Engine as _;
use serde_json::{Value, json};

pub const SUBSCRIPTION_KEY: &str = "fake-collection-subscription-key";
pub const DISBURSEMENT_SUBSCRIPTION_KEY: &str = "fake-disbursement-subscription-key";
pub const API_USER: &str = "0b1c6f3e-6a57-4a39-9a8e-2a2f0c1d5e77";
pub const API_KEY: &str = "fake-mtn-api-key-f00d";
/// A production-style environment: MTN's own sandbox takes only EUR, while
/// Liberia's production takes LRD and USD, which is what the gateway sends.
pub const TARGET_ENVIRONMENT: &str = "mtnliberia";

/// What the next request to pay, refund or transfer meets.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// `500` before anything is stored.
    ServerError,
    /// Stored (the customer is asked), then `202` only after this wait.
    SlowAccept(Duration),
}

pub struct FakeMtn {
    pub addr: SocketAddr,
    state: Arc<MtnState>,
}

#[derive(Default)]
struct MtnState {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Valid tokens, by product (`collection`, `disbursement`).
    tokens: HashMap<&'static str, Vec<String>>,
    /// Tokens issued, including revoked ones.
    tokens_issued: usize,
    /// By `X-Reference-Id`.
    requests: HashMap<String, RequestToPay>,
    /// Every `POST requesttopay` received, accepted or not.
    request_to_pay_posts: usize,
    /// Refunds and transfers, by `X-Reference-Id`.
    disbursements: HashMap<String, Disbursement>,
    /// What the gateway's disbursement account holds, in minor units.
    disbursement_balance: u64,
    faults: VecDeque<Fault>,
    callbacks_on: bool,
    callbacks_sent: usize,
    /// Callbacks the gateway has answered (any status).
    callbacks_answered: usize,
    /// Status reads a "delayed" payer's request stays pending for.
    delayed_reads: usize,
    /// Answer status reads for unknown references with SUCCESSFUL (a
    /// provider gone wrong), instead of 404.
    claim_unknown_successful: bool,
}

/// A refund or a transfer.
struct Disbursement {
    kind: &'static str,
    body: Value,
    status: &'static str,
    reason: Option<&'static str>,
    /// Status reads; a "delayed" one succeeds after `delayed_reads` of them.
    reads: usize,
    delayed: bool,
}

#[derive(Clone)]
struct RequestToPay {
    body: Value,
    status: &'static str,
    reason: Option<&'static str>,
    reads: usize,
    delayed: bool,
}

impl FakeMtn {
    /// Starts the fake; callbacks are sent unless turned off.
    pub async fn start() -> FakeMtn {
        let state = Arc::new(MtnState::default());
        {
            let mut inner = state.inner.lock().unwrap();
            inner.callbacks_on = true;
            inner.delayed_reads = 3;
            inner.disbursement_balance = 100_000_000; // 1,000,000.00
        }
        let app = Router::new()
            .route("/collection/token/", post(collection_token))
            .route("/collection/v1_0/requesttopay", post(request_to_pay))
            .route("/collection/v1_0/requesttopay/{reference}", get(status))
            .route("/disbursement/token/", post(disbursement_token))
            .route("/disbursement/v1_0/refund", post(refund))
            .route("/disbursement/v1_0/refund/{reference}", get(refund_status))
            .route("/disbursement/v1_0/transfer", post(transfer))
            .route("/disbursement/v1_0/transfer/{reference}", get(transfer_status))
            .with_state(Arc::clone(&state));
        let addr = serve("127.0.0.1:0", app).await.expect("a loopback port");
        FakeMtn { addr, state }
    }

    /// Access tokens issued so far, for every product.
    pub fn tokens_issued(&self) -> usize {
        self.state.inner.lock().unwrap().tokens_issued
    }

    /// Every token issued so far stops working (as when the provider
    /// rotates them before they expire).
    pub fn revoke_tokens(&self) {
        self.state.inner.lock().unwrap().tokens.clear();
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether final outcomes are also sent to `X-Callback-Url`.
    pub fn set_callbacks(&self, on: bool) {
        self.state.inner.lock().unwrap().callbacks_on = on;
    }

    /// The next requests to pay meet these faults, in order.
    pub fn push_fault(&self, fault: Fault) {
        self.state.inner.lock().unwrap().faults.push_back(fault);
    }

    /// From now on, status reads for references it never stored answer
    /// SUCCESSFUL: a provider (or plugin) claiming what it should not.
    pub fn claim_unknown_references_successful(&self) {
        self.state.inner.lock().unwrap().claim_unknown_successful = true;
    }

    /// Sets what the gateway's disbursement account holds (minor units).
    pub fn set_disbursement_balance(&self, minor: u64) {
        self.state.inner.lock().unwrap().disbursement_balance = minor;
    }

    pub fn disbursement_balance(&self) -> u64 {
        self.state.inner.lock().unwrap().disbursement_balance
    }

    /// Refunds or transfers (`kind`) stored for this `externalId`: each one
    /// moves money once.
    pub fn disbursements_for(&self, kind: &str, external_id: &str) -> usize {
        let inner = self.state.inner.lock().unwrap();
        inner.disbursements.values().filter(|d| d.kind == kind && d.body["externalId"] == external_id).count()
    }

    /// The stored refund or transfer (`kind`) for this `externalId`, as its
    /// status answer.
    pub fn disbursement_body(&self, kind: &str, external_id: &str) -> Option<Value> {
        let inner = self.state.inner.lock().unwrap();
        let found = inner.disbursements.values().find(|d| d.kind == kind && d.body["externalId"] == external_id);
        found.map(disbursement_body)
    }

    /// The `X-Reference-Id` of the request to pay for this `externalId`.
    pub fn request_reference(&self, external_id: &str) -> Option<String> {
        let inner = self.state.inner.lock().unwrap();
        inner.requests.iter().find(|(_, r)| r.body["externalId"] == external_id).map(|(k, _)| k.clone())
    }

    /// Every `POST requesttopay` received.
    pub fn request_to_pay_posts(&self) -> usize {
        self.state.inner.lock().unwrap().request_to_pay_posts
    }

    /// Requests to pay stored for this `externalId`: each one asks the
    /// customer to pay once.
    pub fn charges_for(&self, external_id: &str) -> usize {
        let inner = self.state.inner.lock().unwrap();
        inner.requests.values().filter(|r| r.body["externalId"] == external_id).count()
    }

    pub fn callbacks_sent(&self) -> usize {
        self.state.inner.lock().unwrap().callbacks_sent
    }

    /// Waits until every callback sent so far has been answered, so that
    /// none is still being handled (and using a token) behind the test's
    /// back. Panics after 10 s.
    pub async fn callbacks_settled(&self) {
        for _ in 0..1_000 {
            {
                let inner = self.state.inner.lock().unwrap();
                if inner.callbacks_answered == inner.callbacks_sent {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("callbacks sent but not answered within 10 s");
    }

    /// The stored request body for this `externalId`.
    pub fn request_body(&self, external_id: &str) -> Option<Value> {
        let inner = self.state.inner.lock().unwrap();
        inner.requests.values().find(|r| r.body["externalId"] == external_id).map(|r| r.body.clone())
    }
}

/// MTN's sandbox outcome for a payer MSISDN.
fn sandbox_outcome(msisdn: &str) -> (&'static str, Option<&'static str>, bool) {
    match msisdn {
        "46733123450" => ("FAILED", Some("PAYER_FAILED"), false),
        "46733123451" => ("FAILED", Some("APPROVAL_REJECTED"), false),
        "46733123452" => ("FAILED", Some("EXPIRED"), false),
        "46733123453" => ("PENDING", None, false),
        "46733123454" => ("PENDING", None, true),
        "46733123455" => ("FAILED", Some("PAYER_NOT_FOUND"), false),
        "46733123456" => ("FAILED", Some("PAYEE_NOT_ALLOWED_TO_RECEIVE"), false),
        "46733123457" => ("FAILED", Some("NOT_ALLOWED"), false),
        "46733123458" => ("FAILED", Some("NOT_ALLOWED_TARGET_ENVIRONMENT"), false),
        "46733123459" => ("FAILED", Some("INVALID_CALLBACK_URL_HOST"), false),
        "46733123460" => ("FAILED", Some("INVALID_CURRENCY"), false),
        "46733123461" => ("FAILED", Some("INTERNAL_PROCESSING_ERROR"), false),
        "46733123462" => ("FAILED", Some("SERVICE_UNAVAILABLE"), false),
        "46733123463" => ("FAILED", Some("COULD_NOT_PERFORM_TRANSACTION"), false),
        _ => ("SUCCESSFUL", None, false),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({ "code": code, "message": message }))).into_response()
}

async fn collection_token(State(state): State<Arc<MtnState>>, headers: HeaderMap) -> Response {
    token(&state, &headers, "collection")
}

async fn disbursement_token(State(state): State<Arc<MtnState>>, headers: HeaderMap) -> Response {
    token(&state, &headers, "disbursement")
}

fn subscription_key(product: &str) -> &'static str {
    if product == "collection" { SUBSCRIPTION_KEY } else { DISBURSEMENT_SUBSCRIPTION_KEY }
}

fn token(state: &MtnState, headers: &HeaderMap, product: &'static str) -> Response {
    if header(headers, "ocp-apim-subscription-key") != subscription_key(product) {
        return error(StatusCode::UNAUTHORIZED, "401", "Access denied due to invalid subscription key.");
    }
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{API_USER}:{API_KEY}"));
    if header(headers, "authorization") != format!("Basic {expected}") {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": "login_failed" }))).into_response();
    }
    let mut inner = state.inner.lock().unwrap();
    inner.tokens_issued += 1;
    let token = format!("fake-{product}-token-{}", inner.tokens_issued);
    inner.tokens.entry(product).or_default().push(token.clone());
    axum::Json(json!({ "access_token": token, "token_type": "access_token", "expires_in": 3600 })).into_response()
}

/// The refusal for a `product` call missing the headers every one carries
/// (a token is good for its own product only).
fn refusal(inner: &Inner, headers: &HeaderMap, product: &str) -> Option<Response> {
    if header(headers, "ocp-apim-subscription-key") != subscription_key(product) {
        return Some(error(StatusCode::UNAUTHORIZED, "401", "Access denied due to invalid subscription key."));
    }
    let bearer = header(headers, "authorization").strip_prefix("Bearer ").unwrap_or("");
    if !inner.tokens.get(product).is_some_and(|tokens| tokens.iter().any(|t| t == bearer)) {
        return Some(error(StatusCode::UNAUTHORIZED, "401", "Access denied due to invalid access token."));
    }
    if header(headers, "x-target-environment") != TARGET_ENVIRONMENT {
        return Some(error(StatusCode::BAD_REQUEST, "NOT_ALLOWED_TARGET_ENVIRONMENT", "Unknown target environment."));
    }
    None
}

fn is_uuid_v4(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| hex(p))
        && parts[2].starts_with('4')
        && matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b')
}

/// Checks what every request body carries as MTN documents it, and gives
/// the amount in minor units (USD and LRD have two decimals).
fn valid_common(body: &Value) -> Result<u64, &'static str> {
    let amount = body["amount"].as_str().ok_or("amount must be a string")?;
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    if whole.is_empty() || fraction.len() > 2 || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return Err("amount is not a decimal");
    }
    let minor = format!("{whole}{fraction:0<2}").parse::<u64>().map_err(|_| "amount is too large")?;
    if !matches!(body["currency"].as_str(), Some("USD" | "LRD")) {
        return Err("currency not allowed in this environment");
    }
    if body["externalId"].as_str().is_none_or(str::is_empty) {
        return Err("externalId is required");
    }
    for note in ["payerMessage", "payeeNote"] {
        let text = body[note].as_str().unwrap_or("");
        if text.chars().count() > 160 || text.contains('\'') {
            return Err("payerMessage and payeeNote: at most 160 characters, no apostrophes");
        }
    }
    Ok(minor)
}

/// The MSISDN of a `payer` or `payee` party.
fn party<'a>(body: &'a Value, role: &str) -> Result<&'a str, &'static str> {
    if body[role]["partyIdType"] != "MSISDN" {
        return Err("partyIdType must be MSISDN");
    }
    body[role]["partyId"].as_str().filter(|p| p.bytes().all(|b| b.is_ascii_digit())).ok_or("partyId")
}

/// Checks a request-to-pay body as MTN documents it.
fn valid_body(body: &Value) -> Result<&str, &'static str> {
    valid_common(body)?;
    party(body, "payer")
}

/// What every create call (request to pay, refund, transfer) is checked for
/// first: the `product`'s headers, a UUID v4 reference, a JSON body.
fn read_create(
    inner: &Inner,
    headers: &HeaderMap,
    body: &[u8],
    product: &str,
) -> Result<(String, Value), Box<Response>> {
    if let Some(refused) = refusal(inner, headers, product) {
        return Err(Box::new(refused));
    }
    let reference = header(headers, "x-reference-id").to_string();
    if !is_uuid_v4(&reference) {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "INVALID_REFERENCE_ID",
            "X-Reference-Id must be a UUID v4.",
        )));
    }
    let body = serde_json::from_slice::<Value>(body)
        .map_err(|_| Box::new(error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "The body is not JSON.")))?;
    Ok((reference, body))
}

/// Once the body is valid: the next scripted fault (a 5xx stores nothing),
/// then MTN's refusal of a `repeated` reference.
fn take_fault(inner: &mut Inner, repeated: bool) -> Result<Option<Fault>, Box<Response>> {
    let fault = inner.faults.pop_front();
    if matches!(fault, Some(Fault::ServerError)) {
        return Err(Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_PROCESSING_ERROR",
            "Try again later.",
        )));
    }
    if repeated {
        return Err(Box::new(error(
            StatusCode::CONFLICT,
            "RESOURCE_ALREADY_EXIST",
            "Duplicated reference id. Creation of resource failed.",
        )));
    }
    Ok(fault)
}

async fn request_to_pay(State(state): State<Arc<MtnState>>, headers: HeaderMap, body: Bytes) -> Response {
    let (fault, callback) = {
        let mut inner = state.inner.lock().unwrap();
        inner.request_to_pay_posts += 1;
        let (reference, body) = match read_create(&inner, &headers, &body, "collection") {
            Ok(read) => read,
            Err(refused) => return *refused,
        };
        let msisdn = match valid_body(&body) {
            Ok(msisdn) => msisdn.to_string(),
            Err(why) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", why),
        };
        let repeated = inner.requests.contains_key(&reference);
        let fault = match take_fault(&mut inner, repeated) {
            Ok(fault) => fault,
            Err(refused) => return *refused,
        };
        let (status, reason, delayed) = sandbox_outcome(&msisdn);
        let request = RequestToPay { body, status, reason, reads: 0, delayed };
        let callback_url = header(&headers, "x-callback-url").to_string();
        let callback = (inner.callbacks_on && status != "PENDING" && !callback_url.is_empty())
            .then(|| (callback_url, status_body(&reference, &request)));
        if callback.is_some() {
            inner.callbacks_sent += 1;
        }
        inner.requests.insert(reference, request);
        (fault, callback)
    };
    if let Some((url, body)) = callback {
        call_back(&state, url, body);
    }
    if let Some(Fault::SlowAccept(wait)) = fault {
        tokio::time::sleep(wait).await;
    }
    StatusCode::ACCEPTED.into_response()
}

/// MTN calls back once the outcome is known, normally well after the `202`
/// (unless the 202 itself is late).
fn call_back(state: &Arc<MtnState>, url: String, body: Value) {
    let state = Arc::clone(state);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = reqwest::Client::new().put(url).json(&body).send().await;
        state.inner.lock().unwrap().callbacks_answered += 1;
    });
}

async fn refund(State(state): State<Arc<MtnState>>, headers: HeaderMap, body: Bytes) -> Response {
    disburse(state, headers, body, "refund").await
}

async fn transfer(State(state): State<Arc<MtnState>>, headers: HeaderMap, body: Bytes) -> Response {
    disburse(state, headers, body, "transfer").await
}

/// A refund or transfer: stored and answered `202`; the money leaves the
/// disbursement balance when it succeeds (which it does at once, unless the
/// payee's sandbox number says otherwise).
async fn disburse(state: Arc<MtnState>, headers: HeaderMap, body: Bytes, kind: &'static str) -> Response {
    let (fault, callback) = {
        let mut inner = state.inner.lock().unwrap();
        let (reference, body) = match read_create(&inner, &headers, &body, "disbursement") {
            Ok(read) => read,
            Err(refused) => return *refused,
        };
        let checked = valid_common(&body).and_then(|amount| match kind {
            "refund" => body["referenceIdToRefund"]
                .as_str()
                .filter(|r| is_uuid_v4(r))
                .map(|_| (amount, None))
                .ok_or("referenceIdToRefund must be a UUID v4"),
            _ => party(&body, "payee").map(|msisdn| (amount, Some(msisdn.to_string()))),
        });
        let (amount, payee) = match checked {
            Ok(checked) => checked,
            Err(why) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", why),
        };
        let repeated = inner.disbursements.contains_key(&reference);
        let fault = match take_fault(&mut inner, repeated) {
            Ok(fault) => fault,
            Err(refused) => return *refused,
        };
        let (mut status, mut reason, delayed) = match &payee {
            Some(msisdn) => transfer_outcome(msisdn),
            None => refund_outcome(&inner, &body, amount),
        };
        if status == "SUCCESSFUL" {
            if amount > inner.disbursement_balance {
                (status, reason) = ("FAILED", Some("NOT_ENOUGH_FUNDS"));
            } else {
                inner.disbursement_balance -= amount;
            }
        }
        let disbursement = Disbursement { kind, body, status, reason, reads: 0, delayed };
        let callback_url = header(&headers, "x-callback-url").to_string();
        let callback = (inner.callbacks_on && status != "PENDING" && !callback_url.is_empty())
            .then(|| (callback_url, disbursement_body(&disbursement)));
        if callback.is_some() {
            inner.callbacks_sent += 1;
        }
        inner.disbursements.insert(reference, disbursement);
        (fault, callback)
    };
    if let Some((url, body)) = callback {
        call_back(&state, url, body);
    }
    if let Some(Fault::SlowAccept(wait)) = fault {
        tokio::time::sleep(wait).await;
    }
    StatusCode::ACCEPTED.into_response()
}

/// A refund succeeds when it names a successful request to pay and stays
/// within what that collected, counting earlier successful refunds.
fn refund_outcome(inner: &Inner, body: &Value, amount: u64) -> (&'static str, Option<&'static str>, bool) {
    let target = body["referenceIdToRefund"].as_str().unwrap_or("");
    let Some(paid) = inner.requests.get(target).filter(|r| r.status == "SUCCESSFUL") else {
        return ("FAILED", Some("NOT_FOUND"), false);
    };
    let collected = valid_common(&paid.body).unwrap_or(0);
    let refunded: u64 = inner
        .disbursements
        .values()
        .filter(|d| d.kind == "refund" && d.status == "SUCCESSFUL" && d.body["referenceIdToRefund"] == target)
        .map(|d| valid_common(&d.body).unwrap_or(0))
        .sum();
    if body["currency"] != paid.body["currency"] || refunded + amount > collected {
        return ("FAILED", Some("NOT_ALLOWED"), false);
    }
    ("SUCCESSFUL", None, false)
}

/// MTN's sandbox outcome for a transfer's payee MSISDN.
fn transfer_outcome(msisdn: &str) -> (&'static str, Option<&'static str>, bool) {
    match msisdn {
        "46733123450" => ("FAILED", Some("PAYEE_FAILED"), false),
        "46733123451" => ("FAILED", Some("APPROVAL_REJECTED"), false),
        "46733123452" => ("FAILED", Some("EXPIRED"), false),
        "46733123453" => ("PENDING", None, false),
        "46733123454" => ("PENDING", None, true),
        "46733123455" => ("FAILED", Some("NOT_ENOUGH_FUNDS"), false),
        "46733123456" => ("FAILED", Some("PAYER_LIMIT_REACHED"), false),
        "46733123457" => ("FAILED", Some("PAYEE_NOT_FOUND"), false),
        "46733123458" => ("FAILED", Some("NOT_ALLOWED"), false),
        "46733123459" => ("FAILED", Some("NOT_ALLOWED_TARGET_ENVIRONMENT"), false),
        "46733123460" => ("FAILED", Some("INVALID_CALLBACK_URL_HOST"), false),
        "46733123461" => ("FAILED", Some("INVALID_CURRENCY"), false),
        "46733123462" => ("FAILED", Some("INTERNAL_PROCESSING_ERROR"), false),
        "46733123463" => ("FAILED", Some("SERVICE_UNAVAILABLE"), false),
        _ => ("SUCCESSFUL", None, false),
    }
}

async fn refund_status(state: State<Arc<MtnState>>, headers: HeaderMap, reference: Path<String>) -> Response {
    disbursement_status(state, headers, reference, "refund")
}

async fn transfer_status(state: State<Arc<MtnState>>, headers: HeaderMap, reference: Path<String>) -> Response {
    disbursement_status(state, headers, reference, "transfer")
}

fn disbursement_status(
    State(state): State<Arc<MtnState>>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    kind: &str,
) -> Response {
    let mut inner = state.inner.lock().unwrap();
    if let Some(refused) = refusal(&inner, &headers, "disbursement") {
        return refused;
    }
    let delayed_reads = inner.delayed_reads;
    let balance = inner.disbursement_balance;
    let Some(disbursement) = inner.disbursements.get_mut(&reference).filter(|d| d.kind == kind) else {
        return error(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND", "Requested resource was not found.");
    };
    disbursement.reads += 1;
    let mut spent = 0;
    if disbursement.delayed && disbursement.reads > delayed_reads {
        let amount = valid_common(&disbursement.body).unwrap_or(0);
        if amount > balance {
            (disbursement.status, disbursement.reason) = ("FAILED", Some("NOT_ENOUGH_FUNDS"));
        } else {
            disbursement.status = "SUCCESSFUL";
            spent = amount;
        }
        disbursement.delayed = false;
    }
    let body = disbursement_body(disbursement);
    inner.disbursement_balance -= spent;
    axum::Json(body).into_response()
}

/// The status answer (and callback body) for a refund or transfer.
fn disbursement_body(disbursement: &Disbursement) -> Value {
    let mut body = disbursement.body.clone();
    body["status"] = json!(disbursement.status);
    if disbursement.status == "SUCCESSFUL" {
        body["financialTransactionId"] = json!("fake-disbursement");
    }
    if let Some(reason) = disbursement.reason {
        body["reason"] = json!(reason);
    }
    body
}

async fn status(State(state): State<Arc<MtnState>>, headers: HeaderMap, Path(reference): Path<String>) -> Response {
    let mut inner = state.inner.lock().unwrap();
    if let Some(refused) = refusal(&inner, &headers, "collection") {
        return refused;
    }
    let (delayed_reads, claim_unknown) = (inner.delayed_reads, inner.claim_unknown_successful);
    let Some(request) = inner.requests.get_mut(&reference) else {
        if claim_unknown {
            return axum::Json(json!({ "status": "SUCCESSFUL", "financialTransactionId": "fake-unknown" }))
                .into_response();
        }
        return error(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND", "Requested resource was not found.");
    };
    request.reads += 1;
    if request.delayed && request.reads > delayed_reads {
        request.status = "SUCCESSFUL";
    }
    axum::Json(status_body(&reference, request)).into_response()
}

/// The status answer (and callback body) for a stored request.
fn status_body(reference: &str, request: &RequestToPay) -> Value {
    let mut body = json!({
        "amount": request.body["amount"],
        "currency": request.body["currency"],
        "externalId": request.body["externalId"],
        "payer": request.body["payer"],
        "payerMessage": request.body["payerMessage"],
        "payeeNote": request.body["payeeNote"],
        "status": request.status,
    });
    if request.status == "SUCCESSFUL" {
        body["financialTransactionId"] = json!(format!("fake-{}", &reference[..8]));
    }
    if let Some(reason) = request.reason {
        body["reason"] = json!(reason);
    }
    body
}
