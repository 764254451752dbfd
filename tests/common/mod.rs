//! Test harness for warden's integration tests, in the style of `just`'s:
//! a builder that writes a config into a fresh temporary directory, runs the
//! real `warden` binary there, and returns everything a test wants to look
//! at (exit code, output, elapsed time, logs, parsed JUnit).
//!
//! Every run carries a unique `WARDEN_TEST_MARK=<value>` in its environment,
//! which every batch process inherits. After warden exits, `/proc` is
//! scanned for live processes with exactly that entry: any found is a leak
//! (recorded, then SIGKILLed, then the test fails), so no test can leave
//! processes behind unnoticed.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

pub mod history_seed;
pub mod http;
#[macro_use]
pub mod postgres;

/// The environment variable marking every process of one test's run.
pub const MARK_VAR: &str = "WARDEN_TEST_MARK";

/// Runs a future to completion on a fresh current-thread runtime: for the
/// synchronous tests that look into a history store with sqlx.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// How long a run may take before the harness kills warden and fails the test.
const DEFAULT_WATCHDOG: Duration = Duration::from_secs(20);

/// Path to the warden binary under test.
pub fn warden_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_warden"))
}

/// Absolute path of a fixture program in `tests/fixtures`.
pub fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    assert!(p.exists(), "no fixture {}", p.display());
    p.to_str().expect("fixture paths are UTF-8").to_string()
}

/// A TOML basic string holding `s`.
pub fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML array of strings.
pub fn q_array<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<String> = items.iter().map(|s| q(s.as_ref())).collect();
    format!("[{}]", parts.join(", "))
}

/// Which `--containment` a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containment {
    /// Nothing on the command line (warden's default, `auto`).
    Default,
    Cgroup,
    Pgroup,
}

impl Containment {
    fn flag(self) -> Option<&'static str> {
        match self {
            Containment::Default => None,
            Containment::Cgroup => Some("cgroup"),
            Containment::Pgroup => Some("pgroup"),
        }
    }
}

/// Why cgroup containment can't be tested here, or `None` if it can.
/// Decided once per test binary by running warden on a trivial config.
pub fn cgroup_unavailable() -> Option<String> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Some("not running as root".into());
        }
        let r = Warden::with(Containment::Cgroup)
            .batch(
                r#"name = "probe"
                      shell = "true""#,
            )
            .run();
        if r.code == Some(2) && r.stderr.contains("cgroup") {
            return Some(format!(
                "cgroup containment unavailable: {}",
                r.stderr.trim()
            ));
        }
        None
    })
    .clone()
}

/// Builds one warden invocation in its own temporary directory.
pub struct Warden {
    dir: TempDir,
    containment: Containment,
    /// Config path relative to `dir`.
    config_path: PathBuf,
    /// Whole config text; when `None` it is generated from the parts below.
    raw_config: Option<String>,
    write_config: bool,
    run_section: Vec<String>,
    defaults: Vec<String>,
    batches: Vec<String>,
    /// Raw TOML appended after the batches (`[[setup]]`, `[[post]]`).
    extra: Vec<String>,
    /// Arguments after `warden`; `run` is prepended unless `subcommand` says otherwise.
    subcommand: String,
    args: Vec<OsString>,
    env: BTreeMap<String, String>,
    watchdog: Duration,
    mark: String,
    /// Give warden a stdout whose reader is already gone (EPIPE on write).
    broken_stdout: bool,
    /// Run warden as this uid and gid (the test runs as root).
    user: Option<(u32, u32)>,
}

impl Default for Warden {
    fn default() -> Self {
        Warden::new()
    }
}

impl Warden {
    /// A run with warden's default containment (none given on the command line).
    pub fn new() -> Warden {
        Warden::with(Containment::Default)
    }

    pub fn with(containment: Containment) -> Warden {
        let dir = tempfile::Builder::new()
            .prefix("warden-it-")
            .tempdir()
            .expect("create temp dir");
        Warden {
            dir,
            containment,
            config_path: PathBuf::from("warden.toml"),
            raw_config: None,
            write_config: true,
            run_section: Vec::new(),
            defaults: Vec::new(),
            batches: Vec::new(),
            extra: Vec::new(),
            subcommand: "run".into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            watchdog: DEFAULT_WATCHDOG,
            mark: new_mark(),
            broken_stdout: false,
            user: None,
        }
    }

    pub fn pgroup() -> Warden {
        Warden::with(Containment::Pgroup)
    }

