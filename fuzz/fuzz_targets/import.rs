//! `warden import`: any bytes are a JUnit file read into suites and
//! assembled into a run (as it would be recorded, without a store), or an
//! error naming file:line:col; never a panic.
#![no_main]

use std::path::Path;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use warden::history::import::{ImportError, ImportedRun, read_bytes};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.xml");
    match read_bytes(path, data) {
        Ok(file) => {
            let batch = (data.len() % 2 == 0).then_some("batch");
            let at = (data.len() % 3 == 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1));
            let run = ImportedRun::new(vec![file], at, batch);
            let _ = run.status();
        }
        Err(ImportError::Malformed { line, column, .. } | ImportError::BadTime { line, column, .. }) => {
            assert!(line >= 1 && column >= 1);
        }
        Err(_) => {}
    }
});
