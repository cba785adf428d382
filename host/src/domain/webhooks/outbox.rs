//! The outbox's deliveries: one per event and endpoint, leased by the
//! delivery worker before each attempt (its next attempt pushed past the
//! send timeout, so a crash mid-send only means it is sent again later: at
//! least once), every attempt logged, retried on the published schedule.
//! This module owns `webhook_deliveries` and `webhook_attempts`.

use rand::Rng;
use rusqlite::{Connection, params};
use serde::Serialize;

use crate::store::StoreError;
use crate::values::clock::{rfc3339, serialize_rfc3339};
use crate::values::status::DeliveryStatus;

/// Queues the event's delivery to an endpoint, due now.
pub fn queue(conn: &Connection, event_id: &str, endpoint_id: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, status, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![
        crate::values::ids::new_id("whd"),
        event_id,
        endpoint_id,
        DeliveryStatus::Pending,
        now_ms
    ])?;
    Ok(())
}

/// Makes every delivery of an event (to endpoints not deleted) due now,
/// with a fresh retry schedule.
pub fn redeliver(conn: &Connection, event_id: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET status = ?2, next_attempt_at = ?3, attempts = 0
         WHERE event_id = ?1 AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE deleted_at IS NULL)",
    )?
    .execute(params![event_id, DeliveryStatus::Pending, now_ms])?;
    Ok(())
}

/// One delivery as the event object shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: String,
    pub endpoint_id: String,
    pub attempt_count: i64,
    /// While pending.
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub delivered_at: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
}

/// One attempt in a delivery's log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    #[serde(rename = "attempted_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub attempted_at_ms: i64,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

