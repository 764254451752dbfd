//! LTP (Linux Test Project) output. One LTP test is one binary (or shell
//! script); the lines it prints are its checks. Three line shapes:
//!
//! ```text
//! tst_test.c:2048: TINFO: LTP version: 20260529        new C library (tst_test.h)
//! getpid01.c:33: TPASS: getpid() returns 22727
//! ioperm02.c:69: TFAIL: Unexpected results for …
//! mprotect01    1  TPASS  :  expected failure - errno = 12 …   old C library (test.h)
//! ping01 1 TPASS: ping6 with -s 10 passed                      shell library (tst_test.sh)
//! ```
//!
//! (`print_result` in lib/tst_test.c, `tst_print` in lib/tst_res.c,
//! `tst_res` in testcases/lib/tst_test.sh.) Flags: `TPASS`, `TFAIL`,
//! `TBROK` (broken: the test could not reach a verdict), `TCONF` (not
//! applicable here: a skip), `TWARN` (something went wrong beside the test,
//! typically in cleanup), `TINFO`, `TDEBUG`; the old library also `TRETR`
//! (retired: a skip). Before LTP 20200930 the new library printed them
//! without the `T` (`PASS:`, `FAIL:`, …). With color on, the flag is wrapped
//! in ANSI escapes, which are removed. The new and shell libraries end with
//! a summary counting those lines (`broken` since 20210121):
//!
//! ```text
//! Summary:
//! passed   1
//! failed   0
//! broken   0
//! skipped  0
//! warnings 0
//! ```
//!
//! The old library prints none, nor does the new one when it stops before
//! the test starts (a `TCONF`/`TBROK` in its own checks).
//!
//! runltp's `ltp-pan` (removed from LTP in 2026, still in older installs)
//! wraps each test of a run:
//!
//! ```text
//! <<<test_start>>>
//! tag=getpid01 stime=1593508345
//! cmdline="getpid01"
//! contacts=""
//! analysis=exit
//! <<<test_output>>>
//! …the test's output…
//! <<<execution_status>>>
//! initiation_status="ok"
//! duration=0 termination_type=exited termination_id=0 corefile=no
//! cutime=0 cstime=1
//! <<<test_end>>>
//! ```
//!
//! Results: one per LTP test, named by its runltp `tag`; without runltp,
//! by the name the parser was given for the binary ([`LtpParser::named`]),
//! else by its own source file (`getpid01.c:` of its lines; the library's
//! files such as `tst_test.c` don't count), else by the old library's TCID
//! or the shell library's TST_ID, else `ltp`. Without runltp a completed
//! `Summary:` block ends a test, so a script running binaries one after
//! another gives one result each.
//!
//! Status, from the counts of result lines (the `Summary:` counts when they
//! are higher): any `TFAIL` → failed; else any `TBROK` → error `broken`;
//! else any `TPASS` → passed; else any `TCONF` → skipped, the first one's
//! text the reason; else any `TWARN` → failed. The message of a failed or
//! broken test is its first `TFAIL`/`TBROK` line. A `TWARN` does not fail a
//! test whose checks passed (LTP's own summaries keep it apart from
//! failures), but LTP exits non-zero for it, so it is a verdict problem
//! naming the test and its first `TWARN` line, and that line is the passed
//! test's message. A `Summary:` whose counts differ from the lines seen is
//! a verdict problem. Under runltp the test's exit is checked too: killed
//! by a signal → error `crashed` unless the lines already say it failed; an
//! exit code with bits other than `TWARN` (4) and `TCONF` (32) while the
//! lines say passed or skipped → failed; a test with no result lines
//! passes with exit code 0, is skipped with 32 and fails otherwise.
//!
//! Durations: from arrival times, a test's first line to its last (the
//! previous test's end for the first); under runltp the larger of that and
//! its `duration=` (whole seconds, and ltp-pan may print a test's output
//! only when it ends).
//!
//! A test still running when the output ends (runltp's block without its
//! `<<<test_end>>>`; without runltp, a test with LTP lines and no
//! `Summary:` yet when the batch was cut off) is reported with the batch's
//! ending ([`Ended::result`]). When the batch exited by itself, a test
//! without a summary is judged by its lines (the old library never prints
//! one); one with no result lines at all has `no result`.

use std::borrow::Cow;
use std::time::Duration;

use super::{Ended, OutputTail, Parser, StreamVerdict, TestResult};
use crate::status::TestStatus;
use crate::text::{clip, clip_message};

/// Longest name kept (a name on a 1 MB line would otherwise be kept whole).
const MAX_NAME: usize = 256;

/// Name of a test nothing names.
const FALLBACK_NAME: &str = "ltp";

/// The most verdict problems kept: a run of thousands of tests with
/// warnings would otherwise list them all.
const MAX_PROBLEMS: usize = 50;

/// The LTP library's own source files (lib/*.c): their lines don't name the
/// test. Files of the shared test libraries (libs/: `tse_*.c`, `ujson_*.c`,
/// formerly `lib*.c`) are recognized by prefix.
const LIBRARY_FILES: &[&str] = &[
    "cloner.c",
    "get_path.c",
    "parse_opts.c",
    "random_range.c",
    "safe_file_ops.c",
    "safe_macros.c",
    "safe_net.c",
    "safe_pthread.c",
    "safe_stdio.c",
    "self_exec.c",
    "tlibio.c",
    "tst_af_alg.c",
    "tst_ansi_color.c",
    "tst_arch.c",
    "tst_assert.c",
    "tst_bool_expr.c",
    "tst_buffers.c",
    "tst_capability.c",
    "tst_cgroup.c",
    "tst_checkpoint.c",
    "tst_checksum.c",
    "tst_clocks.c",
    "tst_clone.c",
    "tst_cmd.c",
    "tst_coredump.c",
    "tst_cpu.c",
    "tst_crypto.c",
    "tst_device.c",
    "tst_dir_is_empty.c",
    "tst_epoll.c",
    "tst_fd.c",
    "tst_fill_file.c",
    "tst_fill_fs.c",
    "tst_fs_has_free.c",
    "tst_fs_link_count.c",
    "tst_fs_setup.c",
    "tst_fs_type.c",
    "tst_get_bad_addr.c",
    "tst_hugepage.c",
    "tst_ioctl.c",
    "tst_kconfig.c",
    "tst_kernel.c",
    "tst_kvercmp.c",
    "tst_lockdown.c",
    "tst_memutils.c",
    "tst_mkfs.c",
    "tst_module.c",
    "tst_net.c",
    "tst_netdevice.c",
    "tst_netlink.c",
    "tst_parse_opts.c",
    "tst_path_exists.c",
    "tst_path_has_mnt_flags.c",
    "tst_pid.c",
    "tst_process_state.c",
    "tst_rand_data.c",
    "tst_res.c",
    "tst_resource.c",
    "tst_rtctime.c",
    "tst_safe_file_at.c",
    "tst_safe_io_uring.c",
    "tst_safe_macros.c",
    "tst_safe_sysv_ipc.c",
    "tst_safe_timerfd.c",
    "tst_security.c",
    "tst_sig.c",
    "tst_sig_proc.c",
    "tst_status.c",
    "tst_supported_fs_types.c",
    "tst_sys_conf.c",
    "tst_taint.c",
    "tst_test.c",
    "tst_test_macros.c",
    "tst_thread_state.c",
    "tst_timer.c",
    "tst_timer_test.c",
    "tst_tmpdir.c",
    "tst_uid.c",
    "tst_virt.c",
    "tst_wallclock.c",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    Pass,
    Fail,
    Brok,
    Conf,
    Warn,
    Info,
}

