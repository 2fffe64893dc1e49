//! The sweeps of the tuning benchmark: `FETCH_AMOUNT` × `MAX_CHUNK_SIZE` ×
//! `PIPELINE_DEPTH` (Markdown table and SVG plot), and the windows
//! `MAX_CHUNKS_IN_FLIGHT` × `MAX_PUBLISHES_IN_FLIGHT` at zero latency and
//! with consumer latency.

use crate::measure::{median, Rig, Run};
use crate::OUT_DIR;

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

pub(crate) fn sweep(rig: &Rig, fetch: &Run, publish: &Run, rounds: u64) {
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
pub(crate) fn window_sweep(rig: &Rig, fetch: &Run, rounds: u64) -> Vec<Run> {
    println!("\n== windows: MAX_CHUNKS_IN_FLIGHT x MAX_PUBLISHES_IN_FLIGHT, zero latency, medians of {rounds} ==");
    grid(rig, &window_cells(), rounds, fetch.bytes)
}

/// The same windows with Sisu at 200 ms per page and consumers at 30 ms
/// per chunk x 3, where what is in flight decides whether the consumers
/// are kept busy; writes windows.md with both halves.
pub(crate) fn window_sweep_latency(rig: &Rig, zero: &[Run], bound: f64) {
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

/// One panel per `PIPELINE_DEPTH`, side by side on a shared MB/s axis:
/// in each, MB/s by `MAX_CHUNK_SIZE`, one line per `FETCH_AMOUNT`, and the
/// stage limits of the same run as flat lines.
fn plot(
    rows: &[(u64, u64, u64, Run)],
    fetch: f64,
    publish: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let path = format!("{OUT_DIR}/sweep.svg");
    let root = SVGBackend::new(&path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "End to end MB/s by MAX_CHUNK_SIZE, one panel per PIPELINE_DEPTH",
        ("sans-serif", 18),
    )?;
    let top = rows
        .iter()
        .map(|r| r.3.mb_per_s())
        .fold(fetch.max(publish), f64::max)
        * 1.1;
    let depths = [1u64, 3, 6];
    let panels = root.split_evenly((1, depths.len()));
    for (panel, depth) in panels.iter().zip(depths) {
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("PIPELINE_DEPTH {depth}"), ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0f64..550f64, 0f64..top)?;
        chart
            .configure_mesh()
            .x_desc("MAX_CHUNK_SIZE")
            .y_desc("MB/s")
            .draw()?;
        for (i, fetch_amount) in [500u64, 1000, 2000].into_iter().enumerate() {
            let points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.0 == fetch_amount && r.2 == depth)
                .map(|r| (r.1 as f64, r.3.mb_per_s()))
                .collect();
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(format!("FETCH_AMOUNT {fetch_amount}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )?;
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
        // One legend, in the first panel, between the stage lines at the
        // top and the runs below.
        if depth == depths[0] {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::Coordinate(190, 100))
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}
