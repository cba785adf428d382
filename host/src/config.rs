//! Operator configuration, from an optional TOML file (`--config`). Without a
//! file the gateway runs on built-in defaults fit for the sandbox.
//!
//! ```toml
//! [fx]
//! spread_bps = 50          # taken from the customer side of every swap
//! quote_ttl_ms = 60000     # how long a quote's rate is locked
//!
//! [plugin_limits]
//! call_ms_max = 5000          # per call, wall time
//! memory_bytes_max = 67108864 # per instance
//!
//! [[routes]]                  # bind a rail plugin (file stem) to a mode and method
//! mode = "live"
//! method = "mtn_momo"
//! plugin = "rail-mtn-momo"
//!
//! [webhooks]
//! retry_delays_ms = [5000, 30000]   # default: the published 13-step schedule
//! poll_interval_ms = 250
//!
//! public_url = "https://pay.example.com"  # where providers send callbacks
//!
//! [status_checks]             # payments a rail left processing
//! delays_ms = [5000, 15000]   # wait before each check; the last one repeats
//! poll_interval_ms = 1000
//! give_up_after_ms = 259200000  # then left processing for reconciliation
//!
//! trusted_proxies = ["10.0.0.0/8"]   # proxies whose X-Forwarded-For/-Proto are believed
//! secure_peers = ["127.0.0.1"]        # direct peers whose plain HTTP counts as HTTPS (none by default)
//! metrics_from = ["127.0.0.1"]        # who may read /metrics (nobody by default)
//!
//! [listener]                  # against slow or too many clients (API and admin)
//! connections_max = 1000
//! header_read_timeout_ms = 20000   # also closes keep-alive connections idle this long
//! body_read_timeout_ms = 30000
//! tls_handshakes_max = 128
//!
//! [tls]                       # serve HTTPS (else plain HTTP: live keys only via secure_peers or a trusted proxy)
//! cert_file = "/etc/soxara/tls/fullchain.pem"
//! key_file = "/etc/soxara/tls/privkey.pem"
//!
//! [settlement]                # pay merchants what they are owed
//! interval_ms = 86400000      # how often (0: only `soxara admin settle`)
//! hold_ms = 86400000          # money collected this long ago is settled
//!
//! [transfers]                 # money sent to phone numbers not yet on Soxara
//! claim_ttl_ms = 604800000    # unclaimed this long: returned to the sender
//! messenger_test = "messaging-sandbox"   # messenger plugin (file stem) per mode
//! messenger_live = "whatsapp"            # none by default: live transfers reach registered customers only
//!
//! [codes]                   # one-time codes sent to customers (claims, approvals)
//! attempts_max = 5            # wrong codes per phone, from anyone, before its codes lock
//! lockout_ms = 3600000        # how long they stay locked after the last wrong one
//! approval_ttl_ms = 600000    # how long a customer has to approve a debit or wallet access
//! key_file = "data/code.key"  # the HMAC key codes are stored under (default: beside the database;
//!                             # or SOXARA_CODE_KEY, 64 hex digits, for several nodes)
//!
//! [entities]                  # the legal entities money moves under (a closed set)
//! names = ["Phoenix Hub Liberia, Inc.", "Cinrique Inc."]
//! wallets = "Phoenix Hub Liberia, Inc."   # holds customer wallets, transfers and claim escrow
//!
//! [rate_limits]               # requests a minute per API key (0: no limit)
//! live_per_minute = 300
//! test_per_minute = 10
//!
//! [plugins.fx-fixed.config]
//! rates = "USD/LRD=181"
//!
//! [plugins.fx-http]
//! allowed_hosts = ["rates.example.com"]
//! config = { url = "https://rates.example.com" }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::values::clock::Clock;
use crate::values::entity::Entities;
use crate::values::method::Method;
use crate::values::mode::Mode;

