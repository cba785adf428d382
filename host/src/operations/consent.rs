//! Consent: what a customer's decision on an approval means for what it
//! was asked for. Approved, a wallet payment holds their money and goes to
//! its rail, a swap executes, wallet access is granted; refused, expired or
//! failed by wrong codes, the payment or swap fails with nothing moved.
//! Also the requests for standing wallet access, and the sweep that
//! expires approvals nobody answered.

use super::approvals::{self, Approval, ApprovalRow, Ask, Decision};
use super::context::Context;
use super::lifecycle;
use super::payments::PaymentRow;
use super::swaps;
use crate::domain::wallet_access::{self, WalletAccess};
use crate::domain::wallets::Wallets;
use crate::store::{StoreError, load_owned};
use crate::values::error::ApiError;
use crate::values::failure::FailureReason;
use crate::values::mode::Tenant;
use crate::values::status::ApprovalPurpose;

/// `POST /v1/approvals/{id}/approve`: the code the customer was sent. A
/// wrong one is counted against their phone (and the count kept even
/// though the request is refused); the last one allowed fails the approval.
pub async fn approve(ctx: &Context, tenant: &Tenant, id: String, code: String) -> Result<Approval, ApiError> {
    let (ctx, tenant) = (ctx.clone(), tenant.clone());
    lifecycle::detached(async move {
        let (codes, wallets, clock) = (ctx.codes.clone(), ctx.wallets.clone(), ctx.clock.clone());
        let decided = ctx
            .store
            .write(move |conn| {
                let now_ms = clock.now_ms();
                let approval = owned(conn, &tenant, &id)?;
                Ok(match approval.decide(conn, &codes, &code, now_ms)? {
                    Decision::Approved(approval) => {
                        let payment = go_ahead(conn, &wallets, &approval, now_ms)?;
                        Ok((approval, payment))
                    }
                    Decision::Failed(approval) => {
                        let reason = failure("APPROVAL_FAILED", "too many wrong approval codes");
                        fail(conn, &approval, &reason, now_ms)?;
                        Err(ApiError::ApprovalCodeInvalid { attempts_left: 0 })
                    }
                    Decision::Wrong { attempts_left } => {
                        Err(ApiError::ApprovalCodeInvalid { attempts_left: attempts_left.into() })
                    }
                    Decision::Locked => Err(ApiError::CodeAttemptsExceeded),
                })
            })
            .await?;
        let (approval, payment) = decided?;
        if let Some(payment) = payment {
            lifecycle::call_approved(&ctx, payment).await?;
        }
        Ok(approval.object())
    })
    .await
}

/// `POST /v1/approvals/{id}/refuse`: the customer said no.
pub async fn refuse(ctx: &Context, tenant: &Tenant, id: String) -> Result<Approval, ApiError> {
    let (codes, clock, tenant) = (ctx.codes.clone(), ctx.clock.clone(), tenant.clone());
    let refused = ctx
        .store
        .write(move |conn| {
            let now_ms = clock.now_ms();
            let approval = owned(conn, &tenant, &id)?.refuse(conn, &codes, now_ms)?;
            fail(conn, &approval, &failure("CUSTOMER_REFUSED", "the customer refused it"), now_ms)?;
            Ok(approval)
        })
        .await?;
    Ok(refused.object())
}

/// `POST /v1/customers/{phone}/wallet-access`: asks the customer to let the
/// merchant read their wallet balances.
pub async fn request_wallet_access(ctx: &Context, tenant: &Tenant, phone: String) -> Result<Approval, ApiError> {
    let mode = tenant.mode;
    let messenger = ctx.messengers.for_mode(mode).cloned().ok_or(ApiError::MessagingUnavailable { mode })?;
    let (codes, messenger_name, clock) = (ctx.codes.clone(), messenger.plugin_name().to_string(), ctx.clock.clone());
    let ttl_ms = i64::try_from(ctx.codes.settings.approval_ttl_ms).unwrap_or(i64::MAX);
    let ask = Ask {
        tenant: tenant.clone(),
        phone,
        purpose: ApprovalPurpose::WalletAccess,
        transaction_id: None,
        amount: None,
    };
    let (approval, message) = ctx
        .store
        .write(move |conn| approvals::request(conn, &codes, ask, &messenger_name, ttl_ms, clock.now_ms()))
        .await?;
    approvals::deliver(ctx, messenger, message).await;
    Ok(approval.object())
}

