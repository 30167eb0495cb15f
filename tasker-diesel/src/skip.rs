//! Skipping the branches a decision step did not choose, written once for
//! both backends (over [`SkipPrimitives`]).
//!
//! Runs inside the transaction that records the decision's completion,
//! after its attempt was checked (fenced) and before its children are
//! released: each unchosen branch goes `pending -> skipped`; a child of a
//! skipped step that waits for nothing more is released when one of its
//! dependencies completed (it runs, with `None` for the skipped ones) and
//! skipped too when all of them were skipped. Concurrent completions of
//! other parents serialize on the child's row, so exactly one of them
//! sees the last dependency go and decides.

use crate::operator::{SkipPrimitives, Tx};

/// What [`skip_unchosen`] did.
#[derive(Debug, Default)]
pub(crate) struct Skipped {
    /// The skipped steps (id, name), in the order they were skipped.
    pub(crate) steps: Vec<(i64, String)>,
    /// Steps it made ready (children of a skipped step whose other
    /// dependencies completed): workers need waking only when this is not 0.
    pub(crate) released: u32,
}

/// Skips the steps of `task_id` named `names` and what follows only from
/// them.
pub(crate) async fn skip_unchosen<P: SkipPrimitives>(
    p: &mut P,
    task_id: i64,
    names: &[&str],
    actor: &str,
) -> Tx<Skipped> {
    if names.is_empty() {
        return Ok(Skipped::default());
    }
    let mut work = p.steps_named(task_id, names).await?;
    // Popped from the end: reversed, so branches go in declaration order.
    work.reverse();
    let mut skipped = Skipped::default();
    while let Some((step_id, name)) = work.pop() {
        if !p.skip_step(step_id, task_id, actor).await? {
            continue;
        }
        for child in p.unblock_children(step_id).await? {
            if child.satisfied {
                p.release_step(child.step_id, task_id, actor).await?;
                skipped.released += 1;
            } else {
                work.push((child.step_id, child.name));
            }
        }
        skipped.steps.push((step_id, name));
    }
    if !skipped.steps.is_empty() {
        p.count_off_steps(task_id, skipped.steps.len()).await?;
    }
    Ok(skipped)
}
