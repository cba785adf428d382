//! The OpenAPI 3.1 document: generated from the handlers' `#[utoipa::path]`
//! annotations and the objects' `ToSchema`, served at `GET /openapi.json`,
//! printed by `soxara openapi` and checked in as docs/openapi.json (a test
//! fails when the two differ).
//!
//! Each handler module describes its own operations (`Api`); this module
//! joins them and adds what every operation shares (the error envelope as
//! the `default` response, `X-Request-Id` on every response, the two ways to
//! send a key), the links from created objects to the operations on them,
//! and OpenAPI 3.1 `webhooks`.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

use crate::values::money::AMOUNT_MINOR_MAX;
use crate::values::page::PAGE_LIMIT_MAX;

/// The security scheme of `Authorization: Bearer <key>`; each operation
/// names it with the scope it needs.
const BEARER: &str = "api_key";
/// The same keys sent as `X-API-Key: <key>`.
const HEADER: &str = "api_key_header";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Soxara gateway API",
        description = "Payments, refunds, disputes, wallets, FX, transfers to a WhatsApp number, bills and \
trades for merchants in Liberia. Amounts are integers in the currency's minor unit (USD 12.50 is \
`1250`). Test keys (`sxm_test_…`) reach the sandbox, live keys (`sxm_live_…`) real rails, on the same \
URL. Every error is the envelope `{\"error\": {\"code\", \"message\", \"doc_url\", \"request_id\"}}`; \
the codes are listed at `/docs/errors`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "http://127.0.0.1:8080", description = "The gateway `cargo xtask run` starts")),
    tags(
        (name = "Payments", description = "Charging a customer by card, mobile money or wallet."),
        (name = "Refunds", description = "Returning a completed payment's money."),
        (name = "Disputes", description = "Chargebacks the card network opened."),
        (name = "Transactions", description = "Any money movement, by id or reference."),
        (name = "Customers", description = "Customers' wallets and history, with their consent."),
        (name = "Approvals", description = "A customer's one-time code for a debit of their money."),
        (name = "FX", description = "Quotes and swaps between a customer's wallets."),
        (name = "Transfers", description = "Sending money to a WhatsApp number."),
        (name = "Account", description = "The merchant's account, balance, settlements and scopes."),
        (name = "Webhooks", description = "Endpoints the gateway posts events to, and the events."),
        (name = "Bills", description = "Airtime, data, electricity, cable, education, e-pins and betting."),
        (name = "Gift cards", description = "Selling gift cards for money."),
        (name = "Crypto", description = "Selling crypto for money: deposit addresses."),
        (name = "RMB", description = "Buying Chinese yuan for a supplier."),
        (name = "Sandbox", description = "Tools for test keys."),
        (name = "Callbacks", description = "Where providers report outcomes (not for merchants)."),
        (name = "Gateway", description = "Health and documents."),
    ),
    components(schemas(crate::values::error::ErrorEnvelope)),
    modifiers(&Conventions),
)]
struct Base;

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = Base::openapi();
    let parts = [
        super::Api::openapi(),
        super::payments::Api::openapi(),
        super::account::Api::openapi(),
        super::wallets::Api::openapi(),
        super::approvals::Api::openapi(),
        super::fx::Api::openapi(),
        super::transfers::Api::openapi(),
        super::webhooks::Api::openapi(),
        super::bills::Api::openapi(),
        super::gift_cards::Api::openapi(),
        super::crypto::Api::openapi(),
        super::rmb::Api::openapi(),
        super::callbacks::Api::openapi(),
    ];
    for part in parts {
        document.merge(part);
    }
    Conventions.apply(&mut document);
    add_links(&mut document);
    // utoipa 5 has no field for OpenAPI 3.1's `webhooks`; a top-level
    // extension serializes the same.
    document.extensions.get_or_insert_with(Default::default).insert("webhooks".into(), webhooks());
    document
}

