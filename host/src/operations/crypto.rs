//! Crypto sales: a merchant's customers (or the merchant) deposit crypto to
//! an address the trader bound to crypto sales gave the merchant — one per
//! asset and network, the same on every request — and the merchant is
//! credited its price in their chosen payout currency, at the trader's
//! rate when the deposit confirms, less the platform's fee.
//!
//! A deposit is reported by the trader (a simulated one in the sandbox,
//! `POST /v1/crypto/test-deposit`; status checks follow one that has not
//! confirmed) and recorded under the provider's deposit id, unique per
//! trader, so a deposit reported twice is one sale and credited once. While
//! it confirms or is held for compliance review it is `pending`; confirmed,
//! `completed` and credited; rejected, `failed` with nothing credited.
//!
//! Ledger, in the wallet entity (transaction = the sale id, `P` = the
//! price, `F` = the fee), when confirmed (`crypto_credit`):
//! `trader_payable` +P (the trader holds the coins and owes their price),
//! the merchant's balance −(P−F), `fee_revenue` −F.
//!
//! This module owns the `crypto_addresses` and `crypto_sales` tables.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::checks::{self, DueCheck, Schedule};
use super::context::Context;
use super::idempotency::{self, KeyedRequest, Reply, StoredResponse};
use super::merchant_funds;
use super::objects::NextAction;
use crate::domain::fx::{RateObject, Ratio};
use crate::domain::wallets::Wallets;
use crate::domain::webhooks::{self, EventType};
use crate::ledger::{self, Account, AccountKind, EntryKind, PLATFORM_OWNER, Posting};
use crate::plugins::LoadedTrader;
use crate::plugins::traders::{
    AddressRequest, CryptoAsset, Deposit, DepositState as WitDepositState, TestDepositRequest,
};
use crate::store::{StoreError, TenantRecord};
use crate::values::clock::{serialize_rfc3339, serialize_rfc3339_opt};
use crate::values::entity::Entity;
use crate::values::error::ApiError;
use crate::values::mode::{Mode, Tenant};
use crate::values::money::{self, AMOUNT_MINOR_MAX, Currency};
use crate::values::status::{CryptoStatus, DepositState, ObjectType, TradeKind, TransactionKind};

/// The platform's fee on a crypto sale, in basis points of its price,
/// rounded down.
pub const CRYPTO_FEE_BPS: u64 = 100;

/// The trader carrying crypto sales in `mode`.
pub fn trader_for(ctx: &Context, mode: Mode) -> Result<Arc<LoadedTrader>, ApiError> {
    ctx.traders
        .for_kind(mode, TradeKind::CryptoSale)
        .ok_or_else(|| ApiError::ProviderUnavailable(format!("No trader buys crypto in {mode} mode on this gateway.")))
}

fn no_answer(trader: &LoadedTrader, error: &impl std::fmt::Display) -> ApiError {
    tracing::warn!(trader = trader.plugin_name(), %error, "the trader gave no answer");
    ApiError::ProviderUnavailable("The crypto desk did not answer; retry shortly.".into())
}

/// The assets, networks and rates the trader takes now.
pub async fn assets(trader: Arc<LoadedTrader>) -> Result<Vec<CryptoAsset>, ApiError> {
    let caller = Arc::clone(&trader);
    match crate::plugins::call_blocking(move || caller.crypto_assets()).await {
        Ok(Ok(assets)) => Ok(assets),
        Ok(Err(failure)) => Err(ApiError::ProviderUnavailable(format!(
            "The crypto desk could not list its assets ({}); retry shortly.",
            failure.message
        ))),
        Err(error) => Err(no_answer(&trader, &error)),
    }
}

/// The rate of one whole coin of `asset` in `payout`, if the trader gives one.
fn rate_of(assets: &[CryptoAsset], asset: &str, payout: Currency) -> Option<Ratio> {
    let rate = assets.iter().find(|a| a.symbol == asset)?.rates.iter().find(|r| r.quote == payout.code)?;
    Ratio::new(u128::from(rate.numerator), u128::from(rate.denominator))
}

/// What `amount` base units of a coin with `decimals` pay at `rate`, rounded
/// down to a minor unit of `payout`.
pub fn price(amount: u64, decimals: u8, rate: Ratio, payout: Currency) -> Option<u64> {
    let num = u128::from(amount).checked_mul(rate.num)?.checked_mul(10u128.pow(u32::from(payout.exponent)))?;
    let den = rate.den.checked_mul(10u128.checked_pow(u32::from(decimals))?)?;
    u64::try_from(num / den).ok().filter(|p| *p <= AMOUNT_MINOR_MAX)
}

