//! What warden keeps and reports of a batch's output: logs byte for byte,
//! JUnit (valid, incremental, tail of the log), `--verbose`, the terminal
//! summary, and the GitHub step summary.

#[macro_use]
mod common;

use std::fs;
use std::time::Duration;

use common::{Kind, Warden, parse_junit, wait_until};

/// What `binary_output.py` writes.
const BINARY: &[u8] = b"binary: first line\n\
invalid utf8: \xff\xfe \xc3\x28 end\n\
nul bytes: a\x00b\x00c\n\
xml: </system-out> & <b> ]]>\n\
no final newline";

both_containments! {
    fn binary_output_is_kept_byte_for_byte(w) {
        let r = w.fixture("bin", "binary_output.py", &[], "").run();
        r.assert_code(0);
        assert_eq!(r.log("bin"), BINARY, "{}", r.context);
        // The JUnit stays valid XML and carries the text, made safe.
        let case = r.case("bin");
        case.assert_status(Kind::Success, None);
        let out = case.out();
        assert!(out.starts_with("binary: first line\n"), "{out:?}");
        assert!(out.contains("invalid utf8: \u{FFFD}\u{FFFD} \u{FFFD}( end\n"), "{out:?}");
        assert!(out.contains("nul bytes: a\u{FFFD}b\u{FFFD}c\n"), "{out:?}");
        assert!(out.contains("xml: </system-out> & <b> ]]>\n"), "{out:?}");
        assert!(out.ends_with("no final newline"), "{out:?}");
        assert!(!out.contains('\0'), "{out:?}");
    }
}

#[test]
fn verbose_echoes_prefixed_lines() {
    let r = Warden::pgroup()
        .shell("talk", "echo one; echo two >&2; printf 'three'", "")
        .arg("--verbose")
        .run();
    r.assert_code(0);
    let echoed: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("[talk] "))
        .collect();
    assert_eq!(
        echoed,
        ["[talk] one", "[talk] two", "[talk] three"],
        "{}",
        r.context
    );
    r.assert_stdout_contains("process group + environment cookie");
    // The log itself is untouched by the echo.
    assert_eq!(r.log_text("talk"), "one\ntwo\nthree");
}

#[test]
fn without_verbose_batch_output_stays_out_of_the_terminal() {
    let r = Warden::pgroup()
        .shell("quiet", "echo secret-output-line", "")
        .run();
    r.assert_code(0);
    assert!(!r.stdout.contains("secret-output-line"), "{}", r.context);
    assert!(!r.stderr.contains("secret-output-line"), "{}", r.context);
    assert_eq!(r.log_text("quiet"), "secret-output-line\n");
}

#[test]
fn junit_system_out_holds_the_last_200_lines() {
    let r = Warden::pgroup()
        .shell(
            "long",
            "i=1; while [ $i -le 300 ]; do echo \"line $i\"; i=$((i+1)); done; exit 1",
            "",
        )
        .run();
    r.assert_code(1);
    let want: String = (101..=300).map(|i| format!("line {i}\n")).collect();
    let case = r.case("long");
    case.assert_status(Kind::Failure, Some("failed"));
    // A note saying where the full log is, then exactly the last 200 lines.
    let (note, tail) = case.out().split_once('\n').expect("note line");
    let full = r.artifacts().join("logs/long.log");
    assert_eq!(
        note,
        format!("[warden: last lines only; full log: {}]", full.display())
    );
    assert_eq!(tail, want);
    assert_eq!(r.log_text("long").lines().count(), 300);
}

