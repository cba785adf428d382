//! Rail: MTN Mobile Money over the MTN MoMo Open API: payments (the
//! collection product's *request to pay*), refunds and payouts (the
//! disbursement product's *refund* and *transfer*).
//!
//! Every operation has the same shape: `POST` under an `X-Reference-Id`
//! derived from the gateway's id (so a repeat is refused by MTN with `409`
//! instead of moving money twice), answered `202 Accepted`, then settled by
//! a status look-up (`GET …/{reference}`) or MTN's callback.
//!
//! - `collect` / `refund` / `payout`: submit. A timeout or a 5xx leaves the
//!   operation processing; only a clear refusal fails it.
//! - `status` / `refund-status` / `payout-status`: look up. A `404` means MTN
//!   never received the request, so it is sent again under the same
//!   reference while it is young enough (`RESEND_WINDOW_MS`); later, the
//!   check reports an error and the operation stays processing for
//!   reconciliation, never re-sent.
//! - `handle-callback`: MTN does not sign callbacks, so the body only names
//!   the payment (`externalId`); the outcome always comes from a look-up made
//!   with our own credentials. Refund and transfer callbacks are
//!   acknowledged and left to the gateway's status checks.
//!
//! Config (operator): `base_url`, `subscription_key` (the collection
//! product's `Ocp-Apim-Subscription-Key`), `api_user`, `api_key`,
//! `target_environment` (required: `sandbox`, or the production name MTN
//! gives, e.g. `mtnliberia`), `currencies` (default `LRD,USD`; MTN's sandbox
//! takes only `EUR`). Refunds and payouts also need
//! `disbursement_subscription_key` (and `disbursement_api_user` /
//! `disbursement_api_key` when they differ from the collection ones);
//! without it they fail with `NOT_SUPPORTED`. The host adds `callback_url`.
//! The operator must allow the host of `base_url`. No credential ever
//! appears in a message.

mod client;
mod protocol;

use client::{Settings, Submitted};
use protocol::{Operation, Standing};
use soxara_sdk::prelude::*;

/// Mobile money moves under the Liberian operating company.
const ENTITY: &str = "Phoenix Hub Liberia, Inc.";
const DEFAULT_CURRENCIES: &str = "LRD,USD";
/// How long after an operation's creation a request MTN never received is
/// sent again. MTN gives a customer about 5 minutes to approve a payment;
/// past this, a prompt would arrive for an order they have likely given up
/// on (and a refund or payout that old wants a person's look).
const RESEND_WINDOW_MS: u64 = 3 * 60_000;

struct MtnMomo;

impl Rail for MtnMomo {
    fn describe() -> RailInfo {
        let currencies = config::get("currencies").unwrap_or_else(|| DEFAULT_CURRENCIES.to_string());
        RailInfo::new("mtn-momo", env!("CARGO_PKG_VERSION"), &currencies).method(PaymentMethod::MtnMomo, ENTITY)
    }

    fn collect(request: CollectRequest) -> Result<RailOutcome, Failure> {
        submit(&Settings::from_config()?, &Pending::payment(&request)?)
    }

    fn status(request: CollectRequest, provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        let pending = Pending::payment(&request)?;
        check(&Settings::from_config()?, &pending, provider_reference)
    }

    fn refund(request: RefundRequest) -> Result<RailOutcome, Failure> {
        submit(&Settings::from_config()?, &Pending::refund(&request)?)
    }

    fn refund_status(request: RefundRequest, provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        let pending = Pending::refund(&request)?;
        check(&Settings::from_config()?, &pending, provider_reference)
    }

    fn payout(request: PayoutRequest) -> Result<RailOutcome, Failure> {
        submit(&Settings::from_config()?, &Pending::transfer(&request)?)
    }

    fn payout_status(request: PayoutRequest, provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        let pending = Pending::transfer(&request)?;
        check(&Settings::from_config()?, &pending, provider_reference)
    }

    fn handle_callback(callback: Callback) -> Result<CallbackEvent, Failure> {
        if protocol::is_money_out_callback(&callback.query) {
            // Refunds and payouts are settled by the gateway's status checks.
            return Ok(CallbackEvent::Ignored);
        }
        let payment_id = protocol::callback_payment_id(&callback.body).map_err(|e| Failure::new("BAD_CALLBACK", e))?;
        let reference = protocol::reference_id(Operation::RequestToPay, &payment_id);
        match Settings::from_config()?.look_up(Operation::RequestToPay, &reference)? {
            Some(standing) => {
                Ok(CallbackEvent::Payment(CallbackOutcome { payment_id, outcome: outcome(standing, &reference) }))
            }
            None => Err(Failure::new("UNKNOWN_PAYMENT", "MTN has no request to pay for this callback's externalId")),
        }
    }
}