/// A deposit address asked for.
#[derive(Debug, Clone)]
pub struct AddressAsk {
    /// Upper case, e.g. "USDT".
    pub asset: String,
    /// Lower case, e.g. "tron".
    pub network: String,
    pub payout_currency: Currency,
}

/// `POST /v1/crypto/addresses`: the merchant's address for an asset on a
/// network, made on first request and the same on every later one (the
/// payout currency is the last one asked for). `true` when it was made now.
pub async fn address(ctx: &Context, tenant: Tenant, ask: AddressAsk) -> Result<(bool, DepositAddress), ApiError> {
    let trader = trader_for(ctx, tenant.mode)?;
    let listed = assets(Arc::clone(&trader)).await?;
    let asset = listed.iter().find(|a| a.symbol == ask.asset).ok_or_else(|| {
        let known: Vec<&str> = listed.iter().map(|a| a.symbol.as_str()).collect();
        ApiError::not_offered("asset", format!("must be one of {}; see GET /v1/crypto/assets", known.join(", ")))
    })?;
    if !asset.networks.iter().any(|n| n.slug == ask.network) {
        let known: Vec<&str> = asset.networks.iter().map(|n| n.slug.as_str()).collect();
        return Err(ApiError::not_offered(
            "network",
            format!("{} is deposited on {}, not {}", asset.symbol, known.join(", "), ask.network),
        ));
    }
    if rate_of(&listed, &asset.symbol, ask.payout_currency).is_none() {
        return Err(ApiError::not_offered(
            "payout_currency",
            format!("{} is not bought for {}", asset.symbol, ask.payout_currency),
        ));
    }
    let (lookup_tenant, lookup_ask) = (tenant.clone(), ask.clone());
    let existing = ctx.store.write(move |conn| AddressRow::reuse(conn, &lookup_tenant, &lookup_ask)).await?;
    if let Some(row) = existing {
        return Ok((false, row.object()));
    }
    let request =
        AddressRequest { owner: tenant.merchant_id.clone(), asset: ask.asset.clone(), network: ask.network.clone() };
    let caller = Arc::clone(&trader);
    let address = match crate::plugins::call_blocking(move || caller.deposit_address(&request)).await {
        Ok(Ok(address)) => address,
        Ok(Err(failure)) => {
            return Err(ApiError::ProviderUnavailable(format!(
                "The crypto desk could not give an address ({}); retry shortly.",
                failure.message
            )));
        }
        Err(error) => return Err(no_answer(&trader, &error)),
    };
    let row = AddressRow {
        id: crate::values::ids::new_id("caddr"),
        tenant,
        trader: trader.plugin_name().to_string(),
        asset: ask.asset,
        network: ask.network,
        address,
        payout_currency: ask.payout_currency,
        created_at_ms: ctx.clock.now_ms(),
    };
    // Two first requests at once make one address: the second finds the first's.
    let stored = ctx.store.write(move |conn| row.insert_or_existing(conn)).await?;
    Ok((true, stored.object()))
}

/// A deposit address as stored.
#[derive(Debug, Clone)]
struct AddressRow {
    id: String,
    tenant: Tenant,
    trader: String,
    asset: String,
    network: String,
    address: String,
    payout_currency: Currency,
    created_at_ms: i64,
}

const SELECT_ADDRESS: &str =
    "SELECT id, merchant_id, mode, trader, asset, network, address, payout_currency, created_at FROM crypto_addresses";

impl AddressRow {
    fn from_row(row: &Row) -> rusqlite::Result<AddressRow> {
        Ok(AddressRow {
            id: row.get(0)?,
            tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
            trader: row.get(3)?,
            asset: row.get(4)?,
            network: row.get(5)?,
            address: row.get(6)?,
            payout_currency: row.get(7)?,
            created_at_ms: row.get(8)?,
        })
    }

    fn find(conn: &Connection, tenant: &Tenant, asset: &str, network: &str) -> Result<Option<AddressRow>, StoreError> {
        Ok(conn
            .prepare_cached(&format!(
                "{SELECT_ADDRESS} WHERE merchant_id = ?1 AND mode = ?2 AND asset = ?3 AND network = ?4"
            ))?
            .query_row(params![tenant.merchant_id, tenant.mode, asset, network], AddressRow::from_row)
            .optional()?)
    }

