//! Webhooks: events go into a durable outbox in the same transaction as the
//! change they describe (`emit`); the delivery worker (`delivery`) sends them,
//! signed (`signing`), until the merchant's endpoint answers 2xx or the
//! published retry schedule runs out. Delivery is at least once; the event id
//! is the same on every retry.

pub mod delivery;
pub mod signing;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::mode::Mode;
use crate::store::StoreError;
use crate::validate::{Fields, fail};

/// Endpoints per merchant and mode.
pub const ENDPOINTS_MAX: i64 = 3;
pub const URL_CHARS_MAX: usize = 2_048;
/// How long a rotated-out secret keeps signing, unless the request says.
pub const ROTATION_OVERLAP_S_DEFAULT: i64 = 24 * 3600;
pub const ROTATION_OVERLAP_S_MAX: i64 = 7 * 24 * 3600;

/// Every event type the gateway emits.
pub const EVENT_TYPES: &[&str] = &[
    "payment.succeeded",
    "payment.failed",
    "refund.succeeded",
    "refund.failed",
    "dispute.opened",
    "settlement.paid",
    "settlement.failed",
    "transfer.completed",
    "transfer.returned",
    "transaction.completed",
    "transaction.failed",
    "transaction.refunded",
    "transaction.cancelled",
    "ping",
];

/// Writes an event for `object` and queues a delivery to every endpoint of
/// the merchant and mode that subscribes to it. Call it inside the write that
/// makes the change, so the event exists if and only if the change does.
pub fn emit(
    conn: &Connection,
    merchant_id: &str,
    mode: Mode,
    event_type: &str,
    object: &Value,
    now_ms: i64,
) -> Result<String, StoreError> {
    debug_assert!(EVENT_TYPES.contains(&event_type), "unknown event type {event_type}");
    let id = crate::ids::new_id("evt");
    let payload = json!({
        "id": id,
        "event": event_type,
        "created_at": crate::clock::rfc3339(now_ms),
        "livemode": mode == Mode::Live,
        "data": { "object": object },
    });
    conn.prepare_cached(
        "INSERT INTO events (id, merchant_id, mode, type, object_id, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![id, merchant_id, mode.as_str(), event_type, object["id"].as_str(), payload.to_string(), now_ms])?;
    let endpoints: Vec<(String, String)> = conn
        .prepare_cached(
            "SELECT id, events FROM webhook_endpoints WHERE merchant_id = ?1 AND mode = ?2 AND deleted_at IS NULL",
        )?
        .query_map(params![merchant_id, mode.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (endpoint_id, events) in endpoints {
        let subscribed: Vec<String> = serde_json::from_str(&events).unwrap_or_default();
        // `ping` goes only to the endpoint it tests (see `ping`).
        if event_type != "ping" && subscribed.iter().any(|e| e == "*" || e == event_type) {
            queue_delivery(conn, &id, &endpoint_id, now_ms)?;
        }
    }
    Ok(id)
}

fn queue_delivery(conn: &Connection, event_id: &str, endpoint_id: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, status, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
    )?
    .execute(params![crate::ids::new_id("whd"), event_id, endpoint_id, now_ms])?;
    Ok(())
}

/// `POST /v1/webhook_endpoints`.
pub async fn create_endpoint(state: &AppState, caller: &Caller, body: &[u8]) -> Result<Value, ApiError> {
    let allow_private = state.webhook_settings.allow_private_targets;
    let fields = Fields::parse(body, &["url", "events"])?;
    let mut errors = fields.errors();
    let url = fields.string("url", URL_CHARS_MAX, true, &mut errors);
    if let Some(url) = &url {
        let valid = url.parse::<ureq::http::Uri>().ok().is_some_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
        });
        if !valid {
            fail(&mut errors, "url", "must be an absolute http:// or https:// URL");
        } else if !allow_private && names_internal_host(url) {
            fail(&mut errors, "url", "must be a public address, not loopback, private or link-local");
        }
    }
    let events: Vec<String> = match fields.get("/events") {
        None => {
            fail(&mut errors, "events", "is required: a list of event types, or [\"*\"] for all");
            vec![]
        }
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut events = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(e) if e == "*" || EVENT_TYPES.contains(&e) => events.push(e.to_string()),
                    _ => fail(
                        &mut errors,
                        "events",
                        format!("{item} is not an event type; known: {}", EVENT_TYPES.join(", ")),
                    ),
                }
            }
            events
        }
        Some(_) => {
            fail(&mut errors, "events", "must be a non-empty list of event types");
            vec![]
        }
    };
    let Some(url) = url.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let (merchant, mode) = (caller.merchant_id.clone(), caller.mode);
    let id = crate::ids::new_id("we");
    let secret = signing::new_secret();
    let endpoint = state
        .store
        .write(move |conn| {
            let count: i64 = conn.query_row(
                "SELECT COUNT(*) FROM webhook_endpoints WHERE merchant_id = ?1 AND mode = ?2 AND deleted_at IS NULL",
                params![merchant, mode.as_str()],
                |r| r.get(0),
            )?;
            if count >= ENDPOINTS_MAX {
                return Err(StoreError::rejected(ApiError::WebhookEndpointLimit { max: ENDPOINTS_MAX }));
            }
            let events = serde_json::to_string(&events).expect("strings serialise");
            conn.execute(
                "INSERT INTO webhook_endpoints (id, merchant_id, mode, url, events, secret, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, merchant, mode.as_str(), url, events, secret, crate::clock::now_ms()],
            )?;
            endpoint_json(conn, &merchant, mode, &id, true)
        })
        .await?;
    endpoint.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("endpoint vanished")))
}

