//! Fault injection: what the next requests to a service should suffer.
//! Tests hold a [`Faults`] handle and change it while the server runs; the
//! server asks it once per request ([`Faults::decide`]).

use super::changelog::Extra;
use axum::http::HeaderMap;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Shared, thread-safe control of the faults a [`super::FakeSisu`] injects.
/// Cloning is cheap; all clones control the same server. Everything is
/// keyed by service id (`PERSON`, `COUNTRY`, …).
#[derive(Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Faults {
    // Credentials live in here: show nothing of them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    services: HashMap<String, ServiceFaults>,
    latency_all: Duration,
    /// Bytes per second export pages are sent at (0: as fast as TCP goes).
    transfer_rate: u64,
    basic_auth: Option<String>,
    token: Option<String>,
    api_key: Option<String>,
}

#[derive(Default)]
struct ServiceFaults {
    /// One-shot answers, served in the order they were asked for.
    queue: VecDeque<(OneShot, u64)>,
    forbidden: bool,
    stuck: bool,
    latency: Option<Duration>,
    extras: BTreeMap<u64, Extra>,
}

/// A fault answered to a fixed number of requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OneShot {
    /// This status, no `Retry-After`.
    Status(u16),
    /// This status with `Retry-After: <secs>`.
    RateLimit(u16, u64),
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with the first half of a valid body.
    Truncated,
    /// 200 `{"hasMore": false, "greatestOrdinal": 1}`.
    MissingEntities,
    /// One of the rarer ways an answer goes wrong.
    Hostile(Hostile),
}

/// Hostile answers beyond the common ones, for the chaos suite: each is a
/// way a proxy, a load balancer or a bug in Sisu has been seen to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostile {
    /// 200 with an empty body.
    Empty,
    /// The real page with one byte of an entity replaced by 0xFF.
    InvalidUtf8,
    /// 200 `{"hasMore":"yes","greatestOrdinal":"many","entities":{}}`.
    WrongTypes,
    /// The real page without its `greatestOrdinal`.
    NoGreatestOrdinal,
    /// The real page claiming `greatestOrdinal` = the request's `since`.
    GreatestNotAboveSince,
    /// `{"hasMore":true,"greatestOrdinal":<since + 1000>,"entities":[]}`.
    HasMoreWithoutEntities,
    /// The first half of the real page, then the connection is cut.
    ResetMidBody,
    /// The real page sent in 20 pieces spread over this many milliseconds.
    Trickle(u64),
}

