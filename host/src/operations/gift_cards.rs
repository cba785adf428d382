//! Gift card sales: a merchant sells a gift card — an e-code, or photos of
//! a physical card — to the trader bound to gift card sales, at the rate
//! the trader's catalogue gives when the sale is made (locked on the sale).
//! A sale is a [`RailOperation`] carried by the trader: claimed together
//! with its idempotency key (nothing moves yet), asked of the trader under
//! the sale id, and `pending` until the desk verifies it — by the trader's
//! answer, its status checks, or an operator on the review queue
//! ([`review`]). Verified, the merchant's spending balance
//! ([`merchant_funds`]) is credited the price of the verified face value at
//! the locked rate less the platform's fee, once; not verified, the sale is
//! `cancelled` with the reason and nothing is credited.
//!
//! Ledger, in the wallet entity (transaction = the sale id, `P` = the
//! price, `F` = the fee), when verified (`gift_card_credit`):
//! `trader_payable` +P (the trader owes us the card's price), the balance
//! −(P−F), `fee_revenue` −F.
//!
//! Photos are stored outside the database by their SHA-256
//! (`domain::card_images`); the row records the hash, name, type and size.
//! This module owns the `gift_card_sales` table and the gift card
//! transaction object.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::checks::Schedule;
use super::context::Context;
use super::idempotency::{self, Claimed, KeyedRequest, Reply, StoredResponse};
use super::lifecycle::{self, Answer, FailureReason, RailOperation, RailWork, ReportApplied};
use super::merchant_funds;
use super::objects::NextAction;
use crate::domain::card_images::CardImages;
use crate::domain::fx::{self, Amount, RateObject, Ratio};
use crate::domain::wallets::Wallets;
use crate::domain::webhooks::{self, EventType};
use crate::ledger::{self, Account, AccountKind, EntryKind, PLATFORM_OWNER, Posting};
use crate::plugins::traders::{CardForm as WitCardForm, CardImage, GiftCardBrand, GiftCardSale, TradeOutcome};
use crate::plugins::{Failure, LoadedTrader, Money, PluginError, TransactionStatus};
use crate::store::{StoreError, TenantRecord};
use crate::values::clock::{serialize_rfc3339, serialize_rfc3339_opt};
use crate::values::entity::Entity;
use crate::values::error::ApiError;
use crate::values::mode::{Mode, Tenant};
use crate::values::money::{self, Currency};
use crate::values::page::{Page, PageRequest};
use crate::values::status::{CardForm, GiftCardStatus, ObjectType, TradeKind, TransactionKind};

/// The platform's fee on a gift card sale, in basis points of its price,
/// rounded down.
pub const GIFT_CARD_FEE_BPS: u64 = 100;

/// The trader buying gift cards in `mode`.
pub fn trader_for(ctx: &Context, mode: Mode) -> Result<Arc<LoadedTrader>, ApiError> {
    ctx.traders.for_kind(mode, TradeKind::GiftCardSale).ok_or_else(|| {
        ApiError::ProviderUnavailable(format!("No trader buys gift cards in {mode} mode on this gateway."))
    })
}

/// The trader's brands and rates now.
pub async fn catalog(trader: Arc<LoadedTrader>) -> Result<Vec<GiftCardBrand>, ApiError> {
    let caller = Arc::clone(&trader);
    match crate::plugins::call_blocking(move || caller.gift_card_catalog()).await {
        Ok(Ok(brands)) => Ok(brands),
        Ok(Err(failure)) => Err(ApiError::ProviderUnavailable(format!(
            "The gift card desk could not give its catalogue ({}); retry shortly.",
            failure.message
        ))),
        Err(error) => {
            tracing::warn!(trader = trader.plugin_name(), %error, "the trader gave no answer");
            Err(ApiError::ProviderUnavailable("The gift card desk did not answer; retry shortly.".into()))
        }
    }
}

