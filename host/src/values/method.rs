//! Payment methods, as the API names them.

use super::text::text_enum;

text_enum! {
    /// How a customer pays (and how a merchant is paid out).
    pub enum Method {
        Card => "card",
        MtnMomo => "mtn_momo",
        OrangeMoney => "orange_money",
        /// The customer's Soxara wallet.
        Wallet => "wallet",
    }
}
