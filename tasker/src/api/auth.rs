//! Authentication (who is calling) and authorization (may they do this).

use std::collections::HashMap;
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
    pub permissions: Vec<String>,
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
        let resource = permission.split_once(':').map_or(permission, |(r, _)| r);
        self.permissions.iter().any(|held| {
            held == "*"
                || held == permission
                || held.strip_suffix(":*").is_some_and(|r| r == resource)
        })
    }
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

/// Decides whether a principal may use a permission.
pub trait Authorizer: Send + Sync + 'static {
    /// Whether `principal` may perform `permission` (`resource:action`).
    fn authorize(&self, principal: &Principal, permission: &str) -> bool;
}

/// The default coordinator: the principal must hold the permission.
#[derive(Debug, Clone, Copy, Default)]
pub struct PermissionAuthorizer;

impl Authorizer for PermissionAuthorizer {
    fn authorize(&self, principal: &Principal, permission: &str) -> bool {
        principal.holds(permission)
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

/// Static API tokens, each standing for a principal.
#[derive(Debug, Clone, Default)]
pub struct StaticTokens {
    tokens: HashMap<String, Principal>,
}

impl StaticTokens {
    /// No tokens.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a token for `subject` with `permissions`.
    #[must_use]
    pub fn token(
        mut self,
        token: impl Into<String>,
        subject: impl Into<String>,
        permissions: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.tokens.insert(
            token.into(),
            Principal {
                subject: subject.into(),
                permissions: permissions.into_iter().map(Into::into).collect(),
            },
        );
        self
    }
}

impl Authenticator for StaticTokens {
    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> AuthFuture<'a> {
        Box::pin(async move {
            let token = bearer(headers)?;
            self.tokens
                .get(token)
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

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    permissions: Vec<String>,
}

impl JwtAuthenticator {
    /// HMAC-SHA256 tokens signed with `secret`, issued by `issuer` for
    /// `audience`.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self::with_key(
            jsonwebtoken::DecodingKey::from_secret(secret),
            jsonwebtoken::Algorithm::HS256,
            issuer,
            audience,
        )
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
