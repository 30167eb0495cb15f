//! Configuration: layers and their precedence, overlays, interpolation,
//! every error message, and the `handlers:` section applied by the engine
//! on both stores (retry limits, timeouts, typed `handler_config`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tasker::config::{Config, ConfigErrors, Origin};
use tasker::prelude::*;
use tasker::{EngineConfig, Registry, StepState, TaskState, Tasker};

/// The gateway a handler talks to, from `handler_config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Base URL.
    pub base_url: String,
    /// Who we are.
    #[serde(default)]
    pub merchant: Option<String>,
}

/// One step's own settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargeConfig {
    /// Fail this many attempts before succeeding.
    pub fail_times: u32,
}

/// A handler with a typed configuration and a step with its own.
pub struct Configured;

#[task_handler(namespace = "configured", version = "1.0.0", config = GatewayConfig)]
impl Configured {
    /// Fails `fail_times` attempts (from its own config), then succeeds.
    #[step(config = ChargeConfig, retry_limit = 0)]
    async fn charge(ctx: &StepContext) -> StepResult<u32> {
        let own = ctx.handler_config::<ChargeConfig>()?;
        if ctx.attempt() <= own.fail_times {
            return Err(StepError::retryable("not yet"));
        }
        Ok(ctx.attempt())
    }

    /// Reads the handler's config.
    #[step(depends_on = charge)]
    async fn notify(ctx: &StepContext) -> StepResult<String> {
        let gateway = ctx.handler_config::<GatewayConfig>()?;
        Ok(format!(
            "{} as {}",
            gateway.base_url,
            gateway.merchant.as_deref().unwrap_or("nobody")
        ))
    }
}

/// A handler with no configuration type.
pub struct Plain;

