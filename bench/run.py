#!/usr/bin/env python3
"""warden benchmarks: builds the release binary, runs every benchmark, and
rewrites BENCHMARKS.md at the repository root.

    python3 bench/run.py            # full run (~3-4 minutes on 2 cores)
    python3 bench/run.py --quick    # fewer repetitions (~1 minute)

Every benchmark compares warden with a baseline measured in the same run,
with baseline and warden repetitions interleaved (in a shuffled order
every repetition) because the machine may be shared and noisy. Medians are the
headline; min/max and the number of repetitions are reported too.

Stdlib only (Python >= 3.9). Linux only. Needs root for cgroup containment
(the cgroup rows are reported as unavailable otherwise).

Every process the harness starts gets a unique `BENCH_MARK=<uuid>` in its
environment; after every run /proc/*/environ is scanned for that exact
entry, and only exact matches are reported and SIGKILLed.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import os
import platform
import re
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import random
import resource
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GIB = 1 << 30
MIB = 1 << 20

# Benchmark parameters (the targets come from the brief).
SPAWN_BATCHES = 1000
SPAWN_PARALLEL = 2
SPAWN_TARGET = 1.3
OUTPUT_TARGET = 1.2
RSS_TARGET_MIB = 64
KILL_TIMEOUT_S = 0.2
KILL_GRACE_S = 0.2
KILL_TARGET_MS = 50.0
RANDOM_CHUNK = 64 * MIB  # the incompressible variant cats this file 16 times
KILL_SCRIPT = (
    "trap '' TERM; setsid sh -c 'trap \"\" TERM; sleep 1000' & sleep 1000"
)
GONE_RE = re.compile(r"gone ([0-9.]+)ms after the grace period")

REPS = {
    #        spawn reps, output reps, kill runs
    "full": (5, 7, 50),
    "quick": (2, 2, 10),
}


# --------------------------------------------------------------------------
# small helpers


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(argv: list[str], **kw) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw).stdout.strip()


def try_sh(argv: list[str], **kw) -> str:
    try:
        return sh(argv, **kw)
    except (OSError, subprocess.CalledProcessError):
        return "?"


@dataclass
class Stats:
    values: list[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def min(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def max(self) -> float:
        return max(self.values) if self.values else float("nan")


@dataclass
class RunResult:
    wall: float  # seconds
    rc: int
    # ru_maxrss from wait4 (KiB). Linux folds the pre-exec address space's
    # high-water mark into it, and a child forked from this harness starts as
    # a copy of the Python process, so it is never below the harness's own RSS.
    maxrss_kib: int
    cpu: float  # user + system seconds of the child and its reaped descendants
    hwm_kib: int | None = None  # VmHWM of the process itself, sampled while it ran
    # ru_oublock: bytes the process and its reaped descendants dirtied in
    # files on a block device (Linux task I/O accounting; tmpfs not counted).
    written: int = 0


class HwmSampler(threading.Thread):
    """Samples /proc/<pid>/status VmHWM (the process's own peak RSS, which
    only grows) every few ms until stopped; the last value read is kept."""

    def __init__(self, pid: int, period: float = 0.005):
        super().__init__(daemon=True)
        self.pid, self.period, self.kib = pid, period, None
        self.done = threading.Event()

    def run(self) -> None:
        path = f"/proc/{self.pid}/status"
        while not self.done.is_set():
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.kib = max(self.kib or 0, int(line.split()[1]))
                            break
            except (OSError, ValueError):
                pass
            self.done.wait(self.period)


def timed_run(argv, *, env=None, cwd=None, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL, sample_hwm: bool = False) -> RunResult:
    """Runs argv and measures wall time from just before the spawn to just
    after the wait, the same way for baselines and warden."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr)
    sampler = None
    if sample_hwm:
        sampler = HwmSampler(p.pid)
        sampler.start()
    _, status, ru = os.wait4(p.pid, 0)
    t1 = time.perf_counter()
    p.returncode = os.waitstatus_to_exitcode(status)
    hwm = None
    if sampler:
        sampler.done.set()
        sampler.join()
        hwm = sampler.kib
    return RunResult(t1 - t0, p.returncode, ru.ru_maxrss, ru.ru_utime + ru.ru_stime, hwm,
                     ru.ru_oublock * 512)


def marked_env(extra: dict[str, str] | None = None) -> tuple[dict[str, str], bytes]:
    mark = f"BENCH_MARK={uuid.uuid4()}"
    env = dict(os.environ)
    env.update(extra or {})
    key, value = mark.split("=", 1)
    env[key] = value
    return env, mark.encode()


def marked_pids(mark: bytes) -> list[int]:
    """Live processes whose environment holds `mark` exactly (never a substring)."""
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        if mark in raw.split(b"\0"):
            found.append(int(name))
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


def kill_marked(mark: bytes) -> list[str]:
    """SIGKILLs every exact match of `mark`; returns what was found."""
    found = [f"{pid} ({cmdline(pid)})" for pid in marked_pids(mark)]
    for _ in range(100):
        pids = marked_pids(mark)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    return found


