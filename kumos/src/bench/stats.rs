//! Pure helpers of the report: latency percentiles, rates, ratios and number formatting.

use std::time::Duration;

/// The value at quantile `p` (0..=1) of an ascending slice, nearest-rank on `(len-1)·p`; 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The outcome of one bounded load run: throughput and latency.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Operations that succeeded.
    pub ok: usize,
    /// Operations that failed (not counted in the rate or the latencies).
    pub errors: usize,
    /// Successful operations per second of wall time.
    pub per_second: f64,
    /// Median latency in ms.
    pub p50_ms: f64,
    /// 99th percentile latency in ms.
    pub p99_ms: f64,
}

impl Summary {
    /// Summarises per-operation latencies (ms, any order) collected over `elapsed`.
    pub fn from_latencies(mut ms: Vec<f64>, errors: usize, elapsed: Duration) -> Summary {
        ms.sort_by(f64::total_cmp);
        let secs = elapsed.as_secs_f64();
        Summary {
            ok: ms.len(),
            errors,
            per_second: if secs > 0.0 {
                ms.len() as f64 / secs
            } else {
                0.0
            },
            p50_ms: percentile(&ms, 0.5),
            p99_ms: percentile(&ms, 0.99),
        }
    }

    /// As JSON for the report.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ok": self.ok, "errors": self.errors, "per_second": self.per_second,
            "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
        })
    }
}

/// `measured / reference`, or `None` when the reference is not positive (no figure to compare).
pub fn ratio(measured: f64, reference: f64) -> Option<f64> {
    (reference > 0.0 && measured.is_finite() && reference.is_finite()).then(|| measured / reference)
}

/// A ratio for a table cell: `0.42`, `12.3`, or `–` when there is none.
pub fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 10.0 => format!("{r:.1}"),
        Some(r) if r >= 0.01 => format!("{r:.2}"),
        Some(r) => format!("{r:.4}"),
        None => "–".to_string(),
    }
}

/// A rate or count with thousands separators: `12,345`.
pub fn fmt_count(n: f64) -> String {
    if !n.is_finite() {
        return "–".to_string();
    }
    let digits = format!("{:.0}", n.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// Milliseconds with a precision that suits the size: `0.085`, `3.42`, `41.2`, `1,060`.
pub fn fmt_ms(ms: f64) -> String {
    if !ms.is_finite() {
        "–".to_string()
    } else if ms < 1.0 {
        format!("{ms:.3}")
    } else if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 1000.0 {
        format!("{ms:.1}")
    } else {
        fmt_count(ms)
    }
}

/// Kibibytes as MB (10^6 bytes, as the targets are written): `38.2`.
pub fn kib_to_mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 0.5), 51.0); // round(99 × 0.5) = 50 → the 51st value
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&v, 7.0), 100.0);
    }

    #[test]
    fn summary_sorts_and_rates() {
        let s = Summary::from_latencies(vec![3.0, 1.0, 2.0, 4.0], 1, Duration::from_secs(2));
        assert_eq!(s.ok, 4);
        assert_eq!(s.errors, 1);
        assert_eq!(s.per_second, 2.0);
        assert_eq!(s.p50_ms, 3.0);
        assert_eq!(s.p99_ms, 4.0);
        let empty = Summary::from_latencies(vec![], 0, Duration::ZERO);
        assert_eq!(empty.per_second, 0.0);
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(5.0, 10.0), Some(0.5));
        assert_eq!(ratio(5.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
        assert_eq!(fmt_ratio(Some(0.5)), "0.50");
        assert_eq!(fmt_ratio(Some(106.0)), "106.0");
        assert_eq!(fmt_ratio(Some(0.001234)), "0.0012");
        assert_eq!(fmt_ratio(None), "–");
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_count(0.0), "0");
        assert_eq!(fmt_count(999.4), "999");
        assert_eq!(fmt_count(1000.0), "1,000");
        assert_eq!(fmt_count(1234567.0), "1,234,567");
        assert_eq!(fmt_count(-1234.0), "-1,234");
        assert_eq!(fmt_ms(0.0854), "0.085");
        assert_eq!(fmt_ms(3.421), "3.42");
        assert_eq!(fmt_ms(41.23), "41.2");
        assert_eq!(fmt_ms(1060.0), "1,060");
        assert_eq!(kib_to_mb(1000), 1.024);
    }
}
