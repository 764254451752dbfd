//! `warden import junit`: JUnit files from other runners into the history.

use crate::cli::ImportJunitArgs;

pub fn junit(args: ImportJunitArgs) -> anyhow::Result<u8> {
    let _ = args;
    anyhow::bail!("warden import junit is not built yet")
}
