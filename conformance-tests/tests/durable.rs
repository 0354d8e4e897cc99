//! The durable cases (C9 sharing, C10 durability) and their child-process machinery,
//! run against a small but real durable store: one JSON file per trace, written to a
//! temporary name and renamed into place, so a write is all-or-nothing.
//!
//! The store also prints noise to stdout (invalid UTF-8, no newline) the way a chatty
//! backend might; the suite must read its children's acknowledgements through it.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{ErrorKind, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use trace_store_conformance::Harness;
use trace_store_core::{
    Error, GroupBy, GroupKey, Result, Trace, TraceFilter, TraceStats, TraceStore, TraceSummary,
};

#[derive(Debug)]
struct DirStore {
    dir: PathBuf,
}

static TEMP_NAMES: AtomicU64 = AtomicU64::new(0);

impl DirStore {
    fn open(dir: &Path) -> DirStore {
        let dir = dir.join("traces");
        std::fs::create_dir_all(&dir).expect("create the store directory");
        // Noise on stdout: invalid UTF-8 and no newline, so the next line the child
        // prints (an acknowledgement) starts with garbage.
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(b"\xff\xfe opened \xc3(");
        let _ = stdout.flush();
        DirStore { dir }
    }

    fn file(&self, run_id: &str) -> PathBuf {
        // The default hasher has fixed keys, so every process names a run_id alike.
        let mut hasher = DefaultHasher::new();
        run_id.hash(&mut hasher);
        self.dir.join(format!("{:016x}.json", hasher.finish()))
    }

    fn read(path: &Path) -> Result<Option<Trace>> {
        match std::fs::read(path) {
            Ok(bytes) => Trace::from_json_slice(&bytes).map(Some),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Every summary in list order, with the trace's searchable text when `text` is set.
    fn summaries(&self, text: bool) -> Result<Vec<(TraceSummary, String)>> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Some(trace) = Self::read(&path)?
            {
                let search_text = if text {
                    trace.search_text()
                } else {
                    String::new()
                };
                all.push((TraceSummary::from(&trace), search_text));
            }
        }
        all.sort_by_key(|(s, _)| std::cmp::Reverse(s.cursor()));
        Ok(all)
    }

    /// Holds an exclusive lock on the store's lock file while `f` runs: merges from
    /// every handle and process take turns.
    fn exclusively<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("merge.lock"))?;
        lock.lock()?;
        let result = f();
        lock.unlock()?;
        result
    }
}

impl TraceStore for DirStore {
    fn save(&self, trace: &Trace) -> Result<String> {
        trace.validate()?;
        let temp = self.dir.join(format!(
            "tmp-{}-{}",
            std::process::id(),
            TEMP_NAMES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&temp, trace.to_json_vec()?)?;
        std::fs::rename(&temp, self.file(&trace.run_id))?;
        Ok(trace.run_id.clone())
    }

    fn load(&self, run_id: &str) -> Result<Trace> {
        Self::read(&self.file(run_id))?
            .filter(|trace| trace.run_id == run_id)
            .ok_or_else(|| Error::not_found(run_id))
    }

    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.query(&TraceFilter::new().with_limit(limit).with_offset(offset))
    }

    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        filter.validate()?;
        let all = self.summaries(filter.text.is_some())?;
        let texts: HashMap<&str, &str> = all
            .iter()
            .map(|(s, text)| (s.run_id.as_str(), text.as_str()))
            .collect();
        let page = filter.page_where(all.iter().map(|(s, _)| s), |s| {
            filter.matches_text(texts.get(s.run_id.as_str()).copied().unwrap_or_default())
        });
        Ok(page.cloned().collect())
    }

    fn delete(&self, run_id: &str) -> Result<bool> {
        if self.load(run_id).is_err() {
            return Ok(false);
        }
        match std::fs::remove_file(self.file(run_id)) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    fn merge(&self, part: &Trace) -> Result<Trace> {
        part.validate()?;
        self.exclusively(|| {
            let merged = match self.load(&part.run_id) {
                Ok(mut stored) => {
                    stored.merge(part);
                    stored
                }
                Err(Error::NotFound { .. }) => part.clone(),
                Err(error) => return Err(error),
            };
            merged.validate()?;
            self.save(&merged)?;
            Ok(merged)
        })
    }
}

mod dir_store {
    use super::DirStore;

    trace_store_conformance::conformance_tests!(durable, |dir: &std::path::Path| {
        DirStore::open(dir)
    });
}

/// True in a child process the suite started: the tests below then only do the
/// child's work (the variable is the suite's own, see `src/child.rs`).
fn is_child() -> bool {
    std::env::var_os("TRACE_STORE_CONFORMANCE_CHILD").is_some()
}

