//! Scopes: what an API key may do. A key carries a set of them (a key made
//! without a list has them all, like the seed's "full access" secret keys);
//! every endpoint names the one it needs, and a missing one is `403
//! INVALID_SCOPE`. Public keys may only use the scopes marked public.

use serde::Serialize;

/// Every scope, in the order `GET /v1/scopes` lists them.
pub const ALL: [Scope; 25] = [
    Scope::AccountRead,
    Scope::BalanceRead,
    Scope::WalletRead,
    Scope::WalletWrite,
    Scope::TransactionsRead,
    Scope::PaymentsRead,
    Scope::PaymentsWrite,
    Scope::RefundsRead,
    Scope::RefundsWrite,
    Scope::DisputesRead,
    Scope::FxRead,
    Scope::FxWrite,
    Scope::TransfersRead,
    Scope::TransfersWrite,
    Scope::ClaimsWrite,
    Scope::WebhooksRead,
    Scope::WebhooksWrite,
    Scope::BillsRead,
    Scope::BillsWrite,
    Scope::GiftCardsRead,
    Scope::GiftCardsWrite,
    Scope::RmbRead,
    Scope::RmbWrite,
    Scope::CryptoRead,
    Scope::CryptoWrite,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    AccountRead,
    BalanceRead,
    WalletRead,
    WalletWrite,
    TransactionsRead,
    PaymentsRead,
    PaymentsWrite,
    RefundsRead,
    RefundsWrite,
    DisputesRead,
    FxRead,
    FxWrite,
    TransfersRead,
    TransfersWrite,
    ClaimsWrite,
    WebhooksRead,
    WebhooksWrite,
    BillsRead,
    BillsWrite,
    GiftCardsRead,
    GiftCardsWrite,
    RmbRead,
    RmbWrite,
    CryptoRead,
    CryptoWrite,
}

impl Scope {
    pub fn name(self) -> &'static str {
        self.describe().0
    }

    /// The name and what it grants (the seed's wording for its scopes).
    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Scope::AccountRead => ("account:read", "View account profile and API key context."),
            Scope::BalanceRead => ("balance:read", "View the account's pending and reserved balances."),
            Scope::WalletRead => ("wallet:read", "View wallet balances and transaction history."),
            Scope::WalletWrite => ("wallet:write", "Top up customer wallets (test keys only)."),
            Scope::TransactionsRead => ("transactions:read", "List, retrieve, and verify transactions."),
            Scope::PaymentsRead => ("payments:read", "Retrieve payments."),
            Scope::PaymentsWrite => ("payments:write", "Create payments."),
            Scope::RefundsRead => ("refunds:read", "Retrieve refunds."),
            Scope::RefundsWrite => ("refunds:write", "Refund payments."),
            Scope::DisputesRead => ("disputes:read", "Retrieve disputes."),
            Scope::FxRead => ("fx:read", "Get FX quotes."),
            Scope::FxWrite => ("fx:write", "Execute FX swaps."),
            Scope::TransfersRead => ("transfers:read", "Retrieve transfers to phone numbers."),
            Scope::TransfersWrite => ("transfers:write", "Send money to any phone number."),
            Scope::ClaimsWrite => {
                ("claims:write", "Claim money sent to a phone number with the code its owner received.")
            }
            Scope::WebhooksRead => ("webhooks:read", "List webhook endpoints and retrieve events."),
            Scope::WebhooksWrite => {
                ("webhooks:write", "Create, delete, rotate and test webhook endpoints; redeliver events.")
            }
            Scope::BillsRead => {
                ("bills:read", "Fetch bill catalogues and verify customer identifiers (meter, smartcard, JAMB).")
            }
            Scope::BillsWrite => (
                "bills:write",
                "Submit bill payment purchases: airtime, data, electricity, cable TV, education, ePIN, and bet funding.",
            ),
            Scope::GiftCardsRead => ("gift_cards:read", "Read gift card catalogue, brands, and sell rates."),
            Scope::GiftCardsWrite => ("gift_cards:write", "Submit gift card sell orders (physical and e-code)."),
            Scope::RmbRead => ("rmb:read", "Read RMB exchange rates, available channels, and order limits."),
            Scope::RmbWrite => ("rmb:write", "Submit RMB buy orders (Alipay, WeChat Pay, Chinese bank transfer)."),
            Scope::CryptoRead => ("crypto:read", "Read supported crypto assets, networks, and exchange rates."),
            Scope::CryptoWrite => ("crypto:write", "Generate deposit addresses for crypto sell."),
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        ALL.into_iter().find(|scope| scope.name() == name)
    }

    /// Whether a public key (safe to embed in client apps) may use it: only
    /// FX quotes, which reveal nothing about the account, its customers or
    /// money held.
    pub fn allows_public_keys(self) -> bool {
        matches!(self, Scope::FxRead)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeSet(u32);

impl ScopeSet {
    pub fn all() -> ScopeSet {
        ScopeSet(ALL.iter().fold(0, |bits, scope| bits | scope.bit()))
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn names(self) -> Vec<&'static str> {
        ALL.into_iter().filter(|scope| self.contains(*scope)).map(Scope::name).collect()
    }

    /// Reads stored names (space-separated); `None` (a key made without a
    /// list) is every scope. Unknown stored names are ignored.
    pub fn from_stored(stored: Option<&str>) -> ScopeSet {
        match stored {
            None => ScopeSet::all(),
            Some(text) => ScopeSet(text.split_whitespace().filter_map(Scope::parse).fold(0, |bits, s| bits | s.bit())),
        }
    }

    /// Parses a requested list, naming the first unknown scope.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<ScopeSet, String> {
        let mut bits = 0;
        for name in names {
            let scope = Scope::parse(name).ok_or_else(|| format!("{name:?} is not a scope (see GET /v1/scopes)"))?;
            bits |= scope.bit();
        }
        Ok(ScopeSet(bits))
    }

    /// How it is stored: space-separated names.
    pub fn to_stored(self) -> String {
        self.names().join(" ")
    }
}

/// A scope as `GET /v1/scopes` lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScopeInfo {
    pub scope: &'static str,
    pub description: &'static str,
    pub public_keys: bool,
}

/// `GET /v1/scopes`: every scope, what it grants, whether public keys may use it.
pub fn list() -> Vec<ScopeInfo> {
    ALL.into_iter()
        .map(|scope| {
            let (name, grants) = scope.describe();
            ScopeInfo { scope: name, description: grants, public_keys: scope.allows_public_keys() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut names: Vec<&str> = ALL.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for scope in ALL {
            assert_eq!(Scope::parse(scope.name()), Some(scope));
        }
        let some = ScopeSet::parse(["payments:write", "fx:read"]).unwrap();
        assert_eq!(ScopeSet::from_stored(Some(&some.to_stored())), some);
        assert!(some.contains(Scope::FxRead) && !some.contains(Scope::PaymentsRead));
        assert_eq!(ScopeSet::from_stored(None), ScopeSet::all());
        assert!(ScopeSet::parse(["payments:writ"]).unwrap_err().contains("payments:writ"));
    }
}
