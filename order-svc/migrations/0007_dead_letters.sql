-- Events order-svc could not apply, taken off its dead-letter queue and kept for operators:
-- read them, and replay one through the normal consumer path (GET/POST /admin/v1/dead-letters).
CREATE TABLE dead_letters (
    id               BIGSERIAL PRIMARY KEY,
    routing_key      TEXT NOT NULL,
    message_id       TEXT,
    body             BYTEA NOT NULL,
    -- The broker's `x-first-death-reason`: `rejected` (order-svc refused it) or
    -- `delivery_limit` (it kept failing).
    reason           TEXT NOT NULL,
    trace_id         TEXT,
    dead_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    replays          INT NOT NULL DEFAULT 0,
    last_replayed_at TIMESTAMPTZ,
    last_replayed_by TEXT
);
CREATE INDEX dead_letters_newest ON dead_letters (dead_at DESC, id DESC);
