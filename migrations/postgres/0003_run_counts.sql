-- What a query needs to tell a mass failure (an "infrastructure failure":
-- most of a run's tests failed, or its setup did) from the run's row
-- alone, with the share chosen at query time (`--mass-failure`):
--   tests_run     results that ran: passed, failed or flaky (not skipped)
--   tests_failed  failed results (flaky ones passed in the end: not counted)
--   setup_failed  1 if a setup step ended failed, crashed, timed out,
--                 leaked, aborted or at the deadline (not passed, flaky,
--                 not-run or interrupted: a stop asked for is no failure)
-- Written with each batch (history::db, `insert_batches!`), so a run
-- whose warden was killed counts the batches recorded before it died.
ALTER TABLE runs ADD COLUMN tests_run BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN tests_failed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN setup_failed BIGINT NOT NULL DEFAULT 0;
-- The runs recorded before: counted from their results and batches.
UPDATE runs SET
    tests_run = (SELECT COUNT(*) FROM results r
                 WHERE r.run_id = runs.id AND r.status IN (1, 2, 3)),
    tests_failed = (SELECT COUNT(*) FROM results r
                    WHERE r.run_id = runs.id AND r.status = 2),
    setup_failed = CASE WHEN EXISTS (SELECT 1 FROM batches b
                    WHERE b.run_id = runs.id AND b.phase = 'setup'
                    AND b.status NOT IN ('passed', 'flaky', 'not-run', 'interrupted'))
                   THEN 1 ELSE 0 END;
