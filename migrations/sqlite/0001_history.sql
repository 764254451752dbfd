-- The history schema (SQLite). migrations/postgres holds the same tables
-- with PostgreSQL's spelling of auto-increment; every query runs on both.
-- Times are Unix milliseconds, durations milliseconds.

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT    NOT NULL UNIQUE,
    started_at  BIGINT  NOT NULL,
    -- NULL until the run ends: a run that never ends was killed (incomplete).
    ended_at    BIGINT,
    status      TEXT,
    commit_sha  TEXT,
    branch      TEXT,
    host        TEXT    NOT NULL,
    -- Canonical `k=v k=v`: runs "with the same labels" compare this.
    labels      TEXT    NOT NULL,
    source      TEXT    NOT NULL
);
CREATE INDEX runs_started ON runs (started_at);

CREATE TABLE run_labels (
    run_id  BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key     TEXT   NOT NULL,
    value   TEXT   NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX run_labels_key_value ON run_labels (key, value);

CREATE TABLE batches (
    id           INTEGER PRIMARY KEY,
    run_id       BIGINT  NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    phase        TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    started_at   BIGINT  NOT NULL,
    duration_ms  BIGINT  NOT NULL,
    attempts     BIGINT  NOT NULL
);
CREATE INDEX batches_run ON batches (run_id);
CREATE INDEX batches_name ON batches (name);

-- Failed attempts that were retried (the final one is the batch itself).
CREATE TABLE attempts (
    batch_id     BIGINT NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    number       BIGINT NOT NULL,
    status       TEXT   NOT NULL,
    reason       TEXT   NOT NULL,
    duration_ms  BIGINT NOT NULL,
    PRIMARY KEY (batch_id, number)
);

CREATE TABLE tests (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE
);

-- One row per test per run. status: 1 passed, 2 failed, 3 flaky, 4 skipped.
-- Keyed by test first: every query reads one test's runs together.
CREATE TABLE results (
    test_id      BIGINT   NOT NULL REFERENCES tests (id),
    run_id       BIGINT   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    batch_id     BIGINT   REFERENCES batches (id) ON DELETE CASCADE,
    status       BIGINT   NOT NULL,
    duration_ms  BIGINT,
    message      TEXT,
    PRIMARY KEY (test_id, run_id)
) WITHOUT ROWID;
CREATE INDEX results_run ON results (run_id);
-- The few tests that ever failed: where `flaky` and `regressed` start.
CREATE INDEX results_failing ON results (test_id) WHERE status IN (2, 3);
