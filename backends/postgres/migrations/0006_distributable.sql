-- A schema valid for Citus distributed tables (README.md, "Beyond one server: Citus"): every key
-- holds the distribution column `id`, and nothing on the write path is global.

-- The index entries of versions written before migration 0004 move into their rows, in the
-- order they were written, and their table (keyed by the global `pos`) goes.
UPDATE resource_version v
SET index_entries = COALESCE(
    (SELECT json_agg(json_build_object('param', e.param, 'value', e.value::json) ORDER BY e.seq)::text
     FROM index_entry e WHERE e.pos = v.pos),
    '[]')
WHERE v.index_entries IS NULL;
DROP TABLE index_entry;

-- Write positions per bucket instead of one identity sequence under one lock. A version's
-- bucket is a stable hash of its (resource_type, id) modulo 16 (src/position.rs); each bucket's
-- last position is a row of `write_bucket`, which a writer updates (so locks) until it commits:
-- within a bucket, position order is commit order. A history snapshot is the vector of the
-- buckets' positions. Versions written before keep their positions, all in bucket 0, where
-- they were commit-ordered already; bucket 0 goes on from the last of them.
ALTER TABLE resource_version ADD COLUMN bucket SMALLINT NOT NULL DEFAULT 0 CHECK (bucket >= 0 AND bucket < 16);
ALTER TABLE resource_version ALTER COLUMN bucket DROP DEFAULT;
ALTER TABLE resource_version ALTER COLUMN pos DROP IDENTITY;
ALTER TABLE resource_version DROP CONSTRAINT resource_version_pkey;
ALTER TABLE resource_version DROP CONSTRAINT resource_version_resource_type_id_version_key;
ALTER TABLE resource_version ADD CONSTRAINT resource_version_pkey PRIMARY KEY (resource_type, id, version);

CREATE TABLE write_bucket (
    bucket SMALLINT PRIMARY KEY CHECK (bucket >= 0 AND bucket < 16),
    pos    BIGINT   NOT NULL CHECK (pos >= 0)
);
INSERT INTO write_bucket (bucket, pos)
SELECT b, CASE WHEN b = 0 THEN COALESCE((SELECT MAX(pos) FROM resource_version), 0) ELSE 0 END
FROM generate_series(0, 15) AS b;

-- Type and system history, newest first: `last_updated`, then bucket and position (a total
-- order, fixed for a fixed snapshot); `_since` and `_at` use the same.
DROP INDEX resource_version_by_type;
CREATE INDEX resource_version_by_type ON resource_version (resource_type, last_updated, bucket, pos);
DROP INDEX resource_version_by_time;
CREATE INDEX resource_version_by_time ON resource_version (last_updated, bucket, pos);

-- The conditional-create guard: a row per hash of a guard's criteria, which a guarded batch
-- inserts if missing and locks (`SELECT ... FOR UPDATE`) until it commits. A row lock, unlike a
-- session's advisory lock, holds whichever node the statement comes from.
CREATE TABLE write_guard (
    key_hash BIGINT PRIMARY KEY
);
