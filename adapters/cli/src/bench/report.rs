//! Figures as they are measured: one `RESULT` line each, then a table; and the memory readings
//! they come with.

use std::collections::BTreeMap;

/// One measured figure.
struct Figure {
    metric: String,
    value: f64,
    note: String,
}

/// Collects figures and prints them as they come, with their ratio to the pgbench ceiling
/// when one was measured.
#[derive(Default)]
pub(super) struct Report {
    figures: Vec<Figure>,
    pub(super) ceiling: BTreeMap<String, f64>,
}

impl Report {
    /// Prints and keeps one figure; `ceiling_key` names the pgbench figure it compares to.
    pub(super) fn add(
        &mut self,
        metric: impl Into<String>,
        value: f64,
        note: impl Into<String>,
        ceiling_key: Option<&str>,
    ) {
        let metric = metric.into();
        let mut note = note.into();
        if let Some(c) = ceiling_key.and_then(|k| self.ceiling.get(k)) {
            note = format!(
                "{note}; {:.2}x of pgbench {} ({c:.0}/s)",
                value / c,
                ceiling_key.unwrap_or_default()
            );
        }
        println!("RESULT\tpgqueue\t{metric}\t{value:.2}\t{note}");
        self.figures.push(Figure {
            metric,
            value,
            note,
        });
    }

    /// The table of every figure, once the run is over.
    pub(super) fn print_table(&self) {
        println!("\n{:<34} {:>12}  note", "metric", "value");
        for f in &self.figures {
            println!("{:<34} {:>12.2}  {}", f.metric, f.value, f.note);
        }
    }
}

/// A line of `/proc/<pid>/status` in MiB (`VmRSS`, `VmHWM`); 0 where there is no procfs.
pub(super) fn status_mb(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Peak resident memory of this process since the last reset, in MiB.
pub(super) fn peak_rss_mb() -> f64 {
    status_mb("self", "VmHWM")
}

/// Starts a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM).
pub(super) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_memory_lines_of_this_process() {
        let rss = status_mb("self", "VmRSS");
        assert!(rss > 0.5 && rss < 4096.0, "{rss}");
        assert!(peak_rss_mb() >= rss * 0.5);
        assert_eq!(status_mb("self", "NoSuchField"), 0.0);
        assert_eq!(status_mb("0", "VmRSS"), 0.0);
    }
}
