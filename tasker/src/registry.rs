//! The registry of task handlers: namespace -> name -> version.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use semver::{Version, VersionReq};

use crate::error::{LookupError, RegistryError, RegistryErrors};
use crate::events::Catalog;
use crate::handler::{Handler, HandlerDefinition, TaskHandler};
use crate::store::{HandlerRecord, UnfinishedHandler};

/// Which version of a handler to use.
///
/// Parses from a string: `""` or `"latest"` for the latest stable version,
/// an exact version (`"2.1.0"`, `"3.0.0-beta.1"`), or a semver requirement
/// (`"^2"`, `">=1.2, <2"`).
///
/// ```
/// use tasker::VersionSelector;
///
/// assert_eq!("latest".parse::<VersionSelector>().unwrap(), VersionSelector::Latest);
/// assert!(matches!("2.1.0".parse().unwrap(), VersionSelector::Exact(_)));
/// assert!(matches!("^2".parse().unwrap(), VersionSelector::Matching(_)));
/// assert!("two".parse::<VersionSelector>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VersionSelector {
    /// The highest version without a pre-release tag.
    #[default]
    Latest,
    /// Exactly this version (pre-releases included).
    Exact(Version),
    /// The highest version matching the requirement (pre-releases only
    /// when the requirement names one, as in Cargo).
    Matching(VersionReq),
}

impl FromStr for VersionSelector {
    type Err = LookupError;

    fn from_str(input: &str) -> Result<Self, LookupError> {
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("latest") {
            return Ok(VersionSelector::Latest);
        }
        if let Ok(version) = Version::parse(trimmed) {
            return Ok(VersionSelector::Exact(version));
        }
        VersionReq::parse(trimmed)
            .map(VersionSelector::Matching)
            .map_err(|e| LookupError::InvalidVersion {
                input: input.to_owned(),
                message: e.to_string(),
            })
    }
}

impl fmt::Display for VersionSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSelector::Latest => f.write_str("the latest stable version"),
            VersionSelector::Exact(v) => write!(f, "version {v}"),
            VersionSelector::Matching(req) => write!(f, "requirement {req}"),
        }
    }
}

impl From<Version> for VersionSelector {
    fn from(version: Version) -> Self {
        VersionSelector::Exact(version)
    }
}

impl From<VersionReq> for VersionSelector {
    fn from(req: VersionReq) -> Self {
        VersionSelector::Matching(req)
    }
}

