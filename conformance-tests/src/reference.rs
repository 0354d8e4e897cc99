//! The reference model of the model-based test, written from the contract's text alone.
//!
//! Nothing here calls core's filter, canonical JSON, summary, merge, search or grouping
//! code: a store that shares a bug with core must still disagree with this model. It is
//! a `Vec` of traces and straightforward loops; it only needs to be right for the
//! traces the generators make (steps nest one level deep under `s0`, never in a loop).

use std::collections::BTreeMap;

use serde_json::{Number, Value};
use trace_store_core::{
    GroupBy, GroupKey, SEARCH_TEXT_MAX_BYTES, Status, Trace, TraceFilter, TraceStats, TraceSummary,
};

/// What the contract says a summary holds, derived by hand.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plain {
    pub(crate) run_id: String,
    pub(crate) name: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) parent_run_id: Option<String>,
    pub(crate) status: Status,
    pub(crate) created_at: i64,
    pub(crate) steps: u64,
    pub(crate) total_ms: f64,
    pub(crate) error_count: u64,
    pub(crate) failed_steps: u64,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cost_nano_usd: i64,
    /// model -> (calls, input, output, cost)
    pub(crate) models: BTreeMap<String, (u64, u64, u64, i64)>,
    pub(crate) metadata: BTreeMap<String, Value>,
    pub(crate) scores: BTreeMap<String, f64>,
}

impl Plain {
    /// Reads a store's summary into the same shape, field by field.
    pub(crate) fn of_summary(s: &TraceSummary) -> Plain {
        Plain {
            run_id: s.run_id.clone(),
            name: s.name.clone(),
            session_id: s.session_id.clone(),
            parent_run_id: s.parent_run_id.clone(),
            status: s.status,
            created_at: s.created_at.as_micros(),
            steps: s.steps as u64,
            total_ms: s.total_ms,
            error_count: s.error_count,
            failed_steps: s.failed_steps,
            input_tokens: s.input_tokens,
            output_tokens: s.output_tokens,
            cost_nano_usd: s.cost_nano_usd,
            models: s
                .models
                .iter()
                .map(|(m, u)| {
                    let usage = (u.calls, u.input_tokens, u.output_tokens, u.cost_nano_usd);
                    (m.clone(), usage)
                })
                .collect(),
            metadata: s.metadata.clone(),
            scores: s.scores.clone(),
        }
    }

    /// The summary of `trace` by the contract: root steps' durations, usage of steps
    /// no descendant of which carries usage, failures not explained by a failed
    /// descendant, trace-level scores with a value (the last per name).
    pub(crate) fn of_trace(trace: &Trace) -> Plain {
        let steps = &trace.steps;
        let parent: Vec<Option<usize>> = steps
            .iter()
            .map(|step| {
                let wanted = step.parent_id.as_deref()?;
                steps.iter().rposition(|s| s.id.as_deref() == Some(wanted))
            })
            .collect();
        let carries = |i: usize| {
            let u = &steps[i].usage;
            u.input_tokens
                + u.output_tokens
                + u.cache_read_input_tokens
                + u.cache_creation_input_tokens
                + u.reasoning_tokens
                > 0
                || steps[i].cost_nano_usd != 0
        };
        // below[i]: some descendant of i has the property.
        let mark = |has: &dyn Fn(usize) -> bool| {
            let mut below = vec![false; steps.len()];
            for k in (0..steps.len()).filter(|k| has(*k)) {
                let mut up = parent[k];
                for _ in 0..steps.len() {
                    let Some(p) = up else { break };
                    below[p] = true;
                    up = parent[p];
                }
            }
            below
        };
        let covered = mark(&carries);
        let error_below = mark(&|k| steps[k].status == Status::Error);
        let mut plain = Plain {
            run_id: trace.run_id.clone(),
            name: trace.name.clone(),
            session_id: trace.session_id.clone(),
            parent_run_id: trace.parent_run_id.clone(),
            status: trace.status,
            created_at: trace.created_at.as_micros(),
            steps: steps.len() as u64,
            total_ms: 0.0,
            error_count: u64::from(trace.status == Status::Error),
            failed_steps: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_nano_usd: 0,
            models: BTreeMap::new(),
            metadata: trace.metadata.clone(),
            scores: BTreeMap::new(),
        };
        let mut root_us = 0u64;
        for (i, step) in steps.iter().enumerate() {
            if parent[i].is_none() {
                root_us += step.duration_us;
            }
            if step.status == Status::Error {
                plain.error_count += 1;
                plain.failed_steps += u64::from(!error_below[i]);
            }
            if !carries(i) || covered[i] {
                continue;
            }
            plain.input_tokens += step.usage.input_tokens;
            plain.output_tokens += step.usage.output_tokens;
            plain.cost_nano_usd += step.cost_nano_usd;
            if let Some(model) = &step.model {
                let e = plain.models.entry(model.clone()).or_default();
                *e = (
                    e.0 + 1,
                    e.1 + step.usage.input_tokens,
                    e.2 + step.usage.output_tokens,
                    e.3 + step.cost_nano_usd,
                );
            }
        }
        plain.total_ms = root_us as f64 / 1000.0;
        for score in &trace.scores {
            if let (None, Some(value)) = (&score.step_id, score.value) {
                plain.scores.insert(score.name.clone(), value);
            }
        }
        plain
    }
}

