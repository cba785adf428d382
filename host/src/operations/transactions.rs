//! Transactions as merchants look them up: one by idempotency key,
//! reference or id; a customer's history with one merchant (payments,
//! refunds, top-ups, swaps and transfers, newest first, in cursor pages);
//! and verification of a payment a customer says they made. Each kind is
//! read through its own module.

use rusqlite::Connection;
use serde::Serialize;

use super::bills::{BillPayment, BillPaymentRow};
use super::crypto::{CryptoSale, SaleRow as CryptoSaleRow};
use super::gift_cards::{GiftCardSaleObject, GiftCardSaleRow};
use super::idempotency;
use super::objects::{Payment, Refund, Settlement, Swap, TopUp, Transfer};
use super::payments::PaymentRow;
use super::refunds::RefundRow;
use super::rmb::{RmbPurchase, RmbPurchaseRow};
use super::settlements::SettlementRow;
use super::swaps::SwapRow;
use super::top_ups::TopUpRow;
use super::transfers::TransferRow;
use crate::domain::customers;
use crate::store::{Store, StoreError, load_owned};
use crate::values::error::ApiError;
use crate::values::mode::Tenant;
use crate::values::money::Currency;
use crate::values::page::{Page, PageRequest};
use crate::values::status::{PaymentStatus, TransactionKind};
use crate::values::text::text_enum;

/// Any money movement, as its own object.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Transaction {
    Payment(Payment),
    Refund(Refund),
    TopUp(TopUp),
    Swap(Swap),
    Transfer(Transfer),
    BillPayment(BillPayment),
    RmbPurchase(RmbPurchase),
    GiftCardSale(GiftCardSaleObject),
    CryptoSale(CryptoSale),
    Settlement(Settlement),
}

/// In the OpenAPI document: any of the objects (`anyOf`, not `oneOf`: a
/// completed payment is also a valid top-up object, say); its `object`
/// field says which.
impl utoipa::PartialSchema for Transaction {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        fn of<T: utoipa::ToSchema>() -> utoipa::openapi::Ref {
            utoipa::openapi::Ref::from_schema_name(T::name())
        }
        utoipa::openapi::schema::AnyOfBuilder::new()
            .item(of::<Payment>())
            .item(of::<Refund>())
            .item(of::<TopUp>())
            .item(of::<Swap>())
            .item(of::<Transfer>())
            .item(of::<BillPayment>())
            .item(of::<RmbPurchase>())
            .item(of::<GiftCardSaleObject>())
            .item(of::<CryptoSale>())
            .item(of::<Settlement>())
            .description(Some("Any money movement, as its own object: `object` says which."))
            .into()
    }
}

impl utoipa::ToSchema for Transaction {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        fn add<T: utoipa::ToSchema>(
            schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
        ) {
            schemas.push((T::name().into(), T::schema()));
            T::schemas(schemas);
        }
        add::<Payment>(schemas);
        add::<Refund>(schemas);
        add::<TopUp>(schemas);
        add::<Swap>(schemas);
        add::<Transfer>(schemas);
        add::<BillPayment>(schemas);
        add::<RmbPurchase>(schemas);
        add::<GiftCardSaleObject>(schemas);
        add::<CryptoSale>(schemas);
        add::<Settlement>(schemas);
    }
}

impl Transaction {
    /// Its kind, as `?type=` names it.
    pub fn kind(&self) -> TransactionKind {
        match self {
            Transaction::Payment(_) => TransactionKind::Payment,
            Transaction::Refund(_) => TransactionKind::Refund,
            Transaction::TopUp(_) => TransactionKind::TopUp,
            Transaction::Swap(_) => TransactionKind::Swap,
            Transaction::Transfer(_) => TransactionKind::Transfer,
            Transaction::BillPayment(_) => TransactionKind::BillPayment,
            Transaction::RmbPurchase(_) => TransactionKind::RmbPurchase,
            Transaction::GiftCardSale(_) => TransactionKind::GiftCardSale,
            Transaction::CryptoSale(_) => TransactionKind::CryptoSale,
            Transaction::Settlement(_) => TransactionKind::Settlement,
        }
    }
}

/// The tenant's transaction `id` (its kind told by the id's prefix); `None`
/// if it does not exist or is someone else's.
pub fn owned(conn: &Connection, tenant: &Tenant, id: &str) -> Result<Option<Transaction>, StoreError> {
    Ok(match TransactionKind::of_id(id) {
        Some(TransactionKind::Payment) => {
            load_owned::<PaymentRow>(conn, tenant, id)?.map(|p| Transaction::Payment(p.object()))
        }
        Some(TransactionKind::Refund) => {
            load_owned::<RefundRow>(conn, tenant, id)?.map(|r| Transaction::Refund(r.object()))
        }
        Some(TransactionKind::TopUp) => {
            load_owned::<TopUpRow>(conn, tenant, id)?.map(|t| Transaction::TopUp(t.object()))
        }
        Some(TransactionKind::Swap) => load_owned::<SwapRow>(conn, tenant, id)?.map(|s| Transaction::Swap(s.object())),
        Some(TransactionKind::Transfer) => match load_owned::<TransferRow>(conn, tenant, id)? {
            Some(transfer) => Some(Transaction::Transfer(transfer.object(conn)?)),
            None => None,
        },
        Some(TransactionKind::BillPayment) => {
            load_owned::<BillPaymentRow>(conn, tenant, id)?.map(|b| Transaction::BillPayment(b.object()))
        }
        Some(TransactionKind::RmbPurchase) => {
            load_owned::<RmbPurchaseRow>(conn, tenant, id)?.map(|r| Transaction::RmbPurchase(r.object()))
        }
        Some(TransactionKind::GiftCardSale) => {
            load_owned::<GiftCardSaleRow>(conn, tenant, id)?.map(|g| Transaction::GiftCardSale(g.object()))
        }
        Some(TransactionKind::CryptoSale) => {
            load_owned::<CryptoSaleRow>(conn, tenant, id)?.map(|c| Transaction::CryptoSale(c.object()))
        }
        Some(TransactionKind::Settlement) => {
            load_owned::<SettlementRow>(conn, tenant, id)?.map(|s| Transaction::Settlement(s.object()))
        }
        None => None,
    })
}

