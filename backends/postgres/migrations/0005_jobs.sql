-- The records of asynchronous jobs (`$export`): the engine's own JSON, versioned for optimistic
-- concurrency (`Store::put_job`); never searched, never in the history.
CREATE TABLE job (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    version BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX job_kind ON job (kind);
