-- Sandbox top-ups of customer wallets (test mode only).
CREATE TABLE top_ups (
    id              TEXT PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants(id),
    mode            TEXT NOT NULL CHECK (mode = 'test'),
    customer_phone  TEXT NOT NULL,
    amount          INTEGER NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;

-- A quote locks a rate and both amounts until `expires_at`. Rates are exact
-- fractions stored as decimal text (they can exceed 64 bits).
CREATE TABLE fx_quotes (
    id                 TEXT PRIMARY KEY,
    merchant_id        TEXT NOT NULL REFERENCES merchants(id),
    mode               TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    from_currency      TEXT NOT NULL,
    to_currency        TEXT NOT NULL,
    from_amount        INTEGER NOT NULL CHECK (from_amount > 0),
    -- What the customer receives, rounded down to the target's increment.
    to_amount          INTEGER NOT NULL CHECK (to_amount > 0),
    -- The target amount at the mid-rate; the platform keeps mid − to.
    mid_to_amount      INTEGER NOT NULL CHECK (mid_to_amount >= to_amount),
    rate_numerator     TEXT NOT NULL,
    rate_denominator   TEXT NOT NULL,
    mid_numerator      TEXT NOT NULL,
    mid_denominator    TEXT NOT NULL,
    spread_bps         INTEGER NOT NULL,
    providers          TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL
) STRICT;

-- A quote executes at most once: `quote_id` is unique.
CREATE TABLE fx_swaps (
    id              TEXT PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants(id),
    mode            TEXT NOT NULL,
    quote_id        TEXT NOT NULL UNIQUE REFERENCES fx_quotes(id),
    customer_phone  TEXT NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;

-- Every transaction that involves a customer, for history pages. `seq`
-- orders them as committed (times can tie within a millisecond).
CREATE TABLE customer_transactions (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    merchant_id     TEXT NOT NULL REFERENCES merchants(id),
    mode            TEXT NOT NULL,
    customer_phone  TEXT NOT NULL,
    type            TEXT NOT NULL CHECK (type IN ('payment', 'top_up', 'swap')),
    created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX customer_transactions_page ON customer_transactions (merchant_id, mode, customer_phone, seq);
INSERT INTO customer_transactions (id, merchant_id, mode, customer_phone, type, created_at)
    SELECT id, merchant_id, mode, customer_phone, 'payment', created_at FROM payments
    WHERE customer_phone IS NOT NULL ORDER BY created_at, rowid;
