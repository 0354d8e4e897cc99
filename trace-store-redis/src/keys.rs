//! The key layout: every key name and index member this crate builds, and the encodings
//! that keep them apart whatever the prefix, run_id or metadata contains.
//!
//! Keys are `{P}:` followed by a fixed kind marker, where `P` is the percent-encoded
//! prefix (which therefore holds no `{`, `}` or `:`), so the hash tag is always exactly
//! the prefix and two prefixes never share a key. After the marker comes either nothing
//! or one variable part: a raw run_id in `b:<run_id>` (the marker `b:` is used by no other
//! key, so the rest of the name is the run_id and nothing else), or percent-encoded
//! metadata keys and canonical values, separated by `:`, which the encoding never emits.

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use trace_store_core::{Cursor, Timestamp, TraceFilter, TraceSummary, canonical_json};

/// Bytes left as they are in encoded names; everything else becomes `%XX`.
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-');

fn encode(text: &str) -> impl std::fmt::Display + '_ {
    utf8_percent_encode(text, ENCODED)
}

/// The key names of one store (one prefix).
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    base: String,
}

impl Keys {
    /// The names for `prefix`, which [`RedisOptions`](crate::RedisOptions) has checked
    /// to be non-empty (an empty hash tag would hash each whole key instead).
    pub(crate) fn new(prefix: &str) -> Keys {
        Keys {
            base: format!("{{{}}}:", encode(prefix)),
        }
    }

    /// `{P}:`, which every key starts with; the Lua scripts build names from it.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The string holding one trace's JSON body.
    pub(crate) fn body(&self, run_id: &str) -> String {
        format!("{}b:{run_id}", self.base)
    }
}

/// `created_at` as 16 hex digits whose byte order is the numeric order: the sign bit
/// flipped, so negative instants (before 1970) sort before positive ones.
pub(crate) fn encode_time(at: Timestamp) -> String {
    encode_micros(at.as_micros())
}

fn encode_micros(micros: i64) -> String {
    format!("{:016x}", (micros as u64) ^ (1 << 63))
}

/// The sorted-set member that places a trace in list order: fixed-width time, then the
/// run_id, compared bytewise by Redis exactly as `(created_at, run_id)` compares in Rust.
pub(crate) fn member(at: Timestamp, run_id: &str) -> String {
    let mut member = encode_time(at);
    member.push_str(run_id);
    member
}

fn status_suffix(status: trace_store_core::Status) -> String {
    format!("st:{}", status.as_str())
}

fn name_suffix(name: &str) -> String {
    format!("nm:{}", encode(name))
}

fn metadata_suffix(key: &str, value: &serde_json::Value) -> String {
    format!("m:{}:{}", encode(key), encode(&canonical_json(value)))
}

fn session_suffix(session_id: &str) -> String {
    format!("sid:{}", encode(session_id))
}

fn parent_suffix(parent_run_id: &str) -> String {
    format!("par:{}", encode(parent_run_id))
}

/// The sorted set of one trace-level score: member as in every index, scored by the
/// score's value (so a range is a `ZCOUNT`, and membership a `ZMSCORE`).
pub(crate) fn score_suffix(name: &str) -> String {
    format!("sc:{}", encode(name))
}

/// A score as its set's score: `{:e}` is Rust's shortest exponent form that reads back
/// as the same `f64` (Redis and Lua parse it with `strtod`), and never a long decimal.
pub(crate) fn score_value(value: f64) -> String {
    format!("{value:e}")
}

/// The index record of a trace, stored in the `ix` hash and read by the scripts to add
/// and later remove every index entry: `<created_at hex> <entry> <entry> ...`, where an
/// entry is a suffix (member with score 0) or `<suffix>=<score>` (a trace-level score's
/// set). No entry contains a space and no suffix an `=` (they are percent-encoded).
pub(crate) fn index_record(summary: &TraceSummary) -> String {
    let mut record = encode_time(summary.created_at);
    let _ = write!(record, " {}", status_suffix(summary.status));
    if let Some(name) = &summary.name {
        let _ = write!(record, " {}", name_suffix(name));
    }
    if let Some(session_id) = &summary.session_id {
        let _ = write!(record, " {}", session_suffix(session_id));
    }
    if let Some(parent) = &summary.parent_run_id {
        let _ = write!(record, " {}", parent_suffix(parent));
    }
    for (key, value) in &summary.metadata {
        let _ = write!(record, " {}", metadata_suffix(key, value));
    }
    // Exactly the scores `TraceFilter::matches` reads: the summary's trace-level ones.
    for (name, value) in &summary.scores {
        let _ = write!(record, " {}={}", score_suffix(name), score_value(*value));
    }
    record
}

/// The indexes a filter's equality criteria select from; a trace matches only if it is
/// in all of them.
pub(crate) fn filter_suffixes(filter: &TraceFilter) -> Vec<String> {
    let mut suffixes: Vec<String> = filter
        .metadata_match
        .iter()
        .map(|(key, value)| metadata_suffix(key, value))
        .collect();
    if let Some(status) = filter.status {
        suffixes.push(status_suffix(status));
    }
    if let Some(name) = &filter.name {
        suffixes.push(name_suffix(name));
    }
    if let Some(session_id) = &filter.session_id {
        suffixes.push(session_suffix(session_id));
    }
    if let Some(parent) = &filter.parent_run_id {
        suffixes.push(parent_suffix(parent));
    }
    suffixes
}

