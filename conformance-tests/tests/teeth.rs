//! The suite has teeth: a correct store wrapped in a deliberately broken adapter must
//! fail at least one case, for every kind of breakage the peers ship.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, Once};

use serde_json::Value;
use trace_store_conformance::{CASES, CaseFn, Harness};
use trace_store_core::{
    Error, GroupBy, GroupKey, Result, Timestamp, Trace, TraceFilter, TraceStats, TraceStore,
    TraceSummary,
};
use trace_store_memory::MemoryStore;

/// One way to get the contract wrong.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flaw {
    /// None: the control, which must pass everything.
    None,
    /// Lists oldest first.
    AscendingOrder,
    /// Breaks `created_at` ties by ascending run_id.
    TiesAscending,
    /// `delete` always answers true.
    DeleteAlwaysTrue,
    /// Metadata match compares values as text, so `"1"` equals `1` (selectools).
    LooseMetadataEquality,
    /// A `null` in the filter also matches a missing key.
    NullMatchesMissing,
    /// An upsert leaves the old version listed too (selectools' memory store).
    UpsertDuplicates,
    /// Applies the limit before the filter (LLLM).
    LimitBeforeFilter,
    /// `load` drops step attributes.
    LossyRoundTrip,
    /// Accepts invalid run_ids silently.
    AcceptsInvalidRunIds,
    /// `since` is exclusive.
    ExclusiveSince,
    /// `count` ignores the filter.
    CountIgnoresFilter,
    /// A deleted trace still shows up in metadata queries (a stale index).
    StaleIndexAfterDelete,
    /// Ignores the keyset cursor.
    IgnoresCursor,
    /// Contradictory filters return empty results instead of an error.
    AcceptsBadFilters,
    /// `stats` leaves out the per-model totals.
    StatsWithoutModels,
    /// `count` counts every match, ignoring the filter's offset and limit.
    CountIgnoresPaging,
    /// `save_many` saves one by one, so the traces before a bad one are written.
    SaveManyNotValidatedFirst,
    /// A deleted trace still shows up in `list` and `query`.
    DeletedStillListed,
    /// Orders by `created_at` cut to the millisecond (then run_id).
    MillisecondOrder,
    /// Orders by `created_at` as an `f64` of microseconds (a Redis score).
    FloatScoreOrder,
    /// `load` returns `created_at` cut to the millisecond.
    MillisecondTimestamps,
    /// An upsert keeps the first save's `created_at` (the store rewrites it).
    UpsertKeepsFirstCreatedAt,
    /// `load` turns an explicit JSON `null` input or output into "absent".
    NullPayloadDropped,
    /// `load` cuts string outputs to 1 MiB.
    TruncatesLargeOutputs,
    /// The `name` filter ignores case.
    CaseInsensitiveName,
    /// `merge` loads, folds and saves without a lock (the provided version, with a
    /// pause in the middle so the race shows).
    NonAtomicMerge,
    /// Text search looks for the query in the trace's raw JSON, so escapes (`\"`),
    /// keys and numbers match.
    RawJsonSearch,
    /// `delete_where` deletes every match, ignoring cursor, offset and limit.
    DeleteWhereIgnoresPaging,
    /// Day groups take the date at UTC-5 instead of UTC.
    NonUtcDay,
}

#[derive(Debug)]
struct Broken {
    inner: MemoryStore,
    flaw: Flaw,
    ghosts: Mutex<Vec<TraceSummary>>,
    /// Makes `merge` atomic (for every flaw but `NonAtomicMerge`).
    merging: Mutex<()>,
}

impl Broken {
    fn new(flaw: Flaw) -> Broken {
        Broken {
            inner: MemoryStore::unbounded(),
            flaw,
            ghosts: Mutex::new(Vec::new()),
            merging: Mutex::new(()),
        }
    }

