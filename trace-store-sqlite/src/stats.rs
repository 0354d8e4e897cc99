//! `stats` and `stats_by`: the selection of `query(filter)` read in SQL, one snapshot,
//! and added up here as core adds (saturating `u64`).
//!
//! One pass: a row per selected trace (its group key, counters and packed per-model
//! usage), added into a few groups here. No `GROUP BY`: SQLite groups by sorting
//! every row into a temporary B-tree, which took several times as long as reading the
//! rows (100,000 traces).

use std::collections::{BTreeMap, HashMap};

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params_from_iter};
use trace_store_core::{GroupBy, GroupKey, ModelUsage, Status, Timestamp, TraceFilter, TraceStats};

use crate::error::bad_column;
use crate::sql::{self, Statement};

/// Microseconds in a UTC day.
const DAY_MICROS: i64 = 86_400_000_000;

/// The counters of each selected trace, after its group column `g`; the last is the
/// packed per-model usage.
const COUNTERS: &str = "t.status, t.steps, t.total_ms, t.error_count, t.failed_steps, \
     t.input_tokens, t.output_tokens, t.cost_nano_usd, t.models";

/// Column of the packed models in a first-pass row.
const MODELS: usize = 9;

/// How the first pass keys a trace's group.
#[derive(Clone, Copy, PartialEq)]
enum Keying {
    /// One group (`stats`).
    All,
    /// By the `g` column as SQLite gives it.
    Column,
    /// By UTC day: `g` is `created_at`, turned into a day number here (integer floor
    /// division, so times before 1970 fall on the right day; SQLite's `date()` rounds
    /// to milliseconds and would move 23:59:59.9995 to the next day).
    Day,
    /// By model: the trace's counters go to the group of each of its models.
    Model,
}

/// The statement: rows `(g, COUNTERS)` of what `query(filter)`
/// returns; `None` for a grouping this crate does not know.
fn first_pass(
    filter: &TraceFilter,
    group: Option<&GroupBy>,
    text_index: Option<&str>,
) -> Option<(Statement, Keying)> {
    let (g, keying) = match group {
        None => ("NULL", Keying::All),
        Some(GroupBy::Day) => ("t.created_at", Keying::Day),
        Some(GroupBy::Name) => ("t.name", Keying::Column),
        Some(GroupBy::Session) => ("t.session_id", Keying::Column),
        Some(GroupBy::Status) => ("t.status", Keying::Column),
        Some(GroupBy::Model) => ("NULL", Keying::Model),
        Some(GroupBy::Metadata(key)) => {
            let selection = sql::select(
                filter,
                &format!("t.id, {COUNTERS}"),
                sql::is_paged(filter),
                text_index,
            );
            let mut params = selection.params;
            params.push(Value::Text(key.clone()));
            // Driven by the (key, value) index: a probe per selected trace would walk
            // every value of the key.
            let sql = format!(
                "WITH sel AS MATERIALIZED ({}) \
                 SELECT gm.value, {} FROM trace_metadata gm \
                 CROSS JOIN sel ON sel.id = gm.trace_id WHERE gm.key = ?",
                selection.sql,
                COUNTERS.replace("t.", "sel.")
            );
            return Some((Statement { sql, params }, Keying::Column));
        }
        Some(_) => return None,
    };
    let columns = format!("{g}, {COUNTERS}");
    Some((
        sql::select(filter, &columns, sql::is_paged(filter), text_index),
        keying,
    ))
}

