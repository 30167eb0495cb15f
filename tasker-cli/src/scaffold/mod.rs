//! `cargo tasker new ...`: generates a worker crate, handlers and
//! subscribers that build, run and test green, and pass clippy.
//!
//! ```text
//! cargo tasker new worker orders-worker --tasker-path ../tasker
//! cd orders-worker
//! cargo tasker new handler payments/charge_card --steps validate,authorize,capture
//! cargo tasker new subscriber page_on_failure
//! cargo test && cargo run -- handlers
//! ```

mod templates;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::{CliError, Exit};

/// Scaffolding for tasker workers.
#[derive(Debug, Parser)]
#[command(name = "cargo tasker", version, bin_name = "cargo tasker")]
struct Args {
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// Create a worker crate, a handler or a subscriber.
    #[command(subcommand)]
    New(New),
}

#[derive(Debug, Subcommand)]
enum New {
    /// A worker crate: Cargo.toml, `main.rs` calling tasker-cli, a sample
    /// handler with its test, README.
    Worker {
        /// The directory to create (its name is the crate's name).
        dir: PathBuf,
        /// Depend on a tasker checkout at this path.
        #[arg(long, conflicts_with = "tasker_git")]
        tasker_path: Option<PathBuf>,
        /// Depend on tasker from this git repository.
        #[arg(long)]
        tasker_git: Option<String>,
    },
    /// A handler in the worker crate of the current directory (or
    /// `--crate-dir`), wired into `src/handlers/mod.rs`, with its test.
    Handler {
        /// `namespace/name`, both snake_case.
        key: String,
        /// The steps: `a,b,c` chains them; `name:dep1+dep2` names a step's
        /// dependencies instead.
        #[arg(long, value_delimiter = ',', default_value = "start,finish")]
        steps: Vec<String>,
        /// The worker crate (default: the current directory).
        #[arg(long, default_value = ".")]
        crate_dir: PathBuf,
    },
    /// An event subscriber, registered for every engine of the worker.
    Subscriber {
        /// snake_case name.
        name: String,
        /// The worker crate (default: the current directory).
        #[arg(long, default_value = ".")]
        crate_dir: PathBuf,
    },
}

/// Runs `cargo tasker` with the process's arguments.
pub fn main() -> ExitCode {
    // Cargo runs `cargo-tasker tasker new ...`; run directly, it is
    // `cargo-tasker new ...`.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "tasker") {
        args.remove(1);
    }
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let Top::New(new) = args.command;
    let result = match new {
        New::Worker {
            dir,
            tasker_path,
            tasker_git,
        } => worker(&dir, tasker_path.as_deref(), tasker_git.as_deref()),
        New::Handler {
            key,
            steps,
            crate_dir,
        } => handler(&crate_dir, &key, &steps),
        New::Subscriber { name, crate_dir } => subscriber(&crate_dir, &name),
    };
    match result {
        Ok(created) => {
            for path in created {
                println!("created {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", e.message);
            e.exit.into()
        }
    }
}

/// Where the generated crate finds tasker: the dependency lines.
fn tasker_source(path: Option<&Path>, git: Option<&str>) -> Result<(String, String), CliError> {
    if let Some(git) = git {
        return Ok((
            format!("{{ git = \"{git}\" }}"),
            format!("{{ git = \"{git}\" }}"),
        ));
    }
    let root = match path {
        Some(path) => path.to_path_buf(),
        None => {
            // The checkout this cargo-tasker was built from, when it is
            // still there.
            let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            if !built_from.join("tasker").join("Cargo.toml").is_file() {
                return Err(CliError::usage(
                    "say where tasker comes from: --tasker-path PATH (a checkout) or \
                     --tasker-git URL",
                ));
            }
            built_from
        }
    };
    let root = root
        .canonicalize()
        .map_err(|e| CliError::usage(format!("--tasker-path {}: {e}", root.display())))?;
    for krate in ["tasker", "tasker-cli"] {
        if !root.join(krate).join("Cargo.toml").is_file() {
            return Err(CliError::usage(format!(
                "{} is not a tasker checkout: it has no {krate}/Cargo.toml",
                root.display()
            )));
        }
    }
    let line = |krate: &str| format!("{{ path = {:?} }}", root.join(krate).display().to_string());
    Ok((line("tasker"), line("tasker-cli")))
}

