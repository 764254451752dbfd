#!/usr/bin/env python3
"""warden scheduling benchmark: start order (longest expected first versus
config order) and `--partition duration:K/N` shard balance. Writes the
`## Scheduling` section of BENCHMARKS.md (between `<!-- schedule:begin -->`
and `<!-- schedule:end -->`, leaving the rest of the file alone).

    python3 bench/schedule.py            # 3 repetitions of each order (~7 minutes)
    python3 bench/schedule.py --quick    # durations x 0.25, 1 repetition (~1.5 minutes)

Data: 40 batches `sleep X` (argv, exec'd directly), `max-parallel = 2`.
X is log-normal (sigma 1.0, fixed seed), scaled so that the 40 add up to
80 s (20 s with --quick) and rounded to 10 ms: heavy-tailed, one batch
about a quarter of the total. In config order the 4 longest come last,
shortest of them first: new slow tests appended at the end, the worst case
for config order.

1. Seed: one `warden run --history sqlite:seed.db` into an empty store
   (config order; every batch's duration recorded, so each has a p90).
2. Start order, repetitions interleaved in a seeded shuffled order:
   - longest-first: `warden run --history sqlite:<copy of seed.db>` (a
     fresh copy each time, so every repetition sees the same history);
   - config order (baseline): `warden run --history sqlite:<new empty
     store>`: no p90 for any batch, so warden keeps config order; the same
     code path otherwise (store opened, run recorded).
   Makespan = warden's own `Makespan:` summary line (first batch start to
   last batch end), cross-checked against the batches the run recorded.
   Lower bound = max(longest, total / 2) of the sleep durations; ratio =
   makespan / lower bound, target <= 1.05 for longest-first.
3. Sharding: `warden check --history sqlite:<copy of seed.db> --partition
   KIND:K/4` for K = 1..4 and KIND = duration, hash, count; each shard's
   load = the sum of its batches' sleep durations; ratio = longest shard /
   mean shard, target <= 1.1 for duration (hash and count are the
   baselines). Then the 4 duration shards are run one after another
   (`warden run --partition duration:K/4`, max-parallel 2 each).

Stdlib only (Python >= 3.9). Linux only. Every process the harness starts
gets a unique `BENCH_MARK=<uuid>` in its environment; after every run
/proc/*/environ is scanned for that exact entry, and only exact matches are
reported and SIGKILLed (see bench/run.py).
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

# bench/run.py's helpers: timing, process marking, noise, machine table.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402
    REPO, Noise, Stats, kill_marked, loadavg, log, machine_info, marked_env, order, spread,
    timed_run, toml_str, warden_binary, write_section,
)

BEGIN = "<!-- schedule:begin -->"
END = "<!-- schedule:end -->"

# The data set.
SEED = 20261124
BATCHES = 40
SIGMA = 1.0
TOTAL_S = 80.0              # full; --quick scales by QUICK_SCALE
QUICK_SCALE = 0.25
LONG_LAST = 4               # the longest ones, last in config order
MAX_PARALLEL = 2
SHARDS = 4

# Targets (from the issue).
ORDER_TARGET = 1.05         # makespan / lower bound, longest-first
SHARD_TARGET = 1.1          # longest shard / mean shard, duration:K/N

REPS = {"full": 3, "quick": 1}
STRATEGIES = ("duration", "hash", "count")

# Variables that would change what warden does, whoever set them.
# (The CI ones name the commit whose time `duration` reads the history as of.)
WARDEN_VARS = ("WARDEN_HISTORY", "WARDEN_PARTITION", "WARDEN_CONTAINMENT", "WARDEN_DEADLINE",
               "JOB_TIMEOUT_MINUTES", "GITHUB_STEP_SUMMARY", "GITHUB_SHA", "GITHUB_REF_NAME",
               "CI_COMMIT_SHA", "CI_COMMIT_REF_NAME", "SEMAPHORE_GIT_SHA", "SEMAPHORE_GIT_BRANCH")

DURATION_RE = r"(?:\d+h )?(?:\d+m )?\d+(?:\.\d+)?s"
MAKESPAN_RE = re.compile(rf"^Makespan: ({DURATION_RE})(.*)$", re.M)
PREDICTED_RE = re.compile(rf"predicted ({DURATION_RE})")
LOWER_RE = re.compile(rf"lower bound ({DURATION_RE})")


# --------------------------------------------------------------------------
# helpers


def parse_duration(s: str) -> float:
    """warden's `duration::rounded` back to seconds: `40.12s`, `1m 3s`, `1h 2m 3s`."""
    total = 0.0
    for part in s.split():
        unit = part[-1]
        v = float(part[:-1])
        total += v * {"h": 3600, "m": 60, "s": 1}[unit]
    return total


