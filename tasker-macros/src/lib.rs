//! Procedural macros for [tasker](https://docs.rs/tasker).
//!
//! Do not depend on this crate directly: use the macros through `tasker`
//! (`use tasker::prelude::*;`), which re-exports them and provides every item
//! the generated code refers to.
//!
//! The macros work in three stages, each in its own module:
//! `parse` reads the attribute arguments and the `impl` block,
//! `validate` checks the step graph and collects every error, and
//! `expand` generates the registration and dispatch code.

mod args;
mod config_file;
mod expand;
mod parse;
#[cfg(test)]
mod tests;
mod validate;

use proc_macro::TokenStream;

/// Turns an inherent `impl` block into a registered, versioned task handler.
///
#[doc = include_str!("../../docs/macros.md")]
#[proc_macro_attribute]
pub fn task_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    // Where the attribute is written: `config_file` falls back to a path
    // relative to it.
    let source = proc_macro::Span::call_site().local_file();
    expand::task_handler(args.into(), item.into(), source).into()
}

/// Marks an `async fn` of a `#[task_handler]` block as a workflow step.
///
/// The attribute is read by `#[task_handler]`; used anywhere else it is an
/// error.
#[proc_macro_attribute]
pub fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::stray_step(args.into(), item.into()).into()
}
