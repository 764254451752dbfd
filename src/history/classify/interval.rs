//! The 95% interval of a failure rate: Wilson's score interval.
//!
//! Chosen over the normal approximation (which gives `[0, 0]` for 0 of 5
//! and leaves `[0, 1]`) and over an exact Beta interval (which needs the
//! inverse incomplete beta function): it has good coverage for the small
//! counts a test's history has, and a closed form.

/// z for a two-sided 95% interval.
const Z: f64 = 1.959_963_984_540_054;

/// The 95% interval of the rate behind `k` of `n`; `(0, 1)` when `n` is 0.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = n as f64;
    let p = k as f64 / n;
    let z2 = Z * Z;
    let centre = p + z2 / (2.0 * n);
    let spread = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let d = 1.0 + z2 / n;
    (
        ((centre - spread) / d).clamp(0.0, 1.0),
        ((centre + spread) / d).clamp(0.0, 1.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-4 && (a.1 - b.1).abs() < 1e-4
    }

    #[test]
    fn known_values() {
        // Values from the formula as published (Wilson 1927; e.g. R's
        // prop.test without continuity correction).
        assert!(close(wilson(0, 10), (0.0, 0.2775)), "{:?}", wilson(0, 10));
        assert!(
            close(wilson(5, 10), (0.2366, 0.7634)),
            "{:?}",
            wilson(5, 10)
        );
        assert!(close(wilson(10, 10), (0.7225, 1.0)), "{:?}", wilson(10, 10));
        assert_eq!(wilson(0, 0), (0.0, 1.0));
        let (lo, hi) = wilson(30, 100);
        assert!(lo < 0.3 && hi > 0.3 && hi - lo < 0.2);
    }
}
