//! A student's records (ORI): persons and attainments; study rights and
//! what hangs on them are in `study_rights`.

use super::{write_id, Change, Shape, LEVELS, STUDY_FIELDS};
use crate::fake_sisu::json::{Day, Json};
use crate::fake_sisu::words::{self, ascii_lower};
use std::fmt::Write as _;

/// Notes an attainment may carry.
#[rustfmt::skip]
const ADDITIONAL_INFO: &[[&str; 3]] = &[
    ["Hyväksiluettu aiemmista opinnoista", "Recognised from prior studies", "Tillgodoräknad från tidigare studier"],
    ["Suoritettu vaihdossa – Uppsala", "Completed on exchange – Uppsala", "Avlagd under utbyte – Uppsala"],
    ["Arvosana korotettu", "Grade raised", "Vitsordet höjt"],
];

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
    w.f_with("studentNumber", |b| student_number(b, c.identity));
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
    if c.vary.chance(25) {
        w.f_with("secondaryEmail", |b| {
            login(b);
            b.push_str("@example.fi");
        });
    } else {
        w.f_raw("secondaryEmail", "null");
    }
    // Staff who also study have an employee number.
    if c.fixed.chance(8) {
        w.f_fmt(
            "employeeNumber",
            format_args!("{:06}", 100_000 + c.identity),
        );
    } else {
        w.f_raw("employeeNumber", "null");
    }
    w.f_bool("personalDataSafetyNonDisclosure", c.fixed.chance(2));
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
    let person = c.fixed.below(c.population.max(1));
    w.f_with("personId", |b| write_id(b, Shape::Person, c.seed, person));
    w.f_with("personStudentNumber", |b| student_number(b, person));
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
    let credits = c.fixed.pick(&[1, 2, 3, 5, 5, 5, 10, 15, 180]);
    w.f_int("credits", credits);
    let numeric = c.fixed.chance(75);
    w.f_str(
        "gradeScaleId",
        if numeric { "sis-0-5" } else { "sis-hyl-hyv" },
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
    classification(w, c, kind, target, credits, numeric);
    w.close();
}

/// The attainment fields that place it in the curriculum and transcript:
/// study weeks (the pre-2005 unit, on old attainments only), the grade
/// average of module and degree attainments, level, field and course
/// type, and the realisation of an assessment-item attainment.
fn classification(
    w: &mut Json,
    c: &mut Change,
    kind: &str,
    target: Shape,
    credits: i64,
    numeric: bool,
) {
    if c.fixed.chance(15) {
        // 1.5 credits to a study week: two decimals like `gradeAverage`.
        w.f_hundredths("studyWeeks", credits * 200 / 3);
    } else {
        w.f_raw("studyWeeks", "null");
    }
    if target == Shape::Module && numeric {
        w.key("gradeAverage");
        w.open();
        w.f_str("method", "COURSE_UNIT_ARITHMETIC_MEAN_WEIGHTING_BY_CREDITS");
        w.f_hundredths("value", c.vary.range(100, 500) as i64);
        w.f_int("totalIncludedCredits", credits);
        w.f_str("gradeScaleId", "sis-0-5");
        w.close();
    } else {
        w.f_raw("gradeAverage", "null");
    }
    if c.fixed.chance(10) {
        w.f_loc("additionalInfo", c.fixed.pick(ADDITIONAL_INFO));
    } else {
        w.f_raw("additionalInfo", "null");
    }
    w.f_str("studyFieldUrn", c.fixed.pick(STUDY_FIELDS));
    w.f_fmt(
        "studyLevelUrn",
        format_args!("urn:code:study-level:{}", c.fixed.pick(LEVELS)),
    );
    match target {
        Shape::CourseUnit if kind.starts_with("Custom") => {
            w.f_str("courseUnitTypeUrn", "urn:code:course-unit-type:other")
        }
        Shape::CourseUnit => w.f_str("courseUnitTypeUrn", "urn:code:course-unit-type:regular"),
        _ => w.f_raw("courseUnitTypeUrn", "null"),
    }
    if target == Shape::AssessmentItem {
        c.f_ref(
            w,
            "courseUnitRealisationId",
            Shape::CourseUnitRealisation,
            true,
        );
    } else {
        w.f_raw("courseUnitRealisationId", "null");
    }
}

/// Writes the student number of person `idx`, as the person and their
/// attainments carry it.
fn student_number(buf: &mut String, idx: u64) {
    let _ = write!(buf, "0{}", 12_000_000 + idx);
}
