//! Database URLs as they may be shown: passwords hidden.

/// Hides the passwords of a database URL for messages: the one in the
/// user info (`postgres://user:secret@host`) and any given as a query
/// parameter (`?password=secret`, `sslpassword=`).
///
/// ```
/// assert_eq!(
///     tasker_diesel::redact_url("postgres://app:s3cret@db/app"),
///     "postgres://app:***@db/app"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match base.find("://") {
        Some(scheme) => {
            let rest = &base[scheme + 3..];
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let authority = &rest[..authority_end];
            match authority.rfind('@') {
                Some(at) => {
                    let user = authority[..at].split(':').next().unwrap_or_default();
                    let hidden = if authority[..at].contains(':') {
                        ":***"
                    } else {
                        ""
                    };
                    format!("{}{user}{hidden}{}", &base[..scheme + 3], &rest[at..])
                }
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url as redact;

    #[test]
    fn passwords_are_hidden_wherever_they_are() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(
            redact("postgres://app@db/app?password=s3cret&sslmode=require"),
            "postgres://app@db/app?password=***&sslmode=require"
        );
        assert_eq!(
            redact("postgres://db/app?sslpassword=x&user=u&PASSWORD=y"),
            "postgres://db/app?sslpassword=***&user=u&PASSWORD=***"
        );
        assert_eq!(redact("postgres://db/app"), "postgres://db/app");
        let odd = redact("postgres://u:p@ss@db/app");
        assert!(!odd.contains("p@ss") && !odd.contains(":p"), "{odd}");
    }
}
