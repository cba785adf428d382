//! The sandbox trader: buys US gift cards and crypto, sells RMB paid out in
//! China, all at fixed rates and with no network. Outcomes follow the
//! published sandbox table, by the last 4 characters of one field of the
//! request:
//!
//! | last 4 | gift card sale (the e-code, or the first photo's file stem) | RMB purchase (the recipient) | test deposit (the test reference) |
//! |---|---|---|---|
//! | `0000` | cancelled: the desk rejects the card | processing, then refunded | held for review |
//! | `9999` | stays processing (pending review) | stays processing | stays confirming |
//! | anything else | completed | completed | confirmed |
//!
//! Everything is decided from the request, so a status check gives the
//! trade's first answer again (except an RMB purchase to a recipient
//! ending in `0000`, which `rmb-buy` leaves processing and `rmb-status`
//! reports refunded). A deposit's id carries the whole deposit (see
//! [`deposit_id`]), so `deposit-status` gives back what `test-deposit`
//! answered.

wit_bindgen::generate!({
    world: "soxara:billing/trader-plugin",
    path: ["../../wit", "../../wit/billing"],
    // The gateway package is a dependency here, not the main package.
    generate_all,
});

mod catalogue;

use catalogue::Unlisted;
use exports::soxara::billing::trader::{
    AddressRequest, Callback, CardForm, CryptoAsset, Deposit, DepositState, GiftCardBrand, GiftCardSale, Guest,
    RmbOrder, RmbTerms, TestDepositRequest, TradeEvent, TradeKind, TradeOutcome, TraderInfo,
};
use soxara::gateway::types::{Failure, TransactionStatus};

/// Card codes, recipients and test references ending in this are refused
/// (a card), reversed (a payout) or held (a deposit).
pub const REFUSED_SUFFIX: &str = "0000";
/// Card codes, recipients and test references ending in this stay
/// processing (or confirming).
pub const PROCESSING_SUFFIX: &str = "9999";

/// What every deposit id starts with.
const DEPOSIT_PREFIX: &str = "sbx-dep-";

struct Sandbox;

impl Guest for Sandbox {
    fn describe() -> TraderInfo {
        TraderInfo {
            name: "trader-sandbox".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            trades: vec![TradeKind::GiftCardSale, TradeKind::RmbPurchase, TradeKind::CryptoSale],
        }
    }

    fn gift_card_catalog() -> Result<Vec<GiftCardBrand>, Failure> {
        Ok(catalogue::gift_card_brands())
    }

    fn gift_card_sell(sale: GiftCardSale) -> Result<TradeOutcome, Failure> {
        gift_card_outcome(&sale)
    }

    fn gift_card_status(sale: GiftCardSale, _provider_reference: Option<String>) -> Result<TradeOutcome, Failure> {
        gift_card_outcome(&sale)
    }

    fn rmb_offer() -> Result<RmbTerms, Failure> {
        Ok(catalogue::rmb_offer())
    }

    /// A recipient ending in `0000` is accepted (processing): the refusal
    /// comes later, from `rmb-status`.
    fn rmb_buy(order: RmbOrder) -> Result<TradeOutcome, Failure> {
        let outcome = rmb_outcome(&order)?;
        Ok(match outcome.status {
            TransactionStatus::Refunded => {
                TradeOutcome { status: TransactionStatus::Processing, failure: None, ..outcome }
            }
            _ => outcome,
        })
    }

    fn rmb_status(order: RmbOrder, _provider_reference: Option<String>) -> Result<TradeOutcome, Failure> {
        rmb_outcome(&order)
    }

    fn crypto_assets() -> Result<Vec<CryptoAsset>, Failure> {
        Ok(catalogue::crypto_assets())
    }

    fn deposit_address(request: AddressRequest) -> Result<String, Failure> {
        required_confirmations(&request.asset, &request.network)?;
        if request.owner.is_empty() {
            return Err(refusal("INVALID_REQUEST", "an address needs an owner"));
        }
        Ok(address(&request.owner, &request.asset, &request.network))
    }

    /// The deposit is rebuilt from its id, which must be one `test-deposit`
    /// gave.
    fn deposit_status(deposit_id: String) -> Result<Deposit, Failure> {
        parse_deposit_id(&deposit_id)
            .and_then(|request| deposit(&request).ok())
            .filter(|deposit| deposit.deposit_id == deposit_id)
            .ok_or_else(|| refusal("DEPOSIT_UNKNOWN", "no sandbox deposit has this id"))
    }

