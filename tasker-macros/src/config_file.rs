//! `#[task_handler(config_file = "config/tasker.yaml")]`: the handler's
//! entries in the application's configuration file, checked while the
//! handler compiles.
//!
//! The file is read relative to the crate's `Cargo.toml`, and every entry
//! of `handlers:` (and of each `environments.<name>.handlers:`) that names
//! this handler (`namespace/name`, or `namespace/name@version` with its
//! version) must fit it: only the settings keys the engine reads, only
//! steps the handler has, and `handler_config` only where a configuration
//! type is declared. A mistake is a compile error at the `config_file`
//! string, naming the file, line, column and key path. The engine checks
//! the same at start-up (values, types and `handler_config`'s fit with its
//! type are only checked there).

use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;
use quote::quote;
use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use syn::LitStr;

use crate::args::suggest;
use crate::parse::Errors;

/// What the check needs to know about the handler.
pub(crate) struct Shape<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) name: &'a str,
    pub(crate) version: &'a str,
    pub(crate) has_config: bool,
    /// Each step's name and whether it declares `config = T`.
    pub(crate) steps: Vec<(&'a str, bool)>,
}

/// The keys of a `handlers:` entry and of a step under it, as the engine's
/// schema has them (`tasker::config::HandlerSettings`, `StepOverride`).
const HANDLER_KEYS: &[&str] = &[
    "retry_limit",
    "retryable",
    "timeout",
    "handler_config",
    "priority",
    "max_execution_time",
    "limit",
    "steps",
];
const STEP_KEYS: &[&str] = &[
    "retry_limit",
    "retryable",
    "timeout",
    "handler_config",
    "priority",
    "limit",
];

/// Checks the file; returns an `include_str!` of it, so that cargo builds
/// the handler again when the file changes.
pub(crate) fn check(
    lit: &LitStr,
    shape: &Shape<'_>,
    source: Option<&Path>,
    errors: &mut Errors,
) -> TokenStream {
    let relative = lit.value();
    // The crate's root first (like `sqlx::migrate!`), then beside the
    // source file (like `include_str!`).
    let root = std::env::var_os("CARGO_MANIFEST_DIR").map(|dir| PathBuf::from(dir).join(&relative));
    let beside = source.and_then(Path::parent).map(|dir| dir.join(&relative));
    let Some(path) = root
        .iter()
        .chain(beside.iter())
        .find(|p| p.is_file())
        .cloned()
    else {
        errors.at(
            lit,
            format!(
                "cannot find the configuration file {relative:?}: it is neither in the crate's \
                 root (the directory of its Cargo.toml) nor beside this source file"
            ),
        );
        return TokenStream::new();
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            errors.at(
                lit,
                format!("cannot read the configuration file {relative:?}: {e}"),
            );
            return TokenStream::new();
        }
    };
    let mut found = Vec::new();
    match MarkedYaml::load_from_str(&text) {
        Err(e) => found.push(format!(
            "{relative}:{}:{}: not valid YAML: {}",
            e.marker().line(),
            e.marker().col() + 1,
            e.info()
        )),
        Ok(docs) => {
            if let Some(root) = docs.first() {
                let mut sections = vec![(String::from("handlers"), get(root, "handlers"))];
                if let Some(YamlData::Mapping(envs)) = get(root, "environments").map(|n| &n.data) {
                    for (env, overlay) in envs {
                        let env = text_of(env).unwrap_or_default();
                        sections.push((
                            format!("environments.{env}.handlers"),
                            get(overlay, "handlers"),
                        ));
                    }
                }
                for (prefix, section) in sections {
                    if let Some(section) = section {
                        check_section(&relative, &prefix, section, shape, &mut found);
                    }
                }
            }
        }
    }
    for problem in found {
        errors.at(lit, problem);
    }
    let absolute = path.display().to_string();
    quote!(
        const _: &str = ::core::include_str!(#absolute);
    )
}

