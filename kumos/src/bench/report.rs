//! The report every section writes into: Markdown sections, targets judged for the summary, and
//! the points of the scaling curve. Rendering is pure so it is unit-tested.

use serde_json::{json, Value as Json};

use super::stats::{fmt_count, fmt_ms};

/// Which way a target points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    /// The figure must not exceed this.
    AtMost(f64),
    /// The figure must reach at least this.
    AtLeast(f64),
}

/// How a target came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The figure meets the goal.
    Met,
    /// The figure misses the goal.
    Missed,
    /// No figure was measured (a failure of the harness, not of the system).
    NoFigure,
}

/// One target of issue 8 and what was measured for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// What is measured, e.g. "Allocator cycle, 10k agents × 1k frameworks".
    pub name: String,
    /// The goal.
    pub goal: Goal,
    /// Unit of the goal and the figure, e.g. "ms".
    pub unit: String,
    /// The figure, when measured.
    pub measured: Option<f64>,
}

impl Target {
    /// A target that the figure must not exceed.
    pub fn at_most(name: &str, limit: f64, unit: &str, measured: Option<f64>) -> Target {
        Target {
            name: name.to_string(),
            goal: Goal::AtMost(limit),
            unit: unit.to_string(),
            measured,
        }
    }

    /// A target that the figure must reach.
    pub fn at_least(name: &str, floor: f64, unit: &str, measured: Option<f64>) -> Target {
        Target {
            name: name.to_string(),
            goal: Goal::AtLeast(floor),
            unit: unit.to_string(),
            measured,
        }
    }

    /// Judges the figure against the goal.
    pub fn verdict(&self) -> Verdict {
        match (self.measured, self.goal) {
            (Some(m), _) if !m.is_finite() => Verdict::NoFigure,
            (None, _) => Verdict::NoFigure,
            (Some(m), Goal::AtMost(l)) if m <= l => Verdict::Met,
            (Some(m), Goal::AtLeast(f)) if m >= f => Verdict::Met,
            (Some(_), _) => Verdict::Missed,
        }
    }

    fn goal_text(&self) -> String {
        match self.goal {
            Goal::AtMost(l) => format!("≤ {} {}", fmt_figure(l), self.unit),
            Goal::AtLeast(f) => format!("≥ {} {}", fmt_figure(f), self.unit),
        }
    }
}

fn fmt_figure(v: f64) -> String {
    if v >= 100.0 {
        fmt_count(v)
    } else {
        fmt_ms(v)
    }
}

/// One numbered section of the report.
#[derive(Clone, Debug)]
pub struct Section {
    /// Issue 8's numbering (1 scheduling … 5 scaling); the report is ordered by it.
    pub number: u8,
    /// Heading.
    pub title: String,
    /// Body (Markdown, no heading).
    pub markdown: String,
    /// Figures for report.json.
    pub json: Json,
}

/// One end-to-end scheduling run, for the scaling curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PodsPoint {
    /// Simulated agents.
    pub agents: u32,
    /// Pods scheduled.
    pub pods: usize,
    /// Pods per second from creation of the RC to the last pod Running.
    pub pods_per_second: f64,
}

/// One allocation cycle measurement, for the scaling curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CyclePoint {
    /// Agents.
    pub agents: usize,
    /// Frameworks.
    pub frameworks: usize,
    /// Best wall time of one cycle in ms.
    pub wall_ms: f64,
}

/// Everything `kumos bench` reports.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Lines describing the run (command, date, machine).
    pub header: Vec<String>,
    /// Sections in the order they were added (rendered by number).
    pub sections: Vec<Section>,
    /// Every target, for the summary.
    pub targets: Vec<Target>,
    /// Section 1's runs.
    pub pods_points: Vec<PodsPoint>,
    /// Section 2's cycles (the all-active scenario).
    pub cycle_points: Vec<CyclePoint>,
    /// Sections that failed, with the error: their figures are missing.
    pub failed: Vec<String>,
}

impl Report {
    /// Adds a section.
    pub fn section(&mut self, number: u8, title: &str, markdown: String, json: Json) {
        self.sections.push(Section {
            number,
            title: title.to_string(),
            markdown,
            json,
        });
    }

    /// The summary: every target with its figure and verdict; missed ones and missing figures
    /// listed again below the table.
    pub fn summary_markdown(&self) -> String {
        let mut md = String::from("| target | goal | measured | |\n|---|---|---|---|\n");
        for t in &self.targets {
            let figure = t.measured.filter(|m| m.is_finite()).map_or_else(
                || "no figure".to_string(),
                |m| format!("{} {}", fmt_figure(m), t.unit),
            );
            let verdict = match t.verdict() {
                Verdict::Met => "met",
                Verdict::Missed => "**missed**",
                Verdict::NoFigure => "**no figure**",
            };
            md += &format!(
                "| {} | {} | {figure} | {verdict} |\n",
                t.name,
                t.goal_text()
            );
        }
        let missed: Vec<&Target> = self
            .targets
            .iter()
            .filter(|t| t.verdict() != Verdict::Met)
            .collect();
        if !self.failed.is_empty() {
            md += "\n**Sections and runs that failed (their figures are missing):**\n";
            for f in &self.failed {
                md += &format!("- {f}\n");
            }
        }
        if missed.is_empty() {
            md += "\nEvery target was met.\n";
        } else {
            md += "\nMissed (the figure is information, not a failure):\n";
            for t in missed {
                let figure = t.measured.filter(|m| m.is_finite()).map_or_else(
                    || "no figure was measured".to_string(),
                    |m| format!("measured {} {}", fmt_figure(m), t.unit),
                );
                md += &format!("- {}: {figure}, target {}\n", t.name, t.goal_text());
            }
        }
        md
    }

