-- Where the batch's log was written (an absolute path on the machine that
-- ran it); NULL for imported suites and for runs recorded before this
-- column existed. `warden serve` shows the log's end when the file is
-- still on its own machine.
ALTER TABLE batches ADD COLUMN log TEXT;