/// A photo sent with a sale, checked (type by its bytes, size).
#[derive(Debug, Clone)]
pub struct NewImage {
    pub file_name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// A validated sale request.
#[derive(Debug, Clone)]
pub struct NewSale {
    pub brand: String,
    pub country: String,
    pub form: CardForm,
    pub face_value: u64,
    pub card_currency: Currency,
    pub payout_currency: Currency,
    pub additional_info: Option<String>,
    pub images: Vec<NewImage>,
}

/// A photo as a sale records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImageRecord {
    pub file_name: String,
    pub content_type: String,
    pub sha256: String,
    pub size: u64,
}

fn wit_form(form: CardForm) -> WitCardForm {
    match form {
        CardForm::Ecode => WitCardForm::Ecode,
        CardForm::Physical => WitCardForm::Physical,
    }
}

/// The rate at which the catalogue buys `new`'s card, or why a field of the
/// request is wrong.
fn rate_for(brands: &[GiftCardBrand], new: &NewSale) -> Result<Ratio, ApiError> {
    let brand = brands.iter().find(|b| b.slug == new.brand).ok_or_else(|| {
        ApiError::not_offered("brand", "is not a brand the desk buys; see GET /v1/gift-cards/catalog")
    })?;
    let offer = brand.offers.iter().find(|o| o.country == new.country).ok_or_else(|| {
        let countries: Vec<&str> = brand.offers.iter().map(|o| o.country.as_str()).collect();
        ApiError::not_offered("country", format!("{} cards are bought from {}", brand.slug, countries.join(", ")))
    })?;
    if offer.card_currency != new.card_currency.code {
        return Err(ApiError::not_offered(
            "card_currency",
            format!("{} {} cards are in {}", brand.slug, offer.country, offer.card_currency),
        ));
    }
    if !offer.denominations.contains(&new.face_value) {
        let listed: Vec<String> = offer.denominations.iter().map(u64::to_string).collect();
        return Err(ApiError::not_offered(
            "face_value",
            format!("must be one of {} (minor units of {})", listed.join(", "), offer.card_currency),
        ));
    }
    if !offer.forms.contains(&wit_form(new.form)) {
        return Err(ApiError::not_offered("form", format!("{} cards are not bought as {}", brand.slug, new.form)));
    }
    offer
        .rates
        .iter()
        .find(|r| r.quote == new.payout_currency.code)
        .and_then(|r| Ratio::new(u128::from(r.numerator), u128::from(r.denominator)))
        .ok_or_else(|| {
            ApiError::not_offered(
                "payout_currency",
                format!("{} cards are not bought for {}", brand.slug, new.payout_currency),
            )
        })
}

/// What `face_minor` of the card pays at `rate`, rounded down, and the fee.
fn price(face_minor: u64, rate: Ratio, card: Currency, payout: Currency) -> Result<(u64, u64), String> {
    let price = fx::convert_floor(face_minor, rate, card, payout).ok_or("the price is too large")?;
    Ok((price, money::basis_points_of(price, GIFT_CARD_FEE_BPS)))
}