/// Where an answer leads, as OpenAPI links: the new object's id (or
/// address) into the operations that read or act on it. Generated clients
/// and schemathesis' stateful phase follow them.
const LINKS: &[(&str, &str, &str, Target)] = &[
    ("create_payment", "GetPayment", "get_payment", Target::Path("id")),
    ("create_payment", "GetTransaction", "get_transaction", Target::Path("lookup")),
    ("create_payment", "RefundPayment", "create_refund", Target::Body("payment_id", "id")),
    ("create_refund", "GetRefund", "get_refund", Target::Path("id")),
    ("create_top_up", "GetTransaction", "get_transaction", Target::Path("lookup")),
    ("request_wallet_access", "GetApproval", "get_approval", Target::Path("id")),
    ("request_wallet_access", "Approve", "approve", Target::Path("id")),
    ("request_wallet_access", "Refuse", "refuse", Target::Path("id")),
    ("create_swap", "GetTransaction", "get_transaction", Target::Path("lookup")),
    ("create_transfer", "GetTransfer", "get_transfer", Target::Path("id")),
    ("create_endpoint", "DeleteEndpoint", "delete_endpoint", Target::Path("id")),
    ("create_endpoint", "RotateSecret", "rotate_secret", Target::Path("id")),
    ("create_endpoint", "PingEndpoint", "ping_endpoint", Target::Path("id")),
    ("ping_endpoint", "GetEvent", "get_event", Target::Path("id")),
    ("ping_endpoint", "RedeliverEvent", "redeliver_event", Target::Path("id")),
    ("buy_airtime", "GetTransaction", "get_transaction", Target::Path("lookup")),
    ("buy_data", "GetTransaction", "get_transaction", Target::Path("lookup")),
    ("buy_electricity", "GetTransaction", "get_transaction", Target::Path("lookup")),
    ("buy_cable", "GetTransaction", "get_transaction", Target::Path("lookup")),
    ("buy_education", "GetTransaction", "get_transaction", Target::Path("lookup")),
    ("buy_epin", "GetTransaction", "get_transaction", Target::Path("lookup")),
    ("buy_bet", "GetTransaction", "get_transaction", Target::Path("lookup")),
    ("sell_gift_card", "GetTransaction", "get_transaction", Target::Path("lookup")),
    ("crypto_address", "TestDeposit", "crypto_test_deposit", Target::Body("address", "address")),
    ("crypto_test_deposit", "GetTransaction", "get_transaction", Target::Path("lookup")),
    ("create_rmb_order", "GetTransaction", "get_transaction", Target::Path("lookup")),
];

/// What a link fills in the operation it leads to.
enum Target {
    /// A path parameter, with the answer's `id`.
    Path(&'static str),
    /// One field of the request body (the rest as the client chooses), with
    /// the answer's field named second.
    Body(&'static str, &'static str),
}

/// Adds [`LINKS`] to the success answers of their operations. (utoipa 5's
/// `Link` serializes `operation_id` in snake case, which OpenAPI does not
/// know: the links go in as JSON, under the response's extensions, which
/// serialize flat.)
fn add_links(openapi: &mut utoipa::openapi::OpenApi) {
    for (from, name, to, target) in LINKS {
        let link = match target {
            Target::Path(parameter) => {
                serde_json::json!({"operationId": to, "parameters": { *parameter: "$response.body#/id" }})
            }
            Target::Body(field, from_field) => {
                serde_json::json!({"operationId": to, "requestBody": { *field: format!("$response.body#/{from_field}") }})
            }
        };
        let mut operations =
            openapi.paths.paths.values_mut().flat_map(|item| {
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete].into_iter().flatten()
            });
        let operation = operations
            .find(|op| op.operation_id.as_deref() == Some(from))
            .unwrap_or_else(|| panic!("link {name} from unknown operation {from}"));
        for (status, response) in operation.responses.responses.iter_mut() {
            if let (true, utoipa::openapi::RefOr::T(response)) = (status.starts_with('2'), response) {
                let extensions = response.extensions.get_or_insert_with(Default::default);
                let links = extensions.entry("links".to_string()).or_insert_with(|| serde_json::json!({}));
                links[*name] = link.clone();
            }
        }
    }
}