/// Totals as the contract defines `stats`.
#[derive(Clone, Debug, Default)]
pub(crate) struct PlainStats {
    pub(crate) count: u64,
    pub(crate) steps: u64,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cost_nano_usd: i64,
    pub(crate) total_ms: f64,
    pub(crate) error_count: u64,
    pub(crate) failed_steps: u64,
    pub(crate) by_status: BTreeMap<Status, u64>,
    pub(crate) by_model: BTreeMap<String, (u64, u64, u64, i64)>,
}

impl PartialEq for PlainStats {
    fn eq(&self, other: &PlainStats) -> bool {
        (
            self.count,
            self.steps,
            self.input_tokens,
            self.output_tokens,
            self.cost_nano_usd,
            self.error_count,
            self.failed_steps,
            &self.by_status,
            &self.by_model,
        ) == (
            other.count,
            other.steps,
            other.input_tokens,
            other.output_tokens,
            other.cost_nano_usd,
            other.error_count,
            other.failed_steps,
            &other.by_status,
            &other.by_model,
        ) && (self.total_ms - other.total_ms).abs() < 1e-6
    }
}

impl PlainStats {
    /// Adds a trace; with `only_model`, its usage of that model only.
    pub(crate) fn add(&mut self, p: &Plain, only_model: Option<&str>) {
        self.count += 1;
        self.steps += p.steps;
        self.total_ms += p.total_ms;
        self.error_count += p.error_count;
        self.failed_steps += p.failed_steps;
        *self.by_status.entry(p.status).or_default() += 1;
        if only_model.is_none() {
            self.input_tokens += p.input_tokens;
            self.output_tokens += p.output_tokens;
            self.cost_nano_usd += p.cost_nano_usd;
        }
        for (model, usage) in &p.models {
            if only_model.is_some_and(|only| only != model) {
                continue;
            }
            if only_model.is_some() {
                self.input_tokens += usage.1;
                self.output_tokens += usage.2;
                self.cost_nano_usd += usage.3;
            }
            let e = self.by_model.entry(model.clone()).or_default();
            *e = (e.0 + usage.0, e.1 + usage.1, e.2 + usage.2, e.3 + usage.3);
        }
    }

