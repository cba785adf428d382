//! A webhook receiver to copy: verifies every delivery, refuses stale ones,
//! handles each event id once, and answers 2xx quickly.
//!
//! ```sh
//! WEBHOOK_SECRET=whsec_... cargo run -p webhook-receiver -- 127.0.0.1:9000
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use webhook_receiver::{Verifier, now_s};

struct Receiver {
    verifier: Verifier,
    /// Event ids already handled: delivery is at least once, so the same
    /// event can arrive again (with the same id) and must not be acted on twice.
    seen: Mutex<HashSet<String>>,
}

#[tokio::main]
async fn main() {
    let secret = std::env::var("WEBHOOK_SECRET").expect("set WEBHOOK_SECRET to the endpoint's whsec_… secret");
    let verifier = Verifier::new(&secret).expect("WEBHOOK_SECRET must look like whsec_<base64>");
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9000".to_string());
    let state = Arc::new(Receiver { verifier, seen: Mutex::new(HashSet::new()) });
    let app = Router::new().route("/webhooks", post(receive)).with_state(state);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("the address is free");
    println!("listening on http://{addr}/webhooks");
    axum::serve(listener, app).await.expect("the server runs");
}

async fn receive(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if let Err(rejection) = receiver.verifier.verify(&headers, &body, now_s()) {
        eprintln!("refused a delivery: {rejection:?}");
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let id = event["id"].as_str().unwrap_or_default().to_string();
    let first_time = receiver.seen.lock().expect("never poisoned").insert(id.clone());
    if first_time {
        // Hand the event to a queue here; answer within 15 s regardless.
        println!("{} {} {}", event["event"].as_str().unwrap_or("?"), id, event["data"]["object"]["id"]);
    } else {
        println!("{id} again: already handled");
    }
    StatusCode::OK
}