/// The seed documents' worked example rate, used when no file sets one.
pub const DEFAULT_USD_LRD_RATE: &str = "USD/LRD=181";
/// How long a quote's rate is locked: 60 s, as the API promises.
pub const FX_QUOTE_TTL_MS_DEFAULT: u64 = 60_000;
/// The longest an operator may lock a quote.
pub const FX_QUOTE_TTL_MS_MAX: u64 = 3_600_000;
/// The longest single wait in a webhook retry schedule.
pub const WEBHOOK_RETRY_DELAY_MS_MAX: u64 = 7 * 24 * 3_600_000;
/// A plugin's memory cap can be at most a whole 32-bit WebAssembly memory.
pub const PLUGIN_MEMORY_BYTES_MAX: usize = 4 << 30;
/// The largest spread an operator may configure (10%).
pub const FX_SPREAD_BPS_MAX: u32 = 1_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub fx: FxSettings,
    #[serde(default)]
    pub webhooks: WebhookSettings,
    #[serde(default)]
    pub status_checks: StatusCheckSettings,
    #[serde(default)]
    pub rate_limits: RateLimitSettings,
    #[serde(default)]
    pub settlement: SettlementSettings,
    #[serde(default)]
    pub transfers: TransferSettings,
    #[serde(default)]
    pub bills: BillSettings,
    #[serde(default)]
    pub trades: TradeSettings,
    #[serde(default)]
    pub codes: CodeSettings,
    #[serde(default)]
    pub entities: EntitySettings,
    /// Serve the API over TLS from these PEM files.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// Addresses or CIDR blocks of proxies in front of the gateway: their
    /// `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Direct peers whose plain HTTP counts as secure (a TLS-terminating
    /// sidecar on loopback). None by default: loopback is not trusted.
    #[serde(default)]
    pub secure_peers: Vec<String>,
    /// Peers that may read `/metrics` (a local agent). None by default.
    #[serde(default)]
    pub metrics_from: Vec<String>,
    /// The gateway's address as providers reach it (scheme, host, optional
    /// port, no path). Rails get `{public_url}/v1/callbacks/{plugin}` as
    /// their `callback_url`; without it, the address the API listens on.
    #[serde(default)]
    pub public_url: Option<String>,
    #[serde(default)]
    pub plugin_limits: PluginLimits,
    /// Where compiled plugin code is cached between starts (default: a
    /// `plugin-cache` directory beside the database).
    #[serde(default)]
    pub plugin_cache_dir: Option<std::path::PathBuf>,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub listener: ListenerSettings,
    /// Bindings of plugins to payments, beyond the default (test mode: the
    /// simulator for every method).
    #[serde(default)]
    pub routes: Vec<RouteSetting>,
    /// Per plugin, keyed by the component's file stem (`fx-http` for `fx-http.wasm`).
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSettings>,
}

/// The legal entities the platform moves money under: every rail must
/// name one of them for each method it serves, or it is refused when it
/// loads. `wallets` holds customer wallets (and so transfers and escrow).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitySettings {
    #[serde(default = "default_entity_names")]
    pub names: Vec<String>,
    #[serde(default = "default_wallet_entity")]
    pub wallets: String,
}

/// Phoenix Hub Liberia operates mobile money and wallets; Cinrique cards
/// and the USD float.
pub const PHOENIX_HUB: &str = "Phoenix Hub Liberia, Inc.";
pub const CINRIQUE: &str = "Cinrique Inc.";

fn default_entity_names() -> Vec<String> {
    vec![PHOENIX_HUB.to_string(), CINRIQUE.to_string()]
}

fn default_wallet_entity() -> String {
    PHOENIX_HUB.to_string()
}

impl Default for EntitySettings {
    fn default() -> EntitySettings {
        EntitySettings { names: default_entity_names(), wallets: default_wallet_entity() }
    }
}

impl EntitySettings {
    /// The configured set, checked.
    pub fn entities(&self) -> Result<Entities> {
        Entities::new(&self.names, &self.wallets).map_err(|why| anyhow::anyhow!(why))
    }
}