    /// The tenant's address `address`.
    fn by_address(conn: &Connection, tenant: &Tenant, address: &str) -> Result<Option<AddressRow>, StoreError> {
        Ok(conn
            .prepare_cached(&format!("{SELECT_ADDRESS} WHERE merchant_id = ?1 AND mode = ?2 AND address = ?3"))?
            .query_row(params![tenant.merchant_id, tenant.mode, address], AddressRow::from_row)
            .optional()?)
    }

    /// The address the trader `trader` gave in `mode` that `deposit` reached.
    fn of_trader(
        conn: &Connection,
        mode: Mode,
        trader: &str,
        deposit: &Deposit,
    ) -> Result<Option<AddressRow>, StoreError> {
        Ok(conn
            .prepare_cached(&format!(
                "{SELECT_ADDRESS} WHERE mode = ?1 AND trader = ?2 AND asset = ?3 AND network = ?4 AND address = ?5"
            ))?
            .query_row(params![mode, trader, deposit.asset, deposit.network, deposit.address], AddressRow::from_row)
            .optional()?)
    }

    /// Whether `deposit` reached this address.
    fn received(&self, deposit: &Deposit) -> bool {
        deposit.address == self.address && deposit.asset == self.asset && deposit.network == self.network
    }

    /// The tenant's existing address for the asset and network, with the
    /// payout currency asked for now.
    fn reuse(conn: &Connection, tenant: &Tenant, ask: &AddressAsk) -> Result<Option<AddressRow>, StoreError> {
        let Some(mut row) = AddressRow::find(conn, tenant, &ask.asset, &ask.network)? else {
            return Ok(None);
        };
        if row.payout_currency != ask.payout_currency {
            conn.prepare_cached("UPDATE crypto_addresses SET payout_currency = ?2 WHERE id = ?1")?
                .execute(params![row.id, ask.payout_currency])?;
            row.payout_currency = ask.payout_currency;
        }
        Ok(Some(row))
    }

    fn insert_or_existing(self, conn: &Connection) -> Result<AddressRow, StoreError> {
        conn.prepare_cached(
            "INSERT INTO crypto_addresses (id, merchant_id, mode, trader, asset, network, address, payout_currency,
             created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (merchant_id, mode, asset, network)
             DO NOTHING",
        )?
        .execute(params![
            self.id,
            self.tenant.merchant_id,
            self.tenant.mode,
            self.trader,
            self.asset,
            self.network,
            self.address,
            self.payout_currency,
            self.created_at_ms
        ])?;
        AddressRow::find(conn, &self.tenant, &self.asset, &self.network)?
            .ok_or_else(|| StoreError::Invariant("a deposit address vanished".into()))
    }

    fn object(&self) -> DepositAddress {
        DepositAddress {
            object: ObjectType::DepositAddress,
            id: self.id.clone(),
            asset: self.asset.clone(),
            network: self.network.clone(),
            address: self.address.clone(),
            payout_currency: self.payout_currency,
            livemode: self.tenant.mode.is_live(),
            created_at_ms: self.created_at_ms,
        }
    }
}

/// A deposit address, as merchants see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DepositAddress {
    object: ObjectType,
    pub id: String,
    pub asset: String,
    pub network: String,
    pub address: String,
    /// What deposits to it are credited in.
    pub payout_currency: Currency,
    pub livemode: bool,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
}

/// A simulated deposit asked for.
#[derive(Debug, Clone)]
pub struct TestDepositAsk {
    pub address: String,
    /// In the asset's base units.
    pub amount: u64,
    pub test_reference: String,
}

