//! `--partition KIND:K/N`: which batches shard K of N runs, so that a CI
//! matrix of N jobs runs every batch exactly once.
//!
//! Every shard computes the whole assignment from the same inputs and
//! keeps its own part; nothing is exchanged between shards. So each kind
//! is a pure function of what all shards share:
//!
//! - `count`: batch i of the selected ones, in config order, goes to shard
//!   i mod N. Even counts; moves when batches are added or removed.
//! - `hash`: FNV-1a (64-bit) of the batch name, through MurmurHash3's
//!   64-bit finalizer, mod N. A batch stays in its shard whatever else
//!   changes; the hash is written out here, not std's `DefaultHasher`,
//!   whose output may change between Rust releases. (FNV-1a alone is
//!   poor mod a power of two: its lowest bit is the parity of the names'
//!   bytes, so `hash:K/2` could put every batch in one shard.)
//! - `duration`: longest processing time first — batches by expected
//!   duration × threads, longest first (ties by name), each to the shard
//!   with the least so far (ties: the lowest). Balances the shards' time;
//!   needs the same durations in every shard (see the app, which reads the
//!   history as of one shared instant), and falls back to `hash` when the
//!   history knows no batch.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The most shards `--partition` accepts.
pub const MAX_SHARDS: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Count,
    Hash,
    Duration,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Count => "count",
            Strategy::Hash => "hash",
            Strategy::Duration => "duration",
        }
    }
}

/// Shard `shard` (1-based) of `shards`, split by `strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub strategy: Strategy,
    pub shard: u32,
    pub shards: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    #[error(
        "`{0}` is not a partition: expected count:K/N, hash:K/N or duration:K/N (shard K of N)"
    )]
    Syntax(String),
    #[error("`{given}`: unknown kind `{kind}`: expected count, hash or duration")]
    Kind { given: String, kind: String },
    #[error("`{given}`: N must be between 1 and {MAX_SHARDS}")]
    Shards { given: String },
    #[error("`{given}`: shard K must be between 1 and N ({shards})")]
    Shard { given: String, shards: u32 },
}

impl FromStr for Partition {
    type Err = PartitionError;

    fn from_str(s: &str) -> Result<Partition, PartitionError> {
        let syntax = || PartitionError::Syntax(s.to_owned());
        let (kind, rest) = s.split_once(':').ok_or_else(syntax)?;
        let (k, n) = rest.split_once('/').ok_or_else(syntax)?;
        let number = |v: &str| {
            // Digits only: no sign, no spaces.
            v.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| v.parse::<u64>().ok())
                .flatten()
        };
        let (k, n) = (number(k).ok_or_else(syntax)?, number(n).ok_or_else(syntax)?);
        let strategy = match kind {
            "count" => Strategy::Count,
            "hash" => Strategy::Hash,
            "duration" => Strategy::Duration,
            _ => {
                return Err(PartitionError::Kind {
                    given: s.to_owned(),
                    kind: kind.to_owned(),
                });
            }
        };
        let shards = u32::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_SHARDS).contains(n))
            .ok_or_else(|| PartitionError::Shards {
                given: s.to_owned(),
            })?;
        let shard = u32::try_from(k)
            .ok()
            .filter(|k| (1..=shards).contains(k))
            .ok_or_else(|| PartitionError::Shard {
                given: s.to_owned(),
                shards,
            })?;
        Ok(Partition {
            strategy,
            shard,
            shards,
        })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}",
            self.strategy.as_str(),
            self.shard,
            self.shards
        )
    }
}

/// Every unit's shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// 0-based shard of each unit, in the order given.
    pub shard_of: Vec<u32>,
    /// What split them: `duration` falls back to `hash` without durations.
    pub strategy: Strategy,
}

impl Assignment {
    /// Whether unit `i` belongs to `p`'s shard.
    pub fn keeps(&self, p: &Partition, i: usize) -> bool {
        self.shard_of.get(i) == Some(&(p.shard - 1))
    }

    /// A short digest of the whole assignment (names and shards): every
    /// shard of one CI run must print the same, else they split differently.
    pub fn fingerprint(&self, names: &[&str]) -> String {
        let mut text = Vec::new();
        for (name, shard) in names.iter().zip(&self.shard_of) {
            text.extend_from_slice(name.as_bytes());
            text.push(0);
            text.extend_from_slice(shard.to_string().as_bytes());
            text.push(b'\n');
        }
        format!("{:08x}", fnv1a64(&text) >> 32)
    }
}