/// `POST /v1/gift-cards/sales`.
pub async fn sell(ctx: &Context, request: KeyedRequest, new: NewSale) -> Result<Reply, ApiError> {
    let priced = match trader_for(ctx, request.tenant.mode) {
        Ok(trader) => match catalog(Arc::clone(&trader)).await {
            Ok(brands) => rate_for(&brands, &new).map(|rate| (trader, rate)),
            Err(refusal) => Err(refusal),
        },
        Err(unavailable) => Err(unavailable),
    };
    let (trader, rate) = match priced {
        Ok(found) => found,
        // A used key answers as it did, whatever changed since.
        Err(refusal) => return idempotency::replay_or(&ctx.store, &request, refusal).await,
    };
    let (payout, fee) = match price(new.face_value, rate, new.card_currency, new.payout_currency) {
        Ok(priced) => priced,
        Err(why) => {
            return idempotency::replay_or(&ctx.store, &request, ApiError::not_offered("face_value", why)).await;
        }
    };
    // The photos are durable before the sale that names them is committed.
    let (images, photos) = (ctx.card_images.clone(), new.images.clone());
    let records = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<ImageRecord>> {
        photos
            .into_iter()
            .map(|photo| {
                Ok(ImageRecord {
                    sha256: images.store(&photo.bytes)?,
                    size: photo.bytes.len() as u64,
                    file_name: photo.file_name,
                    content_type: photo.content_type.to_string(),
                })
            })
            .collect()
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("storing card photos: {e}")))?
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("storing card photos: {e}")))?;

    let now_ms = ctx.clock.now_ms();
    let work = RailWork::new(TransactionKind::GiftCardSale, request.tenant.clone(), GiftCardStatus::Pending, now_ms);
    let row = GiftCardSaleRow {
        work,
        reference: crate::values::ids::new_reference("GC", now_ms),
        idempotency_key: request.key.clone(),
        trader: trader.plugin_name().to_string(),
        brand: new.brand,
        country: new.country,
        form: new.form,
        card_currency: new.card_currency,
        face_value: to_i64(new.face_value),
        verified_value: None,
        payout_currency: new.payout_currency,
        rate,
        additional_info: new.additional_info,
        images: records,
        entity: ctx.wallets.entity().clone(),
        payout: to_i64(payout),
        fee: to_i64(fee),
        reviewed_by: None,
        reviewed_at_ms: None,
        images_dir: ctx.card_images.clone(),
    };
    let ctx = ctx.clone();
    lifecycle::detached(async move {
        let to_insert = row.clone();
        let claimed = idempotency::claim_with(&ctx.store, request, row.work.id.clone(), now_ms, move |conn| {
            to_insert.insert(conn)
        });
        if let Claimed::Used(reply) = claimed.await? {
            return Ok(reply);
        }
        let stored = lifecycle::submit(&ctx, Some(trader), row).await?;
        stored.map(Reply::new).ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a sale's key stored no answer")))
    })
    .await
}

fn to_i64(amount: u64) -> i64 {
    i64::try_from(amount).expect("amounts are at most AMOUNT_MINOR_MAX")
}

/// A gift card sale as stored.
#[derive(Debug, Clone)]
pub struct GiftCardSaleRow {
    pub work: RailWork<GiftCardStatus>,
    reference: String,
    idempotency_key: String,
    /// The trader plugin (file stem) that carries it.
    trader: String,
    brand: String,
    country: String,
    form: CardForm,
    card_currency: Currency,
    face_value: i64,
    verified_value: Option<i64>,
    payout_currency: Currency,
    rate: Ratio,
    /// The e-code and PIN: the desk's, never shown back in the object.
    additional_info: Option<String>,
    images: Vec<ImageRecord>,
    entity: Entity,
    /// The price of the face value verified (declared until verified), and
    /// the fee on it.
    payout: i64,
    fee: i64,
    reviewed_by: Option<String>,
    reviewed_at_ms: Option<i64>,
    /// Where the photos are, to send them again with a status check.
    images_dir: CardImages,
}

const SELECT: &str = "SELECT id, merchant_id, mode, status, provider_reference, failure_code, failure_message, \
     created_at, completed_at, reference, idempotency_key, trader, brand, country, form, card_currency, face_value, \
     verified_value, payout_currency, rate_numerator, rate_denominator, additional_info, images, entity, payout, fee, \
     reviewed_by, reviewed_at FROM gift_card_sales";

