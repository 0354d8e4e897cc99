//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use trace_store::{Status, Timestamp, TraceFilter};
use trace_store_interop::Format;

use crate::error::{CliError, CliResult};
use crate::filter::{
    MetaPair, ScoreArg, parse_age, parse_group, parse_meta, parse_score, parse_since, parse_source,
    parse_status, parse_until,
};
use crate::output::parse_mode;
use crate::paging::parse_cursor;

/// The store every command uses unless told otherwise.
pub(crate) const DEFAULT_STORE: &str = "sqlite://traces.db";

const AFTER_HELP: &str = "\
Store URLs: sqlite://traces.db (the default), sqlite::memory:, jsonl://traces.jsonl,
redis://127.0.0.1:6379/0?prefix=myapp, memory:// (gone when the command ends).

Exit codes: 0 ok; 1 the trace asked for is not there; 2 bad usage or bad input.

Start with `trace-store demo`, then `trace-store list`.";

/// Look at, query and move the execution traces of LLM agents.
#[derive(Debug, Parser)]
#[command(name = "trace-store", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// Store to use (sqlite://PATH, jsonl://PATH, redis://HOST:PORT/DB, memory://).
    #[arg(
        long,
        global = true,
        env = "TRACE_STORE_URL",
        hide_env_values = true,
        default_value = DEFAULT_STORE,
        value_name = "URL"
    )]
    pub(crate) store: String,

    /// Print JSON for programs instead of tables for people.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List traces, newest first.
    List {
        /// Most traces to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Traces to skip first.
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Start after this cursor: the `next` of a previous `--json` page.
        #[arg(long, value_name = "CURSOR", value_parser = parse_cursor)]
        after: Option<trace_store::Cursor>,
    },
    /// List the traces that match filters, newest first.
    Query {
        #[command(flatten)]
        filter: FilterArgs,
        /// Start after this cursor: the `next` of a previous `--json` page (same
        /// filters and --limit, no --offset).
        #[arg(long, value_name = "CURSOR", value_parser = parse_cursor)]
        after: Option<trace_store::Cursor>,
    },
    /// Show one trace: header, totals, scores, child runs and its step tree as a
    /// timeline with a preview of each step's content.
    Show {
        /// The trace's run_id.
        run_id: String,
        /// Print step content (input, output, tool arguments and results) in full
        /// instead of a preview.
        #[arg(long)]
        full: bool,
    },
    /// Totals (count, tokens, cost, errors) by status and by model, or per group.
    Stats {
        #[command(flatten)]
        filter: FilterArgs,
        /// One row per group: day, name, session, status, model or meta:KEY.
        #[arg(long, value_name = "GROUP", value_parser = parse_group)]
        by: Option<trace_store::GroupBy>,
    },
    /// Delete traces by run_id, or every trace that filters select (--where).
    Delete {
        /// run_ids to delete.
        #[arg(value_name = "RUN_ID")]
        run_ids: Vec<String>,
        /// Delete what the filters select; without --yes, only count it.
        #[arg(long = "where")]
        where_filter: bool,
        #[command(flatten)]
        filter: FilterArgs,
        /// Really delete what --where selects.
        #[arg(long)]
        yes: bool,
    },
    /// Apply a retention policy: delete traces older than an age, keep only the newest N.
    Purge {
        /// Delete traces created longer ago than this (30d, 12h, 2w).
        #[arg(long, value_name = "AGE", value_parser = parse_age)]
        older_than: Option<std::time::Duration>,
        /// Keep only this many of the newest traces.
        #[arg(long, value_name = "N")]
        keep: Option<u64>,
        /// Count what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Add a score (feedback, evaluation) to a run, replacing one with the same name,
    /// step and source.
    Score(ScoreArgs),
    /// Write traces as native JSON Lines (one trace per line, newest first).
    Export {
        #[command(flatten)]
        filter: FilterArgs,
        /// Where to write; `-` or none is standard output. A regular file is replaced
        /// atomically, keeping its mode and owner; a device, FIFO or /dev/stdout is
        /// written into; a symlink's target gets the data.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Mode of a file the export creates, in octal.
        #[arg(long, value_name = "OCTAL", default_value = "600", value_parser = parse_mode)]
        mode: u32,
        /// What to write: trace-store's JSON Lines, or OTLP JSON (one OpenTelemetry
        /// export request per line, as the OTel file exporter writes them).
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Push the traces to an OTLP/HTTP endpoint as protobuf instead of writing a file
        /// (Phoenix: http://127.0.0.1:6006/v1/traces; retries on 429 and 503).
        #[arg(long, value_name = "URL", conflicts_with_all = ["output", "format"])]
        otlp_http: Option<String>,
        /// A header for --otlp-http, repeatable (`--header 'Authorization=Bearer abc'`).
        #[arg(long = "header", value_name = "NAME=VALUE", requires = "otlp_http", value_parser = crate::otlp::parse_header)]
        headers: Vec<(String, String)>,
    },
    /// Read traces from files (native JSON Lines, or selectools JSON / JSONL).
    Import {
        /// Files to read; `-` reads standard input.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Format of the files; `auto` decides from each file's first record.
        #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
        format: FormatArg,
        /// Stop at the first line that cannot be read, importing nothing from files
        /// (instead of skipping and counting such lines).
        #[arg(long)]
        strict: bool,
    },
    /// Copy traces into another store (upserting).
    Copy {
        /// Store to copy into; created if needed.
        #[arg(long, value_name = "URL")]
        to: String,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Rewrite a jsonl:// store without deleted and replaced records.
    Compact,
    /// Fill the store with a realistic sample of agent runs and say what to try next.
    Demo {
        /// Number of top-level runs to create.
        #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u16).range(1..))]
        runs: u16,
    },
    /// Serve the store over HTTP: an OTLP/HTTP trace receiver (POST /v1/traces), a JSON
    /// API under /api/ and a web viewer at /.
    Serve(crate::serve::ServeArgs),
}

/// `score RUN_ID NAME [--value X] [--label L] [--comment C]`.
#[derive(Debug, Args)]
pub(crate) struct ScoreArgs {
    /// The run to score.
    pub(crate) run_id: String,
    /// What is judged (helpful, user_feedback, faithfulness, ...).
    pub(crate) name: String,
    /// Numeric value (thumbs up/down: 1/0).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) value: Option<f64>,
    /// Categorical value.
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// Why.
    #[arg(long)]
    pub(crate) comment: Option<String>,
    /// Who judged: human (default), llm, code or any name.
    #[arg(long, default_value = "human", value_parser = parse_source)]
    pub(crate) source: trace_store::ScoreSource,
    /// Score one step (its id) instead of the whole run.
    #[arg(long, value_name = "STEP_ID")]
    pub(crate) step: Option<String>,
}

/// Every criterion of a [`TraceFilter`].
#[derive(Debug, Args)]
pub(crate) struct FilterArgs {
    /// Metadata equality, repeatable (each KEY once); VALUE is JSON when it parses (42,
    /// true, null, "42"), else a string. A KEY holding '=' is quoted as JSON: '"a=b"=1'.
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub(crate) meta: Vec<MetaPair>,
    /// Created at or after: RFC 3339 (2026-01-15T09:00:00Z), a UTC date (2026-01-15,
    /// from its start), or a time ago (7d, 12h, 30m, 2w).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub(crate) since: Option<Timestamp>,
    /// Created at or before; same forms as --since, but a date runs to its end, so the
    /// whole day is included.
    #[arg(long, value_name = "WHEN", value_parser = parse_until)]
    pub(crate) until: Option<Timestamp>,
    /// At least this many steps.
    #[arg(long, value_name = "N")]
    pub(crate) min_steps: Option<usize>,
    /// At most this many steps.
    #[arg(long, value_name = "N")]
    pub(crate) max_steps: Option<usize>,
    /// Run status: ok, error, running or unset.
    #[arg(long, value_parser = parse_status)]
    pub(crate) status: Option<Status>,
    /// Agent or workflow name (exact).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Session (conversation, thread) id (exact).
    #[arg(long, value_name = "ID")]
    pub(crate) session: Option<String>,
    /// Runs started by this run (exact parent run_id).
    #[arg(long, value_name = "RUN_ID")]
    pub(crate) parent: Option<String>,
    /// Text anywhere in names, models, tools, errors, metadata, inputs and outputs
    /// (case-insensitive).
    #[arg(long)]
    pub(crate) text: Option<String>,
    /// A run-level score in a range: NAME=MIN..MAX, either bound optional (helpful=1..).
    #[arg(long, value_name = "NAME=MIN..MAX", value_parser = parse_score)]
    pub(crate) score: Option<ScoreArg>,
    /// Most traces to return.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
    /// Matches to skip first.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) offset: usize,
}

impl FilterArgs {
    /// The filter these arguments describe. A `--meta` key given twice is an error: no
    /// trace has two values for one key, and keeping either value alone would silently
    /// answer another question.
    pub(crate) fn to_filter(&self) -> CliResult<TraceFilter> {
        let mut filter = TraceFilter::new().with_offset(self.offset);
        for MetaPair(key, value) in &self.meta {
            if filter.metadata_match.contains_key(key) {
                return Err(CliError::usage(format!(
                    "--meta {key} is given twice; a trace has one value per key (run one query per value)"
                )));
            }
            filter = filter.with_metadata(key.clone(), value.clone());
        }
        if let Some(since) = self.since {
            filter = filter.with_since(since);
        }
        if let Some(until) = self.until {
            filter = filter.with_until(until);
        }
        if let Some(min) = self.min_steps {
            filter = filter.with_min_steps(min);
        }
        if let Some(max) = self.max_steps {
            filter = filter.with_max_steps(max);
        }
        if let Some(status) = self.status {
            filter = filter.with_status(status);
        }
        if let Some(name) = &self.name {
            filter = filter.with_name(name.clone());
        }
        if let Some(session) = &self.session {
            filter = filter.with_session_id(session.clone());
        }
        if let Some(parent) = &self.parent {
            filter = filter.with_parent_run_id(parent.clone());
        }
        if let Some(text) = &self.text {
            filter = filter.with_text(text.clone());
        }
        if let Some(score) = &self.score {
            filter = filter.with_score(score.name.clone(), score.min, score.max);
        }
        if let Some(limit) = self.limit {
            filter = filter.with_limit(limit);
        }
        Ok(filter)
    }

    /// True if any criterion or paging flag is given.
    pub(crate) fn is_set(&self) -> bool {
        self.to_filter()
            .map_or(true, |filter| filter != TraceFilter::new())
    }
}

/// `--format` of `import`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatArg {
    /// Decide from each file's first record.
    Auto,
    /// trace-store's JSON Lines, as `export` writes them.
    Native,
    /// AgentTrace.to_dict() JSON, JSONLTraceStore lines, {created_at, trace} lines.
    Selectools,
    /// OpenTelemetry export requests in OTLP JSON, one per line or one document.
    OtlpJson,
}

