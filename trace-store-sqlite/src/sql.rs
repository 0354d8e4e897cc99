//! A `TraceFilter` as one SQL statement: every criterion, the order, the cursor, offset
//! and limit run in SQLite, so a page is never filtered after the fact.

use std::fmt::Write as _;

use rusqlite::types::Value;
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
pub(crate) fn select(filter: &TraceFilter, columns: &str, paged: bool) -> Statement {
    let mut sql = String::with_capacity(256);
    let mut params = Vec::new();
    let mut conditions: Vec<&str> = Vec::new();
    let mut metadata = filter.metadata_match.iter();
    let _ = write!(sql, "SELECT {columns} FROM ");
    match metadata.next() {
        Some((key, value)) => {
            sql.push_str("trace_metadata m0 CROSS JOIN traces t ON t.id = m0.trace_id");
            conditions.push("m0.key = ? AND m0.value = ?");
            params.push(Value::Text(key.clone()));
            params.push(Value::Text(canonical_json(value)));
        }
        None => sql.push_str("traces t"),
    }
    for (key, value) in metadata {
        conditions.push(
            "EXISTS (SELECT 1 FROM trace_metadata m \
             WHERE m.key = ? AND m.value = ? AND m.trace_id = t.id)",
        );
        params.push(Value::Text(key.clone()));
        params.push(Value::Text(canonical_json(value)));
    }
    if let Some(since) = filter.since {
        conditions.push("t.created_at >= ?");
        params.push(Value::Integer(since.as_micros()));
    }
    if let Some(until) = filter.until {
        conditions.push("t.created_at <= ?");
        params.push(Value::Integer(until.as_micros()));
    }
    if let Some(after) = &filter.after {
        // A row value compares lexicographically, exactly like the Cursor, and SQLite
        // turns it into a range on the ordering index.
        conditions.push("(t.created_at, t.run_id) < (?, ?)");
        params.push(Value::Integer(after.created_at.as_micros()));
        params.push(Value::Text(after.run_id.clone()));
    }
    if let Some(min) = filter.min_steps {
        conditions.push("t.steps >= ?");
        params.push(int(min));
    }
    if let Some(max) = filter.max_steps {
        conditions.push("t.steps <= ?");
        params.push(int(max));
    }
    if let Some(status) = filter.status {
        conditions.push("t.status = ?");
        params.push(Value::Text(status.as_str().to_owned()));
    }
    if let Some(name) = &filter.name {
        conditions.push("t.name = ?");
        params.push(Value::Text(name.clone()));
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

/// True if the page (offset, limit) changes which traces a filter selects, so `count`
/// and `stats` must order and cut like `query` does.
pub(crate) fn is_paged(filter: &TraceFilter) -> bool {
    filter.offset > 0 || filter.limit.is_some()
}

/// `COUNT(*)` over exactly what `query(filter)` returns.
pub(crate) fn count(filter: &TraceFilter) -> Statement {
    let inner = select(filter, "1", is_paged(filter));
    Statement {
        sql: format!("SELECT COUNT(*) FROM ({})", inner.sql),
        params: inner.params,
    }
}

/// Row kinds of the [`stats`] statement.
pub(crate) const TOTALS: i64 = 0;
pub(crate) const BY_STATUS: i64 = 1;
pub(crate) const BY_MODEL: i64 = 2;

/// Totals, per-status counts and per-model usage over exactly what `query(filter)`
/// returns, as one statement (one snapshot) of rows
/// `(kind, label, count_or_calls, steps, input, output, cost, errors, total_ms, min)`.
///
/// `min` is the smallest unsigned counter seen; below zero means a value past
/// `i64::MAX` was stored bit for bit, and the caller recomputes exactly. A trace's
/// per-model counters never exceed its totals, so the totals' check covers them.
pub(crate) fn stats(filter: &TraceFilter) -> Statement {
    let selection = select(
        filter,
        "t.id, t.status, t.steps, t.total_ms, t.error_count, t.input_tokens, \
         t.output_tokens, t.cost_nano_usd",
        is_paged(filter),
    );
    let sql = format!(
        "WITH sel AS MATERIALIZED ({selection})
         SELECT {TOTALS}, NULL, COUNT(*), SUM(steps), SUM(input_tokens), SUM(output_tokens),
                SUM(cost_nano_usd), SUM(error_count), TOTAL(total_ms),
                MIN(MIN(steps, error_count, input_tokens, output_tokens))
         FROM sel
         UNION ALL
         SELECT {BY_STATUS}, status, COUNT(*), NULL, NULL, NULL, NULL, NULL, NULL, NULL
         FROM sel GROUP BY status
         UNION ALL
         SELECT {BY_MODEL}, m.model, SUM(m.calls), NULL, SUM(m.input_tokens),
                SUM(m.output_tokens), SUM(m.cost_nano_usd), NULL, NULL, NULL
         FROM sel CROSS JOIN trace_models m ON m.trace_id = sel.id GROUP BY m.model",
        selection = selection.sql
    );
    Statement {
        sql,
        params: selection.params,
    }
}
