//! Write a payment rail for the Soxara gateway.
//!
//! A rail is a WebAssembly component that moves money between a customer and
//! the platform through one provider. The gateway (the host) owns
//! idempotency, the ledger, webhooks and retries; a rail only translates
//! between the gateway's requests and its provider's protocol. With this
//! crate a rail is a type implementing [`Rail`] and one [`export_rail!`]:
//!
//! ```ignore
//! use soxara_sdk::prelude::*;
//!
//! struct MyRail;
//!
//! impl Rail for MyRail {
//!     fn describe() -> RailInfo {
//!         RailInfo::new("my-rail", env!("CARGO_PKG_VERSION"), "USD,LRD")
//!             .method(PaymentMethod::MtnMomo, "Phoenix Hub Liberia, Inc.")
//!     }
//!     fn collect(request: CollectRequest) -> Result<RailOutcome, Failure> { … }
//!     fn status(request: CollectRequest, reference: Option<String>) -> Result<RailOutcome, Failure> { … }
//! }
//!
//! soxara_sdk::export_rail!(MyRail);
//! ```
//!
//! The host's imports are typed modules: [`http`] (only to hosts the operator
//! allows), [`config`] (this plugin's settings and credentials), [`cache`],
//! [`clock`] and [`log`]. [`money`] and [`phone`] hold the conversions every
//! provider needs; [`token`] keeps OAuth-style access tokens between calls. Build with `cargo xtask build-plugin <dir>` (see
//! `docs/plugins.md`); test with the `soxara-testkit` crate.

pub mod cache;
pub mod clock;
pub mod config;
pub mod http;
pub mod log;
pub mod money;
mod outcome;
pub mod phone;
pub mod token;

pub use money::parse_decimal;

/// The WIT package this SDK targets. Every import and export of a rail built
/// with it carries this version (`soxara:gateway/rail@0.1.0`), which is how
/// the gateway tells which contract a component was built for.
pub const WIT_PACKAGE: &str = "soxara:gateway@0.1.0";

/// The generated bindings of the `rail-plugin` world. Rails rarely need them:
/// the types they use are re-exported at the crate root and in [`prelude`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "rail-plugin",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "soxara_sdk::bindings",
    });
}

pub use bindings::exports::soxara::gateway::rail::{
    Callback, CallbackEvent, CallbackOutcome, CollectRequest, DisputeNotice, PayoutRequest, RailInfo, RailOutcome,
    RefundRequest, SupportedMethod,
};
pub use bindings::soxara::gateway::types::{Failure, Money, PaymentMethod, TransactionStatus};

/// What a rail usually imports: `use soxara_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Callback, CallbackEvent, CallbackOutcome, CollectRequest, DisputeNotice, Failure, Money, PaymentMethod,
        PayoutRequest, Rail, RailInfo, RailOutcome, RefundRequest, SupportedMethod, TransactionStatus,
    };
    pub use crate::{cache, clock, config, http, log, money, phone, token};
}

/// A payment rail. `describe`, `collect` and `status` are required; the
/// rest answer `NOT_SUPPORTED` until a rail overrides them, which the gateway
/// reports to the merchant as a clean failure (never a charge).
///
/// Every call runs in a fresh instance: a rail keeps nothing in memory
/// between calls (use [`cache`] for what is worth reusing, such as a token).
pub trait Rail {
    /// The rail's name, version, the methods it serves (with the legal entity
    /// the money moves under) and the currencies it takes. Called once when
    /// the gateway loads the component.
    fn describe() -> RailInfo;

    /// Ask the customer to pay. Send `request.payment_id` as the provider's
    /// idempotency key: the gateway may call again for the same payment
    /// (after a crash, or from [`Rail::status`]), and the provider must never
    /// charge twice. Answer `processing` when the provider has not decided
    /// yet (a customer approving on their phone, a timeout): the gateway then
    /// calls `status` on a backoff schedule. An `Err` means nothing happened
    /// at the provider.
    fn collect(request: CollectRequest) -> Result<RailOutcome, Failure>;

    /// Where a payment left `processing` stands. `request` is the original
    /// collect request; `provider_reference` is what `collect` answered. An
    /// `Err` means the rail could not find out (the payment stays
    /// processing); a decline is `Ok` with status `failed`.
    fn status(request: CollectRequest, provider_reference: Option<String>) -> Result<RailOutcome, Failure>;

