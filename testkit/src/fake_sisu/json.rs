//! The small tools generation is built from: a JSON text writer, a
//! SplitMix64 PRNG and calendar arithmetic. Entities are written straight
//! into one page buffer because building `serde_json::Value`s for millions of
//! entities would dominate benchmark time.

use std::fmt::Write as _;

/// SplitMix64's finaliser: a bijection on `u64`, so distinct inputs give
/// distinct outputs (used to make ids unique) and a good hash otherwise.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash of a few words, order-sensitive.
pub fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x243f_6a88_85a3_08d3, |acc, &p| {
        mix(acc ^ mix(p.wrapping_add(0x9e37_79b9_7f4a_7c15)))
    })
}

/// A SplitMix64 generator: cheap to seed, so every entity gets its own.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `parts`.
    pub fn new(parts: &[u64]) -> Self {
        Rng(hash(parts))
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Writes JSON text. Commas are handled by one flag: set after a value, so
/// the next key or array element knows to write a separator.
pub struct Json {
    /// The text written so far.
    pub buf: String,
    comma: bool,
}

impl Json {
    /// A writer appending to `buf`.
    pub fn new(buf: String) -> Self {
        Json { buf, comma: false }
    }

    fn sep(&mut self) {
        if self.comma {
            self.buf.push(',');
        }
    }

    /// Starts an object (as a value or array element).
    pub fn open(&mut self) {
        self.sep();
        self.buf.push('{');
        self.comma = false;
    }

    /// Ends the current object.
    pub fn close(&mut self) {
        self.buf.push('}');
        self.comma = true;
    }

    /// Starts an array (as a value or array element).
    pub fn open_arr(&mut self) {
        self.sep();
        self.buf.push('[');
        self.comma = false;
    }

    /// Ends the current array.
    pub fn close_arr(&mut self) {
        self.buf.push(']');
        self.comma = true;
    }

    /// Writes `"key":`; the value follows.
    pub fn key(&mut self, key: &str) {
        self.sep();
        self.buf.push('"');
        self.buf.push_str(key);
        self.buf.push_str("\":");
        self.comma = false;
    }

    /// A string value, escaped.
    pub fn str(&mut self, s: &str) {
        self.sep();
        self.buf.push('"');
        escape_into(&mut self.buf, s);
        self.buf.push('"');
        self.comma = true;
    }

    /// A string value made from format arguments (callers pass text
    /// without quotes or backslashes: ids, dates, numbers).
    pub fn fmt(&mut self, args: std::fmt::Arguments) {
        self.sep();
        self.buf.push('"');
        let _ = self.buf.write_fmt(args);
        self.buf.push('"');
        self.comma = true;
    }

    /// A string value written by `f` into the buffer (ids of other
    /// entities), so no temporary `String` is needed.
    pub fn with(&mut self, f: impl FnOnce(&mut String)) {
        self.sep();
        self.buf.push('"');
        f(&mut self.buf);
        self.buf.push('"');
        self.comma = true;
    }

    /// JSON text written as is (numbers, `null`, `true`).
    pub fn raw(&mut self, text: &str) {
        self.sep();
        self.buf.push_str(text);
        self.comma = true;
    }

    /// An integer value.
    pub fn int(&mut self, n: i64) {
        self.sep();
        let _ = write!(self.buf, "{n}");
        self.comma = true;
    }

    /// A boolean value.
    pub fn bool(&mut self, b: bool) {
        self.raw(if b { "true" } else { "false" });
    }

    /// `"key":"value"`.
    pub fn f_str(&mut self, key: &str, value: &str) {
        self.key(key);
        self.str(value);
    }

    /// `"key":"<formatted>"`.
    pub fn f_fmt(&mut self, key: &str, args: std::fmt::Arguments) {
        self.key(key);
        self.fmt(args);
    }

    /// `"key":"<written by f>"`.
    pub fn f_with(&mut self, key: &str, f: impl FnOnce(&mut String)) {
        self.key(key);
        self.with(f);
    }

    /// `"key":<integer>`.
    pub fn f_int(&mut self, key: &str, n: i64) {
        self.key(key);
        self.int(n);
    }

    /// `"key":<n / 100>`: a non-negative decimal with two digits (grade
    /// averages, study weeks).
    pub fn f_hundredths(&mut self, key: &str, n: i64) {
        self.key(key);
        let _ = write!(self.buf, "{}.{:02}", n / 100, n % 100);
        self.comma = true;
    }

    /// `"key":<bool>`.
    pub fn f_bool(&mut self, key: &str, b: bool) {
        self.key(key);
        self.bool(b);
    }

    /// `"key":<raw JSON text>`.
    pub fn f_raw(&mut self, key: &str, text: &str) {
        self.key(key);
        self.raw(text);
    }

    /// `"key":{"fi":…,"en":…,"sv":…}`, the shape of every localized text.
    pub fn f_loc(&mut self, key: &str, text: [&str; 3]) {
        self.key(key);
        self.loc(text);
    }

    /// `{"fi":…,"en":…,"sv":…}` as a value.
    pub fn loc(&mut self, [fi, en, sv]: [&str; 3]) {
        self.open();
        self.f_str("fi", fi);
        self.f_str("en", en);
        self.f_str("sv", sv);
        self.close();
    }

    /// `"key":{"startDate":…,"endDate":…}`; `end` None writes null.
    pub fn f_period(&mut self, key: &str, start: Day, end: Option<Day>) {
        self.key(key);
        self.open();
        self.f_fmt("startDate", format_args!("{start}"));
        match end {
            Some(end) => self.f_fmt("endDate", format_args!("{end}")),
            None => self.f_raw("endDate", "null"),
        }
        self.close();
    }

    /// `"key":["a","b"]` from a list of strings.
    pub fn f_strs(&mut self, key: &str, items: &[&str]) {
        self.key(key);
        self.open_arr();
        for item in items {
            self.str(item);
        }
        self.close_arr();
    }
}

/// Appends `s` with JSON escaping; the fast path copies text that needs none.
pub fn escape_into(buf: &mut String, s: &str) {
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        buf.push_str(s);
        return;
    }
    for ch in s.chars() {
        match ch {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(buf, "\\u{:04x}", c as u32);
            }
            c => buf.push(c),
        }
    }
}

