-- Refunds of completed payments, all or part, through the rail that
-- collected them. `payments.amount_refunded` is the sum of completed
-- refunds; a payment refunded in full becomes `refunded`.
ALTER TABLE payments ADD COLUMN amount_refunded INTEGER NOT NULL DEFAULT 0;
CREATE TABLE refunds (
    id                 TEXT PRIMARY KEY,
    payment_id         TEXT NOT NULL REFERENCES payments(id),
    merchant_id        TEXT NOT NULL REFERENCES merchants(id),
    mode               TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    rail               TEXT NOT NULL,
    amount             INTEGER NOT NULL CHECK (amount > 0),
    currency           TEXT NOT NULL,
    reason             TEXT,
    status             TEXT NOT NULL CHECK (status IN ('processing', 'completed', 'failed', 'cancelled')),
    provider_reference TEXT,
    failure_code       TEXT,
    failure_message    TEXT,
    idempotency_key    TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    completed_at       INTEGER,
    next_check_at      INTEGER,
    status_checks      INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX refunds_by_payment ON refunds (payment_id);
CREATE INDEX refunds_due_checks ON refunds (next_check_at) WHERE status = 'processing' AND next_check_at IS NOT NULL;