#[task_handler(namespace = "configured", version = "2.0.0")]
impl Plain {
    /// Sleeps for the given milliseconds.
    #[step]
    async fn nap(ctx: &StepContext) -> StepResult<()> {
        let ms = ctx.context()["sleep_ms"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(())
    }
}

fn registry() -> Registry {
    Registry::new()
        .with::<Configured>()
        .unwrap()
        .with::<Plain>()
        .unwrap()
}

/// Loads `yaml` as `tasker.yaml` with exactly these variables.
fn load(yaml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let dir = std::env::temp_dir().join(format!(
        "tasker-config-{}-{}",
        std::process::id(),
        fastrand_name()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tasker.yaml");
    std::fs::write(&path, yaml).unwrap();
    let result = Config::loader()
        .file(&path)
        .vars(vars.iter().map(|(k, v)| (*k, *v)))
        .load();
    std::fs::remove_dir_all(&dir).unwrap();
    result.map_err(|e| rename(e, &path))
}

/// Errors name the temporary path; tests compare against `tasker.yaml`.
fn rename(errors: ConfigErrors, path: &std::path::Path) -> ConfigErrors {
    ConfigErrors(
        errors
            .0
            .into_iter()
            .map(|mut e| {
                if let Origin::File { path: p, .. } = &mut e.origin {
                    if p.as_path() == path {
                        *p = std::sync::Arc::new(PathBuf::from("tasker.yaml"));
                    }
                }
                e.problem = e
                    .problem
                    .replace(&path.display().to_string(), "tasker.yaml");
                e
            })
            .collect(),
    )
}

fn fastrand_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

fn error_text(yaml: &str, vars: &[(&str, &str)]) -> String {
    let errors = load(yaml, vars).expect_err("the configuration is refused");
    errors
        .0
        .iter()
        .map(|e| {
            let origin = match &e.origin {
                Origin::File { path, line, column } => {
                    format!("{}:{line}:{column}", path.display())
                }
                other => other.to_string(),
            };
            if e.key.is_empty() {
                format!("{origin}: {}", e.problem)
            } else {
                format!("{origin}: {}: {}", e.key, e.problem)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const LAYERED: &str = "\
engine:
  concurrency: 4
  claim_batch: 8
  lease: 20s
  backoff:
    base: 200ms
environments:
  production:
    engine:
      concurrency: 32
      lease: 45s
  staging: {}
";

#[test]
fn each_layer_wins_over_the_one_below() {
    // Defaults only.
    let mut engine = EngineConfig::default();
    Config::default().apply_engine(&mut engine);
    assert_eq!(engine.concurrency, 16);
    assert_eq!(engine.lease, Duration::from_secs(30));

    // The file over the defaults.
    let config = load(LAYERED, &[]).unwrap();
    let mut engine = EngineConfig::default();
    config.apply_engine(&mut engine);
    assert_eq!(
        (engine.concurrency, engine.claim_batch, engine.lease),
        (4, 8, Duration::from_secs(20))
    );
    assert_eq!(engine.backoff.base, Duration::from_millis(200));
    assert_eq!(engine.poll_interval, Duration::from_secs(1), "untouched");
    assert_eq!(config.environment(), None);

    // The overlay over the file.
    let config = load(LAYERED, &[("TASKER_ENV", "production")]).unwrap();
    let mut engine = EngineConfig::default();
    config.apply_engine(&mut engine);
    assert_eq!(
        (engine.concurrency, engine.claim_batch, engine.lease),
        (32, 8, Duration::from_secs(45))
    );
    assert_eq!(config.environment(), Some("production"));
    assert_eq!(
        config
            .origin("engine.concurrency")
            .to_string()
            .rsplit_once('/')
            .map(|(_, f)| f.to_owned())
            .unwrap(),
        "tasker.yaml:10:7"
    );

    // Environment variables over the overlay.
    let config = load(
        LAYERED,
        &[
            ("TASKER_ENV", "production"),
            ("TASKER__ENGINE__CONCURRENCY", "64"),
            ("TASKER__ENGINE__POLL_INTERVAL", "250ms"),
            ("TASKER__ENGINE__BACKOFF__JITTER", "false"),
        ],
    )
    .unwrap();
    let mut engine = EngineConfig::default();
    config.apply_engine(&mut engine);
    assert_eq!(engine.concurrency, 64);
    assert_eq!(engine.poll_interval, Duration::from_millis(250));
    assert!(!engine.backoff.jitter);
    assert_eq!(engine.lease, Duration::from_secs(45), "from the overlay");
    assert_eq!(
        config.origin("engine.concurrency"),
        &Origin::Env("TASKER__ENGINE__CONCURRENCY".into())
    );
    assert_eq!(config.origin("engine.max_depth"), config.origin("engine"));

    // An empty overlay changes nothing.
    let config = load(LAYERED, &[("TASKER_ENV", "staging")]).unwrap();
    let mut engine = EngineConfig::default();
    config.apply_engine(&mut engine);
    assert_eq!(engine.concurrency, 4);
}

#[test]
fn code_defaults_lose_to_the_file_and_later_code_wins_over_both() {
    // What `TaskerBuilder::configure` before `settings` sets is a default;
    // what it sets after (the CLI's flags) wins.
    let config = load(LAYERED, &[]).unwrap();
    let mut engine = EngineConfig {
        concurrency: 2,
        poll_interval: Duration::from_millis(5),
        ..EngineConfig::default()
    };
    config.apply_engine(&mut engine);
    assert_eq!(engine.concurrency, 4, "the file wins over code defaults");
    assert_eq!(
        engine.poll_interval,
        Duration::from_millis(5),
        "kept where the file is silent"
    );
}

#[test]
fn interpolation_fills_secrets_and_typed_values() {
    let yaml = "\
database:
  url: postgres://app:${DB_PASSWORD}@db.internal/app
  pool_size: ${POOL:-12}
  schema: \"${SCHEMA:-tasker}\"
api:
  auth:
    tokens: ${TASKER_API_TOKENS}
";
    let config = load(
        yaml,
        &[
            ("DB_PASSWORD", "p@ss"),
            ("TASKER_API_TOKENS", "ops:0123456789abcdef01234567:*"),
        ],
    )
    .unwrap();
    let s = config.settings();
    assert_eq!(
        s.database.url.as_deref(),
        Some("postgres://app:p@ss@db.internal/app")
    );
    assert_eq!(s.database.pool_size, Some(12));
    assert_eq!(s.database.schema.as_deref(), Some("tasker"));
    let tokens = s.api.auth.tokens.as_ref().unwrap();
    assert_eq!(tokens.expose(), "ops:0123456789abcdef01234567:*");
    assert_eq!(format!("{tokens:?}"), "<redacted>");
    let shown = serde_json::to_string(s).unwrap();
    assert!(!shown.contains("0123456789abcdef"), "{shown}");

    // Only the layers that apply are interpolated: another environment's
    // secrets need not be set here.
    let with_overlay = "engine:\n  worker_id: ${HOSTNAME:-w1}\nenvironments:\n  production:\n    database:\n      url: ${PROD_DATABASE_URL}\n";
    let config = load(with_overlay, &[]).unwrap();
    assert_eq!(config.settings().engine.worker_id.as_deref(), Some("w1"));
    assert_eq!(
        error_text(with_overlay, &[("TASKER_ENV", "production")]),
        "tasker.yaml:6:7: database.url: environment variable PROD_DATABASE_URL is not set; set \
         it, or give a default: `${PROD_DATABASE_URL:-value}`"
    );

    let text = error_text(yaml, &[("DB_PASSWORD", "x")]);
    assert_eq!(
        text,
        "tasker.yaml:7:5: api.auth.tokens: environment variable TASKER_API_TOKENS is not set; \
         set it, or give a default: `${TASKER_API_TOKENS:-value}`"
    );
}

#[test]
fn unknown_keys_name_the_line_and_what_is_allowed() {
    let text = error_text("engine:\n  concurency: 4\n", &[]);
    assert!(
        text.starts_with("tasker.yaml:2:3: engine.concurency: unknown field `concurency`, expected one of `concurrency`, `claim_batch`"),
        "{text}"
    );
    let text = error_text("engin:\n  concurrency: 4\n", &[]);
    assert!(
        text.starts_with("tasker.yaml:1:1: engin: unknown field `engin`, expected one of `database`, `engine`, `api`, `telemetry`, `handlers`"),
        "{text}"
    );
    let text = error_text(
        "handlers:\n  configured/plain:\n    steps:\n      nap:\n        retry_limt: 2\n",
        &[],
    );
    assert!(
        text.starts_with("tasker.yaml:5:9: handlers.configured/plain.steps.nap.retry_limt: unknown field `retry_limt`, expected one of `retry_limit`"),
        "{text}"
    );
}

#[test]
fn bad_values_say_what_to_write() {
    for (yaml, expected) in [
        (
            "engine:\n  lease: 30\n",
            "tasker.yaml:2:3: engine.lease: a duration needs a unit: write `30s` or `30ms`, not `30`",
        ),
        (
            "engine:\n  lease: soon\n",
            "tasker.yaml:2:3: engine.lease: invalid duration \"soon\" (expected number at 0); write e.g. `30s`, `5m`, `1h 30m`, `250ms`",
        ),
        (
            "engine:\n  concurrency: many\n",
            "tasker.yaml:2:3: engine.concurrency: invalid type: string \"many\", expected usize",
        ),
        (
            "engine:\n  concurrency: 0\n",
            "tasker.yaml:2:3: engine.concurrency: must be at least 1",
        ),
        (
            "engine:\n  lease: 0s\n",
            "tasker.yaml:2:3: engine.lease: must be longer than zero",
        ),
        (
            "engine:\n  backoff:\n    base: 10s\n    cap: 1s\n",
            "tasker.yaml:4:5: engine.backoff.cap: must be at least `engine.backoff.base`",
        ),
        (
            "engine:\n  retention:\n    rules:\n      - states: [in_progress]\n        older_than: 7d\n",
            "tasker.yaml:4:9: engine.retention.rules.0.states: must be a non-empty list of finished states (`complete`, `cancelled`, `resolved_manually`) or `error`",
        ),
        (
            "handlers:\n  configured/plain:\n    priority: urgent\n",
            "tasker.yaml:3:5: handlers.configured/plain.priority: unknown variant `urgent`, expected one of `low`, `normal`, `high`, `critical`",
        ),
        (
            "handlers:\n  configured/plain:\n    max_execution_time: 0s\n",
            "tasker.yaml:3:5: handlers.configured/plain.max_execution_time: must be between 1ms and 366 days",
        ),
        (
            "database:\n  schema: Tasker-Prod\n",
            "tasker.yaml:2:3: database.schema: must be lowercase letters, digits and `_`",
        ),
        (
            "api:\n  addr: localhost\n",
            "tasker.yaml:2:3: api.addr: invalid socket address syntax",
        ),
        (
            "api:\n  auth:\n    mode: password\n",
            "tasker.yaml:3:5: api.auth.mode: unknown variant `password`, expected one of `tokens`, `jwt`, `none`",
        ),
        (
            "handlers:\n  process_order:\n    retry_limit: 2\n",
            "tasker.yaml:2:3: handlers.process_order: `process_order` does not name a handler: write `namespace/name` (every version) or `namespace/name@1.2.0` (one version)",
        ),
        (
            "handlers:\n  configured/plain@2:\n    retry_limit: 2\n",
            "tasker.yaml:2:3: handlers.configured/plain@2: `2` is not a semantic version (unexpected end of input while parsing major version number): write `namespace/name` (every version) or `namespace/name@1.2.0` (one version)",
        ),
    ] {
        assert_eq!(error_text(yaml, &[]), expected, "for {yaml:?}");
    }
}

#[test]
fn several_value_problems_are_reported_at_once() {
    let text = error_text(
        "engine:\n  concurrency: 0\n  claim_batch: 0\n  lease: 0s\n",
        &[],
    );
    assert_eq!(text.lines().count(), 3, "{text}");
}

#[test]
fn file_and_environment_mistakes_are_named() {
    assert_eq!(
        error_text("engine: [1, 2\n", &[]),
        "tasker.yaml:2:1: not valid YAML: while parsing a flow sequence, expected ',' or ']'"
    );
    assert!(error_text("a: 1\na: 2\n", &[]).contains("not valid YAML"));
    assert_eq!(
        error_text(LAYERED, &[("TASKER_ENV", "prod")]),
        "tasker.yaml:7:1: environments: TASKER_ENV=prod, but tasker.yaml defines no such \
         environment (it defines production, staging); add `environments: prod:` (it may be \
         empty) or change TASKER_ENV"
    );
    assert_eq!(
        error_text("engine: {}\n", &[("TASKER__ENGINE__CONCURENCY", "3")]),
        "environment variable TASKER__ENGINE__CONCURENCY: engine.concurency: unknown field \
         `concurency`, expected one of `concurrency`, `claim_batch`, `lease`, `poll_interval`, \
         `worker_id`, `subscriber_timeout`, `subscriber_queue`, `backoff`, `priority_aging`, `step_defaults`, \
         `retention`, `limits`"
    );
    assert!(error_text("", &[("TASKER__HANDLERS__X", "1")])
        .contains("`handlers` cannot be set from environment variables"));
    assert!(error_text("", &[("TASKER__ENGINE", "1")])
        .contains("invalid type: integer `1`, expected struct EngineSettings"));
    assert!(error_text("", &[("TASKER____X", "1")]).contains("does not name a key"));
    // A missing file given explicitly is an error; a default location is not.
    let missing = std::env::temp_dir().join("tasker-no-such-dir/tasker.yaml");
    let e = Config::load(&missing).unwrap_err().to_string();
    assert!(
        e.contains("cannot read") && e.contains("tasker.yaml"),
        "{e}"
    );
    let config = Config::loader()
        .file_if_exists(&missing)
        .vars(Vec::<(String, String)>::new())
        .load()
        .unwrap();
    assert_eq!(config.settings(), Config::default().settings());
}

#[test]
fn handlers_and_steps_are_checked_against_what_is_linked() {
    let yaml = "\
handlers:
  configured/configure:
    retry_limit: 1
  configured/configured@9.0.0:
    retry_limit: 1
  configured/configured:
    handler_config:
      base_url: https://pay.test
    steps:
      charg:
        retry_limit: 3
      charge:
        handler_config:
          fail_times: many
  configured/plain:
    handler_config: {a: 1}
    steps:
      nap:
        handler_config: {b: 2}
";
    let config = load(yaml, &[]).unwrap();
    let errors = config.check(&registry()).unwrap_err();
    let text: Vec<String> = errors
        .0
        .iter()
        .map(|e| format!("{}: {}", e.key, e.problem))
        .collect();
    assert_eq!(
        text,
        [
            "handlers.configured/configure: no handler `configured/configure` is linked into this \
             binary (linked: configured/configured, configured/plain); did you mean \
             `configured/configured`?",
            "handlers.configured/configured.steps.charg: handler `configured/configured` has no \
             step `charg`; its steps are charge, notify; did you mean `charge`?",
            "handlers.configured/configured@9.0.0: handler `configured/configured` has no version \
             9.0.0; linked versions: 1.0.0",
            "handlers.configured/configured.steps.charge.handler_config.fail_times: does not fit \
             `ChargeConfig`, the configuration type of step `charge` of \
             configured/configured@1.0.0: invalid type: string \"many\", expected u32",
            "handlers.configured/plain.handler_config: handler configured/plain@2.0.0 declares no \
             configuration type; add `config = YourType` to its #[task_handler(...)] or remove \
             this key",
            "handlers.configured/plain.steps.nap.handler_config: step `nap` of \
             configured/plain@2.0.0 declares no configuration type; add `config = YourType` to \
             its #[step(...)] or remove this key",
        ]
    );
    let lines: Vec<String> = errors.0.iter().map(|e| e.origin.to_string()).collect();
    assert!(lines[0].ends_with(":2:3"), "{lines:?}");
    assert!(lines[3].ends_with(":14:11"), "{lines:?}");
}

#[test]
fn limits_are_checked_where_they_are_written() {
    for (yaml, expected) in [
        (
            "engine:\n  limits:\n    api: {concurrency: 0}\n",
            "tasker.yaml:3:5: engine.limits.api: limit `api` has `concurrency: 0`: give at least 1",
        ),
        (
            "engine:\n  limits:\n    api: {}\n",
            "tasker.yaml:3:5: engine.limits.api: limit `api` limits nothing: give `concurrency` \
             (steps at once), `per_second` (starts per second) or both",
        ),
        (
            "engine:\n  limits:\n    api: {per_second: -1}\n",
            "tasker.yaml:3:5: engine.limits.api: limit `api` has `per_second: -1`: give a number \
             above 0 and at most 1000000",
        ),
        (
            "engine:\n  limits:\n    api: {concurrency: 2, burst: 3}\n",
            "tasker.yaml:3:5: engine.limits.api: limit `api` has `burst` without `per_second`: a \
             burst sizes a rate",
        ),
        (
            "engine:\n  limits:\n    payments api: {concurrency: 2}\n",
            "tasker.yaml:3:5: engine.limits.payments api: `payments api` is not a valid limit \
             name: use 1 to 63 letters, digits, `_` and `-`",
        ),
        (
            "handlers:\n  configured/plain:\n    steps:\n      nap:\n        limit: {concurrency: 0}\n",
            "tasker.yaml:5:9: handlers.configured/plain.steps.nap.limit: this limit has \
             `concurrency: 0`: give at least 1",
        ),
    ] {
        assert_eq!(error_text(yaml, &[]), expected, "for {yaml:?}");
    }
    // A name that no `engine.limits` entry defines: found with the handlers.
    let config = load(
        "engine:\n  limits:\n    payments-api: {concurrency: 2}\n\
         handlers:\n  configured/plain:\n    limit: payment-api\n",
        &[],
    )
    .unwrap();
    let errors = config.check(&registry()).unwrap_err();
    let limit = errors
        .0
        .iter()
        .filter(|e| e.key.ends_with(".limit"))
        .collect::<Vec<_>>();
    assert_eq!(limit.len(), 1, "{errors}");
    assert_eq!(limit[0].key, "handlers.configured/plain.limit");
    assert_eq!(
        limit[0].problem,
        "no limit `payment-api` in `engine.limits` (defined: payments-api); did you mean \
         `payments-api`?; define it there or write the limit here, e.g. `{concurrency: 2}`"
    );
    assert!(
        limit[0].origin.to_string().ends_with(":6:5"),
        "{}",
        limit[0].origin
    );
    // Named and inline limits that are fine pass the check.
    let config = load(
        "engine:\n  limits:\n    payments-api: {concurrency: 2, per_second: 2.5}\n\
         handlers:\n  configured/plain:\n    limit: payments-api\n\
         \x20 configured/configured:\n    steps:\n      charge:\n        limit: {per_second: 1, burst: 4}\n\
         \x20       handler_config: {fail_times: 0}\n    handler_config: {base_url: x}\n",
        &[],
    )
    .unwrap();
    config.check(&registry()).unwrap();
    let limit = config.settings().engine.limits["payments-api"];
    assert_eq!(limit, tasker::Limit::concurrency(2).per_second(2.5));
}

#[test]
fn a_missing_handler_config_names_what_to_add() {
    let config = load("handlers: {}\n", &[]).unwrap();
    let errors = config.check(&registry()).unwrap_err();
    assert!(
        errors
            .0
            .iter()
            .all(|e| e.origin.to_string().ends_with("tasker.yaml:1:1")),
        "{errors}"
    );
    let text: Vec<String> = errors
        .0
        .iter()
        .map(|e| format!("{}: {}", e.key, e.problem))
        .collect();
    assert_eq!(
        text,
        [
            "handlers.configured/configured.handler_config: is missing: \
             handler configured/configured@1.0.0 reads its configuration into `GatewayConfig` \
             (missing field `base_url`); add `handlers.configured/configured.handler_config:` \
             to the configuration file",
            "handlers.configured/configured.steps.charge.handler_config: \
             is missing: step `charge` of configured/configured@1.0.0 reads its configuration \
             into `ChargeConfig` (missing field `fail_times`); add \
             `handlers.configured/configured.steps.charge.handler_config:` to the configuration \
             file",
        ]
    );
}

const HANDLERS: &str = "\
engine:
  step_defaults:
    timeout: 5s
handlers:
  configured/configured:
    handler_config:
      base_url: https://pay.test
    steps:
      charge:
        retry_limit: 3
        handler_config:
          fail_times: 2
  configured/plain@2.0.0:
    timeout: 100ms
environments:
  production:
    handlers:
      configured/configured:
        handler_config:
          base_url: https://pay.example
          merchant: acme
";

async fn the_handlers_section_reaches_the_steps<S: tasker::Store>(store: S) {
    let config = load(HANDLERS, &[("TASKER_ENV", "production")]).unwrap();
    let tasker = Tasker::builder(store)
        .registry(registry())
        .configure(tasker_tests::fast_config)
        .settings(config)
        .build()
        .await
        .expect("engine starts");
    let handler = Configured::handler();
    let charge = tasker.step_config(&handler, "charge").unwrap();
    // The file's 3 wins over the attribute's 0; the engine default timeout applies.
    assert_eq!(charge.retry_limit, 3);
    assert_eq!(charge.timeout, Some(Duration::from_secs(5)));
    assert_eq!(
        tasker
            .step_config(&Plain::handler(), "nap")
            .unwrap()
            .timeout,
        Some(Duration::from_millis(100))
    );

    let task = tasker
        .run_task(
            Configured::request(serde_json::json!({})),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    let charge = task.steps.iter().find(|s| s.name == "charge").unwrap();
    assert_eq!(
        charge.attempts, 3,
        "two failures from its own config, then success"
    );
    let notify = task.steps.iter().find(|s| s.name == "notify").unwrap();
    assert_eq!(
        notify.output,
        Some(serde_json::json!("https://pay.example as acme")),
        "the production overlay's handler_config"
    );

    // The version-specific entry's timeout fails a slow step.
    let task = tasker
        .run_task(
            Plain::request(serde_json::json!({"sleep_ms": 2000})),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Error);
    let nap = &task.steps[0];
    assert_eq!(nap.state, StepState::Error);
    assert!(
        nap.last_error
            .as_ref()
            .unwrap()
            .message()
            .contains("within its timeout of 100ms"),
        "{nap:?}"
    );
}

async fn a_bad_configuration_refuses_to_start<S: tasker::Store>(store: S) {
    let config = load(
        "handlers:\n  configured/configured:\n    handler_config:\n      base_url: 7\n",
        &[],
    )
    .unwrap();
    let error = Tasker::builder(store)
        .registry(registry())
        .settings(config)
        .build()
        .await
        .err()
        .expect("the engine refuses to start");
    let text = error.to_string();
    assert!(
        text.starts_with("invalid configuration (2 problems):"),
        "{text}"
    );
    assert!(
        text.contains(":4:7: handlers.configured/configured.handler_config.base_url: does not fit `GatewayConfig`"),
        "{text}"
    );
    assert!(matches!(error, tasker::Error::Config(_)));
}

/// Priorities and deadlines from the file: the handler's default, a
/// step's own priority, and a request's values winning over both.
async fn priorities_and_deadlines_come_from_the_file<S: tasker::Store>(store: S) {
    let config = load(
        "engine:
  priority_aging: 5s
handlers:
  configured/configured:
    priority: low
    max_execution_time: 10m
    handler_config:
      base_url: https://pay.test
    steps:
      charge:
        handler_config:
          fail_times: 0
      notify:
        priority: critical
",
        &[],
    )
    .unwrap();
    let mut engine = EngineConfig::default();
    config.apply_engine(&mut engine);
    assert_eq!(engine.priority_aging, Duration::from_secs(5));
    let tasker = Tasker::builder(store)
        .registry(registry())
        .configure(tasker_tests::fast_config)
        .settings(config)
        .build()
        .await
        .expect("engine starts");
    let id = tasker
        .create_task(Configured::request(serde_json::json!({})))
        .await
        .unwrap()
        .task_id();
    let task = tasker.task(id).await.unwrap();
    assert_eq!(task.priority, tasker::Priority::Low);
    let priorities: Vec<_> = task
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.priority))
        .collect();
    assert_eq!(
        priorities,
        [
            ("charge", tasker::Priority::Low),
            ("notify", tasker::Priority::Critical)
        ]
    );
    let after = (task.deadline.unwrap() - task.created_at).num_seconds();
    assert_eq!(after, 600);

    let id = tasker
        .create_task(
            Configured::request(serde_json::json!({}))
                .priority(tasker::Priority::High)
                .max_execution_time(Duration::from_secs(60)),
        )
        .await
        .unwrap()
        .task_id();
    let task = tasker.task(id).await.unwrap();
    assert_eq!(task.priority, tasker::Priority::High, "the request wins");
    assert_eq!(task.steps[0].priority, tasker::Priority::High);
    assert_eq!(
        task.steps[1].priority,
        tasker::Priority::Critical,
        "a step's own priority wins over its task's"
    );
    assert_eq!((task.deadline.unwrap() - task.created_at).num_seconds(), 60);

    // Plain has no settings: normal, no deadline.
    let id = tasker
        .create_task(Plain::request(serde_json::json!({})))
        .await
        .unwrap()
        .task_id();
    let task = tasker.task(id).await.unwrap();
    assert_eq!(
        (task.priority, task.deadline),
        (tasker::Priority::Normal, None)
    );
}

/// What a `Premium` task asks of its steps.
#[derive(Debug, serde::Serialize, Deserialize)]
pub struct Order {
    /// More retries and a higher priority.
    pub premium: bool,
    /// `charge` fails this many attempts first.
    pub fail_times: u32,
    /// The defaults function names a step that does not exist.
    #[serde(default)]
    pub typo: bool,
    /// The defaults function panics.
    #[serde(default)]
    pub boom: bool,
}

/// Per-task step settings from the context.
pub struct Premium;

#[task_handler(namespace = "configured", version = "3.0.0", context = Order, step_defaults = Self::defaults)]
impl Premium {
    /// Fails `fail_times` attempts, then succeeds.
    #[step(retry_limit = 1)]
    async fn charge(ctx: &StepContext<Order>) -> StepResult<u32> {
        if ctx.attempt() <= ctx.context().fail_times {
            return Err(StepError::retryable("declined for now"));
        }
        Ok(ctx.attempt())
    }
}

impl Premium {
    fn defaults(order: &Order, steps: &mut tasker::StepDefaults) {
        assert!(!order.boom, "the defaults blew up");
        if order.premium {
            steps
                .step("charge")
                .retry_limit(5)
                .priority(tasker::Priority::High);
        }
        if order.typo {
            steps.step("chrage").retry_limit(1);
        }
    }
}

/// Code < file < the handler's per-task `step_defaults`.
async fn step_defaults_win_over_the_file_for_their_task<S: tasker::Store>(store: S) {
    let config = load(
        "handlers:\n  configured/premium:\n    steps:\n      charge:\n        retry_limit: 2\n",
        &[],
    )
    .unwrap();
    let tasker = Tasker::builder(store)
        .registry(Registry::new().with::<Premium>().unwrap())
        .configure(tasker_tests::fast_config)
        .settings(config)
        .build()
        .await
        .expect("engine starts");
    let order = |premium, fail_times| Order {
        premium,
        fail_times,
        typo: false,
        boom: false,
    };
    let run = |order: Order| {
        let tasker = tasker.clone();
        async move {
            tasker
                .run_task(Premium::request(order), Duration::from_secs(30))
                .await
                .unwrap()
        }
    };
    // The file's 2 retries beat the attribute's 1.
    let task = run(order(false, 2)).await;
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    assert_eq!(task.steps[0].max_attempts, 3);
    assert_eq!(task.steps[0].priority, tasker::Priority::Normal);
    let task = run(order(false, 3)).await;
    assert_eq!(task.state, TaskState::Error);
    assert_eq!(task.steps[0].attempts, 3);
    // A premium order gets 5 retries and a high priority.
    let task = run(order(true, 4)).await;
    assert_eq!(task.state, TaskState::Complete, "{task:?}");
    assert_eq!(task.steps[0].attempts, 5);
    assert_eq!(task.steps[0].max_attempts, 6);
    assert_eq!(task.steps[0].priority, tasker::Priority::High);

    // A function that names no step, or panics, refuses the task and
    // writes nothing.
    let before = tasker.tasks(&Default::default()).await.unwrap().len();
    let error = tasker
        .create_task(Premium::request(Order {
            typo: true,
            ..order(false, 0)
        }))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            tasker::Error::HandlerHook {
                hook: "step_defaults",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the step_defaults function of handler configured/premium@3.0.0 set the step `chrage`, \
         which the handler does not have; its steps are `charge`"
    );
    let error = tasker
        .create_task(Premium::request(Order {
            boom: true,
            ..order(false, 0)
        }))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the step_defaults function of handler configured/premium@3.0.0 panicked: the defaults blew up"
    );
    assert_eq!(
        tasker.tasks(&Default::default()).await.unwrap().len(),
        before
    );
}

/// The handler of the `config_file` trybuild cases, checked against the
/// same file (from this crate's root) at compile time.
pub struct UiPayments;

/// `handler_config` of `ui/payments`.
#[derive(Debug, Deserialize)]
pub struct UiGateway {
    /// Where.
    pub base_url: String,
}

/// `handler_config` of its `charge` step.
#[derive(Debug, Deserialize)]
pub struct UiCharge {
    /// Capture at once.
    pub capture: bool,
}

#[task_handler(
    namespace = "ui",
    name = "payments",
    version = "1.0.0",
    config = UiGateway,
    config_file = "ui/fixtures/payments.yaml"
)]
impl UiPayments {
    /// Reads its config.
    #[step(config = UiCharge)]
    async fn charge(ctx: &StepContext) -> StepResult<bool> {
        Ok(ctx.handler_config::<UiCharge>()?.capture)
    }

    /// Then this.
    #[step(depends_on = charge)]
    async fn notify() -> StepResult<()> {
        Ok(())
    }
}

/// Another handler named in the same file.
pub struct UiOther;

#[task_handler(
    namespace = "ui",
    name = "other",
    config_file = "ui/fixtures/payments.yaml"
)]
impl UiOther {
    /// Its one step.
    #[step]
    async fn anything() -> StepResult<()> {
        Ok(())
    }
}

/// What the compile-time check accepts, the engine accepts too: the file
/// with every key is a valid configuration for the handler.
#[tokio::test]
async fn the_file_checked_at_compile_time_starts_an_engine() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/fixtures/payments.yaml");
    for env in [None, Some("production")] {
        let mut loader = Config::loader().file(&path);
        if let Some(env) = env {
            loader = loader.environment(env);
        }
        let config = loader.load().expect("the fixture loads");
        let tasker = Tasker::builder(tasker_tests::sqlite().await)
            .registry(
                Registry::new()
                    .with::<UiPayments>()
                    .unwrap()
                    .with::<UiOther>()
                    .unwrap(),
            )
            .settings(config)
            .build()
            .await
            .expect("the engine starts with the file the macro checked");
        let charge = tasker
            .step_config(&UiPayments::handler(), "charge")
            .unwrap();
        assert_eq!(charge.retry_limit, if env.is_some() { 8 } else { 5 });
    }
}

