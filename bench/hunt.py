#!/usr/bin/env python3
"""How often `warden hunt` gives the right verdicts, on two fixtures whose
truth is known. Writes the `## Hunt` section of BENCHMARKS.md (between
`<!-- hunt:begin -->` and `<!-- hunt:end -->`).

    python3 bench/hunt.py [--warden BINARY] [--no-build] [--hunts 10] [--runs 20] [--parallel 4]

- *I/O-sensitive* (tests/fixtures/hunt_io.sh): writes 12 MiB with O_DIRECT
  and fails when that took over 2 s. Arms `none`, `io=4M` (about 3 s:
  always fails), `cpu=50%` (dd barely uses CPU: never fails). Right:
  `stable`, `sensitive`, `not-sensitive`.
- *Random rate* (tests/fixtures/hunt_random.sh): fails when a hash of
  (seed, arm, attempt) mod 100 is below 25, a different seed per hunt.
  Arms `none`, `cpu=50%`. Right: `flaky` (on its own) and `not-sensitive`.

Each hunt is one `warden hunt … --format json --history none` process with
its own artifacts directory; a hunt is right when every arm's verdict is.
The one-sided Fisher test at 5% makes about one random-rate hunt in twenty
call the CPU arm sensitive by chance, and 0.75^20 = 0.3% of them see no
failure in the control: a second row runs `--more-random` (100) random
hunts to show that rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import REPO, log, machine_info, warden_binary, write_section  # noqa: E402

BEGIN = "<!-- hunt:begin -->"
END = "<!-- hunt:end -->"
REPRO_LINE = ("python3 bench/hunt.py   # warden hunt's verdicts on an I/O-sensitive and a "
              "random-rate fixture, 10 hunts each; rewrites only its section")
FIXTURES = REPO / "tests" / "fixtures"


def scenarios(io_limit: str, cpu: str, rate: int) -> list[dict]:
    return [
        {
            "name": "I/O-sensitive",
            "batch": "disk",
            "toml": f'name = "disk"\ncommand = ["{FIXTURES / "hunt_io.sh"}"]\n',
            "arms": ["none", f"io={io_limit}", f"cpu={cpu}"],
            "right": {"none": "stable", f"io={io_limit}": "sensitive", f"cpu={cpu}": "not-sensitive"},
        },
        {
            "name": f"random {rate}%",
            "batch": "rnd",
            "toml": (f'name = "rnd"\ncommand = ["{FIXTURES / "hunt_random.sh"}"]\n'
                     f'env = {{ HUNT_SEED = "@SEED@", HUNT_RATE = "{rate}" }}\n'),
            "arms": ["none", f"cpu={cpu}"],
            "right": {"none": "flaky", f"cpu={cpu}": "not-sensitive"},
        },
    ]


def one_hunt(warden: Path, s: dict, seed: int, runs: int, parallel: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="warden-bench-hunt-") as d:
        cfg = Path(d) / "warden.toml"
        cfg.write_text("[[batch]]\n" + s["toml"].replace("@SEED@", str(seed)))
        argv = [str(warden), "hunt", "-c", str(cfg), "--runs", str(runs), "--parallel", str(parallel),
                "--format", "json", "--history", "none", "--artifacts", str(Path(d) / "artifacts")]
        for a in s["arms"][1:]:
            argv += ["--pressure", a]
        argv.append(s["batch"])
        t0 = time.monotonic()
        p = subprocess.run(argv, cwd=d, capture_output=True, text=True)
        took = time.monotonic() - t0
        if p.returncode not in (0, 1):
            raise SystemExit(f"warden hunt exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        doc = json.loads(p.stdout)
    arms = {a["arm"]: a for a in doc["arms"]}
    return {"seed": seed, "took": took, "arms": arms,
            "right": {k: arms[k]["verdict"] == v for k, v in s["right"].items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warden", help="binary to measure (default: the release build)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--hunts", type=int, default=10)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--io-limit", default="4M")
    ap.add_argument("--cpu", default="50%")
    ap.add_argument("--rate", type=int, default=25)
    ap.add_argument("--more-random", type=int, default=100,
                    help="a second row: this many random-rate hunts (cheap: a fraction of a second each)")
    ap.add_argument("--output", default=str(REPO / "BENCHMARKS.md"))
    args = ap.parse_args()
    warden = warden_binary("bench/hunt.py", args.warden, args.no_build)
    if warden is None:
        return 1
    started = time.monotonic()
    results = []
    plan = [(s, args.hunts) for s in scenarios(args.io_limit, args.cpu, args.rate)]
    if args.more_random > args.hunts:
        plan.append((scenarios(args.io_limit, args.cpu, args.rate)[1], args.more_random))
    for s, count in plan:
        hunts = []
        for i in range(count):
            h = one_hunt(warden, s, seed=i + 1, runs=args.runs, parallel=args.parallel)
            verdicts = ", ".join(f"{k} {a['failures']}/{a['runs']} {a['verdict']}" for k, a in h["arms"].items())
            log(f"{s['name']} hunt {i + 1}/{count}: {verdicts} ({h['took']:.1f} s)")
            hunts.append(h)
        results.append((s, hunts))
    total = time.monotonic() - started

    info = machine_info(warden)
    out = [BEGIN, "## Hunt", "",
           f"`warden hunt` on two fixtures of known truth, {args.hunts} hunts each "
           f"(and {args.more_random} of the cheap random one, for its rate of wrong verdicts), "
           f"`--runs {args.runs} --parallel {args.parallel}`, each a separate process "
           f"(`bench/hunt.py`; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
           f"commit {info.get('git commit', '?')[:12]}, {info.get('nproc', '?')} cores, "
           f"total {total:.0f} s). A hunt is right when every arm's verdict is.", "",
           "| fixture | arms (right verdict) | right hunts | right per arm | failures per arm, median (min–max) | hunt time, median |",
           "|---|---|---|---|---|---|"]
    for s, hunts in results:
        right = sum(all(h["right"].values()) for h in hunts)
        arms = ", ".join(f"`{a}` ({s['right'][a]})" for a in s["arms"])
        per_arm = ", ".join(f"{a}: {sum(h['right'][a] for h in hunts)}/{len(hunts)}" for a in s["arms"])
        fails = []
        for a in s["arms"]:
            f = [h["arms"][a]["failures"] for h in hunts]
            fails.append(f"{a}: {statistics.median(f):g} ({min(f)}–{max(f)})")
        took = statistics.median(h["took"] for h in hunts)
        out.append(f"| {s['name']}, {len(hunts)} hunts | {arms} | **{right}/{len(hunts)}** | {per_arm} | "
                   f"{'; '.join(fails)} | {took:.1f} s |")
    out += ["",
            "The I/O fixture writes 12 MiB with `dd oflag=direct` and fails past 2 s: "
            f"under `io={args.io_limit}` (the batch's blkio/io.max write limit) that takes about 3 s. "
            f"The random fixture fails {args.rate}% of attempts, a different seed per hunt. "
            "Sensitivity is a one-sided Fisher exact test against the control at 5% "
            "(README, \"Hunting a flake\").",
            "", END]
    block = "\n".join(out)
    print(block)
    write_section(Path(args.output), block, BEGIN, END, "bench/hunt.py", REPRO_LINE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
