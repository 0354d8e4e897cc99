//! Raw baselines: the same serialized trace bodies written straight to each engine,
//! with the same durability settings, so every backend's cost can be read as a ratio
//! of what the engine itself costs.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;

use serde::Serialize;
use trace_store::{Durability, Trace};

use crate::BenchResult;
use crate::backends::{Backend, Env};
use crate::timing::{OpStats, Samples};
use crate::workload::Workload;

/// Pipelined Redis writes go out in batches of this many traces.
const REDIS_PIPELINE_BATCH: usize = 1000;

/// One engine's baseline operations.
#[derive(Debug, Serialize)]
pub(crate) struct BaselineRun {
    /// The backend this baseline stands beside.
    pub(crate) engine: Backend,
    /// What was done, in words.
    pub(crate) how: String,
    pub(crate) ops: Vec<OpStats>,
}

impl BaselineRun {
    pub(crate) fn op(&self, name: &str) -> Option<&OpStats> {
        self.ops.iter().find(|o| o.op == name)
    }
}

/// The baseline for `engine`.
pub(crate) fn run(
    env: &Env,
    engine: Backend,
    wl: &Workload,
    bodies: &[Vec<u8>],
) -> BenchResult<Option<BaselineRun>> {
    Ok(match engine {
        Backend::Memory => Some(copy_floor(wl)?),
        Backend::Sqlite => Some(sqlite(env, &wl.traces, bodies, &wl.load_ids)?),
        Backend::Jsonl => Some(file_append(env, &wl.traces, bodies, &wl.load_ids)?),
        Backend::Redis => Some(redis(env, &wl.traces, bodies, &wl.load_ids)?),
        Backend::Postgres => Some(postgres(env, &wl.traces, bodies, &wl.load_ids)?),
    })
}

/// The floor of the memory store: the contract hands out and keeps owned copies, so a
/// `save` must at least validate and deep-copy the trace, and a `load` deep-copy it.
/// Timed per trace, on the traces the replay saves and loads, with each copy dropped
/// outside the timed region (as the replay drops what `load` returns).
fn copy_floor(wl: &Workload) -> BenchResult<BaselineRun> {
    let by_id: std::collections::HashMap<&str, &Trace> =
        wl.traces.iter().map(|t| (t.run_id.as_str(), t)).collect();
    let copy = |trace: &Trace, samples: &mut Samples| -> BenchResult<Trace> {
        let copied = samples.time(|| trace.validate().map(|()| trace.clone()))?;
        Ok(copied)
    };
    let mut saves = Samples::with_capacity(wl.traces.len());
    for trace in &wl.traces {
        drop(copy(trace, &mut saves)?);
    }
    let loaded = wl
        .load_ids
        .iter()
        .map(|id| {
            by_id
                .get(id.as_str())
                .copied()
                .ok_or_else(|| format!("copy floor: load id {id:?} is not in the workload"))
        })
        .collect::<Result<Vec<&Trace>, _>>()?;
    // Separate passes: interleaved, the second copy would find the trace in cache.
    let mut loads = Samples::with_capacity(loaded.len());
    for trace in &loaded {
        drop(copy(trace, &mut loads)?);
    }
    let mut clones = Samples::with_capacity(loaded.len());
    for trace in &loaded {
        drop(clones.time(|| (*trace).clone()));
    }
    Ok(BaselineRun {
        engine: Backend::Memory,
        how: "Trace::validate + Trace::clone per trace (the copy the contract requires), on \
              the saved traces and on the loaded ones; clone alone on the loaded ones"
            .into(),
        ops: vec![
            saves.stats("clone_validate"),
            loads.stats("clone_validate_loads"),
            clones.stats("clone_loads"),
        ],
    })
}

const SQLITE_SCHEMA: &str = "CREATE TABLE traces (
    run_id TEXT PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL,
    body BLOB NOT NULL
)";
const SQLITE_INSERT: &str =
    "INSERT OR REPLACE INTO traces (run_id, created_at, body) VALUES (?1, ?2, ?3)";

fn sqlite_connection(
    path: &std::path::Path,
    durability: Durability,
) -> BenchResult<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    // WAL with synchronous NORMAL survives a process crash (Flush); FULL fsyncs every
    // commit (Sync): the settings the SQLite backend documents for each durability.
    let synchronous = match durability {
        Durability::Sync => "FULL",
        _ => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};"
    ))?;
    Ok(conn)
}

