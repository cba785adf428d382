//! Which rail serves a payment: test mode reaches the sandbox simulator (or a
//! rail the operator bound for test); live mode only ever reaches rails bound
//! for live use, and never the simulator.

use std::sync::Arc;

use super::{LoadedRail, PaymentMethod};
use crate::config::RouteSetting;
use crate::mode::Mode;

/// The name the sandbox simulator gives itself in `describe`.
pub const SIMULATOR_RAIL: &str = "simulator";

#[derive(Default)]
pub struct Routes {
    simulator: Option<Arc<LoadedRail>>,
    bound: Vec<(Mode, PaymentMethod, Arc<LoadedRail>)>,
}

impl Routes {
    /// Test mode goes to the simulator among `rails`, unless `settings` bind
    /// another rail for a method; live mode only to rails bound for it.
    pub fn build(rails: &[Arc<LoadedRail>], settings: &[RouteSetting]) -> Result<Routes, String> {
        let simulator = rails.iter().find(|r| r.name() == SIMULATOR_RAIL).cloned();
        let mut routes = Routes { simulator, bound: Vec::new() };
        for setting in settings {
            let mode = Mode::parse(&setting.mode).ok_or_else(|| format!("route mode {:?} is unknown", setting.mode))?;
            let method =
                parse_method(&setting.method).ok_or_else(|| format!("route method {:?} is unknown", setting.method))?;
            let rail = rails
                .iter()
                .find(|r| r.plugin_name() == setting.plugin)
                .ok_or_else(|| format!("route to {:?}: no such rail plugin is loaded", setting.plugin))?;
            routes.bind(mode, method, Arc::clone(rail))?;
        }
        Ok(routes)
    }

    /// Binds a rail for a mode and method (it must say it serves the method).
    pub fn bind(&mut self, mode: Mode, method: PaymentMethod, rail: Arc<LoadedRail>) -> Result<(), String> {
        if mode == Mode::Live && rail.name() == SIMULATOR_RAIL {
            return Err("the simulator can never serve live payments".into());
        }
        if rail.entity_for(method).is_none() {
            return Err(format!("rail {} does not serve {}", rail.name(), method_name(method)));
        }
        self.bound.retain(|(m, p, _)| (*m, *p) != (mode, method));
        self.bound.push((mode, method, rail));
        Ok(())
    }

    /// The rail for a payment, or a message saying why there is none.
    pub fn rail_for(&self, mode: Mode, method: PaymentMethod, currency: &str) -> Result<Arc<LoadedRail>, String> {
        let bound = self.bound.iter().find(|(m, p, _)| (*m, *p) == (mode, method)).map(|(_, _, r)| Arc::clone(r));
        let rail = match (bound, mode) {
            (Some(rail), _) => rail,
            (None, Mode::Test) => self.simulator.clone().ok_or_else(|| {
                "the sandbox simulator plugin is not loaded on this gateway; ask the operator to load it".to_string()
            })?,
            (None, Mode::Live) => {
                return Err(format!(
                    "no live rail is bound for {} on this gateway, so live {} payments cannot be made yet; \
                     test keys (sxm_test_…) use the sandbox",
                    method_name(method),
                    method_name(method)
                ));
            }
        };
        if rail.entity_for(method).is_none() {
            return Err(format!("rail {} does not serve {}", rail.name(), method_name(method)));
        }
        if !rail.info.currencies.iter().any(|c| c == currency) {
            return Err(format!("rail {} does not accept {currency} for {}", rail.name(), method_name(method)));
        }
        Ok(rail)
    }
}

/// The API's name for a method (`mtn_momo`, …).
pub fn method_name(method: PaymentMethod) -> &'static str {
    match method {
        PaymentMethod::Card => "card",
        PaymentMethod::MtnMomo => "mtn_momo",
        PaymentMethod::OrangeMoney => "orange_money",
        PaymentMethod::Wallet => "wallet",
    }
}

/// The method for an API name.
pub fn parse_method(name: &str) -> Option<PaymentMethod> {
    match name {
        "card" => Some(PaymentMethod::Card),
        "mtn_momo" => Some(PaymentMethod::MtnMomo),
        "orange_money" => Some(PaymentMethod::OrangeMoney),
        "wallet" => Some(PaymentMethod::Wallet),
        _ => None,
    }
}
