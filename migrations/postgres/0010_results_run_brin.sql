-- `results_run`, a B-tree on `results (run_id)`, cost the server 0.9 s of
-- CPU per million results written: every row's entry went to a random
-- leaf (results arrive in key order, test first), and with it even
-- `psql \copy` of rows already keyed could not load 500,000 results/s
-- (bench/ingest.py). A BRIN index keeps each 32-page range's lowest and
-- highest run id instead, a few bytes per range and nearly nothing per
-- row. It finds a run's results because a run's rows are written
-- together, in one transaction per batch: a recorded run's rows lie on
-- neighbouring pages, and a lookup by run reads the ranges holding
-- them (the runs page, a run's page, `report --run-key`, prune). An
-- import's runs are written test by test across all of them (key order,
-- for the primary key): a lookup of one imported run reads the ranges of
-- its whole import, tens of milliseconds per million results.
-- `autosummarize` summarizes each range as it fills, so pages written
-- since are the only ones every lookup reads.
-- SQLite keeps its B-tree: its insert is not bound by the index.
DROP INDEX IF EXISTS results_run;
CREATE INDEX results_run ON results USING brin (run_id)
    WITH (pages_per_range = 32, autosummarize = on);
