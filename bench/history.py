#!/usr/bin/env python3
"""warden history-store benchmark: ingest generated JUnit results into
SQLite and PostgreSQL with `warden import junit`, then time `warden flaky`
and `warden regressed` (and `warden failures`, when the binary has it) over
them. Writes the `## History store` section of
BENCHMARKS.md (between `<!-- history:begin -->` and `<!-- history:end -->`,
leaving the rest of the file, written by bench/run.py, alone).

    python3 bench/history.py            # 10,000 tests x 100 runs = 1,000,000 results (~10 minutes)
    python3 bench/history.py --quick    # 10,000 tests x 10 runs, fewer repetitions (smoke test)

Data: 100 JUnit XML files (one per run; 50 suites x 200 test cases each),
generated with a fixed random seed into a scratch directory: ~2% flaky
tests (some reported by the runner as `<flakyFailure>`: failed, then passed
on a rerun within the run), a few tests that regress (pass, then fail every
run from some run on), a few that always fail, some skipped; run k starts k
hours after a start time 29 days ago; durations heavy-tailed (log-normal).

Every measurement has a baseline measured in the same run, interleaved with
warden's repetitions in a seeded shuffled order (this machine is shared):
- SQLite ingest: a Python script (xml.etree iterparse + sqlite3
  executemany, one transaction) filling the same schema (warden's own
  migrations/sqlite) from the same files: what a hand-rolled poller does.
- PostgreSQL ingest: `psql` `\\copy` of the same rows as CSV into the same
  tables (migrations/postgres): the server's raw bulk-load speed.
- Queries: one full scan of the results table (`SELECT COUNT(*),
  SUM(duration_ms) FROM results`, Python sqlite3 / psql): the cost of
  touching every row once.
Wall times include process start, for warden and the baselines alike.

PostgreSQL: a throwaway server from /usr/lib/postgresql/<newest>/bin
(initdb -A trust into a fresh directory under /dev/shm, or /tmp; as
`nobody` when run as root; unix socket only), stopped with SIGQUIT to the
pid it was started as and removed at the end. Skipped (and reported so)
when there are no server binaries.

Stdlib only (Python >= 3.9). Linux only. Every process the harness starts
gets a unique `BENCH_MARK=<uuid>` in its environment; afterwards
/proc/*/environ is scanned for that exact entry, and only exact matches are
reported and SIGKILLed (see bench/run.py).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

# bench/run.py's helpers: timing, process marking, noise, machine table.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402
    REPO, Noise, Stats, cmdline, kill_marked, loadavg, log, machine_info, marked_env, order, secs,
    spread, timed_run, warden_binary, write_section,
)

BEGIN = "<!-- history:begin -->"
END = "<!-- history:end -->"

# The data set.
SEED = 20261124
SUITES = 50
TESTS_PER_SUITE = 200
FLAKY_SHARE = 0.02          # of all tests
FLAKY_RETRIED_SHARE = 0.5   # of the flaky ones: the runner retried them (<flakyFailure>)
REGRESSING = 10
BROKEN = 5                  # fail every run: neither flaky nor regressed
ALWAYS_SKIPPED = 100
SOMETIMES_SKIPPED = 50      # skipped in ~30% of runs (a skip is not a failure)

# Targets (from the issue).
INGEST_TARGET = 100_000     # results/s, SQLite
QUERY_TARGET_S = 1.0        # per query, SQLite

QUERY_SINCE = "365d"
REPS = {
    #        ingest reps, sqlite query reps, postgres query reps, runs
    "full": (3, 7, 5, 100),
    "quick": (1, 3, 3, 10),
}
PG_PORT = 5432
NOBODY = 65534
PG_SETTINGS = ["-c", "listen_addresses=", "-F"]

# A shell wrapper that starts the postmaster, reports its pid and, when its
# stdin reaches end-of-file (the harness closed it, or died), stops exactly
# that pid with SIGQUIT, reaps it and removes the server's directory. The
# same as tests/common/postgres.rs.
PG_WATCHDOG = r"""
dir=$1; shift
exec 2>>"$dir/server.log"
"$@" </dev/null >>"$dir/server.log" 2>&1 &
pid=$!
echo "$pid"
while read -r _; do :; done
kill -QUIT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$dir"
"""


# --------------------------------------------------------------------------
# the data set


@dataclass
class Test:
    classname: str
    name: str
    kind: str          # passing flaky flaky-retried regressing broken skipped sometimes-skipped
    base_time: float   # seconds
    p_fail: float = 0.0
    regress_from: int = 0

    @property
    def full(self) -> str:
        return f"{self.classname}/{self.name}"


@dataclass
class DataSet:
    dir: Path
    files: list[Path]
    tests: list[Test]
    runs: int
    start: datetime.datetime
    bytes: int
    # What was generated, per test name: how many runs it failed (<failure>),
    # flaked (<flakyFailure> only), passed.
    failed: dict[str, int] = field(default_factory=dict)
    flaked: dict[str, int] = field(default_factory=dict)
    passed: dict[str, int] = field(default_factory=dict)

    @property
    def results(self) -> int:
        return len(self.tests) * self.runs

    def names(self, *kinds: str) -> set[str]:
        return {t.full for t in self.tests if t.kind in kinds}


WORDS = ("parses", "rejects", "retries", "connects", "encodes", "decodes", "merges", "sorts",
         "expires", "renders", "migrates", "locks", "streams", "resolves", "compacts", "signs")


def make_tests(rng: random.Random) -> list[Test]:
    tests = []
    for s in range(SUITES):
        cls = f"com.example.mod{s:02d}.Suite{s:02d}Test"
        for t in range(TESTS_PER_SUITE):
            # Log-normal: median 15 ms, a long tail up to a few tens of seconds.
            base = min(120.0, rng.lognormvariate(math.log(0.015), 1.7))
            tests.append(Test(cls, f"test{t:03d}_{WORDS[(s * 7 + t) % len(WORDS)]}", "passing", base))
    n = len(tests)
    picks = rng.sample(range(n), int(n * FLAKY_SHARE) + REGRESSING + BROKEN + ALWAYS_SKIPPED
                       + SOMETIMES_SKIPPED)
    n_flaky = int(n * FLAKY_SHARE)
    n_retried = int(n_flaky * FLAKY_RETRIED_SHARE)
    i = 0
    for k in range(n_flaky):
        t = tests[picks[i]]
        t.kind = "flaky-retried" if k < n_retried else "flaky"
        t.p_fail = rng.uniform(0.10, 0.20)
        i += 1
    for _ in range(REGRESSING):
        tests[picks[i]].kind = "regressing"
        i += 1
    for _ in range(BROKEN):
        tests[picks[i]].kind = "broken"
        i += 1
    for _ in range(ALWAYS_SKIPPED):
        tests[picks[i]].kind = "skipped"
        i += 1
    for _ in range(SOMETIMES_SKIPPED):
        tests[picks[i]].kind = "sometimes-skipped"
        i += 1
    return tests


def stack(cls: str, exc: str, line: int) -> str:
    short = cls.rsplit(".", 1)[-1]
    return (f"{exc}\n\tat {cls}.check({short}.java:{line})\n"
            f"\tat {cls}.run({short}.java:{line + 17})\n"
            "\tat java.base/java.lang.Thread.run(Thread.java:1583)")


def generate(d: Path, runs: int) -> DataSet:
    """Writes runs JUnit files into d. The tests and run k's results depend
    only on the seed (not on `runs`): --quick's 10 runs are the full set's first 10."""
    rng = random.Random(SEED)
    tests = make_tests(rng)
    # Regressions start in the second half, with at least 3 failing runs at the end.
    for t in tests:
        if t.kind == "regressing":
            t.regress_from = rng.randint(runs // 2, max(runs // 2, runs - 3))
    now = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0,
                                                               tzinfo=None)
    start = now - datetime.timedelta(days=29)
    ds = DataSet(d, [], tests, runs, start, 0)
    for t in tests:
        ds.failed[t.full] = ds.flaked[t.full] = ds.passed[t.full] = 0
    suites = [tests[s * TESTS_PER_SUITE:(s + 1) * TESTS_PER_SUITE] for s in range(SUITES)]
    attr = {t.full: (quoteattr(t.classname), quoteattr(t.name)) for t in tests}
    for k in range(runs):
        r = random.Random(SEED * 1000 + k)
        run_start = start + datetime.timedelta(hours=k)
        offset = 0.0
        total = failures = skipped = 0
        total_time = 0.0
        parts = []
        for suite in suites:
            cases = []
            s_fail = s_skip = 0
            s_time = 0.0
            for t in suite:
                dt = round(t.base_time * r.lognormvariate(0.0, 0.25), 3)
                status = "passed"
                if t.kind == "skipped" or (t.kind == "sometimes-skipped" and r.random() < 0.3):
                    status = "skipped"
                    dt = 0.0
                elif t.kind == "broken":
                    status = "failed"
                elif t.kind == "regressing" and k >= t.regress_from:
                    status = "failed"
                elif t.kind in ("flaky", "flaky-retried") and r.random() < t.p_fail:
                    status = "flaked" if t.kind == "flaky-retried" else "failed"
                s_time += dt
                cn, nm = attr[t.full]
                head = f'    <testcase classname={cn} name={nm} time="{dt:.3f}"'
                line = 40 + sum(map(ord, t.name)) % 400
                if status == "passed":
                    cases.append(head + "/>")
                    ds.passed[t.full] += 1
                elif status == "skipped":
                    s_skip += 1
                    cases.append(head + '>\n      <skipped message="requires a GPU"/>\n    </testcase>')
                elif status == "failed":
                    s_fail += 1
                    ds.failed[t.full] += 1
                    if t.kind == "flaky":
                        msg = f"Timed out after 5000 ms waiting for 127.0.0.1:{r.randint(30000, 60000)}"
                        exc = "java.util.concurrent.TimeoutException"
                    elif t.kind == "regressing":
                        msg = "expected: <200> but was: <500>"
                        exc = "org.opentest4j.AssertionFailedError"
                    else:
                        msg = "Cannot invoke \"Config.get()\" because \"cfg\" is null"
                        exc = "java.lang.NullPointerException"
                    cases.append(f'{head}>\n      <failure message={quoteattr(msg)} type="{exc}">'
                                 f'{escape(stack(t.classname, f"{exc}: {msg}", line))}</failure>\n'
                                 "    </testcase>")
                else:  # flaked: failed once, passed on the runner's rerun
                    ds.flaked[t.full] += 1
                    msg = f"Connection reset by peer (attempt 1 of 2, port {r.randint(30000, 60000)})"
                    exc = "java.net.SocketException"
                    cases.append(f'{head}>\n      <flakyFailure message={quoteattr(msg)} type="{exc}">'
                                 f'<stackTrace>{escape(stack(t.classname, f"{exc}: {msg}", line))}'
                                 "</stackTrace></flakyFailure>\n    </testcase>")
            ts = (run_start + datetime.timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%S")
            offset += s_time
            total += len(suite)
            failures += s_fail
            skipped += s_skip
            total_time += s_time
            parts.append(f'  <testsuite name="{suite[0].classname}" tests="{len(suite)}" '
                         f'failures="{s_fail}" errors="0" skipped="{s_skip}" time="{s_time:.3f}" '
                         f'timestamp="{ts}" hostname="ci-runner-{k % 4}">\n'
                         + "\n".join(cases) + "\n  </testsuite>")
        text = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<testsuites name="ci" tests="{total}" failures="{failures}" errors="0" '
                f'skipped="{skipped}" time="{total_time:.3f}">\n' + "\n".join(parts) + "\n</testsuites>\n")
        path = d / f"run-{k:03d}.xml"
        path.write_text(text)
        ds.files.append(path)
        ds.bytes += len(text)
    return ds


# --------------------------------------------------------------------------
# baselines: what a hand-rolled poller would do


def parse_junit(path: Path):
    """(started_ms, duration_ms, suites) of one file; each suite is
    (name, started_ms, duration_ms, [(test name, status, duration_ms, message)]),
    statuses as in the store: 1 passed, 2 failed, 3 flaky, 4 skipped."""
    suites = []
    cur = None
    for event, el in ET.iterparse(path, events=("start", "end")):
        tag = el.tag
        if event == "start":
            if tag == "testsuite":
                ts = el.get("timestamp")
                started = None
                if ts:
                    started = int(datetime.datetime.fromisoformat(ts).replace(
                        tzinfo=datetime.timezone.utc).timestamp() * 1000)
                cur = [el.get("name") or path.stem, started, round(float(el.get("time") or 0) * 1000), []]
            continue
        if tag == "testcase":
            status, message = 1, None
            for child in el:
                ct = child.tag
                if ct in ("failure", "error"):
                    status, message = 2, child.get("message")
                    break
                if ct == "skipped":
                    status, message = 4, child.get("message")
                elif ct in ("flakyFailure", "flakyError", "rerunFailure", "rerunError") and status == 1:
                    status, message = 3, child.get("message")
            cls = el.get("classname") or cur[0]
            t = el.get("time")
            cur[3].append((f"{cls}/{el.get('name')}", status,
                           round(float(t) * 1000) if t else None, message[:512] if message else None))
            el.clear()
        elif tag == "testsuite":
            suites.append(tuple(cur))
            el.clear()
    started = min((s[1] for s in suites if s[1] is not None), default=0)
    return started, sum(s[2] for s in suites), suites


def suite_status(rows) -> str:
    return "failed" if any(r[1] == 2 for r in rows) else "passed"


def migrations(backend: str) -> list[Path]:
    """warden's schema migrations for `backend`, in the order they apply."""
    return sorted((REPO / "migrations" / backend).glob("*.sql"))