fn worker(dir: &Path, path: Option<&Path>, git: Option<&str>) -> Result<Vec<PathBuf>, CliError> {
    if dir.exists() {
        return Err(CliError::usage(format!(
            "{} already exists: choose a new directory",
            dir.display()
        )));
    }
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CliError::usage(format!("{} has no usable name", dir.display())))?
        .to_owned();
    let package = name.replace('_', "-");
    if !package
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || !package.starts_with(|c: char| c.is_ascii_lowercase())
    {
        return Err(CliError::usage(format!(
            "{name:?} is not a crate name: use lowercase letters, digits and `-`, starting with a letter"
        )));
    }
    let namespace = package.replace('-', "_");
    let (tasker, tasker_cli) = tasker_source(path, git)?;
    let files = [
        (
            "Cargo.toml",
            templates::WORKER_CARGO
                .replace("{package}", &package)
                .replace("{tasker}", &tasker)
                .replace("{tasker_cli}", &tasker_cli),
        ),
        (
            "src/main.rs",
            templates::WORKER_MAIN.replace("{package}", &package),
        ),
        ("src/handlers/mod.rs", templates::HANDLERS_MOD.to_owned()),
        (
            "src/handlers/greet.rs",
            templates::SAMPLE_HANDLER.replace("{namespace}", &namespace),
        ),
        (
            "src/subscribers/mod.rs",
            templates::SUBSCRIBERS_MOD.to_owned(),
        ),
        (
            "README.md",
            templates::WORKER_README
                .replace("{package}", &package)
                .replace("{namespace}", &namespace),
        ),
        (
            ".gitignore",
            "/target\n*.sqlite\n*.sqlite-*\n*.sqlite.lock\n".to_owned(),
        ),
    ];
    let mut created = Vec::new();
    for (file, text) in files {
        created.push(write_new(&dir.join(file), &text)?);
    }
    append_line(&dir.join("src/handlers/mod.rs"), "pub mod greet;")?;
    Ok(created)
}

fn snake(what: &str, name: &str) -> Result<(), CliError> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !templates::KEYWORDS.contains(&name);
    if ok {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "{what} {name:?} must be snake_case (lowercase letters, digits, `_`, starting with a \
             letter) and not a Rust keyword"
        )))
    }
}

fn pascal(name: &str) -> String {
    heck::ToUpperCamelCase::to_upper_camel_case(name)
}

fn worker_crate(dir: &Path) -> Result<(), CliError> {
    if dir.join("Cargo.toml").is_file() && dir.join("src/main.rs").is_file() {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "{} is not a worker crate (no Cargo.toml and src/main.rs): run this in one made by \
             `cargo tasker new worker`, or pass --crate-dir",
            dir.display()
        )))
    }
}

/// A step of `--steps`: its name and dependencies.
fn parse_steps(specs: &[String]) -> Result<Vec<(String, Vec<String>)>, CliError> {
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    for spec in specs {
        let (name, deps) = match spec.split_once(':') {
            Some((name, deps)) => (
                name.trim().to_owned(),
                deps.split('+').map(|d| d.trim().to_owned()).collect(),
            ),
            None => (
                spec.trim().to_owned(),
                steps
                    .last()
                    .map(|(prev, _)| vec![prev.clone()])
                    .unwrap_or_default(),
            ),
        };
        snake("step", &name)?;
        if steps.iter().any(|(n, _)| *n == name) {
            return Err(CliError::usage(format!("step {name:?} is listed twice")));
        }
        for dep in &deps {
            if !steps.iter().any(|(n, _)| n == dep) {
                return Err(CliError::usage(format!(
                    "step {name:?} depends on {dep:?}, which is not listed before it"
                )));
            }
        }
        steps.push((name, deps));
    }
    if steps.is_empty() {
        return Err(CliError::usage("--steps lists no step"));
    }
    Ok(steps)
}

