//! Fake provider servers on loopback ports, speaking the providers' protocols.

pub mod custody;
pub mod desk;
pub mod example_pay;
pub mod mtn;
pub mod orange;
pub mod reloadly;
pub mod stripe;
pub mod whatsapp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Serves `app` on `listen` (`host:port`; port 0 picks a free one) in the
/// background, and returns the bound address.
pub async fn serve(listen: &str, app: Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// A Frankfurter-style rates API: `GET /latest?from=USD&to=LRD` answers
/// `{"amount":1.0,"base":"USD","date":…,"rates":{"LRD":<rate>}}`.
pub struct FakeRates {
    pub addr: SocketAddr,
    state: Arc<RatesState>,
}

struct RatesState {
    /// The rate's JSON text per "FROM/TO", e.g. "183.5"; or an HTTP status to fail with.
    answer: Mutex<Result<HashMap<String, String>, u16>>,
    requests: AtomicUsize,
}

impl FakeRates {
    pub async fn start() -> FakeRates {
        let state = Arc::new(RatesState { answer: Mutex::new(Ok(HashMap::new())), requests: AtomicUsize::new(0) });
        let app = Router::new().route("/latest", get(latest)).with_state(Arc::clone(&state));
        let addr = serve("127.0.0.1:0", app).await.expect("a loopback port");
        FakeRates { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `rate_json` (a JSON number's text) for from→to.
    pub fn set_rate(&self, from: &str, to: &str, rate_json: &str) {
        let mut answer = self.state.answer.lock().unwrap();
        let mut rates = answer.clone().unwrap_or_default();
        rates.insert(format!("{from}/{to}"), rate_json.to_string());
        *answer = Ok(rates);
    }

    /// Answers every request with this HTTP status.
    pub fn fail_with(&self, status: u16) {
        *self.state.answer.lock().unwrap() = Err(status);
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

async fn latest(State(state): State<Arc<RatesState>>, Query(query): Query<HashMap<String, String>>) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let (from, to) = (query.get("from").cloned().unwrap_or_default(), query.get("to").cloned().unwrap_or_default());
    let answer = state.answer.lock().unwrap().clone();
    match answer {
        Err(status) => StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response(),
        Ok(rates) => match rates.get(&format!("{from}/{to}")) {
            None => (StatusCode::NOT_FOUND, r#"{"message":"not found"}"#).into_response(),
            Some(rate) => (
                [("content-type", "application/json")],
                format!(r#"{{"amount":1.0,"base":"{from}","date":"2026-11-23","rates":{{"{to}":{rate}}}}}"#),
            )
                .into_response(),
        },
    }
}

/// A merchant's webhook endpoint on a loopback port: records every delivery
/// (headers and raw body) and answers with the status it is told to.
pub struct WebhookSink {
    pub addr: SocketAddr,
    state: Arc<SinkState>,
}

struct SinkState {
    status: Mutex<u16>,
    received: Mutex<Vec<Received>>,
}

/// One delivery as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
    pub answered: u16,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("deliveries are JSON")
    }

    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
}

impl WebhookSink {
    pub async fn start() -> WebhookSink {
        let state = Arc::new(SinkState { status: Mutex::new(200), received: Mutex::new(Vec::new()) });
        let app = Router::new().route("/hooks", axum::routing::post(receive)).with_state(Arc::clone(&state));
        let addr = serve("127.0.0.1:0", app).await.expect("a loopback port");
        WebhookSink { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    /// From now on, answer every delivery with `status`.
    pub fn answer_with(&self, status: u16) {
        *self.state.status.lock().unwrap() = status;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Deliveries this sink accepted (answered 2xx).
    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| (200..300).contains(&r.answered)).collect()
    }
}

async fn receive(
    State(state): State<Arc<SinkState>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let answered = *state.status.lock().unwrap();
    state.received.lock().unwrap().push(Received { headers, body: body.to_vec(), answered });
    StatusCode::from_u16(answered).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
