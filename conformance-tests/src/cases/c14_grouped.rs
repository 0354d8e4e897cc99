//! C14: grouped stats are, per group, exactly the stats of the traces `query(filter)`
//! returns that fall in it, in a defined order.
//!
//! The expected side is computed here from the fixture rows, plainly, never through
//! core's grouping.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Value, json};
use trace_store_core::{
    GroupBy, GroupKey, Status, Step, Timestamp, Trace, TraceFilter, TraceStats, TraceStore,
};

use crate::fixtures::{assert_answer, assert_invalid, ok};

/// One fixture trace: its steps are `(model, input, output, cost, failed)`, each 1 ms,
/// none nested, so every step is counted and `total_ms` is the number of steps.
struct Row {
    run_id: &'static str,
    created_at: &'static str,
    day: (i32, u32, u32),
    name: Option<&'static str>,
    session: Option<&'static str>,
    status: Status,
    steps: &'static [(&'static str, u64, u64, i64, bool)],
    user: Option<Value>,
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            run_id: "t1",
            created_at: "2026-03-01T23:59:59.999999Z",
            day: (2026, 3, 1),
            name: Some("alpha"),
            session: Some("s1"),
            status: Status::Ok,
            steps: &[("m-a", 10, 1, 100, false)],
            user: Some(json!(1)),
        },
        Row {
            run_id: "t2",
            created_at: "2026-03-02T00:00:00Z",
            day: (2026, 3, 2),
            name: Some("beta"),
            session: Some("s1"),
            status: Status::Error,
            steps: &[("m-a", 20, 2, 200, false), ("m-b", 5, 5, 50, true)],
            user: Some(json!(1.0)),
        },
        Row {
            run_id: "t3",
            created_at: "2026-03-02T12:00:00Z",
            day: (2026, 3, 2),
            name: Some("alpha"),
            session: None,
            status: Status::Ok,
            steps: &[("m-b", 7, 3, 70, false)],
            user: Some(json!("1")),
        },
        Row {
            run_id: "t4",
            created_at: "2026-02-28T04:00:00Z",
            day: (2026, 2, 28),
            name: None,
            session: Some("s2"),
            status: Status::Running,
            steps: &[],
            user: None,
        },
        Row {
            run_id: "t5",
            created_at: "2026-03-01T00:00:00Z",
            day: (2026, 3, 1),
            name: Some("beta"),
            session: Some("s2"),
            status: Status::Unset,
            steps: &[("m-a", 1, 1, 10, false), ("m-c", 2, 2, 20, false)],
            user: Some(json!({"b": 1, "a": [1, 2]})),
        },
        Row {
            run_id: "t6",
            created_at: "2026-03-01T08:00:00Z",
            day: (2026, 3, 1),
            name: Some("alpha"),
            session: Some("s1"),
            status: Status::Ok,
            steps: &[("m-c", 3, 0, 0, false)],
            user: Some(json!({"a": [1.0, 2], "b": 1.0})),
        },
    ]
}

fn timestamp(text: &str) -> Timestamp {
    text.parse()
        .unwrap_or_else(|e| panic!("fixture timestamp {text:?}: {e}"))
}

fn to_trace(row: &Row) -> Trace {
    let mut trace = Trace::new(row.run_id)
        .with_created_at(timestamp(row.created_at))
        .with_status(row.status);
    trace.name = row.name.map(str::to_owned);
    trace.session_id = row.session.map(str::to_owned);
    if let Some(user) = &row.user {
        trace = trace.with_metadata("user", user.clone());
    }
    for &(model, input, output, cost, failed) in row.steps {
        let status = if failed { Status::Error } else { Status::Ok };
        trace = trace.with_step(
            Step::llm_call(model)
                .with_usage(input, output)
                .with_cost_nano_usd(cost)
                .with_duration_us(1_000)
                .with_status(status),
        );
    }
    trace
}

/// Totals of a group, computed plainly from rows. `only_model` keeps the usage of one
/// model only (a Model group).
#[derive(Debug, PartialEq)]
struct Totals {
    count: u64,
    steps: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost_nano_usd: i64,
    total_ms: u64,
    error_count: u64,
    failed_steps: u64,
    by_status: BTreeMap<Status, u64>,
    /// model -> (calls, input, output, cost)
    by_model: BTreeMap<String, (u64, u64, u64, i64)>,
}

