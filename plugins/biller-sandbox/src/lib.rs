//! The sandbox biller: every bill type of the partner API's catalogue, with
//! no network. Outcomes follow the published sandbox table, by the last 4
//! digits of the primary customer identifier (phone, meter, smartcard, JAMB
//! profile, bet account):
//!
//! | last 4 | purchase |
//! |---|---|
//! | `0000` | refunded (nothing delivered, money returned) |
//! | `9999` | stays processing |
//! | `4040` | refused: the identifier does not verify |
//! | anything else | completed |
//!
//! `verify` accepts every well-formed identifier except those ending in
//! `4040`. Everything is decided from the request, so a status check gives
//! the purchase's first answer again.

wit_bindgen::generate!({
    world: "soxara:billing/biller-plugin",
    path: ["../../wit", "../../wit/billing"],
    // The gateway package is a dependency here, not the main package.
    generate_all,
});

mod catalogue;

use exports::soxara::billing::biller::{
    BillType, BillerInfo, Callback, CallbackEvent, CustomerDetails, Guest, IdentifierCheck, Plan, PurchaseOutcome,
    PurchaseRequest,
};
use soxara::gateway::types::{Failure, TransactionStatus};

/// Identifiers ending in this are refunded after purchase.
pub const REFUNDED_SUFFIX: &str = "0000";
/// Identifiers ending in this stay processing.
pub const PROCESSING_SUFFIX: &str = "9999";
/// Identifiers ending in this do not verify.
pub const UNVERIFIABLE_SUFFIX: &str = "4040";

struct Sandbox;

impl Guest for Sandbox {
    fn describe() -> BillerInfo {
        BillerInfo {
            name: "biller-sandbox".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            providers: catalogue::providers(),
        }
    }

    fn plans(bill_type: BillType, provider: String) -> Result<Vec<Plan>, Failure> {
        catalogue::plans(bill_type, &provider).ok_or_else(|| refusal("PROVIDER_UNKNOWN", "no such provider"))
    }

    fn verify(check: IdentifierCheck) -> Result<CustomerDetails, Failure> {
        check_identifier(check.bill_type, &check.identifier)?;
        let mut details = vec![("identifier".to_string(), check.identifier.clone())];
        if let Some(kind) = check.identifier_kind {
            details.push(("type".to_string(), kind));
        }
        Ok(CustomerDetails { name: format!("Sandbox Customer {}", last4(&check.identifier)), details })
    }

    fn purchase(request: PurchaseRequest) -> Result<PurchaseOutcome, Failure> {
        Ok(outcome(&request))
    }

    fn status(request: PurchaseRequest, _provider_reference: Option<String>) -> Result<PurchaseOutcome, Failure> {
        Ok(outcome(&request))
    }

    /// The sandbox sends nothing, so nothing calls back.
    fn handle_callback(_callback: Callback) -> Result<CallbackEvent, Failure> {
        Err(refusal("NOT_SUPPORTED", "the sandbox biller takes no callbacks"))
    }
}

/// What a purchase comes to, decided by its identifier alone.
fn outcome(request: &PurchaseRequest) -> PurchaseOutcome {
    let reference = Some(format!("SBX-{}", request.purchase_id));
    if let Err(failure) = check_identifier(request.bill_type, &request.identifier) {
        return PurchaseOutcome {
            status: TransactionStatus::Failed,
            provider_reference: None,
            tokens: vec![],
            failure: Some(failure),
        };
    }
    match last4(&request.identifier) {
        REFUNDED_SUFFIX => PurchaseOutcome {
            status: TransactionStatus::Refunded,
            provider_reference: reference,
            tokens: vec![],
            failure: Some(refusal(
                "PROVIDER_REVERSED",
                "the provider reversed the purchase (sandbox identifiers ending in 0000)",
            )),
        },
        PROCESSING_SUFFIX => PurchaseOutcome {
            status: TransactionStatus::Processing,
            provider_reference: reference,
            tokens: vec![],
            failure: None,
        },
        _ => PurchaseOutcome {
            status: TransactionStatus::Completed,
            provider_reference: reference,
            tokens: tokens(request),
            failure: None,
        },
    }
}

/// An electricity token, or one PIN per ePIN bought: 20 digits derived from
/// the purchase id, so every status check gives the same ones.
fn tokens(request: &PurchaseRequest) -> Vec<String> {
    let count = match request.bill_type {
        BillType::Electricity => 1,
        BillType::Epin => request.quantity.max(1),
        _ => 0,
    };
    (0..count).map(|n| digits(&format!("{}:{n}", request.purchase_id), 20)).collect()
}

/// `len` decimal digits from an FNV-1a hash of `seed` (deterministic, not secret).
fn digits(seed: &str, len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0u8.. {
        for byte in seed.bytes().chain([round]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        for digit in hash.to_string().chars().take(10) {
            out.push(digit);
            if out.len() == len {
                return out;
            }
        }
    }
    out
}

/// Refuses an identifier that is malformed for its bill type, or that the
/// sandbox treats as unknown to the provider (ending in `4040`).
fn check_identifier(bill_type: BillType, identifier: &str) -> Result<(), Failure> {
    let (what, lengths): (&str, &[usize]) = match bill_type {
        BillType::Airtime | BillType::Data | BillType::Epin => ("phone number", &[7, 8, 9, 10, 11, 12, 13, 14, 15]),
        BillType::Electricity => ("meter number", &[11, 13]),
        BillType::Cable => ("smartcard number", &[8, 10]),
        BillType::Education => ("JAMB profile id", &[8, 10]),
        BillType::Bet => ("bet account id", &[8, 9, 10]),
    };
    let digits_only = identifier.strip_prefix('+').unwrap_or(identifier);
    if !digits_only.bytes().all(|b| b.is_ascii_digit()) || !lengths.contains(&digits_only.len()) {
        return Err(refusal("VERIFICATION_FAILED", &format!("{identifier} is not a valid {what}")));
    }
    if digits_only.ends_with(UNVERIFIABLE_SUFFIX) {
        return Err(refusal(
            "VERIFICATION_FAILED",
            &format!("the provider knows no {what} {identifier} (sandbox identifiers ending in 4040)"),
        ));
    }
    Ok(())
}

fn last4(identifier: &str) -> &str {
    &identifier[identifier.len().saturating_sub(4)..]
}

fn refusal(code: &str, message: &str) -> Failure {
    Failure { code: code.to_string(), message: message.to_string(), retryable: false }
}

export!(Sandbox);
