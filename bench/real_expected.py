#!/usr/bin/env python3
"""Derive `name<TAB>status` lines from a real test runner's own report.

Used by bench/real_userland.sh to write the tests/fixtures/real/*/*.expected.tsv
files mechanically (never by hand).  Status is one of
passed / failed / skipped / flaky / error.

usage:
  real_expected.py junit  REPORT.xml        JUnit XML (bats, pytest, nextest)
  real_expected.py tap    OUTPUT.txt        bats TAP
  real_expected.py tap-timing OUTPUT.txt    bats TAP recorded with --timing
  real_expected.py gojson OUTPUT.json       go test -json (test2json events)
  real_expected.py libtest OUTPUT.txt       cargo test text output (`test X ... ok`)
  real_expected.py libtest-json OUTPUT.txt  cargo test -Z unstable-options --format json,
                                            recorded 2>&1 (cargo's `Running` lines name the target)
  real_expected.py compare A.tsv B.tsv      exit 1 if the two TSVs differ as sets

Naming rules (one line per test, in report order):
  junit:   "<classname>::<name>" (just "<name>" when classname is empty)
  gojson:  "<Package>::<Test>" (subtests keep go's "Parent/sub" form)
  libtest: "<target>::<test name>", target = what cargo printed after `Running`
           (e.g. "unittests src/lib.rs", "tests/zz_warden.rs") or "Doc-tests <crate>"
  tap:     "<name>" as printed after `ok N ` / `not ok N ` (timing suffix and
           `# skip ...` directive removed; TAP has no file names, so a name used in
           two files appears twice)

Status rules:
  junit:   <failure> -> failed, else <error> -> error, else <skipped> -> skipped,
           else passed.  A testcase that passed after retries recorded inside it
           (<flakyFailure>/<flakyError> from nextest, <rerunFailure>/<rerunError>
           from pytest-rerunfailures, should it ever write them) -> flaky.  A name that occurs several times
           (older pytest-rerunfailures style) is reported once, with its last
           status, or flaky when that last one passed (pytest-rerunfailures >= 16.6
           writes one <testcase> per attempt and leaves the failed attempts EMPTY,
           i.e. they look like passes; a repeated name can only come from reruns).
  gojson:  Action pass/fail/skip -> passed/failed/skipped.  A test with a `run`
           event but no pass/fail/skip event (binary killed by -timeout or a
           panic elsewhere) -> failed, because go reports its package as failed;
           the script prints a note on stderr for each such test.
  libtest: ok -> passed, FAILED -> failed, ignored -> skipped; the text form's
           " - should panic" suffix is dropped (the json name has none);
           cross-checked against each binary's `test result:` counts.
"""
import json
import re
import sys
import xml.etree.ElementTree as ET


def emit(rows):
    for name, status in rows:
        if "\t" in name or "\n" in name:
            raise SystemExit(f"test name contains TAB/newline: {name!r}")
        print(f"{name}\t{status}")


def junit(path):
    root = ET.parse(path).getroot()
    order, seen = [], {}
    for tc in root.iter("testcase"):
        cls = tc.get("classname") or ""
        name = tc.get("name") or ""
        full = f"{cls}::{name}" if cls else name
        tags = {child.tag for child in tc}
        if "failure" in tags:
            st = "failed"
        elif "error" in tags:
            st = "error"
        elif "skipped" in tags:
            st = "skipped"
        elif tags & {"flakyFailure", "flakyError", "rerunFailure", "rerunError"}:
            st = "flaky"
        else:
            st = "passed"
        if full not in seen:
            order.append(full)
            seen[full] = []
        seen[full].append(st)
    rows = []
    for full in order:
        sts = seen[full]
        last = sts[-1]
        if len(sts) > 1 and last == "passed":
            last = "flaky"
        rows.append((full, last))
    return rows


TAP_RE = re.compile(r"^(ok|not ok) (\d+) (.*)$")


def tap(path, timing=False):
    """bats TAP: `ok N name`, `not ok N name`, `ok N name # skip[ reason]`.
    bats 1.8.2 timing comes in two shapes: `--report-formatter` (without --timing)
    appends ` # in N ms`; `--timing` appends ` in Nms` to the NAME, before a
    `# skip` directive (`ok 3 foo in 5ms # skip reason`).  The second shape is
    only stripped in mode tap-timing.  `# ...` diagnostic lines are ignored."""
    rows = []
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        m = TAP_RE.match(line)
        if not m:
            continue
        ok, _, rest = m.groups()
        status = "passed" if ok == "ok" else "failed"
        rest = re.sub(r" # in \d+ ?ms$", "", rest)
        sk = re.match(r"^(.*?) # skip(?: .*)?$", rest)
        if sk and ok == "ok":
            rest, status = sk.group(1), "skipped"
        if timing:
            rest = re.sub(r" in \d+ms$", "", rest)
        rows.append((rest, status))
    return rows


