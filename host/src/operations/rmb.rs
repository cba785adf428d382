//! RMB purchases: a merchant pays USD or LRD for CNY paid out to a recipient
//! in China (Alipay, WeChat Pay, a Chinese bank) by the trader bound to RMB
//! purchases. A quote locks the trader's rate, the CNY amount and the price
//! for 60 seconds; an order at the quote is a [`RailOperation`] carried by
//! the trader, like a bill: claimed together with its idempotency key, the
//! merchant's money taken in that same write (refused with nothing written
//! when the balance is short, the quote expired or was used), then asked of
//! the trader under the purchase id and recorded by the lifecycle; status
//! checks follow one left processing.
//!
//! The money is the merchant's spending balance ([`merchant_funds`]). The
//! price is `cost` (the CNY amount at the trader's rate, rounded up to a
//! minor unit: the platform never pays the trader more than it took) plus
//! the platform's `fee` ([`RMB_FEE_BPS`] of the cost).
//!
//! Ledger, in the wallet entity (transaction = the purchase id, `A` = cost
//! + fee):
//! - `rmb_hold` when accepted: the balance +A, `trade_clearing` −A;
//! - `rmb_paid` when paid out: `trade_clearing` +A, `trader_payable` −cost,
//!   `fee_revenue` −fee;
//! - `rmb_return` when refunded or failed: `trade_clearing` +A, the balance −A.
//!
//! This module owns the `rmb_quotes` and `rmb_purchases` tables and the RMB
//! transaction object.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::context::Context;
use super::idempotency::{self, Claimed, KeyedRequest, Reply, StoredResponse};
use super::lifecycle::{self, Answer, FailureReason, RailOperation, RailWork};
use super::merchant_funds;
use super::objects::NextAction;
use crate::domain::fx::{Amount, RateObject, Ratio};
use crate::domain::wallets::Wallets;
use crate::domain::webhooks::{self, EventType};
use crate::ledger::{self, Account, AccountKind, EntryKind, PLATFORM_OWNER, Posting};
use crate::plugins::traders::{RmbChannel, RmbOrder, RmbTerms, TradeOutcome};
use crate::plugins::{LoadedTrader, Money, PluginError, TransactionStatus};
use crate::store::{StoreError, TenantRecord};
use crate::values::clock::{rfc3339, serialize_rfc3339, serialize_rfc3339_opt};
use crate::values::entity::Entity;
use crate::values::error::ApiError;
use crate::values::mode::{Mode, Tenant};
use crate::values::money::{self, AMOUNT_MINOR_MAX, Currency, display_amount};
use crate::values::status::{ObjectType, RmbStatus, TradeKind, TransactionKind};

/// The platform's fee on an RMB purchase, in basis points of its cost,
/// rounded down.
pub const RMB_FEE_BPS: u64 = 100;

/// How long a quote holds its rate and price.
pub const QUOTE_TTL_MS: i64 = 60_000;

/// The renminbi, as amounts are shown: it is paid out by traders, never
/// held in the ledger, so it is not one of the gateway's currencies.
pub const CNY: Currency = Currency { code: "CNY", exponent: 2, rounding_increment_minor: 1 };

/// An amount of CNY, as objects show it: an [`Amount`] whose currency
/// (`CNY`) is not one of the gateway's, in the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the `Amount`s in CNY
pub struct FenAmount {
    #[schema(inline)]
    currency: CnyCode,
    /// In fen (CNY minor units: CNY 1,000.00 is `100000`).
    amount: i64,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code, clippy::upper_case_acronyms)]
enum CnyCode {
    CNY,
}

/// The trader carrying RMB purchases in `mode`.
pub fn trader_for(ctx: &Context, mode: Mode) -> Result<Arc<LoadedTrader>, ApiError> {
    ctx.traders
        .for_kind(mode, TradeKind::RmbPurchase)
        .ok_or_else(|| ApiError::ProviderUnavailable(format!("No trader sells RMB in {mode} mode on this gateway.")))
}

/// A plugin that gave no usable answer to a read.
fn unavailable(trader: &LoadedTrader, error: &PluginError) -> ApiError {
    tracing::warn!(trader = trader.plugin_name(), %error, "the trader gave no answer");
    ApiError::ProviderUnavailable("The RMB desk did not answer; retry shortly.".into())
}

