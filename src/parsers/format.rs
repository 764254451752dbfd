//! Which streaming parser reads a batch's output, by its `format`.

use super::Parser;
use super::{gotest, libtest, ltp, tap, test_progs};
use crate::config::OutputFormat;

/// The streaming parser for a batch's `format`; `None` for `none` and for
/// `junit`, whose files are read after the batch ends.
pub fn for_format(format: &OutputFormat) -> Option<Box<dyn Parser>> {
    use OutputFormat as F;
    match format {
        F::None | F::Junit(_) => None,
        F::Tap => Some(Box::new(tap::TapParser::new())),
        F::Kunit => Some(Box::new(tap::TapParser::kunit())),
        F::Ltp => Some(Box::new(ltp::LtpParser::new())),
        F::TestProgs { .. } => Some(Box::new(test_progs::TestProgsParser::new())),
        F::GoJson => Some(Box::new(gotest::GoJsonParser::new())),
        F::Libtest => Some(Box::new(libtest::LibtestParser::new())),
    }
}
