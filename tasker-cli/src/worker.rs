//! `run` and `serve`: a worker until Ctrl-C or SIGTERM, with a live status
//! line.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use tasker::{Tasker, Worker, WorkerCounts, WorkerStats};
use tasker_diesel::AnyStore;

use crate::app::App;
use crate::args::{GlobalArgs, WorkerArgs};
use crate::exit::CliError;

async fn start(
    app: &App,
    global: &GlobalArgs,
    args: &WorkerArgs,
) -> Result<Tasker<AnyStore>, CliError> {
    let concurrency = args.concurrency;
    let tasker = app
        .engine(global, !args.no_migrate, |c| {
            if let Some(concurrency) = concurrency {
                c.concurrency = concurrency as usize;
                c.claim_batch = concurrency;
            }
        })
        .await?;
    #[cfg(feature = "http")]
    if let Some(addr) = args.metrics_addr {
        let (bound, _server) = tasker::api::serve_metrics(tasker.metrics().clone(), addr)
            .await
            .map_err(|e| CliError::failure(format!("cannot serve metrics on {addr}: {e}")))?;
        eprintln!("metrics at http://{bound}/metrics");
    }
    Ok(tasker)
}

pub(crate) async fn run(app: &App, global: &GlobalArgs, args: &WorkerArgs) -> Result<(), CliError> {
    let tasker = start(app, global, args).await?;
    let worker = tasker.start_worker();
    eprintln!(
        "worker {} on {} ({:?} mode, concurrency {}); Ctrl-C to stop",
        tasker.config().worker_id,
        tasker.store().describe(),
        tasker.mode(),
        tasker.config().concurrency
    );
    let status = (!args.quiet).then(|| tokio::spawn(status_line(worker.stats())));
    shutdown_signal().await;
    stop(worker, status).await;
    Ok(())
}

#[cfg(feature = "http")]
pub(crate) async fn serve(
    app: &App,
    global: &GlobalArgs,
    args: &crate::args::ServeArgs,
) -> Result<(), CliError> {
    let settings = &app.config().settings().api;
    let mut config = api_config(&settings.auth, args.no_auth)?;
    config.prefix = args
        .prefix
        .clone()
        .or_else(|| settings.prefix.clone())
        .unwrap_or_else(|| "/tasker".to_owned());
    config.limits.apply(&settings.limits);
    let limits = config.limits.clone();
    let addr = args
        .addr
        .or(settings.addr)
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8080)));
    let prefix = config.prefix.trim_end_matches('/').to_owned();
    let tasker = start(app, global, &args.worker).await?;
    let worker = tasker.start_worker();
    let router = tasker::api::router(tasker.clone(), config);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::failure(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::failure(format!("cannot read the bound address: {e}")))?;
    let dashboard = if cfg!(feature = "dashboard") {
        format!(", dashboard at http://{bound}{prefix}/dashboard")
    } else {
        String::new()
    };
    // stdout, one line: scripts wait for it to know the port.
    println!(
        "API on http://{bound}{prefix} (OpenAPI at {prefix}/openapi.json, metrics at {prefix}/metrics, \
         health at {prefix}/health/ready{dashboard}); Ctrl-C to stop"
    );
    let status = (!args.worker.quiet).then(|| tokio::spawn(status_line(worker.stats())));
    tasker::api::serve(listener, router, &limits, shutdown_signal())
        .await
        .map_err(|e| CliError::failure(format!("the server failed: {e}")))?;
    stop(worker, status).await;
    Ok(())
}

async fn stop(worker: Worker, status: Option<tokio::task::JoinHandle<()>>) {
    if let Some(status) = status {
        status.abort();
        let _ = status.await;
        if std::io::stderr().is_terminal() {
            eprint!("\r\x1b[2K");
        }
    }
    eprintln!("stopping: finishing the steps in flight (signal again to exit now)...");
    tokio::select! {
        counts = worker.shutdown() => eprintln!("stopped: {counts}"),
        () = shutdown_signal() => {
            eprintln!(
                "exiting without waiting: the steps in flight run again once their leases expire"
            );
            std::process::exit(130);
        }
    }
}

