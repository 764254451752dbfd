//! The config file's validation, end to end: text in, `Config` or an
//! error naming `file:line:column` and the key out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn parse_ok(text: &str) -> Config {
    Config::parse(Path::new("warden.toml"), text).unwrap()
}

/// (line, column, message) of the error `text` produces.
fn parse_err(text: &str) -> (usize, usize, String) {
    match Config::parse(Path::new("warden.toml"), text) {
        Err(ConfigError::Invalid {
            path,
            line,
            column,
            message,
        }) => {
            assert_eq!(path, Path::new("warden.toml"));
            (line, column, message)
        }
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

fn assert_err(text: &str, line: usize, column: usize, message: &str) {
    let (l, c, m) = parse_err(text);
    assert_eq!((l, c, m.as_str()), (line, column, message), "for:\n{text}");
}

/// For long serde messages: position and the start of the message.
fn assert_err_starts(text: &str, line: usize, column: usize, prefix: &str) {
    let (l, c, m) = parse_err(text);
    assert_eq!((l, c), (line, column), "{m}");
    assert!(m.starts_with(prefix), "{m:?} should start with {prefix:?}");
}

const FULL: &str = r#"
[run]
max-parallel = 4
artifacts = "warden-artifacts"
junit = "out/junit.xml"

[defaults]
timeout = "1h 30m"
grace = "5s"
leak = "fail"
drain = "2s"

[[batch]]
name = "unit"
command = ["make", "ut"]
env = { FOO = "1", BAR = "" }
cwd = "subdir"
timeout = "5m"
grace = "2s"
leak = "warn"
drain = "500ms"
kind = "ut"

[[batch]]
name = "it"
shell = "make it && echo done"
"#;

#[test]
fn full_config() {
    let config = parse_ok(FULL);
    assert_eq!(config.path, Path::new("warden.toml"));
    assert_eq!(
        config.run,
        RunConfig {
            max_parallel: NonZeroUsize::new(4),
            artifacts: Some(PathBuf::from("warden-artifacts")),
            junit: Some(PathBuf::from("out/junit.xml")),
            deadline: None,
            reserve: None,
            flaky: FlakyPolicy::Pass,
            quarantine: None,
            history: None,
            labels: Default::default(),
            scratch_root: None,
            keep_scratch: Default::default(),
            retry_max_failures: None,
            max_fail: None,
            memory_budget: None,
            retention: None,
            queue: false,
        }
    );
    let unit = BatchConfig {
        name: BatchName::new("unit").unwrap(),
        command: Command::Argv(vec!["make".into(), "ut".into()]),
        env: [("FOO".into(), "1".into()), ("BAR".into(), String::new())].into(),
        cwd: Some(PathBuf::from("subdir")),
        timeout: Duration::from_secs(300),
        grace: Duration::from_secs(2),
        leak: LeakPolicy::Warn,
        drain: Duration::from_millis(500),
        kind: Some("ut".into()),
        fatal_patterns: Vec::new(),
        retry: RetryPolicy::default(),
        format: OutputFormat::None,
        rerun: None,
        scheduling: Default::default(),
        store_success_output: false,
        limits: Limits::default(),
    };
    // Everything unset in the batch comes from [defaults].
    let it = BatchConfig {
        name: BatchName::new("it").unwrap(),
        command: Command::Shell("make it && echo done".into()),
        env: BTreeMap::new(),
        cwd: None,
        timeout: Duration::from_secs(5400),
        grace: Duration::from_secs(5),
        leak: LeakPolicy::Fail,
        drain: Duration::from_secs(2),
        kind: None,
        fatal_patterns: Vec::new(),
        retry: RetryPolicy::default(),
        format: OutputFormat::None,
        rerun: None,
        scheduling: Default::default(),
        store_success_output: false,
        limits: Limits::default(),
    };
    assert_eq!(config.batches, vec![unit, it]);
}

#[test]
fn setup_post_deadline() {
    let config = parse_ok(
        r#"
[run]
deadline = "20m"
reserve = "5m"

[[setup]]
name = "boot"
command = ["true"]

[[batch]]
name = "work"
command = ["true"]

[[post]]
name = "upload"
shell = "true"
required = true

[[post]]
name = "cleanup"
shell = "true"
"#,
    );
    assert_eq!(config.run.deadline, Some(Duration::from_secs(1200)));
    assert_eq!(config.run.reserve, Some(Duration::from_secs(300)));
    assert_eq!(config.setup[0].name.as_str(), "boot");
    assert_eq!(config.batches[0].name.as_str(), "work");
    let post: Vec<_> = config
        .post
        .iter()
        .map(|p| (p.step.name.as_str(), p.required))
        .collect();
    assert_eq!(post, [("upload", true), ("cleanup", false)]);
}

#[test]
fn reserve_not_shorter_than_deadline() {
    assert_err(
        "[run]\ndeadline = \"5m\"\nreserve = \"5m\"\n",
        3,
        11,
        "key `reserve`: the reserve (5m) must be shorter than the deadline (5m)",
    );
}

#[test]
fn required_only_in_post() {
    assert_err(
        "[[batch]]\nname = \"a\"\ncommand = [\"true\"]\nrequired = true\n",
        4,
        12,
        "key `required`: only [[post]] steps take `required`, not [[batch]]",
    );
}

#[test]
fn names_shared_across_sections() {
    assert_err(
        "[[setup]]\nname = \"a\"\nshell = \"true\"\n[[post]]\nname = \"a\"\nshell = \"true\"\n",
        5,
        8,
        "key `name`: duplicate batch name \"a\" (first defined at line 2)",
    );
}

#[test]
fn built_in_defaults() {
    let config = parse_ok("[[batch]]\nname = \"a\"\ncommand = [\"true\"]\n");
    assert_eq!(config.run, RunConfig::default());
    let batch = &config.batches[0];
    assert_eq!(batch.timeout, DEFAULT_TIMEOUT);
    assert_eq!(batch.grace, DEFAULT_GRACE);
    assert_eq!(batch.leak, LeakPolicy::Warn);
    assert_eq!(batch.drain, DEFAULT_DRAIN);
}

#[test]
fn partial_defaults_fall_back_to_built_ins() {
    let text = "[defaults]\ngrace = \"3s\"\n[[batch]]\nname = \"a\"\nshell = \"x\"\n";
    let batch = &parse_ok(text).batches[0];
    assert_eq!(batch.grace, Duration::from_secs(3));
    assert_eq!(batch.timeout, DEFAULT_TIMEOUT);
}

#[test]
fn empty_file_has_no_batches() {
    let config = parse_ok("");
    assert!(config.batches.is_empty());
    assert_eq!(config.run, RunConfig::default());
    assert!(parse_ok("[run]\n[defaults]\n").batches.is_empty());
}

#[test]
fn batches_keep_file_order() {
    let text = "[[batch]]\nname = \"b\"\nshell = \"x\"\n[[batch]]\nname = \"a\"\nshell = \"x\"\n";
    let names: Vec<_> = parse_ok(text)
        .batches
        .iter()
        .map(|b| b.name.to_string())
        .collect();
    assert_eq!(names, ["b", "a"]);
}

#[test]
fn unknown_key_top_level() {
    assert_err_starts(
        "\nfoo = 1\n",
        2,
        1,
        "unknown key `foo` at the top level, expected one of `run`, `defaults`, `setup`, `batch`, `post`",
    );
    assert_err_starts("[foo]\n", 1, 2, "unknown key `foo` at the top level");
}

#[test]
fn unknown_key_in_run() {
    assert_err_starts(
        "[run]\nmax_parallel = 2\n",
        2,
        1,
        "unknown key `max_parallel` in [run], expected one of `max-parallel`",
    );
}

#[test]
fn unknown_key_in_defaults() {
    assert_err_starts(
        "[defaults]\n  leek = \"x\"\n",
        2,
        3,
        "unknown key `leek` in [defaults], expected one of",
    );
}

#[test]
fn unknown_key_in_batch() {
    let text = "[[batch]]\nname = \"a\"\nshell = \"x\"\n\n\n\ntiemout = \"5m\"\n";
    assert_err_starts(
        text,
        7,
        1,
        "unknown key `tiemout` in [[batch]], expected one of `name`, `command`,",
    );
    let text = "[[batch]]\nname = \"a\"\nshell = \"x\"\n[batch.oops]\nx = 1\n";
    assert_err_starts(text, 4, 8, "unknown key `oops` in [[batch]]");
}

#[test]
fn duration_without_unit() {
    let text = "[[batch]]\nname = \"a\"\nshell = \"x\"\ntimeout = \"5\"\n";
    assert_err(
        text,
        4,
        11,
        r#"key `timeout`: invalid duration "5": durations need a unit, e.g. "5s""#,
    );
    let text = "[defaults]\n\n\ntimeout = 5\n";
    assert_err(
        text,
        4,
        11,
        r#"key `timeout`: invalid duration "5": durations need a unit, e.g. "5s""#,
    );
}

#[test]
fn zero_duration() {
    let text = "[defaults]\ntimeout = \"1m\"\n\ngrace   = \"0s\"\n";
    assert_err(
        text,
        4,
        11,
        "key `grace`: duration must be greater than zero",
    );
}

#[test]
fn bad_durations() {
    assert_err_starts(
        "[defaults]\ndrain = \"abc\"\n",
        2,
        9,
        r#"key `drain`: invalid duration "abc": "#,
    );
    assert_err(
        "[defaults]\ndrain = true\n",
        2,
        9,
        r#"key `drain`: expected a duration string like "10s", found boolean"#,
    );
}

#[test]
fn invalid_leak() {
    assert_err(
        "[defaults]\nleak = \"never\"\n",
        2,
        8,
        r#"key `leak`: invalid value "never", expected "warn" or "fail""#,
    );
}

#[test]
fn empty_command() {
    let text = "[[batch]]\nname = \"a\"\n\n\n\n\n\n\ncommand = []\n";
    assert_err(text, 9, 11, "key `command`: command must not be empty");
    let text = "[[batch]]\nname = \"a\"\ncommand = [\"\", \"x\"]\n";
    assert_err(
        text,
        3,
        11,
        "key `command`: the program (first element) must not be empty",
    );
}

#[test]
fn command_type_errors() {
    let text = "[[batch]]\nname = \"a\"\ncommand = \"make\"\n";
    assert_err_starts(text, 3, 11, "key `command`: invalid type: string \"make\"");
    let text = "[[batch]]\nname = \"a\"\ncommand = [\"make\", 5]\n";
    assert_err_starts(text, 3, 20, "key `command`: invalid type: integer `5`");
}

#[test]
fn empty_or_nul_strings() {
    let text = "[[batch]]\nname = \"a\"\nshell = \"\"\n";
    assert_err(text, 3, 9, "key `shell`: must not be empty");
    let text = "[[batch]]\nname = \"a\"\nshell = \"x\\u0000\"\n";
    assert_err(
        text,
        3,
        9,
        "key `shell`: script must not contain a NUL character",
    );
    let text = "[[batch]]\nname = \"a\"\ncommand = [\"a\", \"\\u0000\"]\n";
    assert_err(
        text,
        3,
        11,
        "key `command`: arguments must not contain a NUL character",
    );
    let text = "[[batch]]\nname = \"a\"\nshell = \"x\"\nkind = \"\"\n";
    assert_err(text, 4, 8, "key `kind`: must not be empty");
    assert_err(
        "[run]\nartifacts = \"\"\n",
        2,
        13,
        "key `artifacts`: must not be empty",
    );
}

#[test]
fn command_or_shell_required() {
    let text = "\n\n\n\n\n\n\n[[batch]]\nname = \"x\"\n";
    assert_err(
        text,
        9,
        8,
        r#"batch "x": exactly one of `command` or `shell` is required"#,
    );
    let text = "[[batch]]\nname = \"x\"\ncommand = [\"a\"]\nshell = \"b\"\n";
    assert_err(
        text,
        2,
        8,
        r#"batch "x": exactly one of `command` or `shell` is required, not both"#,
    );
}

#[test]
fn missing_name() {
    let text = "[[batch]]\nname = \"a\"\nshell = \"x\"\n\n[[batch]]\nshell = \"y\"\n";
    assert_err(text, 5, 1, "[[batch]] #2: missing required key `name`");
}

#[test]
fn duplicate_names() {
    let text = "\n\n[[batch]]\nname = \"x\"\nshell = \"a\"\n\n\n\n\n\n[[batch]]\nname = \"x\"\nshell = \"b\"\n";
    assert_err(
        text,
        12,
        8,
        r#"key `name`: duplicate batch name "x" (first defined at line 4)"#,
    );
}

#[test]
fn invalid_name() {
    let text = "[[batch]]\n\nname = \"a/b\"\nshell = \"x\"\n";
    assert_err_starts(text, 3, 8, r#"key `name`: invalid batch name "a/b": "#);
    let text = "[[batch]]\nname = 5\nshell = \"x\"\n";
    assert_err_starts(text, 2, 8, "key `name`: invalid type: integer `5`");
}

#[test]
fn max_parallel() {
    assert_err(
        "[run]\nmax-parallel = 0\n",
        2,
        16,
        "key `max-parallel`: must be a positive integer, found 0",
    );
    assert_err(
        "[run]\nmax-parallel = \"4\"\n",
        2,
        16,
        "key `max-parallel`: must be a positive integer, found string",
    );
}

#[test]
fn retry_max_failures() {
    let config = parse_ok("[run]\nretry-max-failures = 10\n");
    assert_eq!(config.run.retry_max_failures, Some(10));
    assert_eq!(parse_ok("").run.retry_max_failures, None);
    assert_err(
        "[run]\nretry-max-failures = -1\n",
        2,
        22,
        "key `retry-max-failures`: must be a whole number, 0 or more, found -1",
    );
    assert_err(
        "[run]\nretry-max-failures = \"10\"\n",
        2,
        22,
        "key `retry-max-failures`: must be a whole number, 0 or more, found string",
    );
}

#[test]
fn env_errors() {
    let batch = "[[batch]]\nname = \"a\"\nshell = \"x\"\n";
    assert_err_starts(
        &format!("{batch}env = {{ FOO = 1 }}\n"),
        4,
        15,
        "key `env.FOO`: invalid type: integer `1`, expected a string",
    );
    assert_err(
        &format!("{batch}env = {{ \"A=B\" = \"1\" }}\n"),
        4,
        9,
        r#"key `env`: invalid variable name "A=B": variable names must not contain '=' or NUL"#,
    );
    assert_err(
        &format!("{batch}[batch.env]\n\"\" = \"1\"\n"),
        5,
        1,
        r#"key `env`: invalid variable name "": variable names must not be empty"#,
    );
    assert_err(
        &format!("{batch}env = {{ A = \"x\\u0000\" }}\n"),
        4,
        13,
        r#"key `env`: value of "A" must not contain NUL"#,
    );
}

#[test]
fn wrong_section_type() {
    assert_err(
        "run = 5\n",
        1,
        7,
        "key `run`: invalid type: integer `5`, expected a table",
    );
    assert_err_starts(
        "batch = 5\n",
        1,
        9,
        "key `batch`: invalid type: integer `5`",
    );
}

#[test]
fn toml_syntax_errors() {
    let (line, column, message) = parse_err("[run]\njunit = = \"x\"\n");
    assert_eq!((line, column), (2, 9), "{message}");
    assert!(message.starts_with("extra `=`"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert!(!message.contains("TOML parse error"), "{message}");
    assert_err(
        "[run]\njunit = \"a\"\njunit = \"b\"\n",
        3,
        1,
        "duplicate key `junit`",
    );
}

#[test]
fn columns_count_characters() {
    // "é" is two bytes but one column (span.rs counts the columns).
    assert_err_starts("[run]\n  \"é\" = 1\n", 2, 3, "unknown key `é` in [run]");
}

#[test]
fn display_format() {
    let err = Config::parse(Path::new("dir/warden.toml"), "[run]\nmax-parallel = 0\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "dir/warden.toml:2:16: key `max-parallel`: must be a positive integer, found 0"
    );
}

#[test]
fn load_missing_file_is_a_read_error() {
    let err = Config::load(Path::new("/nonexistent/warden.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
}

#[test]
fn limits_merge_over_defaults_key_by_key() {
    let config = parse_ok(
        r#"
[run]
memory-budget = "16G"
[defaults]
limits = { memory = "4G", io-write = "20M/s" }
[[batch]]
name = "vm"
command = ["true"]
memory = "3G"
limits = { cpu = "150%", memory-high = "3G", pids = 4096, io-read = "50M" }
[[batch]]
name = "plain"
command = ["true"]
"#,
    );
    assert_eq!(
        config.run.memory_budget,
        Some(MemoryBudget::Bytes(16 << 30))
    );
    let vm = &config.batches[0];
    assert_eq!(
        vm.limits,
        Limits {
            cpu: Some(150),
            memory: Some(4 << 30),
            memory_high: Some(3 << 30),
            pids: Some(4096),
            io_read: Some(50 << 20),
            io_write: Some(20 << 20),
        }
    );
    assert_eq!(vm.scheduling.memory, Some(3 << 30));
    assert_eq!(
        config.batches[1].limits.describe(),
        "memory=4G io-write=20M"
    );
    let auto = parse_ok("[run]\nmemory-budget = \"auto\"\n");
    assert_eq!(auto.run.memory_budget, Some(MemoryBudget::Auto));
}

#[test]
fn bad_limits_name_the_key() {
    let batch = |limits: &str| {
        format!("[[batch]]\nname = \"a\"\ncommand = [\"true\"]\nlimits = {limits}\n")
    };
    assert_err(
        &batch(r#"{ cpu = "1.5" }"#),
        4,
        18,
        "key `cpu`: expected a share of one CPU like \"150%\" (1% to 100000%)",
    );
    assert_err(
        &batch(r#"{ memory = "4X" }"#),
        4,
        21,
        "key `memory`: invalid size \"4X\": expected a number and a unit like \"512M\" or \"4G\"",
    );
    assert_err(
        &batch(r#"{ memory = "1G", memory-high = "2G" }"#),
        4,
        41,
        "key `memory-high`: 2G is above `memory` (1G): it would never throttle",
    );
    assert_err(
        &batch(r#"{ pids = 0 }"#),
        4,
        19,
        "key `pids`: expected a whole number of processes, at least 1",
    );
    assert_err_starts(&batch(r#"{ swap = "1G" }"#), 4, 12, "unknown key `swap`");
    assert_err(
        "[[setup]]\nname = \"s\"\ncommand = [\"true\"]\nmemory = \"1G\"\n",
        4,
        10,
        "key `memory`: only [[batch]] entries take `memory`: [[setup]] steps run one at a time",
    );
}

#[test]
fn retry_when_oom_is_not_a_regex() {
    let batch = |when: &str| {
        parse_ok(&format!(
            "[[batch]]\nname = \"a\"\ncommand = [\"true\"]\nretry = {{ attempts = 2, when = {when} }}\n"
        ))
        .batches[0]
            .retry
            .clone()
    };
    let r = batch(r#"["@oom"]"#);
    assert!(r.oom);
    assert!(r.when.is_empty(), "{:?}", r.when);
    let r = batch(r#"["EOF", "@oom", "[@]oom"]"#);
    assert!(r.oom);
    assert_eq!(
        r.when.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        ["EOF", "[@]oom"]
    );
    let r = batch(r#"["EOF"]"#);
    assert!(!r.oom);
    assert!(!batch("[]").oom);
}
