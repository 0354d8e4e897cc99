#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod cases;
mod child;
pub mod fixtures;
mod model;
mod reference;

use std::path::Path;

use child::ChildMode;

pub use cases::*;
pub use child::{ChildWriter, MERGED_RUN_ID, child_merge_part, child_trace};
pub use model::{Op, SEED_ENV, model_based};
use trace_store_core::TraceStore;

/// Random operation sequences the macro's model-based test runs.
pub const MODEL_CASES: u32 = 48;

/// Opens a store: for volatile stores a fresh one, for durable stores one on the
/// location (directory) it is given.
type OpenFn = dyn Fn(Option<&Path>) -> Box<dyn TraceStore> + Send + Sync;

/// What the suite knows about a store: how to open it and what it promises.
///
/// Capabilities are declared, never detected: a durable harness runs the sharing (C9),
/// durability (C10) and two-process merge (C12) cases, a bounded one the eviction
/// cases, and nothing is skipped at run time.
pub struct Harness {
    open: Box<OpenFn>,
    capacity: Option<usize>,
    durable: bool,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("capacity", &self.capacity)
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

/// The smallest capacity a bounded store may declare: the largest case stores 300 traces.
pub const MIN_BOUNDED_CAPACITY: usize = 400;

impl Harness {
    /// An in-memory store: `open` returns a new, empty store each call.
    pub fn volatile<S, F>(open: F) -> Harness
    where
        S: TraceStore + 'static,
        F: Fn() -> S + Send + Sync + 'static,
    {
        Harness {
            open: Box::new(move |_| Box::new(open())),
            capacity: None,
            durable: false,
        }
    }

    /// A store that holds at most `capacity` traces and evicts the least recently used.
    pub fn bounded<S, F>(capacity: usize, open: F) -> Harness
    where
        S: TraceStore + 'static,
        F: Fn() -> S + Send + Sync + 'static,
    {
        assert!(
            capacity >= MIN_BOUNDED_CAPACITY,
            "a bounded store under test needs a capacity of at least {MIN_BOUNDED_CAPACITY}"
        );
        Harness {
            capacity: Some(capacity),
            ..Harness::volatile(open)
        }
    }

    /// A durable store: `open(dir)` opens a handle on the store kept in the directory
    /// `dir` (the suite creates an empty one per case). Calling it again with the same
    /// directory, in this process or another, must open the same store.
    pub fn durable<S, F>(open: F) -> Harness
    where
        S: TraceStore + 'static,
        F: Fn(&Path) -> S + Send + Sync + 'static,
    {
        Harness {
            open: Box::new(move |dir| {
                let dir = dir.unwrap_or_else(|| panic!("a durable store needs a directory"));
                Box::new(open(dir))
            }),
            capacity: None,
            durable: true,
        }
    }

    /// A new, empty store (with the directory that holds it, for durable stores).
    pub fn fresh(&self) -> Fresh {
        let dir = self.durable.then(|| {
            tempfile::Builder::new()
                .prefix("trace-store-conformance-")
                .tempdir()
                .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"))
        });
        let store = (self.open)(dir.as_ref().map(|d| d.path()));
        Fresh { store, _dir: dir }
    }

