//! What rails say after their first answer. A payment a rail leaves
//! `processing` (a mobile-money approval, a provider timeout, a trapped
//! plugin) is settled by whichever comes first:
//!
//! - **status checks**: a worker asks the rail that collected the payment on
//!   a backoff schedule (`[status_checks]`) until the answer is final;
//! - **provider callbacks** at `POST|PUT /v1/callbacks/{plugin}`, which the
//!   owning plugin authenticates and reads. A callback may also open a
//!   dispute (`disputes`) or be authentic but of no interest (acknowledged).
//!
//! Both end in `payments::apply_later_report`, which only moves a processing
//! payment of that same rail, so a late, repeated or forged report can never
//! post twice or touch another rail's payment. A callback that reports
//! "still processing" only brings the next check forward (a prompt). No path
//! ever asks the provider under a new idempotency key: no second charge (a
//! rail's `status` may repeat its request under the same key).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::app::AppState;
use crate::disputes::{self, DisputeApplied};
use crate::error::ApiError;
use crate::payments::{self, DueCheck, ReportApplied, Schedule};
use crate::plugins::{Callback, CallbackEvent, Failure, PluginError, RailOutcome};
use crate::refunds::{self, DueRefundCheck};
use crate::settlements::{self, DueSettlementCheck};

/// Status checks running at once (each holds a blocking thread while the
/// rail waits on its provider).
const CHECKS_AT_ONCE: usize = 16;
/// Due checks taken per round; the next round starts when these are done,
/// so one payment is never checked twice at once.
const CHECKS_PER_ROUND_MAX: usize = 256;
/// Callbacks handled at once. Each costs a plugin instance and provider
/// requests and needs no API key, so a flood must not take every instance
/// from payments; past this the provider is told to send it again.
const CALLBACKS_AT_ONCE: usize = 32;
pub(crate) static CALLBACKS_IN_FLIGHT: Semaphore = Semaphore::const_new(CALLBACKS_AT_ONCE);
/// A callback that leaves a payment processing moves its next check no
/// sooner than this: a prompt, which repeated callbacks cannot turn into a
/// stream of provider requests (a check moves the schedule past it).
const PROMPT_DELAY_MS: i64 = 1_000;

/// The running status-check worker.
pub struct Worker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Worker {
    pub fn spawn(state: AppState) -> Worker {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(state, stopped));
        Worker { stop, task }
    }

    /// Stops at once; a check cut short is simply due again at the next start.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn run(state: AppState, mut stopped: watch::Receiver<bool>) {
    let interval = Duration::from_millis(state.status_checks.poll_interval_ms);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped.changed() => return,
        }
        if let Err(err) = check_due(&state).await {
            tracing::warn!(error = %err, "status checks: this round failed; the next one retries");
        }
    }
}

/// Runs every status check that is due now; returns how many ran.
pub async fn check_due(state: &AppState) -> Result<usize, ApiError> {
    let now_ms = crate::clock::now_ms();
    let due = state.store.read(move |conn| payments::due_checks(conn, now_ms, CHECKS_PER_ROUND_MAX)).await?;
    let due_refunds = state.store.read(move |conn| refunds::due_checks(conn, now_ms, CHECKS_PER_ROUND_MAX)).await?;
    let due_settlements =
        state.store.read(move |conn| settlements::due_checks(conn, now_ms, CHECKS_PER_ROUND_MAX)).await?;
    let count = due.len() + due_refunds.len() + due_settlements.len();
    let permits = Arc::new(Semaphore::new(CHECKS_AT_ONCE));
    let mut running = JoinSet::new();
    for check in due {
        let (state, permits) = (state.clone(), Arc::clone(&permits));
        running.spawn(async move {
            let _permit = permits.acquire_owned().await;
            check_one(&state, check).await
        });
    }
    for check in due_refunds {
        let (state, permits) = (state.clone(), Arc::clone(&permits));
        running.spawn(async move {
            let _permit = permits.acquire_owned().await;
            check_refund(&state, check).await
        });
    }
    for check in due_settlements {
        let (state, permits) = (state.clone(), Arc::clone(&permits));
        running.spawn(async move {
            let _permit = permits.acquire_owned().await;
            check_settlement(&state, check).await
        });
    }
    while let Some(finished) = running.join_next().await {
        match finished {
            Ok(Err(err)) => tracing::warn!(error = %err, "status check not recorded; it stays due"),
            Err(err) => tracing::warn!(error = %err, "status check task failed; it stays due"),
            Ok(Ok(())) => {}
        }
    }
    Ok(count)
}

