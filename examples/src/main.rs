//! The example worker, with tasker's command line.
//!
//! `cargo run` (no arguments) runs the demo: it opens the embedded SQLite
//! database `tasker-example.sqlite` (or `DATABASE_URL`, e.g.
//! `postgres://postgres@127.0.0.1/app`), creates five sample orders, runs a
//! worker until they are all finished, printing each step as it advances,
//! and prints a summary. `cargo run -- --help` lists the other commands.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use tasker::prelude::*;
use tasker::store::{TaskFilter, TaskRecord};
use tasker::{Registry, StepState, Store, TaskId, TaskState, Tasker};
use tasker_diesel::AnyStore;
use tasker_examples::orders::{sample_order, PaymentGateway, ProcessOrder, Warehouse};

/// tasker's example worker.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Database: a SQLite file path (created if missing) or a postgres:// URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://tasker-example.sqlite",
        global = true
    )]
    database_url: String,
    /// Steps run at once by this worker.
    #[arg(long, default_value_t = 16, global = true)]
    concurrency: usize,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, global = true)]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Write logs as JSON lines.
    #[arg(long, global = true)]
    json_logs: bool,
    /// Export spans to this OTLP/HTTP collector (e.g. http://127.0.0.1:4318).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Create five sample orders and run them to the end (the default).
    Demo {
        /// How many orders.
        #[arg(long, default_value_t = 5)]
        orders: i64,
    },
    /// Run a worker until Ctrl-C or SIGTERM, then drain in-flight steps.
    Run,
    /// Run a worker and serve the REST API (and /metrics) until Ctrl-C.
    ///
    /// Credentials: TASKER_API_TOKENS="name:token:perm,perm;name2:token2:*"
    /// or TASKER_API_TOKENS_FILE (one `name:token:perms` per line): static
    /// tokens, at least 24 characters; the name is the caller's identity.
    /// Or TASKER_JWT_SECRET (at least 32 bytes) with TASKER_JWT_ISSUER and
    /// TASKER_JWT_AUDIENCE (HS256 JWTs; `sub` is the identity). Or
    /// --no-auth for local use.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Path prefix of the API.
        #[arg(long, default_value = "/tasker")]
        prefix: String,
        /// Accept every request without credentials (local use only).
        #[arg(long)]
        no_auth: bool,
    },
    /// Apply the database migrations.
    Migrate,
    /// List the task handlers linked into this binary.
    Handlers,
    /// Print a handler's step graph.
    Graph {
        /// Namespace.
        namespace: String,
        /// Handler name.
        name: String,
        /// Version (exact or a requirement); the latest stable if omitted.
        #[arg(long)]
        version: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Mermaid)]
        format: Format,
    },
    /// Create, list, show, retry or cancel tasks.
    #[command(subcommand)]
    Task(TaskCommand),
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Mermaid,
    Dot,
}

