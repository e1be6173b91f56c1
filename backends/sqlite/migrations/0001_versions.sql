-- Every version of every resource, and the index entries of each version.

-- One row per version, in write order. `pos` is the store's write position: AUTOINCREMENT so a
-- position is never reused, which makes it usable as a history snapshot.
CREATE TABLE resource_version (
    pos           INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_type TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    version       INTEGER NOT NULL CHECK (version > 0),
    -- Milliseconds since 1970-01-01T00:00:00Z: sortable, exact, no time zone.
    last_updated  INTEGER NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('create', 'update', 'delete')),
    -- The resource's JSON text exactly as the engine gave it; NULL for a deletion.
    json          TEXT,
    UNIQUE (resource_type, id, version)
);

-- Type-level history, newest first.
CREATE INDEX resource_version_by_type ON resource_version (resource_type, pos);
-- `_since` and `_at`.
CREATE INDEX resource_version_by_time ON resource_version (last_updated, pos);

-- The search index entries of one version, in the order the engine gave them.
CREATE TABLE index_entry (
    pos   INTEGER NOT NULL REFERENCES resource_version (pos),
    seq   INTEGER NOT NULL,
    param TEXT    NOT NULL,
    -- JSON of `IndexValue`, until search gives entries typed columns.
    value TEXT    NOT NULL,
    PRIMARY KEY (pos, seq)
) WITHOUT ROWID;
