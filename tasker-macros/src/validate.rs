//! Stage two: check the handler and its step graph.
//!
//! Every check pushes its error onto the shared collector and goes on, so
//! one compile lists every problem. Type agreement between a dependency's
//! output and the parameter that reads it is left to rustc: the expansion
//! passes the value with the parameter's span (see `expand`).

use std::collections::{BTreeSet, VecDeque};

use heck::ToSnakeCase;
use syn::LitStr;

use crate::args::{suggest, HandlerArgs};
use crate::parse::{Errors, Handler};

/// What the expansion needs, after validation.
pub(crate) struct Checked {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) version: String,
    /// For each step, the indices of the steps it depends on.
    pub(crate) dependencies: Vec<Vec<usize>>,
    /// For each step, whether it may end `skipped`: a branch of a decision,
    /// or a step whose every dependency may be skipped.
    pub(crate) may_skip: Vec<bool>,
    /// For each step, the step whose output list it runs over
    /// (`for_each`), if it is mapped.
    pub(crate) mapped: Vec<Option<usize>>,
}

/// Longest namespace, handler or step name accepted (database column width).
const MAX_NAME_LEN: usize = 64;

pub(crate) fn handler(args: &HandlerArgs, handler: &Handler, errors: &mut Errors) -> Checked {
    let namespace = checked_name(args.namespace.as_ref(), "namespace", errors)
        .unwrap_or_else(|| "default".to_owned());
    let default_name = handler
        .self_ident
        .as_ref()
        .map(|ident| ident.to_string().to_snake_case())
        .unwrap_or_default();
    let name = checked_name(args.name.as_ref(), "name", errors).unwrap_or(default_name);
    let version = match &args.version {
        None => "0.1.0".to_owned(),
        Some(lit) => match semver::Version::parse(&lit.value()) {
            Ok(version) => version.to_string(),
            Err(e) => {
                errors.at(
                    lit,
                    format!(
                        "invalid version {:?}: {e}; write a semantic version such as \"1.2.0\"",
                        lit.value()
                    ),
                );
                String::new()
            }
        },
    };

    if handler.steps.is_empty() && handler.item.trait_.is_none() {
        errors.at(
            &handler.item.self_ty,
            "this task handler has no steps; mark its `async fn`s with `#[step]`",
        );
    }

    let names: Vec<&str> = handler.steps.iter().map(|s| s.name.as_str()).collect();
    for (i, step) in handler.steps.iter().enumerate() {
        if names[..i].contains(&step.name.as_str()) {
            errors.at(
                &step.ident,
                format!(
                    "duplicate step name `{}`; every step needs its own name",
                    step.name
                ),
            );
        }
        if !valid_name(&step.name) {
            errors.at(
                &step.ident,
                format!(
                    "invalid step name `{}`: step names use lowercase letters, digits and `_` \
                     (at most {MAX_NAME_LEN})",
                    step.name
                ),
            );
        }
    }
    let index_of = |name: &str| names.iter().position(|n| *n == name);

    let mut dependencies = Vec::with_capacity(handler.steps.len());
    for step in &handler.steps {
        let mut deps: Vec<usize> = Vec::new();
        for dep in &step.args.depends_on {
            let dep_name = dep.to_string();
            match index_of(&dep_name) {
                _ if dep_name == step.name => {
                    errors.at(dep, format!("step `{}` depends on itself", step.name))
                }
                Some(j) if deps.contains(&j) => errors.at(
                    dep,
                    format!(
                        "`{dep_name}` is listed twice in `depends_on` of `{}`",
                        step.name
                    ),
                ),
                Some(j) => deps.push(j),
                None => {
                    let hint = suggest(&dep_name, names.iter().copied())
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_else(|| format!("; the steps are {}", quoted(&names)));
                    errors.at(
                        dep,
                        format!(
                            "unknown dependency `{dep_name}` of step `{}`: no step of this handler \
                             has that name{hint}",
                            step.name
                        ),
                    );
                }
            }
        }
        for input in &step.inputs {
            let input_name = input.ident.to_string();
            let reads = index_of(&input_name);
            if reads.is_some_and(|j| deps.contains(&j)) {
                continue;
            }
            let message = if reads.is_some() && input_name != step.name {
                format!(
                    "step `{}` reads the output of `{input_name}` but does not depend on it; \
                     add `{input_name}` to its `depends_on`",
                    step.name
                )
            } else {
                format!(
                    "parameter `{input_name}` of step `{}` names no dependency: after the \
                     context, each parameter receives the output of the dependency it is \
                     named after (its dependencies are {})",
                    step.name,
                    quoted(&deps.iter().map(|j| names[*j]).collect::<Vec<_>>())
                )
            };
            errors.at(&input.ident, message);
        }
        dependencies.push(deps);
    }

    for step in &handler.steps {
        check_events(&step.args.events, errors);
    }

    report_cycles(handler, &dependencies, errors);
    let may_skip = check_branches(handler, &names, &dependencies, errors);
    let mapped = check_fan_outs(handler, &names, &dependencies, errors);

    Checked {
        namespace,
        name,
        version,
        dependencies,
        may_skip,
        mapped,
    }
}

