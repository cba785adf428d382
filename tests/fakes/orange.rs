//! A fake Orange Money Web Payment API on a loopback port: OAuth2 client
//! credentials (`POST /oauth/v3/token`, Basic, form body), `webpayment`
//! (Bearer, JSON; answers `pay_token`, `payment_url`, `notif_token`),
//! `transactionstatus` (by `order_id`, `amount` and `pay_token`), and the
//! notification Orange posts to `notif_url` once the customer has acted on
//! the payment page (`{"status", "notif_token", "txnid"}`).
//!
//! The tests play the customer (`customer_pays`, `customer_cancels`). One
//! assumption, not in Orange's published material: a repeated `webpayment`
//! for an existing `order_id` with the same body answers the same
//! `pay_token` and `payment_url` (the rail relies on it only when the first
//! answer was lost).

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
use axum::routing::post;
use base64::Engine as _;
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "fake-orange-client-id";
pub const CLIENT_SECRET: &str = "fake-orange-client-secret-c0ffee";
pub const MERCHANT_KEY: &str = "fake-merchant-key-42";
pub const COUNTRY_PATH: &str = "lr";
/// Where the fake's payment pages are (the operator allows it as a redirect host).
pub const PAYMENT_PAGE_HOST: &str = "webpayment.orange.example";

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The web payment is created, but its answer comes after this wait.
    SlowAnswer(Duration),
}

pub struct FakeOrange {
    pub addr: SocketAddr,
    state: Arc<OrangeState>,
}

#[derive(Default)]
struct OrangeState {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    tokens: Vec<String>,
    /// Tokens issued, including revoked ones.
    tokens_issued: usize,
    /// By `pay_token`.
    payments: HashMap<String, WebPayment>,
    web_payment_posts: usize,
    status_posts: usize,
    faults: VecDeque<Fault>,
    refuse_repeats: bool,
}

#[derive(Clone)]
struct WebPayment {
    request: Value,
    status: &'static str,
    notif_token: String,
}

impl FakeOrange {
    pub async fn start() -> FakeOrange {
        let state = Arc::new(OrangeState::default());
        let app = Router::new()
            .route("/oauth/v3/token", post(token))
            .route("/orange-money-webpay/{country}/v1/webpayment", post(web_payment))
            .route("/orange-money-webpay/{country}/v1/transactionstatus", post(transaction_status))
            .with_state(Arc::clone(&state));
        let addr = serve("127.0.0.1:0", app).await.expect("a loopback port");
        FakeOrange { addr, state }
    }

    /// Access tokens issued so far.
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

    pub fn push_fault(&self, fault: Fault) {
        self.state.inner.lock().unwrap().faults.push_back(fault);
    }

    /// From now on, a repeated `order_id` is refused (`409`), whatever the body.
    pub fn refuse_repeated_order_ids(&self) {
        self.state.inner.lock().unwrap().refuse_repeats = true;
    }

    /// Posts `body` to the notif_url given for `pay_token`, as Orange would.
    pub async fn notify(&self, pay_token: &str, body: &Value) -> reqwest::StatusCode {
        let url = self.state.inner.lock().unwrap().payments[pay_token].request["notif_url"]
            .as_str()
            .expect("a notif_url")
            .to_string();
        reqwest::Client::new().post(url).json(body).send().await.expect("the gateway answers").status()
    }

    pub fn web_payment_posts(&self) -> usize {
        self.state.inner.lock().unwrap().web_payment_posts
    }

    pub fn status_posts(&self) -> usize {
        self.state.inner.lock().unwrap().status_posts
    }

    /// Web payments stored for this `order_id`.
    pub fn payments_for(&self, order_id: &str) -> usize {
        let inner = self.state.inner.lock().unwrap();
        inner.payments.values().filter(|p| p.request["order_id"] == order_id).count()
    }

    /// The customer confirms with their PIN on the payment page; Orange
    /// notifies `notif_url`. Returns the gateway's answer to it.
    pub async fn customer_pays(&self, pay_token: &str) -> reqwest::StatusCode {
        self.finish(pay_token, "SUCCESS").await
    }

    /// The customer cancels on the payment page.
    pub async fn customer_cancels(&self, pay_token: &str) -> reqwest::StatusCode {
        self.finish(pay_token, "FAILED").await
    }