/// `DELETE /v1/customers/{phone}/wallet-access`: the merchant gives up its
/// access (the customer asked it to, or it no longer needs it).
pub async fn revoke_wallet_access(ctx: &Context, tenant: &Tenant, phone: String) -> Result<WalletAccess, ApiError> {
    let (owner, clock, asked) = (tenant.clone(), ctx.clock.clone(), phone.clone());
    let revoked = ctx.store.write(move |conn| wallet_access::revoke(conn, &owner, &asked, clock.now_ms())).await?;
    if revoked {
        Ok(WalletAccess::new(tenant, phone, false))
    } else {
        Err(ApiError::NotFound { what: "wallet access" })
    }
}

/// Expires the approvals nobody answered in time, failing what they were
/// for; how many.
pub async fn expire_due(ctx: &Context) -> Result<usize, ApiError> {
    let (codes, clock) = (ctx.codes.clone(), ctx.clock.clone());
    let expired = ctx
        .store
        .write(move |conn| {
            let now_ms = clock.now_ms();
            let expired = approvals::expire_due(conn, &codes, now_ms)?;
            for approval in &expired {
                fail(conn, approval, &failure("APPROVAL_EXPIRED", "the customer did not approve it in time"), now_ms)?;
            }
            Ok(expired.len())
        })
        .await?;
    Ok(expired)
}

/// After a crash: approved operations whose rail never answered are asked
/// again under the same id. Returns how many.
pub async fn resume_approved(ctx: &Context) -> Result<usize, ApiError> {
    let unanswered = ctx.store.read(approvals::approved_unanswered).await?;
    for (purpose, id) in &unanswered {
        match purpose {
            ApprovalPurpose::Payment => lifecycle::resume::<PaymentRow>(ctx, id.clone()).await?,
            // Executed in the approving write: nothing to resume.
            ApprovalPurpose::Swap | ApprovalPurpose::WalletAccess => {}
        }
    }
    Ok(unanswered.len())
}

fn owned(conn: &rusqlite::Connection, tenant: &Tenant, id: &str) -> Result<ApprovalRow, StoreError> {
    load_owned::<ApprovalRow>(conn, tenant, id)?
        .ok_or_else(|| StoreError::rejected(ApiError::NotFound { what: "approval" }))
}

/// What an approval means once given, in the approving write. A payment
/// to hand to its rail after the write is returned.
fn go_ahead(
    conn: &rusqlite::Connection,
    wallets: &Wallets,
    approval: &ApprovalRow,
    now_ms: i64,
) -> Result<Option<PaymentRow>, StoreError> {
    let transaction_id = || {
        approval
            .transaction_id
            .as_deref()
            .ok_or_else(|| StoreError::Invariant(format!("approval {} has no transaction", approval.id)))
    };
    match approval.purpose {
        ApprovalPurpose::Payment => lifecycle::on_approved::<PaymentRow>(conn, transaction_id()?, now_ms),
        ApprovalPurpose::Swap => {
            swaps::on_approved(conn, wallets, transaction_id()?, now_ms)?;
            approvals::mark_answered(conn, transaction_id()?, now_ms)?;
            Ok(None)
        }
        ApprovalPurpose::WalletAccess => {
            wallet_access::grant(conn, &approval.tenant, &approval.phone, &approval.id, now_ms)?;
            Ok(None)
        }
    }
}

/// What an approval not given means: the payment or swap fails with
/// nothing moved.
fn fail(
    conn: &rusqlite::Connection,
    approval: &ApprovalRow,
    reason: &FailureReason,
    now_ms: i64,
) -> Result<(), StoreError> {
    let Some(id) = approval.transaction_id.as_deref() else { return Ok(()) };
    match approval.purpose {
        ApprovalPurpose::Payment => lifecycle::on_not_approved::<PaymentRow>(conn, id, reason, now_ms),
        ApprovalPurpose::Swap => swaps::on_not_approved(conn, id, reason, now_ms),
        ApprovalPurpose::WalletAccess => Ok(()),
    }
}

fn failure(code: &str, message: &str) -> FailureReason {
    FailureReason { code: code.into(), message: Some(message.into()) }
}
