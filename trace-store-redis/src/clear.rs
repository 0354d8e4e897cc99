//! Removal when the indexes are damaged: `clear`, and `delete` of a trace whose index
//! record is gone (a hand edit, or an `allkeys-*` eviction).

use trace_store_core::{Result, Trace, TraceSummary};

use crate::pool::Repeat;
use crate::scripts::SCRIPTS;
use crate::{RedisStore, keys};

/// Traces removed per script call by [`RedisStore::clear`], so a large namespace never
/// blocks the server for long.
const CLEAR_BATCH: usize = 1000;

impl RedisStore {
    /// Removes every trace and index of this store's prefix (and nothing else), in
    /// batches; returns how many traces were removed.
    pub fn clear(&self) -> Result<u64> {
        let mut removed = 0;
        let mut damaged = false;
        loop {
            let (batch, lost_records): (u64, u8) = self.pool.run("clear", Repeat::Never, |c| {
                SCRIPTS
                    .clear
                    .key(self.keys.base())
                    .arg(CLEAR_BATCH)
                    .invoke(c)
            })?;
            removed += batch;
            damaged |= lost_records == 1;
            if batch == 0 {
                break;
            }
        }
        if damaged {
            self.sweep()?;
        }
        Ok(removed)
    }

    /// Deletes every key of the prefix, one `SCAN` step per script call: after a
    /// clear that met traces whose index record was gone, their entries in the
    /// status, name, metadata, session, parent and score indexes can be found no
    /// other way. Only then, as it visits every key of the (node's) keyspace.
    fn sweep(&self) -> Result<()> {
        let mut cursor = "0".to_owned();
        loop {
            cursor = self.pool.run("clear", Repeat::Safe, |c| {
                SCRIPTS.sweep.key(self.keys.base()).arg(&cursor).invoke(c)
            })?;
            if cursor == "0" {
                return Ok(());
            }
        }
    }

    /// Deletes one trace whose index record is gone: the record is rebuilt from the
    /// body (or, for a body that cannot be decoded, only the body goes) and the
    /// delete script runs again with it.
    pub(crate) fn delete_orphan(&self, run_id: &str, action: &str) -> Result<bool> {
        let key = self.keys.body(run_id);
        let body: Option<Vec<u8>> = self.pool.run(action, Repeat::Safe, |c| {
            redis::cmd("GET").arg(&key).query(c)
        })?;
        let Some(body) = body else {
            // Gone meanwhile: another delete, or an expiry.
            return Ok(false);
        };
        let record = match Trace::from_json_slice(&body) {
            Ok(trace) => keys::index_record(&TraceSummary::from(&trace)),
            Err(_) => String::new(),
        };
        let removed: i64 = self.pool.run(action, Repeat::Never, |c| {
            SCRIPTS
                .delete
                .key(self.keys.base())
                .arg(run_id)
                .arg(&record)
                .invoke(c)
        })?;
        Ok(removed > 0)
    }
}
