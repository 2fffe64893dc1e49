//! The Sentinel form of `REDIS_URL`:
//! `redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]…]/MASTER[/DB]`,
//! `rediss+sentinel://…` for TLS. The `url` crate reads one host per URL,
//! so the form is taken apart here, saying what is wrong when it does not
//! fit.

use crate::config::Secret;

/// The form, as error messages and the docs show it.
pub const FORM: &str = "redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]…]/MASTER[/DB] \
     (rediss+sentinel:// for TLS)";

/// A sentinel's port when the URL gives none.
pub const DEFAULT_PORT: u16 = 26379;

/// `REDIS_URL` in the Sentinel form, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    /// The sentinels as `(host, port)`, in the order given (asked in it).
    pub sentinels: Vec<(String, u16)>,
    /// The master's name, as in the sentinels' `sentinel monitor` line.
    pub master: String,
    /// The database number, 0 when the URL gives none.
    pub db: i64,
    /// The ACL user, if any (percent-decoded).
    pub username: Option<String>,
    /// The password, if any (percent-decoded): for the master, and for a
    /// sentinel that asks for one (NOAUTH).
    pub password: Option<Secret>,
    /// `rediss+sentinel://`: TLS to the sentinels and to the master.
    pub tls: bool,
    /// `#insecure`: TLS without checking certificates (as with `rediss://`).
    pub insecure: bool,
}

/// Why `REDIS_URL` is not a usable Sentinel URL; never quotes the user info.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadSentinelUrl(String);

/// Whether `url` asks for Redis behind Sentinel (its scheme is
/// `redis+sentinel` or `rediss+sentinel`, in any case).
pub fn is_sentinel(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, _)| {
        scheme.eq_ignore_ascii_case("redis+sentinel")
            || scheme.eq_ignore_ascii_case("rediss+sentinel")
    })
}

