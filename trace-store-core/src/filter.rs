//! What `query` selects, and the one matcher backends without a query engine share.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result, Status, Timestamp, TraceSummary, json_eq};

/// A position in list order, ascending: `(created_at, run_id)`.
pub type OrderKey = (Timestamp, Arc<str>);

/// The bounds of [`TraceFilter::order_range`].
pub type OrderRange = (Bound<OrderKey>, Bound<OrderKey>);

/// A position in list order, `(created_at, run_id)`.
///
/// Lists run newest first: by `created_at` descending, then `run_id` descending (byte
/// order). [`TraceFilter::after`] keeps only traces strictly after a cursor in that
/// order, so paging by the last cursor of a page neither skips nor repeats a trace that
/// did not change, however many traces are written meanwhile.
///
/// `Ord` is the natural ascending order of the pair; list order is its reverse.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cursor {
    /// The trace's `created_at`.
    pub created_at: Timestamp,
    /// The trace's run_id.
    pub run_id: String,
}

impl Cursor {
    /// A cursor at this position.
    pub fn new(created_at: Timestamp, run_id: impl Into<String>) -> Cursor {
        Cursor {
            created_at,
            run_id: run_id.into(),
        }
    }

    /// The cursor as opaque text, for an API's `next` or a command line's `--after`:
    /// base64url of the JSON `[created_at µs, run_id]`, so any run_id (spaces, slashes,
    /// non-ASCII) survives a shell and a URL unchanged.
    ///
    /// ```
    /// use trace_store_core::{Cursor, Timestamp};
    ///
    /// let cursor = Cursor::new(Timestamp::from_micros(1_700_000_000_000_000)?, "a/b c");
    /// assert_eq!(Cursor::from_token(&cursor.to_token())?, cursor);
    /// assert!(Cursor::from_token("not a cursor").is_err());
    /// # Ok::<(), trace_store_core::Error>(())
    /// ```
    pub fn to_token(&self) -> String {
        use base64::Engine as _;
        let json =
            serde_json::to_vec(&(self.created_at.as_micros(), &self.run_id)).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads [`Cursor::to_token`]'s text back; anything else is
    /// [`Error::InvalidInput`].
    pub fn from_token(text: &str) -> Result<Cursor> {
        use base64::Engine as _;
        let garbled =
            || Error::invalid("not a cursor: pass the `next` value of a previous page unchanged");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .map_err(|_| garbled())?;
        let (micros, run_id): (i64, String) =
            serde_json::from_slice(&bytes).map_err(|_| garbled())?;
        Ok(Cursor::new(
            Timestamp::from_micros(micros).map_err(|_| garbled())?,
            run_id,
        ))
    }

    /// True if a trace at `(created_at, run_id)` comes strictly after this cursor in
    /// list order.
    pub fn precedes(&self, created_at: Timestamp, run_id: &str) -> bool {
        (created_at, run_id) < (self.created_at, self.run_id.as_str())
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.created_at, self.run_id)
    }
}

/// A range of one trace-level score, for [`TraceFilter::score`]: inclusive, either
/// bound optional; a trace without a value for the score never matches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScoreRange {
    /// The score's name.
    pub name: String,
    /// Lowest value that matches.
    pub min: Option<f64>,
    /// Highest value that matches.
    pub max: Option<f64>,
}

impl ScoreRange {
    /// True if `value` lies in the range.
    pub fn contains(&self, value: f64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }

    fn validate(&self) -> Result<()> {
        if self.name.is_empty() {
            return Err(Error::invalid("the score filter names no score"));
        }
        for bound in [self.min, self.max].into_iter().flatten() {
            if !bound.is_finite() {
                return Err(Error::invalid(format!(
                    "score filter {:?}: bound {bound} is not a finite number",
                    self.name
                )));
            }
        }
        if let (Some(min), Some(max)) = (self.min, self.max)
            && min > max
        {
            return Err(Error::invalid(format!(
                "score filter {:?}: min ({min}) is greater than max ({max})",
                self.name
            )));
        }
        Ok(())
    }
}

