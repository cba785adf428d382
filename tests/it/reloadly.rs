//! Airtime and data through the real `reloadly` biller component, bound for
//! test-mode airtime and data, talking to a fake Reloadly API on a loopback
//! port. The sandbox merchant's simulated balance pays: request → biller →
//! Reloadly → answer or status check → final status, ledger and balance;
//! and never a second top-up.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use soxara::config::{BillRoute, FileConfig, PluginLimitOverrides, PluginSettings};
use soxara_tests::fakes::reloadly::{self, FakeReloadly, Fault};
use soxara_tests::{Answer, TestApp, new_key, spawn_app_with, wait_for};

/// The sandbox merchant's simulated LRD balance before its first purchase.
const LRD_GRANT: i64 = 200_000_000;

/// A gateway whose test-mode airtime and data are sold by the `reloadly`
/// biller, configured for Reloadly's sandbox at `fake` (plus `extra`
/// settings). Purchases left processing are checked every `check_ms`.
async fn gateway(fake: &FakeReloadly, extra: &[(&str, &str)], check_ms: u64) -> TestApp {
    let mut file = FileConfig::default();
    for bill_type in ["airtime", "data"] {
        file.bills.routes.push(BillRoute {
            mode: "test".into(),
            bill_type: bill_type.into(),
            biller: "reloadly".into(),
        });
    }
    let mut config = BTreeMap::from([
        ("client_id".to_string(), reloadly::CLIENT_ID.to_string()),
        ("client_secret".to_string(), reloadly::CLIENT_SECRET.to_string()),
        ("environment".to_string(), "sandbox".to_string()),
        ("auth_url".to_string(), fake.url()),
        ("base_url".to_string(), fake.url()),
    ]);
    config.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = PluginSettings {
        mode: Some("test".into()),
        config,
        allowed_hosts: vec!["127.0.0.1".into()],
        // A token, an auto-detect and a top-up may each take the host's 4 s
        // HTTP deadline.
        limits: PluginLimitOverrides { call_ms_max: Some(15_000), ..Default::default() },
        ..Default::default()
    };
    file.plugins.insert("reloadly".into(), settings);
    file.status_checks.delays_ms = vec![check_ms];
    file.status_checks.poll_interval_ms = 20;
    spawn_app_with(file).await
}

async fn airtime(app: &TestApp, network: &str, phone: &str, amount: u64) -> Answer {
    let body = json!({ "network": network, "phone": phone, "amount": amount, "currency": "LRD" });
    let bought = app.post(&app.key, "/v1/bills/airtime", &new_key(), &body).await;
    assert_eq!(bought.status, 201, "{:?}", bought.body);
    bought
}

fn id(answer: &Answer) -> String {
    answer.body["id"].as_str().unwrap_or_else(|| panic!("no id in {:?}", answer.body)).to_string()
}

/// Waits until the purchase leaves `processing`, and returns it.
async fn settled(app: &TestApp, id: &str) -> Value {
    wait_for(&format!("{id} to settle"), || async {
        let answer = app.get(&app.key, &format!("/v1/transactions/{id}")).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        (answer.body["status"] != "processing").then_some(answer.body)
    })
    .await
}

/// The merchant's simulated bills balance in `currency`, in minor units.
async fn sandbox_balance(app: &TestApp, currency: &str) -> i64 {
    -app.count(&format!(
        "SELECT SUM(p.amount) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
         WHERE a.kind = 'sandbox_balance' AND a.currency = '{currency}'"
    ))
    .await
}

async fn events(app: &TestApp, object_id: &str, event_type: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) FROM events WHERE object_id = '{object_id}' AND type = '{event_type}'")).await
}

