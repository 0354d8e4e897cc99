//! What a filter selects: from the index alone, or, for a text query, by scanning the
//! bodies of the index's candidates; and the v2 operations built on that selection
//! (`merge`, `stats_by`, `delete_where`).

use std::collections::HashMap;
use std::sync::Arc;

use trace_store_core::{
    CorruptAt, Error, GroupBy, GroupKey, Result, Trace, TraceFilter, TraceStats, TraceSummary,
};

use crate::JsonlStore;
use crate::format::{push_save, push_tombstone};
use crate::index::Expected;
use crate::state::OpenFile;
use crate::sys::{io_error, read_exact_at};

/// A cheap test on a body's raw JSON bytes that rules out most bodies a text query
/// cannot match, before they are decoded; core's predicate still decides on the rest.
///
/// It applies only to queries that are ASCII without `"`, `\`, `/` or control
/// characters, whose lower-cased form is then found in the body's ASCII-lower-cased
/// bytes or the body cannot match. Why that holds: every piece of the searchable text
/// is a JSON string of the body, and the pieces are joined by newlines, which such a
/// query does not contain; a string's raw bytes equal its decoded text except for
/// escapes, and the query contains none of the characters that serde_json escapes
/// (`"`, `\`, control characters) or that other writers may escape (`\/`). The
/// exceptions are ruled out per body: a body with a `\u` escape (any character, written
/// by another JSON writer) or one of the only two non-ASCII characters whose lower case
/// contains ASCII letters (U+0130 `İ` → `i̇`, U+212A Kelvin sign → `k`) is always
/// decoded.
struct RawPrefilter {
    needle: memchr::memmem::Finder<'static>,
}

/// UTF-8 of U+0130 and U+212A, the non-ASCII characters that lower-case to ASCII.
const LOWERS_TO_ASCII: [&[u8]; 2] = [&[0xC4, 0xB0], &[0xE2, 0x84, 0xAA]];

impl RawPrefilter {
    fn new(query: &str) -> Option<RawPrefilter> {
        let lowered = query.to_lowercase();
        let plain = lowered.is_ascii()
            && !lowered
                .bytes()
                .any(|b| b.is_ascii_control() || matches!(b, b'"' | b'\\' | b'/'));
        plain.then(|| RawPrefilter {
            needle: memchr::memmem::Finder::new(lowered.as_bytes()).into_owned(),
        })
    }

    /// False only if `body` cannot match; `scratch` is reused between calls.
    fn may_match(&self, body: &[u8], scratch: &mut Vec<u8>) -> bool {
        scratch.clear();
        scratch.extend(body.iter().map(u8::to_ascii_lowercase));
        self.needle.find(scratch).is_some()
            || memchr::memmem::find(body, b"\\u").is_some()
            || LOWERS_TO_ASCII
                .iter()
                .any(|bytes| memchr::memmem::find(body, bytes).is_some())
    }
}

/// A record picked by the cheap criteria: its summary, what its body must agree with,
/// and where its body is.
struct Candidate {
    summary: TraceSummary,
    expected: Expected,
    trace_offset: u64,
    trace_len: u64,
}

/// One positioned read of a body into `body`.
fn read_body(
    file: &OpenFile,
    (offset, len): (u64, u64),
    body: &mut Vec<u8>,
) -> std::io::Result<()> {
    body.resize(len as usize, 0);
    read_exact_at(&file.file, body, offset)
}

impl JsonlStore {
    /// Reads and decodes the body of a record: one positioned read. Checks the members
    /// of its summary copied from the trace against it, so a line edited on one side
    /// only is [`Error::Corrupt`] rather than an answer that contradicts `list`.
    pub(crate) fn read_trace(
        &self,
        file: &OpenFile,
        (offset, len): (u64, u64),
        expected: &Expected,
        body: &mut Vec<u8>,
    ) -> Result<Trace> {
        read_body(file, (offset, len), body)
            .map_err(|e| io_error("cannot read a trace from", &self.path, e))?;
        self.decode_trace(offset, body, expected)
    }

    /// Decodes a body read from `offset` and checks it against its summary.
    fn decode_trace(&self, offset: u64, body: &[u8], expected: &Expected) -> Result<Trace> {
        let run_id = expected.run_id();
        let at = || {
            CorruptAt::default()
                .with_file(&self.path)
                .with_offset(offset)
                .with_key(run_id)
        };
        let trace = Trace::from_json_slice(body).map_err(|error| match error {
            Error::Corrupt { message, .. } => Error::corrupt_at(
                at(),
                format!(
                    "{} at byte offset {offset}, trace {run_id:?}: {message}",
                    self.path.display()
                ),
            ),
            other => other,
        })?;
        if let Some(member) = expected.disagreement(&trace) {
            return Err(Error::corrupt_at(
                at(),
                format!(
                    "{} at byte offset {offset}: the line of {run_id:?} has a {member} member that \
                 disagrees with its trace (edited by hand?); list and query answer from the \
                 former, load from the latter; fix the line or save the trace again",
                    self.path.display(),
                ),
            ));
        }
        Ok(trace)
    }