/// Which traces a query selects and which page of them it returns.
///
/// Every criterion that is set must hold (AND); unset criteria are not applied. The
/// order of operations is fixed: filter, order newest first, skip to after the cursor,
/// skip `offset`, take `limit`.
///
/// ```
/// use serde_json::json;
/// use trace_store_core::{Status, Timestamp, TraceFilter};
///
/// let filter = TraceFilter::new()
///     .with_metadata("user_id", json!("u_42"))
///     .with_status(Status::Ok)
///     .with_since("2026-01-01T00:00:00Z".parse::<Timestamp>()?)
///     .with_min_steps(5)
///     .with_limit(50);
/// assert!(filter.validate().is_ok());
/// assert!(TraceFilter::new().with_min_steps(3).with_max_steps(2).validate().is_err());
/// # Ok::<(), trace_store_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TraceFilter {
    /// Every key must be present at the top level of the trace's metadata with a value
    /// equal under [`canonical_json`](crate::canonical_json): `1 == 1.0`, `"1" != 1`,
    /// `true != 1`, `null` matches only an explicit `null`, objects compare by content.
    pub metadata_match: BTreeMap<String, Value>,
    /// At least this many steps.
    pub min_steps: Option<usize>,
    /// At most this many steps.
    pub max_steps: Option<usize>,
    /// `created_at >= since`.
    pub since: Option<Timestamp>,
    /// `created_at <= until`.
    pub until: Option<Timestamp>,
    /// Exactly this status.
    pub status: Option<Status>,
    /// Exactly this name.
    pub name: Option<String>,
    /// Exactly this session.
    pub session_id: Option<String>,
    /// Only runs started by this run (`parent_run_id`), to find a run's children.
    pub parent_run_id: Option<String>,
    /// The trace's searchable text ([`Trace::search_text`](crate::Trace::search_text))
    /// contains this, case-insensitively. Empty is [`Error::InvalidInput`].
    pub text: Option<String>,
    /// The trace-level score of this name has a value in this range
    /// ([`TraceSummary::scores`]).
    pub score: Option<ScoreRange>,
    /// Only traces strictly after this position in list order (keyset paging).
    pub after: Option<Cursor>,
    /// Matches to skip (after the cursor).
    pub offset: usize,
    /// Most matches to return; `None` returns all.
    pub limit: Option<usize>,
}

impl TraceFilter {
    /// A filter that matches everything and returns all of it.
    pub fn new() -> TraceFilter {
        TraceFilter::default()
    }