def baseline_sqlite_ingest(db: Path, files: list[Path]) -> None:
    """The timed SQLite baseline (run as its own process)."""
    con = sqlite3.connect(db, isolation_level=None)
    # The settings warden's store uses.
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA cache_size=-65536")
    for m in migrations("sqlite"):
        con.executescript(m.read_text())
    cur = con.cursor()
    cur.execute("BEGIN")
    test_ids: dict[str, int] = {}
    for path in files:
        started, duration, suites = parse_junit(path)
        failed = any(suite_status(s[3]) == "failed" for s in suites)
        cur.execute("INSERT INTO runs (uuid, started_at, ended_at, status, host, labels, source) "
                    "VALUES (?, ?, ?, ?, ?, '', 'import')",
                    (str(uuid.uuid4()), started, started + duration, "failed" if failed else "passed",
                     "bench"))
        run_id = cur.lastrowid
        for name, s_started, s_dur, rows in suites:
            cur.execute("INSERT INTO batches (run_id, name, phase, status, reason, started_at, "
                        "duration_ms, attempts) VALUES (?, ?, 'suite', ?, '', ?, ?, 1)",
                        (run_id, name, suite_status(rows), s_started or started, s_dur))
            batch_id = cur.lastrowid
            for r in rows:
                if r[0] not in test_ids:
                    cur.execute("INSERT INTO tests (name) VALUES (?)", (r[0],))
                    test_ids[r[0]] = cur.lastrowid
            cur.executemany("INSERT INTO results (test_id, run_id, batch_id, status, duration_ms, message) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            [(test_ids[r[0]], run_id, batch_id, r[1], r[2], r[3]) for r in rows])
    cur.execute("COMMIT")
    con.close()


def write_csvs(files: list[Path], out: Path) -> dict[str, Path]:
    """The rows the SQLite baseline inserts, as CSV files for `\\copy` (untimed)."""
    paths = {t: out / f"{t}.csv" for t in ("runs", "batches", "tests", "results")}
    fh = {t: open(p, "w", newline="") for t, p in paths.items()}
    w = {t: csv.writer(f) for t, f in fh.items()}
    test_ids: dict[str, int] = {}
    batch_id = 0
    try:
        for run_id, path in enumerate(files, 1):
            started, duration, suites = parse_junit(path)
            failed = any(suite_status(s[3]) == "failed" for s in suites)
            w["runs"].writerow([run_id, uuid.uuid4(), started, started + duration,
                                "failed" if failed else "passed", None, None, "bench", "", "import"])
            for name, s_started, s_dur, rows in suites:
                batch_id += 1
                w["batches"].writerow([batch_id, run_id, name, "suite", suite_status(rows), "",
                                       s_started or started, s_dur, 1])
                for r in rows:
                    if r[0] not in test_ids:
                        test_ids[r[0]] = len(test_ids) + 1
                        w["tests"].writerow([test_ids[r[0]], r[0]])
                    w["results"].writerow([test_ids[r[0]], run_id, batch_id, r[1], r[2], r[3]])
    finally:
        for f in fh.values():
            f.close()
    return paths


# --------------------------------------------------------------------------
# PostgreSQL: a throwaway server


def pg_bin_dir() -> Path | None:
    root = Path("/usr/lib/postgresql")
    versions = []
    for d in root.glob("*"):
        try:
            versions.append((tuple(int(p) for p in d.name.split(".")), d / "bin"))
        except ValueError:
            continue
    for _, b in sorted(versions, reverse=True):
        if os.access(b / "initdb", os.X_OK) and os.access(b / "postgres", os.X_OK):
            return b
    return None


def clean_env(extra: dict[str, str] | None = None) -> tuple[dict[str, str], bytes]:
    """A marked environment without PG* variables (PGHOST, PGDATA, ...)."""
    env, mark = marked_env(extra)
    for k in [k for k in env if k.startswith("PG")]:
        del env[k]
    return env, mark


class PgServer:
    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        st = os.statvfs("/dev/shm") if os.path.isdir("/dev/shm") else None
        base = "/dev/shm" if st and st.f_bavail * st.f_frsize >= (1 << 30) else "/tmp"
        self.dir = Path(tempfile.mkdtemp(prefix="warden-bench-pg-", dir=base))
        self.sock = self.dir / "sock"
        self.sock.mkdir()
        self.root = os.geteuid() == 0
        if self.root:
            for d in (self.dir, self.sock):
                os.chown(d, NOBODY, NOBODY)
        self.env, self.mark = clean_env()
        self.pid: int | None = None
        self.aux: set[int] = set()
        self.watchdog: subprocess.Popen | None = None
        self.version = sh_out([str(self.bin / "postgres"), "--version"])

    def _as_server(self, argv: list[str]) -> list[str]:
        if self.root:
            return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]
        return argv

    def start(self) -> None:
        data = self.dir / "data"
        subprocess.run(self._as_server([str(self.bin / "initdb"), "-D", str(data), "-A", "trust",
                                        "-U", "postgres", "-N", "-E", "UTF8", "--locale=C"]),
                       cwd=self.dir, env=self.env, check=True, capture_output=True)
        self.watchdog = subprocess.Popen(
            self._as_server(["sh", "-c", PG_WATCHDOG, "sh", str(self.dir), str(self.bin / "postgres"),
                             "-D", str(data), "-k", str(self.sock), "-p", str(PG_PORT), *PG_SETTINGS]),
            cwd=self.dir, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, start_new_session=True)
        line = self.watchdog.stdout.readline()
        self.pid = int(line)
        deadline = time.monotonic() + 30
        while True:
            try:
                lines = (data / "postmaster.pid").read_text().splitlines()
                if lines and lines[0].strip() == str(self.pid) and len(lines) > 7 and lines[7].strip() == "ready":
                    break
            except OSError:
                pass
            if self.watchdog.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start: {self.log()}")
            time.sleep(0.01)
        # The long-lived auxiliary processes (checkpointer, walwriter, ...).
        time.sleep(0.5)
        self.aux = self.children()

    def log(self) -> str:
        try:
            return (self.dir / "server.log").read_text()[-2000:]
        except OSError as e:
            return f"(no log: {e})"

    def stop(self) -> list[str]:
        """Closes the watchdog's stdin: it sends SIGQUIT to the postmaster pid
        it started, reaps it and removes the directory. Returns leftovers."""
        if self.watchdog:
            self.watchdog.stdin.close()
            try:
                self.watchdog.wait(30)
            except subprocess.TimeoutExpired:
                log(f"PostgreSQL (pid {self.pid}) did not stop in 30 s; SIGKILL")
                if self.pid:
                    os.kill(self.pid, signal.SIGKILL)
                self.watchdog.kill()
                self.watchdog.wait()
        left = kill_marked(self.mark)
        shutil.rmtree(self.dir, ignore_errors=True)
        return left

    def reaped_cpu(self) -> float:
        """CPU seconds of the server processes that have exited (the backends of
        closed connections, autovacuum workers): the postmaster's cutime + cstime."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def children(self) -> set[int]:
        """The postmaster's child processes, exiting ones included."""
        found = set()
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = f.read().rsplit(")", 1)[1].split()[1]
            except (OSError, IndexError):
                continue
            if ppid == str(self.pid):
                found.add(int(name))
        return found

    def settle(self, timeout: float = 30.0) -> None:
        """Waits until every child the postmaster started after start-up
        (backends, autovacuum workers) has exited and been reaped, so that
        its CPU time is in the postmaster's cutime. (A backend that has
        exited can take a moment to release its memory before it is reaped.)"""
        deadline = time.monotonic() + timeout
        while self.children() - self.aux:
            if time.monotonic() > deadline:
                log(f"PostgreSQL: children still running after {timeout:.0f} s: "
                    f"{[cmdline(p) for p in self.children() - self.aux]}")
                return
            time.sleep(0.02)

    def url(self, db: str) -> str:
        return (f"postgres://postgres@localhost:{PG_PORT}/{db}"
                f"?host={urllib.parse.quote(str(self.sock), safe='/')}")

    def client(self, name: str) -> str:
        p = self.bin / name
        return str(p) if os.access(p, os.X_OK) else name

    def psql_argv(self, db: str, *args: str) -> list[str]:
        return [self.client("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.sock),
                "-p", str(PG_PORT), "-U", "postgres", "-d", db, *args]

    def psql(self, db: str, *args: str) -> str:
        env, mark = clean_env()
        try:
            return sh_out(self.psql_argv(db, *args), env=env)
        finally:
            kill_marked(mark)

    def createdb(self, db: str) -> None:
        env, _ = clean_env()
        sh_out([self.client("createdb"), "-h", str(self.sock), "-p", str(PG_PORT), "-U", "postgres", db],
               env=env)

    def dropdb(self, db: str) -> None:
        env, _ = clean_env()
        sh_out([self.client("dropdb"), "-h", str(self.sock), "-p", str(PG_PORT), "-U", "postgres",
                "--if-exists", db], env=env)


def sh_out(argv: list[str], **kw) -> str:
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}… exited {p.returncode}: {p.stderr.strip()[-1000:]}")
    return p.stdout.strip()


