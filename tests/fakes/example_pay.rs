//! A fake of "Example Pay", the small provider API the rail template speaks
//! (`examples/rail-template/README.md`): `POST /v1/charges` with a bearer
//! key and an `Idempotency-Key` (a repeated key answers the stored charge),
//! `GET /v1/charges/{id}`, and `GET /v1/charges?reference=…`.
//!
//! Outcomes by the phone's last four digits: `0001` fails with
//! `insufficient_funds`, `0002` stays `pending` until its first read by id,
//! anything else succeeds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const API_KEY: &str = "ek_test_51f0c3d2";

pub struct FakeExamplePay {
    pub addr: SocketAddr,
    state: Arc<Mutex<Charges>>,
}

#[derive(Default)]
struct Charges {
    /// By idempotency key.
    by_key: HashMap<String, Value>,
    posts: usize,
}

impl FakeExamplePay {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> FakeExamplePay {
        FakeExamplePay::start_on("127.0.0.1:0").await.expect("a loopback port")
    }

    /// Starts the fake on `listen` (`host:port`).
    pub async fn start_on(listen: &str) -> std::io::Result<FakeExamplePay> {
        let state = Arc::new(Mutex::new(Charges::default()));
        let app = Router::new()
            .route("/v1/charges", post(create).get(find))
            .route("/v1/charges/{id}", get(read))
            .with_state(Arc::clone(&state));
        let addr = super::serve(listen, app).await?;
        Ok(FakeExamplePay { addr, state })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Charges created for this payment id (the `reference`).
    pub fn charges_for(&self, reference: &str) -> usize {
        self.state.lock().unwrap().by_key.values().filter(|c| c["reference"] == reference).count()
    }

    /// Every `POST /v1/charges` received.
    pub fn posts(&self) -> usize {
        self.state.lock().unwrap().posts
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {API_KEY}"))
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid api key"}))).into_response()
}

async fn create(State(state): State<Arc<Mutex<Charges>>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let mut charges = state.lock().unwrap();
    charges.posts += 1;
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string) else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "Idempotency-Key is required"}))).into_response();
    };
    if let Some(existing) = charges.by_key.get(&key) {
        return (StatusCode::OK, axum::Json(existing.clone())).into_response();
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(_) => return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "body is not JSON"}))).into_response(),
    };
    let phone = request["phone"].as_str().unwrap_or_default();
    let amount_ok = request["amount"].as_str().is_some_and(|a| a.split_once('.').is_some_and(|(_, f)| f.len() == 2));
    if phone.starts_with('+') || phone.len() < 8 || !amount_ok || request["reference"].as_str().is_none() {
        return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"error": "invalid charge"}))).into_response();
    }
    let (status, failure_code) = match &phone[phone.len() - 4..] {
        "0001" => ("failed", Some("insufficient_funds")),
        "0002" => ("pending", None),
        _ => ("succeeded", None),
    };
    let charge = json!({
        "id": format!("ch_{}", charges.by_key.len() + 1),
        "reference": request["reference"],
        "amount": request["amount"],
        "currency": request["currency"],
        "status": status,
        "failure_code": failure_code,
    });
    charges.by_key.insert(key, charge.clone());
    (StatusCode::CREATED, axum::Json(charge)).into_response()
}

async fn read(State(state): State<Arc<Mutex<Charges>>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let mut charges = state.lock().unwrap();
    let Some(charge) = charges.by_key.values_mut().find(|c| c["id"] == id.as_str()) else {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"error": "no such charge"}))).into_response();
    };
    // A pending charge is approved by the time anyone asks.
    if charge["status"] == "pending" {
        charge["status"] = json!("succeeded");
    }
    (StatusCode::OK, axum::Json(charge.clone())).into_response()
}

async fn find(
    State(state): State<Arc<Mutex<Charges>>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let reference = query.get("reference").cloned().unwrap_or_default();
    let charges = state.lock().unwrap();
    let data: Vec<Value> = charges.by_key.values().filter(|c| c["reference"] == reference.as_str()).cloned().collect();
    (StatusCode::OK, axum::Json(json!({"data": data}))).into_response()
}
