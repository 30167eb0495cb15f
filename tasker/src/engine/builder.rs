//! Building a [`Tasker`]: resources, subscribers, configuration, and the
//! start-up check that registers this binary's handlers against the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::config::{CoordinationMode, EngineConfig};
use super::{Inner, Tasker};
use crate::config::Config;
use crate::error::Result;
use crate::events::{names, ErasedSubscriber, Event, EventBus, Observer, Subscriber};
use crate::limit::ClaimLimit;
use crate::metrics::Metrics;
use crate::priority::{ClaimOrder, PriorityAging};
use crate::registry::{RefusedHandler, Registry};
use crate::step::Resources;
use crate::store::{HandlerRecord, Store};

/// What the start-up check found.
#[derive(Debug, Clone, Default)]
pub struct StartupReport {
    /// Handlers registered from this binary.
    pub registered: Vec<String>,
    /// Unfinished tasks this worker will not touch, by handler shape.
    pub refused: Vec<RefusedHandler>,
    /// Steps recovered from a previous process (single-process mode).
    pub recovered_steps: u64,
    /// Handlers this engine does not serve because the store cannot run
    /// them (a `#[step(transactional)]` step on a store without step
    /// transactions), with the reason.
    pub unsupported: Vec<String>,
    /// Problems of the database's set-up an operator should fix (see
    /// [`Store::warnings`]); also logged at start-up and shown by
    /// `/health/status`.
    pub warnings: Vec<String>,
}

/// Builds a [`Tasker`]: see [`Tasker::builder`].
pub struct TaskerBuilder<S: Store> {
    store: S,
    registry: Option<Registry>,
    resources: Resources,
    config: EngineConfig,
    migrate: bool,
    subscribers: Vec<Arc<dyn ErasedSubscriber>>,
    registered_subscribers: bool,
    settings: Option<Config>,
    claim_order: Option<Arc<dyn ClaimOrder>>,
}

impl<S: Store> TaskerBuilder<S> {
    /// Adds an event subscriber (besides those registered with
    /// [`register_subscriber!`](crate::register_subscriber)).
    #[must_use]
    pub fn subscriber(mut self, subscriber: impl Subscriber) -> Self {
        self.subscribers.push(Arc::new(subscriber));
        self
    }

    /// Leaves out the subscribers registered with
    /// [`register_subscriber!`](crate::register_subscriber).
    #[must_use]
    pub fn without_registered_subscribers(mut self) -> Self {
        self.registered_subscribers = false;
        self
    }