soxara_sdk::export_rail!(MtnMomo);

/// One operation as MTN will see it: what to send, under which reference.
struct Pending {
    operation: Operation,
    /// The gateway's id (payment, refund or payout).
    id: String,
    reference: String,
    body: Vec<u8>,
    created_at_ms: u64,
}

impl Pending {
    fn payment(request: &CollectRequest) -> Result<Pending, Failure> {
        if request.method != PaymentMethod::MtnMomo {
            return Err(Failure::new("INVALID_REQUEST", "this rail only serves mtn_momo payments"));
        }
        let msisdn = phone::msisdn(phone::required(&request.customer_phone)?)?;
        let currency = &request.money.currency;
        let amount = money::to_decimal_text(request.money.amount, currency)?;
        let id = &request.payment_id;
        Ok(Pending {
            operation: Operation::RequestToPay,
            id: id.clone(),
            reference: protocol::reference_id(Operation::RequestToPay, id),
            body: protocol::request_to_pay_body(id, &amount, currency, &msisdn, request.description.as_deref()),
            created_at_ms: request.created_at_ms,
        })
    }

    /// A refund goes back to whoever approved the request to pay: MTN finds
    /// them from the payment's reference.
    fn refund(request: &RefundRequest) -> Result<Pending, Failure> {
        let payment_reference = protocol::reference_id(Operation::RequestToPay, &request.payment_id);
        if request.provider_reference.as_ref().is_some_and(|r| *r != payment_reference) {
            return Err(Failure::new("BAD_REFERENCE", "the payment's provider reference is not one this rail made"));
        }
        let currency = &request.money.currency;
        let amount = money::to_decimal_text(request.money.amount, currency)?;
        let id = &request.refund_id;
        Ok(Pending {
            operation: Operation::Refund,
            id: id.clone(),
            reference: protocol::reference_id(Operation::Refund, id),
            body: protocol::refund_body(id, &request.payment_id, &amount, currency, &payment_reference),
            created_at_ms: request.created_at_ms,
        })
    }

    fn transfer(request: &PayoutRequest) -> Result<Pending, Failure> {
        let msisdn = phone::msisdn(&request.destination)?;
        let currency = &request.money.currency;
        let amount = money::to_decimal_text(request.money.amount, currency)?;
        let id = &request.payout_id;
        Ok(Pending {
            operation: Operation::Transfer,
            id: id.clone(),
            reference: protocol::reference_id(Operation::Transfer, id),
            body: protocol::transfer_body(id, &amount, currency, &msisdn),
            created_at_ms: request.created_at_ms,
        })
    }
}

/// Sends the operation. Anything short of a clear refusal leaves it
/// processing: MTN may have queued it, and a status check will know.
fn submit(settings: &Settings, pending: &Pending) -> Result<RailOutcome, Failure> {
    match settings.submit(pending.operation, &pending.reference, pending.body.clone())? {
        Submitted::Queued => Ok(RailOutcome::processing(Some(pending.reference.clone()))),
        Submitted::Refused(failure) => Err(failure),
    }
}

/// Asks MTN where the operation stands, sending it again under the same
/// reference if MTN never received it and it is still young.
fn check(settings: &Settings, pending: &Pending, provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
    if provider_reference.is_some_and(|r| r != pending.reference) {
        return Err(Failure::new("BAD_REFERENCE", "the stored provider reference is not this operation's"));
    }
    let noun = pending.operation.noun();
    match settings.look_up(pending.operation, &pending.reference)? {
        Some(standing) => Ok(outcome(standing, &pending.reference)),
        None if clock::now_ms().saturating_sub(pending.created_at_ms) < RESEND_WINDOW_MS => {
            // MTN never received it (lost on the way, or refused by a 5xx
            // before it was stored): send it again, same reference.
            log::info(&format!("{noun} {} unknown to MTN; sending it again", pending.id));
            submit(settings, pending)
        }
        None => Err(Failure::new(
            "NOT_FOUND_AT_PROVIDER",
            format!("MTN has no {noun} for {} and it is too old to send again; reconcile it", pending.id),
        )),
    }
}

/// A look-up's answer as a rail outcome.
fn outcome(standing: Standing, reference: &str) -> RailOutcome {
    let reference = Some(reference.to_string());
    match standing {
        Standing::Pending => RailOutcome::processing(reference),
        Standing::Successful => RailOutcome::completed(reference),
        Standing::Failed { code, message } => RailOutcome::failed(reference, Failure::new(code, message)),
    }
}
