//! 300 MiB of output: every byte reaches the log, and warden's memory stays
//! bounded. Alone in its test binary so nothing else runs beside it.

#[macro_use]
mod common;

use std::fs::File;
use std::io::Read;
use std::time::Duration;

use common::{Kind, Warden};
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;
const SIZE_MIB: u64 = 300;
const MAX_RSS_KIB: i64 = 64 * 1024;

fn sha256_file(path: &std::path::Path) -> (String, u64) {
    let mut f = File::open(path).expect("open log");
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 4 * MIB as usize];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).expect("read log");
        if n == 0 {
            break;
        }
        len += n as u64;
        hasher.update(&buf[..n]);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (hex, len)
}

/// The high-water mark of a live process's resident set, in KiB.
fn vm_hwm_kib(pid: i32) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn three_hundred_mib_are_logged_exactly_in_bounded_memory() {
    let w = Warden::new();
    let sidecar = w.path_str("expected.sha256");
    let size = SIZE_MIB.to_string();
    let running = w
        .fixture(
            "big",
            "big_output.py",
            &[&sidecar, &size],
            "timeout = \"2m\"",
        )
        .watchdog(Duration::from_secs(120))
        .spawn();
    // warden's own high-water mark while it runs (wait4's figure below also
    // covers the batch processes it reaped).
    let pid = running.pid();
    let mut own_hwm = 0;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let sampler = std::thread::spawn(move || {
        while rx.recv_timeout(Duration::from_millis(20)).is_err() {
            match vm_hwm_kib(pid) {
                Some(kib) => own_hwm = own_hwm.max(kib),
                None => break,
            }
        }
        own_hwm
    });
    let r = running.wait();
    let _ = tx.send(());
    let own_hwm = sampler.join().unwrap();

    r.assert_code(0);
    r.case("big").assert_status(Kind::Success, None);
    let log = r.artifacts().join("logs/big.log");
    let (got, len) = sha256_file(&log);
    assert_eq!(len, SIZE_MIB * MIB, "log size\n{}", r.context);
    let want = std::fs::read_to_string(r.path("expected.sha256")).expect("sidecar hash");
    assert_eq!(got, want.trim(), "log differs from what was written");
    eprintln!(
        "300 MiB: warden took {:?}; peak RSS {} KiB (wait4, includes reaped batch processes), {} KiB (warden's VmHWM sampled)",
        r.elapsed, r.max_rss_kib, own_hwm
    );
    assert!(
        r.max_rss_kib < MAX_RSS_KIB,
        "peak RSS {} KiB >= {MAX_RSS_KIB} KiB\n{}",
        r.max_rss_kib,
        r.context
    );
    assert!(own_hwm < MAX_RSS_KIB, "warden's VmHWM {own_hwm} KiB");
}
