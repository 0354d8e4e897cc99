//! Tables and numbers for people. Colour is written unconditionally; the anstream
//! writer drops it when standard output is not a terminal (or NO_COLOR is set).

use std::io::{self, Write};

use owo_colors::OwoColorize;
use trace_store::{Status, Timestamp, TraceStats, TraceSummary};

/// How a cell is coloured on a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Red,
    Green,
    Yellow,
    Dim,
    Bold,
}

impl Style {
    pub(crate) fn paint(self, text: &str) -> String {
        match self {
            Style::Plain => text.to_owned(),
            Style::Red => text.red().to_string(),
            Style::Green => text.green().to_string(),
            Style::Yellow => text.yellow().to_string(),
            Style::Dim => text.dimmed().to_string(),
            Style::Bold => text.bold().to_string(),
        }
    }

    pub(crate) fn of_status(status: Status) -> Style {
        match status {
            Status::Ok => Style::Green,
            Status::Error => Style::Red,
            Status::Running => Style::Yellow,
            _ => Style::Dim,
        }
    }
}

/// A table cell: its text and colour.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    text: String,
    style: Style,
}

impl Cell {
    pub(crate) fn new(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            style: Style::Plain,
        }
    }

    pub(crate) fn styled(text: impl Into<String>, style: Style) -> Cell {
        Cell {
            text: text.into(),
            style,
        }
    }
}

/// Columns left-aligned (`false`) or right-aligned (`true`), padded to the widest cell.
#[derive(Debug)]
pub(crate) struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<Cell>>,
    /// Lines printed under a row, outside the columns: (row, column, indent, text).
    notes: Vec<(usize, usize, usize, Cell)>,
}

