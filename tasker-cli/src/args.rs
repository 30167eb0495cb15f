//! The command line: global options and every command (clap derive).
//!
//! [`GlobalArgs`] and [`Command`] are public so a binary can add commands of
//! its own beside tasker's (flatten `GlobalArgs`, and `Command` as one
//! variant of your subcommand enum with `#[command(flatten)]`).

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The whole command line of a worker binary: what [`App::main`](crate::App::main)
/// parses.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
    /// Options of every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options of every command.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Database: a SQLite file (`sqlite://tasker.sqlite` or a path) or a
    /// postgres:// URL. Its password is never printed.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// The configuration file (YAML; see docs/configuration.md). Default:
    /// the app's default file, if it exists.
    #[arg(long, env = "TASKER_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// The `environments:` overlay of the configuration file to apply
    /// (default: `TASKER_ENV`).
    #[arg(long, global = true, value_name = "NAME")]
    pub environment: Option<String>,
    /// Print machine-readable JSON instead of tables (read commands).
    #[arg(long, global = true)]
    pub json: bool,
    /// Write logs as JSON lines.
    #[arg(long, global = true)]
    pub json_logs: bool,
    /// Log filter (`RUST_LOG` syntax; default `warn`, or `telemetry.log`).
    #[arg(long, env = "RUST_LOG", global = true)]
    pub log: Option<String>,
    /// Export spans to this OTLP/HTTP collector (e.g. http://127.0.0.1:4318).
    #[cfg(feature = "otel")]
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
    /// Who is acting, recorded in the audit trail of operator actions
    /// (default: `cli:$USER`).
    #[arg(long, env = "TASKER_ACTOR", global = true)]
    pub actor: Option<String>,
}

/// tasker's commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run a worker until Ctrl-C or SIGTERM, then finish the steps in flight.
    Run(WorkerArgs),
    /// Run a worker and serve the REST API (health, metrics, OpenAPI) until Ctrl-C.
    ///
    /// Credentials: the configuration's `api.auth` section, or
    /// TASKER_API_TOKENS="name:token:perm,perm;name2:token2:*"
    /// or TASKER_API_TOKENS_FILE (one `name:token:perms` per line): static
    /// tokens, at least 24 characters; the name is the caller's identity.
    /// Or TASKER_JWT_SECRET (at least 32 bytes) with TASKER_JWT_ISSUER and
    /// TASKER_JWT_AUDIENCE (HS256 JWTs; `sub` is the identity). Or
    /// --no-auth for local use.
    #[cfg(feature = "http")]
    Serve(ServeArgs),
    /// Apply the database migrations (or, with --status, list them).
    Migrate {
        /// List applied and pending migrations; change nothing. Exit code 6
        /// when some are pending.
        #[arg(long)]
        status: bool,
    },
    /// List the task handlers linked into this binary, or show one.
    Handlers {
        /// `namespace/name[@version]` to show one handler with its steps.
        handler: Option<String>,
    },
    /// Print a handler's step graph.
    Graph {
        /// `namespace/name[@version]` (the latest stable version if omitted).
        handler: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Create, list, show, wait for, retry, cancel or resolve tasks.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Show, retry, cancel or resolve one step.
    #[command(subcommand)]
    Step(StepCommand),
    /// A task's critical path, levels and bottlenecks.
    Analyze {
        /// The task id.
        task_id: i64,
    },
    /// Delete finished tasks, with their steps and audit rows, older than
    /// an age: in batches (one short transaction each) so workers keep
    /// claiming.
    Purge(PurgeArgs),
    /// Failed steps of failed tasks (list), and bulk retry or resolve of
    /// their tasks by filter, audited under --actor.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
    /// Check that this binary can run every unfinished task in the
    /// database (for deploy pipelines). Exit code 6 when it cannot.
    Check,
    /// Show the effective configuration (secrets redacted).
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// Options of a worker (`run`, `serve`).
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Steps run at once by this worker (default 16, or
    /// `engine.concurrency`); also sets the claim batch.
    #[arg(long, env = "TASKER_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: Option<u32>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[cfg(feature = "http")]
    #[arg(long, env = "TASKER_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Do not print the status line (on a terminal) or the periodic status
    /// lines (when piped).
    #[arg(long)]
    pub quiet: bool,
    /// Do not apply pending migrations at start-up (refuse to start instead).
    #[arg(long)]
    pub no_migrate: bool,
}

/// Options of `serve`.
#[cfg(feature = "http")]
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The worker's options.
    #[command(flatten)]
    pub worker: WorkerArgs,
    /// Address to listen on (default 127.0.0.1:8080, or `api.addr`).
    #[arg(long, env = "TASKER_API_ADDR")]
    pub addr: Option<std::net::SocketAddr>,
    /// Path prefix of the API (default `/tasker`, or `api.prefix`).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Accept every request without credentials (local use only).
    #[arg(long)]
    pub no_auth: bool,
}

