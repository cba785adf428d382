//! The scripted outside world: HTTP answered in order from expectations,
//! log lines and answers kept, a clock the test sets.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use soxara::plugins::{HttpError, HttpRequest, HttpResponse, LogLevel, Outside};

/// What the script answers one request with.
#[derive(Debug, Clone)]
pub struct Reply(Result<HttpResponse, HttpError>);

impl Reply {
    /// A JSON body with `status`.
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply::raw(status, &[("Content-Type", "application/json")], body.to_string().as_bytes())
    }

    /// Any status, headers and body.
    pub fn raw(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Reply(Ok(HttpResponse { status, headers, body: body.to_vec() }))
    }

    /// The host's deadline passed with no answer.
    pub fn timeout() -> Reply {
        Reply(Err(HttpError::Timeout))
    }

    /// The connection failed.
    pub fn unreachable() -> Reply {
        Reply(Err(HttpError::Transport("connection refused".to_string())))
    }
}

/// A request as the rail sent it.
#[derive(Debug, Clone)]
pub struct SentRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SentRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("{} {} sent a body that is not JSON", self.method, self.url))
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Expectation {
    method: String,
    url: String,
    reply: Reply,
}

#[derive(Default)]
struct Recorded {
    expected: VecDeque<Expectation>,
    sent: Vec<SentRequest>,
    unexpected: Vec<String>,
    logs: Vec<(LogLevel, String)>,
    answers: Vec<String>,
}

pub(crate) struct ScriptedOutside {
    recorded: Mutex<Recorded>,
    now_ms: AtomicU64,
}

impl ScriptedOutside {
    pub(crate) fn new(now_ms: u64) -> ScriptedOutside {
        ScriptedOutside { recorded: Mutex::default(), now_ms: AtomicU64::new(now_ms) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn expect(&self, method: &str, url: &str, reply: Reply) {
        self.lock().expected.push_back(Expectation { method: method.to_string(), url: url.to_string(), reply });
    }

    pub(crate) fn requests(&self) -> Vec<SentRequest> {
        self.lock().sent.clone()
    }

    pub(crate) fn logs(&self) -> Vec<(LogLevel, String)> {
        self.lock().logs.clone()
    }

    pub(crate) fn answers(&self) -> Vec<String> {
        self.lock().answers.clone()
    }

    pub(crate) fn record_answer(&self, answer: String) {
        self.lock().answers.push(answer);
    }

    pub(crate) fn set_now_ms(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::Relaxed);
    }

    fn check_unexpected(&self) -> Result<(), String> {
        let recorded = self.lock();
        if recorded.unexpected.is_empty() {
            return Ok(());
        }
        Err(format!("the rail sent requests the script did not expect:\n  {}", recorded.unexpected.join("\n  ")))
    }

    pub(crate) fn check_done(&self) -> Result<(), String> {
        self.check_unexpected()?;
        let recorded = self.lock();
        let unmet: Vec<String> = recorded.expected.iter().map(|e| format!("{} {}", e.method, e.url)).collect();
        if unmet.is_empty() {
            Ok(())
        } else {
            Err(format!("the rail never sent these expected requests:\n  {}", unmet.join("\n  ")))
        }
    }
}

impl Outside for ScriptedOutside {
    fn http(&self, _plugin: &str, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let mut recorded = self.lock();
        recorded.sent.push(SentRequest {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
        });
        let matches = recorded.expected.front().is_some_and(|e| e.method == request.method && e.url == request.url);
        if matches {
            let expectation = recorded.expected.pop_front().expect("checked above");
            return expectation.reply.0;
        }
        let next = match recorded.expected.front() {
            Some(e) => format!("expected {} {}", e.method, e.url),
            None => "no more requests expected".to_string(),
        };
        recorded.unexpected.push(format!("{} {} ({next})", request.method, request.url));
        Err(HttpError::Transport(format!("the test script did not expect {} {}", request.method, request.url)))
    }

    fn log(&self, _plugin: &str, level: LogLevel, message: &str) {
        self.lock().logs.push((level, message.to_string()));
    }

    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }
}
