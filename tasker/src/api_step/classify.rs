//! What an HTTP answer means for the step: retry (and when), or fail.
//!
//! Pure functions of the status, the headers and the (capped) body, so the
//! rules are tested without a server and read in one place.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::StatusCode;

use crate::StepError;

/// How long a server asks us to wait, from a `Retry-After` value: a number
/// of seconds or an HTTP date (RFC 9110 §10.2.3), measured from `now`.
///
/// A date in the past means "now" (zero). An unreadable value gives `None`,
/// so the step's own backoff applies. The caller caps the result.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use tasker::api_step::parse_retry_after;
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now), Some(Duration::from_secs(60)));
/// assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More seconds than fit in a u64 is "a very long time": the cap
        // decides.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The error class of each kind of failure, as shown in events and the API.
pub(crate) mod class {
    pub(crate) const RATE_LIMITED: &str = "ApiRateLimited";
    pub(crate) const UNAVAILABLE: &str = "ApiUnavailable";
    pub(crate) const SERVER_ERROR: &str = "ApiServerError";
    pub(crate) const CLIENT_ERROR: &str = "ApiClientError";
    pub(crate) const TIMEOUT: &str = "ApiTimeout";
    pub(crate) const CONNECTION: &str = "ApiConnection";
    pub(crate) const REDIRECT: &str = "ApiRedirect";
    pub(crate) const RESPONSE_INVALID: &str = "ApiResponseInvalid";
    pub(crate) const RESPONSE_TOO_LARGE: &str = "ApiResponseTooLarge";
    pub(crate) const REQUEST_INVALID: &str = "ApiRequestInvalid";
}

/// A response body as far as it was read: at most the cap, and whether
/// there was more.
pub(crate) struct BodyPrefix<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) truncated: bool,
}

impl std::fmt::Display for BodyPrefix<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(self.bytes);
        let text = text.trim();
        if text.is_empty() {
            return f.write_str("(empty body)");
        }
        f.write_str(text)?;
        if self.truncated {
            write!(f, " [body cut at {} bytes]", self.bytes.len())?;
        }
        Ok(())
    }
}

/// The step error for a non-success answer.
///
/// - 429 and 503: retryable, after `Retry-After` (capped at `cap`) when the
///   server sends one;
/// - 408 and every other 5xx: retryable (honouring `Retry-After` too);
/// - 3xx: permanent (redirects are not followed: they could carry the
///   credentials to another host);
/// - every other 4xx, and anything else: permanent.
///
/// The body (already cut to the configured size) is part of the message.
pub(crate) fn answer_error(
    target: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: BodyPrefix<'_>,
    cap: Duration,
    now: SystemTime,
) -> StepError {
    let answered = format!("{target} answered {}", status_text(status));
    let wait = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now))
        .map(|d| d.min(cap));
    let retryable = |class: &'static str, message: String| {
        let error = StepError::retryable(message).with_class(class);
        match wait {
            Some(delay) => error.with_retry_after(delay),
            None => error,
        }
    };
    match status.as_u16() {
        429 => retryable(class::RATE_LIMITED, format!("{answered}: {body}")),
        503 => retryable(class::UNAVAILABLE, format!("{answered}: {body}")),
        408 => retryable(class::TIMEOUT, format!("{answered}: {body}")),
        500..=599 => retryable(class::SERVER_ERROR, format!("{answered}: {body}")),
        300..=399 => {
            let location = headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(without_query)
                .unwrap_or("(no Location header)");
            StepError::permanent(format!(
                "{answered}, redirecting to {location}; redirects are not followed (they could \
                 carry the credentials to another host): set `base_url` to the final address"
            ))
            .with_class(class::REDIRECT)
        }
        400..=499 => {
            StepError::permanent(format!("{answered}: {body}")).with_class(class::CLIENT_ERROR)
        }
        _ => StepError::permanent(format!("{answered}, which is not an answer a step can use"))
            .with_class(class::RESPONSE_INVALID),
    }
}

