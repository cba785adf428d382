//! Store: the SQLite database. One writer thread commits many requests per
//! transaction (group commit); a sync thread makes each committed batch
//! durable (`fdatasync` of the WAL) and only then answers its requests, so
//! the writer runs the next batch while the disk syncs the last. Reads use
//! a small pool of their own connections, and a read returns only once
//! everything it could have seen is durable. See [`run_syncer`]. No other
//! module opens the database; the SQL of each table
//! lives in the module that owns it. Records that belong to a tenant are
//! read through [`load_owned`] and [`fetch`], so another merchant's (or
//! mode's) record never exists for a key.
//!
//! May call: `values`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, watch};

use crate::values::error::ApiError;
use crate::values::mode::Tenant;

/// Writes waiting for the writer before callers are made to wait to enqueue.
const WRITE_QUEUE_JOBS_MAX: usize = 16_384;
/// Jobs committed together in one transaction at most.
const BATCH_JOBS_MAX: usize = 1_024;
/// How often committed pages are checkpointed from the WAL into the database.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// Prepared statements each connection keeps parsed.
const STATEMENTS_CACHED: usize = 256;
/// How long a connection waits on a lock held by another process.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Schema migrations, applied in order; `PRAGMA user_version` records how
/// many have run. Append only: never edit a released migration.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_initial.sql"),
    include_str!("../../migrations/0002_wallets_fx.sql"),
    include_str!("../../migrations/0003_webhooks.sql"),
    include_str!("../../migrations/0004_idempotency_by_transaction.sql"),
    include_str!("../../migrations/0005_status_checks.sql"),
    include_str!("../../migrations/0006_disputes.sql"),
    include_str!("../../migrations/0007_next_action.sql"),
    include_str!("../../migrations/0008_refunds.sql"),
    include_str!("../../migrations/0009_refunds_in_history.sql"),
    include_str!("../../migrations/0010_accounts_and_key_pairs.sql"),
    include_str!("../../migrations/0011_settlements.sql"),
    include_str!("../../migrations/0012_settlement_batches.sql"),
    include_str!("../../migrations/0013_transfers.sql"),
    include_str!("../../migrations/0014_operation_core.sql"),
    include_str!("../../migrations/0015_customer_consent.sql"),
    include_str!("../../migrations/0016_rail_owners.sql"),
    include_str!("../../migrations/0017_bill_payments.sql"),
    include_str!("../../migrations/0018_rmb_purchases.sql"),
    include_str!("../../migrations/0019_gift_card_sales.sql"),
    include_str!("../../migrations/0020_crypto_sales.sql"),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the database writer has stopped")]
    WriterStopped,
    #[error("a database write panicked: {0}")]
    Panicked(String),
    /// The write was refused for a domain reason (insufficient funds, an
    /// expired quote…): its savepoint is rolled back and the reason returned.
    #[error("refused: {0}")]
    Rejected(Box<dyn std::error::Error + Send + Sync>),
    #[error("ledger invariant: {0}")]
    Invariant(String),
    #[error("commit failed: {0}")]
    Commit(String),
}

/// What a finished job does once its batch commits (or fails to).
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A write: runs inside the batch's transaction, returns how to answer.
type Job = Box<dyn FnOnce(&Connection) -> Finish + Send>;

#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    readers: Arc<ReaderPool>,
    durability: Durability,
}

/// How far the writer's batches have got: each batch has a number, taken
/// before its `COMMIT` (so any reader that can see the batch sees at least
/// its number), and is durable once `synced` reaches it.
#[derive(Clone)]
struct Durability {
    committed: Arc<AtomicU64>,
    synced: watch::Receiver<u64>,
}

impl Durability {
    /// Waits until every batch committed so far is on disk.
    async fn wait_for_committed(&self) -> Result<(), StoreError> {
        let committed = self.committed.load(Ordering::SeqCst);
        let mut synced = self.synced.clone();
        synced.wait_for(|synced| *synced >= committed).await.map_err(|_| StoreError::WriterStopped)?;
        Ok(())
    }
}

/// A committed (or failed) batch on its way to the sync thread.
struct Committed {
    number: u64,
    commit: Result<(), String>,
    finishes: Vec<Finish>,
}

struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Store {
    /// Opens (creating if needed) the database file, migrates it, and starts
    /// the writer thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut conn = open_connection(path)?;
        // The sync thread makes commits durable by syncing the WAL: without
        // one (a file system that cannot share memory), nothing would.
        let journal: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Commit(format!(
                "{} cannot use a write-ahead log (journal mode {journal})",
                path.display()
            )));
        }
        migrate(&mut conn)?;
        // Most checkpoint work runs beside the writer (see run_checkpointer);
        // the writer keeps SQLite's automatic checkpoint, which then finds
        // little left to copy, so the WAL still restarts and stays small.
        // Each write job runs in a savepoint; its undo pages stay in memory
        // rather than in a temporary file written with a syscall per page.
        // (Writer only: readers' large sorts keep spilling to disk.)
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        let checkpointer = open_connection(path)?;
        // The writer's commits write the WAL without syncing it (the sync
        // thread does, before anyone is answered); NORMAL still syncs around
        // every checkpoint, so the database can never be corrupted.
        let wal = open_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let writer_running = Arc::new(AtomicBool::new(true));
        let (jobs, queue) = mpsc::channel(WRITE_QUEUE_JOBS_MAX);
        let (to_sync, batches) = std::sync::mpsc::channel();
        let committed = Arc::new(AtomicU64::new(0));
        let (synced_tx, synced) = watch::channel(0);
        let running = Arc::clone(&writer_running);
        let numbering = Arc::clone(&committed);
        std::thread::Builder::new()
            .name("soxara-db-writer".into())
            .spawn(move || {
                // Clears the flag even if the writer unwinds.
                let _stopped = ClearOnDrop(running);
                run_writer(conn, queue, &numbering, to_sync);
            })
            .expect("spawning the writer thread at start-up");
        std::thread::Builder::new()
            .name("soxara-db-sync".into())
            .spawn(move || run_syncer(wal, batches, &synced_tx))
            .expect("spawning the sync thread at start-up");
        std::thread::Builder::new()
            .name("soxara-db-checkpoint".into())
            .spawn(move || run_checkpointer(checkpointer, writer_running))
            .expect("spawning the checkpoint thread at start-up");
        let readers = Arc::new(ReaderPool { path: path.to_path_buf(), idle: Mutex::new(Vec::new()) });
        Ok(Store { jobs, readers, durability: Durability { committed, synced } })
    }

    /// Runs `f` in the writer's current transaction and returns its result
    /// once that transaction has committed and is on disk. If `f` fails, only its own
    /// changes are rolled back (it runs in a savepoint); the batch goes on.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = in_savepoint(conn, f);
            Box::new(move |commit: Result<(), StoreError>| {
                let _ = reply.send(commit.and(result));
            })
        });
        self.jobs.send(job).await.map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Runs a read on a pooled connection, off the async threads, and
    /// returns once all it could have seen is on disk: a committed batch is
    /// visible to readers a moment before the sync thread has made it
    /// durable, and nothing not durable may leave the gateway (a webhook, a
    /// `GET`) lest a power cut unsay it.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = Arc::clone(&self.readers);
        let result = tokio::task::spawn_blocking(move || {
            let idle = pool.idle.lock().expect("reader pool lock is never held across a panic").pop();
            let conn = match idle {
                Some(conn) => conn,
                None => open_connection(&pool.path)?,
            };
            let result = f(&conn);
            pool.idle.lock().expect("reader pool lock is never held across a panic").push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Panicked(e.to_string()))?;
        self.durability.wait_for_committed().await?;
        result
    }
}

impl StoreError {
    pub fn rejected(reason: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Rejected(Box::new(reason))
    }
}

/// A refusal carries the API's answer; anything else the database did is
/// an internal error (logged, never shown).
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::Rejected(reason) => match reason.downcast::<ApiError>() {
                Ok(api) => *api,
                Err(other) => ApiError::Internal(anyhow::anyhow!(other)),
            },
            other => ApiError::Internal(other.into()),
        }
    }
}

/// A record that belongs to one tenant (a merchant in one mode), loadable
/// by id.
pub trait TenantRecord: Sized + Send + 'static {
    /// What it is called in a "not found" answer.
    const WHAT: &'static str;
    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError>;
    fn tenant(&self) -> &Tenant;
}

/// The record `id` if `tenant` owns it: another merchant's, or the same
/// merchant's in the other mode, does not exist for it.
pub fn load_owned<R: TenantRecord>(conn: &Connection, tenant: &Tenant, id: &str) -> Result<Option<R>, StoreError> {
    Ok(R::load(conn, id)?.filter(|record| record.tenant() == tenant))
}

/// [`load_owned`] on a reader, as the API answers it: `404` otherwise.
pub async fn fetch<R: TenantRecord>(store: &Store, tenant: &Tenant, id: String) -> Result<R, ApiError> {
    let tenant = tenant.clone();
    let found = store.read(move |conn| load_owned::<R>(conn, &tenant, &id)).await?;
    found.ok_or(ApiError::NotFound { what: R::WHAT })
}

/// Opens a connection that cannot write, for offline checks (`soxara verify`).
pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
    Ok(conn)
}