fn handler(dir: &Path, key: &str, specs: &[String]) -> Result<Vec<PathBuf>, CliError> {
    worker_crate(dir)?;
    let (namespace, name) = key
        .split_once('/')
        .ok_or_else(|| CliError::usage(format!("{key:?}: write the handler as namespace/name")))?;
    snake("namespace", namespace)?;
    snake("handler name", name)?;
    let steps = parse_steps(specs)?;
    let ty = pascal(name);
    let mut body = String::new();
    for (i, (step, deps)) in steps.iter().enumerate() {
        let attribute = match deps.as_slice() {
            [] => "#[step]".to_owned(),
            [one] => format!("#[step(depends_on = {one})]"),
            many => format!("#[step(depends_on = [{}])]", many.join(", ")),
        };
        let (params, value) = if deps.is_empty() {
            (
                format!("ctx: &StepContext<{ty}Input>"),
                format!("format!(\"{step} for {{}}\", ctx.context().id)"),
            )
        } else {
            (
                deps.iter()
                    .map(|d| format!("{d}: String"))
                    .collect::<Vec<_>>()
                    .join(", "),
                format!(
                    "format!(\"{step} after {}\")",
                    deps.iter()
                        .map(|d| format!("{{{d}}}"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            )
        };
        if i > 0 {
            body.push('\n');
        }
        let _ = write!(
            body,
            "    /// What `{step}` does (its description in `handlers` and the API).\n    {attribute}\n    async fn {step}({params}) -> StepResult<String> {{\n        Ok({value})\n    }}\n"
        );
    }
    let last = &steps.last().map(|(s, _)| s.clone()).unwrap_or_default();
    let text = templates::NEW_HANDLER
        .replace("{namespace}", namespace)
        .replace("{name}", name)
        .replace("{Type}", &ty)
        .replace("{steps}", &body)
        .replace("{last}", last);
    let path = write_new(&dir.join("src/handlers").join(format!("{name}.rs")), &text)?;
    let module = dir.join("src/handlers/mod.rs");
    if !module.exists() {
        write_new(&module, templates::HANDLERS_MOD)?;
    }
    append_line(&module, &format!("pub mod {name};"))?;
    ensure_module(dir, "handlers")?;
    Ok(vec![path])
}

fn subscriber(dir: &Path, name: &str) -> Result<Vec<PathBuf>, CliError> {
    worker_crate(dir)?;
    snake("subscriber", name)?;
    let text = templates::NEW_SUBSCRIBER.replace("{Type}", &pascal(name));
    let path = write_new(
        &dir.join("src/subscribers").join(format!("{name}.rs")),
        &text,
    )?;
    let module = dir.join("src/subscribers/mod.rs");
    if !module.exists() {
        write_new(&module, templates::SUBSCRIBERS_MOD)?;
    }
    append_line(&module, &format!("pub mod {name};"))?;
    ensure_module(dir, "subscribers")?;
    Ok(vec![path])
}

/// Adds `mod <name>;` to `src/main.rs` when it is not there.
fn ensure_module(dir: &Path, name: &str) -> Result<(), CliError> {
    let main = dir.join("src/main.rs");
    let text = read(&main)?;
    if text.lines().any(|l| l.trim() == format!("mod {name};")) {
        return Ok(());
    }
    let text = match text.find("\nfn main") {
        Some(at) => format!("{}mod {name};\n{}", &text[..=at], &text[at + 1..]),
        None => format!("mod {name};\n{text}"),
    };
    std::fs::write(&main, text).map_err(|e| io_error(&main, e))
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| io_error(path, e))
}

/// Adds `pub mod <name>;` to a module file, keeping the declarations
/// sorted as rustfmt would.
fn append_line(path: &Path, line: &str) -> Result<(), CliError> {
    let text = read(path)?;
    if text.lines().any(|l| l.trim() == line) {
        return Ok(());
    }
    // The lines before the first declaration, the declarations, and
    // whatever follows them (kept as it is).
    let mut head = String::new();
    let mut modules: Vec<&str> = vec![line];
    let mut tail = String::new();
    for l in text.lines() {
        if l.starts_with("pub mod ") && tail.is_empty() {
            modules.push(l);
        } else if modules.len() == 1 {
            head.push_str(l);
            head.push('\n');
        } else {
            tail.push_str(l);
            tail.push('\n');
        }
    }
    modules.sort_unstable();
    let mut out = head;
    for module in modules {
        out.push_str(module);
        out.push('\n');
    }
    out.push_str(&tail);
    std::fs::write(path, out).map_err(|e| io_error(path, e))
}

fn write_new(path: &Path, text: &str) -> Result<PathBuf, CliError> {
    if path.exists() {
        return Err(CliError::new(
            Exit::Conflict,
            format!("{} already exists; nothing was overwritten", path.display()),
        ));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    }
    std::fs::write(path, text).map_err(|e| io_error(path, e))?;
    Ok(path.to_path_buf())
}

fn io_error(path: &Path, e: std::io::Error) -> CliError {
    CliError::failure(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_chain_unless_told_otherwise() {
        let steps = parse_steps(&["a".into(), "b".into(), "c:a".into(), "d:b+c".into()]).unwrap();
        assert_eq!(
            steps,
            [
                ("a".to_owned(), vec![]),
                ("b".to_owned(), vec!["a".to_owned()]),
                ("c".to_owned(), vec!["a".to_owned()]),
                ("d".to_owned(), vec!["b".to_owned(), "c".to_owned()]),
            ]
        );
        assert!(parse_steps(&["a".into(), "b:z".into()])
            .unwrap_err()
            .message
            .contains("not listed before"));
        assert!(parse_steps(&["Bad".into()]).is_err());
        assert!(parse_steps(&["fn".into()]).is_err());
        assert_eq!(pascal("charge_card"), "ChargeCard");
    }

    #[test]
    fn module_declarations_stay_sorted_and_other_lines_stay() {
        let dir = std::env::temp_dir().join(format!("tasker-scaffold-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mod.rs");
        std::fs::write(&path, "//! Docs.\n\npub mod greet;\n\nfn helper() {}\n").unwrap();
        append_line(&path, "pub mod charge;").unwrap();
        append_line(&path, "pub mod charge;").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "//! Docs.\n\npub mod charge;\npub mod greet;\n\nfn helper() {}\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
