//! The paged export kinds (ORI, KORI, ILMO, OSUVA):
//! `GET <endpoint>?since=<ordinal>&limit=<n>` until `hasMore` is false.

use bytes::Bytes;
use futures::Stream;

use super::page_head::{read_head, Head};
use super::page_scan::scan_page;
use super::{Batch, SisuClient, SourceError};
use crate::catalogue::Service;
use crate::entity::Entity;
use crate::pipeline::identity::{identity_names, key_of};
use crate::redact;

/// The export's pages after `since`. Sisu's paging is a chain (each
/// request needs the previous page's `greatestOrdinal`), so the next
/// request goes out as soon as the page being read shows its paging
/// fields, while its entities are still arriving (`page_head`): the next
/// page's think time overlaps this page's transfer. At most one page is
/// asked for ahead of the one being read, and it is used only when the
/// checked page confirms its cursor; a page that turns out malformed or
/// cut fails the stream exactly as before, the early answer discarded.
/// When the fields come after `entities`, one request is made at a time.
pub fn pages(
    client: SisuClient,
    service: Service,
    mut since: i64,
    limit: u32,
) -> impl Stream<Item = Result<Batch, SourceError>> + Send + 'static {
    async_stream::try_stream! {
        // The request for the page after the one being read, if it went
        // out early: its cursor and the request.
        let mut ahead: Option<(i64, PageFetch)> = None;
        loop {
            let mut fetch = match ahead.take() {
                Some((cursor, fetch)) if cursor == since => fetch,
                _ => PageFetch::start(&client, &service, since, limit),
            };
            let body = loop {
                tokio::select! {
                    head = &mut fetch.head, if fetch.head_open => {
                        fetch.head_open = false;
                        if let Ok(next) = head {
                            ahead = Some((next, PageFetch::start(&client, &service, next, limit)));
                        }
                    }
                    body = &mut fetch.body => break body,
                }
            };
            // The whole body came with its head: the next request still
            // goes out before this page is checked.
            if fetch.head_open {
                if let Ok(next) = fetch.head.try_recv() {
                    ahead = Some((next, PageFetch::start(&client, &service, next, limit)));
                }
            }
            let mut batch = parse_page(&service, &fetch.url, since, &body?)?;
            batch.fetched_in = fetch.started.elapsed();
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

/// One page's request, under way in a task of its own (so that it goes on
/// while the stream waits to be polled): its body when it is complete,
/// and the next page's cursor as soon as the head shows it. Dropped, the
/// request is given up.
struct PageFetch {
    url: String,
    started: std::time::Instant,
    /// `greatestOrdinal` when the head says `hasMore: true`; closed
    /// without a value otherwise.
    head: tokio::sync::oneshot::Receiver<i64>,
    head_open: bool,
    body: AbortOnDrop<Result<Bytes, SourceError>>,
}

impl PageFetch {
    fn start(client: &SisuClient, service: &Service, since: i64, limit: u32) -> PageFetch {
        let url = export_url(client, service, since, limit);
        let (tx, head) = tokio::sync::oneshot::channel();
        let (client, id, request) = (client.clone(), service.id.clone(), url.clone());
        let body = tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut peek = |prefix: &[u8]| {
                if tx.is_none() {
                    return;
                }
                match read_head(prefix) {
                    Head::NeedMore => {}
                    Head::Known {
                        greatest,
                        has_more: true,
                    } => {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(greatest);
                        }
                    }
                    Head::Known { .. } | Head::Never => tx = None,
                }
            };
            client.get_peeking(&id, &request, &mut peek).await
        });
        PageFetch {
            url,
            started: std::time::Instant::now(),
            head,
            head_open: true,
            body: AbortOnDrop(body),
        }
    }
}

/// A task that is aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = T;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|joined| match joined {
                Ok(value) => value,
                // Only a panic ends the task otherwise (an abort comes with
                // the drop): carry it on.
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            })
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
    service: &Service,
    url: &str,
    since: i64,
    body: &Bytes,
) -> Result<Batch, SourceError> {
    let identity = service.identity;
    let service = service.id.as_str();
    let malformed = |reason: String| SourceError::Malformed {
        service: service.into(),
        url: redact::url(url),
        reason,
    };
    let page = scan_page(body, identity_names(identity)).map_err(|e| {
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
    // The page scan found each entity's identity fields on its way: their
    // order keys go with the entities, so the barrier does not scan them
    // again.
    let entities = entities
        .into_iter()
        .zip(page.fields)
        .map(|(range, found)| {
            let values = found.map(|f| f.map(|r| &body[r]));
            let names = identity_names(identity).len();
            Entity::at(body, range).with_order_key(key_of(identity, &values[..names]))
        })
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
            &crate::catalogue::builtin()
                .into_iter()
                .find(|s| s.id == "PERSON")
                .expect("PERSON"),
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
