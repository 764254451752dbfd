//! Durations of the config file and flags (`90s`, `1h30m`): any text is
//! a duration of at most a year, or an error; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::duration::{MAX, parse};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(d) = parse(&text) {
        assert!(!d.is_zero() && d <= MAX, "{text:?}: {d:?}");
    }
});
