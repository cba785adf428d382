//! Tenancy: one merchant's key never reads or changes another merchant's
//! objects, and a key never crosses modes (a live key cannot touch test
//! objects of its own merchant). Every object endpoint is tried with the
//! owner's key (it works, so the ids are real) and with the others.

use reqwest::Method;
use serde_json::{Value, json};
use soxara::domain::keys::KeyKind;
use soxara::values::mode::Mode;
use soxara_tests::{Answer, TestApp, momo, new_key, spawn_app};

/// What the owner made: the ids other keys will try.
struct Owned {
    payment_id: String,
    reference: String,
    idempotency_key: String,
    refund_id: String,
    endpoint_id: String,
    event_id: String,
    /// To a number not on Soxara: it waits for a claim, with a message.
    transfer_id: String,
}

async fn make_objects(app: &TestApp) -> Owned {
    let idempotency_key = new_key();
    let paid = app.pay(&app.key, Some(&idempotency_key), &momo(2_000, "USD", "+231770001234")).await;
    assert_eq!(paid.body["status"], "completed", "{:?}", paid.body);
    let payment_id = paid.body["id"].as_str().unwrap().to_string();
    let refund =
        app.post(&app.key, "/v1/refunds", &new_key(), &json!({ "payment_id": payment_id, "amount": 500 })).await;
    assert_eq!(refund.status, 201, "{:?}", refund.body);
    let transfer = json!({ "amount": 300, "currency": "USD", "recipient": { "phone": "+231880009999" } });
    let transfer = app.post(&app.key, "/v1/transfers", &new_key(), &transfer).await;
    assert_eq!(transfer.body["status"], "pending_claim", "{:?}", transfer.body);
    let transfer_id = transfer.body["id"].as_str().unwrap().to_string();
    soxara_tests::wait_for("the owner's claim message", || async {
        let outbox = app.get(&app.key, "/v1/test/messages").await;
        outbox.body.to_string().contains(&transfer_id).then_some(())
    })
    .await;
    let endpoint = app
        .client
        .post(format!("{}/v1/webhook_endpoints", app.base))
        .bearer_auth(&app.key)
        .json(&json!({ "url": "https://hooks.example.com/soxara", "events": ["*"] }))
        .send()
        .await
        .unwrap();
    let endpoint = soxara_tests::answer(endpoint).await;
    assert_eq!(endpoint.status, 201, "{:?}", endpoint.body);
    let endpoint = endpoint.body;
    let lookup = payment_id.clone();
    let event_id = app
        .state()
        .ops
        .store
        .read(move |conn| {
            Ok(conn.query_row("SELECT id FROM events WHERE object_id = ?1 LIMIT 1", [&lookup], |row| {
                row.get::<_, String>(0)
            })?)
        })
        .await
        .expect("the payment emitted an event");
    Owned {
        reference: paid.body["reference"].as_str().unwrap().to_string(),
        refund_id: refund.body["id"].as_str().unwrap().to_string(),
        endpoint_id: endpoint["id"].as_str().unwrap().to_string(),
        transfer_id,
        payment_id,
        idempotency_key,
        event_id,
    }
}

async fn call(app: &TestApp, key: &str, method: Method, path: &str, body: Option<Value>) -> Answer {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(key)
        .header("X-Idempotency-Key", new_key());
    if let Some(body) = body {
        request = request.json(&body);
    }
    soxara_tests::answer(request.send().await.unwrap()).await
}