    /// Reads a store's stats into the same shape.
    pub(crate) fn of_stats(s: &TraceStats) -> PlainStats {
        PlainStats {
            count: s.count,
            steps: s.steps,
            input_tokens: s.input_tokens,
            output_tokens: s.output_tokens,
            cost_nano_usd: s.cost_nano_usd,
            total_ms: s.total_ms,
            error_count: s.error_count,
            failed_steps: s.failed_steps,
            by_status: s.by_status.clone(),
            by_model: s
                .by_model
                .iter()
                .map(|(m, u)| {
                    let usage = (u.calls, u.input_tokens, u.output_tokens, u.cost_nano_usd);
                    (m.clone(), usage)
                })
                .collect(),
        }
    }
}

/// JSON equality by value: numbers by their exact value (`1 == 1.0 == -0.0 + 1`),
/// strings, booleans and null by identity, arrays in order, objects by content.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => exact(x) == exact(y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// A number as an exact integer when it is one, else its float.
#[derive(PartialEq)]
enum Exact {
    Int(i128),
    Float(f64),
}

fn exact(n: &Number) -> Exact {
    if let Some(i) = n.as_i64() {
        return Exact::Int(i128::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Exact::Int(i128::from(u));
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    // Floats this large are integers that an i128 holds exactly.
    if f.fract() == 0.0 && f.abs() < 1e38 {
        Exact::Int(f as i128)
    } else {
        Exact::Float(f)
    }
}

/// The searchable text by the contract: pieces in order, each lowercased and followed
/// by a newline, JSON strings decoded, capped at [`SEARCH_TEXT_MAX_BYTES`].
pub(crate) fn search_text(trace: &Trace) -> String {
    let mut pieces: Vec<String> = Vec::new();
    let mut push = |piece: Option<&str>| {
        if let Some(p) = piece.filter(|p| !p.is_empty()) {
            pieces.push(p.to_owned());
        }
    };
    push(trace.name.as_deref());
    push(trace.session_id.as_deref());
    if let Some(e) = &trace.error {
        push(e.error_type.as_deref());
        push(Some(&e.message));
    }
    let mut leaves = Vec::new();
    trace
        .metadata
        .values()
        .for_each(|v| string_leaves(v, &mut leaves));
    leaves.iter().for_each(|l| push(Some(l)));
    for step in &trace.steps {
        push(step.name.as_deref());
        push(step.model.as_deref());
        push(step.tool.as_ref().map(|t| t.name.as_str()));
        if let Some(e) = &step.error {
            push(e.error_type.as_deref());
            push(Some(&e.message));
        }
        let mut leaves = Vec::new();
        for value in [&step.input, &step.output].into_iter().flatten() {
            string_leaves(value, &mut leaves);
        }
        step.attributes
            .values()
            .for_each(|v| string_leaves(v, &mut leaves));
        leaves.iter().for_each(|l| push(Some(l)));
    }
    let mut text = String::new();
    for piece in pieces {
        for c in (piece.to_lowercase() + "\n").chars() {
            if text.len() + c.len_utf8() > SEARCH_TEXT_MAX_BYTES {
                return text;
            }
            text.push(c);
        }
    }
    text
}

fn string_leaves(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| string_leaves(v, out)),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.into_iter().for_each(|k| string_leaves(&map[k], out));
        }
        _ => {}
    }
}

/// True if the filter contradicts itself or cannot be evaluated.
pub(crate) fn invalid(f: &TraceFilter) -> bool {
    let score_bad = f.score.as_ref().is_some_and(|r| {
        r.name.is_empty()
            || [r.min, r.max].iter().flatten().any(|b| !b.is_finite())
            || matches!((r.min, r.max), (Some(a), Some(b)) if a > b)
    });
    f.text.as_deref() == Some("")
        || score_bad
        || matches!((f.min_steps, f.max_steps), (Some(a), Some(b)) if a > b)
        || matches!((f.since, f.until), (Some(a), Some(b)) if a > b)
}

/// The store's contents: traces in the order they were first saved.
#[derive(Debug, Default)]
pub(crate) struct Reference {
    pub(crate) traces: Vec<Trace>,
}