/// Transfers to phone numbers (`transfers`): how long a recipient who is
/// not yet on Soxara has to claim, and which messenger tells them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferSettings {
    #[serde(default = "default_claim_ttl_ms")]
    pub claim_ttl_ms: u64,
    /// A claim message that has not gone out after this long (a crash, a
    /// messenger outage) is replaced by a new one with a new code.
    #[serde(default = "default_resend_after_ms")]
    pub resend_after_ms: u64,
    /// The messenger plugin (file stem) for test-mode transfers.
    #[serde(default = "default_messenger_test")]
    pub messenger_test: Option<String>,
    /// The messenger plugin for live transfers; without one, live transfers
    /// reach registered customers only.
    #[serde(default)]
    pub messenger_live: Option<String>,
}

fn default_claim_ttl_ms() -> u64 {
    7 * 24 * 3_600_000
}

fn default_resend_after_ms() -> u64 {
    60_000
}

fn default_messenger_test() -> Option<String> {
    Some("messaging-sandbox".to_string())
}

impl Default for TransferSettings {
    fn default() -> TransferSettings {
        TransferSettings {
            claim_ttl_ms: default_claim_ttl_ms(),
            resend_after_ms: default_resend_after_ms(),
            messenger_test: default_messenger_test(),
            messenger_live: None,
        }
    }
}

/// One-time codes sent to customers (`domain::codes`): claim codes and
/// approval codes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeSettings {
    /// Wrong codes for one phone, from anyone, before its codes lock.
    #[serde(default = "default_code_attempts_max")]
    pub attempts_max: u32,
    /// How long a phone's codes stay locked after its last wrong code.
    #[serde(default = "default_code_lockout_ms")]
    pub lockout_ms: u64,
    /// How long a customer has to approve a debit or wallet access.
    #[serde(default = "default_approval_ttl_ms")]
    pub approval_ttl_ms: u64,
    /// The file holding the key codes are hashed under (default: `code.key`
    /// beside the database); `SOXARA_CODE_KEY` overrides it.
    #[serde(default)]
    pub key_file: Option<std::path::PathBuf>,
}

fn default_code_attempts_max() -> u32 {
    5
}

fn default_code_lockout_ms() -> u64 {
    3_600_000
}

fn default_approval_ttl_ms() -> u64 {
    600_000
}

impl Default for CodeSettings {
    fn default() -> CodeSettings {
        CodeSettings {
            attempts_max: default_code_attempts_max(),
            lockout_ms: default_code_lockout_ms(),
            approval_ttl_ms: default_approval_ttl_ms(),
            key_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FxSettings {
    #[serde(default)]
    pub spread_bps: u32,
    #[serde(default = "default_quote_ttl_ms")]
    pub quote_ttl_ms: u64,
}

/// When merchants are paid (`settlements`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementSettings {
    /// How long after the last batch the next one runs (daily by default,
    /// by the clock, across restarts); 0: only when an operator runs it
    /// (`soxara admin settle`).
    #[serde(default = "default_settlement_interval_ms")]
    pub interval_ms: u64,
    /// Money is settled once it has been collected this long (refunds and
    /// disputes come out of it first).
    #[serde(default = "default_settlement_hold_ms")]
    pub hold_ms: u64,
}

fn default_settlement_interval_ms() -> u64 {
    24 * 3_600_000
}

fn default_settlement_hold_ms() -> u64 {
    24 * 3_600_000
}

impl Default for SettlementSettings {
    fn default() -> SettlementSettings {
        SettlementSettings { interval_ms: default_settlement_interval_ms(), hold_ms: default_settlement_hold_ms() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain, leaf first (PEM).
    pub cert_file: std::path::PathBuf,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: std::path::PathBuf,
}

/// Requests a minute each API key may make (`rate_limit`); 0: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    #[serde(default = "default_live_per_minute")]
    pub live_per_minute: u32,
    #[serde(default = "default_test_per_minute")]
    pub test_per_minute: u32,
}

/// The API's published limits.
fn default_live_per_minute() -> u32 {
    300
}

fn default_test_per_minute() -> u32 {
    10
}

impl Default for RateLimitSettings {
    fn default() -> RateLimitSettings {
        RateLimitSettings { live_per_minute: default_live_per_minute(), test_per_minute: default_test_per_minute() }
    }
}

impl RateLimitSettings {
    /// No limit for any key (load tests, the test suite).
    pub fn off() -> RateLimitSettings {
        RateLimitSettings { live_per_minute: 0, test_per_minute: 0 }
    }
}

/// The admin API's listener and token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Loopback by default: the admin API is for operators on this machine.
    /// Any other address needs `tls`.
    #[serde(default = "default_admin_listen")]
    pub listen: std::net::SocketAddr,
    /// The bearer token (or `SOXARA_ADMIN_TOKEN`, which `soxara serve`
    /// reads); when neither is set, the one in `token_file`.
    #[serde(default)]
    pub token: Option<String>,
    /// Where a token made by the gateway is kept (default: `admin.token`
    /// beside the database; made on first start, owner-only).
    #[serde(default)]
    pub token_file: Option<std::path::PathBuf>,
    /// Serve the admin API over TLS from these PEM files.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
}

fn default_admin_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8081))
}

