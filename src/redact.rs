//! Redaction: everything the importer knows that must not reach a log, an
//! error message or the status API. [`Secret`] holds a secret value and
//! never shows it; [`url()`] removes the credentials from a URL to show
//! it, [`take_credentials`] to hand it to a client; [`log_line`] masks
//! the credentials in whatever a library logs, at any `RUST_LOG`.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;

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
/// redacted entry by entry; a Sentinel URL (`redis+sentinel://` with its
/// hosts comma-separated) loses the user info before its hosts.
pub fn url(url: &str) -> String {
    let sentinel = url
        .split_once("://")
        .is_some_and(|(scheme, _)| scheme.to_ascii_lowercase().ends_with("+sentinel"));
    if sentinel {
        return sentinel_url(url);
    }
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

/// `scheme://userinfo@hosts/…` with `***` as its user info (the user
/// info ends at the last `@` before the path).
fn sentinel_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsable URL>".into();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// Credentials written into a URL's user info, percent-decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlCredentials {
    /// `scheme://token@host` (or `scheme://:token@host`): a value alone
    /// is a token, as NATS clients read it.
    Token(Secret),
    /// `scheme://user:password@host`.
    UserPassword(String, Secret),
}

/// Takes the user info out of `url` and hands it back as credentials, so
/// that the URL can go to a client that prints the URLs it connects to
/// (async-nats does, user info included, at debug).
pub fn take_credentials(url: &mut url::Url) -> Option<UrlCredentials> {
    let user = percent_decode(url.username());
    let password = url.password().map(percent_decode);
    // Both only fail for URLs that cannot have user info at all.
    let _ = url.set_password(None);
    let _ = url.set_username("");
    match (user, password) {
        (user, None) if user.is_empty() => None,
        (user, None) => Some(UrlCredentials::Token(Secret::new(user))),
        (user, Some(token)) if user.is_empty() => Some(UrlCredentials::Token(Secret::new(token))),
        (user, Some(password)) => Some(UrlCredentials::UserPassword(user, Secret::new(password))),
    }
}

/// `%XX` sequences decoded (user info is stored percent-encoded).
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `line` with the user info of every URL in it replaced by `***`: in
/// the text form (`nats://user:pw@host`, every entry of a list) and in
/// the `Debug` form of `url::Url` (`username: "user", password:
/// Some("pw")`), also as escaped inside JSON. Every log line passes
/// through it (see [`Redacting`]), so a library that prints a URL at
/// debug or trace prints no credentials either.
pub fn log_line(line: &str) -> Cow<'_, str> {
    let mut line = mask_authorities(line);
    for field in ["username: ", "password: Some("] {
        if line.contains(field) {
            line = Cow::Owned(mask_debug_field(&line, field));
        }
    }
    line
}

/// Ends a URL's authority (user info and host) in printed text: the
/// characters a URL's user info holds only percent-encoded, and those
/// that end a quoted or escaped string.
fn ends_authority(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '/' | '?' | '#' | '"' | '\\' | '<' | '>' | '`' | '{' | '}'
        )
}

