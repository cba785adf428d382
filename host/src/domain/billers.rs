//! Which biller plugin sells each bill type in each mode. Test mode uses
//! the sandbox biller for every type unless a route says otherwise; live
//! mode sells only what `[[bills.routes]]` (or an operator, through the
//! admin API) binds. A biller serves the one mode its plugin is configured
//! for, so a test key can never reach a biller holding production
//! credentials. Operators change bindings while bills are bought, as for
//! rails (`plugins::registry`): the table is swapped atomically, a purchase
//! that has its biller finishes on it, and changes are serialised.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use crate::config::BillSettings;
use crate::plugins::LoadedBiller;
use crate::plugins::billers::BillType as WitBillType;
use crate::plugins::registry::ROLLBACK_DEPTH_MAX;
use crate::plugins::routes::Binding;
use crate::values::mode::Mode;
use crate::values::status::BillType;

/// The sandbox biller's name: it never sells in live mode.
pub const SANDBOX_BILLER: &str = "biller-sandbox";

/// The biller bound to a mode and bill type, with its canary if any.
pub type BillerBinding = Binding<LoadedBiller>;

type Table = BTreeMap<(Mode, BillType), BillerBinding>;

/// The billers loaded, and those bound to each mode and bill type.
pub struct Billers {
    table: ArcSwap<Table>,
    changes: Mutex<Changes>,
}

/// What only operators change, under one lock.
struct Changes {
    loaded: Vec<Arc<LoadedBiller>>,
    history: HashMap<(Mode, BillType), Vec<Option<BillerBinding>>>,
}

