//! The WhatsApp messenger (`plugins/whatsapp`) against a fake Cloud API: a
//! live transfer to a number not yet on Soxara sends a template message
//! with the claim code, the recipient claims it; an outage gets a new code
//! once it is over; an undeliverable number gets the money returned, whether
//! WhatsApp says so at once or later in a signed status notification;
//! forged notifications change nothing; the sandbox messenger can never
//! serve live mode.

use serde_json::{Value, json};
use soxara::config::{FileConfig, PluginSettings};
use soxara::values::mode::Mode;
use soxara_tests::fakes::mtn::{self, FakeMtn};
use soxara_tests::fakes::whatsapp::{self, FakeWhatsApp};
use soxara_tests::{
    Answer, TestApp, live_rail_config, momo, new_key, spawn_app_with, spawn_app_with_live_key, wait_for,
};

/// Operator settings for the WhatsApp messenger against `fake`, bound to
/// `mode`, on top of `config`.
fn with_whatsapp(mut config: FileConfig, fake: &FakeWhatsApp, mode: Mode) -> FileConfig {
    let settings = PluginSettings {
        mode: Some(mode.as_str().into()),
        config: [
            ("access_token", whatsapp::ACCESS_TOKEN.to_string()),
            ("phone_number_id", whatsapp::PHONE_NUMBER_ID.to_string()),
            ("base_url", fake.url()),
            ("app_secret", whatsapp::APP_SECRET.to_string()),
            ("verify_token", whatsapp::VERIFY_TOKEN.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        allowed_hosts: vec!["127.0.0.1".into()],
        ..PluginSettings::default()
    };
    config.plugins.insert("whatsapp".into(), settings);
    match mode {
        Mode::Live => config.transfers.messenger_live = Some("whatsapp".into()),
        Mode::Test => config.transfers.messenger_test = Some("whatsapp".into()),
    }
    config
}

async fn transfer(app: &TestApp, key: &str, phone: &str, amount: u64) -> Value {
    let body = json!({ "amount": amount, "currency": "USD", "recipient": { "phone": phone } });
    let sent = app.post(key, "/v1/transfers", &new_key(), &body).await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    sent.body
}

/// The code in the newest template message WhatsApp delivered to `phone`,
/// once `count` have been.
async fn delivered_code(fake: &FakeWhatsApp, phone: &str, count: usize) -> String {
    let delivered = wait_for("the WhatsApp message", || async {
        let delivered = fake.delivered_to(phone);
        (delivered.len() >= count).then_some(delivered)
    })
    .await;
    let message = delivered.last().unwrap();
    assert_eq!((message.template.as_str(), message.language.as_str()), ("transfer_claim", "en"));
    message.parameters[1].clone()
}

async fn claim_as(app: &TestApp, key: &str, phone: &str, code: &str) -> Answer {
    app.post(key, "/v1/claims", &new_key(), &json!({ "phone": phone, "code": code })).await
}

async fn transfer_status(app: &TestApp, key: &str, id: &str) -> Value {
    app.get(key, &format!("/v1/transfers/{id}")).await.body
}

#[tokio::test]
async fn a_live_transfer_reaches_a_new_recipient_by_whatsapp_and_is_claimed() {
    let (mtn_fake, whatsapp_fake) = (FakeMtn::start().await, FakeWhatsApp::start().await);
    let settings = [
        ("base_url", mtn_fake.url()),
        ("subscription_key", mtn::SUBSCRIPTION_KEY.to_string()),
        ("api_user", mtn::API_USER.to_string()),
        ("api_key", mtn::API_KEY.to_string()),
        ("target_environment", mtn::TARGET_ENVIRONMENT.to_string()),
    ];
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = with_whatsapp(live_rail_config("mtn_momo", "mtn-momo", &settings, 200), &whatsapp_fake, Mode::Live);
    let (app, live_key) = spawn_app_with_live_key(config).await;

    let paid = app.pay(&live_key, Some(&new_key()), &momo(10_000, "USD", "+231770001234")).await;
    let payment_id = paid.body["id"].as_str().unwrap().to_string();
    wait_for("the live payment", || async {
        let payment = app.get(&live_key, &format!("/v1/payments/{payment_id}")).await.body;
        (payment["status"] == "completed").then_some(())
    })
    .await;

    let recipient = "+231880007777";
    let sent = transfer(&app, &live_key, recipient, 2_500).await;
    assert_eq!((sent["status"].as_str(), sent["livemode"].as_bool()), (Some("pending_claim"), Some(true)));
    let code = delivered_code(&whatsapp_fake, recipient, 1).await;
    let delivered = whatsapp_fake.delivered_to(recipient);
    assert_eq!(delivered[0].parameters[0], "USD 25.00");
    // A live message's text (it holds the code) is never stored.
    wait_for("the message recorded as sent", || async {
        (app.count("SELECT COUNT(*) FROM messages WHERE mode = 'live' AND status = 'sent' AND text IS NULL").await == 1)
            .then_some(())
    })
    .await;
    assert_eq!(app.get(&live_key, "/v1/test/messages").await.code(), "TEST_MODE_ONLY");
    // A test key cannot claim live money.
    assert_eq!(
        app.post(&app.key, "/v1/claims", &new_key(), &json!({ "phone": recipient, "code": code })).await.code(),
        "CLAIM_CODE_INVALID"
    );

    let claimed = app.post(&live_key, "/v1/claims", &new_key(), &json!({ "phone": recipient, "code": code })).await;
    assert_eq!(claimed.status, 200, "{:?}", claimed.body);
    assert_eq!(claimed.body["livemode"], true);
    assert_eq!(claimed.body["wallets"][0], json!({ "currency": "USD", "balance": 2_500 }));
    let id = sent["id"].as_str().unwrap();
    assert_eq!(transfer_status(&app, &live_key, id).await["status"], "completed");
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_whatsapp_outage_gets_the_recipient_a_new_code_once_it_is_over() {
    let fake = FakeWhatsApp::start().await;
    let mut config = with_whatsapp(FileConfig::default(), &fake, Mode::Test);
    config.transfers.resend_after_ms = 300;
    let app = spawn_app_with(config).await;
    let paid = app.pay(&app.key, Some(&new_key()), &momo(10_000, "USD", "+231770001234")).await;
    assert_eq!(paid.body["status"], "completed", "{:?}", paid.body);

    fake.fail_next(1);
    let recipient = "+231880008888";
    let id = transfer(&app, &app.key, recipient, 1_000).await["id"].as_str().unwrap().to_string();
    let code = delivered_code(&fake, recipient, 1).await;
    let sends = app.count(&format!("SELECT COUNT(*) FROM messages WHERE transfer_id = '{id}'")).await;
    let failed = app
        .count(&format!(
            "SELECT COUNT(*) FROM messages WHERE transfer_id = '{id}' AND failure_code = 'MESSENGER_UNAVAILABLE'"
        ))
        .await;
    assert_eq!((sends, failed), (2, 1), "one send met the outage, the sweep sent a new code");
    assert_eq!(transfer_status(&app, &app.key, &id).await["status"], "pending_claim", "the money still waits");

    let claimed = app.post(&app.key, "/v1/claims", &new_key(), &json!({ "phone": recipient, "code": code })).await;
    assert_eq!(claimed.status, 200, "{:?}", claimed.body);
    assert_eq!(app.wallet_balance(recipient, "USD").await, 1_000);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_number_whatsapp_cannot_deliver_to_gets_its_money_returned() {
    let fake = FakeWhatsApp::start().await;
    let app = spawn_app_with(with_whatsapp(FileConfig::default(), &fake, Mode::Test)).await;
    let paid = app.pay(&app.key, Some(&new_key()), &momo(10_000, "USD", "+231770001234")).await;
    assert_eq!(paid.body["status"], "completed", "{:?}", paid.body);
    let id = transfer(&app, &app.key, "+231880000000", 1_000).await["id"].as_str().unwrap().to_string();
    let returned = wait_for("the return", || async {
        Some(transfer_status(&app, &app.key, &id).await).filter(|t| t["status"] == "returned")
    })
    .await;
    assert_eq!(returned["return_reason"], "recipient_unreachable");
    assert_eq!(fake.posts(), 1, "a final refusal is not retried");
    app.verify().expect("the ledger balances");
}

/// A test-mode gateway with the WhatsApp messenger, and a collected balance.
async fn test_gateway(fake: &FakeWhatsApp) -> TestApp {
    let app = spawn_app_with(with_whatsapp(FileConfig::default(), fake, Mode::Test)).await;
    let paid = app.pay(&app.key, Some(&new_key()), &momo(10_000, "USD", "+231770001234")).await;
    assert_eq!(paid.body["status"], "completed", "{:?}", paid.body);
    app
}

/// The newest outbox entry for `phone` once `done` says so.
async fn message_once(app: &TestApp, phone: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_for("the message's status", || async {
        let list = app.get(&app.key, &format!("/v1/test/messages?phone=%2B{}", &phone[1..])).await;
        list.body["data"].as_array().unwrap().first().filter(|m| done(m)).cloned()
    })
    .await
}

#[tokio::test]
async fn whatsapp_checks_the_callback_url_with_the_verify_token() {
    let fake = FakeWhatsApp::start().await;
    let app = spawn_app_with(with_whatsapp(FileConfig::default(), &fake, Mode::Test)).await;
    let url = format!("{}/v1/callbacks/whatsapp", app.base);
    let check = |token: &str| {
        app.client.get(format!("{url}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444")).send()
    };
    let ok = check(whatsapp::VERIFY_TOKEN).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    assert_eq!(check("a-guess").await.unwrap().status(), 403);
    // A rail's callback URL takes no GET.
    let rail = app.client.get(format!("{}/v1/callbacks/simulator", app.base)).send().await.unwrap();
    assert_eq!(rail.status(), 405);
}

#[tokio::test]
async fn a_number_whatsapp_reports_undeliverable_later_gets_its_money_returned() {
    let fake = FakeWhatsApp::start().await;
    let app = test_gateway(&fake).await;
    fake.set_webhook(&format!("{}/v1/callbacks/whatsapp", app.base));
    let (lost, reached) = ("+231880005678", "+231880005679");
    fake.undeliverable_later(lost);

    let lost_id = transfer(&app, &app.key, lost, 1_000).await["id"].as_str().unwrap().to_string();
    let reached_id = transfer(&app, &app.key, reached, 1_000).await["id"].as_str().unwrap().to_string();
    let returned = wait_for("the return", || async {
        Some(transfer_status(&app, &app.key, &lost_id).await).filter(|t| t["status"] == "returned")
    })
    .await;
    assert_eq!(returned["return_reason"], "recipient_unreachable");
    let failed = message_once(&app, lost, |m| m["status"] == "failed").await;
    assert_eq!(failed["failure"]["code"], "RECIPIENT_UNREACHABLE", "{failed}");
    message_once(&app, reached, |m| m["status"] == "delivered").await;
    assert_eq!(transfer_status(&app, &app.key, &reached_id).await["status"], "pending_claim");
    assert!(fake.webhook_answers().iter().all(|s| *s == 200), "{:?}", fake.webhook_answers());
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_forged_status_notification_changes_nothing() {
    let fake = FakeWhatsApp::start().await;
    let app = test_gateway(&fake).await;
    let recipient = "+231880004567";
    let id = transfer(&app, &app.key, recipient, 1_000).await["id"].as_str().unwrap().to_string();
    let sent = message_once(&app, recipient, |m| m["status"] == "sent").await;
    let wamid = sent["provider_reference"].as_str().unwrap();
    let url = format!("{}/v1/callbacks/whatsapp", app.base);
    let to = &recipient[1..];

    let undeliverable = Some(whatsapp::UNDELIVERABLE);
    assert_eq!(fake.notify(&url, wamid, to, undeliverable, "not-the-app-secret").await, 400);
    assert_eq!(fake.notify(&url, "wamid.someone-elses", to, undeliverable, whatsapp::APP_SECRET).await, 200);
    assert_eq!(transfer_status(&app, &app.key, &id).await["status"], "pending_claim");
    assert_eq!(message_once(&app, recipient, |_| true).await["status"], "sent");

    // The same report, signed, is believed (so the refusal above was the signature's).
    assert_eq!(fake.notify(&url, wamid, to, undeliverable, whatsapp::APP_SECRET).await, 200);
    assert_eq!(transfer_status(&app, &app.key, &id).await["return_reason"], "recipient_unreachable");
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_message_whatsapp_could_not_deliver_for_now_is_replaced_by_a_new_code_that_keeps_the_guess_count() {
    let fake = FakeWhatsApp::start().await;
    let mut config = with_whatsapp(FileConfig::default(), &fake, Mode::Test);
    config.transfers.resend_after_ms = 300;
    config.codes.attempts_max = 3;
    let app = spawn_app_with(config).await;
    let paid = app.pay(&app.key, Some(&new_key()), &momo(10_000, "USD", "+231880001234")).await;
    assert_eq!(paid.body["status"], "completed", "{:?}", paid.body);
    let recipient = "+231880003456";
    let id = transfer(&app, &app.key, recipient, 1_000).await["id"].as_str().unwrap().to_string();
    let first_code = delivered_code(&fake, recipient, 1).await;
    let wamid = message_once(&app, recipient, |m| m["status"] == "sent").await["provider_reference"]
        .as_str()
        .unwrap()
        .to_string();

    // A guesser tries once.
    let (_, guesser) = app.create_merchant("Guessing Shop").await;
    let wrong = if first_code == "000001" { "000002" } else { "000001" };
    let guessed = claim_as(&app, &guesser, recipient, wrong).await;
    assert!(guessed.body["error"]["message"].as_str().unwrap().contains(" 2 more"), "{:?}", guessed.body);

    // WhatsApp then reports the message failed for a reason that may pass
    // (not 131026): the sweep sends a new code and the old one stops
    // working; the guesses made so far still count.
    let url = format!("{}/v1/callbacks/whatsapp", app.base);
    assert_eq!(fake.notify(&url, &wamid, &recipient[1..], Some(131_049), whatsapp::APP_SECRET).await, 200);
    let second_code = delivered_code(&fake, recipient, 2).await;
    assert_eq!(transfer_status(&app, &app.key, &id).await["status"], "pending_claim");
    let stale = if first_code == second_code { wrong } else { first_code.as_str() };
    let old = claim_as(&app, &app.key, recipient, stale).await;
    assert_eq!(old.code(), "CLAIM_CODE_INVALID", "the old code is replaced");
    assert!(old.body["error"]["message"].as_str().unwrap().contains(" 1 more"), "not reset: {:?}", old.body);

    let claimed = claim_as(&app, &app.key, recipient, &second_code).await;
    assert_eq!(claimed.status, 200, "{:?}", claimed.body);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn the_sandbox_messenger_can_never_serve_live_mode() {
    let dir = tempfile::tempdir().unwrap();
    let start = |messenger: &str, db: &str| {
        let mut file = FileConfig::default();
        file.transfers.messenger_live = Some(messenger.to_string());
        soxara::app::start(soxara::app::Config {
            database: dir.path().join(db),
            listen: "127.0.0.1:0".parse().unwrap(),
            plugin_dir: soxara_tests::plugin_dir(),
            file,
            clock: Default::default(),
        })
    };
    let error = format!("{:#}", start("messaging-sandbox", "a.db").await.err().expect("the start is refused"));
    assert!(error.contains("never reach live customers"), "{error}");
    let error = format!("{:#}", start("whatsap", "b.db").await.err().expect("the start is refused"));
    assert!(error.contains("\"whatsap\"") && error.contains("no such messenger plugin"), "{error}");
}
