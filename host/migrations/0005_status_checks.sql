-- Payments left `processing` after the rail's first answer are asked about
-- again on a backoff schedule (`rail_updates`): when the next check is due,
-- and how many were made. NULL: no check is scheduled (final, or the first
-- answer is not recorded yet, which crash recovery handles).
ALTER TABLE payments ADD COLUMN next_check_at INTEGER;
ALTER TABLE payments ADD COLUMN status_checks INTEGER NOT NULL DEFAULT 0;
CREATE INDEX payments_due_checks ON payments (next_check_at) WHERE status = 'processing' AND next_check_at IS NOT NULL;
-- Payments already left processing before this version: check them soon.
UPDATE payments SET next_check_at = created_at
 WHERE status = 'processing'
   AND id IN (SELECT transaction_id FROM idempotency_keys WHERE response_body IS NOT NULL);
