//! A `TraceFilter` as one SQL statement: every criterion, the order, the cursor, offset
//! and limit run in SQLite, so a page is never filtered after the fact.

use std::borrow::Cow;
use std::fmt::Write as _;

use rusqlite::types::Value;
use rusqlite::{Connection, params};
use trace_store_core::{TraceFilter, canonical_json};

/// SQL text and its positional parameters.
pub(crate) struct Statement {
    pub(crate) sql: String,
    pub(crate) params: Vec<Value>,
}

/// List order; `run_id` compares by bytes (BINARY collation), as `Cursor` does.
const ORDER: &str = " ORDER BY t.created_at DESC, t.run_id DESC";

/// Usize bounds past `i64::MAX` mean "no bound" in practice; SQLite has no u64.
fn int(n: usize) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `SELECT {columns} FROM .. WHERE ..` for the traces `filter` selects, from the table
/// `traces` aliased `t`. With `paged`, also the list order, `LIMIT` and `OFFSET`;
/// without, the rows come in no particular order and paging is ignored (used by `count`
/// and `stats` when the filter has no offset or limit).
///
/// With metadata criteria, the first one drives the query through the index on
/// `(key, value)` (`CROSS JOIN` fixes that join order) and the rest are primary-key
/// probes, so the cost follows the number of matches, not the size of the store.
/// Otherwise SQLite walks the `(created_at DESC, run_id DESC)` index, from `until` or
/// the cursor when set, and stops at `since` or once the page is full.
///
/// A text query adds core's predicate as the last criterion (so paging comes after
/// it), narrowed first by the trigram index when `text_index` holds the FTS5 query
/// that [`plan_text`] chose.
pub(crate) fn select(
    filter: &TraceFilter,
    columns: &str,
    paged: bool,
    text_index: Option<&str>,
) -> Statement {
    let mut sql = String::with_capacity(256);
    let mut params = Vec::new();
    let mut conditions: Vec<Cow<'static, str>> = Vec::new();
    let mut metadata = filter.metadata_match.iter();
    let _ = write!(sql, "SELECT {columns} FROM ");
    match metadata.next() {
        Some((key, value)) => {
            sql.push_str("trace_metadata m0 CROSS JOIN traces t ON t.id = m0.trace_id");
            conditions.push("m0.key = ? AND m0.value = ?".into());
            params.push(Value::Text(key.clone()));
            params.push(Value::Text(canonical_json(value)));
        }
        None => sql.push_str("traces t"),
    }
    for (key, value) in metadata {
        conditions.push(
            "EXISTS (SELECT 1 FROM trace_metadata m \
             WHERE m.key = ? AND m.value = ? AND m.trace_id = t.id)"
                .into(),
        );
        params.push(Value::Text(key.clone()));
        params.push(Value::Text(canonical_json(value)));
    }
    if let Some(since) = filter.since {
        conditions.push("t.created_at >= ?".into());
        params.push(Value::Integer(since.as_micros()));
    }
    if let Some(until) = filter.until {
        conditions.push("t.created_at <= ?".into());
        params.push(Value::Integer(until.as_micros()));
    }
    if let Some(after) = &filter.after {
        // A row value compares lexicographically, exactly like the Cursor, and SQLite
        // turns it into a range on the ordering index.
        conditions.push("(t.created_at, t.run_id) < (?, ?)".into());
        params.push(Value::Integer(after.created_at.as_micros()));
        params.push(Value::Text(after.run_id.clone()));
    }
    if let Some(min) = filter.min_steps {
        conditions.push("t.steps >= ?".into());
        params.push(int(min));
    }
    if let Some(max) = filter.max_steps {
        conditions.push("t.steps <= ?".into());
        params.push(int(max));
    }
    if let Some(status) = filter.status {
        conditions.push("t.status = ?".into());
        params.push(Value::Text(status.as_str().to_owned()));
    }
    if let Some(name) = &filter.name {
        conditions.push("t.name = ?".into());
        params.push(Value::Text(name.clone()));
    }
    if let Some(session_id) = &filter.session_id {
        conditions.push("t.session_id = ?".into());
        params.push(Value::Text(session_id.clone()));
    }
    if let Some(parent_run_id) = &filter.parent_run_id {
        conditions.push("t.parent_run_id = ?".into());
        params.push(Value::Text(parent_run_id.clone()));
    }
    if let Some(range) = &filter.score {
        let mut condition = String::from(
            "EXISTS (SELECT 1 FROM trace_scores s WHERE s.trace_id = t.id AND s.name = ?",
        );
        params.push(Value::Text(range.name.clone()));
        if let Some(min) = range.min {
            condition.push_str(" AND s.value >= ?");
            params.push(Value::Real(min));
        }
        if let Some(max) = range.max {
            condition.push_str(" AND s.value <= ?");
            params.push(Value::Real(max));
        }
        condition.push(')');
        conditions.push(condition.into());
    }
    // Last, so that every cheaper criterion has ruled a trace out before the recheck.
    if let Some(query) = &filter.text {
        if let Some(terms) = text_index {
            conditions.push(format!("t.id IN ({})", crate::text::CANDIDATES).into());
            params.push(Value::Text(terms.to_owned()));
        }
        conditions.push(
            format!("{TEXT_CONTAINS}((SELECT text FROM trace_text WHERE id = t.id), ?)").into(),
        );
        params.push(Value::Text(query.clone()));
    }
    for (i, condition) in conditions.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str(condition);
    }
    if paged {
        sql.push_str(ORDER);
        sql.push_str(" LIMIT ? OFFSET ?");
        params.push(match filter.limit {
            Some(limit) => int(limit),
            None => Value::Integer(-1),
        });
        params.push(int(filter.offset));
    }
    Statement { sql, params }
}

