#!/usr/bin/env python3
"""Synthetic test histories with a known truth, for measuring how warden
tells flaky, broken, regressed and fixed tests apart (issue 15). Used by
bench/classify.py; usable on its own (and from a Rust test):

    python3 bench/synth_history.py --out DIR [--seed 1] [--runs 300] [--tests 150]

writes into DIR:

- `run-NNNN.xml`: one JUnit XML file per run (Surefire style; suites of a
  retrying runner report `<flakyFailure>`/`<rerunFailure>`);
- `imports.json`: one entry per run, in run order: `{"file": "run-0000.xml",
  "args": ["import", "junit", "--commit", SHA, "--branch", "main", "--at",
  TIME, "--label", "arch=x86_64", …, "run-0000.xml"]}`: the arguments after
  the binary, `--history` left for the caller to add, the file relative
  to DIR (run it there);
- `import.sh`: the same commands as a script (`WARDEN=… HISTORY=sqlite:…
  sh DIR/import.sh`);
- `truth.json`: the parameters, the commits in order, every run (commit,
  time, labels, whether it is a mass failure or a re-test), and one entry
  per test and label set (a *unit*) with its kind and what was observed.

The model. Commits 0..C-1 are tested in order, commit k at START + 2k hours;
each label set (arch x compiler: 4 of them) tests a commit with probability
`--coverage` (a run), and re-tests it 1 h later with probability `--retest`
(a second run of the same commit: the same commit both fails and passes for
a flaky test). Some runs are *mass failures* (`--mass`): the infrastructure
was down, `--mass-share` of all tests fail with a connection error; the
truth is that those failures say nothing about any test. Every test has,
for each label set, one kind:

- `healthy`: always passes (outside mass failures);
- `flaky`: fails at random with rate p, 2%-50% (log-uniform);
- `broken-at-commit`: passes before commit b, fails from b on;
- `broken-before-window`: fails in every run;
- `break-and-fixed`: fails from commit b until commit f (excluded), passes
  after: it is *fixed* and belongs in neither list;
- `flaky-that-also-breaks`: flaky with rate p (5%-30%) before commit b,
  fails every run from b on: broken (regressed at b).

A test that is not healthy is so in all its label sets (40%), in both
compilers of one arch (30%), or in one label set (30%), with the same
parameters (a break is at the same commit everywhere it happens); in its
other label sets it is healthy. Half the suites use a retrying runner
(Surefire `rerunFailingTestsCount=2`): a failing attempt is run again up to
twice; a later passing attempt makes the result `flaky` (`<flakyFailure>`),
all failing makes it `failed` (`<rerunFailure>`). Breaks fall in the middle
half of the commits, fixes at least 5 commits later, so that every change
is visible on both sides.

Deterministic: everything depends only on the seed and the parameters
(not on the time of day: the dates are fixed, 2026-10-01 on).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import random
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

KINDS = (
    "healthy",
    "flaky",
    "broken-at-commit",
    "broken-before-window",
    "break-and-fixed",
    "flaky-that-also-breaks",
)
# Shares of the tests that are not healthy everywhere, by kind.
KIND_WEIGHTS = {
    "flaky": 0.42,
    "broken-at-commit": 0.17,
    "broken-before-window": 0.09,
    "break-and-fixed": 0.15,
    "flaky-that-also-breaks": 0.17,
}
ARCHES = ("x86_64", "aarch64")
COMPILERS = ("gcc", "llvm")
LABEL_KEYS = ("arch", "compiler")
SUITE_NAMES = ("core", "net", "storage", "sched", "mm", "crypto", "fs", "ipc", "time", "drivers",
               "parser", "cache", "auth", "rpc", "log", "io")
START = datetime.datetime(2026, 10, 1, 6, 0, 0)
COMMIT_STEP = datetime.timedelta(hours=2)
RETRIES = 2  # reruns of a failed test in a retrying suite


@dataclass
class Params:
    seed: int = 1
    runs: int = 300
    tests: int = 150
    tests_per_suite: int = 15
    special: float = 0.45  # share of tests that are not healthy everywhere
    coverage: float = 0.9  # a label set tests a commit with this probability
    retest: float = 0.12  # ... and tests it again with this one
    mass: float = 0.04  # share of runs that are mass failures
    mass_share: float = 0.85  # share of the tests failing in a mass failure
    retrying_suites: float = 0.5


@dataclass
class Unit:
    """One test in one label set: the unit of truth."""
    test: str
    labels: str  # "arch=x86_64 compiler=gcc"
    kind: str
    rate: float | None = None
    break_commit: int | None = None
    fix_commit: int | None = None
    retrying: bool = False
    # Observed outside mass failures: results, failed, flaky, passed.
    runs: int = 0
    failed: int = 0
    flaky: int = 0
    passed: int = 0
    # The first commit >= break_commit this label set ran (outside mass
    # failures): the best first-bad commit a model can report.
    first_bad_observed: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.test, self.labels)


@dataclass
class Run:
    index: int
    file: str
    commit_index: int
    commit: str
    at: str  # RFC 3339 UTC
    labels: dict[str, str]
    retest: bool
    mass_failure: bool
    failed: int = 0
    flaky: int = 0

    @property
    def label_key(self) -> str:
        return labels_key(self.labels)


@dataclass
class History:
    params: Params
    commits: list[str]
    configs: list[str]
    runs: list[Run] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)

    def truth(self) -> dict:
        return {
            "params": asdict(self.params),
            "label_keys": list(LABEL_KEYS),
            "configs": self.configs,
            "commits": self.commits,
            "runs": [asdict(r) for r in self.runs],
            "units": [asdict(u) for u in self.units],
        }


def labels_key(labels: dict[str, str]) -> str:
    """How warden writes a run's labels: `k=v` sorted by key, space-separated."""
    return " ".join(f"{k}={labels[k]}" for k in sorted(labels))


