//! A trace held as one compact string instead of a tree of allocations.
//!
//! A 4 KB selectools trace is 10-11 KB as a `Trace` (every `Step` is ~400 bytes of
//! fields, every map a node of eleven slots, every string its own allocation); encoded
//! here it is about its JSON size without the keys and quotes. `load` decodes it, which
//! allocates exactly what `Trace::clone` allocates and reads far less memory than the
//! tree, so it costs about a clone; `save` encodes into one buffer instead of cloning.
//!
//! Framing bytes (tags, lengths, numbers) are all ASCII and strings are copied as they
//! are, so the whole encoding is a valid `str`: decoding slices strings out of it at
//! positions it wrote, with no UTF-8 check. Numbers are written 6 bits per byte, the
//! seventh bit saying another byte follows.
//!
//! Exactness: every field of the model is written and read back in a fixed order (the
//! test `the_codec_knows_every_field` fails when the model gains a field), and JSON
//! numbers are written as what they are (`u64`, `i64`, `f64`, or their text if a build
//! with `arbitrary_precision` holds one that none of them spells the same).

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};
use trace_store_core::{
    ErrorInfo, Score, ScoreSource, Status, Step, StepKind, Timestamp, ToolCall, Trace, Usage,
};

thread_local! {
    /// Where each thread encodes: the stored copy is then one allocation of the exact
    /// size, where a growing buffer would be reallocated two or three times per trace.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A scratch buffer past this size is dropped after use, not kept for the next trace.
const SCRATCH_KEPT: usize = 1 << 20;

/// Encodes `trace`, which must be valid (`Trace::validate`).
pub(crate) fn encode(trace: &Trace) -> Box<str> {
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        Writer(scratch).trace(trace);
        let body = Box::from(scratch.as_str());
        if scratch.capacity() > SCRATCH_KEPT {
            *scratch = String::new();
        }
        body
    })
}

/// Decodes what [`encode`] wrote; `None` only if `body` is not such an encoding.
pub(crate) fn decode(body: &str) -> Option<Trace> {
    let mut input = Reader { body, at: 0 };
    let trace = input.trace()?;
    (input.at == body.len()).then_some(trace)
}

const MORE: u8 = 0x40;
const BITS: u8 = 0x3f;

struct Writer<'a>(&'a mut String);

