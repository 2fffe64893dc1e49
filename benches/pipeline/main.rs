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
//! `SERVICE_CONCURRENCY` 4 over four services, and memory at 100k and 1M
//! entities. Each target prints a met/MISSED line.
//!
//! Run: `cargo bench --bench pipeline`. Knobs: `BENCH_ENTITIES` (200000),
//! `BENCH_ROUNDS` (3), `BENCH_SWEEP=0` skips the sweeps, `BENCH_SWEEP_ROUNDS`
//! (3), `BENCH_LATENCY_ENTITIES`
//! (20000, 0 skips the latency runs), `BENCH_BIG_ENTITIES`
//! (1000000, 0 skips the memory runs), `BENCH_CONSUMERS` (2), `BENCH_VARIANTS`
//! (settings to compare with the defaults, interleaved: `A=1,B=2;C=3`).

mod measure;
mod roles;

use std::process::ExitCode;

use measure::{cores, median, verdict, Rig, Run};

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
        "importer CPU {per_gb:.2} s per GB of entity JSON (target <= 2): {}",
        verdict(per_gb <= 2.0)
    ));

    let sweep_rounds = knob("BENCH_SWEEP_ROUNDS", 3);
    let mut windows = Vec::new();
    if knob("BENCH_SWEEP", 1) != 0 {
        sweep(&rig, &fetch, &publish, sweep_rounds);
        windows = window_sweep(&rig, &fetch, sweep_rounds);
    }
    drop(rig);

    latency_scenarios(&mut targets, &windows);
    memory_scenario(&mut targets);

    println!("\n== targets ==");
    for t in &targets {
        println!("{t}");
    }
    ExitCode::SUCCESS
}

/// Runs every cell of a grid `rounds` times, cells interleaved within each
/// round (so the machine's noise spreads over all of them), and returns the
/// median run of each cell.
fn grid(rig: &Rig, cells: &[Vec<(&'static str, String)>], rounds: u64, bytes: u64) -> Vec<Run> {
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); cells.len()];
    for round in 1..=rounds {
        for (cell, runs) in cells.iter().zip(&mut runs) {
            let mut settings = cell.clone();
            settings.push(("SERVICES", "PERSON".to_owned()));
            let mut run = rig.measure("import", &settings);
            run.bytes = bytes;
            let name: Vec<String> = cell.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("round {round}: {}", run.line(&name.join(" ")));
            runs.push(run);
        }
    }
    runs.into_iter().map(median).collect()
}

