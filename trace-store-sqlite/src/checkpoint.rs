//! Checkpoints of the write-ahead log, off the save path.
//!
//! A checkpoint copies committed pages from the WAL into the database file and, with
//! `synchronous = NORMAL`, fsyncs both files. Left to SQLite's automatic checkpoint it
//! runs inside whichever commit crosses the threshold, so one save in a few hundred
//! pays for two fsyncs (milliseconds each). Here a thread with its own connection runs
//! `PASSIVE` checkpoints (never waiting for, nor blocking, readers or the writer) each
//! time the writer nudges it.
//!
//! The log starts over from its beginning only once everything in it is copied, and
//! under non-stop writing a passive checkpoint never quite catches up with its end. So
//! when the log has grown past [`RESTART_FRAMES`], the thread takes the store's writer
//! lock for a second checkpoint, which only has the last few commits to copy; the next
//! write then rewinds the log. (SQLite's `RESTART` mode would do the same but starves:
//! its busy handler sleeps while the writer, in a loop, takes the lock right back.) The
//! writer's own automatic checkpoint, at a higher threshold, is the backstop should
//! this thread fall behind, for instance behind another process's writes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;

/// Commits between two nudges: a few hundred log pages.
const COMMITS_PER_CHECKPOINT: u64 = 32;

/// Log size, in pages, from which the thread rewinds the log (32 MiB of 4 KiB pages).
const RESTART_FRAMES: i64 = 8192;

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
    /// Starts the thread on `conn`, a connection of its own to the database; `writer`
    /// is the store's writer connection, whose lock keeps the store's saves out while
    /// the log is rewound.
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
        let checkpoint = || -> rusqlite::Result<(i64, i64)> {
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get(1)?, row.get(2)?))
            })
        };
        // Rewind only when this pass copied (nearly) everything: if a long read
        // holds old pages in the log, locking writers out would not help until it ends.
        let rewind = checkpoint()
            .is_ok_and(|(log, copied)| log >= RESTART_FRAMES && log - copied <= RESTART_FRAMES / 8);
        if rewind && let Some(writer) = writer.upgrade() {
            let _no_writes = writer.lock();
            let _ = checkpoint();
        }
    }
}
