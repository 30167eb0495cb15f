//! Authentication (who is calling) and authorization (may they do this).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::HeaderMap;
use serde::Deserialize;

/// An authenticated caller and the permissions they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who (a user, a service).
    pub subject: String,
    /// `resource:action` permissions; `resource:*` and `*` are wildcards.
    /// A permission may be limited to one namespace's handlers
    /// (`tasker.task:retry@payments`) or one handler's
    /// (`tasker.task:retry@payments/refund`): see [`Principal::holds_on`].
    pub permissions: Vec<String>,
}

/// What an operation touches, for an [`Authorizer`] that decides by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resource<'a> {
    /// Nothing of one handler's: the health status, metrics, GraphQL
    /// introspection.
    Global,
    /// One handler's tasks or definition: the task or step an action
    /// touches belongs to a task of this handler (`task_id`: that task, for
    /// a task or step action).
    Handler {
        /// The handler's namespace.
        namespace: &'a str,
        /// The handler's name.
        name: &'a str,
        /// The task, when the action touches one.
        task_id: Option<crate::TaskId>,
    },
}

impl Principal {
    /// Whether a held permission covers `permission`.
    ///
    /// ```
    /// use tasker::api::Principal;
    /// let p = Principal { subject: "ci".into(), permissions: vec!["tasker.task:*".into(), "tasker.handler:index".into()] };
    /// assert!(p.holds("tasker.task:create"));
    /// assert!(p.holds("tasker.handler:index"));
    /// assert!(!p.holds("tasker.workflow_step:retry"));
    /// ```
    pub fn holds(&self, permission: &str) -> bool {
        self.permissions
            .iter()
            .any(|held| !held.contains('@') && covers(held, permission))
    }

    /// Whether a held permission covers `permission` on `resource`: one
    /// held without a scope, or one scoped to the resource's namespace
    /// (`...@payments`) or handler (`...@payments/refund`). A scoped
    /// permission covers no [`Resource::Global`] operation.
    ///
    /// ```
    /// use tasker::api::{Principal, Resource};
    /// let p = Principal {
    ///     subject: "payments-oncall".into(),
    ///     permissions: vec!["tasker.task:show".into(), "tasker.task:retry@payments".into(),
    ///                       "tasker.task:cancel@payments/refund".into()],
    /// };
    /// let refund = Resource::Handler { namespace: "payments", name: "refund", task_id: None };
    /// let charge = Resource::Handler { namespace: "payments", name: "charge", task_id: None };
    /// let ship = Resource::Handler { namespace: "shipping", name: "ship", task_id: None };
    /// assert!(p.holds_on("tasker.task:show", &ship));
    /// assert!(p.holds_on("tasker.task:retry", &charge) && !p.holds_on("tasker.task:retry", &ship));
    /// assert!(p.holds_on("tasker.task:cancel", &refund) && !p.holds_on("tasker.task:cancel", &charge));
    /// assert!(!p.holds("tasker.task:retry"), "not everywhere");
    /// assert!(p.holds_anywhere("tasker.task:retry"));
    /// ```
    pub fn holds_on(&self, permission: &str, resource: &Resource<'_>) -> bool {
        self.permissions
            .iter()
            .any(|held| match held.split_once('@') {
                None => covers(held, permission),
                Some((held, scope)) => match resource {
                    Resource::Global => false,
                    Resource::Handler {
                        namespace, name, ..
                    } => {
                        covers(held, permission)
                            && match scope.split_once('/') {
                                None => scope == *namespace,
                                Some((ns, handler)) => ns == *namespace && handler == *name,
                            }
                    }
                },
            })
    }

    /// Whether a held permission covers `permission` on some resource
    /// (scoped or not): what the gate checks before an operation that
    /// then checks its resource with [`holds_on`](Self::holds_on).
    pub fn holds_anywhere(&self, permission: &str) -> bool {
        self.permissions.iter().any(|held| {
            covers(
                held.split_once('@').map_or(held.as_str(), |(h, _)| h),
                permission,
            )
        })
    }
}

