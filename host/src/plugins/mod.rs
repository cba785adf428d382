//! Plugins: the wasmtime engine, loading components (rails, FX providers,
//! messengers, billers), and calling them
//! under limits. A plugin that traps, loops or exhausts its memory fails only
//! the call it was in: every call gets a fresh store and instance, and a
//! trapped instance is dropped, never reused.
//!
//! May call: `values`, `config`, `metrics`; never the database.

pub mod billers;
mod bindings;
#[cfg(feature = "compiled-in-simulator")]
mod compiled_in;
pub mod host_imports;
pub mod registry;
pub mod routes;
pub mod traders;
mod wasi;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimitsBuilder, Trap};

pub use billers::LoadedBiller;
use bindings::fx::FxPluginPre;
pub use bindings::fx::exports::soxara::gateway::fx_provider::Rate as ProviderRate;
use bindings::messaging::MessengerPluginPre;
pub use bindings::messaging::exports::soxara::messaging::messenger::{
    Callback as MessengerCallback, CallbackAnswer as MessengerCallbackAnswer, Delivery, DeliveryReport, Message,
    MessengerInfo, Sent,
};
pub use bindings::rail::exports::soxara::gateway::rail::{
    Callback, CallbackEvent, CallbackOutcome, CollectRequest, DisputeNotice, PayoutRequest, RailInfo, RailOutcome,
    RefundRequest, SupportedMethod,
};
pub use bindings::rail::soxara::gateway::http::{HttpError, Request as HttpRequest, Response as HttpResponse};
pub use bindings::rail::soxara::gateway::log::Level as LogLevel;
pub use bindings::rail::soxara::gateway::types::{Failure, Money, PaymentMethod, TransactionStatus};
use bindings::rail::{RailPlugin, RailPluginPre};
pub use host_imports::{HostState, Outside, PluginContext, RealOutside};
pub use traders::LoadedTrader;

pub use crate::config::PluginLimits;
use crate::metrics::Metrics;
use crate::values::entity::{Entities, Entity};
use crate::values::method::Method;
use crate::values::mode::Mode;

/// How often the engine's epoch advances; deadlines are counted in ticks.
const EPOCH_TICK_MS: u64 = 5;
/// Plugin instances alive at once, across all plugins. Calls run on tokio's
/// blocking pool (512 threads by default), so they queue for a thread
/// before they could exhaust these slots.
const POOL_COMPONENT_INSTANCES: u32 = 1_000;
/// Core instances a component may hold: its module, the adapter shims
/// `wit-component` adds, and other toolchains' glue (a componentize-py 0.25
/// component has 14).
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
/// Tables a component may hold (ours have one or two, componentize-py's
/// two). Kept apart from the instance count: every table slot in the pool
/// costs a little on each instantiation (measured: 16 instead of 4 took the
/// instantiate + call mean from about 14 to 16 µs).
const TABLES_PER_COMPONENT: u32 = 4;
/// Linear memories a component may hold (ours have one).
const MEMORIES_PER_COMPONENT: u32 = 2;
const WASM_PAGE_BYTES: usize = 64 << 10;
/// How much of a pooled memory (and table) is zeroed with `memset` rather
/// than handed back to the kernel between calls. A plugin built with a small
/// stack touches little more than this per call, so the next call takes no
/// page faults; measured by `cargo xtask bench` (docs/performance.md).
const KEEP_RESIDENT_MEMORY_BYTES: usize = 256 << 10;
const KEEP_RESIDENT_TABLE_BYTES: usize = 64 << 10;
/// The interfaces through which a plugin cannot act on the world: it may
/// use the shared types, log, read the clock and its own configuration.
/// Anything else it imports (outbound HTTP, a cache kept between calls,
/// WASI, an interface of another version, which may have gained a
/// function with an effect) may act outside its call.
const INERT_IMPORTS: [&str; 4] = [
    "soxara:gateway/types@0.1.0",
    "soxara:gateway/log@0.1.0",
    "soxara:gateway/clock@0.1.0",
    "soxara:gateway/config@0.1.0",
];

