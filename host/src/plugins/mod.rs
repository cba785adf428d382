//! Plugins: the wasmtime engine, loading rail components, and calling them
//! under limits. A plugin that traps, loops or exhausts its memory fails only
//! the call it was in: every call gets a fresh store and instance, and a
//! trapped instance is dropped, never reused.

mod bindings;
pub mod host_imports;
pub mod routes;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, StoreLimitsBuilder, Trap};

use bindings::fx::FxPluginPre;
pub use bindings::fx::exports::soxara::gateway::fx_provider::Rate as ProviderRate;
pub use bindings::rail::exports::soxara::gateway::rail::{CollectRequest, RailInfo, RailOutcome, SupportedMethod};
pub use bindings::rail::soxara::gateway::types::{Failure, Money, PaymentMethod, TransactionStatus};
use bindings::rail::{RailPlugin, RailPluginPre};
pub use host_imports::{HostState, PluginContext};

/// Wall time one plugin call may take before it is interrupted.
pub const PLUGIN_CALL_MS_MAX: u64 = 5_000;
/// Linear memory one plugin instance may grow to.
pub const PLUGIN_MEMORY_BYTES_MAX: usize = 64 << 20;
/// How often the engine's epoch advances; deadlines are counted in ticks.
const EPOCH_TICK_MS: u64 = 5;

/// Why a plugin call produced no answer. Distinct from a `Failure`, which is
/// the plugin's (or its provider's) own answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    #[error("the plugin exceeded its {PLUGIN_CALL_MS_MAX} ms deadline")]
    Timeout,
    #[error("the plugin exceeded its memory limit")]
    MemoryExhausted,
    #[error("the plugin trapped: {0}")]
    Trapped(String),
    #[error("the plugin could not be run: {0}")]
    Host(String),
}

/// The engine and linker every plugin shares. Dropping it stops the epoch
/// ticker thread.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    ticker_stop: Arc<AtomicBool>,
}

impl Runtime {
    pub fn new() -> Result<Runtime> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
        let mut linker = Linker::new(&engine);
        RailPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).map_err(anyhow::Error::from)?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (ticker_engine, stop) = (engine.clone(), Arc::clone(&ticker_stop));
        std::thread::Builder::new()
            .name("soxara-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(EPOCH_TICK_MS));
                    ticker_engine.increment_epoch();
                }
            })
            .context("spawning the epoch ticker")?;
        Ok(Runtime { engine, linker, ticker_stop })
    }

    /// Compiles a rail component, checks it against the rail world, and asks
    /// it to describe itself.
    pub fn load_rail(&self, path: &Path, context: PluginContext) -> Result<Arc<LoadedRail>> {
        let component = Component::from_file(&self.engine, path)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling {}", path.display()))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(RailPluginPre::new)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} does not fit the soxara:gateway rail world", path.display()))?;
        let mut rail = LoadedRail {
            engine: self.engine.clone(),
            pre,
            context: Arc::new(context),
            path: path.to_path_buf(),
            info: RailInfo { name: String::new(), version: String::new(), methods: vec![], currencies: vec![] },
        };
        rail.info = rail.call(|rail, store| rail.soxara_gateway_rail().call_describe(store))?;
        Ok(Arc::new(rail))
    }
}

impl Runtime {
    /// Compiles an FX-provider component and checks it against the FX world.
    pub fn load_fx(&self, path: &Path, context: PluginContext) -> Result<Arc<LoadedFx>> {
        let component = Component::from_file(&self.engine, path)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling {}", path.display()))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(FxPluginPre::new)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} does not fit the soxara:gateway fx-plugin world", path.display()))?;
        let mut fx = LoadedFx { engine: self.engine.clone(), pre, context: Arc::new(context), name: String::new() };
        let mut store = new_store(&self.engine, &fx.context);
        fx.name = fx
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.soxara_gateway_fx_provider().call_name(&mut store))
            .map_err(classify)?;
        Ok(Arc::new(fx))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// A rail component, compiled and linked, ready to instantiate per call.
pub struct LoadedRail {
    engine: Engine,
    pre: RailPluginPre<HostState>,
    context: Arc<PluginContext>,
    pub path: PathBuf,
    pub info: RailInfo,
}

