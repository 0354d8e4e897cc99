//! `merge_many`: many parts of a few runs, folded in one transaction, each run written
//! once.

use std::collections::HashMap;

use trace_store_core::{Result, Trace};

use crate::rows::{self, Encoded};
use crate::{Failure, SqliteStore, error};

/// The parts of one run_id, in the order given, and the write prepared for them.
struct Run<'a> {
    parts: Vec<&'a Trace>,
    prepared: Prepared,
}

/// A run's write, worked out on a reader before the write lock is taken. Under the
/// lock it is used only if the run is still as the reader saw it; otherwise the run is
/// loaded, folded and encoded there.
enum Prepared {
    /// Nothing prepared (the fold did not decode or encode: the transaction then
    /// reports why).
    Nothing,
    /// The run was not stored: the fold of its parts alone, to insert if still absent.
    Fresh { trace: Trace, encoded: Encoded },
    /// The run was stored as `body`: its fold with the parts, to write if the stored
    /// body is still those bytes.
    Over {
        body: Vec<u8>,
        trace: Trace,
        encoded: Encoded,
    },
}

impl Run<'_> {
    fn run_id(&self) -> &str {
        &self.parts[0].run_id
    }

    /// The parts folded in order, the first standing for the trace (merge into an
    /// absent run is a save of the part).
    fn fold_alone(&self) -> Trace {
        let mut parts = self.parts.iter();
        let mut trace = (*parts.next().expect("a run has a part")).clone();
        parts.for_each(|part| trace.merge(part));
        trace
    }

    /// `stored` with every part folded in.
    fn fold_into(&self, mut stored: Trace) -> Trace {
        self.parts.iter().for_each(|part| stored.merge(part));
        stored
    }

    /// Works out the write from what a reader sees now.
    fn prepare(&mut self, conn: &rusqlite::Connection) -> rusqlite::Result<()> {
        self.prepared = match rows::body(conn, self.run_id())? {
            None => {
                let trace = self.fold_alone();
                match Encoded::new(&trace) {
                    Ok(encoded) => Prepared::Fresh { trace, encoded },
                    Err(_) => Prepared::Nothing,
                }
            }
            Some(body) => match Trace::from_json_slice(&body) {
                Ok(stored) => {
                    let trace = self.fold_into(stored);
                    match Encoded::new(&trace) {
                        Ok(encoded) => Prepared::Over {
                            body,
                            trace,
                            encoded,
                        },
                        Err(_) => Prepared::Nothing,
                    }
                }
                Err(_) => Prepared::Nothing,
            },
        };
        Ok(())
    }

    /// Writes the run in the caller's transaction, and returns what it wrote: as
    /// prepared if the run is still as the reader saw it, else loaded, folded and
    /// encoded now.
    fn write(self, store: &SqliteStore, tx: &rusqlite::Transaction<'_>) -> Result<Trace, Failure> {
        match self.prepared {
            Prepared::Fresh { trace, encoded } if encoded.insert_new(tx)? => return Ok(trace),
            Prepared::Over {
                body,
                trace,
                encoded,
            } if rows::body(tx, self.run_id())?.as_deref() == Some(body.as_slice()) => {
                encoded.write(tx)?;
                return Ok(trace);
            }
            _ => {}
        }
        let merged = match store
            .read_trace(tx, self.run_id())
            .map_err(Failure::Store)?
        {
            Some(stored) => self.fold_into(stored),
            None => self.fold_alone(),
        };
        // Validates the fold's result: an invalid one writes nothing.
        Encoded::new(&merged).map_err(Failure::Store)?.write(tx)?;
        Ok(merged)
    }
}

impl SqliteStore {
    /// See `TraceStore::merge_many`. Parts are validated first; then one
    /// `BEGIN IMMEDIATE` transaction writes each run once, the fold of its stored
    /// trace with its parts by core's `Trace::merge`: all runs or none.
    ///
    /// The writer lock serialises every write, so as little as possible happens
    /// under it: each run is loaded, folded and encoded on a reader first, and under
    /// the lock only checked to be unchanged (absent still, or the same body bytes)
    /// and written. A run another writer changed in between is loaded, folded and
    /// encoded again under the lock.
    pub(crate) fn merge_batch(&self, parts: &[Trace]) -> Result<Vec<String>> {
        parts.iter().try_for_each(Trace::validate)?;
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let mut runs: Vec<Run<'_>> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for part in parts {
            let at = *index.entry(part.run_id.as_str()).or_insert_with(|| {
                runs.push(Run {
                    parts: Vec::new(),
                    prepared: Prepared::Nothing,
                });
                runs.len() - 1
            });
            runs[at].parts.push(part);
        }
        {
            let conn = self.conns.reader();
            runs.iter_mut()
                .try_for_each(|run| run.prepare(&conn))
                .map_err(|e| error::map(&self.location, "reading traces to merge into", e))?;
        }
        let count = runs.len() as u64;
        self.write(
            count,
            || format!("merging {} parts into {count} traces", parts.len()),
            |tx| {
                runs.into_iter()
                    .try_for_each(|run| run.write(self, tx).map(drop))
            },
        )?;
        Ok(parts.iter().map(|part| part.run_id.clone()).collect())
    }

    /// See `TraceStore::merge`: [`SqliteStore::merge_batch`] of one part, returning
    /// the merged trace.
    pub(crate) fn merge_one(&self, part: &Trace) -> Result<Trace> {
        part.validate()?;
        let mut run = Run {
            parts: vec![part],
            prepared: Prepared::Nothing,
        };
        {
            let conn = self.conns.reader();
            run.prepare(&conn)
                .map_err(|e| error::map(&self.location, "reading the trace to merge into", e))?;
        }
        self.write(
            1,
            || format!("merging into trace {:?}", part.run_id),
            |tx| run.write(self, tx),
        )
    }
}
