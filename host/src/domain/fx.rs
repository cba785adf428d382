//! FX: rates from provider plugins and quotes that lock a rate and both
//! amounts for a while (swaps execute them: `operations::swaps`). Rates are
//! exact fractions and amounts integer minor units: the customer's amount
//! rounds down to the target currency's increment, and the difference from
//! the mid-rate value (spread and rounding) is the platform's FX revenue.
//! This module owns the `fx_quotes` table and the quote object.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::config::FxSettings;
use crate::plugins::LoadedFx;
use crate::store::{Store, StoreError, TenantRecord};
use crate::values::clock::{Clock, serialize_rfc3339};
use crate::values::error::ApiError;
use crate::values::mode::Tenant;
use crate::values::money::{self, Currency, display_amount};
use crate::values::status::ObjectType;

/// An exact positive rate: 1 unit (major) of the source currency buys
/// `num / den` units (major) of the target. Always in lowest terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub num: u128,
    pub den: u128,
}

impl Ratio {
    pub fn new(num: u128, den: u128) -> Option<Ratio> {
        if num == 0 || den == 0 {
            return None;
        }
        let g = gcd(num, den);
        Some(Ratio { num: num / g, den: den / g })
    }

    fn cmp_value(&self, other: &Ratio) -> Option<Ordering> {
        Some(self.num.checked_mul(other.den)?.cmp(&other.num.checked_mul(self.den)?))
    }

    /// The mean of two rates, exactly.
    fn midpoint(&self, other: &Ratio) -> Option<Ratio> {
        let num = self.num.checked_mul(other.den)?.checked_add(other.num.checked_mul(self.den)?)?;
        let den = self.den.checked_mul(other.den)?.checked_mul(2)?;
        Ratio::new(num, den)
    }

    /// The rate less `spread_bps` basis points (what the customer gets).
    pub fn less_spread(&self, spread_bps: u32) -> Option<Ratio> {
        let keep = 10_000u128.checked_sub(u128::from(spread_bps))?;
        Ratio::new(self.num.checked_mul(keep)?, self.den.checked_mul(10_000)?)
    }

    /// A rate stored as its numerator and denominator in two TEXT columns
    /// (they may exceed SQLite's 64-bit integers).
    pub fn from_columns(row: &rusqlite::Row, num: usize, den: usize) -> rusqlite::Result<Ratio> {
        Ratio::from_optional_columns(row, num, den)?
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(format!("no rate in columns {num} and {den}")))
    }

    /// [`Ratio::from_columns`] for a rate that may not be set yet (both NULL).
    pub fn from_optional_columns(row: &rusqlite::Row, num: usize, den: usize) -> rusqlite::Result<Option<Ratio>> {
        let (n, d): (Option<String>, Option<String>) = (row.get(num)?, row.get(den)?);
        let (Some(n), Some(d)) = (n, d) else { return Ok(None) };
        let bad = || rusqlite::Error::InvalidColumnName(format!("rate {n}/{d}"));
        Ratio::new(n.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?).map(Some).ok_or_else(bad)
    }

    /// The rate as a decimal with 6 places, rounded down, for display only.
    pub fn display(&self) -> String {
        let scaled = self.num.saturating_mul(1_000_000) / self.den;
        format!("{}.{:06}", scaled / 1_000_000, scaled % 1_000_000)
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The median of the providers' rates (the mean of the middle two for an
/// even count). `None` if there are none or the arithmetic would overflow.
pub fn median(mut rates: Vec<Ratio>) -> Option<Ratio> {
    if rates.is_empty() || rates.windows(2).any(|w| w[0].cmp_value(&w[1]).is_none()) {
        return None;
    }
    rates.sort_by(|a, b| a.cmp_value(b).unwrap_or(Ordering::Equal));
    let middle = rates.len() / 2;
    if rates.len() % 2 == 1 { Some(rates[middle]) } else { rates[middle - 1].midpoint(&rates[middle]) }
}

/// `amount_minor` of `from` in `to` at `rate`, rounded down to a whole minor unit.
pub fn convert_floor(amount_minor: u64, rate: Ratio, from: Currency, to: Currency) -> Option<u64> {
    let num = u128::from(amount_minor).checked_mul(rate.num)?.checked_mul(10u128.pow(u32::from(to.exponent)))?;
    let den = rate.den.checked_mul(10u128.pow(u32::from(from.exponent)))?;
    u64::try_from(num / den).ok().filter(|v| *v <= money::AMOUNT_MINOR_MAX)
}

/// The amounts of a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priced {
    /// What the customer receives: at the quoted rate, rounded down to the
    /// target's increment.
    pub to_minor: u64,
    /// The value at the mid-rate, rounded down to a minor unit.
    pub mid_to_minor: u64,
    /// The quoted rate (mid less spread).
    pub rate: Ratio,
}

