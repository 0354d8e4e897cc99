//! One function per subcommand that reads or changes traces in place.

use std::io::Write;
use std::time::Duration;

use serde_json::json;
use trace_store::{
    Cursor, Error, GroupBy, RetentionPolicy, Score, Timestamp, Trace, TraceFilter, TraceStore,
    TraceStoreExt,
};

use crate::args::ScoreArgs;
use crate::error::{CliError, CliResult, Context};
use crate::paging::Page;
use crate::print_json;
use crate::render::{self, Style};
use crate::show;
use crate::store::{self, Need, open};

pub(crate) fn list(
    url: &str,
    limit: usize,
    offset: usize,
    after: Option<&Cursor>,
    json: bool,
    out: &mut dyn Write,
) -> CliResult {
    let store = open(url, Need::Read)?;
    let mut filter = TraceFilter::new().with_limit(limit).with_offset(offset);
    filter.after = after.cloned();
    let page = Page::query(&*store, &filter)?;
    if json {
        return print_json(out, &page);
    }
    let (rows, total) = (&page.traces, page.total);
    let cmd = store::command_for(url);
    if rows.is_empty() {
        let shown = store::display(url);
        if total == 0 {
            writeln!(out, "no traces in {shown}; try `{cmd} demo`")?;
        } else {
            let total = render::thousands(total);
            let at = after.map_or_else(String::new, |_| " after the cursor".to_owned());
            writeln!(
                out,
                "no traces to show with --limit {limit} --offset {offset}{at}; {shown} holds {total}"
            )?;
        }
        return Ok(());
    }
    render::summaries(out, rows)?;
    let footer = match (after, &page.next) {
        // Without a cursor, positions are known and the next page is an offset.
        (None, _) => {
            let shown = offset as u64 + rows.len() as u64;
            let mut footer = format!(
                "showing {}-{shown} of {}",
                offset + 1,
                render::thousands(total)
            );
            if shown < total {
                footer.push_str(&format!(
                    "; next page: {cmd} list --limit {limit} --offset {shown}"
                ));
            }
            footer
        }
        (Some(_), next) => {
            let mut footer = format!("showing {} of {}", rows.len(), render::thousands(total));
            if let Some(next) = next {
                footer.push_str(&format!(
                    "; next page: {cmd} list --limit {limit} --after {next}"
                ));
            }
            footer
        }
    };
    writeln!(out, "{}", Style::Dim.paint(&footer))?;
    Ok(())
}

pub(crate) fn query(url: &str, filter: &TraceFilter, json: bool, out: &mut dyn Write) -> CliResult {
    let store = open(url, Need::Read)?;
    if json {
        return print_json(out, &Page::query(&*store, filter)?);
    }
    let rows = store.query(filter)?;
    if rows.is_empty() {
        writeln!(out, "no trace matched")?;
    } else {
        render::summaries(out, &rows)?;
        let n = rows.len();
        let footer = format!("{} trace{}", n, if n == 1 { "" } else { "s" });
        writeln!(out, "{}", Style::Dim.paint(&footer))?;
    }
    Ok(())
}

pub(crate) fn show(
    url: &str,
    run_id: &str,
    full: bool,
    json: bool,
    out: &mut dyn Write,
) -> CliResult {
    let store = open(url, Need::Read)?;
    let trace = load(&*store, url, run_id)?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &trace)?;
        writeln!(out)?;
        return Ok(());
    }
    let children = store.query(
        &TraceFilter::new()
            .with_parent_run_id(run_id)
            .with_limit(show::MAX_CHILDREN + 1),
    )?;
    show::write(out, &trace, &children, full)?;
    Ok(())
}

fn load(store: &dyn TraceStore, url: &str, run_id: &str) -> CliResult<Trace> {
    store.load(run_id).map_err(|error| match error {
        Error::NotFound { .. } => {
            let shown = store::display(url);
            CliError::not_found(format!("no trace with run_id {run_id:?} in {shown}"))
        }
        other => other.into(),
    })
}

