//! Trader: gift card sales and RMB purchases through a trading desk's HTTP
//! API (`docs/desk-protocol.md`), where people often verify cards and pay
//! recipients, so a trade may stay pending for hours. Crypto is not traded
//! here (`NOT_SUPPORTED`).
//!
//! - `describe`: gift card sales and RMB purchases. No network: the host
//!   calls it when it loads the component.
//! - `gift-card-catalog`, `rmb-offer`: `GET /v1/gift-cards/catalog`,
//!   `GET /v1/rmb/terms`, reused from the host's cache for `rates_cache_ms`
//!   (default 30 s). No answer, a timeout or a 5xx is a retryable failure.
//! - `gift-card-sell`, `rmb-buy`: `POST /v1/gift-cards/trades`,
//!   `POST /v1/rmb/orders` under the gateway's trade id, which the desk
//!   keeps as its idempotency key (a repeat returns the trade it has). A
//!   refusal (`400`, `422`, a refused key) is a failure, not retryable:
//!   nothing was created. No answer, a timeout or a 5xx is a `processing`
//!   outcome: the desk may have the trade, and the host's status checks ask
//!   again under the same trade id.
//! - `gift-card-status`, `rmb-status`: `GET …/{trade_id}`. A `404` means
//!   the desk never got the trade: it is sent again under the same trade
//!   id (never a second trade) when the request is complete (an e-code's
//!   code, the photos' bytes) and the desk never gave a reference for it; a
//!   refusal of its content then ends it (`cancelled` sale, `failed`
//!   order). Any other trouble is a failure: the host checks again later.
//! - `handle-callback`: `POST {callback_url}` from the desk, signed
//!   `X-Desk-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, t.body)>`,
//!   compared in constant time and accepted within 5 minutes of the host's
//!   clock; a `trade.updated` event becomes `trade-event::trade`, any other
//!   `ignored`. A forged, stale or unreadable one is a failure, not
//!   retryable.
//!
//! Statuses: `pending`, `processing` → processing; `completed`;
//! `cancelled`; `refunded`; `failed` (with the desk's reason code and
//! message). A completed gift card's `verified_value`, below the declared
//! face value, is reported for a partly used card. Amounts are integers in
//! minor units throughout; nothing is a float.
//!
//! Config (operator): `base_url` (the desk's API), `api_key` (sent as a
//! bearer token), `webhook_secret` (checks callbacks); optional
//! `rates_cache_ms`. The host adds `callback_url`, sent with each trade.
//! The operator must allow `base_url`'s host. No secret, card code or
//! photo ever appears in a log line or a message.

wit_bindgen::generate!({
    world: "soxara:billing/trader-plugin",
    path: ["../../wit", "../../wit/billing"],
    // The gateway package is a dependency here, not the main package.
    generate_all,
});

mod client;
mod protocol;

use client::{Settings, Submitted};
use exports::soxara::billing::trader::{
    AddressRequest, Callback, CryptoAsset, Deposit, GiftCardBrand, GiftCardSale, Guest, RmbOrder, RmbTerms,
    TestDepositRequest, TradeEvent, TradeKind, TradeOutcome, TradeReport, TraderInfo,
};
use protocol::{Amount, DeskTrade, Kind, failure};
use soxara::gateway::clock;
use soxara::gateway::log::{self, Level};
use soxara::gateway::types::{Failure, TransactionStatus};

struct Desk;

impl Guest for Desk {
    fn describe() -> TraderInfo {
        TraderInfo {
            name: "desk".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            trades: vec![TradeKind::GiftCardSale, TradeKind::RmbPurchase],
        }
    }

    fn gift_card_catalog() -> Result<Vec<GiftCardBrand>, Failure> {
        let body = Settings::from_config()?.listing("/v1/gift-cards/catalog", "catalogue")?;
        protocol::parse_catalog(&body).map_err(|why| bad_answer("catalogue", &why))
    }

    fn gift_card_sell(sale: GiftCardSale) -> Result<TradeOutcome, Failure> {
        let settings = Settings::from_config()?;
        let trade = Trade::GiftCard(&sale);
        match trade.submit(&settings) {
            Submitted::Invalid(refusal) | Submitted::Refused(refusal) => Err(refusal),
            submitted => Ok(trade.read(submitted, None)),
        }
    }

    fn gift_card_status(sale: GiftCardSale, provider_reference: Option<String>) -> Result<TradeOutcome, Failure> {
        Trade::GiftCard(&sale).status(&Settings::from_config()?, provider_reference)
    }

    fn rmb_offer() -> Result<RmbTerms, Failure> {
        let body = Settings::from_config()?.listing("/v1/rmb/terms", "RMB terms")?;
        protocol::parse_terms(&body).map_err(|why| bad_answer("RMB terms", &why))
    }

