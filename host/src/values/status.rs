//! Where each kind of object stands, and the kinds of money movement. The
//! words are the API's and the database's (see `text_enum!`).

use super::text::text_enum;

text_enum! {
    /// A payment's status (the partner API's transaction statuses).
    pub enum PaymentStatus {
        Processing => "processing",
        Completed => "completed",
        Failed => "failed",
        Refunded => "refunded",
        Cancelled => "cancelled",
    }
}

text_enum! {
    /// A refund's status.
    pub enum RefundStatus {
        Processing => "processing",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
}

text_enum! {
    /// A settlement's status: its payout is on its way, arrived, or failed
    /// (the money is owed again).
    pub enum SettlementStatus {
        Processing => "processing",
        Paid => "paid",
        Failed => "failed",
    }
}

text_enum! {
    /// A transfer to a phone number.
    pub enum TransferStatus {
        /// Waiting in claim escrow for a recipient not yet on Soxara.
        PendingClaim => "pending_claim",
        /// In the recipient's wallet.
        Completed => "completed",
        /// Back in the merchant's balance.
        Returned => "returned",
    }
}

text_enum! {
    /// Why a transfer went back to its merchant.
    pub enum ReturnReason {
        /// The claim period ended.
        Expired => "expired",
        /// The messenger can never reach the number.
        RecipientUnreachable => "recipient_unreachable",
    }
}

text_enum! {
    /// A dispute (chargeback) on a payment.
    pub enum DisputeStatus {
        Open => "open",
        Won => "won",
        Lost => "lost",
    }
}

text_enum! {
    /// A message to a customer through a messenger plugin.
    pub enum MessageStatus {
        /// Recorded, being handed to the messenger.
        Sending => "sending",
        /// The messenger's channel took it.
        Sent => "sent",
        /// The channel reported it reached the phone.
        Delivered => "delivered",
        Failed => "failed",
    }
}

text_enum! {
    /// One webhook event's delivery to one endpoint.
    pub enum DeliveryStatus {
        /// Waiting for its next attempt.
        Pending => "pending",
        Delivered => "delivered",
        /// The retry schedule ran out (or the endpoint was deleted).
        Failed => "failed",
    }
}

text_enum! {
    /// Whether a merchant account may use the API.
    pub enum AccountStatus {
        Active => "active",
        Suspended => "suspended",
        Deactivated => "deactivated",
    }
}

text_enum! {
    /// Where a merchant's business verification (KYB) stands.
    pub enum KybStatus {
        None => "none",
        Pending => "pending",
        Approved => "approved",
        Rejected => "rejected",
    }
}

text_enum! {
    /// How a customer joined Soxara.
    pub enum JoinedBy {
        /// A wallet made another way (a sandbox top-up, earlier records).
        Wallet => "wallet",
        /// By claiming a transfer with the code they were sent.
        TransferClaim => "transfer_claim",
    }
}

text_enum! {
    /// The kinds of money movement: each has its own objects, id prefix and
    /// table.
    pub enum TransactionKind {
        Payment => "payment",
        Refund => "refund",
        TopUp => "top_up",
        Swap => "swap",
        Transfer => "transfer",
        Settlement => "settlement",
        BillPayment => "bill_payment",
        RmbPurchase => "rmb_purchase",
        GiftCardSale => "gift_card_sale",
        CryptoSale => "crypto_sale",
    }
}

impl TransactionKind {
    /// The prefix of its ids (`pay_…`).
    pub const fn id_prefix(self) -> &'static str {
        match self {
            TransactionKind::Payment => "pay",
            TransactionKind::Refund => "ref",
            TransactionKind::TopUp => "tup",
            TransactionKind::Swap => "swap",
            TransactionKind::Transfer => "trf",
            TransactionKind::Settlement => "stl",
            TransactionKind::BillPayment => "bill",
            TransactionKind::RmbPurchase => "rmb",
            TransactionKind::GiftCardSale => "gcs",
            TransactionKind::CryptoSale => "cry",
        }
    }

    /// The kind an id names, by its prefix.
    pub fn of_id(id: &str) -> Option<TransactionKind> {
        let prefix = id.split_once('_')?.0;
        TransactionKind::ALL.iter().copied().find(|kind| kind.id_prefix() == prefix)
    }

    /// A new id of this kind.
    pub fn new_id(self) -> String {
        super::ids::new_id(self.id_prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::TransactionKind;

    #[test]
    fn an_id_names_its_kind() {
        for kind in TransactionKind::ALL {
            assert_eq!(TransactionKind::of_id(&kind.new_id()), Some(*kind));
        }
        assert_eq!(TransactionKind::of_id("evt_123"), None);
        assert_eq!(TransactionKind::of_id("pay"), None);
    }
}

text_enum! {
    /// Money movements that complete in the write that makes them (sandbox
    /// top-ups, swaps) are always completed.
    pub enum InstantStatus {
        Completed => "completed",
    }
}

text_enum! {
    /// A swap: waiting for its customer's approval, then done, or failed
    /// with nothing moved.
    pub enum SwapStatus {
        Processing => "processing",
        Completed => "completed",
        Failed => "failed",
    }
}

text_enum! {
    /// A customer's approval of what a merchant asks of their money.
    pub enum ApprovalStatus {
        /// Sent; waiting for the customer's code.
        Pending => "pending",
        Approved => "approved",
        /// Refused on the customer's word.
        Refused => "refused",
        /// Not approved in time.
        Expired => "expired",
        /// Too many wrong codes.
        Failed => "failed",
    }
}

text_enum! {
    /// What an approval lets a merchant do.
    pub enum ApprovalPurpose {
        /// Take a wallet payment from the customer's wallet.
        Payment => "payment",
        /// Swap the customer's money into their other wallet.
        Swap => "swap",
        /// Read the customer's wallet balances until they withdraw it.
        WalletAccess => "wallet_access",
    }
}

text_enum! {
    /// What an object the API answers with is (its `object` field).
    pub enum ObjectType {
        Account => "account",
        Approval => "approval",
        Balance => "balance",
        BillCustomer => "bill_customer",
        BillPlan => "bill_plan",
        BillProvider => "bill_provider",
        Claim => "claim",
        CryptoAsset => "crypto_asset",
        DepositAddress => "deposit_address",
        Dispute => "dispute",
        FxQuote => "fx_quote",
        FxSwap => "fx_swap",
        GiftCardBrand => "gift_card_brand",
        KeyPair => "key_pair",
        List => "list",
        Message => "message",
        Payment => "payment",
        Refund => "refund",
        RmbChannel => "rmb_channel",
        RmbQuote => "rmb_quote",
        RmbRate => "rmb_rate",
        Settlement => "settlement",
        TopUp => "top_up",
        Transaction => "transaction",
        Transfer => "transfer",
        Wallet => "wallet",
        WalletAccess => "wallet_access",
        WebhookEndpoint => "webhook_endpoint",
    }
}

text_enum! {
    /// A bill purchase: the merchant's money is taken when it is made;
    /// `completed`: delivered; `refunded`: the provider reversed it or
    /// never delivered, and the money is back; `failed`: refused before
    /// anything was bought, money back.
    pub enum BillStatus {
        Processing => "processing",
        Completed => "completed",
        Failed => "failed",
        Refunded => "refunded",
    }
}

text_enum! {
    /// The kinds of trade, each carried by a trader plugin.
    pub enum TradeKind {
        GiftCardSale => "gift_card_sale",
        RmbPurchase => "rmb_purchase",
        CryptoSale => "crypto_sale",
    }
}

text_enum! {
    /// A gift card sale: `pending` while the desk verifies the card;
    /// `completed`: verified, and the merchant's balance credited;
    /// `cancelled`: not verified (or not accepted), nothing credited.
    pub enum GiftCardStatus {
        Pending => "pending",
        Completed => "completed",
        Cancelled => "cancelled",
    }
}

text_enum! {
    /// A crypto sale: `pending` while its deposit confirms (or is held for
    /// compliance review); `completed`: confirmed and credited; `failed`:
    /// rejected, never credited.
    pub enum CryptoStatus {
        Pending => "pending",
        Completed => "completed",
        Failed => "failed",
    }
}

text_enum! {
    /// Where a deposit stands at the custody provider.
    pub enum DepositState {
        Confirming => "confirming",
        Confirmed => "confirmed",
        Held => "held",
        Rejected => "rejected",
    }
}

text_enum! {
    /// How a gift card is handed over.
    pub enum CardForm {
        Ecode => "ecode",
        Physical => "physical",
    }
}

text_enum! {
    /// An RMB purchase: the merchant's money is taken when the order is
    /// accepted; `completed`: paid out to the recipient; `refunded`: the
    /// payout was reversed or refused, and the money is back; `failed`:
    /// refused before anything was paid, money back.
    pub enum RmbStatus {
        Processing => "processing",
        Completed => "completed",
        Failed => "failed",
        Refunded => "refunded",
    }
}

text_enum! {
    /// The kinds of bill, as the API names them (`POST /v1/bills/{type}`).
    pub enum BillType {
        Airtime => "airtime",
        Data => "data",
        Electricity => "electricity",
        Cable => "cable",
        Education => "education",
        Epin => "epin",
        Bet => "bet",
    }
}