    /// `None` (after saying why on stderr) when cgroup containment can't be used here.
    pub fn cgroup() -> Option<Warden> {
        if let Some(why) = cgroup_unavailable() {
            eprintln!("skipping: {why}");
            return None;
        }
        Some(Warden::with(Containment::Cgroup))
    }

    pub fn containment(&self) -> Containment {
        self.containment
    }

    /// The temporary directory: warden's cwd, and where the config lives by default.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the temporary directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A path inside the temporary directory, as a string for TOML or argv.
    pub fn path_str(&self, rel: &str) -> String {
        self.path(rel)
            .to_str()
            .expect("UTF-8 temp path")
            .to_string()
    }

    /// The marker value every process of this run carries.
    pub fn mark(&self) -> &str {
        &self.mark
    }

    /// Use this whole text as the config file.
    pub fn config(mut self, toml: &str) -> Self {
        self.raw_config = Some(toml.to_string());
        self
    }

    /// Appends raw TOML after the batches, e.g. `[[setup]]` or `[[post]]` tables.
    pub fn config_append(mut self, toml: &str) -> Self {
        self.extra.push(toml.to_string());
        self
    }

    /// Writes no config file at all.
    pub fn no_config(mut self) -> Self {
        self.write_config = false;
        self
    }

    /// Where the config file goes, relative to the temp dir (`-c` is passed
    /// when it isn't the default `warden.toml`).
    pub fn config_at(mut self, rel: &str) -> Self {
        self.config_path = PathBuf::from(rel);
        self
    }

    /// Lines for `[run]`.
    pub fn run_section(mut self, toml: &str) -> Self {
        self.run_section.push(toml.to_string());
        self
    }

    /// Lines for `[defaults]`.
    pub fn defaults(mut self, toml: &str) -> Self {
        self.defaults.push(toml.to_string());
        self
    }

    /// One `[[batch]]` table's body, raw TOML.
    pub fn batch(mut self, toml: &str) -> Self {
        self.batches.push(toml.to_string());
        self
    }

    /// A batch running a fixture with arguments, plus extra raw TOML keys.
    pub fn fixture(self, name: &str, program: &str, args: &[&str], extra: &str) -> Self {
        let mut argv = vec![fixture(program)];
        argv.extend(args.iter().map(|s| s.to_string()));
        let toml = format!("name = {}\ncommand = {}\n{extra}", q(name), q_array(&argv));
        self.batch(&toml)
    }

    /// A batch running a shell script, plus extra raw TOML keys.
    pub fn shell(self, name: &str, script: &str, extra: &str) -> Self {
        let toml = format!(
            "name = {}\nshell = {}\n{extra}",
            q(name),
            q(script),
            extra = extra
        );
        self.batch(&toml)
    }

    /// Runs `warden check` instead of `warden run`.
    pub fn check(mut self) -> Self {
        self.subcommand = "check".into();
        self
    }

