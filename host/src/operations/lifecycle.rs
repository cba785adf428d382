//! The rail-operation lifecycle, written once for every money movement a
//! plugin carries out (a payment's collection, a refund, a settlement's
//! payout through a rail; a bill bought from a biller). Each kind
//! implements [`RailOperation`]; this module runs it:
//!
//! 1. **Submit**: the operation's own module inserts it in `processing`
//!    together with its idempotency claim, in one write.
//! 2. **Call the rail** ([`submit`]) outside any transaction, off the
//!    writer, with the operation's id as the provider's idempotency key.
//!    A rail that cannot act on the world (its component imports nothing
//!    but the inert interfaces: no HTTP, no cache, no WASI) is asked
//!    before step 1 instead, and steps 1 and 3 are one write
//!    ([`submit_in_one_write`]): there is no effect a crash between them
//!    could lose or repeat.
//! 3. **Record** the first answer ([`record_first_answer`]), in one write:
//!    its status, ledger entries and events (the operation's `apply`), the
//!    first status check if it stays processing, the key's stored answer.
//! 4. **Later reports**, from status checks ([`check`]) and provider
//!    callbacks, move an operation only while it is processing and only
//!    for the rail that carries it ([`apply_later_report`]).
//! 5. **Resume** ([`resume`]): after a crash, an operation claimed but never
//!    answered is asked again under the same id, never under a new one.
//!
//! An operation that takes a customer's money (a wallet payment) has one
//! more step between 1 and 2: it is submitted waiting for the customer's
//! approval ([`submit_for_approval`]); approved, its money is held and the
//! rail called ([`on_approved`]); refused, expired or over-guessed, it
//! fails with nothing moved ([`on_not_approved`]).
//!
//! A rail that gave no answer (a trap, a timeout) may still have acted, so
//! the operation stays processing for the status checks; only a rail that
//! never ran (no free instance) fails it at once.

use std::future::Future;
use std::sync::Arc;

use rusqlite::Connection;

use super::approvals::{self, ApprovalRow, Ask};
use super::checks::{self, DueCheck, Schedule};
use super::context::Context;
use super::idempotency::{self, KeyedRequest, Reply, StoredResponse, UsedKey};
use crate::plugins::billers::PurchaseOutcome;
use crate::plugins::traders::TradeOutcome;
use crate::plugins::{Failure, Money, PluginError, RailOutcome, TransactionStatus};
use crate::store::{StoreError, TenantRecord};
use crate::values::error::ApiError;
pub use crate::values::failure::FailureReason;
use crate::values::mode::{Mode, Tenant};
use crate::values::money::Currency;
use crate::values::status::TransactionKind;

/// What a plugin said (its outcome, or a refusal as a value), or why it
/// said nothing.
pub type Answer<T> = Result<Result<T, Failure>, PluginError>;
/// What a rail said.
pub type RailAnswer = Answer<RailOutcome>;

/// What a plugin reports of an operation, whatever its world.
pub trait Outcome: Send + 'static {
    fn report(self) -> Report;
    /// Done at once, with no plugin involved (wallet money).
    fn instant() -> Self;
}

impl Outcome for RailOutcome {
    fn report(self) -> Report {
        Report::from(Ok(self))
    }

    fn instant() -> RailOutcome {
        RailOutcome {
            status: TransactionStatus::Completed,
            provider_reference: None,
            failure: None,
            redirect_url: None,
        }
    }
}

impl Outcome for PurchaseOutcome {
    fn report(self) -> Report {
        Report {
            status: self.status,
            provider_reference: self.provider_reference,
            failure: self.failure.map(|f| FailureReason { code: f.code, message: Some(f.message) }),
            redirect_url: None,
            tokens: self.tokens,
            verified_minor: None,
        }
    }

    fn instant() -> PurchaseOutcome {
        PurchaseOutcome {
            status: TransactionStatus::Completed,
            provider_reference: None,
            tokens: vec![],
            failure: None,
        }
    }
}

