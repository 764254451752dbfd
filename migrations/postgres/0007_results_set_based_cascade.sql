-- Results arrive a million at a time (history::copy_in: COPY into a
-- staging table, then one INSERT … SELECT). The foreign keys of `results`
-- checked every row with a query of their own, three per row: 12 of the
-- 18 s that a million results took (bench/ingest.py). Their guarantees
-- are kept otherwise:
--   - what a result refers to exists: the only writer (history::db,
--     history::copy_in) writes a result in the transaction that inserted
--     its run and batch, with its test id joined from `tests`, whose
--     unused rows only `warden prune` deletes, and only while it holds
--     `tests` against every writer (history::prune);
--   - deleting a run or a batch deletes its results, as ON DELETE CASCADE
--     did: by the statement-level triggers below, one set-based DELETE per
--     statement instead of one per row (a prune of many runs).
-- SQLite keeps its foreign keys (migrations/sqlite): its checks are
-- lookups in the same process, a small part of its insert.
ALTER TABLE results DROP CONSTRAINT IF EXISTS results_test_id_fkey;
ALTER TABLE results DROP CONSTRAINT IF EXISTS results_run_id_fkey;
ALTER TABLE results DROP CONSTRAINT IF EXISTS results_batch_id_fkey;

CREATE FUNCTION warden_delete_results_of_runs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM results r USING gone g WHERE r.run_id = g.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER runs_delete_results AFTER DELETE ON runs
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION warden_delete_results_of_runs();

CREATE FUNCTION warden_delete_results_of_batches() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- By run first: `results_run` finds them (batch_id has no index).
    DELETE FROM results r USING gone g WHERE r.run_id = g.run_id AND r.batch_id = g.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER batches_delete_results AFTER DELETE ON batches
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION warden_delete_results_of_batches();
