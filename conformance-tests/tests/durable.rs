//! The durable cases (C9 sharing, C10 durability) and their child-process machinery,
//! run against a small but real durable store: one JSON file per trace, written to a
//! temporary name and renamed into place, so a write is all-or-nothing.
//!
//! The store also prints noise to stdout (invalid UTF-8, no newline) the way a chatty
//! backend might; the suite must read its children's acknowledgements through it.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{ErrorKind, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use trace_store_conformance::Harness;
use trace_store_core::{Error, Result, Trace, TraceFilter, TraceStore, TraceSummary};

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

    fn summaries(&self) -> Result<Vec<TraceSummary>> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Some(trace) = Self::read(&path)?
            {
                all.push(TraceSummary::from(&trace));
            }
        }
        all.sort_by_key(|s| std::cmp::Reverse(s.cursor()));
        Ok(all)
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
        Ok(filter.page(&self.summaries()?).cloned().collect())
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
