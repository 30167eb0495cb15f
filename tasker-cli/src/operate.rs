//! Commands that change the database: `migrate`, task and step actions.
//! Each operator action is audited under the `--actor` name.

use std::io::Read;

use serde_json::json;
use tasker::store::{ItemWindow, PurgeFilter};
use tasker::{StepId, Store, TaskId, TaskRequest, TaskState};

use crate::app::App;
use crate::args::{DeadLetterCommand, GlobalArgs, PurgeArgs, StepCommand, TaskCommand};
use crate::exit::CliError;
use crate::output::Output;
use crate::tasks;

/// The most tasks `purge --dry-run` counts.
const DRY_RUN_CAP: u64 = 10_000_000;

/// The most `task create -` reads from stdin (larger requests are refused
/// by the payload limits anyway).
const MAX_REQUEST_BYTES: u64 = 16 << 20;

pub(crate) async fn migrate(app: &App, global: &GlobalArgs, out: Output) -> Result<(), CliError> {
    let store = tasker_diesel::connect_configured(
        app.database_url(global),
        &app.config().settings().database,
    )
    .await?;
    let applied = store.migrate().await?;
    let status = store.migration_status().await?;
    if out.json {
        return out.json(&json!({
            "database": store.describe(),
            "applied_now": applied,
            "applied": status.applied,
        }));
    }
    if applied.is_empty() {
        out.line(&format!(
            "{}: already current ({} migrations)",
            store.describe(),
            status.applied.len()
        ));
    } else {
        out.line(&format!(
            "{}: applied {} migration(s): {}",
            store.describe(),
            applied.len(),
            applied.join(", ")
        ));
    }
    Ok(())
}

pub(crate) async fn task(
    app: &App,
    global: &GlobalArgs,
    out: Output,
    command: TaskCommand,
) -> Result<(), CliError> {
    let actor = app.actor(global);
    match command {
        TaskCommand::List(args) => tasks::task_list(app, global, out, &args).await,
        TaskCommand::Show {
            task_id,
            transitions,
            items_limit,
            items_offset,
        } => {
            let items = ItemWindow {
                offset: items_offset,
                limit: items_limit,
            };
            tasks::task_show(app, global, out, (task_id, items), transitions).await
        }
        TaskCommand::Wait { task_id, timeout } => {
            tasks::task_wait(app, global, out, task_id, timeout).await
        }
        TaskCommand::Create { request } => {
            let text = if request == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .take(MAX_REQUEST_BYTES)
                    .read_to_string(&mut text)
                    .map_err(|e| {
                        CliError::usage(format!("cannot read the request from stdin: {e}"))
                    })?;
                text
            } else {
                request
            };
            let request = TaskRequest::from_json(&text)?.initiator(actor);
            let tasker = app.engine(global, false, |_| {}).await?;
            let created = tasker.create_task(request).await?;
            if out.json {
                return out.json(&created);
            }
            match created {
                tasker::store::Created::New(id) => out.line(&format!("task {id} created")),
                tasker::store::Created::Existing(id) => out.line(&format!(
                    "task {id} already exists with this identity; nothing was created"
                )),
            }
            Ok(())
        }
        TaskCommand::Retry { task_id } => {
            let tasker = app.engine(global, false, |_| {}).await?;
            tasker.retry_task(TaskId(task_id), &actor).await?;
            done(out, "task", task_id, "will be retried by the next worker")
        }
        TaskCommand::Cancel { task_id } => {
            let tasker = app.engine(global, false, |_| {}).await?;
            tasker.cancel_task(TaskId(task_id), &actor).await?;
            done(out, "task", task_id, "cancelled")
        }
        TaskCommand::Resolve { task_id } => {
            let tasker = app.engine(global, false, |_| {}).await?;
            tasker.resolve_task(TaskId(task_id), &actor).await?;
            done(out, "task", task_id, "resolved manually")
        }
    }
}

pub(crate) async fn step(
    app: &App,
    global: &GlobalArgs,
    out: Output,
    command: StepCommand,
) -> Result<(), CliError> {
    let actor = app.actor(global);
    match command {
        StepCommand::Show { step_id } => tasks::step_show(app, global, out, step_id).await,
        StepCommand::Retry { step_id } => {
            let tasker = app.engine(global, false, |_| {}).await?;
            tasker.retry_step(StepId(step_id), &actor).await?;
            done(out, "step", step_id, "will be retried by the next worker")
        }
        StepCommand::Cancel { step_id } => {
            let tasker = app.engine(global, false, |_| {}).await?;
            tasker.cancel_step(StepId(step_id), &actor).await?;
            done(out, "step", step_id, "cancelled, with the steps after it")
        }
        StepCommand::Resolve { step_id, output } => {
            let output = match output {
                Some(text) => serde_json::from_str(&text).map_err(|e| {
                    CliError::usage(format!(
                        "--output is not valid JSON: {e} (quote strings: '\"text\"')"
                    ))
                })?,
                None => serde_json::Value::Null,
            };
            let tasker = app.engine(global, false, |_| {}).await?;
            tasker.resolve_step(StepId(step_id), output, &actor).await?;
            done(out, "step", step_id, "resolved manually")
        }
    }
}

