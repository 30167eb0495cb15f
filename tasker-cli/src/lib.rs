//! tasker's operator command line, as a library your worker binary calls.
//!
//! Handlers register themselves at link time (`inventory`), so the CLI
//! that serves them must be part of the binary that links them: your
//! `main` is one call.
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     tasker_cli::App::new("orders-worker").main()
//! }
//! ```
//!
//! That binary then has every command (`--help` lists them):
//!
//! | command | what |
//! |---|---|
//! | `run` | a worker until Ctrl-C/SIGTERM, with a live status line |
//! | `serve` | a worker and the HTTP API (feature `http`) |
//! | `migrate [--status]` | apply (or list) the database migrations |
//! | `handlers [NS/NAME[@VERSION]]` | the handlers linked in, or one with its steps and graph |
//! | `graph NS/NAME [--format mermaid\|dot]` | a handler's step graph |
//! | `task create\|list\|show\|wait\|retry\|cancel\|resolve` | tasks |
//! | `step show\|retry\|cancel\|resolve` | steps |
//! | `analyze TASK` | critical path, levels, bottlenecks |
//! | `purge --state S --older-than AGE` | delete finished tasks in batches |
//! | `dead-letters list\|retry\|resolve` | failed steps; bulk retry/resolve by filter |
//! | `check` | can this binary run every unfinished task? (for deploys) |
//! | `config show` | the effective configuration, secrets redacted |
//!
//! Read commands take `--json`. Read-only commands (`handlers`, `graph`,
//! `task list|show|wait`, `step show`, `analyze`, `dead-letters list`, `check`,
//! `migrate --status`, `config show`) never create or migrate anything and
//! work on a SQLite file while a worker holds it. Exit codes are listed at
//! [`Exit`].
//!
//! To add commands of your own, flatten [`GlobalArgs`] into your own clap
//! parser, make [`Command`] one variant of your subcommand enum, and call
//! [`App::execute`] for it (the example worker adds `demo` this way).
//!
//! The [`scaffold`] module is `cargo tasker new worker|handler|subscriber`
//! (the `cargo-tasker` binary of this crate).
//!
//! Features: `sqlite` and `bundled-sqlite` (default), `postgres`, `http`
//! (`serve`, `--metrics-addr`), `graphql`, `otel`, `full` (all of them).

mod app;
mod args;
mod exit;
mod inspect;
mod operate;
mod output;
pub mod scaffold;
mod tasks;
mod worker;

pub use app::App;
#[cfg(feature = "http")]
pub use args::ServeArgs;
pub use args::{
    Cli, Command, ConfigCommand, DeadLetterArgs, DeadLetterCommand, GlobalArgs, GraphFormat,
    ListArgs, PurgeArgs, StepCommand, TaskCommand, WorkerArgs,
};
pub use exit::{CliError, Exit};
pub use worker::shutdown_signal;