/// Result-line counts, from the lines or from a `Summary:` block (where a
/// count may be missing: `broken` is newer than the block).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    broken: u64,
    skipped: u64,
    warnings: u64,
}

#[derive(Debug, Default)]
struct Summary {
    passed: Option<u64>,
    failed: Option<u64>,
    broken: Option<u64>,
    skipped: Option<u64>,
    warnings: Option<u64>,
}

/// Where in runltp's block for a test the output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Block {
    /// Not in a block (no runltp, or between its blocks).
    #[default]
    Outside,
    /// `tag=`, `cmdline=`… before `<<<test_output>>>`.
    Header,
    Output,
    /// `initiation_status=`, `duration=`… before `<<<test_end>>>`.
    Status,
}

/// The test being read.
#[derive(Debug, Default)]
struct Unit {
    /// runltp's `tag=`.
    tag: Option<String>,
    /// The name its lines give (source file, TCID, TST_ID).
    named: Option<String>,
    /// Whether `named` came from the test's own source file (preferred
    /// over a TCID, which old tests often left stale).
    named_by_file: bool,
    /// Any LTP line seen: without one, lines are not a test.
    ltp: bool,
    lines: Counts,
    first_bad: Option<String>,
    first_conf: Option<String>,
    first_warn: Option<String>,
    summary: Option<Summary>,
    /// Inside the `Summary:` block.
    in_summary: bool,
    output: OutputTail,
    started: Duration,
    /// runltp's `duration=` (seconds).
    pan_duration: Option<u64>,
    /// runltp's `termination_type=` and `termination_id=`.
    termination: Option<(String, i64)>,
    /// runltp's `initiation_status=`, when not `ok`.
    not_started: Option<String>,
}

/// Parser of LTP output: single test binaries, scripts running several,
/// runltp's ltp-pan output.
#[derive(Debug, Default)]
pub struct LtpParser {
    /// The binary's name when the batch runs one LTP binary.
    name_hint: Option<String>,
    unit: Unit,
    block: Block,
    /// A `<<<test_start>>>` was seen: lines outside blocks are runltp's.
    runltp: bool,
    /// Results reported so far.
    reported: usize,
    last_at: Duration,
    problems: Vec<String>,
}

