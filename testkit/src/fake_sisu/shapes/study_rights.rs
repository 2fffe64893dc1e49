//! Study rights (ORI) and what hangs on one: its term registrations and
//! primalities, the two services whose entities have no `id`.

use super::{write_id, Change, Shape};
use crate::fake_sisu::json::{Day, Json};

/// Other universities' codes (`urn:code:educational-institution`), for
/// study rights transferred in or out.
const UNIVERSITIES: &[&str] = &["10076", "10122", "10089", "01904", "10103", "01906"];

/// STUDY_RIGHT (snapshot): one version per change; about 2 KB.
pub fn study_right(w: &mut Json, c: &mut Change) {
    const STATES: &[&str] = &[
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "PASSIVE",
        "GRADUATED",
        "RESCINDED",
        "NOT_STARTED",
    ];
    let start = c.term_start(2005);
    c.begin(w, true);
    c.f_id(w);
    w.f_fmt("snapshotDateTime", format_args!("{}", c.at.local()));
    c.f_ref(w, "studentId", Shape::Person, true);
    c.f_ref(w, "educationId", Shape::Education, true);
    c.f_ref(w, "organisationId", Shape::Organisation, true);
    let state = c.vary.pick(STATES);
    w.f_str("state", state);
    let end = start.plus(365 * c.fixed.range(3, 7) as i64);
    w.f_period("valid", start, Some(end));
    w.f_fmt(
        "grantDate",
        format_args!("{}", start.plus(-(c.fixed.range(30, 90) as i64))),
    );
    w.f_fmt("studyStartDate", format_args!("{start}"));
    let population = c.population.max(1);
    let accepted = [(); 3].map(|_| c.fixed.below(population));
    f_selection_path(w, "acceptedSelectionPath", c.seed, accepted);
    // Usually what was accepted; now and then a change waiting for a
    // decision, or none asked.
    match c.vary.below(10) {
        0..=6 => f_selection_path(w, "requestedSelectionPath", c.seed, accepted),
        7 => {
            let other = [accepted[0], accepted[1], c.vary.below(population)];
            f_selection_path(w, "requestedSelectionPath", c.seed, other);
        }
        _ => w.f_raw("requestedSelectionPath", "null"),
    }
    w.key("studyRightExtensions");
    w.open_arr();
    for _ in 0..c.vary.below(3).saturating_sub(1) {
        w.open();
        w.f_fmt("extensionStartDate", format_args!("{end}"));
        w.f_int("extensionCount", 1);
        w.f_fmt("grantDate", format_args!("{}", end.plus(-40)));
        w.f_raw("deleted", "false");
        w.close();
    }
    w.close_arr();
    f_minor_selections(w, c, "phase1MinorSelections", 3);
    f_minor_selections(w, c, "phase2MinorSelections", 1);
    f_terms(w, c, start);
    f_transfers(w, c, start, end);
    f_outcome(w, state, start, end);
    f_classification(w, c);
    // Sisu sends this as a string in older documents and an array in newer.
    if c.fixed.chance(30) {
        w.f_str(
            "studyRightExpirationRulesUrn",
            "urn:code:study-right-expiration-rules:absence-counted",
        );
    } else {
        w.f_strs(
            "studyRightExpirationRulesUrn",
            &[
                "urn:code:study-right-expiration-rules:absence-counted",
                "urn:code:study-right-expiration-rules:extension-possible",
            ],
        );
    }
    w.f_fmt(
        "admissionTypeUrn",
        format_args!("urn:code:admission-type:{}", c.fixed.range(1, 8)),
    );
    w.f_strs(
        "codeUrns",
        &["urn:code:study-right-code:hy:tutkintoon-johtava"],
    );
    w.f_str(
        "decreeOnUniversityDegreesUrn",
        "urn:code:decree-on-university-degrees:794-2004",
    );
    w.close();
}

