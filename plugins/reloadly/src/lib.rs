//! Biller: airtime and data top-ups for Liberia's Lonestar Cell MTN (`mtn`)
//! and Orange Liberia (`orange`), over the Reloadly Airtime API.
//!
//! - `describe`: the two networks, airtime by amount (the configured
//!   currency and range) and data by plan. No network: the host calls it
//!   when it loads the component.
//! - `plans` (data): the network's data operator in the country listing
//!   (`GET /operators/countries/{ISO}`), its fixed amounts as plans whose
//!   code carries the price (`mtn-data-15000`).
//! - `purchase`: the phone's operator is auto-detected first
//!   (`GET /operators/auto-detect/phone/{phone}/countries/{ISO}`); a number
//!   on another network is refused (`VERIFICATION_FAILED`) with nothing
//!   bought. Then `POST /topups` under `customIdentifier` = the purchase id,
//!   which Reloadly refuses to reuse, so nothing is ever bought twice. A
//!   timeout or a 5xx leaves the purchase processing: Reloadly may have
//!   topped up.
//! - `status`: by transaction id when one is known
//!   (`GET /topups/{id}/status`), else by the purchase id in the
//!   transactions report. Only when Reloadly has no top-up under that id is
//!   it sent again, under the same id, while the purchase is young
//!   (`RESEND_WINDOW_MS`); later the check reports an error and the purchase
//!   stays processing for reconciliation. A known transaction id is never
//!   sent again, and a re-send fails the purchase only when Reloadly refuses
//!   the request's own content (the phone, the amount): a report can lag,
//!   and a refusal about the account may follow from the first top-up.
//! - `verify` and `handle-callback`: not offered (a phone cannot be
//!   checked; Reloadly's synchronous top-ups need no callback).
//!
//! Config (operator): `client_id`, `client_secret` (required);
//! `environment` (`sandbox`, the default, or `live`) or `audience` (the
//! audience URL); `mode` (from the host) must match it (`MODE_MISMATCH`).
//! Optional: `auth_url` (default `https://auth.reloadly.com`), `base_url`
//! (default: the audience's host), `country` (default `LR`), `dial_code`
//! (default from the country), `currency` (default `LRD`), `amount_min` and
//! `amount_max` (airtime, minor units). The operator must allow the hosts
//! of `auth_url` and `base_url`. No credential ever appears in a message.

wit_bindgen::generate!({
    world: "soxara:billing/biller-plugin",
    path: ["../../wit", "../../wit/billing"],
    // The gateway package is a dependency here, not the main package.
    generate_all,
});

mod client;
mod protocol;

use client::{Sent, Settings};
use exports::soxara::billing::biller::{
    AmountRange, BillType, BillerInfo, Callback, CallbackEvent, CustomerDetails, Guest, IdentifierCheck, Plan,
    Provider, PurchaseOutcome, PurchaseRequest,
};
use protocol::failure;
use soxara::gateway::clock;
use soxara::gateway::log::{self, Level};
use soxara::gateway::types::{Failure, TransactionStatus};

/// How long after a purchase's creation a top-up Reloadly never received
/// is sent again by a status check. The status checks of the first minutes
/// fall within it; past it, a top-up that never arrived wants a person's
/// look rather than airtime delivered long after it was asked for.
const RESEND_WINDOW_MS: u64 = 15 * 60_000;

struct Reloadly;

impl Guest for Reloadly {
    fn describe() -> BillerInfo {
        let amounts = vec![airtime_range()];
        let mut providers = Vec::new();
        for (slug, name) in protocol::NETWORKS {
            providers.push(Provider {
                slug: slug.into(),
                name: name.into(),
                bill_type: BillType::Airtime,
                by_plan: false,
                amounts: amounts.clone(),
                verifiable: false,
            });
        }
        for (slug, name) in protocol::NETWORKS {
            providers.push(Provider {
                slug: slug.into(),
                name: name.into(),
                bill_type: BillType::Data,
                by_plan: true,
                amounts: vec![],
                verifiable: false,
            });
        }
        BillerInfo { name: "reloadly".into(), version: env!("CARGO_PKG_VERSION").into(), providers }
    }

    fn plans(bill_type: BillType, provider: String) -> Result<Vec<Plan>, Failure> {
        if bill_type != BillType::Data {
            return Err(not_supported("plans for this bill type"));
        }
        let slug = network(&provider)?;
        let settings = Settings::from_config()?;
        let operators = settings.operators()?;
        let operator = protocol::data_operator(&operators, slug).ok_or_else(|| no_data_operator(slug))?;
        protocol::plans(operator, slug, &settings.currency)
            .map_err(|why| failure("PROVIDER_UNAVAILABLE", format!("Reloadly lists no usable data plans: {why}"), true))
    }