impl LtpParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser for a batch that runs the one LTP binary `name`: the name
    /// of its test when runltp's tags don't give one (a test's lines name
    /// it only by its source file or, in the old library, by a TCID that is
    /// often stale, and not at all when it stops before starting).
    pub fn named(name: &str) -> Self {
        LtpParser {
            name_hint: Some(clip(name, MAX_NAME)),
            ..Self::default()
        }
    }

    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }

    fn name(&self) -> String {
        let hint = self.name_hint.as_ref().filter(|_| self.reported == 0);
        self.unit
            .tag
            .clone()
            .or_else(|| hint.cloned())
            .or_else(|| self.unit.named.clone())
            .unwrap_or_else(|| FALLBACK_NAME.to_string())
    }

    /// Starts the next test at `at`.
    fn next_unit(&mut self, at: Duration) {
        self.unit = Unit {
            started: at,
            ..Unit::default()
        };
    }

    /// The test read so far, judged by its lines (and runltp's status):
    /// `None` when nothing says how it ended.
    fn judge(&mut self, name: &str) -> Option<(TestStatus, Option<String>)> {
        let u = &self.unit;
        let seen = u.lines;
        let mut counts = seen;
        if let Some(s) = &u.summary {
            let mut check = |what: &str, flag: &str, said: Option<u64>, seen: u64, n: &mut u64| {
                if let Some(said) = said {
                    if said != seen {
                        self.problems.push(format!(
                            "{name}: its Summary says {what} {said}, {seen} {flag} lines were seen"
                        ));
                    }
                    *n = (*n).max(said);
                }
            };
            check("passed", "TPASS", s.passed, seen.passed, &mut counts.passed);
            check("failed", "TFAIL", s.failed, seen.failed, &mut counts.failed);
            check("broken", "TBROK", s.broken, seen.broken, &mut counts.broken);
            check(
                "skipped",
                "TCONF",
                s.skipped,
                seen.skipped,
                &mut counts.skipped,
            );
            check(
                "warnings",
                "TWARN",
                s.warnings,
                seen.warnings,
                &mut counts.warnings,
            );
            self.problems.truncate(MAX_PROBLEMS);
        }
        let bad = || {
            u.first_bad
                .clone()
                .or_else(|| Some("a TFAIL/TBROK counted in its Summary, not printed".into()))
        };
        let mut verdict = if counts.failed > 0 {
            Some((TestStatus::Failed, bad()))
        } else if counts.broken > 0 {
            Some((TestStatus::Error("broken".into()), bad()))
        } else if counts.passed > 0 {
            Some((TestStatus::Passed, u.first_warn.clone()))
        } else if counts.skipped > 0 {
            Some((TestStatus::Skipped(u.first_conf.clone()), None))
        } else if counts.warnings > 0 {
            Some((TestStatus::Failed, u.first_warn.clone()))
        } else {
            None
        };
        if let Some(not_started) = &u.not_started {
            verdict = Some((
                TestStatus::Failed,
                Some(clip_message(&format!(
                    "runltp could not start it: {not_started}"
                ))),
            ));
        } else if let Some((how, id)) = &u.termination {
            let said = format!("termination_type={how} termination_id={id}");
            let failing = verdict.as_ref().is_some_and(|(s, _)| s.is_failure());
            if how != "exited" {
                if !failing {
                    verdict = Some((TestStatus::Error("crashed".into()), Some(said)));
                }
            } else if verdict.is_none() {
                verdict = Some(match id {
                    0 => (TestStatus::Passed, None),
                    32 => (TestStatus::Skipped(Some(said)), None),
                    _ => (TestStatus::Failed, Some(said)),
                });
            } else if !failing && (id & !(4 | 32)) != 0 {
                verdict = Some((TestStatus::Failed, Some(said)));
            }
        }
        if counts.warnings > 0 && verdict.as_ref().is_some_and(|(s, _)| !s.is_failure()) {
            let first = u.first_warn.as_deref().unwrap_or("counted in its Summary");
            let p = format!("{name}: {} TWARN: {first}", counts.warnings);
            self.problem(p);
        }
        verdict
    }

    /// Reports the test read so far, if it is one.
    fn close(&mut self, at: Duration, done: &mut Vec<TestResult>) {
        if self.unit.ltp || self.unit.tag.is_some() {
            let name = self.name();
            let (status, message) = self
                .judge(&name)
                .unwrap_or((TestStatus::Failed, Some("no result".into())));
            done.push(self.result(name, status, message, at));
        }
        self.next_unit(at);
    }

    fn result(
        &mut self,
        name: String,
        status: TestStatus,
        message: Option<String>,
        at: Duration,
    ) -> TestResult {
        self.reported += 1;
        let measured = at.saturating_sub(self.unit.started);
        // `duration=` is whatever the line says: at most a year.
        let pan = self
            .unit
            .pan_duration
            .map(|s| Duration::from_secs(s).min(super::MAX_REPORTED_TIME));
        TestResult {
            path: vec![name],
            status,
            duration: Some(pan.map_or(measured, |p| p.max(measured))),
            output: self.unit.output.text(),
            message,
        }
    }

    /// A line of a test's output (runltp's output section, or any line
    /// without runltp).
    fn output_line(&mut self, line: &[u8], at: Duration, done: &mut Vec<TestResult>) {
        if self.unit.in_summary {
            if let Some((key, n)) = summary_count(line) {
                self.unit.output.push_line(line);
                let s = self.unit.summary.get_or_insert_with(Summary::default);
                match key {
                    SummaryKey::Passed => s.passed = Some(n),
                    SummaryKey::Failed => s.failed = Some(n),
                    SummaryKey::Broken => s.broken = Some(n),
                    SummaryKey::Skipped => s.skipped = Some(n),
                    SummaryKey::Warnings => {
                        s.warnings = Some(n);
                        self.unit.in_summary = false;
                        // The last line of the block: without runltp, the
                        // test's end.
                        if self.block == Block::Outside {
                            self.close(at, done);
                        }
                    }
                }
                return;
            }
            self.unit.in_summary = false;
            let name = self.name();
            self.problem(format!(
                "{name}: its Summary block ends before `warnings N`"
            ));
        }
        self.unit.output.push_line(line);
        if trim(line) == b"Summary:" {
            self.unit.in_summary = true;
            self.unit.summary = Some(Summary::default());
            self.unit.ltp = true;
            return;
        }
        let Some(r) = parse_result(line) else {
            return;
        };
        let u = &mut self.unit;
        u.ltp = true;
        if let Some(name) = r.name
            && !u.named_by_file
            && (r.by_file || u.named.is_none())
        {
            u.named = Some(clip(&name, MAX_NAME));
            u.named_by_file = r.by_file;
        }
        let whole = || clip_message(&String::from_utf8_lossy(trim(line)));
        let c = &mut u.lines;
        match r.flag {
            Flag::Pass => c.passed = c.passed.saturating_add(1),
            Flag::Fail | Flag::Brok => {
                if r.flag == Flag::Fail {
                    c.failed = c.failed.saturating_add(1);
                } else {
                    c.broken = c.broken.saturating_add(1);
                }
                if u.first_bad.is_none() {
                    u.first_bad = Some(whole());
                }
            }
            Flag::Conf => {
                c.skipped = c.skipped.saturating_add(1);
                if u.first_conf.is_none() {
                    u.first_conf = Some(clip_message(&String::from_utf8_lossy(r.text)));
                }
            }
            Flag::Warn => {
                c.warnings = c.warnings.saturating_add(1);
                if u.first_warn.is_none() {
                    u.first_warn = Some(whole());
                }
            }
            Flag::Info => {}
        }
    }

    /// A line of runltp's block header or status section.
    fn pan_line(&mut self, line: &[u8]) {
        let line = trim(line);
        let text = String::from_utf8_lossy(line);
        if let Some(rest) = text.strip_prefix("tag=") {
            let tag = rest.split_whitespace().next().unwrap_or("");
            if !tag.is_empty() {
                self.unit.tag = Some(clip(tag, MAX_NAME));
            }
        } else if let Some(rest) = text.strip_prefix("initiation_status=") {
            let status = rest.trim_matches('"');
            if status != "ok" {
                self.unit.not_started = Some(status.to_string());
            }
        } else if text.starts_with("duration=") {
            let mut how = None;
            let mut id = None;
            for field in text.split_whitespace() {
                match field.split_once('=') {
                    Some(("duration", v)) => self.unit.pan_duration = v.parse().ok(),
                    Some(("termination_type", v)) => how = Some(clip(v, MAX_NAME)),
                    Some(("termination_id", v)) => id = v.parse().ok(),
                    _ => {}
                }
            }
            if let (Some(how), Some(id)) = (how, id) {
                self.unit.termination = Some((how, id));
            }
        }
    }
}

impl Parser for LtpParser {
    fn line(&mut self, line: &[u8], at: Duration, done: &mut Vec<TestResult>) {
        self.last_at = at;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = strip_ansi(line);
        let line: &[u8] = &line;
        match trim(line) {
            b"<<<test_start>>>" => {
                if self.block != Block::Outside {
                    let name = self.name();
                    self.problem(format!(
                        "runltp started another test before the end of {name}"
                    ));
                }
                // A test running outside runltp's blocks, or one whose
                // block never ended, is over.
                self.close(at, done);
                self.runltp = true;
                self.block = Block::Header;
                return;
            }
            b"<<<test_output>>>" if self.block == Block::Header => {
                self.block = Block::Output;
                return;
            }
            b"<<<test_end>>>" if self.block != Block::Outside => {
                self.close(at, done);
                self.block = Block::Outside;
                return;
            }
            _ => {}
        }
        // ltp-pan prints the marker right after the test's output, which
        // need not end with a newline.
        if let Some(before) = trim(line).strip_suffix(b"<<<execution_status>>>")
            && matches!(self.block, Block::Output | Block::Header)
        {
            if !before.is_empty() {
                self.output_line(before, at, done);
            }
            self.block = Block::Status;
            return;
        }
        match self.block {
            Block::Header | Block::Status => self.pan_line(line),
            Block::Output => self.output_line(line, at, done),
            // runltp's own lines between tests.
            Block::Outside if self.runltp => {}
            Block::Outside => self.output_line(line, at, done),
        }
    }