impl Priced {
    /// The platform's share: spread plus rounding.
    pub fn platform_minor(&self) -> u64 {
        self.mid_to_minor - self.to_minor
    }
}

/// The most that rounding to the target's increment may keep of what the
/// customer receives, in basis points (1%). Rounding always keeps less than
/// one increment (LRD 1.00), which would be most of a tiny swap; smaller
/// amounts are refused.
pub const ROUNDING_KEPT_BPS_MAX: u64 = 100;

pub fn price(from_minor: u64, mid: Ratio, spread_bps: u32, from: Currency, to: Currency) -> Result<Priced, String> {
    let overflow = || "the amount is too large to convert".to_string();
    let rate = mid.less_spread(spread_bps).ok_or_else(overflow)?;
    let exact = convert_floor(from_minor, rate, from, to).ok_or_else(overflow)?;
    let to_minor = exact - exact % to.rounding_increment_minor;
    let mid_to_minor = convert_floor(from_minor, mid, from, to).ok_or_else(overflow)?;
    let rounding_kept = u128::from(exact - to_minor);
    if to_minor == 0 || rounding_kept * 10_000 > u128::from(to_minor) * u128::from(ROUNDING_KEPT_BPS_MAX) {
        let smallest = smallest_fair_amount(rate, from, to).ok_or_else(overflow)?;
        return Err(format!(
            "is too small: {} pays out in whole {} amounts ({}), and rounding this amount down would keep more \
             than 1% of it; the smallest amount that always converts within 1% is {} ({smallest} minor units)",
            to.code,
            to.code,
            display_amount(to.rounding_increment_minor, to),
            display_amount(smallest, from),
        ));
    }
    Ok(Priced { to_minor, mid_to_minor, rate })
}

/// The smallest amount of `from` whose conversion at `rate` is at least 101
/// increments of `to`: rounding then keeps less than one increment of over
/// 100, under 1%.
fn smallest_fair_amount(rate: Ratio, from: Currency, to: Currency) -> Option<u64> {
    let threshold = u128::from(to.rounding_increment_minor) * (10_000 / u128::from(ROUNDING_KEPT_BPS_MAX) + 1);
    let num = threshold.checked_mul(rate.den)?.checked_mul(10u128.pow(u32::from(from.exponent)))?;
    let den = rate.num.checked_mul(10u128.pow(u32::from(to.exponent)))?;
    u64::try_from(num.div_ceil(den)).ok()
}

/// Asks every FX provider for from→to; keeps the healthy answers.
/// How long the providers' answers for a pair are reused. Quotes need no
/// write scope and public keys may ask for them, so a flood of quotes must
/// not become a flood of plugin calls and provider requests.
pub const RATES_FRESH_MS: i64 = 2_000;

/// Each provider's rate, by provider name.
type ProviderRates = Vec<(String, Ratio)>;
/// Per (from, to) code pair: when the providers were asked, and their rates.
type RecentRates = HashMap<(&'static str, &'static str), (i64, ProviderRates)>;

/// The FX provider plugins, asked at most once per pair every
/// `RATES_FRESH_MS` (by the gateway's clock).
pub struct RateSource {
    providers: Arc<[Arc<LoadedFx>]>,
    recent: Mutex<RecentRates>,
}

impl RateSource {
    pub fn new(providers: Arc<[Arc<LoadedFx>]>) -> RateSource {
        RateSource { providers, recent: Mutex::default() }
    }

