//! Claims: how a recipient not yet on Soxara gets money sent to their
//! phone. The phone has one claim code for everything waiting for it
//! (`domain::codes`: 6 digits, stored only as an HMAC), sent through the
//! mode's messenger with each transfer; proving the number with it
//! (`POST /v1/claims`, secret keys only) joins them to Soxara with a wallet
//! per currency and credits every transfer waiting for them. Wrong codes
//! count against the phone, whoever sends them, and lock its codes for a
//! while, never the money: the transfers keep waiting. A wrong code and a
//! phone nothing waits for get the same answer. A message that did not go
//! out gets a new code with backoff until the claim period ends.

use rusqlite::Connection;

use super::context::Context;
use super::idempotency::{self, KeyedRequest, Reply, StoredResponse};
use super::objects::{Claim, Claimant, Credited, WalletBalance};
use super::transfers::{self, TransferRow};
use crate::domain::codes::{self, Codes, Verdict};
use crate::domain::customers;
use crate::domain::messaging::{self, Outgoing, SendOutcome, Subject};
use crate::ledger::{self, AccountKind};
use crate::store::StoreError;
use crate::values::clock::format_for_people;
use crate::values::error::ApiError;
use crate::values::mode::Mode;
use crate::values::money::{CURRENCIES, display_amount};
use crate::values::status::{JoinedBy, MessageStatus, ObjectType, TransferStatus};

/// The longest wait between two claim messages that did not go out.
const RESEND_DELAY_MS_MAX: i64 = 3_600_000;
/// Claim messages one sweep sends at most.
const RESENDS_PER_SWEEP_MAX: usize = 100;
/// The approved message template for a claim code.
const CLAIM_TEMPLATE: &str = "transfer_claim";

/// A validated claim: the recipient's phone and the code it was sent.
#[derive(Debug, Clone)]
pub struct NewClaim {
    pub phone: String,
    pub code: String,
}

/// `POST /v1/claims`: the recipient proves their number with the code it
/// was sent; joins them and credits every transfer waiting for them. Every
/// answer, refusals too, is stored under the idempotency key, so a replay
/// is not another attempt.
pub async fn claim(ctx: &Context, request: KeyedRequest, new: NewClaim) -> Result<Reply, ApiError> {
    let mode = request.tenant.mode;
    let codes = ctx.codes.clone();
    let id = crate::values::ids::new_id("clm");
    let claim_id = id.clone();
    let (reply, _) = idempotency::write_once(&ctx.store, &ctx.clock, request, id, move |conn, now_ms| {
        Ok((decide(conn, &codes, mode, claim_id, &new, now_ms)?, ()))
    })
    .await?;
    Ok(reply)
}

/// What a claim answers, inside its write: with the phone's code, the
/// transfers waiting for it credited; else a refusal that says nothing
/// about whether anything waits (a wrong code, counted; the phone's codes
/// locked).
fn decide(
    conn: &Connection,
    codes: &Codes,
    mode: Mode,
    claim_id: String,
    new: &NewClaim,
    now_ms: i64,
) -> Result<StoredResponse, StoreError> {
    let refusal = match codes.check(conn, mode, &new.phone, codes::CLAIM, &new.code, now_ms)? {
        Verdict::Locked => ApiError::CodeAttemptsExceeded,
        Verdict::Wrong { attempts_left } => ApiError::ClaimCodeInvalid { attempts_left: attempts_left.into() },
        Verdict::Right => {
            let waiting = TransferRow::waiting_for(conn, mode, &new.phone, now_ms)?;
            if !waiting.is_empty() {
                return Ok(StoredResponse::ok(&onboard_and_credit(
                    conn, mode, &new.phone, &waiting, claim_id, now_ms,
                )?));
            }
            // The code was right but what it was for ended meanwhile.
            ApiError::ClaimCodeInvalid { attempts_left: codes.settings.attempts_max.into() }
        }
    };
    Ok(StoredResponse::error(&refusal))
}