impl Partition {
    /// Splits `names` (the selected batches, in config order). `weights`
    /// are their expected durations × threads, `None` when the history
    /// knows none of them.
    pub fn assign(&self, names: &[&str], weights: Option<&[Duration]>) -> Assignment {
        let n = self.shards;
        match (self.strategy, weights) {
            (Strategy::Count, _) => Assignment {
                // Fewer than 2^32 batches: the index fits.
                shard_of: (0..names.len())
                    .map(|i| (i as u64 % u64::from(n)) as u32)
                    .collect(),
                strategy: Strategy::Count,
            },
            (Strategy::Duration, Some(w)) if w.len() == names.len() => Assignment {
                shard_of: longest_first(names, w, n),
                strategy: Strategy::Duration,
            },
            (Strategy::Hash | Strategy::Duration, _) => Assignment {
                shard_of: names.iter().map(|name| hash_shard(name, n)).collect(),
                strategy: Strategy::Hash,
            },
        }
    }
}

/// FNV-1a, 64-bit: a stable hash, the same on every machine and release.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// MurmurHash3's `fmix64`: every input bit reaches every output bit.
fn mix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn hash_shard(name: &str, shards: u32) -> u32 {
    // Below `shards`, so it fits.
    (mix64(fnv1a64(name.as_bytes())) % u64::from(shards)) as u32
}