/// What to answer one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 401; `basic` adds a `WWW-Authenticate: Basic` challenge.
    Unauthorized { basic: bool },
    /// 403.
    Forbidden,
    /// A one-shot fault (already counted down).
    OneShot(OneShot),
    /// An empty page claiming more to come.
    Stuck,
    /// The real answer.
    Serve,
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not take the
        // server down with it; the state is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<R>(&self, service: &str, f: impl FnOnce(&mut ServiceFaults) -> R) -> R {
        f(self.lock().services.entry(service.to_owned()).or_default())
    }

    fn push(&self, service: &str, fault: OneShot, count: u64) {
        if count > 0 {
            self.with(service, |s| s.queue.push_back((fault, count)));
        }
    }

    /// Answers `status` (e.g. 500, 502, 503 without `Retry-After`) to the
    /// next `count` requests for `service`.
    pub fn fail_next(&self, service: &str, status: u16, count: u64) {
        self.push(service, OneShot::Status(status), count);
    }

    /// Answers `status` (429 or 503) with `Retry-After: retry_after_secs`
    /// to the next `count` requests for `service`.
    pub fn rate_limit_next(&self, service: &str, status: u16, retry_after_secs: u64, count: u64) {
        self.push(service, OneShot::RateLimit(status, retry_after_secs), count);
    }

    /// Answers 403 to every request for `service` until [`Faults::allow`].
    pub fn forbid(&self, service: &str) {
        self.with(service, |s| s.forbidden = true);
    }

    /// Undoes [`Faults::forbid`].
    pub fn allow(&self, service: &str) {
        self.with(service, |s| s.forbidden = false);
    }

    /// Answers 200 with a body that is not JSON to the next `count` requests.
    pub fn malformed_next(&self, service: &str, count: u64) {
        self.push(service, OneShot::Malformed, count);
    }

    /// Answers 200 with the first half of the real body (and a matching
    /// `Content-Length`) to the next `count` requests.
    pub fn truncated_next(&self, service: &str, count: u64) {
        self.push(service, OneShot::Truncated, count);
    }

    /// Answers 200 `{"hasMore": false, "greatestOrdinal": 1}` (no
    /// `entities`) to the next `count` requests.
    pub fn missing_entities_next(&self, service: &str, count: u64) {
        self.push(service, OneShot::MissingEntities, count);
    }

    /// Answers `hostile` to the next `count` requests for `service`.
    pub fn hostile_next(&self, service: &str, hostile: Hostile, count: u64) {
        self.push(service, OneShot::Hostile(hostile), count);
    }

    /// While `stuck`, an export service answers
    /// `{"hasMore": true, "greatestOrdinal": <since>, "entities": []}`.
    pub fn stuck_has_more(&self, service: &str, stuck: bool) {
        self.with(service, |s| s.stuck = stuck);
    }

    /// Delays every answer for `service` (or for all services when `None`)
    /// by `delay`; a service's own latency wins over the global one.
    /// `Duration::ZERO` removes it.
    pub fn latency(&self, service: Option<&str>, delay: Duration) {
        match service {
            Some(service) => self.with(service, |s| s.latency = Some(delay)),
            None => self.lock().latency_all = delay,
        }
    }

    /// Sends export pages at `bytes_per_sec` (a slow link or a slow Sisu
    /// streaming its answer); 0 removes the limit. With [`latency`]
    /// (think time before the first byte) it makes the paging chain of
    /// a real Sisu: think, then transfer.
    ///
    /// [`latency`]: Faults::latency
    pub fn transfer_rate(&self, bytes_per_sec: u64) {
        self.lock().transfer_rate = bytes_per_sec;
    }

    pub(crate) fn rate(&self) -> u64 {
        self.lock().transfer_rate
    }

    /// Change `change_index` of `service` carries `"testError": true`.
    pub fn poison(&self, service: &str, change_index: u64) {
        self.with(service, |s| {
            s.extras.entry(change_index).or_default().poison = true
        });
    }

    /// Change `change_index` of `service` gets a padding field making it at
    /// least `bytes` bytes long.
    pub fn oversize(&self, service: &str, change_index: u64, bytes: usize) {
        self.with(service, |s| {
            s.extras.entry(change_index).or_default().oversize = Some(bytes)
        });
    }

    /// Export and GraphQL requests must carry this basic auth, else 401.
    pub fn require_basic_auth(&self, user: &str, password: &str) {
        let header = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
        self.lock().basic_auth = Some(header);
    }

    /// Export and GraphQL requests must carry header `token: <token>`, else 401.
    pub fn require_token(&self, token: &str) {
        self.lock().token = Some(token.to_owned());
    }

    /// Export and GraphQL requests must carry header `X-Api-Key: <key>`, else 401.
    pub fn require_api_key(&self, key: &str) {
        self.lock().api_key = Some(key.to_owned());
    }

    /// Removes every fault, credential requirement included.
    pub fn clear(&self) {
        *self.lock() = State::default();
    }

    /// Decides the answer to one request for `service`, counting down the
    /// one-shot fault it consumes. `authenticated` says whether the
    /// endpoint checks credentials (export and GraphQL do).
    pub(super) fn decide(
        &self,
        service: &str,
        authenticated: bool,
        headers: &HeaderMap,
    ) -> (Duration, Verdict) {
        let mut state = self.lock();
        let state = &mut *state;
        let faults = state.services.get_mut(service);
        let delay = faults
            .as_ref()
            .and_then(|s| s.latency)
            .unwrap_or(state.latency_all);
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if authenticated {
            let basic_ok = state
                .basic_auth
                .as_deref()
                .is_none_or(|want| header("authorization") == Some(want));
            let token_ok = state
                .token
                .as_deref()
                .is_none_or(|want| header("token") == Some(want));
            let key_ok = state
                .api_key
                .as_deref()
                .is_none_or(|want| header("x-api-key") == Some(want));
            if !(basic_ok && token_ok && key_ok) {
                let basic = state.basic_auth.is_some();
                return (delay, Verdict::Unauthorized { basic });
            }
        }
        let Some(faults) = faults else {
            return (delay, Verdict::Serve);
        };
        if faults.forbidden {
            return (delay, Verdict::Forbidden);
        }
        if let Some((fault, left)) = faults.queue.front_mut() {
            let fault = *fault;
            *left -= 1;
            if *left == 0 {
                faults.queue.pop_front();
            }
            return (delay, Verdict::OneShot(fault));
        }
        (
            delay,
            if faults.stuck {
                Verdict::Stuck
            } else {
                Verdict::Serve
            },
        )
    }

    /// The faulted changes of `service` with index in `from..to`, ascending.
    pub(super) fn extras(&self, service: &str, from: u64, to: u64) -> Vec<(u64, Extra)> {
        if from >= to {
            return Vec::new();
        }
        let state = self.lock();
        match state.services.get(service) {
            Some(s) => s.extras.range(from..to).map(|(k, e)| (*k, *e)).collect(),
            None => Vec::new(),
        }
    }
}

/// Standard base64 with padding (RFC 4648), enough to build the expected
/// `Authorization` header without another dependency.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("user:pässword", "dXNlcjpww6Rzc3dvcmQ="),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn one_shot_faults_are_served_in_order_and_count_down() {
        let faults = Faults::default();
        let headers = HeaderMap::new();
        faults.fail_next("PERSON", 500, 2);
        faults.rate_limit_next("PERSON", 429, 3, 1);
        let verdicts: Vec<_> = (0..4)
            .map(|_| faults.decide("PERSON", true, &headers).1)
            .collect();
        assert_eq!(
            verdicts,
            [
                Verdict::OneShot(OneShot::Status(500)),
                Verdict::OneShot(OneShot::Status(500)),
                Verdict::OneShot(OneShot::RateLimit(429, 3)),
                Verdict::Serve
            ]
        );
        assert_eq!(faults.decide("COUNTRY", false, &headers).1, Verdict::Serve);
    }

    #[test]
    fn credentials_are_checked_only_where_asked() {
        let faults = Faults::default();
        faults.require_token("s3cret");
        let mut headers = HeaderMap::new();
        assert_eq!(
            faults.decide("PERSON", true, &headers).1,
            Verdict::Unauthorized { basic: false }
        );
        assert_eq!(faults.decide("COUNTRY", false, &headers).1, Verdict::Serve);
        headers.insert("token", "s3cret".parse().unwrap());
        assert_eq!(faults.decide("PERSON", true, &headers).1, Verdict::Serve);
        assert!(!format!("{faults:?}").contains("s3cret"));
        faults.clear();
        assert_eq!(
            faults.decide("PERSON", true, &HeaderMap::new()).1,
            Verdict::Serve
        );
    }
}