/// Why a plugin call produced no answer. Distinct from a `Failure`, which is
/// the plugin's (or its provider's) own answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    #[error("the plugin exceeded its {ms} ms deadline")]
    Timeout { ms: u64 },
    #[error("the plugin exceeded its memory limit of {bytes} bytes")]
    MemoryExhausted { bytes: usize },
    #[error("the plugin trapped: {0}")]
    Trapped(String),
    #[error("the plugin returned malformed output: {0}")]
    MalformedOutput(String),
    #[error("the plugin could not be run: {0}")]
    Host(String),
    /// Every instance slot was in use: no plugin code ran, so no provider
    /// can have been asked to act.
    #[error("every plugin instance slot is in use; the plugin was not called")]
    Busy,
}

/// The engine and linker every plugin shares. Dropping it stops the epoch
/// ticker thread.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    limits: PluginLimits,
    metrics: Arc<Metrics>,
    ticker_stop: Arc<AtomicBool>,
}

impl Runtime {
    /// `memory_ceiling`: the most memory any plugin may be allowed (the
    /// default limit or an override). `cache_dir`: where compiled code is
    /// kept between starts, so that a restart with unchanged components does
    /// not compile them again.
    pub fn new(
        limits: PluginLimits,
        memory_ceiling: usize,
        metrics: Arc<Metrics>,
        cache_dir: Option<&Path>,
    ) -> Result<Runtime> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // Instances come from a pool of preallocated slots: a fresh instance
        // per call then costs microseconds instead of mapping and unmapping
        // its memory every time. Each slot reserves only the plugin memory
        // ceiling (not wasmtime's default 4 GiB), so many gateways (or test
        // servers) fit in one address space; the price is explicit bounds
        // checks, which are cheap next to a payment.
        let slot_bytes = memory_ceiling.max(limits.memory_bytes_max).next_multiple_of(WASM_PAGE_BYTES);
        let mut pool = PoolingAllocationConfig::new();
        // Per-component caps make every slot count fit a whole component, so
        // 1,000 components can always run at once; a component needing more
        // is refused when it is loaded, not under load.
        pool.total_component_instances(POOL_COMPONENT_INSTANCES)
            .total_core_instances(POOL_COMPONENT_INSTANCES * CORE_INSTANCES_PER_COMPONENT)
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .total_memories(POOL_COMPONENT_INSTANCES * MEMORIES_PER_COMPONENT)
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .total_tables(POOL_COMPONENT_INSTANCES * TABLES_PER_COMPONENT)
            .max_tables_per_component(TABLES_PER_COMPONENT)
            .max_memory_size(slot_bytes)
            .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY_BYTES)
            .table_keep_resident(KEEP_RESIDENT_TABLE_BYTES);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        config.memory_reservation(u64::try_from(slot_bytes).context("memory ceiling")?);
        if let Some(dir) = cache_dir {
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(dir);
            config.cache(Some(wasmtime::Cache::new(cache).map_err(anyhow::Error::from)?));
        }
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
        let mut linker = Linker::new(&engine);
        RailPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).map_err(anyhow::Error::from)?;
        // Deny-all WASI for components from other toolchains (wasi.rs).
        wasi::add_to_linker(&mut linker).map_err(anyhow::Error::from)?;
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
        Ok(Runtime { engine, linker, limits, metrics, ticker_stop })
    }

    /// Compiles a component (or takes its code from the cache).
    pub fn compile(&self, path: &Path) -> Result<Component> {
        Component::from_file(&self.engine, path)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling {}", path.display()))
    }

    /// Compiles a rail component, checks it against the rail world, and asks
    /// it to describe itself.
    /// Any entity it names is taken as it is: for tools that run a rail
    /// without a ledger (the testkit); the gateway checks them
    /// (`rail_from` with its entities).
    pub fn load_rail(&self, path: &Path, context: PluginContext) -> Result<Arc<LoadedRail>> {
        self.rail_from(&self.compile(path)?, path, context, None)
    }

    /// `load_rail` for a compiled component.
    fn rail_from(
        &self,
        component: &Component,
        path: &Path,
        context: PluginContext,
        entities: Option<&Entities>,
    ) -> Result<Arc<LoadedRail>> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .and_then(RailPluginPre::new)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} does not fit the soxara:gateway rail world", path.display()))?;
        let mut rail = LoadedRail {
            acts_outside: acts_outside(component, &self.engine),
            code: RailCode::Component { engine: self.engine.clone(), pre },
            limits: self.limits.with(&context.limit_overrides),
            context: Arc::new(context),
            metrics: Arc::clone(&self.metrics),
            path: path.to_path_buf(),
            info: RailInfo { name: String::new(), version: String::new(), methods: vec![], currencies: vec![] },
            entities: Vec::new(),
        };
        rail.info = rail.call(|rail, store| rail.soxara_gateway_rail().call_describe(store))?;
        rail.entities = resolve_entities(&rail.info, entities)
            .with_context(|| format!("{} names a legal entity that is not configured", path.display()))?;
        Ok(Arc::new(rail))
    }

    /// The simulator compiled into the host, standing in for `simulator`'s
    /// component: only for the benchmark's baseline.
    #[cfg(feature = "compiled-in-simulator")]
    pub fn compiled_in_simulator(&self, component: &LoadedRail) -> Arc<LoadedRail> {
        Arc::new(LoadedRail {
            code: RailCode::CompiledIn,
            acts_outside: component.acts_outside,
            context: Arc::clone(&component.context),
            limits: component.limits,
            metrics: Arc::clone(&self.metrics),
            path: component.path.clone(),
            info: compiled_in::describe(),
            entities: component.entities.clone(),
        })
    }
}