impl Billers {
    /// Binds the loaded billers as `settings` route them. A route naming a
    /// biller that is not loaded, serves the other mode or does not sell the
    /// type stops the start.
    pub fn bind(settings: &BillSettings, loaded: &[Arc<LoadedBiller>]) -> anyhow::Result<Billers> {
        let mut table = Table::new();
        if let Some(sandbox) = loaded.iter().find(|b| b.plugin_name() == SANDBOX_BILLER && b.mode() == Mode::Test) {
            for bill_type in BillType::ALL.iter().filter(|t| sandbox.sells(wit(**t))) {
                table.insert((Mode::Test, *bill_type), BillerBinding { primary: Arc::clone(sandbox), canary: None });
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
            check(mode, bill_type, biller).map_err(|why| anyhow::anyhow!("{at}: {why}"))?;
            table.insert((mode, bill_type), BillerBinding { primary: Arc::clone(biller), canary: None });
        }
        Ok(Billers {
            table: ArcSwap::from_pointee(table),
            changes: Mutex::new(Changes { loaded: loaded.to_vec(), history: HashMap::new() }),
        })
    }

    /// The biller for one purchase of `bill_type` in `mode` (the canary for
    /// its share of them).
    pub fn for_type(&self, mode: Mode, bill_type: BillType) -> Option<Arc<LoadedBiller>> {
        self.table.load().get(&(mode, bill_type)).map(BillerBinding::pick)
    }

    /// The newest loaded biller of that plugin name serving `mode`: the one
    /// a purchase was made with (status checks), whatever is bound today.
    pub fn named(&self, plugin_name: &str, mode: Mode) -> Option<Arc<LoadedBiller>> {
        self.lock().loaded.iter().rev().find(|b| b.plugin_name() == plugin_name && b.mode() == mode).cloned()
    }

    /// The newest loaded biller of that plugin name, in whichever mode it
    /// serves (callbacks come in by file stem).
    pub fn by_plugin(&self, plugin_name: &str) -> Option<Arc<LoadedBiller>> {
        self.lock().loaded.iter().rev().find(|b| b.plugin_name() == plugin_name).cloned()
    }

    /// The primary biller of every binding of `mode`, by bill type.
    pub fn bound(&self, mode: Mode) -> Vec<(BillType, Arc<LoadedBiller>)> {
        let table = self.table.load();
        table.iter().filter(|((m, _), _)| *m == mode).map(|((_, t), b)| (*t, Arc::clone(&b.primary))).collect()
    }

    /// Every binding, for listings.
    pub fn bindings(&self) -> Vec<(Mode, BillType, BillerBinding)> {
        self.table.load().iter().map(|((m, t), b)| (*m, *t, b.clone())).collect()
    }

    /// Every loaded biller version, in load order.
    pub fn loaded(&self) -> Vec<Arc<LoadedBiller>> {
        self.lock().loaded.clone()
    }

    /// Whether any binding uses `biller`.
    pub fn in_use(&self, biller: &LoadedBiller) -> bool {
        self.table.load().values().any(|b| b.uses(biller))
    }

    /// Adds a compiled biller (unbound), unless that version is loaded.
    pub fn add(&self, biller: Arc<LoadedBiller>) -> Result<Arc<LoadedBiller>, String> {
        let mut changes = self.lock();
        if changes.loaded.iter().any(|b| b.id() == biller.id()) {
            return Err(format!("{} is already loaded; give the new build another version", biller.id()));
        }
        changes.loaded.push(Arc::clone(&biller));
        Ok(biller)
    }

    /// Binds `plugin` (an id `name@version`, or a plugin name for its newest
    /// version) to a mode and bill type, optionally with a canary taking
    /// `percent`% of purchases. The previous binding is kept for rollback.
    pub fn bind_type(
        &self,
        mode: Mode,
        bill_type: BillType,
        plugin: &str,
        canary: Option<(&str, u8)>,
    ) -> Result<(), String> {
        let mut changes = self.lock();
        let primary = find(&changes.loaded, plugin)?;
        let canary = match canary {
            Some((_, percent)) if percent > 100 => return Err("a canary percentage is 0 to 100".into()),
            Some((plugin, percent)) => Some((find(&changes.loaded, plugin)?, percent)),
            None => None,
        };
        check(mode, bill_type, &primary)?;
        if let Some((canary, _)) = &canary {
            check(mode, bill_type, canary)?;
            // The catalogue lists the primary's providers; a canary selling
            // others would refuse a share of purchases at random.
            if slugs(canary, bill_type) != slugs(&primary, bill_type) {
                return Err(format!(
                    "canary {} sells {bill_type} from {:?}, the primary {} from {:?}: a canary must sell the same",
                    canary.id(),
                    slugs(canary, bill_type),
                    primary.id(),
                    slugs(&primary, bill_type)
                ));
            }
        }
        let current = self.table.load_full();
        let mut next = (*current).clone();
        next.insert((mode, bill_type), BillerBinding { primary, canary });
        let history = changes.history.entry((mode, bill_type)).or_default();
        history.push(current.get(&(mode, bill_type)).cloned());
        if history.len() > ROLLBACK_DEPTH_MAX {
            history.remove(0);
        }
        self.table.store(Arc::new(next));
        Ok(())
    }

    /// Restores the binding that was in place before the last change (none
    /// at all, if there was none).
    pub fn rollback(&self, mode: Mode, bill_type: BillType) -> Result<(), String> {
        let mut changes = self.lock();
        let previous = changes
            .history
            .get(&(mode, bill_type))
            .and_then(|h| h.last().cloned())
            .ok_or("no earlier binding to roll back to")?;
        // A version unloaded since cannot come back through a rollback.
        if let Some(binding) = &previous {
            let canary = binding.canary.as_ref().map(|(c, _)| c);
            for biller in std::iter::once(&binding.primary).chain(canary) {
                if !changes.loaded.iter().any(|b| Arc::ptr_eq(b, biller)) {
                    return Err(format!(
                        "the binding before used {}, which has been unloaded since; bind what you want instead",
                        biller.id()
                    ));
                }
            }
        }
        if let Some(history) = changes.history.get_mut(&(mode, bill_type)) {
            history.pop();
        }
        let mut next = (*self.table.load_full()).clone();
        match previous {
            Some(binding) => next.insert((mode, bill_type), binding),
            None => next.remove(&(mode, bill_type)),
        };
        self.table.store(Arc::new(next));
        Ok(())
    }

    /// Forgets a biller version that nothing is bound to. (Purchases it left
    /// processing are checked by the newest version of the same plugin.)
    pub fn unload(&self, id: &str) -> Result<(), String> {
        let mut changes = self.lock();
        let biller =
            changes.loaded.iter().find(|b| b.id() == id).cloned().ok_or_else(|| format!("{id} is not loaded"))?;
        if self.in_use(&biller) {
            return Err(format!("{id} is in use; bind something else first"));
        }
        changes.loaded.retain(|b| b.id() != id);
        Ok(())
    }

    /// Whether a loaded version other than `id` of the same plugin serves
    /// the same mode: the one that would check `id`'s purchases.
    pub fn has_successor(&self, id: &str) -> bool {
        let changes = self.lock();
        let Some(biller) = changes.loaded.iter().find(|b| b.id() == id) else { return false };
        changes
            .loaded
            .iter()
            .any(|b| b.id() != id && b.plugin_name() == biller.plugin_name() && b.mode() == biller.mode())
    }

    fn lock(&self) -> MutexGuard<'_, Changes> {
        self.changes.lock().expect("biller changes never panic while holding the lock")
    }
}

/// The provider slugs `biller` sells `bill_type` bills from, sorted.
fn slugs(biller: &LoadedBiller, bill_type: BillType) -> Vec<&str> {
    let mut slugs: Vec<&str> =
        biller.info.providers.iter().filter(|p| p.bill_type == wit(bill_type)).map(|p| p.slug.as_str()).collect();
    slugs.sort_unstable();
    slugs
}

/// Whether `biller` may sell `bill_type` bills in `mode`.
fn check(mode: Mode, bill_type: BillType, biller: &LoadedBiller) -> Result<(), String> {
    if biller.mode() != mode {
        return Err(format!(
            "{} is configured for {} mode (plugins.{}.mode), so it never sells {mode} bills",
            biller.id(),
            biller.mode(),
            biller.plugin_name()
        ));
    }
    if mode == Mode::Live && biller.info.name == SANDBOX_BILLER {
        return Err("the sandbox biller never sells live bills".into());
    }
    if !biller.sells(wit(bill_type)) {
        return Err(format!("{} sells no {bill_type} bills", biller.id()));
    }
    Ok(())
}

/// A biller by id (`name@version`) or by plugin name (its newest version).
fn find(loaded: &[Arc<LoadedBiller>], plugin: &str) -> Result<Arc<LoadedBiller>, String> {
    loaded
        .iter()
        .rev()
        .find(|b| b.id() == plugin || b.plugin_name() == plugin)
        .cloned()
        .ok_or_else(|| format!("no biller {plugin:?} is loaded"))
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