    /// The summaries `query(filter)` returns, from the index as it is now: the caller
    /// has validated the filter and refreshed the index (or holds the write lock).
    ///
    /// A text query is a scan: the index applies every other criterion (and the
    /// cursor), then each candidate's body is read with one positioned read and core's
    /// predicate decides on its searchable text, in list order, before offset and
    /// limit; the scan stops once the page is full. The bodies are read outside the
    /// state lock (the bytes of an indexed record never change in the file this handle
    /// has open), so writers are not held up by a long scan.
    pub(crate) fn select(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        if filter.text.is_none() {
            return Ok(self.state.read().index.query(filter));
        }
        // The cursor stays: the index applies it; offset and limit count text hits.
        let mut unpaged = filter.clone();
        unpaged.offset = 0;
        unpaged.limit = None;
        let (file, candidates) = {
            let state = self.state.read();
            let mut candidates = Vec::new();
            state.index.for_each_match(&unpaged, |entry| {
                candidates.push(Candidate {
                    summary: state.index.summary(entry),
                    expected: state.index.expected(entry),
                    trace_offset: entry.loc.trace_offset,
                    trace_len: entry.loc.trace_len,
                });
            });
            (Arc::clone(&state.file), candidates)
        };
        let prefilter = filter.text.as_deref().and_then(RawPrefilter::new);
        let mut scratch = Vec::new();
        let mut to_skip = filter.offset;
        let mut room = filter.limit.unwrap_or(usize::MAX);
        let mut page = Vec::new();
        let mut body = Vec::new();
        for candidate in candidates {
            if room == 0 {
                break;
            }
            let location = (candidate.trace_offset, candidate.trace_len);
            read_body(&file, location, &mut body)
                .map_err(|e| io_error("cannot read a trace from", &self.path, e))?;
            if prefilter
                .as_ref()
                .is_some_and(|prefilter| !prefilter.may_match(&body, &mut scratch))
            {
                continue;
            }
            let trace = self.decode_trace(location.0, &body, &candidate.expected)?;
            if !filter.matches_text(&trace.search_text()) {
                continue;
            }
            if to_skip > 0 {
                to_skip -= 1;
                continue;
            }
            room -= 1;
            page.push(candidate.summary);
        }
        Ok(page)
    }

    /// `count`, answered by the index alone unless the filter has a text query.
    pub(crate) fn count_matches(&self, filter: &TraceFilter) -> Result<u64> {
        if filter.text.is_none() {
            return self.with_index(filter, |index| index.count(filter));
        }
        Ok(self.query_matches(filter)?.len() as u64)
    }

    /// `stats`, answered by the index alone unless the filter has a text query.
    pub(crate) fn stats_of_matches(&self, filter: &TraceFilter) -> Result<TraceStats> {
        if filter.text.is_none() {
            return self.with_index(filter, |index| index.stats(filter));
        }
        Ok(self.query_matches(filter)?.iter().collect())
    }

    /// `query`.
    pub(crate) fn query_matches(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        filter.validate()?;
        self.refresh()?;
        self.select(filter)
    }

    /// `stats_by`: core's [`GroupBy::stats`] over exactly what `query(filter)` returns.
    pub(crate) fn grouped_stats(
        &self,
        filter: &TraceFilter,
        group: &GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        group.validate()?;
        filter.validate()?;
        self.refresh()?;
        if filter.text.is_some() {
            return Ok(group.stats(&self.select(filter)?));
        }
        let summaries = self.state.read().index.query(filter);
        Ok(group.stats(&summaries))
    }

    /// `merge`: under the write lock (which first reads whatever other handles
    /// appended), load the stored trace, fold `part` in with core's [`Trace::merge`]
    /// and append the result; concurrent merges, from any thread or process, are
    /// serialised by the file lock and never lose each other's parts.
    pub(crate) fn merge_locked(&self, part: &Trace) -> Result<Trace> {
        part.validate()?;
        let mut lock = self.lock()?;
        let stored = self.stored(&part.run_id);
        let merged = match stored {
            Some((file, location, expected)) => {
                let mut merged = self.read_trace(&file, location, &expected, &mut Vec::new())?;
                merged.merge(part);
                merged.validate()?;
                merged
            }
            None => part.clone(),
        };
        let mut batch = Vec::new();
        let encoded = push_save(&merged, &mut batch)?;
        self.append(&mut lock, &batch, vec![encoded])?;
        Ok(merged)
    }

    /// The open file, body location and expected members of `run_id`'s live record.
    pub(crate) fn stored(&self, run_id: &str) -> Option<(Arc<OpenFile>, (u64, u64), Expected)> {
        let state = self.state.read();
        let entry = state.index.entry(run_id)?;
        Some((
            Arc::clone(&state.file),
            (entry.loc.trace_offset, entry.loc.trace_len),
            state.index.expected(entry),
        ))
    }

