//! `stats` and `stats_by` as one SQL statement each, and their rows back into
//! `TraceStats`.

use std::collections::BTreeMap;

use rusqlite::types::{Value, ValueRef};
use trace_store_core::{GroupBy, GroupKey, ModelUsage, Status, Timestamp, TraceFilter, TraceStats};

use crate::error::bad_column;
use crate::sql::{self, Statement};

/// Row kinds of the statement.
const TOTALS: i64 = 0;
const BY_MODEL: i64 = 1;

/// Microseconds in a UTC day.
const DAY_MICROS: i64 = 86_400_000_000;

/// The columns of each selected trace that the totals need.
const SELECTED: &str = "t.id, t.created_at, t.name, t.session_id, t.status, t.steps, \
     t.total_ms, t.error_count, t.failed_steps, t.input_tokens, t.output_tokens, t.cost_nano_usd";

/// Totals per status and per-model usage of each group of what `query(filter)`
/// returns (one group, keyed NULL, without `group`), as one statement (one snapshot)
/// of rows `(kind, group, label, count, steps, input, output, cost, errors, total_ms,
/// failed_steps, min, calls)`: kind [`TOTALS`] per (group, status), kind [`BY_MODEL`]
/// per (group, model); [`read`] adds them up. `None` for a grouping this crate does
/// not know.
///
/// Two passes over the selection (three took twice as long at 100,000 traces), never
/// copied into a temporary table: a paged selection walks the same index in both and
/// so selects the same traces. For [`GroupBy::Model`] one pass suffices: each row of
/// the join is one trace and one of its models, whose usage is the group's `by_model`.
///
/// `min` is the smallest unsigned counter summed; below zero means a value past
/// `i64::MAX` was stored bit for bit, and the caller recomputes exactly. A trace's
/// per-model counters never exceed its totals, so the totals' check covers them.
///
/// Day groups are integer day numbers (floor of microseconds over a day, so times
/// before 1970 fall on the right day), never SQLite's `date()`, which rounds to
/// milliseconds and would move 23:59:59.9995 to the next day.
pub(crate) fn statement(
    filter: &TraceFilter,
    group: Option<&GroupBy>,
    text_index: Option<&str>,
) -> Option<Statement> {
    let selection = sql::select(filter, SELECTED, sql::is_paged(filter), text_index);
    let mut params = selection.params;
    let simple = |key: &str| format!("grp AS NOT MATERIALIZED (SELECT {key} AS g, * FROM sel)");
    let totals = |grp: &str, calls: &str| {
        format!(
            "{grp}
             SELECT {TOTALS}, g, status, COUNT(*), SUM(steps), SUM(input_tokens),
                    SUM(output_tokens), SUM(cost_nano_usd), SUM(error_count), TOTAL(total_ms),
                    SUM(failed_steps),
                    MIN(MIN(steps, error_count, failed_steps, input_tokens, output_tokens)),
                    {calls}
             FROM grp GROUP BY g, status"
        )
    };
    let by_model = "
         UNION ALL
         SELECT 1, g, m.model, NULL, NULL, SUM(m.input_tokens), SUM(m.output_tokens),
                SUM(m.cost_nano_usd), NULL, NULL, NULL, NULL, SUM(m.calls)
         FROM grp CROSS JOIN trace_models m ON m.trace_id = grp.id
         GROUP BY g, m.model";
    let day = format!(
        "(created_at - ((created_at % {DAY_MICROS}) + {DAY_MICROS}) % {DAY_MICROS}) / {DAY_MICROS}"
    );
    let arms = match group {
        None => totals(&simple("NULL"), "NULL") + by_model,
        Some(GroupBy::Day) => totals(&simple(&day), "NULL") + by_model,
        Some(GroupBy::Name) => totals(&simple("name"), "NULL") + by_model,
        Some(GroupBy::Session) => totals(&simple("session_id"), "NULL") + by_model,
        Some(GroupBy::Status) => totals(&simple("status"), "NULL") + by_model,
        Some(GroupBy::Metadata(key)) => {
            params.push(Value::Text(key.clone()));
            // Driven by the (key, value) index: a probe per selected trace would walk
            // every value of the key.
            totals(
                "grp AS MATERIALIZED (SELECT gm.value AS g, sel.* FROM trace_metadata gm \
                 CROSS JOIN sel ON sel.id = gm.trace_id WHERE gm.key = ?)",
                "NULL",
            ) + by_model
        }
        Some(GroupBy::Model) => totals(
            // One row per (trace, model), with that model's tokens and cost only.
            "grp AS NOT MATERIALIZED (SELECT m.model AS g, sel.id, sel.status, sel.steps, \
             sel.total_ms, sel.error_count, sel.failed_steps, m.calls, m.input_tokens, \
             m.output_tokens, m.cost_nano_usd \
             FROM sel CROSS JOIN trace_models m ON m.trace_id = sel.id)",
            "SUM(calls)",
        ),
        Some(_) => return None,
    };
    let sql = format!(
        "WITH sel AS NOT MATERIALIZED ({selection}), {arms}",
        selection = selection.sql
    );
    Some(Statement { sql, params })
}

