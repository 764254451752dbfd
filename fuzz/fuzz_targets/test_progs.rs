//! The test_progs streaming parser: any output, any arrival times, any ending.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::parsers;

fuzz_target!(|data: &[u8]| {
    warden_fuzz::drive(Box::new(parsers::test_progs::TestProgsParser::new()), data);
});