/// `POST /v1/crypto/test-deposit` (test keys): the sandbox trader reports
/// a deposit to one of the merchant's addresses, recorded as any deposit.
pub async fn test_deposit(ctx: &Context, request: KeyedRequest, ask: TestDepositAsk) -> Result<Reply, ApiError> {
    if request.tenant.mode != Mode::Test {
        return Err(ApiError::TestModeOnly);
    }
    let (tenant, wanted) = (request.tenant.clone(), ask.address.clone());
    let address = match ctx.store.read(move |conn| AddressRow::by_address(conn, &tenant, &wanted)).await? {
        Some(address) => address,
        None => {
            // Well-formed, but no such address: like an unknown id.
            let refusal = ApiError::NotFound { what: "deposit address (make one with POST /v1/crypto/addresses)" };
            return idempotency::replay_or(&ctx.store, &request, refusal).await;
        }
    };
    let Some(trader) = ctx.traders.named(&address.trader, Mode::Test) else {
        let refusal = ApiError::ProviderUnavailable("The trader that gave this address is not loaded.".into());
        return idempotency::replay_or(&ctx.store, &request, refusal).await;
    };
    let (deposit, listing) = match simulate(&trader, &address, &ask).await {
        Ok(simulated) => simulated,
        // A used key answers as it did, whatever the trader says now.
        Err(refusal) => return idempotency::replay_or(&ctx.store, &request, refusal).await,
    };
    let id = TransactionKind::CryptoSale.new_id();
    let (key, checks, entity) = (request.key.clone(), ctx.checks.clone(), ctx.wallets.entity().clone());
    let (reply, _) = idempotency::write_once(&ctx.store, &ctx.clock, request, id.clone(), move |conn, now_ms| {
        if let Some(sale) = SaleRow::by_deposit(conn, Mode::Test, &address.trader, &deposit.deposit_id)? {
            return Err(StoreError::rejected(ApiError::DepositAlreadyRecorded { sale: sale.id }));
        }
        let made = Made { id, key: Some(key), test_reference: Some(ask.test_reference), entity, now_ms };
        let mut sale =
            SaleRow::new(made, &address, &deposit, listing.decimals(&deposit.asset)?).map_err(StoreError::rejected)?;
        sale.insert(conn)?;
        sale.apply(conn, &deposit, &listing, now_ms)?;
        if sale.status == CryptoStatus::Pending {
            checks::schedule(
                conn,
                TransactionKind::CryptoSale,
                &sale.id,
                Schedule::First(now_ms + checks.delay_ms(0)),
            )?;
        }
        Ok((StoredResponse::created(&sale.object()), ()))
    })
    .await?;
    Ok(reply)
}

/// Asks the sandbox trader for a deposit to `address`, and its assets now.
async fn simulate(
    trader: &Arc<LoadedTrader>,
    address: &AddressRow,
    ask: &TestDepositAsk,
) -> Result<(Deposit, Listing), ApiError> {
    let simulated = TestDepositRequest {
        address: address.address.clone(),
        asset: address.asset.clone(),
        network: address.network.clone(),
        amount: ask.amount,
        test_reference: ask.test_reference.clone(),
    };
    let caller = Arc::clone(trader);
    let deposit = match crate::plugins::call_blocking(move || caller.test_deposit(&simulated)).await {
        Ok(Ok(deposit)) => deposit,
        Ok(Err(failure)) if failure.retryable => return Err(ApiError::ProviderUnavailable(failure.message)),
        Ok(Err(failure)) => return Err(ApiError::invalid("body", failure.message)),
        Err(error) => return Err(no_answer(trader, &error)),
    };
    if !address.received(&deposit) {
        tracing::error!(trader = trader.plugin_name(), "a test deposit reported to another address");
        return Err(ApiError::ProviderUnavailable("The crypto desk answered about another address.".into()));
    }
    Ok((deposit, Listing(assets(Arc::clone(trader)).await?)))
}

/// The trader's assets as listed just before a deposit is recorded: a
/// confirmed deposit is credited at the rate of its confirmation.
struct Listing(Vec<CryptoAsset>);

impl Listing {
    /// The base units per coin of `asset`, as the trader lists it.
    fn decimals(&self, asset: &str) -> Result<u8, StoreError> {
        self.0.iter().find(|a| a.symbol == asset).map(|a| a.decimals).ok_or_else(|| {
            StoreError::rejected(ApiError::ProviderUnavailable(format!("The crypto desk no longer lists {asset}.")))
        })
    }

    /// The rate of one whole coin of `asset` in `payout`, if listed.
    fn rate(&self, asset: &str, payout: Currency) -> Option<Ratio> {
        rate_of(&self.0, asset, payout)
    }
}

fn state_of(state: WitDepositState) -> DepositState {
    match state {
        WitDepositState::Confirming => DepositState::Confirming,
        WitDepositState::Confirmed => DepositState::Confirmed,
        WitDepositState::Held => DepositState::Held,
        WitDepositState::Rejected => DepositState::Rejected,
    }
}

