//! Operators change billers while bills are bought, as they do rails:
//! load a new version, bind it to a mode and bill type, put a canary in
//! front, roll back, unload — through the admin API — and list the bills
//! bought, across merchants, without seeing customers' tokens.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::Method;
use serde_json::{Value, json};
use soxara::domain::keys::KeyKind;
use soxara::values::mode::Mode;
use soxara_tests::{TestApp, new_key, plugin_dir, spawn_app};

/// A second copy of the sandbox biller under another file name: another
/// plugin to the gateway (`biller-alt@0.1.0`), selling the same bills.
fn alternate_biller(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("biller-alt.wasm");
    std::fs::copy(plugin_dir().join("biller-sandbox.wasm"), &path).expect("a copy of the sandbox biller");
    path
}

async fn load(app: &TestApp, path: &std::path::Path) -> Value {
    let loaded = app.admin(Method::POST, "/admin/plugins", Some(json!({"path": path.display().to_string()}))).await;
    assert_eq!(loaded.status, 201, "{:?}", loaded.body);
    loaded.body
}

async fn bind(app: &TestApp, body: Value) -> Value {
    let bound = app.admin(Method::POST, "/admin/bills/routes", Some(body)).await;
    assert_eq!(bound.status, 200, "{:?}", bound.body);
    bound.body
}

fn airtime() -> Value {
    json!({ "network": "mtn", "phone": "09012341234", "amount": 5_000, "currency": "LRD" })
}

/// Which biller plugin carried a bill, as operators see it.
async fn carried_by(app: &TestApp, bill_id: &str) -> String {
    let listed = app.admin(Method::GET, "/admin/bills?limit=100", None).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let bill = listed.body["data"].as_array().unwrap().iter().find(|b| b["id"] == bill_id).cloned();
    bill.unwrap_or_else(|| panic!("{bill_id} is listed: {}", listed.body))["biller"].as_str().unwrap().to_string()
}

