-- Gift card sales: a merchant sells a gift card (an e-code, or photos of a
-- physical card) to a trader's desk and is credited its price once the
-- desk (or an operator on the review queue) verifies it.
-- `additional_info`: the e-code and PIN, kept for the desk's status checks;
-- `images`: a JSON array of {file_name, content_type, sha256, size}, the
-- bytes stored outside the database under their SHA-256; `payout`: the
-- price of the declared face value at the locked rate, in
-- `payout_currency`; `verified_value`: the face value the desk verified,
-- when it said; `reviewed_by`/`reviewed_at`: the operator who decided it on
-- the review queue.
CREATE TABLE gift_card_sales (
    id                 TEXT PRIMARY KEY,
    merchant_id        TEXT NOT NULL REFERENCES merchants(id),
    mode               TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    reference          TEXT NOT NULL UNIQUE,
    idempotency_key    TEXT NOT NULL,
    trader             TEXT NOT NULL,
    brand              TEXT NOT NULL,
    country            TEXT NOT NULL,
    form               TEXT NOT NULL CHECK (form IN ('ecode', 'physical')),
    card_currency      TEXT NOT NULL,
    face_value         INTEGER NOT NULL CHECK (face_value > 0),
    verified_value     INTEGER CHECK (verified_value >= 0 AND verified_value <= face_value),
    payout_currency    TEXT NOT NULL,
    rate_numerator     TEXT NOT NULL,
    rate_denominator   TEXT NOT NULL,
    additional_info    TEXT,
    images             TEXT NOT NULL,
    entity             TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'cancelled')),
    payout             INTEGER,
    fee                INTEGER,
    provider_reference TEXT,
    failure_code       TEXT,
    failure_message    TEXT,
    reviewed_by        TEXT,
    reviewed_at        INTEGER,
    created_at         INTEGER NOT NULL,
    completed_at       INTEGER
) STRICT;
CREATE INDEX gift_card_sales_by_merchant ON gift_card_sales (merchant_id, mode);
CREATE INDEX gift_card_sales_pending ON gift_card_sales (status) WHERE status = 'pending';

-- Status checks learn the new kind (SQLite cannot change a CHECK in place).
CREATE TABLE status_checks_new (
    operation_id   TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN
                       ('payment', 'refund', 'settlement', 'bill_payment', 'rmb_purchase', 'gift_card_sale')),
    next_check_at  INTEGER,
    checks         INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO status_checks_new (operation_id, kind, next_check_at, checks)
    SELECT operation_id, kind, next_check_at, checks FROM status_checks;
DROP TABLE status_checks;
ALTER TABLE status_checks_new RENAME TO status_checks;
CREATE INDEX status_checks_due ON status_checks (next_check_at) WHERE next_check_at IS NOT NULL;
