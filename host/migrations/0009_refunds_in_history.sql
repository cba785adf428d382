-- Refunds appear in a customer's transaction history. SQLite cannot change a
-- CHECK constraint in place, so the index table is rebuilt with its rows
-- (and their order, `seq`) kept.
CREATE TABLE customer_transactions_next (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    merchant_id     TEXT NOT NULL REFERENCES merchants(id),
    mode            TEXT NOT NULL,
    customer_phone  TEXT NOT NULL,
    type            TEXT NOT NULL CHECK (type IN ('payment', 'top_up', 'swap', 'refund')),
    created_at      INTEGER NOT NULL
) STRICT;
INSERT INTO customer_transactions_next (seq, id, merchant_id, mode, customer_phone, type, created_at)
    SELECT seq, id, merchant_id, mode, customer_phone, type, created_at FROM customer_transactions;
DROP TABLE customer_transactions;
ALTER TABLE customer_transactions_next RENAME TO customer_transactions;
CREATE INDEX customer_transactions_page ON customer_transactions (merchant_id, mode, customer_phone, seq);
INSERT INTO customer_transactions (id, merchant_id, mode, customer_phone, type, created_at)
    SELECT r.id, r.merchant_id, r.mode, p.customer_phone, 'refund', r.created_at
    FROM refunds r JOIN payments p ON p.id = r.payment_id
    WHERE p.customer_phone IS NOT NULL ORDER BY r.created_at, r.rowid;
