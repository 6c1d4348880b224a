-- Refunds, and what operators did. An order's money is split three ways: refunded (WeChat
-- confirmed), being refunded (asked, not yet confirmed) and the rest; the CHECK keeps the first
-- two within what was paid, so concurrent refunds that do not fit are refused by the row lock
-- and, failing that, by the database itself.

ALTER TABLE orders
    ADD COLUMN refunded_fen  BIGINT NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0),
    ADD COLUMN refunding_fen BIGINT NOT NULL DEFAULT 0 CHECK (refunding_fen >= 0),
    ADD CONSTRAINT orders_refunds_within_amount CHECK (refunded_fen + refunding_fen <= amount_fen);

CREATE TABLE refunds (
    id              UUID PRIMARY KEY,
    order_id        UUID NOT NULL REFERENCES orders (id),
    out_refund_no   TEXT NOT NULL UNIQUE CHECK (out_refund_no ~ '^[0-9A-Za-z_|*@-]{1,64}$'),
    amount_fen      BIGINT NOT NULL CHECK (amount_fen > 0),
    reason          TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 80),
    requested_by    TEXT NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 64),
    -- REQUESTED: ours, not yet accepted by WeChat (sent again with the same number until it
    -- is); PROCESSING: accepted; then WeChat's final state, or FAILED when WeChat refused it.
    status          TEXT NOT NULL CHECK (status IN
                        ('REQUESTED', 'PROCESSING', 'SUCCESS', 'CHANGE', 'REFUNDCLOSE', 'FAILED')),
    refund_id       TEXT,
    failure         TEXT,
    idempotency_key TEXT CHECK (length(idempotency_key) BETWEEN 1 AND 64),
    request_hash    TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    settled_at      TIMESTAMPTZ,
    -- When the refund query (or, while REQUESTED, the refund itself) is due next.
    next_query_at   TIMESTAMPTZ,
    query_attempts  INT NOT NULL DEFAULT 0,
    CHECK ((idempotency_key IS NULL) = (request_hash IS NULL))
);

-- One refund per (order, Idempotency-Key).
CREATE UNIQUE INDEX refunds_idempotency ON refunds (order_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX refunds_by_order ON refunds (order_id, created_at);
-- The refund worker's work list.
CREATE INDEX refunds_due ON refunds (next_query_at) WHERE status IN ('REQUESTED', 'PROCESSING');

-- Every operator action, whatever its outcome: who, what, on which order, why, when.
CREATE TABLE admin_actions (
    id        BIGSERIAL PRIMARY KEY,
    operator  TEXT NOT NULL,
    action    TEXT NOT NULL,
    order_id  UUID,
    target    TEXT,
    reason    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX admin_actions_by_order ON admin_actions (order_id, at) WHERE order_id IS NOT NULL;

-- A refund that succeeded is announced like a payment.
ALTER TABLE outbox DROP CONSTRAINT outbox_routing_key_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_routing_key_check
    CHECK (routing_key IN ('order.paid', 'order.closed', 'order.refunded'));
