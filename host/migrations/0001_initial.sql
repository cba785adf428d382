-- Merchants and their API keys. Keys are stored only as SHA-256 hashes: a key
-- is 190 bits of randomness, so a fast hash is enough and lookups stay cheap.
CREATE TABLE merchants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    merchant_id  TEXT NOT NULL REFERENCES merchants(id),
    mode         TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    kind         TEXT NOT NULL CHECK (kind IN ('secret', 'public')),
    key_hash     TEXT NOT NULL UNIQUE,
    -- The first characters of the key, to tell keys apart in listings.
    key_hint     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
) STRICT;

-- Payments. Amounts are integer minor units of `currency`.
CREATE TABLE payments (
    id                  TEXT PRIMARY KEY,
    merchant_id         TEXT NOT NULL REFERENCES merchants(id),
    mode                TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    reference           TEXT NOT NULL UNIQUE,
    idempotency_key     TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('processing', 'completed', 'failed', 'refunded', 'cancelled')),
    amount              INTEGER NOT NULL CHECK (amount > 0),
    fee                 INTEGER NOT NULL CHECK (fee >= 0 AND fee <= amount),
    currency            TEXT NOT NULL,
    method              TEXT NOT NULL,
    customer_phone      TEXT,
    -- What the rail needs to collect again after a crash (a test card number
    -- or a provider token); cleared once the payment leaves `processing`.
    rail_instrument     TEXT,
    card_last4          TEXT,
    description         TEXT,
    metadata            TEXT NOT NULL,
    rail                TEXT NOT NULL,
    entity              TEXT NOT NULL,
    provider_reference  TEXT,
    failure_code        TEXT,
    failure_message     TEXT,
    created_at          INTEGER NOT NULL,
    completed_at        INTEGER
) STRICT;
CREATE INDEX payments_by_customer ON payments (merchant_id, mode, customer_phone, created_at);
CREATE INDEX payments_processing ON payments (status) WHERE status = 'processing';

-- An idempotency key is bound to its transaction for ever. The stored
-- response is replayed verbatim; NULL while the request is in flight.
CREATE TABLE idempotency_keys (
    merchant_id      TEXT NOT NULL REFERENCES merchants(id),
    mode             TEXT NOT NULL,
    key              TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    transaction_id   TEXT NOT NULL,
    response_status  INTEGER,
    response_body    TEXT,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, mode, key)
) STRICT;

-- The ledger: accounts keyed by mode, entity, owner, kind and currency.
CREATE TABLE ledger_accounts (
    id        INTEGER PRIMARY KEY,
    mode      TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    entity    TEXT NOT NULL,
    owner     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    currency  TEXT NOT NULL,
    UNIQUE (mode, entity, owner, kind, currency)
) STRICT;

-- Journal entries are append-only; each one's postings sum to zero per currency.
CREATE TABLE journal_entries (
    id              INTEGER PRIMARY KEY,
    mode            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    transaction_id  TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    -- One entry of each kind per transaction: a retry can never post twice.
    UNIQUE (transaction_id, kind)
) STRICT;

CREATE TABLE postings (
    id          INTEGER PRIMARY KEY,
    entry_id    INTEGER NOT NULL REFERENCES journal_entries(id),
    account_id  INTEGER NOT NULL REFERENCES ledger_accounts(id),
    -- Debit positive, credit negative, in minor units of the account's currency.
    amount      INTEGER NOT NULL CHECK (amount <> 0)
) STRICT;
CREATE INDEX postings_by_entry ON postings (entry_id);
CREATE INDEX postings_by_account ON postings (account_id);

CREATE TRIGGER journal_entries_append_only_update BEFORE UPDATE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;
CREATE TRIGGER journal_entries_append_only_delete BEFORE DELETE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;
CREATE TRIGGER postings_append_only_update BEFORE UPDATE ON postings
BEGIN SELECT RAISE(ABORT, 'postings are append-only'); END;
CREATE TRIGGER postings_append_only_delete BEFORE DELETE ON postings
BEGIN SELECT RAISE(ABORT, 'postings are append-only'); END;