/// Whether the held permission `held` (without a scope) covers `permission`:
/// the same, `resource:*` or `*`.
fn covers(held: &str, permission: &str) -> bool {
    let resource = permission.split_once(':').map_or(permission, |(r, _)| r);
    held == "*" || held == permission || held.strip_suffix(":*").is_some_and(|r| r == resource)
}

/// Why a request is not authenticated (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credentials.
    #[error("no credentials: send `Authorization: Bearer <token>`")]
    Missing,
    /// Credentials that are not valid.
    #[error("invalid credentials: {0}")]
    Invalid(String),
    /// A token past its expiry.
    #[error("the token has expired; get a new one")]
    Expired,
}

/// The future an [`Authenticator`] returns.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Principal, AuthError>> + Send + 'a>>;

/// Establishes who is calling, from the request headers. Implement it to
/// plug in your own scheme (session lookup, token introspection, ...).
pub trait Authenticator: Send + Sync + 'static {
    /// The caller, or why not.
    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> AuthFuture<'a>;
}

/// Decides whether a principal may use a permission, and on what.
///
/// The API asks twice for an operation that touches one handler's tasks
/// or definition (every `tasker.task`, `tasker.workflow_step`,
/// `tasker.handler` and `tasker.analytics` permission): [`authorize`] at
/// the door (may the caller use it on anything?), then [`authorize_on`]
/// with the handler and task it touches, once they are known; lists keep
/// only what the caller may see. Every other operation asks
/// [`authorize_on`] with [`Resource::Global`] only.
///
/// A rule such as "may retry tasks of `payments` only":
///
/// ```
/// use tasker::api::{Authorizer, Principal, Resource};
///
/// struct PaymentsOnCall;
///
/// impl Authorizer for PaymentsOnCall {
///     fn authorize(&self, principal: &Principal, permission: &str) -> bool {
///         principal.holds(permission) || permission == "tasker.task:retry"
///     }
///     fn authorize_on(&self, principal: &Principal, permission: &str, resource: &Resource<'_>) -> bool {
///         principal.holds(permission)
///             || (permission == "tasker.task:retry"
///                 && matches!(resource, Resource::Handler { namespace: "payments", .. }))
///     }
/// }
/// ```
///
/// The built-in [`PermissionAuthorizer`] writes such rules as scoped
/// permissions instead (`tasker.task:retry@payments`).
///
/// [`authorize`]: Authorizer::authorize
/// [`authorize_on`]: Authorizer::authorize_on
pub trait Authorizer: Send + Sync + 'static {
    /// Whether `principal` may perform `permission` (`resource:action`) on
    /// some resource.
    fn authorize(&self, principal: &Principal, permission: &str) -> bool;

    /// Whether `principal` may perform `permission` on `resource`. By
    /// default, [`authorize`](Self::authorize)'s answer, whatever the
    /// resource.
    fn authorize_on(
        &self,
        principal: &Principal,
        permission: &str,
        resource: &Resource<'_>,
    ) -> bool {
        let _ = resource;
        self.authorize(principal, permission)
    }
}

/// The default authorizer: the principal must hold the permission, for a
/// handler's operations possibly scoped to its namespace or to it
/// ([`Principal::holds_on`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct PermissionAuthorizer;

impl Authorizer for PermissionAuthorizer {
    fn authorize(&self, principal: &Principal, permission: &str) -> bool {
        principal.holds_anywhere(permission)
    }

    fn authorize_on(
        &self,
        principal: &Principal,
        permission: &str,
        resource: &Resource<'_>,
    ) -> bool {
        principal.holds_on(permission, resource)
    }
}

/// No authentication: every caller is `anonymous` with every permission.
/// For local use only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAuthentication;

impl Authenticator for NoAuthentication {
    fn authenticate<'a>(&'a self, _headers: &'a HeaderMap) -> AuthFuture<'a> {
        Box::pin(async {
            Ok(Principal {
                subject: "anonymous".to_owned(),
                permissions: vec!["*".to_owned()],
            })
        })
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Invalid("the Authorization header is not text".into()))?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::Invalid("expected `Authorization: Bearer <token>`".into()))
}

/// Shortest static API token accepted, in characters.
pub const MIN_TOKEN_CHARS: usize = 24;

