//! The sandbox simulator compiled into the host: the benchmark's baseline
//! for what running it as a WebAssembly component costs. It shares the
//! plugin's outcome table source, so both do the same work. Built only with
//! the `compiled-in-simulator` feature; a production gateway never has it.

#[path = "../../../plugins/simulator/src/outcome.rs"]
#[allow(dead_code)]
mod outcome;

use super::{CollectRequest, Failure, PaymentMethod, RailInfo, RailOutcome, SupportedMethod, TransactionStatus};

const MOBILE_MONEY_ENTITY: &str = "Phoenix Hub Liberia, Inc.";
const CARD_ENTITY: &str = "Cinrique Inc.";

/// What the simulator component's `describe` answers.
pub fn describe() -> RailInfo {
    let method = |method, entity: &str| SupportedMethod { method, entity: entity.to_string() };
    RailInfo {
        name: super::routes::SIMULATOR_RAIL.to_string(),
        version: "compiled-in".to_string(),
        methods: vec![
            method(PaymentMethod::Card, CARD_ENTITY),
            method(PaymentMethod::MtnMomo, MOBILE_MONEY_ENTITY),
            method(PaymentMethod::OrangeMoney, MOBILE_MONEY_ENTITY),
            method(PaymentMethod::Wallet, MOBILE_MONEY_ENTITY),
        ],
        currencies: vec!["USD".to_string(), "LRD".to_string()],
    }
}

/// The simulator component's `collect`, line for line.
pub fn collect(request: &CollectRequest) -> Result<RailOutcome, Failure> {
    let identifier = match request.method {
        PaymentMethod::Card => request.card.as_deref(),
        PaymentMethod::MtnMomo | PaymentMethod::OrangeMoney | PaymentMethod::Wallet => {
            request.customer_phone.as_deref()
        }
    };
    let Some(identifier) = identifier else {
        return Err(Failure {
            code: "INVALID_REQUEST".to_string(),
            message: "the customer identifier (phone or card) is missing".to_string(),
            retryable: false,
        });
    };
    let (status, failure) = match outcome::for_identifier(identifier) {
        outcome::Outcome::Refunded => (TransactionStatus::Refunded, None),
        outcome::Outcome::Processing | outcome::Outcome::CompletesLater => (TransactionStatus::Processing, None),
        outcome::Outcome::Completed => (TransactionStatus::Completed, None),
        outcome::Outcome::Failed { code, message } => (
            TransactionStatus::Failed,
            Some(Failure { code: code.to_string(), message: message.to_string(), retryable: false }),
        ),
    };
    let provider_reference = Some(format!("sim_{}", request.payment_id));
    Ok(RailOutcome { status, provider_reference, failure, redirect_url: None })
}
