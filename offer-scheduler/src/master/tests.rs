//! The master's lifecycle driven through its public methods with injected time: every assertion
//! reads the JSON events it asks the shell to send.

mod agents;
mod drf;
mod frameworks;
mod offers;
mod recovery;
mod tasks;

use super::frameworks::SubscribeError;
use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;

/// Unix time of the first instant of every test.
const T0_UNIX: f64 = 1_700_000_000.0;

/// The effects of some calls, with lookups by stream.
#[derive(Debug, Default)]
struct Fx(Vec<Effect>);

impl Fx {
    /// Events sent on `stream`, in order.
    fn to(&self, stream: &str) -> Vec<Json> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Effect::Send { stream: s, event } if s == stream => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    /// Events of type `kind` sent on `stream`.
    fn of(&self, stream: &str, kind: &str) -> Vec<Json> {
        self.to(stream)
            .into_iter()
            .filter(|e| e["type"] == kind)
            .collect()
    }

    /// The only event of type `kind` on `stream`.
    fn one(&self, stream: &str, kind: &str) -> Json {
        let mut all = self.of(stream, kind);
        assert_eq!(
            all.len(),
            1,
            "one {kind} on {stream} expected: {:#?}",
            self.0
        );
        all.remove(0)
    }

    /// The statuses of the UPDATE events on `stream`.
    fn statuses(&self, stream: &str) -> Vec<Json> {
        self.of(stream, "UPDATE")
            .into_iter()
            .map(|e| e["update"]["status"].clone())
            .collect()
    }

    /// Every offer of the OFFERS events on `stream`.
    fn offers(&self, stream: &str) -> Vec<Json> {
        self.of(stream, "OFFERS")
            .into_iter()
            .flat_map(|e| {
                e["offers"]["offers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Offer ids rescinded on `stream`.
    fn rescinded(&self, stream: &str) -> Vec<String> {
        self.of(stream, "RESCIND")
            .into_iter()
            .map(|e| str_at(&e, "/rescind/offer_id/value"))
            .collect()
    }

    fn closed(&self, stream: &str) -> bool {
        self.0
            .iter()
            .any(|e| matches!(e, Effect::Close { stream: s } if s == stream))
    }

    fn is_empty_for(&self, stream: &str) -> bool {
        self.to(stream).is_empty()
    }
}

/// The string at a JSON pointer (panics with the document when absent).
fn str_at(j: &Json, pointer: &str) -> String {
    match j.pointer(pointer).and_then(Json::as_str) {
        Some(s) => s.to_string(),
        None => panic!("no string at {pointer} in {j:#}"),
    }
}

/// Sum of a scalar over offer (or task) resource JSON.
fn scalar_of(resources: &Json, name: &str) -> f64 {
    resources
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| r["name"] == name)
                .filter_map(|r| r.pointer("/scalar/value").and_then(Json::as_f64))
                .sum()
        })
        .unwrap_or(0.0)
}

/// Total of a scalar over a list of offers.
fn offered(offers: &[Json], name: &str) -> f64 {
    offers
        .iter()
        .map(|o| scalar_of(&o["resources"], name))
        .sum()
}

fn offer_id(offer: &Json) -> String {
    str_at(offer, "/id/value")
}

/// A pymesos-like `FrameworkInfo`.
fn fw_info(roles: &[&str], caps: &[&str]) -> Json {
    let mut capabilities = vec![json!({"type": "MULTI_ROLE"})];
    capabilities.extend(caps.iter().map(|c| json!({ "type": c })));
    json!({"user": "u", "name": "n", "roles": roles, "capabilities": capabilities})
}

fn subscribe_call(info: Json) -> Json {
    let mut call = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info.clone()}});
    if let Some(fid) = info.get("id") {
        call["framework_id"] = fid.clone();
    }
    call
}

fn scalar_json(name: &str, v: f64) -> Json {
    json!({"name": name, "type": "SCALAR", "scalar": {"value": v}})
}

fn agent_call(id: Option<&str>, cpus: f64, mem: f64, tasks: Json) -> Json {
    let mut info = json!({
        "hostname": "h",
        "port": 5051,
        "resources": [scalar_json("cpus", cpus), scalar_json("mem", mem)],
    });
    if let Some(a) = id {
        info["id"] = proto::id(a);
    }
    json!({"type": "SUBSCRIBE", "subscribe": {"agent_info": info, "tasks": tasks}})
}

/// A command task.
fn task(tid: &str, aid: &str, cpus: f64, mem: f64) -> Json {
    json!({
        "name": format!("task {tid}"),
        "task_id": {"value": tid},
        "agent_id": {"value": aid},
        "resources": [scalar_json("cpus", cpus), scalar_json("mem", mem)],
        "command": {"value": "sleep 1000"},
    })
}

/// An ACCEPT body launching `tasks` on `offer_ids`.
fn launch(offer_ids: &[String], tasks: Vec<Json>) -> Json {
    let ids: Vec<Json> = offer_ids.iter().map(|o| proto::id(o)).collect();
    json!({
        "offer_ids": ids,
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
    })
}

/// A master under test with its clock and a copy of the store it persists to.
struct H {
    m: Master,
    now: Now,
    pending: Vec<Effect>,
    store: BTreeMap<String, Json>,
}

impl H {
    fn new() -> H {
        H::with(Config::default())
    }

    fn with(cfg: Config) -> H {
        let now = Now {
            instant: Instant::now(),
            unix: T0_UNIX,
        };
        H {
            m: Master::new(cfg, "m".into(), now),
            now,
            pending: Vec::new(),
            store: BTreeMap::new(),
        }
    }

