//! Change points in a sequence of pass/fail outcomes: a Bayesian model of
//! piecewise-constant failure rates over Beta-Binomial segments, as LUCI
//! Analysis (Chromium) uses for its test variants.
//!
//! The sequence is a list of *positions* (one commit's results, or one
//! run's when the commit is unknown): `n` outcomes, `k` of them failing. A
//! change can fall only between positions: one commit has one code.
//!
//! A segment's failure rate `p` has the prior `Beta(α, β)`; integrating
//! `p` out, a segment with `k` failures in `n` outcomes has the marginal
//! likelihood `B(k + α, n − k + β) / B(α, β)`. Splitting a segment at `j`
//! is worth `S_j = ln L(left) + ln L(right) − ln L(whole)`: the log Bayes
//! factor of "two rates, changing at j" against "one rate". Each boundary
//! carries the prior odds `ρ / (1 − ρ)` of a change. The segmentation
//! returned is the most probable one under that prior: the one maximising
//! the sum of its segments' `ln L` minus `ln((1 − ρ) / ρ)` per change,
//! found exactly by dynamic programming (optimal partitioning). Unlike
//! binary segmentation it finds a break that was later fixed, which no
//! single split explains.
//!
//! The Bayes factor has the Occam penalty built in: a split costs more the
//! less the data say, so noise inside one rate regime (a 40% flaky test
//! failing four times in a row) is not a change, while a test that fails
//! every run from some commit on is split there even if it failed now and
//! then before.

/// One position: `n` outcomes, `k` failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub n: u64,
    pub k: u64,
}

impl Counts {
    fn add(self, o: Counts) -> Counts {
        Counts {
            n: self.n + o.n,
            k: self.k + o.k,
        }
    }

    fn sub(self, o: Counts) -> Counts {
        Counts {
            n: self.n - o.n,
            k: self.k - o.k,
        }
    }
}

/// The model's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    /// The `Beta(alpha, beta)` prior of a segment's failure rate.
    pub alpha: f64,
    pub beta: f64,
    /// The prior probability of a change between two adjacent positions.
    pub change_prior: f64,
}

/// A change found between positions `at - 1` and `at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// The first position after the change.
    pub at: usize,
    /// The posterior probability that the change is at exactly this
    /// boundary, given one change between its neighbouring changes.
    pub confidence: f64,
    /// The log Bayes factor of the change against none between its
    /// neighbours.
    pub evidence: f64,
}

impl Model {
    /// `ln L(k of n)`: the log marginal likelihood of one segment.
    pub fn log_likelihood(&self, c: Counts) -> f64 {
        ln_beta(c.k as f64 + self.alpha, (c.n - c.k) as f64 + self.beta)
            - ln_beta(self.alpha, self.beta)
    }

    /// The changes in `positions`, in order (their `at` ascending): the
    /// most probable segmentation (exact, by dynamic programming over the
    /// positions: O(m²) for m positions, a few milliseconds for a
    /// thousand), each change with its location's confidence given its
    /// neighbours.
    pub fn segment(&self, positions: &[Counts]) -> Vec<Split> {
        let m = positions.len();
        if m < 2 {
            return Vec::new();
        }
        let ll = Table::new(self, positions);
        // The cost of one more regime: the prior odds against a change.
        let penalty = ((1.0 - self.change_prior) / self.change_prior).ln();
        // best[t]: the highest score of positions 0..t; from[t]: where its
        // last segment starts.
        let mut best = vec![0.0f64; m + 1];
        let mut from = vec![0usize; m + 1];
        for t in 1..=m {
            let mut top = f64::NEG_INFINITY;
            let mut arg = 0;
            for (s, prior) in best[..t].iter().enumerate() {
                let score = if s == 0 { 0.0 } else { prior - penalty } + ll.of(s, t);
                if score > top {
                    top = score;
                    arg = s;
                }
            }
            best[t] = top;
            from[t] = arg;
        }
        let mut bounds = Vec::new();
        let mut t = m;
        while from[t] > 0 {
            bounds.push(from[t]);
            t = from[t];
        }
        bounds.reverse();
        // Each change between its neighbours (or the ends).
        (0..bounds.len())
            .map(|i| {
                let lo = if i == 0 { 0 } else { bounds[i - 1] };
                let hi = bounds.get(i + 1).copied().unwrap_or(m);
                let at = bounds[i];
                let score = |j: usize| ll.of(lo, j) + ll.of(j, hi);
                let here = score(at);
                let total: f64 = (lo + 1..hi).map(|j| (score(j) - here).exp()).sum();
                Split {
                    at,
                    confidence: 1.0 / total,
                    evidence: here - ll.of(lo, hi),
                }
            })
            .collect()
    }
}

