//! `stats` and `stats_by` in SQL: sums over the selected rows, grouped in the engine;
//! keys are ordered by core's [`GroupKey`] order, not the database's collation.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use tokio_postgres::Row;
use trace_store_core::{GroupBy, GroupKey, ModelUsage, Result, Status, TraceFilter, TraceStats};

use crate::Inner;
use crate::error::{Failure, backend};
use crate::pool::Session;
use crate::sql::{ORDER, Selection, refs, text_key};

const DAY_MICROS: i64 = 86_400_000_000;

/// Totals over what `query(filter)` returns.
pub(crate) async fn totals(
    inner: &Inner,
    db: &Session,
    filter: &TraceFilter,
) -> Result<TraceStats> {
    let selection = Selection::new(&inner.tables, filter);
    if !selection.text_in_sql {
        return Ok(inner.summaries(db, filter).await?.iter().collect());
    }
    let groups = run(inner, db, filter, selection, Grouping::All).await?;
    Ok(groups.into_values().next().unwrap_or_default())
}

/// Per-group totals, in core's order.
pub(crate) async fn grouped(
    inner: &Inner,
    db: &Session,
    filter: &TraceFilter,
    group: &GroupBy,
) -> Result<Vec<(GroupKey, TraceStats)>> {
    let selection = Selection::new(&inner.tables, filter);
    if !selection.text_in_sql {
        return Ok(group.stats(&inner.summaries(db, filter).await?));
    }
    let grouping = match group {
        GroupBy::Day => Grouping::Day,
        GroupBy::Name => Grouping::Column("name"),
        GroupBy::Session => Grouping::Column("session_id"),
        GroupBy::Status => Grouping::Column("status"),
        GroupBy::Model => Grouping::Model,
        GroupBy::Metadata(key) => Grouping::Metadata(text_key(key)),
        // A grouping added to core later: core computes it.
        _ => return Ok(group.stats(&inner.summaries(db, filter).await?)),
    };
    let groups = run(inner, db, filter, selection, grouping).await?;
    let mut keyed = BTreeMap::new();
    for (key, stats) in groups {
        keyed.insert(group_key(group, key)?, stats);
    }
    let mut out: Vec<_> = keyed.into_iter().collect();
    if *group == GroupBy::Day {
        out.reverse();
    }
    Ok(out)
}

/// The per-model usage of each selected trace as rows, under the alias `{m}`.
const MODELS_OF_SEL: &str = " CROSS JOIN LATERAL unnest(sel.model_names, sel.model_calls,
     sel.model_input_tokens, sel.model_output_tokens, sel.model_cost_nano_usd)
     AS {m}(model, calls, input_tokens, output_tokens, cost_nano_usd)";

enum Grouping {
    All,
    Day,
    Column(&'static str),
    Model,
    Metadata(String),
}

/// The raw key of a group as SQL returns it (text, or a day number).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum RawKey {
    None,
    Text(String),
    Day(i64),
}