/// Records a deposit a trader reported (a custody provider's callback) for
/// the merchant whose address it reached: a new deposit id makes a sale,
/// a known one moves its sale while pending. Answers the sale's status.
pub async fn reported(ctx: &Context, trader: &Arc<LoadedTrader>, deposit: Deposit) -> Result<CryptoStatus, ApiError> {
    let (mode, name) = (trader.mode(), trader.plugin_name().to_string());
    let (lookup, wanted) = (name.clone(), deposit.clone());
    let address = ctx
        .store
        .read(move |conn| AddressRow::of_trader(conn, mode, &lookup, &wanted))
        .await?
        .ok_or_else(|| ApiError::CallbackRejected("no address of this trader received the deposit".into()))?;
    let listing = Listing(assets(Arc::clone(trader)).await?);
    let (clock, checks, entity) = (ctx.clock.clone(), ctx.checks.clone(), ctx.wallets.entity().clone());
    let status = ctx
        .store
        .write(move |conn| {
            let now_ms = clock.now_ms();
            if let Some(mut sale) = SaleRow::by_deposit(conn, mode, &name, &deposit.deposit_id)? {
                if !sale.is_of(&deposit) {
                    return Err(StoreError::rejected(ApiError::CallbackRejected(
                        "the deposit id names a deposit to another address or of another asset".into(),
                    )));
                }
                if sale.apply(conn, &deposit, &listing, now_ms)? {
                    checks::finish(conn, &sale.id, Schedule::Prompt(now_ms))?;
                }
                return Ok(sale.status);
            }
            let id = TransactionKind::CryptoSale.new_id();
            let made = Made { id, key: None, test_reference: None, entity, now_ms };
            let mut sale = SaleRow::new(made, &address, &deposit, listing.decimals(&deposit.asset)?)
                .map_err(|why| StoreError::rejected(ApiError::CallbackRejected(why.to_string())))?;
            sale.insert(conn)?;
            sale.apply(conn, &deposit, &listing, now_ms)?;
            if sale.status == CryptoStatus::Pending {
                let first = Schedule::First(now_ms + checks.delay_ms(0));
                checks::schedule(conn, TransactionKind::CryptoSale, &sale.id, first)?;
            }
            Ok(sale.status)
        })
        .await?;
    Ok(status)
}

/// Asks the trader where a pending deposit stands, and records it.
pub async fn check(ctx: &Context, due: DueCheck) -> Result<(), ApiError> {
    let checks_made = due.checks_made.saturating_add(1);
    let next_at_ms = ctx.clock.now_ms().saturating_add(ctx.checks.delay_ms(checks_made));
    let next = Schedule::After { due_at_ms: due.due_at_ms, next_at_ms, checks_made };
    let id = due.operation_id;
    let lookup = id.clone();
    let sale = ctx.store.read(move |conn| SaleRow::load(conn, &lookup)).await?;
    let Some(sale) = sale.filter(|s| s.status == CryptoStatus::Pending) else {
        ctx.store.write(move |conn| checks::stop(conn, &id)).await?;
        return Ok(());
    };
    let Some(trader) = ctx.traders.named(&sale.trader, sale.tenant.mode) else {
        tracing::warn!(id, trader = sale.trader, "deposit check postponed: the trader is not loaded");
        ctx.store.write(move |conn| checks::schedule(conn, TransactionKind::CryptoSale, &id, next)).await?;
        return Ok(());
    };
    let (caller, deposit_id) = (Arc::clone(&trader), sale.deposit_id.clone());
    let answer = crate::plugins::call_blocking(move || caller.deposit_status(&deposit_id)).await;
    let listing = match answer {
        Ok(Ok(deposit)) if sale.is_of(&deposit) => assets(Arc::clone(&trader)).await.map(|l| (deposit, Listing(l))),
        Ok(Ok(_)) => Err(ApiError::ProviderUnavailable("the trader answered about another deposit".into())),
        Ok(Err(failure)) => Err(ApiError::ProviderUnavailable(failure.message)),
        Err(error) => Err(ApiError::ProviderUnavailable(error.to_string())),
    };
    let (deposit, listing) = match listing {
        Ok(found) => found,
        Err(why) => {
            tracing::info!(id, %why, "deposit status unknown; checking later");
            ctx.store.write(move |conn| checks::schedule(conn, TransactionKind::CryptoSale, &id, next)).await?;
            return Ok(());
        }
    };
    let clock = ctx.clock.clone();
    ctx.store
        .write(move |conn| {
            let now_ms = clock.now_ms();
            let Some(mut sale) = SaleRow::load(conn, &id)? else { return Ok(()) };
            sale.apply(conn, &deposit, &listing, now_ms)?;
            if sale.status == CryptoStatus::Pending {
                checks::schedule(conn, TransactionKind::CryptoSale, &id, next)
            } else {
                checks::finish(conn, &id, next)
            }
        })
        .await?;
    Ok(())
}

/// A crypto sale as stored.
#[derive(Debug, Clone)]
pub struct SaleRow {
    pub id: String,
    tenant: Tenant,
    reference: String,
    idempotency_key: Option<String>,
    address_id: String,
    address: String,
    trader: String,
    deposit_id: String,
    asset: String,
    network: String,
    decimals: u8,
    amount: i64,
    confirmations: u32,
    state: DepositState,
    status: CryptoStatus,
    payout_currency: Currency,
    rate: Option<Ratio>,
    payout: Option<i64>,
    fee: Option<i64>,
    test_reference: Option<String>,
    entity: Entity,
    created_at_ms: i64,
    completed_at_ms: Option<i64>,
}

