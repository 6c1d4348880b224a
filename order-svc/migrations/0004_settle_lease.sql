-- The expiry sweeper claims an order by bumping its lease instead of holding a row lock
-- across WeChat's calls: another replica skips the order until the lease runs out.
ALTER TABLE orders ADD COLUMN settle_lease_until TIMESTAMPTZ;
