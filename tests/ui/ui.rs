//! Compile-time checks of `#[task_handler]` and `#[step]`: the cases in
//! `tests/ui/pass` and `tests/ui/fail`.
//!
//! They are a package of their own (`tasker-ui-tests`), not part of
//! `tasker-tests`: trybuild builds its cases in a project with the
//! dependencies and enabled features of the package that runs them, and
//! `tasker-tests` depends on the whole stack (axum, async-graphql,
//! OpenTelemetry, both databases), which trybuild compiled a second time in
//! its own target directory. This package has only what the cases use.
//!
//! `ui/pass` must compile; each `ui/fail` case must fail with exactly the
//! error in its `.stderr`. Regenerate after a deliberate change with
//! `TRYBUILD=overwrite cargo test -p tasker-ui-tests` and review the
//! diff.
//!
//! rustc's wording and layout change between releases, so the `.stderr`
//! files are pinned to the toolchain that wrote them (`ui/RUSTC_VERSION`).
//! On another toolchain the test stops with that message instead of a diff
//! of rustc's formatting: re-bless with the command above (and update the
//! file) when moving to a new toolchain.

use std::process::Command;

#[test]
fn ui() {
    let pinned = include_str!("RUSTC_VERSION").trim();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_else(|e| panic!("could not run `{rustc} --version`: {e}"));
    assert!(
        version.starts_with(&format!("rustc {pinned} ")),
        "the ui .stderr files were written by rustc {pinned}, this is `{version}`; re-bless them \
         with `TRYBUILD=overwrite cargo test -p tasker-ui-tests`, review the diff, and \
         put the new version in tests/ui/RUSTC_VERSION"
    );
    let t = trybuild::TestCases::new();
    t.pass("pass/*.rs");
    t.compile_fail("fail/*.rs");
}