impl GiftCardSaleRow {
    fn insert(&self, conn: &Connection) -> Result<(), StoreError> {
        let work = &self.work;
        let images = serde_json::to_string(&self.images).expect("image records serialise");
        conn.prepare_cached(
            "INSERT INTO gift_card_sales (id, merchant_id, mode, reference, idempotency_key, trader, brand, country,
             form, card_currency, face_value, payout_currency, rate_numerator, rate_denominator, additional_info,
             images, entity, status, payout, fee, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
        )?
        .execute(params![
            work.id,
            work.tenant.merchant_id,
            work.tenant.mode,
            self.reference,
            self.idempotency_key,
            self.trader,
            self.brand,
            self.country,
            self.form,
            self.card_currency,
            self.face_value,
            self.payout_currency,
            self.rate.num.to_string(),
            self.rate.den.to_string(),
            self.additional_info,
            images,
            self.entity,
            work.status,
            self.payout,
            self.fee,
            work.created_at_ms
        ])?;
        Ok(())
    }

    /// The id of the tenant's sale with this reference.
    pub fn id_by_reference(conn: &Connection, tenant: &Tenant, reference: &str) -> Result<Option<String>, StoreError> {
        Ok(conn
            .prepare_cached("SELECT id FROM gift_card_sales WHERE reference = ?1 AND merchant_id = ?2 AND mode = ?3")?
            .query_row(params![reference, tenant.merchant_id, tenant.mode], |row| row.get(0))
            .optional()?)
    }

    fn from_row(row: &Row, images_dir: &CardImages) -> rusqlite::Result<GiftCardSaleRow> {
        let conversion = |i: usize, e: Box<dyn std::error::Error + Send + Sync>| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e)
        };
        let images: String = row.get(22)?;
        Ok(GiftCardSaleRow {
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
            trader: row.get(11)?,
            brand: row.get(12)?,
            country: row.get(13)?,
            form: row.get(14)?,
            card_currency: row.get(15)?,
            face_value: row.get(16)?,
            verified_value: row.get(17)?,
            payout_currency: row.get(18)?,
            rate: Ratio::from_columns(row, 19, 20)?,
            additional_info: row.get(21)?,
            images: serde_json::from_str(&images).map_err(|e| conversion(22, Box::new(e)))?,
            entity: row.get(23)?,
            payout: row.get(24)?,
            fee: row.get(25)?,
            reviewed_by: row.get(26)?,
            reviewed_at_ms: row.get(27)?,
            images_dir: images_dir.clone(),
        })
    }

    fn account(&self, kind: AccountKind) -> Account {
        Account {
            mode: self.work.tenant.mode,
            entity: self.entity.clone(),
            owner: self.work.tenant.merchant_id.clone(),
            kind,
            currency: self.payout_currency,
        }
    }

    /// The transaction object merchants see: the e-code is never in it.
    pub fn object(&self) -> GiftCardSaleObject {
        let work = &self.work;
        let completed = work.status == GiftCardStatus::Completed;
        GiftCardSaleObject {
            object: ObjectType::Transaction,
            id: work.id.clone(),
            reference: self.reference.clone(),
            kind: TransactionKind::GiftCardSale,
            status: work.status,
            amount: self.payout,
            fee: self.fee,
            net_amount: self.payout - self.fee,
            currency: self.payout_currency,
            credited: if completed { self.payout - self.fee } else { 0 },
            description: format!(
                "{} {} gift card ({}) {}",
                self.brand,
                self.country,
                self.form,
                money::display_amount(u64::try_from(self.face_value).unwrap_or(0), self.card_currency)
            ),
            gift_card: GiftCardDetails {
                brand: self.brand.clone(),
                country: self.country.clone(),
                form: self.form,
                face_value: Amount { currency: self.card_currency, amount: self.face_value },
                verified_value: self.verified_value.map(|amount| Amount { currency: self.card_currency, amount }),
                rate: RateObject::from(self.rate),
                images: self.images.clone(),
            },
            livemode: work.tenant.mode.is_live(),
            entity: self.entity.clone(),
            provider_reference: work.provider_reference.clone(),
            idempotency_key: self.idempotency_key.clone(),
            created_at_ms: work.created_at_ms,
            completed_at_ms: work.completed_at_ms,
            failure: work.failure.clone(),
            next_action: (work.status == GiftCardStatus::Pending).then_some(NextAction::Wait),
        }
    }

    /// The sale as the trader is asked about it, without the photos' bytes
    /// (read from disk when the trader is called).
    fn sale_without_photos(&self) -> Result<GiftCardSale, String> {
        Ok(GiftCardSale {
            trade_id: self.work.id.clone(),
            brand: self.brand.clone(),
            country: self.country.clone(),
            form: wit_form(self.form),
            face_value: lifecycle::rail_money(self.face_value, self.card_currency)?,
            payout: lifecycle::rail_money(self.payout, self.payout_currency)?,
            additional_info: self.additional_info.clone(),
            images: self
                .images
                .iter()
                .map(|i| CardImage {
                    file_name: i.file_name.clone(),
                    content_type: i.content_type.clone(),
                    sha256: i.sha256.clone(),
                    bytes: Vec::new(),
                })
                .collect(),
            created_at_ms: self.work.created_at_for_rail(),
        })
    }
}

