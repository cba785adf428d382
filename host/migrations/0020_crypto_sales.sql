-- Crypto sales: deposit addresses a trader's custody provider gave a
-- merchant (one per asset and network), and the deposits made to them,
-- credited once each at the rate of their confirmation in the merchant's
-- chosen payout currency.
CREATE TABLE crypto_addresses (
    id              TEXT PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants(id),
    mode            TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    trader          TEXT NOT NULL,
    asset           TEXT NOT NULL,
    network         TEXT NOT NULL,
    address         TEXT NOT NULL,
    payout_currency TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (merchant_id, mode, asset, network),
    -- One address may take several assets of a network (a token and the coin).
    UNIQUE (mode, trader, asset, network, address)
) STRICT;

-- `deposit_id`: the custody provider's (a transaction hash and output),
-- unique per trader: a deposit reported twice is one sale. `state`: the
-- provider's (confirming, confirmed, held for compliance, rejected);
-- `payout`/`fee`/`rate_*`: set when it is credited.
CREATE TABLE crypto_sales (
    id               TEXT PRIMARY KEY,
    merchant_id      TEXT NOT NULL REFERENCES merchants(id),
    mode             TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    reference        TEXT NOT NULL UNIQUE,
    idempotency_key  TEXT,
    address_id       TEXT NOT NULL REFERENCES crypto_addresses(id),
    trader           TEXT NOT NULL,
    deposit_id       TEXT NOT NULL,
    asset            TEXT NOT NULL,
    network          TEXT NOT NULL,
    decimals         INTEGER NOT NULL CHECK (decimals BETWEEN 0 AND 18),
    amount           INTEGER NOT NULL CHECK (amount > 0),
    confirmations    INTEGER NOT NULL CHECK (confirmations >= 0),
    state            TEXT NOT NULL CHECK (state IN ('confirming', 'confirmed', 'held', 'rejected')),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'failed')),
    payout_currency  TEXT NOT NULL,
    rate_numerator   TEXT,
    rate_denominator TEXT,
    payout           INTEGER,
    fee              INTEGER,
    test_reference   TEXT,
    entity           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    completed_at     INTEGER,
    UNIQUE (mode, trader, deposit_id)
) STRICT;
CREATE INDEX crypto_sales_by_merchant ON crypto_sales (merchant_id, mode);

-- Status checks learn the new kind (SQLite cannot change a CHECK in place).
CREATE TABLE status_checks_new (
    operation_id   TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('payment', 'refund', 'settlement', 'bill_payment', 'rmb_purchase',
                                                 'gift_card_sale', 'crypto_sale')),
    next_check_at  INTEGER,
    checks         INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO status_checks_new (operation_id, kind, next_check_at, checks)
    SELECT operation_id, kind, next_check_at, checks FROM status_checks;
DROP TABLE status_checks;
ALTER TABLE status_checks_new RENAME TO status_checks;
CREATE INDEX status_checks_due ON status_checks (next_check_at) WHERE next_check_at IS NOT NULL;