    /// Give money back for a completed payment, under `request.refund_id`
    /// as the provider's idempotency key.
    fn refund(request: RefundRequest) -> Result<RailOutcome, Failure> {
        let _ = request;
        Err(Failure::not_supported("refunds"))
    }

    /// Where a refund left `processing` stands (same rules as `status`).
    fn refund_status(request: RefundRequest, provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        let _ = (request, provider_reference);
        Err(Failure::not_supported("refunds"))
    }

    /// Send money to a recipient.
    fn payout(request: PayoutRequest) -> Result<RailOutcome, Failure> {
        let _ = request;
        Err(Failure::not_supported("payouts"))
    }

    /// Where a payout left `processing` stands (same rules as `status`).
    fn payout_status(request: PayoutRequest, provider_reference: Option<String>) -> Result<RailOutcome, Failure> {
        let _ = (request, provider_reference);
        Err(Failure::not_supported("payouts"))
    }

    /// Authenticate and read a provider's callback (received by the gateway
    /// at `POST|PUT /v1/callbacks/{plugin}`). A provider that does not sign
    /// its callbacks should be asked (as `status` does) rather than trusted.
    fn handle_callback(callback: Callback) -> Result<CallbackEvent, Failure> {
        let _ = callback;
        Err(Failure::not_supported("callbacks"))
    }
}

/// Exports a [`Rail`] as the component's `soxara:gateway/rail` interface.
/// Use it once, at the crate root of a `cdylib`. It exports only when built
/// for WebAssembly, so the same crate also builds natively for its tests.
#[macro_export]
macro_rules! export_rail {
    ($rail:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct SoxaraRailExport;

            impl $crate::bindings::exports::soxara::gateway::rail::Guest for SoxaraRailExport {
                fn describe() -> $crate::RailInfo {
                    <$rail as $crate::Rail>::describe()
                }
                fn collect(request: $crate::CollectRequest) -> Result<$crate::RailOutcome, $crate::Failure> {
                    <$rail as $crate::Rail>::collect(request)
                }
                fn status(
                    request: $crate::CollectRequest,
                    provider_reference: Option<String>,
                ) -> Result<$crate::RailOutcome, $crate::Failure> {
                    <$rail as $crate::Rail>::status(request, provider_reference)
                }
                fn refund(request: $crate::RefundRequest) -> Result<$crate::RailOutcome, $crate::Failure> {
                    <$rail as $crate::Rail>::refund(request)
                }
                fn refund_status(
                    request: $crate::RefundRequest,
                    provider_reference: Option<String>,
                ) -> Result<$crate::RailOutcome, $crate::Failure> {
                    <$rail as $crate::Rail>::refund_status(request, provider_reference)
                }
                fn payout(request: $crate::PayoutRequest) -> Result<$crate::RailOutcome, $crate::Failure> {
                    <$rail as $crate::Rail>::payout(request)
                }
                fn payout_status(
                    request: $crate::PayoutRequest,
                    provider_reference: Option<String>,
                ) -> Result<$crate::RailOutcome, $crate::Failure> {
                    <$rail as $crate::Rail>::payout_status(request, provider_reference)
                }
                fn handle_callback(callback: $crate::Callback) -> Result<$crate::CallbackEvent, $crate::Failure> {
                    <$rail as $crate::Rail>::handle_callback(callback)
                }
            }

    $crate::bindings::export!(SoxaraRailExport with_types_in $crate::bindings);
        };
        // Built natively (for unit tests) nothing is exported; naming the
        // rail's calls here keeps them from counting as dead code.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$rail as $crate::Rail>::describe;
            let _ = <$rail as $crate::Rail>::collect;
            let _ = <$rail as $crate::Rail>::status;
            let _ = <$rail as $crate::Rail>::refund;
            let _ = <$rail as $crate::Rail>::refund_status;
            let _ = <$rail as $crate::Rail>::payout;
            let _ = <$rail as $crate::Rail>::payout_status;
            let _ = <$rail as $crate::Rail>::handle_callback;
        };
    };
}
