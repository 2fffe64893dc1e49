//! What may be studied (KORI): organisations, course units, educations
//! and assessment items; modules are in `modules`.

use super::{id_year, uuid, write_id, Change, Shape, LANGS, LEVELS};
use crate::fake_sisu::json::{Day, Json};
use crate::fake_sisu::words;

/// ORGANISATION (v2, snapshot): a tree below the university root; ~900 B.
pub fn organisation(w: &mut Json, c: &mut Change) {
    let name = c.fixed.pick(words::ORGANISATIONS);
    let code = 100 + c.identity % 900;
    c.begin(w, true);
    c.f_id(w);
    w.f_fmt("snapshotDateTime", format_args!("{}", c.at.local()));
    Change::f_university(w);
    w.f_str("universityOrgId", super::ROOT_ORG);
    // Parents have smaller indexes, so the organisations form a tree; a
    // later generation's new organisation hangs below one of generation 0.
    match c.identity {
        0 => w.f_raw("parentId", "null"),
        i => {
            let parent = c.fixed.below(i.min(c.population));
            w.f_with("parentId", |b| {
                write_id(b, Shape::Organisation, c.seed, parent)
            });
        }
    }
    let predecessors = u64::from(c.fixed.chance(10));
    c.f_refs(w, "predecessorIds", Shape::Organisation, predecessors, true);
    w.f_fmt("code", format_args!("H{code}"));
    w.f_loc("name", name);
    w.key("abbreviation");
    w.open();
    w.f_fmt("fi", format_args!("H{code}"));
    w.f_fmt("en", format_args!("H{code}"));
    w.f_fmt("sv", format_args!("H{code}"));
    w.close();
    w.f_str(
        "status",
        if c.vary.chance(90) {
            "ACTIVE"
        } else {
            "INACTIVE"
        },
    );
    w.f_str(
        "educationalInstitutionUrn",
        "urn:code:educational-institution:01901",
    );
    w.key("cooperationNetworkIds");
    w.open_arr();
    w.close_arr();
    w.f_raw("companySpecifiedOrganisation", "false");
    w.f_raw("responsibleInfos", "[]");
    w.close();
}

/// COURSE_UNIT: the richest curriculum document; 2–4 KB.
pub fn course_unit(w: &mut Json, c: &mut Change) {
    let subject = c.fixed.pick(words::SUBJECTS);
    let start = Day::ymd(id_year(c.seed, Shape::CourseUnit, c.identity), 8, 1);
    c.begin(w, true);
    c.f_id(w);
    w.f_fmt(
        "groupId",
        format_args!("hy-CU-{}", 118_000_000 + c.identity),
    );
    w.f_fmt("code", format_args!("TKT{:05}", c.identity % 100_000));
    c.f_credits(w, "credits", &[1, 2, 3, 5, 5, 5, 5, 10]);
    w.f_loc("name", subject);
    w.f_period("validityPeriod", start, None);
    w.f_str(
        "gradeScaleId",
        if c.fixed.chance(80) {
            "sis-0-5"
        } else {
            "sis-hyl-hyv"
        },
    );
    w.f_fmt(
        "studyLevel",
        format_args!("urn:code:study-level:{}", c.fixed.pick(LEVELS)),
    );
    w.f_str("courseUnitType", "urn:code:course-unit-type:regular");
    w.f_strs(
        "possibleAttainmentLanguages",
        &LANGS[..c.fixed.range(1, 3) as usize],
    );
    c.f_study_fields(w);
    let items = c.fixed.range(1, 3);
    c.f_refs(w, "assessmentItemOrder", Shape::AssessmentItem, items, true);
    c.f_organisations(w);
    Change::f_university(w);
    w.key("substitutions");
    w.open_arr();
    for _ in 0..c.vary.below(3) {
        w.open_arr();
        w.open();
        let group = c.vary.below(c.population.max(1));
        w.f_fmt(
            "courseUnitGroupId",
            format_args!("hy-CU-{}", 118_000_000 + group),
        );
        w.f_raw("credits", "null");
        w.close();
        w.close_arr();
    }
    w.close_arr();
    w.key("completionMethods");
    w.open_arr();
    for _ in 0..c.fixed.range(1, 3) {
        w.open();
        w.key("localId");
        uuid(w, &mut c.fixed);
        w.f_str("typeOfRequire", "ALL_SELECTED_REQUIRED");
        c.f_refs(w, "assessmentItemIds", Shape::AssessmentItem, items, true);
        w.f_raw("require", "null");
        w.f_raw("description", "null");
        w.f_str("studyType", "DEGREE_STUDIES");
        w.close();
    }
    w.close_arr();
    c.f_responsibilities(
        w,
        "course-unit-responsibility-info-type",
        &[
            "responsible-teacher",
            "contact-info",
            "administrative-person",
        ],
        4,
    );
    c.f_curriculum_periods(w);
    if c.fixed.chance(60) {
        w.f_loc("outcomes", c.fixed.pick(words::DESCRIPTIONS));
    }
    if c.vary.chance(40) {
        w.f_loc("content", c.vary.pick(words::DESCRIPTIONS));
    }
    w.close();
}

