//! Bills: the catalogue, plan listings, identifier checks and purchases
//! (`/v1/bills/…`). Reads need `bills:read`, purchases `bills:write` and an
//! idempotency key; all need a secret key (a check names a customer).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiQuery, keyed_write, read_body, reply};
use super::fields::{Fields, Parsed, fail};
use super::listing::Listing;
use super::openapi::IdempotencyKey;
use crate::domain::billers::wit;
use crate::domain::scopes::Scope;
use crate::operations::bills::{self, BillPayment, NewPurchase, plans_path, provider_field, verify_path};
use crate::operations::idempotency::WriteEndpoint;
use crate::plugins::billers::{IdentifierCheck, Provider};
use crate::values::error::{ApiError, FieldError};
use crate::values::status::{BillType, ObjectType};

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    catalog,
    data_plans,
    cable_plans,
    education_plans,
    epin_plans,
    verify_electricity,
    verify_cable,
    verify_education,
    verify_bet,
    buy_airtime,
    buy_data,
    buy_electricity,
    buy_cable,
    buy_education,
    buy_epin,
    buy_bet
))]
pub(super) struct Api;

/// Longest provider slug, plan code or meter type.
const NAME_CHARS_MAX: usize = 64;
/// Most ePINs one purchase may buy.
const QUANTITY_MAX: u64 = 10;

/// The field that holds a bill type's primary customer identifier.
fn identifier_field(bill_type: BillType) -> &'static str {
    match bill_type {
        BillType::Airtime | BillType::Data | BillType::Epin => "phone",
        BillType::Electricity => "meter_number",
        BillType::Cable => "smartcard_number",
        BillType::Education => "profile_id",
        BillType::Bet => "account_id",
    }
}

fn endpoint(bill_type: BillType) -> WriteEndpoint {
    match bill_type {
        BillType::Airtime => WriteEndpoint::BillAirtime,
        BillType::Data => WriteEndpoint::BillData,
        BillType::Electricity => WriteEndpoint::BillElectricity,
        BillType::Cable => WriteEndpoint::BillCable,
        BillType::Education => WriteEndpoint::BillEducation,
        BillType::Epin => WriteEndpoint::BillEpin,
        BillType::Bet => WriteEndpoint::BillBet,
    }
}

/// A phone as billers take it: E.164 or the local format the provider's
/// country prints (`09012341234`), 7 to 15 digits.
fn bill_phone(text: &str) -> Result<String, String> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_string())
    } else {
        Err("must be a phone number of 7 to 15 digits, local (09012341234) or E.164 (+231770001234)".into())
    }
}

/// A meter, smartcard, profile or account number: 4 to 32 letters, digits
/// and dashes (the biller checks the provider's own format).
fn account_number(text: &str) -> Result<String, String> {
    let fits = (4..=32).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if fits { Ok(text.to_string()) } else { Err("must be 4 to 32 letters, digits or dashes".into()) }
}

/// A string field checked by `check`.
fn checked(
    fields: &Fields,
    field: &str,
    required: bool,
    errors: &mut Vec<FieldError>,
    check: fn(&str) -> Result<String, String>,
) -> Option<String> {
    let text = fields.string(field, NAME_CHARS_MAX, required, errors)?;
    check(&text).map_err(|why| fail(errors, field, why)).ok()
}

/// A provider slug or plan code, lower-cased as the catalogue spells it;
/// never empty (whether the catalogue has it is `operations::bills`' to say).
fn slug(fields: &Fields, field: &str, required: bool, errors: &mut Vec<FieldError>) -> Option<String> {
    let text = fields.string(field, NAME_CHARS_MAX, required, errors)?;
    if text.is_empty() {
        fail(errors, field, "must not be empty");
        return None;
    }
    Some(text.to_ascii_lowercase())
}

/// A meter's type, `prepaid` (the default) or `postpaid`.
fn meter_type(fields: &Fields, errors: &mut Vec<FieldError>) -> Option<String> {
    match fields.string("meter_type", NAME_CHARS_MAX, false, errors).as_deref() {
        None => Some("prepaid".into()),
        Some(kind @ ("prepaid" | "postpaid")) => Some(kind.into()),
        Some(_) => {
            fail(errors, "meter_type", "must be prepaid or postpaid");
            None
        }
    }
}