impl Outcome for TradeOutcome {
    fn report(self) -> Report {
        Report {
            status: self.status,
            provider_reference: self.provider_reference,
            failure: self.failure.map(|f| FailureReason { code: f.code, message: Some(f.message) }),
            redirect_url: None,
            tokens: Vec::new(),
            verified_minor: self.verified_value.map(|v| v.amount),
        }
    }

    fn instant() -> TradeOutcome {
        TradeOutcome {
            status: TransactionStatus::Completed,
            provider_reference: None,
            verified_value: None,
            failure: None,
        }
    }
}

/// A plugin's answer as a report: a refusal as a value is a failed operation.
fn report_of<T: Outcome>(answer: Result<T, Failure>) -> Report {
    match answer {
        Ok(outcome) => outcome.report(),
        Err(failure) => Report::from(Err::<RailOutcome, _>(failure)),
    }
}

/// What a rail reported about an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub status: TransactionStatus,
    pub provider_reference: Option<String>,
    pub failure: Option<FailureReason>,
    /// Where the customer approves it (while processing).
    pub redirect_url: Option<String>,
    /// What the customer needs to use a bill they bought (a token, PINs).
    pub tokens: Vec<String>,
    /// A gift card's face value as the desk verified it, in minor units of
    /// the card's currency, when it differs from what was declared.
    pub verified_minor: Option<u64>,
}

impl Report {
    /// Failed before the rail could act.
    pub fn failed(code: &str, message: &str) -> Report {
        Report {
            status: TransactionStatus::Failed,
            provider_reference: None,
            failure: Some(FailureReason { code: code.into(), message: Some(message.into()) }),
            redirect_url: None,
            tokens: Vec::new(),
            verified_minor: None,
        }
    }
}

/// A refusal as a value is a failed operation.
impl From<Result<RailOutcome, Failure>> for Report {
    fn from(answer: Result<RailOutcome, Failure>) -> Report {
        match answer {
            Ok(outcome) => Report {
                status: outcome.status,
                provider_reference: outcome.provider_reference,
                failure: outcome.failure.map(|f| FailureReason { code: f.code, message: Some(f.message) }),
                redirect_url: outcome.redirect_url,
                tokens: Vec::new(),
                verified_minor: None,
            },
            Err(failure) => Report {
                status: TransactionStatus::Failed,
                provider_reference: None,
                failure: Some(FailureReason { code: failure.code, message: Some(failure.message) }),
                redirect_url: None,
                tokens: Vec::new(),
                verified_minor: None,
            },
        }
    }
}

/// What every rail operation records of the rail's work, the same in each
/// operation's table: its status (the operation's own kind of status), the
/// provider's reference, why it failed, and when it was made and ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RailWork<S> {
    pub id: String,
    pub tenant: Tenant,
    pub status: S,
    pub provider_reference: Option<String>,
    pub failure: Option<FailureReason>,
    pub created_at_ms: i64,
    pub completed_at_ms: Option<i64>,
}

impl<S> RailWork<S> {
    /// A new operation of `kind`, processing.
    pub fn new(kind: TransactionKind, tenant: Tenant, processing: S, now_ms: i64) -> RailWork<S> {
        RailWork {
            id: kind.new_id(),
            tenant,
            status: processing,
            provider_reference: None,
            failure: None,
            created_at_ms: now_ms,
            completed_at_ms: None,
        }
    }

    /// When it was created, as a rail is told it.
    pub fn created_at_for_rail(&self) -> u64 {
        u64::try_from(self.created_at_ms).unwrap_or(0)
    }
}

/// An operation's amount as a rail is asked to move it.
pub fn rail_money(amount_minor: i64, currency: Currency) -> Result<Money, String> {
    let amount = u64::try_from(amount_minor).map_err(|_| format!("a negative amount ({amount_minor})"))?;
    Ok(Money { amount, currency: currency.code.to_string() })
}

