-- Orders waiting for an operator (REVIEW), counted every few seconds for the
-- `orders_in_review` gauge: a partial index keeps that count cheap on a large table.
CREATE INDEX orders_in_review ON orders (updated_at) WHERE status = 'REVIEW';