/// The SQL function that is core's text predicate, `text_contains(search_text, query)`;
/// registered on every connection by [`register_functions`].
pub(crate) const TEXT_CONTAINS: &str = "trace_store_text_contains";

/// Most trigrams of a query that the FTS prefilter looks up: past a few, each one
/// narrows little and costs a walk of its posting list.
const MAX_TRIGRAMS: usize = 8;

/// The distinct trigrams of a query, lower-cased as core lower-cases it, that the
/// FTS5 parser can take (it stops at NUL); empty for fewer than 3 characters.
fn trigrams(query: &str) -> Vec<String> {
    let chars: Vec<char> = query.to_lowercase().chars().collect();
    let mut trigrams: Vec<String> = chars
        .windows(3)
        .filter(|w| !w.contains(&'\0'))
        .map(|w| w.iter().collect())
        .collect();
    trigrams.sort_unstable();
    trigrams.dedup();
    trigrams
}

/// The FTS5 query for `trigrams`: a row must hold each of them (at most
/// [`MAX_TRIGRAMS`], a fixed sample so that the cost does not vary from run to run).
///
/// The table is `detail=none` (no positions, a third of the size), so the trigrams are
/// separate terms ANDed, not a phrase: a superset of the traces that contain the
/// query, which [`TEXT_CONTAINS`] then decides. Each term is an FTS5 string, `"`
/// doubled. The tokenizer folds case per character on the index and the query alike,
/// so it never drops a match.
fn fts_query(trigrams: &[String]) -> String {
    let step = trigrams.len().div_ceil(MAX_TRIGRAMS).max(1);
    trigrams
        .iter()
        .step_by(step)
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Whether the trigram index should narrow `filter`'s text query, and with which
/// FTS5 query; `None`: recheck trace by trace in list order instead.
///
/// A query of fewer than 3 characters has no trigram. Otherwise the index pays when
/// its candidates are few: all of them are looked up and sorted, where a walk down
/// the list order stops once the page is full. With `n` candidates, a page ending at
/// `wanted` and `total` traces, the walk visits about `wanted * total / n` traces: the
/// index wins while `n * n <= wanted * total`. Without a limit, it wins unless half
/// the store is a candidate. The candidates are counted by the index itself, up to
/// that bound only, so the count costs no more than the plan it chooses. The choice
/// only affects speed, never the answer.
pub(crate) fn plan_text(
    conn: &Connection,
    filter: &TraceFilter,
) -> rusqlite::Result<Option<String>> {
    let Some(query) = &filter.text else {
        return Ok(None);
    };
    let trigrams = trigrams(query);
    if trigrams.is_empty() {
        return Ok(None);
    }
    let fts = fts_query(&trigrams);
    // The largest rowid: the number of traces, or more after deletes (a bound is all
    // the estimate needs).
    let total: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM traces")?
        .query_row([], |row| row.get(0))?;
    let most = match filter.limit {
        Some(limit) => {
            let wanted = limit.saturating_add(filter.offset) as f64;
            (wanted * total as f64).sqrt() as i64
        }
        None => total / 2,
    };
    let candidates: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM ({}) LIMIT ?)",
            crate::text::CANDIDATES
        ))?
        .query_row(params![fts, most.saturating_add(1)], |row| row.get(0))?;
    Ok((candidates <= most).then_some(fts))
}

/// Registers [`TEXT_CONTAINS`] on `conn`: the recheck of every FTS candidate and the
/// whole predicate of a short query, in SQL, so that offset and limit apply after it.
pub(crate) fn register_functions(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        TEXT_CONTAINS,
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            // NULL text: the trace has no searchable text, which contains nothing.
            let text = ctx.get_raw(0).as_str_or_null()?;
            let query = ctx.get_raw(1).as_str()?;
            Ok(text.is_some_and(|text| trace_store_core::text_contains(text, query)))
        },
    )
}

/// True if the page (offset, limit) changes which traces a filter selects, so `count`
/// and `stats` must order and cut like `query` does.
pub(crate) fn is_paged(filter: &TraceFilter) -> bool {
    filter.offset > 0 || filter.limit.is_some()
}

/// `COUNT(*)` over exactly what `query(filter)` returns.
pub(crate) fn count(filter: &TraceFilter, text_index: Option<&str>) -> Statement {
    let inner = select(filter, "1", is_paged(filter), text_index);
    Statement {
        sql: format!("SELECT COUNT(*) FROM ({})", inner.sql),
        params: inner.params,
    }
}
