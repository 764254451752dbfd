#!/usr/bin/env python3
"""Real suites, read right: warden's results against each runner's own
report, test by test. Writes the `## Real suites` section of BENCHMARKS.md
(between `<!-- real-suites:begin -->` and `<!-- real-suites:end -->`).

    python3 bench/real_suites.py                # record every suite live, then compare
    python3 bench/real_suites.py --fixtures     # compare the committed recordings only (seconds)

Live mode first runs the recording scripts, which install what they need
and run the real thing on this machine:

- `bench/real_kernel.sh`: Debian's linux-source-6.12 kselftests through the
  kernel's own `run_kselftest.sh` (several collections, timeouts),
  kselftest_harness and kselftest.h binaries that crash, hang and are
  killed, KUnit logs with `kunit.py parse`, LTP binaries (with `LTP_DIR`);
- `bench/real_userland.sh`: bats-core's own suite and bats files of ours,
  `go test -json` of Go's standard library and a module that fails, panics
  and hangs, `cargo test` with and without `--nocapture`, pytest with
  pytest-rerunfailures and a broken fixture, cargo-nextest with retries.

Each recording comes with `<name>.expected.tsv` (`name<TAB>status`),
derived by `bench/real_kernel_expected.py` / `bench/real_expected.py` from
the runner's own report: its JUnit, test2json's actions, libtest's `test …
ok` and `test result:` lines, kselftest's `ok`/`not ok` and `# Totals:`,
kunit.py's JSON, LTP's result lines. Nothing typed by hand.

Then, for each recording, warden runs a batch that replays the recorded
bytes (and exit status) with the suite's `format`, and the results in
warden's JUnit are compared with the expected ones: same names (duplicates
numbered `#2`, `#3` in report order on both sides, as warden does), same
statuses. `error` and `failed` are told apart (a cut-off test is an error);
the table also shows how many match when the two are taken as one.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import REPO, log, toml_str, warden_binary, write_section  # noqa: E402

BEGIN = "<!-- real-suites:begin -->"
END = "<!-- real-suites:end -->"
FIXTURES = REPO / "tests" / "fixtures" / "real"

# suite directory -> (format, extensions of the recorded output, in order of preference)
SUITES: dict[str, tuple[str, tuple[str, ...]]] = {
    "kselftest": ("tap", (".tap",)),
    "kunit": ("kunit", (".log",)),
    "ltp": ("ltp", (".out",)),
    "bats": ("tap", (".tap",)),
    "go": ("go-json", (".json", ".jsonl")),
    "libtest": ("libtest", (".out", ".txt")),
    "pytest": ("junit", (".xml",)),
    "nextest": ("junit", (".xml",)),
}


def canonical(name: str) -> str:
    """One spelling of a test path for both sides: the expected files join
    levels with `::` (`classname::name`, `package::Test`, `target::test`),
    warden with `/`; cargo's `Doc-tests semver` target is warden's
    `doc-tests` binary; surrounding blanks are not part of a name."""
    name = name.strip()
    if name.startswith("Doc-tests "):
        name = "doc-tests" + name[name.find("::"):]
    return name.replace("::", "/")


def numbered(rows: list[tuple[str, str]]) -> dict[str, str]:
    """Names numbered as warden numbers duplicates: the second `x` is `x #2`."""
    seen: dict[str, int] = {}
    out: dict[str, str] = {}
    for name, status in rows:
        name = canonical(name)
        seen[name] = seen.get(name, 0) + 1
        key = name if seen[name] == 1 else f"{name} #{seen[name]}"
        out[key] = status
    return out


def read_expected(path: Path) -> dict[str, str]:
    """The runner's results. A binary run directly has its tests under its
    own name (`harness_misbehave/global.passes`); warden's batch is that
    name, so the prefix goes."""
    stem = path.name[: -len(".expected.tsv")] + "/"
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        name, _, status = line.rpartition("\t")
        rows.append((name, status.strip()))
    if rows and all(n.startswith(stem) for n, _ in rows):
        rows = [(n[len(stem):], s) for n, s in rows]
    return numbered(rows)


# Tests warden reports that the runner's report cannot list: the test in
# progress when the output stopped (issue 12 item 2) and results made from
# kselftest's `# Totals:` line for a test that printed no result lines.
NAMED_BY_WARDEN = ("no result", "timed out", "crashed", "by `# Totals:`")


def warden_results(junit: Path, batch: str) -> dict[str, str]:
    """Per test of `batch` in warden's JUnit: passed, failed, error, skipped,
    flaky; `+` before the status marks a test only warden can name."""
    out: dict[str, str] = {}
    root = ET.parse(junit).getroot()
    for suite in root.iter("testsuite"):
        if suite.get("name") != batch:
            continue
        for case in suite.iter("testcase"):
            if case.get("name") == batch:
                # The batch's own testcase: it failed outside any test (a
                # verdict problem, a crash); shown in the problems column.
                continue
            tags = {child.tag for child in case}
            if "failure" in tags:
                status = "failed"
            elif "error" in tags:
                status = "error"
            elif "skipped" in tags:
                status = "skipped"
            elif "flakyFailure" in tags or "flakyError" in tags:
                status = "flaky"
            else:
                status = "passed"
            messages = " ".join((child.get("message") or "") for child in case)
            name = case.get("name", "")
            # `test N`: numbered from the plan or the totals, no name given.
            synthetic = re.fullmatch(r"test \d+", name.rsplit("/", 1)[-1]) is not None
            if synthetic or any(m in messages for m in NAMED_BY_WARDEN):
                status = "+" + status
            out[canonical(case.get("name", ""))] = status
    return out


def recording_for(expected: Path, exts: tuple[str, ...]) -> Path | None:
    stem = expected.name[: -len(".expected.tsv")]
    for ext in exts:
        p = expected.with_name(stem + ext)
        if p.exists():
            return p
    return None


def replay(warden: Path, work: Path, fmt: str, recording: Path, rc: int) -> tuple[dict[str, str], str]:
    """Runs warden on a batch replaying `recording`; its results and problems."""
    work.mkdir(parents=True)
    batch = "replay"
    if fmt == "junit":
        # The batch writes the runner's JUnit file during its run (a file
        # older than the batch would be stale, rightly ignored).
        shell = f"cp {sh_quote(str(recording))} out/report.xml; exit {rc}"
        extra = 'junit-files = ["out/*.xml"]\n'
        (work / "out").mkdir()
    else:
        shell = f"cat {sh_quote(str(recording))}; exit {rc}"
        extra = ""
    (work / "warden.toml").write_text(
        f"[[batch]]\nname = \"{batch}\"\nshell = {toml_str(shell)}\nformat = \"{fmt}\"\n{extra}timeout = \"2m\"\n"
    )
    art = work / "artifacts"
    p = subprocess.run(
        [str(warden), "run", "-c", str(work / "warden.toml"), "--artifacts", str(art), "--history", "none"],
        capture_output=True, text=True, errors="replace",
    )
    if p.returncode not in (0, 1):
        raise SystemExit(f"warden exited {p.returncode} on {recording}:\n{p.stderr[-3000:]}")
    problems = [l.strip() for l in p.stdout.splitlines() if l.strip().startswith("tests:")]
    return warden_results(art / "junit.xml", batch), "; ".join(problems)


def sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def compare(expected: dict[str, str], got: dict[str, str]) -> dict:
    # A parent result warden reports (a KUnit suite, a kselftest whose
    # subtests the runner's report lists) where the runner's report lists
    # only its children is not an extra test.
    parents = {e.rsplit("/", i)[0] for e in expected for i in range(1, e.count("/") + 1)}
    got = {n: s for n, s in got.items() if n in expected or n not in parents}
    own = sorted(n for n, s in got.items() if n not in expected and s.startswith("+"))
    got = {n: s.lstrip("+") for n, s in got.items() if n not in own}
    same = [n for n in expected if got.get(n) == expected[n]]
    loose = [n for n in expected if n in got and {got[n], expected[n]} <= {"failed", "error"}]
    return {
        "expected": len(expected),
        "warden": len(got),
        "same": len(same),
        "loose": len(same) + len([n for n in loose if got[n] != expected[n]]),
        "missing": sorted(n for n in expected if n not in got),
        "extra": sorted(n for n in got if n not in expected),
        "own": own,
        "differ": sorted((n, expected[n], got[n]) for n in expected if n in got and got[n] != expected[n]),
    }


def record_live(out: Path) -> None:
    log(f"recording live into {out} (this installs packages and builds suites: minutes)")
    subprocess.run(["bash", str(REPO / "bench" / "real_kernel.sh"), str(out)], check=False)
    subprocess.run(["bash", str(REPO / "bench" / "real_userland.sh"), str(out)], check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", action="store_true", help="compare the committed recordings instead of recording live")
    ap.add_argument("--recordings", help="an existing directory of recordings (as the scripts write them)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--warden")
    ap.add_argument("--output", default=str(REPO / "BENCHMARKS.md"))
    ap.add_argument("--verbose", action="store_true", help="list every mismatch")
    args = ap.parse_args()
    warden = warden_binary("real_suites.py", args.warden, args.no_build)
    if warden is None:
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="warden-real-"))
    try:
        if args.fixtures:
            root, mode = FIXTURES, "the committed recordings (tests/fixtures/real)"
        elif args.recordings:
            root, mode = Path(args.recordings), f"recordings in {args.recordings}"
        else:
            root, mode = tmp / "recordings", "recorded live in this run"
            record_live(root)
        rows = []
        for suite, (fmt, exts) in SUITES.items():
            d = root / suite
            if not d.is_dir():
                log(f"{suite}: no recordings in {d}")
                continue
            for expected_file in sorted(d.rglob("*.expected.tsv")):
                rec = recording_for(expected_file, exts)
                if rec is None:
                    continue
                rc_file = rec.with_suffix(".rc")
                rc = int(rc_file.read_text().split()[0]) if rc_file.exists() else 0
                rc = rc if 0 <= rc < 256 else 1
                name = str(rec.relative_to(root))
                got, problems = replay(warden, tmp / "runs" / name.replace("/", "_"), fmt, rec, rc)
                c = compare(read_expected(expected_file), got)
                c.update(suite=suite, name=name, problems=problems)
                rows.append(c)
                flag = "ok" if c["same"] == c["expected"] == c["warden"] else "MISMATCH"
                log(f"{name}: {c['same']}/{c['expected']} same, warden {c['warden']} [{flag}]")
                if args.verbose or flag != "ok":
                    for n in c["missing"][:10]:
                        log(f"   missing: {n}")
                    for n in c["extra"][:10]:
                        log(f"   extra:   {n}")
                    for n, e, g in c["differ"][:10]:
                        log(f"   differ:  {n}: runner {e}, warden {g}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not rows:
        print("no recordings found", file=sys.stderr)
        return 1
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    lines = [
        BEGIN,
        "## Real suites",
        "",
        f"`python3 bench/real_suites.py{' --fixtures' if args.fixtures else ''}` at {rev}, on {mode}. Per recording: tests in the "
        "runner's own report, tests warden reported, how many have the same name and status (and "
        "with failed = error), and what differs. *Named by warden only*: tests the runner's report cannot list — the test "
        "in progress when the output stopped (named from its `RUN` banner or the plan) and results made from a "
        "`# Totals:` line; their names are listed below the table. Expected results come from each runner's own report "
        "(see the script's docstring), never typed by hand.",
        "",
        "| recording | runner's tests | warden's tests | same status | failed = error | missing | extra | differing | named by warden only |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in rows:
        lines.append(
            f"| `{c['name']}` | {c['expected']} | {c['warden']} | {c['same']} | {c['loose']} | "
            f"{len(c['missing'])} | {len(c['extra'])} | {len(c['differ'])} | {len(c['own'])} |"
        )
    tot = {k: sum(c[k] for c in rows) for k in ("expected", "warden", "same", "loose")}
    lines.append(
        f"| **all {len(rows)}** | {tot['expected']} | {tot['warden']} | {tot['same']} | {tot['loose']} | "
        f"{sum(len(c['missing']) for c in rows)} | {sum(len(c['extra']) for c in rows)} | {sum(len(c['differ']) for c in rows)} | {sum(len(c['own']) for c in rows)} |"
    )
    notes = [c for c in rows if c["missing"] or c["extra"] or c["differ"] or c["own"]]
    if notes:
        lines += ["", "Where they differ (first three of each kind):", ""]
        for c in notes:
            parts = []
            parts += [f"missing `{n}`" for n in c["missing"][:3]]
            parts += [f"extra `{n}`" for n in c["extra"][:3]]
            parts += [f"`{n}`: runner {e}, warden {g}" for n, e, g in c["differ"][:3]]
            parts += [f"warden only `{n}`" for n in c["own"][:3]]
            lines.append(f"- `{c['name']}`: " + "; ".join(p.replace("|", "\\|") for p in parts))
    lines.append(END)
    block = "\n".join(lines)
    write_section(Path(args.output), block, BEGIN, END, "bench/real_suites.py",
                  "python3 bench/real_suites.py     # real suites recorded live; warden against each runner's report")
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
