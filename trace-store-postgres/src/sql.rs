//! A [`TraceFilter`] as SQL: one place that turns every criterion into a condition, so
//! query, count, stats, grouped stats and bulk delete select exactly the same rows.

use tokio_postgres::types::ToSql;
use trace_store_core::TraceFilter;

use crate::keys::search_keys;
use crate::write::meta_pair;

/// A bound parameter that can travel to the runtime thread.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// The store's tables, qualified by its schema.
#[derive(Clone, Debug)]
pub(crate) struct Tables {
    pub(crate) schema: String,
    pub(crate) traces: String,
    /// Layout 1's metadata table, which the migration to layout 2 drops.
    pub(crate) metadata: String,
    pub(crate) scores: String,
    /// Layout 1's per-model table, which the migration to layout 2 drops.
    pub(crate) models: String,
    pub(crate) version: String,
    /// Window keys of each indexed trace's text.
    pub(crate) text_keys: String,
    /// Traces saved since their keys were last computed.
    pub(crate) text_pending: String,
}

impl Tables {
    pub(crate) fn new(schema: &str) -> Tables {
        let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
        Tables {
            traces: format!("{quoted}.traces"),
            metadata: format!("{quoted}.metadata"),
            scores: format!("{quoted}.scores"),
            models: format!("{quoted}.models"),
            version: format!("{quoted}.schema_version"),
            text_keys: format!("{quoted}.text_keys"),
            text_pending: format!("{quoted}.text_pending"),
            schema: quoted,
        }
    }
}

/// Text columns that may hold any string (NUL included) store it JSON-encoded, which
/// PostgreSQL's TEXT can always hold and which compares equal exactly when the strings
/// are equal.
pub(crate) fn text_key(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// PostgreSQL TEXT cannot hold NUL. The searchable text keeps its length and every
/// other character; a query that holds NUL or the replacement character is answered
/// by reading bodies instead (see `Selection::text_in_sql`).
pub(crate) fn storable_text(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// The rows a filter selects, in list order, as SQL over `traces t`.
pub(crate) struct Selection {
    /// `WHERE ...` (possibly empty).
    pub(crate) condition: String,
    pub(crate) params: Vec<Param>,
    /// False when the text query cannot run in SQL; the caller filters by text itself,
    /// before any paging.
    pub(crate) text_in_sql: bool,
}

impl Selection {
    pub(crate) fn new(tables: &Tables, filter: &TraceFilter) -> Selection {
        let mut s = Selection {
            condition: String::new(),
            params: Vec::new(),
            text_in_sql: true,
        };
        if let Some(min) = filter.min_steps {
            let p = s.bind(saturating_i64(min));
            s.and(format!("t.steps >= {p}"));
        }
        if let Some(max) = filter.max_steps {
            let p = s.bind(saturating_i64(max));
            s.and(format!("t.steps <= {p}"));
        }
        if let Some(since) = filter.since {
            let p = s.bind(since.as_micros());
            s.and(format!("t.created_at >= {p}"));
        }
        if let Some(until) = filter.until {
            let p = s.bind(until.as_micros());
            s.and(format!("t.created_at <= {p}"));
        }
        if let Some(status) = filter.status {
            // A literal (one of core's fixed names), not a parameter: the status index
            // is partial, and only a literal proves a query may use it.
            s.and(format!("t.status = '{}'", status.as_str()));
        }
        for (column, value) in [
            ("name", &filter.name),
            ("session_id", &filter.session_id),
            ("parent_run_id", &filter.parent_run_id),
        ] {
            if let Some(value) = value {
                let p = s.bind(text_key(value));
                s.and(format!("t.{column} = {p}"));
            }
        }
        if let Some(after) = &filter.after {
            let at = s.bind(after.created_at.as_micros());
            let id = s.bind(after.run_id.clone());
            s.and(format!("(t.created_at, t.run_id) < ({at}, {id})"));
        }
        if !filter.metadata_match.is_empty() {
            let pairs: Vec<String> = filter
                .metadata_match
                .iter()
                .map(|(key, value)| meta_pair(key, value))
                .collect();
            let p = s.bind(pairs);
            s.and(format!("t.meta @> {p}::text[]"));
        }
        if let Some(range) = &filter.score {
            let name = s.bind(text_key(&range.name));
            let mut condition = format!("sc.run_id = t.run_id AND sc.name = {name}");
            if let Some(min) = range.min {
                let p = s.bind(min);
                condition.push_str(&format!(" AND sc.value >= {p}"));
            }
            if let Some(max) = range.max {
                let p = s.bind(max);
                condition.push_str(&format!(" AND sc.value <= {p}"));
            }
            s.and(format!(
                "EXISTS (SELECT 1 FROM {} sc WHERE {condition})",
                tables.scores
            ));
        }
        if let Some(text) = &filter.text {
            let query = text.to_lowercase();
            if query.contains(['\0', '\u{FFFD}']) {
                s.text_in_sql = false;
            } else {
                // The stored text is core's search text, already lower-cased, so a
                // plain LIKE is core's `contains`; the window keys narrow the rows it
                // reads to those holding every three-character window of the query.
                // Traces whose keys are not computed yet are all candidates.
                let keys = search_keys(&query);
                if !keys.is_empty() {
                    let p = s.bind(keys);
                    s.and(format!(
                        "t.run_id IN (SELECT k.run_id FROM {} k WHERE k.keys @> {p}::integer[]
                             UNION ALL SELECT q.run_id FROM {} q)",
                        tables.text_keys, tables.text_pending
                    ));
                }
                let p = s.bind(format!("%{}%", escape_like(&query)));
                s.and(format!("t.search_text LIKE {p} ESCAPE '\\'"));
            }
        }
        s
    }

    /// `LIMIT`/`OFFSET` of the filter, when the whole filter runs in SQL.
    pub(crate) fn paging(&mut self, filter: &TraceFilter) -> String {
        let mut sql = String::new();
        if let Some(limit) = filter.limit {
            let p = self.bind(saturating_i64(limit));
            sql.push_str(&format!(" LIMIT {p}"));
        }
        if filter.offset > 0 {
            let p = self.bind(saturating_i64(filter.offset));
            sql.push_str(&format!(" OFFSET {p}"));
        }
        sql
    }

    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    fn and(&mut self, condition: String) {
        self.condition.push_str(if self.condition.is_empty() {
            " WHERE "
        } else {
            " AND "
        });
        self.condition.push_str(&condition);
    }
}

pub(crate) const ORDER: &str = " ORDER BY t.created_at DESC, t.run_id DESC";

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(crate) fn saturating_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_metacharacters_are_literal() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
        assert_eq!(text_key("a\0b"), "\"a\\u0000b\"");
        assert_eq!(storable_text("a\0b"), "a\u{FFFD}b");
    }
}
