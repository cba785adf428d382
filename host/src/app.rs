//! The application: configuration, shared state, and starting the server on
//! a listener (port 0 in tests).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{FileConfig, FxSettings};
use crate::plugins::registry::Registry;
use crate::plugins::routes::Routes;
use crate::plugins::{LoadedFx, Runtime};
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct Config {
    /// The SQLite database file (created if missing).
    pub database: PathBuf,
    pub listen: SocketAddr,
    /// Directory of plugin components (`*.wasm`) to load at start.
    pub plugin_dir: PathBuf,
    /// The operator's settings (FX, per-plugin config and allow-lists).
    pub file: FileConfig,
}

/// Everything a request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Loaded rails and the routing table, changed live by operators.
    pub registry: Arc<Registry>,
    pub fx: Arc<Vec<Arc<LoadedFx>>>,
    pub fx_settings: FxSettings,
    pub webhook_settings: crate::config::WebhookSettings,
    pub status_checks: crate::config::StatusCheckSettings,
    pub settlement: crate::config::SettlementSettings,
    pub transfers: crate::config::TransferSettings,
    /// The messenger plugin bound to each mode (`messaging`).
    pub messengers: Arc<crate::messaging::Messengers>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// API keys recently verified (see `auth::KeyCache`).
    pub keys: Arc<crate::auth::KeyCache>,
    /// Requests counted per API key (`[rate_limits]`).
    pub rate_limiter: Arc<crate::rate_limit::RateLimiter>,
    /// Proxies whose forwarding headers are believed (`transport`).
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
}

/// A running gateway.
pub struct RunningApp {
    pub addr: SocketAddr,
    /// Set when this start created the sandbox merchant: (merchant id, test secret key).
    pub sandbox: Option<(String, String)>,
    pub state: AppState,
    /// The admin API's address and bearer token.
    pub admin_addr: SocketAddr,
    pub admin_token: String,
    shutdown: Option<watch::Sender<bool>>,
    webhooks: Option<crate::webhooks::delivery::Worker>,
    status_checks: Option<crate::rail_updates::Worker>,
    settlements: Option<crate::settlements::Worker>,
    transfers: Option<crate::transfers::Worker>,
    server: JoinHandle<std::io::Result<()>>,
    admin_server: JoinHandle<std::io::Result<()>>,
}

impl RunningApp {
    /// Stops accepting connections and waits for requests in flight.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(worker) = self.webhooks.take() {
            worker.stop().await;
        }
        if let Some(worker) = self.status_checks.take() {
            worker.stop().await;
        }
        if let Some(worker) = self.settlements.take() {
            worker.stop().await;
        }
        if let Some(worker) = self.transfers.take() {
            worker.stop().await;
        }
        (&mut self.server).await.context("server task")?.context("server")?;
        (&mut self.admin_server).await.context("admin server task")?.context("admin server")?;
        Ok(())
    }
}