/// A money movement a rail carries out. Its module owns its table and
/// says what each status means (its ledger entries and events); the
/// lifecycle says when, and records the rail's work.
pub trait RailOperation: TenantRecord {
    /// Its kind: its ids, and its rows among the status checks.
    const KIND: TransactionKind;
    /// Why it failed when no plugin instance was free (the rail never ran).
    const BUSY_MESSAGE: &'static str;
    /// Whether its first status check is scheduled when it is claimed,
    /// before the rail is first called (operations made without an
    /// idempotency key, which crash recovery cannot find).
    const CHECKED_FROM_CLAIM: bool = false;
    /// Its own statuses, and the one while the rail works.
    type Status: Copy + PartialEq + Send + 'static;
    const PROCESSING: Self::Status;
    /// What the rail is asked.
    type Request: Send + 'static;
    /// The plugin that carries it (a rail, a biller), and what it answers.
    type Plugin: Send + Sync + 'static;
    type Outcome: Outcome;

    fn work(&self) -> &RailWork<Self::Status>;
    fn work_mut(&mut self) -> &mut RailWork<Self::Status>;
    /// The rail that carries it; `None` when no rail is involved (wallet
    /// money, which never left the gateway).
    fn rail(&self) -> Option<&str>;
    /// What the rail is asked, or why the stored row cannot say.
    fn rail_request(&self) -> Result<Self::Request, String>;
    /// The loaded plugin of that name serving `mode`, if there is one.
    fn plugin(ctx: &Context, name: &str, mode: Mode) -> Option<Arc<Self::Plugin>>;
    /// Asks the rail to act (its id is the provider's idempotency key).
    fn call(rail: &Self::Plugin, request: &Self::Request) -> Answer<Self::Outcome>;
    /// Asks the rail where it stands. A `Failure` means the rail could
    /// not find out, not that the operation failed.
    fn ask(rail: &Self::Plugin, request: &Self::Request, provider_reference: Option<&str>) -> Answer<Self::Outcome>;
    /// The final status a rail's report means; `None`: still processing.
    fn final_status(reported: TransactionStatus) -> Option<Self::Status>;
    /// Takes what a report says beyond the rail's work (a payment's page
    /// for the customer, a bill's tokens), before any final status is
    /// settled.
    fn note(&mut self, _report: &Report) {}
    /// The customer's approval it waits for before its rail is called (it
    /// takes their money); `None`: it goes to the rail at once.
    fn approval(&self) -> Option<Ask> {
        None
    }
    /// Records which approval it waits for, before it is inserted.
    fn awaiting(&mut self, _approval: &ApprovalRow) {}
    /// What approval means, in the approving write (a wallet payment holds
    /// the customer's money). `Some(reason)`: it cannot go ahead, and fails
    /// with nothing moved.
    fn approved(&mut self, _conn: &Connection, _now_ms: i64) -> Result<Option<FailureReason>, StoreError> {
        Ok(None)
    }
    /// What its new final status means, in the same write: ledger entries,
    /// events, its own columns that change with it.
    fn settle(&mut self, conn: &Connection, now_ms: i64) -> Result<(), StoreError>;
    /// Writes its row as it now is.
    fn save(&self, conn: &Connection) -> Result<(), StoreError>;
    /// What its idempotency key answers once the first answer is recorded
    /// (`unanswered`: the rail gave none); `None` for operations made
    /// without a key (settlement payouts).
    fn response(&self, _unanswered: Option<&PluginError>) -> Option<StoredResponse> {
        None
    }

    fn id(&self) -> &str {
        &self.work().id
    }

    fn is_processing(&self) -> bool {
        self.work().status == Self::PROCESSING
    }
}