/// Segment log likelihoods by table lookups: prefix sums of the counts and
/// `ln Γ` at every argument a segment can need.
struct Table {
    prefix: Vec<Counts>,
    /// `ln Γ(i + α)`, `ln Γ(i + β)`, `ln Γ(i + α + β)` for i = 0..=total n.
    alpha: Vec<f64>,
    beta: Vec<f64>,
    both: Vec<f64>,
    norm: f64,
}

impl Table {
    fn new(model: &Model, positions: &[Counts]) -> Table {
        let mut prefix = Vec::with_capacity(positions.len() + 1);
        prefix.push(Counts::default());
        for p in positions {
            let last = prefix[prefix.len() - 1];
            prefix.push(last.add(*p));
        }
        let n = prefix[prefix.len() - 1].n as usize;
        let table = |shift: f64| (0..=n).map(|i| ln_gamma(i as f64 + shift)).collect();
        Table {
            prefix,
            alpha: table(model.alpha),
            beta: table(model.beta),
            both: table(model.alpha + model.beta),
            norm: ln_beta(model.alpha, model.beta),
        }
    }

    /// `ln L` of positions `from..to`.
    fn of(&self, from: usize, to: usize) -> f64 {
        let c = self.prefix[to].sub(self.prefix[from]);
        let (k, n) = (c.k as usize, c.n as usize);
        self.alpha[k] + self.beta[n - k] - self.both[n] - self.norm
    }
}

/// `ln B(a, b)`.
fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// `ln Γ(x)` for `x > 0`: the Lanczos approximation (g = 7, 9 terms),
/// accurate to about 15 digits; the standard library's is not stable.
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: Model = Model {
        alpha: 0.5,
        beta: 0.5,
        change_prior: 0.02,
    };

    /// One position per mark: `.` passed, `F` failed.
    fn positions(marks: &str) -> Vec<Counts> {
        marks
            .chars()
            .map(|c| Counts {
                n: 1,
                k: u64::from(c == 'F'),
            })
            .collect()
    }

    fn changes(marks: &str) -> Vec<usize> {
        MODEL
            .segment(&positions(marks))
            .iter()
            .map(|s| s.at)
            .collect()
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut f = 1.0f64;
        for n in 1..30u32 {
            // Γ(n) = (n − 1)!
            assert!((ln_gamma(f64::from(n)) - f.ln()).abs() < 1e-9, "{n}");
            f *= f64::from(n);
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
        assert!((ln_gamma(0.25) - 1.288_022_524_698_077_5).abs() < 1e-12);
    }

    #[test]
    fn a_clean_break_is_found_where_it_is() {
        assert_eq!(changes("...................FFFFF"), [19]);
        assert_eq!(changes("..........FFF"), [10]);
        // Broken, then fixed.
        assert_eq!(changes("..........FFFFFFFF.........."), [10, 18]);
    }

    #[test]
    fn noise_in_one_regime_is_no_change() {
        assert!(changes("").is_empty());
        assert!(changes("F").is_empty());
        assert!(changes("FFFFFFFFF").is_empty());
        assert!(changes("..........").is_empty());
        // 40% flaky with a four-failure streak.
        assert!(changes(".F..F.FFFF..F.F...F..F.F.").is_empty());
        // Rare failures.
        assert!(changes("....F.........F.........F.....").is_empty());
    }

    #[test]
    fn a_break_after_flakiness_is_located() {
        assert_eq!(changes("..F......F.....F....FFFFFFFF"), [20]);
    }

    #[test]
    fn confidence_is_high_for_a_sharp_break_and_lower_for_a_blurred_one() {
        let sharp = MODEL.segment(&positions("..............FFFFFF"));
        assert!(sharp[0].confidence > 0.8, "{sharp:?}");
        // A pass just after the break blurs where it was.
        let blurred = MODEL.segment(&positions("..............F.FFFFFFFF"));
        assert!(blurred[0].confidence < sharp[0].confidence, "{blurred:?}");
    }

    #[test]
    fn positions_keep_a_commit_together() {
        // One commit with 3 passes and 3 failures, then failing commits:
        // the change cannot split the mixed commit.
        let mut p = positions("..........");
        p.push(Counts { n: 6, k: 3 });
        p.extend(positions("FFFFFF"));
        let s = MODEL.segment(&p);
        assert!(s.iter().all(|s| s.at == 10 || s.at == 11), "{s:?}");
    }
}
