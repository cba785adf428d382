//! Bills through the real server and the real sandbox biller component:
//! every published test identifier of the partner API's sandbox table,
//! verify and purchase alike; the merchant's simulated balance, refused with
//! nothing moved when short; reconciliation by idempotency key; the
//! catalogue and plan listings; and clear refusals of bad input.

use serde_json::{Value, json};
use soxara::domain::keys::KeyKind;
use soxara::values::mode::Mode;
use soxara_tests::{Answer, TestApp, new_key, spawn_app};

/// What the sandbox table publishes for a purchase.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Published {
    Succeeds,
    Refunded,
    StaysProcessing,
}

impl Published {
    fn status(self) -> &'static str {
        match self {
            Published::Succeeds => "completed",
            Published::Refunded => "refunded",
            Published::StaysProcessing => "processing",
        }
    }

    /// The webhook event it fires, if any.
    fn event(self) -> Option<&'static str> {
        match self {
            Published::Succeeds => Some("transaction.completed"),
            Published::Refunded => Some("transaction.refunded"),
            Published::StaysProcessing => None,
        }
    }
}

/// Events of `event_type` recorded for `object_id`.
async fn events(app: &TestApp, object_id: &str, event_type: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) FROM events WHERE object_id = '{object_id}' AND type = '{event_type}'")).await
}

/// The merchant's simulated bills balance in `currency`, in minor units.
async fn sandbox_balance(app: &TestApp, currency: &str) -> i64 {
    -app.count(&format!(
        "SELECT SUM(p.amount) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
         WHERE a.kind = 'sandbox_balance' AND a.currency = '{currency}'"
    ))
    .await
}