/// Every task handler known to a worker, by namespace, name and version.
///
/// [`Registry::from_inventory`] collects every `#[task_handler]` linked into
/// the binary.
///
/// ```
/// use tasker::prelude::*;
/// use tasker::{Registry, VersionSelector};
///
/// pub struct Refund;
///
/// #[task_handler(namespace = "payments_docs", version = "1.4.0")]
/// impl Refund {
///     #[step]
///     async fn refund(_ctx: &StepContext) -> StepResult<()> { Ok(()) }
/// }
///
/// let registry = Registry::from_inventory().unwrap();
/// let handler = registry.find("payments_docs", "refund", Some("^1")).unwrap();
/// assert_eq!(handler.version().to_string(), "1.4.0");
/// let err = registry.find("payments_docs", "refnud", None).unwrap_err();
/// assert!(err.to_string().contains("\"refund\""), "{err}");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Registry {
    handlers: BTreeMap<String, BTreeMap<String, BTreeMap<Version, Handler>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every handler linked into the binary. Two handlers with the same
    /// namespace, name and version are an error naming both.
    pub fn from_inventory() -> Result<Self, RegistryErrors> {
        let mut definitions: Vec<&'static HandlerDefinition> = registrations().collect();
        // Link order is arbitrary; sort so errors are reported the same way
        // every time.
        definitions.sort_by_key(|d| (d.namespace, d.name, d.version, d.type_name, d.file, d.line));
        let mut registry = Registry::new();
        let mut errors = Vec::new();
        for definition in definitions {
            if let Err(e) = registry.register(definition) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(registry)
        } else {
            Err(RegistryErrors(errors))
        }
    }

    /// Adds the handler `H`.
    pub fn with<H: TaskHandler>(mut self) -> Result<Self, RegistryError> {
        self.register(H::descriptor())?;
        Ok(self)
    }

    /// Adds a handler definition. Registering the same definition again is
    /// a no-op; another definition with the same triple is an error.
    pub fn register(
        &mut self,
        definition: &'static HandlerDefinition,
    ) -> Result<Handler, RegistryError> {
        let handler = Handler::new(definition)?;
        let versions = self
            .handlers
            .entry(definition.namespace.to_owned())
            .or_default()
            .entry(definition.name.to_owned())
            .or_default();
        if let Some(existing) = versions.get(handler.version()) {
            if std::ptr::eq(existing.definition(), definition) {
                return Ok(existing.clone());
            }
            return Err(RegistryError::Duplicate {
                key: handler.key(),
                first: existing.definition().source(),
                second: definition.source(),
            });
        }
        versions.insert(handler.version().clone(), handler.clone());
        Ok(handler)
    }

    /// Looks up a handler; see [`VersionSelector`] for the choice of
    /// version.
    pub fn get(
        &self,
        namespace: &str,
        name: &str,
        selector: &VersionSelector,
    ) -> Result<&Handler, LookupError> {
        let names = self
            .handlers
            .get(namespace)
            .ok_or_else(|| LookupError::UnknownNamespace {
                namespace: namespace.to_owned(),
                known: self.handlers.keys().cloned().collect(),
            })?;
        let versions = names.get(name).ok_or_else(|| LookupError::UnknownHandler {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            known: names.keys().cloned().collect(),
        })?;
        let found = match selector {
            VersionSelector::Exact(version) => versions.get(version),
            VersionSelector::Latest => versions
                .iter()
                .rev()
                .find(|(v, _)| v.pre.is_empty())
                .map(|(_, h)| h),
            VersionSelector::Matching(req) => versions
                .iter()
                .rev()
                .find(|(v, _)| req.matches(v))
                .map(|(_, h)| h),
        };
        found.ok_or_else(|| {
            let has_pre = versions.keys().any(|v| !v.pre.is_empty());
            let hint = match selector {
                VersionSelector::Exact(_) => String::new(),
                _ if has_pre => "; pre-releases are chosen only when asked for by exact version \
                                 or by a requirement that names a pre-release"
                    .to_owned(),
                _ => String::new(),
            };
            LookupError::NoMatchingVersion {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                selector: selector.to_string(),
                available: versions.keys().map(ToString::to_string).collect(),
                hint,
            }
        })
    }

    /// Looks up a handler with the version as text (`None` for the latest
    /// stable version).
    pub fn find(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<&Handler, LookupError> {
        let selector = version
            .map(str::parse)
            .transpose()?
            .unwrap_or(VersionSelector::Latest);
        self.get(namespace, name, &selector)
    }

    /// Which of the handlers with unfinished tasks in a database (see
    /// [`Store::unfinished_handlers`](crate::Store::unfinished_handlers))
    /// this registry cannot run, and why: not linked in, or linked with a
    /// different shape (fingerprint). A worker refuses these tasks at
    /// start-up; a deploy check fails on them.
    pub fn refusals(&self, unfinished: Vec<UnfinishedHandler>) -> Vec<RefusedHandler> {
        unfinished
            .into_iter()
            .filter_map(|stored| {
                let linked = Version::parse(&stored.version)
                    .ok()
                    .and_then(|v| self.get(&stored.namespace, &stored.name, &v.into()).ok());
                let reason = match linked {
                    None => format!(
                        "handler {}/{}@{} is not linked into this binary",
                        stored.namespace, stored.name, stored.version
                    ),
                    Some(h) if h.fingerprint() != stored.fingerprint => format!(
                        "handler {} has changed shape since these tasks were created (fingerprint \
                         {} in the database, {} in this binary): deploy the old version under its \
                         own version number to finish them",
                        h.key(),
                        stored.fingerprint,
                        h.fingerprint()
                    ),
                    Some(_) => return None,
                };
                Some(RefusedHandler { stored, reason })
            })
            .collect()
    }

    /// The namespaces, sorted.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }

    /// Every handler (every version), sorted by namespace, name, version.
    pub fn handlers(&self) -> impl Iterator<Item = &Handler> {
        self.handlers
            .values()
            .flat_map(BTreeMap::values)
            .flat_map(BTreeMap::values)
    }

    /// The handlers of one namespace (every version).
    pub fn handlers_in<'a>(&'a self, namespace: &str) -> impl Iterator<Item = &'a Handler> + 'a {
        self.handlers
            .get(namespace)
            .into_iter()
            .flat_map(BTreeMap::values)
            .flat_map(BTreeMap::values)
    }

    /// The registered versions of one handler, oldest first.
    pub fn versions<'a>(
        &'a self,
        namespace: &str,
        name: &str,
    ) -> impl Iterator<Item = &'a Version> + 'a {
        self.handlers
            .get(namespace)
            .and_then(|names| names.get(name))
            .into_iter()
            .flat_map(BTreeMap::keys)
    }

    /// Number of registered handler versions.
    pub fn len(&self) -> usize {
        self.handlers().count()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }
}