    /// Replaces the subcommand (`""` for none).
    pub fn subcommand(mut self, sub: &str) -> Self {
        self.subcommand = sub.into();
        self
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable for the warden process (and so every batch).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// warden's stdout is a pipe nobody reads (its read end is closed), as
    /// when piped to `head` that has exited or a log collector that died.
    /// Runs warden as `uid`/`gid` with no supplementary groups (the test
    /// must run as root); its directory becomes writable for everyone.
    pub fn run_as(mut self, uid: u32, gid: u32) -> Self {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(self.dir.path(), fs::Permissions::from_mode(0o777))
            .expect("chmod test dir");
        self.user = Some((uid, gid));
        self
    }

    pub fn broken_stdout(mut self) -> Self {
        self.broken_stdout = true;
        self
    }

    /// How long warden may run before the harness gives up on it.
    pub fn watchdog(mut self, limit: Duration) -> Self {
        self.watchdog = limit;
        self
    }

    /// The config text this run will use.
    pub fn config_text(&self) -> String {
        if let Some(raw) = &self.raw_config {
            return raw.clone();
        }
        let mut text = String::new();
        if !self.run_section.is_empty() {
            text.push_str("[run]\n");
            for part in &self.run_section {
                text.push_str(part);
                text.push('\n');
            }
            text.push('\n');
        }
        if !self.defaults.is_empty() {
            text.push_str("[defaults]\n");
            for part in &self.defaults {
                text.push_str(part);
                text.push('\n');
            }
            text.push('\n');
        }
        for b in &self.batches {
            text.push_str("[[batch]]\n");
            for line in b.lines() {
                text.push_str(line.trim_start());
                text.push('\n');
            }
            text.push('\n');
        }
        for part in &self.extra {
            text.push_str(part);
            text.push('\n');
        }
        text
    }

    /// Writes the config and starts warden; see [`Running::wait`].
    pub fn spawn(self) -> Running {
        let config = self.dir.path().join(&self.config_path);
        if let Some(parent) = config.parent() {
            fs::create_dir_all(parent).expect("create config dir");
        }
        if self.write_config {
            fs::write(&config, self.config_text()).expect("write config");
        }

        let mut cmd = Command::new(warden_bin());
        if !self.subcommand.is_empty() {
            cmd.arg(&self.subcommand);
        }
        if self.config_path != Path::new("warden.toml") {
            cmd.arg("-c").arg(&self.config_path);
        }
        if let Some(flag) = self.containment.flag().filter(|_| self.subcommand == "run") {
            cmd.arg("--containment").arg(flag);
        }
        let stdout = if self.broken_stdout {
            let (reader, writer) = std::io::pipe().expect("pipe");
            drop(reader);
            Stdio::from(writer)
        } else {
            Stdio::piped()
        };
        cmd.args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            // Whatever the environment of the test runner says, these are ours to set.
            .env_remove("WARDEN_CONTAINMENT")
            .env_remove("WARDEN_PID_NAMESPACE")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("WARDEN_RUN")
            .env_remove("WARDEN_BATCH")
            .env_remove("WARDEN_HISTORY")
            .env_remove("GITHUB_SHA")
            .env_remove("CI_COMMIT_SHA")
            .env_remove("SEMAPHORE_GIT_SHA")
            .env("NO_COLOR", "1")
            .env(MARK_VAR, &self.mark)
            .envs(&self.env);
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            // std drops the supplementary groups when root sets a uid.
            cmd.uid(uid).gid(gid);
        }
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
                warden: self,
                child,
                started,
                exited,
                stdout,
                stderr,
            }),
        }
    }

    /// Runs warden to completion. Fails the test if warden outlives the
    /// watchdog or leaves any process of its run behind.
    pub fn run(self) -> Run {
        self.spawn().wait()
    }
}

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

/// The cgroup2 mount point (`/sys/fs/cgroup`, else `/sys/fs/cgroup/unified`,
/// as warden probes them) and our own cgroup's directory under it.
pub fn cgroup2() -> Option<(PathBuf, PathBuf)> {
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own.lines().find_map(|l| l.strip_prefix("0::"))?.to_string();
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut mounts: Vec<(String, String)> = info
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            if post.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            let mut f = pre.split_whitespace();
            let root = f.nth(3)?.to_string();
            Some((f.next()?.to_string(), root))
        })
        .collect();
    mounts.sort_by_key(|(m, _)| match m.as_str() {
        "/sys/fs/cgroup" => 0,
        "/sys/fs/cgroup/unified" => 1,
        _ => 2,
    });
    let (mount, root) = mounts.into_iter().next()?;
    let inside = match own.strip_prefix(&root) {
        Some(rest) if root != "/" => rest.to_string(),
        _ => own,
    };
    let mount = PathBuf::from(mount);
    let parent = mount.join(inside.trim_start_matches('/'));
    Some((mount, parent))
}

/// The directory under which warden (inheriting our cgroup) creates its run's
/// cgroup, if there is a cgroup2 hierarchy.
pub fn cgroup_parent() -> Option<PathBuf> {
    cgroup2().map(|(_, parent)| parent)
}

/// cgroup directories of the warden run with this pid that still exist
/// (run ids are `<pid>-<start time>`).
pub fn leftover_cgroups(warden_pid: i32) -> Vec<PathBuf> {
    let Some(parent) = cgroup_parent() else {
        return Vec::new();
    };
    let prefix = format!("warden-{warden_pid}-");
    fs::read_dir(&parent)
        .map(|dir| {
            dir.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes a cgroup directory and the ones below it (bottom-up). Only called
/// on the run cgroup of a warden we started, after its processes were killed.
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    // A cgroup stays busy for a moment after its last process is gone.
    wait_until(Duration::from_secs(5), || match fs::remove_dir(dir) {
        Err(e) => e.raw_os_error() != Some(libc::EBUSY),
        Ok(()) => true,
    });
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

fn new_mark() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let test = std::thread::current()
        .name()
        .unwrap_or("test")
        .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    format!("{test}-{}-{n}-{nanos}", std::process::id())
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

// ---------------------------------------------------------------------------
// Processes carrying the marker.

/// A live process found carrying a run's marker.
#[derive(Debug, Clone)]
pub struct Leftover {
    pub pid: i32,
    pub state: char,
    pub cmdline: String,
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} state {} cmdline {:?}",
            self.pid, self.state, self.cmdline
        )
    }
}

