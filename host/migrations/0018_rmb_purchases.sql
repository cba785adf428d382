-- RMB purchases: a merchant pays USD or LRD for CNY paid out to a recipient
-- in China (Alipay, WeChat Pay, a Chinese bank) by a trader plugin.

-- A price for an RMB purchase, locked for 60 seconds: `amount` fen reach
-- the recipient for `cost` + `fee` minor units of `pay_currency`. Used by at
-- most one purchase (`rmb_purchases.quote_id` is unique).
CREATE TABLE rmb_quotes (
    id              TEXT PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants(id),
    mode            TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    trader          TEXT NOT NULL,
    channel         TEXT NOT NULL,
    amount          INTEGER NOT NULL CHECK (amount > 0),
    pay_currency    TEXT NOT NULL,
    cost            INTEGER NOT NULL CHECK (cost > 0),
    fee             INTEGER NOT NULL CHECK (fee >= 0),
    rate_numerator  TEXT NOT NULL,
    rate_denominator TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
) STRICT;

-- `trader`: the plugin file (stem) that carries it, asked again under the
-- same id after a crash. `total` = `cost` + `fee` is what the merchant paid.
CREATE TABLE rmb_purchases (
    id                   TEXT PRIMARY KEY,
    merchant_id          TEXT NOT NULL REFERENCES merchants(id),
    mode                 TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    reference            TEXT NOT NULL UNIQUE,
    idempotency_key      TEXT NOT NULL,
    quote_id             TEXT NOT NULL UNIQUE REFERENCES rmb_quotes(id),
    trader               TEXT NOT NULL,
    channel              TEXT NOT NULL,
    recipient_identifier TEXT NOT NULL,
    recipient_name       TEXT,
    amount               INTEGER NOT NULL CHECK (amount > 0),
    cost                 INTEGER NOT NULL CHECK (cost > 0),
    fee                  INTEGER NOT NULL CHECK (fee >= 0),
    currency             TEXT NOT NULL,
    entity               TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('processing', 'completed', 'failed', 'refunded')),
    provider_reference   TEXT,
    failure_code         TEXT,
    failure_message      TEXT,
    created_at           INTEGER NOT NULL,
    completed_at         INTEGER
) STRICT;
CREATE INDEX rmb_purchases_by_merchant ON rmb_purchases (merchant_id, mode);

-- Status checks learn the new kind (SQLite cannot change a CHECK in place).
CREATE TABLE status_checks_new (
    operation_id   TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('payment', 'refund', 'settlement', 'bill_payment', 'rmb_purchase')),
    next_check_at  INTEGER,
    checks         INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO status_checks_new (operation_id, kind, next_check_at, checks)
    SELECT operation_id, kind, next_check_at, checks FROM status_checks;
DROP TABLE status_checks;
ALTER TABLE status_checks_new RENAME TO status_checks;
CREATE INDEX status_checks_due ON status_checks (next_check_at) WHERE next_check_at IS NOT NULL;
