//! The custody API (`docs/custody-protocol.md`) as pure functions: the
//! answers read into assets, addresses and deposits, the address request's
//! body, HTTP statuses read into failures, and deposit notifications
//! authenticated and read. Nothing here touches a host import, so it is
//! tested natively.
//!
//! Amounts, minimum deposits and rate terms are integers (JSON strings of
//! digits, or JSON integers): a float never holds an amount here.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use crate::exports::soxara::billing::trader::{
    AddressRequest, CryptoAsset, CryptoNetwork, Deposit, DepositState, Rate, TradeEvent,
};
use crate::soxara::gateway::types::Failure;

/// The header deposit notifications are signed in.
pub const SIGNATURE_HEADER: &str = "x-custody-signature";
/// How far a notification's signing time may be from the gateway's clock.
pub const SIGNATURE_WINDOW_MS: u64 = 5 * 60_000;
/// The notification event this trader reads.
pub const DEPOSIT_UPDATED: &str = "deposit.updated";
/// The most characters of provider text kept in a message.
const PROVIDER_TEXT_CHARS_MAX: usize = 120;
/// The longest address or deposit id taken from the provider.
const ID_CHARS_MAX: usize = 128;
/// The most decimals an asset may have (the host's limit).
const DECIMALS_MAX: u8 = 18;

pub fn failure(code: &str, message: String, retryable: bool) -> Failure {
    Failure { code: code.to_string(), message, retryable }
}

/// An answer the provider should not have given: retryable, since a later
/// answer may be readable.
pub fn bad_answer(why: String) -> Failure {
    failure("BAD_PROVIDER_RESPONSE", format!("the custody provider's answer was unreadable: {why}"), true)
}

// ---- requests -------------------------------------------------------

/// The `POST /v1/addresses` body.
pub fn address_body(request: &AddressRequest) -> Vec<u8> {
    serde_json::json!({ "owner": request.owner, "asset": request.asset, "network": request.network })
        .to_string()
        .into_bytes()
}

/// Percent-encodes everything but unreserved characters (a path segment).
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---- answers --------------------------------------------------------

/// A non-negative integer written as a string of digits or a JSON integer.
fn units(value: &Value, what: &str) -> Result<u64, String> {
    match value {
        Value::String(text) if !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().map_err(|_| format!("{what} {text:?} is out of range"))
        }
        Value::Number(number) => number.as_u64().ok_or_else(|| format!("{what} {number} is not a whole number")),
        other => Err(format!("{what} {} is not a whole number", truncate(&other.to_string()))),
    }
}

#[derive(Deserialize)]
struct WireAssets {
    assets: Vec<WireAsset>,
}

#[derive(Deserialize)]
struct WireAsset {
    symbol: String,
    name: String,
    decimals: u8,
    networks: Vec<WireNetwork>,
    #[serde(default)]
    rates: Vec<WireRate>,
}

#[derive(Deserialize)]
struct WireNetwork {
    slug: String,
    name: String,
    confirmations: u32,
    min_deposit: Value,
}

#[derive(Deserialize)]
struct WireRate {
    currency: String,
    numerator: Value,
    denominator: Value,
}

