//! A throwaway PostgreSQL server for integration tests, run from the
//! machine's own server binaries (Debian's `/usr/lib/postgresql/<v>/bin`,
//! newest version first, else `initdb` on `PATH`).
//!
//! Each server lives in its own directory under `/dev/shm` when that is a
//! tmpfs with at least 1 GiB free, else under `/tmp` (never `$TMPDIR`: the
//! unprivileged server user must be able to reach it, and the socket path
//! must stay short). On this project's build machine a tmpfs halves
//! `initdb` (0.7 s instead of 1.4 s) and makes `createdb` ten times faster
//! (0.05 s instead of 0.5 s); the size check keeps it off the 64 MiB
//! `/dev/shm` of a default Docker container.
//!
//! ```text
//! /dev/shm/warden-pg-XXXXXX/
//!     data/        initdb -A trust -U postgres -N
//!     sock/        the only listening socket: listen_addresses='' -k sock/
//!     server.log   the postmaster's stdout and stderr
//! ```
//!
//! `initdb` refuses to run as root, so when the tests run as root the
//! server (and `initdb`) run as `nobody` (uid/gid 65534) and the directory
//! is chowned to it; otherwise they run as the current user. Client tools
//! (`createdb`) and sqlx connect over the socket as the current user with
//! `trust` authentication.
//!
//! # Lifetime: a watchdog per server
//!
//! The postmaster is not started by the test process itself but by a tiny
//! `sh` wrapper (see [`WATCHDOG`]) whose stdin is a pipe from the test
//! process. The wrapper starts `postgres` in the background, reports its
//! pid, and blocks reading stdin. When it sees end-of-file it sends the
//! postmaster SIGQUIT (immediate shutdown: the postmaster kills its
//! backends and waits for them), reaps it, and removes the directory.
//!
//! End-of-file comes either from [`PgServer`]'s `Drop` (which closes the
//! pipe and then waits for the wrapper to finish) or, because the kernel
//! closes every descriptor of an exiting process, from the test process
//! exiting in any way at all: normal exit, panic=abort, SIGKILL. The pipe
//! is close-on-exec, so no other child of the test process holds it open.
//! The wrapper runs in its own process group so that a Ctrl-C on `cargo
//! test` doesn't kill it before it has cleaned up. Only the pid the wrapper
//! itself started is ever signalled; nothing is matched by name.
//!
//! That makes two ways of using it equally safe:
//!
//! * [`PgServer::start`]: a server owned by one test, stopped and removed
//!   when dropped. Used where a test needs the server itself (to stop it, to
//!   check its processes).
//! * [`PgServer::shared`]: one server per test binary, started by the first
//!   test that asks for it and kept in a `static`. Statics are never
//!   dropped, so this relies on the watchdog: the server goes away when the
//!   test binary exits. Tests that only need a database should use this
//!   together with [`PgServer::fresh_database`]: a start (initdb + server
//!   start) takes about 0.6 s on a tmpfs (1.5 s on disk), a `createdb`
//!   about 0.05 s (0.5 s).
//!
//! Tests get a skip (`Err(reason)`) only when no server binaries exist;
//! any other failure (initdb, a server that doesn't come up within 30 s,
//! createdb) panics with the captured output and the server log.

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where Debian's server packages put their binaries, one directory per
/// major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// The unprivileged user (and group) the server runs as when the tests run
/// as root: Debian's `nobody`/`nogroup`.
const NOBODY: u32 = 65534;

/// The superuser role `initdb` creates, and the role every client uses.
pub const SUPERUSER: &str = "postgres";

/// The port number. Nothing listens on TCP; the port only names the socket
/// (`sock/.s.PGSQL.5432`), and every server has its own socket directory,
/// so concurrent servers never collide.
pub const PORT: u16 = 5432;

/// How long a server may take to accept connections, and how long its
/// shutdown may take before the harness SIGKILLs it.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(30);

