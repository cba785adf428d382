//! The application: configuration, building the state every layer needs,
//! starting the workers and the servers on their listeners (port 0 in
//! tests), and stopping them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::FileConfig;
use crate::domain::codes::{CodeKey, Codes};
use crate::domain::messaging::Messengers;
use crate::domain::wallets::Wallets;
use crate::http::serve::serve;
use crate::http::transport::TlsListener;
use crate::http::{ApiSettings, AppState};
use crate::operations::{Context, consent, rail_operations};
use crate::plugins::registry::Registry;
use crate::plugins::routes::Routes;
use crate::plugins::{LoadedPlugins, Runtime};
use crate::store::Store;
use crate::values::clock::Clock;
use crate::values::mode::Mode;
use crate::workers::{self, Worker};

#[derive(Debug, Clone)]
pub struct Config {
    /// The SQLite database file (created if missing).
    pub database: PathBuf,
    pub listen: SocketAddr,
    /// Directory of plugin components (`*.wasm`) to load at start.
    pub plugin_dir: PathBuf,
    /// The operator's settings (FX, per-plugin config and allow-lists).
    pub file: FileConfig,
    /// Where the gateway reads the time: the system clock, or in tests an
    /// adjustable one they move forward.
    pub clock: Clock,
}

/// A running gateway.
pub struct RunningApp {
    pub addr: SocketAddr,
    /// Set when this start created the sandbox merchant: (merchant id, test secret key).
    pub sandbox: Option<(String, String)>,
    pub state: AppState,
    /// The admin API's address, whether it speaks TLS, and its bearer token…
    pub admin_addr: SocketAddr,
    pub admin_tls: bool,
    pub admin_token: String,
    /// …and the file that token is kept in, unless the operator set it.
    pub admin_token_file: Option<PathBuf>,
    shutdown: Option<watch::Sender<bool>>,
    workers: Option<Workers>,
    server: JoinHandle<()>,
    admin_server: JoinHandle<()>,
}

