//! The delivery worker: takes due deliveries from the outbox, sends them
//! signed, logs every attempt, and schedules retries. A delivery is leased
//! (its next attempt pushed past the send timeout) before it is sent, so a
//! crash mid-send only means it is sent again later: at least once.

use std::collections::HashMap;
use std::io::Read;
use std::net::ToSocketAddrs;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use rusqlite::params;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::signing;
use crate::config::WebhookSettings;
use crate::store::{Store, StoreError};

/// A merchant's endpoint must answer within this, or the attempt fails.
pub const DELIVERY_TIMEOUT_MS: u64 = 15_000;
/// Deliveries being sent at once; a slow endpoint holds one slot, not all.
const DELIVERIES_IN_FLIGHT_MAX: usize = 32;
/// Bytes of the endpoint's response kept in the attempt log.
const RESPONSE_EXCERPT_BYTES_MAX: u64 = 512;
/// A leased delivery is retried after this if its sender vanished.
const LEASE_MS: i64 = DELIVERY_TIMEOUT_MS as i64 + 5_000;

/// Deliveries leased and not yet recorded: id → the lease it holds.
type Leases = Arc<Mutex<HashMap<String, i64>>>;

/// The running worker; dropping it does not stop it, `stop` does.
pub struct Worker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    store: Store,
    leases: Leases,
}

impl Worker {
    pub fn spawn(store: Store, settings: WebhookSettings) -> Worker {
        let (stop, stopped) = watch::channel(false);
        let leases = Leases::default();
        let task = tokio::spawn(run(store.clone(), settings, stopped, Arc::clone(&leases)));
        Worker { stop, task, store, leases }
    }

    /// Stops taking deliveries, abandons any in flight, and hands their
    /// leases back so the next start sends them at once. (After a crash
    /// the leases simply expire.)
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.abort();
        let _ = self.task.await;
        let leases: Vec<(String, i64)> = self.leases.lock().expect("never poisoned").drain().collect();
        let released = self
            .store
            .write(move |conn| {
                let now_ms = crate::clock::now_ms();
                for (id, lease) in &leases {
                    conn.prepare_cached(
                        "UPDATE webhook_deliveries SET next_attempt_at = ?3 WHERE id = ?1 AND next_attempt_at = ?2",
                    )?
                    .execute(params![id, lease, now_ms])?;
                }
                Ok(())
            })
            .await;
        if let Err(err) = released {
            tracing::warn!(error = %err, "webhook leases not released; they expire on their own");
        }
    }
}

/// One leased delivery with everything needed to send it.
struct Due {
    delivery_id: String,
    event_id: String,
    event_type: String,
    payload: String,
    url: String,
    secrets: Vec<String>,
    attempts: u32,
    endpoint_deleted: bool,
    /// The `next_attempt_at` this worker set when it leased the delivery.
    lease: i64,
}

/// What one attempt got.
struct Attempt {
    status_code: Option<u16>,
    latency_ms: i64,
    excerpt: Option<String>,
    error: Option<String>,
}

async fn run(store: Store, settings: WebhookSettings, mut stopped: watch::Receiver<bool>, leases: Leases) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(DELIVERY_TIMEOUT_MS)))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut sends = JoinSet::new();
    loop {
        while sends.try_join_next().is_some() {}
        let capacity = DELIVERIES_IN_FLIGHT_MAX.saturating_sub(sends.len());
        let due = if capacity == 0 {
            Vec::new()
        } else {
            store.write(move |conn| lease_due(conn, capacity)).await.unwrap_or_else(|err| {
                tracing::error!(error = %err, "webhook worker could not read the outbox");
                Vec::new()
            })
        };
        let leased_any = !due.is_empty();
        for delivery in due {
            leases.lock().expect("never poisoned").insert(delivery.delivery_id.clone(), delivery.lease);
            let (store, agent, leases) = (store.clone(), agent.clone(), Arc::clone(&leases));
            let (delays, allow_private) = (settings.retry_delays_ms.clone(), settings.allow_private_targets);
            sends.spawn(async move {
                let attempt = if delivery.endpoint_deleted {
                    Attempt { status_code: None, latency_ms: 0, excerpt: None, error: Some("endpoint deleted".into()) }
                } else {
                    let to_send = delivery.clone_for_send();
                    tokio::task::spawn_blocking(move || send(&agent, &to_send, allow_private)).await.unwrap_or_else(
                        |e| Attempt {
                            status_code: None,
                            latency_ms: 0,
                            excerpt: None,
                            error: Some(format!("sender panicked: {e}")),
                        },
                    )
                };
                let id = delivery.delivery_id.clone();
                let final_failure = delivery.endpoint_deleted;
                if let Err(err) =
                    store.write(move |conn| record(conn, &delivery, &attempt, &delays, final_failure)).await
                {
                    tracing::error!(error = %err, "webhook attempt not recorded; it will be sent again");
                }
                leases.lock().expect("never poisoned").remove(&id);
            });
        }
        if !leased_any {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(settings.poll_interval_ms)) => {}
                _ = sends.join_next(), if !sends.is_empty() => {}
                _ = stopped.changed() => return,
            }
        }
    }
}

