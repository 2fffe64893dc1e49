//! The service catalogue of SPEC §3: which Sisu endpoint feeds which NATS
//! subject and which Redis key holds its cursor. Names here are read by other
//! programs and must not change.

use serde::{Deserialize, Serialize};

/// How a service's data is fetched from Sisu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// `${SIS_API_URL}/ori/api`, paged export.
    Ori,
    /// `${SIS_API_URL}/kori/api`, paged export.
    Kori,
    /// `${SIS_API_URL}/ilmo/api`, paged export.
    Ilmo,
    /// `${SIS_API_URL}/osuva/api`, paged export.
    Osuva,
    /// URN code book under the KORI public base, whole set, unauthenticated.
    Urn,
    /// `${SIS_API_URL}/graphql`, whole set (`grade_scales`).
    Graphql,
    /// KORI public API (`KORI_PUBLIC_API_URL`), whole set, unauthenticated.
    KoriPublic,
}

impl SourceKind {
    /// True for the paged `since`/`limit` export kinds.
    pub fn is_export(self) -> bool {
        matches!(self, Self::Ori | Self::Kori | Self::Ilmo | Self::Osuva)
    }

    /// Path prefix of an export kind below `SIS_API_URL`.
    pub fn api_prefix(self) -> &'static str {
        match self {
            Self::Ori => "/ori/api",
            Self::Kori => "/kori/api",
            Self::Ilmo => "/ilmo/api",
            Self::Osuva => "/osuva/api",
            Self::Graphql => "/graphql",
            Self::Urn | Self::KoriPublic => "",
        }
    }
}

/// How an entity of a service is identified (SISU-SHAPES.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// The entity's `id`.
    Id,
    /// `studyRightId` + `studentId` (term registrations).
    StudyRightStudent,
    /// `studyRightId` + `studentId` + `startDate` (study-right primalities).
    StudyRightStudentStart,
}

/// One import service: an endpoint, a subject and a cursor key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Fixed service id, e.g. `PERSON`.
    pub id: String,
    /// Where the data comes from.
    pub source: SourceKind,
    /// Path below the source's base (for GraphQL: the query's root field).
    pub path: String,
    /// NATS subject the chunks are published on.
    pub subject: String,
    /// Redis key of the committed ordinal (fixed per service, SPEC §3; the
    /// keys derived from it are in [`crate::store::keys`]).
    pub ordinal_key: String,
    /// Fetched once and then skipped until re-armed.
    #[serde(default)]
    pub one_time: bool,
    /// How entities are identified in dead letters.
    #[serde(default = "default_identity")]
    pub identity: IdentityKind,
}

fn default_identity() -> IdentityKind {
    IdentityKind::Id
}

impl Service {
    fn new(id: &str, source: SourceKind, path: &str, subject: &str, key: &str) -> Self {
        let identity = match id {
            "TERM_REGISTRATION" => IdentityKind::StudyRightStudent,
            "STUDY_RIGHT_PRIMALITY" => IdentityKind::StudyRightStudentStart,
            _ => IdentityKind::Id,
        };
        Service {
            id: id.to_owned(),
            source,
            path: path.to_owned(),
            subject: subject.to_owned(),
            ordinal_key: key.to_owned(),
            one_time: !source.is_export(),
            identity,
        }
    }

    /// The identity of one entity of this service as a display string,
    /// e.g. `hy-hlo-1` or `studyRightId=…,studentId=…`. `None` when the
    /// entity is not a JSON object or lacks the identifying fields.
    pub fn identity_of(&self, entity: &str) -> Option<String> {
        let probe: IdentityProbe = serde_json::from_str(entity).ok()?;
        match self.identity {
            IdentityKind::Id => probe.id.map(|v| scalar(&v)),
            IdentityKind::StudyRightStudent => Some(format!(
                "studyRightId={},studentId={}",
                scalar(probe.study_right_id.as_ref()?),
                scalar(probe.student_id.as_ref()?)
            )),
            IdentityKind::StudyRightStudentStart => Some(format!(
                "studyRightId={},studentId={},startDate={}",
                scalar(probe.study_right_id.as_ref()?),
                scalar(probe.student_id.as_ref()?),
                probe.start_date.as_ref().map(scalar).unwrap_or_default()
            )),
        }
    }
}

