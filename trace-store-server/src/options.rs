//! How a server is configured, and the checks made before it binds.

use std::net::SocketAddr;
use std::time::Duration;

use trace_store_core::{Error, Result};

/// Request bodies (compressed or not) larger than this are refused unless configured.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// How long a request may take from its headers to its answer unless configured.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a client may take to send a request body unless configured.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The address `trace-store serve` listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4318";

/// How [`Server::bind`](crate::Server::bind) and [`app`](crate::app) behave.
///
/// ```
/// use trace_store_server::ServerOptions;
///
/// let options = ServerOptions::new()
///     .with_listen("127.0.0.1:0".parse().unwrap())
///     .with_token("s3cret")
///     .with_max_body(4 << 20);
/// assert_eq!(options.max_body, 4 << 20);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Address to listen on; loopback by default.
    pub listen: SocketAddr,
    /// With a token, every route but `/healthz` requires `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Allows a non-loopback `listen` without a token. Off by default.
    pub insecure_no_auth: bool,
    /// Largest request body accepted, before and after gzip decompression.
    pub max_body: usize,
    /// Longest a request may take; past it the answer is 503 (`timeout`). Store work
    /// already started (a delete, a purge, an ingest) still completes.
    pub request_timeout: Duration,
    /// Longest a client may take to send a request body; past it the answer is 408.
    pub body_timeout: Duration,
    /// What `/healthz` and `/api/config` show as the store (its URL); passwords in
    /// it are masked before it is shown.
    pub store_label: String,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("insecure_no_auth", &self.insecure_no_auth)
            .field("max_body", &self.max_body)
            .field("request_timeout", &self.request_timeout)
            .field("body_timeout", &self.body_timeout)
            .field(
                "store_label",
                &trace_store_core::redact_url(&self.store_label),
            )
            .finish()
    }
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            listen: DEFAULT_LISTEN.parse().expect("the default address parses"),
            token: None,
            insecure_no_auth: false,
            max_body: DEFAULT_MAX_BODY,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            store_label: String::new(),
        }
    }
}

impl ServerOptions {
    /// Loopback on port 4318, no token, 16 MiB bodies, 60 s per request, 30 s per body.
    pub fn new() -> ServerOptions {
        ServerOptions::default()
    }

    /// Listens on `listen`.
    #[must_use]
    pub fn with_listen(mut self, listen: SocketAddr) -> ServerOptions {
        self.listen = listen;
        self
    }

    /// Requires `Authorization: Bearer <token>` on every route but `/healthz`.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> ServerOptions {
        self.token = Some(token.into());
        self
    }

    /// Allows a non-loopback address without a token.
    #[must_use]
    pub fn with_insecure_no_auth(mut self, insecure_no_auth: bool) -> ServerOptions {
        self.insecure_no_auth = insecure_no_auth;
        self
    }

    /// Caps request bodies at `max_body` bytes, compressed and decompressed.
    #[must_use]
    pub fn with_max_body(mut self, max_body: usize) -> ServerOptions {
        self.max_body = max_body;
        self
    }

    /// Answers 503 to a request not done within `timeout`.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> ServerOptions {
        self.request_timeout = timeout;
        self
    }

    /// Answers 408 to a request whose body has not all arrived within `timeout`.
    #[must_use]
    pub fn with_body_timeout(mut self, timeout: Duration) -> ServerOptions {
        self.body_timeout = timeout;
        self
    }

    /// Names the store in `/healthz` and `/api/config` (passwords are masked).
    #[must_use]
    pub fn with_store_label(mut self, store_label: impl Into<String>) -> ServerOptions {
        self.store_label = store_label.into();
        self
    }

    /// Rejects what would be unsafe or cannot work: a non-loopback address with no
    /// token and no `insecure_no_auth`, an empty token, a zero body limit, a zero
    /// timeout.
    pub fn validate(&self) -> Result<()> {
        if self.token.as_deref() == Some("") {
            return Err(Error::invalid("the token is empty"));
        }
        if self.max_body == 0 {
            return Err(Error::invalid("max_body must be at least 1 byte"));
        }
        if self.request_timeout.is_zero() || self.body_timeout.is_zero() {
            return Err(Error::invalid(
                "request_timeout and body_timeout must be longer than zero",
            ));
        }
        if !self.listen.ip().is_loopback() && self.token.is_none() && !self.insecure_no_auth {
            return Err(Error::invalid(format!(
                "refusing to listen on {} (not loopback) without authentication: set a token (--token) or pass --insecure-no-auth",
                self.listen
            )));
        }
        Ok(())
    }
}
