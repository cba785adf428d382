//! Settlements: one payout of what the platform owes a merchant in one
//! mode, entity and currency, through the rail bound to the method of the
//! merchant's payout account, with the settlement id as the rail's
//! idempotency key. A settlement is a [`RailOperation`] made by a batch
//! (`settlement_batches`), without an idempotency key: it is claimed with
//! its ledger entry and its first status check in one write, so a crash
//! before the rail's answer is recorded is settled by the checks and never
//! paid twice. This module owns the `settlements` table, the settlement
//! object and its report.
//!
//! Ledger (transaction = the settlement id):
//! - `settlement` at the claim: `merchant_pending` +A, `settlement_in_transit` −A;
//! - `settlement_paid`: `settlement_in_transit` +A, the rail's clearing −A
//!   (the rail paid out money it held for us);
//! - `settlement_return` when the payout fails: `settlement_in_transit` +A,
//!   `merchant_pending` −A (owed again, settled by a later batch).

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::checks::{self, Schedule};
use super::idempotency::StoredResponse;
use super::lifecycle::{FailureReason, RailAnswer, RailOperation, Report};
use crate::domain::webhooks::{self, EventType};
use crate::ledger::{self, Account, AccountKind, EntryKind, Posting, Settleable};
use crate::plugins::{LoadedRail, Money, PayoutRequest, PluginError, TransactionStatus};
use crate::store::{StoreError, TenantRecord};
use crate::values::clock::{serialize_rfc3339, serialize_rfc3339_opt};
use crate::values::entity::Entity;
use crate::values::method::Method;
use crate::values::mode::Tenant;
use crate::values::money::Currency;
use crate::values::status::{SettlementStatus, TransactionKind};

/// Settlements a listing shows at most.
pub const LIST_LIMIT: i64 = 100;

/// Where a settlement is paid: a payout account's method and destination,
/// and the rail bound to that method now.
#[derive(Debug, Clone)]
pub struct Payout {
    pub method: Method,
    pub destination: String,
    pub rail: String,
}

/// A settlement as stored.
#[derive(Debug, Clone)]
pub struct SettlementRow {
    pub id: String,
    pub tenant: Tenant,
    pub entity: Entity,
    pub currency: Currency,
    pub amount_minor: i64,
    payout: Payout,
    cutoff_ms: i64,
    pub status: SettlementStatus,
    provider_reference: Option<String>,
    failure: Option<FailureReason>,
    created_at_ms: i64,
    completed_at_ms: Option<i64>,
}

const SELECT: &str = "SELECT id, merchant_id, mode, entity, currency, amount, method, destination, rail, cutoff_at, \
     status, provider_reference, failure_code, failure_message, created_at, completed_at FROM settlements";