/// The trader's channels, limits and rates now.
pub async fn offer(trader: Arc<LoadedTrader>) -> Result<RmbTerms, ApiError> {
    let caller = Arc::clone(&trader);
    match crate::plugins::call_blocking(move || caller.rmb_offer()).await {
        Ok(Ok(offer)) => Ok(offer),
        Ok(Err(failure)) => Err(ApiError::ProviderUnavailable(format!(
            "The RMB desk could not give its rates ({}); retry shortly.",
            failure.message
        ))),
        Err(error) => Err(unavailable(&trader, &error)),
    }
}

/// A quote asked for: `amount` fen to reach a recipient by `channel`, paid
/// in `pay_currency`.
#[derive(Debug, Clone)]
pub struct QuoteAsk {
    pub channel: String,
    pub amount_fen: u64,
    pub pay_currency: Currency,
}

/// What `amount_fen` costs at `rate` (1 unit of the pay currency buys
/// `rate` CNY), rounded up to a minor unit of the pay currency.
pub fn cost_of(amount_fen: u64, rate: Ratio, pay: Currency) -> Option<u64> {
    let num = u128::from(amount_fen).checked_mul(rate.den)?.checked_mul(10u128.pow(u32::from(pay.exponent)))?;
    let den = rate.num.checked_mul(10u128.pow(u32::from(CNY.exponent)))?;
    u64::try_from(num.div_ceil(den)).ok().filter(|cost| *cost <= AMOUNT_MINOR_MAX)
}

/// The channel `slug` of the offer, or why the request's field is wrong.
fn channel_of<'a>(offer: &'a RmbTerms, slug: &str) -> Result<&'a RmbChannel, ApiError> {
    offer.channels.iter().find(|c| c.slug == slug).ok_or_else(|| {
        let known: Vec<&str> = offer.channels.iter().map(|c| c.slug.as_str()).collect();
        ApiError::not_offered("channel", format!("must be one of {}; see GET /v1/rmb/channels", known.join(", ")))
    })
}

/// `GET /v1/rmb/quote`: locks the trader's rate and the price for 60 s.
pub async fn quote(ctx: &Context, tenant: Tenant, ask: QuoteAsk) -> Result<RmbQuote, ApiError> {
    let trader = trader_for(ctx, tenant.mode)?;
    let offer = offer(Arc::clone(&trader)).await?;
    let channel = channel_of(&offer, &ask.channel)?;
    if ask.amount_fen < channel.min || ask.amount_fen > channel.max {
        return Err(ApiError::not_offered(
            "amount",
            format!(
                "must be from {} to {} (fen) for {}",
                display_amount(channel.min, CNY),
                display_amount(channel.max, CNY),
                channel.slug
            ),
        ));
    }
    let pay = ask.pay_currency;
    let rate = offer
        .rates
        .iter()
        .find(|r| r.base == pay.code)
        .and_then(|r| Ratio::new(u128::from(r.numerator), u128::from(r.denominator)))
        .ok_or_else(|| ApiError::not_offered("pay_currency", format!("RMB is not sold for {pay} now")))?;
    let cost = cost_of(ask.amount_fen, rate, pay).ok_or_else(|| ApiError::not_offered("amount", "is too large"))?;
    let now_ms = ctx.clock.now_ms();
    let row = QuoteRow {
        id: crate::values::ids::new_id("rmbq"),
        tenant,
        trader: trader.plugin_name().to_string(),
        channel: channel.slug.clone(),
        amount_fen: i64::try_from(ask.amount_fen).map_err(|_| ApiError::not_offered("amount", "is too large"))?,
        pay_currency: pay,
        cost_minor: i64::try_from(cost).expect("costs are at most AMOUNT_MINOR_MAX"),
        fee_minor: i64::try_from(money::basis_points_of(cost, RMB_FEE_BPS)).expect("the fee is under the cost"),
        rate,
        created_at_ms: now_ms,
        expires_at_ms: now_ms + QUOTE_TTL_MS,
    };
    let to_insert = row.clone();
    ctx.store.write(move |conn| to_insert.insert(conn)).await?;
    Ok(row.object())
}

