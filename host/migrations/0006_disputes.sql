-- Disputes (chargebacks) a rail reports on completed payments. One per
-- provider dispute id and rail; opening one moves the disputed amount from
-- the merchant's pending balance to a dispute reserve (ledger entry kind
-- `dispute_reserve`, transaction id = the dispute's id).
CREATE TABLE disputes (
    id                   TEXT PRIMARY KEY,
    payment_id           TEXT NOT NULL REFERENCES payments(id),
    merchant_id          TEXT NOT NULL REFERENCES merchants(id),
    mode                 TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    rail                 TEXT NOT NULL,
    provider_dispute_id  TEXT NOT NULL,
    amount               INTEGER NOT NULL CHECK (amount > 0),
    currency             TEXT NOT NULL,
    reason               TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    created_at           INTEGER NOT NULL,
    UNIQUE (rail, provider_dispute_id)
) STRICT;
CREATE INDEX disputes_by_payment ON disputes (payment_id);
