-- The price list and the orders. CHECK constraints say what the Rust types promise.

CREATE TABLE products (
    sku        TEXT PRIMARY KEY CHECK (sku ~ '^[A-Za-z0-9_-]{1,32}$'),
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    price_fen  BIGINT NOT NULL CHECK (price_fen > 0),
    active     BOOLEAN NOT NULL DEFAULT TRUE
);

-- The seeded price list (fen).
INSERT INTO products (sku, name, price_fen) VALUES
    ('TEA-JASMINE', 'Jasmine tea, 100 g', 1999),
    ('TEA-OOLONG', 'Oolong tea, 100 g', 2999),
    ('CUP-CELADON', 'Celadon cup', 4500),
    ('SNACK-SESAME', 'Sesame snack', 650),
    ('PIN-1FEN', 'Test item, 1 fen', 1);

CREATE TABLE orders (
    id                 UUID PRIMARY KEY,
    out_trade_no       TEXT NOT NULL UNIQUE CHECK (out_trade_no ~ '^[0-9A-Za-z_|*-]{6,32}$'),
    openid             TEXT NOT NULL CHECK (length(openid) BETWEEN 1 AND 128),
    status             TEXT NOT NULL CHECK (status IN
                           ('PENDING', 'PAID', 'CLOSED', 'REFUNDING', 'PARTIALLY_REFUNDED', 'REFUNDED', 'REVIEW')),
    amount_fen         BIGINT NOT NULL CHECK (amount_fen > 0),
    items              JSONB NOT NULL CHECK (jsonb_typeof(items) = 'array' AND jsonb_array_length(items) > 0),
    created_at         TIMESTAMPTZ NOT NULL,
    expires_at         TIMESTAMPTZ NOT NULL CHECK (expires_at > created_at),
    updated_at         TIMESTAMPTZ NOT NULL,
    prepay_id          TEXT,
    prepay_expires_at  TIMESTAMPTZ,
    prepaid_at         TIMESTAMPTZ,
    paid_at            TIMESTAMPTZ,
    transaction_id     TEXT UNIQUE,
    idempotency_key    TEXT CHECK (length(idempotency_key) BETWEEN 1 AND 64),
    request_hash       TEXT,
    CHECK (status <> 'PAID' OR (paid_at IS NOT NULL AND transaction_id IS NOT NULL)),
    CHECK ((prepay_id IS NULL) = (prepay_expires_at IS NULL)),
    CHECK ((idempotency_key IS NULL) = (request_hash IS NULL))
);

-- One order per (user, Idempotency-Key).
CREATE UNIQUE INDEX orders_idempotency ON orders (openid, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- The caller's orders, newest first (keyset pagination).
CREATE INDEX orders_by_owner ON orders (openid, created_at DESC, id DESC);
-- The expiry sweeper's work list.
CREATE INDEX orders_pending_expiry ON orders (expires_at) WHERE status = 'PENDING';
