//! Transfers: a merchant sends money from its balance to any E.164 phone.
//! A customer already on Soxara is credited at once. Anyone else is sent a
//! one-time code through the mode's messenger while the money waits in
//! claim escrow (`claims`, woken by the transfer sweep as soon as the
//! transfer is made); money not claimed in time, or for a number the
//! messenger can never reach, goes back to the merchant. This module owns
//! the `transfers` table and the transfer object.
//!
//! Ledger, in the wallet entity: the merchant's pending balance pays
//! (`transfer`) into the recipient's wallet or claim escrow; escrow →
//! wallet (`transfer_claim`); escrow → merchant (`transfer_return`).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::context::Context;
use super::idempotency::{self, KeyedRequest, Reply, StoredResponse};
use super::objects::{ClaimWindow, Recipient, Transfer};
use crate::domain::customers;
use crate::domain::wallets::Wallets;
use crate::domain::webhooks::{self, EventType};
use crate::ledger::{self, Account, AccountKind, EntryKind, Posting};
use crate::store::{StoreError, TenantRecord};
use crate::values::clock::rfc3339;
use crate::values::entity::Entity;
use crate::values::error::ApiError;
use crate::values::mode::{Mode, Tenant};
use crate::values::money::Currency;
use crate::values::page::{Page, PageRequest};
use crate::values::status::{ObjectType, ReturnReason, TransactionKind, TransferStatus};

/// A validated transfer request.
#[derive(Debug, Clone)]
pub struct NewTransfer {
    pub phone: String,
    pub amount_minor: u64,
    pub currency: Currency,
    pub description: Option<String>,
}

/// `POST /v1/transfers`.
pub async fn create(ctx: &Context, request: KeyedRequest, new: NewTransfer) -> Result<Reply, ApiError> {
    let tenant = request.tenant.clone();
    let has_messenger = ctx.messengers.for_mode(tenant.mode).is_some();
    let claim_ttl_ms = i64::try_from(ctx.transfers.claim_ttl_ms).unwrap_or(i64::MAX);
    let id = TransactionKind::Transfer.new_id();
    let (row_id, wallets) = (id.clone(), ctx.wallets.clone());
    let (reply, made) = idempotency::write_once(&ctx.store, &ctx.clock, request, id, move |conn, now_ms| {
        let transfer = TransferRow::create(conn, &wallets, &tenant, row_id, new, has_messenger, claim_ttl_ms, now_ms)?;
        Ok((StoredResponse::created(&transfer.object(conn)?), transfer))
    })
    .await?;
    if made.is_some_and(|t| t.status == TransferStatus::PendingClaim) {
        // The sweep sends its claim code (`claims::send_due`) now.
        ctx.claim_codes_due.notify_one();
    }
    Ok(reply)
}

/// `GET /v1/transfers/{id}`.
pub async fn get(ctx: &Context, tenant: &Tenant, id: String) -> Result<Transfer, ApiError> {
    let tenant = tenant.clone();
    let found = ctx
        .store
        .read(move |conn| match crate::store::load_owned::<TransferRow>(conn, &tenant, &id)? {
            Some(transfer) => transfer.object(conn).map(Some),
            None => Ok(None),
        })
        .await?;
    found.ok_or(ApiError::NotFound { what: "transfer" })
}

