//! Messages to customers through the mode's messenger plugin
//! (`wit/messaging`). The host decides what to say; a messenger only
//! delivers. Each message is recorded before it is sent (its text only in
//! test mode, where `GET /v1/test/messages` lists it) and its outcome after.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::config::TransferSettings;
use crate::plugins::{Delivery, Failure, LoadedMessenger, Message};
use crate::store::{Store, StoreError};
use crate::values::clock::{Clock, serialize_rfc3339};
use crate::values::error::ApiError;
use crate::values::failure::FailureReason;
use crate::values::mode::{Mode, Tenant};
use crate::values::status::{MessageStatus, ObjectType};

/// The name the sandbox messenger gives itself: it never serves live mode.
pub const SANDBOX_MESSENGER: &str = "sandbox";

/// The messenger bound to each mode, and every one loaded (callbacks reach
/// them by plugin name).
#[derive(Clone, Default)]
pub struct Messengers {
    test: Option<Arc<LoadedMessenger>>,
    live: Option<Arc<LoadedMessenger>>,
    loaded: Vec<Arc<LoadedMessenger>>,
}

impl Messengers {
    /// Binds the messengers `settings` name (plugin file stems) among the
    /// loaded ones. A missing test messenger only disables test transfers to
    /// new recipients; a named live one that is missing stops the start.
    pub fn bind(settings: &TransferSettings, loaded: &[Arc<LoadedMessenger>]) -> anyhow::Result<Messengers> {
        let find = |name: &str| loaded.iter().find(|m| m.plugin_name() == name).cloned();
        let test = match settings.messenger_test.as_deref() {
            None => None,
            Some(name) => {
                let found = find(name);
                if found.is_none() {
                    tracing::warn!(
                        messenger = name,
                        "transfers.messenger_test is not loaded: test transfers reach registered customers only"
                    );
                }
                if let Some(messenger) = &found {
                    anyhow::ensure!(
                        messenger.mode() == Mode::Test,
                        "transfers.messenger_test: {name} is configured for live mode (plugins.{name}.mode), so it \
                         never carries test messages"
                    );
                }
                found
            }
        };
        let live = match settings.messenger_live.as_deref() {
            None => None,
            Some(name) => {
                let messenger = find(name).ok_or_else(|| {
                    anyhow::anyhow!("transfers.messenger_live names {name:?}, but no such messenger plugin is loaded")
                })?;
                anyhow::ensure!(
                    messenger.info.name != SANDBOX_MESSENGER,
                    "transfers.messenger_live: the sandbox messenger can never reach live customers"
                );
                anyhow::ensure!(
                    messenger.mode() == Mode::Live,
                    "transfers.messenger_live: {name} is configured for test mode; set plugins.{name}.mode = \"live\" \
                     with its production credentials"
                );
                Some(messenger)
            }
        };
        Ok(Messengers { test, live, loaded: loaded.to_vec() })
    }

    /// The loaded messenger whose component is `plugin.wasm`.
    pub fn by_plugin(&self, plugin: &str) -> Option<&Arc<LoadedMessenger>> {
        self.loaded.iter().find(|m| m.plugin_name() == plugin)
    }

    pub fn for_mode(&self, mode: Mode) -> Option<&Arc<LoadedMessenger>> {
        match mode {
            Mode::Test => self.test.as_ref(),
            Mode::Live => self.live.as_ref(),
        }
    }
}

/// What a message is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A transfer's claim code.
    Transfer(String),
    /// An approval's code.
    Approval(String),
}

/// A message to record and send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: String,
    pub tenant: Tenant,
    pub subject: Subject,
    pub to: String,
    pub template: String,
    pub parameters: Vec<String>,
    pub text: String,
}

/// How a send ended.
#[derive(Debug)]
pub enum SendOutcome {
    Sent,
    /// The channel refused for good (e.g. the number is not on WhatsApp).
    Refused(Failure),
    /// Nothing definite: the channel or the plugin may do better later.
    Failed(String),
}

/// Records a message about to be sent, inside the caller's write.
pub fn record(conn: &Connection, message: &Outgoing, messenger: &str, now_ms: i64) -> Result<(), StoreError> {
    let text = (message.tenant.mode == Mode::Test).then_some(message.text.as_str());
    let (transfer_id, approval_id) = match &message.subject {
        Subject::Transfer(id) => (Some(id), None),
        Subject::Approval(id) => (None, Some(id)),
    };
    conn.prepare_cached(
        "INSERT INTO messages (id, merchant_id, mode, transfer_id, approval_id, recipient_phone, template, text,
                               messenger, status, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
    )?
    .execute(params![
        message.id,
        message.tenant.merchant_id,
        message.tenant.mode,
        transfer_id,
        approval_id,
        message.to,
        message.template,
        text,
        messenger,
        MessageStatus::Sending,
        now_ms
    ])?;
    Ok(())
}

