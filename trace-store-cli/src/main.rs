#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod args;
mod demo;
mod error;
mod filter;
mod render;
mod show;
mod store;
mod transfer;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use serde_json::json;
use trace_store::{TraceFilter, TraceStore};

use args::{Cli, Command, FilterArgs};
use error::{CliError, CliResult, Context};
use render::Style;
use store::{Need, open};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if error.code != 0 {
                eprintln!("trace-store: {}", error.message);
            }
            ExitCode::from(error.code)
        }
    }
}

/// clap's help and version go out as clap writes them; a usage error is folded into
/// one line (its first paragraph), exit code 2.
fn usage_error(error: clap::Error) -> ExitCode {
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::from(error::USAGE)
        }
        _ => {
            let rendered = error.render().to_string();
            let first: Vec<&str> = rendered
                .lines()
                .take_while(|line| !line.trim().is_empty())
                .map(str::trim)
                .collect();
            let message = first.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            eprintln!("trace-store: {message} (see trace-store --help)");
            ExitCode::from(error::USAGE)
        }
    }
}

fn run(cli: &Cli) -> CliResult {
    let url = cli.store.as_str();
    let mut out = anstream::stdout().lock();
    match &cli.command {
        Command::List { limit, offset } => {
            let store = open(url, Need::Existing)?;
            let rows = store.list(*limit, *offset)?;
            if cli.json {
                return print_json(&mut out, &rows);
            }
            let total = store.count(&TraceFilter::new())?;
            if rows.is_empty() {
                let shown = store::display(url);
                if total == 0 {
                    let demo = store::command_for(url);
                    writeln!(out, "no traces in {shown}; try `{demo} demo`")?;
                } else {
                    let total = render::thousands(total);
                    writeln!(
                        out,
                        "no traces to show with --limit {limit} --offset {offset}; {shown} holds {total}"
                    )?;
                }
                return Ok(());
            }
            render::summaries(&mut out, &rows)?;
            let shown = *offset as u64 + rows.len() as u64;
            let mut footer = format!(
                "showing {}-{shown} of {}",
                offset + 1,
                render::thousands(total)
            );
            if shown < total {
                let cmd = store::command_for(url);
                footer.push_str(&format!(
                    "; next page: {cmd} list --limit {limit} --offset {shown}"
                ));
            }
            writeln!(out, "{}", Style::Dim.paint(&footer))?;
        }
        Command::Query { filter } => {
            let store = open(url, Need::Existing)?;
            let rows = store.query(&checked(filter)?)?;
            if cli.json {
                return print_json(&mut out, &rows);
            }
            if rows.is_empty() {
                writeln!(out, "no trace matched")?;
            } else {
                render::summaries(&mut out, &rows)?;
                let n = rows.len();
                let footer = format!("{} trace{}", n, if n == 1 { "" } else { "s" });
                writeln!(out, "{}", Style::Dim.paint(&footer))?;
            }
        }
        Command::Show { run_id } => {
            let store = open(url, Need::Existing)?;
            let trace = store.load(run_id).map_err(|error| match error {
                trace_store::Error::NotFound { .. } => {
                    let shown = store::display(url);
                    CliError::not_found(format!("no trace with run_id {run_id:?} in {shown}"))
                }
                other => other.into(),
            })?;
            if cli.json {
                serde_json::to_writer_pretty(&mut out, &trace)?;
                writeln!(out)?;
            } else {
                show::write(&mut out, &trace)?;
            }
        }
        Command::Stats { filter } => {
            let store = open(url, Need::Existing)?;
            let stats = store.stats(&checked(filter)?)?;
            if cli.json {
                return print_json(&mut out, &stats);
            }
            render::stats(&mut out, &stats)?;
        }
        Command::Delete { run_ids } => {
            let store = open(url, Need::Existing)?;
            let mut deleted = Vec::new();
            let mut missing = Vec::new();
            for run_id in run_ids {
                if store
                    .delete(run_id)
                    .context(|| format!("cannot delete {run_id:?}"))?
                {
                    deleted.push(run_id.as_str());
                } else {
                    missing.push(run_id.as_str());
                }
            }
            if cli.json {
                print_json(&mut out, &json!({"deleted": deleted, "not_found": missing}))?;
            } else {
                for run_id in &deleted {
                    writeln!(out, "deleted {run_id}")?;
                }
            }
            if !missing.is_empty() {
                let list: Vec<String> = missing.iter().map(|id| format!("{id:?}")).collect();
                return Err(CliError::not_found(format!(
                    "no trace with run_id {} in {}",
                    list.join(", "),
                    store::display(url)
                )));
            }
        }
        Command::Export { filter, output } => {
            transfer::export(
                url,
                &checked(filter)?,
                output.as_deref(),
                cli.json,
                &mut out,
            )?;
        }
        Command::Import {
            files,
            format,
            strict,
        } => {
            transfer::import(url, files, (*format).into(), *strict, cli.json, &mut out)?;
        }
        Command::Copy { to, filter } => {
            transfer::copy(url, to, &checked(filter)?, cli.json, &mut out)?;
        }
        Command::Compact => transfer::compact(url, cli.json, &mut out)?,
        Command::Demo { runs } => demo::run(url, usize::from(*runs), cli.json, &mut out)?,
    }
    Ok(())
}

/// The filter, rejected before any store work if it contradicts itself.
fn checked(args: &FilterArgs) -> CliResult<TraceFilter> {
    let filter = args.to_filter()?;
    filter.validate()?;
    Ok(filter)
}

fn print_json(out: &mut dyn Write, value: &impl serde::Serialize) -> CliResult {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
