-- idres schema 0001: prefixes homed here, one row per handle, and the change log.

CREATE TABLE prefixes (
    prefix      text PRIMARY KEY,             -- comparison key (ASCII upper case)
    spelled     text NOT NULL,                -- as the operator wrote it
    homed_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE handles (
    handle      text PRIMARY KEY,             -- comparison key (ASCII upper case)
    spelled     text NOT NULL,                -- as its creator wrote it
    prefix      text NOT NULL,                -- comparison key of the prefix part
    vals        bytea NOT NULL,               -- all values, Handle binary encoding (int4 count + values)
    public_json bytea NOT NULL,               -- JSON array of the public-read values, as served
    min_ttl     integer NOT NULL,             -- smallest relative TTL of any value (seconds)
    expires_at  bigint,                       -- earliest absolute TTL of any value (epoch seconds)
    version     bigint NOT NULL DEFAULT 1,    -- bumped on every write; optimistic concurrency
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX handles_by_prefix ON handles (prefix, handle);

-- The change log. seq values are handed out under an advisory lock held to commit, so they appear
-- in commit order: a reader that has seen seq N has seen every committed change below N.
CREATE SEQUENCE changes_seq;
CREATE TABLE changes (
    seq     bigint PRIMARY KEY,
    handle  text NOT NULL,                    -- comparison key of the handle (0.NA/<prefix> for prefixes)
    op      smallint NOT NULL,                -- 1 create, 2 delete, 3 update, 4 home, 5 unhome
    at      timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION log_change(p_handle text, p_op smallint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    s bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7310021);
    s := nextval('changes_seq');
    INSERT INTO changes (seq, handle, op) VALUES (s, p_handle, p_op);
    PERFORM pg_notify('idres_changes', s::text);
    RETURN s;
END
$$;

CREATE FUNCTION log_changes(p_handles text[], p_op smallint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    s bigint;
BEGIN
    IF cardinality(p_handles) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(7310021);
    INSERT INTO changes (seq, handle, op)
        SELECT nextval('changes_seq'), h, p_op FROM unnest(p_handles) WITH ORDINALITY AS t(h, n) ORDER BY n;
    s := currval('changes_seq');
    PERFORM pg_notify('idres_changes', s::text);
    RETURN s;
END
$$;
