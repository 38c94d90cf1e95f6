-- idres schema 0004: changes of several kinds logged with one lock, batch results kept for retries,
-- authentication sessions, and rate-limit counters shared by every process of a node.

-- Like log_changes, with one op per handle: a transaction that wrote many records (a batch chunk, a
-- group of single writes) takes the log lock once, at its end, and holds it only through its commit.
CREATE FUNCTION log_change_ops(p_handles text[], p_ops smallint[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    s bigint;
BEGIN
    IF cardinality(p_handles) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(7310021);
    INSERT INTO changes (seq, handle, op)
        SELECT nextval('changes_seq'), h, o FROM unnest(p_handles, p_ops) WITH ORDINALITY AS t(h, o, n) ORDER BY n;
    s := currval('changes_seq');
    PERFORM pg_notify('idres_changes', s::text);
    RETURN s;
END
$$;

-- A batch sent with an Idempotency-Key: the body it was sent with, and the results of each chunk,
-- written in the chunk's own transaction, so that a retry replays exactly what was applied.
CREATE TABLE batches (
    key         text PRIMARY KEY,             -- the caller's identity and its Idempotency-Key
    body_hash   bytea NOT NULL,               -- SHA-256 of the request body
    chunk_size  integer NOT NULL,             -- items per chunk in the first run, kept for the retries
    expires_at  timestamptz NOT NULL
);
CREATE INDEX batches_by_expiry ON batches (expires_at);
CREATE TABLE batch_chunks (
    key         text NOT NULL REFERENCES batches ON DELETE CASCADE,
    chunk       integer NOT NULL,
    results     bytea NOT NULL,               -- the chunk's result lines (NDJSON)
    PRIMARY KEY (key, chunk)
);

-- Sessions of the Authorization: Handle challenge-response (handle-http-api.md 6.3-6.4), here so that
-- every worker process of a node knows them.
CREATE TABLE sessions (
    id          text PRIMARY KEY,
    nonce       bytea NOT NULL,               -- the server's challenge
    identity    text,                         -- index:handle once authenticated, NULL before
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Fixed-window counters of rate limits (writes, failed logins) by identity or address.
CREATE TABLE rate_counts (
    key         text NOT NULL,                -- 'write:id:300:88.101/ADMIN', 'fail:ip:127.0.0.1', ...
    started     bigint NOT NULL,              -- start of the window, epoch seconds
    count       integer NOT NULL,
    PRIMARY KEY (key, started)
);
