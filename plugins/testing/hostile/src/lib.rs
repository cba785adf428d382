//! A hostile rail, for the gateway's isolation tests only (built into
//! `target/test-plugins/`, never loaded by a normal gateway). The last four
//! digits of the customer's phone pick the misbehaviour:
//!
//! | last 4 | does |
//! |---|---|
//! | `0001` | loops for ever |
//! | `0002` | allocates until memory runs out |
//! | `0003` | panics (a trap) |
//! | `0004` | answers with a 1 MiB provider reference and a bogus failure code |
//! | `0005` | sends HTTP to `config.target_url`, which is not on its allow-list |
//! | other | completes normally |

wit_bindgen::generate!({
    world: "rail-plugin",
    path: "../../../wit",
});

use exports::soxara::gateway::rail::{
    Callback, CallbackEvent, CallbackOutcome, CollectRequest, Guest, PayoutRequest, RailInfo, RailOutcome,
    RefundRequest, SupportedMethod,
};
use soxara::gateway::http;
use soxara::gateway::types::{Failure, PaymentMethod, TransactionStatus};

struct Hostile;

impl Guest for Hostile {
    fn describe() -> RailInfo {
        RailInfo {
            name: "hostile".to_string(),
            version: "0.1.0".to_string(),
            methods: vec![SupportedMethod {
                method: PaymentMethod::OrangeMoney,
                entity: "Phoenix Hub Liberia, Inc.".to_string(),
            }],
            currencies: vec!["USD".to_string(), "LRD".to_string()],
        }
    }

    fn collect(request: CollectRequest) -> Result<RailOutcome, Failure> {
        let phone = request.customer_phone.unwrap_or_default();
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
            "0003" => panic!("hostile rail panics on purpose"),
            "0004" => Ok(RailOutcome {
                status: TransactionStatus::Failed,
                provider_reference: Some("x".repeat(1 << 20)),
                failure: Some(Failure { code: "lower case!".to_string(), message: String::new(), retryable: true }),
                redirect_url: None,
            }),
            "0005" => {
                let url = soxara::gateway::config::get("target_url").unwrap_or_default();
                let request = http::Request { method: "GET".into(), url, headers: vec![], body: vec![] };
                let response = http::send(&request).expect("the host refuses hosts outside the allow-list");
                Ok(RailOutcome {
                    status: TransactionStatus::Completed,
                    provider_reference: Some(format!("leaked {}", response.status)),
                    failure: None,
                    redirect_url: None,
                })
            }
            _ => Ok(RailOutcome {
                status: TransactionStatus::Completed,
                provider_reference: Some(format!("hostile_{}", request.payment_id)),
                failure: None,
                redirect_url: None,
            }),
        }
    }

    fn refund(_request: RefundRequest) -> Result<RailOutcome, Failure> {
        panic!("not for refunds")
    }

    fn payout(_request: PayoutRequest) -> Result<RailOutcome, Failure> {
        panic!("not for payouts")
    }

    fn payout_status(_request: PayoutRequest, _provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        panic!("not for payouts")
    }

    fn refund_status(_request: RefundRequest, _provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        Ok(RailOutcome {
            status: TransactionStatus::Processing,
            provider_reference: None,
            failure: None,
            redirect_url: None,
        })
    }

    fn status(_request: CollectRequest, _provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        Ok(RailOutcome {
            status: TransactionStatus::Processing,
            provider_reference: None,
            failure: None,
            redirect_url: None,
        })
    }

    /// Misbehaves by the callback body: `loop`, `garbage`, anything else panics.
    fn handle_callback(callback: Callback) -> Result<CallbackEvent, Failure> {
        match callback.body.as_slice() {
            b"loop" => loop {
                std::hint::black_box(());
            },
            b"garbage" => Ok(CallbackEvent::Payment(CallbackOutcome {
                payment_id: String::new(),
                outcome: RailOutcome {
                    status: TransactionStatus::Failed,
                    provider_reference: None,
                    failure: None,
                    redirect_url: Some("javascript:alert(1)".to_string()),
                },
            })),
            _ => panic!("hostile rail panics in callbacks on purpose"),
        }
    }
}

export!(Hostile);
