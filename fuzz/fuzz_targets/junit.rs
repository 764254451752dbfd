//! A batch's JUnit file (`format = "junit"`): any bytes are results,
//! problems or warnings, never a panic; out-of-range times are clamped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::parsers::junit::read_junit_bytes;

fuzz_target!(|data: &[u8]| {
    let read = read_junit_bytes(data, "fuzz.xml", "batch");
    for t in &read.tests {
        if let Some(d) = t.duration {
            assert!(d <= warden::parsers::junit::MAX_TIME, "{}: {d:?}", t.name());
        }
    }
});
