#!/usr/bin/env python3
"""Derive `<fixture>.expected.tsv` (name<TAB>status) mechanically from the
report lines that real kernel test runners print.  Used by
bench/real_kernel.sh; never edit the generated .tsv files by hand.

Status vocabulary: passed, failed, skipped, error.

Modes
-----
kselftest-runner FILE
    Output of tools/testing/selftests/run_kselftest.sh.  One line per outer
    result `ok N selftests: COLL: TEST [# DIRECTIVE]` named `COLL/TEST`, and
    one line per nested result `# ok N DESC` printed between
    `# selftests: COLL: TEST` and that outer result, named `COLL/TEST/DESC`.
tap PREFIX FILE
    A kselftest.h / kselftest_harness.h binary run directly (top-level
    `ok N DESC` lines).  Named `PREFIX/DESC`.
totals FILE
    Every `# Totals: pass:..` line (nested `# # Totals:` included), one TSV
    line per Totals line: scope pass fail xfail xpass skip error.  The scope
    is `COLL/TEST` inside run_kselftest.sh output, `-` otherwise.
kunit-json FILE.json
    JSON written by `kunit.py parse --json=FILE.json`.  Named by the group
    path below the root group, then the test case: `suite/case`
    (`suite/param_group/case` for deeper groups; a suite that never reported
    subtests appears as a bare `suite` test case).
ltp NAME FILE
    Output of one LTP test binary.  One line `NAME<TAB>status` from the
    `Summary:` block (failed>0 -> failed, else broken>0 -> error, else
    passed>0 -> passed, else skipped>0 -> skipped).  Without a Summary block
    (old test.h API tests, or a TCONF/TBROK before the test started) the same
    precedence is applied to the TFAIL/TBROK/TPASS/TCONF result lines.

TAP line -> status rules (kselftest-runner and tap modes)
    `# SKIP ...` directive (ok or not ok)       -> skipped
    `# TIMEOUT N seconds` (runner)              -> error
    `# error ...` (ksft_test_result_error)      -> error
    `# exit=N` with N >= 128 (killed by signal) -> error
    any other `ok` (incl. `# XFAIL`, `# XPASS`) -> passed
    any other `not ok`                          -> failed
A nested description that is empty takes the directive's text as its name
(`ok 3 # SKIP gamma` -> `gamma`), else its test number.
"""
import json
import re
import sys

OUTER_HDR = re.compile(r'^# selftests: (\S+): (\S+)$')
OUTER_RES = re.compile(r'^(ok|not ok) (\d+) selftests: (\S+): (\S+)(.*)$')
TAP_RES = re.compile(r'^(ok|not ok) (\d+)\b(.*)$')
NESTED_RES = re.compile(r'^# (ok|not ok) (\d+)\b(.*)$')
DIRECTIVE = re.compile(
    r'\s*#\s*(SKIP|TODO|XFAIL|XPASS|TIMEOUT|error|exit=\d+)\b\s*(.*)$',
    re.IGNORECASE)
TOTALS = re.compile(r'^(?:# )*# Totals: pass:(\d+) fail:(\d+) xfail:(\d+) '
                    r'xpass:(\d+) skip:(\d+) error:(\d+)')


def classify(okword, rest, num):
    """Return (name, status) for the text after `ok N` / `not ok N`."""
    m = DIRECTIVE.search(rest)
    directive, dtext = None, ''
    desc = rest
    if m:
        directive, dtext = m.group(1), m.group(2).strip()
        desc = rest[:m.start()]
    desc = desc.strip()
    if desc.startswith('- '):
        desc = desc[2:].strip()
    elif desc == '-':
        desc = ''
    name = desc or dtext or num
    d = (directive or '').lower()
    if d == 'skip':
        status = 'skipped'
    elif d in ('timeout', 'error'):
        status = 'error'
    elif d.startswith('exit='):
        status = 'error' if int(d[5:]) >= 128 else 'failed'
    elif okword == 'ok':
        status = 'passed'
    else:
        status = 'failed'
    return name.replace('\t', ' '), status