/// What a new sale is made with besides its deposit.
struct Made {
    id: String,
    key: Option<String>,
    test_reference: Option<String>,
    entity: Entity,
    now_ms: i64,
}

const SELECT_SALE: &str = "SELECT s.id, s.merchant_id, s.mode, s.reference, s.idempotency_key, s.address_id, \
     a.address, s.trader, s.deposit_id, s.asset, s.network, s.decimals, s.amount, s.confirmations, s.state, s.status, \
     s.payout_currency, s.rate_numerator, s.rate_denominator, s.payout, s.fee, s.test_reference, s.entity, \
     s.created_at, s.completed_at FROM crypto_sales s JOIN crypto_addresses a ON a.id = s.address_id";

impl SaleRow {
    /// A new sale of `deposit`, or why its amount cannot be held (over
    /// `i64::MAX` base units: logged for the operator to reconcile).
    fn new(made: Made, address: &AddressRow, deposit: &Deposit, decimals: u8) -> Result<SaleRow, ApiError> {
        let amount = i64::try_from(deposit.amount).map_err(|_| {
            tracing::error!(deposit = %deposit.deposit_id, amount = deposit.amount, "a deposit too large to record");
            ApiError::ProviderUnavailable(
                "The deposit's amount is too large to record; the operator reconciles it.".into(),
            )
        })?;
        Ok(SaleRow {
            id: made.id,
            tenant: address.tenant.clone(),
            reference: crate::values::ids::new_reference("CRY", made.now_ms),
            idempotency_key: made.key,
            address_id: address.id.clone(),
            address: address.address.clone(),
            trader: address.trader.clone(),
            deposit_id: deposit.deposit_id.clone(),
            asset: deposit.asset.clone(),
            network: deposit.network.clone(),
            decimals,
            amount,
            confirmations: deposit.confirmations,
            state: state_of(deposit.state),
            status: CryptoStatus::Pending,
            payout_currency: address.payout_currency,
            rate: None,
            payout: None,
            fee: None,
            test_reference: made.test_reference,
            entity: made.entity,
            created_at_ms: made.now_ms,
            completed_at_ms: None,
        })
    }

    /// Whether `deposit` is this sale's: the same address, asset and network.
    fn is_of(&self, deposit: &Deposit) -> bool {
        deposit.deposit_id == self.deposit_id
            && deposit.address == self.address
            && deposit.asset == self.asset
            && deposit.network == self.network
            && u64::try_from(self.amount).is_ok_and(|amount| amount == deposit.amount)
    }

    fn insert(&self, conn: &Connection) -> Result<(), StoreError> {
        conn.prepare_cached(
            "INSERT INTO crypto_sales (id, merchant_id, mode, reference, idempotency_key, address_id, trader,
             deposit_id, asset, network, decimals, amount, confirmations, state, status, payout_currency,
             test_reference, entity, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        )?
        .execute(params![
            self.id,
            self.tenant.merchant_id,
            self.tenant.mode,
            self.reference,
            self.idempotency_key,
            self.address_id,
            self.trader,
            self.deposit_id,
            self.asset,
            self.network,
            self.decimals,
            self.amount,
            self.confirmations,
            self.state,
            self.status,
            self.payout_currency,
            self.test_reference,
            self.entity,
            self.created_at_ms
        ])?;
        Ok(())
    }

    fn from_row(row: &Row) -> rusqlite::Result<SaleRow> {
        let rate = Ratio::from_optional_columns(row, 17, 18)?;
        Ok(SaleRow {
            id: row.get(0)?,
            tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
            reference: row.get(3)?,
            idempotency_key: row.get(4)?,
            address_id: row.get(5)?,
            address: row.get(6)?,
            trader: row.get(7)?,
            deposit_id: row.get(8)?,
            asset: row.get(9)?,
            network: row.get(10)?,
            decimals: row.get(11)?,
            amount: row.get(12)?,
            confirmations: row.get(13)?,
            state: row.get(14)?,
            status: row.get(15)?,
            payout_currency: row.get(16)?,
            rate,
            payout: row.get(19)?,
            fee: row.get(20)?,
            test_reference: row.get(21)?,
            entity: row.get(22)?,
            created_at_ms: row.get(23)?,
            completed_at_ms: row.get(24)?,
        })
    }

