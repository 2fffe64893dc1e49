//! The head of an export page, read while its body is still arriving:
//! real Sisu writes `greatestOrdinal` and `hasMore` before `entities`
//! (SISU-SHAPES.md), so the next page's cursor is known from the first
//! bytes, and the next request can go out while this page's entities are
//! still on the wire. Nothing here decides what a page is worth: the
//! whole page is scanned and checked as before, and an early request whose
//! cursor the checked page does not confirm is discarded.

/// What the bytes so far say of the page's paging fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Head {
    /// Both fields came before `entities`: the next page's cursor, and
    /// whether there is a next page.
    Known {
        /// `greatestOrdinal`.
        greatest: i64,
        /// `hasMore`.
        has_more: bool,
    },
    /// Not enough bytes yet.
    NeedMore,
    /// The fields come after `entities`, or the head is not the plain
    /// shape this reads (a nested value before them, a `null`, bad JSON):
    /// no early request; the full scan says what the page is.
    Never,
}

/// How far into a body the head is looked for: the paging fields are a
/// few dozen bytes; past this it is not the shape this reads.
const MAX_HEAD: usize = 4096;

/// Reads the head of `prefix`, the first bytes of a page.
pub(crate) fn read_head(prefix: &[u8]) -> Head {
    let mut reader = Reader {
        bytes: prefix,
        at: 0,
    };
    match reader.head() {
        Ok(head) => head,
        Err(Short) if prefix.len() < MAX_HEAD => Head::NeedMore,
        Err(Short) => Head::Never,
    }
}

/// The bytes ran out before the head was read.
struct Short;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn head(&mut self) -> Result<Head, Short> {
        let (mut greatest, mut has_more) = (None, None);
        if self.next_token()? != b'{' {
            return Ok(Head::Never);
        }
        loop {
            if let (Some(greatest), Some(has_more)) = (greatest, has_more) {
                return Ok(Head::Known { greatest, has_more });
            }
            match self.next_token()? {
                b'"' => {}
                _ => return Ok(Head::Never),
            }
            let Some(key) = self.key()? else {
                return Ok(Head::Never);
            };
            if self.next_token()? != b':' {
                return Ok(Head::Never);
            }
            self.skip_space()?;
            let understood = match key {
                b"greatestOrdinal" => self.integer()?.map(|g| greatest = Some(g)),
                b"hasMore" => self.boolean()?.map(|b| has_more = Some(b)),
                // The entities come first: the head is at the end.
                b"entities" => None,
                // Another field first: stepped over when it is a scalar.
                _ => self.scalar()?,
            };
            if understood.is_none() {
                return Ok(Head::Never);
            }
            match self.next_token()? {
                b',' => {}
                _ => return Ok(Head::Never),
            }
        }
    }

    fn peek(&self) -> Result<u8, Short> {
        self.bytes.get(self.at).copied().ok_or(Short)
    }

    /// Skips white space; the position of the next byte.
    fn skip_space(&mut self) -> Result<usize, Short> {
        while matches!(self.peek()?, b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
        Ok(self.at)
    }

    fn next_token(&mut self) -> Result<u8, Short> {
        self.skip_space()?;
        let b = self.peek()?;
        self.at += 1;
        Ok(b)
    }

    /// A key after its opening quote; `None` for one with escapes (the
    /// paging fields have none).
    fn key(&mut self) -> Result<Option<&'a [u8]>, Short> {
        let start = self.at;
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Ok(Some(&self.bytes[start..self.at - 1]));
                }
                b'\\' => return Ok(None),
                _ => self.at += 1,
            }
        }
    }

    /// The bytes of a number or literal, once its end has arrived.
    fn word(&mut self) -> Result<&'a [u8], Short> {
        let start = self.at;
        while !matches!(self.peek()?, b',' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
        Ok(&self.bytes[start..self.at])
    }

    fn integer(&mut self) -> Result<Option<i64>, Short> {
        let word = self.word()?;
        Ok(std::str::from_utf8(word).ok().and_then(|w| w.parse().ok()))
    }

    fn boolean(&mut self) -> Result<Option<bool>, Short> {
        Ok(match self.word()? {
            b"true" => Some(true),
            b"false" => Some(false),
            _ => None,
        })
    }

    /// A string, number or literal; `None` for an object or array.
    fn scalar(&mut self) -> Result<Option<()>, Short> {
        match self.peek()? {
            b'{' | b'[' => Ok(None),
            b'"' => {
                self.at += 1;
                loop {
                    match self.peek()? {
                        b'\\' => self.at += 2,
                        b'"' => {
                            self.at += 1;
                            return Ok(Some(()));
                        }
                        _ => self.at += 1,
                    }
                }
            }
            _ => self.word().map(|_| Some(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_first_are_read_from_the_first_bytes() {
        let page = br#"{"greatestOrdinal":1234,"hasMore":true,"entities":[{"id":"a"#;
        assert_eq!(
            read_head(page),
            Head::Known {
                greatest: 1234,
                has_more: true
            }
        );
        let spaced = b"{ \"hasMore\" : false ,\n \"note\": \"a \\\" b\", \"greatestOrdinal\": -5, ";
        assert_eq!(
            read_head(spaced),
            Head::Known {
                greatest: -5,
                has_more: false
            }
        );
    }

    #[test]
    fn every_prefix_of_a_head_asks_for_more() {
        let page = br#"{"greatestOrdinal":1234,"hasMore":true,"entities":[]}"#;
        let known = br#"{"greatestOrdinal":1234,"hasMore":true,"#.len();
        for cut in 0..known {
            assert_eq!(read_head(&page[..cut]), Head::NeedMore, "cut at {cut}");
        }
        assert!(matches!(read_head(&page[..known]), Head::Known { .. }));
    }

    #[test]
    fn fields_last_or_an_unusual_head_never_start_early() {
        for page in [
            &br#"{"entities":[{"id":"a"}],"greatestOrdinal":3,"hasMore":true}"#[..],
            br#"{"greatestOrdinal":3,"entities":[],"hasMore":true}"#,
            br#"{"greatestOrdinal":null,"hasMore":true,"entities":[]}"#,
            br#"{"greatestOrdinal":"3","hasMore":true,"entities":[]}"#,
            br#"{"meta":{"x":1},"greatestOrdinal":3,"hasMore":true}"#,
            br#"<html><body>502</body></html>"#,
            br#"[1,2,3]"#,
        ] {
            assert_eq!(
                read_head(page),
                Head::Never,
                "{}",
                String::from_utf8_lossy(page)
            );
        }
        let long = format!(r#"{{"x":"{}""#, "y".repeat(MAX_HEAD));
        assert_eq!(read_head(long.as_bytes()), Head::Never);
    }
}
