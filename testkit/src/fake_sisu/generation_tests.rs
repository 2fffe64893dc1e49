//! Tests of later generations: what they add to every export service, and
//! that each identity's versions stay one identity.

use super::changelog::{Extra, Log};
use super::shapes::Shape;
use super::test_util::*;
use std::collections::{HashMap, HashSet};

#[test]
fn versions_keep_their_identity_and_new_identities_are_new() {
    for (position, service) in sis_importer::catalogue::builtin().iter().enumerate() {
        let Some(shape) = Shape::of(&service.id) else {
            continue;
        };
        let id = &service.id;
        let log = Log::new(7, shape, position, 100);
        // The served identity of every identity index met so far.
        let mut identities: HashMap<u64, String> = HashMap::new();
        let mut new = 0;
        for k in 0..600 {
            let entity = log.entity(k, Extra::default());
            let served = service.identity_of(&entity).unwrap();
            let identity = log.identity(k);
            assert!(identity <= k);
            if identity == k {
                assert!(
                    identities.values().all(|earlier| *earlier != served),
                    "{id}: change {k} starts {served}, which existed already"
                );
                identities.insert(k, served);
                if k >= 100 {
                    // Generation 0 has deleted documents; a new one is not.
                    assert_ne!(log.state(k), "DELETED", "{id}: {k} starts deleted");
                    new += 1;
                }
            } else {
                assert_eq!(
                    identities.get(&identity),
                    Some(&served),
                    "{id}: change {k} is a version of change {identity}"
                );
            }
        }
        assert!(
            (40..=115).contains(&new),
            "{id}: ~15% of 500 new, got {new}"
        );
    }
}

#[tokio::test]
async fn later_generations_update_delete_and_add_identities() {
    let fake = start_fake(200).await;
    let before = fake.greatest_ordinal("STUDY_RIGHT").unwrap();
    let generation0: HashSet<_> = fake
        .expected("STUDY_RIGHT")
        .into_iter()
        .map(|e| e.identity)
        .collect();
    fake.add_generation(300);
    fake.add_generation(100);
    assert!(fake.greatest_ordinal("STUDY_RIGHT").unwrap() > before);
    let service = service("STUDY_RIGHT");
    let later = drain(&fake, "STUDY_RIGHT", before, 120).await;
    assert_eq!(later.len(), 400);
    let later: Vec<_> = later.iter().map(|e| as_expected(&service, e)).collect();
    let deleted = later
        .iter()
        .filter(|e| e.document_state == "DELETED")
        .count();
    assert!((30..=95).contains(&deleted), "~15% DELETED, got {deleted}");
    let new: HashSet<_> = later
        .iter()
        .filter(|e| !generation0.contains(&e.identity))
        .map(|e| &e.identity)
        .collect();
    assert!(
        (30..=95).contains(&new.len()),
        "~15% new, got {}",
        new.len()
    );
    // A new identity's first version comes after everything before it.
    for identity in &new {
        let first = later.iter().find(|e| e.identity == **identity).unwrap();
        assert!(first.ordinal.unwrap() > before);
        assert_eq!(first.document_state, "ACTIVE");
    }
    // Snapshots: versions of one id carry rising snapshotDateTimes.
    let all = drain(&fake, "STUDY_RIGHT", 0, 1000).await;
    let mut last_snapshot: HashMap<String, String> = HashMap::new();
    let mut repeated = 0;
    for entity in &all {
        let (id, snapshot) = (
            entity["id"].as_str().unwrap(),
            entity["snapshotDateTime"].as_str().unwrap(),
        );
        if let Some(previous) = last_snapshot.insert(id.to_owned(), snapshot.to_owned()) {
            assert!(previous.as_str() < snapshot);
            repeated += 1;
        }
    }
    assert_eq!(repeated + new.len(), 400);
    assert_eq!(last_snapshot.len(), 200 + new.len());
    assert_eq!(fake.expected("STUDY_RIGHT").len(), 600);
}

#[tokio::test]
async fn expected_and_greatest_ordinal_follow_every_generation() {
    let fake = start_fake(80).await;
    fake.add_generation(30);
    fake.add_generation(15);
    for id in export_ids() {
        let service = service(&id);
        let served = drain(&fake, &id, 0, 41).await;
        let got: Vec<_> = served.iter().map(|e| as_expected(&service, e)).collect();
        assert_eq!(got, fake.expected(&id), "{id}");
        assert_eq!(got.len(), 125, "{id}");
        assert_eq!(
            fake.greatest_ordinal(&id),
            got.last().and_then(|e| e.ordinal),
            "{id}"
        );
        let identities: HashSet<_> = got.iter().map(|e| &e.identity).collect();
        assert!(
            identities.len() > 80,
            "{id}: new identities in the later 45"
        );
    }
}