    /// Runs the case called `name` as the test `module::name` (the module path is
    /// needed to start child processes for the cross-process cases).
    pub fn run(&self, module: &str, name: &str) {
        let Some(case) = CASES.iter().find(|case| case.name == name) else {
            panic!("no conformance case named {name:?}");
        };
        match case.run {
            CaseFn::Store(run) => run(self.fresh().store()),
            CaseFn::Pair(run) => {
                let (first, second) = (self.fresh(), self.fresh());
                run(first.store(), second.store());
            }
            CaseFn::Bounded(run) => {
                let capacity = self
                    .capacity
                    .unwrap_or_else(|| panic!("{name} needs a bounded harness"));
                run(self.fresh().store(), capacity);
            }
            CaseFn::Durable(run) => {
                assert!(self.durable, "{name} needs a durable harness");
                let open = |dir: &Path| (self.open)(Some(dir));
                if child::run_if_child(module, name, &open) {
                    return;
                }
                let dir = tempfile::Builder::new()
                    .prefix("trace-store-conformance-")
                    .tempdir()
                    .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
                // Create the store here, so a child process never is the first to open
                // the location (it may be killed, and must find what the parent set up).
                drop(open(dir.path()));
                run(&Durable {
                    dir: dir.path(),
                    open: &open,
                    module,
                    case: name,
                });
            }
            CaseFn::Model => model_based(&|| self.fresh(), MODEL_CASES),
        }
    }
}

/// A fresh store, and the temporary directory it lives in (removed on drop, after the
/// store is closed).
pub struct Fresh {
    store: Box<dyn TraceStore>,
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Fresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fresh").field("store", &self.store).finish()
    }
}

impl Fresh {
    /// The store.
    pub fn store(&self) -> &dyn TraceStore {
        &*self.store
    }
}

/// A durable store's location, for the cases that open several handles on it or
/// write to it from child processes.
pub struct Durable<'a> {
    dir: &'a Path,
    open: &'a dyn Fn(&Path) -> Box<dyn TraceStore>,
    module: &'a str,
    case: &'a str,
}

impl std::fmt::Debug for Durable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Durable<'_> {
    /// Opens another handle on the store.
    pub fn open(&self) -> Box<dyn TraceStore> {
        (self.open)(self.dir)
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        self.dir
    }

    /// Starts a child process that opens the store and saves [`child_trace`]`(prefix, i)`
    /// for `i` in `0..count` (forever if `count` is 0), acknowledging each save.
    pub fn spawn_writer(&self, prefix: &str, count: u64) -> ChildWriter {
        ChildWriter::spawn(
            self.module,
            self.case,
            self.dir,
            prefix,
            count,
            ChildMode::Save,
        )
    }

    /// Starts a child process that opens the store and merges
    /// [`child_merge_part`]`(prefix, i)` for `i` in `0..count` into [`MERGED_RUN_ID`],
    /// acknowledging each merge with the step id it added.
    pub fn spawn_merger(&self, prefix: &str, count: u64) -> ChildWriter {
        ChildWriter::spawn(
            self.module,
            self.case,
            self.dir,
            prefix,
            count,
            ChildMode::Merge,
        )
    }
}