/// The fields a purchase of `bill_type` takes.
fn purchase_fields(bill_type: BillType) -> &'static [&'static str] {
    match bill_type {
        BillType::Airtime => &["network", "phone", "amount", "currency"],
        BillType::Data => &["network", "phone", "plan"],
        BillType::Electricity => &["provider", "meter_number", "meter_type", "amount", "currency", "phone"],
        BillType::Cable => &["provider", "smartcard_number", "plan", "phone"],
        BillType::Education => &["provider", "profile_id", "plan", "phone"],
        BillType::Epin => &["provider", "plan", "quantity", "phone"],
        BillType::Bet => &["provider", "account_id", "amount", "currency", "phone"],
    }
}

fn parse_purchase(bill_type: BillType, body: &[u8]) -> Result<Parsed<NewPurchase>, ApiError> {
    let known = purchase_fields(bill_type);
    let fields = Fields::parse(body, known)?;
    let mut errors = fields.errors();
    let provider = slug(&fields, provider_field(bill_type), true, &mut errors);
    let id_field = identifier_field(bill_type);
    let identifier = match id_field {
        "phone" => checked(&fields, id_field, true, &mut errors, bill_phone),
        _ => checked(&fields, id_field, true, &mut errors, account_number),
    };
    let phone = match id_field {
        "phone" => identifier.clone(),
        _ => checked(&fields, "phone", false, &mut errors, bill_phone),
    };
    let identifier_kind = match bill_type {
        BillType::Electricity => meter_type(&fields, &mut errors),
        _ => None,
    };
    // Required where the body takes one (the types sold only by plan).
    let plan = match (known.contains(&"plan"), fields.get("/plan")) {
        (false, _) => None,
        (true, None) => {
            let listing = plans_path(bill_type).unwrap_or("/v1/bills/catalog");
            fail(&mut errors, "plan", format!("is required: a plan code from GET {listing}"));
            None
        }
        (true, Some(_)) => slug(&fields, "plan", true, &mut errors),
    };
    // Required where the type sells by amount; the catalogue says whether a
    // provider does (`operations::bills` refuses a mismatch).
    let amount = if known.contains(&"amount") && fields.get("/amount").is_some() {
        let amount = fields.amount(&mut errors);
        let currency = fields.currency("currency", &mut errors);
        amount.zip(currency)
    } else {
        if known.contains(&"amount") {
            fail(&mut errors, "amount", "is required: an integer of minor units (e.g. 50000 for LRD 500.00)");
        }
        None
    };
    let quantity = match fields.get("/quantity") {
        None => Some(1),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|q| (1..=QUANTITY_MAX).contains(&q)) => {
            n.as_u64().and_then(|q| u32::try_from(q).ok())
        }
        Some(_) => {
            fail(&mut errors, "quantity", format!("must be a whole number from 1 to {QUANTITY_MAX}"));
            None
        }
    };
    let purchase = match (provider, identifier, quantity) {
        (Some(provider), Some(identifier), Some(quantity)) => {
            Some(NewPurchase { bill_type, provider, identifier, identifier_kind, plan, quantity, amount, phone })
        }
        _ => None,
    };
    fields.done(purchase, errors)
}

async fn purchase(
    bill_type: BillType,
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (request, new) = keyed_write(&caller, Scope::BillsWrite, endpoint(bill_type), &headers, body, |body| {
        parse_purchase(bill_type, body)
    })
    .await?;
    reply(bills::purchase(&state.ops, request, new).await?)
}

/// Buy airtime
///
/// Tops up a phone's airtime on a network, for an amount within the provider's
/// range (`GET /v1/bills/catalog?type=airtime`). The price is taken from the
/// merchant's balance when the purchase is made and returned if the provider
/// does not deliver.
///
/// With test keys, the last 4 digits of `phone` choose the outcome: `0000`
/// refunded, `9999` stays processing, `4040` failed (it does not verify),
/// anything else completed.
#[utoipa::path(
    post,
    path = "/v1/bills/airtime",
    tag = "Bills",
    params(IdempotencyKey),
    request_body = doc::AirtimeBody,
    responses(
        (status = 201, description = "The bill purchase: `processing`, `completed`, `refunded` or `failed`.", body = BillPayment),
    ),
    security(("api_key" = ["bills:write"])),
)]
pub async fn buy_airtime(State(s): State<AppState>, c: Caller, h: HeaderMap, b: Body) -> Result<Response, ApiError> {
    purchase(BillType::Airtime, s, c, h, b).await
}

