use serde_json::json;
use soxara::domain::keys::KeyKind;
use soxara::values::mode::Mode;
use soxara_tests::{new_key, spawn_app};

const ALICE: &str = "+231770001234";

fn wallet_payment(amount: i64, currency: &str, phone: &str) -> String {
    json!({"amount": amount, "currency": currency, "method": "wallet", "customer": {"phone": phone}}).to_string()
}

#[tokio::test]
async fn usd_and_lrd_are_separate_wallets() {
    let app = spawn_app().await;
    let top_up = app.top_up(ALICE, 5_000, "USD").await;
    assert_eq!(top_up.status, 201, "{:?}", top_up.body);
    assert_eq!(top_up.body["object"], "top_up");
    assert_eq!(top_up.body["amount"], 5_000);
    assert_eq!(app.top_up(ALICE, 10_000, "LRD").await.status, 201);
    assert_eq!(app.wallet_balance(ALICE, "USD").await, 5_000);
    assert_eq!(app.wallet_balance(ALICE, "LRD").await, 10_000);
    assert_eq!(app.wallet_balance("+231770009876", "USD").await, 0, "a new customer has empty wallets");
    let bad_phone = app.get(&app.key, "/v1/customers/0770001234/wallets").await;
    assert_eq!((bad_phone.status.as_u16(), bad_phone.code()), (400, "VALIDATION_ERROR"));
    // Even a path that is not valid UTF-8 gets the JSON error envelope.
    let garbled = app.get(&app.key, "/v1/customers/%FF%FE/wallets").await;
    assert_eq!((garbled.status.as_u16(), garbled.code()), (400, "VALIDATION_ERROR"));
    app.verify().expect("the ledger holds");
}

#[tokio::test]
async fn top_ups_are_sandbox_only_and_validated() {
    let app = spawn_app().await;
    let live = app.create_key(&app.merchant_id, Mode::Live, KeyKind::Secret).await;
    let body = json!({"customer": {"phone": ALICE}, "amount": 100, "currency": "USD"});
    let refused = app.post(&live, "/v1/wallets/top-ups", &new_key(), &body).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "TEST_MODE_ONLY"));
    let no_currency = json!({"customer": {"phone": ALICE}, "amount": 100});
    let invalid = app.post(&app.key, "/v1/wallets/top-ups", &new_key(), &no_currency).await;
    assert_eq!(invalid.code(), "VALIDATION_ERROR");
    assert_eq!(invalid.body["error"]["fields"][0]["field"], "currency");
    // A replayed top-up adds nothing.
    let idem = new_key();
    let first = app.post(&app.key, "/v1/wallets/top-ups", &idem, &body).await;
    let again = app.post(&app.key, "/v1/wallets/top-ups", &idem, &body).await;
    assert_eq!(again.headers["idempotency-replayed"], "true");
    assert_eq!(again.body, first.body);
    assert_eq!(app.wallet_balance(ALICE, "USD").await, 100);
    let found = app.get(&app.key, &format!("/v1/transactions/{idem}")).await;
    assert_eq!(found.status, 200, "a top-up is found by its idempotency key");
    assert_eq!(found.body, first.body);
    let by_id = app.get(&app.key, &format!("/v1/transactions/{}", first.body["id"].as_str().unwrap())).await;
    assert_eq!(by_id.body, first.body);
}

#[tokio::test]
async fn a_wallet_payment_debits_the_wallet() {
    let app = spawn_app().await;
    app.top_up(ALICE, 5_000, "USD").await;
    let made = app.pay(&app.key, Some(&new_key()), &wallet_payment(1_200, "USD", ALICE)).await;
    assert_eq!((made.status.as_u16(), made.body["status"].as_str()), (201, Some("processing")), "{:?}", made.body);
    let paid = app.approve_and_get(&app.key, &made, "/v1/payments").await;
    assert_eq!(paid.body["status"], "completed");
    assert_eq!(app.wallet_balance(ALICE, "USD").await, 3_800);
    let merchant_owed = app
        .count(&format!(
            "SELECT -SUM(p.amount) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
             WHERE a.kind = 'merchant_pending' AND a.owner = '{}'",
            app.merchant_id
        ))
        .await;
    assert_eq!(merchant_owed, 1_188, "1200 less the 1% fee");
    app.verify().expect("the ledger holds");
}

