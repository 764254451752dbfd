//! The builder of one warden invocation: a config written into a fresh
//! temporary directory, the command line, the environment (every run
//! marked with its own [`MARK_VAR`] value), and how long it may take.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use super::MARK_VAR;
use super::cgroups::cgroup_unavailable;
use super::run::{Run, Running};

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
    pub(super) watchdog: Duration,
    pub(super) mark: String,
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

    /// Runs warden as `uid`/`gid` with no supplementary groups (the test
    /// must run as root); its directory becomes writable for everyone.
    pub fn run_as(mut self, uid: u32, gid: u32) -> Self {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(self.dir.path(), fs::Permissions::from_mode(0o777))
            .expect("chmod test dir");
        self.user = Some((uid, gid));
        self
    }

    /// warden's stdout is a pipe nobody reads (its read end is closed), as
    /// when piped to `head` that has exited or a log collector that died.
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
            .env_remove("TRACEPARENT")
            .env("NO_COLOR", "1");
        // The OpenTelemetry exporter's variables (endpoint, protocol,
        // certificates…): only those a test sets.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("OTEL_") {
                cmd.env_remove(k);
            }
        }
        cmd.env(MARK_VAR, &self.mark).envs(&self.env);
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            // std drops the supplementary groups when root sets a uid.
            cmd.uid(uid).gid(gid);
        }
        Running::start(self, cmd)
    }

    /// Runs warden to completion. Fails the test if warden outlives the
    /// watchdog or leaves any process of its run behind.
    pub fn run(self) -> Run {
        self.spawn().wait()
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
