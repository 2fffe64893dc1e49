//! Unit tests of the configuration: defaults, environment over TOML,
//! validation messages, secrets, durations and their units.

use super::*;
use std::collections::HashMap;
use std::time::Duration;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn defaults_need_only_the_sisu_url() {
    let mut c = Config::default();
    assert!(matches!(
        c.validate(),
        Err(ConfigError::Invalid {
            name: "SIS_API_URL",
            ..
        })
    ));
    c.apply_env(env(&[("SIS_API_URL", "http://localhost:1")]))
        .unwrap();
    c.validate().unwrap();
    assert_eq!(c.selected_services().unwrap().len(), 26);
    assert_eq!(c.fetch_amount, 1000);
    assert_eq!(c.panic_timeout, Duration::from_secs(15));
}

#[test]
fn environment_overrides_toml() {
    let mut c: Config = toml::from_str("fetch_amount = 10\nmax_chunk_size = 5\n").unwrap();
    c.apply_env(env(&[
        ("SIS_API_URL", "http://x"),
        ("FETCH_AMOUNT", "20"),
        ("SERVICES", "COUNTRY, PERSON"),
        ("PANIC_TIMEOUT", "0.5"),
    ]))
    .unwrap();
    c.validate().unwrap();
    assert_eq!(c.fetch_amount, 20);
    assert_eq!(c.max_chunk_size, 5);
    let ids: Vec<_> = c
        .selected_services()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        ids,
        ["PERSON", "COUNTRY"],
        "catalogue order, not the order given"
    );
    assert_eq!(c.panic_timeout, Duration::from_millis(500));
}

#[test]
fn bad_values_name_the_setting() {
    let base = [("SIS_API_URL", "http://x")];
    for (name, value) in [
        ("SERVICES", "PERSON,NOPE"),
        ("CRON", "every hour"),
        ("TZ_NAME", "Mars/Olympus"),
        ("FETCH_AMOUNT", "lots"),
        ("LOG_FORMAT", "xml"),
        ("WORKER_THREADS", "0"),
        ("NATS_URL", "nats://127.0.0.1:4222,::nonsense"),
        ("NATS_STREAM_REPLICAS", "0"),
        ("WORKER_THREADS", "two"),
    ] {
        let mut c = Config::default();
        let result = c
            .apply_env(env(&[base[0], (name, value)]))
            .and_then(|_| c.validate());
        let err = result.expect_err(name).to_string();
        assert!(err.starts_with(name), "{err}");
    }
    assert!(toml::from_str::<Config>("no_such_key = 1").is_err());
}

#[test]
fn an_empty_secret_in_the_file_is_an_error_not_an_open_door() {
    let mut c: Config = toml::from_str("sis_api_url = \"http://x\"\nadmin_token = \"\"").unwrap();
    c.apply_env(env(&[])).unwrap();
    let err = c.validate().expect_err("empty admin token").to_string();
    assert!(err.starts_with("ADMIN_TOKEN"), "{err}");
    // From the environment an empty value just means unset.
    let mut c = Config::default();
    c.apply_env(env(&[("SIS_API_URL", "http://x"), ("ADMIN_TOKEN", "")]))
        .unwrap();
    assert!(c.admin_token.is_none());
    c.validate().unwrap();
}

#[test]
fn nats_settings_come_in_pairs_and_files_must_exist() {
    for pairs in [
        &[("NATS_USER", "u")][..],
        &[("NATS_CERT_PATH", "/etc/hostname")][..],
        &[("NATS_CA_PATH", "/no/such/ca.pem")][..],
        &[("NATS_TLS", "maybe")][..],
    ] {
        let mut vars = vec![("SIS_API_URL", "http://x")];
        vars.extend_from_slice(pairs);
        let mut c = Config::default();
        let result = c.apply_env(env(&vars)).and_then(|_| c.validate());
        let err = result.expect_err(pairs[0].0).to_string();
        assert!(err.starts_with("NATS_"), "{err}");
    }
}

#[test]
fn five_field_cron_gets_seconds() {
    let c = Config {
        cron: "*/5 * * * *".into(),
        ..Config::default()
    };
    assert!(c.schedule().is_ok());
}

#[test]
fn secrets_do_not_show_in_debug() {
    let mut c = Config::default();
    c.apply_env(env(&[
        ("SIS_API_URL", "http://x"),
        ("SIS_API_USER", "u"),
        ("SIS_API_PASSWORD", "hunter2-password"),
        ("REDIS_URL", "redis://:redis-secret@localhost/"),
    ]))
    .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("hunter2-password"));
    assert!(!shown.contains("redis-secret"));
}

/// The names SPEC §7 fixes (copied from the SPEC, in its order).
const SPEC_NAMES: &[&str] = &[
    "SIS_API_URL",
    "KORI_PUBLIC_API_URL",
    "ROOT_ORG_ID",
    "SIS_API_USER",
    "SIS_API_PASSWORD",
    "PROXY_TOKEN",
    "KEY_PATH",
    "CERT_PATH",
    "API_KEY",
    "CA_PATH",
    "NATS_URL",
    "NATS_TOKEN",
    "NATS_STREAM",
    "REDIS_URL",
    "FETCH_AMOUNT",
    "MAX_CHUNK_SIZE",
    "MAX_CHUNK_BYTES",
    "PANIC_TIMEOUT",
    "UPDATE_RETRY_LIMIT",
    "SIS_RETRY_LIMIT",
    "SIS_REQUESTS_PER_SECOND",
    "SERVICE_CONCURRENCY",
    "NATS_STREAM_REPLICAS",
    "INSTANCE_ID",
    "CRON",
    "TZ_NAME",
    "SERVICES",
    "PORT",
    "ADMIN_TOKEN",
    "LOG_FORMAT",
];