/// OpenAPI 3.1 `webhooks`: what the gateway posts to a merchant's endpoint
/// for each event type (docs/webhooks.md), with the signature headers.
fn webhooks() -> serde_json::Value {
    use crate::domain::webhooks::EventType;
    let header = |description: &str| serde_json::json!({"in": "header", "required": true, "schema": {"type": "string"}, "description": description});
    let parameters = [
        ("X-Soxara-Event", "The event type."),
        ("X-Soxara-Delivery", "The delivery id (`whd_…`): one per event and endpoint, the same on every retry."),
        ("X-Soxara-Timestamp", "Unix seconds when this attempt was signed."),
        ("X-Soxara-Signature-256", "`sha256=<hex HMAC-SHA256 of the raw body, keyed with the secret string>`."),
        ("webhook-id", "The event id (`evt_…`), the same on every retry (Standard Webhooks)."),
        ("webhook-timestamp", "The same as `X-Soxara-Timestamp`."),
        (
            "webhook-signature",
            "`v1,<base64 HMAC-SHA256 of \"{webhook-id}.{webhook-timestamp}.{raw body}\">` (Standard Webhooks).",
        ),
    ];
    let parameters: Vec<serde_json::Value> = parameters
        .iter()
        .map(|(name, description)| {
            let mut parameter = header(description);
            parameter["name"] = (*name).into();
            parameter
        })
        .collect();
    let mut webhooks = serde_json::Map::new();
    for event in EventType::ALL {
        let objects: &[&str] = match event {
            EventType::PaymentSucceeded | EventType::PaymentFailed => &["Payment"],
            EventType::RefundSucceeded | EventType::RefundFailed => &["Refund"],
            EventType::DisputeOpened => &["Dispute"],
            EventType::SettlementPaid | EventType::SettlementFailed => &["Settlement"],
            EventType::TransferCompleted | EventType::TransferReturned => &["Transfer"],
            EventType::TransactionCompleted
            | EventType::TransactionFailed
            | EventType::TransactionRefunded
            | EventType::TransactionCancelled => &TRANSACTION_OBJECTS,
            EventType::Ping => &["WebhookEndpoint"],
        };
        let one_of: Vec<serde_json::Value> =
            objects.iter().map(|name| serde_json::json!({"$ref": format!("#/components/schemas/{name}")})).collect();
        let object = if one_of.len() == 1 { one_of[0].clone() } else { serde_json::json!({"oneOf": one_of}) };
        let payload = serde_json::json!({
            "type": "object",
            "required": ["id", "event", "created_at", "livemode", "data"],
            "properties": {
                "id": {"type": "string", "description": "`evt_…`, the same on every delivery of it."},
                "event": {"type": "string", "const": event.as_str()},
                "created_at": {"type": "string", "format": "date-time"},
                "livemode": {"type": "boolean"},
                "data": {
                    "type": "object",
                    "required": ["object"],
                    "properties": {"object": object},
                    "description": "The object the event is about, exactly as the API returns it."
                }
            }
        });
        webhooks.insert(
            event.as_str().to_string(),
            serde_json::json!({"post": {
                "summary": format!("The `{event}` event"),
                "description": "Posted to every endpoint subscribed to it (docs/webhooks.md): verify the signature \
                    on the raw body, deduplicate on the event id, answer 2xx within 15 seconds.",
                "operationId": format!("webhook_{}", event.as_str().replace('.', "_")),
                "tags": ["Webhooks"],
                "parameters": parameters,
                "requestBody": {"required": true, "content": {"application/json": {"schema": payload}}},
                "responses": {"2XX": {"description": "Received; any other answer (or none in 15 s) is retried."}}
            }}),
        );
    }
    serde_json::Value::Object(webhooks)
}

/// What a `transaction.*` event may carry: a payment, or a bill purchase,
/// RMB purchase, gift card sale or crypto sale.
const TRANSACTION_OBJECTS: [&str; 5] = ["Payment", "BillPayment", "RmbPurchase", "GiftCardSaleObject", "CryptoSale"];

/// The document as served and checked in: pretty JSON, one trailing newline.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut text = document().to_pretty_json().expect("the document serializes");
        text.push('\n');
        text
    })
}

/// `GET /openapi.json`: this document (no key needed).
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "get_openapi",
    tag = "Gateway",
    responses((status = 200, description = "This document.", content_type = "application/json")),
)]
pub async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json()).into_response()
}

/// The idempotency key every write takes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // describes a header; read by `extract::key_from_headers`
pub struct IdempotencyKey {
    /// Makes the write safe to retry: the same key with the same body
    /// answers the first outcome again (with `Idempotency-Replayed: true`);
    /// with another body it is `409 IDEMPOTENCY_KEY_REUSED`. 1 to 255
    /// printable ASCII characters; a UUID v4 is ideal. `X-Idempotency-Key`
    /// is accepted too.
    #[param(rename = "Idempotency-Key", min_length = 1, max_length = 255, pattern = "^[!-~]+$")]
    idempotency_key: String,
}

/// A list's page: cursor pagination.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query `fields::page_query` reads
pub struct PageParams {
    /// How many items (1 to 100; 10 if absent).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The last id of the previous page.
    #[param(min_length = 1)]
    starting_after: Option<String>,
}

const _: () = assert!(PAGE_LIMIT_MAX == 100, "PageParams documents the page limit");

/// An amount in the currency's minor unit (USD 12.50 is `1250`): a JSON
/// integer, never a string or a decimal.
pub struct AmountMinor;

