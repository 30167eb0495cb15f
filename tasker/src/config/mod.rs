//! Configuration: one YAML file with `environments:` overlays, `${VAR}`
//! interpolation and `TASKER__SECTION__KEY` environment variables, read
//! into a typed, documented schema ([`Settings`]).
//!
//! Precedence, lowest first: the built-in defaults and what code sets on
//! the builder, the file, the file's `environments.<TASKER_ENV>` overlay,
//! `TASKER__...` environment variables, and (in `tasker-cli`) command-line
//! flags. Every layer is checked before anything starts: an unknown key, a
//! value of the wrong type, an unknown handler or step name is an error
//! that names the file and line (or the variable), the key path and what is
//! allowed. See `docs/configuration.md` for the whole schema.
//!
//! ```
//! use std::time::Duration;
//! use tasker::config::Config;
//! use tasker::EngineConfig;
//!
//! let yaml = "
//! engine:
//!   concurrency: 4
//!   lease: 20s
//! environments:
//!   production:
//!     engine:
//!       concurrency: 32
//! ";
//! let vars = |name: &str| (name == "TASKER_ENV").then(|| "production".to_owned());
//! let config = Config::from_yaml_str(yaml, "tasker.yaml", vars).unwrap();
//! let mut engine = EngineConfig::default();
//! config.apply_engine(&mut engine);
//! assert_eq!(engine.concurrency, 32);
//! assert_eq!(engine.lease, Duration::from_secs(20));
//! assert_eq!(config.origin("engine.concurrency").to_string(), "tasker.yaml:8:7");
//! ```

mod error;
mod settings;
mod tree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use semver::Version;

pub use error::{ConfigError, ConfigErrors, Origin};
pub use settings::{
    ApiLimitSettings, ApiSettings, AuthMode, AuthSettings, BackoffSettings, DatabaseSettings,
    EngineSettings, HandlerSettings, JwtSettings, LimitSetting, RetentionRuleSettings,
    RetentionSettings, Secret, Settings, StepOverride, StepSettings, TelemetrySettings,
};

pub(crate) use settings::duration;
use tree::{Node, NodeValue};

/// The longest `max_execution_time` a handler or a task request may give.
pub const MAX_EXECUTION_TIME_LIMIT: Duration = Duration::from_secs(366 * 24 * 3600);

/// The environment variable that selects an `environments:` overlay.
pub const ENV_SELECTOR: &str = "TASKER_ENV";

/// The prefix of environment variables that set configuration keys:
/// `TASKER__ENGINE__LEASE=10s` sets `engine.lease`.
pub const ENV_PREFIX: &str = "TASKER__";

/// A loaded configuration: every layer merged and checked against the
/// schema, each value knowing where it came from.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) settings: Settings,
    tree: Node,
    file: Option<PathBuf>,
    environment: Option<String>,
}

impl Default for Config {
    /// No file, no variables: the built-in defaults.
    fn default() -> Self {
        Config {
            settings: Settings::default(),
            tree: Node::empty_map(Origin::Default),
            file: None,
            environment: None,
        }
    }
}

/// Reads a [`Config`] from its layers: see [`Config::loader`].
#[derive(Debug, Clone, Default)]
pub struct ConfigLoader {
    file: Option<(PathBuf, bool)>,
    environment: Option<String>,
    vars: Option<BTreeMap<String, String>>,
}

