//! Status checks: when each operation a rail left `processing` (a payment,
//! a refund, a settlement payout) is asked about next, and how many times
//! it was asked. The only module that touches `status_checks`; the
//! lifecycle (`lifecycle`) decides what to schedule, the worker
//! (`workers::status_checks`) asks the rails when checks are due.
//!
//! A row is made when an operation's first answer leaves it processing,
//! and its `next_check_at` cleared when the operation ends (or checks stop
//! for an operator to reconcile), keeping the count. Every change other
//! than the first only updates an existing row whose next check is set, so
//! a late check or callback can never revive checks of a finished
//! operation.

use rusqlite::{Connection, params};

use crate::store::StoreError;
use crate::values::status::TransactionKind;

/// When an operation still processing is checked next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// After the rail's first answer: the first check, at this time.
    First(i64),
    /// After status check number `checks_made`, which was due at
    /// `due_at_ms`: the next at `next_at_ms`, unless a callback moved it
    /// meanwhile.
    After { due_at_ms: i64, next_at_ms: i64, checks_made: i64 },
    /// A callback's prompt: no later than this, once the first answer is
    /// recorded (never while the first call may still be running).
    Prompt(i64),
}

impl Schedule {
    /// How many checks have been made, when this schedule follows one.
    fn checks_made(self) -> Option<i64> {
        match self {
            Schedule::After { checks_made, .. } => Some(checks_made),
            Schedule::First(_) | Schedule::Prompt(_) => None,
        }
    }
}

/// Sets when the processing operation `id` (of `kind`) is checked next.
pub fn schedule(conn: &Connection, kind: TransactionKind, id: &str, next: Schedule) -> Result<(), StoreError> {
    match next {
        Schedule::First(at_ms) => conn
            .prepare_cached(
                "INSERT INTO status_checks (operation_id, kind, next_check_at, checks) VALUES (?1, ?2, ?3, 0)
                 ON CONFLICT (operation_id) DO UPDATE SET next_check_at = excluded.next_check_at, checks = 0",
            )?
            .execute(params![id, kind, at_ms])?,
        Schedule::After { due_at_ms, next_at_ms, checks_made } => conn
            .prepare_cached(
                "UPDATE status_checks SET checks = ?4,
                 next_check_at = CASE WHEN next_check_at = ?2 THEN ?3 ELSE next_check_at END
                 WHERE operation_id = ?1 AND next_check_at IS NOT NULL",
            )?
            .execute(params![id, due_at_ms, next_at_ms, checks_made])?,
        Schedule::Prompt(at_ms) => conn
            .prepare_cached(
                "UPDATE status_checks SET next_check_at = MIN(next_check_at, ?2)
                 WHERE operation_id = ?1 AND next_check_at IS NOT NULL",
            )?
            .execute(params![id, at_ms])?,
    };
    Ok(())
}

/// Ends the checks of an operation that is now final (its count kept, and
/// brought up to date when `last` was a check).
pub fn finish(conn: &Connection, id: &str, last: Schedule) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE status_checks SET next_check_at = NULL, checks = COALESCE(?2, checks) WHERE operation_id = ?1",
    )?
    .execute(params![id, last.checks_made()])?;
    Ok(())
}

/// Stops checking an operation still processing: it stays so for an
/// operator to reconcile with the provider.
pub fn stop(conn: &Connection, id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE status_checks SET next_check_at = NULL WHERE operation_id = ?1")?
        .execute(params![id])?;
    Ok(())
}

/// A check that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCheck {
    pub kind: TransactionKind,
    pub operation_id: String,
    /// Checks made so far.
    pub checks_made: i64,
    /// When this check was due (to tell whether a callback moved it since).
    pub due_at_ms: i64,
}

