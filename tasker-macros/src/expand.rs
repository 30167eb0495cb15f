//! Stage three: generate the handler's registration and dispatch code.
//!
//! The expansion keeps the user's `impl` block as written (minus the
//! `#[step]` attributes), so steps stay callable as ordinary functions, and
//! adds, inside an anonymous `const _: () = { ... };` block:
//!
//! * one `async fn` per step that decodes the step's inputs and calls it,
//! * a dispatch function from step index to that glue,
//! * the static `HandlerDefinition` with the graph and step settings,
//! * the `inventory` registration and the `TaskHandler` impl.
//!
//! Everything generated names only `::tasker::__private` (or
//! `<crate>::__private` with `crate = "..."`).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::args::{self, HandlerArgs};
use crate::parse::{self, Errors};
use crate::validate::{self, Checked};

pub(crate) fn task_handler(
    args: TokenStream,
    item: TokenStream,
    source: Option<std::path::PathBuf>,
) -> TokenStream {
    let mut errors = Errors::default();
    let args = args::handler_args(args, &mut errors);
    let handler = match parse::handler(item.clone(), &mut errors) {
        Ok(handler) => handler,
        Err(error) => {
            errors.push(error);
            let error = errors.finish().expect_err("an error was pushed");
            let compile_error = error.to_compile_error();
            return quote!(#item #compile_error);
        }
    };
    let checked = validate::handler(&args, &handler, &mut errors);
    let file_check = args.config_file.as_ref().map(|lit| {
        let shape = crate::config_file::Shape {
            namespace: &checked.namespace,
            name: &checked.name,
            version: &checked.version,
            has_config: args.config.is_some(),
            steps: handler
                .steps
                .iter()
                .map(|s| (s.name.as_str(), s.args.config.is_some()))
                .collect(),
        };
        crate::config_file::check(lit, &shape, source.as_deref(), &mut errors)
    });
    match errors.finish() {
        Ok(()) => {
            let generated = generate(&args, &handler, &checked);
            quote!(#generated #file_check)
        }
        Err(error) => {
            // Keep the user's code compiling (IDE support, no cascade of
            // "unresolved" errors), without our attributes, and with a
            // `TaskHandler` impl so `Handler::handler()` and
            // `Handler::request(..)` elsewhere raise no follow-on errors.
            let item = &handler.item;
            let compile_error = error.to_compile_error();
            let fallback = fallback_impl(&args, &handler);
            quote! {
                #[allow(dead_code)]
                #item
                #fallback
                #compile_error
            }
        }
    }
}

pub(crate) fn stray_step(_args: TokenStream, item: TokenStream) -> TokenStream {
    let error = syn::Error::new(
        Span::call_site(),
        "`#[step]` only works on an `async fn` inside an `impl` block marked \
         `#[task_handler]`; add `#[task_handler]` to the enclosing `impl`",
    )
    .to_compile_error();
    quote!(#error #item)
}

/// The path of the generated code's items: `<tasker>::__private`.
fn private_path(args: &HandlerArgs) -> TokenStream {
    match &args.krate {
        Some(path) => quote!(#path::__private),
        None => quote!(::tasker::__private),
    }
}

/// A `TaskHandler` impl for a handler that failed to expand: never called
/// (the crate does not compile), it keeps uses of the type quiet. Only for
/// a plain named type, where the impl itself cannot fail.
fn fallback_impl(args: &HandlerArgs, handler: &parse::Handler) -> TokenStream {
    let item = &handler.item;
    if handler.self_ident.is_none()
        || item.trait_.is_some()
        || !item.generics.params.is_empty()
        || item.generics.where_clause.is_some()
    {
        return TokenStream::new();
    }
    let self_ty = &item.self_ty;
    let private = private_path(args);
    let context_ty = match &args.context {
        Some(ty) => quote!(#ty),
        None => quote!(#private::serde_json::Value),
    };
    quote! {
        impl #private::TaskHandler for #self_ty {
            type Context = #context_ty;

            fn descriptor() -> &'static #private::HandlerDefinition {
                ::core::unreachable!("#[task_handler] reported errors for this type")
            }
        }
    }
}

fn generate(args: &HandlerArgs, handler: &parse::Handler, checked: &Checked) -> TokenStream {
    let item = &handler.item;
    let self_ty = &item.self_ty;
    let private = private_path(args);
    let context_ty = match &args.context {
        Some(ty) => quote!(#ty),
        None => quote!(#private::serde_json::Value),
    };
    let context_span = args
        .context
        .as_ref()
        .map_or(Span::call_site(), |ty| ty.span());
    let context_name = match &args.context {
        Some(ty) => type_text(ty),
        None => "serde_json::Value".to_owned(),
    };
    let Checked {
        namespace,
        name,
        version,
        dependencies,
        may_skip,
        mapped,
    } = checked;
    let handler_description = &handler.description;
    let type_ident = handler
        .self_ident
        .as_ref()
        .expect("validated: the handler type is named")
        .to_string();

    let mut glue = Vec::new();
    let mut arms = Vec::new();
    let mut descriptors = Vec::new();
    for (index, step) in handler.steps.iter().enumerate() {
        let glue_fn = format_ident!("__tasker_step_{}", index);
        let step_ident = &step.ident;
        let step_name = &step.name;
        let output = step
            .output
            .as_ref()
            .expect("validated: steps declare an output");

        let mut decode = Vec::new();
        let mut call_args = Vec::new();
        if let Some(ctx_ty) = &step.context_param {
            // Decode the context as the type the step asks for, and check
            // separately (spanned at the user's parameter) that it is the
            // handler's: one clear error instead of a mismatch at the call.
            let inner = context_inner(ctx_ty)
                .map_or_else(|| quote!(#private::serde_json::Value), |t| quote!(#t));
            decode.push(quote_spanned! {ctx_ty.span()=>
                #private::assert_context_type::<#inner, #context_ty>();
            });
            decode.push(quote! {
                let __context = __input.context::<#inner>()?;
            });
            call_args.push(quote!(&__context));
        }
        for (position, input) in step.inputs.iter().enumerate() {
            let dep_index = handler
                .steps
                .iter()
                .position(|s| s.ident == input.ident)
                .expect("validated: parameters name dependencies");
            let dep_name = &handler.steps[dep_index].name;
            let dep_output = handler.steps[dep_index]
                .output
                .as_ref()
                .expect("validated: steps declare an output");
            let param_ty = &input.ty;
            let var = format_ident!("__input_{}", position);
            // What the dependency passes on: its output, or, when it runs
            // once per item, the list of its outputs in item order.
            let collects = handler.steps[dep_index]
                .args
                .on_item_error
                .as_ref()
                .is_some_and(|(_, collect)| *collect);
            let dep_output = if mapped[dep_index].is_some() && collects {
                // One `Result` per item: its output, or why it failed.
                quote!(::std::vec::Vec<::core::result::Result<
                    <#dep_output as #private::StepReturn>::Output,
                    #private::StepError,
                >>)
            } else if mapped[dep_index].is_some() {
                quote!(::std::vec::Vec<<#dep_output as #private::StepReturn>::Output>)
            } else {
                quote!(<#dep_output as #private::StepReturn>::Output)
            };
            if mapped[index] == Some(dep_index) {
                // A fan-out's item: one element of the source's list.
                decode.push(quote_spanned! {param_ty.span()=>
                    #private::assert_item_type::<#param_ty, #dep_output>();
                });
                decode.push(quote! {
                    let #var = __input.item::<#param_ty>(#dep_name)?;
                });
            } else if may_skip[dep_index] && dependencies[index].len() > 1 {
                // The step also runs when this dependency was skipped: the
                // parameter must be `Option<Output>` (None when skipped).
                decode.push(quote_spanned! {param_ty.span()=>
                    #private::assert_optional_input::<#param_ty, #dep_output>();
                });
                decode.push(quote! {
                    let #var = __input.optional_dependency::<#param_ty>(#dep_name)?;
                });
            } else {
                // The parameter's type must equal the dependency's output
                // type; the check is spanned at the user's parameter type.
                decode.push(quote_spanned! {param_ty.span()=>
                    #private::assert_input_type::<#param_ty, #dep_output>();
                });
                decode.push(quote! {
                    let #var = __input.dependency::<#param_ty>(#dep_name)?;
                });
            }
            call_args.push(quote!(#var));
        }
        // Spanned at the return type, so a step that does not return
        // `StepResult<T>` with a serializable `T` is reported there.
        let encode = quote_spanned!(output.span()=> #private::encode_output::<#output>);
        glue.push(quote! {
            async fn #glue_fn(
                __input: #private::StepInput,
            ) -> ::core::result::Result<#private::serde_json::Value, #private::StepError> {
                #(#decode)*
                #encode(#self_ty::#step_ident(#(#call_args),*).await)
            }
        });
        arms.push(quote! {
            #index => ::std::boxed::Box::pin(#glue_fn(__input)),
        });

        let depends_on = dependencies[index]
            .iter()
            .map(|j| handler.steps[*j].name.as_str());
        let reads = step.inputs.iter().map(|i| i.ident.to_string());
        let description = &step.description;
        let retry_limit = option(step.args.retry_limit.map(|n| quote!(#n)));
        let retryable = option(step.args.retryable.map(|b| quote!(#b)));
        let timeout = option(step.args.timeout.map(|d| {
            let nanos = u64::try_from(d.as_nanos()).expect("validated: timeout fits u64");
            quote!(::core::time::Duration::from_nanos(#nanos))
        }));
        let output_type = output_text(output);
        let events = &step.args.events;
        let transactional = step.args.transactional;
        let config = config_type(&private, step.args.config.as_ref());
        let step_systems = &step.args.dependent_systems;
        let step_limit = option(step.args.limit.as_ref().map(|l| quote!(#l)));
        let branches = step.args.branches.iter().map(|b| b.to_string());
        let for_each = option(step.args.for_each.as_ref().map(|s| {
            let s = s.to_string();
            quote!(#s)
        }));
        let concurrency = option(step.args.concurrency.as_ref().map(|n| quote!(#n)));
        let on_item_error = match &step.args.on_item_error {
            Some((_, true)) => quote!(#private::OnItemError::Collect),
            _ => quote!(#private::OnItemError::Fail),
        };
        let line = quote_spanned!(step.ident.span()=> ::core::line!());
        descriptors.push(quote! {
            #private::StepDefinition {
                name: #step_name,
                description: #description,
                depends_on: &[#(#depends_on),*],
                reads: &[#(#reads),*],
                retry_limit: #retry_limit,
                retryable: #retryable,
                timeout: #timeout,
                output_type: #output_type,
                events: &[#(#events),*],
                transactional: #transactional,
                config: #config,
                dependent_systems: &[#(#step_systems),*],
                limit: #step_limit,
                branches: &[#(#branches),*],
                for_each: #for_each,
                concurrency: #concurrency,
                on_item_error: #on_item_error,
                line: #line,
            },
        });
    }
    let step_count = handler.steps.len();
    let handler_config = config_type(&private, args.config.as_ref());
    let (defaults_glue, defaults) = hook(
        &private,
        self_ty,
        &context_ty,
        args.step_defaults.as_ref(),
        ("__tasker_step_defaults", "StepDefaultsFor", "StepDefaults"),
    );
    let (validate_glue, validate) = hook(
        &private,
        self_ty,
        &context_ty,
        args.validate.as_ref(),
        ("__tasker_validate", "ValidateFor", "Violations"),
    );
    let systems = &args.dependent_systems;
    let meta_keys = args
        .metadata
        .iter()
        .map(|(k, _)| syn::ext::IdentExt::unraw(k).to_string());
    let meta_values = args.metadata.iter().map(|(_, v)| v);
    let context_assoc = quote_spanned!(context_span=> type Context = #context_ty;);

    quote! {
        #item

        const _: () = {
            #(#glue)*
            #defaults_glue
            #validate_glue

            fn __tasker_dispatch(
                __step: usize,
                __input: #private::StepInput,
            ) -> #private::StepFuture {
                match __step {
                    #(#arms)*
                    _ => #private::no_such_step(__step, __input),
                }
            }

            static __TASKER_STEPS: [#private::StepDefinition; #step_count] = [
                #(#descriptors)*
            ];

            static __TASKER_HANDLER: #private::HandlerDefinition = #private::HandlerDefinition {
                namespace: #namespace,
                name: #name,
                version: #version,
                description: #handler_description,
                type_name: ::core::concat!(::core::module_path!(), "::", #type_ident),
                file: ::core::file!(),
                line: ::core::line!(),
                context_type: #context_name,
                steps: &__TASKER_STEPS,
                run_step: __tasker_dispatch,
                check_context: #private::check_context::<#context_ty>,
                config: #handler_config,
                step_defaults: #defaults,
                validate: #validate,
                dependent_systems: &[#(#systems),*],
                metadata: &[#((#meta_keys, #meta_values)),*],
            };

            #private::inventory::submit! {
                #private::Registration(&__TASKER_HANDLER)
            }

            impl #private::TaskHandler for #self_ty {
                #context_assoc

                fn descriptor() -> &'static #private::HandlerDefinition {
                    &__TASKER_HANDLER
                }
            }
        };
    }
}

/// The glue of a hook (`step_defaults = path`, `validate = path`) and the
/// definition's field: an inherent associated function of the handler, so
/// `Self::f` and private functions resolve as in the user's own `impl`.
/// The call goes through the hook's trait with every token spanned at the
/// path, so a function of another signature is one error there.
fn hook(
    private: &TokenStream,
    self_ty: &syn::Type,
    context_ty: &TokenStream,
    path: Option<&syn::ExprPath>,
    (glue_fn, trait_name, arg_ty): (&str, &str, &str),
) -> (TokenStream, TokenStream) {
    let Some(path) = path else {
        return (TokenStream::new(), quote!(::core::option::Option::None));
    };
    let span = path.span();
    let private_here = respan(private.clone(), span);
    let glue_fn = format_ident!("{glue_fn}");
    let trait_name = format_ident!("{trait_name}", span = span);
    let arg_ty = format_ident!("{arg_ty}");
    let call = quote_spanned!(span=>
        #private_here::#trait_name::<#context_ty>::call(&#path, &__context, __arg)
    );
    let glue = quote! {
        impl #self_ty {
            #[doc(hidden)]
            fn #glue_fn(
                __context: &#private::serde_json::Value,
                __arg: &mut #private::#arg_ty,
            ) -> ::core::result::Result<(), #private::ContextError> {
                let __context: #context_ty = #private::decode_context::<#context_ty>(__context)?;
                let () = #call;
                ::core::result::Result::Ok(())
            }
        }
    };
    (
        glue,
        quote!(::core::option::Option::Some(<#self_ty>::#glue_fn)),
    )
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = proc_macro2::TokenTree::Group(inner);
            }
            tree.set_span(span);
            tree
        })
        .collect()
}

/// `Some(ConfigType { .. })` for `config = T`; the decoder is spanned at
/// `T`, so a type that cannot be deserialized is reported there.
fn config_type(private: &TokenStream, ty: Option<&syn::Type>) -> TokenStream {
    let Some(ty) = ty else {
        return quote!(::core::option::Option::None);
    };
    let name = type_text(ty);
    let decode = quote_spanned!(ty.span()=> #private::decode_config::<#ty>);
    quote! {
        ::core::option::Option::Some(#private::ConfigType {
            type_name: #name,
            type_id: #private::type_id_of::<#ty>,
            decode: #decode,
        })
    }
}

/// `X` of a `&StepContext<X>` parameter; `None` for `&StepContext` (the
/// default, JSON).
fn context_inner(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Reference(reference) = ty else {
        return None;
    };
    let syn::Type::Path(path) = &*reference.elem else {
        return None;
    };
    let syn::PathArguments::AngleBracketed(args) = &path.path.segments.last()?.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

/// The `T` of a `StepResult<T>` or `Result<T, _>` return type, as written;
/// any other type as a whole (aliases are not resolved).
fn output_text(ty: &syn::Type) -> String {
    if let syn::Type::Path(path) = ty {
        if let Some(last) = path.path.segments.last() {
            if last.ident == "StepResult" || last.ident == "Result" {
                if let syn::PathArguments::AngleBracketed(args) = &last.arguments {
                    if let Some(syn::GenericArgument::Type(inner)) = args.args.first() {
                        return type_text(inner);
                    }
                }
            }
        }
    }
    type_text(ty)
}

/// A type as the user wrote it, whitespace normalised (`Vec<u8>`).
fn type_text(ty: &syn::Type) -> String {
    let mut text = quote!(#ty).to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        (" :: ", "::"),
        (":: ", "::"),
        ("& ", "&"),
    ] {
        text = text.replace(from, to);
    }
    text
}
