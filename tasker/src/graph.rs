//! The step graph of a handler: topological order, dependency levels,
//! roots, leaves, the critical path, and Mermaid / Graphviz diagrams.

use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Whether `name` is a valid namespace, handler or step name: 1 to 64
/// lowercase ASCII letters, digits and `_`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A directed acyclic graph of steps; edges point from a dependency to the
/// step that depends on it.
///
/// ```
/// use tasker::Graph;
///
/// // a -> {b, c} -> d: a diamond.
/// let graph = Graph::new([
///     ("a", vec![]),
///     ("b", vec!["a"]),
///     ("c", vec!["a"]),
///     ("d", vec!["b", "c"]),
/// ])
/// .unwrap();
/// assert_eq!(graph.topological_order(), ["a", "b", "c", "d"]);
/// assert_eq!(graph.levels(), vec![vec!["a"], vec!["b", "c"], vec!["d"]]);
/// assert_eq!(graph.critical_path(), ["a", "b", "d"]);
/// assert_eq!(graph.roots(), ["a"]);
/// assert_eq!(graph.leaves(), ["d"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    names: Vec<String>,
    parents: Vec<Vec<usize>>,
    children: Vec<Vec<usize>>,
    order: Vec<usize>,
    level: Vec<usize>,
}

/// Why a set of steps is not a valid workflow graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// No steps at all.
    #[error("the workflow has no steps")]
    Empty,
    /// Two steps share a name.
    #[error("two steps are named `{0}`")]
    DuplicateStep(String),
    /// A step name that is not lowercase `[a-z0-9_]`.
    #[error("invalid step name {0:?}: use lowercase letters, digits and `_`")]
    InvalidName(String),
    /// A dependency on a step that does not exist.
    #[error("step `{step}` depends on `{dependency}`, which is not a step")]
    UnknownDependency {
        /// The dependent step.
        step: String,
        /// The missing dependency.
        dependency: String,
    },
    /// A step that depends on itself.
    #[error("step `{0}` depends on itself")]
    SelfDependency(String),
    /// A dependency cycle, in execution order, first step repeated at the end.
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

