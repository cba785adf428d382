//! A fake trading desk on a loopback port, speaking `docs/desk-protocol.md`:
//! a gift card catalogue and RMB terms; gift card trades and RMB orders
//! stored by `trade_id` (a repeat answers the trade it has, never a second
//! one), checked as a desk would (the catalogue's denominations and forms,
//! the code or the photos with their SHA-256, the channel's limits); and
//! lookups by `trade_id`. Every call needs the bearer API key.
//!
//! The test plays the desk's people: it completes a trade (with a verified
//! value for a partly used card), cancels or refunds one with a reason,
//! and sends the signed `trade.updated` callback to the gateway (or a
//! forged or stale one). Scripted faults make the next trade `POST` fail
//! with a 500 before anything is stored, answer 502 after storing it,
//! answer only after a wait, or be refused with an error code; lookups can
//! be made to miss for a while. Requests are counted per endpoint, and
//! `POST`s per trade id.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::serve;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const API_KEY: &str = "fake-desk-api-key-7f3a90";
pub const WEBHOOK_SECRET: &str = "fake-desk-webhook-secret-c41d";

/// Face values bought, in US cents: USD 25, 50, 100, 200.
pub const DENOMINATIONS: [u64; 4] = [2_500, 5_000, 10_000, 20_000];
/// RMB order limits, in fen: CNY 10.00 – 50,000.00.
pub const RMB_MIN: u64 = 1_000;
pub const RMB_MAX: u64 = 5_000_000;

/// The two kinds of trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    GiftCard,
    Rmb,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::GiftCard => "gift_card",
            Kind::Rmb => "rmb",
        }
    }
}

/// What the next trade `POST` meets.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// `500` before anything is stored.
    ServerError,
    /// Stored, then `502`.
    AcceptThenBadGateway,
    /// Stored, then answered only after this wait.
    SlowAccept(Duration),
    /// Refused with this HTTP status and error code; nothing stored.
    Refuse(u16, &'static str),
}

/// A trade as the desk stored it.
#[derive(Debug, Clone)]
pub struct Trade {
    /// The desk's own id.
    pub id: String,
    pub trade_id: String,
    pub kind: Kind,
    pub status: String,
    /// The request as the desk received it (the code and photos included).
    pub request: Value,
    pub verified_value: Option<u64>,
    pub reason: Option<(String, String)>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl Trade {
    /// The trade as the desk shows it (never the code or the photos).
    pub fn json(&self) -> Value {
        let reason = self.reason.as_ref().map(|(code, message)| json!({ "code": code, "message": message }));
        let mut trade = json!({
            "id": self.id,
            "trade_id": self.trade_id,
            "kind": self.kind.word(),
            "status": self.status,
            "reason": reason,
            "created_at_ms": self.created_at_ms,
            "updated_at_ms": self.updated_at_ms,
        });
        match self.kind {
            Kind::GiftCard => {
                let face = &self.request["face_value"];
                for field in ["brand", "country", "form"] {
                    trade[field] = self.request[field].clone();
                }
                trade["face_value"] = face.clone();
                trade["verified_value"] =
                    self.verified_value.map_or(Value::Null, |v| json!({ "amount": v, "currency": face["currency"] }));
            }
            Kind::Rmb => {
                trade["channel"] = self.request["channel"].clone();
                trade["amount"] = self.request["amount"].clone();
            }
        }
        trade
    }

    /// Where the gateway asked to be called back.
    pub fn callback_url(&self) -> Option<String> {
        self.request["callback_url"].as_str().map(str::to_string)
    }
}

/// What the gateway answered a callback.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub status: u16,
    pub body: Value,
}

pub struct FakeDesk {
    pub addr: SocketAddr,
    state: Arc<Mutex<Inner>>,
    client: reqwest::Client,
}