/// `PF_EXITING` in `/proc/<pid>/stat`'s flags: the process is being torn down.
const PF_EXITING: u64 = 0x4;

/// State and flags from `/proc/<pid>/stat`.
fn stat_of(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // After state: ppid pgrp session tty_nr tpgid flags.
    let flags = fields.nth(5)?.parse().ok()?;
    Some((state, flags))
}

/// Whether `/proc/<pid>/environ` holds exactly `MARK_VAR=mark` as one entry.
fn has_mark(pid: i32, mark: &str) -> bool {
    let want = format!("{MARK_VAR}={mark}");
    match fs::read(format!("/proc/{pid}/environ")) {
        Ok(env) => env.split(|&b| b == 0).any(|e| e == want.as_bytes()),
        Err(_) => false,
    }
}

/// Whether a SIGKILL is queued for the process (e.g. its PDEATHSIG, sent as
/// its parent died): it is dead as soon as it is next scheduled.
fn sigkill_pending(pid: i32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let bit = 1u64 << (libc::SIGKILL - 1);
    status.lines().any(|l| {
        let mask = l
            .strip_prefix("SigPnd:")
            .or_else(|| l.strip_prefix("ShdPnd:"));
        mask.and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & bit != 0)
    })
}

/// Alive: exists, not a zombie, not already exiting, no SIGKILL pending.
fn is_alive(pid: i32) -> Option<char> {
    let (state, flags) = stat_of(pid)?;
    if matches!(state, 'Z' | 'X' | 'x') || flags & PF_EXITING != 0 || sigkill_pending(pid) {
        return None;
    }
    Some(state)
}

fn is_live_marked(pid: i32, mark: &str) -> bool {
    is_alive(pid).is_some() && has_mark(pid, mark)
}

/// Live processes carrying exactly `MARK_VAR=mark`.
pub fn marked_processes(mark: &str) -> Vec<Leftover> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me || !has_mark(pid, mark) {
            continue;
        }
        let Some(state) = is_alive(pid) else { continue };
        let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|raw| {
                String::from_utf8_lossy(&raw)
                    .trim_end_matches('\0')
                    .replace('\0', " ")
            })
            .unwrap_or_default();
        found.push(Leftover {
            pid,
            state,
            cmdline,
        });
    }
    found
}

/// Finds the live processes carrying the marker, then SIGKILLs exactly those
/// (each pinned with a pidfd and re-checked before the signal) and waits for
/// them to go. Returns what was found.
pub fn kill_marked(mark: &str) -> Vec<Leftover> {
    let found = marked_processes(mark);
    for p in &found {
        // SAFETY: plain syscalls with valid arguments.
        unsafe {
            let fd = libc::syscall(libc::SYS_pidfd_open, p.pid, 0) as libc::c_int;
            if fd < 0 {
                continue;
            }
            if has_mark(p.pid, mark) {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd,
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                );
            }
            libc::close(fd);
        }
    }
    // Wait until they are really gone (reaped or zombies), not just dying,
    // so their cgroups can be removed.
    let gone = |pid: i32| stat_of(pid).is_none_or(|(state, _)| matches!(state, 'Z' | 'X' | 'x'));
    wait_until(Duration::from_secs(10), || {
        found.iter().all(|p| gone(p.pid)) && marked_processes(mark).is_empty()
    });
    found
}

// ---------------------------------------------------------------------------
// JUnit.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Success,
    Failure,
    Error,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    pub name: String,
    pub classname: String,
    pub kind: Kind,
    /// `type` of the `<failure>`/`<error>` element.
    pub ty: Option<String>,
    pub message: Option<String>,
    pub system_out: Option<String>,
    pub system_err: Option<String>,
}

impl TestCase {
    pub fn message(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }

    pub fn out(&self) -> &str {
        self.system_out.as_deref().unwrap_or("")
    }

    pub fn err(&self) -> &str {
        self.system_err.as_deref().unwrap_or("")
    }

    #[track_caller]
    pub fn assert_status(&self, kind: Kind, ty: Option<&str>) -> &Self {
        assert_eq!(
            (self.kind, self.ty.as_deref()),
            (kind, ty),
            "testcase {self:#?}"
        );
        self
    }
}