/// Every second on a terminal, one rewritten line; when piped, a plain
/// line every ten seconds when something changed.
async fn status_line(stats: Arc<WorkerStats>) {
    let terminal = std::io::stderr().is_terminal();
    let every = if terminal {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    };
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    let mut last = stats.counts();
    loop {
        ticks.tick().await;
        let now = stats.counts();
        if !terminal && now == last {
            continue;
        }
        let line = status_text(&last, &now, every);
        let mut err = std::io::stderr().lock();
        let _ = if terminal {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        last = now;
    }
}

/// `claimed 12/s  running 4  done 11/s  retried 0/s  failed 1/s  (total: ...)`.
fn status_text(before: &WorkerCounts, now: &WorkerCounts, over: Duration) -> String {
    let rate = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / over.as_secs_f64();
    let finished = now.completed + now.retried + now.failed + now.stale;
    format!(
        "claimed {:.0}/s  running {}  done {:.0}/s  retried {:.0}/s  failed {:.0}/s  (total: {} done, {} failed)",
        rate(before.claimed, now.claimed),
        now.claimed.saturating_sub(finished),
        rate(before.completed, now.completed),
        rate(before.retried, now.retried),
        rate(before.failed, now.failed),
        now.completed,
        now.failed
    )
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Authentication for `serve`: `--no-auth`, the configuration's
/// `api.auth`, or the environment variables.
#[cfg(feature = "http")]
fn api_config(
    auth: &tasker::config::AuthSettings,
    no_auth: bool,
) -> Result<tasker::api::ApiConfig, CliError> {
    use tasker::api::{ApiConfig, JwtAuthenticator, NoAuthentication, StaticTokens};
    use tasker::config::AuthMode;
    let allow_all = || {
        eprintln!("warning: no authentication: every request is allowed");
        Ok(ApiConfig::new(NoAuthentication))
    };
    if no_auth {
        return allow_all();
    }
    let jwt = |secret: &str, issuer: &str, audience: &str, what: &str| {
        JwtAuthenticator::hs256(secret.as_bytes(), issuer, audience)
            .map(ApiConfig::new)
            .map_err(|e| CliError::usage(format!("{what}: {e}")))
    };
    let tokens = |spec: &str, what: &str| {
        StaticTokens::parse(spec)
            .map(ApiConfig::new)
            .map_err(|e| CliError::usage(format!("{what}: {e}")))
    };
    let tokens_file = |path: &std::path::Path| {
        StaticTokens::from_file(path)
            .map(ApiConfig::new)
            .map_err(CliError::usage)
    };
    match auth.mode {
        Some(AuthMode::None) => return allow_all(),
        Some(AuthMode::Jwt) => {
            let Some(j) = &auth.jwt else {
                return Err(CliError::usage(
                    "api.auth.mode is `jwt` but api.auth.jwt (secret, issuer, audience) is not set",
                ));
            };
            return jwt(
                j.secret.expose(),
                &j.issuer,
                &j.audience,
                "api.auth.jwt.secret",
            );
        }
        Some(AuthMode::Tokens) => {
            return match (&auth.tokens, &auth.tokens_file) {
                (Some(spec), _) => tokens(spec.expose(), "api.auth.tokens"),
                (None, Some(path)) => tokens_file(path),
                (None, None) => Err(CliError::usage(
                    "api.auth.mode is `tokens` but neither api.auth.tokens nor \
                     api.auth.tokens_file is set",
                )),
            };
        }
        None => {}
    }
    if let Some(j) = &auth.jwt {
        return jwt(
            j.secret.expose(),
            &j.issuer,
            &j.audience,
            "api.auth.jwt.secret",
        );
    }
    if let Some(path) = &auth.tokens_file {
        return tokens_file(path);
    }
    if let Some(spec) = &auth.tokens {
        return tokens(spec.expose(), "api.auth.tokens");
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(secret) = env("TASKER_JWT_SECRET") {
        let issuer = env("TASKER_JWT_ISSUER")
            .ok_or_else(|| CliError::usage("TASKER_JWT_SECRET needs TASKER_JWT_ISSUER"))?;
        let audience = env("TASKER_JWT_AUDIENCE")
            .ok_or_else(|| CliError::usage("TASKER_JWT_SECRET needs TASKER_JWT_AUDIENCE"))?;
        return jwt(&secret, &issuer, &audience, "TASKER_JWT_SECRET");
    }
    if let Some(path) = env("TASKER_API_TOKENS_FILE") {
        return tokens_file(std::path::Path::new(&path));
    }
    if let Some(spec) = env("TASKER_API_TOKENS") {
        return tokens(&spec, "TASKER_API_TOKENS");
    }
    Err(CliError::usage(
        "no API credentials configured: set api.auth in the configuration file, or \
         TASKER_API_TOKENS, TASKER_API_TOKENS_FILE or TASKER_JWT_SECRET, or pass --no-auth for \
         local use",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_shows_rates_and_running_steps() {
        let before = WorkerCounts::default();
        let now = WorkerCounts {
            claim_queries: 3,
            claimed: 20,
            completed: 10,
            retried: 2,
            failed: 2,
            stale: 0,
        };
        assert_eq!(
            status_text(&before, &now, Duration::from_secs(2)),
            "claimed 10/s  running 6  done 5/s  retried 1/s  failed 1/s  (total: 10 done, 2 failed)"
        );
    }
}