/// Steps of [`CodeLimited`] running now, and the most seen at once.
static RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static MOST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A step whose limit is named in code.
pub struct CodeLimited;

#[task_handler(namespace = "configured", version = "4.0.0")]
impl CodeLimited {
    /// Counts how many run at once.
    #[step(limit = "fragile-api")]
    async fn call() -> StepResult<()> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = RUNNING.fetch_add(1, SeqCst) + 1;
        MOST.fetch_max(now, SeqCst);
        tokio::time::sleep(Duration::from_millis(40)).await;
        RUNNING.fetch_sub(1, SeqCst);
        Ok(())
    }
}

/// `#[step(limit = "...")]` names a limit of `engine.limits`: undefined, the
/// engine refuses to start; defined, it holds the step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_named_in_code_must_exist_and_holds() {
    let registry = || Registry::new().with::<CodeLimited>().unwrap();
    let error = Tasker::builder(tasker_tests::sqlite().await)
        .registry(registry())
        .build()
        .await
        .err()
        .expect("the engine refuses to start");
    let text = error.to_string();
    assert!(
        text.contains(
            "#[step(limit = \"fragile-api\")] of step `call` of configured/code_limited@4.0.0"
        ),
        "{text}"
    );
    assert!(text.contains("no limit `fragile-api` is defined"), "{text}");

    let config = load(
        "engine:\n  limits:\n    fragile-api: {concurrency: 1}\n",
        &[],
    )
    .unwrap();
    let tasker = Tasker::builder(tasker_tests::sqlite().await)
        .registry(registry())
        .configure(|c| {
            tasker_tests::fast_config(c);
            c.concurrency = 8;
        })
        .settings(config)
        .build()
        .await
        .expect("engine starts");
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(
            tasker
                .create_task(CodeLimited::request(serde_json::json!({})))
                .await
                .unwrap()
                .task_id(),
        );
    }
    let worker = tasker.start_worker();
    for id in ids {
        let task = tasker
            .wait_for_task(id, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(task.state, TaskState::Complete);
    }
    worker.shutdown().await;
    assert_eq!(
        MOST.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one at a time"
    );
}

