#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod api;
mod auth;
mod body;
mod error;
mod ingest;
mod options;
mod params;
mod receiver;
mod viewer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use tokio_util::task::TaskTracker;
use tower_http::catch_panic::CatchPanicLayer;
use trace_store_core::{Error, Result, TraceStore};

pub use options::{
    DEFAULT_BODY_TIMEOUT, DEFAULT_LISTEN, DEFAULT_MAX_BODY, DEFAULT_REQUEST_TIMEOUT, ServerOptions,
};

use error::{ApiError, ApiResult, Kind};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    store: Arc<dyn TraceStore>,
    options: Arc<ServerOptions>,
    /// Store work in flight on the blocking pool, so shutdown can wait for it even
    /// when the client that asked for it has gone away.
    tracker: TaskTracker,
    /// The one writer that OTLP requests hand their decoded parts to.
    ingest: Arc<ingest::Ingestor>,
}

impl AppState {
    /// Runs blocking store work on tokio's blocking pool, never on an async worker.
    /// The work finishes even if the request is dropped (a merge is never cut short).
    pub(crate) async fn blocking<T, F>(&self, work: F) -> ApiResult<T>
    where
        F: FnOnce(&dyn TraceStore) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = Arc::clone(&self.store);
        match self.tracker.spawn_blocking(move || work(&*store)).await {
            Ok(result) => result,
            Err(join) => Err(ApiError::new(
                Kind::Internal,
                format!("the request's store work failed unexpectedly: {join}"),
            )),
        }
    }
}

/// The whole HTTP application over `store`: OTLP receiver, JSON API, viewer.
///
/// Store work runs on tokio's blocking pool, so the router must be served from
/// inside a multi-threaded tokio runtime (as [`Server`] does).
pub fn app(store: Arc<dyn TraceStore>, options: ServerOptions) -> Router {
    app_with_tracker(store, options, TaskTracker::new())
}

fn app_with_tracker(
    store: Arc<dyn TraceStore>,
    options: ServerOptions,
    tracker: TaskTracker,
) -> Router {
    let request_timeout = options.request_timeout;
    let ingest = Arc::new(ingest::Ingestor::start(Arc::clone(&store), tracker.token()));
    let state = AppState {
        store,
        options: Arc::new(options),
        tracker,
        ingest,
    };
    // The viewer's shell and assets are outside the token check: they are static,
    // embedded in the binary, hold no trace data, and a browser cannot send a header
    // when it first opens the page (the page then reads the token from `#token=`).
    let protected = Router::new()
        .merge(api::routes())
        .merge(receiver::routes())
        .route("/api/{*rest}", axum::routing::any(not_found))
        .route("/v1/{*rest}", axum::routing::any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/healthz", axum::routing::get(api::healthz))
        .with_state(state)
        .merge(protected)
        .merge(viewer::routes())
        .layer(axum::middleware::from_fn(move |request, next| {
            time_limit(request_timeout, request, next)
        }))
        .layer(CatchPanicLayer::custom(panic_response))
}

/// Answers 503 when a request is not done within `limit`, so a slow client or a slow
/// store cannot hold a connection's request open for ever.
async fn time_limit(
    limit: std::time::Duration,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            Kind::Timeout,
            format!(
                "the request was not done within {}; store work it started (a write, a delete, a purge) still completes",
                humantime::format_duration(limit)
            ),
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        Kind::MethodNotAllowed,
        "this route does not take that method",
    )
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::new(
        Kind::Internal,
        "the server failed while handling this request",
    )
    .into_response()
}

/// A bound server: `trace-store serve` as a library.
///
/// ```no_run
/// use std::sync::Arc;
/// use trace_store_server::{Server, ServerOptions};
///
/// # async fn demo(store: Arc<dyn trace_store_core::TraceStore>) -> trace_store_core::Result<()> {
/// let options = ServerOptions::new().with_listen("127.0.0.1:0".parse().unwrap());
/// let server = Server::bind(store, options).await?;
/// println!("listening on http://{}/", server.local_addr());
/// server.run_until(trace_store_server::shutdown_signal()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Server {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    store: Arc<dyn TraceStore>,
    options: ServerOptions,
}

impl Server {
    /// Checks `options` and binds the address. A non-loopback address without a
    /// token or `insecure_no_auth` is [`Error::InvalidInput`]; a busy address is
    /// [`Error::Io`].
    pub async fn bind(store: Arc<dyn TraceStore>, options: ServerOptions) -> Result<Server> {
        options.validate()?;
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|error| {
                Error::Io(std::io::Error::new(
                    error.kind(),
                    format!("cannot listen on {}: {error}", options.listen),
                ))
            })?;
        let local_addr = listener.local_addr()?;
        Ok(Server {
            listener,
            local_addr,
            store,
            options,
        })
    }

    /// The address actually bound (the port, when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting, lets requests in
    /// flight finish and waits for their store work (merges included) to complete.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let tracker = TaskTracker::new();
        let router = app_with_tracker(self.store, self.options, tracker.clone());
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        tracker.close();
        tracker.wait().await;
        served.map_err(Error::Io)
    }
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM: the usual `shutdown` of
/// [`Server::run_until`].
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
