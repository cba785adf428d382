//! The load: keep-alive HTTP/1.1 connections creating sandbox payments, each
//! with its own idempotency key. Closed loop (each connection sends its next
//! request when the last is answered) finds the most the gateway sustains;
//! open loop (requests on a fixed schedule) measures latency at a set rate,
//! counted from when each request was due, so a stall is not hidden.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A completed (`1234`) sandbox mobile-money payment.
const PAYMENT_BODY: &str = r#"{"amount":1250,"currency":"USD","method":"mtn_momo","customer":{"phone":"+231770001234"},"description":"bench"}"#;

/// What one phase measured.
pub struct Load {
    /// Payments acknowledged with 201.
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    fn merge(mut self, other: Load) -> Load {
        self.ok += other.ok;
        self.errors += other.errors;
        self.first_error = self.first_error.or(other.first_error);
        self.latency.add(other.latency).expect("histograms share bounds");
        self
    }
}

/// How a phase paces its requests.
#[derive(Clone, Copy)]
pub enum Pace {
    /// Each connection sends again as soon as it is answered.
    ClosedLoop,
    /// Requests per second across all connections, on a fixed schedule.
    Rate(f64),
}

/// Runs `connections` clients against the gateway for `duration`.
/// `tag` keeps idempotency keys unique across phases.
pub async fn run(
    addr: SocketAddr,
    key: &str,
    connections: usize,
    pace: Pace,
    duration: Duration,
    tag: &str,
) -> Result<Load> {
    let bearer: Arc<str> = Arc::from(format!("Bearer {key}"));
    // Connect first, then start the clock: no request is due before its
    // connection exists.
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(addr).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for (connection, sender) in senders.into_iter().enumerate() {
        let (bearer, tag) = (Arc::clone(&bearer), format!("{tag}-{connection}"));
        let schedule = match pace {
            Pace::ClosedLoop => None,
            // Connection c sends at start + (k·C + c)/rate.
            Pace::Rate(rate) => Some((started, connection, connections, rate)),
        };
        tasks.push(tokio::spawn(client(sender, bearer, tag, schedule, deadline)));
    }
    let mut total = empty(Duration::ZERO);
    for task in tasks {
        total = total.merge(task.await.context("a client task panicked")?);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn client(
    mut sender: SendRequest<Full<Bytes>>,
    bearer: Arc<str>,
    tag: String,
    schedule: Option<(Instant, usize, usize, f64)>,
    deadline: Instant,
) -> Load {
    let mut load = empty(Duration::ZERO);
    let body = Bytes::from_static(PAYMENT_BODY.as_bytes());
    let due_at = |k: u64| match schedule {
        None => Instant::now(),
        Some((start, c, connections, rate)) => {
            let slot = k as f64 * connections as f64 + c as f64;
            start + Duration::from_secs_f64(slot / rate)
        }
    };
    for k in 0u64.. {
        let due = due_at(k);
        if due >= deadline {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let request = Request::post("/v1/payments")
            .header("host", "bench")
            .header("authorization", &*bearer)
            .header("x-idempotency-key", format!("bench-{tag}-{k}"))
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))
            .expect("a well-formed request");
        let answer = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        }
        .await;
        let micros = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
        load.latency.saturating_record(micros);
        match answer {
            Ok((status, _)) if status.as_u16() == 201 => load.ok += 1,
            Ok((status, body)) => {
                load.errors += 1;
                load.first_error.get_or_insert_with(|| format!("{status}: {}", String::from_utf8_lossy(&body)));
            }
            Err(err) => {
                load.errors += 1;
                load.first_error.get_or_insert_with(|| format!("{err:#}"));
                // The connection is gone. A paced client's remaining requests
                // were due anyway: each counts as an error, not as nothing.
                if schedule.is_some() {
                    load.errors += (k + 1..).take_while(|n| due_at(*n) < deadline).count() as u64;
                }
                break;
            }
        }
    }
    load
}

fn empty(elapsed: Duration) -> Load {
    let latency = Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
    Load { ok: 0, errors: 0, first_error: None, elapsed, latency }
}
