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
//! serde_json's verdicts on generated and mutated pages. Its errors
//! (`page_scan_error.rs`) say where the body goes wrong and, for a page cut
//! short, that it was cut and in which entity; they cost nothing until one
//! is made.
//!
//! Differences from serde_json, none of which a JSON encoder produces: a
//! body that is not UTF-8 anywhere is refused (serde_json only looks at
//! strings it decodes); the three field names are compared as written (a
//! key spelled with `\u` escapes is another key); a lone UTF-16 surrogate
//! escape in a top-level key is accepted, as RFC 8259's grammar allows
//! (serde_json refuses it there, and accepts it inside entities). Nesting
//! deeper than 128 levels is refused, as serde_json does.

use std::ops::Range;

#[path = "page_scan_error.rs"]
mod error;

pub(crate) use error::ScanError;

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
    /// Per element of `entities`, the byte ranges of the
    /// values of its top-level fields named in `scan_page`'s `names` (the
    /// first of each name), in that order (none for an element that is not
    /// an object); empty when no names were given.
    pub fields: Vec<Found>,
}

/// The values found of up to three top-level fields of one entity.
pub(crate) type Found = [Option<Range<usize>>; 3];

const MAX_DEPTH: usize = 128;

/// Checks that `body` is one valid JSON object (RFC 8259, UTF-8) and
/// reads the export page's fields from it; see the module doc. For each
/// entity that is an object, the values of its top-level fields `names`
/// (at most three: the identity fields of the service) are found on the
/// way, so the order barrier need not scan the entity again.
pub(crate) fn scan_page(body: &[u8], names: &[&str]) -> Result<Scanned, ScanError> {
    debug_assert!(names.len() <= 3);
    scan(body, names).map_err(|mut e| {
        // Every error caused by the body's end is found at its end (see
        // `Scanner::fail_unless_cut`).
        if e.at >= body.len() && !body.is_empty() {
            e.truncated = Some(body.len());
        }
        e
    })
}

