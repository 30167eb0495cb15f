//! A live task's graph as a diagram, each step coloured by its state.

use crate::graph::Graph;
use crate::state::StepState;
use crate::store::TaskRecord;

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
        StepState::Skipped => "#f5f5f5",
    }
}

/// The task's graph as Mermaid, each step coloured by its state and
/// labelled with it (a fan-out with its items' progress).
pub fn task_mermaid(graph: &Graph, task: &TaskRecord) -> String {
    let group = |name: &str| {
        task.steps
            .iter()
            .find(|s| s.name == name && s.item_index.is_none())
    };
    let mut out = graph.to_mermaid_with(|name| group(name).map(progress));
    for state in StepState::ALL {
        out.push_str(&format!(
            "    classDef {} fill:{},stroke:#555\n",
            state.as_str(),
            state_color(*state)
        ));
    }
    for (i, name) in graph.steps().enumerate() {
        if let Some(step) = group(name) {
            out.push_str(&format!("    class s{i} {}\n", step.state.as_str()));
        }
    }
    out
}

/// A step's state, and for a fan-out its items' progress:
/// "in_progress 3/10 items done, 1 failed".
fn progress(step: &crate::store::StepRecord) -> String {
    match step.items {
        Some(items) if items.failed > 0 => format!(
            "{} {}/{} items done, {} failed",
            step.state, items.done, items.total, items.failed
        ),
        Some(items) => format!("{} {}/{} items done", step.state, items.done, items.total),
        None => step.state.to_string(),
    }
}

/// The task's graph as Graphviz DOT, each step filled by state.
pub fn task_dot(graph: &Graph, task: &TaskRecord, title: &str) -> String {
    let mut out = graph.to_dot(title);
    out.pop(); // the closing "}\n" is re-added below
    out.pop();
    // One node per step: a fan-out's items show as counts on their group's
    // node ("in_progress 3/10 items done, 1 failed").
    for step in task.steps.iter().filter(|s| s.item_index.is_none()) {
        let label = progress(step);
        out.push_str(&format!(
            "    \"{}\" [style=\"rounded,filled\", fillcolor=\"{}\", xlabel=\"{}\"];\n",
            step.name,
            state_color(step.state),
            label
        ));
    }
    out.push_str("}\n");
    out
}