impl Runtime {
    /// Checks a compiled component against the FX world and asks its name.
    fn fx_from(&self, component: &Component, path: &Path, context: PluginContext) -> Result<Arc<LoadedFx>> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .and_then(FxPluginPre::new)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} does not fit the soxara:gateway fx-plugin world", path.display()))?;
        let mut fx = LoadedFx {
            engine: self.engine.clone(),
            pre,
            limits: self.limits.with(&context.limit_overrides),
            context: Arc::new(context),
            metrics: Arc::clone(&self.metrics),
            name: String::new(),
        };
        let mut store = new_store(&self.engine, &fx.context, &fx.limits);
        fx.name = fx
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.soxara_gateway_fx_provider().call_name(&mut store))
            .map_err(|e| classify(e, &fx.limits))?;
        Ok(Arc::new(fx))
    }

    /// Checks a compiled component against the messenger world and asks it
    /// to describe itself.
    fn messenger_from(
        &self,
        component: &Component,
        path: &Path,
        context: PluginContext,
    ) -> Result<Arc<LoadedMessenger>> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .and_then(MessengerPluginPre::new)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} does not fit the soxara:messaging messenger world", path.display()))?;
        let mut messenger = LoadedMessenger {
            engine: self.engine.clone(),
            pre,
            limits: self.limits.with(&context.limit_overrides),
            context: Arc::new(context),
            metrics: Arc::clone(&self.metrics),
            info: MessengerInfo { name: String::new(), version: String::new() },
        };
        messenger.info = messenger.call(|plugin, store| plugin.soxara_messaging_messenger().call_describe(store))?;
        Ok(Arc::new(messenger))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Whether a component imports anything besides [`INERT_IMPORTS`], read
/// from its type when it is loaded (never from its name): one that does
/// not cannot act on the world, so calling it has no effect to lose or
/// repeat.
fn acts_outside(component: &Component, engine: &Engine) -> bool {
    component.component_type().imports(engine).any(|(name, _)| !INERT_IMPORTS.contains(&name))
}

/// A rail component, compiled and linked, ready to instantiate per call.
pub struct LoadedRail {
    code: RailCode,
    /// Whether it imports a way to act on the world ([`acts_outside`]).
    acts_outside: bool,
    context: Arc<PluginContext>,
    limits: PluginLimits,
    metrics: Arc<Metrics>,
    pub path: PathBuf,
    pub info: RailInfo,
    /// The configured entity it named for each method it serves.
    entities: Vec<(Method, Entity)>,
}

/// What runs when a rail is called.
enum RailCode {
    Component {
        engine: Engine,
        pre: RailPluginPre<HostState>,
    },
    #[cfg(feature = "compiled-in-simulator")]
    CompiledIn,
}

impl LoadedRail {
    /// The name the rail gives itself (`describe`).
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The name the operator knows it by: its component's file stem.
    pub fn plugin_name(&self) -> &str {
        &self.context.name
    }

    /// `plugin_name@version`: unique among loaded rails.
    pub fn id(&self) -> String {
        format!("{}@{}", self.context.name, self.info.version)
    }

    /// The one mode this rail serves, as the operator configured it.
    pub fn mode(&self) -> Mode {
        self.context.mode
    }

