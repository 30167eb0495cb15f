//! A configuration bound to the handlers linked in: which `handlers:`
//! entries name which handler, each step's resolved settings, and the
//! typed `handler_config` values, read once. Apart from `config` (pure data)
//! so that `config` depends on nothing of the model.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use semver::Version;
use serde_json::Value;

use crate::config::LimitSetting;
use crate::config::{parse_handler_key, Config, ConfigError, ConfigErrors, HandlerSettings};
use crate::handler::{ConfigType, Handler};
use crate::limit::Limit;
use crate::priority::Priority;
use crate::registry::Registry;
use crate::step::{ConfigValue, HandlerConfigs, StepConfig};

/// A step's settings after every layer, and the configuration values it
/// can read.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedStep {
    /// Retry limit, retryable, timeout.
    pub(crate) config: StepConfig,
    /// The step's and its handler's `handler_config`, decoded.
    pub(crate) configs: HandlerConfigs,
    /// The step's configured priority (in place of its task's).
    pub(crate) priority: Option<Priority>,
    /// The limit the step runs under, by name, with its rule.
    pub(crate) limit: Option<(String, Limit)>,
    /// Whether a worker finishing this step may claim a child it releases
    /// in the same statement: not when a child is limited, since that
    /// claim would pass by the limit.
    pub(crate) take_child: bool,
}

/// What the configuration says about a handler's tasks, where a request is
/// silent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TaskDefaults {
    pub(crate) priority: Option<Priority>,
    pub(crate) max_execution_time: Option<Duration>,
}

/// The `handlers:` entries' task settings for `handler`, the most specific
/// entry winning.
pub(crate) fn task_defaults(config: &Config, handler: &Handler) -> TaskDefaults {
    let mut defaults = TaskDefaults::default();
    for (_, settings) in entries_for(config, handler) {
        defaults.priority = settings.priority.or(defaults.priority);
        defaults.max_execution_time = settings.max_execution_time.or(defaults.max_execution_time);
    }
    defaults
}

/// The `handlers:` entries that apply to `handler`, least specific first:
/// `namespace/name`, then `namespace/name@version`.
fn entries_for<'a>(config: &'a Config, handler: &Handler) -> Vec<(&'a str, &'a HandlerSettings)> {
    let mut entries: Vec<_> = config
        .settings()
        .handlers
        .iter()
        .filter_map(|(key, settings)| {
            let (namespace, name, version) = parse_handler_key(key).ok()?;
            let applies = namespace == handler.namespace()
                && name == handler.name()
                && version.as_ref().is_none_or(|v| v == handler.version());
            applies.then_some((key.as_str(), settings, version.is_some()))
        })
        .collect();
    entries.sort_by_key(|(_, _, versioned)| *versioned);
    entries.into_iter().map(|(k, s, _)| (k, s)).collect()
}

