//! Trader components (`soxara:billing` `trader`): loading one, calling its
//! exports under the same limits as rails and billers, and refusing answers
//! no honest trader gives (oversized strings, bad codes, unusable rates, a
//! finished outcome without a reason).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use wasmtime::component::Component;
use wasmtime::{Engine, Store};

use super::billers::{is_slug, sane};
pub use super::bindings::trading::exports::soxara::billing::trader::{
    AddressRequest, Callback as TraderCallback, CardForm, CardImage, CryptoAsset, CryptoNetwork, Deposit, DepositState,
    GiftCardBrand, GiftCardOffer, GiftCardSale, Rate as TradeRate, RmbChannel, RmbOrder, RmbTerms, TestDepositRequest,
    TradeEvent, TradeKind, TradeOutcome, TradeReport, TraderInfo,
};
use super::bindings::trading::{TraderPlugin, TraderPluginPre};
use super::{
    Failure, HostState, PluginContext, PluginError, PluginLimits, Runtime, TransactionStatus, check_answer,
    outcome_label, run_once,
};
use crate::metrics::Metrics;
use crate::values::mode::Mode;

/// The most entries one listing (brands, channels, assets, rates) may hold.
const LISTING_MAX: usize = 500;

impl Runtime {
    /// Checks a compiled component against the trader world and asks it to
    /// describe itself.
    pub(super) fn trader_from(
        &self,
        component: &Component,
        path: &Path,
        context: PluginContext,
    ) -> Result<Arc<LoadedTrader>> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .and_then(TraderPluginPre::new)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} does not fit the soxara:billing trader world", path.display()))?;
        let mut trader = LoadedTrader {
            engine: self.engine.clone(),
            pre,
            limits: self.limits.with(&context.limit_overrides),
            context: Arc::new(context),
            metrics: Arc::clone(&self.metrics),
            path: path.to_path_buf(),
            info: TraderInfo { name: String::new(), version: String::new(), trades: vec![] },
        };
        let info = trader.call(|plugin, store| plugin.soxara_billing_trader().call_describe(store))?;
        sane(&info.name, "the name", trader.limits.output_chars_max)
            .and_then(|()| sane(&info.version, "the version", trader.limits.output_chars_max))
            .map_err(|why| anyhow::anyhow!("{} describes itself wrongly: {why}", path.display()))?;
        trader.info = info;
        Ok(Arc::new(trader))
    }
}

/// A trader component, compiled and linked, ready to instantiate per call.
pub struct LoadedTrader {
    engine: Engine,
    pre: TraderPluginPre<HostState>,
    context: Arc<PluginContext>,
    limits: PluginLimits,
    metrics: Arc<Metrics>,
    /// The component file it was loaded from.
    pub path: PathBuf,
    pub info: TraderInfo,
}

/// A plugin's answer, or why it gave none.
pub type TraderAnswer<T> = Result<Result<T, Failure>, PluginError>;

impl LoadedTrader {
    /// The name the operator knows it by: its component's file stem.
    pub fn plugin_name(&self) -> &str {
        &self.context.name
    }

    /// The one mode this trader serves, as the operator configured it.
    pub fn mode(&self) -> Mode {
        self.context.mode
    }

