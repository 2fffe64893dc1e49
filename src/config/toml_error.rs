//! A TOML file's error as an operator can act on it: file, line and
//! column, the key it concerns, and one line of what is wrong.
//!
//! The toml crate knows where an error lies (a byte span) but, for errors
//! of a value, says only what it expected (`invalid type: string "ten",
//! expected u32`); the key is found here by parsing the file once more
//! with spans and looking for the entry that holds the span.

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::ConfigError;

/// `error`, raised reading `text` from `path`, located.
pub(super) fn located(path: &Path, text: &str, error: &toml::de::Error) -> ConfigError {
    let span = error.span();
    let (line, column) = span
        .as_ref()
        .map_or((1, 1), |span| line_and_column(text, span.start));
    ConfigError::Parse {
        path: path.to_owned(),
        line,
        column,
        key: span.and_then(|span| key_at(text, span)),
        message: one_line(error.message()),
    }
}

/// The 1-based line and column (in characters) of byte `at` of `text`.
fn line_and_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// The dotted path of the entry whose key or value holds `span`
/// (`fetch_amount`, `extra_services[0].source`), if any. A file that does
/// not parse still yields the entries read before the syntax error.
fn key_at(text: &str, span: Range<usize>) -> Option<String> {
    let (document, _) = DeTable::parse_recoverable(text);
    let mut path = String::new();
    in_table(document.get_ref(), &span, &mut path).then_some(path)
}

/// Extends `path` to the entry of `table` (or of a table within it) that
/// holds `span`; false, `path` unchanged, when none does. Tables and
/// arrays are searched even when their own span does not hold it: the
/// span of an array of tables is its first header only.
fn in_table(table: &DeTable<'_>, span: &Range<usize>, path: &mut String) -> bool {
    table.iter().any(|(key, value)| {
        let before = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key.get_ref());
        let here = holds(key.span(), span) || holds(value.span(), span);
        if in_value(value, span, path) || here {
            return true;
        }
        path.truncate(before);
        false
    })
}

/// Like [`in_table`], for the tables and arrays inside `value`.
fn in_value(value: &Spanned<DeValue<'_>>, span: &Range<usize>, path: &mut String) -> bool {
    match value.get_ref() {
        DeValue::Table(table) => in_table(table, span, path),
        DeValue::Array(items) => items.iter().enumerate().any(|(i, item)| {
            let before = path.len();
            path.push_str(&format!("[{i}]"));
            if in_value(item, span, path) || holds(item.span(), span) {
                return true;
            }
            path.truncate(before);
            false
        }),
        _ => false,
    }
}

/// Whether `outer` holds the start of `inner` (an empty `inner` at the end
/// of `outer` included: a value missing at the end of a line).
fn holds(outer: Range<usize>, inner: &Range<usize>) -> bool {
    outer.contains(&inner.start) || (inner.is_empty() && outer.end == inner.start)
}

/// `message` on one line, the list of every key after an unknown one left
/// out (docs/configuration.md has them).
fn one_line(message: &str) -> String {
    let message = match message.split_once(", expected one of ") {
        Some((unknown, _)) if unknown.starts_with("unknown field") => {
            format!("{unknown}: not a setting (docs/configuration.md lists them)")
        }
        _ => message.to_owned(),
    };
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn error(text: &str) -> String {
        Config::from_toml_text(Path::new("importer.toml"), text)
            .expect_err(text)
            .to_string()
    }

    #[test]
    fn a_bad_value_names_file_line_column_and_key() {
        assert_eq!(
            error("sis_api_url = \"http://x\"\n\nfetch_amount = \"ten\"\n"),
            "importer.toml:3:16: key fetch_amount: invalid type: string \"ten\", expected u32"
        );
        assert_eq!(
            error("cron = 5\n"),
            "importer.toml:1:8: key cron: invalid type: integer `5`, expected a string"
        );
    }

    #[test]
    fn durations_keep_their_key() {
        assert_eq!(
            error("lease_ttl_secs = -1\n"),
            "importer.toml:1:18: key lease_ttl_secs: invalid value: integer `-1`, \
             expected a whole, non-negative number of seconds"
        );
        assert_eq!(
            error("sis_retry_base_ms = 1.5\n"),
            "importer.toml:1:21: key sis_retry_base_ms: invalid type: floating point `1.5`, \
             expected a whole, non-negative number of milliseconds"
        );
        assert_eq!(
            error("x = 1\n[y]\n"),
            "importer.toml:1:1: key x: unknown field `x`: not a setting (docs/configuration.md lists them)"
        );
        assert_eq!(
            error("  shutdown_grace_secs = -1.0"),
            "importer.toml:1:25: key shutdown_grace_secs: must be a finite, non-negative \
             number of seconds, not -1"
        );
        assert_eq!(
            error("panic_timeout_secs = \"soon\""),
            "importer.toml:1:22: key panic_timeout_secs: invalid type: string \"soon\", \
             expected a number of seconds (fractions allowed)"
        );
    }

    #[test]
    fn keys_inside_tables_and_arrays_are_dotted() {
        assert_eq!(
            error("[[extra_services]]\nid = \"A\"\nsource = \"ori\"\npath = \"/a\"\nsubject = \"A\"\nordinal_key = \"A\"\n\n[[extra_services]]\nid = 1\n"),
            "importer.toml:9:6: key extra_services[1].id: invalid type: integer `1`, expected a string"
        );
        assert!(error("[[extra_services]]\nid = \"A\"\n")
            .starts_with("importer.toml:1:1: key extra_services[0]: missing field `source`"),);
    }

    #[test]
    fn syntax_errors_have_a_place_and_the_key_when_one_was_read() {
        assert_eq!(
            error("fetch_amount = 10\nport = \n"),
            "importer.toml:2:8: key port: string values must be quoted, expected literal string"
        );
        assert_eq!(
            error("fetch_amount = 10\n= 3\n"),
            error("fetch_amount = 10\n= 3\n").lines().next().unwrap(),
            "one line"
        );
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_and_column("a = \"ä\"\nbb", 10), (2, 2));
        assert_eq!(line_and_column("ää", 3), (1, 2));
        assert_eq!(line_and_column("", 5), (1, 1));
    }
}