/// Greedy LPT: the longest unit first (ties by name) to the least-loaded
/// shard (ties: the lowest index).
fn longest_first(names: &[&str], weights: &[Duration], shards: u32) -> Vec<u32> {
    let mut units: Vec<usize> = (0..names.len()).collect();
    units.sort_by(|&a, &b| {
        weights[b]
            .cmp(&weights[a])
            .then_with(|| names[a].cmp(names[b]))
    });
    let mut loads: BinaryHeap<Reverse<(Duration, u32)>> =
        (0..shards).map(|s| Reverse((Duration::ZERO, s))).collect();
    let mut shard_of = vec![0; names.len()];
    for i in units {
        // `shards` ≥ 1, and every shard popped is pushed back.
        let Some(Reverse((load, s))) = loads.pop() else {
            break;
        };
        shard_of[i] = s;
        loads.push(Reverse((load.saturating_add(weights[i]), s)));
    }
    shard_of
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Partition {
        s.parse().unwrap()
    }

    fn names(n: usize) -> Vec<String> {
        // Names like real ones: a few families, numbered.
        let families = ["net", "bpf", "vm-boot", "unit", "fs.ext4", "go_pkg"];
        (0..n)
            .map(|i| format!("{}-{i}", families[i % families.len()]))
            .collect()
    }

    #[test]
    fn fnv1a64_known_values() {
        // The reference values of the FNV test suite.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        // And what shards depend on: these must never change.
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(1), 0xb456_bcfc_34c2_cb2c);
        assert_eq!(
            ["net", "bpf", "unit", "vm", "selftests"].map(|n| hash_shard(n, 4)),
            HASH_SHARDS_OF_4
        );
    }

    /// Where these names go among 4 shards, for good: changing it moves
    /// batches between the machines of every user's CI matrix.
    const HASH_SHARDS_OF_4: [u32; 5] = [3, 2, 1, 2, 1];

    #[test]
    fn hash_spreads_names_over_powers_of_two() {
        // FNV-1a's low bits are its bytes' parity; the finalizer fixes that.
        let real = ["unit", "integration", "stuck-vm", "daemon-leak"];
        let two: Vec<u32> = real.iter().map(|n| hash_shard(n, 2)).collect();
        assert!(two.contains(&0) && two.contains(&1), "{two:?}");
        for n in [2u32, 4, 8] {
            let mut counts = vec![0usize; n as usize];
            for name in names(800) {
                counts[hash_shard(&name, n) as usize] += 1;
            }
            let mean = 800 / n as usize;
            assert!(
                counts
                    .iter()
                    .all(|&c| c * 10 >= mean * 7 && c * 10 <= mean * 13),
                "N={n}: {counts:?}"
            );
        }
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(
            p("count:1/1"),
            Partition {
                strategy: Strategy::Count,
                shard: 1,
                shards: 1
            }
        );
        assert_eq!(p("hash:3/4").to_string(), "hash:3/4");
        assert_eq!(p("duration:1000/1000").shard, 1000);
        let err = |s: &str| s.parse::<Partition>().unwrap_err();
        for bad in [
            "",
            "hash",
            "hash:",
            "hash:1",
            "hash:1/",
            "hash:/4",
            "1/4",
            "hash:a/4",
            "hash:1/4/5",
            "hash:-1/4",
            "hash:+1/4",
            "hash: 1/4",
            "hash:1.0/4",
        ] {
            assert!(
                matches!(err(bad), PartitionError::Syntax(_)),
                "{bad}: {:?}",
                err(bad)
            );
        }
        assert!(matches!(err("size:1/4"), PartitionError::Kind { .. }));
        assert!(matches!(err("Hash:1/4"), PartitionError::Kind { .. }));
        assert!(matches!(err("hash:1/0"), PartitionError::Shards { .. }));
        assert!(matches!(err("hash:1/1001"), PartitionError::Shards { .. }));
        assert!(matches!(
            err("hash:1/99999999999999999999"),
            PartitionError::Syntax(_)
        ));
        assert!(matches!(err("hash:0/4"), PartitionError::Shard { .. }));
        assert!(matches!(err("hash:5/4"), PartitionError::Shard { .. }));
        assert_eq!(
            err("hash:5/4").to_string(),
            "`hash:5/4`: shard K must be between 1 and N (4)"
        );
    }

    /// For N = 1..8, every kind: each batch is kept by exactly one shard.
    #[test]
    fn every_batch_in_exactly_one_shard() {
        let owned = names(300);
        let names: Vec<&str> = owned.iter().map(String::as_str).collect();
        let weights: Vec<Duration> = (0..names.len())
            .map(|i| Duration::from_millis((i as u64 * 7919) % 1000 + 1))
            .collect();
        for kind in ["count", "hash", "duration"] {
            for n in 1..=8u32 {
                let mut owners = vec![0u32; names.len()];
                for k in 1..=n {
                    let part = p(&format!("{kind}:{k}/{n}"));
                    let a = part.assign(&names, Some(&weights));
                    for (i, owner) in owners.iter_mut().enumerate() {
                        *owner += u32::from(a.keeps(&part, i));
                    }
                }
                assert!(owners.iter().all(|&c| c == 1), "{kind} N={n}: {owners:?}");
            }
        }
    }

    #[test]
    fn count_and_hash_are_what_they_say() {
        let names = ["a", "b", "c", "d", "e"];
        let a = p("count:2/2").assign(&names, None);
        assert_eq!(a.shard_of, [0, 1, 0, 1, 0]);
        let a = p("hash:1/3").assign(&names, None);
        let want: Vec<u32> = names.iter().map(|n| hash_shard(n, 3)).collect();
        assert_eq!(a.shard_of, want);
        // A hash shard does not move when other batches come and go.
        let more = p("hash:1/3").assign(&["x", "a", "c", "y"], None);
        assert_eq!((more.shard_of[1], more.shard_of[2]), (want[0], want[2]));
    }

    #[test]
    fn duration_balances_longest_first() {
        let names = ["a", "b", "c", "d", "e", "f"];
        let w: Vec<Duration> = [7, 5, 4, 3, 3, 2].map(Duration::from_secs).to_vec();
        let a = p("duration:1/2").assign(&names, Some(&w));
        assert_eq!(a.strategy, Strategy::Duration);
        // a(7)→0, b(5)→1, c(4)→1 (9), d(3)→0 (10), e(3)→1 (12), f(2)→0 (12).
        assert_eq!(a.shard_of, [0, 1, 1, 0, 1, 0]);
        // 300 batches on 8 shards: within the longest batch of even.
        let owned = super::tests::names(300);
        let names: Vec<&str> = owned.iter().map(String::as_str).collect();
        let w: Vec<Duration> = (0..300u64)
            .map(|i| Duration::from_secs((i * 7919) % 600 + 1))
            .collect();
        let a = p("duration:1/8").assign(&names, Some(&w));
        let mut loads = [Duration::ZERO; 8];
        for (i, s) in a.shard_of.iter().enumerate() {
            loads[*s as usize] += w[i];
        }
        let (lo, hi) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
        assert!(
            hi.saturating_sub(*lo) <= *w.iter().max().unwrap(),
            "{loads:?}"
        );
        // Far better than hashing the same batches.
        let h = p("hash:1/8").assign(&names, None);
        let mut hl = [Duration::ZERO; 8];
        for (i, s) in h.shard_of.iter().enumerate() {
            hl[*s as usize] += w[i];
        }
        assert!(
            hi.saturating_sub(*lo)
                < hl.iter()
                    .max()
                    .unwrap()
                    .saturating_sub(*hl.iter().min().unwrap())
        );
    }

    #[test]
    fn duration_without_history_is_hash() {
        let names = ["a", "b", "c"];
        let a = p("duration:2/3").assign(&names, None);
        assert_eq!(a, p("hash:2/3").assign(&names, None));
        assert_eq!(a.strategy, Strategy::Hash);
    }

    #[test]
    fn fingerprint_tells_assignments_apart() {
        let names = ["a", "b", "c", "d"];
        let one = p("count:1/2").assign(&names, None);
        let two = p("count:2/2").assign(&names, None);
        // Every shard computes the same assignment.
        assert_eq!(one.fingerprint(&names), two.fingerprint(&names));
        let other = p("hash:1/2").assign(&names, None);
        if other.shard_of != one.shard_of {
            assert_ne!(other.fingerprint(&names), one.fingerprint(&names));
        }
        assert_eq!(one.fingerprint(&names).len(), 8);
    }
}
