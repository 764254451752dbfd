//! What a hunt's counts say, in words. The control (no pressure) is judged
//! on its own: no failure is stable, every attempt failing is broken,
//! anything between is flaky on its own. Every other arm is compared with
//! the control by a one-sided Fisher exact test: does it fail more often
//! than the control, beyond chance at 5%? The rates carry Wilson's 95%
//! interval (`history::classify::interval`), as the flaky statistics do.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::arms::Pressure;
use crate::history::classify::interval::wilson;

/// Below this one-sided p-value an arm is sensitive to its pressure.
pub const ALPHA: f64 = 0.05;

/// What one arm measured: its attempts that ran to an end (not those a
/// stop cut off).
#[derive(Debug, Clone)]
pub struct ArmCounts {
    pub pressure: Pressure,
    pub runs: u64,
    pub failures: u64,
    pub durations: Vec<Duration>,
    /// Per attempt whose usage says so: time stalled on CPU, memory, I/O.
    pub cpu_stalls: Vec<Duration>,
    pub memory_stalls: Vec<Duration>,
    pub io_stalls: Vec<Duration>,
    /// The failed attempts' logs, in the order they ended.
    pub failed_logs: Vec<PathBuf>,
    /// Attempts whose program never started (its limits could not be
    /// applied, it could not be spawned): no answer, counted apart.
    pub errors: u64,
    /// Why the first of them did not start.
    pub error: Option<String>,
}

impl ArmCounts {
    pub fn new(pressure: Pressure) -> ArmCounts {
        ArmCounts {
            pressure,
            runs: 0,
            failures: 0,
            durations: Vec::new(),
            cpu_stalls: Vec::new(),
            memory_stalls: Vec::new(),
            io_stalls: Vec::new(),
            failed_logs: Vec::new(),
            errors: 0,
            error: None,
        }
    }
}

/// The verdict on one arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Control: no attempt failed.
    Stable,
    /// Control: some failed, some passed.
    Flaky,
    /// Control: every attempt failed.
    Broken,
    /// Fails more often than the control (Fisher, one-sided, 5%).
    Sensitive,
    NotSensitive,
    /// The control fails every time: the arm cannot fail more.
    Undecided,
    /// No attempt of the arm ran to its end (the hunt stopped first).
    NotRun,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Stable => "stable",
            Verdict::Flaky => "flaky",
            Verdict::Broken => "broken",
            Verdict::Sensitive => "sensitive",
            Verdict::NotSensitive => "not-sensitive",
            Verdict::Undecided => "undecided",
            Verdict::NotRun => "not-run",
        }
    }
}

/// One arm judged: its figures and its sentence.
#[derive(Debug, Clone, Serialize)]
pub struct ArmReport {
    /// The pressure as written (`io=10M`; `none` for the control).
    pub arm: String,
    pub runs: u64,
    pub failures: u64,
    /// Attempts that never started, not in `runs` ([`ArmCounts::errors`]).
    pub errors: u64,
    /// Failures / runs; 0 when nothing ran.
    pub failure_rate: f64,
    /// Wilson's 95% interval of the failure rate.
    pub ci_low: f64,
    pub ci_high: f64,
    pub median_ms: Option<u64>,
    /// The median time its attempts were stalled ("the pressure it saw"),
    /// where the host measures it.
    pub cpu_stall_ms: Option<u64>,
    pub memory_stall_ms: Option<u64>,
    pub io_stall_ms: Option<u64>,
    /// The one-sided Fisher p-value against the control (not for the control).
    pub p_value: Option<f64>,
    pub verdict: Verdict,
    /// In words: `io=10M: 20/20 failed — sensitive to I/O`.
    pub sentence: String,
    pub failed_logs: Vec<PathBuf>,
}

/// Judges every arm; `arms[0]` is the control.
pub fn judge(arms: &[ArmCounts]) -> Vec<ArmReport> {
    let control = arms.first().map(|c| (c.failures, c.runs));
    arms.iter()
        .enumerate()
        .map(|(i, a)| judge_one(a, if i == 0 { None } else { control }))
        .collect()
}

