//! A fake crypto custody provider on a loopback port, speaking
//! `docs/custody-protocol.md`: the asset listing (USDT on Tron and
//! Ethereum, BTC on Bitcoin, rates to USD and LRD as integer fractions),
//! one deterministic address per (owner, asset, network), and deposits the
//! test makes and moves (`deposit`, `confirm`, `hold`, `reject`), read back
//! by `GET /v1/deposits/{id}` and pushed to the gateway as signed
//! notifications (`notify`; `notify_forged` and `notify_signed_at` for the
//! ones it must refuse). Every API call needs the bearer key [`API_KEY`];
//! `fail_with` makes every call answer an HTTP status instead. Amounts are
//! base units, strings in JSON.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::serve;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const API_KEY: &str = "fake-custody-api-key-7c2e";
pub const WEBHOOK_SECRET: &str = "fake-custody-webhook-secret-91ab";
pub const SIGNATURE_HEADER: &str = "X-Custody-Signature";

/// (symbol, name, decimals, networks (slug, name, confirmations,
/// min deposit), rates (currency, numerator, denominator)).
type AssetRow = (
    &'static str,
    &'static str,
    u8,
    &'static [(&'static str, &'static str, u32, u64)],
    &'static [(&'static str, u64, u64)],
);

/// What the fake takes: USDT pays USD 0.99 and LRD 188.10; BTC pays
/// USD 60,000 and LRD 11,286,000.
pub const ASSETS: [AssetRow; 2] = [
    (
        "USDT",
        "Tether USD",
        6,
        &[("tron", "Tron (TRC-20)", 20, 1_000_000), ("ethereum", "Ethereum (ERC-20)", 12, 5_000_000)],
        &[("USD", 99, 100), ("LRD", 18_810, 100)],
    ),
    ("BTC", "Bitcoin", 8, &[("bitcoin", "Bitcoin", 2, 10_000)], &[("USD", 60_000, 1), ("LRD", 11_286_000, 1)]),
];

/// A deposit as the fake holds it.
#[derive(Debug, Clone)]
pub struct FakeDeposit {
    pub id: String,
    pub address: String,
    pub asset: String,
    pub network: String,
    /// In base units.
    pub amount: u64,
    pub confirmations: u32,
    /// `confirming`, `confirmed`, `held` or `rejected`.
    pub state: String,
}

impl FakeDeposit {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "address": self.address,
            "asset": self.asset,
            "network": self.network,
            "amount": self.amount.to_string(),
            "confirmations": self.confirmations,
            "state": self.state,
        })
    }
}

/// What the gateway answered to a notification.
#[derive(Debug, Clone)]
pub struct Notified {
    pub status: u16,
    pub body: Value,
}

