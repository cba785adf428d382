//! Crypto sales through the real server and the real sandbox trader
//! component: deposit addresses stable per merchant, asset and network;
//! every published test reference (`DEP-TX-1234` credited with
//! `transaction.completed`, `DEP-TX-0000` held for compliance review,
//! `DEP-TX-9999` stuck confirming, both pending with no webhook); a deposit
//! reported twice credited once; and clear refusals of bad input.

use serde_json::{Value, json};
use soxara::config::FileConfig;
use soxara_tests::{Answer, TestApp, new_key, spawn_app, spawn_app_with_live_key};

async fn events(app: &TestApp, object_id: &str, event_type: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) FROM events WHERE object_id = '{object_id}' AND type = '{event_type}'")).await
}

async fn sandbox_balance(app: &TestApp, currency: &str) -> i64 {
    -app.count(&format!(
        "SELECT COALESCE(SUM(p.amount), 0) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
         WHERE a.kind = 'sandbox_balance' AND a.currency = '{currency}'"
    ))
    .await
}

async fn post_plain(app: &TestApp, key: &str, path: &str, body: &Value) -> Answer {
    let request = app.client.post(format!("{}{path}", app.base)).bearer_auth(key).json(body);
    soxara_tests::answer(request.send().await.expect("the request is sent")).await
}

async fn usdt_address(app: &TestApp, key: &str) -> String {
    let body = json!({ "asset": "USDT", "network": "tron", "payout_currency": "USD" });
    let made = post_plain(app, key, "/v1/crypto/addresses", &body).await;
    assert!(made.status == 201 || made.status == 200, "{:?}", made.body);
    made.body["address"].as_str().unwrap().to_string()
}

async fn deposit(app: &TestApp, key: &str, address: &str, reference: &str) -> Answer {
    let body = json!({ "address": address, "amount": 25_500_000, "test_reference": reference });
    app.post(&app.key, "/v1/crypto/test-deposit", key, &body).await
}