    fn rmb_buy(order: RmbOrder) -> Result<TradeOutcome, Failure> {
        let settings = Settings::from_config()?;
        let trade = Trade::Rmb(&order);
        match trade.submit(&settings) {
            Submitted::Invalid(refusal) | Submitted::Refused(refusal) => Err(refusal),
            submitted => Ok(trade.read(submitted, None)),
        }
    }

    fn rmb_status(order: RmbOrder, provider_reference: Option<String>) -> Result<TradeOutcome, Failure> {
        Trade::Rmb(&order).status(&Settings::from_config()?, provider_reference)
    }

    fn crypto_assets() -> Result<Vec<CryptoAsset>, Failure> {
        Err(not_supported("crypto"))
    }

    fn deposit_address(_request: AddressRequest) -> Result<String, Failure> {
        Err(not_supported("crypto"))
    }

    fn deposit_status(_deposit_id: String) -> Result<Deposit, Failure> {
        Err(not_supported("crypto"))
    }

    fn test_deposit(_request: TestDepositRequest) -> Result<Deposit, Failure> {
        Err(not_supported("simulated deposits"))
    }

    fn handle_callback(callback: Callback) -> Result<TradeEvent, Failure> {
        if !callback.method.eq_ignore_ascii_case("POST") {
            return Err(failure("BAD_CALLBACK", "desk callbacks are POSTs", false));
        }
        // Without the secret nothing can be checked: the desk is told to
        // send it again (status checks follow the trades meanwhile).
        let secret = client::setting("webhook_secret").ok_or_else(|| {
            failure("NOT_CONFIGURED", "the operator has not set `webhook_secret` for the desk trader", true)
        })?;
        protocol::verify_signature(&callback.headers, &callback.body, &secret, clock::now_ms())?;
        let unreadable =
            |why: String| failure("BAD_CALLBACK", format!("the desk's callback is unreadable: {why}"), false);
        let Some((kind, trade)) = protocol::parse_callback(&callback.body).map_err(unreadable)? else {
            return Ok(TradeEvent::Ignored);
        };
        let outcome = protocol::outcome(&trade, kind, None).map_err(unreadable)?;
        log::log(Level::Info, &format!("desk callback: trade {} is {:?}", trade.trade_id, trade.status));
        Ok(TradeEvent::Trade(TradeReport { trade_id: trade.trade_id, outcome }))
    }
}

export!(Desk);

/// A trade the gateway asked for: a gift card sale or an RMB order.
enum Trade<'a> {
    GiftCard(&'a GiftCardSale),
    Rmb(&'a RmbOrder),
}

impl Trade<'_> {
    fn kind(&self) -> Kind {
        match self {
            Trade::GiftCard(_) => Kind::GiftCard,
            Trade::Rmb(_) => Kind::Rmb,
        }
    }

    fn trade_id(&self) -> &str {
        match self {
            Trade::GiftCard(sale) => &sale.trade_id,
            Trade::Rmb(order) => &order.trade_id,
        }
    }

    /// What a sale declared, to check a verified value against.
    fn declared(&self) -> Option<Amount> {
        match self {
            Trade::GiftCard(sale) => {
                Some(Amount { amount: sale.face_value.amount, currency: sale.face_value.currency.clone() })
            }
            Trade::Rmb(_) => None,
        }
    }

    /// Whether the trade can be sent (again) as it is.
    fn complete(&self) -> bool {
        match self {
            Trade::GiftCard(sale) => protocol::sale_is_complete(sale),
            Trade::Rmb(order) => !order.recipient_identifier.trim().is_empty(),
        }
    }

    fn submit(&self, settings: &Settings) -> Submitted {
        let body = match self {
            Trade::GiftCard(sale) => protocol::gift_card_body(sale, settings.callback_url()),
            Trade::Rmb(order) => protocol::rmb_body(order, settings.callback_url()),
        };
        settings.submit(self.kind(), self.trade_id(), body)
    }

    /// The outcome of a trade the desk may have: what it answered, or
    /// `processing` when it gave no usable answer (its status checks will
    /// know). Only for what `submit` did not refuse.
    fn read(&self, submitted: Submitted, provider_reference: Option<String>) -> TradeOutcome {
        match submitted {
            Submitted::Answered(trade) => self.outcome(&trade, provider_reference.clone()).unwrap_or_else(|why| {
                log::log(Level::Error, &format!("trade {}: {}; left processing", self.trade_id(), why.message));
                protocol::processing(provider_reference)
            }),
            _ => protocol::processing(provider_reference),
        }
    }

    /// What the desk's trade means, keeping the reference the gateway has
    /// when the desk leaves its id out.
    fn outcome(&self, trade: &DeskTrade, provider_reference: Option<String>) -> Result<TradeOutcome, Failure> {
        let mut outcome =
            protocol::outcome(trade, self.kind(), self.declared().as_ref()).map_err(|why| bad_answer("trade", &why))?;
        outcome.provider_reference = outcome.provider_reference.or(provider_reference);
        Ok(outcome)
    }

    /// Where a trade left processing stands at the desk. One the desk never
    /// got is sent again under the same trade id, never as a second trade.
    fn status(&self, settings: &Settings, provider_reference: Option<String>) -> Result<TradeOutcome, Failure> {
        let trade_id = self.trade_id();
        if let Some(trade) = settings.lookup(self.kind(), trade_id)? {
            return self.outcome(&trade, provider_reference);
        }
        if let Some(reference) = &provider_reference {
            // The desk gave an id for it, so it had it: never send it again.
            return Err(failure(
                "NOT_FOUND_AT_DESK",
                format!("the desk no longer shows trade {trade_id} ({reference}); reconcile it with the desk"),
                true,
            ));
        }
        if !self.complete() {
            return Err(failure(
                "NOT_FOUND_AT_DESK",
                format!("the desk never received trade {trade_id}, and it cannot be sent again as it is"),
                true,
            ));
        }
        log::log(Level::Info, &format!("trade {trade_id} unknown to the desk; sending it again under the same id"));
        match self.submit(settings) {
            // The desk never had it and refuses its content: nothing was
            // traded, the money goes back (a sale is cancelled, an order failed).
            Submitted::Invalid(refusal) => Ok(TradeOutcome {
                status: match self.kind() {
                    Kind::GiftCard => TransactionStatus::Cancelled,
                    Kind::Rmb => TransactionStatus::Failed,
                },
                provider_reference: None,
                verified_value: None,
                failure: Some(refusal),
            }),
            Submitted::Refused(refusal) => Err(refusal),
            submitted => Ok(self.read(submitted, None)),
        }
    }
}