    /// The legal entity this rail moves money under for `method`, if it
    /// serves it.
    pub fn entity_for(&self, method: Method) -> Option<Entity> {
        self.entities.iter().find(|(m, _)| *m == method).map(|(_, entity)| entity.clone())
    }

    /// Whether a call may act on the world (the component imports anything
    /// besides the inert interfaces: outbound HTTP, its cache, WASI…). One
    /// that cannot is asked before its operation is claimed, and the claim
    /// and the answer are committed together
    /// (`lifecycle::submit_in_one_write`).
    pub fn acts_outside(&self) -> bool {
        self.acts_outside
    }

    /// The methods it serves.
    pub fn methods(&self) -> impl Iterator<Item = Method> + '_ {
        self.entities.iter().map(|(method, _)| *method)
    }

    pub fn collect(&self, request: &CollectRequest) -> Result<Result<RailOutcome, Failure>, PluginError> {
        self.checked("collect", |rail| match &rail.code {
            RailCode::Component { .. } => {
                rail.call(|plugin, store| plugin.soxara_gateway_rail().call_collect(store, request))
            }
            #[cfg(feature = "compiled-in-simulator")]
            RailCode::CompiledIn => Ok(compiled_in::collect(request)),
        })
    }

    /// Asks where a payment left processing stands. A `Failure` means the
    /// rail could not find out, not that the payment failed.
    pub fn status(
        &self,
        request: &CollectRequest,
        provider_reference: Option<&str>,
    ) -> Result<Result<RailOutcome, Failure>, PluginError> {
        self.checked("status", |rail| {
            rail.call(|plugin, store| plugin.soxara_gateway_rail().call_status(store, request, provider_reference))
        })
    }

    /// Asks the rail to refund (part of) a payment it collected.
    pub fn refund(&self, request: &RefundRequest) -> Result<Result<RailOutcome, Failure>, PluginError> {
        self.checked("refund", |rail| {
            rail.call(|plugin, store| plugin.soxara_gateway_rail().call_refund(store, request))
        })
    }

    /// Asks where a refund left processing stands (a `Failure`: could not find out).
    pub fn refund_status(
        &self,
        request: &RefundRequest,
        provider_reference: Option<&str>,
    ) -> Result<Result<RailOutcome, Failure>, PluginError> {
        self.checked("refund-status", |rail| {
            rail.call(|plugin, store| {
                plugin.soxara_gateway_rail().call_refund_status(store, request, provider_reference)
            })
        })
    }

    /// Asks the rail to pay out (a merchant's settlement).
    pub fn payout(&self, request: &PayoutRequest) -> Result<Result<RailOutcome, Failure>, PluginError> {
        self.checked("payout", |rail| {
            rail.call(|plugin, store| plugin.soxara_gateway_rail().call_payout(store, request))
        })
    }

    /// Asks where a payout left processing stands (a `Failure`: could not find out).
    pub fn payout_status(
        &self,
        request: &PayoutRequest,
        provider_reference: Option<&str>,
    ) -> Result<Result<RailOutcome, Failure>, PluginError> {
        self.checked("payout-status", |rail| {
            rail.call(|plugin, store| {
                plugin.soxara_gateway_rail().call_payout_status(store, request, provider_reference)
            })
        })
    }

    /// Lets the rail authenticate and read a provider callback.
    pub fn handle_callback(&self, callback: &Callback) -> Result<Result<CallbackEvent, Failure>, PluginError> {
        let chars_max = self.limits.output_chars_max;
        let started = Instant::now();
        let answer = self
            .call(|plugin, store| plugin.soxara_gateway_rail().call_handle_callback(store, callback))
            .and_then(|answer| {
                check_callback_event(&answer, chars_max).map_err(PluginError::MalformedOutput)?;
                if let Ok(CallbackEvent::Payment(CallbackOutcome {
                    outcome: RailOutcome { redirect_url: Some(url), .. },
                    ..
                })) = &answer
                {
                    check_redirect(&self.context.redirect_hosts, url, chars_max)
                        .map_err(PluginError::MalformedOutput)?;
                }
                Ok(answer)
            });
        let elapsed = started.elapsed().as_secs_f64();
        self.metrics.plugin_call(self.plugin_name(), "handle-callback", outcome_label(&answer), elapsed);
        answer
    }

    /// Runs one rail export, checks its answer, and records the call's metrics.
    fn checked(
        &self,
        export: &str,
        f: impl FnOnce(&LoadedRail) -> Result<Result<RailOutcome, Failure>, PluginError>,
    ) -> Result<Result<RailOutcome, Failure>, PluginError> {
        let started = Instant::now();
        let answer = f(self).and_then(|a| {
            check_answer(&a, self.limits.output_chars_max).map_err(PluginError::MalformedOutput)?;
            if let Ok(RailOutcome { redirect_url: Some(url), .. }) = &a {
                check_redirect(&self.context.redirect_hosts, url, self.limits.output_chars_max)
                    .map_err(PluginError::MalformedOutput)?;
            }
            Ok(a)
        });
        self.metrics.plugin_call(self.plugin_name(), export, outcome_label(&answer), started.elapsed().as_secs_f64());
        answer
    }

    /// Runs one export in a fresh store with the call deadline and memory cap.
    fn call<T>(
        &self,
        f: impl FnOnce(&RailPlugin, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        let (engine, pre) = match &self.code {
            RailCode::Component { engine, pre } => (engine, pre),
            #[cfg(feature = "compiled-in-simulator")]
            RailCode::CompiledIn => {
                return Err(PluginError::Host("a compiled-in rail has no component to instantiate".into()));
            }
        };
        run_once(engine, &self.context, &self.limits, |store| pre.instantiate(store), f)
    }
}

