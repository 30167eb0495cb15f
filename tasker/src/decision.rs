//! Decision steps: a step declared with `#[step(branches = [a, b])]`
//! returns which of its branches run; the others end `skipped`.
//!
//! The output of a decision step is JSON like any other (its dependents can
//! read it), and must be one branch name or a list of them: a `String`, a
//! `Vec<String>`, or an enum serialized as the names, e.g.
//! `#[serde(rename_all = "snake_case")] enum Route { AutoApprove,
//! ManualReview }`. This module reads that output against the declared
//! branches (the engine and the [`TaskRunner`](crate::testing::TaskRunner)
//! both ask it) and checks hand-written definitions.

use serde_json::Value;

use crate::step::StepError;

/// The class of the error a decision step fails with when its output names
/// no branch of it.
pub const INVALID_DECISION: &str = "InvalidDecision";

/// The `branches` of decision `step` that its `output` did **not**
/// choose, in declaration order: the steps to skip. `Ok(vec![])` for a
/// step without branches. An output that is not a branch name or a list
/// of them is a permanent error naming what is allowed.
pub fn unchosen(
    step: &str,
    branches: &'static [&'static str],
    output: &Value,
) -> Result<Vec<&'static str>, StepError> {
    if branches.is_empty() {
        return Ok(Vec::new());
    }
    let invalid = |what: String| {
        StepError::permanent(format!(
            "decision `{step}` returned {what}; it must return one of its branches ({}) or a list \
             of them",
            branches
                .iter()
                .map(|b| format!("`{b}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_class(INVALID_DECISION)
    };
    let named: Vec<&Value> = match output {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    let mut chosen = Vec::with_capacity(named.len());
    for value in named {
        let Some(name) = value.as_str() else {
            return Err(invalid(short(value)));
        };
        if !branches.contains(&name) {
            return Err(invalid(format!("{:?}", short_str(name))));
        }
        chosen.push(name);
    }
    Ok(branches
        .iter()
        .copied()
        .filter(|b| !chosen.contains(b))
        .collect())
}

/// The problem with the branches of a hand-written definition, if any:
/// each must be another step, listed once, that depends on the decision.
/// `steps`: (name, depends_on, branches) of each step.
pub(crate) fn check_branches(steps: &[(&str, &[&str], &[&str])]) -> Result<(), String> {
    for (name, _, branches) in steps {
        for (i, branch) in branches.iter().enumerate() {
            if branches[..i].contains(branch) {
                return Err(format!("branch `{branch}` of `{name}` is listed twice"));
            }
            match steps.iter().find(|(n, _, _)| n == branch) {
                None => {
                    return Err(format!(
                        "branch `{branch}` of `{name}` is not a step of the handler"
                    ))
                }
                Some((_, deps, _)) if !deps.contains(name) => {
                    return Err(format!("branch `{branch}` of `{name}` must depend on it"))
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    short_str(&text).to_owned()
}

fn short_str(text: &str) -> &str {
    match text.char_indices().nth(64) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unchosen_of(
        branches: &'static [&'static str],
        output: &Value,
    ) -> Result<Vec<&'static str>, StepError> {
        unchosen("route", branches, output)
    }

    #[test]
    fn names_and_lists_choose_branches() {
        let step: &'static [&'static str] = &["auto", "manual", "audit"];
        assert_eq!(
            unchosen_of(step, &json!("auto")).unwrap(),
            ["manual", "audit"]
        );
        assert_eq!(
            unchosen_of(step, &json!(["audit", "auto"])).unwrap(),
            ["manual"]
        );
        assert_eq!(
            unchosen_of(step, &json!([])).unwrap(),
            ["auto", "manual", "audit"]
        );
        assert!(unchosen_of(&[], &json!(42)).unwrap().is_empty());
    }

    #[test]
    fn anything_else_is_a_permanent_error_naming_the_branches() {
        let step: &'static [&'static str] = &["auto", "manual"];
        for output in [
            json!("automatic"),
            json!(1),
            json!({"auto": true}),
            json!(["auto", 2]),
        ] {
            let error = unchosen_of(step, &output).unwrap_err();
            assert!(!error.is_retryable());
            assert_eq!(error.class(), INVALID_DECISION);
            assert!(
                error.message().contains("(`auto`, `manual`)"),
                "{}",
                error.message()
            );
        }
        let long = "x".repeat(500);
        let error = unchosen_of(step, &json!(long)).unwrap_err();
        assert!(error.message().len() < 200, "{}", error.message());
    }
}
