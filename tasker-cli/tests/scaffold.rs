//! `cargo tasker new ...` as a user runs it: a generated worker crate, a
//! handler and a subscriber added to it, then the crate built, tested,
//! linted (`clippy -D warnings`) and run, offline, against this checkout.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cargo-tasker");

fn scaffold(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .arg("tasker") // as cargo passes it
        .args(args)
        .output()
        .expect("cargo-tasker runs")
}

#[track_caller]
fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `cargo <args>` in the generated crate, offline, with a target directory
/// of its own that persists between runs (under this build's target dir).
fn cargo(krate: &Path, args: &[&str]) -> Output {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target");
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .current_dir(krate)
        .arg(args[0])
        .arg("--offline")
        .args(&args[1..])
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .env("CARGO_TERM_COLOR", "never")
        .output()
        .expect("cargo runs")
}

#[test]
fn a_generated_worker_builds_tests_lints_and_runs() {
    let root =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("scaffold-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let checkout = checkout.to_str().unwrap();

    let made = ok(scaffold(
        &root,
        &["new", "worker", "orders-worker", "--tasker-path", checkout],
    ));
    assert!(
        made.contains("Cargo.toml") && made.contains("src/handlers/greet.rs"),
        "{made}"
    );
    let krate = root.join("orders-worker");
    ok(scaffold(
        &krate,
        &[
            "new",
            "handler",
            "payments/charge_card",
            "--steps",
            "validate,authorize,capture,notify:authorize+capture",
        ],
    ));
    ok(scaffold(&krate, &["new", "subscriber", "page_on_failure"]));

    // Mistakes are refused, and nothing is overwritten.
    let again = scaffold(&krate, &["new", "handler", "payments/charge_card"]);
    assert_eq!(
        again.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let bad = scaffold(&krate, &["new", "handler", "payments/ChargeCard"]);
    assert_eq!(bad.status.code(), Some(2));
    let unknown = scaffold(&krate, &["new", "handler", "x/y", "--steps", "a,b:z"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not listed before"));
    let elsewhere = scaffold(&root, &["new", "subscriber", "x"]);
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("not a worker crate"));

    let tests = ok(cargo(&krate, &["test"]));
    assert!(
        tests.contains("test result: ok. 3 passed"),
        "greet's two tests and charge_card's one: {tests}"
    );
    ok(cargo(
        &krate,
        &["clippy", "--all-targets", "--", "-D", "warnings"],
    ));
    let help = ok(cargo(&krate, &["run", "--quiet"]));
    assert!(
        help.contains("Usage:"),
        "`cargo run` prints the help: {help}"
    );
    let handlers = ok(cargo(
        &krate,
        &["run", "--quiet", "--", "handlers", "--json"],
    ));
    let handlers: serde_json::Value = serde_json::from_str(&handlers).unwrap();
    let keys: Vec<&str> = handlers
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["orders_worker/greet@1.0.0", "payments/charge_card@1.0.0"]
    );
    let notify = &handlers[1]["steps"][3];
    assert_eq!(
        notify["depends_on"],
        serde_json::json!(["authorize", "capture"])
    );

    // The worker runs a task end to end on its embedded database.
    let db = format!("sqlite://{}", root.join("w.sqlite").display());
    ok(cargo(
        &krate,
        &["run", "--quiet", "--", "--database-url", &db, "migrate"],
    ));
    let created = ok(cargo(
        &krate,
        &[
            "run",
            "--quiet",
            "--",
            "--database-url",
            &db,
            "--json",
            "task",
            "create",
            r#"{"namespace": "payments", "name": "charge_card", "context": {"id": 7}}"#,
        ],
    ));
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    assert_eq!(created["status"], "new");
    let _ = std::fs::remove_dir_all(&root);
}