impl Default for AdminSettings {
    fn default() -> AdminSettings {
        AdminSettings { listen: default_admin_listen(), token: None, token_file: None, tls: None }
    }
}

/// Limits on the API and admin listeners (`http::serve`), against clients
/// that are slow on purpose or too many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSettings {
    /// Connections open at once; more wait in the kernel's backlog.
    #[serde(default = "default_connections_max")]
    pub connections_max: usize,
    /// A request's headers must arrive within this (also: keep-alive idle).
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// A request's whole body must arrive within this after its headers.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// TLS handshakes in progress at once.
    #[serde(default = "default_tls_handshakes_max")]
    pub tls_handshakes_max: usize,
}

fn default_connections_max() -> usize {
    1_000
}

fn default_header_read_timeout_ms() -> u64 {
    20_000
}

fn default_body_read_timeout_ms() -> u64 {
    30_000
}

fn default_tls_handshakes_max() -> usize {
    128
}

impl Default for ListenerSettings {
    fn default() -> ListenerSettings {
        ListenerSettings {
            connections_max: default_connections_max(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            body_read_timeout_ms: default_body_read_timeout_ms(),
            tls_handshakes_max: default_tls_handshakes_max(),
        }
    }
}

/// What one plugin call may use. Every call gets a fresh instance.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginLimits {
    /// Wall time per call before it is interrupted (epoch interruption).
    #[serde(default = "default_call_ms_max")]
    pub call_ms_max: u64,
    /// Linear memory an instance may grow to.
    #[serde(default = "default_memory_bytes_max")]
    pub memory_bytes_max: usize,
    /// The longest string a plugin may put in its answer (references,
    /// failure messages); longer is malformed output.
    #[serde(default = "default_output_chars_max")]
    pub output_chars_max: usize,
}

fn default_call_ms_max() -> u64 {
    5_000
}

fn default_memory_bytes_max() -> usize {
    64 << 20
}

fn default_output_chars_max() -> usize {
    1_024
}

impl Default for PluginLimits {
    fn default() -> PluginLimits {
        PluginLimits {
            call_ms_max: default_call_ms_max(),
            memory_bytes_max: default_memory_bytes_max(),
            output_chars_max: default_output_chars_max(),
        }
    }
}

/// Bill purchases: which biller plugin sells each bill type in each mode.
/// Without a route, test mode uses the sandbox biller for every type and
/// live mode sells no bills.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillSettings {
    #[serde(default)]
    pub routes: Vec<BillRoute>,
}

/// Binds a biller plugin (by file stem) to a mode and bill type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillRoute {
    pub mode: String,
    pub bill_type: String,
    pub biller: String,
}

/// Trades (gift card sales, RMB purchases, crypto sales): which trader
/// plugin carries each kind in each mode. Without a route, test mode uses
/// the sandbox trader for every kind it trades and live mode trades nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradeSettings {
    #[serde(default)]
    pub routes: Vec<TradeRoute>,
}

