//! Transfers to phone numbers: a registered recipient is credited at once;
//! anyone else is sent a claim code through the sandbox messenger (read back
//! through `GET /v1/test/messages`), claims with it and joins Soxara with a
//! USD and an LRD wallet; unclaimed money, too many wrong codes and
//! unreachable numbers send the money back to the merchant.

use serde_json::{Value, json};
use soxara::config::{CodeSettings, FileConfig, TransferSettings};
use soxara::domain::keys::KeyKind;
use soxara::values::mode::Mode;
use soxara_tests::{Answer, TestApp, momo, new_key, spawn_app, spawn_app_with, spawn_app_with_live_key, wait_for};

const WALLET_ENTITY: &str = "Phoenix Hub Liberia, Inc.";

/// Collects `amount` USD by mobile money, so the merchant has a balance
/// held by the wallet entity; returns what the merchant was credited.
async fn collect(app: &TestApp, amount: u64) -> i64 {
    let paid = app.pay(&app.key, Some(&new_key()), &momo(amount, "USD", "+231770001234")).await;
    assert_eq!(paid.body["status"], "completed", "{:?}", paid.body);
    assert_eq!(paid.body["entity"], WALLET_ENTITY);
    paid.body["net_amount"].as_i64().unwrap()
}

/// The merchant's pending USD balance held by the wallet entity.
async fn pending_usd(app: &TestApp, key: &str) -> i64 {
    let answer = app.get(key, "/v1/balance").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let balances = answer.body["balances"].as_array().unwrap();
    balances
        .iter()
        .find(|b| b["currency"] == "USD" && b["entity"] == WALLET_ENTITY)
        .map_or(0, |b| b["pending"].as_i64().unwrap())
}

async fn transfer(app: &TestApp, key: &str, phone: &str, amount: u64) -> Answer {
    let body = json!({ "amount": amount, "currency": "USD", "recipient": { "phone": phone }, "description": "Refund of order 42" });
    app.post(key, "/v1/transfers", &new_key(), &body).await
}

async fn claim(app: &TestApp, key: &str, phone: &str, code: &str) -> Answer {
    app.post(key, "/v1/claims", &new_key(), &json!({ "phone": phone, "code": code })).await
}

/// The newest sandbox message to `phone`, once its send has finished.
async fn message_to(app: &TestApp, phone: &str) -> Value {
    wait_for("the claim message", || async {
        let list = app.get(&app.key, &format!("/v1/test/messages?phone=%2B{}", &phone[1..])).await;
        assert_eq!(list.status, 200, "{:?}", list.body);
        list.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["transfer"].is_string())
            .filter(|m| m["status"] != "sending")
            .cloned()
    })
    .await
}

/// The six-digit code in a claim message's text.
fn code_in(message: &Value) -> String {
    let text = message["text"].as_str().expect("test-mode messages keep their text");
    let at = text.find("code is ").expect("the text gives the code") + "code is ".len();
    text[at..at + 6].to_string()
}

async fn transfer_status(app: &TestApp, id: &str) -> Value {
    let got = app.get(&app.key, &format!("/v1/transfers/{id}")).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    got.body
}

async fn events(app: &TestApp, event: &str, id: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) FROM events WHERE type = '{event}' AND object_id = '{id}'")).await
}

