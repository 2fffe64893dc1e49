//! Measuring child processes: CPU from `/proc`, the rig of servers and
//! long-lived children (fake Sisu, consumers), one measured run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use sis_testkit::servers::{NatsServer, RedisServer};

use crate::ROLE;

/// CPU seconds (user + system) of a process so far, from `/proc/PID/stat`.
pub(crate) fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

pub(crate) fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

/// A `kB` field of `/proc/self/status` (KiB).
pub(crate) fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:")));
    line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// What one measured child run reported, with the CPU of the others.
#[derive(Debug, Clone, Default)]
pub(crate) struct Run {
    pub(crate) wall: f64,
    pub(crate) entities: u64,
    pub(crate) bytes: u64,
    /// CPU seconds by process: importer (or stage), fake, nats, consumers.
    pub(crate) cpu: BTreeMap<&'static str, f64>,
    pub(crate) peak_rss_kib: u64,
}

impl Run {
    pub(crate) fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.wall
    }
    pub(crate) fn floor(&self) -> f64 {
        self.cpu.values().sum::<f64>() / cores()
    }
    pub(crate) fn own_cpu_per_gb(&self) -> f64 {
        self.cpu.get("self").copied().unwrap_or(0.0) / (self.bytes as f64 / 1e9)
    }
    pub(crate) fn line(&self, label: &str) -> String {
        let cpu: Vec<String> = self
            .cpu
            .iter()
            .map(|(k, v)| format!("{k} {v:.2}"))
            .collect();
        // Runs whose bytes nobody counted (the latency and memory rigs do
        // not fetch-only) show no MB figures.
        let (mb, mb_s, per_gb) = if self.bytes == 0 {
            ("-".to_owned(), "-".to_owned(), "-".to_owned())
        } else {
            (
                format!("{:.1}", self.bytes as f64 / 1e6),
                format!("{:.1}", self.mb_per_s()),
                format!("{:.2}", self.own_cpu_per_gb()),
            )
        };
        format!(
            "{label:<34} {:>8} entities {mb:>7} MB in {:>6.2} s: {:>7.0} entities/s {mb_s:>6} MB/s | CPU s: {} | floor {:.2} s ({:.0}% of wall) | own {per_gb} s/GB | peak RSS {:.1} MiB",
            self.entities,
            self.wall,
            self.entities as f64 / self.wall,
            cpu.join(", "),
            self.floor(),
            100.0 * self.floor() / self.wall,
            self.peak_rss_kib as f64 / 1024.0
        )
    }
}

/// The processes that live through a scenario: fake Sisu and consumers.
pub(crate) struct Rig {
    nats: NatsServer,
    redis: RedisServer,
    fake: Child,
    fake_url: String,
    consumer: Option<Child>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        for child in [Some(&mut self.fake), self.consumer.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_role(role: &str, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("own executable"));
    cmd.env(ROLE, role).stdout(Stdio::piped());
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        cmd.env("MALLOC_ARENA_MAX", "2");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("child starts")
}

/// Reads `key=value` lines of a child until it prints `ready` (when
/// `until_ready`) or exits; calls `on_timing` when it prints `timing` (its
/// clock starts).
fn read_lines(
    child: &mut Child,
    until_ready: bool,
    mut on_timing: impl FnMut(),
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let stdout = child.stdout.as_mut().expect("piped");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        let l = line.trim().to_owned();
        line.clear();
        match l.as_str() {
            "ready" if until_ready => break,
            "timing" => on_timing(),
            _ => {}
        }
        if let Some((k, v)) = l.split_once('=') {
            out.insert(k.to_owned(), v.to_owned());
        }
    }
    out
}

impl Rig {
    pub(crate) fn start(entities: u64, sisu_latency_ms: u64) -> Rig {
        Rig::start_with(entities, sisu_latency_ms, 0, false)
    }

