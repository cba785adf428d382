//! Bill purchases: airtime, data, electricity, cable TV, education, ePINs
//! and bet funding, bought from the biller bound to the bill type with the
//! merchant's balance. A purchase is a [`RailOperation`] carried by a
//! biller: claimed together with its idempotency key, the merchant's money
//! taken in that same write (refused with nothing written when the balance
//! is short), then asked of the biller under the purchase id and recorded
//! by the lifecycle; status checks follow one left processing.
//!
//! The money is the merchant's spending balance ([`merchant_funds`]).
//!
//! Ledger, in the wallet entity (transaction = the purchase id):
//! - `bill_hold` when it is made: the balance +A, `bill_clearing` −A;
//! - `bill_paid` when delivered: `bill_clearing` +A, `biller_payable` −(A−F),
//!   `fee_revenue` −F (the fee F is the platform's share of A);
//! - `bill_return` when refunded or failed: `bill_clearing` +A, the balance −A.
//!
//! This module owns the `bill_payments` table and the bill transaction object.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::context::Context;
use super::idempotency::{self, Claimed, KeyedRequest, Reply, StoredResponse};
use super::lifecycle::{self, Answer, FailureReason, RailOperation, RailWork};
use super::merchant_funds;
use super::objects::NextAction;
use crate::domain::billers::wit;
use crate::domain::wallets::Wallets;
use crate::domain::webhooks::{self, EventType};
use crate::ledger::{self, Account, AccountKind, EntryKind, PLATFORM_OWNER, Posting};
use crate::plugins::billers::{Plan, Provider, PurchaseOutcome, PurchaseRequest};
use crate::plugins::{LoadedBiller, PluginError, TransactionStatus};
use crate::store::{StoreError, TenantRecord};
use crate::values::clock::{serialize_rfc3339, serialize_rfc3339_opt};
use crate::values::entity::Entity;
use crate::values::error::ApiError;
use crate::values::mode::{Mode, Tenant};
use crate::values::money::{self, AMOUNT_MINOR_MAX, Currency, display_amount};
use crate::values::page::{Page, PageRequest};
use crate::values::status::{BillStatus, BillType, ObjectType, TransactionKind};

/// The platform's fee on a bill, in basis points of its amount, rounded
/// down: its share of what the provider is owed (the seed's example, 50 of
/// 5,000).
pub const BILL_FEE_BPS: u64 = 100;

/// A validated purchase request.
#[derive(Debug, Clone)]
pub struct NewPurchase {
    pub bill_type: BillType,
    /// The provider's slug (`network` for airtime and data).
    pub provider: String,
    /// Phone, meter, smartcard, JAMB profile or bet account.
    pub identifier: String,
    /// A meter's type (`prepaid`, `postpaid`).
    pub identifier_kind: Option<String>,
    pub plan: Option<String>,
    pub quantity: u32,
    /// For purchases by amount.
    pub amount: Option<(u64, Currency)>,
    /// The customer's contact phone.
    pub phone: Option<String>,
}

/// What a purchase costs and how it is described.
#[derive(Debug, Clone)]
struct Priced {
    amount_minor: u64,
    currency: Currency,
    description: String,
}

/// The request field that names the provider of a bill type.
pub fn provider_field(bill_type: BillType) -> &'static str {
    match bill_type {
        BillType::Airtime | BillType::Data => "network",
        _ => "provider",
    }
}

/// Where the plans of a bill type are listed, if it has any.
pub fn plans_path(bill_type: BillType) -> Option<&'static str> {
    match bill_type {
        BillType::Data => Some("/v1/bills/data-plans"),
        BillType::Cable => Some("/v1/bills/cable-plans"),
        BillType::Education => Some("/v1/bills/education-plans"),
        BillType::Epin => Some("/v1/bills/epin-plans"),
        BillType::Airtime | BillType::Electricity | BillType::Bet => None,
    }
}

