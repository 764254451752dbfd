//! How a batch's output reaches its log file.
//!
//! When nobody needs to see the bytes, the batch's stdout and stderr *are*
//! the log file (one shared file description, so the two interleave in
//! arrival order): no copy, no thread, nothing that a leftover process could
//! hold open to make warden wait.
//!
//! When someone does (`--verbose`), output goes through a pipe: one OS
//! thread per running batch does blocking-style reads in large chunks
//! straight into the file, memory bounded by the chunk, never by the output,
//! and lines are split only for the echo. The read end is non-blocking and
//! polled together with a stop pipe, so the supervisor can end capture even
//! if a process outside the batch's containment still holds the write end.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::thread;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;
use tokio::sync::oneshot;

use crate::config::{BatchName, Pattern};
use crate::message::{self, Message};
use crate::parsers::{Ended, Parser, StreamVerdict, TestResult};

const CHUNK: usize = 256 * 1024;
/// Pipe buffer we ask for, so a fast writer rarely blocks on us.
pub const PIPE_SIZE: usize = 1024 * 1024;
/// Longest line echoed whole by `--verbose`; longer ones are cut there.
const MAX_ECHO_LINE: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct Captured {
    /// Bytes read from the batch.
    pub bytes: u64,
    /// Of those, bytes that reached the log (all unless `write_error`).
    pub logged: u64,
    /// The first write error; reading went on so the batch never blocked.
    pub write_error: Option<io::Error>,
    /// Whether capture ended because every writer closed the pipe.
    pub eof: bool,
    /// The test parser, with the results it gave so far.
    pub tests: Option<TestFeed>,
}

pub enum Capture {
    /// The batch writes to the log itself.
    Direct { log: File },
    Pipe {
        done: oneshot::Receiver<Captured>,
        result: Option<Captured>,
        stop: Option<OwnedFd>,
    },
}

/// Echoes complete lines to stdout with a `[name] ` prefix.
pub struct Echo {
    prefix: Vec<u8>,
    partial: Vec<u8>,
}

impl Echo {
    pub fn new(name: &str) -> Echo {
        Echo {
            prefix: format!("[{name}] ").into_bytes(),
            partial: Vec::new(),
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            let _ = out.write_all(&self.prefix);
            let _ = out.write_all(&self.partial);
            let _ = out.write_all(&data[..=pos]);
            self.partial.clear();
            data = &data[pos + 1..];
        }
        let room = MAX_ECHO_LINE.saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&data[..data.len().min(room)]);
    }

    fn finish(&mut self) {
        if !self.partial.is_empty() {
            let mut out = io::stdout().lock();
            let _ = out.write_all(&self.prefix);
            let _ = out.write_all(&self.partial);
            let _ = out.write_all(b"\n");
            self.partial.clear();
        }
    }
}

/// A fatal pattern's match, with what led up to it.
#[derive(Debug, Clone)]
pub struct FatalMatch {
    pub pattern: String,
    pub line: String,
    /// The [`CONTEXT_LINES`] lines before the match, then the matching line.
    pub context: String,
}

/// Lines of output kept before a fatal match, for the report.
pub const CONTEXT_LINES: usize = 50;
/// Longest line kept for that context (a console can print megabytes without a newline).
const MAX_CONTEXT_LINE: usize = 4096;

/// Watches whole lines of output for fatal patterns.
pub struct FatalWatch {
    patterns: Vec<Pattern>,
    partial: Vec<u8>,
    recent: VecDeque<String>,
    tx: Option<oneshot::Sender<FatalMatch>>,
}

impl FatalWatch {
    pub fn new(patterns: Vec<Pattern>) -> (FatalWatch, oneshot::Receiver<FatalMatch>) {
        let (tx, rx) = oneshot::channel();
        let watch = FatalWatch {
            patterns,
            partial: Vec::new(),
            recent: VecDeque::with_capacity(CONTEXT_LINES),
            tx: Some(tx),
        };
        (watch, rx)
    }

