//! [`App`]: the operator CLI for a worker binary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches};
use tasker::config::Config;
use tasker::{Store, Tasker, TaskerBuilder};
use tasker_diesel::AnyStore;

use crate::args::{Cli, Command, ConfigCommand, GlobalArgs};
use crate::exit::{CliError, Exit};
use crate::output::Output;
use crate::{inspect, operate, worker};

type Configure = dyn Fn(TaskerBuilder<AnyStore>) -> TaskerBuilder<AnyStore> + Send + Sync;

/// The operator command line of a worker binary: every handler linked into
/// the binary, served by `run`, `serve`, `task ...` and the rest.
///
/// ```no_run
/// use std::process::ExitCode;
///
/// fn main() -> ExitCode {
///     tasker_cli::App::new("orders-worker")
///         .about("Runs the order workflows")
///         .default_database_url("sqlite://orders.sqlite")
///         // Resources and subscribers your steps need.
///         .configure(|builder| builder.resource(String::from("shared client")))
///         .main()
/// }
/// ```
#[derive(Clone)]
pub struct App {
    name: String,
    about: Option<String>,
    default_database_url: String,
    default_config_file: Option<PathBuf>,
    configure: Option<Arc<Configure>>,
    /// The configuration `execute` loaded for the command it runs.
    loaded: Option<Arc<Config>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("name", &self.name)
            .field("default_database_url", &self.default_database_url)
            .finish_non_exhaustive()
    }
}

