#!/usr/bin/env python3
"""How well warden tells flaky, broken, regressed and fixed tests apart,
measured on synthetic histories with a known truth (bench/synth_history.py),
for two builds: today's heuristic and the new model (issue 15). Writes the
`## Classification` section of BENCHMARKS.md (between
`<!-- classify:begin -->` and `<!-- classify:end -->`).

    python3 bench/classify.py [--before REV_OR_BINARY] [--after BINARY] [--seeds 1,2,3] [--quick]

`--before` (default 0669e87, main before the issue-15 work) is a warden
binary, or a git revision built here (release, in a temporary git worktree,
removed afterwards, with its own target directory: `--before-target-dir`,
default `$CARGO_TARGET_DIR-before`, else target/classify-before; the
binary is kept there as `warden-<sha>` and reused by later runs).
`--after` defaults to this checkout's release build (built first unless
`--no-build`).

For each seed: one history is generated (300 runs, 150 tests x 4 label
sets; `--quick`: 120 runs, one seed), imported into a fresh SQLite store by
each build (`warden import junit --commit --at --label`, one process per
run, as a CI job would), and asked

    warden flaky --since 3650d --by arch,compiler --limit 0 --format json
    warden regressed --since 3650d --limit 0 --format json

Scored per unit (a test in one label set), pooled over the seeds:

- *flaky*: truth = kind `flaky`. Precision = listed flaky units that are
  flaky / listed; recall = listed / *detectable* flaky units (those that
  failed or flaked at least once and passed at least once outside mass
  failures: a 2% test that never failed is indistinguishable from a
  healthy one); recall over all flaky units is shown too. A row with a
  `verdict` other than `flaky` (new model) is not counted as listed.
- *regressed*: truth = `broken-at-commit`, `broken-before-window` and
  `flaky-that-also-breaks` (all failing at the end). `break-and-fixed` is
  *fixed*: in neither list is right, in either is a false positive.
  Every row of `warden regressed` (verdict `broken` or `regressed`) counts.
- *break commit*: for the units with a known break (`broken-at-commit`,
  `flaky-that-also-breaks`) that `regressed` lists, the distance in commits
  between the true break and the reported first bad commit (`first_bad`,
  or the old `first_failure`), median and p90 of its absolute value; the
  *observable* distance is that of the first commit at or after the break
  the label set ran (outside mass failures), which is the best any model
  can do.

The per-kind table says where every kind ended up. Stdlib only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synth_history as synth  # noqa: E402
from run import REPO, log, machine_info, report_tail, warden_binary, write_section  # noqa: E402

BEGIN = "<!-- classify:begin -->"
END = "<!-- classify:end -->"
DEFAULT_BEFORE = "0669e87"
SINCE = "3650d"
FLAKY_KINDS = {"flaky"}
REGRESSED_KINDS = {"broken-at-commit", "broken-before-window", "flaky-that-also-breaks"}
BREAK_KINDS = {"broken-at-commit", "flaky-that-also-breaks"}
REPRO_LINE = ("python3 bench/classify.py   # flaky/regressed classification on synthetic histories "
              "with a known truth, before vs after; rewrites only its section")


def build_rev(rev: str, target: Path) -> Path:
    """The release binary of `rev`: `TARGET/warden-<sha>` when an earlier
    run built it, else built in a temporary git worktree (removed after)
    with `target` as its target directory, and kept there under that name.
    The worktree's path is always the same (`TARGET/src`): cargo then
    reuses what it compiled for an earlier revision."""
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.strip()
    out = target / f"warden-{sha}"
    if out.is_file():
        log(f"{rev}: using {out}, built earlier")
        return out
    target.mkdir(parents=True, exist_ok=True)
    tree = target / "src"
    if tree.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO)
        shutil.rmtree(tree, ignore_errors=True)
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    try:
        log(f"building {rev} (release) in {tree}, target {target}")
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=tree, check=True,
                       env={**os.environ, "CARGO_TARGET_DIR": str(target)})
        shutil.copy2(target / "release" / "warden", out)
        return out
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO,
                       stdout=subprocess.DEVNULL)


def before_target_dir(given: str | None) -> Path:
    if given:
        return Path(given).resolve()
    env = os.environ.get("CARGO_TARGET_DIR")
    if env:
        return Path(env.rstrip("/") + "-before").resolve()
    return REPO / "target" / "classify-before"


# --------------------------------------------------------------------------
# running one build over one history


@dataclass
class Outcome:
    """What one build said about one history."""
    flaky: dict = field(default_factory=dict)  # unit key -> row
    regressed: dict = field(default_factory=dict)  # unit key -> row
    import_s: float = 0.0
    flaky_s: float = 0.0
    regressed_s: float = 0.0
    errors: list[str] = field(default_factory=list)


def labels_of(row) -> str:
    lab = row.get("labels")
    if isinstance(lab, dict):
        return synth.labels_key(lab)
    return " ".join(sorted((lab or "").split()))


def query(binary: Path, db: Path, argv: list[str], out: Outcome) -> tuple[list, float]:
    t0 = time.perf_counter()
    p = subprocess.run([str(binary), *argv, "--history", f"sqlite:{db}"], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        out.errors.append(f"{binary} {' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()[:300]}")
        return [], dt
    try:
        rows = json.loads(p.stdout) if p.stdout.strip() else []
    except ValueError as e:
        out.errors.append(f"{binary} {' '.join(argv)}: not JSON ({e}): {p.stdout[:200]!r}")
        return [], dt
    return rows, dt


def evaluate(binary: Path, hist_dir: Path, db: Path) -> Outcome:
    out = Outcome()
    imports = json.loads((hist_dir / "imports.json").read_text())
    t0 = time.perf_counter()
    for imp in imports:
        args = imp["args"]
        p = subprocess.run([str(binary), *args[:2], "--history", f"sqlite:{db}", *args[2:]],
                           cwd=hist_dir, capture_output=True, text=True)
        if p.returncode != 0:
            out.errors.append(f"{binary} import {imp['file']}: exit {p.returncode}: {p.stderr.strip()[:300]}")
            return out
    out.import_s = time.perf_counter() - t0
    keys = ",".join(synth.LABEL_KEYS)
    rows, out.flaky_s = query(binary, db, ["flaky", "--since", SINCE, "--by", keys, "--limit", "0",
                                           "--format", "json"], out)
    for row in rows:
        if row.get("verdict", "flaky") == "flaky":
            out.flaky[(row["test"], labels_of(row))] = row
    rows, out.regressed_s = query(binary, db, ["regressed", "--since", SINCE, "--limit", "0",
                                               "--format", "json"], out)
    for row in rows:
        out.regressed[(row["test"], labels_of(row))] = row
    return out


# --------------------------------------------------------------------------
# scoring


@dataclass
class Score:
    """Counts pooled over seeds, and per seed."""
    tp_f: int = 0
    listed_f: int = 0
    truth_f: int = 0
    detectable_f: int = 0
    found_detectable_f: int = 0
    tp_r: int = 0
    listed_r: int = 0
    truth_r: int = 0
    distances: list[int] = field(default_factory=list)  # |reported - true| break commit
    signed: list[int] = field(default_factory=list)
    ideal: list[int] = field(default_factory=list)  # observable distances of the same units
    no_first_bad: int = 0  # listed units with a known break but no first bad commit
    interval_ok: int = 0  # last good < break <= first bad
    interval_n: int = 0
    # kind -> where: flaky / regressed (broken|regressed) / both / neither
    placement: dict = field(default_factory=dict)
    verdicts: dict = field(default_factory=dict)  # kind -> {verdict: n} of regressed rows
    import_s: list[float] = field(default_factory=list)
    flaky_s: list[float] = field(default_factory=list)
    regressed_s: list[float] = field(default_factory=list)
    per_seed: list[dict] = field(default_factory=list)

    def add(self, other: "Score") -> None:
        for f in ("tp_f", "listed_f", "truth_f", "detectable_f", "found_detectable_f", "tp_r", "listed_r",
                  "truth_r", "no_first_bad", "interval_ok", "interval_n"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        for f in ("distances", "signed", "ideal", "import_s", "flaky_s", "regressed_s"):
            getattr(self, f).extend(getattr(other, f))
        for kind, d in other.placement.items():
            mine = self.placement.setdefault(kind, {})
            for k, v in d.items():
                mine[k] = mine.get(k, 0) + v
        for kind, d in other.verdicts.items():
            mine = self.verdicts.setdefault(kind, {})
            for k, v in d.items():
                mine[k] = mine.get(k, 0) + v
        self.per_seed.append(other.metrics())

    def metrics(self) -> dict:
        return {
            "flaky precision": div(self.tp_f, self.listed_f),
            "flaky recall (detectable)": div(self.found_detectable_f, self.detectable_f),
            "flaky recall (all)": div(self.tp_f, self.truth_f),
            "regressed precision": div(self.tp_r, self.listed_r),
            "regressed recall": div(self.tp_r, self.truth_r),
            "break distance median": pct(self.distances, 50),
            "break distance p90": pct(self.distances, 90),
        }


def div(a: int, b: int) -> float | None:
    return a / b if b else None


def pct(values: list[int], p: int) -> float | None:
    """Nearest-rank percentile (as warden's durations)."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, -(-p * len(v) // 100) - 1)]


def score(truth: dict, o: Outcome) -> Score:
    s = Score()
    commit_index = {c: i for i, c in enumerate(truth["commits"])}
    for u in truth["units"]:
        key = (u["test"], u["labels"])
        kind = u["kind"]
        in_f, in_r = key in o.flaky, key in o.regressed
        where = "both" if in_f and in_r else "flaky" if in_f else "regressed" if in_r else "neither"
        pl = s.placement.setdefault(kind, {})
        pl[where] = pl.get(where, 0) + 1
        pl["units"] = pl.get("units", 0) + 1
        if in_r:
            v = o.regressed[key].get("verdict", "listed")
            vd = s.verdicts.setdefault(kind, {})
            vd[v] = vd.get(v, 0) + 1
        if kind in FLAKY_KINDS:
            s.truth_f += 1
            detectable = (u["failed"] + u["flaky"]) > 0 and (u["passed"] > 0 or u["flaky"] > 0)
            s.detectable_f += detectable
            s.tp_f += in_f
            s.found_detectable_f += in_f and detectable
            pl["detectable"] = pl.get("detectable", 0) + detectable
        if in_f:
            s.listed_f += 1
        if kind in REGRESSED_KINDS:
            s.truth_r += 1
            s.tp_r += in_r
        if in_r:
            s.listed_r += 1
        if kind in BREAK_KINDS and in_r:
            row = o.regressed[key]
            fb = row.get("first_bad", row.get("first_failure"))
            lg = row.get("last_good", row.get("last_pass"))
            fb_i = commit_index.get((fb or {}).get("commit"))
            if fb_i is None:
                s.no_first_bad += 1
                continue
            s.distances.append(abs(fb_i - u["break_commit"]))
            s.signed.append(fb_i - u["break_commit"])
            if u["first_bad_observed"] is not None:
                s.ideal.append(u["first_bad_observed"] - u["break_commit"])
            lg_i = commit_index.get((lg or {}).get("commit"))
            if lg_i is not None:
                s.interval_n += 1
                s.interval_ok += lg_i < u["break_commit"] <= fb_i
    s.import_s.append(o.import_s)
    s.flaky_s.append(o.flaky_s)
    s.regressed_s.append(o.regressed_s)
    return s


# --------------------------------------------------------------------------
# report


def fmt(v, kind: str) -> str:
    if v is None:
        return "n/a"
    if kind == "pct":
        return f"{100 * v:.1f}%"
    return f"{v:g}"


def spread(scores: Score, name: str, kind: str) -> str:
    vals = [m[name] for m in scores.per_seed if m[name] is not None]
    if len(scores.per_seed) < 2 or not vals:
        return ""
    return f"{fmt(min(vals), kind)}–{fmt(max(vals), kind)}"


def metric_rows(b: Score, a: Score):
    """(name, kind, before's counts, after's counts) of the headline table."""
    return [
        ("flaky precision", "pct", f"{b.tp_f}/{b.listed_f}", f"{a.tp_f}/{a.listed_f}"),
        ("flaky recall (detectable)", "pct", f"{b.found_detectable_f}/{b.detectable_f}",
         f"{a.found_detectable_f}/{a.detectable_f}"),
        ("flaky recall (all)", "pct", f"{b.tp_f}/{b.truth_f}", f"{a.tp_f}/{a.truth_f}"),
        ("regressed precision", "pct", f"{b.tp_r}/{b.listed_r}", f"{a.tp_r}/{a.listed_r}"),
        ("regressed recall", "pct", f"{b.tp_r}/{b.truth_r}", f"{a.tp_r}/{a.truth_r}"),
        ("break distance median", "n", f"{len(b.distances)} units", f"{len(a.distances)} units"),
        ("break distance p90", "n", "", ""),
    ]


def kind_table(b: Score, a: Score) -> list[str]:
    """Where each kind ended up, before and after."""
    lines = ["| kind | units | before: flaky | regressed | both | neither | after: flaky | regressed | both "
             "| neither |", "|---|---|---|---|---|---|---|---|---|---|"]

    def cells(pl, vd):
        reg = str(pl.get("regressed", 0))
        v = {k: n for k, n in (vd or {}).items() if k != "listed"}
        if v:
            reg += " (" + ", ".join(f"{n} {k}" for k, n in sorted(v.items())) + ")"
        return f"{pl.get('flaky', 0)} | {reg} | {pl.get('both', 0)} | {pl.get('neither', 0)}"
    for kind in synth.KINDS:
        pb, pa = b.placement.get(kind, {}), a.placement.get(kind, {})
        units = pb.get("units", pa.get("units", 0))
        if not units:
            continue
        det = f" ({pb['detectable']} detectable)" if "detectable" in pb else ""
        lines.append(f"| {kind} | {units}{det} | {cells(pb, b.verdicts.get(kind))} | "
                     f"{cells(pa, a.verdicts.get(kind))} |")
    return lines


def render(args, params: synth.Params, seeds: list[int], summaries: list[str], labels: dict,
           scores: dict, variants: list[float], errors: list[str], info: dict, elapsed: float) -> str:
    cmd = "python3 bench/classify.py" + "".join(f" {a}" for a in sys.argv[1:])
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                         text=True).stdout.strip()
    b, a = scores[(variants[0], "before")], scores[(variants[0], "after")]
    multi = len(seeds) > 1
    out = [BEGIN, "## Classification: flaky, broken, regressed", ""]
    w = out.append
    w(f"`{cmd}` at {rev}, {elapsed:.0f} s in all. Synthetic histories with a known truth from "
      f"`bench/synth_history.py` (seed{'s' if multi else ''} {', '.join(map(str, seeds))}; "
      f"{params.runs} runs, {params.tests} tests × 4 label sets (arch × compiler) = {params.tests * 4} "
      f"units each; a label set tests a commit with probability {params.coverage}, re-tests it with "
      f"{params.retest}; {params.mass:.0%} of the runs are mass failures where {params.mass_share:.0%} of "
      f"the tests fail; {params.retrying_suites:.0%} of the suites rerun failed tests twice "
      "(`<flakyFailure>`/`<rerunFailure>`)), imported by each build into a fresh SQLite store, one "
      f"`warden import junit --commit --at --label` per run, then `warden flaky --since {SINCE} --by "
      f"arch,compiler --limit 0 --format json` and `warden regressed --since {SINCE} --limit 0 "
      "--format json`. Before: " + labels["before"] + "; after: " + labels["after"] + ".")
    w("")
    for line in summaries:
        w(f"- {line}")
    w("")
    w("Scored per unit (one test in one label set)" + (", counts pooled over the seeds" if multi else "")
      + ". Flaky truth: kind `flaky`; recall over the *detectable* ones (failed or flaked at least "
      "once and passed at least once outside mass failures). Regressed truth: `broken-at-commit`, "
      "`broken-before-window`, `flaky-that-also-breaks` (failing at the end); `break-and-fixed` is "
      "fixed and belongs in neither list. Break distance: |reported first bad commit − true break "
      "commit| in commits, over the listed units with a known break.")
    w("")
    head = "| metric | before | after |" + (" before, per seed | after, per seed |" if multi else "")
    w(head)
    w("|---|---|---|" + ("---|---|" if multi else ""))
    mb, ma = b.metrics(), a.metrics()
    for name, kind, nb, na in metric_rows(b, a):
        cb = fmt(mb[name], kind) + (f" ({nb})" if nb else "")
        ca = fmt(ma[name], kind) + (f" ({na})" if na else "")
        line = f"| {name} | {cb} | {ca} |"
        if multi:
            line += f" {spread(b, name, kind)} | {spread(a, name, kind)} |"
        w(line)
    w("")
    if len(variants) > 1:
        b0, a0 = scores[(variants[1], "before")], scores[(variants[1], "after")]
        m0b, m0a = b0.metrics(), a0.metrics()
        w("The same histories generated without their mass-failure runs (`--mass 0`; the other "
          "runs as they were, the mass failures replaced by ordinary runs): what each model does apart from them.")
        w("")
        w("| metric (no mass failures) | before | after |")
        w("|---|---|---|")
        for name, kind, nb, na in metric_rows(b0, a0):
            w(f"| {name} | {fmt(m0b[name], kind)}" + (f" ({nb})" if nb else "") + f" | {fmt(m0a[name], kind)}"
              + (f" ({na})" if na else "") + " |")
        w("")
    for name, s in (("before", b), ("after", a)):
        extra = []
        if s.no_first_bad:
            extra.append(f"{s.no_first_bad} listed with a known break but no first bad commit")
        if s.interval_n:
            extra.append(f"last good < true break ≤ first bad for {s.interval_ok} of {s.interval_n}")
        signed = f"signed median {statistics.median(s.signed):g}" if s.signed else ""
        w(f"- {name}: break distance " + ", ".join(x for x in [signed, *extra] if x) + "."
          if (signed or extra) else f"- {name}: no break located.")
    ideal = a.ideal or b.ideal
    if ideal:
        w(f"- observable: the first commit at or after the break that the label set ran is {pct(ideal, 50)} "
          f"commits after it at the median, {pct(ideal, 90)} at p90 (a label set skips a commit with "
          f"probability {1 - params.coverage:.0%}, and mass failures hide runs): the best a model can report.")
    w("")
    w("Where each kind ended up (units; *flaky*: only in `warden flaky`; *regressed*: only in "
      "`warden regressed`, with the new model's verdicts `broken`/`regressed` when it gives them; "
      "*both*; *neither*). Right: flaky → flaky; broken/broken-at/flaky-that-also-breaks → regressed; "
      "healthy and break-and-fixed → neither.")
    w("")
    out += kind_table(b, a)
    if len(variants) > 1:
        w("")
        w("The same without mass failures:")
        w("")
        out += kind_table(scores[(variants[1], "before")], scores[(variants[1], "after")])
    w("")
    w("Verdict counts in parentheses cover `regressed` and `both`. Timing (whole commands, wall, "
      "release builds, SQLite, median over the seeds; the ≤ 1 s targets on 1,000,000 results are in "
      "the History store section):")
    w("")
    w("| build | import (all runs, one process each) | `flaky` | `regressed` |")
    w("|---|---|---|---|")
    for name, s in (("before", b), ("after", a)):
        w(f"| {name} | {statistics.median(s.import_s):.2f} s ({params.runs} processes) | "
          f"{statistics.median(s.flaky_s):.3f} s | {statistics.median(s.regressed_s):.3f} s |")
    out += report_tail(errors, info)
    out.append(END)
    return "\n".join(out)


# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default=DEFAULT_BEFORE,
                    help=f"warden binary or git revision (default {DEFAULT_BEFORE}: main before issue 15)")
    ap.add_argument("--before-label", help="how the report names the before build (default: the argument)")
    ap.add_argument("--before-target-dir", help="target directory to build --before REV in "
                                                "(default $CARGO_TARGET_DIR-before, else target/classify-before)")
    ap.add_argument("--after", help="warden binary (default: this checkout's release build)")
    ap.add_argument("--after-label", help="how the report names the after build")
    ap.add_argument("--no-build", action="store_true", help="use the already built release binary as --after")
    ap.add_argument("--seeds", help="comma-separated seeds (default 1,2,3; --quick: 1)")
    ap.add_argument("--runs", type=int, help="runs per history (default 300; --quick: 120)")
    ap.add_argument("--tests", type=int, help="tests per history (default 150)")
    ap.add_argument("--mass", type=float,
                    help="share of mass-failure runs (default: 0.04, and each history again without them)")
    ap.add_argument("--quick", action="store_true", help="one seed, 120 runs")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (and say where)")
    ap.add_argument("--output", default=str(REPO / "BENCHMARKS.md"))
    args = ap.parse_args()

    seeds = [int(x) for x in (args.seeds or ("1" if args.quick else "1,2,3")).split(",")]
    params = synth.Params()
    params.runs = args.runs or (120 if args.quick else params.runs)
    if args.tests:
        params.tests = args.tests
    if args.mass is not None:
        params.mass = args.mass

    after = warden_binary("bench/classify.py", args.after, args.no_build)
    if after is None:
        return 2
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="warden-classify-"))
    errors: list[str] = []
    # The main variant, then (unless --mass) the same histories without
    # their mass failures: what each model does apart from them.
    variants = [params.mass] + ([0.0] if args.mass is None and params.mass > 0 else [])
    scores = {(m, b): Score() for m in variants for b in ("before", "after")}
    summaries = []
    try:
        before = Path(args.before)
        if not before.is_file():
            before = build_rev(args.before, before_target_dir(args.before_target_dir))
        labels = {
            "before": f"`{args.before_label or args.before}` (today's heuristic)",
            "after": args.after_label or (f"`{after}`" if args.after else "this checkout's release build"),
        }
        builds = {"before": before, "after": after}
        for mass in variants:
            for seed in seeds:
                p = dataclasses.replace(params, seed=seed, mass=mass)
                hist = work / f"seed-{seed}-mass-{mass}"
                h = synth.generate(hist, p)
                if mass == variants[0]:
                    summaries.append(f"seed {seed}: " + synth.summary(h))
                log(f"mass {mass} seed {seed}: " + synth.summary(h))
                truth = json.loads((hist / "truth.json").read_text())
                for name, binary in builds.items():
                    o = evaluate(binary, hist, work / f"{name}-{seed}-{mass}.db")
                    errors += o.errors
                    s = score(truth, o)
                    scores[(mass, name)].add(s)
                    log(f"mass {mass} seed {seed} {name}: import {o.import_s:.1f} s, flaky {o.flaky_s:.3f} s "
                        f"({len(o.flaky)} rows), regressed {o.regressed_s:.3f} s ({len(o.regressed)} rows); "
                        + ", ".join(f"{k} {fmt(v, 'n' if 'distance' in k else 'pct')}"
                                    for k, v in s.metrics().items()))
                shutil.rmtree(hist, ignore_errors=True)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    block = render(args, params, seeds, summaries, labels, scores, variants, errors, machine_info(after),
                   time.monotonic() - t0)
    write_section(Path(args.output), block, BEGIN, END, "bench/classify.py", REPRO_LINE)
    print(block)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