def kselftest_runner(path):
    out = []
    cur = None  # (coll, test) between header and outer result
    nested = []
    with open(path, errors='backslashreplace') as f:
        for line in f:
            line = line.rstrip('\n')
            m = OUTER_HDR.match(line)
            if m:
                cur = (m.group(1), m.group(2))
                nested = []
                continue
            m = OUTER_RES.match(line)
            if m:
                coll, test = m.group(3), m.group(4)
                _, status = classify(m.group(1), m.group(5), m.group(2))
                out.append((f'{coll}/{test}', status))
                for sub, sstatus in nested:
                    out.append((f'{coll}/{test}/{sub}', sstatus))
                cur, nested = None, []
                continue
            if cur is not None:
                m = NESTED_RES.match(line)
                if m:
                    nested.append(classify(m.group(1), m.group(3),
                                           m.group(2)))
    return out


def tap(prefix, path):
    out = []
    with open(path, errors='backslashreplace') as f:
        for line in f:
            m = TAP_RES.match(line.rstrip('\n'))
            if m:
                name, status = classify(m.group(1), m.group(3), m.group(2))
                out.append((f'{prefix}/{name}', status))
    return out


def totals(path):
    out = []
    scope = '-'
    with open(path, errors='backslashreplace') as f:
        for line in f:
            line = line.rstrip('\n')
            m = OUTER_HDR.match(line)
            if m:
                scope = f'{m.group(1)}/{m.group(2)}'
                continue
            if OUTER_RES.match(line):
                scope = '-'
                continue
            m = TOTALS.match(line)
            if m:
                out.append((scope,) + m.groups())
    return out


KUNIT_STATUS = {'PASS': 'passed', 'FAIL': 'failed', 'SKIP': 'skipped',
                'ERROR': 'error'}


def kunit_json(path):
    with open(path) as f:
        root = json.load(f)
    out = []

    def walk(group, prefix):
        for case in group.get('test_cases', []):
            out.append(('/'.join(prefix + [case['name']]),
                        KUNIT_STATUS[case['status']]))
        for sub in group.get('sub_groups', []):
            walk(sub, prefix + [sub['name']])

    walk(root, [])
    return out


LTP_SUMMARY = re.compile(r'^(passed|failed|broken|skipped|warnings)\s+(\d+)$')
LTP_NEW = re.compile(r'^\S+:\d+: (TPASS|TFAIL|TBROK|TCONF|TWARN|TINFO): ')
LTP_OLD = re.compile(r'^\S+\s+\d+\s+(TPASS|TFAIL|TBROK|TCONF|TWARN|TINFO)\s+:')


def ltp(name, path):
    summary = {}
    seen = {'TPASS': 0, 'TFAIL': 0, 'TBROK': 0, 'TCONF': 0}
    in_summary = False
    with open(path, errors='backslashreplace') as f:
        for line in f:
            line = line.rstrip('\n')
            if line == 'Summary:':
                in_summary = True
                continue
            if in_summary:
                m = LTP_SUMMARY.match(line)
                if m:
                    summary[m.group(1)] = int(m.group(2))
                continue
            m = LTP_NEW.match(line) or LTP_OLD.match(line)
            if m and m.group(1) in seen:
                seen[m.group(1)] += 1
    if summary:
        counts = (summary.get('failed', 0), summary.get('broken', 0),
                  summary.get('passed', 0), summary.get('skipped', 0))
    else:
        counts = (seen['TFAIL'], seen['TBROK'], seen['TPASS'], seen['TCONF'])
    for n, status in zip(counts, ('failed', 'error', 'passed', 'skipped')):
        if n > 0:
            return [(name, status)]
    return [(name, 'error')]  # no result at all


def main(argv):
    mode = argv[1] if len(argv) > 1 else ''
    if mode == 'kselftest-runner' and len(argv) == 3:
        rows = kselftest_runner(argv[2])
    elif mode == 'tap' and len(argv) == 4:
        rows = tap(argv[2], argv[3])
    elif mode == 'totals' and len(argv) == 3:
        rows = totals(argv[2])
    elif mode == 'kunit-json' and len(argv) == 3:
        rows = kunit_json(argv[2])
    elif mode == 'ltp' and len(argv) == 4:
        rows = ltp(argv[2], argv[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    for row in rows:
        print('\t'.join(row))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
