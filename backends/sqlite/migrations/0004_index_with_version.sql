-- A version's index entries as one JSON array in its own row (what `Store::index` returns),
-- instead of one `index_entry` row each: writing every entry twice (here and in the search
-- tables) was a large part of a write's B-tree work (bench/README.md). Versions written before
-- keep their `index_entry` rows (this column is NULL for them) and are read from there.
ALTER TABLE resource_version ADD COLUMN index_entries TEXT;
