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
