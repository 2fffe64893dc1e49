//! `deploy/prometheus/alerts.yaml` and `deploy/grafana/sis-importer.json`
//! use only metrics `/metrics` serves: a real run (a poison entity, a
//! forbidden service, one that fails) fills the registry, and every
//! metric name in the rules' and the panels' PromQL must be among the
//! rendered families. `promtool check rules` when promtool is installed.
//! The registry is one per process: this is the only test of this binary
//! that imports in-process.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use sis_importer::shutdown::Shutdown;

use crate::common::{services, Env};
use crate::support::{at, read, repo, run_ok, tool, yaml};

const ALERTS: &str = "deploy/prometheus/alerts.yaml";
const DASHBOARD: &str = "deploy/grafana/sis-importer.json";

/// Series Prometheus makes itself rather than scraping them.
const FROM_PROMETHEUS: [&str; 1] = ["up"];

/// Words of PromQL that are not metric names.
const KEYWORDS: [&str; 13] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
];

/// The metric names a PromQL expression selects: identifiers that are not
/// functions, keywords, label names in `{…}` or `by (…)`, strings, range
/// durations or Grafana variables (`$service`, `${x}`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut i = 0;
    // The index just past the closing `close`, skipping quoted strings.
    let skip_to = |mut i: usize, close: char| {
        let mut quote = None;
        while i < chars.len() {
            match (quote, chars[i]) {
                (Some(_), '\\') => i += 1,
                (Some(q), c) if c == q => quote = None,
                (None, '"' | '\'' | '`') => quote = Some(chars[i]),
                (None, c) if c == close => return i + 1,
                _ => {}
            }
            i += 1;
        }
        i
    };
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => {
                let quote = chars[i];
                i += 1;
                while i < chars.len() && chars[i] != quote {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' => i = skip_to(i + 1, '}'),
            '[' => i = skip_to(i + 1, ']'),
            '$' if chars.get(i + 1) == Some(&'{') => i = skip_to(i + 2, '}'),
            '$' => {
                i += 1;
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (is_ident(chars[i]) || chars[i] == '.') {
                    i += 1;
                }
            }
            c if is_ident(c) => {
                let start = i;
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let call = chars.get(next) == Some(&'(');
                // `sum by (service) (…)`: an aggregation, its grouping first.
                let next_word: String =
                    chars[next..].iter().take_while(|c| is_ident(**c)).collect();
                let grouped = matches!(next_word.as_str(), "by" | "without");
                if KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
                    if call {
                        // by (service), on (service) …: label names.
                        i = skip_to(next + 1, ')');
                    }
                } else if !call && !grouped {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn metric_names_are_read_from_promql_and_nothing_else() {
    let expr = r#"histogram_quantile(0.95, sum by (le, service) (rate(a_bucket{service=~"$service", x="}"}[$__rate_interval])))
        / on (service) group_left (form) b:ratio offset 1h > 3 * 3600 unless absent(up{job="j"}) or sum(c) without (d)"#;
    let names: Vec<String> = metric_names(expr).into_iter().collect();
    assert_eq!(names, ["a_bucket", "b:ratio", "c", "up"]);
    assert_eq!(
        metric_names("time() - max by (service) (m_seconds) > 3 * 3600"),
        BTreeSet::from(["m_seconds".to_owned()])
    );
}

/// Every metric name a Prometheus text page serves: its samples' names,
/// and the names its `# TYPE` lines imply (a histogram's `_bucket`, `_sum`
/// and `_count`; an OpenMetrics counter's `_total`), so a family that has
/// no sample yet (no outage happened) still counts as served.
fn served(page: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            let suffixes: &[&str] = match kind {
                "histogram" => &["_bucket", "_sum", "_count"],
                "counter" if !name.ends_with("_total") => &["_total"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// Every `expr` in the alert rules, with its alert's name.
fn alert_exprs() -> Vec<(String, String)> {
    let rules = yaml(ALERTS);
    at(&rules, &["groups"])
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| at(group, &["rules"]).as_array().unwrap())
        .map(|rule| {
            let name = at(rule, &["alert"]).as_str().unwrap().to_owned();
            (name, at(rule, &["expr"]).as_str().unwrap().to_owned())
        })
        .collect()
}

/// Every `expr` anywhere in the dashboard (panel targets), with its
/// panel's title, and the metrics its variables query.
fn dashboard_exprs() -> Vec<(String, String)> {
    fn walk(value: &Value, title: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                let title = map.get("title").and_then(Value::as_str).unwrap_or(title);
                if let Some(Value::String(expr)) = map.get("expr") {
                    out.push((title.to_owned(), expr.clone()));
                }
                map.values().for_each(|v| walk(v, title, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, title, out)),
            _ => {}
        }
    }
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    let mut out = Vec::new();
    walk(at(&dashboard, &["panels"]), "", &mut out);
    for variable in at(&dashboard, &["templating", "list"]).as_array().unwrap() {
        if let Some(query) = variable["query"]["query"].as_str() {
            // label_values(metric, label): the metric only.
            let metric = query
                .strip_prefix("label_values(")
                .and_then(|q| q.split_once(','))
                .map_or(query, |(m, _)| m);
            out.push((format!("variable {}", variable["name"]), metric.to_owned()));
        }
    }
    out
}

#[test]
fn the_alert_rules_cover_each_failure_and_promtool_accepts_them() {
    let names: BTreeSet<String> = alert_exprs().into_iter().map(|(n, _)| n).collect();
    for want in [
        "SisImporterDown",
        "SisImporterAbsent",
        "SisImporterServiceFailing",
        "SisImporterNoSuccess",
        "SisImporterDeadLettersIncreasing",
        "SisImporterServiceForbidden",
        "SisImporterOutage",
    ] {
        assert!(names.contains(want), "no {want} in {names:?}");
    }
    let rules = yaml(ALERTS);
    for rule in at(&rules, &["groups", "0", "rules"]).as_array().unwrap() {
        assert!(rule["labels"]["severity"].is_string(), "{rule}");
        assert!(rule["annotations"]["summary"].is_string(), "{rule}");
    }
    let Some(promtool) = tool("promtool", "promtool check rules") else {
        return;
    };
    let said = run_ok(
        Command::new(promtool)
            .args(["check", "rules", ALERTS])
            .current_dir(repo()),
    );
    assert!(said.contains("SUCCESS"), "{said}");
}

#[test]
fn the_dashboard_has_a_datasource_variable_and_the_promised_panels() {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    assert!(at(&dashboard, &["schemaVersion"]).as_u64().unwrap() >= 39);
    let variables = at(&dashboard, &["templating", "list"]).as_array().unwrap();
    assert!(variables.iter().any(|v| v["name"] == "datasource"
        && v["type"] == "datasource"
        && v["query"] == "prometheus"));
    let panels = at(&dashboard, &["panels"]).as_array().unwrap();
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    for panel in panels {
        assert_eq!(
            at(panel, &["datasource", "uid"]),
            "${datasource}",
            "{}",
            panel["title"]
        );
    }
    let exprs = dashboard_exprs();
    let uses = |metric: &str| exprs.iter().any(|(_, e)| metric_names(e).contains(metric));
    for metric in [
        "sis_importer_entities_acknowledged_total",
        "sis_importer_committed_ordinal",
        "sis_importer_last_success_timestamp_seconds",
        "sis_importer_dead_letters",
        "sis_importer_sisu_request_duration_seconds_bucket",
        "sis_importer_outages_total",
    ] {
        assert!(uses(metric), "no panel shows {metric}");
    }
    assert!(exprs
        .iter()
        .any(|(_, e)| e.starts_with("histogram_quantile(")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_dashboard_use_only_metrics_that_metrics_serves() {
    let env = Env::start(30).await;
    env.fake.faults().poison("PERSON", 3);
    env.fake.faults().forbid("DISCLOSURE");
    env.fake.faults().fail_next("PLAN", 404, 1);
    // Every answer twice: the second is ignored, and counted so.
    env.consumer.set_duplicate_feedback(true);
    let importer = env.importer(env.config()).await;
    importer
        .run(
            &services(&["PERSON", "PLAN", "DISCLOSURE"]),
            Shutdown::never(),
        )
        .await
        .unwrap();
    let page = sis_importer::metrics::render();
    let mut served = served(&page);
    served.extend(FROM_PROMETHEUS.map(String::from));

    let mut used = alert_exprs();
    used.extend(dashboard_exprs());
    let mut missing = Vec::new();
    for (place, expr) in &used {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{place}: no metric in {expr}");
        missing.extend(
            names
                .into_iter()
                .filter(|n| !served.contains(n))
                .map(|n| format!("{place}: {n}")),
        );
    }
    assert!(
        missing.is_empty(),
        "not served by /metrics: {missing:#?}\n{page}"
    );
}
