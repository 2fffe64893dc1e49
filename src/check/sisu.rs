//! `check`'s Sisu lines: one per selected service, with what one cheap
//! request answered (an export's first entity; a whole-set kind once), the
//! stream capturing the service's subject and the durable consumers that
//! read it. Every service is reported, failed or not.

use std::time::Duration;

use futures::StreamExt;

use super::Check;
use crate::catalogue::{Service, SourceKind};
use crate::sinks::connection::StreamState;
use crate::sinks::consumers::{readers, DurableConsumer};
use crate::sources::{SisuClient, SourceError};

/// How long one Sisu request may take in a check.
const SISU_REQUEST: Duration = Duration::from_secs(30);

/// Requests under way at once: with every service answering slowly, the
/// check still ends within a few request timeouts.
const REQUESTS_AT_ONCE: usize = 4;

/// What the stream and its consumers are to each service.
pub(super) struct Readers<'a> {
    /// `NATS_STREAM`.
    pub stream: &'a str,
    /// The stream as found (absent: the importer creates it).
    pub state: &'a StreamState,
    /// The stream's durable consumers.
    pub durables: &'a [DurableConsumer],
}

impl Readers<'_> {
    /// `ORI_PERSON_CHANNEL captured by SIS_IMPORTER, read by mankeli`.
    fn describe(&self, service: &Service) -> String {
        let subject = &service.subject;
        let stream = self.stream;
        let captured = match self.state {
            StreamState::Absent => {
                format!("{subject}: captured once the importer creates stream {stream}")
            }
            StreamState::Exists { missing, .. } if missing.contains(subject) => {
                format!("{subject} NOT captured by {stream}")
            }
            StreamState::Exists { .. } => format!("{subject} captured by {stream}"),
        };
        let one = std::slice::from_ref(service);
        let names: Vec<&str> = readers(one, self.durables)
            .into_iter()
            .flat_map(|(_, reading)| reading.into_iter().map(|d| d.name.as_str()))
            .collect();
        if names.is_empty() {
            format!("{captured}, no durable consumer reads it")
        } else {
            format!("{captured}, read by {}", names.join(", "))
        }
    }
}

/// One line per service of `services` to `out`, in their order; true when
/// every one passed.
pub(super) async fn lines(
    client: &SisuClient,
    services: &[Service],
    readers: &Readers<'_>,
    out: &mut impl FnMut(Check) -> bool,
) -> bool {
    let asked = asked(services);
    let mut answers =
        futures::stream::iter(asked.iter().map(|s| ask(client, s))).buffered(REQUESTS_AT_ONCE);
    // The answer of each whole-set kind, for its other services.
    let mut kinds: Vec<(SourceKind, String, bool)> = Vec::new();
    let mut passed = true;
    for service in services {
        let outcome = if asked.iter().any(|a| a.id == service.id) {
            let answer = answers
                .next()
                .await
                .unwrap_or_else(|| Err("not asked".into()));
            if !service.source.is_export() {
                kinds.push((service.source, service.id.clone(), answer.is_ok()));
            }
            answer
        } else {
            follow(service, &kinds)
        };
        let outcome = match outcome {
            Ok(found) => Ok(format!(
                "{}: {found}; {}",
                service.id,
                readers.describe(service)
            )),
            Err(wrong) => Err(format!("{}: {wrong}", service.id)),
        };
        passed &= out(Check::new("sisu", outcome));
    }
    passed
}

/// The services asked: every export service, and the first service of
/// each whole-set kind (its other services share the endpoint's kind and
/// are told by it).
fn asked(services: &[Service]) -> Vec<&Service> {
    let mut seen: Vec<SourceKind> = Vec::new();
    services
        .iter()
        .filter(|s| {
            if s.source.is_export() {
                return true;
            }
            let new = !seen.contains(&s.source);
            seen.push(s.source);
            new
        })
        .collect()
}

/// A whole-set service that was not asked: told by its kind's request.
fn follow(service: &Service, kinds: &[(SourceKind, String, bool)]) -> Result<String, String> {
    match kinds.iter().find(|(kind, ..)| *kind == service.source) {
        Some((kind, first, true)) => Ok(format!(
            "{kind:?} answers (asked once per kind, for {first})"
        )),
        Some((kind, first, false)) => Err(format!(
            "not asked: the {kind:?} request for {first} failed (above)"
        )),
        None => Err("not asked".into()),
    }
}

