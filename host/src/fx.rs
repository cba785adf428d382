//! FX: rates from provider plugins, quotes that lock a rate and both amounts
//! for a while, and swaps that execute a quote at most once. Rates are exact
//! fractions and amounts integer minor units: the customer's amount rounds
//! down to the target currency's increment, and the difference from the
//! mid-rate value (spread and rounding) is the platform's FX revenue.

use std::cmp::Ordering;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::idempotency::{self, Claim, Reply, Scope, StoredResponse};
use crate::ledger::{self, Account, AccountKind, PLATFORM_OWNER, Posting};
use crate::mode::Mode;
use crate::money::{self, Currency};
use crate::plugins::LoadedFx;
use crate::store::StoreError;
use crate::validate::{Fields, fail};
use crate::wallets::{self, WALLET_ENTITY};

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

pub fn price(from_minor: u64, mid: Ratio, spread_bps: u32, from: Currency, to: Currency) -> Result<Priced, String> {
    let overflow = || "the amount is too large to convert".to_string();
    let rate = mid.less_spread(spread_bps).ok_or_else(overflow)?;
    let exact = convert_floor(from_minor, rate, from, to).ok_or_else(overflow)?;
    let to_minor = exact - exact % to.rounding_increment_minor;
    let mid_to_minor = convert_floor(from_minor, mid, from, to).ok_or_else(overflow)?;
    if to_minor == 0 {
        return Err(format!(
            "is too small: it converts to less than the smallest {} amount ({} minor units)",
            to.code, to.rounding_increment_minor
        ));
    }
    Ok(Priced { to_minor, mid_to_minor, rate })
}

/// Asks every FX provider for from→to; keeps the healthy answers.
async fn provider_rates(fx: &[Arc<LoadedFx>], from: &str, to: &str) -> Vec<(String, Ratio)> {
    let mut rates = Vec::new();
    for provider in fx {
        let (provider, from, to) = (Arc::clone(provider), from.to_string(), to.to_string());
        let answer = tokio::task::spawn_blocking(move || {
            let answer = provider.rate(&from, &to);
            (provider.name.clone(), from, to, answer)
        })
        .await;
        match answer {
            Ok((name, from, to, Ok(Ok(rate)))) if rate.base == from && rate.quote == to => {
                match Ratio::new(u128::from(rate.numerator), u128::from(rate.denominator)) {
                    Some(ratio) => rates.push((name, ratio)),
                    None => tracing::warn!(provider = %name, "FX provider returned a zero rate"),
                }
            }
            Ok((name, _, _, Ok(Ok(_)))) => tracing::warn!(provider = %name, "FX provider answered for another pair"),
            Ok((name, _, _, Ok(Err(failure)))) => {
                tracing::warn!(provider = %name, code = %failure.code, message = %failure.message, "FX provider refused")
            }
            Ok((name, _, _, Err(error))) => tracing::warn!(provider = %name, %error, "FX provider failed"),
            Err(join) => tracing::error!(error = %join, "FX provider call panicked"),
        }
    }
    rates
}