fn scan(body: &[u8], names: &[&str]) -> Result<Scanned, ScanError> {
    if simdutf8::basic::from_utf8(body).is_err() {
        return Err(match std::str::from_utf8(body) {
            // A character cut off by the end of the body.
            Err(e) if e.error_len().is_none() => ScanError::new(body.len(), "not UTF-8"),
            Err(e) => ScanError::new(e.valid_up_to(), "not UTF-8"),
            Ok(_) => ScanError::new(0, "not UTF-8"),
        });
    }
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ScanError::new(
            0,
            "the answer is empty (an export page is a JSON object)",
        ));
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
                    out.entities = Some(s.opt_elements(names, &mut out.fields)?);
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
        Err(ScanError::new(self.i, what))
    }

    /// Fails with `what`, at the end of the body when the rest of it is a
    /// beginning of `word` (a literal cut off by the body's end).
    fn fail_unless_cut<T>(&self, word: &[u8], what: &'static str) -> Result<T, ScanError> {
        if word.starts_with(&self.b[self.i..]) {
            Err(ScanError::new(self.b.len(), "unexpected end"))
        } else {
            self.fail(what)
        }
    }

    /// A field of the wrong type: `what` it must be, and what it is.
    fn wrong_type<T>(&self, what: &'static str) -> Result<T, ScanError> {
        let found = match self.peek() {
            Some(b'"') => "a string",
            Some(b'{') => "an object",
            Some(b'[') => "an array",
            Some(b't' | b'f') => "a boolean",
            Some(b'n') => "null",
            Some(b'-' | b'0'..=b'9') => "a number",
            Some(_) => "something that is not JSON",
            None => return Err(ScanError::new(self.i, "unexpected end")),
        };
        Err(ScanError {
            found: Some(found),
            ..ScanError::new(self.i, what)
        })
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
        // Most strings are short and plain: their closing quote is in the
        // next 16 bytes with nothing before it to look at.
        if let Some(end) = self.plain_end() {
            self.i = end + 1;
            return Ok(start..end);
        }
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
                                if self.b[self.i..].iter().all(u8::is_ascii_hexdigit) {
                                    return Err(ScanError::new(self.b.len(), "invalid \\u escape"));
                                }
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

    /// Where the string going on at `i` ends, when its closing quote is in
    /// the next 16 bytes with no backslash or control byte before it.
    #[inline(always)]
    fn plain_end(&self) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::*;
            let b = self.b;
            if self.i + 16 <= b.len() {
                // SAFETY: as in `skip_plain`: SSE2 is part of x86_64, and
                // the load reads 16 bytes inside `b`.
                unsafe {
                    let x = _mm_loadu_si128(b.as_ptr().add(self.i) as *const __m128i);
                    let ctrl = _mm_set1_epi8(0x1f);
                    let low = _mm_cmpeq_epi8(_mm_max_epu8(x, ctrl), ctrl);
                    let other = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8)), low);
                    let quotes =
                        _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8))) as u32;
                    let others = _mm_movemask_epi8(other) as u32;
                    // The first quote, and nothing else before it.
                    let first = quotes & quotes.wrapping_neg();
                    if first != 0 && others & (first - 1) == 0 {
                        return Some(self.i + first.trailing_zeros() as usize);
                    }
                }
            }
        }
        None
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
        const WHAT: &str = "`hasMore` must be true or false";
        if self.b[self.i..].starts_with(b"true") {
            self.i += 4;
            Ok(true)
        } else if self.b[self.i..].starts_with(b"false") {
            self.i += 5;
            Ok(false)
        } else if b"false".starts_with(&self.b[self.i..]) {
            self.fail_unless_cut(b"false", WHAT)
        } else if b"true".starts_with(&self.b[self.i..]) {
            self.fail_unless_cut(b"true", WHAT)
        } else {
            self.wrong_type(WHAT)
        }
    }

    fn opt_i64(&mut self) -> Result<Option<i64>, ScanError> {
        const WHAT: &str = "`greatestOrdinal` must be an integer";
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            return Ok(None);
        }
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => {}
            Some(b'n') => return self.fail_unless_cut(b"null", WHAT),
            _ => return self.wrong_type(WHAT),
        }
        let start = self.i;
        self.number()?;
        let text = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("");
        // `-0` is a float to serde_json (it keeps the sign), hence not an
        // integer ordinal.
        match text.parse::<i64>() {
            Ok(v) if text != "-0" => Ok(Some(v)),
            _ => {
                let whole = text.bytes().all(|b| b == b'-' || b.is_ascii_digit());
                Err(ScanError {
                    found: Some(if whole && text != "-0" {
                        "a number beyond 64 bits"
                    } else {
                        "a number that is not an integer"
                    }),
                    ..ScanError::new(start, WHAT)
                })
            }
        }
    }

    fn opt_elements(
        &mut self,
        names: &[&str],
        fields: &mut Vec<Found>,
    ) -> Result<Option<Vec<Range<usize>>>, ScanError> {
        const WHAT: &str = "`entities` must be an array";
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            return Ok(None);
        }
        match self.peek() {
            Some(b'[') => self.i += 1,
            Some(b'n') => return self.fail_unless_cut(b"null", WHAT),
            _ => return self.wrong_type(WHAT),
        }
        let mut out = Vec::new();
        self.members(
            |s| {
                let start = s.i;
                let entity = if names.is_empty() {
                    s.value(1)
                } else if s.peek() != Some(b'{') {
                    // Not an object: it has no identity fields.
                    fields.push([None, None, None]);
                    s.value(1)
                } else {
                    s.object_finding(names, fields)
                };
                entity.map_err(|e| ScanError {
                    entities: Some((usize::MAX, true)),
                    ..e
                })?;
                out.push(start..s.i);
                Ok(())
            },
            b']',
        )
        .map_err(|e| {
            // Told on the error path only: the entity being read is the
            // one after those complete.
            let inside = e.entities.is_some();
            ScanError {
                entities: Some((out.len(), inside)),
                ..e
            }
        })?;
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

    /// An entity that is an object (at depth 1, its `{` next), as `value`
    /// reads it, noting the values of its top-level fields `names`.
    fn object_finding(&mut self, names: &[&str], fields: &mut Vec<Found>) -> Result<(), ScanError> {
        let mut found: Found = [None, None, None];
        self.i += 1;
        self.members(
            |s| {
                let key = s.string()?;
                s.ws();
                s.expect(b':', "expected `:`")?;
                s.ws();
                let start = s.i;
                s.value(2)?;
                let body = s.b;
                let key = &body[key];
                if let Some(slot) = names.iter().position(|n| n.as_bytes() == key) {
                    found[slot].get_or_insert(start..s.i);
                }
                Ok(())
            },
            b'}',
        )?;
        fields.push(found);
        Ok(())
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
            self.fail_unless_cut(word, "invalid literal")
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