/// Applies a report to a processing operation — the rail's work, then its
/// final status's meaning (`settle`) — writes it, and moves its checks:
/// ended when it is final, else as `next` says.
fn apply<O: RailOperation>(
    conn: &Connection,
    op: &mut O,
    report: &Report,
    now_ms: i64,
    next: Schedule,
) -> Result<(), StoreError> {
    apply_to(conn, op, report, now_ms, next, Row::Stored)
}

/// Whether an operation's row is in the database yet when its answer is
/// applied.
#[derive(Clone, Copy)]
enum Row<O> {
    /// Stored at its claim: updated.
    Stored,
    /// Created with its answer in one write: inserted once, in its final
    /// state, by this function (rather than inserted processing and updated).
    /// It must write every column `save` writes.
    New(fn(&O, &Connection) -> Result<(), StoreError>),
}

impl<O: RailOperation> Row<O> {
    fn save(self, conn: &Connection, op: &O) -> Result<(), StoreError> {
        match self {
            Row::Stored => op.save(conn),
            Row::New(insert) => insert(op, conn),
        }
    }
}

fn apply_to<O: RailOperation>(
    conn: &Connection,
    op: &mut O,
    report: &Report,
    now_ms: i64,
    next: Schedule,
    row: Row<O>,
) -> Result<(), StoreError> {
    if report.provider_reference.is_some() {
        op.work_mut().provider_reference.clone_from(&report.provider_reference);
    }
    op.note(report);
    let Some(status) = O::final_status(report.status) else {
        row.save(conn, op)?;
        return checks::schedule(conn, O::KIND, op.id(), next);
    };
    let work = op.work_mut();
    work.status = status;
    work.failure.clone_from(&report.failure);
    work.completed_at_ms = Some(now_ms);
    op.settle(conn, now_ms)?;
    row.save(conn, op)?;
    match next {
        // Final at its first answer: it never had checks to end.
        Schedule::First(_) if !O::CHECKED_FROM_CLAIM => Ok(()),
        last => checks::finish(conn, op.id(), last),
    }
}

/// Records the rail's first answer, in one write: applied if the operation
/// is still processing (a callback or check may have settled it first), its
/// first check at `first_check_at_ms` if it stays processing, and the
/// answer its idempotency key gives from now on.
pub fn record_first_answer<O: RailOperation>(
    conn: &Connection,
    id: &str,
    answer: Answer<O::Outcome>,
    now_ms: i64,
    first_check_at_ms: i64,
) -> Result<Option<StoredResponse>, StoreError> {
    let mut op = load::<O>(conn, id)?;
    let settled_before = !op.is_processing();
    let unanswered = if settled_before {
        None
    } else {
        apply_answer(conn, &mut op, answer, now_ms, first_check_at_ms, Row::Stored)?
    };
    if op.approval().is_some() {
        approvals::mark_answered(conn, op.id(), now_ms)?;
    }
    respond(conn, &op, unanswered.as_ref(), settled_before)
}

/// Applies a processing operation's first answer; returns the plugin's
/// error when it gave none (the operation stays processing, checked later).
fn apply_answer<O: RailOperation>(
    conn: &Connection,
    op: &mut O,
    answer: Answer<O::Outcome>,
    now_ms: i64,
    first_check_at_ms: i64,
    row: Row<O>,
) -> Result<Option<PluginError>, StoreError> {
    let first = Schedule::First(first_check_at_ms);
    match answer {
        // Never ran: nothing can have been asked of the provider.
        Err(PluginError::Busy) => {
            apply_to(conn, op, &Report::failed("RAIL_BUSY", O::BUSY_MESSAGE), now_ms, first, row)?;
            Ok(None)
        }
        // The provider may have acted: the status checks will know.
        Err(error) => {
            if let Row::New(insert) = row {
                insert(op, conn)?;
            }
            checks::schedule(conn, O::KIND, op.id(), first)?;
            Ok(Some(error))
        }
        Ok(answer) => {
            apply_to(conn, op, &report_of(answer), now_ms, first, row)?;
            Ok(None)
        }
    }
}