/// Where the identifiers of a bill type are verified, if they can be.
pub fn verify_path(bill_type: BillType) -> Option<&'static str> {
    match bill_type {
        BillType::Electricity => Some("/v1/bills/electricity/verify"),
        BillType::Cable => Some("/v1/bills/cable/verify"),
        BillType::Education => Some("/v1/bills/education/verify"),
        BillType::Bet => Some("/v1/bills/bet/verify"),
        BillType::Airtime | BillType::Data | BillType::Epin => None,
    }
}

/// The biller selling `bill_type` in `mode`.
pub fn biller_for(ctx: &Context, mode: Mode, bill_type: BillType) -> Result<Arc<LoadedBiller>, ApiError> {
    ctx.billers.for_type(mode, bill_type).ok_or_else(|| {
        ApiError::ProviderUnavailable(format!("No biller sells {bill_type} bills in {mode} mode on this gateway."))
    })
}

/// The provider `slug` of `bill_type` at `biller`, or why the request's
/// field is wrong.
pub fn provider_of(biller: &LoadedBiller, bill_type: BillType, slug: &str) -> Result<Provider, ApiError> {
    biller.provider(wit(bill_type), slug).cloned().ok_or_else(|| {
        ApiError::not_offered(
            provider_field(bill_type),
            format!("is not a {bill_type} provider; see GET /v1/bills/catalog?type={bill_type}"),
        )
    })
}

/// A plugin that gave no usable answer to a read (plans, verify).
pub fn unavailable(biller: &LoadedBiller, error: &PluginError) -> ApiError {
    tracing::warn!(biller = biller.plugin_name(), %error, "the biller gave no answer");
    ApiError::ProviderUnavailable("The bill provider did not answer; retry shortly.".into())
}

/// The plans of a provider sold by plan.
pub async fn plans(biller: Arc<LoadedBiller>, bill_type: BillType, provider: &Provider) -> Result<Vec<Plan>, ApiError> {
    let slug = provider.slug.clone();
    let caller = Arc::clone(&biller);
    match crate::plugins::call_blocking(move || caller.plans(wit(bill_type), &slug)).await {
        Ok(Ok(plans)) => Ok(plans),
        Ok(Err(failure)) => Err(ApiError::ProviderUnavailable(format!(
            "The bill provider could not list its plans ({}); retry shortly.",
            failure.message
        ))),
        Err(error) => Err(unavailable(&biller, &error)),
    }
}

/// Prices a purchase: the plan's price times the quantity, or the amount
/// asked within the provider's range for its currency.
async fn price(biller: &Arc<LoadedBiller>, new: &NewPurchase) -> Result<Priced, ApiError> {
    let provider = provider_of(biller, new.bill_type, &new.provider)?;
    let listing = plans_path(new.bill_type).unwrap_or("/v1/bills/catalog");
    if provider.by_plan {
        let Some(code) = &new.plan else {
            return Err(ApiError::not_offered("plan", format!("is required: a plan code from GET {listing}")));
        };
        if new.amount.is_some() {
            return Err(ApiError::not_offered("amount", "is set by the plan's price; leave amount and currency out"));
        }
        let plans = plans(Arc::clone(biller), new.bill_type, &provider).await?;
        let plan = plans.iter().find(|p| &p.code == code).ok_or_else(|| {
            ApiError::not_offered("plan", format!("is not a plan of {}; see GET {listing}", provider.slug))
        })?;
        let currency = Currency::from_code(&plan.price.currency)
            .map_err(|why| ApiError::ProviderUnavailable(format!("The plan's price is unusable: {why}")))?;
        let amount_minor = plan
            .price
            .amount
            .checked_mul(u64::from(new.quantity))
            .filter(|total| *total <= AMOUNT_MINOR_MAX)
            .ok_or_else(|| ApiError::not_offered("quantity", "is too large"))?;
        let description = format!("{} {} - {} ({})", title(new.bill_type), plan.name, provider.name, new.identifier);
        return Ok(Priced { amount_minor, currency, description });
    }
    if new.plan.is_some() {
        return Err(ApiError::not_offered(
            "plan",
            format!("{} sells by amount; send amount and currency", provider.slug),
        ));
    }
    let Some((amount_minor, currency)) = new.amount else {
        return Err(ApiError::not_offered("amount", "is required (minor units), with currency"));
    };
    let Some(range) = provider.amounts.iter().find(|r| r.currency == currency.code) else {
        let sold: Vec<&str> = provider.amounts.iter().map(|r| r.currency.as_str()).collect();
        return Err(ApiError::not_offered(
            "currency",
            format!("{} sells in {}, not {currency}", provider.slug, sold.join(", ")),
        ));
    };
    if amount_minor < range.min || amount_minor > range.max {
        return Err(ApiError::not_offered(
            "amount",
            format!(
                "must be from {} to {} for {}",
                display_amount(range.min, currency),
                display_amount(range.max, currency),
                provider.slug
            ),
        ));
    }
    let description = format!("{} - {} ({})", title(new.bill_type), provider.name, new.identifier);
    Ok(Priced { amount_minor, currency, description })
}

