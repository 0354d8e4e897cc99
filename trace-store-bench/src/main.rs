#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod backends;
mod baselines;
mod clones;
mod markdown;
mod postgres_env;
mod redis_env;
mod reference;
mod replay;
mod report;
mod scaling;
mod timing;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use trace_store::{Durability, Timestamp};

use crate::backends::{Backend, Env};
use crate::reference::Reference;
use crate::report::{Machine, Report, Settings};
use crate::workload::{EXPECTED_10K_SINCE_ROWS, EXPECTED_10K_USER_ROWS, Workload};

pub(crate) type BenchError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type BenchResult<T> = Result<T, BenchError>;

/// The workspace root, where `testdata/` lives and `../shared` is found.
const WORKSPACE_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const SMOKE_SCALING: [usize; 2] = [500, 2_000];

/// Replays selectools' workload on every trace-store backend beside raw baselines, and
/// measures how cost grows with store size.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Backends to run, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "memory,sqlite,jsonl,redis,postgres"
    )]
    backends: Vec<Backend>,
    /// Traces to import from the workload (default: all the plan names).
    #[arg(long)]
    n: Option<usize>,
    /// Write the JSON report to this file (`-` for standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the report as Markdown tables (for BENCHMARKS.md) to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Workload directory with plan.json and traces.jsonl.gz
    /// [default: ../shared/bench/selectools-workload-10k beside the workspace].
    #[arg(long)]
    workload: Option<PathBuf>,
    /// Fast correctness run for CI: the committed 200-trace sample, every backend,
    /// tiny scaling sizes; any answer that differs from the reference fails.
    #[arg(long)]
    smoke: bool,
    /// Store sizes of the scaling run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    scale: Vec<usize>,
    /// Skip the scaling run.
    #[arg(long)]
    no_scale: bool,
    /// Durability of the durable backends and their baselines: flush or sync.
    #[arg(long, default_value = "flush")]
    durability: Durability,
    /// Directory for the temporary stores (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("trace-store-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn progress(msg: &str) {
    eprintln!("[trace-store-bench] {msg}");
}

