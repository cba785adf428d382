//! Test helpers: boot the real gateway on a loopback port with a temporary
//! SQLite file and the real built plugins, and talk to it as a merchant.

pub mod fakes;

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use soxara::app::{Config, RunningApp};
use soxara::config::FileConfig;
use soxara::domain::keys::KeyKind;
use soxara::values::clock::Clock;
use soxara::values::mode::Mode;
use tempfile::TempDir;

/// Where `cargo xtask build-plugins` puts the components.
pub fn plugin_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins");
    assert!(
        dir.join("simulator.wasm").is_file(),
        "no built plugins in {}: run `cargo xtask build-plugins` (or `cargo xtask test`)",
        dir.display()
    );
    dir
}

/// A compiled-code cache shared by the tests that load Python components
/// (18 MB each, seconds of CPU to compile): compiled once, then read by every
/// other gateway, so that they do not starve the rest of the suite.
pub fn shared_plugin_cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugin-cache")
}

/// A misbehaving plugin built for tests (`plugins/testing/`).
pub fn test_plugin(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../target/test-plugins/{name}.wasm"));
    assert!(path.is_file(), "{} is missing: run `cargo xtask build-plugins`", path.display());
    path
}

/// A running gateway with a fresh database and its sandbox key.
pub struct TestApp {
    pub base: String,
    /// The sandbox merchant's test secret key, as printed at first start.
    pub key: String,
    pub merchant_id: String,
    pub client: reqwest::Client,
    pub database: PathBuf,
    pub config: FileConfig,
    /// The gateway's clock: tests move it forward instead of sleeping.
    pub clock: Clock,
    plugins: PathBuf,
    app: Option<RunningApp>,
    _dir: TempDir,
}

/// What a request got back.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The error code, for error answers.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// The gateway with the built-in (sandbox) settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(FileConfig::default()).await
}

/// The gateway with the given operator settings.
pub async fn spawn_app_with(config: FileConfig) -> TestApp {
    spawn_app_with_plugins(config, &[]).await
}

/// The gateway with the bundled plugins plus `extra` components. Per-key
/// rate limits are lifted (a test makes many calls with one key); see
/// [`spawn_app_rate_limited`].
pub async fn spawn_app_with_plugins(mut config: FileConfig, extra: &[PathBuf]) -> TestApp {
    config.rate_limits = soxara::config::RateLimitSettings::off();
    spawn_app_as_configured(local_operator(config), extra).await
}

/// The gateway with `config`'s rate limits kept.
pub async fn spawn_app_rate_limited(config: FileConfig) -> TestApp {
    spawn_app_as_configured(local_operator(config), &[]).await
}

/// The gateway with exactly `config`: nothing trusted that it does not
/// trust (for tests of the defaults).
pub async fn spawn_app_exactly(config: FileConfig) -> TestApp {
    spawn_app_as_configured(config, &[]).await
}

/// The tests stand where an operator's TLS sidecar and metrics agent would:
/// on loopback. So loopback is made a secure peer (live keys work over the
/// tests' plain HTTP) that may read `/metrics`, as an operator would
/// configure it; the gateway's own default trusts nobody.
fn local_operator(mut config: FileConfig) -> FileConfig {
    for loopback in ["127.0.0.1", "::1"] {
        config.secure_peers.push(loopback.into());
        config.metrics_from.push(loopback.into());
    }
    config
}

async fn spawn_app_as_configured(config: FileConfig, extra: &[PathBuf]) -> TestApp {
    // The gateway's logs, shown for failing tests only (RUST_LOG to filter).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,soxara=info".into()),
        )
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = dir.path().join("gateway.db");
    let plugins = if extra.is_empty() {
        plugin_dir()
    } else {
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).expect("a plugin directory");
        let bundled = std::fs::read_dir(plugin_dir()).expect("built plugins").map(|e| e.expect("an entry").path());
        for component in bundled.filter(|p| p.extension().is_some_and(|e| e == "wasm")).chain(extra.iter().cloned()) {
            std::fs::copy(&component, plugins.join(component.file_name().expect("a file name"))).expect("copied");
        }
        plugins
    };
    let clock = Clock::adjustable();
    let app = start(&database, &config, &plugins, &clock).await;
    let (merchant_id, key) = app.sandbox.clone().expect("a fresh database creates the sandbox merchant");
    TestApp {
        base: format!("http://{}", app.addr),
        key,
        merchant_id,
        client: reqwest::Client::new(),
        database,
        config,
        clock,
        plugins,
        app: Some(app),
        _dir: dir,
    }
}

