//! Teaching (KORI): course-unit realisations, locations and study events.

use super::{uuid, Change, Shape, LANGS};
use crate::fake_sisu::json::{Json, Rng};
use crate::fake_sisu::words;

/// COURSE_UNIT_REALISATION: a teaching instance with study groups; 2–4 KB.
pub fn realisation(w: &mut Json, c: &mut Change) {
    const FLOW: &[&str] = &[
        "PUBLISHED",
        "PUBLISHED",
        "PUBLISHED",
        "NOT_READY",
        "CANCELLED",
        "ARCHIVED",
    ];
    let start = c.day_before(2, true);
    c.begin(w, true);
    c.f_id(w);
    Change::f_university(w);
    w.f_str("flowState", c.vary.pick(FLOW));
    w.f_loc("name", c.fixed.pick(words::SUBJECTS));
    w.f_loc("nameSpecifier", c.fixed.pick(words::GROUPS));
    c.f_refs(w, "assessmentItemIds", Shape::AssessmentItem, 1, true);
    w.f_period(
        "activityPeriod",
        start,
        Some(start.plus(7 * c.fixed.range(4, 14) as i64)),
    );
    w.f_str("teachingLanguageUrn", c.fixed.pick(LANGS));
    w.f_str(
        "courseUnitRealisationTypeUrn",
        "urn:code:course-unit-realisation-type:teaching-participation-lectures",
    );
    w.key("studyGroupSets");
    w.open_arr();
    for _ in 0..c.fixed.range(1, 2) {
        w.open();
        w.key("localId");
        uuid(w, &mut c.fixed);
        w.f_loc("name", c.fixed.pick(words::GROUPS));
        w.key("studySubGroups");
        w.open_arr();
        for _ in 0..c.fixed.range(1, 5) {
            w.open();
            w.key("id");
            uuid(w, &mut c.fixed);
            w.f_loc("name", c.fixed.pick(words::GROUPS));
            let teachers = c.vary.range(1, 2);
            c.f_refs(w, "teacherIds", Shape::Person, teachers, false);
            c.f_refs(w, "studyEventIds", Shape::StudyEvent, 1, true);
            w.f_bool("cancelled", c.vary.chance(3));
            w.close();
        }
        w.close_arr();
        w.close();
    }
    w.close_arr();
    w.key("enrolmentPeriod");
    w.open();
    w.f_fmt("startDateTime", format_args!("{}T09:00", start.plus(-30)));
    w.f_fmt("endDateTime", format_args!("{}T23:59", start.plus(7)));
    w.close();
    c.f_responsibilities(
        w,
        "course-unit-realisation-responsibility-info-type",
        &["responsible-teacher", "teacher", "contact-info"],
        4,
    );
    c.f_organisations(w);
    w.key("customCodeUrns");
    w.open();
    w.key("urn:code:custom:hy-university-root-id:opintotarjonta");
    w.open_arr();
    w.fmt(format_args!(
        "urn:code:custom:hy-university-root-id:opintotarjonta:{}",
        c.fixed.range(1, 400)
    ));
    w.close_arr();
    w.close();
    w.close();
}

/// LOCATION: a room in a building; about 600 B.
pub fn location(w: &mut Json, c: &mut Change) {
    let building = c.fixed.below(words::BUILDINGS.len() as u64);
    let [fi, en, sv] = words::BUILDINGS[building as usize];
    let room = format!(
        "{}{}",
        ["A", "B", "C", "D"][c.fixed.below(4) as usize],
        c.fixed.range(100, 350)
    );
    c.begin(w, true);
    c.f_id(w);
    Change::f_university(w);
    w.key("name");
    w.loc([
        &format!("{fi}, sali {room}"),
        &format!("{en}, room {room}"),
        &format!("{sv}, sal {room}"),
    ]);
    w.f_int("capacity", c.vary.range(8, 400) as i64);
    w.key("buildingId");
    uuid(w, &mut Rng::new(&[c.seed, building, 0xb1d]));
    w.f_raw("seatCount", "null");
    w.close();
}

/// STUDY_EVENT: a recurring teaching event with its occurrences; 1–3 KB.
pub fn study_event(w: &mut Json, c: &mut Change) {
    let first = c.day_before(2, true);
    let weeks = c.fixed.range(1, 14);
    let hour = c.fixed.range(8, 16);
    c.begin(w, true);
    c.f_id(w);
    Change::f_university(w);
    c.f_ref(
        w,
        "primaryCourseUnitRealisationId",
        Shape::CourseUnitRealisation,
        true,
    );
    w.f_loc("name", c.fixed.pick(words::GROUPS));
    let rooms = c.vary.range(0, 2);
    c.f_refs(w, "locationIds", Shape::Location, rooms, false);
    w.f_str("recursEvery", if weeks == 1 { "NEVER" } else { "WEEKLY" });
    w.f_fmt("startTime", format_args!("{first}T{hour:02}:15:00"));
    w.f_str("duration", "PT1H30M");
    w.f_fmt(
        "recursUntil",
        format_args!(
            "{}T{:02}:45:00",
            first.plus(7 * (weeks as i64 - 1)),
            hour + 1
        ),
    );
    w.f_raw("exceptions", "[]");
    w.key("cancellations");
    w.open_arr();
    if c.vary.chance(10) {
        w.fmt(format_args!("{}T{hour:02}:15:00", first.plus(7)));
    }
    w.close_arr();
    w.f_raw("overrides", "[]");
    w.key("events");
    w.open_arr();
    for week in 0..weeks {
        let day = first.plus(7 * week as i64);
        w.open();
        w.f_fmt("start", format_args!("{day}T{hour:02}:15:00"));
        w.f_fmt("end", format_args!("{day}T{:02}:45:00", hour + 1));
        w.f_bool("excluded", false);
        w.f_bool("cancelled", false);
        w.close();
    }
    w.close_arr();
    w.close();
}
