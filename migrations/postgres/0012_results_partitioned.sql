-- `results` partitioned by ranges of run ids (history::partition).
--
-- Why: a row written into an indexed table costs the server an index
-- insert per index, and an import of a million results spent 1.5 s in
-- its COPY where the same rows into a table without indexes take 0.45 s
-- and building the primary key after them 0.3 s (bench/ingest.py,
-- `psql \copy` of the same rows). Partitioned, a large import (its
-- runs' ids reserved as one range) loads its rows into a table of its
-- own, builds its primary key once, and attaches the table as the
-- partition of its range; a recorded run writes into the partition of
-- its range as before. A lookup by run reads only the partitions of its
-- runs; one by test reads each partition's primary key.
--
-- `results_parts` lists the partitions' ranges (lo inclusive, hi
-- exclusive): a run's insert looks its id up there (one index probe)
-- rather than in the catalog.
--
-- The table before this migration becomes the first partition,
-- `results_0`, of every run id up to the largest one stored; attaching
-- it reads it once.
ALTER TABLE results RENAME TO results_0;
ALTER INDEX results_pkey RENAME TO results_0_pkey;
ALTER INDEX results_run RENAME TO results_0_run;
ALTER INDEX results_failing RENAME TO results_0_failing;

CREATE TABLE results (
    test_id      BIGINT   NOT NULL,
    run_id       BIGINT   NOT NULL,
    batch_id     BIGINT,
    status       BIGINT   NOT NULL,
    duration_ms  BIGINT,
    message      TEXT,
    PRIMARY KEY (test_id, run_id)
) PARTITION BY RANGE (run_id);
CREATE INDEX results_run ON results USING brin (run_id)
    WITH (pages_per_range = 32, autosummarize = on);
CREATE INDEX results_failing ON results (test_id) WHERE status IN (2, 3);

CREATE TABLE results_parts (
    lo    BIGINT PRIMARY KEY,
    hi    BIGINT NOT NULL,
    name  TEXT   NOT NULL UNIQUE
);

DO $$
DECLARE
    upto BIGINT;
BEGIN
    SELECT GREATEST(COALESCE((SELECT max(id) FROM runs), 0),
                    COALESCE((SELECT max(run_id) FROM results_0), 0)) + 1
      INTO upto;
    EXECUTE format('ALTER TABLE results ATTACH PARTITION results_0 FOR VALUES FROM (MINVALUE) TO (%s)', upto);
    INSERT INTO results_parts (lo, hi, name) VALUES (-9223372036854775808, upto, 'results_0');
END;
$$;

-- The partition of the run id `run`, created when there is none: from
-- `run` to 10,000 ids on, or to the next partition's start. Created as a
-- table of its own and attached (which takes `results` in SHARE UPDATE
-- EXCLUSIVE mode: writers and readers go on; CREATE TABLE … PARTITION
-- OF would take it ACCESS EXCLUSIVE). Concurrent creators wait for each
-- other on an advisory lock held to their commit, and the second finds
-- the first's partition.
CREATE FUNCTION warden_results_partition(run BIGINT) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    next_lo BIGINT;
    upto    BIGINT;
    part    TEXT;
BEGIN
    IF EXISTS (SELECT 1 FROM results_parts p WHERE p.lo <= run AND run < p.hi) THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('warden.results_parts'));
    IF EXISTS (SELECT 1 FROM results_parts p WHERE p.lo <= run AND run < p.hi) THEN
        RETURN;
    END IF;
    SELECT min(p.lo) INTO next_lo FROM results_parts p WHERE p.lo > run;
    upto := LEAST(run + 10000, COALESCE(next_lo, run + 10000));
    part := 'results_' || run;
    EXECUTE format('CREATE TABLE %I (LIKE results)', part);
    EXECUTE format('ALTER TABLE results ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                   part, run, upto);
    INSERT INTO results_parts (lo, hi, name) VALUES (run, upto, part);
END;
$$;

-- Every new run has a partition for its results, however it was
-- inserted. An import that loads a partition of its own says so for its
-- transaction with `SET LOCAL warden.own_partition = 'on'`.
CREATE FUNCTION warden_run_partition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('warden.own_partition', true) = 'on' THEN
        RETURN NULL;
    END IF;
    PERFORM warden_results_partition(NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER runs_results_partition AFTER INSERT ON runs
    FOR EACH ROW EXECUTE FUNCTION warden_run_partition();
