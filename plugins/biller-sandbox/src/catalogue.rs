//! What the sandbox sells: Liberia's networks and utilities, and the
//! partner API's education, ePIN and bet products. Prices in minor units.

use crate::exports::soxara::billing::biller::{AmountRange, BillType, Plan, Provider};
use crate::soxara::gateway::types::Money;

/// Airtime and bet funding: LRD 10.00 – 50,000.00 or USD 0.10 – 250.00.
fn small_amounts() -> Vec<AmountRange> {
    vec![
        AmountRange { currency: "LRD".into(), min: 1_000, max: 5_000_000 },
        AmountRange { currency: "USD".into(), min: 10, max: 25_000 },
    ]
}

/// Electricity: LRD 100.00 – 500,000.00 or USD 1.00 – 2,500.00.
fn power_amounts() -> Vec<AmountRange> {
    vec![
        AmountRange { currency: "LRD".into(), min: 10_000, max: 50_000_000 },
        AmountRange { currency: "USD".into(), min: 100, max: 250_000 },
    ]
}

fn by_amount(slug: &str, name: &str, bill_type: BillType, amounts: Vec<AmountRange>, verifiable: bool) -> Provider {
    Provider { slug: slug.into(), name: name.into(), bill_type, by_plan: false, amounts, verifiable }
}

fn by_plan(slug: &str, name: &str, bill_type: BillType, verifiable: bool) -> Provider {
    Provider { slug: slug.into(), name: name.into(), bill_type, by_plan: true, amounts: vec![], verifiable }
}

pub fn providers() -> Vec<Provider> {
    vec![
        by_amount("mtn", "Lonestar Cell MTN", BillType::Airtime, small_amounts(), false),
        by_amount("orange", "Orange Liberia", BillType::Airtime, small_amounts(), false),
        by_plan("mtn", "Lonestar Cell MTN", BillType::Data, false),
        by_plan("orange", "Orange Liberia", BillType::Data, false),
        by_amount("lec", "Liberia Electricity Corporation", BillType::Electricity, power_amounts(), true),
        by_plan("dstv", "DStv", BillType::Cable, true),
        by_plan("gotv", "GOtv", BillType::Cable, true),
        by_plan("jamb", "JAMB (UTME and Direct Entry registration)", BillType::Education, true),
        by_plan("waec", "WAEC result checker", BillType::Epin, false),
        by_amount("lonestar-bet", "Lonestar Bet", BillType::Bet, small_amounts(), true),
    ]
}

fn plan(code: &str, name: &str, amount: u64, currency: &str) -> Plan {
    Plan { code: code.into(), name: name.into(), price: Money { amount, currency: currency.into() } }
}

/// The plans of a provider sold by plan; `None` for an unknown provider.
pub fn plans(bill_type: BillType, provider: &str) -> Option<Vec<Plan>> {
    Some(match (bill_type, provider) {
        (BillType::Data, "mtn") => vec![
            plan("mtn-500mb-1d", "500 MB, 1 day", 5_000, "LRD"),
            plan("mtn-1gb-7d", "1 GB, 7 days", 15_000, "LRD"),
            plan("mtn-5gb-30d", "5 GB, 30 days", 1_000, "USD"),
        ],
        (BillType::Data, "orange") => vec![
            plan("orange-750mb-3d", "750 MB, 3 days", 7_500, "LRD"),
            plan("orange-2gb-7d", "2 GB, 7 days", 25_000, "LRD"),
            plan("orange-10gb-30d", "10 GB, 30 days", 1_500, "USD"),
        ],
        (BillType::Cable, "dstv") => vec![
            plan("dstv-padi", "DStv Padi, 1 month", 900, "USD"),
            plan("dstv-compact", "DStv Compact, 1 month", 2_500, "USD"),
        ],
        (BillType::Cable, "gotv") => vec![
            plan("gotv-smallie", "GOtv Smallie, 1 month", 500, "USD"),
            plan("gotv-max", "GOtv Max, 1 month", 1_400, "USD"),
        ],
        (BillType::Education, "jamb") => {
            vec![plan("utme", "UTME registration", 4_000, "USD"), plan("de", "Direct Entry registration", 3_500, "USD")]
        }
        (BillType::Epin, "waec") => vec![plan("waec-checker", "WAEC result checker PIN", 1_000, "USD")],
        _ => return None,
    })
}
