//! Callbacks from providers and channels, at `/v1/callbacks/{plugin}`. They
//! carry no API key: the plugin they name authenticates and reads them. A
//! rail's callback settles a payment (through the lifecycle, so only a
//! processing payment of that same rail moves, and "still processing" only
//! brings its next status check forward), or opens a dispute; a biller's
//! settles a bill purchase the same way, a trader's a trade (or records a
//! crypto deposit); a messenger's reports what became of its messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::bills::BillPaymentRow;
use super::checks::Schedule;
use super::context::Context;
use super::disputes::{self, DisputeApplied};
use super::gift_cards::GiftCardSaleRow;
use super::lifecycle::RailOperation;
use super::lifecycle::{self, ReportApplied};
use super::payments::{self, PaymentRow};
use super::rmb::RmbPurchaseRow;
use super::transfers;
use crate::plugins::billers::{BillerCallback, BillerCallbackEvent};
use crate::plugins::traders::{TradeEvent, TraderCallback};
use crate::plugins::{
    Callback, CallbackEvent, Failure, LoadedBiller, LoadedMessenger, LoadedTrader, MessengerCallback, PluginError,
    TransactionStatus,
};
use crate::store::TenantRecord;
use crate::values::error::ApiError;
use crate::values::mode::Mode;
use crate::values::status::{BillStatus, CryptoStatus, GiftCardStatus, PaymentStatus, RmbStatus, TransactionKind};
use crate::values::text::text_enum;

/// Callbacks handled at once for each plugin. Each costs a plugin instance
/// and provider requests and needs no API key, so a flood must not take
/// every instance from payments, nor one rail's endpoint the slots of
/// another's; past this the sender is told to send it again.
pub const CALLBACKS_PER_PLUGIN: usize = 16;
/// A callback that leaves a payment processing moves its next check no
/// sooner than this: a prompt, which repeated callbacks cannot turn into a
/// stream of provider requests (a check moves the schedule past it).
const PROMPT_DELAY_MS: i64 = 1_000;

text_enum! {
    /// What a callback did other than settle a payment.
    pub enum Received {
        /// Authentic, but of no interest to the gateway.
        Ignored => "ignored",
        /// The dispute was already open (a repeated notice).
        AlreadyOpen => "already_open",
        /// The payment was already final; nothing changed.
        AlreadyFinal => "already_final",
    }
}

/// The answer a rail's provider gets.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CallbackAnswer {
    pub received: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AnswerStatus>,
    /// The dispute the callback opened (or found already open).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispute: Option<String>,
}

/// The payment's status after the callback, or what else it did.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum AnswerStatus {
    Payment(PaymentStatus),
    Bill(BillStatus),
    GiftCard(GiftCardStatus),
    Rmb(RmbStatus),
    Crypto(CryptoStatus),
    Received(Received),
}

