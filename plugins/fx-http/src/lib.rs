//! FX provider that asks a rates API over the host's HTTP import. It speaks
//! the Frankfurter protocol: `GET {url}/latest?from=USD&to=LRD` answers
//! `{"amount":1.0,"base":"USD","date":"2026-11-23","rates":{"LRD":181.25}}`.
//! The rate's JSON text is read as an exact decimal, never as a float.
//!
//! Config: `url` (base URL of the API). The operator must allow its host.

mod protocol;

wit_bindgen::generate!({
    world: "fx-plugin",
    path: "../../wit",
});

use exports::soxara::gateway::fx_provider::{Guest, Rate};
use soxara::gateway::http::{self, HttpError, Request};
use soxara::gateway::types::Failure;
use soxara::gateway::{clock, config};

struct HttpRates;

impl Guest for HttpRates {
    fn name() -> String {
        "http".to_string()
    }

    fn get_rate(base: String, quote: String) -> Result<Rate, Failure> {
        let url = config::get("url").ok_or_else(|| failure("NOT_CONFIGURED", "config key `url` is not set", false))?;
        let request = Request {
            method: "GET".to_string(),
            url: format!("{}/latest?from={base}&to={quote}", url.trim_end_matches('/')),
            headers: vec![("accept".to_string(), "application/json".to_string())],
            body: Vec::new(),
        };
        let response = http::send(&request).map_err(|e| match e {
            HttpError::Denied(why) => failure("HTTP_DENIED", &why, false),
            HttpError::Timeout => failure("PROVIDER_TIMEOUT", "the rates API did not answer in time", true),
            HttpError::Transport(why) => failure("PROVIDER_UNAVAILABLE", &why, true),
        })?;
        if response.status != 200 {
            let message = format!("the rates API answered {}", response.status);
            return Err(failure("PROVIDER_UNAVAILABLE", &message, response.status >= 500));
        }
        let (numerator, denominator) = protocol::parse_latest(&response.body, &base, &quote)
            .map_err(|e| failure("BAD_PROVIDER_RESPONSE", &e, true))?;
        Ok(Rate { base, quote, numerator, denominator, observed_at_ms: clock::now_ms() })
    }
}

fn failure(code: &str, message: &str, retryable: bool) -> Failure {
    Failure { code: code.to_string(), message: message.to_string(), retryable }
}

export!(HttpRates);
