//! Charts as SVG drawn on the server: a pass-rate sparkline, a strip of
//! results, a duration chart with its p50 and p90. No script, no library,
//! nothing fetched; built with [`maud`] like the pages, so the text in
//! tooltips (`<title>`) is escaped the same way.

use std::time::SystemTime;

use maud::{Markup, html};

use crate::status::TestStatus;

pub fn colour(s: &TestStatus) -> &'static str {
    match s {
        TestStatus::Passed => "#2f9e44",
        TestStatus::Failed | TestStatus::Error(_) => "#e03131",
        TestStatus::Flaky => "#f08c00",
        TestStatus::Skipped(_) => "#adb5bd",
    }
}

/// Two decimals: enough for a pixel, and short.
fn n(v: f64) -> String {
    format!("{:.2}", v)
}

/// The range a [`sparkline`]'s y axis spans for `rates`: their lowest to
/// their highest with a margin of a tenth of the spread on each side (at
/// least 0.1 percentage point, so equal rates draw a flat line in the
/// middle), kept within 0–100%.
pub fn sparkline_range(rates: &[f64]) -> (f64, f64) {
    let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let margin = ((hi - lo) * 0.1).max(0.001);
    let (mut bottom, mut top) = (lo - margin, hi + margin);
    if bottom < 0.0 {
        top = (top - bottom).min(1.0);
        bottom = 0.0;
    }
    if top > 1.0 {
        bottom = (bottom - (top - 1.0)).max(0.0);
        top = 1.0;
    }
    (bottom, top)
}

/// Pass rates (0–1), oldest first, as a small line; the last point marked.
/// The y axis fits the rates ([`sparkline_range`]): 99.0% and 99.7% are
/// far apart, not one flat line near the top; the highest and lowest
/// rate are written beside it.
pub fn sparkline(rates: &[f64], title: &str) -> Markup {
    const PLOT: f64 = 100.0;
    const W: f64 = 140.0;
    const H: f64 = 24.0;
    const PAD: f64 = 3.0;
    let count = rates.len();
    let x = |i: usize| {
        if count <= 1 {
            PLOT / 2.0
        } else {
            2.0 + i as f64 * (PLOT - 4.0) / (count - 1) as f64
        }
    };
    let (bottom, top) = sparkline_range(rates);
    let y = |v: f64| PAD + (top - v.clamp(bottom, top)) / (top - bottom) * (H - 2.0 * PAD);
    let points: Vec<String> = rates
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{},{}", n(x(i)), n(y(*v))))
        .collect();
    let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    html! {
        svg.sparkline width=(W) height=(H) viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(title) {
            title { (title) }
            @if count > 0 {
                line.max x1="0" x2=(PLOT) y1=(n(y(hi))) y2=(n(y(hi))) stroke="#dee2e6" stroke-width="1" {}
                text.max x=(PLOT + 3.0) y=(n(y(hi).max(7.0) + 1.0)) font-size="8" fill="#495057" { (super::html::percent(hi)) }
                @if hi > lo {
                    line.min x1="0" x2=(PLOT) y1=(n(y(lo))) y2=(n(y(lo))) stroke="#dee2e6" stroke-width="1" {}
                    text.min x=(PLOT + 3.0) y=(n(y(lo).min(H - 1.0))) font-size="8" fill="#495057" { (super::html::percent(lo)) }
                }
            }
            @if count > 1 {
                polyline points=(points.join(" ")) fill="none" stroke="#1c7ed6" stroke-width="1.5" {}
            }
            @if let Some(last) = rates.last() {
                circle cx=(n(x(count - 1))) cy=(n(y(*last))) r="2" fill="#1c7ed6" {}
            }
        }
    }
}

/// One result in a [`strip`].
pub struct Cell {
    pub status: TestStatus,
    /// Where a click goes (the run).
    pub href: String,
    /// The tooltip.
    pub title: String,
    /// A change of regime begins at this result: what the marker drawn
    /// before it says.
    pub change: Option<String>,
    /// The result is from a mass failure (counted for no verdict): drawn
    /// grey.
    pub mass: bool,
}

/// Results as a row of coloured cells, oldest first, wrapping every
/// [`STRIP_ROW`] cells.
pub fn strip(cells: &[Cell]) -> Markup {
    const CW: usize = 12;
    const CH: usize = 22;
    const GAP: usize = 2;
    let per_row = cells.len().clamp(1, STRIP_ROW);
    let rows = cells.len().div_ceil(STRIP_ROW).max(1);
    let width = per_row * (CW + GAP);
    let height = rows * (CH + GAP);
    html! {
        svg.strip width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) } role="img"
            aria-label={ (cells.len()) " results, oldest first" } {
            @for (i, c) in cells.iter().enumerate() {
                @if let Some(note) = &c.change {
                    // A dark bar in the gap before the cell, a little taller.
                    rect class="change" x=((i % STRIP_ROW) * (CW + GAP)) y=((i / STRIP_ROW) * (CH + GAP))
                        width=(GAP) height=(CH) fill="#111" {
                        title { (note) }
                    }
                }
                a href=(c.href) {
                    rect class={ "cell " (c.status.as_str()) @if c.mass { " mass" } }
                        x=((i % STRIP_ROW) * (CW + GAP)) y=((i / STRIP_ROW) * (CH + GAP))
                        width=(CW) height=(CH) rx="2"
                        fill=(if c.mass { MASS_GREY } else { colour(&c.status) }) {
                        title { (c.title) }
                    }
                }
            }
        }
    }
}

