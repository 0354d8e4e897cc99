#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod import;
mod read;
pub mod selectools;

pub use import::{ImportOptions, ImportReport, LineError, MAX_REPORTED_ERRORS, check, import};
pub use read::{Format, Traces, read_traces};

/// An error's message without the variant's prefix ("invalid input: ", "corrupt data: "),
/// which says nothing once the message is nested in one naming the line or the step: a
/// bad record of an input file is neither the caller's argument nor stored data.
fn reason(error: &trace_store_core::Error) -> String {
    use trace_store_core::Error;
    match error {
        Error::InvalidInput { message } | Error::Corrupt { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