/// A migrated database in memory, for unit tests of the flows that take a
/// connection.
pub fn open_in_memory() -> Result<Connection, StoreError> {
    let mut conn = Connection::open_in_memory()?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
    // WAL lets readers run beside the writer; FULL syncs the WAL on every
    // commit, so an acknowledged write survives power loss.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every statement of a payment's write, and the workers', stays parsed
    // (rusqlite keeps 16 by default; the writer alone runs more than that).
    conn.set_prepared_statement_cache_capacity(STATEMENTS_CACHED);
    Ok(conn)
}

/// Clears a running flag when dropped.
struct ClearOnDrop(Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// Copies committed WAL pages into the database file every so often, on
/// its own connection, so the writer's commits seldom wait for it. PASSIVE
/// never blocks the writer or readers. Under steady writes it never quite
/// catches up (new frames arrive while it copies), so on its own the WAL
/// would grow without end: the writer's automatic checkpoint finishes the
/// job, with little left to copy, and the WAL restarts from the top.
fn run_checkpointer(conn: Connection, writer_running: Arc<AtomicBool>) {
    while writer_running.load(Ordering::Relaxed) {
        std::thread::sleep(CHECKPOINT_INTERVAL);
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get::<_, i64>(0));
        if let Err(err) = result {
            tracing::warn!(error = %err, "WAL checkpoint failed; retrying");
        }
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let applied: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i64::try_from(index + 1).expect("few migrations"))?;
        tx.commit()?;
        tracing::info!(migration = index + 1, "database migrated");
    }
    Ok(())
}