    fn ghosts(&self) -> std::sync::MutexGuard<'_, Vec<TraceSummary>> {
        self.ghosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every summary the filter's criteria select, in list order, before paging. The
    /// text query is applied here, by core's predicate on the stored body (or, with
    /// `RawJsonSearch`, on its raw JSON), whatever the inner store does with it.
    fn all_matching(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        let mut criteria = filter.without_paging();
        criteria.after = filter.after.clone();
        let Some(text) = criteria.text.take() else {
            return self.inner.query(&criteria);
        };
        let mut rows = Vec::new();
        for summary in self.inner.query(&criteria)? {
            let trace = self.inner.load(&summary.run_id)?;
            let hit = if self.flaw == Flaw::RawJsonSearch {
                String::from_utf8_lossy(&trace.to_json_vec()?)
                    .to_lowercase()
                    .contains(&text.to_lowercase())
            } else {
                trace.text_matches(&text)
            };
            if hit {
                rows.push(summary);
            }
        }
        Ok(rows)
    }

    /// The correct answer to `query`.
    fn correct_query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        Ok(paged(filter, self.all_matching(filter)?))
    }

    /// Day groups dated at UTC-5.
    fn days_at_minus_five(rows: &[TraceSummary]) -> Vec<(GroupKey, TraceStats)> {
        let mut groups: BTreeMap<GroupKey, TraceStats> = BTreeMap::new();
        for summary in rows {
            let shifted = summary.created_at.saturating_add_micros(-5 * 3_600_000_000);
            let key = GroupKey::Day(shifted.to_datetime().date_naive());
            groups.entry(key).or_default().add(summary);
        }
        groups.into_iter().rev().collect()
    }
}

fn paged(filter: &TraceFilter, rows: Vec<TraceSummary>) -> Vec<TraceSummary> {
    rows.into_iter()
        .skip(filter.offset)
        .take(filter.limit.unwrap_or(usize::MAX))
        .collect()
}

fn loose_text(value: &Value) -> String {
    value.to_string().trim_matches('"').to_owned()
}

#[deny(clippy::missing_trait_methods)]
impl TraceStore for Broken {
    fn save(&self, trace: &Trace) -> Result<String> {
        if self.flaw == Flaw::AcceptsInvalidRunIds && trace.validate().is_err() {
            return Ok(trace.run_id.clone());
        }
        if self.flaw == Flaw::UpsertKeepsFirstCreatedAt
            && let Ok(old) = self.inner.load(&trace.run_id)
        {
            let mut kept = trace.clone();
            kept.created_at = old.created_at;
            return self.inner.save(&kept);
        }
        if self.flaw == Flaw::UpsertDuplicates
            && let Ok(old) = self.inner.load(&trace.run_id)
        {
            self.ghosts().push(TraceSummary::from(&old));
        }
        self.inner.save(trace)
    }