    async fn finish(&self, pay_token: &str, status: &'static str) -> reqwest::StatusCode {
        let (url, body) = {
            let mut inner = self.state.inner.lock().unwrap();
            let payment = inner.payments.get_mut(pay_token).expect("a known pay_token");
            payment.status = status;
            let url = payment.request["notif_url"].as_str().expect("a notif_url").to_string();
            let body = json!({ "status": status, "notif_token": payment.notif_token, "txnid": format!("MP{}", &pay_token[..6]) });
            (url, body)
        };
        reqwest::Client::new().post(url).json(&body).send().await.expect("the gateway answers").status()
    }
}

fn bearer_ok(inner: &Inner, headers: &HeaderMap) -> bool {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    bearer.is_some_and(|b| inner.tokens.iter().any(|t| t == b))
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, axum::Json(json!({ "code": code, "message": message, "description": message }))).into_response()
}

async fn token(State(state): State<Arc<OrangeState>>, headers: HeaderMap, body: Bytes) -> Response {
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let basic = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Basic {expected}"));
    if !basic {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": "invalid_client" }))).into_response();
    }
    let form = headers.get("content-type").and_then(|v| v.to_str().ok()) == Some("application/x-www-form-urlencoded");
    if !form || body.as_ref() != b"grant_type=client_credentials" {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": "invalid_request" }))).into_response();
    }
    let mut inner = state.inner.lock().unwrap();
    inner.tokens_issued += 1;
    let token = format!("orange-token-{}", inner.tokens_issued);
    inner.tokens.push(token.clone());
    axum::Json(json!({ "token_type": "Bearer", "access_token": token, "expires_in": 3600 })).into_response()
}

async fn web_payment(
    State(state): State<Arc<OrangeState>>,
    Path(country): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (answer, wait) = {
        let mut inner = state.inner.lock().unwrap();
        inner.web_payment_posts += 1;
        if !bearer_ok(&inner, &headers) {
            return error(StatusCode::UNAUTHORIZED, 42, "Expired or invalid credentials");
        }
        let Ok(request) = serde_json::from_slice::<Value>(&body) else {
            return error(StatusCode::BAD_REQUEST, 1, "Invalid JSON");
        };
        let required =
            ["merchant_key", "currency", "order_id", "return_url", "cancel_url", "notif_url", "lang", "reference"];
        let complete = required.iter().all(|k| request[*k].as_str().is_some_and(|v| !v.is_empty()))
            && request["amount"].as_u64().is_some_and(|a| a > 0);
        if country != COUNTRY_PATH || !complete || request["merchant_key"] != MERCHANT_KEY {
            return error(StatusCode::BAD_REQUEST, 1, "Invalid or missing parameter");
        }
        let existing = inner.payments.iter().find(|(_, p)| p.request["order_id"] == request["order_id"]);
        let answer = match existing {
            Some((pay_token, payment)) if payment.request == request && !inner.refuse_repeats => {
                web_payment_answer(pay_token, payment)
            }
            Some(_) => return error(StatusCode::CONFLICT, 2, "order_id already used"),
            None => {
                let pay_token = format!("{:0>32}", inner.payments.len() + 1);
                let payment = WebPayment { request, status: "INITIATED", notif_token: format!("notif-{pay_token}") };
                let answer = web_payment_answer(&pay_token, &payment);
                inner.payments.insert(pay_token, payment);
                answer
            }
        };
        let wait = inner.faults.pop_front().map(|Fault::SlowAnswer(wait)| wait);
        (answer, wait)
    };
    if let Some(wait) = wait {
        tokio::time::sleep(wait).await;
    }
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

fn web_payment_answer(pay_token: &str, payment: &WebPayment) -> Value {
    json!({
        "status": 201,
        "message": "OK",
        "pay_token": pay_token,
        "payment_url": format!("https://{PAYMENT_PAGE_HOST}/payment/pay_token/{pay_token}"),
        "notif_token": payment.notif_token,
    })
}

async fn transaction_status(
    State(state): State<Arc<OrangeState>>,
    Path(country): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = state.inner.lock().unwrap();
    inner.status_posts += 1;
    if !bearer_ok(&inner, &headers) {
        return error(StatusCode::UNAUTHORIZED, 42, "Expired or invalid credentials");
    }
    let Ok(query) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, 1, "Invalid JSON");
    };
    let found = query["pay_token"].as_str().and_then(|t| inner.payments.get(t));
    match found {
        Some(payment)
            if country == COUNTRY_PATH
                && payment.request["order_id"] == query["order_id"]
                && payment.request["amount"] == query["amount"] =>
        {
            axum::Json(json!({ "status": payment.status, "order_id": query["order_id"], "txnid": "MP-fake" }))
                .into_response()
        }
        _ => error(StatusCode::NOT_FOUND, 3, "Transaction not found"),
    }
}
