//! Trader: crypto sales through a custody provider's HTTP API
//! (`docs/custody-protocol.md`). It trades crypto only: gift cards, RMB and
//! simulated deposits are refused (`NOT_SUPPORTED`).
//!
//! - `describe`: crypto sales. No network: the host calls it when it loads
//!   the component.
//! - `crypto-assets`: `GET /v1/assets`, reused for `ASSETS_CACHE_MS` from
//!   the host's cache (rates at most that old).
//! - `deposit-address`: `POST /v1/addresses` with the owner, asset and
//!   network; the provider gives the same address for the same triple on
//!   every call.
//! - `deposit-status`: `GET /v1/deposits/{id}`.
//! - `handle-callback`: a deposit notification, authenticated by its
//!   `X-Custody-Signature` (HMAC-SHA-256 of `t.body` under the webhook
//!   secret, compared in constant time; signed within 5 minutes of the
//!   host's clock), read into `trade-event::deposit`. A forged, stale or
//!   unreadable one is a failure, not retryable.
//!
//! No answer, a timeout or a 5xx is a retryable failure; a 4xx is not.
//! Amounts are integers in base units throughout; nothing is a float.
//!
//! Config (operator): `base_url` (the API, e.g. `https://custody.example`),
//! `api_key` (sent as a bearer token), `webhook_secret` (checks
//! notifications). The operator must allow `base_url`'s host. Neither
//! secret ever appears in a message.

wit_bindgen::generate!({
    world: "soxara:billing/trader-plugin",
    path: ["../../wit", "../../wit/billing"],
    // The gateway package is a dependency here, not the main package.
    generate_all,
});

mod client;
mod protocol;

use client::Settings;
use exports::soxara::billing::trader::{
    AddressRequest, Callback, CryptoAsset, Deposit, GiftCardBrand, GiftCardSale, Guest, RmbOrder, RmbTerms,
    TestDepositRequest, TradeEvent, TradeKind, TradeOutcome, TraderInfo,
};
use protocol::failure;
use soxara::gateway::clock;
use soxara::gateway::log::{self, Level};
use soxara::gateway::types::Failure;

/// The longest owner, asset, network or deposit id sent to the provider.
const FIELD_CHARS_MAX: usize = 128;

struct Custody;

impl Guest for Custody {
    fn describe() -> TraderInfo {
        TraderInfo {
            name: "custody".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            trades: vec![TradeKind::CryptoSale],
        }
    }

    fn gift_card_catalog() -> Result<Vec<GiftCardBrand>, Failure> {
        Err(not_supported("gift cards"))
    }

    fn gift_card_sell(_sale: GiftCardSale) -> Result<TradeOutcome, Failure> {
        Err(not_supported("gift cards"))
    }

    fn gift_card_status(_sale: GiftCardSale, _provider_reference: Option<String>) -> Result<TradeOutcome, Failure> {
        Err(not_supported("gift cards"))
    }

    fn rmb_offer() -> Result<RmbTerms, Failure> {
        Err(not_supported("RMB payouts"))
    }

    fn rmb_buy(_order: RmbOrder) -> Result<TradeOutcome, Failure> {
        Err(not_supported("RMB payouts"))
    }

    fn rmb_status(_order: RmbOrder, _provider_reference: Option<String>) -> Result<TradeOutcome, Failure> {
        Err(not_supported("RMB payouts"))
    }

    fn crypto_assets() -> Result<Vec<CryptoAsset>, Failure> {
        Settings::from_config()?.assets()
    }

    fn deposit_address(request: AddressRequest) -> Result<String, Failure> {
        for (field, value) in [("owner", &request.owner), ("asset", &request.asset), ("network", &request.network)] {
            check_field(field, value)?;
        }
        Settings::from_config()?.address(&request)
    }

    fn deposit_status(deposit_id: String) -> Result<Deposit, Failure> {
        check_field("deposit id", &deposit_id)?;
        // A path segment of dots would be resolved away by a URL parser.
        if deposit_id.bytes().all(|b| b == b'.') {
            return Err(failure("INVALID_REQUEST", "no deposit has this id".into(), false));
        }
        Settings::from_config()?.deposit(&deposit_id)
    }

    /// Live custody simulates nothing.
    fn test_deposit(_request: TestDepositRequest) -> Result<Deposit, Failure> {
        Err(not_supported("simulated deposits (a live custody provider reports real ones)"))
    }