async fn start(database: &Path, config: &FileConfig, plugins: &Path, clock: &Clock) -> RunningApp {
    let mut config = config.clone();
    config.admin.listen = "127.0.0.1:0".parse().expect("a loopback address");
    soxara::app::start(Config {
        database: database.to_path_buf(),
        listen: "127.0.0.1:0".parse().expect("a loopback address"),
        plugin_dir: plugins.to_path_buf(),
        file: config,
        clock: clock.clone(),
    })
    .await
    .expect("the gateway starts")
}

impl TestApp {
    pub fn state(&self) -> &soxara::http::AppState {
        &self.app.as_ref().expect("the app is running").state
    }

    /// Stops the gateway and starts it again on the same database.
    pub async fn restart(&mut self) {
        self.stop_gateway().await;
        self.start_gateway().await;
    }

    /// Stops the gateway (the database stays).
    pub async fn stop_gateway(&mut self) {
        self.app.take().expect("the app is running").stop().await.expect("a clean stop");
    }

    /// Starts the gateway again on the same database.
    pub async fn start_gateway(&mut self) {
        let app = start(&self.database, &self.config, &self.plugins, &self.clock).await;
        assert!(app.sandbox.is_none(), "a restart must not create another sandbox merchant");
        self.base = format!("http://{}", app.addr);
        self.app = Some(app);
    }

    /// Moves the gateway's clock `ms` forward: what a test would otherwise
    /// wait for in real time (a settlement hold, a rate limit's refill).
    pub fn advance_clock(&self, ms: u64) {
        self.clock.advance(i64::try_from(ms).expect("a test moves the clock by less than i64::MAX ms"));
    }

    /// Rounds the background worker `name` has finished (`status_checks`,
    /// `settlements`, `transfers`, `webhooks`).
    pub fn worker_rounds(&self, name: &str) -> u64 {
        self.state().metrics.worker_rounds(name)
    }

    /// Moves the clock `ms` forward and waits until the worker `name` has
    /// finished a round at the new time.
    pub async fn advance_past_worker(&self, name: &str, ms: u64) {
        let before = self.worker_rounds(name);
        self.advance_clock(ms);
        wait_for(&format!("a round of the {name} worker"), || async {
            (self.worker_rounds(name) > before).then_some(())
        })
        .await;
    }

