//! A fake WhatsApp Business Cloud API on a loopback port:
//! `POST /{version}/{phone_number_id}/messages` with a bearer token and a
//! template message body; answers `{"messaging_product", "contacts",
//! "messages": [{"id": "wamid.…"}]}` or a Graph API error
//! (`{"error": {"message", "type", "code", "fbtrace_id"}}`).
//!
//! The tests play the recipient: they read the code from the delivered
//! template's parameters. One simplification: Meta usually reports an
//! undeliverable number (code 131026) later, in a status webhook; the fake
//! answers it at once, for numbers ending `0000`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::serve;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const ACCESS_TOKEN: &str = "fake-whatsapp-token-EAAG";
pub const PHONE_NUMBER_ID: &str = "106540352242922";
/// The templates the business has approved.
pub const APPROVED_TEMPLATES: [&str; 1] = ["transfer_claim"];

/// One template message WhatsApp accepted.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// Digits, no `+`, as WhatsApp takes them.
    pub to: String,
    pub template: String,
    pub language: String,
    pub parameters: Vec<String>,
}

pub struct FakeWhatsApp {
    pub addr: SocketAddr,
    state: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    delivered: Vec<Delivered>,
    /// Answer this many sends with a 503 (Graph code 2, service unavailable).
    outages: usize,
    posts: usize,
}

impl FakeWhatsApp {
    pub async fn start() -> FakeWhatsApp {
        let state = Arc::new(Mutex::new(Inner::default()));
        let app =
            Router::new().route("/{version}/{phone_number_id}/messages", post(send)).with_state(Arc::clone(&state));
        let addr = serve("127.0.0.1:0", app).await.expect("a loopback port");
        FakeWhatsApp { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn delivered_to(&self, phone: &str) -> Vec<Delivered> {
        let digits = phone.trim_start_matches('+');
        self.lock().delivered.iter().filter(|d| d.to == digits).cloned().collect()
    }

    /// The next `sends` messages meet an outage.
    pub fn fail_next(&self, sends: usize) {
        self.lock().outages = sends;
    }

    pub fn posts(&self) -> usize {
        self.lock().posts
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().expect("the fake never panics holding its lock")
    }
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({
        "error": { "message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfFakeTrace" }
    });
    (status, axum::Json(body)).into_response()
}

async fn send(
    State(state): State<Arc<Mutex<Inner>>>,
    Path((_version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = state.lock().expect("lock");
    inner.posts += 1;
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(ACCESS_TOKEN) {
        return graph_error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token - Cannot parse access token");
    }
    if phone_number_id != PHONE_NUMBER_ID {
        return graph_error(StatusCode::BAD_REQUEST, 100, "Unsupported post request. Object does not exist");
    }
    if inner.outages > 0 {
        inner.outages -= 1;
        return graph_error(StatusCode::SERVICE_UNAVAILABLE, 2, "Service temporarily unavailable");
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return graph_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter: the body is not JSON");
    };
    let to = message["to"].as_str().unwrap_or_default().to_string();
    let well_formed = message["messaging_product"] == "whatsapp"
        && message["type"] == "template"
        && !to.is_empty()
        && to.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return graph_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
    }
    let template = message["template"]["name"].as_str().unwrap_or_default().to_string();
    if !APPROVED_TEMPLATES.contains(&template.as_str()) {
        return graph_error(StatusCode::NOT_FOUND, 132_001, "Template name does not exist in the translation");
    }
    if to.ends_with("0000") {
        return graph_error(StatusCode::BAD_REQUEST, 131_026, "Message undeliverable");
    }
    let parameters = message["template"]["components"][0]["parameters"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["text"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let language = message["template"]["language"]["code"].as_str().unwrap_or_default().to_string();
    inner.delivered.push(Delivered { to: to.clone(), template, language, parameters });
    let id = format!("wamid.HBgLMjMxODgw{}", inner.delivered.len());
    let answer = json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": to }],
        "messages": [{ "id": id }],
    });
    (StatusCode::OK, axum::Json(answer)).into_response()
}