impl Reference {
    pub(crate) fn get(&self, run_id: &str) -> Option<&Trace> {
        self.traces.iter().find(|t| t.run_id == run_id)
    }

    pub(crate) fn put(&mut self, trace: Trace) {
        match self.traces.iter_mut().find(|t| t.run_id == trace.run_id) {
            Some(slot) => *slot = trace,
            None => self.traces.push(trace),
        }
    }

    pub(crate) fn remove(&mut self, run_id: &str) -> bool {
        let before = self.traces.len();
        self.traces.retain(|t| t.run_id != run_id);
        self.traces.len() != before
    }

    /// What `query(filter)` returns (the filter must be valid).
    pub(crate) fn query(&self, f: &TraceFilter) -> Vec<Plain> {
        let mut hits: Vec<Plain> = Vec::new();
        for trace in &self.traces {
            let p = Plain::of_trace(trace);
            let meta_ok = f
                .metadata_match
                .iter()
                .all(|(k, want)| p.metadata.get(k).is_some_and(|got| json_equal(got, want)));
            let score_ok = f.score.as_ref().is_none_or(|r| {
                p.scores.get(&r.name).is_some_and(|v| {
                    r.min.is_none_or(|min| *v >= min) && r.max.is_none_or(|max| *v <= max)
                })
            });
            let text_ok = f
                .text
                .as_ref()
                .is_none_or(|q| search_text(trace).contains(&q.to_lowercase()));
            let after_ok = f.after.as_ref().is_none_or(|c| {
                (p.created_at, p.run_id.as_str()) < (c.created_at.as_micros(), c.run_id.as_str())
            });
            if meta_ok
                && score_ok
                && text_ok
                && after_ok
                && f.min_steps.is_none_or(|m| p.steps >= m as u64)
                && f.max_steps.is_none_or(|m| p.steps <= m as u64)
                && f.since.is_none_or(|t| p.created_at >= t.as_micros())
                && f.until.is_none_or(|t| p.created_at <= t.as_micros())
                && f.status.is_none_or(|s| p.status == s)
                && (f.name.is_none() || f.name == p.name)
                && (f.session_id.is_none() || f.session_id == p.session_id)
                && (f.parent_run_id.is_none() || f.parent_run_id == p.parent_run_id)
            {
                hits.push(p);
            }
        }
        hits.sort_by(|a, b| (b.created_at, &b.run_id).cmp(&(a.created_at, &a.run_id)));
        hits.into_iter()
            .skip(f.offset)
            .take(f.limit.unwrap_or(usize::MAX))
            .collect()
    }

    pub(crate) fn stats(&self, f: &TraceFilter) -> PlainStats {
        let mut stats = PlainStats::default();
        self.query(f).iter().for_each(|p| stats.add(p, None));
        stats
    }

    /// `merge` by the contract's fold.
    pub(crate) fn merge(&mut self, part: &Trace) -> Trace {
        let Some(stored) = self.get(&part.run_id) else {
            self.put(part.clone());
            return part.clone();
        };
        let mut t = stored.clone();
        t.schema_version = t.schema_version.max(part.schema_version);
        if part.name.is_some() {
            t.name = part.name.clone();
        }
        if part.parent_run_id.is_some() {
            t.parent_run_id = part.parent_run_id.clone();
        }
        if part.session_id.is_some() {
            t.session_id = part.session_id.clone();
        }
        if part.ended_at.is_some() {
            t.ended_at = part.ended_at;
        }
        if part.error.is_some() {
            t.error = part.error.clone();
        }
        if part.status != Status::Unset {
            t.status = part.status;
        }
        if part.created_at < t.created_at {
            t.created_at = part.created_at;
        }
        for (k, v) in &part.metadata {
            t.metadata.insert(k.clone(), v.clone());
        }
        for step in &part.steps {
            let same = step
                .id
                .as_ref()
                .and_then(|id| t.steps.iter().rposition(|s| s.id.as_ref() == Some(id)));
            match same {
                Some(i) => t.steps[i] = step.clone(),
                None => t.steps.push(step.clone()),
            }
        }
        for score in &part.scores {
            let same = t.scores.iter().position(|s| {
                s.name == score.name && s.step_id == score.step_id && s.source == score.source
            });
            match same {
                Some(i) => t.scores[i] = score.clone(),
                None => t.scores.push(score.clone()),
            }
        }
        self.put(t.clone());
        t
    }
}