    /// `plugin_name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.context.name, self.info.version)
    }

    /// Whether it trades `kind`.
    pub fn trades(&self, kind: TradeKind) -> bool {
        self.info.trades.contains(&kind)
    }

    pub fn gift_card_catalog(&self) -> TraderAnswer<Vec<GiftCardBrand>> {
        let chars_max = self.limits.output_chars_max;
        self.checked(
            "gift-card-catalog",
            |plugin, store| plugin.soxara_billing_trader().call_gift_card_catalog(store),
            |brands| check_brands(brands, chars_max),
        )
    }

    pub fn gift_card_sell(&self, sale: &GiftCardSale) -> TraderAnswer<TradeOutcome> {
        let chars_max = self.limits.output_chars_max;
        self.checked(
            "gift-card-sell",
            |plugin, store| plugin.soxara_billing_trader().call_gift_card_sell(store, sale),
            |outcome| check_sale_outcome(outcome, sale, chars_max),
        )
    }

    /// Asks where a sale left pending stands (a `Failure`: could not find out).
    pub fn gift_card_status(
        &self,
        sale: &GiftCardSale,
        provider_reference: Option<&str>,
    ) -> TraderAnswer<TradeOutcome> {
        let chars_max = self.limits.output_chars_max;
        self.checked(
            "gift-card-status",
            |plugin, store| plugin.soxara_billing_trader().call_gift_card_status(store, sale, provider_reference),
            |outcome| check_sale_outcome(outcome, sale, chars_max),
        )
    }

    pub fn crypto_assets(&self) -> TraderAnswer<Vec<CryptoAsset>> {
        let chars_max = self.limits.output_chars_max;
        self.checked(
            "crypto-assets",
            |plugin, store| plugin.soxara_billing_trader().call_crypto_assets(store),
            |assets| check_assets(assets, chars_max),
        )
    }

    /// The owner's deposit address for an asset on a network.
    pub fn deposit_address(&self, request: &AddressRequest) -> TraderAnswer<String> {
        let chars_max = self.limits.output_chars_max;
        self.checked(
            "deposit-address",
            |plugin, store| plugin.soxara_billing_trader().call_deposit_address(store, request),
            |address| check_address(address, chars_max),
        )
    }

    /// Where a deposit stands (a `Failure`: could not find out).
    pub fn deposit_status(&self, deposit_id: &str) -> TraderAnswer<Deposit> {
        let chars_max = self.limits.output_chars_max;
        self.checked(
            "deposit-status",
            |plugin, store| plugin.soxara_billing_trader().call_deposit_status(store, deposit_id),
            |deposit| check_deposit(deposit, chars_max),
        )
    }

    /// A simulated deposit (sandbox traders).
    pub fn test_deposit(&self, request: &TestDepositRequest) -> TraderAnswer<Deposit> {
        let chars_max = self.limits.output_chars_max;
        self.checked(
            "test-deposit",
            |plugin, store| plugin.soxara_billing_trader().call_test_deposit(store, request),
            |deposit| check_deposit(deposit, chars_max),
        )
    }

    /// Lets the trader authenticate and read a desk's or custody
    /// provider's callback.
    pub fn handle_callback(&self, callback: &TraderCallback) -> TraderAnswer<TradeEvent> {
        let chars_max = self.limits.output_chars_max;
        self.checked(
            "handle-callback",
            |plugin, store| plugin.soxara_billing_trader().call_handle_callback(store, callback),
            |event| match event {
                TradeEvent::Trade(report) => sane(&report.trade_id, "the trade id", chars_max)
                    .and_then(|()| check_outcome(&report.outcome, chars_max)),
                TradeEvent::Deposit(deposit) => check_deposit(deposit, chars_max),
                TradeEvent::Ignored => Ok(()),
            },
        )
    }

    pub fn rmb_offer(&self) -> TraderAnswer<RmbTerms> {
        let chars_max = self.limits.output_chars_max;
        self.checked(
            "rmb-offer",
            |plugin, store| plugin.soxara_billing_trader().call_rmb_offer(store),
            |offer| check_rmb_offer(offer, chars_max),
        )
    }

    pub fn rmb_buy(&self, order: &RmbOrder) -> TraderAnswer<TradeOutcome> {
        let chars_max = self.limits.output_chars_max;
        self.checked(
            "rmb-buy",
            |plugin, store| plugin.soxara_billing_trader().call_rmb_buy(store, order),
            |outcome| check_outcome(outcome, chars_max),
        )
    }

    /// Asks where an order left processing stands (a `Failure`: could not find out).
    pub fn rmb_status(&self, order: &RmbOrder, provider_reference: Option<&str>) -> TraderAnswer<TradeOutcome> {
        let chars_max = self.limits.output_chars_max;
        self.checked(
            "rmb-status",
            |plugin, store| plugin.soxara_billing_trader().call_rmb_status(store, order, provider_reference),
            |outcome| check_outcome(outcome, chars_max),
        )
    }

    /// Runs one export, checks what it answered and records the call's metrics.
    fn checked<T>(
        &self,
        export: &str,
        f: impl FnOnce(&TraderPlugin, &mut Store<HostState>) -> wasmtime::Result<Result<T, Failure>>,
        check: impl FnOnce(&T) -> Result<(), String>,
    ) -> TraderAnswer<T> {
        let started = Instant::now();
        let chars_max = self.limits.output_chars_max;
        let answer = self.call(f).and_then(|answer| {
            let checked = match &answer {
                Ok(value) => check(value),
                Err(failure) => check_answer(&Err(failure.clone()), chars_max),
            };
            checked.map_err(PluginError::MalformedOutput)?;
            Ok(answer)
        });
        self.metrics.plugin_call(self.plugin_name(), export, outcome_label(&answer), started.elapsed().as_secs_f64());
        answer
    }

    /// Runs one export in a fresh store with the call deadline and memory cap.
    fn call<T>(
        &self,
        f: impl FnOnce(&TraderPlugin, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        run_once(&self.engine, &self.context, &self.limits, |store| self.pre.instantiate(store), f)
    }
}