#[tokio::test]
async fn airtime_is_topped_up_once_under_the_purchase_id() {
    let fake = FakeReloadly::start().await;
    let app = gateway(&fake, &[], 200).await;

    let bought = airtime(&app, "mtn", reloadly::MTN_PHONE, 15_050).await;
    let bill = &bought.body;
    assert_eq!(bill["status"], "completed", "{bill}");
    let purchase_id = id(&bought);
    assert_eq!(fake.topups_for(&purchase_id), 1);
    let sent = fake.topup(&purchase_id).expect("the top-up reached Reloadly");
    assert_eq!(sent.custom_identifier, purchase_id);
    assert_eq!(sent.operator_id, reloadly::MTN_AIRTIME_ID);
    assert_eq!((sent.amount_text.as_str(), sent.amount_minor), ("150.50", 15_050), "the exact decimal");
    assert!(sent.use_local_amount, "LRD is the operator's own currency");
    assert_eq!(sent.number, "231880001234");
    assert_eq!(bill["provider_reference"], sent.transaction_id.to_string());
    assert_eq!((bill["fee"].as_i64(), bill["net_amount"].as_i64()), (Some(150), Some(14_900)), "{bill}");
    assert_eq!(sandbox_balance(&app, "LRD").await, LRD_GRANT - 15_050);
    assert_eq!(events(&app, &purchase_id, "transaction.completed").await, 1);

    // A local number on the other network; the token is reused.
    let bought = airtime(&app, "orange", "0770001234", 5_000).await;
    assert_eq!(bought.body["status"], "completed", "{:?}", bought.body);
    let sent = fake.topup(&id(&bought)).expect("the second top-up reached Reloadly");
    assert_eq!((sent.operator_id, sent.number.as_str()), (reloadly::ORANGE_AIRTIME_ID, "231770001234"));
    assert_eq!(fake.tokens_issued(), 1, "the cached token served both purchases");
    assert_eq!(fake.topup_posts(), 2);
    assert_eq!(sandbox_balance(&app, "LRD").await, LRD_GRANT - 15_050 - 5_000);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn data_plans_come_from_reloadly_and_a_plan_is_bought() {
    let fake = FakeReloadly::start().await;
    let app = gateway(&fake, &[], 200).await;

    let listed = app.get(&app.key, "/v1/bills/data-plans?network=mtn").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let plans: Vec<(String, i64, String)> = listed.body["data"]
        .as_array()
        .expect("a list of plans")
        .iter()
        .map(|p| {
            assert_eq!(p["currency"], "LRD", "{p}");
            (p["code"].as_str().unwrap().into(), p["amount"].as_i64().unwrap(), p["name"].as_str().unwrap().into())
        })
        .collect();
    // The fake lists 90 twice and a zero: deduped, sorted, zero dropped.
    let expected = [
        ("mtn-data-9000", 9_000, "500MB, 1 day"),
        ("mtn-data-18000", 18_000, "1GB, 7 days"),
        ("mtn-data-45000", 45_000, "3GB, 30 days"),
    ];
    let expected: Vec<(String, i64, String)> =
        expected.iter().map(|(c, a, n)| (c.to_string(), *a, n.to_string())).collect();
    assert_eq!(plans, expected);

    let orange = app.get(&app.key, "/v1/bills/data-plans?network=orange").await;
    let codes: Vec<&str> =
        orange.body["data"].as_array().unwrap().iter().map(|p| p["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["orange-data-15000", "orange-data-25000"]);

    let body = json!({ "network": "orange", "phone": reloadly::ORANGE_PHONE, "plan": "orange-data-25000" });
    let bought = app.post(&app.key, "/v1/bills/data", &new_key(), &body).await;
    assert_eq!(bought.status, 201, "{:?}", bought.body);
    assert_eq!(bought.body["status"], "completed", "{:?}", bought.body);
    assert_eq!(bought.body["amount"], 25_000);
    let purchase_id = id(&bought);
    let sent = fake.topup(&purchase_id).expect("the top-up reached Reloadly");
    assert_eq!(sent.operator_id, reloadly::ORANGE_DATA_ID, "the network's data operator");
    assert_eq!((sent.amount_text.as_str(), sent.amount_minor, sent.use_local_amount), ("250.00", 25_000, true));
    assert_eq!(fake.topups_for(&purchase_id), 1);
    assert_eq!(sandbox_balance(&app, "LRD").await, LRD_GRANT - 25_000);

    // A plan of the other network is refused before anything is bought.
    let body = json!({ "network": "orange", "phone": reloadly::ORANGE_PHONE, "plan": "mtn-data-9000" });
    let refused = app.post(&app.key, "/v1/bills/data", &new_key(), &body).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (422, "NOT_OFFERED"), "{:?}", refused.body);
    assert_eq!(refused.body["error"]["fields"][0]["field"], "plan", "{:?}", refused.body);
    assert_eq!(fake.topup_posts(), 1);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn an_expired_or_revoked_token_is_replaced_once() {
    let fake = FakeReloadly::start().await;
    // Cached for two seconds (the plugin drops tokens a minute early).
    fake.set_token_lifetime_s(62);
    let app = gateway(&fake, &[], 200).await;
    let token_expired = || tokio::time::sleep(Duration::from_millis(2_300));
    assert_eq!(airtime(&app, "mtn", reloadly::MTN_PHONE, 10_000).await.body["status"], "completed");
    assert_eq!(fake.tokens_issued(), 1);
    token_expired().await;
    assert_eq!(airtime(&app, "mtn", reloadly::MTN_PHONE, 10_000).await.body["status"], "completed");
    assert_eq!((fake.tokens_issued(), fake.unauthorized()), (2, 0), "an expired token is not even tried");

    // Long-lived from now on, then revoked at Reloadly: one 401, one new
    // token, and the purchase goes through.
    fake.set_token_lifetime_s(5_184_000);
    token_expired().await;
    assert_eq!(airtime(&app, "mtn", reloadly::MTN_PHONE, 10_000).await.body["status"], "completed");
    assert_eq!(fake.tokens_issued(), 3);
    fake.revoke_tokens();
    let bought = airtime(&app, "orange", reloadly::ORANGE_PHONE, 12_000).await;
    assert_eq!(bought.body["status"], "completed", "{:?}", bought.body);
    assert_eq!((fake.tokens_issued(), fake.unauthorized()), (4, 1), "one 401, one new token");
    assert_eq!(fake.topups_for(&id(&bought)), 1);
    assert_eq!(fake.topup_posts(), 4);
}

#[tokio::test]
async fn a_timeout_after_reloadly_accepted_is_settled_by_a_status_check_with_one_topup() {
    let fake = FakeReloadly::start().await;
    // Reloadly tops up, but answers after the host's 4 s HTTP deadline.
    fake.push_fault(Fault::SlowAccept(Duration::from_millis(6_000)));
    let app = gateway(&fake, &[], 200).await;
    let bought = airtime(&app, "mtn", reloadly::MTN_PHONE, 20_000).await;
    assert_eq!(bought.body["status"], "processing", "{:?}", bought.body);
    assert_eq!(bought.body["next_action"]["type"], "wait");
    let purchase_id = id(&bought);

    let done = settled(&app, &purchase_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let sent = fake.topup(&purchase_id).expect("the top-up reached Reloadly");
    assert_eq!(done["provider_reference"], sent.transaction_id.to_string(), "found in the report");
    assert_eq!(fake.topup_posts(), 1, "the status check asked; it did not top up again");
    assert_eq!(fake.topups_for(&purchase_id), 1);
    assert!(fake.report_reads() >= 1);
    assert_eq!(sandbox_balance(&app, "LRD").await, LRD_GRANT - 20_000, "paid once");
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_topup_lost_to_a_5xx_is_sent_again_under_the_same_identifier() {
    let fake = FakeReloadly::start().await;
    // Refused with a 500 before Reloadly stored anything.
    fake.push_fault(Fault::ServerError);
    let app = gateway(&fake, &[], 100).await;
    let bought = airtime(&app, "mtn", reloadly::MTN_PHONE, 7_000).await;
    assert_eq!(bought.body["status"], "processing", "a 5xx may hide a top-up");
    let purchase_id = id(&bought);
    assert_eq!(settled(&app, &purchase_id).await["status"], "completed");
    // The report had nothing, so the status check sent it again.
    assert_eq!((fake.topup_posts(), fake.topups_for(&purchase_id)), (2, 1));

    // Stored, then a 502, and the report lags once: the resend is refused
    // as a reused customIdentifier, and the report then settles it.
    fake.push_fault(Fault::AcceptThenServerError);
    fake.lag_reports(1);
    let bought = airtime(&app, "orange", reloadly::ORANGE_PHONE, 7_000).await;
    assert_eq!(bought.body["status"], "processing");
    let purchase_id = id(&bought);
    assert_eq!(settled(&app, &purchase_id).await["status"], "completed");
    assert_eq!((fake.topup_posts(), fake.topups_for(&purchase_id)), (4, 1), "refused as a duplicate, bought once");
    assert_eq!(sandbox_balance(&app, "LRD").await, LRD_GRANT - 14_000);
}

#[tokio::test]
async fn a_pending_topup_is_settled_by_its_transaction_status() {
    let fake = FakeReloadly::start().await;
    fake.push_fault(Fault::Outcome("PENDING"));
    let app = gateway(&fake, &[], 50).await;
    let bought = airtime(&app, "mtn", reloadly::MTN_PHONE, 9_000).await;
    assert_eq!(bought.body["status"], "processing", "{:?}", bought.body);
    let purchase_id = id(&bought);
    let transaction_id = fake.topup(&purchase_id).expect("stored").transaction_id.to_string();
    assert_eq!(bought.body["provider_reference"], transaction_id.as_str());
    let done = settled(&app, &purchase_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(fake.status_reads() >= 3, "pending for two reads: {}", fake.status_reads());
    assert_eq!(fake.report_reads(), 0, "the transaction id was known");
    assert_eq!(fake.topup_posts(), 1);
}

#[tokio::test]
async fn a_refusal_or_a_refund_gives_the_merchant_its_money_back() {
    let fake = FakeReloadly::start().await;
    let app = gateway(&fake, &[], 200).await;
    fake.push_fault(Fault::Refuse(400, "INSUFFICIENT_BALANCE"));
    let bought = airtime(&app, "mtn", reloadly::MTN_PHONE, 30_000).await;
    let bill = &bought.body;
    assert_eq!(bill["status"], "failed", "{bill}");
    assert_eq!(bill["failure"]["code"], "PROVIDER_FUNDS_LOW", "{bill}");
    assert_eq!(bill["next_action"]["type"], "retry_with_new_key");
    let purchase_id = id(&bought);
    assert_eq!(fake.topups_for(&purchase_id), 0);
    assert_eq!(events(&app, &purchase_id, "transaction.failed").await, 1);
    assert_eq!(sandbox_balance(&app, "LRD").await, LRD_GRANT, "the money is back");

    fake.push_fault(Fault::Outcome("REFUNDED"));
    let bought = airtime(&app, "orange", reloadly::ORANGE_PHONE, 30_000).await;
    assert_eq!(bought.body["status"], "refunded", "{:?}", bought.body);
    assert_eq!(bought.body["failure"]["code"], "PROVIDER_REVERSED");
    assert_eq!(events(&app, &id(&bought), "transaction.refunded").await, 1);
    assert_eq!(sandbox_balance(&app, "LRD").await, LRD_GRANT, "the money is back");
    assert_eq!(bought.body["fee"], 0);

    // Lost to a 5xx, then refused for its own content when a status check
    // sends it again: the first was refused the same, nothing was bought,
    // so it fails and the money comes back.
    fake.push_fault(Fault::ServerError);
    fake.push_fault(Fault::Refuse(400, "INVALID_RECIPIENT_PHONE"));
    let bought = airtime(&app, "mtn", reloadly::MTN_PHONE, 30_000).await;
    assert_eq!(bought.body["status"], "processing", "{:?}", bought.body);
    let purchase_id = id(&bought);
    let done = settled(&app, &purchase_id).await;
    assert_eq!(
        (done["status"].as_str(), done["failure"]["code"].as_str()),
        (Some("failed"), Some("VERIFICATION_FAILED"))
    );
    assert_eq!(fake.topups_for(&purchase_id), 0);
    assert_eq!(sandbox_balance(&app, "LRD").await, LRD_GRANT, "the money is back");
    app.verify().expect("the ledger balances");
}

/// A re-send refused for a reason about the account or the moment (the
/// balance here) may follow from a first top-up the report does not show
/// yet: the purchase stays processing, and the next check settles it.
#[tokio::test]
async fn a_resend_refused_for_the_balance_keeps_the_purchase_processing() {
    let fake = FakeReloadly::start().await;
    let app = gateway(&fake, &[], 100).await;
    fake.push_fault(Fault::ServerError);
    fake.push_fault(Fault::Refuse(400, "INSUFFICIENT_BALANCE"));
    let bought = airtime(&app, "mtn", reloadly::MTN_PHONE, 30_000).await;
    assert_eq!(bought.body["status"], "processing", "{:?}", bought.body);
    let purchase_id = id(&bought);
    let done = settled(&app, &purchase_id).await;
    assert_eq!(done["status"], "completed", "not failed on the balance refusal: {done}");
    assert_eq!(fake.topup_posts(), 3, "the first, the refused re-send, the one that went through");
    assert_eq!(fake.topups_for(&purchase_id), 1, "bought once");
    assert_eq!(sandbox_balance(&app, "LRD").await, LRD_GRANT - 30_000);
    app.verify().expect("the ledger balances");
}

/// Once Reloadly has given a transaction id, a status check asks about
/// that transaction only: a `404` while it is not visible yet (and a
/// lagging report) never makes it send the top-up again.
#[tokio::test]
async fn a_known_transaction_is_never_sent_again() {
    let fake = FakeReloadly::start().await;
    fake.push_fault(Fault::Outcome("PENDING"));
    fake.lag_status(3);
    fake.lag_reports(100);
    let app = gateway(&fake, &[], 50).await;
    let bought = airtime(&app, "mtn", reloadly::MTN_PHONE, 9_000).await;
    assert_eq!(bought.body["status"], "processing", "{:?}", bought.body);
    let purchase_id = id(&bought);
    let done = settled(&app, &purchase_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(fake.status_reads() >= 4, "three 404s, then the answer: {}", fake.status_reads());
    assert_eq!((fake.topup_posts(), fake.report_reads()), (1, 0), "never re-sent, never looked up by report");
    assert_eq!(sandbox_balance(&app, "LRD").await, LRD_GRANT - 9_000);
}

#[tokio::test]
async fn a_number_on_another_network_is_refused_and_nothing_is_bought() {
    let fake = FakeReloadly::start().await;
    let app = gateway(&fake, &[], 200).await;
    for (network, phone) in [("mtn", reloadly::ORANGE_PHONE), ("orange", reloadly::UNKNOWN_PHONE)] {
        let bought = airtime(&app, network, phone, 10_000).await;
        assert_eq!(bought.body["status"], "failed", "{:?}", bought.body);
        assert_eq!(bought.body["failure"]["code"], "VERIFICATION_FAILED", "{:?}", bought.body);
        assert_eq!(bought.body["provider_reference"], Value::Null);
    }
    assert_eq!(fake.detects(), 2, "the network was checked first");
    assert_eq!(fake.topup_posts(), 0, "nothing was sent to be bought");
    assert_eq!(sandbox_balance(&app, "LRD").await, LRD_GRANT);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn credentials_of_the_other_mode_are_refused_before_reloadly_is_asked() {
    let fake = FakeReloadly::start().await;
    // A test-mode biller holding an audience of Reloadly's production.
    let app = gateway(&fake, &[("environment", "live")], 200).await;
    let bought = airtime(&app, "mtn", reloadly::MTN_PHONE, 10_000).await;
    assert_eq!(bought.body["status"], "failed", "{:?}", bought.body);
    assert_eq!(bought.body["failure"]["code"], "MODE_MISMATCH", "{:?}", bought.body);
    assert_eq!(fake.tokens_issued(), 0);
    assert_eq!(fake.topup_posts(), 0);
    let secret = reloadly::CLIENT_SECRET;
    assert!(!bought.body.to_string().contains(secret), "no credential in an answer");
    assert_eq!(sandbox_balance(&app, "LRD").await, LRD_GRANT);
}