/// Refuses answers no honest rail gives: oversized strings, failure codes
/// that are not `UPPER_SNAKE_CASE`, a failed outcome without a failure.
fn check_answer(answer: &Result<RailOutcome, Failure>, chars_max: usize) -> Result<(), String> {
    let check_failure = |f: &Failure| -> Result<(), String> {
        let code_ok = !f.code.is_empty()
            && f.code.len() <= 64
            && f.code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !code_ok {
            return Err(format!(
                "failure code {:?} is not UPPER_SNAKE_CASE of at most 64 characters",
                truncate(&f.code)
            ));
        }
        if f.message.chars().count() > chars_max {
            return Err(format!("failure message longer than {chars_max} characters"));
        }
        Ok(())
    };
    match answer {
        Err(failure) => check_failure(failure),
        Ok(outcome) => {
            if outcome.provider_reference.as_ref().is_some_and(|r| r.chars().count() > chars_max) {
                return Err(format!("provider reference longer than {chars_max} characters"));
            }

            match (&outcome.status, &outcome.failure) {
                (TransactionStatus::Failed, None) => Err("a failed outcome without a failure".into()),
                (_, Some(failure)) => check_failure(failure),
                _ => Ok(()),
            }
        }
    }
}

/// A customer may only be sent to an https page on a host the operator
/// allowed for this rail: a plugin is untrusted, and a redirect is shown to
/// merchants as where to send their customers.
fn check_redirect(allowed: &[String], url: &str, chars_max: usize) -> Result<(), String> {
    if !url.starts_with("https://") || url.chars().count() > chars_max || url.chars().any(char::is_control) {
        return Err(format!("redirect URL is not an https URL of at most {chars_max} characters"));
    }
    host_imports::allowed_host(allowed, url)
        .map(drop)
        .map_err(|why| format!("redirect refused: {why} (redirect_hosts)"))
}

