//! The change log of one export service, as arithmetic. Change `k` has
//! ordinal `base + k·STRIDE + jitter(k)` with `jitter < STRIDE`: ordinals
//! rise strictly, are not dense, and "the first change after `since`" is a
//! division. Changes `0..initial` are generation 0 (one per identity); a
//! later change updates or deletes an earlier identity or starts a new one.
//! Nothing is stored: a page is rendered from the indexes it covers.

use super::json::{mix, Json, Millis, Rng};
use super::shapes::{write_entity, Change, Shape};

/// Ordinals start near what production shows (about 2.5 × 10^8).
pub const ORDINAL_BASE: i64 = 250_000_000;
/// Mean gap between consecutive ordinals of one service.
pub const STRIDE: i64 = 5;
/// Largest page served, whatever `limit` asks (Sisu caps it too), so one
/// request can never make the fake build a gigabyte.
pub const MAX_LIMIT: u64 = 10_000;
/// Generation 0 spreads over the seven years from 2017-08-01T00:00:00Z,
/// whatever its size, so dates look plausible; later changes follow it,
/// one every `STEP_MS` on average.
const T0_MS: i64 = 1_501_545_600_000;
const SPAN_MS: i64 = 7 * 365 * 86_400_000;
const STEP_MS: i64 = 37_000;

/// Percent of later changes that delete an existing identity.
const LATER_DELETED: u64 = 15;
/// Percent of later changes that start a new identity; the rest (less a
/// service's drafts) update an existing one.
const LATER_NEW: u64 = 15;

/// Extra fields a fault adds to one entity.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Extra {
    /// Adds `"testError": true`, which the reference consumer rejects.
    pub poison: bool,
    /// Pads the entity to at least this many bytes.
    pub oversize: Option<usize>,
}

/// Where an export page puts its paging fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldOrder {
    /// `greatestOrdinal`, `hasMore`, then `entities`: real Sisu's order.
    #[default]
    Sisu,
    /// `entities` first, then `hasMore` and `greatestOrdinal`, so a client
    /// reading the body as a stream meets the paging fields only at its
    /// end.
    FieldsLast,
}

impl FieldOrder {
    /// Writes a page object around `entities`, which writes the elements
    /// of the `entities` array.
    pub fn write_page(
        self,
        w: &mut Json,
        greatest: i64,
        has_more: bool,
        entities: impl FnOnce(&mut Json),
    ) {
        w.open();
        if self == FieldOrder::Sisu {
            w.f_int("greatestOrdinal", greatest);
            w.f_bool("hasMore", has_more);
        }
        w.key("entities");
        w.open_arr();
        entities(w);
        w.close_arr();
        if self == FieldOrder::FieldsLast {
            w.f_bool("hasMore", has_more);
            w.f_int("greatestOrdinal", greatest);
        }
        w.close();
    }

    /// A page without entities.
    pub fn empty_page(self, greatest: i64, has_more: bool) -> String {
        let mut w = Json::new(String::with_capacity(80));
        self.write_page(&mut w, greatest, has_more, |_| {});
        w.buf
    }
}

/// The change log of one export service.
#[derive(Clone, Copy, Debug)]
pub struct Log {
    /// Which service.
    pub shape: Shape,
    /// The fake's seed.
    pub seed: u64,
    /// Generation-0 size: distinct identities.
    pub initial: u64,
    base: i64,
    salt: u64,
}

impl Log {
    /// The log of `shape`, the `position`-th service of the catalogue.
    pub fn new(seed: u64, shape: Shape, position: usize, initial: u64) -> Log {
        Log {
            shape,
            seed,
            initial,
            // Offsets keep services' ordinals apart at a glance.
            base: ORDINAL_BASE + position as i64 * 1_009,
            salt: mix(seed ^ mix(shape as u64 + 1)),
        }
    }

    /// Ordinal of change `k`; strictly increasing in `k`.
    pub fn ordinal(&self, k: u64) -> i64 {
        self.base + k as i64 * STRIDE + (mix(self.salt ^ k) % STRIDE as u64) as i64
    }

    /// Index of the first change whose ordinal is above `since`.
    pub fn first_after(&self, since: i64) -> u64 {
        if since < self.base {
            return 0;
        }
        let k = ((since - self.base) / STRIDE) as u64;
        // ordinal(k) lies in [base + k·STRIDE, base + (k+1)·STRIDE), so the
        // answer is k or k + 1.
        if self.ordinal(k) > since {
            k
        } else {
            k + 1
        }
    }

