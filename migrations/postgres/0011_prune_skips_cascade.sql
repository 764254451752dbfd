-- The triggers of 0007 delete a deleted run's or batch's results. Since
-- 0010 `results_run` is a BRIN index, and finding a run's results reads
-- the page ranges that hold them, which for an imported run are all of
-- its import's (dead rows included, until a vacuum): `warden prune`,
-- which deletes the results of the runs it removes first, by key
-- (history::prune), then spent most of its time in these triggers
-- finding nothing, a statement per batch chunk and per run (23 of 32 s
-- for half of a 1,000,000-result import). It says so for its own
-- transactions with `SET LOCAL warden.results_deleted = 'on'`; every
-- other delete of runs or batches still takes their results with them.
CREATE OR REPLACE FUNCTION warden_delete_results_of_runs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('warden.results_deleted', true) = 'on' THEN
        RETURN NULL;
    END IF;
    DELETE FROM results r USING gone g WHERE r.run_id = g.id;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION warden_delete_results_of_batches() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('warden.results_deleted', true) = 'on' THEN
        RETURN NULL;
    END IF;
    -- By run first: `results_run` finds them (batch_id has no index).
    DELETE FROM results r USING gone g WHERE r.run_id = g.run_id AND r.batch_id = g.id;
    RETURN NULL;
END;
$$;
