#!/usr/bin/env python3
"""warden ingest benchmark: how fast results go into the history store,
against `psql \\copy` of the same rows in the same run. Writes the
`## History ingest` section of BENCHMARKS.md (between
`<!-- ingest:begin -->` and `<!-- ingest:end -->`, leaving the rest alone).

    python3 bench/ingest.py            # 1,000,000 imported results, a run of 100,000 (~5 minutes)
    python3 bench/ingest.py --quick    # 100,000 imported results, fewer repetitions

Two measurements, each repetition into a fresh, empty store, kinds
interleaved in a seeded shuffled order (this machine is shared):

1. `warden import junit --run-per-file` of bench/history.py's generated
   JUnit files (100 runs x 10,000 test cases, same seed) into PostgreSQL
   and into SQLite. Baseline: `psql \\copy` of the same result rows
   (run, suite, name, status, duration, message; CSV prepared untimed)
   into a plain table without indexes: the server's raw bulk-load speed.
   warden also parses the XML, creates runs, batches and test names and
   keeps three indexes on `results`. Second baseline, `psql \\copy
   indexed`: the rows as `results` holds them (test ids, sorted by the
   primary key) into a table with `results`' key and indexes: the floor
   for a writer into an indexed table. Third baseline, `psql \\copy
   partition`: the same rows in run order as a large import loads its own
   partition of `results` (migration 0012): `COPY … FREEZE` into a table
   created in the transaction, key and indexes built after, attached.
2. `warden run` of one batch (`format = "tap"`) that prints 100,000 TAP
   results (`cat` of a prepared file), recording into PostgreSQL, into
   SQLite, and with `--history none`. "Recording after the batch ended" =
   the run's wall time minus the batch's own duration as the store holds
   it: parsing, recording and process exit. Baseline: `psql \\copy` of
   the same 100,000 rows into a plain table.

PostgreSQL: bench/history.py's throwaway server (tmpfs when there is room,
`-F`: no fsync; unix socket), stopped and removed at the end. Every store is
checked afterwards to hold exactly the results it was given. Stdlib only.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from history import (  # noqa: E402
    PG_SETTINGS, Ctx, PgServer, fs_type, generate, parse_junit, pg_bin_dir, quote_sql, remove_sqlite,
    run_marked, sqlite_count,
)
from run import (  # noqa: E402
    REPO, Stats, loadavg, log, machine_info, order, secs, spread, warden_binary, write_section,
)

BEGIN = "<!-- ingest:begin -->"
END = "<!-- ingest:end -->"
REPRO_LINE = ("python3 bench/ingest.py   # history ingest: import 1,000,000 results and record a run of "
              "100,000, against psql \\copy; rewrites only its section")

#            reps, JUnit runs (10,000 results each), TAP results
MODES = {"full": (3, 100, 100_000), "quick": (2, 10, 100_000)}
TARGET_IMPORT_PG = 500_000      # results/s
TARGET_IMPORT_SQLITE = 300_000  # results/s
TARGET_RUN_RECORD = 2.0         # seconds after the batch ended
PLAIN = ("CREATE TABLE plain (run BIGINT, batch TEXT, name TEXT, status BIGINT, "
         "duration_ms BIGINT, message TEXT)")
# `results` as migrations/postgres create it (keys and indexes; no foreign
# keys since 0007): the floor of any writer of warden's schema.
INDEXED = ("CREATE TABLE plain (test_id BIGINT NOT NULL, run_id BIGINT NOT NULL, batch_id BIGINT, "
           "status BIGINT NOT NULL, duration_ms BIGINT, message TEXT, PRIMARY KEY (test_id, run_id)); "
           "CREATE INDEX plain_run ON plain USING brin (run_id) WITH (pages_per_range = 32, autosummarize = on); "
           "CREATE INDEX plain_failing ON plain (test_id) WHERE status IN (2, 3)")
INDEXED_KIND = "psql \\copy indexed"
# How a large import loads its own partition of `results` since migration
# 0012 (src/history/partition.rs): the rows, run after run, into a table
# created in the same transaction, its key and indexes built after, then
# attached to the partitioned parent.
PARTITIONED = ("CREATE TABLE plain (test_id BIGINT NOT NULL, run_id BIGINT NOT NULL, batch_id BIGINT, "
               "status BIGINT NOT NULL, duration_ms BIGINT, message TEXT, PRIMARY KEY (test_id, run_id)) "
               "PARTITION BY RANGE (run_id); "
               "CREATE INDEX plain_run ON plain USING brin (run_id) WITH (pages_per_range = 32, autosummarize = on); "
               "CREATE INDEX plain_failing ON plain (test_id) WHERE status IN (2, 3)")
PARTITION_KIND = "psql \\copy partition"


def import_rows_csv(files: list[Path], out: Path) -> int:
    n = 0
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        for run, path in enumerate(files, 1):
            _, _, suites = parse_junit(path)
            for suite, _, _, rows in suites:
                for name, status, ms, message in rows:
                    w.writerow([run, suite, name, status, ms, message])
                    n += 1
    return n


def keyed_rows_csv(files: list[Path], out: Path, by_run: Path) -> int:
    """The same rows as `results` holds them: test ids given in order of first
    appearance, batch ids numbered per run and suite, sorted by (test id, run)
    into `out` and by (run, test id) into `by_run`."""
    ids: dict[str, int] = {}
    rows = []
    for run, path in enumerate(files, 1):
        _, _, suites = parse_junit(path)
        for k, (suite, _, _, rs) in enumerate(suites):
            for name, status, ms, message in rs:
                tid = ids.setdefault(f"{suite}/{name}", len(ids) + 1)
                rows.append((tid, run, (run - 1) * len(suites) + k + 1, status, ms, message))
    rows.sort(key=lambda r: (r[1], r[0]))
    with open(by_run, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    rows.sort(key=lambda r: (r[0], r[1]))
    with open(out, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return len(rows)


def tap_files(work: Path, n: int) -> tuple[Path, Path]:
    """The TAP output (every 100th failed, every 250th skipped) and its rows as CSV."""
    tap, rows = work / "big.tap", work / "big.csv"
    with open(tap, "w") as t, open(rows, "w", newline="") as r:
        w = csv.writer(r)
        t.write(f"TAP version 13\n1..{n}\n")
        for i in range(1, n + 1):
            if i % 100 == 0:
                t.write(f"not ok {i} case{i}\n")
                w.writerow([1, "big", f"big/case{i}", 2, None, None])
            elif i % 250 == 1:
                t.write(f"ok {i} case{i} # SKIP not here\n")
                w.writerow([1, "big", f"big/case{i}", 4, None, "not here"])
            else:
                t.write(f"ok {i} case{i}\n")
                w.writerow([1, "big", f"big/case{i}", 1, None, None])
    return tap, rows


class Bench:
    def __init__(self, ctx: Ctx, pg: PgServer | None):
        self.ctx, self.pg = ctx, pg
        self.n_db = 0

    def fresh_db(self) -> str:
        self.n_db += 1
        db = f"ingest_{self.n_db}"
        self.pg.createdb(db)
        return db

    def pg_count(self, db: str, table: str = "results") -> int:
        return int(self.pg.psql(db, "-At", "-c", f"SELECT COUNT(*) FROM {table}"))

    def copy_plain(self, what: str, rows: Path, expect: int, schema: str = PLAIN):
        db = self.fresh_db()
        self.pg.psql(db, "-c", schema)
        r = run_marked(self.ctx, what, self.pg.psql_argv(
            db, "-c", f"\\copy plain FROM {quote_sql(str(rows))} WITH (FORMAT csv)"))
        if r is not None and self.pg_count(db, "plain") != expect:
            self.ctx.error(f"{what}: wrong row count")
        self.pg.dropdb(db)
        return r


    def copy_partition(self, what: str, rows: Path, expect: int, runs: int):
        """The rows (run order) as a large import loads its partition: COPY into a
        table of the transaction's own, FREEZE, key and indexes after, attach."""
        db = self.fresh_db()
        self.pg.psql(db, "-c", PARTITIONED)
        script = self.ctx.work / "partition.sql"
        script.write_text(
            "BEGIN;\n"
            f"CREATE TABLE plain_p (LIKE plain, CHECK (run_id >= 1 AND run_id < {runs + 1}));\n"
            f"\\copy plain_p FROM {quote_sql(str(rows))} WITH (FORMAT csv, FREEZE)\n"
            "ALTER TABLE plain_p ADD PRIMARY KEY (test_id, run_id);\n"
            "CREATE INDEX ON plain_p USING brin (run_id) WITH (pages_per_range = 32, autosummarize = on);\n"
            "CREATE INDEX ON plain_p (test_id) WHERE status IN (2, 3);\n"
            f"ALTER TABLE plain ATTACH PARTITION plain_p FOR VALUES FROM (1) TO ({runs + 1});\n"
            "COMMIT;\n")
        r = run_marked(self.ctx, what, self.pg.psql_argv(db, "-f", str(script)))
        if r is not None and self.pg_count(db, "plain") != expect:
            self.ctx.error(f"{what}: wrong row count")
        self.pg.dropdb(db)
        return r


