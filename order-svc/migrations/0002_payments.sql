-- The payment pipeline: active queries, closing, the transactional outbox, and the record
-- of payments that contradicted their order.

ALTER TABLE orders
    ADD COLUMN next_query_at   TIMESTAMPTZ,
    ADD COLUMN query_attempts  INTEGER NOT NULL DEFAULT 0 CHECK (query_attempts >= 0),
    ADD COLUMN closed_at       TIMESTAMPTZ,
    ADD COLUMN close_reason    TEXT CHECK (close_reason IN ('expired', 'cancelled', 'closed_at_wechat')),
    ADD COLUMN review_reason   TEXT,
    ADD CONSTRAINT closed_orders_say_when CHECK (status <> 'CLOSED' OR (closed_at IS NOT NULL AND close_reason IS NOT NULL)),
    ADD CONSTRAINT review_orders_say_why CHECK (status <> 'REVIEW' OR review_reason IS NOT NULL);

-- The active-query worker's work list.
CREATE INDEX orders_query_due ON orders (next_query_at) WHERE status = 'PENDING' AND next_query_at IS NOT NULL;

-- Events written in the same transaction as the state change they announce, published
-- (with confirms) by the relay, which is safe with several replicas (FOR UPDATE SKIP LOCKED).
CREATE TABLE outbox (
    id            UUID PRIMARY KEY,
    routing_key   TEXT NOT NULL CHECK (routing_key IN ('order.paid', 'order.closed')),
    payload       BYTEA NOT NULL,
    trace_id      TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at  TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (created_at) WHERE published_at IS NULL;

-- Payments that contradicted the stored order: never silently dropped.
CREATE TABLE payment_anomalies (
    id              BIGSERIAL PRIMARY KEY,
    out_trade_no    TEXT NOT NULL,
    order_id        UUID REFERENCES orders (id),
    reason          TEXT NOT NULL,
    transaction_id  TEXT,
    amount_fen      BIGINT,
    source          TEXT NOT NULL CHECK (source IN ('notification', 'query')),
    event_id        TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