    fn load(&self, run_id: &str) -> Result<Trace> {
        let mut trace = self.inner.load(run_id)?;
        match self.flaw {
            Flaw::LossyRoundTrip => trace.steps.iter_mut().for_each(|s| s.attributes.clear()),
            Flaw::MillisecondTimestamps => {
                let micros = trace.created_at.as_micros();
                let millis = micros - micros.rem_euclid(1_000);
                trace.created_at = Timestamp::from_micros(millis)?;
            }
            Flaw::NullPayloadDropped => {
                for step in &mut trace.steps {
                    step.input = step.input.take().filter(|v| !v.is_null());
                    step.output = step.output.take().filter(|v| !v.is_null());
                }
            }
            Flaw::TruncatesLargeOutputs => {
                for step in &mut trace.steps {
                    if let Some(Value::String(text)) = &mut step.output
                        && text.len() > 1 << 20
                    {
                        let mut cut = 1 << 20;
                        while !text.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        text.truncate(cut);
                    }
                }
            }
            _ => {}
        }
        Ok(trace)
    }

    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.query(&TraceFilter::new().with_limit(limit).with_offset(offset))
    }

    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        if self.flaw == Flaw::AcceptsBadFilters && filter.validate().is_err() {
            return Ok(Vec::new());
        }
        filter.validate()?;
        let mut rows = match self.flaw {
            Flaw::AscendingOrder => {
                let mut rows = self.all_matching(filter)?;
                rows.reverse();
                return Ok(paged(filter, rows));
            }
            Flaw::TiesAscending => {
                let mut rows = self.all_matching(filter)?;
                rows.sort_by(|a, b| {
                    b.created_at
                        .cmp(&a.created_at)
                        .then(a.run_id.cmp(&b.run_id))
                });
                return Ok(paged(filter, rows));
            }
            Flaw::MillisecondOrder | Flaw::FloatScoreOrder => {
                let mut rows = self.all_matching(filter)?;
                let lossy = |s: &TraceSummary| {
                    let micros = s.created_at.as_micros();
                    match self.flaw {
                        Flaw::MillisecondOrder => micros.div_euclid(1_000) as f64,
                        _ => micros as f64,
                    }
                };
                rows.sort_by(|a, b| lossy(b).total_cmp(&lossy(a)).then(b.run_id.cmp(&a.run_id)));
                return Ok(paged(filter, rows));
            }
            Flaw::CaseInsensitiveName if filter.name.is_some() => {
                let mut criteria = filter.clone();
                criteria.name = None;
                let want = filter.name.as_deref().map(str::to_lowercase);
                let rows = self
                    .all_matching(&criteria)?
                    .into_iter()
                    .filter(|s| s.name.as_deref().map(str::to_lowercase) == want)
                    .collect();
                return Ok(paged(filter, rows));
            }
            Flaw::LooseMetadataEquality | Flaw::NullMatchesMissing => {
                let mut criteria = filter.clone();
                criteria.metadata_match.clear();
                let rows = self.all_matching(&criteria)?;
                let loose = self.flaw == Flaw::LooseMetadataEquality;
                let rows =
                    rows.into_iter()
                        .filter(|s| {
                            filter.metadata_match.iter().all(|(key, want)| {
                                match s.metadata.get(key) {
                                    Some(got) if loose => loose_text(got) == loose_text(want),
                                    Some(got) => trace_store_core::json_eq(got, want),
                                    None => !loose && want.is_null(),
                                }
                            })
                        })
                        .collect();
                return Ok(paged(filter, rows));
            }
            Flaw::LimitBeforeFilter => {
                let page = self
                    .inner
                    .list(filter.limit.unwrap_or(usize::MAX), filter.offset)?;
                return Ok(page.into_iter().filter(|s| filter.matches(s)).collect());
            }
            Flaw::ExclusiveSince => {
                let mut shifted = filter.clone();
                shifted.since = filter.since.map(|t| t.saturating_add_micros(1));
                return self.correct_query(&shifted);
            }
            Flaw::IgnoresCursor => {
                let mut without = filter.clone();
                without.after = None;
                return self.correct_query(&without);
            }
            _ => self.correct_query(filter)?,
        };
        match self.flaw {
            Flaw::UpsertDuplicates => {
                let ghosts = self.ghosts();
                rows.extend(ghosts.iter().filter(|g| filter.matches(g)).cloned());
                Ok(paged(filter, rows))
            }
            Flaw::StaleIndexAfterDelete if !filter.metadata_match.is_empty() => {
                let ghosts = self.ghosts();
                rows.extend(ghosts.iter().filter(|g| filter.matches(g)).cloned());
                Ok(rows)
            }
            Flaw::DeletedStillListed => {
                let ghosts = self.ghosts();
                rows.extend(ghosts.iter().filter(|g| filter.matches(g)).cloned());
                rows.sort_by_key(|s| std::cmp::Reverse(s.cursor()));
                Ok(paged(filter, rows))
            }
            _ => Ok(rows),
        }
    }

    fn delete(&self, run_id: &str) -> Result<bool> {
        if matches!(
            self.flaw,
            Flaw::StaleIndexAfterDelete | Flaw::DeletedStillListed
        ) && let Ok(old) = self.inner.load(run_id)
        {
            self.ghosts().push(TraceSummary::from(&old));
        }
        let existed = self.inner.delete(run_id)?;
        Ok(existed || self.flaw == Flaw::DeleteAlwaysTrue)
    }

    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        if self.flaw != Flaw::SaveManyNotValidatedFirst {
            traces.iter().try_for_each(Trace::validate)?;
        }
        traces.iter().map(|trace| self.save(trace)).collect()
    }

    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        match self.flaw {
            Flaw::CountIgnoresFilter => self.inner.count(&TraceFilter::new()),
            Flaw::CountIgnoresPaging => Ok(self.query(&filter.without_paging())?.len() as u64),
            _ => Ok(self.query(filter)?.len() as u64),
        }
    }

    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        let mut stats: TraceStats = self.query(filter)?.iter().collect();
        if self.flaw == Flaw::StatsWithoutModels {
            stats.by_model.clear();
        }
        Ok(stats)
    }

    fn merge(&self, part: &Trace) -> Result<Trace> {
        part.validate()?;
        let _atomic = (self.flaw != Flaw::NonAtomicMerge)
            .then(|| self.merging.lock().unwrap_or_else(|e| e.into_inner()));
        let merged = match self.inner.load(&part.run_id) {
            Ok(mut stored) => {
                stored.merge(part);
                stored
            }
            Err(Error::NotFound { .. }) => part.clone(),
            Err(error) => return Err(error),
        };
        if self.flaw == Flaw::NonAtomicMerge {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        merged.validate()?;
        self.save(&merged)?;
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
        group.validate()?;
        let rows = self.query(filter)?;
        if self.flaw == Flaw::NonUtcDay && group == GroupBy::Day {
            return Ok(Self::days_at_minus_five(&rows));
        }
        Ok(group.stats(&rows))
    }

    fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
        let selection = if self.flaw == Flaw::DeleteWhereIgnoresPaging {
            filter.validate()?;
            let mut everything = filter.without_paging();
            everything.after = None;
            everything
        } else {
            filter.clone()
        };
        let mut deleted = 0;
        for summary in self.query(&selection)? {
            deleted += u64::from(self.delete(&summary.run_id)?);
        }
        Ok(deleted)
    }
}