fn judge_one(a: &ArmCounts, control: Option<(u64, u64)>) -> ArmReport {
    let (k, n) = (a.failures, a.runs);
    let (lo, hi) = wilson(k, n);
    let ci = format!("95% CI {}–{}%", pct(lo), pct(hi));
    let arm = a.pressure.to_string();
    let (verdict, p_value, sentence) = match control {
        _ if n == 0 => (
            Verdict::NotRun,
            None,
            match &a.error {
                Some(why) => format!("{arm}: no attempt could start: {why}"),
                None => format!("{arm}: not run (the hunt stopped)"),
            },
        ),
        None if k == 0 => (
            Verdict::Stable,
            None,
            format!("stable with no pressure (0/{n}; {ci})"),
        ),
        None => {
            let (v, what) = if k == n {
                (Verdict::Broken, "broken")
            } else {
                (Verdict::Flaky, "flaky on its own")
            };
            let rate = pct(k as f64 / n as f64);
            (
                v,
                None,
                format!("fails {k}/{n} ({rate}%, {ci}) with no pressure: {what}"),
            )
        }
        Some((ck, cn)) if cn > 0 && ck == cn => (
            Verdict::Undecided,
            None,
            format!("{arm}: {k}/{n} failed — cannot tell: it fails with no pressure too"),
        ),
        Some((ck, cn)) => {
            let p = fisher_greater(k, n, ck, cn);
            let what = a.pressure.resource();
            let more = cn == 0 || (k as f64 / n as f64) > (ck as f64 / cn as f64);
            if p < ALPHA && more {
                (
                    Verdict::Sensitive,
                    Some(p),
                    format!("{arm}: {k}/{n} failed — sensitive to {what}"),
                )
            } else {
                (
                    Verdict::NotSensitive,
                    Some(p),
                    format!("{arm}: {k}/{n} failed — not sensitive to {what}"),
                )
            }
        }
    };
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    ArmReport {
        arm,
        runs: n,
        failures: k,
        errors: a.errors,
        failure_rate: if n == 0 { 0.0 } else { k as f64 / n as f64 },
        ci_low: lo,
        ci_high: hi,
        median_ms: median(&a.durations).map(ms),
        cpu_stall_ms: median(&a.cpu_stalls).map(ms),
        memory_stall_ms: median(&a.memory_stalls).map(ms),
        io_stall_ms: median(&a.io_stalls).map(ms),
        p_value,
        verdict,
        sentence,
        failed_logs: by_attempt(&a.failed_logs),
    }
}

/// Logs in attempt order (`7.log` before `12.log`), whatever order the
/// attempts ended in.
fn by_attempt(logs: &[PathBuf]) -> Vec<PathBuf> {
    let mut v = logs.to_vec();
    v.sort_by_key(|p| {
        let n = p.file_stem().and_then(|s| s.to_str()?.parse::<u64>().ok());
        (p.parent().map(PathBuf::from), n, p.clone())
    });
    v
}

/// A rate as a whole percentage.
fn pct(r: f64) -> String {
    format!("{:.0}", r * 100.0)
}

/// The median (the mean of the middle two for an even count).
pub fn median(values: &[Duration]) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2
    })
}

