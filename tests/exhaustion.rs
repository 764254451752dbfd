//! Hostile inputs and exhausted resources (issue 13, items 4–7): files that
//! are not files, a full artifacts filesystem, two runs on one artifacts
//! directory, thousands of processes, huge lines and text nodes. Each ends
//! with a clear status and reason, bounded memory, and nothing left behind.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Kind, Warden};

/// Runs warden, sampling its own peak RSS (VmHWM, reset by exec) while it
/// runs: `wait4`'s figure would include the test process it was forked
/// from, which other tests running in parallel make large.
fn run_sampled(w: Warden) -> (common::Run, i64) {
    let running = w.spawn();
    let pid = running.pid();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let sampler = std::thread::spawn(move || {
        let mut hwm = 0;
        while rx.recv_timeout(Duration::from_millis(10)).is_err() {
            match vm_hwm_kib(pid) {
                Some(kib) => hwm = hwm.max(kib),
                None => break,
            }
        }
        hwm
    });
    let r = running.wait();
    let _ = tx.send(());
    (r, sampler.join().unwrap())
}

fn vm_hwm_kib(pid: i32) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// A config that is a FIFO (no writer: opening it would block forever), or
/// /dev/zero, or a link to it: refused at once, the file named, exit 2.
#[test]
fn config_that_is_not_a_regular_file_is_refused() {
    for (what, make) in [
        (
            "a FIFO",
            Box::new(|p: &Path| mkfifo(p)) as Box<dyn Fn(&Path)>,
        ),
        (
            "a character device",
            Box::new(|p: &Path| std::os::unix::fs::symlink("/dev/zero", p).unwrap()),
        ),
    ] {
        let w = Warden::new().no_config().watchdog(Duration::from_secs(10));
        make(&w.path("warden.toml"));
        let r = w.run();
        r.assert_code(2);
        r.assert_stderr_contains("warden.toml: cannot read config:");
        r.assert_stderr_contains(&format!("{what}, not a regular file"));
        assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
    }
    // And /dev/zero itself, by name.
    let r = Warden::new()
        .no_config()
        .args(["-c", "/dev/zero"])
        .watchdog(Duration::from_secs(10))
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("/dev/zero: cannot read config: a character device");
}

/// A quarantine file that is a FIFO: refused, named, exit 2.
#[test]
fn quarantine_fifo_is_refused() {
    let w = Warden::new()
        .run_section("quarantine = \"q.toml\"")
        .shell("ok", "true", "")
        .watchdog(Duration::from_secs(10));
    mkfifo(&w.path("q.toml"));
    let r = w.run();
    r.assert_code(2);
    r.assert_stderr_contains("q.toml");
    r.assert_stderr_contains("a FIFO, not a regular file");
}

/// `warden import junit` of a FIFO, /dev/zero and a link to /dev/zero:
/// each refused with the file named (no block, no memory blow-up, no abort).
#[test]
fn import_of_fifo_and_dev_zero_is_refused() {
    for (name, make, what) in [
        (
            "fifo.xml",
            Box::new(|p: &Path| mkfifo(p)) as Box<dyn Fn(&Path)>,
            "a FIFO",
        ),
        (
            "zero.xml",
            Box::new(|p: &Path| std::os::unix::fs::symlink("/dev/zero", p).unwrap()),
            "a character device",
        ),
    ] {
        let w = Warden::new().no_config().watchdog(Duration::from_secs(10));
        let file = w.path(name);
        make(&file);
        let db = w.path("h.db");
        let r = w
            .subcommand("import")
            .arg("junit")
            .arg("--history")
            .arg(format!("sqlite:{}", db.display()))
            .arg(&file)
            .run();
        r.assert_code(2);
        r.assert_stderr_contains(name);
        r.assert_stderr_contains(what);
        assert!(r.signal.is_none(), "{}", r.context);
    }
    let w = Warden::new().no_config().watchdog(Duration::from_secs(10));
    let db = w.path("h.db");
    let r = w
        .subcommand("import")
        .arg("junit")
        .arg("--history")
        .arg(format!("sqlite:{}", db.display()))
        .arg("/dev/zero")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("/dev/zero");
    r.assert_stderr_contains("a character device");
}