impl utoipa::PartialSchema for AmountMinor {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::Int64,
            )))
            .minimum(Some(1))
            .maximum(Some(AMOUNT_MINOR_MAX))
            .description(Some("An amount in the currency's minor unit (USD 12.50 is `1250`): a JSON integer."))
            .examples([1250])
            .into()
    }
}

impl utoipa::ToSchema for AmountMinor {}

/// A write's `metadata`: up to 20 keys of 1 to 40 characters, each a string
/// of up to 500 characters; echoed on the object and its events.
pub struct Metadata;

impl utoipa::PartialSchema for Metadata {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let name = ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(40));
        let value = ObjectBuilder::new().schema_type(Type::String).max_length(Some(500));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(20))
            .property_names(Some(name))
            .additional_properties(Some(value))
            .description(Some("Up to 20 keys of 1 to 40 characters, each a string of up to 500 characters."))
            .examples([serde_json::json!({"order_id": "A-1042"})])
            .into()
    }
}

impl utoipa::ToSchema for Metadata {}

/// A customer named by phone, in a request.
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // describes input `fields::Fields::phone_of` reads
pub struct CustomerInput {
    /// E.164: `+`, then 8 to 15 digits, the first not 0.
    #[schema(pattern = "^\\+[1-9][0-9]{7,14}$", examples("+231770001234"))]
    phone: String,
}

/// A customer a request may name (card payments): `{}` or a `null` phone
/// name nobody.
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // describes input `fields::Fields::phone_of` reads
pub struct OptionalCustomerInput {
    /// E.164: `+`, then 8 to 15 digits, the first not 0.
    #[schema(pattern = "^\\+[1-9][0-9]{7,14}$", examples("+231770001234"))]
    phone: Option<String>,
}

/// What every operation shares, added after the parts are joined.
struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key: secret (`sxm_test_sk_…`, `sxm_live_sk_…`) or, for the scopes that allow \
                         it, public (`sxm_test_pk_…`). The scopes listed are the one the operation needs.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            HEADER,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "The same keys as `Authorization: Bearer`, in a header of their own.",
            ))),
        );
    }
}

impl Conventions {
    /// Runs over the joined document: every operation gets the error
    /// envelope as its `default` response, `X-Request-Id` on every
    /// response, `Idempotency-Replayed` on a keyed write's answers, and the
    /// header way to send its key.
    fn apply(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let request_id = HeaderBuilder::new()
            .schema(plain(Type::String))
            .description(Some("The request's id, also in error bodies and the gateway's logs."))
            .build();
        let retry_after = HeaderBuilder::new()
            .schema(plain(Type::Integer))
            .description(Some(
                "Seconds to wait before retrying (`429 RATE_LIMIT_EXCEEDED`, `503` while the gateway is busy).",
            ))
            .build();
        let replayed = HeaderBuilder::new()
            .schema(plain(Type::String))
            .description(Some("`true` when this answer is a replay of the first one for the key."))
            .build();
        let error = ResponseBuilder::new()
            .description("An error: the envelope with its code (see `/docs/errors`).")
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("Error"))).build())
            .header("X-Request-Id", request_id.clone())
            .header("Retry-After", retry_after)
            .build();
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
                &mut item.trace,
            ]
            .into_iter()
            .flatten()
            {
                // Keyed writes replay their first answer, marked.
                let keyed = operation.parameters.iter().flatten().any(|p| p.name == "Idempotency-Key");
                for (status, response) in operation.responses.responses.iter_mut() {
                    if let utoipa::openapi::RefOr::T(response) = response {
                        if keyed && status.starts_with('2') {
                            response.headers.insert("Idempotency-Replayed".into(), replayed.clone());
                        }
                        response.headers.insert("X-Request-Id".into(), request_id.clone());
                    }
                }
                operation.responses.responses.insert("default".into(), error.clone().into());
                if let Some(security) = operation.security.as_mut() {
                    let with_header: Vec<SecurityRequirement> = security.iter().filter_map(in_header).collect();
                    security.extend(with_header);
                }
            }
        }
    }
}

/// The bearer requirement `requirement` states, for the key sent in
/// `X-API-Key` (same scopes).
fn in_header(requirement: &SecurityRequirement) -> Option<SecurityRequirement> {
    let serde_json::Value::Object(schemes) = serde_json::to_value(requirement).ok()? else { return None };
    let scopes: Vec<String> = serde_json::from_value(schemes.get(BEARER)?.clone()).ok()?;
    Some(SecurityRequirement::new(HEADER, scopes))
}

fn plain(kind: Type) -> utoipa::openapi::schema::Object {
    ObjectBuilder::new().schema_type(kind).build()
}
