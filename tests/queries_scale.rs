//! A large history for timing the queries (bench/history_queries.sh):
//! 10,000 tests × 100 runs = 1,000,000 results, about 2% of the tests
//! flaky, a few regressed. Ignored by default; run with
//!
//! ```sh
//! WARDEN_SCALE_HISTORY=sqlite:/tmp/scale.db \
//!     cargo test --release --test queries_scale -- --ignored --nocapture
//! ```
//!
//! (or a `postgres://` URL of an empty database).

use std::time::{Duration, SystemTime};

use warden::history::model::{BatchRecord, Label, Labels, RunRecord, RunSource, TestRecord};
use warden::history::{Access, Db, Location};
use warden::phase::Phase;
use warden::status::{RunStatus, Status, TestStatus};

const TESTS: usize = 10_000;
const RUNS: usize = 100;
const SUITES: usize = 10;
/// One test in 50 is flaky; it fails (or flakes) in about one run in ten.
const FLAKY_EVERY: usize = 50;
/// These tests pass, then fail in every one of their label set's last runs.
const REGRESSED: &[usize] = &[17, 4242, 9001];
const REGRESSED_RUNS: usize = 5;

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn name(t: usize) -> String {
    format!("suite{:02}/group_{:03}/test_{t:05}", t % SUITES, t / 100)
}

#[tokio::test]
#[ignore = "writes a million results; run by bench/history_queries.sh"]
async fn seed_scale_history() {
    let location: Location = std::env::var("WARDEN_SCALE_HISTORY")
        .expect("WARDEN_SCALE_HISTORY=sqlite:PATH (a new file) or postgres://… (an empty database)")
        .parse()
        .unwrap();
    if let Location::Sqlite(path) = &location {
        assert!(!path.exists(), "{} exists: give a new path", path.display());
    }
    let db = Db::open(&location, Access::Write).await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let started = std::time::Instant::now();
    let base = SystemTime::now() - Duration::from_secs(3600 * RUNS as u64);
    for k in 0..RUNS {
        let at = base + Duration::from_secs(3600 * k as u64);
        let arch = if k % 2 == 0 { "x86_64" } else { "aarch64" };
        let labels: Labels = [format!("arch={arch}"), "compiler=gcc".into()]
            .iter()
            .map(|l| l.parse::<Label>().unwrap())
            .collect();
        let run = db
            .begin_run(&RunRecord {
                uuid: format!("scale-{k:03}"),
                started: at,
                commit: Some(format!("{:016x}{k:024x}", rng.next())),
                branch: Some("main".into()),
                host: "scale".into(),
                labels,
                source: RunSource::Run,
            })
            .await
            .unwrap();
        let mut suites: Vec<BatchRecord> = (0..SUITES)
            .map(|s| BatchRecord {
                name: format!("suite{s:02}"),
                phase: Phase::Batch,
                status: Status::Passed,
                reason: String::new(),
                started: at,
                duration: Duration::from_millis(60_000 + rng.below(30_000)),
                log: None,
                attempts: Vec::new(),
                tests: Vec::with_capacity(TESTS / SUITES),
                usage: None,
            })
            .collect();
        for t in 0..TESTS {
            let status = if REGRESSED.contains(&t) && k >= RUNS - 2 * REGRESSED_RUNS && k % 2 == 0 {
                TestStatus::Failed
            } else if t % FLAKY_EVERY == 0 && rng.below(10) == 0 {
                if rng.below(2) == 0 {
                    TestStatus::Failed
                } else {
                    TestStatus::Flaky
                }
            } else if t % 97 == 0 {
                TestStatus::Skipped(None)
            } else {
                TestStatus::Passed
            };
            suites[t % SUITES].tests.push(TestRecord {
                name: name(t),
                message: (status == TestStatus::Failed).then(|| "assertion failed".into()),
                status,
                duration: Some(Duration::from_millis(1 + rng.below(2_000))),
            });
        }
        db.record_batches(run, &suites).await.unwrap();
        db.finish_run(run, RunStatus::Passed, at + Duration::from_secs(1800))
            .await
            .unwrap();
    }
    db.close().await;
    eprintln!(
        "seeded {} results in {:.1?}",
        TESTS * RUNS,
        started.elapsed()
    );
}
