//! Modules (KORI): degree programmes, study modules and grouping modules,
//! with the recursive `rule` trees that say what they contain.

use super::{module_kind, uuid, write_id, Change, ModuleKind, Shape, LANGS, LEVELS};
use crate::fake_sisu::json::Json;
use crate::fake_sisu::words;

/// MODULE: degree programmes, study modules and grouping modules with a
/// recursive `rule` tree; 1–6 KB (degree programmes are the big ones).
pub fn module(w: &mut Json, c: &mut Change) {
    let kind = module_kind(c.seed, c.identity);
    let (type_name, names, mut budget) = match kind {
        ModuleKind::DegreeProgramme => ("DegreeProgramme", words::PROGRAMMES, 24),
        ModuleKind::StudyModule => ("StudyModule", words::SUBJECTS, 8),
        ModuleKind::GroupingModule => ("GroupingModule", words::SUBJECTS, 4),
    };
    let mut id = String::with_capacity(48);
    write_id(&mut id, Shape::Module, c.seed, c.identity);
    c.begin(w, true);
    w.f_str("id", &id);
    w.f_str("groupId", &id);
    w.f_str("type", type_name);
    w.f_fmt("code", format_args!("MAT{:03}", c.identity % 1000));
    w.f_loc("name", c.fixed.pick(names));
    c.f_credits(w, "targetCredits", &[15, 25, 60, 120, 180]);
    c.f_curriculum_periods(w);
    let start = c.term_start(2017);
    w.f_period("validityPeriod", start, None);
    if kind != ModuleKind::GroupingModule {
        w.f_loc("contentDescription", c.fixed.pick(words::DESCRIPTIONS));
    }
    module_attributes(w, c, kind);
    w.key("rule");
    rule(w, c, 0, &mut budget);
    if kind == ModuleKind::DegreeProgramme {
        w.f_strs("degreeTitleUrns", &["urn:code:degree-title:fil-kand"]);
    }
    c.f_organisations(w);
    Change::f_university(w);
    c.f_responsibilities(
        w,
        "module-responsibility-info-type",
        &[
            "responsible-teacher",
            "contact-info",
            "administrative-person",
        ],
        3,
    );
    w.close();
}

/// What a module says about studying it: level, languages, grading and
/// whether it can be a minor. Grouping modules only group, so they leave
/// most of these empty.
fn module_attributes(w: &mut Json, c: &mut Change, kind: ModuleKind) {
    let studied = kind != ModuleKind::GroupingModule;
    w.f_bool(
        "moduleContentApprovalRequired",
        studied && c.fixed.chance(15),
    );
    w.f_str(
        "approvalState",
        if c.vary.chance(90) {
            "APPROVED"
        } else {
            "NOT_APPROVED"
        },
    );
    if kind == ModuleKind::StudyModule {
        w.f_fmt(
            "studyLevel",
            format_args!("urn:code:study-level:{}", c.fixed.pick(LEVELS)),
        );
    } else {
        w.f_raw("studyLevel", "null");
    }
    w.f_strs(
        "possibleAttainmentLanguages",
        &LANGS[..c.fixed.range(1, 3) as usize],
    );
    c.f_study_fields(w);
    let graded = studied && c.fixed.chance(70);
    w.f_bool("graded", graded);
    match (studied, graded) {
        (false, _) => w.f_raw("gradeScaleId", "null"),
        (true, true) => w.f_str("gradeScaleId", "sis-0-5"),
        (true, false) => w.f_str("gradeScaleId", "sis-hyl-hyv"),
    }
    // Some study modules can be taken as a minor, by application or not.
    if kind == ModuleKind::StudyModule && c.fixed.chance(30) {
        w.f_str(
            "studyRightSelectionType",
            "urn:code:study-right-selection-type:minor-study-right",
        );
        w.f_str(
            "minorStudyRightAcceptanceType",
            if c.fixed.chance(50) {
                "AUTOMATIC"
            } else {
                "ON_APPLICATION"
            },
        );
    } else {
        w.f_raw("studyRightSelectionType", "null");
        w.f_raw("minorStudyRightAcceptanceType", "null");
    }
    if kind == ModuleKind::DegreeProgramme {
        const TYPES: &[&str] = &["bachelors-degree", "masters-degree", "doctoral-degree"];
        w.f_fmt(
            "degreeProgramTypeUrn",
            format_args!("urn:code:degree-program-type:{}", c.fixed.pick(TYPES)),
        );
    } else {
        w.f_raw("degreeProgramTypeUrn", "null");
    }
}

/// One node of a rule tree: a composite with children while the node
/// budget lasts, else a reference to a module or course-unit group.
fn rule(w: &mut Json, c: &mut Change, depth: u32, budget: &mut u32) {
    w.open();
    if depth < 3 && *budget > 0 && (depth == 0 || c.fixed.chance(40)) {
        w.f_str("type", "CompositeRule");
        w.key("localId");
        uuid(w, &mut c.fixed);
        w.f_raw("require", "null");
        w.f_bool("allMandatory", c.fixed.chance(50));
        w.f_raw("description", "null");
        w.key("rules");
        w.open_arr();
        for _ in 0..c.fixed.range(2, 5) {
            if *budget == 0 {
                break;
            }
            *budget -= 1;
            rule(w, c, depth + 1, budget);
        }
        w.close_arr();
    } else if c.fixed.chance(40) {
        w.f_str("type", "ModuleRule");
        w.key("localId");
        uuid(w, &mut c.fixed);
        c.f_ref(w, "moduleGroupId", Shape::Module, true);
    } else {
        w.f_str("type", "CourseUnitRule");
        w.key("localId");
        uuid(w, &mut c.fixed);
        let group = c.fixed.below(c.population.max(1));
        w.f_fmt(
            "courseUnitGroupId",
            format_args!("hy-CU-{}", 118_000_000 + group),
        );
    }
    w.close();
}