impl LoadedRail {
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The legal entity this rail moves money under for `method`.
    pub fn entity_for(&self, method: PaymentMethod) -> Option<&str> {
        self.info.methods.iter().find(|m| m.method == method).map(|m| m.entity.as_str())
    }

    pub fn collect(&self, request: &CollectRequest) -> Result<Result<RailOutcome, Failure>, PluginError> {
        self.call(|rail, store| rail.soxara_gateway_rail().call_collect(store, request))
    }

    /// Runs one export in a fresh store with the call deadline and memory cap.
    fn call<T>(
        &self,
        f: impl FnOnce(&RailPlugin, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        let mut store = new_store(&self.engine, &self.context);
        let outcome = self.pre.instantiate(&mut store).and_then(|rail| f(&rail, &mut store));
        outcome.map_err(classify)
    }
}

/// An FX-provider component, compiled and linked, ready to instantiate per call.
pub struct LoadedFx {
    engine: Engine,
    pre: FxPluginPre<HostState>,
    context: Arc<PluginContext>,
    pub name: String,
}

impl LoadedFx {
    /// Asks the provider for base→quote.
    pub fn rate(&self, base: &str, quote: &str) -> Result<Result<ProviderRate, Failure>, PluginError> {
        let mut store = new_store(&self.engine, &self.context);
        let outcome = self
            .pre
            .instantiate(&mut store)
            .and_then(|fx| fx.soxara_gateway_fx_provider().call_get_rate(&mut store, base, quote));
        outcome.map_err(classify)
    }
}

/// A fresh store for one call, with the call deadline and memory cap.
fn new_store(engine: &Engine, context: &Arc<PluginContext>) -> Store<HostState> {
    let limits = StoreLimitsBuilder::new().memory_size(PLUGIN_MEMORY_BYTES_MAX).trap_on_grow_failure(true).build();
    let mut store = Store::new(engine, HostState { plugin: Arc::clone(context), limits });
    store.limiter(|state| &mut state.limits);
    store.set_epoch_deadline(PLUGIN_CALL_MS_MAX.div_ceil(EPOCH_TICK_MS));
    store
}

/// Maps a wasmtime error to what went wrong, for the caller and the logs.
fn classify(err: wasmtime::Error) -> PluginError {
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PluginError::Timeout,
        Some(trap) => PluginError::Trapped(trap.to_string()),
        None => {
            let text = format!("{err:#}");
            if text.contains("memory") && (text.contains("limit") || text.contains("grow")) {
                PluginError::MemoryExhausted
            } else {
                PluginError::Host(text)
            }
        }
    }
}

/// The plugins found in a directory, by world.
#[derive(Default)]
pub struct LoadedPlugins {
    pub rails: Vec<Arc<LoadedRail>>,
    pub fx: Vec<Arc<LoadedFx>>,
}

/// Loads every `*.wasm` in `dir` as a rail or an FX provider, whichever world
/// it fits, with its settings from `settings` (keyed by file stem). A
/// component that fits neither is logged and skipped.
pub fn load_dir(
    runtime: &Runtime,
    dir: &Path,
    settings: &std::collections::BTreeMap<String, crate::config::PluginSettings>,
) -> Result<LoadedPlugins> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the plugin directory {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    paths.sort();
    let mut loaded = LoadedPlugins::default();
    for path in paths {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let setting = settings.get(&name).cloned().unwrap_or_default();
        let context = || PluginContext {
            name: name.clone(),
            config: setting.config.clone(),
            allowed_hosts: setting.allowed_hosts.clone(),
        };
        match runtime.load_rail(&path, context()) {
            Ok(rail) => {
                tracing::info!(rail = rail.name(), version = %rail.info.version, path = %path.display(), "rail loaded");
                loaded.rails.push(rail);
                continue;
            }
            Err(rail_err) => match runtime.load_fx(&path, context()) {
                Ok(fx) => {
                    tracing::info!(fx = %fx.name, path = %path.display(), "FX provider loaded");
                    loaded.fx.push(fx);
                }
                Err(fx_err) => tracing::warn!(
                    path = %path.display(),
                    as_rail = format!("{rail_err:#}"),
                    as_fx = format!("{fx_err:#}"),
                    "plugin not loaded: it fits no world this gateway hosts"
                ),
            },
        }
    }
    Ok(loaded)
}
