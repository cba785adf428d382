//! Webhooks: events go into a durable outbox in the same transaction as the
//! change they describe (`emit`), with one delivery per subscribed endpoint;
//! the delivery worker (`workers::webhooks`) sends them, signed
//! (`signing`), until the endpoint answers 2xx or the published retry
//! schedule runs out (`outbox`). Delivery is at least once; the event id is
//! the same on every retry. This module owns `webhook_endpoints` and
//! `events`; `outbox` owns `webhook_deliveries` and `webhook_attempts`.
//! Where a webhook may go at all: `targets`.

pub mod outbox;
pub mod signing;
pub mod targets;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::store::StoreError;
use crate::values::clock::{rfc3339, serialize_rfc3339};
use crate::values::mode::Tenant;
use crate::values::status::ObjectType;
use crate::values::text::text_enum;

/// Endpoints per merchant and mode.
pub const ENDPOINTS_MAX: i64 = 3;
pub const URL_CHARS_MAX: usize = 2_048;
/// How long a rotated-out secret keeps signing, unless the request says.
pub const ROTATION_OVERLAP_S_DEFAULT: i64 = 24 * 3600;
pub const ROTATION_OVERLAP_S_MAX: i64 = 7 * 24 * 3600;
/// What an endpoint subscribes to for every event type.
pub const EVERY_EVENT: &str = "*";

text_enum! {
    /// Every event type the gateway emits.
    pub enum EventType {
        PaymentSucceeded => "payment.succeeded",
        PaymentFailed => "payment.failed",
        RefundSucceeded => "refund.succeeded",
        RefundFailed => "refund.failed",
        DisputeOpened => "dispute.opened",
        SettlementPaid => "settlement.paid",
        SettlementFailed => "settlement.failed",
        TransferCompleted => "transfer.completed",
        TransferReturned => "transfer.returned",
        TransactionCompleted => "transaction.completed",
        TransactionFailed => "transaction.failed",
        TransactionRefunded => "transaction.refunded",
        TransactionCancelled => "transaction.cancelled",
        Ping => "ping",
    }
}

/// An event as delivered: the body every delivery of it sends.
#[derive(Serialize)]
struct Payload<'a, T: Serialize + ?Sized> {
    id: &'a str,
    event: EventType,
    created_at: String,
    livemode: bool,
    data: PayloadData<'a, T>,
}

#[derive(Serialize)]
struct PayloadData<'a, T: Serialize + ?Sized> {
    object: &'a T,
}

/// Writes an event for `object` (whose id is `object_id`) and queues a
/// delivery to every endpoint of the tenant that subscribes to it. Call it
/// inside the write that makes the change, so the event exists if and only
/// if the change does. `data.object` is the object the API returns.
pub fn emit(
    conn: &Connection,
    tenant: &Tenant,
    event: EventType,
    object_id: &str,
    object: &impl Serialize,
    now_ms: i64,
) -> Result<String, StoreError> {
    // `ping` goes only to the endpoint it tests (see `ping`).
    let endpoints = if event == EventType::Ping { Vec::new() } else { endpoints(conn, tenant)? };
    write_event(conn, tenant, event, object_id, object, &endpoints, now_ms)
}

/// [`emit`] for several events about one object (a payment's
/// `payment.succeeded` and `transaction.completed`): the tenant's endpoints
/// are read once and the object serialised once, for all of them.
pub fn emit_each(
    conn: &Connection,
    tenant: &Tenant,
    events: &[EventType],
    object_id: &str,
    object: &impl Serialize,
    now_ms: i64,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let object =
        serde_json::value::to_raw_value(object).map_err(|e| StoreError::Invariant(format!("event object: {e}")))?;
    let endpoints = endpoints(conn, tenant)?;
    for event in events {
        write_event(conn, tenant, *event, object_id, &*object, &endpoints, now_ms)?;
    }
    Ok(())
}