impl Due {
    fn clone_for_send(&self) -> Due {
        Due {
            delivery_id: self.delivery_id.clone(),
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            payload: self.payload.clone(),
            url: self.url.clone(),
            secrets: self.secrets.clone(),
            attempts: self.attempts,
            endpoint_deleted: self.endpoint_deleted,
            lease: self.lease,
        }
    }
}

/// Takes the due deliveries and pushes their next attempt past the lease.
fn lease_due(conn: &rusqlite::Connection, limit: usize) -> Result<Vec<Due>, StoreError> {
    let now_ms = crate::clock::now_ms();
    let lease = now_ms + LEASE_MS;
    let mut due: Vec<Due> = conn
        .prepare_cached(
            "SELECT d.id, d.event_id, e.type, e.payload, w.url, w.secret, w.previous_secret,
                    w.previous_secret_expires_at, d.attempts, w.deleted_at IS NOT NULL
             FROM webhook_deliveries d
             JOIN events e ON e.id = d.event_id
             JOIN webhook_endpoints w ON w.id = d.endpoint_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
             ORDER BY d.next_attempt_at LIMIT ?2",
        )?
        .query_map(params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            let mut secrets = vec![r.get::<_, String>(5)?];
            let previous: Option<String> = r.get(6)?;
            let previous_expires: Option<i64> = r.get(7)?;
            if let (Some(previous), Some(expires)) = (previous, previous_expires)
                && expires > now_ms
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
                lease,
            })
        })?
        .collect::<Result<_, _>>()?;
    for delivery in &mut due {
        conn.prepare_cached("UPDATE webhook_deliveries SET next_attempt_at = ?2 WHERE id = ?1")?
            .execute(params![delivery.delivery_id, lease])?;
    }
    Ok(due)
}

/// Sends one delivery, signed at the moment of sending.
fn send(agent: &ureq::Agent, due: &Due, allow_private: bool) -> Attempt {
    if !allow_private && let Err(refusal) = public_target(&due.url) {
        return Attempt { status_code: None, latency_ms: 0, excerpt: None, error: Some(refusal) };
    }
    let timestamp_s = crate::clock::now_ms() / 1000;
    let delivery = signing::Delivery {
        event_id: &due.event_id,
        delivery_id: &due.delivery_id,
        event_type: &due.event_type,
        timestamp_s,
        body: due.payload.as_bytes(),
    };
    let secrets: Vec<&str> = due.secrets.iter().map(String::as_str).collect();
    let mut request = ureq::http::Request::builder().method("POST").uri(&due.url);
    for (name, value) in signing::headers(&delivery, &secrets) {
        request = request.header(name, value);
    }
    let started = Instant::now();
    let result = request
        .body(due.payload.as_bytes().to_vec())
        .map_err(|e| e.to_string())
        .and_then(|r| agent.run(r).map_err(|e| e.to_string()));
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    match result {
        Ok(response) => {
            let status_code = response.status().as_u16();
            let mut excerpt = Vec::new();
            let _ = response.into_body().into_reader().take(RESPONSE_EXCERPT_BYTES_MAX).read_to_end(&mut excerpt);
            Attempt {
                status_code: Some(status_code),
                latency_ms,
                excerpt: Some(String::from_utf8_lossy(&excerpt).into_owned()),
                error: None,
            }
        }
        Err(error) => Attempt { status_code: None, latency_ms, excerpt: None, error: Some(error) },
    }
}

/// Refuses a URL whose host resolves to a loopback, private, link-local or
/// otherwise internal address: webhooks must not become a way to reach the
/// gateway's own network. (The address is resolved again to connect, so a
/// host that changes its DNS answer in between is not caught here.)
fn public_target(url: &str) -> Result<(), String> {
    let uri: ureq::http::Uri = url.parse().map_err(|_| format!("not a URL: {url}"))?;
    let host = uri.host().ok_or("the URL has no host")?.trim_matches(|c| c == '[' || c == ']');
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    let addresses = (host, port).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?;
    for address in addresses {
        if super::is_internal_ip(address.ip()) {
            return Err(format!("refused: {host} resolves to the internal address {}", address.ip()));
        }
    }
    Ok(())
}

/// Logs the attempt and decides: delivered, retry later, or failed for good.
fn record(
    conn: &rusqlite::Connection,
    due: &Due,
    attempt: &Attempt,
    retry_delays_ms: &[u64],
    final_failure: bool,
) -> Result<(), StoreError> {
    let now_ms = crate::clock::now_ms();
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
    let retry_delay = retry_delays_ms.get(due.attempts as usize).copied().filter(|_| !final_failure);
    let (status, next_attempt_at, delivered_at) = match (delivered, retry_delay) {
        (true, _) => ("delivered", None, Some(now_ms)),
        (false, Some(delay_ms)) => ("pending", Some(now_ms + jittered(delay_ms)), None),
        (false, None) => ("failed", None, None),
    };
    // Only if our lease still stands: a manual redelivery in the meantime
    // reset the delivery, and its fresh schedule must not be overwritten.
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, delivered_at = ?5
         WHERE id = ?1 AND next_attempt_at = ?6",
    )?
    .execute(params![due.delivery_id, status, attempts, next_attempt_at, delivered_at, due.lease])?;
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
