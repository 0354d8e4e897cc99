//! What the agent's thread keeps of a span: a compact record of the raw field values,
//! a step number and raw clock readings. Mapping, ids, JSON and capture happen on the
//! writer thread ([`super::build`]).

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use quanta::Clock;
use tracing::field::{Field, Visit};
use tracing::{Level, Metadata};

/// One span, as recorded on the agent's side. Its values are not captured yet, so its
/// `Debug` shows no field value.
#[derive(Clone)]
pub(crate) struct SpanRecord {
    /// The step number within the run (the step id is its zero-padded hex form).
    pub(crate) id: u64,
    /// The parent's step number; 0 for none.
    pub(crate) parent: u64,
    pub(crate) name: &'static str,
    pub(crate) start: Ticks,
    /// Set when the span closes.
    pub(crate) end: Ticks,
    /// The run's root span: its close ends the run.
    pub(crate) is_root: bool,
    /// Closed while its thread panicked.
    pub(crate) panicked: bool,
    /// Field values in the order they were recorded (a later value wins).
    pub(crate) fields: Fields,
    pub(crate) events: Vec<EventRecord>,
}

/// A span's field values.
pub(crate) type Fields = Vec<(&'static str, Val)>;

impl fmt::Debug for SpanRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanRecord")
            .field("id", &self.id)
            .field("parent", &self.parent)
            .field("name", &self.name)
            .field(
                "fields",
                &self.fields.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

/// An event inside a span.
#[derive(Clone, Debug)]
pub(crate) struct EventRecord {
    /// The `message` field, if any.
    pub(crate) message: Option<ShortStr>,
    pub(crate) name: &'static str,
    pub(crate) level: Level,
    pub(crate) time: Ticks,
    pub(crate) fields: Vec<(&'static str, Val)>,
}

/// A field value as `tracing` handed it over, owned.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    Str(ShortStr),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

const INLINE: usize = 30;

/// A string kept inline when short (model, tool and operation names), so recording
/// one does not allocate.
#[derive(Clone)]
pub(crate) enum ShortStr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(String),
}

impl ShortStr {
    fn new() -> ShortStr {
        ShortStr::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }

    pub(crate) fn from_str(text: &str) -> ShortStr {
        let mut short = ShortStr::new();
        short.push_str(text);
        short
    }

    fn from_debug(value: &dyn fmt::Debug) -> ShortStr {
        let mut short = ShortStr::new();
        // Writing into memory cannot fail; a Debug impl that errs leaves what it wrote.
        let _ = write!(short, "{value:?}");
        short
    }

    fn push_str(&mut self, text: &str) {
        match self {
            ShortStr::Inline { len, bytes } => {
                let used = usize::from(*len);
                if let Some(slot) = bytes.get_mut(used..used + text.len()) {
                    slot.copy_from_slice(text.as_bytes());
                    *len += text.len() as u8;
                } else {
                    let mut heap = String::with_capacity(used + text.len());
                    heap.push_str(self.as_str());
                    heap.push_str(text);
                    *self = ShortStr::Heap(heap);
                }
            }
            ShortStr::Heap(heap) => heap.push_str(text),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Only whole `&str`s are ever copied in, so the bytes are UTF-8.
            ShortStr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            ShortStr::Heap(heap) => heap,
        }
    }
}

impl fmt::Write for ShortStr {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.push_str(text);
        Ok(())
    }
}

impl fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A raw reading of the fastest monotonic clock (the TSC, through `quanta`, where it
/// is reliable; else the OS's monotonic clock): a few ns to take, turned into Unix
/// nanoseconds only on the writer thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticks(u64);

/// The clock, and one wall-clock reading taken beside a raw reading at first use: raw
/// readings are placed on the Unix time line from there, so times never run backwards.
struct Anchor {
    clock: Clock,
    raw: u64,
    unix_ns: i64,
}

static ANCHOR: LazyLock<Anchor> = LazyLock::new(|| {
    let clock = Clock::new();
    let raw = clock.raw();
    let unix_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
        });
    Anchor {
        clock,
        raw,
        unix_ns,
    }
});

impl Ticks {
    pub(crate) fn now() -> Ticks {
        Ticks(ANCHOR.clock.raw())
    }

    /// Nanoseconds since the Unix epoch.
    pub(crate) fn unix_ns(self) -> i64 {
        let anchor = &*ANCHOR;
        let since = anchor.clock.delta_as_nanos(anchor.raw, self.0);
        anchor
            .unix_ns
            .saturating_add(i64::try_from(since).unwrap_or(i64::MAX))
    }
}

/// What the agent's side must know of a field as it is recorded.
pub(crate) mod flag {
    /// A `gen_ai.*` field: the span is a GenAI span.
    pub(crate) const GENAI: u8 = 1;
    /// `trace_store.run_id`: names the run.
    pub(crate) const RUN_ID: u8 = 2;
    /// `gen_ai.conversation.id` or `session.id`: the run's session.
    pub(crate) const SESSION: u8 = 4;
}

fn flags_of(name: &str) -> u8 {
    match name {
        "trace_store.run_id" => flag::RUN_ID,
        trace_store_core::genai::CONVERSATION_ID => flag::SESSION | flag::GENAI,
        trace_store_core::genai::SESSION_ID => flag::SESSION,
        name if name.starts_with("gen_ai.") => flag::GENAI,
        _ => 0,
    }
}

