-- An operator may close an order in REVIEW that WeChat says was never paid.
ALTER TABLE orders DROP CONSTRAINT orders_close_reason_check;
ALTER TABLE orders ADD CONSTRAINT orders_close_reason_check
    CHECK (close_reason IN ('expired', 'cancelled', 'closed_at_wechat', 'resolved'));