/// Checks each decision's `branches` (steps of the handler, listed once,
/// each depending on the decision) and works out which steps may end
/// `skipped`: the branches, and every step all of whose dependencies may.
fn check_branches(
    handler: &Handler,
    names: &[&str],
    dependencies: &[Vec<usize>],
    errors: &mut Errors,
) -> Vec<bool> {
    let mut may_skip = vec![false; handler.steps.len()];
    for (d, step) in handler.steps.iter().enumerate() {
        for (i, branch) in step.args.branches.iter().enumerate() {
            let branch_name = branch.to_string();
            if step.args.branches[..i].iter().any(|b| *b == branch_name) {
                errors.at(
                    branch,
                    format!(
                        "`{branch_name}` is listed twice in `branches` of `{}`",
                        step.name
                    ),
                );
                continue;
            }
            match names.iter().position(|n| *n == branch_name) {
                Some(b) if b == d => errors.at(
                    branch,
                    format!(
                        "decision `{}` cannot be its own branch; its branches are the steps \
                         after it that it chooses between",
                        step.name
                    ),
                ),
                Some(b) if !dependencies[b].contains(&d) => errors.at(
                    branch,
                    format!(
                        "branch `{branch_name}` of decision `{}` must depend on it: add `{}` to \
                         the `depends_on` of `{branch_name}`",
                        step.name, step.name
                    ),
                ),
                Some(b) => may_skip[b] = true,
                None => {
                    let hint = suggest(&branch_name, names.iter().copied())
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_else(|| format!("; the steps are {}", quoted(names)));
                    errors.at(
                        branch,
                        format!(
                            "unknown branch `{branch_name}` of decision `{}`: no step of this \
                             handler has that name{hint}",
                            step.name
                        ),
                    );
                }
            }
        }
    }
    // A step after only skippable steps is skipped with them. Iterate to a
    // fixed point (the graph may still hold a cycle reported above).
    let mut changed = true;
    while changed {
        changed = false;
        for (s, deps) in dependencies.iter().enumerate() {
            if !may_skip[s] && !deps.is_empty() && deps.iter().all(|d| may_skip[*d]) {
                may_skip[s] = true;
                changed = true;
            }
        }
    }
    may_skip
}

/// Checks each `for_each`: its source is a dependency of the step, read by
/// a parameter named after it (which receives one item), not itself
/// mapped; a mapped step is neither a decision nor a branch (not yet), and
/// `concurrency` and `on_item_error` go with `for_each`. Returns each
/// step's source.
fn check_fan_outs(
    handler: &Handler,
    names: &[&str],
    dependencies: &[Vec<usize>],
    errors: &mut Errors,
) -> Vec<Option<usize>> {
    let mut mapped = vec![None; handler.steps.len()];
    for (s, step) in handler.steps.iter().enumerate() {
        let Some(source) = &step.args.for_each else {
            if let Some(lit) = &step.args.concurrency {
                errors.at(
                    lit,
                    format!(
                        "`concurrency` bounds a fan-out, but step `{}` has no `for_each`; add \
                         `for_each = <the step whose list it runs over>` or remove `concurrency`",
                        step.name
                    ),
                );
            }
            if let Some((lit, _)) = &step.args.on_item_error {
                errors.at(
                    lit,
                    format!(
                        "`on_item_error` says what a fan-out does when one of its items \
                         fails, but step `{}` has no `for_each`; add `for_each = <the step \
                         whose list it runs over>` or remove `on_item_error`",
                        step.name
                    ),
                );
            }
            continue;
        };
        let source_name = source.to_string();
        match names.iter().position(|n| *n == source_name) {
            Some(j) if !dependencies[s].contains(&j) => errors.at(
                source,
                format!(
                    "step `{}` runs over the output of `{source_name}` but does not depend on \
                     it; add `{source_name}` to its `depends_on`",
                    step.name
                ),
            ),
            Some(_) if !step.inputs.iter().any(|i| i.ident == source_name) => errors.at(
                source,
                format!(
                    "step `{}` runs once per item of `{source_name}`: take the item as a \
                     parameter named `{source_name}`, e.g. `{source_name}: Item` where \
                     `{source_name}` outputs `Vec<Item>`",
                    step.name
                ),
            ),
            Some(j) => mapped[s] = Some(j),
            None => {
                let hint = suggest(&source_name, names.iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("; the steps are {}", quoted(names)));
                errors.at(
                    source,
                    format!(
                        "unknown step `{source_name}` in `for_each` of `{}`: no step of this \
                         handler has that name{hint}",
                        step.name
                    ),
                );
            }
        }
        if !step.args.branches.is_empty() {
            errors.at(
                source,
                format!(
                    "step `{}` cannot both fan out and decide: put the decision in a step \
                     after the fan-out's join",
                    step.name
                ),
            );
        }
        if let Some(decision) = handler
            .steps
            .iter()
            .find(|d| d.args.branches.iter().any(|b| *b == step.name))
        {
            errors.at(
                source,
                format!(
                    "step `{}` is a branch of decision `{}` and cannot fan out (not supported \
                     yet); fan out in a step after the branch",
                    step.name, decision.name
                ),
            );
        }
    }
    for (s, step) in handler.steps.iter().enumerate() {
        if let (Some(source), Some(j)) = (&step.args.for_each, mapped[s]) {
            if mapped[j].is_some() {
                errors.at(
                    source,
                    format!(
                        "`{}` runs once per item itself, so step `{}` cannot fan out over it \
                         (nested fan-outs are not supported); fan out over a step after \
                         `{}`'s join",
                        handler.steps[j].name, step.name, handler.steps[j].name
                    ),
                );
            }
        }
    }
    mapped
}

