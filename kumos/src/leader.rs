//! Master leader election on etcd (when the store is etcd): every master campaigns with its
//! address; the leader runs the master, the others answer as standbys (307 to the leader, 503
//! while nobody leads). A leader that loses its etcd lease stops, as a Mesos master does.

use std::time::Duration;

use anyhow::Context;
use etcd_client::Client;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// This master's role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not leading; the leader's `host:port`, if any.
    Standby(Option<String>),
    /// Leading.
    Leader,
    /// Leadership was lost (lease expired or etcd unreachable): the master must stop.
    Lost,
}

/// Lease time-to-live: a dead leader is replaced within about this long.
const LEASE_TTL: i64 = 5;

/// Starts campaigning for `name` with `me` (this master's `host:port`) as the value; the role is
/// published on `tx`.
pub async fn campaign(
    endpoints: &[String],
    name: String,
    me: String,
    tx: watch::Sender<Role>,
    tracker: &TaskTracker,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let client = Client::connect(endpoints, None)
        .await
        .with_context(|| format!("connecting to etcd at {}", endpoints.join(",")))?;
    let lease = client
        .lease_client()
        .grant(LEASE_TTL, None)
        .await
        .context("granting the election lease")?
        .id();
    tracker.spawn(keep_alive(client.clone(), lease, tx.clone(), token.clone()));
    tracker.spawn(watch_leader(
        client.clone(),
        name.clone(),
        tx.clone(),
        token.clone(),
    ));
    tracker.spawn(async move {
        let mut election = client.election_client();
        tokio::select! {
            _ = token.cancelled() => {}
            r = election.campaign(name, me, lease) => match r {
                Ok(_) => { let _ = tx.send(Role::Leader); }
                Err(err) => {
                    tracing::error!(%err, "master election failed");
                    let _ = tx.send(Role::Lost);
                }
            },
        }
    });
    Ok(())
}

async fn keep_alive(client: Client, lease: i64, tx: watch::Sender<Role>, token: CancellationToken) {
    let mut lc = client.lease_client();
    let Ok((mut keeper, mut responses)) = lc.keep_alive(lease).await else {
        let _ = tx.send(Role::Lost);
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = token.cancelled() => {
                let _ = lc.revoke(lease).await;
                return;
            }
            _ = tick.tick() => {}
        }
        let alive = keeper.keep_alive().await.is_ok()
            && matches!(responses.message().await, Ok(Some(r)) if r.ttl() > 0);
        if !alive {
            tracing::error!("the master's etcd lease expired");
            let _ = tx.send(Role::Lost);
            return;
        }
    }
}

/// While standing by, learns who leads (polling is enough: clients are redirected, not served).
async fn watch_leader(
    client: Client,
    name: String,
    tx: watch::Sender<Role>,
    token: CancellationToken,
) {
    let mut election = client.election_client();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !matches!(*tx.borrow(), Role::Standby(_)) {
            return;
        }
        let leader = election.leader(name.clone()).await.ok().and_then(|r| {
            r.kv()
                .and_then(|kv| kv.value_str().ok().map(str::to_string))
        });
        tx.send_if_modified(|role| match role {
            Role::Standby(current) if *current != leader => {
                *current = leader.clone();
                true
            }
            _ => false,
        });
    }
}