    /// Each healthy provider's rate for `from`→`to`, recent or asked now.
    /// (Two requests that miss at once may both ask: harmless.)
    async fn rates(&self, clock: &Clock, from: Currency, to: Currency) -> ProviderRates {
        let (now_ms, pair) = (clock.now_ms(), (from.code, to.code));
        let fresh = |at_ms: i64| (0..RATES_FRESH_MS).contains(&now_ms.saturating_sub(at_ms));
        if let Some((_, rates)) = self.lock().get(&pair).filter(|(at_ms, _)| fresh(*at_ms)) {
            return rates.clone();
        }
        let rates = provider_rates(&self.providers, from, to).await;
        self.lock().insert(pair, (now_ms, rates.clone()));
        rates
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecentRates> {
        self.recent.lock().expect("the rate cache is never held across a panic")
    }
}

async fn provider_rates(providers: &[Arc<LoadedFx>], from: Currency, to: Currency) -> Vec<(String, Ratio)> {
    let mut rates = Vec::new();
    for provider in providers {
        let provider = Arc::clone(provider);
        let name = provider.name.clone();
        let answer = crate::plugins::call_blocking(move || provider.rate(from.code, to.code)).await;
        match answer {
            Ok(Ok(rate)) if rate.base == from.code && rate.quote == to.code => {
                match Ratio::new(u128::from(rate.numerator), u128::from(rate.denominator)) {
                    Some(ratio) => rates.push((name, ratio)),
                    None => tracing::warn!(provider = %name, "FX provider returned a zero rate"),
                }
            }
            Ok(Ok(_)) => tracing::warn!(provider = %name, "FX provider answered for another pair"),
            Ok(Err(failure)) => {
                tracing::warn!(provider = %name, code = %failure.code, message = %failure.message, "FX provider refused")
            }
            Err(error) => tracing::warn!(provider = %name, %error, "FX provider failed"),
        }
    }
    rates
}

/// What a quote is asked for: `amount_minor` of `from`, in `to`.
#[derive(Debug, Clone, Copy)]
pub struct QuoteRequest {
    pub from: Currency,
    pub to: Currency,
    pub amount_minor: u64,
}

/// `GET /v1/fx/quote`: asks every provider, prices at the median less the
/// spread, and locks the quote for `quote_ttl_ms`.
pub async fn quote(
    store: &Store,
    clock: &Clock,
    source: &RateSource,
    settings: &FxSettings,
    tenant: &Tenant,
    request: QuoteRequest,
) -> Result<Quote, ApiError> {
    let QuoteRequest { from, to, amount_minor } = request;
    let rates = source.rates(clock, from, to).await;
    let unavailable = || ApiError::FxRateUnavailable { from: from.code.into(), to: to.code.into() };
    let mid = median(rates.iter().map(|(_, r)| *r).collect()).ok_or_else(unavailable)?;
    // Whether an amount converts depends on the rate now, not on its form.
    let priced =
        price(amount_minor, mid, settings.spread_bps, from, to).map_err(|m| ApiError::not_offered("amount", m))?;
    let now_ms = clock.now_ms();
    let ttl_ms = i64::try_from(settings.quote_ttl_ms).unwrap_or(i64::MAX);
    let quote = QuoteRow {
        id: crate::values::ids::new_id("quote"),
        tenant: tenant.clone(),
        from,
        to,
        from_amount_minor: to_i64(amount_minor),
        to_amount_minor: to_i64(priced.to_minor),
        mid_to_amount_minor: to_i64(priced.mid_to_minor),
        rate: priced.rate,
        mid,
        spread_bps: settings.spread_bps,
        providers: rates.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(","),
        created_at_ms: now_ms,
        expires_at_ms: now_ms.saturating_add(ttl_ms),
    };
    let object = quote.object();
    store.write(move |conn| quote.insert(conn)).await?;
    Ok(object)
}

fn to_i64(minor: u64) -> i64 {
    i64::try_from(minor).expect("amounts are bounded by AMOUNT_MINOR_MAX")
}

/// A quote as stored.
#[derive(Debug, Clone)]
pub struct QuoteRow {
    pub id: String,
    pub tenant: Tenant,
    pub from: Currency,
    pub to: Currency,
    pub from_amount_minor: i64,
    /// What the customer receives.
    pub to_amount_minor: i64,
    /// The value at the mid-rate: the platform keeps `mid − to`.
    pub mid_to_amount_minor: i64,
    pub rate: Ratio,
    mid: Ratio,
    spread_bps: u32,
    providers: String,
    created_at_ms: i64,
    pub expires_at_ms: i64,
}

impl QuoteRow {
    fn insert(&self, conn: &Connection) -> Result<(), StoreError> {
        conn.prepare_cached(
            "INSERT INTO fx_quotes (id, merchant_id, mode, from_currency, to_currency, from_amount, to_amount,
             mid_to_amount, rate_numerator, rate_denominator, mid_numerator, mid_denominator, spread_bps, providers,
             created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?
        .execute(params![
            self.id,
            self.tenant.merchant_id,
            self.tenant.mode,
            self.from,
            self.to,
            self.from_amount_minor,
            self.to_amount_minor,
            self.mid_to_amount_minor,
            self.rate.num.to_string(),
            self.rate.den.to_string(),
            self.mid.num.to_string(),
            self.mid.den.to_string(),
            self.spread_bps,
            self.providers,
            self.created_at_ms,
            self.expires_at_ms
        ])?;
        Ok(())
    }

    pub fn load(conn: &Connection, id: &str) -> Result<Option<QuoteRow>, StoreError> {
        let row = conn
            .prepare_cached(
                "SELECT id, merchant_id, mode, from_currency, to_currency, from_amount, to_amount, mid_to_amount,
                 rate_numerator, rate_denominator, mid_numerator, mid_denominator, spread_bps, providers, created_at,
                 expires_at FROM fx_quotes WHERE id = ?1",
            )?
            .query_row(params![id], |row| {
                Ok(QuoteRow {
                    id: row.get(0)?,
                    tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
                    from: row.get(3)?,
                    to: row.get(4)?,
                    from_amount_minor: row.get(5)?,
                    to_amount_minor: row.get(6)?,
                    mid_to_amount_minor: row.get(7)?,
                    rate: Ratio::from_columns(row, 8, 9)?,
                    mid: Ratio::from_columns(row, 10, 11)?,
                    spread_bps: row.get(12)?,
                    providers: row.get(13)?,
                    created_at_ms: row.get(14)?,
                    expires_at_ms: row.get(15)?,
                })
            })
            .optional()?;
        Ok(row)
    }

    /// What rounding the quoted rate's exact value down to the target's
    /// increment keeps.
    fn rounding_kept_minor(&self) -> i64 {
        let from_minor = u64::try_from(self.from_amount_minor).unwrap_or(0);
        let exact = convert_floor(from_minor, self.rate, self.from, self.to).and_then(|v| i64::try_from(v).ok());
        exact.map_or(0, |exact| exact - self.to_amount_minor)
    }

    /// The quote object.
    pub fn object(&self) -> Quote {
        Quote {
            object: ObjectType::FxQuote,
            id: self.id.clone(),
            from: Amount { currency: self.from, amount: self.from_amount_minor },
            to: Amount { currency: self.to, amount: self.to_amount_minor },
            rate: self.rate.into(),
            mid_rate: self.mid.into(),
            spread_bps: self.spread_bps,
            platform_amount: Amount { currency: self.to, amount: self.mid_to_amount_minor - self.to_amount_minor },
            rounding_amount: Amount { currency: self.to, amount: self.rounding_kept_minor() },
            providers: self.providers.split(',').filter(|p| !p.is_empty()).map(str::to_string).collect(),
            livemode: self.tenant.mode.is_live(),
            created_at_ms: self.created_at_ms,
            expires_at_ms: self.expires_at_ms,
        }
    }
}

impl TenantRecord for QuoteRow {
    const WHAT: &'static str = "quote";

    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        QuoteRow::load(conn, id)
    }

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}

/// An amount of one currency, as objects show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Amount {
    pub currency: Currency,
    /// In the currency's minor unit.
    pub amount: i64,
}

