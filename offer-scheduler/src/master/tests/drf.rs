//! Weighted DRF through the whole master: offers, launches, task completion.

use super::*;
use std::collections::VecDeque;

/// A framework that runs one task per offer, each using the whole offer.
struct Greedy {
    id: String,
    stream: String,
    running: VecDeque<(String, String)>,
    launched: usize,
}

impl Greedy {
    fn launch_all(&mut self, h: &mut H, offers: &[Json]) {
        for o in offers {
            self.launched += 1;
            let tid = format!("{}-{}", self.stream, self.launched);
            let aid = str_at(o, "/agent_id/value");
            let mut t = task(&tid, &aid, 0.0, 0.0);
            t["resources"] = o["resources"].clone();
            let fx = h.accept(&self.id, launch(&[offer_id(o)], vec![t]));
            assert_eq!(fx.statuses(&self.stream), Vec::<Json>::new());
            self.running.push_back((tid, aid));
        }
    }

    /// The oldest task finishes and its update is acknowledged.
    fn finish_oldest(&mut self, h: &mut H) {
        if let Some((tid, aid)) = self.running.pop_front() {
            h.update(&aid, &self.id, &tid, "TASK_FINISHED", Some("ZG9uZQ=="));
            h.ack(&self.id, &aid, &tid, "ZG9uZQ==");
        }
    }

    fn cpus(&self, h: &H) -> f64 {
        h.m.tasks()
            .filter(|t| t.framework == self.id && !t.state.is_terminal())
            .map(|t| t.resources.scalar("cpus").as_f64())
            .sum()
    }
}

#[test]
fn weighted_drf_converges_to_weights() {
    let mut h = H::new();
    h.m.update_weights([("a".to_string(), 1.0), ("b".to_string(), 3.0)]);
    for i in 0..40 {
        h.agent_sized(&format!("agent{i}"), 1.0, 1024.0);
    }
    let mut a = Greedy {
        id: h.subscribe_info("sa", fw_info(&["a"], &[])),
        stream: "sa".into(),
        running: VecDeque::new(),
        launched: 0,
    };
    // Alone, the first framework takes the whole cluster.
    let offers = h.offers("sa");
    assert_eq!(offers.len(), 40);
    a.launch_all(&mut h, &offers);
    assert_eq!(a.cpus(&h), 40.0);

    let mut b = Greedy {
        id: h.subscribe_info("sb", fw_info(&["b"], &[])),
        stream: "sb".into(),
        running: VecDeque::new(),
        launched: 0,
    };
    let mut history = Vec::new();
    for _ in 0..80 {
        a.finish_oldest(&mut h);
        b.finish_oldest(&mut h);
        let fx = h.cycle();
        let (oa, ob) = (fx.offers("sa"), fx.offers("sb"));
        a.launch_all(&mut h, &oa);
        b.launch_all(&mut h, &ob);
        // Saturated: every agent runs a task, nothing is left on offer.
        assert_eq!(a.cpus(&h) + b.cpus(&h), 40.0);
        assert_eq!(h.m.offers().count(), 0);
        history.push((a.cpus(&h), b.cpus(&h)));
    }
    // Weighted shares 1:3 of 40 cpus: 10 and 30.
    for &(ca, cb) in &history[60..] {
        assert!((ca - 10.0).abs() <= 1.0, "a holds {ca}: {history:?}");
        assert!((cb - 30.0).abs() <= 1.0, "b holds {cb}: {history:?}");
    }
}

#[test]
fn equal_weights_share_equally() {
    let mut h = H::new();
    for i in 0..20 {
        h.agent_sized(&format!("agent{i}"), 1.0, 1024.0);
    }
    let mut fws: Vec<Greedy> = ["sa", "sb"]
        .iter()
        .map(|s| Greedy {
            id: h.subscribe_info(s, fw_info(&[&s[1..]], &[])),
            stream: s.to_string(),
            running: VecDeque::new(),
            launched: 0,
        })
        .collect();
    for _ in 0..30 {
        for f in &mut fws {
            f.finish_oldest(&mut h);
        }
        let fx = h.cycle();
        for f in &mut fws {
            let offers = fx.offers(&f.stream);
            f.launch_all(&mut h, &offers);
        }
    }
    for f in &fws {
        let c = f.cpus(&h);
        assert!((c - 10.0).abs() <= 1.0, "{} holds {c}", f.id);
    }
}
