//! A running warden and what it left: [`Running`] (signal it, wait for
//! it under the watchdog) and [`Run`] (exit, output, logs, JUnit, and the
//! assertions tests make on them). Waiting cleans up first (leftover
//! processes, then cgroups) and then fails the test if there were any.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::builder::Warden;
use super::cgroups::{leftover_cgroups, remove_cgroup_tree};
use super::junit::{TestCase, parse_junit};
use super::procs::{is_live_marked, kill_marked};

/// A warden process started by [`Warden::spawn`].
/// Dropped without [`wait`](Running::wait) (a test failed first), it kills
/// warden and everything of its run.
pub struct Running {
    pid: libc::pid_t,
    inner: Option<Inner>,
}

struct Inner {
    warden: Warden,
    /// Kept so its pipes stay ours; it is reaped by `wait4`, never by `Child::wait`.
    child: Child,
    started: Instant,
    exited: mpsc::Receiver<(libc::c_int, libc::rusage)>,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        // SAFETY: not reaped yet (nobody received from `exited`), so the pid
        // still names our child.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let _ = inner.exited.recv_timeout(Duration::from_secs(10));
        kill_marked(&inner.warden.mark);
        for dir in leftover_cgroups(self.pid) {
            remove_cgroup_tree(&dir);
        }
    }
}

impl Running {
    /// Spawns the command `warden` built, with readers for its output and
    /// a thread that reaps it (with `wait4`, for its rusage).
    pub(super) fn start(warden: Warden, mut cmd: Command) -> Running {
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn warden");
        let stdout = match child.stdout.take() {
            Some(pipe) => reader(pipe),
            None => std::thread::spawn(Vec::new),
        };
        let stderr = reader(child.stderr.take().expect("stderr"));
        let (tx, exited) = mpsc::channel();
        let pid = child.id() as libc::pid_t;
        std::thread::spawn(move || {
            let _ = tx.send(wait4(pid));
        });
        Running {
            pid,
            inner: Some(Inner {
                warden,
                child,
                started,
                exited,
                stdout,
                stderr,
            }),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `sig` to the warden process.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: the pid is our child and not reaped before `wait`, so it
        // still names warden (or its zombie).
        unsafe { libc::kill(self.pid, sig) };
    }

    pub fn wait(mut self) -> Run {
        let pid = self.pid;
        let Inner {
            warden,
            child,
            started,
            exited,
            stdout,
            stderr,
        } = self.inner.take().expect("not waited yet");
        let (status, rusage, timed_out) = match exited.recv_timeout(warden.watchdog) {
            Ok((status, rusage)) => (status, rusage, false),
            Err(_) => {
                // SAFETY: the pid is our unreaped child (the waiter thread
                // reaps it only once it has exited), so it can't be reused.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let (status, rusage) = exited.recv().expect("waiter thread");
                (status, rusage, true)
            }
        };
        let elapsed = started.elapsed();
        drop(child);
        // Clean up first (processes, then the cgroups they were in), so that
        // a failing assertion below never leaves anything behind.
        let leftovers = kill_marked(&warden.mark);
        let cgroups = leftover_cgroups(pid);
        for dir in &cgroups {
            remove_cgroup_tree(dir);
        }
        let stdout = String::from_utf8_lossy(&stdout.join().expect("stdout reader")).into_owned();
        let stderr = String::from_utf8_lossy(&stderr.join().expect("stderr reader")).into_owned();
        let (code, signal) = if libc::WIFEXITED(status) {
            (Some(libc::WEXITSTATUS(status)), None)
        } else if libc::WIFSIGNALED(status) {
            (None, Some(libc::WTERMSIG(status)))
        } else {
            (None, None)
        };
        let context = format!(
            "config:\n{}\nexit code: {code:?} (signal {signal:?}), elapsed {elapsed:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            warden.config_text()
        );
        assert!(
            !timed_out,
            "warden did not finish within {:?}; killed it\n{context}",
            warden.watchdog
        );
        assert!(
            leftovers.is_empty(),
            "processes of this run were still alive after warden exited (now SIGKILLed):\n{}\n{context}",
            leftovers
                .iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            cgroups.is_empty(),
            "warden left its cgroups behind (now removed): {cgroups:?}\n{context}"
        );
        Run {
            code,
            signal,
            stdout,
            stderr,
            elapsed,
            max_rss_kib: rusage.ru_maxrss,
            context,
            warden,
        }
    }
}

fn reader(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn wait4(pid: libc::pid_t) -> (libc::c_int, libc::rusage) {
    let mut status = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
        if r == pid {
            return (status, rusage);
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.raw_os_error(), Some(libc::EINTR), "wait4: {err}");
    }
}

/// The result of one warden run.
pub struct Run {
    /// Exit code, if warden exited normally.
    pub code: Option<i32>,
    /// The signal that killed warden, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// warden's peak resident set size, from `wait4`.
    pub max_rss_kib: libc::c_long,
    /// Config and output, for assertion messages.
    pub context: String,
    warden: Warden,
}

impl Run {
    pub fn dir(&self) -> &Path {
        self.warden.dir()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.warden.path(rel)
    }

