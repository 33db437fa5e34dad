//! How `stock-sync` shows a sync's progress on stderr: a bar per vendor on a terminal
//! (pages, rows, rows a second), plain lines otherwise (at most one a second per vendor,
//! plus one when each stage ends).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use aggregator_core::domain::VendorId;
use aggregator_core::service::{SyncProgress, SyncStage, SyncStep};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, lines otherwise.
    Auto,
    /// Bars.
    Bar,
    /// Plain lines.
    Lines,
    /// Nothing.
    Off,
}

/// Plain lines for one vendor come at most this often (stage ends always print).
const LINE_EVERY: Duration = Duration::from_secs(1);

/// Shows every vendor's sync progress; give it to a sync with `with_progress`.
#[derive(Debug)]
pub struct ProgressView {
    shown: Shown,
    vendors: Mutex<HashMap<VendorId, VendorState>>,
}

enum Shown {
    Bars(MultiProgress),
    Lines(Mutex<Box<dyn Write + Send>>),
}

impl std::fmt::Debug for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bars(_) => "Bars",
            Self::Lines(_) => "Lines",
        })
    }
}

#[derive(Debug)]
struct VendorState {
    started: Instant,
    /// When the current stage's first step came (rates are per stage).
    stage_started: Instant,
    bar: Option<ProgressBar>,
    last_line: Option<Instant>,
    /// The last step, how long into its stage it came, and whether a line showed it.
    last: Option<(SyncStep, Duration, bool)>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ProgressView {
    /// The view `mode` asks for, on stderr; none for `Off`.
    pub fn on_stderr(mode: ProgressMode) -> Option<Self> {
        let bars = match mode {
            ProgressMode::Off => return None,
            ProgressMode::Bar => true,
            ProgressMode::Lines => false,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
        };
        Some(if bars {
            Self::bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Self::lines(Box::new(std::io::stderr()))
        })
    }

    /// Plain lines written to `out`.
    pub fn lines(out: Box<dyn Write + Send>) -> Self {
        Self {
            shown: Shown::Lines(Mutex::new(out)),
            vendors: Mutex::new(HashMap::new()),
        }
    }

    fn bars(bars: MultiProgress) -> Self {
        Self {
            shown: Shown::Bars(bars),
            vendors: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, text: &str) {
        if let Shown::Lines(out) = &self.shown {
            let mut out = lock(out);
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }
}

/// `12,345`.
fn grouped(n: usize) -> String {
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

fn describe(step: &SyncStep, elapsed: Duration) -> String {
    let pages = match step.pages_total {
        Some(total) => format!("{}/{total}", step.pages),
        None => format!("{}/?", step.pages),
    };
    let rate = if elapsed.as_secs_f64() > 0.0 {
        // Rows a second, rounded: an estimate to read, not a figure to compute with.
        let per_second = step.rows as f64 / elapsed.as_secs_f64();
        format!("{} rows/s", grouped(per_second.round() as usize))
    } else {
        "-".to_owned()
    };
    match step.stage {
        SyncStage::Fetched => format!(
            "{}: fetched {pages} pages, {} rows ({rate})",
            step.vendor,
            grouped(step.rows)
        ),
        SyncStage::Written => format!(
            "{}: wrote {pages} batches, {} rows ({rate})",
            step.vendor,
            grouped(step.rows)
        ),
        SyncStage::Completed => format!(
            "{}: done: {} pages, {} rows written in {:.2} s",
            step.vendor,
            step.pages,
            grouped(step.rows),
            elapsed.as_secs_f64()
        ),
    }
}

impl SyncProgress for ProgressView {
    fn step(&self, step: &SyncStep) {
        let now = Instant::now();
        let mut vendors = lock(&self.vendors);
        let state = vendors
            .entry(step.vendor.clone())
            .or_insert_with(|| VendorState {
                started: now,
                stage_started: now,
                bar: None,
                last_line: None,
                last: None,
            });
        if state
            .last
            .as_ref()
            .is_some_and(|(last, _, _)| last.stage != step.stage)
        {
            state.stage_started = now;
        }
        let elapsed = if step.stage == SyncStage::Completed {
            now.duration_since(state.started)
        } else {
            now.duration_since(state.stage_started)
        };
        let mut shown_as_line = false;
        match &self.shown {
            Shown::Bars(bars) => {
                let bar = state.bar.get_or_insert_with(|| {
                    let bar = bars.add(ProgressBar::new(0));
                    if let Ok(style) = ProgressStyle::with_template("{prefix:>12} [{bar:30}] {msg}")
                    {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    bar.set_prefix(step.vendor.to_string());
                    bar
                });
                bar.set_length(u64::from(step.pages_total.unwrap_or(step.pages)));
                bar.set_position(u64::from(step.pages));
                let text = describe(step, elapsed);
                let text = text
                    .split_once(": ")
                    .map_or(text.as_str(), |(_, rest)| rest)
                    .to_owned();
                if step.stage == SyncStage::Completed {
                    bar.finish_with_message(text);
                } else {
                    bar.set_message(text);
                }
            }
            Shown::Lines(_) => {
                // A stage that ended without its last page shown (the feed did not say
                // how long it was): show where it ended.
                if let Some((last, at, false)) = &state.last
                    && last.stage != step.stage
                {
                    self.line(&describe(last, *at));
                }
                let stage_done = step.stage == SyncStage::Completed
                    || step.pages_total.is_some_and(|total| step.pages >= total);
                let due = state
                    .last_line
                    .is_none_or(|at| now.duration_since(at) >= LINE_EVERY);
                let shown = stage_done || due;
                if shown {
                    self.line(&describe(step, elapsed));
                    state.last_line = Some(now);
                }
                shown_as_line = shown;
            }
        }
        state.last = Some((step.clone(), elapsed, shown_as_line));
        if step.stage == SyncStage::Completed {
            vendors.remove(&step.vendor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn step(stage: SyncStage, pages: u32, total: Option<u32>, rows: usize) -> SyncStep {
        SyncStep {
            vendor: VendorId::new("VendorA").expect("id"),
            stage,
            pages,
            pages_total: total,
            rows,
        }
    }

    fn lines_for(steps: &[SyncStep]) -> Vec<String> {
        let buffer = Buffer::default();
        let view = ProgressView::lines(Box::new(buffer.clone()));
        for s in steps {
            view.step(s);
        }
        let text = String::from_utf8_lossy(&lock(&buffer.0)).into_owned();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn lines_show_the_first_page_each_stage_end_and_the_completion() {
        use SyncStage::{Completed, Fetched, Written};
        let lines = lines_for(&[
            step(Fetched, 1, Some(3), 1_000),
            step(Fetched, 2, Some(3), 2_000),
            step(Fetched, 3, Some(3), 2_500),
            step(Written, 1, Some(3), 1_000),
            step(Written, 2, Some(3), 2_000),
            step(Written, 3, Some(3), 2_500),
            step(Completed, 3, Some(3), 2_500),
        ]);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].starts_with("VendorA: fetched 1/3 pages, 1,000 rows ("));
        assert!(lines[1].starts_with("VendorA: fetched 3/3 pages, 2,500 rows ("));
        assert!(lines[2].starts_with("VendorA: wrote 3/3 batches, 2,500 rows ("));
        assert!(lines[3].starts_with("VendorA: done: 3 pages, 2,500 rows written in "));
    }

    #[test]
    fn a_feed_of_unknown_length_still_shows_where_fetching_ended() {
        use SyncStage::{Completed, Fetched, Written};
        let lines = lines_for(&[
            step(Fetched, 1, None, 1_000),
            step(Fetched, 2, None, 1_500),
            step(Written, 1, Some(2), 1_000),
            step(Written, 2, Some(2), 1_500),
            step(Completed, 2, Some(2), 1_500),
        ]);
        assert!(
            lines[0].starts_with("VendorA: fetched 1/? pages"),
            "{lines:#?}"
        );
        assert!(
            lines[1].starts_with("VendorA: fetched 2/? pages, 1,500 rows"),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("VendorA: wrote 2/2 batches"))
        );
        assert!(lines.last().is_some_and(|l| l.starts_with("VendorA: done")));
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(100_000), "100,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