/// Every object endpoint, as (method, path, body).
fn attempts(owned: &Owned) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, format!("/v1/payments/{}", owned.payment_id), None),
        (Method::GET, format!("/v1/refunds/{}", owned.refund_id), None),
        (Method::POST, "/v1/refunds".into(), Some(json!({ "payment_id": owned.payment_id, "amount": 100 }))),
        (Method::GET, format!("/v1/transactions/{}", owned.payment_id), None),
        (Method::GET, format!("/v1/transactions/{}", owned.reference), None),
        (Method::GET, format!("/v1/transactions/{}", owned.idempotency_key), None),
        (Method::GET, format!("/v1/transfers/{}", owned.transfer_id), None),
        (Method::GET, format!("/v1/transactions/{}", owned.transfer_id), None),
        (Method::GET, format!("/v1/events/{}", owned.event_id), None),
        (Method::POST, format!("/v1/events/{}/redeliver", owned.event_id), None),
        (Method::POST, format!("/v1/webhook_endpoints/{}/rotate_secret", owned.endpoint_id), None),
        (Method::POST, format!("/v1/webhook_endpoints/{}/ping", owned.endpoint_id), None),
        (Method::DELETE, format!("/v1/webhook_endpoints/{}", owned.endpoint_id), None),
    ]
}

/// Each attempt with `key` is a 404, and changes nothing the owner sees.
async fn assert_cannot_touch(app: &TestApp, key: &str, owned: &Owned, who: &str) {
    for (method, path, body) in attempts(owned) {
        let answer = call(app, key, method.clone(), &path, body).await;
        assert_eq!(answer.status, 404, "{who}: {method} {path} answered {:?}", answer.body);
    }
    let verified = call(
        app,
        key,
        Method::POST,
        "/v1/transactions/verify",
        Some(json!({ "reference": owned.reference, "amount": 2000, "currency": "USD" })),
    )
    .await;
    assert_eq!(verified.body["reason"], "not_found", "{who}: {:?}", verified.body);
    let listed = call(app, key, Method::GET, "/v1/webhook_endpoints", None).await;
    assert!(!listed.body.to_string().contains(&owned.endpoint_id), "{who} listed the owner's endpoint");
    let history = call(app, key, Method::GET, "/v1/customers/+231770001234/transactions", None).await;
    assert!(!history.body.to_string().contains(&owned.payment_id), "{who} saw the owner's payment in a history");
    let outbox = call(app, key, Method::GET, "/v1/test/messages", None).await;
    assert!(!outbox.body.to_string().contains(&owned.transfer_id), "{who} read the owner's claim message");
}

#[tokio::test]
async fn no_key_reaches_another_merchants_or_another_modes_objects() {
    let app = spawn_app().await;
    let owned = make_objects(&app).await;
    let (_, other_merchant) = app.create_merchant("Other shop").await;
    assert_cannot_touch(&app, &other_merchant, &owned, "another merchant").await;
    let own_live_key = app.create_key(&app.merchant_id, Mode::Live, KeyKind::Secret).await;
    assert_cannot_touch(&app, &own_live_key, &owned, "the owner's live key").await;

    // Nothing was changed: the owner's refund stands alone, the endpoint is
    // still there, and every read works with the owner's key (so the 404s
    // above were about whose key it was, not about the ids).
    assert_eq!(app.count(&format!("SELECT count(*) FROM refunds WHERE payment_id = '{}'", owned.payment_id)).await, 1);
    for (method, path, _) in attempts(&owned).into_iter().filter(|(m, _, _)| *m == Method::GET) {
        let answer = call(&app, &app.key, method, &path, None).await;
        assert_eq!(answer.status, 200, "owner: {path} {:?}", answer.body);
    }
    let deleted =
        call(&app, &app.key, Method::DELETE, &format!("/v1/webhook_endpoints/{}", owned.endpoint_id), None).await;
    assert!(deleted.status.is_success(), "the endpoint was still the owner's: {:?}", deleted.body);
    let history = call(&app, &app.key, Method::GET, "/v1/customers/+231770001234/transactions", None).await;
    assert!(history.body.to_string().contains(&owned.payment_id));
    let outbox = call(&app, &app.key, Method::GET, "/v1/test/messages", None).await;
    assert!(outbox.body.to_string().contains(&owned.transfer_id), "{:?}", outbox.body);
}
