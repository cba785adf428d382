-- One-time codes sent to a customer's phone (`domain::codes`): one claim
-- code per phone for all the transfers waiting for it (`purpose` 'claim'),
-- and one code per approval (`purpose` the approval's id). Only an HMAC of
-- the code under a key kept outside the database is stored.
CREATE TABLE one_time_codes (
    mode        TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    phone       TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    code_hmac   TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (mode, phone, purpose)
) STRICT;

-- Wrong codes sent for a phone, by anyone: too many lock the phone's codes
-- until `last_at` plus the lockout. Only the right code clears them; a new
-- code does not.
CREATE TABLE code_failures (
    mode      TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    phone     TEXT NOT NULL,
    failures  INTEGER NOT NULL CHECK (failures > 0),
    last_at   INTEGER NOT NULL,
    PRIMARY KEY (mode, phone)
) STRICT;

-- Claim codes moved to `one_time_codes` (one per phone), their failures to
-- `code_failures` (per phone, not per key). Codes sent under the old scheme
-- stop working: no gateway has run transfers with real customers yet.
DROP TABLE claim_attempts;
ALTER TABLE transfers DROP COLUMN code_hash;

-- A customer's approval of something a merchant asks of their money
-- (`operations::approvals`): a wallet payment, a swap, or standing access to
-- their wallet balances. `pending` until they send the code they were sent
-- (`approved`), or it is refused, expires, or too many wrong codes fail it.
CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants(id),
    mode            TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    phone           TEXT NOT NULL,
    purpose         TEXT NOT NULL CHECK (purpose IN ('payment', 'swap', 'wallet_access')),
    -- The payment or swap it approves; NULL for wallet access.
    transaction_id  TEXT UNIQUE,
    amount          INTEGER,
    currency        TEXT,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'refused', 'expired', 'failed')),
    expires_at      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    decided_at      INTEGER,
    -- Set when the approved operation's rail gave its first answer: until
    -- then a restart asks the rail again under the same id.
    answered_at     INTEGER
) STRICT;
CREATE INDEX approvals_pending ON approvals (status, expires_at);
CREATE INDEX approvals_by_merchant ON approvals (merchant_id, mode, phone);

-- Standing consents a customer gave a merchant to read their wallets
-- (`domain::wallet_access`); revoked ones keep their row.
CREATE TABLE wallet_access (
    merchant_id  TEXT NOT NULL REFERENCES merchants(id),
    mode         TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    phone        TEXT NOT NULL,
    approval_id  TEXT NOT NULL REFERENCES approvals(id),
    granted_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    PRIMARY KEY (merchant_id, mode, phone)
) STRICT;

-- A wallet payment waits for its customer's approval before anything moves.
ALTER TABLE payments ADD COLUMN approval_id TEXT;
ALTER TABLE payments ADD COLUMN approval_expires_at INTEGER;

-- Swaps wait for approval too: `processing` until approved (then
-- `completed`) or not (`failed`, nothing moved).
ALTER TABLE fx_swaps ADD COLUMN status TEXT NOT NULL DEFAULT 'completed'
    CHECK (status IN ('processing', 'completed', 'failed'));
ALTER TABLE fx_swaps ADD COLUMN approval_id TEXT;
ALTER TABLE fx_swaps ADD COLUMN approval_expires_at INTEGER;
ALTER TABLE fx_swaps ADD COLUMN failure_code TEXT;
ALTER TABLE fx_swaps ADD COLUMN failure_message TEXT;
ALTER TABLE fx_swaps ADD COLUMN completed_at INTEGER;
UPDATE fx_swaps SET completed_at = created_at;

-- Messages are about a transfer (its claim code) or an approval (its code).
CREATE TABLE messages_next (
    id                 TEXT PRIMARY KEY,
    merchant_id        TEXT NOT NULL REFERENCES merchants(id),
    mode               TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    transfer_id        TEXT REFERENCES transfers(id),
    approval_id        TEXT REFERENCES approvals(id),
    recipient_phone    TEXT NOT NULL,
    template           TEXT NOT NULL,
    text               TEXT,
    messenger          TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'delivered', 'failed')),
    provider_reference TEXT,
    failure_code       TEXT,
    failure_message    TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    CHECK ((transfer_id IS NULL) <> (approval_id IS NULL))
) STRICT;
INSERT INTO messages_next (id, merchant_id, mode, transfer_id, recipient_phone, template, text, messenger, status,
                           provider_reference, failure_code, failure_message, created_at, updated_at)
    SELECT id, merchant_id, mode, transfer_id, recipient_phone, template, text, messenger, status,
           provider_reference, failure_code, failure_message, created_at, updated_at FROM messages;
DROP TABLE messages;
ALTER TABLE messages_next RENAME TO messages;
CREATE INDEX messages_by_transfer ON messages (transfer_id, created_at);
CREATE INDEX messages_by_reference ON messages (messenger, provider_reference);
CREATE INDEX messages_by_recipient ON messages (merchant_id, mode, recipient_phone, created_at);