    /// A phone number cannot be checked before buying: the purchase checks
    /// its network itself.
    fn verify(_check: IdentifierCheck) -> Result<CustomerDetails, Failure> {
        Err(not_supported("checking an identifier (airtime and data are checked when bought)"))
    }

    fn purchase(request: PurchaseRequest) -> Result<PurchaseOutcome, Failure> {
        let settings = Settings::from_config()?;
        let topup = Topup::prepare(&settings, &request)?;
        send(&settings, &topup)
    }

    fn status(request: PurchaseRequest, provider_reference: Option<String>) -> Result<PurchaseOutcome, Failure> {
        let settings = Settings::from_config()?;
        if let Some(transaction_id) = provider_reference.as_deref() {
            // Reloadly gave this id, so it has the top-up: ask about that
            // one, and never send it again whatever the answer.
            let Some(mut found) = settings.status(transaction_id)? else {
                return Err(failure(
                    "NOT_FOUND_AT_PROVIDER",
                    format!("Reloadly does not show top-up {transaction_id} yet; checking again later"),
                    true,
                ));
            };
            // Keep the reference when a status answer leaves its id out.
            found.transaction_id = found.transaction_id.or(provider_reference);
            return Ok(protocol::outcome(found));
        }
        if let Some(found) = settings.report(&request.purchase_id)? {
            return Ok(protocol::outcome(found));
        }
        if clock::now_ms().saturating_sub(request.created_at_ms) >= RESEND_WINDOW_MS {
            return Err(failure(
                "NOT_FOUND_AT_PROVIDER",
                format!(
                    "Reloadly has no top-up for {} and it is too old to send again; reconcile it",
                    request.purchase_id
                ),
                true,
            ));
        }
        // Never received (lost on the way, or refused by a 5xx before it
        // was stored): send it again under the same customIdentifier. The
        // report may only be lagging, so anything short of Reloadly
        // refusing the request's own content leaves the purchase processing.
        log::log(Level::Info, &format!("top-up {} unknown to Reloadly; sending it again", request.purchase_id));
        let topup = Topup::prepare(&settings, &request).map_err(still_processing)?;
        match send(&settings, &topup) {
            // The same request was sent the first time, so it was refused
            // then too: nothing was bought, and the money goes back.
            Err(refusal) if protocol::refuses_the_request(&refusal) => Ok(PurchaseOutcome {
                status: TransactionStatus::Failed,
                provider_reference: None,
                tokens: vec![],
                failure: Some(refusal),
            }),
            // A refusal that depends on the account or the moment (the
            // balance, a limit, "recently recharged") may follow from the
            // first top-up itself: never fail on it.
            Err(refusal) => Err(still_processing(refusal)),
            answer => answer,
        }
    }

    /// Reloadly's top-ups answer synchronously; nothing calls back.
    fn handle_callback(_callback: Callback) -> Result<CallbackEvent, Failure> {
        Err(not_supported("callbacks"))
    }
}

export!(Reloadly);

/// A top-up ready to send: the checks that need Reloadly are done.
struct Topup {
    purchase_id: String,
    body: Vec<u8>,
}