/// Stores (and returns) the answer of the operation's key. One that has an
/// answer keeps it: an operation settled before its first answer was
/// recorded, or one that waited for approval (its key answered then).
fn respond<O: RailOperation>(
    conn: &Connection,
    op: &O,
    unanswered: Option<&PluginError>,
    settled_before: bool,
) -> Result<Option<StoredResponse>, StoreError> {
    let may_have_one = settled_before || op.approval().is_some();
    if may_have_one && let Some(stored) = idempotency::stored_response(conn, op.id())? {
        return Ok(Some(stored));
    }
    let Some(response) = op.response(unanswered) else { return Ok(None) };
    idempotency::record_response(conn, op.id(), &response)?;
    Ok(Some(response))
}

fn load<O: RailOperation>(conn: &Connection, id: &str) -> Result<O, StoreError> {
    O::load(conn, id)?.ok_or_else(|| StoreError::Invariant(format!("{} {id} vanished", O::KIND)))
}

/// What became of a later report (a status check's or a callback's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportApplied {
    /// Applied: the operation is now final with this outcome, or still processing.
    Applied(TransactionStatus),
    /// It was already final; nothing changed.
    AlreadyFinal,
    /// No such operation, or another rail carries it.
    NotThisRail,
    /// The report names another provider reference than the one stored.
    ReferenceMismatch,
}

/// Applies a status check's or callback's `outcome` from `rail` to the
/// operation `id`, if that rail carries it and it is processing; if it
/// stays processing, it is checked next as `next` says.
pub fn apply_later_report<O: RailOperation>(
    conn: &Connection,
    id: &str,
    rail: &str,
    outcome: O::Outcome,
    now_ms: i64,
    next: Schedule,
) -> Result<ReportApplied, StoreError> {
    let Some(mut op) = O::load(conn, id)?.filter(|op| op.rail() == Some(rail)) else {
        return Ok(ReportApplied::NotThisRail);
    };
    if !op.is_processing() {
        return Ok(ReportApplied::AlreadyFinal);
    }
    let report = outcome.report();
    let reference_differs = matches!(
        (&op.work().provider_reference, &report.provider_reference),
        (Some(stored), Some(reported)) if stored != reported
    );
    if reference_differs {
        // Not applied, but the schedule moves on: a rail that keeps
        // answering another reference must not be asked every second.
        checks::schedule(conn, O::KIND, id, next)?;
        tracing::error!(kind = %O::KIND, id, rail, "the rail reported another provider reference; reconcile it");
        return Ok(ReportApplied::ReferenceMismatch);
    }
    apply(conn, &mut op, &report, now_ms, next)?;
    Ok(ReportApplied::Applied(report.status))
}

/// Runs `work` in a task of its own and waits for it: a flow that claims an
/// idempotency key and then asks a rail must finish even if the client
/// hangs up (dropping a request's future would leave the key claimed and
/// unanswered until the next start).
pub async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(tracing::Instrument::in_current_span(work))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("a money movement's task failed: {e}")))?
}

/// Asks the rail (none: wallet money, completed at once) to act on a newly
/// claimed operation, outside any transaction, then records its first
/// answer. Callers run it `detached`.
pub async fn submit<O: RailOperation>(
    ctx: &Context,
    rail: Option<Arc<O::Plugin>>,
    op: O,
) -> Result<Option<StoredResponse>, ApiError> {
    let answer = ask(rail, &op).await?;
    let (clock, first_check_ms, id) = (ctx.clock.clone(), ctx.checks.delay_ms(0), op.id().to_string());
    let stored = ctx
        .store
        .write(move |conn| {
            let now_ms = clock.now_ms();
            record_first_answer::<O>(conn, &id, answer, now_ms, now_ms.saturating_add(first_check_ms))
        })
        .await?;
    Ok(stored)
}

