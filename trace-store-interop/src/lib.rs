#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod import;
mod read;
pub mod selectools;

pub use import::{ImportOptions, ImportReport, LineError, MAX_REPORTED_ERRORS, check, import};
pub use read::{Format, Traces, read_traces};