/// Registers the phone (with a wallet per currency) if it is new, and
/// moves every waiting transfer from escrow into its wallets.
fn onboard_and_credit(
    conn: &Connection,
    mode: Mode,
    phone: &str,
    waiting: &[TransferRow],
    claim_id: String,
    now_ms: i64,
) -> Result<Claim, StoreError> {
    customers::register(conn, mode, phone, JoinedBy::TransferClaim, now_ms)?;
    let entity_of = &waiting[0];
    for currency in CURRENCIES {
        let wallet =
            crate::ledger::Account { currency: *currency, ..entity_of.customer_account(AccountKind::CustomerWallet) };
        ledger::open_account(conn, &wallet)?;
    }
    let mut credited = Vec::with_capacity(waiting.len());
    for transfer in waiting {
        transfer.credit_claimed(conn, now_ms)?;
        credited.push(Credited { id: transfer.id.clone(), amount: transfer.amount_minor, currency: transfer.currency });
    }
    let (joined_by, registered_at_ms) = customers::registration(conn, mode, phone)?
        .ok_or_else(|| StoreError::Invariant(format!("{phone} was just registered")))?;
    let wallets = CURRENCIES
        .iter()
        .map(|currency| {
            let wallet = crate::ledger::Account {
                currency: *currency,
                ..entity_of.customer_account(AccountKind::CustomerWallet)
            };
            Ok(WalletBalance { currency: *currency, balance: crate::domain::wallets::balance_minor(conn, &wallet)? })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Claim {
        object: ObjectType::Claim,
        id: claim_id,
        customer: Claimant { phone: phone.to_string(), joined_by, registered_at_ms },
        transfers: credited,
        wallets,
        livemode: mode.is_live(),
    })
}

/// Sends a transfer's recipient a fresh claim code (replacing any earlier
/// one), and returns the transfer if the messenger says the number cannot
/// be reached. Errors are logged: the sweep tries again.
async fn send_code(ctx: &Context, transfer_id: &str) {
    if let Err(err) = try_send_code(ctx, transfer_id).await {
        tracing::warn!(transfer = transfer_id, error = %err, "claim code not sent; the sweep retries");
    }
}

async fn try_send_code(ctx: &Context, transfer_id: &str) -> Result<(), ApiError> {
    let id = transfer_id.to_string();
    let mode = ctx.store.read(move |conn| Ok(TransferRow::load(conn, &id)?.map(|t| t.tenant.mode))).await?;
    let Some(messenger) = mode.and_then(|mode| ctx.messengers.for_mode(mode).cloned()) else {
        return Ok(());
    };
    let (id, messenger_name, clock) = (transfer_id.to_string(), messenger.plugin_name().to_string(), ctx.clock.clone());
    let codes = ctx.codes.clone();
    let outgoing = ctx
        .store
        .write(move |conn| {
            let now_ms = clock.now_ms();
            let Some(transfer) = TransferRow::load(conn, &id)?.filter(|t| t.status == TransferStatus::PendingClaim)
            else {
                return Ok(None);
            };
            // One code for everything waiting for the phone, valid as long
            // as the last of it waits.
            let waiting = TransferRow::waiting_for(conn, transfer.tenant.mode, &transfer.phone, now_ms)?;
            let expires_at_ms = waiting.iter().filter_map(|t| t.claim_expires_at_ms).max().unwrap_or(now_ms);
            let code = codes.issue(conn, transfer.tenant.mode, &transfer.phone, codes::CLAIM, expires_at_ms, now_ms)?;
            let outgoing = claim_message(&transfer, &code)?;
            messaging::record(conn, &outgoing, &messenger_name, now_ms)?;
            Ok(Some(outgoing))
        })
        .await?;
    let Some(outgoing) = outgoing else { return Ok(()) };
    match messaging::deliver(&ctx.store, &ctx.clock, messenger, outgoing).await? {
        SendOutcome::Sent => Ok(()),
        SendOutcome::Failed(why) => {
            tracing::warn!(transfer = transfer_id, why, "claim message not delivered; the sweep sends a new code");
            Ok(())
        }
        SendOutcome::Refused(failure) => {
            tracing::info!(transfer = transfer_id, code = failure.code, "recipient unreachable; transfer returned");
            let (id, clock) = (transfer_id.to_string(), ctx.clock.clone());
            ctx.store.write(move |conn| transfers::give_up_on_recipient(conn, &id, clock.now_ms())).await?;
            Ok(())
        }
    }
}

/// The words a recipient reads: only ever "Soxara", never the entity that
/// holds the money or the merchant's legal name.
fn claim_message(transfer: &TransferRow, code: &str) -> Result<Outgoing, StoreError> {
    let amount = u64::try_from(transfer.amount_minor).map_err(|_| StoreError::Invariant("negative transfer".into()))?;
    let amount = display_amount(amount, transfer.currency);
    let expires_at_ms = transfer
        .claim_expires_at_ms
        .ok_or_else(|| StoreError::Invariant("a waiting transfer without a claim period".into()))?;
    let expires = format_for_people(expires_at_ms);
    let text = format!(
        "Soxara: you have received {amount}. Your claim code is {code} (it replaces any \
         earlier one). Reply with it in this chat before {expires} to claim the money into your Soxara wallet; \
         after that it goes back to the sender. Never share this code: Soxara will never ask you for it."
    );
    Ok(Outgoing {
        id: crate::values::ids::new_id("msg"),
        tenant: transfer.tenant.clone(),
        subject: Subject::Transfer(transfer.id.clone()),
        to: transfer.phone.clone(),
        template: CLAIM_TEMPLATE.to_string(),
        parameters: vec![amount, code.to_string(), expires],
        text,
    })
}

/// Sends the claim codes that are due: a transfer's first at once, and a
/// new one where the last message did not go out (a crash, a messenger
/// outage) `resend_after_ms` after it failed, doubling with each failed
/// message up to an hour, until the claim period ends. Returns how many it
/// sent.
pub async fn send_due(ctx: &Context, now_ms: i64) -> Result<usize, ApiError> {
    let resend_after_ms = i64::try_from(ctx.transfers.resend_after_ms).unwrap_or(i64::MAX);
    let due: Vec<String> = ctx
        .store
        .read(move |conn| {
            let pending = TransferRow::pending(conn)?;
            let ids: Vec<String> = pending.iter().map(|(id, _)| id.clone()).collect();
            let sent = messaging::sent_for_transfers(conn, &ids)?;
            let mut due = Vec::new();
            for ((id, created_at_ms), sent) in pending.into_iter().zip(sent) {
                let due_at_ms = match sent.last {
                    Some((MessageStatus::Sent | MessageStatus::Delivered, _)) => continue,
                    Some((_, at_ms)) => at_ms.saturating_add(resend_delay_ms(resend_after_ms, sent.count)),
                    None => created_at_ms,
                };
                if due_at_ms <= now_ms && due.len() < RESENDS_PER_SWEEP_MAX {
                    due.push(id);
                }
            }
            Ok(due)
        })
        .await?;
    for id in &due {
        send_code(ctx, id).await;
    }
    Ok(due.len())
}

/// How long after the newest of `sends` failed messages the next goes out.
fn resend_delay_ms(resend_after_ms: i64, sends: i64) -> i64 {
    let doublings = u32::try_from(sends.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    resend_after_ms.saturating_mul(1 << doublings).min(RESEND_DELAY_MS_MAX.max(resend_after_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resends_back_off_to_an_hour() {
        assert_eq!(resend_delay_ms(60_000, 1), 60_000);
        assert_eq!(resend_delay_ms(60_000, 3), 240_000);
        assert_eq!(resend_delay_ms(60_000, 50), RESEND_DELAY_MS_MAX);
        assert_eq!(resend_delay_ms(7_200_000, 2), 7_200_000, "never below the configured delay");
    }

    use crate::config::CodeSettings;
    use crate::domain::codes::CodeKey;
    use crate::operations::transfers::tests::{fund_merchant, transfer};
    use crate::testing;

    const PHONE: &str = "+231770005555";

    fn codes() -> Codes {
        Codes {
            key: CodeKey::random(),
            settings: CodeSettings { attempts_max: 3, lockout_ms: 30_000, ..CodeSettings::default() },
        }
    }

    fn attempt(conn: &Connection, codes: &Codes, code: &str, now_ms: i64) -> (u16, serde_json::Value) {
        let new = NewClaim { phone: PHONE.into(), code: code.into() };
        let answer = decide(conn, codes, Mode::Test, crate::values::ids::new_id("clm"), &new, now_ms).unwrap();
        (answer.status, serde_json::from_str(&answer.body).unwrap())
    }

    fn issue(conn: &Connection, codes: &Codes) -> String {
        codes.issue(conn, Mode::Test, PHONE, codes::CLAIM, i64::MAX, 1_000).unwrap()
    }

    #[test]
    fn the_right_code_joins_the_recipient_and_credits_every_transfer_waiting() {
        let (conn, merchant) = testing::database_with_merchant();
        let codes = codes();
        fund_merchant(&conn, &merchant, 2_000);
        let first = transfer(&conn, &merchant, PHONE).unwrap();
        let second = transfer(&conn, &merchant, PHONE).unwrap();
        let code = issue(&conn, &codes);
        let (status, body) = attempt(&conn, &codes, &code, 2_000);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["transfers"].as_array().unwrap().len(), 2, "both transfers: {body}");
        assert_eq!(body["customer"]["joined_by"], JoinedBy::TransferClaim.as_str());
        assert!(customers::is_registered(&conn, Mode::Test, PHONE).unwrap());
        for id in [&first.id, &second.id] {
            assert_eq!(TransferRow::load(&conn, id).unwrap().unwrap().status, TransferStatus::Completed);
        }
        assert_eq!(attempt(&conn, &codes, &code, 2_000).0, 422, "used up");
        crate::operations::verify(&conn).unwrap();
    }

    #[test]
    fn nothing_waiting_answers_as_a_wrong_code_does() {
        let (conn, merchant) = testing::database_with_merchant();
        let codes = codes();
        let (nothing_status, nothing) = attempt(&conn, &codes, "123456", 2_000);
        fund_merchant(&conn, &merchant, 1_000);
        transfer(&conn, &merchant, PHONE).unwrap();
        let code = issue(&conn, &codes);
        let wrong_code = if code == "000000" { "000001" } else { "000000" };
        let (wrong_status, wrong) = attempt(&conn, &codes, wrong_code, 2_000);
        assert_eq!((nothing_status, &nothing["error"]["code"]), (wrong_status, &wrong["error"]["code"]));
        assert_eq!(
            nothing["error"]["message"].as_str().unwrap().len(),
            wrong["error"]["message"].as_str().unwrap().len()
        );
    }

    #[test]
    fn wrong_codes_lock_the_phone_for_everyone_never_the_money() {
        let (conn, merchant) = testing::database_with_merchant();
        let codes = codes();
        fund_merchant(&conn, &merchant, 1_000);
        let waiting = transfer(&conn, &merchant, PHONE).unwrap();
        let code = issue(&conn, &codes);
        let wrong_code = if code == "000000" { "000001" } else { "000000" };
        for left in [2, 1, 0] {
            let (status, body) = attempt(&conn, &codes, wrong_code, 2_000);
            assert_eq!((status, body["error"]["code"].as_str()), (422, Some("CLAIM_CODE_INVALID")), "{left}: {body}");
            assert!(body["error"]["message"].as_str().unwrap().contains(&format!(" {left} more")), "{body}");
        }
        let (status, body) = attempt(&conn, &codes, &code, 2_000);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (429, Some("CODE_ATTEMPTS_EXCEEDED")),
            "even the right code"
        );
        let fresh = issue(&conn, &codes);
        assert_eq!(attempt(&conn, &codes, &fresh, 3_000).0, 429, "a new code does not reset the count");
        assert_eq!(TransferRow::load(&conn, &waiting.id).unwrap().unwrap().status, TransferStatus::PendingClaim);
        let after_lockout = 2_000 + i64::try_from(codes.settings.lockout_ms).unwrap();
        assert_eq!(attempt(&conn, &codes, &fresh, after_lockout).0, 200, "the money waited");
    }
}
