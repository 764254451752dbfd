-- What each batch used (`usage::Usage`), measured when it ended; NULL
-- where the host could not measure it, for imported suites, and for
-- batches recorded before this column existed.
--   peak_memory      bytes: the batch cgroup's peak, or the largest
--                    process's RSS when usage_partial = 1
--   cpu_ms           CPU time, user and system
--   read_bytes, written_bytes   block I/O
--   *_stall_ms       time some task was stalled on CPU, memory, I/O (PSI)
--   oom_kills        processes the OOM killer killed
--   usage_partial    1: from wait4's rusage, not a cgroup
ALTER TABLE batches ADD COLUMN peak_memory BIGINT;
ALTER TABLE batches ADD COLUMN cpu_ms BIGINT;
ALTER TABLE batches ADD COLUMN read_bytes BIGINT;
ALTER TABLE batches ADD COLUMN written_bytes BIGINT;
ALTER TABLE batches ADD COLUMN cpu_stall_ms BIGINT;
ALTER TABLE batches ADD COLUMN memory_stall_ms BIGINT;
ALTER TABLE batches ADD COLUMN io_stall_ms BIGINT;
ALTER TABLE batches ADD COLUMN oom_kills BIGINT NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN usage_partial BIGINT;
