//! Snapshot tests of the expansion: what `#[task_handler]` generates, read
//! as Rust. A change to the generated code shows up as a snapshot diff to
//! review (`cargo insta review`, or `INSTA_UPDATE=always` and `git diff`).

use quote::quote;

use crate::expand;

/// The expansion, formatted; error expansions keep their `compile_error!`.
fn expand(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
    let output = expand::task_handler(args, item, None);
    let file = syn::parse2::<syn::File>(output).expect("the expansion parses as a file");
    prettyplease::unparse(&file)
}

#[test]
fn a_two_step_handler() {
    insta::assert_snapshot!(expand(
        quote!(namespace = "payments", version = "1.2.0", context = Order),
        quote! {
            /// Charges an order.
            impl Charge {
                /// Checks the amount.
                #[step]
                async fn validate(ctx: &StepContext<Order>) -> StepResult<i64> {
                    Ok(ctx.context().cents)
                }

                #[step(depends_on = validate, retry_limit = 5, retryable = true, timeout = "30s", events = ["payment.charged"])]
                async fn charge(validate: i64) -> StepResult<Receipt> {
                    Ok(Receipt { cents: validate })
                }
            }
        },
    ));
}

#[test]
fn the_crate_path_option_replaces_tasker() {
    let out = expand(
        quote!(crate = "::platform::workflows"),
        quote! {
            impl Ping {
                #[step]
                async fn ping() -> StepResult<()> {
                    Ok(())
                }
            }
        },
    );
    assert!(
        !out.contains(":: tasker") && !out.contains("::tasker::"),
        "{out}"
    );
    insta::assert_snapshot!(out);
}

#[test]
fn an_invalid_handler_keeps_its_code_and_a_fallback_impl() {
    insta::assert_snapshot!(expand(
        quote!(),
        quote! {
            impl Broken {
                #[step]
                fn not_async() -> StepResult<()> {
                    Ok(())
                }
            }
        },
    ));
}