class Noise:
    """CPU time used on the machine by everyone but this harness and its
    children, over a benchmark: a noise indicator for a shared machine.
    (Kernel workers doing deferred work for our processes count as others.)"""

    def __init__(self):
        self.t0, self.own0 = time.monotonic(), self._own()
        self.busy0, self.steal0 = self._busy()

    @staticmethod
    def _busy() -> tuple[float, float]:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
        # user nice system idle iowait irq softirq steal ...
        return (v[0] + v[1] + v[2] + v[5] + v[6]) / hz, (v[7] if len(v) > 7 else 0) / hz

    @staticmethod
    def _own() -> float:
        s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    def stop(self) -> str:
        wall = time.monotonic() - self.t0
        busy, steal = self._busy()
        busy, steal = busy - self.busy0, steal - self.steal0
        own = self._own() - self.own0
        other = max(0.0, busy - own)
        return (f"{wall:.0f} s wall; CPU busy {busy:.1f} s, of which this harness and its children "
                f"{own:.1f} s, so others ≈ {other:.1f} s ({100 * other / max(wall, 1e-9):.0f}% of one core); "
                f"steal {steal:.1f} s")


def order(items: list, rep: int) -> list:
    """The order of one repetition: shuffled (seeded, so runs are comparable),
    so that no kind always runs right after another."""
    items = list(items)
    random.Random(1000 + rep).shuffle(items)
    return items


def junit_cases(path: Path) -> list[ET.Element]:
    return list(ET.parse(path).getroot().iter("testcase"))


def write_config(path: Path, *, max_parallel: int, batches: list[str]) -> None:
    path.write_text(
        f'[run]\nmax-parallel = {max_parallel}\nartifacts = "out"\n\n' + "\n".join(batches)
    )


def toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def batch(name: str, *, argv=None, shell=None, timeout="60s", grace="1s") -> str:
    if argv is not None:
        what = "command = [" + ", ".join(toml_str(a) for a in argv) + "]"
    else:
        what = f"shell = {toml_str(shell)}"
    return f'[[batch]]\nname = "{name}"\n{what}\ntimeout = "{timeout}"\ngrace = "{grace}"\n'


@dataclass
class Ctx:
    warden: Path
    work: Path
    quick: bool
    errors: list[str] = field(default_factory=list)

    def error(self, msg: str) -> None:
        log("ERROR: " + msg)
        self.errors.append(msg)


def warden_run(ctx: Ctx, cfg: Path, mode_args: list[str], env, extra_args=(),
               sample_hwm=False) -> tuple[RunResult, Path]:
    """Runs warden on cfg with fresh artifacts; returns the result and the artifacts dir."""
    out = cfg.parent / "out"
    shutil.rmtree(out, ignore_errors=True)
    with open(cfg.parent / "warden.stdout", "wb") as so:
        r = timed_run([str(ctx.warden), "run", "-c", str(cfg), *mode_args, *extra_args],
                      env=env, stdout=so, stderr=subprocess.STDOUT, sample_hwm=sample_hwm)
    return r, out


def warden_tail(cfg: Path) -> str:
    try:
        return (cfg.parent / "warden.stdout").read_text(errors="replace")[-600:]
    except OSError:
        return ""


MODES = [("cgroup", ["--containment", "cgroup"]), ("pgroup", ["--containment", "pgroup"])]


def available_modes(ctx: Ctx) -> list[tuple[str, list[str]]]:
    d = ctx.work / "probe-mode"
    d.mkdir()
    cfg = d / "warden.toml"
    write_config(cfg, max_parallel=1, batches=[batch("probe", argv=["true"])])
    modes = []
    for name, args in MODES:
        env, mark = marked_env()
        r, _ = warden_run(ctx, cfg, args, env)
        kill_marked(mark)
        if r.rc == 0:
            modes.append((name, args))
        else:
            log(f"containment {name} unavailable (exit {r.rc}): {warden_tail(cfg).strip()}")
    shutil.rmtree(d)
    return modes


# --------------------------------------------------------------------------
# 1. spawn overhead


