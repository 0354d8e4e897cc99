//! Model-based testing: random operation sequences against the store and a plain
//! reference model, comparing every answer.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use trace_store_core::{
    Cursor, Error, Status, Step, Trace, TraceFilter, TraceStats, TraceStore, TraceSummary,
};

use crate::fixtures::at;

/// One call on the store.
#[derive(Clone, Debug)]
pub enum Op {
    /// `save`
    Save(Trace),
    /// `save_many`
    SaveMany(Vec<Trace>),
    /// `load`
    Load(String),
    /// `delete`
    Delete(String),
    /// `list`
    List(usize, usize),
    /// `query`
    Query(TraceFilter),
    /// `count`
    Count(TraceFilter),
    /// `stats`
    Stats(TraceFilter),
}

const IDS: [&str; 6] = ["a", "b", "c", "a b", "é", "x:{y}"];

fn run_id() -> impl Strategy<Value = String> {
    prop::sample::select(&IDS[..]).prop_map(str::to_owned)
}

fn meta_value() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!("u1"),
        json!("u2"),
        json!("1"),
        json!(1),
        json!(1.0),
        json!(true),
        Value::Null,
        json!({"k": [1, 2]}),
    ])
}

fn status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL.to_vec())
}

fn env_value() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![json!("prod"), json!("dev"), json!(1)])
}

fn trace() -> impl Strategy<Value = Trace> {
    (
        run_id(),
        0i64..4,
        prop::collection::vec((0u64..3, prop::bool::ANY, prop::bool::ANY), 0..4),
        prop::option::of(meta_value()),
        prop::option::of(env_value()),
        prop::option::of(prop::sample::select(vec!["x", "y"])),
        status(),
    )
        .prop_map(|(run_id, micros, steps, user, env, name, status)| {
            let mut trace = Trace::new(run_id)
                .with_created_at(at(micros))
                .with_status(status);
            // Steps with two models, some nested under the first step, some failed:
            // every derived value of the summary and of `stats` has something to add.
            trace.steps = steps
                .into_iter()
                .enumerate()
                .map(|(i, (tokens, nested, failed))| {
                    let model = if tokens % 2 == 0 { "m" } else { "n" };
                    let mut step = Step::llm_call(model)
                        .with_id(format!("s{i}"))
                        .with_usage(tokens, 1)
                        .with_duration_us(10);
                    if nested && i > 0 {
                        step = step.with_parent_id("s0");
                    }
                    if failed {
                        step = step.with_status(Status::Error);
                    }
                    step
                })
                .collect();
            if let Some(user) = user {
                trace.metadata.insert("user".into(), user);
            }
            if let Some(env) = env {
                trace.metadata.insert("env".into(), env);
            }
            trace.name = name.map(str::to_owned);
            trace
        })
}

/// Cursor run_ids: the stored ones, and ones that fall between, before and after them.
fn cursor_run_id() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => run_id(),
        1 => prop::sample::select(vec!["", "a!", "b0", "\u{10ffff}"]).prop_map(str::to_owned),
    ]
}

fn filter() -> impl Strategy<Value = TraceFilter> {
    (
        prop::option::of(meta_value()),
        prop::option::of(env_value()),
        prop::option::of((0usize..4, 0usize..4)),
        prop::option::of((0i64..4, 0i64..4)),
        prop::option::of(status()),
        prop::option::of(prop::sample::select(vec!["x", "y"])),
        prop::option::of((0i64..4, cursor_run_id())),
        0usize..3,
        prop::option::of(0usize..4),
    )
        .prop_map(
            |(user, env, steps, times, status, name, after, offset, limit)| {
                let mut filter = TraceFilter::new().with_offset(offset);
                if let Some(user) = user {
                    filter = filter.with_metadata("user", user);
                }
                if let Some(env) = env {
                    filter = filter.with_metadata("env", env);
                }
                if let Some((a, b)) = steps {
                    filter.min_steps = Some(a.min(b)).filter(|_| a % 2 == 0);
                    filter.max_steps = Some(a.max(b));
                }
                if let Some((a, b)) = times {
                    filter.since = Some(at(a.min(b)));
                    filter.until = Some(at(a.max(b))).filter(|_| b % 2 == 0);
                }
                filter.status = status;
                filter.name = name.map(str::to_owned);
                filter.after = after.map(|(micros, run_id)| Cursor::new(at(micros), run_id));
                filter.limit = limit;
                filter
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => trace().prop_map(Op::Save),
        1 => prop::collection::vec(trace(), 0..4).prop_map(Op::SaveMany),
        2 => run_id().prop_map(Op::Load),
        2 => run_id().prop_map(Op::Delete),
        1 => (0usize..5, 0usize..4).prop_map(|(l, o)| Op::List(l, o)),
        3 => filter().prop_map(Op::Query),
        1 => filter().prop_map(Op::Count),
        1 => filter().prop_map(Op::Stats),
    ]
}

/// The reference model: a map and a sort.
#[derive(Debug, Default)]
struct Model(BTreeMap<String, Trace>);

impl Model {
    fn query(&self, filter: &TraceFilter) -> Vec<TraceSummary> {
        let mut all: Vec<TraceSummary> = self.0.values().map(TraceSummary::from).collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.cursor()));
        filter.page(&all).cloned().collect()
    }
}

