//! The API's one error type. Every failure a merchant can see is a variant
//! here, with its status and its envelope `{"error":{"code","message",
//! "doc_url","request_id","fields"?}}` (the HTTP layer sends it). Codes are
//! unique per variant (a test checks) and never a 500 for bad input. What
//! went wrong inside (a plugin's trap, a database error) goes to the log
//! with the request id, never into the message.

use axum::http::StatusCode;
use serde::Serialize;

/// Where each code is documented: docs/errors.md, which the gateway serves
/// at this path (relative to the API's own address, so it is right behind
/// any host name); the code, lower-cased, is the anchor.
pub const DOC_URL_BASE: &str = "/docs/errors#";

tokio::task_local! {
    /// The id of the request being served, set by the request-id middleware.
    pub static REQUEST_ID: String;
}

/// A field that failed validation and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("No API key was provided. Send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`.")]
    AuthenticationRequired,
    #[error("The API key is invalid or has been revoked.")]
    AuthenticationFailed,
    #[error("This endpoint requires a secret key (sxm_…_sk_…); public keys cannot use it.")]
    SecretKeyRequired,
    #[error(
        "Write requests require an `X-Idempotency-Key` (or `Idempotency-Key`) header; generate a UUID v4 per operation."
    )]
    IdempotencyKeyRequired,
    #[error("A request with this idempotency key is still being processed. Wait a moment and retry.")]
    IdempotencyInProgress,
    #[error("This idempotency key was already used with a different request body. Use a new key for a new operation.")]
    IdempotencyKeyReused,
    #[error("The request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("The request body exceeds {limit_bytes} bytes.")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("The request body did not arrive in time; send it again, all at once.")]
    RequestTimeout,
    #[error("One or more request fields are missing or invalid.")]
    Validation(Vec<FieldError>),
    /// A well-formed request naming what is not offered now: a provider,
    /// plan, channel, brand or asset outside the catalogue, or an amount
    /// outside its range (the catalogue endpoints list what is).
    #[error("{}: {}", .0.field, .0.message)]
    NotOffered(FieldError),
    #[error("No {what} with that id exists on this account.")]
    NotFound { what: &'static str },
    #[error("There is no endpoint {method} {path}.")]
    RouteNotFound { method: String, path: String },
    #[error("{method} is not allowed on {path}.")]
    MethodNotAllowed { method: String, path: String },
    #[error("{0}")]
    PaymentMethodUnavailable(String),
    #[error("This endpoint works with test keys only (sxm_test_…).")]
    TestModeOnly,
    #[error("The quote expired at {expired_at}; request a new quote.")]
    QuoteExpired { expired_at: String },
    #[error("There is no {from}/{to} conversion: quotes convert between two different currencies.")]
    CurrencyPairUnsupported { from: String, to: String },
    #[error("The quote was already used by {by}; request a new quote.")]
    QuoteAlreadyUsed { by: String },
    #[error("An account may have at most {max} webhook endpoints per mode; delete one first.")]
    WebhookEndpointLimit { max: i64 },
    #[error("No FX provider could give a {from}/{to} rate right now; retry shortly.")]
    FxRateUnavailable { from: String, to: String },
    #[error(
        "The payment rail failed to handle this request. The payment {payment_id} is left processing and will not be charged twice."
    )]
    RailFailed { payment_id: String },
    #[error("{0}")]
    RefundNotAllowed(String),
    #[error("The refund is for more than is left to refund: {refundable} minor units of {currency}.")]
    RefundExceedsPayment { refundable: i64, currency: String },
    #[error("The callback was refused: {0}")]
    CallbackRejected(String),
    #[error("The callback could not be handled now ({0}); send it again later.")]
    CallbackFailed(String),
    #[error("The admin token is missing or wrong.")]
    AdminAuthenticationFailed,
    #[error("{0}")]
    PluginRejected(String),
    #[error("This API key does not have the {scope} scope this endpoint needs (see GET /v1/scopes).")]
    InvalidScope { scope: &'static str },
    #[error("Live keys must be sent over HTTPS; this request came over plain HTTP.")]
    HttpsRequired,
    #[error(
        "The X-Forwarded-For header from the gateway's proxy is not a list of IP addresses; the request is refused \
         rather than guessed at. Check the proxy's configuration."
    )]
    ForwardingMalformed,
    #[error("This API key may not be used from {ip}; add the address to the key's IP allowlist.")]
    IpNotAllowed { ip: String },
    #[error("This account is suspended. Contact support to restore API access.")]
    AccountSuspended,
    #[error("This account is deactivated. Reactivate it to restore API access.")]
    AccountDeactivated,
    #[error(
        "This key needs KYC Tier {needed}; the account is at Tier {tier}. Sandbox keys need Tier 2, live keys Tier 3."
    )]
    KycTierInsufficient { needed: u8, tier: u8 },
    #[error("Live keys need KYB & Compliance (business verification) approval; sandbox keys are unaffected.")]
    KybVerificationRequired,
    #[error("An account may have at most {max} active key pairs per mode; revoke one first.")]
    KeyLimitReached { max: i64 },
    #[error("This API key may make {per_minute} requests a minute; retry after {retry_after_s} s.")]
    RateLimited { per_minute: u32, retry_after_s: u64 },
    #[error(
        "Your {currency} balance available for transfers is {available} minor units; this transfer needs {needed}. \
         Transfers are paid from money collected by mobile money and wallet payments."
    )]
    TransferBalanceInsufficient { currency: String, available: i64, needed: u64 },
    #[error(
        "Your {currency} balance is {available} minor units; this purchase needs {needed}. Nothing was bought and \
         nothing was taken."
    )]
    InsufficientFunds { currency: String, available: i64, needed: u64 },
    #[error("The customer identifier could not be verified: {0}")]
    VerificationFailed(String),
    #[error("{0}")]
    ProviderUnavailable(String),
    #[error("No messaging channel is configured for {mode} mode to send this phone number a code; nothing was done.")]
    MessagingUnavailable { mode: super::mode::Mode },
    /// The same answer whether money is waiting or not, so that nobody
    /// learns it from a guess.
    #[error(
        "The claim code is wrong, expired or replaced by a newer one, or nothing is waiting for this phone number; \
         {attempts_left} more wrong codes for this number lock its codes for a while."
    )]
    ClaimCodeInvalid { attempts_left: i64 },
    #[error(
        "The approval code is wrong; {attempts_left} more wrong codes for this phone number fail the approval and \
         lock its codes for a while."
    )]
    ApprovalCodeInvalid { attempts_left: i64 },
    #[error(
        "Too many wrong codes were sent for this phone number; its codes are locked for a while. Money waiting for \
         it keeps waiting."
    )]
    CodeAttemptsExceeded,
    #[error("The approval is {status}, no longer pending; nothing changed.")]
    ApprovalNotPending { status: super::status::ApprovalStatus },
    #[error("The trade is {status}, no longer pending; nothing changed.")]
    TradeNotPending { status: String },
    #[error("This test deposit was already recorded as {sale}; use a new test_reference.")]
    DepositAlreadyRecorded { sale: String },
    #[error("An internal error occurred; it has been logged with the request id.")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// `field` names what the catalogue does not offer (`NOT_OFFERED`).
    pub fn not_offered(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::NotOffered(FieldError { field: field.into(), message: message.into() })
    }

    /// One invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![FieldError { field: field.into(), message: message.into() }])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::AuthenticationRequired | ApiError::AuthenticationFailed | ApiError::AdminAuthenticationFailed => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::PluginRejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::SecretKeyRequired => StatusCode::FORBIDDEN,
            ApiError::IdempotencyKeyRequired | ApiError::InvalidJson(_) | ApiError::Validation(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::IdempotencyInProgress => StatusCode::CONFLICT,
            ApiError::IdempotencyKeyReused
            | ApiError::PaymentMethodUnavailable(_)
            | ApiError::QuoteExpired { .. }
            | ApiError::CurrencyPairUnsupported { .. }
            | ApiError::NotOffered(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TransferBalanceInsufficient { .. } | ApiError::InsufficientFunds { .. } => {
                StatusCode::PAYMENT_REQUIRED
            }
            ApiError::VerificationFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::ProviderUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::MessagingUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::ClaimCodeInvalid { .. } | ApiError::ApprovalCodeInvalid { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::CodeAttemptsExceeded => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ApprovalNotPending { .. }
            | ApiError::TradeNotPending { .. }
            | ApiError::DepositAlreadyRecorded { .. } => StatusCode::CONFLICT,
            ApiError::TestModeOnly => StatusCode::FORBIDDEN,
            ApiError::QuoteAlreadyUsed { .. } | ApiError::WebhookEndpointLimit { .. } => StatusCode::CONFLICT,
            ApiError::FxRateUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotFound { .. } | ApiError::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RailFailed { .. } => StatusCode::BAD_GATEWAY,
            ApiError::CallbackFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::CallbackRejected(_) | ApiError::ForwardingMalformed => StatusCode::BAD_REQUEST,
            ApiError::RefundNotAllowed(_) | ApiError::RefundExceedsPayment { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::InvalidScope { .. }
            | ApiError::HttpsRequired
            | ApiError::IpNotAllowed { .. }
            | ApiError::AccountSuspended
            | ApiError::AccountDeactivated
            | ApiError::KycTierInsufficient { .. }
            | ApiError::KybVerificationRequired => StatusCode::FORBIDDEN,
            ApiError::KeyLimitReached { .. } => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::AuthenticationRequired => "AUTHENTICATION_REQUIRED",
            ApiError::AuthenticationFailed => "AUTHENTICATION_FAILED",
            ApiError::SecretKeyRequired => "SECRET_KEY_REQUIRED",
            ApiError::IdempotencyKeyRequired => "IDEMPOTENCY_KEY_REQUIRED",
            ApiError::IdempotencyInProgress => "IDEMPOTENCY_REQUEST_IN_PROGRESS",
            ApiError::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ApiError::InvalidJson(_) => "INVALID_JSON",
            ApiError::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            ApiError::RequestTimeout => "REQUEST_TIMEOUT",
            ApiError::Validation(_) => "VALIDATION_ERROR",
            ApiError::NotFound { .. } => "RESOURCE_NOT_FOUND",
            ApiError::RouteNotFound { .. } => "ROUTE_NOT_FOUND",
            ApiError::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            ApiError::PaymentMethodUnavailable(_) => "PAYMENT_METHOD_UNAVAILABLE",
            ApiError::TransferBalanceInsufficient { .. } => "INSUFFICIENT_BALANCE",
            ApiError::InsufficientFunds { .. } => "INSUFFICIENT_FUNDS",
            ApiError::VerificationFailed(_) => "VERIFICATION_FAILED",
            ApiError::ProviderUnavailable(_) => "PROVIDER_UNAVAILABLE",
            ApiError::MessagingUnavailable { .. } => "MESSAGING_UNAVAILABLE",
            ApiError::ClaimCodeInvalid { .. } => "CLAIM_CODE_INVALID",
            ApiError::ApprovalCodeInvalid { .. } => "APPROVAL_CODE_INVALID",
            ApiError::CodeAttemptsExceeded => "CODE_ATTEMPTS_EXCEEDED",
            ApiError::ApprovalNotPending { .. } => "APPROVAL_NOT_PENDING",
            ApiError::TradeNotPending { .. } => "TRADE_NOT_PENDING",
            ApiError::DepositAlreadyRecorded { .. } => "DEPOSIT_ALREADY_RECORDED",
            ApiError::TestModeOnly => "TEST_MODE_ONLY",
            ApiError::QuoteExpired { .. } => "QUOTE_EXPIRED",
            ApiError::CurrencyPairUnsupported { .. } => "CURRENCY_PAIR_UNSUPPORTED",
            ApiError::NotOffered(_) => "NOT_OFFERED",
            ApiError::QuoteAlreadyUsed { .. } => "QUOTE_ALREADY_USED",
            ApiError::FxRateUnavailable { .. } => "FX_RATE_UNAVAILABLE",
            ApiError::WebhookEndpointLimit { .. } => "WEBHOOK_ENDPOINT_LIMIT",
            ApiError::RailFailed { .. } => "RAIL_ERROR",
            ApiError::CallbackRejected(_) => "CALLBACK_REJECTED",
            ApiError::RefundNotAllowed(_) => "REFUND_NOT_ALLOWED",
            ApiError::RefundExceedsPayment { .. } => "REFUND_EXCEEDS_PAYMENT",
            ApiError::CallbackFailed(_) => "CALLBACK_FAILED",
            ApiError::AdminAuthenticationFailed => "ADMIN_AUTHENTICATION_FAILED",
            ApiError::PluginRejected(_) => "PLUGIN_REJECTED",
            ApiError::RateLimited { .. } => "RATE_LIMIT_EXCEEDED",
            ApiError::InvalidScope { .. } => "INVALID_SCOPE",
            ApiError::IpNotAllowed { .. } => "IP_NOT_ALLOWED",
            ApiError::HttpsRequired => "HTTPS_REQUIRED",
            ApiError::ForwardingMalformed => "FORWARDING_HEADER_INVALID",
            ApiError::AccountSuspended => "ACCOUNT_SUSPENDED",
            ApiError::AccountDeactivated => "ACCOUNT_DEACTIVATED",
            ApiError::KycTierInsufficient { .. } => "KYC_TIER_INSUFFICIENT",
            ApiError::KybVerificationRequired => "KYB_VERIFICATION_REQUIRED",
            ApiError::KeyLimitReached { .. } => "KEY_LIMIT_REACHED",
            ApiError::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// The error envelope, with the current request id when there is one.
    pub fn envelope(&self) -> ErrorEnvelope {
        let code = self.code();
        ErrorEnvelope {
            error: ErrorBody {
                code,
                message: self.to_string(),
                doc_url: format!("{DOC_URL_BASE}{}", code.to_ascii_lowercase()),
                request_id: REQUEST_ID.try_with(Clone::clone).ok(),
                fields: match self {
                    ApiError::Validation(fields) => Some(fields.clone()),
                    ApiError::NotOffered(field) => Some(vec![field.clone()]),
                    _ => None,
                },
                payment_id: match self {
                    ApiError::RailFailed { payment_id } => Some(payment_id.clone()),
                    _ => None,
                },
            },
        }
    }
}

/// The error object every failure is sent as.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, stable: branch on this (docs/errors.md).
    #[schema(schema_with = error_code_schema)]
    pub code: &'static str,
    /// What went wrong and what to do, for people.
    pub message: String,
    /// The code's entry in the errors page.
    #[schema(examples("/docs/errors#validation_error"))]
    pub doc_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Each invalid field and why (`VALIDATION_ERROR`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldError>>,
    /// The payment left processing (`RAIL_ERROR`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
}

/// Every error code, from the errors page's status table (rows of
/// ``| 400 | [`CODE`](#code) |``); a test checks the list against the
/// variants.
pub fn error_codes() -> Vec<&'static str> {
    ERRORS_PAGE
        .lines()
        .filter_map(|line| line.strip_prefix("| ")?.split_once(" | [`")?.1.split_once('`').map(|(code, _)| code))
        .collect()
}

/// docs/errors.md, compiled in: served at `/docs/errors`.
pub const ERRORS_PAGE: &str = include_str!("../../../docs/errors.md");

fn error_code_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(error_codes()))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each variant: adding a variant without listing it here fails
    /// to compile the match below.
    fn every_variant() -> Vec<ApiError> {
        let all = vec![
            ApiError::AuthenticationRequired,
            ApiError::AuthenticationFailed,
            ApiError::SecretKeyRequired,
            ApiError::IdempotencyKeyRequired,
            ApiError::IdempotencyInProgress,
            ApiError::IdempotencyKeyReused,
            ApiError::InvalidJson(String::new()),
            ApiError::PayloadTooLarge { limit_bytes: 1 },
            ApiError::RequestTimeout,
            ApiError::Validation(vec![]),
            ApiError::NotFound { what: "payment" },
            ApiError::RouteNotFound { method: "GET".into(), path: "/".into() },
            ApiError::MethodNotAllowed { method: "GET".into(), path: "/".into() },
            ApiError::PaymentMethodUnavailable(String::new()),
            ApiError::TransferBalanceInsufficient { currency: String::new(), available: 0, needed: 1 },
            ApiError::InsufficientFunds { currency: String::new(), available: 0, needed: 1 },
            ApiError::VerificationFailed(String::new()),
            ApiError::ProviderUnavailable(String::new()),
            ApiError::MessagingUnavailable { mode: crate::values::mode::Mode::Live },
            ApiError::ClaimCodeInvalid { attempts_left: 1 },
            ApiError::ApprovalCodeInvalid { attempts_left: 1 },
            ApiError::CodeAttemptsExceeded,
            ApiError::ApprovalNotPending { status: crate::values::status::ApprovalStatus::Expired },
            ApiError::TradeNotPending { status: String::new() },
            ApiError::DepositAlreadyRecorded { sale: String::new() },
            ApiError::TestModeOnly,
            ApiError::QuoteExpired { expired_at: String::new() },
            ApiError::CurrencyPairUnsupported { from: String::new(), to: String::new() },
            ApiError::not_offered("plan", ""),
            ApiError::QuoteAlreadyUsed { by: String::new() },
            ApiError::FxRateUnavailable { from: String::new(), to: String::new() },
            ApiError::WebhookEndpointLimit { max: 3 },
            ApiError::RailFailed { payment_id: String::new() },
            ApiError::AdminAuthenticationFailed,
            ApiError::PluginRejected(String::new()),
            ApiError::CallbackRejected(String::new()),
            ApiError::RefundNotAllowed(String::new()),
            ApiError::RefundExceedsPayment { refundable: 0, currency: String::new() },
            ApiError::CallbackFailed(String::new()),
            ApiError::RateLimited { per_minute: 10, retry_after_s: 6 },
            ApiError::InvalidScope { scope: "payments:write" },
            ApiError::IpNotAllowed { ip: String::new() },
            ApiError::HttpsRequired,
            ApiError::ForwardingMalformed,
            ApiError::AccountSuspended,
            ApiError::AccountDeactivated,
            ApiError::KycTierInsufficient { needed: 2, tier: 0 },
            ApiError::KybVerificationRequired,
            ApiError::KeyLimitReached { max: 5 },
            ApiError::Internal(anyhow::anyhow!("x")),
        ];
        for e in &all {
            match e {
                ApiError::AuthenticationRequired
                | ApiError::AuthenticationFailed
                | ApiError::SecretKeyRequired
                | ApiError::IdempotencyKeyRequired
                | ApiError::IdempotencyInProgress
                | ApiError::IdempotencyKeyReused
                | ApiError::InvalidJson(_)
                | ApiError::PayloadTooLarge { .. }
                | ApiError::RequestTimeout
                | ApiError::Validation(_)
                | ApiError::NotFound { .. }
                | ApiError::RouteNotFound { .. }
                | ApiError::MethodNotAllowed { .. }
                | ApiError::PaymentMethodUnavailable(_)
                | ApiError::TransferBalanceInsufficient { .. }
                | ApiError::InsufficientFunds { .. }
                | ApiError::VerificationFailed(_)
                | ApiError::ProviderUnavailable(_)
                | ApiError::MessagingUnavailable { .. }
                | ApiError::ClaimCodeInvalid { .. }
                | ApiError::ApprovalCodeInvalid { .. }
                | ApiError::CodeAttemptsExceeded
                | ApiError::ApprovalNotPending { .. }
                | ApiError::TradeNotPending { .. }
                | ApiError::DepositAlreadyRecorded { .. }
                | ApiError::TestModeOnly
                | ApiError::QuoteExpired { .. }
                | ApiError::CurrencyPairUnsupported { .. }
                | ApiError::NotOffered(_)
                | ApiError::QuoteAlreadyUsed { .. }
                | ApiError::FxRateUnavailable { .. }
                | ApiError::WebhookEndpointLimit { .. }
                | ApiError::RailFailed { .. }
                | ApiError::AdminAuthenticationFailed
                | ApiError::PluginRejected(_)
                | ApiError::CallbackRejected(_)
                | ApiError::RefundNotAllowed(_)
                | ApiError::RefundExceedsPayment { .. }
                | ApiError::CallbackFailed(_)
                | ApiError::RateLimited { .. }
                | ApiError::InvalidScope { .. }
                | ApiError::IpNotAllowed { .. }
                | ApiError::HttpsRequired
                | ApiError::ForwardingMalformed
                | ApiError::AccountSuspended
                | ApiError::AccountDeactivated
                | ApiError::KycTierInsufficient { .. }
                | ApiError::KybVerificationRequired
                | ApiError::KeyLimitReached { .. }
                | ApiError::Internal(_) => {}
            }
        }
        all
    }

    #[test]
    fn every_code_has_its_entry_in_the_errors_page() {
        let page = ERRORS_PAGE;
        for e in every_variant() {
            let anchor = format!("<a id=\"{}\"></a>", e.code().to_ascii_lowercase());
            assert!(page.contains(&anchor), "docs/errors.md has no entry for {}", e.code());
            let row = format!("| {} | [`{}`]", e.status().as_u16(), e.code());
            assert!(page.contains(&row), "docs/errors.md lists {} with another status", e.code());
        }
    }

    #[test]
    fn the_errors_page_lists_exactly_the_codes() {
        let mut listed = error_codes();
        listed.sort_unstable();
        let mut codes: Vec<&str> = every_variant().iter().map(ApiError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(listed, codes);
    }

    #[test]
    fn error_codes_are_unique() {
        let mut codes: Vec<&str> = every_variant().iter().map(ApiError::code).collect();
        let count = codes.len();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), count, "two variants share a code");
    }

    #[test]
    fn only_internal_errors_are_500() {
        for e in every_variant() {
            let is_internal = matches!(e, ApiError::Internal(_));
            assert_eq!(e.status() == StatusCode::INTERNAL_SERVER_ERROR, is_internal, "{}", e.code());
        }
    }
}
