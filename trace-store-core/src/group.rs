//! Grouped stats (rule C14): what each group is, its key, and the order of groups.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{Error, Result, Status, TraceStats, TraceSummary, canonical_json};

/// How [`TraceStore::stats_by`](crate::TraceStore::stats_by) groups traces.
///
/// Parsed from and displayed as `day`, `name`, `session`, `status`, `model` and
/// `meta:KEY`.
///
/// ```
/// use trace_store_core::GroupBy;
///
/// assert_eq!("meta:user_id".parse::<GroupBy>()?, GroupBy::Metadata("user_id".into()));
/// assert_eq!(GroupBy::Day.to_string(), "day");
/// assert!("week".parse::<GroupBy>().is_err());
/// # Ok::<(), trace_store_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GroupBy {
    /// The UTC date of `created_at`; groups newest day first.
    Day,
    /// The trace's name; traces without one form the `None` group.
    Name,
    /// The trace's session; traces without one form the `None` group.
    Session,
    /// The trace's status.
    Status,
    /// Each model with at least one counted step in the trace (see
    /// [`TraceStats::add_for_model`]); a trace with several models is in several groups,
    /// a trace with none in no group.
    Model,
    /// The canonical JSON of the metadata value under this key; traces without the key
    /// are in no group.
    Metadata(String),
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupBy::Day => f.write_str("day"),
            GroupBy::Name => f.write_str("name"),
            GroupBy::Session => f.write_str("session"),
            GroupBy::Status => f.write_str("status"),
            GroupBy::Model => f.write_str("model"),
            GroupBy::Metadata(key) => write!(f, "meta:{key}"),
        }
    }
}

impl FromStr for GroupBy {
    type Err = Error;

    fn from_str(s: &str) -> Result<GroupBy> {
        Ok(match s {
            "day" => GroupBy::Day,
            "name" => GroupBy::Name,
            "session" => GroupBy::Session,
            "status" => GroupBy::Status,
            "model" => GroupBy::Model,
            _ => match s.strip_prefix("meta:") {
                Some(key) if !key.is_empty() => GroupBy::Metadata(key.to_owned()),
                _ => {
                    return Err(Error::invalid(format!(
                        "unknown group {s:?} (expected day, name, session, status, model or meta:KEY)"
                    )));
                }
            },
        })
    }
}

/// The key of one group of [`TraceStore::stats_by`](crate::TraceStore::stats_by).
///
/// Serialised as `{"day": "2026-12-07"}`, `{"name": null}`, `{"metadata": "\"u_1\""}`, ...
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GroupKey {
    /// A UTC date.
    Day(NaiveDate),
    /// A trace name, or none.
    Name(Option<String>),
    /// A session, or none.
    Session(Option<String>),
    /// A status.
    Status(Status),
    /// A model.
    Model(String),
    /// The canonical JSON ([`canonical_json`]) of a metadata value.
    Metadata(String),
}

impl fmt::Display for GroupKey {
    /// The key as a person reads it: `2026-12-07`, `research-agent`, `(none)`, `ok`,
    /// `gpt-4o`, `"u_1"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupKey::Day(day) => write!(f, "{day}"),
            GroupKey::Name(name) | GroupKey::Session(name) => {
                f.write_str(name.as_deref().unwrap_or("(none)"))
            }
            GroupKey::Status(status) => write!(f, "{status}"),
            GroupKey::Model(key) | GroupKey::Metadata(key) => f.write_str(key),
        }
    }
}

impl GroupBy {
    /// Rejects a group that names nothing (an empty metadata key).
    pub fn validate(&self) -> Result<()> {
        match self {
            GroupBy::Metadata(key) if key.is_empty() => {
                Err(Error::invalid("group by metadata names no key"))
            }
            _ => Ok(()),
        }
    }

