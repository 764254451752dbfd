//! A bad config is rejected before anything runs: exit code 2, and one
//! message `warden.toml:<line>:<column>: ...` naming the offending key.

#[macro_use]
mod common;

use common::{Warden, q};
use regex::Regex;

/// A valid batch that would leave a file behind if it ever ran.
fn toucher(w: &Warden) -> String {
    format!(
        "[[batch]]\nname = \"toucher\"\nshell = {}\n",
        q(&format!("touch {}", w.path_str("ran")))
    )
}

/// Runs `warden run` and `warden check` on `config` (with `{toucher}`
/// replaced by the toucher batch) and asserts both reject it at
/// `line:column` with a message containing every one of `needles`.
#[track_caller]
fn assert_rejected(config: &str, line: usize, column: usize, needles: &[&str]) {
    let re = Regex::new(r"(?m)^warden: warden\.toml:(\d+):(\d+): (.+)$").unwrap();
    for check in [false, true] {
        let w = Warden::pgroup();
        let text = config.replace("{toucher}", &toucher(&w));
        let w = w.config(&text);
        let w = if check { w.check() } else { w };
        let r = w.run();
        r.assert_code(2);
        let caps = re
            .captures(&r.stderr)
            .unwrap_or_else(|| panic!("no `warden.toml:line:col:` message\n{}", r.context));
        let message = &caps[3];
        assert_eq!(
            (
                caps[1].parse::<usize>().unwrap(),
                caps[2].parse::<usize>().unwrap()
            ),
            (line, column),
            "location of {message:?}\n{}",
            r.context
        );
        for needle in needles {
            assert!(
                message.contains(needle),
                "message {message:?} lacks {needle:?}\n{}",
                r.context
            );
        }
        assert!(
            r.stdout.is_empty(),
            "nothing printed on stdout\n{}",
            r.context
        );
        assert!(!r.path("ran").exists(), "a batch ran\n{}", r.context);
        assert!(
            !r.artifacts().exists(),
            "artifacts were created\n{}",
            r.context
        );
    }
}

#[test]
fn unknown_key_at_top_level() {
    assert_rejected(
        "max-parallel = 2\n{toucher}",
        1,
        1,
        &["unknown key `max-parallel`", "top level"],
    );
}

#[test]
fn unknown_key_in_run() {
    assert_rejected(
        "{toucher}\n[run]\nmax_parallel = 2\n",
        6,
        1,
        &["unknown key `max_parallel`", "[run]"],
    );
}

#[test]
fn unknown_key_in_defaults() {
    assert_rejected(
        "[defaults]\ntimeout = \"1s\"\ntimout = \"2s\"\n\n{toucher}",
        3,
        1,
        &["unknown key `timout`", "[defaults]"],
    );
}

#[test]
fn unknown_key_in_batch() {
    assert_rejected(
        "{toucher}\n[[batch]]\nname = \"b\"\nshell = \"true\"\ntimeot = \"1s\"\n",
        8,
        1,
        &["unknown key `timeot`", "[[batch]]"],
    );
}

#[test]
fn duplicate_batch_names() {
    assert_rejected(
        "{toucher}\n[[batch]]\nname = \"toucher\"\nshell = \"true\"\n",
        6,
        8,
        &["`name`", "duplicate batch name \"toucher\"", "line 2"],
    );
}

#[test]
fn duplicate_key_in_a_batch() {
    assert_rejected(
        "{toucher}\n[[batch]]\nname = \"b\"\nname = \"c\"\nshell = \"true\"\n",
        7,
        1,
        &["duplicate key `name`"],
    );
}

#[test]
fn empty_command() {
    assert_rejected(
        "{toucher}\n[[batch]]\nname = \"b\"\ncommand = []\n",
        7,
        11,
        &["`command`", "empty"],
    );
}

#[test]
fn empty_program() {
    assert_rejected(
        "{toucher}\n[[batch]]\nname = \"b\"\ncommand = [\"\", \"x\"]\n",
        7,
        11,
        &["`command`", "empty"],
    );
}

#[test]
fn zero_duration() {
    assert_rejected(
        "{toucher}\n[[batch]]\nname = \"b\"\nshell = \"true\"\ntimeout = \"0s\"\n",
        8,
        11,
        &["`timeout`", "greater than zero"],
    );
}

#[test]
fn zero_duration_in_defaults() {
    assert_rejected(
        "[defaults]\ndrain = \"0ms\"\n{toucher}",
        2,
        9,
        &["`drain`", "greater than zero"],
    );
}

#[test]
fn duration_without_unit_string() {
    assert_rejected(
        "{toucher}\n[[batch]]\nname = \"b\"\nshell = \"true\"\ngrace = \"10\"\n",
        8,
        9,
        &["`grace`", "unit", "10s"],
    );
}

#[test]
fn duration_without_unit_integer() {
    assert_rejected(
        "[defaults]\ntimeout = 30\n{toucher}",
        2,
        11,
        &["`timeout`", "unit", "30s"],
    );
}

#[test]
fn both_command_and_shell() {
    // Reported at the batch's name, naming both keys.
    assert_rejected(
        "{toucher}\n[[batch]]\nname = \"b\"\ncommand = [\"true\"]\nshell = \"true\"\n",
        6,
        8,
        &["`command`", "`shell`", "not both", "\"b\""],
    );
}