/// The group key of a `g` column, for `group`.
pub(crate) fn group_key(group: &GroupBy, g: ValueRef<'_>) -> rusqlite::Result<GroupKey> {
    let text = |g: ValueRef<'_>| -> rusqlite::Result<String> { Ok(g.as_str()?.to_owned()) };
    let optional = |g: ValueRef<'_>| -> rusqlite::Result<Option<String>> {
        Ok(g.as_str_or_null()?.map(str::to_owned))
    };
    Ok(match group {
        GroupBy::Day => {
            // The day's first microsecond, or the earliest timestamp when that falls
            // in the day but before it.
            let micros = g
                .as_i64()?
                .saturating_mul(DAY_MICROS)
                .max(Timestamp::MIN.as_micros());
            let day = Timestamp::from_micros(micros).map_err(|e| bad_column(1, e.to_string()))?;
            GroupKey::Day(day.to_datetime().date_naive())
        }
        GroupBy::Name => GroupKey::Name(optional(g)?),
        GroupBy::Session => GroupKey::Session(optional(g)?),
        GroupBy::Status => GroupKey::Status(parse_status(g, 1)?),
        GroupBy::Model => GroupKey::Model(text(g)?),
        GroupBy::Metadata(_) => GroupKey::Metadata(text(g)?),
        // `statement` refuses groupings it does not know, so no rows reach here.
        _ => return Err(bad_column(1, format!("unknown grouping {group}"))),
    })
}

fn parse_status(value: ValueRef<'_>, column: usize) -> rusqlite::Result<Status> {
    value
        .as_str()?
        .parse::<Status>()
        .map_err(|e| bad_column(column, e.to_string()))
}

/// Reads the rows of [`statement`] into totals per group, keyed by `key` of the `g`
/// column; `model_groups` for [`GroupBy::Model`], whose totals rows carry the group's
/// own model usage. `None` if a counter is past what SQLite's integers hold and the
/// caller must recompute.
pub(crate) fn read<K: Ord>(
    mut rows: rusqlite::Rows<'_>,
    model_groups: bool,
    key: impl Fn(ValueRef<'_>) -> rusqlite::Result<K>,
) -> rusqlite::Result<Option<BTreeMap<K, TraceStats>>> {
    let mut groups: BTreeMap<K, TraceStats> = BTreeMap::new();
    let unsigned = |value: Option<i64>| value.unwrap_or(0) as u64;
    while let Some(row) = rows.next()? {
        if row.get::<_, Option<i64>>(11)?.is_some_and(|min| min < 0) {
            return Ok(None);
        }
        let mut usage = ModelUsage::default();
        usage.calls = unsigned(row.get(12)?);
        usage.input_tokens = unsigned(row.get(5)?);
        usage.output_tokens = unsigned(row.get(6)?);
        usage.cost_nano_usd = row.get::<_, Option<i64>>(7)?.unwrap_or(0);
        let group = row.get_ref(1)?;
        let stats = groups.entry(key(group)?).or_default();
        if row.get::<_, i64>(0)? == BY_MODEL {
            add_usage(stats.by_model.entry(row.get(2)?).or_default(), &usage);
            continue;
        }
        let count = unsigned(row.get(3)?);
        let status = parse_status(row.get_ref(2)?, 2)?;
        stats.count = stats.count.saturating_add(count);
        let by_status = stats.by_status.entry(status).or_default();
        *by_status = by_status.saturating_add(count);
        stats.steps = stats.steps.saturating_add(unsigned(row.get(4)?));
        stats.input_tokens = stats.input_tokens.saturating_add(usage.input_tokens);
        stats.output_tokens = stats.output_tokens.saturating_add(usage.output_tokens);
        stats.cost_nano_usd = stats.cost_nano_usd.saturating_add(usage.cost_nano_usd);
        stats.error_count = stats.error_count.saturating_add(unsigned(row.get(8)?));
        stats.total_ms += row.get::<_, f64>(9)?;
        stats.failed_steps = stats.failed_steps.saturating_add(unsigned(row.get(10)?));
        if model_groups {
            let model = group.as_str()?.to_owned();
            add_usage(stats.by_model.entry(model).or_default(), &usage);
        }
    }
    Ok(Some(groups))
}

fn add_usage(total: &mut ModelUsage, usage: &ModelUsage) {
    total.calls = total.calls.saturating_add(usage.calls);
    total.input_tokens = total.input_tokens.saturating_add(usage.input_tokens);
    total.output_tokens = total.output_tokens.saturating_add(usage.output_tokens);
    total.cost_nano_usd = total.cost_nano_usd.saturating_add(usage.cost_nano_usd);
}