/// Binds a trader plugin (by file stem) to a mode and trade kind
/// (`gift_card_sale`, `rmb_purchase`, `crypto_sale`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradeRoute {
    pub mode: String,
    pub trade: String,
    pub trader: String,
}

/// Binds a rail plugin (by file stem) to a mode and payment method.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSetting {
    pub mode: String,
    pub method: String,
    pub plugin: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// The wait before each retry, in order; after the last, a delivery has
    /// failed for good. The default is the published schedule.
    #[serde(default = "default_retry_delays_ms")]
    pub retry_delays_ms: Vec<u64>,
    /// How often the worker looks for due deliveries.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Let endpoints point at loopback and private addresses. Off in
    /// production (a webhook must not reach the gateway's own network); on
    /// for local development and tests.
    #[serde(default)]
    pub allow_private_targets: bool,
    /// Let live endpoints use plain `http://` (a receiver on the operator's
    /// own network, tests). Off: live endpoints need `https://`.
    #[serde(default)]
    pub allow_plain_http_live: bool,
}

/// The published retry schedule: 13 retries over about 4.3 days (docs/webhooks.md).
pub const WEBHOOK_RETRY_DELAYS_MS: [u64; 13] = [
    5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000, 28_800_000, 57_600_000, 86_400_000,
    86_400_000, 86_400_000,
];

fn default_retry_delays_ms() -> Vec<u64> {
    WEBHOOK_RETRY_DELAYS_MS.to_vec()
}

fn default_poll_interval_ms() -> u64 {
    250
}

impl Default for WebhookSettings {
    fn default() -> WebhookSettings {
        WebhookSettings {
            retry_delays_ms: default_retry_delays_ms(),
            poll_interval_ms: default_poll_interval_ms(),
            allow_private_targets: false,
            allow_plain_http_live: false,
        }
    }
}

/// When payments a rail left `processing` are asked about again.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusCheckSettings {
    /// The wait before each check, in order; the last repeats for as long as
    /// the payment stays processing.
    #[serde(default = "default_status_check_delays_ms")]
    pub delays_ms: Vec<u64>,
    /// How often the worker looks for due checks.
    #[serde(default = "default_status_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// After this long a payment is no longer checked: it stays processing,
    /// logged as an error, for an operator to reconcile with the provider.
    #[serde(default = "default_status_give_up_after_ms")]
    pub give_up_after_ms: u64,
}

fn default_status_give_up_after_ms() -> u64 {
    3 * 24 * 3_600_000
}

/// 5 s, then backing off to every 30 minutes (a mobile-money approval
/// expires within minutes; a card rarely stays pending long).
pub const STATUS_CHECK_DELAYS_MS: [u64; 8] = [5_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000];

fn default_status_check_delays_ms() -> Vec<u64> {
    STATUS_CHECK_DELAYS_MS.to_vec()
}

fn default_status_poll_interval_ms() -> u64 {
    1_000
}

impl Default for StatusCheckSettings {
    fn default() -> StatusCheckSettings {
        StatusCheckSettings {
            delays_ms: default_status_check_delays_ms(),
            poll_interval_ms: default_status_poll_interval_ms(),
            give_up_after_ms: default_status_give_up_after_ms(),
        }
    }
}