/// Static API tokens, each standing for a *named* principal.
///
/// A token is a secret, never an identity: only its SHA-256 digest is kept,
/// presented tokens are compared digest to digest in constant time, and
/// only the name reaches the audit trail, logs and responses. `Debug`
/// shows names only.
///
/// ```
/// use tasker::api::StaticTokens;
///
/// let tokens = StaticTokens::parse(
///     "ops:0123456789abcdef0123456789abcdef:*;\
///      reporting:fedcba9876543210fedcba9876543210:tasker.task:index,tasker.task:show",
/// )
/// .unwrap();
/// assert_eq!(tokens.names(), ["ops", "reporting"]);
/// assert!(!format!("{tokens:?}").contains("0123456789"));
///
/// let err = StaticTokens::parse("ops:short:*").unwrap_err();
/// assert!(err.contains("at least 24"), "{err}");
/// assert!(!err.contains("short"), "the token must not be echoed: {err}");
/// ```
#[derive(Clone, Default)]
pub struct StaticTokens {
    tokens: Vec<([u8; 32], Principal)>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokens")
            .field("names", &self.names())
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// Compares two digests in time independent of where they differ.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'))
}

impl StaticTokens {
    /// No tokens.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `token` for the principal `name` with `permissions`. The name
    /// is what the audit trail records; the token is kept only as a digest.
    ///
    /// Use [`StaticTokens::try_token`] to get an error instead of a panic
    /// for a bad name or a short token.
    ///
    /// # Panics
    /// When the name is not 1-64 of `[A-Za-z0-9_.@-]` or the token is
    /// shorter than [`MIN_TOKEN_CHARS`].
    #[must_use]
    pub fn token(
        self,
        name: impl Into<String>,
        token: impl AsRef<str>,
        permissions: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.try_token(name, token, permissions)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Adds a token, or says why it cannot be (without echoing it).
    pub fn try_token(
        mut self,
        name: impl Into<String>,
        token: impl AsRef<str>,
        permissions: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, String> {
        let name = name.into();
        let token = token.as_ref();
        if !valid_name(&name) {
            return Err(format!(
                "API token name {name:?} is not 1-64 of letters, digits, `_`, `-`, `.`, `@`"
            ));
        }
        if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(char::is_whitespace) {
            return Err(format!(
                "the API token of `{name}` must be at least {MIN_TOKEN_CHARS} characters without \
                 spaces; generate one with `openssl rand -hex 32`"
            ));
        }
        let digest = digest(token);
        if self.tokens.iter().any(|(d, _)| same_digest(d, &digest)) {
            return Err(format!(
                "the API token of `{name}` is also given to another name"
            ));
        }
        if self.tokens.iter().any(|(_, p)| p.subject == name) {
            return Err(format!("the API token name `{name}` is used twice"));
        }
        self.tokens.push((
            digest,
            Principal {
                subject: name,
                permissions: permissions.into_iter().map(Into::into).collect(),
            },
        ));
        Ok(self)
    }

    /// Parses `name:token:perm,perm;name2:token2:*` (entries separated by
    /// `;` or newlines; blank lines and `#` comments skipped), the format
    /// of `TASKER_API_TOKENS` and of a tokens file. Errors name the entry
    /// by position and name, never by token.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut tokens = StaticTokens::new();
        let entries = spec
            .split(['\n', ';'])
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with('#'));
        for (n, entry) in entries.enumerate() {
            let mut fields = entry.splitn(3, ':');
            let (Some(name), Some(token), Some(permissions)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(format!(
                    "API token entry {} is not `name:token:permission,permission` \
                     (e.g. `ops:<token>:tasker.task:*`)",
                    n + 1
                ));
            };
            let permissions: Vec<&str> = permissions
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            tokens = tokens.try_token(name.trim(), token.trim(), permissions)?;
        }
        if tokens.tokens.is_empty() {
            return Err("no API tokens given".to_owned());
        }
        Ok(tokens)
    }

