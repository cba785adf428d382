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

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::checks::{self, Schedule};
use super::context::Context;
use super::lifecycle::{self, FailureReason, RailAnswer, RailOperation, RailWork};
use super::objects::{PayoutTo, ReportLine, Settlement, SettlementReport};
use crate::domain::webhooks::{self, EventType};
use crate::ledger::{self, Account, AccountKind, EntryKind, Posting, Settleable};
use crate::plugins::{LoadedRail, PayoutRequest, RailOutcome, TransactionStatus};
use crate::store::{StoreError, TenantRecord};
use crate::values::entity::Entity;
use crate::values::method::Method;
use crate::values::mode::{Mode, Tenant};
use crate::values::money::Currency;
use crate::values::status::{ObjectType, SettlementStatus, TransactionKind};

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
    pub work: RailWork<SettlementStatus>,
    pub entity: Entity,
    pub currency: Currency,
    pub amount_minor: i64,
    payout: Payout,
    cutoff_ms: i64,
}

const SELECT: &str = "SELECT id, merchant_id, mode, status, provider_reference, failure_code, failure_message, \
     created_at, completed_at, entity, currency, amount, method, destination, rail, cutoff_at FROM settlements";

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
            work: RailWork::new(TransactionKind::Settlement, owed.tenant.clone(), SettlementStatus::Processing, now_ms),
            entity: owed.entity.clone(),
            currency: owed.currency,
            amount_minor,
            payout,
            cutoff_ms,
        };
        let work = &row.work;
        conn.prepare_cached(
            "INSERT INTO settlements (id, merchant_id, mode, entity, currency, amount, method, destination, rail,
             cutoff_at, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            work.id,
            work.tenant.merchant_id,
            work.tenant.mode,
            row.entity,
            row.currency,
            row.amount_minor,
            row.payout.method,
            row.payout.destination,
            row.payout.rail,
            row.cutoff_ms,
            work.status,
            now_ms
        ])?;
        let postings = [
            Posting { account: row.merchant_account(AccountKind::MerchantPending), amount_minor },
            Posting { account: row.merchant_account(AccountKind::SettlementInTransit), amount_minor: -amount_minor },
        ];
        ledger::post(conn, work.tenant.mode, EntryKind::Settlement, &work.id, &postings, now_ms)?;
        checks::schedule(conn, TransactionKind::Settlement, &work.id, Schedule::First(first_check_at_ms))?;
        Ok(Some(row))
    }

    fn from_row(row: &Row) -> rusqlite::Result<SettlementRow> {
        Ok(SettlementRow {
            work: RailWork {
                id: row.get(0)?,
                tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
                status: row.get(3)?,
                provider_reference: row.get(4)?,
                failure: FailureReason::from_columns(row.get(5)?, row.get(6)?),
                created_at_ms: row.get(7)?,
                completed_at_ms: row.get(8)?,
            },
            entity: row.get(9)?,
            currency: row.get(10)?,
            amount_minor: row.get(11)?,
            payout: Payout { method: row.get(12)?, destination: row.get(13)?, rail: row.get(14)? },
            cutoff_ms: row.get(15)?,
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
        let tenant = &self.work.tenant;
        let previous_cutoff_ms: i64 = conn
            .prepare_cached(
                "SELECT COALESCE(MAX(cutoff_at), 0) FROM settlements
                 WHERE merchant_id = ?1 AND mode = ?2 AND entity = ?3 AND currency = ?4 AND cutoff_at < ?5
                   AND status <> ?6",
            )?
            .query_row(
                params![
                    tenant.merchant_id,
                    tenant.mode,
                    self.entity,
                    self.currency,
                    self.cutoff_ms,
                    SettlementStatus::Failed
                ],
                |row| row.get(0),
            )?;
        let lines =
            ledger::pending_movements(conn, tenant, &self.entity, self.currency, previous_cutoff_ms, self.cutoff_ms)?
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
        let tenant = &self.work.tenant;
        Account {
            mode: tenant.mode,
            entity: self.entity.clone(),
            owner: tenant.merchant_id.clone(),
            kind,
            currency: self.currency,
        }
    }

    /// The settlement object merchants see.
    pub fn object(&self) -> Settlement {
        let work = &self.work;
        Settlement {
            object: ObjectType::Settlement,
            id: work.id.clone(),
            livemode: work.tenant.mode.is_live(),
            entity: self.entity.clone(),
            currency: self.currency,
            amount: self.amount_minor,
            payout: PayoutTo { method: self.payout.method, destination: self.payout.destination.clone() },
            status: work.status,
            provider_reference: work.provider_reference.clone(),
            cutoff_at_ms: self.cutoff_ms,
            created_at_ms: work.created_at_ms,
            completed_at_ms: work.completed_at_ms,
            failure: work.failure.clone(),
        }
    }
}

impl TenantRecord for SettlementRow {
    const WHAT: &'static str = "settlement";

    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        Ok(conn
            .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
            .query_row(params![id], SettlementRow::from_row)
            .optional()?)
    }

    fn tenant(&self) -> &Tenant {
        &self.work.tenant
    }
}

