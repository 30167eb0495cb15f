//! Parallel batches: a large input split into [`Partition`]s, each worked
//! through by one item of a fan-out with checkpoints of its own, and the
//! results converging in the step after it.
//!
//! There is no special kind of step: the split is a step that returns the
//! partitions, the workers are a fan-out over it
//! (`#[step(for_each = split)]`, so `concurrency` bounds them and each
//! has its own attempts, lease and checkpoint), and the join receives the
//! workers' results in partition order. What this module adds is the
//! arithmetic: even partitions ([`partitions`], [`partitions_of`]) and the
//! chunks of one partition from a cursor ([`Partition::chunks_from`]), so
//! a worker that resumes from its checkpoint starts at the right row.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tasker::batch::{partitions, Partition};
//! use tasker::prelude::*;
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct Import { rows: u64 }
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct Progress { next: u64, imported: u64 }
//!
//! pub struct NightlyImport;
//!
//! #[task_handler(namespace = "imports", context = Import)]
//! impl NightlyImport {
//!     /// Four workers' shares of the rows.
//!     #[step]
//!     async fn split(ctx: &StepContext<Import>) -> StepResult<Vec<Partition>> {
//!         Ok(partitions(ctx.context().rows, 4))
//!     }
//!
//!     /// One share, 1,000 rows at a time, resuming at its checkpoint.
//!     #[step(depends_on = split, for_each = split, retry_limit = 5)]
//!     async fn import(ctx: &StepContext<Import>, split: Partition) -> StepResult<u64> {
//!         let mut progress = ctx
//!             .checkpoint::<Progress>()
//!             .await?
//!             .unwrap_or(Progress { next: split.start, imported: 0 });
//!         for rows in split.chunks_from(progress.next, 1_000) {
//!             progress.imported += rows.end - rows.start; // the chunk's work
//!             progress.next = rows.end;
//!             ctx.save_checkpoint(&progress).await?;
//!         }
//!         Ok(progress.imported)
//!     }
//!
//!     /// Where the workers converge.
//!     #[step(depends_on = import)]
//!     async fn report(import: Vec<u64>) -> StepResult<u64> {
//!         Ok(import.iter().sum())
//!     }
//! }
//! # fn main() {}
//! ```

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// One worker's share of a batch: rows `start..end` of the input.
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Partition {
    /// Its place among the partitions, from 0.
    pub index: u32,
    /// How many partitions the batch was split into.
    pub count: u32,
    /// Its first row.
    pub start: u64,
    /// The row after its last (`start..end`).
    pub end: u64,
}

impl Partition {
    /// Its rows.
    pub fn rows(&self) -> Range<u64> {
        self.start..self.end
    }

    /// How many rows it holds.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether it holds no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its rows from `cursor` on (a checkpoint's "next row"; the
    /// partition's start when there is none), in chunks of at most `size`
    /// rows (at least 1). A cursor before the partition starts at its
    /// start; one at or past its end yields nothing.
    ///
    /// ```
    /// use tasker::batch::Partition;
    ///
    /// let part = Partition { index: 1, count: 4, start: 250, end: 500 };
    /// let chunks: Vec<_> = part.chunks_from(300, 100).collect();
    /// assert_eq!(chunks, [300..400, 400..500]);
    /// assert_eq!(part.chunks_from(0, 1_000).collect::<Vec<_>>(), [250..500]);
    /// assert_eq!(part.chunks_from(500, 100).count(), 0);
    /// ```
    pub fn chunks_from(&self, cursor: u64, size: u64) -> impl Iterator<Item = Range<u64>> {
        let size = size.max(1);
        let end = self.end;
        let mut next = cursor.clamp(self.start, end.max(self.start));
        std::iter::from_fn(move || {
            (next < end).then(|| {
                let chunk = next..next.saturating_add(size).min(end);
                next = chunk.end;
                chunk
            })
        })
    }
}

/// Splits rows `0..rows` into `n` partitions (at least 1) as even as can
/// be: their sizes differ by at most one row, the larger first, and they
/// cover every row once, in order. Fewer than `n` when there are fewer
/// rows than that, and none for no rows.
///
/// ```
/// use tasker::batch::partitions;
///
/// let parts = partitions(10, 3);
/// let sizes: Vec<u64> = parts.iter().map(|p| p.len()).collect();
/// assert_eq!(sizes, [4, 3, 3]);
/// assert_eq!((parts[1].start, parts[1].end, parts[1].count), (4, 7, 3));
/// assert_eq!(partitions(2, 8).len(), 2);
/// assert!(partitions(0, 8).is_empty());
/// ```
pub fn partitions(rows: u64, n: u32) -> Vec<Partition> {
    let count = u64::from(n.max(1)).min(rows);
    if count == 0 {
        return Vec::new();
    }
    let (base, extra) = (rows / count, rows % count);
    let mut start = 0;
    (0..count)
        .map(|i| {
            let len = base + u64::from(i < extra);
            let part = Partition {
                index: i as u32,
                count: count as u32,
                start,
                end: start + len,
            };
            start += len;
            part
        })
        .collect()
}