/// Buy a data bundle
///
/// Buys a data plan (`GET /v1/bills/data-plans`) for a phone, at the plan's
/// price. The price is taken from the merchant's balance when the purchase is
/// made and returned if the provider does not deliver.
///
/// With test keys, the last 4 digits of `phone` choose the outcome: `0000`
/// refunded, `9999` stays processing, `4040` failed (it does not verify),
/// anything else completed.
#[utoipa::path(
    post,
    path = "/v1/bills/data",
    tag = "Bills",
    params(IdempotencyKey),
    request_body = doc::DataBody,
    responses(
        (status = 201, description = "The bill purchase: `processing`, `completed`, `refunded` or `failed`.", body = BillPayment),
    ),
    security(("api_key" = ["bills:write"])),
)]
pub async fn buy_data(State(s): State<AppState>, c: Caller, h: HeaderMap, b: Body) -> Result<Response, ApiError> {
    purchase(BillType::Data, s, c, h, b).await
}

/// Buy electricity
///
/// Pays for electricity on a meter, for an amount within the provider's range;
/// the token for a prepaid meter comes in `bill.tokens` once delivered. The
/// price is taken from the merchant's balance when the purchase is made and
/// returned if the provider does not deliver.
///
/// With test keys, the last 4 digits of `meter_number` choose the outcome:
/// `0000` refunded, `9999` stays processing, `4040` failed (it does not
/// verify), anything else completed.
#[utoipa::path(
    post,
    path = "/v1/bills/electricity",
    tag = "Bills",
    params(IdempotencyKey),
    request_body = doc::ElectricityBody,
    responses(
        (status = 201, description = "The bill purchase: `processing`, `completed`, `refunded` or `failed`.", body = BillPayment),
    ),
    security(("api_key" = ["bills:write"])),
)]
pub async fn buy_electricity(
    State(s): State<AppState>,
    c: Caller,
    h: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    purchase(BillType::Electricity, s, c, h, b).await
}

/// Pay for cable TV
///
/// Renews a smartcard's TV bouquet (`GET /v1/bills/cable-plans`), at the plan's
/// price. The price is taken from the merchant's balance when the purchase is
/// made and returned if the provider does not deliver.
///
/// With test keys, the last 4 digits of `smartcard_number` choose the outcome:
/// `0000` refunded, `9999` stays processing, `4040` failed (it does not
/// verify), anything else completed.
#[utoipa::path(
    post,
    path = "/v1/bills/cable",
    tag = "Bills",
    params(IdempotencyKey),
    request_body = doc::CableBody,
    responses(
        (status = 201, description = "The bill purchase: `processing`, `completed`, `refunded` or `failed`.", body = BillPayment),
    ),
    security(("api_key" = ["bills:write"])),
)]
pub async fn buy_cable(State(s): State<AppState>, c: Caller, h: HeaderMap, b: Body) -> Result<Response, ApiError> {
    purchase(BillType::Cable, s, c, h, b).await
}

/// Buy an education PIN
///
/// Buys an exam registration PIN (`GET /v1/bills/education-plans`) for a JAMB
/// profile, at the plan's price; the PIN comes in `bill.tokens` once delivered.
/// The price is taken from the merchant's balance when the purchase is made and
/// returned if the provider does not deliver.
///
/// With test keys, the last 4 digits of `profile_id` choose the outcome: `0000`
/// refunded, `9999` stays processing, `4040` failed (it does not verify),
/// anything else completed.
#[utoipa::path(
    post,
    path = "/v1/bills/education",
    tag = "Bills",
    params(IdempotencyKey),
    request_body = doc::EducationBody,
    responses(
        (status = 201, description = "The bill purchase: `processing`, `completed`, `refunded` or `failed`.", body = BillPayment),
    ),
    security(("api_key" = ["bills:write"])),
)]
pub async fn buy_education(State(s): State<AppState>, c: Caller, h: HeaderMap, b: Body) -> Result<Response, ApiError> {
    purchase(BillType::Education, s, c, h, b).await
}