/// One request for `service` (without retries: the check's client makes
/// one attempt), as the line's text without the service id.
async fn ask(client: &SisuClient, service: &Service) -> Result<String, String> {
    let id = &service.id;
    match tokio::time::timeout(SISU_REQUEST, crate::sources::probe(client, service)).await {
        Ok(Ok(n)) => Ok(format!(
            "{n} {}",
            if n == 1 { "entity" } else { "entities" }
        )),
        Ok(Err(SourceError::Forbidden { url, .. })) => Err(format!(
            "Sisu answered 403 Forbidden for {url}: the credentials lack this API; ask \
             Sisu's administrators for access, or add {id} to disabled_services"
        )),
        // One attempt was made: "still failing after 1 attempts" would
        // mislead; say what answered, and where to look.
        Ok(Err(SourceError::Exhausted { url, last, .. })) => {
            let base = if credentials(service) {
                "SIS_API_URL"
            } else {
                "KORI_PUBLIC_API_URL"
            };
            let hint = if last.starts_with("connection failed") || last.starts_with("timeout") {
                format!("; check {base} and that this host may reach it")
            } else {
                String::new()
            };
            Err(format!("{url}: {last}{hint}"))
        }
        Ok(Err(SourceError::Status {
            url, status: 401, ..
        })) if credentials(service) => Err(format!(
            "Sisu answered 401 Unauthorized for {url}: check SIS_API_USER and \
             SIS_API_PASSWORD, PROXY_TOKEN, or API_KEY with KEY_PATH and CERT_PATH"
        )),
        Ok(Err(e)) => {
            let text = e.to_string();
            Err(text
                .strip_prefix(&format!("{id}: "))
                .map_or(text.clone(), str::to_owned))
        }
        Err(_) => Err(format!(
            "no answer within {} s (timeout of the check's request)",
            SISU_REQUEST.as_secs()
        )),
    }
}

/// Whether `service` is asked with the credentials, under `SIS_API_URL`
/// (URN code books and KORI public go without, to `KORI_PUBLIC_API_URL`).
fn credentials(service: &Service) -> bool {
    !matches!(service.source, SourceKind::Urn | SourceKind::KoriPublic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_export_service_is_asked_and_each_whole_set_kind_once() {
        let services = crate::catalogue::builtin();
        let asked: Vec<&str> = asked(&services).iter().map(|s| s.id.as_str()).collect();
        let exports = services.iter().filter(|s| s.source.is_export()).count();
        // URN, GraphQL and KORI public: one each.
        assert_eq!(asked.len(), exports + 3, "{asked:?}");
        for whole_set in ["STUDY_LEVEL", "GRAPHQL_GRADE_SCALES", "CURRICULUM_PERIOD"] {
            assert!(asked.contains(&whole_set), "{asked:?}");
        }
        assert!(!asked.contains(&"COUNTRY"), "{asked:?}");
    }

    #[test]
    fn a_service_says_who_reads_its_subject() {
        let services = crate::catalogue::builtin();
        let durable = DurableConsumer {
            name: "mankeli_PERSON".into(),
            filter_subjects: vec!["ORI_PERSON_CHANNEL".into()],
            ack_wait: Duration::from_secs(30),
            acks: true,
            delivered: 0,
            ack_floor: 0,
            ack_pending: 0,
        };
        let state = StreamState::Exists {
            missing: Vec::new(),
            replicas: 1,
        };
        let readers = Readers {
            stream: "SIS_IMPORTER",
            state: &state,
            durables: std::slice::from_ref(&durable),
        };
        assert_eq!(
            readers.describe(&services[0]),
            "ORI_PERSON_CHANNEL captured by SIS_IMPORTER, read by mankeli_PERSON"
        );
        assert_eq!(
            readers.describe(&services[1]),
            "KORI_ORGANISATION_CHANNEL captured by SIS_IMPORTER, no durable consumer reads it"
        );
    }
}
