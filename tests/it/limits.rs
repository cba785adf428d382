//! The listener's limits against clients that are slow on purpose or too
//! many: a slow-loris client is cut off while others are served, a body
//! that trickles in gets `408`, and connections past the cap wait.

use std::time::Duration;

use soxara::config::{FileConfig, ListenerSettings};
use soxara_tests::{TestApp, spawn_app_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for the gateway to do what it must; far beyond
/// the limits configured below, so only a gateway that never acts fails.
const PATIENCE: Duration = Duration::from_secs(20);

async fn gateway(limits: ListenerSettings) -> TestApp {
    spawn_app_with(FileConfig { listener: limits, ..FileConfig::default() }).await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap()
}

/// Writes `first`, then one more byte every 50 ms until the gateway closes
/// the connection (while reading from it); returns what the gateway sent.
async fn trickle(stream: TcpStream, first: String) -> String {
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(first.as_bytes()).await.unwrap();
    let dripping = tokio::spawn(async move {
        // Each byte comes well inside any per-read timeout: only a deadline
        // on the whole head or body stops it.
        while writer.write_all(b"a").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, reader.read_to_end(&mut answer))
        .await
        .expect("the gateway closes the connection")
        .ok();
    dripping.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_slow_loris_client_is_cut_off_while_others_are_served() {
    let app = gateway(ListenerSettings { header_read_timeout_ms: 500, ..ListenerSettings::default() }).await;
    let slow = connect(&app).await;
    // A header that never ends.
    let cut_off = tokio::spawn(trickle(slow, "POST /v1/payments HTTP/1.1\r\nHost: gateway\r\nX-Slow: ".into()));
    // Meanwhile everyone else is served.
    for _ in 0..5 {
        assert_eq!(app.get(&app.key, "/v1/account").await.status, 200);
    }
    let answer = cut_off.await.unwrap();
    assert!(!answer.contains("201"), "the slow request was never served: {answer}");
    assert_eq!(app.get(&app.key, "/v1/account").await.status, 200);
}

#[tokio::test]
async fn a_body_that_trickles_in_gets_408_and_nothing_is_done() {
    let app = gateway(ListenerSettings { body_read_timeout_ms: 500, ..ListenerSettings::default() }).await;
    let slow = connect(&app).await;
    let head = format!(
        "POST /v1/payments HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {}\r\nX-Idempotency-Key: slow-body-1\r\n\
         Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n{{\"amount\":",
        app.key
    );
    let answer = trickle(slow, head).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    assert_eq!(app.get(&app.key, "/v1/account").await.status, 200, "others are served");
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let app = gateway(ListenerSettings { connections_max: 2, ..ListenerSettings::default() }).await;
    // The harness's client keeps no connection yet; two idle ones fill the cap.
    let held = [connect(&app).await, connect(&app).await];
    let client = reqwest::Client::new();
    let (url, key) = (format!("{}/v1/account", app.base), app.key.clone());
    let mut waiting = tokio::spawn(async move { client.get(url).bearer_auth(key).send().await.unwrap().status() });
    let served_early = tokio::time::timeout(Duration::from_millis(500), &mut waiting).await;
    assert!(served_early.is_err(), "a third connection is not served while two are open");
    drop(held);
    let status = tokio::time::timeout(PATIENCE, waiting).await.expect("served once a slot frees").unwrap();
    assert_eq!(status, 200);
}
