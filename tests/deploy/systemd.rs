//! `deploy/systemd/sis-importer.service`: the daemon command, restart and
//! stop settings, the hardening options; `systemd-analyze verify` and its
//! offline `security` score when systemd-analyze is installed. The unit
//! is never started: no systemd runs as PID 1 here.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{default_stop_time, read, repo, tool};

const UNIT: &str = "deploy/systemd/sis-importer.service";

/// Where the unit, the Dockerfile and the docs install the binary.
const INSTALLED: &str = "/usr/local/bin/sis-importer";

/// `[Section]` → key → every value given (a key may repeat).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse(text: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("{line}"));
        unit.entry(section.clone())
            .or_default()
            .entry(key.trim().to_owned())
            .or_default()
            .push(value.trim().to_owned());
    }
    unit
}

/// A systemd time span of the forms the unit uses: `90`, `90s`, `2min`.
fn timespan(value: &str) -> Duration {
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("time span {value}"));
    match &value[digits.len()..] {
        "" | "s" | "sec" => Duration::from_secs(n),
        "min" | "m" => Duration::from_secs(60 * n),
        unit => panic!("time span unit {unit} in {value}"),
    }
}

#[test]
fn the_unit_runs_the_daemon_restarts_it_and_waits_for_its_drain() {
    let unit = parse(&read(UNIT));
    let service = &unit["Service"];
    let one = |key: &str| -> &str {
        let values = service.get(key).unwrap_or_else(|| panic!("no {key}="));
        assert_eq!(values.len(), 1, "{key}= given once");
        &values[0]
    };
    let exec: Vec<&str> = one("ExecStart").split_whitespace().collect();
    assert_eq!(exec, [INSTALLED, "run"]);
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("EnvironmentFile"), "/etc/sis-importer/env");
    assert_eq!(one("KillSignal"), "SIGTERM");
    let stop = timespan(one("TimeoutStopSec"));
    assert!(
        stop > default_stop_time(),
        "TimeoutStopSec {stop:?} ≤ the drain and POST_UPDATE, {:?}",
        default_stop_time()
    );
    assert!(
        service.get("DynamicUser").is_some_and(|v| v == &["yes"])
            || service.get("User").is_some_and(|v| v[0] != "root"),
        "runs as a user of its own"
    );
    for (key, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
    ] {
        assert_eq!(one(key), want, "{key}=");
    }
    assert_eq!(service["SystemCallFilter"][0], "@system-service");
    assert_eq!(unit["Install"]["WantedBy"], ["multi-user.target"]);
}

/// `systemd-analyze` on a copy of the unit in a root holding the binary where the unit
/// names it (verify checks that it is executable) and copies of the
/// host's targets (the unit's dependencies, implicit ones included; a
/// symlink to the whole directory would leave its absolute links
/// dangling inside the root).
fn analyze(systemd_analyze: &Path, args: &[&str]) -> (bool, String) {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join(INSTALLED.trim_start_matches('/'));
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(crate::common::BIN, &bin).unwrap();
    let units = root.path().join("usr/lib/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    for entry in std::fs::read_dir("/usr/lib/systemd/system").unwrap() {
        let name = entry.unwrap().file_name();
        if name.to_string_lossy().ends_with(".target") {
            // fs::copy follows links: the root gets the targets' text.
            let _ = std::fs::copy(
                Path::new("/usr/lib/systemd/system").join(&name),
                units.join(&name),
            );
        }
    }
    let unit = root.path().join("etc/systemd/system/sis-importer.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::copy(repo().join(UNIT), &unit).unwrap();
    let out = Command::new(systemd_analyze)
        .args(args)
        .arg(format!("--root={}", root.path().display()))
        .arg(&unit)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn systemd_analyze_verifies_the_unit_and_scores_its_hardening() {
    let Some(systemd_analyze) = tool("systemd-analyze", "systemd-analyze verify of the unit")
    else {
        return;
    };
    // Warnings too (an unknown option or system call group is only
    // "ignoring"): verify must say nothing at all.
    let (ok, said) = analyze(&systemd_analyze, &["verify"]);
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
    let (_, said) = analyze(
        &systemd_analyze,
        &["security", "--offline=yes", "--no-pager"],
    );
    let exposure: f64 = said
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for sis-importer.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {said}"));
    eprintln!("systemd-analyze security: exposure {exposure}");
    // 0 is a fully locked-down unit, 10 an unprotected one; below 2 is
    // what systemd calls "OK".
    assert!(exposure < 2.0, "exposure {exposure}: {said}");
}
