//! Refused-offer filters (DECLINE / unused ACCEPT resources), keyed framework → role → agent.
//!
//! Pure: the current time is always an argument, so tests control expiry exactly.

use crate::resources::Resources;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Mesos' default `Filters.refuse_seconds`.
pub const DEFAULT_REFUSE: Duration = Duration::from_secs(5);
/// Upper bound Mesos applies to `refuse_seconds` (365 days).
pub const MAX_REFUSE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Converts `filters.refuse_seconds` into a filter duration: absent, negative or NaN → 5 s,
/// above 365 days → 365 days, exactly 0 → `None` (no filter is installed).
pub fn refuse_duration(refuse_seconds: Option<f64>) -> Option<Duration> {
    match refuse_seconds {
        None => Some(DEFAULT_REFUSE),
        Some(s) if s.is_nan() || s < 0.0 => Some(DEFAULT_REFUSE),
        Some(0.0) => None,
        Some(s) if s >= MAX_REFUSE.as_secs_f64() => Some(MAX_REFUSE),
        Some(s) => Some(Duration::from_secs_f64(s)),
    }
}

/// One refusal: blocks offers whose resources the refused set contains, until `expires`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferFilter {
    /// What was refused.
    pub resources: Resources,
    /// First instant at which the filter no longer applies.
    pub expires: Instant,
}

type ByAgent = HashMap<String, Vec<OfferFilter>>;

/// All installed filters.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    map: HashMap<String, HashMap<String, ByAgent>>,
}

impl Filters {
    /// Empty.
    pub fn new() -> Filters {
        Filters::default()
    }

    /// Installs a filter for refused `resources`; returns false when `refuse_seconds` is 0 or
    /// nothing was refused (no filter, as in Mesos).
    pub fn decline(
        &mut self,
        framework: &str,
        role: &str,
        agent: &str,
        resources: Resources,
        refuse_seconds: Option<f64>,
        now: Instant,
    ) -> bool {
        let Some(d) = refuse_duration(refuse_seconds) else {
            return false;
        };
        if resources.is_empty() {
            return false;
        }
        let Some(expires) = now.checked_add(d) else {
            return false;
        };
        self.map
            .entry(framework.to_string())
            .or_default()
            .entry(role.to_string())
            .or_default()
            .entry(agent.to_string())
            .or_default()
            .push(OfferFilter { resources, expires });
        true
    }

    /// True when an unexpired filter's refused resources contain everything in `offered`.
    pub fn is_filtered(
        &self,
        framework: &str,
        role: &str,
        agent: &str,
        offered: &Resources,
        now: Instant,
    ) -> bool {
        self.map
            .get(framework)
            .and_then(|roles| roles.get(role))
            .and_then(|agents| agents.get(agent))
            .is_some_and(|fs| {
                fs.iter()
                    .any(|f| now < f.expires && f.resources.contains(offered))
            })
    }

    /// True when the framework has any filter at all (cheap pre-check for the hot path).
    pub fn has_any(&self, framework: &str) -> bool {
        self.map.contains_key(framework)
    }

    /// Drops expired filters.
    pub fn expire(&mut self, now: Instant) {
        for roles in self.map.values_mut() {
            for agents in roles.values_mut() {
                for fs in agents.values_mut() {
                    fs.retain(|f| now < f.expires);
                }
                agents.retain(|_, fs| !fs.is_empty());
            }
            roles.retain(|_, a| !a.is_empty());
        }
        self.map.retain(|_, r| !r.is_empty());
    }

    /// REVIVE: clears the framework's filters for the named roles, or all roles when empty.
    pub fn revive(&mut self, framework: &str, roles: &[String]) {
        if roles.is_empty() {
            self.map.remove(framework);
        } else if let Some(by_role) = self.map.get_mut(framework) {
            for r in roles {
                by_role.remove(r);
            }
            if by_role.is_empty() {
                self.map.remove(framework);
            }
        }
    }

    /// Forgets an agent (removed or unreachable) for every framework.
    pub fn remove_agent(&mut self, agent: &str) {
        for roles in self.map.values_mut() {
            for agents in roles.values_mut() {
                agents.remove(agent);
            }
        }
    }

    /// Forgets a framework (teardown).
    pub fn remove_framework(&mut self, framework: &str) {
        self.map.remove(framework);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Resources {
        Resources::parse(s).unwrap_or_default()
    }

    #[test]
    fn refuse_seconds_semantics() {
        assert_eq!(refuse_duration(None), Some(DEFAULT_REFUSE));
        assert_eq!(refuse_duration(Some(-3.0)), Some(DEFAULT_REFUSE));
        assert_eq!(refuse_duration(Some(f64::NAN)), Some(DEFAULT_REFUSE));
        assert_eq!(refuse_duration(Some(0.0)), None);
        assert_eq!(refuse_duration(Some(1e12)), Some(MAX_REFUSE));
        assert_eq!(
            refuse_duration(Some(2.5)),
            Some(Duration::from_millis(2500))
        );
    }

    #[test]
    fn expiry_at_refuse_seconds() {
        let t0 = Instant::now();
        let mut f = Filters::new();
        assert!(f.decline("fw", "web", "a1", r("cpus:2;mem:100"), Some(10.0), t0));
        let offer = r("cpus:2;mem:100");
        assert!(f.is_filtered("fw", "web", "a1", &offer, t0));
        assert!(f.is_filtered("fw", "web", "a1", &offer, t0 + Duration::from_millis(9999)));
        assert!(!f.is_filtered("fw", "web", "a1", &offer, t0 + Duration::from_secs(10)));
        assert!(!f.is_filtered("fw", "db", "a1", &offer, t0));
        assert!(!f.is_filtered("fw", "web", "a2", &offer, t0));
        f.expire(t0 + Duration::from_secs(10));
        assert!(!f.has_any("fw"));
        assert!(!f.decline("fw", "web", "a1", r("cpus:1"), Some(0.0), t0));
    }

    #[test]
    fn superset_rule() {
        let t0 = Instant::now();
        let mut f = Filters::new();
        f.decline(
            "fw",
            "web",
            "a1",
            r("cpus:2;mem:100;ports:[1-10]"),
            None,
            t0,
        );
        // Smaller or equal offers stay blocked; anything the refusal did not cover is offered.
        assert!(f.is_filtered("fw", "web", "a1", &r("cpus:1;ports:[2-3]"), t0));
        assert!(!f.is_filtered("fw", "web", "a1", &r("cpus:3"), t0));
        assert!(!f.is_filtered("fw", "web", "a1", &r("cpus:1;disk:5"), t0));
        assert!(!f.is_filtered("fw", "web", "a1", &r("ports:[10-11]"), t0));
    }

    #[test]
    fn revive_clears_roles_or_all() {
        let t0 = Instant::now();
        let mut f = Filters::new();
        let offer = r("cpus:1");
        f.decline("fw", "web", "a1", offer.clone(), None, t0);
        f.decline("fw", "db", "a1", offer.clone(), None, t0);
        f.revive("fw", &["web".to_string()]);
        assert!(!f.is_filtered("fw", "web", "a1", &offer, t0));
        assert!(f.is_filtered("fw", "db", "a1", &offer, t0));
        f.revive("fw", &[]);
        assert!(!f.has_any("fw"));
    }
}