/// A price locked for an RMB purchase.
#[derive(Debug, Clone)]
struct QuoteRow {
    id: String,
    tenant: Tenant,
    trader: String,
    channel: String,
    amount_fen: i64,
    pay_currency: Currency,
    cost_minor: i64,
    fee_minor: i64,
    rate: Ratio,
    created_at_ms: i64,
    expires_at_ms: i64,
}

impl QuoteRow {
    fn insert(&self, conn: &Connection) -> Result<(), StoreError> {
        conn.prepare_cached(
            "INSERT INTO rmb_quotes (id, merchant_id, mode, trader, channel, amount, pay_currency, cost, fee,
             rate_numerator, rate_denominator, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            self.id,
            self.tenant.merchant_id,
            self.tenant.mode,
            self.trader,
            self.channel,
            self.amount_fen,
            self.pay_currency,
            self.cost_minor,
            self.fee_minor,
            self.rate.num.to_string(),
            self.rate.den.to_string(),
            self.created_at_ms,
            self.expires_at_ms
        ])?;
        Ok(())
    }

    fn from_row(row: &Row) -> rusqlite::Result<QuoteRow> {
        Ok(QuoteRow {
            id: row.get(0)?,
            tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
            trader: row.get(3)?,
            channel: row.get(4)?,
            amount_fen: row.get(5)?,
            pay_currency: row.get(6)?,
            cost_minor: row.get(7)?,
            fee_minor: row.get(8)?,
            rate: Ratio::from_columns(row, 9, 10)?,
            created_at_ms: row.get(11)?,
            expires_at_ms: row.get(12)?,
        })
    }

    fn object(&self) -> RmbQuote {
        RmbQuote {
            object: ObjectType::RmbQuote,
            id: self.id.clone(),
            channel: self.channel.clone(),
            amount: Amount { currency: CNY, amount: self.amount_fen },
            cost: Amount { currency: self.pay_currency, amount: self.cost_minor },
            fee: Amount { currency: self.pay_currency, amount: self.fee_minor },
            total: Amount { currency: self.pay_currency, amount: self.cost_minor + self.fee_minor },
            rate: RateObject::from(self.rate),
            livemode: self.tenant.mode.is_live(),
            created_at_ms: self.created_at_ms,
            expires_at_ms: self.expires_at_ms,
        }
    }
}

impl TenantRecord for QuoteRow {
    const WHAT: &'static str = "quote";

    fn load(conn: &Connection, id: &str) -> Result<Option<QuoteRow>, StoreError> {
        Ok(conn
            .prepare_cached(
                "SELECT id, merchant_id, mode, trader, channel, amount, pay_currency, cost, fee, rate_numerator,
                 rate_denominator, created_at, expires_at FROM rmb_quotes WHERE id = ?1",
            )?
            .query_row(params![id], QuoteRow::from_row)
            .optional()?)
    }

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}

/// An RMB quote, as merchants see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RmbQuote {
    object: ObjectType,
    pub id: String,
    pub channel: String,
    /// What the recipient receives, in fen.
    #[schema(value_type = FenAmount)]
    pub amount: Amount,
    /// The CNY amount at the trader's rate, in the pay currency.
    pub cost: Amount,
    /// The platform's fee.
    pub fee: Amount,
    /// What the order takes from the merchant's balance: cost + fee.
    pub total: Amount,
    /// CNY per unit of the pay currency.
    pub rate: RateObject,
    pub livemode: bool,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
    #[serde(rename = "expires_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at_ms: i64,
}

/// A validated order.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub quote_id: String,
    pub recipient_identifier: String,
    pub recipient_name: Option<String>,
}

