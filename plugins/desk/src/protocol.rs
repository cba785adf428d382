//! The desk protocol (`docs/desk-protocol.md`) without any I/O: request
//! bodies, reading the desk's answers and callbacks, what a trade's status
//! means to the gateway, and the callback signature. Amounts are JSON
//! integers of minor units: a number with a fraction or an exponent is
//! refused, never rounded.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::exports::soxara::billing::trader::{
    CardForm, GiftCardBrand, GiftCardOffer, GiftCardSale, Rate, RmbChannel, RmbOrder, RmbTerms, TradeOutcome,
};
use crate::soxara::gateway::types::{Failure, Money, TransactionStatus};

/// The header a callback's signature comes in (compared case-insensitively).
pub const SIGNATURE_HEADER: &str = "x-desk-signature";
/// How far a callback's signing time may be from the gateway's clock.
pub const SIGNATURE_TOLERANCE_S: u64 = 300;
/// The event a trade's callback names; any other event is ignored.
pub const TRADE_UPDATED: &str = "trade.updated";
/// The most characters of the desk's own text (names, reasons) passed on.
const TEXT_CHARS_MAX: usize = 200;
/// The most characters of an id or slug the desk gives.
const ID_CHARS_MAX: usize = 128;
/// The most entries of one listing kept (the host refuses more than 500).
const LISTING_MAX: usize = 500;

pub fn failure(code: &str, message: impl Into<String>, retryable: bool) -> Failure {
    Failure { code: code.to_string(), message: message.into(), retryable }
}

/// What kind of trade the desk is talking about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    GiftCard,
    Rmb,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::GiftCard => "gift_card",
            Kind::Rmb => "rmb",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        match text {
            "gift_card" => Some(Kind::GiftCard),
            "rmb" => Some(Kind::Rmb),
            _ => None,
        }
    }

    /// Where a trade of this kind is created (and, with `/{trade_id}`, read).
    pub fn collection(self) -> &'static str {
        match self {
            Kind::GiftCard => "/v1/gift-cards/trades",
            Kind::Rmb => "/v1/rmb/orders",
        }
    }
}

/// Where a trade stands at the desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeskStatus {
    Pending,
    Processing,
    Completed,
    Cancelled,
    Refunded,
    Failed,
}

impl DeskStatus {
    fn parse(text: &str) -> Option<DeskStatus> {
        Some(match text {
            "pending" => DeskStatus::Pending,
            "processing" => DeskStatus::Processing,
            "completed" => DeskStatus::Completed,
            "cancelled" => DeskStatus::Cancelled,
            "refunded" => DeskStatus::Refunded,
            "failed" => DeskStatus::Failed,
            _ => return None,
        })
    }
}

/// An amount in minor units of a currency, as the desk writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    pub amount: u64,
    pub currency: String,
}

/// A trade (gift card or RMB order) as the desk reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskTrade {
    /// The desk's own id: the trade's provider reference.
    pub id: Option<String>,
    pub trade_id: String,
    pub kind: Option<Kind>,
    pub status: DeskStatus,
    pub face_value: Option<Amount>,
    pub verified_value: Option<Amount>,
    /// The desk's reason code and message, for a trade that did not go through.
    pub reason: Option<(String, String)>,
}

// ---- requests -------------------------------------------------------------

fn money_json(money: &Money) -> Value {
    json!({ "amount": money.amount, "currency": money.currency })
}

/// `POST /v1/gift-cards/trades`: the sale under its trade id, the card's
/// code (or notes) and photos as base64 with their SHA-256.
pub fn gift_card_body(sale: &GiftCardSale, callback_url: Option<&str>) -> Vec<u8> {
    let images: Vec<Value> = sale
        .images
        .iter()
        .map(|image| {
            json!({
                "file_name": image.file_name,
                "content_type": image.content_type,
                "sha256": image.sha256,
                "data": base64(&image.bytes),
            })
        })
        .collect();
    let mut body = json!({
        "trade_id": sale.trade_id,
        "brand": sale.brand,
        "country": sale.country,
        "form": form_word(sale.form),
        "face_value": money_json(&sale.face_value),
        "payout": money_json(&sale.payout),
        "additional_info": sale.additional_info,
        "images": images,
        "created_at_ms": sale.created_at_ms,
    });
    if let Some(url) = callback_url {
        body["callback_url"] = json!(url);
    }
    body.to_string().into_bytes()
}

