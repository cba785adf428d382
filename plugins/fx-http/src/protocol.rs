//! The rates API's response format, parsed without floats.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

#[derive(serde::Deserialize)]
struct Latest<'a> {
    base: String,
    #[serde(borrow)]
    rates: BTreeMap<String, &'a RawValue>,
}

/// Reads the quote currency's rate from a `/latest` response body.
pub fn parse_latest(body: &[u8], base: &str, quote: &str) -> Result<(u64, u64), String> {
    let latest: Latest = serde_json::from_slice(body).map_err(|e| format!("not a rates response: {e}"))?;
    if latest.base != base {
        return Err(format!("asked for {base}, got rates for {}", latest.base));
    }
    let raw = latest.rates.get(quote).ok_or_else(|| format!("no {quote} rate in the response"))?;
    soxara_sdk::parse_decimal(raw.get()).map_err(|e| format!("rate {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rate_exactly() {
        let body = br#"{"amount":1.0,"base":"USD","date":"2026-11-23","rates":{"LRD":181.25}}"#;
        assert_eq!(parse_latest(body, "USD", "LRD"), Ok((18125, 100)));
        assert!(parse_latest(body, "EUR", "LRD").is_err());
        assert!(parse_latest(body, "USD", "GBP").is_err());
        assert!(parse_latest(br#"{"base":"USD","rates":{"LRD":1.8e2}}"#, "USD", "LRD").is_err());
        assert!(parse_latest(br#"{"base":"USD","rates":{"LRD":-1}}"#, "USD", "LRD").is_err());
        assert!(parse_latest(b"<html>", "USD", "LRD").is_err());
    }
}