def commit_sha(seed: int, k: int) -> str:
    return hashlib.sha1(f"warden-synth-{seed}-{k}".encode()).hexdigest()


def iso(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule(p: Params, rng: random.Random, configs: list[dict[str, str]]):
    """[(commit index, config index, retest)] until p.runs runs, in time order."""
    out = []
    k = 0
    while len(out) < p.runs:
        for j in range(len(configs)):
            if rng.random() < p.coverage:
                out.append((k, j, False))
                if rng.random() < p.retest:
                    out.append((k, j, True))
        k += 1
    out = out[:p.runs]
    # Time order: all first runs of commit k, then its re-tests.
    out.sort(key=lambda x: (x[0], x[2], x[1]))
    return out


def assign_kinds(p: Params, rng: random.Random, tests: list[str], configs: list[dict[str, str]],
                 n_commits: int, retrying: dict[str, bool]) -> list[Unit]:
    units = []
    lo, hi = max(1, n_commits // 4), max(2, (3 * n_commits) // 4)
    for t in tests:
        kind = "healthy"
        scope = list(range(len(configs)))
        if rng.random() < p.special:
            kind = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
            s = rng.random()
            if s < 0.3:
                arch = rng.choice(ARCHES)
                scope = [j for j, c in enumerate(configs) if c["arch"] == arch]
            elif s < 0.6:
                scope = [rng.randrange(len(configs))]
        rate = brk = fix = None
        if kind == "flaky":
            rate = round(math.exp(rng.uniform(math.log(0.02), math.log(0.5))), 3)
        elif kind == "flaky-that-also-breaks":
            rate = round(rng.uniform(0.05, 0.3), 3)
            brk = rng.randint(lo, hi)
        elif kind == "broken-at-commit":
            brk = rng.randint(lo, hi)
        elif kind == "break-and-fixed":
            brk = rng.randint(max(1, n_commits // 5), max(1, n_commits // 2))
            fix = min(brk + rng.randint(5, max(5, (3 * n_commits) // 10)), n_commits - 5)
            fix = max(fix, brk + 3)
        for j, c in enumerate(configs):
            inside = j in scope
            units.append(Unit(
                test=t, labels=labels_key(c), kind=kind if inside else "healthy",
                rate=rate if inside else None, break_commit=brk if inside else None,
                fix_commit=fix if inside else None, retrying=retrying[t]))
    return units


def failing(u: Unit, k: int, r: random.Random) -> bool:
    """Whether one attempt of unit u at commit k fails."""
    if u.kind == "healthy":
        return False
    if u.kind == "broken-before-window":
        return True
    if u.kind == "broken-at-commit":
        return k >= u.break_commit
    if u.kind == "break-and-fixed":
        return u.break_commit <= k < u.fix_commit
    if u.kind == "flaky":
        return r.random() < u.rate
    # flaky-that-also-breaks
    return k >= u.break_commit or r.random() < u.rate


def message(u: Unit, k: int, r: random.Random) -> tuple[str, str]:
    """(message, exception type) of a failed attempt at commit k: flaky
    tests time out on varying ports or lose their connection, broken ones
    fail an assertion of their own."""
    broken = u.break_commit is not None and k >= u.break_commit and (u.fix_commit is None or k < u.fix_commit)
    if u.kind in ("flaky", "flaky-that-also-breaks") and not broken:
        if r.random() < 0.5:
            return (f"Timed out after {r.choice((2000, 5000))} ms waiting for 127.0.0.1:{r.randint(30000, 60000)}",
                    "java.util.concurrent.TimeoutException")
        return (f"Connection reset by peer (thread-{r.randint(1, 64)})", "java.net.SocketException")
    h = int(hashlib.sha1(u.test.encode()).hexdigest()[:6], 16)
    return (f"expected: <{h % 997}> but was: <{h % 997 + 1}>", "org.opentest4j.AssertionFailedError")


def case_xml(name: str, suite: str, dt: float, status: str, attempts: list[tuple[str, str]]) -> str:
    head = f'    <testcase classname={quoteattr(suite)} name={quoteattr(name)} time="{dt:.3f}"'
    if status == "passed":
        return head + "/>"
    parts = []
    if status == "flaky":
        for msg, exc in attempts:
            parts.append(f"      <flakyFailure message={quoteattr(msg)} type={quoteattr(exc)}>"
                         f"<stackTrace>{escape(exc + ': ' + msg)}</stackTrace></flakyFailure>")
    else:
        (msg, exc), rest = attempts[0], attempts[1:]
        parts.append(f"      <failure message={quoteattr(msg)} type={quoteattr(exc)}>"
                     f"{escape(exc + ': ' + msg)}\n\tat {suite}.{name}(Test.java:42)</failure>")
        for msg, exc in rest:
            parts.append(f"      <rerunFailure message={quoteattr(msg)} type={quoteattr(exc)}/>")
    return head + ">\n" + "\n".join(parts) + "\n    </testcase>"


def generate(out: Path, params: Params) -> History:
    """Writes the history into `out` (created); returns it."""
    p = params
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(p.seed)
    configs = [{"arch": a, "compiler": c} for a in ARCHES for c in COMPILERS]
    plan = schedule(p, rng, configs)
    n_commits = plan[-1][0] + 1 if plan else 0
    n_suites = max(1, math.ceil(p.tests / p.tests_per_suite))
    suites = [SUITE_NAMES[s % len(SUITE_NAMES)] + ("" if s < len(SUITE_NAMES) else str(s // len(SUITE_NAMES)))
              for s in range(n_suites)]
    tests = []
    suite_of = {}
    for i in range(p.tests):
        s = suites[i // p.tests_per_suite]
        t = f"{s}/test_{i:04d}"
        tests.append(t)
        suite_of[t] = s
    suite_retrying = {s: rng.random() < p.retrying_suites for s in suites}
    retrying = {t: suite_retrying[suite_of[t]] for t in tests}
    units = assign_kinds(p, rng, tests, configs, n_commits, retrying)
    by_config: dict[str, list[Unit]] = {}
    for u in units:
        by_config.setdefault(u.labels, []).append(u)
    h = History(params=p, commits=[commit_sha(p.seed, k) for k in range(n_commits)],
                configs=[labels_key(c) for c in configs], units=units)
    mass_runs = set(rng.sample(range(len(plan)), round(p.mass * len(plan))))
    script = ["#!/bin/sh", "# Generated by bench/synth_history.py: WARDEN=path/to/warden HISTORY=sqlite:DB sh import.sh",
              "set -e", 'cd "$(dirname "$0")"', ': "${HISTORY:?set HISTORY to a store, e.g. sqlite:$PWD/h.db}"']
    imports = []
    for i, (k, j, retest) in enumerate(plan):
        cfg = configs[j]
        key = labels_key(cfg)
        t0 = START + k * COMMIT_STEP + datetime.timedelta(minutes=5 * j + (60 if retest else 0))
        r = random.Random(p.seed * 100003 + i)
        mass = i in mass_runs
        run = Run(index=i, file=f"run-{i:04d}.xml", commit_index=k, commit=h.commits[k], at=iso(t0),
                  labels=dict(cfg), retest=retest, mass_failure=mass)
        cases: dict[str, list[str]] = {s: [] for s in suites}
        counts = {s: [0, 0] for s in suites}  # failures, flakes
        for u in by_config[key]:
            s = suite_of[u.test]
            name = u.test.split("/", 1)[1]
            dt = round(0.005 + r.lognormvariate(-4.0, 1.2), 3)
            attempts = []
            if mass and r.random() < p.mass_share:
                port = r.randint(1024, 65535)
                msg = (f"Connection refused: ci-db-{r.randint(1, 9)}.internal:{port}", "java.net.ConnectException")
                attempts = [msg] * (1 + (RETRIES if u.retrying else 0))
                status = "failed"
            else:
                status = "passed"
                if failing(u, k, r):
                    attempts.append(message(u, k, r))
                    status = "failed"
                    if u.retrying:
                        for _ in range(RETRIES):
                            if failing(u, k, r):
                                attempts.append(message(u, k, r))
                            else:
                                status = "flaky"
                                break
                if not mass:
                    u.runs += 1
                    if status == "failed":
                        u.failed += 1
                    elif status == "flaky":
                        u.flaky += 1
                    else:
                        u.passed += 1
                    if (u.break_commit is not None and k >= u.break_commit
                            and (u.first_bad_observed is None or k < u.first_bad_observed)):
                        u.first_bad_observed = k
            if status == "failed":
                counts[s][0] += 1
                run.failed += 1
            elif status == "flaky":
                counts[s][1] += 1
                run.flaky += 1
            cases[s].append(case_xml(name, s, dt, status, attempts))
        parts = []
        for s in suites:
            f, fl = counts[s]
            parts.append(f'  <testsuite name="{s}" tests="{len(cases[s])}" failures="{f}" errors="0" '
                         f'skipped="0" flakes="{fl}" timestamp="{iso(t0)[:-1]}" hostname="ci-{key.replace(" ", "-")}">\n'
                         + "\n".join(cases[s]) + "\n  </testsuite>")
        (out / run.file).write_text('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="ci">\n'
                                    + "\n".join(parts) + "\n</testsuites>\n")
        args = ["import", "junit", "--commit", run.commit, "--branch", "main", "--at", run.at]
        for lk in sorted(cfg):
            args += ["--label", f"{lk}={cfg[lk]}"]
        args.append(run.file)
        imports.append({"file": run.file, "args": args})
        script.append('"${WARDEN:-warden}" ' + " ".join(shlex.quote(a) for a in args[:2])
                      + ' --history "$HISTORY" ' + " ".join(shlex.quote(a) for a in args[2:]))
        h.runs.append(run)
    (out / "imports.json").write_text(json.dumps(imports, indent=1) + "\n")
    (out / "import.sh").write_text("\n".join(script) + "\n")
    (out / "truth.json").write_text(json.dumps(h.truth(), indent=1) + "\n")
    return h


def summary(h: History) -> str:
    kinds = {k: sum(1 for u in h.units if u.kind == k) for k in KINDS}
    mass = sum(1 for r in h.runs if r.mass_failure)
    retests = sum(1 for r in h.runs if r.retest)
    return (f"{len(h.runs)} runs over {len(h.commits)} commits and {len(h.configs)} label sets "
            f"({retests} re-tests, {mass} mass failures); {h.params.tests} tests = {len(h.units)} units: "
            + ", ".join(f"{v} {k}" for k, v in kinds.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="directory to write (created)")
    d = Params()
    for f, v in asdict(d).items():
        ap.add_argument("--" + f.replace("_", "-"), type=type(v), default=v, help=f"default {v}")
    args = ap.parse_args()
    params = Params(**{f: getattr(args, f) for f in asdict(d)})
    h = generate(Path(args.out), params)
    print(summary(h))
    return 0


if __name__ == "__main__":
    sys.exit(main())