/// Asks the rail (none: wallet money, completed at once) to act on `op`,
/// off the writer.
async fn ask<O: RailOperation>(rail: Option<Arc<O::Plugin>>, op: &O) -> Result<Answer<O::Outcome>, ApiError> {
    let request =
        op.rail_request().map_err(|why| ApiError::Internal(anyhow::anyhow!("{} {}: {why}", O::KIND, op.id())))?;
    let answer = match rail {
        None => Ok(Ok(O::Outcome::instant())),
        Some(rail) => crate::plugins::call_blocking(move || O::call(&rail, &request)).await,
    };
    if let Err(error) = &answer {
        // The detail is for the operator, with the request id; the merchant
        // sees a stable code.
        tracing::warn!(kind = %O::KIND, id = op.id(), %error, "the rail gave no answer; status checks will follow it");
    }
    Ok(answer)
}

/// Steps 1 to 3 in one write, for a rail that cannot act on the world (its
/// component imports only inert interfaces: `LoadedRail::acts_outside`).
/// The rail is asked first; then the key's claim, the operation (`insert`)
/// and its first answer are committed together. A crash before that commit
/// leaves nothing behind, and a retry asks again a rail that did nothing
/// the first time; a key used before answers from its record, and this
/// call's answer is dropped (a replay costs one call of an effect-free
/// plugin: cheaper than reading the key first for every new payment,
/// measured in docs/performance.md). Nothing is claimed before the write,
/// so nothing is left for `resume` and the call need not be `detached`.
/// `insert` writes the operation's row in whatever state it has reached:
/// every column its `save` writes.
pub async fn submit_in_one_write<O: RailOperation>(
    ctx: &Context,
    request: KeyedRequest,
    rail: Arc<O::Plugin>,
    op: O,
    insert: fn(&O, &Connection) -> Result<(), StoreError>,
) -> Result<Reply, ApiError> {
    let answer = ask(Some(rail), &op).await?;
    let (clock, first_check_ms) = (ctx.clock.clone(), ctx.checks.delay_ms(0));
    let written = ctx
        .store
        .write(move |conn| {
            let now_ms = clock.now_ms();
            if let Some(used) = request.peek(conn)? {
                return Ok(Err(used));
            }
            let mut op = op;
            let first_check_at_ms = now_ms.saturating_add(first_check_ms);
            let unanswered = apply_answer(conn, &mut op, answer, now_ms, first_check_at_ms, Row::New(insert))?;
            // No answer would leave the key claimed and unanswered: roll back.
            let response = op
                .response(unanswered.as_ref())
                .ok_or_else(|| StoreError::Invariant(format!("a {}'s key stored no answer", O::KIND)))?;
            request.claim_answered(conn, op.id(), now_ms, &response)?;
            Ok(Ok(response))
        })
        .await?;
    written.map(Reply::new).or_else(UsedKey::answer)
}

/// After a crash: the operation `id`, claimed but never answered, is asked
/// of the rail that may already have acted, again under the same id, and
/// recorded. One a callback or check settled meanwhile only gets its key's
/// answer stored; one whose rail is not loaded now is left to the checks.
pub async fn resume<O: RailOperation>(ctx: &Context, id: String) -> Result<(), ApiError> {
    let lookup = id.clone();
    let Some(op) = ctx.store.read(move |conn| O::load(conn, &lookup)).await? else {
        tracing::error!(kind = %O::KIND, id, "an idempotency key is bound to an operation that does not exist");
        return Ok(());
    };
    if !op.is_processing() {
        ctx.store.write(move |conn| respond(conn, &op, None, true).map(drop)).await?;
        return Ok(());
    }
    let rail = match op.rail() {
        None => None,
        // The rail that may already have acted, never whatever is bound today.
        Some(name) => match O::plugin(ctx, name, op.work().tenant.mode) {
            Some(rail) => Some(rail),
            None => {
                tracing::warn!(kind = %O::KIND, id, rail = name, "cannot resume: its rail is not loaded; checked later");
                let (clock, first_check_ms) = (ctx.clock.clone(), ctx.checks.delay_ms(0));
                ctx.store
                    .write(move |conn| {
                        let at_ms = clock.now_ms().saturating_add(first_check_ms);
                        checks::schedule(conn, O::KIND, &id, Schedule::First(at_ms))
                    })
                    .await?;
                return Ok(());
            }
        },
    };
    tracing::info!(kind = %O::KIND, id, "resuming an operation interrupted before its answer was recorded");
    submit(ctx, rail, op).await.map(drop)
}

