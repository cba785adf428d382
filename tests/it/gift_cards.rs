//! Gift card sales through the real server and the real sandbox trader
//! component: every published test e-code (`GIFT-USA-1234` completed,
//! `GIFT-USA-0000` cancelled, `GIFT-USA-9999` stays pending) and physical
//! cards by their first photo's name; the merchant credited once, at the
//! locked rate less the fee; the operators' review queue (approve with the
//! verified value, reject with a reason, each once); and clear refusals of
//! bad input and bad photos with nothing stored.

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use soxara_tests::{Answer, TestApp, new_key, spawn_app};

async fn events(app: &TestApp, object_id: &str, event_type: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) FROM events WHERE object_id = '{object_id}' AND type = '{event_type}'")).await
}

/// The merchant's simulated balance in `currency`, in minor units.
async fn sandbox_balance(app: &TestApp, currency: &str) -> i64 {
    -app.count(&format!(
        "SELECT COALESCE(SUM(p.amount), 0) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
         WHERE a.kind = 'sandbox_balance' AND a.currency = '{currency}'"
    ))
    .await
}

fn ecode(code: &str) -> Value {
    json!({ "brand": "amazon", "country": "US", "form": "ecode", "face_value": 10_000, "card_currency": "USD",
            "payout_currency": "USD", "additional_info": code })
}

/// A few bytes that are a JPEG by their signature.
fn jpeg(fill: u8) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend(std::iter::repeat_n(fill, 64));
    bytes
}

fn photo(file_name: &str, bytes: &[u8]) -> Value {
    json!({ "file_name": file_name, "content_type": "image/jpeg",
            "data": base64::engine::general_purpose::STANDARD.encode(bytes) })
}

fn physical(photos: Vec<Value>) -> Value {
    json!({ "brand": "apple", "country": "US", "form": "physical", "face_value": 5_000, "card_currency": "USD",
            "payout_currency": "LRD", "images": photos })
}

async fn sell(app: &TestApp, key: &str, body: &Value) -> Answer {
    app.post(&app.key, "/v1/gift-cards/sales", key, body).await
}

