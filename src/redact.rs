//! Redaction: everything the importer knows that must not reach a log, an
//! error message or the status API. [`Secret`] holds a secret value and
//! never shows it; [`url()`] removes the credentials from a URL.

use std::fmt;

use serde::Deserialize;

/// A secret value: never shown by `Debug`, `Display` or the status API.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A URL as it may be shown: its user info (user name and password) becomes
/// `***`, since a token is sometimes written as the user name; a URL that
/// does not parse is not shown at all, since it may be a secret pasted in
/// the wrong place. A comma-separated list (`NATS_URL` of a cluster) is
/// redacted entry by entry.
pub fn url(url: &str) -> String {
    if url.contains(',') {
        return url
            .split(',')
            .map(|u| self::url(u.trim()))
            .collect::<Vec<_>>()
            .join(",");
    }
    match url::Url::parse(url) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_password(None);
                let _ = u.set_username("***");
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_url_is_replaced() {
        assert_eq!(
            url("redis://user:hunter2@redis.example:6379/0"),
            "redis://***@redis.example:6379/0"
        );
        assert_eq!(
            url("https://t0ken@sisu.example/"),
            "https://***@sisu.example/",
            "a token as the user name"
        );
        assert_eq!(
            url("nats://a:pw@n1:4222, nats://n2:4222"),
            "nats://***@n1:4222,nats://n2:4222"
        );
        assert_eq!(
            url("https://sisu.example/kori/api?x=1"),
            "https://sisu.example/kori/api?x=1"
        );
    }

    #[test]
    fn an_unparsable_url_is_not_echoed() {
        assert_eq!(url("hunter2"), "<unparsable URL>");
    }

    #[test]
    fn a_secret_does_not_debug_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