fn status_of(name: &[u8], a: &BTreeMap<String, String>, case: &mut TestCase) {
    let kind = match name {
        b"failure" => Kind::Failure,
        b"error" => Kind::Error,
        b"skipped" => Kind::Skipped,
        _ => return,
    };
    case.kind = kind;
    case.ty = a.get("type").cloned();
    case.message = a.get("message").cloned();
}

/// The testcases of a JUnit document, in document order.
pub fn parse_junit(xml: &str) -> Result<Vec<TestCase>, String> {
    use quick_xml::events::{BytesStart, Event};

    fn attrs(e: &BytesStart) -> Result<BTreeMap<String, String>, String> {
        let mut map = BTreeMap::new();
        for a in e.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| e.to_string())?
                .into_owned();
            map.insert(key, value);
        }
        Ok(map)
    }

    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut cases = Vec::new();
    let mut current: Option<TestCase> = None;
    // The system-out/system-err element we are in, and its text so far.
    let mut text_of: Option<(String, String)> = None;
    let mut depth = 0usize;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| format!("at {}: {e}", reader.buffer_position()))?;
        match ev {
            Event::Eof => break,
            Event::Start(ref e) | Event::Empty(ref e) if e.name().as_ref() == b"testcase" => {
                let empty = matches!(ev, Event::Empty(_));
                let a = attrs(e)?;
                let case = TestCase {
                    name: a.get("name").cloned().unwrap_or_default(),
                    classname: a.get("classname").cloned().unwrap_or_default(),
                    kind: Kind::Success,
                    ty: None,
                    message: None,
                    system_out: None,
                    system_err: None,
                };
                if empty {
                    cases.push(case);
                } else {
                    depth += 1;
                    current = Some(case);
                }
            }
            Event::Start(e) => {
                depth += 1;
                if let Some(case) = current.as_mut() {
                    let name = e.name().as_ref().to_vec();
                    status_of(&name, &attrs(&e)?, case);
                    if name == b"system-out" || name == b"system-err" {
                        text_of =
                            Some((String::from_utf8_lossy(&name).into_owned(), String::new()));
                    }
                }
            }
            Event::Empty(e) => {
                if let Some(case) = current.as_mut() {
                    let name = e.name().as_ref().to_vec();
                    status_of(&name, &attrs(&e)?, case);
                    if name == b"system-out" {
                        case.system_out = Some(String::new());
                    } else if name == b"system-err" {
                        case.system_err = Some(String::new());
                    }
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                let name = e.name().as_ref().to_vec();
                if name == b"testcase" {
                    cases.extend(current.take());
                } else if let (Some((el, text)), Some(case)) = (&text_of, current.as_mut())
                    && el.as_bytes() == name.as_slice()
                {
                    if name == b"system-out" {
                        case.system_out = Some(text.clone());
                    } else {
                        case.system_err = Some(text.clone());
                    }
                    text_of = None;
                }
            }
            Event::Text(t) => {
                if let Some((_, text)) = text_of.as_mut() {
                    text.push_str(&t.xml10_content().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(t) => {
                if let Some((_, text)) = text_of.as_mut() {
                    text.push_str(&t.decode().map_err(|e| e.to_string())?);
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, text)) = text_of.as_mut() {
                    if let Some(c) = r.resolve_char_ref().map_err(|e| e.to_string())? {
                        text.push(c);
                    } else {
                        let name = r.decode().map_err(|e| e.to_string())?;
                        let v = quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("unknown entity &{name};"))?;
                        text.push_str(v);
                    }
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced elements".into());
    }
    Ok(cases)
}

// ---------------------------------------------------------------------------
// Small helpers.

/// Polls `cond` every few milliseconds until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Generates a `cgroup` and a `pgroup` test from one body, in a module named
/// after the test: `name::cgroup` (skipped with a message when cgroup
/// containment is unavailable) and `name::pgroup`. Attributes before `fn`
/// apply to both; `cgroup #[..]` / `pgroup #[..]` to one only.
#[allow(unused_macros)]
macro_rules! both_containments {
    (
        $(#[$meta:meta])*
        $(cgroup #[$cmeta:meta])*
        $(pgroup #[$pmeta:meta])*
        fn $name:ident($w:ident) $body:block
    ) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            $(#[$cmeta])*
            #[test]
            fn cgroup() {
                let Some($w) = $crate::common::Warden::cgroup() else {
                    return;
                };
                $body
            }

            $(#[$meta])*
            $(#[$pmeta])*
            #[test]
            fn pgroup() {
                let $w = $crate::common::Warden::pgroup();
                $body
            }
        }
    };
}