fn check_section(
    file: &str,
    prefix: &str,
    section: &MarkedYaml<'_>,
    shape: &Shape<'_>,
    found: &mut Vec<String>,
) {
    let YamlData::Mapping(entries) = &section.data else {
        return;
    };
    let own = format!("{}/{}", shape.namespace, shape.name);
    for (key, entry) in entries {
        let Some(key_text) = text_of(key) else {
            continue;
        };
        let (path, version) = match key_text.split_once('@') {
            Some((path, version)) => (path, Some(version)),
            None => (key_text.as_str(), None),
        };
        let same_version = version.is_none_or(|v| {
            semver::Version::parse(v).is_ok_and(|v| v.to_string() == shape.version)
        });
        if path != own || !same_version {
            continue;
        }
        let at = |node: &MarkedYaml<'_>, keys: &str, problem: String| {
            format!(
                "{file}:{}:{}: {prefix}.{key_text}{keys}: {problem}",
                node.span.start.line(),
                node.span.start.col() + 1
            )
        };
        let YamlData::Mapping(settings) = &entry.data else {
            continue;
        };
        for (setting, value) in settings {
            let Some(name) = text_of(setting) else {
                continue;
            };
            if !HANDLER_KEYS.contains(&name.as_str()) {
                found.push(at(
                    setting,
                    &format!(".{name}"),
                    unknown_key(&name, HANDLER_KEYS),
                ));
            } else if name == "handler_config" && !shape.has_config {
                found.push(at(
                    setting,
                    ".handler_config",
                    format!(
                        "handler {own} declares no configuration type; add `config = YourType` \
                         to #[task_handler] or remove this key"
                    ),
                ));
            } else if name == "steps" {
                check_steps(value, shape, &mut |node, keys, problem| {
                    found.push(at(node, &format!(".steps{keys}"), problem));
                });
            }
        }
    }
}

fn check_steps(
    steps: &MarkedYaml<'_>,
    shape: &Shape<'_>,
    report: &mut dyn FnMut(&MarkedYaml<'_>, String, String),
) {
    let YamlData::Mapping(steps) = &steps.data else {
        return;
    };
    let names: Vec<&str> = shape.steps.iter().map(|(n, _)| *n).collect();
    for (step, settings) in steps {
        let Some(step_name) = text_of(step) else {
            continue;
        };
        let Some((_, has_config)) = shape.steps.iter().find(|(n, _)| *n == step_name) else {
            let hint = suggest(&step_name, names.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            report(
                step,
                format!(".{step_name}"),
                format!(
                    "the handler has no step `{step_name}`; its steps are {}{hint}",
                    list.join(", ")
                ),
            );
            continue;
        };
        let YamlData::Mapping(settings) = &settings.data else {
            continue;
        };
        for (setting, _) in settings {
            let Some(name) = text_of(setting) else {
                continue;
            };
            let keys = format!(".{step_name}.{name}");
            if !STEP_KEYS.contains(&name.as_str()) {
                report(setting, keys, unknown_key(&name, STEP_KEYS));
            } else if name == "handler_config" && !has_config {
                report(
                    setting,
                    keys,
                    format!(
                        "step `{step_name}` declares no configuration type; add `config = YourType` \
                         to its #[step] or remove this key"
                    ),
                );
            }
        }
    }
}

fn unknown_key(name: &str, allowed: &[&str]) -> String {
    let hint = suggest(name, allowed.iter().copied())
        .map(|s| format!("did you mean `{s}`? "))
        .unwrap_or_default();
    format!(
        "unknown key `{name}`; {hint}the keys here are {}",
        allowed
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The value of `key` in a mapping node.
fn get<'a, 'b>(node: &'a MarkedYaml<'b>, key: &str) -> Option<&'a MarkedYaml<'b>> {
    let YamlData::Mapping(map) = &node.data else {
        return None;
    };
    map.iter()
        .find(|(k, _)| text_of(k).as_deref() == Some(key))
        .map(|(_, v)| v)
}

/// A scalar key as text.
fn text_of(node: &MarkedYaml<'_>) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        _ => None,
    }
}