/// Billion laughs given to `import`: rejected, quickly, memory bounded.
#[test]
fn import_of_an_xml_bomb_is_rejected() {
    let w = Warden::new().no_config().watchdog(Duration::from_secs(10));
    let mut bomb =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        bomb.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    bomb.push_str("]>\n<testsuite name=\"s\"><testcase name=\"&lol9;\"/></testsuite>\n");
    std::fs::write(w.path("bomb.xml"), bomb).unwrap();
    let db = w.path("h.db");
    let r = w
        .subcommand("import")
        .arg("junit")
        .arg("--history")
        .arg(format!("sqlite:{}", db.display()))
        .arg("bomb.xml")
        .run();
    assert!(r.signal.is_none(), "{}", r.context);
    // Entities are never expanded: either refused, or imported with the
    // reference kept as text; never a billion bytes, so quickly.
    assert!(matches!(r.code, Some(0) | Some(2)), "{}", r.context);
    assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
    assert!(!r.stdout.contains("lollol"), "{}", r.context);
}

/// A JUnit file with one 96 MiB text node: read with bounded memory, its
/// output kept clipped, the test's status right.
#[test]
fn a_huge_junit_text_node_costs_bounded_memory() {
    let script = r#"
        {
          printf '<testsuite name="s"><testcase classname="c" name="big"><failure message="boom">'
          printf 'HEAD'
          head -c 100663296 /dev/zero | tr '\0' 'x'
          printf 'TAIL</failure></testcase><testcase classname="c" name="after"/></testsuite>\n'
        } > report.xml
    "#;
    let (r, hwm) = run_sampled(
        Warden::new()
            .shell(
                "big",
                script,
                "format = \"junit\"\njunit-files = [\"report.xml\"]",
            )
            .watchdog(Duration::from_secs(60)),
    );
    r.assert_code(1);
    assert!(hwm < 64 * 1024, "peak RSS {hwm} KiB for a 96 MiB text node");
    let cases = r.junit();
    let big = cases.iter().find(|c| c.name == "c/big").expect("c/big");
    big.assert_status(Kind::Failure, Some("failed"));
    assert_eq!(big.message(), "boom");
    assert!(cases.iter().any(|c| c.name == "c/after"), "no c/after");
    let xml = std::fs::read_to_string(r.artifacts().join("junit.xml")).unwrap();
    assert!(xml.len() < 1 << 20, "JUnit of {} bytes", xml.len());
    assert!(xml.contains("xxxTAIL"), "the text's end is kept");
}

/// A 128 MiB line without a newline under `format = "tap"`: bounded memory.
#[test]
fn a_huge_line_without_newline_costs_bounded_memory() {
    let (r, hwm) = run_sampled(
        Warden::new()
            .shell(
                "line",
                "echo 'TAP version 13'; echo '1..1'; echo 'ok 1 - a'; head -c 134217728 /dev/zero | tr '\\0' x",
                "format = \"tap\"",
            )
            .watchdog(Duration::from_secs(60)),
    );
    r.assert_code(0);
    assert!(hwm < 64 * 1024, "peak RSS {hwm} KiB\n{}", r.context);
    assert_eq!(
        std::fs::metadata(r.artifacts().join("logs/line.log"))
            .unwrap()
            .len(),
        134217728 + "TAP version 13\n1..1\nok 1 - a\n".len() as u64
    );
}

/// Thousands of processes left behind by a batch: all killed, the batch
/// `leaked` with its count, in bounded time; nothing is left (the harness
/// checks every process of the run is gone).
#[test]
fn thousands_of_processes_are_all_killed() {
    const N: usize = 2000;
    let script = format!("i=0; while [ $i -lt {N} ]; do sleep 1000 & i=$((i+1)); done; exit 0");
    let started = Instant::now();
    let r = Warden::new()
        .shell(
            "forks",
            &script,
            "grace = \"1s\"\ndrain = \"1s\"\nleak = \"fail\"",
        )
        .watchdog(Duration::from_secs(60))
        .run();
    r.assert_code(1);
    let case = r.case("forks");
    case.assert_status(Kind::Failure, Some("leaked"));
    let err = case.system_err.clone().unwrap_or_default();
    assert!(err.contains("leaked: pid"), "{}", r.context);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

/// Two wardens on one artifacts directory: the second is refused at start
/// (exit 2) naming the live run; the first is undisturbed; once it has
/// ended, the directory is free again.
#[test]
fn a_second_warden_on_the_same_artifacts_is_refused() {
    let first = Warden::new()
        .shell(
            "slow",
            "while [ ! -e go ]; do sleep 0.05; done; echo first",
            "",
        )
        .watchdog(Duration::from_secs(30));
    let artifacts = first.path_str("warden-artifacts");
    let go = first.path("go");
    let running = first.spawn();
    let lock = Path::new(&artifacts).join(".warden.lock");
    assert!(
        common::wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("pid"))
        }),
        "no lock file"
    );
    let second = Warden::new()
        .shell("other", "echo second", "")
        .args(["--artifacts", &artifacts])
        .run();
    second.assert_code(2);
    second.assert_stderr_contains(&format!(
        "artifacts directory {artifacts} is in use by another warden run (run {}-",
        running.pid()
    ));
    assert!(!Path::new(&artifacts).join("logs/other.log").exists());
    std::fs::write(&go, "").unwrap();
    let r = running.wait();
    r.assert_code(0);
    assert_eq!(r.log_text("slow"), "first\n");
    assert_eq!(r.junit().len(), 1);
    // Free again.
    let third = Warden::new()
        .shell("other", "echo third", "")
        .args(["--artifacts", &artifacts])
        .run();
    third.assert_code(0);
}