impl TenantRecord for GiftCardSaleRow {
    const WHAT: &'static str = "gift card sale";

    fn load(conn: &Connection, id: &str) -> Result<Option<GiftCardSaleRow>, StoreError> {
        let images_dir = CardImages::of_connection(conn);
        Ok(conn
            .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
            .query_row(params![id], |row| GiftCardSaleRow::from_row(row, &images_dir))
            .optional()?)
    }

    fn tenant(&self) -> &Tenant {
        &self.work.tenant
    }
}

/// What the trader is asked: the sale, and where its photos' bytes are.
pub struct SaleRequest {
    sale: GiftCardSale,
    images: CardImages,
}

impl SaleRequest {
    /// The sale with its photos read back (on the blocking pool, where
    /// plugin calls run). A photo that cannot be read leaves the sale
    /// pending, logged for the operator, rather than cancelling it.
    fn with_photos(&self) -> Result<GiftCardSale, PluginError> {
        let mut sale = self.sale.clone();
        for image in &mut sale.images {
            image.bytes = self.images.read(&image.sha256).map_err(|e| {
                tracing::error!(sale = %sale.trade_id, sha256 = %image.sha256, error = %e, "a card photo is unreadable");
                PluginError::Host(format!("card photo {} is unreadable", image.sha256))
            })?;
        }
        Ok(sale)
    }
}

impl RailOperation for GiftCardSaleRow {
    const KIND: TransactionKind = TransactionKind::GiftCardSale;
    const BUSY_MESSAGE: &'static str = "the gateway had no free plugin instance; the card was not sent: sell it again";
    type Status = GiftCardStatus;
    const PROCESSING: GiftCardStatus = GiftCardStatus::Pending;
    type Request = SaleRequest;
    type Plugin = LoadedTrader;
    type Outcome = TradeOutcome;

    fn plugin(ctx: &Context, name: &str, mode: Mode) -> Option<Arc<LoadedTrader>> {
        ctx.traders.named(name, mode)
    }

    fn work(&self) -> &RailWork<GiftCardStatus> {
        &self.work
    }

    fn work_mut(&mut self) -> &mut RailWork<GiftCardStatus> {
        &mut self.work
    }

    fn rail(&self) -> Option<&str> {
        Some(&self.trader)
    }

    fn rail_request(&self) -> Result<SaleRequest, String> {
        Ok(SaleRequest { sale: self.sale_without_photos()?, images: self.images_dir.clone() })
    }

    fn call(trader: &LoadedTrader, request: &SaleRequest) -> Answer<TradeOutcome> {
        trader.gift_card_sell(&request.with_photos()?)
    }

    fn ask(trader: &LoadedTrader, request: &SaleRequest, provider_reference: Option<&str>) -> Answer<TradeOutcome> {
        trader.gift_card_status(&request.with_photos()?, provider_reference)
    }

