//! Ids of generated entities: how entity `idx` of a service is named, as
//! Sisu names its documents, so that an id is a pure function of the index
//! and references between services need no lookup.

use super::Shape;
use crate::fake_sisu::json::{hash, mix, Json, Rng};
use std::fmt::Write as _;

/// The three kinds of module; a module's kind is part of its id.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    DegreeProgramme,
    StudyModule,
    GroupingModule,
}

/// The kind of module `idx`, fixed by its id.
pub fn module_kind(seed: u64, idx: u64) -> ModuleKind {
    match id_rng(seed, Shape::Module, idx).below(10) {
        0 => ModuleKind::DegreeProgramme,
        1..=6 => ModuleKind::StudyModule,
        _ => ModuleKind::GroupingModule,
    }
}

/// The year in the id of course unit or education `idx`: the start of
/// the version's validity, which its id names.
pub fn id_year(seed: u64, shape: Shape, idx: u64) -> i64 {
    2015 + id_rng(seed, shape, idx ^ 0x5eed_0000_0000_0000).below(10) as i64
}

fn id_rng(seed: u64, shape: Shape, idx: u64) -> Rng {
    Rng::new(&[seed, shape as u64, idx, 0x1d])
}

/// Writes the id of entity `idx` of `shape`. Numbers and uuids are built
/// from `idx` injectively, so generation-0 identities never collide.
pub fn write_id(buf: &mut String, shape: Shape, seed: u64, idx: u64) {
    use Shape::*;
    let mut rng = id_rng(seed, shape, idx);
    let _ = match shape {
        Person => write!(buf, "hy-hlo-{}", 10_000_000 + idx),
        Organisation => write!(buf, "hy-org-{}", 1_000_000_000 + idx),
        CourseUnit => write!(
            buf,
            "hy-CU-{}-{}-08-01",
            118_000_000 + idx,
            id_year(seed, shape, idx)
        ),
        Education => write!(
            buf,
            "hy-EDU-{}-{}-08-01",
            114_000_000 + idx,
            id_year(seed, shape, idx)
        ),
        StudyRight | TermRegistration | StudyRightPrimality => {
            write!(buf, "hy-opinoikeus-{}", 20_000_000 + idx)
        }
        AssessmentItem => write!(buf, "hy-AI-{}", 118_000_000 + idx),
        CourseUnitRealisation if rng.chance(70) => write!(buf, "hy-CUR-{}", 140_000_000 + idx),
        Attainment if rng.chance(60) => write!(buf, "hy-kur-{}", 30_000_000 + idx),
        Module if module_kind(seed, idx) == ModuleKind::DegreeProgramme => {
            write!(buf, "hy-DP-{}", 114_000_000 + idx)
        }
        Module if module_kind(seed, idx) == ModuleKind::StudyModule => {
            write!(buf, "hy-SM-{}", 114_000_000 + idx)
        }
        // The first 64 bits are a bijection of idx: unique per service.
        _ => write_uuid(buf, mix(idx ^ hash(&[seed, shape as u64])), rng.next()),
    };
}

/// Writes an `otm-<uuid>` id, Sisu's form for documents born in Sisu.
pub fn write_uuid(buf: &mut String, a: u64, b: u64) -> std::fmt::Result {
    write!(
        buf,
        "otm-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// A random `otm-<uuid>` string value (local ids, sub-group ids).
pub fn uuid(w: &mut Json, rng: &mut Rng) {
    let (a, b) = (rng.next(), rng.next());
    w.with(|buf| {
        let _ = write_uuid(buf, a, b);
    });
}
