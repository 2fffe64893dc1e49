//! A validating scan of one export page (`{"hasMore":…,"greatestOrdinal":…,
//! "entities":[…]}`): one pass that checks the whole body is valid JSON
//! (RFC 8259: UTF-8, grammar, escapes, numbers, nothing after the object)
//! and returns where each entity lies, so entities become slices of the
//! body without a copy.
//!
//! It replaces serde_json on the importer's hottest path: the page body is
//! most of the bytes the importer touches, and serde_json's validation of
//! it (through borrowed `RawValue`s, checking UTF-8 once more per entity)
//! was the largest item of its CPU profile. This scan checks UTF-8 once for
//! the whole body (simdutf8) and finds the end of each string 16 bytes at a
//! time (SSE2, part of every x86_64; a byte at a time elsewhere), about
//! twice serde_json's speed on Sisu-shaped pages. Its tests hold it to
//! serde_json's verdicts on generated and mutated pages.
//!
//! Differences from serde_json, none of which a JSON encoder produces: a
//! body that is not UTF-8 anywhere is refused (serde_json only looks at
//! strings it decodes); the three field names are compared as written (a
//! key spelled with `\u` escapes is another key); a lone UTF-16 surrogate
//! escape in a top-level key is accepted, as RFC 8259's grammar allows
//! (serde_json refuses it there, and accepts it inside entities). Nesting
//! deeper than 128 levels is refused, as serde_json does.

use std::ops::Range;

/// Why a body is not an export page, and the byte offset where that shows.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ScanError {
    /// Byte offset into the body.
    pub at: usize,
    /// What is wrong there.
    pub what: &'static str,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

/// The page's fields as found: `None` when the field is absent, an inner
/// `None` when it is `null`.
#[derive(Debug, Default)]
pub(crate) struct Scanned {
    /// `hasMore`.
    pub has_more: Option<bool>,
    /// `greatestOrdinal`.
    pub greatest_ordinal: Option<Option<i64>>,
    /// `entities`: the byte range of each element in the body.
    pub entities: Option<Option<Vec<Range<usize>>>>,
}

const MAX_DEPTH: usize = 128;

