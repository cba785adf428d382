-- Webhook endpoints: at most 3 live ones per merchant and mode (checked in code).
-- Secrets are kept in the clear because the gateway must sign with them.
CREATE TABLE webhook_endpoints (
    id                          TEXT PRIMARY KEY,
    merchant_id                 TEXT NOT NULL REFERENCES merchants(id),
    mode                        TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    url                         TEXT NOT NULL,
    -- JSON array of event types, or ["*"].
    events                      TEXT NOT NULL,
    secret                      TEXT NOT NULL,
    -- During a rotation the previous secret signs too, until it expires.
    previous_secret             TEXT,
    previous_secret_expires_at  INTEGER,
    created_at                  INTEGER NOT NULL,
    deleted_at                  INTEGER
) STRICT;
CREATE INDEX webhook_endpoints_by_merchant ON webhook_endpoints (merchant_id, mode) WHERE deleted_at IS NULL;

-- Events, written in the same transaction as the change they describe (the
-- outbox). `payload` is the exact body every delivery sends.
CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    merchant_id  TEXT NOT NULL REFERENCES merchants(id),
    mode         TEXT NOT NULL,
    type         TEXT NOT NULL,
    object_id    TEXT,
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX events_by_object ON events (object_id);

-- One delivery per event and endpoint; retried until delivered or the
-- schedule runs out. `next_attempt_at` doubles as a lease while sending.
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events(id),
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints(id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    delivered_at     INTEGER,
    created_at       INTEGER NOT NULL,
    UNIQUE (event_id, endpoint_id)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    id                INTEGER PRIMARY KEY,
    delivery_id       TEXT NOT NULL REFERENCES webhook_deliveries(id),
    attempted_at      INTEGER NOT NULL,
    status_code       INTEGER,
    latency_ms        INTEGER NOT NULL,
    response_excerpt  TEXT,
    error             TEXT
) STRICT;
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id);
