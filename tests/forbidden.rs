//! Forbidden services (Sisu answered 403) are skipped for a while, not for
//! the process's life: tried again after `forbidden_retry_secs`, or at the
//! next run once an operator cleared the mark (from another process too).

mod common;

use std::time::Duration;

use common::*;
use sis_importer::importer::ServiceOutcome;
use sis_importer::shutdown::Shutdown;

async fn outcome(importer: &sis_importer::importer::Importer, id: &str) -> ServiceOutcome {
    let summary = importer
        .run(&services(&[id]), Shutdown::never())
        .await
        .unwrap();
    summary.services[0].result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_service_is_tried_again_after_the_retry_interval() {
    let env = Env::start(20).await;
    env.fake.faults().forbid("COURSE_UNIT");
    let config = sis_importer::config::Config {
        forbidden_retry: Duration::from_secs(2),
        ..env.config()
    };
    let importer = env.importer(config).await;
    assert_eq!(
        outcome(&importer, "COURSE_UNIT").await,
        ServiceOutcome::Forbidden
    );
    // Sisu fixed the permission; within the interval it is not even asked.
    env.fake.faults().allow("COURSE_UNIT");
    let asked = env.fake.requests("COURSE_UNIT");
    assert_eq!(
        outcome(&importer, "COURSE_UNIT").await,
        ServiceOutcome::Forbidden
    );
    assert_eq!(env.fake.requests("COURSE_UNIT"), asked);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(outcome(&importer, "COURSE_UNIT").await, ServiceOutcome::Ok);
    assert!(importer.forbidden().is_empty());
    env.assert_delivered("COURSE_UNIT", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_cleared_by_another_process_counts_at_the_next_run() {
    let env = Env::start(20).await;
    env.fake.faults().forbid("COURSE_UNIT");
    let importer = env.importer(env.config()).await;
    assert_eq!(
        outcome(&importer, "COURSE_UNIT").await,
        ServiceOutcome::Forbidden
    );
    env.fake.faults().allow("COURSE_UNIT");
    assert_eq!(
        outcome(&importer, "COURSE_UNIT").await,
        ServiceOutcome::Forbidden
    );
    let out = env
        .command(&["forbidden", "clear", "COURSE_UNIT"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(outcome(&importer, "COURSE_UNIT").await, ServiceOutcome::Ok);
    env.assert_delivered("COURSE_UNIT", &[]);
}