async fn buy_airtime(app: &TestApp) -> String {
    let bought = app.post(&app.key, "/v1/bills/airtime", &new_key(), &airtime()).await;
    assert_eq!((bought.status.as_u16(), bought.body["status"].as_str()), (201, Some("completed")), "{:?}", bought.body);
    bought.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn load_bind_canary_roll_back_and_unload_a_biller() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let alt = alternate_biller(&dir);
    let loaded = load(&app, &alt).await;
    assert_eq!((loaded["kind"].as_str(), loaded["id"].as_str()), (Some("biller"), Some("biller-alt@0.1.0")));
    let again = app.admin(Method::POST, "/admin/plugins", Some(json!({"path": alt.display().to_string()}))).await;
    assert_eq!((again.status.as_u16(), again.code()), (422, "PLUGIN_REJECTED"));
    assert!(again.body["error"]["message"].as_str().unwrap().contains("already loaded"), "{:?}", again.body);
    let listed = app.admin(Method::GET, "/admin/plugins", None).await;
    let billers = listed.body["billers"].as_array().unwrap();
    let ids: Vec<&str> = billers.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"biller-sandbox@0.1.0") && ids.contains(&"biller-alt@0.1.0"), "{ids:?}");
    let alt_listed = billers.iter().find(|b| b["id"] == "biller-alt@0.1.0").unwrap();
    assert_eq!((alt_listed["in_use"].as_bool(), alt_listed["mode"].as_str()), (Some(false), Some("test")));

    // Before any change test mode buys from the sandbox biller.
    assert_eq!(carried_by(&app, &buy_airtime(&app).await).await, "biller-sandbox");

    let routes = bind(&app, json!({"mode": "test", "bill_type": "airtime", "plugin": "biller-alt"})).await;
    let airtime_route = routes["routes"].as_array().unwrap().iter().find(|r| r["bill_type"] == "airtime").unwrap();
    assert_eq!(airtime_route["plugin"], "biller-alt@0.1.0");
    assert_eq!(carried_by(&app, &buy_airtime(&app).await).await, "biller-alt");
    // Other bill types keep their binding.
    let data = json!({ "network": "mtn", "phone": "09012341234", "plan": "mtn-1gb-7d" });
    let data_bill = app.post(&app.key, "/v1/bills/data", &new_key(), &data).await;
    assert_eq!(carried_by(&app, data_bill.body["id"].as_str().unwrap()).await, "biller-sandbox");

    // A 100% canary takes every purchase; rollback restores what was before.
    let canary = json!({"mode": "test", "bill_type": "airtime", "plugin": "biller-sandbox",
                        "canary": {"plugin": "biller-alt@0.1.0", "percent": 100}});
    bind(&app, canary).await;
    for _ in 0..3 {
        assert_eq!(carried_by(&app, &buy_airtime(&app).await).await, "biller-alt");
    }
    let rollback = json!({"mode": "test", "bill_type": "airtime"});
    let rolled = app.admin(Method::POST, "/admin/bills/routes/rollback", Some(rollback.clone())).await;
    assert_eq!(rolled.status, 200, "{:?}", rolled.body);
    let airtime_route = rolled.body["routes"].as_array().unwrap().iter().find(|r| r["bill_type"] == "airtime").unwrap();
    assert_eq!(
        (&airtime_route["plugin"], &airtime_route["canary"]),
        (&json!("biller-alt@0.1.0"), &Value::Null),
        "back to the binding before the canary: {}",
        rolled.body
    );
    assert_eq!(carried_by(&app, &buy_airtime(&app).await).await, "biller-alt");

    // In use, it cannot be unloaded; rolled back to the sandbox, it can.
    let in_use = app.admin(Method::DELETE, "/admin/plugins/biller-alt@0.1.0", None).await;
    assert_eq!(in_use.code(), "PLUGIN_REJECTED", "{:?}", in_use.body);
    assert_eq!(app.admin(Method::POST, "/admin/bills/routes/rollback", Some(rollback.clone())).await.status, 200);
    assert_eq!(carried_by(&app, &buy_airtime(&app).await).await, "biller-sandbox");
    let nothing_left = app.admin(Method::POST, "/admin/bills/routes/rollback", Some(rollback)).await;
    assert_eq!(nothing_left.code(), "PLUGIN_REJECTED", "{:?}", nothing_left.body);
    let unloaded = app.admin(Method::DELETE, "/admin/plugins/biller-alt@0.1.0", None).await;
    assert_eq!(unloaded.status, 200, "{:?}", unloaded.body);
    assert!(!unloaded.body["billers"].to_string().contains("biller-alt"), "{}", unloaded.body);
    let gone = app
        .admin(
            Method::POST,
            "/admin/bills/routes",
            Some(json!({"mode": "test", "bill_type": "airtime", "plugin": "biller-alt"})),
        )
        .await;
    assert_eq!(gone.code(), "PLUGIN_REJECTED");
    app.verify().expect("the ledger holds");
}

