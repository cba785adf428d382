//! Sandbox top-ups: test money into a customer's test wallet, from the
//! sandbox funding account, in one write with the idempotency key. Topping
//! up registers the phone as a customer. This module owns the `top_ups`
//! table and the top-up object.

use rusqlite::{Connection, OptionalExtension, params};

use super::context::Context;
use super::idempotency::{self, KeyedRequest, Reply, StoredResponse};
use super::objects::TopUp;
use crate::domain::customers::{self, CustomerPhone};
use crate::ledger::{self, AccountKind, EntryKind, PLATFORM_OWNER, Posting};
use crate::store::{StoreError, TenantRecord};
use crate::values::error::ApiError;
use crate::values::mode::{Mode, Tenant};
use crate::values::money::Currency;
use crate::values::status::{InstantStatus, JoinedBy, ObjectType, TransactionKind};

/// A validated top-up request.
#[derive(Debug, Clone)]
pub struct NewTopUp {
    pub phone: String,
    pub amount_minor: u64,
    pub currency: Currency,
}

/// `POST /v1/wallets/top-ups`: adds sandbox money to a test wallet.
pub async fn create(ctx: &Context, request: KeyedRequest, new: NewTopUp) -> Result<Reply, ApiError> {
    if request.tenant.mode != Mode::Test {
        return Err(ApiError::TestModeOnly);
    }
    let id = TransactionKind::TopUp.new_id();
    let (tenant, wallets, row_id) = (request.tenant.clone(), ctx.wallets.clone(), id.clone());
    idempotency::write_once(&ctx.store, &ctx.clock, request, id, move |conn, now_ms| {
        let top_up = TopUpRow {
            id: row_id,
            tenant,
            phone: new.phone,
            amount_minor: i64::try_from(new.amount_minor).expect("amounts are validated to fit in i64"),
            currency: new.currency,
            created_at_ms: now_ms,
        };
        top_up.insert(conn)?;
        customers::register(conn, Mode::Test, &top_up.phone, JoinedBy::Wallet, now_ms)?;
        let postings = [
            Posting {
                account: wallets.account(Mode::Test, PLATFORM_OWNER, AccountKind::SandboxFunding, top_up.currency),
                amount_minor: top_up.amount_minor,
            },
            Posting {
                account: wallets.wallet(Mode::Test, &top_up.phone, top_up.currency),
                amount_minor: -top_up.amount_minor,
            },
        ];
        ledger::post(conn, Mode::Test, EntryKind::TopUp, &top_up.id, &postings, now_ms)?;
        Ok((StoredResponse::created(&top_up.object()), ()))
    })
    .await
    .map(|(reply, _)| reply)
}

/// A top-up as stored.
#[derive(Debug, Clone)]
pub struct TopUpRow {
    pub id: String,
    pub tenant: Tenant,
    phone: String,
    amount_minor: i64,
    currency: Currency,
    created_at_ms: i64,
}

impl TopUpRow {
    fn insert(&self, conn: &Connection) -> Result<(), StoreError> {
        conn.prepare_cached(
            "INSERT INTO top_ups (id, merchant_id, mode, customer_phone, amount, currency, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            self.id,
            self.tenant.merchant_id,
            self.tenant.mode,
            self.phone,
            self.amount_minor,
            self.currency,
            self.created_at_ms
        ])?;
        customers::index_transaction(
            conn,
            &self.id,
            &self.tenant,
            &self.phone,
            TransactionKind::TopUp,
            self.created_at_ms,
        )
    }

    pub fn load(conn: &Connection, id: &str) -> Result<Option<TopUpRow>, StoreError> {
        Ok(conn
            .prepare_cached(
                "SELECT id, merchant_id, mode, customer_phone, amount, currency, created_at FROM top_ups WHERE id = ?1",
            )?
            .query_row(params![id], |row| {
                Ok(TopUpRow {
                    id: row.get(0)?,
                    tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
                    phone: row.get(3)?,
                    amount_minor: row.get(4)?,
                    currency: row.get(5)?,
                    created_at_ms: row.get(6)?,
                })
            })
            .optional()?)
    }

    /// The top-up object.
    pub fn object(&self) -> TopUp {
        TopUp {
            object: ObjectType::TopUp,
            id: self.id.clone(),
            kind: TransactionKind::TopUp,
            status: InstantStatus::Completed,
            customer: CustomerPhone { phone: self.phone.clone() },
            amount: self.amount_minor,
            currency: self.currency,
            livemode: self.tenant.mode.is_live(),
            created_at_ms: self.created_at_ms,
        }
    }
}

impl TenantRecord for TopUpRow {
    const WHAT: &'static str = "top-up";

    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        TopUpRow::load(conn, id)
    }

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}