fn check<T: PartialEq + std::fmt::Debug>(
    op: &Op,
    got: trace_store_core::Result<T>,
    want: T,
) -> Result<(), TestCaseError> {
    match got {
        Ok(got) if got == want => Ok(()),
        Ok(got) => Err(TestCaseError::fail(format!(
            "{op:?}: store answered {got:?}, model {want:?}"
        ))),
        Err(error) => Err(TestCaseError::fail(format!(
            "{op:?}: store failed: {error}"
        ))),
    }
}

fn stats_eq(a: &TraceStats, b: &TraceStats) -> bool {
    (
        a.count,
        a.steps,
        a.input_tokens,
        a.output_tokens,
        a.cost_nano_usd,
        a.error_count,
    ) == (
        b.count,
        b.steps,
        b.input_tokens,
        b.output_tokens,
        b.cost_nano_usd,
        b.error_count,
    ) && a.by_status == b.by_status
        && a.by_model == b.by_model
        && (a.total_ms - b.total_ms).abs() < 1e-6
}

fn apply(store: &dyn TraceStore, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::Save(trace) => {
            check(op, store.save(trace), trace.run_id.clone())?;
            model.0.insert(trace.run_id.clone(), trace.clone());
        }
        Op::SaveMany(traces) => {
            let ids = traces.iter().map(|t| t.run_id.clone()).collect();
            check(op, store.save_many(traces), ids)?;
            for trace in traces {
                model.0.insert(trace.run_id.clone(), trace.clone());
            }
        }
        Op::Load(run_id) => match (store.load(run_id), model.0.get(run_id)) {
            (Ok(got), Some(want)) if got == *want => {}
            (Err(Error::NotFound { .. }), None) => {}
            (got, want) => {
                return Err(TestCaseError::fail(format!(
                    "{op:?}: store {got:?}, model {want:?}"
                )));
            }
        },
        Op::Delete(run_id) => {
            check(op, store.delete(run_id), model.0.remove(run_id).is_some())?;
        }
        Op::List(limit, offset) => {
            let want = model.query(&TraceFilter::new().with_limit(*limit).with_offset(*offset));
            check(op, store.list(*limit, *offset), want)?;
        }
        Op::Query(filter) => check(op, store.query(filter), model.query(filter))?,
        Op::Count(filter) => check(op, store.count(filter), model.query(filter).len() as u64)?,
        Op::Stats(filter) => {
            let want: TraceStats = model.query(filter).iter().collect();
            match store.stats(filter) {
                Ok(got) if stats_eq(&got, &want) => {}
                got => {
                    return Err(TestCaseError::fail(format!(
                        "{op:?}: store {got:?}, model {want:?}"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Runs `cases` random sequences of up to 40 operations, each on a fresh store from
/// `fresh`, and panics with the shortest failing sequence if the store and the model
/// ever disagree.
pub fn model_based(fresh: &dyn Fn() -> crate::Fresh, cases: u32) {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
        let fresh = fresh();
        let mut model = Model::default();
        for op in &ops {
            apply(fresh.store(), &mut model, op)?;
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!("store disagrees with the reference model: {error}");
    }
}