/// Opens the store, loads the plugins, finishes payments a crash
/// interrupted, and starts serving.
pub async fn start(config: Config) -> Result<RunningApp> {
    let store = Store::open(&config.database).with_context(|| format!("opening {}", config.database.display()))?;
    let sandbox = store.write(crate::auth::bootstrap_sandbox).await?;

    config.file.validate()?;
    // Bound before the plugins load: rails are told where their provider's
    // callbacks reach us, which is this address unless `public_url` says.
    // Certificate problems stop the start, before anything listens.
    let tls = match &config.file.tls {
        Some(files) => Some(crate::transport::acceptor(&files.cert_file, &files.key_file)?),
        None => None,
    };
    let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let callback_base = match &config.file.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            if config.file.routes.iter().any(|r| r.mode == "live") {
                tracing::warn!(
                    "live rails are bound but public_url is not set: providers are told to call back {addr}, \
                     which they can rarely reach; status checks still settle payments"
                );
            }
            format!("http://{addr}")
        }
    };
    let plugin_configs =
        crate::config::PluginConfigs { operator: config.file.plugins.clone(), callback_base: Some(callback_base) };
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
    let (runtime, plugins) = tokio::task::spawn_blocking(move || -> Result<_> {
        let runtime = Runtime::new(limits, memory_ceiling, runtime_metrics, Some(&cache_dir))?;
        #[allow(unused_mut)]
        let mut plugins = crate::plugins::load_dir(&runtime, &plugin_dir, &settings)?;
        #[cfg(feature = "compiled-in-simulator")]
        for rail in plugins.rails.iter_mut().filter(|r| r.name() == crate::plugins::routes::SIMULATOR_RAIL) {
            tracing::warn!("benchmark build: the simulator runs compiled into the host, not as its component");
            *rail = runtime.compiled_in_simulator(rail);
        }
        Ok((runtime, plugins))
    })
    .await??;
    let routes = Routes::build(&plugins.rails, &config.file.routes).map_err(|e| anyhow::anyhow!("config: {e}"))?;
    let messengers = crate::messaging::Messengers::bind(&config.file.transfers, &plugins.messengers)?;
    let runtime = Arc::new(runtime);
    let registry = Registry::new(Arc::clone(&runtime), plugin_configs, plugins.rails, routes);
    let state = AppState {
        store,
        registry: Arc::new(registry),
        fx: Arc::new(plugins.fx),
        fx_settings: config.file.fx.clone(),
        webhook_settings: config.file.webhooks.clone(),
        status_checks: config.file.status_checks.clone(),
        settlement: config.file.settlement,
        transfers: config.file.transfers.clone(),
        messengers: Arc::new(messengers),
        metrics,
        keys: Arc::new(crate::auth::KeyCache::default()),
        rate_limiter: Arc::new(crate::rate_limit::RateLimiter::new(config.file.rate_limits)),
        trusted_proxies: Arc::from(config.file.trusted_proxy_nets()?),
    };

    let resumed = crate::payments::resume_in_flight(&state).await? + crate::refunds::resume_in_flight(&state).await?;
    if resumed > 0 {
        tracing::info!(resumed, "payments interrupted by a restart are recorded");
    }

    let webhooks = crate::webhooks::delivery::Worker::spawn(state.store.clone(), config.file.webhooks.clone());
    let status_checks = crate::rail_updates::Worker::spawn(state.clone());
    let settlements = crate::settlements::Worker::spawn(state.clone());
    let transfers = crate::transfers::Worker::spawn(state.clone());

    let (shutdown_watch, mut stopped) = watch::channel(false);
    let router = crate::http::router(state.clone());
    let service = router.into_make_service_with_connect_info::<crate::transport::Peer>();
    let until_stopped = async move {
        let _ = stopped.changed().await;
    };
    let server = match tls {
        Some(acceptor) => {
            let listener = crate::transport::TlsListener::new(listener, acceptor)?;
            tokio::spawn(async move { axum::serve(listener, service).with_graceful_shutdown(until_stopped).await })
        }
        None => tokio::spawn(async move { axum::serve(listener, service).with_graceful_shutdown(until_stopped).await }),
    };

    let admin_listener = TcpListener::bind(config.file.admin.listen)
        .await
        .with_context(|| format!("binding the admin listener {}", config.file.admin.listen))?;
    let admin_addr = admin_listener.local_addr()?;
    let admin_token =
        config.file.admin.token.clone().unwrap_or_else(|| format!("sxa_{}", crate::ids::random_alphanumeric(32)));
    let admin_state = crate::admin::AdminState { token: Arc::from(admin_token.as_str()), app: state.clone() };
    let (admin_router, mut admin_stopped) = (crate::admin::router(admin_state), shutdown_watch.subscribe());
    let admin_server = tokio::spawn(async move {
        axum::serve(admin_listener, admin_router)
            .with_graceful_shutdown(async move {
                let _ = admin_stopped.changed().await;
            })
            .await
    });
    Ok(RunningApp {
        addr,
        sandbox,
        state,
        admin_addr,
        admin_token,
        shutdown: Some(shutdown_watch),
        webhooks: Some(webhooks),
        status_checks: Some(status_checks),
        settlements: Some(settlements),
        transfers: Some(transfers),
        server,
        admin_server,
    })
}