#[test]
fn every_spec_variable_is_in_the_table_once() {
    for name in SPEC_NAMES {
        assert!(ENV_NAMES.contains(name), "{name} is not read");
    }
    for (i, name) in ENV_NAMES.iter().enumerate() {
        assert!(
            !ENV_NAMES[..i].contains(name),
            "{name} is in the table twice"
        );
    }
    let rows: Vec<_> = env::VARIABLES.iter().map(|v| v.name).collect();
    assert_eq!(rows, ENV_NAMES);
}

#[test]
fn every_variable_sets_its_field() {
    // A value each variable accepts; each must change what Debug shows
    // (secrets show as `Secret(***)`, so `None` → `Some` still shows; the
    // Redis URL has a default and is compared itself).
    let value = |name: &str| match name {
        "NATS_TLS" => "true",
        "LOG_FORMAT" => "json",
        "CRON" => "*/5 * * * *",
        "TZ_NAME" => "UTC",
        "SERVICES" => "PERSON",
        "PANIC_TIMEOUT" => "2.5",
        n if n.ends_with("_URL") => "http://elsewhere:1",
        _ => "7",
    };
    let before = format!("{:?}", Config::default());
    for name in ENV_NAMES {
        let mut c = Config::default();
        c.apply_env(|k| (k == *name).then(|| value(k).to_owned()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let changed = format!("{c:?}") != before || c.redis_url.expose() != defaults::REDIS_URL;
        assert!(changed, "{name} changed nothing");
    }
}

#[test]
fn durations_keep_their_units_in_toml() {
    let c: Config = toml::from_str(
        "panic_timeout_secs = 0.5\nsis_request_timeout_secs = 2\nsis_retry_base_ms = 20\n\
         sis_retry_max_ms = 200\npublish_timeout_secs = 1.5\nshutdown_grace_secs = 0.0\n\
         stream_max_age_secs = 0\nlease_ttl_secs = 5\n",
    )
    .unwrap();
    assert_eq!(c.panic_timeout, Duration::from_millis(500));
    assert_eq!(c.sis_request_timeout, Duration::from_secs(2));
    assert_eq!(c.sis_retry_base, Duration::from_millis(20));
    assert_eq!(c.sis_retry_max, Duration::from_millis(200));
    assert_eq!(c.publish_timeout, Duration::from_millis(1500));
    assert_eq!(c.shutdown_grace, Duration::ZERO);
    assert_eq!(c.stream_max_age, Duration::ZERO);
    assert_eq!(c.lease_ttl, Duration::from_secs(5));
    // The field names are not keys; whole units stay whole.
    assert!(toml::from_str::<Config>("panic_timeout = 1.0").is_err());
    assert!(toml::from_str::<Config>("lease_ttl_secs = 2.5").is_err());
    assert!(toml::from_str::<Config>("sis_retry_base_ms = 0.5").is_err());
}

#[test]
fn durations_that_cannot_be_are_refused_naming_the_setting() {
    for value in ["-1", "NaN", "inf", "1e300"] {
        let mut c = Config::default();
        let err = c
            .apply_env(env(&[("PANIC_TIMEOUT", value)]))
            .expect_err(value)
            .to_string();
        assert_eq!(
            err, "PANIC_TIMEOUT is invalid: must be a positive number of seconds",
            "{value}"
        );
    }
    for text in [
        "shutdown_grace_secs = -1.0",
        "panic_timeout_secs = -0.5",
        "publish_timeout_secs = nan",
    ] {
        let err = Config::from_toml_text(std::path::Path::new("c.toml"), text)
            .expect_err(text)
            .to_string();
        let key = text.split(' ').next().unwrap();
        assert!(
            err.contains(&format!(
                "key {key}: must be a finite, non-negative number of seconds"
            )),
            "{text}: {err}"
        );
    }
    let mut c = Config::default();
    c.apply_env(env(&[("SIS_API_URL", "http://x"), ("PANIC_TIMEOUT", "0")]))
        .unwrap();
    let err = c.validate().expect_err("zero panic timeout").to_string();
    assert!(err.starts_with("PANIC_TIMEOUT"), "{err}");
    let c: Config = toml::from_str("sis_api_url = \"http://x\"\nlease_ttl_secs = 2").unwrap();
    let err = c.validate().expect_err("short lease").to_string();
    assert!(err.starts_with("lease_ttl_secs"), "{err}");
}

#[test]
fn config_dead_letter_entity_bytes_has_a_default_and_a_toml_key() {
    assert_eq!(Config::default().dead_letter_entity_bytes, 16 * 1024 * 1024);
    let c: Config = toml::from_str("dead_letter_entity_bytes = 0").unwrap();
    assert_eq!(c.dead_letter_entity_bytes, 0);
    assert!(toml::from_str::<Config>("dead_letter_entity_bytes = -1").is_err());
}