    /// Requires `metadata[key]` to equal `value`.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata_match.insert(key.into(), value.into());
        self
    }

    /// Requires at least `min_steps` steps.
    #[must_use]
    pub fn with_min_steps(mut self, min_steps: usize) -> Self {
        self.min_steps = Some(min_steps);
        self
    }

    /// Requires at most `max_steps` steps.
    #[must_use]
    pub fn with_max_steps(mut self, max_steps: usize) -> Self {
        self.max_steps = Some(max_steps);
        self
    }

    /// Requires `created_at >= since`.
    #[must_use]
    pub fn with_since(mut self, since: Timestamp) -> Self {
        self.since = Some(since);
        self
    }

    /// Requires `created_at <= until`.
    #[must_use]
    pub fn with_until(mut self, until: Timestamp) -> Self {
        self.until = Some(until);
        self
    }

    /// Requires this status.
    #[must_use]
    pub fn with_status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }

    /// Requires this name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Requires this session.
    #[must_use]
    pub fn with_session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Requires this parent run.
    #[must_use]
    pub fn with_parent_run_id(mut self, parent_run_id: impl Into<String>) -> Self {
        self.parent_run_id = Some(parent_run_id.into());
        self
    }

    /// Requires the searchable text to contain `text`, case-insensitively.
    #[must_use]
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Requires the trace-level score `name` to have a value in `min..=max` (either
    /// bound may be open).
    #[must_use]
    pub fn with_score(
        mut self,
        name: impl Into<String>,
        min: Option<f64>,
        max: Option<f64>,
    ) -> Self {
        self.score = Some(ScoreRange {
            name: name.into(),
            min,
            max,
        });
        self
    }

    /// Returns only traces strictly after `cursor` in list order.
    #[must_use]
    pub fn with_after(mut self, cursor: Cursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// Skips this many matches.
    #[must_use]
    pub fn with_offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// Returns at most this many matches.
    #[must_use]
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The same selection without cursor, offset and limit.
    #[must_use]
    pub fn without_paging(&self) -> TraceFilter {
        TraceFilter {
            after: None,
            offset: 0,
            limit: None,
            ..self.clone()
        }
    }

    /// The part of the ascending `(created_at, run_id)` order this filter can match:
    /// `since` bounds it below, `until` and `after` above; `None` when that part is
    /// empty. An index keyed by that order (core's [`SummaryIndex`](crate::SummaryIndex),
    /// a backend's own) walks only this range.
    pub fn order_range(&self) -> Option<OrderRange> {
        // `(t, "")` is the smallest key at `t`.
        let at = |t: Timestamp, run_id: &str| -> OrderKey { (t, Arc::from(run_id)) };
        let lower = self.since.map(|since| at(since, ""));
        let mut upper = self
            .until
            .filter(|until| *until < Timestamp::MAX)
            .map(|until| at(until.saturating_add_micros(1), ""));
        if let Some(after) = &self.after {
            let after = at(after.created_at, &after.run_id);
            if upper.as_ref().is_none_or(|upper| after < *upper) {
                upper = Some(after);
            }
        }
        if let (Some(lower), Some(upper)) = (&lower, &upper)
            && lower >= upper
        {
            return None;
        }
        Some((
            lower.map_or(Bound::Unbounded, Bound::Included),
            upper.map_or(Bound::Unbounded, Bound::Excluded),
        ))
    }

    /// Rejects filters that contradict themselves or cannot be evaluated
    /// ([`Error::InvalidInput`]): `min_steps > max_steps`, `since > until`, an empty
    /// text query, a score range with `min > max` or a bound that is not a finite
    /// number.
    pub fn validate(&self) -> Result<()> {
        if self.text.as_deref() == Some("") {
            return Err(Error::invalid("the text query is empty"));
        }
        if let Some(range) = &self.score {
            range.validate()?;
        }
        if let (Some(min), Some(max)) = (self.min_steps, self.max_steps)
            && min > max
        {
            return Err(Error::invalid(format!(
                "min_steps ({min}) is greater than max_steps ({max})"
            )));
        }
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since > until
        {
            return Err(Error::invalid(format!(
                "since ({since}) is later than until ({until})"
            )));
        }
        Ok(())
    }

    /// True if `summary` meets every criterion that a summary carries, including the
    /// cursor. Not checked here: `text` (the summary does not carry the searchable
    /// text; see [`TraceFilter::matches_text`]) and offset and limit (they are about
    /// pages, not single traces).
    pub fn matches(&self, summary: &TraceSummary) -> bool {
        self.session_id
            .as_ref()
            .is_none_or(|session| summary.session_id.as_ref() == Some(session))
            && self
                .parent_run_id
                .as_ref()
                .is_none_or(|parent| summary.parent_run_id.as_ref() == Some(parent))
            && self.score.as_ref().is_none_or(|range| {
                summary
                    .scores
                    .get(&range.name)
                    .is_some_and(|value| range.contains(*value))
            })
            && self.min_steps.is_none_or(|min| summary.steps >= min)
            && self.max_steps.is_none_or(|max| summary.steps <= max)
            && self.since.is_none_or(|since| summary.created_at >= since)
            && self.until.is_none_or(|until| summary.created_at <= until)
            && self.status.is_none_or(|status| summary.status == status)
            && self
                .name
                .as_ref()
                .is_none_or(|name| summary.name.as_ref() == Some(name))
            && self
                .after
                .as_ref()
                .is_none_or(|after| after.precedes(summary.created_at, &summary.run_id))
            && self.metadata_match.iter().all(|(key, expected)| {
                summary
                    .metadata
                    .get(key)
                    .is_some_and(|actual| json_eq(actual, expected))
            })
    }

    /// True if the filter has no text query, or `search_text` (a trace's
    /// [`Trace::search_text`](crate::Trace::search_text)) contains it.
    pub fn matches_text(&self, search_text: &str) -> bool {
        self.text
            .as_deref()
            .is_none_or(|query| crate::text_contains(search_text, query))
    }

    /// Applies the whole filter (criteria, cursor, offset, limit) to summaries that are
    /// already in list order, for backends that keep an ordered index in memory. A
    /// text query is not applied; see [`TraceFilter::page_where`].
    pub fn page<'a, I>(&'a self, ordered: I) -> impl Iterator<Item = &'a TraceSummary> + 'a
    where
        I: IntoIterator<Item = &'a TraceSummary>,
        I::IntoIter: 'a,
    {
        self.page_where(ordered, |_| true)
    }

    /// [`TraceFilter::page`] with one more criterion, `also`, applied with the others
    /// before offset and limit: how a backend adds the text predicate (or any check
    /// that needs more than the summary).
    pub fn page_where<'a, I, F>(
        &'a self,
        ordered: I,
        mut also: F,
    ) -> impl Iterator<Item = &'a TraceSummary> + 'a
    where
        I: IntoIterator<Item = &'a TraceSummary>,
        I::IntoIter: 'a,
        F: FnMut(&TraceSummary) -> bool + 'a,
    {
        ordered
            .into_iter()
            .filter(move |summary| self.matches(summary) && also(summary))
            .skip(self.offset)
            .take(self.limit.unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Trace;
    use serde_json::json;

    fn summary(run_id: &str, micros: i64, steps: usize) -> TraceSummary {
        let mut trace = Trace::new(run_id)
            .with_created_at(Timestamp::from_micros(micros).unwrap())
            .with_metadata("n", json!(1))
            .with_metadata("nil", Value::Null);
        trace.steps = vec![crate::Step::llm_call("m"); steps];
        TraceSummary::from(&trace)
    }

    #[test]
    fn criteria_are_inclusive_and_anded() {
        let s = summary("a", 10, 3);
        let t = |micros| Timestamp::from_micros(micros).unwrap();
        assert!(
            TraceFilter::new()
                .with_min_steps(3)
                .with_max_steps(3)
                .matches(&s)
        );
        assert!(!TraceFilter::new().with_min_steps(4).matches(&s));
        assert!(
            TraceFilter::new()
                .with_since(t(10))
                .with_until(t(10))
                .matches(&s)
        );
        assert!(!TraceFilter::new().with_since(t(11)).matches(&s));
        assert!(
            TraceFilter::new()
                .with_metadata("n", json!(1.0))
                .matches(&s)
        );
        assert!(
            !TraceFilter::new()
                .with_metadata("n", json!("1"))
                .matches(&s)
        );
        assert!(
            TraceFilter::new()
                .with_metadata("nil", Value::Null)
                .matches(&s)
        );
        assert!(
            !TraceFilter::new()
                .with_metadata("gone", Value::Null)
                .matches(&s)
        );
        assert!(
            !TraceFilter::new()
                .with_metadata("n", json!(1))
                .with_status(Status::Ok)
                .matches(&s)
        );
    }

    #[test]
    fn cursor_is_strict_and_breaks_ties_by_run_id() {
        let after = Cursor::new(Timestamp::from_micros(10).unwrap(), "b");
        let filter = TraceFilter::new().with_after(after);
        assert!(!filter.matches(&summary("b", 10, 0)));
        assert!(!filter.matches(&summary("c", 10, 0)));
        assert!(filter.matches(&summary("a", 10, 0)));
        assert!(filter.matches(&summary("z", 9, 0)));
        assert!(!filter.matches(&summary("a", 11, 0)));
    }

    #[test]
    fn page_applies_offset_then_limit() {
        let all: Vec<_> = (0..10)
            .rev()
            .map(|i| summary(&format!("r{i}"), i, i as usize))
            .collect();
        let filter = TraceFilter::new()
            .with_min_steps(2)
            .with_offset(1)
            .with_limit(3);
        let ids: Vec<_> = filter.page(&all).map(|s| s.run_id.as_str()).collect();
        assert_eq!(ids, ["r8", "r7", "r6"]);
        assert_eq!(TraceFilter::new().with_limit(0).page(&all).count(), 0);
        assert_eq!(TraceFilter::new().with_offset(99).page(&all).count(), 0);
    }

    #[test]
    fn contradictions_are_invalid() {
        let t = |micros| Timestamp::from_micros(micros).unwrap();
        assert!(
            TraceFilter::new()
                .with_since(t(2))
                .with_until(t(1))
                .validate()
                .is_err()
        );
        assert!(
            TraceFilter::new()
                .with_min_steps(1)
                .with_max_steps(1)
                .validate()
                .is_ok()
        );
    }
}
