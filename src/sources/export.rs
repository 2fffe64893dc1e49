//! The paged export kinds (ORI, KORI, ILMO, OSUVA):
//! `GET <endpoint>?since=<ordinal>&limit=<n>` until `hasMore` is false.

use bytes::Bytes;
use futures::Stream;

use super::client::Auth;
use super::page_scan::scan_page;
use super::{Batch, SisuClient, SourceError};
use crate::catalogue::Service;
use crate::entity::Entity;
use crate::redact;

/// The export's pages after `since`, one request per item taken.
pub fn pages(
    client: SisuClient,
    service: Service,
    mut since: i64,
    limit: u32,
) -> impl Stream<Item = Result<Batch, SourceError>> + Send + 'static {
    async_stream::try_stream! {
        loop {
            let started = std::time::Instant::now();
            let url = export_url(&client, &service, since, limit);
            let body = client.get(&service.id, &url, Auth::Credentials).await?;
            let mut batch = parse_page(&service.id, &url, since, &body)?;
            batch.fetched_in = started.elapsed();
            let has_more = batch.has_more;
            let next = batch.greatest_ordinal;
            if batch.entities.is_empty() && !has_more {
                break;
            }
            yield batch;
            if !has_more {
                break;
            }
            since = next;
        }
    }
}

pub(crate) fn export_url(client: &SisuClient, service: &Service, since: i64, limit: u32) -> String {
    format!(
        "{}{}{}?since={since}&limit={limit}",
        client.sis_api_url(),
        service.source.api_prefix(),
        service.path
    )
}

/// Parses and checks one page; the loop guards of SPEC §2 live here.
pub(crate) fn parse_page(
    service: &str,
    url: &str,
    since: i64,
    body: &Bytes,
) -> Result<Batch, SourceError> {
    let malformed = |reason: String| SourceError::Malformed {
        service: service.into(),
        url: redact::url(url),
        reason,
    };
    let page = scan_page(body).map_err(|e| {
        malformed(if e.truncated.is_some() {
            format!(
                "{e}: the answer was cut short (by Sisu or a proxy in between); the next run \
                 asks again, and if this repeats, check the proxy's limits on answer size and time"
            )
        } else {
            format!("not an export page: {e}")
        })
    })?;
    let has_more = page
        .has_more
        .ok_or_else(|| malformed("body has no `hasMore`".into()))?;
    let entities = page
        .entities
        .flatten()
        .ok_or_else(|| malformed("body has no `entities`".into()))?;
    let greatest = match (page.greatest_ordinal.flatten(), entities.is_empty()) {
        (Some(g), _) => g,
        (None, true) => since,
        (None, false) => {
            return Err(malformed(
                "body has entities but no `greatestOrdinal`".into(),
            ))
        }
    };
    let stuck = (has_more && entities.is_empty()) || (!entities.is_empty() && greatest <= since);
    if stuck {
        return Err(SourceError::NoProgress {
            service: service.into(),
            url: redact::url(url),
            since,
            greatest,
            has_more,
            entities: entities.len(),
        });
    }
    let entities = entities
        .into_iter()
        .map(|range| Entity::at(body, range))
        .collect();
    Ok(Batch {
        since,
        greatest_ordinal: greatest,
        has_more,
        entities,
        fetched_in: std::time::Duration::ZERO,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Batch, SourceError> {
        parse_page(
            "PERSON",
            "http://sisu/x",
            10,
            &Bytes::copy_from_slice(body.as_bytes()),
        )
    }

    #[test]
    fn a_page_keeps_entities_byte_for_byte() {
        let b = parse(
            r#"{"hasMore":true,"greatestOrdinal":12,"entities":[{"id":"a", "x" : 1},{"id":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(b.entities[0].get(), r#"{"id":"a", "x" : 1}"#);
        assert_eq!((b.since, b.greatest_ordinal, b.has_more), (10, 12, true));
    }

    #[test]
    fn loop_guards() {
        assert!(matches!(
            parse(r#"{"hasMore":true,"greatestOrdinal":12,"entities":[]}"#),
            Err(SourceError::NoProgress { .. })
        ));
        assert!(matches!(
            parse(r#"{"hasMore":false,"greatestOrdinal":10,"entities":[{"id":"a"}]}"#),
            Err(SourceError::NoProgress { .. })
        ));
        assert!(
            parse(r#"{"hasMore":false,"greatestOrdinal":10,"entities":[]}"#)
                .unwrap()
                .entities
                .is_empty()
        );
    }

    #[test]
    fn a_cut_page_and_a_wrong_type_say_so() {
        let cut = parse(r#"{"hasMore":true,"greatestOrdinal":12,"entities":[{"id":"a"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            cut,
            "PERSON: malformed answer from http://sisu/x: truncated: the page ends at byte 57 \
             in the middle of a string in entity 1 of `entities`: the answer was cut short (by \
             Sisu or a proxy in between); the next run asks again, and if this repeats, check \
             the proxy's limits on answer size and time"
        );
        let wrong = parse(r#"{"hasMore":false,"greatestOrdinal":"12","entities":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            wrong.ends_with(
                "not an export page: `greatestOrdinal` must be an integer, found a string at byte 35"
            ),
            "{wrong}"
        );
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(matches!(
            parse("<html>"),
            Err(SourceError::Malformed { .. })
        ));
        assert!(matches!(
            parse(r#"{"hasMore":false,"greatestOrdinal":1}"#),
            Err(SourceError::Malformed { .. })
        ));
        assert!(matches!(
            parse(r#"{"hasMore":false,"entities":[{"id":1}]}"#),
            Err(SourceError::Malformed { .. })
        ));
    }
}
