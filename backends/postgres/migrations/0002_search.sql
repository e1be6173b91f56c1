-- The search index of the current version of each resource (see the fhirgate-sql crate and
-- README.md): one table per search parameter type, replaced whenever a resource changes. Every
-- text column compares byte-wise (COLLATE "C"), as in SQLite, so instants as ISO text sort as
-- time, prefix ranges use the B-tree indexes, and both stores answer the same.

-- Current, non-deleted resources: what a search selects from.
CREATE TABLE search_current (
    resource_type TEXT COLLATE "C"    NOT NULL,
    id            TEXT COLLATE "C"    NOT NULL,
    version       BIGINT NOT NULL,
    last_updated  BIGINT NOT NULL,
    PRIMARY KEY (resource_type, id)
);

CREATE TABLE search_string (
    resource_type TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    param         TEXT COLLATE "C" NOT NULL,
    value         TEXT COLLATE "C" NOT NULL, -- normalised: lowercase, accents removed
    exact         TEXT COLLATE "C" NOT NULL  -- as written, for `:exact`
);
CREATE INDEX search_string_value ON search_string (param, value);
CREATE INDEX search_string_resource ON search_string (resource_type, id, param);

-- Tokens (kind `t`), identifiers with their type (`o`, for `:of-type`) and reference
-- identifiers (`i`, for `:identifier`).
CREATE TABLE search_token (
    resource_type TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    param         TEXT COLLATE "C" NOT NULL,
    kind          TEXT COLLATE "C" NOT NULL,
    system        TEXT COLLATE "C",
    code          TEXT COLLATE "C",
    text          TEXT COLLATE "C",
    value         TEXT COLLATE "C"
);
CREATE INDEX search_token_code ON search_token (param, code, system);
CREATE INDEX search_token_resource ON search_token (resource_type, id, param);

CREATE TABLE search_reference (
    resource_type TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    param         TEXT COLLATE "C" NOT NULL,
    reference     TEXT COLLATE "C" NOT NULL,
    target_type   TEXT COLLATE "C",
    target_id     TEXT COLLATE "C"
);
CREATE INDEX search_reference_target ON search_reference (target_id, target_type, param);
CREATE INDEX search_reference_resource ON search_reference (resource_type, id, param);

CREATE TABLE search_date (
    resource_type TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    param         TEXT COLLATE "C" NOT NULL,
    start_at      TEXT COLLATE "C" NOT NULL,
    end_at        TEXT COLLATE "C" NOT NULL
);
CREATE INDEX search_date_start ON search_date (param, start_at);
CREATE INDEX search_date_resource ON search_date (resource_type, id, param);

CREATE TABLE search_number (
    resource_type TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    param         TEXT COLLATE "C" NOT NULL,
    num           DOUBLE PRECISION NOT NULL,
    low           DOUBLE PRECISION NOT NULL,
    high          DOUBLE PRECISION NOT NULL
);
CREATE INDEX search_number_value ON search_number (param, num);
CREATE INDEX search_number_resource ON search_number (resource_type, id, param);

CREATE TABLE search_quantity (
    resource_type TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    param         TEXT COLLATE "C" NOT NULL,
    num           DOUBLE PRECISION NOT NULL,
    low           DOUBLE PRECISION NOT NULL,
    high          DOUBLE PRECISION NOT NULL,
    system        TEXT COLLATE "C",
    code          TEXT COLLATE "C",
    unit          TEXT COLLATE "C"
);
CREATE INDEX search_quantity_value ON search_quantity (param, num);
CREATE INDEX search_quantity_resource ON search_quantity (resource_type, id, param);

CREATE TABLE search_uri (
    resource_type TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    param         TEXT COLLATE "C" NOT NULL,
    value         TEXT COLLATE "C" NOT NULL
);
CREATE INDEX search_uri_value ON search_uri (param, value);
CREATE INDEX search_uri_resource ON search_uri (resource_type, id, param);

-- One row per component of one composite value; the components of a value share `grp`.
CREATE TABLE search_composite (
    resource_type TEXT COLLATE "C"    NOT NULL,
    id            TEXT COLLATE "C"    NOT NULL,
    param         TEXT COLLATE "C"    NOT NULL,
    grp           BIGINT NOT NULL,
    comp          BIGINT NOT NULL,
    kind          TEXT COLLATE "C",
    value         TEXT COLLATE "C",
    exact         TEXT COLLATE "C",
    system        TEXT COLLATE "C",
    code          TEXT COLLATE "C",
    text          TEXT COLLATE "C",
    reference     TEXT COLLATE "C",
    target_type   TEXT COLLATE "C",
    target_id     TEXT COLLATE "C",
    start_at      TEXT COLLATE "C",
    end_at        TEXT COLLATE "C",
    num           DOUBLE PRECISION,
    low           DOUBLE PRECISION,
    high          DOUBLE PRECISION,
    unit          TEXT COLLATE "C"
);
CREATE INDEX search_composite_resource ON search_composite (resource_type, id, param, grp, comp);
CREATE INDEX search_composite_code ON search_composite (param, comp, code);
