-- Where each merchant is paid, per mode and currency: a payment method
-- bound to a rail (e.g. mtn_momo) and a destination on it (an E.164 phone).
CREATE TABLE payout_accounts (
    merchant_id  TEXT NOT NULL REFERENCES merchants(id),
    mode         TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    currency     TEXT NOT NULL,
    method       TEXT NOT NULL,
    destination  TEXT NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, mode, currency)
) STRICT;

-- One payout of a merchant's settled balance in one currency and entity.
-- `cutoff_at`: money collected up to then was included.
CREATE TABLE settlements (
    id                 TEXT PRIMARY KEY,
    merchant_id        TEXT NOT NULL REFERENCES merchants(id),
    mode               TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    entity             TEXT NOT NULL,
    currency           TEXT NOT NULL,
    amount             INTEGER NOT NULL CHECK (amount > 0),
    method             TEXT NOT NULL,
    destination        TEXT NOT NULL,
    rail               TEXT NOT NULL,
    cutoff_at          INTEGER NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('processing', 'paid', 'failed')),
    provider_reference TEXT,
    failure_code       TEXT,
    failure_message    TEXT,
    created_at         INTEGER NOT NULL,
    completed_at       INTEGER,
    next_check_at      INTEGER,
    status_checks      INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX settlements_by_merchant ON settlements (merchant_id, mode, created_at);
CREATE INDEX settlements_due_checks ON settlements (next_check_at)
    WHERE status = 'processing' AND next_check_at IS NOT NULL;