    fn feed(&mut self, mut data: &[u8]) {
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.line(&data[..pos]);
            } else {
                self.partial.extend_from_slice(&data[..pos]);
                let line = std::mem::take(&mut self.partial);
                self.line(&line);
            }
            data = &data[pos + 1..];
        }
        self.partial.extend_from_slice(data);
        // A line without end is checked in pieces rather than held whole.
        if self.partial.len() > MAX_ECHO_LINE {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
    }

    fn finish(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.tx.is_some()
            && let Some(p) = self.patterns.iter().find(|p| p.is_match(line))
        {
            let shown = shorten(line);
            let mut context: Vec<&str> = self.recent.iter().map(String::as_str).collect();
            context.push(&shown);
            let found = FatalMatch {
                pattern: p.as_str().to_string(),
                context: context.join("\n"),
                line: shown.clone(),
            };
            if let Some(tx) = self.tx.take() {
                let _ = tx.send(found);
            }
        }
        if self.recent.len() == CONTEXT_LINES {
            self.recent.pop_front();
        }
        self.recent.push_back(shorten(line));
    }
}

fn shorten(line: &[u8]) -> String {
    String::from_utf8_lossy(&line[..line.len().min(MAX_CONTEXT_LINE)]).into_owned()
}

/// Longest line handed to a test parser; longer ones are cut there.
const MAX_TEST_LINE: usize = 1024 * 1024;

/// Feeds whole lines of output to a test-output parser.
pub struct TestFeed {
    parser: Box<dyn Parser>,
    partial: Vec<u8>,
    cut: bool,
    results: Vec<TestResult>,
    /// When the batch started: lines are timed from it.
    start: std::time::Instant,
    /// Keep passing tests' output (`store-success-output`); by default it
    /// is dropped as each result arrives, so memory grows with the number
    /// of tests, not with what they print.
    keep_success_output: bool,
    /// Where each result goes as it arrives, when someone wants them live.
    live: Option<LiveTests>,
}

/// Tells the dispatcher each test result as the parser gives it
/// ([`Message::Test`]): the event stream's `test_result` lines, written
/// while the batch still runs. The result goes without its output (the
/// stream does not carry it; the batch's end has it for the reports).
///
/// Output can be parsed before the supervisor has said that the program
/// started (the capture thread reads as soon as the program writes, the
/// spawn's answer comes after): results are held until [`opened`]
/// (`LiveTests::opened`), so a reader sees the attempt start before its
/// tests. One lock orders the two.
#[derive(Clone)]
pub struct LiveTests {
    dispatcher: message::Sender,
    batch: BatchName,
    attempt: u32,
    gate: Arc<Mutex<Gate>>,
}

#[derive(Default)]
struct Gate {
    open: bool,
    held: Vec<Message>,
}

impl LiveTests {
    pub fn new(dispatcher: message::Sender, batch: BatchName, attempt: u32) -> LiveTests {
        LiveTests {
            dispatcher,
            batch,
            attempt,
            gate: Arc::default(),
        }
    }

    /// The attempt's start was told: results held so far go, and the
    /// rest as they come.
    pub fn opened(&self) {
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        for m in gate.held.drain(..) {
            self.dispatcher.send(m);
        }
        gate.open = true;
    }

    fn send(&self, results: &[TestResult]) {
        if results.is_empty() {
            return;
        }
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        for r in results {
            let m = Message::Test {
                name: self.batch.clone(),
                attempt: self.attempt,
                result: Box::new(TestResult {
                    path: r.path.clone(),
                    status: r.status.clone(),
                    duration: r.duration,
                    output: String::new(),
                    message: r.message.clone(),
                }),
            };
            if gate.open {
                self.dispatcher.send(m);
            } else {
                gate.held.push(m);
            }
        }
    }
}

impl std::fmt::Debug for TestFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestFeed({} results)", self.results.len())
    }
}

impl TestFeed {
    pub fn new(
        parser: Box<dyn Parser>,
        keep_success_output: bool,
        live: Option<LiveTests>,
    ) -> TestFeed {
        TestFeed {
            parser,
            partial: Vec::new(),
            cut: false,
            results: Vec::new(),
            start: std::time::Instant::now(),
            keep_success_output,
            live,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        // One clock read per chunk: the lines of one read arrived together.
        let at = self.start.elapsed();
        let before = self.results.len();
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            self.take(&data[..pos]);
            let line = std::mem::take(&mut self.partial);
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            self.parser.line(line, at, &mut self.results);
            self.cut = false;
            data = &data[pos + 1..];
        }
        self.take(data);
        self.arrived(before);
    }