/// A rate the host can compute with: known codes, a positive fraction.
fn check_rate(rate: &TradeRate) -> Result<(), String> {
    let code = |c: &str| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase());
    if !code(&rate.base) || !code(&rate.quote) || rate.numerator == 0 || rate.denominator == 0 {
        return Err(format!("an unusable rate {}→{}", rate.base, rate.quote));
    }
    Ok(())
}

fn check_brands(brands: &[GiftCardBrand], chars_max: usize) -> Result<(), String> {
    if brands.len() > LISTING_MAX {
        return Err(format!("more than {LISTING_MAX} brands"));
    }
    for (n, brand) in brands.iter().enumerate() {
        if !is_slug(&brand.slug) || brands[..n].iter().any(|b| b.slug == brand.slug) {
            return Err(format!("brand slug {:?} is not a unique slug", brand.slug));
        }
        sane(&brand.name, "a brand's name", chars_max)?;
        for offer in &brand.offers {
            let country_ok = offer.country.len() == 2 && offer.country.bytes().all(|b| b.is_ascii_uppercase());
            if !country_ok || offer.denominations.is_empty() || offer.denominations.contains(&0) {
                return Err(format!("brand {} has an unusable offer for {:?}", brand.slug, offer.country));
            }
            if offer.denominations.len() > LISTING_MAX || offer.rates.len() > LISTING_MAX || offer.forms.is_empty() {
                return Err(format!("brand {} lists too many or no denominations, rates or forms", brand.slug));
            }
            for rate in &offer.rates {
                check_rate(rate)?;
                if rate.base != offer.card_currency {
                    return Err(format!("brand {} has a rate from {}, not its card currency", brand.slug, rate.base));
                }
            }
        }
    }
    Ok(())
}

/// A sale's outcome: a verified value only in the card's currency and never
/// more than declared.
fn check_sale_outcome(outcome: &TradeOutcome, sale: &GiftCardSale, chars_max: usize) -> Result<(), String> {
    check_outcome(outcome, chars_max)?;
    if let Some(verified) = &outcome.verified_value
        && (verified.currency != sale.face_value.currency
            || verified.amount == 0
            || verified.amount > sale.face_value.amount)
    {
        return Err("a verified value in another currency, of zero or above the declared face value".into());
    }
    Ok(())
}

