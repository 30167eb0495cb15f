//! Read-only commands: they never create, migrate or change anything, and
//! work on a SQLite file beside the worker that owns it.

use std::time::Duration;

use serde_json::json;
use tasker::analysis::{analyze_with_history, AnalysisConfig, History};
use tasker::{Graph, Handler, Registry, Store, TaskId};

use crate::app::App;
use crate::args::{GlobalArgs, GraphFormat};
use crate::exit::{CliError, Exit};
use crate::output::Output;

/// The handlers linked into this binary.
pub(crate) fn registry() -> Result<Registry, CliError> {
    Registry::from_inventory().map_err(|e| CliError::failure(e.to_string()))
}

/// `namespace/name[@version]` as the parts of a lookup.
pub(crate) fn find<'r>(registry: &'r Registry, key: &str) -> Result<&'r Handler, CliError> {
    let (path, version) = match key.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (key, None),
    };
    let (namespace, name) = path.split_once('/').ok_or_else(|| {
        CliError::usage(format!(
            "handler {key:?}: write it as namespace/name or namespace/name@version (see `handlers`)"
        ))
    })?;
    Ok(registry.find(namespace, name, version)?)
}

pub(crate) async fn migration_status(
    app: &App,
    global: &GlobalArgs,
    out: Output,
) -> Result<(), CliError> {
    let store = tasker_diesel::connect_read_only(app.database_url(global)).await?;
    let status = store.migration_status().await?;
    if out.json {
        out.json(&json!({
            "database": store.describe(),
            "applied": status.applied,
            "pending": status.pending,
            "current": status.is_current(),
        }))?;
    } else {
        let mut rows: Vec<Vec<String>> = status
            .applied
            .iter()
            .map(|m| vec![m.clone(), "applied".to_owned()])
            .collect();
        rows.extend(
            status
                .pending
                .iter()
                .map(|m| vec![m.clone(), "pending".to_owned()]),
        );
        out.line(&format!("database: {}", store.describe()));
        out.table(&["migration", "status"], &rows);
    }
    if status.is_current() {
        Ok(())
    } else {
        Err(CliError::new(
            Exit::CheckFailed,
            format!(
                "{} migration(s) pending: run `migrate`",
                status.pending.len()
            ),
        ))
    }
}

pub(crate) fn handlers(out: Output) -> Result<(), CliError> {
    let registry = registry()?;
    if out.json {
        let list: Vec<_> = registry.handlers().map(handler_json).collect();
        return out.json(&list);
    }
    let rows: Vec<Vec<String>> = registry
        .handlers()
        .map(|h| {
            vec![
                h.key(),
                h.steps().len().to_string(),
                h.fingerprint().to_owned(),
                h.description().to_owned(),
            ]
        })
        .collect();
    out.table(&["handler", "steps", "fingerprint", "description"], &rows);
    Ok(())
}

fn handler_json(h: &Handler) -> serde_json::Value {
    json!({
        "namespace": h.namespace(),
        "name": h.name(),
        "version": h.version().to_string(),
        "key": h.key(),
        "description": h.description(),
        "context_type": h.context_type(),
        "fingerprint": h.fingerprint(),
        "steps": h.steps().iter().map(|s| json!({
            "name": s.name(),
            "description": s.description(),
            "depends_on": s.depends_on(),
            "output_type": s.output_type(),
            "retry_limit": s.retry_limit(),
            "retryable": s.retryable(),
            "timeout_ms": s.timeout().map(|t| t.as_millis() as u64),
        })).collect::<Vec<_>>(),
    })
}

pub(crate) fn handler(out: Output, key: &str) -> Result<(), CliError> {
    let registry = registry()?;
    let handler = find(&registry, key)?;
    if out.json {
        return out.json(&handler_json(handler));
    }
    out.line(&format!(
        "{} (fingerprint {})",
        handler.key(),
        handler.fingerprint()
    ));
    if !handler.description().is_empty() {
        out.line(handler.description());
    }
    out.line(&format!("context: {}", handler.context_type()));
    out.line("");
    let rows: Vec<Vec<String>> = handler
        .steps()
        .iter()
        .map(|s| {
            vec![
                s.name().to_owned(),
                s.depends_on().join(", "),
                s.output_type().to_owned(),
                s.retry_limit()
                    .map_or("default".to_owned(), |n| n.to_string()),
                s.timeout().map_or("none".to_owned(), |t| {
                    humantime::format_duration(t).to_string()
                }),
            ]
        })
        .collect();
    out.table(
        &["step", "depends on", "output", "retries", "timeout"],
        &rows,
    );
    out.line("");
    out.line(handler.graph().to_mermaid().trim_end());
    Ok(())
}

