//! Refunds: `POST /v1/refunds` for completed payments, all or part, through
//! the rail that collected them (the sandbox simulator, Stripe's fake, a
//! wallet), with ledger entries and events, never more than the payment.

use serde_json::{Value, json};
use soxara_tests::{TestApp, momo, new_key, spawn_app};

async fn refund(app: &TestApp, key: &str, idempotency_key: &str, body: Value) -> soxara_tests::Answer {
    app.post(key, "/v1/refunds", idempotency_key, &body).await
}

async fn paid(app: &TestApp, amount: u64) -> String {
    let paid = app.pay(&app.key, Some(&new_key()), &momo(amount, "USD", "+231770001234")).await;
    assert_eq!(paid.body["status"], "completed", "{:?}", paid.body);
    paid.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn partial_refunds_add_up_to_a_refunded_payment_and_never_more() {
    let app = spawn_app().await;
    let payment_id = paid(&app, 1_000).await;

    let first =
        refund(&app, &app.key, &new_key(), json!({ "payment_id": payment_id, "amount": 300, "reason": "damaged" }))
            .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(first.body["object"], "refund");
    assert_eq!(first.body["status"], "completed");
    assert_eq!(first.body["amount"], 300);
    assert_eq!(first.body["entity"], "Phoenix Hub Liberia, Inc.");
    let payment = app.get(&app.key, &format!("/v1/payments/{payment_id}")).await.body;
    assert_eq!((payment["status"].as_str(), payment["amount_refunded"].as_i64()), (Some("completed"), Some(300)));

    let too_much = refund(&app, &app.key, &new_key(), json!({ "payment_id": payment_id, "amount": 701 })).await;
    assert_eq!(too_much.status, 422);
    assert_eq!(too_much.code(), "REFUND_EXCEEDS_PAYMENT");
    assert!(too_much.body["error"]["message"].as_str().unwrap().contains("700"));

    // No amount: whatever is left.
    let key = new_key();
    let rest = refund(&app, &app.key, &key, json!({ "payment_id": payment_id })).await;
    assert_eq!(rest.body["amount"], 700, "{:?}", rest.body);
    let replay = refund(&app, &app.key, &key, json!({ "payment_id": payment_id })).await;
    assert_eq!(replay.headers.get("idempotency-replayed").unwrap(), "true");
    assert_eq!(replay.body["id"], rest.body["id"]);

    let payment = app.get(&app.key, &format!("/v1/payments/{payment_id}")).await.body;
    assert_eq!((payment["status"].as_str(), payment["amount_refunded"].as_i64()), (Some("refunded"), Some(1_000)));
    let nothing_left = refund(&app, &app.key, &new_key(), json!({ "payment_id": payment_id, "amount": 1 })).await;
    assert_eq!(nothing_left.code(), "REFUND_NOT_ALLOWED", "a refunded payment: {:?}", nothing_left.body);

    assert_eq!(
        app.count("SELECT count(*) FROM journal_entries WHERE kind = 'refund' AND transaction_id LIKE 'ref_%'").await,
        2
    );
    assert_eq!(app.count("SELECT count(*) FROM events WHERE type = 'refund.succeeded'").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM events WHERE type = 'transaction.refunded'").await, 1);
    // What the rail collected has all gone back through it.
    let clearing = app
        .count("SELECT COALESCE(SUM(p.amount), 0) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id WHERE a.kind = 'rail_clearing'")
        .await;
    assert_eq!(clearing, 0, "collected 1,000 and refunded 1,000 through the rail");
    // The refunds are in the customer's history and found by their key.
    let history = app.get(&app.key, "/v1/customers/+231770001234/transactions").await.body;
    let kinds: Vec<&str> = history["data"].as_array().unwrap().iter().map(|t| t["object"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["refund", "refund", "payment"], "newest first: {history:?}");
    let by_key = app.get(&app.key, &format!("/v1/transactions/{key}")).await;
    assert_eq!(by_key.body["id"], rest.body["id"], "{:?}", by_key.body);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn only_completed_payments_of_your_own_can_be_refunded() {
    let app = spawn_app().await;
    let processing = app.pay(&app.key, Some(&new_key()), &momo(500, "USD", "+231779999999")).await;
    let id = processing.body["id"].as_str().unwrap();
    let answer = refund(&app, &app.key, &new_key(), json!({ "payment_id": id })).await;
    assert_eq!(answer.code(), "REFUND_NOT_ALLOWED");

    let payment_id = paid(&app, 500).await;
    let (_other, other_key) = app.create_merchant("Other shop").await;
    let answer = refund(&app, &other_key, &new_key(), json!({ "payment_id": payment_id })).await;
    assert_eq!(answer.status, 404, "another merchant's payment: {:?}", answer.body);
    let unknown = refund(&app, &app.key, &new_key(), json!({ "payment_id": "pay_nope" })).await;
    assert_eq!(unknown.status, 404);
    let refused_key = new_key();
    let invalid = refund(&app, &app.key, &refused_key, json!({ "payment_id": "nope", "amount": 1.5 })).await;
    assert_eq!(invalid.code(), "VALIDATION_ERROR");
    let fields: Vec<&str> =
        invalid.body["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"payment_id") && fields.contains(&"amount"), "{fields:?}");
    // Refused requests bind nothing: the same key works for a good request.
    assert_eq!(app.count("SELECT count(*) FROM refunds").await, 0);
    let made = refund(&app, &app.key, &refused_key, json!({ "payment_id": payment_id })).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let refund_id = made.body["id"].as_str().unwrap();
    assert_eq!(app.get(&app.key, &format!("/v1/refunds/{refund_id}")).await.body["status"], "completed");
    assert_eq!(app.get(&other_key, &format!("/v1/refunds/{refund_id}")).await.status, 404);
}

#[tokio::test]
async fn a_wallet_payment_is_refunded_into_the_wallet() {
    let app = spawn_app().await;
    let phone = "+231770004444";
    app.top_up(phone, 2_000, "USD").await;
    let body = json!({ "amount": 1_500, "currency": "USD", "method": "wallet", "customer": { "phone": phone } });
    let made = app.pay(&app.key, Some(&new_key()), &body.to_string()).await;
    let paid = app.approve_and_get(&app.key, &made, "/v1/payments").await;
    assert_eq!(paid.body["status"], "completed", "{:?}", paid.body);
    assert_eq!(app.wallet_balance(phone, "USD").await, 500);
    let payment_id = paid.body["id"].as_str().unwrap();
    let made = refund(&app, &app.key, &new_key(), json!({ "payment_id": payment_id, "amount": 1_000 })).await;
    assert_eq!(made.body["status"], "completed", "{:?}", made.body);
    assert_eq!(app.wallet_balance(phone, "USD").await, 1_500);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn concurrent_refunds_never_exceed_the_payment() {
    let app = spawn_app().await;
    let payment_id = paid(&app, 1_000).await;
    let body = json!({ "payment_id": payment_id, "amount": 600 });
    let (key_a, key_b) = (new_key(), new_key());
    let (a, b) = tokio::join!(refund(&app, &app.key, &key_a, body.clone()), refund(&app, &app.key, &key_b, body));
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 422], "{:?} / {:?}", a.body, b.body);
    let payment = app.get(&app.key, &format!("/v1/payments/{payment_id}")).await.body;
    assert_eq!(payment["amount_refunded"], 600);
    app.verify().expect("the ledger balances");
}
