//! Outbound HTTP through the host. Only hosts the operator lists in the
//! plugin's `allowed_hosts` are reachable; the host refuses anything else
//! before it leaves the process, and stops a request after its deadline.
//!
//! ```ignore
//! let response = http::post(format!("{base_url}/v1/charges"))
//!     .bearer(&api_key)
//!     .header("Idempotency-Key", &request.payment_id)
//!     .json(&body)
//!     .send()
//!     .map_err(|e| e.into_failure("Example Pay"))?;
//! ```

use crate::Failure;
use crate::bindings::soxara::gateway::http;

pub use http::{HttpError, Response};

/// A request being built; [`RequestBuilder::send`] sends it.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    request: http::Request,
}

pub fn get(url: impl Into<String>) -> RequestBuilder {
    request("GET", url)
}

pub fn post(url: impl Into<String>) -> RequestBuilder {
    request("POST", url)
}

/// A request with any method (`"PUT"`, `"DELETE"`, …).
pub fn request(method: &str, url: impl Into<String>) -> RequestBuilder {
    RequestBuilder {
        request: http::Request { method: method.to_string(), url: url.into(), headers: Vec::new(), body: Vec::new() },
    }
}

impl RequestBuilder {
    pub fn header(mut self, name: &str, value: impl Into<String>) -> RequestBuilder {
        self.request.headers.push((name.to_string(), value.into()));
        self
    }

    /// Several headers at once.
    pub fn headers(mut self, headers: impl IntoIterator<Item = (String, String)>) -> RequestBuilder {
        self.request.headers.extend(headers);
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> RequestBuilder {
        self.header("Authorization", format!("Bearer {token}"))
    }

    /// `Authorization: Basic <base64(user:password)>`.
    pub fn basic_auth(self, user: &str, password: &str) -> RequestBuilder {
        let credentials = base64(format!("{user}:{password}").as_bytes());
        self.header("Authorization", format!("Basic {credentials}"))
    }

    /// A raw body (set `Content-Type` yourself).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> RequestBuilder {
        self.request.body = body.into();
        self
    }

    /// A JSON body, with `Content-Type: application/json`.
    pub fn json(self, value: &serde_json::Value) -> RequestBuilder {
        self.header("Content-Type", "application/json").body(value.to_string())
    }

    /// An `application/x-www-form-urlencoded` body (as Stripe takes it).
    pub fn form(self, pairs: &[(&str, &str)]) -> RequestBuilder {
        self.header("Content-Type", "application/x-www-form-urlencoded").body(form_encode(pairs))
    }

    /// The request as built, for inspection.
    pub fn as_request(&self) -> &http::Request {
        &self.request
    }

    /// Sends it and waits for the answer (any status: a 4xx or 5xx is a
    /// response, not an error).
    pub fn send(self) -> Result<Response, HttpError> {
        http::send(&self.request)
    }
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, or `BAD_PROVIDER_RESPONSE`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_slice(&self.body).map_err(|_| {
            Failure::bad_provider_response(format!("the provider's answer ({}) is not the JSON expected", self.status))
        })
    }

    /// The start of the body (60 characters), for a merchant-safe message.
    pub fn excerpt(&self) -> String {
        String::from_utf8_lossy(&self.body).chars().filter(|c| !c.is_control()).take(60).collect()
    }
}

impl HttpError {
    /// The failure a rail reports when `provider` could not be asked:
    /// `HTTP_DENIED` (the operator has not allowed its host: final),
    /// `PROVIDER_TIMEOUT` or `PROVIDER_UNAVAILABLE` (retryable). A timeout
    /// means the provider may have acted: after one, a rail answers
    /// `processing` from `collect`, not this failure.
    pub fn into_failure(self, provider: &str) -> Failure {
        match self {
            HttpError::Denied(why) => Failure::new("HTTP_DENIED", why),
            HttpError::Timeout => Failure::retryable("PROVIDER_TIMEOUT", format!("{provider} did not answer in time")),
            HttpError::Transport(_) => {
                Failure::retryable("PROVIDER_UNAVAILABLE", format!("{provider} could not be reached"))
            }
        }
    }
}

/// `application/x-www-form-urlencoded`: unreserved bytes as they are, space
/// as `+`, everything else percent-encoded.
pub fn form_encode(pairs: &[(&str, &str)]) -> Vec<u8> {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    pairs.join("&").into_bytes()
}

/// Standard base64 with padding (enough for HTTP Basic credentials).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_percent_encoded() {
        let body = form_encode(&[("amount", "1250"), ("metadata[id]", "pay_1 x&y=z")]);
        assert_eq!(String::from_utf8(body).unwrap(), "amount=1250&metadata%5Bid%5D=pay_1+x%26y%3Dz");
    }

    #[test]
    fn basic_credentials_are_base64() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
        let built = post("https://x.example/").basic_auth("user", "pass");
        assert_eq!(built.as_request().headers, [("Authorization".to_string(), "Basic dXNlcjpwYXNz".to_string())]);
    }

    #[test]
    fn responses_read_headers_and_json() {
        let response = Response {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"id":"ch_1"}"#.to_vec(),
        };
        assert_eq!(response.header("content-type"), Some("application/json"));
        let value: serde_json::Value = response.json().unwrap();
        assert_eq!(value["id"], "ch_1");
        let garbage = Response { status: 200, headers: vec![], body: b"<html>".to_vec() };
        assert_eq!(garbage.json::<serde_json::Value>().unwrap_err().code, "BAD_PROVIDER_RESPONSE");
    }

    #[test]
    fn unreachable_providers_become_failures() {
        assert!(!HttpError::Denied("no".into()).into_failure("X").retryable);
        let timeout = HttpError::Timeout.into_failure("Example Pay");
        assert_eq!((timeout.code.as_str(), timeout.retryable), ("PROVIDER_TIMEOUT", true));
        assert_eq!(timeout.message, "Example Pay did not answer in time");
    }
}
