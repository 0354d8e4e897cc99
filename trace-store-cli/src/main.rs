#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod args;
mod commands;
mod demo;
mod error;
mod filter;
mod otlp;
mod output;
mod paging;
mod render;
mod serve;
mod show;
mod store;
mod transfer;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use trace_store::TraceFilter;

use args::{Cli, Command, FilterArgs};
use error::{CliError, CliResult};

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
    let json = cli.json;
    let mut out = anstream::stdout().lock();
    let out: &mut dyn Write = &mut out;
    match &cli.command {
        Command::List {
            limit,
            offset,
            after,
        } => commands::list(url, *limit, *offset, after.as_ref(), json, out),
        Command::Query { filter, after } => {
            let mut filter = checked(filter)?;
            filter.after = after.clone();
            commands::query(url, &filter, json, out)
        }
        Command::Show { run_id, full } => commands::show(url, run_id, *full, json, out),
        Command::Stats { filter, by } => {
            commands::stats(url, &checked(filter)?, by.clone(), json, out)
        }
        Command::Delete {
            run_ids,
            where_filter,
            filter,
            yes,
        } => {
            if *where_filter {
                if !run_ids.is_empty() {
                    return Err(CliError::usage(
                        "give either run_ids or --where with filters, not both",
                    ));
                }
                commands::delete_where(url, &checked(filter)?, *yes, json, out)
            } else if filter.is_set() {
                Err(CliError::usage(
                    "filters select traces to delete only with --where (delete --where --name bot --yes)",
                ))
            } else if run_ids.is_empty() {
                Err(CliError::usage(
                    "name the run_ids to delete, or use --where with filters",
                ))
            } else {
                commands::delete(url, run_ids, json, out)
            }
        }
        Command::Purge {
            older_than,
            keep,
            dry_run,
        } => commands::purge(url, *older_than, *keep, *dry_run, json, out),
        Command::Score(score) => commands::score(url, score, json, out),
        Command::Export {
            filter,
            output,
            mode,
            format,
            otlp_http,
            headers,
        } => match otlp_http {
            Some(endpoint) => transfer::push(url, &checked(filter)?, endpoint, headers, json, out),
            None => {
                let filter = checked(filter)?;
                transfer::export(url, &filter, output.as_deref(), *mode, *format, json, out)
            }
        },
        Command::Import {
            files,
            format,
            strict,
        } => transfer::import(url, files, *format, *strict, json, out),
        Command::Copy { to, filter } => transfer::copy(url, to, &checked(filter)?, json, out),
        Command::Compact => transfer::compact(url, json, out),
        Command::Demo { runs } => demo::run(url, usize::from(*runs), json, out),
        Command::Serve(args) => serve::run(url, args),
    }
}

/// The filter, rejected before any store work if it contradicts itself.
fn checked(args: &FilterArgs) -> CliResult<TraceFilter> {
    let filter = args.to_filter()?;
    filter.validate()?;
    Ok(filter)
}

pub(crate) fn print_json(out: &mut dyn Write, value: &impl serde::Serialize) -> CliResult {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
