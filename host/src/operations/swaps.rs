//! Swaps: a customer's money from one wallet into their other-currency
//! wallet, executing a locked FX quote (`domain::fx`) at most once, in one
//! write with its idempotency key: checks, ledger entry and the stored
//! answer. This module owns the `fx_swaps` table and the swap object.
//!
//! Ledger (entry `swap`): the customer pays `from` out of one wallet and
//! receives `to` in the other; the platform takes `from` into its position,
//! gives the mid value out of its position in `to`, and keeps the
//! difference as FX revenue.

use rusqlite::{Connection, OptionalExtension, params};

use super::context::Context;
use super::idempotency::{self, KeyedRequest, Reply, StoredResponse};
use super::objects::Swap;
use crate::domain::customers;
use crate::domain::customers::CustomerPhone;
use crate::domain::fx::{Amount, QuoteRow};
use crate::domain::wallets::{self, Wallets};
use crate::ledger::{self, AccountKind, EntryKind, PLATFORM_OWNER, Posting};
use crate::store::{StoreError, TenantRecord};
use crate::values::clock::rfc3339;
use crate::values::error::ApiError;
use crate::values::mode::Tenant;
use crate::values::status::{InstantStatus, ObjectType, TransactionKind};

/// A validated swap request.
#[derive(Debug, Clone)]
pub struct NewSwap {
    pub quote_id: String,
    pub phone: String,
}

/// `POST /v1/fx/swaps`: executes a quote against the customer's wallets.
pub async fn create(ctx: &Context, request: KeyedRequest, new: NewSwap) -> Result<Reply, ApiError> {
    let id = TransactionKind::Swap.new_id();
    let (tenant, wallets, swap_id) = (request.tenant.clone(), ctx.wallets.clone(), id.clone());
    idempotency::write_once(&ctx.store, &ctx.clock, request, id, move |conn, now_ms| {
        let swap = execute(conn, &wallets, &tenant, swap_id, &new, now_ms)?;
        Ok((StoredResponse::created(&swap.object()), ()))
    })
    .await
    .map(|(reply, _)| reply)
}

/// Checks the quote (the tenant's, not used, not expired) and the wallet,
/// then records the swap and its entry; refusals undo the whole write.
fn execute(
    conn: &Connection,
    wallets: &Wallets,
    tenant: &Tenant,
    id: String,
    new: &NewSwap,
    now_ms: i64,
) -> Result<SwapRow, StoreError> {
    let refuse = StoreError::rejected;
    let quote = crate::store::load_owned::<QuoteRow>(conn, tenant, &new.quote_id)?
        .ok_or_else(|| refuse(ApiError::NotFound { what: "quote" }))?;
    if let Some(swap_id) = swap_of_quote(conn, &quote.id)? {
        return Err(refuse(ApiError::QuoteAlreadyUsed { swap_id }));
    }
    if now_ms > quote.expires_at_ms {
        return Err(refuse(ApiError::QuoteExpired { expired_at: rfc3339(quote.expires_at_ms) }));
    }
    let mode = tenant.mode;
    let from_wallet = wallets.wallet(mode, &new.phone, quote.from);
    wallets::require_funds(
        conn,
        &from_wallet,
        u64::try_from(quote.from_amount_minor).expect("stored amounts are positive"),
    )?;
    let swap = SwapRow { id, tenant: tenant.clone(), phone: new.phone.clone(), created_at_ms: now_ms, quote };
    conn.prepare_cached(
        "INSERT INTO fx_swaps (id, merchant_id, mode, quote_id, customer_phone, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![swap.id, tenant.merchant_id, mode, swap.quote.id, swap.phone, now_ms])?;
    let q = &swap.quote;
    let platform = |kind, currency| wallets.account(mode, PLATFORM_OWNER, kind, currency);
    let postings: Vec<Posting> = [
        Posting { account: from_wallet, amount_minor: q.from_amount_minor },
        Posting { account: platform(AccountKind::FxPosition, q.from), amount_minor: -q.from_amount_minor },
        Posting { account: platform(AccountKind::FxPosition, q.to), amount_minor: q.mid_to_amount_minor },
        Posting { account: wallets.wallet(mode, &new.phone, q.to), amount_minor: -q.to_amount_minor },
        Posting {
            account: platform(AccountKind::FxRevenue, q.to),
            amount_minor: -(q.mid_to_amount_minor - q.to_amount_minor),
        },
    ]
    .into_iter()
    .filter(|p| p.amount_minor != 0)
    .collect();
    ledger::post(conn, mode, EntryKind::Swap, &swap.id, &postings, now_ms)?;
    customers::index_transaction(conn, &swap.id, tenant, &swap.phone, TransactionKind::Swap, now_ms)?;
    Ok(swap)
}

/// The swap that executed a quote, if one did (`quote_id` is unique).
fn swap_of_quote(conn: &Connection, quote_id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM fx_swaps WHERE quote_id = ?1")?
        .query_row(params![quote_id], |row| row.get(0))
        .optional()?)
}

/// A swap as stored, with its quote.
#[derive(Debug, Clone)]
pub struct SwapRow {
    pub id: String,
    pub tenant: Tenant,
    phone: String,
    created_at_ms: i64,
    quote: QuoteRow,
}

impl SwapRow {
    pub fn load(conn: &Connection, id: &str) -> Result<Option<SwapRow>, StoreError> {
        let row: Option<(Tenant, String, String, i64)> = conn
            .prepare_cached(
                "SELECT merchant_id, mode, quote_id, customer_phone, created_at FROM fx_swaps WHERE id = ?1",
            )?
            .query_row(params![id], |row| {
                Ok((Tenant { merchant_id: row.get(0)?, mode: row.get(1)? }, row.get(2)?, row.get(3)?, row.get(4)?))
            })
            .optional()?;
        let Some((tenant, quote_id, phone, created_at_ms)) = row else { return Ok(None) };
        let quote = QuoteRow::load(conn, &quote_id)?
            .ok_or_else(|| StoreError::Invariant(format!("quote {quote_id} vanished")))?;
        Ok(Some(SwapRow { id: id.to_string(), tenant, phone, created_at_ms, quote }))
    }

    /// The swap object, with its quote's amounts.
    pub fn object(&self) -> Swap {
        Swap {
            object: ObjectType::FxSwap,
            id: self.id.clone(),
            kind: TransactionKind::Swap,
            status: InstantStatus::Completed,
            quote_id: self.quote.id.clone(),
            customer: CustomerPhone { phone: self.phone.clone() },
            from: Amount { currency: self.quote.from, amount: self.quote.from_amount_minor },
            to: Amount { currency: self.quote.to, amount: self.quote.to_amount_minor },
            rate: self.quote.rate.into(),
            livemode: self.tenant.mode.is_live(),
            created_at_ms: self.created_at_ms,
        }
    }
}

impl TenantRecord for SwapRow {
    const WHAT: &'static str = "swap";

    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        SwapRow::load(conn, id)
    }

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}