/// Sends a recorded message and records how it went.
pub async fn deliver(
    store: &Store,
    clock: &Clock,
    messenger: Arc<LoadedMessenger>,
    message: Outgoing,
) -> Result<SendOutcome, ApiError> {
    let plugin_message = Message {
        message_id: message.id.clone(),
        to: message.to.clone(),
        template: message.template.clone(),
        parameters: message.parameters.clone(),
        text: message.text.clone(),
    };
    let answer = crate::plugins::call_blocking(move || messenger.send(&plugin_message)).await;
    let (outcome, status, reference, failure) = match answer {
        Ok(Ok(sent)) => (SendOutcome::Sent, MessageStatus::Sent, sent.provider_reference, None),
        Ok(Err(failure)) if !failure.retryable => {
            let recorded = (failure.code.clone(), failure.message.clone());
            (SendOutcome::Refused(failure), MessageStatus::Failed, None, Some(recorded))
        }
        Ok(Err(failure)) => {
            let why = format!("{}: {}", failure.code, failure.message);
            (SendOutcome::Failed(why), MessageStatus::Failed, None, Some((failure.code, failure.message)))
        }
        Err(err) => {
            let why = err.to_string();
            (SendOutcome::Failed(why.clone()), MessageStatus::Failed, None, Some(("PLUGIN_ERROR".to_string(), why)))
        }
    };
    let (id, clock) = (message.id, clock.clone());
    store
        .write(move |conn| {
            let (code, text) = failure.unzip();
            conn.prepare_cached(
                "UPDATE messages SET status = ?2, provider_reference = ?3, failure_code = ?4, failure_message = ?5,
                        updated_at = ?6
                 WHERE id = ?1",
            )?
            .execute(params![id, status, reference, code, text, clock.now_ms()])?;
            Ok(())
        })
        .await?;
    Ok(outcome)
}

/// Records what a messenger's channel reported of one of its messages:
/// `delivered`, or `failed`. Returns the transfer to give up on when the
/// failure is final (the number can never be reached). A report for a
/// message this messenger did not send changes nothing.
pub fn record_delivery(
    conn: &Connection,
    messenger: &str,
    reference: &str,
    delivery: &Delivery,
    now_ms: i64,
) -> Result<Option<String>, StoreError> {
    let found: Option<(String, Option<String>)> = conn
        .prepare_cached("SELECT id, transfer_id FROM messages WHERE messenger = ?1 AND provider_reference = ?2")?
        .query_row(params![messenger, reference], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((id, transfer_id)) = found else {
        tracing::info!(messenger, reference, "delivery report for a message we did not send; ignored");
        return Ok(None);
    };
    match delivery {
        Delivery::Delivered => {
            conn.prepare_cached("UPDATE messages SET status = ?2, updated_at = ?3 WHERE id = ?1")?.execute(params![
                id,
                MessageStatus::Delivered,
                now_ms
            ])?;
            Ok(None)
        }
        Delivery::Failed(failure) => {
            conn.prepare_cached(
                "UPDATE messages SET status = ?2, failure_code = ?3, failure_message = ?4, updated_at = ?5
                 WHERE id = ?1",
            )?
            .execute(params![id, MessageStatus::Failed, failure.code, failure.message, now_ms])?;
            Ok(transfer_id.filter(|_| !failure.retryable))
        }
    }
}

/// A transfer's claim messages: how many were sent, and the newest one's
/// status and when it last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesSent {
    pub count: i64,
    pub last: Option<(MessageStatus, i64)>,
}

/// What was sent about each of `transfer_ids`, in their order.
pub fn sent_for_transfers(conn: &Connection, transfer_ids: &[String]) -> Result<Vec<MessagesSent>, StoreError> {
    let ids = serde_json::to_string(transfer_ids).expect("strings serialise");
    let sent = conn
        .prepare_cached(
            "SELECT (SELECT COUNT(*) FROM messages m WHERE m.transfer_id = t.value),
                    (SELECT m.status FROM messages m WHERE m.transfer_id = t.value
                     ORDER BY m.created_at DESC, m.rowid DESC LIMIT 1),
                    (SELECT m.updated_at FROM messages m WHERE m.transfer_id = t.value
                     ORDER BY m.created_at DESC, m.rowid DESC LIMIT 1)
             FROM json_each(?1) t ORDER BY t.key",
        )?
        .query_map(params![ids], |r| {
            let last = match (r.get::<_, Option<MessageStatus>>(1)?, r.get::<_, Option<i64>>(2)?) {
                (Some(status), Some(at_ms)) => Some((status, at_ms)),
                _ => None,
            };
            Ok(MessagesSent { count: r.get(0)?, last })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(sent)
}

/// The most messages one list returns.
pub const LIST_LIMIT: usize = 100;

/// What the sandbox would have sent to customers for the tenant's test
/// transfers and approvals (optionally to one phone), newest first, at most `LIST_LIMIT`;
/// and whether there are more.
pub fn list(
    conn: &Connection,
    tenant: &Tenant,
    phone: Option<&str>,
) -> Result<(Vec<SandboxMessage>, bool), StoreError> {
    let mut messages = conn
        .prepare_cached(
            "SELECT id, transfer_id, approval_id, recipient_phone, template, text, messenger, status,
                    provider_reference, failure_code, failure_message, created_at
             FROM messages
             WHERE merchant_id = ?1 AND mode = ?2 AND (?3 IS NULL OR recipient_phone = ?3)
             ORDER BY created_at DESC, rowid DESC LIMIT ?4",
        )?
        .query_map(params![tenant.merchant_id, tenant.mode, phone, (LIST_LIMIT + 1) as i64], |row| {
            Ok(SandboxMessage {
                object: ObjectType::Message,
                id: row.get(0)?,
                transfer: row.get(1)?,
                approval: row.get(2)?,
                to: row.get(3)?,
                template: row.get(4)?,
                text: row.get(5)?,
                messenger: row.get(6)?,
                status: row.get(7)?,
                provider_reference: row.get(8)?,
                failure: FailureReason::from_columns(row.get(9)?, row.get(10)?),
                created_at_ms: row.get(11)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let has_more = messages.len() > LIST_LIMIT;
    messages.truncate(LIST_LIMIT);
    Ok((messages, has_more))
}

/// A message as the sandbox outbox shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SandboxMessage {
    object: ObjectType,
    pub id: String,
    /// The transfer whose claim code it carries, or the approval whose code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    pub to: String,
    pub template: String,
    pub text: Option<String>,
    pub messenger: String,
    pub status: MessageStatus,
    pub provider_reference: Option<String>,
    pub failure: Option<FailureReason>,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
}
