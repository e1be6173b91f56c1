-- Every version of every resource, the current version of each resource, and the index entries
-- of each version.

-- One row per version, in commit order. `pos` is the store's write position and the history
-- snapshot: writers take it while holding a global lock they keep until commit (see
-- src/write.rs), so a committed `pos` never has an uncommitted smaller one behind it.
CREATE TABLE resource_version (
    pos           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resource_type TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    version       BIGINT NOT NULL CHECK (version > 0),
    -- Milliseconds since 1970-01-01T00:00:00Z: sortable, exact, no time zone.
    last_updated  BIGINT NOT NULL,
    kind          TEXT   NOT NULL CHECK (kind IN ('create', 'update', 'delete')),
    -- The resource's JSON text exactly as the engine gave it (`text`, not `jsonb`, so the bytes
    -- round-trip); NULL for a deletion.
    json          TEXT,
    UNIQUE (resource_type, id, version)
);

-- Type-level history, newest first.
CREATE INDEX resource_version_by_type ON resource_version (resource_type, pos);
-- `_since` and `_at`.
CREATE INDEX resource_version_by_time ON resource_version (last_updated, pos);

-- The current version of each resource: the row writers lock (`SELECT ... FOR UPDATE`) to check
-- a write's precondition. Version 0 is a placeholder a writer inserts to have a row to lock;
-- it only outlives its transaction as the resource's real version.
CREATE TABLE resource_current (
    resource_type TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    version       BIGINT NOT NULL CHECK (version >= 0),
    PRIMARY KEY (resource_type, id)
);

-- The search index entries of one version, in the order the engine gave them.
CREATE TABLE index_entry (
    pos   BIGINT  NOT NULL REFERENCES resource_version (pos),
    seq   INTEGER NOT NULL,
    param TEXT    NOT NULL,
    -- JSON of `IndexValue`, until search gives entries typed columns.
    value TEXT    NOT NULL,
    PRIMARY KEY (pos, seq)
);