    fn finish(mut self: Box<Self>, ended: &Ended) -> (Vec<TestResult>, StreamVerdict) {
        let mut rest = Vec::new();
        let at = self.last_at;
        let exited = ended.status == TestStatus::Failed;
        let open = self.unit.ltp || self.unit.tag.is_some();
        let u = &self.unit;
        let c = u.lines;
        let no_results = [c.passed, c.failed, c.broken, c.skipped]
            .iter()
            .all(|&n| n == 0);
        if open && exited && self.reported > 0 && no_results && u.summary.is_none() {
            // Lines after the last test's Summary (the library's cleanup
            // runs after printing it): not a test of their own.
            if let Some(warn) = u.first_warn.clone() {
                self.problem(format!("after the last Summary: {warn}"));
            }
        } else if open {
            let name = self.name();
            let finished_block = self.block == Block::Status && self.unit.termination.is_some();
            let judged = if (exited && self.block == Block::Outside) || finished_block {
                self.judge(&name)
            } else {
                None
            };
            let r = match judged {
                Some((status, message)) => self.result(name, status, message, at),
                None => {
                    let cut = self.result(name, TestStatus::Failed, None, at);
                    ended.result(cut.path, cut.output, cut.duration)
                }
            };
            rest.push(r);
        }
        (
            rest,
            StreamVerdict {
                problems: self.problems,
            },
        )
    }
}

/// One LTP result line: its flag, the name it gives the test, its text.
struct ResultLine<'a> {
    flag: Flag,
    name: Option<String>,
    /// `name` is the test's own source file (not a TCID/TST_ID).
    by_file: bool,
    text: &'a [u8],
}

/// `getpid01.c:33: TPASS: text` (new C library), `mprotect01    1  TPASS  :
/// text` (old C library), `ping01 1 TPASS: text` (shell library).
fn parse_result(line: &[u8]) -> Option<ResultLine<'_>> {
    let line = trim(line);
    parse_new(line).or_else(|| parse_numbered(line))
}

/// `file.c:LINE: FLAG: text`.
fn parse_new(line: &[u8]) -> Option<ResultLine<'_>> {
    let colon = line.iter().position(|&b| b == b':')?;
    let (file, rest) = line.split_at(colon);
    if file.is_empty() || file.iter().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let rest = &rest[1..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let rest = rest[digits..].strip_prefix(b": ")?;
    let colon = rest.iter().position(|&b| b == b':')?;
    let flag = flag(&rest[..colon])?;
    let text = &rest[colon + 1..];
    if !(text.is_empty() || text.starts_with(b" ")) {
        return None;
    }
    let base = file.rsplit(|&b| b == b'/').next().unwrap_or(file);
    let base = String::from_utf8_lossy(base);
    let name = base
        .strip_suffix(".c")
        .filter(|_| !is_library(&base))
        .map(str::to_owned);
    Some(ResultLine {
        flag,
        by_file: name.is_some(),
        name,
        text: trim_start(text),
    })
}

/// `TCID  N  FLAG  :  text` (old C library) or `ID N FLAG: text` (shell).
fn parse_numbered(line: &[u8]) -> Option<ResultLine<'_>> {
    let (id, rest) = word(line)?;
    let (num, rest) = word(rest)?;
    if !num.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let (flag_word, rest) = word(rest)?;
    // `TPASS:` (shell) or `TPASS` then `:` (old C library).
    let (flag_word, text) = match flag_word.strip_suffix(b":") {
        Some(f) => (f, rest),
        None => (flag_word, trim_start(rest).strip_prefix(b":")?),
    };
    if matches!(
        flag_word,
        b"PASS" | b"FAIL" | b"BROK" | b"CONF" | b"WARN" | b"INFO"
    ) {
        return None; // only the new library ever printed these
    }
    Some(ResultLine {
        flag: flag(flag_word)?,
        name: Some(String::from_utf8_lossy(id).into_owned()),
        by_file: false,
        text: trim_start(text),
    })
}

/// The first whitespace-separated word of `s` and what follows it.
fn word(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = trim_start(s);
    let end = s
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(s.len());
    (end > 0).then(|| s.split_at(end))
}

fn flag(word: &[u8]) -> Option<Flag> {
    Some(match word {
        b"TPASS" | b"PASS" => Flag::Pass,
        b"TFAIL" | b"FAIL" => Flag::Fail,
        b"TBROK" | b"BROK" => Flag::Brok,
        b"TCONF" | b"CONF" | b"TRETR" => Flag::Conf,
        b"TWARN" | b"WARN" => Flag::Warn,
        b"TINFO" | b"INFO" | b"TDEBUG" => Flag::Info,
        _ => return None,
    })
}

fn is_library(file: &str) -> bool {
    LIBRARY_FILES.contains(&file)
        || file.starts_with("tse_")
        || file.starts_with("ujson_")
        || file.starts_with("lib")
}

enum SummaryKey {
    Passed,
    Failed,
    Broken,
    Skipped,
    Warnings,
}

/// `passed   1` … `warnings 0` of a `Summary:` block.
fn summary_count(line: &[u8]) -> Option<(SummaryKey, u64)> {
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let key = match words.next()? {
        b"passed" => SummaryKey::Passed,
        b"failed" => SummaryKey::Failed,
        b"broken" => SummaryKey::Broken,
        b"skipped" => SummaryKey::Skipped,
        b"warnings" => SummaryKey::Warnings,
        _ => return None,
    };
    let n = words.next()?;
    if words.next().is_some() || n.is_empty() || n.len() > 19 {
        return None;
    }
    let n = std::str::from_utf8(n).ok()?.parse().ok()?;
    Some((key, n))
}