/// Checks that `body` is one valid JSON object (RFC 8259, UTF-8) and
/// reads the export page's fields from it; see the module doc.
pub(crate) fn scan_page(body: &[u8]) -> Result<Scanned, ScanError> {
    if simdutf8::basic::from_utf8(body).is_err() {
        let at = std::str::from_utf8(body).map_or_else(|e| e.valid_up_to(), |_| 0);
        return Err(ScanError {
            at,
            what: "not UTF-8",
        });
    }
    let mut s = Scanner { b: body, i: 0 };
    let mut out = Scanned::default();
    s.ws();
    s.expect(b'{', "expected `{` (an export page is a JSON object)")?;
    s.members(
        |s| {
            let key = s.string()?;
            s.ws();
            s.expect(b':', "expected `:`")?;
            s.ws();
            match &body[key] {
                b"hasMore" => {
                    if out.has_more.is_some() {
                        return s.fail("duplicate field `hasMore`");
                    }
                    out.has_more = Some(s.boolean()?);
                }
                b"greatestOrdinal" => {
                    if out.greatest_ordinal.is_some() {
                        return s.fail("duplicate field `greatestOrdinal`");
                    }
                    out.greatest_ordinal = Some(s.opt_i64()?);
                }
                b"entities" => {
                    if out.entities.is_some() {
                        return s.fail("duplicate field `entities`");
                    }
                    out.entities = Some(s.opt_elements()?);
                }
                _ => s.value(0)?,
            }
            Ok(())
        },
        b'}',
    )?;
    s.ws();
    if s.i != body.len() {
        return s.fail("trailing characters");
    }
    Ok(out)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn fail<T>(&self, what: &'static str) -> Result<T, ScanError> {
        Err(ScanError { at: self.i, what })
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let c = self.b.get(self.i).copied();
        self.i += 1;
        c
    }

    #[inline]
    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), ScanError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            self.fail(what)
        }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// A string at `i`; returns the range of its contents.
    #[inline(always)]
    fn string(&mut self) -> Result<Range<usize>, ScanError> {
        self.expect(b'"', "expected a string")?;
        let start = self.i;
        loop {
            self.skip_plain();
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(start..self.i - 1);
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.next() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                        Some(b'u') => {
                            let hex = self.b.get(self.i..self.i + 4);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return self.fail("invalid \\u escape");
                            }
                            self.i += 4;
                        }
                        _ => {
                            self.i -= 1;
                            return self.fail("invalid escape");
                        }
                    }
                }
                Some(_) => return self.fail("control character in a string"),
                None => return self.fail("unterminated string"),
            }
        }
    }

    /// Skips string bytes up to a quote, backslash, control byte or the end.
    #[inline(always)]
    fn skip_plain(&mut self) {
        let b = self.b;
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::*;
            // SAFETY: SSE2 is part of x86_64 itself (no feature detection
            // needed), and every load reads 16 bytes inside `b`
            // (`i + 16 <= len`), unaligned loads being allowed.
            unsafe {
                let quote = _mm_set1_epi8(b'"' as i8);
                let slash = _mm_set1_epi8(b'\\' as i8);
                let ctrl = _mm_set1_epi8(0x1f);
                while self.i + 16 <= b.len() {
                    let x = _mm_loadu_si128(b.as_ptr().add(self.i) as *const __m128i);
                    // Unsigned x <= 0x1f  <=>  max(x, 0x1f) == 0x1f.
                    let low = _mm_cmpeq_epi8(_mm_max_epu8(x, ctrl), ctrl);
                    let hits = _mm_or_si128(
                        _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, slash)),
                        low,
                    );
                    let mask = _mm_movemask_epi8(hits) as u32;
                    if mask != 0 {
                        self.i += mask.trailing_zeros() as usize;
                        return;
                    }
                    self.i += 16;
                }
            }
        }
        while let Some(c) = self.peek() {
            if c == b'"' || c == b'\\' || c < 0x20 {
                return;
            }
            self.i += 1;
        }
    }

    fn boolean(&mut self) -> Result<bool, ScanError> {
        if self.b[self.i..].starts_with(b"true") {
            self.i += 4;
            Ok(true)
        } else if self.b[self.i..].starts_with(b"false") {
            self.i += 5;
            Ok(false)
        } else {
            self.fail("`hasMore` must be true or false")
        }
    }

    fn opt_i64(&mut self) -> Result<Option<i64>, ScanError> {
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            return Ok(None);
        }
        let start = self.i;
        self.number()?;
        let text = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("");
        // `-0` is a float to serde_json (it keeps the sign), hence not an
        // integer ordinal.
        match text.parse::<i64>() {
            Ok(v) if text != "-0" => Ok(Some(v)),
            _ => Err(ScanError {
                at: start,
                what: "`greatestOrdinal` must be an integer",
            }),
        }
    }

    fn opt_elements(&mut self) -> Result<Option<Vec<Range<usize>>>, ScanError> {
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            return Ok(None);
        }
        self.expect(b'[', "`entities` must be an array")?;
        let mut out = Vec::new();
        self.members(
            |s| {
                let start = s.i;
                s.value(1)?;
                out.push(start..s.i);
                Ok(())
            },
            b']',
        )?;
        Ok(Some(out))
    }

    /// The members of an object or array whose opening bracket was just
    /// read, up to and including `close`: `member` reads one (from its
    /// first byte), this the whitespace and commas around them.
    #[inline(always)]
    fn members(
        &mut self,
        mut member: impl FnMut(&mut Self) -> Result<(), ScanError>,
        close: u8,
    ) -> Result<(), ScanError> {
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            member(self)?;
            self.ws();
            match self.next() {
                Some(b',') => continue,
                Some(c) if c == close => return Ok(()),
                _ => {
                    self.i -= 1;
                    return self.fail(if close == b'}' {
                        "expected `,` or `}`"
                    } else {
                        "expected `,` or `]`"
                    });
                }
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), ScanError> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(open @ (b'{' | b'[')) => {
                if depth >= MAX_DEPTH {
                    return self.fail("nested too deeply");
                }
                self.i += 1;
                if open == b'{' {
                    self.members(
                        |s| {
                            s.string()?;
                            s.ws();
                            s.expect(b':', "expected `:`")?;
                            s.ws();
                            s.value(depth + 1)
                        },
                        b'}',
                    )
                } else {
                    self.members(|s| s.value(depth + 1), b']')
                }
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => self.fail("expected a value"),
            None => self.fail("unexpected end"),
        }
    }

    #[inline]
    fn literal(&mut self, word: &[u8]) -> Result<(), ScanError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            self.fail("invalid literal")
        }
    }

    #[inline]
    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<(), ScanError> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.fail("invalid number"),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return self.fail("invalid number");
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return self.fail("invalid number");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "page_scan_tests.rs"]
mod tests;
