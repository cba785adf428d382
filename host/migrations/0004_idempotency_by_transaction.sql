-- Recording a response finds the key by its transaction: without this index
-- every payment scanned the whole table (found by the benchmark).
CREATE INDEX idempotency_keys_by_transaction ON idempotency_keys (transaction_id);
