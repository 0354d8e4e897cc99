//! Model-based testing: random operation sequences against the store and a plain
//! reference model ([`crate::reference`]), comparing every answer.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{Value, json};
use trace_store_core::{
    Cursor, Error, GroupBy, Score, ScoreSource, Status, Step, Trace, TraceFilter, TraceStore,
};

use crate::fixtures::at;
use crate::reference::{Key, Plain, PlainStats, Reference, invalid};

/// The environment variable that fixes the model-based test's seed, to replay a run.
pub const SEED_ENV: &str = "TRACE_STORE_CONFORMANCE_SEED";

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
    /// `merge`
    Merge(Trace),
    /// `delete_where`
    DeleteWhere(TraceFilter),
    /// `stats_by`
    StatsBy(TraceFilter, GroupBy),
}

const IDS: [&str; 6] = ["a", "b", "c", "a b", "é", "x:{y}"];

/// Words that step names are made of: text search has something to find, in several
/// scripts, with quotes that JSON escapes.
const WORDS: [&str; 5] = ["Alpha", "beta", "你好", "say \"hi\"", "🦀 crab"];

/// Text queries: hits in every word, case variants, JSON escapes that must not match,
/// metadata strings, and an empty query (invalid).
const QUERIES: [&str; 11] = [
    "alpha", "ALPHA", "a", "你", "\"hi\"", "\\\"", "🦀", "u1", "prod", "zzz", "",
];

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

fn session() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(vec!["s1", "s2"]).prop_map(str::to_owned))
}

/// A score: trace-level `q` by a human or an LLM, or a step-level one (never selected
/// by the score filter).
fn score() -> impl Strategy<Value = Score> {
    (0u8..3, 0u8..3).prop_map(|(kind, value)| {
        let score = Score::new("q")
            .with_value(f64::from(value) / 2.0)
            .with_created_at(at(0));
        match kind {
            0 => score,
            1 => score.with_source(ScoreSource::Llm),
            _ => score.with_step_id("s0"),
        }
    })
}

/// Step `(id, tokens, nested, failed, word)`: a model call of model `m` or `n`; nested
/// ones hang under `s0` (which itself never has a parent, so nesting is one level).
type StepSpec = (Option<usize>, u64, bool, bool, Option<usize>);

fn build_step((id, tokens, nested, failed, word): StepSpec) -> Step {
    let model = if tokens % 2 == 0 { "m" } else { "n" };
    let mut step = Step::llm_call(model)
        .with_usage(tokens, 1)
        .with_duration_us(10);
    if let Some(id) = id {
        step = step.with_id(format!("s{id}"));
    }
    if nested && id != Some(0) {
        step = step.with_parent_id("s0");
    }
    if failed {
        step = step.with_status(Status::Error);
    }
    if let Some(word) = word {
        step = step.with_name(WORDS[word]);
    }
    step
}

fn step_spec() -> impl Strategy<Value = (u64, bool, bool, Option<usize>)> {
    (
        0u64..3,
        prop::bool::ANY,
        prop::bool::ANY,
        prop::option::of(0..WORDS.len()),
    )
}

/// A trace's header: run_id, created_at, user and env metadata, name, status,
/// session, scores.
type Header = (
    String,
    i64,
    Option<Value>,
    Option<Value>,
    Option<&'static str>,
    Status,
    Option<String>,
    Vec<Score>,
);

fn header() -> impl Strategy<Value = Header> {
    (
        run_id(),
        0i64..4,
        prop::option::of(meta_value()),
        prop::option::of(env_value()),
        prop::option::of(prop::sample::select(vec!["x", "y"])),
        status(),
        session(),
        prop::collection::vec(score(), 0..3),
    )
}

fn assemble(
    (run_id, micros, user, env, name, status, session, scores): Header,
    steps: Vec<Step>,
) -> Trace {
    let mut trace = Trace::new(run_id)
        .with_created_at(at(micros))
        .with_status(status);
    trace.steps = steps;
    if let Some(user) = user {
        trace.metadata.insert("user".into(), user);
    }
    if let Some(env) = env {
        trace.metadata.insert("env".into(), env);
    }
    trace.name = name.map(str::to_owned);
    trace.session_id = session;
    scores.into_iter().for_each(|s| trace.add_score(s));
    trace
}

/// A whole trace: steps `s0`, `s1`, ... in order.
fn trace() -> impl Strategy<Value = Trace> {
    (header(), prop::collection::vec(step_spec(), 0..4)).prop_map(|(header, specs)| {
        let steps = specs
            .into_iter()
            .enumerate()
            .map(|(i, (tokens, nested, failed, word))| {
                build_step((Some(i), tokens, nested && i > 0, failed, word))
            })
            .collect();
        assemble(header, steps)
    })
}

