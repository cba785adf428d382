use serde_json::{Value, json};
use soxara::config::FileConfig;
use soxara::domain::keys::KeyKind;
use soxara::values::mode::Mode;
use soxara_tests::fakes::{Received, WebhookSink};
use soxara_tests::{TestApp, momo, new_key, spawn_app, spawn_app_with, wait_for};

#[tokio::test]
async fn endpoints_on_internal_addresses_are_refused_by_default() {
    let app = spawn_app().await;
    for url in [
        "http://127.0.0.1:9000/hooks",
        "http://localhost/hooks",
        "http://10.0.0.7/",
        "http://169.254.169.254/latest",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://[::a9fe:a9fe]/",
        "http://0.0.0.1/",
        "http://198.18.0.1/",
        "http://240.0.0.1/",
    ] {
        let answer = soxara_tests::answer(
            app.client
                .post(format!("{}/v1/webhook_endpoints", app.base))
                .bearer_auth(&app.key)
                .json(&json!({"url": url, "events": ["*"]}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(answer.code(), "VALIDATION_ERROR", "{url}");
        assert!(answer.body["error"]["fields"][0]["message"].as_str().unwrap().contains("public address"), "{url}");
    }
}

#[tokio::test]
async fn live_endpoints_must_use_https() {
    let app = spawn_app().await;
    let live = app.create_key(&app.merchant_id, Mode::Live, KeyKind::Secret).await;
    let made = |url: &'static str| {
        app.client
            .post(format!("{}/v1/webhook_endpoints", app.base))
            .bearer_auth(&live)
            .json(&json!({"url": url, "events": ["*"]}))
            .send()
    };
    let plain = soxara_tests::answer(made("http://hooks.merchant.example/soxara").await.unwrap()).await;
    assert_eq!(plain.code(), "VALIDATION_ERROR");
    assert!(plain.body["error"]["fields"][0]["message"].as_str().unwrap().contains("https"), "{:?}", plain.body);
    let secure = soxara_tests::answer(made("https://hooks.merchant.example/soxara").await.unwrap()).await;
    assert_eq!(secure.status, 201, "{:?}", secure.body);
}

/// A name that looked public when the endpoint was made may later answer
/// with an internal address (DNS rebinding, a changed record). Every send
/// resolves it, checks every address and connects only to those it
/// checked; the attempt log never names the address.
#[tokio::test]
async fn a_host_that_turns_internal_is_refused_at_send_without_naming_the_address() {
    let sink = WebhookSink::start().await;
    let mut config = FileConfig::default();
    config.webhooks.retry_delays_ms = vec![50; 40];
    config.webhooks.poll_interval_ms = 20;
    let app = spawn_app_with(config).await;
    let endpoint = add_endpoint(&app, "https://hooks.merchant.example/soxara", json!(["*"])).await;
    // Its name now resolves to loopback, where something listens.
    let turned = sink.url().replace("127.0.0.1", "localhost");
    let conn = rusqlite::Connection::open(&app.database).unwrap();
    conn.execute("UPDATE webhook_endpoints SET url = ?1 WHERE id = ?2", (&turned, endpoint["id"].as_str().unwrap()))
        .unwrap();

    let paid = app.pay(&app.key, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    let attempts = wait_for("refused attempts", || async {
        let id: String = conn.query_row("SELECT id FROM events LIMIT 1", [], |row| row.get(0)).ok()?;
        let event = app.get(&app.key, &format!("/v1/events/{id}")).await.body;
        let attempts = event["deliveries"][0]["attempts"].as_array().cloned().unwrap_or_default();
        (attempts.len() >= 2).then_some(attempts)
    })
    .await;
    for attempt in &attempts {
        let error = attempt["error"].as_str().unwrap_or_default();
        assert!(error.contains("refused") && error.contains("public addresses only"), "{attempt}");
        assert!(!error.contains("127.0.0.1") && !error.contains("::1"), "no internal address echoed: {attempt}");
        assert!(attempt["response_excerpt"].is_null(), "{attempt}");
    }
    assert!(sink.received().is_empty(), "nothing reached the internal address");
}
use webhook_receiver::{Verifier, now_s};

/// Settings that let endpoints live on this machine (the test receivers do).
fn local_receivers() -> FileConfig {
    let mut config = FileConfig::default();
    config.webhooks.allow_private_targets = true;
    config
}

/// Local receivers, and retries that come quickly so tests see several attempts.
fn quick_retries() -> FileConfig {
    let mut config = local_receivers();
    config.webhooks.retry_delays_ms = vec![50; 40];
    config.webhooks.poll_interval_ms = 20;
    config
}

async fn add_endpoint(app: &TestApp, url: &str, events: Value) -> Value {
    let answer = soxara_tests::answer(
        app.client
            .post(format!("{}/v1/webhook_endpoints", app.base))
            .bearer_auth(&app.key)
            .json(&json!({ "url": url, "events": events }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    answer.body
}

async fn post_empty(app: &TestApp, path: &str) -> soxara_tests::Answer {
    soxara_tests::answer(app.client.post(format!("{}{path}", app.base)).bearer_auth(&app.key).send().await.unwrap())
        .await
}

/// Both signatures verify, with our receiver and with the Standard Webhooks library.
fn assert_verifies(received: &Received, secret: &str) {
    Verifier::new(secret).unwrap().verify(&received.headers, &received.body, now_s()).expect("our receiver accepts it");
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&received.body, &received.headers)
        .expect("an off-the-shelf Standard Webhooks verifier accepts it");
}

#[tokio::test]
async fn a_payment_is_delivered_signed_and_logged() {
    let sink = WebhookSink::start().await;
    let app = spawn_app_with(local_receivers()).await;
    let endpoint = add_endpoint(&app, &sink.url(), json!(["*"])).await;
    let secret = endpoint["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));

    let paid = app.pay(&app.key, Some(&new_key()), &momo(1_250, "USD", "+231770001234")).await;
    let deliveries = wait_for("two deliveries", || async {
        let accepted = sink.accepted();
        (accepted.len() >= 2).then_some(accepted)
    })
    .await;
    let mut events: Vec<String> = deliveries.iter().map(|d| d.json()["event"].as_str().unwrap().to_string()).collect();
    events.sort();
    assert_eq!(events, ["payment.succeeded", "transaction.completed"]);
    for delivery in &deliveries {
        assert_verifies(delivery, secret);
        let event = delivery.json();
        assert!(event["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(delivery.header("webhook-id"), event["id"].as_str().unwrap());
        assert_eq!(delivery.header("x-soxara-event"), event["event"].as_str().unwrap());
        assert!(delivery.header("x-soxara-delivery").starts_with("whd_"));
        assert_eq!(delivery.header("x-soxara-timestamp"), delivery.header("webhook-timestamp"));
        assert_eq!(event["data"]["object"], paid.body, "the payment object as the API returns it");
        assert!(event["created_at"].is_string());
    }
    // A tampered body fails verification.
    let mut forged = deliveries[0].clone();
    forged.body = forged.body.iter().map(|b| if *b == b'5' { b'6' } else { *b }).collect();
    assert!(Verifier::new(secret).unwrap().verify(&forged.headers, &forged.body, now_s()).is_err());

    let event_id = deliveries[0].json()["id"].as_str().unwrap().to_string();
    let log = wait_for("the delivery log", || async {
        let event = app.get(&app.key, &format!("/v1/events/{event_id}")).await.body;
        (event["deliveries"][0]["status"] == "delivered").then_some(event)
    })
    .await;
    let attempt = &log["deliveries"][0]["attempts"][0];
    assert_eq!(attempt["status_code"], 200);
    assert!(attempt["latency_ms"].is_i64());
    assert_eq!(log["deliveries"][0]["endpoint_id"], endpoint["id"]);
}

#[tokio::test]
async fn endpoints_get_only_what_they_subscribe_to() {
    let app = spawn_app_with(local_receivers()).await;
    let sink = WebhookSink::start().await;
    let refunds = add_endpoint(&app, &sink.url(), json!(["transaction.refunded"])).await;
    app.pay(&app.key, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    app.pay(&app.key, Some(&new_key()), &momo(1_000, "USD", "+231770000000")).await;
    app.pay(&app.key, Some(&new_key()), &momo(1_000, "USD", "+231779999999")).await;
    let queued = app
        .count(&format!(
            "SELECT COUNT(*) FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.endpoint_id = '{}' AND e.type <> 'transaction.refunded'",
            refunds["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(queued, 0, "nothing it did not ask for");
    let delivered = wait_for("the refund event", || async {
        let accepted = sink.accepted();
        (!accepted.is_empty()).then_some(accepted)
    })
    .await;
    assert_eq!(delivered[0].json()["event"], "transaction.refunded");
    // Events are written only for changes that happened: 2 completed, 2 refunded, none for processing.
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await, 4);
}

#[tokio::test]
async fn at_most_three_endpoints_and_each_is_validated() {
    let app = spawn_app_with(local_receivers()).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(add_endpoint(&app, "https://merchant.example/hooks", json!(["*"])).await["id"].clone());
    }
    let fourth = soxara_tests::answer(
        app.client
            .post(format!("{}/v1/webhook_endpoints", app.base))
            .bearer_auth(&app.key)
            .json(&json!({"url": "https://merchant.example/4", "events": ["*"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((fourth.status.as_u16(), fourth.code()), (409, "WEBHOOK_ENDPOINT_LIMIT"));
    let listed = app.get(&app.key, "/v1/webhook_endpoints").await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 3);
    assert!(listed.body["data"][0].get("secret").is_none(), "secrets are shown only at creation and rotation");

    let deleted = soxara_tests::answer(
        app.client
            .delete(format!("{}/v1/webhook_endpoints/{}", app.base, ids[0].as_str().unwrap()))
            .bearer_auth(&app.key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(deleted.body["deleted"], true);
    add_endpoint(&app, "https://merchant.example/4", json!(["ping"])).await;

    for (body, field) in [
        (json!({"url": "ftp://merchant.example", "events": ["*"]}), "url"),
        (json!({"url": "not a url", "events": ["*"]}), "url"),
        (json!({"url": "https://m.example", "events": ["payment.exploded"]}), "events"),
        (json!({"url": "https://m.example", "events": []}), "events"),
        (json!({"url": "https://m.example"}), "events"),
    ] {
        let answer = soxara_tests::answer(
            app.client
                .post(format!("{}/v1/webhook_endpoints", app.base))
                .bearer_auth(&app.key)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(answer.code(), "VALIDATION_ERROR", "{body}");
        assert_eq!(answer.body["error"]["fields"][0]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn ping_and_secret_rotation_with_both_secrets_signing() {
    let sink = WebhookSink::start().await;
    let app = spawn_app_with(local_receivers()).await;
    let endpoint = add_endpoint(&app, &sink.url(), json!(["payment.failed"])).await;
    let id = endpoint["id"].as_str().unwrap();
    let old_secret = endpoint["secret"].as_str().unwrap().to_string();

    let ping = post_empty(&app, &format!("/v1/webhook_endpoints/{id}/ping")).await;
    assert_eq!(ping.status, 201);
    assert_eq!(ping.body["event"], "ping");
    let first = wait_for("the ping", || async { sink.accepted().first().cloned() }).await;
    assert_eq!(first.header("x-soxara-event"), "ping");
    assert_verifies(&first, &old_secret);

    let rotated = post_empty(&app, &format!("/v1/webhook_endpoints/{id}/rotate_secret")).await;
    let new_secret = rotated.body["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, old_secret);
    assert!(rotated.body["previous_secret_expires_at"].is_string());
    post_empty(&app, &format!("/v1/webhook_endpoints/{id}/ping")).await;
    let second = wait_for("the second ping", || async { sink.accepted().get(1).cloned() }).await;
    assert_verifies(&second, &new_secret);
    assert_verifies(&second, &old_secret);

    // Rotating with no overlap: only the newest secret signs.
    let now = soxara_tests::answer(
        app.client
            .post(format!("{}/v1/webhook_endpoints/{id}/rotate_secret", app.base))
            .bearer_auth(&app.key)
            .json(&json!({"previous_secret_expires_in_s": 0}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let newest = now.body["secret"].as_str().unwrap().to_string();
    post_empty(&app, &format!("/v1/webhook_endpoints/{id}/ping")).await;
    let third = wait_for("the third ping", || async { sink.accepted().get(2).cloned() }).await;
    assert_verifies(&third, &newest);
    assert!(Verifier::new(&new_secret).unwrap().verify(&third.headers, &third.body, now_s()).is_err());
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_event_later() {
    let sink = WebhookSink::start().await;
    sink.answer_with(503);
    let app = spawn_app_with(quick_retries()).await;
    let endpoint = add_endpoint(&app, &sink.url(), json!(["payment.succeeded"])).await;
    app.pay(&app.key, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    wait_for("three refused attempts", || async { (sink.received().len() >= 3).then_some(()) }).await;
    sink.answer_with(200);
    let delivered = wait_for("the delivery", || async { sink.accepted().first().cloned() }).await;
    assert_verifies(&delivered, endpoint["secret"].as_str().unwrap());

    let received = sink.received();
    let ids: Vec<String> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "every retry carries the same event id: {ids:?}");
    // The gateway records the accepted attempt just after the receiver answers.
    let attempts = wait_for("the accepted attempt to be recorded", || async {
        let event = app.get(&app.key, &format!("/v1/events/{}", ids[0])).await.body;
        let attempts = event["deliveries"][0]["attempts"].as_array().cloned().unwrap_or_default();
        (attempts.last().is_some_and(|a| a["status_code"] == 200)).then_some(attempts)
    })
    .await;
    assert!(attempts.len() >= 4);
    assert_eq!(attempts[0]["status_code"], 503);
    assert_eq!(attempts.last().unwrap()["status_code"], 200);

    // Manual redelivery sends the same event again.
    let before = sink.accepted().len();
    let redelivered = post_empty(&app, &format!("/v1/events/{}/redeliver", ids[0])).await;
    assert_eq!(redelivered.status, 200);
    let again =
        wait_for("the redelivery", || async { (sink.accepted().len() > before).then(|| sink.accepted()) }).await;
    assert_eq!(again.last().unwrap().header("webhook-id"), ids[0]);
}

#[tokio::test]
async fn a_restart_loses_no_pending_delivery_and_makes_no_new_event() {
    let sink = WebhookSink::start().await;
    sink.answer_with(500);
    let mut app = spawn_app_with(quick_retries()).await;
    add_endpoint(&app, &sink.url(), json!(["*"])).await;
    let paid = app.pay(&app.key, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    wait_for("refused attempts", || async { (sink.received().len() >= 2).then_some(()) }).await;

    app.stop_gateway().await;
    sink.answer_with(200);
    app.start_gateway().await;

    let delivered = wait_for("both events after the restart", || async {
        let accepted = sink.accepted();
        let mut kinds: Vec<String> = accepted.iter().map(|d| d.json()["event"].as_str().unwrap().to_string()).collect();
        kinds.sort();
        kinds.dedup();
        (kinds.len() == 2).then_some(accepted)
    })
    .await;
    let payment_id = paid.body["id"].as_str().unwrap();
    let events = app.count(&format!("SELECT COUNT(*) FROM events WHERE object_id = '{payment_id}'")).await;
    assert_eq!(events, 2, "the restart emitted nothing new");
    let stored: Vec<String> = app
        .state()
        .ops
        .store
        .read(|c| {
            let mut stmt = c.prepare("SELECT id FROM events")?;
            Ok(stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?)
        })
        .await
        .unwrap();
    for delivery in sink.received() {
        assert!(stored.contains(&delivery.header("webhook-id")), "every delivery is of a stored event");
    }
    assert!(delivered.len() >= 2);
}
