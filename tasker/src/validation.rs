//! Checks of a task's context beyond its type: the guide's `schema`, as
//! code. A handler names a function with `#[task_handler(validate = f)]`;
//! it receives the typed context and records every value that is out of
//! bounds, with its field path. A task whose context has any is refused
//! before anything is written ([`Error::InvalidContext`](crate::Error)).

use std::fmt;

/// The problems a `validate` function found in one context, each at its
/// field path.
///
/// ```
/// use tasker::prelude::*;
/// use tasker::Violations;
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// pub struct Order { pub items: Vec<Item>, pub email: String }
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// pub struct Item { pub sku: String, pub quantity: u32 }
///
/// pub struct Checkout;
///
/// #[task_handler(namespace = "docs_validate", context = Order, validate = Self::check)]
/// impl Checkout {
///     #[step]
///     async fn charge(ctx: &StepContext<Order>) -> StepResult<()> { Ok(()) }
///
///     fn check(order: &Order, problems: &mut Violations) {
///         if order.items.is_empty() {
///             problems.at("items", "must hold at least one item");
///         }
///         for (i, item) in order.items.iter().enumerate() {
///             if item.quantity == 0 {
///                 problems.at(format!("items[{i}].quantity"), "must be at least 1");
///             }
///         }
///         if !order.email.contains('@') {
///             problems.at("email", "is not an email address");
///         }
///     }
/// }
///
/// let bad = serde_json::json!({"items": [{"sku": "A", "quantity": 0}], "email": "nobody"});
/// let error = Checkout::handler().validate_context(&bad).unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     "the task context is invalid: `items[0].quantity` must be at least 1; `email` is not an email address"
/// );
/// let good = serde_json::json!({"items": [{"sku": "A", "quantity": 2}], "email": "a@b.example"});
/// assert!(Checkout::handler().validate_context(&good).is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations {
    found: Vec<Violation>,
}

/// One value out of bounds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// Where, from the context's root: `items[0].quantity`.
    pub path: String,
    /// What is wrong: `must be at least 1`.
    pub problem: String,
}

/// At most this many violations are kept (and reported) per context.
pub const MAX_VIOLATIONS: usize = 100;

impl Violations {
    /// Records that the value at `path` is wrong as `problem` says.
    pub fn at(&mut self, path: impl Into<String>, problem: impl Into<String>) -> &mut Self {
        if self.found.len() < MAX_VIOLATIONS {
            self.found.push(Violation {
                path: path.into(),
                problem: problem.into(),
            });
        }
        self
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// What was recorded, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Violation> {
        self.found.iter()
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.found.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "`{}` {}", v.path, v.problem)?;
        }
        Ok(())
    }
}