impl Graph {
    /// Builds a graph from `(step, dependencies)` pairs in declaration
    /// order. Declaration order breaks every tie (topological order, the
    /// critical path), so results are deterministic.
    pub fn new<'a, S, D>(steps: S) -> Result<Self, GraphError>
    where
        S: IntoIterator<Item = (&'a str, D)>,
        D: IntoIterator<Item = &'a str>,
    {
        let steps: Vec<(&str, Vec<&str>)> = steps
            .into_iter()
            .map(|(name, deps)| (name, deps.into_iter().collect()))
            .collect();
        if steps.is_empty() {
            return Err(GraphError::Empty);
        }
        let names: Vec<String> = steps.iter().map(|(name, _)| (*name).to_owned()).collect();
        for (i, name) in names.iter().enumerate() {
            if !valid_name(name) {
                return Err(GraphError::InvalidName(name.clone()));
            }
            if names[..i].contains(name) {
                return Err(GraphError::DuplicateStep(name.clone()));
            }
        }
        let index_of = |name: &str| names.iter().position(|n| n == name);
        let mut parents = vec![Vec::new(); names.len()];
        let mut children = vec![Vec::new(); names.len()];
        for (i, (name, deps)) in steps.iter().enumerate() {
            for dep in deps {
                if dep == name {
                    return Err(GraphError::SelfDependency((*name).to_owned()));
                }
                let j = index_of(dep).ok_or_else(|| GraphError::UnknownDependency {
                    step: (*name).to_owned(),
                    dependency: (*dep).to_owned(),
                })?;
                if !parents[i].contains(&j) {
                    parents[i].push(j);
                    children[j].push(i);
                }
            }
        }
        for list in parents.iter_mut().chain(children.iter_mut()) {
            list.sort_unstable();
        }

        // Kahn's algorithm, always taking the earliest-declared ready step.
        let mut waiting: Vec<usize> = parents.iter().map(Vec::len).collect();
        let mut ready: BTreeSet<usize> = (0..names.len()).filter(|i| waiting[*i] == 0).collect();
        let mut order = Vec::with_capacity(names.len());
        let mut level = vec![0; names.len()];
        while let Some(node) = ready.pop_first() {
            order.push(node);
            for &child in &children[node] {
                level[child] = level[child].max(level[node] + 1);
                waiting[child] -= 1;
                if waiting[child] == 0 {
                    ready.insert(child);
                }
            }
        }
        if order.len() < names.len() {
            return Err(GraphError::Cycle(find_cycle(&names, &parents, &waiting)));
        }
        Ok(Graph {
            names,
            parents,
            children,
            order,
            level,
        })
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no steps (never true for a built graph).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Step names in declaration order.
    pub fn steps(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// Index of a step in declaration order.
    pub fn index_of(&self, step: &str) -> Option<usize> {
        self.names.iter().position(|n| n == step)
    }

    fn names_of(&self, indices: impl IntoIterator<Item = usize>) -> Vec<&str> {
        indices
            .into_iter()
            .map(|i| self.names[i].as_str())
            .collect()
    }

    /// The steps `step` depends on (empty for an unknown step).
    pub fn dependencies(&self, step: &str) -> Vec<&str> {
        self.index_of(step)
            .map(|i| self.names_of(self.parents[i].iter().copied()))
            .unwrap_or_default()
    }

    /// The steps that depend directly on `step`.
    pub fn dependents(&self, step: &str) -> Vec<&str> {
        self.index_of(step)
            .map(|i| self.names_of(self.children[i].iter().copied()))
            .unwrap_or_default()
    }

    /// Every step that runs, directly or transitively, after `step`, in
    /// topological order.
    pub fn descendants(&self, step: &str) -> Vec<&str> {
        let Some(start) = self.index_of(step) else {
            return Vec::new();
        };
        let mut seen = vec![false; self.len()];
        let mut stack = self.children[start].clone();
        while let Some(node) = stack.pop() {
            if !std::mem::replace(&mut seen[node], true) {
                stack.extend(&self.children[node]);
            }
        }
        self.names_of(self.order.iter().copied().filter(|i| seen[*i]))
    }

    /// An order in which every step comes after all its dependencies.
    pub fn topological_order(&self) -> Vec<&str> {
        self.names_of(self.order.iter().copied())
    }

    /// The dependency level of `step`: 0 for a root, otherwise one more than
    /// the deepest of its dependencies.
    pub fn level(&self, step: &str) -> Option<usize> {
        self.index_of(step).map(|i| self.level[i])
    }

    /// Steps grouped by level; steps of one level can run in parallel.
    pub fn levels(&self) -> Vec<Vec<&str>> {
        let depth = self.level.iter().max().map_or(0, |max| max + 1);
        let mut levels = vec![Vec::new(); depth];
        for &i in &self.order {
            levels[self.level[i]].push(self.names[i].as_str());
        }
        levels
    }

    /// Steps without dependencies: they start as soon as the task does.
    pub fn roots(&self) -> Vec<&str> {
        self.names_of((0..self.len()).filter(|i| self.parents[*i].is_empty()))
    }

    /// Steps nothing depends on.
    pub fn leaves(&self) -> Vec<&str> {
        self.names_of((0..self.len()).filter(|i| self.children[*i].is_empty()))
    }

    /// The longest chain of dependent steps, by step count, root first. Ties
    /// go to the earliest-declared steps.
    pub fn critical_path(&self) -> Vec<&str> {
        let mut end = self.order[0];
        for &i in &self.order {
            if self.level[i] > self.level[end] {
                end = i;
            }
        }
        let mut path = vec![end];
        let mut node = end;
        while self.level[node] > 0 {
            node = *self.parents[node]
                .iter()
                .find(|p| self.level[**p] + 1 == self.level[node])
                .expect("a step above level 0 has a parent one level up");
            path.push(node);
        }
        path.reverse();
        self.names_of(path)
    }

    /// The graph as a Mermaid flowchart (top to bottom).
    ///
    /// ```
    /// let graph = tasker::Graph::new([("a", vec![]), ("b", vec!["a"])]).unwrap();
    /// assert_eq!(graph.to_mermaid(), "flowchart TD\n    s0[\"a\"]\n    s1[\"b\"]\n    s0 --> s1\n");
    /// ```
    pub fn to_mermaid(&self) -> String {
        self.to_mermaid_with(|_| None)
    }

    /// [`to_mermaid`](Self::to_mermaid) with a second line under the steps
    /// `note` returns one for (e.g. the systems a step calls). Notes are
    /// escaped for the label.
    pub fn to_mermaid_with(&self, note: impl Fn(&str) -> Option<String>) -> String {
        // Node ids are positional: step names such as `end` are Mermaid
        // keywords.
        let mut out = String::from("flowchart TD\n");
        for (i, name) in self.names.iter().enumerate() {
            match note(name) {
                Some(note) => {
                    let note = note.replace('"', "#quot;");
                    let _ = writeln!(out, "    s{i}[\"{name}<br/><small>{note}</small>\"]");
                }
                None => {
                    let _ = writeln!(out, "    s{i}[\"{name}\"]");
                }
            }
        }
        for &child in &self.order {
            for &parent in &self.parents[child] {
                let _ = writeln!(out, "    s{parent} --> s{child}");
            }
        }
        out
    }

    /// The graph in Graphviz DOT, titled `title`.
    ///
    /// ```
    /// let graph = tasker::Graph::new([("a", vec![]), ("b", vec!["a"])]).unwrap();
    /// let dot = graph.to_dot("demo");
    /// assert!(dot.starts_with("digraph \"demo\" {"));
    /// assert!(dot.contains("\"a\" -> \"b\";"));
    /// ```
    pub fn to_dot(&self, title: &str) -> String {
        self.to_dot_with(title, |_| None)
    }

    /// [`to_dot`](Self::to_dot) with a second label line under the steps
    /// `note` returns one for.
    pub fn to_dot_with(&self, title: &str, note: impl Fn(&str) -> Option<String>) -> String {
        let quote = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = format!(
            "digraph \"{}\" {{\n    rankdir=TB;\n    node [shape=box, style=rounded];\n",
            quote(title)
        );
        for &i in &self.order {
            let name = &self.names[i];
            match note(name) {
                Some(note) => {
                    let _ = writeln!(out, "    \"{name}\" [label=\"{name}\\n{}\"];", quote(&note));
                }
                None => {
                    let _ = writeln!(out, "    \"{name}\";");
                }
            }
        }
        for &child in &self.order {
            for &parent in &self.parents[child] {
                let _ = writeln!(
                    out,
                    "    \"{}\" -> \"{}\";",
                    self.names[parent], self.names[child]
                );
            }
        }
        out.push_str("}\n");
        out
    }
}

/// Finds a cycle among the steps Kahn's algorithm could not order, and
/// returns it in execution order with the first step repeated at the end.
fn find_cycle(names: &[String], parents: &[Vec<usize>], waiting: &[usize]) -> Vec<String> {
    let stuck = |i: usize| waiting[i] > 0;
    let start = (0..names.len())
        .find(|i| stuck(*i))
        .expect("some step is stuck");
    // Walk up through stuck parents until a step repeats.
    let mut path = vec![start];
    let mut node = start;
    loop {
        node = *parents[node]
            .iter()
            .find(|p| stuck(**p))
            .expect("a stuck step has a stuck parent");
        if let Some(pos) = path.iter().position(|n| *n == node) {
            // `path` walks against execution order; reverse it, then start
            // at the earliest-declared step.
            let mut cycle: Vec<usize> = path[pos..].iter().rev().copied().collect();
            let first = (0..cycle.len()).min_by_key(|k| cycle[*k]).unwrap_or(0);
            cycle.rotate_left(first);
            cycle.push(cycle[0]);
            return cycle.into_iter().map(|i| names[i].clone()).collect();
        }
        path.push(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diamond() -> Graph {
        Graph::new([
            ("a", vec![]),
            ("b", vec!["a"]),
            ("c", vec!["a"]),
            ("d", vec!["b", "c"]),
        ])
        .unwrap()
    }

    #[test]
    fn levels_and_order_of_a_diamond() {
        let g = diamond();
        assert_eq!(g.topological_order(), ["a", "b", "c", "d"]);
        assert_eq!(g.levels(), vec![vec!["a"], vec!["b", "c"], vec!["d"]]);
        assert_eq!(g.level("d"), Some(2));
        assert_eq!(g.level("zzz"), None);
        assert_eq!(g.roots(), ["a"]);
        assert_eq!(g.leaves(), ["d"]);
        assert_eq!(g.dependencies("d"), ["b", "c"]);
        assert_eq!(g.dependents("a"), ["b", "c"]);
        assert_eq!(g.descendants("a"), ["b", "c", "d"]);
        assert_eq!(g.descendants("d"), Vec::<&str>::new());
    }

    #[test]
    fn level_is_the_longest_path_not_the_shortest() {
        // d depends on a directly and through b -> c, so it is on level 3.
        let g = Graph::new([
            ("a", vec![]),
            ("b", vec!["a"]),
            ("c", vec!["b"]),
            ("d", vec!["a", "c"]),
        ])
        .unwrap();
        assert_eq!(g.level("d"), Some(3));
        assert_eq!(g.critical_path(), ["a", "b", "c", "d"]);
    }

    #[test]
    fn declaration_order_breaks_ties_even_when_declared_backwards() {
        let g = Graph::new([
            ("load", vec!["extract_b", "extract_a"]),
            ("extract_b", vec![]),
            ("extract_a", vec![]),
            ("report", vec!["load"]),
        ])
        .unwrap();
        assert_eq!(
            g.topological_order(),
            ["extract_b", "extract_a", "load", "report"]
        );
        assert_eq!(g.roots(), ["extract_b", "extract_a"]);
        assert_eq!(g.critical_path(), ["extract_b", "load", "report"]);
    }

    #[test]
    fn critical_path_prefers_the_longer_branch() {
        let g = Graph::new([
            ("start", vec![]),
            ("quick", vec!["start"]),
            ("slow_1", vec!["start"]),
            ("slow_2", vec!["slow_1"]),
            ("slow_3", vec!["slow_2"]),
            ("join", vec!["quick", "slow_3"]),
            ("side", vec![]),
        ])
        .unwrap();
        assert_eq!(
            g.critical_path(),
            ["start", "slow_1", "slow_2", "slow_3", "join"]
        );
        assert_eq!(g.leaves(), ["join", "side"]);
        assert_eq!(g.levels()[0], ["start", "side"]);
    }

    #[test]
    fn a_single_step_is_its_own_critical_path() {
        let g = Graph::new([("only", Vec::<&str>::new())]).unwrap();
        assert_eq!(g.critical_path(), ["only"]);
        assert_eq!(g.levels(), vec![vec!["only"]]);
    }

    #[test]
    fn invalid_graphs_are_rejected_with_the_reason() {
        assert_eq!(
            Graph::new(Vec::<(&str, Vec<&str>)>::new()),
            Err(GraphError::Empty)
        );
        assert_eq!(
            Graph::new([("a", vec![]), ("a", vec![])]),
            Err(GraphError::DuplicateStep("a".into()))
        );
        assert_eq!(
            Graph::new([("a", vec!["nope"])]),
            Err(GraphError::UnknownDependency {
                step: "a".into(),
                dependency: "nope".into()
            })
        );
        assert_eq!(
            Graph::new([("a", vec!["a"])]),
            Err(GraphError::SelfDependency("a".into()))
        );
        assert_eq!(
            Graph::new([("Bad", Vec::<&str>::new())]),
            Err(GraphError::InvalidName("Bad".into()))
        );
    }

    #[test]
    fn cycles_are_named_in_execution_order() {
        let err = Graph::new([
            ("root", vec![]),
            ("a", vec!["root", "c"]),
            ("b", vec!["a"]),
            ("c", vec!["b"]),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            GraphError::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        assert_eq!(err.to_string(), "dependency cycle: a -> b -> c -> a");
    }

    #[test]
    fn mermaid_lists_every_node_and_edge() {
        let mermaid = diamond().to_mermaid();
        assert_eq!(
            mermaid,
            "flowchart TD\n    s0[\"a\"]\n    s1[\"b\"]\n    s2[\"c\"]\n    s3[\"d\"]\n    \
             s0 --> s1\n    s0 --> s2\n    s1 --> s3\n    s2 --> s3\n"
        );
    }

    #[test]
    fn dot_lists_every_node_and_edge_and_escapes_the_title() {
        let dot = diamond().to_dot("payments/\"x\"");
        assert_eq!(
            dot,
            "digraph \"payments/\\\"x\\\"\" {\n    rankdir=TB;\n    node [shape=box, style=rounded];\n    \
             \"a\";\n    \"b\";\n    \"c\";\n    \"d\";\n    \
             \"a\" -> \"b\";\n    \"a\" -> \"c\";\n    \"b\" -> \"d\";\n    \"c\" -> \"d\";\n}\n"
        );
    }
}
