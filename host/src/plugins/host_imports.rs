//! What a plugin may ask of the host: log, clock, its own config, and HTTP to
//! the hosts on its allow-list. Each import checks its limits here; nothing
//! else is reachable from inside a plugin. What lies outside the process
//! (the network, the log, the clock) is reached through [`Outside`], which
//! the gateway sets to the real thing and the testkit to a script.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use wasmtime::StoreLimits;

use super::bindings::rail::soxara::gateway::{cache, clock, config, http, log, types};

/// The plugin cache's limits (see `cache` in `wit/types.wit`).
pub const CACHE_KEY_BYTES_MAX: usize = 128;
pub const CACHE_VALUE_BYTES_MAX: usize = 16 << 10;
pub const CACHE_ENTRIES_MAX: usize = 64;
pub const CACHE_TTL_MS_MAX: u64 = 24 * 3_600_000;

/// Random bytes one call may ask for.
pub const RANDOM_BYTES_MAX: u32 = 1_024;
/// Outbound HTTP: time for one request, and the largest response body read.
pub const HTTP_REQUEST_MS_MAX: u64 = 4_000;
pub const HTTP_RESPONSE_BYTES_MAX: u64 = 1 << 20;

/// Per-plugin settings from the operator, shared by all its calls.
#[derive(Debug)]
pub struct PluginContext {
    pub name: String,
    /// The one mode it serves (`config::PluginSettings::mode`).
    pub mode: crate::values::mode::Mode,
    pub config: BTreeMap<String, String>,
    /// Host names (no scheme or port) the plugin may reach over HTTP.
    pub allowed_hosts: Vec<String>,
    /// Host names a rail may redirect customers to (https only).
    pub redirect_hosts: Vec<String>,
    /// Where this plugin's limits differ from the runtime's defaults.
    pub limit_overrides: crate::config::PluginLimitOverrides,
    /// This plugin's cache: key → (value, expiry).
    pub cache: std::sync::Mutex<BTreeMap<String, (Vec<u8>, std::time::Instant)>>,
    /// Where its HTTP requests, log lines and clock readings go.
    pub outside: Arc<dyn Outside>,
}

impl std::fmt::Debug for dyn Outside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outside")
    }
}

/// The world outside the process as a plugin reaches it, after the host has
/// checked its limits (a request reaches `http` only for an allowed host).
pub trait Outside: Send + Sync {
    fn http(&self, plugin: &str, request: http::Request) -> Result<http::Response, http::HttpError>;
    fn log(&self, plugin: &str, level: log::Level, message: &str);
    fn now_ms(&self) -> u64;
}

/// The real outside: the network (with the host's deadline and size
/// limits), `tracing`, and the gateway's clock.
#[derive(Debug, Default, Clone)]
pub struct RealOutside {
    pub clock: crate::values::clock::Clock,
}

impl Outside for RealOutside {
    fn http(&self, plugin: &str, request: http::Request) -> Result<http::Response, http::HttpError> {
        // The host only: a URL's path or query may carry a credential.
        let host = request.url.split("://").nth(1).and_then(|rest| rest.split(['/', '?', '#']).next()).unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or(host);
        tracing::debug!(plugin, %host, method = %request.method, "plugin HTTP request");
        send_http(request)
    }

    fn log(&self, plugin: &str, level: log::Level, message: &str) {
        match level {
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.now_ms()).unwrap_or(0)
    }
}

impl PluginContext {
    /// The context of the plugin named `name` (its file stem) under the operator's settings.
    pub fn new(name: String, setting: crate::config::PluginSettings) -> PluginContext {
        PluginContext {
            name,
            mode: setting.serves(),
            config: setting.config,
            allowed_hosts: setting.allowed_hosts,
            redirect_hosts: setting.redirect_hosts,
            limit_overrides: setting.limits,
            cache: std::sync::Mutex::default(),
            outside: Arc::new(RealOutside::default()),
        }
    }

    /// The same, reading the time from `clock` (the gateway's).
    pub fn with_clock(mut self, clock: crate::values::clock::Clock) -> PluginContext {
        self.outside = Arc::new(RealOutside { clock });
        self
    }
}

/// The state of one plugin call's store.
pub struct HostState {
    pub plugin: Arc<PluginContext>,
    pub limits: StoreLimits,
    /// Made on a component's first WASI call (Rust plugins make none).
    pub wasi: Option<super::wasi::DenyAllWasi>,
}

impl wasmtime_wasi::WasiView for HostState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        let wasi = self.wasi.get_or_insert_with(super::wasi::DenyAllWasi::new);
        wasmtime_wasi::WasiCtxView { ctx: &mut wasi.ctx, table: &mut wasi.table }
    }
}

impl types::Host for HostState {}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        self.plugin.outside.log(&self.plugin.name, level, &message);
    }
}

impl clock::Host for HostState {
    fn now_ms(&mut self) -> u64 {
        self.plugin.outside.now_ms()
    }

    fn random_bytes(&mut self, len: u32) -> Vec<u8> {
        let mut bytes = vec![0; len.min(RANDOM_BYTES_MAX) as usize];
        rand::rng().fill_bytes(&mut bytes);
        bytes
    }
}

