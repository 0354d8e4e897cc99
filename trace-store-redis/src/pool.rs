//! A small blocking connection pool, and the errors that name the server.
//!
//! Hand-written rather than r2d2 because of what a store needs when the server goes
//! away and comes back: a connection that fails as dropped makes the pool throw away
//! every idle connection (they all point at the old server process) and continue on a
//! fresh one, so the first call after a restart already succeeds, without a PING on
//! every checkout of a read or a save; a server that is down fails at once (connection
//! refused) instead of waiting out a checkout timeout; and no background threads are
//! started per store.

use std::fmt;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{
    Client, Connection, ConnectionLike, ErrorKind, RedisError, RedisResult, ServerErrorKind,
};
use trace_store_core::{Error, Result};

/// Times a Cluster connection runs a command again after a redirection, a node that
/// is down or reconnecting, or `CLUSTERDOWN`, all within the read timeout.
const CLUSTER_RETRIES: u32 = 3;

/// How a pool makes connections: to one server, or to a Redis Cluster, where one
/// connection holds a link to each node and sends each command to its key's node.
pub(crate) enum Connector {
    Single(Client),
    Cluster(ClusterClient),
}

/// One pooled connection; the operations see it as a `ConnectionLike`, so every
/// command and script is written once for both kinds.
pub(crate) enum Link {
    Single(Connection),
    Cluster(Box<ClusterConnection>),
}

impl Link {
    fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Link::Single(connection) => connection,
            Link::Cluster(connection) => connection.as_mut(),
        }
    }
}

/// Whether an operation may run a second time when its connection dropped midway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Running it twice leaves the same data and gives the same answer as once
    /// (reads, and saves, which write the same trace again).
    Safe,
    /// A second run could answer differently (`delete` would report `false` for the
    /// trace its first run removed), so it runs at most once.
    Never,
}

pub(crate) struct Pool {
    connector: Connector,
    address: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    size: usize,
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    idle: Vec<Link>,
    /// Connections that exist, idle or lent out.
    open: usize,
}

