#!/usr/bin/env python3
"""The history store's size per million results, and how long `warden prune`
takes to remove half of them, on SQLite and PostgreSQL.

    python3 bench/store_size.py                 # 100 runs x 10,000 = 1,000,000 results
    python3 bench/store_size.py --runs 20       # 200,000 results

Data: bench/history.py's generator (the same seeded JUnit files: 50 suites x
200 test cases per run, ~2% flaky with failure messages and stack traces,
run k starting k hours after 29 days ago), imported with `warden import
junit --run-per-file`. Sizes:
- SQLite: the db file after `VACUUM` (WAL checkpointed and truncated);
- PostgreSQL: `pg_database_size` after `VACUUM FULL` (of an otherwise empty
  database), and the sum of `pg_total_relation_size` of warden's tables.
Then `warden prune --older-than 27d` (the runs of the first ~2 days: about
half), timed, and the size again (SQLite reuses the freed pages: the file
only shrinks with VACUUM).

Prints a Markdown table. PostgreSQL: a throwaway server, as in
bench/history.py (skipped without server binaries).
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import history as h  # noqa: E402

TABLES = ["runs", "run_labels", "batches", "attempts", "tests", "results", "hunts", "hunt_arms",
          "store_state", "test_days", "queues", "queue_batches", "queue_runs"]


def run(argv, **kw):
    t = time.monotonic()
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{argv[:3]} exited {p.returncode}: {p.stderr[-2000:]}")
    return p.stdout, time.monotonic() - t


def sqlite_size(db: Path) -> int:
    c = sqlite3.connect(db)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.execute("VACUUM")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    return db.stat().st_size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100, help="runs of 10,000 results (default 100)")
    ap.add_argument("--warden", default=str(h.REPO / "target" / "release" / "warden"))
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    warden = Path(args.warden)
    work = Path(tempfile.mkdtemp(prefix="warden-size-bench-"))
    rows = {}
    pg = None
    try:
        data = work / "junit"
        data.mkdir()
        ds = h.generate(data, args.runs)
        results = ds.results
        h.log(f"generated {len(ds.files)} files, {results} results")
        db = work / "history.db"
        _, t_import = run([warden, "import", "junit", "--run-per-file", "--history", f"sqlite:{db}",
                           *ds.files])
        size = sqlite_size(db)
        out, t_prune = run([warden, "prune", "--older-than", "27d", "--history", f"sqlite:{db}",
                            "--format", "json"])
        pruned = json.loads(out)
        c = sqlite3.connect(db)
        left = c.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        c.close()
        rows["SQLite"] = dict(results=results, import_s=t_import, bytes=size, prune_s=t_prune,
                              pruned=pruned["results"], left=left, after=sqlite_size(db))
        h.log(f"SQLite: {rows['SQLite']}")
        if not args.no_postgres and (bin_dir := h.pg_bin_dir()) is not None:
            pg = h.PgServer(bin_dir)
            pg.start()
            pg.createdb("size")
            url = pg.url("size")
            _, t_import = run([warden, "import", "junit", "--run-per-file", "--history", url, *ds.files])
            pg.psql("size", "-c", "VACUUM FULL")
            pg.psql("size", "-c", "ANALYZE")

            def pg_sizes():
                total = int(pg.psql("size", "-At", "-c", "SELECT pg_database_size('size')").strip())
                # Each table with its partitions (`results` is partitioned on
                # PostgreSQL since migration 0012: the parent holds no rows).
                tables = int(pg.psql("size", "-At", "-c", "SELECT SUM(pg_total_relation_size(p.relid)) FROM "
                                     "unnest(ARRAY[" + ",".join(f"'{t}'" for t in TABLES)
                                     + "]::regclass[]) c, pg_partition_tree(c) p").strip())
                return total, tables

            total, tables = pg_sizes()
            out, t_prune = run([warden, "prune", "--older-than", "27d", "--history", url,
                                "--format", "json"])
            pruned = json.loads(out)
            left = int(pg.psql("size", "-At", "-c", "SELECT COUNT(*) FROM results").strip())
            pg.psql("size", "-c", "VACUUM FULL")
            after, after_tables = pg_sizes()
            rows["PostgreSQL"] = dict(results=results, import_s=t_import, bytes=total, tables=tables,
                                      prune_s=t_prune, pruned=pruned["results"], left=left,
                                      after=after, after_tables=after_tables)
            h.log(f"PostgreSQL: {rows['PostgreSQL']}")
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("| store | results | size | bytes/result | per 1M results | prune (rows removed, time) |")
    print("|---|---:|---:|---:|---:|---|")
    for name, r in rows.items():
        b = r.get("tables", r["bytes"])
        print(f"| {name} | {r['results']:,} | {r['bytes'] / 2**20:.1f} MiB"
              + (f" (tables {b / 2**20:.1f} MiB)" if "tables" in r else "")
              + f" | {b / r['results']:.0f} | {b / r['results'] * 1e6 / 2**20:.0f} MiB"
              f" | {r['pruned']:,} results in {r['prune_s']:.1f} s "
              f"({r['pruned'] / max(r['prune_s'], 1e-9):,.0f}/s); {r['left']:,} left |")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