/// Asks the rail that collected one payment, and records the answer or
/// schedules the next check.
async fn check_one(state: &AppState, check: DueCheck) -> Result<(), ApiError> {
    let checks = check.checks.saturating_add(1);
    let now_ms = crate::clock::now_ms();
    let next_at = now_ms.saturating_add(state.status_checks.delay_ms(checks));
    let next = Schedule::After { due_at: check.due_at, next_at, checks };
    let payment_id = check.payment_id.clone();
    let too_old = now_ms.saturating_sub(check.created_at_ms)
        > i64::try_from(state.status_checks.give_up_after_ms).unwrap_or(i64::MAX);
    let request = match check.request {
        Ok(request) if !too_old => request,
        unusable => {
            let why = unusable.err().unwrap_or_else(|| "still processing after the checking period".into());
            tracing::error!(payment = %payment_id, rail = %check.rail, %why, "status checks stopped; reconcile this payment with the provider");
            state.store.write(move |conn| payments::stop_checks(conn, "payments", &payment_id)).await?;
            return Ok(());
        }
    };
    let Some(rail) = state.registry.rail_named(&check.rail) else {
        tracing::warn!(payment = %payment_id, rail = %check.rail, "status check postponed: the rail is not loaded");
        state.store.write(move |conn| payments::schedule(conn, &payment_id, next)).await?;
        return Ok(());
    };
    let rail_name = rail.name().to_string();
    let answer = tokio::task::spawn_blocking(move || rail.status(&request, check.provider_reference.as_deref()))
        .await
        .unwrap_or_else(|e| Err(PluginError::Host(format!("the call panicked: {e}"))));
    match answer {
        Ok(Ok(outcome)) => {
            let applied = state
                .store
                .write(move |conn| {
                    let now_ms = crate::clock::now_ms();
                    payments::apply_later_report(conn, &payment_id, &rail_name, outcome, now_ms, next)
                })
                .await?;
            tracing::info!(payment = %check.payment_id, checks, ?applied, "status check");
        }
        Ok(Err(failure)) => {
            // The rail could not find out (provider down, bad answer): ask later.
            tracing::info!(payment = %payment_id, code = %failure.code, message = %failure.message, "status unknown; checking later");
            state.store.write(move |conn| payments::schedule(conn, &payment_id, next)).await?;
        }
        Err(plugin_error) => {
            tracing::warn!(payment = %payment_id, error = %plugin_error, "status check failed in the plugin; checking later");
            state.store.write(move |conn| payments::schedule(conn, &payment_id, next)).await?;
        }
    }
    Ok(())
}

/// A processing refund or settlement payout whose status check is due.
struct MoneyOutCheck {
    /// `refunds` or `settlements`.
    table: &'static str,
    id: String,
    rail: String,
    checks: i64,
    created_at_ms: i64,
    due_at: i64,
}

/// Asks the rail about one processing refund or payout (`ask`), and records
/// the answer (`apply`, given the rail's name) or schedules the next check:
/// the same rules as payments.
async fn check_money_out<Ask, Apply>(
    state: &AppState,
    check: MoneyOutCheck,
    ask: Ask,
    apply: Apply,
) -> Result<(), ApiError>
where
    Ask: FnOnce(&crate::plugins::LoadedRail) -> Result<Result<RailOutcome, Failure>, PluginError> + Send + 'static,
    Apply: FnOnce(&rusqlite::Connection, &str, RailOutcome, Schedule) -> Result<(), crate::store::StoreError>
        + Send
        + 'static,
{
    let MoneyOutCheck { table, id, rail, checks, created_at_ms, due_at } = check;
    let checks = checks.saturating_add(1);
    let now_ms = crate::clock::now_ms();
    let next = Schedule::After { due_at, next_at: now_ms.saturating_add(state.status_checks.delay_ms(checks)), checks };
    let too_old =
        now_ms.saturating_sub(created_at_ms) > i64::try_from(state.status_checks.give_up_after_ms).unwrap_or(i64::MAX);
    let rail = state.registry.rail_named(&rail);
    let Some(rail) = rail.filter(|_| !too_old) else {
        if too_old {
            tracing::error!(table, id, "status checks stopped; reconcile it with the provider");
            state.store.write(move |conn| payments::stop_checks(conn, table, &id)).await?;
        } else {
            state.store.write(move |conn| payments::schedule_in(conn, table, &id, next)).await?;
        }
        return Ok(());
    };
    let rail_name = rail.name().to_string();
    let answer = tokio::task::spawn_blocking(move || ask(&rail))
        .await
        .unwrap_or_else(|e| Err(PluginError::Host(format!("the call panicked: {e}"))));
    match answer {
        Ok(Ok(outcome)) => state.store.write(move |conn| apply(conn, &rail_name, outcome, next)).await?,
        other => {
            tracing::info!(table, id, ?other, "status unknown; checking later");
            state.store.write(move |conn| payments::schedule_in(conn, table, &id, next)).await?;
        }
    }
    Ok(())
}

async fn check_refund(state: &AppState, check: DueRefundCheck) -> Result<(), ApiError> {
    let DueRefundCheck { refund_id, rail, request, provider_reference, checks, created_at_ms, due_at } = check;
    let id = refund_id.clone();
    check_money_out(
        state,
        MoneyOutCheck { table: "refunds", id: refund_id, rail, checks, created_at_ms, due_at },
        move |rail| rail.refund_status(&request, provider_reference.as_deref()),
        move |conn, rail_name, outcome, next| {
            refunds::apply_check(conn, &id, rail_name, outcome, crate::clock::now_ms(), next)
        },
    )
    .await
}

