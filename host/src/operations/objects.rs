//! The objects the API answers with for money movements (and webhook
//! events carry as `data.object`): what merchants see, in one place. Each
//! operation's module makes its own from its row.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::customers::CustomerPhone;
use crate::domain::fx::{Amount, RateObject};
use crate::ledger::EntryKind;
use crate::values::clock::{serialize_rfc3339, serialize_rfc3339_opt};
use crate::values::entity::Entity;
use crate::values::failure::FailureReason;
use crate::values::method::Method;
use crate::values::money::Currency;
use crate::values::status::{
    DisputeStatus, InstantStatus, JoinedBy, ObjectType, PaymentStatus, RefundStatus, ReturnReason, SettlementStatus,
    SwapStatus, TransactionKind, TransferStatus,
};

/// The payment object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Payment {
    pub(super) object: ObjectType,
    pub id: String,
    pub reference: String,
    #[serde(rename = "type")]
    pub(super) kind: TransactionKind,
    pub status: PaymentStatus,
    pub amount: i64,
    /// The platform's fee, as charged (0 unless the payment completed).
    pub fee: i64,
    /// What the merchant was credited: `amount − fee` once completed.
    pub net_amount: i64,
    pub amount_refunded: i64,
    pub currency: Currency,
    pub method: Method,
    pub customer: CustomerPhone<Option<String>>,
    pub description: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Box<RawValue>,
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
    pub card: Option<CardSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextAction>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CardSummary {
    pub last4: String,
}

/// What comes next for a processing payment or swap (what the customer must
/// do), or for a bill (what the merchant should do).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NextAction {
    /// Approve on the provider's page at `url`.
    Redirect { url: String },
    /// Approve with the code sent to their WhatsApp, which the merchant
    /// passes to `POST /v1/approvals/{approval}/approve`.
    CustomerApproval {
        approval: String,
        #[serde(rename = "expires_at", serialize_with = "crate::values::clock::serialize_rfc3339")]
        #[schema(value_type = String, format = DateTime)]
        expires_at_ms: i64,
    },
    /// Wait for its webhook or poll `GET /v1/transactions/{reference}`; do
    /// not retry (the provider is working on it).
    Wait,
    /// It failed with nothing taken: retry with a new idempotency key.
    RetryWithNewKey,
}

/// The refund object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Refund {
    pub(super) object: ObjectType,
    pub id: String,
    pub payment_id: String,
    pub livemode: bool,
    pub amount: i64,
    pub currency: Currency,
    pub reason: Option<String>,
    pub status: RefundStatus,
    pub provider_reference: Option<String>,
    pub idempotency_key: String,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
    #[serde(rename = "completed_at", serialize_with = "serialize_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at_ms: Option<i64>,
    pub entity: Entity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureReason>,
}

/// The settlement object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Settlement {
    pub(super) object: ObjectType,
    pub id: String,
    pub livemode: bool,
    pub entity: Entity,
    pub currency: Currency,
    pub amount: i64,
    pub payout: PayoutTo,
    pub status: SettlementStatus,
    pub provider_reference: Option<String>,
    #[serde(rename = "cutoff_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub cutoff_at_ms: i64,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
    #[serde(rename = "completed_at", serialize_with = "serialize_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureReason>,
}

/// Where a settlement was paid.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PayoutTo {
    pub method: Method,
    pub destination: String,
}

/// A settlement with the movements it covered (`GET /v1/settlements/{id}`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SettlementReport {
    #[serde(flatten)]
    pub settlement: Settlement,
    pub lines: Vec<ReportLine>,
}

/// One movement of the merchant's pending balance a settlement covered.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportLine {
    pub transaction_id: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    pub amount: i64,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
}

/// The dispute object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Dispute {
    pub(super) object: ObjectType,
    pub id: String,
    pub payment_id: String,
    pub livemode: bool,
    pub amount: i64,
    pub currency: Currency,
    pub reason: String,
    pub status: DisputeStatus,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
    pub entity: Entity,
}

/// The transfer object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Transfer {
    pub(super) object: ObjectType,
    pub id: String,
    #[serde(rename = "type")]
    pub(super) kind: TransactionKind,
    pub status: TransferStatus,
    pub amount: i64,
    pub currency: Currency,
    pub recipient: Recipient,
    pub description: Option<String>,
    /// Until when a recipient not yet on Soxara may claim it.
    pub claim: Option<ClaimWindow>,
    pub return_reason: Option<ReturnReason>,
    pub entity: Entity,
    pub livemode: bool,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
    #[serde(rename = "completed_at", serialize_with = "serialize_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at_ms: Option<i64>,
    #[serde(rename = "returned_at", serialize_with = "serialize_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub returned_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Recipient {
    pub phone: String,
    /// Whether the phone is on Soxara (now).
    pub registered: bool,
}

/// Until when a transfer's recipient may claim it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClaimWindow {
    pub expires_at: String,
}

/// The swap object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Swap {
    pub(super) object: ObjectType,
    pub id: String,
    #[serde(rename = "type")]
    pub(super) kind: TransactionKind,
    pub status: SwapStatus,
    pub quote_id: String,
    pub customer: CustomerPhone<String>,
    pub from: Amount,
    pub to: Amount,
    pub rate: RateObject,
    pub livemode: bool,
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

/// The top-up object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TopUp {
    pub(super) object: ObjectType,
    pub id: String,
    #[serde(rename = "type")]
    pub(super) kind: TransactionKind,
    pub status: InstantStatus,
    pub customer: CustomerPhone<String>,
    pub amount: i64,
    pub currency: Currency,
    pub livemode: bool,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
}

/// What a successful claim answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Claim {
    pub(super) object: ObjectType,
    pub id: String,
    pub customer: Claimant,
    pub transfers: Vec<Credited>,
    pub wallets: Vec<WalletBalance>,
    pub livemode: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Claimant {
    pub phone: String,
    pub joined_by: JoinedBy,
    #[serde(rename = "registered_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub registered_at_ms: i64,
}

/// A transfer a claim credited.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Credited {
    pub id: String,
    pub amount: i64,
    pub currency: Currency,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WalletBalance {
    pub currency: Currency,
    pub balance: i64,
}