/// `POST /v1/rmb/orders`.
pub async fn order(ctx: &Context, request: KeyedRequest, new: NewOrder) -> Result<Reply, ApiError> {
    // The trader the quote was priced by carries the order: one not loaded
    // now (a restart without it) refuses the order before anything is
    // written. An unknown quote is refused in the write, with the rest.
    let (tenant, quote_id) = (request.tenant.clone(), new.quote_id.clone());
    let quote = ctx.store.read(move |conn| crate::store::load_owned::<QuoteRow>(conn, &tenant, &quote_id)).await?;
    let trader = quote.as_ref().and_then(|q| ctx.traders.named(&q.trader, q.tenant.mode));
    if quote.is_some() && trader.is_none() {
        let refusal = ApiError::ProviderUnavailable(
            "The desk that priced this quote is not available; request a new quote.".into(),
        );
        return idempotency::replay_or(&ctx.store, &request, refusal).await;
    }
    let now_ms = ctx.clock.now_ms();
    let id = TransactionKind::RmbPurchase.new_id();
    let ctx = ctx.clone();
    lifecycle::detached(async move {
        let (tenant, key, wallets) = (request.tenant.clone(), request.key.clone(), ctx.wallets.clone());
        let claimed = idempotency::claim_with(&ctx.store, request, id.clone(), now_ms, move |conn| {
            RmbPurchaseRow::accept(conn, &wallets, &tenant, id, key, new, now_ms)
        });
        let row = match claimed.await? {
            Claimed::Used(reply) => return Ok(reply),
            Claimed::New(row) => row,
        };
        // Never `None` here (a new order had its quote); `None` would tell
        // the lifecycle no rail is involved, so it is refused instead, and
        // the unanswered order is resumed at the next start.
        let trader = trader
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("RMB order {} without its trader", row.work.id)))?;
        let stored = lifecycle::submit(&ctx, Some(trader), row).await?;
        stored.map(Reply::new).ok_or_else(|| ApiError::Internal(anyhow::anyhow!("an RMB order's key stored no answer")))
    })
    .await
}

/// An RMB purchase as stored.
#[derive(Debug, Clone)]
pub struct RmbPurchaseRow {
    pub work: RailWork<RmbStatus>,
    reference: String,
    idempotency_key: String,
    quote_id: String,
    /// The trader plugin (file stem) that carries it.
    trader: String,
    channel: String,
    recipient_identifier: String,
    recipient_name: Option<String>,
    amount_fen: i64,
    cost_minor: i64,
    fee_minor: i64,
    pub currency: Currency,
    entity: Entity,
}

const SELECT: &str = "SELECT id, merchant_id, mode, status, provider_reference, failure_code, failure_message, \
     created_at, completed_at, reference, idempotency_key, quote_id, trader, channel, recipient_identifier, \
     recipient_name, amount, cost, fee, currency, entity FROM rmb_purchases";

impl RmbPurchaseRow {
    /// Accepts an order at its quote — the tenant's, unused, unexpired —
    /// and takes its total from the merchant's balance, refusing (so that
    /// nothing is written, the key's claim included) when it is short.
    fn accept(
        conn: &Connection,
        wallets: &Wallets,
        tenant: &Tenant,
        id: String,
        key: String,
        new: NewOrder,
        now_ms: i64,
    ) -> Result<RmbPurchaseRow, StoreError> {
        let refuse = StoreError::rejected;
        let quote = crate::store::load_owned::<QuoteRow>(conn, tenant, &new.quote_id)?
            .ok_or_else(|| refuse(ApiError::NotFound { what: "quote" }))?;
        let used: Option<String> = conn
            .prepare_cached("SELECT id FROM rmb_purchases WHERE quote_id = ?1")?
            .query_row(params![quote.id], |row| row.get(0))
            .optional()?;
        if let Some(purchase) = used {
            return Err(refuse(ApiError::QuoteAlreadyUsed { by: format!("RMB purchase {purchase}") }));
        }
        if now_ms > quote.expires_at_ms {
            return Err(refuse(ApiError::QuoteExpired { expired_at: rfc3339(quote.expires_at_ms) }));
        }
        let row = RmbPurchaseRow {
            work: RailWork {
                id,
                tenant: tenant.clone(),
                status: RmbStatus::Processing,
                provider_reference: None,
                failure: None,
                created_at_ms: now_ms,
                completed_at_ms: None,
            },
            reference: crate::values::ids::new_reference("RMB", now_ms),
            idempotency_key: key,
            quote_id: quote.id,
            trader: quote.trader,
            channel: quote.channel,
            recipient_identifier: new.recipient_identifier,
            recipient_name: new.recipient_name,
            amount_fen: quote.amount_fen,
            cost_minor: quote.cost_minor,
            fee_minor: quote.fee_minor,
            currency: quote.pay_currency,
            entity: wallets.entity().clone(),
        };
        row.insert(conn, wallets, now_ms)?;
        Ok(row)
    }

