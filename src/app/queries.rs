//! The history queries: `warden flaky`, `history`, `regressed`, `durations`.

use crate::cli::{DurationsArgs, FlakyArgs, HistoryArgs, RegressedArgs};

pub fn flaky(args: FlakyArgs) -> anyhow::Result<u8> {
    let _ = args;
    anyhow::bail!("warden flaky is not built yet")
}

pub fn history(args: HistoryArgs) -> anyhow::Result<u8> {
    let _ = args;
    anyhow::bail!("warden history is not built yet")
}

pub fn regressed(args: RegressedArgs) -> anyhow::Result<u8> {
    let _ = args;
    anyhow::bail!("warden regressed is not built yet")
}

pub fn durations(args: DurationsArgs) -> anyhow::Result<u8> {
    let _ = args;
    anyhow::bail!("warden durations is not built yet")
}