/// Totals per group of what `query(filter)` returns, keyed by `key` of each group's
/// `g` value (day numbers for [`GroupBy::Day`], the model for [`GroupBy::Model`]);
/// `None` for a grouping this crate does not know.
pub(crate) fn compute<K: Ord>(
    conn: &Connection,
    filter: &TraceFilter,
    group: Option<&GroupBy>,
    key: impl Fn(ValueRef<'_>) -> rusqlite::Result<K>,
) -> rusqlite::Result<Option<BTreeMap<K, TraceStats>>> {
    // The text plan and the rows from one snapshot.
    let snapshot = conn.unchecked_transaction()?;
    let text_index = sql::plan_text(&snapshot, filter)?;
    let Some((statement, keying)) = first_pass(filter, group, text_index.as_deref()) else {
        return Ok(None);
    };
    let mut groups = Groups::default();
    let mut stmt = snapshot.prepare_cached(&statement.sql)?;
    let mut rows = stmt.query(params_from_iter(&statement.params))?;
    let mut last_day: Option<(i64, usize)> = None;
    while let Some(row) = rows.next()? {
        let slot = match keying {
            Keying::All => groups.slot(ValueRef::Null),
            Keying::Column => groups.slot(row.get_ref(0)?),
            Keying::Day => {
                let day = row.get::<_, i64>(0)?.div_euclid(DAY_MICROS);
                // Rows of a day tend to come together: skip the lookup.
                match last_day {
                    Some((d, slot)) if d == day => slot,
                    _ => {
                        let slot = groups.slot(ValueRef::Integer(day));
                        last_day = Some((day, slot));
                        slot
                    }
                }
            }
            Keying::Model => {
                let mut trace = TraceStats::default();
                add_counters(&mut trace, row)?;
                add_models(row, |model, usage| {
                    let slot = groups.slot(ValueRef::Text(model.as_bytes()));
                    let stats = &mut groups.stats[slot];
                    add_model_group(stats, &trace, usage);
                    model_entry(stats, model).add(usage);
                })?;
                continue;
            }
        };
        let stats = &mut groups.stats[slot];
        add_counters(stats, row)?;
        add_models(row, |model, usage| model_entry(stats, model).add(usage))?;
    }
    drop(rows);
    groups.into_keys(key).map(Some)
}

/// Calls `add(model, usage)` for each model of the row's packed usage.
fn add_models(row: &rusqlite::Row<'_>, add: impl FnMut(&str, &ModelUsage)) -> rusqlite::Result<()> {
    let mut add = add;
    match row.get_ref(MODELS)?.as_blob_or_null()? {
        Some(bytes) => crate::packed::decode_models(bytes, |model, usage| add(model, &usage))
            .map_err(|e| bad_column(MODELS, e)),
        None => Ok(()),
    }
}

/// Adds the counters of one row (columns 1..[`MODELS`] of [`COUNTERS`]).
fn add_counters(stats: &mut TraceStats, row: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
    let unsigned = |i: usize| -> rusqlite::Result<u64> { Ok(row.get::<_, i64>(i)? as u64) };
    let status = parse_status(row.get_ref(1)?, 1)?;
    stats.count = stats.count.saturating_add(1);
    let by_status = stats.by_status.entry(status).or_default();
    *by_status = by_status.saturating_add(1);
    stats.steps = stats.steps.saturating_add(unsigned(2)?);
    stats.total_ms += row.get::<_, f64>(3)?;
    stats.error_count = stats.error_count.saturating_add(unsigned(4)?);
    stats.failed_steps = stats.failed_steps.saturating_add(unsigned(5)?);
    stats.input_tokens = stats.input_tokens.saturating_add(unsigned(6)?);
    stats.output_tokens = stats.output_tokens.saturating_add(unsigned(7)?);
    stats.cost_nano_usd = stats.cost_nano_usd.saturating_add(row.get(8)?);
    Ok(())
}

/// Adds one trace (its `counters`) to the group of one of its models: the trace's
/// count, steps, duration, errors and status, with that model's tokens and cost only
/// (core's `TraceStats::add_for_model`).
fn add_model_group(stats: &mut TraceStats, counters: &TraceStats, usage: &ModelUsage) {
    stats.count = stats.count.saturating_add(1);
    for (status, n) in &counters.by_status {
        let by_status = stats.by_status.entry(*status).or_default();
        *by_status = by_status.saturating_add(*n);
    }
    stats.steps = stats.steps.saturating_add(counters.steps);
    stats.total_ms += counters.total_ms;
    stats.error_count = stats.error_count.saturating_add(counters.error_count);
    stats.failed_steps = stats.failed_steps.saturating_add(counters.failed_steps);
    stats.input_tokens = stats.input_tokens.saturating_add(usage.input_tokens);
    stats.output_tokens = stats.output_tokens.saturating_add(usage.output_tokens);
    stats.cost_nano_usd = stats.cost_nano_usd.saturating_add(usage.cost_nano_usd);
}

/// The group key of a `g` value, for `group`.
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
        // `first_pass` refuses groupings it does not know, so no rows reach here.
        _ => return Err(bad_column(1, format!("unknown grouping {group}"))),
    })
}

fn parse_status(value: ValueRef<'_>, column: usize) -> rusqlite::Result<Status> {
    value
        .as_str()?
        .parse::<Status>()
        .map_err(|e| bad_column(column, e.to_string()))
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

/// Totals per `g` value as SQLite gave it, before the values become keys: a key per
/// row (a date, a `String`) cost as much as reading the row.
#[derive(Default)]
struct Groups {
    stats: Vec<TraceStats>,
    null: Option<usize>,
    integers: HashMap<i64, usize>,
    /// By the bits of the value; no grouping produces reals, but they still group.
    reals: HashMap<u64, usize>,
    /// Text (and blobs, which no grouping produces), looked up without a copy.
    texts: HashMap<Box<[u8]>, usize>,
}

impl Groups {
    /// The index in `stats` of the group of `value`, made if new.
    fn slot(&mut self, value: ValueRef<'_>) -> usize {
        let next = self.stats.len();
        let slot = match value {
            ValueRef::Null => *self.null.get_or_insert(next),
            ValueRef::Integer(i) => *self.integers.entry(i).or_insert(next),
            ValueRef::Real(f) => *self.reals.entry(f.to_bits()).or_insert(next),
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => match self.texts.get(bytes) {
                Some(&slot) => slot,
                None => *self.texts.entry(bytes.into()).or_insert(next),
            },
        };
        if slot == next {
            self.stats.push(TraceStats::default());
        }
        slot
    }

    fn into_keys<K: Ord>(
        self,
        key: impl Fn(ValueRef<'_>) -> rusqlite::Result<K>,
    ) -> rusqlite::Result<BTreeMap<K, TraceStats>> {
        let mut values: Vec<(usize, ValueRef<'_>)> = Vec::with_capacity(self.stats.len());
        values.extend(self.null.map(|slot| (slot, ValueRef::Null)));
        values.extend(
            self.integers
                .iter()
                .map(|(&i, &s)| (s, ValueRef::Integer(i))),
        );
        values.extend(
            self.reals
                .iter()
                .map(|(&bits, &s)| (s, ValueRef::Real(f64::from_bits(bits)))),
        );
        values.extend(self.texts.iter().map(|(b, &s)| (s, ValueRef::Text(b))));
        let mut stats: Vec<Option<TraceStats>> = self.stats.into_iter().map(Some).collect();
        let mut groups = BTreeMap::new();
        for (slot, value) in values {
            if let Some(totals) = stats[slot].take() {
                groups.insert(key(value)?, totals);
            }
        }
        Ok(groups)
    }
}
