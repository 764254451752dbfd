#!/usr/bin/env python3
"""warden queue-mode benchmark: 4 "machines" (4 warden processes on this
machine, one batch at a time each) sharing one PostgreSQL, running one
suite in queue mode (`warden run --queue`) against the static splits
`--partition duration:K/4` and `--partition hash:K/4`. Writes the
`## Queue mode` section of BENCHMARKS.md (between `<!-- queue:begin -->`
and `<!-- queue:end -->`, leaving the rest of the file alone).

    python3 bench/queue_mode.py            # 3 repetitions of each mode (~5 minutes)
    python3 bench/queue_mode.py --quick    # durations x 0.25, 1 repetition (~1 minute)

Data: 60 batches `sleep X` (sh -c). X is Pareto (alpha 2, fixed seed:
heavy-tailed), scaled so the 60 add up to 96 s (24 s with --quick), rounded
to 10 ms. A fixed fifth of the batches (seeded choice) are 3x slower on
machine 4 than the history says: their command sleeps 3X when the
machine's environment has `BENCH_SLOW=1` (machine 4 only). The commands are
the same on every machine (queue mode checks that).

1. Per repetition and mode, a fresh database on one throwaway PostgreSQL
   server (bench/history.py's: data in /dev/shm when there is room, no
   fsync, unix socket), seeded with `warden import junit` of one JUnit file
   holding each batch as a suite with its nominal duration (two days ago),
   so the history's p90 is every batch's nominal duration: queue mode's
   longest-first order and `duration`'s split use it.
2. The 4 wardens start together (`max-parallel = 1` each, each with its own
   artifacts directory) with `--history` on that database and, per mode,
   `--queue --run-key bench-R-queue --queue-lease 5s`, or
   `--partition duration:K/4` / `hash:K/4` for K = 1..4. Makespan = from
   just before the first spawn to the last warden's exit (warden start-up,
   store, claims and recording included).
3. Checked after every run: every batch ran exactly once (each appends a
   line to a marker file of its own) and every warden exited 0; in queue
   mode also `warden report --run-key` (exit 0, 60 cases in its JUnit).

Lower bound, with the machines' actual speeds: the fractional (LP)
relaxation of scheduling on the 4 machines, where a slow batch costs 3X on
machine 4 and X elsewhere: machine 4 takes normal work first, so
T = W/4 when the normal batches hold at least W/4 of the work, else the
balance point with some slow work on machine 4; and at least the longest
batch. Ratio = makespan / lower bound; target <= 1.15 for queue mode.
Also shown: makespan / (the work the machines did in that run / 4), a
slow batch counted 3X when machine 4 ran it (its marker line names the
machine): how well each run kept its machines busy.

Stdlib only. Every process the harness starts carries a unique
`BENCH_MARK=<uuid>`; leftovers are reported and SIGKILLed by that exact
entry (bench/run.py).
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from history import PgServer, fs_type, pg_bin_dir  # noqa: E402
from run import (  # noqa: E402
    REPO, Stats, kill_marked, loadavg, log, machine_info, marked_env, order, spread, toml_str,
    warden_binary, write_section,
)

BEGIN = "<!-- queue:begin -->"
END = "<!-- queue:end -->"
REPRO_LINE = ("python3 bench/queue_mode.py    # queue mode against --partition duration/hash, 4 wardens "
              "sharing one PostgreSQL; rewrites only its section")

SEED = 20261206
BATCHES = 60
ALPHA = 2.0
TOTAL_S = 96.0
QUICK_SCALE = 0.25
SLOW_SHARE = 0.2
SLOW_FACTOR = 3.0
MACHINES = 4
LEASE = "5s"
TARGET = 1.15
MODES = ("queue", "duration", "hash")
REPS = {"full": 3, "quick": 1}

# Variables that would change what warden does, whoever set them.
DROP = ("WARDEN_HISTORY", "WARDEN_PARTITION", "WARDEN_CONTAINMENT", "WARDEN_DEADLINE", "WARDEN_RUN_KEY",
        "JOB_TIMEOUT_MINUTES", "GITHUB_STEP_SUMMARY", "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT",
        "BUILDKITE_BUILD_ID", "CI_PIPELINE_ID", "PROW_JOB_ID", "GITHUB_SHA", "CI_COMMIT_SHA")


def durations(scale: float) -> tuple[list[float], set[int]]:
    rng = random.Random(SEED)
    raw = [rng.paretovariate(ALPHA) for _ in range(BATCHES)]
    k = TOTAL_S * scale / sum(raw)
    d = [max(0.01, round(x * k, 2)) for x in raw]
    slow = set(rng.sample(range(BATCHES), int(BATCHES * SLOW_SHARE)))
    return d, slow


def lower_bound(d: list[float], slow: set[int]) -> float:
    """The LP relaxation on 3 machines at speed 1 and one where `slow`
    batches cost SLOW_FACTOR times as much; at least the longest batch."""
    w = sum(d)
    normal = sum(x for i, x in enumerate(d) if i not in slow)
    s = w - normal
    if normal >= w / MACHINES:
        t = w / MACHINES
    else:
        # Machine 4: all normal work plus b of the slow work at 3x; the
        # other three share the rest: normal + 3b = (s - b) / 3.
        m = MACHINES - 1
        b = (s - m * normal) / (m * SLOW_FACTOR + 1)
        t = normal + SLOW_FACTOR * b
    return max(t, max(d))


def config(d: list[float], slow: set[int]) -> str:
    out = ["[run]", "max-parallel = 1", 'artifacts = "out"', ""]
    for i, x in enumerate(d):
        name = f"b{i:02d}"
        if i in slow:
            sleep = (f'if [ "$BENCH_SLOW" = 1 ]; then sleep {x * SLOW_FACTOR:.2f}; '
                     f"else sleep {x:.2f}; fi")
        else:
            sleep = f"sleep {x:.2f}"
        script = f'echo "$BENCH_MACHINE" >> "$BENCH_MARKS/{name}"; {sleep}'
        out += ["[[batch]]", f"name = {toml_str(name)}", f"shell = {toml_str(script)}",
                'timeout = "10m"', ""]
    return "\n".join(out)


def seed_junit(path: Path, d: list[float]) -> None:
    suites = "".join(
        f'<testsuite name="b{i:02d}" tests="1" time="{x:.3f}">'
        f'<testcase classname="b{i:02d}" name="b{i:02d}" time="{x:.3f}"/></testsuite>'
        for i, x in enumerate(d))
    path.write_text(f'<?xml version="1.0"?><testsuites>{suites}</testsuites>\n')


def env_of(marks: Path, slow: bool, machine: int = 0) -> tuple[dict[str, str], bytes]:
    env, mark = marked_env({"BENCH_MARKS": str(marks), "BENCH_MACHINE": str(machine), "NO_COLOR": "1"})
    for k in [k for k in env if k in DROP or k.startswith("PG")]:
        del env[k]
    if slow:
        env["BENCH_SLOW"] = "1"
    return env, mark


class Bench:
    def __init__(self, warden: Path, work: Path, pg: PgServer, d: list[float], slow: set[int]):
        self.warden, self.work, self.pg, self.d, self.slow = warden, work, pg, d, slow
        self.errors: list[str] = []
        self.n = 0
        self.cfg = config(d, slow)
        self.seed = work / "seed.xml"
        seed_junit(self.seed, d)

    def error(self, msg: str) -> None:
        log("ERROR: " + msg)
        self.errors.append(msg)

    def fresh(self) -> str:
        self.n += 1
        db = f"queue_{self.n}"
        self.pg.createdb(db)
        url = self.pg.url(db)
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2 * 86400))
        env, mark = env_of(self.work, False)
        p = subprocess.run([str(self.warden), "import", "junit", "--history", url, "--at", at, str(self.seed)],
                           env=env, cwd=self.work, capture_output=True, text=True)
        kill_marked(mark)
        if p.returncode != 0:
            self.error(f"seed import exited {p.returncode}: {p.stderr[-500:]}")
        return url

    def run(self, mode: str, rep: int) -> tuple[float, float] | None:
        """(makespan, the work the machines actually did / MACHINES)."""
        url = self.fresh()
        root = self.work / f"{mode}-{rep}"
        marks = root / "marks"
        marks.mkdir(parents=True)
        procs = []
        envs = []
        key = f"bench-{rep}-{mode}"
        t0 = time.perf_counter()
        for k in range(1, MACHINES + 1):
            d = root / f"m{k}"
            d.mkdir()
            (d / "warden.toml").write_text(self.cfg)
            argv = [str(self.warden), "run", "--history", url]
            if mode == "queue":
                argv += ["--queue", "--run-key", key, "--queue-lease", LEASE]
            else:
                argv += ["--partition", f"{mode}:{k}/{MACHINES}"]
            env, mark = env_of(marks, k == MACHINES, k)
            envs.append(mark)
            out = open(d / "warden.out", "wb")
            procs.append((subprocess.Popen(argv, cwd=d, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                           stderr=subprocess.STDOUT), out, d))
        ends = []
        for p, out, d in procs:
            rc = p.wait()
            ends.append(time.perf_counter())
            out.close()
            if rc != 0:
                self.error(f"{mode} rep {rep}: warden in {d.name} exited {rc}: "
                           f"{(d / 'warden.out').read_text(errors='replace')[-600:]}")
        makespan = max(ends) - t0
        for mark in envs:
            left = kill_marked(mark)
            if left:
                self.error(f"{mode} rep {rep}: processes left behind: {left}")
        ran = [(marks / f"b{i:02d}").read_text().split() if (marks / f"b{i:02d}").exists() else []
               for i in range(BATCHES)]
        wrong = [f"b{i:02d}:{len(r)}" for i, r in enumerate(ran) if len(r) != 1]
        done = sum(self.d[i] * (SLOW_FACTOR if r == [str(MACHINES)] and i in self.slow else 1.0)
                   for i, r in enumerate(ran))
        if wrong:
            self.error(f"{mode} rep {rep}: batches not run exactly once: {wrong}")
        if mode == "queue":
            junit = root / "all.xml"
            env, mark = env_of(marks, False)
            p = subprocess.run([str(self.warden), "report", "--history", url, "--run-key", key, "--junit",
                                str(junit)], env=env, cwd=root, capture_output=True, text=True)
            kill_marked(mark)
            cases = junit.read_text().count("<testcase") if junit.exists() else 0
            if p.returncode != 0 or cases != BATCHES:
                self.error(f"queue rep {rep}: warden report exited {p.returncode} with {cases} cases: "
                           f"{p.stdout[-400:]}{p.stderr[-400:]}")
            else:
                (self.work / "report.out").write_text(p.stdout)
        self.pg.dropdb(f"queue_{self.n}")
        return (makespan, done / MACHINES) if not wrong else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="durations x 0.25, 1 repetition")
    ap.add_argument("--no-build", action="store_true", help="use the already built release binary")
    ap.add_argument("--warden", help="warden binary to use (implies --no-build)")
    ap.add_argument("--output", default=str(REPO / "BENCHMARKS.md"))
    args = ap.parse_args()
    warden = warden_binary("bench/queue_mode.py", args.warden, args.no_build or bool(args.warden))
    if warden is None:
        return 2
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        print("bench/queue_mode.py: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin", file=sys.stderr)
        return 2
    scale = QUICK_SCALE if args.quick else 1.0
    reps = REPS["quick" if args.quick else "full"]
    d, slow = durations(scale)
    lb = lower_bound(d, slow)
    work = Path(tempfile.mkdtemp(prefix="warden-queue-bench-"))
    info = machine_info(warden)
    loads = [loadavg()]
    t0 = time.monotonic()
    pg = PgServer(bin_dir)
    results: dict[str, Stats] = {m: Stats([]) for m in MODES}
    busy: dict[str, Stats] = {m: Stats([]) for m in MODES}
    report_text = ""
    try:
        pg.start()
        pg_info = f"{pg.version}, data in {pg.dir.parent} ({fs_type(pg.dir)}), no fsync, unix socket"
        b = Bench(warden, work, pg, d, slow)
        for rep in range(reps):
            for mode in order(list(MODES), rep):
                log(f"rep {rep + 1}/{reps}: {mode}")
                got = b.run(mode, rep)
                if got is not None:
                    m, done = got
                    results[mode].values.append(m)
                    busy[mode].values.append(m / done)
                    log(f"  makespan {m:.2f} s, ratio {m / lb:.3f}, ÷ work done/4 {m / done:.3f}")
        if (work / "report.out").exists():
            report_text = (work / "report.out").read_text()
        errors = b.errors
    finally:
        left = pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    if left:
        errors.append(f"PostgreSQL processes left after its shutdown (killed): {left}")
    loads.append(loadavg())
    elapsed = time.monotonic() - t0
    block = render(info, args, reps, d, slow, lb, results, busy, pg_info, loads, elapsed, errors, report_text)
    write_section(Path(args.output), block, BEGIN, END, "bench/queue_mode.py", REPRO_LINE)
    log(f"updated {args.output} ({elapsed:.0f} s)")
    q = results["queue"]
    return 1 if errors or not q.n or q.median / lb > TARGET else 0


def sim_range(d: list[float], slow: set[int], lb: float) -> str:
    """Queue mode simulated: longest first, each machine claims when free,
    machine 4 at each place of the first round; makespan / lb, min–max."""
    import heapq
    order_ = sorted(range(len(d)), key=lambda i: -d[i])
    ratios = []
    for first in range(MACHINES):
        rank = [k for k in range(MACHINES - 1)]
        rank.insert(first, MACHINES - 1)
        free = [(0.0, rank.index(k), k) for k in range(MACHINES)]
        heapq.heapify(free)
        end = 0.0
        for i in order_:
            t, r, k = heapq.heappop(free)
            t += d[i] * (SLOW_FACTOR if k == MACHINES - 1 and i in slow else 1.0)
            end = max(end, t)
            heapq.heappush(free, (t, r, k))
        ratios.append(end / lb)
    return f"{min(ratios):.3f}–{max(ratios):.3f}"


def render(info, args, reps, d, slow, lb, results, busy, pg_info, loads, elapsed, errors, report_text) -> str:
    out = []
    w = out.append
    w(BEGIN)
    w("## Queue mode\n")
    w(f"Generated by `bench/queue_mode.py` (this run: `python3 bench/queue_mode.py{' --quick' if args.quick else ''}"
      f"{' --no-build' if args.no_build else ''}`, total {elapsed:.0f} s); re-run to refresh this section only. "
      f"{reps} repetition(s) per mode, modes interleaved in a seeded shuffled order; medians (min–max). "
      "The machine is shared with other work (see the load average): compare the modes within this run.\n")
    w("| | |\n|---|---|")
    for k in ("date", "git commit", "nproc", "cpu", "kernel", "warden binary"):
        if k in info:
            w(f"| {k} | {info[k]} |")
    w(f"| PostgreSQL | {pg_info} |")
    w(f"| load average (before → after) | {loads[0]} → {loads[1]} |\n")
    total = sum(d)
    slow_work = sum(d[i] for i in slow)
    w(f"{BATCHES} batches `sleep X`, X Pareto (alpha {ALPHA:g}, seed {SEED}), {total:.1f} s of work in all, "
      f"longest {max(d):.2f} s, median {sorted(d)[len(d) // 2]:.2f} s; {len(slow)} of them ({slow_work:.1f} s) "
      f"take {SLOW_FACTOR:g}x as long on machine 4 as the history says. {MACHINES} wardens, `max-parallel = 1` "
      "each, start together, sharing one PostgreSQL whose history holds every batch's nominal duration. "
      f"Queue mode: `--queue --queue-lease {LEASE}`; static: `--partition duration:K/4` or `hash:K/4`. "
      "Makespan: first spawn to last exit. Lower bound with the machines' actual speeds (the LP relaxation: "
      f"machine 4 does normal work, slow work costs it {SLOW_FACTOR:g}x): **{lb:.2f} s**. Every batch ran "
      "exactly once in every run (checked by a marker file per batch, which also says which machine ran it). "
      "The last column divides by the work the machines actually did in that run (a slow batch counted 3x "
      "when machine 4 ran it) over 4: how well that run kept its machines busy, whatever it gave the slow "
      "one.\n")
    w("| mode | makespan median (min–max) | ÷ LP lower bound | ÷ (work done ÷ 4), median | target | result (LP / work done) |")
    w("|---|---|---|---|---|---|")
    for m in MODES:
        st = results[m]
        if not st.n:
            w(f"| {m} | (failed) | | | |")
            continue
        r = st.median / lb
        label = {"queue": "`--queue`", "duration": "`--partition duration:K/4`",
                 "hash": "`--partition hash:K/4`"}[m]
        tgt = f"≤ {TARGET}" if m == "queue" else "(baseline)"
        b = busy[m].median
        res = (f"{'met' if r <= TARGET else '**missed**'} / {'met' if b <= TARGET else '**missed**'}"
               if m == "queue" else "")
        w(f"| {label} | {spread(st, lambda s: f'{s:.2f} s')} | {r:.3f} | {b:.3f} | {tgt} | {res} |")
    q, dur = results["queue"], results["duration"]
    if q.n and dur.n:
        w(f"\nQueue mode's makespan is {q.median / dur.median:.2f}x `duration`'s in this run. The static split "
          "balances the shards by the history, but machine 4's shard takes longer than the history says, and "
          "nothing moves its batches elsewhere; in queue mode machine 4 simply claims fewer.\n")
    w("The LP bound is clairvoyant: it gives machine 4 only batches that are not slow there, which nothing "
      "can know before running them (the history says otherwise). Queue mode's LP ratio depends on the "
      "start race: which of the longest batches machine 4 claims first (a list-scheduling simulation of "
      f"this data set gives {sim_range(d, slow, lb)} by machine 4's place in the first round of claims, "
      "before warden's own start-up and exit).\n")
    if report_text:
        lines = [l for l in report_text.splitlines() if l.startswith(("Success", "Queue:"))]
        if lines:
            w("`warden report --run-key` of the last queue run:\n")
            w("```")
            out.extend(lines)
            w("```\n")
    if errors:
        w("Errors:\n")
        for e in errors:
            w(f"- {e}")
        w("")
    w(END)
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