/// Writes one event and queues it for each of `endpoints` that subscribes.
fn write_event<T: Serialize + ?Sized>(
    conn: &Connection,
    tenant: &Tenant,
    event: EventType,
    object_id: &str,
    object: &T,
    endpoints: &[EndpointRow],
    now_ms: i64,
) -> Result<String, StoreError> {
    let id = crate::values::ids::new_id("evt");
    let payload = Payload {
        id: &id,
        event,
        created_at: rfc3339(now_ms),
        livemode: tenant.mode.is_live(),
        data: PayloadData { object },
    };
    let payload = serde_json::to_string(&payload).map_err(|e| StoreError::Invariant(format!("event payload: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO events (id, merchant_id, mode, type, object_id, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![id, tenant.merchant_id, tenant.mode, event, object_id, payload, now_ms])?;
    for endpoint in endpoints {
        if event != EventType::Ping && endpoint.events.iter().any(|e| e == EVERY_EVENT || e == event.as_str()) {
            outbox::queue(conn, &id, &endpoint.id, now_ms)?;
        }
    }
    Ok(id)
}

/// A webhook endpoint as stored.
#[derive(Debug, Clone)]
pub struct EndpointRow {
    pub id: String,
    pub tenant: Tenant,
    pub url: String,
    /// Event types, or `*`.
    pub events: Vec<String>,
    secret: String,
    previous_secret_expires_at_ms: Option<i64>,
    created_at_ms: i64,
}

const SELECT_ENDPOINT: &str = "SELECT id, merchant_id, mode, url, events, secret, previous_secret_expires_at, created_at \
     FROM webhook_endpoints";

fn endpoint_from_row(row: &rusqlite::Row) -> rusqlite::Result<EndpointRow> {
    let events: String = row.get(4)?;
    Ok(EndpointRow {
        id: row.get(0)?,
        tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
        url: row.get(3)?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        secret: row.get(5)?,
        previous_secret_expires_at_ms: row.get(6)?,
        created_at_ms: row.get(7)?,
    })
}

/// Without `ORDER BY`: with `ORDER BY created_at`, SQLite 3.54 prepared
/// this statement again whenever other values were bound to it (2
/// re-prepares in 3 uses by `sqlite3_stmt_status`; 0 without), which cost
/// the writer a sixth of its time under load. A tenant has three endpoints
/// at most; they are sorted in Rust.
fn tenant_endpoints_sql() -> String {
    format!("{SELECT_ENDPOINT} WHERE merchant_id = ?1 AND mode = ?2 AND deleted_at IS NULL")
}

/// The tenant's endpoints (not deleted), oldest first.
pub fn endpoints(conn: &Connection, tenant: &Tenant) -> Result<Vec<EndpointRow>, StoreError> {
    let mut found = conn
        .prepare_cached(&tenant_endpoints_sql())?
        .query_map(params![tenant.merchant_id, tenant.mode], endpoint_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    found.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
    Ok(found)
}

/// One of the tenant's endpoints (not deleted).
pub fn endpoint(conn: &Connection, tenant: &Tenant, id: &str) -> Result<Option<EndpointRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT_ENDPOINT} WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3 AND deleted_at IS NULL"
        ))?
        .query_row(params![id, tenant.merchant_id, tenant.mode], endpoint_from_row)
        .optional()?)
}

/// Adds an endpoint, refusing past `ENDPOINTS_MAX`; returns it with its secret.
pub fn create_endpoint(
    conn: &Connection,
    tenant: &Tenant,
    url: &str,
    events: &[String],
    now_ms: i64,
) -> Result<WebhookEndpoint, StoreError> {
    if i64::try_from(endpoints(conn, tenant)?.len()).unwrap_or(i64::MAX) >= ENDPOINTS_MAX {
        return Err(StoreError::rejected(crate::values::error::ApiError::WebhookEndpointLimit { max: ENDPOINTS_MAX }));
    }
    let id = crate::values::ids::new_id("we");
    let events = serde_json::to_string(events).expect("strings serialise");
    conn.prepare_cached(
        "INSERT INTO webhook_endpoints (id, merchant_id, mode, url, events, secret, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![id, tenant.merchant_id, tenant.mode, url, events, signing::new_secret(), now_ms])?;
    let endpoint = endpoint(conn, tenant, &id)?.ok_or_else(|| StoreError::Invariant("endpoint vanished".into()))?;
    Ok(endpoint.object(true))
}

/// Stops future deliveries to an endpoint; `false` if there is none.
pub fn delete_endpoint(conn: &Connection, tenant: &Tenant, id: &str, now_ms: i64) -> Result<bool, StoreError> {
    let deleted = conn
        .prepare_cached(
            "UPDATE webhook_endpoints SET deleted_at = ?4
             WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3 AND deleted_at IS NULL",
        )?
        .execute(params![id, tenant.merchant_id, tenant.mode, now_ms])?;
    Ok(deleted == 1)
}

/// A new secret signs from now on; the previous one keeps signing for
/// `overlap_s`. Returns the endpoint with its new secret.
pub fn rotate_secret(
    conn: &Connection,
    tenant: &Tenant,
    id: &str,
    overlap_s: i64,
    now_ms: i64,
) -> Result<Option<WebhookEndpoint>, StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = ?5, secret = ?4
             WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3 AND deleted_at IS NULL",
        )?
        .execute(params![
            id,
            tenant.merchant_id,
            tenant.mode,
            signing::new_secret(),
            now_ms.saturating_add(overlap_s.saturating_mul(1000))
        ])?;
    if updated == 0 {
        return Ok(None);
    }
    Ok(endpoint(conn, tenant, id)?.map(|e| e.object(true)))
}

