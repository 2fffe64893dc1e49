//! What the deployment tests share: the repository's files, YAML read
//! as JSON values, and the optional tools.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// The repository's top directory.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The text of `path`, relative to the repository.
pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every document of the YAML file `path`, as JSON values.
pub fn yaml_documents(path: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(&read(path))
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}")))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The only document of the YAML file `path`.
pub fn yaml(path: &str) -> Value {
    let mut docs = yaml_documents(path);
    assert_eq!(docs.len(), 1, "{path} holds one document");
    docs.remove(0)
}

/// `name` on `PATH` (or in /usr/sbin), or `None` after saying on stderr
/// which check is skipped without it.
pub fn tool(name: &str, skipped: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        eprintln!("SKIPPED: {skipped}: {name} is not installed here");
    }
    found
}

/// Runs `cmd` and returns its output, asserting it exited 0.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

/// `shutdown_grace_secs`' default plus the 30 s the importer then waits
/// for `POST_UPDATE`'s acknowledgement (src/importer/run.rs): how long a
/// SIGTERM may take to end the process when nothing else goes wrong.
pub fn default_stop_time() -> Duration {
    sis_importer::config::defaults::SHUTDOWN_GRACE + Duration::from_secs(30)
}

/// `value` at `path` (keys, or indices for arrays), panicking with the
/// path when something on the way is missing.
pub fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| {
        let next = match key.parse::<usize>() {
            Ok(i) if v.is_array() => v.get(i),
            _ => v.get(key),
        };
        next.unwrap_or_else(|| panic!("no {key} in {path:?} of {v}"))
    })
}
