//! Duration estimates: the guide's formula, and the time left from the
//! recorded durations of a handler's steps.

use std::collections::BTreeMap;

use serde::Serialize;

use super::AnalysisConfig;
use crate::graph::Graph;
use crate::ids::StepId;
use crate::state::{StepState, TaskState};
use crate::store::{StepRecord, Store, StoreError, TaskFilter, TaskRecord, Transition};

/// Duration estimates of a task, in seconds.
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// The guide's formula over the whole task: steps x
    /// `base_step_seconds` + steps in error x `error_penalty_seconds` +
    /// retries x `retry_penalty_seconds`.
    pub formula_seconds: f64,
    /// Time left: the longest path through the unfinished steps, each
    /// costing its typical duration (or `base_step_seconds` without
    /// history), plus the error and retry penalties of the steps on it.
    pub remaining_seconds: f64,
    /// Typical duration of each step from recorded history (median of its
    /// completed attempts); steps without history are left out.
    pub typical_step_seconds: BTreeMap<String, f64>,
    /// Complete tasks the typical durations come from.
    pub history_tasks: usize,
}

/// Recorded durations of a handler's steps: see [`History::from_runs`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Median seconds of each step's completed attempts.
    pub typical_step_seconds: BTreeMap<String, f64>,
    /// Tasks they come from.
    pub tasks: usize,
}

impl History {
    /// Reads the audit trails of finished tasks (each with its steps):
    /// every attempt that went `in_progress -> complete` counts, by step
    /// name.
    ///
    /// ```
    /// let history = tasker::analysis::History::from_runs(&[]);
    /// assert!(history.typical_step_seconds.is_empty());
    /// ```
    pub fn from_runs(runs: &[(TaskRecord, Vec<Transition>)]) -> History {
        let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (task, transitions) in runs {
            let mut started: BTreeMap<StepId, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
            for t in transitions {
                let Some(step_id) = t.step_id else { continue };
                match (t.from_state.as_deref(), t.to_state.as_str()) {
                    (_, "in_progress") => {
                        started.insert(step_id, t.at);
                    }
                    (Some("in_progress"), "complete") => {
                        let name = task.steps.iter().find(|s| s.step_id == step_id);
                        if let (Some(start), Some(step)) = (started.remove(&step_id), name) {
                            let seconds = (t.at - start).num_milliseconds().max(0) as f64 / 1000.0;
                            samples.entry(step.name.clone()).or_default().push(seconds);
                        }
                    }
                    _ => {}
                }
            }
        }
        History {
            typical_step_seconds: samples
                .into_iter()
                .map(|(name, mut values)| {
                    values.sort_by(f64::total_cmp);
                    (name, values[values.len() / 2])
                })
                .collect(),
            tasks: runs.len(),
        }
    }

    /// The history of `task`'s handler version: the last `limit` complete
    /// tasks, their steps and audit trails (2 reads per task).
    pub async fn load<S: Store>(
        store: &S,
        task: &TaskRecord,
        limit: u32,
    ) -> Result<History, StoreError> {
        let recent = store
            .tasks(&TaskFilter {
                namespace: Some(task.namespace.clone()),
                name: Some(task.name.clone()),
                version: Some(task.version.clone()),
                state: Some(TaskState::Complete),
                limit,
                ..TaskFilter::default()
            })
            .await?;
        let mut runs = Vec::with_capacity(recent.len());
        for listed in recent {
            // The steps only: a fan-out's items count as their group.
            let record = store
                .task_view(listed.task_id, crate::store::ItemWindow::NONE)
                .await?;
            let transitions = store
                .transitions_window(listed.task_id, crate::store::TransitionWindow::STEPS)
                .await?;
            runs.push((record, transitions));
        }
        Ok(History::from_runs(&runs))
    }
}

pub(super) fn estimate(
    graph: &Graph,
    task: &TaskRecord,
    config: &AnalysisConfig,
    history: &History,
) -> Estimate {
    let retries = |s: &StepRecord| f64::from(s.attempts.saturating_sub(1));
    let errors = task
        .steps
        .iter()
        .filter(|s| s.state == StepState::Error)
        .count();
    let formula_seconds = task.steps.len() as f64 * config.base_step_seconds
        + errors as f64 * config.error_penalty_seconds
        + task.steps.iter().map(retries).sum::<f64>() * config.retry_penalty_seconds;
    // Longest path through unfinished steps, in topological order.
    let mut finish: BTreeMap<&str, f64> = BTreeMap::new();
    for name in graph.topological_order() {
        let step = task.steps.iter().find(|s| s.name == name);
        let cost = match step {
            Some(s) if s.state.satisfies_dependents() || s.state == StepState::Cancelled => 0.0,
            Some(s) => {
                history
                    .typical_step_seconds
                    .get(name)
                    .copied()
                    .unwrap_or(config.base_step_seconds)
                    + if s.state == StepState::Error {
                        config.error_penalty_seconds
                    } else {
                        0.0
                    }
                    + retries(s) * config.retry_penalty_seconds
            }
            None => config.base_step_seconds,
        };
        let start = graph
            .dependencies(name)
            .iter()
            .filter_map(|p| finish.get(p))
            .fold(0.0, |a: f64, b| a.max(*b));
        finish.insert(name, start + cost);
    }
    Estimate {
        formula_seconds,
        remaining_seconds: finish.values().fold(0.0, |a: f64, b| a.max(*b)),
        typical_step_seconds: history.typical_step_seconds.clone(),
        history_tasks: history.tasks,
    }
}
