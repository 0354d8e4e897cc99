use super::*;
use crate::{Cursor, Trace};
use serde_json::json;

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros).unwrap()
}

fn add(index: &mut SummaryIndex, run_id: &str, micros: i64, user: Value) {
    index.insert(TraceSummary::from(
        &Trace::new(run_id)
            .with_created_at(at(micros))
            .with_metadata("user", user),
    ));
}

fn ids(index: &SummaryIndex, filter: &TraceFilter) -> Vec<String> {
    let mut out = Vec::new();
    index.for_each_match(filter, |run_id| out.push(run_id.to_owned()));
    out
}

#[test]
fn access_paths_agree_with_the_filter() {
    let mut index = SummaryIndex::new();
    for i in 0..20 {
        add(&mut index, &format!("r{i:02}"), i % 7, json!(i % 3));
    }
    let all: Vec<TraceSummary> = index
        .order
        .iter()
        .rev()
        .map(|(key, entry)| IndexedSummary { key, entry }.to_summary())
        .collect();
    let filters = [
        TraceFilter::new(),
        TraceFilter::new().with_metadata("user", 1.0),
        TraceFilter::new().with_metadata("user", "1"),
        TraceFilter::new().with_since(at(2)).with_until(at(4)),
        TraceFilter::new().with_until(at(0)),
        TraceFilter::new()
            .with_since(at(6))
            .with_metadata("user", 2),
        TraceFilter::new()
            .with_after(Cursor::new(at(3), "r10"))
            .with_limit(4),
        TraceFilter::new()
            .with_after(Cursor::new(at(3), "r10"))
            .with_since(at(3))
            .with_metadata("user", 0)
            .with_offset(1),
        TraceFilter::new()
            .with_since(at(5))
            .with_after(Cursor::new(at(5), "")),
        TraceFilter::new()
            .with_until(Timestamp::MAX)
            .with_since(Timestamp::MIN),
    ];
    for filter in filters {
        let expected: Vec<String> = filter.page(&all).map(|s| s.run_id.clone()).collect();
        assert_eq!(ids(&index, &filter), expected, "{filter:?}");
    }
}

#[test]
fn upserts_and_removals_keep_postings_right() {
    let mut index = SummaryIndex::new();
    add(&mut index, "a", 1, json!("x"));
    add(&mut index, "a", 2, json!("y"));
    assert_eq!(index.len(), 1);
    assert!(ids(&index, &TraceFilter::new().with_metadata("user", "x")).is_empty());
    assert_eq!(
        ids(&index, &TraceFilter::new().with_metadata("user", "y")),
        ["a"]
    );
    assert_eq!(index.get("a").map(|s| s.created_at), Some(at(2)));
    assert!(index.remove("a"));
    assert!(!index.remove("never-saved"));
    assert!(index.is_empty());
    assert!(index.metadata.is_empty());
    assert!(index.order.is_empty());
    assert!(index.strings.0.is_empty() && index.values.0.is_empty());
}

fn rich(run_id: &str, user: &str) -> Trace {
    Trace::new(run_id)
        .with_name("agent")
        .with_session_id("s1")
        .with_parent_run_id("p")
        .with_status(crate::Status::Ok)
        .with_metadata("user", user)
        .with_metadata("n", 1.0)
        .with_metadata("m", json!({"deep": [1, null]}))
        .with_step(
            crate::Step::llm_call("gpt-4o")
                .with_usage(3, 4)
                .with_cost_nano_usd(5),
        )
        .with_step(
            crate::Step::llm_call("claude")
                .with_usage(1, 1)
                .with_duration_us(1_500)
                .with_status(crate::Status::Error),
        )
        .with_score(crate::Score::new("helpful").with_value(0.5))
}

#[test]
fn equal_values_keep_their_own_spelling() {
    let mut index = SummaryIndex::new();
    let spellings = [json!(0.0), json!(-0.0), json!([-0.0]), json!(1), json!(1.0)];
    for (i, value) in spellings.iter().enumerate() {
        index.insert(TraceSummary::from(
            &Trace::new(format!("r{i}")).with_metadata("v", value.clone()),
        ));
    }
    for (i, value) in spellings.iter().enumerate() {
        let back = index
            .get(&format!("r{i}"))
            .map(|s| s.metadata["v"].to_string());
        assert_eq!(back, Some(value.to_string()));
    }
    let ones = ids(&index, &TraceFilter::new().with_metadata("v", 1));
    assert_eq!(ones, ["r4", "r3"], "1 and 1.0 still match each other");
}

#[test]
fn summaries_come_back_exactly_and_leave_nothing_behind() {
    let mut index = SummaryIndex::new();
    let traces = [rich("a", "u1"), rich("b", "u1"), rich("c", "u2")];
    for trace in &traces {
        assert!(!index.insert(TraceSummary::from(trace)));
    }
    for trace in &traces {
        assert_eq!(index.get(&trace.run_id), Some(TraceSummary::from(trace)));
    }
    let models = index.strings.0.iter().filter(|s| &***s == "gpt-4o").count();
    assert_eq!(models, 1, "one copy of a repeated string");
    // A replaced summary gives back what only it used.
    assert!(index.insert(TraceSummary::from(&rich("c", "u3"))));
    assert!(!index.values.0.contains(&json!("u2")));
    let filter = TraceFilter::new()
        .with_name("agent")
        .with_session_id("s1")
        .with_parent_run_id("p")
        .with_metadata("user", "u1")
        .with_score("helpful", Some(0.0), Some(1.0));
    assert_eq!(ids(&index, &filter), ["b", "a"]);
    for filter in [TraceFilter::new(), filter] {
        let totals: TraceStats = index.query(&filter).unwrap().iter().collect();
        assert_eq!(index.stats(&filter).unwrap(), totals);
    }
    for run_id in ["a", "b", "c"] {
        assert!(index.remove(run_id));
    }
    assert!(index.strings.0.is_empty() && index.values.0.is_empty());
    assert!(index.metadata.is_empty() && index.created.is_empty());
}