/// `GET /v1/transfers`: newest first, a page after `starting_after`,
/// optionally only one status.
pub async fn list(
    ctx: &Context,
    tenant: &Tenant,
    page: PageRequest,
    status: Option<TransferStatus>,
) -> Result<Page<Transfer>, ApiError> {
    let tenant = tenant.clone();
    let page = ctx
        .store
        .read(move |conn| {
            let cursor: Option<i64> = match &page.starting_after {
                None => None,
                Some(id) => Some(
                    conn.prepare_cached(
                        "SELECT rowid FROM transfers WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3",
                    )?
                    .query_row(params![id, tenant.merchant_id, tenant.mode], |r| r.get(0))
                    .optional()?
                    // Well-formed, but no such transfer: like an unknown id in a path.
                    .ok_or(StoreError::rejected(ApiError::NotFound {
                        what: "transfer (the `starting_after` cursor)",
                    }))?,
                ),
            };
            let rows = conn
                .prepare_cached(&format!(
                    "{SELECT} WHERE merchant_id = ?1 AND mode = ?2 AND rowid < ?3 AND (?4 IS NULL OR status = ?4)
                     ORDER BY rowid DESC LIMIT ?5"
                ))?
                .query_map(
                    params![
                        tenant.merchant_id,
                        tenant.mode,
                        cursor.unwrap_or(i64::MAX),
                        status,
                        i64::try_from(page.limit + 1).unwrap_or(i64::MAX)
                    ],
                    TransferRow::from_row,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            let objects = rows.iter().map(|row| row.object(conn)).collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_fetched(objects, page.limit))
        })
        .await?;
    Ok(page)
}

/// The messenger can never reach the recipient: a transfer still waiting
/// goes back to its merchant.
pub fn give_up_on_recipient(conn: &Connection, transfer_id: &str, now_ms: i64) -> Result<(), StoreError> {
    match TransferRow::load(conn, transfer_id)?.filter(|t| t.status == TransferStatus::PendingClaim) {
        Some(transfer) => transfer.return_to_merchant(conn, ReturnReason::RecipientUnreachable, now_ms),
        None => Ok(()),
    }
}

/// Returns transfers whose claim period ended by `now_ms` (at most `limit`);
/// how many.
pub fn return_expired(conn: &Connection, now_ms: i64, limit: usize) -> Result<usize, StoreError> {
    let expired = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE status = ?1 AND claim_expires_at <= ?2 ORDER BY claim_expires_at LIMIT ?3"
        ))?
        .query_map(
            params![TransferStatus::PendingClaim, now_ms, i64::try_from(limit).unwrap_or(i64::MAX)],
            TransferRow::from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    for transfer in &expired {
        transfer.return_to_merchant(conn, ReturnReason::Expired, now_ms)?;
    }
    Ok(expired.len())
}

/// A transfer as stored.
#[derive(Debug, Clone)]
pub struct TransferRow {
    pub id: String,
    pub tenant: Tenant,
    pub phone: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub entity: Entity,
    description: Option<String>,
    pub status: TransferStatus,
    return_reason: Option<ReturnReason>,
    pub claim_expires_at_ms: Option<i64>,
    pub created_at_ms: i64,
    completed_at_ms: Option<i64>,
    returned_at_ms: Option<i64>,
}

const SELECT: &str = "SELECT id, merchant_id, mode, recipient_phone, amount, currency, entity, description, status, \
     return_reason, claim_expires_at, created_at, completed_at, returned_at FROM transfers";