    /// The sale of the trader's deposit `deposit_id` in `mode`, if recorded.
    fn by_deposit(
        conn: &Connection,
        mode: Mode,
        trader: &str,
        deposit_id: &str,
    ) -> Result<Option<SaleRow>, StoreError> {
        Ok(conn
            .prepare_cached(&format!("{SELECT_SALE} WHERE s.mode = ?1 AND s.trader = ?2 AND s.deposit_id = ?3"))?
            .query_row(params![mode, trader, deposit_id], SaleRow::from_row)
            .optional()?)
    }

    /// The id of the tenant's sale with this reference.
    pub fn id_by_reference(conn: &Connection, tenant: &Tenant, reference: &str) -> Result<Option<String>, StoreError> {
        Ok(conn
            .prepare_cached("SELECT id FROM crypto_sales WHERE reference = ?1 AND merchant_id = ?2 AND mode = ?3")?
            .query_row(params![reference, tenant.merchant_id, tenant.mode], |row| row.get(0))
            .optional()?)
    }

    fn account(&self, kind: AccountKind) -> Account {
        Account {
            mode: self.tenant.mode,
            entity: self.entity.clone(),
            owner: self.tenant.merchant_id.clone(),
            kind,
            currency: self.payout_currency,
        }
    }

    /// Records where its deposit stands, while it is pending: confirmed and
    /// priced (the listing has its rate), it is credited once; rejected, it fails; otherwise
    /// it stays pending with the provider's state. Returns whether it ended.
    fn apply(
        &mut self,
        conn: &Connection,
        deposit: &Deposit,
        listing: &Listing,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if self.status != CryptoStatus::Pending {
            return Ok(false);
        }
        // Priced by the sale's own asset and payout currency, whatever the
        // address is credited in now.
        let rate = listing.rate(&self.asset, self.payout_currency);
        self.state = state_of(deposit.state);
        self.confirmations = deposit.confirmations;
        let event = match (self.state, rate) {
            (DepositState::Confirmed, Some(rate)) => {
                let amount = u64::try_from(self.amount).unwrap_or(0);
                let price = price(amount, self.decimals, rate, self.payout_currency)
                    .ok_or_else(|| StoreError::Invariant(format!("the price of deposit {} overflows", self.id)))?;
                let fee = money::basis_points_of(price, CRYPTO_FEE_BPS);
                let (price, fee) = (i64::try_from(price).unwrap_or(i64::MAX), i64::try_from(fee).unwrap_or(0));
                self.credit(conn, price, fee, now_ms)?;
                (self.rate, self.payout, self.fee) = (Some(rate), Some(price), Some(fee));
                self.status = CryptoStatus::Completed;
                Some(EventType::TransactionCompleted)
            }
            (DepositState::Rejected, _) => {
                self.status = CryptoStatus::Failed;
                Some(EventType::TransactionFailed)
            }
            // Confirmed but not priced (the trader gave no rate for the
            // payout currency): pending, and checked again.
            _ => None,
        };
        if event.is_some() {
            self.completed_at_ms = Some(now_ms);
        }
        self.save(conn)?;
        if let Some(event) = event {
            webhooks::emit(conn, &self.tenant, event, &self.id, &self.object(), now_ms)?;
        }
        Ok(event.is_some())
    }

    /// The trader owes the price; the merchant is credited it less the fee.
    fn credit(&self, conn: &Connection, price: i64, fee: i64, now_ms: i64) -> Result<(), StoreError> {
        // A deposit worth less than a minor unit pays nothing, and the
        // ledger takes no posting of zero.
        if price == 0 {
            return Ok(());
        }
        let wallets = Wallets::new(self.entity.clone());
        let balance = merchant_funds::spending_account(conn, &wallets, &self.tenant, self.payout_currency, now_ms)?;
        let owed = Account { owner: ledger::trader_owner(&self.trader), ..self.account(AccountKind::TraderPayable) };
        let revenue = Account { owner: PLATFORM_OWNER.to_string(), ..self.account(AccountKind::FeeRevenue) };
        let mut postings = vec![
            Posting { account: owed, amount_minor: price },
            Posting { account: balance, amount_minor: -(price - fee) },
        ];
        if fee > 0 {
            postings.push(Posting { account: revenue, amount_minor: -fee });
        }
        ledger::post(conn, self.tenant.mode, EntryKind::CryptoCredit, &self.id, &postings, now_ms).map(drop)
    }

