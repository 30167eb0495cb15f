//! Dependency-graph analysis of a live task: critical path, dependency
//! levels, and bottlenecks ranked by their impact on what they block, with
//! Tasker's weights and thresholds (all configurable), and diagrams of the
//! task with each step coloured by its state.
//!
//! A step is a bottleneck candidate when it is in `error`, waiting to retry
//! (`ready` after a failed attempt), or `pending` behind a parent in
//! `error`. Its score:
//!
//! ```text
//! base      = downstream * downstream_weight + blocked * blocked_weight
//! path      = path_length * path_length_weight
//! penalties = error_penalty (in error) | retry_penalty (retrying) | blocked_penalty (blocked)
//!           + retry_instability * (attempts - 1)
//!           + non_retryable (a permanent error) + exhausted_retry (no attempts left)
//! score     = (base + path + penalties) * multiplier
//! multiplier = error_state (+ exhausted_retry_bonus when out of attempts) | dependency_issue (blocked) | 1
//! ```
//!
//! where `downstream` counts the steps after it, `blocked` those of them not
//! finished, and `path_length` the steps on the longest path from it to a
//! leaf; then `completed_penalty` is subtracted once per step after it that
//! is already finished (work done downstream, e.g. resolved by hand, lowers
//! its priority; the score never drops below zero). Severity: critical at
//! `critical` or more, then high, medium, low.
//!
//! Duration estimates ([`Estimate`]): the guide's formula
//!
//! ```text
//! estimated = steps * base_step_seconds + error_steps * error_penalty_seconds
//!           + retries * retry_penalty_seconds
//! ```
//!
//! and, from recorded history ([`History`]: the median duration of each
//! step's completed attempts in recent complete tasks of the same handler
//! version), the time left along the longest path of unfinished steps.

mod diagram;
mod estimate;

use std::collections::BTreeMap;

use serde::Serialize;

pub use diagram::{state_color, task_dot, task_mermaid};
pub use estimate::{Estimate, History};

use crate::graph::Graph;
use crate::state::StepState;
use crate::store::{StepRecord, TaskRecord};

/// Weights, multipliers, penalties and thresholds of the bottleneck score.
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AnalysisConfig {
    /// Per step after the bottleneck.
    pub downstream_weight: f64,
    /// Per unfinished step after it.
    pub blocked_weight: f64,
    /// Per step on its longest path to a leaf.
    pub path_length_weight: f64,
    /// Added for a step in error.
    pub error_penalty: f64,
    /// Added for a step waiting to retry.
    pub retry_penalty: f64,
    /// Added for a step blocked behind an error.
    pub blocked_penalty: f64,
    /// Subtracted per step after it that is already finished.
    pub completed_penalty: f64,
    /// Added per attempt after the first.
    pub retry_instability: f64,
    /// Added for a permanent (non-retryable) error.
    pub non_retryable: f64,
    /// Added when no attempts are left.
    pub exhausted_retry: f64,
    /// Multiplier for a step in error.
    pub error_state: f64,
    /// Added to the multiplier when no attempts are left.
    pub exhausted_retry_bonus: f64,
    /// Multiplier for a step blocked by a dependency.
    pub dependency_issue: f64,
    /// Score from which a bottleneck is critical.
    pub critical: f64,
    /// Score from which it is high.
    pub high: f64,
    /// Score from which it is medium.
    pub medium: f64,
    /// Duration estimate: seconds per step where history says nothing.
    pub base_step_seconds: f64,
    /// Duration estimate: added per step in error.
    pub error_penalty_seconds: f64,
    /// Duration estimate: added per attempt after the first.
    pub retry_penalty_seconds: f64,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            downstream_weight: 5.0,
            blocked_weight: 15.0,
            path_length_weight: 10.0,
            error_penalty: 30.0,
            retry_penalty: 10.0,
            blocked_penalty: 25.0,
            completed_penalty: 15.0,
            retry_instability: 3.0,
            non_retryable: 10.0,
            exhausted_retry: 20.0,
            error_state: 2.0,
            exhausted_retry_bonus: 0.5,
            dependency_issue: 1.2,
            critical: 100.0,
            high: 50.0,
            medium: 20.0,
            base_step_seconds: 30.0,
            error_penalty_seconds: 60.0,
            retry_penalty_seconds: 30.0,
        }
    }
}

/// How urgent a bottleneck is.
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Below `medium`.
    Low,
    /// `medium` or more.
    Medium,
    /// `high` or more.
    High,
    /// `critical` or more.
    Critical,
}

/// Why a step holds its task up.
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// The step is in error.
    Error,
    /// The step failed and waits to retry.
    Retrying,
    /// The step waits behind a parent in error.
    Blocked,
}