/// The most partitions [`partitions_of`] makes: as many as one fan-out
/// runs over ([`crate::fan_out::MAX_ITEMS`]).
pub const MAX_PARTITIONS: u32 = crate::fan_out::MAX_ITEMS as u32;

/// Splits rows `0..rows` into partitions of `size` rows (at least 1), the
/// last one holding what is left; none for no rows. For a partition per
/// fixed amount of work, where [`partitions`] fixes the number of
/// workers. At most [`MAX_PARTITIONS`]: for more rows than that many
/// partitions of `size` hold, the size grows until they fit.
///
/// ```
/// use tasker::batch::partitions_of;
///
/// let parts = partitions_of(2_500, 1_000);
/// let rows: Vec<_> = parts.iter().map(|p| p.rows()).collect();
/// assert_eq!(rows, [0..1_000, 1_000..2_000, 2_000..2_500]);
/// assert_eq!(parts[0].count, 3);
/// ```
pub fn partitions_of(rows: u64, size: u64) -> Vec<Partition> {
    let size = size.max(1).max(rows.div_ceil(u64::from(MAX_PARTITIONS)));
    let count = rows.div_ceil(size);
    (0..count)
        .map(|i| Partition {
            index: i as u32,
            count: count as u32,
            start: i * size,
            end: if i + 1 == count { rows } else { (i + 1) * size },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The partitions cover `0..rows` once, in order, numbered in order.
    fn assert_cover(parts: &[Partition], rows: u64) {
        let mut next = 0;
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(part.index as usize, i);
            assert_eq!(part.count as usize, parts.len());
            assert_eq!(part.start, next, "{parts:?}");
            assert!(!part.is_empty(), "{parts:?}");
            next = part.end;
        }
        assert_eq!(next, rows);
    }

    #[test]
    fn even_partitions_cover_every_row_once() {
        for rows in [0, 1, 2, 7, 100, 101, 100_000, u64::MAX] {
            for n in [0, 1, 2, 3, 8, 1_000] {
                let parts = partitions(rows, n);
                assert_cover(&parts, rows);
                assert_eq!(parts.len() as u64, u64::from(n.max(1)).min(rows));
                let (min, max) = parts.iter().fold((u64::MAX, 0), |(lo, hi), p| {
                    (lo.min(p.len()), hi.max(p.len()))
                });
                assert!(
                    parts.is_empty() || max - min <= 1,
                    "{rows} in {n}: {min}..{max}"
                );
            }
        }
    }

    #[test]
    fn fixed_size_partitions_cover_every_row_once() {
        for rows in [0, 1, 999, 1_000, 1_001, 100_000] {
            for size in [0, 1, 7, 1_000] {
                let parts = partitions_of(rows, size);
                assert_cover(&parts, rows);
                assert!(parts.iter().all(|p| p.len() <= size.max(1)));
            }
        }
        // At most MAX_PARTITIONS: the size grows instead.
        let rows = u64::from(MAX_PARTITIONS) * 3 + 1;
        let parts = partitions_of(rows, 1);
        assert_cover(&parts, rows);
        assert!(parts.len() <= MAX_PARTITIONS as usize);
        assert!(parts.iter().all(|p| p.len() <= 4));
        assert!(partitions_of(u64::MAX, 1).len() <= MAX_PARTITIONS as usize);
    }

    #[test]
    fn chunks_resume_at_the_cursor_and_stay_inside() {
        let part = Partition {
            index: 0,
            count: 1,
            start: 10,
            end: 35,
        };
        let all: Vec<_> = part.chunks_from(0, 10).collect();
        assert_eq!(all, [10..20, 20..30, 30..35]);
        let resumed: Vec<_> = part.chunks_from(25, 10).map(|r| (r.start, r.end)).collect();
        assert_eq!(resumed, [(25, 35)]);
        assert_eq!(part.chunks_from(35, 10).count(), 0);
        assert_eq!(part.chunks_from(u64::MAX, 10).count(), 0);
        assert_eq!(part.chunks_from(10, 0).count(), 25);
        let top = Partition {
            index: 0,
            count: 1,
            start: u64::MAX - 3,
            end: u64::MAX,
        };
        assert_eq!(top.chunks_from(0, 10).collect::<Vec<_>>(), [top.rows()]);
    }
}