fn totals(rows: &[&Row], only_model: Option<&str>) -> Totals {
    let mut t = Totals {
        count: 0,
        steps: 0,
        input_tokens: 0,
        output_tokens: 0,
        cost_nano_usd: 0,
        total_ms: 0,
        error_count: 0,
        failed_steps: 0,
        by_status: BTreeMap::new(),
        by_model: BTreeMap::new(),
    };
    for row in rows {
        t.count += 1;
        t.steps += row.steps.len() as u64;
        t.total_ms += row.steps.len() as u64;
        *t.by_status.entry(row.status).or_default() += 1;
        t.error_count += u64::from(row.status == Status::Error);
        for &(model, input, output, cost, failed) in row.steps {
            t.error_count += u64::from(failed);
            t.failed_steps += u64::from(failed);
            if only_model.is_some_and(|only| only != model) {
                continue;
            }
            t.input_tokens += input;
            t.output_tokens += output;
            t.cost_nano_usd += cost;
            let entry = t.by_model.entry(model.to_owned()).or_default();
            *entry = (
                entry.0 + 1,
                entry.1 + input,
                entry.2 + output,
                entry.3 + cost,
            );
        }
    }
    t
}

fn observed(stats: &TraceStats) -> Totals {
    Totals {
        count: stats.count,
        steps: stats.steps,
        input_tokens: stats.input_tokens,
        output_tokens: stats.output_tokens,
        cost_nano_usd: stats.cost_nano_usd,
        // Every fixture step lasts exactly 1 ms, so the sum is a whole number.
        total_ms: stats.total_ms.round() as u64,
        error_count: stats.error_count,
        failed_steps: stats.failed_steps,
        by_status: stats.by_status.clone(),
        by_model: stats
            .by_model
            .iter()
            .map(|(m, u)| {
                (
                    m.clone(),
                    (u.calls, u.input_tokens, u.output_tokens, u.cost_nano_usd),
                )
            })
            .collect(),
    }
}

fn day(row: &Row) -> NaiveDate {
    let (y, m, d) = row.day;
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn save_rows(store: &dyn TraceStore) -> Vec<Row> {
    let rows = rows();
    let traces: Vec<Trace> = rows.iter().map(to_trace).collect();
    ok(store.save_many(&traces), "save_many");
    rows
}

/// Checks `stats_by(filter, group)` against plain groups of `selected` (the rows
/// `query(filter)` returns): the same keys in the same order, the same totals, and, for
/// each group a filter can select, the store's own `stats` of that filter.
#[track_caller]
fn check_groups(
    store: &dyn TraceStore,
    filter: &TraceFilter,
    group: GroupBy,
    expected: Vec<(GroupKey, Vec<&Row>)>,
) {
    let got = ok(store.stats_by(filter, group.clone()), "stats_by");
    let got_keys: Vec<&GroupKey> = got.iter().map(|(k, _)| k).collect();
    let want_keys: Vec<&GroupKey> = expected.iter().map(|(k, _)| k).collect();
    assert_answer(
        &format!("C14 groups and their order for {group} over {filter:?}"),
        want_keys,
        got_keys,
    );
    for ((key, members), (_, stats)) in expected.iter().zip(&got) {
        let only_model = match key {
            GroupKey::Model(model) => Some(model.as_str()),
            _ => None,
        };
        assert_answer(
            &format!(
                "C14 totals of group {key} ({group}, members {:?})",
                members.iter().map(|r| r.run_id).collect::<Vec<_>>()
            ),
            totals(members, only_model),
            observed(stats),
        );
        let selecting = match key {
            GroupKey::Name(Some(name)) => Some(filter.clone().with_name(name.clone())),
            GroupKey::Session(Some(session)) => {
                Some(filter.clone().with_session_id(session.clone()))
            }
            GroupKey::Status(status) => Some(filter.clone().with_status(*status)),
            _ => None,
        };
        if let Some(selecting) = selecting.filter(|_| filter.limit.is_none()) {
            assert_answer(
                &format!("C14 group {key} equals stats of the query selecting it"),
                observed(&ok(store.stats(&selecting), "stats")),
                observed(stats),
            );
        }
    }
}

fn pick<'a>(rows: &'a [Row], ids: &[&str]) -> Vec<&'a Row> {
    ids.iter()
        .map(|id| {
            rows.iter()
                .find(|r| r.run_id == *id)
                .unwrap_or_else(|| panic!("no fixture row {id}"))
        })
        .collect()
}

