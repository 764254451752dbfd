//! Output through the pipe: with `--verbose` (and, later, output parsing)
//! warden reads every batch's output itself instead of handing the batch
//! its log file. The capture cases of supervise.rs and output.rs, again on
//! that path: nothing lost, no hang on a pipe held by a leftover, an
//! unfinished last line echoed.

#[macro_use]
mod common;

use std::time::Duration;

use common::Kind;

fn pids(r: &common::Run, file: &str) -> Vec<String> {
    std::fs::read_to_string(r.path(file))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

both_containments! {
    fn held_pipe_does_not_hang_the_run(w) {
        let pid_file = w.path_str("bg.pid");
        let r = w
            .fixture("bg", "leak_bg.sh", &[&pid_file], "drain = \"300ms\"\ngrace = \"1s\"")
            .arg("--verbose")
            .run();
        r.assert_code(0);
        assert!(r.elapsed < Duration::from_secs(10), "{}", r.context);
        let pid = &pids(&r, "bg.pid")[0];
        let warnings = r.warn_lines("bg");
        assert_eq!(warnings.len(), 1, "{}", r.context);
        assert!(
            warnings[0].contains(&format!("left 1 process running 300ms after exit: {pid} (sleep 1000)")),
            "{}",
            r.context
        );
        assert_eq!(r.log_text("bg"), "leak_bg: main exiting\n");
        r.assert_stdout_contains("[bg] leak_bg: main exiting\n");
        r.assert_pids_gone("bg.pid");
    }
}

both_containments! {
    fn lines_written_after_exit_are_read_to_the_end(w) {
        let r = w
            .fixture("trickle", "trickle.sh", &[], "drain = \"5s\"")
            .arg("--verbose")
            .run();
        r.assert_code(0);
        assert!(r.warn_lines("trickle").is_empty(), "{}", r.context);
        let log = r.log_text("trickle");
        for i in 0..50 {
            assert!(log.contains(&format!("trickle line {i}\n")), "{}", r.context);
        }
        assert!(log.ends_with("trickle: child done\n"), "{}", r.context);
        r.assert_stdout_contains("[trickle] trickle: child done\n");
    }
}

both_containments! {
    fn binary_output_is_kept_byte_for_byte(w) {
        let r = w.fixture("bin", "binary_output.py", &[], "").arg("--verbose").run();
        r.assert_code(0);
        let log = r.log("bin");
        assert!(log.starts_with(b"binary: first line\n"), "{}", r.context);
        assert!(log.ends_with(b"no final newline"), "{}", r.context);
        assert!(log.windows(3).any(|w| w == b"a\0b"), "NUL bytes lost\n{}", r.context);
        // The unfinished last line is still echoed, on a line of its own.
        r.assert_stdout_contains("[bin] no final newline\n");
        r.case("bin").assert_status(Kind::Success, None);
    }
}

#[test]
fn large_output_through_the_pipe_is_complete() {
    // 64 MiB of numbered lines: every byte reaches the log.
    let r = common::Warden::pgroup()
        .shell("big", "seq 1 9000000 | head -c 67108864; printf end", "")
        .arg("--verbose")
        .watchdog(Duration::from_secs(60))
        .run();
    r.assert_code(0);
    let log = r.log("big");
    assert_eq!(log.len(), 67_108_864 + 3, "{}", r.context.len());
    assert!(log.ends_with(b"end"));
}