/// Runs everything; `Ok(false)` when some backend failed or answered wrongly.
fn run(args: Args) -> BenchResult<bool> {
    let root = Path::new(WORKSPACE_ROOT);
    let date = Timestamp::now().to_string();
    let load_avg_start = report::load_avg();
    let mut backends = args.backends.clone();
    backends.sort();
    backends.dedup();
    let sizes: Vec<usize> = if args.no_scale {
        Vec::new()
    } else if args.smoke {
        SMOKE_SCALING.to_vec()
    } else {
        args.scale.clone()
    };

    let (wl, import_ms) = replay::elapsed_ms(|| load_workload(&args, root));
    let wl = wl?;
    progress(&format!(
        "imported {} traces from {} in {:.0} ms",
        wl.traces.len(),
        wl.source.display(),
        import_ms
    ));
    let reference = Reference::new(&wl.traces);
    check_reference(&wl, &reference)?;
    let bodies = wl.bodies()?;

    let mut failures = Vec::new();
    let want_redis = backends.contains(&Backend::Redis);
    let want_postgres = backends.contains(&Backend::Postgres);
    let env = match Env::new(
        args.dir.as_ref(),
        args.durability,
        want_redis,
        want_postgres,
    ) {
        Ok(env) => env,
        Err(e) if want_redis || want_postgres => {
            // Find out which server is missing, and go on without it.
            let redis_ok = !want_redis || Env::new(None, args.durability, true, false).is_ok();
            if !redis_ok {
                failures.push(format!("redis: {e}"));
                backends.retain(|b| *b != Backend::Redis);
            }
            if want_postgres && (redis_ok || Env::new(None, args.durability, false, true).is_err())
            {
                failures.push(format!("postgres: {e}"));
                backends.retain(|b| *b != Backend::Postgres);
            }
            Env::new(
                args.dir.as_ref(),
                args.durability,
                backends.contains(&Backend::Redis),
                backends.contains(&Backend::Postgres),
            )?
        }
        Err(e) => return Err(e),
    };
    let redis_url = env.redis().ok().map(|r| {
        format!(
            "{}{}",
            r.url(),
            if r.is_private() {
                " (private server)"
            } else {
                ""
            }
        )
    });

    let mut replays = Vec::new();
    let mut baseline_runs = Vec::new();
    for &backend in &backends {
        progress(&format!("replay: {backend}"));
        match replay::replay(&env, backend, &wl, &reference) {
            Ok(run) => replays.push(run),
            Err(e) => failures.push(format!("replay {backend}: {e}")),
        }
        match baselines::run(&env, backend, &wl, &bodies) {
            Ok(Some(base)) => baseline_runs.push(base),
            Ok(None) => {}
            Err(e) => failures.push(format!("baseline {backend}: {e}")),
        }
    }

    let scale_backends: Vec<Backend> = backends
        .iter()
        .copied()
        .filter(|b| !matches!(b, Backend::Redis | Backend::Postgres))
        .collect();
    let (scaling, scaling_fill) = if sizes.is_empty() || scale_backends.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        match scaling::run(&env, &scale_backends, &sizes, &wl.traces, &progress) {
            Ok(done) => done,
            Err(e) => {
                failures.push(format!("scaling: {e}"));
                (Vec::new(), Vec::new())
            }
        }
    };

    let ratios = report::ratios(&replays, &baseline_runs);
    // The backend issues state their targets for the full 10k workload at the default
    // durability (Flush) only.
    let targets = if wl.is_full_10k() && args.durability == Durability::Flush {
        report::targets(&replays, &ratios)
    } else {
        Vec::new()
    };
    let (git_commit, git_dirty) = report::git_state(root);
    let report = Report {
        tool: "trace-store-bench",
        version: env!("CARGO_PKG_VERSION"),
        date,
        git_commit,
        git_dirty,
        machine: Machine {
            load_avg_start,
            load_avg_end: report::load_avg(),
            ..Machine::detect()
        },
        settings: Settings {
            workload: wl.source.display().to_string(),
            n: wl.traces.len(),
            complete_plan: wl.complete,
            durability: format!("{:?}", args.durability).to_lowercase(),
            backends: args.backends.clone(),
            scaling_sizes: sizes,
            smoke: args.smoke,
            redis: redis_url,
        },
        replay: replays,
        baselines: baseline_runs,
        ratios,
        targets,
        scaling,
        scaling_fill,
        failures,
    };
    print!("{}", report::table(&report));
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(&report)?;
        if out.as_os_str() == "-" {
            println!("{json}");
        } else {
            std::fs::write(out, json + "\n")
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            progress(&format!("JSON report written to {}", out.display()));
        }
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, markdown::render(&report))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        progress(&format!("Markdown report written to {}", path.display()));
    }
    Ok(report.failures.is_empty())
}

fn load_workload(args: &Args, root: &Path) -> BenchResult<Workload> {
    if args.smoke && args.workload.is_none() {
        // CI has no ../shared: the smoke run uses only files committed in the repo.
        let testdata = root.join("testdata");
        return Workload::from_files(
            &testdata.join("selectools-200.jsonl"),
            &testdata.join("selectools-200-plan.json"),
            args.n,
        );
    }
    let dir = args
        .workload
        .clone()
        .unwrap_or_else(|| root.join("../shared/bench/selectools-workload-10k"));
    Workload::from_dir(&dir, args.n)
}

/// The reference itself must reproduce the published row counts on the full workload,
/// or the import is not faithful and no backend figure means anything.
fn check_reference(wl: &Workload, reference: &Reference) -> BenchResult<()> {
    if reference.len() != wl.traces.len() {
        progress(&format!(
            "note: {} traces share a run_id with an earlier one (saved as upserts)",
            wl.traces.len() - reference.len()
        ));
    }
    if !wl.is_full_10k() {
        return Ok(());
    }
    let users: Vec<usize> = wl.plan.query_users[..EXPECTED_10K_USER_ROWS.len()]
        .iter()
        .map(|u| reference.by_user(u).len())
        .collect();
    let since = reference.since_min_steps(wl.since, wl.plan.min_steps).len();
    if users != EXPECTED_10K_USER_ROWS || since != EXPECTED_10K_SINCE_ROWS {
        return Err(format!(
            "the imported workload does not reproduce selectools' row counts: user queries {users:?} \
             (expected {EXPECTED_10K_USER_ROWS:?}), since query {since} (expected {EXPECTED_10K_SINCE_ROWS})"
        )
        .into());
    }
    progress("reference reproduces the expected row counts (119/102/99/107/115, 4952)");
    Ok(())
}
