//! Entity shapes of the 17 export services (SISU-SHAPES.md): which fields
//! each carries and how its ids look. Every entity is a pure function of
//! (seed, service, identity, change index), so any page can be rebuilt on
//! demand without storing anything.
//!
//! Fields that must stay the same in every version of an identity (its id,
//! the identity fields of term registrations and primalities, names) come
//! from `fixed`, a generator seeded by the identity; fields a change may
//! alter come from `vary`, seeded by the change.
//!
//! # Layout
//! - `people`, `study_rights`, `curriculum`, `modules`, `teaching`,
//!   `participation`: the services' entities, by Sisu's domains.
//! - `ids`: how entity `idx` of a service is named.

mod curriculum;
mod ids;
mod modules;
mod participation;
mod people;
mod study_rights;
mod teaching;

pub use ids::{id_year, module_kind, uuid, write_id, ModuleKind};

use super::json::{Day, Json, Millis, Rng};

/// The export services the fake generates, in catalogue order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    Person,
    Organisation,
    CourseUnit,
    Education,
    StudyRight,
    TermRegistration,
    AssessmentItem,
    CourseUnitRealisation,
    Location,
    StudyEvent,
    Attainment,
    Module,
    StudyRightPrimality,
    Enrolment,
    Plan,
    PersonGroup,
    Disclosure,
}

impl Shape {
    /// The shape of a catalogue export service id.
    pub fn of(service_id: &str) -> Option<Shape> {
        use Shape::*;
        Some(match service_id {
            "PERSON" => Person,
            "ORGANISATION" => Organisation,
            "COURSE_UNIT" => CourseUnit,
            "EDUCATION" => Education,
            "STUDY_RIGHT" => StudyRight,
            "TERM_REGISTRATION" => TermRegistration,
            "ASSESMENT_ITEM" => AssessmentItem,
            "COURSE_UNIT_REALISATION" => CourseUnitRealisation,
            "LOCATION" => Location,
            "STUDY_EVENT" => StudyEvent,
            "ATTAINMENT" => Attainment,
            "MODULE" => Module,
            "STUDY_RIGHT_PRIMALITY" => StudyRightPrimality,
            "ENROLMENT" => Enrolment,
            "PLAN" => Plan,
            "PERSON_GROUP" => PersonGroup,
            "DISCLOSURE" => Disclosure,
            _ => return None,
        })
    }

    /// Share of DRAFT documents in generation 0 and in later changes, in
    /// percent: educations are drafted far more often than anything else.
    pub fn draft_percent(self) -> (u64, u64) {
        match self {
            Shape::Education => (10, 5),
            _ => (3, 0),
        }
    }
}

/// One change being written: which identity, which version, and the two
/// generators its fields come from.
pub struct Change {
    /// The service.
    pub shape: Shape,
    /// The fake's seed.
    pub seed: u64,
    /// Generation-0 size: references to other entities pick below it.
    pub population: u64,
    /// Which identity this change is a version of.
    pub identity: u64,
    /// `metadata.modificationOrdinal`.
    pub ordinal: i64,
    /// `documentState`.
    pub state: &'static str,
    /// When this version was made.
    pub at: Millis,
    /// When the identity's first version was made.
    pub created: Millis,
    /// Seeded by the identity: fields every version shares.
    pub fixed: Rng,
    /// Seeded by the change: fields a new version may alter.
    pub vary: Rng,
}

impl Change {
    /// Writes the id of a random generation-0 entity of `shape` (from the
    /// `fixed` generator when `stable`, else from `vary`).
    pub fn ref_id(&mut self, shape: Shape, stable: bool) -> impl FnOnce(&mut String) {
        let rng = if stable {
            &mut self.fixed
        } else {
            &mut self.vary
        };
        let idx = rng.below(self.population.max(1));
        let seed = self.seed;
        move |buf: &mut String| write_id(buf, shape, seed, idx)
    }

