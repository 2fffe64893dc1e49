//! The ordinal watcher the failover and chaos tests share: it polls every
//! service's committed ordinal every 20 ms, through whatever `REDIS_URL`
//! form the test uses (plain, or the sentinels), and records a violation
//! when an ordinal moves back or passes a version no consumer has
//! acknowledged (checked for the versions between the last ordinal checked
//! and the new one).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sis_importer::config::Secret;
use sis_importer::store::OrdinalStore;
use sis_testkit::consumer::SeenProbe;

use super::service;

/// An entity as served: its identity and its modification ordinal.
pub type Sighting = (String, Option<i64>);

/// What the watcher saw.
#[derive(Default)]
pub struct Watch {
    /// Rounds of polling done (a test checks the watcher ran).
    pub polls: AtomicU64,
    /// What went wrong, each told once.
    pub violations: Mutex<Vec<String>>,
}

/// What the watcher checks against.
pub struct Watched {
    /// The services imported.
    pub services: &'static [&'static str],
    /// Every version the fake serves, per service.
    pub expected: Arc<BTreeMap<&'static str, Vec<Sighting>>>,
    /// Versions an ordinal may pass unacknowledged (dead-lettered on purpose).
    pub exempt: Arc<Vec<Sighting>>,
    /// The consumers: a version counts as acknowledged if any of them saw it.
    pub probes: Vec<SeenProbe>,
}

/// Polls until `stop` (see the module doc); connects again while Redis does
/// not answer (a test may start it, or kill it, under the watcher).
pub fn spawn_watcher(
    watched: Watched,
    redis_url: String,
    stop: Arc<AtomicBool>,
    watch: Arc<Watch>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut store = None;
        let mut checked: BTreeMap<&str, i64> = BTreeMap::new();
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if store.is_none() {
                store = OrdinalStore::connect(&Secret::new(redis_url.clone()))
                    .await
                    .ok();
            }
            let Some(s) = &store else { continue };
            watch.polls.fetch_add(1, Ordering::Relaxed);
            for &id in watched.services {
                let Ok(Some(committed)) = s.ordinal(&service(id)).await else {
                    continue;
                };
                let from = checked.get(id).copied().unwrap_or(i64::MIN);
                if committed < from {
                    watch.violations.lock().unwrap().push(format!(
                        "{id}: ordinal went back from {from} to {committed}"
                    ));
                    // Told once; checked onwards from where it is now.
                    checked.insert(id, committed);
                }
                if committed <= from {
                    continue;
                }
                let unseen = watched.expected[id]
                    .iter()
                    .filter(|v| v.1.is_some_and(|o| o > from && o <= committed))
                    .filter(|v| !watched.exempt.contains(v))
                    .find(|v| {
                        watched
                            .probes
                            .iter()
                            .all(|p| p.first_unseen(id, [*v]).is_some())
                    });
                if let Some(v) = unseen {
                    watch.violations.lock().unwrap().push(format!(
                        "{id}: ordinal {committed} passes unacknowledged {v:?}"
                    ));
                }
                checked.insert(id, committed);
            }
        }
    })
}

/// Every version `fake` serves of each of `services`: what the watcher
/// checks ordinals against.
pub fn served_versions(
    fake: &sis_testkit::fake_sisu::FakeSisu,
    services: &[&'static str],
) -> BTreeMap<&'static str, Vec<Sighting>> {
    services
        .iter()
        .map(|&id| {
            let versions = fake.expected(id).into_iter();
            (id, versions.map(|e| (e.identity, e.ordinal)).collect())
        })
        .collect()
}

/// A rival instance: tries to take the lease every 200 ms until `stop`;
/// how often it got it (0 while the importer holds it throughout).
pub fn spawn_rival(
    rival: sis_importer::lease::Lease,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut won = 0;
        while !stop.load(Ordering::Relaxed) {
            if let Ok(true) = rival.try_acquire().await {
                won += 1;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        won
    })
}