    /// Anything but verified is cancelled: nothing was credited.
    fn final_status(reported: TransactionStatus) -> Option<GiftCardStatus> {
        match reported {
            TransactionStatus::Processing => None,
            TransactionStatus::Completed => Some(GiftCardStatus::Completed),
            TransactionStatus::Cancelled | TransactionStatus::Failed | TransactionStatus::Refunded => {
                Some(GiftCardStatus::Cancelled)
            }
        }
    }

    /// A verified value below the declared one prices the sale again, at
    /// the locked rate.
    fn note(&mut self, report: &lifecycle::Report) {
        let Some(verified) = report.verified_minor.filter(|_| report.status == TransactionStatus::Completed) else {
            return;
        };
        // Checked before it gets here (`fits`); never more than declared.
        if verified == 0 || verified > u64::try_from(self.face_value).unwrap_or(0) {
            tracing::error!(sale = %self.work.id, verified, "a verified value outside 1..=face value; ignored");
            return;
        }
        if let Ok((payout, fee)) = price(verified, self.rate, self.card_currency, self.payout_currency) {
            self.verified_value = Some(to_i64(verified));
            self.payout = to_i64(payout);
            self.fee = to_i64(fee);
        }
    }

    /// Verified: the trader owes the price and the merchant is credited it
    /// less the fee. Cancelled: nothing moved; the merchant is told.
    fn settle(&mut self, conn: &Connection, now_ms: i64) -> Result<(), StoreError> {
        let (tenant, id) = (&self.work.tenant, &self.work.id);
        if self.work.status != GiftCardStatus::Completed {
            return webhooks::emit(conn, tenant, EventType::TransactionCancelled, id, &self.object(), now_ms).map(drop);
        }
        // A card verified at a value worth less than a minor unit pays
        // nothing, and the ledger takes no posting of zero.
        if self.payout > 0 {
            let wallets = Wallets::new(self.entity.clone());
            let balance = merchant_funds::spending_account(conn, &wallets, tenant, self.payout_currency, now_ms)?;
            let owed =
                Account { owner: ledger::trader_owner(&self.trader), ..self.account(AccountKind::TraderPayable) };
            let revenue = Account { owner: PLATFORM_OWNER.to_string(), ..self.account(AccountKind::FeeRevenue) };
            let mut postings = vec![
                Posting { account: owed, amount_minor: self.payout },
                Posting { account: balance, amount_minor: -(self.payout - self.fee) },
            ];
            if self.fee > 0 {
                postings.push(Posting { account: revenue, amount_minor: -self.fee });
            }
            ledger::post(conn, tenant.mode, EntryKind::GiftCardCredit, id, &postings, now_ms)?;
        }
        webhooks::emit(conn, tenant, EventType::TransactionCompleted, id, &self.object(), now_ms).map(drop)
    }

    fn save(&self, conn: &Connection) -> Result<(), StoreError> {
        let work = &self.work;
        conn.prepare_cached(
            "UPDATE gift_card_sales SET status = ?2, provider_reference = ?3, failure_code = ?4, failure_message = ?5,
             completed_at = ?6, verified_value = ?7, payout = ?8, fee = ?9 WHERE id = ?1",
        )?
        .execute(params![
            work.id,
            work.status,
            work.provider_reference,
            work.failure.as_ref().map(|f| &f.code),
            work.failure.as_ref().and_then(|f| f.message.as_ref()),
            work.completed_at_ms,
            self.verified_value,
            self.payout,
            self.fee
        ])?;
        Ok(())
    }

    /// Always the transaction, `201`: pending until verified.
    fn response(&self, _unanswered: Option<&PluginError>) -> Option<StoredResponse> {
        Some(StoredResponse::created(&self.object()))
    }
}