/// A tmpfs mounted on `dir` (made here), unmounted when the guard drops;
/// `None`, after saying why, where it can't be mounted (not root).
fn small_tmpfs(dir: &Path, size: &str) -> Option<Unmount> {
    std::fs::create_dir(dir).expect("create mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output();
    match mounted {
        Ok(o) if o.status.success() => Some(Unmount(dir.to_owned())),
        other => {
            eprintln!("skipping: cannot mount a tmpfs (needs root): {other:?}");
            None
        }
    }
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A tmpfs of 2 MiB as the artifacts directory, filled by the first batch.
/// The second, healthy batch's failure is said to be the disk's; the run
/// says its artifacts could not be written; the JUnit is still valid; the
/// warning counts what reached the log; no temp file is left.
#[test]
fn a_full_artifacts_filesystem_is_a_run_error() {
    for verbose in [false, true] {
        let w = Warden::new().watchdog(Duration::from_secs(30));
        let art = w.path("art");
        let Some(_unmount) = small_tmpfs(&art, "2m") else {
            return;
        };
        let mut w = w
            .run_section("max-parallel = 1")
            .shell("fill", "head -c 4000000 /dev/zero", "")
            .shell("healthy", "echo hello", "")
            .args(["--artifacts", art.to_str().unwrap()]);
        if verbose {
            w = w.arg("--verbose");
        }
        let r = w.run();
        r.assert_code(1);
        r.assert_stdout_contains(
            "Run error: artifacts could not be written, 2 of 2 logs may be incomplete",
        );
        if !verbose {
            // Its own write to its log (its stdout) failed: the reason says why.
            assert!(
                r.stdout
                    .contains("(its log could not be written: the filesystem is full;"),
                "{}",
                r.context
            );
        } else {
            // warden wrote the log: the warning counts what reached it.
            let log_len = std::fs::metadata(art.join("logs/fill.log")).unwrap().len();
            let want = format!("log write failed: {log_len} of 4000000 bytes reached the log");
            assert!(r.stdout.contains(&want), "want {want:?}\n{}", r.context);
        }
        // The JUnit file on the full disk is still a whole document.
        r.junit_at(&art.join("junit.xml"));
        let leftovers: Vec<_> = std::fs::read_dir(&art)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
        drop(_unmount);
    }
}

/// The same with the JUnit file elsewhere: it keeps every batch.
#[test]
fn junit_elsewhere_keeps_every_batch_when_artifacts_are_full() {
    let w = Warden::new().watchdog(Duration::from_secs(30));
    let art = w.path("art");
    let Some(_unmount) = small_tmpfs(&art, "1m") else {
        return;
    };
    let junit = w.path_str("junit.xml");
    let r = w
        .run_section("max-parallel = 1")
        .shell("fill", "head -c 2000000 /dev/zero", "")
        .shell("quiet", "true", "")
        .args(["--artifacts", art.to_str().unwrap(), "--junit", &junit])
        .run();
    r.assert_code(1);
    let cases = r.junit_at(Path::new(&junit));
    assert_eq!(cases.len(), 2, "{}", r.context);
    let quiet = cases.iter().find(|c| c.name == "quiet").expect("quiet");
    quiet.assert_status(Kind::Success, None);
    drop(_unmount);
}
