//! The registry: every loaded rail version and the routing table. Operators
//! change it while payments flow: the table is replaced atomically, so a call
//! that already has its rail finishes on it and the next call uses the new
//! one. Changes are serialised; reads never wait.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::routes::{Binding, Routes};
use super::{LoadedBiller, LoadedRail, PluginContext, Runtime};
use crate::config::PluginConfigs;
use crate::values::entity::Entities;
use crate::values::method::Method;
use crate::values::mode::Mode;

/// Previous bindings kept per slot for rollback (rails' and billers').
pub const ROLLBACK_DEPTH_MAX: usize = 16;

/// A component operators can load while the gateway serves.
pub enum Compiled {
    Rail(Arc<LoadedRail>),
    Biller(Arc<LoadedBiller>),
}

pub struct Registry {
    runtime: Arc<Runtime>,
    settings: PluginConfigs,
    /// The legal entities a rail may name.
    entities: Entities,
    routes: ArcSwap<Routes>,
    changes: Mutex<Changes>,
}

/// What only operators change, under one lock.
#[derive(Default)]
struct Changes {
    rails: Vec<Arc<LoadedRail>>,
    history: HashMap<(Mode, Method), Vec<Option<Binding>>>,
}

impl Registry {
    pub fn new(
        runtime: Arc<Runtime>,
        settings: PluginConfigs,
        entities: Entities,
        rails: Vec<Arc<LoadedRail>>,
        routes: Routes,
    ) -> Registry {
        Registry {
            runtime,
            settings,
            entities,
            routes: ArcSwap::from_pointee(routes),
            changes: Mutex::new(Changes { rails, history: HashMap::new() }),
        }
    }

    /// The routing table now. Hold it only for one call.
    pub fn routes(&self) -> Arc<Routes> {
        self.routes.load_full()
    }

    /// Every loaded rail version, in load order.
    pub fn rails(&self) -> Vec<Arc<LoadedRail>> {
        self.lock().rails.clone()
    }

    /// The newest loaded rail that calls itself `name` and serves `mode`
    /// (for operations recorded with that rail: never one configured for
    /// the other mode, even if its configuration changed since).
    pub fn rail_named(&self, name: &str, mode: Mode) -> Option<Arc<LoadedRail>> {
        self.lock().rails.iter().rev().find(|r| r.name() == name && r.mode() == mode).cloned()
    }

    /// The newest loaded version of the rail plugin `plugin` (its file stem).
    pub fn rail_for_plugin(&self, plugin: &str) -> Option<Arc<LoadedRail>> {
        self.lock().rails.iter().rev().find(|r| r.plugin_name() == plugin).cloned()
    }

    /// Compiles and checks a rail or biller component, without adding it.
    /// Slow: call it off the async threads.
    pub fn compile(&self, path: &Path) -> Result<Compiled, String> {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).ok_or("the path names no file")?;
        let setting = self.settings.for_plugin(&name);
        let context = || PluginContext::new(name.clone(), setting.clone()).with_clock(self.settings.clock.clone());
        let component = self.runtime.compile(path).map_err(|e| format!("{e:#}"))?;
        match self.runtime.rail_from(&component, path, context(), Some(&self.entities)) {
            Ok(rail) => Ok(Compiled::Rail(rail)),
            Err(rail_err) => match self.runtime.biller_from(&component, path, context()) {
                Ok(biller) => Ok(Compiled::Biller(biller)),
                Err(biller_err) => Err(format!("as a rail: {rail_err:#}; as a biller: {biller_err:#}")),
            },
        }
    }

    /// Adds a compiled rail (unbound), unless its id is loaded or another
    /// loaded file uses its name. (Names once recorded under are bound to
    /// their first file for good: `domain::rail_owners`, checked before.)
    pub fn add(&self, rail: Arc<LoadedRail>) -> Result<Arc<LoadedRail>, String> {
        let mut changes = self.lock();
        if changes.rails.iter().any(|r| r.id() == rail.id()) {
            return Err(format!("{} is already loaded; give the new build another version", rail.id()));
        }
        if super::name_taken(&changes.rails, &rail) {
            return Err(format!("another plugin file already calls itself {:?}; rail names are unique", rail.name()));
        }
        changes.rails.push(Arc::clone(&rail));
        Ok(rail)
    }

    /// Binds `plugin` (an id `name@version`, or a name for its newest
    /// version) to a mode and method, optionally with a canary taking
    /// `percent`% of calls. The previous binding is kept for rollback.
    pub fn bind(&self, mode: Mode, method: Method, plugin: &str, canary: Option<(&str, u8)>) -> Result<(), String> {
        let mut changes = self.lock();
        let primary = find(&changes.rails, plugin)?;
        let canary = match canary {
            Some((_, percent)) if percent > 100 => return Err("a canary percentage is 0 to 100".into()),
            Some((plugin, percent)) => Some((find(&changes.rails, plugin)?, percent)),
            None => None,
        };
        let current = self.routes();
        let mut next = (*current).clone();
        next.set(mode, method, Some(Binding { primary, canary }))?;
        let history = changes.history.entry((mode, method)).or_default();
        history.push(current.binding(mode, method).cloned());
        if history.len() > ROLLBACK_DEPTH_MAX {
            history.remove(0);
        }
        self.routes.store(Arc::new(next));
        Ok(())
    }

    /// Restores the binding that was in place before the last change.
    pub fn rollback(&self, mode: Mode, method: Method) -> Result<(), String> {
        let mut changes = self.lock();
        let previous =
            changes.history.get_mut(&(mode, method)).and_then(Vec::pop).ok_or("no earlier binding to roll back to")?;
        let mut next = (*self.routes()).clone();
        next.set(mode, method, previous)?;
        self.routes.store(Arc::new(next));
        Ok(())
    }

    /// Forgets a rail version that nothing is bound to.
    pub fn unload(&self, id: &str) -> Result<(), String> {
        let mut changes = self.lock();
        let rail = changes.rails.iter().find(|r| r.id() == id).cloned().ok_or_else(|| format!("{id} is not loaded"))?;
        if self.routes().uses(&rail) {
            return Err(format!("{id} is in use; bind something else first"));
        }
        changes.rails.retain(|r| r.id() != id);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Changes> {
        self.changes.lock().expect("registry changes never panic while holding the lock")
    }
}

/// A rail by id (`name@version`) or by name (its newest version).
fn find(rails: &[Arc<LoadedRail>], plugin: &str) -> Result<Arc<LoadedRail>, String> {
    rails
        .iter()
        .rev()
        .find(|r| r.id() == plugin || r.plugin_name() == plugin)
        .cloned()
        .ok_or_else(|| format!("no rail {plugin:?} is loaded"))
}
