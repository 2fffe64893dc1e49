//! A student's records (ORI): persons, study rights, term registrations,
//! attainments and study-right primalities.

use super::{write_id, Change, Shape};
use crate::fake_sisu::json::{Day, Json};
use crate::fake_sisu::words::{self, ascii_lower};

const LANGUAGES: &[&str] = &["fi", "fi", "fi", "sv", "en"];
const COUNTRIES: &[&str] = &[
    "246", "246", "246", "246", "752", "233", "643", "156", "276", "356",
];

/// PERSON: names, contact details and codes; about 1–1.5 KB.
pub fn person(w: &mut Json, c: &mut Change) {
    let first = c.fixed.pick(words::FIRST_NAMES);
    let second = c.fixed.chance(60).then(|| c.fixed.pick(words::FIRST_NAMES));
    let last = c.fixed.pick(words::LAST_NAMES);
    let born = Day::ymd(1950, 1, 1).plus(c.fixed.below(55 * 365) as i64);
    let lang = c.fixed.pick(LANGUAGES);
    c.begin(w, true);
    c.f_id(w);
    w.f_fmt(
        "studentNumber",
        format_args!("0{}", 12_000_000 + c.identity),
    );
    w.f_fmt("dateOfBirth", format_args!("{born}"));
    w.f_with("firstNames", |b| {
        b.push_str(first);
        if let Some(second) = second {
            b.push(' ');
            b.push_str(second);
        }
    });
    w.f_str("lastName", last);
    w.f_str("callName", first);
    let login = |b: &mut String| {
        ascii_lower(first, b);
        b.push('.');
        ascii_lower(last, b);
    };
    w.f_with("eduPersonPrincipalName", |b| {
        login(b);
        b.push_str("@helsinki.fi");
    });
    w.f_with("primaryEmail", |b| {
        login(b);
        b.push_str("@helsinki.fi");
    });
    w.f_raw("secondaryEmail", "null");
    w.f_fmt(
        "phoneNumber",
        format_args!("+358 40 {:07}", c.vary.below(10_000_000)),
    );
    w.f_fmt(
        "oppijaID",
        format_args!("1.2.246.562.24.{:011}", c.fixed.below(100_000_000_000)),
    );
    let country = c.fixed.pick(COUNTRIES);
    w.key("citizenshipUrns");
    w.open_arr();
    w.fmt(format_args!("urn:code:country:{country}"));
    if c.fixed.chance(5) {
        w.str("urn:code:country:246");
    }
    w.close_arr();
    w.f_bool("dead", c.vary.chance(1));
    let gender = ["female", "male", "other"][c.fixed.below(3) as usize];
    w.f_fmt("genderUrn", format_args!("urn:code:gender:{gender}"));
    w.key("primaryAddress");
    w.open();
    w.f_str("type", "FinnishAddress");
    let street = c.vary.pick(words::STREETS);
    w.f_fmt(
        "streetAddress",
        format_args!("{street} {} A {}", c.vary.range(1, 80), c.vary.range(1, 40)),
    );
    w.f_fmt("postalCode", format_args!("00{}", c.vary.range(100, 990)));
    w.f_str("city", c.vary.pick(words::CITIES));
    w.f_str("countryUrn", "urn:code:country:246");
    w.close();
    w.f_raw("secondaryAddress", "null");
    w.f_fmt(
        "preferredLanguageUrn",
        format_args!("urn:code:language:{lang}"),
    );
    w.f_fmt("motherTongueUrn", format_args!("urn:code:language:{lang}"));
    w.f_fmt(
        "schoolEducationLanguageUrn",
        format_args!("urn:code:school-education-language:{lang}"),
    );
    w.f_fmt(
        "municipalityUrn",
        format_args!("urn:code:municipality:{:03}", c.fixed.range(5, 990)),
    );
    let (y, m, d) = born.civil();
    let century = if y >= 2000 { 'A' } else { '-' };
    let check = b"0123456789ABCDEFHJKLMNPRSTUVWXY"[c.fixed.below(31) as usize] as char;
    w.f_fmt(
        "personalIdentityCode",
        format_args!(
            "{d:02}{m:02}{:02}{century}{:03}{check}",
            y % 100,
            c.fixed.range(2, 899)
        ),
    );
    w.close();
}

