//! Stores of any size built from the workload's own traces: clone `k` of workload trace
//! `j` is that trace with a new run_id and every time shifted `k` workload spans later,
//! so a store of 1M holds what users store (the same 4 KB bodies, steps, metadata and
//! time spread), not made-up traces.

use serde_json::Value;
use trace_store::{Timestamp, Trace};

use crate::BenchResult;

/// The needle query matches exactly this many traces at every size.
pub(crate) const NEEDLE_ROWS: usize = 10;
/// The `user_id` the needles carry instead of their own.
pub(crate) const NEEDLE_USER: &str = "needle-user";

/// The clone family of one workload.
pub(crate) struct Clones<'a> {
    base: &'a [Trace],
    /// One workload span plus a second: clone `k + 1` starts after clone `k` ends.
    shift_us: i64,
}

impl<'a> Clones<'a> {
    pub(crate) fn new(base: &'a [Trace]) -> BenchResult<Clones<'a>> {
        let times = base.iter().map(|t| t.created_at.as_micros());
        let (Some(min), Some(max)) = (times.clone().min(), times.max()) else {
            return Err("the scaling run needs at least one workload trace".into());
        };
        Ok(Clones {
            base,
            shift_us: max - min + 1_000_000,
        })
    }

    /// Trace number `i` of a store of `n` (any `i`: those past `n` are new traces to save).
    pub(crate) fn trace(&self, i: usize, n: usize) -> BenchResult<Trace> {
        let (j, k) = (i % self.base.len(), i / self.base.len());
        let mut trace = self.base[j].clone();
        trace.run_id = self.run_id(i);
        let shift = |t: Timestamp| Timestamp::from_micros(t.as_micros() + k as i64 * self.shift_us);
        trace.created_at = shift(trace.created_at)?;
        if let Some(end) = trace.ended_at {
            trace.ended_at = Some(shift(end)?);
        }
        for step in &mut trace.steps {
            if let Some(start) = step.started_at {
                step.started_at = Some(shift(start)?);
            }
        }
        if is_needle(i, n) {
            trace
                .metadata
                .insert("user_id".into(), Value::from(NEEDLE_USER));
        }
        Ok(trace)
    }

    /// The run_id of trace `i`, without building it.
    pub(crate) fn run_id(&self, i: usize) -> String {
        let (j, k) = (i % self.base.len(), i / self.base.len());
        format!("{}-{k:03}", self.base[j].run_id)
    }

    /// `created_at` of trace `i` (micros), without building it.
    pub(crate) fn created_us(&self, i: usize) -> i64 {
        let (j, k) = (i % self.base.len(), i / self.base.len());
        self.base[j].created_at.as_micros() + k as i64 * self.shift_us
    }

    /// The `user_id` of trace `i` of a store of `n`.
    pub(crate) fn user(&self, i: usize, n: usize) -> Option<&Value> {
        if is_needle(i, n) {
            return None;
        }
        self.base[i % self.base.len()].metadata.get("user_id")
    }

    pub(crate) fn base_len(&self) -> usize {
        self.base.len()
    }
}

/// Exactly [`NEEDLE_ROWS`] of the first `n` traces are needles, spread over the store.
pub(crate) fn is_needle(i: usize, n: usize) -> bool {
    let stride = (n / NEEDLE_ROWS).max(1);
    i % stride == stride / 2 && i / stride < NEEDLE_ROWS
}

/// Deterministic, dependency-free generator (splitmix64).
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Resident memory of this process, from `/proc/self/status` (Linux).
pub(crate) fn rss_bytes() -> Option<u64> {
    proc_kib("/proc/self/status", "VmRSS:")
}

/// Memory the kernel could give without swapping, from `/proc/meminfo` (Linux).
pub(crate) fn available_memory_bytes() -> Option<u64> {
    proc_kib("/proc/meminfo", "MemAvailable:")
}

fn proc_kib(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Free bytes on the file system holding `dir`, from `df` (std has no statvfs).
pub(crate) fn free_disk_bytes(dir: &std::path::Path) -> Option<u64> {
    let out = std::process::Command::new("df")
        .args(["-Pk", "--"])
        .arg(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<Trace> {
        let t0 = Timestamp::from_micros(1_000_000_000).expect("valid");
        let t1 = Timestamp::from_micros(1_050_000_000).expect("valid");
        vec![
            Trace::new("a")
                .with_created_at(t0)
                .with_metadata("user_id", "u1")
                .with_step(trace_store::Step::llm_call("m").with_started_at(t0)),
            Trace::new("b")
                .with_created_at(t1)
                .with_metadata("user_id", "u2"),
        ]
    }

    #[test]
    fn clones_get_new_ids_and_later_times() {
        let base = base();
        let clones = Clones::new(&base).expect("clones");
        let first = clones.trace(0, 100).expect("clone");
        let later = clones.trace(4, 100).expect("clone");
        assert_eq!(first.run_id, "a-000");
        assert_eq!(later.run_id, "a-002");
        assert_eq!(later.run_id, clones.run_id(4));
        let shift = 2 * 51_000_000;
        assert_eq!(later.created_at.as_micros(), 1_000_000_000 + shift);
        assert_eq!(later.created_at.as_micros(), clones.created_us(4));
        assert_eq!(
            later.steps[0].started_at.map(Timestamp::as_micros),
            Some(1_000_000_000 + shift)
        );
        // Everything else is the workload trace itself.
        let mut back = later.clone();
        back.run_id = "a".into();
        back.created_at = base[0].created_at;
        back.steps[0].started_at = base[0].steps[0].started_at;
        assert_eq!(back, base[0]);
        assert!(later.validate().is_ok());
    }

    #[test]
    fn exactly_ten_needles_at_every_size() {
        let base = base();
        let clones = Clones::new(&base).expect("clones");
        for n in [10, 500, 2_000, 10_000, 123_457] {
            assert_eq!(
                (0..n).filter(|&i| is_needle(i, n)).count(),
                NEEDLE_ROWS,
                "n={n}"
            );
            // Traces past the store (the ones the save op adds) are never needles.
            assert!((n..n + 1000).all(|i| !is_needle(i, n)), "n={n}");
        }
        let needle = (0..500).find(|&i| is_needle(i, 500)).expect("a needle");
        let trace = clones.trace(needle, 500).expect("clone");
        assert_eq!(trace.metadata["user_id"], NEEDLE_USER);
        assert_eq!(clones.user(needle, 500), None);
    }

    #[test]
    fn proc_readers_parse_this_machine() {
        assert!(rss_bytes().is_some_and(|b| b > 0));
        assert!(available_memory_bytes().is_some_and(|b| b > 0));
        assert!(free_disk_bytes(std::path::Path::new("/")).is_some_and(|b| b > 0));
    }
}