/// `(hi, lo)` bounds for `ZREVRANGEBYLEX` that select `since..=until`, strictly after
/// the cursor in list order.
pub(crate) fn lex_bounds(filter: &TraceFilter) -> (String, String) {
    let lo = match filter.since {
        Some(since) => format!("[{}", encode_time(since)),
        None => "-".to_owned(),
    };
    // Both upper limits are exclusive; the smaller one wins.
    // Every member at `until` sorts below the encoding of the next microsecond (which
    // exists in i64 even after Timestamp::MAX).
    let until = filter
        .until
        .map(|until| encode_micros(until.as_micros() + 1));
    let cursor = filter
        .after
        .as_ref()
        .map(|Cursor { created_at, run_id }| member(*created_at, run_id));
    let hi = match (until, cursor) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let hi = match hi {
        Some(limit) => format!("({limit}"),
        None => "+".to_owned(),
    };
    (hi, lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trace_store_core::{Status, Trace};

    #[test]
    fn time_encoding_preserves_order_over_the_whole_range() {
        let instants = [
            Timestamp::MIN,
            Timestamp::from_micros(-1).unwrap(),
            Timestamp::UNIX_EPOCH,
            Timestamp::from_micros(1).unwrap(),
            Timestamp::from_micros((1 << 53) + 1).unwrap(),
            Timestamp::MAX.saturating_add_micros(-1),
            Timestamp::MAX,
        ];
        for pair in instants.windows(2) {
            assert!(encode_time(pair[0]) < encode_time(pair[1]), "{pair:?}");
            assert_eq!(encode_time(pair[0]).len(), 16);
        }
        // Ties on time fall back to bytewise run_id order, as Rust compares strings.
        let t = Timestamp::UNIX_EPOCH;
        assert!(member(t, "a") < member(t, "ab"));
        assert!(member(t, "Z") < member(t, "a"));
        assert!(member(t, "é") > member(t, "z"));
    }

    #[test]
    fn prefixes_are_tagged_and_injective() {
        let weird = ["a", "a:b", "a}b", "{a}", "*", "a b", "%", "%25", "é"];
        let bases: Vec<_> = weird.iter().map(|p| Keys::new(p).base).collect();
        for (prefix, base) in weird.iter().zip(&bases) {
            let tag = &base[1..base.len() - 2];
            assert!(base.starts_with('{') && base.ends_with("}:"), "{base}");
            assert!(
                !tag.contains(['{', '}', ':', '*', ' ']),
                "{prefix} -> {base}"
            );
        }
        let mut unique = bases.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), bases.len());
    }

    #[test]
    fn index_record_has_one_spaceless_suffix_per_index() {
        let trace = Trace::new("r")
            .with_name("my agent: v2")
            .with_status(Status::Ok)
            .with_metadata("user id", json!("u 1"))
            .with_metadata("k:v", json!({"b": 1, "a": [1.0]}));
        let record = index_record(&TraceSummary::from(&trace));
        let parts: Vec<_> = record.split(' ').collect();
        assert_eq!(parts.len(), 5, "{record}");
        assert_eq!(parts[0], encode_time(trace.created_at));
        assert!(parts.contains(&"st:ok"));
        assert!(parts.contains(&"nm:my%20agent%3A%20v2"));
        assert!(parts.contains(&"m:k%3Av:%7B%22a%22%3A%5B1%5D%2C%22b%22%3A1%7D"));
        assert_eq!(
            filter_suffixes(&TraceFilter::new().with_metadata("user id", "u 1")),
            ["m:user%20id:%22u%201%22"]
        );
    }

    #[test]
    fn sessions_parents_and_scores_get_encoded_entries() {
        let trace = Trace::new("r")
            .with_session_id("chat: 1")
            .with_parent_run_id("p=q")
            .with_score(trace_store_core::Score::new("a=b c").with_value(0.1))
            .with_score(trace_store_core::Score::new("n").with_value(-1e-300))
            .with_score(
                trace_store_core::Score::new("step")
                    .with_step_id("s")
                    .with_value(1.0),
            );
        let record = index_record(&TraceSummary::from(&trace));
        let parts: Vec<_> = record.split(' ').collect();
        assert_eq!(parts.len(), 6, "{record}");
        assert!(parts.contains(&"sid:chat%3A%201"));
        assert!(parts.contains(&"par:p%3Dq"));
        // One `=` per score entry: the encoded name cannot contain one.
        assert!(parts.contains(&"sc:a%3Db%20c=1e-1"));
        assert!(parts.contains(&"sc:n=-1e-300"));
        for value in [0.1, -1e-300, 1.0 / 3.0, f64::MAX, -0.0] {
            assert_eq!(score_value(value).parse::<f64>().unwrap(), value);
        }
        assert_eq!(
            filter_suffixes(
                &TraceFilter::new()
                    .with_session_id("chat: 1")
                    .with_parent_run_id("p=q")
            ),
            ["sid:chat%3A%201", "par:p%3Dq"]
        );
    }

    #[test]
    fn bounds_combine_until_and_cursor() {
        let t = |micros| Timestamp::from_micros(micros).unwrap();
        assert_eq!(lex_bounds(&TraceFilter::new()), ("+".into(), "-".into()));
        let (hi, lo) = lex_bounds(&TraceFilter::new().with_since(t(5)).with_until(t(9)));
        assert_eq!(lo, format!("[{}", encode_time(t(5))));
        assert_eq!(hi, format!("({}", encode_time(t(10))));
        let cursor = Cursor::new(t(7), "x");
        let (hi, _) = lex_bounds(&TraceFilter::new().with_until(t(9)).with_after(cursor));
        assert_eq!(hi, format!("({}", member(t(7), "x")));
        let (hi, _) = lex_bounds(&TraceFilter::new().with_until(Timestamp::MAX));
        assert!(hi[1..] > *encode_time(Timestamp::MAX));
    }
}