#[test]
fn junit_is_valid_from_the_start_and_rewritten_as_batches_finish() {
    let w = Warden::pgroup().shell("quick", "echo quick", "").shell(
        "slow",
        "sleep 2; echo slow-done",
        "",
    );
    let junit = w.path("warden-artifacts/junit.xml");
    let slow_log = w.path("warden-artifacts/logs/slow.log");
    let running = w.spawn();
    // Every read must see a complete document; soon it lists `quick` while
    // `slow` is still running.
    let mut seen_quick_only = false;
    let ok = wait_until(Duration::from_secs(10), || {
        let Ok(xml) = fs::read_to_string(&junit) else {
            return false;
        };
        let cases =
            parse_junit(&xml).unwrap_or_else(|e| panic!("invalid JUnit mid-run: {e}\n{xml}"));
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        if names == ["quick"] {
            let slow = fs::read_to_string(&slow_log).unwrap_or_default();
            assert!(!slow.contains("slow-done"), "slow already done");
            seen_quick_only = true;
        }
        seen_quick_only
    });
    let r = running.wait();
    assert!(
        ok,
        "never saw a JUnit with just `quick` while `slow` ran\n{}",
        r.context
    );
    r.assert_code(0);
    let names: Vec<String> = r.junit().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["quick", "slow"]);
}

#[test]
fn junit_testsuite_counts_and_classnames() {
    let r = Warden::pgroup()
        .defaults("timeout = \"500ms\"\ngrace = \"500ms\"")
        .fixture("ok", "pass.sh", &[], "kind = \"ut\"")
        .fixture("f", "fail3.sh", &[], "kind = \"fv\"")
        .fixture("h", "hang.sh", &[], "")
        .run();
    r.assert_code(1);
    let xml = fs::read_to_string(r.artifacts().join("junit.xml")).unwrap();
    assert!(
        xml.contains(r#"<testsuite name="warden" tests="3" skipped="0" errors="1" failures="1""#),
        "{xml}"
    );
    let classes: Vec<(String, String)> = r
        .junit()
        .into_iter()
        .map(|c| (c.name, c.classname))
        .collect();
    let mut classes = classes;
    classes.sort();
    assert_eq!(
        classes,
        [
            ("f".to_string(), "fv".to_string()),
            ("h".to_string(), "warden".to_string()),
            ("ok".to_string(), "ut".to_string())
        ]
    );
}

#[test]
fn text_summary_lists_what_needs_a_look() {
    let r = Warden::pgroup()
        .fixture("ok", "pass.sh", &[], "")
        .fixture("f", "fail3.sh", &[], "")
        .run();
    r.assert_code(1);
    let summary = r
        .stdout
        .split_once("\nSuccess: ")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no summary\n{}", r.context));
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines[0], "1/2, Failed: 1, Timed out: 0, Leaked: 0");
    // No history yet: the actual makespan alone.
    assert!(
        lines[1].starts_with("Makespan: ") && !lines[1].contains('('),
        "{}",
        r.context
    );
    assert!(
        lines[2].starts_with("  failed f (") && lines[2].ends_with("): exit code 3"),
        "{}",
        r.context
    );
    // What it used: without a cgroup, from rusage.
    assert!(
        lines[3].starts_with("    used: peak ")
            && lines[3].ends_with(" (partial: the largest process's peak)"),
        "{}",
        r.context
    );
    let log = r.artifacts().join("logs/f.log");
    assert_eq!(lines[4], format!("    log: {}", log.display()));
    // `ok` passed: not listed, only named as the slowest that passed.
    assert_eq!(lines[5], "Slowest batches that passed:", "{}", r.context);
    assert!(
        lines[6].starts_with("  ok (") && lines[6].contains("): used: peak "),
        "{}",
        r.context
    );
    assert!(
        lines[7].starts_with("History: run ")
            && lines[7].ends_with(" recorded in sqlite:.warden/history.db"),
        "{}",
        r.context
    );
    let junit = r.artifacts().join("junit.xml");
    assert_eq!(lines[8], format!("JUnit: {}", junit.display()));
    assert!(!summary.contains("passed ok"), "{}", r.context);
}