    /// Reads [`StaticTokens::parse`]'s format from a file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, String> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read API tokens from {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The principals' names, in the order given.
    pub fn names(&self) -> Vec<&str> {
        self.tokens
            .iter()
            .map(|(_, p)| p.subject.as_str())
            .collect()
    }
}

impl Authenticator for StaticTokens {
    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> AuthFuture<'a> {
        Box::pin(async move {
            let presented = digest(bearer(headers)?);
            // Compare with every token, so the time taken does not tell
            // which (or whether one) matched.
            let mut found = None;
            for (digest, principal) in &self.tokens {
                if same_digest(digest, &presented) {
                    found = Some(principal);
                }
            }
            found
                .cloned()
                .ok_or_else(|| AuthError::Invalid("unknown API token".into()))
        })
    }
}

/// JWT bearer tokens: signature, expiry, issuer and audience checked. The
/// subject is the `sub` claim, the permissions the `permissions` claim (a
/// list of strings).
#[derive(Clone)]
pub struct JwtAuthenticator {
    key: Arc<jsonwebtoken::DecodingKey>,
    validation: jsonwebtoken::Validation,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("algorithms", &self.validation.algorithms)
            .finish()
    }
}

/// Shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: a key of at
/// least the hash's size).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    permissions: Vec<String>,
}

impl JwtAuthenticator {
    /// HMAC-SHA256 tokens signed with `secret`, issued by `issuer` for
    /// `audience`. Refuses a secret shorter than
    /// [`MIN_HS256_SECRET_BYTES`]: anyone could guess it and mint tokens.
    ///
    /// ```
    /// use tasker::api::JwtAuthenticator;
    /// assert!(JwtAuthenticator::hs256(b"", "issuer", "tasker").is_err());
    /// assert!(JwtAuthenticator::hs256(&[7u8; 32], "issuer", "tasker").is_ok());
    /// ```
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Result<Self, String> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(format!(
                "the HS256 JWT secret is {} bytes; it must be at least {MIN_HS256_SECRET_BYTES} \
                 (generate one with `openssl rand -hex 32`)",
                secret.len()
            ));
        }
        Ok(Self::with_key(
            jsonwebtoken::DecodingKey::from_secret(secret),
            jsonwebtoken::Algorithm::HS256,
            issuer,
            audience,
        ))
    }

    /// Accepts `exp` and `nbf` this far off the server's clock (default
    /// 0: none), for issuers whose clocks drift.
    #[must_use]
    pub fn with_leeway(mut self, leeway: std::time::Duration) -> Self {
        self.validation.leeway = leeway.as_secs();
        self
    }

    /// RSA-SHA256 tokens verified with a PEM public key.
    pub fn rs256_pem(public_key_pem: &[u8], issuer: &str, audience: &str) -> Result<Self, String> {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem)
            .map_err(|e| format!("invalid RSA public key: {e}"))?;
        Ok(Self::with_key(
            key,
            jsonwebtoken::Algorithm::RS256,
            issuer,
            audience,
        ))
    }

    fn with_key(
        key: jsonwebtoken::DecodingKey,
        algorithm: jsonwebtoken::Algorithm,
        issuer: &str,
        audience: &str,
    ) -> Self {
        let mut validation = jsonwebtoken::Validation::new(algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 0;
        JwtAuthenticator {
            key: Arc::new(key),
            validation,
        }
    }
}

impl Authenticator for JwtAuthenticator {
    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> AuthFuture<'a> {
        Box::pin(async move {
            let token = bearer(headers)?;
            let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
                |e| {
                    use jsonwebtoken::errors::ErrorKind;
                    match e.kind() {
                        ErrorKind::ExpiredSignature => AuthError::Expired,
                        ErrorKind::ImmatureSignature => {
                            AuthError::Invalid("the token is not valid yet (nbf)".into())
                        }
                        ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".into()),
                        ErrorKind::InvalidIssuer => AuthError::Invalid("wrong issuer".into()),
                        ErrorKind::InvalidAudience => AuthError::Invalid("wrong audience".into()),
                        _ => AuthError::Invalid("malformed token".into()),
                    }
                },
            )?;
            Ok(Principal {
                subject: data.claims.sub,
                permissions: data.claims.permissions,
            })
        })
    }
}
