#!/usr/bin/env python3
"""warden dashboard under load: `warden serve` over a SQLite history of
200,000 results, hit by `wrk` (Debian package `wrk`) with 1, 50 and 80
concurrent connections on the flaky page. Writes the `## Dashboard under
load` section of BENCHMARKS.md (between `<!-- dashboard-load:begin -->` and
`<!-- dashboard-load:end -->`, leaving the rest of the file alone).

    python3 bench/dashboard_load.py                  # ~2 minutes after the build
    python3 bench/dashboard_load.py --before PATH    # also measure another warden binary (e.g. an older build)
    python3 bench/dashboard_load.py --quick          # 3 s per measurement instead of 10

Data: bench/history.py's generated JUnit files, 20 runs of its 10,000 tests
(200,000 results), imported with `warden import junit --run-per-file`.

Measured, each for a fixed time with keep-alive connections (`wrk -t2
--latency`, 60 s request timeout), the server warmed up:
- `GET /flaky?since=365d` (the same page, as a crowd looking at one
  dashboard asks it) with 1 connection (the single-request latency), 50
  (p50 against the single request: target within 2x) and 80 (target: no
  5xx; counted by a wrk script from the status of every response);
- the same page with a different `limit` on every request (50..99, so
  concurrent requests are distinct and none can share an answer) with 1
  and 50 connections: what concurrency costs when every request is
  computed, bounded by the machine's cores (with C cores, 50 concurrent
  CPU-bound requests can't have a p50 below about 50/C single requests);
- then the time from SIGTERM to exit while a client holds a half-sent
  request open.

Stdlib only (Python >= 3.9). Linux only. Every process the harness starts
gets a unique `BENCH_MARK=<uuid>` in its environment; afterwards
/proc/*/environ is scanned for that exact entry, and only exact matches are
reported and SIGKILLed (see bench/run.py).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402
    REPO, kill_marked, loadavg, log, machine_info, marked_env, timed_run, warden_binary,
    report_tail, write_section,
)
from dashboard import Server, get  # noqa: E402
import history  # noqa: E402

BEGIN = "<!-- dashboard-load:begin -->"
END = "<!-- dashboard-load:end -->"
RUNS = 20                # x 10,000 tests = 200,000 results
SINCE = "365d"
PAGE = f"/flaky?since={SINCE}"
RATIO_TARGET = 2.0

# Counts responses by status class in every wrk thread; with `distinct`,
# each request asks another `limit` (50..99).
LUA = r"""
local threads = {}
local distinct = %(distinct)s
function setup(thread) table.insert(threads, thread) end
function init(args) n5 = 0; n4 = 0; n = math.random(0, 49) end
function request()
  if distinct then
    n = (n + 1) %% 50
    return wrk.format("GET", "%(page)s&limit=" .. (50 + n))
  end
  return wrk.format("GET", "%(page)s")
end
function response(status, headers, body)
  if status >= 500 then n5 = n5 + 1 elseif status >= 400 then n4 = n4 + 1 end
end
function done(summary, latency, requests)
  local s5, s4 = 0, 0
  for _, t in ipairs(threads) do s5 = s5 + t:get("n5"); s4 = s4 + t:get("n4") end
  io.write(string.format("WARDEN 5xx=%%d 4xx=%%d p50_us=%%d p99_us=%%d requests=%%d\n",
    s5, s4, latency:percentile(50), latency:percentile(99), summary.requests))
  io.write(string.format("WARDEN socket_errors=%%d\n",
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def wrk(port: int, conns: int, seconds: int, distinct: bool, work: Path) -> dict:
    script = work / f"wrk-{'distinct' if distinct else 'same'}.lua"
    script.write_text(LUA % {"distinct": "true" if distinct else "false", "page": PAGE})
    threads = min(2, conns)
    env, mark = marked_env()
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "60s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}/"],
        env=env, capture_output=True, text=True, timeout=seconds + 120)
    kill_marked(mark)
    m = re.search(r"WARDEN 5xx=(\d+) 4xx=(\d+) p50_us=(\d+) p99_us=(\d+) requests=(\d+)", out.stdout)
    e = re.search(r"WARDEN socket_errors=(\d+)", out.stdout)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if out.returncode != 0 or not m or not e:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    return {
        "conns": conns, "distinct": distinct,
        "5xx": int(m.group(1)), "4xx": int(m.group(2)),
        "p50": int(m.group(3)) / 1e6, "p99": int(m.group(4)) / 1e6,
        "requests": int(m.group(5)), "socket_errors": int(e.group(1)),
        "rps": float(rps.group(1)) if rps else 0.0,
    }


