-- Status checks of every operation a rail left processing (payments,
-- refunds, settlement payouts) move to one table, owned by the scheduler
-- (`operations::checks`): when the next check is due (NULL: the operation
-- is final, or checks stopped for an operator to reconcile) and how many
-- were made.
CREATE TABLE status_checks (
    operation_id   TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('payment', 'refund', 'settlement')),
    next_check_at  INTEGER,
    checks         INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX status_checks_due ON status_checks (next_check_at) WHERE next_check_at IS NOT NULL;
INSERT INTO status_checks (operation_id, kind, next_check_at, checks)
    SELECT id, 'payment', next_check_at, status_checks FROM payments
    WHERE next_check_at IS NOT NULL OR status_checks > 0;
INSERT INTO status_checks (operation_id, kind, next_check_at, checks)
    SELECT id, 'refund', next_check_at, status_checks FROM refunds
    WHERE next_check_at IS NOT NULL OR status_checks > 0;
INSERT INTO status_checks (operation_id, kind, next_check_at, checks)
    SELECT id, 'settlement', next_check_at, status_checks FROM settlements
    WHERE next_check_at IS NOT NULL OR status_checks > 0;
DROP INDEX payments_due_checks;
ALTER TABLE payments DROP COLUMN next_check_at;
ALTER TABLE payments DROP COLUMN status_checks;
DROP INDEX refunds_due_checks;
ALTER TABLE refunds DROP COLUMN next_check_at;
ALTER TABLE refunds DROP COLUMN status_checks;
DROP INDEX settlements_due_checks;
ALTER TABLE settlements DROP COLUMN next_check_at;
ALTER TABLE settlements DROP COLUMN status_checks;

-- What of a payment refunds (under way or done) and disputes hold, kept on
-- the payment so that both check it in one place: never more than its amount.
ALTER TABLE payments ADD COLUMN amount_committed INTEGER NOT NULL DEFAULT 0;
UPDATE payments SET amount_committed = amount_refunded
    + (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r WHERE r.payment_id = payments.id AND r.status = 'processing')
    + (SELECT COALESCE(SUM(d.amount), 0) FROM disputes d WHERE d.payment_id = payments.id);

-- Crash recovery reads the keys whose request never stored its answer.
CREATE INDEX idempotency_keys_unanswered ON idempotency_keys (created_at) WHERE response_body IS NULL;

-- Queries bind statuses as parameters, which SQLite's planner cannot match
-- against a partial index's `WHERE status = '…'`; these index the same
-- rows without naming a status.
DROP INDEX webhook_deliveries_due;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
UPDATE webhook_deliveries SET next_attempt_at = NULL WHERE status <> 'pending';
DROP INDEX transfers_pending_by_phone;
CREATE INDEX transfers_by_recipient ON transfers (mode, recipient_phone, status);
DROP INDEX transfers_pending_by_expiry;
CREATE INDEX transfers_by_status ON transfers (status, claim_expires_at);

-- Each transfer records the entity that holds its money (until now always
-- the wallet entity), as payments do.
ALTER TABLE transfers ADD COLUMN entity TEXT NOT NULL DEFAULT 'Phoenix Hub Liberia, Inc.';
