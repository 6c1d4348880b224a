-- What happened to each order that no other table keeps: prepays and their reuse, each
-- payment notification and order query with its outcome, closes. The admin API's timeline
-- merges it with the refunds, anomalies and operators' actions.
CREATE TABLE order_history (
    id        BIGSERIAL PRIMARY KEY,
    order_id  UUID NOT NULL REFERENCES orders (id),
    at        TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    kind      TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX order_history_by_order ON order_history (order_id, at);
