//! The consumer's store as seen from outside: [`StoreSink`], where the
//! entities of every OK chunk are written before the chunk is answered (as
//! importer-mankeli commits its database transaction before it answers),
//! and [`JsonLinesFile`], a sink that appends them to a file, so a test can
//! kill the consumer's process and still check what it had stored.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sis_importer::catalogue::{self, Service};

use super::message::{document_state, identity, ChunkMessage};
use super::{ConsumerError, NATS_TIMEOUT};

/// One entity of an OK chunk as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEntity {
    /// The service id (`PERSON`, …).
    pub service: String,
    /// The entity's identity ([`Service::identity_of`](sis_importer::catalogue::Service::identity_of),
    /// else its `id`, else its raw JSON).
    pub identity: String,
    /// Its `metadata.modificationOrdinal`; none for whole-set kinds.
    pub ordinal: Option<i64>,
    /// Its `documentState`, when it has one.
    pub document_state: Option<String>,
}

/// Where a consumer writes the entities of each OK chunk. `store` runs on a
/// blocking thread, under the consumer's NATS timeout; the chunk is
/// answered only after it returned `Ok`, and an error hands the chunk back
/// unanswered for redelivery.
pub trait StoreSink: Send + Sync + 'static {
    /// Stores one OK chunk's entities, durably enough for the test at hand.
    fn store(&self, entities: &[StoredEntity]) -> io::Result<()>;
}

/// A [`StoreSink`] appending one JSON line per entity to a file. Each
/// chunk's lines go out in one `write` before `store` returns: in the
/// kernel, so they survive the process's death (no fsync: not a machine's).
pub struct JsonLinesFile {
    path: PathBuf,
    /// One writer at a time, so the lines of concurrent chunks never interleave.
    file: Mutex<File>,
}

impl JsonLinesFile {
    /// Opens `path` for appending, creating it if missing.
    pub fn open(path: impl AsRef<Path>) -> io::Result<JsonLinesFile> {
        let path = path.as_ref().to_owned();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(JsonLinesFile {
            path,
            file: Mutex::new(file),
        })
    }

    /// Every entity in the file at `path`, in the order written; a torn
    /// last line (a process killed mid-write) is left out.
    pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<StoredEntity>> {
        let text = std::fs::read_to_string(path)?;
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    }
}

impl StoreSink for JsonLinesFile {
    fn store(&self, entities: &[StoredEntity]) -> io::Result<()> {
        let mut lines = Vec::new();
        for entity in entities {
            serde_json::to_writer(&mut lines, entity)?;
            lines.push(b'\n');
        }
        let mut file = self.file.lock().expect("store file lock");
        file.write_all(&lines)?;
        file.flush()
    }
}

impl std::fmt::Debug for JsonLinesFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesFile")
            .field("path", &self.path)
            .finish()
    }
}

/// Writes the entities of OK `chunk` of `service` to `sink` on a blocking
/// thread, within `NATS_TIMEOUT` (a sink that takes longer is treated as
/// failed; what it writes late is a duplicate, which upserts absorb).
pub(super) async fn write(
    sink: &Arc<dyn StoreSink>,
    service: &Service,
    chunk: &ChunkMessage<'_>,
) -> Result<(), ConsumerError> {
    let entities: Vec<StoredEntity> = chunk
        .entities
        .iter()
        .map(|entity| StoredEntity {
            service: service.id.clone(),
            identity: identity(service, entity),
            ordinal: catalogue::modification_ordinal(entity.get()),
            document_state: document_state(entity),
        })
        .collect();
    let sink = sink.clone();
    let writing = tokio::task::spawn_blocking(move || sink.store(&entities));
    match tokio::time::timeout(NATS_TIMEOUT, writing).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(source))) => Err(ConsumerError::Store { source }),
        Ok(Err(panicked)) => Err(ConsumerError::Store {
            source: io::Error::other(panicked.to_string()),
        }),
        Err(_) => Err(ConsumerError::TimedOut {
            operation: "storing the entities",
            after: NATS_TIMEOUT,
        }),
    }
}