# --------------------------------------------------------------------------
# the harness


@dataclass
class Ctx:
    warden: Path
    query_warden: Path
    work: Path
    quick: bool
    errors: list[str] = field(default_factory=list)
    fs: str = "?"
    queries: tuple[str, ...] = ("flaky", "regressed")  # + "failures" when the binary has it

    def error(self, msg: str) -> None:
        log("ERROR: " + msg)
        self.errors.append(msg)


def run_marked(ctx: Ctx, what: str, argv: list[str], out: Path | None = None, expect_rc: int = 0):
    """timed_run with a marked environment; stdout+stderr to `out`; leftover
    processes and unexpected exit codes are errors. Returns the RunResult or None."""
    env, mark = clean_env()
    out = out or ctx.work / "last.out"
    with open(out, "wb") as so:
        r = timed_run(argv, env=env, cwd=ctx.work, stdout=so, stderr=subprocess.STDOUT)
    left = kill_marked(mark)
    if left:
        ctx.error(f"{what}: processes left behind: {left}")
    if r.rc != expect_rc:
        tail = out.read_text(errors="replace")[-800:]
        ctx.error(f"{what}: exited {r.rc}: {tail.strip()}")
        return None
    return r


def sqlite_count(db: Path) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    finally:
        con.close()


def remove_sqlite(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(db) + suffix).unlink(missing_ok=True)


