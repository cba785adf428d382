//! What the sandbox trades, at fixed rates: US gift cards of four brands,
//! RMB paid out over three channels, and USDT and BTC deposited on three
//! networks. Amounts in minor units (crypto in base units); rates exact
//! fractions of major units.

use crate::exports::soxara::billing::trader::{
    CardForm, CryptoAsset, CryptoNetwork, GiftCardBrand, GiftCardOffer, Rate, RmbChannel, RmbTerms,
};

/// LRD per USD, behind every LRD rate here.
const LRD_PER_USD: u64 = 190;

/// The face values bought, in US cents: USD 25, 50, 100 and 200.
const DENOMINATIONS: [u64; 4] = [2_500, 5_000, 10_000, 20_000];

/// Gift card brands: slug, name, USD paid per 100 USD of face value, and
/// whether physical cards are bought too (every brand takes e-codes).
const BRANDS: [(&str, &str, u64, bool); 4] = [
    ("amazon", "Amazon", 85, true),
    ("apple", "Apple iTunes", 80, true),
    ("steam", "Steam", 75, false),
    ("google-play", "Google Play", 78, true),
];

/// The one country (and card currency) every brand is bought in.
const CARD_COUNTRY: &str = "US";
const CARD_CURRENCY: &str = "USD";

/// RMB channels: slug, name, and what the recipient identifier is.
const RMB_CHANNELS: [(&str, &str, &str); 3] = [
    ("alipay", "Alipay", "Alipay ID"),
    ("wechat-pay", "WeChat Pay", "WeChat ID"),
    ("bank-transfer", "Chinese bank transfer", "Bank card number"),
];

/// RMB order limits, in fen: CNY 10.00 – 50,000.00.
const RMB_MIN: u64 = 1_000;
const RMB_MAX: u64 = 5_000_000;

/// CNY bought by one USD: 7.1.
const CNY_PER_USD: (u64, u64) = (71, 10);

/// A network an asset is deposited on: slug, name, confirmations before
/// crediting, smallest deposit credited (in the asset's base units).
type Network = (&'static str, &'static str, u32, u64);

/// A crypto asset: symbol, name, decimals, networks, and what a whole coin
/// pays in USD (numerator, denominator).
type Asset = (&'static str, &'static str, u8, &'static [Network], (u64, u64));

const ASSETS: [Asset; 2] = [
    (
        "USDT",
        "Tether USD",
        6,
        &[("tron", "Tron (TRC-20)", 20, 1_000_000), ("ethereum", "Ethereum (ERC-20)", 12, 10_000_000)],
        (99, 100),
    ),
    ("BTC", "Bitcoin", 8, &[("bitcoin", "Bitcoin", 2, 10_000)], (60_000, 1)),
];

fn rate(base: &str, quote: &str, numerator: u64, denominator: u64) -> Rate {
    Rate { base: base.into(), quote: quote.into(), numerator, denominator }
}

/// Rates of `base` into USD, and into LRD at `LRD_PER_USD`.
fn usd_and_lrd(base: &str, (numerator, denominator): (u64, u64)) -> Vec<Rate> {
    vec![rate(base, "USD", numerator, denominator), rate(base, "LRD", numerator * LRD_PER_USD, denominator)]
}

pub fn gift_card_brands() -> Vec<GiftCardBrand> {
    BRANDS
        .iter()
        .map(|&(slug, name, per_hundred, physical)| GiftCardBrand {
            slug: slug.into(),
            name: name.into(),
            offers: vec![GiftCardOffer {
                country: CARD_COUNTRY.into(),
                card_currency: CARD_CURRENCY.into(),
                denominations: DENOMINATIONS.to_vec(),
                forms: if physical { vec![CardForm::Ecode, CardForm::Physical] } else { vec![CardForm::Ecode] },
                rates: usd_and_lrd(CARD_CURRENCY, (per_hundred, 100)),
            }],
        })
        .collect()
}

/// The forms bought for one brand's cards of one country; `None` when the
/// brand is unknown or not bought from that country.
pub fn card_forms(brand: &str, country: &str) -> Option<Vec<CardForm>> {
    gift_card_brands()
        .into_iter()
        .find(|b| b.slug == brand)?
        .offers
        .into_iter()
        .find(|offer| offer.country.eq_ignore_ascii_case(country))
        .map(|offer| offer.forms)
}

pub fn rmb_offer() -> RmbTerms {
    let (numerator, denominator) = CNY_PER_USD;
    RmbTerms {
        channels: RMB_CHANNELS
            .iter()
            .map(|&(slug, name, label)| RmbChannel {
                slug: slug.into(),
                name: name.into(),
                recipient_label: label.into(),
                min: RMB_MIN,
                max: RMB_MAX,
            })
            .collect(),
        rates: vec![
            rate("USD", "CNY", numerator, denominator),
            rate("LRD", "CNY", numerator, denominator * LRD_PER_USD),
        ],
    }
}

/// Whether `slug` is one of the RMB channels.
pub fn rmb_channel_known(slug: &str) -> bool {
    RMB_CHANNELS.iter().any(|&(known, _, _)| known == slug)
}

pub fn crypto_assets() -> Vec<CryptoAsset> {
    ASSETS
        .iter()
        .map(|&(symbol, name, decimals, networks, usd)| CryptoAsset {
            symbol: symbol.into(),
            name: name.into(),
            decimals,
            networks: networks
                .iter()
                .map(|&(slug, name, confirmations, min_deposit)| CryptoNetwork {
                    slug: slug.into(),
                    name: name.into(),
                    confirmations,
                    min_deposit,
                })
                .collect(),
            rates: usd_and_lrd(symbol, usd),
        })
        .collect()
}

/// Why an asset and network cannot be deposited: the asset is unknown, or
/// not deposited on that network.
pub enum Unlisted {
    Asset,
    Network,
}

/// The confirmations a deposit of `asset` on `network` needs.
pub fn confirmations(asset: &str, network: &str) -> Result<u32, Unlisted> {
    let (_, _, _, networks, _) = ASSETS.iter().find(|a| a.0 == asset).ok_or(Unlisted::Asset)?;
    networks.iter().find(|n| n.0 == network).map(|n| n.2).ok_or(Unlisted::Network)
}
