use serde_json::json;
use soxara::config::{FileConfig, RouteSetting};
use soxara_tests::{TestApp, momo, new_key, spawn_app, spawn_app_with_plugins, test_plugin};

#[tokio::test]
async fn a_replay_returns_the_stored_answer_and_says_so() {
    let app = spawn_app().await;
    let idem = new_key();
    let body = momo(1000, "USD", "+231770001234");
    let first = app.pay(&app.key, Some(&idem), &body).await;
    assert_eq!(first.status, 201);
    assert!(first.headers.get("idempotency-replayed").is_none());
    // Sogo's header name carries the same key.
    let replay = soxara_tests::answer(
        app.client
            .post(format!("{}/v1/payments", app.base))
            .bearer_auth(&app.key)
            .header("Idempotency-Key", &idem)
            .body(body.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.headers["idempotency-replayed"], "true");
    assert_eq!(replay.body, first.body);
    // Key order and spacing do not make it a different request.
    let reordered =
        r#"{ "customer": {"phone": "+231770001234"}, "method": "mtn_momo", "currency": "USD", "amount": 1000 }"#;
    assert_eq!(app.pay(&app.key, Some(&idem), reordered).await.body, first.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 1);
}

#[tokio::test]
async fn writes_need_a_key_and_a_key_fits_one_request() {
    let app = spawn_app().await;
    let missing = app.pay(&app.key, None, &momo(1000, "USD", "+231770001234")).await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.code(), "IDEMPOTENCY_KEY_REQUIRED");

    let idem = new_key();
    assert_eq!(app.pay(&app.key, Some(&idem), &momo(1000, "USD", "+231770001234")).await.status, 201);
    let other_body = app.pay(&app.key, Some(&idem), &momo(2000, "USD", "+231770001234")).await;
    assert_eq!(other_body.status, 422);
    assert_eq!(other_body.code(), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 1);
}

#[tokio::test]
async fn a_key_still_in_flight_gets_409() {
    let app = spawn_app().await;
    let body = momo(1000, "USD", "+231770001234");
    // The body in canonical form (sorted keys, no spacing), as the gateway
    // fingerprints it.
    let canonical = serde_json::from_str::<serde_json::Value>(&body).unwrap().to_string();
    // Claim the key as a request that has not finished yet would have.
    let tenant = soxara::values::mode::Tenant::new(app.merchant_id.clone(), soxara::values::mode::Mode::Test);
    let endpoint = soxara::operations::idempotency::WriteEndpoint::Payments;
    let request = soxara::operations::idempotency::KeyedRequest::new(tenant, "idem-busy".into(), endpoint, &canonical);
    app.state().ops.store.write(move |conn| request.claim(conn, "pay_busy", 0)).await.unwrap();
    let answer = app.pay(&app.key, Some("idem-busy"), &body).await;
    assert_eq!(answer.status, 409);
    assert_eq!(answer.code(), "IDEMPOTENCY_REQUEST_IN_PROGRESS");
}

#[tokio::test]
async fn transactions_are_found_by_idempotency_key_or_reference() {
    let app = spawn_app().await;
    let idem = new_key();
    let created = app.pay(&app.key, Some(&idem), &momo(1000, "USD", "+231770001234")).await;
    let by_key = app.get(&app.key, &format!("/v1/transactions/{idem}")).await;
    assert_eq!(by_key.status, 200);
    assert_eq!(by_key.body, created.body);
    let reference = created.body["reference"].as_str().unwrap();
    assert_eq!(app.get(&app.key, &format!("/v1/transactions/{reference}")).await.body, created.body);
    let never = app.get(&app.key, "/v1/transactions/never-used-key").await;
    assert_eq!(never.status, 404);
    assert_eq!(never.code(), "RESOURCE_NOT_FOUND");
}

#[tokio::test]
async fn keys_are_scoped_to_the_merchant() {
    let app = spawn_app().await;
    let (_, other) = app.create_merchant("Other").await;
    let body = momo(1000, "USD", "+231770001234");
    let mine = app.pay(&app.key, Some("shared-key"), &body).await;
    let theirs = app.pay(&other, Some("shared-key"), &body).await;
    assert_eq!((mine.status.as_u16(), theirs.status.as_u16()), (201, 201));
    assert_ne!(mine.body["id"], theirs.body["id"]);
    assert!(theirs.headers.get("idempotency-replayed").is_none());
}

/// The sandbox simulator imports no way to act on the world: its call,
/// claim and answer are one write, so every request but the first replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_with_one_key_make_one_payment() {
    let app = spawn_app().await;
    fifty_with_one_key(&app, &momo(2500, "LRD", "+231770001234")).await;
}

/// The hostile test rail imports outbound HTTP: the key is claimed before
/// its call, so a request may also find it in flight (409).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_with_one_key_make_one_payment_on_a_rail_that_acts_outside() {
    let mut config = FileConfig::default();
    config.routes.push(RouteSetting { mode: "test".into(), method: "orange_money".into(), plugin: "hostile".into() });
    let app = spawn_app_with_plugins(config, &[test_plugin("hostile")]).await;
    let body =
        json!({"amount": 2500, "currency": "LRD", "method": "orange_money", "customer": {"phone": "+231770001234"}});
    fifty_with_one_key(&app, &body.to_string()).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM payments WHERE rail = 'hostile'").await, 1);
}

async fn fifty_with_one_key(app: &TestApp, body: &str) {
    let idem = new_key();
    let requests = (0..50).map(|_| app.pay(&app.key, Some(&idem), body));
    let answers = futures::future::join_all(requests).await;

    let originals: Vec<_> =
        answers.iter().filter(|a| a.status == 201 && a.headers.get("idempotency-replayed").is_none()).collect();
    assert_eq!(originals.len(), 1, "exactly one request made the payment");
    let payment = &originals[0].body;
    assert_eq!(payment["status"], "completed");
    for answer in &answers {
        match answer.status.as_u16() {
            201 => assert_eq!(&answer.body, payment),
            409 => assert_eq!(answer.code(), "IDEMPOTENCY_REQUEST_IN_PROGRESS"),
            other => panic!("unexpected {other}: {:?}", answer.body),
        }
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries").await, 1);
}
