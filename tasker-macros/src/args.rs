//! Stage one, part one: the attribute arguments, `#[task_handler(...)]` and
//! `#[step(...)]`, as `key = value` pairs whose keys are
//! `syn::custom_keyword!`s.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitBool, LitInt, LitStr, Meta, Token, Type};

use crate::parse::Errors;

/// Arguments of `#[task_handler(...)]`.
#[derive(Default)]
pub(crate) struct HandlerArgs {
    pub(crate) namespace: Option<LitStr>,
    pub(crate) name: Option<LitStr>,
    pub(crate) version: Option<LitStr>,
    pub(crate) context: Option<Type>,
    /// `config = Type`: what the handler reads its `handler_config` into.
    pub(crate) config: Option<Type>,
    /// `step_defaults = path`: the function deriving per-task step settings
    /// from the context.
    pub(crate) step_defaults: Option<syn::ExprPath>,
    /// `validate = path`: the function checking the context's values.
    pub(crate) validate: Option<syn::ExprPath>,
    /// `dependent_systems = ["stripe", ...]`: the outside systems the
    /// handler relies on.
    pub(crate) dependent_systems: Vec<LitStr>,
    /// `metadata = { owner = "payments", ... }`: the handler's custom
    /// metadata.
    pub(crate) metadata: Vec<(Ident, LitStr)>,
    /// `config_file = "path"`: the application's configuration file, whose
    /// entries for this handler are checked at compile time.
    pub(crate) config_file: Option<LitStr>,
    /// `crate = "path"`: where the `tasker` crate is, for crates that
    /// re-export it under another name.
    pub(crate) krate: Option<syn::Path>,
}

/// The keywords of the attributes.
mod kw {
    syn::custom_keyword!(namespace);
    syn::custom_keyword!(name);
    syn::custom_keyword!(version);
    syn::custom_keyword!(context);
    syn::custom_keyword!(depends_on);
    syn::custom_keyword!(branches);
    syn::custom_keyword!(for_each);
    syn::custom_keyword!(concurrency);
    syn::custom_keyword!(on_item_error);
    syn::custom_keyword!(retry_limit);
    syn::custom_keyword!(retryable);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(events);
    syn::custom_keyword!(transactional);
    syn::custom_keyword!(config);
    syn::custom_keyword!(step_defaults);
    syn::custom_keyword!(config_file);
    syn::custom_keyword!(dependent_systems);
    syn::custom_keyword!(metadata);
    syn::custom_keyword!(validate);
    syn::custom_keyword!(limit);
}

/// The keys an attribute takes, each parsed from its keyword, so a new key
/// is a new variant that every `match` on the keys must handle.
trait Key: Copy + PartialEq {
    /// Every key as written, for messages.
    const ALL: &'static [&'static str];

    /// The key at the start of `input`, if there is one.
    fn parse(input: ParseStream<'_>) -> Option<syn::Result<(Self, Span)>>;

    /// The key as written.
    fn text(self) -> &'static str;

    /// Whether the key may stand alone, meaning `key = true`.
    fn is_flag(self) -> bool;
}

macro_rules! keys {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $kw:path, $text:literal;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        enum $name {
            $($variant,)*
        }

        impl Key for $name {
            const ALL: &'static [&'static str] = &[$($text),*];

            fn parse(input: ParseStream<'_>) -> Option<syn::Result<(Self, Span)>> {
                $(
                    if input.peek($kw) {
                        return Some(input.parse::<$kw>().map(|k| ($name::$variant, k.span())));
                    }
                )*
                None
            }

            fn text(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            fn is_flag(self) -> bool {
                self.flag()
            }
        }
    };
}

keys! {
    /// Keys of `#[task_handler(...)]`.
    HandlerKey {
        Namespace = kw::namespace, "namespace";
        Name = kw::name, "name";
        Version = kw::version, "version";
        Context = kw::context, "context";
        Config = kw::config, "config";
        StepDefaults = kw::step_defaults, "step_defaults";
        Validate = kw::validate, "validate";
        ConfigFile = kw::config_file, "config_file";
        DependentSystems = kw::dependent_systems, "dependent_systems";
        Metadata = kw::metadata, "metadata";
        Crate = syn::token::Crate, "crate";
    }
}

impl HandlerKey {
    fn flag(self) -> bool {
        false
    }
}