impl StatusCheckSettings {
    /// The wait before check number `checks_made + 1`, in ms.
    pub fn delay_ms(&self, checks_made: i64) -> i64 {
        let index = usize::try_from(checks_made).unwrap_or(0).min(self.delays_ms.len().saturating_sub(1));
        self.delays_ms.get(index).map_or(60_000, |d| i64::try_from(*d).unwrap_or(i64::MAX))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// The one mode this plugin serves, as its credentials and base URLs
    /// are for: `"test"` (sandbox, the default) or `"live"` (production).
    /// A plugin never serves the other mode, whatever is bound; the plugin
    /// reads it as its `mode` config key and refuses credentials of the
    /// other mode. For both, load the component twice under two file names.
    #[serde(default)]
    pub mode: Option<String>,
    /// What the plugin reads with `config.get` (credentials included).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Host names the plugin may reach over HTTP.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Host names a rail may send customers to (`next_action` redirects,
    /// https only), e.g. Orange Money's payment pages. Empty: none.
    #[serde(default)]
    pub redirect_hosts: Vec<String>,
    /// This plugin's own limits, where they differ from `[plugin_limits]`.
    #[serde(default)]
    pub limits: PluginLimitOverrides,
}

/// Every plugin's settings, as plugins are loaded: the operator's, plus the
/// `callback_url` the host gives each rail (unless the operator set one),
/// and the clock plugins read.
#[derive(Debug, Clone, Default)]
pub struct PluginConfigs {
    pub operator: BTreeMap<String, PluginSettings>,
    /// The gateway's public base URL (no trailing slash).
    pub callback_base: Option<String>,
    pub clock: Clock,
}

impl PluginConfigs {
    /// The settings of the plugin whose file stem is `name`, with the keys
    /// the host gives it: `mode` (always the declared one) and
    /// `callback_url` (unless the operator set one).
    pub fn for_plugin(&self, name: &str) -> PluginSettings {
        let mut settings = self.operator.get(name).cloned().unwrap_or_default();
        settings.config.insert("mode".to_string(), settings.serves().as_str().to_string());
        if let Some(base) = &self.callback_base {
            settings.config.entry("callback_url".to_string()).or_insert_with(|| format!("{base}/v1/callbacks/{name}"));
        }
        settings
    }
}

impl PluginSettings {
    /// The mode this plugin serves (`validate` refuses an unknown one).
    pub fn serves(&self) -> Mode {
        self.mode.as_deref().and_then(Mode::parse).unwrap_or(Mode::Test)
    }
}

/// Per-plugin changes to the default limits; unset fields keep the default.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginLimitOverrides {
    pub call_ms_max: Option<u64>,
    pub memory_bytes_max: Option<usize>,
    pub output_chars_max: Option<usize>,
}

impl PluginLimits {
    /// These limits with a plugin's overrides applied.
    pub fn with(self, overrides: &PluginLimitOverrides) -> PluginLimits {
        PluginLimits {
            call_ms_max: overrides.call_ms_max.unwrap_or(self.call_ms_max),
            memory_bytes_max: overrides.memory_bytes_max.unwrap_or(self.memory_bytes_max),
            output_chars_max: overrides.output_chars_max.unwrap_or(self.output_chars_max),
        }
    }
}

fn default_quote_ttl_ms() -> u64 {
    FX_QUOTE_TTL_MS_DEFAULT
}

impl Default for FxSettings {
    fn default() -> FxSettings {
        FxSettings { spread_bps: 0, quote_ttl_ms: FX_QUOTE_TTL_MS_DEFAULT }
    }
}

impl Default for FileConfig {
    /// The sandbox defaults: the fixed FX provider at the seed's rate.
    fn default() -> FileConfig {
        let fixed = PluginSettings {
            config: BTreeMap::from([("rates".to_string(), DEFAULT_USD_LRD_RATE.to_string())]),
            ..PluginSettings::default()
        };
        FileConfig {
            fx: FxSettings::default(),
            webhooks: WebhookSettings::default(),
            status_checks: StatusCheckSettings::default(),
            rate_limits: RateLimitSettings::default(),
            settlement: SettlementSettings::default(),
            transfers: TransferSettings::default(),
            bills: BillSettings::default(),
            trades: TradeSettings::default(),
            codes: CodeSettings::default(),
            entities: EntitySettings::default(),
            tls: None,
            trusted_proxies: Vec::new(),
            secure_peers: Vec::new(),
            metrics_from: Vec::new(),
            public_url: None,
            plugin_limits: PluginLimits::default(),
            plugin_cache_dir: None,
            admin: AdminSettings::default(),
            listener: ListenerSettings::default(),
            routes: Vec::new(),
            plugins: BTreeMap::from([("fx-fixed".to_string(), fixed)]),
        }
    }
}