impl config::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.plugin.config.get(&key).cloned()
    }
}

impl cache::Host for HostState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        let entries = self.plugin.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.get(&key).filter(|(_, expires)| *expires > std::time::Instant::now()).map(|(value, _)| value.clone())
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: u64) {
        if key.len() > CACHE_KEY_BYTES_MAX || value.len() > CACHE_VALUE_BYTES_MAX {
            return;
        }
        let now = std::time::Instant::now();
        let expires = now + Duration::from_millis(ttl_ms.min(CACHE_TTL_MS_MAX));
        let mut entries = self.plugin.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|_, (_, at)| *at > now);
        if entries.len() >= CACHE_ENTRIES_MAX && !entries.contains_key(&key) {
            return;
        }
        entries.insert(key, (value, expires));
    }

    fn remove(&mut self, key: String) {
        self.plugin.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&key);
    }
}

impl http::Host for HostState {
    fn send(&mut self, request: http::Request) -> Result<http::Response, http::HttpError> {
        allowed_host(&self.plugin.allowed_hosts, &request.url).map_err(http::HttpError::Denied)?;
        self.plugin.outside.http(&self.plugin.name, request)
    }
}

/// Checks the URL's scheme and host against the allow-list and returns the host.
pub fn allowed_host(allowed: &[String], url: &str) -> Result<String, String> {
    let uri: ureq::http::Uri = url.parse().map_err(|_| format!("not a valid URL: {url}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("only http and https URLs are allowed: {url}")),
    }
    let host = uri.host().ok_or_else(|| format!("the URL has no host: {url}"))?.to_ascii_lowercase();
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(&host)) {
        Ok(host)
    } else {
        Err(format!("host {host} is not in this plugin's allow-list"))
    }
}

fn send_http(request: http::Request) -> Result<http::Response, http::HttpError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(HTTP_REQUEST_MS_MAX)))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut builder = ureq::http::Request::builder().method(request.method.as_str()).uri(&request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let outbound = builder.body(request.body).map_err(|e| http::HttpError::Transport(e.to_string()))?;
    let response = agent.run(outbound).map_err(|e| match e {
        ureq::Error::Timeout(_) => http::HttpError::Timeout,
        other => http::HttpError::Transport(other.to_string()),
    })?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let mut body = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(HTTP_RESPONSE_BYTES_MAX + 1)
        .read_to_end(&mut body)
        .map_err(|e| http::HttpError::Transport(e.to_string()))?;
    if body.len() as u64 > HTTP_RESPONSE_BYTES_MAX {
        return Err(http::HttpError::Transport(format!("response body exceeds {HTTP_RESPONSE_BYTES_MAX} bytes")));
    }
    Ok(http::Response { status, headers, body })
}

#[cfg(test)]
mod tests {
    use super::cache::Host as _;
    use super::*;

    fn host_state() -> HostState {
        HostState {
            plugin: Arc::new(PluginContext::new(String::new(), Default::default())),
            limits: wasmtime::StoreLimitsBuilder::new().build(),
            wasi: None,
        }
    }

    #[test]
    fn the_cache_keeps_values_within_its_limits_and_for_their_time() {
        let mut state = host_state();
        state.set("token".into(), b"abc".to_vec(), 60_000);
        assert_eq!(state.get("token".into()), Some(b"abc".to_vec()));
        state.remove("token".into());
        assert_eq!(state.get("token".into()), None);
        state.set("gone".into(), b"x".to_vec(), 0);
        assert_eq!(state.get("gone".into()), None, "expired at once");
        state.set("big".into(), vec![0; CACHE_VALUE_BYTES_MAX + 1], 60_000);
        assert_eq!(state.get("big".into()), None, "too large: ignored");
        for i in 0..CACHE_ENTRIES_MAX + 5 {
            state.set(format!("k{i}"), vec![1], 60_000);
        }
        let kept = (0..CACHE_ENTRIES_MAX + 5).filter(|i| state.get(format!("k{i}")).is_some()).count();
        assert_eq!(kept, CACHE_ENTRIES_MAX);
        // Another plugin's context has its own, empty cache.
        assert_eq!(host_state().get("k0".into()), None);
    }

    #[test]
    fn only_allow_listed_hosts_pass() {
        let allowed = vec!["api.stripe.com".to_string(), "127.0.0.1".to_string()];
        assert_eq!(allowed_host(&allowed, "https://api.stripe.com/v1/payment_intents").unwrap(), "api.stripe.com");
        assert_eq!(allowed_host(&allowed, "http://127.0.0.1:8080/x").unwrap(), "127.0.0.1");
        assert!(allowed_host(&allowed, "https://API.STRIPE.COM/").is_ok());
        for denied in [
            "https://evil.example/",
            "https://api.stripe.com.evil.example/",
            "https://evil.example/?u=https://api.stripe.com",
            "ftp://api.stripe.com/",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(allowed_host(&allowed, denied).is_err(), "{denied} must be denied");
        }
    }
}