/// Test and live never meet, and bad bindings are refused with the reason.
#[tokio::test]
async fn bindings_that_would_mix_modes_or_sell_nothing_are_refused() {
    let app = spawn_app().await;
    let refused = |body: Value| {
        let app = &app;
        async move {
            let answer = app.admin(Method::POST, "/admin/bills/routes", Some(body)).await;
            let expected = if answer.code() == "VALIDATION_ERROR" { 400 } else { 422 };
            assert_eq!(answer.status, expected, "{:?}", answer.body);
            (answer.code().to_string(), answer.body["error"].to_string())
        }
    };
    let (code, error) = refused(json!({"mode": "live", "bill_type": "airtime", "plugin": "biller-sandbox"})).await;
    assert_eq!(code, "PLUGIN_REJECTED");
    assert!(error.contains("configured for test mode"), "{error}");
    let (code, error) = refused(json!({"mode": "test", "bill_type": "groceries", "plugin": "biller-sandbox"})).await;
    assert_eq!(code, "VALIDATION_ERROR");
    assert!(error.contains("bill_type"), "{error}");
    let (code, error) = refused(json!({"mode": "test", "bill_type": "airtime", "plugin": "nobody"})).await;
    assert_eq!(code, "PLUGIN_REJECTED");
    assert!(error.contains("no biller \\\"nobody\\\""), "{error}");
    let canary = json!({"mode": "test", "bill_type": "airtime", "plugin": "biller-sandbox",
                        "canary": {"plugin": "biller-sandbox", "percent": 101}});
    let (code, _) = refused(canary).await;
    assert_eq!(code, "VALIDATION_ERROR");
    // A live key still finds no live biller: nothing was bound.
    let live = app.create_key(&app.merchant_id, Mode::Live, KeyKind::Secret).await;
    let bought = app.post(&live, "/v1/bills/airtime", &new_key(), &airtime()).await;
    assert_eq!((bought.status.as_u16(), bought.code()), (503, "PROVIDER_UNAVAILABLE"), "{:?}", bought.body);
    let listed = app.admin(Method::GET, "/admin/bills/routes", None).await;
    assert!(listed.body["routes"].as_array().unwrap().iter().all(|r| r["mode"] == "test"), "{}", listed.body);
}

/// Operators list bills across merchants, filtered and paged; the tokens
/// that are the customer's are counted, never shown.
#[tokio::test]
async fn operators_list_bills_without_the_customers_tokens() {
    let app = spawn_app().await;
    let power = |meter: &str| json!({ "provider": "lec", "meter_number": meter, "meter_type": "prepaid", "amount": 250_000, "currency": "LRD" });
    let bought = app.post(&app.key, "/v1/bills/electricity", &new_key(), &power("12345671234")).await;
    assert_eq!(bought.body["status"], "completed", "{:?}", bought.body);
    let token = bought.body["bill"]["tokens"][0].as_str().expect("the merchant sees the token").to_string();
    let refunded = app.post(&app.key, "/v1/bills/electricity", &new_key(), &power("12345670000")).await;
    assert_eq!(refunded.body["status"], "refunded", "{:?}", refunded.body);
    let airtime_id = buy_airtime(&app).await;

    let all = app.admin(Method::GET, "/admin/bills", None).await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    assert!(!all.body.to_string().contains(&token), "no token in the operator's listing: {}", all.body);
    let data = all.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["id"], airtime_id.as_str(), "newest first");
    let power_bill = data.iter().find(|b| b["id"] == bought.body["id"]).unwrap();
    assert_eq!(power_bill["tokens_delivered"], 1);
    assert_eq!(power_bill["bill"]["tokens"], json!([]));
    assert_eq!(power_bill["merchant_id"], app.merchant_id.as_str());

    let only_refunded = app.admin(Method::GET, "/admin/bills?status=refunded&mode=test", None).await;
    let ids: Vec<&Value> = only_refunded.body["data"].as_array().unwrap().iter().map(|b| &b["id"]).collect();
    assert_eq!(ids, vec![&refunded.body["id"]]);
    let other_merchant = app.admin(Method::GET, "/admin/bills?merchant_id=mer_nobody", None).await;
    assert_eq!(other_merchant.body["data"], json!([]));
    let live = app.admin(Method::GET, "/admin/bills?mode=live", None).await;
    assert_eq!(live.body["data"], json!([]));

    let first = app.admin(Method::GET, "/admin/bills?limit=2", None).await;
    assert_eq!((first.body["data"].as_array().unwrap().len(), first.body["has_more"].as_bool()), (2, Some(true)));
    let last_id = first.body["data"][1]["id"].as_str().unwrap();
    let second = app.admin(Method::GET, &format!("/admin/bills?limit=2&starting_after={last_id}"), None).await;
    let rest: Vec<&Value> = second.body["data"].as_array().unwrap().iter().map(|b| &b["id"]).collect();
    assert_eq!((rest, second.body["has_more"].as_bool()), (vec![&data[2]["id"]], Some(false)));

    for bad in ["?status=lost", "?mode=prod", "?limit=0", "?starting_after=bill_nope", "?colour=red"] {
        let answer = app.admin(Method::GET, &format!("/admin/bills{bad}"), None).await;
        assert_eq!((answer.status.as_u16(), answer.code()), (400, "VALIDATION_ERROR"), "{bad}: {:?}", answer.body);
    }
}