impl RailOperation for SettlementRow {
    const KIND: TransactionKind = TransactionKind::Settlement;
    const BUSY_MESSAGE: &'static str = "the gateway had no free plugin instance";
    const CHECKED_FROM_CLAIM: bool = true;
    type Status = SettlementStatus;
    const PROCESSING: SettlementStatus = SettlementStatus::Processing;
    type Request = PayoutRequest;
    type Plugin = LoadedRail;
    type Outcome = RailOutcome;

    fn plugin(ctx: &Context, name: &str, mode: Mode) -> Option<Arc<LoadedRail>> {
        ctx.rails.rail_named(name, mode)
    }

    fn work(&self) -> &RailWork<SettlementStatus> {
        &self.work
    }

    fn work_mut(&mut self) -> &mut RailWork<SettlementStatus> {
        &mut self.work
    }

    fn rail(&self) -> Option<&str> {
        Some(&self.payout.rail)
    }

    fn rail_request(&self) -> Result<PayoutRequest, String> {
        Ok(PayoutRequest {
            payout_id: self.work.id.clone(),
            money: lifecycle::rail_money(self.amount_minor, self.currency)?,
            destination: self.payout.destination.clone(),
            created_at_ms: self.work.created_at_for_rail(),
        })
    }

    fn call(rail: &LoadedRail, request: &PayoutRequest) -> RailAnswer {
        rail.payout(request)
    }

    fn ask(rail: &LoadedRail, request: &PayoutRequest, provider_reference: Option<&str>) -> RailAnswer {
        rail.payout_status(request, provider_reference)
    }

    fn final_status(reported: TransactionStatus) -> Option<SettlementStatus> {
        match reported {
            TransactionStatus::Processing => None,
            TransactionStatus::Completed | TransactionStatus::Refunded => Some(SettlementStatus::Paid),
            TransactionStatus::Failed | TransactionStatus::Cancelled => Some(SettlementStatus::Failed),
        }
    }

    /// Paid: the money left the rail's clearing; failed: it is owed again.
    fn settle(&mut self, conn: &Connection, now_ms: i64) -> Result<(), StoreError> {
        let (entry, other, event) = match self.work.status {
            SettlementStatus::Paid => (
                EntryKind::SettlementPaid,
                Account {
                    owner: ledger::rail_owner(&self.payout.rail),
                    ..self.merchant_account(AccountKind::RailClearing)
                },
                EventType::SettlementPaid,
            ),
            SettlementStatus::Failed | SettlementStatus::Processing => (
                EntryKind::SettlementReturn,
                self.merchant_account(AccountKind::MerchantPending),
                EventType::SettlementFailed,
            ),
        };
        let postings = [
            Posting {
                account: self.merchant_account(AccountKind::SettlementInTransit),
                amount_minor: self.amount_minor,
            },
            Posting { account: other, amount_minor: -self.amount_minor },
        ];
        let (tenant, id) = (&self.work.tenant, &self.work.id);
        ledger::post(conn, tenant.mode, entry, id, &postings, now_ms)?;
        webhooks::emit(conn, tenant, event, id, &self.object(), now_ms).map(drop)
    }