    pub fn mark(&self) -> &str {
        self.warden.mark()
    }

    /// The default artifacts directory: `./warden-artifacts` in the temp dir.
    pub fn artifacts(&self) -> PathBuf {
        self.path("warden-artifacts")
    }

    /// The bytes of a batch's log in the default artifacts directory.
    pub fn log(&self, batch: &str) -> Vec<u8> {
        let p = self.artifacts().join("logs").join(format!("{batch}.log"));
        fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}\n{}", p.display(), self.context))
    }

    pub fn log_text(&self, batch: &str) -> String {
        String::from_utf8_lossy(&self.log(batch)).into_owned()
    }

    /// The testcases of the JUnit file in the default place.
    pub fn junit(&self) -> Vec<TestCase> {
        self.junit_at(&self.artifacts().join("junit.xml"))
    }

    pub fn junit_at(&self, path: &Path) -> Vec<TestCase> {
        let xml = fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read {}: {e}\n{}", path.display(), self.context));
        parse_junit(&xml).unwrap_or_else(|e| panic!("bad JUnit: {e}\n{xml}\n{}", self.context))
    }

    /// The one testcase named `name`.
    pub fn case(&self, name: &str) -> TestCase {
        let cases = self.junit();
        let mut found: Vec<TestCase> = cases.into_iter().filter(|c| c.name == name).collect();
        assert_eq!(
            found.len(),
            1,
            "expected one testcase {name:?}\n{}",
            self.context
        );
        found.remove(0)
    }

    #[track_caller]
    pub fn assert_code(&self, want: i32) -> &Self {
        assert_eq!(self.code, Some(want), "exit code\n{}", self.context);
        self
    }

    #[track_caller]
    pub fn assert_stdout_contains(&self, want: &str) -> &Self {
        assert!(
            self.stdout.contains(want),
            "stdout lacks {want:?}\n{}",
            self.context
        );
        self
    }

    #[track_caller]
    pub fn assert_stderr_contains(&self, want: &str) -> &Self {
        assert!(
            self.stderr.contains(want),
            "stderr lacks {want:?}\n{}",
            self.context
        );
        self
    }

    /// The line of stdout reporting batch `name`'s finish (`    PASS [..] name...`).
    #[track_caller]
    pub fn finish_line(&self, name: &str) -> String {
        let lines: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| {
                let Some(rest) = l.split_once("] ").map(|(_, r)| r) else {
                    return false;
                };
                l.split_whitespace().next() != Some("START")
                    && (rest == name || rest.starts_with(&format!("{name}: ")))
            })
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one finish line for {name:?}\n{}",
            self.context
        );
        lines[0].to_string()
    }

    /// The `    WARN name: ...` lines for batch `name`.
    pub fn warn_lines(&self, name: &str) -> Vec<String> {
        let prefix = format!("    WARN {name}: ");
        self.stdout
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(str::to_string)
            .collect()
    }

    /// The summary line (`Success: P/N, ...`).
    #[track_caller]
    pub fn summary_line(&self) -> String {
        self.stdout
            .lines()
            .find(|l| l.starts_with("Success: "))
            .unwrap_or_else(|| panic!("no summary line\n{}", self.context))
            .to_string()
    }

    /// Asserts every pid listed (whitespace-separated) in `file` is gone:
    /// absent, a zombie, or a different process than ours (no marker).
    #[track_caller]
    pub fn assert_pids_gone(&self, file: &str) {
        let p = self.path(file);
        let text = fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read pid file {}: {e}\n{}", p.display(), self.context));
        let pids: Vec<i32> = text
            .split_whitespace()
            .map(|s| s.parse().expect("pid"))
            .collect();
        assert!(!pids.is_empty(), "empty pid file {}", p.display());
        for pid in pids {
            assert!(
                !is_live_marked(pid, self.mark()),
                "pid {pid} from {file} is still alive\n{}",
                self.context
            );
        }
    }
}
