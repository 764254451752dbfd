#!/usr/bin/env python3
"""Spawn overhead of two warden builds in one run: 1000 batches of `true`,
`max-parallel = 2`, against `xargs -P2 -n1 true` measured in the same run.
Writes the `## Spawn, before and after` section of BENCHMARKS.md (between
`<!-- spawn-compare:begin -->` and `<!-- spawn-compare:end -->`).

    python3 bench/spawn_compare.py --before REV_OR_BINARY [--after BINARY] [--quick]

`--before` is a warden binary, or a git revision built here (release, in a
temporary worktree with its own target directory under target/). `--after`
defaults to this checkout's release build. Arms, interleaved in a seeded
shuffled order each repetition: the baseline, and each build under each
containment layering this machine offers:

- `cgroup+ns`: cgroup v2 per batch + PID namespace per batch (root's default);
- `cgroup`: `--pid-namespace off`;
- `pgroup`: `--containment pgroup --pid-namespace off`.

Reported: medians (min-max) of wall time, ratio to the baseline's median,
and the extra wall time per batch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402
    REPO, Stats, batch, junit_cases, kill_marked, log, machine_info, marked_env, order,
    report_tail, timed_run, warden_binary, write_config, write_section,
)

BEGIN = "<!-- spawn-compare:begin -->"
END = "<!-- spawn-compare:end -->"
BATCHES = 1000
PARALLEL = 2
TARGET = 1.5  # issue 14: no worse than the ratio before its spawn work

LAYERS = [
    ("cgroup+ns", ["--containment", "cgroup", "--pid-namespace", "required"]),
    ("cgroup", ["--containment", "cgroup", "--pid-namespace", "off"]),
    ("pgroup", ["--containment", "pgroup", "--pid-namespace", "off"]),
]


def build_rev(rev: str, work: Path) -> Path:
    """Builds `rev` in a temporary worktree; returns the binary (copied out)."""
    tree = work / "before-src"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    try:
        target = REPO / "target" / "bench-before"
        log(f"building {rev} (release) in {tree}")
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=tree, check=True,
                       env={**os.environ, "CARGO_TARGET_DIR": str(target)})
        out = work / "warden-before"
        shutil.copy2(target / "release" / "warden", out)
        return out
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO,
                       stdout=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="warden binary or git revision")
    ap.add_argument("--before-label", help="how the report names the before build (default: the argument)")
    ap.add_argument("--after", help="warden binary (default: this checkout's release build)")
    ap.add_argument("--no-build", action="store_true", help="use the already built release binary as --after")
    ap.add_argument("--quick", action="store_true", help="2 repetitions instead of 7")
    ap.add_argument("--reps", type=int, help="repetitions (default 7; --quick: 2)")
    ap.add_argument("--history", action="store_true",
                    help="record each run into a fresh SQLite store (default: --history none); "
                         "written to a section of its own")
    ap.add_argument("--output", default=str(REPO / "BENCHMARKS.md"))
    ap.add_argument("--section", metavar="NAME",
                    help="write a section of its own, `## Spawn, before and after: NAME` "
                         "(e.g. `usage` for a change's overhead), leaving the others")
    args = ap.parse_args()
    reps = args.reps or (2 if args.quick else 7)

    after = warden_binary("bench/spawn_compare.py", args.after, args.no_build)
    if after is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="warden-spawn-"))
    errors: list[str] = []
    try:
        before = Path(args.before)
        if not before.is_file():
            before = build_rev(args.before, work)
        builds = [("before", before), ("after", after)]
        cfg = work / "warden.toml"
        write_config(cfg, max_parallel=PARALLEL,
                     batches=[batch(f"b{i:04d}", argv=["true"], timeout="60s") for i in range(BATCHES)])
        inp = work / "input.txt"
        inp.write_text("".join(f"{i}\n" for i in range(BATCHES)))

        def baseline():
            env, mark = marked_env()
            with open(inp, "rb") as stdin:
                r = timed_run(["xargs", f"-P{PARALLEL}", "-n1", "true"], env=env, stdin=stdin)
            kill_marked(mark)
            return r

        def warden(binary: Path, layer: list[str]):
            env, mark = marked_env()
            out = work / "out"
            # With --history, each run records into a store of its own (a
            # fresh SQLite file), as a first run on a CI machine would.
            store = ["--history", f"sqlite:{work / 'history.db'}" if args.history else "none"]
            r = timed_run([str(binary), "run", "-c", str(cfg), "--artifacts", str(out),
                           *store, *layer], env=env, cwd=work)
            for f in work.glob("history.db*"):
                f.unlink()
            left = kill_marked(mark)
            if left:
                errors.append(f"{binary} {layer}: processes survived: {left}")
            if r.rc != 0:
                errors.append(f"{binary} {layer}: exit {r.rc}")
                shutil.rmtree(out, ignore_errors=True)
                return None
            cases = junit_cases(out / "junit.xml")
            if len(cases) != BATCHES:
                errors.append(f"{binary} {layer}: {len(cases)} cases")
            shutil.rmtree(out, ignore_errors=True)
            return r

        # Which layerings exist here (a probe run of each with the after build).
        layers = []
        for name, layer in LAYERS:
            env, mark = marked_env()
            probe = timed_run([str(after), "check", "-c", str(cfg), *layer], env=env, cwd=work)
            kill_marked(mark)
            if probe.rc == 0:
                layers.append((name, layer))
            else:
                log(f"{name} unavailable here (warden check exited {probe.rc})")
        arms = [("baseline", None, None)] + [
            (f"{b} {n}", path, layer) for b, path in builds for n, layer in layers
        ]
        # Untimed warm-up of every arm.
        for _, path, layer in arms:
            baseline() if path is None else warden(path, layer)
        samples: dict[str, list[float]] = {name: [] for name, _, _ in arms}
        for rep in range(reps):
            for name, path, layer in order(arms, rep):
                r = baseline() if path is None else warden(path, layer)
                if r is not None:
                    samples[name].append(r.wall)
                log(f"rep {rep + 1}/{reps} {name}: " + ("failed" if r is None else f"{r.wall:.3f}s"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = Stats(samples["baseline"])
    rows = []
    for name, layer in layers:
        cells = []
        for b, _ in builds:
            st = Stats(samples[f"{b} {name}"])
            ratio = st.median / base.median
            extra = (st.median - base.median) / BATCHES * 1000
            cells.append((st, ratio, extra))
        (sb, rb, eb), (sa, ra, ea) = cells
        verdict = "met" if ra <= TARGET else "NOT met"
        rows.append(
            f"| {name} | {sb.median:.3f} s ({sb.min:.3f}–{sb.max:.3f}) | {rb:.2f} | {eb:.2f} ms | "
            f"{sa.median:.3f} s ({sa.min:.3f}–{sa.max:.3f}) | {ra:.2f} | {ea:.2f} ms | "
            f"≤ {TARGET}: {verdict} | {sa.median / sb.median:.3f} |"
        )
    history = ("the history on (a fresh SQLite store each run)" if args.history
               else "`--history none`")
    begin, end = (BEGIN.replace("compare", "compare-history"), END.replace("compare", "compare-history")) \
        if args.history else (BEGIN, END)
    if args.section:
        tag = "".join(c if c.isalnum() else "-" for c in args.section.lower())
        begin, end = begin.replace("compare", f"compare-{tag}"), end.replace("compare", f"compare-{tag}")
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                         text=True).stdout.strip()
    label = args.before_label or args.before
    lines = [
        begin,
        "## Spawn, before and after" + (", history on" if args.history else "")
        + (f": {args.section}" if args.section else ""),
        "",
        f"`python3 bench/spawn_compare.py --before {label}{' --history' if args.history else ''}{f' --section {args.section}' if args.section else ''}{' --quick' if args.quick else ''}{f' --reps {args.reps}' if args.reps else ''}` at {rev}: "
        f"{BATCHES} batches of `command = [\"true\"]`, `max-parallel = {PARALLEL}`, {history}; "
        f"{reps} repetitions, arms interleaved. Baseline: `xargs -P{PARALLEL} -n1 true` in the same run, "
        f"median {base.median:.3f} s ({base.min:.3f}–{base.max:.3f}). "
        "Extra per batch = (warden − baseline median) ÷ batches. Before: the build named above; "
        "after: this commit.",
        "",
        "| layers | before | ratio | extra/batch | after | ratio | extra/batch | target (after) | after ÷ before |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        *report_tail(errors, machine_info(after)),
        end,
    ]
    block = "\n".join(lines)
    write_section(Path(args.output), block, begin, end, "bench/spawn_compare.py",
                  "python3 bench/spawn_compare.py --before REV   # spawn overhead of two builds, same run")
    print(block)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
