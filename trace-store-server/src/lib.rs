#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod viewer;

use std::sync::Arc;

use trace_store_core::TraceStore;

/// The whole HTTP application over `store`: OTLP receiver, JSON API, viewer.
pub fn app(store: Arc<dyn TraceStore>) -> axum::Router {
    let _ = store;
    axum::Router::new().merge(viewer::routes())
}