    fn handle_callback(callback: Callback) -> Result<TradeEvent, Failure> {
        if !callback.method.eq_ignore_ascii_case("POST") {
            return Err(failure("BAD_CALLBACK", "custody notifications are POSTed".into(), false));
        }
        let secret = client::webhook_secret()?;
        protocol::check_signature(&callback.headers, &callback.body, &secret, clock::now_ms())?;
        protocol::parse_notification(&callback.body).map_err(|why| {
            log::log(Level::Warn, &format!("an authentic custody notification was unreadable: {why}"));
            failure("BAD_CALLBACK", format!("the notification was unreadable: {why}"), false)
        })
    }
}

export!(Custody);

/// A request field sent to the provider: present, printable, short.
fn check_field(field: &str, value: &str) -> Result<(), Failure> {
    let ok = !value.is_empty()
        && value.chars().count() <= FIELD_CHARS_MAX
        && !value.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(failure("INVALID_REQUEST", format!("the {field} is empty, too long or has spaces"), false))
    }
}

fn not_supported(what: &str) -> Failure {
    failure("NOT_SUPPORTED", format!("the custody trader does not trade {what}"), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use exports::soxara::billing::trader::CardForm;
    use soxara::gateway::types::Money;

    fn usd(amount: u64) -> Money {
        Money { amount, currency: "USD".into() }
    }

    #[test]
    fn describes_itself_as_a_crypto_trader() {
        let info = Custody::describe();
        assert_eq!(info.name, "custody");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(info.trades, [TradeKind::CryptoSale]);
    }

    #[test]
    fn gift_cards_rmb_and_test_deposits_are_not_supported() {
        let sale = GiftCardSale {
            trade_id: "trd_1".into(),
            brand: "amazon".into(),
            country: "US".into(),
            form: CardForm::Ecode,
            face_value: usd(5_000),
            payout: usd(4_250),
            additional_info: Some("CODE-1234".into()),
            images: vec![],
            created_at_ms: 0,
        };
        let order = RmbOrder {
            trade_id: "trd_2".into(),
            channel: "alipay".into(),
            recipient_identifier: "alice".into(),
            recipient_name: None,
            amount: Money { amount: 71_000, currency: "CNY".into() },
            paid: usd(10_000),
            created_at_ms: 0,
        };
        let deposit = TestDepositRequest {
            address: "TAbc".into(),
            asset: "USDT".into(),
            network: "tron".into(),
            amount: 1_000_000,
            test_reference: "DEP-TX-1234".into(),
        };
        let refusals = [
            Custody::gift_card_catalog().map(drop).unwrap_err(),
            Custody::gift_card_sell(sale.clone()).map(drop).unwrap_err(),
            Custody::gift_card_status(sale, Some("ref".into())).map(drop).unwrap_err(),
            Custody::rmb_offer().map(drop).unwrap_err(),
            Custody::rmb_buy(order.clone()).map(drop).unwrap_err(),
            Custody::rmb_status(order, None).map(drop).unwrap_err(),
            Custody::test_deposit(deposit).map(drop).unwrap_err(),
        ];
        for refusal in refusals {
            assert_eq!((refusal.code.as_str(), refusal.retryable), ("NOT_SUPPORTED", false), "{}", refusal.message);
        }
    }

    #[test]
    fn requests_with_unusable_fields_are_refused_before_any_call() {
        let request =
            |owner: &str| AddressRequest { owner: owner.into(), asset: "USDT".into(), network: "tron".into() };
        for owner in ["", "two words", &"x".repeat(FIELD_CHARS_MAX + 1)] {
            let refused = Custody::deposit_address(request(owner)).unwrap_err();
            assert_eq!((refused.code.as_str(), refused.retryable), ("INVALID_REQUEST", false), "{owner:?}");
        }
        for id in ["", "..", ".", "a\nb"] {
            let refused = Custody::deposit_status(id.into()).unwrap_err();
            assert_eq!(refused.code, "INVALID_REQUEST", "{id:?}");
        }
    }

    #[test]
    fn only_posted_callbacks_are_read() {
        let callback = Callback { method: "GET".into(), query: String::new(), headers: vec![], body: vec![] };
        let refused = Custody::handle_callback(callback).unwrap_err();
        assert_eq!((refused.code.as_str(), refused.retryable), ("BAD_CALLBACK", false));
    }
}
