//! The handler's hooks run when a task is created, before anything is
//! written: `step_defaults` (per-task step settings) and `validate` (the
//! context's values). Both are user code: a panic is caught and reported
//! as [`Error::HandlerHook`](crate::Error::HandlerHook).

use serde_json::Value;

use crate::handler::Handler;

impl Handler {
    /// The per-task step settings the handler's `step_defaults` function
    /// (`#[task_handler(step_defaults = f)]`) derives from `context`; all
    /// unset when it has none. The engine and the test runner apply them
    /// when a task is created; call this to test the function.
    ///
    /// A context that does not fit the handler's type is a
    /// [`Error::Context`](crate::Error::Context); a function that panics or
    /// names a step the handler does not have is an
    /// [`Error::HandlerHook`](crate::Error::HandlerHook).
    pub fn step_defaults(&self, context: &Value) -> crate::Result<crate::StepDefaults> {
        let mut defaults = crate::StepDefaults::new(self.steps().iter().map(|s| s.name()));
        let Some(hook) = self.definition().step_defaults else {
            return Ok(defaults);
        };
        let failed = |problem: String| crate::Error::HandlerHook {
            handler: self.key(),
            hook: "step_defaults",
            problem,
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            hook(context, &mut defaults)
        })) {
            Ok(result) => result?,
            Err(panic) => {
                return Err(failed(format!(
                    "panicked: {}",
                    crate::error::panic_message(&*panic)
                )))
            }
        }
        if let Some(name) = defaults.unknown().first() {
            let steps: Vec<_> = self
                .steps()
                .iter()
                .map(|s| format!("`{}`", s.name()))
                .collect();
            return Err(failed(format!(
                "set the step `{name}`, which the handler does not have; its steps are {}",
                steps.join(", ")
            )));
        }
        Ok(defaults)
    }

    /// Checks a task context: that it fits the handler's context type
    /// ([`Error::Context`](crate::Error::Context), naming the field), then
    /// the handler's `validate` function
    /// (`#[task_handler(validate = f)]`), whose violations refuse it as
    /// [`Error::InvalidContext`](crate::Error::InvalidContext). The engine
    /// and the test runner call this before a task is created.
    pub fn validate_context(&self, context: &Value) -> crate::Result<()> {
        self.check_context(context)?;
        let Some(validate) = self.definition().validate else {
            return Ok(());
        };
        let mut violations = crate::Violations::default();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            validate(context, &mut violations)
        })) {
            Ok(result) => result?,
            Err(panic) => {
                return Err(crate::Error::HandlerHook {
                    handler: self.key(),
                    hook: "validate",
                    problem: format!("panicked: {}", crate::error::panic_message(&*panic)),
                })
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(crate::Error::InvalidContext {
                handler: self.key(),
                violations,
            })
        }
    }
}