#[path = "teeth/fifo.rs"]
mod fifo;
use fifo::Fifo;

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Expected panics of broken stores would flood the output; silence them on the
/// thread that runs the cases, and keep every other panic message.
fn quiet_expected_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                default(info);
            }
        }));
    });
}

/// Runs every fixed case and the model-based test on a fresh broken store; returns the
/// names of the cases that failed.
fn failing_cases(flaw: Flaw) -> Vec<&'static str> {
    quiet_expected_panics();
    let harness = Harness::volatile(move || Broken::new(flaw));
    let mut failed = Vec::new();
    for case in CASES {
        if matches!(case.run, CaseFn::Durable(_) | CaseFn::Bounded(_)) {
            continue;
        }
        QUIET.with(|q| q.set(true));
        let outcome = catch_unwind(AssertUnwindSafe(|| harness.run(module_path!(), case.name)));
        QUIET.with(|q| q.set(false));
        if outcome.is_err() {
            failed.push(case.name);
        }
    }
    failed
}

fn assert_caught(flaw: Flaw) {
    let failed = failing_cases(flaw);
    assert!(!failed.is_empty(), "the suite did not notice {flaw:?}");
    eprintln!("{flaw:?} caught by {} case(s): {failed:?}", failed.len());
}

#[test]
fn control_store_passes_every_case() {
    assert_eq!(failing_cases(Flaw::None), Vec::<&str>::new());
}

macro_rules! teeth {
    ($($test:ident => $flaw:ident),* $(,)?) => {$(
        #[test]
        fn $test() {
            assert_caught(Flaw::$flaw);
        }
    )*};
}