/// `line` without ANSI escape sequences (`ESC [ … letter`): LTP colors the
/// flag when the output is a terminal or `LTP_COLORIZE_OUTPUT` is set.
fn strip_ansi(line: &[u8]) -> Cow<'_, [u8]> {
    if !line.contains(&0x1b) {
        return Cow::Borrowed(line);
    }
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] == 0x1b && line.get(i + 1) == Some(&b'[') {
            i += 2;
            while i < line.len() && !line[i].is_ascii_alphabetic() {
                i += 1;
            }
            i += 1; // the final letter
        } else {
            out.push(line[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

fn trim(s: &[u8]) -> &[u8] {
    trim_start(s.trim_ascii_end())
}

fn trim_start(s: &[u8]) -> &[u8] {
    s.trim_ascii_start()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsers::MAX_TEST_OUTPUT;
    use crate::parsers::test_support::{Parsed, feed, parse_ended, timed_out};
    use proptest::prelude::*;

    fn run(input: &str) -> Parsed {
        parse_ended(LtpParser::new(), input, &Ended::exited())
    }

    #[test]
    fn pan_duration_out_of_range_is_clamped() {
        let input = "<<<test_start>>>\ntag=big01 stime=1\n<<<test_output>>>\nbig01.c:1: TPASS: ok\n<<<execution_status>>>\ninitiation_status=\"ok\"\nduration=18446744073709551615 termination_type=exited termination_id=0 corefile=no\n<<<test_end>>>\n";
        let (results, _) = run(input);
        assert_eq!(results.len(), 1, "{results:#?}");
        assert_eq!(results[0].duration, Some(crate::parsers::MAX_REPORTED_TIME));
    }

    fn one(input: &str) -> (TestResult, StreamVerdict) {
        let (mut results, verdict) = run(input);
        assert_eq!(results.len(), 1, "{results:#?}");
        (results.remove(0), verdict)
    }

    const BANNER: &str = "\
tst_test.c:2048: TINFO: LTP version: 20260529
tst_test.c:2051: TINFO: Tested kernel: 6.18.44 #1 SMP x86_64
tst_test.c:1876: TINFO: Overall timeout per run is 0h 00m 30s
";

    fn summary(p: u64, f: u64, b: u64, s: u64, w: u64) -> String {
        format!(
            "\nSummary:\npassed   {p}\nfailed   {f}\nbroken   {b}\nskipped  {s}\nwarnings {w}\n"
        )
    }

    #[test]
    fn synthetic_new_library_pass_named_by_its_source_file() {
        let input = format!(
            "{BANNER}getpid01.c:33: TPASS: getpid() returns 1\ngetpid01.c:33: TPASS: getpid() returns 2\n{}",
            summary(2, 0, 0, 0, 0)
        );
        let (r, verdict) = one(&input);
        assert_eq!(verdict.problems, Vec::<String>::new());
        assert_eq!(r.path, ["getpid01"]);
        assert_eq!(r.status, TestStatus::Passed);
        assert_eq!(r.message, None);
        // Line i arrives at i ms: the test ran from the start to its
        // Summary's last line.
        assert_eq!(r.duration, Some(Duration::from_millis(11)));
        assert!(r.output.contains("getpid() returns 2"));
    }

    #[test]
    fn synthetic_failure_message_is_the_first_tfail_or_tbrok_line() {
        let input = format!(
            "{BANNER}foo01.c:10: TPASS: ok\nfoo01.c:11: TBROK: broken first\nfoo01.c:12: TFAIL: failed later\n{}",
            summary(1, 1, 1, 0, 0)
        );
        let (r, verdict) = one(&input);
        assert_eq!(verdict.problems, Vec::<String>::new());
        // A failure outranks a broken line; the message is the first bad line.
        assert_eq!(r.status, TestStatus::Failed);
        assert_eq!(
            r.message.as_deref(),
            Some("foo01.c:11: TBROK: broken first")
        );
    }

    #[test]
    fn synthetic_tbrok_is_an_error() {
        let input = format!(
            "{BANNER}foo01.c:11: TBROK: no device\n{}",
            summary(0, 0, 1, 0, 0)
        );
        let (r, _) = one(&input);
        assert_eq!(r.status, TestStatus::Error("broken".into()));
        assert_eq!(r.message.as_deref(), Some("foo01.c:11: TBROK: no device"));
    }

    #[test]
    fn synthetic_tconf_is_a_skip_with_its_text() {
        let input = format!(
            "{BANNER}foo01.c:11: TCONF: not on this arch\nfoo01.c:12: TCONF: nor this\n{}",
            summary(0, 0, 0, 2, 0)
        );
        let (r, _) = one(&input);
        assert_eq!(
            r.status,
            TestStatus::Skipped(Some("not on this arch".into()))
        );
        // With a pass, some TCONF don't make it a skip (LTP exits 0 then).
        let input = format!(
            "{BANNER}foo01.c:10: TPASS: ok\nfoo01.c:11: TCONF: not this variant\n{}",
            summary(1, 0, 0, 1, 0)
        );
        assert_eq!(one(&input).0.status, TestStatus::Passed);
    }

    #[test]
    fn synthetic_twarn_does_not_fail_a_passing_test_but_is_a_problem() {
        let input = format!(
            "{BANNER}foo01.c:10: TPASS: ok\nfoo01.c:50: TWARN: cleanup failed\n{}",
            summary(1, 0, 0, 0, 1)
        );
        let (r, verdict) = one(&input);
        assert_eq!(r.status, TestStatus::Passed);
        assert_eq!(
            r.message.as_deref(),
            Some("foo01.c:50: TWARN: cleanup failed")
        );
        assert_eq!(
            verdict.problems,
            ["foo01: 1 TWARN: foo01.c:50: TWARN: cleanup failed"]
        );
        // Only warnings: nothing says it passed.
        let input = format!("{BANNER}foo01.c:50: TWARN: odd\n{}", summary(0, 0, 0, 0, 1));
        let (r, verdict) = one(&input);
        assert_eq!(r.status, TestStatus::Failed);
        assert_eq!(r.message.as_deref(), Some("foo01.c:50: TWARN: odd"));
        assert_eq!(verdict.problems, Vec::<String>::new());
    }

    #[test]
    fn synthetic_summary_disagreeing_with_the_lines_is_a_problem() {
        let input = format!("{BANNER}foo01.c:10: TPASS: ok\n{}", summary(1, 2, 0, 0, 0));
        let (r, verdict) = one(&input);
        // The higher count wins: a failure counted but not printed.
        assert_eq!(r.status, TestStatus::Failed);
        assert_eq!(
            verdict.problems,
            ["foo01: its Summary says failed 2, 0 TFAIL lines were seen"]
        );
    }

    #[test]
    fn synthetic_old_summary_without_broken_and_old_flags() {
        // Before 20200930: `PASS:` without the T; before 20210121 no
        // `broken` line.
        let input = "tst_test.c:1250: INFO: Timeout per run is 0h 05m 00s\nabort01.c:59: PASS: abort() dumped core\nabort01.c:62: FAIL: no SIGIOT\n\nSummary:\npassed   1\nfailed   1\nskipped  0\nwarnings 0\n";
        let (r, verdict) = one(input);
        assert_eq!(verdict.problems, Vec::<String>::new());
        assert_eq!(r.path, ["abort01"]);
        assert_eq!(r.status, TestStatus::Failed);
        assert_eq!(r.message.as_deref(), Some("abort01.c:62: FAIL: no SIGIOT"));
    }

    #[test]
    fn synthetic_old_and_shell_libraries() {
        let (r, verdict) = one(
            "mprotect01    1  TPASS  :  expected failure - errno = 12\nmprotect01    2  TFAIL  :  mprotect01.c:100: got 0\n",
        );
        assert_eq!(verdict.problems, Vec::<String>::new());
        assert_eq!(r.path, ["mprotect01"]);
        assert_eq!(r.status, TestStatus::Failed);
        assert_eq!(
            r.message.as_deref(),
            Some("mprotect01    2  TFAIL  :  mprotect01.c:100: got 0")
        );
        let (r, _) = one("ping01 1 TINFO: starting\nping01 1 TCONF: no ping6\n");
        assert_eq!(r.path, ["ping01"]);
        assert_eq!(r.status, TestStatus::Skipped(Some("no ping6".into())));
        // The old library's TRETR (retired) is a skip.
        let (r, _) = one("foo    1  TRETR  :  retired\n");
        assert_eq!(r.status, TestStatus::Skipped(Some("retired".into())));
    }

    #[test]
    fn synthetic_names() {
        // The test's own file beats library files and a stale TCID.
        let (r, _) =
            one("tst_kconfig.c:90: TINFO: x\nsem02  0  TINFO  :  y\nsemop05.c:12: TPASS: z\n");
        assert_eq!(r.path, ["semop05"]);
        // Library lines only (a TCONF before the test starts): the
        // fallback name, or the binary's name when given.
        let input = b"tst_test.c:1415: TCONF: system doesn't support cacheflush()\n";
        let (r, _) = parse_ended(LtpParser::new(), input, &Ended::exited());
        assert_eq!(r[0].path, ["ltp"]);
        let (r, _) = parse_ended(LtpParser::named("cacheflush01"), input, &Ended::exited());
        assert_eq!(r[0].path, ["cacheflush01"]);
        assert_eq!(
            r[0].status,
            TestStatus::Skipped(Some("system doesn't support cacheflush()".into()))
        );
        // Paths and libs/ files: not the test's name.
        let (r, _) = one("../../include/tse_swap.c:9: TINFO: x\nswapon01.c:3: TPASS: y\n");
        assert_eq!(r.path, ["swapon01"]);
    }

    #[test]
    fn synthetic_colored_output() {
        let input = format!(
            "getpid01.c:33: \x1b[1;32mTPASS: \x1b[0mgetpid() returns 1\n{}",
            summary(1, 0, 0, 0, 0)
        );
        let (r, verdict) = one(&input);
        assert_eq!(verdict.problems, Vec::<String>::new());
        assert_eq!(r.status, TestStatus::Passed);
        assert!(
            r.output
                .contains("getpid01.c:33: TPASS: getpid() returns 1")
        );
    }

    #[test]
    fn synthetic_several_binaries_one_after_another() {
        let input = format!(
            "{BANNER}a01.c:1: TPASS: a\n{}{BANNER}b01.c:1: TFAIL: b\n{}c01    1  TPASS  :  c\n",
            summary(1, 0, 0, 0, 0),
            summary(0, 1, 0, 0, 0)
        );
        let (results, verdict) =
            parse_ended(LtpParser::named("a01"), input.as_bytes(), &Ended::exited());
        assert_eq!(verdict.problems, Vec::<String>::new());
        let got: Vec<_> = results
            .iter()
            .map(|r| (r.name(), r.status.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("a01".to_string(), TestStatus::Passed),
                ("b01".to_string(), TestStatus::Failed),
                ("c01".to_string(), TestStatus::Passed),
            ]
        );
        // Each one's output is its own.
        assert!(!results[1].output.contains("a01.c"));
        assert!(results[1].output.contains("LTP version"));
    }

    #[test]
    fn synthetic_warning_after_the_summary_is_not_a_test() {
        let input = format!(
            "{BANNER}a01.c:1: TPASS: a\n{}tst_tmpdir.c:343: TWARN: tst_rmdir: rmobj failed\n",
            summary(1, 0, 0, 0, 0)
        );
        let (results, verdict) = run(&input);
        assert_eq!(results.len(), 1);
        assert_eq!(
            verdict.problems,
            ["after the last Summary: tst_tmpdir.c:343: TWARN: tst_rmdir: rmobj failed"]
        );
    }

    #[test]
    fn synthetic_cut_off_mid_test() {
        let input = format!("{BANNER}foo01.c:10: TPASS: ok\nfoo01.c:11: TINFO: sleeping\n");
        let (results, _) = parse_ended(LtpParser::new(), input.as_bytes(), &timed_out());
        assert_eq!(results.len(), 1);
        let r = &results[0];
        assert_eq!(r.path, ["foo01"]);
        assert_eq!(r.status, TestStatus::Error("timed-out".into()));
        assert_eq!(r.message.as_deref(), Some("timed out after 5s"));
        assert!(r.output.contains("sleeping"));
        assert_eq!(r.duration, Some(Duration::from_millis(4)));
        // Exited by itself without a Summary: judged by its lines (the old
        // library never prints one) …
        assert_eq!(one(&input).0.status, TestStatus::Passed);
        // … and with no result lines at all it has no result.
        let (r, _) = one(BANNER);
        assert_eq!(r.status, TestStatus::Failed);
        assert_eq!(r.message.as_deref(), Some("no result"));
        // Nothing LTP-like: no test.
        assert!(run("hello\nworld\n").0.is_empty());
    }

    const PAN: &str = "\
INFO: creating /opt/ltp/results directory
<<<test_start>>>
tag=getpid01 stime=1593508345
cmdline=\"getpid01\"
contacts=\"\"
analysis=exit
<<<test_output>>>
tst_test.c:1876: TINFO: Overall timeout per run is 0h 00m 30s
getpid01.c:33: TPASS: getpid() returns 1

Summary:
passed   1
failed   0
broken   0
skipped  0
warnings 0
<<<execution_status>>>
initiation_status=\"ok\"
duration=3 termination_type=exited termination_id=0 corefile=no
cutime=0 cstime=1
<<<test_end>>>
<<<test_start>>>
tag=ioperm02 stime=1593508348
cmdline=\"ioperm02\"
contacts=\"\"
analysis=exit
<<<test_output>>>
ioperm02.c:69: TFAIL: Unexpected results for Invalid I/O address
Summary:
passed   0
failed   1
broken   0
skipped  0
warnings 0<<<execution_status>>>
initiation_status=\"ok\"
duration=0 termination_type=exited termination_id=1 corefile=no
cutime=0 cstime=0
<<<test_end>>>
<<<test_start>>>
tag=crash01 stime=1593508348
cmdline=\"crash01 -i 2\"
contacts=\"\"
analysis=exit
<<<test_output>>>
crash01.c:10: TPASS: first
<<<execution_status>>>
initiation_status=\"ok\"
duration=0 termination_type=signaled termination_id=11 corefile=yes
cutime=0 cstime=0
<<<test_end>>>
<<<test_start>>>
tag=script01 stime=1593508348
cmdline=\"script01.sh\"
contacts=\"\"
analysis=exit
<<<test_output>>>
no LTP lines here
<<<execution_status>>>
initiation_status=\"ok\"
duration=0 termination_type=exited termination_id=2 corefile=no
cutime=0 cstime=0
<<<test_end>>>
<<<test_start>>>
tag=missing01 stime=1593508348
cmdline=\"missing01\"
contacts=\"\"
analysis=exit
<<<test_output>>>
<<<execution_status>>>
initiation_status=\"pan(123): execvp of 'missing01' (tag missing01) failed.  errno:2  No such file or directory\"
duration=0 termination_type=exited termination_id=2 corefile=no
cutime=0 cstime=0
<<<test_end>>>
INFO: ltp-pan reported some tests FAIL
";

    #[test]
    fn synthetic_runltp_blocks() {
        let (results, verdict) = run(PAN);
        assert_eq!(verdict.problems, Vec::<String>::new());
        let got: Vec<_> = results
            .iter()
            .map(|r| (r.name(), r.status.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("getpid01".to_string(), TestStatus::Passed),
                ("ioperm02".to_string(), TestStatus::Failed),
                ("crash01".to_string(), TestStatus::Error("crashed".into())),
                ("script01".to_string(), TestStatus::Failed),
                ("missing01".to_string(), TestStatus::Failed),
            ]
        );
        // duration=3 beats the lines' arrival times (ltp-pan may print the
        // output only at the end).
        assert_eq!(results[0].duration, Some(Duration::from_secs(3)));
        assert!(!results[0].output.contains("tag="));
        assert!(results[0].output.contains("getpid() returns 1"));
        assert_eq!(
            results[1].message.as_deref(),
            Some("ioperm02.c:69: TFAIL: Unexpected results for Invalid I/O address")
        );
        assert!(results[1].output.contains("warnings 0"));
        assert_eq!(
            results[2].message.as_deref(),
            Some("termination_type=signaled termination_id=11")
        );
        assert_eq!(
            results[3].message.as_deref(),
            Some("termination_type=exited termination_id=2")
        );
        assert!(
            results[4]
                .message
                .as_deref()
                .unwrap()
                .starts_with("runltp could not start it: pan(123): execvp")
        );
    }

    #[test]
    fn synthetic_runltp_exit_codes() {
        let block = |output: &str, id: i64| {
            format!(
                "<<<test_start>>>\ntag=t01 stime=1\n<<<test_output>>>\n{output}<<<execution_status>>>\ninitiation_status=\"ok\"\nduration=0 termination_type=exited termination_id={id} corefile=no\n<<<test_end>>>\n"
            )
        };
        let status = |output: &str, id| one(&block(output, id)).0.status;
        assert_eq!(status("", 0), TestStatus::Passed);
        assert_eq!(
            status("", 32),
            TestStatus::Skipped(Some("termination_type=exited termination_id=32".into()))
        );
        assert_eq!(status("t01.c:1: TPASS: ok\n", 0), TestStatus::Passed);
        // TWARN's and TCONF's bits don't fail a test whose lines passed …
        assert_eq!(
            status("t01.c:1: TPASS: ok\nt01.c:2: TWARN: w\n", 4),
            TestStatus::Passed
        );
        // … others do.
        assert_eq!(status("t01.c:1: TPASS: ok\n", 1), TestStatus::Failed);
        assert_eq!(status("t01.c:1: TPASS: ok\n", 127), TestStatus::Failed);
    }

    #[test]
    fn synthetic_runltp_cut_off_mid_test() {
        let input = "<<<test_start>>>\ntag=a01 stime=1\n<<<test_output>>>\na01.c:1: TPASS: ok\n<<<execution_status>>>\ninitiation_status=\"ok\"\nduration=0 termination_type=exited termination_id=0 corefile=no\n<<<test_end>>>\n<<<test_start>>>\ntag=hang01 stime=2\ncmdline=\"hang01\"\n<<<test_output>>>\nhang01.c:5: TINFO: waiting\n";
        let (results, _) = parse_ended(LtpParser::new(), input.as_bytes(), &timed_out());
        assert_eq!(results.len(), 2);
        assert_eq!(results[1].path, ["hang01"]);
        assert_eq!(results[1].status, TestStatus::Error("timed-out".into()));
        assert!(results[1].output.contains("waiting"));
        // Cut off before its output began: still named by its tag.
        let input = "<<<test_start>>>\ntag=hang01 stime=2\n";
        let (results, _) = parse_ended(LtpParser::new(), input.as_bytes(), &timed_out());
        assert_eq!(results[0].path, ["hang01"]);
        // A block that never ended before the next: a problem, and judged.
        let input = "<<<test_start>>>\ntag=a01 stime=1\n<<<test_output>>>\na01.c:1: TPASS: ok\n<<<test_start>>>\ntag=b01 stime=1\n<<<test_output>>>\n<<<execution_status>>>\nduration=0 termination_type=exited termination_id=0 corefile=no\n<<<test_end>>>\n";
        let (results, verdict) = run(input);
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].status, TestStatus::Passed);
        assert_eq!(
            verdict.problems,
            ["runltp started another test before the end of a01"]
        );
    }

    #[test]
    fn synthetic_garbage_and_huge_lines() {
        let mut input = Vec::new();
        input.extend_from_slice(b"\xff\xfe\0 garbage\r\n");
        input.extend_from_slice(&vec![b'x'; 1 << 20]);
        input.extend_from_slice(b"\n\xff01.c:1: TPASS: \xfe ok\r\n");
        input.extend_from_slice(b"a.c:99999999999999999999999: TPASS: huge line number\n");
        input.extend_from_slice(b"\x1b[\x1b[1;3");
        input.extend_from_slice(b"\nSummary:\npassed 99999999999999999999999\nfailed 18446744073709551615\nwarnings 0\n");
        let (results, verdict) = parse_ended(LtpParser::new(), &input, &Ended::exited());
        assert_eq!(results.len(), 1, "{results:#?}");
        assert_eq!(results[0].path, ["\u{fffd}01"]);
        // The out-of-range count ends the Summary block: judged by its lines.
        assert_eq!(results[0].status, TestStatus::Passed);
        assert!(results[0].output.len() <= MAX_TEST_OUTPUT + 200);
        assert!(!verdict.problems.is_empty());
    }

    proptest! {
        #[test]
        fn never_panics_and_output_is_bounded(
            lines in proptest::collection::vec(
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..40),
                    (any::<u8>(), 0..70_000usize).prop_map(|(b, n)| vec![b; n]),
                    "[a-z_]{1,6}[0-9]{0,2}\\.c:[0-9]{1,4}: T?(PASS|FAIL|BROK|CONF|WARN|INFO): [a-z ]{0,10}"
                        .prop_map(String::into_bytes),
                    "[a-z]{1,6}[0-9]{0,2} +[0-9]{1,3} +T(PASS|FAIL|BROK|CONF|WARN|INFO|RETR) +: +[a-z ]{0,10}"
                        .prop_map(String::into_bytes),
                    "(Summary:|(passed|failed|broken|skipped|warnings) +[0-9]{1,20})"
                        .prop_map(String::into_bytes),
                    "<<<(test_start|test_output|execution_status|test_end)>>>"
                        .prop_map(String::into_bytes),
                    "(tag=[a-z0-9]{0,5} stime=1|duration=[0-9]{1,25} termination_type=[a-z]{0,8} termination_id=-?[0-9]{1,25} corefile=no|initiation_status=\"[a-z]{0,3}\")"
                        .prop_map(String::into_bytes),
                ],
                0..30,
            ),
            cut in any::<bool>(),
        ) {
            let ended = if cut { timed_out() } else { Ended::exited() };
            let (done, verdict) = feed(LtpParser::new(), lines.iter().map(Vec::as_slice), &ended);
            for r in &done {
                prop_assert!(r.output.len() <= MAX_TEST_OUTPUT + 200);
                prop_assert!(r.path.iter().all(|n| n.len() <= MAX_NAME + 4));
                prop_assert!(r.message.as_ref().is_none_or(|m| m.len() <= crate::text::MAX_MESSAGE + 4));
            }
            prop_assert!(verdict.problems.len() <= MAX_PROBLEMS);
        }
    }

    /// Parses the real fixture `name` (tests/fixtures/real/ltp) and compares
    /// every result with its `name.expected.tsv` (`name<TAB>status`, from
    /// LTP's own report). The binary's name is given the way a batch
    /// running that one binary gives it.
    fn check_real(name: &str) -> Parsed {
        let out = crate::parsers::real_fixtures::read("ltp", &format!("{name}.out"));
        let (results, verdict) = parse_ended(LtpParser::named(name), &out, &Ended::exited());
        crate::parsers::real_fixtures::assert_expected("ltp", name, "", &results);
        (results, verdict)
    }

    #[test]
    fn real_fixtures_match_ltp_own_report() {
        for name in [
            "cacheflush01",
            "fmtmsg01",
            "getpid01",
            "getppid01",
            "getppid02",
            "ioperm02",
            "iopl01",
            "kcmp01",
            "mprotect01",
            "semop05",
            "test04",
            "test14",
            "test_brk_fail",
            "test_runtime02",
            "tst_res_flags",
        ] {
            check_real(name);
        }
    }

    #[test]
    fn real_fixture_details() {
        let no_problems = [
            "getpid01",
            "getppid02",
            "ioperm02",
            "mprotect01",
            "semop05",
            "test04",
            "test_runtime02",
        ];
        for name in no_problems {
            assert_eq!(check_real(name).1.problems, Vec::<String>::new(), "{name}");
        }
        // Names from the lines, without the binary's name: the source file,
        // the old library's TCID.
        let read = |name: &str| crate::parsers::real_fixtures::read("ltp", &format!("{name}.out"));
        let (r, _) = parse_ended(LtpParser::new(), read("ioperm02"), &Ended::exited());
        assert_eq!(r[0].path, ["ioperm02"]);
        let (r, _) = parse_ended(LtpParser::new(), read("semop05"), &Ended::exited());
        assert_eq!(r[0].path, ["sem02"]);

        let (r, _) = check_real("getpid01");
        assert!(r[0].duration.is_some());
        let (r, _) = check_real("ioperm02");
        assert_eq!(
            r[0].message.as_deref(),
            Some(
                "ioperm02.c:69: TFAIL: Unexpected results for Invalid I/O address ; returned -1 (expected -1), errno 38 (expected errno 22): ENOSYS (38)"
            )
        );
        let (r, v) = check_real("iopl01");
        assert_eq!(
            r[0].message.as_deref(),
            Some("iopl01.c:34: TFAIL: iopl() failed for level 0, errno=38 : ENOSYS: ENOSYS (38)")
        );
        // Failed already: its TWARN is no extra problem.
        assert_eq!(v.problems, Vec::<String>::new());
        let (r, v) = check_real("test14");
        assert_eq!(
            r[0].message.as_deref(),
            Some("test14.c:14: TWARN: TBROK in cleanup")
        );
        assert_eq!(
            v.problems,
            ["test14: 5 TWARN: test14.c:14: TWARN: TBROK in cleanup"]
        );
        let (r, _) = check_real("test_runtime02");
        assert_eq!(
            r[0].message.as_deref(),
            Some("tst_test.c:1950: TBROK: Test killed! (timeout?)")
        );
        assert!(r[0].output.contains("Test timeouted, sending SIGKILL!"));
        let (r, _) = check_real("cacheflush01");
        assert_eq!(
            r[0].status,
            TestStatus::Skipped(Some("system doesn't support cacheflush()".into()))
        );
        let (r, v) = check_real("tst_res_flags");
        assert_eq!(
            r[0].message.as_deref(),
            Some("tst_res_flags.c:38: TFAIL: TFAIL message")
        );
        assert_eq!(v.problems, Vec::<String>::new());
    }
}
