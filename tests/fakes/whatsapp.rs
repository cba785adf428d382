//! A fake WhatsApp Business Cloud API on a loopback port:
//! `POST /{version}/{phone_number_id}/messages` with a bearer token and a
//! template message body; answers `{"messaging_product", "contacts",
//! "messages": [{"id": "wamid.…"}]}` or a Graph API error
//! (`{"error": {"message", "type", "code", "fbtrace_id"}}`).
//!
//! Once told the gateway's webhook URL (`set_webhook`), it reports each
//! accepted message's fate there as WhatsApp does: a notification signed
//! with the app secret (`X-Hub-Signature-256: sha256=<HMAC-SHA256 hex>`)
//! carrying `statuses` (`delivered`, or `failed` with code 131026 for numbers
//! marked `undeliverable_later`). Numbers ending `0000` are refused at once
//! (131026 in the send's answer), which WhatsApp also does at times.
//!
//! The tests play the recipient: they read the code from the delivered
//! template's parameters.

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
pub const APP_SECRET: &str = "fake-whatsapp-app-secret-5eed";
pub const VERIFY_TOKEN: &str = "fake-verify-token";
/// Meta's code for a message that cannot be delivered to the number.
pub const UNDELIVERABLE: i64 = 131_026;
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
    /// Where status notifications go.
    webhook: Option<String>,
    /// Numbers (digits) whose messages are accepted, then reported failed.
    undeliverable_later: Vec<String>,
    /// The gateway's answers to our notifications.
    webhook_answers: Vec<u16>,
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

    /// Report accepted messages' fate to `url` from now on.
    pub fn set_webhook(&self, url: &str) {
        self.lock().webhook = Some(url.to_string());
    }

    /// Messages to `phone` are accepted, then reported undeliverable.
    pub fn undeliverable_later(&self, phone: &str) {
        self.lock().undeliverable_later.push(phone.trim_start_matches('+').to_string());
    }

    /// The HTTP statuses the gateway answered our notifications with.
    pub fn webhook_answers(&self) -> Vec<u16> {
        self.lock().webhook_answers.clone()
    }

    /// Posts a status notification for `message_id` signed with `secret`:
    /// `failed` with `error_code`, else `delivered`. Returns the gateway's
    /// HTTP status.
    pub async fn notify(&self, url: &str, message_id: &str, to: &str, error_code: Option<i64>, secret: &str) -> u16 {
        let body = status_notification(message_id, to, error_code);
        let response = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature(&body, secret))
            .body(body)
            .send()
            .await
            .expect("the gateway answers");
        response.status().as_u16()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().expect("the fake never panics holding its lock")
    }
}

/// A `messages` change with one status, as WhatsApp posts it: `failed`
/// with `error_code`, else `delivered`.
fn status_notification(message_id: &str, to: &str, error_code: Option<i64>) -> String {
    let mut status = json!({
        "id": message_id,
        "status": if error_code.is_some() { "failed" } else { "delivered" },
        "timestamp": "1764115200",
        "recipient_id": to,
    });
    if let Some(code) = error_code {
        let title = if code == UNDELIVERABLE { "Message undeliverable" } else { "Message failed to send" };
        status["errors"] = json!([{
            "code": code,
            "title": title,
            "message": title,
            "error_data": { "details": title },
        }]);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID },
                    "statuses": [status],
                },
            }],
        }],
    })
    .to_string()
}

fn signature(body: &str, secret: &str) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
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
    if let Some(url) = inner.webhook.clone() {
        // WhatsApp reports a message's fate a moment after accepting it.
        let failed = inner.undeliverable_later.contains(&to);
        let (state, id, to) = (Arc::clone(&state), id.clone(), to.clone());
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let body = status_notification(&id, &to, failed.then_some(UNDELIVERABLE));
            let answer = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", signature(&body, APP_SECRET))
                .body(body)
                .send()
                .await;
            let status = answer.map_or(0, |a| a.status().as_u16());
            state.lock().expect("lock").webhook_answers.push(status);
        });
    }
    let answer = json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": to }],
        "messages": [{ "id": id }],
    });
    (StatusCode::OK, axum::Json(answer)).into_response()
}
