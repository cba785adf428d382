//! Test a rail as the gateway runs it, without the gateway.
//!
//! [`TestRail`] loads a built rail component into the gateway's own plugin
//! runtime (same linker, limits and answer checks) with a minimal host
//! around it: the operator config you give, a clock you set, log lines kept
//! for assertions, and HTTP answered from a script instead of the network.
//!
//! ```no_run
//! use soxara_testkit::{Reply, TestRail, mobile_money};
//!
//! let rail = TestRail::builder("target/rails/rail-template.wasm")
//!     .config("base_url", "https://api.example-pay.test")
//!     .config("api_key", "ek_test_1")
//!     .allow_host("api.example-pay.test")
//!     .load();
//! rail.expect("POST", "https://api.example-pay.test/v1/charges",
//!     Reply::json(201, serde_json::json!({"id": "ch_1", "status": "succeeded"})));
//! let outcome = rail.collect(&mobile_money("pay_1", 1250, "USD", "+231770001234")).unwrap();
//! assert_eq!(outcome.status, soxara_testkit::TransactionStatus::Completed);
//! assert_eq!(rail.requests()[0].header("Idempotency-Key"), Some("pay_1"));
//! rail.assert_script_done();
//! ```
//!
//! A request the script does not expect (another method or URL, or one too
//! many) gets a transport error inside the plugin, and the test fails at
//! [`TestRail::assert_script_done`], or when the `TestRail` is dropped (which
//! also fails on an expected request that was never sent).

mod script;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use soxara::config::PluginSettings;
use soxara::metrics::Metrics;
use soxara::plugins::{LoadedRail, PluginContext, PluginError, PluginLimits, Runtime};

pub use script::{Reply, SentRequest};
pub use soxara::plugins::{
    Callback, CallbackEvent, CallbackOutcome, CollectRequest, DisputeNotice, Failure, HttpError, LogLevel, Money,
    PaymentMethod, PayoutRequest, RailInfo, RailOutcome, RefundRequest, SupportedMethod, TransactionStatus,
};

/// Where `cargo xtask build-plugin <dir>` puts the component of the crate
/// named `crate_name`, found from the calling crate's directory upwards
/// (the repository's `target/rails/`), or under `$SOXARA_RAILS_DIR`.
///
/// Called from the rail crate's own tests (`cargo test -p <rail>` runs them
/// in its directory), it refuses a component older than the crate's sources,
/// so a test never passes against a stale build.
pub fn built_rail(crate_name: &str) -> PathBuf {
    let file = format!("{crate_name}.wasm");
    let start = std::env::current_dir().unwrap_or_default();
    let path = match std::env::var_os("SOXARA_RAILS_DIR") {
        Some(dir) => PathBuf::from(dir).join(&file),
        None => {
            let found = start.ancestors().map(|dir| dir.join("target/rails").join(&file)).find(|path| path.exists());
            found.unwrap_or_else(|| panic!("{file} is not built: run `cargo xtask build-plugin <its directory>` first"))
        }
    };
    if start.join("Cargo.toml").is_file() && start.file_name().is_some_and(|name| name == crate_name) {
        let built = modified(&path);
        if let Some(newer) = newest_source(&start).filter(|(at, _)| Some(*at) > built) {
            panic!(
                "{} is older than {}: run `cargo xtask build-plugin {}` first",
                path.display(),
                newer.1.display(),
                start.display()
            );
        }
    }
    path
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The most recently changed file of a crate's `src/` and `Cargo.toml`.
fn newest_source(crate_dir: &Path) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut pending = vec![crate_dir.join("src"), crate_dir.join("Cargo.toml")];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            let entries = std::fs::read_dir(&path).into_iter().flatten().flatten();
            pending.extend(entries.map(|entry| entry.path()));
        } else if let Some(at) = modified(&path)
            && newest.as_ref().is_none_or(|(best, _)| at > *best)
        {
            newest = Some((at, path));
        }
    }
    newest
}

/// How a [`TestRail`] is set up.
#[derive(Debug, Clone)]
pub struct Builder {
    path: PathBuf,
    name: String,
    settings: PluginSettings,
    limits: PluginLimits,
    now_ms: u64,
}

impl Builder {
    /// An operator config value (`[plugins.<name>.config]`).
    pub fn config(mut self, key: &str, value: &str) -> Builder {
        self.settings.config.insert(key.to_string(), value.to_string());
        self
    }

    /// A host the rail may reach (`allowed_hosts`); requests elsewhere are
    /// refused inside the plugin with `denied`, as in the gateway.
    pub fn allow_host(mut self, host: &str) -> Builder {
        self.settings.allowed_hosts.push(host.to_string());
        self
    }

    /// A host the rail may redirect customers to (`redirect_hosts`).
    pub fn redirect_host(mut self, host: &str) -> Builder {
        self.settings.redirect_hosts.push(host.to_string());
        self
    }

    /// The per-call limits (default: the gateway's defaults).
    pub fn limits(mut self, limits: PluginLimits) -> Builder {
        self.limits = limits;
        self
    }

    /// The clock's starting time, in ms since the Unix epoch.
    pub fn now_ms(mut self, now_ms: u64) -> Builder {
        self.now_ms = now_ms;
        self
    }