/// Buy ePINs
///
/// Buys 1 to 10 recharge PINs of a plan (`GET /v1/bills/epin-plans`), at the
/// plan's price times the quantity; the PINs come in `bill.tokens` once
/// delivered. The price is taken from the merchant's balance when the purchase
/// is made and returned if the provider does not deliver.
///
/// With test keys, the last 4 digits of `phone` choose the outcome: `0000`
/// refunded, `9999` stays processing, `4040` failed (it does not verify),
/// anything else completed.
#[utoipa::path(
    post,
    path = "/v1/bills/epin",
    tag = "Bills",
    params(IdempotencyKey),
    request_body = doc::EpinBody,
    responses(
        (status = 201, description = "The bill purchase: `processing`, `completed`, `refunded` or `failed`.", body = BillPayment),
    ),
    security(("api_key" = ["bills:write"])),
)]
pub async fn buy_epin(State(s): State<AppState>, c: Caller, h: HeaderMap, b: Body) -> Result<Response, ApiError> {
    purchase(BillType::Epin, s, c, h, b).await
}

/// Fund a betting account
///
/// Credits a bet account, for an amount within the provider's range. The price
/// is taken from the merchant's balance when the purchase is made and returned
/// if the provider does not deliver.
///
/// With test keys, the last 4 digits of `account_id` choose the outcome: `0000`
/// refunded, `9999` stays processing, `4040` failed (it does not verify),
/// anything else completed.
#[utoipa::path(
    post,
    path = "/v1/bills/bet",
    tag = "Bills",
    params(IdempotencyKey),
    request_body = doc::BetBody,
    responses(
        (status = 201, description = "The bill purchase: `processing`, `completed`, `refunded` or `failed`.", body = BillPayment),
    ),
    security(("api_key" = ["bills:write"])),
)]
pub async fn buy_bet(State(s): State<AppState>, c: Caller, h: HeaderMap, b: Body) -> Result<Response, ApiError> {
    purchase(BillType::Bet, s, c, h, b).await
}

/// An amount range of the catalogue, in minor units.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Amounts {
    currency: String,
    min: u64,
    max: u64,
}

/// One provider of one bill type, with the endpoints that serve it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CatalogEntry {
    object: ObjectType,
    #[serde(rename = "type")]
    bill_type: BillType,
    /// The slug requests name it by (`network` for airtime and data).
    provider: String,
    name: String,
    /// Purchases name a plan (`plan`) rather than an amount.
    by_plan: bool,
    /// What a purchase by amount may be, per currency (empty when sold by
    /// plan).
    amounts: Vec<Amounts>,
    /// Its customers' identifiers can be checked (`…/verify`).
    verifiable: bool,
    /// The endpoints that serve it, e.g. `POST /v1/bills/cable`.
    endpoints: Vec<String>,
}

impl CatalogEntry {
    fn new(bill_type: BillType, provider: &Provider) -> CatalogEntry {
        let field = provider_field(bill_type);
        let mut endpoints = Vec::new();
        if let Some(path) = plans_path(bill_type).filter(|_| provider.by_plan) {
            endpoints.push(format!("GET {path}?{field}={}", provider.slug));
        }
        if let Some(path) = verify_path(bill_type).filter(|_| provider.verifiable) {
            endpoints.push(format!("POST {path}"));
        }
        endpoints.push(format!("POST /v1/bills/{bill_type}"));
        CatalogEntry {
            object: ObjectType::BillProvider,
            bill_type,
            provider: provider.slug.clone(),
            name: provider.name.clone(),
            by_plan: provider.by_plan,
            amounts: provider
                .amounts
                .iter()
                .map(|r| Amounts { currency: r.currency.clone(), min: r.min, max: r.max })
                .collect(),
            verifiable: provider.verifiable,
            endpoints,
        }
    }
}

/// The query parameter `name`, refusing any other.
fn only_param<'a>(query: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut value = None;
    for (key, v) in query {
        if key != name {
            return Err(ApiError::invalid(key, format!("is not a known parameter; expected {name}")));
        }
        value = Some(v.as_str());
    }
    Ok(value)
}