/// `POST /v1/rmb/orders`: the order under its trade id.
pub fn rmb_body(order: &RmbOrder, callback_url: Option<&str>) -> Vec<u8> {
    let mut body = json!({
        "trade_id": order.trade_id,
        "channel": order.channel,
        "recipient": { "identifier": order.recipient_identifier, "name": order.recipient_name },
        "amount": money_json(&order.amount),
        "paid": money_json(&order.paid),
        "created_at_ms": order.created_at_ms,
    });
    if let Some(url) = callback_url {
        body["callback_url"] = json!(url);
    }
    body.to_string().into_bytes()
}

fn form_word(form: CardForm) -> &'static str {
    match form {
        CardForm::Ecode => "ecode",
        CardForm::Physical => "physical",
    }
}

/// Whether a sale carries everything the desk needs to take it: the code
/// of an e-code, the photos' bytes of a physical card.
pub fn sale_is_complete(sale: &GiftCardSale) -> bool {
    match sale.form {
        CardForm::Ecode => sale.additional_info.as_deref().is_some_and(|code| !code.trim().is_empty()),
        CardForm::Physical => !sale.images.is_empty() && sale.images.iter().all(|image| !image.bytes.is_empty()),
    }
}

// ---- answers --------------------------------------------------------------

fn parse_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|_| "the answer is not JSON".to_string())
}

/// Text the desk wrote, without control characters and at most `max` characters.
fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// A non-empty string field of at most `max` characters, cleaned.
fn text_field(value: &Value, max: usize) -> Option<String> {
    let text = clean(value.as_str()?.trim(), max);
    (!text.is_empty()).then_some(text)
}

