//! Talking to MTN: the operator's settings, one access token per MTN
//! product, and the two calls every MTN operation is made of: *submit*
//! (`POST` under an `X-Reference-Id`, answered `202`) and *look up*
//! (`GET …/{reference}`).

use soxara_sdk::http::{HttpError, RequestBuilder, Response};
use soxara_sdk::prelude::*;
use soxara_sdk::token::AccessToken;

use crate::protocol::{self, Operation, Standing};

/// How the provider is named in failure messages.
pub const PROVIDER: &str = "MTN";

/// One of MTN's products: each has its own subscription key and tokens.
pub struct Product {
    /// `collection` or `disbursement`: the first segment of its paths.
    pub name: &'static str,
    subscription_key: String,
    api_user: String,
    api_key: String,
}

/// What MTN made of a submitted request.
pub enum Submitted {
    /// MTN has it, or may have it (no answer, 5xx): a look-up will know.
    Queued,
    /// MTN refused it; nothing was stored.
    Refused(Failure),
}

/// This plugin's operator configuration.
pub struct Settings {
    base_url: String,
    target_environment: String,
    callback_url: Option<String>,
    collection: Product,
    /// `None` when the operator has not subscribed to the disbursement
    /// product: refunds and payouts are then not supported.
    disbursement: Option<Product>,
}

impl Settings {
    pub fn from_config() -> Result<Settings, Failure> {
        let api_user = config::required("api_user")?;
        let api_key = config::required("api_key")?;
        let disbursement = config::get("disbursement_subscription_key").map(|subscription_key| Product {
            name: "disbursement",
            subscription_key,
            api_user: config::get("disbursement_api_user").unwrap_or_else(|| api_user.clone()),
            api_key: config::get("disbursement_api_key").unwrap_or_else(|| api_key.clone()),
        });
        let target_environment = config::required("target_environment")?;
        config::check_mode(target_environment == "sandbox", "target_environment")?;
        Ok(Settings {
            base_url: config::base_url("base_url", None)?,
            target_environment,
            callback_url: config::get("callback_url"),
            collection: Product {
                name: "collection",
                subscription_key: config::required("subscription_key")?,
                api_user,
                api_key,
            },
            disbursement,
        })
    }

    /// The product an operation belongs to.
    pub fn product(&self, operation: Operation) -> Result<&Product, Failure> {
        match operation {
            Operation::RequestToPay => Ok(&self.collection),
            Operation::Refund | Operation::Transfer => self.disbursement.as_ref().ok_or_else(|| {
                Failure::new(
                    "NOT_SUPPORTED",
                    format!(
                        "a {} needs MTN's disbursement product, which this gateway's operator has not configured",
                        operation.noun()
                    ),
                )
            }),
        }
    }

    /// Sends `body` as a new `operation` under `reference`. A repeat of a
    /// reference MTN already has is refused by MTN (`409`) and read here as
    /// queued: nobody is charged or paid twice.
    pub fn submit(&self, operation: Operation, reference: &str, body: Vec<u8>) -> Result<Submitted, Failure> {
        let product = self.product(operation)?;
        let url = format!("{}/{}/v1_0/{}", self.base_url, product.name, operation.path());
        // MTN calls back with the outcome; the query tells those callbacks apart.
        let callback_url = self.callback_url.as_ref().map(|url| match operation {
            Operation::RequestToPay => url.clone(),
            other => format!("{url}{}for={}", if url.contains('?') { '&' } else { '?' }, other.path()),
        });
        let answer = self.send(product, |token| {
            let mut post = http::post(url.clone())
                .headers(self.bearer_headers(product, token))
                .header("X-Reference-Id", reference.to_string())
                .header("Content-Type", "application/json")
                .body(body.clone());
            if let Some(url) = &callback_url {
                post = post.header("X-Callback-Url", url.clone());
            }
            post
        })?;
        let noun = operation.noun();
        match answer {
            // Accepted, or already there from an earlier attempt.
            Ok(response) if response.status == 202 || response.status == 409 => Ok(Submitted::Queued),
            // Timed out or throttled at MTN's edge: it may still act on it.
            Ok(response) if response.status == 408 || response.status == 429 => Ok(Submitted::Queued),
            Ok(response) if response.status == 401 || response.status == 403 => Ok(Submitted::Refused(Failure::new(
                "PROVIDER_AUTH_FAILED",
                format!("MTN refused the gateway's credentials for this {noun}"),
            ))),
            Ok(response) if (400..500).contains(&response.status) => {
                let message = format!("MTN refused the {noun} ({}): {}", response.status, response.excerpt());
                Ok(Submitted::Refused(Failure::new("PROVIDER_REFUSED", message)))
            }
            Ok(response) => {
                log::warn(&format!("{noun} answered {}; left processing", response.status));
                Ok(Submitted::Queued)
            }
            Err(HttpError::Denied(why)) => Ok(Submitted::Refused(Failure::new("HTTP_DENIED", why))),
            Err(HttpError::Timeout | HttpError::Transport(_)) => {
                log::warn(&format!("{noun} got no answer; left processing"));
                Ok(Submitted::Queued)
            }
        }
    }