/// Acknowledges saves it keeps in memory until eight are pending, like a buffered
/// writer that is never flushed: every answer is right until the process is killed.
#[derive(Debug)]
struct Unflushed {
    inner: DirStore,
    pending: Mutex<Vec<Trace>>,
}

#[deny(clippy::missing_trait_methods)]
impl TraceStore for Unflushed {
    fn save(&self, trace: &Trace) -> Result<String> {
        trace.validate()?;
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.push(trace.clone());
        if pending.len() == 8 {
            for trace in pending.drain(..) {
                self.inner.save(&trace)?;
            }
        }
        Ok(trace.run_id.clone())
    }

    fn load(&self, run_id: &str) -> Result<Trace> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match pending.iter().rev().find(|t| t.run_id == run_id) {
            Some(trace) => Ok(trace.clone()),
            None => self.inner.load(run_id),
        }
    }

    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.inner.list(limit, offset)
    }

    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        self.inner.query(filter)
    }

    fn delete(&self, run_id: &str) -> Result<bool> {
        self.inner.delete(run_id)
    }

    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        traces.iter().try_for_each(Trace::validate)?;
        traces.iter().map(|trace| self.save(trace)).collect()
    }

    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        self.inner.count(filter)
    }

    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        self.inner.stats(filter)
    }

    fn merge(&self, part: &Trace) -> Result<Trace> {
        self.inner.merge(part)
    }

    fn merge_many(&self, parts: &[Trace]) -> Result<Vec<String>> {
        self.inner.merge_many(parts)
    }

    fn stats_by(
        &self,
        filter: &TraceFilter,
        group: GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        self.inner.stats_by(filter, group)
    }

    fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
        self.inner.delete_where(filter)
    }
}

mod unflushed {
    use super::*;

    /// Named like the case, so that the child processes the case starts run this test.
    #[test]
    fn c10_acknowledged_saves_survive_sigkill() {
        let harness = Harness::durable(|dir: &Path| Unflushed {
            inner: DirStore::open(dir),
            pending: Mutex::new(Vec::new()),
        });
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            harness.run(module_path!(), "c10_acknowledged_saves_survive_sigkill")
        }));
        if !is_child() {
            assert!(
                outcome.is_err(),
                "the SIGKILL case did not notice acknowledged saves that were never written"
            );
        }
    }
}

/// Merges by load, fold and save with no lock across handles (the provided `merge`),
/// pausing between load and save so that merges from two processes interleave.
#[derive(Debug)]
struct UnlockedMerge {
    inner: DirStore,
}

#[deny(clippy::missing_trait_methods)]
impl TraceStore for UnlockedMerge {
    fn save(&self, trace: &Trace) -> Result<String> {
        self.inner.save(trace)
    }

    fn load(&self, run_id: &str) -> Result<Trace> {
        self.inner.load(run_id)
    }

    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.inner.list(limit, offset)
    }

    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        self.inner.query(filter)
    }

    fn delete(&self, run_id: &str) -> Result<bool> {
        self.inner.delete(run_id)
    }

    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        self.inner.save_many(traces)
    }

    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        self.inner.count(filter)
    }

    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        self.inner.stats(filter)
    }

    fn merge(&self, part: &Trace) -> Result<Trace> {
        let mut merged = self.inner.load(&part.run_id)?;
        std::thread::sleep(std::time::Duration::from_millis(5));
        merged.merge(part);
        self.inner.save(&merged)?;
        Ok(merged)
    }

    fn merge_many(&self, parts: &[Trace]) -> Result<Vec<String>> {
        parts.iter().try_for_each(Trace::validate)?;
        parts
            .iter()
            .map(|part| self.merge(part).map(|merged| merged.run_id))
            .collect()
    }

    fn stats_by(
        &self,
        filter: &TraceFilter,
        group: GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        self.inner.stats_by(filter, group)
    }

    fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
        self.inner.delete_where(filter)
    }
}

mod unlocked_merge {
    use super::*;

    /// Named like the case, so that the child processes the case starts run this test.
    #[test]
    fn c12_two_processes_merge_into_one_run() {
        let harness = Harness::durable(|dir: &Path| UnlockedMerge {
            inner: DirStore::open(dir),
        });
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            harness.run(module_path!(), "c12_two_processes_merge_into_one_run")
        }));
        if !is_child() {
            assert!(
                outcome.is_err(),
                "the two-process merge case did not notice merges without a lock"
            );
        }
    }
}

/// A cross-process case run from a test of another name has no test for its child to
/// run; the suite says so instead of reporting a lost write.
#[test]
fn a_child_that_finds_no_test_is_reported_as_such() {
    let harness = Harness::durable(DirStore::open);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        harness.run(module_path!(), "c9_two_processes_concurrent_writes")
    }));
    let Err(panic) = outcome else {
        panic!("a case whose children run no test passed");
    };
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(message.contains("ran no test named"), "{message}");
}