async fn check_settlement(state: &AppState, check: DueSettlementCheck) -> Result<(), ApiError> {
    let DueSettlementCheck { settlement_id, rail, request, provider_reference, checks, created_at_ms, due_at } = check;
    let id = settlement_id.clone();
    check_money_out(
        state,
        MoneyOutCheck { table: "settlements", id: settlement_id, rail, checks, created_at_ms, due_at },
        move |rail| rail.payout_status(&request, provider_reference.as_deref()),
        move |conn, _rail_name, outcome, next| settlements::apply(conn, &id, outcome, crate::clock::now_ms(), next),
    )
    .await
}

/// `POST|PUT /v1/callbacks/{plugin}`: hands a provider's callback to the
/// plugin it names, and applies what the plugin makes of it.
/// A plugin's answer to a callback from its provider or channel, or the
/// error the sender gets. Whoever sent it has no API key: they learn a code,
/// never the plugin's message (it may describe the operator's configuration).
pub(crate) fn callback_taken<T>(plugin: &str, answer: Result<Result<T, Failure>, PluginError>) -> Result<T, ApiError> {
    match answer {
        Err(plugin_error) => {
            tracing::warn!(plugin, error = %plugin_error, "callback: the plugin failed");
            Err(ApiError::CallbackFailed(format!("the plugin {}", plugin_error.kind())))
        }
        Ok(Err(failure)) => {
            tracing::warn!(plugin, code = %failure.code, message = %failure.message, "callback refused by its plugin");
            Err(if failure.retryable {
                ApiError::CallbackFailed(failure.code)
            } else {
                ApiError::CallbackRejected(failure.code)
            })
        }
        Ok(Ok(taken)) => Ok(taken),
    }
}

pub async fn receive_callback(
    state: &AppState,
    plugin: &str,
    headers: Vec<(String, String)>,
    query: String,
    body: Vec<u8>,
) -> Result<Value, ApiError> {
    let rail = state.registry.rail_for_plugin(plugin).ok_or(ApiError::NotFound { what: "callback endpoint" })?;
    let _permit =
        CALLBACKS_IN_FLIGHT.try_acquire().map_err(|_| ApiError::CallbackFailed("too many callbacks at once".into()))?;
    let rail_name = rail.name().to_string();
    let callback = Callback { headers, query, body };
    let answer = tokio::task::spawn_blocking(move || rail.handle_callback(&callback))
        .await
        .unwrap_or_else(|e| Err(PluginError::Host(format!("the call panicked: {e}"))));
    let event = callback_taken(plugin, answer)?;
    let report = match event {
        CallbackEvent::Payment(report) => report,
        CallbackEvent::Ignored => return Ok(json!({ "received": true, "status": "ignored" })),
        CallbackEvent::DisputeOpened(notice) => {
            let applied = state
                .store
                .write(move |conn| disputes::open(conn, &rail_name, &notice, crate::clock::now_ms()))
                .await?;
            if let DisputeApplied::Refused(why) = &applied {
                // A real chargeback the gateway cannot attach: someone must look.
                tracing::error!(plugin, why, "dispute notice refused; reconcile it with the provider");
            } else {
                tracing::info!(plugin, ?applied, "provider callback: dispute");
            }
            return match applied {
                DisputeApplied::Opened(id) => Ok(json!({ "received": true, "dispute": id })),
                DisputeApplied::AlreadyOpen(id) => {
                    Ok(json!({ "received": true, "dispute": id, "status": "already_open" }))
                }
                DisputeApplied::Refused(why) => Err(ApiError::CallbackRejected(why.into())),
            };
        }
    };
    let payment_id = report.payment_id.clone();
    // "Still processing" from a callback is a prompt (some providers' callbacks
    // carry no outcome the plugin can trust): check the payment soon, at
    // most once per prompt interval however many callbacks come.
    let applied = state
        .store
        .write(move |conn| {
            let now_ms = crate::clock::now_ms();
            let next = Schedule::Prompt(now_ms.saturating_add(PROMPT_DELAY_MS));
            payments::apply_later_report(conn, &payment_id, &rail_name, report.outcome, now_ms, next)
        })
        .await?;
    tracing::info!(plugin, payment = %report.payment_id, ?applied, "provider callback");
    match applied {
        ReportApplied::Status(status) => Ok(json!({ "received": true, "status": status })),
        ReportApplied::AlreadyFinal => Ok(json!({ "received": true, "status": "already_final" })),
        ReportApplied::NotThisRail => {
            Err(ApiError::CallbackRejected("no payment of this rail has the id the callback names".into()))
        }
        ReportApplied::ReferenceMismatch => {
            Err(ApiError::CallbackRejected("the callback's provider reference is not the payment's".into()))
        }
    }
}
