//! The deployment artefacts under `deploy/` and the top-level
//! `Dockerfile`, checked as far as this machine allows: the Dockerfile's
//! stages read and the binary run as the image's user with its
//! `HEALTHCHECK` (`container.rs`); every Kubernetes manifest parsed and
//! held to the configuration's names, defaults and port
//! (`kubernetes.rs`); the systemd unit (`systemd.rs`); the alert rules
//! and the Grafana dashboard against what `/metrics` serves after a real
//! run (`monitoring.rs`). Tools that are often missing (`kubectl`,
//! `promtool`, `systemd-analyze`, `setpriv`) are used when present; a
//! test without one says so on stderr and checks the rest.

mod common;
#[path = "deploy/container.rs"]
mod container;
#[path = "deploy/kubernetes.rs"]
mod kubernetes;
#[path = "deploy/monitoring.rs"]
mod monitoring;
#[path = "deploy/support.rs"]
mod support;
#[path = "deploy/systemd.rs"]
mod systemd;
