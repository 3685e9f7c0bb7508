//! Per-queue debounce of the `task:<namespace>:<queue>` wake-up.
//!
//! Every NOTIFY takes a cluster-wide lock at commit and wakes every listening backend; with
//! one listener it cost about 15% of a single-row insert. A burst of creates into one queue
//! needs one wake-up, not one per task: idle workers wake, then claim until the queue is
//! empty. So a create notifies from its own statement only when its queue was not notified
//! within the window ([`DEFAULT_WINDOW`], configurable) by this process (the leading edge: an isolated create wakes workers as
//! fast as before). A create inside the window inserts quietly and, once committed, makes sure
//! one trailing NOTIFY is sent at the window's end (the trailing edge), so a task created
//! during the burst is seen at most one window late, never only at the next poll.
//!
//! Safety rests on one rule: every committed quiet insert is followed by a NOTIFY sent after
//! its commit. `trail` is called after the commit and either schedules the trailing notify
//! or finds one scheduled that has not fired yet (`fired` clears the flag, under the same
//! lock, before it sends).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a queue's wake-up covers later creates, unless configured
/// ([`crate::PgOptions::notify_debounce`]).
pub const DEFAULT_WINDOW: Duration = Duration::from_millis(2);

#[derive(Debug, Default)]
struct Edge {
    /// When this queue was last notified (or will have been, by the insert that set it).
    last: Option<Instant>,
    /// A trailing notify is scheduled and has not fired yet.
    trailing: bool,
}

/// The debounce state of every queue this process creates tasks in.
#[derive(Debug)]
pub(crate) struct Debouncer {
    window: Duration,
    queues: Mutex<HashMap<String, Edge>>,
}

impl Debouncer {
    /// A debouncer whose wake-ups cover `window` (zero: every create notifies itself).
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the create about to run into `channel` should notify from its own statement.
    /// Notifies when in doubt (a poisoned lock).
    pub(crate) fn lead(&self, channel: &str, now: Instant) -> bool {
        let Ok(mut queues) = self.queues.lock() else {
            return true;
        };
        let edge = queues.entry(channel.to_string()).or_default();
        let quiet = edge.last.is_some_and(|last| now < last + self.window);
        if !quiet {
            edge.last = Some(now);
        }
        !quiet
    }

    /// Called once a quiet create committed: `Some(at)` when the caller must send the trailing
    /// notify at `at` (and then call [`Debouncer::fired`]), `None` when one is already due.
    pub(crate) fn trail(&self, channel: &str, now: Instant) -> Option<Instant> {
        let Ok(mut queues) = self.queues.lock() else {
            return Some(now);
        };
        let edge = queues.entry(channel.to_string()).or_default();
        if edge.trailing {
            return None;
        }
        edge.trailing = true;
        Some(edge.last.map_or(now, |last| (last + self.window).max(now)))
    }

    /// The trailing notify of `channel` is being sent now: creates from here on need another.
    pub(crate) fn fired(&self, channel: &str, now: Instant) {
        if let Ok(mut queues) = self.queues.lock() {
            let edge = queues.entry(channel.to_string()).or_default();
            edge.trailing = false;
            edge.last = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "task:app:q";
    const WINDOW: Duration = DEFAULT_WINDOW;

    #[test]
    fn an_isolated_create_notifies_itself() {
        let d = Debouncer::new(WINDOW);
        let t0 = Instant::now();
        assert!(d.lead(Q, t0));
        assert!(d.lead(Q, t0 + WINDOW), "a window later it leads again");
        assert!(
            d.lead("task:app:other", t0 + WINDOW),
            "queues are independent"
        );
    }

    #[test]
    fn a_burst_gets_one_trailing_notify_at_the_window_end() {
        let d = Debouncer::new(WINDOW);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert!(d.lead(Q, t0));
        assert!(!d.lead(Q, t0 + ms(1)));
        assert_eq!(d.trail(Q, t0 + ms(1)), Some(t0 + WINDOW));
        // Another quiet create before the trailing notify fires rides on it.
        assert!(!d.lead(Q, t0 + ms(1)));
        assert_eq!(d.trail(Q, t0 + ms(1)), None);
        // The trailing notify fires; a quiet create that commits after it needs its own.
        d.fired(Q, t0 + WINDOW);
        assert!(!d.lead(Q, t0 + ms(3)));
        assert_eq!(d.trail(Q, t0 + ms(3)), Some(t0 + WINDOW + WINDOW));
    }

    #[test]
    fn a_quiet_create_that_commits_late_is_notified_at_once() {
        let d = Debouncer::new(WINDOW);
        let t0 = Instant::now();
        assert!(d.lead(Q, t0));
        assert!(!d.lead(Q, t0 + Duration::from_millis(1)));
        // Its commit took 50 ms: the window is long over, notify now.
        let late = t0 + Duration::from_millis(51);
        assert_eq!(d.trail(Q, late), Some(late));
    }

    #[test]
    fn a_zero_window_notifies_every_create() {
        let d = Debouncer::new(Duration::ZERO);
        let t0 = Instant::now();
        assert!(d.lead(Q, t0));
        assert!(d.lead(Q, t0));
    }
}
