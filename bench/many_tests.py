#!/usr/bin/env python3
"""warden with a million tests in one batch: memory and the time from the
batch's end to warden's exit. Writes the `## Many tests` section of
BENCHMARKS.md (between `<!-- many-tests:begin -->` and
`<!-- many-tests:end -->`).

    python3 bench/many_tests.py            # 1,000,000 tests, 3 repetitions
    python3 bench/many_tests.py --quick    # 200,000 tests, 1 repetition

One batch prints N TAP results (`ok 1 - case_1` … with 1 in 1,000 failing
and each failing test printing two lines of diagnostics), then writes the
time it ended to a file. Arms, interleaved:

- `format = "tap"`, the SQLite history on (`--history sqlite:…`): warden
  parses every result, keeps what the reports need, writes its JUnit,
  records N results;
- baseline: the same output with `format = "none"` and the same history
  (one result: the batch).

Measured per arm: warden's peak RSS (`wait4`'s `ru_maxrss`: the largest of
warden and the processes it waited for; the generator is small), the time
from the batch's end (its last act) to warden's exit, and the JUnit size.
Targets (issue 12): peak RSS <= 256 MiB and <= 5 s from the batch's end to
the exit for N = 1,000,000.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import REPO, Stats, log, machine_info, marked_env, kill_marked, toml_str, warden_binary, write_section  # noqa: E402

BEGIN = "<!-- many-tests:begin -->"
END = "<!-- many-tests:end -->"

GENERATOR = r'''
import sys, time
n = int(sys.argv[1])
out = sys.stdout
out.write("TAP version 13\n1..%d\n" % n)
buf = []
for i in range(1, n + 1):
    if i % 1000 == 0:
        buf.append("# case_%d: checking\n# expected 1, got 2\nnot ok %d - case_%d\n" % (i, i, i))
    else:
        buf.append("ok %d - case_%d\n" % (i, i))
    if len(buf) >= 10000:
        out.write("".join(buf)); buf = []
out.write("".join(buf))
out.flush()
with open(sys.argv[2], "w") as f:
    f.write(repr(time.time()))
'''


def config(path: Path, gen: Path, n: int, end: Path, fmt: str) -> None:
    path.write_text(
        "[run]\nmax-parallel = 1\n\n[[batch]]\nname = \"many\"\n"
        f"command = [{toml_str(sys.executable)}, {toml_str(str(gen))}, \"{n}\", {toml_str(str(end))}]\n"
        f"format = \"{fmt}\"\ntimeout = \"10m\"\n"
    )


def one(warden: Path, work: Path, n: int, fmt: str, rep: int) -> dict:
    d = work / f"{fmt}-{rep}"
    d.mkdir()
    gen = work / "gen.py"
    end = d / "end"
    cfg = d / "warden.toml"
    config(cfg, gen, n, end, fmt)
    env, mark = marked_env()
    argv = [str(warden), "run", "-c", str(cfg), "--artifacts", str(d / "artifacts"),
            "--history", f"sqlite:{d / 'history.db'}"]
    t0 = time.time()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    exited = time.time()
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    leftovers = kill_marked(mark)
    if leftovers:
        raise SystemExit(f"left processes behind: {leftovers}")
    want = 1 if fmt == "tap" else 1  # 1 in 1000 fails: exit 1 either way for tap; none: exit 0
    if fmt == "none":
        want = 0
    if proc.returncode != want:
        raise SystemExit(f"{fmt}: warden exited {proc.returncode}, expected {want}:\n{err[-2000:]}")
    batch_end = float(end.read_text())
    junit = d / "artifacts" / "junit.xml"
    res = {
        "rss_mib": usage.ru_maxrss / 1024,
        "after_end_s": exited - batch_end,
        "total_s": exited - t0,
        "junit_mib": junit.stat().st_size / 2**20 if junit.exists() else 0.0,
    }
    shutil.rmtree(d)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tests", type=int, help="tests in the batch (default 1,000,000; 200,000 with --quick)")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--warden")
    ap.add_argument("--output", default=str(REPO / "BENCHMARKS.md"))
    args = ap.parse_args()
    n = args.tests or (200_000 if args.quick else 1_000_000)
    reps = args.reps or (1 if args.quick else 3)
    warden = warden_binary("many_tests.py", args.warden, args.no_build)
    if warden is None:
        return 1
    work = Path(tempfile.mkdtemp(prefix="warden-many-"))
    try:
        (work / "gen.py").write_text(GENERATOR)
        results: dict[str, list[dict]] = {"tap": [], "none": []}
        for rep in range(reps):
            for fmt in ("tap", "none") if rep % 2 == 0 else ("none", "tap"):
                r = one(warden, work, n, fmt, rep)
                log(f"{fmt} rep {rep}: {r}")
                results[fmt].append(r)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(fmt: str, key: str) -> float:
        return Stats([r[key] for r in results[fmt]]).median

    tap_rss, none_rss = med("tap", "rss_mib"), med("none", "rss_mib")
    tap_end, none_end = med("tap", "after_end_s"), med("none", "after_end_s")
    rss_ok = "met" if tap_rss <= 256 else "NOT met"
    end_ok = "met" if tap_end <= 5 else "NOT met"
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    machine = machine_info(warden)
    block = f"""{BEGIN}
## Many tests

`python3 bench/many_tests.py{' --quick' if args.quick else ''}` at {rev}: one batch printing {n:,} TAP results
(1 in 1,000 failing, with two diagnostic lines each), the SQLite history on; medians of {reps}
repetition(s), arms interleaved. Baseline: the same output with `format = "none"` in the same run.

| | `format = "tap"` | `format = "none"` (baseline) | ratio | target |
| --- | --- | --- | --- | --- |
| warden's peak RSS | {tap_rss:.0f} MiB | {none_rss:.0f} MiB | {tap_rss / none_rss:.1f} | <= 256 MiB: {rss_ok} |
| batch end -> warden exit | {tap_end:.2f} s | {none_end:.2f} s | {tap_end / max(none_end, 1e-3):.1f} | <= 5 s: {end_ok} |
| whole run | {med('tap', 'total_s'):.2f} s | {med('none', 'total_s'):.2f} s | {med('tap', 'total_s') / med('none', 'total_s'):.2f} | |
| JUnit file | {med('tap', 'junit_mib'):.1f} MiB | {med('none', 'junit_mib'):.2f} MiB | | |

Machine: {machine.get('cpu', '?')}, {machine.get('kernel', '?')}.
{END}"""
    write_section(Path(args.output), block, BEGIN, END, "bench/many_tests.py",
                  "python3 bench/many_tests.py      # a million tests in one batch: memory, time after its end")
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