fn is_currency(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

fn is_slug(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_code(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// A whole number: `10000` is, `10000.0` and `1e4` are not.
fn whole(value: &Value) -> Option<u64> {
    value.as_u64()
}

/// `{"amount": <integer>, "currency": "USD"}`.
fn amount(value: &Value) -> Result<Amount, String> {
    let currency = value["currency"].as_str().filter(|c| is_currency(c)).ok_or("an amount without a currency")?;
    let amount = whole(&value["amount"]).ok_or("an amount that is not a whole number of minor units")?;
    Ok(Amount { amount, currency: currency.to_string() })
}

fn optional_amount(value: &Value) -> Result<Option<Amount>, String> {
    if value.is_null() { Ok(None) } else { amount(value).map(Some) }
}

/// A trade or order object (from a create, a lookup or a callback).
pub fn trade_of(value: &Value) -> Result<DeskTrade, String> {
    let trade_id = text_field(&value["trade_id"], ID_CHARS_MAX).ok_or("a trade without its trade_id")?;
    let status = value["status"].as_str().and_then(DeskStatus::parse).ok_or("a trade with an unknown status")?;
    let kind = match &value["kind"] {
        Value::Null => None,
        kind => Some(kind.as_str().and_then(Kind::parse).ok_or("a trade of an unknown kind")?),
    };
    let reason = match &value["reason"] {
        Value::Null => None,
        reason => Some((
            reason["code"].as_str().unwrap_or_default().trim().to_string(),
            reason["message"].as_str().map(|m| clean(m.trim(), TEXT_CHARS_MAX)).unwrap_or_default(),
        )),
    };
    Ok(DeskTrade {
        id: text_field(&value["id"], ID_CHARS_MAX),
        trade_id,
        kind,
        status,
        face_value: optional_amount(&value["face_value"])?,
        verified_value: optional_amount(&value["verified_value"])?,
        reason,
    })
}

pub fn parse_trade(body: &[u8]) -> Result<DeskTrade, String> {
    trade_of(&parse_json(body)?)
}

/// The desk's error body, `{"error": {"code", "message"}}`: its code when
/// it is one the gateway can pass on, and its message.
pub fn parse_error(body: &[u8]) -> Option<(String, String)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = &value["error"];
    let code = error["code"].as_str().map(str::trim).filter(|c| is_code(c))?;
    let message = error["message"].as_str().map(|m| clean(m.trim(), TEXT_CHARS_MAX)).unwrap_or_default();
    Some((code.to_string(), message))
}

/// A refusal of a request (`400`, `422`): the trade was not created.
pub fn refusal(status: u16, body: &[u8], what: &str) -> Failure {
    match parse_error(body) {
        Some((code, message)) if !message.is_empty() => {
            failure(&code, format!("the desk refused {what}: {message}"), false)
        }
        Some((code, _)) => failure(&code, format!("the desk refused {what}"), false),
        None => failure("DESK_REFUSED", format!("the desk refused {what} ({status})"), false),
    }
}

/// The reason a trade did not go through, as a failure the gateway shows:
/// the desk's own code and message when usable, else a default.
fn reason_failure(trade: &DeskTrade, kind: Kind) -> Failure {
    let (default_code, default_message) = match (trade.status, kind) {
        (DeskStatus::Cancelled, Kind::GiftCard) => ("CARD_REJECTED", "the desk rejected the card"),
        (DeskStatus::Cancelled, Kind::Rmb) => ("ORDER_CANCELLED", "the desk cancelled the order"),
        (DeskStatus::Refunded, _) => ("DESK_REFUNDED", "the desk returned the money"),
        _ => ("DESK_FAILED", "the desk could not complete the trade"),
    };
    let (code, message) = trade.reason.clone().unwrap_or_default();
    let code = if is_code(&code) { code } else { default_code.to_string() };
    let message = if message.is_empty() { default_message.to_string() } else { message };
    failure(&code, message, false)
}

/// What the gateway makes of a trade the desk reported. `declared` is the
/// sale's declared face value, when known (a callback knows only what the
/// desk says). A verified value is reported only for a completed gift card
/// whose verified value is below the declared one, and must be in its
/// currency and not above it.
pub fn outcome(trade: &DeskTrade, kind: Kind, declared: Option<&Amount>) -> Result<TradeOutcome, String> {
    if trade.kind.is_some_and(|k| k != kind) {
        return Err(format!(
            "the desk reports a {} trade, not a {} one",
            trade.kind.map_or("", Kind::word),
            kind.word()
        ));
    }
    let provider_reference = trade.id.clone();
    let status = match trade.status {
        DeskStatus::Pending | DeskStatus::Processing => TransactionStatus::Processing,
        DeskStatus::Completed => TransactionStatus::Completed,
        DeskStatus::Cancelled => TransactionStatus::Cancelled,
        DeskStatus::Refunded => TransactionStatus::Refunded,
        DeskStatus::Failed => TransactionStatus::Failed,
    };
    let mut verified_value = None;
    if let (Kind::GiftCard, DeskStatus::Completed, Some(verified)) = (kind, trade.status, &trade.verified_value) {
        let face = declared
            .or(trade.face_value.as_ref())
            .ok_or("a verified value without the declared face value to compare it with")?;
        if verified.currency != face.currency || verified.amount == 0 || verified.amount > face.amount {
            return Err(format!(
                "a verified value of {} {} for a card declared at {} {}",
                verified.amount, verified.currency, face.amount, face.currency
            ));
        }
        if verified.amount < face.amount {
            verified_value = Some(Money { amount: verified.amount, currency: verified.currency.clone() });
        }
    }
    let failure = match status {
        TransactionStatus::Cancelled | TransactionStatus::Refunded | TransactionStatus::Failed => {
            Some(reason_failure(trade, kind))
        }
        _ => None,
    };
    Ok(TradeOutcome { status, provider_reference, verified_value, failure })
}

/// Still processing at the desk (or maybe received: a status check will know).
pub fn processing(provider_reference: Option<String>) -> TradeOutcome {
    TradeOutcome { status: TransactionStatus::Processing, provider_reference, verified_value: None, failure: None }
}

fn rate_of(value: &Value, base: &str, quote: &str) -> Option<Rate> {
    let (numerator, denominator) = (whole(&value["numerator"])?, whole(&value["denominator"])?);
    if numerator == 0 || denominator == 0 || !is_currency(base) || !is_currency(quote) {
        return None;
    }
    Some(Rate { base: base.to_string(), quote: quote.to_string(), numerator, denominator })
}

/// `GET /v1/gift-cards/catalog`. Entries the gateway could not use (a bad
/// slug, a rate of zero, a denomination of zero) are left out rather than
/// failing the whole catalogue; a brand left with no offer is dropped.
pub fn parse_catalog(body: &[u8]) -> Result<Vec<GiftCardBrand>, String> {
    let value = parse_json(body)?;
    let brands = value["brands"].as_array().ok_or("a catalogue without brands")?;
    let mut listed: Vec<GiftCardBrand> = Vec::new();
    for brand in brands {
        let Some(slug) = brand["slug"].as_str().filter(|s| is_slug(s)) else { continue };
        let Some(name) = text_field(&brand["name"], TEXT_CHARS_MAX) else { continue };
        if listed.iter().any(|b| b.slug == slug) || listed.len() == LISTING_MAX {
            continue;
        }
        let offers: Vec<GiftCardOffer> =
            brand["offers"].as_array().into_iter().flatten().filter_map(offer_of).collect();
        if !offers.is_empty() {
            listed.push(GiftCardBrand { slug: slug.to_string(), name, offers });
        }
    }
    Ok(listed)
}

fn offer_of(offer: &Value) -> Option<GiftCardOffer> {
    let country = offer["country"].as_str().filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))?;
    let card_currency = offer["card_currency"].as_str().filter(|c| is_currency(c))?;
    let mut denominations: Vec<u64> =
        offer["denominations"].as_array()?.iter().filter_map(whole).filter(|d| *d > 0).collect();
    denominations.sort_unstable();
    denominations.dedup();
    denominations.truncate(LISTING_MAX);
    let mut forms = Vec::new();
    for form in offer["forms"].as_array()?.iter().filter_map(Value::as_str) {
        let form = match form {
            "ecode" => CardForm::Ecode,
            "physical" => CardForm::Physical,
            _ => continue,
        };
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    let mut rates: Vec<Rate> = Vec::new();
    for rate in offer["rates"].as_array()? {
        let Some(rate) = rate["payout_currency"].as_str().and_then(|quote| rate_of(rate, card_currency, quote)) else {
            continue;
        };
        if !rates.iter().any(|r| r.quote == rate.quote) && rates.len() < LISTING_MAX {
            rates.push(rate);
        }
    }
    if denominations.is_empty() || forms.is_empty() || rates.is_empty() {
        return None;
    }
    Some(GiftCardOffer {
        country: country.to_string(),
        card_currency: card_currency.to_string(),
        denominations,
        forms,
        rates,
    })
}

/// `GET /v1/rmb/terms`. Unusable channels and rates are left out.
pub fn parse_terms(body: &[u8]) -> Result<RmbTerms, String> {
    let value = parse_json(body)?;
    let channels = value["channels"].as_array().ok_or("terms without channels")?;
    let mut listed: Vec<RmbChannel> = Vec::new();
    for channel in channels {
        let Some(slug) = channel["slug"].as_str().filter(|s| is_slug(s)) else { continue };
        let (Some(name), Some(recipient_label)) =
            (text_field(&channel["name"], TEXT_CHARS_MAX), text_field(&channel["recipient_label"], TEXT_CHARS_MAX))
        else {
            continue;
        };
        let (Some(min), Some(max)) = (whole(&channel["min"]), whole(&channel["max"])) else { continue };
        if min == 0 || min > max || listed.iter().any(|c| c.slug == slug) || listed.len() == LISTING_MAX {
            continue;
        }
        listed.push(RmbChannel { slug: slug.to_string(), name, recipient_label, min, max });
    }
    let mut rates: Vec<Rate> = Vec::new();
    for rate in value["rates"].as_array().ok_or("terms without rates")? {
        let Some(rate) = rate["pay_currency"].as_str().and_then(|base| rate_of(rate, base, "CNY")) else { continue };
        if !rates.iter().any(|r| r.base == rate.base) && rates.len() < LISTING_MAX {
            rates.push(rate);
        }
    }
    Ok(RmbTerms { channels: listed, rates })
}

// ---- callbacks ------------------------------------------------------------

/// HMAC-SHA256 of `t.body` under `secret`, in lower-case hex (as a desk
/// signs; the tests sign with it).
#[cfg(test)]
fn sign(secret: &str, t: u64, body: &[u8]) -> String {
    let mut mac = signer(secret, t);
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn signer(secret: &str, t: u64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac
}

/// Checks `X-Desk-Signature: t=<unix seconds>,v1=<hex>` (one or more `v1`,
/// for a secret being rotated) against the body, in constant time, and
/// that it was signed within [`SIGNATURE_TOLERANCE_S`] of `now_ms`.
pub fn verify_signature(headers: &[(String, String)], body: &[u8], secret: &str, now_ms: u64) -> Result<(), Failure> {
    let forged = |why: &str| failure("BAD_SIGNATURE", why.to_string(), false);
    let mut values = headers.iter().filter(|(name, _)| name.eq_ignore_ascii_case(SIGNATURE_HEADER));
    let header = match (values.next(), values.next()) {
        (Some((_, value)), None) => value,
        (None, _) => return Err(forged("no X-Desk-Signature header")),
        (Some(_), Some(_)) => return Err(forged("more than one X-Desk-Signature header")),
    };
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) if t.is_none() => t = Some(value.parse::<u64>().map_err(|_| forged("an unreadable t"))?),
            Some(("t", _)) => return Err(forged("more than one t")),
            Some(("v1", value)) => signatures.extend(decode_hex(value)),
            _ => {}
        }
    }
    let t = t.ok_or_else(|| forged("a signature without its time (t)"))?;
    if signatures.is_empty() {
        return Err(forged("a signature without a v1 value"));
    }
    let mut mac = signer(secret, t);
    mac.update(body);
    if !signatures.iter().any(|signature| mac.clone().verify_slice(signature).is_ok()) {
        return Err(forged("the signature does not match the body"));
    }
    if (now_ms / 1_000).abs_diff(t) > SIGNATURE_TOLERANCE_S {
        return Err(failure("STALE_CALLBACK", "the callback was signed more than 5 minutes from now", false));
    }
    Ok(())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
}

