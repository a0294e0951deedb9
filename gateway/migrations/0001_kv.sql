-- The store's key-value space: the same keys and values as the sled tree (see
-- gateway/src/store/keys.rs). Keys are compared bytewise, as in sled, so prefix ranges and
-- sequence order carry over unchanged.
CREATE TABLE raccordo_kv (
    k bytea PRIMARY KEY,
    v bytea NOT NULL
);

-- The global counter exists from the start: every write locks this row (SELECT ... FOR UPDATE),
-- which makes writers take turns across every gateway sharing the database.
INSERT INTO raccordo_kv (k, v) VALUES ('meta/seq'::bytea, '\x0000000000000000'::bytea);
