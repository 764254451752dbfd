#!/usr/bin/env python3
"""The dashboard's navigation pages at scale: `warden serve`'s runs list,
durations (30 days, 7 days, with a label filter), a comparison of two runs
and the search, over bench/scale.py's generated SQLite history (5,000 tests
x N/5,000 runs over a year), median of 5 after one warm-up. Prints a table;
writes nothing. Needs the release build (cargo build --release).

    python3 bench/dashboard_nav.py 1000000
    python3 bench/dashboard_nav.py 10000000    # ~2 min to generate, ~1.5 GB under /tmp
"""
import sqlite3, statistics, subprocess, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402

warden = Path(__file__).resolve().parent.parent / "target" / "release" / "warden"
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
tests = 5000
n_runs = n // tests
work = Path(tempfile.mkdtemp(prefix="dash-scale-", dir="/tmp"))
path = work / "h.db"
url = f"sqlite:{path}"
t0 = time.monotonic()
scale.create_schema(warden, url, work)
con = sqlite3.connect(path)
with con:
    for q in scale.CLEAR:
        con.execute(q)
con.close()
scale.sqlite_generate(path, tests, n_runs, int(time.time() * 1000))
subprocess.run([str(warden), "durations", "--batches", "--history", url], check=True, stdout=subprocess.DEVNULL)
con = sqlite3.connect(path); con.execute("ANALYZE"); con.close()
print(f"generated {n} results ({n_runs} runs) in {time.monotonic()-t0:.0f} s", flush=True)
last = f"run-{n_runs:08d}"
prev = f"run-{n_runs-5:08d}"
paths = [
    "/runs", "/api/runs",
    "/durations", "/api/durations", "/durations?since=7d", "/durations?arch=x86_64",
    f"/compare?a={prev}&b={last}", f"/api/compare?a={prev}&b={last}",
    f"/compare?a=run-00000001&b={last}",
    "/search?q=" + scale.test_name(1)[:6], "/search?q=zzz_nothing", "/api/search?q=a",
]
server = scale.Server(warden, url)
try:
    for p in paths:
        server.get(p)
        samples = []
        for _ in range(5):
            s, code, body = server.get(p)
            assert code == 200, (p, code, body[:300])
            samples.append(s)
        print(f"{p:60s} median {statistics.median(samples)*1000:8.1f} ms  (min {min(samples)*1000:.1f}, {len(body)} bytes)", flush=True)
finally:
    server.stop()
    import shutil; shutil.rmtree(work)
