//! The services a configuration yields: the catalogue (built-in services,
//! extra ones, without the disabled ones) and the selection a run imports.

use super::validate::invalid;
use super::{Config, ConfigError};
use crate::catalogue::{self, Service};

impl Config {
    /// The full catalogue: built-in services plus `extra_services`, without
    /// the disabled ones, in import order.
    pub fn catalogue(&self) -> Result<Vec<Service>, ConfigError> {
        let mut services = catalogue::builtin();
        for extra in &self.extra_services {
            if services.iter().any(|s| s.id == extra.id) {
                return Err(invalid(
                    "extra_services",
                    format!("{} is already a service", extra.id),
                ));
            }
            services.push(extra.clone());
        }
        for id in &self.disabled_services {
            if !services.iter().any(|s| &s.id == id) {
                return Err(unknown_service("disabled_services", id, &services));
            }
        }
        services.retain(|s| !self.disabled_services.contains(&s.id));
        Ok(services)
    }

    /// The services a run imports: `SERVICES` (in catalogue order) or all.
    pub fn selected_services(&self) -> Result<Vec<Service>, ConfigError> {
        let services = self.catalogue()?;
        self.pick(services, self.services.as_deref(), "SERVICES")
    }

    /// Picks `ids` out of `services`, in catalogue order; unknown ids fail.
    pub fn pick(
        &self,
        services: Vec<Service>,
        ids: Option<&[String]>,
        name: &'static str,
    ) -> Result<Vec<Service>, ConfigError> {
        let Some(ids) = ids else {
            return Ok(services);
        };
        for id in ids {
            if !services.iter().any(|s| &s.id == id) {
                return Err(unknown_service(name, id, &services));
            }
        }
        Ok(services
            .into_iter()
            .filter(|s| ids.contains(&s.id))
            .collect())
    }
}

fn unknown_service(name: &'static str, id: &str, services: &[Service]) -> ConfigError {
    let known: Vec<&str> = services.iter().map(|s| s.id.as_str()).collect();
    let hint = closest(id, &known)
        .map(|id| format!(" (did you mean {id}?)"))
        .unwrap_or_default();
    invalid(
        name,
        format!(
            "unknown service id {id:?}{hint}; known ids: {}",
            known.join(", ")
        ),
    )
}

/// The known id an operator most likely meant by `id`: the one equal to
/// it but for case, `-` or spaces for `_` (`person`, `course-unit`), else
/// the nearest by edit distance with at most a third of its letters
/// wrong (`PERSN`, `ASSESSMENT_ITEM`); the first in catalogue order on a
/// tie; none when nothing is that near.
fn closest<'a>(id: &str, known: &[&'a str]) -> Option<&'a str> {
    let wanted = normalise(id);
    known
        .iter()
        .map(|k| (*k, edit_distance(&wanted, &normalise(k))))
        .min_by_key(|(_, distance)| *distance)
        .filter(|(k, distance)| distance * 3 <= wanted.len().max(k.chars().count()))
        .map(|(k, _)| k)
}

/// An id as compared: upper case, `-` and spaces as `_`.
fn normalise(id: &str) -> Vec<char> {
    id.trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Levenshtein distance: the fewest insertions, deletions and
/// substitutions that turn `a` into `b`.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(result: Result<Vec<Service>, ConfigError>) -> String {
        result.map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn an_unknown_id_suggests_the_one_meant() {
        let known = [
            "PERSON",
            "COURSE_UNIT",
            "ASSESMENT_ITEM",
            "PLAN",
            "PERSON_GROUP",
        ];
        for (typed, meant) in [
            ("person", Some("PERSON")),
            ("course-unit", Some("COURSE_UNIT")),
            ("PERSN", Some("PERSON")),
            ("ASSESSMENT_ITEM", Some("ASSESMENT_ITEM")),
            ("person_groups", Some("PERSON_GROUP")),
            ("PLANS", Some("PLAN")),
            ("NOPE", None),
            ("", None),
        ] {
            assert_eq!(closest(typed, &known), meant, "{typed:?}");
        }
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(edit_distance(&chars("kitten"), &chars("sitting")), 3);
        assert_eq!(edit_distance(&chars(""), &chars("abc")), 3);
    }

    #[test]
    fn every_place_an_id_is_named_suggests() {
        let config = Config::default();
        let once = config.pick(
            config.catalogue().unwrap(),
            Some(&["person".into()]),
            "--service",
        );
        let said = error_of(once);
        assert!(said.starts_with("--service is invalid"), "{said}");
        assert!(
            said.contains(r#"unknown service id "person" (did you mean PERSON?)"#),
            "{said}"
        );
        let config = Config {
            services: Some(vec!["attainments".into()]),
            ..Config::default()
        };
        let said = error_of(config.selected_services());
        assert!(
            said.contains("SERVICES") && said.contains("did you mean ATTAINMENT?"),
            "{said}"
        );
        let config = Config {
            disabled_services: vec!["Plan".into()],
            ..Config::default()
        };
        let said = error_of(config.catalogue());
        assert!(
            said.contains("disabled_services") && said.contains("did you mean PLAN?"),
            "{said}"
        );
        let said = error_of(config.pick(Vec::new(), Some(&["XYZ".into()]), "reset"));
        assert!(!said.contains("did you mean"), "nothing near: {said}");
    }
}
