//! The testkit's own promises, checked with the rail template's component
//! (`cargo xtask build-plugins` builds it): a script that is not followed
//! fails the test, and nothing reaches the network.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::json;
use soxara_testkit::{Reply, TestRail, TransactionStatus, built_rail, mobile_money};

const BASE: &str = "https://api.example-pay.test";

fn rail() -> TestRail {
    TestRail::builder(built_rail("rail-template"))
        .config("base_url", BASE)
        .config("api_key", "ek_test_kit")
        .allow_host("api.example-pay.test")
        .load()
}

fn panic_message(outcome: std::thread::Result<()>) -> String {
    let payload = outcome.expect_err("expected a panic");
    payload.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn an_unexpected_request_fails_the_test_when_the_rail_is_dropped() {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let rail = rail();
        // Unscripted: the plugin sees a transport error (processing), and the test fails.
        let answer = rail.collect(&mobile_money("pay_1", 100, "USD", "+231770001234")).unwrap();
        assert_eq!(answer.status, TransactionStatus::Processing);
    }));
    let message = panic_message(outcome);
    assert!(
        message.contains("did not expect") && message.contains("POST https://api.example-pay.test/v1/charges"),
        "{message}"
    );
}

#[test]
fn a_request_to_the_wrong_url_is_not_answered_from_the_script() {
    let rail = rail();
    rail.expect(
        "GET",
        &format!("{BASE}/v1/charges/ch_other"),
        Reply::json(200, json!({"id": "ch_other", "status": "succeeded"})),
    );
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let request = mobile_money("pay_2", 100, "USD", "+231770001234");
        let _ = rail.status(&request, Some("ch_2"));
        rail.assert_script_done();
    }));
    let message = panic_message(outcome);
    assert!(message.contains("GET https://api.example-pay.test/v1/charges/ch_2 (expected GET"), "{message}");
    std::mem::forget(rail); // already failed on purpose; do not fail again on drop
}

#[test]
fn an_unmet_expectation_fails_the_test() {
    let rail = rail();
    rail.expect("POST", &format!("{BASE}/v1/charges"), Reply::json(201, json!({"id": "ch_3", "status": "succeeded"})));
    let message = panic_message(catch_unwind(AssertUnwindSafe(|| rail.assert_script_done())));
    assert!(
        message.contains("never sent") && message.contains("POST https://api.example-pay.test/v1/charges"),
        "{message}"
    );
    // Dropping it without the check fails the test too.
    let message = panic_message(catch_unwind(AssertUnwindSafe(move || drop(rail))));
    assert!(message.contains("never sent"), "{message}");
}

#[test]
fn a_secret_in_an_answer_is_caught() {
    // The provider echoes the key in its error; the template does not put
    // the body of a 401 in its message, but does for a 422: a rail author
    // learns from this check which of their messages can leak.
    let rail = rail();
    rail.expect("POST", &format!("{BASE}/v1/charges"), Reply::json(422, json!({"error": "bad key ek_test_kit"})));
    let failure = rail.collect(&mobile_money("pay_4", 100, "USD", "+231770001234")).unwrap_err();
    assert_eq!(failure.code, "PROVIDER_REJECTED");
    let message = panic_message(catch_unwind(AssertUnwindSafe(|| rail.assert_never_revealed("ek_test_kit"))));
    assert!(message.contains("answered with a secret"), "{message}");
}

#[test]
fn a_component_of_another_world_is_refused() {
    let plugins = built_rail("rail-template").parent().unwrap().join("../plugins/fx-fixed.wasm");
    let refused = TestRail::builder(plugins).try_load().err().expect("an FX plugin is not a rail");
    assert!(refused.contains("rail world"), "{refused}");
}

#[test]
fn a_python_rail_runs_under_the_testkit_too() {
    // The same Example Pay rail, built with componentize-py: WASI is linked
    // deny-all, HTTP still goes through the script.
    let rail = TestRail::builder(built_rail("rail-python"))
        .config("base_url", BASE)
        .config("api_key", "ek_test_kit")
        .allow_host("api.example-pay.test")
        .load();
    assert_eq!(rail.info().name, "rail-python");
    rail.expect("POST", &format!("{BASE}/v1/charges"), Reply::json(201, json!({"id": "ch_9", "status": "succeeded"})));
    let outcome = rail.collect(&mobile_money("pay_9", 1250, "USD", "+231770001234")).unwrap();
    assert_eq!((outcome.status, outcome.provider_reference.as_deref()), (TransactionStatus::Completed, Some("ch_9")));
    let sent = &rail.requests()[0];
    assert_eq!(sent.header("Idempotency-Key"), Some("pay_9"));
    assert_eq!(
        sent.json(),
        json!({"reference": "pay_9", "amount": "12.50", "currency": "USD", "phone": "231770001234"})
    );
    rail.expect("POST", &format!("{BASE}/v1/charges"), Reply::timeout());
    let unknown = rail.collect(&mobile_money("pay_10", 100, "LRD", "+231770001234")).unwrap();
    assert_eq!(unknown.status, TransactionStatus::Processing, "no answer is not a decline");
    rail.assert_never_revealed("ek_test_kit");
}
