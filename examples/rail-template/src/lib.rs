//! A complete minimal rail: mobile money collections through "Example Pay",
//! a small provider API (described in `README.md`). Copy this crate, rename
//! it, and replace `protocol.rs` with your provider's protocol.
//!
//! What every rail must get right, and where this one does it:
//! - The gateway's payment id is the provider's idempotency key
//!   (`Idempotency-Key`), so the gateway may call `collect` again for the same
//!   payment and the customer is never charged twice.
//! - When the provider may have acted but did not say how (a timeout, a 5xx),
//!   the answer is `processing`, never `failed`: the gateway then asks
//!   `status`, which looks the charge up, or sends the same request again
//!   under the same key.
//! - Credentials come from the operator's config and never appear in a log
//!   line or a failure message.
//!
//! Config (operator, `[plugins.rail-template.config]`): `base_url`,
//! `api_key`, `currencies` (default `USD,LRD`). The operator must also list
//! the host of `base_url` in the plugin's `allowed_hosts`.

mod protocol;

use protocol::Charge;
use soxara_sdk::prelude::*;

/// The legal entity the money moves under (shown to merchants).
const ENTITY: &str = "Phoenix Hub Liberia, Inc.";
/// How the provider is named in failure messages.
const PROVIDER: &str = "Example Pay";

pub struct RailTemplate;

impl Rail for RailTemplate {
    fn describe() -> RailInfo {
        let currencies = config::get("currencies").unwrap_or_else(|| "USD,LRD".to_string());
        RailInfo::new("rail-template", env!("CARGO_PKG_VERSION"), &currencies).method(PaymentMethod::MtnMomo, ENTITY)
    }

    fn collect(request: CollectRequest) -> Result<RailOutcome, Failure> {
        let settings = Settings::from_config()?;
        let body = protocol::charge_body(&request)?;
        let sent = http::post(format!("{}/v1/charges", settings.base_url))
            .bearer(&settings.api_key)
            .header("Idempotency-Key", &request.payment_id)
            .json(&body)
            .send();
        let response = match sent {
            Ok(response) => response,
            // The provider may have charged: let a status check find out.
            Err(http::HttpError::Timeout | http::HttpError::Transport(_)) => return Ok(RailOutcome::processing(None)),
            Err(denied) => return Err(denied.into_failure(PROVIDER)),
        };
        match response.status {
            // A charge the rail cannot read may still be a charge: ask later.
            200 | 201 => Ok(response.json::<Charge>().map_or(RailOutcome::processing(None), Charge::outcome)),
            401 | 403 => {
                Err(Failure::new("PROVIDER_AUTH_FAILED", "Example Pay refused the API key; check the rail's config"))
            }
            400 | 422 => Err(Failure::new(
                "PROVIDER_REJECTED",
                format!("Example Pay refused the request: {}", response.excerpt()),
            )),
            _ => Ok(RailOutcome::processing(None)),
        }
    }

    fn status(request: CollectRequest, provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        let settings = Settings::from_config()?;
        let url = match &provider_reference {
            Some(charge_id) => format!("{}/v1/charges/{charge_id}", settings.base_url),
            None => format!("{}/v1/charges?reference={}", settings.base_url, request.payment_id),
        };
        let response = http::get(url).bearer(&settings.api_key).send().map_err(|e| e.into_failure(PROVIDER))?;
        match (response.status, provider_reference) {
            (200, Some(_)) => Ok(response.json::<Charge>()?.outcome()),
            (200, None) => match response.json::<protocol::ChargeList>()?.data.pop() {
                Some(charge) => Ok(charge.outcome()),
                // The provider never received it: send it again under the same key.
                None => Self::collect(request),
            },
            (status, _) => Err(Failure::retryable("PROVIDER_UNAVAILABLE", format!("Example Pay answered {status}"))),
        }
    }
}

soxara_sdk::export_rail!(RailTemplate);

/// This rail's operator config.
struct Settings {
    base_url: String,
    api_key: String,
}

impl Settings {
    fn from_config() -> Result<Settings, Failure> {
        Ok(Settings { base_url: config::base_url("base_url", None)?, api_key: config::required("api_key")? })
    }
}