    fn test_deposit(request: TestDepositRequest) -> Result<Deposit, Failure> {
        deposit(&request)
    }

    /// The sandbox sends nothing, so nothing calls back.
    fn handle_callback(_callback: Callback) -> Result<TradeEvent, Failure> {
        Err(refusal("UNEXPECTED_CALLBACK", "the sandbox trader sends no callbacks"))
    }
}

// ---- gift cards -----------------------------------------------------

/// What a gift card sale comes to, decided by its card alone: the last 4
/// characters of the e-code, or of the first photo's file name without its
/// extension.
fn gift_card_outcome(sale: &GiftCardSale) -> Result<TradeOutcome, Failure> {
    let forms = catalogue::card_forms(&sale.brand, &sale.country).ok_or_else(|| {
        refusal("BRAND_UNKNOWN", &format!("the sandbox buys no {} cards from {}", sale.brand, sale.country))
    })?;
    if !forms.contains(&sale.form) {
        return Err(refusal("INVALID_REQUEST", &format!("{} cards are bought as e-codes only", sale.brand)));
    }
    let key = match sale.form {
        CardForm::Ecode => match sale.additional_info.as_deref().map(str::trim) {
            Some(code) if !code.is_empty() => last4(code),
            _ => return Err(refusal("INVALID_REQUEST", "an e-code sale needs the code in additional-info")),
        },
        CardForm::Physical => match sale.images.first() {
            Some(image) => last4(file_stem(&image.file_name)),
            None => return Err(refusal("INVALID_REQUEST", "a physical card sale needs photos of the card")),
        },
    };
    let reference = Some(format!("sbx-gc-{}", sale.trade_id));
    Ok(match key {
        REFUSED_SUFFIX => TradeOutcome {
            status: TransactionStatus::Cancelled,
            provider_reference: reference,
            verified_value: None,
            failure: Some(refusal("CARD_REJECTED", "the desk could not verify this card (sandbox 0000)")),
        },
        PROCESSING_SUFFIX => pending(reference),
        _ => done(reference),
    })
}

/// A file name without its directories and its extension: `card-0000.jpg`
/// is `card-0000`.
fn file_stem(file_name: &str) -> &str {
    let name = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    match name.rfind('.') {
        Some(dot) if dot > 0 => &name[..dot],
        _ => name,
    }
}

// ---- RMB ------------------------------------------------------------

/// Where an RMB purchase ends, decided by its recipient alone.
fn rmb_outcome(order: &RmbOrder) -> Result<TradeOutcome, Failure> {
    if !catalogue::rmb_channel_known(&order.channel) {
        return Err(refusal("CHANNEL_UNKNOWN", &format!("the sandbox pays out over no channel {}", order.channel)));
    }
    let reference = Some(format!("sbx-rmb-{}", order.trade_id));
    Ok(match last4(&order.recipient_identifier) {
        REFUSED_SUFFIX => TradeOutcome {
            status: TransactionStatus::Refunded,
            provider_reference: reference,
            verified_value: None,
            failure: Some(refusal("RECIPIENT_REJECTED", "the recipient's account refused the payout (sandbox 0000)")),
        },
        PROCESSING_SUFFIX => pending(reference),
        _ => done(reference),
    })
}

fn pending(provider_reference: Option<String>) -> TradeOutcome {
    TradeOutcome { status: TransactionStatus::Processing, provider_reference, verified_value: None, failure: None }
}

fn done(provider_reference: Option<String>) -> TradeOutcome {
    TradeOutcome { status: TransactionStatus::Completed, provider_reference, verified_value: None, failure: None }
}

// ---- crypto ---------------------------------------------------------

/// The confirmations a deposit needs, or why the asset and network are not
/// deposited here.
fn required_confirmations(asset: &str, network: &str) -> Result<u32, Failure> {
    catalogue::confirmations(asset, network).map_err(|unlisted| match unlisted {
        Unlisted::Asset => refusal("ASSET_UNKNOWN", &format!("the sandbox takes no {asset}")),
        Unlisted::Network => refusal("NETWORK_UNKNOWN", &format!("the sandbox takes no {asset} on {network}")),
    })
}

