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
        .chain(ADVERSARIAL.iter().enumerate().map(|(i, id)| {
            // Ties with one another and with the cursors below; characters that mean
            // something in ZRANGEBYLEX bounds, and the highest bytes UTF-8 has.
            Trace::new(*id)
                .with_created_at(at(75_000))
                .with_metadata("user", format!("u{}", i % 7))
                .with_metadata("n", 1)
        }))
        .collect()
}

const ADVERSARIAL: [&str; 12] = [
    "+",
    "-",
    "(",
    "[run-500",
    "(run-500",
    "run-500\u{10FFFF}",
    "\u{10FFFF}",
    "é",
    "a b",
    ":",
    "{}",
    "run-5",
];

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
                .clone()
                .with_after(Cursor::new(at(75_000), ""))
                .with_offset(2),
        );
        all.push(
            filter
                .clone()
                .with_after(Cursor::new(at(75_000), "\u{10FFFF}"))
                .with_limit(30),
        );
        all.push(filter.with_after(Cursor::new(at(75_000), "(")));
    }
    all
}

/// Random combinations of every criterion, from a fixed pseudo-random sequence, so the
/// plans meet shapes nobody listed.
fn random_filters(n: usize) -> Vec<TraceFilter> {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    (0..n)
        .map(|_| {
            let mut filter = TraceFilter::new();
            if next(3) == 0 {
                filter = filter.with_metadata("user", format!("u{}", next(8)));
            }
            if next(3) == 0 {
                filter = filter.with_metadata("n", next(2));
            }
            if next(4) == 0 {
                filter = filter
                    .with_status([Status::Ok, Status::Error, Status::Unset][next(3) as usize]);
            }
            if next(5) == 0 {
                filter = filter.with_name(["alpha", "beta"][next(2) as usize]);
            }
            let (a, b) = (next(17) as usize, next(17) as usize);
            match next(4) {
                0 => filter = filter.with_min_steps(a.min(b)).with_max_steps(a.max(b)),
                1 => filter = filter.with_min_steps(a),
                2 => filter = filter.with_max_steps(b),
                _ => {}
            }
            let (a, b) = (next(170) as i64 * 1_000, next(170) as i64 * 1_000);
            match next(4) {
                0 => filter = filter.with_since(at(a.min(b))).with_until(at(a.max(b))),
                1 => filter = filter.with_since(at(a)),
                2 => filter = filter.with_until(at(b)),
                _ => {}
            }
            if next(3) == 0 {
                let id = format!("run-{:03}", next(1000));
                filter = filter.with_after(Cursor::new(at(next(170) as i64 * 1_000), id));
            }
            if next(2) == 0 {
                filter = filter.with_offset(next(40) as usize);
            }
            if next(2) == 0 {
                filter = filter.with_limit(next(60) as usize);
            }
            filter
        })
        .collect()
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
    for filter in filters().into_iter().chain(random_filters(400)) {
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
