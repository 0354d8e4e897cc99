//! The answers every backend must give, computed by brute force over the imported
//! traces with hand-written predicates and a plain sort, so that a backend (or a bug in
//! the shared filter code) cannot agree with itself.

use std::collections::HashMap;

use serde_json::Value;
use trace_store::{Timestamp, Trace, TraceSummary};

use crate::BenchResult;

/// The stored state after a run of saves: one summary per run_id (the last save wins),
/// in list order.
#[derive(Debug)]
pub(crate) struct Reference {
    /// Newest first: `created_at` descending, then run_id descending.
    ordered: Vec<TraceSummary>,
    /// run_id → the last trace saved under it.
    by_id: HashMap<String, usize>,
}

impl Reference {
    pub(crate) fn new(traces: &[Trace]) -> Reference {
        let mut by_id = HashMap::with_capacity(traces.len());
        for (i, trace) in traces.iter().enumerate() {
            by_id.insert(trace.run_id.clone(), i);
        }
        let mut ordered: Vec<TraceSummary> = by_id
            .values()
            .map(|&i| TraceSummary::from(&traces[i]))
            .collect();
        ordered.sort_by(|a, b| {
            (b.created_at, b.run_id.as_str()).cmp(&(a.created_at, a.run_id.as_str()))
        });
        Reference { ordered, by_id }
    }

    pub(crate) fn len(&self) -> usize {
        self.ordered.len()
    }

    /// Index (into the traces it was built from) of the trace stored under `run_id`.
    pub(crate) fn index_of(&self, run_id: &str) -> Option<usize> {
        self.by_id.get(run_id).copied()
    }

    pub(crate) fn list(&self, limit: usize, offset: usize) -> Vec<TraceSummary> {
        self.ordered
            .iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect()
    }

    /// Traces whose top-level `metadata.user_id` is exactly the string `user`.
    pub(crate) fn by_user(&self, user: &str) -> Vec<TraceSummary> {
        self.ordered
            .iter()
            .filter(|s| matches!(s.metadata.get("user_id"), Some(Value::String(u)) if u == user))
            .cloned()
            .collect()
    }

    /// Traces created at or after `since` with at least `min_steps` steps.
    pub(crate) fn since_min_steps(&self, since: Timestamp, min_steps: usize) -> Vec<TraceSummary> {
        self.ordered
            .iter()
            .filter(|s| s.created_at >= since && s.steps >= min_steps)
            .cloned()
            .collect()
    }

    /// Drops `run_id`, as a delete does.
    pub(crate) fn remove(&mut self, run_id: &str) -> bool {
        if self.by_id.remove(run_id).is_none() {
            return false;
        }
        self.ordered.retain(|s| s.run_id != run_id);
        true
    }
}

/// `Ok` if `got` equals `want` summary for summary; otherwise a message saying where
/// they part.
pub(crate) fn same_rows(
    what: &str,
    got: &[TraceSummary],
    want: &[TraceSummary],
) -> BenchResult<()> {
    if got == want {
        return Ok(());
    }
    if got.len() != want.len() {
        return Err(format!(
            "{what}: returned {} rows, the reference has {}",
            got.len(),
            want.len()
        )
        .into());
    }
    let (i, (g, w)) = got
        .iter()
        .zip(want)
        .enumerate()
        .find(|(_, (g, w))| g != w)
        .unwrap_or((0, (&got[0], &want[0])));
    if g.run_id != w.run_id {
        Err(format!(
            "{what}: row {i} is run_id {:?}, the reference has {:?} (wrong order or wrong rows)",
            g.run_id, w.run_id
        )
        .into())
    } else {
        Err(format!("{what}: row {i} ({:?}) differs from the reference summary:\n  got  {g:?}\n  want {w:?}", g.run_id).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(id: &str, micros: i64, user: &str, steps: usize) -> Trace {
        let mut t = Trace::new(id)
            .with_created_at(Timestamp::from_micros(micros).unwrap())
            .with_metadata("user_id", user);
        t.steps = vec![trace_store::Step::llm_call("m"); steps];
        t
    }

    #[test]
    fn order_upsert_and_filters() {
        let traces = vec![
            trace("a", 10, "u1", 5),
            trace("b", 20, "u2", 1),
            trace("c", 20, "u1", 7),
            trace("a", 30, "u1", 2), // re-save: moves to the front
        ];
        let mut r = Reference::new(&traces);
        assert_eq!(r.len(), 3);
        let ids = |rows: Vec<TraceSummary>| rows.into_iter().map(|s| s.run_id).collect::<Vec<_>>();
        assert_eq!(ids(r.list(10, 0)), ["a", "c", "b"]);
        assert_eq!(ids(r.list(1, 1)), ["c"]);
        assert_eq!(ids(r.by_user("u1")), ["a", "c"]);
        let since = Timestamp::from_micros(15).unwrap();
        assert_eq!(ids(r.since_min_steps(since, 2)), ["a", "c"]);
        assert_eq!(r.index_of("a"), Some(3));
        assert!(r.remove("c"));
        assert!(!r.remove("c"));
        assert_eq!(ids(r.list(10, 0)), ["a", "b"]);
    }

    #[test]
    fn mismatches_are_described() {
        let r = Reference::new(&[trace("a", 1, "u", 1), trace("b", 2, "u", 1)]);
        let rows = r.list(2, 0);
        assert!(same_rows("x", &rows, &rows).is_ok());
        let err = same_rows("x", &rows[..1], &rows).unwrap_err().to_string();
        assert!(err.contains("returned 1 rows"), "{err}");
        let swapped = vec![rows[1].clone(), rows[0].clone()];
        let err = same_rows("x", &swapped, &rows).unwrap_err().to_string();
        assert!(err.contains("wrong order"), "{err}");
    }
}
