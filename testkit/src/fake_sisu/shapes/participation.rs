//! What students do and allow (ILMO, OSUVA, ORI): enrolments, study plans,
//! tutoring groups and disclosures.

use super::{uuid, Change, Shape};
use crate::fake_sisu::json::Json;
use crate::fake_sisu::words;

/// ENROLMENT (ILMO): carries `metadata.lastModifiedOn`; about 1 KB.
pub fn enrolment(w: &mut Json, c: &mut Change) {
    const STATES: &[&str] = &[
        "ENROLLED",
        "ENROLLED",
        "ENROLLED",
        "NOT_ENROLLED",
        "REJECTED",
        "PROCESSING",
        "INVALID",
    ];
    c.begin(w, true);
    c.f_id(w);
    c.f_ref(w, "personId", Shape::Person, true);
    c.f_ref(w, "studyRightId", Shape::StudyRight, true);
    c.f_ref(w, "assessmentItemId", Shape::AssessmentItem, true);
    c.f_ref(
        w,
        "courseUnitRealisationId",
        Shape::CourseUnitRealisation,
        true,
    );
    c.f_ref(w, "courseUnitId", Shape::CourseUnit, true);
    // Set once a teacher has processed the enrolment.
    if c.vary.chance(60) {
        c.f_ref(w, "verifierPersonId", Shape::Person, false);
    } else {
        w.f_raw("verifierPersonId", "null");
    }
    w.f_fmt("enrolmentDateTime", format_args!("{}", c.created.local()));
    w.f_str("state", c.vary.pick(STATES));
    let groups = c.fixed.range(1, 3);
    w.key("studySubGroups");
    w.open_arr();
    for i in 0..groups {
        w.open();
        w.key("studySubGroupId");
        uuid(w, &mut c.fixed);
        w.f_bool("isInCalendar", c.vary.chance(80));
        w.f_str(
            "enrolmentStudySubGroupPriority",
            if i == 0 { "PRIMARY" } else { "SECONDARY" },
        );
        w.close();
    }
    w.close_arr();
    w.key("confirmedStudySubGroupIds");
    w.open_arr();
    if c.vary.chance(60) {
        uuid(w, &mut c.vary);
    }
    w.close_arr();
    w.key("tentativeStudySubGroupIds");
    w.open_arr();
    w.close_arr();
    w.f_str(
        "processingState",
        if c.vary.chance(90) {
            "CURRENT_REALISATION_PROCESSED"
        } else {
            "NOT_PROCESSED"
        },
    );
    w.close();
}

/// PLAN (OSUVA): a student's study plan; 1–5 KB by the number of selections.
pub fn plan(w: &mut Json, c: &mut Change) {
    c.begin(w, true);
    c.f_id(w);
    c.f_ref(w, "userId", Shape::Person, true);
    c.f_ref(w, "rootId", Shape::Module, true);
    w.f_fmt(
        "curriculumPeriodId",
        format_args!("hy-lv-{}", 68 + c.fixed.below(7)),
    );
    c.f_ref(w, "learningOpportunityId", Shape::Education, true);
    w.f_bool("primary", c.fixed.chance(80));
    w.f_str(
        "name",
        if c.fixed.chance(50) {
            "Opintosuunnitelma"
        } else {
            "HOPS – syksy 2024 ✏️"
        },
    );
    w.key("moduleSelections");
    w.open_arr();
    for _ in 0..c.vary.range(2, 12) {
        w.open();
        c.f_ref(w, "moduleId", Shape::Module, false);
        c.f_ref(w, "parentModuleId", Shape::Module, false);
        w.close();
    }
    w.close_arr();
    w.key("courseUnitSelections");
    w.open_arr();
    for _ in 0..c.vary.range(3, 30) {
        w.open();
        c.f_ref(w, "courseUnitId", Shape::CourseUnit, false);
        c.f_ref(w, "parentModuleId", Shape::Module, false);
        w.key("substitutedBy");
        w.open_arr();
        w.close_arr();
        w.f_raw("gradeRaiseAttempt", "null");
        w.close();
    }
    w.close_arr();
    w.key("assessmentItemSelections");
    w.open_arr();
    for _ in 0..c.vary.below(6) {
        w.open();
        c.f_ref(w, "assessmentItemId", Shape::AssessmentItem, false);
        c.f_ref(w, "courseUnitId", Shape::CourseUnit, false);
        w.close();
    }
    w.close_arr();
    w.key("customModuleAttainmentSelections");
    w.open_arr();
    w.close_arr();
    w.key("customCourseUnitAttainmentSelections");
    w.open_arr();
    w.close_arr();
    w.close();
}

/// PERSON_GROUP: tutoring groups; about 800 B.
pub fn person_group(w: &mut Json, c: &mut Change) {
    let n = c.fixed.range(1, 40);
    let programme = c.fixed.pick(words::PROGRAMMES);
    c.begin(w, true);
    c.f_id(w);
    w.key("name");
    w.open();
    w.f_fmt("fi", format_args!("Tuutoriryhmä {n} – {}", programme[0]));
    w.f_fmt("en", format_args!("Tutoring group {n} – {}", programme[1]));
    w.f_fmt("sv", format_args!("Tutorgrupp {n} – {} 🎓", programme[2]));
    w.close();
    w.f_str("type", "TUTORING_STUDENT_GROUP");
    Change::f_university(w);
    c.f_responsibilities(
        w,
        "person-group-responsibility-info-type",
        &["responsible-teacher", "administrative-person"],
        3,
    );
    w.close();
}

/// DISCLOSURE: a person's consent to disclose data; ~200 B.
pub fn disclosure(w: &mut Json, c: &mut Change) {
    c.begin(w, false);
    c.f_id(w);
    c.f_ref(w, "privatePersonId", Shape::Person, true);
    w.f_fmt(
        "disclosureCategoryId",
        format_args!(
            "urn:code:disclosure-authorization-category:{}",
            c.fixed.range(1, 12)
        ),
    );
    w.f_bool("authorized", c.vary.chance(70));
    w.close();
}
