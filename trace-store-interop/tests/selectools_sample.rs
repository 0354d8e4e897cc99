//! The committed sample of 200 real selectools workload lines converts without loss.

use std::collections::BTreeMap;

use serde_json::Value;
use trace_store_core::{
    Status, StepKind, TraceFilter, TraceStore, TraceStoreExt, TraceSummary, json_eq,
};
use trace_store_interop::{Format, ImportOptions, import, selectools};
use trace_store_memory::MemoryStore;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/selectools-200.jsonl"
);

/// Totals computed straight from the JSON, independently of the converter.
struct Expected {
    steps: usize,
    input_tokens: u64,
    output_tokens: u64,
    cost_nano_usd: i64,
    errors: u64,
}

fn expected(line: &Value) -> Expected {
    let steps = line["trace"]["steps"].as_array().expect("steps");
    let sum = |field: &str| steps.iter().filter_map(|s| s[field].as_u64()).sum();
    Expected {
        steps: steps.len(),
        input_tokens: sum("prompt_tokens"),
        output_tokens: sum("completion_tokens"),
        cost_nano_usd: steps
            .iter()
            .filter_map(|s| s["cost_usd"].as_f64())
            .map(|usd| (usd * 1e9).round() as i64)
            .sum(),
        errors: steps.iter().filter(|s| s["type"] == "error").count() as u64,
    }
}

#[test]
fn every_line_converts_with_matching_totals_and_nothing_dropped() {
    let text = std::fs::read_to_string(SAMPLE).expect("read the sample");
    let mut lines = 0;
    let mut total_cost = 0i64;
    for raw in text.lines() {
        lines += 1;
        let line: Value = serde_json::from_str(raw).unwrap();
        let trace = selectools::trace_from_line(raw.as_bytes()).unwrap();
        let want = expected(&line);
        let summary = TraceSummary::from(&trace);
        assert_eq!(trace.run_id, line["trace"]["run_id"].as_str().unwrap());
        assert_eq!(summary.steps, want.steps);
        assert_eq!(summary.input_tokens, want.input_tokens);
        assert_eq!(summary.output_tokens, want.output_tokens);
        assert_eq!(summary.cost_nano_usd, want.cost_nano_usd);
        assert_eq!(summary.error_count, want.errors);
        let stated_ms = line["trace"]["total_duration_ms"].as_f64().unwrap();
        assert!((summary.total_ms - stated_ms).abs() < 0.001 * want.steps as f64);
        assert_eq!(
            trace.created_at,
            line["created_at"].as_str().unwrap().parse().unwrap()
        );
        // Derived values agree, so metadata is exactly the user's.
        assert!(json_eq(
            &serde_json::to_value(&trace.metadata).unwrap(),
            &line["trace"]["metadata"]
        ));
        total_cost += summary.cost_nano_usd;

        for (step, source) in trace
            .steps
            .iter()
            .zip(line["trace"]["steps"].as_array().unwrap())
        {
            let source = source.as_object().unwrap();
            let kind = source["type"].as_str().unwrap();
            assert_eq!(selectools::step_type(&step.kind), kind);
            assert!(!matches!(step.kind, StepKind::Other(_)), "{kind} is known");
            assert_eq!(
                step.duration_us,
                (source["duration_ms"].as_f64().unwrap() * 1000.0).round() as u64
            );
            assert!(step.started_at.is_some());
            assert_eq!(step.status == Status::Error, source.contains_key("error"));
            // Every field without a home of its own is an attribute, with its value.
            let mapped = [
                "type",
                "timestamp",
                "duration_ms",
                "tool_name",
                "tool_args",
                "tool_result",
                "model",
                "prompt_tokens",
                "completion_tokens",
                "cost_usd",
                "error",
            ];
            let rest: BTreeMap<String, Value> = source
                .iter()
                .filter(|(k, _)| !mapped.contains(&k.as_str()))
                .map(|(k, v)| (format!("selectools.{k}"), v.clone()))
                .collect();
            assert_eq!(step.attributes, rest);
            assert_eq!(step.input.as_ref(), source.get("tool_args"));
            assert_eq!(step.output.as_ref(), source.get("tool_result"));
        }
    }
    assert_eq!(lines, 200);
    assert!(total_cost > 0);
}

#[test]
fn import_reports_the_format_and_stores_all_200() {
    let store = MemoryStore::unbounded();
    let mut file = std::io::BufReader::new(std::fs::File::open(SAMPLE).unwrap());
    let report = import(&store, &mut file, &ImportOptions::default()).unwrap();
    assert_eq!(report.format, Format::Selectools);
    assert_eq!((report.saved, report.skipped), (200, 0));
    let stats = store.stats(&TraceFilter::new()).unwrap();
    assert_eq!(stats.count, 200);

    // Exported natively and read back, the traces are the same.
    let mut exported = Vec::new();
    store
        .export_jsonl(&TraceFilter::new(), &mut exported)
        .unwrap();
    let copy = MemoryStore::unbounded();
    let report = import(&copy, &mut &exported[..], &ImportOptions::default()).unwrap();
    assert_eq!((report.format, report.saved), (Format::Native, 200));
    for summary in store.iter_summaries(TraceFilter::new(), 64) {
        let run_id = summary.unwrap().run_id;
        assert_eq!(copy.load(&run_id).unwrap(), store.load(&run_id).unwrap());
    }
}