/// Bare rusqlite: a one-table schema (run_id primary key, created_at, body), each body
/// inserted in its own autocommit statement, then all bodies in one transaction, then
/// point reads of the body by run_id.
fn sqlite(
    env: &Env,
    traces: &[Trace],
    bodies: &[Vec<u8>],
    load_ids: &[String],
) -> BenchResult<BaselineRun> {
    let mut ops = Vec::new();

    let path = env.path("baseline-rows.db");
    let conn = sqlite_connection(&path, env.durability())?;
    conn.execute_batch(SQLITE_SCHEMA)?;
    let mut samples = Samples::with_capacity(bodies.len());
    {
        let mut insert = conn.prepare_cached(SQLITE_INSERT)?;
        for (trace, body) in traces.iter().zip(bodies) {
            samples.time(|| insert.execute((&trace.run_id, trace.created_at.as_micros(), body)))?;
        }
    }
    ops.push(samples.stats("insert_row"));

    let mut samples = Samples::with_capacity(load_ids.len());
    {
        let mut select = conn.prepare_cached("SELECT body FROM traces WHERE run_id = ?1")?;
        for id in load_ids {
            let body: Vec<u8> = samples.time(|| select.query_row([id], |row| row.get(0)))?;
            if body.is_empty() {
                return Err(format!("bare sqlite: empty body for {id:?}").into());
            }
        }
    }
    ops.push(samples.stats("select_body"));
    drop(conn);

    let path = env.path("baseline-tx.db");
    let mut conn = sqlite_connection(&path, env.durability())?;
    conn.execute_batch(SQLITE_SCHEMA)?;
    let mut samples = Samples::with_capacity(1);
    samples.time(|| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(SQLITE_INSERT)?;
            for (trace, body) in traces.iter().zip(bodies) {
                insert.execute((&trace.run_id, trace.created_at.as_micros(), body))?;
            }
        }
        tx.commit()
    })?;
    ops.push(samples.stats("insert_tx"));
    drop(conn);
    for file in ["baseline-rows.db", "baseline-tx.db"] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(env.path(&format!("{file}{suffix}")));
        }
    }
    Ok(BaselineRun {
        engine: Backend::Sqlite,
        how: "rusqlite, WAL, one table (run_id PRIMARY KEY, created_at, body): INSERT OR REPLACE per row (autocommit) and all rows in one transaction; SELECT body by run_id".into(),
        ops,
    })
}

/// Bare file append: one `write` of body + newline per trace on a file opened for
/// appending (fsync after each under `Sync`), then positioned reads of whole lines.
fn file_append(
    env: &Env,
    traces: &[Trace],
    bodies: &[Vec<u8>],
    load_ids: &[String],
) -> BenchResult<BaselineRun> {
    let path = env.path("baseline.jsonl");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(&path)?;
    let sync = env.durability() == Durability::Sync;
    let mut offsets = std::collections::HashMap::with_capacity(bodies.len());
    let mut offset = 0u64;
    let mut line = Vec::new();
    let mut samples = Samples::with_capacity(bodies.len());
    for (trace, body) in traces.iter().zip(bodies) {
        samples.time(|| -> std::io::Result<()> {
            line.clear();
            line.extend_from_slice(body);
            line.push(b'\n');
            file.write_all(&line)?;
            if sync {
                file.sync_data()?;
            }
            Ok(())
        })?;
        offsets.insert(trace.run_id.as_str(), (offset, line.len()));
        offset += line.len() as u64;
    }
    let append = samples.stats("append_line");
    drop(file);

    let file = File::open(&path)?;
    let mut samples = Samples::with_capacity(load_ids.len());
    for id in load_ids {
        let &(at, len) = offsets
            .get(id.as_str())
            .ok_or_else(|| format!("bare file: {id:?} was never appended"))?;
        let mut buf = vec![0u8; len];
        samples.time(|| file.read_exact_at(&mut buf, at))?;
    }
    let pread = samples.stats("pread_line");
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(BaselineRun {
        engine: Backend::Jsonl,
        how: format!(
            "one write(2) of body+newline per trace on an O_APPEND file{}; pread of the whole line by a known offset",
            if sync { ", fsync after each" } else { "" }
        ),
        ops: vec![append, pread],
    })
}

