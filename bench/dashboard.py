#!/usr/bin/env python3
"""warden dashboard benchmark: `warden serve` over a SQLite history of
1,000,000 results; how long the flaky page (`GET /flaky`, `GET /api/flaky`)
takes, against `warden flaky --format json` on the same store as the
baseline. Writes the `## Dashboard` section of BENCHMARKS.md (between
`<!-- dashboard:begin -->` and `<!-- dashboard:end -->`, leaving the rest of
the file alone).

    python3 bench/dashboard.py            # 10,000 tests x 100 runs = 1,000,000 results (~3 minutes)
    python3 bench/dashboard.py --quick    # 10,000 tests x 10 runs, fewer repetitions (smoke test)

Data: bench/history.py's generated JUnit files (same seed, same tests: ~2%
flaky, some regressing, broken and skipped; one file per run), imported
with `warden import junit --run-per-file` into a fresh SQLite store.

Measured: the wall time of one HTTP request on a new connection (Python's
http.client: connect, send, read the whole body), server already started
and warmed up with one untimed request per route; the baseline is the
whole `warden flaky` process (start, open, query, print), as a user gets
the same numbers today. Repetitions are interleaved in a seeded shuffled
order (this machine is shared). The other pages are timed too, for
information (fewer repetitions).

Stdlib only (Python >= 3.9). Linux only. Every process the harness starts
gets a unique `BENCH_MARK=<uuid>` in its environment; afterwards
/proc/*/environ is scanned for that exact entry, and only exact matches are
reported and SIGKILLed (see bench/run.py).
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402
    REPO, Noise, Stats, kill_marked, loadavg, log, machine_info, marked_env, order, timed_run,
    report_tail, warden_binary, write_section,
)
import history  # noqa: E402

BEGIN = "<!-- dashboard:begin -->"
END = "<!-- dashboard:end -->"

TARGET_S = 1.0          # the flaky page over 1,000,000 results (the issue)
SINCE = "365d"          # every generated run, for the pages and the CLI alike
REPS = {
    #        flaky reps, other pages' reps, runs
    "full": (9, 3, 100),
    "quick": (3, 2, 10),
}


def get(port: int, path: str) -> tuple[float, int, bytes]:
    """(seconds, status, body) of one GET on a fresh connection."""
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        c.request("GET", path, headers={"Host": f"127.0.0.1:{port}"})
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    return time.perf_counter() - t0, r.status, body


class Server:
    """`warden serve --bind 127.0.0.1:0` in a marked environment."""

    def __init__(self, warden: Path, location: str, cwd: Path):
        self.env, self.mark = marked_env()
        self.proc = subprocess.Popen(
            [str(warden), "serve", "--bind", "127.0.0.1:0", "--history", location],
            env=self.env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not m:
            self.stop()
            raise RuntimeError(f"warden serve did not say where it listens: {line!r}")
        self.port = int(m.group(1))

    def stop(self) -> list[str]:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return kill_marked(self.mark)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 runs (100,000 results), fewer repetitions")
    ap.add_argument("--no-build", action="store_true", help="use the already built release binary")
    ap.add_argument("--warden", help="warden binary to use (implies --no-build)")
    ap.add_argument("--output", default=str(REPO / "BENCHMARKS.md"),
                    help="report to update (default: BENCHMARKS.md; only the dashboard section is replaced)")
    ap.add_argument("--workdir", help="scratch directory (default: a new one under $TMPDIR, removed after)")
    args = ap.parse_args()
    if sys.platform != "linux":
        print("bench/dashboard.py: Linux only", file=sys.stderr)
        return 2
    warden = warden_binary("bench/dashboard.py", args.warden, args.no_build)
    if warden is None:
        return 2

    flaky_reps, page_reps, runs = REPS["quick" if args.quick else "full"]
    parent = Path(args.workdir).resolve() if args.workdir else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="warden-dashboard-bench-", dir=parent))
    errors: list[str] = []
    t0 = time.monotonic()
    info = machine_info(warden)
    load_before = loadavg()
    samples: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    noise = None
    server = None
    try:
        data = work / "junit"
        data.mkdir()
        log(f"generating {runs} JUnit files")
        ds = history.generate(data, runs)
        db = work / "history.db"
        location = f"sqlite:{db}"
        env, mark = marked_env()
        ti = time.monotonic()
        r = timed_run([str(warden), "import", "junit", "--run-per-file", "--history", location,
                       *map(str, ds.files)], env=env, cwd=work)
        left = kill_marked(mark)
        if r.rc != 0 or left:
            raise RuntimeError(f"import failed (exit {r.rc}, left {left})")
        results = history.sqlite_count(db)
        log(f"imported {results:,} results in {time.monotonic() - ti:.1f} s")

        server = Server(warden, location, work)
        log(f"warden serve on port {server.port}")
        q = urllib.parse.urlencode({"since": SINCE})
        flaky_kinds = {
            "GET /flaky": f"/flaky?{q}",
            "GET /api/flaky": f"/api/flaky?{q}",
        }
        cli_out = work / "cli.json"

        def cli() -> float | None:
            env, mark = marked_env()
            with open(cli_out, "wb") as so:
                r = timed_run([str(warden), "flaky", "--format", "json", "--limit", "0", "--since", SINCE,
                               "--history", location], env=env, cwd=work, stdout=so)
            left = kill_marked(mark)
            if r.rc != 0 or left:
                errors.append(f"warden flaky: exit {r.rc}, left {left}")
                return None
            return r.wall

        # Warm-up (page cache, the server's first connection), and a check
        # that the page's API lists what the CLI lists.
        for path in flaky_kinds.values():
            _, status, body = get(server.port, path)
            if status != 200:
                errors.append(f"{path}: HTTP {status}: {body[:200]!r}")
        cli()
        api_rows = json.loads(get(server.port, f"/api/flaky?{q}&limit=0")[2])
        cli_rows = json.loads(cli_out.read_text())
        same = [r["test"] for r in api_rows] == [r["test"] for r in cli_rows]
        if not same:
            errors.append(f"/api/flaky lists {len(api_rows)} tests, warden flaky {len(cli_rows)}: not the same")
        log(f"flaky: {len(api_rows)} rows from the API, {len(cli_rows)} from the CLI; same: {same}")

        kinds = [*flaky_kinds, "warden flaky --format json (CLI)"]
        samples = {k: [] for k in kinds}
        noise = Noise()
        for rep in range(flaky_reps):
            for kind in order(kinds, rep):
                if kind in flaky_kinds:
                    dt, status, body = get(server.port, flaky_kinds[kind])
                    sizes[kind] = len(body)
                    if status != 200:
                        errors.append(f"{kind}: HTTP {status}")
                        continue
                else:
                    dt = cli()
                    if dt is None:
                        continue
                samples[kind].append(dt)
                log(f"rep {rep + 1}/{flaky_reps} {kind}: {dt * 1000:.1f} ms")

        # The other pages, for information.
        race = next((r["test"] for r in api_rows), None)
        latest = json.loads(get(server.port, "/api/runs?limit=1")[2])
        others = {
            "GET /runs (latest 50 runs)": f"/runs?{q}",
            "GET /runs/{uuid}": f"/runs/{latest[0]['uuid']}" if latest else None,
            "GET /test?name=… (a flaky test)": f"/test?{urllib.parse.urlencode({'since': SINCE, 'name': race})}"
            if race else None,
            "GET /regressed": f"/regressed?{q}",
        }
        for kind, path in others.items():
            if path is None:
                continue
            get(server.port, path)
            samples[kind] = []
            for _ in range(page_reps):
                dt, status, body = get(server.port, path)
                if status != 200:
                    errors.append(f"{kind}: HTTP {status}")
                    break
                samples[kind].append(dt)
                sizes[kind] = len(body)
            log(f"{kind}: {', '.join(f'{s * 1000:.1f} ms' for s in samples[kind])}")
        noise_info = noise.stop()
    finally:
        if server is not None:
            left = server.stop()
            if left:
                errors.append(f"processes left after warden serve stopped (killed): {left}")
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - t0
    block = render(info, args, runs, results, samples, sizes, len(api_rows), flaky_reps, page_reps,
                   noise_info, errors, (load_before, loadavg()), elapsed)
    write_section(Path(args.output), block, BEGIN, END, "bench/dashboard.py", REPRO_LINE)
    log(f"updated {args.output} ({elapsed:.0f} s)")
    for e in errors:
        log("ERROR: " + e)
    return 1 if errors else 0


def ms(s: float) -> str:
    return f"{s * 1000:.1f} ms"


def render(info, args, runs, results, samples, sizes, rows, flaky_reps, page_reps, noise_info, errors,
           loads, elapsed) -> str:
    out = [BEGIN, "## Dashboard (`warden serve`)", ""]
    w = out.append
    w(f"Written by `python3 bench/dashboard.py{' --quick' if args.quick else ''}` "
      f"on {info['date']} ({elapsed:.0f} s); do not edit by hand.")
    w("")
    w(f"Store: SQLite, {results:,} results ({runs} runs of bench/history.py's generated JUnit, "
      f"`warden import junit --run-per-file`); the flaky list has {rows} tests. "
      f"Window `since={SINCE}` (every run) for the pages and the CLI alike. "
      "Each request on a new connection, the server warmed up; the baseline is the whole CLI process.")
    w("")
    w("| request | median | min – max | n | response | target |")
    w("| --- | --- | --- | --- | --- | --- |")
    for kind, values in samples.items():
        st = Stats(values)
        target = ""
        if kind in ("GET /flaky", "GET /api/flaky"):
            ok = st.n and st.median <= TARGET_S
            target = f"< {TARGET_S:.0f} s: {'PASS' if ok else '**FAIL**'}"
        size = f"{sizes[kind] / 1024:.0f} KiB" if kind in sizes else "CLI stdout"
        w(f"| {kind} | {ms(st.median) if st.n else 'n/a'} | "
          f"{ms(st.min) if st.n else 'n/a'} – {ms(st.max) if st.n else 'n/a'} | {st.n} | {size} | {target} |")
    w("")
    w(f"Repetitions: {flaky_reps} of each flaky measurement, interleaved; {page_reps} of each other page.")
    w(f"Load average before/after: {loads[0]} / {loads[1]}. {noise_info}")
    out.extend(report_tail(errors, info))
    out.append(END)
    return "\n".join(out)


REPRO_LINE = ("python3 bench/dashboard.py # warden serve: the flaky page over 1,000,000 results; "
              "rewrites only its section")




if __name__ == "__main__":
    sys.exit(main())