fn is_symbol(text: &str) -> bool {
    (2..=10).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn is_slug(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_currency(text: &str) -> bool {
    text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase())
}

/// The `GET /v1/assets` answer. Anything unusable (a symbol or slug the
/// gateway cannot take, a rate of zero) refuses the whole listing: a
/// provider answering that is broken, and guessing would misprice.
pub fn parse_assets(body: &[u8]) -> Result<Vec<CryptoAsset>, String> {
    let wire: WireAssets = serde_json::from_slice(body).map_err(|e| format!("assets: {e}"))?;
    let mut assets: Vec<CryptoAsset> = Vec::with_capacity(wire.assets.len());
    for asset in wire.assets {
        if !is_symbol(&asset.symbol) || assets.iter().any(|a| a.symbol == asset.symbol) {
            return Err(format!("asset symbol {:?} is not a unique upper-case symbol", truncate(&asset.symbol)));
        }
        if asset.decimals > DECIMALS_MAX {
            return Err(format!("{} has {} decimals", asset.symbol, asset.decimals));
        }
        if asset.networks.is_empty() {
            return Err(format!("{} is deposited on no network", asset.symbol));
        }
        let mut networks: Vec<CryptoNetwork> = Vec::with_capacity(asset.networks.len());
        for network in asset.networks {
            if !is_slug(&network.slug) || networks.iter().any(|n| n.slug == network.slug) {
                return Err(format!("{} network {:?} is not a unique slug", asset.symbol, truncate(&network.slug)));
            }
            let min_deposit = units(&network.min_deposit, "min_deposit")?;
            networks.push(CryptoNetwork {
                slug: network.slug,
                name: network.name,
                confirmations: network.confirmations,
                min_deposit,
            });
        }
        let mut rates: Vec<Rate> = Vec::with_capacity(asset.rates.len());
        for rate in asset.rates {
            if !is_currency(&rate.currency) || rates.iter().any(|r| r.quote == rate.currency) {
                return Err(format!("{} rate currency {:?} is not a unique ISO code", asset.symbol, rate.currency));
            }
            let numerator = units(&rate.numerator, "numerator")?;
            let denominator = units(&rate.denominator, "denominator")?;
            if numerator == 0 || denominator == 0 {
                return Err(format!("{} has a rate of zero terms in {}", asset.symbol, rate.currency));
            }
            rates.push(Rate { base: asset.symbol.clone(), quote: rate.currency, numerator, denominator });
        }
        assets.push(CryptoAsset { symbol: asset.symbol, name: asset.name, decimals: asset.decimals, networks, rates });
    }
    Ok(assets)
}

#[derive(Deserialize)]
struct WireAddress {
    address: String,
    owner: Option<String>,
    asset: Option<String>,
    network: Option<String>,
}

/// Printable, no spaces, of a sane length.
fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.chars().count() <= ID_CHARS_MAX
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The `POST /v1/addresses` answer: the address, for the triple asked
/// about (an answer about another one is refused).
pub fn parse_address(body: &[u8], request: &AddressRequest) -> Result<String, String> {
    let wire: WireAddress = serde_json::from_slice(body).map_err(|e| format!("address: {e}"))?;
    if !is_identifier(&wire.address) {
        return Err("the address is empty, too long or has spaces".into());
    }
    let echoed = [(&wire.owner, &request.owner), (&wire.asset, &request.asset), (&wire.network, &request.network)];
    if echoed.iter().any(|(said, asked)| said.as_ref().is_some_and(|said| said != *asked)) {
        return Err("the address is for another owner, asset or network".into());
    }
    Ok(wire.address)
}

#[derive(Deserialize)]
struct WireDeposit {
    id: String,
    address: String,
    asset: String,
    network: String,
    amount: Value,
    confirmations: u32,
    state: String,
}

fn deposit_state(state: &str) -> Option<DepositState> {
    Some(match state {
        "confirming" => DepositState::Confirming,
        "confirmed" => DepositState::Confirmed,
        "held" => DepositState::Held,
        "rejected" => DepositState::Rejected,
        _ => return None,
    })
}

fn read_deposit(value: Value) -> Result<Deposit, String> {
    let wire: WireDeposit = serde_json::from_value(value).map_err(|e| format!("deposit: {e}"))?;
    if !is_identifier(&wire.id) || !is_identifier(&wire.address) {
        return Err("a deposit's id or address is empty, too long or has spaces".into());
    }
    if !is_symbol(&wire.asset) || !is_slug(&wire.network) {
        return Err(format!("deposit {} names no usable asset or network", truncate(&wire.id)));
    }
    let amount = units(&wire.amount, "amount")?;
    if amount == 0 {
        return Err(format!("deposit {} is of nothing", truncate(&wire.id)));
    }
    let state = deposit_state(&wire.state)
        .ok_or_else(|| format!("deposit {} has an unknown state {:?}", truncate(&wire.id), truncate(&wire.state)))?;
    Ok(Deposit {
        deposit_id: wire.id,
        address: wire.address,
        asset: wire.asset,
        network: wire.network,
        amount,
        confirmations: wire.confirmations,
        state,
    })
}

/// `{"deposit": {…}}`, the `GET /v1/deposits/{id}` answer.
pub fn parse_deposit_answer(body: &[u8]) -> Result<Deposit, String> {
    let mut answer: Value = serde_json::from_slice(body).map_err(|e| format!("deposit: {e}"))?;
    read_deposit(answer.get_mut("deposit").map(Value::take).ok_or("no `deposit` in the answer")?)
}

/// The provider's `{"error": {"code", "message"}}`, if it sent one: its
/// code when it looks like one, and its message, shortened.
fn provider_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(answer) = serde_json::from_slice::<Value>(body) else { return (None, None) };
    let error = &answer["error"];
    let code = error["code"].as_str().filter(|code| {
        !code.is_empty()
            && code.len() <= 40
            && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    });
    (code.map(str::to_string), error["message"].as_str().map(truncate))
}

