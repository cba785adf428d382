//! Which rail serves a payment: test mode reaches the sandbox simulator (or a
//! rail the operator bound for test); live mode only ever reaches rails bound
//! for live use, and never the simulator. A rail serves only the mode its
//! operator configured it for (`plugins.X.mode`, test by default), so a
//! rail holding production credentials can never be bound for test keys,
//! nor a sandbox one for live keys.

use std::sync::Arc;

use super::LoadedRail;
use crate::config::RouteSetting;
use crate::values::method::Method;
use crate::values::mode::Mode;
use crate::values::money::Currency;

/// The name the sandbox simulator gives itself in `describe`.
pub const SIMULATOR_RAIL: &str = "simulator";

/// The plugin bound to a slot (a mode and method for rails, a mode and bill
/// type for billers), and optionally a canary that takes a share of the calls.
pub struct Binding<P = LoadedRail> {
    pub primary: Arc<P>,
    pub canary: Option<(Arc<P>, u8)>,
}

impl<P> Clone for Binding<P> {
    fn clone(&self) -> Binding<P> {
        Binding { primary: Arc::clone(&self.primary), canary: self.canary.clone() }
    }
}

impl<P> Binding<P> {
    /// The plugin for one call: the canary for `percent`% of calls.
    pub fn pick(&self) -> Arc<P> {
        match &self.canary {
            Some((canary, percent)) if rand::random_range(0..100u8) < *percent => Arc::clone(canary),
            _ => Arc::clone(&self.primary),
        }
    }

    /// Whether `plugin` is its primary or its canary.
    pub fn uses(&self, plugin: &P) -> bool {
        let same = |p: &Arc<P>| std::ptr::eq(Arc::as_ptr(p), plugin);
        same(&self.primary) || self.canary.as_ref().is_some_and(|(c, _)| same(c))
    }
}

/// An immutable routing table; the registry swaps in a new one atomically.
#[derive(Clone, Default)]
pub struct Routes {
    simulator: Option<Arc<LoadedRail>>,
    bound: Vec<(Mode, Method, Binding)>,
}

impl Routes {
    /// Test mode goes to the simulator among `rails`, unless `settings` bind
    /// another rail for a method; live mode only to rails bound for it.
    pub fn build(rails: &[Arc<LoadedRail>], settings: &[RouteSetting]) -> Result<Routes, String> {
        let simulator = rails.iter().find(|r| r.name() == SIMULATOR_RAIL && r.mode() == Mode::Test).cloned();
        let mut routes = Routes { simulator, bound: Vec::new() };
        for setting in settings {
            let mode = Mode::parse(&setting.mode).ok_or_else(|| format!("route mode {:?} is unknown", setting.mode))?;
            let method = Method::parse(&setting.method)
                .ok_or_else(|| format!("route method {:?} is unknown", setting.method))?;
            let rail = rails
                .iter()
                .find(|r| r.plugin_name() == setting.plugin)
                .ok_or_else(|| format!("route to {:?}: no such rail plugin is loaded", setting.plugin))?;
            routes.bind(mode, method, Arc::clone(rail))?;
        }
        Ok(routes)
    }

    /// Binds a rail for a mode and method (it must say it serves the method).
    pub fn bind(&mut self, mode: Mode, method: Method, rail: Arc<LoadedRail>) -> Result<(), String> {
        self.set(mode, method, Some(Binding { primary: rail, canary: None }))
    }

    /// Sets or clears the binding for a mode and method, checking every rail in it.
    pub fn set(&mut self, mode: Mode, method: Method, binding: Option<Binding>) -> Result<(), String> {
        if let Some(binding) = &binding {
            let canary = binding.canary.as_ref().map(|(rail, _)| rail);
            for rail in std::iter::once(&binding.primary).chain(canary) {
                if mode == Mode::Live && rail.name() == SIMULATOR_RAIL {
                    return Err("the simulator can never serve live payments".into());
                }
                if rail.mode() != mode {
                    return Err(format!(
                        "{} is configured for {} mode (plugins.{}.mode), so it never serves {mode} payments",
                        rail.id(),
                        rail.mode(),
                        rail.plugin_name()
                    ));
                }
                if rail.entity_for(method).is_none() {
                    return Err(format!("rail {} does not serve {method}", rail.id()));
                }
            }
        }
        self.bound.retain(|(m, p, _)| (*m, *p) != (mode, method));
        if let Some(binding) = binding {
            self.bound.push((mode, method, binding));
        }
        Ok(())
    }

    /// The binding for a mode and method, if the operator made one.
    pub fn binding(&self, mode: Mode, method: Method) -> Option<&Binding> {
        self.bound.iter().find(|(m, p, _)| (*m, *p) == (mode, method)).map(|(_, _, b)| b)
    }

    /// Every binding, for listings.
    pub fn bindings(&self) -> impl Iterator<Item = &(Mode, Method, Binding)> {
        self.bound.iter()
    }

    /// Whether any binding (or the simulator slot) uses `rail`.
    pub fn uses(&self, rail: &LoadedRail) -> bool {
        self.simulator.as_ref().is_some_and(|s| std::ptr::eq(Arc::as_ptr(s), rail))
            || self.bound.iter().any(|(_, _, b)| b.uses(rail))
    }

    /// The rail for a payment, or a message saying why there is none.
    pub fn rail_for(&self, mode: Mode, method: Method, currency: Currency) -> Result<Arc<LoadedRail>, String> {
        let bound = self.binding(mode, method).map(Binding::pick);
        let rail = match (bound, mode) {
            (Some(rail), _) => rail,
            (None, Mode::Test) => self.simulator.clone().ok_or_else(|| {
                "the sandbox simulator plugin is not loaded on this gateway; ask the operator to load it".to_string()
            })?,
            (None, Mode::Live) => {
                return Err(format!(
                    "no live rail is bound for {method} on this gateway, so live {method} payments cannot be made \
                     yet; test keys (sxm_test_…) use the sandbox"
                ));
            }
        };
        if rail.entity_for(method).is_none() {
            return Err(format!("rail {} does not serve {method}", rail.name()));
        }
        if !rail.info.currencies.iter().any(|c| c == currency.code) {
            return Err(format!("rail {} does not accept {currency} for {method}", rail.name()));
        }
        Ok(rail)
    }
}