SCAN = "SELECT COUNT(*), SUM(duration_ms) FROM results"


def bench_sqlite_ingest(ctx: Ctx, ds: DataSet, reps: int) -> dict:
    files = [str(f) for f in ds.files]
    kinds = ["baseline", "warden", "warden per file"]
    samples = {k: [] for k in kinds}
    cpu = {k: [] for k in kinds}
    written = {k: [] for k in kinds}
    # Per-file mode: each invocation's wall time, by position (store holding i runs).
    per_file: list[list[float]] = [[] for _ in files]
    dbs = {k: ctx.work / f"sqlite-{i}.db" for i, k in enumerate(kinds)}
    py = sys.executable

    def one(kind: str):
        db = dbs[kind]
        remove_sqlite(db)
        if kind == "baseline":
            r = run_marked(ctx, "sqlite baseline ingest",
                           [py, str(Path(__file__).resolve()), "--internal-baseline-sqlite", str(db),
                            *files])
        elif kind == "warden":
            r = run_marked(ctx, "warden import (sqlite)",
                           [str(ctx.warden), "import", "junit", "--run-per-file", "--history", f"sqlite:{db}", *files])
        else:
            # One process per file, as a CI job importing its own report would.
            t0 = time.perf_counter()
            cpus, wrote = 0.0, 0
            r = None
            for i, f in enumerate(files):
                r = run_marked(ctx, "warden import per file (sqlite)",
                               [str(ctx.warden), "import", "junit", "--history", f"sqlite:{db}", f])
                if r is None:
                    break
                per_file[i].append(r.wall)
                cpus += r.cpu
                wrote += r.written
            if r is not None:
                r.wall, r.cpu, r.written = time.perf_counter() - t0, cpus, wrote
        if r is not None:
            n = sqlite_count(db)
            if n != ds.results:
                ctx.error(f"sqlite {kind}: {n} results stored, expected {ds.results}")
        return r

    noise = Noise()
    for rep in range(reps):
        for kind in order(kinds, rep):
            r = one(kind)
            if r is not None:
                samples[kind].append(r.wall)
                cpu[kind].append(r.cpu)
                written[kind].append(r.written)
            log(f"sqlite ingest rep {rep + 1}/{reps} {kind}: "
                + ("failed" if r is None else f"{r.wall:.2f}s wall, {r.cpu:.2f}s cpu, "
                   f"{r.written / 2**20:.0f} MiB written, {ds.results / r.wall:,.0f} results/s"))
    sizes = {k: os.path.getsize(db) if db.exists() else 0 for k, db in dbs.items()}
    return {"samples": samples, "cpu": cpu, "written": written, "per_file": per_file, "noise": noise.stop(),
            "db": dbs["warden"], "baseline_db": dbs["baseline"], "sizes": sizes}


