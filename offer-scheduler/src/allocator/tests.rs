//! Allocation-cycle behaviour: offers, suppress/revive, filters, quota, capabilities, DRF shares.

use super::*;
use crate::quota::Quota;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Duration;

fn r(s: &str) -> Resources {
    match Resources::parse(s) {
        Ok(r) => r,
        Err(e) => panic!("{s}: {e}"),
    }
}

fn agent(id: &str, res: &str) -> Agent {
    Agent {
        id: id.to_string(),
        total: r(res),
        allocations: Vec::new(),
        active: true,
    }
}

fn fw(id: &str, roles: &[&str]) -> Framework {
    Framework {
        id: id.to_string(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        active: true,
        ..Framework::default()
    }
}

fn run(s: &Snapshot, now: Instant) -> Vec<Offer> {
    allocate(s, now, &mut StdRng::seed_from_u64(1))
}

fn offered(offers: &[Offer], framework: &str, name: &str) -> Scalar {
    offers
        .iter()
        .filter(|o| o.framework == framework)
        .map(|o| o.resources.scalar(name))
        .fold(Scalar::ZERO, |a, b| a + b)
}

#[test]
fn offers_whole_agent_to_single_framework() {
    let s = Snapshot {
        agents: vec![agent("a1", "cpus:4;mem:1024;ports:[31000-32000]")],
        frameworks: vec![fw("f1", &["web"])],
        ..Snapshot::default()
    };
    let offers = run(&s, Instant::now());
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].role, "web");
    assert_eq!(
        offers[0].resources,
        r("cpus:4;mem:1024;ports:[31000-32000]")
    );
}

#[test]
fn nothing_offered_twice_and_inactive_skipped() {
    let mut s = Snapshot {
        agents: vec![agent("a1", "cpus:4;mem:1024"), agent("a2", "cpus:1;mem:10")],
        frameworks: vec![fw("f1", &["web"]), fw("f2", &["web"])],
        ..Snapshot::default()
    };
    s.agents[1].active = false;
    s.agents[0].allocations.push(Allocation {
        framework: "f1".into(),
        role: "web".into(),
        resources: r("cpus:3"),
    });
    let offers = run(&s, Instant::now());
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].framework, "f2");
    assert_eq!(offers[0].resources, r("cpus:1;mem:1024"));
    s.frameworks[1].active = false;
    assert_eq!(run(&s, Instant::now())[0].framework, "f1");
}

#[test]
fn suppress_and_revive() {
    let mut s = Snapshot {
        agents: vec![agent("a1", "cpus:4;mem:1024")],
        frameworks: vec![fw("f1", &["web", "db"])],
        ..Snapshot::default()
    };
    s.suppress("f1", &["web".to_string()]);
    let offers = run(&s, Instant::now());
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].role, "db");
    s.suppress("f1", &[]);
    assert!(run(&s, Instant::now()).is_empty());
    s.revive("f1", &["web".to_string()]);
    assert_eq!(run(&s, Instant::now())[0].role, "web");
}

#[test]
fn declined_offer_filtered_until_expiry_and_revive() {
    let t0 = Instant::now();
    let mut s = Snapshot {
        agents: vec![agent("a1", "cpus:4;mem:1024")],
        frameworks: vec![fw("f1", &["web"])],
        ..Snapshot::default()
    };
    let offers = run(&s, t0);
    s.filters.decline(
        "f1",
        "web",
        "a1",
        offers[0].resources.clone(),
        Some(10.0),
        t0,
    );
    assert!(run(&s, t0 + Duration::from_secs(9)).is_empty());
    assert_eq!(run(&s, t0 + Duration::from_secs(10)).len(), 1);
    // Superset rule: more resources than were refused gets offered again.
    s.agents[0].total = r("cpus:8;mem:1024");
    assert_eq!(run(&s, t0 + Duration::from_secs(1)).len(), 1);
    s.agents[0].total = r("cpus:4;mem:1024");
    s.revive("f1", &[]);
    assert_eq!(run(&s, t0 + Duration::from_secs(1)).len(), 1);
}

#[test]
fn reservations_go_only_to_their_role() {
    let s = Snapshot {
        agents: vec![agent("a1", "cpus(db):2;cpus:1;mem:512")],
        frameworks: vec![fw("web1", &["web"])],
        ..Snapshot::default()
    };
    let offers = run(&s, Instant::now());
    assert_eq!(offers[0].resources, r("cpus:1;mem:512"));
    let mut s2 = s.clone();
    s2.frameworks = vec![fw("db1", &["db"])];
    assert_eq!(
        run(&s2, Instant::now())[0].resources,
        r("cpus(db):2;cpus:1;mem:512")
    );
}