pub const STRIP_ROW: usize = 60;

/// A mass failure's cell: neither pass nor fail of the test's own.
const MASS_GREY: &str = "#9e9e9e";

/// One measured result in a [`duration_chart`].
pub struct Point {
    pub time: SystemTime,
    pub ms: i64,
    pub status: TestStatus,
    pub title: String,
    /// The rolling percentiles up to this result.
    pub p50: i64,
    pub p90: i64,
}

/// Durations over time: a dot per result (coloured by status) and the
/// rolling p50 and p90 as lines. `points` oldest first.
pub fn duration_chart(points: &[Point], window: usize) -> Markup {
    const W: f64 = 760.0;
    const H: f64 = 240.0;
    const LEFT: f64 = 64.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 24.0;
    const BOTTOM: f64 = 28.0;
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    };
    let t0 = points.first().map_or(0.0, |p| secs(p.time));
    let t1 = points.last().map_or(0.0, |p| secs(p.time));
    let highest = points.iter().map(|p| p.ms.max(p.p90)).max().unwrap_or(0);
    let (step, ticks) = scale(highest);
    let top = (step * ticks as f64).max(1.0);
    let x = |t: SystemTime| {
        if t1 > t0 {
            LEFT + (secs(t) - t0) / (t1 - t0) * (W - LEFT - RIGHT)
        } else {
            LEFT + (W - LEFT - RIGHT) / 2.0
        }
    };
    let y = |ms: f64| TOP + (1.0 - ms / top) * (H - TOP - BOTTOM);
    let line = |f: fn(&Point) -> i64| -> String {
        points
            .iter()
            .map(|p| format!("{},{}", n(x(p.time)), n(y(f(p) as f64))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let ticks: Vec<f64> = (0..=ticks).map(|i| step * i as f64).collect();
    html! {
        svg.duration-chart width=(W) height=(H) viewBox={ "0 0 " (W) " " (H) } role="img"
            aria-label={ "durations of " (points.len()) " results with rolling p50 and p90" } {
            @for t in &ticks {
                line x1=(LEFT) x2=(W - RIGHT) y1=(n(y(*t))) y2=(n(y(*t))) stroke="#e9ecef" stroke-width="1" {}
                text x=(LEFT - 6.0) y=(n(y(*t) + 4.0)) text-anchor="end" font-size="11" fill="#495057" { (tick_label(*t, step)) }
            }
            @if let (Some(first), Some(last)) = (points.first(), points.last()) {
                text x=(LEFT) y=(H - 8.0) font-size="11" fill="#495057" { (super::html::minute(first.time)) }
                text x=(W - RIGHT) y=(H - 8.0) text-anchor="end" font-size="11" fill="#495057" { (super::html::minute(last.time)) }
                polyline.p50 points=(line(|p| p.p50)) fill="none" stroke="#1c7ed6" stroke-width="2" {}
                polyline.p90 points=(line(|p| p.p90)) fill="none" stroke="#9c36b5" stroke-width="2" stroke-dasharray="6 3" {}
            }
            @for p in points {
                circle.point cx=(n(x(p.time))) cy=(n(y(p.ms as f64))) r="3" fill=(colour(&p.status)) {
                    title { (p.title) }
                }
            }
            g.legend font-size="11" fill="#495057" {
                line x1=(LEFT) x2=(LEFT + 18.0) y1="10" y2="10" stroke="#1c7ed6" stroke-width="2" {}
                text x=(LEFT + 22.0) y="14" { "p50 of the last " (window) }
                line x1=(LEFT + 150.0) x2=(LEFT + 168.0) y1="10" y2="10" stroke="#9c36b5" stroke-width="2" stroke-dasharray="6 3" {}
                text x=(LEFT + 172.0) y="14" { "p90 of the last " (window) }
            }
        }
    }
}

/// A round step (1, 2 or 5 times a power of ten, in milliseconds) and how
/// many of them reach `highest`: at most five, at least one.
fn scale(highest: i64) -> (f64, usize) {
    let highest = highest.max(1) as f64;
    // Whole milliseconds: durations are stored in them.
    let mut magnitude = 10f64.powf((highest / 5.0).log10().floor()).max(1.0);
    loop {
        for m in [1.0, 2.0, 5.0] {
            let step = m * magnitude;
            let ticks = (highest / step).ceil() as usize;
            if ticks <= 5 {
                return (step, ticks.max(1));
            }
        }
        magnitude *= 10.0;
    }
}

/// `0`, `5 ms`, `1.5 s`, `2m 0s`: as precise as the step needs.
fn tick_label(ms: f64, step: f64) -> String {
    if ms == 0.0 {
        "0".into()
    } else if ms < 1000.0 || step < 100.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        let digits = if step >= 1000.0 { 0 } else { 1 };
        format!("{:.digits$} s", ms / 1000.0)
    } else {
        crate::duration::rounded(std::time::Duration::from_millis(ms as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn round_scales() {
        assert_eq!(scale(0), (1.0, 1));
        assert_eq!(scale(5), (1.0, 5));
        assert_eq!(scale(6), (2.0, 3));
        assert_eq!(scale(240), (50.0, 5));
        assert_eq!(scale(251), (100.0, 3));
        assert_eq!(scale(83_000), (20_000.0, 5));
        assert_eq!(tick_label(0.0, 50.0), "0");
        assert_eq!(tick_label(150.0, 50.0), "150 ms");
        assert_eq!(tick_label(1500.0, 500.0), "1.5 s");
        assert_eq!(tick_label(40_000.0, 20_000.0), "40 s");
        assert_eq!(tick_label(120_000.0, 60_000.0), "2m 0s");
    }

    #[test]
    fn charts_escape_their_text_and_have_points() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let points: Vec<Point> = (0..3)
            .map(|i| Point {
                time: t + Duration::from_secs(3600 * i),
                ms: 10 * (i as i64 + 1),
                status: TestStatus::Passed,
                title: "<script>x</script>".into(),
                p50: 10,
                p90: 30,
            })
            .collect();
        let svg = duration_chart(&points, 10).into_string();
        assert!(svg.contains("&lt;script&gt;x&lt;/script&gt;"), "{svg}");
        assert!(!svg.contains("<script>"));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(
            svg.contains(r#"<polyline class="p90" points="64.00,"#),
            "{svg}"
        );

        let cells = [Cell {
            status: TestStatus::Failed,
            href: "/runs/a\"b".into(),
            title: "<b>".into(),
            change: Some("<i>".into()),
            mass: true,
        }];
        let s = strip(&cells).into_string();
        assert!(s.contains(r#"href="/runs/a&quot;b""#), "{s}");
        assert!(s.contains("<title>&lt;b&gt;</title>"), "{s}");
        // The change marker, before the cell, its note escaped.
        assert!(s.contains(r#"<rect class="change""#), "{s}");
        assert!(s.contains("<title>&lt;i&gt;</title>"), "{s}");
        assert!(s.contains(r##"class="cell failed mass""##), "{s}");
        assert!(s.contains(r##"fill="#9e9e9e""##), "{s}");

        let s = sparkline(&[1.0, 0.5, 0.0], "pass rate").into_string();
        assert!(
            s.contains(r#"points="2.00,3.00 50.00,12.00 98.00,21.00""#),
            "{s}"
        );
    }

    /// The y of each point of a sparkline's line, from its SVG.
    fn ys(svg: &str) -> Vec<f64> {
        let points = svg.split(r#"points=""#).nth(1).unwrap();
        let points = &points[..points.find('"').unwrap()];
        points
            .split(' ')
            .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn sparklines_scale_to_their_rates() {
        // 99.0% and 99.7%: a whole line apart, not a pixel.
        let s = sparkline(&[0.990, 0.997, 0.990], "pass rate").into_string();
        let y = ys(&s);
        assert!(y[0] - y[1] > 12.0, "{y:?}\n{s}");
        assert_eq!(y[0], y[2]);
        // The axis is labelled with the highest and lowest rate.
        assert!(s.contains(">99.7%</text>"), "{s}");
        assert!(s.contains(">99.0%</text>"), "{s}");
        // The same shape at 50.0–50.7%: the scale follows the data.
        let low = sparkline(&[0.500, 0.507, 0.500], "pass rate").into_string();
        assert_eq!(ys(&low), y);
        // A margin: the extremes are inside the box, not on its edges.
        assert!(y[1] > 3.0 && y[0] < 21.0, "{y:?}");
        // Equal rates: one flat line across the middle; at 100%, on top.
        let f = ys(&sparkline(&[0.9, 0.9], "pass rate").into_string());
        assert_eq!(f, [12.0, 12.0]);
        let f = ys(&sparkline(&[1.0, 1.0], "pass rate").into_string());
        assert_eq!(f, [3.0, 3.0]);
        let near =
            |(a, b): (f64, f64), (c, d): (f64, f64)| (a - c).abs() < 1e-9 && (b - d).abs() < 1e-9;
        assert!(near(sparkline_range(&[1.0]), (0.998, 1.0)));
        assert!(near(sparkline_range(&[0.0, 0.0]), (0.0, 0.002)));
        assert_eq!(sparkline_range(&[]), (0.0, 1.0));
    }
}