#[tokio::test]
async fn every_published_test_reference_behaves_as_published() {
    let app = spawn_app().await;
    let address = usdt_address(&app, &app.key).await;
    // (reference, status, deposit state, the event it fires)
    let table = [
        ("DEP-TX-1234", "completed", "confirmed", Some("transaction.completed")),
        ("DEP-TX-0000", "pending", "held", None),
        ("DEP-TX-9999", "pending", "confirming", None),
    ];
    let mut ids = Vec::new();
    for (reference, status, state, event) in table {
        let key = new_key();
        let made = deposit(&app, &key, &address, reference).await;
        assert_eq!(made.status, 201, "{reference}: {:?}", made.body);
        let sale = &made.body;
        assert_eq!((sale["object"].as_str(), sale["type"].as_str()), (Some("transaction"), Some("crypto_sale")));
        assert_eq!((&sale["status"], &sale["crypto"]["state"]), (&json!(status), &json!(state)), "{reference}: {sale}");
        assert_eq!(sale["crypto"]["amount"], "25500000");
        if status == "completed" {
            // 25.5 USDT at USD 0.99: USD 25.24, less 1%.
            assert_eq!(
                (sale["amount"].as_i64(), sale["fee"].as_i64(), sale["net_amount"].as_i64()),
                (Some(2_524), Some(25), Some(2_499))
            );
            assert_eq!(sale["crypto"]["rate"]["decimal"], "0.990000");
        } else {
            assert_eq!((sale["amount"].as_i64(), sale["next_action"]["type"].as_str()), (Some(0), Some("wait")));
        }
        let id = sale["id"].as_str().unwrap().to_string();
        for kind in ["transaction.completed", "transaction.failed"] {
            assert_eq!(events(&app, &id, kind).await, i64::from(event == Some(kind)), "{reference}: {kind}");
        }
        let replayed = deposit(&app, &key, &address, reference).await;
        assert_eq!((replayed.status.as_u16(), &replayed.body), (201, &made.body), "{reference}");
        let found = app.get(&app.key, &format!("/v1/transactions/{key}?type=crypto_sale")).await;
        assert_eq!((found.status.as_u16(), &found.body["status"]), (200, &json!(status)));
        ids.push(id);
    }
    // Status checks follow the pending ones: they stay as published.
    let first_check_ms = u64::try_from(app.state().ops.checks.delay_ms(0)).unwrap();
    app.advance_past_worker("status_checks", first_check_ms + 1_000).await;
    app.advance_past_worker("status_checks", 1_000).await;
    for (id, (reference, status, state, _)) in ids.iter().zip(table) {
        let found = app.get(&app.key, &format!("/v1/transactions/{id}")).await;
        assert_eq!(
            (&found.body["status"], &found.body["crypto"]["state"]),
            (&json!(status), &json!(state)),
            "{reference}"
        );
        assert_eq!(events(&app, id, "transaction.completed").await, i64::from(status == "completed"), "{reference}");
    }
    assert_eq!(sandbox_balance(&app, "USD").await, 1_000_000 + 2_499, "credited once");
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_deposit_reported_twice_is_credited_once() {
    let app = spawn_app().await;
    let address = usdt_address(&app, &app.key).await;
    assert_eq!(deposit(&app, &new_key(), &address, "DEP-TX-5678").await.body["status"], "completed");
    let again = deposit(&app, &new_key(), &address, "DEP-TX-5678").await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "DEPOSIT_ALREADY_RECORDED"), "{:?}", again.body);
    assert!(again.body.to_string().contains("test_reference"), "{:?}", again.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM crypto_sales").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries WHERE kind = 'crypto_credit'").await, 1);
    assert_eq!(sandbox_balance(&app, "USD").await, 1_000_000 + 2_499);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn addresses_are_stable_per_merchant_asset_and_network() {
    let app = spawn_app().await;
    let body = json!({ "asset": "USDT", "network": "tron", "payout_currency": "USD" });
    let first = post_plain(&app, &app.key, "/v1/crypto/addresses", &body).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(first.body["object"], "deposit_address");
    let again = post_plain(&app, &app.key, "/v1/crypto/addresses", &body).await;
    assert_eq!((again.status.as_u16(), &again.body["address"]), (200, &first.body["address"]));
    // Another payout currency keeps the address and credits in it from now on.
    let lrd = json!({ "asset": "USDT", "network": "tron", "payout_currency": "LRD" });
    let switched = post_plain(&app, &app.key, "/v1/crypto/addresses", &lrd).await;
    assert_eq!((&switched.body["address"], &switched.body["payout_currency"]), (&first.body["address"], &json!("LRD")));
    let made = deposit(&app, &new_key(), first.body["address"].as_str().unwrap(), "DEP-TX-4321").await;
    // 25.5 USDT at LRD 188.10: LRD 4,796.55, less 1%.
    assert_eq!((made.body["currency"].as_str(), made.body["amount"].as_i64()), (Some("LRD"), Some(479_655)));
    let eth = json!({ "asset": "USDT", "network": "ethereum", "payout_currency": "USD" });
    let other_network = post_plain(&app, &app.key, "/v1/crypto/addresses", &eth).await;
    assert_ne!(other_network.body["address"], first.body["address"]);
    let (_, other_key) = app.create_merchant("Other Shop").await;
    let theirs = post_plain(&app, &other_key, "/v1/crypto/addresses", &body).await;
    assert_ne!(theirs.body["address"], first.body["address"], "one address per merchant");
    // Another merchant cannot deposit to it as theirs.
    let body = json!({ "address": first.body["address"], "amount": 1_000_000, "test_reference": "DEP-TX-1234" });
    let stranger = app.post(&other_key, "/v1/crypto/test-deposit", &new_key(), &body).await;
    assert_eq!((stranger.status.as_u16(), stranger.code()), (404, "RESOURCE_NOT_FOUND"), "{:?}", stranger.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM crypto_addresses").await, 3);
}

#[tokio::test]
async fn bad_crypto_requests_are_refused_with_the_field_that_is_wrong() {
    let app = spawn_app().await;
    let assets = app.get(&app.key, "/v1/crypto/assets").await;
    assert_eq!(assets.status, 200, "{:?}", assets.body);
    let symbols: Vec<&str> =
        assets.body["data"].as_array().unwrap().iter().map(|a| a["asset"].as_str().unwrap()).collect();
    assert_eq!(symbols, ["USDT", "BTC"]);
    let (not_offered, invalid) = ((422, "NOT_OFFERED"), (400, "VALIDATION_ERROR"));
    for (body, field, refusal) in [
        (json!({ "asset": "DOGE", "network": "tron", "payout_currency": "USD" }), "asset", not_offered),
        (json!({ "asset": "USDT", "network": "solana", "payout_currency": "USD" }), "network", not_offered),
        (json!({ "asset": "BTC", "network": "tron", "payout_currency": "USD" }), "network", not_offered),
        (json!({ "asset": "", "network": "tron", "payout_currency": "USD" }), "asset", invalid),
        (json!({ "asset": "USDT", "network": "", "payout_currency": "USD" }), "network", invalid),
        (json!({ "asset": "USDT", "network": "tron", "payout_currency": "EUR" }), "payout_currency", invalid),
        (json!({ "asset": "USDT", "network": "tron" }), "payout_currency", invalid),
    ] {
        let refused = post_plain(&app, &app.key, "/v1/crypto/addresses", &body).await;
        assert_eq!((refused.status.as_u16(), refused.code()), refusal, "{body}: {:?}", refused.body);
        assert!(refused.body.to_string().contains(&format!("\"{field}\"")), "{body} names {field}: {:?}", refused.body);
    }
    let address = usdt_address(&app, &app.key).await;
    for (body, field) in [
        (json!({ "address": address, "amount": 0, "test_reference": "DEP-TX-1234" }), "amount"),
        (json!({ "address": address, "amount": 1.5, "test_reference": "DEP-TX-1234" }), "amount"),
        (json!({ "address": address, "amount": 100 }), "test_reference"),
        (json!({ "address": address, "amount": 100, "test_reference": "has space" }), "test_reference"),
        (json!({ "address": "", "amount": 100, "test_reference": "DEP-TX-1234" }), "address"),
    ] {
        let refused = app.post(&app.key, "/v1/crypto/test-deposit", &new_key(), &body).await;
        assert_eq!((refused.status.as_u16(), refused.code()), (400, "VALIDATION_ERROR"), "{body}: {:?}", refused.body);
        assert!(refused.body.to_string().contains(&format!("\"{field}\"")), "{body} names {field}: {:?}", refused.body);
    }
    // Well-formed, but not one of this merchant's addresses: like an unknown id.
    let body = json!({ "address": "T-not-mine", "amount": 100, "test_reference": "DEP-TX-1234" });
    let refused = app.post(&app.key, "/v1/crypto/test-deposit", &new_key(), &body).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (404, "RESOURCE_NOT_FOUND"), "{:?}", refused.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM crypto_sales").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM idempotency_keys").await, 0, "no key bound");
}

#[tokio::test]
async fn test_deposits_are_for_test_keys_only() {
    let (app, live_key) = spawn_app_with_live_key(FileConfig::default()).await;
    let body = json!({ "address": "Tanything", "amount": 100, "test_reference": "DEP-TX-1234" });
    let refused = app.post(&live_key, "/v1/crypto/test-deposit", &new_key(), &body).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "TEST_MODE_ONLY"), "{:?}", refused.body);
    let live = post_plain(
        &app,
        &live_key,
        "/v1/crypto/addresses",
        &json!({ "asset": "USDT", "network": "tron", "payout_currency": "USD" }),
    )
    .await;
    assert_eq!((live.status.as_u16(), live.code()), (503, "PROVIDER_UNAVAILABLE"), "no live trader: {:?}", live.body);
}