keys! {
    /// Keys of `#[step(...)]`.
    StepKey {
        DependsOn = kw::depends_on, "depends_on";
        RetryLimit = kw::retry_limit, "retry_limit";
        Retryable = kw::retryable, "retryable";
        Timeout = kw::timeout, "timeout";
        Events = kw::events, "events";
        Transactional = kw::transactional, "transactional";
        Config = kw::config, "config";
        DependentSystems = kw::dependent_systems, "dependent_systems";
        Limit = kw::limit, "limit";
        Branches = kw::branches, "branches";
        ForEach = kw::for_each, "for_each";
        Concurrency = kw::concurrency, "concurrency";
        OnItemError = kw::on_item_error, "on_item_error";
    }
}

impl StepKey {
    fn flag(self) -> bool {
        self == StepKey::Transactional
    }
}

/// Arguments of `#[step(...)]`.
#[derive(Default)]
pub(crate) struct StepArgs {
    pub(crate) depends_on: Vec<Ident>,
    pub(crate) retry_limit: Option<u32>,
    pub(crate) retryable: Option<bool>,
    pub(crate) timeout: Option<Duration>,
    /// Custom events the step may publish.
    pub(crate) events: Vec<LitStr>,
    /// The step's writes share a transaction with its completion.
    pub(crate) transactional: bool,
    /// `config = Type`: what the step reads its `handler_config` into.
    pub(crate) config: Option<Type>,
    /// `dependent_systems = ["stripe", ...]`.
    pub(crate) dependent_systems: Vec<LitStr>,
    /// `limit = "name"`: a limit of `engine.limits` the step runs under.
    pub(crate) limit: Option<LitStr>,
    /// `branches = [a, b]`: a decision step, choosing which of these run.
    pub(crate) branches: Vec<Ident>,
    /// `for_each = source`: the step runs once per item of `source`'s list.
    pub(crate) for_each: Option<Ident>,
    /// `concurrency = n`: at most this many of a fan-out's items at once.
    pub(crate) concurrency: Option<LitInt>,
    /// `on_item_error = "collect"`: a failed item is the join's `Err`
    /// entry instead of the task's failure (the literal, and whether it
    /// says `collect`).
    pub(crate) on_item_error: Option<(LitStr, bool)>,
}

/// Parses `key = value, ...` pairs, dispatching each key to `on_key`.
/// Unknown and repeated keys are reported and parsing continues.
fn parse_pairs<K: Key>(
    tokens: TokenStream,
    attribute: &str,
    errors: &mut Errors,
    mut on_key: impl FnMut(K, ParseStream<'_>, &mut Errors) -> syn::Result<()>,
) {
    let mut seen: Vec<K> = Vec::new();
    let parser = |input: ParseStream<'_>| -> syn::Result<()> {
        while !input.is_empty() {
            let key = match K::parse(input) {
                Some(key) => Some(key?),
                None => None,
            };
            let (key_text, span) = match key {
                Some((key, span)) => (key.text().to_owned(), span),
                None => {
                    let unknown = input.call(Ident::parse_any)?;
                    (unknown.to_string(), unknown.span())
                }
            };
            let flag = matches!(key, Some((k, _)) if k.is_flag());
            if !input.peek(Token![=]) && !flag {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "expected `=` after `{key_text}`: `#[{attribute}]` takes `key = value` \
                         pairs with keys {}",
                        list(K::ALL)
                    ),
                ));
            }
            if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
            }
            match key {
                None => {
                    let hint = suggest(&key_text, K::ALL.iter().copied())
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    errors.at_span(
                        span,
                        format!(
                            "unknown key `{key_text}` in `#[{attribute}]`; expected one of {}{hint}",
                            list(K::ALL)
                        ),
                    );
                    skip_value(input)?;
                }
                Some((key, _)) if seen.contains(&key) => {
                    errors.at_span(
                        span,
                        format!("`{key_text}` is given twice in `#[{attribute}]`; keep one"),
                    );
                    skip_value(input)?;
                }
                Some((key, _)) => {
                    seen.push(key);
                    on_key(key, input, errors)?;
                }
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
    parse_pairs(tokens, "task_handler", errors, |key, input, _| {
        match key {
            HandlerKey::Namespace => args.namespace = Some(string_value(key, input)?),
            HandlerKey::Name => args.name = Some(string_value(key, input)?),
            HandlerKey::Version => args.version = Some(string_value(key, input)?),
            HandlerKey::Context => args.context = Some(input.parse()?),
            HandlerKey::Config => args.config = Some(config_type(input)?),
            HandlerKey::ConfigFile => args.config_file = Some(string_value(key, input)?),
            HandlerKey::DependentSystems => args.dependent_systems = system_list(input)?,
            HandlerKey::Metadata => args.metadata = metadata_pairs(input)?,
            HandlerKey::StepDefaults => {
                args.step_defaults = Some(function_path(key, input, "&mut tasker::StepDefaults")?)
            }
            HandlerKey::Validate => {
                args.validate = Some(function_path(key, input, "&mut tasker::Violations")?)
            }
            HandlerKey::Crate => {
                let lit = string_value(key, input)?;
                let path = lit.parse_with(syn::Path::parse_mod_style).map_err(|_| {
                    syn::Error::new(
                        lit.span(),
                        format!(
                            "`crate` takes the path of the tasker crate as a string, e.g. \
                             `crate = \"::my_platform::tasker\"`, not {:?}",
                            lit.value()
                        ),
                    )
                })?;
                args.krate = Some(path);
            }
        }
        Ok(())
    });
    args
}

