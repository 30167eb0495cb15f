//! Read-only commands about tasks and steps: `task list|show|wait`,
//! `step show`, `dead-letters list`. Like every read command they never
//! create or migrate anything (see [`App::read_store`]).

use std::time::{Duration, Instant};

use serde_json::json;
use tasker::store::{DeadLetterFilter, ItemWindow, StepRecord, TaskFilter, TaskRecord};
use tasker::{StepId, Store, TaskId, TaskState};

use crate::app::App;
use crate::args::{DeadLetterArgs, GlobalArgs, ListArgs};
use crate::exit::{CliError, Exit};
use crate::output::Output;

pub(crate) async fn task_list(
    app: &App,
    global: &GlobalArgs,
    out: Output,
    args: &ListArgs,
) -> Result<(), CliError> {
    let state = args
        .state
        .as_deref()
        .map(str::parse::<TaskState>)
        .transpose()
        .map_err(|e| CliError::usage(e.to_string()))?;
    if let Some(kind) = &args.annotation {
        tasker::annotation::check_annotation_type(kind)
            .map_err(|e| CliError::usage(format!("--annotation: {e}")))?;
    }
    let store = app.read_store(global).await?;
    let tasks = store
        .tasks(&TaskFilter {
            namespace: args.namespace.clone(),
            name: args.handler.clone(),
            version: None,
            state,
            annotation_type: args.annotation.clone(),
            limit: args.limit,
            offset: args.offset,
            ..TaskFilter::default()
        })
        .await?;
    if out.json {
        return out.json(&tasks);
    }
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.task_id.to_string(),
                out.state(t.state.as_str()),
                format!("{}/{}@{}", t.namespace, t.name, t.version),
                t.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                t.initiator.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out.table(&["id", "state", "handler", "created", "initiator"], &rows);
    Ok(())
}

pub(crate) async fn task_show(
    app: &App,
    global: &GlobalArgs,
    out: Output,
    (task_id, items): (i64, ItemWindow),
    transitions: bool,
) -> Result<(), CliError> {
    let store = app.read_store(global).await?;
    let task = store.task_view(TaskId(task_id), items).await?;
    let trail = if transitions {
        Some(store.transitions(TaskId(task_id)).await?)
    } else {
        None
    };
    if out.json {
        let mut value = serde_json::to_value(&task)
            .map_err(|e| CliError::failure(format!("cannot write JSON: {e}")))?;
        if let Some(trail) = &trail {
            value["transitions"] = serde_json::to_value(trail)
                .map_err(|e| CliError::failure(format!("cannot write JSON: {e}")))?;
        }
        return out.json(&value);
    }
    print_task(out, &task);
    if let Some(trail) = trail {
        out.line("");
        let rows: Vec<Vec<String>> = trail
            .iter()
            .map(|t| {
                vec![
                    t.at.format("%H:%M:%S%.3f").to_string(),
                    match t.step_id {
                        Some(id) => task
                            .steps
                            .iter()
                            .find(|s| s.step_id == id)
                            .map_or_else(|| id.to_string(), |s| s.name.clone()),
                        None => "(task)".to_owned(),
                    },
                    format!(
                        "{} -> {}",
                        t.from_state.as_deref().unwrap_or("-"),
                        t.to_state
                    ),
                    t.actor.clone().unwrap_or_default(),
                ]
            })
            .collect();
        out.table(&["at", "step", "change", "by"], &rows);
    }
    Ok(())
}

/// A step's name as `task show` lists it: an item with its index
/// (`charge[3]`), a fan-out with its items' progress.
fn step_label(step: &StepRecord) -> String {
    match (step.item_index, step.items) {
        (Some(index), _) => format!("  {}[{index}]", step.name),
        (None, Some(items)) => {
            let failed = if items.failed > 0 {
                format!(", {} failed", items.failed)
            } else {
                String::new()
            };
            format!(
                "{} ({}/{} items done{failed})",
                step.name, items.done, items.total
            )
        }
        (None, None) => step.name.clone(),
    }
}

fn print_task(out: Output, task: &TaskRecord) {
    out.line(&format!(
        "task {}  {}  {}/{}@{}",
        task.task_id,
        out.state(task.state.as_str()),
        task.namespace,
        task.name,
        task.version
    ));
    let deadline = task
        .deadline
        .map(|d| format!("  deadline {}", d.format("%Y-%m-%d %H:%M:%S")))
        .unwrap_or_default();
    out.line(&format!(
        "created {}  updated {}  priority {}{deadline}",
        task.created_at.format("%Y-%m-%d %H:%M:%S"),
        task.updated_at.format("%Y-%m-%d %H:%M:%S"),
        task.priority,
    ));
    out.line("");
    let rows: Vec<Vec<String>> = task
        .steps
        .iter()
        .map(|s| {
            vec![
                s.step_id.to_string(),
                step_label(s),
                out.state(s.state.as_str()),
                format!("{}/{}", s.attempts, s.max_attempts),
                s.last_error
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ]
        })
        .collect();
    out.table(
        &["step id", "step", "state", "attempts", "last error"],
        &rows,
    );
    for group in task.steps.iter().filter(|s| s.items.is_some()) {
        let total = group.items.map_or(0, |i| i.total);
        let shown = task
            .steps
            .iter()
            .filter(|s| s.item_index.is_some() && s.name == group.name)
            .count();
        if (shown as u64) < u64::from(total) {
            out.line(&format!(
                "{shown} of {total} items of `{}` shown: --items-offset and --items-limit show others",
                group.name
            ));
        }
    }
    if !task.annotations.is_empty() {
        out.line("");
        let rows: Vec<Vec<String>> = task
            .annotations
            .iter()
            .map(|a| {
                vec![
                    a.annotation_type.clone(),
                    a.step.clone().unwrap_or_default(),
                    a.annotation.to_string(),
                ]
            })
            .collect();
        out.table(&["annotation", "by step", "value"], &rows);
    }
}

