//! A fake Reloadly Airtime API on a loopback port, as documented: an OAuth2
//! client-credentials token endpoint (`POST /oauth/token`, checking the
//! credentials and the audience); operator auto-detect by phone and the
//! country listing (Liberia: Lonestar Cell MTN on `88` and `55` numbers,
//! Orange Liberia on `77`, each with an airtime operator and a data
//! operator sold in fixed amounts); synchronous top-ups (`POST /topups`),
//! stored by `customIdentifier`, a reused one refused; the status of a
//! transaction; and the transactions report filtered by `customIdentifier`.
//! Every topups call needs a bearer token it issued and the topups media
//! type; a revoked token gets `401 INVALID_TOKEN`.
//!
//! Scripted faults make the next top-up fail with a 5xx (not stored),
//! answer late or with a 5xx after storing it, be refused with an error
//! code, or be stored with another status. Amounts are read from the JSON
//! text itself, as the plugin must write them exactly.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::serve;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::value::RawValue;
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "fake-reloadly-client-id";
pub const CLIENT_SECRET: &str = "fake-reloadly-client-secret-5e1f";
pub const SANDBOX_AUDIENCE: &str = "https://topups-sandbox.reloadly.com";
pub const LIVE_AUDIENCE: &str = "https://topups.reloadly.com";
const ACCEPT: &str = "application/com.reloadly.topups-v1+json";

pub const MTN_AIRTIME_ID: u64 = 660;
pub const ORANGE_AIRTIME_ID: u64 = 661;
pub const MTN_DATA_ID: u64 = 662;
pub const ORANGE_DATA_ID: u64 = 663;
/// A Lonestar Cell MTN number and an Orange Liberia one.
pub const MTN_PHONE: &str = "+231880001234";
pub const ORANGE_PHONE: &str = "+231770001234";
/// A Liberian number on no network Reloadly knows.
pub const UNKNOWN_PHONE: &str = "+231330001234";