impl SentinelUrl {
    /// Takes `url` apart; the error names what is wrong.
    pub fn parse(url: &str) -> Result<SentinelUrl, BadSentinelUrl> {
        let bad = |what: String| Err(BadSentinelUrl(what));
        let Some((scheme, rest)) = url.split_once("://") else {
            return bad("it has no scheme".into());
        };
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "redis+sentinel" => false,
            "rediss+sentinel" => true,
            _ => return bad(format!("the scheme `{scheme}` is not redis+sentinel")),
        };
        let (rest, insecure) = match rest.split_once('#') {
            None => (rest, false),
            Some((rest, "insecure")) => (rest, true),
            Some(_) => return bad("only #insecure may follow `#`".into()),
        };
        if rest.contains('?') {
            return bad("it has a query (`?…`), which the Sentinel form does not take".into());
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        // User info ends at the last `@` (a password may hold `@` encoded
        // or not); hosts never hold one.
        let (user_info, hosts) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (username, password) = match user_info {
            None => (None, None),
            Some(info) => {
                let (user, password) = info.split_once(':').unwrap_or((info, ""));
                let user = crate::redact::percent_decode(user);
                let password = crate::redact::percent_decode(password);
                (
                    (!user.is_empty()).then_some(user),
                    (!password.is_empty()).then(|| Secret::new(password)),
                )
            }
        };
        let sentinels = hosts
            .split(',')
            .map(|entry| host_port(entry.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut segments = path.split('/');
        let master = segments.next().unwrap_or_default();
        if master.is_empty() {
            return bad(
                "it names no master: put the name the sentinels monitor after the hosts \
                 (…:26379/mymaster)"
                    .into(),
            );
        }
        let db = match segments.next() {
            None | Some("") => 0,
            Some(db) => match db.parse::<i64>() {
                Ok(db) if db >= 0 => db,
                _ => return bad(format!("the database `{db}` is not a number")),
            },
        };
        if let Some(extra) = segments.find(|s| !s.is_empty()) {
            return bad(format!(
                "`{extra}` follows the database, which ends the URL"
            ));
        }
        Ok(SentinelUrl {
            sentinels,
            master: master.to_owned(),
            db,
            username,
            password,
            tls,
            insecure,
        })
    }

    /// The sentinels as `host:port` joined by commas, for messages.
    pub fn sentinel_list(&self) -> String {
        self.sentinels
            .iter()
            .map(|(host, port)| format!("{host}:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT` as host and port.
fn host_port(entry: &str) -> Result<(String, u16), BadSentinelUrl> {
    let bad = |what: String| Err(BadSentinelUrl(what));
    if entry.is_empty() {
        return bad("it names no sentinel host: list the sentinels after `//`, \
                    comma-separated (HOST:PORT,HOST:PORT)"
            .into());
    }
    let (host, port) = match entry.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, port)) => match port.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return bad(format!("`{entry}` is not HOST:PORT")),
            },
            None => return bad(format!("`{entry}` lacks its closing `]`")),
        },
        None => match entry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (entry, None),
        },
    };
    if host.is_empty() {
        return bad(format!("`{entry}` has no host name"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return bad(format!("the port of `{entry}` is not a port number")),
        },
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> SentinelUrl {
        SentinelUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn problem(url: &str) -> String {
        SentinelUrl::parse(url).expect_err(url).to_string()
    }

    #[test]
    fn several_sentinels_and_a_master() {
        let url = parse("redis+sentinel://h1:26379,h2:26380, h3/mymaster");
        assert_eq!(
            url.sentinels,
            [
                ("h1".into(), 26379),
                ("h2".into(), 26380),
                ("h3".into(), 26379)
            ]
        );
        assert_eq!(url.master, "mymaster");
        assert_eq!((url.db, url.tls, url.insecure), (0, false, false));
        assert_eq!((&url.username, &url.password), (&None, &None));
        assert_eq!(url.sentinel_list(), "h1:26379,h2:26380,h3:26379");
    }

    #[test]
    fn a_password_a_user_and_a_database() {
        let url = parse("redis+sentinel://:pw@h1:26379,h2:26379/mymaster");
        assert_eq!(url.password, Some(Secret::new("pw")));
        assert_eq!(url.username, None);
        let url = parse("redis+sentinel://importer:p%40ss%2Cw@h1/mymaster/2");
        assert_eq!(url.username.as_deref(), Some("importer"));
        assert_eq!(url.password, Some(Secret::new("p@ss,w")));
        assert_eq!(url.db, 2);
        assert_eq!(parse("redis+sentinel://h1/mymaster/").db, 0);
    }

    #[test]
    fn tls_and_ipv6() {
        let url = parse("rediss+sentinel://:pw@[::1]:26379,[fd00::2]/mymaster#insecure");
        assert!(url.tls && url.insecure);
        assert_eq!(
            url.sentinels,
            [("::1".into(), 26379), ("fd00::2".into(), 26379)]
        );
        assert!(parse("REDISS+SENTINEL://h1/m").tls);
        assert!(is_sentinel("Redis+Sentinel://h1/m"));
        assert!(!is_sentinel("redis://h1:6379/"));
    }

    #[test]
    fn a_bad_form_says_what_is_wrong() {
        let cases = [
            ("redis+sentinel://h1:26379,h2:26379", "names no master"),
            ("redis+sentinel://h1:26379,h2:26379/", "names no master"),
            ("redis+sentinel:///mymaster", "names no sentinel host"),
            ("redis+sentinel://h1,,h2/mymaster", "names no sentinel host"),
            ("redis+sentinel://h1:port/mymaster", "port of `h1:port`"),
            ("redis+sentinel://h1:0/mymaster", "port of `h1:0`"),
            ("redis+sentinel://:26379/mymaster", "`:26379` has no host"),
            ("redis+sentinel://h1/mymaster/two", "database `two`"),
            (
                "redis+sentinel://h1/mymaster/2/x",
                "`x` follows the database",
            ),
            ("redis+sentinel://h1/mymaster?db=2", "query"),
            ("redis+sentinel://h1/mymaster#secure", "#insecure"),
            ("redis+sentinel://[::1/mymaster", "closing `]`"),
            ("sentinel://h1/mymaster", "scheme `sentinel`"),
        ];
        for (url, says) in cases {
            let problem = problem(url);
            assert!(problem.contains(says), "{url}: {problem}");
        }
    }

    #[test]
    fn a_problem_never_quotes_the_password() {
        for url in [
            "redis+sentinel://:hunter2@h1:x/mymaster",
            "redis+sentinel://:hunter2@/mymaster",
            "redis+sentinel://:hunter2@h1/",
        ] {
            assert!(!problem(url).contains("hunter2"), "{url}");
        }
    }
}