impl App {
    /// An app named `name` (the binary's name in `--help`, the service name
    /// of its spans). The database defaults to `sqlite://<name>.sqlite`.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        App {
            default_database_url: format!("sqlite://{name}.sqlite"),
            name,
            about: None,
            default_config_file: None,
            configure: None,
            loaded: None,
        }
    }

    /// The one-line description `--help` shows.
    pub fn about(mut self, about: impl Into<String>) -> Self {
        self.about = Some(about.into());
        self
    }

    /// The database when neither `--database-url` nor `DATABASE_URL` is given.
    pub fn default_database_url(mut self, url: impl Into<String>) -> Self {
        self.default_database_url = url.into();
        self
    }

    /// The configuration file read when neither `--config` nor
    /// `TASKER_CONFIG` names one, if it exists (e.g. `tasker.yaml`).
    pub fn default_config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.default_config_file = Some(path.into());
        self
    }

    /// Adds resources, subscribers or engine settings to every engine the
    /// commands build. The configuration file's settings win over what
    /// this sets, and command-line flags over both.
    pub fn configure(
        mut self,
        configure: impl Fn(TaskerBuilder<AnyStore>) -> TaskerBuilder<AnyStore> + Send + Sync + 'static,
    ) -> Self {
        self.configure = Some(Arc::new(configure));
        self
    }

    /// The clap command of [`Cli`], named and described as this app.
    pub fn command(&self) -> clap::Command {
        let mut command = Cli::command().name(self.name.clone());
        if let Some(about) = &self.about {
            command = command.about(about.clone());
        }
        command
    }

    /// Parses the process's arguments, runs the command on a new Tokio
    /// runtime, prints any error to stderr, and returns the exit code.
    pub fn main(self) -> ExitCode {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("error: cannot start the Tokio runtime: {e}");
                return Exit::Failure.into();
            }
        };
        runtime.block_on(self.run_from(std::env::args_os()))
    }

    /// Parses `args` (the first is the program name) and runs the command;
    /// errors go to stderr. For a binary that already has a runtime.
    pub async fn run_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = match self.command().try_get_matches_from(args) {
            Ok(matches) => matches,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
            }
        };
        let cli = match Cli::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(e) => {
                let _ = e.print();
                return Exit::Usage.into();
            }
        };
        match cli.command {
            Some(command) => self.execute(&cli.global, command).await,
            // No command: the help, as `cargo` does.
            None => {
                let _ = self.command().print_help();
                ExitCode::SUCCESS
            }
        }
    }

    /// Runs one command with logging set up; errors go to stderr. For a
    /// binary with commands of its own beside tasker's: parse your own
    /// `clap` type that flattens [`GlobalArgs`] and holds [`Command`], then
    /// call this for tasker's.
    pub async fn execute(&self, global: &GlobalArgs, command: Command) -> ExitCode {
        let app = match self.load(global) {
            Ok(app) => app,
            Err(e) => return report(e),
        };
        let _telemetry = match app.telemetry(global) {
            Ok(guard) => guard,
            Err(e) => return report(e),
        };
        match app.dispatch(global, command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => report(e),
        }
    }

    /// Sets up logging (and span export) for the process; keep the guard
    /// alive until the end. [`execute`](Self::execute) does this itself.
    pub fn telemetry(
        &self,
        global: &GlobalArgs,
    ) -> Result<tasker::telemetry::TelemetryGuard, CliError> {
        let file = &self.config().settings().telemetry;
        tasker::telemetry::init(tasker::telemetry::TelemetryConfig {
            service_name: self.name.clone(),
            json_logs: global.json_logs || file.json_logs == Some(true),
            filter: global
                .log
                .clone()
                .or_else(|| file.log.clone())
                .unwrap_or_else(|| "warn".to_owned()),
            #[cfg(feature = "otel")]
            otlp_endpoint: global
                .otlp_endpoint
                .clone()
                .or_else(|| file.otlp_endpoint.clone()),
            ..tasker::telemetry::TelemetryConfig::default()
        })
        .map_err(|e| CliError::usage(e.to_string()))
    }

    async fn dispatch(&self, global: &GlobalArgs, command: Command) -> Result<(), CliError> {
        let out = Output::new(global.json);
        match command {
            Command::Run(args) => worker::run(self, global, &args).await,
            #[cfg(feature = "http")]
            Command::Serve(args) => worker::serve(self, global, &args).await,
            Command::Migrate { status: false } => operate::migrate(self, global, out).await,
            Command::Migrate { status: true } => inspect::migration_status(self, global, out).await,
            Command::Handlers { handler: None } => inspect::handlers(out),
            Command::Handlers {
                handler: Some(handler),
            } => inspect::handler(out, &handler),
            Command::Graph { handler, format } => inspect::graph(out, &handler, format),
            Command::Task(command) => operate::task(self, global, out, command).await,
            Command::Step(command) => operate::step(self, global, out, command).await,
            Command::Analyze { task_id } => inspect::analyze(self, global, out, task_id).await,
            Command::Check => inspect::check(self, global, out).await,
            Command::Purge(args) => operate::purge(self, global, out, &args).await,
            Command::DeadLetters(command) => {
                operate::dead_letters(self, global, out, command).await
            }
            Command::Config(ConfigCommand::Show) => inspect::config(self, global, out),
        }
    }

    /// The database URL: `--database-url`, `DATABASE_URL`, the
    /// configuration's `database.url`, or the app's default.
    pub fn database_url<'a>(&'a self, global: &'a GlobalArgs) -> &'a str {
        global
            .database_url
            .as_deref()
            .or(self.config().settings().database.url.as_deref())
            .unwrap_or(&self.default_database_url)
    }

    /// Reads the configuration: `--config` / `TASKER_CONFIG` (which must
    /// exist), else the app's [default file](Self::default_config_file) if
    /// it exists; the overlay of `--environment` or `TASKER_ENV`; and
    /// `TASKER__...` variables. Errors are usage errors (exit code 2) that
    /// name the file, line and key.
    pub fn load_config(&self, global: &GlobalArgs) -> Result<Config, CliError> {
        let mut loader = Config::loader();
        loader = match (&global.config, &self.default_config_file) {
            (Some(path), _) => loader.file(path),
            (None, Some(path)) => loader.file_if_exists(path),
            (None, None) => loader,
        };
        if let Some(environment) = &global.environment {
            loader = loader.environment(environment);
        }
        loader.load().map_err(|e| CliError::usage(e.to_string()))
    }

    /// This app with its configuration read (see
    /// [`load_config`](Self::load_config)), for a binary that runs
    /// commands of its own with [`engine`](Self::engine) and
    /// [`telemetry`](Self::telemetry). Once loaded, it is not read again.
    pub fn load(&self, global: &GlobalArgs) -> Result<App, CliError> {
        if self.loaded.is_some() {
            return Ok(self.clone());
        }
        Ok(App {
            loaded: Some(Arc::new(self.load_config(global)?)),
            ..self.clone()
        })
    }

    /// The configuration of the command being run (the built-in defaults
    /// outside [`execute`](Self::execute)).
    pub fn config(&self) -> &Config {
        static NONE: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
        self.loaded
            .as_deref()
            .unwrap_or_else(|| NONE.get_or_init(Config::default))
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Opens the database for reading only: nothing is created or
    /// migrated; a missing SQLite file or an unmigrated database is an
    /// error (exit code 5) that says what to do.
    pub async fn read_store(&self, global: &GlobalArgs) -> Result<AnyStore, CliError> {
        let store = tasker_diesel::connect_read_only_configured(
            self.database_url(global),
            &self.config().settings().database,
        )
        .await?;
        require_migrated(&store).await?;
        Ok(store)
    }

    /// An engine on the database with every handler of this binary, the
    /// [`configure`](Self::configure) hook applied and then `change` (the
    /// command line's settings); `migrate` applies pending migrations
    /// first, otherwise an unmigrated database is an error.
    pub async fn engine(
        &self,
        global: &GlobalArgs,
        migrate: bool,
        change: impl FnOnce(&mut tasker::EngineConfig),
    ) -> Result<Tasker<AnyStore>, CliError> {
        let store = tasker_diesel::connect_configured(
            self.database_url(global),
            &self.config().settings().database,
        )
        .await?;
        if !migrate {
            require_migrated(&store).await?;
        }
        let mut builder = Tasker::builder(store).migrate(migrate);
        if let Some(configure) = &self.configure {
            builder = configure(builder);
        }
        // Precedence: the hook's settings, then the configuration's, then
        // the command line's (`--concurrency`).
        let tasker = builder
            .settings(self.config().clone())
            .configure(change)
            .build()
            .await?;
        for refused in &tasker.startup_report().refused {
            eprintln!(
                "warning: {} unfinished task(s) will not run here: {}",
                refused.stored.tasks, refused.reason
            );
        }
        Ok(tasker)
    }

    /// The operator's name for the audit trail.
    pub(crate) fn actor(&self, global: &GlobalArgs) -> String {
        global.actor.clone().unwrap_or_else(|| {
            let user = std::env::var("USER")
                .or_else(|_| std::env::var("USERNAME"))
                .unwrap_or_else(|_| "unknown".to_owned());
            format!("cli:{user}")
        })
    }
}

async fn require_migrated(store: &AnyStore) -> Result<(), CliError> {
    let status = store.migration_status().await?;
    if status.applied.is_empty() {
        return Err(CliError::new(
            Exit::Unavailable,
            format!(
                "the database ({}) has no tasker tables: run `migrate` (or start a worker) first",
                store.describe()
            ),
        ));
    }
    if !status.is_current() {
        return Err(CliError::new(
            Exit::Unavailable,
            format!(
                "the database ({}) lacks {} migration(s) ({}): run `migrate` first",
                store.describe(),
                status.pending.len(),
                status.pending.join(", ")
            ),
        ));
    }
    Ok(())
}

fn report(e: CliError) -> ExitCode {
    eprintln!("error: {}", e.message);
    e.exit.into()
}