/// Whether a trader's report on sale `id` (a callback's) is one an honest
/// desk gives: a verified value in the card's currency, from 1 to the
/// declared face value. Status checks and sales check this in the plugin
/// layer, where the sale is at hand.
pub async fn fits(ctx: &Context, id: String, outcome: &TradeOutcome) -> Result<(), ApiError> {
    let Some(verified) = outcome.verified_value.clone() else {
        return Ok(());
    };
    let sale = ctx.store.read(move |conn| GiftCardSaleRow::load(conn, &id)).await?;
    let fits = sale.is_some_and(|sale| {
        verified.currency == sale.card_currency.code
            && verified.amount > 0
            && u64::try_from(sale.face_value).is_ok_and(|face| verified.amount <= face)
    });
    if fits {
        Ok(())
    } else {
        Err(ApiError::CallbackRejected(
            "the verified value is not in the card's currency, or not within its face value".into(),
        ))
    }
}

/// An operator's decision on a pending sale.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Verified, at this face value (minor units of the card's currency; at
    /// most the declared value).
    Approve { verified_value: u64 },
    /// Not verified, for this reason (shown to the merchant).
    Reject { reason: String },
}

/// `POST /admin/gift-cards/{id}/approve|reject`: decides a pending sale as
/// the desk would, once: a sale no longer pending is refused
/// (`TRADE_NOT_PENDING`), so approving twice credits once.
pub async fn review(ctx: &Context, id: String, decision: Decision, reviewer: String) -> Result<OperatorSale, ApiError> {
    let clock = ctx.clock.clone();
    let sale = ctx
        .store
        .write(move |conn| {
            let now_ms = clock.now_ms();
            let refuse = StoreError::rejected;
            let sale = GiftCardSaleRow::load(conn, &id)?
                .ok_or_else(|| refuse(ApiError::NotFound { what: "gift card sale" }))?;
            if sale.work.status != GiftCardStatus::Pending {
                return Err(refuse(ApiError::TradeNotPending { status: sale.work.status.to_string() }));
            }
            let outcome = match decision {
                Decision::Approve { verified_value } => {
                    if verified_value == 0 || verified_value > u64::try_from(sale.face_value).unwrap_or(0) {
                        return Err(refuse(ApiError::invalid(
                            "verified_value",
                            format!("must be from 1 to the declared face value ({})", sale.face_value),
                        )));
                    }
                    TradeOutcome {
                        status: TransactionStatus::Completed,
                        provider_reference: None,
                        verified_value: Some(Money {
                            amount: verified_value,
                            currency: sale.card_currency.code.to_string(),
                        }),
                        failure: None,
                    }
                }
                Decision::Reject { reason } => TradeOutcome {
                    status: TransactionStatus::Cancelled,
                    provider_reference: None,
                    verified_value: None,
                    failure: Some(Failure { code: "CARD_REJECTED".into(), message: reason, retryable: false }),
                },
            };
            let applied = lifecycle::apply_later_report::<GiftCardSaleRow>(
                conn,
                &id,
                &sale.trader,
                outcome,
                now_ms,
                Schedule::Prompt(now_ms),
            )?;
            if !matches!(applied, ReportApplied::Applied(_)) {
                return Err(StoreError::Invariant(format!("the review of pending sale {id} was not applied")));
            }
            conn.prepare_cached("UPDATE gift_card_sales SET reviewed_by = ?2, reviewed_at = ?3 WHERE id = ?1")?
                .execute(params![id, reviewer, now_ms])?;
            let decided = GiftCardSaleRow::load(conn, &id)?
                .ok_or_else(|| StoreError::Invariant(format!("sale {id} vanished")))?;
            Ok(OperatorSale::of(decided))
        })
        .await?;
    Ok(sale)
}

/// A sale as operators see it on the review queue: whose it is, the
/// e-code, where the photos are, and who decided it.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorSale {
    pub merchant_id: String,
    pub trader: String,
    pub additional_info: Option<String>,
    pub reviewed_by: Option<String>,
    #[serde(rename = "reviewed_at", serialize_with = "serialize_rfc3339_opt")]
    pub reviewed_at_ms: Option<i64>,
    #[serde(flatten)]
    pub transaction: GiftCardSaleObject,
}