/// Runs one statement without parameters that the writer runs again and
/// again (a savepoint, `BEGIN`, `COMMIT`), parsed once and kept.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
    run_cached(conn, "SAVEPOINT job")?;
    let result = catch_unwind(AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|panic| Err(StoreError::Panicked(panic_message(&panic))));
    match &result {
        Ok(_) => run_cached(conn, "RELEASE job")?,
        Err(_) => conn.execute_batch("ROLLBACK TO job; RELEASE job")?,
    }
    result
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The writer loop: wait for one job, take every job already queued (up to
/// the batch limit), run them in one transaction, commit, and hand the
/// batch to the sync thread, which answers it once it is on disk.
fn run_writer(
    conn: Connection,
    mut queue: mpsc::Receiver<Job>,
    committed: &AtomicU64,
    to_sync: std::sync::mpsc::Sender<Committed>,
) {
    let mut number = 0u64;
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH_JOBS_MAX {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(err) = run_cached(&conn, "BEGIN IMMEDIATE") {
            // Dropping the jobs drops their reply channels: callers see
            // WriterStopped, and nothing was written.
            tracing::error!(error = %err, jobs = batch.len(), "could not begin a write transaction");
            continue;
        }
        let finishes: Vec<Finish> = batch.into_iter().map(|job| job(&conn)).collect();
        // Numbered before it becomes visible, so a reader that sees it
        // waits for its sync.
        number += 1;
        committed.store(number, Ordering::SeqCst);
        let commit = run_cached(&conn, "COMMIT").map_err(|e| e.to_string());
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        if to_sync.send(Committed { number, commit, finishes }).is_err() {
            tracing::error!("the sync thread has stopped; the writer stops too");
            return;
        }
    }
}

/// The sync thread: takes every batch committed since its last sync, makes
/// the WAL durable with one `fdatasync` (the writer's connection runs with
/// `synchronous=NORMAL`, so its commits only write the WAL), then marks them
/// synced and answers their requests. Ordered: a batch that read an earlier
/// batch's rows is answered only after a sync that covers both.
///
/// The WAL is the same file for the database's whole life (SQLite removes it
/// only when the last connection closes, and the writer's never does before
/// the process ends), and `fdatasync` on any descriptor of a file flushes
/// every write made to it. If a sync fails, nothing committed since the last
/// one can be trusted to be on disk, and the kernel may already have
/// dropped the pages: the process stops at once, unanswered, and recovers
/// from the database at the next start, as after any crash.
fn run_syncer(wal: Wal, batches: std::sync::mpsc::Receiver<Committed>, synced: &watch::Sender<u64>) {
    while let Ok(first) = batches.recv() {
        let mut ready = vec![first];
        ready.extend(batches.try_iter());
        if ready.iter().any(|batch| batch.commit.is_ok())
            && let Err(err) = wal.file.sync_data()
        {
            tracing::error!(error = %err, wal = %wal.path.display(), "syncing the WAL failed; stopping the gateway");
            std::process::abort();
        }
        let last = ready.last().map_or(0, |batch| batch.number);
        synced.send_replace(last);
        for batch in ready {
            for finish in batch.finishes {
                finish(batch.commit.clone().map_err(StoreError::Commit));
            }
        }
    }
}

/// The write-ahead log the sync thread makes durable.
struct Wal {
    path: PathBuf,
    file: std::fs::File,
}

/// Before the writer stops syncing its own commits: whatever an earlier
/// process committed but may not have synced (it was killed, or its sync
/// failed) is copied into the database file and synced by a checkpoint on
/// this connection (still `synchronous=FULL`), so no read can see it before
/// it is durable; then the WAL is opened where SQLite keeps it (beside the
/// database file it resolved, following symlinks) and it and its directory
/// entry are synced once, so the syncs that follow make every commit durable
/// and the first disk error reaches the sync thread's own descriptor.
fn open_wal(conn: &Connection) -> Result<Wal, StoreError> {
    let synced_err = |what: &str, err: std::io::Error| StoreError::Commit(format!("{what}: {err}"));
    conn.query_row("PRAGMA wal_checkpoint(FULL)", [], |row| row.get::<_, i64>(0))?;
    let database =
        conn.path().filter(|p| !p.is_empty()).ok_or_else(|| StoreError::Commit("an unnamed database".into()))?;
    let path = PathBuf::from(format!("{database}-wal"));
    let file = std::fs::File::open(&path).map_err(|e| synced_err(&format!("opening {}", path.display()), e))?;
    file.sync_data().map_err(|e| synced_err(&format!("syncing {}", path.display()), e))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| synced_err(&format!("syncing {}", dir.display()), e))?;
    }
    Ok(Wal { path, file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_job_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        store.write(|c| Ok(c.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")?)).await.unwrap();
        let good = store.write(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?));
        let bad = store.write(|c| {
            c.execute("INSERT INTO t VALUES (2)", [])?;
            Err::<(), _>(StoreError::Panicked("deliberate".into()))
        });
        let panics = store.write(|c| -> Result<(), StoreError> {
            c.execute("INSERT INTO t VALUES (3)", [])?;
            panic!("deliberate panic")
        });
        let (good, bad, panics) = tokio::join!(good, bad, panics);
        assert!(good.is_ok() && bad.is_err() && panics.is_err());
        let values: Vec<i64> = store
            .read(|c| {
                let mut stmt = c.prepare("SELECT v FROM t ORDER BY v")?;
                let rows = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .await
            .unwrap();
        assert_eq!(values, vec![1]);
    }

    /// A write is answered only once the sync thread has made its batch
    /// durable, and a read only once every batch it could have seen is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_wait_for_the_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        store.write(|c| Ok(c.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")?)).await.unwrap();
        let durability = store.durability.clone();
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let (store, durability) = (store.clone(), durability.clone());
                tokio::spawn(async move {
                    for v in 0..200 {
                        let written = store.write(move |c| Ok(c.execute("INSERT INTO t VALUES (?1)", [v])?));
                        written.await.unwrap();
                        // This writer's batch, at least, is synced.
                        assert!(*durability.synced.borrow() >= 1);
                        let committed = Arc::clone(&durability.committed);
                        let seen = store.read(move |_| Ok(committed.load(Ordering::SeqCst))).await.unwrap();
                        let synced = *durability.synced.borrow();
                        assert!(synced >= seen, "a read returned with batch {seen} visible but only {synced} synced");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        let committed = durability.committed.load(Ordering::SeqCst);
        assert_eq!(*durability.synced.borrow(), committed);
        let rows: i64 = store.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(rows, 1_600);
    }

    /// SQLite keeps the WAL beside the file a symlinked path resolves to:
    /// the sync thread syncs that one (a WAL beside the link would be the
    /// wrong file, or none).
    #[tokio::test]
    async fn a_symlinked_database_syncs_the_real_wal() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(dir.path().join("real/t.db"), &link).unwrap();
        let store = Store::open(&link).unwrap();
        store.write(|c| Ok(c.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")?)).await.unwrap();
        store.write(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?)).await.unwrap();
        assert!(dir.path().join("real/t.db-wal").exists());
        assert!(!dir.path().join("link.db-wal").exists());
    }

    /// Under steady writes the WAL restarts instead of growing with every
    /// commit: 40 MB written through it leaves a WAL of a few MB.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_small_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        store.write(|c| Ok(c.execute_batch("CREATE TABLE t (v BLOB NOT NULL)")?)).await.unwrap();
        let writers: Vec<_> = (0..32)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    for _ in 0..320 {
                        store.write(|c| Ok(c.execute("INSERT INTO t VALUES (zeroblob(4096))", [])?)).await.unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        let wal_bytes = std::fs::metadata(dir.path().join("t.db-wal")).unwrap().len();
        assert!(wal_bytes < 16 << 20, "the WAL grew to {wal_bytes} bytes");
    }
}