/// Step 1 for an operation that takes a customer's money: in one write,
/// its key's claim, the operation (`insert`, waiting) and a request for the
/// customer's approval, whose code goes out once that write is committed.
/// The key answers with the operation waiting for approval; its rail is
/// called only once the customer approves ([`on_approved`]).
pub async fn submit_for_approval<O: RailOperation>(
    ctx: &Context,
    request: KeyedRequest,
    mut op: O,
    insert: fn(&O, &Connection) -> Result<(), StoreError>,
) -> Result<Reply, ApiError> {
    let mode = op.work().tenant.mode;
    let Some(messenger) = ctx.messengers.for_mode(mode).cloned() else {
        return idempotency::replay_or(&ctx.store, &request, ApiError::MessagingUnavailable { mode }).await;
    };
    let (codes, messenger_name) = (Arc::clone(&ctx.codes), messenger.plugin_name().to_string());
    let ttl_ms = i64::try_from(ctx.codes.settings.approval_ttl_ms).unwrap_or(i64::MAX);
    let id = op.id().to_string();
    let (reply, message) = idempotency::write_once(&ctx.store, &ctx.clock, request, id, move |conn, now_ms| {
        let id = op.id().to_string();
        let unexpected = || StoreError::Invariant(format!("{} {id} waits for no approval", O::KIND));
        let ask = op.approval().ok_or_else(unexpected)?;
        let (approval, message) = approvals::request(conn, &codes, ask, &messenger_name, ttl_ms, now_ms)?;
        op.awaiting(&approval);
        insert(&op, conn)?;
        let response = op.response(None).ok_or_else(unexpected)?;
        Ok((response, message))
    })
    .await?;
    if let Some(message) = message {
        approvals::deliver(ctx, messenger, message).await;
    }
    Ok(reply)
}

/// The customer approved `id`: what that means (`approved`), in the
/// approving write. Returns the operation if its rail is to be called now
/// ([`call_approved`]); one that cannot go ahead is failed here.
pub fn on_approved<O: RailOperation>(conn: &Connection, id: &str, now_ms: i64) -> Result<Option<O>, StoreError> {
    let mut op = load::<O>(conn, id)?;
    if !op.is_processing() {
        return Ok(None);
    }
    if let Some(reason) = op.approved(conn, now_ms)? {
        let report = Report::failed(&reason.code, reason.message.as_deref().unwrap_or_default());
        apply(conn, &mut op, &report, now_ms, Schedule::First(now_ms))?;
        approvals::mark_answered(conn, id, now_ms)?;
        return Ok(None);
    }
    op.save(conn)?;
    Ok(Some(op))
}

/// Calls the rail of an operation its customer just approved (the rail it
/// was routed to when made), and records its first answer.
pub async fn call_approved<O: RailOperation>(ctx: &Context, op: O) -> Result<(), ApiError> {
    let rail = match op.rail() {
        None => None,
        Some(name) => match O::plugin(ctx, name, op.work().tenant.mode) {
            Some(rail) => Some(rail),
            None => {
                // Approved, so its money is held: a restart with the rail
                // loaded again calls it (`approvals::approved_unanswered`).
                tracing::error!(kind = %O::KIND, id = op.id(), rail = name, "approved, but its rail is not loaded");
                return Ok(());
            }
        },
    };
    submit(ctx, rail, op).await.map(drop)
}

