//! Unit tests of the replication controller's pure decisions.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec, ReplicationController,
    ReplicationControllerSpec, ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::logic::{self, plan};

const RC_UID: &str = "rc-uid";

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn rc(replicas: i32) -> ReplicationController {
    ReplicationController {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some(RC_UID.into()),
            generation: Some(3),
            ..Default::default()
        },
        spec: Some(ReplicationControllerSpec {
            replicas: Some(replicas),
            selector: Some(labels(&[("app", "web")])),
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&[("app", "web"), ("tier", "front")])),
                    annotations: Some(labels(&[("note", "x")])),
                    ..Default::default()
                }),
                spec: Some(PodSpec::default()),
            }),
            min_ready_seconds: None,
        }),
        status: None,
    }
}

fn ts(secs: i64) -> Time {
    Time(Timestamp::UNIX_EPOCH + SignedDuration::from_secs(secs))
}

fn pod(name: &str, app: &str, owner: Option<&str>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("{name}-uid")),
            resource_version: Some("7".into()),
            labels: Some(labels(&[("app", app), ("tier", "front")])),
            creation_timestamp: Some(ts(100)),
            owner_references: owner.map(|uid| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "ReplicationController".into(),
                    name: "web".into(),
                    uid: uid.into(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]
            }),
            ..Default::default()
        },
        spec: Some(PodSpec::default()),
        status: Some(PodStatus {
            phase: Some("Pending".into()),
            ..Default::default()
        }),
    }
}

fn owned(name: &str) -> Pod {
    pod(name, "web", Some(RC_UID))
}

fn with_node(mut p: Pod) -> Pod {
    if let Some(spec) = p.spec.as_mut() {
        spec.node_name = Some("node-1".into());
    }
    p
}

fn running(mut p: Pod, ready: bool) -> Pod {
    p.status = Some(PodStatus {
        phase: Some("Running".into()),
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            last_transition_time: Some(ts(150)),
            ..Default::default()
        }]),
        ..Default::default()
    });
    with_node(p)
}

fn created_at(mut p: Pod, secs: i64) -> Pod {
    p.metadata.creation_timestamp = Some(ts(secs));
    p
}

fn names(refs: &[logic::PodRef]) -> Vec<&str> {
    refs.iter().map(|r| r.name.as_str()).collect()
}

fn now() -> Timestamp {
    Timestamp::UNIX_EPOCH + SignedDuration::from_secs(1000)
}

#[test]
fn creates_missing_pods() {
    let p = plan(&rc(3), &[owned("a")], now());
    assert_eq!(p.create, 2);
    assert!(p.delete.is_empty() && p.adopt.is_empty() && p.release.is_empty());
    assert_eq!(p.status.replicas, 1);
    assert_eq!(p.status.observed_generation, Some(3));
}

#[test]
fn deletes_unscheduled_then_pending_then_unready_then_newest() {
    let pods = vec![
        running(created_at(owned("ready-old"), 10), true),
        running(created_at(owned("ready-new"), 20), true),
        running(owned("unready"), false),
        with_node(owned("pending-bound")),
        created_at(owned("unscheduled-old"), 10),
        created_at(owned("unscheduled-new"), 20),
    ];
    let p = plan(&rc(1), &pods, now());
    assert_eq!(p.create, 0);
    assert_eq!(
        names(&p.delete),
        [
            "unscheduled-new",
            "unscheduled-old",
            "pending-bound",
            "unready",
            "ready-new"
        ]
    );
}

#[test]
fn adopts_matching_orphans_only() {
    let pods = vec![
        pod("orphan", "web", None),
        pod("other-app", "db", None),
        pod("someone-elses", "web", Some("other-uid")),
    ];
    let p = plan(&rc(1), &pods, now());
    assert_eq!(names(&p.adopt), ["orphan"]);
    assert_eq!(p.create, 0, "the adopted pod counts");
    assert_eq!(p.status.replicas, 1);
}

#[test]
fn releases_owned_pods_that_no_longer_match() {
    let p = plan(
        &rc(2),
        &[owned("a"), pod("relabelled", "other", Some(RC_UID))],
        now(),
    );
    assert_eq!(names(&p.release), ["relabelled"]);
    assert_eq!(p.create, 1);
    assert_eq!(p.status.replicas, 1);
}

#[test]
fn deleting_and_finished_pods_are_not_active() {
    let mut deleting = owned("deleting");
    deleting.metadata.deletion_timestamp = Some(ts(900));
    let mut done = owned("done");
    done.status = Some(PodStatus {
        phase: Some("Succeeded".into()),
        ..Default::default()
    });
    let p = plan(&rc(2), &[deleting, done, owned("a")], now());
    assert_eq!(p.create, 1);
    assert!(p.delete.is_empty());
    assert_eq!(p.status.replicas, 1);
}