/// `GET /v1/webhook_endpoints`.
pub async fn list_endpoints(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let (merchant, mode) = (caller.merchant_id.clone(), caller.mode);
    let data = state
        .store
        .read(move |conn| {
            let ids: Vec<String> = conn
                .prepare_cached(
                    "SELECT id FROM webhook_endpoints WHERE merchant_id = ?1 AND mode = ?2 AND deleted_at IS NULL
                     ORDER BY created_at",
                )?
                .query_map(params![merchant, mode.as_str()], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut data = Vec::new();
            for id in ids {
                data.extend(endpoint_json(conn, &merchant, mode, &id, false)?);
            }
            Ok(data)
        })
        .await?;
    Ok(json!({ "object": "list", "data": data, "has_more": false }))
}

/// `DELETE /v1/webhook_endpoints/{id}`: stops future deliveries to it.
pub async fn delete_endpoint(state: &AppState, caller: &Caller, id: String) -> Result<Value, ApiError> {
    let (merchant, mode) = (caller.merchant_id.clone(), caller.mode);
    state
        .store
        .write(move |conn| {
            let now_ms = crate::clock::now_ms();
            let deleted = conn.execute(
                "UPDATE webhook_endpoints SET deleted_at = ?4 WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3 AND deleted_at IS NULL",
                params![id, merchant, mode.as_str(), now_ms],
            )?;
            if deleted == 0 {
                return Err(StoreError::rejected(ApiError::NotFound { what: "webhook endpoint" }));
            }
            Ok(json!({ "object": "webhook_endpoint", "id": id, "deleted": true }))
        })
        .await
        .map_err(ApiError::from)
}

/// `POST /v1/webhook_endpoints/{id}/rotate_secret`: a new secret signs from
/// now on; the previous one keeps signing for the overlap (default 24 h).
pub async fn rotate_secret(state: &AppState, caller: &Caller, id: String, body: &[u8]) -> Result<Value, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    let fields = Fields::parse(body, &["previous_secret_expires_in_s"])?;
    let mut errors = fields.errors();
    let overlap_s = match fields.get("/previous_secret_expires_in_s") {
        None => ROTATION_OVERLAP_S_DEFAULT,
        Some(v) => match v.as_i64() {
            Some(s) if (0..=ROTATION_OVERLAP_S_MAX).contains(&s) => s,
            _ => {
                let message = format!("must be an integer from 0 to {ROTATION_OVERLAP_S_MAX} seconds");
                fail(&mut errors, "previous_secret_expires_in_s", message);
                0
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let (merchant, mode) = (caller.merchant_id.clone(), caller.mode);
    let secret = signing::new_secret();
    let endpoint = state
        .store
        .write(move |conn| {
            let now_ms = crate::clock::now_ms();
            let updated = conn.execute(
                "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = ?5, secret = ?4
                 WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3 AND deleted_at IS NULL",
                params![id, merchant, mode.as_str(), secret, now_ms + overlap_s * 1000],
            )?;
            if updated == 0 {
                return Err(StoreError::rejected(ApiError::NotFound { what: "webhook endpoint" }));
            }
            endpoint_json(conn, &merchant, mode, &id, true)
        })
        .await?;
    endpoint.ok_or(ApiError::NotFound { what: "webhook endpoint" })
}

/// `POST /v1/webhook_endpoints/{id}/ping`: a `ping` event to this endpoint only.
pub async fn ping(state: &AppState, caller: &Caller, id: String) -> Result<Value, ApiError> {
    let (merchant, mode) = (caller.merchant_id.clone(), caller.mode);
    state
        .store
        .write(move |conn| {
            let now_ms = crate::clock::now_ms();
            let endpoint = endpoint_json(conn, &merchant, mode, &id, false)?
                .ok_or_else(|| StoreError::rejected(ApiError::NotFound { what: "webhook endpoint" }))?;
            let event_id = emit(conn, &merchant, mode, "ping", &endpoint, now_ms)?;
            queue_delivery(conn, &event_id, &id, now_ms)?;
            event_json(conn, &merchant, mode, &event_id)?.ok_or_else(|| StoreError::Invariant("event vanished".into()))
        })
        .await
        .map_err(ApiError::from)
}

/// `GET /v1/events/{id}`: the event as delivered, with its delivery log.
pub async fn get_event(state: &AppState, caller: &Caller, id: String) -> Result<Value, ApiError> {
    let (merchant, mode) = (caller.merchant_id.clone(), caller.mode);
    let event = state.store.read(move |conn| event_json(conn, &merchant, mode, &id)).await?;
    event.ok_or(ApiError::NotFound { what: "event" })
}

/// `POST /v1/events/{id}/redeliver`: sends the event again, now, to every
/// endpoint it was queued for (same event id, a new attempt).
pub async fn redeliver(state: &AppState, caller: &Caller, id: String) -> Result<Value, ApiError> {
    let (merchant, mode) = (caller.merchant_id.clone(), caller.mode);
    state
        .store
        .write(move |conn| {
            if event_json(conn, &merchant, mode, &id)?.is_none() {
                return Err(StoreError::rejected(ApiError::NotFound { what: "event" }));
            }
            conn.execute(
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?2, attempts = 0
                 WHERE event_id = ?1 AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE deleted_at IS NULL)",
                params![id, crate::clock::now_ms()],
            )?;
            event_json(conn, &merchant, mode, &id)?.ok_or_else(|| StoreError::Invariant("event vanished".into()))
        })
        .await
        .map_err(ApiError::from)
}

/// An endpoint of this merchant and mode; the secret only when `with_secret`.
fn endpoint_json(
    conn: &Connection,
    merchant: &str,
    mode: Mode,
    id: &str,
    with_secret: bool,
) -> Result<Option<Value>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT url, events, secret, previous_secret_expires_at, created_at FROM webhook_endpoints
             WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3 AND deleted_at IS NULL",
        )?
        .query_row(params![id, merchant, mode.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    Ok(row.map(|(url, events, secret, previous_expires, created_at)| {
        let mut endpoint = json!({
            "object": "webhook_endpoint",
            "id": id,
            "url": url,
            "events": serde_json::from_str::<Value>(&events).unwrap_or(json!([])),
            "livemode": mode == Mode::Live,
            "previous_secret_expires_at": previous_expires.map(crate::clock::rfc3339),
            "created_at": crate::clock::rfc3339(created_at),
        });
        if with_secret {
            endpoint["secret"] = json!(secret);
        }
        endpoint
    }))
}

/// An event of this merchant and mode, with `deliveries`: each endpoint's
/// status and every attempt (time, HTTP status, latency, response excerpt).
fn event_json(conn: &Connection, merchant: &str, mode: Mode, id: &str) -> Result<Option<Value>, StoreError> {
    let payload: Option<String> = conn
        .prepare_cached("SELECT payload FROM events WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3")?
        .query_row(params![id, merchant, mode.as_str()], |r| r.get(0))
        .optional()?;
    let Some(payload) = payload else { return Ok(None) };
    let mut event: Value = serde_json::from_str(&payload).map_err(|e| StoreError::Invariant(e.to_string()))?;
    let mut deliveries = Vec::new();
    let rows: Vec<(String, Value)> = conn
        .prepare_cached(
            "SELECT id, endpoint_id, status, attempts, next_attempt_at, delivered_at FROM webhook_deliveries
             WHERE event_id = ?1 ORDER BY created_at, id",
        )?
        .query_map(params![id], |r| {
            let status: String = r.get(2)?;
            let next_attempt_at: Option<i64> = r.get(4)?;
            let delivery = json!({
                "id": r.get::<_, String>(0)?,
                "endpoint_id": r.get::<_, String>(1)?,
                "attempt_count": r.get::<_, i64>(3)?,
                "next_attempt_at": next_attempt_at.filter(|_| status == "pending").map(crate::clock::rfc3339),
                "delivered_at": r.get::<_, Option<i64>>(5)?.map(crate::clock::rfc3339),
                "status": status,
            });
            Ok((r.get(0)?, delivery))
        })?
        .collect::<Result<_, _>>()?;
    for (delivery_id, mut delivery) in rows {
        let log: Vec<Value> = conn
            .prepare_cached(
                "SELECT attempted_at, status_code, latency_ms, response_excerpt, error FROM webhook_attempts
                 WHERE delivery_id = ?1 ORDER BY id",
            )?
            .query_map(params![delivery_id], |r| {
                Ok(json!({
                    "attempted_at": crate::clock::rfc3339(r.get(0)?),
                    "status_code": r.get::<_, Option<i64>>(1)?,
                    "latency_ms": r.get::<_, i64>(2)?,
                    "response_excerpt": r.get::<_, Option<String>>(3)?,
                    "error": r.get::<_, Option<String>>(4)?,
                }))
            })?
            .collect::<Result<_, _>>()?;
        delivery["attempts"] = json!(log);
        deliveries.push(delivery);
    }
    event["deliveries"] = json!(deliveries);
    Ok(Some(event))
}

/// Whether a URL's host is literally internal (an internal IP or localhost).
/// Names are checked again, resolved, at every send.
fn names_internal_host(url: &str) -> bool {
    let Some(host) = url.parse::<ureq::http::Uri>().ok().and_then(|u| u.host().map(str::to_ascii_lowercase)) else {
        return false;
    };
    let bare = host.trim_matches(|c| c == '[' || c == ']');
    host == "localhost" || host.ends_with(".localhost") || bare.parse().is_ok_and(is_internal_ip)
}

/// Whether an address is one a webhook must never reach: loopback, private,
/// link-local (cloud metadata lives there), unspecified, multicast.
pub fn is_internal_ip(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]) // carrier-grade NAT
        }
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal_ip(std::net::IpAddr::V4(v4)))
        }
    }
}

/// Events that a payment's new status emits.
pub fn payment_events(status: &str) -> &'static [&'static str] {
    match status {
        "completed" => &["payment.succeeded", "transaction.completed"],
        "failed" => &["payment.failed", "transaction.failed"],
        "refunded" => &["refund.succeeded", "transaction.refunded"],
        "cancelled" => &["transaction.cancelled"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn internal_hosts_are_recognised() {
        for url in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://172.16.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://localhost:8080/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://0.0.0.0/",
        ] {
            assert!(super::names_internal_host(url), "{url}");
        }
        for url in ["https://merchant.example/hooks", "http://8.8.8.8/", "http://[2001:4860::8888]/"] {
            assert!(!super::names_internal_host(url), "{url}");
        }
    }

    #[test]
    fn every_final_status_has_events() {
        for status in ["completed", "failed", "refunded", "cancelled"] {
            assert!(!super::payment_events(status).is_empty(), "{status}");
        }
        assert!(super::payment_events("processing").is_empty());
    }
}
