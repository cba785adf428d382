//! Messages to customers through the mode's messenger plugin
//! (`wit/messaging`). The host decides what to say; a messenger only
//! delivers. Each message is recorded before it is sent (its text only in
//! test mode, where `GET /v1/test/messages` lists it) and its outcome after.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Caller;
use crate::config::TransferSettings;
use crate::error::ApiError;
use crate::mode::Mode;
use crate::plugins::{Delivery, Failure, LoadedMessenger, Message, MessengerCallback, PluginError};
use crate::store::StoreError;

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
        let test = settings.messenger_test.as_deref().and_then(|name| {
            let found = find(name);
            if found.is_none() {
                tracing::warn!(
                    messenger = name,
                    "transfers.messenger_test is not loaded: test transfers reach registered customers only"
                );
            }
            found
        });
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

/// A message to record and send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: String,
    pub merchant_id: String,
    pub mode: Mode,
    pub transfer_id: String,
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
    let text = (message.mode == Mode::Test).then_some(message.text.as_str());
    conn.prepare_cached(
        "INSERT INTO messages (id, merchant_id, mode, transfer_id, recipient_phone, template, text, messenger,
                               status, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'sending', ?9, ?9)",
    )?
    .execute(params![
        message.id,
        message.merchant_id,
        message.mode.as_str(),
        message.transfer_id,
        message.to,
        message.template,
        text,
        messenger,
        now_ms
    ])?;
    Ok(())
}

/// Sends a recorded message and records how it went.
pub async fn deliver(
    state: &AppState,
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
    let answer = tokio::task::spawn_blocking(move || messenger.send(&plugin_message))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("messenger task: {e}")))?;
    let (delivery, status, reference, failure) = match answer {
        Ok(Ok(sent)) => (SendOutcome::Sent, "sent", sent.provider_reference, None),
        Ok(Err(failure)) if !failure.retryable => {
            let recorded = (failure.code.clone(), failure.message.clone());
            (SendOutcome::Refused(failure), "failed", None, Some(recorded))
        }
        Ok(Err(failure)) => {
            let why = format!("{}: {}", failure.code, failure.message);
            (SendOutcome::Failed(why), "failed", None, Some((failure.code, failure.message)))
        }
        Err(err) => {
            let why = err.to_string();
            (SendOutcome::Failed(why.clone()), "failed", None, Some(("PLUGIN_ERROR".to_string(), why)))
        }
    };
    let id = message.id;
    state
        .store
        .write(move |conn| {
            let (code, text) = failure.unzip();
            conn.prepare_cached(
                "UPDATE messages SET status = ?2, provider_reference = ?3, failure_code = ?4, failure_message = ?5,
                        updated_at = ?6
                 WHERE id = ?1",
            )?
            .execute(params![id, status, reference, code, text, crate::clock::now_ms()])?;
            Ok(())
        })
        .await?;
    Ok(delivery)
}