    /// What the merchant pays: cost + fee.
    fn total(&self) -> i64 {
        self.cost_minor + self.fee_minor
    }

    fn insert(&self, conn: &Connection, wallets: &Wallets, now_ms: i64) -> Result<(), StoreError> {
        let work = &self.work;
        let source = merchant_funds::spending_account(conn, wallets, &work.tenant, self.currency, now_ms)?;
        let available = ledger::balance(conn, &source)?
            .checked_neg()
            .ok_or_else(|| StoreError::Invariant(format!("balance of {} overflows", work.tenant.merchant_id)))?;
        if available < self.total() {
            return Err(StoreError::rejected(ApiError::InsufficientFunds {
                currency: self.currency.code.into(),
                available,
                needed: u64::try_from(self.total()).unwrap_or(0),
            }));
        }
        conn.prepare_cached(
            "INSERT INTO rmb_purchases (id, merchant_id, mode, reference, idempotency_key, quote_id, trader, channel,
             recipient_identifier, recipient_name, amount, cost, fee, currency, entity, status, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?
        .execute(params![
            work.id,
            work.tenant.merchant_id,
            work.tenant.mode,
            self.reference,
            self.idempotency_key,
            self.quote_id,
            self.trader,
            self.channel,
            self.recipient_identifier,
            self.recipient_name,
            self.amount_fen,
            self.cost_minor,
            self.fee_minor,
            self.currency,
            self.entity,
            work.status,
            work.created_at_ms
        ])?;
        let postings = [
            Posting { account: source, amount_minor: self.total() },
            Posting { account: self.account(AccountKind::TradeClearing), amount_minor: -self.total() },
        ];
        ledger::post(conn, work.tenant.mode, EntryKind::RmbHold, &work.id, &postings, now_ms).map(drop)
    }

    /// The id of the tenant's purchase with this reference.
    pub fn id_by_reference(conn: &Connection, tenant: &Tenant, reference: &str) -> Result<Option<String>, StoreError> {
        Ok(conn
            .prepare_cached("SELECT id FROM rmb_purchases WHERE reference = ?1 AND merchant_id = ?2 AND mode = ?3")?
            .query_row(params![reference, tenant.merchant_id, tenant.mode], |row| row.get(0))
            .optional()?)
    }

    fn from_row(row: &Row) -> rusqlite::Result<RmbPurchaseRow> {
        Ok(RmbPurchaseRow {
            work: RailWork {
                id: row.get(0)?,
                tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
                status: row.get(3)?,
                provider_reference: row.get(4)?,
                failure: FailureReason::from_columns(row.get(5)?, row.get(6)?),
                created_at_ms: row.get(7)?,
                completed_at_ms: row.get(8)?,
            },
            reference: row.get(9)?,
            idempotency_key: row.get(10)?,
            quote_id: row.get(11)?,
            trader: row.get(12)?,
            channel: row.get(13)?,
            recipient_identifier: row.get(14)?,
            recipient_name: row.get(15)?,
            amount_fen: row.get(16)?,
            cost_minor: row.get(17)?,
            fee_minor: row.get(18)?,
            currency: row.get(19)?,
            entity: row.get(20)?,
        })
    }

    /// One of the merchant's accounts for this purchase.
    fn account(&self, kind: AccountKind) -> Account {
        Account {
            mode: self.work.tenant.mode,
            entity: self.entity.clone(),
            owner: self.work.tenant.merchant_id.clone(),
            kind,
            currency: self.currency,
        }
    }

    /// The transaction object merchants see.
    pub fn object(&self) -> RmbPurchase {
        let work = &self.work;
        RmbPurchase {
            object: ObjectType::Transaction,
            id: work.id.clone(),
            reference: self.reference.clone(),
            kind: TransactionKind::RmbPurchase,
            status: work.status,
            amount: self.total(),
            fee: self.fee_minor,
            currency: self.currency,
            description: format!(
                "RMB {} by {} to {}",
                display_amount(u64::try_from(self.amount_fen).unwrap_or(0), CNY),
                self.channel,
                self.recipient_identifier
            ),
            rmb: RmbDetails {
                quote_id: self.quote_id.clone(),
                channel: self.channel.clone(),
                recipient_identifier: self.recipient_identifier.clone(),
                recipient_name: self.recipient_name.clone(),
                amount: Amount { currency: CNY, amount: self.amount_fen },
                cost: Amount { currency: self.currency, amount: self.cost_minor },
            },
            livemode: work.tenant.mode.is_live(),
            entity: self.entity.clone(),
            provider_reference: work.provider_reference.clone(),
            idempotency_key: self.idempotency_key.clone(),
            created_at_ms: work.created_at_ms,
            completed_at_ms: work.completed_at_ms,
            failure: work.failure.clone(),
            next_action: match work.status {
                RmbStatus::Processing => Some(NextAction::Wait),
                RmbStatus::Failed => Some(NextAction::RetryWithNewKey),
                RmbStatus::Completed | RmbStatus::Refunded => None,
            },
        }
    }
}

impl TenantRecord for RmbPurchaseRow {
    const WHAT: &'static str = "RMB purchase";