impl Notified {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub struct FakeCustody {
    pub addr: SocketAddr,
    state: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// (owner, asset, network) → address.
    addresses: BTreeMap<(String, String, String), String>,
    deposits: BTreeMap<String, FakeDeposit>,
    deposits_made: u64,
    /// Every API call answers this status, while set.
    fail_with: Option<u16>,
    asset_reads: usize,
    address_posts: usize,
    status_reads: usize,
    unauthorized: usize,
    notifications: usize,
}

impl FakeCustody {
    pub async fn start() -> FakeCustody {
        let state = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/assets", get(assets))
            .route("/v1/addresses", post(address))
            .route("/v1/deposits/{id}", get(deposit_status))
            .with_state(Arc::clone(&state));
        let addr = serve("127.0.0.1:0", app).await.expect("a loopback port");
        FakeCustody { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap()
    }

    /// Every API call answers `status` (`Some`), or is served again (`None`).
    pub fn fail_with(&self, status: Option<u16>) {
        self.inner().fail_with = status;
    }

    /// The address the fake gives `owner` for the asset on the network
    /// (whether or not it was asked for yet).
    pub fn address_for(owner: &str, asset: &str, network: &str) -> String {
        let hash = hex::encode(Sha256::digest(format!("{owner}|{asset}|{network}").as_bytes()));
        match network {
            "tron" => format!("T{}", &hash[..33]),
            "ethereum" => format!("0x{}", &hash[..40]),
            _ => format!("bc1q{}", &hash[..38]),
        }
    }

    /// The addresses given so far.
    pub fn addresses_given(&self) -> usize {
        self.inner().addresses.len()
    }

    /// A deposit to `address` (one the fake gave), of `amount` base units;
    /// returns its id.
    pub fn deposit(&self, address: &str, amount: u64, confirmations: u32, state: &str) -> String {
        assert!(["confirming", "confirmed", "held", "rejected"].contains(&state), "no deposit state {state}");
        let mut inner = self.inner();
        let (_, asset, network) = inner
            .addresses
            .iter()
            .find(|(_, given)| given.as_str() == address)
            .map(|(key, _)| key.clone())
            .unwrap_or_else(|| panic!("the fake gave no address {address}"));
        inner.deposits_made += 1;
        let hash = hex::encode(Sha256::digest(format!("{}|{address}|{amount}", inner.deposits_made).as_bytes()));
        let id = format!("{hash}:0");
        let deposit = FakeDeposit {
            id: id.clone(),
            address: address.to_string(),
            asset,
            network,
            amount,
            confirmations,
            state: state.to_string(),
        };
        inner.deposits.insert(id.clone(), deposit);
        id
    }

    pub fn deposit_of(&self, id: &str) -> Option<FakeDeposit> {
        self.inner().deposits.get(id).cloned()
    }

    fn set_state(&self, id: &str, state: &str) {
        let mut inner = self.inner();
        let deposit = inner.deposits.get_mut(id).unwrap_or_else(|| panic!("no deposit {id}"));
        deposit.state = state.to_string();
        if state == "confirmed" {
            deposit.confirmations = deposit.confirmations.max(required_confirmations(&deposit.asset, &deposit.network));
        }
    }

    /// The deposit has its confirmations and is cleared.
    pub fn confirm(&self, id: &str) {
        self.set_state(id, "confirmed");
    }

    /// Compliance holds it for review.
    pub fn hold(&self, id: &str) {
        self.set_state(id, "held");
    }

    /// Compliance rejects it (or the chain reversed it).
    pub fn reject(&self, id: &str) {
        self.set_state(id, "rejected");
    }

    /// The `deposit.updated` notification's body for deposit `id` as it is now.
    pub fn notification(&self, id: &str) -> Vec<u8> {
        let deposit = self.deposit_of(id).unwrap_or_else(|| panic!("no deposit {id}"));
        json!({ "event": "deposit.updated", "deposit": deposit.json() }).to_string().into_bytes()
    }

    /// POSTs deposit `id`'s notification to `callback_url`, signed now with
    /// the webhook secret.
    pub async fn notify(&self, id: &str, callback_url: &str) -> Notified {
        self.notify_signed_at(id, callback_url, unix_now_s()).await
    }

    /// As [`notify`](Self::notify), signed at `t` (Unix seconds).
    pub async fn notify_signed_at(&self, id: &str, callback_url: &str, t: u64) -> Notified {
        let body = self.notification(id);
        let header = format!("t={t},v1={}", sign(WEBHOOK_SECRET, t, &body));
        self.send(callback_url, body, header).await
    }

    /// As [`notify`](Self::notify), signed with a secret that is not the one
    /// the gateway has.
    pub async fn notify_forged(&self, id: &str, callback_url: &str) -> Notified {
        let body = self.notification(id);
        let t = unix_now_s();
        let header = format!("t={t},v1={}", sign("not-the-webhook-secret", t, &body));
        self.send(callback_url, body, header).await
    }

    async fn send(&self, callback_url: &str, body: Vec<u8>, signature: String) -> Notified {
        self.inner().notifications += 1;
        let response = reqwest::Client::new()
            .post(callback_url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .expect("the gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Notified { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
    }

    pub fn asset_reads(&self) -> usize {
        self.inner().asset_reads
    }

    pub fn address_posts(&self) -> usize {
        self.inner().address_posts
    }

    pub fn status_reads(&self) -> usize {
        self.inner().status_reads
    }

    /// Calls refused for a missing or wrong API key.
    pub fn unauthorized(&self) -> usize {
        self.inner().unauthorized
    }

    pub fn notifications_sent(&self) -> usize {
        self.inner().notifications
    }
}

/// `hex(hmac_sha256(secret, t + "." + body))`.
pub fn sign(secret: &str, t: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

pub fn unix_now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs()
}

fn required_confirmations(asset: &str, network: &str) -> u32 {
    ASSETS.iter().find(|a| a.0 == asset).and_then(|a| a.3.iter().find(|n| n.0 == network)).map_or(1, |n| n.2)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

/// Counts the call with `count`, then checks the fault and the API key:
/// the answer to give instead of serving the call, if any.
fn refused(state: &Mutex<Inner>, headers: &HeaderMap, count: fn(&mut Inner)) -> Option<Response> {
    let mut inner = state.lock().unwrap();
    count(&mut inner);
    if let Some(status) = inner.fail_with {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some(error(status, "FAULT", "a scripted fault"));
    }
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {API_KEY}"));
    if !authorized {
        inner.unauthorized += 1;
        return Some(error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "a valid API key is required"));
    }
    None
}

async fn assets(State(state): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refused(&state, &headers, |inner| inner.asset_reads += 1) {
        return refusal;
    }
    let assets: Vec<Value> = ASSETS
        .iter()
        .map(|(symbol, name, decimals, networks, rates)| {
            json!({
                "symbol": symbol,
                "name": name,
                "decimals": decimals,
                "networks": networks.iter().map(|(slug, name, confirmations, min)| json!({
                    "slug": slug, "name": name, "confirmations": confirmations, "min_deposit": min.to_string(),
                })).collect::<Vec<_>>(),
                "rates": rates.iter().map(|(currency, numerator, denominator)| json!({
                    "currency": currency, "numerator": numerator.to_string(), "denominator": denominator.to_string(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    axum::Json(json!({ "assets": assets })).into_response()
}

async fn address(State(state): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(refusal) = refused(&state, &headers, |inner| inner.address_posts += 1) {
        return refusal;
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "the body is not JSON");
    };
    let field = |name: &str| request[name].as_str().unwrap_or_default().to_string();
    let (owner, asset, network) = (field("owner"), field("asset"), field("network"));
    if owner.is_empty() {
        return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "an address needs an owner");
    }
    let Some(listed) = ASSETS.iter().find(|a| a.0 == asset) else {
        return error(StatusCode::BAD_REQUEST, "ASSET_UNKNOWN", "this asset is not taken");
    };
    if !listed.3.iter().any(|n| n.0 == network) {
        return error(StatusCode::BAD_REQUEST, "NETWORK_UNKNOWN", "this asset is not taken on this network");
    }
    let address = FakeCustody::address_for(&owner, &asset, &network);
    let mut inner = state.lock().unwrap();
    let made = inner.addresses.insert((owner.clone(), asset.clone(), network.clone()), address.clone()).is_none();
    let status = if made { StatusCode::CREATED } else { StatusCode::OK };
    (status, axum::Json(json!({ "owner": owner, "asset": asset, "network": network, "address": address })))
        .into_response()
}

async fn deposit_status(
    State(state): State<Arc<Mutex<Inner>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = refused(&state, &headers, |inner| inner.status_reads += 1) {
        return refusal;
    }
    match state.lock().unwrap().deposits.get(&id) {
        Some(deposit) => axum::Json(json!({ "deposit": deposit.json() })).into_response(),
        None => error(StatusCode::NOT_FOUND, "DEPOSIT_UNKNOWN", "no deposit has this id"),
    }
}
