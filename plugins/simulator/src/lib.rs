//! The sandbox simulator: a rail whose outcomes depend only on the request.
//!
//! The last four digits of the customer identifier (the phone for mobile money
//! and wallet payments, the card number for cards) decide the outcome, as the
//! seed's sandbox table says: `0000` refunded, `9999` stays processing,
//! anything else completed. It has no network import at all and never reads
//! the clock, so the same request always gives the same answer.

mod outcome;

wit_bindgen::generate!({
    world: "simulator",
    path: "../../wit",
});

use exports::soxara::gateway::rail::{
    Callback, CallbackEvent, CollectRequest, Guest, PayoutRequest, RailInfo, RailOutcome, RefundRequest,
    SupportedMethod,
};
use soxara::gateway::types::{Failure, PaymentMethod, TransactionStatus};

const MOBILE_MONEY_ENTITY: &str = "Phoenix Hub Liberia, Inc.";
const CARD_ENTITY: &str = "Cinrique Inc.";

struct Simulator;

impl Guest for Simulator {
    fn describe() -> RailInfo {
        let method = |method, entity: &str| SupportedMethod { method, entity: entity.to_string() };
        RailInfo {
            name: "simulator".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            methods: vec![
                method(PaymentMethod::Card, CARD_ENTITY),
                method(PaymentMethod::MtnMomo, MOBILE_MONEY_ENTITY),
                method(PaymentMethod::OrangeMoney, MOBILE_MONEY_ENTITY),
                method(PaymentMethod::Wallet, MOBILE_MONEY_ENTITY),
            ],
            currencies: vec!["USD".to_string(), "LRD".to_string()],
        }
    }

    fn collect(request: CollectRequest) -> Result<RailOutcome, Failure> {
        let identifier = identifier(&request)?;
        Ok(rail_outcome(outcome::for_identifier(identifier), &request.payment_id))
    }

    fn refund(request: RefundRequest) -> Result<RailOutcome, Failure> {
        Ok(RailOutcome {
            status: TransactionStatus::Completed,
            provider_reference: Some(format!("sim_{}", request.refund_id)),
            failure: None,
            redirect_url: None,
        })
    }

    fn refund_status(request: RefundRequest, _provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        // Sandbox refunds complete at once; a status check finds them so.
        Self::refund(request)
    }

    fn payout(request: PayoutRequest) -> Result<RailOutcome, Failure> {
        // `0000`, which refunds a payment, fails a payout.
        let outcome = match outcome::for_identifier(&request.destination) {
            outcome::Outcome::Refunded => {
                outcome::Outcome::Failed { code: "PAYOUT_FAILED", message: "sandbox: the payout failed" }
            }
            other => other,
        };
        Ok(rail_outcome(outcome, &request.payout_id))
    }

    fn payout_status(request: PayoutRequest, _provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        // Deterministic: asking again gives the payout's own outcome.
        Self::payout(request)
    }

    fn status(request: CollectRequest, _provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        // A `9999` payment stays processing for ever: that is its purpose.
        // MTN's "delayed" sandbox payer completes at the first check.
        let identifier = identifier(&request)?;
        Ok(rail_outcome(outcome::status_for_identifier(identifier), &request.payment_id))
    }

    fn handle_callback(_callback: Callback) -> Result<CallbackEvent, Failure> {
        Err(invalid("the simulator receives no provider callbacks"))
    }
}

/// The phone (mobile money, wallet) or card number the outcome depends on.
fn identifier(request: &CollectRequest) -> Result<&str, Failure> {
    let identifier = match request.method {
        PaymentMethod::Card => request.card.as_deref(),
        PaymentMethod::MtnMomo | PaymentMethod::OrangeMoney | PaymentMethod::Wallet => {
            request.customer_phone.as_deref()
        }
    };
    identifier.ok_or_else(|| invalid("the customer identifier (phone or card) is missing"))
}

fn rail_outcome(outcome: outcome::Outcome, payment_id: &str) -> RailOutcome {
    let (status, failure) = match outcome {
        outcome::Outcome::Refunded => (TransactionStatus::Refunded, None),
        outcome::Outcome::Processing | outcome::Outcome::CompletesLater => (TransactionStatus::Processing, None),
        outcome::Outcome::Completed => (TransactionStatus::Completed, None),
        outcome::Outcome::Failed { code, message } => (
            TransactionStatus::Failed,
            Some(Failure { code: code.to_string(), message: message.to_string(), retryable: false }),
        ),
    };
    RailOutcome { status, provider_reference: Some(format!("sim_{payment_id}")), failure, redirect_url: None }
}

fn invalid(message: &str) -> Failure {
    Failure { code: "INVALID_REQUEST".to_string(), message: message.to_string(), retryable: false }
}

export!(Simulator);