#[test]
fn github_step_summary_gets_markdown_appended() {
    let w = Warden::pgroup();
    let summary = w.path("step-summary.md");
    fs::write(&summary, "previous content\n").unwrap();
    let summary_str = summary.to_str().unwrap().to_string();
    let r = w
        .fixture("ok", "pass.sh", &[], "")
        .fixture("f", "fail3.sh", &[], "")
        .shell("pipe|name", "true", "")
        .env("GITHUB_STEP_SUMMARY", &summary_str)
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("invalid batch name \"pipe|name\"");
    assert_eq!(fs::read_to_string(&summary).unwrap(), "previous content\n");

    let w = Warden::pgroup();
    let summary = w.path("step-summary.md");
    fs::write(&summary, "previous content\n").unwrap();
    let summary_str = summary.to_str().unwrap().to_string();
    let bg = w.path_str("bg.pid");
    let r = w
        .fixture("ok", "pass.sh", &[], "")
        .fixture("f", "fail3.sh", &[], "")
        .shell(
            "leaky",
            // The child's host pid ($! is the PID namespace's number).
            &format!(
                "sh -c 'sleep 1000 | cat' & read -r me _ < /proc/self/stat; \
                 read -r k < /proc/$me/task/$me/children; echo $k > {bg}"
            ),
            "drain = \"300ms\"",
        )
        .env("GITHUB_STEP_SUMMARY", &summary_str)
        .run();
    r.assert_code(1);
    let md = fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("previous content\n### warden\n"), "{md}");
    assert!(
        md.contains("\nSuccess: 2/3, Failed: 1, Timed out: 0, Leaked: 0<br>\nMakespan: "),
        "{md}"
    );
    assert!(
        md.contains(
            "| batch | status | duration | reason | log |\n| --- | --- | --- | --- | --- |\n"
        ),
        "{md}"
    );
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| ---"))
        .collect();
    // Header, f, leaky: `ok` passed cleanly and is not listed, only named
    // (a second table) as the slowest that passed.
    assert_eq!(rows.len(), 5, "{md}");
    assert_eq!(
        rows[3], "| slowest batch that passed | duration | used |",
        "{md}"
    );
    assert!(rows[4].starts_with("| ok | "), "{md}");
    assert!(rows[1].starts_with("| f | failed | "), "{md}");
    assert!(rows[1].contains(" | exit code 3<br>used: peak "), "{md}");
    assert!(rows[2].starts_with("| leaky | passed | "), "{md}");
    // A leaked command line with a pipe in it is escaped: still 5 cells.
    assert!(rows[2].contains("sleep 1000 \\| cat"), "{md}");
    let unescaped_pipes = rows[2].replace("\\|", "").matches('|').count();
    assert_eq!(unescaped_pipes, 6, "{md}");

    // A second run appends again.
    let again = Warden::pgroup()
        .fixture("ok", "pass.sh", &[], "")
        .env("GITHUB_STEP_SUMMARY", &summary_str)
        .run();
    again.assert_code(0);
    let md = fs::read_to_string(&summary).unwrap();
    assert_eq!(md.matches("### warden").count(), 2, "{md}");
    let last = md.rsplit_once("### warden\n").unwrap().1;
    assert!(
        last.starts_with("\nSuccess: 1/1, Failed: 0, Timed out: 0, Leaked: 0<br>\nMakespan: ")
            && last.contains("\n\nHistory: run ")
            && last.ends_with(" recorded in sqlite:.warden/history.db\n\n"),
        "{md:?}"
    );
}

#[test]
fn closed_stdout_keeps_exit_code_and_step_summary() {
    let w = Warden::pgroup();
    let summary = w.path_str("step-summary.md");
    let r = w
        .fixture("f", "fail3.sh", &[], "")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .broken_stdout()
        .run();
    // The run itself is unaffected by nobody reading the terminal output.
    assert_eq!(r.case("f").ty.as_deref(), Some("failed"), "{}", r.context);
    r.assert_code(1);
    let md = fs::read_to_string(r.path("step-summary.md")).unwrap_or_default();
    assert!(
        md.contains("Success: 0/1, Failed: 1"),
        "step summary: {md:?}\n{}",
        r.context
    );
}

both_containments! {
    fn closed_stdout_with_verbose_still_runs_the_batches(w) {
        let r = w
            .fixture("f", "fail3.sh", &[], "")
            .arg("--verbose")
            .broken_stdout()
            .run();
        assert!(
            r.artifacts().join("logs/f.log").exists(),
            "the batch never ran\n{}",
            r.context
        );
        assert_eq!(r.log_text("f"), "fail3: about to fail\nfail3: on stderr\n");
        r.assert_code(1);
    }
}