    /// The admin API's base URL.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.app.as_ref().expect("the app is running").admin_addr)
    }

    /// An operator's call to the admin API.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<serde_json::Value>) -> Answer {
        let app = self.app.as_ref().expect("the app is running");
        let mut request =
            self.client.request(method, format!("http://{}{path}", app.admin_addr)).bearer_auth(&app.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.expect("the request is sent")).await
    }

    /// An operator's `GET` of a file from the admin API: its status and bytes.
    pub async fn admin_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let app = self.app.as_ref().expect("the app is running");
        let response = self
            .client
            .get(format!("http://{}{path}", app.admin_addr))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .expect("the request is sent");
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("the body is read").to_vec())
    }

    /// Creates another key (an operator action) and returns it. For a live
    /// key the operator first verifies the account for live use (KYC Tier 3,
    /// KYB approved), since every request checks it.
    pub async fn create_key(&self, merchant_id: &str, mode: Mode, kind: KeyKind) -> String {
        if mode == Mode::Live {
            let verified = serde_json::json!({ "kyc_tier": 3, "kyb_status": "approved" });
            let path = format!("/admin/merchants/{merchant_id}");
            let answer = self.admin(reqwest::Method::PATCH, &path, Some(verified)).await;
            assert_eq!(answer.status, 200, "{:?}", answer.body);
        }
        let merchant_id = merchant_id.to_string();
        self.state()
            .ops
            .store
            .write(move |conn| soxara::domain::keys::create_key(conn, &merchant_id, mode, kind, 0))
            .await
            .expect("key created")
    }

    /// Creates another merchant with a test secret key; returns (id, key).
    pub async fn create_merchant(&self, name: &str) -> (String, String) {
        let name = name.to_string();
        let id = self
            .state()
            .ops
            .store
            .write(move |conn| {
                let tier = soxara::domain::accounts::SANDBOX_KYC_TIER;
                soxara::domain::accounts::create(conn, &name, tier, soxara::values::status::KybStatus::None, 0)
            })
            .await
            .expect("merchant");
        let key = self.create_key(&id, Mode::Test, KeyKind::Secret).await;
        (id, key)
    }

    /// `POST /v1/payments` with the given key and idempotency key.
    pub async fn pay(&self, key: &str, idempotency_key: Option<&str>, body: &str) -> Answer {
        let mut request = self
            .client
            .post(format!("{}/v1/payments", self.base))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(idem) = idempotency_key {
            request = request.header("X-Idempotency-Key", idem);
        }
        answer(request.send().await.expect("the request is sent")).await
    }

    /// An idempotent POST of a JSON body to `path`.
    pub async fn post(&self, key: &str, path: &str, idempotency_key: &str, body: &serde_json::Value) -> Answer {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("X-Idempotency-Key", idempotency_key)
            .json(body);
        answer(request.send().await.expect("the request is sent")).await
    }

    /// Adds sandbox money to a customer's test wallet.
    pub async fn top_up(&self, phone: &str, amount: i64, currency: &str) -> Answer {
        let body = serde_json::json!({ "customer": { "phone": phone }, "amount": amount, "currency": currency });
        self.post(&self.key, "/v1/wallets/top-ups", &new_key(), &body).await
    }

    /// A customer's wallet balance in one currency.
    /// A customer's balance in one currency, as this gateway's sandbox
    /// merchant sees it (asking the customer for wallet access first if it
    /// has none).
    pub async fn wallet_balance(&self, phone: &str, currency: &str) -> i64 {
        let path = format!("/v1/customers/{phone}/wallets");
        let mut answer = self.get(&self.key, &path).await;
        if answer.status == 404 {
            self.grant_wallet_access(&self.key, phone).await;
            answer = self.get(&self.key, &path).await;
        }
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        let wallets = answer.body["data"].as_array().expect("a list of wallets");
        let wallet = wallets.iter().find(|w| w["currency"] == currency).expect("a wallet per currency");
        wallet["balance"].as_i64().expect("an integer balance")
    }

    /// Asks `phone` for wallet access on behalf of `key`'s merchant and
    /// approves it with the code the sandbox messenger sent.
    pub async fn grant_wallet_access(&self, key: &str, phone: &str) {
        let asked = self.post(key, &format!("/v1/customers/{phone}/wallet-access"), &new_key(), &json!({})).await;
        assert_eq!(asked.status, 201, "{:?}", asked.body);
        let approved = self.approve(key, asked.body["id"].as_str().expect("an approval id")).await;
        assert_eq!(approved.body["status"], "approved", "{:?}", approved.body);
    }

    /// The code the sandbox messenger sent for approval `approval_id`
    /// (the test messages of `key`'s merchant).
    pub async fn approval_code(&self, key: &str, approval_id: &str) -> String {
        let messages = self.get(key, "/v1/test/messages").await;
        let message = messages.body["data"]
            .as_array()
            .expect("a list of messages")
            .iter()
            .find(|m| m["approval"] == approval_id)
            .unwrap_or_else(|| panic!("no message for approval {approval_id}: {:?}", messages.body))
            .clone();
        let text = message["text"].as_str().expect("test messages keep their text");
        text.split_whitespace()
            .map(|word| word.trim_matches(|c: char| !c.is_ascii_digit()))
            .find(|word| word.len() == 6 && word.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or_else(|| panic!("no code in {text:?}"))
            .to_string()
    }

    /// Approves `approval_id` with the code its customer was sent.
    pub async fn approve(&self, key: &str, approval_id: &str) -> Answer {
        let code = self.approval_code(key, approval_id).await;
        self.post(key, &format!("/v1/approvals/{approval_id}/approve"), &new_key(), &json!({ "code": code })).await
    }

    /// A payment or swap answer's approval, approved by its customer;
    /// returns the operation as it then is (`path`: where to read it).
    pub async fn approve_and_get(&self, key: &str, made: &Answer, path: &str) -> Answer {
        assert_eq!(made.body["next_action"]["type"], "customer_approval", "{:?}", made.body);
        let approval = made.body["next_action"]["approval"].as_str().expect("an approval id").to_string();
        let approved = self.approve(key, &approval).await;
        assert_eq!(approved.body["status"], "approved", "{:?}", approved.body);
        self.get(key, &format!("{path}/{}", made.body["id"].as_str().expect("an id"))).await
    }

    /// `soxara verify` on this gateway's database.
    pub fn verify(&self) -> Result<soxara::ledger::LedgerSummary, String> {
        let conn = soxara::store::open_read_only(&self.database).expect("the database opens");
        soxara::operations::verify(&conn)
    }

    pub async fn delete(&self, key: &str, path: &str) -> Answer {
        answer(
            self.client
                .delete(format!("{}{path}", self.base))
                .bearer_auth(key)
                .send()
                .await
                .expect("the gateway answers"),
        )
        .await
    }

    pub async fn get(&self, key: &str, path: &str) -> Answer {
        let request = self.client.get(format!("{}{path}", self.base)).bearer_auth(key);
        answer(request.send().await.expect("the request is sent")).await
    }

    /// Runs a read-only SQL query returning one integer.
    pub async fn count(&self, sql: &str) -> i64 {
        let sql = sql.to_string();
        self.state()
            .ops
            .store
            .read(move |conn| Ok(conn.query_row(&sql, [], |row| row.get::<_, Option<i64>>(0))?.unwrap_or(0)))
            .await
            .expect("query runs")
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, headers, body }
}