/// Base58 (Tron), hex (Ethereum) and bech32 (Bitcoin) characters.
const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const HEX: &[u8] = b"0123456789abcdef";
const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// The owner's address for an asset on a listed network, shaped like the
/// network's own (`T` + 33 base58, `0x` + 40 hex, `tb1q` + 38 bech32) but
/// derived from a hash: the same on every call, different per owner, and
/// never a real address.
fn address(owner: &str, asset: &str, network: &str) -> String {
    // Asset and network are listed slugs without `|`: the seed is unambiguous.
    let seed = format!("{asset}|{network}|{owner}");
    let (prefix, alphabet, len) = match network {
        "tron" => ("T", BASE58, 33),
        "ethereum" => ("0x", HEX, 40),
        _ => ("tb1q", BECH32, 38),
    };
    let mut out = String::from(prefix);
    out.extend(hashed_chars(&seed, alphabet).take(len));
    out
}

/// Characters of `alphabet` picked by FNV-1a hashes of `seed` and a counter
/// (deterministic, not secret).
fn hashed_chars<'a>(seed: &'a str, alphabet: &'a [u8]) -> impl Iterator<Item = char> + 'a {
    (0u32..).flat_map(move |round| {
        let hash = fnv1a([seed.as_bytes(), &round.to_le_bytes()]);
        hash.to_le_bytes().map(|byte| char::from(alphabet[usize::from(byte) % alphabet.len()]))
    })
}

/// 64-bit FNV-1a over the concatenated parts.
fn fnv1a<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.into_iter().flatten() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A deposit's id, from which the whole deposit can be rebuilt:
///
/// `sbx-dep-{check}-{asset}-{network}-{amount}-{address}-{test-reference}`
///
/// `check` is 16 hex digits of FNV-1a over
/// `address|asset|network|amount|test-reference` (it makes the id look
/// like a transaction hash and turns away ids edited by hand). Asset,
/// network, amount and address hold no `-`, so everything after the
/// address is the test reference, dashes and all: e.g.
/// `sbx-dep-0123456789abcdef-USDT-tron-25000000-T…-DEP-TX-1234`.
fn deposit_id(request: &TestDepositRequest) -> String {
    let TestDepositRequest { address, asset, network, amount, test_reference } = request;
    let check = fnv1a([format!("{address}|{asset}|{network}|{amount}|{test_reference}").as_bytes()]);
    format!("{DEPOSIT_PREFIX}{check:016x}-{asset}-{network}-{amount}-{address}-{test_reference}")
}

/// The request a deposit id was made from, if it is shaped like one (the
/// caller checks it rebuilds the same id).
fn parse_deposit_id(id: &str) -> Option<TestDepositRequest> {
    let rest = id.strip_prefix(DEPOSIT_PREFIX)?;
    let (check, rest) = rest.split_once('-')?;
    if check.len() != 16 || !check.bytes().all(|b| HEX.contains(&b)) {
        return None;
    }
    let (asset, rest) = rest.split_once('-')?;
    let (network, rest) = rest.split_once('-')?;
    let (amount, rest) = rest.split_once('-')?;
    let (address, test_reference) = rest.split_once('-')?;
    Some(TestDepositRequest {
        address: address.to_string(),
        asset: asset.to_string(),
        network: network.to_string(),
        amount: amount.parse().ok()?,
        test_reference: test_reference.to_string(),
    })
}

/// A simulated deposit, its state decided by the last 4 characters of the
/// test reference. A held deposit has its confirmations: it is held for
/// review, not by the chain.
fn deposit(request: &TestDepositRequest) -> Result<Deposit, Failure> {
    let required = required_confirmations(&request.asset, &request.network)?;
    if request.amount == 0 {
        return Err(refusal("INVALID_REQUEST", "a deposit needs an amount"));
    }
    let address_ok = !request.address.is_empty()
        && request.address.len() <= 128
        && !request.address.chars().any(|c| c == '-' || c.is_whitespace() || c.is_control());
    if !address_ok {
        return Err(refusal("INVALID_REQUEST", "a deposit needs an address (one deposit-address gave)"));
    }
    let test_reference = request.test_reference.trim();
    if test_reference.is_empty() || test_reference.chars().any(char::is_control) {
        return Err(refusal("INVALID_REQUEST", "a test deposit needs a test reference"));
    }
    let request = TestDepositRequest { test_reference: test_reference.to_string(), ..request.clone() };
    let (state, confirmations) = match last4(&request.test_reference) {
        REFUSED_SUFFIX => (DepositState::Held, required),
        PROCESSING_SUFFIX => (DepositState::Confirming, 0),
        _ => (DepositState::Confirmed, required),
    };
    Ok(Deposit {
        deposit_id: deposit_id(&request),
        address: request.address,
        asset: request.asset,
        network: request.network,
        amount: request.amount,
        confirmations,
        state,
    })
}

