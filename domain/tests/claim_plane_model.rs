//! A model of the claim plane ADR 0002 proposes (docs/adr/0002-hot-path-storage.md,
//! "The claim plane's rules, checked by a model"), explored exhaustively.
//!
//! Ready rows are immutable and numbered by a per-lane sequence; a claim walks them from a
//! cursor instead of walking an index of mutable rows. The hazard is PostgreSQL's: positions
//! are taken (`nextval`) before the inserting transaction commits, transactions commit in any
//! order or abort, and a sequence never goes back, so a cursor can pass a position whose row
//! becomes visible only later. This model says how the plane stays exactly-once and loses
//! nothing anyway, and checks it over every interleaving of small cases:
//!
//! - Claims and sweeps see a snapshot taken when they start and record a receipt per
//!   position they take; a position has at most one receipt or tombstone (a primary key),
//!   which is what makes claims exactly-once. Claims hold the lane's lock (one at a time);
//!   here each claim and each sweep is one atomic step (the SQL race of ADR 0002 checks a
//!   sweep that runs beside the claims).
//! - The claim cursor may pass an invisible position whenever its *skip policy* says so
//!   (never, always, or once a claim saw it missing for a while): the policy only decides
//!   latency and order, never safety, because of the sweep.
//! - The sweep walks from its frontier to the cursor, claims every visible position without a
//!   receipt, and moves its frontier only over positions that are spent or provably aborted:
//!   an invisible position is aborted once the snapshot's `xmin` has passed the `next_xid` the
//!   sweep noted, with the cursor, when it stopped at a missing position (the *fence*, which
//!   then covers every position below that cursor). That proof needs every inserter to
//!   take its transaction id *before* its position (`pg_current_xact_id()`, then `nextval`).
//! - The cursor is itself a sequence (no row versions under a held horizon), so a claim that
//!   aborts after moving it leaves positions behind with no receipt: the sweep finds them.
//!
//! Each check can fail: the negative controls below remove one rule at a time and must find
//! a lost task or a frontier that passed a running insert. (Run in a release build, the whole
//! space of three single-task inserts, 1.1–5.5 million states per skip policy, holds too; the
//! suite explores the smaller cases that fit a debug build's test time.)
// The model's helpers panic on states the model cannot reach, like the suites' helpers.
#![allow(clippy::expect_used)]

use std::collections::HashMap;

/// When the claim cursor may pass a position whose row it cannot see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    /// Only spent positions: an aborted insert stops the cursor for good.
    Never,
    /// Every invisible position at once (the most the sweep must make up for).
    Always,
    /// Positions a claim saw missing before the clock last moved on.
    Aged,
}

/// The rules under test, and the ones the negative controls break.
#[derive(Clone, Copy, Debug)]
struct Rules {
    skip: Skip,
    /// Whether the sweep runs at all.
    sweep: bool,
    /// Whether inserters take their xid before their position (else after).
    xid_first: bool,
    /// Whether the sweep's frontier waits for the fence (else it passes invisible positions).
    fence: bool,
}

const SOUND: Rules = Rules {
    skip: Skip::Aged,
    sweep: true,
    xid_first: true,
    fence: true,
};

/// Where one inserter is in its transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Step {
    /// Taking its xid and its positions: how many of those it took.
    Taking(u8),
    Committed,
    Aborted,
}

/// One inserting transaction: it takes an xid and `rows` positions (one statement's batch),
/// then commits or aborts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Inserter {
    rows: u8,
    step: Step,
    xid: Option<u8>,
    positions: [Option<u8>; 2],
}

impl Inserter {
    fn new(rows: u8) -> Self {
        assert!((1..=2).contains(&rows));
        Self {
            rows,
            step: Step::Taking(0),
            xid: None,
            positions: [None; 2],
        }
    }

    fn in_flight(&self) -> bool {
        matches!(self.step, Step::Taking(_))
    }

