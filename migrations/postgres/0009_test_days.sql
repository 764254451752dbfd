-- Daily rollups of `results` (history::rollup): per test and UTC day of
-- its runs' start (`started_at / 86400000`), the results that passed,
-- failed, flaked and were skipped, the longest duration (results not
-- skipped) and a histogram of the durations (`durations`: pairs of
-- varints, bucket step and count; a bucket holds a duration to within
-- 1/128, exactly below 128 ms), and every result not skipped as
-- `run_id * 4 + status - 1` (`results`: ascending, varint steps, about a
-- byte each). `durations --tests` reads the histograms of the whole days
-- of its window; `flaky` and `regressed` read the results of the tests
-- that failed in the window from here instead of `results`. Keyed by day
-- first: a window is one range of the key.
CREATE TABLE test_days (
    day        BIGINT NOT NULL,
    test_id    BIGINT NOT NULL,
    passed     BIGINT NOT NULL,
    failed     BIGINT NOT NULL,
    flaky      BIGINT NOT NULL,
    skipped    BIGINT NOT NULL,
    max_ms     BIGINT,
    durations  BYTEA  NOT NULL,
    results    BYTEA  NOT NULL,
    PRIMARY KEY (day, test_id)
);
-- 1 once the batch's results are in `test_days`: every writer adds the
-- results it inserted in the same transaction and marks their batches;
-- the batches stored before this migration (0) are rolled up by the
-- first warden that opens the store (history::rollup::catch_up).
ALTER TABLE batches ADD COLUMN rolled BIGINT NOT NULL DEFAULT 0;
CREATE INDEX batches_unrolled ON batches (run_id) WHERE rolled = 0;