/// A part to merge: steps with distinct ids among `s0..s4` (replacing or adding) or
/// none (appended); a status that is often unset.
fn part() -> impl Strategy<Value = Trace> {
    (
        header(),
        prop::collection::vec((prop::option::of(0usize..5), step_spec()), 0..3),
        prop::bool::ANY,
    )
        .prop_map(|(header, specs, unset)| {
            let mut used = Vec::new();
            let steps = specs
                .into_iter()
                .map(|(id, (tokens, nested, failed, word))| {
                    let id = id.filter(|id| !used.contains(id));
                    used.extend(id);
                    build_step((id, tokens, nested, failed, word))
                })
                .collect();
            let mut part = assemble(header, steps);
            if unset {
                part.status = Status::Unset;
            }
            part
        })
}

/// Cursor run_ids: the stored ones, and ones that fall between, before and after them.
fn cursor_run_id() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => run_id(),
        1 => prop::sample::select(vec!["", "a!", "b0", "\u{10ffff}"]).prop_map(str::to_owned),
    ]
}

/// How often each criterion of a random filter is set: rarely enough that a filter
/// with several of them still selects something most of the time.
const RARE: f64 = 0.15;

/// New v2 criteria: session, text (sometimes empty: invalid), score range (sometimes
/// min > max: invalid).
type V2Criteria = (Option<String>, Option<&'static str>, Option<(u8, u8, bool)>);

fn v2_criteria() -> impl Strategy<Value = V2Criteria> {
    (
        prop::option::weighted(
            RARE,
            prop::sample::select(vec!["s1", "s2"]).prop_map(str::to_owned),
        ),
        prop::option::weighted(RARE, prop::sample::select(&QUERIES[..])),
        prop::option::weighted(RARE, (0u8..3, 0u8..3, prop::bool::ANY)),
    )
}

fn filter() -> impl Strategy<Value = TraceFilter> {
    (
        (
            prop::option::weighted(RARE, meta_value()),
            prop::option::weighted(RARE, env_value()),
            prop::option::weighted(RARE, (0usize..4, 0usize..4)),
            prop::option::weighted(RARE, (0i64..4, 0i64..4)),
            prop::option::weighted(RARE, status()),
            prop::option::weighted(RARE, prop::sample::select(vec!["x", "y"])),
        ),
        v2_criteria(),
        prop::option::weighted(RARE, (0i64..4, cursor_run_id())),
        prop::sample::select(vec![0usize, 0, 0, 1, 2]),
        prop::option::weighted(0.4, 0usize..4),
    )
        .prop_map(
            |(
                (user, env, steps, times, status, name),
                (session, text, score),
                after,
                offset,
                limit,
            )| {
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
                filter.session_id = session;
                filter.text = text.map(str::to_owned);
                if let Some((a, b, open)) = score {
                    let (min, max) = (f64::from(a) / 2.0, f64::from(b) / 2.0);
                    filter = filter.with_score("q", Some(min), Some(max).filter(|_| !open));
                }
                filter.after = after.map(|(micros, run_id)| Cursor::new(at(micros), run_id));
                filter.limit = limit;
                filter
            },
        )
}

/// Grouped stats see more than one group mostly without criteria.
fn broad_filter() -> impl Strategy<Value = TraceFilter> {
    prop_oneof![1 => Just(TraceFilter::new()), 1 => filter()]
}

fn group() -> impl Strategy<Value = GroupBy> {
    prop::sample::select(vec![
        GroupBy::Day,
        GroupBy::Name,
        GroupBy::Session,
        GroupBy::Status,
        GroupBy::Model,
        GroupBy::Metadata("user".into()),
    ])
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
        3 => part().prop_map(Op::Merge),
        1 => filter().prop_map(Op::DeleteWhere),
        2 => (broad_filter(), group()).prop_map(|(f, g)| Op::StatsBy(f, g)),
    ]
}

fn fail(op: &Op, what: String) -> TestCaseError {
    TestCaseError::fail(format!("{op:?}: {what}"))
}

fn check<T: PartialEq + std::fmt::Debug>(
    op: &Op,
    got: trace_store_core::Result<T>,
    want: T,
) -> Result<(), TestCaseError> {
    match got {
        Ok(got) if got == want => Ok(()),
        Ok(got) => Err(fail(op, format!("store answered {got:?}, model {want:?}"))),
        Err(error) => Err(fail(op, format!("store failed: {error}"))),
    }
}

/// For an invalid filter the store must answer `InvalidInput`.
fn check_invalid<T: std::fmt::Debug>(
    op: &Op,
    got: trace_store_core::Result<T>,
) -> Result<(), TestCaseError> {
    match got {
        Err(Error::InvalidInput { .. }) => Ok(()),
        other => Err(fail(
            op,
            format!("C6 expected InvalidInput for an invalid filter, store answered {other:?}"),
        )),
    }
}

fn summaries(
    got: trace_store_core::Result<Vec<trace_store_core::TraceSummary>>,
) -> trace_store_core::Result<Vec<Plain>> {
    got.map(|rows| rows.iter().map(Plain::of_summary).collect())
}

