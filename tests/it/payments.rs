use serde_json::json;
use soxara_tests::{momo, new_key, spawn_app};

#[tokio::test]
async fn a_completed_payment_has_the_whole_object() {
    let app = spawn_app().await;
    let body = json!({
        "amount": 1250, "currency": "USD", "method": "mtn_momo",
        "customer": {"phone": "+231770001234"},
        "description": "Order 42", "metadata": {"order_id": "42"}
    });
    let answer = app.pay(&app.key, Some(&new_key()), &body.to_string()).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let p = &answer.body;
    assert!(p["id"].as_str().unwrap().starts_with("pay_"));
    assert!(p["reference"].as_str().unwrap().starts_with("PAY"));
    assert_eq!(p["object"], "payment");
    assert_eq!(p["type"], "payment");
    assert_eq!(p["status"], "completed");
    assert_eq!(p["amount"], 1250);
    assert_eq!(p["fee"], 12, "1% rounded down");
    assert_eq!(p["net_amount"], 1238);
    assert_eq!(p["currency"], "USD");
    assert_eq!(p["method"], "mtn_momo");
    assert_eq!(p["customer"]["phone"], "+231770001234");
    assert_eq!(p["description"], "Order 42");
    assert_eq!(p["metadata"], json!({"order_id": "42"}));
    assert_eq!(p["livemode"], false);
    assert_eq!(p["entity"], "Phoenix Hub Liberia, Inc.");
    assert!(p["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(p["completed_at"].is_string());

    let fetched = app.get(&app.key, &format!("/v1/payments/{}", p["id"].as_str().unwrap())).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(&fetched.body, p);
}

#[tokio::test]
async fn the_last_four_digits_decide_the_sandbox_outcome() {
    let app = spawn_app().await;
    for phone in ["+231770001234", "+231770000000", "+231779999999"] {
        app.top_up(phone, 10_000, "LRD").await; // wallet payments need the money
    }
    for method in ["mtn_momo", "orange_money", "wallet"] {
        for (phone, status) in
            [("+231770001234", "completed"), ("+231770000000", "refunded"), ("+231779999999", "processing")]
        {
            let body = json!({"amount": 10000, "currency": "LRD", "method": method, "customer": {"phone": phone}});
            let mut answer = app.pay(&app.key, Some(&new_key()), &body.to_string()).await;
            assert_eq!(answer.status, 201, "{method} {phone}: {:?}", answer.body);
            if method == "wallet" {
                // The customer approves first; then the simulator decides.
                answer = app.approve_and_get(&app.key, &answer, "/v1/payments").await;
            }
            assert_eq!(answer.body["status"], status, "{method} {phone}");
            assert_eq!(answer.body["completed_at"].is_null(), status == "processing", "{method} {phone}");
        }
    }
    for (number, status) in
        [("4242424242424242", "completed"), ("4000000000020000", "refunded"), ("4000000000069999", "processing")]
    {
        let body = json!({"amount": 500, "currency": "USD", "method": "card", "card": {"number": number}});
        let answer = app.pay(&app.key, Some(&new_key()), &body.to_string()).await;
        assert_eq!(answer.status, 201, "{number}: {:?}", answer.body);
        assert_eq!(answer.body["status"], status, "{number}");
        assert_eq!(answer.body["entity"], "Cinrique Inc.");
        assert_eq!(answer.body["card"]["last4"], &number[12..]);
        assert!(!answer.body.to_string().contains(number), "the full card number is never echoed");
    }
    let stored_numbers =
        app.count("SELECT COUNT(*) FROM payments WHERE rail_instrument IS NOT NULL AND status <> 'processing'").await;
    assert_eq!(stored_numbers, 0, "card numbers are dropped once a payment is final");
}

#[tokio::test]
async fn payments_survive_a_restart() {
    let mut app = spawn_app().await;
    let created = app.pay(&app.key, Some(&new_key()), &momo(700, "USD", "+231770001234")).await;
    app.restart().await;
    let fetched = app.get(&app.key, &format!("/v1/payments/{}", created.body["id"].as_str().unwrap())).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, created.body);
}

#[tokio::test]
async fn a_payment_interrupted_by_a_crash_is_finished_at_the_next_start() {
    let mut app = spawn_app().await;
    // What a crash between claiming the key and recording the outcome
    // leaves behind: the key claimed, the payment processing, no response.
    let merchant = app.merchant_id.clone();
    app.state()
        .ops
        .store
        .write(move |conn| {
            conn.execute(
                "INSERT INTO payments (id, merchant_id, mode, reference, idempotency_key, status, amount, fee, currency,
                 method, customer_phone, metadata, rail, entity, created_at)
                 VALUES ('pay_crashed', ?1, 'test', 'PAYCRASHED', 'idem-crashed', 'processing', 1000, 10, 'USD',
                 'mtn_momo', '+231770001234', '{}', 'simulator', 'Phoenix Hub Liberia, Inc.', 0)",
                [&merchant],
            )?;
            conn.execute(
                "INSERT INTO idempotency_keys (merchant_id, mode, key, fingerprint, transaction_id, created_at)
                 VALUES (?1, 'test', 'idem-crashed', 'f', 'pay_crashed', 0)",
                [&merchant],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(app.get(&app.key, "/v1/transactions/idem-crashed").await.body["status"], "processing");
    app.restart().await;
    let after = app.get(&app.key, "/v1/transactions/idem-crashed").await;
    assert_eq!(after.body["status"], "completed");
    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries WHERE transaction_id = 'pay_crashed'").await, 1);
    let stored = app
        .count("SELECT COUNT(*) FROM idempotency_keys WHERE key = 'idem-crashed' AND response_body IS NOT NULL")
        .await;
    assert_eq!(stored, 1, "the response is stored for replays");
}

#[tokio::test]
async fn the_sandbox_honours_mtn_sandbox_numbers_and_stripe_test_cards() {
    let mut config = soxara::config::FileConfig::default();
    config.status_checks.delays_ms = vec![50];
    config.status_checks.poll_interval_ms = 20;
    let app = soxara_tests::spawn_app_with(config).await;
    let declined = app.pay(&app.key, Some(&new_key()), &momo(500, "USD", "+46733123451")).await;
    assert_eq!(declined.body["status"], "failed", "{:?}", declined.body);
    assert_eq!(declined.body["failure"]["code"], "CUSTOMER_DECLINED");
    let card = |number: &str| {
        json!({"amount": 500, "currency": "USD", "method": "card", "card": {"number": number}}).to_string()
    };
    let no_funds = app.pay(&app.key, Some(&new_key()), &card("4000000000009995")).await;
    assert_eq!(no_funds.body["failure"]["code"], "INSUFFICIENT_FUNDS", "{:?}", no_funds.body);
    let declined_card = app.pay(&app.key, Some(&new_key()), &card("4000000000000002")).await;
    assert_eq!(declined_card.body["failure"]["code"], "CARD_DECLINED");
    assert_eq!(app.pay(&app.key, Some(&new_key()), &card("4242424242424242")).await.body["status"], "completed");
    let token =
        |token: &str| json!({"amount": 500, "currency": "USD", "method": "card", "card": {"token": token}}).to_string();
    let declined_token = app.pay(&app.key, Some(&new_key()), &token("pm_card_chargeDeclined")).await;
    assert_eq!(declined_token.body["failure"]["code"], "CARD_DECLINED", "{:?}", declined_token.body);
    assert_eq!(app.pay(&app.key, Some(&new_key()), &token("pm_card_visa")).await.body["status"], "completed");

    // MTN's "delayed" payer: processing, then a status check completes it.
    let delayed = app.pay(&app.key, Some(&new_key()), &momo(500, "USD", "+46733123454")).await;
    assert_eq!(delayed.body["status"], "processing");
    let id = delayed.body["id"].as_str().unwrap().to_string();
    soxara_tests::wait_for("the delayed sandbox payment to complete", || async {
        let now = app.get(&app.key, &format!("/v1/payments/{id}")).await;
        (now.body["status"] == "completed").then_some(())
    })
    .await;
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_payment_is_verified_only_when_it_completed_for_that_amount_and_currency() {
    let app = soxara_tests::spawn_app().await;
    let paid = app.pay(&app.key, Some(&new_key()), &momo(1_250, "USD", "+231770001234")).await;
    let reference = paid.body["reference"].as_str().unwrap().to_string();
    let verify = |body: serde_json::Value| {
        let app = &app;
        async move {
            let answer = verify_as(app, &app.key, body).await;
            assert_eq!(answer.status, 200, "{:?}", answer.body);
            (answer.body["verified"].as_bool().unwrap(), answer.body["reason"].as_str().map(str::to_string))
        }
    };
    let ok = verify(json!({"reference": reference, "amount": 1250, "currency": "USD"})).await;
    assert_eq!(ok, (true, None));
    let by_id = verify(json!({"reference": paid.body["id"], "amount": 1250, "currency": "USD"})).await;
    assert_eq!(by_id, (true, None), "an id works too");
    let less = verify(json!({"reference": reference, "amount": 1000, "currency": "USD"})).await;
    assert_eq!(less, (false, Some("amount_mismatch".into())));
    let lrd = verify(json!({"reference": reference, "amount": 1250, "currency": "LRD"})).await;
    assert_eq!(lrd, (false, Some("currency_mismatch".into())));
    let unknown = verify(json!({"reference": "PAY20990101000000NOPE", "amount": 1250, "currency": "USD"})).await;
    assert_eq!(unknown, (false, Some("not_found".into())));
    let pending = app.pay(&app.key, Some(&new_key()), &momo(1_250, "USD", "+231779999999")).await;
    let waiting = verify(json!({"reference": pending.body["reference"], "amount": 1250, "currency": "USD"})).await;
    assert_eq!(waiting, (false, Some("not_completed".into())));

    // Another merchant cannot verify (or learn of) this payment.
    let (_other, other_key) = app.create_merchant("Other shop").await;
    let theirs = verify_as(&app, &other_key, json!({"reference": reference, "amount": 1250, "currency": "USD"})).await;
    assert_eq!(theirs.body["reason"], "not_found");
    assert!(theirs.body["transaction"].is_null());
    let invalid = verify_as(&app, &app.key, json!({"reference": reference, "amount": 12.5})).await;
    assert_eq!(invalid.code(), "VALIDATION_ERROR");
}

/// `POST /v1/transactions/verify` with `key` (it needs no idempotency key).
async fn verify_as(app: &soxara_tests::TestApp, key: &str, body: serde_json::Value) -> soxara_tests::Answer {
    let request = app.client.post(format!("{}/v1/transactions/verify", app.base)).bearer_auth(key).json(&body);
    soxara_tests::answer(request.send().await.unwrap()).await
}

/// What the ledger holds for a payment's own entries: (fee earned, net
/// owed to the merchant).
async fn posted(app: &soxara_tests::TestApp, payment_id: &str) -> (i64, i64) {
    let sum = |kind: &str| {
        format!(
            "SELECT -COALESCE(SUM(p.amount), 0) FROM postings p JOIN journal_entries e ON e.id = p.entry_id
             JOIN ledger_accounts a ON a.id = p.account_id WHERE e.transaction_id = '{payment_id}' AND a.kind = '{kind}'"
        )
    };
    (app.count(&sum("fee_revenue")).await, app.count(&sum("merchant_pending")).await)
}

#[tokio::test]
async fn a_payment_shows_the_fee_and_net_the_ledger_holds_whatever_its_outcome() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"amount": 1250, "currency": "USD", "method": "mtn_momo", "customer": {"phone": "+231770001234"}}),
            "completed",
            (12, 1238),
        ),
        (
            json!({"amount": 1250, "currency": "USD", "method": "mtn_momo", "customer": {"phone": "+231770000000"}}),
            "refunded",
            (0, 0),
        ),
        (
            json!({"amount": 1250, "currency": "USD", "method": "mtn_momo", "customer": {"phone": "+231779999999"}}),
            "processing",
            (0, 0),
        ),
        (
            json!({"amount": 1250, "currency": "USD", "method": "card", "card": {"number": "4000000000000002"}}),
            "failed",
            (0, 0),
        ),
    ];
    for (body, status, (fee, net)) in cases {
        let paid = app.pay(&app.key, Some(&new_key()), &body.to_string()).await;
        assert_eq!((paid.status.as_u16(), paid.body["status"].as_str()), (201, Some(status)), "{:?}", paid.body);
        assert_eq!((paid.body["fee"].as_i64(), paid.body["net_amount"].as_i64()), (Some(fee), Some(net)), "{status}");
        assert_eq!(posted(&app, paid.body["id"].as_str().unwrap()).await, (fee, net), "{status}: the ledger agrees");
    }
}