/// Addresses or CIDR blocks, as a setting called `name` lists them.
fn nets(name: &str, entries: &[String]) -> Result<Vec<ipnet::IpNet>> {
    entries
        .iter()
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| anyhow::anyhow!("{name}: {entry:?} is not an IP address or CIDR block"))
        })
        .collect()
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: FileConfig = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        config.validate().with_context(|| format!("checking {}", path.display()))?;
        Ok(config)
    }

    /// The most memory any plugin may grow to, default or override: the
    /// size of each slot in the runtime's instance pool.
    pub fn plugin_memory_ceiling(&self) -> usize {
        let overrides = self.plugins.values().filter_map(|p| p.limits.memory_bytes_max);
        overrides.fold(self.plugin_limits.memory_bytes_max, usize::max)
    }

    /// `trusted_proxies`, parsed (`validate` refuses bad entries).
    pub fn trusted_proxy_nets(&self) -> Result<Vec<ipnet::IpNet>> {
        nets("trusted_proxies", &self.trusted_proxies)
    }

    /// `secure_peers`, parsed.
    pub fn secure_peer_nets(&self) -> Result<Vec<ipnet::IpNet>> {
        nets("secure_peers", &self.secure_peers)
    }

    /// `metrics_from`, parsed.
    pub fn metrics_nets(&self) -> Result<Vec<ipnet::IpNet>> {
        nets("metrics_from", &self.metrics_from)
    }

    /// The configured legal entities (`validate` refuses a bad set).
    pub fn entities(&self) -> Result<Entities> {
        self.entities.entities()
    }

    pub fn validate(&self) -> Result<()> {
        self.trusted_proxy_nets()?;
        self.secure_peer_nets()?;
        self.metrics_nets()?;
        self.entities()?;
        anyhow::ensure!(
            self.fx.spread_bps <= FX_SPREAD_BPS_MAX,
            "fx.spread_bps is {}, above the maximum {FX_SPREAD_BPS_MAX}",
            self.fx.spread_bps
        );
        anyhow::ensure!(self.fx.quote_ttl_ms > 0, "fx.quote_ttl_ms must be positive");
        anyhow::ensure!(self.webhooks.poll_interval_ms > 0, "webhooks.poll_interval_ms must be positive");
        anyhow::ensure!(
            self.webhooks.retry_delays_ms.iter().all(|d| *d <= WEBHOOK_RETRY_DELAY_MS_MAX),
            "webhooks.retry_delays_ms: each delay must be at most {WEBHOOK_RETRY_DELAY_MS_MAX} ms (7 days)"
        );
        anyhow::ensure!(
            !self.status_checks.delays_ms.is_empty() && self.status_checks.delays_ms.iter().all(|d| *d > 0),
            "status_checks.delays_ms must list at least one positive delay"
        );
        anyhow::ensure!(self.status_checks.poll_interval_ms > 0, "status_checks.poll_interval_ms must be positive");
        if let Some(url) = &self.public_url {
            let uri: Option<axum::http::Uri> = url.parse().ok();
            let fits = uri.as_ref().is_some_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() && matches!(u.path(), "" | "/")
            });
            anyhow::ensure!(fits, "public_url {url:?} must be an http(s) URL with a host and no path");
        }
        anyhow::ensure!(self.fx.quote_ttl_ms <= FX_QUOTE_TTL_MS_MAX, "fx.quote_ttl_ms must be at most 1 hour");
        anyhow::ensure!(self.plugin_limits.call_ms_max > 0, "plugin_limits.call_ms_max must be positive");
        anyhow::ensure!(self.transfers.claim_ttl_ms > 0, "transfers.claim_ttl_ms must be positive");
        anyhow::ensure!(self.codes.attempts_max > 0, "codes.attempts_max must be positive");
        let listener = &self.listener;
        anyhow::ensure!(
            listener.connections_max > 0 && listener.tls_handshakes_max > 0,
            "listener.connections_max and listener.tls_handshakes_max must be positive"
        );
        anyhow::ensure!(
            listener.header_read_timeout_ms > 0 && listener.body_read_timeout_ms > 0,
            "listener.header_read_timeout_ms and listener.body_read_timeout_ms must be positive"
        );
        anyhow::ensure!(self.codes.approval_ttl_ms > 0, "codes.approval_ttl_ms must be positive");
        if let Some(token) = &self.admin.token {
            anyhow::ensure!(token.len() >= 24, "admin.token must be at least 24 characters");
        }
        anyhow::ensure!(
            self.admin.listen.ip().is_loopback() || self.admin.tls.is_some(),
            "admin.listen {} is not a loopback address: the admin API carries its token and every merchant's \
             keys, so beyond this machine it must be served over TLS ([admin.tls] cert_file and key_file)",
            self.admin.listen
        );
        anyhow::ensure!(
            self.plugin_limits.memory_bytes_max >= 1 << 20,
            "plugin_limits.memory_bytes_max must be at least 1 MiB"
        );
        anyhow::ensure!(
            self.plugin_memory_ceiling() <= PLUGIN_MEMORY_BYTES_MAX,
            "plugin memory_bytes_max must be at most 4 GiB (a 32-bit WebAssembly memory)"
        );
        for (name, plugin) in &self.plugins {
            if let Some(mode) = &plugin.mode {
                anyhow::ensure!(Mode::parse(mode).is_some(), "plugins.{name}.mode {mode:?} is not test or live");
            }
            anyhow::ensure!(
                !plugin.config.contains_key("mode"),
                "plugins.{name}.config: `mode` is set by the gateway from plugins.{name}.mode"
            );
        }
        for route in &self.routes {
            anyhow::ensure!(Mode::parse(&route.mode).is_some(), "routes: mode {:?} is not test or live", route.mode);
            anyhow::ensure!(
                Method::parse(&route.method).is_some(),
                "routes: method {:?} is not one of {}",
                route.method,
                Method::words()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in docs/operations.md is meant to be copied: it must
    /// parse, validate, and put each setting where it says.
    #[test]
    fn the_operations_guide_example_config_loads() {
        let guide = include_str!("../../docs/operations.md");
        let start = guide.find("```toml\n# gateway.toml").expect("the guide has the example") + "```toml\n".len();
        let example = &guide[start..start + guide[start..].find("```").expect("the example ends")];
        let config: FileConfig = toml::from_str(example).expect("the example parses");
        config.validate().expect("the example is valid");
        assert_eq!(config.public_url.as_deref(), Some("https://pay.example.com"));
        assert_eq!(config.rate_limits, RateLimitSettings::default());
        assert_eq!(config.listener, ListenerSettings::default(), "the guide shows the defaults");
        assert!(config.plugins["mtn-momo"].config.contains_key("disbursement_subscription_key"));
        assert_eq!(config.plugins["mtn-momo"].serves(), Mode::Live, "a production configuration serves live only");
        assert!(!config.plugins["orange-money"].config.contains_key("public_url"));
    }

    #[test]
    fn the_published_retry_schedule_lasts_at_least_three_days() {
        let total_ms: u64 = WEBHOOK_RETRY_DELAYS_MS.iter().sum();
        assert!(total_ms >= 3 * 24 * 3_600_000, "{total_ms}");
    }

    #[test]
    fn files_parse_and_unknown_keys_are_refused() {
        let config: FileConfig = toml::from_str(
            "[fx]\nspread_bps = 50\n[plugins.fx-http]\nallowed_hosts = [\"127.0.0.1\"]\nconfig = { url = \"http://127.0.0.1:1\" }\n",
        )
        .unwrap();
        assert_eq!(config.fx.spread_bps, 50);
        assert_eq!(config.fx.quote_ttl_ms, FX_QUOTE_TTL_MS_DEFAULT);
        assert_eq!(config.plugins["fx-http"].allowed_hosts, vec!["127.0.0.1"]);
        assert!(toml::from_str::<FileConfig>("[fx]\nspred_bps = 50\n").is_err());
    }
}
