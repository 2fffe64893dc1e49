//! [`ScanError`]: why a body is not an export page, told for the
//! operator: where it shows, which field has the wrong type and what it
//! holds instead, in which entity, and whether the body simply ended
//! before its JSON did (a page cut short).

/// Why a body is not an export page, and the byte offset where that shows.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ScanError {
    /// Byte offset into the body.
    pub at: usize,
    /// What is wrong there.
    pub what: &'static str,
    /// For a field of the wrong type: what the page has there instead
    /// (`a string`).
    pub found: Option<&'static str>,
    /// Where in `entities` the scan stopped, when it did: how many entities
    /// were complete, and whether it stopped inside the next one.
    pub entities: Option<(usize, bool)>,
    /// The body ended before the JSON did: its length.
    pub truncated: Option<usize>,
}

impl ScanError {
    pub(super) fn new(at: usize, what: &'static str) -> Self {
        ScanError {
            at,
            what,
            found: None,
            entities: None,
            truncated: None,
        }
    }

    /// What was being read when the body ended (`a string`).
    fn cut_in(&self) -> &'static str {
        match self.what {
            "unterminated string" | "invalid escape" | "invalid \\u escape" => "a string",
            "invalid number" => "a number",
            "not UTF-8" => "a UTF-8 character",
            "expected `,` or `]`" => "an array",
            "expected `,` or `}`" | "expected `:`" | "expected a string" => "an object",
            _ => "a value",
        }
    }
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(len) = self.truncated else {
            f.write_str(self.what)?;
            if let Some(found) = self.found {
                write!(f, ", found {found}")?;
            }
            write!(f, " at byte {}", self.at)?;
            return match self.entities {
                Some((complete, true)) => write!(f, ", in entity {} of `entities`", complete + 1),
                Some((complete, false)) => write!(f, ", after entity {complete} of `entities`"),
                None => Ok(()),
            };
        };
        write!(
            f,
            "truncated: the page ends at byte {len} in the middle of "
        )?;
        match self.entities {
            Some((complete, true)) => write!(
                f,
                "{} in entity {} of `entities`",
                self.cut_in(),
                complete + 1
            ),
            Some((0, false)) => write!(f, "`entities`, before its first entity"),
            Some((complete, false)) => write!(f, "`entities`, after entity {complete}"),
            // Checked before the scan, so its place in the page is not known.
            None if self.what == "not UTF-8" => write!(f, "a UTF-8 character"),
            None if matches!(self.cut_in(), "a value" | "an object") => {
                write!(f, "the page object")
            }
            None => write!(f, "{} in the page object", self.cut_in()),
        }
    }
}