fn string_value(key: impl Key, input: ParseStream<'_>) -> syn::Result<LitStr> {
    let key = key.text();
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
    parse_pairs(tokens, "step", errors, |key, input, errors| {
        match key {
            StepKey::DependsOn => args.depends_on = step_list("depends_on", input)?,
            StepKey::Branches => args.branches = step_list("branches", input)?,
            StepKey::ForEach => {
                let mut steps = step_list("for_each", input)?;
                if steps.len() == 1 {
                    args.for_each = steps.pop();
                } else {
                    return Err(input.error(
                        "`for_each` takes one step name: the step whose output list this step \
                         runs over, e.g. `for_each = lines`",
                    ));
                }
            }
            StepKey::Concurrency => {
                let lit: LitInt = input.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "`concurrency` takes a whole number, e.g. `concurrency = 10`",
                    )
                })?;
                match lit.base10_parse::<u32>() {
                    Ok(n) if n >= 1 => args.concurrency = Some(lit),
                    _ => errors.at(
                        &lit,
                        "`concurrency` must be a whole number from 1 to 4294967295: the items \
                         of the fan-out that may run at once",
                    ),
                }
            }
            StepKey::OnItemError => {
                let lit = string_value(key, input)?;
                match lit.value().as_str() {
                    "fail" => args.on_item_error = Some((lit, false)),
                    "collect" => args.on_item_error = Some((lit, true)),
                    other => {
                        let hint = suggest(other, ["fail", "collect"])
                            .map(|s| format!("did you mean \"{s}\"? "))
                            .unwrap_or_default();
                        errors.at(
                            &lit,
                            format!(
                                "unknown `on_item_error` {other:?}: {hint}write \"fail\" (an item \
                                 that fails for good fails the task; the default) or \"collect\" \
                                 (the steps after the fan-out receive `Vec<Result<T, StepError>>`)"
                            ),
                        );
                    }
                }
            }
            StepKey::Events => args.events = event_list(input)?,
            StepKey::Config => args.config = Some(config_type(input)?),
            StepKey::DependentSystems => args.dependent_systems = system_list(input)?,
            StepKey::Limit => {
                let lit = string_value(key, input)?;
                let name = lit.value();
                let valid = (1..=63).contains(&name.len())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
                if valid {
                    args.limit = Some(lit);
                } else {
                    errors.at(
                        &lit,
                        format!(
                            "`{name}` is not a valid limit name: 1 to 63 letters, digits, `_` and \
                             `-`, naming a limit of `engine.limits`"
                        ),
                    );
                }
            }
            StepKey::RetryLimit => {
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
            StepKey::Transactional => {
                // `transactional` alone, or `transactional = true|false`.
                if input.peek(LitBool) {
                    args.transactional = input.parse::<LitBool>()?.value;
                } else if !(input.is_empty() || input.peek(Token![,])) {
                    let found: proc_macro2::TokenTree = input.parse()?;
                    return Err(syn::Error::new_spanned(
                        found,
                        "`transactional` stands alone or takes `true` or `false`",
                    ));
                } else {
                    args.transactional = true;
                }
            }
            StepKey::Retryable => {
                let lit: LitBool = input.parse().map_err(|e| {
                    syn::Error::new(e.span(), "`retryable` takes `true` or `false`")
                })?;
                args.retryable = Some(lit.value);
            }
            StepKey::Timeout => {
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

/// `config = Type` (a type, not a string).
fn config_type(input: ParseStream<'_>) -> syn::Result<Type> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return Err(syn::Error::new_spanned(
            lit,
            "`config` takes the type the configuration is read into, e.g. `config = PaymentsConfig`, not a string",
        ));
    }
    input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "`config` takes a type, e.g. `config = PaymentsConfig`",
        )
    })
}