/// Polls `check` until it returns `Some`, for at most `WAIT_FOR_MS_MAX`;
/// panics with `what` if it never does. For things that happen in the
/// background (webhook deliveries): it waits for behaviour, it does not time it.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(WAIT_FOR_MS_MAX);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Generous: a slow CI machine must not fail a correct gateway.
pub const WAIT_FOR_MS_MAX: u64 = 30_000;

/// A fresh idempotency key.
pub fn new_key() -> String {
    soxara::values::ids::new_id("idem")
}

/// A mobile-money payment body.
pub fn momo(amount: u64, currency: &str, phone: &str) -> String {
    format!(r#"{{"amount":{amount},"currency":"{currency}","method":"mtn_momo","customer":{{"phone":"{phone}"}}}}"#)
}

/// Operator settings that bind `plugin` for live `method` with its `config`,
/// let it reach fakes on loopback, give it 10 s per call (a token and a
/// request may each take the host's 4 s HTTP deadline, as the operator docs
/// advise), and check payments left processing every `check_ms`.
pub fn live_rail_config(method: &str, plugin: &str, config: &[(&str, &str)], check_ms: u64) -> FileConfig {
    let mut file = FileConfig::default();
    file.routes.push(soxara::config::RouteSetting {
        mode: "live".into(),
        method: method.into(),
        plugin: plugin.into(),
    });
    let settings = soxara::config::PluginSettings {
        mode: Some("live".into()),
        config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        allowed_hosts: vec!["127.0.0.1".into()],
        limits: soxara::config::PluginLimitOverrides { call_ms_max: Some(10_000), ..Default::default() },
        ..Default::default()
    };
    file.plugins.insert(plugin.into(), settings);
    file.status_checks.delays_ms = vec![check_ms];
    file.status_checks.poll_interval_ms = 20;
    file
}

/// The gateway with `config`, and a live secret key for its merchant.
pub async fn spawn_app_with_live_key(config: FileConfig) -> (TestApp, String) {
    let app = spawn_app_with(config).await;
    let live_key = app.create_key(&app.merchant_id, Mode::Live, KeyKind::Secret).await;
    (app, live_key)
}
