//! Biller components (`soxara:billing`): loading one, calling its exports
//! under the same limits as rails, and refusing answers no honest biller
//! gives (oversized strings, bad codes, a failed outcome without a reason).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use wasmtime::component::Component;
use wasmtime::{Engine, Store};

pub use super::bindings::billing::exports::soxara::billing::biller::{
    AmountRange, BillType, BillerInfo, Callback as BillerCallback, CallbackEvent as BillerCallbackEvent,
    CustomerDetails, IdentifierCheck, Plan, Provider, PurchaseOutcome, PurchaseReport, PurchaseRequest,
};
use super::bindings::billing::{BillerPlugin, BillerPluginPre};
use super::{
    Failure, HostState, PluginContext, PluginError, PluginLimits, Runtime, TransactionStatus, check_answer,
    outcome_label, run_once,
};
use crate::metrics::Metrics;
use crate::values::mode::Mode;

/// The most providers one biller may describe, and plans one provider may list.
const PROVIDERS_MAX: usize = 200;
const PLANS_MAX: usize = 500;
/// The most tokens (ePINs) one purchase may return, and details one check.
const TOKENS_MAX: usize = 100;
const DETAILS_MAX: usize = 32;

impl Runtime {
    /// Checks a compiled component against the biller world and asks it to
    /// describe itself.
    pub(super) fn biller_from(
        &self,
        component: &Component,
        path: &Path,
        context: PluginContext,
    ) -> Result<Arc<LoadedBiller>> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .and_then(BillerPluginPre::new)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} does not fit the soxara:billing biller world", path.display()))?;
        let mut biller = LoadedBiller {
            engine: self.engine.clone(),
            pre,
            limits: self.limits.with(&context.limit_overrides),
            context: Arc::new(context),
            metrics: Arc::clone(&self.metrics),
            path: path.to_path_buf(),
            info: BillerInfo { name: String::new(), version: String::new(), providers: vec![] },
        };
        let info = biller.call(|plugin, store| plugin.soxara_billing_biller().call_describe(store))?;
        check_info(&info, biller.limits.output_chars_max)
            .map_err(|why| anyhow::anyhow!("{} describes itself wrongly: {why}", path.display()))?;
        biller.info = info;
        Ok(Arc::new(biller))
    }
}

/// A biller component, compiled and linked, ready to instantiate per call.
pub struct LoadedBiller {
    engine: Engine,
    pre: BillerPluginPre<HostState>,
    context: Arc<PluginContext>,
    limits: PluginLimits,
    metrics: Arc<Metrics>,
    /// The component file it was loaded from.
    pub path: PathBuf,
    pub info: BillerInfo,
}

impl LoadedBiller {
    /// The name the operator knows it by: its component's file stem.
    pub fn plugin_name(&self) -> &str {
        &self.context.name
    }

    /// The one mode this biller serves, as the operator configured it.
    pub fn mode(&self) -> Mode {
        self.context.mode
    }

    /// `plugin_name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.context.name, self.info.version)
    }

    /// The provider `slug` of `bill_type`, if this biller sells from it.
    pub fn provider(&self, bill_type: BillType, slug: &str) -> Option<&Provider> {
        self.info.providers.iter().find(|p| p.bill_type == bill_type && p.slug == slug)
    }

    /// Whether it sells any bill of `bill_type`.
    pub fn sells(&self, bill_type: BillType) -> bool {
        self.info.providers.iter().any(|p| p.bill_type == bill_type)
    }

    pub fn plans(&self, bill_type: BillType, provider: &str) -> Result<Result<Vec<Plan>, Failure>, PluginError> {
        let chars_max = self.limits.output_chars_max;
        self.measured("plans", |biller| {
            let answer =
                biller.call(|plugin, store| plugin.soxara_billing_biller().call_plans(store, bill_type, provider))?;
            let checked = match &answer {
                Ok(plans) => check_plans(plans, chars_max),
                Err(failure) => check_answer(&Err(failure.clone()), chars_max),
            };
            checked.map_err(PluginError::MalformedOutput)?;
            Ok(answer)
        })
    }

    pub fn verify(&self, check: &IdentifierCheck) -> Result<Result<CustomerDetails, Failure>, PluginError> {
        let chars_max = self.limits.output_chars_max;
        self.measured("verify", |biller| {
            let answer = biller.call(|plugin, store| plugin.soxara_billing_biller().call_verify(store, check))?;
            let checked = match &answer {
                Ok(details) => check_details(details, chars_max),
                Err(failure) => check_answer(&Err(failure.clone()), chars_max),
            };
            checked.map_err(PluginError::MalformedOutput)?;
            Ok(answer)
        })
    }

    pub fn purchase(&self, request: &PurchaseRequest) -> Result<Result<PurchaseOutcome, Failure>, PluginError> {
        self.checked_outcome("purchase", |plugin, store| plugin.soxara_billing_biller().call_purchase(store, request))
    }

    /// Asks where a purchase left processing stands (a `Failure`: could not find out).
    pub fn status(
        &self,
        request: &PurchaseRequest,
        provider_reference: Option<&str>,
    ) -> Result<Result<PurchaseOutcome, Failure>, PluginError> {
        self.checked_outcome("status", |plugin, store| {
            plugin.soxara_billing_biller().call_status(store, request, provider_reference)
        })
    }

    /// Lets the biller authenticate and read a provider callback.
    pub fn handle_callback(
        &self,
        callback: &BillerCallback,
    ) -> Result<Result<BillerCallbackEvent, Failure>, PluginError> {
        let chars_max = self.limits.output_chars_max;
        self.measured("handle-callback", |biller| {
            let answer =
                biller.call(|plugin, store| plugin.soxara_billing_biller().call_handle_callback(store, callback))?;
            let checked = match &answer {
                Ok(BillerCallbackEvent::Purchase(report)) => {
                    if report.purchase_id.is_empty() || report.purchase_id.chars().count() > chars_max {
                        Err("a callback event without a sane purchase id".to_string())
                    } else {
                        check_outcome(&report.outcome, chars_max)
                    }
                }
                Ok(BillerCallbackEvent::Ignored) => Ok(()),
                Err(failure) => check_answer(&Err(failure.clone()), chars_max),
            };
            checked.map_err(PluginError::MalformedOutput)?;
            Ok(answer)
        })
    }

    /// `purchase` and `status`: a call whose outcome is checked.
    fn checked_outcome(
        &self,
        export: &str,
        f: impl FnOnce(&BillerPlugin, &mut Store<HostState>) -> wasmtime::Result<Result<PurchaseOutcome, Failure>>,
    ) -> Result<Result<PurchaseOutcome, Failure>, PluginError> {
        let chars_max = self.limits.output_chars_max;
        self.measured(export, |biller| {
            let answer = biller.call(f)?;
            let checked = match &answer {
                Ok(outcome) => check_outcome(outcome, chars_max),
                Err(failure) => check_answer(&Err(failure.clone()), chars_max),
            };
            checked.map_err(PluginError::MalformedOutput)?;
            Ok(answer)
        })
    }

    /// Runs `f` and records the call's metrics.
    fn measured<T>(
        &self,
        export: &str,
        f: impl FnOnce(&LoadedBiller) -> Result<Result<T, Failure>, PluginError>,
    ) -> Result<Result<T, Failure>, PluginError> {
        let started = Instant::now();
        let answer = f(self);
        self.metrics.plugin_call(self.plugin_name(), export, outcome_label(&answer), started.elapsed().as_secs_f64());
        answer
    }

    /// Runs one export in a fresh store with the call deadline and memory cap.
    fn call<T>(
        &self,
        f: impl FnOnce(&BillerPlugin, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        run_once(&self.engine, &self.context, &self.limits, |store| self.pre.instantiate(store), f)
    }
}