#[tokio::test]
async fn every_published_test_ecode_behaves_as_published() {
    let app = spawn_app().await;
    // (e-code, status, the event it fires)
    let table = [
        ("GIFT-USA-1234", "completed", Some("transaction.completed")),
        ("GIFT-USA-0000", "cancelled", Some("transaction.cancelled")),
        ("GIFT-USA-9999", "pending", None),
    ];
    for (code, status, event) in table {
        let key = new_key();
        let sold = sell(&app, &key, &ecode(code)).await;
        assert_eq!(sold.status, 201, "{code}: {:?}", sold.body);
        let sale = &sold.body;
        assert_eq!((sale["object"].as_str(), sale["type"].as_str()), (Some("transaction"), Some("gift_card_sale")));
        assert_eq!(sale["status"], status, "{code}: {sale}");
        // USD 100.00 of Amazon at 85/100: USD 85.00, 1% fee.
        assert_eq!((sale["amount"].as_i64(), sale["fee"].as_i64()), (Some(8_500), Some(85)), "{sale}");
        assert_eq!(sale["credited"], if status == "completed" { 8_415 } else { 0 }, "{sale}");
        assert!(!sale.to_string().contains(code), "the e-code is never shown back: {sale}");
        let id = sale["id"].as_str().unwrap();
        for kind in ["transaction.completed", "transaction.cancelled", "transaction.failed"] {
            assert_eq!(events(&app, id, kind).await, i64::from(event == Some(kind)), "{code}: {kind}");
        }
        match status {
            "cancelled" => assert_eq!(sale["failure"]["code"], "CARD_REJECTED", "{sale}"),
            "pending" => assert_eq!(sale["next_action"]["type"], "wait", "{sale}"),
            _ => {}
        }
        let found = app.get(&app.key, &format!("/v1/transactions/{key}?type=gift_card_sale")).await;
        assert_eq!((found.status.as_u16(), &found.body["status"]), (200, &json!(status)), "{code}");
        let replayed = sell(&app, &key, &ecode(code)).await;
        assert_eq!((replayed.status.as_u16(), &replayed.body), (201, &sold.body), "{code}");
        assert_eq!(replayed.headers.get("idempotency-replayed").unwrap(), "true");
    }
    // Only the completed sale credited anything, once.
    assert_eq!(sandbox_balance(&app, "USD").await, 1_000_000 + 8_415);
    // The pending one stays pending through its status checks.
    let first_check_ms = u64::try_from(app.state().ops.checks.delay_ms(0)).unwrap();
    app.advance_past_worker("status_checks", first_check_ms + 1_000).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM gift_card_sales WHERE status = 'pending'").await, 1);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn physical_cards_go_by_their_first_photo_and_the_photos_are_kept_by_hash() {
    let app = spawn_app().await;
    let (front, back) = (jpeg(1), jpeg(2));
    let sold = sell(&app, &new_key(), &physical(vec![photo("front-1234.jpg", &front), photo("back.jpg", &back)])).await;
    assert_eq!((sold.status.as_u16(), &sold.body["status"]), (201, &json!("completed")), "{:?}", sold.body);
    // USD 50.00 of Apple at 80/100 × 190: LRD 7,600.00, 1% fee.
    assert_eq!((sold.body["amount"].as_i64(), sold.body["currency"].as_str()), (Some(760_000), Some("LRD")));
    let images = sold.body["gift_card"]["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    let sha = images[0]["sha256"].as_str().unwrap();
    assert_eq!(images[0]["size"], front.len());
    // An operator can look at it.
    let id = sold.body["id"].as_str().unwrap();
    let (status, bytes) = app.admin_bytes(&format!("/admin/gift-cards/{id}/photos/{sha}")).await;
    assert_eq!((status, bytes), (200, front.clone()));
    let (status, _) = app.admin_bytes(&format!("/admin/gift-cards/{id}/photos/{}", "0".repeat(64))).await;
    assert_eq!(status, 404, "only the sale's own photos");

    let refused = sell(&app, &new_key(), &physical(vec![photo("front-0000.jpg", &front)])).await;
    assert_eq!(refused.body["status"], "cancelled", "{:?}", refused.body);
    assert_eq!(sandbox_balance(&app, "LRD").await, 200_000_000 + 760_000 - 7_600);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn the_review_queue_credits_the_approved_value_once_and_records_who() {
    let app = spawn_app().await;
    let pending = sell(&app, &new_key(), &ecode("GIFT-USA-9999")).await;
    let other = sell(&app, &new_key(), &ecode("GIFT-USA-9999")).await;
    let (id, other_id) = (pending.body["id"].as_str().unwrap(), other.body["id"].as_str().unwrap());

    // Operators see the traders loaded and what each carries.
    let plugins = app.admin(Method::GET, "/admin/plugins", None).await;
    let sandbox = plugins.body["traders"].as_array().unwrap().iter().find(|t| t["plugin"] == "trader-sandbox").unwrap();
    assert_eq!(sandbox["mode"], "test");
    assert_eq!(sandbox["bound"], json!(["gift_card_sale", "rmb_purchase", "crypto_sale"]), "{sandbox}");

    let queue = app.admin(Method::GET, "/admin/gift-cards?status=pending", None).await;
    assert_eq!(queue.status, 200, "{:?}", queue.body);
    let listed: Vec<&str> = queue.body["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [id, other_id], "oldest first");
    assert_eq!(queue.body["data"][0]["additional_info"], "GIFT-USA-9999", "operators see the code to verify it");

    // More than declared is refused; the verified USD 60.00 pays USD 51.00 less 1%.
    let too_much = json!({ "verified_value": 10_001, "reviewer": "ops-ama" });
    let refused = app.admin(Method::POST, &format!("/admin/gift-cards/{id}/approve"), Some(too_much)).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (400, "VALIDATION_ERROR"), "{:?}", refused.body);
    let approve = json!({ "verified_value": 6_000, "reviewer": "ops-ama" });
    let approved = app.admin(Method::POST, &format!("/admin/gift-cards/{id}/approve"), Some(approve.clone())).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    assert_eq!(approved.body["status"], "completed");
    assert_eq!(approved.body["gift_card"]["verified_value"], json!({ "currency": "USD", "amount": 6_000 }));
    assert_eq!((approved.body["amount"].as_i64(), approved.body["credited"].as_i64()), (Some(5_100), Some(5_049)));
    assert_eq!(approved.body["reviewed_by"], "ops-ama");
    assert!(approved.body["reviewed_at"].is_string());
    let twice = app.admin(Method::POST, &format!("/admin/gift-cards/{id}/approve"), Some(approve)).await;
    assert_eq!((twice.status.as_u16(), twice.code()), (409, "TRADE_NOT_PENDING"), "{:?}", twice.body);
    assert_eq!(sandbox_balance(&app, "USD").await, 1_000_000 + 5_049, "credited once");
    assert_eq!(events(&app, id, "transaction.completed").await, 1);

    let reject = json!({ "reason": "the code was already redeemed", "reviewer": "ops-kofi" });
    let rejected = app.admin(Method::POST, &format!("/admin/gift-cards/{other_id}/reject"), Some(reject)).await;
    assert_eq!(rejected.body["status"], "cancelled", "{:?}", rejected.body);
    assert_eq!(rejected.body["failure"]["message"], "the code was already redeemed");
    assert_eq!(events(&app, other_id, "transaction.cancelled").await, 1);
    let merchant_view = app.get(&app.key, &format!("/v1/transactions/{other_id}")).await;
    assert_eq!(merchant_view.body["status"], "cancelled");
    assert_eq!(sandbox_balance(&app, "USD").await, 1_000_000 + 5_049, "nothing for a rejected card");
    let missing = app
        .admin(Method::POST, "/admin/gift-cards/gcs_nope/reject", Some(json!({ "reason": "x", "reviewer": "y" })))
        .await;
    assert_eq!(missing.status, 404);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn bad_sales_are_refused_with_the_field_that_is_wrong_and_nothing_stored() {
    let app = spawn_app().await;
    let with = |patch: Value| {
        let mut body = ecode("GIFT-USA-1234");
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let mut oversized = vec![0xFF, 0xD8, 0xFF, 0xE0];
    oversized.resize((2 << 20) + 1, 0);
    let cases = [
        (with(json!({ "brand": "netflix" })), "brand", (422, "NOT_OFFERED")),
        (with(json!({ "country": "GB" })), "country", (422, "NOT_OFFERED")),
        (with(json!({ "brand": "" })), "brand", (400, "VALIDATION_ERROR")),
        (with(json!({ "country": "" })), "country", (400, "VALIDATION_ERROR")),
        (with(json!({ "face_value": 7_500 })), "face_value", (422, "NOT_OFFERED")),
        (with(json!({ "face_value": 12.5 })), "face_value", (400, "VALIDATION_ERROR")),
        (with(json!({ "card_currency": "LRD" })), "card_currency", (422, "NOT_OFFERED")),
        (with(json!({ "payout_currency": "EUR" })), "payout_currency", (400, "VALIDATION_ERROR")),
        (with(json!({ "form": "paper" })), "form", (400, "VALIDATION_ERROR")),
        (with(json!({ "additional_info": null })), "additional_info", (400, "VALIDATION_ERROR")),
        (
            with(json!({ "brand": "steam", "form": "physical", "additional_info": null,
                      "images": [photo("front.jpg", &jpeg(1))] })),
            "form",
            (422, "NOT_OFFERED"),
        ),
        (physical(vec![]), "images", (400, "VALIDATION_ERROR")),
        (
            json!({ "brand": "apple", "country": "US", "form": "physical", "face_value": 5_000, "card_currency": "USD",
                 "payout_currency": "LRD" }),
            "images",
            (400, "VALIDATION_ERROR"),
        ),
        (
            physical(vec![json!({ "file_name": "a.gif", "content_type": "image/gif",
                               "data": base64::engine::general_purpose::STANDARD.encode(b"GIF89a....") })]),
            "images[0].data",
            (400, "VALIDATION_ERROR"),
        ),
        (
            physical(vec![json!({ "file_name": "a.png", "content_type": "image/png",
                               "data": base64::engine::general_purpose::STANDARD.encode(jpeg(1)) })]),
            "images[0].content_type",
            (400, "VALIDATION_ERROR"),
        ),
        (
            physical(vec![json!({ "file_name": "a.jpg", "content_type": "image/jpeg", "data": "not base64!" })]),
            "images[0].data",
            (400, "VALIDATION_ERROR"),
        ),
        (physical(vec![photo("../etc/passwd", &jpeg(1))]), "images[0].file_name", (400, "VALIDATION_ERROR")),
        (physical(vec![photo("big.jpg", &oversized)]), "images[0].data", (400, "VALIDATION_ERROR")),
        (
            physical((0..5).map(|n| photo(&format!("p{n}.jpg"), &jpeg(n))).collect()),
            "images",
            (400, "VALIDATION_ERROR"),
        ),
    ];
    for (body, field, refusal) in cases {
        let refused = sell(&app, &new_key(), &body).await;
        let shown = body.to_string().chars().take(200).collect::<String>();
        assert_eq!((refused.status.as_u16(), refused.code()), refusal, "{shown}: {:?}", refused.body);
        assert!(
            refused.body.to_string().contains(&format!("\"{field}\"")),
            "{shown} names {field}: {:?}",
            refused.body
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM gift_card_sales").await, 0, "nothing sold");
    assert_eq!(app.count("SELECT COUNT(*) FROM idempotency_keys").await, 0, "no key bound");
}

#[tokio::test]
async fn callbacks_reach_the_trader_that_takes_none_and_are_refused() {
    let app = spawn_app().await;
    let pending = sell(&app, &new_key(), &ecode("GIFT-USA-9999")).await;
    let request = app.client.post(format!("{}/v1/callbacks/trader-sandbox", app.base)).body("{}");
    let refused = soxara_tests::answer(request.send().await.unwrap()).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (400, "CALLBACK_REJECTED"), "{:?}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("UNEXPECTED_CALLBACK"), "{:?}", refused.body);
    let still = app.get(&app.key, &format!("/v1/transactions/{}", pending.body["id"].as_str().unwrap())).await;
    assert_eq!(still.body["status"], "pending", "nothing moved");
}
