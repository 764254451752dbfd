#!/usr/bin/env python3
"""warden with 10,000 and 100,000 batches: the time from the last batch's
end to warden's exit (nothing quadratic may hide there). Writes the
`## Many batches` section of BENCHMARKS.md (between
`<!-- many-batches:begin -->` and `<!-- many-batches:end -->`).

    python3 bench/many_batches.py            # 10k x3 and 100k x1 (~25 min on 2 cores)
    python3 bench/many_batches.py --quick    # 10k x1 and 20k x1

Every batch is `command = ["true"]`, `max-parallel = 2`, the SQLite history
on (`--history sqlite:…`), stdout a pipe (plain lines). The harness stamps
every line warden prints as it arrives; the last batch's end is the arrival
of the last `PASS` line (printed when warden hears the batch finished), the
exit is `wait4`'s return. Arms, interleaved:

- N = 10,000 and N = 100,000 batches;
- baseline: N = 100 batches, the same config otherwise: the fixed cost of
  an exit (closing the store, the summary, the last JUnit write).

Measured per arm: batch end -> exit, the whole run, batches per second over
the first and the last tenth of the run (a per-batch cost that grows with
the run shows as a drop), warden's peak RSS (`ru_maxrss`) and the JUnit
size. Target (issue 13): <= 2 s from the last batch's end to the exit at
N = 100,000.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import REPO, Stats, kill_marked, log, machine_info, marked_env, warden_binary, write_section  # noqa: E402

BEGIN = "<!-- many-batches:begin -->"
END = "<!-- many-batches:end -->"
BASELINE = 100
TARGET_S = 2.0


def config(path: Path, n: int) -> None:
    with path.open("w") as f:
        f.write("[run]\nmax-parallel = 2\n\n")
        for i in range(n):
            f.write(f'[[batch]]\nname = "b{i}"\ncommand = ["true"]\n\n')


def one(warden: Path, work: Path, n: int, rep: int, containment: str | None) -> dict:
    d = work / f"n{n}-{rep}"
    d.mkdir()
    cfg = d / "warden.toml"
    config(cfg, n)
    env, mark = marked_env()
    argv = [str(warden), "run", "-c", str(cfg), "--artifacts", str(d / "artifacts"),
            "--history", f"sqlite:{d / 'history.db'}"]
    if containment:
        argv += ["--containment", containment]
    passes: list[float] = []
    others: list[bytes] = []
    t0 = time.time()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def read_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.lstrip().startswith(b"PASS"):
                passes.append(time.time())
            elif not line.lstrip().startswith(b"START") and len(others) < 50:
                others.append(line)

    err: list[bytes] = []
    reader = threading.Thread(target=read_out)
    err_reader = threading.Thread(target=lambda: err.append(proc.stderr.read() if proc.stderr else b""))
    reader.start()
    err_reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    exited = time.time()
    reader.join()
    err_reader.join()
    rc = os.waitstatus_to_exitcode(status)
    leftovers = kill_marked(mark)
    if leftovers:
        raise SystemExit(f"left processes behind: {leftovers}")
    if rc != 0 or len(passes) != n:
        text = b"".join(err + others).decode(errors="replace")
        raise SystemExit(f"n={n}: warden exited {rc} with {len(passes)}/{n} passed:\n{text[-4000:]}")
    code = (d / "artifacts" / "exit-code").read_text().strip()
    if code != "0":
        raise SystemExit(f"n={n}: exit-code file says {code!r}")
    tenth = max(n // 10, 1)

    def rate(ts: list[float]) -> float:
        return (len(ts) - 1) / max(ts[-1] - ts[0], 1e-6) if len(ts) > 1 else float("nan")

    junit = d / "artifacts" / "junit.xml"
    res = {
        "after_end_s": exited - passes[-1],
        "total_s": exited - t0,
        "rate_first": rate(passes[:tenth]),
        "rate_last": rate(passes[-tenth:]),
        "rss_mib": usage.ru_maxrss / 1024,
        "junit_mib": junit.stat().st_size / 2**20,
    }
    shutil.rmtree(d)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", help="comma-separated batch counts (default 10000,100000; 10000,20000 with --quick)")
    ap.add_argument("--reps", type=int, help="repetitions of the smaller sizes and the baseline (default 3; 1 with --quick)")
    ap.add_argument("--large-reps", type=int, default=1, help="repetitions of the largest size (default 1)")
    ap.add_argument("--containment", choices=["cgroup", "pgroup"],
                    help="passed to warden run (default: warden's own choice)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--warden")
    ap.add_argument("--output", default=str(REPO / "BENCHMARKS.md"))
    args = ap.parse_args()
    sizes = [int(s) for s in (args.sizes or ("10000,20000" if args.quick else "10000,100000")).split(",")]
    reps = args.reps or (1 if args.quick else 3)
    warden = warden_binary("many_batches.py", args.warden, args.no_build)
    if warden is None:
        return 1
    largest = max(sizes)
    arms = [BASELINE] + sizes
    results: dict[int, list[dict]] = {n: [] for n in arms}
    work = Path(tempfile.mkdtemp(prefix="warden-many-batches-"))
    try:
        for rep in range(reps):
            for n in arms if rep % 2 == 0 else list(reversed(arms)):
                if n == largest and rep >= args.large_reps:
                    continue
                r = one(warden, work, n, rep, args.containment)
                log(f"n={n} rep {rep}: {r}")
                results[n].append(r)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(n: int, key: str) -> float:
        return Stats([r[key] for r in results[n]]).median

    base = med(BASELINE, "after_end_s")
    rows = []
    for n in arms:
        after = med(n, "after_end_s")
        target = ""
        if n == largest:
            target = f"<= {TARGET_S:.0f} s: {'met' if after <= TARGET_S else 'NOT met'}"
        rows.append(
            f"| {n:,}{' (baseline)' if n == BASELINE else ''} | {len(results[n])} | {after:.2f} s | "
            f"{after / max(base, 1e-3):.1f} | {med(n, 'total_s'):.1f} s | "
            f"{med(n, 'rate_first'):.0f} / {med(n, 'rate_last'):.0f} | {med(n, 'rss_mib'):.0f} MiB | "
            f"{med(n, 'junit_mib'):.1f} MiB | {target} |"
        )
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    machine = machine_info(warden)
    table = "\n".join(rows)
    block = f"""{BEGIN}
## Many batches

`python3 bench/many_batches.py{' --quick' if args.quick else ''}{' --containment ' + args.containment if args.containment else ''}{' --reps ' + str(reps) if args.reps else ''}` at {rev}: N batches of `command = ["true"]`,
`max-parallel = 2`, the SQLite history on, stdout a pipe; medians of the repetitions shown, arms
interleaved. "Batch end -> exit": from the last batch's `PASS` line reaching the harness to warden's
exit. Baseline: {BASELINE} batches in the same run (ratio = this arm / baseline).

| batches | reps | batch end -> exit | ratio | whole run | batches/s, first / last tenth | peak RSS | JUnit | target |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{table}

Machine: {machine.get('cpu', '?')}, {machine.get('nproc', '?')} cores, {machine.get('kernel', '?')}.
{END}"""
    write_section(Path(args.output), block, BEGIN, END, "bench/many_batches.py",
                  "python3 bench/many_batches.py    # 10k and 100k batches: time from the last batch's end to the exit")
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
