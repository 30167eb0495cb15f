//! Compile-time checks of `#[task_handler]` and `#[step]`.
//!
//! `ui/pass` must compile; each `ui/fail` case must fail with exactly the
//! error in its `.stderr`. Regenerate after a deliberate change with
//! `TRYBUILD=overwrite cargo test -p tasker-tests --test ui` and review the
//! diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