/// The customer did not approve `id` (refused, expired, too many wrong
/// codes): it fails with nothing moved, in the caller's write.
pub fn on_not_approved<O: RailOperation>(
    conn: &Connection,
    id: &str,
    reason: &FailureReason,
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut op = load::<O>(conn, id)?;
    if op.is_processing() {
        let report = Report::failed(&reason.code, reason.message.as_deref().unwrap_or_default());
        apply(conn, &mut op, &report, now_ms, Schedule::First(now_ms))?;
    }
    Ok(())
}

/// Asks the rail that carries one due operation where it stands, and
/// records the answer or schedules the next check. After the checking
/// period (`give_up_after_ms`) checks stop and an error is logged: it stays
/// processing for an operator to reconcile with the provider.
pub async fn check<O: RailOperation>(ctx: &Context, due: DueCheck) -> Result<(), ApiError> {
    let checks_made = due.checks_made.saturating_add(1);
    let now_ms = ctx.clock.now_ms();
    let next_at_ms = now_ms.saturating_add(ctx.checks.delay_ms(checks_made));
    let next = Schedule::After { due_at_ms: due.due_at_ms, next_at_ms, checks_made };
    let id = due.operation_id;
    let lookup = id.clone();
    let op = ctx.store.read(move |conn| O::load(conn, &lookup)).await?;
    let Some(op) = op.filter(O::is_processing) else {
        // Settled meanwhile (or gone): nothing to ask.
        ctx.store.write(move |conn| checks::stop(conn, &id)).await?;
        return Ok(());
    };
    let give_up_after_ms = i64::try_from(ctx.checks.give_up_after_ms).unwrap_or(i64::MAX);
    let too_old = now_ms.saturating_sub(op.work().created_at_ms) > give_up_after_ms;
    let request = match op.rail_request() {
        Ok(request) if !too_old => request,
        unusable => {
            let why = unusable.err().unwrap_or_else(|| "still processing after the checking period".into());
            tracing::error!(kind = %O::KIND, id, rail = ?op.rail(), %why, "status checks stopped; reconcile it with the provider");
            ctx.store.write(move |conn| checks::stop(conn, &id)).await?;
            return Ok(());
        }
    };
    let Some(rail) = op.rail().and_then(|name| O::plugin(ctx, name, op.work().tenant.mode)) else {
        tracing::warn!(kind = %O::KIND, id, rail = ?op.rail(), "status check postponed: the rail is not loaded");
        ctx.store.write(move |conn| checks::schedule(conn, O::KIND, &id, next)).await?;
        return Ok(());
    };
    let rail_name = op.rail().unwrap_or_default().to_string();
    let reference = op.work().provider_reference.clone();
    let answer = crate::plugins::call_blocking(move || O::ask(&rail, &request, reference.as_deref())).await;
    match answer {
        Ok(Ok(outcome)) => {
            let clock = ctx.clock.clone();
            let (write_id, rail) = (id.clone(), rail_name);
            let applied = ctx
                .store
                .write(move |conn| apply_later_report::<O>(conn, &write_id, &rail, outcome, clock.now_ms(), next))
                .await?;
            tracing::info!(kind = %O::KIND, id, checks_made, ?applied, "status check");
        }
        other => {
            match other {
                Ok(Err(failure)) => {
                    tracing::info!(kind = %O::KIND, id, code = %failure.code, message = %failure.message, "status unknown; checking later")
                }
                Err(error) => {
                    tracing::warn!(kind = %O::KIND, id, %error, "status check failed in the plugin; checking later")
                }
                Ok(Ok(_)) => {}
            }
            ctx.store.write(move |conn| checks::schedule(conn, O::KIND, &id, next)).await?;
        }
    }
    Ok(())
}
