//! Which trader plugin carries each kind of trade (gift card sales, RMB
//! purchases, crypto sales) in each mode. Test mode uses the sandbox trader
//! for every kind it trades unless a route says otherwise; live mode trades
//! only what `[[trades.routes]]` binds. A trader serves the one mode its
//! plugin is configured for, so a test key never reaches a trader holding
//! production credentials. Bindings are fixed at start (hot swap of traders
//! is the plugin platform's work, as for FX providers and messengers).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::TradeSettings;
use crate::plugins::LoadedTrader;
use crate::plugins::traders::TradeKind as WitTradeKind;
use crate::values::mode::Mode;
use crate::values::status::TradeKind;

/// The sandbox trader's name: it never trades in live mode.
pub const SANDBOX_TRADER: &str = "trader-sandbox";

/// The traders loaded, and the one bound to each mode and trade kind.
pub struct Traders {
    loaded: Vec<Arc<LoadedTrader>>,
    bound: BTreeMap<(Mode, TradeKind), Arc<LoadedTrader>>,
}

/// A trade kind as the WIT names it.
pub fn wit(kind: TradeKind) -> WitTradeKind {
    match kind {
        TradeKind::GiftCardSale => WitTradeKind::GiftCardSale,
        TradeKind::RmbPurchase => WitTradeKind::RmbPurchase,
        TradeKind::CryptoSale => WitTradeKind::CryptoSale,
    }
}

impl Traders {
    /// Binds the loaded traders as `settings` route them. A route naming a
    /// trader that is not loaded, serves the other mode or does not trade
    /// the kind stops the start.
    pub fn bind(settings: &TradeSettings, loaded: &[Arc<LoadedTrader>]) -> anyhow::Result<Traders> {
        let mut bound = BTreeMap::new();
        if let Some(sandbox) = loaded.iter().find(|t| t.plugin_name() == SANDBOX_TRADER && t.mode() == Mode::Test) {
            for kind in TradeKind::ALL.iter().filter(|k| sandbox.trades(wit(**k))) {
                bound.insert((Mode::Test, *kind), Arc::clone(sandbox));
            }
        }
        for route in &settings.routes {
            let at = format!("trades.routes ({} {} → {})", route.mode, route.trade, route.trader);
            let mode = Mode::parse(&route.mode).ok_or_else(|| anyhow::anyhow!("{at}: mode must be test or live"))?;
            let kind = TradeKind::parse(&route.trade)
                .ok_or_else(|| anyhow::anyhow!("{at}: trade must be one of {}", TradeKind::words()))?;
            let trader = loaded
                .iter()
                .find(|t| t.plugin_name() == route.trader)
                .ok_or_else(|| anyhow::anyhow!("{at}: no trader plugin {:?} is loaded", route.trader))?;
            if trader.mode() != mode {
                anyhow::bail!("{at}: the plugin is configured for {} mode", trader.mode());
            }
            if mode == Mode::Live && trader.plugin_name() == SANDBOX_TRADER {
                anyhow::bail!("{at}: the sandbox trader never trades live");
            }
            if !trader.trades(wit(kind)) {
                anyhow::bail!("{at}: {} does not trade {kind}", trader.id());
            }
            bound.insert((mode, kind), Arc::clone(trader));
        }
        Ok(Traders { loaded: loaded.to_vec(), bound })
    }

    /// The trader carrying new trades of `kind` in `mode`.
    pub fn for_kind(&self, mode: Mode, kind: TradeKind) -> Option<Arc<LoadedTrader>> {
        self.bound.get(&(mode, kind)).cloned()
    }

    /// Every loaded trader.
    pub fn loaded(&self) -> &[Arc<LoadedTrader>] {
        &self.loaded
    }

    /// The kinds `trader` carries now.
    pub fn bound_to(&self, trader: &Arc<LoadedTrader>) -> Vec<TradeKind> {
        self.bound.iter().filter(|(_, t)| Arc::ptr_eq(t, trader)).map(|((_, kind), _)| *kind).collect()
    }

    /// The loaded trader of that plugin name (a callback's), whatever its mode.
    pub fn by_plugin(&self, plugin_name: &str) -> Option<Arc<LoadedTrader>> {
        self.loaded.iter().find(|t| t.plugin_name() == plugin_name).cloned()
    }

    /// The loaded trader of that plugin name serving `mode`: the one a trade
    /// was made with (status checks, callbacks), whatever is bound today.
    pub fn named(&self, plugin_name: &str, mode: Mode) -> Option<Arc<LoadedTrader>> {
        self.loaded.iter().find(|t| t.plugin_name() == plugin_name && t.mode() == mode).cloned()
    }
}