#[tokio::test]
async fn the_task_runner_applies_step_defaults_too() {
    let runner = tasker::testing::TaskRunner::new();
    let order = |premium| Order {
        premium,
        fail_times: 4,
        typo: false,
        boom: false,
    };
    let run = runner.run::<Premium>(order(true)).await.unwrap();
    assert!(run.is_complete());
    assert_eq!(run.step("charge").unwrap().attempts, 5);
    let run = runner.run::<Premium>(order(false)).await.unwrap();
    assert!(!run.is_complete());
    assert_eq!(
        run.step("charge").unwrap().attempts,
        2,
        "the attribute's retry_limit = 1"
    );
}

tasker_tests::on_both_stores!(
    step_defaults_win_over_the_file_for_their_task,
    the_handlers_section_reaches_the_steps,
    a_bad_configuration_refuses_to_start,
    priorities_and_deadlines_come_from_the_file,
);

#[tokio::test]
async fn the_task_runner_applies_the_same_configuration() {
    let config = load(HANDLERS, &[]).unwrap();
    let run = tasker::testing::TaskRunner::new()
        .settings(config)
        .run::<Configured>(serde_json::json!({}))
        .await
        .unwrap();
    assert!(run.is_complete());
    assert_eq!(run.step("charge").unwrap().attempts, 3);
    assert_eq!(
        run.output::<String>("notify").unwrap(),
        "https://pay.test as nobody"
    );

    // A value given in code replaces the file's, and a runner with none
    // refuses to run, naming what is missing.
    let run = tasker::testing::TaskRunner::new()
        .handler_config(GatewayConfig {
            base_url: "http://local".into(),
            merchant: None,
        })
        .handler_config(ChargeConfig { fail_times: 0 })
        .run::<Configured>(serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(
        run.output::<String>("notify").unwrap(),
        "http://local as nobody"
    );
    let error = tasker::testing::TaskRunner::new()
        .run::<Configured>(serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("missing field `base_url`"),
        "{error}"
    );
}
