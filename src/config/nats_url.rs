//! `NATS_URL`: one server URL or several, comma-separated, each perhaps
//! with credentials in it. Parsed here, where the setting is checked; the
//! NATS sink connects with what this gives.

use crate::redact::{take_credentials, UrlCredentials};

/// One `NATS_URL` entry parsed, its credentials taken out of it.
fn server_addr(url: &str) -> Result<(async_nats::ServerAddr, Option<UrlCredentials>), String> {
    let addr = url.parse::<async_nats::ServerAddr>().map_err(|e| {
        format!(
            "`{}` is not a NATS server URL: {e}",
            crate::redact::url(url)
        )
    })?;
    let mut url = addr.into_inner();
    let credentials = take_credentials(&mut url);
    let addr = async_nats::ServerAddr::from_url(url).map_err(|e| e.to_string())?;
    Ok((addr, credentials))
}

/// The credentials in `NATS_URL`'s first entry that has any.
pub fn url_credentials(urls: &str) -> Option<UrlCredentials> {
    urls.split(',')
        .find_map(|u| server_addr(u.trim()).ok().and_then(|(_, c)| c))
}

/// The servers of `NATS_URL`: one URL or several, comma-separated (the
/// nodes of a cluster; the client fails over between them). Without
/// their user info: async-nats sends none of it (credentials go in
/// `NatsAuth` in `sinks::connection`) but prints the URLs it connects to at debug.
pub fn server_addrs(urls: &str) -> Result<Vec<async_nats::ServerAddr>, String> {
    let addrs: Result<Vec<_>, String> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| server_addr(u).map(|(addr, _)| addr))
        .collect();
    match addrs? {
        a if a.is_empty() => Err("no server given (one URL, or several comma-separated)".into()),
        a => Ok(a),
    }
}
