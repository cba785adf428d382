//! Parsing exact decimal rates, free of bindings so it is tested natively.

/// One configured pair: (base, quote, numerator, denominator).
pub type Pair = (String, String, u64, u64);

/// Parses `USD/LRD=181, EUR/USD=1.0825`.
pub fn parse_table(table: &str) -> Result<Vec<Pair>, String> {
    table
        .split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (pair, value) = item.split_once('=').ok_or_else(|| format!("`{item}` is not PAIR=RATE"))?;
            let (base, quote) = pair.trim().split_once('/').ok_or_else(|| format!("`{pair}` is not BASE/QUOTE"))?;
            let (numerator, denominator) = soxara_sdk::parse_decimal(value.trim())?;
            Ok((base.trim().to_string(), quote.trim().to_string(), numerator, denominator))
        })
        .collect()
}

/// The rate for base→quote, directly or as the inverse of quote→base.
pub fn lookup(pairs: &[Pair], base: &str, quote: &str) -> Option<(u64, u64)> {
    pairs.iter().find_map(|(b, q, n, d)| {
        if b == base && q == quote {
            Some((*n, *d))
        } else if b == quote && q == base {
            Some((*d, *n))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_decimals_and_inverts() {
        let pairs = parse_table("USD/LRD=181, EUR/USD=1.0825").unwrap();
        assert_eq!(lookup(&pairs, "USD", "LRD"), Some((181, 1)));
        assert_eq!(lookup(&pairs, "LRD", "USD"), Some((1, 181)));
        assert_eq!(lookup(&pairs, "EUR", "USD"), Some((10825, 10000)));
        assert_eq!(lookup(&pairs, "USD", "GBP"), None);
        for bad in ["USD/LRD", "USDLRD=1", "USD/LRD=-1", "USD/LRD=0", "USD/LRD=1e3", "USD/LRD=abc"] {
            assert!(parse_table(bad).is_err(), "{bad}");
        }
    }
}