async fn run(
    inner: &Inner,
    client: &Session,
    filter: &TraceFilter,
    mut selection: Selection,
    grouping: Grouping,
) -> Result<BTreeMap<RawKey, TraceStats>> {
    let paging = selection.paging(filter);
    let t = &inner.tables;
    let sel = format!(
        "WITH sel AS MATERIALIZED (SELECT t.* FROM {} t{}{ORDER}{paging}) ",
        t.traces, selection.condition
    );
    let (key, join) = match &grouping {
        Grouping::All => ("NULL::text".to_owned(), String::new()),
        Grouping::Day => (
            format!("floor(sel.created_at::numeric / {DAY_MICROS})::bigint"),
            String::new(),
        ),
        Grouping::Column(column) => (format!("sel.{column}"), String::new()),
        Grouping::Model => ("gm.model".to_owned(), MODELS_OF_SEL.replace("{m}", "gm")),
        Grouping::Metadata(meta_key) => {
            let p = selection.params.len() + 1;
            selection.params.push(Box::new(meta_key.clone()));
            // The stored pair is the JSON key followed by the canonical value (see
            // `meta_pair`): the value is what follows the key.
            (
                "md.value".to_owned(),
                format!(
                    " JOIN LATERAL (SELECT substr(e, length(${p}) + 1) AS value
                         FROM unnest(sel.meta) AS e WHERE starts_with(e, ${p})) md ON true"
                ),
            )
        }
    };
    let (input, output, cost) = if matches!(grouping, Grouping::Model) {
        ("gm.input_tokens", "gm.output_tokens", "gm.cost_nano_usd")
    } else {
        ("sel.input_tokens", "sel.output_tokens", "sel.cost_nano_usd")
    };
    let totals = format!(
        "{sel}SELECT {key} AS k, count(*), sum(sel.steps)::text, sum({input})::text,
             sum({output})::text, sum({cost})::text, sum(sel.total_ms),
             sum(sel.error_count)::text, sum(sel.failed_steps)::text
         FROM sel{join} GROUP BY 1"
    );
    let statuses =
        format!("{sel}SELECT {key} AS k, sel.status, count(*) FROM sel{join} GROUP BY 1, 2");
    let models = if matches!(grouping, Grouping::Model) {
        format!(
            "{sel}SELECT gm.model AS k, gm.model, sum(gm.calls)::text, sum(gm.input_tokens)::text,
                 sum(gm.output_tokens)::text, sum(gm.cost_nano_usd)::text
             FROM sel{join} GROUP BY 1, 2"
        )
    } else {
        format!(
            "{sel}SELECT {key} AS k, m.model, sum(m.calls)::text, sum(m.input_tokens)::text,
                 sum(m.output_tokens)::text, sum(m.cost_nano_usd)::text
             FROM sel{join}{} GROUP BY 1, 2",
            MODELS_OF_SEL.replace("{m}", "m")
        )
    };
    let params = refs(&selection.params);
    let failed = |e| backend("computing stats", e);
    let mut groups: BTreeMap<RawKey, TraceStats> = BTreeMap::new();
    for row in client.query(&totals, &params).await.map_err(failed)? {
        let stats = groups.entry(raw_key(&row)?).or_default();
        stats.count = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
        stats.steps = unsigned(&row, 2);
        stats.input_tokens = unsigned(&row, 3);
        stats.output_tokens = unsigned(&row, 4);
        stats.cost_nano_usd = signed(&row, 5);
        stats.total_ms = row.get::<_, Option<f64>>(6).unwrap_or(0.0);
        stats.error_count = unsigned(&row, 7);
        stats.failed_steps = unsigned(&row, 8);
    }
    for row in client.query(&statuses, &params).await.map_err(failed)? {
        let status: Status = row.get::<_, &str>(1).parse()?;
        let count = u64::try_from(row.get::<_, i64>(2)).unwrap_or(0);
        groups
            .entry(raw_key(&row)?)
            .or_default()
            .by_status
            .insert(status, count);
    }
    for row in client.query(&models, &params).await.map_err(failed)? {
        let model = decode_text(row.get(1))?;
        let mut usage = ModelUsage::default();
        usage.calls = unsigned(&row, 2);
        usage.input_tokens = unsigned(&row, 3);
        usage.output_tokens = unsigned(&row, 4);
        usage.cost_nano_usd = signed(&row, 5);
        groups
            .entry(raw_key(&row)?)
            .or_default()
            .by_model
            .insert(model, usage);
    }
    Ok(groups)
}

fn raw_key(row: &Row) -> Result<RawKey> {
    if let Ok(day) = row.try_get::<_, Option<i64>>(0) {
        return Ok(day.map_or(RawKey::None, RawKey::Day));
    }
    let text: Option<String> = row
        .try_get(0)
        .map_err(|e| Failure::Schema(format!("an unexpected group key column: {e}")))?;
    Ok(text.map_or(RawKey::None, RawKey::Text))
}

fn group_key(group: &GroupBy, raw: RawKey) -> Result<GroupKey> {
    let text = |raw: RawKey| match raw {
        RawKey::Text(text) => Ok(Some(text)),
        RawKey::None => Ok(None),
        RawKey::Day(_) => Err(Failure::Schema("a day where text was expected".into())),
    };
    Ok(match group {
        GroupBy::Day => match raw {
            RawKey::Day(day) => GroupKey::Day(day_of(day)?),
            _ => return Err(Failure::Schema("a day group without a day".into()).into()),
        },
        GroupBy::Name => GroupKey::Name(text(raw)?.map(|t| decode_text(&t)).transpose()?),
        GroupBy::Session => GroupKey::Session(text(raw)?.map(|t| decode_text(&t)).transpose()?),
        GroupBy::Status => {
            let status = text(raw)?.unwrap_or_default();
            GroupKey::Status(status.parse()?)
        }
        GroupBy::Model => GroupKey::Model(decode_text(&text(raw)?.unwrap_or_default())?),
        _ => GroupKey::Metadata(text(raw)?.unwrap_or_default()),
    })
}

fn day_of(day: i64) -> Result<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(day)))
        .ok_or_else(|| Failure::Corrupt(format!("day {day} is out of range")).into())
}

/// A JSON-encoded string column back to its string.
fn decode_text(text: &str) -> Result<String> {
    serde_json::from_str(text)
        .map_err(|e| Failure::Corrupt(format!("a stored key {text:?} does not decode: {e}")).into())
}

/// A numeric sum (as text) clamped into u64, as core's saturating sums are.
fn unsigned(row: &Row, column: usize) -> u64 {
    let text: Option<&str> = row.get(column);
    text.and_then(|t| t.parse::<i128>().ok())
        .map_or(0, |n| u64::try_from(n.max(0)).unwrap_or(u64::MAX))
}

fn signed(row: &Row, column: usize) -> i64 {
    let text: Option<&str> = row.get(column);
    text.and_then(|t| t.parse::<i128>().ok()).map_or(0, |n| {
        i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
    })
}