/// `GET /v1/fx/quote?from=USD&to=LRD&amount=1234`.
pub async fn quote(state: &AppState, caller: &Caller, query: &[(String, String)]) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    for (name, _) in query.iter().filter(|(k, _)| !["from", "to", "amount"].contains(&k.as_str())) {
        fail(&mut errors, name, "is not a known parameter; expected from, to, amount");
    }
    let currency = |name: &str, errors: &mut Vec<_>| match param(name) {
        None => {
            fail(errors, name, "is required (e.g. USD or LRD)");
            None
        }
        Some(code) => Currency::from_code(code).map_err(|m| fail(errors, name, m)).ok(),
    };
    let from = currency("from", &mut errors);
    let to = currency("to", &mut errors);
    let amount = match param("amount") {
        None => {
            fail(&mut errors, "amount", "is required: an integer of minor units of `from`");
            None
        }
        Some(text) => money::parse_amount_minor(text).map_err(|m| fail(&mut errors, "amount", m)).ok(),
    };
    if let (Some(f), Some(t)) = (from, to)
        && f.code == t.code
    {
        fail(&mut errors, "to", "must differ from `from`");
    }
    let (Some(from), Some(to), Some(from_minor), true) = (from, to, amount, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };

    let rates = provider_rates(&state.fx, from.code, to.code).await;
    let unavailable = || ApiError::FxRateUnavailable { from: from.code.into(), to: to.code.into() };
    let mid = median(rates.iter().map(|(_, r)| *r).collect()).ok_or_else(unavailable)?;
    let spread_bps = state.fx_settings.spread_bps;
    let priced = price(from_minor, mid, spread_bps, from, to).map_err(|m| ApiError::invalid("amount", m))?;
    let providers: Vec<&str> = rates.iter().map(|(name, _)| name.as_str()).collect();

    let now_ms = crate::clock::now_ms();
    let ttl_ms = i64::try_from(state.fx_settings.quote_ttl_ms).unwrap_or(i64::MAX);
    let quote = QuoteRow {
        id: crate::ids::new_id("quote"),
        merchant_id: caller.merchant_id.clone(),
        mode: caller.mode,
        from_currency: from.code.to_string(),
        to_currency: to.code.to_string(),
        from_amount: to_i64(from_minor),
        to_amount: to_i64(priced.to_minor),
        mid_to_amount: to_i64(priced.mid_to_minor),
        rate: priced.rate,
        mid,
        spread_bps,
        providers: providers.join(","),
        created_at_ms: now_ms,
        expires_at_ms: now_ms.saturating_add(ttl_ms),
        swap_id: None,
    };
    let json = quote.to_json();
    state.store.write(move |conn| quote.insert(conn)).await?;
    Ok(json)
}

fn to_i64(minor: u64) -> i64 {
    i64::try_from(minor).expect("amounts are bounded by AMOUNT_MINOR_MAX")
}

/// A validated swap request.
pub struct NewSwap {
    pub quote_id: String,
    pub phone: String,
    pub canonical: String,
}

