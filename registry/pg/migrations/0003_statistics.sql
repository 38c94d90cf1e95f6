-- idres schema 0003: resolution and registration statistics, per prefix and hour.

CREATE TABLE statistics (
    prefix        text NOT NULL,                -- comparison key of the prefix (ASCII upper case)
    spelled       text NOT NULL,                -- as first counted
    hour          timestamptz NOT NULL,         -- start of the hour (UTC)
    resolutions   bigint NOT NULL DEFAULT 0,    -- answers with a record
    not_found     bigint NOT NULL DEFAULT 0,    -- answers "no such handle"
    registrations bigint NOT NULL DEFAULT 0,    -- handles created
    PRIMARY KEY (prefix, hour)
);
