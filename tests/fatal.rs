//! Fatal patterns: a line of output matching one stops the batch at once,
//! status `aborted`, with the line and what came before it in the report.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Kind, Warden};

const PANIC: &str = "for i in 1 2 3 4 5 6; do echo console line $i; done; \
     echo 'Kernel panic - not syncing: Fatal exception in interrupt'; sleep 1000";

both_containments! {
    fn kernel_panic_stops_the_batch_within_a_second(w) {
        let r = w
            .defaults("fatal-patterns = [\"Kernel panic - not syncing\", \"BUG: KASAN\"]\ngrace = \"1s\"")
            .shell("vm", PANIC, "timeout = \"45m\"")
            .shell("fine", "echo all good", "")
            .run();
        r.assert_code(1);
        // Well before the 45m timeout: the match, SIGTERM, done.
        assert!(r.elapsed < Duration::from_secs(5), "{}", r.context);
        let case = r.case("vm");
        case.assert_status(Kind::Error, Some("aborted"));
        assert!(
            case.message().starts_with(
                "fatal pattern `Kernel panic - not syncing` matched: Kernel panic - not syncing: Fatal exception in interrupt; sent SIGTERM to "
            ),
            "{case:#?}"
        );
        // The matching line and the lines before it.
        let err = case.err();
        assert!(err.contains("console line 1\n") && err.contains("console line 6\n"), "{case:#?}");
        assert!(err.ends_with("Kernel panic - not syncing: Fatal exception in interrupt"), "{case:#?}");
        r.case("fine").assert_status(Kind::Success, None);
        assert!(r.summary_line().contains("Aborted: 1"), "{}", r.context);
        r.assert_stdout_contains("| Kernel panic - not syncing: Fatal exception in interrupt");
    }
}

#[test]
fn an_empty_list_turns_the_defaults_off_and_batches_can_add_their_own() {
    let r = Warden::pgroup()
        .defaults("fatal-patterns = [\"Kernel panic\"]")
        .shell(
            "opted-out",
            "echo 'Kernel panic'; exit 0",
            "fatal-patterns = []",
        )
        .shell(
            "own",
            "echo 'ok so far'; echo 'FATAL: db gone'; sleep 1000",
            "fatal-patterns = [\"^FATAL:\"]\ntimeout = \"1m\"\ngrace = \"500ms\"",
        )
        .run();
    r.assert_code(1);
    r.case("opted-out").assert_status(Kind::Success, None);
    let own = r.case("own");
    own.assert_status(Kind::Error, Some("aborted"));
    assert!(
        own.message().contains("matched: FATAL: db gone"),
        "{own:#?}"
    );
    assert!(r.elapsed < Duration::from_secs(10), "{}", r.context);
}

#[test]
fn the_line_before_exit_still_counts() {
    // The batch prints the match and exits at once: still aborted.
    let r = Warden::pgroup()
        .shell(
            "quick",
            "echo 'BUG: KASAN: use-after-free'; exit 0",
            "fatal-patterns = [\"BUG: KASAN\"]",
        )
        .run();
    r.assert_code(1);
    r.case("quick").assert_status(Kind::Error, Some("aborted"));
}

#[test]
fn invalid_regex_is_a_config_error() {
    let r = Warden::pgroup()
        .shell("x", "touch ran", "fatal-patterns = [\"ok\", \"(unclosed\"]")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("key `fatal-patterns`: invalid regex \"(unclosed\": unclosed group");
    r.assert_stderr_contains("warden.toml:");
    assert!(!r.path("ran").exists());
}