teeth! {
    catches_ascending_order => AscendingOrder,
    catches_ties_in_ascending_run_id_order => TiesAscending,
    catches_delete_that_always_returns_true => DeleteAlwaysTrue,
    catches_one_equal_to_string_one => LooseMetadataEquality,
    catches_null_matching_a_missing_key => NullMatchesMissing,
    catches_upsert_that_duplicates => UpsertDuplicates,
    catches_limit_before_filter => LimitBeforeFilter,
    catches_lossy_round_trip => LossyRoundTrip,
    catches_accepting_invalid_run_ids => AcceptsInvalidRunIds,
    catches_exclusive_since => ExclusiveSince,
    catches_count_ignoring_the_filter => CountIgnoresFilter,
    catches_stale_index_after_delete => StaleIndexAfterDelete,
    catches_ignored_cursor => IgnoresCursor,
    catches_accepting_contradictory_filters => AcceptsBadFilters,
    catches_stats_without_per_model_totals => StatsWithoutModels,
    catches_count_ignoring_offset_and_limit => CountIgnoresPaging,
    catches_save_many_not_validated_first => SaveManyNotValidatedFirst,
    catches_deleted_traces_still_listed => DeletedStillListed,
    catches_millisecond_order => MillisecondOrder,
    catches_f64_score_order => FloatScoreOrder,
    catches_millisecond_timestamps => MillisecondTimestamps,
    catches_upsert_keeping_the_first_created_at => UpsertKeepsFirstCreatedAt,
    catches_dropped_null_payloads => NullPayloadDropped,
    catches_truncated_large_outputs => TruncatesLargeOutputs,
    catches_case_insensitive_name => CaseInsensitiveName,
    catches_non_atomic_merge => NonAtomicMerge,
    catches_search_in_raw_json => RawJsonSearch,
    catches_delete_where_ignoring_paging => DeleteWhereIgnoresPaging,
    catches_day_groups_off_utc => NonUtcDay,
}

/// The rules the peers break most often are each checked by at least two independent
/// cases, so that one case weakened by a later edit does not let them through.
#[test]
fn type_and_null_rules_are_each_caught_by_two_cases() {
    for flaw in [Flaw::LooseMetadataEquality, Flaw::NullMatchesMissing] {
        let failed = failing_cases(flaw);
        assert!(
            failed.len() >= 2,
            "{flaw:?} is caught by fewer than two cases: {failed:?}"
        );
    }
}

/// selectools documents LRU and evicts in save order; the bounded case notices.
#[test]
fn catches_fifo_eviction_posing_as_lru() {
    quiet_expected_panics();
    let capacity = trace_store_conformance::MIN_BOUNDED_CAPACITY;
    let fifo = Harness::bounded(capacity, move || Fifo {
        inner: MemoryStore::unbounded(),
        capacity,
        saved: Mutex::new(VecDeque::new()),
    });
    let lru = Harness::bounded(capacity, move || {
        MemoryStore::new(capacity).expect("a valid capacity")
    });
    for case in [
        "bounded_evicts_least_recently_used",
        "bounded_eviction_follows_recency",
    ] {
        lru.run(module_path!(), case);
        QUIET.with(|q| q.set(true));
        let outcome = catch_unwind(AssertUnwindSafe(|| fifo.run(module_path!(), case)));
        QUIET.with(|q| q.set(false));
        assert!(outcome.is_err(), "{case} did not notice FIFO eviction");
    }
}

/// The model-based test alone also catches broken stores: ties the wrong way, and the
/// v2 flaws that a sequence of single calls can show.
#[test]
fn model_based_test_alone_catches_a_broken_store() {
    quiet_expected_panics();
    for flaw in [
        Flaw::TiesAscending,
        Flaw::RawJsonSearch,
        Flaw::DeleteWhereIgnoresPaging,
        Flaw::NonUtcDay,
    ] {
        QUIET.with(|q| q.set(true));
        let outcome = catch_unwind(|| {
            trace_store_conformance::model_based(
                &|| Harness::volatile(move || Broken::new(flaw)).fresh(),
                128,
            )
        });
        QUIET.with(|q| q.set(false));
        assert!(
            outcome.is_err(),
            "the model-based test did not notice {flaw:?}"
        );
    }
}

/// A store that claims to be durable but keeps nothing across handles fails the
/// in-process sharing and reopen cases.
#[test]
fn catches_a_durable_store_that_forgets() {
    quiet_expected_panics();
    let harness = Harness::durable(|_dir: &std::path::Path| MemoryStore::unbounded());
    for case in ["c9_two_handles_one_process", "c10_reopen_after_drop"] {
        QUIET.with(|q| q.set(true));
        let outcome = catch_unwind(AssertUnwindSafe(|| harness.run(module_path!(), case)));
        QUIET.with(|q| q.set(false));
        assert!(
            outcome.is_err(),
            "{case} did not notice a store that forgets"
        );
    }
}