/// A string: the status word of whatever the callback moved, or what else
/// it did (the words of every status it can be, once each).
impl utoipa::PartialSchema for AnswerStatus {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let mut words: Vec<&'static str> = Vec::new();
        let every = PaymentStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .chain(BillStatus::ALL.iter().map(|s| s.as_str()))
            .chain(GiftCardStatus::ALL.iter().map(|s| s.as_str()))
            .chain(RmbStatus::ALL.iter().map(|s| s.as_str()))
            .chain(CryptoStatus::ALL.iter().map(|s| s.as_str()))
            .chain(Received::ALL.iter().map(|s| s.as_str()));
        for word in every {
            if !words.contains(&word) {
                words.push(word);
            }
        }
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(words))
            .description(Some(
                "The status of the payment, bill, trade or deposit after the callback, or `ignored`, \
                 `already_open`, `already_final`.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for AnswerStatus {}

impl CallbackAnswer {
    fn status(status: AnswerStatus) -> CallbackAnswer {
        CallbackAnswer { received: true, status: Some(status), dispute: None }
    }
}

/// A plugin's answer to a callback, or the error its sender gets. Whoever
/// sent it has no API key: they learn a code, never the plugin's message
/// (it may describe the operator's configuration).
fn taken<T>(plugin: &str, answer: Result<Result<T, Failure>, PluginError>) -> Result<T, ApiError> {
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

/// Each plugin's callback slots (`CALLBACKS_PER_PLUGIN`). Only plugins that
/// exist get an entry, so the map stays as small as the plugin directory.
#[derive(Default)]
pub struct CallbackSlots {
    by_plugin: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl CallbackSlots {
    fn take(&self, plugin: &str) -> Result<OwnedSemaphorePermit, ApiError> {
        let slots = {
            let mut by_plugin = self.by_plugin.lock().expect("callback slots are never held across a panic");
            let slots =
                by_plugin.entry(plugin.to_string()).or_insert_with(|| Arc::new(Semaphore::new(CALLBACKS_PER_PLUGIN)));
            Arc::clone(slots)
        };
        slots.try_acquire_owned().map_err(|_| ApiError::CallbackFailed("too many callbacks at once".into()))
    }
}

/// Whether the payment `id` exists in `mode`: a rail configured for one
/// mode never moves a payment of the other (two files of one rail may
/// serve the two modes under the same name).
fn payment_in_mode(conn: &rusqlite::Connection, id: &str, mode: Mode) -> Result<bool, crate::store::StoreError> {
    Ok(PaymentRow::load(conn, id)?.is_some_and(|payment| payment.work.tenant.mode == mode))
}

/// Hands a provider's callback to the rail plugin it names (its file
/// stem), and applies what the plugin makes of it.
pub async fn from_rail(ctx: &Context, plugin: &str, callback: Callback) -> Result<CallbackAnswer, ApiError> {
    let rail = ctx.rails.rail_for_plugin(plugin).ok_or(ApiError::NotFound { what: "callback endpoint" })?;
    let _permit = ctx.callback_slots.take(plugin)?;
    let (rail_name, mode) = (rail.name().to_string(), rail.mode());
    let answer = crate::plugins::call_blocking(move || rail.handle_callback(&callback)).await;
    let clock = ctx.clock.clone();
    let report = match taken(plugin, answer)? {
        CallbackEvent::Payment(report) => report,
        CallbackEvent::Ignored => return Ok(CallbackAnswer::status(AnswerStatus::Received(Received::Ignored))),
        CallbackEvent::DisputeOpened(notice) => {
            let applied = ctx
                .store
                .write(move |conn| {
                    if !payment_in_mode(conn, &notice.payment_id, mode)? {
                        return Ok(DisputeApplied::Refused("no payment of this rail has the id the dispute names"));
                    }
                    disputes::open(conn, &rail_name, &notice, clock.now_ms())
                })
                .await?;
            if let DisputeApplied::Refused(why) = &applied {
                // A real chargeback the gateway cannot attach: someone must look.
                tracing::error!(plugin, why, "dispute notice refused; reconcile it with the provider");
            } else {
                tracing::info!(plugin, ?applied, "provider callback: dispute");
            }
            return match applied {
                DisputeApplied::Opened(id) => Ok(CallbackAnswer { received: true, status: None, dispute: Some(id) }),
                DisputeApplied::AlreadyOpen(id) => Ok(CallbackAnswer {
                    received: true,
                    status: Some(AnswerStatus::Received(Received::AlreadyOpen)),
                    dispute: Some(id),
                }),
                DisputeApplied::Refused(why) => Err(ApiError::CallbackRejected(why.into())),
            };
        }
    };
    let payment_id = report.payment_id.clone();
    // "Still processing" from a callback is a prompt (some providers'
    // callbacks carry no outcome the plugin can trust): check the payment
    // soon, at most once per prompt interval however many callbacks come.
    let applied = ctx
        .store
        .write(move |conn| {
            if !payment_in_mode(conn, &payment_id, mode)? {
                return Ok(ReportApplied::NotThisRail);
            }
            let now_ms = clock.now_ms();
            let next = Schedule::Prompt(now_ms.saturating_add(PROMPT_DELAY_MS));
            lifecycle::apply_later_report::<PaymentRow>(conn, &payment_id, &rail_name, report.outcome, now_ms, next)
        })
        .await?;
    tracing::info!(plugin, payment = %report.payment_id, ?applied, "provider callback");
    match applied {
        ReportApplied::Applied(status) => {
            Ok(CallbackAnswer::status(AnswerStatus::Payment(payments::status_for(status))))
        }
        ReportApplied::AlreadyFinal => Ok(CallbackAnswer::status(AnswerStatus::Received(Received::AlreadyFinal))),
        ReportApplied::NotThisRail => {
            Err(ApiError::CallbackRejected("no payment of this rail has the id the callback names".into()))
        }
        ReportApplied::ReferenceMismatch => {
            Err(ApiError::CallbackRejected("the callback's provider reference is not the payment's".into()))
        }
    }
}

/// Hands a provider's callback to the biller plugin it names, and applies
/// the purchase's outcome through the lifecycle: only a processing purchase
/// made with that same biller file, in its mode, moves.
pub async fn from_biller(
    ctx: &Context,
    biller: Arc<LoadedBiller>,
    callback: BillerCallback,
) -> Result<CallbackAnswer, ApiError> {
    let plugin = biller.plugin_name().to_string();
    let _permit = ctx.callback_slots.take(&plugin)?;
    let mode = biller.mode();
    let answer = crate::plugins::call_blocking(move || biller.handle_callback(&callback)).await;
    let report = match taken(&plugin, answer)? {
        BillerCallbackEvent::Purchase(report) => report,
        BillerCallbackEvent::Ignored => return Ok(CallbackAnswer::status(AnswerStatus::Received(Received::Ignored))),
    };
    let applied =
        apply_report::<BillPaymentRow>(ctx, mode, report.purchase_id.clone(), plugin.clone(), report.outcome).await?;
    tracing::info!(plugin, purchase = %report.purchase_id, ?applied, "biller callback");
    match applied {
        ReportApplied::Applied(reported) => Ok(CallbackAnswer::status(AnswerStatus::Bill(
            BillPaymentRow::final_status(reported).unwrap_or(BillStatus::Processing),
        ))),
        ReportApplied::AlreadyFinal => Ok(CallbackAnswer::status(AnswerStatus::Received(Received::AlreadyFinal))),
        ReportApplied::NotThisRail => {
            Err(ApiError::CallbackRejected("no purchase of this biller has the id the callback names".into()))
        }
        ReportApplied::ReferenceMismatch => {
            Err(ApiError::CallbackRejected("the callback's provider reference is not the purchase's".into()))
        }
    }
}

/// Applies a plugin's report on the operation `id` through the lifecycle,
/// promptly checking one left processing: only an operation of that same
/// plugin file, in its mode, moves.
async fn apply_report<O: RailOperation>(
    ctx: &Context,
    mode: Mode,
    id: String,
    plugin: String,
    outcome: O::Outcome,
) -> Result<ReportApplied, ApiError> {
    let clock = ctx.clock.clone();
    Ok(ctx
        .store
        .write(move |conn| {
            if O::load(conn, &id)?.is_none_or(|op| op.tenant().mode != mode) {
                return Ok(ReportApplied::NotThisRail);
            }
            let now_ms = clock.now_ms();
            let next = Schedule::Prompt(now_ms.saturating_add(PROMPT_DELAY_MS));
            lifecycle::apply_later_report::<O>(conn, &id, &plugin, outcome, now_ms, next)
        })
        .await?)
}

/// Hands a desk's or custody provider's callback to the trader plugin it
/// names: a trade's report moves a pending gift card sale or a processing
/// RMB purchase of that trader file, in its mode, through the lifecycle; a
/// deposit's is recorded for the merchant whose address it reached
/// (`crypto::reported`: once per deposit id).
pub async fn from_trader(
    ctx: &Context,
    trader: Arc<LoadedTrader>,
    callback: TraderCallback,
) -> Result<CallbackAnswer, ApiError> {
    let plugin = trader.plugin_name().to_string();
    let _permit = ctx.callback_slots.take(&plugin)?;
    let mode = trader.mode();
    let caller = Arc::clone(&trader);
    let answer = crate::plugins::call_blocking(move || caller.handle_callback(&callback)).await;
    let report = match taken(&plugin, answer)? {
        TradeEvent::Trade(report) => report,
        TradeEvent::Deposit(deposit) => {
            let status = super::crypto::reported(ctx, &trader, deposit).await?;
            return Ok(CallbackAnswer::status(AnswerStatus::Crypto(status)));
        }
        TradeEvent::Ignored => return Ok(CallbackAnswer::status(AnswerStatus::Received(Received::Ignored))),
    };
    let id = report.trade_id.clone();
    let (applied, status) = match TransactionKind::of_id(&id) {
        Some(TransactionKind::GiftCardSale) => {
            super::gift_cards::fits(ctx, id.clone(), &report.outcome).await?;
            let applied =
                apply_report::<GiftCardSaleRow>(ctx, mode, id.clone(), plugin.clone(), report.outcome).await?;
            let status =
                |s| AnswerStatus::GiftCard(GiftCardSaleRow::final_status(s).unwrap_or(GiftCardStatus::Pending));
            (applied, status as fn(TransactionStatus) -> AnswerStatus)
        }
        Some(TransactionKind::RmbPurchase) => {
            let applied = apply_report::<RmbPurchaseRow>(ctx, mode, id.clone(), plugin.clone(), report.outcome).await?;
            let status = |s| AnswerStatus::Rmb(RmbPurchaseRow::final_status(s).unwrap_or(RmbStatus::Processing));
            (applied, status as fn(TransactionStatus) -> AnswerStatus)
        }
        _ => return Err(ApiError::CallbackRejected("no trade of this trader has the id the callback names".into())),
    };
    tracing::info!(plugin, trade = %id, ?applied, "trader callback");
    match applied {
        ReportApplied::Applied(reported) => Ok(CallbackAnswer::status(status(reported))),
        ReportApplied::AlreadyFinal => Ok(CallbackAnswer::status(AnswerStatus::Received(Received::AlreadyFinal))),
        ReportApplied::NotThisRail => {
            Err(ApiError::CallbackRejected("no trade of this trader has the id the callback names".into()))
        }
        ReportApplied::ReferenceMismatch => {
            Err(ApiError::CallbackRejected("the callback's provider reference is not the trade's".into()))
        }
    }
}

/// Hands a channel's callback to its messenger and records the delivery
/// reports it read: `delivered`, or `failed` (a final failure gives up on
/// the transfer's recipient; another is resent by the sweep). Answers with
/// the status and text the messenger chose.
pub async fn from_messenger(
    ctx: &Context,
    messenger: Arc<LoadedMessenger>,
    callback: MessengerCallback,
) -> Result<(u16, String), ApiError> {
    let plugin = messenger.plugin_name().to_string();
    let _permit = ctx.callback_slots.take(&plugin)?;
    let answer = crate::plugins::call_blocking(move || messenger.handle_callback(&callback)).await;
    let answer = taken(&plugin, answer)?;
    if !answer.reports.is_empty() {
        let (reports, clock) = (answer.reports, ctx.clock.clone());
        ctx.store
            .write(move |conn| {
                let now_ms = clock.now_ms();
                for report in &reports {
                    let unreachable = crate::domain::messaging::record_delivery(
                        conn,
                        &plugin,
                        &report.provider_reference,
                        &report.delivery,
                        now_ms,
                    )?;
                    if let Some(transfer_id) = unreachable {
                        transfers::give_up_on_recipient(conn, &transfer_id, now_ms)?;
                    }
                }
                Ok(())
            })
            .await?;
    }
    Ok((answer.status, answer.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_at_one_plugin_leaves_the_others_their_slots() {
        let slots = CallbackSlots::default();
        let held: Vec<_> = (0..CALLBACKS_PER_PLUGIN).map(|_| slots.take("mtn-momo").unwrap()).collect();
        assert!(matches!(slots.take("mtn-momo"), Err(ApiError::CallbackFailed(_))), "full: send it again later");
        assert!(slots.take("stripe-card").is_ok(), "another rail's callbacks are unaffected");
        drop(held);
        assert!(slots.take("mtn-momo").is_ok(), "slots come back when callbacks finish");
    }
}
