//! Untrusted text is inert everywhere a person reads it: a batch whose test
//! name carries OSC/CSI sequences, a CR, a BEL and a bidi override, run
//! under a pseudo-terminal (so the progress display and colour are on),
//! then its summary Markdown, `warden history` and the dashboard. The JUnit
//! keeps the name (as XML allows).

#[macro_use]
mod common;

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::http;

/// The hostile test name as the batch prints it: sets the terminal title
/// (OSC 0, BEL-terminated), clears the screen, returns the carriage to
/// overwrite, and reverses what follows (`exe.txt` reads `txt.exe`).
const NAME: &str = "evil\x1b]0;pwned\x07\x1b[2J\rX\u{202e}exe.txt";
/// As it must show.
const SHOWN: &str = "evil\\e]0;pwned\\x07\\e[2J\\rX\\u{202e}exe.txt";

/// A pseudo-terminal: (master, slave).
fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors into the given ints; the name,
    // termios and winsize pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both were just opened and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

fn warden() -> Command {
    let mut cmd = Command::new(common::warden_bin());
    for var in [
        "WARDEN_CONTAINMENT",
        "GITHUB_STEP_SUMMARY",
        "WARDEN_HISTORY",
        "NO_COLOR",
        "WARDEN_RUN",
        "WARDEN_BATCH",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn hostile_names_are_inert_on_the_terminal_in_markdown_tables_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("evil.sh");
    std::fs::write(
        &script,
        format!(
            "printf '%s\\n' 'TAP version 13' '1..2' 'ok 1 - fine' 'not ok 2 - {NAME}'\nexit 1\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("warden.toml"),
        format!(
            "[[batch]]\nname = \"evil\"\ncommand = [\"sh\", {:?}]\nformat = \"tap\"\n",
            script.to_str().unwrap()
        ),
    )
    .unwrap();
    let store = format!("sqlite:{}", dir.path().join("history.db").display());
    let md = dir.path().join("summary.md");

    // Under a terminal: progress display, colour.
    let (master, slave) = openpty();
    let mut child = warden()
        .args(["run", "--history", &store])
        .current_dir(dir.path())
        .env("TERM", "xterm")
        .env("GITHUB_STEP_SUMMARY", &md)
        .env(common::MARK_VAR, "inert")
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    // Read until the last holder of the slave (warden, its batch) closes it.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut f = File::from(master);
        let mut buf = [0; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break, // EIO once the slave is closed
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        out
    });
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let out = reader.join().unwrap();
    let text = String::from_utf8_lossy(&out);
    // Drawn as a terminal: our colour is there.
    assert!(text.contains("\x1b[1;31m"), "no colour: {text:?}");
    // Nothing of the name's sequences reached the terminal raw.
    for raw in ["\x1b]", "\x1b[2J", "\x07", "\rX", "\u{202e}"] {
        assert!(!text.contains(raw), "raw {raw:?} on the terminal: {text:?}");
    }
    // The terminal's own line discipline turns \n into \r\n.
    assert!(
        text.contains(SHOWN),
        "{SHOWN} not on the terminal: {text:?}"
    );

    // The JUnit keeps the name (ESC, BEL as XML allows them: U+FFFD).
    let junit = std::fs::read_to_string(dir.path().join("warden-artifacts/junit.xml"))
        .or_else(|_| {
            // Wherever the artifacts went: find junit.xml under the directory.
            let found = walk(dir.path(), "junit.xml").expect("a junit.xml");
            std::fs::read_to_string(found)
        })
        .unwrap();
    assert!(junit.contains("\u{202e}exe.txt"), "{junit}");

    // Markdown: visible, not raw.
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(!md.contains(['\x1b', '\x07', '\r', '\u{202e}']), "{md:?}");
    assert!(md.contains("\\u{202e}exe.txt"), "{md}");

    // `warden history`: the header and the table.
    let out = warden()
        .args(["history", "--history", &store, "exe.txt"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains(['\x1b', '\x07', '\r', '\u{202e}']),
        "{stdout:?}"
    );
    assert!(stdout.contains(SHOWN), "{stdout}");
    // `warden flaky` and `durations --tests` list it too, as text.
    for args in [&["flaky"][..], &["durations", "--tests"][..]] {
        let out = warden()
            .args(args)
            .args(["--history", &store])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains(['\x1b', '\x07', '\r', '\u{202e}']),
            "{args:?}: {stdout:?}"
        );
    }

    // The dashboard: the test's page and the run's page.
    let mut serve = warden()
        .args(["serve", "--bind", "127.0.0.1:0", "--history", &store])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = Vec::new();
    let mut stdout = serve.stdout.take().unwrap();
    let mut byte = [0];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let line = String::from_utf8(line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    let name: String = form_urlencoded(&format!("evil/{NAME}"));
    let runs = http::get(&format!("{url}/api/runs"));
    let uuid = runs.json()[0]["uuid"].as_str().unwrap().to_owned();
    for path in [
        format!("/test?name={name}"),
        format!("/runs/{uuid}"),
        "/flaky".to_owned(),
    ] {
        let r = http::get(&format!("{url}{path}"));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(
            !r.body.contains(['\x1b', '\x07', '\r', '\u{202e}']),
            "{path}: {:?}",
            r.body
        );
        if path != "/flaky" {
            assert!(r.body.contains("\\u{202e}exe.txt"), "{path}: {}", r.body);
        }
    }
    // The JSON keeps the name as data.
    let api = http::get(&format!("{url}/api/test?name={name}"));
    assert_eq!(api.status, 200, "{}", api.body);
    assert!(api.body.contains("\u{202e}exe.txt"), "{}", api.body);
    // Our own child, by its pid.
    // SAFETY: kill(2) on a pid we spawned and have not reaped.
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    assert!(
        common::wait_until(Duration::from_secs(10), || serve
            .try_wait()
            .unwrap()
            .is_some()),
        "serve did not stop"
    );
}

fn form_urlencoded(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn walk(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()? {
        let p = e.ok()?.path();
        if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
        if p.is_dir()
            && let Some(found) = walk(&p, name)
        {
            return Some(found);
        }
    }
    None
}
