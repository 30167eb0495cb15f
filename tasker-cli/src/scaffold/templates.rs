//! The text of generated files. `{placeholders}` are replaced.

pub(super) const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro", "override",
    "priv", "try", "typeof", "unsized", "virtual", "yield",
];

pub(super) const WORKER_CARGO: &str = r#"[package]
name = "{package}"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
tasker = {tasker}
tasker-cli = {tasker_cli}
serde = { version = "1", features = ["derive"] }
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }

[features]
## The PostgreSQL store (several workers on several machines).
postgres = ["tasker-cli/postgres"]
## `serve`: the REST API, health and metrics.
http = ["tasker-cli/http"]
## Everything tasker-cli offers (PostgreSQL, HTTP, GraphQL, OTLP).
full = ["tasker-cli/full"]

# A workspace of its own; remove this table to make the crate a member of
# an enclosing workspace.
[workspace]
"#;

pub(super) const WORKER_MAIN: &str = r#"//! {package}: a tasker worker. `cargo run -- --help` lists its commands.

mod handlers;
mod subscribers;

fn main() -> std::process::ExitCode {
    tasker_cli::App::new("{package}")
        .about("A tasker worker")
        // Resources your steps read with `ctx.resource::<T>()`, engine
        // settings and subscribers go here:
        // .configure(|builder| builder.resource(MyClient::new()))
        .main()
}
"#;

pub(super) const HANDLERS_MOD: &str = "//! The task handlers of this worker, one module each\n\
//! (`cargo tasker new handler namespace/name` adds one).\n\n";

pub(super) const SUBSCRIBERS_MOD: &str = "//! Event subscribers, registered for every engine\n\
//! (`cargo tasker new subscriber name` adds one).\n\n";

pub(super) const SAMPLE_HANDLER: &str = r#"//! `{namespace}/greet`: a sample handler to start from.

use serde::{Deserialize, Serialize};
use tasker::prelude::*;

/// The task's input (its context).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Greeting {
    /// Who to greet.
    pub name: String,
}

/// Composes a greeting, then delivers it.
pub struct Greet;

#[task_handler(namespace = "{namespace}", version = "1.0.0", context = Greeting)]
impl Greet {
    /// Builds the text; an empty name is a permanent error (no retry).
    #[step]
    async fn compose(ctx: &StepContext<Greeting>) -> StepResult<String> {
        let name = ctx.context().name.trim();
        if name.is_empty() {
            return Err(StepError::permanent("the name is empty"));
        }
        Ok(format!("Hello, {name}!"))
    }

    /// Delivers it (here: prints it) and returns its length. Retried up to
    /// five times with backoff when it fails with a retryable error.
    #[step(depends_on = compose, retry_limit = 5, timeout = "10s")]
    async fn deliver(compose: String) -> StepResult<usize> {
        println!("{compose}");
        Ok(compose.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasker::testing::TaskRunner;

    #[tokio::test]
    async fn greets_by_name() {
        let run = TaskRunner::new()
            .run::<Greet>(Greeting { name: "Ada".into() })
            .await
            .unwrap();
        assert!(run.is_complete());
        assert_eq!(run.output::<String>("compose").unwrap(), "Hello, Ada!");
        assert_eq!(run.output::<usize>("deliver").unwrap(), 11);
    }

    #[tokio::test]
    async fn an_empty_name_fails_for_good() {
        let run = TaskRunner::new()
            .run::<Greet>(Greeting { name: " ".into() })
            .await
            .unwrap();
        assert!(!run.is_complete());
    }
}
"#;

pub(super) const NEW_HANDLER: &str = r#"//! `{namespace}/{name}`.

use serde::{Deserialize, Serialize};
use tasker::prelude::*;

/// The task's input (its context): the fields your steps need.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct {Type}Input {
    /// An identifier of what the task works on.
    pub id: i64,
}

/// What this workflow does (this text is the handler's description in
/// `handlers`, the API and diagrams).
pub struct {Type};

#[task_handler(namespace = "{namespace}", version = "1.0.0", context = {Type}Input)]
impl {Type} {
{steps}}

#[cfg(test)]
mod tests {
    use super::*;
    use tasker::testing::TaskRunner;

    #[tokio::test]
    async fn runs_to_the_end() {
        let run = TaskRunner::new()
            .run::<{Type}>({Type}Input { id: 7 })
            .await
            .unwrap();
        assert!(run.is_complete());
        assert!(!run.output::<String>("{last}").unwrap().is_empty());
    }
}
"#;

pub(super) const NEW_SUBSCRIBER: &str = r#"//! An event subscriber, registered for every engine of this worker.

use tasker::events::{Event, EventFilter, Subscriber, SubscriberError};

/// What to do on these events: page someone, update a dashboard, ...
#[derive(Debug, Default)]
pub struct {Type};

impl Subscriber for {Type} {
    fn events(&self) -> EventFilter {
        EventFilter::only(["task.failed", "step.max_retries_reached"])
    }

    async fn handle(&self, event: &Event) -> Result<(), SubscriberError> {
        eprintln!(
            "{}: task {} {}",
            event.name(),
            event.task_id().map(|id| id.to_string()).unwrap_or_default(),
            event.error_message().unwrap_or_default()
        );
        Ok(())
    }
}

tasker::register_subscriber!({Type});
"#;

pub(super) const WORKER_README: &str = r#"# {package}

A [tasker](https://github.com/tasker-rs/tasker) worker.

```sh
cargo test                      # the handlers' tests, in-process
cargo run -- run                # a worker on the embedded SQLite file {package}.sqlite
cargo run -- task create '{"namespace": "{namespace}", "name": "greet", "context": {"name": "Ada"}}'
cargo run -- task list          # tasks and their states
cargo run -- --help             # every command
```

Add a handler with `cargo tasker new handler {namespace}/name --steps a,b,c`
and a subscriber with `cargo tasker new subscriber name`. For PostgreSQL,
build with `--features postgres` and set `DATABASE_URL=postgres://...`;
`--features http` adds `serve` (the REST API, health and metrics).
"#;
