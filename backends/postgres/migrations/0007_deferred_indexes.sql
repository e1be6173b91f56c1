-- The search indexes an initial load set aside until its end (src/deferred.rs): their names and
-- the SQL that builds them again. Empty but while such a load runs, or after one a crash ended.
CREATE TABLE deferred_index (
    name TEXT PRIMARY KEY,
    sql  TEXT NOT NULL
);
