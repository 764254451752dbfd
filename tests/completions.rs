//! `warden completions` and `warden man`: generated from the clap
//! definitions, non-empty, naming the subcommands and flags; the bash
//! script passes `bash -n` (zsh's `zsh -n`, fish's `fish --no-execute`
//! where those shells are installed), and the man pages render with groff
//! (or `man -l`) where either is installed; each check skips, saying why,
//! where its tool is missing.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::warden_bin;

fn warden(args: &[&str]) -> Output {
    Command::new(warden_bin())
        .args(args)
        .output()
        .expect("run warden")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).expect("UTF-8")
}

const SUBCOMMANDS: &[&str] = &[
    "run",
    "check",
    "init",
    "reap",
    "import",
    "flaky",
    "history",
    "serve",
    "hunt",
    "prune",
    "report",
    "completions",
    "man",
];

/// `shell ARGS… FILE` with the script in a file: Ok(true) if the shell
/// accepts it, Ok(false) (after printing why) if the shell isn't here.
fn shell_accepts(shell: &str, args: &[&str], script: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warden.completion");
    std::fs::write(&file, script).unwrap();
    match Command::new(shell)
        .args(args)
        .arg(&file)
        .stdin(Stdio::null())
        .output()
    {
        Err(e) => {
            eprintln!("skipping the {shell} syntax check: {shell} cannot run: {e}");
            false
        }
        Ok(o) => {
            assert!(
                o.status.success(),
                "{shell} rejects the script: {}\n{}",
                String::from_utf8_lossy(&o.stderr),
                script
            );
            true
        }
    }
}

#[test]
fn bash_completions_parse_and_name_subcommands_and_flags() {
    let script = stdout(&warden(&["completions", "bash"]));
    assert!(script.len() > 1000, "{script}");
    for sub in SUBCOMMANDS {
        assert!(script.contains(sub), "no {sub}");
    }
    for flag in [
        "--max-parallel",
        "--history",
        "--selftests",
        "--older-than",
        "--pid-namespace",
    ] {
        assert!(script.contains(flag), "no {flag}");
    }
    // bash is what the harness itself needs: it must be here.
    assert!(shell_accepts("bash", &["-n"], &script));
}

#[test]
fn zsh_and_fish_completions() {
    let zsh = stdout(&warden(&["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef warden"), "{zsh}");
    let fish = stdout(&warden(&["completions", "fish"]));
    for script in [&zsh, &fish] {
        for word in ["init", "completions", "max-parallel", "older-than"] {
            assert!(script.contains(word), "no {word} in {script}");
        }
    }
    shell_accepts("zsh", &["-n"], &zsh);
    shell_accepts("fish", &["--no-execute"], &fish);
    // A reader that went away (`| head`) is no panic and no failure.
    let sub_commands: [&[&str]; 2] = [&["completions", "fish"], &["man"]];
    for args in sub_commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(warden_bin())
            .args(args)
            .stdout(writer)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
    // An unknown shell is a usage error.
    let o = warden(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
}

/// groff's plain-text rendering of a roff page (`-k`: its UTF-8 read as such), or None (said why) when
/// neither groff nor man is here.
fn render(page: &Path) -> Option<String> {
    let attempts: [(&str, &[&str]); 2] = [("groff", &["-k", "-man", "-Tutf8"]), ("man", &["-l"])];
    for (tool, args) in attempts {
        let out = Command::new(tool)
            .args(args)
            .arg(page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {
                // Bold and underline are overstrikes: `X\bX`, `_\bX`.
                let text = String::from_utf8_lossy(&o.stdout);
                let mut plain = String::new();
                let mut chars = text.chars().peekable();
                while let Some(c) = chars.next() {
                    if chars.peek() == Some(&'\u{8}') {
                        chars.next();
                        continue;
                    }
                    plain.push(c);
                }
                return Some(plain);
            }
            Ok(o) => panic!(
                "{tool} fails on {}: {}",
                page.display(),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(_) => continue,
        }
    }
    eprintln!("skipping rendering: neither groff nor man is installed");
    None
}

#[test]
fn man_page_on_stdout_and_one_per_subcommand() {
    let page = stdout(&warden(&["man"]));
    assert!(page.contains(".TH warden 1"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!("warden\\-{sub}(1)")),
            "no {sub}: {page}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let o = warden(&["man", "--dir", pages.to_str().unwrap()]);
    let said = stdout(&o);
    assert!(said.contains("warden-run.1"), "{said}");
    let mut names: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for want in [
        "warden.1",
        "warden-run.1",
        "warden-init.1",
        "warden-import-junit.1",
    ] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    assert_eq!(
        std::fs::read_to_string(pages.join("warden.1")).unwrap(),
        page
    );
    let Some(run) = render(&pages.join("warden-run.1")) else {
        return;
    };
    for want in [
        "warden-run",
        "--max-parallel",
        "--deadline",
        "fires at deadline − reserve",
    ] {
        assert!(run.contains(want), "no {want} in the rendered page:\n{run}");
    }
    let init = render(&pages.join("warden-init.1")).unwrap();
    for want in ["--force", "--selftests", "--dir"] {
        assert!(
            init.contains(want),
            "no {want} in the rendered page:\n{init}"
        );
    }
}