def bench_import(b: Bench, files: list[Path], rows: Path, keyed: Path, by_run: Path, n: int,
                 reps: int) -> dict:
    ctx = b.ctx
    kinds = (["psql \\copy", INDEXED_KIND, PARTITION_KIND, "warden PostgreSQL"] if b.pg else []) \
        + ["warden SQLite"]
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    argv_files = [str(f) for f in files]
    for rep in range(reps):
        for kind in order(kinds, rep):
            if kind == "psql \\copy":
                r = b.copy_plain("import baseline", rows, n)
            elif kind == INDEXED_KIND:
                r = b.copy_plain("import baseline (indexed)", keyed, n, INDEXED)
            elif kind == PARTITION_KIND:
                r = b.copy_partition("import baseline (partition)", by_run, n, len(files))
            elif kind == "warden PostgreSQL":
                db = b.fresh_db()
                r = run_marked(ctx, "warden import (postgres)",
                               [str(ctx.warden), "import", "junit", "--run-per-file", "--history",
                                b.pg.url(db), *argv_files])
                if r is not None and b.pg_count(db) != n:
                    ctx.error(f"warden import (postgres): {b.pg_count(db)} results, expected {n}")
                b.pg.dropdb(db)
            else:
                sq = ctx.work / "import.db"
                remove_sqlite(sq)
                r = run_marked(ctx, "warden import (sqlite)",
                               [str(ctx.warden), "import", "junit", "--run-per-file", "--history",
                                f"sqlite:{sq}", *argv_files])
                if r is not None and sqlite_count(sq) != n:
                    ctx.error(f"warden import (sqlite): {sqlite_count(sq)} results, expected {n}")
                remove_sqlite(sq)
            if r is not None:
                samples[kind].append(r.wall)
                log(f"import rep {rep + 1}/{reps} {kind}: {r.wall:.3f} s, {n / r.wall:,.0f} results/s")
    return {k: Stats(v) for k, v in samples.items()}