/// Every `handlers:` key names a linked handler, and every step name one
/// of its steps.
pub(crate) fn check_keys(config: &Config, registry: &Registry) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (key, settings) in &config.settings().handlers {
        let base = format!("handlers.{key}");
        let Ok((namespace, name, version)) = parse_handler_key(key) else {
            continue; // reported by check_values
        };
        let versions: Vec<&Version> = registry.versions(namespace, name).collect();
        let matching: Vec<&Handler> = registry
            .handlers()
            .filter(|h| h.namespace() == namespace && h.name() == name)
            .filter(|h| version.as_ref().is_none_or(|v| v == h.version()))
            .collect();
        if versions.is_empty() {
            let known: Vec<String> = registry
                .handlers()
                .map(|h| format!("{}/{}", h.namespace(), h.name()))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let hint = suggest(
                &format!("{namespace}/{name}"),
                known.iter().map(String::as_str),
            )
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
            errors.push(config.error_at(
                &base,
                format!(
                    "no handler `{namespace}/{name}` is linked into this binary (linked: {}){hint}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
            continue;
        }
        if matching.is_empty() {
            errors.push(config.error_at(
                &base,
                format!(
                    "handler `{namespace}/{name}` has no version {}; linked versions: {}",
                    version.as_ref().map(ToString::to_string).unwrap_or_default(),
                    versions.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
            ));
            continue;
        }
        for step in settings.steps.keys() {
            if matching.iter().any(|h| h.step(step).is_some()) {
                continue;
            }
            let mut names: Vec<&str> = matching
                .iter()
                .flat_map(|h| h.steps().iter().map(|s| s.name()))
                .collect();
            names.sort_unstable();
            names.dedup();
            let hint = suggest(step, names.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            errors.push(config.error_at(
                &format!("{base}.steps.{step}"),
                format!(
                    "handler `{namespace}/{name}` has no step `{step}`; its steps are {}{hint}",
                    names.join(", ")
                ),
            ));
        }
    }
    errors
}

/// Each step of `handler` with every layer applied, lowest first: the
/// engine's step defaults, the step's attribute in code, the handler's
/// entries in `handlers:` (`namespace/name`, then `@version`), the step's
/// entries there. Typed `handler_config` values are read here, once.
pub(crate) fn resolve(
    config: &Config,
    handler: &Handler,
    defaults: &StepConfig,
    limits: &BTreeMap<String, Limit>,
    given: &[GivenConfig],
) -> Result<Vec<ResolvedStep>, ConfigErrors> {
    let entries = entries_for(config, handler);
    let mut errors = Vec::new();
    let mut handler_limit = None;
    for (key, settings) in &entries {
        if let Some(setting) = &settings.limit {
            let at = format!("handlers.{key}.limit");
            handler_limit = limit_for(config, limits, setting, &at, &mut errors).or(handler_limit);
        }
    }
    let handler_value = match handler.config_type() {
        None => {
            for (key, settings) in &entries {
                if settings.handler_config.is_some() {
                    errors.push(config.error_at(
                        &format!("handlers.{key}.handler_config"),
                        format!(
                            "handler {} declares no configuration type; add `config = YourType` \
                             to its #[task_handler(...)] or remove this key",
                            handler.key()
                        ),
                    ));
                }
            }
            None
        }
        Some(ty) if given_value(ty, given).is_some() => given_value(ty, given),
        Some(ty) => {
            let (key, value) = entries
                .iter()
                .rev()
                .find_map(|(key, s)| s.handler_config.as_ref().map(|v| (*key, v)))
                .map_or_else(
                    || (format!("{}/{}", handler.namespace(), handler.name()), None),
                    |(key, v)| (key.to_owned(), Some(v)),
                );
            match decode(
                config,
                ty,
                value,
                &format!("handlers.{key}.handler_config"),
                || format!("handler {}", handler.key()),
            ) {
                Ok(value) => Some((ty.type_name, value)),
                Err(e) => {
                    errors.push(e);
                    None
                }
            }
        }
    };
    let mut steps = Vec::with_capacity(handler.steps().len());
    for step in handler.steps() {
        let mut resolved = step.config(defaults);
        for (_, settings) in &entries {
            apply(
                &mut resolved,
                settings.retry_limit,
                settings.retryable,
                settings.timeout,
            );
        }
        let mut step_value: Option<(&str, &Value)> = None;
        let mut priority = None;
        // The attribute's limit, under the file's handler and step keys.
        let mut limit = handler_limit.clone().or_else(|| {
            let name = step.limit()?;
            match limits.get(name) {
                Some(rule) => Some((name.to_owned(), *rule)),
                None => {
                    errors.push(ConfigError {
                        origin: crate::config::Origin::Program(format!(
                            "#[step(limit = \"{name}\")] of step `{}` of {}",
                            step.name(),
                            handler.key()
                        )),
                        key: format!("engine.limits.{name}"),
                        problem: format!(
                            "no limit `{name}` is defined; add it to `engine.limits` in the \
                             configuration (e.g. `{name}: {{concurrency: 2}}`) or to \
                             `EngineConfig::limits`"
                        ),
                    });
                    None
                }
            }
        });
        for (key, settings) in &entries {
            if let Some(over) = settings.steps.get(step.name()) {
                priority = over.priority.or(priority);
                if let Some(setting) = &over.limit {
                    let at = format!("handlers.{key}.steps.{}.limit", step.name());
                    limit = limit_for(config, limits, setting, &at, &mut errors).or(limit);
                }
                apply(
                    &mut resolved,
                    over.retry_limit,
                    over.retryable,
                    over.timeout,
                );
                if let Some(value) = &over.handler_config {
                    step_value = Some((key, value));
                }
            }
        }
        let own = match (step.config_type(), step_value) {
            (None, None) => None,
            (None, Some((key, _))) => {
                errors.push(config.error_at(
                    &format!("handlers.{key}.steps.{}.handler_config", step.name()),
                    format!(
                        "step `{}` of {} declares no configuration type; add `config = YourType` \
                         to its #[step(...)] or remove this key",
                        step.name(),
                        handler.key()
                    ),
                ));
                None
            }
            (Some(ty), _) if given_value(ty, given).is_some() => given_value(ty, given),
            (Some(ty), value) => {
                let key = value.map_or_else(
                    || format!("{}/{}", handler.namespace(), handler.name()),
                    |(k, _)| k.to_owned(),
                );
                match decode(
                    config,
                    ty,
                    value.map(|(_, v)| v),
                    &format!("handlers.{key}.steps.{}.handler_config", step.name()),
                    || format!("step `{}` of {}", step.name(), handler.key()),
                ) {
                    Ok(value) => Some((ty.type_name, value)),
                    Err(e) => {
                        errors.push(e);
                        None
                    }
                }
            }
        };
        steps.push(ResolvedStep {
            config: resolved,
            configs: HandlerConfigs::new(own, handler_value.clone()),
            priority,
            limit,
            take_child: true,
        });
    }
    let limited: Vec<bool> = steps.iter().map(|s| s.limit.is_some()).collect();
    for (step, resolved) in handler.steps().iter().zip(&mut steps) {
        resolved.take_child = handler
            .graph()
            .dependents(step.name())
            .iter()
            .filter_map(|child| handler.steps().iter().position(|s| s.name() == *child))
            .all(|i| !limited[i]);
    }
    if errors.is_empty() {
        Ok(steps)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The limit a `limit:` key at `at` means: a named one (which must exist)
/// or its own, named after the key.
fn limit_for(
    config: &Config,
    limits: &BTreeMap<String, Limit>,
    setting: &LimitSetting,
    at: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<(String, Limit)> {
    match setting {
        LimitSetting::Own(limit) => Some((at.to_owned(), *limit)),
        LimitSetting::Named(name) => match limits.get(name) {
            Some(limit) => Some((name.clone(), *limit)),
            None => {
                let hint = suggest(name, limits.keys().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                let known = if limits.is_empty() {
                    "none is defined".to_owned()
                } else {
                    format!(
                        "defined: {}",
                        limits.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                };
                errors.push(config.error_at(
                    at,
                    format!(
                        "no limit `{name}` in `engine.limits` ({known}){hint}; define it there \
                         or write the limit here, e.g. `{{concurrency: 2}}`"
                    ),
                ));
                None
            }
        },
    }
}

fn apply(
    config: &mut StepConfig,
    retry_limit: Option<u32>,
    retryable: Option<bool>,
    timeout: Option<std::time::Duration>,
) {
    if let Some(limit) = retry_limit {
        config.retry_limit = limit;
    }
    if let Some(retryable) = retryable {
        config.retryable = retryable;
    }
    if timeout.is_some() {
        config.timeout = timeout;
    }
}

/// Reads `value` (an empty mapping when the file has none) into the
/// declared type.
fn decode(
    config: &Config,
    ty: &ConfigType,
    value: Option<&Value>,
    key: &str,
    who: impl Fn() -> String,
) -> Result<ConfigValue, ConfigError> {
    let empty = Value::Object(serde_json::Map::new());
    (ty.decode)(value.unwrap_or(&empty)).map_err(|(path, message)| {
        let full = if path == "." || path.is_empty() {
            key.to_owned()
        } else {
            format!("{key}.{path}")
        };
        let problem = match value {
            Some(_) => format!(
                "does not fit `{}`, the configuration type of {}: {message}",
                ty.type_name,
                who()
            ),
            None => format!(
                "is missing: {} reads its configuration into `{}` ({message}); add `{key}:` to \
                 the configuration file",
                who(),
                ty.type_name
            ),
        };
        ConfigError {
            origin: config.origin(&full).clone(),
            key: full,
            problem,
        }
    })
}

/// The closest candidate within a small edit distance, for "did you mean".
pub(crate) fn suggest<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(wrong, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A configuration value given directly, by type (the test runner's
/// [`handler_config`](crate::testing::TaskRunner::handler_config)); it
/// replaces what the file would give for a handler or step declaring it.
pub(crate) type GivenConfig = (std::any::TypeId, &'static str, ConfigValue);

fn given_value(ty: &ConfigType, given: &[GivenConfig]) -> Option<(&'static str, ConfigValue)> {
    given
        .iter()
        .find(|(id, _, _)| *id == (ty.type_id)())
        .map(|(_, name, value)| (*name, Arc::clone(value)))
}

impl Config {
    /// Checks the `handlers:` section against the handlers of `registry`:
    /// every key names a handler (and version) linked in, every step name
    /// exists, and every `handler_config` reads into the type its handler
    /// or step declares. Returns every problem at once.
    pub fn check(&self, registry: &Registry) -> Result<(), ConfigErrors> {
        let defaults = StepConfig::default();
        let mut errors = check_keys(self, registry);
        let limits = &self.settings().engine.limits;
        for handler in registry.handlers() {
            if let Err(e) = resolve(self, handler, &defaults, limits, &[]) {
                errors.extend(e.0);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }
}
