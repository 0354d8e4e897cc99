//! Connections driven on the calling thread, and the pool that lends them.
//!
//! Each pooled connection owns a current-thread Tokio runtime. A call borrows a
//! connection and the calling thread itself runs the request and the connection's I/O
//! inside that runtime's `block_on`: no thread is woken and no answer is handed back
//! across threads (the store used to run every call on runtime threads of its own, two
//! to four hand-offs a call). A thread that is inside a Tokio runtime may not
//! `block_on`; its call runs the same way on a helper thread that lives for the call.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Deref;
use std::pin::pin;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{Client, Config, Connection, NoTls, Socket, Statement};
use trace_store_core::{Error, Result};

use crate::error::{Failure, backend};

/// At most `size` connections, lent one call at a time.
pub(crate) struct Pool {
    config: Config,
    size: usize,
    /// How long a call may wait for a free connection.
    wait: Duration,
    shown_url: String,
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    /// Last returned first, so the busiest connections keep their statement caches warm.
    idle: Vec<Conn>,
    /// Connections in existence: idle, lent, or being opened.
    open: usize,
}

/// What a call works with: the client of a borrowed connection and its prepared
/// statements.
pub(crate) struct Session {
    client: Client,
    statements: RefCell<HashMap<String, Statement>>,
}

impl Deref for Session {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Session {
    /// The statement prepared once per connection for this text.
    pub(crate) async fn prepare_cached(
        &self,
        sql: &str,
    ) -> std::result::Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

struct Conn {
    session: Session,
    connection: Connection<Socket, NoTlsStream>,
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Conn {
    /// Dropping a runtime blocks, which panics inside another runtime; a store may well
    /// be dropped there. A current-thread runtime has no threads to wait for anyway.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Pool {
    pub(crate) fn new(config: Config, size: usize, wait: Duration, shown_url: String) -> Pool {
        Pool {
            config,
            size,
            wait,
            shown_url,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// Runs `work` on a borrowed connection and waits for it; `what` names the call in
    /// errors.
    pub(crate) fn run<T: Send>(
        &self,
        what: &str,
        work: impl AsyncFnOnce(&Session) -> Result<T> + Send,
    ) -> Result<T> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return std::thread::scope(|scope| {
                scope
                    .spawn(|| self.run_here(what, work))
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            });
        }
        self.run_here(what, work)
    }

    fn run_here<T>(&self, what: &str, work: impl AsyncFnOnce(&Session) -> Result<T>) -> Result<T> {
        let mut lease = Lease {
            pool: self,
            conn: Some(self.take(what)?),
        };
        let conn = lease.conn.as_mut().expect("a lease holds its connection");
        drive(conn, what, work)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self, what: &str) -> Result<Conn> {
        let deadline = Instant::now() + self.wait;
        let mut state = self.lock();
        loop {
            while let Some(conn) = state.idle.pop() {
                if !conn.session.client.is_closed() {
                    return Ok(conn);
                }
                state.open -= 1;
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return self.connect(what).inspect_err(|_| self.forget_one());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Failure::PoolTimeout(format!(
                    "{what} in {}: all {} connections stayed busy for {:?}",
                    self.shown_url, self.size, self.wait
                ))
                .into());
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn connect(&self, what: &str) -> Result<Conn> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Io)?;
        // tokio-postgres bounds this by the connect timeout.
        let (client, connection) = runtime
            .block_on(self.config.connect(NoTls))
            .map_err(|e| backend(format!("{what}: connecting to {}", self.shown_url), e))?;
        Ok(Conn {
            session: Session {
                client,
                statements: RefCell::new(HashMap::new()),
            },
            connection,
            runtime: Some(runtime),
        })
    }

    fn forget_one(&self) {
        self.lock().open -= 1;
        self.freed.notify_one();
    }
}

/// Gives the connection back when the call ends, however it ends; a connection that
/// has closed (server gone, protocol error) is dropped instead.
struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if conn.session.client.is_closed() || std::thread::panicking() {
            drop(conn);
            self.pool.forget_one();
        } else {
            self.pool.lock().idle.push(conn);
            self.pool.freed.notify_one();
        }
    }
}

/// Polls `work` and the connection together on the calling thread until `work` ends;
/// a connection that fails fails the call.
fn drive<T>(
    conn: &mut Conn,
    what: &str,
    work: impl AsyncFnOnce(&Session) -> Result<T>,
) -> Result<T> {
    let Conn {
        session,
        connection,
        runtime,
    } = conn;
    let runtime = runtime.as_ref().expect("a live connection has its runtime");
    let closed = || session.client.is_closed();
    let mut work = pin!(work(session));
    runtime.block_on(std::future::poll_fn(|cx| {
        if let Err(error) = pump(connection, cx, closed()) {
            return Poll::Ready(Err(backend(what, error)));
        }
        if let Poll::Ready(done) = work.as_mut().poll(cx) {
            return Poll::Ready(done);
        }
        // Write what the work has just asked for now, not after another wake-up.
        if let Err(error) = pump(connection, cx, closed()) {
            return Poll::Ready(Err(backend(what, error)));
        }
        Poll::Pending
    }))
}

/// Lets the connection read and write all it can. Notices are dropped, as the
/// connection's own future would (it only logs them).
fn pump(
    connection: &mut Connection<Socket, NoTlsStream>,
    cx: &mut Context<'_>,
    closed: bool,
) -> std::result::Result<(), tokio_postgres::Error> {
    // After a terminal answer the connection must not be polled again; the client
    // then fails every request at once.
    if closed {
        return Ok(());
    }
    loop {
        match connection.poll_message(cx) {
            Poll::Pending | Poll::Ready(None) => return Ok(()),
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(Some(Err(error))) => return Err(error),
        }
    }
}