/// The last 4 characters (fewer if it is shorter).
fn last4(text: &str) -> &str {
    let start = text.char_indices().rev().nth(3).map_or(0, |(at, _)| at);
    &text[start..]
}

fn refusal(code: &str, message: &str) -> Failure {
    Failure { code: code.to_string(), message: message.to_string(), retryable: false }
}

export!(Sandbox);

#[cfg(test)]
mod tests {
    use super::*;
    use exports::soxara::billing::trader::CardImage;
    use soxara::gateway::types::Money;

    fn usd(amount: u64) -> Money {
        Money { amount, currency: "USD".into() }
    }

    fn ecode(code: &str) -> GiftCardSale {
        GiftCardSale {
            trade_id: "trd_1".into(),
            brand: "amazon".into(),
            country: "US".into(),
            form: CardForm::Ecode,
            face_value: usd(5_000),
            payout: usd(4_250),
            additional_info: Some(code.into()),
            images: vec![],
            created_at_ms: 0,
        }
    }

    fn physical(file_names: &[&str]) -> GiftCardSale {
        let images = file_names
            .iter()
            .map(|name| CardImage {
                file_name: (*name).into(),
                content_type: "image/jpeg".into(),
                sha256: "00".repeat(32),
                bytes: vec![0xff, 0xd8],
            })
            .collect();
        GiftCardSale { form: CardForm::Physical, additional_info: None, images, ..ecode("") }
    }

    fn order(recipient: &str) -> RmbOrder {
        RmbOrder {
            trade_id: "trd_2".into(),
            channel: "alipay".into(),
            recipient_identifier: recipient.into(),
            recipient_name: None,
            amount: Money { amount: 71_000, currency: "CNY".into() },
            paid: usd(10_000),
            created_at_ms: 0,
        }
    }

    fn sold(sale: GiftCardSale) -> (TransactionStatus, TransactionStatus, Option<String>) {
        let first = Sandbox::gift_card_sell(sale.clone()).unwrap();
        let again = Sandbox::gift_card_status(sale, first.provider_reference.clone()).unwrap();
        assert_eq!(first.provider_reference, again.provider_reference);
        assert!(first.verified_value.is_none());
        (first.status, again.status, first.failure.map(|f| f.code))
    }

    fn address_of(owner: &str, asset: &str, network: &str) -> Result<String, Failure> {
        Sandbox::deposit_address(AddressRequest { owner: owner.into(), asset: asset.into(), network: network.into() })
    }

    fn test_deposit(reference: &str) -> Deposit {
        let address = address_of("merchant-1", "USDT", "tron").unwrap();
        let request = TestDepositRequest {
            address,
            asset: "USDT".into(),
            network: "tron".into(),
            amount: 25_000_000,
            test_reference: reference.into(),
        };
        Sandbox::test_deposit(request).unwrap()
    }

    #[test]
    fn describes_itself() {
        let info = Sandbox::describe();
        assert_eq!(info.name, "trader-sandbox");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(info.trades, [TradeKind::GiftCardSale, TradeKind::RmbPurchase, TradeKind::CryptoSale]);
    }

    #[test]
    fn catalogue_lists_every_brand_at_its_rates() {
        let brands = Sandbox::gift_card_catalog().unwrap();
        let slugs: Vec<&str> = brands.iter().map(|b| b.slug.as_str()).collect();
        assert_eq!(slugs, ["amazon", "apple", "steam", "google-play"]);
        let amazon = &brands[0].offers[0];
        assert_eq!((amazon.country.as_str(), amazon.card_currency.as_str()), ("US", "USD"));
        assert_eq!(amazon.denominations, [2_500, 5_000, 10_000, 20_000]);
        assert_eq!(amazon.forms, [CardForm::Ecode, CardForm::Physical]);
        let rates: Vec<_> =
            amazon.rates.iter().map(|r| (r.base.as_str(), r.quote.as_str(), r.numerator, r.denominator)).collect();
        assert_eq!(rates, [("USD", "USD", 85, 100), ("USD", "LRD", 16_150, 100)]);
        assert_eq!(brands[2].offers[0].forms, [CardForm::Ecode], "steam: e-codes only");
        assert_eq!(brands[3].offers[0].rates[1].numerator, 78 * 190);
    }