def measure(warden: Path, location: str, work: Path, seconds: int, errors: list[str], label: str) -> list[dict]:
    server = Server(warden, location, work)
    rows = []
    try:
        log(f"{label}: warden serve on port {server.port}")
        for _ in range(3):  # warm-up: page cache, first connections
            _, status, body = get(server.port, PAGE)
            if status != 200:
                errors.append(f"{label}: {PAGE}: HTTP {status}: {body[:200]!r}")
        for conns, distinct in [(1, False), (50, False), (80, False), (1, True), (50, True)]:
            r = wrk(server.port, conns, seconds, distinct, work)
            r["label"] = label
            rows.append(r)
            log(f"{label}: {conns} connections{' (distinct)' if distinct else ''}: p50 {ms(r['p50'])}, "
                f"p99 {ms(r['p99'])}, {r['requests']} requests, 5xx {r['5xx']}, socket errors {r['socket_errors']}")
        # SIGTERM while a client holds a half-sent request open.
        half = socket.create_connection(("127.0.0.1", server.port))
        half.sendall(f"GET {PAGE} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode())
        t0 = time.monotonic()
        left = server.stop()
        stop_s = time.monotonic() - t0
        server = None
        if left:
            errors.append(f"{label}: processes left after warden serve stopped (killed): {left}")
        half.close()
        rows.append({"label": label, "stop": stop_s})
    finally:
        if server is not None:
            server.stop()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 s per measurement instead of 10")
    ap.add_argument("--no-build", action="store_true", help="use the already built release binary")
    ap.add_argument("--warden", help="warden binary to use (implies --no-build)")
    ap.add_argument("--before", help="another warden binary to measure the same way, for comparison")
    ap.add_argument("--output", default=str(REPO / "BENCHMARKS.md"),
                    help="report to update (default: BENCHMARKS.md; only this section is replaced)")
    args = ap.parse_args()
    if sys.platform != "linux":
        print("bench/dashboard_load.py: Linux only", file=sys.stderr)
        return 2
    if shutil.which("wrk") is None:
        print("bench/dashboard_load.py: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    warden = warden_binary("bench/dashboard_load.py", args.warden, args.no_build)
    if warden is None:
        return 2
    seconds = 3 if args.quick else 10
    work = Path(tempfile.mkdtemp(prefix="warden-dashboard-load-"))
    errors: list[str] = []
    t0 = time.monotonic()
    info = machine_info(warden)
    load_before = loadavg()
    rows: list[dict] = []
    try:
        data = work / "junit"
        data.mkdir()
        log(f"generating {RUNS} JUnit files")
        ds = history.generate(data, RUNS)
        db = work / "history.db"
        location = f"sqlite:{db}"
        env, mark = marked_env()
        r = timed_run([str(warden), "import", "junit", "--run-per-file", "--history", location,
                       *map(str, ds.files)], env=env, cwd=work)
        left = kill_marked(mark)
        if r.rc != 0 or left:
            raise RuntimeError(f"import failed (exit {r.rc}, left {left})")
        results = history.sqlite_count(db)
        log(f"imported {results:,} results")
        rows += measure(warden, location, work, seconds, errors, "this build")
        if args.before:
            rows += measure(Path(args.before).resolve(), location, work, seconds, errors, "before")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - t0
    block = render(info, args, results, rows, seconds, errors, (load_before, loadavg()), elapsed)
    write_section(Path(args.output), block, BEGIN, END, "bench/dashboard_load.py", REPRO_LINE)
    log(f"updated {args.output} ({elapsed:.0f} s)")
    for e in errors:
        log("ERROR: " + e)
    return 1 if errors else 0


def ms(s: float) -> str:
    return f"{s * 1000:.1f} ms"


def render(info, args, results, rows, seconds, errors, loads, elapsed) -> str:
    out = [BEGIN, "## Dashboard under load (`warden serve`, wrk)", ""]
    w = out.append
    flags = " --quick" if args.quick else ""
    w(f"Written by `python3 bench/dashboard_load.py{flags}` on {info['date']} ({elapsed:.0f} s); "
      "do not edit by hand.")
    w("")
    w(f"Store: SQLite, {results:,} results ({RUNS} runs of bench/history.py's generated JUnit). "
      f"`wrk --latency`, keep-alive connections, {seconds} s per line, page `GET {PAGE}`; "
      "\"distinct\": every request another `limit` (50..99), so none can share an answer. "
      f"{os.cpu_count()} CPUs.")
    w("")
    w("| build | connections | requests | p50 | p99 | req/s | 5xx | socket errors | p50 / single | target |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    singles = {(r["label"], r["distinct"]): r["p50"] for r in rows if r.get("conns") == 1}
    for r in rows:
        if "conns" not in r:
            continue
        single = singles.get((r["label"], r["distinct"]))
        ratio = r["p50"] / single if single else 0.0
        target = ""
        if not r["distinct"] and r["conns"] == 50:
            target = f"p50 <= {RATIO_TARGET:.0f}x single: {'PASS' if ratio <= RATIO_TARGET else '**FAIL**'}"
        if not r["distinct"] and r["conns"] == 80:
            ok = r["5xx"] == 0 and r["socket_errors"] == 0
            target = f"no 5xx: {'PASS' if ok else '**FAIL**'}"
        kind = f"{r['conns']}{' distinct' if r['distinct'] else ''}"
        w(f"| {r['label']} | {kind} | {r['requests']} | {ms(r['p50'])} | {ms(r['p99'])} | {r['rps']:.0f} | "
          f"{r['5xx']} | {r['socket_errors']} | {ratio:.1f}x | {target} |")
    stops = [r for r in rows if "stop" in r]
    if stops:
        w("")
        w("SIGTERM to exit, with one client holding a half-sent request open "
          "(bench/dashboard.py's harness kills it after 10 s): " +
          ", ".join(f"{r['label']} {r['stop'] * 1000:.0f} ms" for r in stops) + ".")
    w("")
    w(f"Load average before/after: {loads[0]} / {loads[1]}.")
    out.extend(report_tail(errors, info))
    out.append(END)
    return "\n".join(out)


REPRO_LINE = ("python3 bench/dashboard_load.py # warden serve under 1/50/80 concurrent wrk connections, "
              "200,000 results; rewrites only its section")


if __name__ == "__main__":
    sys.exit(main())