/// Day groups use the UTC date of `created_at` (23:59:59.999999Z and 00:00:00Z fall on
/// their own days), newest day first; each equals `stats` over that day's range.
pub fn c14_group_by_day(store: &dyn TraceStore) {
    let rows = save_rows(store);
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
    let expected = vec![
        (GroupKey::Day(date(2026, 3, 2)), pick(&rows, &["t2", "t3"])),
        (
            GroupKey::Day(date(2026, 3, 1)),
            pick(&rows, &["t1", "t5", "t6"]),
        ),
        (GroupKey::Day(date(2026, 2, 28)), pick(&rows, &["t4"])),
    ];
    for (key, members) in &expected {
        let GroupKey::Day(d) = key else { continue };
        assert!(
            members.iter().all(|r| day(r) == *d),
            "fixture rows of {d} are dated otherwise"
        );
    }
    check_groups(store, &TraceFilter::new(), GroupBy::Day, expected);
    let range = TraceFilter::new()
        .with_since(timestamp("2026-03-01T00:00:00Z"))
        .with_until(timestamp("2026-03-01T23:59:59.999999Z"));
    let groups = ok(
        store.stats_by(&TraceFilter::new(), GroupBy::Day),
        "stats_by",
    );
    assert_answer(
        "C14 the day group 2026-03-01 equals stats over that UTC day",
        observed(&ok(store.stats(&range), "stats")),
        observed(&groups[1].1),
    );
}

/// Name, Session and Status groups, by key ascending, `None` first.
pub fn c14_group_by_name_session_status(store: &dyn TraceStore) {
    let rows = save_rows(store);
    let all = TraceFilter::new();
    let name = |n: Option<&str>| GroupKey::Name(n.map(str::to_owned));
    check_groups(
        store,
        &all,
        GroupBy::Name,
        vec![
            (name(None), pick(&rows, &["t4"])),
            (name(Some("alpha")), pick(&rows, &["t1", "t3", "t6"])),
            (name(Some("beta")), pick(&rows, &["t2", "t5"])),
        ],
    );
    let session = |s: Option<&str>| GroupKey::Session(s.map(str::to_owned));
    check_groups(
        store,
        &all,
        GroupBy::Session,
        vec![
            (session(None), pick(&rows, &["t3"])),
            (session(Some("s1")), pick(&rows, &["t1", "t2", "t6"])),
            (session(Some("s2")), pick(&rows, &["t4", "t5"])),
        ],
    );
    check_groups(
        store,
        &all,
        GroupBy::Status,
        vec![
            (GroupKey::Status(Status::Unset), pick(&rows, &["t5"])),
            (GroupKey::Status(Status::Running), pick(&rows, &["t4"])),
            (
                GroupKey::Status(Status::Ok),
                pick(&rows, &["t1", "t3", "t6"]),
            ),
            (GroupKey::Status(Status::Error), pick(&rows, &["t2"])),
        ],
    );
}