    /// Groups `summaries` (the traces `query(filter)` returned) and totals each group:
    /// the one definition of grouped stats, in the order
    /// [`TraceStore::stats_by`](crate::TraceStore::stats_by) returns (`Day` newest
    /// first; every other grouping by key ascending, `None` first).
    pub fn stats<'a>(
        &self,
        summaries: impl IntoIterator<Item = &'a TraceSummary>,
    ) -> Vec<(GroupKey, TraceStats)> {
        let mut groups: BTreeMap<GroupKey, TraceStats> = BTreeMap::new();
        for summary in summaries {
            match self {
                GroupBy::Model => {
                    for model in summary.models.keys() {
                        groups
                            .entry(GroupKey::Model(model.clone()))
                            .or_default()
                            .add_for_model(summary, model);
                    }
                }
                _ => {
                    if let Some(key) = self.key_of(summary) {
                        groups.entry(key).or_default().add(summary);
                    }
                }
            }
        }
        let mut out: Vec<_> = groups.into_iter().collect();
        if *self == GroupBy::Day {
            out.reverse();
        }
        out
    }

    /// The group of a summary, for every grouping but [`GroupBy::Model`] (which can
    /// put a trace in several groups); `None` when the trace is in no group.
    pub fn key_of(&self, summary: &TraceSummary) -> Option<GroupKey> {
        Some(match self {
            GroupBy::Day => GroupKey::Day(summary.created_at.to_datetime().date_naive()),
            GroupBy::Name => GroupKey::Name(summary.name.clone()),
            GroupBy::Session => GroupKey::Session(summary.session_id.clone()),
            GroupBy::Status => GroupKey::Status(summary.status),
            GroupBy::Model => return None,
            GroupBy::Metadata(key) => {
                GroupKey::Metadata(canonical_json(summary.metadata.get(key)?))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Step, Timestamp, Trace};

    fn summary(id: &str, day: &str, model: &str, user: Option<i64>) -> TraceSummary {
        let mut trace = Trace::new(id)
            .with_created_at(
                format!("{day}T23:59:59.999999Z")
                    .parse::<Timestamp>()
                    .unwrap(),
            )
            .with_step(Step::llm_call(model).with_usage(10, 1))
            .with_step(Step::llm_call("shared").with_usage(5, 5));
        if let Some(user) = user {
            trace = trace.with_metadata("user", user);
        }
        TraceSummary::from(&trace)
    }

    #[test]
    fn days_come_newest_first_and_use_utc_dates() {
        let all = [
            summary("a", "2026-01-01", "m1", Some(1)),
            summary("b", "2026-01-03", "m1", None),
            summary("c", "2026-01-01", "m2", Some(1)),
        ];
        let groups = GroupBy::Day.stats(&all);
        let keys: Vec<_> = groups
            .iter()
            .map(|(k, s)| (k.to_string(), s.count))
            .collect();
        assert_eq!(keys, [("2026-01-03".into(), 1), ("2026-01-01".into(), 2)]);
    }

    #[test]
    fn models_count_only_their_own_usage_and_metadata_skips_missing_keys() {
        let all = [
            summary("a", "2026-01-01", "m1", Some(1)),
            summary("b", "2026-01-03", "m1", None),
            summary("c", "2026-01-01", "m2", Some(1)),
        ];
        let groups = GroupBy::Model.stats(&all);
        let m1 = &groups
            .iter()
            .find(|(k, _)| k.to_string() == "m1")
            .unwrap()
            .1;
        assert_eq!((m1.count, m1.input_tokens, m1.output_tokens), (2, 20, 2));
        let shared = &groups
            .iter()
            .find(|(k, _)| k.to_string() == "shared")
            .unwrap()
            .1;
        assert_eq!((shared.count, shared.input_tokens), (3, 15));
        let by_user = GroupBy::Metadata("user".into()).stats(&all);
        assert_eq!(by_user.len(), 1);
        assert_eq!(
            (by_user[0].0.to_string(), by_user[0].1.count),
            ("1".into(), 2)
        );
    }
}