    #[test]
    fn gift_card_outcomes_follow_the_code() {
        assert_eq!(sold(ecode("GIFT-USA-1234")), (TransactionStatus::Completed, TransactionStatus::Completed, None));
        let rejected = Some("CARD_REJECTED".to_string());
        assert_eq!(
            sold(ecode("GIFT-USA-0000")),
            (TransactionStatus::Cancelled, TransactionStatus::Cancelled, rejected)
        );
        assert_eq!(sold(ecode("GIFT-USA-9999")), (TransactionStatus::Processing, TransactionStatus::Processing, None));
        let outcome = Sandbox::gift_card_sell(ecode("GIFT-USA-0000")).unwrap();
        assert_eq!(outcome.provider_reference.as_deref(), Some("sbx-gc-trd_1"));
        let failure = outcome.failure.unwrap();
        assert_eq!(failure.message, "the desk could not verify this card (sandbox 0000)");
        assert!(!failure.retryable);
    }

    #[test]
    fn physical_card_outcomes_follow_the_first_photo() {
        let rejected = Some("CARD_REJECTED".to_string());
        let front_0000 = physical(&["front-0000.jpg", "back-1234.jpg"]);
        assert_eq!(sold(front_0000), (TransactionStatus::Cancelled, TransactionStatus::Cancelled, rejected));
        let front_9999 = physical(&["scans/front-9999.png"]);
        assert_eq!(sold(front_9999), (TransactionStatus::Processing, TransactionStatus::Processing, None));
        let front_1234 = physical(&["front-1234.webp", "back-0000.webp"]);
        assert_eq!(sold(front_1234), (TransactionStatus::Completed, TransactionStatus::Completed, None));
        assert_eq!(file_stem("card-0000.jpg"), "card-0000");
        assert_eq!(file_stem("archive.tar.gz"), "archive.tar");
        assert_eq!(file_stem(".hidden"), ".hidden");
    }

    #[test]
    fn gift_card_sales_are_checked() {
        let code = |sale: GiftCardSale| Sandbox::gift_card_sell(sale).unwrap_err().code;
        assert_eq!(code(GiftCardSale { additional_info: None, ..ecode("") }), "INVALID_REQUEST");
        assert_eq!(code(ecode("   ")), "INVALID_REQUEST");
        assert_eq!(code(physical(&[])), "INVALID_REQUEST");
        assert_eq!(code(GiftCardSale { brand: "nintendo".into(), ..ecode("GIFT-USA-1234") }), "BRAND_UNKNOWN");
        assert_eq!(code(GiftCardSale { country: "GB".into(), ..ecode("GIFT-USA-1234") }), "BRAND_UNKNOWN");
        assert_eq!(code(GiftCardSale { brand: "steam".into(), ..physical(&["front-1234.jpg"]) }), "INVALID_REQUEST");
        let failure = Sandbox::gift_card_status(ecode(""), None).unwrap_err();
        assert!(!failure.retryable);
    }

    #[test]
    fn rmb_offer_lists_the_channels() {
        let offer = Sandbox::rmb_offer().unwrap();
        let channels: Vec<_> = offer
            .channels
            .iter()
            .map(|c| (c.slug.as_str(), c.name.as_str(), c.recipient_label.as_str(), c.min, c.max))
            .collect();
        assert_eq!(
            channels,
            [
                ("alipay", "Alipay", "Alipay ID", 1_000, 5_000_000),
                ("wechat-pay", "WeChat Pay", "WeChat ID", 1_000, 5_000_000),
                ("bank-transfer", "Chinese bank transfer", "Bank card number", 1_000, 5_000_000),
            ]
        );
        let rates: Vec<_> =
            offer.rates.iter().map(|r| (r.base.as_str(), r.quote.as_str(), r.numerator, r.denominator)).collect();
        assert_eq!(rates, [("USD", "CNY", 71, 10), ("LRD", "CNY", 71, 1_900)]);
    }

