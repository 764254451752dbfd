-- Queue mode (src/queue): the batches of one CI run, shared by the
-- machines of that run, each claimed by one machine at a time under a
-- lease kept on the server's clock. PostgreSQL only: `warden run --queue`
-- refuses a SQLite store, so SQLite has no such tables.

-- One queue per run key (`BASE#ATTEMPT`).
CREATE TABLE queues (
    run_key      TEXT        PRIMARY KEY,
    base         TEXT        NOT NULL,
    attempt      INTEGER     NOT NULL,
    -- The batches' names and commands, hashed: every machine must agree.
    fingerprint  TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The earlier attempt this one was seeded from (its failed and
    -- unfinished batches only); NULL: the whole config.
    seeded_from  TEXT
);
CREATE INDEX queues_base ON queues (base, attempt);

-- One row per batch. state: pending, running (claimed; `lease_until` on
-- the server's clock), done.
CREATE TABLE queue_batches (
    run_key      TEXT        NOT NULL REFERENCES queues (run_key) ON DELETE CASCADE,
    name         TEXT        NOT NULL,
    -- Start order: longest first by the history's p90s.
    position     INTEGER     NOT NULL,
    state        TEXT        NOT NULL DEFAULT 'pending',
    claims       INTEGER     NOT NULL DEFAULT 0,
    -- Who holds it (or ran it): host, pid, and its run's uuid in `runs`.
    host         TEXT,
    pid          BIGINT,
    runner       TEXT,
    lease_until  TIMESTAMPTZ,
    -- The runner whose lease expired before it finished, when re-run.
    lost_host    TEXT,
    lost_pid     BIGINT,
    -- Once done: the batch's status and reason, as its runner recorded it.
    status       TEXT,
    reason       TEXT,
    duration_ms  BIGINT,
    PRIMARY KEY (run_key, name)
);
CREATE INDEX queue_batches_claim ON queue_batches (run_key, position) WHERE state <> 'done';

-- Which history runs (runs.uuid) belong to a run key: each machine's own
-- run, recorded as any run is.
CREATE TABLE queue_runs (
    run_key   TEXT        NOT NULL,
    run_uuid  TEXT        NOT NULL,
    host      TEXT        NOT NULL,
    pid       BIGINT      NOT NULL,
    joined_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_key, run_uuid)
);