/// What a status other than 2xx means. `what`: the call, for the message
/// ("the deposit status"). 5xx (and 408, 429) may pass: retryable. Other
/// 4xx refuse this very request: not retryable.
pub fn refusal(status: u16, body: &[u8], what: &str) -> Failure {
    let (code, message) = provider_error(body);
    let said = message.map(|m| format!(": {m}")).unwrap_or_default();
    match status {
        401 | 403 => failure(
            "PROVIDER_AUTH_FAILED",
            format!("the custody provider refused the API key ({status}); check the trader's configuration"),
            false,
        ),
        408 | 429 | 500..=599 => {
            failure("PROVIDER_UNAVAILABLE", format!("the custody provider's {what} answered {status}{said}"), true)
        }
        404 => failure(
            code.as_deref().unwrap_or("NOT_FOUND_AT_PROVIDER"),
            format!("the custody provider's {what} found nothing (404){said}"),
            false,
        ),
        400..=499 => failure(
            code.as_deref().unwrap_or("PROVIDER_REFUSED"),
            format!("the custody provider refused the {what} ({status}){said}"),
            false,
        ),
        // 1xx, 3xx: nothing this API answers; maybe a proxy in between.
        _ => failure("PROVIDER_UNAVAILABLE", format!("the custody provider's {what} answered {status}"), true),
    }
}

/// At most `PROVIDER_TEXT_CHARS_MAX` characters of provider text, without
/// control characters.
pub fn truncate(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(PROVIDER_TEXT_CHARS_MAX).collect()
}

// ---- notifications --------------------------------------------------

fn rejected(code: &str, message: &str) -> Failure {
    failure(code, message.to_string(), false)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
}

/// Checks `X-Custody-Signature: t=<unix s>,v1=<hex>[,v1=<hex>…]`: one
/// `v1` must be the HMAC-SHA-256 of `t.body` under `secret` (compared in
/// constant time), and `t` within `SIGNATURE_WINDOW_MS` of `now_ms`. The
/// time is checked only once the signature is: a forger learns nothing
/// from the answer.
pub fn check_signature(headers: &[(String, String)], body: &[u8], secret: &str, now_ms: u64) -> Result<(), Failure> {
    let header = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(SIGNATURE_HEADER))
        .map(|(_, value)| value.as_str())
        .ok_or_else(|| rejected("BAD_SIGNATURE", "no X-Custody-Signature header"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) if timestamp.is_none() => timestamp = Some(value.trim()),
            Some(("v1", value)) => signatures.push(value.trim()),
            _ => {}
        }
    }
    let timestamp = timestamp
        .filter(|t| !t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| rejected("BAD_SIGNATURE", "the signature header has no timestamp"))?;
    let signed = |signature: &&str| {
        let Some(signature) = decode_hex(signature) else { return false };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&signature).is_ok()
    };
    if !signatures.iter().any(signed) {
        return Err(rejected("BAD_SIGNATURE", "the signature does not match the body"));
    }
    let signed_at_ms = timestamp.parse::<u64>().unwrap_or(u64::MAX).saturating_mul(1_000);
    if signed_at_ms.abs_diff(now_ms) > SIGNATURE_WINDOW_MS {
        return Err(rejected("STALE_CALLBACK", "the notification was signed more than 5 minutes from now"));
    }
    Ok(())
}

