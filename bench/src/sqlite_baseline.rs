//! The storage floor: the rows a gateway run wrote, inserted again into a
//! fresh database with plain rusqlite on one thread, with the gateway's own
//! durability settings (WAL, `synchronous=FULL`). Each commit takes as many
//! payments as the load had connections: the most the gateway's group
//! commit could gather from them. Each row is inserted once, in its final
//! state (the gateway inserts, then updates the payment and key rows).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rusqlite::types::Value;

pub struct Replay {
    pub payments: u64,
    pub payments_per_commit: usize,
    pub rows: u64,
    pub elapsed: Duration,
}

impl Replay {
    pub fn payments_per_second(&self) -> f64 {
        self.payments as f64 / self.elapsed.as_secs_f64()
    }
}

/// Copies the schema of `source` to a new database in `scratch` and times
/// inserting every row of `source` again.
pub fn replay(source: &Path, scratch: &Path, payments_per_commit: usize) -> Result<Replay> {
    let payments_per_commit = payments_per_commit.max(1);
    let from = rusqlite::Connection::open(source)?;
    let schema: Vec<String> = query_strings(
        &from,
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
    )?;
    let tables = query_strings(
        &from,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
    )?;
    let mut rows: Vec<(String, Vec<Vec<Value>>)> = Vec::new();
    for table in &tables {
        let mut stmt = from.prepare(&format!("SELECT * FROM \"{table}\""))?;
        let columns = stmt.column_count();
        let table_rows = stmt
            .query_map([], |row| (0..columns).map(|i| row.get::<_, Value>(i)).collect::<rusqlite::Result<Vec<_>>>())?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.push((table.clone(), table_rows));
    }
    let payments: u64 = from.query_row("SELECT COUNT(*) FROM payments", [], |r| r.get::<_, i64>(0))?.try_into()?;
    let total_rows: u64 = rows.iter().map(|(_, r)| r.len() as u64).sum();

    let mut to = rusqlite::Connection::open(scratch.join("replay.db"))?;
    to.pragma_update(None, "journal_mode", "WAL")?;
    to.pragma_update(None, "synchronous", "FULL")?;
    to.pragma_update(None, "foreign_keys", "ON")?;
    to.pragma_update(None, "temp_store", "MEMORY")?;
    for sql in &schema {
        to.execute_batch(sql).with_context(|| format!("replaying the schema: {sql}"))?;
    }

    // Each commit takes the same share of every table: payments_per_commit payments' rows.
    let commits = usize::try_from(payments)?.div_ceil(payments_per_commit).max(1);
    let started = Instant::now();
    for commit in 0..commits {
        let tx = to.transaction()?;
        for (table, table_rows) in &rows {
            // Tables with fewer rows than payments (merchants, accounts) go in whole first.
            let per_commit =
                if (table_rows.len() as u64) < payments { usize::MAX } else { table_rows.len().div_ceil(commits) };
            let start = commit.saturating_mul(per_commit).min(table_rows.len());
            let end = start.saturating_add(per_commit).min(table_rows.len());
            let Some(first) = table_rows.get(start) else { continue };
            let placeholders = vec!["?"; first.len()].join(",");
            let mut insert = tx.prepare_cached(&format!("INSERT INTO \"{table}\" VALUES ({placeholders})"))?;
            for row in &table_rows[start..end] {
                insert.execute(rusqlite::params_from_iter(row.iter()))?;
            }
        }
        tx.commit()?;
    }
    Ok(Replay { payments, payments_per_commit, rows: total_rows, elapsed: started.elapsed() })
}

fn query_strings(conn: &rusqlite::Connection, sql: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let values = stmt.query_map([], |row| row.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of every table arrive, children after their parents, across
    /// several commits (foreign keys on, as in the gateway).
    #[test]
    fn replays_every_row_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source.db");
        let conn = rusqlite::Connection::open(&source).unwrap();
        conn.execute_batch(
            "CREATE TABLE merchants (id TEXT PRIMARY KEY);
             CREATE TABLE payments (id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL REFERENCES merchants(id));
             CREATE TABLE postings (payment_id TEXT NOT NULL REFERENCES payments(id), amount INTEGER NOT NULL);
             CREATE INDEX postings_by_payment ON postings (payment_id);
             INSERT INTO merchants VALUES ('mer_1');",
        )
        .unwrap();
        let payments = 2_500;
        conn.execute_batch("BEGIN").unwrap();
        for i in 0..payments {
            conn.execute("INSERT INTO payments VALUES (?1, 'mer_1')", [format!("pay_{i}")]).unwrap();
            for amount in [100, -100] {
                conn.execute("INSERT INTO postings VALUES (?1, ?2)", rusqlite::params![format!("pay_{i}"), amount])
                    .unwrap();
            }
        }
        conn.execute_batch("COMMIT").unwrap();
        drop(conn);

        let replay = replay(&source, dir.path(), 1_000).unwrap();

        assert_eq!(replay.payments, payments as u64);
        assert_eq!(replay.rows, 1 + 3 * payments as u64);
        let copy = rusqlite::Connection::open(dir.path().join("replay.db")).unwrap();
        let count = |table: &str| -> i64 {
            copy.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap()
        };
        assert_eq!(
            (count("merchants"), count("payments"), count("postings")),
            (1, payments as i64, 2 * payments as i64)
        );
        let sum: i64 = copy.query_row("SELECT SUM(amount) FROM postings", [], |r| r.get(0)).unwrap();
        assert_eq!(sum, 0);
    }
}
