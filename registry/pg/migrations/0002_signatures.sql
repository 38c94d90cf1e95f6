-- idres schema 0002: when each record's signature must be renewed.

ALTER TABLE handles ADD COLUMN sig_expires bigint;  -- earliest exp of its HS_SIGNATURE values; NULL: unsigned
CREATE INDEX handles_by_sig_expiry ON handles (sig_expires NULLS FIRST);