/// How a description names a bill type.
fn title(bill_type: BillType) -> &'static str {
    match bill_type {
        BillType::Airtime => "Airtime",
        BillType::Data => "Data",
        BillType::Electricity => "Electricity",
        BillType::Cable => "Cable TV",
        BillType::Education => "Education",
        BillType::Epin => "ePIN",
        BillType::Bet => "Bet funding",
    }
}

/// `POST /v1/bills/{type}`.
pub async fn purchase(ctx: &Context, request: KeyedRequest, new: NewPurchase) -> Result<Reply, ApiError> {
    let priced = match biller_for(ctx, request.tenant.mode, new.bill_type) {
        Ok(biller) => price(&biller, &new).await.map(|priced| (biller, priced)),
        Err(unavailable) => Err(unavailable),
    };
    let (biller, priced) = match priced {
        Ok(found) => found,
        // A used key answers as it did, whatever changed since.
        Err(refusal) => return idempotency::replay_or(&ctx.store, &request, refusal).await,
    };
    let now_ms = ctx.clock.now_ms();
    let entity = ctx.wallets.entity().clone();
    let row = BillPaymentRow::new(&request, new, biller.plugin_name(), priced, entity, now_ms);
    let ctx = ctx.clone();
    lifecycle::detached(async move {
        let (to_insert, wallets) = (row.clone(), ctx.wallets.clone());
        let claimed = idempotency::claim_with(&ctx.store, request, row.work.id.clone(), now_ms, move |conn| {
            to_insert.insert(conn, &wallets, now_ms)
        });
        if let Claimed::Used(reply) = claimed.await? {
            return Ok(reply);
        }
        let stored = lifecycle::submit(&ctx, Some(biller), row).await?;
        stored.map(Reply::new).ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a bill's key stored no answer")))
    })
    .await
}

/// A bill purchase as stored.
#[derive(Debug, Clone)]
pub struct BillPaymentRow {
    pub work: RailWork<BillStatus>,
    reference: String,
    idempotency_key: String,
    bill_type: BillType,
    /// The biller plugin (file stem) that carries it.
    biller: String,
    provider: String,
    identifier: String,
    identifier_kind: Option<String>,
    plan: Option<String>,
    quantity: u32,
    phone: Option<String>,
    pub amount_minor: i64,
    fee_minor: i64,
    pub currency: Currency,
    entity: Entity,
    description: String,
    tokens: Vec<String>,
}

const SELECT: &str = "SELECT id, merchant_id, mode, status, provider_reference, failure_code, failure_message, \
     created_at, completed_at, reference, idempotency_key, bill_type, biller, provider, identifier, identifier_kind, \
     plan, quantity, phone, amount, fee, currency, entity, description, tokens FROM bill_payments";