#[test]
fn an_rc_being_deleted_neither_creates_nor_adopts() {
    let mut r = rc(3);
    r.metadata.deletion_timestamp = Some(ts(900));
    let p = plan(&r, &[pod("orphan", "web", None)], now());
    assert_eq!(p.create, 0);
    assert!(p.adopt.is_empty());
}

#[test]
fn status_counts() {
    let mut stray = owned("stray");
    stray.metadata.labels = Some(labels(&[("app", "web")]));
    let pods = vec![running(owned("a"), true), running(owned("b"), false), stray];
    let p = plan(&rc(3), &pods, now());
    let s = &p.status;
    assert_eq!(s.replicas, 3);
    assert_eq!(s.fully_labeled_replicas, Some(2));
    assert_eq!(s.ready_replicas, Some(1));
    assert_eq!(s.available_replicas, Some(1));
}

#[test]
fn min_ready_seconds_delays_availability() {
    let mut r = rc(1);
    if let Some(spec) = r.spec.as_mut() {
        spec.min_ready_seconds = Some(100);
    }
    let pods = [running(owned("a"), true)];
    let early = Timestamp::UNIX_EPOCH + SignedDuration::from_secs(200);
    assert_eq!(plan(&r, &pods, early).status.available_replicas, Some(0));
    assert_eq!(plan(&r, &pods, now()).status.available_replicas, Some(1));
}

#[test]
fn status_current_ignores_absent_zeroes() {
    let mut r = rc(0);
    let wanted = plan(&r, &[], now()).status;
    assert!(!logic::status_current(&r, &wanted));
    r.status = Some(ReplicationControllerStatus {
        replicas: 0,
        observed_generation: Some(3),
        ..Default::default()
    });
    assert!(logic::status_current(&r, &wanted));
}

#[test]
fn empty_selector_selects_nothing() {
    let mut r = rc(1);
    if let Some(spec) = r.spec.as_mut() {
        spec.selector = Some(BTreeMap::new());
        spec.template = None;
    }
    let p = plan(&r, &[pod("orphan", "web", None)], now());
    assert!(p.adopt.is_empty());
    assert_eq!(p.create, 1);
}

#[test]
fn pods_from_the_template() {
    let p = logic::pod_from_template(&rc(1));
    assert_eq!(p.metadata.generate_name.as_deref(), Some("web-"));
    assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(
        p.metadata.labels,
        Some(labels(&[("app", "web"), ("tier", "front")]))
    );
    assert_eq!(p.metadata.annotations, Some(labels(&[("note", "x")])));
    let refs = p.metadata.owner_references.unwrap_or_default();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].uid, RC_UID);
    assert_eq!(refs[0].kind, "ReplicationController");
    assert_eq!(refs[0].controller, Some(true));
    assert_eq!(refs[0].block_owner_deletion, Some(true));
}

#[test]
fn slow_start_doubles_batches_up_to_the_count() {
    assert_eq!(logic::slow_start_batches(0), Vec::<usize>::new());
    assert_eq!(logic::slow_start_batches(1), vec![1]);
    assert_eq!(logic::slow_start_batches(10), vec![1, 2, 4, 3]);
    let big = logic::slow_start_batches(logic::BURST_REPLICAS);
    assert_eq!(big, vec![1, 2, 4, 8, 16, 32, 64, 128, 245]);
    assert_eq!(big.iter().sum::<usize>(), logic::BURST_REPLICAS);
}

#[test]
fn quiet_syncs_are_spaced_and_acting_ones_are_not() {
    use std::time::{Duration, Instant};
    let mut q = logic::QuietSyncs::default();
    let t0 = Instant::now();
    assert_eq!(q.wait("rc", t0), None, "the first sync runs at once");
    let quick = Duration::from_millis(10);
    q.record("rc", t0, quick, false);
    assert_eq!(
        q.wait("rc", t0 + Duration::from_millis(100)),
        Some(logic::QUIET_SYNC_EVERY - Duration::from_millis(100))
    );
    assert_eq!(q.wait("rc", t0 + logic::QUIET_SYNC_EVERY), None);
    assert_eq!(q.wait("other", t0), None);
    q.record("rc", t0, quick, true);
    assert_eq!(q.wait("rc", t0), None, "after a sync that acted");
    // A slow sync (a large namespace listed) spaces the next by ten times its cost.
    q.record("rc", t0, Duration::from_secs(1), false);
    assert_eq!(
        q.wait("rc", t0 + Duration::from_secs(4)),
        Some(Duration::from_secs(6))
    );
    q.forget("rc");
    assert_eq!(q.wait("rc", t0), None);
}
