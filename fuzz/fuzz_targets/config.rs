//! `warden.toml` and the quarantine file: any text is a config or an
//! error, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use warden::config::Config;
use warden::quarantine;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::parse(Path::new("/fuzz/warden.toml"), text) {
        let _ = config.history();
    }
    let _ = quarantine::parse(Path::new("/fuzz/quarantine.toml"), text);
});