    /// Which identity change `k` is a version of. A first version is its
    /// own identity, so a new identity's id never appeared before and its
    /// first ordinal is above all earlier ones. Any other change picks a
    /// random earlier change and follows it back to the first version of
    /// its identity: an identity that exists by then, found without
    /// storing the log.
    pub fn identity(&self, k: u64) -> u64 {
        let mut k = k;
        while !self.is_first_version(k) {
            k = Rng::new(&[self.seed, self.shape as u64, k, 0x1de]).below(k);
        }
        k
    }

    /// Whether change `k` starts an identity: all of generation 0 and
    /// about `LATER_NEW`% of later changes.
    fn is_first_version(&self, k: u64) -> bool {
        let (_, draft) = self.shape.draft_percent();
        let new = LATER_DELETED + draft..LATER_DELETED + draft + LATER_NEW;
        k < self.initial || k == 0 || new.contains(&self.roll(k))
    }

    /// `documentState` of change `k`: in generation 0 ~5% DELETED and a few
    /// DRAFT; later changes ~15% DELETED, and a new identity starts ACTIVE.
    pub fn state(&self, k: u64) -> &'static str {
        let (draft0, draft_later) = self.shape.draft_percent();
        let (deleted, draft) = if k < self.initial {
            (5, draft0)
        } else {
            (LATER_DELETED, draft_later)
        };
        match self.roll(k) {
            r if r < deleted => "DELETED",
            r if r < deleted + draft => "DRAFT",
            _ => "ACTIVE",
        }
    }

    /// The one roll (0..100) that decides what change `k` does, so that
    /// its state and whether it starts an identity agree.
    fn roll(&self, k: u64) -> u64 {
        Rng::new(&[self.seed, self.shape as u64, k, 0x57]).below(100)
    }

    /// When change `k` was made; strictly increasing like the ordinal.
    fn at(&self, k: u64) -> Millis {
        let jitter = mix(self.salt ^ !k);
        if k < self.initial {
            let step = (SPAN_MS / self.initial as i64).max(1);
            Millis(T0_MS + k as i64 * step + (jitter % step as u64) as i64)
        } else {
            let later = (k - self.initial) as i64;
            Millis(T0_MS + SPAN_MS + later * STEP_MS + (jitter % STEP_MS as u64) as i64)
        }
    }

    /// Appends the JSON text of change `k` to `w`, with a fault's extras.
    pub fn write(&self, w: &mut Json, k: u64, extra: Extra) {
        let identity = self.identity(k);
        let start = w.buf.len();
        let mut change = Change {
            shape: self.shape,
            seed: self.seed,
            population: self.initial,
            identity,
            ordinal: self.ordinal(k),
            state: self.state(k),
            at: self.at(k),
            created: self.at(identity),
            fixed: Rng::new(&[self.seed, self.shape as u64, identity, 0xf1]),
            vary: Rng::new(&[self.seed, self.shape as u64, k, 0x7a]),
        };
        write_entity(w, &mut change);
        if extra == Extra::default() {
            return;
        }
        // The writer may have put a separating comma before the entity.
        let start = if w.buf[start..].starts_with(',') {
            start + 1
        } else {
            start
        };
        // Reopen the object: drop its `}`, add the fields, close again.
        w.buf.pop();
        if extra.poison {
            w.buf.push_str(",\"testError\":true");
        }
        if let Some(bytes) = extra.oversize {
            const KEY: &str = ",\"oversizePadding\":\"";
            let so_far = w.buf.len() - start + KEY.len() + 2;
            w.buf.push_str(KEY);
            w.buf
                .extend(std::iter::repeat_n('x', bytes.saturating_sub(so_far)));
            w.buf.push('"');
        }
        w.buf.push('}');
    }

    /// The JSON text of change `k` alone.
    pub fn entity(&self, k: u64, extra: Extra) -> String {
        let mut w = Json::new(String::with_capacity(2048));
        self.write(&mut w, k, extra);
        w.buf
    }

    /// The export page after `since`, of at most `limit` changes out of the
    /// `total` currently in the log, its fields in `order`. `extras` lists
    /// the faulted changes in ascending order.
    pub fn page(
        &self,
        total: u64,
        since: i64,
        limit: u64,
        extras: &[(u64, Extra)],
        order: FieldOrder,
    ) -> String {
        let first = self.first_after(since).min(total);
        let end = total.min(first.saturating_add(limit.min(MAX_LIMIT)));
        let greatest = if end > first {
            self.ordinal(end - 1)
        } else {
            since
        };
        let mut w = Json::new(String::with_capacity(64 + (end - first) as usize * 1_800));
        order.write_page(&mut w, greatest, end < total, |w| {
            let mut extras = extras.iter().skip_while(|(k, _)| *k < first).peekable();
            for k in first..end {
                let extra = match extras.next_if(|(at, _)| *at == k) {
                    Some(&(_, extra)) => extra,
                    None => Extra::default(),
                };
                self.write(w, k, extra);
            }
        });
        w.buf
    }
}
