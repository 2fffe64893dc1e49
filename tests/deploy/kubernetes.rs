//! `deploy/kubernetes/`: every manifest parses, and what the importer
//! decides is what the manifests say: the probe paths, the admin port,
//! the stop time, the setting names. `kubectl kustomize` renders the
//! whole when kubectl is installed (no cluster is needed for that; none
//! is reachable here, so the manifests are never applied).

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use sis_importer::config::{defaults, ENV_NAMES};

use crate::support::{at, default_stop_time, read, run_ok, tool, yaml, yaml_documents};

const DIR: &str = "deploy/kubernetes";

/// The settings that carry credentials: never in the ConfigMap.
const SECRETS: [&str; 7] = [
    "REDIS_URL",
    "ADMIN_TOKEN",
    "NATS_PASSWORD",
    "NATS_TOKEN",
    "API_KEY",
    "SIS_API_PASSWORD",
    "PROXY_TOKEN",
];

/// Variables the process reads besides the settings.
const OTHER_ENV: [&str; 2] = ["RUST_LOG", "SIS_IMPORTER_CONFIG"];

fn manifest(name: &str) -> Value {
    yaml(&format!("{DIR}/{name}"))
}

fn keys(map: &Value) -> BTreeSet<String> {
    map.as_object()
        .unwrap_or_else(|| panic!("not a map: {map}"))
        .keys()
        .cloned()
        .collect()
}

/// `inner`'s entries are all in `outer`.
fn is_sub_map(inner: &Value, outer: &Value) -> bool {
    inner
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| outer.get(k) == Some(v))
}

#[test]
fn the_kustomization_lists_every_manifest_but_the_secret_example() {
    let kustomization = manifest("kustomization.yaml");
    let listed: BTreeSet<String> = at(&kustomization, &["resources"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(crate::support::repo().join(DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    let expected: BTreeSet<String> = on_disk
        .iter()
        .filter(|n| *n != "secret.example.yaml")
        .cloned()
        .collect();
    assert_eq!(
        listed, expected,
        "applied with -k: every manifest, no placeholders"
    );
    for name in &on_disk {
        let doc = manifest(name);
        assert!(
            doc["apiVersion"].is_string() && doc["kind"].is_string(),
            "{name}"
        );
    }
    // The image tag is the crate's version.
    let manifest_toml: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let version = manifest_toml["package"]["version"].as_str().unwrap();
    assert_eq!(at(&kustomization, &["images", "0", "newTag"]), version);

    let Some(kubectl) = tool("kubectl", "rendering with kubectl kustomize") else {
        return;
    };
    let rendered = run_ok(
        Command::new(kubectl)
            .args(["kustomize", DIR])
            .current_dir(crate::support::repo()),
    );
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&rendered)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kinds: BTreeSet<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ConfigMap", "Deployment", "Service", "ServiceMonitor"]),
        "{rendered}"
    );
    let image = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .map(|d| at(d, &["spec", "template", "spec", "containers", "0", "image"]).clone())
        .unwrap();
    assert_eq!(
        image,
        format!("registry.example.org/sis-importer:{version}")
    );
}

#[test]
fn the_deployment_probes_stops_and_listens_as_the_importer_does() {
    let deployment = manifest("deployment.yaml");
    let pod = at(&deployment, &["spec", "template", "spec"]);
    let container = at(pod, &["containers", "0"]);
    assert_eq!(at(container, &["args"]), &serde_json::json!(["run"]));

    // One admin port, the default, named for the probes and the Service.
    let port = at(container, &["ports", "0"]);
    assert_eq!(at(port, &["containerPort"]), u64::from(defaults::PORT));
    let port_name = at(port, &["name"]).as_str().unwrap();
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = at(container, &[probe, "httpGet"]);
        assert_eq!(at(get, &["path"]), path, "{probe}");
        assert_eq!(at(get, &["port"]), port_name, "{probe}");
    }

    // SIGTERM's drain and POST_UPDATE fit before the kill.
    let grace = at(pod, &["terminationGracePeriodSeconds"])
        .as_u64()
        .unwrap();
    assert!(
        grace > default_stop_time().as_secs(),
        "terminationGracePeriodSeconds {grace} ≤ {:?}",
        default_stop_time()
    );

    // The image's user, and nothing written to the image.
    assert_eq!(at(pod, &["securityContext", "runAsNonRoot"]), true);
    assert_eq!(at(pod, &["securityContext", "runAsUser"]), 10001);
    assert_eq!(
        at(container, &["securityContext", "readOnlyRootFilesystem"]),
        true
    );
    assert!(at(container, &["resources", "limits", "memory"]).is_string());

    // Replicas wait for the lease rather than import side by side.
    assert!(at(&deployment, &["spec", "replicas"]).as_u64().unwrap() >= 2);
    let labels = at(&deployment, &["spec", "template", "metadata", "labels"]);
    assert!(is_sub_map(
        at(&deployment, &["spec", "selector", "matchLabels"]),
        labels
    ));

    // The Service and the ServiceMonitor reach that port on those pods.
    let service = manifest("service.yaml");
    assert!(is_sub_map(at(&service, &["spec", "selector"]), labels));
    let service_port = at(&service, &["spec", "ports", "0"]);
    assert_eq!(at(service_port, &["port"]), u64::from(defaults::PORT));
    assert_eq!(at(service_port, &["targetPort"]), port_name);
    let monitor = manifest("servicemonitor.yaml");
    assert_eq!(at(&monitor, &["apiVersion"]), "monitoring.coreos.com/v1");
    assert!(is_sub_map(
        at(&monitor, &["spec", "selector", "matchLabels"]),
        at(&service, &["metadata", "labels"])
    ));
    let endpoint = at(&monitor, &["spec", "endpoints", "0"]);
    assert_eq!(at(endpoint, &["port"]), at(service_port, &["name"]));
    assert_eq!(at(endpoint, &["path"]), "/metrics");

    // The environment comes from the ConfigMap and the Secret by name.
    let sources: Vec<&str> = at(container, &["envFrom"])
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| ["configMapRef", "secretRef"].map(|r| s.get(r)))
        .flatten()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["sis-importer", "sis-importer"]);
}

