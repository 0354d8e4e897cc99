//! Per-operation timings: one `Instant` per call, reduced to median, p95 and mean.

use std::time::{Duration, Instant};

use serde::Serialize;

/// The durations of repeated calls of one operation.
#[derive(Debug, Default)]
pub(crate) struct Samples(Vec<Duration>);

impl Samples {
    pub(crate) fn with_capacity(capacity: usize) -> Samples {
        Samples(Vec::with_capacity(capacity))
    }

    /// Runs `op` once and records how long it took. The result is returned untouched
    /// so that checking it happens outside the timed region.
    pub(crate) fn time<T>(&mut self, op: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = op();
        self.0.push(start.elapsed());
        out
    }

    #[cfg(test)]
    pub(crate) fn push(&mut self, elapsed: Duration) {
        self.0.push(elapsed);
    }

    pub(crate) fn stats(&self, op: &str) -> OpStats {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let total: Duration = sorted.iter().sum();
        let count = sorted.len();
        // Nearest-rank percentiles: the value at ceil(p * count), 1-based.
        let rank = |p: f64| {
            let r = (p * count as f64).ceil() as usize;
            sorted[r.clamp(1, count) - 1]
        };
        OpStats {
            op: op.to_owned(),
            count,
            median_ms: if count == 0 { 0.0 } else { ms(rank(0.5)) },
            p95_ms: if count == 0 { 0.0 } else { ms(rank(0.95)) },
            mean_ms: if count == 0 {
                0.0
            } else {
                ms(total) / count as f64
            },
            total_ms: ms(total),
            rows: None,
        }
    }
}

/// Summary of one operation's samples, as printed and written to JSON.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct OpStats {
    /// Operation name, e.g. `save` or `query_user`.
    pub(crate) op: String,
    /// Number of timed calls.
    pub(crate) count: usize,
    pub(crate) median_ms: f64,
    pub(crate) p95_ms: f64,
    pub(crate) mean_ms: f64,
    pub(crate) total_ms: f64,
    /// Rows each call returned, where that is fixed (queries), for context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rows: Option<usize>,
}

impl OpStats {
    #[must_use]
    pub(crate) fn with_rows(mut self, rows: usize) -> OpStats {
        self.rows = Some(rows);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p95_use_nearest_rank() {
        let mut s = Samples::default();
        for ms in 1..=100u64 {
            s.push(Duration::from_millis(ms));
        }
        let stats = s.stats("x");
        assert_eq!(stats.count, 100);
        assert!((stats.median_ms - 50.0).abs() < 1e-9);
        assert!((stats.p95_ms - 95.0).abs() < 1e-9);
        assert!((stats.mean_ms - 50.5).abs() < 1e-9);
        assert!((stats.total_ms - 5050.0).abs() < 1e-9);
    }

    #[test]
    fn single_and_empty_samples() {
        let mut s = Samples::default();
        assert_eq!(s.stats("e").count, 0);
        s.push(Duration::from_micros(1500));
        let stats = s.stats("one");
        assert!((stats.median_ms - 1.5).abs() < 1e-9);
        assert!((stats.p95_ms - 1.5).abs() < 1e-9);
    }
}