    /// Results from `from` on just arrived: told to whoever wants them
    /// live, and their success output dropped.
    fn arrived(&mut self, from: usize) {
        if let Some(live) = &self.live {
            live.send(&self.results[from..]);
        }
        if !self.keep_success_output {
            crate::parsers::drop_success_output(&mut self.results[from..]);
        }
    }

    /// Keeps at most MAX_TEST_LINE bytes of the line being read.
    fn take(&mut self, data: &[u8]) {
        let room = MAX_TEST_LINE.saturating_sub(self.partial.len());
        self.cut |= data.len() > room;
        self.partial
            .extend_from_slice(&data[..data.len().min(room)]);
    }

    fn end_of_output(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            let before = self.results.len();
            self.parser
                .line(&line, self.start.elapsed(), &mut self.results);
            self.arrived(before);
        }
    }

    /// Every result, and the parser's verdict. `ended` says how the batch
    /// ended, for the tests still running then.
    pub fn finish(self, ended: &Ended) -> (Vec<TestResult>, StreamVerdict) {
        let TestFeed {
            parser,
            mut results,
            keep_success_output,
            live,
            ..
        } = self;
        let (mut rest, verdict) = parser.finish(ended);
        if let Some(live) = &live {
            live.send(&rest);
        }
        if !keep_success_output {
            crate::parsers::drop_success_output(&mut rest);
        }
        results.extend(rest);
        // Grown by doubling: up to half of it unused, for as long as the
        // outcome lives (a million results: ~50 MB of capacity).
        results.shrink_to_fit();
        (results, verdict)
    }
}

/// Who looks at the bytes on their way to the log.
pub struct Readers {
    pub echo: Option<Echo>,
    pub fatal: Option<FatalWatch>,
    pub tests: Option<TestFeed>,
}

impl Capture {
    /// Sets up the batch's output: returns the fd to give the batch as
    /// stdout and stderr, and what carries it to `log`.
    pub fn new(log: &File, readers: Readers) -> io::Result<(OwnedFd, Capture)> {
        if readers.echo.is_none() && readers.fatal.is_none() && readers.tests.is_none() {
            let child_end = OwnedFd::from(log.try_clone()?);
            return Ok((
                child_end,
                Capture::Direct {
                    log: log.try_clone()?,
                },
            ));
        }
        let (read_end, write_end) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        // Best effort: a small pipe only costs more wake-ups.
        let _ = rustix::pipe::fcntl_setpipe_size(&read_end, PIPE_SIZE);
        Ok((
            write_end,
            Capture::start(read_end, log.try_clone()?, readers)?,
        ))
    }

    fn start(pipe: OwnedFd, log: File, readers: Readers) -> io::Result<Capture> {
        rustix::io::ioctl_fionbio(&pipe, true)?;
        let (stop_rx, stop_tx) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let (tx, done) = oneshot::channel();
        thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                let _ = tx.send(pump(&pipe, &stop_rx, log, readers));
            })?;
        Ok(Capture::Pipe {
            done,
            result: None,
            stop: Some(stop_tx),
        })
    }

    /// Waits until every writer has closed the pipe. Cancel-safe.
    pub async fn eof(&mut self) {
        if let Capture::Pipe { done, result, .. } = self
            && result.is_none()
        {
            *result = Some(done.await.unwrap_or_default());
        }
    }

    /// What was captured; if writers remain, reads what is already in the
    /// pipe and stops without waiting for them.
    pub async fn finish(self) -> Captured {
        match self {
            Capture::Direct { log } => Captured {
                bytes: log.metadata().map(|m| m.len()).unwrap_or(0),
                logged: log.metadata().map(|m| m.len()).unwrap_or(0),
                write_error: None,
                eof: true,
                tests: None,
            },
            Capture::Pipe {
                done,
                result,
                mut stop,
            } => {
                if let Some(got) = result {
                    return got;
                }
                stop.take();
                done.await.unwrap_or_default()
            }
        }
    }
}

