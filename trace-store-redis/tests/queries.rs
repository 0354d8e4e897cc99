//! The index-driven query planner against the reference store: every way the Lua
//! script can take (one index, intersections, steps by walking or by copying the step
//! range, cursors, offsets, limits) answers exactly as `MemoryStore` does.

mod support;

use serde_json::json;
use trace_store_core::{Cursor, Status, Timestamp, Trace, TraceFilter, TraceStore};
use trace_store_memory::MemoryStore;
use trace_store_redis::{RedisOptions, RedisStore};

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(1_767_225_600_000_000 + micros).expect("valid")
}

/// 600 traces with few distinct instants (many ties), 1..=15 steps, 7 users, 3
/// statuses and 2 names, from a fixed pseudo-random sequence.
fn traces() -> Vec<Trace> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    (0..600)
        .map(|i| {
            let status = [Status::Ok, Status::Error, Status::Unset][next(3) as usize];
            let mut trace = Trace::new(format!("run-{:03}", next(1000)))
                .with_created_at(at(next(150) as i64 * 1_000))
                .with_status(status)
                .with_metadata("user", format!("u{}", next(7)))
                .with_metadata("n", next(2));
            if i % 3 == 0 {
                trace = trace.with_name(["alpha", "beta"][next(2) as usize]);
            }
            trace.steps = (0..1 + next(15))
                .map(|_| trace_store_core::Step::llm_call("m").with_usage(1, 1))
                .collect();
            trace
        })
        .collect()
}

fn filters() -> Vec<TraceFilter> {
    let base = vec![
        TraceFilter::new(),
        TraceFilter::new().with_metadata("user", "u3"),
        TraceFilter::new()
            .with_metadata("user", "u3")
            .with_metadata("n", 1),
        TraceFilter::new()
            .with_metadata("n", json!(1.0))
            .with_status(Status::Ok),
        TraceFilter::new()
            .with_name("alpha")
            .with_status(Status::Error),
        TraceFilter::new().with_min_steps(14),
        TraceFilter::new().with_min_steps(2),
        TraceFilter::new()
            .with_max_steps(3)
            .with_metadata("user", "u1"),
        // Few traces in the step range against a large index: the step range is copied
        // and intersected with the index.
        TraceFilter::new().with_metadata("n", 1).with_min_steps(15),
        TraceFilter::new()
            .with_metadata("n", 1)
            .with_status(Status::Ok)
            .with_min_steps(15),
        TraceFilter::new()
            .with_status(Status::Ok)
            .with_min_steps(14)
            .with_since(at(30_000)),
        TraceFilter::new()
            .with_min_steps(5)
            .with_max_steps(9)
            .with_since(at(40_000)),
        TraceFilter::new()
            .with_since(at(20_000))
            .with_until(at(90_000)),
        TraceFilter::new().with_until(at(0)),
        TraceFilter::new().with_metadata("user", "nobody"),
        TraceFilter::new().with_min_steps(16),
    ];
    let mut all = Vec::new();
    for filter in base {
        all.push(filter.clone());
        all.push(filter.clone().with_limit(7));
        all.push(filter.clone().with_offset(5).with_limit(3));
        all.push(filter.clone().with_offset(10_000));
        all.push(filter.clone().with_limit(usize::MAX).with_offset(1));
        all.push(
            filter
                .clone()
                .with_after(Cursor::new(at(75_000), "run-500"))
                .with_limit(20),
        );
        all.push(
            filter
                .with_after(Cursor::new(at(75_000), ""))
                .with_offset(2),
        );
    }
    all
}

#[test]
fn every_plan_agrees_with_the_reference() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let redis = RedisStore::open_with(
        &url,
        RedisOptions::default().with_prefix(support::unique_prefix("plans")),
    )
    .expect("open");
    let memory = MemoryStore::unbounded();
    let traces = traces();
    redis.save_many(&traces).expect("save_many");
    memory.save_many(&traces).expect("save_many");
    // Upserts and deletes so the indexes carry history.
    for trace in traces.iter().step_by(11) {
        let moved = trace
            .clone()
            .with_created_at(at(160_000))
            .with_metadata("user", "u0");
        redis.save(&moved).expect("upsert");
        memory.save(&moved).expect("upsert");
    }
    for trace in traces.iter().step_by(13) {
        assert_eq!(
            redis.delete(&trace.run_id).expect("delete"),
            memory.delete(&trace.run_id).expect("delete")
        );
    }
    for filter in filters() {
        let expected = memory.query(&filter).expect("reference");
        assert_eq!(redis.query(&filter).expect("query"), expected, "{filter:?}");
        assert_eq!(
            redis.count(&filter).expect("count"),
            expected.len() as u64,
            "count {filter:?}"
        );
        assert_eq!(
            redis.stats(&filter).expect("stats"),
            memory.stats(&filter).expect("stats"),
            "stats {filter:?}"
        );
    }
    redis.clear().expect("clear");
}