/// `"key":{educationPhase1GroupId, …}`: the modules (by index) a student
/// studies in each phase.
fn f_selection_path(w: &mut Json, key: &str, seed: u64, [phase1, child, phase2]: [u64; 3]) {
    w.key(key);
    w.open();
    for (key, idx) in [
        ("educationPhase1GroupId", phase1),
        ("educationPhase1ChildGroupId", child),
        ("educationPhase2GroupId", phase2),
    ] {
        w.f_with(key, |b| write_id(b, Shape::Module, seed, idx));
    }
    w.f_raw("educationPhase2ChildGroupId", "null");
    w.close();
}

/// `"key":[…]`: up to `max` minor subjects chosen in one phase.
fn f_minor_selections(w: &mut Json, c: &mut Change, key: &str, max: u64) {
    w.key(key);
    w.open_arr();
    for _ in 0..c.vary.below(max + 1) {
        w.open();
        c.f_ref(w, "moduleGroupId", Shape::Module, false);
        w.f_str("selectionState", "ACCEPTED");
        w.f_str("selectionDateTime", "2020-01-13T09:42:07.317");
        w.close();
    }
    w.close_arr();
}

/// `"termRegistrations":[…]`: the first few terms from the start, as the
/// study right itself lists them (TERM_REGISTRATION has the long lists).
fn f_terms(w: &mut Json, c: &mut Change, start: Day) {
    let (year, _, _) = start.civil();
    w.key("termRegistrations");
    w.open_arr();
    for t in 0..c.vary.below(4) as i64 {
        w.open();
        w.key("studyTerm");
        w.open();
        w.f_int("studyYearStartYear", year + t / 2);
        w.f_int("termIndex", t % 2);
        w.close();
        w.f_fmt("registrationDate", format_args!("{}", start.plus(182 * t)));
        w.f_str(
            "termRegistrationType",
            if c.vary.chance(85) {
                "ATTENDING"
            } else {
                "NONATTENDING"
            },
        );
        w.f_bool("statutoryAbsence", false);
        w.close();
    }
    w.close_arr();
}

/// A few study rights came from another university, a few left for one.
fn f_transfers(w: &mut Json, c: &mut Change, start: Day, end: Day) {
    if c.fixed.chance(6) {
        w.key("studyRightTransfer");
        w.open();
        let from = start.plus(-365 * c.fixed.range(1, 3) as i64);
        w.f_fmt("originalStartDate", format_args!("{from}"));
        w.f_fmt(
            "originalUniversityUrn",
            format_args!(
                "urn:code:educational-institution:{}",
                c.fixed.pick(UNIVERSITIES)
            ),
        );
        w.f_int("usedTerms", c.fixed.range(1, 6) as i64);
        w.f_int("usedAbsenceTerms", c.fixed.below(2) as i64);
        w.f_int("usedStatutoryAbsenceTerms", 0);
        w.f_raw("transferComments", "null");
        w.close();
    } else {
        w.f_raw("studyRightTransfer", "null");
    }
    if c.fixed.chance(6) {
        let out = start.plus(c.fixed.below((end.0 - start.0).max(1) as u64) as i64);
        w.f_fmt("transferOutDate", format_args!("{out}"));
        w.f_fmt(
            "transferOutUniversityUrn",
            format_args!(
                "urn:code:educational-institution:{}",
                c.fixed.pick(UNIVERSITIES)
            ),
        );
    } else {
        w.f_raw("transferOutDate", "null");
        w.f_raw("transferOutUniversityUrn", "null");
    }
}

/// How a study right ended, as its `state` says: graduated or rescinded.
fn f_outcome(w: &mut Json, state: &str, start: Day, end: Day) {
    if state == "GRADUATED" {
        w.key("studyRightGraduation");
        w.open();
        w.f_fmt(
            "phase1GraduationDate",
            format_args!("{}", start.plus(3 * 365)),
        );
        w.f_fmt("phase2GraduationDate", format_args!("{}", end.plus(-30)));
        w.close();
    } else {
        w.f_raw("studyRightGraduation", "null");
    }
    if state == "RESCINDED" {
        w.key("studyRightCancellation");
        w.open();
        w.f_fmt("cancellationDate", format_args!("{}", start.plus(400)));
        w.f_raw("cancellationReason", "null");
        w.f_str("cancellationType", "RESCINDED");
        w.close();
    } else {
        w.f_raw("studyRightCancellation", "null");
    }
}