pub(super) fn sane(text: &str, what: &str, chars_max: usize) -> Result<(), String> {
    if text.is_empty() || text.chars().count() > chars_max || text.chars().any(char::is_control) {
        return Err(format!("{what} is empty, has control characters or is over {chars_max} characters"));
    }
    Ok(())
}

/// A slug merchants type: lower-case letters, digits and dashes.
pub(super) fn is_slug(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn check_info(info: &BillerInfo, chars_max: usize) -> Result<(), String> {
    sane(&info.name, "the name", chars_max)?;
    if info.providers.len() > PROVIDERS_MAX {
        return Err(format!("more than {PROVIDERS_MAX} providers"));
    }
    for (n, provider) in info.providers.iter().enumerate() {
        if !is_slug(&provider.slug) {
            return Err(format!("provider slug {:?} is not lower-case letters, digits and dashes", provider.slug));
        }
        sane(&provider.name, "a provider's name", chars_max)?;
        let twice = info.providers[..n].iter().any(|p| p.slug == provider.slug && p.bill_type == provider.bill_type);
        if twice {
            return Err(format!("provider {} is described twice for one bill type", provider.slug));
        }
        if provider.by_plan != provider.amounts.is_empty() {
            return Err(format!("provider {} must sell either by plan or by amount ranges", provider.slug));
        }
        for range in &provider.amounts {
            if crate::values::money::Currency::from_code(&range.currency).is_err()
                || range.min == 0
                || range.min > range.max
            {
                return Err(format!("provider {} has an unusable amount range", provider.slug));
            }
        }
    }
    Ok(())
}

fn check_plans(plans: &[Plan], chars_max: usize) -> Result<(), String> {
    if plans.len() > PLANS_MAX {
        return Err(format!("more than {PLANS_MAX} plans"));
    }
    for plan in plans {
        if !is_slug(&plan.code) {
            return Err(format!("plan code {:?} is not lower-case letters, digits and dashes", plan.code));
        }
        sane(&plan.name, "a plan's name", chars_max)?;
        if plan.price.amount == 0 || crate::values::money::Currency::from_code(&plan.price.currency).is_err() {
            return Err(format!("plan {} has no usable price", plan.code));
        }
    }
    Ok(())
}

fn check_details(details: &CustomerDetails, chars_max: usize) -> Result<(), String> {
    sane(&details.name, "the customer's name", chars_max)?;
    if details.details.len() > DETAILS_MAX {
        return Err(format!("more than {DETAILS_MAX} customer details"));
    }
    for (label, value) in &details.details {
        sane(label, "a detail's label", chars_max)?;
        sane(value, "a detail's value", chars_max)?;
    }
    Ok(())
}

fn check_outcome(outcome: &PurchaseOutcome, chars_max: usize) -> Result<(), String> {
    if let Some(reference) = &outcome.provider_reference {
        sane(reference, "the provider reference", chars_max)?;
    }
    if outcome.tokens.len() > TOKENS_MAX {
        return Err(format!("more than {TOKENS_MAX} tokens"));
    }
    for token in &outcome.tokens {
        sane(token, "a token", chars_max)?;
    }
    if !outcome.tokens.is_empty() && outcome.status != TransactionStatus::Completed {
        return Err("tokens for a purchase that is not completed".into());
    }
    match (&outcome.status, &outcome.failure) {
        (TransactionStatus::Failed, None) => Err("a failed outcome without a failure".into()),
        (_, Some(failure)) => check_answer(&Err(failure.clone()), chars_max),
        _ => Ok(()),
    }
}
