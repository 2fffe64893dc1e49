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
    invalid(
        name,
        format!("unknown service id {id:?}; known ids: {}", known.join(", ")),
    )
}
