//! The runner's attempts of one step: retried as the engine would retry
//! them, once per item for a fan-out step (`#[step(for_each = source)]`).

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{Attempt, StepRun};
use crate::checkpoint::{Checkpoints, MemoryCheckpoint};
use crate::context::{EventPort, StepEvents};
use crate::engine::run_attempt;
use crate::events::Event;
use crate::handler::Handler;
use crate::ids::TaskId;
use crate::input::StepInput;
use crate::state::StepState;
use crate::step::{HandlerConfigs, Resources, StepConfig};
use crate::sync::lock;

/// What every attempt of one step shares.
pub(super) struct Attempts<'a> {
    pub(super) handler: &'a Handler,
    pub(super) index: usize,
    pub(super) task_id: TaskId,
    pub(super) context: &'a Arc<Value>,
    pub(super) dependencies: &'a [(String, Value)],
    pub(super) config: StepConfig,
    pub(super) resources: &'a Resources,
    pub(super) events: &'a Arc<Mutex<Vec<Event>>>,
    pub(super) configs: &'a HandlerConfigs,
}

/// Where the run's record of attempts and annotations goes.
pub(super) struct Log<'a> {
    pub(super) attempts: &'a mut Vec<Attempt>,
    pub(super) annotations: &'a mut Vec<(&'static str, crate::Annotation)>,
}

impl Attempts<'_> {
    /// Runs attempts until one succeeds (its output, and for a decision
    /// the branches it did not choose) or none is left (`None`; the errors
    /// are in `run.errors`). One checkpoint is kept across the attempts,
    /// so a retried step resumes as it would with the engine.
    pub(super) async fn run(
        &self,
        item: Option<Value>,
        run: &mut StepRun,
        log: &mut Log<'_>,
    ) -> Option<(Value, Vec<&'static str>)> {
        let definition = &self.handler.steps()[self.index];
        let checkpoints = Checkpoints::new(MemoryCheckpoint::default());
        // An item receives its element, not the whole list it came from.
        let dependencies: Vec<(String, Value)> = match (item.is_some(), definition.for_each()) {
            (true, Some(source)) => self
                .dependencies
                .iter()
                .filter(|(dep, _)| dep != source)
                .cloned()
                .collect(),
            _ => self.dependencies.to_vec(),
        };
        // Attempts count per item; the step's total is the sum.
        let mut attempt = 0;
        loop {
            attempt += 1;
            run.attempts += 1;
            let recorded = crate::annotation::Annotations::default();
            let input = StepInput {
                annotations: recorded.clone(),
                task_id: self.task_id,
                step_name: definition.name(),
                attempt,
                context: Arc::clone(self.context),
                dependencies: dependencies.clone(),
                config: self.config,
                resources: self.resources.clone(),
                events: Some(StepEvents::new(
                    definition.name(),
                    definition.events(),
                    LogPort {
                        log: Arc::clone(self.events),
                        base: self
                            .handler
                            .event("custom")
                            .with_task(self.task_id)
                            .with_step_name(definition.name())
                            .with_attempt(attempt),
                    },
                )),
                transaction: None,
                configs: self.configs.clone(),
                checkpoints: checkpoints.clone(),
                item: item.clone(),
            };
            let outcome = run_attempt(self.handler, self.index, input, self.config.timeout)
                .await
                .and_then(|output| {
                    let skip = crate::decision::unchosen(
                        definition.name(),
                        definition.branches(),
                        &output,
                    )?;
                    Ok((output, skip))
                });
            tracing::debug!(task = %self.task_id, step = definition.name(), attempt, ok = outcome.is_ok(), "step attempt");
            match outcome {
                Ok(done) => {
                    log.attempts.push(Attempt {
                        step: definition.name(),
                        attempt,
                        error: None,
                    });
                    let name = definition.name();
                    log.annotations
                        .extend(recorded.take().into_iter().map(|a| (name, a)));
                    return Some(done);
                }
                Err(error) => {
                    log.attempts.push(Attempt {
                        step: definition.name(),
                        attempt,
                        error: Some(error.clone()),
                    });
                    let retry = error.retries_after(attempt, self.config.max_attempts());
                    run.errors.push(error);
                    if !retry {
                        return None;
                    }
                }
            }
        }
    }

    /// Runs a fan-out step once per item of `source`'s output, in item
    /// order, each item with attempts of its own; it completes with the
    /// list of their outputs, or fails when an item has no attempts left
    /// (the items after it do not run) or `source` returned no list. With
    /// `on_item_error = "collect"`, an item without attempts left is an
    /// `Err` entry instead, and every entry is a `Result` in serde's form.
    pub(super) async fn fan_out(&self, source: &str, run: &mut StepRun, log: &mut Log<'_>) {
        use crate::fan_out::{collected_err, collected_ok, OnItemError};
        let collect = self.handler.steps()[self.index].on_item_error() == OnItemError::Collect;
        let output = self
            .dependencies
            .iter()
            .find(|(dep, _)| dep == source)
            .map(|(_, v)| v.clone());
        let items = match crate::fan_out::items(run.name, source, output) {
            Ok(items) => items,
            Err(error) => {
                run.errors.push(error);
                run.state = StepState::Error;
                return;
            }
        };
        let mut outputs = Vec::with_capacity(items.len());
        for item in items {
            match self.run(Some(item), run, log).await {
                Some((output, _)) if collect => outputs.push(collected_ok(output)),
                Some((output, _)) => outputs.push(output),
                None if collect => {
                    let error = run.errors.last().expect("a failed item recorded its error");
                    outputs.push(collected_err(error));
                }
                None => {
                    run.state = StepState::Error;
                    return;
                }
            }
        }
        run.state = StepState::Complete;
        run.output = Some(Value::Array(outputs));
    }
}

/// A step's custom events, into the run's log.
struct LogPort {
    log: Arc<Mutex<Vec<Event>>>,
    /// The task, step and handler fields of every event.
    base: Event,
}

impl EventPort for LogPort {
    fn publish(&self, name: &'static str, data: Value) {
        let event = self.base.custom(name, data);
        lock(&self.log).push(event);
    }
}
