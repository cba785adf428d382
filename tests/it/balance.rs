//! `GET /v1/balance`: what the platform owes a merchant, per currency and
//! operating entity, read from the ledger.

use reqwest::Method;
use serde_json::json;
use soxara::domain::keys::KeyKind;
use soxara::values::mode::Mode;
use soxara_tests::{TestApp, momo, new_key, spawn_app};

async fn balances(app: &TestApp, key: &str) -> serde_json::Value {
    let answer = app.get(key, "/v1/balance").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["balances"].clone()
}

#[tokio::test]
async fn the_balance_follows_payments_and_refunds_per_currency() {
    let app = spawn_app().await;
    assert_eq!(balances(&app, &app.key).await, json!([]), "nothing collected yet");
    // (Nothing is available either: the default hold is a day; see
    // tests/it/settlements.rs for available money and payouts.)
    let usd = app.pay(&app.key, Some(&new_key()), &momo(2_000, "USD", "+231770001234")).await;
    let usd_net = usd.body["net_amount"].as_i64().unwrap();
    assert!(usd_net > 0 && usd_net < 2_000, "{:?}", usd.body);
    let lrd = app.pay(&app.key, Some(&new_key()), &momo(50_000, "LRD", "+231770001234")).await;
    let lrd_net = lrd.body["net_amount"].as_i64().unwrap();
    let entity = usd.body["entity"].as_str().unwrap();
    assert_eq!(
        balances(&app, &app.key).await,
        json!([
            { "currency": "LRD", "entity": entity, "pending": lrd_net, "available": 0, "in_transit": 0, "reserved": 0 },
            { "currency": "USD", "entity": entity, "pending": usd_net, "available": 0, "in_transit": 0, "reserved": 0 },
        ])
    );

    let refund =
        app.post(&app.key, "/v1/refunds", &new_key(), &json!({ "payment_id": usd.body["id"], "amount": 500 })).await;
    assert_eq!(refund.body["status"], "completed", "{:?}", refund.body);
    assert_eq!(balances(&app, &app.key).await[1]["pending"], usd_net - 500, "a refund comes out of pending");
    let body = app.get(&app.key, "/v1/balance").await.body;
    assert_eq!((body["object"].as_str(), body["livemode"].as_bool()), (Some("balance"), Some(false)));

    // Nobody else sees it: not another merchant, not this merchant's live key.
    let (_, other) = app.create_merchant("Other shop").await;
    assert_eq!(balances(&app, &other).await, json!([]));
    let live = app.create_key(&app.merchant_id, Mode::Live, KeyKind::Secret).await;
    assert_eq!(balances(&app, &live).await, json!([]));
}

#[tokio::test]
async fn reading_the_balance_needs_its_scope_and_a_secret_key() {
    let app = spawn_app().await;
    let made = app.admin(Method::POST, "/admin/merchants", Some(json!({ "name": "Scoped shop", "kyc_tier": 2 }))).await;
    let id = made.body["id"].as_str().unwrap();
    let request = json!({ "mode": "test", "scopes": ["payments:read"] });
    let pair = app.admin(Method::POST, &format!("/admin/merchants/{id}/keys"), Some(request)).await;
    let scoped = app.get(pair.body["secret_key"].as_str().unwrap(), "/v1/balance").await;
    assert_eq!(scoped.code(), "INVALID_SCOPE");
    let public = app.get(pair.body["public_key"].as_str().unwrap(), "/v1/balance").await;
    assert_eq!(public.code(), "SECRET_KEY_REQUIRED");
}