fn pump(pipe: &OwnedFd, stop: &OwnedFd, mut log: File, mut readers: Readers) -> Captured {
    // Never zeroed: only what `read` filled is looked at, and a batch that
    // writes little never touches most of these pages.
    let mut buf = Box::new_uninit_slice(CHUNK);
    let mut got = Captured::default();
    loop {
        let mut fds = [
            PollFd::new(pipe, PollFlags::IN),
            PollFd::new(stop, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => break,
        }
        let stopping = !fds[1].revents().is_empty();
        match read_available(pipe, &mut buf, &mut log, &mut readers, &mut got) {
            ReadEnd::Eof => {
                got.eof = true;
                break;
            }
            ReadEnd::Drained if stopping => break,
            ReadEnd::Drained => {}
        }
    }
    if let Some(e) = readers.echo.as_mut() {
        e.finish();
    }
    if let Some(f) = readers.fatal.as_mut() {
        f.finish();
    }
    if let Some(mut t) = readers.tests.take() {
        t.end_of_output();
        got.tests = Some(t);
    }
    got
}

/// `write_all` that says how much was written before an error: the
/// warning must give what reached the log, not what was read.
fn write_counted(log: &mut File, mut data: &[u8]) -> (usize, Option<io::Error>) {
    let mut written = 0;
    while !data.is_empty() {
        match log.write(data) {
            Ok(0) => return (written, Some(io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                written += n;
                data = &data[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (written, Some(e)),
        }
    }
    (written, None)
}

enum ReadEnd {
    Eof,
    Drained,
}

fn read_available(
    pipe: &OwnedFd,
    buf: &mut [MaybeUninit<u8>],
    log: &mut File,
    readers: &mut Readers,
    got: &mut Captured,
) -> ReadEnd {
    loop {
        match rustix::io::read(pipe.as_fd(), &mut *buf) {
            Ok(([], _)) => return ReadEnd::Eof,
            Ok((data, _)) => {
                got.bytes += data.len() as u64;
                if got.write_error.is_none() {
                    let (written, error) = write_counted(log, data);
                    got.logged += written as u64;
                    got.write_error = error;
                }
                if let Some(e) = readers.echo.as_mut() {
                    e.feed(data);
                }
                if let Some(f) = readers.fatal.as_mut() {
                    f.feed(data);
                }
                if let Some(t) = readers.tests.as_mut() {
                    t.feed(data);
                }
            }
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return ReadEnd::Drained,
            Err(_) => return ReadEnd::Eof,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(patterns: &[&str]) -> (FatalWatch, oneshot::Receiver<FatalMatch>) {
        FatalWatch::new(patterns.iter().map(|p| Pattern::new(p).unwrap()).collect())
    }

    #[test]
    fn matches_across_chunks_with_bounded_context() {
        let (mut w, mut rx) = watch(&["Kernel panic"]);
        for i in 0..100 {
            w.feed(format!("line {i}\n").as_bytes());
        }
        // The matching line arrives split over three reads, with a CR.
        w.feed(b"Kernel pa");
        w.feed(b"nic - not sync");
        w.feed(b"ing\r\nafter\n");
        let m = rx.try_recv().unwrap();
        assert_eq!(m.pattern, "Kernel panic");
        assert_eq!(m.line, "Kernel panic - not syncing");
        let lines: Vec<&str> = m.context.lines().collect();
        assert_eq!(lines.len(), CONTEXT_LINES + 1);
        assert_eq!(lines[0], "line 50");
        assert_eq!(lines[CONTEXT_LINES], "Kernel panic - not syncing");
    }

    #[test]
    fn last_line_without_newline_and_garbage() {
        let (mut w, mut rx) = watch(&["BUG: KASAN"]);
        w.feed(b"\xff\xfe\0garbage\n");
        w.feed(&vec![b'x'; 3 * MAX_ECHO_LINE]);
        w.feed(b"\nBUG: KASAN: slab-out-of-bounds");
        assert!(rx.try_recv().is_err());
        w.finish();
        let m = rx.try_recv().unwrap();
        assert_eq!(m.line, "BUG: KASAN: slab-out-of-bounds");
        assert!(m.context.len() < CONTEXT_LINES * (MAX_CONTEXT_LINE + 1) + 100);
    }
}
