//! How `import-spryker` shows its way: a bar per table on a terminal (stderr), a line per
//! table otherwise, and the summary it prints at the end.

use std::{fmt::Write as _, io::IsTerminal as _};

use indicatif::{ProgressBar, ProgressStyle};

use super::{Progress, Report, TableReport};

/// Progress on stderr: a bar while a table is read when stderr is a terminal, and one line
/// per finished table either way.
pub struct Terminal {
    bar: Option<ProgressBar>,
    terminal: bool,
}

impl Terminal {
    pub fn new() -> Self {
        Self { bar: None, terminal: std::io::stderr().is_terminal() }
    }
}

impl Default for Terminal {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for Terminal {
    fn begin(&mut self, table: &'static str, total: u64) {
        if self.terminal {
            let bar = ProgressBar::new(total).with_message(table);
            let style = ProgressStyle::with_template(
                "{msg:50} [{bar:30}] {pos}/{len} rows, {per_sec}, {eta} left",
            )
            .map(|s| s.progress_chars("=> "));
            if let Ok(style) = style {
                bar.set_style(style);
            }
            self.bar = Some(bar);
        }
    }

    fn advance(&mut self, rows: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(rows);
        }
    }

    fn end(&mut self, report: &TableReport) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        eprintln!("{}", line(report));
    }
}

/// One table's figures in a line.
pub fn line(r: &TableReport) -> String {
    let secs = r.elapsed.as_secs_f64();
    // Links are read and written with the rows they belong to, so their own time is next to
    // nothing: a rate over it would mean nothing either.
    let rate = if secs >= 0.05 { format!("{:.0}", r.read as f64 / secs) } else { "-".into() };
    format!(
        "{:<50} {:>8} read {:>8} new {:>8} changed {:>8} unchanged {:>6} removed {:>6} skipped  {:>7.1} s {:>9} rows/s",
        r.table, r.read, r.new, r.changed, r.unchanged, r.removed, r.skipped, secs, rate
    )
}

/// The summary printed at the end: each table, the changed rows listed, and what was done.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    for table in &report.tables {
        let _ = writeln!(out, "{}", line(table));
        for change in &table.changes {
            let _ = writeln!(out, "  changed {} {change}", table.table);
        }
        let unlisted = table.changed.saturating_sub(table.changes.len() as u64);
        if unlisted > 0 {
            let _ = writeln!(out, "  … and {unlisted} more changed rows of {}", table.table);
        }
    }
    let secs = report.elapsed.as_secs_f64();
    if report.dry_run {
        let _ = writeln!(out, "dry run: nothing was written ({secs:.1} s)");
    } else {
        let _ = writeln!(out, "imported in one transaction in {secs:.1} s");
    }
    out
}