/// `events = ["payment.processed", ...]`.
fn event_list(input: ParseStream<'_>) -> syn::Result<Vec<LitStr>> {
    string_list(
        input,
        "`events` takes a list of event names: `events = [\"payment.processed\"]`",
    )
}

/// `key = path::to::function` (not a string).
fn function_path(
    key: HandlerKey,
    input: ParseStream<'_>,
    second: &str,
) -> syn::Result<syn::ExprPath> {
    let key = key.text();
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "`{key}` takes the path of a function, e.g. `{key} = Self::{key}`, not a string"
            ),
        ));
    }
    input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "`{key}` takes the path of a function `fn(&Context, {second})`, e.g. \
                 `{key} = Self::{key}`"
            ),
        )
    })
}

/// `dependent_systems = ["stripe", "warehouse"]`, each checked.
fn system_list(input: ParseStream<'_>) -> syn::Result<Vec<LitStr>> {
    let systems = string_list(
        input,
        "`dependent_systems` takes a list of names: `dependent_systems = [\"stripe\"]`",
    )?;
    for (i, lit) in systems.iter().enumerate() {
        let name = lit.value();
        let valid = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(syn::Error::new_spanned(
                lit,
                format!(
                    "invalid system name {name:?}: 1 to 64 ASCII letters, digits, `_`, `-` or `.`"
                ),
            ));
        }
        if systems[..i].iter().any(|s| s.value() == name) {
            return Err(syn::Error::new_spanned(
                lit,
                format!("{name:?} is listed twice"),
            ));
        }
    }
    Ok(systems)
}

/// `metadata = { owner = "payments", runbook = "https://..." }`.
fn metadata_pairs(input: ParseStream<'_>) -> syn::Result<Vec<(Ident, LitStr)>> {
    let expected =
        "`metadata` takes `{ key = \"value\", ... }`, e.g. `metadata = { owner = \"payments\" }`";
    if !input.peek(syn::token::Brace) {
        return Err(input.error(expected));
    }
    let content;
    syn::braced!(content in input);
    let mut pairs: Vec<(Ident, LitStr)> = Vec::new();
    while !content.is_empty() {
        let key = content
            .call(Ident::parse_any)
            .map_err(|e| syn::Error::new(e.span(), expected))?;
        content
            .parse::<Token![=]>()
            .map_err(|e| syn::Error::new(e.span(), expected))?;
        let value: LitStr = content
            .parse()
            .map_err(|e| syn::Error::new(e.span(), expected))?;
        if pairs.iter().any(|(k, _)| *k == key) {
            return Err(syn::Error::new_spanned(
                &key,
                format!("metadata key `{key}` is given twice"),
            ));
        }
        if value.value().len() > 1024 {
            return Err(syn::Error::new_spanned(
                &value,
                "a metadata value is at most 1024 bytes",
            ));
        }
        pairs.push((key, value));
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok(pairs)
}

/// `[ "a", "b" ]`, with `expected` as the error of anything else.
fn string_list(input: ParseStream<'_>, expected: &str) -> syn::Result<Vec<LitStr>> {
    if !input.peek(syn::token::Bracket) {
        return Err(input.error(expected));
    }
    let content;
    syn::bracketed!(content in input);
    let mut items = Vec::new();
    while !content.is_empty() {
        items.push(
            content
                .parse::<LitStr>()
                .map_err(|e| syn::Error::new(e.span(), expected))?,
        );
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok(items)
}

/// `key = a` or `key = [a, b]`: step names (`depends_on`, `branches`).
fn step_list(key: &str, input: ParseStream<'_>) -> syn::Result<Vec<Ident>> {
    let not_a_string = |lit: LitStr| {
        syn::Error::new_spanned(
            &lit,
            format!(
                "`{key}` takes step names, not strings: write `{key} = {}`",
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
        let mut steps = Vec::new();
        while !content.is_empty() {
            if content.peek(LitStr) {
                return Err(not_a_string(content.parse()?));
            }
            steps.push(content.call(Ident::parse_any)?);
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        return Ok(steps);
    }
    if input.peek(Ident::peek_any) {
        return Ok(vec![input.call(Ident::parse_any)?]);
    }
    Err(input.error(format!(
        "`{key}` takes a step name or a list of them: `{key} = a` or `{key} = [a, b]`"
    )))
}
