#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod canonical;
mod codec;
mod durability;
mod error;
mod ext;
mod filter;
mod index;
mod model;
mod store;
mod summary;
mod timestamp;

pub use canonical::{canonical_json, json_eq};
pub use codec::{MAX_JSON_DEPTH, MAX_RUN_ID_BYTES, validate_run_id};
pub use durability::Durability;
pub use error::{Error, Result};
pub use ext::{JsonlLine, SummaryPages, TraceStoreExt, jsonl_lines, jsonl_traces};
pub use filter::{Cursor, TraceFilter};
pub use index::SummaryIndex;
pub use model::{ErrorInfo, SCHEMA_VERSION, Status, Step, StepKind, ToolCall, Trace, Usage};
pub use store::TraceStore;
pub use summary::{ModelUsage, TraceStats, TraceSummary};
pub use timestamp::Timestamp;