pub(crate) async fn task_wait(
    app: &App,
    global: &GlobalArgs,
    out: Output,
    task_id: i64,
    timeout: Duration,
) -> Result<(), CliError> {
    let store = app.read_store(global).await?;
    let started = Instant::now();
    let task = loop {
        // Polls read no fan-out items; the last read shows some.
        let task = store.task_view(TaskId(task_id), ItemWindow::NONE).await?;
        if task.state.is_finished() || task.state == TaskState::Error {
            break store
                .task_view(TaskId(task_id), ItemWindow::first(100))
                .await?;
        }
        if started.elapsed() >= timeout {
            return Err(CliError::new(
                Exit::TimedOut,
                format!(
                    "task {task_id} did not finish within {}; it is {}",
                    humantime::format_duration(timeout),
                    task.state
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if out.json {
        out.json(&task)?;
    } else {
        print_task(out, &task);
    }
    match task.state {
        TaskState::Complete | TaskState::ResolvedManually => Ok(()),
        other => Err(CliError::new(
            Exit::TaskFailed,
            format!("task {task_id} ended {other}"),
        )),
    }
}

pub(crate) async fn step_show(
    app: &App,
    global: &GlobalArgs,
    out: Output,
    step_id: i64,
) -> Result<(), CliError> {
    let store = app.read_store(global).await?;
    let (task_id, step) = store.step(StepId(step_id)).await?;
    let step = &step;
    let task = store.task_view(task_id, ItemWindow::NONE).await?;
    if out.json {
        let mut value = serde_json::to_value(step)
            .map_err(|e| CliError::failure(format!("cannot write JSON: {e}")))?;
        value["task_id"] = json!(task.task_id);
        return out.json(&value);
    }
    let rows = vec![
        vec![
            "step".to_owned(),
            format!("{} ({})", step.name, step.step_id),
        ],
        vec![
            "task".to_owned(),
            format!(
                "{} {}/{}@{}",
                task.task_id, task.namespace, task.name, task.version
            ),
        ],
        vec!["state".to_owned(), out.state(step.state.as_str())],
        vec![
            "attempts".to_owned(),
            format!("{}/{}", step.attempts, step.max_attempts),
        ],
        vec!["depends on".to_owned(), step.depends_on.join(", ")],
        vec![
            "last error".to_owned(),
            step.last_error
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ],
        vec![
            "output".to_owned(),
            step.output
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ],
        vec![
            "checkpoint".to_owned(),
            step.checkpoint
                .as_ref()
                .map(|c| {
                    format!(
                        "{} (attempt {}, saved {})",
                        c.value,
                        c.attempt,
                        c.saved_at.format("%Y-%m-%d %H:%M:%S")
                    )
                })
                .unwrap_or_default(),
        ],
    ];
    out.table(&["field", "value"], &rows);
    Ok(())
}

/// The store filter of `dead-letters`.
pub(crate) fn dead_letter_filter(args: &DeadLetterArgs) -> Result<DeadLetterFilter, CliError> {
    let since = match args.since {
        Some(age) => Some(
            chrono::Utc::now()
                - chrono::Duration::from_std(age)
                    .map_err(|_| CliError::usage("--since is too large"))?,
        ),
        None => None,
    };
    Ok(DeadLetterFilter {
        namespace: args.namespace.clone(),
        name: args.handler.clone(),
        error_class: args.error_class.clone(),
        since,
        limit: args.limit,
    })
}

pub(crate) async fn dead_letters(
    app: &App,
    global: &GlobalArgs,
    out: Output,
    args: &DeadLetterArgs,
) -> Result<(), CliError> {
    let filter = dead_letter_filter(args)?;
    let store = app.read_store(global).await?;
    let letters = store.dead_letters(&filter).await?;
    if out.json {
        return out.json(&letters);
    }
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|l| {
            vec![
                l.task_id.to_string(),
                format!("{}/{}@{}", l.namespace, l.name, l.version),
                l.step.clone(),
                l.attempts.to_string(),
                l.error
                    .as_ref()
                    .map(|e| e.class().to_owned())
                    .unwrap_or_default(),
                l.error
                    .as_ref()
                    .map(|e| e.message().to_owned())
                    .unwrap_or_default(),
                l.failed_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            ]
        })
        .collect();
    out.table(
        &[
            "task", "handler", "step", "attempts", "class", "error", "failed",
        ],
        &rows,
    );
    Ok(())
}