/// A hundred swaps of the airtime biller while purchases flow fail
/// none of them, and the purchase after each swap reaches the biller just
/// bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_swaps_under_load_fail_no_purchase() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    load(&app, &alternate_biller(&dir)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (client, base, key, stop) = (app.client.clone(), app.base.clone(), app.key.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let answer = client
                    .post(format!("{base}/v1/bills/airtime"))
                    .bearer_auth(&key)
                    .header("X-Idempotency-Key", new_key())
                    .json(&airtime())
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status() == 201 => ok += 1,
                    Ok(r) => failed.push(format!("{} {}", r.status(), r.text().await.unwrap_or_default())),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        })
    };
    for swap in 0..100 {
        let biller = if swap % 2 == 0 { "biller-alt" } else { "biller-sandbox" };
        bind(&app, json!({"mode": "test", "bill_type": "airtime", "plugin": biller})).await;
        assert_eq!(carried_by(&app, &buy_airtime(&app).await).await, biller, "swap {swap}");
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = load.await.unwrap();
    assert!(failed.is_empty(), "{} purchases failed during the swaps: {failed:?}", failed.len());
    assert!(ok > 0, "the load ran");
    app.verify().expect("the ledger holds");
}

/// The last loaded version of a plugin stays while purchases it carried
/// are still processing: their status checks need it.
#[tokio::test]
async fn the_last_version_of_a_biller_stays_while_its_purchases_are_processing() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    load(&app, &alternate_biller(&dir)).await;
    bind(&app, json!({"mode": "test", "bill_type": "airtime", "plugin": "biller-alt"})).await;
    // The sandbox table: a phone ending 9999 stays processing.
    let waiting = json!({ "network": "mtn", "phone": "09012349999", "amount": 5_000, "currency": "LRD" });
    let bought = app.post(&app.key, "/v1/bills/airtime", &new_key(), &waiting).await;
    assert_eq!(bought.body["status"], "processing", "{:?}", bought.body);
    bind(&app, json!({"mode": "test", "bill_type": "airtime", "plugin": "biller-sandbox"})).await;

    let refused = app.admin(Method::DELETE, "/admin/plugins/biller-alt@0.1.0", None).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (422, "PLUGIN_REJECTED"), "{:?}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("1 of its purchases"), "{:?}", refused.body);
}

/// A rollback never brings back a version unloaded since.
#[tokio::test]
async fn a_rollback_never_rebinds_an_unloaded_version() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    load(&app, &alternate_biller(&dir)).await;
    bind(&app, json!({"mode": "test", "bill_type": "airtime", "plugin": "biller-alt"})).await;
    bind(&app, json!({"mode": "test", "bill_type": "airtime", "plugin": "biller-sandbox"})).await;
    let unloaded = app.admin(Method::DELETE, "/admin/plugins/biller-alt@0.1.0", None).await;
    assert_eq!(unloaded.status, 200, "nothing of it is processing: {:?}", unloaded.body);
    let rollback = json!({"mode": "test", "bill_type": "airtime"});
    let back = app.admin(Method::POST, "/admin/bills/routes/rollback", Some(rollback)).await;
    assert_eq!(back.code(), "PLUGIN_REJECTED", "{:?}", back.body);
    assert!(back.body["error"]["message"].as_str().unwrap().contains("unloaded since"), "{:?}", back.body);
    assert_eq!(carried_by(&app, &buy_airtime(&app).await).await, "biller-sandbox", "the binding stayed");
}