/// The wrapper that starts the postmaster and stops it when its stdin
/// reaches end-of-file. `$1` is the server directory, the rest is the
/// `postgres` command line.
const WATCHDOG: &str = r#"
dir=$1; shift
exec 2>>"$dir/server.log"
"$@" </dev/null >>"$dir/server.log" 2>&1 &
pid=$!
echo "$pid"
while read -r _; do :; done
kill -QUIT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$dir"
"#;

/// A running PostgreSQL server; see the module documentation.
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    pid: u32,
    watchdog: Child,
    /// The watchdog's stdin; closing it stops the server.
    stop: Option<ChildStdin>,
}

impl PgServer {
    /// Starts a server owned by the caller and stopped on drop. `Err` holds
    /// the reason to skip: no PostgreSQL server binaries on this machine.
    /// Panics on any other failure.
    pub fn start() -> Result<PgServer, String> {
        let bin = bin_dir()?;
        Ok(Self::start_in(bin))
    }

    /// The server shared by every test of this test binary, started on
    /// first use and stopped when the binary exits. `Err` as for
    /// [`PgServer::start`].
    pub fn shared() -> Result<&'static PgServer, String> {
        static SHARED: OnceLock<PgServer> = OnceLock::new();
        let bin = bin_dir()?;
        Ok(SHARED.get_or_init(|| Self::start_in(bin)))
    }

    fn start_in(bin: &Path) -> PgServer {
        let base = base_dir();
        let dir = tempfile::Builder::new()
            .prefix("warden-pg-")
            .tempdir_in(base)
            .unwrap_or_else(|e| panic!("create a directory for PostgreSQL in {base}: {e}"))
            .keep();
        let server = Self::launch(bin, dir);
        server.wait_ready();
        server
    }

    /// initdb and start the watchdog. The returned value owns `dir` even
    /// when this panics halfway, so it is removed either way.
    fn launch(bin: &Path, dir: PathBuf) -> PgServer {
        struct RemoveOnPanic<'a>(&'a Path);
        impl Drop for RemoveOnPanic<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    let _ = fs::remove_dir_all(self.0);
                }
            }
        }
        let guard = RemoveOnPanic(&dir);

        let sock = dir.join("sock");
        fs::create_dir(&sock).expect("create the socket directory");
        let socket_path = sock.join(format!(".s.PGSQL.{PORT}"));
        assert!(
            socket_path.as_os_str().len() < 100,
            "socket path too long for a unix socket: {}",
            socket_path.display()
        );
        if as_root() {
            for d in [&dir, &sock] {
                std::os::unix::fs::chown(d, Some(NOBODY), Some(NOBODY))
                    .unwrap_or_else(|e| panic!("chown {} to nobody: {e}", d.display()));
            }
        }

        let data = dir.join("data");
        let out = server_command(bin, "initdb", &dir)
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", SUPERUSER, "-N", "-E", "UTF8"])
            .arg("--locale=C")
            .output()
            .expect("run initdb");
        if !out.status.success() {
            panic!("initdb failed: {}", describe(&out));
        }

        let mut watchdog = server_command(bin, "sh", &dir);
        watchdog
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(&dir)
            .arg(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&sock)
            .args(["-p", &PORT.to_string()])
            .args(["-c", "listen_addresses="])
            .args(["-F", "-c", "full_page_writes=off"])
            .args(["-c", "synchronous_commit=off"])
            .args(["-c", "max_connections=100"])
            .args(["-c", "shared_buffers=32MB"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Keep a Ctrl-C meant for the test run from killing the watchdog
            // before it has cleaned up; it stops anyway when the tests exit.
            .process_group(0);
        let mut child = watchdog
            .spawn()
            .expect("start the PostgreSQL watchdog (sh)");
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line);
        let pid = match (read, line.trim().parse::<u32>()) {
            (Ok(_), Ok(pid)) => pid,
            (read, _) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the PostgreSQL watchdog reported no pid ({read:?}, {line:?}); log:\n{}",
                    fs::read_to_string(dir.join("server.log")).unwrap_or_default()
                );
            }
        };
        let stop = child.stdin.take();
        drop(guard);
        PgServer {
            dir,
            bin: bin.to_owned(),
            pid,
            watchdog: child,
            stop,
        }
    }

    /// Waits until the postmaster accepts connections. pg_ctl does the same:
    /// the 8th line of `postmaster.pid` becomes `ready` once it does.
    fn wait_ready(&self) {
        let pidfile = self.dir.join("data/postmaster.pid");
        let deadline = Instant::now() + STARTUP_LIMIT;
        loop {
            if let Ok(text) = fs::read_to_string(&pidfile) {
                let lines: Vec<&str> = text.lines().collect();
                if lines.first().map(|l| l.trim()) == Some(&*self.pid.to_string())
                    && lines.get(7).map(|l| l.trim()) == Some("ready")
                {
                    return;
                }
            }
            if !alive(self.pid) {
                panic!(
                    "PostgreSQL (pid {}) exited while starting; log:\n{}",
                    self.pid,
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "PostgreSQL (pid {}) not ready after {STARTUP_LIMIT:?}; log:\n{}",
                    self.pid,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A sqlx URL for database `db`, over the unix socket:
    /// `postgres://postgres@localhost:5432/DB?host=/dev/shm/warden-pg-XXXXXX/sock`.
    /// The port is spelled out so that a `PGPORT` in the environment can't
    /// redirect it.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost:{PORT}/{}?host={}",
            percent_encode(db, false),
            percent_encode(&self.socket_dir().to_string_lossy(), true)
        )
    }

    /// Creates database `name` (with the bin directory's own `createdb`).
    /// Panics if that fails, for instance because it already exists.
    pub fn create_database(&self, name: &str) {
        let mut cmd = clean_command(self.client("createdb"), &self.dir);
        let out = cmd
            .arg("-h")
            .arg(self.socket_dir())
            .args(["-p", &PORT.to_string(), "-U", SUPERUSER, "--", name])
            .output()
            .expect("run createdb");
        if !out.status.success() {
            panic!(
                "createdb {name} failed: {}\nserver log:\n{}",
                describe(&out),
                self.log()
            );
        }
    }

    /// Creates a database with a name no other call in this process has
    /// returned, and returns that name: one per test on a shared server.
    pub fn fresh_database(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.create_database(&name);
        name
    }

    /// The directory holding everything of this server.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of the server's unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// The postmaster's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log"))
            .unwrap_or_else(|e| format!("(no server log: {e})"))
    }

    /// A client program: from the server's bin directory, else from PATH
    /// (Debian's server packages always ship their client tools alongside).
    fn client(&self, name: &str) -> PathBuf {
        let own = self.bin.join(name);
        if executable(&own) {
            own
        } else {
            PathBuf::from(name)
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // End-of-file on the watchdog's stdin: it stops the postmaster
        // (immediate shutdown), reaps it, and removes the directory.
        drop(self.stop.take());
        let deadline = Instant::now() + SHUTDOWN_LIMIT;
        let finished = loop {
            match self.watchdog.try_wait() {
                Ok(Some(_)) => break true,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => break false,
            }
        };
        if !finished {
            eprintln!(
                "PostgreSQL (pid {}) did not stop within {SHUTDOWN_LIMIT:?}; killing it",
                self.pid
            );
            // Both are processes this harness started.
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
            let _ = self.watchdog.kill();
            let _ = self.watchdog.wait();
        }
        if self.dir.exists() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The directory with the newest PostgreSQL server binaries (`initdb` and
/// `postgres`), or why there is none. Looked up once per test binary.
pub fn bin_dir() -> Result<&'static Path, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(find_bin_dir)
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

fn find_bin_dir() -> Result<PathBuf, String> {
    let is_server = |d: &Path| executable(&d.join("initdb")) && executable(&d.join("postgres"));

    // Debian: /usr/lib/postgresql/<major>/bin, newest major first.
    let mut versions: Vec<(Vec<u64>, PathBuf)> = fs::read_dir(DEBIAN_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let v: Option<Vec<u64>> = name.to_str()?.split('.').map(|p| p.parse().ok()).collect();
            Some((v?, e.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    if let Some((_, d)) = versions.into_iter().find(|(_, d)| is_server(d)) {
        return Ok(d);
    }

    // Otherwise `initdb` on PATH, resolving symlinks (/usr/local/bin/initdb
    // -> /usr/lib/postgresql/15/bin/initdb) to find its companions.
    let path = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&path) {
        let initdb = d.join("initdb");
        if !executable(&initdb) {
            continue;
        }
        let real = fs::canonicalize(&initdb).ok();
        for candidate in real
            .as_deref()
            .and_then(Path::parent)
            .into_iter()
            .chain([&*d])
        {
            if is_server(candidate) {
                return Ok(candidate.to_owned());
            }
        }
    }
    Err(format!(
        "no PostgreSQL server binaries (initdb and postgres) in {DEBIAN_ROOT}/*/bin or on PATH"
    ))
}

/// Skips the calling test (printing `skipping: <reason>` to stderr and
/// returning) when no PostgreSQL server binaries exist. Otherwise evaluates
/// to a server: `require_postgres!()` starts one owned by the test
/// (a `PgServer`), `require_postgres!(shared)` returns this test binary's
/// shared one (a `&'static PgServer`).
#[allow(unused_macros)]
macro_rules! require_postgres {
    () => {
        match $crate::common::postgres::PgServer::start() {
            Ok(server) => server,
            Err(why) => {
                eprintln!("skipping: {why}");
                return;
            }
        }
    };
    (shared) => {
        match $crate::common::postgres::PgServer::shared() {
            Ok(server) => server,
            Err(why) => {
                eprintln!("skipping: {why}");
                return;
            }
        }
    };
}

/// Whether `pid` exists and hasn't exited (a zombie counts as exited).
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesized command name.
        Ok(stat) => match stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
        {
            Some(state) => !matches!(state, "Z" | "X" | "x"),
            None => false,
        },
        Err(_) => false,
    }
}

/// The pids whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Where server directories go: see the module documentation.
#[allow(clippy::unnecessary_cast)] // statvfs's fields are u32 on 32-bit targets.
fn base_dir() -> &'static str {
    const TMPFS: &str = "/dev/shm";
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path and a pointer to space for a statvfs.
    let ok = unsafe { libc::statvfs(c"/dev/shm".as_ptr(), st.as_mut_ptr()) } == 0;
    let roomy = ok && {
        // SAFETY: statvfs succeeded, so it filled `st` in.
        let st = unsafe { st.assume_init() };
        (st.f_bavail as u64).saturating_mul(st.f_frsize as u64) >= 1 << 30
    };
    let sticky_public =
        fs::metadata(TMPFS).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o1777 == 0o1777);
    if roomy && sticky_public {
        TMPFS
    } else {
        "/tmp"
    }
}

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `program` (from `bin`, except `sh`) run in `dir` with no `PG*`
/// environment, as `nobody` when the tests run as root.
fn server_command(bin: &Path, program: &str, dir: &Path) -> Command {
    let program = if program == "sh" {
        PathBuf::from("sh")
    } else {
        bin.join(program)
    };
    let mut cmd = clean_command(program, dir);
    if as_root() {
        // std also drops supplementary groups when root changes uid.
        cmd.uid(NOBODY).gid(NOBODY);
    }
    cmd
}

/// `program` run in `dir` with no `PG*` variables (PGDATA, PGHOST,
/// PGOPTIONS, ...) from the environment of the test run.
fn clean_command(program: impl AsRef<OsStr>, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout:\n{}--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Percent-encodes everything but unreserved characters (and `/` when
/// `keep_slash`), for a URL path segment or query value.
fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