/// The step error for a request that got no answer.
pub(crate) fn transport_error(target: &str, timeout: Duration, error: reqwest::Error) -> StepError {
    let error = error.without_url();
    let cause = causes(&error);
    if error.is_builder() {
        StepError::permanent(format!("{target} could not be sent: {cause}"))
            .with_class(class::REQUEST_INVALID)
    } else if error.is_timeout() {
        StepError::retryable(format!(
            "{target} got no answer within {} ({cause})",
            humantime::format_duration(timeout)
        ))
        .with_class(class::TIMEOUT)
    } else if error.is_connect() {
        StepError::retryable(format!("{target}: could not connect ({cause})"))
            .with_class(class::CONNECTION)
    } else {
        StepError::retryable(format!("{target}: the exchange broke off ({cause})"))
            .with_class(class::CONNECTION)
    }
}

/// An error and its sources, joined: reqwest's own message alone ("error
/// sending request") hides the reason ("Connection refused").
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// A URL without its query and fragment, which may hold secrets.
pub(crate) fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use std::time::UNIX_EPOCH;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_445_412_480)
    }

    fn error(status: u16, retry_after: Option<&str>) -> StepError {
        let mut headers = HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        }
        let body = BodyPrefix {
            bytes: b"{\"error\":\"nope\"}",
            truncated: false,
        };
        answer_error(
            "POST https://api.test/v1/charges",
            StatusCode::from_u16(status).unwrap(),
            &headers,
            body,
            Duration::from_secs(300),
            now(),
        )
    }

    #[test]
    fn rate_limits_and_unavailability_wait_as_asked_within_the_cap() {
        let e = error(429, Some("7"));
        assert!(e.is_retryable());
        assert_eq!(e.class(), "ApiRateLimited");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let e = error(503, Some("Wed, 21 Oct 2015 07:30:00 GMT"));
        assert_eq!(e.class(), "ApiUnavailable");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
        // A server asking for a day gets the cap.
        assert_eq!(
            error(429, Some("86400")).retry_after(),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            error(429, Some("99999999999999999999999")).retry_after(),
            Some(Duration::from_secs(300))
        );
        // Unreadable or absent: the step's backoff decides.
        assert_eq!(error(429, Some("later")).retry_after(), None);
        assert!(error(429, Some("later")).is_retryable());
        assert_eq!(error(503, None).retry_after(), None);
        assert_eq!(error(429, Some("-5")).retry_after(), None);
    }

    #[test]
    fn server_errors_retry_and_client_errors_do_not() {
        for status in [500, 502, 504, 599] {
            let e = error(status, None);
            assert!(e.is_retryable(), "{status}");
            assert_eq!(e.class(), "ApiServerError");
        }
        assert_eq!(error(408, None).class(), "ApiTimeout");
        assert!(error(408, None).is_retryable());
        for status in [400, 401, 403, 404, 409, 422] {
            let e = error(status, Some("5"));
            assert!(!e.is_retryable(), "{status}");
            assert_eq!(e.class(), "ApiClientError");
            assert!(
                e.message().contains("{\"error\":\"nope\"}"),
                "{}",
                e.message()
            );
        }
        assert_eq!(
            error(400, None).message(),
            "POST https://api.test/v1/charges answered 400 Bad Request: {\"error\":\"nope\"}"
        );
    }

    #[test]
    fn redirects_are_permanent_and_never_show_a_query() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LOCATION,
            HeaderValue::from_static("https://elsewhere.test/x?token=abc"),
        );
        let e = answer_error(
            "GET https://api.test/a",
            StatusCode::FOUND,
            &headers,
            BodyPrefix {
                bytes: b"",
                truncated: false,
            },
            Duration::from_secs(1),
            now(),
        );
        assert!(!e.is_retryable());
        assert_eq!(e.class(), "ApiRedirect");
        assert!(
            e.message().contains("https://elsewhere.test/x;"),
            "{}",
            e.message()
        );
        assert!(!e.message().contains("token"));
    }

    #[test]
    fn a_cut_body_says_so() {
        let body = BodyPrefix {
            bytes: b"abc",
            truncated: true,
        };
        assert_eq!(body.to_string(), "abc [body cut at 3 bytes]");
        let empty = BodyPrefix {
            bytes: b" \n",
            truncated: false,
        };
        assert_eq!(empty.to_string(), "(empty body)");
    }
}