#[test]
fn neither_command_nor_shell() {
    assert_rejected(
        "{toucher}\n[[batch]]\nname = \"b\"\nkind = \"ut\"\n",
        6,
        8,
        &["`command`", "`shell`"],
    );
}

#[test]
fn name_unsafe_as_file_name() {
    assert_rejected(
        "{toucher}\n[[batch]]\nname = \"../escape\"\nshell = \"true\"\n",
        6,
        8,
        &["`name`", "invalid batch name"],
    );
}

#[test]
fn wrong_types() {
    assert_rejected(
        "[run]\nmax-parallel = \"two\"\n{toucher}",
        2,
        16,
        &["`max-parallel`", "positive integer"],
    );
    assert_rejected(
        "[run]\nmax-parallel = 0\n{toucher}",
        2,
        16,
        &["`max-parallel`", "positive integer"],
    );
    assert_rejected(
        "{toucher}leak = \"maybe\"\n",
        4,
        8,
        &["`leak`", "\"warn\" or \"fail\""],
    );
}

#[test]
fn toml_syntax_error() {
    assert_rejected(
        "{toucher}\n[[batch]\nname = \"b\"\n",
        5,
        9,
        &["expected `]`"],
    );
}

#[test]
fn missing_config_file() {
    let r = Warden::pgroup().arg("-c").arg("does-not-exist.toml").run();
    r.assert_code(2);
    r.assert_stderr_contains("does-not-exist.toml");
    r.assert_stderr_contains("cannot read config");
    assert!(!r.artifacts().exists(), "{}", r.context);
    let r = Warden::pgroup()
        .check()
        .arg("-c")
        .arg("does-not-exist.toml")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("does-not-exist.toml");
}

#[test]
fn missing_config_file_error_is_said_once() {
    let r = Warden::pgroup().arg("-c").arg("does-not-exist.toml").run();
    r.assert_code(2);
    assert_eq!(
        r.stderr.matches("No such file or directory").count(),
        1,
        "{}",
        r.context
    );
}

#[test]
fn default_config_file_missing() {
    // No -c and no warden.toml in the current directory.
    let r = Warden::pgroup().no_config().run();
    r.assert_code(2);
    r.assert_stderr_contains("warden.toml");
    r.assert_stderr_contains("cannot read config");
}

#[test]
fn scheduling_keys_are_checked_against_the_resources() {
    assert_rejected(
        "[resources]\nheavy-io = 2\n\n[[batch]]\nname = \"b\"\nshell = \"true\"\nneeds = { vm = 1 }\n",
        7,
        11,
        &[
            "key `needs`",
            "unknown resource `vm`",
            "[resources] has heavy-io",
        ],
    );
    assert_rejected(
        "[[batch]]\nname = \"b\"\nshell = \"true\"\nneeds = { vm = 1 }\n",
        4,
        11,
        &["key `needs`", "there is no [resources] table"],
    );
    assert_rejected(
        "[resources]\nheavy-io = 2\n\n[[batch]]\nname = \"b\"\nshell = \"true\"\nneeds = { heavy-io = 3 }\n",
        7,
        22,
        &["needs 3 of `heavy-io`", "only 2", "could never start"],
    );
    assert_rejected(
        "[resources]\nheavy-io = 0\n",
        2,
        12,
        &["key `heavy-io`", "between 1 and 1000000"],
    );
    assert_rejected(
        "[resources]\n\"heavy io\" = 2\n",
        2,
        1,
        &["key `resources`", "resource name \"heavy io\""],
    );
    assert_rejected(
        "[resources]\nvm-slots = 1\nvm_slots = 1\n",
        3,
        1,
        &["would share the variable WARDEN_SLOT_VM_SLOTS"],
    );
    assert_rejected(
        "[[batch]]\nname = \"b\"\nshell = \"true\"\nthreads = \"2\"\n",
        4,
        11,
        &["key `threads`", "must be an integer"],
    );
    assert_rejected(
        "[[batch]]\nname = \"b\"\nshell = \"true\"\nlocks = [\"\"]\n",
        4,
        10,
        &["key `locks`", "must not be empty"],
    );
    assert_rejected(
        "[[setup]]\nname = \"s\"\nshell = \"true\"\nlocks = [\"x\"]\n",
        4,
        10,
        &["key `locks`", "only [[batch]] entries take `locks`"],
    );
    assert_rejected(
        "[run]\nkeep-scratch = \"sometimes\"\n",
        2,
        16,
        &["key `keep-scratch`", "\"on-failure\""],
    );
}

#[test]
fn a_batch_wider_than_max_parallel_is_rejected() {
    let r = Warden::pgroup()
        .run_section("max-parallel = 2")
        .shell("wide", "true", "threads = 3")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains(
        "batch \"wide\" takes 3 threads, but max-parallel is 2: it could never start",
    );
    let r = Warden::pgroup()
        .shell("wide", "true", "threads = 3")
        .arg("--max-parallel")
        .arg("3")
        .run();
    r.assert_code(0);
}
