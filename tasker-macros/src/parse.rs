//! Stage one, part two: the annotated `impl` block and each step's
//! signature (the attribute arguments are in `args`).
//!
//! Parsing never stops at the first problem: every error is pushed onto an
//! [`Errors`] collector so one compile reports all of them, each pointing at
//! the user's tokens.

use std::fmt::Display;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{Attribute, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Meta, Pat, ReturnType, Type};

use crate::args::StepArgs;

/// Collects every error of one macro invocation, combined into one
/// `syn::Error` at the end (as serde_derive's `Ctxt` does).
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(existing) => existing.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn at<T: ToTokens, D: Display>(&mut self, tokens: T, message: D) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn at_span<D: Display>(&mut self, span: Span, message: D) {
        self.push(syn::Error::new(span, message));
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The annotated `impl` block, with `#[step]` attributes taken off.
pub(crate) struct Handler {
    pub(crate) item: ItemImpl,
    pub(crate) self_ident: Option<Ident>,
    pub(crate) description: String,
    pub(crate) steps: Vec<Step>,
}

/// One `#[step]` function.
pub(crate) struct Step {
    pub(crate) ident: Ident,
    pub(crate) name: String,
    pub(crate) args: StepArgs,
    pub(crate) description: String,
    /// The `&StepContext<C>` parameter's type, if the step takes one.
    pub(crate) context_param: Option<Type>,
    /// The parameters that read dependency outputs, in order.
    pub(crate) inputs: Vec<Input>,
    /// The declared return type (`StepResult<T>`).
    pub(crate) output: Option<Type>,
}

/// A parameter named after a dependency, receiving its output.
pub(crate) struct Input {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
}
fn is_step_attr(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "step")
}

/// Joins `///` doc comment lines into one description.
pub(crate) fn doc_text(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let Meta::NameValue(nv) = &attr.meta {
            if let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
            {
                let value = s.value();
                lines.push(
                    value
                        .strip_prefix(' ')
                        .unwrap_or(&value)
                        .trim_end()
                        .to_owned(),
                );
            }
        }
    }
    lines.join("\n").trim().to_owned()
}

/// Parses the `impl` block. Returns `Err` only when the item is not an
/// `impl` block at all; every other problem goes to `errors`.
pub(crate) fn handler(item: TokenStream, errors: &mut Errors) -> syn::Result<Handler> {
    let mut item: ItemImpl = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            "`#[task_handler]` goes on an inherent impl block: `impl MyHandler { ... }`",
        )
    })?;
    if let Some((_, path, _)) = &item.trait_ {
        errors.at(
            path,
            "`#[task_handler]` goes on an inherent impl block (`impl MyHandler { ... }`), not on a trait impl",
        );
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.at(
            &item.generics,
            "a task handler cannot be generic: every registered handler is one concrete type",
        );
    }
    let self_ident = match &*item.self_ty {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .and_then(|s| s.arguments.is_empty().then(|| s.ident.clone())),
        _ => None,
    };
    if self_ident.is_none() {
        errors.at(
            &item.self_ty,
            "a task handler must be a named type without generic arguments, e.g. `impl ProcessOrder { ... }`",
        );
    }
    let description = doc_text(&item.attrs);

    let mut steps = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(function) = impl_item else {
            continue;
        };
        let mut step_attrs = Vec::new();
        function.attrs.retain(|attr| {
            if is_step_attr(attr) {
                step_attrs.push(attr.clone());
                false
            } else {
                true
            }
        });
        let Some(attr) = step_attrs.first() else {
            continue;
        };
        for extra in &step_attrs[1..] {
            errors.at(extra, "`#[step]` is given twice on this function; keep one");
        }
        let args = crate::args::step_args(attr, errors);
        steps.push(step(function, args, errors));
    }
    Ok(Handler {
        item,
        self_ident,
        description,
        steps,
    })
}

fn step(function: &ImplItemFn, args: StepArgs, errors: &mut Errors) -> Step {
    let sig = &function.sig;
    let ident = sig.ident.clone();
    let name = ident.unraw().to_string();
    if sig.asyncness.is_none() {
        errors.at(sig.fn_token, format!("step `{name}` must be an `async fn`"));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.at(
            &sig.generics,
            format!("step `{name}` cannot be generic: its inputs and output are stored as data"),
        );
    }
    let mut context_param = None;
    let mut inputs = Vec::new();
    for (position, arg) in sig.inputs.iter().enumerate() {
        let typed = match arg {
            FnArg::Receiver(receiver) => {
                errors.at(
                    receiver,
                    format!(
                        "step `{name}` cannot take `self`: steps are associated functions; \
                         reach shared resources through `ctx.resource::<T>()`"
                    ),
                );
                continue;
            }
            FnArg::Typed(typed) => typed,
        };
        if is_step_context(&typed.ty) {
            if context_param.is_some() {
                errors.at(
                    &typed.ty,
                    format!("step `{name}` takes the step context twice"),
                );
            } else if position != 0 {
                errors.at(
                    &typed.ty,
                    format!("the step context must be the first parameter of step `{name}`"),
                );
            }
            context_param = Some((*typed.ty).clone());
            continue;
        }
        match &*typed.pat {
            Pat::Ident(pat) if pat.subpat.is_none() => inputs.push(Input {
                ident: pat.ident.clone(),
                ty: (*typed.ty).clone(),
            }),
            other => errors.at(
                other,
                "a step parameter must be a plain name: it is named after the dependency whose \
                 output it receives",
            ),
        }
    }
    let output = match &sig.output {
        ReturnType::Type(_, ty) => Some((**ty).clone()),
        ReturnType::Default => {
            errors.at_span(
                sig.paren_token.span.join(),
                format!("step `{name}` must return `StepResult<T>`, e.g. `-> StepResult<()>`"),
            );
            None
        }
    };
    Step {
        ident,
        name,
        args,
        description: doc_text(&function.attrs),
        context_param,
        inputs,
        output,
    }
}

/// `&StepContext<..>` (with any path prefix) is the context parameter.
fn is_step_context(ty: &Type) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    let Type::Path(path) = &*reference.elem else {
        return false;
    };
    path.path
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "StepContext")
}