/// Prefixes of the engine's own events, which custom events may not use.
const RESERVED_PREFIXES: &[&str] = &["task.", "step.", "workflow.", "registry.", "worker."];

/// Custom event names: dotted lowercase words (`payment.risk_flagged`),
/// outside the engine's own prefixes, each listed once.
fn check_events(events: &[LitStr], errors: &mut Errors) {
    for (i, lit) in events.iter().enumerate() {
        let name = lit.value();
        let words_ok = name.split('.').count() >= 2
            && name.split('.').all(|w| {
                !w.is_empty()
                    && w.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
        if !words_ok {
            errors.at(
                lit,
                format!(
                    "invalid event name {name:?}: use dotted lowercase words such as \"payment.processed\""
                ),
            );
        } else if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| name.starts_with(**p)) {
            errors.at(
                lit,
                format!(
                    "event name {name:?} uses the engine's prefix `{prefix}`; name custom events \
                     after your domain, e.g. \"payment.processed\""
                ),
            );
        } else if events[..i].iter().any(|e| e.value() == name) {
            errors.at(lit, format!("event {name:?} is listed twice"));
        }
    }
}

fn quoted(names: &[&str]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn checked_name(lit: Option<&LitStr>, key: &str, errors: &mut Errors) -> Option<String> {
    let lit = lit?;
    let value = lit.value();
    if valid_name(&value) {
        Some(value)
    } else {
        let hint = if value.is_empty() {
            String::new()
        } else {
            format!(", e.g. {:?}", value.to_snake_case())
        };
        errors.at(
            lit,
            format!(
                "invalid {key} {value:?}: use lowercase letters, digits and `_` \
                 (at most {MAX_NAME_LEN}){hint}"
            ),
        );
        None
    }
}

/// Reports each dependency cycle once, naming its path in execution order
/// (`a -> b -> a`: `b` runs after `a`, and `a` after `b`).
fn report_cycles(handler: &Handler, dependencies: &[Vec<usize>], errors: &mut Errors) {
    let mut covered = BTreeSet::new();
    for start in 0..dependencies.len() {
        if covered.contains(&start) {
            continue;
        }
        let Some(path) = shortest_cycle(start, dependencies) else {
            continue;
        };
        // `path` is start, d1, d2, ... where each depends on the next and the
        // last depends on `start`. Execution order is the reverse.
        covered.extend(path.iter().copied());
        let mut order: Vec<&str> = path
            .iter()
            .rev()
            .map(|i| handler.steps[*i].name.as_str())
            .collect();
        order.insert(0, &handler.steps[start].name);
        let step = &handler.steps[start];
        let next = &handler.steps[path[1]].name;
        let edge = step
            .args
            .depends_on
            .iter()
            .find(|d| d == &next)
            .expect("cycle edges come from depends_on");
        errors.at(
            edge,
            format!(
                "dependency cycle: {}; a workflow must be acyclic, so remove one of these \
                 dependencies",
                order.join(" -> ")
            ),
        );
    }
}

/// Breadth-first search for the shortest path from `start` back to itself
/// along "depends on" edges. Returns the nodes of the cycle, `start` first.
fn shortest_cycle(start: usize, dependencies: &[Vec<usize>]) -> Option<Vec<usize>> {
    let mut parent: Vec<Option<usize>> = vec![None; dependencies.len()];
    let mut queue = VecDeque::from([start]);
    let mut visited = vec![false; dependencies.len()];
    while let Some(node) = queue.pop_front() {
        for &next in &dependencies[node] {
            if next == start {
                let mut path = vec![node];
                let mut cursor = node;
                while let Some(p) = parent[cursor] {
                    path.push(p);
                    cursor = p;
                }
                path.reverse();
                return Some(path);
            }
            if !visited[next] {
                visited[next] = true;
                parent[next] = Some(node);
                queue.push_back(next);
            }
        }
    }
    None
}
