//! The `--json` page of `list` and `query`: `{"traces": [..], "next": CURSOR|null,
//! "total": N}`, and the opaque cursor `--after` takes back.

use serde::Serialize;
use trace_store::{Cursor, TraceFilter, TraceStore, TraceSummary};

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

/// The cursor as text ([`Cursor::to_token`]), the form the HTTP API's `next` has too,
/// so a cursor from either works in both.
pub(crate) fn encode(cursor: &Cursor) -> String {
    cursor.to_token()
}

/// `--after`: a `next` value printed by an earlier page.
pub(crate) fn parse_cursor(text: &str) -> Result<Cursor, String> {
    Cursor::from_token(text).map_err(|_| {
        "not a cursor (pass the \"next\" value of a previous --json page unchanged)".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use trace_store::Timestamp;

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