/// What the next top-up meets.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// `500` before anything is stored.
    ServerError,
    /// Stored (the phone is topped up), then `502`.
    AcceptThenServerError,
    /// Stored (the phone is topped up), then answered only after this wait.
    SlowAccept(Duration),
    /// Refused with this HTTP status and `errorCode`; nothing stored.
    Refuse(u16, &'static str),
    /// Stored with this status (`PENDING`, `FAILED`, `REFUNDED`).
    Outcome(&'static str),
}

/// A top-up as the fake stored it.
#[derive(Debug, Clone)]
pub struct Topup {
    pub transaction_id: u64,
    pub custom_identifier: String,
    pub operator_id: u64,
    /// The amount's JSON text as sent, e.g. `150.00`.
    pub amount_text: String,
    /// The same in minor units (two decimals: LRD and USD).
    pub amount_minor: u64,
    pub use_local_amount: bool,
    /// `recipientPhone.number`.
    pub number: String,
    pub status: &'static str,
    status_reads: usize,
}

pub struct FakeReloadly {
    pub addr: SocketAddr,
    state: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// The audience tokens are issued for.
    audience: String,
    token_lifetime_s: u64,
    /// Valid tokens.
    tokens: Vec<String>,
    tokens_issued: usize,
    /// `401`s answered to topups calls.
    unauthorized: usize,
    topups: Vec<Topup>,
    /// Every `POST /topups` received, accepted or not.
    topup_posts: usize,
    faults: VecDeque<Fault>,
    /// Status reads a `PENDING` top-up stays pending for.
    pending_reads: usize,
    /// Report reads that still miss every top-up (a lagging report).
    report_lag: usize,
    /// Status reads answered `404` (a transaction not visible yet).
    status_lag: usize,
    detects: usize,
    status_reads: usize,
    report_reads: usize,
}

impl FakeReloadly {
    pub async fn start() -> FakeReloadly {
        let state = Arc::new(Mutex::new(Inner {
            audience: SANDBOX_AUDIENCE.to_string(),
            token_lifetime_s: 5_184_000,
            pending_reads: 2,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/oauth/token", post(token))
            .route("/operators/auto-detect/phone/{phone}/countries/{country}", get(auto_detect))
            .route("/operators/countries/{country}", get(operators))
            .route("/topups", post(topup))
            .route("/topups/{id}/status", get(status))
            .route("/topups/reports/transactions", get(report))
            .with_state(Arc::clone(&state));
        let addr = serve("127.0.0.1:0", app).await.expect("a loopback port");
        FakeReloadly { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap()
    }

    /// Tokens issued from now on say they expire after `seconds`.
    pub fn set_token_lifetime_s(&self, seconds: u64) {
        self.inner().token_lifetime_s = seconds;
    }

    /// Every token issued so far stops working (`401 INVALID_TOKEN`).
    pub fn revoke_tokens(&self) {
        self.inner().tokens.clear();
    }

    pub fn tokens_issued(&self) -> usize {
        self.inner().tokens_issued
    }

    /// `401`s answered to topups calls (a token refused).
    pub fn unauthorized(&self) -> usize {
        self.inner().unauthorized
    }

    /// The next top-ups meet these faults, in order.
    pub fn push_fault(&self, fault: Fault) {
        self.inner().faults.push_back(fault);
    }

    /// The next `reads` report reads miss every top-up.
    pub fn lag_reports(&self, reads: usize) {
        self.inner().report_lag = reads;
    }

    /// The next `reads` status reads answer `404`, as if Reloadly did not
    /// show the transaction yet.
    pub fn lag_status(&self, reads: usize) {
        self.inner().status_lag = reads;
    }

    /// Every `POST /topups` received.
    pub fn topup_posts(&self) -> usize {
        self.inner().topup_posts
    }

    /// Top-ups stored under `custom_identifier`: each one topped a phone up.
    pub fn topups_for(&self, custom_identifier: &str) -> usize {
        self.inner().topups.iter().filter(|t| t.custom_identifier == custom_identifier).count()
    }

    /// The top-up stored under `custom_identifier`.
    pub fn topup(&self, custom_identifier: &str) -> Option<Topup> {
        self.inner().topups.iter().find(|t| t.custom_identifier == custom_identifier).cloned()
    }

    pub fn detects(&self) -> usize {
        self.inner().detects
    }

    pub fn status_reads(&self) -> usize {
        self.inner().status_reads
    }

    pub fn report_reads(&self) -> usize {
        self.inner().report_reads
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Reloadly's error body.
fn error(status: StatusCode, code: &str, message: &str, path: &str) -> Response {
    let body = json!({
        "timeStamp": "2026-12-02 15:30:00",
        "message": message,
        "path": path,
        "errorCode": code,
        "infoLink": null,
        "details": [],
    });
    (status, axum::Json(body)).into_response()
}

async fn token(State(state): State<Arc<Mutex<Inner>>>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut inner = state.lock().unwrap();
    let valid = body["client_id"] == CLIENT_ID
        && body["client_secret"] == CLIENT_SECRET
        && body["grant_type"] == "client_credentials"
        && body["audience"] == inner.audience.as_str();
    if !valid {
        let refusal = json!({ "error": "access_denied", "error_description": "Unauthorized" });
        return (StatusCode::UNAUTHORIZED, axum::Json(refusal)).into_response();
    }
    inner.tokens_issued += 1;
    let token = format!("fake-reloadly-token-{}", inner.tokens_issued);
    inner.tokens.push(token.clone());
    axum::Json(json!({
        "access_token": token,
        "scope": "send-topups read-operators read-topups-history",
        "expires_in": inner.token_lifetime_s,
        "token_type": "Bearer",
    }))
    .into_response()
}

/// The refusal for a topups call without a valid token or the topups
/// media type.
fn refusal(inner: &mut Inner, headers: &HeaderMap, path: &str) -> Option<Response> {
    let bearer = header(headers, "authorization").strip_prefix("Bearer ").unwrap_or("");
    if !inner.tokens.iter().any(|t| t == bearer) {
        inner.unauthorized += 1;
        return Some(error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN", "Access token is invalid or expired", path));
    }
    if header(headers, "accept") != ACCEPT {
        return Some(error(StatusCode::NOT_ACCEPTABLE, "INVALID_ACCEPT_HEADER", "Accept the topups media type", path));
    }
    None
}

/// One of the fake's operators.
struct FakeOperator {
    id: u64,
    name: &'static str,
    data: bool,
    /// Sold in fixed amounts (USD, the account's currency) and local ones (LRD).
    fixed: &'static [&'static str],
    local_fixed: &'static [&'static str],
    descriptions: &'static [(&'static str, &'static str)],
}

const OPERATORS: [FakeOperator; 4] = [
    FakeOperator {
        id: MTN_AIRTIME_ID,
        name: "Lonestar Cell MTN Liberia",
        data: false,
        fixed: &[],
        local_fixed: &[],
        descriptions: &[],
    },
    FakeOperator {
        id: ORANGE_AIRTIME_ID,
        name: "Orange Liberia",
        data: false,
        fixed: &[],
        local_fixed: &[],
        descriptions: &[],
    },
    FakeOperator {
        id: MTN_DATA_ID,
        name: "MTN Liberia Data",
        data: true,
        fixed: &["0.50", "1.00", "2.50"],
        // 90 twice and a zero, as real listings sometimes have.
        local_fixed: &["90.00", "180.00", "450.00", "90", "0"],
        descriptions: &[("90.00", "500MB, 1 day"), ("180.00", "1GB, 7 days"), ("450.00", "3GB, 30 days")],
    },
    FakeOperator {
        id: ORANGE_DATA_ID,
        name: "Orange Liberia Data",
        data: true,
        fixed: &["1.00", "3.00"],
        local_fixed: &["250.00", "150.00"],
        descriptions: &[("150.00", "750MB, 3 days"), ("250.00", "2GB, 7 days")],
    },
];

/// Reloadly's operator JSON (numbers written as their JSON text).
fn operator_json(operator: &FakeOperator) -> Value {
    let numbers = |texts: &[&str]| -> Value {
        Value::Array(texts.iter().map(|t| serde_json::from_str(t).expect("a JSON number")).collect())
    };
    let descriptions: serde_json::Map<String, Value> =
        operator.descriptions.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json!({
        "id": operator.id,
        "operatorId": operator.id,
        "name": operator.name,
        "bundle": false,
        "data": operator.data,
        "pin": false,
        "supportsLocalAmounts": true,
        "denominationType": if operator.data { "FIXED" } else { "RANGE" },
        "senderCurrencyCode": "USD",
        "destinationCurrencyCode": "LRD",
        "minAmount": if operator.data { Value::Null } else { json!(0.05) },
        "maxAmount": if operator.data { Value::Null } else { json!(250) },
        "localMinAmount": if operator.data { Value::Null } else { json!(10) },
        "localMaxAmount": if operator.data { Value::Null } else { json!(50000) },
        "country": { "isoName": "LR", "name": "Liberia" },
        "fx": { "rate": 181.25, "currencyCode": "LRD" },
        "fixedAmounts": numbers(operator.fixed),
        "fixedAmountsDescriptions": {},
        "localFixedAmounts": numbers(operator.local_fixed),
        "localFixedAmountsDescriptions": descriptions,
    })
}

/// The airtime operator a Liberian number (`231` and 9 digits) is on.
fn network_of(number: &str) -> Option<u64> {
    let national = number.strip_prefix("231").filter(|n| n.len() == 9 && n.bytes().all(|b| b.is_ascii_digit()))?;
    match &national[..2] {
        "88" | "55" => Some(MTN_AIRTIME_ID),
        "77" => Some(ORANGE_AIRTIME_ID),
        _ => None,
    }
}

async fn auto_detect(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Path((phone, country)): Path<(String, String)>,
) -> Response {
    let path = format!("/operators/auto-detect/phone/{phone}/countries/{country}");
    let mut inner = state.lock().unwrap();
    if let Some(refused) = refusal(&mut inner, &headers, &path) {
        return refused;
    }
    inner.detects += 1;
    if country != "LR" {
        return error(StatusCode::NOT_FOUND, "COUNTRY_NOT_SUPPORTED", "Country not supported", &path);
    }
    if !phone.bytes().all(|b| b.is_ascii_digit()) || !phone.starts_with("231") || phone.len() != 12 {
        return error(StatusCode::BAD_REQUEST, "INVALID_PHONE_NUMBER", "Invalid phone number", &path);
    }
    match network_of(&phone).and_then(|id| OPERATORS.iter().find(|o| o.id == id)) {
        Some(operator) => axum::Json(operator_json(operator)).into_response(),
        None => error(StatusCode::NOT_FOUND, "COULD_NOT_AUTO_DETECT_OPERATOR", "Could not detect operator", &path),
    }
}

/// The country's operators; data operators only when asked for.
async fn operators(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Path(country): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("/operators/countries/{country}");
    let mut inner = state.lock().unwrap();
    if let Some(refused) = refusal(&mut inner, &headers, &path) {
        return refused;
    }
    if country != "LR" {
        return error(StatusCode::NOT_FOUND, "COUNTRY_NOT_SUPPORTED", "Country not supported", &path);
    }
    let with_data = query.get("includeData").is_some_and(|v| v == "true");
    let listed: Vec<Value> = OPERATORS.iter().filter(|o| with_data || !o.data).map(operator_json).collect();
    axum::Json(Value::Array(listed)).into_response()
}

/// Minor units of a two-decimal amount's text (`150`, `150.5`, `150.00`).
fn minor_of(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || fraction.len() > 2 || !digits(whole) || !digits(fraction) {
        return None;
    }
    format!("{whole}{fraction:0<2}").parse().ok()
}

/// The checked body of a top-up, or why it is refused.
fn read_topup(body: &[u8]) -> Result<Topup, (&'static str, &'static str)> {
    let fields: HashMap<String, Box<RawValue>> =
        serde_json::from_slice(body).map_err(|_| ("INVALID_INPUT_PROVIDED", "The body is not a JSON object"))?;
    let value = |name: &str| -> Value {
        fields.get(name).and_then(|raw| serde_json::from_str(raw.get()).ok()).unwrap_or(Value::Null)
    };
    let operator_id = value("operatorId").as_u64().ok_or(("INVALID_INPUT_PROVIDED", "operatorId is required"))?;
    let operator = OPERATORS.iter().find(|o| o.id == operator_id).ok_or(("OPERATOR_NOT_FOUND", "No such operator"))?;
    let amount_text = fields.get("amount").map(|raw| raw.get().trim().to_string()).unwrap_or_default();
    let amount_minor = minor_of(amount_text.trim_matches('"'))
        .filter(|m| *m > 0)
        .ok_or(("INVALID_AMOUNT", "Reloadly expects amounts to be numerical"))?;
    let use_local_amount = value("useLocalAmount").as_bool().unwrap_or(false);
    let custom_identifier = value("customIdentifier").as_str().unwrap_or_default().to_string();
    if custom_identifier.is_empty() {
        return Err(("INVALID_INPUT_PROVIDED", "customIdentifier is required by this account"));
    }
    let phone = value("recipientPhone");
    let number = phone["number"].as_str().unwrap_or_default().trim_start_matches('+').to_string();
    if phone["countryCode"] != "LR" {
        return Err(("INVALID_RECIPIENT_PHONE", "The recipient phone is not valid for the country"));
    }
    // The number must be on the operator's network (airtime or data).
    let airtime_of = |id: u64| match id {
        MTN_DATA_ID => MTN_AIRTIME_ID,
        ORANGE_DATA_ID => ORANGE_AIRTIME_ID,
        other => other,
    };
    if network_of(&number) != Some(airtime_of(operator_id)) {
        return Err(("INVALID_RECIPIENT_PHONE", "The recipient phone is not valid for the operator"));
    }
    let sold = |texts: &[&str]| texts.iter().filter_map(|t| minor_of(t)).any(|m| m == amount_minor);
    let in_range = match (operator.data, use_local_amount) {
        (true, true) => sold(operator.local_fixed),
        (true, false) => sold(operator.fixed),
        (false, true) => (1_000..=5_000_000).contains(&amount_minor),
        (false, false) => (5..=25_000).contains(&amount_minor),
    };
    if !in_range {
        return Err(("INVALID_AMOUNT_FOR_OPERATOR", "The amount is not valid for the operator"));
    }
    Ok(Topup {
        transaction_id: 0,
        custom_identifier,
        operator_id,
        amount_text,
        amount_minor,
        use_local_amount,
        number,
        status: "SUCCESSFUL",
        status_reads: 0,
    })
}

/// Reloadly's transaction JSON for a stored top-up.
fn transaction_json(topup: &Topup) -> Value {
    let operator = OPERATORS.iter().find(|o| o.id == topup.operator_id).expect("stored top-ups name an operator");
    let currency = if topup.use_local_amount { "LRD" } else { "USD" };
    let amount: Value = serde_json::from_str(topup.amount_text.trim_matches('"')).unwrap_or(Value::Null);
    json!({
        "transactionId": topup.transaction_id,
        "status": topup.status,
        "operatorTransactionId": null,
        "customIdentifier": topup.custom_identifier,
        "recipientPhone": topup.number,
        "recipientEmail": null,
        "senderPhone": null,
        "countryCode": "LR",
        "operatorId": topup.operator_id,
        "operatorName": operator.name,
        "discount": 0,
        "discountCurrencyCode": "USD",
        "requestedAmount": amount,
        "requestedAmountCurrencyCode": currency,
        "deliveredAmount": amount,
        "deliveredAmountCurrencyCode": "LRD",
        "transactionDate": "2026-12-02 15:30:00",
        "pinDetail": null,
    })
}

async fn topup(State(state): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let (answer, fault) = {
        let mut inner = state.lock().unwrap();
        inner.topup_posts += 1;
        if let Some(refused) = refusal(&mut inner, &headers, "/topups") {
            return refused;
        }
        if !header(&headers, "content-type").starts_with("application/json") {
            return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "INVALID_INPUT_PROVIDED", "Send JSON", "/topups");
        }
        let mut topup = match read_topup(&body) {
            Ok(topup) => topup,
            Err((code, message)) => return error(StatusCode::BAD_REQUEST, code, message, "/topups"),
        };
        if inner.topups.iter().any(|t| t.custom_identifier == topup.custom_identifier) {
            return error(
                StatusCode::BAD_REQUEST,
                "CUSTOM_IDENTIFIER_ALREADY_USED",
                "This custom identifier has already been used",
                "/topups",
            );
        }
        let fault = inner.faults.pop_front();
        match fault {
            Some(Fault::ServerError) => {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "Try again later", "/topups");
            }
            Some(Fault::Refuse(status, code)) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                return error(status, code, "Refused by the fake", "/topups");
            }
            Some(Fault::Outcome(status)) => topup.status = status,
            _ => {}
        }
        topup.transaction_id = 4_600_000 + inner.topups.len() as u64 + 1;
        let answer = transaction_json(&topup);
        inner.topups.push(topup);
        (answer, fault)
    };
    match fault {
        Some(Fault::SlowAccept(wait)) => tokio::time::sleep(wait).await,
        Some(Fault::AcceptThenServerError) => {
            return error(StatusCode::BAD_GATEWAY, "INTERNAL_ERROR", "Upstream failed", "/topups");
        }
        _ => {}
    }
    axum::Json(answer).into_response()
}

async fn status(State(state): State<Arc<Mutex<Inner>>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let path = format!("/topups/{id}/status");
    let mut inner = state.lock().unwrap();
    if let Some(refused) = refusal(&mut inner, &headers, &path) {
        return refused;
    }
    inner.status_reads += 1;
    if inner.status_lag > 0 {
        inner.status_lag -= 1;
        return error(StatusCode::NOT_FOUND, "TRANSACTION_NOT_FOUND", "No such transaction", &path);
    }
    let pending_reads = inner.pending_reads;
    let Some(topup) = inner.topups.iter_mut().find(|t| t.transaction_id.to_string() == id) else {
        return error(StatusCode::NOT_FOUND, "TRANSACTION_NOT_FOUND", "No such transaction", &path);
    };
    topup.status_reads += 1;
    if topup.status == "PENDING" && topup.status_reads > pending_reads {
        topup.status = "SUCCESSFUL";
    }
    axum::Json(json!({ "code": null, "message": null, "status": topup.status, "transaction": transaction_json(topup) }))
        .into_response()
}

async fn report(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = state.lock().unwrap();
    if let Some(refused) = refusal(&mut inner, &headers, "/topups/reports/transactions") {
        return refused;
    }
    inner.report_reads += 1;
    let lagging = inner.report_lag > 0;
    inner.report_lag = inner.report_lag.saturating_sub(1);
    let wanted = query.get("customIdentifier");
    let content: Vec<Value> = inner
        .topups
        .iter()
        .filter(|t| !lagging && wanted.is_none_or(|w| *w == t.custom_identifier))
        .map(transaction_json)
        .collect();
    let total = content.len();
    axum::Json(json!({ "content": content, "totalElements": total, "totalPages": 1, "size": 20, "number": 0 }))
        .into_response()
}
