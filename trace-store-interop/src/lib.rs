//! STUB: replaced by the interop work (issue 6).
#![deny(missing_docs)]

/// selectools formats.
pub mod selectools {
    use trace_store_core::{Error, Result, Trace};

    /// Converts one line of any selectools format (`AgentTrace.to_dict()` JSON, a
    /// JSONL store line, a workload line `{created_at, trace}`) into a [`Trace`].
    pub fn trace_from_line(_line: &[u8]) -> Result<Trace> {
        Err(Error::invalid("STUB: not implemented yet"))
    }
}
