//! Which rail serves a payment: test mode only ever reaches the sandbox
//! simulator; live mode only ever reaches rails bound for live use.

use std::sync::Arc;

use super::{LoadedRail, PaymentMethod};
use crate::mode::Mode;

/// The name the sandbox simulator gives itself in `describe`.
pub const SIMULATOR_RAIL: &str = "simulator";

#[derive(Default)]
pub struct Routes {
    simulator: Option<Arc<LoadedRail>>,
    live: Vec<(PaymentMethod, Arc<LoadedRail>)>,
}

impl Routes {
    /// Routes test mode to the simulator among `rails`; binds no live rail.
    pub fn sandbox_only(rails: &[Arc<LoadedRail>]) -> Routes {
        let simulator = rails.iter().find(|r| r.name() == SIMULATOR_RAIL).cloned();
        Routes { simulator, live: Vec::new() }
    }

    /// Binds a live rail for a method (it must say it serves the method).
    pub fn bind_live(&mut self, method: PaymentMethod, rail: Arc<LoadedRail>) -> Result<(), String> {
        if rail.name() == SIMULATOR_RAIL {
            return Err("the simulator can never serve live payments".into());
        }
        if rail.entity_for(method).is_none() {
            return Err(format!("rail {} does not serve {}", rail.name(), method_name(method)));
        }
        self.live.retain(|(m, _)| *m != method);
        self.live.push((method, rail));
        Ok(())
    }

    /// The rail for a payment, or a message saying why there is none.
    pub fn rail_for(&self, mode: Mode, method: PaymentMethod, currency: &str) -> Result<Arc<LoadedRail>, String> {
        let rail = match mode {
            Mode::Test => self.simulator.clone().ok_or_else(|| {
                "the sandbox simulator plugin is not loaded on this gateway; ask the operator to load it".to_string()
            })?,
            Mode::Live => {
                self.live.iter().find(|(m, _)| *m == method).map(|(_, r)| Arc::clone(r)).ok_or_else(|| {
                    format!(
                        "no live rail is bound for {} on this gateway, so live {} payments cannot be made yet; \
                     test keys (sxm_test_…) use the sandbox",
                        method_name(method),
                        method_name(method)
                    )
                })?
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