/// An event's deliveries, each with its attempts.
pub fn deliveries(conn: &Connection, event_id: &str) -> Result<Vec<Delivery>, StoreError> {
    let mut deliveries = conn
        .prepare_cached(
            "SELECT id, endpoint_id, status, attempts, next_attempt_at, delivered_at FROM webhook_deliveries
             WHERE event_id = ?1 ORDER BY created_at, id",
        )?
        .query_map(params![event_id], |r| {
            let status: DeliveryStatus = r.get(2)?;
            let next_attempt_at: Option<i64> = r.get(4)?;
            Ok(Delivery {
                id: r.get(0)?,
                endpoint_id: r.get(1)?,
                attempt_count: r.get(3)?,
                next_attempt_at: next_attempt_at.filter(|_| status == DeliveryStatus::Pending).map(rfc3339),
                delivered_at: r.get::<_, Option<i64>>(5)?.map(rfc3339),
                status,
                attempts: Vec::new(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for delivery in &mut deliveries {
        delivery.attempts = conn
            .prepare_cached(
                "SELECT attempted_at, status_code, latency_ms, response_excerpt, error FROM webhook_attempts
                 WHERE delivery_id = ?1 ORDER BY id",
            )?
            .query_map(params![delivery.id], |r| {
                Ok(Attempt {
                    attempted_at_ms: r.get(0)?,
                    status_code: r.get(1)?,
                    latency_ms: r.get(2)?,
                    response_excerpt: r.get(3)?,
                    error: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
    }
    Ok(deliveries)
}

/// A leased delivery with everything needed to send it.
#[derive(Debug, Clone)]
pub struct Due {
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub url: String,
    /// The endpoint's secret, and its previous one while the rotation overlaps.
    pub secrets: Vec<String>,
    pub attempts: u32,
    pub endpoint_deleted: bool,
    /// The endpoint's mode: live deliveries go over HTTPS only.
    pub mode: crate::values::mode::Mode,
    /// The `next_attempt_at` the lease set.
    pub lease_ms: i64,
}

/// Takes up to `limit` due deliveries and pushes their next attempt to
/// `lease_ms`.
pub fn lease_due(conn: &Connection, now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<Due>, StoreError> {
    let due: Vec<Due> = conn
        .prepare_cached(
            "SELECT d.id, d.event_id, e.type, e.payload, w.url, w.secret, w.previous_secret,
                    w.previous_secret_expires_at, d.attempts, w.deleted_at IS NOT NULL, w.mode
             FROM webhook_deliveries d
             JOIN events e ON e.id = d.event_id
             JOIN webhook_endpoints w ON w.id = d.endpoint_id
             WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?1
             ORDER BY d.next_attempt_at LIMIT ?2",
        )?
        .query_map(params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            let mut secrets = vec![r.get::<_, String>(5)?];
            let previous: Option<String> = r.get(6)?;
            let previous_expires_ms: Option<i64> = r.get(7)?;
            if let (Some(previous), Some(expires_ms)) = (previous, previous_expires_ms)
                && expires_ms > now_ms
            {
                secrets.push(previous);
            }
            Ok(Due {
                delivery_id: r.get(0)?,
                event_id: r.get(1)?,
                event_type: r.get(2)?,
                payload: r.get(3)?,
                url: r.get(4)?,
                secrets,
                attempts: r.get(8)?,
                endpoint_deleted: r.get(9)?,
                mode: r.get(10)?,
                lease_ms,
            })
        })?
        .collect::<Result<_, _>>()?;
    for delivery in &due {
        conn.prepare_cached("UPDATE webhook_deliveries SET next_attempt_at = ?2 WHERE id = ?1")?
            .execute(params![delivery.delivery_id, lease_ms])?;
    }
    Ok(due)
}

/// Hands leases back (a stopping worker): due now again, unless something
/// changed them since.
pub fn release(conn: &Connection, leases: &[(String, i64)], now_ms: i64) -> Result<(), StoreError> {
    for (id, lease_ms) in leases {
        conn.prepare_cached(
            "UPDATE webhook_deliveries SET next_attempt_at = ?3 WHERE id = ?1 AND next_attempt_at = ?2",
        )?
        .execute(params![id, lease_ms, now_ms])?;
    }
    Ok(())
}

/// What one attempt got.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub excerpt: Option<String>,
    pub error: Option<String>,
}

/// Logs an attempt and decides: delivered, retried after the next delay of
/// `retry_delays_ms`, or failed for good (the schedule ran out, or
/// `final_failure`).
pub fn record(
    conn: &Connection,
    due: &Due,
    attempt: &AttemptResult,
    retry_delays_ms: &[u64],
    final_failure: bool,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, latency_ms, response_excerpt, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        due.delivery_id,
        now_ms,
        attempt.status_code,
        attempt.latency_ms,
        attempt.excerpt,
        attempt.error
    ])?;
    let attempts = due.attempts + 1;
    let delivered = attempt.status_code.is_some_and(|s| (200..300).contains(&s));
    let retry_delay_ms = retry_delays_ms.get(due.attempts as usize).copied().filter(|_| !final_failure);
    let (status, next_attempt_at, delivered_at) = match (delivered, retry_delay_ms) {
        (true, _) => (DeliveryStatus::Delivered, None, Some(now_ms)),
        (false, Some(delay_ms)) => (DeliveryStatus::Pending, Some(now_ms + jittered(delay_ms)), None),
        (false, None) => (DeliveryStatus::Failed, None, None),
    };
    // Only if our lease still stands: a manual redelivery in the meantime
    // reset the delivery, and its fresh schedule must not be overwritten.
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, delivered_at = ?5
         WHERE id = ?1 AND next_attempt_at = ?6",
    )?
    .execute(params![due.delivery_id, status, attempts, next_attempt_at, delivered_at, due.lease_ms])?;
    Ok(())
}

/// The delay with ±10% jitter, so retries from many events spread out.
fn jittered(delay_ms: u64) -> i64 {
    let tenth = delay_ms / 10;
    let delay = delay_ms - tenth + rand::rng().random_range(0..=2 * tenth);
    i64::try_from(delay).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let d = super::jittered(10_000);
            assert!((9_000..=11_000).contains(&d), "{d}");
        }
        assert_eq!(super::jittered(0), 0);
    }
}