/// EDUCATION: degree structures with phases; 1.5–3 KB; often DRAFT.
pub fn education(w: &mut Json, c: &mut Change) {
    let programme = c.fixed.pick(words::PROGRAMMES);
    c.begin(w, true);
    c.f_id(w);
    w.f_fmt(
        "groupId",
        format_args!("hy-EDU-{}", 114_000_000 + c.identity),
    );
    w.f_fmt(
        "code",
        format_args!("KH{}_{:03}", 50 + c.fixed.below(30), c.identity % 1000),
    );
    w.f_loc("name", programme);
    w.f_str(
        "educationType",
        "urn:code:education-type:degree-education:bachelors-and-masters-degree",
    );
    let start = Day::ymd(id_year(c.seed, Shape::Education, c.identity), 8, 1);
    w.f_period("validityPeriod", start, None);
    c.f_organisations(w);
    Change::f_university(w);
    w.f_strs(
        "attainmentLanguages",
        &LANGS[..c.fixed.range(1, 3) as usize],
    );
    w.key("structure");
    w.open();
    for phase in ["phase1", "phase2"] {
        w.key(phase);
        w.open();
        w.f_loc(
            "name",
            [
                "Alempi korkeakoulututkinto",
                "Lower university degree",
                "Lägre högskoleexamen",
            ],
        );
        w.key("options");
        w.open_arr();
        for _ in 0..c.fixed.range(1, 4) {
            w.open();
            c.f_ref(w, "moduleGroupId", Shape::Module, true);
            w.f_loc("name", c.fixed.pick(words::PROGRAMMES));
            w.f_raw("acceptanceType", "\"AUTOMATIC\"");
            w.close();
        }
        w.close_arr();
        w.close();
    }
    w.key("learningOpportunities");
    w.open_arr();
    w.open();
    w.key("localId");
    uuid(w, &mut c.fixed);
    w.f_loc("name", programme);
    w.close();
    w.close_arr();
    w.close();
    w.f_strs(
        "studyFields",
        &["urn:code:study-field:4", "urn:code:study-field:4:3"],
    );
    c.f_responsibilities(
        w,
        "education-responsibility-info-type",
        &["responsible-person", "coordinator"],
        3,
    );
    w.close();
}

/// ASSESMENT_ITEM (snapshot): how a course unit is assessed; about 1.2 KB.
pub fn assessment_item(w: &mut Json, c: &mut Change) {
    const TYPES: &[&str] = &[
        "exam-exam",
        "teaching-participation-lectures",
        "teaching-participation-seminar",
        "independent-work-essay",
    ];
    let subject = c.fixed.pick(words::SUBJECTS);
    c.begin(w, true);
    c.f_id(w);
    w.f_fmt("snapshotDateTime", format_args!("{}", c.at.local()));
    w.f_loc("name", subject);
    w.f_loc("nameSpecifier", c.fixed.pick(words::GROUPS));
    c.f_credits(w, "credits", &[1, 2, 3, 5, 5]);
    w.f_str(
        "gradeScaleId",
        if c.fixed.chance(80) {
            "sis-0-5"
        } else {
            "sis-hyl-hyv"
        },
    );
    w.f_fmt(
        "assessmentItemType",
        format_args!("urn:code:assessment-item-type:{}", c.fixed.pick(TYPES)),
    );
    c.f_organisations(w);
    let group = c.fixed.below(c.population.max(1));
    w.f_fmt(
        "primaryCourseUnitGroupId",
        format_args!("hy-CU-{}", 118_000_000 + group),
    );
    w.f_strs(
        "possibleAttainmentLanguages",
        &LANGS[..c.fixed.range(1, 3) as usize],
    );
    Change::f_university(w);
    w.f_raw("courseUnitRealisationSelectionRule", "null");
    c.f_responsibilities(
        w,
        "assessment-item-responsibility-info-type",
        &["responsible-teacher"],
        2,
    );
    w.close();
}