/// One ranked bottleneck.
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bottleneck {
    /// The step.
    pub step: String,
    /// Its state.
    pub state: StepState,
    /// What is wrong.
    pub problem: Problem,
    /// Attempts made.
    pub attempts: u32,
    /// Steps after it.
    pub downstream: usize,
    /// Unfinished steps after it.
    pub blocked: usize,
    /// Steps on its longest path to a leaf, itself included.
    pub path_length: usize,
    /// The impact score.
    pub score: f64,
    /// The score's class.
    pub severity: Severity,
    /// The last error, if any.
    pub error: Option<String>,
}

/// The analysis of one task.
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// The longest chain of steps, root first.
    pub critical_path: Vec<String>,
    /// Steps by dependency level.
    pub levels: Vec<Vec<String>>,
    /// Bottlenecks, highest score first.
    pub bottlenecks: Vec<Bottleneck>,
    /// Steps per state (states without steps are left out), as a JSON
    /// object: `{"complete": 3, "pending": 1}`.
    pub state_counts: BTreeMap<StepState, usize>,
    /// Share of steps complete or resolved, 0 to 1.
    pub completion: f64,
    /// How long the task takes, and how long it still needs.
    pub estimate: Estimate,
}

/// Analyses `task`, whose steps follow `graph`, without recorded history
/// (duration estimates from the configured seconds per step).
pub fn analyze(graph: &Graph, task: &TaskRecord, config: &AnalysisConfig) -> Analysis {
    analyze_with_history(graph, task, config, &History::default())
}

/// Analyses `task`, whose steps follow `graph`, with the recorded
/// durations of its handler's steps (see [`History::load`]).
pub fn analyze_with_history(
    graph: &Graph,
    task: &TaskRecord,
    config: &AnalysisConfig,
    history: &History,
) -> Analysis {
    let state_of = |name: &str| task.steps.iter().find(|s| s.name == name);
    let mut bottlenecks = Vec::new();
    for step in &task.steps {
        let Some(problem) = problem(step, graph, &state_of) else {
            continue;
        };
        let descendants = graph.descendants(&step.name);
        let downstream = descendants.len();
        let blocked = descendants
            .iter()
            .filter(|d| state_of(d).is_some_and(|s| !s.state.is_finished()))
            .count();
        let path_length = longest_path_from(graph, &step.name);
        let exhausted = step.attempts >= step.max_attempts && step.attempts > 0;
        let permanent = step.last_error.as_ref().is_some_and(|e| !e.is_retryable());
        let base =
            downstream as f64 * config.downstream_weight + blocked as f64 * config.blocked_weight;
        let path = path_length as f64 * config.path_length_weight;
        let mut penalties = match problem {
            Problem::Error => config.error_penalty,
            Problem::Retrying => config.retry_penalty,
            Problem::Blocked => config.blocked_penalty,
        };
        penalties += config.retry_instability * f64::from(step.attempts.saturating_sub(1));
        penalties -= config.completed_penalty * (downstream - blocked) as f64;
        if permanent && problem == Problem::Error {
            penalties += config.non_retryable;
        }
        if exhausted && problem == Problem::Error && !permanent {
            penalties += config.exhausted_retry;
        }
        let multiplier = match problem {
            Problem::Error if exhausted && !permanent => {
                config.error_state + config.exhausted_retry_bonus
            }
            Problem::Error => config.error_state,
            Problem::Blocked => config.dependency_issue,
            Problem::Retrying => 1.0,
        };
        let score = ((base + path + penalties) * multiplier).max(0.0);
        let severity = if score >= config.critical {
            Severity::Critical
        } else if score >= config.high {
            Severity::High
        } else if score >= config.medium {
            Severity::Medium
        } else {
            Severity::Low
        };
        bottlenecks.push(Bottleneck {
            step: step.name.clone(),
            state: step.state,
            problem,
            attempts: step.attempts,
            downstream,
            blocked,
            path_length,
            score,
            severity,
            error: step.last_error.as_ref().map(ToString::to_string),
        });
    }
    bottlenecks.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.step.cmp(&b.step))
    });
    let state_counts = StepState::ALL
        .iter()
        .map(|s| (*s, task.steps.iter().filter(|st| st.state == *s).count()))
        .filter(|(_, n)| *n > 0)
        .collect();
    let done = task
        .steps
        .iter()
        .filter(|s| s.state.satisfies_dependents())
        .count();
    Analysis {
        critical_path: graph
            .critical_path()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        levels: graph
            .levels()
            .into_iter()
            .map(|l| l.into_iter().map(str::to_owned).collect())
            .collect(),
        bottlenecks,
        state_counts,
        completion: if task.steps.is_empty() {
            0.0
        } else {
            done as f64 / task.steps.len() as f64
        },
        estimate: estimate::estimate(graph, task, config, history),
    }
}