/// A request from a messenger's channel to `/v1/callbacks/{plugin}`.
pub struct IncomingCallback {
    pub method: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Hands a channel's callback to its messenger and records the delivery
/// reports it read: `delivered`, or `failed` (a final failure gives up on
/// the transfer's recipient; another is resent by the sweep). Answers with
/// the status and text the messenger chose. A report for a message this
/// messenger did not send changes nothing.
pub async fn receive_callback(
    state: &AppState,
    messenger: Arc<LoadedMessenger>,
    incoming: IncomingCallback,
) -> Result<(u16, String), ApiError> {
    let _permit = crate::rail_updates::CALLBACKS_IN_FLIGHT
        .try_acquire()
        .map_err(|_| ApiError::CallbackFailed("too many callbacks at once".into()))?;
    let plugin = messenger.plugin_name().to_string();
    let callback = MessengerCallback {
        method: incoming.method,
        query: incoming.query,
        headers: incoming.headers,
        body: incoming.body,
    };
    let answer = tokio::task::spawn_blocking(move || messenger.handle_callback(&callback))
        .await
        .unwrap_or_else(|e| Err(PluginError::Host(format!("the call panicked: {e}"))));
    let answer = crate::rail_updates::callback_taken(&plugin, answer)?;
    if !answer.reports.is_empty() {
        let reports = answer.reports;
        state
            .store
            .write(move |conn| {
                let now_ms = crate::clock::now_ms();
                for report in &reports {
                    record_delivery(conn, &plugin, &report.provider_reference, &report.delivery, now_ms)?;
                }
                Ok(())
            })
            .await?;
    }
    Ok((answer.status, answer.body))
}

/// Records what became of one message, inside the callback's write.
fn record_delivery(
    conn: &Connection,
    messenger: &str,
    reference: &str,
    delivery: &Delivery,
    now_ms: i64,
) -> Result<(), StoreError> {
    let found: Option<(String, String)> = conn
        .prepare_cached("SELECT id, transfer_id FROM messages WHERE messenger = ?1 AND provider_reference = ?2")?
        .query_row(params![messenger, reference], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((id, transfer_id)) = found else {
        tracing::info!(messenger, reference, "delivery report for a message we did not send; ignored");
        return Ok(());
    };
    match delivery {
        Delivery::Delivered => {
            conn.prepare_cached("UPDATE messages SET status = 'delivered', updated_at = ?2 WHERE id = ?1")?
                .execute(params![id, now_ms])?;
        }
        Delivery::Failed(failure) => {
            conn.prepare_cached(
                "UPDATE messages SET status = 'failed', failure_code = ?2, failure_message = ?3, updated_at = ?4
                 WHERE id = ?1",
            )?
            .execute(params![id, failure.code, failure.message, now_ms])?;
            if !failure.retryable {
                crate::transfers::give_up_on_recipient(conn, &transfer_id, now_ms)?;
            }
        }
    }
    Ok(())
}

/// The most messages one list returns.
const LIST_LIMIT: usize = 100;

/// `GET /v1/test/messages[?phone=…]`: what the sandbox would have sent to
/// customers for this merchant's test transfers, newest first (100 at most).
pub async fn list_test(state: &AppState, caller: &Caller, phone: Option<String>) -> Result<Value, ApiError> {
    if caller.mode != Mode::Test {
        return Err(ApiError::TestModeOnly);
    }
    let phone = phone
        .map(|p| {
            crate::phone::parse_e164(&p).map_err(|m| match p.starts_with(' ') {
                // A query string decodes `+` as a space.
                true => ApiError::invalid("phone", format!("{m}; in a query string, send + as %2B")),
                false => ApiError::invalid("phone", m),
            })
        })
        .transpose()?;
    let merchant = caller.merchant_id.clone();
    let mut messages = state
        .store
        .read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, transfer_id, recipient_phone, template, text, messenger, status, provider_reference,
                        failure_code, failure_message, created_at
                 FROM messages
                 WHERE merchant_id = ?1 AND mode = 'test' AND (?2 IS NULL OR recipient_phone = ?2)
                 ORDER BY created_at DESC, rowid DESC LIMIT ?3",
            )?;
            let rows = statement.query_map(params![merchant, phone, (LIST_LIMIT + 1) as i64], |row| {
                let failure = match row.get::<_, Option<String>>(8)? {
                    Some(code) => json!({ "code": code, "message": row.get::<_, Option<String>>(9)? }),
                    None => Value::Null,
                };
                Ok(json!({
                    "object": "message",
                    "id": row.get::<_, String>(0)?,
                    "transfer": row.get::<_, String>(1)?,
                    "to": row.get::<_, String>(2)?,
                    "template": row.get::<_, String>(3)?,
                    "text": row.get::<_, Option<String>>(4)?,
                    "messenger": row.get::<_, String>(5)?,
                    "status": row.get::<_, String>(6)?,
                    "provider_reference": row.get::<_, Option<String>>(7)?,
                    "failure": failure,
                    "created_at": crate::clock::rfc3339(row.get(10)?),
                }))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    let has_more = messages.len() > LIST_LIMIT;
    messages.truncate(LIST_LIMIT);
    Ok(json!({ "object": "list", "data": messages, "has_more": has_more }))
}