impl ConfigLoader {
    /// Reads this file; a missing file is an error.
    #[must_use]
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some((path.into(), true));
        self
    }

    /// Reads this file if it exists (a default location).
    #[must_use]
    pub fn file_if_exists(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some((path.into(), false));
        self
    }

    /// Selects the `environments:` overlay `name` (default: `$TASKER_ENV`).
    #[must_use]
    pub fn environment(mut self, name: impl Into<String>) -> Self {
        self.environment = Some(name.into());
        self
    }

    /// Uses these variables for `${VAR}`, `TASKER_ENV` and `TASKER__...`
    /// instead of the process environment (tests, or a secrets store).
    #[must_use]
    pub fn vars<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.vars = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Reads and checks every layer.
    pub fn load(self) -> Result<Config, ConfigErrors> {
        let vars = self.vars.unwrap_or_else(|| {
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect()
        });
        let text = match &self.file {
            None => None,
            Some((path, required)) => match std::fs::read_to_string(path) {
                Ok(text) => Some((path.clone(), text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => None,
                Err(e) => {
                    return Err(ConfigError {
                        origin: Origin::Program("the configuration file".into()),
                        key: String::new(),
                        problem: format!(
                            "cannot read {}: {e}; check the path given with --config or \
                             TASKER_CONFIG",
                            path.display()
                        ),
                    }
                    .into())
                }
            },
        };
        let environment = self
            .environment
            .or_else(|| vars.get(ENV_SELECTOR).cloned())
            .filter(|e| !e.is_empty());
        Config::build(text, environment, &vars)
    }
}

impl Config {
    /// Starts reading a configuration from its layers.
    ///
    /// ```no_run
    /// let config = tasker::config::Config::loader().file("tasker.yaml").load()?;
    /// # Ok::<(), tasker::config::ConfigErrors>(())
    /// ```
    pub fn loader() -> ConfigLoader {
        ConfigLoader::default()
    }

    /// Reads `path` with the process environment (`TASKER_ENV`, `${VAR}`,
    /// `TASKER__...`).
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigErrors> {
        Config::loader().file(path.as_ref()).load()
    }

    /// Reads YAML text named `name` (for messages), with `vars` answering
    /// `${VAR}` and `TASKER_ENV`. `TASKER__...` variables are not read (a
    /// function cannot list them): use [`Config::loader`] with
    /// [`ConfigLoader::vars`] for those.
    pub fn from_yaml_str(
        text: &str,
        name: &str,
        vars: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let lookup = |name: &str| vars(name);
        let environment = vars(ENV_SELECTOR).filter(|e| !e.is_empty());
        Config::build_with(
            Some((PathBuf::from(name), text.to_owned())),
            environment,
            &lookup,
            &BTreeMap::new(),
        )
    }

    fn build(
        file: Option<(PathBuf, String)>,
        environment: Option<String>,
        vars: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigErrors> {
        let lookup = |name: &str| vars.get(name).cloned();
        let layer: BTreeMap<String, String> = vars
            .iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Config::build_with(file, environment, &lookup, &layer)
    }

    fn build_with(
        file: Option<(PathBuf, String)>,
        environment: Option<String>,
        lookup: &dyn Fn(&str) -> Option<String>,
        env_layer: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigErrors> {
        let mut tree = Node::empty_map(Origin::Default);
        let path = file.as_ref().map(|(p, _)| p.clone());
        if let Some((path, text)) = &file {
            let mut root = Node::from_yaml(text, path)?;
            let environments = root.take("environments");
            tree.origin = root.origin.clone();
            tree.merge(root);
            if let Some(name) = &environment {
                if let Some(environments) = environments {
                    tree.merge(overlay(&environments, name, path)?);
                }
            }
        }
        // Only what applies is interpolated: another environment's overlay
        // may name variables this one does not set.
        let mut errors = Vec::new();
        tree.interpolate(lookup, &mut Vec::new(), &mut errors);
        for (name, value) in env_layer {
            match env_key(name) {
                Ok(key) => tree.set(
                    &key,
                    Node {
                        value: NodeValue::Scalar(tree::scalar_value(
                            value,
                            saphyr::ScalarStyle::Plain,
                        )),
                        origin: Origin::Env(name.clone()),
                    },
                ),
                Err(problem) => errors.push(ConfigError {
                    origin: Origin::Env(name.clone()),
                    key: String::new(),
                    problem,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let settings: Settings = serde_path_to_error::deserialize(tree.to_json()).map_err(|e| {
            let segments = path_segments(e.path());
            ConfigError {
                origin: tree.origin_of(&segments).clone(),
                key: segments.join("."),
                problem: e.into_inner().to_string(),
            }
        })?;
        let config = Config {
            settings,
            tree,
            file: path,
            environment,
        };
        config.check_values()?;
        Ok(config)
    }

    /// The typed settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The file read, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The `environments:` overlay selected, if any.
    pub fn environment(&self) -> Option<&str> {
        self.environment.as_deref()
    }

    /// Where the value at a dotted key path came from (the nearest key
    /// that was set; [`Origin::Default`] when nothing set it).
    pub fn origin(&self, key: &str) -> &Origin {
        self.tree.origin_of(&self.split_key(key))
    }

    /// Where the value at exactly this dotted key path was set; `None`
    /// when no layer sets it (its built-in default applies).
    pub fn set_by(&self, key: &str) -> Option<&Origin> {
        self.tree.origin_at(&self.split_key(key))
    }

    /// Every key that some layer set, dotted, with where it came from, in
    /// file order (`handlers` entries as `handlers.namespace/name.…`).
    pub fn origins(&self) -> Vec<(String, Origin)> {
        let mut out = Vec::new();
        self.tree.leaves("", &mut out);
        out.retain(|(key, _)| !key.is_empty());
        out
    }

    /// An error about `key`, at the place that set it.
    /// Splits a dotted key into the tree's segments. A `handlers` entry
    /// (`payments/process_order@1.2.0`) may hold dots: it is the longest
    /// entry the tree has that the key continues with.
    fn split_key(&self, key: &str) -> Vec<String> {
        let Some(rest) = key.strip_prefix("handlers.") else {
            return key.split('.').map(str::to_owned).collect();
        };
        let entries = self
            .tree
            .get("handlers")
            .map(Node::keys)
            .unwrap_or_default();
        let entry = entries
            .into_iter()
            .filter(|e| rest == *e || rest.strip_prefix(e).is_some_and(|r| r.starts_with('.')))
            .max_by_key(|e| e.len())
            .unwrap_or_else(|| rest.split('.').next().unwrap_or(rest));
        let mut segments = vec!["handlers".to_owned(), entry.to_owned()];
        if let Some(tail) = rest[entry.len()..].strip_prefix('.') {
            segments.extend(tail.split('.').map(str::to_owned));
        }
        segments
    }

    pub(crate) fn error_at(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: self.origin(key).clone(),
            key: key.to_owned(),
            problem: problem.into(),
        }
    }

    /// Values the types allow but tasker does not (a zero lease, ...).
    fn check_values(&self) -> Result<(), ConfigErrors> {
        let s = &self.settings;
        let mut errors = Vec::new();
        let mut positive = |key: &str, ok: bool, what: &str| {
            if !ok {
                errors.push(self.error_at(key, format!("must be {what}")));
            }
        };
        let e = &s.engine;
        positive("engine.concurrency", e.concurrency != Some(0), "at least 1");
        positive("engine.claim_batch", e.claim_batch != Some(0), "at least 1");
        positive(
            "engine.subscriber_queue",
            e.subscriber_queue != Some(0),
            "at least 1",
        );
        positive(
            "database.pool_size",
            s.database.pool_size != Some(0),
            "at least 1",
        );
        for (key, value) in [
            ("engine.lease", e.lease),
            ("engine.poll_interval", e.poll_interval),
            ("engine.subscriber_timeout", e.subscriber_timeout),
            ("engine.step_defaults.timeout", e.step_defaults.timeout),
        ] {
            positive(key, value != Some(Duration::ZERO), "longer than zero");
        }
        if let (Some(base), Some(cap)) = (e.backoff.base, e.backoff.cap) {
            positive(
                "engine.backoff.cap",
                cap >= base,
                "at least `engine.backoff.base`",
            );
        }
        if let Some(retention) = &e.retention {
            positive(
                "engine.retention.batch",
                retention.batch.is_none_or(|b| (1..=5000).contains(&b)),
                "from 1 to 5000",
            );
            for (i, rule) in retention.rules.iter().enumerate() {
                positive(
                    &format!("engine.retention.rules.{i}.states"),
                    !rule.states.is_empty() && rule.states.iter().all(|s| s.is_finished() || *s == crate::state::TaskState::Error),
                    "a non-empty list of finished states (`complete`, `cancelled`, `resolved_manually`) or `error`",
                );
            }
        }
        let l = &s.api.limits;
        for (key, value) in [
            ("body_limit", l.body_limit),
            ("max_connections", l.max_connections),
            ("max_concurrent_requests", l.max_concurrent_requests),
            ("max_headers", l.max_headers),
            ("max_header_bytes", l.max_header_bytes),
            ("max_rows_per_request", l.max_rows_per_request),
            ("max_complexity", l.max_complexity),
            ("max_depth", l.max_depth),
        ] {
            positive(&format!("api.limits.{key}"), value != Some(0), "at least 1");
        }
        for (key, value) in [
            ("body_timeout", l.body_timeout),
            ("request_timeout", l.request_timeout),
            ("header_read_timeout", l.header_read_timeout),
            ("queue_timeout", l.queue_timeout),
        ] {
            positive(
                &format!("api.limits.{key}"),
                value != Some(Duration::ZERO),
                "longer than zero",
            );
        }
        if let Some(schema) = &s.database.schema {
            positive(
                "database.schema",
                crate::graph::valid_name(schema),
                "lowercase letters, digits and `_`",
            );
        }
        if let Some(prefix) = &s.api.prefix {
            positive(
                "api.prefix",
                prefix.is_empty() || (prefix.starts_with('/') && !prefix.contains(['?', '#', ' '])),
                "a path starting with `/` (e.g. `/tasker`)",
            );
        }
        for (name, limit) in &e.limits {
            let key = format!("engine.limits.{name}");
            if !valid_limit_name(name) {
                errors.push(self.error_at(
                    &key,
                    format!(
                        "`{name}` is not a valid limit name: use 1 to 63 letters, digits, `_` and `-`"
                    ),
                ));
            }
            if let Some(problem) = limit.problem() {
                errors.push(self.error_at(&key, format!("limit `{name}` {problem}")));
            }
        }
        for (key, handler) in &s.handlers {
            let base = format!("handlers.{key}");
            if let Err(problem) = parse_handler_key(key) {
                errors.push(self.error_at(&base, problem));
            }
            let limits = std::iter::once((format!("{base}.limit"), &handler.limit)).chain(
                handler
                    .steps
                    .iter()
                    .map(|(step, s)| (format!("{base}.steps.{step}.limit"), &s.limit)),
            );
            for (at, limit) in limits {
                if let Some(LimitSetting::Own(limit)) = limit {
                    if let Some(problem) = limit.problem() {
                        errors.push(self.error_at(&at, format!("this limit {problem}")));
                    }
                }
            }
            if handler.timeout == Some(Duration::ZERO) {
                errors.push(self.error_at(&format!("{base}.timeout"), "must be longer than zero"));
            }
            if let Some(limit) = handler.max_execution_time {
                if limit.is_zero() || limit > MAX_EXECUTION_TIME_LIMIT {
                    errors.push(self.error_at(
                        &format!("{base}.max_execution_time"),
                        format!(
                            "must be between 1ms and {} days",
                            MAX_EXECUTION_TIME_LIMIT.as_secs() / 86_400
                        ),
                    ));
                }
            }
            for (step, settings) in &handler.steps {
                if settings.timeout == Some(Duration::ZERO) {
                    errors.push(self.error_at(
                        &format!("{base}.steps.{step}.timeout"),
                        "must be longer than zero",
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// A name for `engine.limits`: short, and plain enough for logs and URLs.
fn valid_limit_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// `namespace/name` or `namespace/name@version`.
pub(crate) fn parse_handler_key(key: &str) -> Result<(&str, &str, Option<Version>), String> {
    let usage = "write `namespace/name` (every version) or `namespace/name@1.2.0` (one version)";
    let (path, version) = match key.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (key, None),
    };
    let Some((namespace, name)) = path.split_once('/') else {
        return Err(format!("`{key}` does not name a handler: {usage}"));
    };
    for part in [namespace, name] {
        if !crate::graph::valid_name(part) {
            return Err(format!(
                "`{part}` is not a valid namespace or handler name (lowercase letters, digits \
                 and `_`): {usage}"
            ));
        }
    }
    let version = version
        .map(|v| {
            Version::parse(v).map_err(|e| format!("`{v}` is not a semantic version ({e}): {usage}"))
        })
        .transpose()?;
    Ok((namespace, name, version))
}

/// The overlay `name` of `environments:`, checked.
fn overlay(environments: &Node, name: &str, path: &Path) -> Result<Node, ConfigError> {
    let NodeValue::Map(_) = environments.value else {
        return Err(ConfigError {
            origin: environments.origin.clone(),
            key: "environments".into(),
            problem: "must map environment names to overlays: `environments: {production: {engine: ...}}`".into(),
        });
    };
    let Some(selected) = environments.get(name) else {
        let names = environments.keys();
        return Err(ConfigError {
            origin: environments.origin.clone(),
            key: "environments".into(),
            problem: format!(
                "{ENV_SELECTOR}={name}, but {} defines no such environment (it defines {}); \
                 add `environments: {name}:` (it may be empty) or change {ENV_SELECTOR}",
                path.display(),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        });
    };
    match &selected.value {
        NodeValue::Map(_) if selected.get("environments").is_some() => Err(ConfigError {
            origin: selected.origin.clone(),
            key: format!("environments.{name}.environments"),
            problem: "overlays cannot nest `environments:`".into(),
        }),
        NodeValue::Map(_) => Ok(selected.clone()),
        NodeValue::Raw(text, _) if text.is_empty() || text == "~" || text == "null" => {
            Ok(Node::empty_map(selected.origin.clone()))
        }
        _ => Err(ConfigError {
            origin: selected.origin.clone(),
            key: format!("environments.{name}"),
            problem: "an overlay is a mapping of sections, like the top of the file".into(),
        }),
    }
}

/// `TASKER__ENGINE__CLAIM_BATCH` -> `["engine", "claim_batch"]`.
fn env_key(name: &str) -> Result<Vec<String>, String> {
    let rest = &name[ENV_PREFIX.len()..];
    let key: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    if key.iter().any(String::is_empty) {
        return Err(format!(
            "{name} does not name a key: write `{ENV_PREFIX}SECTION__KEY`, e.g. \
             `{ENV_PREFIX}ENGINE__LEASE=10s`"
        ));
    }
    if key[0] == "handlers" || key[0] == "environments" {
        return Err(format!(
            "`{}` cannot be set from environment variables (its keys hold `/` and `@`); set it \
             in the file, with `${{VAR}}` for values that vary",
            key[0]
        ));
    }
    Ok(key)
}

/// A dotted key path, keeping `handlers.<ns/name@1.2.3>` whole.
fn path_segments(path: &serde_path_to_error::Path) -> Vec<String> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect()
}
