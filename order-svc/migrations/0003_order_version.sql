-- Every order carries a version that every UPDATE raises by one (a trigger, so no statement
-- can forget it): the Redis cache keeps an entry only if it is newer than the one there, so
-- an older read or a late write never replaces a newer status.

ALTER TABLE orders ADD COLUMN version BIGINT NOT NULL DEFAULT 1 CHECK (version >= 1);

CREATE FUNCTION orders_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER orders_bump_version BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_bump_version();