/// Bare Redis: per trace `SET body` + `ZADD created_at` in one round trip (a
/// MULTI/EXEC pipeline), then the same pipelined in batches, then `GET` by run_id.
fn redis(
    env: &Env,
    traces: &[Trace],
    bodies: &[Vec<u8>],
    load_ids: &[String],
) -> BenchResult<BaselineRun> {
    let redis_env = env.redis()?;
    let mut con = redis_env.connection()?;
    let mut ops = Vec::new();

    let round_trip = redis_env.prefix("baseline-rt");
    let mut samples = Samples::with_capacity(bodies.len());
    for (trace, body) in traces.iter().zip(bodies) {
        let key = format!("{round_trip}:t:{}", trace.run_id);
        samples.time(|| {
            redis::pipe()
                .atomic()
                .set(&key, body.as_slice())
                .ignore()
                .zadd(
                    format!("{round_trip}:by_time"),
                    &key,
                    trace.created_at.as_micros(),
                )
                .ignore()
                .query::<()>(&mut con)
        })?;
    }
    ops.push(samples.stats("set_zadd_round_trip"));

    let mut samples = Samples::with_capacity(load_ids.len());
    for id in load_ids {
        let key = format!("{round_trip}:t:{id}");
        let body: Option<Vec<u8>> = samples.time(|| redis::cmd("GET").arg(&key).query(&mut con))?;
        if body.is_none() {
            return Err(format!("bare redis: GET {key:?} found nothing").into());
        }
    }
    ops.push(samples.stats("get"));

    let pipelined = redis_env.prefix("baseline-pipe");
    let mut samples = Samples::with_capacity(1);
    samples.time(|| -> redis::RedisResult<()> {
        for (chunk_traces, chunk_bodies) in traces
            .chunks(REDIS_PIPELINE_BATCH)
            .zip(bodies.chunks(REDIS_PIPELINE_BATCH))
        {
            let mut pipe = redis::pipe();
            for (trace, body) in chunk_traces.iter().zip(chunk_bodies) {
                let key = format!("{pipelined}:t:{}", trace.run_id);
                pipe.set(&key, body.as_slice())
                    .ignore()
                    .zadd(
                        format!("{pipelined}:by_time"),
                        &key,
                        trace.created_at.as_micros(),
                    )
                    .ignore();
            }
            pipe.query::<()>(&mut con)?;
        }
        Ok(())
    })?;
    ops.push(samples.stats("set_zadd_pipeline"));

    redis_env.remove_store("baseline-rt")?;
    redis_env.remove_store("baseline-pipe")?;
    Ok(BaselineRun {
        engine: Backend::Redis,
        how: format!(
            "redis crate, one connection: SET body + ZADD created_at per trace as one MULTI/EXEC round trip; the same pipelined {REDIS_PIPELINE_BATCH} traces per round trip; GET by key"
        ),
        ops,
    })
}

const POSTGRES_SCHEMA: &str = "CREATE TABLE {t} (
    run_id TEXT COLLATE \"C\" PRIMARY KEY,
    created_at BIGINT NOT NULL,
    body TEXT NOT NULL
)";

/// The same bodies through a bare tokio-postgres client: one upsert per trace (one
/// round trip), all of them in one transaction, and a select by primary key.
fn postgres(
    env: &Env,
    traces: &[Trace],
    bodies: &[Vec<u8>],
    load_ids: &[String],
) -> BenchResult<BaselineRun> {
    let pg = env.postgres()?;
    let client = pg.connect()?;
    let schema = pg.schema("baseline");
    let table = format!("\"{schema}\".bare");
    pg.block_on(client.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; {}",
        POSTGRES_SCHEMA.replace("{t}", &table)
    )))?;
    let insert = format!(
        "INSERT INTO {table} (run_id, created_at, body) VALUES ($1, $2, $3)
         ON CONFLICT (run_id) DO UPDATE SET created_at = EXCLUDED.created_at, body = EXCLUDED.body"
    );
    let texts: Vec<&str> = bodies
        .iter()
        .map(|b| std::str::from_utf8(b))
        .collect::<Result<_, _>>()?;
    let mut ops = Vec::new();
    let stmt = pg.block_on(client.prepare(&insert))?;
    let mut samples = Samples::with_capacity(bodies.len());
    for (trace, body) in traces.iter().zip(&texts) {
        let at = trace.created_at.as_micros();
        samples.time(|| pg.block_on(client.execute(&stmt, &[&trace.run_id, &at, body])))?;
    }
    ops.push(samples.stats("insert_row"));

    let select =
        pg.block_on(client.prepare(&format!("SELECT body FROM {table} WHERE run_id = $1")))?;
    let mut samples = Samples::with_capacity(load_ids.len());
    for id in load_ids {
        let row = samples.time(|| pg.block_on(client.query_opt(&select, &[id])))?;
        if row.is_none() {
            return Err(format!("bare postgres: {id:?} not found").into());
        }
    }
    ops.push(samples.stats("select_body"));

    pg.block_on(client.batch_execute(&format!("TRUNCATE {table}")))?;
    let mut samples = Samples::with_capacity(1);
    samples.time(|| {
        pg.block_on(async {
            client.batch_execute("BEGIN").await?;
            for (trace, body) in traces.iter().zip(&texts) {
                let at = trace.created_at.as_micros();
                client.execute(&stmt, &[&trace.run_id, &at, body]).await?;
            }
            client.batch_execute("COMMIT").await
        })
    })?;
    ops.push(samples.stats("insert_tx"));
    pg.remove_store("baseline")?;
    Ok(BaselineRun {
        engine: Backend::Postgres,
        how: "tokio-postgres, one connection: one prepared upsert of (run_id, created_at, body text) per trace; the same in one transaction; SELECT body by primary key".into(),
        ops,
    })
}
