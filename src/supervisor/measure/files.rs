//! The cgroup files a batch's usage is read from, parsed. Each parser
//! takes the file's text and ignores what it does not know (kernels add
//! keys), so a newer kernel's file still parses.

use std::time::Duration;

/// A flat keyed file's value: `usage_usec 1234` in `cpu.stat`,
/// `oom_kill 1` in `memory.events` and v1's `memory.oom_control`.
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// CPU time from v2 `cpu.stat` (`usage_usec`, present even without the
/// cpu controller).
pub fn cpu_usage(text: &str) -> Option<Duration> {
    keyed(text, "usage_usec").map(Duration::from_micros)
}

/// Stall time from a pressure file (`cpu.pressure`, `memory.pressure`,
/// `io.pressure`): the `some` line's `total=` microseconds.
pub fn pressure_some(text: &str) -> Option<Duration> {
    let line = text.lines().find(|l| l.starts_with("some "))?;
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
        .map(Duration::from_micros)
}

/// Bytes read and written, summed over devices, from v2 `io.stat`
/// (`254:0 rbytes=1 wbytes=2 rios=…`).
pub fn io_stat(text: &str) -> (u64, u64) {
    let (mut read, mut written) = (0, 0);
    for field in text.split_whitespace() {
        if let Some(v) = field.strip_prefix("rbytes=") {
            read += v.parse::<u64>().unwrap_or(0);
        } else if let Some(v) = field.strip_prefix("wbytes=") {
            written += v.parse::<u64>().unwrap_or(0);
        }
    }
    (read, written)
}

/// Bytes read and written, summed over devices, from v1
/// `blkio.throttle.io_service_bytes_recursive` (`254:0 Read 4096`, …,
/// `Total 8192`).
pub fn blkio_bytes(text: &str) -> (u64, u64) {
    let (mut read, mut written) = (0, 0);
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(_dev), Some(op), Some(n)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let n = n.parse::<u64>().unwrap_or(0);
        match op {
            "Read" => read += n,
            "Write" => written += n,
            _ => {}
        }
    }
    (read, written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_stat() {
        let text = "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n\
                    nr_periods 0\nnr_throttled 0\nthrottled_usec 0\n";
        assert_eq!(cpu_usage(text), Some(Duration::from_micros(123_456)));
        assert_eq!(keyed(text, "throttled_usec"), Some(0));
        assert_eq!(cpu_usage("user_usec 1\n"), None);
    }

    #[test]
    fn pressure() {
        let text = "some avg10=0.00 avg60=0.12 avg300=0.05 total=2345678\n\
                    full avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n";
        assert_eq!(pressure_some(text), Some(Duration::from_micros(2_345_678)));
        // cpu.pressure before 5.13 has no `full` line; still `some`.
        assert_eq!(
            pressure_some("some avg10=1.00 avg60=0 avg300=0 total=7\n"),
            Some(Duration::from_micros(7))
        );
        assert_eq!(pressure_some(""), None);
    }

    #[test]
    fn io_stat_sums_devices() {
        let text = "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n\
                    8:0 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n";
        assert_eq!(io_stat(text), (4097, 8194));
        assert_eq!(io_stat(""), (0, 0));
    }

    #[test]
    fn blkio_sums_devices_and_skips_the_total() {
        let text = "254:0 Read 4096\n254:0 Write 8388608\n254:0 Sync 8388608\n\
                    254:0 Async 4096\n254:0 Discard 0\n254:0 Total 8392704\n\
                    8:0 Read 10\n8:0 Write 20\nTotal 8392734\n";
        assert_eq!(blkio_bytes(text), (4106, 8_388_628));
    }

    #[test]
    fn oom_kills_v2_and_v1() {
        let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed(events, "oom_kill"), Some(1));
        let control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(control, "oom_kill"), Some(3));
        assert_eq!(keyed("oom_kill_disable 0\n", "oom_kill"), None);
    }
}