type FlagTable = &'static [u8];

/// The flags of each field of a callsite, by field index: computed once per callsite
/// (string matches), then found through a small per-thread cache keyed by the
/// callsite's metadata address.
pub(crate) fn callsite_flags(metadata: &'static Metadata<'static>) -> FlagTable {
    const SLOTS: usize = 64;
    thread_local! {
        static CACHE: [Cell<(usize, FlagTable)>; SLOTS] =
            const { [const { Cell::new((0, &[])) }; SLOTS] };
    }
    static TABLES: LazyLock<Mutex<HashMap<usize, FlagTable>>> = LazyLock::new(Mutex::default);
    let key = std::ptr::from_ref(metadata) as usize;
    let slot = (key >> 4) % SLOTS;
    CACHE.with(|cache| {
        let (cached_key, table) = cache[slot].get();
        if cached_key == key {
            return table;
        }
        // Callsites are static and few, so each table is made once and kept for good.
        let table: FlagTable = *TABLES.lock().entry(key).or_insert_with(|| {
            let flags: Vec<u8> = metadata
                .fields()
                .iter()
                .map(|f| flags_of(f.name()))
                .collect();
            Box::leak(flags.into_boxed_slice())
        });
        cache[slot].set((key, table));
        table
    })
}

/// Collects a span's field values, noting the ones the agent's side acts on.
pub(crate) struct RecordVisitor<'a> {
    fields: &'a mut Fields,
    flags: FlagTable,
    /// Saw a `gen_ai.*` field.
    pub(crate) genai: bool,
    pub(crate) run_id: Option<String>,
    pub(crate) session_id: Option<String>,
}

impl<'a> RecordVisitor<'a> {
    pub(crate) fn new(fields: &'a mut Fields, flags: FlagTable) -> Self {
        RecordVisitor {
            fields,
            flags,
            genai: false,
            run_id: None,
            session_id: None,
        }
    }

    fn put(&mut self, field: &Field, value: Val) {
        let flags = self.flags.get(field.index()).copied().unwrap_or(0);
        if flags != 0 {
            self.genai |= flags & flag::GENAI != 0;
            if flags & (flag::RUN_ID | flag::SESSION) != 0 {
                let text = value.to_text();
                if flags & flag::RUN_ID != 0 {
                    self.run_id = Some(text);
                } else {
                    self.session_id = Some(text);
                }
                // Header fields, not step fields: the writer does not need them.
                return;
            }
        }
        self.fields.push((field.name(), value));
    }
}

impl Val {
    fn to_text(&self) -> String {
        match self {
            Val::Str(text) => text.as_str().to_owned(),
            Val::I64(number) => number.to_string(),
            Val::U64(number) => number.to_string(),
            Val::F64(number) => number.to_string(),
            Val::Bool(flag) => flag.to_string(),
        }
    }
}

/// `Visit` for a visitor with a `put(&Field, Val)`: every kind of value becomes a
/// [`Val`] the same way, whichever visitor collects it.
macro_rules! visit_by_put {
    ($visitor:ty) => {
        impl Visit for $visitor {
            fn record_str(&mut self, field: &Field, value: &str) {
                self.put(field, Val::Str(ShortStr::from_str(value)));
            }
            fn record_i64(&mut self, field: &Field, value: i64) {
                self.put(field, Val::I64(value));
            }
            fn record_u64(&mut self, field: &Field, value: u64) {
                self.put(field, Val::U64(value));
            }
            fn record_f64(&mut self, field: &Field, value: f64) {
                self.put(field, Val::F64(value));
            }
            fn record_bool(&mut self, field: &Field, value: bool) {
                self.put(field, Val::Bool(value));
            }
            fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
                self.put(field, Val::Str(ShortStr::from_debug(value)));
            }
        }
    };
}

visit_by_put!(RecordVisitor<'_>);

/// Collects an event's fields; `message` is kept apart as the event's name.
pub(crate) struct EventVisitor {
    pub(crate) message: Option<ShortStr>,
    pub(crate) fields: Vec<(&'static str, Val)>,
}

impl EventVisitor {
    fn put(&mut self, field: &Field, value: Val) {
        match value {
            Val::Str(text) if field.name() == "message" => self.message = Some(text),
            value => self.fields.push((field.name(), value)),
        }
    }
}

visit_by_put!(EventVisitor);

#[cfg(test)]
mod tests {
    use super::ShortStr;

    #[test]
    fn short_strings_spill_to_the_heap_intact() {
        for text in [
            "",
            "gpt-4o-mini",
            &"é".repeat(15),
            &"x".repeat(31),
            &"ab".repeat(40),
        ] {
            assert_eq!(ShortStr::from_str(text).as_str(), text);
            let mut pieces = ShortStr::from_str("");
            for piece in text.split_inclusive('b') {
                pieces.push_str(piece);
            }
            assert_eq!(pieces.as_str(), text);
        }
        assert!(matches!(
            ShortStr::from_str("short"),
            ShortStr::Inline { .. }
        ));
    }
}