fn done(out: Output, what: &str, id: i64, outcome: &str) -> Result<(), CliError> {
    if out.json {
        return out.json(&json!({ what: id, "done": outcome }));
    }
    out.line(&format!("{what} {id} {outcome}"));
    Ok(())
}

pub(crate) async fn purge(
    app: &App,
    global: &GlobalArgs,
    out: Output,
    args: &PurgeArgs,
) -> Result<(), CliError> {
    let states = args
        .state
        .iter()
        .map(|s| s.parse::<TaskState>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::usage(e.to_string()))?;
    let age = chrono::Duration::from_std(args.older_than)
        .map_err(|_| CliError::usage("--older-than is too large"))?;
    let filter = PurgeFilter {
        states,
        finished_before: chrono::Utc::now() - age,
        namespace: args.namespace.clone(),
        name: args.handler.clone(),
        batch: args.batch,
    };
    filter.check()?;
    if args.dry_run {
        let store = app.read_store(global).await?;
        let would = store.count_purgeable(&filter, DRY_RUN_CAP).await?;
        let capped = if would >= DRY_RUN_CAP { " or more" } else { "" };
        if out.json {
            return out.json(&json!({
                "dry_run": true,
                "would_delete": would,
                "finished_before": filter.finished_before,
            }));
        }
        out.line(&format!(
            "would purge {would}{capped} task(s) last changed before {} (dry run: nothing deleted)",
            filter.finished_before.format("%Y-%m-%d %H:%M:%S UTC")
        ));
        return Ok(());
    }
    let tasker = app.engine(global, false, |_| {}).await?;
    let deleted = tasker.purge(&filter).await?;
    if out.json {
        return out.json(&json!({
            "deleted": deleted,
            "finished_before": filter.finished_before,
        }));
    }
    out.line(&format!(
        "purged {deleted} task(s) last changed before {}",
        filter.finished_before.format("%Y-%m-%d %H:%M:%S UTC")
    ));
    Ok(())
}

pub(crate) async fn dead_letters(
    app: &App,
    global: &GlobalArgs,
    out: Output,
    command: DeadLetterCommand,
) -> Result<(), CliError> {
    let (args, action) = match command {
        DeadLetterCommand::List(args) => return tasks::dead_letters(app, global, out, &args).await,
        DeadLetterCommand::Retry(args) => (args, "retried"),
        DeadLetterCommand::Resolve(args) => (args, "resolved"),
    };
    let unfiltered = args.namespace.is_none()
        && args.handler.is_none()
        && args.error_class.is_none()
        && args.since.is_none();
    if unfiltered && !args.all {
        return Err(CliError::usage(
            "a bulk action needs a filter (--namespace, --handler, --error-class, --since), \
             or --all to act on every failed task",
        ));
    }
    let filter = tasks::dead_letter_filter(&args)?;
    let tasker = app.engine(global, false, |_| {}).await?;
    let letters = tasker.store().dead_letters(&filter).await?;
    let mut tasks: Vec<TaskId> = letters.iter().map(|l| l.task_id).collect();
    tasks.sort();
    tasks.dedup();
    let actor = app.actor(global);
    let mut done = Vec::new();
    let mut refused = Vec::new();
    for task_id in tasks {
        let outcome = if action == "retried" {
            tasker.retry_task(task_id, &actor).await
        } else {
            tasker.resolve_task(task_id, &actor).await
        };
        match outcome {
            Ok(()) => done.push(task_id),
            // Changed meanwhile (retried by someone else, ...): report, go on.
            Err(e) => refused.push((task_id, e.to_string())),
        }
    }
    if out.json {
        out.json(&json!({
            action: done,
            "refused": refused.iter().map(|(id, e)| json!({"task_id": id, "error": e})).collect::<Vec<_>>(),
            "actor": actor,
        }))?;
    } else {
        out.line(&format!("{action} {} task(s) as {actor}", done.len()));
        for (id, e) in &refused {
            out.line(&format!("task {id} not {action}: {e}"));
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(
            crate::exit::Exit::Conflict,
            format!("{} task(s) could not be {action}", refused.len()),
        ))
    }
}
