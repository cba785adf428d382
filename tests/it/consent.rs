//! Customers own their money: every debit of a customer's wallet waits for
//! the code their WhatsApp received (the sandbox messenger's outbox here),
//! and reading their balances needs their standing consent.

use serde_json::json;
use soxara::config::{CodeSettings, FileConfig};
use soxara_tests::{Answer, TestApp, new_key, spawn_app, spawn_app_with};

const ALICE: &str = "+231770001234";

fn wallet_payment(amount: i64, phone: &str) -> String {
    json!({"amount": amount, "currency": "USD", "method": "wallet", "customer": {"phone": phone}}).to_string()
}

fn approval_of(made: &Answer) -> String {
    assert_eq!(made.body["next_action"]["type"], "customer_approval", "{:?}", made.body);
    made.body["next_action"]["approval"].as_str().expect("an approval id").to_string()
}

async fn approve_with(app: &TestApp, key: &str, approval: &str, code: &str) -> Answer {
    app.post(key, &format!("/v1/approvals/{approval}/approve"), &new_key(), &json!({ "code": code })).await
}

async fn payment(app: &TestApp, id: &str) -> serde_json::Value {
    app.get(&app.key, &format!("/v1/payments/{id}")).await.body
}

fn other_code(code: &str) -> &'static str {
    if code == "000000" { "000001" } else { "000000" }
}

