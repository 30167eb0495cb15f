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
    let store = tasker_diesel::connect_read_only_configured(
        app.database_url(global),
        &app.config().settings().database,
    )
    .await?;
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
        "dependent_systems": h.dependent_systems(),
        "metadata": h.metadata().iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "steps": h.steps().iter().map(|s| json!({
            "name": s.name(),
            "description": s.description(),
            "depends_on": s.depends_on(),
            "output_type": s.output_type(),
            "retry_limit": s.retry_limit(),
            "retryable": s.retryable(),
            "timeout_ms": s.timeout().map(|t| t.as_millis() as u64),
            "dependent_systems": s.dependent_systems(),
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
    let systems = handler.dependent_systems();
    if !systems.is_empty() {
        out.line(&format!("dependent systems: {}", systems.join(", ")));
    }
    for (key, value) in handler.metadata() {
        out.line(&format!("{key}: {value}"));
    }
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
    out.line(handler.to_mermaid().trim_end());
    Ok(())
}

pub(crate) fn graph(out: Output, key: &str, format: GraphFormat) -> Result<(), CliError> {
    let registry = registry()?;
    let handler = find(&registry, key)?;
    let text = match format {
        GraphFormat::Mermaid => handler.to_mermaid(),
        GraphFormat::Dot => handler.to_dot(),
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
    // The steps without their fan-out items (a fan-out is one step of
    // the graph).
    let task = store
        .task_view(TaskId(task_id), tasker::store::ItemWindow::NONE)
        .await?;
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
    // The configuration first: a mistake there stops every worker.
    let config_problems: Vec<String> = match app.config().check(&registry) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    };
    let store = tasker_diesel::connect_read_only_configured(
        app.database_url(global),
        &app.config().settings().database,
    )
    .await?;
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
            "configuration": {
                "file": app.config().file().map(|p| p.display().to_string()),
                "environment": app.config().environment(),
                "problems": config_problems,
            },
            "ok": refused.is_empty() && config_problems.is_empty(),
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
        match (app.config().file(), config_problems.is_empty()) {
            (_, false) => {
                for problem in &config_problems {
                    out.line(&format!("configuration: {problem}"));
                }
            }
            (Some(file), true) => out.line(&format!(
                "ok: the configuration ({}{}) fits the handlers linked in",
                file.display(),
                app.config()
                    .environment()
                    .map(|e| format!(", environment {e}"))
                    .unwrap_or_default()
            )),
            (None, true) => out.line("ok: no configuration file; the handlers need none"),
        }
    }
    if !config_problems.is_empty() {
        return Err(CliError::new(
            Exit::CheckFailed,
            format!(
                "the configuration has {} problem(s); workers would refuse to start",
                config_problems.len()
            ),
        ));
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
    let config = app.config();
    let settings = config.settings();
    let mut engine = tasker::EngineConfig::default();
    config.apply_engine(&mut engine);
    let from = |key: &str, flag: Option<(&str, bool)>| -> String {
        if let Some((flag, true)) = flag {
            return flag.to_owned();
        }
        config
            .set_by(key)
            .map_or_else(|| "default".to_owned(), ToString::to_string)
    };
    let auth = &settings.api.auth;
    let authentication = if let Some(mode) = auth.mode {
        format!("{mode:?} (api.auth.mode)").to_lowercase()
    } else if auth.jwt.is_some() {
        "jwt (api.auth.jwt; secret hidden)".to_owned()
    } else if let Some(path) = &auth.tokens_file {
        format!("static tokens from {}", path.display())
    } else if auth.tokens.is_some() {
        "static tokens (api.auth.tokens; values hidden)".to_owned()
    } else if std::env::var_os("TASKER_JWT_SECRET").is_some() {
        "jwt (TASKER_JWT_SECRET is set; value hidden)".to_owned()
    } else if std::env::var_os("TASKER_API_TOKENS_FILE").is_some() {
        "static tokens from TASKER_API_TOKENS_FILE".to_owned()
    } else if std::env::var_os("TASKER_API_TOKENS").is_some() {
        "static tokens from TASKER_API_TOKENS (values hidden)".to_owned()
    } else {
        "none configured (serve needs credentials or --no-auth)".to_owned()
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
    let otlp_flag = global.otlp_endpoint.clone();
    #[cfg(not(feature = "otel"))]
    let otlp_flag: Option<String> = None;
    let otlp = otlp_flag
        .clone()
        .or_else(|| settings.telemetry.otlp_endpoint.clone())
        .map(|u| tasker_diesel::redact_url(&u));
    let d = |d: Duration| humantime::format_duration(d).to_string();
    let url_flag = global.database_url.is_some();
    let url_source = if url_flag {
        "--database-url or DATABASE_URL".to_owned()
    } else if settings.database.url.is_some() {
        from("database.url", None)
    } else {
        "the app's default".to_owned()
    };
    let log_flag = global.log.is_some();
    // (key, value, where it came from)
    let rows: Vec<(&str, serde_json::Value, String)> = vec![
        (
            "database.url",
            json!(tasker_diesel::redact_url(app.database_url(global))),
            url_source,
        ),
        (
            "database.pool_size",
            json!(settings.database.pool_size),
            from("database.pool_size", None),
        ),
        (
            "database.schema",
            json!(settings.database.schema),
            from("database.schema", None),
        ),
        (
            "engine.concurrency",
            json!(engine.concurrency),
            from("engine.concurrency", None),
        ),
        (
            "engine.claim_batch",
            json!(engine.claim_batch),
            from("engine.claim_batch", None),
        ),
        (
            "engine.lease",
            json!(d(engine.lease)),
            from("engine.lease", None),
        ),
        (
            "engine.poll_interval",
            json!(d(engine.poll_interval)),
            from("engine.poll_interval", None),
        ),
        (
            "engine.backoff.base",
            json!(d(engine.backoff.base)),
            from("engine.backoff.base", None),
        ),
        (
            "engine.backoff.cap",
            json!(d(engine.backoff.cap)),
            from("engine.backoff.cap", None),
        ),
        (
            "engine.backoff.jitter",
            json!(engine.backoff.jitter),
            from("engine.backoff.jitter", None),
        ),
        (
            "engine.step_defaults.retry_limit",
            json!(engine.step_defaults.retry_limit),
            from("engine.step_defaults.retry_limit", None),
        ),
        (
            "engine.step_defaults.retryable",
            json!(engine.step_defaults.retryable),
            from("engine.step_defaults.retryable", None),
        ),
        (
            "engine.step_defaults.timeout",
            json!(engine.step_defaults.timeout.map(d)),
            from("engine.step_defaults.timeout", None),
        ),
        (
            "engine.retention",
            json!(engine.retention.as_ref().map(|r| format!(
                "{} rule(s) every {}",
                r.rules.len(),
                d(r.every)
            ))),
            from("engine.retention", None),
        ),
        (
            "api.addr",
            json!(settings
                .api
                .addr
                .map(|a| a.to_string())
                .unwrap_or_else(|| "127.0.0.1:8080".into())),
            from("api.addr", None),
        ),
        (
            "api.prefix",
            json!(settings
                .api
                .prefix
                .clone()
                .unwrap_or_else(|| "/tasker".into())),
            from("api.prefix", None),
        ),
        ("api.auth", json!(authentication), from("api.auth", None)),
        (
            "telemetry.log",
            json!(global
                .log
                .clone()
                .or_else(|| settings.telemetry.log.clone())
                .unwrap_or_else(|| "warn".into())),
            from("telemetry.log", Some(("--log or RUST_LOG", log_flag))),
        ),
        (
            "telemetry.json_logs",
            json!(global.json_logs || settings.telemetry.json_logs == Some(true)),
            from(
                "telemetry.json_logs",
                Some(("--json-logs", global.json_logs)),
            ),
        ),
        (
            "telemetry.otlp_endpoint",
            json!(otlp),
            from(
                "telemetry.otlp_endpoint",
                Some((
                    "--otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT",
                    otlp_flag.is_some(),
                )),
            ),
        ),
    ];
    // Every key of `handlers:` that is set, with where: names only, never
    // values (a handler_config may hold a secret from a ${VAR}).
    let handlers: Vec<(String, String)> = config
        .origins()
        .into_iter()
        .filter(|(key, _)| key.starts_with("handlers."))
        .map(|(key, origin)| (key, origin.to_string()))
        .collect();
    if out.json {
        let mut settings_json = serde_json::Map::new();
        for (key, value, source) in &rows {
            settings_json.insert((*key).to_owned(), json!({"value": value, "from": source}));
        }
        return out.json(&json!({
            "app": app.name(),
            "features": features,
            "file": config.file().map(|p| p.display().to_string()),
            "environment": config.environment(),
            "settings": settings_json,
            "handlers": handlers.iter().map(|(k, o)| json!({"key": k, "from": o})).collect::<Vec<_>>(),
        }));
    }
    out.line(&format!(
        "app {} (features: {}); configuration: {}{}",
        app.name(),
        features.join(", "),
        config
            .file()
            .map_or_else(|| "no file".to_owned(), |p| p.display().to_string()),
        config
            .environment()
            .map(|e| format!(", environment {e}"))
            .unwrap_or_default()
    ));
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(key, value, source)| {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".to_owned(),
                other => other.to_string(),
            };
            vec![(*key).to_owned(), value, source.clone()]
        })
        .collect();
    out.table(&["setting", "value", "from"], &table);
    if !handlers.is_empty() {
        let rows: Vec<Vec<String>> = handlers.into_iter().map(|(k, o)| vec![k, o]).collect();
        out.table(&["handler setting", "from"], &rows);
    }
    out.line("(a binary's `configure` hook may set engine defaults below the file; command-line flags win over both)");
    Ok(())
}