#[derive(Default)]
struct Inner {
    trades: Vec<Trade>,
    faults: VecDeque<Fault>,
    /// Requests per endpoint (`catalog`, `terms`, `gift_card_post`,
    /// `gift_card_get`, `rmb_post`, `rmb_get`), authorised or not.
    requests: BTreeMap<&'static str, usize>,
    /// `POST`s received per trade id, stored or not.
    posts: HashMap<String, usize>,
    /// Lookups still answered `404` whatever is stored.
    lookup_lag: usize,
    unauthorized: usize,
}

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis()).expect("a sane clock")
}

/// `X-Desk-Signature`'s value for `body` signed at `t` (unix seconds) with `secret`.
pub fn signature(secret: &str, t: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl FakeDesk {
    pub async fn start() -> FakeDesk {
        let state = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/gift-cards/catalog", get(catalog))
            .route("/v1/gift-cards/trades", axum::routing::post(post_gift_card))
            .route("/v1/gift-cards/trades/{trade_id}", get(get_gift_card))
            .route("/v1/rmb/terms", get(terms))
            .route("/v1/rmb/orders", axum::routing::post(post_rmb))
            .route("/v1/rmb/orders/{trade_id}", get(get_rmb))
            .with_state(Arc::clone(&state));
        let addr = serve("127.0.0.1:0", app).await.expect("a loopback port");
        FakeDesk { addr, state, client: reqwest::Client::new() }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap()
    }

    /// The next trade `POST`s meet these faults, in order.
    pub fn push_fault(&self, fault: Fault) {
        self.inner().faults.push_back(fault);
    }

    /// The next `lookups` trade lookups answer `404`, as if the desk had
    /// lost track of every trade.
    pub fn lag_lookups(&self, lookups: usize) {
        self.inner().lookup_lag = lookups;
    }

    /// Requests received at `endpoint` (`catalog`, `terms`,
    /// `gift_card_post`, `gift_card_get`, `rmb_post`, `rmb_get`).
    pub fn requests(&self, endpoint: &str) -> usize {
        self.inner().requests.get(endpoint).copied().unwrap_or(0)
    }

    /// Calls refused for a missing or wrong API key.
    pub fn unauthorized(&self) -> usize {
        self.inner().unauthorized
    }

    /// `POST`s received under `trade_id`, stored or not.
    pub fn posts_for(&self, trade_id: &str) -> usize {
        self.inner().posts.get(trade_id).copied().unwrap_or(0)
    }

    /// Trades stored under `trade_id`: the desk never holds two.
    pub fn trades_for(&self, trade_id: &str) -> usize {
        self.inner().trades.iter().filter(|t| t.trade_id == trade_id).count()
    }

    /// Every trade stored.
    pub fn trade_count(&self) -> usize {
        self.inner().trades.len()
    }

    pub fn trade(&self, trade_id: &str) -> Option<Trade> {
        self.inner().trades.iter().find(|t| t.trade_id == trade_id).cloned()
    }

    fn update(&self, trade_id: &str, change: impl FnOnce(&mut Trade)) {
        let mut inner = self.inner();
        let trade = inner
            .trades
            .iter_mut()
            .find(|t| t.trade_id == trade_id)
            .unwrap_or_else(|| panic!("the desk has no trade {trade_id}"));
        change(trade);
        trade.updated_at_ms = now_ms();
    }

    /// The desk verifies the card (at `verified_value` minor units of its
    /// currency, for a partly used card) or pays the recipient.
    pub fn complete(&self, trade_id: &str, verified_value: Option<u64>) {
        self.update(trade_id, |trade| {
            trade.status = "completed".into();
            trade.verified_value = verified_value;
        });
    }

    /// The desk refuses the card or the order.
    pub fn cancel(&self, trade_id: &str, code: &str, message: &str) {
        self.update(trade_id, |trade| {
            trade.status = "cancelled".into();
            trade.reason = Some((code.into(), message.into()));
        });
    }

    /// The desk returns the money of an order it could not pay out.
    pub fn refund(&self, trade_id: &str, code: &str, message: &str) {
        self.update(trade_id, |trade| {
            trade.status = "refunded".into();
            trade.reason = Some((code.into(), message.into()));
        });
    }

    /// Someone at the desk has started on it.
    pub fn start_processing(&self, trade_id: &str) {
        self.update(trade_id, |trade| trade.status = "processing".into());
    }

    /// The `trade.updated` event for the trade as it stands.
    pub fn event(&self, trade_id: &str) -> Vec<u8> {
        let trade = self.trade(trade_id).unwrap_or_else(|| panic!("the desk has no trade {trade_id}"));
        let mut event = trade.json();
        event["event"] = json!("trade.updated");
        serde_json::to_vec(&event).expect("JSON")
    }

    /// Sends the trade's `trade.updated` callback to `url`, signed now.
    pub async fn send_callback(&self, url: &str, trade_id: &str) -> Delivered {
        self.send_callback_signed_at(url, trade_id, now_ms() / 1_000).await
    }

    /// Sends the trade's callback signed at `t` (unix seconds).
    pub async fn send_callback_signed_at(&self, url: &str, trade_id: &str, t: u64) -> Delivered {
        let body = self.event(trade_id);
        let signed = signature(WEBHOOK_SECRET, t, &body);
        self.send_raw(url, body, Some(signed)).await
    }

    /// Sends `body` to `url` with this `X-Desk-Signature` (or none): for
    /// forgeries.
    pub async fn send_raw(&self, url: &str, body: Vec<u8>, signature: Option<String>) -> Delivered {
        let mut request = self.client.post(url).header("content-type", "application/json").body(body);
        if let Some(signature) = signature {
            request = request.header("x-desk-signature", signature);
        }
        let response = request.send().await.expect("the callback reaches the gateway");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Delivered { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

/// Counts the request, and refuses it without the API key.
fn admitted(inner: &mut Inner, endpoint: &'static str, headers: &HeaderMap) -> Option<Response> {
    *inner.requests.entry(endpoint).or_default() += 1;
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if bearer != format!("Bearer {API_KEY}") {
        inner.unauthorized += 1;
        return Some(error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "A valid API key is required"));
    }
    None
}

/// Brands: slug, name, USD paid per 100 USD of face value, physical cards bought too.
const BRANDS: [(&str, &str, u64, bool); 3] =
    [("amazon", "Amazon", 85, true), ("apple", "Apple iTunes", 80, true), ("steam", "Steam", 75, false)];
/// LRD per USD behind the LRD rates.
const LRD_PER_USD: u64 = 190;

fn catalog_json() -> Value {
    let brands: Vec<Value> = BRANDS
        .iter()
        .map(|(slug, name, per_hundred, physical)| {
            let forms = if *physical { json!(["ecode", "physical"]) } else { json!(["ecode"]) };
            json!({
                "slug": slug,
                "name": name,
                "offers": [{
                    "country": "US",
                    "card_currency": "USD",
                    "denominations": DENOMINATIONS,
                    "forms": forms,
                    "rates": [
                        { "payout_currency": "USD", "numerator": per_hundred, "denominator": 100 },
                        { "payout_currency": "LRD", "numerator": per_hundred * LRD_PER_USD, "denominator": 100 },
                    ],
                }],
            })
        })
        .collect();
    json!({ "brands": brands })
}

/// RMB channels: slug, name, recipient label.
const CHANNELS: [(&str, &str, &str); 3] = [
    ("alipay", "Alipay", "Alipay ID"),
    ("wechat-pay", "WeChat Pay", "WeChat ID"),
    ("bank-transfer", "Chinese bank transfer", "Bank card number"),
];

fn terms_json() -> Value {
    let channels: Vec<Value> = CHANNELS
        .iter()
        .map(|(slug, name, label)| {
            json!({ "slug": slug, "name": name, "recipient_label": label, "min": RMB_MIN, "max": RMB_MAX })
        })
        .collect();
    json!({
        "channels": channels,
        "rates": [
            { "pay_currency": "USD", "numerator": 71, "denominator": 10 },
            { "pay_currency": "LRD", "numerator": 71, "denominator": 10 * LRD_PER_USD },
        ],
    })
}

async fn catalog(State(state): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    if let Some(refused) = admitted(&mut state.lock().unwrap(), "catalog", &headers) {
        return refused;
    }
    axum::Json(catalog_json()).into_response()
}

async fn terms(State(state): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    if let Some(refused) = admitted(&mut state.lock().unwrap(), "terms", &headers) {
        return refused;
    }
    axum::Json(terms_json()).into_response()
}

type Refusal = (&'static str, String);

fn invalid(code: &'static str, message: impl Into<String>) -> Refusal {
    (code, message.into())
}

/// `{"amount": <whole number>, "currency": …}`.
fn amount_of(value: &Value) -> Option<(u64, &str)> {
    Some((value["amount"].as_u64()?, value["currency"].as_str()?))
}

/// Checks a gift card trade as a desk would.
fn check_gift_card(body: &Value) -> Result<(), Refusal> {
    let brand = body["brand"].as_str().unwrap_or_default();
    let (_, _, _, physical) = BRANDS
        .iter()
        .find(|b| b.0 == brand)
        .ok_or_else(|| invalid("BRAND_NOT_BOUGHT", format!("We do not buy {brand} cards")))?;
    if body["country"] != "US" {
        return Err(invalid("COUNTRY_NOT_BOUGHT", "We buy US cards only"));
    }
    let (face, currency) =
        amount_of(&body["face_value"]).ok_or_else(|| invalid("VALIDATION_ERROR", "face_value is required"))?;
    if currency != "USD" || !DENOMINATIONS.contains(&face) {
        return Err(invalid("DENOMINATION_NOT_BOUGHT", "We buy USD 25, 50, 100 and 200 cards"));
    }
    amount_of(&body["payout"]).ok_or_else(|| invalid("VALIDATION_ERROR", "payout is required"))?;
    match body["form"].as_str() {
        Some("ecode") => {
            if body["additional_info"].as_str().is_none_or(|code| code.trim().is_empty()) {
                return Err(invalid("CODE_REQUIRED", "An e-code trade needs the code"));
            }
        }
        Some("physical") if *physical => {
            let images = body["images"].as_array().filter(|i| !i.is_empty());
            let images = images.ok_or_else(|| invalid("IMAGES_REQUIRED", "A physical card needs its photos"))?;
            for image in images {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(image["data"].as_str().unwrap_or_default())
                    .map_err(|_| invalid("VALIDATION_ERROR", "images[].data must be base64"))?;
                if image["sha256"].as_str() != Some(hex::encode(Sha256::digest(&bytes)).as_str()) {
                    return Err(invalid("IMAGE_HASH_MISMATCH", "A photo does not match its sha256"));
                }
            }
        }
        _ => return Err(invalid("FORM_NOT_BOUGHT", format!("We do not buy {brand} cards in that form"))),
    }
    Ok(())
}

/// Checks an RMB order as a desk would.
fn check_rmb(body: &Value) -> Result<(), Refusal> {
    let channel = body["channel"].as_str().unwrap_or_default();
    if !CHANNELS.iter().any(|c| c.0 == channel) {
        return Err(invalid("CHANNEL_UNKNOWN", format!("We pay out over no channel {channel}")));
    }
    if body["recipient"]["identifier"].as_str().is_none_or(|r| r.trim().is_empty()) {
        return Err(invalid("RECIPIENT_REQUIRED", "The recipient's identifier is required"));
    }
    match amount_of(&body["amount"]) {
        Some((fen, "CNY")) if (RMB_MIN..=RMB_MAX).contains(&fen) => {}
        _ => return Err(invalid("AMOUNT_OUT_OF_LIMITS", "The amount must be CNY 10.00 to 50,000.00")),
    }
    amount_of(&body["paid"]).ok_or_else(|| invalid("VALIDATION_ERROR", "paid is required"))?;
    Ok(())
}

async fn post_gift_card(state: State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    post_trade(state, headers, body, Kind::GiftCard).await
}

async fn post_rmb(state: State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    post_trade(state, headers, body, Kind::Rmb).await
}

async fn post_trade(State(state): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes, kind: Kind) -> Response {
    let (answer, fault) = {
        let mut inner = state.lock().unwrap();
        let endpoint = if kind == Kind::GiftCard { "gift_card_post" } else { "rmb_post" };
        if let Some(refused) = admitted(&mut inner, endpoint, &headers) {
            return refused;
        }
        let Ok(request) = serde_json::from_slice::<Value>(&body) else {
            return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "The body is not JSON");
        };
        let Some(trade_id) = request["trade_id"].as_str().filter(|t| !t.is_empty()).map(str::to_string) else {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", "trade_id is required");
        };
        *inner.posts.entry(trade_id.clone()).or_default() += 1;
        // The trade id is the idempotency key: a repeat gets the trade as it stands.
        if let Some(existing) = inner.trades.iter().find(|t| t.trade_id == trade_id) {
            if existing.kind != kind {
                return error(StatusCode::CONFLICT, "TRADE_ID_IN_USE", "The trade id names another kind of trade");
            }
            return (StatusCode::OK, axum::Json(existing.json())).into_response();
        }
        let checked = match kind {
            Kind::GiftCard => check_gift_card(&request),
            Kind::Rmb => check_rmb(&request),
        };
        if let Err((code, message)) = checked {
            return error(StatusCode::UNPROCESSABLE_ENTITY, code, &message);
        }
        let fault = inner.faults.pop_front();
        match fault {
            Some(Fault::ServerError) => {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "Try again later");
            }
            Some(Fault::Refuse(status, code)) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
                return error(status, code, "Refused by the fake desk");
            }
            _ => {}
        }
        let now = now_ms();
        let prefix = if kind == Kind::GiftCard { "dsk-gc" } else { "dsk-rmb" };
        let trade = Trade {
            id: format!("{prefix}-{:06}", inner.trades.len() + 1),
            trade_id,
            kind,
            status: if kind == Kind::GiftCard { "pending" } else { "processing" }.into(),
            request,
            verified_value: None,
            reason: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let answer = trade.json();
        inner.trades.push(trade);
        (answer, fault)
    };
    match fault {
        Some(Fault::AcceptThenBadGateway) => {
            return error(StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR", "The desk's proxy failed");
        }
        Some(Fault::SlowAccept(wait)) => tokio::time::sleep(wait).await,
        _ => {}
    }
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

async fn get_gift_card(state: State<Arc<Mutex<Inner>>>, headers: HeaderMap, trade_id: Path<String>) -> Response {
    get_trade(state, headers, trade_id, Kind::GiftCard)
}

async fn get_rmb(state: State<Arc<Mutex<Inner>>>, headers: HeaderMap, trade_id: Path<String>) -> Response {
    get_trade(state, headers, trade_id, Kind::Rmb)
}

fn get_trade(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Path(trade_id): Path<String>,
    kind: Kind,
) -> Response {
    let mut inner = state.lock().unwrap();
    let endpoint = if kind == Kind::GiftCard { "gift_card_get" } else { "rmb_get" };
    if let Some(refused) = admitted(&mut inner, endpoint, &headers) {
        return refused;
    }
    if inner.lookup_lag > 0 {
        inner.lookup_lag -= 1;
        return error(StatusCode::NOT_FOUND, "TRADE_NOT_FOUND", "No such trade");
    }
    match inner.trades.iter().find(|t| t.trade_id == trade_id && t.kind == kind) {
        Some(trade) => axum::Json(trade.json()).into_response(),
        None => error(StatusCode::NOT_FOUND, "TRADE_NOT_FOUND", "No such trade"),
    }
}
