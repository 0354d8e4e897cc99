//! The web viewer: static assets embedded in the binary, served at `/`.

/// Routes of the viewer's pages and assets.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    axum::Router::new()
}
