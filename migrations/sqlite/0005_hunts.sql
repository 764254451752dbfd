-- `warden hunt`: a batch or one test run N times under each of several
-- conditions (arms). Kept apart from runs, batches and results, so the
-- flaky and regressed statistics never count a hunt's attempts.
--   test        the name as the history names tests: `batch` for a whole
--               batch, `batch/path/of/test` for one of its tests
--   dir         the hunt's logs (`<artifacts>/hunt-<time>`)
CREATE TABLE hunts (
    id            INTEGER PRIMARY KEY,
    uuid          TEXT    NOT NULL UNIQUE,
    started_at    BIGINT  NOT NULL,
    host          TEXT    NOT NULL,
    labels        TEXT    NOT NULL,
    commit_sha    TEXT,
    batch         TEXT    NOT NULL,
    test          TEXT    NOT NULL,
    runs_per_arm  BIGINT  NOT NULL,
    parallel      BIGINT  NOT NULL,
    until_fail    BIGINT  NOT NULL,
    dir           TEXT    NOT NULL
);
CREATE INDEX hunts_test ON hunts (test, started_at);

-- One row per arm, in the order they ran (number 0 is the control).
--   arm         the pressure as written: `none`, `io=10M`, `noise=cpu:2`
--   median_ms   the median duration of its attempts
--   *_stall_ms  the median time its attempts were stalled (PSI); NULL
--               where the host did not measure it
--   p_value     one-sided Fisher exact test against the control (NULL for it)
--   verdict     stable, flaky, broken, sensitive, not-sensitive, undecided, not-run
CREATE TABLE hunt_arms (
    hunt_id          BIGINT NOT NULL REFERENCES hunts (id) ON DELETE CASCADE,
    number           BIGINT NOT NULL,
    arm              TEXT   NOT NULL,
    runs             BIGINT NOT NULL,
    failures         BIGINT NOT NULL,
    median_ms        BIGINT,
    cpu_stall_ms     BIGINT,
    memory_stall_ms  BIGINT,
    io_stall_ms      BIGINT,
    p_value          DOUBLE PRECISION,
    verdict          TEXT   NOT NULL,
    sentence         TEXT   NOT NULL,
    PRIMARY KEY (hunt_id, number)
);