impl Writer<'_> {
    fn byte(&mut self, byte: u8) {
        self.0.push(char::from(byte));
    }

    fn uint(&mut self, mut n: u64) {
        while n > u64::from(BITS) {
            self.byte(MORE | (n as u8 & BITS));
            n >>= 6;
        }
        self.byte(n as u8);
    }

    fn int(&mut self, n: i64) {
        self.uint(((n << 1) ^ (n >> 63)) as u64);
    }

    fn len(&mut self, n: usize) {
        self.uint(n as u64);
    }

    fn flag(&mut self, set: bool) {
        self.byte(u8::from(set));
    }

    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.push_str(s);
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.uint(0),
            Some(s) => {
                self.len(s.len() + 1);
                self.0.push_str(s);
            }
        }
    }

    fn time(&mut self, t: Timestamp) {
        self.int(t.as_micros());
    }

    fn opt_time(&mut self, t: Option<Timestamp>) {
        self.flag(t.is_some());
        if let Some(t) = t {
            self.time(t);
        }
    }

    fn status(&mut self, status: Status) {
        let code = Status::ALL.iter().position(|s| *s == status).unwrap_or(0);
        self.len(code);
    }

    fn map(&mut self, map: &BTreeMap<String, Value>) {
        self.len(map.len());
        for (key, value) in map {
            self.str(key);
            self.value(value);
        }
    }

    fn opt_value(&mut self, value: Option<&Value>) {
        self.flag(value.is_some());
        if let Some(value) = value {
            self.value(value);
        }
    }

    fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.byte(b'n'),
            Value::Bool(false) => self.byte(b'f'),
            Value::Bool(true) => self.byte(b't'),
            Value::Number(n) => self.number(n),
            Value::String(s) => {
                self.byte(b's');
                self.str(s);
            }
            Value::Array(items) => {
                self.byte(b'a');
                self.len(items.len());
                items.iter().for_each(|item| self.value(item));
            }
            Value::Object(map) => {
                self.byte(b'o');
                self.len(map.len());
                for (key, value) in map {
                    self.str(key);
                    self.value(value);
                }
            }
        }
    }

    fn number(&mut self, n: &Number) {
        if let Some(u) = n.as_u64().filter(|&u| Number::from(u) == *n) {
            self.byte(b'u');
            self.uint(u);
        } else if let Some(i) = n.as_i64().filter(|&i| Number::from(i) == *n) {
            self.byte(b'i');
            self.int(i);
        } else if let Some(f) = n
            .as_f64()
            .filter(|&f| Number::from_f64(f).as_ref() == Some(n))
        {
            self.byte(b'd');
            self.uint(f.to_bits());
        } else {
            self.byte(b'N');
            self.str(&n.to_string());
        }
    }

    fn error(&mut self, error: Option<&ErrorInfo>) {
        self.flag(error.is_some());
        if let Some(error) = error {
            self.opt_str(error.error_type.as_deref());
            self.str(&error.message);
            self.opt_str(error.stacktrace.as_deref());
        }
    }

    fn trace(&mut self, trace: &Trace) {
        self.uint(u64::from(trace.schema_version));
        self.str(&trace.run_id);
        self.opt_str(trace.parent_run_id.as_deref());
        self.opt_str(trace.name.as_deref());
        self.opt_str(trace.session_id.as_deref());
        self.time(trace.created_at);
        self.opt_time(trace.ended_at);
        self.status(trace.status);
        self.error(trace.error.as_ref());
        self.map(&trace.metadata);
        self.len(trace.steps.len());
        trace.steps.iter().for_each(|step| self.step(step));
        self.len(trace.scores.len());
        trace.scores.iter().for_each(|score| self.score(score));
    }

    fn step(&mut self, step: &Step) {
        self.opt_str(step.id.as_deref());
        self.opt_str(step.parent_id.as_deref());
        self.str(step.kind.as_str());
        self.opt_str(step.name.as_deref());
        self.opt_time(step.started_at);
        self.uint(step.duration_us);
        self.status(step.status);
        self.opt_str(step.model.as_deref());
        self.opt_str(step.provider.as_deref());
        let usage = &step.usage;
        self.flag(!usage.is_zero());
        if !usage.is_zero() {
            self.uint(usage.input_tokens);
            self.uint(usage.output_tokens);
            self.uint(usage.cache_read_input_tokens);
            self.uint(usage.cache_creation_input_tokens);
            self.uint(usage.reasoning_tokens);
        }
        self.int(step.cost_nano_usd);
        self.flag(step.tool.is_some());
        if let Some(tool) = &step.tool {
            self.str(&tool.name);
            self.opt_str(tool.call_id.as_deref());
        }
        self.opt_value(step.input.as_ref());
        self.opt_value(step.output.as_ref());
        self.error(step.error.as_ref());
        self.map(&step.attributes);
    }

    fn score(&mut self, score: &Score) {
        self.str(&score.name);
        self.flag(score.value.is_some());
        if let Some(value) = score.value {
            self.uint(value.to_bits());
        }
        self.opt_str(score.label.as_deref());
        self.opt_str(score.comment.as_deref());
        self.str(score.source.as_str());
        self.opt_str(score.step_id.as_deref());
        self.time(score.created_at);
    }
}

