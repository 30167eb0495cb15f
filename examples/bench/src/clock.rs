//! Wall-clock hand-off: when each step body of a chain ran, noted by the
//! body itself, as a user timing their own code would. The time from one
//! step's body to the next one's is what a user feels between two steps
//! (the audit trail's timestamps, written by one statement on claim on
//! release, cannot show it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tasker::StepContext;

/// (task, step number, when its body ran).
static MARKS: Mutex<Vec<(i64, u32, Instant)>> = Mutex::new(Vec::new());

/// Whether marks are kept: only in the scenario that reports them (the
/// soak runs the same chains for minutes).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Starts keeping marks.
pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Notes that step number `step` of the context's task runs now.
pub(crate) fn mark(ctx: &StepContext, step: u32) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let now = Instant::now();
    MARKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((ctx.task_id().0, step, now));
}

/// The marks taken so far, by task, each task's sorted.
fn take_by_task() -> HashMap<i64, Vec<(u32, Instant)>> {
    let marks = std::mem::take(
        &mut *MARKS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let mut by_task: HashMap<i64, Vec<(u32, Instant)>> = HashMap::new();
    for (task, step, at) in marks {
        by_task.entry(task).or_default().push((step, at));
    }
    for steps in by_task.values_mut() {
        steps.sort();
    }
    by_task
}

/// Every join: from the last of the `parents`' bodies to the `join`'s
/// body, sorted (a retried step's last run counts).
pub(crate) fn joins(parents: &[u32], join: u32) -> Vec<Duration> {
    let mut gaps = Vec::new();
    for steps in take_by_task().values() {
        let last = |n: u32| steps.iter().rev().find(|(s, _)| *s == n).map(|(_, at)| *at);
        let Some(joined) = last(join) else { continue };
        let parents: Option<Vec<Instant>> = parents.iter().map(|p| last(*p)).collect();
        if let Some(latest) = parents.and_then(|p| p.into_iter().max()) {
            gaps.push(joined.saturating_duration_since(latest));
        }
    }
    gaps.sort();
    gaps
}

/// Every hand-off: from a step's body to its successor's, sorted.
pub(crate) fn handoffs() -> Vec<Duration> {
    let mut gaps = Vec::new();
    for steps in take_by_task().values_mut() {
        // A retried step notes twice; its last run is the one the next
        // step followed.
        for pair in steps.windows(2) {
            let ((a, t_a), (b, t_b)) = (pair[0], pair[1]);
            if b == a + 1 {
                gaps.push(t_b.saturating_duration_since(t_a));
            }
        }
    }
    gaps.sort();
    gaps
}

/// The `q` quantile (0 to 1) of sorted durations, in milliseconds.
pub(crate) fn quantile_ms(sorted: &[Duration], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    Some(sorted[index].as_secs_f64() * 1000.0)
}