fn bad_answer(what: &str, why: &str) -> Failure {
    failure("BAD_DESK_RESPONSE", format!("the desk's {what} was unreadable: {why}"), true)
}

fn not_supported(what: &str) -> Failure {
    failure("NOT_SUPPORTED", format!("the desk trader does not trade {what}"), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use soxara::gateway::types::Money;

    fn sale(code: Option<&str>) -> GiftCardSale {
        GiftCardSale {
            trade_id: "gcs_1".into(),
            brand: "amazon".into(),
            country: "US".into(),
            form: exports::soxara::billing::trader::CardForm::Ecode,
            face_value: Money { amount: 10_000, currency: "USD".into() },
            payout: Money { amount: 8_500, currency: "USD".into() },
            additional_info: code.map(str::to_string),
            images: vec![],
            created_at_ms: 0,
        }
    }

    #[test]
    fn describes_itself() {
        let info = Desk::describe();
        assert_eq!(info.name, "desk");
        assert_eq!(info.trades, [TradeKind::GiftCardSale, TradeKind::RmbPurchase]);
    }

    #[test]
    fn crypto_is_not_supported() {
        let refused = [
            Desk::crypto_assets().map(drop).unwrap_err(),
            Desk::deposit_status("d".into()).map(drop).unwrap_err(),
            Desk::deposit_address(AddressRequest { owner: "m".into(), asset: "USDT".into(), network: "tron".into() })
                .map(drop)
                .unwrap_err(),
            Desk::test_deposit(TestDepositRequest {
                address: "a".into(),
                asset: "USDT".into(),
                network: "tron".into(),
                amount: 1,
                test_reference: "r".into(),
            })
            .map(drop)
            .unwrap_err(),
        ];
        for failure in refused {
            assert_eq!((failure.code.as_str(), failure.retryable), ("NOT_SUPPORTED", false));
        }
    }

    #[test]
    fn a_trade_the_desk_may_have_is_processing_and_keeps_its_reference() {
        let trade = Trade::GiftCard(&sale(Some("CODE")));
        let unknown = trade.read(Submitted::Unknown, Some("dsk-1".into()));
        assert_eq!(
            (unknown.status, unknown.provider_reference.as_deref()),
            (TransactionStatus::Processing, Some("dsk-1"))
        );
        let answered = protocol::parse_trade(br#"{"trade_id": "gcs_1", "status": "completed"}"#).unwrap();
        let done = trade.read(Submitted::Answered(answered), Some("dsk-1".into()));
        assert_eq!((done.status, done.provider_reference.as_deref()), (TransactionStatus::Completed, Some("dsk-1")));
        // Above the declared value: not believed (`read` leaves it processing).
        let inflated = protocol::parse_trade(
            br#"{"trade_id": "gcs_1", "status": "completed", "verified_value": {"amount": 20000, "currency": "USD"}}"#,
        )
        .unwrap();
        let refused = trade.outcome(&inflated, None).unwrap_err();
        assert_eq!((refused.code.as_str(), refused.retryable), ("BAD_DESK_RESPONSE", true));
    }

    #[test]
    fn only_complete_trades_are_sent_again() {
        assert!(Trade::GiftCard(&sale(Some("CODE"))).complete());
        assert!(!Trade::GiftCard(&sale(None)).complete());
        assert_eq!(Trade::GiftCard(&sale(None)).declared().unwrap().amount, 10_000);
    }
}