/// The statistical classification (`urn:code:education-classification`,
/// three digits) of each phase's degree; phase 2 only for two-phase
/// degrees, and a locked one no longer follows the education's.
fn f_classification(w: &mut Json, c: &mut Change) {
    const PHASES: [(&str, &str); 2] = [
        (
            "phase1EducationClassificationUrn",
            "phase1EducationClassificationLocked",
        ),
        (
            "phase2EducationClassificationUrn",
            "phase2EducationClassificationLocked",
        ),
    ];
    for (phase, (urn, locked)) in PHASES.into_iter().enumerate() {
        if phase == 0 || c.fixed.chance(60) {
            w.f_fmt(
                urn,
                format_args!(
                    "urn:code:education-classification:{}{}{}",
                    c.fixed.range(1, 9),
                    c.fixed.range(1, 2),
                    c.fixed.range(1, 2)
                ),
            );
            w.f_bool(locked, c.fixed.chance(10));
        } else {
            w.f_raw(urn, "null");
            w.f_raw(locked, "null");
        }
    }
}

/// TERM_REGISTRATION: identity studyRightId + studentId, no `id`. Most
/// have a handful of terms; a few carry a hundred, about 21 KB.
pub fn term_registration(w: &mut Json, c: &mut Change) {
    const TYPES: &[&str] = &[
        "ATTENDING",
        "ATTENDING",
        "ATTENDING",
        "NONATTENDING",
        "MISSING",
        "NEGLECTED",
    ];
    let terms = match c.fixed.below(100) {
        0..=1 => c.fixed.range(70, 105),
        2..=14 => c.fixed.range(15, 40),
        _ => c.fixed.range(1, 14),
    } + c.vary.below(2);
    let first_year = 2024 - (terms as i64 + 1) / 2 - c.fixed.below(4) as i64;
    c.begin(w, true);
    w.f_with("studyRightId", |b| {
        write_id(b, Shape::StudyRight, c.seed, c.identity)
    });
    c.f_ref(w, "studentId", Shape::Person, true);
    w.key("termRegistrations");
    w.open_arr();
    for t in 0..terms {
        let year = first_year + (t / 2) as i64;
        w.open();
        w.key("studyTerm");
        w.open();
        w.f_int("studyYearStartYear", year);
        w.f_int("termIndex", (t % 2) as i64);
        w.close();
        let date = Day::ymd(
            year + (t % 2) as i64,
            if t % 2 == 0 { 8 } else { 1 },
            1 + (t % 28) as i64,
        );
        w.f_fmt("registrationDate", format_args!("{date}"));
        w.f_str("termRegistrationType", c.fixed.pick(TYPES));
        w.f_bool("statutoryAbsence", c.fixed.chance(3));
        w.f_raw("tuitionFeePaymentState", "null");
        w.f_bool("invalidated", false);
        w.close();
    }
    w.close_arr();
    w.key("statutoryAbsences");
    w.open_arr();
    w.close_arr();
    w.close();
}

/// STUDY_RIGHT_PRIMALITY: identity studyRightId + studentId + startDate,
/// no `id`; one of the ~200-byte documents.
pub fn primality(w: &mut Json, c: &mut Change) {
    let start = c.term_start(2010);
    c.begin(w, false);
    w.f_with("studyRightId", |b| {
        write_id(b, Shape::StudyRight, c.seed, c.identity)
    });
    c.f_ref(w, "studentId", Shape::Person, true);
    w.f_fmt("startDate", format_args!("{start}"));
    if c.vary.chance(70) {
        w.f_raw("endDate", "null");
    } else {
        w.f_fmt(
            "endDate",
            format_args!("{}", start.plus(365 * c.vary.range(1, 5) as i64)),
        );
    }
    w.close();
}