/// A calendar day as days since 1970-01-01; `Display` gives `YYYY-MM-DD`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Day(pub i64);

impl Day {
    /// The day of a civil date (Howard Hinnant's `days_from_civil`).
    pub fn ymd(y: i64, m: i64, d: i64) -> Day {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Day(era * 146_097 + doe - 719_468)
    }

    /// Year, month and day (`civil_from_days`).
    pub fn civil(self) -> (i64, i64, i64) {
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (
            if m <= 2 {
                yoe + era * 400 + 1
            } else {
                yoe + era * 400
            },
            m,
            d,
        )
    }

    /// The day `n` days later.
    pub fn plus(self, n: i64) -> Day {
        Day(self.0 + n)
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, m, d) = self.civil();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// An instant in milliseconds since the epoch; `Display` gives Sisu's
/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, `local()` the zone-less snapshot form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Millis(pub i64);

impl Millis {
    /// The calendar day of the instant.
    pub fn day(self) -> Day {
        Day(self.0.div_euclid(86_400_000))
    }

    /// Displays without the `Z`, as snapshot date-times are written.
    pub fn local(self) -> Local {
        Local(self)
    }

    fn write(self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.rem_euclid(86_400_000);
        let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        write!(f, "{}T{h:02}:{m:02}:{s:02}.{milli:03}", self.day())
    }
}

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.write(f)?;
        f.write_str("Z")
    }
}

/// [`Millis`] displayed without a zone.
pub struct Local(Millis);

impl std::fmt::Display for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.write(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        assert_eq!(Day::ymd(1970, 1, 1), Day(0));
        assert_eq!(Day::ymd(2024, 2, 29).to_string(), "2024-02-29");
        assert_eq!(Day::ymd(2024, 2, 29).plus(1).to_string(), "2024-03-01");
        assert_eq!(
            Millis(1_600_000_000_123).to_string(),
            "2020-09-13T12:26:40.123Z"
        );
        assert_eq!(
            Millis(1_600_000_000_123).local().to_string(),
            "2020-09-13T12:26:40.123"
        );
    }

    #[test]
    fn writer_produces_valid_json() {
        let mut w = Json::new(String::new());
        w.open();
        w.f_str("a", "quote \" and \\ and ä–€😀");
        w.key("b");
        w.open_arr();
        w.int(1);
        w.open();
        w.f_loc("name", ["Suomi", "Finland", "Finland"]);
        w.close();
        w.close_arr();
        w.f_period("p", Day(0), None);
        w.close();
        let v: serde_json::Value = serde_json::from_str(&w.buf).unwrap();
        assert_eq!(v["a"], "quote \" and \\ and ä–€😀");
        assert_eq!(v["b"][1]["name"]["sv"], "Finland");
        assert_eq!(v["p"]["startDate"], "1970-01-01");
    }
}
