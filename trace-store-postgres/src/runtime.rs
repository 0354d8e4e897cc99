//! The Tokio runtime a store owns, and the one way sync callers wait on it.

use std::sync::mpsc;

use trace_store_core::{Error, Result};

use crate::error::Failure;

/// Two worker threads of the store's own. A caller hands work over and blocks on a
/// channel, never on the runtime itself, so calling from inside another Tokio runtime
/// (current-thread included) neither panics nor starves: the work runs here.
#[derive(Debug)]
pub(crate) struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl OwnedRuntime {
    pub(crate) fn new() -> Result<OwnedRuntime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("trace-store-postgres")
            .enable_all()
            .build()
            .map(|runtime| OwnedRuntime(Some(runtime)))
            .map_err(Error::Io)
    }

    pub(crate) fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        self.0.as_ref().map(tokio::runtime::Runtime::enter)
    }

    pub(crate) fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let runtime = self.0.as_ref().ok_or(Failure::RuntimeGone)?;
        let (reply, answer) = mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = reply.send(work.await);
        });
        answer.recv().map_err(|_| Failure::RuntimeGone)?
    }
}

impl Drop for OwnedRuntime {
    /// Dropping a runtime blocks until its tasks end, which panics inside another
    /// runtime; a store may well be dropped there, so let the threads wind down alone.
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