    /// A rig whose fake Sisu thinks `sisu_latency_ms` per page, then sends
    /// it at `transfer_rate` bytes per second (0: no limit), with the
    /// paging fields before `entities` as real Sisu writes them, or after.
    pub(crate) fn start_with(
        entities: u64,
        sisu_latency_ms: u64,
        transfer_rate: u64,
        fields_last: bool,
    ) -> Rig {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let (nats, redis) = rt.block_on(async {
            (
                NatsServer::start().await.expect("nats-server starts"),
                RedisServer::start().await.expect("redis-server starts"),
            )
        });
        let mut fake = spawn_role(
            "fake",
            &[
                ("BENCH_N", entities.to_string()),
                ("BENCH_LATENCY_MS", sisu_latency_ms.to_string()),
                ("BENCH_TRANSFER_RATE", transfer_rate.to_string()),
                ("BENCH_FIELDS_LAST", u64::from(fields_last).to_string()),
            ],
        );
        let fake_url = read_lines(&mut fake, true, || {})["url"].clone();
        Rig {
            nats,
            redis,
            fake,
            fake_url,
            consumer: None,
        }
    }

    pub(crate) fn start_consumers(&mut self, instances: u64, latency_ms: u64) {
        if let Some(mut old) = self.consumer.take() {
            let _ = old.kill();
            let _ = old.wait();
        }
        let mut child = spawn_role(
            "consumer",
            &[
                ("NATS_URL", self.nats.url()),
                ("BENCH_INSTANCES", instances.to_string()),
                ("BENCH_LATENCY_MS", latency_ms.to_string()),
            ],
        );
        read_lines(&mut child, true, || {});
        self.consumer = Some(child);
    }

    fn env(&self, settings: &[(&str, String)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("SIS_API_URL".to_owned(), self.fake_url.clone()),
            (
                "KORI_PUBLIC_API_URL".to_owned(),
                format!("{}/kori/api", self.fake_url),
            ),
            ("NATS_URL".to_owned(), self.nats.url()),
            ("REDIS_URL".to_owned(), self.redis.url()),
            ("LOG_FORMAT".to_owned(), "json".to_owned()),
            ("RUST_LOG".to_owned(), "warn".to_owned()),
        ];
        env.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        env
    }

    /// Runs one child in `role` and measures every process meanwhile.
    pub(crate) fn measure(&self, role: &str, settings: &[(&str, String)]) -> Run {
        let env = self.env(settings);
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let others: Vec<(&'static str, u32)> = [
            ("fake", Some(self.fake.id())),
            ("nats", self.nats.pid()),
            ("consumers", self.consumer.as_ref().map(Child::id)),
        ]
        .into_iter()
        .filter_map(|(k, p)| Some((k, p?)))
        .collect();
        let mut before: Vec<f64> = Vec::new();
        let mut child = spawn_role(role, &env);
        // The others' CPU counts from when the child's clock starts.
        let out = read_lines(&mut child, false, || {
            before = others.iter().map(|(_, p)| cpu_secs(*p)).collect();
        });
        let status = child.wait().expect("child exits");
        assert!(status.success(), "{role} run failed: {out:?}");
        let mut cpu: BTreeMap<&'static str, f64> = others
            .iter()
            .zip(before)
            .map(|((k, p), b)| (*k, cpu_secs(*p) - b))
            .collect();
        let get = |k: &str| {
            out.get(k)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        cpu.insert("self", get("cpu_s"));
        Run {
            wall: get("wall_s"),
            entities: get("entities") as u64,
            bytes: get("bytes") as u64,
            cpu,
            peak_rss_kib: get("peak_rss_kib") as u64,
        }
    }
}

pub(crate) fn median(mut v: Vec<Run>) -> Run {
    v.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    v.swap_remove(v.len() / 2)
}

pub(crate) fn verdict(met: bool) -> &'static str {
    ["MISSED", "met"][usize::from(met)]
}