impl FormatArg {
    /// The interop crate's format; OTLP JSON is read by this crate instead.
    pub(crate) fn interop(self) -> Format {
        match self {
            FormatArg::Native => Format::Native,
            FormatArg::Selectools => Format::Selectools,
            FormatArg::Auto | FormatArg::OtlpJson => Format::Auto,
        }
    }
}

/// `--format` of `export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// trace-store's JSON Lines, one trace per line.
    Jsonl,
    /// OTLP JSON, one export request per line.
    OtlpJson,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_filter_flag_reaches_the_filter() {
        let cli = Cli::try_parse_from([
            "trace-store",
            "query",
            "--meta",
            "user_id=u_1",
            "--meta",
            "n=1",
            "--since",
            "2026-01-01T00:00:00Z",
            "--until",
            "2026-02-01",
            "--min-steps",
            "2",
            "--max-steps",
            "9",
            "--status",
            "error",
            "--name",
            "bot",
            "--limit",
            "5",
            "--offset",
            "3",
            "--session",
            "s-1",
            "--parent",
            "p-1",
            "--text",
            "Timeout",
            "--score",
            "helpful=0.5..",
        ])
        .unwrap();
        let Command::Query { filter, .. } = cli.command else {
            panic!("query")
        };
        let filter = filter.to_filter().unwrap();
        assert_eq!(filter.metadata_match["user_id"], "u_1");
        assert_eq!(filter.metadata_match["n"], 1);
        assert_eq!(
            filter.since.unwrap().to_string(),
            "2026-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            filter.until.unwrap().to_string(),
            "2026-02-01T23:59:59.999999Z"
        );
        assert_eq!((filter.min_steps, filter.max_steps), (Some(2), Some(9)));
        assert_eq!(filter.status, Some(Status::Error));
        assert_eq!(filter.name.as_deref(), Some("bot"));
        assert_eq!((filter.limit, filter.offset), (Some(5), 3));
        assert_eq!(filter.session_id.as_deref(), Some("s-1"));
        assert_eq!(filter.parent_run_id.as_deref(), Some("p-1"));
        assert_eq!(filter.text.as_deref(), Some("Timeout"));
        let score = filter.score.unwrap();
        assert_eq!(
            (score.name.as_str(), score.min, score.max),
            ("helpful", Some(0.5), None)
        );
    }
}
