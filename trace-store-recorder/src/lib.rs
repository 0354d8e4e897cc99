#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod capture;
#[cfg(feature = "tracing")]
mod layer;
mod live;
mod pricing;
mod recorder;
mod run;

pub use capture::{Capture, REDACTED, Redactor, SecretRedactor};
#[cfg(feature = "tracing")]
pub use layer::{GenAiSpans, TraceLayer};
pub use pricing::{ModelPrice, Pricing};
pub use recorder::{Health, QueueFull, Recorder, RecorderOptions};
pub use run::{Run, RunOptions, StepGuard};
