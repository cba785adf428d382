-- Customers on Soxara, per mode: a phone that holds wallets. A transfer to
-- one is credited at once; to anyone else it waits for a claim. Phones that
-- already have a wallet account are registered.
CREATE TABLE customers (
    mode           TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    phone          TEXT NOT NULL,
    -- How they joined: a wallet (sandbox top-up, earlier records) or by
    -- claiming a transfer.
    joined_by      TEXT NOT NULL CHECK (joined_by IN ('wallet', 'transfer_claim')),
    registered_at  INTEGER NOT NULL,
    PRIMARY KEY (mode, phone)
) STRICT;
INSERT INTO customers (mode, phone, joined_by, registered_at)
    SELECT DISTINCT mode, owner, 'wallet', CAST(unixepoch('subsec') * 1000 AS INTEGER)
    FROM ledger_accounts WHERE kind = 'customer_wallet';

-- Money a merchant sends to a phone number. `pending_claim`: held in claim
-- escrow until the recipient proves the number with the code we sent it
-- (`code_hash`: SHA-256 of "transfer id:code"; the code itself is never
-- stored); `completed`: in the recipient's wallet; `returned`: back in the
-- merchant's balance (`return_reason`: the claim period ended, or the
-- messenger can never reach the number).
CREATE TABLE transfers (
    id               TEXT PRIMARY KEY,
    merchant_id      TEXT NOT NULL REFERENCES merchants(id),
    mode             TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    recipient_phone  TEXT NOT NULL,
    amount           INTEGER NOT NULL CHECK (amount > 0),
    currency         TEXT NOT NULL,
    description      TEXT,
    status           TEXT NOT NULL CHECK (status IN ('pending_claim', 'completed', 'returned')),
    return_reason    TEXT CHECK (return_reason IN ('expired', 'recipient_unreachable')),
    code_hash        TEXT,
    claim_expires_at INTEGER,
    created_at       INTEGER NOT NULL,
    completed_at     INTEGER,
    returned_at      INTEGER
) STRICT;
CREATE INDEX transfers_by_merchant ON transfers (merchant_id, mode);
CREATE INDEX transfers_pending_by_phone ON transfers (mode, recipient_phone) WHERE status = 'pending_claim';
CREATE INDEX transfers_pending_by_expiry ON transfers (claim_expires_at) WHERE status = 'pending_claim';

-- Wrong claim codes per API key and phone since the phone's newest code. A
-- key that guesses too often is refused for that phone until a new code is
-- sent; other keys (the operator's claim page) and the money are unaffected,
-- so no one can bounce someone else's transfer by guessing.
CREATE TABLE claim_attempts (
    mode      TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    phone     TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    failures  INTEGER NOT NULL CHECK (failures > 0),
    last_at   INTEGER NOT NULL,
    PRIMARY KEY (mode, phone, key_id)
) STRICT;

-- Every message sent to a customer through a messenger plugin. The text is
-- kept in test mode only (the sandbox's message list): a live message
-- carries a claim code nobody but its recipient should read.
CREATE TABLE messages (
    id                 TEXT PRIMARY KEY,
    merchant_id        TEXT NOT NULL REFERENCES merchants(id),
    mode               TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    transfer_id        TEXT NOT NULL REFERENCES transfers(id),
    recipient_phone    TEXT NOT NULL,
    template           TEXT NOT NULL,
    text               TEXT,
    messenger          TEXT NOT NULL,
    -- `delivered`: the channel reported it reached the phone.
    status             TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'delivered', 'failed')),
    provider_reference TEXT,
    failure_code       TEXT,
    failure_message    TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX messages_by_transfer ON messages (transfer_id, created_at);
CREATE INDEX messages_by_reference ON messages (messenger, provider_reference);
CREATE INDEX messages_by_recipient ON messages (merchant_id, mode, recipient_phone, created_at);

-- Transfers appear in the recipient's history (rebuilt as in 0009 to widen
-- the CHECK, keeping rows and order).
CREATE TABLE customer_transactions_next (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    merchant_id     TEXT NOT NULL REFERENCES merchants(id),
    mode            TEXT NOT NULL,
    customer_phone  TEXT NOT NULL,
    type            TEXT NOT NULL CHECK (type IN ('payment', 'top_up', 'swap', 'refund', 'transfer')),
    created_at      INTEGER NOT NULL
) STRICT;
INSERT INTO customer_transactions_next (seq, id, merchant_id, mode, customer_phone, type, created_at)
    SELECT seq, id, merchant_id, mode, customer_phone, type, created_at FROM customer_transactions;
DROP TABLE customer_transactions;
ALTER TABLE customer_transactions_next RENAME TO customer_transactions;
CREATE INDEX customer_transactions_page ON customer_transactions (merchant_id, mode, customer_phone, seq);