    /// A master recovered from this one's store `d` later (this one is gone: its streams are
    /// not carried over).
    fn restart(&mut self, d: Duration) -> H {
        self.pull();
        let now = self.now.after(d);
        let records: Vec<(String, Json)> = self
            .store
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let Some(m) = Master::recover(self.m.config().clone(), &records, now) else {
            panic!("no master record in {records:#?}");
        };
        H {
            m,
            now,
            pending: Vec::new(),
            store: self.store.clone(),
        }
    }

    /// Takes the master's effects, applying persists to the store copy.
    fn pull(&mut self) {
        for e in self.m.take_effects() {
            if let Effect::Persist { key, value } = &e {
                match value {
                    Some(v) => {
                        self.store.insert(key.clone(), v.clone());
                    }
                    None => {
                        self.store.remove(key);
                    }
                }
            }
            self.pending.push(e);
        }
    }

    /// Everything produced since the last `take`.
    fn take(&mut self) -> Fx {
        self.pull();
        Fx(std::mem::take(&mut self.pending))
    }

    /// Moves the clock and runs the periodic work.
    fn advance(&mut self, d: Duration) {
        self.now = self.now.after(d);
        self.m.tick(self.now);
    }

    fn advance_secs(&mut self, s: f64) {
        self.advance(Duration::from_secs_f64(s));
    }

    /// Advances `s` seconds in 10 s steps, every listed agent heartbeating before each tick.
    fn advance_alive(&mut self, s: f64, agents: &[&str]) {
        let mut left = s;
        while left > 0.0 {
            let step = left.min(10.0);
            self.now = self.now.after(Duration::from_secs_f64(step));
            for a in agents {
                self.m.agent_heartbeat(a, self.now);
            }
            self.m.tick(self.now);
            left -= step;
        }
    }

    fn subscribe_info(&mut self, stream: &str, info: Json) -> String {
        match self.m.subscribe(&subscribe_call(info), stream, self.now) {
            Ok(fid) => fid,
            Err(e) => panic!("subscribe failed: {e}"),
        }
    }

    /// A MULTI_ROLE framework in role "a".
    fn subscribe(&mut self, stream: &str) -> String {
        self.subscribe_info(stream, fw_info(&["a"], &[]))
    }

    fn agent_sized(&mut self, stream: &str, cpus: f64, mem: f64) -> String {
        let call = agent_call(None, cpus, mem, json!([]));
        match self.m.agent_subscribe(&call, stream, self.now) {
            Ok(aid) => aid,
            Err(e) => panic!("agent subscribe failed: {e}"),
        }
    }

    /// An agent with cpus:4;mem:4096.
    fn agent(&mut self, stream: &str) -> String {
        self.agent_sized(stream, 4.0, 4096.0)
    }

    /// One allocation cycle; returns its effects (earlier ones included).
    fn cycle(&mut self) -> Fx {
        self.m.allocate(self.now, &mut StdRng::seed_from_u64(1));
        self.take()
    }

    /// One allocation cycle; the offers it sent on `stream`.
    fn offers(&mut self, stream: &str) -> Vec<Json> {
        self.cycle().offers(stream)
    }

    fn accept(&mut self, fid: &str, body: Json) -> Fx {
        self.m.accept(fid, &body, self.now);
        self.take()
    }

    /// An agent's status update for a task.
    fn update(&mut self, aid: &str, fid: &str, tid: &str, state: &str, uuid: Option<&str>) -> Fx {
        let mut status = json!({
            "task_id": {"value": tid},
            "state": state,
            "source": "SOURCE_EXECUTOR",
        });
        if let Some(u) = uuid {
            status["uuid"] = json!(u);
        }
        let update = json!({"framework_id": {"value": fid}, "status": status});
        self.m.agent_update(aid, &update, self.now);
        self.take()
    }

    fn ack(&mut self, fid: &str, aid: &str, tid: &str, uuid: &str) -> Fx {
        let ack = json!({"agent_id": {"value": aid}, "task_id": {"value": tid}, "uuid": uuid});
        self.m.acknowledge(fid, &ack, self.now);
        self.take()
    }

    fn task(&self, fid: &str, tid: &str) -> Option<&Task> {
        self.m.tasks().find(|t| t.framework == fid && t.id == tid)
    }

    /// Framework on "s1", agent on "a1", one offer for the whole agent: (fid, aid, offer).
    fn offered_setup(&mut self) -> (String, String, Json) {
        let fid = self.subscribe("s1");
        let aid = self.agent("a1");
        self.take();
        let mut offers = self.offers("s1");
        assert_eq!(offers.len(), 1);
        (fid, aid, offers.remove(0))
    }

    /// [`H::offered_setup`] plus a running task "t1" (cpus:1;mem:128) whose RUNNING update was
    /// acknowledged: (fid, aid).
    fn running_setup(&mut self) -> (String, String) {
        let (fid, aid, offer) = self.offered_setup();
        let fx = self.accept(
            &fid,
            launch(&[offer_id(&offer)], vec![task("t1", &aid, 1.0, 128.0)]),
        );
        assert_eq!(fx.of("a1", "LAUNCH").len(), 1);
        self.update(&aid, &fid, "t1", "TASK_RUNNING", Some("dXVpZC1ydW4="));
        self.ack(&fid, &aid, "t1", "dXVpZC1ydW4=");
        (fid, aid)
    }
}