pub(crate) fn graph(out: Output, key: &str, format: GraphFormat) -> Result<(), CliError> {
    let registry = registry()?;
    let handler = find(&registry, key)?;
    let text = match format {
        GraphFormat::Mermaid => handler.graph().to_mermaid(),
        GraphFormat::Dot => handler.graph().to_dot(&handler.key()),
    };
    if out.json {
        return out.json(&json!({ "handler": handler.key(), "graph": text }));
    }
    out.line(text.trim_end());
    Ok(())
}

pub(crate) async fn analyze(
    app: &App,
    global: &GlobalArgs,
    out: Output,
    task_id: i64,
) -> Result<(), CliError> {
    let store = app.read_store(global).await?;
    let task = store.task(TaskId(task_id)).await?;
    // The graph as stored with the task, so tasks of handlers this binary
    // does not link can be analysed too.
    let graph = Graph::new(
        task.steps
            .iter()
            .map(|s| (s.name.as_str(), s.depends_on.iter().map(String::as_str))),
    )
    .map_err(|e| CliError::failure(format!("task {task_id}'s stored graph is unreadable: {e}")))?;
    let history = History::load(&store, &task, 20).await?;
    let analysis = analyze_with_history(&graph, &task, &AnalysisConfig::default(), &history);
    if out.json {
        return out.json(&analysis);
    }
    out.line(&format!(
        "task {}  {}  {:.0}% complete",
        task.task_id,
        out.state(task.state.as_str()),
        analysis.completion * 100.0
    ));
    out.line(&format!(
        "critical path: {}",
        analysis.critical_path.join(" -> ")
    ));
    for (level, steps) in analysis.levels.iter().enumerate() {
        out.line(&format!("level {level}: {}", steps.join(", ")));
    }
    let estimate = &analysis.estimate;
    let seconds = |s: f64| {
        humantime::format_duration(Duration::from_secs_f64(s.max(0.0).round())).to_string()
    };
    out.line(&format!(
        "estimate: {} left along the longest unfinished path ({}); {} by the guide's formula",
        seconds(estimate.remaining_seconds),
        if estimate.history_tasks > 0 {
            format!(
                "typical step durations from {} complete task(s)",
                estimate.history_tasks
            )
        } else {
            "no history yet: default seconds per step".to_owned()
        },
        seconds(estimate.formula_seconds)
    ));
    out.line("");
    if analysis.bottlenecks.is_empty() {
        out.line("no bottlenecks");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = analysis
        .bottlenecks
        .iter()
        .map(|b| {
            vec![
                b.step.clone(),
                format!("{:?}", b.severity).to_lowercase(),
                format!("{:.1}", b.score),
                format!("{:?}", b.problem).to_lowercase(),
                b.blocked.to_string(),
                b.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out.table(
        &[
            "bottleneck",
            "severity",
            "score",
            "problem",
            "blocks",
            "error",
        ],
        &rows,
    );
    Ok(())
}

pub(crate) async fn check(app: &App, global: &GlobalArgs, out: Output) -> Result<(), CliError> {
    let registry = registry()?;
    let store = tasker_diesel::connect_read_only(app.database_url(global)).await?;
    let status = store.migration_status().await?;
    let refused = if status.applied.is_empty() {
        Vec::new()
    } else {
        registry.refusals(store.unfinished_handlers().await?)
    };
    if out.json {
        out.json(&json!({
            "database": store.describe(),
            "handlers": registry.handlers().map(Handler::key).collect::<Vec<_>>(),
            "pending_migrations": status.pending,
            "refused": refused.iter().map(|r| json!({
                "namespace": r.stored.namespace,
                "name": r.stored.name,
                "version": r.stored.version,
                "fingerprint": r.stored.fingerprint,
                "tasks": r.stored.tasks,
                "reason": r.reason,
            })).collect::<Vec<_>>(),
            "ok": refused.is_empty(),
        }))?;
    } else {
        out.line(&format!(
            "database: {}; this binary serves {} handler(s)",
            store.describe(),
            registry.len()
        ));
        if !status.pending.is_empty() {
            out.line(&format!(
                "note: {} migration(s) pending ({}); `migrate` or the first worker applies them",
                status.pending.len(),
                status.pending.join(", ")
            ));
        }
        for r in &refused {
            out.line(&format!(
                "refused: {} unfinished task(s): {}",
                r.stored.tasks, r.reason
            ));
        }
        if refused.is_empty() {
            out.line("ok: every unfinished task can run here");
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(
            Exit::CheckFailed,
            format!(
                "{} handler shape(s) with unfinished tasks cannot run on this binary",
                refused.len()
            ),
        ))
    }
}

pub(crate) fn config(app: &App, global: &GlobalArgs, out: Output) -> Result<(), CliError> {
    let engine = tasker::EngineConfig::default();
    let source = if global.database_url.is_some() {
        "--database-url or DATABASE_URL"
    } else {
        "the app's default"
    };
    let auth = if std::env::var_os("TASKER_JWT_SECRET").is_some() {
        "JWT (TASKER_JWT_SECRET is set; value hidden)"
    } else if std::env::var_os("TASKER_API_TOKENS_FILE").is_some() {
        "static tokens from TASKER_API_TOKENS_FILE"
    } else if std::env::var_os("TASKER_API_TOKENS").is_some() {
        "static tokens from TASKER_API_TOKENS (values hidden)"
    } else {
        "none configured (serve needs credentials or --no-auth)"
    };
    let features: Vec<&str> = [
        ("sqlite", cfg!(feature = "sqlite")),
        ("postgres", cfg!(feature = "postgres")),
        ("http", cfg!(feature = "http")),
        ("graphql", cfg!(feature = "graphql")),
        ("otel", cfg!(feature = "otel")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    #[cfg(feature = "otel")]
    let otlp = global
        .otlp_endpoint
        .as_deref()
        .map(tasker_diesel::redact_url);
    #[cfg(not(feature = "otel"))]
    let otlp: Option<String> = None;
    let duration = |d: Duration| humantime::format_duration(d).to_string();
    let value = json!({
        "app": app.name(),
        "features": features,
        "database": {
            "url": tasker_diesel::redact_url(app.database_url(global)),
            "from": source,
        },
        "engine": {
            "lease": duration(engine.lease),
            "poll_interval": duration(engine.poll_interval),
            "claim_batch": engine.claim_batch,
            "backoff": {
                "base": duration(engine.backoff.base),
                "cap": duration(engine.backoff.cap),
                "jitter": engine.backoff.jitter,
            },
            "step_defaults": {
                "retry_limit": engine.step_defaults.retry_limit,
                "retryable": engine.step_defaults.retryable,
                "timeout": engine.step_defaults.timeout.map(duration),
            },
        },
        "api": { "authentication": auth },
        "telemetry": {
            "log": global.log,
            "json_logs": global.json_logs,
            "otlp_endpoint": otlp,
        },
    });
    if out.json {
        return out.json(&value);
    }
    let mut rows = Vec::new();
    flatten("", &value, &mut rows);
    out.table(&["setting", "value"], &rows);
    out.line("(engine settings as built in; a binary's `configure` hook may change them)");
    Ok(())
}

fn flatten(prefix: &str, value: &serde_json::Value, rows: &mut Vec<Vec<String>>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, value, rows);
            }
        }
        serde_json::Value::Array(items) => rows.push(vec![
            prefix.to_owned(),
            items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(", "),
        ]),
        serde_json::Value::String(s) => rows.push(vec![prefix.to_owned(), s.clone()]),
        serde_json::Value::Null => rows.push(vec![prefix.to_owned(), "-".to_owned()]),
        other => rows.push(vec![prefix.to_owned(), other.to_string()]),
    }
}