    /// Serve these handlers instead of every handler linked in.
    #[must_use]
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Adds a shared resource for steps (`ctx.resource::<T>()`).
    #[must_use]
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources = self.resources.with(value);
        self
    }

    /// Replaces the engine settings.
    #[must_use]
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Changes the engine settings in place.
    #[must_use]
    pub fn configure(mut self, change: impl FnOnce(&mut EngineConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// Applies a configuration ([`Config`]): its `engine:` section now,
    /// over what was set before (so a later [`configure`](Self::configure)
    /// wins, as command-line flags should), and its `handlers:` section at
    /// [`build`](Self::build), which checks it against the handlers linked
    /// in and reads every typed `handler_config` once. A mistake there
    /// fails `build` with [`Error::Config`](crate::Error::Config), naming
    /// the file, line and key.
    ///
    /// ```
    /// # async fn demo<S: tasker::Store>(store: S) -> tasker::Result<()> {
    /// let config = tasker::config::Config::load("tasker.yaml")?;
    /// let tasker = tasker::Tasker::builder(store).settings(config).build().await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn settings(mut self, config: Config) -> Self {
        config.apply_engine(&mut self.config);
        self.settings = Some(config);
        self
    }

    /// Decides where each new step goes in the claim queue, in place of
    /// the default [`PriorityAging`] (one `engine.priority_aging` of head
    /// start per priority level). The guide's custom coordinator.
    #[must_use]
    pub fn claim_order(mut self, order: impl ClaimOrder) -> Self {
        self.claim_order = Some(Arc::new(order));
        self
    }

    /// Applies the store's migrations before starting (default: no).
    #[must_use]
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Migrates (when asked), records the handlers, checks unfinished
    /// tasks against them, and recovers a dead predecessor's steps in
    /// single-process mode.
    pub async fn build(self) -> Result<Tasker<S>> {
        let TaskerBuilder {
            store,
            registry,
            resources,
            config,
            migrate,
            mut subscribers,
            registered_subscribers,
            settings,
            claim_order,
        } = self;
        let settings = settings.unwrap_or_default();
        if registered_subscribers {
            subscribers.extend(crate::events::registered_subscribers());
        }
        let metrics = Arc::new(Metrics::new());
        let events = EventBus::start(
            subscribers,
            config.subscriber_queue,
            config.subscriber_timeout,
            Arc::clone(&metrics) as Arc<dyn Observer>,
        );
        if migrate {
            store.migrate().await?;
        }
        let registry = match registry {
            Some(registry) => registry,
            None => Registry::from_inventory()?,
        };
        let mut config_errors = crate::binding::check_keys(&settings, &registry);
        // Limits set in code (a file's were checked when it loaded).
        for (name, limit) in &config.limits {
            if let Some(problem) = limit.problem() {
                config_errors.push(crate::config::ConfigError {
                    origin: crate::config::Origin::Program("EngineConfig::limits".to_owned()),
                    key: format!("engine.limits.{name}"),
                    problem: format!("limit `{name}` {problem}"),
                });
            }
        }
        let mut report = StartupReport::default();
        let mut by_id = HashMap::new();
        let mut steps = HashMap::new();
        let mut task_defaults = HashMap::new();
        let mut ids = HashMap::new();
        let mut limits: BTreeMap<String, ClaimLimit> = BTreeMap::new();
        let capabilities = store.capabilities();
        for handler in registry.handlers() {
            if !capabilities.step_transactions {
                if let Some(step) = handler.steps().iter().find(|s| s.transactional()) {
                    let reason = format!(
                        "handler {} is not served here: its step `{}` is `#[step(transactional)]`, \
                         which needs a store that shares a transaction with a step (PostgreSQL)",
                        handler.key(),
                        step.name()
                    );
                    tracing::error!("{reason}");
                    report.unsupported.push(reason);
                    continue;
                }
            }
            let resolved = match crate::binding::resolve(
                &settings,
                handler,
                &config.step_defaults,
                &config.limits,
                &[],
            ) {
                Ok(resolved) => resolved,
                Err(errors) => {
                    config_errors.extend(errors.0);
                    continue;
                }
            };
            if !config_errors.is_empty() {
                continue;
            }
            let id = store.register_handler(&HandlerRecord::of(handler)).await?;
            for (step, resolved) in handler.steps().iter().zip(&resolved) {
                if let Some((name, limit)) = &resolved.limit {
                    limits
                        .entry(name.clone())
                        .or_insert_with(|| ClaimLimit {
                            name: name.clone(),
                            limit: *limit,
                            steps: Vec::new(),
                        })
                        .steps
                        .push((id, step.name().to_owned()));
                }
            }
            by_id.insert(id, handler.clone());
            steps.insert(id, Arc::from(resolved));
            task_defaults.insert(id, crate::binding::task_defaults(&settings, handler));
            ids.insert(
                (
                    handler.namespace().to_owned(),
                    handler.name().to_owned(),
                    handler.version().clone(),
                ),
                id,
            );
            report.registered.push(handler.key());
            events.publish(
                handler
                    .event(names::REGISTRY_HANDLER_REGISTERED)
                    .with_data(handler.fingerprint().into()),
            );
        }
        if !config_errors.is_empty() {
            return Err(crate::config::ConfigErrors(config_errors).into());
        }
        for refused in registry.refusals(store.unfinished_handlers().await?) {
            tracing::error!(
                tasks = refused.stored.tasks,
                "{}; these tasks will not run here",
                refused.reason
            );
            events.publish(
                Event::new(names::REGISTRY_HANDLER_REFUSED)
                    .with_handler(
                        &refused.stored.namespace,
                        &refused.stored.name,
                        &refused.stored.version,
                    )
                    .with_count(refused.stored.tasks as u64)
                    .with_message(refused.reason.clone()),
            );
            report.refused.push(refused);
        }
        let mode = CoordinationMode::for_capabilities(store.capabilities());
        if mode == CoordinationMode::SingleProcess {
            report.recovered_steps = store.recover_expired(true).await?;
        }
        report.warnings = store.warnings().await?;
        for warning in &report.warnings {
            tracing::warn!("{warning}");
        }
        let served_ids = by_id.keys().copied().collect();
        for limit in limits.values() {
            tracing::info!(
                limit = %limit.name,
                concurrency = ?limit.limit.concurrency,
                per_second = ?limit.limit.per_second,
                steps = limit.steps.len(),
                "steps claimed under a limit held across workers"
            );
        }
        Ok(Tasker {
            inner: Arc::new(Inner {
                store,
                registry,
                by_id,
                steps,
                task_defaults,
                claim_order: claim_order
                    .unwrap_or_else(|| Arc::new(PriorityAging::new(config.priority_aging))),
                settings,
                ids,
                served_ids,
                limits: limits.into_values().collect(),
                resources,
                config,
                mode,
                report,
                events,
                metrics,
                housekeeping: std::sync::atomic::AtomicBool::new(false),
                retention_ran: std::sync::Mutex::new(None),
            }),
        })
    }
}

impl<S: Store> Tasker<S> {
    /// Starts building an engine on `store`.
    pub fn builder(store: S) -> TaskerBuilder<S> {
        TaskerBuilder {
            store,
            registry: None,
            resources: Resources::new(),
            config: EngineConfig::default(),
            migrate: false,
            subscribers: Vec::new(),
            registered_subscribers: true,
            settings: None,
            claim_order: None,
        }
    }
}