    fn save(&self, conn: &Connection) -> Result<(), StoreError> {
        conn.prepare_cached(
            "UPDATE crypto_sales SET confirmations = ?2, state = ?3, status = ?4, rate_numerator = ?5,
             rate_denominator = ?6, payout = ?7, fee = ?8, completed_at = ?9 WHERE id = ?1",
        )?
        .execute(params![
            self.id,
            self.confirmations,
            self.state,
            self.status,
            self.rate.map(|r| r.num.to_string()),
            self.rate.map(|r| r.den.to_string()),
            self.payout,
            self.fee,
            self.completed_at_ms
        ])?;
        Ok(())
    }

    /// The transaction object merchants see.
    pub fn object(&self) -> CryptoSale {
        let payout = self.payout.unwrap_or(0);
        let fee = self.fee.unwrap_or(0);
        CryptoSale {
            object: ObjectType::Transaction,
            id: self.id.clone(),
            reference: self.reference.clone(),
            kind: TransactionKind::CryptoSale,
            status: self.status,
            amount: payout,
            fee,
            net_amount: payout - fee,
            currency: self.payout_currency,
            description: format!(
                "{} {} deposit on {}",
                display_coin(self.amount, self.decimals),
                self.asset,
                self.network
            ),
            crypto: CryptoDetails {
                asset: self.asset.clone(),
                network: self.network.clone(),
                address: self.address.clone(),
                deposit_id: self.deposit_id.clone(),
                amount: self.amount.to_string(),
                decimals: self.decimals,
                confirmations: self.confirmations,
                state: self.state,
                rate: self.rate.map(RateObject::from),
                test_reference: self.test_reference.clone(),
            },
            livemode: self.tenant.mode.is_live(),
            entity: self.entity.clone(),
            idempotency_key: self.idempotency_key.clone(),
            created_at_ms: self.created_at_ms,
            completed_at_ms: self.completed_at_ms,
            next_action: (self.status == CryptoStatus::Pending).then_some(NextAction::Wait),
        }
    }
}

/// `amount` base units as a decimal coin amount, e.g. "25.5".
fn display_coin(amount: i64, decimals: u8) -> String {
    let scale = 10i128.pow(u32::from(decimals));
    let (whole, part) = (i128::from(amount) / scale, i128::from(amount) % scale);
    if part == 0 {
        return whole.to_string();
    }
    let digits = format!("{part:0width$}", width = usize::from(decimals));
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl TenantRecord for SaleRow {
    const WHAT: &'static str = "crypto sale";

    fn load(conn: &Connection, id: &str) -> Result<Option<SaleRow>, StoreError> {
        Ok(conn
            .prepare_cached(&format!("{SELECT_SALE} WHERE s.id = ?1"))?
            .query_row(params![id], SaleRow::from_row)
            .optional()?)
    }

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}

/// The crypto transaction object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CryptoSale {
    object: ObjectType,
    pub id: String,
    pub reference: String,
    #[serde(rename = "type")]
    kind: TransactionKind,
    pub status: CryptoStatus,
    /// The deposit's price at the rate of its confirmation (0 until then).
    pub amount: i64,
    pub fee: i64,
    /// What the merchant was credited: `amount − fee`.
    pub net_amount: i64,
    pub currency: Currency,
    pub description: String,
    pub crypto: CryptoDetails,
    pub livemode: bool,
    pub entity: Entity,
    pub idempotency_key: Option<String>,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
    #[serde(rename = "completed_at", serialize_with = "serialize_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextAction>,
}

/// The deposit.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CryptoDetails {
    pub asset: String,
    pub network: String,
    pub address: String,
    /// The custody provider's id for it.
    pub deposit_id: String,
    /// In the asset's base units, as a string (coins have up to 18 decimals).
    pub amount: String,
    pub decimals: u8,
    pub confirmations: u32,
    /// `confirming`, `confirmed`, `held` (compliance review) or `rejected`.
    pub state: DepositState,
    /// Payout currency per whole coin, at confirmation.
    pub rate: Option<RateObject>,
    pub test_reference: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deposits_are_priced_from_base_units_rounded_down() {
        let usd = Currency::from_code("USD").unwrap();
        // 25.5 USDT (6 decimals) at USD 0.99: USD 25.245 → 25.24.
        assert_eq!(price(25_500_000, 6, Ratio::new(99, 100).unwrap(), usd), Some(2_524));
        // 0.001 BTC (8 decimals) at USD 60,000: USD 60.00.
        assert_eq!(price(100_000, 8, Ratio::new(60_000, 1).unwrap(), usd), Some(6_000));
        assert_eq!(display_coin(25_500_000, 6), "25.5");
        assert_eq!(display_coin(100_000, 8), "0.001");
        assert_eq!(display_coin(3_000_000, 6), "3");
    }
}