fn sweep(rig: &Rig, fetch: &Run, publish: &Run, rounds: u64) {
    println!("\n== sweep: FETCH_AMOUNT x MAX_CHUNK_SIZE x PIPELINE_DEPTH, medians of {rounds} interleaved rounds ==");
    let mut keys = Vec::new();
    for fetch_amount in [500u64, 1000, 2000] {
        for chunk in [100u64, 250, 500] {
            for depth in [1u64, 3, 6] {
                keys.push((fetch_amount, chunk, depth));
            }
        }
    }
    let cells: Vec<Vec<(&'static str, String)>> = keys
        .iter()
        .map(|(f, c, d)| {
            vec![
                ("FETCH_AMOUNT", f.to_string()),
                ("MAX_CHUNK_SIZE", c.to_string()),
                ("PIPELINE_DEPTH", d.to_string()),
            ]
        })
        .collect();
    let runs = grid(rig, &cells, rounds, fetch.bytes);
    let rows: Vec<(u64, u64, u64, Run)> = keys
        .into_iter()
        .zip(runs)
        .map(|((f, c, d), r)| (f, c, d, r))
        .collect();
    let mut md = format!(
        "Medians of {rounds} interleaved rounds, 200k PERSON entities, zero-latency consumers.\n\n| FETCH_AMOUNT | MAX_CHUNK_SIZE | PIPELINE_DEPTH | MB/s | entities/s | wall s | CPU floor s | importer s/GB | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for (f, c, d, r) in &rows {
        md.push_str(&format!("| {f} | {c} | {d} | {} |\n", cells_of(r)));
    }
    md.push_str(&format!(
        "\nStage limits in the same run: fetch-only {:.1} MB/s, publish-only {:.1} MB/s.\n",
        fetch.mb_per_s(),
        publish.mb_per_s()
    ));
    std::fs::write(format!("{OUT_DIR}/sweep.md"), &md).expect("write sweep.md");
    plot(&rows, fetch.mb_per_s(), publish.mb_per_s()).expect("plot");
    println!("wrote {OUT_DIR}/sweep.md and {OUT_DIR}/sweep.svg");
}

/// The table cells of one run after its settings.
fn cells_of(r: &Run) -> String {
    format!(
        "{:.1} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1}",
        r.mb_per_s(),
        r.entities as f64 / r.wall,
        r.wall,
        r.floor(),
        r.own_cpu_per_gb(),
        r.peak_rss_kib as f64 / 1024.0
    )
}

const WINDOWS: [(u64, u64); 8] = [
    (8, 4),
    (8, 32),
    (16, 8),
    (16, 32),
    (64, 8),
    (64, 32),
    (64, 128),
    (256, 128),
];

fn window_cells() -> Vec<Vec<(&'static str, String)>> {
    WINDOWS
        .iter()
        .map(|(c, p)| {
            vec![
                ("MAX_CHUNKS_IN_FLIGHT", c.to_string()),
                ("MAX_PUBLISHES_IN_FLIGHT", p.to_string()),
            ]
        })
        .collect()
}

/// The two in-flight windows at zero latency (medians of `rounds`); the
/// latency half is added by [`window_sweep_latency`].
fn window_sweep(rig: &Rig, fetch: &Run, rounds: u64) -> Vec<Run> {
    println!("\n== windows: MAX_CHUNKS_IN_FLIGHT x MAX_PUBLISHES_IN_FLIGHT, zero latency, medians of {rounds} ==");
    grid(rig, &window_cells(), rounds, fetch.bytes)
}

/// The same windows with Sisu at 200 ms per page and consumers at 30 ms
/// per chunk x 3, where what is in flight decides whether the consumers
/// are kept busy; writes windows.md with both halves.
fn window_sweep_latency(rig: &Rig, zero: &[Run], bound: f64) {
    println!("\n== windows with latency (one round: sleeps dominate) ==");
    let slow = grid(rig, &window_cells(), 1, 0);
    let mut md = String::from(
        "| MAX_CHUNKS_IN_FLIGHT | MAX_PUBLISHES_IN_FLIGHT | zero latency: MB/s | entities/s | wall s | CPU floor s | importer s/GB | peak RSS MiB | latency: wall s | x Sisu bound |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (((c, p), z), s) in WINDOWS.iter().zip(zero).zip(&slow) {
        md.push_str(&format!(
            "| {c} | {p} | {} | {:.2} | {:.2} |\n",
            cells_of(z),
            s.wall,
            s.wall / bound
        ));
    }
    std::fs::write(format!("{OUT_DIR}/windows.md"), &md).expect("write windows.md");
    println!("wrote {OUT_DIR}/windows.md");
}

fn plot(
    rows: &[(u64, u64, u64, Run)],
    fetch: f64,
    publish: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let path = format!("{OUT_DIR}/sweep.svg");
    let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = rows
        .iter()
        .map(|r| r.3.mb_per_s())
        .fold(fetch.max(publish), f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "End to end MB/s by MAX_CHUNK_SIZE (one line per FETCH_AMOUNT, depth)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..550f64, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("MAX_CHUNK_SIZE")
        .y_desc("MB/s")
        .draw()?;
    let mut i = 0;
    for fetch_amount in [500u64, 1000, 2000] {
        for depth in [1u64, 3, 6] {
            let points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.0 == fetch_amount && r.2 == depth)
                .map(|r| (r.1 as f64, r.3.mb_per_s()))
                .collect();
            let color = Palette99::pick(i).to_rgba();
            i += 1;
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(format!("fetch {fetch_amount}, depth {depth}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
    }
    for (name, value, color) in [("fetch-only", fetch, BLACK), ("publish-only", publish, RED)] {
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, value), (550.0, value)],
                color.stroke_width(1),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        // Between the stage lines at the top and the runs below.
        .position(SeriesLabelPosition::Coordinate(560, 120))
        .draw()?;
    root.present()?;
    Ok(())
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
