//! What batches used lately, for the scheduler's memory-aware admission: a
//! batch without an explicit `memory` expectation is expected to need the
//! p90 of its recent peaks ([`peak_memory_p90`]).
//!
//! The window: the batch's last [`LAST`] recorded peaks in runs of the
//! last [`WINDOW`], newest first by when the batch started. Peaks measured
//! from the batch's cgroup are preferred: a batch with any in the window
//! uses only those; one that has only partial peaks (`wait4`'s rusage: the
//! largest process's RSS, an underestimate) uses those. Batches killed by
//! the OOM killer count with the peak they reached: what they needed was
//! at least that. The percentile is nearest-rank, as in [`durations`]
//! (computed in Rust: portable, and the same on both backends).
//!
//! [`durations`]: super::durations

use std::collections::HashMap;
use std::time::Duration;

use super::durations::percentile;
use super::{Filter, Result, Sql, for_each_row};
use crate::history::Db;
use crate::phase::Phase;

/// How far back peaks are looked for.
pub const WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// How many of a batch's most recent peaks count.
pub const LAST: usize = 20;

/// Names per statement: far below both backends' parameter limits.
const NAMES_PER_QUERY: usize = 1000;

/// The p90 peak memory in bytes of each of `names` (all batches when
/// empty) over its recent runs (see the module docs); batches without a
/// recorded peak in the window are missing from the map.
pub async fn peak_memory_p90(db: &Db, names: &[String]) -> Result<HashMap<String, u64>> {
    let filter = Filter::last(WINDOW, Vec::new());
    let mut peaks: HashMap<String, Peaks> = HashMap::new();
    if names.is_empty() {
        peak_rows(db, &filter, &[], &mut peaks).await?;
    } else {
        for chunk in names.chunks(NAMES_PER_QUERY) {
            peak_rows(db, &filter, chunk, &mut peaks).await?;
        }
    }
    Ok(peaks
        .into_iter()
        .filter_map(|(name, p)| Some((name, p.p90()?)))
        .collect())
}

/// One batch's peaks in the window: (started at, bytes), whole and partial.
#[derive(Debug, Default)]
struct Peaks {
    whole: Vec<(i64, i64)>,
    partial: Vec<(i64, i64)>,
}

impl Peaks {
    /// The p90 of the newest [`LAST`] whole peaks, else of the partial ones.
    fn p90(self) -> Option<u64> {
        let mut peaks = if self.whole.is_empty() {
            self.partial
        } else {
            self.whole
        };
        // Newest first; the same start (two runs at once) by size, so the
        // answer does not depend on the order rows came in.
        peaks.sort_unstable_by(|a, b| b.cmp(a));
        let mut values: Vec<i64> = peaks.into_iter().take(LAST).map(|(_, v)| v).collect();
        values.sort_unstable();
        percentile(&values, 90).map(|v| u64::try_from(v).unwrap_or(0))
    }
}

/// Adds the peaks of `names` (all batches when empty) in `filter`'s runs.
async fn peak_rows(
    db: &Db,
    filter: &Filter,
    names: &[String],
    peaks: &mut HashMap<String, Peaks>,
) -> Result<()> {
    let mut sql = Sql::default();
    let run_ids = filter.run_ids(&mut sql);
    let only = if names.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = names.iter().map(|n| sql.text(n)).collect();
        format!(" AND b.name IN ({})", list.join(", "))
    };
    // The phase word is fixed, not user text.
    let text = format!(
        "SELECT b.name, b.started_at, b.peak_memory, b.usage_partial FROM batches b \
         WHERE b.run_id IN ({run_ids}) AND b.phase = '{batch}' \
         AND b.peak_memory IS NOT NULL{only}",
        batch = Phase::Batch.as_str(),
    );
    for_each_row!(db, sql, &text, |row| {
        let name: String = row.try_get(0)?;
        let started: i64 = row.try_get(1)?;
        let peak: i64 = row.try_get(2)?;
        let partial: Option<i64> = row.try_get(3)?;
        let p = peaks.entry(name).or_default();
        if partial == Some(1) {
            p.partial.push((started, peak));
        } else {
            p.whole.push((started, peak));
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p90_of_the_newest_whole_peaks() {
        // 30 whole peaks, the oldest ten huge: only the newest 20 count.
        let whole: Vec<(i64, i64)> = (0..30)
            .map(|t| (t, if t < 10 { 1 << 40 } else { 100 + t }))
            .collect();
        let p = Peaks {
            whole,
            partial: vec![(99, 1 << 50)],
        };
        // Values 110..=129; nearest rank 18 of 20: 127.
        assert_eq!(p.p90(), Some(127));
        let only_partial = Peaks {
            whole: Vec::new(),
            partial: vec![(1, 5), (2, 7)],
        };
        assert_eq!(only_partial.p90(), Some(7));
        assert_eq!(Peaks::default().p90(), None);
    }
}