    fn owns(&self, pos: u8) -> bool {
        self.positions.contains(&Some(pos))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State {
    next_xid: u8,
    inserters: Vec<Inserter>,
    /// The lane sequence's next value: positions `0..head` were given out.
    head: u8,
    /// Receipts (claims) per position, and tombstones (cancels).
    receipts: Vec<u8>,
    tombstoned: Vec<bool>,
    /// What claims have seen of a position missing: nothing, since the clock last moved
    /// (`Some(false)`), or before that (`Some(true)`: it is old).
    missing: Vec<Option<bool>>,
    cursor: u8,
    frontier: u8,
    /// The sweep's fence: (the cursor, `next_xid`) when it was set. Every position below
    /// that cursor had been given out by then, so its owner's xid is below that `next_xid`.
    fence: Option<(u8, u8)>,
    /// A transaction holding the horizon (`BEGIN; SELECT txid_current();`): its xid.
    pin: Option<u8>,
}

/// Positions a run can give out (the most rows of its inserters).
const POSITIONS: usize = 4;

impl State {
    fn new(inserters: &[u8]) -> Self {
        Self {
            next_xid: 0,
            inserters: inserters.iter().map(|&rows| Inserter::new(rows)).collect(),
            head: 0,
            receipts: vec![0; POSITIONS],
            tombstoned: vec![false; POSITIONS],
            missing: vec![None; POSITIONS],
            cursor: 0,
            frontier: 0,
            fence: None,
            pin: None,
        }
    }

    fn owner(&self, pos: u8) -> &Inserter {
        self.inserters
            .iter()
            .find(|i| i.owns(pos))
            .expect("every given position has its inserter")
    }

    fn visible(&self, pos: u8) -> bool {
        self.owner(pos).step == Step::Committed
    }

    fn spent(&self, pos: u8) -> bool {
        self.receipts[pos as usize] > 0 || self.tombstoned[pos as usize]
    }

    /// The snapshot's `xmin`: the oldest xid still running, else the next one.
    fn xmin(&self) -> u8 {
        self.inserters
            .iter()
            .filter(|i| i.in_flight())
            .filter_map(|i| i.xid)
            .chain(self.pin)
            .min()
            .unwrap_or(self.next_xid)
    }

    fn take_xid(&mut self, k: usize) {
        self.inserters[k].xid = Some(self.next_xid);
        self.next_xid += 1;
    }

    fn take_pos(&mut self, k: usize) {
        let i = &mut self.inserters[k];
        let slot = i
            .positions
            .iter_mut()
            .find(|p| p.is_none())
            .expect("a free slot");
        *slot = Some(self.head);
        self.head += 1;
    }

    /// One claim of up to `n` positions; `commit: false` is a claim whose transaction rolls
    /// back after it moved the cursor (a sequence: the move stays, the receipts do not).
    fn claim(&mut self, rules: Rules, n: u8, commit: bool) {
        let (mut taken, mut cursor, mut passing) = (Vec::new(), self.cursor, true);
        let mut seen_missing = Vec::new();
        for p in self.cursor..self.head {
            if self.visible(p) {
                if !self.spent(p) {
                    if taken.len() as u8 == n {
                        break;
                    }
                    taken.push(p);
                }
            } else {
                seen_missing.push(p);
                let skip = match rules.skip {
                    Skip::Never => false,
                    Skip::Always => true,
                    Skip::Aged => self.missing[p as usize] == Some(true),
                };
                passing &= skip;
            }
            if passing {
                cursor = p + 1;
            }
        }
        self.cursor = cursor;
        if commit {
            for p in taken {
                self.receipts[p as usize] += 1;
            }
            for p in seen_missing {
                self.missing[p as usize].get_or_insert(false);
            }
        }
    }

    /// Time passes: what claims saw missing so far is now old.
    fn age(&mut self) {
        for m in self.missing.iter_mut().flatten() {
            *m = true;
        }
    }

    /// One sweep: claims what is visible and unspent behind the cursor, and moves its
    /// frontier over positions that are spent or (by the fence) aborted.
    fn sweep(&mut self, rules: Rules) {
        let xmin = self.xmin();
        let mut passing = true;
        for p in self.frontier..self.cursor {
            if self.visible(p) {
                if !self.spent(p) {
                    self.receipts[p as usize] += 1;
                }
            } else if passing {
                let aborted = if rules.fence {
                    matches!(self.fence, Some((upto, fence)) if p < upto && fence <= xmin)
                } else {
                    true
                };
                if !aborted {
                    // A fence that covers `p` stays (it passes sooner than a new one would).
                    if self.fence.is_none_or(|(upto, _)| p >= upto) {
                        self.fence = Some((self.cursor, self.next_xid));
                    }
                    passing = false;
                }
            }
            if passing {
                self.frontier = p + 1;
            }
        }
    }

    /// Every state reachable in one step, with what the step was.
    fn successors(&self, rules: Rules) -> Vec<(String, State)> {
        let mut out = Vec::new();
        for k in 0..self.inserters.len() {
            let mut s = self.clone();
            let i = self.inserters[k];
            match i.step {
                Step::Taking(done) if done <= i.rows => {
                    // The xid first (or, breaking the rule, right after the first position).
                    let xid_now = if rules.xid_first {
                        done == 0
                    } else {
                        done == 1
                    };
                    if xid_now {
                        s.take_xid(k);
                    } else {
                        s.take_pos(k);
                    }
                    s.inserters[k].step = Step::Taking(done + 1);
                    out.push((format!("insert {k}: step"), s));
                }
                Step::Taking(_) => {
                    let mut aborted = s.clone();
                    s.inserters[k].step = Step::Committed;
                    aborted.inserters[k].step = Step::Aborted;
                    out.push((format!("insert {k}: commit"), s));
                    out.push((format!("insert {k}: abort"), aborted));
                }
                Step::Committed | Step::Aborted => {}
            }
        }
        // Claims, sweeps, cancels and the clock only ever move the plane forward, so the space
        // is finite without counting them.
        for n in [1, 2] {
            let mut s = self.clone();
            s.claim(rules, n, true);
            out.push((format!("claim {n}"), s));
        }
        let mut s = self.clone();
        s.claim(rules, 1, false);
        out.push(("claim 1, rolled back".into(), s));
        if rules.sweep {
            let mut s = self.clone();
            s.sweep(rules);
            out.push(("sweep".into(), s));
        }
        if self.missing.contains(&Some(false)) {
            let mut s = self.clone();
            s.age();
            out.push(("the clock moves on".into(), s));
        }
        for p in 0..self.head {
            if self.visible(p) && !self.spent(p) {
                let mut s = self.clone();
                s.tombstoned[p as usize] = true;
                out.push((format!("cancel {p}"), s));
            }
        }
        if self.pin.is_none() {
            let mut s = self.clone();
            s.pin = Some(s.next_xid);
            s.next_xid += 1;
            out.push(("pin the horizon".into(), s));
        }
        out
    }

    /// What must hold in every state: no position has two receipts or a receipt and a
    /// tombstone, and the frontier has passed only positions that can never change again.
    fn check_always(&self) -> Result<(), String> {
        for p in 0..self.head {
            let (r, t) = (self.receipts[p as usize], self.tombstoned[p as usize]);
            if r > 1 || (r == 1 && t) {
                return Err(format!(
                    "position {p} taken twice ({r} receipts, cancelled {t})"
                ));
            }
            if !self.visible(p) && r > 0 {
                return Err(format!("position {p} claimed while invisible"));
            }
        }
        for p in 0..self.frontier {
            let owner = self.owner(p);
            if owner.in_flight() || (owner.step == Step::Committed && !self.spent(p)) {
                return Err(format!(
                    "the sweep's frontier passed position {p} unresolved"
                ));
            }
        }
        Ok(())
    }

    /// Once every insert has ended: workers keep claiming and the sweep keeps running (the
    /// horizon may still be held); then every committed, uncancelled task has been claimed.
    fn check_drained(&self, rules: Rules) -> Result<(), String> {
        if self.inserters.iter().any(Inserter::in_flight) {
            return Ok(());
        }
        let mut s = self.clone();
        for _ in 0..POSITIONS + 2 {
            s.age();
            if rules.sweep {
                s.sweep(rules);
            }
            s.claim(rules, POSITIONS as u8, true);
        }
        s.check_always()?;
        for p in 0..s.head {
            let claimed = s.receipts[p as usize] == 1;
            if s.visible(p) && !s.tombstoned[p as usize] && !claimed {
                return Err(format!("committed position {p} is never claimed"));
            }
        }
        Ok(())
    }
}

/// Explores every reachable state; returns how many, or the first violation with the steps
/// that led to it.
fn explore(rules: Rules, inserters: &[u8]) -> Result<usize, String> {
    let start = State::new(inserters);
    // Each state seen, with the state it was first reached from and the step taken.
    let mut parent: HashMap<State, Option<(State, String)>> = HashMap::new();
    parent.insert(start.clone(), None);
    let mut stack = vec![start];
    while let Some(state) = stack.pop() {
        if let Err(e) = state
            .check_always()
            .and_then(|()| state.check_drained(rules))
        {
            let mut steps = Vec::new();
            let mut at = &state;
            while let Some(Some((from, step))) = parent.get(at) {
                steps.push(step.as_str());
                at = from;
            }
            steps.reverse();
            return Err(format!("{e}\n  after: {}", steps.join(", ")));
        }
        for (step, next) in state.successors(rules) {
            if !parent.contains_key(&next) {
                parent.insert(next.clone(), Some((state.clone(), step)));
                stack.push(next);
            }
        }
    }
    Ok(parent.len())
}

/// Three inserting transactions of one task each (the negative controls: a violation is
/// found long before the 1–5 million states of the whole space).
const INSERTS: &[u8] = &[1, 1, 1];
/// What the sound rules are checked on, whole, within a debug build's test time: two
/// transactions of one task, and two of which the first inserts a batch of two.
const WHOLE: [&[u8]; 2] = [&[1, 1], &[2, 1]];

#[test]
fn the_plane_neither_loses_nor_doubles_a_task_in_any_interleaving() {
    for inserts in WHOLE {
        for skip in [Skip::Never, Skip::Always, Skip::Aged] {
            let rules = Rules { skip, ..SOUND };
            let states = explore(rules, inserts).unwrap_or_else(|e| panic!("{skip:?}: {e}"));
            eprintln!("{inserts:?} {skip:?}: {states} states");
            assert!(states > 5_000, "{skip:?}: only {states} states explored");
        }
    }
}

#[test]
fn without_the_sweep_a_skipped_position_that_commits_late_is_lost() {
    let rules = Rules {
        skip: Skip::Always,
        sweep: false,
        ..SOUND
    };
    let e = explore(rules, INSERTS).expect_err("a loss");
    assert!(e.contains("never claimed"), "{e}");
}

#[test]
fn without_the_sweep_a_rolled_back_claim_loses_what_its_cursor_passed() {
    let rules = Rules {
        skip: Skip::Never,
        sweep: false,
        ..SOUND
    };
    let e = explore(rules, &[1, 1]).expect_err("a loss");
    assert!(
        e.contains("never claimed") && e.contains("rolled back"),
        "{e}"
    );
}

#[test]
fn a_frontier_that_does_not_wait_for_the_fence_passes_a_running_insert() {
    let rules = Rules {
        fence: false,
        ..SOUND
    };
    let e = explore(rules, INSERTS).expect_err("a violation");
    assert!(e.contains("frontier passed"), "{e}");
}

#[test]
fn the_fence_needs_the_xid_taken_before_the_position() {
    let rules = Rules {
        xid_first: false,
        ..SOUND
    };
    let e = explore(rules, INSERTS).expect_err("a violation");
    assert!(e.contains("frontier passed"), "{e}");
}

/// A lane whose first insert aborted and whose next two committed, while a transaction
/// that started before all of them holds the horizon.
fn aborted_first_under_a_pin() -> State {
    let mut s = State::new(&[1, 1, 1]);
    s.pin = Some(0);
    s.next_xid = 1;
    for k in 0..3 {
        s.take_xid(k);
        s.take_pos(k);
        s.inserters[k].step = if k == 0 {
            Step::Aborted
        } else {
            Step::Committed
        };
    }
    s
}

#[test]
fn a_held_horizon_stops_the_sweep_frontier_but_not_the_cursor() {
    let rules = SOUND;
    let mut s = aborted_first_under_a_pin();
    s.claim(rules, 2, true);
    assert_eq!((s.cursor, s.receipts[1], s.receipts[2]), (0, 1, 1));
    s.age();
    s.claim(rules, 2, true);
    assert_eq!(
        s.cursor, 3,
        "the cursor passes the aborted position once it aged"
    );
    s.sweep(rules);
    s.sweep(rules);
    assert_eq!(
        s.frontier, 0,
        "the fence cannot pass while the horizon is held"
    );
    s.pin = None;
    s.sweep(rules);
    assert_eq!(s.frontier, 3);
    s.check_always().expect("consistent");
}

#[test]
fn a_cursor_that_never_skips_stays_behind_an_aborted_insert_for_good() {
    let rules = Rules {
        skip: Skip::Never,
        ..SOUND
    };
    let mut s = aborted_first_under_a_pin();
    s.pin = None;
    for _ in 0..3 {
        s.age();
        s.sweep(rules);
        s.claim(rules, 2, true);
    }
    assert_eq!(
        (s.receipts[1], s.receipts[2]),
        (1, 1),
        "claims still take the rows"
    );
    assert_eq!(
        s.cursor, 0,
        "but every claim walks from the aborted position again"
    );
}