/// Registers each loaded rail's name to its file (`domain::rail_owners`);
/// a rail whose name belongs to another file is not loaded, with an error
/// naming both (a `[[routes]]` entry for it then stops the start).
async fn keep_owned_rails(store: &Store, mut plugins: LoadedPlugins, now_ms: i64) -> Result<LoadedPlugins> {
    let names: Vec<(String, Mode, String)> =
        plugins.rails.iter().map(|r| (r.name().to_string(), r.mode(), r.plugin_name().to_string())).collect();
    let claims = store
        .write(move |conn| {
            let claim = |(rail, mode, plugin): &(String, Mode, String)| {
                crate::domain::rail_owners::claim(conn, rail, *mode, plugin, now_ms)
            };
            names.iter().map(claim).collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let mut claims = claims.into_iter();
    plugins.rails.retain(|rail| match claims.next() {
        Some(Err(refused)) => {
            tracing::error!(plugin = rail.plugin_name(), "rail not loaded: {refused}");
            false
        }
        _ => true,
    });
    Ok(plugins)
}

/// Serves `router` on `listener`, over TLS if there is an acceptor, until
/// `stop` changes.
fn spawn_server(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
    limits: crate::config::ListenerSettings,
    mut stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>> {
    let stopped = async move {
        let _ = stop.changed().await;
    };
    Ok(match tls {
        Some(acceptor) => {
            let listener = TlsListener::new(listener, acceptor, limits.tls_handshakes_max)?;
            tokio::spawn(serve(listener, true, router, limits, stopped))
        }
        None => tokio::spawn(serve(listener, false, router, limits, stopped)),
    })
}

/// The background workers of a running gateway.
struct Workers {
    webhooks: workers::webhooks::Worker,
    status_checks: Worker,
    settlements: Worker,
    transfers: Worker,
}

impl RunningApp {
    /// Stops accepting connections and waits for requests in flight.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(workers) = self.workers.take() {
            workers.webhooks.stop().await;
            workers.status_checks.stop().await;
            workers.settlements.stop().await;
            workers.transfers.stop().await;
        }
        (&mut self.server).await.context("server task")?;
        (&mut self.admin_server).await.context("admin server task")?;
        Ok(())
    }
}

/// Opens the store, loads the plugins, finishes operations a crash
/// interrupted, starts the workers, and starts serving.
pub async fn start(config: Config) -> Result<RunningApp> {
    let clock = config.clock.clone();
    let store = Store::open(&config.database).with_context(|| format!("opening {}", config.database.display()))?;
    let now_ms = clock.now_ms();
    let sandbox = store.write(move |conn| crate::domain::keys::bootstrap_sandbox(conn, now_ms)).await?;

    config.file.validate()?;
    let entities = config.file.entities()?;
    let code_key = match &config.file.codes.key_file {
        Some(path) => CodeKey::load_or_create(path)?,
        None => CodeKey::load_or_create(&config.database.with_extension("code.key"))?,
    };
    // Bound before the plugins load: rails are told where their provider's
    // callbacks reach us, which is this address unless `public_url` says.
    // Certificate problems stop the start, before anything listens.
    let tls = match &config.file.tls {
        Some(files) => Some(crate::http::transport::acceptor(&files.cert_file, &files.key_file)?),
        None => None,
    };
    let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let callback_base = match &config.file.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            if config.file.routes.iter().any(|r| Mode::parse(&r.mode) == Some(Mode::Live)) {
                tracing::warn!(
                    "live rails are bound but public_url is not set: providers are told to call back {addr}, \
                     which they can rarely reach; status checks still settle payments"
                );
            }
            format!("http://{addr}")
        }
    };
    let plugin_configs = crate::config::PluginConfigs {
        operator: config.file.plugins.clone(),
        callback_base: Some(callback_base),
        clock: clock.clone(),
    };
    let (plugin_dir, settings) = (config.plugin_dir.clone(), plugin_configs.clone());
    let (limits, memory_ceiling) = (config.file.plugin_limits, config.file.plugin_memory_ceiling());
    let cache_dir =
        config.file.plugin_cache_dir.clone().unwrap_or_else(|| {
            config.database.parent().unwrap_or_else(|| std::path::Path::new(".")).join("plugin-cache")
        });
    // wasmtime's cache refuses relative paths, and the default database
    // (`data/soxara.db`) is relative to where the gateway was started.
    let cache_dir = std::path::absolute(&cache_dir)
        .with_context(|| format!("resolving the plugin cache directory {}", cache_dir.display()))?;
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let runtime_metrics = Arc::clone(&metrics);
    let load_entities = entities.clone();
    let (runtime, plugins) = tokio::task::spawn_blocking(move || -> Result<(Runtime, LoadedPlugins)> {
        let runtime = Runtime::new(limits, memory_ceiling, runtime_metrics, Some(&cache_dir))?;
        #[allow(unused_mut)]
        let mut plugins = crate::plugins::load_dir(&runtime, &plugin_dir, &settings, &load_entities)?;
        #[cfg(feature = "compiled-in-simulator")]
        for rail in plugins.rails.iter_mut().filter(|r| r.name() == crate::plugins::routes::SIMULATOR_RAIL) {
            tracing::warn!("benchmark build: the simulator runs compiled into the host, not as its component");
            *rail = runtime.compiled_in_simulator(rail);
        }
        Ok((runtime, plugins))
    })
    .await??;
    let plugins = keep_owned_rails(&store, plugins, clock.now_ms()).await?;
    let routes = Routes::build(&plugins.rails, &config.file.routes).map_err(|e| anyhow::anyhow!("config: {e}"))?;
    let messengers = Messengers::bind(&config.file.transfers, &plugins.messengers)?;
    let billers = crate::domain::billers::Billers::bind(&config.file.bills, &plugins.billers)?;
    let traders = crate::domain::traders::Traders::bind(&config.file.trades, &plugins.traders)?;
    let registry = Registry::new(Arc::new(runtime), plugin_configs, entities.clone(), plugins.rails, routes);
    let ops = Context {
        store,
        clock: clock.clone(),
        rails: Arc::new(registry),
        wallets: Wallets::new(entities.wallets().clone()),
        billers: Arc::new(billers),
        traders: Arc::new(traders),
        card_images: crate::domain::card_images::CardImages::for_database(&config.database),
        messengers: Arc::new(messengers),
        codes: Arc::new(Codes { key: code_key, settings: config.file.codes.clone() }),
        checks: config.file.status_checks.clone(),
        transfers: config.file.transfers.clone(),
        claim_codes_due: Arc::default(),
        callback_slots: Arc::default(),
    };
    let state = AppState {
        ops: ops.clone(),
        fx_rates: Arc::new(crate::domain::fx::RateSource::new(Arc::from(plugins.fx))),
        settings: Arc::new(ApiSettings {
            fx: config.file.fx.clone(),
            webhooks: config.file.webhooks.clone(),
            settlement: config.file.settlement,
            trust: crate::http::transport::Trust {
                proxies: config.file.trusted_proxy_nets()?,
                secure_peers: config.file.secure_peer_nets()?,
            },
            metrics_from: config.file.metrics_nets()?,
        }),
        metrics: Arc::clone(&metrics),
        keys: Arc::new(crate::http::auth::KeyCache::default()),
        rate_limiter: Arc::new(crate::http::rate_limit::RateLimiter::new(config.file.rate_limits)),
    };

    let resumed = rail_operations::resume_in_flight(&ops).await? + consent::resume_approved(&ops).await?;
    if resumed > 0 {
        tracing::info!(resumed, "operations interrupted by a restart are recorded");
    }
    let workers = Workers {
        webhooks: workers::webhooks::Worker::spawn(
            ops.store.clone(),
            clock.clone(),
            config.file.webhooks.clone(),
            Arc::clone(&metrics),
        ),
        status_checks: workers::status_checks::spawn(ops.clone(), Arc::clone(&metrics)),
        settlements: workers::settlements::spawn(ops.clone(), config.file.settlement, Arc::clone(&metrics)),
        transfers: workers::transfers::spawn(ops.clone(), Arc::clone(&metrics)),
    };

    let (shutdown_watch, _) = watch::channel(false);
    let limits = config.file.listener;
    let router = crate::http::router(state.clone());
    let server = spawn_server(listener, tls, router, limits, shutdown_watch.subscribe())?;

    let admin_tls = match &config.file.admin.tls {
        Some(files) => Some(crate::http::transport::acceptor(&files.cert_file, &files.key_file)?),
        None => None,
    };
    let admin_listener = TcpListener::bind(config.file.admin.listen)
        .await
        .with_context(|| format!("binding the admin listener {}", config.file.admin.listen))?;
    let admin_addr = admin_listener.local_addr()?;
    // The operator's token, or one the gateway keeps in a file of its own
    // (never printed: `soxara admin` reads it from the environment).
    let (admin_token, admin_token_file) = match &config.file.admin.token {
        Some(token) => (token.clone(), None),
        None => {
            let file = config.file.admin.token_file.clone();
            let file = file.unwrap_or_else(|| config.database.with_extension("admin.token"));
            let token = crate::secrets::read_or_create(&file, || {
                format!("sxa_{}", crate::values::ids::random_alphanumeric(32))
            })?;
            (token, Some(file))
        }
    };
    let admin_state = crate::http::AdminState { token: Arc::from(admin_token.as_str()), app: state.clone() };
    let admin_router = crate::http::admin::router(admin_state);
    let admin_server = spawn_server(admin_listener, admin_tls, admin_router, limits, shutdown_watch.subscribe())?;
    Ok(RunningApp {
        addr,
        sandbox,
        state,
        admin_addr,
        admin_tls: config.file.admin.tls.is_some(),
        admin_token,
        admin_token_file,
        shutdown: Some(shutdown_watch),
        workers: Some(workers),
        server,
        admin_server,
    })
}