/// Every `scheme://userinfo@host` with `***` as its user info.
fn mask_authorities(line: &str) -> Cow<'_, str> {
    if !line.contains("://") {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let mut end = tail.find(ends_authority).unwrap_or(tail.len());
        if tail[end..].starts_with("//") && tail[..end].ends_with(':') {
            // The next URL of a list: its scheme is not this authority's.
            let scheme = tail[..end - 1]
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                .count();
            end -= 1 + scheme;
        }
        let authority = &tail[..end];
        // A URL's user info ends at the last `@` of its authority.
        match authority.rfind('@') {
            Some(user_info_end) => {
                out.push_str("***");
                out.push_str(&authority[user_info_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// `line` with the quoted value after every `field` (as `url::Url`'s
/// `Debug` writes it, quotes possibly escaped by JSON) replaced by `***`
/// unless empty. Url keeps user info percent-encoded, so the value holds
/// no quote or backslash of its own.
fn mask_debug_field(line: &str, field: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(field) {
        let (head, tail) = rest.split_at(at + field.len());
        out.push_str(head);
        let quote = if tail.starts_with("\\\"") {
            2
        } else if tail.starts_with('"') {
            1
        } else {
            0
        };
        if quote == 0 {
            rest = tail;
            continue;
        }
        out.push_str(&tail[..quote]);
        let value = &tail[quote..];
        let end = value.find(['"', '\\']).unwrap_or(value.len());
        if end > 0 {
            out.push_str("***");
        }
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// A `tracing` writer that passes every log line through [`log_line`]
/// before `W` writes it: the last guard, whatever a library logs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Redacting<W>(pub W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter hands over one whole event per write.
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(log_line(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for Redacting<M>
{
    type Writer = Redacting<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacting(self.0.make_writer())
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
    fn a_sentinel_url_loses_its_user_info_before_the_hosts() {
        assert_eq!(
            url("redis+sentinel://:p,w@ss@h1:26379,h2:26379/mymaster/2"),
            "redis+sentinel://***@h1:26379,h2:26379/mymaster/2"
        );
        assert_eq!(
            url("rediss+sentinel://user:hunter2@h1/mymaster#insecure"),
            "rediss+sentinel://***@h1/mymaster#insecure"
        );
        assert_eq!(
            url("redis+sentinel://h1:26379,h2:26379/mymaster"),
            "redis+sentinel://h1:26379,h2:26379/mymaster"
        );
        assert_eq!(
            log_line("connecting to redis+sentinel://:hunter2@h1:26379,h2:26379/mymaster"),
            "connecting to redis+sentinel://***@h1:26379,h2:26379/mymaster"
        );
    }

    #[test]
    fn an_unparsable_url_is_not_echoed() {
        assert_eq!(url("hunter2"), "<unparsable URL>");
    }

    #[test]
    fn credentials_come_out_of_a_url_decoded() {
        let mut u = url::Url::parse("nats://importer:p%40ss%3Aw@n1:4222").unwrap();
        assert_eq!(
            take_credentials(&mut u),
            Some(UrlCredentials::UserPassword(
                "importer".into(),
                Secret::new("p@ss:w")
            ))
        );
        assert_eq!(u.as_str(), "nats://n1:4222");
        for (with, token) in [("nats://t0k@n1", "t0k"), ("nats://:t0k@n1", "t0k")] {
            let mut u = url::Url::parse(with).unwrap();
            let taken = take_credentials(&mut u);
            assert_eq!(taken, Some(UrlCredentials::Token(Secret::new(token))));
            assert_eq!(u.as_str(), "nats://n1");
        }
        let mut u = url::Url::parse("nats://n1:4222").unwrap();
        assert_eq!(take_credentials(&mut u), None);
    }

    #[test]
    fn a_log_line_loses_the_user_info_of_every_url() {
        let cases = [
            (
                "connecting to nats://importer:pw1@n1:4222,nats://u:pw2@n2 now",
                "connecting to nats://***@n1:4222,nats://***@n2 now",
            ),
            (
                r#"{"url":"redis://:pw3@r:6379/0","x":"a@b"}"#,
                r#"{"url":"redis://***@r:6379/0","x":"a@b"}"#,
            ),
            (
                "server=ServerAddr(Url { scheme: \"nats\", username: \"importer\", password: Some(\"pw4\"), host: None })",
                "server=ServerAddr(Url { scheme: \"nats\", username: \"***\", password: Some(\"***\"), host: None })",
            ),
            (
                r#"{"server":"Url { username: \"u\", password: Some(\"pw5\") }"}"#,
                r#"{"server":"Url { username: \"***\", password: Some(\"***\") }"}"#,
            ),
            (
                "Url { username: \"\", password: None } https://sisu.example/x?y=z@w",
                "Url { username: \"\", password: None } https://sisu.example/x?y=z@w",
            ),
        ];
        for (line, shown) in cases {
            assert_eq!(log_line(line), shown);
        }
        assert!(matches!(log_line("no URL here"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_log_writer_redacts_each_event() {
        let mut writer = Redacting(Vec::new());
        let event = b"DEBUG attempting server=nats://importer:pw@n1:4222\n";
        assert_eq!(writer.write(event).unwrap(), event.len());
        assert_eq!(writer.0, b"DEBUG attempting server=nats://***@n1:4222\n");
    }

    #[test]
    fn a_secret_does_not_debug_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