impl Table {
    /// `columns`: header and whether the column is right-aligned (numbers).
    pub(crate) fn new(columns: &[(&'static str, bool)]) -> Table {
        Table {
            headers: columns.iter().map(|(h, _)| *h).collect(),
            right: columns.iter().map(|(_, r)| *r).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// Adds a line under the last row, starting at the column of text `indent`
    /// characters into the column `column`; it does not widen any column.
    pub(crate) fn note(&mut self, column: usize, indent: usize, cell: Cell) {
        if let Some(row) = self.rows.len().checked_sub(1) {
            self.notes.push((row, column, indent, cell));
        }
    }

    pub(crate) fn write(&self, out: &mut dyn Write, indent: &str) -> io::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.text.chars().count());
            }
        }
        let header: Vec<Cell> = self
            .headers
            .iter()
            .map(|h| Cell::styled(*h, Style::Bold))
            .collect();
        for (number, row) in std::iter::once(&header).chain(&self.rows).enumerate() {
            let mut line = String::from(indent);
            // Nothing is written after the last non-empty cell, so no line ends in
            // spaces (colour codes would hide them from a plain trim).
            let used = row
                .iter()
                .rposition(|c| !c.text.trim().is_empty())
                .map_or(0, |i| i + 1);
            for (i, cell) in row.iter().enumerate().take(used) {
                let last = i + 1 == used;
                let text = if last {
                    cell.text.trim_end()
                } else {
                    cell.text.as_str()
                };
                let pad = " ".repeat(widths[i].saturating_sub(text.chars().count()));
                if i > 0 {
                    line.push_str("  ");
                }
                if self.right[i] {
                    line.push_str(&pad);
                    line.push_str(&cell.style.paint(text));
                } else {
                    line.push_str(&cell.style.paint(text));
                    if !last {
                        line.push_str(&pad);
                    }
                }
            }
            writeln!(out, "{line}")?;
            for (_, column, extra, note) in self.notes.iter().filter(|(row, ..)| *row + 1 == number)
            {
                let start: usize = widths[..*column].iter().map(|w| w + 2).sum::<usize>() + extra;
                writeln!(
                    out,
                    "{indent}{}{}",
                    " ".repeat(start),
                    note.style.paint(&note.text)
                )?;
            }
        }
        Ok(())
    }
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// nano-USD as dollars, to the micro-dollar: `$0.033709`, `$12.50`, `$0`.
pub(crate) fn usd(nano: i64) -> String {
    if nano == 0 {
        return "$0".to_owned();
    }
    let sign = if nano < 0 { "-" } else { "" };
    let micros = (nano.unsigned_abs() + 500) / 1000;
    if micros == 0 {
        return format!("{sign}<$0.000001");
    }
    let mut text = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    while text.ends_with('0') && text.len() - text.find('.').unwrap_or(0) > 3 {
        text.pop();
    }
    format!("{sign}${text}")
}

/// nano-USD as dollars with six decimals, so a column of costs lines up; empty for 0.
pub(crate) fn usd_column(nano: i64) -> String {
    if nano == 0 {
        return String::new();
    }
    let sign = if nano < 0 { "-" } else { "" };
    let micros = (nano.unsigned_abs() + 500) / 1000;
    format!("{sign}${}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// Milliseconds for people: `0.42 ms`, `913 ms`, `4.20 s`, `2m 05s`, `1h 03m`.
pub(crate) fn duration(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 1_000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        let seconds = (ms / 1000.0).round() as u64;
        if seconds < 3600 {
            format!("{}m {:02}s", seconds / 60, seconds % 60)
        } else {
            format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60)
        }
    }
}

/// `2026-01-16 09:30:00` (UTC, to the second) for tables.
pub(crate) fn when(timestamp: Timestamp) -> String {
    timestamp
        .to_datetime()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// `2026-01-16 09:30:00.123456 UTC`, exact, for one trace.
pub(crate) fn when_exact(timestamp: Timestamp) -> String {
    timestamp
        .to_datetime()
        .format("%Y-%m-%d %H:%M:%S%.6f UTC")
        .to_string()
}

/// Input/output tokens: `1,935 / 610`, or empty when none.
pub(crate) fn tokens(input: u64, output: u64) -> String {
    if input == 0 && output == 0 {
        String::new()
    } else {
        format!("{} / {}", thousands(input), thousands(output))
    }
}

/// The summaries as a table, newest first as given.
pub(crate) fn summaries(out: &mut dyn Write, summaries: &[TraceSummary]) -> io::Result<()> {
    let mut table = Table::new(&[
        ("CREATED (UTC)", false),
        ("RUN ID", false),
        ("NAME", false),
        ("STATUS", false),
        ("STEPS", true),
        ("DURATION", true),
        ("TOKENS IN / OUT", true),
        ("COST", true),
        ("ERRORS", true),
    ]);
    for s in summaries {
        table.row(vec![
            Cell::new(when(s.created_at)),
            Cell::new(&s.run_id),
            Cell::new(s.name.as_deref().unwrap_or("-")),
            Cell::styled(s.status.as_str(), Style::of_status(s.status)),
            Cell::new(s.steps.to_string()),
            Cell::new(duration(s.total_ms)),
            Cell::new(tokens(s.input_tokens, s.output_tokens)),
            Cell::new(usd_column(s.cost_nano_usd)),
            if s.error_count > 0 {
                Cell::styled(s.error_count.to_string(), Style::Red)
            } else {
                Cell::new("")
            },
        ]);
    }
    table.write(out, "")
}

/// Totals, then one table by status and one by model.
/// One row per group of `stats --by`.
pub(crate) fn grouped_stats(
    out: &mut dyn Write,
    group: &trace_store::GroupBy,
    groups: &[(trace_store::GroupKey, TraceStats)],
) -> io::Result<()> {
    if groups.is_empty() {
        return writeln!(out, "no trace matched");
    }
    writeln!(out, "by {group}")?;
    let mut table = Table::new(&[
        ("GROUP", false),
        ("TRACES", true),
        ("TOKENS IN / OUT", true),
        ("COST", true),
        ("FAILED STEPS", true),
        ("TIME", true),
    ]);
    for (key, stats) in groups {
        table.row(vec![
            Cell::new(key.to_string()),
            Cell::new(thousands(stats.count)),
            Cell::new(tokens(stats.input_tokens, stats.output_tokens)),
            Cell::new(usd_column(stats.cost_nano_usd)),
            if stats.failed_steps > 0 {
                Cell::styled(thousands(stats.failed_steps), Style::Red)
            } else {
                Cell::new("0")
            },
            Cell::new(duration(stats.total_ms)),
        ]);
    }
    table.write(out, "")
}

pub(crate) fn stats(out: &mut dyn Write, stats: &TraceStats) -> io::Result<()> {
    let average = if stats.count == 0 {
        String::new()
    } else {
        format!(
            " (mean {} per trace)",
            duration(stats.total_ms / stats.count as f64)
        )
    };
    writeln!(out, "traces  {}", thousands(stats.count))?;
    writeln!(out, "steps   {}", thousands(stats.steps))?;
    writeln!(
        out,
        "tokens  {} in / {} out",
        thousands(stats.input_tokens),
        thousands(stats.output_tokens)
    )?;
    writeln!(out, "cost    {}", usd(stats.cost_nano_usd))?;
    writeln!(
        out,
        "time    {} in root steps{average}",
        duration(stats.total_ms)
    )?;
    let errors = thousands(stats.error_count);
    let errors = if stats.error_count > 0 {
        Style::Red.paint(&errors)
    } else {
        errors
    };
    writeln!(out, "errors  {errors}")?;
    if !stats.by_status.is_empty() {
        writeln!(out)?;
        writeln!(out, "by status")?;
        let mut table = Table::new(&[("STATUS", false), ("TRACES", true)]);
        for (status, count) in &stats.by_status {
            table.row(vec![
                Cell::styled(status.as_str(), Style::of_status(*status)),
                Cell::new(thousands(*count)),
            ]);
        }
        table.write(out, "  ")?;
    }
    if !stats.by_model.is_empty() {
        writeln!(out)?;
        writeln!(out, "by model")?;
        let mut table = Table::new(&[
            ("MODEL", false),
            ("CALLS", true),
            ("TOKENS IN", true),
            ("TOKENS OUT", true),
            ("COST", true),
        ]);
        for (model, usage) in &stats.by_model {
            table.row(vec![
                Cell::new(model),
                Cell::new(thousands(usage.calls)),
                Cell::new(thousands(usage.input_tokens)),
                Cell::new(thousands(usage.output_tokens)),
                Cell::new(usd_column(usage.cost_nano_usd)),
            ]);
        }
        table.write(out, "  ")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(usd(0), "$0");
        assert_eq!(usd(33_709_000), "$0.033709");
        assert_eq!(usd(12_500_000_000), "$12.50");
        assert_eq!(usd(1_250_000), "$0.00125");
        assert_eq!(usd(400), "<$0.000001");
        assert_eq!(usd(-2_000_000_000), "-$2.00");
        assert_eq!(usd_column(11_370_000), "$0.011370");
        assert_eq!(usd_column(0), "");
        assert_eq!(duration(0.42), "0.42 ms");
        assert_eq!(duration(913.478), "913 ms");
        assert_eq!(duration(4_200.0), "4.20 s");
        assert_eq!(duration(125_000.0), "2m 05s");
        assert_eq!(duration(3_780_000.0), "1h 03m");
    }

    #[test]
    fn tables_pad_and_align() {
        let mut table = Table::new(&[("A", false), ("NUMBER", true), ("LAST", false)]);
        table.row(vec![Cell::new("long text"), Cell::new("7"), Cell::new("x")]);
        table.row(vec![Cell::new("b"), Cell::new("1,000"), Cell::new("")]);
        let mut out = Vec::new();
        table.write(&mut out, "").unwrap();
        let text = String::from_utf8(out).unwrap();
        let plain = text.replace("\u{1b}[1m", "").replace("\u{1b}[0m", "");
        assert_eq!(
            plain,
            "A          NUMBER  LAST\nlong text       7  x\nb           1,000\n"
        );
    }
}