    fn load(conn: &Connection, id: &str) -> Result<Option<RmbPurchaseRow>, StoreError> {
        Ok(conn
            .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
            .query_row(params![id], RmbPurchaseRow::from_row)
            .optional()?)
    }

    fn tenant(&self) -> &Tenant {
        &self.work.tenant
    }
}

impl RailOperation for RmbPurchaseRow {
    const KIND: TransactionKind = TransactionKind::RmbPurchase;
    const BUSY_MESSAGE: &'static str =
        "the gateway had no free plugin instance; nothing was paid and the money is back: retry with a new quote";
    type Status = RmbStatus;
    const PROCESSING: RmbStatus = RmbStatus::Processing;
    type Request = RmbOrder;
    type Plugin = LoadedTrader;
    type Outcome = TradeOutcome;

    fn plugin(ctx: &Context, name: &str, mode: Mode) -> Option<Arc<LoadedTrader>> {
        ctx.traders.named(name, mode)
    }

    fn work(&self) -> &RailWork<RmbStatus> {
        &self.work
    }

    fn work_mut(&mut self) -> &mut RailWork<RmbStatus> {
        &mut self.work
    }

    fn rail(&self) -> Option<&str> {
        Some(&self.trader)
    }

    fn rail_request(&self) -> Result<RmbOrder, String> {
        let fen = u64::try_from(self.amount_fen).map_err(|_| format!("a negative amount ({})", self.amount_fen))?;
        Ok(RmbOrder {
            trade_id: self.work.id.clone(),
            channel: self.channel.clone(),
            recipient_identifier: self.recipient_identifier.clone(),
            recipient_name: self.recipient_name.clone(),
            amount: Money { amount: fen, currency: CNY.code.to_string() },
            paid: lifecycle::rail_money(self.total(), self.currency)?,
            created_at_ms: self.work.created_at_for_rail(),
        })
    }

    fn call(trader: &LoadedTrader, order: &RmbOrder) -> Answer<TradeOutcome> {
        trader.rmb_buy(order)
    }

    fn ask(trader: &LoadedTrader, order: &RmbOrder, provider_reference: Option<&str>) -> Answer<TradeOutcome> {
        trader.rmb_status(order, provider_reference)
    }

    /// A cancelled order paid nothing: it failed.
    fn final_status(reported: TransactionStatus) -> Option<RmbStatus> {
        match reported {
            TransactionStatus::Processing => None,
            TransactionStatus::Completed => Some(RmbStatus::Completed),
            TransactionStatus::Refunded => Some(RmbStatus::Refunded),
            TransactionStatus::Failed | TransactionStatus::Cancelled => Some(RmbStatus::Failed),
        }
    }