def bench_spawn(ctx: Ctx, reps: int, modes) -> dict:
    d = ctx.work / "spawn"
    d.mkdir()
    cfg = d / "warden.toml"
    write_config(cfg, max_parallel=SPAWN_PARALLEL,
                 batches=[batch(f"b{i:04d}", argv=["true"], timeout="60s") for i in range(SPAWN_BATCHES)])
    warm = d / "warm" / "warden.toml"
    warm.parent.mkdir()
    write_config(warm, max_parallel=SPAWN_PARALLEL,
                 batches=[batch(f"b{i:02d}", argv=["true"]) for i in range(20)])
    inp = d / "input.txt"
    inp.write_text("".join(f"{i}\n" for i in range(SPAWN_BATCHES)))
    baseline_argv = ["xargs", f"-P{SPAWN_PARALLEL}", "-n1", "true"]

    def run_baseline():
        env, mark = marked_env()
        with open(inp, "rb") as stdin:
            r = timed_run(baseline_argv, env=env, stdin=stdin)
        if r.rc != 0:
            ctx.error(f"spawn baseline exited {r.rc}")
        kill_marked(mark)
        return r

    def run_warden(mode_args, c=cfg, expect=SPAWN_BATCHES):
        env, mark = marked_env()
        r, out = warden_run(ctx, c, mode_args, env)
        left = kill_marked(mark)
        if left:
            ctx.error(f"spawn {mode_args}: processes survived warden: {left}")
        if r.rc != 0:
            ctx.error(f"spawn {mode_args}: warden exited {r.rc}: {warden_tail(c)}")
            return None
        cases = junit_cases(out / "junit.xml")
        bad = [c_.get("name") for c_ in cases
               if any(ch.tag in ("failure", "error", "skipped") for ch in c_)]
        if len(cases) != expect or bad:
            ctx.error(f"spawn {mode_args}: junit has {len(cases)} cases, not passed: {bad[:5]}")
        shutil.rmtree(out, ignore_errors=True)
        return r

    # Untimed warm-up: page cache, first cgroup, etc.
    for _, args in modes:
        run_warden(args, warm, 20)
    run_baseline()

    samples: dict[str, list[float]] = {"baseline": []}
    samples.update({name: [] for name, _ in modes})
    cpu = {name: [] for name in samples}
    kinds = [("baseline", None)] + list(modes)
    noise = Noise()
    for rep in range(reps):
        for name, args in order(kinds, rep):
            r = run_baseline() if args is None else run_warden(args)
            if r is not None:
                samples[name].append(r.wall)
                cpu[name].append(r.cpu)
            log(f"spawn rep {rep + 1}/{reps} {name}: "
                + ("failed" if r is None else f"{r.wall:.3f}s wall, {r.cpu:.3f}s cpu"))
    shutil.rmtree(d)
    return {"samples": samples, "cpu": cpu, "noise": noise.stop(),
            "baseline_cmd": " ".join(baseline_argv) + f" < ({SPAWN_BATCHES} lines)"}


# --------------------------------------------------------------------------
# 2. output throughput


