//! The delivery worker: takes due deliveries from the outbox, sends them
//! signed, logs every attempt, and schedules retries. A delivery is leased
//! (its next attempt pushed past the send timeout) before it is sent, so a
//! crash mid-send only means it is sent again later: at least once.

use std::io::Read;
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
/// Deliveries sent at once.
const DELIVERIES_PER_ROUND_MAX: i64 = 32;
/// Bytes of the endpoint's response kept in the attempt log.
const RESPONSE_EXCERPT_BYTES_MAX: u64 = 512;
/// A leased delivery is retried after this if its sender vanished.
const LEASE_MS: i64 = DELIVERY_TIMEOUT_MS as i64 + 5_000;

/// The running worker; dropping it does not stop it, `stop` does.
pub struct Worker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Worker {
    pub fn spawn(store: Store, settings: WebhookSettings) -> Worker {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(store, settings, stopped));
        Worker { stop, task }
    }

    /// Stops taking deliveries and abandons any in flight (their leases
    /// expire and they are sent again by the next start).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.abort();
        let _ = self.task.await;
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
}

/// What one attempt got.
struct Attempt {
    status_code: Option<u16>,
    latency_ms: i64,
    excerpt: Option<String>,
    error: Option<String>,
}

async fn run(store: Store, settings: WebhookSettings, mut stopped: watch::Receiver<bool>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(DELIVERY_TIMEOUT_MS)))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    loop {
        let due = match store.write(lease_due).await {
            Ok(due) => due,
            Err(err) => {
                tracing::error!(error = %err, "webhook worker could not read the outbox");
                Vec::new()
            }
        };
        if due.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(settings.poll_interval_ms)) => continue,
                _ = stopped.changed() => return,
            }
        }
        let mut sends = JoinSet::new();
        for delivery in due {
            let (store, agent, delays) = (store.clone(), agent.clone(), settings.retry_delays_ms.clone());
            sends.spawn(async move {
                let attempt = if delivery.endpoint_deleted {
                    Attempt { status_code: None, latency_ms: 0, excerpt: None, error: Some("endpoint deleted".into()) }
                } else {
                    let (agent, to_send) = (agent.clone(), delivery.clone_for_send());
                    tokio::task::spawn_blocking(move || send(&agent, &to_send)).await.unwrap_or_else(|e| Attempt {
                        status_code: None,
                        latency_ms: 0,
                        excerpt: None,
                        error: Some(format!("sender panicked: {e}")),
                    })
                };
                let final_failure = delivery.endpoint_deleted;
                if let Err(err) =
                    store.write(move |conn| record(conn, &delivery, &attempt, &delays, final_failure)).await
                {
                    tracing::error!(error = %err, "webhook attempt not recorded; it will be sent again");
                }
            });
        }
        while sends.join_next().await.is_some() {}
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
        }
    }
}

/// Takes the due deliveries and pushes their next attempt past the lease.
fn lease_due(conn: &rusqlite::Connection) -> Result<Vec<Due>, StoreError> {
    let now_ms = crate::clock::now_ms();
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
        .query_map(params![now_ms, DELIVERIES_PER_ROUND_MAX], |r| {
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
            })
        })?
        .collect::<Result<_, _>>()?;
    for delivery in &mut due {
        conn.prepare_cached("UPDATE webhook_deliveries SET next_attempt_at = ?2 WHERE id = ?1")?
            .execute(params![delivery.delivery_id, now_ms + LEASE_MS])?;
    }
    Ok(due)
}

/// Sends one delivery, signed at the moment of sending.
fn send(agent: &ureq::Agent, due: &Due) -> Attempt {
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
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, delivered_at = ?5 WHERE id = ?1",
    )?
    .execute(params![due.delivery_id, status, attempts, next_attempt_at, delivered_at])?;
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