pub(crate) fn stats(
    url: &str,
    filter: &TraceFilter,
    by: Option<GroupBy>,
    json: bool,
    out: &mut dyn Write,
) -> CliResult {
    let store = open(url, Need::Read)?;
    let Some(group) = by else {
        let stats = store.stats(filter)?;
        if json {
            return print_json(out, &stats);
        }
        return Ok(render::stats(out, &stats)?);
    };
    let groups = store.stats_by(filter, group.clone())?;
    if json {
        let groups: Vec<_> = groups
            .iter()
            .map(|(key, stats)| json!({"key": key, "label": key.to_string(), "stats": stats}))
            .collect();
        return print_json(out, &json!({"group": group.to_string(), "groups": groups}));
    }
    Ok(render::grouped_stats(out, &group, &groups)?)
}

pub(crate) fn delete(url: &str, run_ids: &[String], json: bool, out: &mut dyn Write) -> CliResult {
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
    if json {
        print_json(out, &json!({"deleted": deleted, "not_found": missing}))?;
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
    Ok(())
}

/// Without `--yes`, only counts: a filter typed slightly wrong must not empty a store.
pub(crate) fn delete_where(
    url: &str,
    filter: &TraceFilter,
    yes: bool,
    json: bool,
    out: &mut dyn Write,
) -> CliResult {
    let store = open(url, Need::Existing)?;
    if !yes {
        let matched = store.count(filter)?;
        if json {
            return print_json(
                out,
                &json!({"deleted": 0, "matched": matched, "dry_run": true}),
            );
        }
        let cmd = store::command_for(url);
        writeln!(
            out,
            "{} trace{} match; nothing deleted. Add --yes to delete them ({cmd} delete --where ... --yes)",
            render::thousands(matched),
            if matched == 1 { "" } else { "s" }
        )?;
        return Ok(());
    }
    let deleted = store.delete_where(filter)?;
    if json {
        return print_json(out, &json!({"deleted": deleted, "dry_run": false}));
    }
    writeln!(out, "deleted {} traces", render::thousands(deleted))?;
    Ok(())
}

pub(crate) fn purge(
    url: &str,
    older_than: Option<Duration>,
    keep: Option<u64>,
    dry_run: bool,
    json: bool,
    out: &mut dyn Write,
) -> CliResult {
    if older_than.is_none() && keep.is_none() {
        return Err(CliError::usage(
            "purge needs --older-than AGE, --keep N or both (purge --older-than 30d --keep 10000)",
        ));
    }
    let store = open(url, Need::Existing)?;
    let now = Timestamp::now();
    let mut policy = RetentionPolicy::new();
    if let Some(age) = older_than {
        policy = policy.with_max_age(age);
    }
    if let Some(keep) = keep {
        policy = policy.with_max_count(keep);
    }
    let report = if dry_run {
        store.purge_preview(&policy, now)?
    } else {
        store.purge(&policy, now)?
    };
    let (by_age, by_count) = (report.deleted_by_age, report.deleted_by_count);
    if json {
        return print_json(
            out,
            &json!({"deleted_by_age": by_age, "deleted_by_count": by_count, "dry_run": dry_run}),
        );
    }
    let verb = if dry_run { "would delete" } else { "deleted" };
    writeln!(
        out,
        "{verb} {} traces ({} older than the age limit, {} beyond the newest to keep)",
        render::thousands(by_age + by_count),
        render::thousands(by_age),
        render::thousands(by_count)
    )?;
    Ok(())
}

pub(crate) fn score(url: &str, args: &ScoreArgs, json: bool, out: &mut dyn Write) -> CliResult {
    if args.value.is_none() && args.label.is_none() && args.comment.is_none() {
        return Err(CliError::usage(
            "a score needs --value, --label or --comment (score RUN_ID helpful --value 1)",
        ));
    }
    let store = open(url, Need::Existing)?;
    let stored = load(&*store, url, &args.run_id)?;
    let mut score = Score::new(args.name.clone()).with_source(args.source.clone());
    score.value = args.value;
    score.label = args.label.clone();
    score.comment = args.comment.clone();
    score.step_id = args.step.clone();
    // The part carries the stored created_at so the fold keeps the run where it is.
    let part = Trace::new(args.run_id.clone())
        .with_created_at(stored.created_at)
        .with_score(score);
    let merged = store.merge(&part)?;
    if json {
        return print_json(out, &merged.scores);
    }
    writeln!(
        out,
        "scored {}: {} ({} score{} on the run)",
        args.run_id,
        args.name,
        merged.scores.len(),
        if merged.scores.len() == 1 { "" } else { "s" }
    )?;
    Ok(())
}