/// Graph formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    /// Mermaid flowchart.
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// `task ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum TaskCommand {
    /// Create a task from a JSON request (`-` reads it from stdin):
    /// '{"namespace": "ecommerce", "name": "process_order", "context": {...}}'.
    Create {
        /// The request body, or `-` for stdin.
        request: String,
    },
    /// List tasks, newest first.
    List(ListArgs),
    /// Show a task with its steps.
    Show {
        /// The task id.
        task_id: i64,
        /// Include the audit trail (every state change).
        #[arg(long)]
        transitions: bool,
        /// Of each fan-out step's items, show this many (0: none; each
        /// fan-out's line counts them all).
        #[arg(long, default_value_t = 100)]
        items_limit: u32,
        /// ...from this item index on.
        #[arg(long, default_value_t = 0)]
        items_offset: u32,
    },
    /// Wait until a task finishes. Exit code 0 when it completed, 8 when it
    /// ended otherwise, 7 on timeout.
    Wait {
        /// The task id.
        task_id: i64,
        /// Give up after this long (`30s`, `5m`).
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Give the failed steps of a task in `error` a new set of attempts.
    Retry {
        /// The task id.
        task_id: i64,
    },
    /// Cancel a task and its unfinished steps.
    Cancel {
        /// The task id.
        task_id: i64,
    },
    /// Mark a task done by hand (`resolved_manually`).
    Resolve {
        /// The task id.
        task_id: i64,
    },
}

/// Filters of `task list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Only tasks in this state (`pending`, `in_progress`, `complete`, `error`, ...).
    #[arg(long)]
    pub state: Option<String>,
    /// Only tasks of this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Only tasks of this handler name.
    #[arg(long)]
    pub handler: Option<String>,
    /// Only tasks with an annotation of this type (`ctx.annotate`).
    #[arg(long, value_name = "TYPE")]
    pub annotation: Option<String>,
    /// At most this many (1 to 1000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Skip this many.
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
}

/// `step ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum StepCommand {
    /// Show one step.
    Show {
        /// The step id (`task show` lists them).
        step_id: i64,
    },
    /// Give a step in `error` a new set of attempts.
    Retry {
        /// The step id.
        step_id: i64,
    },
    /// Cancel an unfinished step and the steps after it.
    Cancel {
        /// The step id.
        step_id: i64,
    },
    /// Mark a step done by hand, with an output for the steps that read it.
    Resolve {
        /// The step id.
        step_id: i64,
        /// The output as JSON (default `null`).
        #[arg(long)]
        output: Option<String>,
    },
}

/// Options of `purge`.
#[derive(Debug, Clone, Args)]
pub struct PurgeArgs {
    /// States to purge, comma separated: complete, cancelled,
    /// resolved_manually, error. Unfinished tasks are never purged.
    #[arg(long, value_delimiter = ',', required = true)]
    pub state: Vec<String>,
    /// Only tasks whose last change is older than this (`30d`, `12h`).
    #[arg(long, value_parser = parse_duration)]
    pub older_than: Duration,
    /// Only this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Only this handler name.
    #[arg(long)]
    pub handler: Option<String>,
    /// Tasks per transaction (1 to 5000).
    #[arg(long, default_value_t = 500)]
    pub batch: u32,
    /// Count what would be purged; delete nothing (a read-only command).
    #[arg(long)]
    pub dry_run: bool,
}

/// `dead-letters ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum DeadLetterCommand {
    /// List failed steps of failed tasks, most recent failure first.
    List(DeadLetterArgs),
    /// Retry every task the filter names (its failed steps get new attempts).
    Retry(DeadLetterArgs),
    /// Resolve every task the filter names by hand (`resolved_manually`).
    Resolve(DeadLetterArgs),
}

/// The filter of `dead-letters`.
#[derive(Debug, Clone, Args)]
pub struct DeadLetterArgs {
    /// Only this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Only this handler name.
    #[arg(long)]
    pub handler: Option<String>,
    /// Only errors of this class (the step error's type, e.g. `PaymentError`).
    #[arg(long)]
    pub error_class: Option<String>,
    /// Only steps that failed within this long (`1h`, `2d`).
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// At most this many failed steps (1 to 10000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
    /// Bulk actions with no filter at all must say so.
    #[arg(long)]
    pub all: bool,
}

/// `config ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// The effective configuration, secrets redacted.
    Show,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. `30s`, `5m`, `1h`)"))
}