    /// The whole report as Markdown: header, summary, then the sections by number.
    pub fn markdown(&self) -> String {
        let mut md = String::from("# kumos bench\n\n");
        for line in &self.header {
            md += &format!("{line}  \n");
        }
        md += "\n## Summary\n\n";
        md += &self.summary_markdown();
        let mut sections: Vec<&Section> = self.sections.iter().collect();
        sections.sort_by_key(|s| s.number);
        for s in sections {
            md += &format!("\n## {}. {}\n\n{}", s.number, s.title, s.markdown);
            if !md.ends_with('\n') {
                md.push('\n');
            }
        }
        md
    }

    /// The whole report as JSON.
    pub fn json(&self) -> Json {
        let targets: Vec<Json> = self
            .targets
            .iter()
            .map(|t| {
                let (kind, limit) = match t.goal {
                    Goal::AtMost(l) => ("at_most", l),
                    Goal::AtLeast(f) => ("at_least", f),
                };
                let mut j = json!({"name": t.name, "unit": t.unit,
                    "measured": t.measured.filter(|m| m.is_finite()),
                    "verdict": format!("{:?}", t.verdict())});
                j[kind] = json!(limit);
                j
            })
            .collect();
        let mut sections = serde_json::Map::new();
        for s in &self.sections {
            sections.insert(
                format!("{}", s.number),
                json!({"title": s.title, "figures": s.json}),
            );
        }
        json!({"header": self.header, "targets": targets, "sections": sections,
            "failed": self.failed})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(
            Target::at_most("a", 10.0, "ms", Some(9.0)).verdict(),
            Verdict::Met
        );
        assert_eq!(
            Target::at_most("a", 10.0, "ms", Some(10.0)).verdict(),
            Verdict::Met
        );
        assert_eq!(
            Target::at_most("a", 10.0, "ms", Some(11.0)).verdict(),
            Verdict::Missed
        );
        assert_eq!(
            Target::at_least("b", 5000.0, "pods/s", Some(8.0)).verdict(),
            Verdict::Missed
        );
        assert_eq!(
            Target::at_least("b", 5000.0, "pods/s", Some(5000.0)).verdict(),
            Verdict::Met
        );
        assert_eq!(
            Target::at_least("b", 1.0, "x", None).verdict(),
            Verdict::NoFigure
        );
        assert_eq!(
            Target::at_most("b", 1.0, "x", Some(f64::NAN)).verdict(),
            Verdict::NoFigure
        );
    }

    #[test]
    fn summary_lists_every_target_and_repeats_the_missed_ones() {
        let mut r = Report::default();
        r.targets
            .push(Target::at_most("Idle RSS", 40.0, "MB", Some(31.5)));
        r.targets.push(Target::at_most(
            "Allocator cycle, 10k × 1k",
            10.0,
            "ms",
            Some(512.0),
        ));
        r.targets
            .push(Target::at_least("Scheduling", 5000.0, "pods/s", None));
        r.failed.push("1. End-to-end scheduling: timed out".into());
        let md = r.summary_markdown();
        assert!(md.contains(
            "failed (their figures are missing):**\n- 1. End-to-end scheduling: timed out\n"
        ));
        assert!(
            md.contains("| Idle RSS | ≤ 40.0 MB | 31.5 MB | met |"),
            "{md}"
        );
        assert!(md.contains("| Allocator cycle, 10k × 1k | ≤ 10.0 ms | 512 ms | **missed** |"));
        assert!(md.contains("| Scheduling | ≥ 5,000 pods/s | no figure | **no figure** |"));
        assert!(md.contains("- Allocator cycle, 10k × 1k: measured 512 ms, target ≤ 10.0 ms\n"));
        assert!(md.contains("- Scheduling: no figure was measured, target ≥ 5,000 pods/s\n"));
        assert!(!md.contains("- Idle RSS"));
    }

    #[test]
    fn sections_render_in_issue_order_after_the_summary() {
        let mut r = Report {
            header: vec!["Command: `kumos bench --quick`".into()],
            ..Report::default()
        };
        r.section(3, "API server", "api body".into(), json!({"x": 1}));
        r.section(1, "Scheduling", "sched body\n".into(), json!({}));
        r.targets.push(Target::at_most("t", 1.0, "s", Some(0.5)));
        let md = r.markdown();
        let summary = md.find("## Summary").unwrap_or(usize::MAX);
        let one = md.find("## 1. Scheduling").unwrap_or(usize::MAX);
        let three = md.find("## 3. API server").unwrap_or(usize::MAX);
        assert!(summary < one && one < three, "{md}");
        assert!(md.contains("Command: `kumos bench --quick`  \n"));
        assert!(md.contains("Every target was met."));
        let j = r.json();
        assert_eq!(j["sections"]["3"]["figures"]["x"], 1);
        assert_eq!(j["targets"][0]["at_most"], 1.0);
        assert_eq!(j["targets"][0]["verdict"], "Met");
    }
}
