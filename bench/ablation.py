#!/usr/bin/env python3
"""Where does warden's per-batch time go? An ablation study (see bench/ANALYSIS.md).

Builds warden from this checkout with bench/ablation.patch applied (in a
scratch copy: src/ here is never touched). The patch adds environment
switches, each of which removes or replaces one suspected cost:

    EXP_POLLPRI=1      wait for `populated 0` with poll(POLLPRI) on cgroup.events
                       instead of a fresh inotify instance per wait
    EXP_NO_MIGRATE=1   skip the child's write to cgroup.procs (batch NOT contained:
                       measurement only)
    EXP_POSIX_SPAWN=1  no pre_exec closure, so std spawns with posix_spawn (vfork)
                       instead of fork; also skips the cgroup write and PDEATHSIG
                       (measurement only)
    EXP_NO_JUNIT=1     do not rewrite junit.xml after every burst of finishes

Then it runs the spawn benchmark (1000 x `true`, max-parallel 2) for each
combination, interleaved with the xargs baseline, and the kill-latency
batch with and without EXP_POLLPRI. Prints Markdown.

    python3 bench/ablation.py [--reps 3] [--warden PATH_TO_PATCHED_BINARY]

Builds into $CARGO_TARGET_DIR/ablation (or ./target/ablation): one full
release build the first time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402

VARIANTS = [
    ("cgroup, as is", "cgroup", {}),
    ("cgroup + POLLPRI", "cgroup", {"EXP_POLLPRI": "1"}),
    ("cgroup + NO_MIGRATE", "cgroup", {"EXP_NO_MIGRATE": "1"}),
    ("cgroup + POLLPRI + NO_MIGRATE", "cgroup", {"EXP_POLLPRI": "1", "EXP_NO_MIGRATE": "1"}),
    ("cgroup + POLLPRI + NO_MIGRATE + NO_JUNIT", "cgroup",
     {"EXP_POLLPRI": "1", "EXP_NO_MIGRATE": "1", "EXP_NO_JUNIT": "1"}),
    ("cgroup + POLLPRI + POSIX_SPAWN + NO_JUNIT", "cgroup",
     {"EXP_POLLPRI": "1", "EXP_POSIX_SPAWN": "1", "EXP_NO_JUNIT": "1"}),
    ("pgroup, as is", "pgroup", {}),
    ("pgroup + NO_JUNIT", "pgroup", {"EXP_NO_JUNIT": "1"}),
    ("pgroup + POSIX_SPAWN + NO_JUNIT", "pgroup", {"EXP_POSIX_SPAWN": "1", "EXP_NO_JUNIT": "1"}),
]


def build(scratch: Path) -> Path:
    src = scratch / "src-copy"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD", "src", "Cargo.toml", "Cargo.lock"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    subprocess.run(["patch", "-p1", "-s", "-i", str(HERE / "ablation.patch")], cwd=src, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "ablation"
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    bench.log(f"building the patched copy into {target}")
    subprocess.run(["cargo", "build", "--release", "--locked"], cwd=src, env=env, check=True)
    return target / "release" / "warden"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--kill-runs", type=int, default=15)
    ap.add_argument("--warden", help="an already built patched binary")
    args = ap.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="warden-ablation-"))
    try:
        warden = Path(args.warden) if args.warden else build(scratch)
        cfg = scratch / "spawn" / "warden.toml"
        cfg.parent.mkdir()
        bench.write_config(cfg, max_parallel=bench.SPAWN_PARALLEL,
                           batches=[bench.batch(f"b{i:04d}", argv=["true"]) for i in range(bench.SPAWN_BATCHES)])
        inp = scratch / "input.txt"
        inp.write_text("".join(f"{i}\n" for i in range(bench.SPAWN_BATCHES)))
        walls: dict[str, list[float]] = {"xargs -P2 -n1 true (baseline)": []}
        cpus: dict[str, list[float]] = {"xargs -P2 -n1 true (baseline)": []}
        for name, _, _ in VARIANTS:
            walls[name], cpus[name] = [], []
        kinds = [("xargs -P2 -n1 true (baseline)", None, None)] + VARIANTS
        for rep in range(args.reps):
            for name, mode, extra in bench.order(kinds, rep):
                env, mark = bench.marked_env(extra or {})
                if mode is None:
                    with open(inp, "rb") as stdin:
                        r = bench.timed_run(["xargs", "-P2", "-n1", "true"], env=env, stdin=stdin)
                else:
                    shutil.rmtree(cfg.parent / "out", ignore_errors=True)
                    r = bench.timed_run([str(warden), "run", "-c", str(cfg), "--containment", mode], env=env)
                bench.kill_marked(mark)
                walls[name].append(r.wall)
                cpus[name].append(r.cpu)
                bench.log(f"rep {rep + 1} {name}: {r.wall:.2f}s wall {r.cpu:.2f}s cpu rc={r.rc}")
        base = statistics.median(walls["xargs -P2 -n1 true (baseline)"])
        print(f"### Spawn benchmark ablation ({args.reps} interleaved reps, medians)\n")
        print("| variant | wall | CPU (incl. children) | ratio to xargs |")
        print("|---|---|---|---|")
        for name in walls:
            w = statistics.median(walls[name])
            print(f"| {name} | {w:.2f} s | {statistics.median(cpus[name]):.2f} s | {w / base:.2f} |")

        kcfg = scratch / "kill" / "warden.toml"
        kcfg.parent.mkdir()
        bench.write_config(kcfg, max_parallel=1, batches=[bench.batch(
            "kill", shell=bench.KILL_SCRIPT, timeout="200ms", grace="200ms")])
        gone: dict[str, list[float]] = {}
        kvars = [("cgroup, as is", "cgroup", {}), ("cgroup + POLLPRI", "cgroup", {"EXP_POLLPRI": "1"}),
                 ("pgroup, as is", "pgroup", {})]
        for i in range(args.kill_runs):
            for name, mode, extra in bench.order(kvars, i):
                env, mark = bench.marked_env(extra)
                shutil.rmtree(kcfg.parent / "out", ignore_errors=True)
                bench.timed_run([str(warden), "run", "-c", str(kcfg), "--containment", mode], env=env)
                left = bench.kill_marked(mark)
                if left:
                    bench.log(f"LEFT BEHIND by {name}: {left}")
                m = bench.GONE_RE.search((kcfg.parent / "out" / "junit.xml").read_text())
                gone.setdefault(name, []).append(float(m.group(1)) if m else float("nan"))
        print(f"\n### Kill latency ablation ({args.kill_runs} runs each; warden's own \"gone\" figure)\n")
        print("| variant | median | max |")
        print("|---|---|---|")
        for name, v in gone.items():
            print(f"| {name} | {statistics.median(v):.1f} ms | {max(v):.1f} ms |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
