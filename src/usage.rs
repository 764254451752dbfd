//! What a batch used while it ran: the one value every reporter reads
//! (summary, JUnit properties, history, dashboard). Measured by the
//! supervisor from the batch's cgroup when it ends, else from `wait4`'s
//! rusage (partial: the main process and what it waited for, not what
//! escaped it).

use std::time::Duration;

use serde::Serialize;

/// Every figure is `None` where this host could not measure it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// The figures without a cgroup, or the peak memory where the batch had
    /// no memory group, are from `wait4`'s rusage: the peak is the largest
    /// single process's RSS, and processes not waited for are missing.
    pub partial: bool,
    /// Highest memory use of the whole batch (cgroup `memory.peak`, v1
    /// `memory.max_usage_in_bytes`), or the largest process's RSS.
    pub peak_memory: Option<u64>,
    /// CPU time, user and system together.
    pub cpu: Option<Duration>,
    pub read_bytes: Option<u64>,
    pub written_bytes: Option<u64>,
    /// Time at least one of its tasks was stalled waiting for CPU, memory
    /// or I/O (the cgroup's pressure files, `some total`).
    pub cpu_stall: Option<Duration>,
    pub memory_stall: Option<Duration>,
    pub io_stall: Option<Duration>,
    /// Processes of the batch the OOM killer killed.
    pub oom_kills: u64,
}

impl Usage {
    /// One line for people: `peak 1.2G, cpu 3.40s, read 10.0M, written
    /// 2.0M, stalled cpu 0.10s, memory 0s, io 2.30s`, with `(partial)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = self.peak_memory {
            parts.push(format!("peak {}", crate::size::human(b)));
        }
        if let Some(d) = self.cpu {
            parts.push(format!("cpu {}", crate::duration::rounded(d)));
        }
        if let Some(b) = self.read_bytes {
            parts.push(format!("read {}", crate::size::human(b)));
        }
        if let Some(b) = self.written_bytes {
            parts.push(format!("written {}", crate::size::human(b)));
        }
        let stalls: Vec<String> = [
            ("cpu", self.cpu_stall),
            ("memory", self.memory_stall),
            ("io", self.io_stall),
        ]
        .into_iter()
        .filter_map(|(what, d)| d.map(|d| format!("{what} {}", crate::duration::rounded(d))))
        .collect();
        if !stalls.is_empty() {
            parts.push(format!("stalled {}", stalls.join(" ")));
        }
        if self.oom_kills > 0 {
            parts.push(format!("{} OOM kill(s)", self.oom_kills));
        }
        let mut line = parts.join(", ");
        if self.partial && !line.is_empty() {
            line.push_str(" (partial: the largest process's peak)");
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn described_in_one_line() {
        let u = Usage {
            peak_memory: Some(1536 << 20),
            cpu: Some(Duration::from_millis(3400)),
            io_stall: Some(Duration::from_millis(2300)),
            ..Usage::default()
        };
        assert_eq!(u.describe(), "peak 1.5G, cpu 3.40s, stalled io 2.30s");
        let partial = Usage {
            partial: true,
            peak_memory: Some(10 << 20),
            ..Usage::default()
        };
        assert_eq!(
            partial.describe(),
            "peak 10.0M (partial: the largest process's peak)"
        );
        assert_eq!(Usage::default().describe(), "");
    }
}

/// [`Usage`] as JSON gives it (the dashboard's API, the event stream):
/// bytes, milliseconds and counts, `null` where unmeasured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageJson {
    peak_memory: Option<u64>,
    cpu_ms: Option<u64>,
    read_bytes: Option<u64>,
    written_bytes: Option<u64>,
    cpu_stall_ms: Option<u64>,
    memory_stall_ms: Option<u64>,
    io_stall_ms: Option<u64>,
    oom_kills: u64,
    partial: bool,
}

impl From<&Usage> for UsageJson {
    fn from(u: &Usage) -> UsageJson {
        let ms = |d: Option<Duration>| d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        UsageJson {
            peak_memory: u.peak_memory,
            cpu_ms: ms(u.cpu),
            read_bytes: u.read_bytes,
            written_bytes: u.written_bytes,
            cpu_stall_ms: ms(u.cpu_stall),
            memory_stall_ms: ms(u.memory_stall),
            io_stall_ms: ms(u.io_stall),
            oom_kills: u.oom_kills,
            partial: u.partial,
        }
    }
}