impl SettlementRow {
    /// Claims what `owed` holds now at `cutoff_ms` (read again here: another
    /// batch may have run): inserts the settlement, moves the money in
    /// transit and schedules its first status check at `first_check_at_ms`.
    /// `None` when nothing is left to settle.
    pub fn claim(
        conn: &Connection,
        owed: &Settleable,
        payout: Payout,
        cutoff_ms: i64,
        now_ms: i64,
        first_check_at_ms: i64,
    ) -> Result<Option<SettlementRow>, StoreError> {
        let now = ledger::settleable(conn, cutoff_ms, Some(&owed.tenant))?;
        let amount_minor =
            now.iter().find(|o| o.entity == owed.entity && o.currency == owed.currency).map_or(0, |o| o.amount_minor);
        if amount_minor <= 0 {
            return Ok(None);
        }
        let row = SettlementRow {
            id: TransactionKind::Settlement.new_id(),
            tenant: owed.tenant.clone(),
            entity: owed.entity.clone(),
            currency: owed.currency,
            amount_minor,
            payout,
            cutoff_ms,
            status: SettlementStatus::Processing,
            provider_reference: None,
            failure: None,
            created_at_ms: now_ms,
            completed_at_ms: None,
        };
        conn.prepare_cached(
            "INSERT INTO settlements (id, merchant_id, mode, entity, currency, amount, method, destination, rail,
             cutoff_at, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            row.id,
            row.tenant.merchant_id,
            row.tenant.mode,
            row.entity,
            row.currency,
            row.amount_minor,
            row.payout.method,
            row.payout.destination,
            row.payout.rail,
            row.cutoff_ms,
            row.status,
            now_ms
        ])?;
        let postings = [
            Posting { account: row.merchant_account(AccountKind::MerchantPending), amount_minor },
            Posting { account: row.merchant_account(AccountKind::SettlementInTransit), amount_minor: -amount_minor },
        ];
        ledger::post(conn, row.tenant.mode, EntryKind::Settlement, &row.id, &postings, now_ms)?;
        checks::schedule(conn, TransactionKind::Settlement, &row.id, Schedule::First(first_check_at_ms))?;
        Ok(Some(row))
    }

    pub fn load(conn: &Connection, id: &str) -> Result<Option<SettlementRow>, StoreError> {
        Ok(conn
            .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
            .query_row(params![id], SettlementRow::from_row)
            .optional()?)
    }

    fn from_row(row: &Row) -> rusqlite::Result<SettlementRow> {
        Ok(SettlementRow {
            id: row.get(0)?,
            tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
            entity: row.get(3)?,
            currency: row.get(4)?,
            amount_minor: row.get(5)?,
            payout: Payout { method: row.get(6)?, destination: row.get(7)?, rail: row.get(8)? },
            cutoff_ms: row.get(9)?,
            status: row.get(10)?,
            provider_reference: row.get(11)?,
            failure: FailureReason::from_columns(row.get(12)?, row.get(13)?),
            created_at_ms: row.get(14)?,
            completed_at_ms: row.get(15)?,
        })
    }

    /// A tenant's newest settlements (at most `LIST_LIMIT`).
    pub fn list(conn: &Connection, tenant: &Tenant) -> Result<Vec<Settlement>, StoreError> {
        let rows = conn
            .prepare_cached(&format!(
                "{SELECT} WHERE merchant_id = ?1 AND mode = ?2 ORDER BY created_at DESC, id DESC LIMIT ?3"
            ))?
            .query_map(params![tenant.merchant_id, tenant.mode, LIST_LIMIT], SettlementRow::from_row)?
            .map(|row| row.map(|row| row.object()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The settlement with its report: every movement of the merchant's
    /// pending balance it covered (after the cutoff of the previous
    /// settlement that did not fail, up to its own: money a failed payout
    /// returned is paid, and listed, by the next one).
    pub fn report(&self, conn: &Connection) -> Result<SettlementReport, StoreError> {
        let previous_cutoff_ms: i64 = conn
            .prepare_cached(
                "SELECT COALESCE(MAX(cutoff_at), 0) FROM settlements
                 WHERE merchant_id = ?1 AND mode = ?2 AND entity = ?3 AND currency = ?4 AND cutoff_at < ?5
                   AND status <> ?6",
            )?
            .query_row(
                params![
                    self.tenant.merchant_id,
                    self.tenant.mode,
                    self.entity,
                    self.currency,
                    self.cutoff_ms,
                    SettlementStatus::Failed
                ],
                |row| row.get(0),
            )?;
        let lines = ledger::pending_movements(
            conn,
            &self.tenant,
            &self.entity,
            self.currency,
            previous_cutoff_ms,
            self.cutoff_ms,
        )?
        .into_iter()
        .map(|m| ReportLine {
            transaction_id: m.transaction_id,
            kind: m.kind,
            amount: m.amount_minor,
            created_at_ms: m.created_at_ms,
        })
        .collect();
        Ok(SettlementReport { settlement: self.object(), lines })
    }

    fn merchant_account(&self, kind: AccountKind) -> Account {
        Account {
            mode: self.tenant.mode,
            entity: self.entity.clone(),
            owner: self.tenant.merchant_id.clone(),
            kind,
            currency: self.currency,
        }
    }

    /// The settlement object merchants see.
    pub fn object(&self) -> Settlement {
        Settlement {
            object: "settlement",
            id: self.id.clone(),
            livemode: self.tenant.mode.is_live(),
            entity: self.entity.clone(),
            currency: self.currency,
            amount: self.amount_minor,
            payout: PayoutTo { method: self.payout.method, destination: self.payout.destination.clone() },
            status: self.status,
            provider_reference: self.provider_reference.clone(),
            cutoff_at_ms: self.cutoff_ms,
            created_at_ms: self.created_at_ms,
            completed_at_ms: self.completed_at_ms,
            failure: self.failure.clone(),
        }
    }
}

impl TenantRecord for SettlementRow {
    const WHAT: &'static str = "settlement";

    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        SettlementRow::load(conn, id)
    }

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}

impl RailOperation for SettlementRow {
    const KIND: TransactionKind = TransactionKind::Settlement;
    const BUSY_MESSAGE: &'static str = "the gateway had no free plugin instance";
    const CHECKED_FROM_CLAIM: bool = true;
    type Request = PayoutRequest;

    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        SettlementRow::load(conn, id)
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn rail(&self) -> Option<&str> {
        Some(&self.payout.rail)
    }

    fn is_processing(&self) -> bool {
        self.status == SettlementStatus::Processing
    }

    fn provider_reference(&self) -> Option<&str> {
        self.provider_reference.as_deref()
    }

    fn created_at_ms(&self) -> i64 {
        self.created_at_ms
    }

    fn rail_request(&self) -> Result<PayoutRequest, String> {
        Ok(PayoutRequest {
            payout_id: self.id.clone(),
            money: Money {
                amount: u64::try_from(self.amount_minor).map_err(|_| "a negative amount".to_string())?,
                currency: self.currency.code.to_string(),
            },
            destination: self.payout.destination.clone(),
            created_at_ms: u64::try_from(self.created_at_ms).unwrap_or(0),
        })
    }

    fn call(rail: &LoadedRail, request: &PayoutRequest) -> RailAnswer {
        rail.payout(request)
    }

    fn ask(rail: &LoadedRail, request: &PayoutRequest, provider_reference: Option<&str>) -> RailAnswer {
        rail.payout_status(request, provider_reference)
    }

    fn apply(&mut self, conn: &Connection, report: &Report, now_ms: i64) -> Result<(), StoreError> {
        if let Some(reference) = &report.provider_reference {
            self.provider_reference = Some(reference.clone());
        }
        let (status, entry, other, event) = match report.status {
            TransactionStatus::Processing => {
                conn.prepare_cached("UPDATE settlements SET provider_reference = ?2 WHERE id = ?1")?
                    .execute(params![self.id, self.provider_reference])?;
                return Ok(());
            }
            TransactionStatus::Completed | TransactionStatus::Refunded => (
                SettlementStatus::Paid,
                EntryKind::SettlementPaid,
                Account {
                    owner: ledger::rail_owner(&self.payout.rail),
                    ..self.merchant_account(AccountKind::RailClearing)
                },
                EventType::SettlementPaid,
            ),
            TransactionStatus::Failed | TransactionStatus::Cancelled => (
                SettlementStatus::Failed,
                EntryKind::SettlementReturn,
                self.merchant_account(AccountKind::MerchantPending),
                EventType::SettlementFailed,
            ),
        };
        self.status = status;
        self.failure = report.failure.clone();
        self.completed_at_ms = Some(now_ms);
        conn.prepare_cached(
            "UPDATE settlements SET status = ?2, provider_reference = ?3, failure_code = ?4, failure_message = ?5,
             completed_at = ?6 WHERE id = ?1",
        )?
        .execute(params![
            self.id,
            self.status,
            self.provider_reference,
            self.failure.as_ref().map(|f| &f.code),
            self.failure.as_ref().and_then(|f| f.message.as_ref()),
            now_ms
        ])?;
        let postings = [
            Posting {
                account: self.merchant_account(AccountKind::SettlementInTransit),
                amount_minor: self.amount_minor,
            },
            Posting { account: other, amount_minor: -self.amount_minor },
        ];
        ledger::post(conn, self.tenant.mode, entry, &self.id, &postings, now_ms)?;
        webhooks::emit(conn, &self.tenant, event, &self.id, &self.object(), now_ms).map(drop)
    }

    fn response(
        &self,
        _conn: &Connection,
        _unanswered: Option<&PluginError>,
    ) -> Result<Option<StoredResponse>, StoreError> {
        Ok(None)
    }
}

/// The settlement object.
#[derive(Debug, Clone, Serialize)]
pub struct Settlement {
    object: &'static str,
    pub id: String,
    pub livemode: bool,
    pub entity: Entity,
    pub currency: Currency,
    pub amount: i64,
    pub payout: PayoutTo,
    pub status: SettlementStatus,
    pub provider_reference: Option<String>,
    #[serde(rename = "cutoff_at", serialize_with = "serialize_rfc3339")]
    pub cutoff_at_ms: i64,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    pub created_at_ms: i64,
    #[serde(rename = "completed_at", serialize_with = "serialize_rfc3339_opt")]
    pub completed_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureReason>,
}

/// Where a settlement was paid.
#[derive(Debug, Clone, Serialize)]
pub struct PayoutTo {
    pub method: Method,
    pub destination: String,
}

/// A settlement with the movements it covered (`GET /v1/settlements/{id}`).
#[derive(Debug, Clone, Serialize)]
pub struct SettlementReport {
    #[serde(flatten)]
    pub settlement: Settlement,
    pub lines: Vec<ReportLine>,
}

/// One movement of the merchant's pending balance a settlement covered.
#[derive(Debug, Clone, Serialize)]
pub struct ReportLine {
    pub transaction_id: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    pub amount: i64,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    pub created_at_ms: i64,
}