#[test]
fn gpu_agents_need_capability() {
    let mut s = Snapshot {
        agents: vec![agent("g", "cpus:4;mem:1024;gpus:1")],
        frameworks: vec![fw("f1", &["web"])],
        ..Snapshot::default()
    };
    assert!(run(&s, Instant::now()).is_empty());
    s.frameworks[0].capabilities.gpu_resources = true;
    assert_eq!(run(&s, Instant::now()).len(), 1);
}

fn quota(g: &[(&str, i64)], l: &[(&str, i64)]) -> Quota {
    let m = |v: &[(&str, i64)]| {
        v.iter()
            .map(|(n, x)| (n.to_string(), Scalar::from_units(*x)))
            .collect()
    };
    Quota {
        guarantee: m(g),
        limit: m(l),
    }
}

#[test]
fn quota_headroom_is_held_back() {
    let mut s = Snapshot {
        agents: (0..10)
            .map(|i| agent(&format!("a{i}"), "cpus:1;mem:100"))
            .collect(),
        frameworks: vec![fw("q1", &["q"]), fw("o1", &["other"])],
        ..Snapshot::default()
    };
    s.quotas.insert("q".into(), quota(&[("cpus", 4)], &[]));
    s.suppress("q1", &[]);
    // q's framework takes nothing now, but 4 cpus stay free for it.
    let offers = run(&s, Instant::now());
    assert_eq!(offered(&offers, "o1", "cpus"), Scalar::from_units(6));
    s.revive("q1", &[]);
    let offers = run(&s, Instant::now());
    assert!(offered(&offers, "q1", "cpus") >= Scalar::from_units(4));
}

#[test]
fn quota_guarantee_served_first_and_limit_respected() {
    let mut s = Snapshot {
        agents: (0..10)
            .map(|i| agent(&format!("a{i}"), "cpus:1;mem:100"))
            .collect(),
        frameworks: vec![fw("q1", &["q"]), fw("heavy", &["h"])],
        ..Snapshot::default()
    };
    s.weights.insert("h".into(), 100.0);
    s.quotas
        .insert("q".into(), quota(&[("cpus", 3)], &[("cpus", 3)]));
    let offers = run(&s, Instant::now());
    assert_eq!(offered(&offers, "q1", "cpus"), Scalar::from_units(3));
    // Non-guaranteed mem comes along with the guaranteed cpus, so the offers are usable.
    assert_eq!(offered(&offers, "q1", "mem"), Scalar::from_units(300));
    assert_eq!(offered(&offers, "heavy", "cpus"), Scalar::from_units(7));
}

/// Saturated cluster, tasks finishing at random: weights 1 and 2 converge to shares 1/3 and 2/3.
#[test]
fn weighted_drf_converges_on_saturated_cluster() {
    let mut rng = StdRng::seed_from_u64(42);
    let mut s = Snapshot {
        agents: (0..300)
            .map(|i| agent(&format!("a{i}"), "cpus:1;mem:1024"))
            .collect(),
        frameworks: vec![fw("f1", &["r1"]), fw("f2", &["r2"])],
        ..Snapshot::default()
    };
    s.weights.insert("r2".into(), 2.0);
    let now = Instant::now();
    for _ in 0..60 {
        for o in allocate(&s, now, &mut rng) {
            s.record(&o);
        }
        for a in &mut s.agents {
            a.allocations.retain(|_| rng.random_range(0..10) != 0);
        }
    }
    for o in allocate(&s, now, &mut rng) {
        s.record(&o);
    }
    let held = |f: &str| {
        s.agents
            .iter()
            .flat_map(|a| &a.allocations)
            .filter(|al| al.framework == f)
            .count() as f64
    };
    let (f1, f2) = (held("f1") / 300.0, held("f2") / 300.0);
    assert!((f1 - 1.0 / 3.0).abs() < 0.03, "f1 share {f1}");
    assert!((f2 - 2.0 / 3.0).abs() < 0.03, "f2 share {f2}");
}

#[test]
fn random_sorter_config_allocates_everything() {
    let s = Snapshot {
        agents: (0..20)
            .map(|i| agent(&format!("a{i}"), "cpus:1;mem:64"))
            .collect(),
        frameworks: vec![fw("f1", &["r1"]), fw("f2", &["r2"])],
        ..Snapshot::default()
    };
    let cfg = Config {
        sorter: SorterKind::Random,
        ..Config::default()
    };
    let offers = allocate_with(&s, &cfg, Instant::now(), &mut StdRng::seed_from_u64(3));
    assert_eq!(offers.len(), 20);
}
