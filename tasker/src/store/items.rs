//! A fan-out's items in a task read: which of them it holds
//! ([`ItemWindow`]) and how many there are in each state ([`ItemCounts`]).

use serde::Serialize;

use crate::state::StepState;

/// A fan-out step's items, counted by state, on its group's
/// [`StepRecord::items`](super::StepRecord::items).
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ItemCounts {
    /// Items in all.
    pub total: u32,
    /// `pending` or `ready`: not started, or waiting for a retry.
    pub waiting: u32,
    /// `in_progress`.
    pub running: u32,
    /// `complete` or `resolved_manually`.
    pub done: u32,
    /// `error`: failed for good (with `on_item_error = "collect"`, their
    /// failures are results).
    pub failed: u32,
    /// `cancelled`.
    pub cancelled: u32,
}

impl ItemCounts {
    /// Counts `n` more items in `state`.
    pub fn add(&mut self, state: StepState, n: u32) {
        self.total += n;
        let slot = match state {
            StepState::Pending | StepState::Ready => &mut self.waiting,
            StepState::InProgress => &mut self.running,
            StepState::Complete | StepState::ResolvedManually => &mut self.done,
            StepState::Error => &mut self.failed,
            StepState::Cancelled | StepState::Skipped => &mut self.cancelled,
        };
        *slot += n;
    }
}

/// Which of each fan-out's items a task read holds: those with an index in
/// `offset..offset + limit`. The group rows and every other step are
/// always there, with [`StepRecord::items`](super::StepRecord::items) counting all the items. A read
/// through any window but [`ALL`](Self::ALL) leaves a fan-out group's
/// `output` out (`None`): it is the list of all its items' outputs, as
/// large as they are; its items hold them.
///
/// ```
/// use tasker::store::ItemWindow;
///
/// assert!(ItemWindow::ALL.holds(1_000_000));
/// let page = ItemWindow { offset: 100, limit: 50 };
/// assert!(page.holds(100) && page.holds(149) && !page.holds(150) && !page.holds(99));
/// assert!(!ItemWindow::NONE.holds(0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemWindow {
    /// The first item index held.
    pub offset: u32,
    /// How many items of each fan-out, from `offset`.
    pub limit: u32,
}

impl ItemWindow {
    /// Every item: what the engine and [`Store::task`](super::Store::task) read.
    pub const ALL: ItemWindow = ItemWindow {
        offset: 0,
        limit: u32::MAX,
    };
    /// No item: the task's steps and their items' counts only.
    pub const NONE: ItemWindow = ItemWindow {
        offset: 0,
        limit: 0,
    };

    /// The first `limit` items of each fan-out.
    pub const fn first(limit: u32) -> ItemWindow {
        ItemWindow { offset: 0, limit }
    }

    /// Whether item `index` is in the window.
    pub fn holds(&self, index: u32) -> bool {
        index >= self.offset && u64::from(index) < u64::from(self.offset) + u64::from(self.limit)
    }

    /// The window's end (exclusive), as a store binds it.
    pub fn end(&self) -> i64 {
        i64::from(self.offset) + i64::from(self.limit)
    }
}
