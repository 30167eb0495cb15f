//! tasker-cli as a user's binary runs it: `tasker-cli-worker` (the test
//! handlers plus `tasker_cli::App::main`) driven as a subprocess, on real
//! SQLite files and a real PostgreSQL database. Every command's happy path
//! and main error, `--json` parsed, exit codes as documented.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tasker-cli-worker");

/// The binary with a clean environment: only the database URL given.
fn command(db: &str) -> Command {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("TASKER_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            command.env_remove(&*key);
        }
    }
    command
        .env("DATABASE_URL", db)
        .env("TASKER_ACTOR", "cli-test");
    command
}

fn run(db: &str, args: &[&str]) -> Output {
    command(db).args(args).output().expect("the CLI runs")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs, expects exit code `expected`, returns stdout.
#[track_caller]
fn expect(db: &str, args: &[&str], expected: i32) -> String {
    let output = run(db, args);
    assert_eq!(
        code(&output),
        expected,
        "`{}` exited {}; stdout:\n{}\nstderr:\n{}",
        args.join(" "),
        code(&output),
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

#[track_caller]
fn json(db: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let text = expect(db, &all, 0);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}):\n{text}", all.join(" ")))
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tasker-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn db(&self) -> String {
        format!("sqlite://{}", self.0.join("tasker.sqlite").display())
    }

    fn file(&self) -> PathBuf {
        self.0.join("tasker.sqlite")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `run` worker, stopped with SIGTERM on drop.
struct Worker(Child);

impl Worker {
    fn start(db: &str) -> Self {
        let mut child = command(db)
            .args(["run", "--concurrency", "4"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the worker starts");
        // It says so on stderr once it runs.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // Warnings (e.g. about the server's set-up) may come first.
        let started = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|line| line.starts_with("worker "));
        assert!(started.is_some(), "the worker never said it runs");
        std::thread::spawn(move || lines.for_each(drop));
        Worker(child)
    }

    fn stop(mut self) -> i32 {
        signal(&self.0, "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}

fn flaky(key: &str, extra: &str) -> String {
    format!(r#"{{"namespace": "tests", "name": "flaky", "context": {{"key": "{key}"{extra}}}}}"#)
}

fn created_id(db: &str, request: &str) -> i64 {
    let created = json(db, &["task", "create", request]);
    assert_eq!(created["status"], "new", "{created}");
    created["task_id"].as_i64().unwrap()
}

#[test]
fn handler_commands_need_no_database_and_say_what_is_linked() {
    let db = "sqlite:///nonexistent/dir/never-created.sqlite";
    let list = expect(db, &["handlers"], 0);
    assert!(list.starts_with("HANDLER"), "a table with a header: {list}");
    assert!(list.contains("tests/flaky@1.0.0"), "{list}");
    let listed = json(db, &["handlers"]);
    let keys: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"tests/diamond@1.0.0"), "{keys:?}");

    let shown = json(db, &["handlers", "tests/diamond"]);
    let steps: Vec<&str> = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["a", "b", "c", "d"]);
    assert_eq!(
        shown["steps"][3]["depends_on"],
        serde_json::json!(["b", "c"])
    );
    let table = expect(db, &["handlers", "tests/flaky@1.0.0"], 0);
    assert!(
        table.contains("flowchart"),
        "the graph follows the steps: {table}"
    );

    let dot = expect(db, &["graph", "tests/diamond", "--format", "dot"], 0);
    assert!(
        dot.starts_with("digraph") && dot.contains("\"b\" -> \"d\""),
        "{dot}"
    );

    let unknown = run(db, &["handlers", "tests/nope"]);
    assert_eq!(code(&unknown), 3, "{}", stderr(&unknown));
    assert!(stderr(&unknown).contains("nope"), "{}", stderr(&unknown));
    let malformed = run(db, &["graph", "diamond"]);
    assert_eq!(code(&malformed), 2);
    assert!(
        stderr(&malformed).contains("namespace/name"),
        "{}",
        stderr(&malformed)
    );
    assert!(!Path::new("/nonexistent/dir").exists());
}

#[test]
fn read_commands_never_create_or_migrate_a_database() {
    let dir = TempDir::new("readonly");
    let db = dir.db();
    for args in [
        &["task", "list"][..],
        &["task", "show", "1"],
        &["step", "show", "1"],
        &["analyze", "1"],
        &["check"],
        &["migrate", "--status"],
    ] {
        let output = run(&db, args);
        assert_eq!(
            code(&output),
            5,
            "`{}`: {}",
            args.join(" "),
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("no SQLite database"),
            "{}",
            stderr(&output)
        );
        assert!(
            !dir.file().exists(),
            "`{}` created the file",
            args.join(" ")
        );
    }

    // An empty file: not migrated. Read commands say so and change nothing.
    std::fs::write(dir.file(), b"").unwrap();
    let output = run(&db, &["task", "list"]);
    assert_eq!(code(&output), 5);
    assert!(
        stderr(&output).contains("run `migrate`"),
        "{}",
        stderr(&output)
    );
    let status = run(&db, &["migrate", "--status", "--json"]);
    assert_eq!(code(&status), 6, "pending migrations: exit 6");
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["applied"], serde_json::json!([]));
    let shipped = sqlite_migrations();
    assert_eq!(status["pending"].as_array().unwrap().len(), shipped);
    assert_eq!(
        std::fs::metadata(dir.file()).unwrap().len(),
        0,
        "still empty"
    );

    // `migrate` says what it applied; a second run applies nothing.
    let applied = json(&db, &["migrate"]);
    assert_eq!(
        applied["applied_now"].as_array().unwrap().len(),
        shipped,
        "{applied}"
    );
    let again = expect(&db, &["migrate"], 0);
    assert!(again.contains("already current"), "{again}");
    let status = json(&db, &["migrate", "--status"]);
    assert_eq!(status["current"], true);
}

/// The SQLite migrations the store embeds: one directory each.
fn sqlite_migrations() -> usize {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tasker-diesel/migrations/sqlite"
    );
    let count = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("up.sql").exists())
        .count();
    assert!(count >= 4, "{dir} holds {count} migrations");
    count
}

#[test]
fn a_task_through_the_cli_on_sqlite_beside_a_running_worker() {
    let dir = TempDir::new("sqlite");
    let db = dir.db();
    expect(&db, &["migrate"], 0);
    let ok = created_id(&db, &flaky("ok", r#", "fail_times": 1"#));
    let doomed = created_id(
        &db,
        &flaky("doomed", r#", "permanent_until_switched": true"#),
    );

    // No worker yet: waiting times out with exit 7.
    let waited = run(
        &db,
        &["task", "wait", &ok.to_string(), "--timeout", "300ms"],
    );
    assert_eq!(code(&waited), 7, "{}", stderr(&waited));

    let worker = Worker::start(&db);
    // Read-only commands work while the worker holds the file.
    let done = json(&db, &["task", "wait", &ok.to_string(), "--timeout", "30s"]);
    assert_eq!(done["state"], "complete");
    assert_eq!(
        done["steps"][0]["attempts"], 2,
        "one planned failure, one retry"
    );
    let failed = run(
        &db,
        &["task", "wait", &doomed.to_string(), "--timeout", "30s"],
    );
    assert_eq!(
        code(&failed),
        8,
        "a task ending in error: exit 8; {}",
        stderr(&failed)
    );
    let listed = json(&db, &["task", "list", "--state", "error"]);
    let ids: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [doomed]);
    let table = expect(&db, &["task", "list"], 0);
    assert!(
        table.starts_with("ID") && table.contains("tests/flaky@1.0.0"),
        "{table}"
    );

    // A write while the worker owns the SQLite file is refused clearly.
    let busy = run(&db, &["task", "retry", &doomed.to_string()]);
    assert_eq!(code(&busy), 5, "{}", stderr(&busy));
    assert!(
        stderr(&busy).contains("in use by another tasker process"),
        "{}",
        stderr(&busy)
    );
    assert_eq!(worker.stop(), 0, "SIGTERM drains and exits 0");

    // The failed task: shown, its step shown, analysed.
    let task = json(&db, &["task", "show", &doomed.to_string(), "--transitions"]);
    let work = &task["steps"][0];
    assert_eq!(work["state"], "error");
    assert_eq!(work["last_error"]["class"], "SwitchOff");
    assert!(!task["transitions"].as_array().unwrap().is_empty());
    let step_id = work["step_id"].as_i64().unwrap();
    let step = json(&db, &["step", "show", &step_id.to_string()]);
    assert_eq!(step["task_id"], doomed);
    let analysis = json(&db, &["analyze", &doomed.to_string()]);
    assert_eq!(analysis["bottlenecks"][0]["step"], "work");
    let human = expect(&db, &["analyze", &doomed.to_string()], 0);
    assert!(human.contains("critical path: work -> after"), "{human}");

    // Operator actions, audited under --actor / TASKER_ACTOR.
    let conflict = run(&db, &["task", "retry", &ok.to_string()]);
    assert_eq!(
        code(&conflict),
        4,
        "retrying a complete task: {}",
        stderr(&conflict)
    );
    expect(
        &db,
        &["step", "resolve", &step_id.to_string(), "--output", "7"],
        0,
    );
    let resolved = json(&db, &["task", "show", &doomed.to_string(), "--transitions"]);
    assert_eq!(resolved["steps"][0]["output"], 7);
    let by_operator = resolved["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["actor"] == "cli-test" && t["to_state"] == "resolved_manually");
    assert!(by_operator, "{}", resolved["transitions"]);
    let bad_output = run(
        &db,
        &[
            "step",
            "resolve",
            &step_id.to_string(),
            "--output",
            "not json",
        ],
    );
    assert_eq!(code(&bad_output), 2);

    let missing = run(&db, &["task", "show", "999999"]);
    assert_eq!(code(&missing), 3, "{}", stderr(&missing));
    let malformed = run(&db, &["task", "create", "{\"namespace\": 1}"]);
    assert_eq!(code(&malformed), 2, "{}", stderr(&malformed));
    let bad_state = run(&db, &["task", "list", "--state", "finished"]);
    assert_eq!(code(&bad_state), 2, "{}", stderr(&bad_state));
}

#[test]
fn check_fails_a_deploy_that_cannot_run_the_unfinished_tasks() {
    use diesel::{Connection, RunQueryDsl, SqliteConnection};
    let dir = TempDir::new("check");
    let db = dir.db();
    expect(&db, &["migrate"], 0);
    let ok = json(&db, &["check"]);
    assert_eq!(ok["ok"], true);
    created_id(&db, &flaky("unfinished", ""));
    assert_eq!(json(&db, &["check"])["ok"], true, "linked, same shape");

    // The database now says the task was created by another shape.
    let mut conn = SqliteConnection::establish(&dir.file().display().to_string()).unwrap();
    diesel::sql_query(
        "UPDATE tasker_named_tasks SET fingerprint = 'an-older-shape' WHERE name = 'flaky'",
    )
    .execute(&mut conn)
    .unwrap();
    drop(conn);
    let output = run(&db, &["check", "--json"]);
    assert_eq!(code(&output), 6, "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["refused"][0]["name"], "flaky");
    assert_eq!(report["refused"][0]["tasks"], 1);
    assert!(report["refused"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("changed shape"));
}

#[test]
fn config_show_never_prints_a_secret() {
    let secret_db =
        "postgres://app:hunter2-db-password@db.internal:5432/app?sslpassword=other-secret";
    let token = "ops:averyveryverysecrettoken-0123456789:*";
    let mut cmd = command(secret_db);
    cmd.env("TASKER_API_TOKENS", token);
    for args in [
        &["config", "show", "--json"][..],
        &["config", "show"],
        &["--help"],
        &["serve", "--help"],
    ] {
        let output = cmd.args(args).output().unwrap();
        let all = format!("{}{}", stdout(&output), stderr(&output));
        assert_eq!(code(&output), 0, "{all}");
        for secret in ["hunter2", "other-secret", "averyveryverysecrettoken"] {
            assert!(
                !all.contains(secret),
                "`{}` printed a secret:\n{all}",
                args.join(" ")
            );
        }
        cmd = command(secret_db);
        cmd.env("TASKER_API_TOKENS", token);
    }
    let shown = json(secret_db, &["config", "show"]);
    assert_eq!(
        shown["settings"]["database.url"]["value"],
        "postgres://app:***@db.internal:5432/app?sslpassword=***"
    );
    assert!(shown["features"]
        .as_array()
        .unwrap()
        .contains(&Value::from("postgres")));
}

#[test]
fn serve_answers_health_and_stops_on_sigterm() {
    let dir = TempDir::new("serve");
    let db = dir.db();
    let mut child = command(&db)
        .args(["serve", "--no-auth", "--addr", "127.0.0.1:0", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().expect("the API line").unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime
        .block_on(reqwest::get(format!("{url}/health/ready")))
        .expect("the API answers")
        .status();
    assert_eq!(status.as_u16(), 200);
    signal(&child, "TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn operator_actions_on_postgres_while_workers_run() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime
        .block_on(tasker_diesel::testing::TestDatabase::create())
        .expect("a test database");
    let db = database.url().to_owned();
    // Read commands on an unmigrated PostgreSQL database create nothing.
    let output = run(&db, &["task", "list"]);
    assert_eq!(code(&output), 5, "{}", stderr(&output));
    let status = run(&db, &["migrate", "--status"]);
    assert_eq!(code(&status), 6);
    let first = Worker::start(&db);
    let second = Worker::start(&db);
    let doomed = created_id(
        &db,
        &flaky("pg-doomed", r#", "permanent_until_switched": true"#),
    );
    let failed = run(
        &db,
        &["task", "wait", &doomed.to_string(), "--timeout", "30s"],
    );
    assert_eq!(code(&failed), 8);
    // PostgreSQL: the operator acts while the workers run.
    let work = json(&db, &["task", "show", &doomed.to_string()])["steps"][0]["step_id"]
        .as_i64()
        .unwrap();
    expect(&db, &["step", "retry", &work.to_string()], 0);
    let failed_again = run(
        &db,
        &["task", "wait", &doomed.to_string(), "--timeout", "30s"],
    );
    assert_eq!(code(&failed_again), 8, "the switch is still off");
    let retried = json(
        &db,
        &[
            "dead-letters",
            "retry",
            "--namespace",
            "tests",
            "--handler",
            "flaky",
        ],
    );
    assert_eq!(retried["retried"], serde_json::json!([doomed]), "{retried}");
    let failed_again = run(
        &db,
        &["task", "wait", &doomed.to_string(), "--timeout", "30s"],
    );
    assert_eq!(code(&failed_again), 8);
    let attempts = json(&db, &["step", "show", &work.to_string()])["attempts"]
        .as_i64()
        .unwrap();
    assert_eq!(attempts, 3, "one attempt, then two retries by the operator");
    let after = json(&db, &["task", "show", &doomed.to_string()])["steps"][1]["step_id"]
        .as_i64()
        .unwrap();
    expect(&db, &["step", "cancel", &after.to_string()], 0);
    let conflict = run(&db, &["step", "cancel", &after.to_string()]);
    assert_eq!(
        code(&conflict),
        4,
        "cancelling it twice: {}",
        stderr(&conflict)
    );
    expect(&db, &["task", "resolve", &doomed.to_string()], 0);
    let resolved = json(&db, &["task", "show", &doomed.to_string()]);
    assert_eq!(resolved["state"], "resolved_manually");
    let slow = created_id(
        &db,
        r#"{"namespace": "tests", "name": "slow_job", "context": {"sleep_ms": 2000}}"#,
    );
    expect(&db, &["task", "cancel", &slow.to_string()], 0);
    let cancelled = run(
        &db,
        &["task", "wait", &slow.to_string(), "--timeout", "10s"],
    );
    assert_eq!(code(&cancelled), 8, "cancelled is not complete");
    assert_eq!(first.stop(), 0);
    assert_eq!(second.stop(), 0);
    drop(database);
}

#[test]
fn dead_letters_and_purge_from_the_command_line() {
    let dir = TempDir::new("retention");
    let db = dir.db();
    expect(&db, &["migrate"], 0);
    let ok = created_id(&db, &flaky("dl-ok", ""));
    let doomed = created_id(
        &db,
        &flaky("dl-doomed", r#", "permanent_until_switched": true"#),
    );
    let worker = Worker::start(&db);
    expect(&db, &["task", "wait", &ok.to_string()], 0);
    let _ = run(&db, &["task", "wait", &doomed.to_string()]);
    // Read-only, beside the worker.
    let letters = json(&db, &["dead-letters", "list"]);
    assert_eq!(letters.as_array().unwrap().len(), 1, "{letters}");
    assert_eq!(letters[0]["task_id"], doomed);
    assert_eq!(letters[0]["error"]["class"], "SwitchOff");
    let table = expect(
        &db,
        &["dead-letters", "list", "--error-class", "SwitchOff"],
        0,
    );
    assert!(
        table.starts_with("TASK") && table.contains("the switch is off"),
        "{table}"
    );
    assert_eq!(
        json(&db, &["dead-letters", "list", "--error-class", "Other"]),
        serde_json::json!([])
    );
    assert_eq!(worker.stop(), 0);

    // Bulk actions need a filter (or --all), and are audited.
    let unfiltered = run(&db, &["dead-letters", "resolve"]);
    assert_eq!(code(&unfiltered), 2, "{}", stderr(&unfiltered));
    let resolved = json(
        &db,
        &["dead-letters", "resolve", "--error-class", "SwitchOff"],
    );
    assert_eq!(
        resolved["resolved"],
        serde_json::json!([doomed]),
        "{resolved}"
    );
    let task = json(&db, &["task", "show", &doomed.to_string(), "--transitions"]);
    assert_eq!(task["state"], "resolved_manually");
    assert!(task["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["actor"] == "cli-test"));

    // Purge: unfinished states refused; then the complete task goes, and
    // the resolved one stays (not named).
    let refused = run(&db, &["purge", "--state", "pending", "--older-than", "0s"]);
    assert_eq!(code(&refused), 2, "{}", stderr(&refused));
    let dry = json(
        &db,
        &[
            "purge",
            "--state",
            "complete",
            "--older-than",
            "0s",
            "--dry-run",
        ],
    );
    assert_eq!(dry["would_delete"], 1, "{dry}");
    expect(&db, &["task", "show", &ok.to_string()], 0);
    let none = json(
        &db,
        &[
            "purge",
            "--state",
            "complete",
            "--older-than",
            "1h",
            "--dry-run",
        ],
    );
    assert_eq!(none["would_delete"], 0, "nothing is an hour old: {none}");
    let purged = json(&db, &["purge", "--state", "complete", "--older-than", "0s"]);
    assert_eq!(purged["deleted"], 1, "{purged}");
    assert_eq!(code(&run(&db, &["task", "show", &ok.to_string()])), 3);
    expect(&db, &["task", "show", &doomed.to_string()], 0);
}

#[test]
fn every_log_line_about_a_step_says_which_task_handler_step_and_attempt() {
    let dir = TempDir::new("logs");
    let db = dir.db();
    expect(&db, &["migrate"], 0);
    created_id(&db, &flaky("logged", r#", "fail_times": 1"#));
    let mut child = command(&db)
        .args(["--json-logs", "--log", "info", "run", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut retry_line = None;
    for line in lines.map_while(Result::ok) {
        if line.contains("will retry") {
            retry_line = Some(line);
            break;
        }
    }
    signal(&child, "TERM");
    let _ = child.wait();
    let line = retry_line.expect("a log line about the retry");
    let log: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let span = &log["span"];
    assert_eq!(span["namespace"], "tests", "{line}");
    assert_eq!(span["handler"], "flaky");
    assert_eq!(span["version"], "1.0.0");
    assert_eq!(span["step"], "work");
    assert_eq!(span["attempt"], 1);
    assert!(span["task_id"].as_i64().is_some(), "{line}");
    assert!(log["fields"]["message"]
        .as_str()
        .unwrap()
        .contains("planned failure 1"));
}

/// The worker's start line (`worker ... concurrency N`), then SIGTERM.
fn started_line(mut command: Command) -> String {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the worker starts");
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines
        .map_while(Result::ok)
        .find(|line| line.starts_with("worker ") || line.starts_with("error"))
        .expect("the worker says it runs");
    signal(&child, "TERM");
    child.wait().unwrap();
    line
}

#[test]
fn a_configuration_file_sets_the_worker_and_flags_win() {
    let dir = TempDir::new("config");
    let file = dir.0.join("tasker.yaml");
    std::fs::write(
        &file,
        "database:\n  url: sqlite://${CONFIG_DIR}/from-file.sqlite\nengine:\n  concurrency: 3\n  lease: 12s\nenvironments:\n  production:\n    engine:\n      concurrency: 8\n",
    )
    .unwrap();
    let cli = |extra: &[(&str, &str)]| {
        let mut cmd = command("unused");
        cmd.env_remove("DATABASE_URL")
            .env("TASKER_CONFIG", &file)
            .env("CONFIG_DIR", &dir.0);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    };
    let show = |extra: &[(&str, &str)]| -> Value {
        let output = cli(extra)
            .args(["config", "show", "--json"])
            .output()
            .unwrap();
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        serde_json::from_str(&stdout(&output)).unwrap()
    };
    let shown = show(&[]);
    let concurrency = &shown["settings"]["engine.concurrency"];
    assert_eq!(concurrency["value"], 3);
    assert!(
        concurrency["from"]
            .as_str()
            .unwrap()
            .ends_with("tasker.yaml:4:3"),
        "{shown}"
    );
    assert_eq!(shown["settings"]["engine.lease"]["value"], "12s");
    assert_eq!(shown["settings"]["engine.poll_interval"]["from"], "default");
    assert_eq!(
        shown["settings"]["database.url"]["value"],
        format!("sqlite://{}/from-file.sqlite", dir.0.display())
    );
    // The overlay, then a TASKER__ variable, each win over the layer below.
    let shown = show(&[("TASKER_ENV", "production")]);
    assert_eq!(shown["settings"]["engine.concurrency"]["value"], 8);
    assert_eq!(shown["environment"], "production");
    let shown = show(&[
        ("TASKER_ENV", "production"),
        ("TASKER__ENGINE__CONCURRENCY", "5"),
    ]);
    assert_eq!(shown["settings"]["engine.concurrency"]["value"], 5);
    assert_eq!(
        shown["settings"]["engine.concurrency"]["from"],
        "environment variable TASKER__ENGINE__CONCURRENCY"
    );

    // The worker runs with the file's settings, on the file's database...
    let mut run = cli(&[]);
    run.args(["run", "--quiet"]);
    let line = started_line(run);
    assert!(line.contains("concurrency 3"), "{line}");
    assert!(line.contains("from-file.sqlite"), "{line}");
    // ...and a flag wins over all of it.
    let mut run = cli(&[("TASKER__ENGINE__CONCURRENCY", "5")]);
    run.args(["run", "--quiet", "--concurrency", "2"]);
    let line = started_line(run);
    assert!(line.contains("concurrency 2"), "{line}");
}

#[test]
fn configuration_mistakes_stop_every_command_with_where_and_what() {
    let dir = TempDir::new("config-bad");
    let db = dir.db();
    let file = dir.0.join("tasker.yaml");
    std::fs::write(&file, "engine:\n  lease: 30\n").unwrap();
    let path = file.display().to_string();
    for args in [&["config", "show"][..], &["run"], &["handlers"]] {
        let output = command(&db)
            .arg("--config")
            .arg(&file)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(code(&output), 2, "{}", stderr(&output));
        assert_eq!(
            stderr(&output).trim(),
            format!(
                "error: invalid configuration: {path}:2:3: engine.lease: a duration needs a \
                 unit: write `30s` or `30ms`, not `30`"
            )
        );
    }
    // A missing file named explicitly is an error too.
    let output = command(&db)
        .args(["--config", "/nonexistent/tasker.yaml", "config", "show"])
        .output()
        .unwrap();
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("cannot read /nonexistent/tasker.yaml"),
        "{}",
        stderr(&output)
    );

    // `check` finds what only the linked handlers can tell: exit code 6.
    std::fs::write(
        &file,
        "handlers:\n  tests/diamnd:\n    retry_limit: 1\n  tests/diamond:\n    steps:\n      e:\n        timeout: 1s\n",
    )
    .unwrap();
    expect(&db, &["migrate"], 0);
    let output = command(&db)
        .arg("--config")
        .arg(&file)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(code(&output), 6, "{}", stdout(&output));
    let text = stdout(&output);
    assert!(
        text.contains(&format!("configuration: {path}:2:3: handlers.tests/diamnd: no handler `tests/diamnd` is linked into this binary")),
        "{text}"
    );
    assert!(text.contains("did you mean `tests/diamond`?"), "{text}");
    assert!(
        text.contains(&format!("{path}:6:7: handlers.tests/diamond.steps.e: handler `tests/diamond` has no step `e`; its steps are a, b, c, d")),
        "{text}"
    );
    // And a worker refuses to start on it, with the same words.
    let output = command(&db)
        .arg("--config")
        .arg(&file)
        .args(["run"])
        .output()
        .unwrap();
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("handlers.tests/diamnd: no handler"),
        "{}",
        stderr(&output)
    );
}
