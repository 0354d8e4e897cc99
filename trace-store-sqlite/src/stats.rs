//! `stats` and `stats_by` as one SQL statement each, and their rows back into
//! `TraceStats`.

use std::collections::{BTreeMap, HashMap};

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

/// One row per selected trace and one per (selected trace, model) of what
/// `query(filter)` returns, with each row's group key `g` (NULL without `group`), as
/// one statement (one snapshot) of rows `(kind, g, label, steps, input, output, cost,
/// errors, total_ms, failed_steps, calls)`: kind [`TOTALS`] per trace, labelled with
/// its status, kind [`BY_MODEL`] per (trace, model), labelled with the model; [`read`]
/// adds them up. `None` for a grouping this crate does not know.
///
/// No `GROUP BY`: SQLite groups by sorting every row into a temporary B-tree, which
/// took 5 times as long as reading the rows (100,000 traces, 200,000 model rows),
/// while [`read`] adds each row into a map of a few groups. Adding in Rust also gives
/// core's saturating `u64` arithmetic on counters stored bit for bit, where SQL's
/// `SUM` would stop at `i64::MAX`.
///
/// Two passes over the selection, never copied into a temporary table: a paged
/// selection walks the same index in both and so selects the same traces. For
/// [`GroupBy::Model`] one pass suffices: each row of the join is one trace and one of
/// its models, whose usage is the group's `by_model`.
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
             SELECT {TOTALS}, g, status, steps, input_tokens, output_tokens, cost_nano_usd,
                    error_count, total_ms, failed_steps, {calls}
             FROM grp"
        )
    };
    let by_model = "
         UNION ALL
         SELECT 1, g, m.model, NULL, m.input_tokens, m.output_tokens, m.cost_nano_usd,
                NULL, NULL, NULL, m.calls
         FROM grp CROSS JOIN trace_models m ON m.trace_id = grp.id";
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
            "calls",
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

/// Adds the rows of [`statement`] into totals per group, keyed by `key` of the `g`
/// column; `model_groups` for [`GroupBy::Model`], whose totals rows carry the group's
/// own model usage. Counters add as core adds them (`u64`, saturating).
///
/// Rows are added per raw `g` value first and turned into keys once per group: a
/// key per row (a date, a `String`) cost as much as reading the row.
pub(crate) fn read<K: Ord>(
    mut rows: rusqlite::Rows<'_>,
    model_groups: bool,
    key: impl Fn(ValueRef<'_>) -> rusqlite::Result<K>,
) -> rusqlite::Result<BTreeMap<K, TraceStats>> {
    let mut raw = RawGroups::default();
    let unsigned = |value: Option<i64>| value.unwrap_or(0) as u64;
    while let Some(row) = rows.next()? {
        let mut usage = ModelUsage::default();
        usage.calls = unsigned(row.get(10)?);
        usage.input_tokens = unsigned(row.get(4)?);
        usage.output_tokens = unsigned(row.get(5)?);
        usage.cost_nano_usd = row.get::<_, Option<i64>>(6)?.unwrap_or(0);
        let group = row.get_ref(1)?;
        let stats = raw.get(group);
        let label = row.get_ref(2)?;
        if row.get::<_, i64>(0)? == BY_MODEL {
            add_usage(model_entry(stats, label.as_str()?), &usage);
            continue;
        }
        let status = parse_status(label, 2)?;
        stats.count = stats.count.saturating_add(1);
        let by_status = stats.by_status.entry(status).or_default();
        *by_status = by_status.saturating_add(1);
        stats.steps = stats.steps.saturating_add(unsigned(row.get(3)?));
        stats.input_tokens = stats.input_tokens.saturating_add(usage.input_tokens);
        stats.output_tokens = stats.output_tokens.saturating_add(usage.output_tokens);
        stats.cost_nano_usd = stats.cost_nano_usd.saturating_add(usage.cost_nano_usd);
        stats.error_count = stats.error_count.saturating_add(unsigned(row.get(7)?));
        stats.total_ms += row.get::<_, f64>(8)?;
        stats.failed_steps = stats.failed_steps.saturating_add(unsigned(row.get(9)?));
        if model_groups {
            add_usage(model_entry(stats, group.as_str()?), &usage);
        }
    }
    raw.into_keys(key)
}

/// `stats.by_model[model]`, allocating the name only for a model not seen before.
fn model_entry<'a>(stats: &'a mut TraceStats, model: &str) -> &'a mut ModelUsage {
    if !stats.by_model.contains_key(model) {
        stats
            .by_model
            .insert(model.to_owned(), ModelUsage::default());
    }
    stats.by_model.get_mut(model).expect("inserted above")
}

/// Totals per `g` value as SQLite gave it, before the values become keys.
#[derive(Default)]
struct RawGroups {
    null: Option<TraceStats>,
    integers: HashMap<i64, TraceStats>,
    /// By the bits of the value; no grouping produces reals, but they still group.
    reals: HashMap<u64, TraceStats>,
    /// Text (and blobs, which no grouping produces), looked up without a copy.
    texts: HashMap<Box<[u8]>, TraceStats>,
}

impl RawGroups {
    fn get(&mut self, value: ValueRef<'_>) -> &mut TraceStats {
        match value {
            ValueRef::Null => self.null.get_or_insert_default(),
            ValueRef::Integer(i) => self.integers.entry(i).or_default(),
            ValueRef::Real(f) => self.reals.entry(f.to_bits()).or_default(),
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
                if !self.texts.contains_key(bytes) {
                    self.texts.insert(bytes.into(), TraceStats::default());
                }
                self.texts.get_mut(bytes).expect("inserted above")
            }
        }
    }

    fn into_keys<K: Ord>(
        self,
        key: impl Fn(ValueRef<'_>) -> rusqlite::Result<K>,
    ) -> rusqlite::Result<BTreeMap<K, TraceStats>> {
        let mut groups = BTreeMap::new();
        if let Some(stats) = self.null {
            groups.insert(key(ValueRef::Null)?, stats);
        }
        for (i, stats) in self.integers {
            groups.insert(key(ValueRef::Integer(i))?, stats);
        }
        for (bits, stats) in self.reals {
            groups.insert(key(ValueRef::Real(f64::from_bits(bits)))?, stats);
        }
        for (bytes, stats) in self.texts {
            groups.insert(key(ValueRef::Text(&bytes))?, stats);
        }
        Ok(groups)
    }
}

fn add_usage(total: &mut ModelUsage, usage: &ModelUsage) {
    total.calls = total.calls.saturating_add(usage.calls);
    total.input_tokens = total.input_tokens.saturating_add(usage.input_tokens);
    total.output_tokens = total.output_tokens.saturating_add(usage.output_tokens);
    total.cost_nano_usd = total.cost_nano_usd.saturating_add(usage.cost_nano_usd);
}