fn check_groups(
    op: &Op,
    got: trace_store_core::Result<Vec<(trace_store_core::GroupKey, trace_store_core::TraceStats)>>,
    want: Vec<(Key, PlainStats)>,
    group: &GroupBy,
) -> Result<(), TestCaseError> {
    let got = got.map_err(|e| fail(op, format!("store failed: {e}")))?;
    let mut got_plain: Vec<(Key, PlainStats)> = got
        .iter()
        .map(|(k, s)| (Key::of(k), PlainStats::of_stats(s)))
        .collect();
    let mut want = want;
    if let GroupBy::Metadata(_) = group {
        // The order of metadata groups is that of their canonical JSON text, which the
        // model does not write out: check the store's keys are ascending, then compare
        // the groups in that order.
        let texts: Vec<String> = got.iter().map(|(k, _)| k.to_string()).collect();
        if texts.windows(2).any(|w| w[0] >= w[1]) {
            return Err(fail(
                op,
                format!("C14 metadata groups not ascending: {texts:?}"),
            ));
        }
        let mut ordered = Vec::new();
        for (key, _) in &got_plain {
            if let Some(at) = want.iter().position(|(k, _)| k == key) {
                ordered.push(want.remove(at));
            }
        }
        ordered.append(&mut want);
        want = ordered;
    }
    if got_plain.len() != want.len()
        || got_plain
            .iter()
            .zip(&want)
            .any(|(g, w)| g.0 != w.0 || g.1 != w.1)
    {
        got_plain.truncate(12);
        return Err(fail(
            op,
            format!("C14 store grouped {got_plain:?}, model {want:?}"),
        ));
    }
    Ok(())
}

fn apply(store: &dyn TraceStore, model: &mut Reference, op: &Op) -> Result<(), TestCaseError> {
    let filter_of = |op: &Op| match op {
        Op::Query(f) | Op::Count(f) | Op::Stats(f) | Op::DeleteWhere(f) | Op::StatsBy(f, _) => {
            Some(f.clone())
        }
        _ => None,
    };
    if let Some(filter) = filter_of(op).filter(invalid) {
        return match op {
            Op::Query(_) => check_invalid(op, store.query(&filter)),
            Op::Count(_) => check_invalid(op, store.count(&filter)),
            Op::Stats(_) => check_invalid(op, store.stats(&filter)),
            Op::DeleteWhere(_) => check_invalid(op, store.delete_where(&filter)),
            Op::StatsBy(_, group) => check_invalid(op, store.stats_by(&filter, group.clone())),
            _ => Ok(()),
        };
    }
    match op {
        Op::Save(trace) => {
            check(op, store.save(trace), trace.run_id.clone())?;
            model.put(trace.clone());
        }
        Op::SaveMany(traces) => {
            let ids = traces.iter().map(|t| t.run_id.clone()).collect();
            check(op, store.save_many(traces), ids)?;
            traces.iter().for_each(|t| model.put(t.clone()));
        }
        Op::Load(run_id) => match (store.load(run_id), model.get(run_id)) {
            (Ok(got), Some(want)) if got == *want => {}
            (Err(Error::NotFound { .. }), None) => {}
            (got, want) => return Err(fail(op, format!("store {got:?}, model {want:?}"))),
        },
        Op::Delete(run_id) => check(op, store.delete(run_id), model.remove(run_id))?,
        Op::List(limit, offset) => {
            let want = model.query(&TraceFilter::new().with_limit(*limit).with_offset(*offset));
            check(op, summaries(store.list(*limit, *offset)), want)?;
        }
        Op::Query(filter) => check(op, summaries(store.query(filter)), model.query(filter))?,
        Op::Count(filter) => check(op, store.count(filter), model.query(filter).len() as u64)?,
        Op::Stats(filter) => check(
            op,
            store.stats(filter).map(|s| PlainStats::of_stats(&s)),
            model.stats(filter),
        )?,
        Op::Merge(part) => {
            let want = model.merge(part);
            check(op, store.merge(part), want)?;
        }
        Op::DeleteWhere(filter) => {
            let doomed = model.query(filter);
            doomed.iter().for_each(|p| {
                model.remove(&p.run_id);
            });
            check(op, store.delete_where(filter), doomed.len() as u64)?;
        }
        Op::StatsBy(filter, group) => {
            let want = model.stats_by(filter, group);
            check_groups(op, store.stats_by(filter, group.clone()), want, group)?;
        }
    }
    Ok(())
}

/// The seed: from [`SEED_ENV`] if set, else a fresh one.
fn seed() -> u64 {
    if let Some(seed) = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return seed;
    }
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}

/// Runs `cases` random sequences of up to 40 operations, each on a fresh store from
/// `fresh`, and panics with the shortest failing sequence if the store and the model
/// ever disagree. The seed is printed, and [`SEED_ENV`] replays it.
pub fn model_based(fresh: &dyn Fn() -> crate::Fresh, cases: u32) {
    let seed = seed();
    eprintln!("model-based test: seed {seed} (replay with {SEED_ENV}={seed})");
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
        let fresh = fresh();
        let mut model = Reference::default();
        for op in &ops {
            apply(fresh.store(), &mut model, op)?;
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!(
            "store disagrees with the reference model (seed {seed}; replay with {SEED_ENV}={seed}): {error}"
        );
    }
}