    fn save(&self, conn: &Connection) -> Result<(), StoreError> {
        let work = &self.work;
        conn.prepare_cached(
            "UPDATE settlements SET status = ?2, provider_reference = ?3, failure_code = ?4, failure_message = ?5,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::AccountKind::{MerchantPending, RailClearing, SettlementInTransit};
    use crate::operations::checks;
    use crate::operations::lifecycle::{ReportApplied, apply_later_report, record_first_answer};
    use crate::operations::payments::tests::completed;
    use crate::plugins::Failure;
    use crate::testing::{self, events, outcome, posted};

    fn payout() -> Payout {
        Payout { method: Method::MtnMomo, destination: "+231770009876".into(), rail: "simulator".into() }
    }

    /// The merchant's one settleable balance at `cutoff_ms`.
    fn owed(conn: &Connection, merchant_id: &str, cutoff_ms: i64) -> Settleable {
        let mut owed = ledger::settleable(conn, cutoff_ms, Some(&testing::tenant(merchant_id))).unwrap();
        assert_eq!(owed.len(), 1, "{owed:?}");
        owed.remove(0)
    }

    #[test]
    fn a_claim_moves_what_is_owed_in_transit_and_is_checked_even_before_the_rail_answers() {
        let (conn, merchant) = testing::database_with_merchant();
        completed(&conn, &merchant, 1_250);
        let owed = owed(&conn, &merchant, 2_000);
        assert_eq!(owed.amount_minor, 1_238);
        let row = SettlementRow::claim(&conn, &owed, payout(), 2_000, 3_000, 8_000).unwrap().unwrap();
        let id = row.work.id.as_str();
        assert_eq!((posted(&conn, id, MerchantPending), posted(&conn, id, SettlementInTransit)), (1_238, -1_238));
        assert_eq!(
            checks::due(&conn, 8_000, 10).unwrap()[0].operation_id,
            id,
            "a crash before the answer is settled by checks"
        );
        assert!(
            SettlementRow::claim(&conn, &owed, payout(), 2_000, 3_500, 8_500).unwrap().is_none(),
            "nothing is settled twice"
        );
        crate::operations::verify(&conn).unwrap();
    }

    #[test]
    fn a_paid_payout_leaves_the_rail_and_ends_its_checks() {
        let (conn, merchant) = testing::database_with_merchant();
        completed(&conn, &merchant, 1_250);
        let row = SettlementRow::claim(&conn, &owed(&conn, &merchant, 2_000), payout(), 2_000, 3_000, 8_000)
            .unwrap()
            .unwrap();
        let id = row.work.id.clone();
        assert_eq!(
            record_first_answer::<SettlementRow>(
                &conn,
                &id,
                Ok(Ok(outcome(TransactionStatus::Processing))),
                4_000,
                9_000
            )
            .unwrap(),
            None
        );
        let after = checks::Schedule::After { due_at_ms: 9_000, next_at_ms: 24_000, checks_made: 1 };
        let applied = apply_later_report::<SettlementRow>(
            &conn,
            &id,
            "simulator",
            outcome(TransactionStatus::Completed),
            9_500,
            after,
        );
        assert_eq!(applied.unwrap(), ReportApplied::Applied(TransactionStatus::Completed));
        let paid = SettlementRow::load(&conn, &id).unwrap().unwrap();
        assert_eq!(paid.work.status, SettlementStatus::Paid);
        assert_eq!((posted(&conn, &id, SettlementInTransit), posted(&conn, &id, RailClearing)), (0, -1_238));
        assert_eq!(events(&conn, &id, EventType::SettlementPaid), 1);
        assert!(checks::due(&conn, i64::MAX, 10).unwrap().is_empty());
        crate::operations::verify(&conn).unwrap();
    }

    #[test]
    fn a_failed_payout_makes_the_money_owed_again() {
        let (conn, merchant) = testing::database_with_merchant();
        completed(&conn, &merchant, 1_250);
        let row = SettlementRow::claim(&conn, &owed(&conn, &merchant, 2_000), payout(), 2_000, 3_000, 8_000)
            .unwrap()
            .unwrap();
        let failed = Failure { code: "PAYOUT_FAILED".into(), message: "no".into(), retryable: false };
        record_first_answer::<SettlementRow>(&conn, &row.work.id, Ok(Err(failed)), 4_000, 9_000).unwrap();
        let returned = SettlementRow::load(&conn, &row.work.id).unwrap().unwrap();
        assert_eq!(returned.work.status, SettlementStatus::Failed);
        assert_eq!(posted(&conn, &row.work.id, MerchantPending), 0, "out and back");
        assert_eq!(events(&conn, &row.work.id, EventType::SettlementFailed), 1);
        assert!(checks::due(&conn, i64::MAX, 10).unwrap().is_empty(), "the claim's check ends with it");
        assert_eq!(owed(&conn, &merchant, 5_000).amount_minor, 1_238, "settleable by the next batch");
        crate::operations::verify(&conn).unwrap();
    }
}
