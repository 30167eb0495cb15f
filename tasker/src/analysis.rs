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
//! leaf. Severity: critical at `critical` or more, then high, medium, low.

use serde::Serialize;

use crate::graph::Graph;
use crate::state::StepState;
use crate::store::{StepRecord, TaskRecord};

/// Weights, multipliers, penalties and thresholds of the bottleneck score.
#[cfg_attr(feature = "http", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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
            retry_instability: 3.0,
            non_retryable: 10.0,
            exhausted_retry: 20.0,
            error_state: 2.0,
            exhausted_retry_bonus: 0.5,
            dependency_issue: 1.2,
            critical: 100.0,
            high: 50.0,
            medium: 20.0,
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
    pub state_counts: std::collections::BTreeMap<StepState, usize>,
    /// Share of steps complete or resolved, 0 to 1.
    pub completion: f64,
}

/// Analyses `task`, whose steps follow `graph`.
pub fn analyze(graph: &Graph, task: &TaskRecord, config: &AnalysisConfig) -> Analysis {
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
        let score = (base + path + penalties) * multiplier;
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

/// The fill colour of a state in diagrams.
pub fn state_color(state: StepState) -> &'static str {
    match state {
        StepState::Pending => "#e0e0e0",
        StepState::Ready => "#bbdefb",
        StepState::InProgress => "#fff59d",
        StepState::Complete => "#c8e6c9",
        StepState::Error => "#ffcdd2",
        StepState::Cancelled => "#cfd8dc",
        StepState::ResolvedManually => "#d1c4e9",
    }
}

/// The task's graph as Mermaid, each step coloured and labelled by state.
pub fn task_mermaid(graph: &Graph, task: &TaskRecord) -> String {
    let mut out = graph.to_mermaid();
    for state in StepState::ALL {
        out.push_str(&format!(
            "    classDef {} fill:{},stroke:#555\n",
            state.as_str(),
            state_color(*state)
        ));
    }
    for (i, name) in graph.steps().enumerate() {
        if let Some(step) = task.steps.iter().find(|s| s.name == name) {
            out.push_str(&format!("    class s{i} {}\n", step.state.as_str()));
        }
    }
    out
}

/// The task's graph as Graphviz DOT, each step filled by state.
pub fn task_dot(graph: &Graph, task: &TaskRecord, title: &str) -> String {
    let mut out = graph.to_dot(title);
    out.pop(); // the closing "}\n" is re-added below
    out.pop();
    for step in &task.steps {
        out.push_str(&format!(
            "    \"{}\" [style=\"rounded,filled\", fillcolor=\"{}\", xlabel=\"{}\"];\n",
            step.name,
            state_color(step.state),
            step.state
        ));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{StepId, TaskId};
    use crate::step::StepError;
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
            depends_on: vec![],
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
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            steps,
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
}