def check_log(path: Path, variant: str, source: Path | None) -> str | None:
    try:
        size = path.stat().st_size
    except OSError as e:
        return f"no log: {e}"
    if size != GIB:
        return f"log is {size} bytes, not {GIB}"
    # Spot-check content: 8 windows of 64 KiB spread over the file.
    with open(path, "rb") as f:
        src = open(source, "rb") if source else None
        try:
            for k in range(8):
                off = k * (GIB // 8) + 12345 * k
                f.seek(off)
                got = f.read(65536)
                if src is None:
                    want = bytes(len(got))
                else:
                    src.seek(off % RANDOM_CHUNK)
                    want = src.read(len(got))
                    if len(want) < len(got):  # window wraps around the chunk
                        src.seek(0)
                        want += src.read(len(got) - len(want))
                if got != want:
                    return f"content differs at offset {off} ({variant})"
        finally:
            if src:
                src.close()
    return None


def bench_output(ctx: Ctx, reps: int) -> dict:
    d = ctx.work / "output"
    d.mkdir()
    rnd = d / "random.bin"
    with open(rnd, "wb") as f:
        for _ in range(RANDOM_CHUNK // MIB):
            f.write(os.urandom(MIB))
    base_file = d / "baseline.out"
    variants = {
        "zeros": (["head", "-c", str(GIB), "/dev/zero"], None, f"head -c {GIB} /dev/zero"),
        "random": (["cat"] + [str(rnd)] * (GIB // RANDOM_CHUNK), rnd,
                   f"cat random.bin random.bin … ({GIB // RANDOM_CHUNK} times a {RANDOM_CHUNK // MIB} MiB "
                   "file of os.urandom bytes)"),
    }
    results = {}
    for vname, (argv, source, shown) in variants.items():
        vd = d / vname
        vd.mkdir()
        cfg = vd / "warden.toml"
        write_config(cfg, max_parallel=1, batches=[batch("big", argv=argv, timeout="600s")])
        baseline_argv = ["sh", "-c", shlex.join(argv) + " > " + shlex.quote(str(base_file))]
        samples = {"baseline": [], "warden": []}
        rss = {"baseline": [], "warden": []}  # wait4 ru_maxrss, MiB
        hwm = []  # warden's own VmHWM, MiB
        noise = Noise()

        def run_baseline():
            env, mark = marked_env()
            r = timed_run(baseline_argv, env=env)
            kill_marked(mark)
            if r.rc != 0:
                ctx.error(f"output {vname} baseline exited {r.rc}")
            else:
                err = check_log(base_file, vname, source)
                if err:
                    ctx.error(f"output {vname} baseline: {err}")
            base_file.unlink(missing_ok=True)
            return r

        def run_warden():
            env, mark = marked_env()
            r, out = warden_run(ctx, cfg, [], env, sample_hwm=True)
            left = kill_marked(mark)
            if left:
                ctx.error(f"output {vname}: processes survived warden: {left}")
            ok = r.rc == 0
            if not ok:
                ctx.error(f"output {vname}: warden exited {r.rc}: {warden_tail(cfg)}")
            else:
                err = check_log(out / "logs" / "big.log", vname, source)
                if err:
                    ctx.error(f"output {vname} warden: {err}")
                    ok = False
            shutil.rmtree(out, ignore_errors=True)
            return r if ok else None

        # Untimed warm-up: the first 1 GiB write of a series is often much slower.
        run_baseline()
        run_warden()
        for rep in range(reps):
            for name in order(["baseline", "warden"], rep):
                r = run_baseline() if name == "baseline" else run_warden()
                if r is not None:
                    samples[name].append(r.wall)
                    rss[name].append(r.maxrss_kib / 1024)
                    if r.hwm_kib is not None:
                        hwm.append(r.hwm_kib / 1024)
                log(f"output {vname} rep {rep + 1}/{reps} {name}: "
                    + ("failed" if r is None else f"{r.wall:.3f}s, ru_maxrss {r.maxrss_kib / 1024:.1f} MiB"
                       + (f", VmHWM {r.hwm_kib / 1024:.1f} MiB" if r.hwm_kib else "")))
        results[vname] = {
            "samples": samples,
            "rss_mib": rss,
            "hwm_mib": hwm,
            "noise": noise.stop(),
            "shown": shown,
        }
        shutil.rmtree(vd)
    shutil.rmtree(d)
    return results


# --------------------------------------------------------------------------
# 3. kill latency


def bench_kill(ctx: Ctx, runs: int, modes) -> dict:
    d = ctx.work / "kill"
    d.mkdir()
    cfg = d / "warden.toml"
    ms = lambda s: f"{round(s * 1000)}ms"  # noqa: E731
    write_config(cfg, max_parallel=1,
                 batches=[batch("kill", shell=KILL_SCRIPT, timeout=ms(KILL_TIMEOUT_S), grace=ms(KILL_GRACE_S))])
    budget = KILL_TIMEOUT_S + KILL_GRACE_S
    baseline_argv = ["timeout", "-k", str(KILL_GRACE_S), str(KILL_TIMEOUT_S), "sh", "-c", KILL_SCRIPT]

    gone = {name: [] for name, _ in modes}
    outside = {"baseline": []} | {name: [] for name, _ in modes}
    leftovers = {"baseline": [], **{name: [] for name, _ in modes}}

    def run_baseline():
        env, mark = marked_env()
        r = timed_run(baseline_argv, env=env)
        left = kill_marked(mark)
        leftovers["baseline"].append(len(left))
        # timeout(1) SIGKILLs its whole process group, itself included.
        if r.rc not in (137, -signal.SIGKILL):
            ctx.error(f"kill baseline: timeout(1) exited {r.rc}, expected SIGKILL/137")
        outside["baseline"].append(r.wall - budget)
        return f"{(r.wall - budget) * 1000:.1f}ms outside, left {len(left)}"

    def run_warden(name, args):
        env, mark = marked_env()
        r, out = warden_run(ctx, cfg, args, env)
        left = kill_marked(mark)
        leftovers[name].append(len(left))
        if left:
            ctx.error(f"kill {name}: processes survived warden: {left}")
        if r.rc != 1:
            ctx.error(f"kill {name}: warden exited {r.rc}, expected 1: {warden_tail(cfg)}")
            return "failed"
        msg = ""
        for case in junit_cases(out / "junit.xml"):
            for child in case:
                msg = child.get("message") or msg
        m = GONE_RE.search(msg)
        if not m:
            ctx.error(f"kill {name}: no 'gone X ms' figure in JUnit message: {msg!r}")
            return "failed"
        gone[name].append(float(m.group(1)) / 1000)
        outside[name].append(r.wall - budget)
        shutil.rmtree(out, ignore_errors=True)
        return f"gone {m.group(1)}ms, {(r.wall - budget) * 1000:.1f}ms outside"

    kinds = [("baseline", None)] + list(modes)
    noise = Noise()
    for i in range(runs):
        for name, args in order(kinds, i):
            what = run_baseline() if args is None else run_warden(name, args)
            if i % 10 == 0 or i == runs - 1 or "failed" in what:
                log(f"kill run {i + 1}/{runs} {name}: {what}")
    shutil.rmtree(d)
    return {
        "gone": gone,
        "outside": outside,
        "leftovers": leftovers,
        "noise": noise.stop(),
        "baseline_cmd": shlex.join(baseline_argv),
    }


# --------------------------------------------------------------------------
# kernel cost probes: context for the analysis (not targets)


def cgroup2_dir() -> Path | None:
    try:
        own = next(l[3:] for l in open("/proc/self/cgroup").read().splitlines() if l.startswith("0::"))
    except (OSError, StopIteration):
        return None
    for line in open("/proc/self/mountinfo"):
        pre, _, post = line.partition(" - ")
        if post.split()[:1] == ["cgroup2"]:
            f = pre.split()
            root, mount = f[3], f[4]
            inside = own[len(root):] if root != "/" and own.startswith(root) else own
            return Path(mount) / inside.lstrip("/")
    return None


def probe_kernel(ctx: Ctx) -> dict:
    """Times the kernel operations warden's cgroup path does per batch, in
    isolation: moving a fresh child into a cgroup by writing cgroup.procs
    (what spawn.rs does before exec), the same with clone3(CLONE_INTO_CGROUP),
    and close() of an inotify fd holding a watch (what cgroup.rs does after
    every wait_empty)."""
    res: dict[str, Stats] = {}
    libc = ctypes.CDLL(None, use_errno=True)
    # close() of an inotify instance with one watch
    vals = []
    for _ in range(10):
        fd = libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        if fd < 0:
            break
        libc.inotify_add_watch(fd, str(ctx.work).encode(), 0x2)
        time.sleep(0.03)
        t = time.perf_counter()
        os.close(fd)
        vals.append(time.perf_counter() - t)
    res["close(inotify fd with 1 watch)"] = Stats(vals)

    base = cgroup2_dir()
    if base is None or os.geteuid() != 0:
        return res
    cg = base / f"warden-bench-probe-{os.getpid()}"
    try:
        cg.mkdir()
    except OSError as e:
        log(f"kernel probe: cannot create {cg}: {e}")
        return res
    try:
        for gap in (0.0, 0.03):
            vals = []
            for _ in range(10):
                time.sleep(gap)
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:  # child: time our own migration, report, exit
                    try:
                        os.close(r)
                        t = time.perf_counter()
                        with open(cg / "cgroup.procs", "w") as f:
                            f.write("0")
                        os.write(w, repr(time.perf_counter() - t).encode())
                    finally:
                        os._exit(0)
                os.close(w)
                data = os.read(r, 64)
                os.close(r)
                os.waitpid(pid, 0)
                if data:
                    vals.append(float(data))
            label = "back-to-back" if gap == 0 else f"{gap * 1000:.0f} ms apart"
            res[f"write cgroup.procs in a fresh child ({label})"] = Stats(vals)

        class CloneArgs(ctypes.Structure):
            _fields_ = [(n, ctypes.c_uint64) for n in
                        "flags pidfd child_tid parent_tid exit_signal stack stack_size tls set_tid "
                        "set_tid_size cgroup".split()]

        libc.syscall.restype = ctypes.c_long
        dfd = os.open(cg, os.O_RDONLY | os.O_DIRECTORY)
        vals = []
        try:
            for _ in range(10):
                time.sleep(0.03)
                args = CloneArgs(flags=0x200000000, exit_signal=signal.SIGCHLD, cgroup=dfd)
                t = time.perf_counter()
                pid = libc.syscall(435, ctypes.byref(args), ctypes.sizeof(args))
                if pid == 0:
                    try:
                        os.execv("/bin/true", ["true"])
                    finally:
                        os._exit(127)
                dt = time.perf_counter() - t
                if pid < 0:
                    break
                os.waitpid(pid, 0)
                vals.append(dt)
        finally:
            os.close(dfd)
        res["clone3(CLONE_INTO_CGROUP) of this Python process, 30 ms apart"] = Stats(vals)

        # cgroup.events via poll(POLLPRI) instead of inotify: cost of close()
        vals = []
        for _ in range(10):
            fd = os.open(cg / "cgroup.events", os.O_RDONLY)
            p = select.poll()
            p.register(fd, select.POLLPRI)
            os.pread(fd, 64, 0)
            p.poll(0)
            time.sleep(0.03)
            t = time.perf_counter()
            os.close(fd)
            vals.append(time.perf_counter() - t)
        res["close(cgroup.events fd polled with POLLPRI)"] = Stats(vals)
    finally:
        for _ in range(50):
            try:
                cg.rmdir()
                break
            except OSError:
                time.sleep(0.02)
    return res


# --------------------------------------------------------------------------
# report


def machine_info(warden: Path) -> dict[str, str]:
    cpu = "?"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = "?"
    try:
        kb = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    commit = try_sh(["git", "-C", str(REPO), "rev-parse", "HEAD"])
    dirty = try_sh(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "git commit": commit + (" (with uncommitted changes)" if dirty not in ("", "?") else ""),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "kernel build": platform.version(),
        "cgroup2 (this process)": str(cgroup2_dir() or "none"),
        "rustc": try_sh(["rustc", "--version"]),
        "python": platform.python_version(),
        "warden binary": str(warden),
    }


def ms(s: float) -> str:
    return f"{s * 1000:.1f} ms"


def secs(s: float) -> str:
    return f"{s:.3f} s"


def spread(st: Stats, fmt) -> str:
    if not st.n:
        return "n/a"
    return f"{fmt(st.median)} ({fmt(st.min)}–{fmt(st.max)})"


def verdict(value: float, target: float) -> str:
    if value != value:  # NaN
        return "n/a"
    return "PASS" if value <= target else "**FAIL**"


def render(info, args, reps, modes, spawn, output, kill, probes, errors, loads, elapsed) -> str:
    out = []
    w = out.append
    w("# warden benchmarks\n")
    w("Generated by `bench/run.py`, except the History store, Dashboard and Scheduling sections, which "
      "`bench/history.py`, `bench/dashboard.py` and `bench/schedule.py` write (and run.py keeps as they "
      "are); do not edit by hand. Re-run to refresh.\n")
    w("## Reproduce\n")
    w("```sh")
    w("export CARGO_TARGET_DIR=/work/target-bench   # optional; default: ./target")
    w(f"python3 bench/run.py{' --quick' if args.quick else ''}   # builds with `cargo build --release --locked`, "
      "runs everything, rewrites BENCHMARKS.md")
    w("python3 bench/history.py   # history store: ingest 1,000,000 JUnit results into SQLite and "
      "PostgreSQL, time flaky/regressed/failures; rewrites only its section")
    w("python3 bench/dashboard.py # warden serve: the flaky page over 1,000,000 results; "
      "rewrites only its section")
    w("python3 bench/schedule.py   # scheduling: longest-first vs config order, --partition duration "
      "balance; rewrites only its section")
    w("python3 bench/spawn_compare.py --before REV [--history]   # spawn overhead of two builds, same run; "
      "rewrites only its section")
    w("python3 bench/classify.py   # flaky/broken/regressed verdicts on synthetic histories of known truth, "
      "two builds; rewrites only its section")
    w("```\n")
    w(f"This run: `{' '.join(['python3', 'bench/run.py', *sys.argv[1:]])}`, "
      f"{'quick' if args.quick else 'full'} mode, total {elapsed:.0f} s.\n")
    w("## Machine\n")
    w("| | |\n|---|---|")
    for k, v in info.items():
        w(f"| {k} | {v} |")
    w(f"| load average (before → after) | {loads[0]} → {loads[1]} |")
    w("")
    w("Method: every row is the median of interleaved repetitions (baseline and warden "
      "alternate, in a seeded shuffled order each repetition), with (min–max). Wall time is measured "
      "by the harness from just before spawning the process to just after `wait4` "
      "returns, identically for baseline and warden. Ratio = warden median ÷ baseline median.\n")
    if errors:
        w("## Errors during this run\n")
        for e in errors:
            w(f"- {e}")
        w("")

    # 1
    n_sp = reps[0]
    w("## 1. Spawn overhead\n")
    w(f"{SPAWN_BATCHES} batches of `true` (argv, exec'd directly), `max-parallel = {SPAWN_PARALLEL}`. "
      f"Baseline: `{spawn['baseline_cmd']}` (execs `true` directly too). "
      f"{n_sp} repetitions each, after an untimed warm-up.\n")
    w("| containment | baseline median (min–max) | warden median (min–max) | ratio | extra per batch | "
      "CPU baseline / warden | target | result |")
    w("|---|---|---|---|---|---|---|---|")
    b = Stats(spawn["samples"]["baseline"])
    bc = Stats(spawn["cpu"]["baseline"])
    for name in ("cgroup", "pgroup"):
        if name not in spawn["samples"]:
            w(f"| {name} | {spread(b, secs)} | unavailable | | | | ≤ {SPAWN_TARGET} | n/a |")
            continue
        s = Stats(spawn["samples"][name])
        sc = Stats(spawn["cpu"][name])
        ratio = s.median / b.median if s.n and b.n else float("nan")
        extra = (s.median - b.median) / SPAWN_BATCHES
        w(f"| {name} | {spread(b, secs)} | {spread(s, secs)} | {ratio:.2f} | {ms(extra)} | "
          f"{bc.median:.2f} s / {sc.median:.2f} s | ≤ {SPAWN_TARGET} | {verdict(ratio, SPAWN_TARGET)} |")
    w("\n\"extra per batch\" = (warden − baseline median) ÷ batches: wall time added per batch at this "
      "parallelism. \"CPU\" = median user + system time of the process and everything it reaped "
      "(the `true`s included), from `wait4`: warden's wall time far above its CPU time means it is "
      "waiting, not computing.\n")
    w(f"Noise: {spawn['noise']}.\n")

    # 2
    n_out = reps[1]
    w("## 2. Output throughput\n")
    w(f"One batch writing 1 GiB to stdout; warden logs it to `<artifacts>/logs/big.log`. Baseline: "
      f"the same command redirected to a file by `sh`. Default containment (cgroup when available). "
      f"{n_out} repetitions each after an untimed warm-up of each; every log/file verified to be exactly {GIB} bytes (plus 8 "
      "content spot-checks) and deleted before the next run.\n")
    w("| variant | baseline median (min–max) | warden median (min–max) | warden MiB/s | ratio | target | result |")
    w("|---|---|---|---|---|---|---|")
    for vname, r in output.items():
        b, s = Stats(r["samples"]["baseline"]), Stats(r["samples"]["warden"])
        ratio = s.median / b.median if s.n and b.n else float("nan")
        w(f"| {vname} | {spread(b, secs)} | {spread(s, secs)} | {1024 / s.median:.0f} | {ratio:.2f} | "
          f"≤ {OUTPUT_TARGET} | {verdict(ratio, OUTPUT_TARGET)} |")
    w("")
    f = lambda x: f"{x:.1f} MiB"  # noqa: E731
    w("| variant | warden peak RSS (VmHWM) median (min–max) | `wait4` ru_maxrss warden / baseline (medians) "
      "| target | result |")
    w("|---|---|---|---|---|")
    for vname, r in output.items():
        h = Stats(r["hwm_mib"])
        s, b = Stats(r["rss_mib"]["warden"]), Stats(r["rss_mib"]["baseline"])
        w(f"| {vname} | {spread(h, f)} | {f(s.median)} / {f(b.median)} | ≤ {RSS_TARGET_MIB} MiB | "
          f"{verdict(h.max, RSS_TARGET_MIB)} |")
    w("\nPeak RSS is warden's own `VmHWM` (high-water mark of its resident set, which only grows), "
      "read from `/proc/<pid>/status` every 5 ms while it runs; pass/fail uses the max over repetitions. "
      "`ru_maxrss` from `wait4()` is shown for reference but is not usable here: Linux folds the "
      "high-water mark of the address space a process had *before* `execve` into it, and a child "
      "of this harness starts as a copy of the Python interpreter, so it never reads below the "
      "harness's own RSS (the baseline `sh` shows the same floor). It is still an upper bound.\n")
    for vname, r in output.items():
        w(f"- `{vname}`: `{r['shown']}` as the batch's argv; baseline `sh -c '<same> > FILE'`. "
          f"Noise: {r['noise']}.")
    w("")

    # 3
    n_k = reps[2]
    w("## 3. Kill latency\n")
    w(f"One batch `shell = {KILL_SCRIPT!r}` (the shell and a `setsid` escapee both ignore SIGTERM), "
      f"`timeout = \"{KILL_TIMEOUT_S * 1000:.0f}ms\"`, `grace = \"{KILL_GRACE_S * 1000:.0f}ms\"`; "
      f"{n_k} runs per containment mode. \"gone\" is warden's own figure from the JUnit message "
      "(end of grace → batch verified empty); \"outside\" is the harness's wall time of the whole "
      f"`warden run` minus timeout + grace ({(KILL_TIMEOUT_S + KILL_GRACE_S) * 1000:.0f} ms), so it also "
      "includes warden's start-up and shut-down. Baseline: coreutils "
      f"`{kill['baseline_cmd']}` measured the same way (outside), interleaved.\n")
    w("| containment | measure | baseline median (min–max) | warden median | warden max | ratio (outside) | target (median) | result |")
    w("|---|---|---|---|---|---|---|---|")
    bo = Stats(kill["outside"]["baseline"])
    for name in ("cgroup", "pgroup"):
        if name not in kill["gone"]:
            w(f"| {name} | | | unavailable | | | | n/a |")
            continue
        g, o = Stats(kill["gone"][name]), Stats(kill["outside"][name])
        w(f"| {name} | gone (warden's figure) | — | {ms(g.median)} | {ms(g.max)} | | ≤ {KILL_TARGET_MS:.0f} ms | "
          f"{verdict(g.median * 1000, KILL_TARGET_MS)} |")
        ratio = o.median / bo.median if o.n and bo.n and bo.median > 0 else float("nan")
        w(f"| {name} | outside (wall − {(KILL_TIMEOUT_S + KILL_GRACE_S) * 1000:.0f} ms) | {spread(bo, ms)} | "
          f"{ms(o.median)} | {ms(o.max)} | {ratio:.2f} | ≤ {KILL_TARGET_MS:.0f} ms | "
          f"{verdict(o.median * 1000, KILL_TARGET_MS)} |")
    w("")
    w("Processes carrying the run's `BENCH_MARK` left after each run "
      "(exact `/proc/*/environ` match; killed by the harness):\n")
    for name, counts in kill["leftovers"].items():
        runs_with = sum(1 for c in counts if c)
        note = " (expected: `timeout` cannot see the `setsid` escapee)" if name == "baseline" else ""
        w(f"- {name}: {runs_with} of {len(counts)} runs left processes, {sum(counts)} in total{note}")
    w(f"\nNoise: {kill['noise']}.\n")

    # probes
    if probes:
        w("## Kernel cost probes (context, not targets)\n")
        w("The per-batch kernel operations of warden's cgroup path, timed in isolation by the harness "
          "(10 samples each). See bench/ANALYSIS.md for why they matter.\n")
        w("| operation | median | max |")
        w("|---|---|---|")
        for k, st in probes.items():
            if st.n:
                w(f"| {k} | {ms(st.median)} | {ms(st.max)} |")
        w("")

    # raw
    w("## Raw samples\n")
    w("<details><summary>all samples (seconds)</summary>\n")
    w("```")
    for name, v in spawn["samples"].items():
        w(f"spawn {name}: " + " ".join(f"{x:.3f}" for x in v))
    for vname, r in output.items():
        for name, v in r["samples"].items():
            w(f"output {vname} {name}: " + " ".join(f"{x:.3f}" for x in v))
        for name, v in r["rss_mib"].items():
            w(f"output {vname} {name} maxrss MiB: " + " ".join(f"{x:.1f}" for x in v))
    for name, v in kill["gone"].items():
        w(f"kill {name} gone: " + " ".join(f"{x:.4f}" for x in v))
    for name, v in kill["outside"].items():
        w(f"kill {name} outside: " + " ".join(f"{x:.4f}" for x in v))
    w("```\n</details>\n")
    return "\n".join(out)


# Sections other scripts write into BENCHMARKS.md, kept as they are.


def keep_history_block(path: Path, text: str) -> str:
    """`text` with every `<!-- NAME:begin -->…<!-- NAME:end -->` block of
    the existing report appended, in the order they stood there: the
    sections the other bench scripts write (history, dashboard, schedule,
    many tests, fuzzing, …) survive a new run of this one."""
    try:
        old = path.read_text()
    except OSError:
        return text
    for m in re.finditer(r"<!-- ([a-z0-9-]+):begin -->", old):
        end = f"<!-- {m.group(1)}:end -->"
        j = old.find(end, m.end())
        if j >= 0 and m.group(0) not in text:
            text = text.rstrip("\n") + "\n\n" + old[m.start():j + len(end)] + "\n"
    return text


def loadavg() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def report_tail(errors: list[str], info: dict[str, str]) -> list[str]:
    """The end of a section: its errors, if any, then the machine table in
    a <details> block. Shared by the dashboard bench scripts."""
    lines: list[str] = []
    if errors:
        lines += ["", "Errors:"] + [f"- {e}" for e in errors]
    lines += ["", "<details><summary>Machine</summary>", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", "</details>"]
    return lines


def write_section(path: Path, block: str, begin: str, end: str, script: str, repro_line: str) -> None:
    """Replaces the text between `begin` and `end` (markers included), or
    appends the block; makes sure the Reproduce section mentions `script`.
    How bench/history.py, schedule.py and dashboard.py update their part."""
    text = path.read_text() if path.exists() else "# warden benchmarks\n"
    i = text.find(begin)
    j = text.find(end, i + len(begin)) if i >= 0 else -1
    if i >= 0 and j >= 0:
        text = text[:i] + block + text[j + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    if script not in text[:text.find(begin)]:
        m = re.search(r"## Reproduce\n+```sh\n(.*?)```", text, re.S)
        if m:
            text = text[:m.end(1)] + repro_line + "\n" + text[m.end(1):]
    path.write_text(text)


def warden_binary(script: str, given: str | None, no_build: bool) -> Path | None:
    """The warden binary to measure: `given`, else the release build (made
    first with `cargo build --release --locked` unless `no_build`). None,
    after saying so, when it does not exist. Shared by the bench scripts."""
    if given:
        warden = Path(given).resolve()
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        if not target.is_absolute():
            target = REPO / target
        if not no_build:
            log("cargo build --release --locked")
            subprocess.run(["cargo", "build", "--release", "--locked"], cwd=REPO, check=True)
        warden = target / "release" / "warden"
    if not warden.exists():
        print(f"{script}: {warden} not found", file=sys.stderr)
        return None
    return warden


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (about a minute)")
    ap.add_argument("--no-build", action="store_true", help="use the already built release binary")
    ap.add_argument("--output", default=str(REPO / "BENCHMARKS.md"), help="report path (default: BENCHMARKS.md)")
    ap.add_argument("--workdir", help="scratch directory (default: a new one under $TMPDIR, removed after)")
    ap.add_argument("--no-probes", action="store_true", help="skip the kernel cost probes")
    ap.add_argument("--binary", help="measure this warden binary instead of the release build "
                    "(e.g. an older build, with --output elsewhere, to compare)")
    args = ap.parse_args()
    if sys.platform != "linux":
        print("bench/run.py: Linux only", file=sys.stderr)
        return 2

    warden = warden_binary("bench/run.py", args.binary, args.no_build)
    if warden is None:
        return 2

    reps = REPS["quick" if args.quick else "full"]
    if args.workdir:
        work = Path(args.workdir).resolve()
        work.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="warden-bench-", dir=work))
    else:
        work = Path(tempfile.mkdtemp(prefix="warden-bench-"))
    ctx = Ctx(warden=warden, work=work, quick=args.quick)
    t0 = time.monotonic()
    info = machine_info(warden)
    load_before = loadavg()
    try:
        modes = available_modes(ctx)
        log(f"containment modes: {[m for m, _ in modes]}")
        log(f"1/3 spawn overhead ({reps[0]} reps)")
        spawn = bench_spawn(ctx, reps[0], modes)
        log(f"2/3 output throughput ({reps[1]} reps)")
        output = bench_output(ctx, reps[1])
        log(f"3/3 kill latency ({reps[2]} runs)")
        kill = bench_kill(ctx, reps[2], modes)
        probes = {} if args.no_probes else probe_kernel(ctx)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - t0
    text = render(info, args, reps, modes, spawn, output, kill, probes, ctx.errors,
                  (load_before, loadavg()), elapsed)
    Path(args.output).write_text(keep_history_block(Path(args.output), text))
    log(f"wrote {args.output} ({elapsed:.0f} s)")
    return 1 if ctx.errors else 0


if __name__ == "__main__":
    sys.exit(main())
