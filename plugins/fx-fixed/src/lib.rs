//! FX provider with operator-set rates. Config key `rates` lists pairs as
//! exact decimals, e.g. `USD/LRD=181, EUR/USD=1.0825`; the inverse of a
//! listed pair is served too. No floats: "1.0825" is 10825/10000.

mod rates;

wit_bindgen::generate!({
    world: "fx-plugin",
    path: "../../wit",
});

use exports::soxara::gateway::fx_provider::{Guest, Rate};
use soxara::gateway::types::Failure;
use soxara::gateway::{clock, config};

struct FixedRates;

impl Guest for FixedRates {
    fn name() -> String {
        "fixed".to_string()
    }

    fn get_rate(base: String, quote: String) -> Result<Rate, Failure> {
        let table =
            config::get("rates").ok_or_else(|| failure("NOT_CONFIGURED", "config key `rates` is not set", false))?;
        let pairs = rates::parse_table(&table).map_err(|e| failure("BAD_CONFIG", &e, false))?;
        let (numerator, denominator) = rates::lookup(&pairs, &base, &quote)
            .ok_or_else(|| failure("UNSUPPORTED_PAIR", &format!("no rate for {base}/{quote}"), false))?;
        Ok(Rate { base, quote, numerator, denominator, observed_at_ms: clock::now_ms() })
    }
}

fn failure(code: &str, message: &str, retryable: bool) -> Failure {
    Failure { code: code.to_string(), message: message.to_string(), retryable }
}

export!(FixedRates);
