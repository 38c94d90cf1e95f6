-- idres schema 0005: the change log's retention horizon, and the mirrors this node keeps of other nodes.

-- The highest seq pruned from the change log (0: nothing pruned). A reader whose cursor is below it
-- has missed changes and needs a fresh snapshot.
CREATE TABLE sync_horizon (
    one             boolean PRIMARY KEY DEFAULT true CHECK (one),
    pruned_through  bigint NOT NULL DEFAULT 0,
    pruned_at       timestamptz
);
INSERT INTO sync_horizon DEFAULT VALUES;

-- One row per mirrored prefix: where it comes from, how to reach it, and how far it has been applied.
CREATE TABLE mirrors (
    prefix          text PRIMARY KEY,             -- comparison key (ASCII upper case)
    spelled         text NOT NULL,                -- as the operator wrote it
    origin          text NOT NULL,                -- base URL of the node it is copied from
    username        text,                         -- index:handle the follower authenticates as
    secret          text,                         -- its secret key
    trust_root      bytea,                        -- the trust root (PEM or JWK); NULL: the node's IDRES_TRUST_ROOT
    ca_pem          bytea,                        -- certificates to verify the origin's HTTPS with; NULL: the system's
    tls_verify      boolean NOT NULL DEFAULT true,
    cursor          bigint,                       -- the origin's seq applied through; NULL until a snapshot is in
    state           text NOT NULL DEFAULT 'new',  -- new | snapshot | following
    verification    text,                         -- how its follower checks records: none | sealed | records
    records         bigint NOT NULL DEFAULT 0,    -- records held for it here
    rejected        bigint NOT NULL DEFAULT 0,    -- records refused because their signatures did not verify
    applied         bigint NOT NULL DEFAULT 0,    -- changes applied from the feed
    snapshots       integer NOT NULL DEFAULT 0,   -- snapshots completed
    origin_head     bigint,                       -- the origin's newest seq, as last seen
    caught_up_at    timestamptz,                  -- when it last held every change the origin had
    contacted_at    timestamptz,                  -- when the origin last answered
    last_error      text,
    last_error_at   timestamptz,
    added_at        timestamptz NOT NULL DEFAULT now()
);

-- The keys a snapshot has brought while it replaces records already held (the rest are then deleted).
CREATE UNLOGGED TABLE mirror_seen (
    prefix  text NOT NULL,
    handle  text NOT NULL,
    PRIMARY KEY (prefix, handle)
);
