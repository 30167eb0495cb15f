//! Per-task step settings derived from the task's context before its steps
//! are created: the guide's `establish_step_dependencies_and_defaults`
//! (e.g. more retries for premium orders, a higher priority for rush
//! ones).
//!
//! A handler names the function with `#[task_handler(step_defaults =
//! path)]`; it receives the typed context and a [`StepDefaults`] and
//! changes the settings of the steps it names. What it sets wins over the
//! attribute and the configuration file, for this task only.

use crate::Priority;

/// The steps of one task about to be created, whose settings a handler's
/// `step_defaults` function may change.
///
/// ```
/// use tasker::prelude::*;
/// use tasker::{Priority, StepDefaults};
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// pub struct Order { pub premium: bool }
///
/// pub struct Checkout;
///
/// #[task_handler(namespace = "docs_defaults", version = "1.0.0", context = Order, step_defaults = Checkout::defaults)]
/// impl Checkout {
///     #[step(retry_limit = 2)]
///     async fn charge(ctx: &StepContext<Order>) -> StepResult<()> { Ok(()) }
///
///     fn defaults(order: &Order, steps: &mut StepDefaults) {
///         if order.premium {
///             steps.step("charge").retry_limit(10).priority(Priority::High);
///         }
///     }
/// }
///
/// let defaults = Checkout::handler().step_defaults(&serde_json::json!({"premium": true})).unwrap();
/// let charge = defaults.get("charge").unwrap();
/// assert_eq!(charge.get_retry_limit(), Some(10));
/// assert_eq!(charge.get_priority(), Some(Priority::High));
/// let plain = Checkout::handler().step_defaults(&serde_json::json!({"premium": false})).unwrap();
/// assert_eq!(plain.get("charge").unwrap().get_retry_limit(), None);
/// ```
#[derive(Debug, Clone)]
pub struct StepDefaults {
    names: Vec<&'static str>,
    settings: Vec<StepSettings>,
    unknown: Vec<String>,
    scratch: StepSettings,
}

/// What a `step_defaults` function may set for one step of one task; each
/// is left as the handler and the configuration say unless set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepSettings {
    retry_limit: Option<u32>,
    retryable: Option<bool>,
    priority: Option<Priority>,
}

impl StepSettings {
    /// Retries after the first attempt (`retry_limit(3)`: 4 attempts).
    pub fn retry_limit(&mut self, retries: u32) -> &mut Self {
        self.retry_limit = Some(retries);
        self
    }

    /// Whether a retryable error may be retried at all.
    pub fn retryable(&mut self, retryable: bool) -> &mut Self {
        self.retryable = Some(retryable);
        self
    }

    /// The step's priority in the claim order.
    pub fn priority(&mut self, priority: Priority) -> &mut Self {
        self.priority = Some(priority);
        self
    }

    /// The retry limit set, if any.
    pub fn get_retry_limit(&self) -> Option<u32> {
        self.retry_limit
    }

    /// Whether retries were switched on or off, if set.
    pub fn get_retryable(&self) -> Option<bool> {
        self.retryable
    }

    /// The priority set, if any.
    pub fn get_priority(&self) -> Option<Priority> {
        self.priority
    }

    /// `config` with what was set applied.
    pub(crate) fn apply(&self, mut config: crate::StepConfig) -> crate::StepConfig {
        if let Some(n) = self.retry_limit {
            config.retry_limit = n;
        }
        if let Some(r) = self.retryable {
            config.retryable = r;
        }
        config
    }
}

impl StepDefaults {
    /// The settings of a task with these steps, nothing set yet.
    pub fn new(names: impl IntoIterator<Item = &'static str>) -> Self {
        let names: Vec<_> = names.into_iter().collect();
        StepDefaults {
            settings: vec![StepSettings::default(); names.len()],
            names,
            unknown: Vec::new(),
            scratch: StepSettings::default(),
        }
    }

    /// The settings of step `name`. A name the handler does not have is
    /// remembered, and creating the task fails naming it and the steps
    /// there are (what is set on it goes nowhere).
    pub fn step(&mut self, name: &str) -> &mut StepSettings {
        match self.names.iter().position(|n| *n == name) {
            Some(i) => &mut self.settings[i],
            None => {
                self.unknown.push(name.to_owned());
                self.scratch = StepSettings::default();
                &mut self.scratch
            }
        }
    }

    /// Every step with its settings, in declaration order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut StepSettings)> {
        self.names.iter().copied().zip(self.settings.iter_mut())
    }

    /// The settings of step `index` (declaration order).
    pub(crate) fn at(&self, index: usize) -> StepSettings {
        self.settings.get(index).copied().unwrap_or_default()
    }

    /// What was set for `name`, if it is a step.
    pub fn get(&self, name: &str) -> Option<&StepSettings> {
        let i = self.names.iter().position(|n| *n == name)?;
        Some(&self.settings[i])
    }

    /// The names asked for that are not steps of the handler.
    pub fn unknown(&self) -> &[String] {
        &self.unknown
    }
}