impl TransferRow {
    /// Pays a transfer out of the merchant's pending balance held by the
    /// wallet entity (refusing when it holds too little): into the wallet
    /// of a customer already on Soxara (completed), else into claim escrow
    /// until `claim_ttl_ms` from now (a messenger must be there to send the
    /// code).
    #[allow(clippy::too_many_arguments)]
    fn create(
        conn: &Connection,
        wallets: &Wallets,
        tenant: &Tenant,
        id: String,
        new: NewTransfer,
        has_messenger: bool,
        claim_ttl_ms: i64,
        now_ms: i64,
    ) -> Result<TransferRow, StoreError> {
        let amount_minor = i64::try_from(new.amount_minor).expect("amounts are validated to fit in i64");
        let source = wallets.account(tenant.mode, &tenant.merchant_id, AccountKind::MerchantPending, new.currency);
        let available = ledger::balance(conn, &source)?
            .checked_neg()
            .ok_or_else(|| StoreError::Invariant(format!("balance of {} overflows", tenant.merchant_id)))?;
        if available < amount_minor {
            return Err(StoreError::rejected(ApiError::TransferBalanceInsufficient {
                currency: new.currency.code.into(),
                available,
                needed: new.amount_minor,
            }));
        }
        let registered = customers::is_registered(conn, tenant.mode, &new.phone)?;
        if !registered && !has_messenger {
            return Err(StoreError::rejected(ApiError::MessagingUnavailable { mode: tenant.mode }));
        }
        let transfer = TransferRow {
            id,
            tenant: tenant.clone(),
            phone: new.phone,
            amount_minor,
            currency: new.currency,
            entity: wallets.entity().clone(),
            description: new.description,
            status: if registered { TransferStatus::Completed } else { TransferStatus::PendingClaim },
            return_reason: None,
            claim_expires_at_ms: (!registered).then(|| now_ms.saturating_add(claim_ttl_ms)),
            created_at_ms: now_ms,
            completed_at_ms: registered.then_some(now_ms),
            returned_at_ms: None,
        };
        conn.prepare_cached(
            "INSERT INTO transfers (id, merchant_id, mode, recipient_phone, amount, currency, entity, description,
                                    status, claim_expires_at, created_at, completed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            transfer.id,
            tenant.merchant_id,
            tenant.mode,
            transfer.phone,
            amount_minor,
            transfer.currency,
            transfer.entity,
            transfer.description,
            transfer.status,
            transfer.claim_expires_at_ms,
            now_ms,
            transfer.completed_at_ms
        ])?;
        let destination = match registered {
            true => transfer.customer_account(AccountKind::CustomerWallet),
            false => transfer.customer_account(AccountKind::ClaimEscrow),
        };
        let postings =
            [Posting { account: source, amount_minor }, Posting { account: destination, amount_minor: -amount_minor }];
        ledger::post(conn, tenant.mode, EntryKind::Transfer, &transfer.id, &postings, now_ms)?;
        customers::index_transaction(conn, &transfer.id, tenant, &transfer.phone, TransactionKind::Transfer, now_ms)?;
        if registered {
            webhooks::emit(conn, tenant, EventType::TransferCompleted, &transfer.id, &transfer.object(conn)?, now_ms)?;
        }
        Ok(transfer)
    }

    pub fn load(conn: &Connection, id: &str) -> Result<Option<TransferRow>, StoreError> {
        Ok(conn
            .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
            .query_row(params![id], TransferRow::from_row)
            .optional()?)
    }

    /// Transfers to `phone` that can still be claimed at `now_ms`, oldest first.
    pub fn waiting_for(
        conn: &Connection,
        mode: Mode,
        phone: &str,
        now_ms: i64,
    ) -> Result<Vec<TransferRow>, StoreError> {
        Ok(conn
            .prepare_cached(&format!(
                "{SELECT} WHERE mode = ?1 AND recipient_phone = ?2 AND status = ?3 AND claim_expires_at > ?4
                 ORDER BY created_at, id"
            ))?
            .query_map(params![mode, phone, TransferStatus::PendingClaim, now_ms], TransferRow::from_row)?
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// Every transfer waiting for its recipient: (id, created at).
    pub fn pending(conn: &Connection) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(conn
            .prepare_cached("SELECT id, created_at FROM transfers WHERE status = ?1 ORDER BY claim_expires_at")?
            .query_map(params![TransferStatus::PendingClaim], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?)
    }

    fn from_row(row: &Row) -> rusqlite::Result<TransferRow> {
        Ok(TransferRow {
            id: row.get(0)?,
            tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
            phone: row.get(3)?,
            amount_minor: row.get(4)?,
            currency: row.get(5)?,
            entity: row.get(6)?,
            description: row.get(7)?,
            status: row.get(8)?,
            return_reason: row.get(9)?,
            claim_expires_at_ms: row.get(10)?,
            created_at_ms: row.get(11)?,
            completed_at_ms: row.get(12)?,
            returned_at_ms: row.get(13)?,
        })
    }

    /// An account of the recipient's, in the transfer's entity and currency.
    pub fn customer_account(&self, kind: AccountKind) -> Account {
        Account {
            mode: self.tenant.mode,
            entity: self.entity.clone(),
            owner: self.phone.clone(),
            kind,
            currency: self.currency,
        }
    }

    /// Moves a waiting transfer from escrow into the recipient's wallet.
    pub fn credit_claimed(&self, conn: &Connection, now_ms: i64) -> Result<(), StoreError> {
        let postings = [
            Posting { account: self.customer_account(AccountKind::ClaimEscrow), amount_minor: self.amount_minor },
            Posting { account: self.customer_account(AccountKind::CustomerWallet), amount_minor: -self.amount_minor },
        ];
        ledger::post(conn, self.tenant.mode, EntryKind::TransferClaim, &self.id, &postings, now_ms)?;
        conn.prepare_cached("UPDATE transfers SET status = ?2, completed_at = ?3 WHERE id = ?1")?.execute(params![
            self.id,
            TransferStatus::Completed,
            now_ms
        ])?;
        let claimed =
            TransferRow::load(conn, &self.id)?.ok_or_else(|| StoreError::Invariant("transfer vanished".into()))?;
        webhooks::emit(conn, &self.tenant, EventType::TransferCompleted, &self.id, &claimed.object(conn)?, now_ms)?;
        Ok(())
    }

    /// Sends a waiting transfer's money back to its merchant.
    fn return_to_merchant(&self, conn: &Connection, reason: ReturnReason, now_ms: i64) -> Result<(), StoreError> {
        let merchant =
            Account { owner: self.tenant.merchant_id.clone(), ..self.customer_account(AccountKind::MerchantPending) };
        let postings = [
            Posting { account: self.customer_account(AccountKind::ClaimEscrow), amount_minor: self.amount_minor },
            Posting { account: merchant, amount_minor: -self.amount_minor },
        ];
        ledger::post(conn, self.tenant.mode, EntryKind::TransferReturn, &self.id, &postings, now_ms)?;
        conn.prepare_cached("UPDATE transfers SET status = ?2, return_reason = ?3, returned_at = ?4 WHERE id = ?1")?
            .execute(params![self.id, TransferStatus::Returned, reason, now_ms])?;
        let returned =
            TransferRow::load(conn, &self.id)?.ok_or_else(|| StoreError::Invariant("transfer vanished".into()))?;
        webhooks::emit(conn, &self.tenant, EventType::TransferReturned, &self.id, &returned.object(conn)?, now_ms)?;
        Ok(())
    }

    /// The transfer object merchants see.
    pub fn object(&self, conn: &Connection) -> Result<Transfer, StoreError> {
        Ok(Transfer {
            object: ObjectType::Transfer,
            id: self.id.clone(),
            kind: TransactionKind::Transfer,
            status: self.status,
            amount: self.amount_minor,
            currency: self.currency,
            recipient: Recipient {
                phone: self.phone.clone(),
                registered: customers::is_registered(conn, self.tenant.mode, &self.phone)?,
            },
            description: self.description.clone(),
            claim: self.claim_expires_at_ms.map(|at| ClaimWindow { expires_at: rfc3339(at) }),
            return_reason: self.return_reason,
            entity: self.entity.clone(),
            livemode: self.tenant.mode.is_live(),
            created_at_ms: self.created_at_ms,
            completed_at_ms: self.completed_at_ms,
            returned_at_ms: self.returned_at_ms,
        })
    }
}

impl TenantRecord for TransferRow {
    const WHAT: &'static str = "transfer";

    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        TransferRow::load(conn, id)
    }

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ledger::AccountKind::{ClaimEscrow, CustomerWallet, MerchantPending};
    use crate::ledger::PLATFORM_OWNER;
    use crate::testing::{self, events, posted};
    use crate::values::status::JoinedBy;

    pub(crate) fn wallets() -> Wallets {
        Wallets::new(testing::entity())
    }

    /// Gives the merchant `amount` of USD pending in the wallet entity.
    pub(crate) fn fund_merchant(conn: &Connection, merchant_id: &str, amount_minor: i64) {
        let usd = Currency::from_code("USD").unwrap();
        let funding = wallets().account(Mode::Test, PLATFORM_OWNER, AccountKind::SandboxFunding, usd);
        let pending = wallets().account(Mode::Test, merchant_id, MerchantPending, usd);
        let postings =
            [Posting { account: funding, amount_minor }, Posting { account: pending, amount_minor: -amount_minor }];
        ledger::post(conn, Mode::Test, EntryKind::TopUp, &crate::values::ids::new_id("tup"), &postings, 0).unwrap();
    }

    /// A transfer of USD 10.00 to `phone`, made at 1 s with a claim period
    /// ending at 61 s.
    pub(crate) fn transfer(conn: &Connection, merchant_id: &str, phone: &str) -> Result<TransferRow, StoreError> {
        let new = NewTransfer {
            phone: phone.into(),
            amount_minor: 1_000,
            currency: Currency::from_code("USD").unwrap(),
            description: None,
        };
        let id = TransactionKind::Transfer.new_id();
        TransferRow::create(conn, &wallets(), &testing::tenant(merchant_id), id, new, true, 60_000, 1_000)
    }

    #[test]
    fn a_transfer_to_someone_not_on_soxara_waits_in_escrow_and_goes_back_when_its_time_runs_out() {
        let (conn, merchant) = testing::database_with_merchant();
        fund_merchant(&conn, &merchant, 1_500);
        let pending = transfer(&conn, &merchant, "+231770005555").unwrap();
        assert_eq!(pending.status, TransferStatus::PendingClaim);
        assert_eq!(posted(&conn, &pending.id, ClaimEscrow), -1_000);
        let refused = transfer(&conn, &merchant, "+231770005555").unwrap_err();
        assert!(refused.to_string().contains("refused"), "only 500 left: {refused}");

        assert_eq!(return_expired(&conn, 60_999, 10).unwrap(), 0, "not before the claim period ends");
        assert_eq!(return_expired(&conn, 61_000, 10).unwrap(), 1);
        let returned = TransferRow::load(&conn, &pending.id).unwrap().unwrap();
        assert_eq!((returned.status, returned.return_reason), (TransferStatus::Returned, Some(ReturnReason::Expired)));
        assert_eq!((posted(&conn, &pending.id, ClaimEscrow), posted(&conn, &pending.id, MerchantPending)), (0, 0));
        assert_eq!(events(&conn, &pending.id, EventType::TransferReturned), 1);
        assert_eq!(return_expired(&conn, 120_000, 10).unwrap(), 0, "returned once");
        crate::operations::verify(&conn).unwrap();
    }

    #[test]
    fn a_claimed_transfer_moves_from_escrow_into_the_recipients_wallet() {
        let (conn, merchant) = testing::database_with_merchant();
        fund_merchant(&conn, &merchant, 1_000);
        let pending = transfer(&conn, &merchant, "+231770005555").unwrap();
        pending.credit_claimed(&conn, 5_000).unwrap();
        let claimed = TransferRow::load(&conn, &pending.id).unwrap().unwrap();
        assert_eq!(claimed.status, TransferStatus::Completed);
        assert_eq!((posted(&conn, &pending.id, ClaimEscrow), posted(&conn, &pending.id, CustomerWallet)), (0, -1_000));
        assert_eq!(events(&conn, &pending.id, EventType::TransferCompleted), 1);
        give_up_on_recipient(&conn, &pending.id, 6_000).unwrap();
        assert_eq!(
            TransferRow::load(&conn, &pending.id).unwrap().unwrap().status,
            TransferStatus::Completed,
            "too late to return"
        );
        crate::operations::verify(&conn).unwrap();
    }

    #[test]
    fn a_customer_already_on_soxara_is_credited_at_once() {
        let (conn, merchant) = testing::database_with_merchant();
        fund_merchant(&conn, &merchant, 1_000);
        customers::register(&conn, Mode::Test, "+231770006666", JoinedBy::Wallet, 0).unwrap();
        let done = transfer(&conn, &merchant, "+231770006666").unwrap();
        assert_eq!((done.status, done.claim_expires_at_ms), (TransferStatus::Completed, None));
        assert_eq!(posted(&conn, &done.id, CustomerWallet), -1_000);
        assert_eq!(events(&conn, &done.id, EventType::TransferCompleted), 1);
    }
}