#[derive(Subcommand)]
enum TaskCommand {
    /// Create a task from a JSON request:
    /// '{"namespace": "ecommerce", "name": "process_order", "context": {...}}'.
    Create {
        /// The request body.
        request: String,
    },
    /// List tasks, newest first.
    List {
        /// Only tasks in this state.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show a task with its steps.
    Show {
        /// The task id.
        id: i64,
    },
    /// Retry a task in `error`.
    Retry {
        /// The task id.
        id: i64,
    },
    /// Cancel a task.
    Cancel {
        /// The task id.
        id: i64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = tasker::telemetry::init(tasker::telemetry::TelemetryConfig {
        service_name: "tasker-example-worker".to_owned(),
        json_logs: cli.json_logs,
        filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
        otlp_endpoint: cli.otlp_endpoint.clone(),
        ..tasker::telemetry::TelemetryConfig::default()
    });
    let _telemetry = match telemetry {
        Ok(guard) => guard,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn engine(cli: &Cli) -> Result<Tasker<AnyStore>, String> {
    let store = tasker_diesel::connect(&cli.database_url)
        .await
        .map_err(|e| e.to_string())?;
    let concurrency = cli.concurrency;
    let tasker = Tasker::builder(store)
        .migrate(true)
        // The gateway fails its first two charges with a 503, so the first
        // order shows retries with backoff.
        .resource(PaymentGateway::flaky(2))
        .resource(Warehouse::with_stock([
            ("widget", 1_000_000),
            ("gadget", 1_000_000),
        ]))
        .configure(|c| {
            c.concurrency = concurrency;
            c.claim_batch = concurrency as u32;
            c.backoff.base = Duration::from_millis(250);
        })
        .build()
        .await
        .map_err(|e| e.to_string())?;
    if let Some(addr) = cli.metrics_addr {
        let (bound, _server) = tasker::api::serve_metrics(tasker.metrics().clone(), addr)
            .await
            .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
        eprintln!("metrics at http://{bound}/metrics");
    }
    for refused in &tasker.startup_report().refused {
        eprintln!(
            "warning: {} unfinished task(s) will not run here: {}",
            refused.stored.tasks, refused.reason
        );
    }
    Ok(tasker)
}

async fn run(cli: Cli) -> Result<(), String> {
    match &cli.command {
        None => demo(&cli, 5).await,
        Some(Command::Demo { orders }) => demo(&cli, *orders).await,
        Some(Command::Run) => {
            let tasker = engine(&cli).await?;
            let worker = tasker.start_worker();
            println!(
                "worker running on {} ({:?}); Ctrl-C to stop",
                describe(tasker.store()),
                tasker.mode()
            );
            shutdown_signal().await;
            println!("stopping: finishing the steps in flight...");
            let counts = worker.shutdown().await;
            println!("stopped: {counts}");
            Ok(())
        }
        Some(Command::Serve {
            addr,
            prefix,
            no_auth,
        }) => {
            let mut config = api_config(*no_auth)?;
            config.prefix = prefix.clone();
            let limits = config.limits.clone();
            let tasker = engine(&cli).await?;
            let worker = tasker.start_worker();
            let app = tasker::api::router(tasker.clone(), config);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let bound = listener
                .local_addr()
                .map_err(|e| format!("cannot read the bound address: {e}"))?;
            println!(
                "API on http://{bound}{prefix} (OpenAPI at {prefix}/openapi.json); Ctrl-C to stop"
            );
            tasker::api::serve(listener, app, &limits, shutdown_signal())
                .await
                .map_err(|e| format!("the server failed: {e}"))?;
            println!("stopping: finishing the steps in flight...");
            worker.shutdown().await;
            Ok(())
        }
        Some(Command::Migrate) => {
            let store = tasker_diesel::connect(&cli.database_url)
                .await
                .map_err(|e| e.to_string())?;
            store.migrate().await.map_err(|e| e.to_string())?;
            println!("migrations are current on {}", describe(&store));
            Ok(())
        }
        Some(Command::Handlers) => {
            let registry = Registry::from_inventory().map_err(|e| e.to_string())?;
            for handler in registry.handlers() {
                println!(
                    "{} ({} steps, fingerprint {})",
                    handler.key(),
                    handler.steps().len(),
                    handler.fingerprint()
                );
                if !handler.description().is_empty() {
                    println!("    {}", handler.description());
                }
            }
            Ok(())
        }
        Some(Command::Graph {
            namespace,
            name,
            version,
            format,
        }) => {
            let registry = Registry::from_inventory().map_err(|e| e.to_string())?;
            let handler = registry
                .find(namespace, name, version.as_deref())
                .map_err(|e| e.to_string())?;
            match format {
                Format::Mermaid => print!("{}", handler.graph().to_mermaid()),
                Format::Dot => print!("{}", handler.graph().to_dot(&handler.key())),
            }
            Ok(())
        }
        Some(Command::Task(command)) => task_command(&cli, command).await,
    }
}

async fn task_command(cli: &Cli, command: &TaskCommand) -> Result<(), String> {
    let tasker = engine(cli).await?;
    match command {
        TaskCommand::Create { request } => {
            let request = tasker::TaskRequest::from_json(request).map_err(|e| e.to_string())?;
            let created = tasker
                .create_task(request)
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string(&created).expect("serializable"));
        }
        TaskCommand::List { state, limit } => {
            let state = state
                .as_deref()
                .map(str::parse::<TaskState>)
                .transpose()
                .map_err(|e| e.to_string())?;
            let tasks = tasker
                .tasks(&TaskFilter {
                    state,
                    limit: *limit,
                    ..TaskFilter::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            for task in tasks {
                println!(
                    "{:>6}  {:<18} {}/{}@{}  {}",
                    task.task_id,
                    task.state,
                    task.namespace,
                    task.name,
                    task.version,
                    task.created_at
                );
            }
        }
        TaskCommand::Show { id } => {
            let task = tasker.task(TaskId(*id)).await.map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&task).expect("serializable")
            );
        }
        TaskCommand::Retry { id } => {
            tasker
                .retry_task(TaskId(*id), "cli")
                .await
                .map_err(|e| e.to_string())?;
            println!("task {id} will be retried by the next worker");
        }
        TaskCommand::Cancel { id } => {
            tasker
                .cancel_task(TaskId(*id), "cli")
                .await
                .map_err(|e| e.to_string())?;
            println!("task {id} cancelled");
        }
    }
    Ok(())
}

/// Authentication for `serve`, from the environment.
fn api_config(no_auth: bool) -> Result<tasker::api::ApiConfig, String> {
    use tasker::api::{ApiConfig, JwtAuthenticator, NoAuthentication, StaticTokens};
    if no_auth {
        eprintln!("warning: --no-auth: every request is allowed");
        return Ok(ApiConfig::new(NoAuthentication));
    }
    if let Ok(secret) = std::env::var("TASKER_JWT_SECRET") {
        let issuer = std::env::var("TASKER_JWT_ISSUER")
            .map_err(|_| "TASKER_JWT_SECRET needs TASKER_JWT_ISSUER".to_owned())?;
        let audience = std::env::var("TASKER_JWT_AUDIENCE")
            .map_err(|_| "TASKER_JWT_SECRET needs TASKER_JWT_AUDIENCE".to_owned())?;
        let jwt = JwtAuthenticator::hs256(secret.as_bytes(), &issuer, &audience)
            .map_err(|e| format!("TASKER_JWT_SECRET: {e}"))?;
        return Ok(ApiConfig::new(jwt));
    }
    if let Ok(path) = std::env::var("TASKER_API_TOKENS_FILE") {
        return Ok(ApiConfig::new(StaticTokens::from_file(path)?));
    }
    if let Ok(spec) = std::env::var("TASKER_API_TOKENS") {
        let tokens = StaticTokens::parse(&spec).map_err(|e| format!("TASKER_API_TOKENS: {e}"))?;
        return Ok(ApiConfig::new(tokens));
    }
    Err("no API credentials configured: set TASKER_API_TOKENS, TASKER_API_TOKENS_FILE or TASKER_JWT_SECRET, or pass --no-auth for local use".to_owned())
}

fn describe(store: &AnyStore) -> String {
    match store {
        AnyStore::Postgres(pg) => format!("PostgreSQL (schema {})", pg.schema()),
        AnyStore::Sqlite(sqlite) => format!("SQLite file {}", sqlite.path().display()),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

async fn demo(cli: &Cli, orders: i64) -> Result<(), String> {
    let tasker = engine(cli).await?;
    println!(
        "tasker example worker on {} ({:?} mode)",
        describe(tasker.store()),
        tasker.mode()
    );
    for handler in tasker.registry().handlers() {
        println!(
            "  handler {}: {}",
            handler.key(),
            handler.graph().critical_path().join(" -> ")
        );
    }
    let worker = tasker.start_worker();
    let started = Instant::now();
    let mut tasks: Vec<(i64, TaskId)> = Vec::new();
    for n in 0..orders {
        let order_id = 1001 + n;
        // Every fourth order's card is declined: a permanent error.
        let card = if n % 4 == 3 {
            "declined_card"
        } else {
            "tok_visa"
        };
        let created = tasker
            .create_task(ProcessOrder::request(sample_order(order_id, card)).initiator("demo"))
            .await
            .map_err(|e| e.to_string())?;
        println!("order {order_id}: created task {}", created.task_id());
        tasks.push((order_id, created.task_id()));
    }

    // Follow the tasks, printing every step change, until all are done.
    let mut seen: HashMap<(TaskId, String), (StepState, u32)> = HashMap::new();
    let mut finished: HashMap<TaskId, TaskRecord> = HashMap::new();
    while finished.len() < tasks.len() {
        for (order_id, id) in &tasks {
            if finished.contains_key(id) {
                continue;
            }
            let task = tasker.task(*id).await.map_err(|e| e.to_string())?;
            for step in &task.steps {
                let key = (*id, step.name.clone());
                let now = (step.state, step.attempts);
                if seen.get(&key) != Some(&now) {
                    let note = match (&step.state, &step.last_error) {
                        (StepState::Ready, Some(e)) if step.attempts > 0 => {
                            format!(" after failure: {}", e.message())
                        }
                        (StepState::Error, Some(e)) => format!(": {}", e.message()),
                        _ => String::new(),
                    };
                    println!(
                        "order {order_id}: {:<18} {:<12} attempt {}{note}",
                        step.name, step.state, step.attempts
                    );
                    seen.insert(key, now);
                }
            }
            if task.state.is_finished() || task.state == TaskState::Error {
                println!("order {order_id}: task {} is {}", task.task_id, task.state);
                finished.insert(*id, task);
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let elapsed = started.elapsed();
    let counts = worker.shutdown().await;
    let complete = finished
        .values()
        .filter(|t| t.state == TaskState::Complete)
        .count();
    let failed = finished
        .values()
        .filter(|t| t.state == TaskState::Error)
        .count();
    println!(
        "summary: {} tasks: {complete} complete, {failed} in error; {} steps completed, {} retried, {} failed; {:.2}s",
        finished.len(),
        counts.completed,
        counts.retried,
        counts.failed,
        elapsed.as_secs_f64()
    );
    Ok(())
}