/// The checks due at `now_ms`, oldest first, at most `limit`.
pub fn due(conn: &Connection, now_ms: i64, limit: usize) -> Result<Vec<DueCheck>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT kind, operation_id, checks, next_check_at FROM status_checks
             WHERE next_check_at IS NOT NULL AND next_check_at <= ?1 ORDER BY next_check_at LIMIT ?2",
        )?
        .query_map(params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
            Ok(DueCheck {
                kind: row.get(0)?,
                operation_id: row.get(1)?,
                checks_made: row.get(2)?,
                due_at_ms: row.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Checks made of an operation so far (0 if it was never checked).
pub fn checks_made(conn: &Connection, id: &str) -> Result<i64, StoreError> {
    use rusqlite::OptionalExtension;
    let made = conn
        .prepare_cached("SELECT checks FROM status_checks WHERE operation_id = ?1")?
        .query_row(params![id], |row| row.get(0))
        .optional()?;
    Ok(made.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        crate::testing::database()
    }

    fn due_ids(conn: &Connection, now_ms: i64) -> Vec<(String, i64)> {
        due(conn, now_ms, 10).unwrap().into_iter().map(|d| (d.operation_id, d.due_at_ms)).collect()
    }

    #[test]
    fn a_check_is_due_once_its_time_comes_and_moves_on_after_each_check() {
        let conn = conn();
        let kind = TransactionKind::Payment;
        schedule(&conn, kind, "pay_1", Schedule::First(1_000)).unwrap();
        assert!(due_ids(&conn, 999).is_empty());
        assert_eq!(due_ids(&conn, 1_000), vec![("pay_1".to_string(), 1_000)]);
        let after = Schedule::After { due_at_ms: 1_000, next_at_ms: 5_000, checks_made: 1 };
        schedule(&conn, kind, "pay_1", after).unwrap();
        assert!(due_ids(&conn, 4_999).is_empty());
        assert_eq!(checks_made(&conn, "pay_1").unwrap(), 1);
    }

    #[test]
    fn a_prompt_brings_the_next_check_forward_and_a_running_check_does_not_push_it_back() {
        let conn = conn();
        let kind = TransactionKind::Payment;
        // No prompt before the first answer is recorded.
        schedule(&conn, kind, "pay_1", Schedule::Prompt(10)).unwrap();
        assert!(due_ids(&conn, i64::MAX).is_empty());
        schedule(&conn, kind, "pay_1", Schedule::First(60_000)).unwrap();
        schedule(&conn, kind, "pay_1", Schedule::Prompt(2_000)).unwrap();
        schedule(&conn, kind, "pay_1", Schedule::Prompt(9_000)).unwrap();
        assert_eq!(due_ids(&conn, 2_000), vec![("pay_1".to_string(), 2_000)]);
        // A check that was due at 60 s finishes after the prompt moved it.
        let stale = Schedule::After { due_at_ms: 60_000, next_at_ms: 120_000, checks_made: 1 };
        schedule(&conn, kind, "pay_1", stale).unwrap();
        assert_eq!(due_ids(&conn, 2_000), vec![("pay_1".to_string(), 2_000)]);
    }

    #[test]
    fn a_finished_or_stopped_operation_is_never_checked_again() {
        let conn = conn();
        let kind = TransactionKind::Refund;
        schedule(&conn, kind, "ref_1", Schedule::First(1_000)).unwrap();
        finish(&conn, "ref_1", Schedule::After { due_at_ms: 1_000, next_at_ms: 2_000, checks_made: 3 }).unwrap();
        for late in [Schedule::Prompt(0), Schedule::After { due_at_ms: 1_000, next_at_ms: 2_000, checks_made: 4 }] {
            schedule(&conn, kind, "ref_1", late).unwrap();
        }
        assert!(due_ids(&conn, i64::MAX).is_empty());
        assert_eq!(checks_made(&conn, "ref_1").unwrap(), 3);
        schedule(&conn, kind, "ref_2", Schedule::First(1_000)).unwrap();
        stop(&conn, "ref_2").unwrap();
        assert!(due_ids(&conn, i64::MAX).is_empty());
    }
}