    /// `"key":"<id of a random shape entity>"`.
    pub fn f_ref(&mut self, w: &mut Json, key: &str, shape: Shape, stable: bool) {
        let f = self.ref_id(shape, stable);
        w.f_with(key, f);
    }

    /// `"key":[ids…]` with `n` random references.
    pub fn f_refs(&mut self, w: &mut Json, key: &str, shape: Shape, n: u64, stable: bool) {
        w.key(key);
        w.open_arr();
        for _ in 0..n {
            let f = self.ref_id(shape, stable);
            w.with(f);
        }
        w.close_arr();
    }

    /// Opens the entity with the fields every export entity starts with,
    /// in real Sisu's order: `metadata`, then `documentState`; the shape
    /// writes its identity fields next. `full` adds the revision and audit
    /// fields most Sisu documents carry.
    pub fn begin(&mut self, w: &mut Json, full: bool) {
        w.open();
        w.key("metadata");
        w.open();
        if full {
            w.f_int("revision", self.revision());
            let creator = self.ref_id(Shape::Person, true);
            w.f_with("createdBy", creator);
            w.f_fmt("createdOn", format_args!("{}", self.created));
            let modifier = self.ref_id(Shape::Person, false);
            w.f_with("lastModifiedBy", modifier);
            w.f_fmt("lastModifiedOn", format_args!("{}", self.at));
        }
        w.f_int("modificationOrdinal", self.ordinal);
        w.close();
        w.f_str("documentState", self.state);
    }

    /// `metadata.revision`, Sisu's count of saves: a first version had a
    /// few before the export saw it, a later one adds a save per month
    /// since. Counting an identity's versions exactly would need the whole
    /// log, and nothing reads revisions (ordinals order versions).
    fn revision(&mut self) -> i64 {
        const MONTH_MS: i64 = 30 * 86_400_000;
        let before = 1 + self.fixed.below(4) as i64;
        if self.at == self.created {
            before
        } else {
            before + 1 + (self.at.0 - self.created.0) / MONTH_MS
        }
    }

    /// A day within `years` years before this change (`stable`: before the
    /// identity's first version, the same in every version).
    pub fn day_before(&mut self, years: u64, stable: bool) -> Day {
        let (rng, from) = if stable {
            (&mut self.fixed, self.created)
        } else {
            (&mut self.vary, self.at)
        };
        from.day().plus(-(rng.below(years * 365 + 1) as i64))
    }

    /// An academic-year start (1 August) between `from` and the year of the
    /// identity's first version, the same in every version (it is part of a
    /// primality's identity).
    pub fn term_start(&mut self, from: i64) -> Day {
        let (year, _, _) = self.created.day().civil();
        Day::ymd(
            from + self.fixed.below((year - from).max(0) as u64 + 1) as i64,
            8,
            1,
        )
    }

    /// `"id":"<this identity's id>"`.
    pub fn f_id(&self, w: &mut Json) {
        w.f_with("id", |buf| {
            write_id(buf, self.shape, self.seed, self.identity)
        });
    }

    /// `"organisations":[{organisationId, roleUrn, share}]`, 1–2 entries.
    pub fn f_organisations(&mut self, w: &mut Json) {
        let n = self.fixed.range(1, 2);
        w.key("organisations");
        w.open_arr();
        for i in 0..n {
            w.open();
            self.f_ref(w, "organisationId", Shape::Organisation, true);
            w.f_str(
                "roleUrn",
                "urn:code:organisation-role:responsible-organisation",
            );
            w.f_raw("share", if n == 1 { "1" } else { "0.5" });
            w.f_raw("educationalInstitutionUrn", "null");
            w.f_bool("validityPeriodOverride", i > 0);
            w.close();
        }
        w.close_arr();
    }

