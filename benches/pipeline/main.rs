//! The tuning benchmark: the importer against the limits of this machine,
//! measured in the same run. Real `nats-server -js` and `redis-server`;
//! the fake Sisu, the reference consumers and the importer each in a
//! process of their own (this binary in a role), so the CPU of every
//! process is read from `/proc`.
//!
//! Per run it reports entities/s, MB/s of entity JSON, wall time, the CPU
//! seconds of the importer, fake Sisu, nats-server and consumers, the CPU
//! floor they imply (their sum / cores: the shortest wall time these
//! processes could have on this machine), importer CPU s/GB and peak RSS.
//!
//! Stages, measured the same way, interleaved with the end-to-end runs:
//! - fetch-only: every page read (and parsed by the importer's source) and
//!   discarded;
//! - publish-only: the same chunks, prepared in memory first, published to
//!   a JetStream stream nobody consumes, acks awaited (32 in flight).
//!
//! Then a sweep over `FETCH_AMOUNT` × `MAX_CHUNK_SIZE` × `PIPELINE_DEPTH`
//! (Markdown table and SVG plot under `target/bench-pipeline/`) and one over
//! `MAX_CHUNKS_IN_FLIGHT` × `MAX_PUBLISHES_IN_FLIGHT` at zero latency and with
//! latency (`windows.md`), cells interleaved and medians of
//! `BENCH_SWEEP_ROUNDS`; the latency scenario (Sisu 200 ms per page, consumers 30 ms per chunk × 3),
//! `SERVICE_CONCURRENCY` 4 over four services, a slow Sisu (300 ms think,
//! then 40 MB/s per page: the paging chain's bound against one request at
//! a time), and memory at 100k and 1M entities. Each target prints a met/MISSED line.
//!
//! Run: `cargo bench --bench pipeline`. Knobs: `BENCH_ENTITIES` (200000),
//! `BENCH_ROUNDS` (3), `BENCH_SWEEP=0` skips the sweeps, `BENCH_SWEEP_ROUNDS`
//! (3), `BENCH_LATENCY_ENTITIES`
//! (20000, 0 skips the latency runs), `BENCH_BIG_ENTITIES`
//! (1000000, 0 skips the memory runs), `BENCH_SLOW_ENTITIES` (20000, 0 skips
//! the slow-Sisu runs), `BENCH_SLOW_ROUNDS` (1), `BENCH_CONSUMERS` (2), `BENCH_VARIANTS`
//! (settings to compare with the defaults, interleaved: `A=1,B=2;C=3`).

mod measure;
mod roles;
mod sweep;

use std::process::ExitCode;

use measure::{cores, median, verdict, Rig, Run};
use sweep::{sweep, window_sweep, window_sweep_latency};

pub(crate) const ROLE: &str = "BENCH_PIPELINE_ROLE";
const OUT_DIR: &str = "target/bench-pipeline";

/// `BENCH_VARIANTS`: settings to compare with the defaults, end to end in
/// every round right after them (interleaved, so a noisy machine hits both
/// alike): `A=1,B=2;C=3` is two variants.
fn variants() -> Vec<(String, Vec<(&'static str, String)>)> {
    let spec = std::env::var("BENCH_VARIANTS").unwrap_or_default();
    spec.split(';')
        .filter(|v| !v.trim().is_empty())
        .map(|variant| {
            let settings = variant
                .split(',')
                .map(|kv| {
                    let (k, v) = kv
                        .split_once('=')
                        .expect("BENCH_VARIANTS items are NAME=value");
                    (&*String::from(k.trim()).leak(), v.trim().to_owned())
                })
                .collect();
            (variant.trim().to_owned(), settings)
        })
        .collect()
}

pub(crate) fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| v.parse().expect("a number"))
}

fn main() -> ExitCode {
    match std::env::var(ROLE).as_deref() {
        Ok("fake") => roles::fake(),
        Ok("consumer") => roles::consumer(),
        Ok("import") => roles::on_importer_runtime(roles::import()),
        Ok("fetch") => roles::on_importer_runtime(roles::fetch()),
        Ok("publish") => roles::on_importer_runtime(roles::publish()),
        Ok(other) => panic!("unknown role {other}"),
        Err(_) => parent(),
    }
}