/// An authentic notification's body: a deposit seen or changed, or an
/// event this trader does not read.
pub fn parse_notification(body: &[u8]) -> Result<TradeEvent, String> {
    let mut notification: Value = serde_json::from_slice(body).map_err(|e| format!("notification: {e}"))?;
    match notification["event"].as_str() {
        Some(DEPOSIT_UPDATED) => {
            let deposit = notification.get_mut("deposit").map(Value::take).ok_or("no `deposit` in the notification")?;
            read_deposit(deposit).map(TradeEvent::Deposit)
        }
        Some(_) => Ok(TradeEvent::Ignored),
        None => Err("the notification names no event".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_4f1d";
    /// 2026-01-01T00:00:00Z.
    const T: u64 = 1_767_225_600;

    fn sign(secret: &str, t: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn headers(value: String) -> Vec<(String, String)> {
        vec![("content-type".into(), "application/json".into()), ("X-Custody-Signature".into(), value)]
    }

    fn signed(body: &[u8], t: u64) -> Vec<(String, String)> {
        headers(format!("t={t},v1={}", sign(SECRET, &t.to_string(), body)))
    }

    const NOTIFICATION: &str = r#"{"event":"deposit.updated","deposit":{"id":"ab12:0","address":"TXYZ","asset":"USDT","network":"tron","amount":"9007199254740993","confirmations":3,"state":"confirming"}}"#;

    #[test]
    fn assets_are_read_with_integer_amounts_and_rates() {
        let body = br#"{"assets":[
            {"symbol":"USDT","name":"Tether USD","decimals":6,
             "networks":[{"slug":"tron","name":"Tron","confirmations":20,"min_deposit":"1000000"},
                         {"slug":"ethereum","name":"Ethereum","confirmations":12,"min_deposit":5000000}],
             "rates":[{"currency":"USD","numerator":"99","denominator":"100"},
                      {"currency":"LRD","numerator":18810,"denominator":"100"}]},
            {"symbol":"BTC","name":"Bitcoin","decimals":8,
             "networks":[{"slug":"bitcoin","name":"Bitcoin","confirmations":2,"min_deposit":"10000"}],
             "rates":[{"currency":"USD","numerator":"18446744073709551615","denominator":"1"}]}]}"#;
        let assets = parse_assets(body).unwrap();
        assert_eq!(assets.len(), 2);
        let usdt = &assets[0];
        assert_eq!((usdt.symbol.as_str(), usdt.decimals), ("USDT", 6));
        let networks: Vec<_> =
            usdt.networks.iter().map(|n| (n.slug.as_str(), n.confirmations, n.min_deposit)).collect();
        assert_eq!(networks, [("tron", 20, 1_000_000), ("ethereum", 12, 5_000_000)]);
        let rates: Vec<_> =
            usdt.rates.iter().map(|r| (r.base.as_str(), r.quote.as_str(), r.numerator, r.denominator)).collect();
        assert_eq!(rates, [("USDT", "USD", 99, 100), ("USDT", "LRD", 18_810, 100)]);
        assert_eq!(assets[1].rates[0].numerator, u64::MAX, "read exactly from the string");
    }

    #[test]
    fn unusable_asset_listings_are_refused() {
        let asset = |symbol: &str, min: &str, numerator: &str| {
            format!(
                r#"{{"assets":[{{"symbol":"{symbol}","name":"X","decimals":6,
                   "networks":[{{"slug":"tron","name":"Tron","confirmations":1,"min_deposit":{min}}}],
                   "rates":[{{"currency":"USD","numerator":{numerator},"denominator":"1"}}]}}]}}"#
            )
        };
        assert!(parse_assets(asset("USDT", "\"1\"", "\"1\"").as_bytes()).is_ok());
        for (symbol, min, numerator) in [
            ("usdt", "\"1\"", "\"1\""),                       // not upper case
            ("USDT", "1.5", "\"1\""),                         // a float
            ("USDT", "\"1e6\"", "\"1\""),                     // not digits
            ("USDT", "\"-1\"", "\"1\""),                      // negative
            ("USDT", "\"1\"", "\"0\""),                       // a rate of zero
            ("USDT", "\"1\"", "0.99"),                        // a float rate
            ("USDT", "\"99999999999999999999999\"", "\"1\""), // beyond u64
        ] {
            assert!(parse_assets(asset(symbol, min, numerator).as_bytes()).is_err(), "{symbol} {min} {numerator}");
        }
        assert!(parse_assets(b"<html>").is_err());
    }

    #[test]
    fn the_address_must_be_for_the_triple_asked() {
        let request = AddressRequest { owner: "acct_1".into(), asset: "USDT".into(), network: "tron".into() };
        let body = address_body(&request);
        let sent: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(sent, serde_json::json!({ "owner": "acct_1", "asset": "USDT", "network": "tron" }));
        let ok = br#"{"owner":"acct_1","asset":"USDT","network":"tron","address":"TAbc123"}"#;
        assert_eq!(parse_address(ok, &request).unwrap(), "TAbc123");
        assert_eq!(parse_address(br#"{"address":"TAbc123"}"#, &request).unwrap(), "TAbc123");
        let other = br#"{"owner":"acct_2","asset":"USDT","network":"tron","address":"TAbc123"}"#;
        assert!(parse_address(other, &request).is_err());
        assert!(parse_address(br#"{"address":"T Abc"}"#, &request).is_err());
        assert!(parse_address(br#"{"address":""}"#, &request).is_err());
    }

    #[test]
    fn deposits_are_read_in_base_units_beyond_2_pow_53() {
        let body = br#"{"deposit":{"id":"ab12:0","address":"TXYZ","asset":"USDT","network":"tron","amount":"9007199254740993","confirmations":20,"state":"held"}}"#;
        let deposit = parse_deposit_answer(body).unwrap();
        assert_eq!(deposit.deposit_id, "ab12:0");
        assert_eq!(deposit.amount, 9_007_199_254_740_993);
        assert_eq!((deposit.confirmations, deposit.state), (20, DepositState::Held));
        for state in ["confirming", "confirmed", "held", "rejected"] {
            let body = String::from_utf8_lossy(body).replace("held", state);
            assert!(parse_deposit_answer(body.as_bytes()).is_ok(), "{state}");
        }
        for (from, to) in [
            ("\"held\"", "\"pending\""),
            ("\"9007199254740993\"", "\"0\""),
            ("\"9007199254740993\"", "25.5"),
            ("\"ab12:0\"", "\"\""),
        ] {
            let body = String::from_utf8_lossy(body).replace(from, to);
            assert!(parse_deposit_answer(body.as_bytes()).is_err(), "{to}");
        }
    }

    #[test]
    fn statuses_become_failures_retryable_only_when_they_may_pass() {
        let body = br#"{"error":{"code":"DEPOSIT_UNKNOWN","message":"no such deposit"}}"#;
        let unknown = refusal(404, body, "deposit status");
        assert_eq!((unknown.code.as_str(), unknown.retryable), ("DEPOSIT_UNKNOWN", false));
        assert!(unknown.message.contains("no such deposit"));
        for status in [500, 502, 503, 504, 408, 429] {
            let failure = refusal(status, b"", "assets");
            assert_eq!((failure.code.as_str(), failure.retryable), ("PROVIDER_UNAVAILABLE", true), "{status}");
        }
        for status in [401, 403] {
            let failure = refusal(status, b"", "assets");
            assert_eq!((failure.code.as_str(), failure.retryable), ("PROVIDER_AUTH_FAILED", false), "{status}");
        }
        let refused = refusal(400, br#"{"error":{"code":"NETWORK_UNKNOWN","message":"no"}}"#, "address");
        assert_eq!((refused.code.as_str(), refused.retryable), ("NETWORK_UNKNOWN", false));
        let odd = refusal(422, br#"{"error":{"code":"not a code; DROP","message":"x"}}"#, "address");
        assert_eq!((odd.code.as_str(), odd.retryable), ("PROVIDER_REFUSED", false));
    }

    #[test]
    fn only_fresh_notifications_signed_with_the_secret_are_read() {
        let body = NOTIFICATION.as_bytes();
        let now_ms = T * 1_000;
        assert!(check_signature(&signed(body, T), body, SECRET, now_ms).is_ok());
        // A moment either way is fine; past 5 minutes it is refused.
        assert!(check_signature(&signed(body, T - 299), body, SECRET, now_ms).is_ok());
        assert!(check_signature(&signed(body, T + 299), body, SECRET, now_ms).is_ok());
        for t in [T - 301, T + 301, 0] {
            let stale = check_signature(&signed(body, t), body, SECRET, now_ms).unwrap_err();
            assert_eq!((stale.code.as_str(), stale.retryable), ("STALE_CALLBACK", false), "{t}");
        }
        // Another secret, another body, another timestamp than signed.
        let forged = headers(format!("t={T},v1={}", sign("guessed", &T.to_string(), body)));
        let refused = check_signature(&forged, body, SECRET, now_ms).unwrap_err();
        assert_eq!((refused.code.as_str(), refused.retryable), ("BAD_SIGNATURE", false));
        let tampered = NOTIFICATION.replace("9007199254740993", "9007199254740999");
        assert!(check_signature(&signed(body, T), tampered.as_bytes(), SECRET, now_ms).is_err());
        let moved = headers(format!("t={},v1={}", T + 1, sign(SECRET, &T.to_string(), body)));
        assert_eq!(check_signature(&moved, body, SECRET, now_ms).unwrap_err().code, "BAD_SIGNATURE");
        // Malformed or missing headers.
        for value in ["", "t=,v1=00", &format!("v1={}", sign(SECRET, "", body)), &format!("t={T}"), "garbage"] {
            let refused = check_signature(&headers(value.to_string()), body, SECRET, now_ms).unwrap_err();
            assert_eq!(refused.code, "BAD_SIGNATURE", "{value}");
        }
        assert!(check_signature(&[], body, SECRET, now_ms).is_err());
        // A rotation: an old signature beside the right one.
        let rotated = headers(format!(
            "t={T}, v1={}, v1={}",
            sign("old-secret", &T.to_string(), body),
            sign(SECRET, &T.to_string(), body)
        ));
        assert!(check_signature(&rotated, body, SECRET, now_ms).is_ok());
    }

    #[test]
    fn notifications_become_deposit_events() {
        let TradeEvent::Deposit(deposit) = parse_notification(NOTIFICATION.as_bytes()).unwrap() else {
            panic!("a deposit event")
        };
        assert_eq!((deposit.deposit_id.as_str(), deposit.address.as_str()), ("ab12:0", "TXYZ"));
        assert_eq!((deposit.amount, deposit.state), (9_007_199_254_740_993, DepositState::Confirming));
        let other = br#"{"event":"address.created","address":{"address":"TXYZ"}}"#;
        assert!(matches!(parse_notification(other), Ok(TradeEvent::Ignored)));
        assert!(parse_notification(br#"{"deposit":{}}"#).is_err());
        assert!(parse_notification(br#"{"event":"deposit.updated"}"#).is_err());
        assert!(parse_notification(b"not json").is_err());
    }

    #[test]
    fn deposit_ids_are_encoded_as_one_path_segment() {
        assert_eq!(url_encode("ab12:0"), "ab12%3A0");
        assert_eq!(url_encode("x y/z"), "x%20y%2Fz");
    }
}