    /// Compiles the component, checks it against the rail world and asks it
    /// to describe itself. Panics with the reason if any of that fails.
    pub fn load(self) -> TestRail {
        self.try_load().unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// As [`Builder::load`], returning the error (to test that a component
    /// is refused).
    pub fn try_load(self) -> Result<TestRail, String> {
        let runtime = Runtime::new(self.limits, self.limits.memory_bytes_max, Arc::new(Metrics::default()), None)
            .map_err(|e| format!("starting the plugin runtime: {e:#}"))?;
        let outside = Arc::new(script::ScriptedOutside::new(self.now_ms));
        let mut context = PluginContext::new(self.name, self.settings);
        context.outside = outside.clone();
        let rail = runtime.load_rail(&self.path, context).map_err(|e| format!("{e:#}"))?;
        Ok(TestRail { rail, outside, _runtime: runtime })
    }
}

/// A loaded rail with a scripted outside world.
pub struct TestRail {
    rail: Arc<LoadedRail>,
    outside: Arc<script::ScriptedOutside>,
    // Dropped last: it owns the engine the rail runs on.
    _runtime: Runtime,
}

impl TestRail {
    /// Set up the component at `path`; its plugin name is the file stem, as
    /// in the gateway.
    pub fn builder(path: impl AsRef<Path>) -> Builder {
        let path = path.as_ref().to_path_buf();
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Builder { path, name, settings: PluginSettings::default(), limits: PluginLimits::default(), now_ms: 0 }
    }

    /// What the rail said about itself when it was loaded.
    pub fn info(&self) -> RailInfo {
        self.rail.info.clone()
    }

    /// The next request must be `method` to `url` (exactly, query included);
    /// it gets `reply`. Expectations are met in order.
    pub fn expect(&self, method: &str, url: &str, reply: Reply) {
        self.outside.expect(method, url, reply);
    }

    /// Every request the rail sent, in order (expected or not).
    pub fn requests(&self) -> Vec<SentRequest> {
        self.outside.requests()
    }

    /// Every log line, in order.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.outside.logs()
    }

    /// Moves the rail's clock.
    pub fn set_now_ms(&self, now_ms: u64) {
        self.outside.set_now_ms(now_ms);
    }

    /// Panics if a request was not expected, or an expectation is unmet.
    pub fn assert_script_done(&self) {
        if let Err(problem) = self.outside.check_done() {
            panic!("{problem}");
        }
    }

    /// Panics if `secret` appears in a log line or in any answer the rail
    /// gave so far (failure messages, references, redirect URLs).
    pub fn assert_never_revealed(&self, secret: &str) {
        for (level, line) in self.logs() {
            assert!(!line.contains(secret), "the rail logged a secret ({level:?}): {line}");
        }
        for answer in self.outside.answers() {
            assert!(!answer.contains(secret), "the rail answered with a secret: {answer}");
        }
    }

    pub fn collect(&self, request: &CollectRequest) -> Result<RailOutcome, Failure> {
        self.answered(self.rail.collect(request), "collect")
    }

    pub fn status(&self, request: &CollectRequest, provider_reference: Option<&str>) -> Result<RailOutcome, Failure> {
        self.answered(self.rail.status(request, provider_reference), "status")
    }

    pub fn refund(&self, request: &RefundRequest) -> Result<RailOutcome, Failure> {
        self.answered(self.rail.refund(request), "refund")
    }

    pub fn refund_status(
        &self,
        request: &RefundRequest,
        provider_reference: Option<&str>,
    ) -> Result<RailOutcome, Failure> {
        self.answered(self.rail.refund_status(request, provider_reference), "refund-status")
    }

    pub fn payout(&self, request: &PayoutRequest) -> Result<RailOutcome, Failure> {
        self.answered(self.rail.payout(request), "payout")
    }

    pub fn payout_status(
        &self,
        request: &PayoutRequest,
        provider_reference: Option<&str>,
    ) -> Result<RailOutcome, Failure> {
        self.answered(self.rail.payout_status(request, provider_reference), "payout-status")
    }

    pub fn handle_callback(&self, callback: &Callback) -> Result<CallbackEvent, Failure> {
        self.answered(self.rail.handle_callback(callback), "handle-callback")
    }

    /// As [`TestRail::collect`], keeping a trap, a deadline or malformed
    /// output as the error the gateway would see (to test limits).
    pub fn try_collect(&self, request: &CollectRequest) -> Result<Result<RailOutcome, Failure>, PluginError> {
        self.rail.collect(request)
    }

    fn answered<T: std::fmt::Debug>(
        &self,
        answer: Result<Result<T, Failure>, PluginError>,
        export: &str,
    ) -> Result<T, Failure> {
        match answer {
            Ok(answer) => {
                self.outside.record_answer(format!("{answer:?}"));
                answer
            }
            Err(e) => panic!("`{export}` gave no answer the gateway would accept: {e}"),
        }
    }
}

impl Drop for TestRail {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        if let Err(problem) = self.outside.check_done() {
            panic!("{problem}");
        }
    }
}

/// A mobile money collect request (MTN MoMo method) from `phone` (E.164).
pub fn mobile_money(payment_id: &str, amount: u64, currency: &str, phone: &str) -> CollectRequest {
    CollectRequest {
        payment_id: payment_id.to_string(),
        money: Money { amount, currency: currency.to_string() },
        method: PaymentMethod::MtnMomo,
        customer_phone: Some(phone.to_string()),
        card: None,
        description: None,
        created_at_ms: 0,
    }
}

/// A card collect request with a provider token (`pm_…`) or a test number.
pub fn card(payment_id: &str, amount: u64, currency: &str, card: &str) -> CollectRequest {
    CollectRequest {
        method: PaymentMethod::Card,
        customer_phone: None,
        card: Some(card.to_string()),
        ..mobile_money(payment_id, amount, currency, "")
    }
}

/// A provider callback as the gateway receives it.
pub fn callback(headers: &[(&str, &str)], query: &str, body: &[u8]) -> Callback {
    Callback {
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        query: query.to_string(),
        body: body.to_vec(),
    }
}