impl BillPaymentRow {
    fn new(
        request: &KeyedRequest,
        new: NewPurchase,
        biller: &str,
        priced: Priced,
        entity: Entity,
        now_ms: i64,
    ) -> BillPaymentRow {
        let fee = money::basis_points_of(priced.amount_minor, BILL_FEE_BPS);
        BillPaymentRow {
            work: RailWork::new(TransactionKind::BillPayment, request.tenant.clone(), BillStatus::Processing, now_ms),
            reference: crate::values::ids::new_reference("BILL", now_ms),
            idempotency_key: request.key.clone(),
            bill_type: new.bill_type,
            biller: biller.to_string(),
            provider: new.provider,
            identifier: new.identifier,
            identifier_kind: new.identifier_kind,
            plan: new.plan,
            quantity: new.quantity,
            phone: new.phone,
            amount_minor: i64::try_from(priced.amount_minor).expect("amounts are at most AMOUNT_MINOR_MAX"),
            fee_minor: i64::try_from(fee).expect("the fee never exceeds the amount"),
            currency: priced.currency,
            entity,
            description: priced.description,
            tokens: Vec::new(),
        }
    }

    /// Inserts the purchase and takes its money from the merchant's balance,
    /// refusing (so that nothing is written, the key's claim included) when
    /// the balance is short.
    fn insert(&self, conn: &Connection, wallets: &Wallets, now_ms: i64) -> Result<BillPaymentRow, StoreError> {
        let work = &self.work;
        let source = merchant_funds::spending_account(conn, wallets, &work.tenant, self.currency, now_ms)?;
        let available = ledger::balance(conn, &source)?
            .checked_neg()
            .ok_or_else(|| StoreError::Invariant(format!("balance of {} overflows", work.tenant.merchant_id)))?;
        if available < self.amount_minor {
            return Err(StoreError::rejected(ApiError::InsufficientFunds {
                currency: self.currency.code.into(),
                available,
                needed: u64::try_from(self.amount_minor).unwrap_or(0),
            }));
        }
        conn.prepare_cached(
            "INSERT INTO bill_payments (id, merchant_id, mode, reference, idempotency_key, bill_type, biller, provider,
             identifier, identifier_kind, plan, quantity, phone, amount, fee, currency, entity, description, status,
             created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
        )?
        .execute(params![
            work.id,
            work.tenant.merchant_id,
            work.tenant.mode,
            self.reference,
            self.idempotency_key,
            self.bill_type,
            self.biller,
            self.provider,
            self.identifier,
            self.identifier_kind,
            self.plan,
            self.quantity,
            self.phone,
            self.amount_minor,
            self.fee_minor,
            self.currency,
            self.entity,
            self.description,
            work.status,
            work.created_at_ms
        ])?;
        let postings = [
            Posting { account: source, amount_minor: self.amount_minor },
            Posting { account: self.account(AccountKind::BillClearing), amount_minor: -self.amount_minor },
        ];
        ledger::post(conn, work.tenant.mode, EntryKind::BillHold, &work.id, &postings, now_ms)?;
        Ok(self.clone())
    }

    /// The id of the tenant's purchase with this reference.
    pub fn id_by_reference(conn: &Connection, tenant: &Tenant, reference: &str) -> Result<Option<String>, StoreError> {
        Ok(conn
            .prepare_cached("SELECT id FROM bill_payments WHERE reference = ?1 AND merchant_id = ?2 AND mode = ?3")?
            .query_row(params![reference, tenant.merchant_id, tenant.mode], |row| row.get(0))
            .optional()?)
    }