impl Topup {
    /// Checks the request against Reloadly (the phone's network, the
    /// operator and its currencies) and builds the `POST /topups` body.
    fn prepare(settings: &Settings, request: &PurchaseRequest) -> Result<Topup, Failure> {
        let slug = network(&request.provider)?;
        let currency = &request.money.currency;
        if *currency != settings.currency {
            return Err(failure(
                "CURRENCY_NOT_SUPPORTED",
                format!("this biller sells in {}, not {currency}", settings.currency),
                false,
            ));
        }
        let number = protocol::international_number(&request.identifier, &settings.dial_code)
            .map_err(|why| failure("VERIFICATION_FAILED", why, false))?;
        let detected = settings.detect(&number)?.ok_or_else(|| {
            failure("VERIFICATION_FAILED", format!("Reloadly knows no network for {}", request.identifier), false)
        })?;
        if detected.slug() != Some(slug) {
            return Err(failure(
                "VERIFICATION_FAILED",
                format!(
                    "{} is on {}, not {slug}",
                    request.identifier,
                    detected.slug().map_or_else(|| protocol::truncate(&detected.name), network_name)
                ),
                false,
            ));
        }
        let operators;
        let operator = match request.bill_type {
            BillType::Airtime => &detected,
            BillType::Data => {
                let plan = request.plan.as_deref().unwrap_or_default();
                let price = protocol::plan_price(plan, slug)
                    .ok_or_else(|| failure("PLAN_UNKNOWN", format!("{plan} is not a {slug} data plan"), false))?;
                if request.quantity != 1 || request.money.amount != price {
                    return Err(failure(
                        "INVALID_REQUEST",
                        format!("a data plan is bought once, at its price ({price} minor units)"),
                        false,
                    ));
                }
                operators = settings.operators()?;
                let operator = protocol::data_operator(&operators, slug).ok_or_else(|| no_data_operator(slug))?;
                let on_sale = protocol::plans(operator, slug, currency).unwrap_or_default();
                if !on_sale.iter().any(|p| p.code == plan) {
                    return Err(failure("PLAN_UNKNOWN", format!("Reloadly no longer sells {plan}"), false));
                }
                operator
            }
            _ => return Err(not_supported("this bill type")),
        };
        let operator_id = operator
            .id()
            .ok_or_else(|| failure("BAD_PROVIDER_RESPONSE", "Reloadly's operator has no id".into(), true))?;
        let use_local_amount =
            operator.uses_local_amount(currency).map_err(|why| failure("CURRENCY_NOT_SUPPORTED", why, false))?;
        let amount = protocol::to_decimal_text(request.money.amount, currency)
            .map_err(|why| failure("CURRENCY_NOT_SUPPORTED", why, false))?;
        let body = protocol::topup_body(
            operator_id,
            &amount,
            use_local_amount,
            &request.purchase_id,
            &settings.country,
            &number,
        )
        .map_err(|why| failure("INVALID_REQUEST", why, false))?;
        Ok(Topup { purchase_id: request.purchase_id.clone(), body })
    }
}

/// Sends the top-up and reads Reloadly's answer into an outcome.
fn send(settings: &Settings, topup: &Topup) -> Result<PurchaseOutcome, Failure> {
    match settings.topup(&topup.body)? {
        Sent::Answered(found) => Ok(protocol::outcome(found)),
        Sent::Unknown => Ok(processing()),
        // Sent before (an answer lost, a retry): the report knows it.
        Sent::Duplicate => match settings.report(&topup.purchase_id) {
            Ok(Some(found)) => Ok(protocol::outcome(found)),
            Ok(None) | Err(_) => Ok(processing()),
        },
        Sent::Refused(failure) => Err(failure),
    }
}

/// A failure that leaves the purchase processing for the next check.
fn still_processing(failure: Failure) -> Failure {
    Failure { retryable: true, ..failure }
}

fn processing() -> PurchaseOutcome {
    PurchaseOutcome { status: TransactionStatus::Processing, provider_reference: None, tokens: vec![], failure: None }
}

/// The airtime range of `describe`: `amount_min`..`amount_max` (minor
/// units) of the configured currency, or that currency's default range.
fn airtime_range() -> AmountRange {
    let currency = client::configured_currency();
    let (default_min, default_max) = match currency.as_str() {
        "USD" => (10, 25_000),   // USD 0.10 – 250.00
        _ => (1_000, 5_000_000), // LRD 10.00 – 50,000.00
    };
    let read = |key: &str, default: u64| match client::setting(key) {
        None => default,
        Some(text) => text.parse::<u64>().unwrap_or_else(|_| {
            log::log(Level::Error, &format!("`{key}` is not a whole number of minor units; using {default}"));
            default
        }),
    };
    let (min, max) = (read("amount_min", default_min), read("amount_max", default_max));
    if min == 0 || min > max {
        log::log(Level::Error, "`amount_min` and `amount_max` make no range; using the default");
        return AmountRange { currency, min: default_min, max: default_max };
    }
    AmountRange { currency, min, max }
}

/// The slug of a network this biller sells.
fn network(provider: &str) -> Result<&'static str, Failure> {
    protocol::NETWORKS
        .iter()
        .map(|(slug, _)| *slug)
        .find(|slug| *slug == provider)
        .ok_or_else(|| failure("PROVIDER_UNKNOWN", format!("this biller sells no network {provider:?}"), false))
}

fn network_name(slug: &str) -> String {
    protocol::NETWORKS.iter().find(|(s, _)| *s == slug).map_or(slug, |(_, name)| name).to_string()
}

fn no_data_operator(slug: &str) -> Failure {
    failure("PROVIDER_UNAVAILABLE", format!("Reloadly lists no data operator for {}", network_name(slug)), true)
}

fn not_supported(what: &str) -> Failure {
    failure("NOT_SUPPORTED", format!("the reloadly biller does not support {what}"), false)
}
