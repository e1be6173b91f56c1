-- Value indexes that cover what a search clause reads: the columns it filters on as keys, the
-- rest of the clause and the resource it selects (`resource_type`, `id`) as included columns, so
-- a clause can be an index-only scan instead of a heap fetch per entry (the SQLite profile in
-- bench/README.md: those fetches were half of a compartment search).
DROP INDEX search_string_value;
CREATE INDEX search_string_value ON search_string (param, value) INCLUDE (resource_type, id);
DROP INDEX search_token_code;
CREATE INDEX search_token_code ON search_token (param, code, system) INCLUDE (kind, resource_type, id);
DROP INDEX search_reference_target;
CREATE INDEX search_reference_target ON search_reference (target_id, target_type, param) INCLUDE (resource_type, id);
DROP INDEX search_date_start;
CREATE INDEX search_date_start ON search_date (param, start_at) INCLUDE (end_at, resource_type, id);
DROP INDEX search_number_value;
CREATE INDEX search_number_value ON search_number (param, num) INCLUDE (resource_type, id);
DROP INDEX search_quantity_value;
CREATE INDEX search_quantity_value ON search_quantity (param, num) INCLUDE (system, code, unit, resource_type, id);
DROP INDEX search_uri_value;
CREATE INDEX search_uri_value ON search_uri (param, value) INCLUDE (resource_type, id);