impl Pool {
    pub(crate) fn new(
        connector: Connector,
        address: String,
        connect_timeout: Duration,
        read_timeout: Duration,
        size: usize,
    ) -> Pool {
        Pool {
            connector,
            address,
            connect_timeout,
            read_timeout,
            size,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// `(open, idle)` connections.
    pub(crate) fn usage(&self) -> (usize, usize) {
        let state = self.state.lock();
        (state.open, state.idle.len())
    }

    /// Runs `op` on a pooled connection.
    ///
    /// A connection that sat idle may have died meanwhile (the server restarted, or a
    /// network path dropped it); the first command on it then fails as dropped, the
    /// idle connections (which point at the same dead server) are thrown away, and a
    /// new one is made. Whether `op` may then simply run again depends on `repeat`:
    /// a dropped connection cannot tell whether the server ran the command before the
    /// link broke, so only an operation whose second run changes neither the stored
    /// data nor the answer is repeated ([`Repeat::Safe`]). Any other operation first
    /// checks a reused connection with a `PING` and then runs exactly once.
    pub(crate) fn run<T>(
        &self,
        action: &str,
        repeat: Repeat,
        mut op: impl FnMut(&mut dyn ConnectionLike) -> RedisResult<T>,
    ) -> Result<T> {
        let (mut connection, reused) = self.checkout(action)?;
        if reused && repeat == Repeat::Never {
            match redis::cmd("PING").query::<()>(connection.as_dyn()) {
                Ok(()) => {}
                Err(error) if error.is_connection_dropped() => {
                    connection = self.reconnect(connection, action)?;
                }
                Err(error) => return self.finish(connection, Err(error), action),
            }
            let result = op(connection.as_dyn());
            return self.finish(connection, result, action);
        }
        match op(connection.as_dyn()) {
            Err(error) if reused && error.is_connection_dropped() => {
                let mut connection = self.reconnect(connection, action)?;
                let result = op(connection.as_dyn());
                self.finish(connection, result, action)
            }
            result => self.finish(connection, result, action),
        }
    }

    /// Replaces a dead connection (keeping its slot) after dropping every idle one.
    fn reconnect(&self, dead: Link, action: &str) -> Result<Link> {
        drop(dead);
        self.drop_idle();
        self.connect().map_err(|error| {
            self.release_slot();
            self.connect_failure(action, error)
        })
    }

    fn finish<T>(&self, connection: Link, result: RedisResult<T>, action: &str) -> Result<T> {
        match result {
            Ok(value) => {
                self.checkin(connection);
                Ok(value)
            }
            Err(error) => {
                // After a server error reply the connection is in step; after anything
                // else (timeout, half-read reply) it is not, and is never reused.
                if matches!(
                    error.kind(),
                    ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::UnexpectedReturnType
                ) {
                    self.checkin(connection);
                } else {
                    drop(connection);
                    self.release_slot();
                }
                Err(self.failure(action, error))
            }
        }
    }

    fn checkout(&self, action: &str) -> Result<(Link, bool)> {
        let deadline = Instant::now() + self.connect_timeout;
        let mut state = self.state.lock();
        loop {
            if let Some(connection) = state.idle.pop() {
                return Ok((connection, true));
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(connection) => Ok((connection, false)),
                    Err(error) => {
                        self.release_slot();
                        Err(self.connect_failure(action, error))
                    }
                };
            }
            if self.freed.wait_until(&mut state, deadline).timed_out() {
                return Err(Failure {
                    action: action.to_owned(),
                    address: self.address.clone(),
                    cause: Cause::PoolExhausted {
                        size: self.size,
                        waited: self.connect_timeout,
                    },
                }
                .into_error());
            }
        }
    }

    fn connect(&self) -> RedisResult<Link> {
        match &self.connector {
            Connector::Single(client) => {
                let connection = client.get_connection_with_timeout(self.connect_timeout)?;
                connection.set_read_timeout(Some(self.read_timeout))?;
                connection.set_write_timeout(Some(self.read_timeout))?;
                Ok(Link::Single(connection))
            }
            // The timeouts were given to the client's builder (see `cluster_client`).
            Connector::Cluster(client) => Ok(Link::Cluster(Box::new(client.get_connection()?))),
        }
    }

    fn checkin(&self, connection: Link) {
        self.state.lock().idle.push(connection);
        self.freed.notify_one();
    }

    fn release_slot(&self) {
        self.state.lock().open -= 1;
        self.freed.notify_one();
    }

    fn drop_idle(&self) {
        let idle = {
            let mut state = self.state.lock();
            state.open -= state.idle.len();
            std::mem::take(&mut state.idle)
        };
        drop(idle);
        self.freed.notify_all();
    }

    /// A failed command.
    fn failure(&self, action: &str, error: RedisError) -> Error {
        self.failed(action, error, "read timeout", self.read_timeout)
    }

    /// A failed connection attempt (connect, password, database selection).
    fn connect_failure(&self, action: &str, error: RedisError) -> Error {
        self.failed(action, error, "connect timeout", self.connect_timeout)
    }

    fn failed(
        &self,
        action: &str,
        error: RedisError,
        timeout: &'static str,
        after: Duration,
    ) -> Error {
        let cause = if error.is_timeout() {
            Cause::Timeout {
                error,
                timeout,
                after,
            }
        } else {
            Cause::Redis(error)
        };
        Failure {
            action: action.to_owned(),
            address: self.address.clone(),
            cause,
        }
        .into_error()
    }
}

/// What [`Error::Backend`] carries for this backend: the operation, the server's
/// address (never its password) and the cause, with a hint on how to fix it.
#[derive(Debug)]
pub(crate) struct Failure {
    action: String,
    address: String,
    cause: Cause,
}

#[derive(Debug)]
enum Cause {
    Redis(RedisError),
    Timeout {
        error: RedisError,
        /// Which option ran out: `connect timeout` or `read timeout`.
        timeout: &'static str,
        after: Duration,
    },
    PoolExhausted {
        size: usize,
        waited: Duration,
    },
}

impl Failure {
    /// The one place this backend's failures become core's [`Error`]: a server that
    /// is unreachable, restarting, failing over or too slow, and a pool that stayed
    /// busy, are transient, so [`Error::is_retryable`] says so; a refused command or
    /// bad credentials are not.
    fn into_error(self) -> Error {
        let transient = match &self.cause {
            Cause::Timeout { .. } | Cause::PoolExhausted { .. } => true,
            Cause::Redis(error) => {
                error.is_io_error()
                    || error.is_connection_dropped()
                    || error.is_connection_refusal()
                    || matches!(
                        error.kind(),
                        ErrorKind::ClusterConnectionNotFound
                            | ErrorKind::Server(
                                ServerErrorKind::BusyLoading
                                    | ServerErrorKind::TryAgain
                                    | ServerErrorKind::ClusterDown
                                    | ServerErrorKind::MasterDown
                                    | ServerErrorKind::ReadOnly
                            )
                    )
            }
        };
        if transient {
            Error::retryable_backend("redis", self)
        } else {
            Error::backend("redis", self)
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Failure {
            action, address, ..
        } = self;
        write!(f, "{action} on the Redis server at {address} failed: ")?;
        match &self.cause {
            Cause::Redis(error)
                if error.is_connection_refusal() || error.is_connection_dropped() =>
            {
                write!(
                    f,
                    "{error}; is redis-server running and reachable there? the store reconnects by itself once the server is back"
                )
            }
            Cause::Redis(error) => write!(f, "{error}"),
            Cause::Timeout {
                error,
                timeout,
                after,
            } => write!(
                f,
                "no answer within the {timeout} of {after:?} ({error}); the server is overloaded, stopped or unreachable, or raise {}",
                timeout.replace(' ', "_")
            ),
            Cause::PoolExhausted { size, waited } => write!(
                f,
                "all {size} pooled connections stayed busy for {waited:?}; raise pool_size or connect_timeout"
            ),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Redis(error) | Cause::Timeout { error, .. } => Some(error),
            Cause::PoolExhausted { .. } => None,
        }
    }
}

/// A Cluster client that starts from `seeds` (connection URLs of some nodes; it asks
/// them for the rest) and gives each connection attempt `connect_timeout` and each
/// request, retries and redirections included, `read_timeout`.
pub(crate) fn cluster_client(
    seeds: &[String],
    connect_timeout: Duration,
    read_timeout: Duration,
) -> RedisResult<ClusterClient> {
    ClusterClient::builder(seeds.iter().map(String::as_str))
        .connection_timeout(connect_timeout)
        .response_timeout(read_timeout)
        .retries(CLUSTER_RETRIES)
        .min_retry_wait(10)
        .max_retry_wait(250)
        .build()
}