#[test]
fn the_configmap_and_the_secret_name_only_real_settings() {
    let config = manifest("configmap.yaml");
    let data = at(&config, &["data"]);
    let mut known: BTreeSet<&str> = ENV_NAMES.iter().copied().collect();
    known.extend(OTHER_ENV);
    for key in keys(data) {
        assert!(
            known.contains(key.as_str()),
            "ConfigMap key {key} is not a setting"
        );
        assert!(
            !SECRETS.contains(&key.as_str()),
            "{key} belongs in the Secret"
        );
        assert!(
            data[&key].is_string(),
            "{key}: ConfigMap values are strings"
        );
    }
    assert_eq!(at(data, &["PORT"]), defaults::PORT.to_string().as_str());
    // The mounted certificate paths are under the Secret volume's mount.
    let deployment = manifest("deployment.yaml");
    let mount = at(
        &deployment,
        &[
            "spec",
            "template",
            "spec",
            "containers",
            "0",
            "volumeMounts",
            "0",
            "mountPath",
        ],
    )
    .as_str()
    .unwrap();
    for key in ["KEY_PATH", "CERT_PATH", "CA_PATH"] {
        let path = at(data, &[key]).as_str().unwrap();
        assert!(
            path.starts_with(&format!("{mount}/")),
            "{key} {path} outside {mount}"
        );
    }

    let secret = manifest("secret.example.yaml");
    let values = at(&secret, &["stringData"]);
    for key in keys(values) {
        assert!(
            ENV_NAMES.contains(&key.as_str()),
            "Secret key {key} is not a setting"
        );
        assert!(
            SECRETS.contains(&key.as_str()),
            "{key} is no secret: ConfigMap"
        );
        let value = values[&key].as_str().unwrap();
        assert!(
            value.contains("CHANGE-ME"),
            "{key}: placeholders only, not {value:?}"
        );
    }
    // Every file holds one document; none holds a second Secret.
    let secrets = std::fs::read_dir(crate::support::repo().join(DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml"))
        .flat_map(|n| yaml_documents(&format!("{DIR}/{n}")))
        .filter(|d| d["kind"] == "Secret")
        .count();
    assert_eq!(secrets, 1);
}