/// One-sided Fisher exact test: the probability, were failures as likely
/// in the arm as in the control, that the arm would have `k` or more of
/// all `k + ck` failures among its `n` of the `n + cn` attempts (the
/// hypergeometric upper tail).
pub fn fisher_greater(k: u64, n: u64, ck: u64, cn: u64) -> f64 {
    let total = n + cn;
    let failures = k + ck;
    // ln(i!) for i in 0..=total.
    let mut ln_fact = Vec::with_capacity(total as usize + 1);
    ln_fact.push(0.0_f64);
    for i in 1..=total {
        let prev = ln_fact[ln_fact.len() - 1];
        ln_fact.push(prev + (i as f64).ln());
    }
    let ln_choose =
        |a: u64, b: u64| ln_fact[a as usize] - ln_fact[b as usize] - ln_fact[(a - b) as usize];
    let denominator = ln_choose(total, n);
    let top = failures.min(n);
    // x failures in the arm needs n − x passes there, of total − failures.
    let mut p = 0.0;
    for x in k..=top {
        if n - x > total - failures {
            continue;
        }
        p += (ln_choose(failures, x) + ln_choose(total - failures, n - x) - denominator).exp();
    }
    p.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(p: Pressure, failures: u64, runs: u64) -> ArmCounts {
        ArmCounts {
            failures,
            runs,
            durations: vec![Duration::from_millis(100); runs as usize],
            ..ArmCounts::new(p)
        }
    }

    #[test]
    fn fisher_matches_known_values() {
        // Exact sums of binomial coefficients (Python's math.comb).
        // 20/20 against 0/20: 1 / C(40, 20).
        let p = fisher_greater(20, 20, 0, 20);
        assert!((p - 1.0 / 137_846_528_820.0).abs() < 1e-15, "{p}");
        // 6/6 against 0/6: 1 / C(12, 6).
        assert!((fisher_greater(6, 6, 0, 6) - 1.0 / 924.0).abs() < 1e-12);
        let p = fisher_greater(3, 20, 4, 20);
        assert!((p - 0.796_257_796_3).abs() < 1e-9, "{p}");
        let p = fisher_greater(9, 20, 3, 20);
        assert!((p - 0.041_179_388_5).abs() < 1e-9, "{p}");
        assert!((fisher_greater(0, 10, 0, 10) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn verdicts_in_words() {
        let r = judge(&[
            counts(Pressure::None, 4, 20),
            counts(Pressure::Io(10 << 20), 20, 20),
            counts(Pressure::Cpu(50), 3, 20),
            counts(Pressure::NoiseIo, 0, 0),
        ]);
        assert_eq!(r[0].verdict, Verdict::Flaky);
        assert_eq!(
            r[0].sentence,
            "fails 4/20 (20%, 95% CI 8–42%) with no pressure: flaky on its own"
        );
        assert_eq!(r[1].verdict, Verdict::Sensitive);
        assert_eq!(r[1].sentence, "io=10M: 20/20 failed — sensitive to I/O");
        assert_eq!(r[2].verdict, Verdict::NotSensitive);
        assert_eq!(r[2].sentence, "cpu=50%: 3/20 failed — not sensitive to CPU");
        assert_eq!(r[3].verdict, Verdict::NotRun);
        assert_eq!(r[1].median_ms, Some(100));

        let r = judge(&[counts(Pressure::None, 0, 20)]);
        assert_eq!(r[0].verdict, Verdict::Stable);
        assert_eq!(
            r[0].sentence,
            "stable with no pressure (0/20; 95% CI 0–16%)"
        );

        let r = judge(&[
            counts(Pressure::None, 5, 5),
            counts(Pressure::Cpu(50), 5, 5),
        ]);
        assert_eq!(r[0].verdict, Verdict::Broken);
        assert_eq!(r[1].verdict, Verdict::Undecided);
    }

    #[test]
    fn an_arm_whose_attempts_could_not_start_says_why() {
        let mut io = counts(Pressure::Io(4 << 20), 0, 0);
        io.errors = 3;
        io.error = Some("cannot apply its limits: no blkio".into());
        let r = judge(&[counts(Pressure::None, 0, 3), io]);
        assert_eq!(r[1].verdict, Verdict::NotRun);
        assert_eq!(r[1].errors, 3);
        assert_eq!(
            r[1].sentence,
            "io=4M: no attempt could start: cannot apply its limits: no blkio"
        );
    }

    #[test]
    fn fewer_failures_than_the_control_is_not_sensitive() {
        let r = judge(&[
            counts(Pressure::None, 10, 20),
            counts(Pressure::Cpu(50), 0, 20),
        ]);
        assert_eq!(r[1].verdict, Verdict::NotSensitive);
    }

    #[test]
    fn medians() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), Some(ms(2)));
        assert_eq!(
            median(&[ms(4), ms(1), ms(2), ms(3)]),
            Some(Duration::from_micros(2500))
        );
    }
}