pub fn parse_swap(body: &[u8]) -> Result<NewSwap, ApiError> {
    let fields = Fields::parse(body, &["quote_id", "customer"])?;
    let mut errors = fields.errors();
    let quote_id = fields.string("quote_id", 64, true, &mut errors);
    let phone = fields.customer_phone(&mut errors, true);
    match (quote_id, phone, errors.is_empty()) {
        (Some(quote_id), Some(phone), true) => Ok(NewSwap { quote_id, phone, canonical: fields.canonical() }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// `POST /v1/fx/swaps`: executes a quote against the customer's wallets, in
/// one write: checks, ledger entry, and the stored response.
pub async fn swap(state: &AppState, caller: &Caller, key: String, request: NewSwap) -> Result<Reply, ApiError> {
    let scope = Scope { merchant_id: caller.merchant_id.clone(), mode: caller.mode, key };
    let fingerprint = idempotency::fingerprint("POST /v1/fx/swaps", &request.canonical);
    let swap_id = crate::ids::new_id("swap");
    let reply = state
        .store
        .write(move |conn| {
            let now_ms = crate::clock::now_ms();
            match idempotency::claim(conn, &scope, &fingerprint, &swap_id, now_ms)? {
                Claim::New => {}
                Claim::Replay(stored) => return Ok(Reply::replayed(stored)),
                Claim::InFlight => return Err(StoreError::rejected(ApiError::IdempotencyInProgress)),
                Claim::Mismatch => return Err(StoreError::rejected(ApiError::IdempotencyKeyReused)),
            }
            let quote = QuoteRow::load(conn, &request.quote_id)?
                .filter(|q| q.merchant_id == scope.merchant_id && q.mode == scope.mode)
                .ok_or_else(|| StoreError::rejected(ApiError::NotFound { what: "quote" }))?;
            if let Some(swap_id) = quote.swap_id.clone() {
                return Err(StoreError::rejected(ApiError::QuoteAlreadyUsed { swap_id }));
            }
            if now_ms > quote.expires_at_ms {
                let expired_at = crate::clock::rfc3339(quote.expires_at_ms);
                return Err(StoreError::rejected(ApiError::QuoteExpired { expired_at }));
            }
            let from_minor = u64::try_from(quote.from_amount).expect("stored amounts are positive");
            wallets::require_funds(conn, quote.mode, &request.phone, &quote.from_currency, from_minor)?;
            conn.prepare_cached(
                "INSERT INTO fx_swaps (id, merchant_id, mode, quote_id, customer_phone, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                swap_id,
                quote.merchant_id,
                quote.mode.as_str(),
                quote.id,
                request.phone,
                now_ms
            ])?;
            ledger::post(conn, quote.mode, "swap", &swap_id, &quote.swap_postings(&request.phone), now_ms)?;
            wallets::record_customer_transaction(
                conn,
                &swap_id,
                &quote.merchant_id,
                quote.mode,
                &request.phone,
                "swap",
                now_ms,
            )?;
            let body = swap_json(conn, &swap_id)?.ok_or_else(|| StoreError::Invariant("swap vanished".into()))?;
            let stored = StoredResponse { status: 201, body: body.to_string() };
            idempotency::record_response(conn, &swap_id, &stored)?;
            Ok(Reply::new(stored))
        })
        .await?;
    Ok(reply)
}

/// The swap object, with its quote's amounts.
pub fn swap_json(conn: &Connection, id: &str) -> Result<Option<Value>, StoreError> {
    let row = conn
        .prepare_cached("SELECT quote_id, customer_phone, created_at FROM fx_swaps WHERE id = ?1")?
        .query_row(params![id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?)))
        .optional()?;
    let Some((quote_id, phone, created_at)) = row else { return Ok(None) };
    let quote =
        QuoteRow::load(conn, &quote_id)?.ok_or_else(|| StoreError::Invariant(format!("quote {quote_id} vanished")))?;
    Ok(Some(json!({
        "object": "fx_swap",
        "id": id,
        "type": "swap",
        "status": "completed",
        "quote_id": quote_id,
        "customer": { "phone": phone },
        "from": { "currency": quote.from_currency, "amount": quote.from_amount },
        "to": { "currency": quote.to_currency, "amount": quote.to_amount },
        "rate": quote.rate_json(),
        "livemode": quote.mode == Mode::Live,
        "created_at": crate::clock::rfc3339(created_at),
    })))
}

/// A quote as stored.
#[derive(Debug, Clone)]
struct QuoteRow {
    id: String,
    merchant_id: String,
    mode: Mode,
    from_currency: String,
    to_currency: String,
    from_amount: i64,
    to_amount: i64,
    mid_to_amount: i64,
    rate: Ratio,
    mid: Ratio,
    spread_bps: u32,
    providers: String,
    created_at_ms: i64,
    expires_at_ms: i64,
    swap_id: Option<String>,
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
            self.merchant_id,
            self.mode.as_str(),
            self.from_currency,
            self.to_currency,
            self.from_amount,
            self.to_amount,
            self.mid_to_amount,
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

    fn load(conn: &Connection, id: &str) -> Result<Option<QuoteRow>, StoreError> {
        let ratio = |num: String, den: String| -> rusqlite::Result<Ratio> {
            let bad = || rusqlite::Error::InvalidColumnName(format!("rate {num}/{den}"));
            Ratio::new(num.parse().map_err(|_| bad())?, den.parse().map_err(|_| bad())?).ok_or_else(bad)
        };
        let row = conn
            .prepare_cached(
                "SELECT q.id, q.merchant_id, q.mode, q.from_currency, q.to_currency, q.from_amount, q.to_amount,
                 q.mid_to_amount, q.rate_numerator, q.rate_denominator, q.mid_numerator, q.mid_denominator,
                 q.spread_bps, q.providers, q.created_at, q.expires_at, s.id
                 FROM fx_quotes q LEFT JOIN fx_swaps s ON s.quote_id = q.id WHERE q.id = ?1",
            )?
            .query_row(params![id], |row| {
                let mode: String = row.get(2)?;
                Ok(QuoteRow {
                    id: row.get(0)?,
                    merchant_id: row.get(1)?,
                    mode: Mode::parse(&mode).ok_or_else(|| rusqlite::Error::InvalidColumnName(mode.clone()))?,
                    from_currency: row.get(3)?,
                    to_currency: row.get(4)?,
                    from_amount: row.get(5)?,
                    to_amount: row.get(6)?,
                    mid_to_amount: row.get(7)?,
                    rate: ratio(row.get(8)?, row.get(9)?)?,
                    mid: ratio(row.get(10)?, row.get(11)?)?,
                    spread_bps: row.get(12)?,
                    providers: row.get(13)?,
                    created_at_ms: row.get(14)?,
                    expires_at_ms: row.get(15)?,
                    swap_id: row.get(16)?,
                })
            })
            .optional()?;
        Ok(row)
    }

    /// The customer pays `from` out of one wallet and receives `to` in the
    /// other; the platform takes `from` into its position, gives the mid
    /// value out of its position in `to`, and keeps the difference.
    fn swap_postings(&self, phone: &str) -> Vec<Posting> {
        let platform = |kind, currency: &str| Account {
            mode: self.mode,
            entity: WALLET_ENTITY.to_string(),
            owner: PLATFORM_OWNER.to_string(),
            kind,
            currency: currency.to_string(),
        };
        let postings = vec![
            Posting {
                account: wallets::wallet_account(self.mode, phone, &self.from_currency),
                amount_minor: self.from_amount,
            },
            Posting {
                account: platform(AccountKind::FxPosition, &self.from_currency),
                amount_minor: -self.from_amount,
            },
            Posting { account: platform(AccountKind::FxPosition, &self.to_currency), amount_minor: self.mid_to_amount },
            Posting {
                account: wallets::wallet_account(self.mode, phone, &self.to_currency),
                amount_minor: -self.to_amount,
            },
            Posting {
                account: platform(AccountKind::FxRevenue, &self.to_currency),
                amount_minor: -(self.mid_to_amount - self.to_amount),
            },
        ];
        postings.into_iter().filter(|p| p.amount_minor != 0).collect()
    }

    fn rate_json(&self) -> Value {
        json!({
            "numerator": self.rate.num.to_string(),
            "denominator": self.rate.den.to_string(),
            "decimal": self.rate.display(),
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "object": "fx_quote",
            "id": self.id,
            "from": { "currency": self.from_currency, "amount": self.from_amount },
            "to": { "currency": self.to_currency, "amount": self.to_amount },
            "rate": self.rate_json(),
            "mid_rate": { "numerator": self.mid.num.to_string(), "denominator": self.mid.den.to_string(), "decimal": self.mid.display() },
            "spread_bps": self.spread_bps,
            "platform_amount": { "currency": self.to_currency, "amount": self.mid_to_amount - self.to_amount },
            "providers": self.providers.split(',').filter(|p| !p.is_empty()).collect::<Vec<_>>(),
            "livemode": self.mode == Mode::Live,
            "created_at": crate::clock::rfc3339(self.created_at_ms),
            "expires_at": crate::clock::rfc3339(self.expires_at_ms),
        })
    }
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
        // 1 cent is LRD 1.81: the customer gets LRD 1.00, the platform 81.
        let cent = price(1, Ratio::new(181, 1).unwrap(), 0, usd(), lrd()).unwrap();
        assert_eq!((cent.to_minor, cent.platform_minor()), (100, 81));
        assert!(price(100, Ratio::new(1, 181).unwrap(), 0, lrd(), usd()).is_err(), "LRD 1.00 is less than a cent");
        assert!(price(u64::MAX / 2, Ratio::new(u128::from(u64::MAX), 1).unwrap(), 0, usd(), lrd()).is_err());
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
