//! `sis-importer.example.toml` at the top of the repository: it parses
//! with the importer's own loader, its uncommented lines are exactly the
//! built-in defaults, and it names every setting the loader knows, each
//! with a one-line comment, so a setting added to `Config` without a line
//! here fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Visitor};
use sis_importer::config::{Config, ENV_NAMES};

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sis-importer.example.toml")
}

fn example_text() -> String {
    std::fs::read_to_string(example_path()).unwrap()
}

/// The TOML keys `Config` accepts, asked of its `Deserialize` impl itself
/// (the field list serde hands to `deserialize_struct`, renames included).
fn loader_keys() -> BTreeSet<&'static str> {
    struct FieldNames<'a>(&'a mut Option<&'static [&'static str]>);

    impl<'de> de::Deserializer<'de> for FieldNames<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("Config is not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = Some(fields);
            Err(de::Error::custom("only the field names were wanted"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields = None;
    let _ = Config::deserialize(FieldNames(&mut fields));
    fields
        .expect("Config deserializes as a struct")
        .iter()
        .copied()
        .collect()
}

/// A line that sets a key, commented out or not: `key = value`,
/// `# key = value`.
fn setting(line: &str) -> Option<(&str, bool)> {
    let (commented, rest) = match line.strip_prefix("# ") {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let (key, _) = rest.split_once(" = ")?;
    let is_key = !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    is_key.then_some((key, commented))
}

#[test]
fn it_parses_and_equals_the_defaults_but_the_sisu_url() {
    let mut config = Config::from_toml_file(&example_path()).unwrap();
    config
        .validate()
        .expect("the example is a valid configuration");
    assert_eq!(
        config.sis_api_url.as_deref(),
        Some("https://sisu.example.org")
    );
    config.sis_api_url = None;
    let defaults = Config::default();
    // Debug shows every field but the values of secrets, compared apart.
    assert_eq!(format!("{config:#?}"), format!("{defaults:#?}"));
    assert_eq!(config.redis_url, defaults.redis_url);
}

#[test]
fn it_names_every_setting_of_the_loader_once() {
    let text = example_text();
    let mut written = BTreeSet::new();
    for line in text.lines() {
        if let Some((key, _)) = setting(line) {
            assert!(written.insert(key), "`{key}` is written twice");
        }
    }
    let known = loader_keys();
    assert!(known.len() > 40, "{known:?}");
    let missing: Vec<_> = known.difference(&written).collect();
    let unknown: Vec<_> = written.difference(&known).collect();
    assert!(
        missing.is_empty(),
        "settings missing from the example: {missing:?}"
    );
    assert!(unknown.is_empty(), "not settings: {unknown:?}");
}

#[test]
fn every_setting_has_a_one_line_comment_and_every_variable_is_named() {
    let text = example_text();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some((key, _)) = setting(line) else {
            continue;
        };
        let above = if i > 0 { lines[i - 1] } else { "" };
        let described = above.starts_with("# ") && setting(above).is_none();
        assert!(described, "`{key}` has no comment line above it");
        assert!(lines[i - 1].len() > 10, "`{key}`: the comment says nothing");
    }
    for name in ENV_NAMES {
        assert!(text.contains(&format!("[{name}]")), "{name} is not named");
    }
}

#[test]
fn commented_out_settings_parse_when_uncommented() {
    let uncommented: String = example_text()
        .lines()
        .map(|line| match setting(line) {
            Some((_, true)) => &line[2..],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = Config::from_toml_text(Path::new("uncommented.toml"), &uncommented)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(config.admin_token.is_some());
    assert_eq!(config.extra_services.len(), 1);
    assert_eq!(config.services.as_deref().map(<[_]>::len), Some(2));
}