/// A group's key as the model sees it.
#[derive(Clone, Debug)]
pub(crate) enum Key {
    /// Days since 1970-01-01, UTC.
    Day(i64),
    Name(Option<String>),
    Session(Option<String>),
    Status(Status),
    Model(String),
    Meta(Value),
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        match (self, other) {
            (Key::Day(a), Key::Day(b)) => a == b,
            (Key::Name(a), Key::Name(b)) | (Key::Session(a), Key::Session(b)) => a == b,
            (Key::Status(a), Key::Status(b)) => a == b,
            (Key::Model(a), Key::Model(b)) => a == b,
            (Key::Meta(a), Key::Meta(b)) => json_equal(a, b),
            _ => false,
        }
    }
}

impl Key {
    /// Reads a store's group key. Metadata keys are canonical JSON text.
    pub(crate) fn of(key: &GroupKey) -> Key {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
        match key {
            GroupKey::Day(day) => Key::Day(day.signed_duration_since(epoch).num_days()),
            GroupKey::Name(n) => Key::Name(n.clone()),
            GroupKey::Session(s) => Key::Session(s.clone()),
            GroupKey::Status(s) => Key::Status(*s),
            GroupKey::Model(m) => Key::Model(m.clone()),
            GroupKey::Metadata(text) => {
                Key::Meta(serde_json::from_str(text).unwrap_or(Value::String(text.clone())))
            }
            other => Key::Name(Some(format!("unknown group key {other:?}"))),
        }
    }
}

impl Reference {
    /// Grouped stats by the contract: members are what `query(filter)` returns. Groups
    /// are ordered Day descending, others ascending, except metadata groups, whose
    /// order (by canonical JSON text) the caller checks on the store's keys.
    pub(crate) fn stats_by(&self, f: &TraceFilter, group: &GroupBy) -> Vec<(Key, PlainStats)> {
        let mut groups: Vec<(Key, PlainStats)> = Vec::new();
        let mut add = |key: Key, p: &Plain, only: Option<&str>| match groups
            .iter_mut()
            .find(|(k, _)| *k == key)
        {
            Some((_, stats)) => stats.add(p, only),
            None => {
                let mut stats = PlainStats::default();
                stats.add(p, only);
                groups.push((key, stats));
            }
        };
        for p in self.query(f) {
            match group {
                GroupBy::Day => add(Key::Day(p.created_at.div_euclid(86_400_000_000)), &p, None),
                GroupBy::Name => add(Key::Name(p.name.clone()), &p, None),
                GroupBy::Session => add(Key::Session(p.session_id.clone()), &p, None),
                GroupBy::Status => add(Key::Status(p.status), &p, None),
                GroupBy::Model => {
                    for model in p.models.keys() {
                        add(Key::Model(model.clone()), &p, Some(model));
                    }
                }
                GroupBy::Metadata(key) => {
                    if let Some(v) = p.metadata.get(key) {
                        add(Key::Meta(v.clone()), &p, None);
                    }
                }
                _ => {}
            }
        }
        let rank = |k: &Key| match k {
            Key::Day(d) => (0, -d, None, None),
            Key::Name(n) | Key::Session(n) => (0, 0, n.clone(), None),
            Key::Status(s) => (0, *s as i64, None, None),
            Key::Model(m) => (0, 0, Some(m.clone()), None),
            Key::Meta(_) => (0, 0, None, Some(())),
        };
        groups.sort_by_key(|(k, _)| rank(k));
        groups
    }
}