    #[test]
    fn rmb_outcomes_follow_the_recipient() {
        let bought = |recipient: &str| Sandbox::rmb_buy(order(recipient)).unwrap();
        let status = |recipient: &str| Sandbox::rmb_status(order(recipient), None).unwrap();

        assert_eq!(bought("recipient1234").status, TransactionStatus::Completed);
        assert_eq!(status("recipient1234").status, TransactionStatus::Completed);
        assert_eq!(bought("recipient1234").provider_reference.as_deref(), Some("sbx-rmb-trd_2"));

        let accepted = bought("recipient0000");
        assert_eq!((accepted.status, accepted.failure.is_none()), (TransactionStatus::Processing, true));
        let refunded = status("recipient0000");
        assert_eq!(refunded.status, TransactionStatus::Refunded);
        let failure = refunded.failure.unwrap();
        assert_eq!(failure.code, "RECIPIENT_REJECTED");
        assert_eq!(failure.message, "the recipient's account refused the payout (sandbox 0000)");
        assert!(!failure.retryable);

        assert_eq!(bought("recipient9999").status, TransactionStatus::Processing);
        assert_eq!(status("recipient9999").status, TransactionStatus::Processing);

        let unknown = Sandbox::rmb_buy(RmbOrder { channel: "unionpay".into(), ..order("recipient1234") });
        let failure = unknown.unwrap_err();
        assert_eq!((failure.code.as_str(), failure.retryable), ("CHANNEL_UNKNOWN", false));
    }

    #[test]
    fn crypto_assets_are_listed_with_networks_and_rates() {
        let assets = Sandbox::crypto_assets().unwrap();
        let usdt = &assets[0];
        assert_eq!((usdt.symbol.as_str(), usdt.name.as_str(), usdt.decimals), ("USDT", "Tether USD", 6));
        let networks: Vec<_> =
            usdt.networks.iter().map(|n| (n.slug.as_str(), n.name.as_str(), n.confirmations, n.min_deposit)).collect();
        assert_eq!(
            networks,
            [("tron", "Tron (TRC-20)", 20, 1_000_000), ("ethereum", "Ethereum (ERC-20)", 12, 10_000_000)]
        );
        let rates: Vec<_> = usdt.rates.iter().map(|r| (r.quote.as_str(), r.numerator, r.denominator)).collect();
        assert_eq!(rates, [("USD", 99, 100), ("LRD", 18_810, 100)]);
        let btc = &assets[1];
        assert_eq!((btc.symbol.as_str(), btc.decimals, btc.networks.len()), ("BTC", 8, 1));
        assert_eq!((btc.networks[0].confirmations, btc.networks[0].min_deposit), (2, 10_000));
        let rates: Vec<_> = btc.rates.iter().map(|r| (r.quote.as_str(), r.numerator, r.denominator)).collect();
        assert_eq!(rates, [("USD", 60_000, 1), ("LRD", 11_400_000, 1)]);
    }

    #[test]
    fn deposit_addresses_are_stable_and_distinct_per_owner() {
        let tron = address_of("merchant-1", "USDT", "tron").unwrap();
        assert_eq!(tron, address_of("merchant-1", "USDT", "tron").unwrap());
        assert_ne!(tron, address_of("merchant-2", "USDT", "tron").unwrap());
        assert!(tron.starts_with('T') && tron.len() == 34, "{tron}");
        assert!(tron[1..].bytes().all(|b| BASE58.contains(&b)));

        let eth = address_of("merchant-1", "USDT", "ethereum").unwrap();
        assert!(eth.starts_with("0x") && eth.len() == 42, "{eth}");
        assert!(eth[2..].bytes().all(|b| HEX.contains(&b)));
        assert_ne!(eth, address_of("merchant-2", "USDT", "ethereum").unwrap());

        let btc = address_of("merchant-1", "BTC", "bitcoin").unwrap();
        assert!(btc.starts_with("tb1q") && btc.len() == 42, "{btc}");
        assert!(btc[4..].bytes().all(|b| BECH32.contains(&b)));
        assert_eq!(btc, address_of("merchant-1", "BTC", "bitcoin").unwrap());
        assert_ne!(btc, address_of("merchant-2", "BTC", "bitcoin").unwrap());

        let code = |owner: &str, asset: &str, network: &str| address_of(owner, asset, network).unwrap_err().code;
        assert_eq!(code("merchant-1", "DOGE", "tron"), "ASSET_UNKNOWN");
        assert_eq!(code("merchant-1", "USDT", "bitcoin"), "NETWORK_UNKNOWN");
        assert_eq!(code("merchant-1", "BTC", "tron"), "NETWORK_UNKNOWN");
    }