#[tokio::test]
async fn a_wallet_payment_moves_nothing_until_the_customer_sends_the_code_they_alone_received() {
    let app = spawn_app().await;
    app.top_up(ALICE, 5_000, "USD").await;
    let entries = app.count("SELECT COUNT(*) FROM journal_entries").await;
    let made = app.pay(&app.key, Some(&new_key()), &wallet_payment(1_200, ALICE)).await;
    assert_eq!((made.status.as_u16(), made.body["status"].as_str()), (201, Some("processing")), "{:?}", made.body);
    let approval = approval_of(&made);
    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries").await, entries, "nothing held yet");

    // The customer's message names the merchant and the amount.
    let messages = app.get(&app.key, "/v1/test/messages").await;
    let message =
        messages.body["data"].as_array().unwrap().iter().find(|m| m["approval"] == approval.as_str()).cloned();
    let text = message.expect("an approval message")["text"].as_str().unwrap().to_string();
    assert!(text.contains("Sandbox merchant asks to take USD 12.00"), "{text}");
    let code = app.approval_code(&app.key, &approval).await;

    // Another merchant cannot see or decide it, even with the code.
    let (_, other) = app.create_merchant("Other Shop").await;
    assert_eq!(approve_with(&app, &other, &approval, &code).await.code(), "RESOURCE_NOT_FOUND");
    // A wrong code is counted and moves nothing.
    let wrong = approve_with(&app, &app.key, &approval, other_code(&code)).await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (422, "APPROVAL_CODE_INVALID"), "{:?}", wrong.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries").await, entries);

    let approved = approve_with(&app, &app.key, &approval, &code).await;
    assert_eq!((approved.status.as_u16(), approved.body["status"].as_str()), (200, Some("approved")));
    let paid = payment(&app, made.body["id"].as_str().unwrap()).await;
    assert_eq!(paid["status"], "completed", "{paid}");
    assert_eq!(paid["next_action"], serde_json::Value::Null);
    assert_eq!(app.wallet_balance(ALICE, "USD").await, 3_800);
    let again = approve_with(&app, &app.key, &approval, &code).await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "APPROVAL_NOT_PENDING"));
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn refused_expired_and_over_guessed_approvals_fail_the_operation_with_nothing_moved() {
    let codes = CodeSettings { attempts_max: 2, ..CodeSettings::default() };
    let app = spawn_app_with(FileConfig { codes: codes.clone(), ..FileConfig::default() }).await;
    app.top_up(ALICE, 5_000, "USD").await;
    app.top_up("+231770002222", 5_000, "USD").await;
    let entries = app.count("SELECT COUNT(*) FROM journal_entries").await;

    // Refused on the customer's word.
    let refused = app.pay(&app.key, Some(&new_key()), &wallet_payment(100, ALICE)).await;
    let answer =
        app.post(&app.key, &format!("/v1/approvals/{}/refuse", approval_of(&refused)), &new_key(), &json!({})).await;
    assert_eq!(answer.body["status"], "refused", "{:?}", answer.body);
    let failed = payment(&app, refused.body["id"].as_str().unwrap()).await;
    assert_eq!(
        (failed["status"].as_str(), failed["failure"]["code"].as_str()),
        (Some("failed"), Some("CUSTOMER_REFUSED"))
    );

    // Too many wrong codes: the approval fails, and the phone is locked.
    let guessed = app.pay(&app.key, Some(&new_key()), &wallet_payment(100, "+231770002222")).await;
    let approval = approval_of(&guessed);
    let code = app.approval_code(&app.key, &approval).await;
    assert!(
        approve_with(&app, &app.key, &approval, other_code(&code)).await.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(" 1 more")
    );
    assert_eq!(approve_with(&app, &app.key, &approval, other_code(&code)).await.code(), "APPROVAL_CODE_INVALID");
    assert_eq!(app.get(&app.key, &format!("/v1/approvals/{approval}")).await.body["status"], "failed");
    let failed = payment(&app, guessed.body["id"].as_str().unwrap()).await;
    assert_eq!(failed["failure"]["code"], "APPROVAL_FAILED", "{failed}");
    assert_eq!(approve_with(&app, &app.key, &approval, &code).await.code(), "APPROVAL_NOT_PENDING");

    // Not approved in time.
    let expiring = app.pay(&app.key, Some(&new_key()), &wallet_payment(100, ALICE)).await;
    let approval = approval_of(&expiring);
    let code = app.approval_code(&app.key, &approval).await;
    app.advance_past_worker("transfers", codes.approval_ttl_ms).await;
    let failed = payment(&app, expiring.body["id"].as_str().unwrap()).await;
    assert_eq!(
        (failed["status"].as_str(), failed["failure"]["code"].as_str()),
        (Some("failed"), Some("APPROVAL_EXPIRED"))
    );
    assert_eq!(approve_with(&app, &app.key, &approval, &code).await.code(), "APPROVAL_NOT_PENDING");

    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries").await, entries, "nothing ever moved");
    assert_eq!(app.wallet_balance(ALICE, "USD").await, 5_000);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_code_approves_only_its_own_approval() {
    let app = spawn_app().await;
    app.top_up(ALICE, 5_000, "USD").await;
    let small = app.pay(&app.key, Some(&new_key()), &wallet_payment(100, ALICE)).await;
    let large = app.pay(&app.key, Some(&new_key()), &wallet_payment(4_000, ALICE)).await;
    let small_code = app.approval_code(&app.key, &approval_of(&small)).await;
    let large_approval = approval_of(&large);
    if small_code != app.approval_code(&app.key, &large_approval).await {
        let crossed = approve_with(&app, &app.key, &large_approval, &small_code).await;
        assert_eq!(crossed.code(), "APPROVAL_CODE_INVALID", "{:?}", crossed.body);
    }
    assert_eq!(payment(&app, large.body["id"].as_str().unwrap()).await["status"], "processing");
    assert_eq!(app.wallet_balance(ALICE, "USD").await, 5_000);
}

#[tokio::test]
async fn a_swap_of_a_customers_money_waits_for_their_approval() {
    let app = spawn_app().await;
    app.top_up(ALICE, 5_000, "USD").await;
    let quote = app.get(&app.key, "/v1/fx/quote?from=USD&to=LRD&amount=5000").await;
    let swap = app
        .post(
            &app.key,
            "/v1/fx/swaps",
            &new_key(),
            &json!({"quote_id": quote.body["id"], "customer": {"phone": ALICE}}),
        )
        .await;
    assert_eq!((swap.status.as_u16(), swap.body["status"].as_str()), (201, Some("processing")), "{:?}", swap.body);
    let approval = approval_of(&swap);
    assert_eq!(app.wallet_balance(ALICE, "USD").await, 5_000, "nothing moved");
    let answer = app.post(&app.key, &format!("/v1/approvals/{approval}/refuse"), &new_key(), &json!({})).await;
    assert_eq!(answer.body["status"], "refused");
    let swap = app.get(&app.key, &format!("/v1/transactions/{}", swap.body["id"].as_str().unwrap())).await;
    assert_eq!(
        (swap.body["status"].as_str(), swap.body["failure"]["code"].as_str()),
        (Some("failed"), Some("CUSTOMER_REFUSED"))
    );
    assert_eq!(app.wallet_balance(ALICE, "USD").await, 5_000);
    assert_eq!(app.wallet_balance(ALICE, "LRD").await, 0);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn balances_need_the_customers_standing_consent_which_they_can_have_withdrawn() {
    let app = spawn_app().await;
    app.top_up(ALICE, 5_000, "USD").await;
    let path = format!("/v1/customers/{ALICE}/wallets");
    let unknown = format!("/v1/customers/{}/wallets", "+231770009999");
    let without = app.get(&app.key, &path).await;
    let nobody = app.get(&app.key, &unknown).await;
    assert_eq!((without.status.as_u16(), without.code()), (404, "RESOURCE_NOT_FOUND"), "{:?}", without.body);
    assert_eq!(
        without.body["error"]["message"], nobody.body["error"]["message"],
        "a customer with money looks like nobody"
    );

    let asked = app.post(&app.key, &format!("/v1/customers/{ALICE}/wallet-access"), &new_key(), &json!({})).await;
    assert_eq!(
        (asked.status.as_u16(), asked.body["purpose"].as_str()),
        (201, Some("wallet_access")),
        "{:?}",
        asked.body
    );
    assert_eq!(app.get(&app.key, &path).await.status, 404, "not before the customer approves");
    let approval = asked.body["id"].as_str().unwrap();
    assert_eq!(app.approve(&app.key, approval).await.body["status"], "approved");
    let seen = app.get(&app.key, &path).await;
    assert_eq!(seen.body["data"][0]["balance"], 5_000, "{:?}", seen.body);

    // Another merchant has no access from this one's consent.
    let (_, other) = app.create_merchant("Other Shop").await;
    assert_eq!(app.get(&other, &path).await.status, 404);

    let withdrawn = app.delete(&app.key, &format!("/v1/customers/{ALICE}/wallet-access")).await;
    assert_eq!(
        (withdrawn.status.as_u16(), withdrawn.body["granted"].as_bool()),
        (200, Some(false)),
        "{:?}",
        withdrawn.body
    );
    assert_eq!(app.get(&app.key, &path).await.status, 404);
}