fn check_assets(assets: &[CryptoAsset], chars_max: usize) -> Result<(), String> {
    if assets.len() > LISTING_MAX {
        return Err(format!("more than {LISTING_MAX} assets"));
    }
    for (n, asset) in assets.iter().enumerate() {
        let symbol_ok = (2..=10).contains(&asset.symbol.len())
            && asset.symbol.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !symbol_ok || assets[..n].iter().any(|a| a.symbol == asset.symbol) {
            return Err(format!("asset symbol {:?} is not a unique upper-case symbol", asset.symbol));
        }
        sane(&asset.name, "an asset's name", chars_max)?;
        if asset.decimals > 18 || asset.networks.is_empty() || asset.networks.len() > LISTING_MAX {
            return Err(format!("asset {} has unusable decimals or networks", asset.symbol));
        }
        for network in &asset.networks {
            if !is_slug(&network.slug) {
                return Err(format!("network slug {:?} is not a slug", network.slug));
            }
            sane(&network.name, "a network's name", chars_max)?;
        }
        for rate in &asset.rates {
            let quote_ok = rate.quote.len() == 3 && rate.quote.bytes().all(|b| b.is_ascii_uppercase());
            if rate.base != asset.symbol || !quote_ok || rate.numerator == 0 || rate.denominator == 0 {
                return Err(format!("asset {} has an unusable rate {}→{}", asset.symbol, rate.base, rate.quote));
            }
        }
    }
    Ok(())
}

/// An address: printable, no spaces, of a sane length.
fn check_address(address: &str, chars_max: usize) -> Result<(), String> {
    sane(address, "the address", chars_max.min(128))?;
    if address.chars().any(char::is_whitespace) {
        return Err("an address with spaces".into());
    }
    Ok(())
}

fn check_deposit(deposit: &Deposit, chars_max: usize) -> Result<(), String> {
    sane(&deposit.deposit_id, "the deposit id", chars_max)?;
    check_address(&deposit.address, chars_max)?;
    sane(&deposit.asset, "the deposit's asset", chars_max)?;
    sane(&deposit.network, "the deposit's network", chars_max)?;
    if deposit.amount == 0 || i64::try_from(deposit.amount).is_err() {
        return Err("a deposit of nothing, or of more base units than the gateway records".into());
    }
    Ok(())
}

fn check_rmb_offer(offer: &RmbTerms, chars_max: usize) -> Result<(), String> {
    if offer.channels.len() > LISTING_MAX || offer.rates.len() > LISTING_MAX {
        return Err(format!("more than {LISTING_MAX} channels or rates"));
    }
    for (n, channel) in offer.channels.iter().enumerate() {
        if !is_slug(&channel.slug) || offer.channels[..n].iter().any(|c| c.slug == channel.slug) {
            return Err(format!("channel slug {:?} is not a unique slug", channel.slug));
        }
        sane(&channel.name, "a channel's name", chars_max)?;
        sane(&channel.recipient_label, "a channel's recipient label", chars_max)?;
        if channel.min == 0 || channel.min > channel.max {
            return Err(format!("channel {} has unusable limits", channel.slug));
        }
    }
    for rate in &offer.rates {
        check_rate(rate)?;
        if rate.quote != "CNY" {
            return Err(format!("an RMB rate into {}, not CNY", rate.quote));
        }
    }
    Ok(())
}

fn check_outcome(outcome: &TradeOutcome, chars_max: usize) -> Result<(), String> {
    if let Some(reference) = &outcome.provider_reference {
        sane(reference, "the provider reference", chars_max)?;
    }
    if outcome.verified_value.is_some() && outcome.status != TransactionStatus::Completed {
        return Err("a verified value for a trade that is not completed".into());
    }
    match (&outcome.status, &outcome.failure) {
        (TransactionStatus::Failed | TransactionStatus::Cancelled | TransactionStatus::Refunded, None) => {
            Err("an unsuccessful outcome without a failure".into())
        }
        (_, Some(failure)) => check_answer(&Err(failure.clone()), chars_max),
        _ => Ok(()),
    }
}