def bench_run(b: Bench, tap: Path, rows: Path, n: int, reps: int) -> dict:
    ctx = b.ctx
    config = ctx.work / "big.toml"
    config.write_text(f'[[batch]]\nname = "big"\ncommand = ["cat", {quote_toml(str(tap))}]\nformat = "tap"\n')
    kinds = (["psql \\copy", "warden PostgreSQL"] if b.pg else []) + ["warden SQLite", "warden none"]
    walls: dict[str, list[float]] = {k: [] for k in kinds}
    after: dict[str, list[float]] = {k: [] for k in kinds if k.startswith("warden") and k != "warden none"}
    for rep in range(reps):
        for kind in order(kinds, rep):
            if kind == "psql \\copy":
                r = b.copy_plain("run baseline", rows, n)
                if r is not None:
                    walls[kind].append(r.wall)
                continue
            db = sq = None
            if kind == "warden PostgreSQL":
                db = b.fresh_db()
                loc = b.pg.url(db)
            elif kind == "warden SQLite":
                sq = ctx.work / "run.db"
                remove_sqlite(sq)
                loc = f"sqlite:{sq}"
            else:
                loc = "none"
            r = run_marked(ctx, f"warden run ({kind})",
                           [str(ctx.warden), "run", "-c", str(config), "--history", loc], expect_rc=1)
            if r is None:
                continue
            walls[kind].append(r.wall)
            batch_ms = None
            if db is not None:
                got = b.pg_count(db)
                batch_ms = int(b.pg.psql(db, "-At", "-c", "SELECT duration_ms FROM batches"))
                b.pg.dropdb(db)
            elif sq is not None:
                import sqlite3
                con = sqlite3.connect(sq)
                got = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                batch_ms = con.execute("SELECT duration_ms FROM batches").fetchone()[0]
                con.close()
                remove_sqlite(sq)
            else:
                got = n
            if got != n:
                ctx.error(f"warden run ({kind}): {got} results, expected {n}")
            if batch_ms is not None:
                after[kind].append(r.wall - batch_ms / 1000)
            log(f"run rep {rep + 1}/{reps} {kind}: {r.wall:.3f} s"
                + (f", {r.wall - batch_ms / 1000:.3f} s after the batch" if batch_ms is not None else ""))
    return {"wall": {k: Stats(v) for k, v in walls.items()}, "after": {k: Stats(v) for k, v in after.items()}}


