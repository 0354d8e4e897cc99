#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod canonical;
mod codec;
mod durability;
mod error;
mod ext;
mod filter;
pub mod genai;
mod group;
mod index;
mod merge;
mod model;
mod redact;
mod score;
mod search;
mod store;
mod summary;
mod time_bound;
mod timestamp;
pub mod url;

pub use canonical::{canonical_json, json_eq};
pub use codec::{MAX_JSON_DEPTH, MAX_RUN_ID_BYTES, validate_run_id};
pub use durability::Durability;
pub use error::{CorruptAt, Error, Result};
pub use ext::{
    JsonlLine, PurgeReport, RetentionPolicy, SummaryPages, TraceStoreExt, jsonl_lines, jsonl_traces,
};
pub use filter::{Cursor, OrderKey, OrderRange, ScoreRange, TraceFilter};
pub use group::{GroupBy, GroupKey};
pub use index::SummaryIndex;
pub use model::{ErrorInfo, SCHEMA_VERSION, Status, Step, StepKind, ToolCall, Trace, Usage};
pub use redact::redact_url;
pub use score::{Score, ScoreSource};
pub use search::{SEARCH_TEXT_MAX_BYTES, text_contains};
pub use store::TraceStore;
pub use summary::{ModelUsage, TraceStats, TraceSummary};
pub use time_bound::{TimeBound, parse_age};
pub use timestamp::Timestamp;