/// List bill providers
///
/// Every provider the gateway sells from in the key's mode, of one bill
/// type or all: whether it sells by plan or by amount (and in what range),
/// whether its customers can be verified, and the endpoints that serve it.
#[utoipa::path(
    get,
    path = "/v1/bills/catalog",
    operation_id = "bill_catalog",
    tag = "Bills",
    params(("type" = Option<BillType>, Query, description = "Only the providers of this bill type.")),
    responses((status = 200, description = "The providers.", body = Listing<CatalogEntry>)),
    security(("api_key" = ["bills:read"])),
)]
pub async fn catalog(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Listing<CatalogEntry>>, ApiError> {
    caller.require(Scope::BillsRead)?;
    let only = match only_param(&query, "type")? {
        None => None,
        Some(text) => Some(
            BillType::parse(text)
                .ok_or_else(|| ApiError::invalid("type", format!("must be one of {}", BillType::words())))?,
        ),
    };
    let mut entries = Vec::new();
    for (bill_type, biller) in state.ops.billers.bound(caller.tenant.mode) {
        if only.is_some_and(|t| t != bill_type) {
            continue;
        }
        let providers = biller.info.providers.iter().filter(|p| p.bill_type == wit(bill_type));
        entries.extend(providers.map(|p| CatalogEntry::new(bill_type, p)));
    }
    Ok(Listing::of(entries))
}

/// One plan, priced in minor units.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanEntry {
    object: ObjectType,
    #[serde(rename = "type")]
    bill_type: BillType,
    provider: String,
    /// What a purchase's `plan` names.
    code: String,
    name: String,
    /// The plan's price, in minor units of `currency`.
    amount: u64,
    currency: String,
}

async fn list_plans(
    bill_type: BillType,
    state: AppState,
    caller: Caller,
    query: Vec<(String, String)>,
) -> Result<axum::Json<Listing<PlanEntry>>, ApiError> {
    caller.require(Scope::BillsRead)?;
    let field = provider_field(bill_type);
    let slug = only_param(&query, field)?
        .filter(|slug| !slug.is_empty())
        .ok_or_else(|| ApiError::invalid(field, format!("is required; see GET /v1/bills/catalog?type={bill_type}")))?
        .to_ascii_lowercase();
    let biller = bills::biller_for(&state.ops, caller.tenant.mode, bill_type)?;
    let provider = bills::provider_of(&biller, bill_type, &slug)?;
    if !provider.by_plan {
        return Err(ApiError::not_offered(field, format!("{slug} sells by amount, not by plan; it has no plans")));
    }
    let plans = bills::plans(Arc::clone(&biller), bill_type, &provider).await?;
    Ok(Listing::of(
        plans
            .into_iter()
            .map(|plan| PlanEntry {
                object: ObjectType::BillPlan,
                bill_type,
                provider: slug.clone(),
                code: plan.code,
                name: plan.name,
                amount: plan.price.amount,
                currency: plan.price.currency,
            })
            .collect(),
    ))
}

/// List data plans
///
/// The data bundles a network sells, with their codes and prices.
#[utoipa::path(
    get,
    path = "/v1/bills/data-plans",
    tag = "Bills",
    params(doc::NetworkQuery),
    responses((status = 200, description = "The plans, priced in minor units.", body = Listing<PlanEntry>)),
    security(("api_key" = ["bills:read"])),
)]
pub async fn data_plans(
    State(s): State<AppState>,
    c: Caller,
    ApiQuery(q): ApiQuery,
) -> Result<axum::Json<Listing<PlanEntry>>, ApiError> {
    list_plans(BillType::Data, s, c, q).await
}

/// List cable TV plans
///
/// The TV bouquets a cable provider sells, with their codes and prices.
#[utoipa::path(
    get,
    path = "/v1/bills/cable-plans",
    tag = "Bills",
    params(doc::ProviderQuery),
    responses((status = 200, description = "The plans, priced in minor units.", body = Listing<PlanEntry>)),
    security(("api_key" = ["bills:read"])),
)]
pub async fn cable_plans(
    State(s): State<AppState>,
    c: Caller,
    ApiQuery(q): ApiQuery,
) -> Result<axum::Json<Listing<PlanEntry>>, ApiError> {
    list_plans(BillType::Cable, s, c, q).await
}

/// List education plans
///
/// The exam PINs an education provider sells, with their codes and prices.
#[utoipa::path(
    get,
    path = "/v1/bills/education-plans",
    tag = "Bills",
    params(doc::ProviderQuery),
    responses((status = 200, description = "The plans, priced in minor units.", body = Listing<PlanEntry>)),
    security(("api_key" = ["bills:read"])),
)]
pub async fn education_plans(
    State(s): State<AppState>,
    c: Caller,
    ApiQuery(q): ApiQuery,
) -> Result<axum::Json<Listing<PlanEntry>>, ApiError> {
    list_plans(BillType::Education, s, c, q).await
}

