-- Daily reconciliation: WeChat's bill of a Beijing-time day against the books. One row per
-- day, leased by the replica running it (so several replicas run it once); its differences,
-- replaced whole by each run (a difference healed by one run is matched by the next).
CREATE TABLE reconciliations (
    day              DATE PRIMARY KEY,
    status           TEXT NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'MATCHED', 'DIFFERENCES', 'FAILED')),
    attempts         INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_owner      TEXT,
    lease_until      TIMESTAMPTZ,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    error            TEXT,
    -- {"bill": {...}, "books": {...}}: counts and sums in integer fen (fees in 0.00001 yuan).
    totals           JSONB,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ
);

CREATE TABLE reconciliation_differences (
    id              BIGSERIAL PRIMARY KEY,
    day             DATE NOT NULL REFERENCES reconciliations (day),
    kind            TEXT NOT NULL CHECK (kind IN ('paid_at_wechat_not_here', 'paid_here_not_on_bill',
                        'amount_differs', 'refund_unknown_here', 'refund_differs', 'duplicate_line')),
    out_trade_no    TEXT NOT NULL,
    transaction_id  TEXT NOT NULL DEFAULT '',
    out_refund_no   TEXT NOT NULL DEFAULT '',
    detail          TEXT NOT NULL,
    healed          BOOLEAN NOT NULL
);
CREATE INDEX reconciliation_differences_by_day ON reconciliation_differences (day, id);
-- The `reconciliation_unhealed_differences` gauge.
CREATE INDEX reconciliation_differences_unhealed ON reconciliation_differences (day) WHERE NOT healed;

-- The books' side of a day.
CREATE INDEX orders_paid_at ON orders (paid_at) WHERE paid_at IS NOT NULL;
CREATE INDEX refunds_created_at ON refunds (created_at);