fn parent() -> ExitCode {
    std::fs::create_dir_all(OUT_DIR).expect("output directory");
    let n = knob("BENCH_ENTITIES", 200_000);
    let rounds = knob("BENCH_ROUNDS", 3);
    let consumers = knob("BENCH_CONSUMERS", 2);
    let person = || ("SERVICES", "PERSON".to_owned());
    let mut targets: Vec<String> = Vec::new();
    println!(
        "machine: {} cores; {n} PERSON entities; medians of {rounds} interleaved rounds",
        cores()
    );

    // Zero latency: the stages and the end to end, interleaved.
    let mut rig = Rig::start(n, 0);
    rig.start_consumers(consumers, 0);
    let variants = variants();
    let (mut fetch, mut publish, mut e2e) = (Vec::new(), Vec::new(), Vec::new());
    let mut tried: Vec<Vec<Run>> = vec![Vec::new(); variants.len()];
    for round in 1..=rounds {
        fetch.push(rig.measure("fetch", &[person()]));
        publish.push(rig.measure("publish", &[person()]));
        let mut run = rig.measure("import", &[person()]);
        run.bytes = fetch.last().map_or(0, |f: &Run| f.bytes);
        e2e.push(run);
        println!(
            "round {round}: {}",
            e2e.last().unwrap().line("end to end (defaults)")
        );
        for ((name, settings), runs) in variants.iter().zip(&mut tried) {
            let mut settings = settings.clone();
            settings.push(person());
            let mut run = rig.measure("import", &settings);
            run.bytes = fetch.last().map_or(0, |f: &Run| f.bytes);
            println!("round {round}: {}", run.line(name));
            runs.push(run);
        }
    }
    let (fetch, publish, e2e) = (median(fetch), median(publish), median(e2e));
    println!("{}", fetch.line("fetch-only"));
    println!("{}", publish.line("publish-only"));
    println!("{}", e2e.line("end to end (defaults)"));
    for ((name, _), runs) in variants.iter().zip(tried) {
        println!("{}", median(runs).line(name));
    }
    let stage = fetch.mb_per_s().min(publish.mb_per_s());
    let ratio = e2e.mb_per_s() / stage;
    targets.push(format!(
        "end to end {:.1} MB/s = {ratio:.2} x min(fetch-only {:.1}, publish-only {:.1}) (target >= 0.7): {}",
        e2e.mb_per_s(), fetch.mb_per_s(), publish.mb_per_s(), verdict(ratio >= 0.7)
    ));
    let floor_share = e2e.floor() / e2e.wall;
    targets.push(format!(
        "end to end wall {:.2} s against its CPU floor {:.2} s: {:.2} of it (target >= 0.9): {}",
        e2e.wall,
        e2e.floor(),
        floor_share,
        verdict(floor_share >= 0.9)
    ));
    let per_gb = e2e.own_cpu_per_gb();
    targets.push(format!(
        "importer CPU {per_gb:.2} s per GB of entity JSON (target <= 1): {}",
        verdict(per_gb <= 1.0)
    ));
    // What bounds it: the two stages alone, in the same run. End to end
    // does all their work and more (the order barrier, the envelope copy,
    // reading feedback, commits), so it cannot cost less than their sum.
    let stages = fetch.own_cpu_per_gb() + publish.own_cpu_per_gb();
    targets.push(format!(
        "  bound: the stages alone cost fetch-only {:.2} + publish-only {:.2} = {stages:.2} s/GB in this run; end to end costs {:.2} x that",
        fetch.own_cpu_per_gb(),
        publish.own_cpu_per_gb(),
        per_gb / stages
    ));

    let sweep_rounds = knob("BENCH_SWEEP_ROUNDS", 3);
    let mut windows = Vec::new();
    if knob("BENCH_SWEEP", 1) != 0 {
        sweep(&rig, &fetch, &publish, sweep_rounds);
        windows = window_sweep(&rig, &fetch, sweep_rounds);
    }
    drop(rig);

    latency_scenarios(&mut targets, &windows);
    slow_sisu_scenario(&mut targets);
    memory_scenario(&mut targets);

    println!("\n== targets ==");
    for t in &targets {
        println!("{t}");
    }
    ExitCode::SUCCESS
}

fn latency_scenarios(targets: &mut Vec<String>, windows: &[Run]) {
    let n = knob("BENCH_LATENCY_ENTITIES", 20_000);
    if n == 0 {
        return;
    }
    println!("\n== latency: Sisu 200 ms per page, consumers 30 ms per chunk x 3, {n} entities per service ==");
    let mut rig = Rig::start(n, 200);
    rig.start_consumers(3, 30);
    let pages = n.div_ceil(1000) as f64;
    let bound = pages * 0.2;
    let one = ("SERVICES", "PERSON".to_owned());
    if !windows.is_empty() {
        window_sweep_latency(&rig, windows, bound);
    }
    let deep = rig.measure("import", std::slice::from_ref(&one));
    let shallow = rig.measure("import", &[one, ("PIPELINE_DEPTH", "1".to_owned())]);
    println!("{}", deep.line("defaults"));
    println!("{}", shallow.line("PIPELINE_DEPTH=1"));
    targets.push(format!(
        "latency: {:.2} s = {:.2} x the Sisu bound {bound:.2} s (target <= 1.15): {}",
        deep.wall,
        deep.wall / bound,
        verdict(deep.wall <= 1.15 * bound)
    ));
    targets.push(format!(
        "latency: {:.2} x faster than PIPELINE_DEPTH=1 (target >= 1.3): {}",
        shallow.wall / deep.wall,
        verdict(shallow.wall / deep.wall >= 1.3)
    ));
    let four = (
        "SERVICES",
        "PERSON,STUDY_RIGHT,ATTAINMENT,ENROLMENT".to_owned(),
    );
    let serial = rig.measure("import", std::slice::from_ref(&four));
    let side = rig.measure("import", &[four, ("SERVICE_CONCURRENCY", "4".to_owned())]);
    println!("{}", serial.line("four services, one at a time"));
    println!("{}", side.line("four services, SERVICE_CONCURRENCY=4"));
    targets.push(format!(
        "latency: SERVICE_CONCURRENCY=4 {:.2} x faster than one at a time over four services (target >= 3): {}",
        serial.wall / side.wall, verdict(serial.wall / side.wall >= 3.0)
    ));
}

