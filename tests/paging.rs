//! Sisu's paging chain: the next page is asked for as soon as the page
//! being read shows `greatestOrdinal` and `hasMore` (real Sisu writes them
//! before `entities`), one page ahead at most, and an early answer whose
//! page turns out bad is thrown away. Only the fake Sisu is needed.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures::StreamExt;
use sis_importer::catalogue::builtin;
use sis_importer::config::Config;
use sis_importer::sources::export::pages;
use sis_importer::sources::{SisuClient, SourceError};
use sis_testkit::fake_sisu::{FakeSisu, FakeSisuConfig, FieldOrder};

async fn fake(order: FieldOrder, entities: u64) -> FakeSisu {
    FakeSisu::start(FakeSisuConfig {
        entities_per_service: entities,
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        field_order: order,
        ..FakeSisuConfig::default()
    })
    .await
    .expect("fake Sisu")
}

fn client(fake: &FakeSisu) -> SisuClient {
    SisuClient::new(&Config {
        sis_api_url: Some(fake.base_url()),
        kori_public_api_url: fake.kori_public_url(),
        sis_retry_base: Duration::from_millis(10),
        sis_retry_max: Duration::from_millis(50),
        ..Config::default()
    })
    .expect("client")
}

const PERSON: &str = "PERSON";

fn person() -> sis_importer::catalogue::Service {
    builtin()
        .into_iter()
        .find(|s| s.id == PERSON)
        .expect("PERSON")
}

/// Requests the fake has answered for PERSON after the stream has had
/// time to run ahead.
async fn settled_requests(fake: &FakeSisu) -> u64 {
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.requests(PERSON)
}

#[tokio::test]
async fn the_next_page_is_asked_for_before_this_one_is_taken_but_no_further() {
    let fake = fake(FieldOrder::Sisu, 500).await;
    let mut stream = Box::pin(pages(client(&fake), person(), 0, 100));
    let first = stream.next().await.expect("a page").expect("page 1");
    assert_eq!(first.entities.len(), 100);
    // Page 1 is held, not taken further: page 2 went out early, page 3
    // not (one ahead at most).
    assert_eq!(settled_requests(&fake).await, 2);
    let second = stream.next().await.expect("a page").expect("page 2");
    assert_eq!(second.since, first.greatest_ordinal);
    assert_eq!(settled_requests(&fake).await, 3);
    // The whole export, each page once.
    let mut rest = 0;
    while let Some(page) = stream.next().await {
        rest += page.expect("page").entities.len();
    }
    assert_eq!(200 + rest, 500);
    assert_eq!(fake.requests(PERSON), 5);
}

#[tokio::test]
async fn with_the_fields_after_the_entities_one_request_is_made_at_a_time() {
    let fake = fake(FieldOrder::FieldsLast, 500).await;
    let mut stream = Box::pin(pages(client(&fake), person(), 0, 100));
    stream.next().await.expect("a page").expect("page 1");
    assert_eq!(settled_requests(&fake).await, 1);
    let mut pages_read = 1;
    while let Some(page) = stream.next().await {
        page.expect("page");
        pages_read += 1;
    }
    assert_eq!(pages_read, 5);
    assert_eq!(fake.requests(PERSON), 5);
}

#[tokio::test]
async fn a_page_found_cut_after_its_follower_went_out_fails_as_before() {
    let fake = fake(FieldOrder::Sisu, 500).await;
    // The first page comes cut in half: its head (and so the early
    // request for page 2) is fine, its entities are not.
    fake.faults().truncated_next(PERSON, 1);
    // Slowly enough that page 2's request reaches Sisu while page 1's
    // entities are still coming.
    fake.faults().transfer_rate(100_000);
    let mut stream = Box::pin(pages(client(&fake), person(), 0, 100));
    let error = stream.next().await.expect("an item").unwrap_err();
    assert!(
        matches!(&error, SourceError::Malformed { reason, .. } if reason.contains("cut short")),
        "{error}"
    );
    // The stream ends with the error: page 2's early answer is not used.
    assert!(stream.next().await.is_none());
    drop(stream);
    // Page 2 was asked for early, and nothing after it.
    assert_eq!(settled_requests(&fake).await, 2);
}
