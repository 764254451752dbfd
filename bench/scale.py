#!/usr/bin/env python3
"""warden queries at fleet scale: `flaky`, `regressed`, `durations --tests`
and the dashboard's runs, flaky and test pages over a generated history of
1M/10M results (SQLite) and 10M/100M results (PostgreSQL), default 30-day
window, before (a baseline binary that scans raw results: main before the
rollups) and after (this tree's release build, reading the daily rollups of
migration 0009). Writes the `## Queries at fleet scale` section of
BENCHMARKS.md (between `<!-- scale:begin -->` and `<!-- scale:end -->`).

    python3 bench/scale.py --baseline /tmp/warden-base              # 1M+10M SQLite, 10M+100M PostgreSQL
    python3 bench/scale.py --baseline B --sizes sqlite:1M,pg:10M    # some of them

The history is BPF-CI-like: --tests tests (default 5,000) x 5 label sets
(arch x compiler), one run per label set per commit, runs spread evenly
over the last 365 days (the 30-day window holds 1/12 of the results), 10
batches per run. 3% of the tests are flaky (5-20% failing, half of those
retried to `flaky`), 0.5% broken, 0.5% regressed (break at some day of the
last 60), 3% always skipped, and every other result fails once in 20,000;
durations are log-normal (sigma 0.4) around a per-test median of 5 ms to 10 s.
It is written straight into the store, server-side (PostgreSQL: INSERT ...
SELECT over generate_series, run after run, as recorded runs lie in the
heap, which the BRIN index by run of migration 0010 relies on; SQLite:
INSERT ... SELECT over a recursive CTE with Python functions), after the baseline binary created the schema; the
binary under test then migrates the store (0009 fills the rollups from the
results: timed, reported).

Each query is a whole command (`warden flaky --history URL`, ...) or an HTTP
GET of `warden serve`'s page (server started once per binary and store,
first request untimed), median of --reps after one untimed warm-up. Stores
are deleted at the end (PostgreSQL's data directory is under /tmp, not
/dev/shm: 100M results take ~15 GB). Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from history import NOBODY, PgServer, generate, pg_bin_dir  # noqa: E402
from run import REPO, log, machine_info, warden_binary, write_section  # noqa: E402

BEGIN = "<!-- scale:begin -->"
END = "<!-- scale:end -->"
REPRO_LINE = ("python3 bench/scale.py --baseline /tmp/warden-base   # queries at fleet scale: "
              "1M/10M SQLite, 10M/100M PostgreSQL (~1 h, ~16 GB under /tmp); rewrites only its section")
DAY_MS = 86_400_000
YEAR_DAYS = 365
LABEL_SETS = [("x86_64", "gcc"), ("x86_64", "llvm"), ("aarch64", "gcc"), ("aarch64", "llvm"),
              ("s390x", "gcc")]
BATCHES = 10
TARGET_S = 1.0
QUERIES = ["flaky", "regressed", "durations --tests", "page /runs", "page /flaky", "page /test"]


def parse_size(s: str) -> int:
    s = s.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000}.get(s[-1], 1)
    return int(float(s.rstrip("KM")) * mult)


def fmt_size(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n:,}"


# ---------------------------------------------------------------- the shape

def test_kind(i: int) -> str:
    m = i % 1000
    if m < 30:
        return "flaky"
    if m < 35:
        return "broken"
    if m < 40:
        return "regressed"
    if m < 70:
        return "skipped"
    return "ok"


def test_name(i: int) -> str:
    return f"prog{i % 7}/test_{i:05d}/sub_{i % 13}"


# ------------------------------------------------------------- PostgreSQL

PG_GEN = """
CREATE TEMP TABLE gen_tests AS
SELECT i AS id,
       CASE WHEN i % 1000 < 30 THEN 'flaky' WHEN i % 1000 < 35 THEN 'broken'
            WHEN i % 1000 < 40 THEN 'regressed' WHEN i % 1000 < 70 THEN 'skipped'
            ELSE 'ok' END AS kind,
       0.05 + 0.15 * random() AS p,
       exp(ln(5) + random() * ln(2000)) AS median,
       {now} - (random() * 60 * {day})::bigint AS breaks_at