    fn from_row(row: &Row) -> rusqlite::Result<BillPaymentRow> {
        let tokens: Option<String> = row.get(24)?;
        Ok(BillPaymentRow {
            work: RailWork {
                id: row.get(0)?,
                tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
                status: row.get(3)?,
                provider_reference: row.get(4)?,
                failure: FailureReason::from_columns(row.get(5)?, row.get(6)?),
                created_at_ms: row.get(7)?,
                completed_at_ms: row.get(8)?,
            },
            reference: row.get(9)?,
            idempotency_key: row.get(10)?,
            bill_type: row.get(11)?,
            biller: row.get(12)?,
            provider: row.get(13)?,
            identifier: row.get(14)?,
            identifier_kind: row.get(15)?,
            plan: row.get(16)?,
            quantity: row.get(17)?,
            phone: row.get(18)?,
            amount_minor: row.get(19)?,
            fee_minor: row.get(20)?,
            currency: row.get(21)?,
            entity: row.get(22)?,
            description: row.get(23)?,
            tokens: match tokens {
                Some(json) => serde_json::from_str(&json).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(24, rusqlite::types::Type::Text, Box::new(e))
                })?,
                None => Vec::new(),
            },
        })
    }

    /// One of the merchant's accounts (or the platform's) for this bill.
    fn account(&self, kind: AccountKind) -> Account {
        Account {
            mode: self.work.tenant.mode,
            entity: self.entity.clone(),
            owner: self.work.tenant.merchant_id.clone(),
            kind,
            currency: self.currency,
        }
    }

    /// The transaction object merchants see.
    pub fn object(&self) -> BillPayment {
        let work = &self.work;
        let (fee, net_amount) = if work.status == BillStatus::Completed {
            (self.fee_minor, self.amount_minor - self.fee_minor)
        } else {
            (0, 0)
        };
        BillPayment {
            object: ObjectType::Transaction,
            id: work.id.clone(),
            reference: self.reference.clone(),
            kind: TransactionKind::BillPayment,
            status: work.status,
            amount: self.amount_minor,
            fee,
            net_amount,
            currency: self.currency,
            description: self.description.clone(),
            bill: BillDetails {
                kind: self.bill_type,
                provider: self.provider.clone(),
                customer_identifier: self.identifier.clone(),
                identifier_kind: self.identifier_kind.clone(),
                plan: self.plan.clone(),
                quantity: self.quantity,
                phone: self.phone.clone(),
                tokens: self.tokens.clone(),
            },
            livemode: work.tenant.mode.is_live(),
            entity: self.entity.clone(),
            provider_reference: work.provider_reference.clone(),
            idempotency_key: self.idempotency_key.clone(),
            created_at_ms: work.created_at_ms,
            completed_at_ms: work.completed_at_ms,
            failure: work.failure.clone(),
            next_action: match work.status {
                BillStatus::Processing => Some(NextAction::Wait),
                BillStatus::Failed => Some(NextAction::RetryWithNewKey),
                BillStatus::Completed | BillStatus::Refunded => None,
            },
        }
    }
}

/// How many purchases of the biller plugin `biller` in `mode` are still
/// processing: their status checks need a loaded version of it.
pub fn processing_count(conn: &Connection, biller: &str, mode: Mode) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM bill_payments WHERE biller = ?1 AND mode = ?2 AND status = ?3")?
        .query_row(params![biller, mode, BillStatus::Processing], |row| row.get(0))?)
}

/// Which bills an operator lists (`GET /admin/bills`): every filter given
/// must match.
#[derive(Debug, Clone, Default)]
pub struct OperatorFilter {
    pub merchant_id: Option<String>,
    pub mode: Option<Mode>,
    pub status: Option<BillStatus>,
    /// The biller plugin (file stem) that carried them.
    pub biller: Option<String>,
}

/// A bill as operators see it: whose it is and which biller carried it.
/// Tokens and PINs are the customer's: operators see how many were
/// delivered, never the values.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorBill {
    pub merchant_id: String,
    pub biller: String,
    #[serde(flatten)]
    pub transaction: BillPayment,
    pub tokens_delivered: usize,
}