/// One `#[task_handler]`, collected by `inventory`.
impl Registry {
    /// The events these handlers can publish: the built-ins and every
    /// custom event their steps declare.
    pub fn event_catalog(&self) -> Catalog {
        Catalog::new(self.handlers().flat_map(|handler| {
            handler.steps().iter().flat_map(move |step| {
                step.events()
                    .iter()
                    .map(move |event| (*event, format!("{} {}", handler.key(), step.name())))
            })
        }))
    }
}

#[doc(hidden)]
pub struct Registration(pub &'static HandlerDefinition);

inventory::collect!(Registration);

pub(crate) fn registrations() -> impl Iterator<Item = &'static HandlerDefinition> {
    inventory::iter::<Registration>.into_iter().map(|r| r.0)
}

/// A handler shape that unfinished tasks use but this binary cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedHandler {
    /// What the database holds.
    pub stored: UnfinishedHandler,
    /// Why these tasks will not run here.
    pub reason: String,
}

impl HandlerRecord {
    /// The record of `handler`, as the engine registers it at start-up.
    ///
    /// ```
    /// use tasker::prelude::*;
    /// use tasker::store::HandlerRecord;
    ///
    /// pub struct Ping;
    ///
    /// #[task_handler(namespace = "docs", version = "1.2.0")]
    /// impl Ping {
    ///     #[step]
    ///     async fn ping() -> StepResult<()> { Ok(()) }
    /// }
    ///
    /// let record = HandlerRecord::of(&Ping::handler());
    /// assert_eq!((record.name.as_str(), record.version.as_str()), ("ping", "1.2.0"));
    /// assert_eq!(record.steps, ["ping"]);
    /// ```
    pub fn of(handler: &Handler) -> Self {
        HandlerRecord {
            namespace: handler.namespace().to_owned(),
            name: handler.name().to_owned(),
            version: handler.version().to_string(),
            fingerprint: handler.fingerprint().to_owned(),
            description: handler.description().to_owned(),
            steps: handler
                .steps()
                .iter()
                .map(|s| s.name().to_owned())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::{StepDefinition, StepFuture};
    use crate::input::StepInput;

    fn run(_: usize, _: StepInput) -> StepFuture {
        Box::pin(async { Ok(serde_json::Value::Null) })
    }

    static ONE_STEP: [StepDefinition; 1] = [StepDefinition {
        name: "only",
        description: "",
        depends_on: &[],
        reads: &[],
        retry_limit: None,
        retryable: None,
        timeout: None,
        output_type: "()",
        events: &[],
        transactional: false,
        config: None,
        dependent_systems: &[],
        limit: None,
        branches: &[],
        for_each: None,
        concurrency: None,
        on_item_error: crate::fan_out::OnItemError::Fail,
        line: 1,
    }];

    macro_rules! definition {
        ($name:ident, $ns:literal, $handler:literal, $version:literal, $ty:literal) => {
            static $name: HandlerDefinition = HandlerDefinition {
                namespace: $ns,
                name: $handler,
                version: $version,
                description: "",
                type_name: $ty,
                file: "src/test.rs",
                line: 7,
                context_type: "serde_json::Value",
                steps: &ONE_STEP,
                run_step: run,
                check_context: crate::decode::check_context::<serde_json::Value>,
                config: None,
                step_defaults: None,
                validate: None,
                dependent_systems: &[],
                metadata: &[],
            };
        };
    }

    definition!(V1, "payments", "refund", "1.0.0", "app::RefundV1");
    definition!(V1_5, "payments", "refund", "1.5.2", "app::RefundV1_5");
    definition!(V2, "payments", "refund", "2.0.0", "app::RefundV2");
    definition!(
        V3_BETA,
        "payments",
        "refund",
        "3.0.0-beta.1",
        "app::RefundV3"
    );
    definition!(V2_AGAIN, "payments", "refund", "2.0.0", "app::RefundCopy");
    definition!(OTHER, "inventory", "restock", "0.1.0", "app::Restock");
    definition!(
        BETA_ONLY,
        "labs",
        "experiment",
        "0.2.0-alpha.3",
        "app::Experiment"
    );
    definition!(BAD_VERSION, "labs", "broken", "one", "app::Broken");

    fn registry() -> Registry {
        let mut registry = Registry::new();
        for d in [&V1, &V1_5, &V2, &V3_BETA, &OTHER, &BETA_ONLY] {
            registry.register(d).unwrap();
        }
        registry
    }

    fn version(r: &Registry, selector: &str) -> Result<String, LookupError> {
        r.find("payments", "refund", Some(selector))
            .map(|h| h.version().to_string())
    }

    #[test]
    fn latest_is_the_highest_stable_version() {
        let r = registry();
        assert_eq!(
            r.find("payments", "refund", None)
                .unwrap()
                .version()
                .to_string(),
            "2.0.0"
        );
        assert_eq!(version(&r, "latest").unwrap(), "2.0.0");
    }

    #[test]
    fn exact_versions_include_pre_releases() {
        let r = registry();
        assert_eq!(version(&r, "1.0.0").unwrap(), "1.0.0");
        assert_eq!(version(&r, "3.0.0-beta.1").unwrap(), "3.0.0-beta.1");
        let err = version(&r, "1.2.0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no version of payments/refund matches version 1.2.0; the registered versions are \
             \"1.0.0\", \"1.5.2\", \"2.0.0\", \"3.0.0-beta.1\""
        );
    }

    #[test]
    fn requirements_pick_the_highest_match() {
        let r = registry();
        assert_eq!(version(&r, "^1").unwrap(), "1.5.2");
        assert_eq!(version(&r, "~1.0").unwrap(), "1.0.0");
        assert_eq!(version(&r, ">=1, <2").unwrap(), "1.5.2");
        assert_eq!(version(&r, "*").unwrap(), "2.0.0");
        // Pre-releases only match a requirement that names one.
        assert_eq!(version(&r, ">=3.0.0-beta.0").unwrap(), "3.0.0-beta.1");
        let err = version(&r, "^3").unwrap_err();
        assert!(
            err.to_string().contains("pre-releases are chosen only"),
            "{err}"
        );
    }

    #[test]
    fn only_pre_releases_means_no_latest_with_advice() {
        let r = registry();
        let err = r.find("labs", "experiment", None).unwrap_err();
        assert!(matches!(err, LookupError::NoMatchingVersion { .. }));
        assert!(err.to_string().contains("\"0.2.0-alpha.3\""), "{err}");
        assert!(
            err.to_string().contains("pre-releases are chosen only"),
            "{err}"
        );
        assert_eq!(
            r.find("labs", "experiment", Some("0.2.0-alpha.3"))
                .unwrap()
                .name(),
            "experiment"
        );
    }

    #[test]
    fn unknown_names_list_what_exists() {
        let r = registry();
        assert_eq!(
            r.find("billing", "refund", None).unwrap_err().to_string(),
            "unknown namespace \"billing\"; the registered namespaces are \"inventory\", \"labs\", \"payments\""
        );
        assert_eq!(
            r.find("payments", "refnd", None).unwrap_err().to_string(),
            "no task handler \"refnd\" in namespace \"payments\"; its handlers are \"refund\""
        );
        let err = r
            .find("payments", "refund", Some("version two"))
            .unwrap_err();
        assert!(matches!(err, LookupError::InvalidVersion { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("invalid version \"version two\""),
            "{err}"
        );
    }

    #[test]
    fn duplicates_name_both_sources() {
        let mut r = registry();
        let err = r.register(&V2_AGAIN).unwrap_err();
        assert_eq!(
            err.to_string(),
            "task handler payments/refund@2.0.0 is registered twice: by `app::RefundV2` \
             (src/test.rs:7) and by `app::RefundCopy` (src/test.rs:7); give one of them \
             another version or name"
        );
        // The first registration stays.
        assert_eq!(
            r.find("payments", "refund", Some("2.0.0"))
                .unwrap()
                .definition()
                .type_name,
            "app::RefundV2"
        );
        // The same definition twice is not a conflict.
        r.register(&V2).unwrap();
    }

    #[test]
    fn invalid_definitions_are_refused() {
        let err = Registry::new().register(&BAD_VERSION).unwrap_err();
        assert!(err.to_string().contains("invalid version \"one\""), "{err}");
    }

    #[test]
    fn listing() {
        let r = registry();
        assert_eq!(
            r.namespaces().collect::<Vec<_>>(),
            ["inventory", "labs", "payments"]
        );
        assert_eq!(r.len(), 6);
        assert_eq!(
            r.versions("payments", "refund")
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["1.0.0", "1.5.2", "2.0.0", "3.0.0-beta.1"]
        );
        assert_eq!(
            r.handlers_in("inventory")
                .map(Handler::name)
                .collect::<Vec<_>>(),
            ["restock"]
        );
        assert_eq!(r.handlers_in("nope").count(), 0);
    }
}
