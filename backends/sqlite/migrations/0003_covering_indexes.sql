-- Value indexes that cover what a search clause reads: the columns it filters on, then the
-- resource it selects (`resource_type`, `id`), so SQLite answers a clause from the index alone
-- instead of seeking the table row of every entry (the benchmark's profile: 46 % of a
-- compartment search was those seeks; with these indexes token and compartment searches ran
-- 2.7-5.7x faster, bench/README.md).
DROP INDEX search_string_value;
CREATE INDEX search_string_value ON search_string (param, value, resource_type, id);
DROP INDEX search_token_code;
CREATE INDEX search_token_code ON search_token (param, code, system, kind, resource_type, id);
DROP INDEX search_reference_target;
CREATE INDEX search_reference_target ON search_reference (target_id, target_type, param, resource_type, id);
DROP INDEX search_date_start;
CREATE INDEX search_date_start ON search_date (param, start_at, end_at, resource_type, id);
DROP INDEX search_number_value;
CREATE INDEX search_number_value ON search_number (param, num, resource_type, id);
DROP INDEX search_quantity_value;
CREATE INDEX search_quantity_value ON search_quantity (param, num, system, code, unit, resource_type, id);
DROP INDEX search_uri_value;
CREATE INDEX search_uri_value ON search_uri (param, value, resource_type, id);