/// List ePIN plans
///
/// The recharge PINs a provider sells, with their codes and prices.
#[utoipa::path(
    get,
    path = "/v1/bills/epin-plans",
    tag = "Bills",
    params(doc::ProviderQuery),
    responses((status = 200, description = "The plans, priced in minor units.", body = Listing<PlanEntry>)),
    security(("api_key" = ["bills:read"])),
)]
pub async fn epin_plans(
    State(s): State<AppState>,
    c: Caller,
    ApiQuery(q): ApiQuery,
) -> Result<axum::Json<Listing<PlanEntry>>, ApiError> {
    list_plans(BillType::Epin, s, c, q).await
}

/// Who an identifier belongs to.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BillCustomer {
    object: ObjectType,
    #[serde(rename = "type")]
    bill_type: BillType,
    provider: String,
    /// The meter, smartcard, profile or account number checked.
    customer_identifier: String,
    /// The customer's name as the provider knows it.
    name: String,
    /// Whatever else the provider tells (address, current plan, …).
    details: BTreeMap<String, String>,
}

async fn verify(
    bill_type: BillType,
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<BillCustomer>, ApiError> {
    caller.require(Scope::BillsRead)?;
    let id_field = identifier_field(bill_type);
    let mut known = vec!["provider", id_field];
    if bill_type == BillType::Electricity {
        known.push("meter_type");
    }
    let body = read_body(&headers, body).await?;
    let fields = Fields::parse(&body, &known)?;
    let mut errors = fields.errors();
    let provider = slug(&fields, "provider", true, &mut errors);
    let identifier = checked(&fields, id_field, true, &mut errors, account_number);
    let identifier_kind = match bill_type {
        BillType::Electricity => meter_type(&fields, &mut errors),
        _ => None,
    };
    let (Some(slug), Some(identifier)) = (provider, identifier) else {
        return Err(ApiError::Validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let biller = bills::biller_for(&state.ops, caller.tenant.mode, bill_type)?;
    let provider = bills::provider_of(&biller, bill_type, &slug)?;
    if !provider.verifiable {
        return Err(ApiError::not_offered("provider", format!("{slug} has no customer check; purchase directly")));
    }
    let check = IdentifierCheck {
        bill_type: wit(bill_type),
        provider: slug.clone(),
        identifier: identifier.clone(),
        identifier_kind,
    };
    let caller_biller = Arc::clone(&biller);
    let answer = crate::plugins::call_blocking(move || caller_biller.verify(&check)).await;
    match answer {
        Ok(Ok(customer)) => Ok(axum::Json(BillCustomer {
            object: ObjectType::BillCustomer,
            bill_type,
            provider: slug,
            customer_identifier: identifier,
            name: customer.name,
            details: customer.details.into_iter().collect(),
        })),
        Ok(Err(failure)) if failure.retryable => Err(ApiError::ProviderUnavailable(format!(
            "The bill provider could not check the identifier now ({}); retry shortly.",
            failure.message
        ))),
        Ok(Err(failure)) if failure.code == "VERIFICATION_FAILED" => Err(ApiError::VerificationFailed(failure.message)),
        // Any other refusal is the provider's or the biller's, not the customer's.
        Ok(Err(failure)) => {
            tracing::warn!(biller = biller.plugin_name(), code = %failure.code, message = %failure.message, "verify refused");
            Err(ApiError::ProviderUnavailable("The bill provider could not check the identifier.".into()))
        }
        Err(error) => Err(bills::unavailable(&biller, &error)),
    }
}

/// Verify a meter
///
/// Asks the electricity provider whose meter it is, before a purchase. With
/// test keys, every well-formed `meter_number` verifies except those ending in
/// `4040`.
#[utoipa::path(
    post,
    path = "/v1/bills/electricity/verify",
    tag = "Bills",
    request_body = doc::VerifyMeterBody,
    responses((status = 200, description = "Whose it is.", body = BillCustomer)),
    security(("api_key" = ["bills:read"])),
)]
pub async fn verify_electricity(
    State(s): State<AppState>,
    c: Caller,
    h: HeaderMap,
    b: Body,
) -> Result<axum::Json<BillCustomer>, ApiError> {
    verify(BillType::Electricity, s, c, h, b).await
}

/// Verify a smartcard
///
/// Asks the cable provider whose smartcard it is, before a purchase. With test
/// keys, every well-formed `smartcard_number` verifies except those ending in
/// `4040`.
#[utoipa::path(
    post,
    path = "/v1/bills/cable/verify",
    tag = "Bills",
    request_body = doc::VerifySmartcardBody,
    responses((status = 200, description = "Whose it is.", body = BillCustomer)),
    security(("api_key" = ["bills:read"])),
)]
pub async fn verify_cable(
    State(s): State<AppState>,
    c: Caller,
    h: HeaderMap,
    b: Body,
) -> Result<axum::Json<BillCustomer>, ApiError> {
    verify(BillType::Cable, s, c, h, b).await
}