struct Reader<'a> {
    body: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let byte = *self.body.as_bytes().get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn uint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.byte()?;
            n |= u64::from(byte & BITS).checked_shl(shift)?;
            if byte & MORE == 0 {
                return Some(n);
            }
            shift += 6;
        }
    }

    fn int(&mut self) -> Option<i64> {
        let n = self.uint()?;
        Some((n >> 1) as i64 ^ -((n & 1) as i64))
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.uint()?).ok()
    }

    fn flag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn slice(&mut self, len: usize) -> Option<&'a str> {
        let s = self.body.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(s)
    }

    fn string(&mut self) -> Option<String> {
        let len = self.len()?;
        self.slice(len).map(str::to_owned)
    }

    fn opt_string(&mut self) -> Option<Option<String>> {
        match self.len()? {
            0 => Some(None),
            n => self.slice(n - 1).map(|s| Some(s.to_owned())),
        }
    }

    fn time(&mut self) -> Option<Timestamp> {
        Timestamp::from_micros(self.int()?).ok()
    }

    fn opt_time(&mut self) -> Option<Option<Timestamp>> {
        if self.flag()? {
            self.time().map(Some)
        } else {
            Some(None)
        }
    }

    fn status(&mut self) -> Option<Status> {
        Status::ALL.get(self.len()?).copied()
    }

    fn map(&mut self) -> Option<BTreeMap<String, Value>> {
        let mut map = BTreeMap::new();
        for _ in 0..self.len()? {
            let key = self.string()?;
            map.insert(key, self.value()?);
        }
        Some(map)
    }

    fn opt_value(&mut self) -> Option<Option<Value>> {
        if self.flag()? {
            self.value().map(Some)
        } else {
            Some(None)
        }
    }

    fn value(&mut self) -> Option<Value> {
        Some(match self.byte()? {
            b'n' => Value::Null,
            b'f' => Value::Bool(false),
            b't' => Value::Bool(true),
            b'u' => Value::Number(self.uint()?.into()),
            b'i' => Value::Number(self.int()?.into()),
            b'd' => Value::Number(Number::from_f64(f64::from_bits(self.uint()?))?),
            b'N' => Value::Number(self.string()?.parse().ok()?),
            b's' => Value::String(self.string()?),
            b'a' => {
                let len = self.len()?;
                // Capped: a length is only trusted as far as there are bytes for it.
                let mut items = Vec::with_capacity(len.min(self.body.len() - self.at));
                for _ in 0..len {
                    items.push(self.value()?);
                }
                Value::Array(items)
            }
            b'o' => {
                let mut map = Map::new();
                for _ in 0..self.len()? {
                    let key = self.string()?;
                    map.insert(key, self.value()?);
                }
                Value::Object(map)
            }
            _ => return None,
        })
    }

    fn error(&mut self) -> Option<Option<ErrorInfo>> {
        if !self.flag()? {
            return Some(None);
        }
        let error_type = self.opt_string()?;
        let mut error = ErrorInfo::new(self.string()?);
        error.error_type = error_type;
        error.stacktrace = self.opt_string()?;
        Some(Some(error))
    }

    fn trace(&mut self) -> Option<Trace> {
        let schema_version = u32::try_from(self.uint()?).ok()?;
        let mut trace = Trace::new(self.string()?);
        trace.schema_version = schema_version;
        trace.parent_run_id = self.opt_string()?;
        trace.name = self.opt_string()?;
        trace.session_id = self.opt_string()?;
        trace.created_at = self.time()?;
        trace.ended_at = self.opt_time()?;
        trace.status = self.status()?;
        trace.error = self.error()?;
        trace.metadata = self.map()?;
        let steps = self.len()?;
        trace.steps = Vec::with_capacity(steps.min(self.body.len() - self.at));
        for _ in 0..steps {
            trace.steps.push(self.step()?);
        }
        let scores = self.len()?;
        trace.scores = Vec::with_capacity(scores.min(self.body.len() - self.at));
        for _ in 0..scores {
            trace.scores.push(self.score()?);
        }
        Some(trace)
    }

    fn step(&mut self) -> Option<Step> {
        let id = self.opt_string()?;
        let parent_id = self.opt_string()?;
        let len = self.len()?;
        let mut step = Step::new(StepKind::from_name(self.slice(len)?));
        step.id = id;
        step.parent_id = parent_id;
        step.name = self.opt_string()?;
        step.started_at = self.opt_time()?;
        step.duration_us = self.uint()?;
        step.status = self.status()?;
        step.model = self.opt_string()?;
        step.provider = self.opt_string()?;
        if self.flag()? {
            let mut usage = Usage::new(self.uint()?, self.uint()?);
            usage.cache_read_input_tokens = self.uint()?;
            usage.cache_creation_input_tokens = self.uint()?;
            usage.reasoning_tokens = self.uint()?;
            step.usage = usage;
        }
        step.cost_nano_usd = self.int()?;
        if self.flag()? {
            let mut tool = ToolCall::new(self.string()?);
            tool.call_id = self.opt_string()?;
            step.tool = Some(tool);
        }
        step.input = self.opt_value()?;
        step.output = self.opt_value()?;
        step.error = self.error()?;
        step.attributes = self.map()?;
        Some(step)
    }

    fn score(&mut self) -> Option<Score> {
        let mut score = Score::new(self.string()?);
        if self.flag()? {
            score.value = Some(f64::from_bits(self.uint()?));
        }
        score.label = self.opt_string()?;
        score.comment = self.opt_string()?;
        let len = self.len()?;
        score.source = ScoreSource::from_name(self.slice(len)?);
        score.step_id = self.opt_string()?;
        score.created_at = self.time()?;
        Some(score)
    }
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
