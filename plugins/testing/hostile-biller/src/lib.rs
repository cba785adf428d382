//! A hostile biller, for the gateway's isolation tests only (built into
//! `target/test-plugins/`, never loaded by a normal gateway). It sells MTN
//! airtime; the last four digits of the phone pick the misbehaviour of a
//! purchase:
//!
//! | last 4 | does |
//! |---|---|
//! | `0001` | loops for ever |
//! | `0002` | allocates until memory runs out |
//! | `0003` | panics (a trap) |
//! | `0004` | answers `failed` without a failure, with a 1 MiB token |
//! | other | completes normally |
//!
//! A status check answers `processing`: the purchases it wrecked stay for
//! reconciliation.

wit_bindgen::generate!({
    world: "soxara:billing/biller-plugin",
    path: ["../../../wit", "../../../wit/billing"],
    generate_all,
});

use exports::soxara::billing::biller::{
    AmountRange, BillType, BillerInfo, Callback, CallbackEvent, CustomerDetails, Guest, IdentifierCheck, Plan,
    Provider, PurchaseOutcome, PurchaseRequest,
};
use soxara::gateway::types::{Failure, TransactionStatus};

struct Hostile;

fn refused(what: &str) -> Failure {
    Failure {
        code: "NOT_SUPPORTED".to_string(),
        message: format!("the hostile biller has no {what}"),
        retryable: false,
    }
}

impl Guest for Hostile {
    fn describe() -> BillerInfo {
        BillerInfo {
            name: "hostile-biller".to_string(),
            version: "0.1.0".to_string(),
            providers: vec![Provider {
                slug: "mtn".to_string(),
                name: "Lonestar Cell MTN".to_string(),
                bill_type: BillType::Airtime,
                by_plan: false,
                amounts: vec![AmountRange { currency: "LRD".to_string(), min: 1_000, max: 5_000_000 }],
                verifiable: false,
            }],
        }
    }

    fn plans(_bill_type: BillType, _provider: String) -> Result<Vec<Plan>, Failure> {
        Err(refused("plans"))
    }

    fn verify(_check: IdentifierCheck) -> Result<CustomerDetails, Failure> {
        Err(refused("verification"))
    }

    fn purchase(request: PurchaseRequest) -> Result<PurchaseOutcome, Failure> {
        let phone = &request.identifier;
        match phone.get(phone.len().saturating_sub(4)..).unwrap_or("") {
            "0001" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "0002" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![7u8; 1 << 20]));
                }
            }
            "0003" => panic!("hostile biller panics on purpose"),
            "0004" => Ok(PurchaseOutcome {
                status: TransactionStatus::Failed,
                provider_reference: None,
                tokens: vec!["9".repeat(1 << 20)],
                failure: None,
            }),
            _ => Ok(PurchaseOutcome {
                status: TransactionStatus::Completed,
                provider_reference: Some(format!("hostile_{}", request.purchase_id)),
                tokens: vec![],
                failure: None,
            }),
        }
    }

    fn status(_request: PurchaseRequest, _provider_reference: Option<String>) -> Result<PurchaseOutcome, Failure> {
        Ok(PurchaseOutcome {
            status: TransactionStatus::Processing,
            provider_reference: None,
            tokens: vec![],
            failure: None,
        })
    }

    fn handle_callback(_callback: Callback) -> Result<CallbackEvent, Failure> {
        Err(refused("callbacks"))
    }
}

export!(Hostile);
