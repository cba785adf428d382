//! Which biller plugin sells each bill type in each mode. Test mode uses
//! the sandbox biller for every type unless a route says otherwise; live
//! mode sells only what `[[bills.routes]]` binds. A biller serves the one
//! mode its plugin is configured for, so a test key can never reach a
//! biller holding production credentials.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::BillSettings;
use crate::plugins::LoadedBiller;
use crate::plugins::billers::BillType as WitBillType;
use crate::values::mode::Mode;
use crate::values::status::BillType;

/// The sandbox biller's name: it never sells in live mode.
pub const SANDBOX_BILLER: &str = "biller-sandbox";

/// The billers bound to each mode and bill type.
pub struct Billers {
    bound: BTreeMap<(Mode, BillType), Arc<LoadedBiller>>,
    loaded: Vec<Arc<LoadedBiller>>,
}

impl Billers {
    /// Binds the loaded billers as `settings` route them. A route naming a
    /// biller that is not loaded, serves the other mode or does not sell the
    /// type stops the start.
    pub fn bind(settings: &BillSettings, loaded: &[Arc<LoadedBiller>]) -> anyhow::Result<Billers> {
        let mut bound = BTreeMap::new();
        if let Some(sandbox) = loaded.iter().find(|b| b.plugin_name() == SANDBOX_BILLER && b.mode() == Mode::Test) {
            for bill_type in BillType::ALL.iter().filter(|t| sandbox.sells(wit(**t))) {
                bound.insert((Mode::Test, *bill_type), Arc::clone(sandbox));
            }
        }
        for route in &settings.routes {
            let at = format!("bills.routes ({} {} → {})", route.mode, route.bill_type, route.biller);
            let mode = Mode::parse(&route.mode).ok_or_else(|| anyhow::anyhow!("{at}: mode must be test or live"))?;
            let bill_type = BillType::parse(&route.bill_type)
                .ok_or_else(|| anyhow::anyhow!("{at}: bill_type must be one of {}", BillType::words()))?;
            let biller = loaded
                .iter()
                .find(|b| b.plugin_name() == route.biller)
                .ok_or_else(|| anyhow::anyhow!("{at}: no biller plugin {:?} is loaded", route.biller))?;
            anyhow::ensure!(
                biller.mode() == mode,
                "{at}: {} is configured for {} mode (plugins.{}.mode)",
                route.biller,
                biller.mode(),
                route.biller
            );
            anyhow::ensure!(
                mode == Mode::Test || biller.info.name != SANDBOX_BILLER,
                "{at}: the sandbox biller never sells live bills"
            );
            anyhow::ensure!(biller.sells(wit(bill_type)), "{at}: {} sells no {bill_type} bills", route.biller);
            bound.insert((mode, bill_type), Arc::clone(biller));
        }
        Ok(Billers { bound, loaded: loaded.to_vec() })
    }

    /// The biller selling `bill_type` bills in `mode`.
    pub fn for_type(&self, mode: Mode, bill_type: BillType) -> Option<Arc<LoadedBiller>> {
        self.bound.get(&(mode, bill_type)).cloned()
    }

    /// The loaded biller of that plugin name serving `mode`: the one a
    /// purchase was made with, whatever is bound today.
    pub fn named(&self, plugin_name: &str, mode: Mode) -> Option<Arc<LoadedBiller>> {
        self.loaded.iter().find(|b| b.plugin_name() == plugin_name && b.mode() == mode).cloned()
    }

    /// The loaded biller of that plugin name, in whichever mode it serves
    /// (callbacks come in by file stem).
    pub fn by_plugin(&self, plugin_name: &str) -> Option<Arc<LoadedBiller>> {
        self.loaded.iter().find(|b| b.plugin_name() == plugin_name).cloned()
    }

    /// Every binding of `mode`, by bill type.
    pub fn bound(&self, mode: Mode) -> impl Iterator<Item = (BillType, &Arc<LoadedBiller>)> {
        self.bound.iter().filter(move |((m, _), _)| *m == mode).map(|((_, t), b)| (*t, b))
    }
}

/// The WIT's name for a bill type.
pub fn wit(bill_type: BillType) -> WitBillType {
    match bill_type {
        BillType::Airtime => WitBillType::Airtime,
        BillType::Data => WitBillType::Data,
        BillType::Electricity => WitBillType::Electricity,
        BillType::Cable => WitBillType::Cable,
        BillType::Education => WitBillType::Education,
        BillType::Epin => WitBillType::Epin,
        BillType::Bet => WitBillType::Bet,
    }
}