/// Verify a JAMB profile
///
/// Asks the education provider whose profile it is, before a purchase. With
/// test keys, every well-formed `profile_id` verifies except those ending in
/// `4040`.
#[utoipa::path(
    post,
    path = "/v1/bills/education/verify",
    tag = "Bills",
    request_body = doc::VerifyProfileBody,
    responses((status = 200, description = "Whose it is.", body = BillCustomer)),
    security(("api_key" = ["bills:read"])),
)]
pub async fn verify_education(
    State(s): State<AppState>,
    c: Caller,
    h: HeaderMap,
    b: Body,
) -> Result<axum::Json<BillCustomer>, ApiError> {
    verify(BillType::Education, s, c, h, b).await
}

/// Verify a bet account
///
/// Asks the betting provider whose account it is, before funding it. With test
/// keys, every well-formed `account_id` verifies except those ending in `4040`.
#[utoipa::path(
    post,
    path = "/v1/bills/bet/verify",
    tag = "Bills",
    request_body = doc::VerifyBetAccountBody,
    responses((status = 200, description = "Whose it is.", body = BillCustomer)),
    security(("api_key" = ["bills:read"])),
)]
pub async fn verify_bet(
    State(s): State<AppState>,
    c: Caller,
    h: HeaderMap,
    b: Body,
) -> Result<axum::Json<BillCustomer>, ApiError> {
    verify(BillType::Bet, s, c, h, b).await
}

/// The request bodies and queries as the OpenAPI document shows them (read
/// by hand above, so that every bad field is reported).
#[allow(dead_code)]
mod doc {
    use crate::http::openapi::AmountMinor;
    use crate::values::money::Currency;

    const _: () = assert!(super::NAME_CHARS_MAX == 64 && super::QUANTITY_MAX == 10, "the bodies document these limits");

    /// A phone as billers take it: 7 to 15 digits, local (`09012341234`)
    /// or E.164 (`+231770001234`).
    #[derive(utoipa::ToSchema)]
    #[schema(value_type = String, pattern = "^\\+?[0-9]{7,15}$", examples("+231770001234"))]
    pub struct BillPhone(String);

    /// A meter, smartcard, JAMB profile or bet account number: 4 to 32
    /// letters, digits and dashes (the provider checks its own format).
    #[derive(utoipa::ToSchema)]
    #[schema(value_type = String, pattern = "^[A-Za-z0-9-]{4,32}$", examples("04123456789"))]
    pub struct AccountNumber(String);