def clean_env() -> tuple[dict[str, str], bytes]:
    env, mark = marked_env()
    for k in [k for k in env if k in WARDEN_VARS or k.startswith("GIT_")]:
        del env[k]
    return env, mark


def git(work: Path, *args: str) -> str:
    """git in the scratch directory, which is a repository of its own: `duration`
    reads the history as of the tested commit's time (HEAD's committer time)."""
    env, mark = clean_env()
    env.update(GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@localhost",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@localhost")
    try:
        return subprocess.run(["git", "-C", str(work), *args], env=env, check=True, capture_output=True,
                              text=True).stdout.strip()
    finally:
        kill_marked(mark)


def list_schedule(durations: list[float], start_order: list[int], slots: int) -> float:
    """The makespan of starting `start_order` on `slots` slots, each batch as
    soon as a slot is free, with no overhead: the model of what warden does."""
    free = [0.0] * slots
    for i in start_order:
        t = heapq.heappop(free)
        heapq.heappush(free, t + durations[i])
    return max(free)


def lower_bound(durations: list[float], slots: int) -> float:
    return max(max(durations), sum(durations) / slots)


def copy_store(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite store (WAL included), through the backup API."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(dst) + suffix).unlink(missing_ok=True)
    s = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    d = sqlite3.connect(dst)
    try:
        s.backup(d)
    finally:
        d.close()
        s.close()


def remove_store(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(db) + suffix).unlink(missing_ok=True)


def last_run_batches(db: Path) -> list[tuple[str, int, int]]:
    """(name, started_at ms, duration ms) of the batches of the store's latest run."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT id FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return []
        return con.execute(
            "SELECT name, started_at, duration_ms FROM batches WHERE run_id = ? AND phase = 'batch' "
            "ORDER BY started_at, id", (row[0],)).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------
# the data set


@dataclass
class Data:
    names: list[str]            # config order
    durations: list[float]      # seconds, config order
    scale: float

    @property
    def total(self) -> float:
        return sum(self.durations)

    @property
    def longest(self) -> float:
        return max(self.durations)

    def bound(self) -> float:
        return lower_bound(self.durations, MAX_PARALLEL)

    def index(self, name: str) -> int:
        return self.names.index(name)


def make_data(scale: float) -> Data:
    rng = random.Random(SEED)
    raw = [rng.lognormvariate(0.0, SIGMA) for _ in range(BATCHES)]
    total = TOTAL_S * scale
    k = total / sum(raw)
    d = [max(0.01, round(x * k, 2)) for x in raw]
    # The LONG_LAST longest go last, ascending; the others keep their drawn order.
    longest = sorted(range(BATCHES), key=lambda i: (d[i], i))[-LONG_LAST:]
    rest = [i for i in range(BATCHES) if i not in longest]
    cfg = rest + longest
    return Data([f"b{j:02d}" for j in range(BATCHES)], [d[i] for i in cfg], scale)


def write_config(path: Path, data: Data) -> None:
    parts = [f'[run]\nmax-parallel = {MAX_PARALLEL}\nartifacts = "out"\n']
    for name, x in zip(data.names, data.durations):
        parts.append(f'[[batch]]\nname = {toml_str(name)}\ncommand = ["sleep", "{x:.2f}"]\n'
                     'timeout = "5m"\ngrace = "1s"\n')
    path.write_text("\n".join(parts))


# --------------------------------------------------------------------------
# running warden


@dataclass
class Ctx:
    warden: Path
    work: Path
    cfg: Path
    data: Data
    quick: bool
    errors: list[str] = field(default_factory=list)

    def error(self, msg: str) -> None:
        log("ERROR: " + msg)
        self.errors.append(msg)


@dataclass
class Run:
    wall: float
    makespan: float | None          # warden's summary line
    predicted: float | None
    warden_bound: float | None      # warden's lower bound (from the history's p90s)
    recorded: list[tuple[str, int, int]]  # the run's batches from the store
    text: str
    inversions: int = 0  # pairs started against the expected order

    @property
    def makespan_recorded(self) -> float | None:
        """First start to last end of the batches the run recorded (ms precision)."""
        if not self.recorded:
            return None
        start = min(b[1] for b in self.recorded)
        end = max(b[1] + b[2] for b in self.recorded)
        return (end - start) / 1000

    def start_order(self) -> list[str]:
        return [b[0] for b in self.recorded]


def warden(ctx: Ctx, what: str, args: list[str], out: Path) -> tuple[float, int, str] | None:
    env, mark = clean_env()
    with open(out, "wb") as so:
        r = timed_run([str(ctx.warden), *args], env=env, cwd=ctx.work, stdout=so,
                      stderr=subprocess.STDOUT)
    left = kill_marked(mark)
    text = out.read_text(errors="replace")
    if left:
        ctx.error(f"{what}: processes left behind: {left}")
    if r.rc != 0:
        ctx.error(f"{what}: warden exited {r.rc}: {text[-800:].strip()}")
        return None
    return r.wall, r.rc, text


def warden_run(ctx: Ctx, what: str, store: Path, extra: list[str] = (), expect: int | None = None) -> Run | None:
    out_dir = ctx.work / "out"
    shutil.rmtree(out_dir, ignore_errors=True)
    res = warden(ctx, what, ["run", "-c", str(ctx.cfg), "--history", f"sqlite:{store}", *extra],
                 ctx.work / "warden.out")
    if res is None:
        return None
    wall, _, text = res
    expect = BATCHES if expect is None else expect
    try:
        cases = list(ET.parse(out_dir / "junit.xml").getroot().iter("testcase"))
    except (OSError, ET.ParseError) as e:
        ctx.error(f"{what}: no JUnit report: {e}")
        return None
    bad = [c.get("name") for c in cases if any(ch.tag in ("failure", "error", "skipped") for ch in c)]
    if len(cases) != expect or bad:
        ctx.error(f"{what}: JUnit has {len(cases)} cases (expected {expect}), not passed: {bad[:5]}")
    m = MAKESPAN_RE.search(text)
    if m is None:
        ctx.error(f"{what}: no `Makespan:` line in warden's output: {text[-400:].strip()}")
    rest = m.group(2) if m else ""
    p, lb = PREDICTED_RE.search(rest), LOWER_RE.search(rest)
    recorded = last_run_batches(store)
    if len(recorded) != expect:
        ctx.error(f"{what}: the store recorded {len(recorded)} batches for the run, not {expect}")
    return Run(wall, parse_duration(m.group(1)) if m else None, parse_duration(p.group(1)) if p else None,
               parse_duration(lb.group(1)) if lb else None, recorded, text)


# Batches granted in one scheduler pass (the first two, or two taking the
# slots two batches freed at once) start concurrently, each on its own task,
# and record their start a few ms apart in either order.
SAME_START_MS = 20


def inversions(recorded: list[tuple[str, int, int]], expected: list[str]) -> int:
    """Pairs that started in the opposite order from `expected`, more than
    SAME_START_MS apart."""
    start = {n: t for n, t, _ in recorded}
    seq = [start[n] for n in expected if n in start]
    return sum(1 for i in range(len(seq)) for j in range(i + 1, len(seq))
               if seq[j] < seq[i] - SAME_START_MS)


# --------------------------------------------------------------------------
# 1 + 2: seed, then longest-first versus config order


def bench_order(ctx: Ctx, seed_db: Path, reps: int) -> dict:
    data = ctx.data
    noise = Noise()
    log("seed run (empty store: config order)")
    seed = warden_run(ctx, "seed run", seed_db)
    if seed is None:
        raise SystemExit("bench/schedule.py: the seed run failed; see the errors above")
    p90 = {n: ms / 1000 for n, _, ms in seed.recorded}  # one sample each: the p90 is it
    # The commit the shards test comes after the seed run (as in CI: the
    # history holds earlier pipelines' runs). Its time has whole seconds.
    time.sleep(1.2)
    git(ctx.work, "commit", "-q", "--allow-empty", "-m", "the tested commit")
    # The order warden should start in: longest p90 first, ties in config order.
    expected_lf = sorted(data.names, key=lambda n: (-p90.get(n, 0.0), data.index(n)))
    log(f"seed run: makespan {seed.makespan}, wall {seed.wall:.2f} s")

    kinds = ["longest-first", "config order"]
    res = {k: [] for k in kinds}
    for rep in range(reps):
        for kind in order(kinds, rep):
            store = ctx.work / f"{'lf' if kind == 'longest-first' else 'cfg'}-{rep}.db"
            if kind == "longest-first":
                copy_store(seed_db, store)
            else:
                remove_store(store)
            r = warden_run(ctx, f"{kind} rep {rep + 1}", store)
            if r is not None:
                want = expected_lf if kind == "longest-first" else data.names
                r.inversions = inversions(r.recorded, want)
                if r.inversions:
                    ctx.error(f"{kind} rep {rep + 1}: start order differs from the expected one in "
                              f"{r.inversions} pairs: started {r.start_order()[:10]}…, expected {want[:10]}…")
                if (r.predicted is None) != (kind == "config order"):
                    ctx.error(f"{kind} rep {rep + 1}: predicted makespan {r.predicted} unexpected")
                res[kind].append(r)
                log(f"{kind} rep {rep + 1}/{reps}: makespan {r.makespan} s (recorded "
                    f"{r.makespan_recorded}), predicted {r.predicted}, wall {r.wall:.2f} s")
            remove_store(store)
    return {"seed": seed, "p90": p90, "expected_lf": expected_lf, "runs": res, "noise": noise.stop()}


# --------------------------------------------------------------------------
# 3: sharding


SHARD_LINE_RE = re.compile(r"^--partition (\S+): (\d+) of (\d+) batches(, by hash)? "
                           r"\(assignment ([0-9a-f]+);[^)]*\): ?(.*)$", re.M)
CHECK_PREDICTED_RE = re.compile(rf"^predicted makespan: ({DURATION_RE}) \(lower bound ({DURATION_RE})", re.M)


@dataclass
class Shard:
    names: list[str]
    fingerprint: str
    by_hash: bool                   # `duration` fell back to hash
    predicted: float | None         # `check`'s predicted makespan of the shard
    text: str


def check_shard(ctx: Ctx, store: Path, part: str) -> Shard | None:
    """`warden check --partition part`: the batches of that shard."""
    res = warden(ctx, f"check --partition {part}",
                 ["check", "-c", str(ctx.cfg), "--history", f"sqlite:{store}", "--partition", part],
                 ctx.work / "check.out")
    if res is None:
        return None
    text = res[2]
    m = SHARD_LINE_RE.search(text)
    if m is None:
        ctx.error(f"check --partition {part}: no `--partition {part}: …` line: {text[:600]}")
        return None
    names = [n.strip() for n in m.group(6).split(",") if n.strip()]
    if len(names) != int(m.group(2)) or int(m.group(3)) != BATCHES:
        ctx.error(f"check --partition {part}: {m.group(0)!r} lists {len(names)} names")
    if part.startswith("duration") and f"p90 of {BATCHES} of {BATCHES} batches" not in text:
        ctx.error(f"check --partition {part}: not every batch has a p90: {text[:600]}")
    if "git does not know" in text:
        ctx.error(f"check --partition {part}: {text[:300]}")
    p = CHECK_PREDICTED_RE.search(text)
    return Shard(names, m.group(5), bool(m.group(4)), parse_duration(p.group(1)) if p else None, text)


def bench_shards(ctx: Ctx, seed_db: Path, p90: dict[str, float]) -> dict:
    data = ctx.data
    store = ctx.work / "shard.db"
    copy_store(seed_db, store)
    out = {}
    noise = Noise()
    for kind in STRATEGIES:
        shards: list[Shard] = []
        for k in range(1, SHARDS + 1):
            r = check_shard(ctx, store, f"{kind}:{k}/{SHARDS}")
            if r is None:
                break
            shards.append(r)
        else:
            every = sorted(n for s in shards for n in s.names)
            if every != sorted(data.names):
                ctx.error(f"partition {kind}: the {SHARDS} shards do not hold every batch once: "
                          f"{len(every)} names, {len(set(every))} distinct")
            if kind == "duration" and any(s.by_hash for s in shards):
                ctx.error("partition duration: fell back to hash (no durations as of the commit's time)")
            fps = {s.fingerprint for s in shards}
            if len(fps) != 1:
                ctx.error(f"partition {kind}: the shards print different assignments: {sorted(fps)}")
            loads = [sum(data.durations[data.index(n)] for n in s.names) for s in shards]
            out[kind] = {"shards": [s.names for s in shards], "loads": loads,
                         "p90_loads": [sum(p90.get(n, 0.0) for n in s.names) for s in shards],
                         "predicted": [s.predicted for s in shards], "fingerprints": fps,
                         "head": shards[0].text.splitlines()[:8]}
            log(f"partition {kind}: loads {[round(x, 2) for x in loads]}, "
                f"max/mean {max(loads) / statistics.mean(loads):.3f}")
    remove_store(store)
    out["noise"] = noise.stop()
    return out


def run_shards(ctx: Ctx, seed_db: Path, shards: list[list[str]]) -> list[dict]:
    """Runs the duration shards one after another, each on the seeded history."""
    rows = []
    for k in range(1, SHARDS + 1):
        store = ctx.work / f"shard-run-{k}.db"
        copy_store(seed_db, store)
        r = warden_run(ctx, f"run --partition duration:{k}/{SHARDS}", store,
                       ["--partition", f"duration:{k}/{SHARDS}"], expect=len(shards[k - 1]))
        remove_store(store)
        if r is None:
            continue
        ran = sorted(b[0] for b in r.recorded)
        if ran != sorted(shards[k - 1]):
            ctx.error(f"run duration:{k}/{SHARDS} ran {ran}, check said {sorted(shards[k - 1])}")
        durs = [ctx.data.durations[ctx.data.index(n)] for n in shards[k - 1]]
        rows.append({"k": k, "batches": len(durs), "load": sum(durs),
                     "bound": lower_bound(durs, MAX_PARALLEL) if durs else 0.0,
                     "makespan": r.makespan, "predicted": r.predicted, "wall": r.wall})
        log(f"shard {k}: makespan {r.makespan}, wall {r.wall:.2f} s")
    return rows


# --------------------------------------------------------------------------
# report


def f2(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{x:.2f} s"


def verdict(value: float, target: float) -> str:
    if value != value:
        return "n/a"
    return "PASS" if value <= target else "**MISS**"


def med(vals) -> float:
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else float("nan")


def render(ctx: Ctx, info, args, reps, orders, shards, shard_runs, loads, elapsed) -> str:
    data = ctx.data
    out = []
    w = out.append
    mode = "quick" if args.quick else "full"
    w(BEGIN)
    w("## Scheduling\n")
    w(f"Generated by `bench/schedule.py` (this run: `{' '.join(['python3', 'bench/schedule.py', *sys.argv[1:]])}`, "
      f"{mode} mode, total {elapsed:.0f} s); re-run to refresh this section only. Medians of interleaved "
      "repetitions (min–max); the baseline is measured in the same run.\n")
    w("| | |\n|---|---|")
    for k in ("date", "git commit", "nproc", "cpu", "memory", "kernel", "rustc", "python"):
        w(f"| {k} | {info[k]} |")
    w(f"| warden binary | {ctx.warden} |")
    w(f"| load average (before → after) | {loads[0]} → {loads[1]} |")
    w("")
    if ctx.errors:
        w("### Errors during this run\n")
        for e in ctx.errors:
            w(f"- {e}")
        w("")

    srt = sorted(data.durations)
    w("### Data\n")
    w(f"{BATCHES} batches `command = [\"sleep\", X]`, `max-parallel = {MAX_PARALLEL}`, default containment. "
      f"X log-normal (σ {SIGMA}, seed {SEED}), scaled to a total of **{data.total:.2f} s** and rounded to "
      f"10 ms: median {statistics.median(srt):.2f} s, shortest {srt[0]:.2f} s, the 5 longest "
      f"{', '.join(f'{x:.2f}' for x in srt[-5:])} s (the longest is {100 * data.longest / data.total:.0f}% "
      f"of the total). In config order the {LONG_LAST} longest come last, ascending (new slow tests "
      "appended: the worst case for config order). Lower bound of any order on "
      f"{MAX_PARALLEL} slots: max(longest, total ÷ {MAX_PARALLEL}) = **{data.bound():.2f} s**.\n")
    w("<details><summary>durations in config order (s)</summary>\n")
    w("```")
    w(" ".join(f"{n}={x:.2f}" for n, x in zip(data.names, data.durations)))
    w("```\n</details>\n")

    # order
    seed, runs = orders["seed"], orders["runs"]
    w("### Start order: longest expected first versus config order\n")
    w("History seeded by one run into an empty SQLite store (config order; its makespan "
      f"{f2(seed.makespan)}). Then, {reps} repetition{'s' if reps != 1 else ''} of each, interleaved: "
      "**longest-first** = `warden run --history sqlite:<fresh copy of the seeded store>` (every batch has a "
      "p90: the seed run's duration); **config order** (baseline) = `warden run --history sqlite:<new empty "
      "store>` (no p90 for any batch, so warden keeps config order; otherwise the same code path). "
      "Makespan = warden's `Makespan:` summary line (first batch start → last batch end); lower bound from "
      "the sleep durations above; \"model\" = the same start order simulated with zero overhead per "
      "batch (list scheduling on 2 slots).\n")
    w("| start order | makespan median (min–max) | recorded in the store | warden's prediction | "
      "model | lower bound | makespan ÷ lower bound | model ÷ lower bound | target | result |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    lb = data.bound()
    model = {
        "longest-first": list_schedule(data.durations, [data.index(n) for n in orders["expected_lf"]],
                                       MAX_PARALLEL),
        "config order": list_schedule(data.durations, list(range(BATCHES)), MAX_PARALLEL),
    }
    meds = {}
    for kind in ("longest-first", "config order"):
        rs = runs[kind]
        s = Stats([r.makespan for r in rs if r.makespan is not None])
        meds[kind] = s.median
        rec = med(r.makespan_recorded for r in rs)
        pred = med(r.predicted for r in rs)
        ratio = s.median / lb if s.n else float("nan")
        target = f"≤ {ORDER_TARGET}" if kind == "longest-first" else "(baseline)"
        result = verdict(ratio, ORDER_TARGET) if kind == "longest-first" else ""
        w(f"| {kind} | {spread(s, lambda x: f'{x:.2f} s')} | {f2(rec)} | "
          f"{f2(pred) if kind == 'longest-first' else '— (no history)'} | {f2(model[kind])} | {lb:.2f} s | "
          f"**{ratio:.3f}** | {model[kind] / lb:.3f} | {target} | {result} |")
    w("")
    lf, co = meds["longest-first"], meds["config order"]
    walls = {k: Stats([r.wall for r in runs[k]]) for k in runs}
    over = {k: med(r.wall - r.makespan for r in runs[k] if r.makespan is not None) for k in runs}
    w(f"Longest-first ÷ config order (medians): **{lf / co:.3f}** ({co - lf:.2f} s saved). "
      f"Whole `warden run` wall time (harness, spawn to `wait4`): longest-first {spread(walls['longest-first'], lambda x: f'{x:.2f} s')}, "
      f"config order {spread(walls['config order'], lambda x: f'{x:.2f} s')}; of that, outside the batches "
      f"phase (start-up, history read, reports, recording): {over['longest-first']:.2f} s / "
      f"{over['config order']:.2f} s (medians). Warden's lower bound from the p90s: "
      f"{f2(med(r.warden_bound for r in runs['longest-first']))}. Start order checked against the "
      "recorded start times in every repetition (longest p90 first, ties in config order; config order for "
      f"the baseline; batches starting within {SAME_START_MS} ms of each other count as simultaneous): {'as expected' if not any(r.inversions for k in runs for r in runs[k]) else '**not as expected, see errors**'}.\n")
    ov = [(r.makespan - sum(ms for _, _, ms in r.recorded) / 1000 / MAX_PARALLEL)
          for r in runs["longest-first"] if r.makespan is not None and r.recorded]
    rec_total = med(sum(ms for _, _, ms in r.recorded) / 1000 for r in runs["longest-first"])
    w(f"Where the rest goes: the batches' recorded durations add up to {f2(rec_total)} (median over "
      f"longest-first runs) against {data.total:.2f} s of `sleep`, i.e. "
      f"{1000 * (rec_total - data.total) / BATCHES:.1f} ms per batch of process start-up, exit and "
      f"bookkeeping; makespan − recorded total ÷ {MAX_PARALLEL} = {f2(med(ov))} (idle slot time, gaps "
      "between one batch's end and the next one's start included).\n")
    w(f"Noise: {orders['noise']}.\n")

    # shards
    w(f"### Sharding: `--partition KIND:K/{SHARDS}`\n")
    w(f"`warden check -c warden.toml --history sqlite:<copy of the seeded store> --partition KIND:K/{SHARDS}` "
      f"for K = 1..{SHARDS}; a shard's load = the sum of its batches' sleep durations. Every kind checked to "
      f"put each of the {BATCHES} batches in exactly one shard. Best possible here: "
      f"max(longest, total ÷ {SHARDS}) ÷ mean = {max(data.longest, data.total / SHARDS) / (data.total / SHARDS):.3f}.\n")
    w("| kind | batches per shard | shard loads | longest shard ÷ mean shard | target | result |")
    w("|---|---|---|---|---|---|")
    for kind in STRATEGIES:
        s = shards.get(kind)
        if not isinstance(s, dict):
            w(f"| `{kind}` | | not measured | | | n/a |")
            continue
        ratio = max(s["loads"]) / statistics.mean(s["loads"])
        target = f"≤ {SHARD_TARGET}" if kind == "duration" else "(baseline)"
        result = verdict(ratio, SHARD_TARGET) if kind == "duration" else ""
        w(f"| `{kind}` | {' / '.join(str(len(x)) for x in s['shards'])} | "
          f"{' / '.join(f'{x:.2f}' for x in s['loads'])} s | **{ratio:.3f}** | {target} | {result} |")
    w("")
    d = shards.get("duration")
    if d:
        pl = d["p90_loads"]
        w(f"By the p90s `duration` balanced on (the seed run's recorded durations), its shards weigh "
          f"{' / '.join(f'{x:.2f}' for x in pl)} s: longest ÷ mean {max(pl) / statistics.mean(pl):.3f}."
          + (f" Assignment fingerprint printed by the 4 shards: {', '.join(sorted(d['fingerprints']))}"
             f" ({'the same' if len(d['fingerprints']) == 1 else '**different**'})." if d["fingerprints"] else "")
          + "\n")
    w(f"Noise (checks): {shards.get('noise', 'n/a')}.\n")
    if shard_runs:
        w(f"The {SHARDS} `duration` shards run one after another (`warden run --partition duration:K/{SHARDS}`, "
          f"max-parallel {MAX_PARALLEL} each, seeded history), as {SHARDS} CI machines would:\n")
        w("| shard | batches | load (sum of sleeps) | lower bound on 2 slots | makespan | warden's prediction | "
          "wall |")
        w("|---|---|---|---|---|---|---|")
        for r in shard_runs:
            w(f"| {r['k']}/{SHARDS} | {r['batches']} | {r['load']:.2f} s | {r['bound']:.2f} s | {f2(r['makespan'])} | "
              f"{f2(r['predicted'])} | {r['wall']:.2f} s |")
        mk = [r["makespan"] for r in shard_runs if r["makespan"] is not None]
        if mk:
            best = max(data.longest, data.total / (SHARDS * MAX_PARALLEL))
            w(f"\nLongest shard makespan ÷ mean: {max(mk) / statistics.mean(mk):.3f} (`duration` balances the "
              f"shards' summed durations, not their makespans on {MAX_PARALLEL} slots). No split can make the "
              f"slowest shard shorter than max(longest batch, total ÷ {SHARDS * MAX_PARALLEL} slots) = "
              f"{best:.2f} s; the slowest shard took {max(mk):.2f} s ({max(mk) / best:.3f} of that), against "
              f"{lf:.2f} s for one machine running everything longest-first ({lf / max(mk):.2f}× faster on "
              f"{SHARDS} machines).\n")
        w(f"Noise (shard runs): {shards.get('run noise', 'n/a')}.\n")

    w("<details><summary>raw samples (seconds) and output heads</summary>\n")
    w("```")
    w(f"seed run: makespan {seed.makespan} wall {seed.wall:.3f}")
    for kind, rs in runs.items():
        w(f"{kind} makespan: " + " ".join(f"{r.makespan}" for r in rs))
        w(f"{kind} recorded makespan: " + " ".join(f"{r.makespan_recorded:.3f}" for r in rs
                                                   if r.makespan_recorded is not None))
        w(f"{kind} wall: " + " ".join(f"{r.wall:.3f}" for r in rs))
    for kind, rs in runs.items():
        if rs:
            w(f"{kind} started (rep 1): " + " ".join(rs[0].start_order()))
    for kind in STRATEGIES:
        for k, names in enumerate(shards.get(kind, {}).get("shards", []), 1):
            w(f"{kind}:{k}/{SHARDS}: " + " ".join(names))
    for kind, rs in runs.items():
        if rs:
            for line in rs[0].text.strip().splitlines()[-6:]:
                w(f"{kind} | {line[:160]}")
    if "duration" in shards:
        for line in shards["duration"]["head"]:
            w(f"check duration:1/{SHARDS} | {line[:160]}")
    w("```\n</details>\n")
    w(END)
    return "\n".join(out)


REPRO_LINE = ("python3 bench/schedule.py   # scheduling: longest-first vs config order, "
              "--partition duration balance; rewrites only its section")




# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"durations × {QUICK_SCALE}, 1 repetition (smoke test)")
    ap.add_argument("--no-build", action="store_true", help="use the already built release binary")
    ap.add_argument("--warden", help="warden binary to use (implies --no-build)")
    ap.add_argument("--no-shard-runs", action="store_true", help="only `check` the shards, do not run them")
    ap.add_argument("--output", default=str(REPO / "BENCHMARKS.md"),
                    help="report to update (default: BENCHMARKS.md; only the scheduling section is replaced)")
    ap.add_argument("--workdir", help="scratch directory (default: a new one under $TMPDIR, removed after)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (and say where)")
    args = ap.parse_args()
    if sys.platform != "linux":
        print("bench/schedule.py: Linux only", file=sys.stderr)
        return 2

    wb = warden_binary("bench/schedule.py", args.warden, args.no_build)
    if wb is None:
        return 2

    reps = REPS["quick" if args.quick else "full"]
    data = make_data(QUICK_SCALE if args.quick else 1.0)
    parent = Path(args.workdir).resolve() if args.workdir else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="warden-schedule-bench-", dir=parent))
    cfg = work / "warden.toml"
    write_config(cfg, data)
    git(work, "init", "-q")
    git(work, "add", "warden.toml")
    git(work, "commit", "-q", "-m", "config")
    ctx = Ctx(warden=wb, work=work, cfg=cfg, data=data, quick=args.quick)
    log(f"{BATCHES} batches, total {data.total:.2f} s, longest {data.longest:.2f} s, "
        f"lower bound {data.bound():.2f} s; work in {work}")
    t0 = time.monotonic()
    info = machine_info(wb)
    load_before = loadavg()
    shard_runs = []
    try:
        seed_db = work / "seed.db"
        orders = bench_order(ctx, seed_db, reps)
        log("partitions (warden check)")
        shards = bench_shards(ctx, seed_db, orders["p90"])
        if not args.no_shard_runs and "duration" in shards:
            log("running the duration shards")
            noise = Noise()
            shard_runs = run_shards(ctx, seed_db, shards["duration"]["shards"])
            shards["run noise"] = noise.stop()
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - t0
    block = render(ctx, info, args, reps, orders, shards, shard_runs, (load_before, loadavg()), elapsed)
    write_section(Path(args.output), block, BEGIN, END, "bench/schedule.py", REPRO_LINE)
    log(f"updated {args.output} ({elapsed:.0f} s)")
    return 1 if ctx.errors else 0


if __name__ == "__main__":
    sys.exit(main())