#[tokio::test]
async fn not_enough_money_fails_the_approved_payment_with_nothing_moved_and_no_balance_told() {
    let app = spawn_app().await;
    app.top_up(ALICE, 1_000, "USD").await;
    // Money in the LRD wallet does not pay a USD payment.
    app.top_up(ALICE, 1_000_000, "LRD").await;
    let entries_before = app.count("SELECT COUNT(*) FROM journal_entries").await;
    let made = app.pay(&app.key, Some(&new_key()), &wallet_payment(1_001, "USD", ALICE)).await;
    assert_eq!(made.status, 201, "nothing is said of the wallet before its owner approves: {:?}", made.body);
    let failed = app.approve_and_get(&app.key, &made, "/v1/payments").await;
    assert_eq!(
        (failed.body["status"].as_str(), failed.body["failure"]["code"].as_str()),
        (Some("failed"), Some("INSUFFICIENT_FUNDS")),
        "{:?}",
        failed.body
    );
    assert!(!failed.body.to_string().contains("1000"), "no balance in the answer: {:?}", failed.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries").await, entries_before, "nothing posted");
    // After a top-up a new payment goes through.
    app.top_up(ALICE, 1, "USD").await;
    let made = app.pay(&app.key, Some(&new_key()), &wallet_payment(1_001, "USD", ALICE)).await;
    assert_eq!(app.approve_and_get(&app.key, &made, "/v1/payments").await.body["status"], "completed");
    assert_eq!(app.wallet_balance(ALICE, "USD").await, 0);
    app.verify().expect("the ledger holds");
}

#[tokio::test]
async fn sandbox_outcomes_move_wallet_money_as_they_should() {
    let app = spawn_app().await;
    let (refunded, processing) = ("+231770000000", "+231779999999");
    app.top_up(refunded, 2_000, "LRD").await;
    app.top_up(processing, 2_000, "LRD").await;
    let a = app.pay(&app.key, Some(&new_key()), &wallet_payment(1_500, "LRD", refunded)).await;
    let a = app.approve_and_get(&app.key, &a, "/v1/payments").await;
    assert_eq!(a.body["status"], "refunded");
    assert_eq!(app.wallet_balance(refunded, "LRD").await, 2_000, "a refund returns the money to the wallet");
    let b = app.pay(&app.key, Some(&new_key()), &wallet_payment(1_500, "LRD", processing)).await;
    let b = app.approve_and_get(&app.key, &b, "/v1/payments").await;
    assert_eq!(b.body["status"], "processing");
    assert_eq!(app.wallet_balance(processing, "LRD").await, 500, "money for a processing payment is held");
    app.verify().expect("the ledger holds");
}

#[tokio::test]
async fn a_customers_history_pages_newest_first() {
    let app = spawn_app().await;
    app.top_up(ALICE, 10_000, "USD").await;
    for amount in [100, 200, 300, 400] {
        let paid = app.pay(&app.key, Some(&new_key()), &wallet_payment(amount, "USD", ALICE)).await;
        assert_eq!(paid.status, 201);
    }
    app.pay(&app.key, Some(&new_key()), &wallet_payment(100, "USD", "+231770005555")).await;

    let mut seen = Vec::new();
    let mut path = format!("/v1/customers/{ALICE}/transactions?limit=2");
    loop {
        let page = app.get(&app.key, &path).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        let data = page.body["data"].as_array().unwrap().clone();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|t| (t["type"].as_str().unwrap().to_string(), t["amount"].as_i64().unwrap())));
        if !page.body["has_more"].as_bool().unwrap() {
            break;
        }
        let last = data.last().unwrap()["id"].as_str().unwrap();
        path = format!("/v1/customers/{ALICE}/transactions?limit=2&starting_after={last}");
    }
    let expected: Vec<(String, i64)> =
        [("payment", 400), ("payment", 300), ("payment", 200), ("payment", 100), ("top_up", 10_000)]
            .iter()
            .map(|(t, a)| (t.to_string(), *a))
            .collect();
    assert_eq!(seen, expected, "every transaction once, newest first, only this customer's");

    for bad in ["limit=0", "limit=101", "limit=ten", "starting_after=", "colour=red"] {
        let answer = app.get(&app.key, &format!("/v1/customers/{ALICE}/transactions?{bad}")).await;
        assert_eq!((answer.status.as_u16(), answer.code()), (400, "VALIDATION_ERROR"), "{bad}");
    }
    // A well-formed cursor that is not this customer's: like an unknown id.
    let unknown = app.get(&app.key, &format!("/v1/customers/{ALICE}/transactions?starting_after=pay_nope")).await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (404, "RESOURCE_NOT_FOUND"));
    let (_, other) = app.create_merchant("Other").await;
    let theirs = app.get(&other, &format!("/v1/customers/{ALICE}/transactions")).await;
    assert_eq!(theirs.body["data"], json!([]), "another merchant sees none of these");
}
