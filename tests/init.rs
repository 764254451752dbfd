//! `warden init`: for each kind of project a tiny real one in a temporary
//! directory, then `warden init`, `warden check` and `warden run` on it,
//! with the run's statuses asserted. Go and pytest are skipped, saying
//! why, where their tools are missing; the kernel tree is a fake one whose
//! selftests Makefile installs a run_kselftest.sh that prints KTAP.

#[macro_use]
mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::{Kind, Warden, warden_bin};

/// Writes `files` (path, text) under `dir`; `.sh` files are made executable.
fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    use std::os::unix::fs::PermissionsExt;
    for (path, text) in files {
        let p = dir.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        if path.ends_with(".sh") {
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

/// `warden ARGS` in `dir`, to completion.
fn warden(dir: &Path, args: &[&str]) -> Output {
    Command::new(warden_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("WARDEN_HISTORY")
        .env("NO_COLOR", "1")
        .output()
        .expect("run warden")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `warden init ARGS` then `warden check` in the Warden's directory, both
/// succeeding; returns init's stdout and check's stdout.
fn init_and_check(w: &Warden, args: &[&str]) -> (String, String) {
    let mut init = vec!["init"];
    init.extend(args);
    let o = warden(w.dir(), &init);
    assert_eq!(o.status.code(), Some(0), "init: {}", text(&o));
    let config = fs::read_to_string(w.path("warden.toml")).expect("warden.toml written");
    let c = warden(w.dir(), &["check"]);
    assert_eq!(
        c.status.code(),
        Some(0),
        "check: {}\n--- warden.toml\n{config}",
        text(&c)
    );
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&c.stdout).into_owned(),
    )
}

/// The batches `warden check` lists, in config order (`  name: argv`).
fn checked_units(check: &str) -> Vec<String> {
    check
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   ") && l.contains(": "))
        .filter(|l| !l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| l.trim().split(": ").next().unwrap().to_owned())
        .collect()
}

#[test]
fn nothing_recognized_is_a_generic_config_that_fails_until_edited() {
    let w = Warden::new();
    let (init, check) = init_and_check(&w, &[]);
    assert!(init.contains("found no Cargo.toml"), "{init}");
    assert_eq!(checked_units(&check), ["tests"]);
    let r = w.no_config().run();
    r.assert_code(1);
    assert!(r.finish_line("tests").contains("FAIL"), "{}", r.context);
    assert!(
        r.log_text("tests").contains("put your test command"),
        "{}",
        r.context
    );
}

#[test]
fn never_overwrites_without_force_and_writes_into_dir() {
    let w = Warden::new();
    fs::write(w.path("warden.toml"), "# mine\n").unwrap();
    let o = warden(w.dir(), &["init"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("already exists"), "{}", text(&o));
    assert_eq!(
        fs::read_to_string(w.path("warden.toml")).unwrap(),
        "# mine\n"
    );
    let o = warden(w.dir(), &["init", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        fs::read_to_string(w.path("warden.toml"))
            .unwrap()
            .contains("[[batch]]")
    );

    // --dir: the project elsewhere, the file written there.
    write_tree(
        w.dir(),
        &[("proj/go.mod", "module example.com/p\n\ngo 1.19\n")],
    );
    let o = warden(w.dir(), &["init", "--dir", "proj"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("a Go module `example.com/p`"),
        "{}",
        text(&o)
    );
    let written = fs::read_to_string(w.path("proj/warden.toml")).unwrap();
    assert!(written.contains("format = \"go-json\""), "{written}");

    // --selftests outside a kernel tree, or naming a target it lacks.
    let o = warden(w.dir(), &["init", "--force", "--selftests", "net"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no tools/testing/selftests"),
        "{}",
        text(&o)
    );
    write_tree(w.dir(), &KERNEL);
    let o = warden(w.dir(), &["init", "--force", "--selftests", "demo,nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("nope"), "{}", text(&o));
}

/// A kernel tree as far as selftests go: a Makefile listing the targets
/// whose `install` puts each target's tests and a run_kselftest.sh (which
/// prints kselftest's KTAP for `-c TARGET`) under INSTALL_PATH.
const KERNEL: [(&str, &str); 7] = [
    (
        "tools/testing/selftests/Makefile",
        "TARGETS += demo\nTARGETS += broken\n\
         INSTALL_PATH ?= kselftest_install\n\
         install:\n\
         \tmkdir -p $(INSTALL_PATH)\n\
         \tcp run_kselftest.sh $(INSTALL_PATH)/\n\
         \tfor t in $(TARGETS); do mkdir -p $(INSTALL_PATH)/$$t && cp $$t/*.sh $(INSTALL_PATH)/$$t/; done\n",
    ),
    (
        "tools/testing/selftests/run_kselftest.sh",
        "#!/bin/sh\n\
         # The real one runs the collection's tests through kselftest/runner.sh.\n\
         cd \"$(dirname \"$0\")\" || exit 1\n\
         [ \"$1\" = -c ] || { echo \"usage: $0 -c COLLECTION\" >&2; exit 1; }\n\
         cd \"$2\" || exit 1\n\
         set -- *_test.sh\n\
         c=$(basename \"$PWD\")\n\
         echo 'TAP version 13'\n\
         echo \"1..$#\"\n\
         n=0; rc=0\n\
         for t; do\n\
           n=$((n+1))\n\
           echo \"# selftests: $c: $t\"\n\
           out=$(./\"$t\" 2>&1); s=$?\n\
           printf '%s\\n' \"$out\" | sed 's/^/# /'\n\
           if [ $s -eq 0 ]; then echo \"ok $n selftests: $c: $t\";\n\
           elif [ $s -eq 4 ]; then echo \"ok $n selftests: $c: $t # SKIP\";\n\
           else echo \"not ok $n selftests: $c: $t # exit=$s\"; rc=1; fi\n\
         done\n\
         exit $rc\n",
    ),
    (
        "tools/testing/selftests/demo/Makefile",
        "TEST_PROGS := a_test.sh\n",
    ),
    (
        "tools/testing/selftests/demo/a_test.sh",
        "#!/bin/sh\necho 'all good'\n",
    ),
    (
        "tools/testing/selftests/demo/b_test.sh",
        "#!/bin/sh\necho 'needs hardware'\nexit 4\n",
    ),
    (
        "tools/testing/selftests/broken/Makefile",
        "TEST_PROGS := c_test.sh\n",
    ),
    (
        "tools/testing/selftests/broken/c_test.sh",
        "#!/bin/sh\necho 'expected 1, got 2'\nexit 1\n",
    ),
];

#[test]
fn kernel_selftests_a_batch_per_target() {
    if let Some(why) = missing(&["make", "--version"]) {
        eprintln!("skipping: {why}");
        return;
    }
    let w = Warden::new();
    write_tree(w.dir(), &KERNEL);
    let (init, check) = init_and_check(&w, &[]);
    assert!(init.contains("a kernel tree"), "{init}");
    assert_eq!(
        checked_units(&check),
        ["kselftest-install", "kselftest-broken", "kselftest-demo"]
    );
    let r = w.no_config().run();
    r.assert_code(1);
    assert!(
        r.finish_line("kselftest-install").contains("PASS"),
        "{}",
        r.context
    );
    assert!(
        r.finish_line("kselftest-demo").contains("PASS"),
        "{}",
        r.context
    );
    assert!(
        r.finish_line("kselftest-broken").contains("FAIL"),
        "{}",
        r.context
    );
    r.case("demo/a_test.sh").assert_status(Kind::Success, None);
    r.case("demo/b_test.sh").assert_status(Kind::Skipped, None);
    r.case("broken/c_test.sh")
        .assert_status(Kind::Failure, Some("failed"));
    assert!(
        r.path("tools/testing/selftests/kselftest_install/run_kselftest.sh")
            .exists()
    );

    // --selftests picks; the others are listed in a comment.
    let o = warden(r.dir(), &["init", "--force", "--selftests", "demo"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let config = fs::read_to_string(r.path("warden.toml")).unwrap();
    assert!(config.contains("\"TARGETS=demo\""), "{config}");
    assert!(config.contains("other targets"), "{config}");
    assert!(!config.contains("name = \"kselftest-broken\""), "{config}");
}

/// Why the command can't be used here, if it can't.
fn missing(argv: &[&str]) -> Option<String> {
    match Command::new(argv[0]).args(&argv[1..]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`{}` failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("`{}` cannot run: {e}", argv.join(" "))),
    }
}

#[test]
fn go_module() {
    if let Some(why) = missing(&["go", "version"]) {
        eprintln!("skipping: {why}");
        return;
    }
    let w = Warden::new();
    write_tree(
        w.dir(),
        &[
            ("go.mod", "module example.com/tiny\n\ngo 1.19\n"),
            (
                "tiny_test.go",
                "package tiny\n\nimport \"testing\"\n\n\
                 func TestPasses(t *testing.T) {}\n\n\
                 func TestFails(t *testing.T) { t.Fatal(\"got 3 want 4\") }\n\n\
                 func TestSkips(t *testing.T) { t.Skip(\"later\") }\n",
            ),
        ],
    );
    let (init, check) = init_and_check(&w, &[]);
    assert!(init.contains("a Go module `example.com/tiny`"), "{init}");
    assert_eq!(checked_units(&check), ["go-test"]);
    let r = w.no_config().run();
    r.assert_code(1);
    assert!(r.finish_line("go-test").contains("FAIL"), "{}", r.context);
    r.case("example.com/tiny/TestPasses")
        .assert_status(Kind::Success, None);
    r.case("example.com/tiny/TestSkips")
        .assert_status(Kind::Skipped, None);
    let failed = r.case("example.com/tiny/TestFails");
    failed.assert_status(Kind::Failure, Some("failed"));
    assert!(failed.message().contains("got 3 want 4"), "{failed:?}");
}

#[test]
fn pytest_project() {
    if let Some(why) = missing(&["python3", "-m", "pytest", "--version"]) {
        eprintln!("skipping: {why}");
        return;
    }
    let w = Warden::new();
    write_tree(
        w.dir(),
        &[(
            "tests/test_tiny.py",
            "import pytest\n\n\
             def test_passes():\n    assert 1 + 1 == 2\n\n\
             def test_fails():\n    assert 3 == 4, 'got 3 want 4'\n\n\
             @pytest.mark.skip(reason='later')\n\
             def test_skips():\n    pass\n",
        )],
    );
    let (init, check) = init_and_check(&w, &[]);
    assert!(
        init.contains("a pytest project (tests/test_tiny.py)"),
        "{init}"
    );
    assert_eq!(checked_units(&check), ["pytest"]);
    let r = w.no_config().env("PYTHONDONTWRITEBYTECODE", "1").run();
    r.assert_code(1);
    assert!(r.finish_line("pytest").contains("FAIL"), "{}", r.context);
    let case = |name: &str| {
        let cases = r.junit();
        cases
            .into_iter()
            .find(|c| c.classname == "pytest" && c.name.ends_with(name))
            .unwrap_or_else(|| panic!("no test {name}\n{}", r.context))
    };
    case("test_passes").assert_status(Kind::Success, None);
    case("test_skips").assert_status(Kind::Skipped, None);
    let failed = case("test_fails");
    assert_eq!(failed.kind, Kind::Failure, "{failed:?}");
    assert!(failed.message().contains("got 3 want 4"), "{failed:?}");
}

#[test]
fn cargo_package_with_cargo_test_and_with_nextest() {
    if let Some(why) = missing(&["cargo", "--version"]) {
        eprintln!("skipping: {why}");
        return;
    }
    let w = Warden::new();
    write_tree(
        w.dir(),
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            (
                "src/lib.rs",
                "pub fn add(a: i32, b: i32) -> i32 { a + b }\n\n\
                 #[cfg(test)]\nmod tests {\n\
                 \x20   #[test]\n    fn adds() { assert_eq!(super::add(2, 2), 4); }\n\
                 \x20   #[test]\n    #[ignore = \"later\"]\n    fn later() {}\n}\n",
            ),
        ],
    );
    // Without nextest on PATH whatever this machine has: cargo test.
    let no_nextest = std::env::join_paths(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .filter(|d| !d.join("cargo-nextest").exists()),
    )
    .unwrap();
    let o = Command::new(warden_bin())
        .arg("init")
        .current_dir(w.dir())
        .env("PATH", &no_nextest)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("a Cargo package `tiny` (Cargo.toml): cargo test"),
        "{}",
        text(&o)
    );
    let check = warden(w.dir(), &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert_eq!(
        checked_units(&String::from_utf8_lossy(&check.stdout)),
        ["cargo-build", "cargo-test"]
    );
    let target = tempfile::tempdir().unwrap();
    let target = target.path().to_str().unwrap().to_owned();
    let nextest = missing(&["cargo-nextest", "nextest", "--version"]);
    let dir = w.dir().to_path_buf();
    let r = w
        .no_config()
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_NET_OFFLINE", "true")
        .run();
    r.assert_code(0);
    assert!(
        r.finish_line("cargo-build").contains("PASS"),
        "{}",
        r.context
    );
    assert!(
        r.finish_line("cargo-test").contains("PASS"),
        "{}",
        r.context
    );
    r.case("unittests src/lib.rs/tests::adds")
        .assert_status(Kind::Success, None);
    r.case("unittests src/lib.rs/tests::later")
        .assert_status(Kind::Skipped, None);

    if let Some(why) = nextest {
        eprintln!("skipping the nextest half: {why}");
        return;
    }
    // nextest with a JUnit profile: `cargo nextest` reading its JUnit file.
    write_tree(
        &dir,
        &[(
            ".config/nextest.toml",
            "[profile.ci.junit]\npath = \"junit.xml\"\n",
        )],
    );
    let w = Warden::new();
    for entry in ["Cargo.toml", "src", ".config"] {
        let o = Command::new("cp")
            .args(["-r"])
            .arg(dir.join(entry))
            .arg(w.dir())
            .output()
            .unwrap();
        assert!(o.status.success(), "cp: {o:?}");
    }
    let (init, check) = init_and_check(&w, &[]);
    assert!(
        init.contains("cargo nextest (profile `ci`, format junit)"),
        "{init}"
    );
    assert_eq!(checked_units(&check), ["cargo-build", "cargo-nextest"]);
    let r = w
        .no_config()
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_NET_OFFLINE", "true")
        .run();
    r.assert_code(0);
    assert!(
        r.finish_line("cargo-nextest").contains("PASS"),
        "{}",
        r.context
    );
    // nextest's JUnit leaves ignored tests out.
    r.case("tiny/tests::adds")
        .assert_status(Kind::Success, None);
}

#[test]
fn mixed_project_gets_a_batch_per_kind() {
    let w = Warden::new();
    write_tree(w.dir(), &KERNEL);
    write_tree(
        w.dir(),
        &[
            ("go.mod", "module example.com/mixed\n\ngo 1.19\n"),
            ("pytest.ini", "[pytest]\n"),
            (
                "Cargo.toml",
                "[workspace]\nmembers = []\nresolver = \"2\"\n",
            ),
        ],
    );
    let (init, check) = init_and_check(&w, &[]);
    for what in [
        "a Cargo workspace",
        "a Go module",
        "a pytest project (pytest.ini)",
        "a kernel tree",
    ] {
        assert!(init.contains(what), "{what}: {init}");
    }
    let units = checked_units(&check);
    let units: Vec<&str> = units
        .iter()
        .map(String::as_str)
        .filter(|u| *u != "cargo-nextest" && *u != "cargo-test")
        .collect();
    assert_eq!(
        units,
        [
            "cargo-build",
            "kselftest-install",
            "go-test",
            "pytest",
            "kselftest-broken",
            "kselftest-demo"
        ]
    );
}