/// The tenant's transaction an idempotency key, a payment reference or an
/// id names.
fn lookup(conn: &Connection, tenant: &Tenant, lookup: &str) -> Result<Option<Transaction>, StoreError> {
    type ByReference = fn(&Connection, &Tenant, &str) -> Result<Option<String>, StoreError>;
    const BY_REFERENCE: [ByReference; 5] = [
        PaymentRow::id_by_reference,
        BillPaymentRow::id_by_reference,
        RmbPurchaseRow::id_by_reference,
        GiftCardSaleRow::id_by_reference,
        CryptoSaleRow::id_by_reference,
    ];
    let mut id = idempotency::transaction_for_key(conn, tenant, lookup)?;
    for by_reference in BY_REFERENCE {
        if id.is_some() {
            break;
        }
        id = by_reference(conn, tenant, lookup)?;
    }
    owned(conn, tenant, id.as_deref().unwrap_or(lookup))
}

/// `GET /v1/transactions/{idempotency key, reference or id}[?type=]`: one
/// of another kind than `kind` (when given) is not found.
pub async fn find(
    store: &Store,
    tenant: &Tenant,
    key_reference_or_id: String,
    kind: Option<TransactionKind>,
) -> Result<Transaction, ApiError> {
    let tenant = tenant.clone();
    let found = store.read(move |conn| lookup(conn, &tenant, &key_reference_or_id)).await?;
    found.filter(|t| kind.is_none_or(|kind| t.kind() == kind)).ok_or(ApiError::NotFound { what: "transaction" })
}

text_enum! {
    /// Why a payment did not verify: the first check that failed.
    pub enum Unverified {
        NotFound => "not_found",
        NotCompleted => "not_completed",
        CurrencyMismatch => "currency_mismatch",
        AmountMismatch => "amount_mismatch",
    }
}

/// A validated `POST /v1/transactions/verify` body.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// A reference, id or idempotency key of the caller's.
    pub reference: String,
    pub amount_minor: u64,
    pub currency: Currency,
}

/// What verification answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub verified: bool,
    pub reason: Option<Unverified>,
    pub transaction: Option<Payment>,
}

/// `POST /v1/transactions/verify`: whether the payment `reference` names
/// completed for exactly `amount` of `currency`. Gate fulfilment on
/// `verified: true`; otherwise `reason` says which check failed first.
pub async fn verify(store: &Store, tenant: &Tenant, request: VerifyRequest) -> Result<Verification, ApiError> {
    let tenant = tenant.clone();
    let reference = request.reference.clone();
    let found = store.read(move |conn| lookup(conn, &tenant, &reference)).await?;
    // Only payments prove that a customer paid: a refund or a top-up with
    // the same fields must not pass.
    let payment = match found {
        Some(Transaction::Payment(payment)) => Some(payment),
        _ => None,
    };
    let reason = match &payment {
        None => Some(Unverified::NotFound),
        Some(p) if p.status != PaymentStatus::Completed => Some(Unverified::NotCompleted),
        Some(p) if p.currency != request.currency => Some(Unverified::CurrencyMismatch),
        Some(p) if u64::try_from(p.amount).ok() != Some(request.amount_minor) => Some(Unverified::AmountMismatch),
        Some(_) => None,
    };
    Ok(Verification { verified: reason.is_none(), reason, transaction: payment })
}

/// `GET /v1/customers/{phone}/transactions`: a page of the customer's
/// history with the tenant, newest first.
pub async fn customer_history(
    store: &Store,
    tenant: &Tenant,
    phone: String,
    page: PageRequest,
) -> Result<Page<Transaction>, ApiError> {
    let tenant = tenant.clone();
    let page = store
        .read(move |conn| {
            // The cursor must be one of this customer's transactions with
            // this merchant.
            let before = match &page.starting_after {
                None => None,
                Some(id) => Some(customers::history_position(conn, &tenant, &phone, id)?.ok_or(
                    // Well-formed, but no such transaction: like an unknown id in a path.
                    StoreError::rejected(ApiError::NotFound {
                        what: "transaction of this customer (the `starting_after` cursor)",
                    }),
                )?),
            };
            let ids = customers::history(conn, &tenant, &phone, before, page.limit + 1)?;
            let mut data = Vec::with_capacity(ids.len());
            for id in ids {
                let transaction = owned(conn, &tenant, &id)?;
                data.push(transaction.ok_or_else(|| StoreError::Invariant(format!("{id} is indexed but missing")))?);
            }
            Ok(Page::from_fetched(data, page.limit))
        })
        .await?;
    Ok(page)
}