def quote_toml(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def render(ctx: Ctx, info, args, reps, n_import, n_tap, imp, run, pg_info, loads, elapsed) -> str:
    out = []
    w = out.append
    w(BEGIN)
    w("## History ingest\n")
    w(f"Generated by `bench/ingest.py` (this run: `python3 bench/ingest.py{' --quick' if args.quick else ''}"
      f"{' --no-build' if args.no_build else ''}`, total {elapsed:.0f} s); re-run to refresh this section only. "
      "Medians of interleaved repetitions (min–max), each into a fresh, empty store; wall time of the whole "
      "command, process start included; ratio = warden median ÷ baseline median.\n")
    w("| | |\n|---|---|")
    for k in ("date", "git commit", "nproc", "cpu", "kernel", "warden binary"):
        if k in info:
            w(f"| {k} | {info[k]} |")
    w(f"| scratch directory | {ctx.work.parent} ({ctx.fs}) |")
    w(f"| PostgreSQL | {pg_info} |")
    w(f"| load average (before → after) | {loads[0]} → {loads[1]} |\n")
    w("How warden writes (src/history/keyed.rs, copy_in.rs, partition.rs, db.rs, app/import.rs): each "
      "recording (a batch, or the batches that finished together; an import: all its runs) looks up its "
      "distinct test names once (new ones inserted in name order) and keys its results by test id. Into "
      "PostgreSQL, `import --run-per-file` reads its files in eight groups on a thread of its own and writes "
      "each group while the next is read, in one transaction; an import of 100,000 results or more loads a "
      "partition of `results` of its own (run ids reserved as one range; rows in run order with binary "
      "`COPY … FROM STDIN (FREEZE)` into a table created in the transaction; its primary key and indexes "
      "built after, while the daily rollups are tallied; attached before the commit); a smaller import's "
      "rows go straight into `results` in key order; a recording's into a temporary staging table, then one "
      "`INSERT … SELECT … ON CONFLICT DO NOTHING`. Batch rows go in multi-row INSERTs with ids reserved up "
      "front. Into SQLite, the keyed rows sorted by the primary key in multi-row INSERTs of 1,000 in one "
      "transaction.\n")
    w(f"### Import: {n_import:,} results\n")
    w(f"`warden import junit --run-per-file` of {n_import // 10_000} JUnit files (bench/history.py's data: "
      "10,000 test cases each, ~0.9 MiB of XML). Baseline: `psql \\copy` of the same rows as CSV into a plain "
      f"table without indexes (prepared untimed). {reps} repetitions.\n")
    w("| store | baseline `psql \\copy` median (min–max) | warden median (min–max) | warden results/s | ratio | target | result |")
    w("|---|---|---|---|---|---|---|")
    base = imp.get("psql \\copy")
    for kind, target in (("warden PostgreSQL", TARGET_IMPORT_PG), ("warden SQLite", TARGET_IMPORT_SQLITE)):
        st = imp.get(kind)
        if st is None or not st.n:
            continue
        rate = n_import / st.median
        ratio = f"{st.median / base.median:.2f}" if base and base.n and kind.endswith("PostgreSQL") else "(none)"
        bl = spread(base, secs) if base and base.n and kind.endswith("PostgreSQL") else "(not comparable)"
        w(f"| {kind.split()[1]} | {bl} | {spread(st, secs)} | {rate:,.0f} | {ratio} | ≥ {target:,}/s | "
          f"{verdict(rate >= target)} |")
    if base and base.n:
        w(f"\nBaseline rate: `psql \\copy` {n_import / base.median:,.0f} rows/s.")
    idx = imp.get(INDEXED_KIND)
    pgs = imp.get("warden PostgreSQL")
    if idx and idx.n:
        w(f"\nSecond baseline, `psql \\copy indexed`: the same rows as `results` holds them (test id, run id, "
          "batch id, status, duration, message; sorted by the primary key; prepared untimed) into a table with "
          f"`results`' primary key and two indexes: {spread(idx, secs)}, {n_import / idx.median:,.0f} rows/s — "
          "the floor for a writer into an indexed table"
          + (f"; warden PostgreSQL ÷ this = {pgs.median / idx.median:.2f}" if pgs and pgs.n else "") + ".")
    part = imp.get(PARTITION_KIND)
    if part and part.n:
        w(f"\nThird baseline, `psql \\copy partition`: the same rows in run order loaded as a large import "
          "loads its own partition of `results` since migration 0012 (src/history/partition.rs): `COPY … "
          "FREEZE` into a table created in the same transaction, then its primary key and two indexes built, "
          f"then attached to a partitioned parent: {spread(part, secs)}, {n_import / part.median:,.0f} rows/s — "
          "the server's floor for warden's way of loading"
          + (f"; warden PostgreSQL ÷ this = {pgs.median / part.median:.2f}" if pgs and pgs.n else "") + ".")
    w("")
    w(f"### A run of {n_tap:,} results\n")
    w(f"`warden run` of one batch printing {n_tap:,} TAP results (`cat` of a prepared file; every 100th "
      "fails, every 250th is skipped). \"After the batch\" = the run's wall time minus the batch's duration "
      f"as stored: parsing, recording, the reports and process exit. {reps} repetitions.\n")
    w("| history | wall median (min–max) | after the batch median (min–max) | target | result |")
    w("|---|---|---|---|---|")
    for kind in ("warden PostgreSQL", "warden SQLite", "warden none"):
        st = run["wall"].get(kind)
        if st is None or not st.n:
            continue
        a = run["after"].get(kind)
        if a is not None and a.n:
            ok = a.median <= TARGET_RUN_RECORD
            tgt = f"≤ {TARGET_RUN_RECORD:.0f} s" if kind.endswith("PostgreSQL") else "(none)"
            res = verdict(ok) if kind.endswith("PostgreSQL") else ""
            w(f"| {kind.split()[1]} | {spread(st, secs)} | {spread(a, secs)} | {tgt} | {res} |")
        else:
            w(f"| {kind.split()[1]} | {spread(st, secs)} | | | |")
    base = run["wall"].get("psql \\copy")
    pgw = run["wall"].get("warden PostgreSQL")
    none = run["wall"].get("warden none")
    if base and base.n and pgw and pgw.n:
        w(f"\nBaseline: `psql \\copy` of the same {n_tap:,} rows into a plain table {spread(base, secs)}; "
          f"warden's whole run into PostgreSQL ÷ baseline = {pgw.median / base.median:.2f}"
          + (f"; recording into PostgreSQL costs the run {pgw.median - none.median:.3f} s over `--history none`"
             if none and none.n else "") + ".\n")
    if ctx.errors:
        w("**Errors:**\n")
        for e in ctx.errors:
            w(f"- {e}")
        w("")
    w(END)
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 JUnit runs, 2 repetitions")
    ap.add_argument("--no-build", action="store_true", help="use the already built release binary")
    ap.add_argument("--warden", help="warden binary to use (implies --no-build)")
    ap.add_argument("--output", default=str(REPO / "BENCHMARKS.md"))
    ap.add_argument("--workdir", help="scratch directory (default: a new one under $TMPDIR, removed after)")
    args = ap.parse_args()
    warden = warden_binary("bench/ingest.py", args.warden, args.no_build or bool(args.warden))
    if warden is None:
        return 2
    reps, runs, n_tap = MODES["quick" if args.quick else "full"]
    parent = Path(args.workdir).resolve() if args.workdir else Path(tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="warden-ingest-bench-", dir=parent))
    ctx = Ctx(warden=warden, query_warden=warden, work=work, quick=args.quick, fs=fs_type(work))
    t0 = time.monotonic()
    info = machine_info(warden)
    load_before = loadavg()
    pg = None
    pg_info = "not run: no server binaries in /usr/lib/postgresql/*/bin"
    try:
        (work / "junit").mkdir()
        ds = generate(work / "junit", runs)
        rows = work / "import.csv"
        n_import = import_rows_csv(ds.files, rows)
        if n_import != ds.results:
            ctx.error(f"CSV holds {n_import} rows, the data set {ds.results}")
        keyed, by_run = work / "import-keyed.csv", work / "import-by-run.csv"
        if keyed_rows_csv(ds.files, keyed, by_run) != n_import:
            ctx.error("the keyed CSV holds another number of rows")
        tap, tap_rows = tap_files(work, n_tap)
        bin_dir = pg_bin_dir()
        if bin_dir is not None:
            pg = PgServer(bin_dir)
            pg.start()
            pg_info = (f"{pg.version}, {bin_dir}, data in {pg.dir.parent} ({fs_type(pg.dir)}), "
                       f"settings `{' '.join(PG_SETTINGS)}` (-F: no fsync), unix socket")
        b = Bench(ctx, pg)
        log(f"import of {n_import:,} results ({reps} reps)")
        imp = bench_import(b, ds.files, rows, keyed, by_run, n_import, reps)
        log(f"run of {n_tap:,} results ({reps} reps)")
        run = bench_run(b, tap, tap_rows, n_tap, reps)
    finally:
        if pg is not None:
            left = pg.stop()
            if left:
                ctx.error(f"PostgreSQL processes left after its shutdown (killed): {left}")
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - t0
    block = render(ctx, info, args, reps, n_import, n_tap, imp, run, pg_info, (load_before, loadavg()), elapsed)
    write_section(Path(args.output), block, BEGIN, END, "bench/ingest.py", REPRO_LINE)
    log(f"updated {args.output} ({elapsed:.0f} s)")
    return 1 if ctx.errors else 0


if __name__ == "__main__":
    sys.exit(main())