/// `check_answer` for callbacks: sane ids, a dispute of a positive amount.
fn check_callback_event(answer: &Result<CallbackEvent, Failure>, chars_max: usize) -> Result<(), String> {
    let sane_id = |id: &str, what: &str| {
        if id.is_empty() || id.chars().count() > chars_max {
            Err(format!("a callback event without a sane {what}"))
        } else {
            Ok(())
        }
    };
    match answer {
        Err(failure) => check_answer(&Err(failure.clone()), chars_max),
        Ok(CallbackEvent::Payment(report)) => {
            sane_id(&report.payment_id, "payment id")?;
            check_answer(&Ok(report.outcome.clone()), chars_max)
        }
        Ok(CallbackEvent::DisputeOpened(dispute)) => {
            sane_id(&dispute.payment_id, "payment id")?;
            sane_id(&dispute.provider_dispute_id, "dispute id")?;
            if dispute.money.amount == 0 || dispute.reason.chars().count() > chars_max {
                return Err("a dispute of no amount, or with an oversized reason".into());
            }
            Ok(())
        }
        Ok(CallbackEvent::Ignored) => Ok(()),
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

/// An FX-provider component, compiled and linked, ready to instantiate per call.
pub struct LoadedFx {
    engine: Engine,
    pre: FxPluginPre<HostState>,
    context: Arc<PluginContext>,
    limits: PluginLimits,
    metrics: Arc<Metrics>,
    pub name: String,
}

impl LoadedFx {
    /// Asks the provider for base→quote.
    pub fn rate(&self, base: &str, quote: &str) -> Result<Result<ProviderRate, Failure>, PluginError> {
        let started = Instant::now();
        let mut store = new_store(&self.engine, &self.context, &self.limits);
        let answer = self
            .pre
            .instantiate(&mut store)
            .and_then(|fx| fx.soxara_gateway_fx_provider().call_get_rate(&mut store, base, quote))
            .map_err(|e| classify(e, &self.limits));
        self.metrics.plugin_call(
            &self.context.name,
            "get-rate",
            outcome_label(&answer),
            started.elapsed().as_secs_f64(),
        );
        answer
    }
}

/// A messenger component, compiled and linked, ready to instantiate per call.
pub struct LoadedMessenger {
    engine: Engine,
    pre: MessengerPluginPre<HostState>,
    context: Arc<PluginContext>,
    limits: PluginLimits,
    metrics: Arc<Metrics>,
    pub info: MessengerInfo,
}

impl LoadedMessenger {
    /// The name the operator knows it by: its component's file stem.
    pub fn plugin_name(&self) -> &str {
        &self.context.name
    }

    /// The one mode this messenger serves, as the operator configured it.
    pub fn mode(&self) -> Mode {
        self.context.mode
    }

    /// Asks the channel to deliver one message.
    pub fn send(&self, message: &Message) -> Result<Result<Sent, Failure>, PluginError> {
        let started = Instant::now();
        let chars_max = self.limits.output_chars_max;
        let answer = self.call(|plugin, store| plugin.soxara_messaging_messenger().call_send(store, message)).and_then(
            |answer| {
                match &answer {
                    Ok(sent) if sent.provider_reference.as_ref().is_some_and(|r| r.chars().count() > chars_max) => {
                        return Err(PluginError::MalformedOutput(format!(
                            "provider reference longer than {chars_max} characters"
                        )));
                    }
                    Err(failure) => {
                        check_answer(&Err(failure.clone()), chars_max).map_err(PluginError::MalformedOutput)?
                    }
                    Ok(_) => {}
                }
                Ok(answer)
            },
        );
        self.metrics.plugin_call(self.plugin_name(), "send", outcome_label(&answer), started.elapsed().as_secs_f64());
        answer
    }

    /// Lets the messenger authenticate and read a callback from its channel.
    pub fn handle_callback(
        &self,
        callback: &MessengerCallback,
    ) -> Result<Result<MessengerCallbackAnswer, Failure>, PluginError> {
        let started = Instant::now();
        let chars_max = self.limits.output_chars_max;
        let answer = self
            .call(|plugin, store| plugin.soxara_messaging_messenger().call_handle_callback(store, callback))
            .and_then(|answer| {
                match &answer {
                    Ok(reply) => check_callback_answer(reply, chars_max).map_err(PluginError::MalformedOutput)?,
                    Err(failure) => {
                        check_answer(&Err(failure.clone()), chars_max).map_err(PluginError::MalformedOutput)?
                    }
                }
                Ok(answer)
            });
        let elapsed = started.elapsed().as_secs_f64();
        self.metrics.plugin_call(self.plugin_name(), "handle-callback", outcome_label(&answer), elapsed);
        answer
    }

    fn call<T>(
        &self,
        f: impl FnOnce(&bindings::messaging::MessengerPlugin, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        run_once(&self.engine, &self.context, &self.limits, |store| self.pre.instantiate(store), f)
    }
}

/// The most delivery reports one callback may carry.
const DELIVERY_REPORTS_MAX: usize = 1_000;

/// `check_answer` for a messenger's callback answer: a real HTTP status, a
/// short body, sane references and failures.
fn check_callback_answer(answer: &MessengerCallbackAnswer, chars_max: usize) -> Result<(), String> {
    if !(200..600).contains(&answer.status) || answer.body.chars().count() > chars_max {
        return Err(format!("an answer of status {} or a body over {chars_max} characters", answer.status));
    }
    if answer.reports.len() > DELIVERY_REPORTS_MAX {
        return Err(format!("more than {DELIVERY_REPORTS_MAX} delivery reports"));
    }
    for report in &answer.reports {
        if report.provider_reference.is_empty() || report.provider_reference.chars().count() > chars_max {
            return Err("a delivery report without a sane provider reference".into());
        }
        if let Delivery::Failed(failure) = &report.delivery {
            check_answer(&Err(failure.clone()), chars_max)?;
        }
    }
    Ok(())
}

/// How a call ended, for metrics: `ok` (an answer), `failure` (a refusal
/// as a value), or the kind of plugin error.
fn outcome_label<T>(answer: &Result<Result<T, Failure>, PluginError>) -> &'static str {
    match answer {
        Ok(Ok(_)) => "ok",
        Ok(Err(_)) => "failure",
        Err(e) => e.kind(),
    }
}

impl PluginError {
    /// A short, stable name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Timeout { .. } => "timeout",
            PluginError::MemoryExhausted { .. } => "memory",
            PluginError::Trapped(_) => "trap",
            PluginError::MalformedOutput(_) => "malformed",
            PluginError::Host(_) => "host",
            PluginError::Busy => "busy",
        }
    }
}