    /// Where MTN says an operation stands, or `None` when it has no such
    /// request.
    pub fn look_up(&self, operation: Operation, reference: &str) -> Result<Option<Standing>, Failure> {
        let product = self.product(operation)?;
        let url = format!("{}/{}/v1_0/{}/{reference}", self.base_url, product.name, operation.path());
        let response = self
            .send(product, |token| http::get(url.clone()).headers(self.bearer_headers(product, token)))?
            .map_err(|e| e.into_failure(PROVIDER))?;
        match response.status {
            200 => protocol::parse_status(&response.body, operation).map(Some).map_err(Failure::bad_provider_response),
            404 => Ok(None),
            status => Err(Failure::retryable(
                "PROVIDER_UNAVAILABLE",
                format!("MTN's {} status endpoint answered {status}", operation.noun()),
            )),
        }
    }

    /// Sends the request `build` makes with an access token. A cached token
    /// MTN no longer honours (`401`) is replaced and the request sent once
    /// more: MTN refused the first, so it never acted on it. Fails only when
    /// no token can be had (nothing was then asked of MTN).
    fn send(
        &self,
        product: &Product,
        build: impl Fn(&str) -> RequestBuilder,
    ) -> Result<Result<Response, HttpError>, Failure> {
        let token = match token::cached(product.name) {
            Some(token) => token,
            None => self.fresh_token(product)?,
        };
        let answer = build(&token.value).send();
        if token.cached && matches!(&answer, Ok(response) if response.status == 401) {
            token::forget(product.name);
            return Ok(build(&self.fresh_token(product)?.value).send());
        }
        Ok(answer)
    }

    /// A new access token for `product`, cached until shortly before it
    /// expires.
    fn fresh_token(&self, product: &Product) -> Result<AccessToken, Failure> {
        let response = http::post(format!("{}/{}/token/", self.base_url, product.name))
            .basic_auth(&product.api_user, &product.api_key)
            .header("Ocp-Apim-Subscription-Key", product.subscription_key.clone())
            .send()
            .map_err(|e| e.into_failure(PROVIDER))?;
        match response.status {
            200 => token::accept(product.name, &response.body, PROVIDER),
            401 | 403 => Err(Failure::new(
                "PROVIDER_AUTH_FAILED",
                format!(
                    "MTN refused the API user and key for its {} product; check the rail's configuration",
                    product.name
                ),
            )),
            status => {
                Err(Failure::retryable("PROVIDER_UNAVAILABLE", format!("MTN's token endpoint answered {status}")))
            }
        }
    }

    fn bearer_headers(&self, product: &Product, token: &str) -> Vec<(String, String)> {
        vec![
            ("Authorization".to_string(), format!("Bearer {token}")),
            ("Ocp-Apim-Subscription-Key".to_string(), product.subscription_key.clone()),
            ("X-Target-Environment".to_string(), self.target_environment.clone()),
        ]
    }
}
