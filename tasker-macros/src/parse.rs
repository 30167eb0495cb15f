//! Stage one: read the attribute arguments and the annotated `impl` block.
//!
//! Parsing never stops at the first problem: every error is pushed onto an
//! [`Errors`] collector so one compile reports all of them, each pointing at
//! the user's tokens.

use std::fmt::Display;
use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{
    Attribute, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, LitBool, LitInt, LitStr, Meta, Pat,
    ReturnType, Token, Type,
};

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

/// Arguments of `#[task_handler(...)]`.
#[derive(Default)]
pub(crate) struct HandlerArgs {
    pub(crate) namespace: Option<LitStr>,
    pub(crate) name: Option<LitStr>,
    pub(crate) version: Option<LitStr>,
    pub(crate) context: Option<Type>,
}

const HANDLER_KEYS: &[&str] = &["namespace", "name", "version", "context"];
const STEP_KEYS: &[&str] = &[
    "depends_on",
    "retry_limit",
    "retryable",
    "timeout",
    "events",
];

/// Arguments of `#[step(...)]`.
#[derive(Default)]
pub(crate) struct StepArgs {
    pub(crate) depends_on: Vec<Ident>,
    pub(crate) retry_limit: Option<u32>,
    pub(crate) retryable: Option<bool>,
    pub(crate) timeout: Option<Duration>,
    /// Custom events the step may publish.
    pub(crate) events: Vec<LitStr>,
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

/// Parses `key = value, ...` pairs, dispatching each key to `on_key`.
/// Unknown and repeated keys are reported and parsing continues.
fn parse_pairs(
    tokens: TokenStream,
    attribute: &str,
    known: &[&str],
    errors: &mut Errors,
    mut on_key: impl FnMut(&Ident, ParseStream<'_>, &mut Errors) -> syn::Result<()>,
) {
    let mut seen: Vec<String> = Vec::new();
    let parser = |input: ParseStream<'_>| -> syn::Result<()> {
        while !input.is_empty() {
            let key = input.call(Ident::parse_any)?;
            let key_text = key.to_string();
            if !input.peek(Token![=]) {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "expected `=` after `{key_text}`: `#[{attribute}]` takes `key = value` \
                         pairs with keys {}",
                        list(known)
                    ),
                ));
            }
            input.parse::<Token![=]>()?;
            if !known.contains(&key_text.as_str()) {
                let hint = suggest(&key_text, known.iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                errors.at(
                    &key,
                    format!(
                        "unknown key `{key_text}` in `#[{attribute}]`; expected one of {}{hint}",
                        list(known)
                    ),
                );
                skip_value(input)?;
            } else if seen.contains(&key_text) {
                errors.at(
                    &key,
                    format!("`{key_text}` is given twice in `#[{attribute}]`; keep one"),
                );
                skip_value(input)?;
            } else {
                seen.push(key_text);
                on_key(&key, input, errors)?;
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(())
    };
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
}

/// Skips the tokens of one value, up to the next top-level comma.
fn skip_value(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

fn list(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The closest candidate within a small edit distance, for "did you mean".
pub(crate) fn suggest<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(wrong, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

pub(crate) fn handler_args(tokens: TokenStream, errors: &mut Errors) -> HandlerArgs {
    let mut args = HandlerArgs::default();
    parse_pairs(
        tokens,
        "task_handler",
        HANDLER_KEYS,
        errors,
        |key, input, _| {
            match key.to_string().as_str() {
                "namespace" => args.namespace = Some(string_value(key, input)?),
                "name" => args.name = Some(string_value(key, input)?),
                "version" => args.version = Some(string_value(key, input)?),
                _ => args.context = Some(input.parse()?),
            }
            Ok(())
        },
    );
    args
}

fn string_value(key: &Ident, input: ParseStream<'_>) -> syn::Result<LitStr> {
    if input.peek(LitStr) {
        input.parse()
    } else {
        let found: proc_macro2::TokenTree = input.parse()?;
        Err(syn::Error::new_spanned(
            found,
            format!("`{key}` takes a string literal, e.g. `{key} = \"...\"`"),
        ))
    }
}

pub(crate) fn step_args(attr: &Attribute, errors: &mut Errors) -> StepArgs {
    let mut args = StepArgs::default();
    let tokens = match &attr.meta {
        Meta::Path(_) => return args,
        Meta::List(list) => list.tokens.clone(),
        Meta::NameValue(nv) => {
            errors.at(
                nv,
                "write `#[step]` or `#[step(key = value, ...)]`, not `#[step = ...]`",
            );
            return args;
        }
    };
    parse_pairs(tokens, "step", STEP_KEYS, errors, |key, input, errors| {
        match key.to_string().as_str() {
            "depends_on" => args.depends_on = dependency_list(input)?,
            "events" => args.events = event_list(input)?,
            "retry_limit" => {
                let lit: LitInt = input.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "`retry_limit` takes a whole number, e.g. `retry_limit = 5`",
                    )
                })?;
                match lit.base10_parse::<u32>() {
                    Ok(n) => args.retry_limit = Some(n),
                    Err(_) => errors.at(
                        &lit,
                        "`retry_limit` must be a whole number from 0 to 4294967295",
                    ),
                }
            }
            "retryable" => {
                let lit: LitBool = input.parse().map_err(|e| {
                    syn::Error::new(e.span(), "`retryable` takes `true` or `false`")
                })?;
                args.retryable = Some(lit.value);
            }
            _ => {
                let lit = string_value(key, input)?;
                match humantime::parse_duration(&lit.value()) {
                    Ok(d) if d.is_zero() => errors.at(&lit, "`timeout` must be longer than zero"),
                    Ok(d) if u64::try_from(d.as_nanos()).is_err() => {
                        errors.at(&lit, "`timeout` is too long; keep it under a few centuries")
                    }
                    Ok(d) => args.timeout = Some(d),
                    Err(e) => errors.at(
                        &lit,
                        format!(
                            "invalid `timeout` {:?}: {e}; write a duration such as \"30s\", \"5m\" or \"1h 30m\"",
                            lit.value()
                        ),
                    ),
                }
            }
        }
        Ok(())
    });
    args
}

/// `events = ["payment.processed", ...]`.
fn event_list(input: ParseStream<'_>) -> syn::Result<Vec<LitStr>> {
    let expected = "`events` takes a list of event names: `events = [\"payment.processed\"]`";
    if !input.peek(syn::token::Bracket) {
        return Err(input.error(expected));
    }
    let content;
    syn::bracketed!(content in input);
    let mut events = Vec::new();
    while !content.is_empty() {
        events.push(
            content
                .parse::<LitStr>()
                .map_err(|e| syn::Error::new(e.span(), expected))?,
        );
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok(events)
}

/// `depends_on = a` or `depends_on = [a, b]`.
fn dependency_list(input: ParseStream<'_>) -> syn::Result<Vec<Ident>> {
    let not_a_string = |lit: LitStr| {
        syn::Error::new_spanned(
            &lit,
            format!(
                "`depends_on` takes step names, not strings: write `depends_on = {}`",
                lit.value()
            ),
        )
    };
    if input.peek(LitStr) {
        return Err(not_a_string(input.parse()?));
    }
    if input.peek(syn::token::Bracket) {
        let content;
        syn::bracketed!(content in input);
        let mut deps = Vec::new();
        while !content.is_empty() {
            if content.peek(LitStr) {
                return Err(not_a_string(content.parse()?));
            }
            deps.push(content.call(Ident::parse_any)?);
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        return Ok(deps);
    }
    if input.peek(Ident::peek_any) {
        return Ok(vec![input.call(Ident::parse_any)?]);
    }
    Err(input.error("`depends_on` takes a step name or a list of them: `depends_on = a` or `depends_on = [a, b]`"))
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
        let args = step_args(attr, errors);
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
