-- Wakes the outbox relay as soon as a transaction that wrote events commits (LISTEN
-- minipay_outbox), instead of it polling: one notification per statement, delivered at
-- commit (PostgreSQL folds identical notifications of one transaction into one).
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('minipay_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_written AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