#[tokio::test]
async fn a_registered_recipient_is_credited_at_once() {
    let app = spawn_app().await;
    let net = collect(&app, 10_000).await;
    let recipient = "+231770004321";
    assert_eq!(app.top_up(recipient, 100, "USD").await.status, 201);

    let idempotency_key = new_key();
    let body = json!({ "amount": 2_500, "currency": "USD", "recipient": { "phone": recipient } });
    let sent = app.post(&app.key, "/v1/transfers", &idempotency_key, &body).await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    assert_eq!(sent.body["status"], "completed");
    assert_eq!(sent.body["recipient"], json!({ "phone": recipient, "registered": true }));
    assert_eq!(sent.body["claim"], Value::Null);
    let id = sent.body["id"].as_str().unwrap();

    assert_eq!(app.wallet_balance(recipient, "USD").await, 2_600);
    assert_eq!(pending_usd(&app, &app.key).await, net - 2_500);
    assert_eq!(events(&app, "transfer.completed", id).await, 1);
    let replay = app.post(&app.key, "/v1/transfers", &idempotency_key, &body).await;
    assert_eq!((replay.status.as_u16(), &replay.body["id"]), (201, &sent.body["id"]));
    assert_eq!(app.wallet_balance(recipient, "USD").await, 2_600, "a replay moves nothing");
    let claim_messages = app.count("SELECT COUNT(*) FROM messages WHERE transfer_id IS NOT NULL").await;
    assert_eq!(claim_messages, 0, "a registered recipient needs no code");

    // Readable as a transfer and as a transaction; by nobody else.
    assert_eq!(transfer_status(&app, id).await["amount"], 2_500);
    assert_eq!(app.get(&app.key, &format!("/v1/transactions/{id}")).await.body["object"], "transfer");
    let (_, other_key) = app.create_merchant("Other Shop").await;
    assert_eq!(app.get(&other_key, &format!("/v1/transfers/{id}")).await.code(), "RESOURCE_NOT_FOUND");
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_new_recipient_claims_with_the_code_and_joins_with_usd_and_lrd_wallets() {
    let app = spawn_app().await;
    let net = collect(&app, 10_000).await;
    let recipient = "+231880001111";

    let sent = transfer(&app, &app.key, recipient, 3_050).await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    assert_eq!(sent.body["status"], "pending_claim");
    assert_eq!(sent.body["recipient"]["registered"], false);
    assert!(sent.body["claim"]["expires_at"].is_string(), "{:?}", sent.body);
    let id = sent.body["id"].as_str().unwrap().to_string();
    assert_eq!(pending_usd(&app, &app.key).await, net - 3_050, "the money left the merchant's balance");

    let message = message_to(&app, recipient).await;
    assert_eq!(message["status"], "sent", "{message}");
    assert_eq!(
        (message["transfer"].as_str(), message["template"].as_str()),
        (Some(id.as_str()), Some("transfer_claim"))
    );
    let text = message["text"].as_str().unwrap();
    assert!(text.starts_with("Soxara: you have received USD 30.50."), "{text}");
    for hidden in ["Phoenix", "Cinrique", "Inc.", "Sandbox Merchant", "order 42"] {
        assert!(!text.contains(hidden), "customer-facing text only ever says Soxara: {text}");
    }
    let code = code_in(&message);

    // Public keys cannot claim (they live in client apps); a wrong code counts.
    let public_key = app.create_key(&app.merchant_id, Mode::Test, KeyKind::Public).await;
    assert_eq!(claim(&app, &public_key, recipient, &code).await.code(), "SECRET_KEY_REQUIRED");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = claim(&app, &app.key, recipient, wrong).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (422, "CLAIM_CODE_INVALID"), "{:?}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains(" 4 more"), "{:?}", refused.body);
    let malformed = claim(&app, &app.key, recipient, "12ab").await;
    assert_eq!(malformed.body["error"]["fields"][0]["field"], "code", "{:?}", malformed.body);

    let claimed = claim(&app, &app.key, recipient, &code).await;
    assert_eq!(claimed.status, 200, "{:?}", claimed.body);
    assert_eq!(claimed.body["customer"]["joined_by"], "transfer_claim");
    assert_eq!(claimed.body["transfers"], json!([{ "id": id, "amount": 3_050, "currency": "USD" }]));
    assert_eq!(
        claimed.body["wallets"],
        json!([{ "currency": "USD", "balance": 3_050 }, { "currency": "LRD", "balance": 0 }])
    );
    assert_eq!(app.wallet_balance(recipient, "USD").await, 3_050);
    let done = transfer_status(&app, &id).await;
    assert_eq!((done["status"].as_str(), done["recipient"]["registered"].as_bool()), (Some("completed"), Some(true)));
    assert_eq!(events(&app, "transfer.completed", &id).await, 1);

    // The code is spent; the recipient is on Soxara now, so the next
    // transfer is credited at once.
    assert_eq!(claim(&app, &app.key, recipient, &code).await.code(), "CLAIM_CODE_INVALID");
    let next = transfer(&app, &app.key, recipient, 1_000).await;
    assert_eq!(next.body["status"], "completed", "{:?}", next.body);
    assert_eq!(app.wallet_balance(recipient, "USD").await, 4_050);
    assert_eq!(pending_usd(&app, &app.key).await, net - 4_050);

    // Listed newest first, a page at a time, or by status.
    let page = app.get(&app.key, "/v1/transfers?limit=1").await;
    assert_eq!(
        (page.body["data"][0]["id"].as_str(), page.body["has_more"].as_bool()),
        (next.body["id"].as_str(), Some(true))
    );
    let rest = app
        .get(&app.key, &format!("/v1/transfers?starting_after={}", page.body["data"][0]["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        (rest.body["data"][0]["id"].as_str(), rest.body["has_more"].as_bool()),
        (Some(id.as_str()), Some(false))
    );
    let pending = app.get(&app.key, "/v1/transfers?status=pending_claim").await;
    assert_eq!(pending.body["data"], json!([]));
    assert_eq!(app.get(&app.key, "/v1/transfers?status=lost").await.code(), "VALIDATION_ERROR");
    assert_eq!(app.get(&app.key, "/v1/transfers?starting_after=").await.code(), "VALIDATION_ERROR");
    assert_eq!(app.get(&app.key, "/v1/transfers?starting_after=trf_nope").await.code(), "RESOURCE_NOT_FOUND");
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn one_claim_credits_every_transfer_waiting_for_the_number() {
    let app = spawn_app().await;
    collect(&app, 10_000).await;
    let (other, other_key) = app.create_merchant("Second Shop").await;
    let paid = app.pay(&other_key, Some(&new_key()), &momo(5_000, "USD", "+231770001234")).await;
    assert_eq!(paid.body["status"], "completed", "{:?}", paid.body);
    let recipient = "+231880002222";

    let first = transfer(&app, &app.key, recipient, 1_000).await.body["id"].as_str().unwrap().to_string();
    let first_code = code_in(&message_to(&app, recipient).await);
    let second = transfer(&app, &other_key, recipient, 2_000).await;
    assert_eq!(second.body["status"], "pending_claim", "{:?}", second.body);
    // The other merchant's message is not in this merchant's outbox; its
    // code replaces the first (one code per phone).
    let ours = app.get(&app.key, "/v1/test/messages").await;
    assert_eq!(ours.body["data"].as_array().unwrap().len(), 1, "{:?}", ours.body);
    let code = wait_for("the second claim message", || async {
        let theirs = app.get(&other_key, "/v1/test/messages").await;
        theirs.body["data"].as_array().unwrap().first().filter(|m| m["status"] == "sent").map(code_in)
    })
    .await;
    if code != first_code {
        assert_eq!(claim(&app, &app.key, recipient, &first_code).await.code(), "CLAIM_CODE_INVALID");
    }

    let claimed = claim(&app, &app.key, recipient, &code).await;
    assert_eq!(claimed.status, 200, "{:?}", claimed.body);
    assert_eq!(claimed.body["transfers"].as_array().unwrap().len(), 2, "{:?}", claimed.body);
    assert_eq!(app.wallet_balance(recipient, "USD").await, 3_000);
    assert_eq!(transfer_status(&app, &first).await["status"], "completed");
    let second_id = second.body["id"].as_str().unwrap();
    assert_eq!(app.get(&other_key, &format!("/v1/transfers/{second_id}")).await.body["status"], "completed");
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM events WHERE type = 'transfer.completed' AND merchant_id = '{other}'"
        ))
        .await,
        1,
        "each merchant hears of its own transfer"
    );
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn unclaimed_money_goes_back_to_the_sender_when_the_claim_period_ends() {
    let transfers = TransferSettings { claim_ttl_ms: 1_500, ..TransferSettings::default() };
    let app = spawn_app_with(FileConfig { transfers, ..FileConfig::default() }).await;
    let net = collect(&app, 10_000).await;
    let recipient = "+231880003333";
    let sent = transfer(&app, &app.key, recipient, 4_000).await;
    let id = sent.body["id"].as_str().unwrap().to_string();
    let code = code_in(&message_to(&app, recipient).await);
    assert_eq!(pending_usd(&app, &app.key).await, net - 4_000);

    let returned = wait_for("the return", || async {
        Some(transfer_status(&app, &id).await).filter(|t| t["status"] == "returned")
    })
    .await;
    assert_eq!(returned["return_reason"], "expired");
    assert!(returned["returned_at"].is_string());
    assert_eq!(pending_usd(&app, &app.key).await, net, "the merchant has its money back");
    assert_eq!(events(&app, "transfer.returned", &id).await, 1);
    assert_eq!(claim(&app, &app.key, recipient, &code).await.code(), "CLAIM_CODE_INVALID");
    assert_eq!(app.wallet_balance(recipient, "USD").await, 0);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn wrong_codes_lock_the_phone_for_every_key_a_new_code_does_not_unlock_it_and_the_money_keeps_waiting() {
    let codes = CodeSettings { attempts_max: 2, ..CodeSettings::default() };
    let app = spawn_app_with(FileConfig { codes: codes.clone(), ..FileConfig::default() }).await;
    let net = collect(&app, 10_000).await;
    let recipient = "+231880004444";
    let id = transfer(&app, &app.key, recipient, 1_500).await.body["id"].as_str().unwrap().to_string();
    let code = code_in(&message_to(&app, recipient).await);
    let wrong = if code == "123456" { "654321" } else { "123456" };

    // Another merchant guesses: the recipient's phone is locked for everyone.
    let (_, guesser) = app.create_merchant("Guessing Shop").await;
    let idempotency_key = new_key();
    let body = json!({ "phone": recipient, "code": wrong });
    let first = app.post(&guesser, "/v1/claims", &idempotency_key, &body).await;
    assert!(first.body["error"]["message"].as_str().unwrap().contains(" 1 more"), "{:?}", first.body);
    let replay = app.post(&guesser, "/v1/claims", &idempotency_key, &body).await;
    assert_eq!(replay.body, first.body, "a replayed wrong code is not a second attempt");
    assert_eq!(claim(&app, &guesser, recipient, wrong).await.code(), "CLAIM_CODE_INVALID");
    for key in [&guesser, &app.key] {
        let locked = claim(&app, key, recipient, &code).await;
        assert_eq!((locked.status.as_u16(), locked.code()), (429, "CODE_ATTEMPTS_EXCEEDED"), "even the right code");
    }

    // A second transfer sends a new code (one per phone): it does not unlock.
    let second = transfer(&app, &app.key, recipient, 500).await.body["id"].as_str().unwrap().to_string();
    let newest = wait_for("the second claim code", || async {
        let messages = app.get(&app.key, &format!("/v1/test/messages?phone=%2B{}", &recipient[1..])).await;
        messages.body["data"].as_array().and_then(|all| all.iter().find(|m| m["transfer"] == second.as_str()).cloned())
    })
    .await;
    let new_code = code_in(&newest);
    assert_eq!(claim(&app, &app.key, recipient, &new_code).await.code(), "CODE_ATTEMPTS_EXCEEDED");
    assert_eq!(transfer_status(&app, &id).await["status"], "pending_claim", "the money keeps waiting");
    assert_eq!(pending_usd(&app, &app.key).await, net - 2_000);

    // After the lockout the recipient claims both with the newest code.
    app.advance_clock(codes.lockout_ms);
    let claimed = claim(&app, &app.key, recipient, &new_code).await;
    assert_eq!(claimed.status, 200, "{:?}", claimed.body);
    assert_eq!(claimed.body["transfers"].as_array().map(Vec::len), Some(2));
    assert_eq!(transfer_status(&app, &id).await["status"], "completed");
    assert_eq!(app.count("SELECT COUNT(*) FROM code_failures").await, 0, "a claim forgets the guesses");
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_number_the_messenger_cannot_reach_gets_its_money_returned() {
    let app = spawn_app().await;
    let net = collect(&app, 10_000).await;
    // The sandbox messenger: numbers ending in 0000 are not on WhatsApp.
    let recipient = "+231880000000";
    let id = transfer(&app, &app.key, recipient, 2_000).await.body["id"].as_str().unwrap().to_string();
    let message = message_to(&app, recipient).await;
    assert_eq!(
        (message["status"].as_str(), message["failure"]["code"].as_str()),
        (Some("failed"), Some("RECIPIENT_UNREACHABLE"))
    );
    let returned = wait_for("the return", || async {
        Some(transfer_status(&app, &id).await).filter(|t| t["status"] == "returned")
    })
    .await;
    assert_eq!(returned["return_reason"], "recipient_unreachable");
    assert_eq!(pending_usd(&app, &app.key).await, net);
    assert_eq!(events(&app, "transfer.returned", &id).await, 1);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn bad_transfers_are_refused_before_anything_moves() {
    let transfers = TransferSettings { messenger_test: None, ..TransferSettings::default() };
    let app = spawn_app_with(FileConfig { transfers, ..FileConfig::default() }).await;
    let refused = transfer(&app, &app.key, "+231770004321", 1_000).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (402, "INSUFFICIENT_BALANCE"), "{:?}", refused.body);

    let net = collect(&app, 10_000).await;
    let unreachable = transfer(&app, &app.key, "+231880005555", 1_000).await;
    assert_eq!(
        (unreachable.status.as_u16(), unreachable.code()),
        (503, "MESSAGING_UNAVAILABLE"),
        "{:?}",
        unreachable.body
    );
    let too_much = transfer(&app, &app.key, "+231880005555", u64::try_from(net).unwrap() + 1).await;
    assert_eq!(too_much.code(), "INSUFFICIENT_BALANCE");

    for (body, field) in [
        (json!({ "amount": 100, "currency": "USD" }), "recipient.phone"),
        (json!({ "amount": 100, "currency": "USD", "recipient": { "phone": "0770001234" } }), "recipient.phone"),
        (json!({ "amount": 100, "currency": "USD", "recipient": "+231770004321" }), "recipient"),
        (json!({ "amount": 1.5, "currency": "USD", "recipient": { "phone": "+231770004321" } }), "amount"),
        (json!({ "amount": 100, "currency": "usd", "recipient": { "phone": "+231770004321" } }), "currency"),
        (
            json!({ "amount": 100, "currency": "USD", "recipient": { "phone": "+231770004321", "name": "A" } }),
            "recipient.name",
        ),
    ] {
        let answer = app.post(&app.key, "/v1/transfers", &new_key(), &body).await;
        assert_eq!(answer.code(), "VALIDATION_ERROR", "{body}: {:?}", answer.body);
        assert_eq!(answer.body["error"]["fields"][0]["field"], field, "{body}: {:?}", answer.body);
    }
    let public_key = app.create_key(&app.merchant_id, Mode::Test, KeyKind::Public).await;
    assert_eq!(transfer(&app, &public_key, "+231770004321", 100).await.code(), "SECRET_KEY_REQUIRED");
    assert_eq!(app.count("SELECT COUNT(*) FROM transfers").await, 0);
    assert_eq!(pending_usd(&app, &app.key).await, net, "nothing moved");
}

#[tokio::test]
async fn live_keys_cannot_read_the_sandbox_outbox_or_test_transfers() {
    let (app, live_key) = spawn_app_with_live_key(FileConfig::default()).await;
    collect(&app, 10_000).await;
    let id = transfer(&app, &app.key, "+231880006666", 1_000).await.body["id"].as_str().unwrap().to_string();
    message_to(&app, "+231880006666").await;
    assert_eq!(app.get(&live_key, "/v1/test/messages").await.code(), "TEST_MODE_ONLY");
    assert_eq!(app.get(&live_key, &format!("/v1/transfers/{id}")).await.code(), "RESOURCE_NOT_FOUND");
    // Live mode has no messenger by default: only registered customers can be paid.
    assert_eq!(transfer(&app, &live_key, "+231880006666", 1).await.code(), "INSUFFICIENT_BALANCE");
}
