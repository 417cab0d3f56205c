//! The storage contract suite: one set of behaviours, run against the embedded store and a real etcd.

#[path = "storage_contract/durability.rs"]
mod durability;
#[path = "storage_contract/fixture.rs"]
mod fixture;
#[path = "storage_contract/suite.rs"]
mod suite;
#[path = "storage_contract/watch.rs"]
mod watch;

/// Instantiates every contract test for one backend: `$factory` returns a [`fixture::Fixture`].
macro_rules! contract_suite {
    ($backend:ident, $factory:path, [$($module:ident :: $test:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() -> anyhow::Result<()> {
                    let fixture = $factory().await?;
                    crate::$module::$test(fixture.store.clone()).await
                }
            )*
        }
    };
}

macro_rules! both_backends {
    ($($tests:tt)*) => {
        contract_suite!(embedded, crate::fixture::embedded, [$($tests)*]);
        contract_suite!(etcd, crate::fixture::etcd, [$($tests)*]);
    };
}

both_backends![
    suite::create_get_update_delete,
    suite::revisions_increase_by_one_per_write,
    suite::list_pages_at_a_fixed_revision,
    suite::list_at_an_old_revision,
    suite::prefixes_are_isolated,
    suite::large_values_round_trip,
    suite::compaction_rejects_old_revisions,
    watch::watch_replays_history_with_previous_values,
    watch::watch_has_no_gaps_or_duplicates_under_concurrent_writers,
    watch::slow_watcher_loses_nothing,
    watch::watch_from_compacted_revision_fails,
];
