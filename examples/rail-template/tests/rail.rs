//! The template rail as a built component, in the testkit's minimal host:
//! every request it sends is checked and answered from a script.
//! Build it first: `cargo xtask build-plugin examples/rail-template`.

use serde_json::json;
use soxara_testkit::{Reply, TestRail, TransactionStatus, built_rail, mobile_money};

const BASE: &str = "https://api.example-pay.test";
const API_KEY: &str = "ek_test_4f9c2a";

fn rail() -> TestRail {
    TestRail::builder(built_rail("rail-template"))
        .config("base_url", BASE)
        .config("api_key", API_KEY)
        .allow_host("api.example-pay.test")
        .load()
}

fn charge(id: &str, status: &str) -> serde_json::Value {
    json!({"id": id, "status": status})
}

#[test]
fn describes_itself() {
    let info = rail().info();
    assert_eq!(info.name, "rail-template");
    assert_eq!(info.currencies, ["USD", "LRD"]);
    assert_eq!(info.methods.len(), 1);
    assert_eq!(info.methods[0].entity, "Phoenix Hub Liberia, Inc.");
}

#[test]
fn a_charge_is_sent_once_under_the_payment_id() {
    let rail = rail();
    rail.expect("POST", &format!("{BASE}/v1/charges"), Reply::json(201, charge("ch_1", "succeeded")));
    let outcome = rail.collect(&mobile_money("pay_1", 1250, "USD", "+231770001234")).unwrap();
    assert_eq!(outcome.status, TransactionStatus::Completed);
    assert_eq!(outcome.provider_reference.as_deref(), Some("ch_1"));
    let sent = &rail.requests()[0];
    assert_eq!(sent.header("Idempotency-Key"), Some("pay_1"));
    assert_eq!(sent.header("Authorization"), Some(format!("Bearer {API_KEY}").as_str()));
    assert_eq!(
        sent.json(),
        json!({"reference": "pay_1", "amount": "12.50", "currency": "USD", "phone": "231770001234"})
    );
    rail.assert_script_done();
    rail.assert_never_revealed(API_KEY);
}

#[test]
fn a_decline_is_a_failed_payment_with_our_code() {
    let rail = rail();
    let declined = json!({"id": "ch_2", "status": "failed", "failure_code": "insufficient_funds"});
    rail.expect("POST", &format!("{BASE}/v1/charges"), Reply::json(201, declined));
    let outcome = rail.collect(&mobile_money("pay_2", 500, "LRD", "+231770001234")).unwrap();
    assert_eq!(outcome.status, TransactionStatus::Failed);
    assert_eq!(outcome.failure.unwrap().code, "INSUFFICIENT_FUNDS");
    rail.assert_script_done();
}

#[test]
fn a_timeout_stays_processing_and_status_finds_the_charge() {
    let rail = rail();
    let request = mobile_money("pay_3", 1250, "USD", "+231770001234");
    rail.expect("POST", &format!("{BASE}/v1/charges"), Reply::timeout());
    let outcome = rail.collect(&request).unwrap();
    assert_eq!(outcome.status, TransactionStatus::Processing);
    assert_eq!(outcome.provider_reference, None);

    // No reference yet: look the charge up by our payment id.
    let found = json!({"data": [charge("ch_3", "succeeded")]});
    rail.expect("GET", &format!("{BASE}/v1/charges?reference=pay_3"), Reply::json(200, found));
    let settled = rail.status(&request, None).unwrap();
    assert_eq!(settled.status, TransactionStatus::Completed);
    assert_eq!(settled.provider_reference.as_deref(), Some("ch_3"));
    rail.assert_script_done();
}

#[test]
fn a_charge_the_provider_never_received_is_sent_again_under_the_same_key() {
    let rail = rail();
    let request = mobile_money("pay_4", 1250, "USD", "+231770001234");
    rail.expect("GET", &format!("{BASE}/v1/charges?reference=pay_4"), Reply::json(200, json!({"data": []})));
    rail.expect("POST", &format!("{BASE}/v1/charges"), Reply::json(201, charge("ch_4", "pending")));
    let outcome = rail.status(&request, None).unwrap();
    assert_eq!(outcome.status, TransactionStatus::Processing);
    assert_eq!(rail.requests()[1].header("Idempotency-Key"), Some("pay_4"));

    rail.expect("GET", &format!("{BASE}/v1/charges/ch_4"), Reply::json(200, charge("ch_4", "succeeded")));
    assert_eq!(rail.status(&request, Some("ch_4")).unwrap().status, TransactionStatus::Completed);
    rail.assert_script_done();
}

#[test]
fn a_refused_key_fails_cleanly_without_revealing_it() {
    let rail = rail();
    rail.expect("POST", &format!("{BASE}/v1/charges"), Reply::json(401, json!({"error": "bad key"})));
    let failure = rail.collect(&mobile_money("pay_5", 100, "USD", "+231770001234")).unwrap_err();
    assert_eq!(failure.code, "PROVIDER_AUTH_FAILED");
    assert!(!failure.retryable);
    rail.assert_script_done();
    rail.assert_never_revealed(API_KEY);
}

#[test]
fn bad_input_and_missing_config_fail_before_any_request() {
    let rail = rail();
    let failure = rail.collect(&mobile_money("pay_6", 100, "USD", "0770001234")).unwrap_err();
    assert_eq!(failure.code, "INVALID_PHONE");
    let failure = rail.collect(&mobile_money("pay_7", 100, "XYZ", "+231770001234")).unwrap_err();
    assert_eq!(failure.code, "CURRENCY_NOT_SUPPORTED");

    let unconfigured = TestRail::builder(built_rail("rail-template")).config("base_url", BASE).load();
    let failure = unconfigured.collect(&mobile_money("pay_8", 100, "USD", "+231770001234")).unwrap_err();
    assert_eq!((failure.code.as_str(), failure.message.contains("api_key")), ("NOT_CONFIGURED", true));
    assert!(rail.requests().is_empty() && unconfigured.requests().is_empty());
}

#[test]
fn a_host_the_operator_did_not_allow_is_never_reached() {
    let rail = TestRail::builder(built_rail("rail-template"))
        .config("base_url", "https://elsewhere.example")
        .config("api_key", API_KEY)
        .allow_host("api.example-pay.test")
        .load();
    let failure = rail.collect(&mobile_money("pay_9", 100, "USD", "+231770001234")).unwrap_err();
    assert_eq!(failure.code, "HTTP_DENIED");
    assert!(rail.requests().is_empty());
}