/// A rate as objects show it: the exact fraction (as decimal strings: it
/// may exceed 64 bits) and a 6-place decimal for people.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RateObject {
    pub numerator: String,
    pub denominator: String,
    pub decimal: String,
}

impl From<Ratio> for RateObject {
    fn from(rate: Ratio) -> RateObject {
        RateObject { numerator: rate.num.to_string(), denominator: rate.den.to_string(), decimal: rate.display() }
    }
}

/// The quote object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Quote {
    object: ObjectType,
    pub id: String,
    pub from: Amount,
    pub to: Amount,
    pub rate: RateObject,
    pub mid_rate: RateObject,
    pub spread_bps: u32,
    /// What the platform keeps: the spread and the rounding.
    pub platform_amount: Amount,
    /// Of that, what rounding down to the target's increment keeps (at
    /// most 1% of `to`).
    pub rounding_amount: Amount,
    pub providers: Vec<String>,
    pub livemode: bool,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
    #[serde(rename = "expires_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::from_code("USD").unwrap()
    }
    fn lrd() -> Currency {
        Currency::from_code("LRD").unwrap()
    }

    #[test]
    fn the_seed_example_rounds_down_to_lrd_1_00() {
        let priced = price(1234, Ratio::new(181, 1).unwrap(), 0, usd(), lrd()).unwrap();
        assert_eq!(priced.to_minor, 223_300);
        assert_eq!(priced.platform_minor(), 54);
    }

    #[test]
    fn the_spread_and_the_remainder_go_to_the_platform() {
        // 181 less 1% = 179.19 LRD per USD: 1234 cents → 221120.46 → 221100.
        let priced = price(1234, Ratio::new(181, 1).unwrap(), 100, usd(), lrd()).unwrap();
        assert_eq!(priced.to_minor, 221_100);
        assert_eq!(priced.mid_to_minor, 223_354);
        assert_eq!(priced.platform_minor(), 2_254);
        // The other way: 10000 LRD minor (LRD 100) at 1/181 → 55.24 USD cents → 55.
        let back = price(10_000, Ratio::new(1, 181).unwrap(), 0, lrd(), usd()).unwrap();
        assert_eq!((back.to_minor, back.platform_minor()), (55, 0));
        // 1 cent is LRD 1.81: rounding to LRD 1.00 would keep 45% of it.
        let cent = price(1, Ratio::new(181, 1).unwrap(), 0, usd(), lrd()).unwrap_err();
        assert!(cent.contains("USD 0.56 (56 minor units)"), "{cent}");
        assert!(price(100, Ratio::new(1, 181).unwrap(), 0, lrd(), usd()).is_err(), "LRD 1.00 is less than a cent");
        assert!(price(u64::MAX / 2, Ratio::new(u128::from(u64::MAX), 1).unwrap(), 0, usd(), lrd()).is_err());
    }

    #[test]
    fn rounding_never_keeps_more_than_one_percent_of_a_swap() {
        let rate = Ratio::new(181, 1).unwrap();
        for from_minor in 1..2_000u64 {
            match price(from_minor, rate, 50, usd(), lrd()) {
                Ok(priced) => {
                    let exact = convert_floor(from_minor, rate.less_spread(50).unwrap(), usd(), lrd()).unwrap();
                    assert!((exact - priced.to_minor) * 100 <= priced.to_minor, "{from_minor}: {priced:?}");
                }
                Err(why) => assert!(from_minor < 57, "{from_minor} refused: {why}"),
            }
        }
        let smallest = smallest_fair_amount(rate.less_spread(50).unwrap(), usd(), lrd()).unwrap();
        assert!(price(smallest, rate, 50, usd(), lrd()).is_ok(), "the smallest amount offered is accepted");
    }

    #[test]
    fn the_mid_rate_is_the_median() {
        let r = |n, d| Ratio::new(n, d).unwrap();
        assert_eq!(median(vec![r(181, 1)]), Some(r(181, 1)));
        assert_eq!(median(vec![r(182, 1), r(180, 1), r(1000, 1)]), Some(r(182, 1)));
        assert_eq!(median(vec![r(181, 1), r(18150, 100)]), Some(r(36250, 200)));
        assert_eq!(median(vec![]), None);
        assert_eq!(r(36250, 200).display(), "181.250000");
    }
}