/// STUDY_RIGHT (snapshot): one version per change; about 1.5 KB.
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
    w.f_str("state", c.vary.pick(STATES));
    let end = start.plus(365 * c.fixed.range(3, 7) as i64);
    w.f_period("valid", start, Some(end));
    w.f_fmt(
        "grantDate",
        format_args!("{}", start.plus(-(c.fixed.range(30, 90) as i64))),
    );
    w.f_fmt("studyStartDate", format_args!("{start}"));
    w.key("acceptedSelectionPath");
    w.open();
    for key in [
        "educationPhase1GroupId",
        "educationPhase1ChildGroupId",
        "educationPhase2GroupId",
    ] {
        c.f_ref(w, key, Shape::Module, true);
    }
    w.f_raw("educationPhase2ChildGroupId", "null");
    w.close();
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
    w.key("phase1MinorSelections");
    w.open_arr();
    for _ in 0..c.vary.below(4) {
        w.open();
        c.f_ref(w, "moduleGroupId", Shape::Module, false);
        w.f_str("selectionDateTime", "2020-01-13T09:42:07.317");
        w.close();
    }
    w.close_arr();
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
    w.f_raw("studyRightGraduation", "null");
    w.f_raw("studyRightCancellation", "null");
    w.close();
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

/// ATTAINMENT: grades of courses, modules and degrees; about 1.5 KB.
pub fn attainment(w: &mut Json, c: &mut Change) {
    const TYPES: &[(&str, Shape)] = &[
        ("CourseUnitAttainment", Shape::CourseUnit),
        ("CourseUnitAttainment", Shape::CourseUnit),
        ("AssessmentItemAttainment", Shape::AssessmentItem),
        ("AssessmentItemAttainment", Shape::AssessmentItem),
        ("ModuleAttainment", Shape::Module),
        ("DegreeProgrammeAttainment", Shape::Module),
        ("CustomCourseUnitAttainment", Shape::CourseUnit),
        ("CustomModuleAttainment", Shape::Module),
    ];
    let (kind, target) = c.fixed.pick(TYPES);
    let date = c.day_before(3, true);
    let subject = c.fixed.pick(words::SUBJECTS);
    c.begin(w, true);
    c.f_id(w);
    c.f_ref(w, "personId", Shape::Person, true);
    c.f_ref(w, "verifierPersonId", Shape::Person, true);
    c.f_ref(w, "studyRightId", Shape::StudyRight, true);
    w.f_fmt("attainmentDate", format_args!("{date}"));
    w.f_fmt(
        "registrationDate",
        format_args!("{}", date.plus(c.fixed.range(0, 30) as i64)),
    );
    w.f_fmt("expiryDate", format_args!("{}", date.plus(3652)));
    w.key("acceptorPersons");
    w.open_arr();
    w.open();
    c.f_ref(w, "personId", Shape::Person, true);
    w.f_str("roleUrn", "urn:code:attainment-acceptor-type:approved-by");
    w.f_raw("text", "null");
    w.close();
    w.close_arr();
    c.f_organisations(w);
    w.f_str(
        "state",
        if c.vary.chance(85) {
            "ATTAINED"
        } else {
            "INCLUDED"
        },
    );
    w.f_bool("misregistration", c.vary.chance(2));
    w.f_raw("misregistrationRationale", "null");
    w.f_bool("primary", c.vary.chance(90));
    w.f_int("credits", c.fixed.pick(&[1, 2, 3, 5, 5, 5, 10, 15, 180]));
    w.f_str(
        "gradeScaleId",
        if c.fixed.chance(75) {
            "sis-0-5"
        } else {
            "sis-hyl-hyv"
        },
    );
    w.f_int("gradeId", c.vary.range(0, 5) as i64);
    w.f_loc("name", subject);
    match target {
        Shape::AssessmentItem => c.f_ref(w, "assessmentItemId", target, true),
        Shape::Module => c.f_ref(w, "moduleId", target, true),
        _ => c.f_ref(w, "courseUnitId", target, true),
    }
    w.f_fmt("code", format_args!("TKT{:05}", c.fixed.below(100_000)));
    w.f_str("type", kind);
    w.f_fmt(
        "attainmentLanguageUrn",
        format_args!("urn:code:language:{}", c.fixed.pick(LANGUAGES)),
    );
    w.key("nodes");
    w.open_arr();
    w.close_arr();
    let parts = c.fixed.below(3);
    c.f_refs(
        w,
        "assessmentItemAttainmentIds",
        Shape::Attainment,
        parts,
        true,
    );
    w.f_raw("additionalInfo", "null");
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