def gojson(path):
    order, state = [], {}
    pkg_fail = set()
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        act, pkg, test = ev.get("Action"), ev.get("Package", ""), ev.get("Test")
        if not test:
            if act == "fail":
                pkg_fail.add(pkg)
            continue
        key = f"{pkg}::{test}"
        if act == "run" and key not in state:
            order.append(key)
            state[key] = None
        elif act in ("pass", "fail", "skip"):
            if key not in state:
                order.append(key)
            state[key] = {"pass": "passed", "fail": "failed", "skip": "skipped"}[act]
    rows = []
    for key in order:
        st = state[key]
        if st is None:
            pkg = key.split("::", 1)[0]
            print(f"note: {key}: `run` without pass/fail/skip event"
                  f" (package {'failed' if pkg in pkg_fail else 'did not fail?!'})",
                  file=sys.stderr)
            st = "failed"
        rows.append((key, st))
    return rows


RUNNING_RE = re.compile(r"^\s*Running (.+?)(?: \(.*\))?$")
DOCTEST_RE = re.compile(r"^\s*Doc-tests (\S+)$")
LIBTEST_RE = re.compile(r"^test (.+) \.\.\. (ok|FAILED|ignored)(?:, .*)?(?: <[0-9.]+s>)?$")
RESULT_RE = re.compile(r"^test result: (ok|FAILED)\. (\d+) passed; (\d+) failed; (\d+) ignored;")


def target_of(line):
    m = RUNNING_RE.match(line)
    if m:
        return m.group(1)
    m = DOCTEST_RE.match(line)
    if m:
        return f"Doc-tests {m.group(1)}"
    return None


def check_counts(target, counts, got, problems):
    if counts is None:
        return
    want = dict(zip(("passed", "failed", "skipped"), counts))
    if want != got:
        problems.append(f"{target}: `test result` says {want}, parsed {got}")


def libtest(path):
    rows, problems = [], []
    target, got = "?", {"passed": 0, "failed": 0, "skipped": 0}
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        t = target_of(line)
        if t:
            target, got = t, {"passed": 0, "failed": 0, "skipped": 0}
            continue
        m = LIBTEST_RE.match(line)
        if m:
            st = {"ok": "passed", "FAILED": "failed", "ignored": "skipped"}[m.group(2)]
            got[st] += 1
            # text output says `test NAME - should panic ... ok`; the json name is just NAME
            name = re.sub(r" - should panic(?: with [^\n]*)?$", "", m.group(1))
            rows.append((f"{target}::{name}", st))
            continue
        m = RESULT_RE.match(line)
        if m:
            check_counts(target, tuple(int(x) for x in m.group(2, 3, 4)), got, problems)
    for p in problems:
        print(f"MISMATCH {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    return rows


def libtest_json(path):
    rows, problems = [], []
    target, got = "?", {"passed": 0, "failed": 0, "skipped": 0}
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        t = target_of(line)
        if t:
            target, got = t, {"passed": 0, "failed": 0, "skipped": 0}
            continue
        if not line.startswith("{"):
            continue
        ev = json.loads(line)
        if ev.get("type") == "test" and ev.get("event") in ("ok", "failed", "ignored"):
            st = {"ok": "passed", "failed": "failed", "ignored": "skipped"}[ev["event"]]
            got[st] += 1
            rows.append((f"{target}::{ev['name']}", st))
        elif ev.get("type") == "suite" and ev.get("event") in ("ok", "failed"):
            check_counts(target, (ev["passed"], ev["failed"], ev["ignored"]), got, problems)
    for p in problems:
        print(f"MISMATCH {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    return rows


def load_tsv(path):
    return sorted(tuple(l.rstrip("\n").split("\t")) for l in open(path) if l.strip())


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    mode = sys.argv[1]
    if mode == "compare":
        a, b = load_tsv(sys.argv[2]), load_tsv(sys.argv[3])
        if a != b:
            print(f"DIFFER: {sys.argv[2]} {sys.argv[3]}", file=sys.stderr)
            for x in sorted(set(a) ^ set(b)):
                print("  ", x, file=sys.stderr)
            sys.exit(1)
        return
    fn = {"junit": junit, "tap": tap, "tap-timing": lambda p: tap(p, timing=True), "gojson": gojson, "libtest": libtest,
          "libtest-json": libtest_json}[mode]
    emit(fn(sys.argv[2]))


if __name__ == "__main__":
    main()