/// `metadata.modificationOrdinal` of an entity, where present.
pub fn modification_ordinal(entity: &str) -> Option<i64> {
    let probe: IdentityProbe = serde_json::from_str(entity).ok()?;
    probe.metadata?.modification_ordinal
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityProbe {
    id: Option<serde_json::Value>,
    study_right_id: Option<serde_json::Value>,
    student_id: Option<serde_json::Value>,
    start_date: Option<serde_json::Value>,
    metadata: Option<MetadataProbe>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetadataProbe {
    modification_ordinal: Option<i64>,
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The built-in catalogue, in import order (SPEC §3).
#[rustfmt::skip]
pub fn builtin() -> Vec<Service> {
    use SourceKind::*;
    let s = Service::new;
    vec![
        s("PERSON", Ori, "/persons/v1/export", "ORI_PERSON_CHANNEL", "LATEST_PERSON_ORDINAL"),
        s("ORGANISATION", Kori, "/organisations/v2/export", "KORI_ORGANISATION_CHANNEL", "LATEST_ORGANISATION_ORDINAL"),
        s("COURSE_UNIT", Kori, "/course-units/v1/export", "KORI_COURSE_UNIT_CHANNEL", "LATEST_COURSE_UNIT_ORDINAL"),
        s("EDUCATION", Kori, "/educations/v1/export", "KORI_EDUCATION_CHANNEL", "LATEST_EDUCATION_ORDINAL"),
        s("STUDY_RIGHT", Ori, "/study-rights/v1/export", "ORI_STUDY_RIGHT_CHANNEL", "LATEST_STUDY_RIGHT_ORDINAL"),
        s("TERM_REGISTRATION", Ori, "/term-registrations/v1/export", "ORI_TERM_REGISTRATION", "LATEST_TERM_REGISTRATION_ORDINAL"),
        s("ASSESMENT_ITEM", Kori, "/assessment-items/v1/export", "KORI_ASSESSMENT_ITEM_CHANNEL", "LATEST_ASSESSMENT_ORDINAL"),
        s("COURSE_UNIT_REALISATION", Kori, "/course-unit-realisations/v1/export", "KORI_COURSE_UNIT_REALISATION_CHANNEL", "LATEST_COURSE_UNIT_REALISATION_ORDINAL"),
        s("LOCATION", Kori, "/locations/v1/export", "KORI_LOCATION_CHANNEL", "LATEST_LOCATION_ORDINAL"),
        s("STUDY_EVENT", Kori, "/study-events/v1/export", "KORI_STUDY_EVENT_CHANNEL", "LATEST_STUDY_EVENT_ORDINAL"),
        s("ATTAINMENT", Ori, "/attainments/v1/export", "ORI_ATTAINMENT_CHANNEL", "LATEST_ATTAINMENT_ORDINAL"),
        s("MODULE", Kori, "/modules/v1/export", "KORI_MODULE_CHANNEL", "LATEST_MODULE_ORDINAL"),
        s("STUDY_RIGHT_PRIMALITY", Ori, "/study-right-primalities/v1/export", "ORI_STUDY_RIGHT_PRIMALITY_CHANNEL", "LATEST_STUDY_RIGHT_PRIMALITY_ORDINAL"),
        s("STUDY_LEVEL", Urn, "/cached/codebooks/urn:code:study-level", "URN_STUDY_LEVEL_CHANNEL", "STUDY_LEVEL"),
        s("COUNTRY", Urn, "/cached/codebooks/urn:code:country", "URN_COUNTRY_CHANNEL", "COUNTRY"),
        s("EDUCATION_TYPE", Urn, "/cached/codebooks/urn:code:education-type", "URN_EDUCATION_TYPE_CHANNEL", "EDUCATION_TYPE"),
        s("ENROLMENT", Ilmo, "/enrolments/v1/export", "ILMO_ENROLMENT_CHANNEL", "LATEST_ENROLMENT_ORDINAL"),
        s("GRAPHQL_GRADE_SCALES", Graphql, "grade_scales", "GRAPHQL_GRADE_SCALES_CHANNEL", "GRAPHQL_GRADE_SCALES"),
        s("DEGREE_TITLE", Urn, "/cached/codebooks/urn:code:degree-title", "URN_DEGREE_TITLE_CHANNEL", "DEGREE_TITLE"),
        s("EDUCATION_CLASSIFICATION", Urn, "/cached/codebooks/urn:code:education-classification", "URN_EDUCATION_CLASSIFICATION_CHANNEL", "EDUCATION_CLASSIFICATION"),
        s("STUDY_RIGHT_EXPIRATION_RULE", Urn, "/cached/codebooks/urn:code:study-right-expiration-rules", "URN_STUDY_RIGHT_EXPIRATION_RULE_CHANNEL", "STUDY_RIGHT_EXPIRATION_RULE"),
        s("ADMISSION_TYPE", Urn, "/cached/codebooks/urn:code:admission-type", "URN_ADMISSION_TYPE_CHANNEL", "ADMISSION_TYPE"),
        s("PLAN", Osuva, "/plans/v1/export", "OSUVA_PLAN_CHANNEL", "LATEST_PLAN_ORDINAL"),
        s("PERSON_GROUP", Ori, "/person-groups/v1/export", "ORI_PERSON_GROUP_CHANNEL", "LATEST_PERSON_GROUP_ORDINAL"),
        s("DISCLOSURE", Ori, "/disclosures/v1/export", "ORI_DISCLOSURE_CHANNEL", "LATEST_DISCLOSURE_ORDINAL"),
        s("CURRICULUM_PERIOD", KoriPublic, "/curriculum-periods", "KORI_PUBLIC_CURRICULUM_PERIOD_CHANNEL", "CURRICULUM_PERIOD"),
    ]
}

/// Feedback subject consumers report on (SPEC §4, fixed).
pub const FEEDBACK_SUBJECT: &str = "SCHEDULER_STATUS_CHANNEL";
/// Subject announcing the end of a run (SPEC §1, fixed).
pub const POST_UPDATE_SUBJECT: &str = "POST_UPDATE";
/// Subject consumers may use to announce they finished post-update work.
pub(crate) const POST_UPDATE_FINISH_SUBJECT: &str = "POST_UPDATE_FINISH";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_26_services_with_unique_names() {
        let services = builtin();
        assert_eq!(services.len(), 26);
        let mut ids: Vec<_> = services.iter().map(|s| &s.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 26);
        assert_eq!(services.iter().filter(|s| s.one_time).count(), 9);
        assert_eq!(services[0].id, "PERSON");
        assert_eq!(services[25].id, "CURRICULUM_PERIOD");
    }

    #[test]
    fn identities_follow_sisu_shapes() {
        let services = builtin();
        let term = services
            .iter()
            .find(|s| s.id == "TERM_REGISTRATION")
            .unwrap();
        let raw = serde_json::value::RawValue::from_string(
            r#"{"studyRightId":"sr-1","studentId":"st-2","documentState":"ACTIVE"}"#.into(),
        )
        .unwrap();
        assert_eq!(
            term.identity_of(raw.get()).unwrap(),
            "studyRightId=sr-1,studentId=st-2"
        );
        let person = &services[0];
        let raw = serde_json::value::RawValue::from_string(
            r#"{"id":"hy-hlo-1","metadata":{"modificationOrdinal":42}}"#.into(),
        )
        .unwrap();
        assert_eq!(person.identity_of(raw.get()).unwrap(), "hy-hlo-1");
        assert_eq!(modification_ordinal(raw.get()), Some(42));
    }
}
