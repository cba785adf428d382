//! Fake provider servers on loopback ports, speaking the providers' protocols.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        tokio::spawn(async move { axum::serve(listener, app).await });
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