    /// Paid out: the trader is owed the cost and the platform keeps the fee.
    /// Refunded or failed: the money goes back where it came from.
    fn settle(&mut self, conn: &Connection, now_ms: i64) -> Result<(), StoreError> {
        let (tenant, id) = (&self.work.tenant, &self.work.id);
        let clearing = Posting { account: self.account(AccountKind::TradeClearing), amount_minor: self.total() };
        if self.work.status == RmbStatus::Completed {
            let payable =
                Account { owner: ledger::trader_owner(&self.trader), ..self.account(AccountKind::TraderPayable) };
            let revenue = Account { owner: PLATFORM_OWNER.to_string(), ..self.account(AccountKind::FeeRevenue) };
            let mut postings = vec![clearing, Posting { account: payable, amount_minor: -self.cost_minor }];
            // The ledger takes no posting of zero.
            if self.fee_minor > 0 {
                postings.push(Posting { account: revenue, amount_minor: -self.fee_minor });
            }
            ledger::post(conn, tenant.mode, EntryKind::RmbPaid, id, &postings, now_ms)?;
            return webhooks::emit(conn, tenant, EventType::TransactionCompleted, id, &self.object(), now_ms).map(drop);
        }
        let wallets = Wallets::new(self.entity.clone());
        let source = merchant_funds::spending_account(conn, &wallets, tenant, self.currency, now_ms)?;
        let postings = [clearing, Posting { account: source, amount_minor: -self.total() }];
        ledger::post(conn, tenant.mode, EntryKind::RmbReturn, id, &postings, now_ms)?;
        let event = if self.work.status == RmbStatus::Refunded {
            EventType::TransactionRefunded
        } else {
            EventType::TransactionFailed
        };
        webhooks::emit(conn, tenant, event, id, &self.object(), now_ms).map(drop)
    }

    fn save(&self, conn: &Connection) -> Result<(), StoreError> {
        let work = &self.work;
        conn.prepare_cached(
            "UPDATE rmb_purchases SET status = ?2, provider_reference = ?3, failure_code = ?4, failure_message = ?5,
             completed_at = ?6 WHERE id = ?1",
        )?
        .execute(params![
            work.id,
            work.status,
            work.provider_reference,
            work.failure.as_ref().map(|f| &f.code),
            work.failure.as_ref().and_then(|f| f.message.as_ref()),
            work.completed_at_ms
        ])?;
        Ok(())
    }

    /// Always the transaction, `201`: one the trader gave no answer for is
    /// processing, followed by status checks.
    fn response(&self, _unanswered: Option<&PluginError>) -> Option<StoredResponse> {
        Some(StoredResponse::created(&self.object()))
    }
}

/// The RMB transaction object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RmbPurchase {
    object: ObjectType,
    pub id: String,
    pub reference: String,
    #[serde(rename = "type")]
    kind: TransactionKind,
    pub status: RmbStatus,
    /// What the merchant paid: the cost and the fee.
    pub amount: i64,
    pub fee: i64,
    pub currency: Currency,
    pub description: String,
    pub rmb: RmbDetails,
    pub livemode: bool,
    pub entity: Entity,
    pub provider_reference: Option<String>,
    pub idempotency_key: String,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
    #[serde(rename = "completed_at", serialize_with = "serialize_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextAction>,
}

/// Who is paid, how, and how much.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RmbDetails {
    pub quote_id: String,
    pub channel: String,
    pub recipient_identifier: String,
    pub recipient_name: Option<String>,
    /// What the recipient receives, in fen.
    #[schema(value_type = FenAmount)]
    pub amount: Amount,
    /// The CNY amount at the quoted rate, in the pay currency.
    pub cost: Amount,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_rounds_up_to_a_minor_unit() {
        let usd = Currency::from_code("USD").unwrap();
        // CNY 7.10 per USD: CNY 100.00 costs USD 14.0845… → 14.09.
        let rate = Ratio::new(71, 10).unwrap();
        assert_eq!(cost_of(10_000, rate, usd), Some(1_409));
        // Exact: CNY 71.00 is USD 10.00.
        assert_eq!(cost_of(7_100, rate, usd), Some(1_000));
        // CNY 0.01 still costs a cent.
        assert_eq!(cost_of(1, rate, usd), Some(1));
        assert_eq!(cost_of(u64::MAX, Ratio::new(1, 1_000_000).unwrap(), usd), None);
    }
}