    /// `merge_many`: every part validated first; then, under one acquisition of the
    /// write lock, each run_id's stored trace is loaded once and every part of it folded
    /// in, in the order given, and the merged traces are appended as one write, each
    /// run_id once. Nothing is written unless every fold succeeds.
    pub(crate) fn merge_batch(&self, parts: &[Trace]) -> Result<Vec<String>> {
        parts.iter().try_for_each(Trace::validate)?;
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let mut lock = self.lock()?;
        let mut merged: Vec<Trace> = Vec::new();
        let mut position: HashMap<&str, usize> = HashMap::new();
        let mut body = Vec::new();
        for part in parts {
            if let Some(&at) = position.get(part.run_id.as_str()) {
                merged[at].merge(part);
                // As `merge` would have refused this fold, one part at a time.
                merged[at].validate()?;
                continue;
            }
            let trace = match self.stored(&part.run_id) {
                Some((file, location, expected)) => {
                    let mut stored = self.read_trace(&file, location, &expected, &mut body)?;
                    stored.merge(part);
                    stored.validate()?;
                    stored
                }
                None => part.clone(),
            };
            position.insert(&part.run_id, merged.len());
            merged.push(trace);
        }
        let mut batch = Vec::new();
        let records = merged
            .iter()
            .map(|trace| push_save(trace, &mut batch))
            .collect::<Result<Vec<_>>>()?;
        self.append(&mut lock, &batch, records)?;
        Ok(parts.iter().map(|part| part.run_id.clone()).collect())
    }

    /// `delete_where`: under the write lock, selects exactly what `query(filter)`
    /// returns and appends all their tombstones as one write. Compacts afterwards once
    /// dead bytes outweigh live ones, whatever the file's size (unless automatic
    /// compaction is off): a bulk delete is how retention frees space.
    pub(crate) fn delete_matches(&self, filter: &TraceFilter) -> Result<u64> {
        filter.validate()?;
        let mut lock = self.lock()?;
        let doomed = self.select(filter)?;
        if doomed.is_empty() {
            return Ok(0);
        }
        let mut batch = Vec::new();
        let records = doomed
            .iter()
            .map(|summary| push_tombstone(&summary.run_id, &mut batch))
            .collect::<Result<Vec<_>>>()?;
        self.append(&mut lock, &batch, records)?;
        let outweighed = {
            let state = self.state.read();
            state.end.saturating_sub(state.index.live_bytes) > state.index.live_bytes
        };
        if outweighed
            && self.options.auto_compact_min_bytes.is_some()
            && let Err(error) = self.compact_locked(&mut lock)
        {
            // The deletes are done and durable as any append; only the space is not
            // reclaimed yet, which the next compaction does.
            self.state.write().last_error = Some(format!("automatic compaction failed: {error}"));
        }
        Ok(doomed.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_two_non_ascii_characters_lower_case_to_ascii() {
        let found: Vec<Vec<u8>> = (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|c| !c.is_ascii() && c.to_lowercase().any(|l| l.is_ascii()))
            .map(|c| c.to_string().into_bytes())
            .collect();
        let expected: Vec<Vec<u8>> = LOWERS_TO_ASCII.iter().map(|b| b.to_vec()).collect();
        assert_eq!(
            found, expected,
            "the raw prefilter must know every such character"
        );
    }

    /// The prefilter never rejects a body whose trace matches: checked on bodies whose
    /// raw bytes differ from their searchable text in every way the prefilter allows for.
    #[test]
    fn the_raw_prefilter_never_rejects_a_match() {
        let body = |trace: &Trace| trace.to_json_vec().unwrap();
        let escaped = br#"{"schema_version":1,"run_id":"r","created_at":"2026-01-01T00:00:00.000000Z","name":"Z\u0061nzibar"}"#;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (body(&Trace::new("r").with_name("ZANZIBAR")), "zanzibar"),
            (body(&Trace::new("r").with_name("\u{212A}ELVIN")), "kelvin"),
            (body(&Trace::new("r").with_name("\u{130}stanbul")), "i"),
            (escaped.to_vec(), "zanz"),
        ];
        let mut scratch = Vec::new();
        for (raw, query) in cases {
            let trace = Trace::from_json_slice(&raw).unwrap();
            assert!(trace.text_matches(query), "{query}");
            let prefilter = RawPrefilter::new(query).expect("a plain query");
            assert!(prefilter.may_match(&raw, &mut scratch), "{query}");
        }
        let plain = body(&Trace::new("r").with_name("Mombasa"));
        let prefilter = RawPrefilter::new("ZANZIBAR").expect("a plain query");
        assert!(
            !prefilter.may_match(&plain, &mut scratch),
            "rules out a plain miss"
        );
        for query in ["say \"hi\"", "a/b", "tab\there", "你好", "back\\slash"] {
            assert!(
                RawPrefilter::new(query).is_none(),
                "{query:?} must be decoded"
            );
        }
    }
}