/// Bills across merchants, newest first, a page at a time.
pub async fn list_for_operator(
    ctx: &Context,
    filter: OperatorFilter,
    page: PageRequest,
) -> Result<Page<OperatorBill>, ApiError> {
    let page = ctx
        .store
        .read(move |conn| {
            let cursor: Option<i64> = match &page.starting_after {
                None => None,
                Some(id) => Some(
                    conn.prepare_cached("SELECT rowid FROM bill_payments WHERE id = ?1")?
                        .query_row(params![id], |r| r.get(0))
                        .optional()?
                        .ok_or_else(|| {
                            StoreError::rejected(ApiError::invalid(
                                "starting_after",
                                "is no bill's id; use the id of the last item of the previous page",
                            ))
                        })?,
                ),
            };
            let rows = conn
                .prepare_cached(&format!(
                    "{SELECT} WHERE rowid < ?1 AND (?2 IS NULL OR merchant_id = ?2) AND (?3 IS NULL OR mode = ?3)
                       AND (?4 IS NULL OR status = ?4) AND (?5 IS NULL OR biller = ?5)
                     ORDER BY rowid DESC LIMIT ?6"
                ))?
                .query_map(
                    params![
                        cursor.unwrap_or(i64::MAX),
                        filter.merchant_id,
                        filter.mode,
                        filter.status,
                        filter.biller,
                        i64::try_from(page.limit + 1).unwrap_or(i64::MAX)
                    ],
                    BillPaymentRow::from_row,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            let bills = rows
                .into_iter()
                .map(|row| {
                    let mut transaction = row.object();
                    let tokens_delivered = std::mem::take(&mut transaction.bill.tokens).len();
                    OperatorBill {
                        merchant_id: row.work.tenant.merchant_id.clone(),
                        biller: row.biller.clone(),
                        transaction,
                        tokens_delivered,
                    }
                })
                .collect();
            Ok(Page::from_fetched(bills, page.limit))
        })
        .await?;
    Ok(page)
}

impl TenantRecord for BillPaymentRow {
    const WHAT: &'static str = "bill payment";

    fn load(conn: &Connection, id: &str) -> Result<Option<BillPaymentRow>, StoreError> {
        Ok(conn
            .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
            .query_row(params![id], BillPaymentRow::from_row)
            .optional()?)
    }

    fn tenant(&self) -> &Tenant {
        &self.work.tenant
    }
}

impl RailOperation for BillPaymentRow {
    const KIND: TransactionKind = TransactionKind::BillPayment;
    const BUSY_MESSAGE: &'static str =
        "the gateway had no free plugin instance; nothing was bought and the money is back: retry with a new key";
    type Status = BillStatus;
    const PROCESSING: BillStatus = BillStatus::Processing;
    type Request = PurchaseRequest;
    type Plugin = LoadedBiller;
    type Outcome = PurchaseOutcome;

    fn plugin(ctx: &Context, name: &str, mode: Mode) -> Option<Arc<LoadedBiller>> {
        ctx.billers.named(name, mode)
    }

    fn work(&self) -> &RailWork<BillStatus> {
        &self.work
    }

    fn work_mut(&mut self) -> &mut RailWork<BillStatus> {
        &mut self.work
    }

    fn rail(&self) -> Option<&str> {
        Some(&self.biller)
    }

    fn rail_request(&self) -> Result<PurchaseRequest, String> {
        Ok(PurchaseRequest {
            purchase_id: self.work.id.clone(),
            bill_type: wit(self.bill_type),
            provider: self.provider.clone(),
            identifier: self.identifier.clone(),
            identifier_kind: self.identifier_kind.clone(),
            plan: self.plan.clone(),
            quantity: self.quantity,
            money: lifecycle::rail_money(self.amount_minor, self.currency)?,
            phone: self.phone.clone(),
            created_at_ms: self.work.created_at_for_rail(),
        })
    }

    fn call(biller: &LoadedBiller, request: &PurchaseRequest) -> Answer<PurchaseOutcome> {
        biller.purchase(request)
    }

    fn ask(
        biller: &LoadedBiller,
        request: &PurchaseRequest,
        provider_reference: Option<&str>,
    ) -> Answer<PurchaseOutcome> {
        biller.status(request, provider_reference)
    }

    /// A cancelled purchase bought nothing: it failed.
    fn final_status(reported: TransactionStatus) -> Option<BillStatus> {
        match reported {
            TransactionStatus::Processing => None,
            TransactionStatus::Completed => Some(BillStatus::Completed),
            TransactionStatus::Refunded => Some(BillStatus::Refunded),
            TransactionStatus::Failed | TransactionStatus::Cancelled => Some(BillStatus::Failed),
        }
    }

    fn note(&mut self, report: &lifecycle::Report) {
        if !report.tokens.is_empty() {
            self.tokens.clone_from(&report.tokens);
        }
    }

    /// Delivered: the provider is owed the amount less the platform's fee.
    /// Refunded or failed: the money goes back where it came from.
    fn settle(&mut self, conn: &Connection, now_ms: i64) -> Result<(), StoreError> {
        let (tenant, id) = (&self.work.tenant, &self.work.id);
        let clearing = Posting { account: self.account(AccountKind::BillClearing), amount_minor: self.amount_minor };
        if self.work.status == BillStatus::Completed {
            let payable =
                Account { owner: ledger::biller_owner(&self.biller), ..self.account(AccountKind::BillerPayable) };
            let revenue = Account { owner: PLATFORM_OWNER.to_string(), ..self.account(AccountKind::FeeRevenue) };
            let mut postings =
                vec![clearing, Posting { account: payable, amount_minor: -(self.amount_minor - self.fee_minor) }];
            // A bill under 100 minor units carries no fee, and the ledger
            // takes no posting of zero.
            if self.fee_minor > 0 {
                postings.push(Posting { account: revenue, amount_minor: -self.fee_minor });
            }
            ledger::post(conn, tenant.mode, EntryKind::BillPaid, id, &postings, now_ms)?;
            return webhooks::emit(conn, tenant, EventType::TransactionCompleted, id, &self.object(), now_ms).map(drop);
        }
        let wallets = Wallets::new(self.entity.clone());
        let source = merchant_funds::spending_account(conn, &wallets, tenant, self.currency, now_ms)?;
        let postings = [clearing, Posting { account: source, amount_minor: -self.amount_minor }];
        ledger::post(conn, tenant.mode, EntryKind::BillReturn, id, &postings, now_ms)?;
        let event = if self.work.status == BillStatus::Refunded {
            EventType::TransactionRefunded
        } else {
            EventType::TransactionFailed
        };
        webhooks::emit(conn, tenant, event, id, &self.object(), now_ms).map(drop)
    }

    fn save(&self, conn: &Connection) -> Result<(), StoreError> {
        let work = &self.work;
        let tokens = (!self.tokens.is_empty())
            .then(|| serde_json::to_string(&self.tokens).expect("a list of strings serialises"));
        conn.prepare_cached(
            "UPDATE bill_payments SET status = ?2, provider_reference = ?3, failure_code = ?4, failure_message = ?5,
             completed_at = ?6, tokens = ?7 WHERE id = ?1",
        )?
        .execute(params![
            work.id,
            work.status,
            work.provider_reference,
            work.failure.as_ref().map(|f| &f.code),
            work.failure.as_ref().and_then(|f| f.message.as_ref()),
            work.completed_at_ms,
            tokens
        ])?;
        Ok(())
    }

    /// Always the transaction, `201` (the seed's answer even for a refunded
    /// purchase): one the biller gave no answer for is processing, followed
    /// by status checks.
    fn response(&self, _unanswered: Option<&PluginError>) -> Option<StoredResponse> {
        Some(StoredResponse::created(&self.object()))
    }
}

/// The bill transaction object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BillPayment {
    object: ObjectType,
    pub id: String,
    pub reference: String,
    #[serde(rename = "type")]
    kind: TransactionKind,
    pub status: BillStatus,
    pub amount: i64,
    /// The platform's share (0 unless delivered).
    pub fee: i64,
    /// What the provider is owed: `amount − fee` once delivered.
    pub net_amount: i64,
    pub currency: Currency,
    pub description: String,
    pub bill: BillDetails,
    pub livemode: bool,
    pub entity: Entity,
    pub provider_reference: Option<String>,
    pub idempotency_key: String,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
    #[serde(rename = "completed_at", serialize_with = "serialize_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextAction>,
}

/// What was bought, for whom, and what the customer needs to use it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BillDetails {
    #[serde(rename = "type")]
    pub kind: BillType,
    pub provider: String,
    pub customer_identifier: String,
    pub identifier_kind: Option<String>,
    pub plan: Option<String>,
    pub quantity: u32,
    pub phone: Option<String>,
    /// An electricity token or ePINs, once delivered.
    pub tokens: Vec<String>,
}
