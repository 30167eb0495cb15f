//! Limits across every worker of one database: how many steps of a group
//! may run at once, and how many may start per second.
//!
//! A [`Limit`] is the rule; [`ClaimLimit`] is one limit as a worker claims
//! under it (the steps it covers), and [`ClaimLimit::admit`] is the one
//! decision every store makes with it, under the limit's lock: given the
//! steps running now and the bucket as stored, how many may start. The
//! stores keep the bucket and count the running steps; the arithmetic is
//! here, once.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The most steps per second a rate limit may allow.
pub const MAX_PER_SECOND: f64 = 1_000_000.0;

/// A limit on a group of steps, held across every worker process that
/// shares the database: at most `concurrency` running at once, at most
/// `per_second` starting per second (a token bucket holding up to `burst`
/// starts).
///
/// ```
/// use tasker::Limit;
///
/// let fragile_api = Limit::concurrency(2).per_second(5.0);
/// assert_eq!(fragile_api.max_running(), Some(2));
/// assert_eq!(fragile_api.burst_size(), Some(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Limit {
    /// Steps of the group running at once, across all workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Steps of the group starting per second, across all workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<f64>,
    /// Starts that may happen at once after a quiet spell (default:
    /// `per_second` rounded up, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

impl Limit {
    /// At most `n` steps of the group running at once.
    pub fn concurrency(n: u32) -> Self {
        Limit {
            concurrency: Some(n),
            ..Limit::default()
        }
    }

    /// At most `rate` starts per second (on this limit or a new one).
    #[must_use]
    pub fn per_second(self, rate: f64) -> Self {
        Limit {
            per_second: Some(rate),
            ..self
        }
    }

    /// Up to `n` starts at once after a quiet spell.
    #[must_use]
    pub fn burst(self, n: u32) -> Self {
        Limit {
            burst: Some(n),
            ..self
        }
    }

    /// The concurrency cap, if any.
    pub fn max_running(&self) -> Option<u32> {
        self.concurrency
    }

    /// The bucket's size, when there is a rate.
    pub fn burst_size(&self) -> Option<u32> {
        let rate = self.per_second?;
        Some(self.burst.unwrap_or_else(|| (rate.ceil() as u32).max(1)))
    }

    /// What is wrong with this limit, if anything (a sentence to follow
    /// the limit's name or key).
    pub fn problem(&self) -> Option<String> {
        if self.concurrency.is_none() && self.per_second.is_none() {
            return Some(
                "limits nothing: give `concurrency` (steps at once), `per_second` (starts per \
                 second) or both"
                    .to_owned(),
            );
        }
        if self.concurrency == Some(0) {
            return Some("has `concurrency: 0`: give at least 1".to_owned());
        }
        if let Some(rate) = self.per_second {
            if !(rate.is_finite() && rate > 0.0 && rate <= MAX_PER_SECOND) {
                return Some(format!(
                    "has `per_second: {rate}`: give a number above 0 and at most {MAX_PER_SECOND}"
                ));
            }
        }
        match (self.burst, self.per_second) {
            (Some(0), _) => Some("has `burst: 0`: give at least 1".to_owned()),
            (Some(_), None) => {
                Some("has `burst` without `per_second`: a burst sizes a rate".to_owned())
            }
            _ => None,
        }
    }
}

/// One limit as a worker claims under it: its name (the key of its lock
/// and bucket in the store), the rule, and the steps it covers among the
/// handlers this worker serves.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimLimit {
    /// The limit's name: an `engine.limits` key, or the configuration key
    /// of an inline limit (`handlers.payments/charge.limit`).
    pub name: String,
    /// The rule.
    pub limit: Limit,
    /// The steps it covers: (handler id, step name).
    pub steps: Vec<(i64, String)>,
}

/// A limit's token bucket as a store keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Starts left.
    pub tokens: f64,
    /// Time since the bucket was last written, by the store's clock.
    pub elapsed: Duration,
}

/// What [`ClaimLimit::admit`] allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Admission {
    /// Steps that may start now.
    pub steps: u32,
    /// The bucket's tokens after refilling, before the starts are taken.
    tokens: f64,
}

impl Admission {
    /// The tokens to store once `started` steps (at most [`steps`](Self::steps))
    /// were claimed.
    pub fn tokens_after(&self, started: u32) -> f64 {
        (self.tokens - f64::from(started)).max(0.0)
    }
}

impl ClaimLimit {
    /// How many of the covered steps may start now, at most `wanted`,
    /// given `running` of them in progress and the stored bucket (`None`
    /// when the store has none yet: a full one).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasker::{Bucket, ClaimLimit, Limit};
    ///
    /// let limit = ClaimLimit {
    ///     name: "payments-api".into(),
    ///     limit: Limit::concurrency(2).per_second(1.0).burst(3),
    ///     steps: vec![],
    /// };
    /// // One running: one more may start, whatever the bucket holds.
    /// assert_eq!(limit.admit(1, None, 10).steps, 1);
    /// // None running, the bucket empty half a second ago: nothing yet.
    /// let empty = Bucket { tokens: 0.0, elapsed: Duration::from_millis(500) };
    /// assert_eq!(limit.admit(0, Some(empty), 10).steps, 0);
    /// // Two seconds later it holds two starts.
    /// let later = Bucket { tokens: 0.0, elapsed: Duration::from_secs(2) };
    /// let admitted = limit.admit(0, Some(later), 10);
    /// assert_eq!(admitted.steps, 2);
    /// assert_eq!(admitted.tokens_after(2), 0.0);
    /// ```
    pub fn admit(&self, running: u64, bucket: Option<Bucket>, wanted: u32) -> Admission {
        let mut steps = wanted;
        if let Some(cap) = self.limit.concurrency {
            let room = u64::from(cap).saturating_sub(running);
            steps = steps.min(u32::try_from(room).unwrap_or(u32::MAX));
        }
        let tokens = match (self.limit.per_second, self.limit.burst_size()) {
            (Some(rate), Some(burst)) => {
                let burst = f64::from(burst);
                let tokens = bucket.map_or(burst, |b| {
                    (b.tokens.max(0.0) + rate * b.elapsed.as_secs_f64()).min(burst)
                });
                // A hair below a whole token counts as one: the refill's
                // floating point must not hold a start back for a tick.
                let whole = (tokens + 1e-9).floor();
                steps = steps.min(whole as u32);
                tokens.max(whole)
            }
            _ => 0.0,
        };
        Admission { steps, tokens }
    }

    /// The initial bucket of this limit: full.
    pub fn full_bucket(&self) -> f64 {
        self.limit.burst_size().map_or(0.0, f64::from)
    }
}