/// Runs one export of any world in a fresh store and instance (`instantiate`
/// makes it), with the call deadline and memory cap; what the plugin wrote
/// to WASI's stdout/stderr goes to its log.
fn run_once<P, T>(
    engine: &Engine,
    context: &Arc<PluginContext>,
    limits: &PluginLimits,
    instantiate: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<P>,
    f: impl FnOnce(&P, &mut Store<HostState>) -> wasmtime::Result<T>,
) -> Result<T, PluginError> {
    let mut store = new_store(engine, context, limits);
    let outcome = instantiate(&mut store).and_then(|plugin| f(&plugin, &mut store));
    if let Some(wasi) = &store.data().wasi {
        wasi.flush_to_log(context);
    }
    outcome.map_err(|e| classify(e, limits))
}

/// A fresh store for one call, with the call deadline and memory cap.
fn new_store(engine: &Engine, context: &Arc<PluginContext>, limits: &PluginLimits) -> Store<HostState> {
    let store_limits =
        StoreLimitsBuilder::new().memory_size(limits.memory_bytes_max).trap_on_grow_failure(true).build();
    let mut store = Store::new(engine, HostState { plugin: Arc::clone(context), limits: store_limits, wasi: None });
    store.limiter(|state| &mut state.limits);
    store.set_epoch_deadline(limits.call_ms_max.div_ceil(EPOCH_TICK_MS));
    store
}

/// Maps a wasmtime error to what went wrong, for the caller and the logs.
fn classify(err: wasmtime::Error, limits: &PluginLimits) -> PluginError {
    if err.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
        return PluginError::Busy;
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PluginError::Timeout { ms: limits.call_ms_max },
        Some(trap) => PluginError::Trapped(trap.to_string()),
        None => {
            let text = format!("{err:#}");
            if text.contains("memory") && (text.contains("limit") || text.contains("grow")) {
                PluginError::MemoryExhausted { bytes: limits.memory_bytes_max }
            } else {
                PluginError::Host(text)
            }
        }
    }
}

/// The configured entity of each method a rail serves; an error names the
/// first entity that is not configured.
fn resolve_entities(info: &RailInfo, entities: Option<&Entities>) -> Result<Vec<(Method, Entity)>> {
    info.methods
        .iter()
        .map(|m| {
            let entity = match entities {
                Some(entities) => entities.resolve(&m.entity).map_err(|why| anyhow::anyhow!(why))?,
                None => Entity::unchecked(&m.entity),
            };
            Ok((Method::from(m.method), entity))
        })
        .collect()
}

/// Runs a plugin call on the blocking pool (calls block on the guest and
/// on its HTTP), mapping a panic to a host error.
pub async fn call_blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, PluginError> + Send + 'static,
) -> Result<T, PluginError> {
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or_else(|e| Err(PluginError::Host(format!("the call panicked: {e}"))))
}