/// How a case runs.
#[derive(Clone, Copy, Debug)]
pub enum CaseFn {
    /// On a fresh, empty store.
    Store(fn(&dyn TraceStore)),
    /// On two fresh, empty stores from the same factory, which must not share traces.
    Pair(fn(&dyn TraceStore, &dyn TraceStore)),
    /// On a fresh bounded store, given its capacity.
    Bounded(fn(&dyn TraceStore, usize)),
    /// On a durable location.
    Durable(fn(&Durable<'_>)),
    /// The model-based random test.
    Model,
}

/// One conformance case.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// The case's function name, which is also its test name.
    pub name: &'static str,
    /// How it runs.
    pub run: CaseFn,
}

/// Calls `$callback! { $args store: [..], pair: [..], bounded: [..], durable: [..], model: [..] }`
/// with every case name: the one list both the macro and [`CASES`] are built from.
#[doc(hidden)]
#[macro_export]
macro_rules! __for_each_case {
    ($callback:ident { $($args:tt)* }) => {
        $crate::$callback! {
            { $($args)* }
            { store: [
                c1_round_trip_minimal, c1_round_trip_every_field, c1_round_trip_unicode,
                c1_round_trip_large_payload, c1_odd_run_ids, c1_timestamp_extremes,
                c1_deeply_nested_json,
                c2_upsert_replaces, c2_upsert_moves_created_at, c2_upsert_replaces_index_entries,
                c2_upsert_within_save_many, c2_resave_updates_stats_by_model,
                c3_newest_first, c3_equal_created_at_ties, c3_query_keeps_order,
                c3_order_exact_to_the_microsecond, c3_ties_under_every_filter_path,
                c4_list_equals_query, c4_empty_pages, c4_query_without_limit_returns_all,
                c4_filter_before_limit, c4_cursor_is_strict, c4_keyset_paging_during_writes,
                c5_metadata_numbers_by_value, c5_metadata_number_edges, c5_metadata_types_differ,
                c5_metadata_null_is_not_missing, c5_metadata_objects_and_arrays,
                c5_metadata_keys_are_exact, c5_metadata_keys_anded, c5_ranges_are_inclusive,
                c5_status_and_name_exact, c5_all_criteria_together, c5_summaries_count_and_stats,
                c5_session_and_parent_exact, c5_score_ranges,
                c5_string_one_is_not_number_one_in_every_view,
                c5_null_is_not_missing_in_every_view, c5_totals_are_exact,
                c6_min_steps_above_max_steps, c6_since_after_until, c6_empty_text,
                c6_score_min_above_max,
                c7_delete_removes_everywhere, c7_delete_missing_is_false, c7_save_after_delete,
                c8_threads_distinct_ids, c8_racing_saves_of_one_id,
                c11_invalid_run_ids_rejected, c11_save_many_is_validated_first,
                c11_newer_schema_rejected, c11_ambiguous_step_kind_rejected,
                c11_load_missing_is_not_found,
                c12_merge_into_absent_is_save, c12_merge_header_rules, c12_merge_steps_by_id,
                c12_merge_metadata_union, c12_merge_scores_by_identity,
                c12_invalid_part_writes_nothing, c12_merge_result_equals_load,
                c12_threads_merge_disjoint_steps, c12_merge_many_folds_in_order,
                c12_merge_many_invalid_part_writes_nothing,
                c13_text_ascii_and_case, c13_text_unicode, c13_text_escaped_json,
                c13_text_past_the_cap, c13_text_short_queries, c13_no_hit_after_delete,
                c13_text_with_filters_and_paging, c13_empty_query_is_invalid,
                c14_group_by_day, c14_group_by_name_session_status, c14_group_by_model,
                c14_group_by_metadata, c14_groups_follow_filter_and_paging,
                c14_invalid_grouping_rejected,
                c15_delete_where_equals_query, c15_delete_where_honours_paging,
                c15_deleted_are_gone_from_every_view, c15_purge_by_age, c15_purge_by_count,
                c15_purge_by_age_and_count, c15_invalid_filter_deletes_nothing
            ],
            pair: [c13_no_hit_across_namespaces],
            bounded: [bounded_evicts_least_recently_used, bounded_eviction_follows_recency],
            durable: [
                c9_two_handles_one_process, c9_two_processes_concurrent_writes,
                c10_reopen_after_drop, c10_acknowledged_saves_survive_sigkill,
                c12_two_processes_merge_into_one_run
            ],
            model: [model_based_random_operations] }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __case_table {
    ({} { store: [$($s:ident),*], pair: [$($p:ident),*], bounded: [$($b:ident),*], durable: [$($d:ident),*], model: [$($m:ident),*] }) => {
        /// Every case, in rule order.
        pub const CASES: &[Case] = &[
            $(Case { name: stringify!($s), run: CaseFn::Store($s) },)*
            $(Case { name: stringify!($p), run: CaseFn::Pair($p) },)*
            $(Case { name: stringify!($b), run: CaseFn::Bounded($b) },)*
            $(Case { name: stringify!($d), run: CaseFn::Durable($d) },)*
            $(Case { name: stringify!($m), run: CaseFn::Model },)*
        ];
    };
}

__for_each_case!(__case_table {});

#[doc(hidden)]
#[macro_export]
macro_rules! __emit_tests {
    ({ $harness:ident $($group:ident)* } $lists:tt) => {
        $( $crate::__emit_group! { $group $harness $lists } )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __emit_group {
    (store $h:ident { store: [$($n:ident),*], $($rest:tt)* }) => { $crate::__emit_fns! { $h $($n)* } };
    (pair $h:ident { store: $s:tt, pair: [$($n:ident),*], $($rest:tt)* }) => { $crate::__emit_fns! { $h $($n)* } };
    (bounded $h:ident { store: $s:tt, pair: $p:tt, bounded: [$($n:ident),*], $($rest:tt)* }) => { $crate::__emit_fns! { $h $($n)* } };
    (durable $h:ident { store: $s:tt, pair: $p:tt, bounded: $b:tt, durable: [$($n:ident),*], $($rest:tt)* }) => { $crate::__emit_fns! { $h $($n)* } };
    (model $h:ident { store: $s:tt, pair: $p:tt, bounded: $b:tt, durable: $d:tt, model: [$($n:ident),*] }) => { $crate::__emit_fns! { $h $($n)* } };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __emit_fns {
    ($h:ident $($name:ident)*) => {
        $(
            #[test]
            fn $name() {
                $h().run(module_path!(), stringify!($name));
            }
        )*
    };
}

/// Expands into one `#[test]` per conformance case for the store the closure opens.
///
/// ```
/// # use trace_store_memory::MemoryStore;
/// # type SqliteStore = MemoryStore;
/// # trait Open { fn open(_: std::path::PathBuf) -> trace_store_core::Result<MemoryStore>; }
/// # impl Open for MemoryStore { fn open(_: std::path::PathBuf) -> trace_store_core::Result<MemoryStore> { Ok(MemoryStore::unbounded()) } }
/// # mod volatile { use trace_store_memory::MemoryStore;
/// // An in-memory store: the closure returns a new, empty store.
/// trace_store_conformance::conformance_tests!(|| MemoryStore::unbounded());
/// # }
/// # mod bounded { use trace_store_memory::MemoryStore;
///
/// // A bounded store (adds the LRU eviction case).
/// trace_store_conformance::conformance_tests!(capacity = 1000, || MemoryStore::new(1000).unwrap());
/// # }
/// # mod durable { use super::{Open, SqliteStore};
///
/// // A durable store: the closure opens the store kept in `dir`; called again with the
/// // same directory, in this process or a child process, it opens the same store.
/// trace_store_conformance::conformance_tests!(durable, |dir: &std::path::Path| {
///     SqliteStore::open(dir.join("traces.db")).unwrap()
/// });
/// # }
/// # fn main() {}
/// ```
///
/// Invoke it once per module (put several stores in several modules). The durable form
/// re-runs the test binary as a child process for the cross-process cases, so the
/// closure must work in a fresh process too (no state set up by other tests). The suite
/// always opens a durable store once in the test process before a case runs, so a
/// child only ever opens a location the parent has already created.
#[macro_export]
macro_rules! conformance_tests {
    (durable, $open:expr $(,)?) => {
        fn __trace_store_conformance_harness() -> $crate::Harness {
            $crate::Harness::durable($open)
        }
        $crate::__for_each_case!(__emit_tests { __trace_store_conformance_harness store pair durable model });
    };
    (capacity = $capacity:expr, $open:expr $(,)?) => {
        fn __trace_store_conformance_harness() -> $crate::Harness {
            $crate::Harness::bounded($capacity, $open)
        }
        $crate::__for_each_case!(__emit_tests { __trace_store_conformance_harness store pair bounded model });
    };
    ($open:expr $(,)?) => {
        fn __trace_store_conformance_harness() -> $crate::Harness {
            $crate::Harness::volatile($open)
        }
        $crate::__for_each_case!(__emit_tests { __trace_store_conformance_harness store pair model });
    };
}
