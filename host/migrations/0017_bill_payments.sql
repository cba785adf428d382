-- Bill purchases (airtime, data, electricity, cable TV, education, ePIN,
-- bet funding) bought from a biller plugin with a merchant's balance.
-- `biller`: the plugin file (stem) that carries it, asked again under the
-- same id after a crash; `tokens`: a JSON array of what the customer needs
-- (an electricity token, ePINs), set when it completes.
CREATE TABLE bill_payments (
    id                 TEXT PRIMARY KEY,
    merchant_id        TEXT NOT NULL REFERENCES merchants(id),
    mode               TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    reference          TEXT NOT NULL UNIQUE,
    idempotency_key    TEXT NOT NULL,
    bill_type          TEXT NOT NULL CHECK (bill_type IN
                           ('airtime', 'data', 'electricity', 'cable', 'education', 'epin', 'bet')),
    biller             TEXT NOT NULL,
    provider           TEXT NOT NULL,
    identifier         TEXT NOT NULL,
    identifier_kind    TEXT,
    plan               TEXT,
    quantity           INTEGER NOT NULL CHECK (quantity > 0),
    phone              TEXT,
    amount             INTEGER NOT NULL CHECK (amount > 0),
    fee                INTEGER NOT NULL CHECK (fee >= 0 AND fee <= amount),
    currency           TEXT NOT NULL,
    entity             TEXT NOT NULL,
    description        TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('processing', 'completed', 'failed', 'refunded')),
    provider_reference TEXT,
    tokens             TEXT,
    failure_code       TEXT,
    failure_message    TEXT,
    created_at         INTEGER NOT NULL,
    completed_at       INTEGER
) STRICT;
CREATE INDEX bill_payments_by_merchant ON bill_payments (merchant_id, mode);

-- Status checks learn the new kind (SQLite cannot change a CHECK in place).
CREATE TABLE status_checks_new (
    operation_id   TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('payment', 'refund', 'settlement', 'bill_payment')),
    next_check_at  INTEGER,
    checks         INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO status_checks_new (operation_id, kind, next_check_at, checks)
    SELECT operation_id, kind, next_check_at, checks FROM status_checks;
DROP TABLE status_checks;
ALTER TABLE status_checks_new RENAME TO status_checks;
CREATE INDEX status_checks_due ON status_checks (next_check_at) WHERE next_check_at IS NOT NULL;