/// The gateway's payment methods are the WIT's.
impl From<PaymentMethod> for Method {
    fn from(method: PaymentMethod) -> Method {
        match method {
            PaymentMethod::Card => Method::Card,
            PaymentMethod::MtnMomo => Method::MtnMomo,
            PaymentMethod::OrangeMoney => Method::OrangeMoney,
            PaymentMethod::Wallet => Method::Wallet,
        }
    }
}

impl From<Method> for PaymentMethod {
    fn from(method: Method) -> PaymentMethod {
        match method {
            Method::Card => PaymentMethod::Card,
            Method::MtnMomo => PaymentMethod::MtnMomo,
            Method::OrangeMoney => PaymentMethod::OrangeMoney,
            Method::Wallet => PaymentMethod::Wallet,
        }
    }
}

/// Whether another plugin file already uses `rail`'s name in its mode.
/// Payments record the rail by name (and mode), and callbacks come in by
/// file stem: one file per name and mode keeps a plugin from settling
/// another's payments. (The same rail may serve test and live from two
/// files, each configured for its mode.)
pub fn name_taken(rails: &[Arc<LoadedRail>], rail: &LoadedRail) -> bool {
    rails.iter().any(|r| r.name() == rail.name() && r.mode() == rail.mode() && r.plugin_name() != rail.plugin_name())
}

/// The plugins found in a directory, by world.
#[derive(Default)]
pub struct LoadedPlugins {
    pub rails: Vec<Arc<LoadedRail>>,
    pub fx: Vec<Arc<LoadedFx>>,
    pub messengers: Vec<Arc<LoadedMessenger>>,
    pub billers: Vec<Arc<LoadedBiller>>,
    pub traders: Vec<Arc<LoadedTrader>>,
}

/// Loads every `*.wasm` in `dir` as a rail, an FX provider, a messenger, a biller or a trader, whichever world
/// it fits, with its settings from `settings` (by file stem). A
/// component that fits neither is logged and skipped.
pub fn load_dir(
    runtime: &Runtime,
    dir: &Path,
    settings: &crate::config::PluginConfigs,
    entities: &Entities,
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
        let setting = settings.for_plugin(&name);
        let context = || PluginContext::new(name.clone(), setting.clone()).with_clock(settings.clock.clone());
        // Compiled once, then tried against each world.
        let component = match runtime.compile(&path) {
            Ok(component) => component,
            Err(err) => {
                tracing::warn!(path = %path.display(), error = format!("{err:#}"), "plugin not loaded");
                continue;
            }
        };
        match runtime.rail_from(&component, &path, context(), Some(entities)) {
            Ok(rail) if name_taken(&loaded.rails, &rail) => tracing::warn!(
                path = %path.display(),
                rail = rail.name(),
                "rail not loaded: another plugin file already calls itself by this name"
            ),
            Ok(rail) => {
                tracing::info!(rail = rail.name(), version = %rail.info.version, path = %path.display(), "rail loaded");
                loaded.rails.push(rail);
                continue;
            }
            Err(rail_err) => match runtime.fx_from(&component, &path, context()) {
                Ok(fx) => {
                    tracing::info!(fx = %fx.name, path = %path.display(), "FX provider loaded");
                    loaded.fx.push(fx);
                }
                Err(fx_err) => match runtime.messenger_from(&component, &path, context()) {
                    Ok(messenger) => {
                        tracing::info!(messenger = %messenger.info.name, path = %path.display(), "messenger loaded");
                        loaded.messengers.push(messenger);
                    }
                    Err(messenger_err) => match runtime.biller_from(&component, &path, context()) {
                        Ok(biller) => {
                            tracing::info!(biller = %biller.info.name, path = %path.display(), "biller loaded");
                            loaded.billers.push(biller);
                        }
                        Err(biller_err) => match runtime.trader_from(&component, &path, context()) {
                            Ok(trader) => {
                                tracing::info!(trader = %trader.info.name, path = %path.display(), "trader loaded");
                                loaded.traders.push(trader);
                            }
                            Err(trader_err) => tracing::warn!(
                                path = %path.display(),
                                as_rail = format!("{rail_err:#}"),
                                as_fx = format!("{fx_err:#}"),
                                as_messenger = format!("{messenger_err:#}"),
                                as_biller = format!("{biller_err:#}"),
                                as_trader = format!("{trader_err:#}"),
                                "plugin not loaded: it fits no world this gateway hosts"
                            ),
                        },
                    },
                },
            },
        }
    }
    Ok(loaded)
}
