-- Small facts about the store itself, one row per key:
--   last_prune   Unix ms when a run last started pruning by `[run]
--                retention` (history::prune::auto): runs prune at most
--                once a day per store. 0 after a prune that stopped at its
--                time bound, so the next run continues it.
CREATE TABLE store_state (
    key    TEXT   NOT NULL PRIMARY KEY,
    value  BIGINT NOT NULL
);

-- A result's batch is removed only after the result (history::prune), so
-- this key needs no check; with one, each deleted batch had PostgreSQL
-- scan all of `results` for rows naming it (there is no index on
-- batch_id, and one would cost every result written).
ALTER TABLE results DROP CONSTRAINT IF EXISTS results_batch_id_fkey;