/// One row of the published table: the purchase, and the check first where
/// the identifier can be verified.
struct Case {
    what: &'static str,
    purchase_path: &'static str,
    body: Value,
    verify: Option<(&'static str, Value)>,
    published: Published,
}

fn published_table() -> Vec<Case> {
    let mut cases = Vec::new();
    for (phone, published) in [
        ("09012341234", Published::Succeeds),
        ("09012340000", Published::Refunded),
        ("09012349999", Published::StaysProcessing),
    ] {
        cases.push(Case {
            what: "airtime",
            purchase_path: "/v1/bills/airtime",
            body: json!({ "network": "mtn", "phone": phone, "amount": 50_000, "currency": "LRD" }),
            verify: None,
            published,
        });
        cases.push(Case {
            what: "data",
            purchase_path: "/v1/bills/data",
            body: json!({ "network": "mtn", "phone": phone, "plan": "mtn-1gb-7d" }),
            verify: None,
            published,
        });
    }
    for (meter, published) in [("12345671234", Published::Succeeds), ("12345670000", Published::Refunded)] {
        cases.push(Case {
            what: "electricity",
            purchase_path: "/v1/bills/electricity",
            body: json!({ "provider": "lec", "meter_number": meter, "meter_type": "prepaid", "amount": 250_000, "currency": "LRD" }),
            verify: Some(("/v1/bills/electricity/verify", json!({ "provider": "lec", "meter_number": meter }))),
            published,
        });
    }
    for (card, published) in [("10001234", Published::Succeeds), ("10000000", Published::Refunded)] {
        cases.push(Case {
            what: "cable TV",
            purchase_path: "/v1/bills/cable",
            body: json!({ "provider": "dstv", "smartcard_number": card, "plan": "dstv-padi" }),
            verify: Some(("/v1/bills/cable/verify", json!({ "provider": "dstv", "smartcard_number": card }))),
            published,
        });
    }
    for (profile, published) in [("12341234", Published::Succeeds), ("12340000", Published::Refunded)] {
        cases.push(Case {
            what: "education (JAMB)",
            purchase_path: "/v1/bills/education",
            body: json!({ "provider": "jamb", "profile_id": profile, "plan": "utme", "phone": "+231770001234" }),
            verify: Some(("/v1/bills/education/verify", json!({ "provider": "jamb", "profile_id": profile }))),
            published,
        });
    }
    for (account, published) in [("12341234", Published::Succeeds), ("12340000", Published::Refunded)] {
        cases.push(Case {
            what: "bet funding",
            purchase_path: "/v1/bills/bet",
            body: json!({ "provider": "lonestar-bet", "account_id": account, "amount": 100_000, "currency": "LRD" }),
            verify: Some(("/v1/bills/bet/verify", json!({ "provider": "lonestar-bet", "account_id": account }))),
            published,
        });
    }
    cases
}

async fn post_read(app: &TestApp, path: &str, body: &Value) -> Answer {
    let request = app.client.post(format!("{}{path}", app.base)).bearer_auth(&app.key).json(body);
    soxara_tests::answer(request.send().await.expect("the request is sent")).await
}

#[tokio::test]
async fn every_published_test_identifier_behaves_as_published() {
    let app = spawn_app().await;
    for case in published_table() {
        let what = format!("{} {}", case.what, case.body);
        if let Some((path, body)) = &case.verify {
            let checked = post_read(&app, path, body).await;
            assert_eq!(checked.status, 200, "verify {what}: {:?}", checked.body);
            assert_eq!(checked.body["object"], "bill_customer", "{what}");
            assert!(checked.body["name"].as_str().is_some_and(|n| !n.is_empty()), "{what}: {:?}", checked.body);
        }
        let key = new_key();
        let bought = app.post(&app.key, case.purchase_path, &key, &case.body).await;
        assert_eq!(bought.status, 201, "purchase {what}: {:?}", bought.body);
        let bill = &bought.body;
        assert_eq!((bill["object"].as_str(), bill["type"].as_str()), (Some("transaction"), Some("bill_payment")));
        assert_eq!(bill["status"], case.published.status(), "{what}: {bill}");
        assert_eq!(bill["livemode"], false);
        let id = bill["id"].as_str().unwrap().to_string();
        assert!(bill["reference"].as_str().unwrap().starts_with("BILL"), "{bill}");

        for event in ["transaction.completed", "transaction.refunded", "transaction.failed"] {
            let expected = i64::from(case.published.event() == Some(event));
            assert_eq!(events(&app, &id, event).await, expected, "{what}: {event}");
        }
        match case.published {
            Published::Succeeds => {
                let amount = bill["amount"].as_i64().unwrap();
                assert_eq!(bill["fee"].as_i64().unwrap(), amount / 100, "a 1% fee: {bill}");
                assert_eq!(bill["net_amount"].as_i64().unwrap(), amount - amount / 100);
            }
            Published::Refunded => assert_eq!(bill["failure"]["code"], "PROVIDER_REVERSED", "{bill}"),
            Published::StaysProcessing => assert_eq!(bill["next_action"]["type"], "wait", "{bill}"),
        }

        // Reconciliation by key, and a replay that is only a replay.
        let found = app.get(&app.key, &format!("/v1/transactions/{key}?type=bill_payment")).await;
        assert_eq!(
            (found.status.as_u16(), &found.body["id"], &found.body["status"]),
            (200, &bill["id"], &bill["status"])
        );
        let replayed = app.post(&app.key, case.purchase_path, &key, &case.body).await;
        assert_eq!((replayed.status.as_u16(), &replayed.body), (201, &bought.body), "{what}");
        assert_eq!(replayed.headers.get("idempotency-replayed").unwrap(), "true");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM bill_payments").await, published_table().len() as i64);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn electricity_and_epins_give_the_customer_what_they_need() {
    let app = spawn_app().await;
    let power = json!({ "provider": "lec", "meter_number": "12345671234", "amount": 10_000, "currency": "USD" });
    let bought = app.post(&app.key, "/v1/bills/electricity", &new_key(), &power).await;
    assert_eq!((bought.status.as_u16(), &bought.body["status"]), (201, &json!("completed")), "{:?}", bought.body);
    let tokens = bought.body["bill"]["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "one electricity token");
    assert!(tokens[0].as_str().unwrap().chars().all(|c| c.is_ascii_digit()), "{tokens:?}");
    assert_eq!(bought.body["bill"]["identifier_kind"], "prepaid", "the default meter type");

    let pins = json!({ "provider": "waec", "plan": "waec-checker", "quantity": 3, "phone": "+231770001234" });
    let bought = app.post(&app.key, "/v1/bills/epin", &new_key(), &pins).await;
    assert_eq!(bought.status, 201, "{:?}", bought.body);
    assert_eq!(bought.body["bill"]["tokens"].as_array().unwrap().len(), 3, "{:?}", bought.body);
    assert_eq!(bought.body["amount"], 3_000, "three checker PINs at USD 10.00");
}

#[tokio::test]
async fn a_purchase_the_balance_cannot_cover_moves_nothing_and_refunds_give_it_back() {
    let app = spawn_app().await;
    let buy =
        |meter: &'static str| json!({ "provider": "lec", "meter_number": meter, "amount": 250_000, "currency": "USD" });
    // A refunded purchase gives the money back: the balance is untouched.
    let refunded = app.post(&app.key, "/v1/bills/electricity", &new_key(), &buy("12345670000")).await;
    assert_eq!(refunded.body["status"], "refunded", "{:?}", refunded.body);
    assert_eq!(sandbox_balance(&app, "USD").await, 1_000_000, "USD 10,000.00, all of it");
    // Four of USD 2,500.00 spend the simulated USD 10,000.00.
    for _ in 0..4 {
        let bought = app.post(&app.key, "/v1/bills/electricity", &new_key(), &buy("12345671234")).await;
        assert_eq!(bought.body["status"], "completed", "{:?}", bought.body);
    }
    assert_eq!(sandbox_balance(&app, "USD").await, 0);
    let (bills, entries) = (
        app.count("SELECT COUNT(*) FROM bill_payments").await,
        app.count("SELECT COUNT(*) FROM journal_entries").await,
    );
    let key = new_key();
    let short = app.post(&app.key, "/v1/bills/electricity", &key, &buy("12345671234")).await;
    assert_eq!((short.status.as_u16(), short.code()), (402, "INSUFFICIENT_FUNDS"), "{:?}", short.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM bill_payments").await, bills, "nothing bought");
    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries").await, entries, "nothing moved");
    let never = app.get(&app.key, &format!("/v1/transactions/{key}?type=bill_payment")).await;
    assert_eq!(never.status, 404, "never created: safe to retry with the same key");
    // Another currency has its own simulated balance.
    let lrd = json!({ "network": "orange", "phone": "0886001234", "amount": 10_000, "currency": "LRD" });
    assert_eq!(app.post(&app.key, "/v1/bills/airtime", &new_key(), &lrd).await.body["status"], "completed");
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_processing_bill_is_reconciled_by_its_key_and_reference() {
    let app = spawn_app().await;
    let key = new_key();
    let body = json!({ "network": "orange", "phone": "09012349999", "amount": 2_000, "currency": "LRD" });
    let bought = app.post(&app.key, "/v1/bills/airtime", &key, &body).await;
    assert_eq!(bought.body["status"], "processing", "{:?}", bought.body);
    let reference = bought.body["reference"].as_str().unwrap();
    for lookup in [format!("{key}?type=bill_payment"), reference.to_string(), format!("{reference}?type=bill_payment")]
    {
        let found = app.get(&app.key, &format!("/v1/transactions/{lookup}")).await;
        assert_eq!(
            (found.status.as_u16(), &found.body["status"]),
            (200, &json!("processing")),
            "{lookup}: {:?}",
            found.body
        );
    }
    let wrong_type = app.get(&app.key, &format!("/v1/transactions/{key}?type=payment")).await;
    assert_eq!(wrong_type.status, 404, "a bill is not a payment");
    let bad_type = app.get(&app.key, &format!("/v1/transactions/{key}?type=bill")).await;
    assert_eq!((bad_type.status.as_u16(), bad_type.code()), (400, "VALIDATION_ERROR"));
    // The same key with another body is refused, not bought again.
    let other = json!({ "network": "orange", "phone": "09012349999", "amount": 3_000, "currency": "LRD" });
    let reused = app.post(&app.key, "/v1/bills/airtime", &key, &other).await;
    assert_eq!(reused.code(), "IDEMPOTENCY_KEY_REUSED", "{:?}", reused.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM bill_payments").await, 1);
}

#[tokio::test]
async fn an_identifier_the_provider_does_not_know_fails_the_check_and_the_purchase() {
    let app = spawn_app().await;
    let checked =
        post_read(&app, "/v1/bills/cable/verify", &json!({ "provider": "gotv", "smartcard_number": "10004040" })).await;
    assert_eq!((checked.status.as_u16(), checked.code()), (422, "VERIFICATION_FAILED"), "{:?}", checked.body);

    let body = json!({ "provider": "gotv", "smartcard_number": "10004040", "plan": "gotv-max" });
    let bought = app.post(&app.key, "/v1/bills/cable", &new_key(), &body).await;
    assert_eq!((bought.status.as_u16(), &bought.body["status"]), (201, &json!("failed")), "{:?}", bought.body);
    assert_eq!(bought.body["failure"]["code"], "VERIFICATION_FAILED");
    assert_eq!(bought.body["next_action"]["type"], "retry_with_new_key");
    let id = bought.body["id"].as_str().unwrap();
    assert_eq!(events(&app, id, "transaction.failed").await, 1);
    assert_eq!(sandbox_balance(&app, "USD").await, 1_000_000, "the money is back");
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn the_catalogue_and_plans_list_what_the_mode_sells() {
    let app = spawn_app().await;
    let all = app.get(&app.key, "/v1/bills/catalog").await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    let entries = all.body["data"].as_array().unwrap();
    for bill_type in ["airtime", "data", "electricity", "cable", "education", "epin", "bet"] {
        assert!(entries.iter().any(|e| e["type"] == bill_type), "{bill_type} is sold: {entries:?}");
    }
    let mtn = entries.iter().find(|e| e["type"] == "airtime" && e["provider"] == "mtn").unwrap();
    assert_eq!(mtn["name"], "Lonestar Cell MTN");
    assert!(mtn["amounts"].as_array().unwrap().iter().any(|r| r["currency"] == "LRD"), "{mtn}");
    assert!(mtn["endpoints"].as_array().unwrap().contains(&json!("POST /v1/bills/airtime")));

    let data = app.get(&app.key, "/v1/bills/catalog?type=data").await;
    assert!(data.body["data"].as_array().unwrap().iter().all(|e| e["type"] == "data"), "{:?}", data.body);
    let plans = app.get(&app.key, "/v1/bills/data-plans?network=mtn").await;
    assert_eq!(plans.status, 200, "{:?}", plans.body);
    let plan = plans.body["data"].as_array().unwrap().iter().find(|p| p["code"] == "mtn-1gb-7d").cloned().unwrap();
    assert_eq!((plan["amount"].as_i64(), plan["currency"].as_str()), (Some(15_000), Some("LRD")), "minor units");
    for path in [
        "/v1/bills/cable-plans?provider=dstv",
        "/v1/bills/education-plans?provider=jamb",
        "/v1/bills/epin-plans?provider=waec",
    ] {
        let listed = app.get(&app.key, path).await;
        assert!(!listed.body["data"].as_array().unwrap().is_empty(), "{path}: {:?}", listed.body);
    }
    for (path, field, refusal) in [
        ("/v1/bills/catalog?type=gas", "type", (400, "VALIDATION_ERROR")),
        ("/v1/bills/data-plans", "network", (400, "VALIDATION_ERROR")),
        ("/v1/bills/data-plans?network=", "network", (400, "VALIDATION_ERROR")),
        ("/v1/bills/data-plans?network=vodafone", "network", (422, "NOT_OFFERED")),
        ("/v1/bills/data-plans?provider=mtn", "provider", (400, "VALIDATION_ERROR")),
    ] {
        let refused = app.get(&app.key, path).await;
        assert_eq!((refused.status.as_u16(), refused.code()), refusal, "{path}: {:?}", refused.body);
        assert_eq!(refused.body["error"]["fields"][0]["field"], field, "{path}: {:?}", refused.body);
    }
    for (body, refusal) in [
        (json!({ "provider": "startimes", "smartcard_number": "10001234" }), (422, "NOT_OFFERED")),
        (json!({ "provider": "", "smartcard_number": "10001234" }), (400, "VALIDATION_ERROR")),
    ] {
        let refused = post_read(&app, "/v1/bills/cable/verify", &body).await;
        assert_eq!((refused.status.as_u16(), refused.code()), refusal, "{body}: {:?}", refused.body);
        assert_eq!(refused.body["error"]["fields"][0]["field"], "provider", "{body}: {:?}", refused.body);
    }
}

#[tokio::test]
async fn bad_purchases_are_refused_with_the_field_that_is_wrong() {
    let app = spawn_app().await;
    for (path, body, field, refusal) in [
        (
            "/v1/bills/airtime",
            json!({ "network": "vodafone", "phone": "09012341234", "amount": 5_000, "currency": "LRD" }),
            "network",
            (422, "NOT_OFFERED"),
        ),
        (
            "/v1/bills/airtime",
            json!({ "network": "mtn", "phone": "12", "amount": 5_000, "currency": "LRD" }),
            "phone",
            (400, "VALIDATION_ERROR"),
        ),
        (
            "/v1/bills/airtime",
            json!({ "network": "mtn", "phone": "09012341234", "amount": 1, "currency": "LRD" }),
            "amount",
            (422, "NOT_OFFERED"),
        ),
        (
            "/v1/bills/airtime",
            json!({ "network": "mtn", "phone": "09012341234", "amount": 12.5, "currency": "LRD" }),
            "amount",
            (400, "VALIDATION_ERROR"),
        ),
        (
            "/v1/bills/airtime",
            json!({ "network": "mtn", "phone": "09012341234", "currency": "LRD" }),
            "amount",
            (400, "VALIDATION_ERROR"),
        ),
        (
            "/v1/bills/airtime",
            json!({ "network": "mtn", "phone": "09012341234", "amount": 5_000, "currency": "NGN" }),
            "currency",
            (400, "VALIDATION_ERROR"),
        ),
        ("/v1/bills/data", json!({ "network": "mtn", "phone": "09012341234" }), "plan", (400, "VALIDATION_ERROR")),
        (
            "/v1/bills/data",
            json!({ "network": "mtn", "phone": "09012341234", "plan": "" }),
            "plan",
            (400, "VALIDATION_ERROR"),
        ),
        (
            "/v1/bills/airtime",
            json!({ "network": "", "phone": "09012341234", "amount": 5_000, "currency": "LRD" }),
            "network",
            (400, "VALIDATION_ERROR"),
        ),
        (
            "/v1/bills/data",
            json!({ "network": "mtn", "phone": "09012341234", "plan": "mtn-99tb" }),
            "plan",
            (422, "NOT_OFFERED"),
        ),
        (
            "/v1/bills/electricity",
            json!({ "provider": "lec", "meter_number": "12345671234", "meter_type": "solar", "amount": 10_000, "currency": "LRD" }),
            "meter_type",
            (400, "VALIDATION_ERROR"),
        ),
        (
            "/v1/bills/epin",
            json!({ "provider": "waec", "plan": "waec-checker", "quantity": 0, "phone": "0886001234" }),
            "quantity",
            (400, "VALIDATION_ERROR"),
        ),
        (
            "/v1/bills/cable",
            json!({ "provider": "dstv", "smartcard_number": "10001234", "plan": "dstv-padi", "colour": "red" }),
            "colour",
            (400, "VALIDATION_ERROR"),
        ),
    ] {
        let refused = app.post(&app.key, path, &new_key(), &body).await;
        assert_eq!((refused.status.as_u16(), refused.code()), refusal, "{body}: {:?}", refused.body);
        let fields: Vec<&str> =
            refused.body["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
        assert!(fields.contains(&field), "{body}: {fields:?}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM bill_payments").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM idempotency_keys").await, 0, "no refused key is bound");

    let body = json!({ "network": "mtn", "phone": "09012341234", "amount": 5_000, "currency": "LRD" });
    let unkeyed = app.client.post(format!("{}/v1/bills/airtime", app.base)).bearer_auth(&app.key).json(&body);
    let unkeyed = soxara_tests::answer(unkeyed.send().await.unwrap()).await;
    assert_eq!(unkeyed.code(), "IDEMPOTENCY_KEY_REQUIRED");
    let public = app.create_key(&app.merchant_id, Mode::Test, KeyKind::Public).await;
    assert_eq!(app.post(&public, "/v1/bills/airtime", &new_key(), &body).await.code(), "SECRET_KEY_REQUIRED");
    assert_eq!(app.get(&public, "/v1/bills/catalog").await.code(), "SECRET_KEY_REQUIRED");
}

#[tokio::test]
async fn callbacks_reach_the_biller_that_takes_none_and_are_refused() {
    let app = spawn_app().await;
    let request = app.client.post(format!("{}/v1/callbacks/biller-sandbox", app.base)).body("{}");
    let refused = soxara_tests::answer(request.send().await.unwrap()).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (400, "CALLBACK_REJECTED"), "{:?}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("NOT_SUPPORTED"), "{:?}", refused.body);
}

#[tokio::test]
async fn a_bill_too_small_for_a_fee_completes_with_none_and_the_ledger_adds_up() {
    let app = spawn_app().await;
    // USD 0.50: 1% rounds down to nothing.
    let body = json!({ "network": "mtn", "phone": "0886001234", "amount": 50, "currency": "USD" });
    let bought = app.post(&app.key, "/v1/bills/airtime", &new_key(), &body).await;
    assert_eq!((bought.status.as_u16(), &bought.body["status"]), (201, &json!("completed")), "{:?}", bought.body);
    assert_eq!((bought.body["fee"].as_i64(), bought.body["net_amount"].as_i64()), (Some(0), Some(50)));
    // An odd amount: the fee rounds down, the provider is owed the rest.
    let body = json!({ "network": "mtn", "phone": "0886001234", "amount": 1_999, "currency": "USD" });
    let bought = app.post(&app.key, "/v1/bills/airtime", &new_key(), &body).await;
    assert_eq!((bought.body["fee"].as_i64(), bought.body["net_amount"].as_i64()), (Some(19), Some(1_980)));
    let sum = |kind: &'static str| {
        let app = &app;
        async move {
            app.count(&format!(
                "SELECT SUM(p.amount) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
                 WHERE a.kind = '{kind}' AND a.currency = 'USD'"
            ))
            .await
        }
    };
    assert_eq!(sum("fee_revenue").await, -19, "the platform earned 19");
    assert_eq!(sum("biller_payable").await, -(50 + 1_980), "the provider is owed the rest");
    assert_eq!(sum("bill_clearing").await, 0, "nothing left in clearing");
    assert_eq!(sandbox_balance(&app, "USD").await, 1_000_000 - 50 - 1_999);
    app.verify().expect("the ledger balances");
}