    /// `"responsibilityInfos":[{personId, roleUrn, text, validityPeriod}]`.
    pub fn f_responsibilities(&mut self, w: &mut Json, role_book: &str, roles: &[&str], max: u64) {
        let n = self.vary.range(1, max);
        w.key("responsibilityInfos");
        w.open_arr();
        for _ in 0..n {
            w.open();
            self.f_ref(w, "personId", Shape::Person, false);
            let role = self.vary.pick(roles);
            w.f_fmt("roleUrn", format_args!("urn:code:{role_book}:{role}"));
            w.f_raw("text", "null");
            w.key("validityPeriod");
            w.open();
            w.close();
            w.close();
        }
        w.close_arr();
    }

    /// `"key":{"min":…,"max":…}` credits; most courses are 5 credits.
    pub fn f_credits(&mut self, w: &mut Json, key: &str, choices: &[u64]) {
        let min = self.fixed.pick(choices);
        let max = if self.fixed.chance(20) {
            min + self.fixed.range(1, 5)
        } else {
            min
        };
        w.key(key);
        w.open();
        w.f_int("min", min as i64);
        w.f_int("max", max as i64);
        w.close();
    }

    /// `"studyFields":[…]`: one or two study-field URNs of the identity.
    pub fn f_study_fields(&mut self, w: &mut Json) {
        let first = self.fixed.below(STUDY_FIELDS.len() as u64) as usize;
        let n = self.fixed.range(1, 2) as usize;
        let end = (first + n).min(STUDY_FIELDS.len());
        w.f_strs("studyFields", &STUDY_FIELDS[first..end]);
    }

    /// `"universityOrgIds":["hy-university-root-id"]`, the default root
    /// org the importer's `ROOT_ORG_ID` names.
    pub fn f_university(w: &mut Json) {
        w.f_strs("universityOrgIds", &[ROOT_ORG]);
    }

    /// `"curriculumPeriodIds":[…]`: consecutive academic years.
    pub fn f_curriculum_periods(&mut self, w: &mut Json) {
        let (year, _, _) = self.at.day().civil();
        let first = year - 1950 - self.fixed.below(4) as i64;
        let n = self.fixed.range(1, 4) as i64;
        w.key("curriculumPeriodIds");
        w.open_arr();
        for p in first..first + n {
            w.fmt(format_args!("hy-lv-{p}"));
        }
        w.close_arr();
    }
}

/// Codes of the `urn:code:study-level` book, for courses, modules and
/// attainments.
pub const LEVELS: &[&str] = &[
    "basic-studies",
    "intermediate-studies",
    "advanced-studies",
    "other-studies",
];

/// `urn:code:study-field` codes, for courses, modules and attainments.
pub const STUDY_FIELDS: &[&str] = &[
    "urn:code:study-field:4:3",
    "urn:code:study-field:4:1",
    "urn:code:study-field:1:1",
    "urn:code:study-field:6:2",
    "urn:code:study-field:2:4",
    "urn:code:study-field:3:1",
];

/// Language URNs of attainment and teaching languages.
pub const LANGS: &[&str] = &[
    "urn:code:language:fi",
    "urn:code:language:en",
    "urn:code:language:sv",
];

/// The root organisation every generated document belongs to.
pub const ROOT_ORG: &str = "hy-university-root-id";

/// Writes the entity of one change (without a trailing separator).
pub fn write_entity(w: &mut Json, c: &mut Change) {
    use Shape::*;
    match c.shape {
        Person => people::person(w, c),
        StudyRight => study_rights::study_right(w, c),
        TermRegistration => study_rights::term_registration(w, c),
        Attainment => people::attainment(w, c),
        StudyRightPrimality => study_rights::primality(w, c),
        Enrolment => participation::enrolment(w, c),
        Plan => participation::plan(w, c),
        PersonGroup => participation::person_group(w, c),
        Disclosure => participation::disclosure(w, c),
        Organisation => curriculum::organisation(w, c),
        CourseUnit => curriculum::course_unit(w, c),
        Education => curriculum::education(w, c),
        AssessmentItem => curriculum::assessment_item(w, c),
        CourseUnitRealisation => teaching::realisation(w, c),
        Location => teaching::location(w, c),
        StudyEvent => teaching::study_event(w, c),
        Module => modules::module(w, c),
    }
}