/// Sisu's paging chain against a slow Sisu: 300 ms of thinking per page,
/// then the page at 40 MB/s. Asking for the next page as soon as this
/// one's head shows its cursor hides every transfer but the last behind
/// the next page's thinking; with the fields after `entities` (the old
/// behaviour, one request at a time) each page costs both.
fn slow_sisu_scenario(targets: &mut Vec<String>) {
    let n = knob("BENCH_SLOW_ENTITIES", 20_000);
    if n == 0 {
        return;
    }
    const THINK_MS: u64 = 300;
    const RATE: u64 = 40_000_000;
    println!("\n== slow Sisu: {THINK_MS} ms think + 40 MB/s per page, {n} PERSON entities ==");
    let person = || ("SERVICES", "PERSON".to_owned());
    let mut first = Rig::start_with(n, THINK_MS, RATE, false);
    first.start_consumers(knob("BENCH_CONSUMERS", 2), 0);
    let mut last = Rig::start_with(n, THINK_MS, RATE, true);
    last.start_consumers(knob("BENCH_CONSUMERS", 2), 0);
    let (mut early, mut one_at_a_time, mut bytes) = (Vec::new(), Vec::new(), 0);
    for _ in 0..knob("BENCH_SLOW_ROUNDS", 1) {
        bytes = first.measure("fetch", &[person()]).bytes;
        for (rig, runs) in [(&first, &mut early), (&last, &mut one_at_a_time)] {
            let mut run = rig.measure("import", &[person()]);
            run.bytes = bytes;
            runs.push(run);
        }
    }
    let (early, one_at_a_time) = (median(early), median(one_at_a_time));
    let pages = n.div_ceil(1000) as f64;
    let transfer = bytes as f64 / pages / RATE as f64;
    let think = THINK_MS as f64 / 1000.0;
    let chain = pages * think + transfer;
    let old = pages * (think + transfer);
    println!("{}", early.line("fields first (next page asked for early)"));
    println!(
        "{}",
        one_at_a_time.line("fields last (one request at a time)")
    );
    println!(
        "{pages} pages of {:.2} MB: the chain's bound {chain:.2} s (transfers hidden), one at a time {old:.2} s",
        bytes as f64 / pages / 1e6
    );
    println!(
        "fields first: {:.2} s, {:.0} % of the way from the old bound to the chain's; fields last: {:.2} s",
        early.wall,
        100.0 * (old - early.wall) / (old - chain),
        one_at_a_time.wall
    );
    targets.push(format!(
        "slow Sisu: {:.2} s = {:.2} x the chain's bound {chain:.2} s (target <= 1.1): {}",
        early.wall,
        early.wall / chain,
        verdict(early.wall <= 1.1 * chain)
    ));
}

fn memory_scenario(targets: &mut Vec<String>) {
    let big = knob("BENCH_BIG_ENTITIES", 1_000_000);
    if big == 0 {
        return;
    }
    println!("\n== memory: peak RSS at 100k and {big} PERSON entities ==");
    let mut peaks = Vec::new();
    for n in [100_000, big] {
        let mut rig = Rig::start(n, 0);
        rig.start_consumers(knob("BENCH_CONSUMERS", 2), 0);
        let run = rig.measure("import", &[("SERVICES", "PERSON".to_owned())]);
        println!("{}", run.line(&format!("{n} entities")));
        peaks.push(run.peak_rss_kib as f64 / 1024.0);
    }
    targets.push(format!(
        "peak RSS {:.1} MiB at {big} entities (target <= 64 MB = 61.0 MiB): {}",
        peaks[1],
        verdict(peaks[1] * 1.048_576 <= 64.0)
    ));
    targets.push(format!(
        "peak RSS x{:.2} from 100k to {big} (target <= 1.25): {}",
        peaks[1] / peaks[0],
        verdict(peaks[1] / peaks[0] <= 1.25)
    ));
}