fn problem<'a>(
    step: &StepRecord,
    graph: &Graph,
    state_of: &impl Fn(&str) -> Option<&'a StepRecord>,
) -> Option<Problem> {
    match step.state {
        StepState::Error => Some(Problem::Error),
        StepState::Ready if step.attempts > 0 && step.last_error.is_some() => {
            Some(Problem::Retrying)
        }
        StepState::Pending
            if graph
                .dependencies(&step.name)
                .iter()
                .any(|p| state_of(p).is_some_and(|s| s.state == StepState::Error)) =>
        {
            Some(Problem::Blocked)
        }
        _ => None,
    }
}

/// Steps on the longest path from `step` to a leaf, `step` included.
fn longest_path_from(graph: &Graph, step: &str) -> usize {
    let children = graph.dependents(step);
    1 + children
        .iter()
        .map(|c| longest_path_from(graph, c))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{StepId, TaskId};
    use crate::step::StepError;
    use crate::store::Transition;
    use crate::TaskState;

    fn step(
        name: &str,
        state: StepState,
        attempts: u32,
        max: u32,
        error: Option<StepError>,
    ) -> StepRecord {
        StepRecord {
            step_id: StepId(0),
            name: name.into(),
            state,
            attempts,
            max_attempts: max,
            output: None,
            last_error: error,
            run_at: None,
            priority: crate::Priority::Normal,
            depends_on: vec![],
            checkpoint: None,
            item_index: None,
            item: None,
            items: None,
        }
    }

    fn task(steps: Vec<StepRecord>) -> TaskRecord {
        TaskRecord {
            task_id: TaskId(1),
            namespace: "n".into(),
            name: "t".into(),
            version: "1.0.0".into(),
            state: TaskState::Error,
            context: serde_json::Value::Null,
            identity_key: None,
            initiator: None,
            source_system: None,
            reason: None,
            tags: vec![],
            priority: crate::Priority::Normal,
            deadline: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            steps,
            annotations: vec![],
        }
    }

    /// a -> {b, c} -> d -> e
    fn graph() -> Graph {
        Graph::new([
            ("a", vec![]),
            ("b", vec!["a"]),
            ("c", vec!["a"]),
            ("d", vec!["b", "c"]),
            ("e", vec!["d"]),
        ])
        .unwrap()
    }

    #[test]
    fn an_exhausted_error_scores_with_tasker_s_formula() {
        let exhausted = StepError::retryable("503");
        let t = task(vec![
            step("a", StepState::Complete, 1, 4, None),
            step("b", StepState::Error, 4, 4, Some(exhausted)),
            step("c", StepState::Complete, 1, 4, None),
            step("d", StepState::Pending, 0, 4, None),
            step("e", StepState::Pending, 0, 4, None),
        ]);
        let analysis = analyze(&graph(), &t, &AnalysisConfig::default());
        let b = &analysis.bottlenecks[0];
        assert_eq!(b.step, "b");
        assert_eq!((b.downstream, b.blocked, b.path_length), (2, 2, 3));
        // base 2*5 + 2*15 = 40; path 3*10 = 30; penalties 30 + 3*3 + 20 = 59;
        // multiplier 2.0 + 0.5.
        assert_eq!(b.score, (40.0 + 30.0 + 59.0) * 2.5);
        assert_eq!(b.severity, Severity::Critical);
        // d waits behind b: blocked, 1 downstream.
        let d = analysis.bottlenecks.iter().find(|x| x.step == "d").unwrap();
        assert_eq!(d.problem, Problem::Blocked);
        // base 5 + 15 = 20; path 2*10 = 20; penalty 25; x1.2
        assert_eq!(d.score, (20.0 + 20.0 + 25.0) * 1.2);
        assert_eq!(d.severity, Severity::High);
        assert_eq!(analysis.bottlenecks.len(), 2);
        assert_eq!(analysis.completion, 0.4);
        assert_eq!(analysis.critical_path, ["a", "b", "d", "e"]);
    }

    #[test]
    fn a_permanent_error_and_a_retrying_step_and_thresholds() {
        let config = AnalysisConfig {
            critical: 1000.0,
            high: 500.0,
            medium: 30.0,
            ..AnalysisConfig::default()
        };
        let t = task(vec![
            step("a", StepState::Complete, 1, 4, None),
            step(
                "b",
                StepState::Ready,
                2,
                4,
                Some(StepError::retryable("timeout")),
            ),
            step(
                "c",
                StepState::Error,
                1,
                4,
                Some(StepError::permanent("bad card")),
            ),
            step("d", StepState::Pending, 0, 4, None),
            step("e", StepState::Pending, 0, 4, None),
        ]);
        let analysis = analyze(&graph(), &t, &config);
        let c = analysis.bottlenecks.iter().find(|x| x.step == "c").unwrap();
        // 40 + 30 + (30 + 0 + 10) = 110, x2.0
        assert_eq!(c.score, 220.0);
        assert_eq!(c.severity, Severity::Medium);
        let b = analysis.bottlenecks.iter().find(|x| x.step == "b").unwrap();
        assert_eq!(b.problem, Problem::Retrying);
        // 40 + 30 + (10 + 3) = 83, x1
        assert_eq!(b.score, 83.0);
        assert_eq!(analysis.bottlenecks[0].step, "c", "ranked by score");
    }

    #[test]
    fn diagrams_colour_steps_by_state() {
        let t = task(vec![
            step("a", StepState::Complete, 1, 4, None),
            step("b", StepState::Error, 1, 4, None),
            step("c", StepState::InProgress, 1, 4, None),
            step("d", StepState::Pending, 0, 4, None),
            step("e", StepState::Pending, 0, 4, None),
        ]);
        let mermaid = task_mermaid(&graph(), &t);
        assert!(mermaid.contains("class s1 error\n"), "{mermaid}");
        assert!(
            mermaid.contains("classDef complete fill:#c8e6c9"),
            "{mermaid}"
        );
        let dot = task_dot(&graph(), &t, "t");
        assert!(
            dot.contains(
                "\"b\" [style=\"rounded,filled\", fillcolor=\"#ffcdd2\", xlabel=\"error\"];"
            ),
            "{dot}"
        );
        assert!(dot.ends_with("}\n"));
    }

    #[test]
    fn finished_work_downstream_lowers_a_bottleneck_never_below_zero() {
        // b failed, but d was resolved by hand and e completed after it.
        let t = task(vec![
            step("a", StepState::Complete, 1, 4, None),
            step(
                "b",
                StepState::Error,
                1,
                4,
                Some(StepError::permanent("no")),
            ),
            step("c", StepState::Complete, 1, 4, None),
            step("d", StepState::ResolvedManually, 0, 4, None),
            step("e", StepState::Complete, 1, 4, None),
        ]);
        let b = &analyze(&graph(), &t, &AnalysisConfig::default()).bottlenecks[0];
        assert_eq!((b.downstream, b.blocked), (2, 0));
        // base 2*5 = 10; path 3*10 = 30; penalties 30 + 10 - 2*15 = 10; x2.
        assert_eq!(b.score, (10.0 + 30.0 + 10.0) * 2.0);
        let heavy = AnalysisConfig {
            completed_penalty: 1000.0,
            ..AnalysisConfig::default()
        };
        assert_eq!(analyze(&graph(), &t, &heavy).bottlenecks[0].score, 0.0);
    }

    #[test]
    fn durations_come_from_history_and_the_guide_s_formula() {
        let mut done = task(vec![
            step("a", StepState::Complete, 1, 4, None),
            step("b", StepState::Complete, 1, 4, None),
        ]);
        done.steps[0].step_id = StepId(10);
        done.steps[1].step_id = StepId(11);
        let at = |ms: i64| chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap();
        let change = |step: i64, from: &str, to: &str, ms: i64| Transition {
            task_id: TaskId(1),
            step_id: Some(StepId(step)),
            from_state: Some(from.to_owned()),
            to_state: to.to_owned(),
            attempt: Some(1),
            actor: None,
            error: None,
            at: at(ms),
            seq: ms,
        };
        let trail = vec![
            change(10, "ready", "in_progress", 0),
            change(10, "in_progress", "complete", 2_000),
            change(11, "ready", "in_progress", 2_000),
            change(11, "in_progress", "ready", 3_000), // a failed attempt: not a sample
            change(11, "ready", "in_progress", 4_000),
            change(11, "in_progress", "complete", 8_000),
        ];
        let history = History::from_runs(&[(done, trail)]);
        assert_eq!(history.typical_step_seconds.get("a"), Some(&2.0));
        assert_eq!(history.typical_step_seconds.get("b"), Some(&4.0));

        // a -> b -> c; a done, b failed once and is in error, c pending.
        let graph = Graph::new([("a", vec![]), ("b", vec!["a"]), ("c", vec!["b"])]).unwrap();
        let live = task(vec![
            step("a", StepState::Complete, 1, 4, None),
            step("b", StepState::Error, 2, 4, Some(StepError::retryable("x"))),
            step("c", StepState::Pending, 0, 4, None),
        ]);
        let estimate =
            analyze_with_history(&graph, &live, &AnalysisConfig::default(), &history).estimate;
        // 3 steps * 30 + 1 error * 60 + 1 retry * 30.
        assert_eq!(estimate.formula_seconds, 180.0);
        // b: 4 (history) + 60 (error) + 30 (a retry); c: 30 (no history).
        assert_eq!(estimate.remaining_seconds, 124.0);
        assert_eq!(estimate.history_tasks, 1);
    }
}