/// A `ping` event to one endpoint only; `None` if there is no such endpoint.
pub fn ping(conn: &Connection, tenant: &Tenant, id: &str, now_ms: i64) -> Result<Option<Event>, StoreError> {
    let Some(endpoint) = endpoint(conn, tenant, id)? else { return Ok(None) };
    let event_id = emit(conn, tenant, EventType::Ping, id, &endpoint.object(false), now_ms)?;
    outbox::queue(conn, &event_id, id, now_ms)?;
    event(conn, tenant, &event_id)
}

/// Sends an event again, now, to every endpoint it was queued for (same
/// event id, a new attempt); `None` if the tenant has no such event.
pub fn redeliver(conn: &Connection, tenant: &Tenant, id: &str, now_ms: i64) -> Result<Option<Event>, StoreError> {
    if event(conn, tenant, id)?.is_none() {
        return Ok(None);
    }
    outbox::redeliver(conn, id, now_ms)?;
    event(conn, tenant, id)
}

/// An event of the tenant, as delivered, with its delivery log.
pub fn event(conn: &Connection, tenant: &Tenant, id: &str) -> Result<Option<Event>, StoreError> {
    let payload: Option<String> = conn
        .prepare_cached("SELECT payload FROM events WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3")?
        .query_row(params![id, tenant.merchant_id, tenant.mode], |r| r.get(0))
        .optional()?;
    let Some(payload) = payload else { return Ok(None) };
    let stored: StoredEvent = serde_json::from_str(&payload).map_err(|e| StoreError::Invariant(e.to_string()))?;
    Ok(Some(Event {
        id: stored.id,
        event: stored.event,
        created_at: stored.created_at,
        livemode: stored.livemode,
        data: stored.data,
        deliveries: outbox::deliveries(conn, id)?,
    }))
}

/// An event payload read back from the outbox.
#[derive(Deserialize)]
struct StoredEvent {
    id: String,
    event: String,
    created_at: String,
    livemode: bool,
    data: Box<RawValue>,
}

/// The event object: the payload every delivery sends, and the log of its
/// deliveries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Event {
    /// `evt_…`, the same on every delivery of it.
    pub id: String,
    #[schema(value_type = EventType)]
    pub event: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub livemode: bool,
    /// `{"object": …}`: the object the event is about, as the API returns
    /// it (for `ping`, the webhook endpoint).
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    /// One per endpoint the event was queued for, with its attempts.
    pub deliveries: Vec<outbox::Delivery>,
}

impl EndpointRow {
    /// The webhook endpoint object; the secret only when `with_secret`
    /// (the answers that make it).
    pub fn object(&self, with_secret: bool) -> WebhookEndpoint {
        WebhookEndpoint {
            object: ObjectType::WebhookEndpoint,
            id: self.id.clone(),
            url: self.url.clone(),
            events: self.events.clone(),
            livemode: self.tenant.mode.is_live(),
            previous_secret_expires_at: self.previous_secret_expires_at_ms.map(rfc3339),
            created_at_ms: self.created_at_ms,
            secret: with_secret.then(|| self.secret.clone()),
        }
    }
}

/// The webhook endpoint object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookEndpoint {
    object: ObjectType,
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub livemode: bool,
    /// Until when the secret replaced by the last rotation still signs
    /// too.
    #[schema(format = DateTime)]
    pub previous_secret_expires_at: Option<String>,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
    /// The signing secret: only in the answers that make it (create,
    /// rotate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// What deleting an endpoint answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeletedEndpoint {
    object: ObjectType,
    pub id: String,
    pub deleted: bool,
}

impl DeletedEndpoint {
    pub fn new(id: String) -> DeletedEndpoint {
        DeletedEndpoint { object: ObjectType::WebhookEndpoint, id, deleted: true }
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;
    use crate::values::mode::Mode;

    /// Every event of every payment reads its tenant's endpoints, in the
    /// writer: the statement must stay prepared whoever asks, not be parsed
    /// again for each tenant (SQLite re-prepares a statement whose plan
    /// depends on the values bound to it).
    #[test]
    fn reading_endpoints_keeps_its_statement_prepared() {
        let conn = crate::store::open_in_memory().unwrap();
        for merchant_id in ["mer_a", "mer_b", "mer_c"] {
            for mode in [Mode::Test, Mode::Live] {
                endpoints(&conn, &Tenant { merchant_id: merchant_id.into(), mode }).unwrap();
            }
        }
        let statement = conn.prepare_cached(&tenant_endpoints_sql()).unwrap();
        assert_eq!(statement.get_status(StatementStatus::RePrepare), 0);
    }
}