/// A callback's body: a `trade.updated` event is the trade, with its kind;
/// another event is `None` (authentic, of no interest).
pub fn parse_callback(body: &[u8]) -> Result<Option<(Kind, DeskTrade)>, String> {
    let value = parse_json(body)?;
    match value["event"].as_str() {
        Some(TRADE_UPDATED) => {}
        Some(_) => return Ok(None),
        None => return Err("a callback without its event".into()),
    }
    let trade = trade_of(&value)?;
    let kind = trade.kind.ok_or("a trade.updated event without the trade's kind")?;
    Ok(Some((kind, trade)))
}

// ---- encodings ------------------------------------------------------------

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `text` percent-encoded for a path segment.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exports::soxara::billing::trader::CardImage;

    fn usd(amount: u64) -> Money {
        Money { amount, currency: "USD".into() }
    }

    fn sale() -> GiftCardSale {
        GiftCardSale {
            trade_id: "gcs_1".into(),
            brand: "amazon".into(),
            country: "US".into(),
            form: CardForm::Ecode,
            face_value: usd(10_000),
            payout: usd(8_500),
            additional_info: Some("AMZN-CODE-1234 PIN 9876".into()),
            images: vec![],
            created_at_ms: 1_700_000_000_000,
        }
    }

    fn declared() -> Amount {
        Amount { amount: 10_000, currency: "USD".into() }
    }

    fn trade(status: &str, extra: Value) -> DeskTrade {
        let mut value = json!({ "id": "dsk-1", "trade_id": "gcs_1", "kind": "gift_card", "status": status,
                                "face_value": { "amount": 10_000, "currency": "USD" } });
        for (k, v) in extra.as_object().unwrap() {
            value[k] = v.clone();
        }
        trade_of(&value).unwrap()
    }

    #[test]
    fn a_gift_card_body_carries_the_card_and_photos_as_base64_with_their_hash() {
        let body: Value =
            serde_json::from_slice(&gift_card_body(&sale(), Some("https://gw/v1/callbacks/desk"))).unwrap();
        assert_eq!(body["trade_id"], "gcs_1");
        assert_eq!(body["form"], "ecode");
        assert_eq!(body["face_value"], json!({ "amount": 10_000, "currency": "USD" }));
        assert_eq!(body["payout"]["amount"], 8_500);
        assert_eq!(body["additional_info"], "AMZN-CODE-1234 PIN 9876");
        assert_eq!(body["callback_url"], "https://gw/v1/callbacks/desk");
        let photo = CardImage {
            file_name: "front.jpg".into(),
            content_type: "image/jpeg".into(),
            sha256: "ab".repeat(32),
            bytes: b"hello".to_vec(),
        };
        let physical = GiftCardSale { form: CardForm::Physical, additional_info: None, images: vec![photo], ..sale() };
        let body: Value = serde_json::from_slice(&gift_card_body(&physical, None)).unwrap();
        assert_eq!(body["images"][0]["data"], "aGVsbG8=");
        assert_eq!(body["images"][0]["sha256"], "ab".repeat(32));
        assert_eq!(body["form"], "physical");
        assert!(body.get("callback_url").is_none());
    }

    #[test]
    fn an_rmb_body_names_the_recipient_and_amounts_in_minor_units() {
        let order = RmbOrder {
            trade_id: "rmb_1".into(),
            channel: "alipay".into(),
            recipient_identifier: "li.wei@alipay".into(),
            recipient_name: Some("Li Wei".into()),
            amount: Money { amount: 100_000, currency: "CNY".into() },
            paid: usd(14_225),
            created_at_ms: 5,
        };
        let body: Value = serde_json::from_slice(&rmb_body(&order, None)).unwrap();
        assert_eq!(body["recipient"], json!({ "identifier": "li.wei@alipay", "name": "Li Wei" }));
        assert_eq!(body["amount"], json!({ "amount": 100_000, "currency": "CNY" }));
        assert_eq!(body["paid"], json!({ "amount": 14_225, "currency": "USD" }));
    }

    #[test]
    fn sales_are_complete_with_their_code_or_photo_bytes() {
        assert!(sale_is_complete(&sale()));
        assert!(!sale_is_complete(&GiftCardSale { additional_info: Some("  ".into()), ..sale() }));
        let photo = |bytes: Vec<u8>| CardImage {
            file_name: "f.jpg".into(),
            content_type: "image/jpeg".into(),
            sha256: String::new(),
            bytes,
        };
        let physical = |images| GiftCardSale { form: CardForm::Physical, additional_info: None, images, ..sale() };
        assert!(sale_is_complete(&physical(vec![photo(vec![1])])));
        assert!(!sale_is_complete(&physical(vec![photo(vec![1]), photo(vec![])])));
        assert!(!sale_is_complete(&physical(vec![])));
    }

    #[test]
    fn statuses_map_to_outcomes_with_reasons() {
        let pending = outcome(&trade("pending", json!({})), Kind::GiftCard, Some(&declared())).unwrap();
        assert_eq!(
            (pending.status, pending.provider_reference.as_deref()),
            (TransactionStatus::Processing, Some("dsk-1"))
        );
        assert!(pending.failure.is_none());
        let working = outcome(&trade("processing", json!({})), Kind::GiftCard, None).unwrap();
        assert_eq!(working.status, TransactionStatus::Processing);
        let done = outcome(&trade("completed", json!({})), Kind::GiftCard, Some(&declared())).unwrap();
        assert_eq!(done.status, TransactionStatus::Completed);
        assert!(done.verified_value.is_none() && done.failure.is_none());

        let reason = json!({ "reason": { "code": "CARD_ALREADY_USED", "message": "The card was redeemed\n before." } });
        let rejected = outcome(&trade("cancelled", reason), Kind::GiftCard, None).unwrap();
        let failure = rejected.failure.unwrap();
        assert_eq!((rejected.status, failure.code.as_str()), (TransactionStatus::Cancelled, "CARD_ALREADY_USED"));
        assert_eq!(failure.message, "The card was redeemed before.");
        assert!(!failure.retryable);

        let no_reason = outcome(&trade("cancelled", json!({})), Kind::GiftCard, None).unwrap();
        assert_eq!(no_reason.failure.unwrap().code, "CARD_REJECTED");
        let rmb = |status: &str, extra: Value| {
            let mut t = trade(status, extra);
            t.kind = Some(Kind::Rmb);
            outcome(&t, Kind::Rmb, None).unwrap()
        };
        let refunded = rmb("refunded", json!({ "reason": { "code": "not a code!", "message": "" } }));
        let failure = refunded.failure.unwrap();
        assert_eq!(refunded.status, TransactionStatus::Refunded);
        assert_eq!((failure.code.as_str(), failure.message.as_str()), ("DESK_REFUNDED", "the desk returned the money"));
        assert_eq!(rmb("cancelled", json!({})).failure.unwrap().code, "ORDER_CANCELLED");
        assert_eq!(rmb("failed", json!({})).status, TransactionStatus::Failed);
        assert!(outcome(&trade("pending", json!({})), Kind::Rmb, None).is_err(), "a gift card is not an RMB order");
    }

    #[test]
    fn a_verified_value_is_reported_only_below_the_declared_one() {
        let partly = json!({ "verified_value": { "amount": 6_000, "currency": "USD" } });
        let done = outcome(&trade("completed", partly.clone()), Kind::GiftCard, Some(&declared())).unwrap();
        let verified = done.verified_value.unwrap();
        assert_eq!((verified.amount, verified.currency.as_str()), (6_000, "USD"));
        // From the trade's own face value when the sale is not at hand (a callback).
        assert!(outcome(&trade("completed", partly), Kind::GiftCard, None).unwrap().verified_value.is_some());
        let full = json!({ "verified_value": { "amount": 10_000, "currency": "USD" } });
        assert!(
            outcome(&trade("completed", full), Kind::GiftCard, Some(&declared())).unwrap().verified_value.is_none()
        );
        for bad in [
            json!({ "verified_value": { "amount": 10_001, "currency": "USD" } }),
            json!({ "verified_value": { "amount": 0, "currency": "USD" } }),
            json!({ "verified_value": { "amount": 5_000, "currency": "EUR" } }),
        ] {
            assert!(outcome(&trade("completed", bad.clone()), Kind::GiftCard, Some(&declared())).is_err(), "{bad}");
        }
        let mut faceless = trade("completed", json!({ "verified_value": { "amount": 5_000, "currency": "USD" } }));
        faceless.face_value = None;
        assert!(outcome(&faceless, Kind::GiftCard, None).is_err(), "nothing to compare it with");
    }

    #[test]
    fn amounts_are_whole_minor_units_never_floats() {
        let parse = |amount: &str| {
            parse_trade(
                format!(
                    r#"{{"trade_id":"t","status":"completed","face_value":{{"amount":{amount},"currency":"USD"}}}}"#
                )
                .as_bytes(),
            )
        };
        assert_eq!(parse("10000").unwrap().face_value.unwrap().amount, 10_000);
        for bad in ["100.5", "1e4", "10000.0", "-1", "\"10000\""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse_trade(br#"{"trade_id":"t","status":"lost"}"#).is_err());
        assert!(parse_trade(br#"{"status":"pending"}"#).is_err());
        assert!(parse_trade(b"<html>").is_err());
        assert!(parse_trade(br#"{"trade_id":"t","status":"pending","kind":"crypto"}"#).is_err());
    }

    #[test]
    fn the_catalogue_keeps_what_the_gateway_can_use() {
        let body = br#"{"brands": [
            {"slug": "amazon", "name": "Amazon", "offers": [
                {"country": "US", "card_currency": "USD", "denominations": [10000, 2500, 0, 2500, 50.5],
                 "forms": ["ecode", "physical", "hologram"],
                 "rates": [{"payout_currency": "USD", "numerator": 85, "denominator": 100},
                           {"payout_currency": "LRD", "numerator": 16150, "denominator": 100},
                           {"payout_currency": "EUR", "numerator": 1, "denominator": 0},
                           {"payout_currency": "GBP", "numerator": 0.8, "denominator": 1}]},
                {"country": "usa", "card_currency": "USD", "denominations": [100], "forms": ["ecode"],
                 "rates": [{"payout_currency": "USD", "numerator": 1, "denominator": 1}]}]},
            {"slug": "Bad Slug", "name": "x", "offers": []},
            {"slug": "steam", "name": "Steam", "offers": [
                {"country": "US", "card_currency": "USD", "denominations": [5000], "forms": ["ecode"], "rates": []}]}
        ]}"#;
        let brands = parse_catalog(body).unwrap();
        assert_eq!(brands.len(), 1, "steam has no usable rate, the bad slug is dropped");
        let offer = &brands[0].offers[0];
        assert_eq!(brands[0].offers.len(), 1);
        assert_eq!(offer.denominations, [2_500, 10_000]);
        assert_eq!(offer.forms, [CardForm::Ecode, CardForm::Physical]);
        let rates: Vec<_> =
            offer.rates.iter().map(|r| (r.base.as_str(), r.quote.as_str(), r.numerator, r.denominator)).collect();
        assert_eq!(rates, [("USD", "USD", 85, 100), ("USD", "LRD", 16_150, 100)]);
        assert!(parse_catalog(b"{}").is_err());
        assert!(parse_catalog(b"nope").is_err());
    }

    #[test]
    fn terms_keep_usable_channels_and_rates_into_cny() {
        let body = br#"{"channels": [
              {"slug": "alipay", "name": "Alipay", "recipient_label": "Alipay ID", "min": 1000, "max": 5000000},
              {"slug": "wechat-pay", "name": "WeChat Pay", "recipient_label": "WeChat ID", "min": 5000, "max": 1000},
              {"slug": "bank-transfer", "name": "Bank", "recipient_label": "Card number", "min": 10.5, "max": 100}],
            "rates": [{"pay_currency": "USD", "numerator": 71, "denominator": 10},
                      {"pay_currency": "LRD", "numerator": 71, "denominator": 1900},
                      {"pay_currency": "usd", "numerator": 7, "denominator": 1}]}"#;
        let terms = parse_terms(body).unwrap();
        let channels: Vec<_> = terms.channels.iter().map(|c| (c.slug.as_str(), c.min, c.max)).collect();
        assert_eq!(channels, [("alipay", 1_000, 5_000_000)]);
        let rates: Vec<_> =
            terms.rates.iter().map(|r| (r.base.as_str(), r.quote.as_str(), r.numerator, r.denominator)).collect();
        assert_eq!(rates, [("USD", "CNY", 71, 10), ("LRD", "CNY", 71, 1_900)]);
        assert!(parse_terms(br#"{"channels": []}"#).is_err());
    }

    #[test]
    fn errors_keep_the_desks_code_when_it_is_one() {
        let refused = refusal(
            422,
            br#"{"error": {"code": "DENOMINATION_NOT_BOUGHT", "message": "We buy 25, 50, 100"}}"#,
            "the sale",
        );
        assert_eq!((refused.code.as_str(), refused.retryable), ("DENOMINATION_NOT_BOUGHT", false));
        assert_eq!(refused.message, "the desk refused the sale: We buy 25, 50, 100");
        assert_eq!(refusal(400, br#"{"error": {"code": "bad code"}}"#, "the sale").code, "DESK_REFUSED");
        assert_eq!(refusal(400, b"<html>", "the order").message, "the desk refused the order (400)");
    }

    fn signed(body: &[u8], secret: &str, t: u64) -> Vec<(String, String)> {
        vec![("X-Desk-Signature".into(), format!("t={t},v1={}", sign(secret, t, body)))]
    }

    #[test]
    fn only_fresh_callbacks_signed_with_the_secret_are_accepted() {
        let body = br#"{"event":"trade.updated"}"#;
        let now_ms = 1_700_000_000_000;
        let t = now_ms / 1_000;
        assert!(verify_signature(&signed(body, "whsec", t), body, "whsec", now_ms).is_ok());
        assert!(verify_signature(&signed(body, "whsec", t - 300), body, "whsec", now_ms).is_ok());
        let code = |headers: Vec<(String, String)>, body: &[u8]| {
            let failure = verify_signature(&headers, body, "whsec", now_ms).unwrap_err();
            assert!(!failure.retryable);
            failure.code
        };
        assert_eq!(code(signed(body, "whsec", t - 301), body), "STALE_CALLBACK");
        assert_eq!(code(signed(body, "whsec", t + 301), body), "STALE_CALLBACK");
        assert_eq!(code(signed(body, "other", t), body), "BAD_SIGNATURE");
        assert_eq!(code(signed(body, "whsec", t), br#"{"event":"trade.updated","x":1}"#), "BAD_SIGNATURE");
        assert_eq!(code(vec![], body), "BAD_SIGNATURE");
        let header = |value: String| vec![("x-desk-signature".to_string(), value)];
        assert_eq!(code(header(format!("v1={}", sign("whsec", t, body))), body), "BAD_SIGNATURE");
        assert_eq!(code(header(format!("t={t}")), body), "BAD_SIGNATURE");
        assert_eq!(code(header(format!("t=soon,v1={}", sign("whsec", t, body))), body), "BAD_SIGNATURE");
        // A signature over another time does not move the time.
        assert_eq!(code(header(format!("t={},v1={}", t + 1, sign("whsec", t, body))), body), "BAD_SIGNATURE");
        // During a rotation, either secret's signature will do.
        let rotated = header(format!("t={t},v1={},v1={}", sign("old", t, body), sign("whsec", t, body)));
        assert!(verify_signature(&rotated, body, "whsec", now_ms).is_ok());
        let twice = [signed(body, "whsec", t), signed(body, "whsec", t)].concat();
        assert_eq!(code(twice, body), "BAD_SIGNATURE");
    }

    #[test]
    fn callbacks_are_trade_events_or_ignored() {
        let body = br#"{"event": "trade.updated", "id": "dsk-9", "trade_id": "rmb_1", "kind": "rmb",
                        "status": "refunded", "reason": {"code": "RECIPIENT_REJECTED", "message": "Alipay refused"}}"#;
        let (kind, trade) = parse_callback(body).unwrap().unwrap();
        assert_eq!((kind, trade.trade_id.as_str(), trade.status), (Kind::Rmb, "rmb_1", DeskStatus::Refunded));
        let refunded = outcome(&trade, kind, None).unwrap();
        assert_eq!(refunded.failure.unwrap().code, "RECIPIENT_REJECTED");
        assert_eq!(parse_callback(br#"{"event": "desk.ping"}"#).unwrap(), None);
        assert!(parse_callback(br#"{"trade_id": "rmb_1", "status": "completed", "kind": "rmb"}"#).is_err());
        assert!(parse_callback(br#"{"event": "trade.updated", "trade_id": "rmb_1", "status": "completed"}"#).is_err());
        assert!(parse_callback(b"[").is_err());
    }

    #[test]
    fn encodings() {
        for (bytes, text) in
            [(&b""[..], ""), (b"f", "Zg=="), (b"fo", "Zm8="), (b"foo", "Zm9v"), (b"\xff\xfe\xfd\xfc", "//79/A==")]
        {
            assert_eq!(base64(bytes), text);
        }
        assert_eq!(url_encode("gcs_0Ab-9.~"), "gcs_0Ab-9.~");
        assert_eq!(url_encode("a b/c"), "a%20b%2Fc");
        assert_eq!(decode_hex(&"0f".repeat(32)), Some(vec![15; 32]));
        assert_eq!(decode_hex("0f"), None);
    }
}
