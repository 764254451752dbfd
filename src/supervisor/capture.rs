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

use std::fs::File;
use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::thread;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;
use tokio::sync::oneshot;

const CHUNK: usize = 256 * 1024;
/// Pipe buffer we ask for, so a fast writer rarely blocks on us.
pub const PIPE_SIZE: usize = 1024 * 1024;
/// Longest line echoed whole by `--verbose`; longer ones are cut there.
const MAX_ECHO_LINE: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct Captured {
    pub bytes: u64,
    /// The first write error; reading went on so the batch never blocked.
    pub write_error: Option<io::Error>,
    /// Whether capture ended because every writer closed the pipe.
    pub eof: bool,
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

impl Capture {
    /// Sets up the batch's output: returns the fd to give the batch as
    /// stdout and stderr, and what carries it to `log`.
    pub fn new(log: &File, echo: Option<Echo>) -> io::Result<(OwnedFd, Capture)> {
        let Some(echo) = echo else {
            let child_end = OwnedFd::from(log.try_clone()?);
            return Ok((
                child_end,
                Capture::Direct {
                    log: log.try_clone()?,
                },
            ));
        };
        let (read_end, write_end) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        // Best effort: a small pipe only costs more wake-ups.
        let _ = rustix::pipe::fcntl_setpipe_size(&read_end, PIPE_SIZE);
        Ok((
            write_end,
            Capture::start(read_end, log.try_clone()?, Some(echo))?,
        ))
    }

    fn start(pipe: OwnedFd, log: File, echo: Option<Echo>) -> io::Result<Capture> {
        rustix::io::ioctl_fionbio(&pipe, true)?;
        let (stop_rx, stop_tx) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let (tx, done) = oneshot::channel();
        thread::Builder::new()
            .name("capture".into())
            // The thread's own frames are tiny; its buffer is on the heap.
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = tx.send(pump(&pipe, &stop_rx, log, echo));
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
                write_error: None,
                eof: true,
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

fn pump(pipe: &OwnedFd, stop: &OwnedFd, mut log: File, mut echo: Option<Echo>) -> Captured {
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
        match read_available(pipe, &mut buf, &mut log, &mut echo, &mut got) {
            ReadEnd::Eof => {
                got.eof = true;
                break;
            }
            ReadEnd::Drained if stopping => break,
            ReadEnd::Drained => {}
        }
    }
    if let Some(e) = echo.as_mut() {
        e.finish();
    }
    got
}

enum ReadEnd {
    Eof,
    Drained,
}

fn read_available(
    pipe: &OwnedFd,
    buf: &mut [MaybeUninit<u8>],
    log: &mut File,
    echo: &mut Option<Echo>,
    got: &mut Captured,
) -> ReadEnd {
    loop {
        match rustix::io::read(pipe.as_fd(), &mut *buf) {
            Ok(([], _)) => return ReadEnd::Eof,
            Ok((data, _)) => {
                got.bytes += data.len() as u64;
                if got.write_error.is_none()
                    && let Err(e) = log.write_all(data)
                {
                    got.write_error = Some(e);
                }
                if let Some(e) = echo.as_mut() {
                    e.feed(data);
                }
            }
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return ReadEnd::Drained,
            Err(_) => return ReadEnd::Eof,
        }
    }
}
