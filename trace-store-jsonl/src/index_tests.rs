use super::*;
use serde_json::json;
use trace_store_core::{Cursor, Score, Step, SummaryIndex, Timestamp, Trace, TraceFilter};

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros).unwrap()
}

fn loc(n: u64) -> Loc {
    Loc {
        offset: n * 100,
        len: 10,
        trace_offset: n * 100 + 5,
        trace_len: 4,
    }
}

fn add(index: &mut Index, run_id: &str, micros: i64, user: Value) {
    let summary = TraceSummary::from(
        &Trace::new(run_id)
            .with_created_at(at(micros))
            .with_metadata("user", user),
    );
    index.save(summary, loc(micros as u64));
}

fn ids(index: &Index, filter: &TraceFilter) -> Vec<String> {
    let page = index.query(filter);
    page.into_iter().map(|s| s.run_id).collect()
}

/// A trace that sets every field a summary has.
fn rich(i: usize) -> Trace {
    let mut trace = Trace::new(format!("r{i:03}"))
        .with_created_at(at((i % 7) as i64))
        .with_metadata("user", json!(format!("u{}", i % 3)))
        .with_metadata(
            "n",
            if i.is_multiple_of(2) {
                json!(1)
            } else {
                json!(1.0)
            },
        )
        .with_metadata("obj", json!({"a": [i % 2, null]}))
        .with_step(
            Step::llm_call(["gpt", "claude"][i % 2])
                .with_usage(i as u64, 2)
                .with_cost_nano_usd(i as i64),
        )
        .with_score(Score::new("quality").with_value((i % 5) as f64 / 4.0));
    trace.name = (!i.is_multiple_of(3)).then(|| format!("agent-{}", i % 2));
    trace.session_id = i.is_multiple_of(4).then(|| "s1".to_owned());
    trace.parent_run_id = i.is_multiple_of(5).then(|| "p".to_owned());
    trace.status = [Status::Ok, Status::Error, Status::Unset][i % 3];
    for _ in 0..i % 4 {
        trace = trace.with_step(Step::tool_call("search"));
    }
    trace
}

#[test]
fn summaries_come_back_exactly_as_core_made_them() {
    let mut index = Index::default();
    for i in 0..30 {
        let summary = TraceSummary::from(&rich(i));
        index.save(summary.clone(), loc(i as u64));
        let entry = index.entry(&summary.run_id).unwrap();
        assert_eq!(index.summary(entry), summary);
        assert_eq!(index.expected(entry).disagreement(&rich(i)), None);
    }
}

/// The index answers exactly what core's own in-memory index answers, for filters on
/// every criterion a summary carries, alone and combined, with cursors and pages.
#[test]
fn answers_agree_with_cores_summary_index() {
    let mut ours = Index::default();
    let mut core = SummaryIndex::new();
    for i in 0..60 {
        let summary = TraceSummary::from(&rich(i));
        ours.save(summary.clone(), loc(i as u64));
        core.insert(summary);
    }
    for i in (0..60).step_by(7) {
        let run_id = format!("r{i:03}");
        ours.delete(&run_id);
        core.remove(&run_id);
    }
    let base = [
        TraceFilter::new(),
        TraceFilter::new().with_metadata("user", "u1"),
        TraceFilter::new().with_metadata("n", 1.0),
        TraceFilter::new().with_metadata("obj", json!({"a": [1, null]})),
        TraceFilter::new().with_metadata("user", "nobody"),
        TraceFilter::new().with_metadata("absent", 1),
        TraceFilter::new().with_name("agent-1"),
        TraceFilter::new().with_session_id("s1"),
        TraceFilter::new().with_parent_run_id("p"),
        TraceFilter::new().with_status(Status::Error),
        TraceFilter::new().with_score("quality", Some(0.5), None),
        TraceFilter::new().with_min_steps(2).with_max_steps(3),
        TraceFilter::new().with_since(at(2)).with_until(at(4)),
        TraceFilter::new()
            .with_metadata("user", "u2")
            .with_metadata("n", 1)
            .with_name("agent-0"),
    ];
    let pagings: [fn(TraceFilter) -> TraceFilter; 4] = [
        |f| f,
        |f| f.with_limit(3),
        |f| f.with_offset(2).with_limit(4),
        |f| f.with_after(Cursor::new(at(4), "r030")),
    ];
    for filter in base {
        for paging in pagings {
            let filter = paging(filter.clone());
            assert_eq!(
                ours.query(&filter),
                core.query(&filter).unwrap(),
                "{filter:?}"
            );
            assert_eq!(ours.count(&filter), core.count(&filter).unwrap());
            assert_eq!(ours.stats(&filter), core.stats(&filter).unwrap());
        }
    }
}

#[test]
fn upserts_and_deletes_keep_summaries_and_bytes_right() {
    let mut index = Index::default();
    add(&mut index, "a", 1, json!("x"));
    add(&mut index, "a", 2, json!("y"));
    assert_eq!(index.len(), 1);
    assert_eq!(index.dead_records, 1);
    assert_eq!(index.live_bytes, 10);
    assert!(ids(&index, &TraceFilter::new().with_metadata("user", "x")).is_empty());
    assert_eq!(
        ids(&index, &TraceFilter::new().with_metadata("user", "y")),
        ["a"]
    );
    index.delete("a");
    index.delete("never-saved");
    assert_eq!(index.dead_records, 4);
    assert_eq!(index.live_bytes, 0);
    assert!(ids(&index, &TraceFilter::new()).is_empty());
}

#[test]
fn deleted_traces_leave_no_strings_values_or_postings() {
    let mut index = Index::default();
    for i in 0..20 {
        index.save(TraceSummary::from(&rich(i)), loc(i as u64));
    }
    for i in 0..20 {
        index.delete(&format!("r{i:03}"));
    }
    assert!(index.postings.is_empty() && index.order.is_empty() && index.by_id.is_empty());
    assert_eq!(index.strings.find("agent-1"), None);
    assert_eq!(index.strings.find("user"), None);
    assert_eq!(index.values.table.find(&json!("u1")), None);
    // Slots are reused rather than grown.
    index.save(TraceSummary::from(&rich(1)), loc(1));
    assert_eq!(index.entries.len(), 20);
}

#[test]
fn summaries_that_disagree_with_their_trace_are_named() {
    let trace = Trace::new("r1")
        .with_metadata("trace", "a metadata key named trace")
        .with_step(Step::llm_call("m").with_usage(3, 4));
    let mut index = Index::default();
    index.save(TraceSummary::from(&trace), loc(1));
    let expected = index.expected(index.entry("r1").unwrap());
    assert_eq!(expected.disagreement(&trace), None);
    let moved = trace.clone().with_created_at(at(1));
    assert_eq!(expected.disagreement(&moved), Some("created_at"));
    let relabelled = trace.clone().with_metadata("user", "someone else");
    assert_eq!(expected.disagreement(&relabelled), Some("metadata"));
    let mut renamed = trace.clone();
    renamed.name = Some("other".to_owned());
    assert_eq!(expected.disagreement(&renamed), Some("name"));
    renamed.run_id = "r2".to_owned();
    assert_eq!(expected.disagreement(&renamed), Some("run_id"));
}