/// Model groups hold every trace with a counted step of the model, with that model's
/// usage only; a trace without model steps is in no group.
pub fn c14_group_by_model(store: &dyn TraceStore) {
    let rows = save_rows(store);
    let model = |m: &str| GroupKey::Model(m.to_owned());
    check_groups(
        store,
        &TraceFilter::new(),
        GroupBy::Model,
        vec![
            (model("m-a"), pick(&rows, &["t1", "t2", "t5"])),
            (model("m-b"), pick(&rows, &["t2", "t3"])),
            (model("m-c"), pick(&rows, &["t5", "t6"])),
        ],
    );
    let groups = ok(
        store.stats_by(&TraceFilter::new(), GroupBy::Model),
        "stats_by",
    );
    let m_a: Vec<_> = groups
        .iter()
        .filter(|(k, _)| *k == model("m-a"))
        .map(|(_, s)| {
            (
                s.input_tokens,
                s.by_model.keys().cloned().collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_answer(
        "C14 the m-a group carries m-a's usage only (input tokens 10 + 20 + 1, models)",
        vec![(31, vec!["m-a".to_owned()])],
        m_a,
    );
}

/// Metadata groups use canonical JSON (`1` and `1.0` together, objects by content,
/// `"1"` apart), omit traces without the key, and come by key ascending.
pub fn c14_group_by_metadata(store: &dyn TraceStore) {
    let rows = save_rows(store);
    let groups = ok(
        store.stats_by(&TraceFilter::new(), GroupBy::Metadata("user".into())),
        "stats_by",
    );
    let mut keys = Vec::new();
    let mut got = Vec::new();
    for (key, stats) in &groups {
        let GroupKey::Metadata(text) = key else {
            panic!("C14 a metadata grouping returned the key {key:?}");
        };
        let value: Value = serde_json::from_str(text).unwrap_or_else(|e| {
            panic!("C14 a metadata group key is canonical JSON: {text:?} is not JSON ({e})")
        });
        keys.push(text.clone());
        got.push((value, observed(stats)));
    }
    let mut sorted = keys.clone();
    sorted.sort();
    assert_answer("C14 metadata groups by key ascending", sorted, keys);
    let expected = [
        (json!("1"), pick(&rows, &["t3"])),
        (json!(1), pick(&rows, &["t1", "t2"])),
        (json!({"a": [1, 2], "b": 1}), pick(&rows, &["t5", "t6"])),
    ];
    assert_answer(
        "C14 metadata groups: \"1\", 1 (with 1.0), the object (either key order); none for t4",
        expected.len(),
        got.len(),
    );
    for (want_value, members) in expected {
        let found = got
            .iter()
            .find(|(value, _)| plain_json_eq(value, &want_value));
        let Some((_, stats)) = found else {
            panic!("C14 no metadata group for {want_value}; groups: {groups:?}");
        };
        assert_answer(
            &format!("C14 totals of metadata group {want_value}"),
            &totals(&members, None),
            stats,
        );
        let selecting = TraceFilter::new().with_metadata("user", want_value.clone());
        assert_answer(
            &format!("C14 metadata group {want_value} equals stats of the query selecting it"),
            &observed(&ok(store.stats(&selecting), "stats")),
            stats,
        );
    }
}

/// JSON equality by value, written out here: numbers compare as numbers (exactly, for
/// the small values of the fixtures), objects by content, arrays in order.
fn plain_json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| plain_json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| plain_json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// With a filter, and with a filter that pages, the groups cover exactly what `query`
/// returns.
pub fn c14_groups_follow_filter_and_paging(store: &dyn TraceStore) {
    let rows = save_rows(store);
    let alpha = TraceFilter::new().with_name("alpha");
    let date = |y, m, d| GroupKey::Day(NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default());
    check_groups(
        store,
        &alpha,
        GroupBy::Day,
        vec![
            (date(2026, 3, 2), pick(&rows, &["t3"])),
            (date(2026, 3, 1), pick(&rows, &["t1", "t6"])),
        ],
    );
    // Newest three: t3, t2, t1.
    let newest = TraceFilter::new().with_limit(3);
    check_groups(
        store,
        &newest,
        GroupBy::Model,
        vec![
            (GroupKey::Model("m-a".into()), pick(&rows, &["t1", "t2"])),
            (GroupKey::Model("m-b".into()), pick(&rows, &["t2", "t3"])),
        ],
    );
    // After t2: t1, t6, t5, t4; skip one, take two: t6, t5.
    let after = ok(store.query(&TraceFilter::new().with_limit(2)), "query");
    let paged = TraceFilter::new()
        .with_after(after[1].cursor())
        .with_offset(1)
        .with_limit(2);
    check_groups(
        store,
        &paged,
        GroupBy::Session,
        vec![
            (GroupKey::Session(Some("s1".into())), pick(&rows, &["t6"])),
            (GroupKey::Session(Some("s2".into())), pick(&rows, &["t5"])),
        ],
    );
    check_groups(
        store,
        &TraceFilter::new().with_metadata("user", "nobody"),
        GroupBy::Status,
        Vec::new(),
    );
}

/// An empty metadata key, or an invalid filter, is `InvalidInput`.
pub fn c14_invalid_grouping_rejected(store: &dyn TraceStore) {
    save_rows(store);
    assert_invalid(
        store.stats_by(&TraceFilter::new(), GroupBy::Metadata(String::new())),
        "C14 stats_by with an empty metadata key",
    );
    assert_invalid(
        store.stats_by(
            &TraceFilter::new().with_min_steps(2).with_max_steps(1),
            GroupBy::Day,
        ),
        "C14 stats_by with min_steps > max_steps",
    );
}