def bench_pg_ingest(ctx: Ctx, ds: DataSet, pg: PgServer, reps: int) -> dict:
    csvs = write_csvs(ds.files, ctx.work)
    copy_sql = ctx.work / "copy.sql"
    # In CSV an unquoted empty field is NULL; these columns hold '' instead.
    not_null = {"runs": ", FORCE_NOT_NULL (labels)", "batches": ", FORCE_NOT_NULL (reason)"}
    # Named columns: later migrations add columns (batches.log) the CSV leaves out.
    columns = {
        "tests": "id, name",
        "runs": "id, uuid, started_at, ended_at, status, commit_sha, branch, host, labels, source",
        "batches": "id, run_id, name, phase, status, reason, started_at, duration_ms, attempts",
        "results": "test_id, run_id, batch_id, status, duration_ms, message",
    }
    copy_sql.write_text("".join(
        f"\\copy {t} ({columns[t]}) FROM {quote_sql(str(csvs[t]))} WITH (FORMAT csv{not_null.get(t, '')})\n"
        for t in ("tests", "runs", "batches", "results")))
    files = [str(f) for f in ds.files]
    kinds = ["baseline", "warden"]
    samples = {k: [] for k in kinds}
    cpu = {k: [] for k in kinds}
    server_cpu = {k: [] for k in kinds}
    last = {}

    def one(kind: str, rep: int):
        db = f"bench_{'copy' if kind == 'baseline' else 'warden'}_{rep}"
        pg.createdb(db)
        if kind == "baseline":
            for m in migrations("postgres"):
                pg.psql(db, "-f", str(m))
        pg.settle()
        cpu0 = pg.reaped_cpu()
        if kind == "baseline":
            r = run_marked(ctx, "postgres baseline \\copy",
                           pg.psql_argv(db, "--single-transaction", "-f", str(copy_sql)))
        else:
            r = run_marked(ctx, "warden import (postgres)",
                           [str(ctx.warden), "import", "junit", "--run-per-file", "--history", pg.url(db), *files])
        pg.settle()
        if r is not None:
            r.server_cpu = pg.reaped_cpu() - cpu0
            n = int(pg.psql(db, "-At", "-c", "SELECT COUNT(*) FROM results"))
            if n != ds.results:
                ctx.error(f"postgres {kind}: {n} results stored, expected {ds.results}")
        if kind in last:
            pg.dropdb(last[kind])
        last[kind] = db
        return r

    noise = Noise()
    for rep in range(reps):
        for kind in order(kinds, rep):
            r = one(kind, rep)
            if r is not None:
                samples[kind].append(r.wall)
                cpu[kind].append(r.cpu)
                server_cpu[kind].append(r.server_cpu)
            log(f"postgres ingest rep {rep + 1}/{reps} {kind}: "
                + ("failed" if r is None else f"{r.wall:.2f}s wall, {r.cpu:.2f}s cpu (client), "
                   f"{r.server_cpu:.2f}s cpu (server), {ds.results / r.wall:,.0f} results/s"))
    for f in csvs.values():
        f.unlink(missing_ok=True)
    return {"samples": samples, "cpu": cpu, "server_cpu": server_cpu, "noise": noise.stop(),
            "db": last.get("warden"),
            "baseline_db": last.get("baseline")}