    /// A meter's type; `prepaid` if absent.
    #[derive(utoipa::ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum MeterType {
        Prepaid,
        Postpaid,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"network": "mtn", "phone": "+231770001234", "amount": 50000, "currency": "LRD"})))]
    pub struct AirtimeBody {
        /// The network's slug (`GET /v1/bills/catalog?type=airtime`), any
        /// case.
        #[schema(min_length = 1, max_length = 64)]
        network: String,
        phone: BillPhone,
        /// Within the provider's range for `currency`.
        amount: AmountMinor,
        currency: Currency,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"network": "mtn", "phone": "+231770001234", "plan": "mtn-1gb-7d"})))]
    pub struct DataBody {
        /// The network's slug (`GET /v1/bills/catalog?type=data`), any
        /// case.
        #[schema(min_length = 1, max_length = 64)]
        network: String,
        phone: BillPhone,
        /// A plan code of the network (`GET /v1/bills/data-plans`), any
        /// case.
        #[schema(min_length = 1, max_length = 64)]
        plan: String,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"provider": "lec", "meter_number": "04123456789", "meter_type": "prepaid", "amount": 100000, "currency": "LRD", "phone": "+231770001234"})))]
    pub struct ElectricityBody {
        /// The provider's slug (`GET /v1/bills/catalog?type=electricity`),
        /// any case.
        #[schema(min_length = 1, max_length = 64)]
        provider: String,
        meter_number: AccountNumber,
        meter_type: Option<MeterType>,
        /// Within the provider's range for `currency`.
        amount: AmountMinor,
        currency: Currency,
        /// The customer's phone, for the provider's notice.
        phone: Option<BillPhone>,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"provider": "dstv", "smartcard_number": "7027123456", "plan": "dstv-compact", "phone": "+231770001234"})))]
    pub struct CableBody {
        /// The provider's slug (`GET /v1/bills/catalog?type=cable`), any
        /// case.
        #[schema(min_length = 1, max_length = 64)]
        provider: String,
        smartcard_number: AccountNumber,
        /// A bouquet's code (`GET /v1/bills/cable-plans`), any case.
        #[schema(min_length = 1, max_length = 64)]
        plan: String,
        /// The customer's phone, for the provider's notice.
        phone: Option<BillPhone>,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"provider": "jamb", "profile_id": "1234567890", "plan": "utme", "phone": "+231770001234"})))]
    pub struct EducationBody {
        /// The provider's slug (`GET /v1/bills/catalog?type=education`),
        /// any case.
        #[schema(min_length = 1, max_length = 64)]
        provider: String,
        profile_id: AccountNumber,
        /// A plan code (`GET /v1/bills/education-plans`), any case.
        #[schema(min_length = 1, max_length = 64)]
        plan: String,
        /// The customer's phone, for the provider's notice.
        phone: Option<BillPhone>,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"provider": "waec", "plan": "waec-checker", "quantity": 2, "phone": "+231770001234"})))]
    pub struct EpinBody {
        /// The provider's slug (`GET /v1/bills/catalog?type=epin`), any
        /// case.
        #[schema(min_length = 1, max_length = 64)]
        provider: String,
        /// A plan code (`GET /v1/bills/epin-plans`), any case.
        #[schema(min_length = 1, max_length = 64)]
        plan: String,
        /// How many PINs; 1 if absent.
        #[schema(minimum = 1, maximum = 10)]
        quantity: Option<u32>,
        /// The customer's phone.
        phone: BillPhone,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"provider": "lonestar-bet", "account_id": "12345678", "amount": 50000, "currency": "LRD"})))]
    pub struct BetBody {
        /// The provider's slug (`GET /v1/bills/catalog?type=bet`), any
        /// case.
        #[schema(min_length = 1, max_length = 64)]
        provider: String,
        account_id: AccountNumber,
        /// Within the provider's range for `currency`.
        amount: AmountMinor,
        currency: Currency,
        /// The customer's phone, for the provider's notice.
        phone: Option<BillPhone>,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"provider": "lec", "meter_number": "04123456789", "meter_type": "prepaid"})))]
    pub struct VerifyMeterBody {
        /// The provider's slug, any case.
        #[schema(min_length = 1, max_length = 64)]
        provider: String,
        meter_number: AccountNumber,
        meter_type: Option<MeterType>,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"provider": "dstv", "smartcard_number": "7027123456"})))]
    pub struct VerifySmartcardBody {
        /// The provider's slug, any case.
        #[schema(min_length = 1, max_length = 64)]
        provider: String,
        smartcard_number: AccountNumber,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"provider": "jamb", "profile_id": "1234567890"})))]
    pub struct VerifyProfileBody {
        /// The provider's slug, any case.
        #[schema(min_length = 1, max_length = 64)]
        provider: String,
        profile_id: AccountNumber,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"provider": "lonestar-bet", "account_id": "12345678"})))]
    pub struct VerifyBetAccountBody {
        /// The provider's slug, any case.
        #[schema(min_length = 1, max_length = 64)]
        provider: String,
        account_id: AccountNumber,
    }

    /// The network whose plans to list; no other parameter is taken.
    #[derive(utoipa::IntoParams)]
    #[into_params(parameter_in = Query)]
    pub struct NetworkQuery {
        /// The network's slug (`GET /v1/bills/catalog?type=data`), any
        /// case.
        #[param(min_length = 1)]
        network: String,
    }

    /// The provider whose plans to list; no other parameter is taken.
    #[derive(utoipa::IntoParams)]
    #[into_params(parameter_in = Query)]
    pub struct ProviderQuery {
        /// The provider's slug (`GET /v1/bills/catalog`), any case.
        #[param(min_length = 1)]
        provider: String,
    }
}