impl OperatorSale {
    fn of(row: GiftCardSaleRow) -> OperatorSale {
        OperatorSale {
            merchant_id: row.work.tenant.merchant_id.clone(),
            trader: row.trader.clone(),
            additional_info: row.additional_info.clone(),
            reviewed_by: row.reviewed_by.clone(),
            reviewed_at_ms: row.reviewed_at_ms,
            transaction: row.object(),
        }
    }
}

/// `GET /admin/gift-cards[?status=]`: sales across merchants, oldest first
/// (the review queue's order), a page at a time.
pub async fn list_for_operator(
    ctx: &Context,
    status: Option<GiftCardStatus>,
    page: PageRequest,
) -> Result<Page<OperatorSale>, ApiError> {
    let page = ctx
        .store
        .read(move |conn| {
            let images = CardImages::of_connection(conn);
            let cursor: Option<i64> = match &page.starting_after {
                None => None,
                Some(id) => Some(
                    conn.prepare_cached("SELECT rowid FROM gift_card_sales WHERE id = ?1")?
                        .query_row(params![id], |r| r.get(0))
                        .optional()?
                        .ok_or_else(|| {
                            StoreError::rejected(ApiError::invalid(
                                "starting_after",
                                "is no sale's id; use the id of the last item of the previous page",
                            ))
                        })?,
                ),
            };
            let rows = conn
                .prepare_cached(&format!(
                    "{SELECT} WHERE rowid > ?1 AND (?2 IS NULL OR status = ?2) ORDER BY rowid LIMIT ?3"
                ))?
                .query_map(
                    params![cursor.unwrap_or(0), status, i64::try_from(page.limit + 1).unwrap_or(i64::MAX)],
                    |row| GiftCardSaleRow::from_row(row, &images),
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_fetched(rows.into_iter().map(OperatorSale::of).collect(), page.limit))
        })
        .await?;
    Ok(page)
}

/// The photo `sha256` of sale `id` (for an operator verifying the card).
pub async fn photo(ctx: &Context, id: String, sha256: String) -> Result<(String, Vec<u8>), ApiError> {
    let images = ctx.card_images.clone();
    let sale = ctx
        .store
        .read(move |conn| GiftCardSaleRow::load(conn, &id))
        .await?
        .ok_or(ApiError::NotFound { what: "gift card sale" })?;
    let record = sale.images.into_iter().find(|i| i.sha256 == sha256).ok_or(ApiError::NotFound { what: "photo" })?;
    let bytes = tokio::task::spawn_blocking(move || images.read(&record.sha256))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading a card photo: {e}")))?
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading a card photo: {e}")))?;
    Ok((record.content_type, bytes))
}

/// The gift card transaction object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GiftCardSaleObject {
    object: ObjectType,
    pub id: String,
    pub reference: String,
    #[serde(rename = "type")]
    kind: TransactionKind,
    pub status: GiftCardStatus,
    /// The card's price at the locked rate (of the verified face value once
    /// verified), in `currency`.
    pub amount: i64,
    /// The platform's fee on it.
    pub fee: i64,
    /// What the merchant is credited if it is verified: `amount − fee`.
    pub net_amount: i64,
    pub currency: Currency,
    /// What was credited: `net_amount` once completed, else 0.
    pub credited: i64,
    pub description: String,
    pub gift_card: GiftCardDetails,
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

/// The card sold.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GiftCardDetails {
    pub brand: String,
    pub country: String,
    pub form: CardForm,
    pub face_value: Amount,
    /// The face value the desk verified, when it differs.
    pub verified_value: Option<Amount>,
    /// Payout currency per unit of the card's currency, locked at the sale.
    pub rate: RateObject,
    pub images: Vec<ImageRecord>,
}
