//! Checkpoints of the write-ahead log, off the save path.
//!
//! A checkpoint copies committed pages from the WAL into the database file and, with
//! `synchronous = NORMAL`, fsyncs both files. Left to SQLite's automatic checkpoint it
//! runs inside whichever commit crosses the threshold, so one save in a few hundred
//! pays for two fsyncs (milliseconds each). Here a thread with its own connection runs
//! `PASSIVE` checkpoints (never waiting for, nor blocking, readers or writers) each
//! time the writer nudges it.
//!
//! The log starts over from its beginning only once everything in it is copied, and
//! under non-stop writing a passive checkpoint never quite catches up with its end. So
//! when the log has grown past [`RESTART_FRAMES`], the thread keeps every writer out
//! for a second passive checkpoint, which only has the commits since the first to
//! copy; the next write then rewinds the log. Every writer: this store's, held back by
//! its writer mutex, and any other connection's (another store on the file, another
//! process), held back by SQLite's write lock, which the thread takes in an empty
//! transaction. With the mutex alone, two stores saving 15,000 traces at once let the
//! log grow to between 43 and 295 MiB over runs (the database: 61 MiB); with both,
//! 35 to 40 MiB.
//!
//! Why not SQLite's `RESTART` mode? Without the mutex it starves (its busy handler
//! sleeps while the writer, in a loop, takes the lock right back); with it, it waits
//! for readers while it holds the write lock, and a long read (an export) stalled
//! saves at every nudge: 15,000 saves took 39 s instead of 1 s. A passive pass waits
//! for nobody. The waits for the write lock are short ([`LOCK_WAIT`]); the writer's
//! own automatic checkpoint, at a higher threshold, is the backstop should this thread
//! fall behind or readers keep the log from starting over.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use rusqlite::{Connection, Transaction, TransactionBehavior};

/// Commits between two nudges: a few hundred log pages.
const COMMITS_PER_CHECKPOINT: u64 = 32;

/// Log size, in pages, from which the thread rewinds the log (32 MiB of 4 KiB pages).
const RESTART_FRAMES: i64 = 8192;

/// The checkpoint connection's busy timeout: the longest the thread waits for another
/// connection's write transaction before the second checkpoint. Past it, the next
/// nudge tries again; the store's saves, waiting on its writer mutex meanwhile, are
/// not held back longer.
pub(crate) const LOCK_WAIT: Duration = Duration::from_millis(100);

/// The writer's own automatic checkpoint, in pages: twice the size at which the thread
/// rewinds the log.
pub(crate) const WRITER_AUTOCHECKPOINT: i64 = 2 * RESTART_FRAMES;

/// Bytes of log file kept after it is rewound.
pub(crate) const LOG_SIZE_LIMIT: i64 = 4096 * RESTART_FRAMES;

#[derive(Default)]
struct State {
    pending: bool,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// The checkpoint thread; stopped and joined on drop.
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    commits: AtomicU64,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on `conn`, a connection of its own to the database whose busy
    /// timeout is [`LOCK_WAIT`]; `writer` is the store's writer connection, whose
    /// mutex keeps the store's saves out, and which is idle while the thread holds it.
    pub(crate) fn start(
        conn: Connection,
        writer: Weak<Mutex<Connection>>,
    ) -> std::io::Result<Checkpointer> {
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("trace-store-sqlite-checkpoint".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || run(&conn, &writer, &shared)
            })?;
        Ok(Checkpointer {
            shared,
            commits: AtomicU64::new(0),
            thread: Some(thread),
        })
    }

    /// Counts a commit; every few commits, wakes the thread.
    pub(crate) fn committed(&self, commits: u64) {
        let before = self.commits.fetch_add(commits, Ordering::Relaxed);
        if (before + commits) / COMMITS_PER_CHECKPOINT != before / COMMITS_PER_CHECKPOINT {
            let mut state = self.shared.state.lock();
            state.pending = true;
            self.shared.wake.notify_one();
        }
    }

    /// Stops the thread and waits for a checkpoint in progress to end.
    pub(crate) fn stop(&mut self) {
        self.shared.state.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            // The thread cannot panic (it only runs a pragma); nothing to report.
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(conn: &Connection, writer: &Weak<Mutex<Connection>>, shared: &Shared) {
    loop {
        {
            let mut state = shared.state.lock();
            while !state.pending && !state.stop {
                shared.wake.wait(&mut state);
            }
            if state.stop {
                return;
            }
            state.pending = false;
        }
        // A failure (busy, I/O) only delays the copy: the next nudge retries, and the
        // writer's automatic checkpoint still bounds the log. Writes report their own
        // I/O errors. The result row is (busy, pages in the log, pages copied).
        let passive = |conn: &Connection| -> rusqlite::Result<i64> {
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
        };
        if passive(conn).is_ok_and(|log| log >= RESTART_FRAMES)
            && let Some(writer) = writer.upgrade()
        {
            // The mutex keeps this store's saves out; a write transaction on this
            // connection keeps out every other writer, in this process or another
            // (waiting for one at most this connection's short busy timeout). The
            // idle writer connection then copies what the passive pass left.
            let writer = writer.lock();
            if let Ok(no_writes) = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            {
                let _ = passive(&writer);
                // Rolls back an empty transaction.
                drop(no_writes);
            }
        }
    }
}