FROM generate_series(1, {tests}) i;
"""


def pg_generate(pg: PgServer, db: str, n_tests: int, n_runs: int, now_ms: int) -> None:
    def psql(sql: str) -> None:
        subprocess.run(pg.psql_argv(db, "-c", sql), check=True, env=pg.env)

    span = YEAR_DAYS * DAY_MS
    step = span // n_runs
    start = now_ms - span
    psql(f"INSERT INTO tests (id, name) SELECT i, 'prog' || (i % 7) || '/test_' || lpad(i::text, 5, '0') "
         f"|| '/sub_' || (i % 13) FROM generate_series(1, {n_tests}) i")
    arch = "(ARRAY[" + ",".join(f"'{a}'" for a, _ in LABEL_SETS) + "])"
    comp = "(ARRAY[" + ",".join(f"'{c}'" for _, c in LABEL_SETS) + "])"
    psql(f"""INSERT INTO runs (id, uuid, started_at, ended_at, status, commit_sha, branch, host, labels, source)
         SELECT k, md5('run' || k), {start} + (k - 1) * {step}, {start} + (k - 1) * {step} + 1800000,
                'failed', md5('commit' || ((k - 1) / {len(LABEL_SETS)})), 'main', 'ci-' || (k % 20),
                'arch=' || {arch}[1 + (k - 1) % {len(LABEL_SETS)}] || ' compiler=' || {comp}[1 + (k - 1) % {len(LABEL_SETS)}],
                'run'
         FROM generate_series(1::bigint, {n_runs}) k""")
    psql("INSERT INTO run_labels (run_id, key, value) SELECT id, 'arch', split_part(split_part(labels, ' ', 1), '=', 2) "
         "FROM runs UNION ALL SELECT id, 'compiler', split_part(split_part(labels, ' ', 2), '=', 2) FROM runs")
    psql(f"""INSERT INTO batches (id, run_id, name, phase, status, reason, started_at, duration_ms, attempts)
         SELECT (r.id - 1) * {BATCHES} + b + 1, r.id, 'batch-' || b, 'batch', 'passed', '', r.started_at, 60000, 1
         FROM runs r, generate_series(0, {BATCHES - 1}) b""")
    psql("SELECT setval(pg_get_serial_sequence('runs', 'id'), (SELECT max(id) FROM runs))")
    psql("SELECT setval(pg_get_serial_sequence('batches', 'id'), (SELECT max(id) FROM batches))")
    psql("SELECT setval(pg_get_serial_sequence('tests', 'id'), (SELECT max(id) FROM tests))")
    # Bulk load: the results' indexes are built once at the end.
    psql("ALTER TABLE results DROP CONSTRAINT results_pkey; DROP INDEX results_run; DROP INDEX results_failing")
    gen = PG_GEN.format(now=now_ms, day=DAY_MS, tests=n_tests)
    chunk = max(1, 2_000_000 // n_tests)
    t0 = time.monotonic()
    # One session: the temp table of test parameters lives in it.
    script = "SELECT setseed(0.17) \\g /dev/null\n" + gen
    for lo in range(1, n_runs + 1, chunk):
        hi = min(n_runs, lo + chunk - 1)
        script += f"""
        INSERT INTO results (test_id, run_id, batch_id, status, duration_ms, message)
        SELECT t.id, r.id, (r.id - 1) * {BATCHES} + t.id % {BATCHES} + 1, s.st,
               CASE WHEN s.st = 4 THEN NULL
                    ELSE greatest(0, round(t.median * exp(0.4 * sqrt(-2 * ln(1 - random()))
                                                         * cos(2 * pi() * random()))))::bigint END,
               CASE WHEN s.st IN (2, 3) THEN 'assertion failed: expected 0, got ' || (r.id % 97) END
        FROM runs r CROSS JOIN gen_tests t,
        LATERAL (SELECT CASE
            WHEN t.kind = 'skipped' THEN 4
            WHEN t.kind = 'broken' THEN 2
            WHEN t.kind = 'regressed' AND r.started_at >= t.breaks_at THEN 2
            WHEN t.kind = 'flaky' AND random() < t.p THEN 2 + (r.id + t.id) % 2
            WHEN random() < 0.00005 THEN 2
            ELSE 1 END AS st) s
        WHERE r.id BETWEEN {lo} AND {hi}
        ORDER BY r.id, t.id;"""
    subprocess.run(pg.psql_argv(db), input=script.encode(), check=True, env=pg.env)
    log(f"  results inserted in {time.monotonic() - t0:.0f} s; indexes")
    t0 = time.monotonic()
    psql("SET maintenance_work_mem = '1GB'; ALTER TABLE results ADD PRIMARY KEY (test_id, run_id)")
    psql("SET maintenance_work_mem = '1GB'; CREATE INDEX results_run ON results USING brin (run_id) "
         "WITH (pages_per_range = 32, autosummarize = on)")
    psql("CREATE INDEX results_failing ON results (test_id) WHERE status IN (2, 3)")
    psql("""UPDATE runs SET tests_run = c.run, tests_failed = c.failed,
                status = CASE WHEN c.failed > 0 THEN 'failed' ELSE 'passed' END
            FROM (SELECT run_id, count(*) FILTER (WHERE status IN (1, 2, 3)) AS run,
                         count(*) FILTER (WHERE status = 2) AS failed FROM results GROUP BY run_id) c
            WHERE c.run_id = runs.id""")
    psql("VACUUM ANALYZE")
    log(f"  indexes, counts, analyze: {time.monotonic() - t0:.0f} s")


# ------------------------------------------------------------------ SQLite

def sqlite_generate(path: Path, n_tests: int, n_runs: int, now_ms: int) -> None:
    rng = random.Random(17)
    span = YEAR_DAYS * DAY_MS
    step = span // n_runs
    start = now_ms - span
    params = {}
    for i in range(1, n_tests + 1):
        params[i] = (test_kind(i), 0.05 + 0.15 * rng.random(), math.exp(math.log(5) + rng.random() * math.log(2000)),
                     now_ms - int(rng.random() * 60 * DAY_MS))
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA cache_size = -2000000")
    con.execute("PRAGMA foreign_keys = OFF")
    r = random.Random(18)

    def status(t: int, started: int, run: int) -> int:
        kind, p, _, breaks = params[t]
        if kind == "skipped":
            return 4
        if kind == "broken":
            return 2
        if kind == "regressed" and started >= breaks:
            return 2
        if kind == "flaky" and r.random() < p:
            return 2 + (run + t) % 2
        if r.random() < 0.00005:
            return 2
        return 1

    def duration(t: int, st: int):
        if st == 4:
            return None
        return max(0, round(params[t][2] * math.exp(r.gauss(0, 0.4))))

    con.create_function("gen_status", 3, status, deterministic=False)
    con.create_function("gen_duration", 2, duration, deterministic=False)
    with con:
        con.executemany("INSERT INTO tests (id, name) VALUES (?, ?)",
                        ((i, test_name(i)) for i in range(1, n_tests + 1)))
        runs = []
        labels = []
        batches = []
        for k in range(1, n_runs + 1):
            a, c = LABEL_SETS[(k - 1) % len(LABEL_SETS)]
            at = start + (k - 1) * step
            runs.append((k, f"run-{k:08d}", at, at + 1_800_000, "failed", f"commit{(k - 1) // len(LABEL_SETS)}",
                         "main", f"ci-{k % 20}", f"arch={a} compiler={c}", "run"))
            labels += [(k, "arch", a), (k, "compiler", c)]
            batches += [((k - 1) * BATCHES + b + 1, k, f"batch-{b}", "batch", "passed", "", at, 60000, 1)
                        for b in range(BATCHES)]
        con.executemany("INSERT INTO runs (id, uuid, started_at, ended_at, status, commit_sha, branch, host, "
                        "labels, source) VALUES (?,?,?,?,?,?,?,?,?,?)", runs)
        con.executemany("INSERT INTO run_labels VALUES (?,?,?)", labels)
        con.executemany("INSERT INTO batches (id, run_id, name, phase, status, reason, started_at, duration_ms, "
                        "attempts) VALUES (?,?,?,?,?,?,?,?,?)", batches)
        con.execute("DROP INDEX results_run")
        con.execute("DROP INDEX results_failing")
        t0 = time.monotonic()
        con.execute(f"""
            INSERT INTO results (test_id, run_id, batch_id, status, duration_ms, message)
            SELECT test_id, run_id, batch_id, st, gen_duration(test_id, st),
                   CASE WHEN st IN (2, 3) THEN 'assertion failed: expected 0, got ' || (run_id % 97) END
            FROM (SELECT t.id AS test_id, r.id AS run_id, (r.id - 1) * {BATCHES} + t.id % {BATCHES} + 1 AS batch_id,
                         gen_status(t.id, r.started_at, r.id) AS st
                  FROM tests t CROSS JOIN runs r)""")
        log(f"  results inserted in {time.monotonic() - t0:.0f} s; indexes")
        con.execute("CREATE INDEX results_run ON results (run_id)")
        con.execute("CREATE INDEX results_failing ON results (test_id) WHERE status IN (2, 3)")
        con.execute("""UPDATE runs SET
            tests_run = (SELECT COUNT(*) FROM results r WHERE r.run_id = runs.id AND r.status IN (1, 2, 3)),
            tests_failed = (SELECT COUNT(*) FROM results r WHERE r.run_id = runs.id AND r.status = 2)""")
        con.execute("UPDATE runs SET status = 'passed' WHERE tests_failed = 0")
    con.execute("ANALYZE")
    con.close()


# ----------------------------------------------------------------- timing

def create_schema(warden: Path, url: str, work: Path) -> None:
    """The store's schema as `warden` migrates it: an import of one test
    creates it (read commands don't create a store); its rows go again."""
    junit = work / "seed.xml"
    junit.write_text('<testsuite name="seed" tests="1"><testcase classname="seed" name="seed" time="0"/></testsuite>')
    subprocess.run([str(warden), "import", "junit", str(junit), "--history", url], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


CLEAR = ["DELETE FROM results", "DELETE FROM attempts", "DELETE FROM batches", "DELETE FROM run_labels",
         "DELETE FROM runs", "DELETE FROM tests"]


def run_cmd(argv: list[str], env=None) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    return time.perf_counter() - t0, p.returncode, (p.stdout + p.stderr).decode(errors="replace")


class Server:
    """`warden serve` on a free port, its address read from its first line."""

    def __init__(self, warden: Path, url: str):
        self.p = subprocess.Popen([str(warden), "serve", "--history", url, "--bind", "127.0.0.1:0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.p.stdout.readline().decode()
        if "serving" not in line:
            self.stop()
            raise RuntimeError(f"warden serve: {line!r}")
        self.base = line.split("serving ", 1)[1].split()[0].rstrip("/")

    def get(self, path: str) -> tuple[float, int, str]:
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(self.base + path, timeout=600) as r:
                body = r.read()
                code = r.status
        except urllib.error.HTTPError as e:
            body, code = e.read(), e.code
        return time.perf_counter() - t0, code, body.decode(errors="replace")

    def stop(self) -> None:
        self.p.terminate()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def time_queries(warden: Path, url: str, test: str, reps: int, tag: str) -> dict:
    out: dict[str, dict] = {}
    server = Server(warden, url)
    try:
        for q in QUERIES:
            if q.startswith("page "):
                path = q.split()[1]
                if path == "/test":
                    path += "?name=" + urllib.parse.quote(test)
                one = lambda: server.get(path)  # noqa: E731
                ok = lambda rc: rc == 200  # noqa: E731
            else:
                argv = [str(warden), *q.split(), "--history", url]
                one = lambda: run_cmd(argv)  # noqa: E731
                ok = lambda rc: rc in (0, 1)  # noqa: E731
            _, rc, text = one()  # warm-up
            samples = []
            for _ in range(reps):
                s, rc, text = one()
                if not ok(rc):
                    log(f"  {tag} {q}: exit {rc}: {text[-300:]}")
                    break
                samples.append(s)
            out[q] = {"samples": samples, "lines": len(text.splitlines()), "head": text[:200]}
            log(f"  {tag} {q}: " + (f"median {statistics.median(samples):.3f} s" if samples else "failed"))
    finally:
        server.stop()
    return out


# ------------------------------------------------------------------ ingest

def bench_ingest(warden: Path, baseline: Path, pg: PgServer | None, work: Path, reps: int) -> dict:
    """What the rollups cost a write: `warden import junit --run-per-file` of
    bench/history.py's 100 runs x 10,000 results into a fresh store, the
    baseline binary against this one, interleaved, each into SQLite and
    PostgreSQL."""
    (work / "junit").mkdir(exist_ok=True)
    ds = generate(work / "junit", 100)
    files = [str(f) for f in ds.files]
    kinds = [(who, backend) for backend in ("SQLite", "PostgreSQL") if backend == "SQLite" or pg
             for who in ("before", "after")]
    samples: dict[str, list[float]] = {f"{w} {b}": [] for w, b in kinds}
    for rep in range(reps):
        for who, backend in (kinds if rep % 2 == 0 else list(reversed(kinds))):
            binary = baseline if who == "before" else warden
            if backend == "SQLite":
                store = work / "ingest.db"
                for f in work.glob("ingest.db*"):
                    f.unlink()
                url = f"sqlite:{store}"
            else:
                db = f"ingest{rep}{who}"
                subprocess.run(pg.psql_argv("postgres", "-c", f"CREATE DATABASE {db}"), check=True, env=pg.env)
                url = pg.url(db)
            s, rc, text = run_cmd([str(binary), "import", "junit", "--run-per-file", "--history", url, *files])
            if rc != 0:
                log(f"  ingest {who} {backend}: exit {rc}: {text[-300:]}")
            else:
                samples[f"{who} {backend}"].append(s)
                log(f"  ingest {who} {backend}: {s:.2f} s, {ds.results / s:,.0f} results/s")
            if backend == "PostgreSQL":
                subprocess.run(pg.psql_argv("postgres", "-c", f"DROP DATABASE {db}"), check=True, env=pg.env)
    shutil.rmtree(work / "junit", ignore_errors=True)
    return {"n": ds.results, "samples": samples}


# ------------------------------------------------------------------ render

def cell(s: list[float]) -> str:
    return f"{statistics.median(s):.3f} s" if s else "failed"


def render(info: dict, args, results: list[dict], ingest: dict | None, elapsed: float) -> str:
    lines = [BEGIN, "## Queries at fleet scale", "",
             f"`python3 bench/scale.py` ({time.strftime('%Y-%m-%d', time.gmtime())}; the latest measurement of each "
             f"store, kept in --results across invocations; "
             f"{info.get('cpu', '?')}, {info.get('kernel', '?')}). A generated BPF-CI-like history: "
             f"{args.tests:,} tests x 5 label sets (arch x compiler), runs spread over 365 days, so the "
             "default 30-day window holds 1/12 of the results; 3% of the tests flaky, 0.5% broken, 0.5% "
             "regressed, 3% skipped, one-off failures 1 in 20,000 (bench/scale.py says how). Each query is the "
             f"whole command, or an HTTP GET of `warden serve`'s page; median of {args.reps} after a warm-up. "
             "*Before*: the baseline binary (main at 3172098: raw scans of `results`); *after*: this tree "
             "(rollups of migration 0009). Both measured in the same run on the same store, while other "
             "builds shared the machine: compare ratios.", "",
             "| store | results | query | before | after | before ÷ after | target ≤ 1 s |",
             "|---|---:|---|---:|---:|---:|---|"]
    for r in results:
        for q in QUERIES:
            b = r["before"].get(q, {}).get("samples", []) if r.get("before") else []
            a = r["after"].get(q, {}).get("samples", [])
            ratio = f"{statistics.median(b) / statistics.median(a):.1f}x" if a and b else "–"
            verdict = ("PASS" if a and statistics.median(a) <= TARGET_S else "FAIL")
            lines.append(f"| {r['backend']} | {fmt_size(r['n'])} | `{q}` | {cell(b) if b else '–'} | {cell(a)} | "
                         f"{ratio} | {verdict} |")
    lines += ["", "*after* reads `test_days` (migration 0009, history::rollup): `durations --tests` the duration "
              "histograms of the window's whole days (plus the results of its first, partial day), `flaky` and "
              "`regressed` (and the /flaky page) the packed (run, status) lists of the tests with a failure in "
              "the window's days, instead of `results`. On small stores that costs a little: the old path read "
              "only the failing entries of the partial index `results_failing`, the new one reads every test's "
              "row of each day of the window (5,000 x 31), still far below the target. The runs and test "
              "pages read `results` as before (by run, by test: already fast); their differences are noise "
              "(the machine was shared with other builds).", "",
              "| store | results | generate | migration 0009 (first open: fill rollups) | data directory / files |",
              "|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['backend']} | {fmt_size(r['n'])} | {r['gen_s']:.0f} s | {r['migrate_s']:.1f} s | "
                     f"{r['size']} |")
    if ingest:
        n = ingest["n"]
        lines += ["", f"What the rollups cost a write: `warden import junit --run-per-file` of {n:,} results "
                  "(bench/history.py's 100 runs x 10,000) into a fresh store, before and after, interleaved, "
                  f"median of {len(next(iter(ingest['samples'].values())))}:", "",
                  "| store | before | after | after ÷ before | results/s after |", "|---|---:|---:|---:|---:|"]
        for backend in ("SQLite", "PostgreSQL"):
            b = ingest["samples"].get(f"before {backend}", [])
            a = ingest["samples"].get(f"after {backend}", [])
            if a and b:
                mb, ma = statistics.median(b), statistics.median(a)
                lines.append(f"| {backend} | {mb:.2f} s | {ma:.2f} s | {ma / mb:.2f} | {n / ma:,.0f} |")
    lines += ["", END]
    return "\n".join(lines)


def load(path: Path) -> list[dict]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    order = {"SQLite": 0, "PostgreSQL": 1}
    return sorted(found, key=lambda r: (order.get(r["backend"], 2), r["n"]))


def save(path: Path, result: dict) -> None:
    """Adds (or replaces) one store's measurements in the kept file."""
    kept = [r for r in load(path) if (r["backend"], r["n"]) != (result["backend"], result["n"])]
    path.write_text(json.dumps(kept + [result], indent=1))


def du(path: Path) -> str:
    try:
        out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True).stdout.split()[0]
        return f"{int(out) / 2**30:.1f} GiB"
    except (IndexError, ValueError):
        return "?"


def free_gb(path: str = "/tmp") -> float:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize / 2**30


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="sqlite:1M,sqlite:10M,pg:10M,pg:100M")
    ap.add_argument("--tests", type=int, default=5000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warden", help="binary under test (default: the release build)")
    ap.add_argument("--baseline", help="binary before the rollups (main at 3172098); none: no 'before'")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone")
    ap.add_argument("--keep", action="store_true", help="keep the stores (and the PostgreSQL server: ^C)")
    ap.add_argument("--ingest", action="store_true", help="also measure what the rollups cost an import")
    ap.add_argument("--results", default="/tmp/warden-scale-results.json",
                    help="measurements kept across invocations (by store and size): the section shows them all")
    args = ap.parse_args()
    warden = warden_binary("bench/scale.py", args.warden, args.no_build)
    if warden is None:
        return 2
    baseline = Path(args.baseline).resolve() if args.baseline else None
    sizes = [(s.split(":")[0], parse_size(s.split(":")[1])) for s in args.sizes.split(",") if s]
    t_start = time.monotonic()
    now_ms = int(time.time() * 1000)
    work = Path(tempfile.mkdtemp(prefix="warden-scale-", dir="/tmp"))
    pg = None
    results = []
    probe = test_name(1)  # a flaky test
    try:
        for backend, n in sizes:
            n_runs = max(1, n // args.tests)
            log(f"{backend} {fmt_size(n)}: {n_runs} runs x {args.tests} tests; {free_gb():.0f} GB free")
            if free_gb() < n / 1e6 * 0.13 + 5:
                log(f"  skipped: not enough disk for {fmt_size(n)} with 5 GB to spare")
                continue
            t0 = time.monotonic()
            schema_binary = baseline or warden
            if backend == "sqlite":
                path = work / f"h{n}.db"
                url = f"sqlite:{path}"
                create_schema(schema_binary, url, work)
                con = sqlite3.connect(path)
                with con:
                    for q in CLEAR:
                        con.execute(q)
                con.close()
                sqlite_generate(path, args.tests, n_runs, now_ms)
                size_path = work
            else:
                if pg is None:
                    bin_dir = pg_bin_dir()
                    pg = PgServer(bin_dir)
                    if str(pg.dir).startswith("/dev/shm"):
                        shutil.rmtree(pg.dir)
                        pg.dir = Path(tempfile.mkdtemp(prefix="warden-scale-pg-", dir="/tmp"))
                        pg.sock = pg.dir / "sock"
                        pg.sock.mkdir()
                        if pg.root:
                            for d in (pg.dir, pg.sock):
                                os.chown(d, NOBODY, NOBODY)
                    pg.start()
                db = f"scale{n}"
                subprocess.run(pg.psql_argv("postgres", "-c", f"CREATE DATABASE {db}"), check=True, env=pg.env)
                url = pg.url(db)
                create_schema(schema_binary, url, work)
                subprocess.run(pg.psql_argv(db, "-c", "; ".join(CLEAR)), check=True, env=pg.env)
                pg_generate(pg, db, args.tests, n_runs, now_ms)
                size_path = pg.dir
            gen_s = time.monotonic() - t0
            log(f"  generated in {gen_s:.0f} s ({du(size_path)})")
            before = time_queries(baseline, url, probe, args.reps, "before") if baseline else None
            t0 = time.monotonic()
            subprocess.run([str(warden), "durations", "--batches", "--history", url], check=True,
                           stdout=subprocess.DEVNULL)
            migrate_s = time.monotonic() - t0
            log(f"  migrated in {migrate_s:.1f} s")
            # As the generated store was before the baseline's queries:
            # statistics of the new table, hint bits, visibility.
            if backend == "sqlite":
                con = sqlite3.connect(path)
                con.execute("ANALYZE")
                con.close()
            else:
                subprocess.run(pg.psql_argv(db, "-c", "VACUUM ANALYZE"), check=True, env=pg.env)
            after = time_queries(warden, url, probe, args.reps, "after")
            results.append({"backend": "SQLite" if backend == "sqlite" else "PostgreSQL", "n": n,
                            "before": before, "after": after, "gen_s": gen_s, "migrate_s": migrate_s,
                            "size": du(size_path)})
            save(Path(args.results), results[-1])
            if not args.keep:
                if backend == "sqlite":
                    for p in work.glob(f"h{n}.db*"):
                        p.unlink()
                else:
                    subprocess.run(pg.psql_argv("postgres", "-c", f"DROP DATABASE {db}"), check=True, env=pg.env)
        if args.ingest and baseline:
            if pg is None:
                pg = PgServer(pg_bin_dir())
                pg.start()
            ingest = bench_ingest(warden, baseline, pg, work, args.reps)
            Path(args.results + ".ingest").write_text(json.dumps(ingest))
    finally:
        if pg is not None and not args.keep:
            pg.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    results = load(Path(args.results))
    try:
        ingest = json.loads(Path(args.results + ".ingest").read_text())
    except (OSError, ValueError):
        ingest = None
    block = render(machine_info(warden), args, results, ingest, time.monotonic() - t_start)
    print(block)
    if not args.no_write and (results or ingest):
        write_section(REPO / "BENCHMARKS.md", block, BEGIN, END, "bench/scale.py", REPRO_LINE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