    #[test]
    fn deposit_states_follow_the_test_reference() {
        for (reference, state, confirmations) in [
            ("DEP-TX-1234", DepositState::Confirmed, 20),
            ("DEP-TX-0000", DepositState::Held, 20),
            ("DEP-TX-9999", DepositState::Confirming, 0),
        ] {
            let deposit = test_deposit(reference);
            assert_eq!((deposit.state, deposit.confirmations), (state, confirmations), "{reference}");
            assert_eq!((deposit.asset.as_str(), deposit.network.as_str()), ("USDT", "tron"));
            assert_eq!(deposit.amount, 25_000_000);
            assert_eq!(deposit.address, address_of("merchant-1", "USDT", "tron").unwrap());
            assert!(deposit.deposit_id.starts_with("sbx-dep-"), "{}", deposit.deposit_id);
            assert!(deposit.deposit_id.ends_with(&format!("-{reference}")), "{}", deposit.deposit_id);

            let again = Sandbox::deposit_status(deposit.deposit_id.clone()).unwrap();
            assert_eq!(again.deposit_id, deposit.deposit_id);
            assert_eq!((again.state, again.confirmations), (deposit.state, deposit.confirmations));
            assert_eq!(
                (&again.address, &again.asset, &again.network),
                (&deposit.address, &deposit.asset, &deposit.network)
            );
            assert_eq!(again.amount, deposit.amount);
        }
        assert_ne!(test_deposit("DEP-TX-1234").deposit_id, test_deposit("DEP-TX-1235").deposit_id);
    }

    #[test]
    fn test_deposits_are_checked() {
        let request = TestDepositRequest {
            address: address_of("merchant-1", "BTC", "bitcoin").unwrap(),
            asset: "BTC".into(),
            network: "bitcoin".into(),
            amount: 50_000,
            test_reference: "DEP-TX-1234".into(),
        };
        let code = |request: TestDepositRequest| Sandbox::test_deposit(request).unwrap_err().code;
        assert_eq!(Sandbox::test_deposit(request.clone()).unwrap().confirmations, 2);
        assert_eq!(code(TestDepositRequest { asset: "ETH".into(), ..request.clone() }), "ASSET_UNKNOWN");
        assert_eq!(code(TestDepositRequest { network: "tron".into(), ..request.clone() }), "NETWORK_UNKNOWN");
        assert_eq!(code(TestDepositRequest { amount: 0, ..request.clone() }), "INVALID_REQUEST");
        assert_eq!(code(TestDepositRequest { address: "tb1q-x".into(), ..request.clone() }), "INVALID_REQUEST");
        assert_eq!(code(TestDepositRequest { test_reference: " ".into(), ..request }), "INVALID_REQUEST");
    }

    #[test]
    fn unknown_deposit_ids_are_refused() {
        let id = test_deposit("DEP-TX-1234").deposit_id;
        let tampered = id.replace("-25000000-", "-26000000-");
        for bad in ["", "sbx-dep-", "tx-123", "sbx-dep-0123456789abcdef-USDT-tron-1-Tabc-REF", tampered.as_str()] {
            let failure = Sandbox::deposit_status(bad.to_string()).unwrap_err();
            assert_eq!((failure.code.as_str(), failure.retryable), ("DEPOSIT_UNKNOWN", false), "{bad}");
        }
    }

    #[test]
    fn callbacks_are_unexpected() {
        let callback = Callback { method: "POST".into(), query: String::new(), headers: vec![], body: vec![] };
        let failure = Sandbox::handle_callback(callback).unwrap_err();
        assert_eq!((failure.code.as_str(), failure.retryable), ("UNEXPECTED_CALLBACK", false));
    }

    #[test]
    fn last4_counts_characters() {
        assert_eq!(last4("GIFT-USA-1234"), "1234");
        assert_eq!(last4("12"), "12");
        assert_eq!(last4("ÿ€€€€"), "€€€€");
    }
}
