//! The `--json` page of `list` and `query`: `{"traces": [..], "next": CURSOR|null,
//! "total": N}`, and the opaque cursor `--after` takes back.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use trace_store::{Cursor, Timestamp, TraceFilter, TraceStore, TraceSummary};

/// One page of summaries, as `--json` prints it.
#[derive(Debug, Serialize)]
pub(crate) struct Page {
    /// The page, newest first.
    pub(crate) traces: Vec<TraceSummary>,
    /// `--after` for the page that follows; `None` on the last page.
    pub(crate) next: Option<String>,
    /// Traces the filter matches, without `--after`, `--offset` and `--limit`.
    pub(crate) total: u64,
}

impl Page {
    /// Queries one page; one trace more than the limit tells whether another follows.
    pub(crate) fn query(store: &dyn TraceStore, filter: &TraceFilter) -> trace_store::Result<Page> {
        let mut probe = filter.clone();
        probe.limit = filter.limit.map(|limit| limit.saturating_add(1));
        let mut traces = store.query(&probe)?;
        let next = match filter.limit {
            Some(limit) if traces.len() > limit => {
                traces.truncate(limit);
                traces.last().map(|last| encode(&last.cursor()))
            }
            _ => None,
        };
        let mut unpaged = filter.clone();
        unpaged.after = None;
        unpaged.offset = 0;
        unpaged.limit = None;
        let total = store.count(&unpaged)?;
        Ok(Page {
            traces,
            next,
            total,
        })
    }
}

/// The cursor as text: base64url of the JSON `[created_at µs, run_id]`, the form the
/// HTTP API's `next` has too, so any run_id (spaces, slashes, non-ASCII) survives a
/// shell and a URL unchanged and a cursor from either works in both.
pub(crate) fn encode(cursor: &Cursor) -> String {
    let json =
        serde_json::to_vec(&(cursor.created_at.as_micros(), &cursor.run_id)).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// `--after`: a `next` value printed by an earlier page.
pub(crate) fn parse_cursor(text: &str) -> Result<Cursor, String> {
    let garbled =
        || "not a cursor (pass the \"next\" value of a previous --json page unchanged)".to_owned();
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim().trim_end_matches('='))
        .map_err(|_| garbled())?;
    let (micros, run_id): (i64, String) = serde_json::from_slice(&bytes).map_err(|_| garbled())?;
    let created_at = Timestamp::from_micros(micros).map_err(|_| garbled())?;
    Ok(Cursor::new(created_at, run_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_any_run_id() {
        for run_id in ["r1", "a/b c", "ü:?&=", ""] {
            let cursor = Cursor::new(
                Timestamp::from_micros(1_700_000_000_123_456).unwrap(),
                run_id,
            );
            assert_eq!(parse_cursor(&encode(&cursor)), Ok(cursor));
        }
        for bad in ["", "not a cursor", &URL_SAFE_NO_PAD.encode(b"[1]")] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}