def quote_sql(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


QUERIES = ("flaky", "regressed")  # timed, and their output checked


def timed_queries(query_warden: Path) -> tuple[str, ...]:
    """QUERIES, and `failures` when this binary has that subcommand (issue 15)."""
    has = subprocess.run([str(query_warden), "failures", "--help"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL).returncode == 0
    return QUERIES + (("failures",) if has else ())


def query_argv(ctx: Ctx, query: str, location: str, *extra: str) -> list[str]:
    return [str(ctx.query_warden), query, "--since", QUERY_SINCE, "--history", location, *extra]


def bench_queries(ctx: Ctx, store: str, location: str, baseline_argv: list[str], reps: int) -> dict:
    kinds = ["baseline", *ctx.queries]
    samples = {k: [] for k in kinds}
    cpu = {k: [] for k in kinds}
    outs = {k: ctx.work / f"{store}-{k}.out" for k in kinds}

    def one(kind: str):
        argv = baseline_argv if kind == "baseline" else query_argv(ctx, kind, location)
        return run_marked(ctx, f"{store} {kind}", argv, out=outs[kind])

    for kind in kinds:  # untimed warm-up (page cache)
        one(kind)
    noise = Noise()
    for rep in range(reps):
        for kind in order(kinds, rep):
            r = one(kind)
            if r is not None:
                samples[kind].append(r.wall)
                cpu[kind].append(r.cpu)
            log(f"{store} query rep {rep + 1}/{reps} {kind}: "
                + ("failed" if r is None else f"{r.wall:.3f}s wall, {r.cpu:.3f}s cpu"))
    first_lines = {}
    for k, p in outs.items():
        try:
            first_lines[k] = p.read_text(errors="replace").splitlines()[:4]
        except OSError:
            first_lines[k] = []
    return {"samples": samples, "cpu": cpu, "noise": noise.stop(), "head": first_lines}


def strings_in(value) -> set[str]:
    """Every string anywhere in a JSON value (the check does not depend on
    the exact shape of the rows)."""
    found = set()
    stack_ = [value]
    while stack_:
        v = stack_.pop()
        if isinstance(v, str):
            found.add(v)
        elif isinstance(v, list):
            stack_.extend(v)
        elif isinstance(v, dict):
            stack_.extend(v.values())
    return found


def listed_tests(ctx: Ctx, store: str, query: str, location: str, all_names: set[str]):
    """(set of generated test names in the JSON output, wall seconds) or (None, None)."""
    out = ctx.work / f"{store}-{query}.json"
    r = run_marked(ctx, f"{store} {query} --format json", query_argv(ctx, query, location, "--format", "json",
                                                                       "--limit", "0"), out=out)
    if r is None:
        return None, None
    text = out.read_text(errors="replace")
    try:
        value = json.loads(text)
    except ValueError:
        # JSON lines?
        try:
            value = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as e:
            ctx.error(f"{store} {query} --format json: not JSON ({e}): {text[:300]!r}")
            return None, None
    return strings_in(value) & all_names, r.wall


def check_outputs(ctx: Ctx, ds: DataSet, store: str, location: str) -> dict:
    all_names = {t.full for t in ds.tests}
    flaky_gen = ds.names("flaky", "flaky-retried")
    # Detectable: failed (or flaked) at least once and passed at least once in the data.
    flaky_detectable = {n for n in flaky_gen
                        if (ds.failed[n] + ds.flaked[n]) > 0 and (ds.passed[n] > 0 or ds.flaked[n] > 0)}
    regressing = ds.names("regressing")
    never = ds.names("broken", "skipped", "sometimes-skipped")
    res = {}
    flaky, wall_f = listed_tests(ctx, store, "flaky", location, all_names)
    if flaky is not None:
        found = len(flaky & flaky_detectable)
        res["flaky"] = {
            "generated": len(flaky_gen), "detectable": len(flaky_detectable), "found": found,
            "listed": len(flaky), "regressing listed": len(flaky & regressing),
            "wrongly listed": sorted(flaky & never)[:5], "n wrongly listed": len(flaky & never),
            "other": len(flaky - flaky_gen - regressing - never),
            "ok": found >= 0.9 * len(flaky_detectable),
            "wall": wall_f,
        }
    regressed, wall_r = listed_tests(ctx, store, "regressed", location, all_names)
    if regressed is not None:
        found = len(regressed & regressing)
        res["regressed"] = {
            "generated": len(regressing), "detectable": len(regressing), "found": found,
            "listed": len(regressed), "flaky listed": len(regressed & flaky_gen),
            "wrongly listed": sorted(regressed & never)[:5], "n wrongly listed": len(regressed & never),
            "other": len(regressed - regressing - flaky_gen - never),
            "ok": found >= 0.9 * len(regressing),
            "wall": wall_r,
        }
    for q, c in res.items():
        log(f"{store} {q} check: found {c['found']} of {c['detectable']} detectable "
            f"({c['generated']} generated), {c['listed']} listed; {'ok' if c['ok'] else 'NOT OK'}")
        if not c["ok"]:
            ctx.error(f"{store} {q} output check failed: {c}")
    res["sets"] = {"flaky": flaky, "regressed": regressed}
    return res


# --------------------------------------------------------------------------
# report


def rate(n: int, s: Stats) -> str:
    return f"{n / s.median:,.0f}" if s.n else "n/a"


def ratio(a: Stats, b: Stats, digits: int = 2) -> str:
    return f"{a.median / b.median:.{digits}f}" if a.n and b.n and b.median > 0 else "n/a"


def mib(s: Stats) -> str:
    return f"{s.median / 2**20:,.0f} MiB" if s.n else "n/a"


def cpu_s(s: Stats) -> str:
    return f"{s.median:.2f} s" if s.n else "n/a"


def verdict_ok(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "**FAIL**")


def render(ctx: Ctx, info, args, ds: DataSet, reps, sq_in, sq_q, pg_in, pg_q, checks, pg_info, loads,
           elapsed) -> str:
    out = []
    w = out.append
    mode = "quick" if args.quick else "full"
    w(BEGIN)
    w("## History store\n")
    w(f"Generated by `bench/history.py` (this run: `{' '.join(['python3', 'bench/history.py', *sys.argv[1:]])}`, "
      f"{mode} mode, total {elapsed:.0f} s); re-run to refresh this section only. "
      "Same method as above: medians of interleaved repetitions (min–max), baseline measured in the "
      "same run, ratio = warden median ÷ baseline median; wall time of the whole command, process "
      "start included, for warden and baselines alike.\n")
    w("| | |\n|---|---|")
    for k in ("date", "git commit", "nproc", "cpu", "memory", "kernel", "rustc", "python"):
        w(f"| {k} | {info[k]} |")
    w(f"| warden binary | {ctx.warden}" + (f" (queries: {ctx.query_warden})" if ctx.query_warden != ctx.warden
                                           else "") + " |")
    w(f"| scratch directory (JUnit and SQLite files) | {ctx.work.parent} ({ctx.fs}) |")
    w(f"| PostgreSQL | {pg_info} |")
    w(f"| load average (before → after) | {loads[0]} → {loads[1]} |")
    w("")
    if ctx.errors:
        w("### Errors during this run\n")
        for e in ctx.errors:
            w(f"- {e}")
        w("")

    kinds_count = {k: sum(1 for t in ds.tests if t.kind == k) for k in
                   ("flaky", "flaky-retried", "regressing", "broken", "skipped", "sometimes-skipped")}
    w("### Data\n")
    w(f"{len(ds.tests):,} tests ({SUITES} suites × {TESTS_PER_SUITE} test cases) × {ds.runs} runs = "
      f"**{ds.results:,} results**, in {len(ds.files)} JUnit XML files (one per run, Surefire style, "
      f"{ds.bytes / len(ds.files) / 2**20:.2f} MiB each, {ds.bytes / 2**20:.0f} MiB in all), generated with "
      f"seed {SEED}. Flaky: {kinds_count['flaky'] + kinds_count['flaky-retried']} tests failing in 10–20% "
      f"of runs ({kinds_count['flaky-retried']} of them reported as `<flakyFailure>`: failed, then passed "
      f"on the runner's rerun); {kinds_count['regressing']} regressing (pass, then fail every run from a run "
      f"in the second half on); {kinds_count['broken']} failing every run; {kinds_count['skipped']} always "
      f"and {kinds_count['sometimes-skipped']} sometimes skipped. Run k starts k hours after "
      f"{ds.start:%Y-%m-%d %H:%M} UTC. Test times log-normal (median 15 ms, σ 1.7, capped at 120 s).\n")

    # ingest
    w("### Ingest\n")
    w("Each repetition ingests all files into a fresh, empty store. "
      f"warden: `warden import junit --run-per-file --history URL <{len(ds.files)} files>` (one process, run in the scratch directory, "
      "which is no git repository: no commit or branch). "
      f"Baseline (SQLite): `python3 bench/history.py --internal-baseline-sqlite …`: xml.etree `iterparse` "
      "+ `sqlite3` `executemany`, one transaction, into warden's own schema (migrations/sqlite, same "
      "indexes, same WAL/synchronous=NORMAL settings). Baseline (PostgreSQL): `psql --single-transaction` "
      "`\\copy` of the same rows as CSV (prepared untimed) into warden's schema (migrations/postgres). "
      "Every store is checked afterwards to hold exactly "
      f"{ds.results:,} results.\n")
    w("| store | what | baseline median (min–max) | warden median (min–max) | warden results/s | "
      "ratio | CPU baseline / warden | written to disk baseline / warden | target | result |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    wr = {k: Stats(v) for k, v in sq_in["written"].items()}
    b, s = Stats(sq_in["samples"]["baseline"]), Stats(sq_in["samples"]["warden"])
    bc, sc = Stats(sq_in["cpu"]["baseline"]), Stats(sq_in["cpu"]["warden"])
    ok = (ds.results / s.median >= INGEST_TARGET) if s.n else None
    w(f"| SQLite | one process, {len(ds.files)} files | {spread(b, secs)} | {spread(s, secs)} | "
      f"{rate(ds.results, s)} | {ratio(s, b)} | {cpu_s(bc)} / {cpu_s(sc)} | "
      f"{mib(wr['baseline'])} / {mib(wr['warden'])} | ≥ {INGEST_TARGET:,}/s | {verdict_ok(ok)} |")
    p = Stats(sq_in["samples"]["warden per file"])
    pc = Stats(sq_in["cpu"]["warden per file"])
    w(f"| SQLite | {len(ds.files)} processes, one file each | {spread(b, secs)} | {spread(p, secs)} | "
      f"{rate(ds.results, p)} | {ratio(p, b)} | {cpu_s(bc)} / {cpu_s(pc)} | "
      f"{mib(wr['baseline'])} / {mib(wr['warden per file'])} | (none) | |")
    if pg_in:
        b, s = Stats(pg_in["samples"]["baseline"]), Stats(pg_in["samples"]["warden"])
        bc, sc = Stats(pg_in["cpu"]["baseline"]), Stats(pg_in["cpu"]["warden"])
        bs, ss = Stats(pg_in["server_cpu"]["baseline"]), Stats(pg_in["server_cpu"]["warden"])
        w(f"| PostgreSQL | one process, {len(ds.files)} files | {spread(b, secs)} | {spread(s, secs)} | "
          f"{rate(ds.results, s)} | {ratio(s, b)} | client {cpu_s(bc)} / {cpu_s(sc)}; server {cpu_s(bs)} / "
          f"{cpu_s(ss)} | (server on tmpfs) | (none) | |")
    else:
        w("| PostgreSQL | | | not run | | | | | (none) | |")
    w("")
    sz = sq_in["sizes"]
    w(f"Baseline rates: SQLite {rate(ds.results, Stats(sq_in['samples']['baseline']))} results/s"
      + (f", PostgreSQL `\\copy` {rate(ds.results, Stats(pg_in['samples']['baseline']))} results/s"
         if pg_in else "")
      + f". \"CPU\" = user + system time of the process and its children (`wait4`); for PostgreSQL, "
      "\"server\" is the CPU time of the server processes that exited meanwhile (the connection's backend; "
      "the postmaster's cutime + cstime). \"written to disk\" = `ru_oublock` from `wait4` (bytes the process "
      "dirtied in files on the block device: the SQLite file, its WAL), median. SQLite file sizes "
      f"afterwards: warden {sz['warden'] / 2**20:.0f} MiB, baseline {sz['baseline'] / 2**20:.0f} MiB. "
      f"{ingest_reps_note(reps)}\n")
    pf = sq_in["per_file"]
    k = max(1, min(10, len(pf) // 4))
    first = Stats([x for v in pf[:k] for x in v])
    last = Stats([x for v in pf[-k:] for x in v])
    if first.n and last.n:
        w(f"Per-file mode, one invocation: the first {k} files (into a store holding 0–{k - 1} runs) "
          f"{spread(first, secs)}; the last {k} (store holding {len(pf) - k}–{len(pf) - 1} runs, "
          f"{(len(pf) - k) * len(ds.tests):,}+ results) {spread(last, secs)}: what one CI job importing "
          "its own report pays.\n")
    w(f"Noise (SQLite): {sq_in['noise']}." + (f" Noise (PostgreSQL): {pg_in['noise']}." if pg_in else "") + "\n")

    # queries
    w("### Queries\n")
    w(f"On the store warden's last ingest repetition wrote ({ds.results:,} results): "
      f"`warden flaky --since {QUERY_SINCE} --history URL`"
      + (", `warden failures`" if "failures" in ctx.queries else "")
      + f" and `warden regressed --since {QUERY_SINCE} --history URL` (default table output, 50 rows), "
      "release build. Baseline: one full scan, "
      f"`{SCAN}`, from a fresh process (`python3 -c` with sqlite3; `psql -c`): the cost of touching every "
      "row once. One untimed warm-up of each first; PostgreSQL after `ANALYZE` (as autovacuum does "
      "shortly after a bulk import).\n")
    w("| store | query | baseline median (min–max) | warden median (min–max) | ratio | CPU warden | target "
      "| result |")
    w("|---|---|---|---|---|---|---|---|")
    for store, q, target in (("SQLite", sq_q, QUERY_TARGET_S), ("PostgreSQL", pg_q, None)):
        if not q:
            w(f"| {store} | | | not run | | | | |")
            continue
        b = Stats(q["samples"]["baseline"])
        for name in ctx.queries:
            s = Stats(q["samples"][name])
            c = Stats(q["cpu"][name])
            ok = (s.median <= target) if (target and s.n) else None
            w(f"| {store} | `{name}` | {spread(b, secs)} | {spread(s, secs)} | {ratio(s, b, 1)} | "
              f"{cpu_s(c)} | {'≤ ' + format(target, '.0f') + ' s' if target else '(none)'} | "
              f"{verdict_ok(ok) if target else ''} |")
    w("")
    w(f"Noise (SQLite): {sq_q['noise'] if sq_q else 'n/a'}."
      + (f" Noise (PostgreSQL): {pg_q['noise']}." if pg_q else "") + "\n")

    # checks
    w("### Output checks\n")
    w("`--format json --limit 0` of each query (untimed above; its wall time shown), compared with what "
      "was generated. A flaky test is *detectable* when it failed (or flaked) at least once and passed "
      "at least once in the data. Pass: ≥ 90% of the detectable ones listed. \"wrongly listed\": "
      "tests that failed in every run or were only ever skipped (not intermittent, never passed then "
      "failed), reported but not counted against the result.\n")
    w("| store | query | generated | detectable | found | listed in all | also listed | wrongly listed "
      "| wall (json) | result |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for store, c in checks.items():
        for q in QUERIES:
            r = c.get(q)
            if not r:
                w(f"| {store} | `{q}` | | | | | | | | n/a |")
                continue
            also = (f"{r['regressing listed']} regressing" if q == "flaky" else f"{r['flaky listed']} flaky")
            if r["other"]:
                also += f", {r['other']} passing"
            wrong = str(r["n wrongly listed"]) + (f" ({', '.join(r['wrongly listed'])})" if r["wrongly listed"]
                                                  else "")
            w(f"| {store} | `{q}` | {r['generated']} | {r['detectable']} | {r['found']} | {r['listed']} | "
              f"{also} | {wrong} | {secs(r['wall'])} | {verdict_ok(r['ok'])} |")
    if len(checks) == 2:
        a, b2 = checks.get("SQLite", {}).get("sets"), checks.get("PostgreSQL", {}).get("sets")
        both = [q for q in QUERIES if a and b2 and a[q] is not None and b2[q] is not None]
        if both:
            same = all(a[q] == b2[q] for q in both)
            w(f"\nSQLite and PostgreSQL list {'the same' if same else '**different**'} tests "
              f"({', '.join(f'`{q}`' for q in both)}).")
    w("")

    # raw
    w("<details><summary>raw samples (seconds) and output heads</summary>\n")
    w("```")
    for name, v in sq_in["samples"].items():
        w(f"sqlite ingest {name}: " + " ".join(f"{x:.3f}" for x in v))
    if pg_in:
        for name, v in pg_in["samples"].items():
            w(f"postgres ingest {name}: " + " ".join(f"{x:.3f}" for x in v))
    for store, q in (("sqlite", sq_q), ("postgres", pg_q)):
        if q:
            for name, v in q["samples"].items():
                w(f"{store} query {name}: " + " ".join(f"{x:.3f}" for x in v))
    for store, q in (("sqlite", sq_q), ("postgres", pg_q)):
        if q:
            for name, lines in q["head"].items():
                for line in lines:
                    w(f"{store} {name} | {line[:160]}")
    w("```\n</details>\n")
    w(END)
    return "\n".join(out)


def ingest_reps_note(reps) -> str:
    return f"{reps[0]} repetition{'s' if reps[0] != 1 else ''} of each."


def fs_type(p: Path) -> str:
    try:
        return subprocess.run(["stat", "-f", "-c", "%T", str(p)], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


REPRO_LINE = ("python3 bench/history.py   # history store: ingest 1,000,000 JUnit results into SQLite and "
              "PostgreSQL, time flaky/regressed; rewrites only its section")




# --------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--internal-baseline-sqlite":
        baseline_sqlite_ingest(Path(sys.argv[2]), [Path(a) for a in sys.argv[3:]])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 runs (100,000 results), fewer repetitions")
    ap.add_argument("--no-build", action="store_true", help="use the already built release binary")
    ap.add_argument("--warden", help="warden binary to use (implies --no-build)")
    ap.add_argument("--query-warden", help="a different warden binary for the queries (default: --warden)")
    ap.add_argument("--no-postgres", action="store_true", help="SQLite only")
    ap.add_argument("--output", default=str(REPO / "BENCHMARKS.md"),
                    help="report to update (default: BENCHMARKS.md; only the history section is replaced)")
    ap.add_argument("--workdir", help="scratch directory (default: a new one under $TMPDIR, removed after)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (and say where)")
    args = ap.parse_args()
    if sys.platform != "linux":
        print("bench/history.py: Linux only", file=sys.stderr)
        return 2

    warden = warden_binary("bench/history.py", args.warden, args.no_build)
    query_warden = warden_binary("bench/history.py", args.query_warden or str(warden or ""), True)
    if warden is None or query_warden is None:
        return 2

    reps = REPS["quick" if args.quick else "full"]
    parent = Path(args.workdir).resolve() if args.workdir else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="warden-history-bench-", dir=parent))
    ctx = Ctx(warden=warden, query_warden=query_warden, work=work, quick=args.quick, fs=fs_type(work),
              queries=timed_queries(query_warden))
    t0 = time.monotonic()
    info = machine_info(warden)
    load_before = loadavg()
    pg = None
    pg_info = "not run"
    sq_q = pg_in = pg_q = None
    checks = {}
    try:
        data = work / "junit"
        data.mkdir()
        log(f"generating {reps[3]} JUnit files ({TESTS_PER_SUITE * SUITES} test cases each) in {data}")
        tg = time.monotonic()
        ds = generate(data, reps[3])
        log(f"generated {ds.bytes / 2**20:.0f} MiB in {time.monotonic() - tg:.1f} s")

        log(f"SQLite ingest ({reps[0]} reps)")
        sq_in = bench_sqlite_ingest(ctx, ds, reps[0])
        db = sq_in["db"]
        loc = f"sqlite:{db}"
        log(f"SQLite queries ({reps[1]} reps)")
        sq_q = bench_queries(ctx, "sqlite", loc,
                             [sys.executable, "-c",
                              "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                              f"print(c.execute({SCAN!r}).fetchone())", str(db)], reps[1])
        checks["SQLite"] = check_outputs(ctx, ds, "SQLite", loc)

        if not args.no_postgres:
            bin_dir = pg_bin_dir()
            if bin_dir is None:
                pg_info = "not run: no server binaries in /usr/lib/postgresql/*/bin"
                log(pg_info)
            else:
                pg = PgServer(bin_dir)
                pg.start()
                pg_info = (f"{pg.version}, {bin_dir}, data in {pg.dir.parent} ({fs_type(pg.dir)}), "
                           f"settings `{' '.join(PG_SETTINGS)}` (-F: no fsync), unix socket")
                log(f"PostgreSQL up (pid {pg.pid}) in {pg.dir}")
                log(f"PostgreSQL ingest ({reps[0]} reps)")
                pg_in = bench_pg_ingest(ctx, ds, pg, reps[0])
                if pg_in["db"]:
                    pg.psql(pg_in["db"], "-c", "ANALYZE")
                    url = pg.url(pg_in["db"])
                    log(f"PostgreSQL queries ({reps[2]} reps)")
                    pg_q = bench_queries(ctx, "postgres", url, pg.psql_argv(pg_in["db"], "-At", "-c", SCAN),
                                         reps[2])
                    checks["PostgreSQL"] = check_outputs(ctx, ds, "PostgreSQL", url)
    finally:
        if pg is not None:
            left = pg.stop()
            if left:
                ctx.error(f"PostgreSQL processes left after its shutdown (killed): {left}")
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - t0
    block = render(ctx, info, args, ds, reps, sq_in, sq_q, pg_in, pg_q, checks, pg_info,
                   (load_before, loadavg()), elapsed)
    write_section(Path(args.output), block, BEGIN, END, "bench/history.py", REPRO_LINE)
    log(f"updated {args.output} ({elapsed:.0f} s)")
    return 1 if ctx.errors else 0


if __name__ == "__main__":
    sys.exit(main())
