-- The search index of the current version of each resource (see the fhirgate-sql crate): one
-- table per search parameter type, replaced whenever a resource changes. Text compares
-- byte-wise (BINARY), so instants as ISO text sort as time and prefix ranges use the indexes.

-- Current, non-deleted resources: what a search selects from.
CREATE TABLE search_current (
    resource_type TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    last_updated  INTEGER NOT NULL,
    PRIMARY KEY (resource_type, id)
) WITHOUT ROWID;

CREATE TABLE search_string (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    param         TEXT NOT NULL,
    value         TEXT NOT NULL, -- normalised: lowercase, accents removed
    exact         TEXT NOT NULL  -- as written, for `:exact`
);
CREATE INDEX search_string_value ON search_string (param, value);
CREATE INDEX search_string_resource ON search_string (resource_type, id, param);

-- Tokens (kind `t`), identifiers with their type (`o`, for `:of-type`) and reference
-- identifiers (`i`, for `:identifier`).
CREATE TABLE search_token (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    param         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    system        TEXT,
    code          TEXT,
    text          TEXT,
    value         TEXT
);
CREATE INDEX search_token_code ON search_token (param, code, system);
CREATE INDEX search_token_resource ON search_token (resource_type, id, param);

CREATE TABLE search_reference (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    param         TEXT NOT NULL,
    reference     TEXT NOT NULL,
    target_type   TEXT,
    target_id     TEXT
);
CREATE INDEX search_reference_target ON search_reference (target_id, target_type, param);
CREATE INDEX search_reference_resource ON search_reference (resource_type, id, param);

CREATE TABLE search_date (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    param         TEXT NOT NULL,
    start_at      TEXT NOT NULL,
    end_at        TEXT NOT NULL
);
CREATE INDEX search_date_start ON search_date (param, start_at);
CREATE INDEX search_date_resource ON search_date (resource_type, id, param);

CREATE TABLE search_number (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    param         TEXT NOT NULL,
    num           REAL NOT NULL,
    low           REAL NOT NULL,
    high          REAL NOT NULL
);
CREATE INDEX search_number_value ON search_number (param, num);
CREATE INDEX search_number_resource ON search_number (resource_type, id, param);

CREATE TABLE search_quantity (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    param         TEXT NOT NULL,
    num           REAL NOT NULL,
    low           REAL NOT NULL,
    high          REAL NOT NULL,
    system        TEXT,
    code          TEXT,
    unit          TEXT
);
CREATE INDEX search_quantity_value ON search_quantity (param, num);
CREATE INDEX search_quantity_resource ON search_quantity (resource_type, id, param);

CREATE TABLE search_uri (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    param         TEXT NOT NULL,
    value         TEXT NOT NULL
);
CREATE INDEX search_uri_value ON search_uri (param, value);
CREATE INDEX search_uri_resource ON search_uri (resource_type, id, param);

-- One row per component of one composite value; the components of a value share `grp`.
CREATE TABLE search_composite (
    resource_type TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    param         TEXT    NOT NULL,
    grp           INTEGER NOT NULL,
    comp          INTEGER NOT NULL,
    kind          TEXT,
    value         TEXT,
    exact         TEXT,
    system        TEXT,
    code          TEXT,
    text          TEXT,
    reference     TEXT,
    target_type   TEXT,
    target_id     TEXT,
    start_at      TEXT,
    end_at        TEXT,
    num           REAL,
    low           REAL,
    high          REAL,
    unit          TEXT
);
CREATE INDEX search_composite_resource ON search_composite (resource_type, id, param, grp, comp);
CREATE INDEX search_composite_code ON search_composite (param, comp, code);
