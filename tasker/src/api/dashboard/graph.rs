//! The pictures, as inline SVG drawn on the server: a step graph (laid
//! out by dependency level, each step's state as colour, icon and text),
//! the timeline of a task's attempts, and the overview's activity chart.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};

use crate::graph::Graph;
use crate::store::{ActivityMinute, ItemCounts, StepRecord, Transition};

const NODE_W: i64 = 176;
const NODE_H: i64 = 50;
const GAP_X: i64 = 56;
const GAP_Y: i64 = 18;
const PAD: i64 = 12;

/// What the graph shows of one step.
pub(super) struct StepMark<'a> {
    pub(super) state: &'a str,
    pub(super) items: Option<ItemCounts>,
}

/// A name cut to fit its box.
fn fit(name: &str, chars: usize) -> String {
    if name.chars().count() <= chars {
        name.to_owned()
    } else {
        let mut cut: String = name.chars().take(chars - 1).collect();
        cut.push('…');
        cut
    }
}

/// The step graph; `marks` gives each step's state (none: the handler's
/// graph alone).
pub(super) fn step_graph(graph: &Graph, marks: &HashMap<&str, StepMark<'_>>) -> Markup {
    let levels = graph.levels();
    let tallest = levels.iter().map(Vec::len).max().unwrap_or(1) as i64;
    let width = PAD * 2 + levels.len() as i64 * (NODE_W + GAP_X) - GAP_X;
    let height = PAD * 2 + tallest * (NODE_H + GAP_Y) - GAP_Y;
    let mut at: HashMap<&str, (i64, i64)> = HashMap::new();
    for (column, steps) in levels.iter().enumerate() {
        let column_height = steps.len() as i64 * (NODE_H + GAP_Y) - GAP_Y;
        let top = PAD + (height - 2 * PAD - column_height) / 2;
        for (row, step) in steps.iter().enumerate() {
            at.insert(
                step,
                (
                    PAD + column as i64 * (NODE_W + GAP_X),
                    top + row as i64 * (NODE_H + GAP_Y),
                ),
            );
        }
    }
    let label = format!(
        "Step graph: {}",
        graph
            .topological_order()
            .iter()
            .map(|s| match marks.get(s) {
                Some(mark) => format!("{s} {}", mark.state.replace('_', " ")),
                None => (*s).to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    html! {
        svg.graph xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(label)
            viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height) {
            defs {
                marker #arrow viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" {}
                }
            }
            @for step in graph.topological_order() {
                @for parent in graph.dependencies(step) {
                    @if let (Some(&(px, py)), Some(&(cx, cy))) = (at.get(parent), at.get(step)) {
                        @let (x1, y1, x2, y2) = (px + NODE_W, py + NODE_H / 2, cx, cy + NODE_H / 2);
                        path.edge marker-end="url(#arrow)"
                            d={ "M " (x1) " " (y1) " C " (x1 + GAP_X / 2) " " (y1) ", " (x2 - GAP_X / 2) " " (y2) ", " (x2) " " (y2) } {}
                    }
                }
            }
            @for step in graph.topological_order() {
                @if let Some(&(x, y)) = at.get(step) {
                    @let mark = marks.get(step);
                    @let state = mark.map_or("none", |m| m.state);
                    g class={ "node state-" (state) } data-step=(step) {
                        title { (step) @if let Some(m) = mark { ": " (m.state.replace('_', " ")) } }
                        rect x=(x) y=(y) width=(NODE_W) height=(NODE_H) rx="6" {}
                        text.name x=(x + 10) y=(y + 20) { (fit(step, 21)) }
                        @if let Some(m) = mark {
                            text.state x=(x + 10) y=(y + 39) {
                                @if let Some(items) = m.items {
                                    (items.done) "/" (items.total) " items"
                                    @if items.failed > 0 { ", " (items.failed) " failed" }
                                } @else {
                                    (super::view::state_icon(m.state)) " " (m.state.replace('_', " "))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One bar of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Bar {
    pub(super) start: DateTime<Utc>,
    pub(super) end: DateTime<Utc>,
    pub(super) kind: BarKind,
    pub(super) attempt: Option<u32>,
    pub(super) error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BarKind {
    /// Ready, waiting for a worker (or for its retry's back-off).
    Wait,
    /// An attempt that completed its step.
    Done,
    /// An attempt that failed.
    Failed,
    /// An attempt still running.
    Running,
}

impl BarKind {
    fn class(self) -> &'static str {
        match self {
            BarKind::Wait => "wait",
            BarKind::Done => "done",
            BarKind::Failed => "failed",
            BarKind::Running => "running",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            BarKind::Wait => "waited",
            BarKind::Done => "completed",
            BarKind::Failed => "failed",
            BarKind::Running => "running",
        }
    }
}

/// The bars of one step from its transitions (in order): waits from
/// `ready` to `in_progress`, attempts from `in_progress` to what followed.
pub(super) fn bars(transitions: &[&Transition], now: DateTime<Utc>) -> Vec<Bar> {
    let mut bars = Vec::new();
    let mut ready_since = None;
    let mut running: Option<(DateTime<Utc>, Option<u32>)> = None;
    for t in transitions {
        if let Some((start, attempt)) = running.take() {
            let kind = if t.to_state == "complete" {
                BarKind::Done
            } else {
                BarKind::Failed
            };
            bars.push(Bar {
                start,
                end: t.at,
                kind,
                attempt,
                error: t.error.clone(),
            });
        }
        match t.to_state.as_str() {
            "ready" => ready_since = Some(t.at),
            "in_progress" => {
                if let Some(since) = ready_since.take() {
                    bars.push(Bar {
                        start: since,
                        end: t.at,
                        kind: BarKind::Wait,
                        attempt: None,
                        error: None,
                    });
                }
                running = Some((t.at, t.attempt));
            }
            _ => ready_since = None,
        }
    }
    if let Some((start, attempt)) = running {
        bars.push(Bar {
            start,
            end: now.max(start),
            kind: BarKind::Running,
            attempt,
            error: None,
        });
    }
    bars
}

/// A duration for people: `840 ms`, `12.4 s`, `3 min 5 s`.
pub(super) fn human(d: Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{} h {} min", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

const LANE_H: i64 = 24;
const LABEL_W: i64 = 190;
const PLOT_W: i64 = 720;

/// The timeline of a task's steps: one lane per step, its waits and
/// attempts as bars over the task's lifetime.
pub(super) fn timeline(
    steps: &[&StepRecord],
    transitions: &[Transition],
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Markup {
    let mut by_step: HashMap<i64, Vec<&Transition>> = HashMap::new();
    for t in transitions {
        if let Some(step) = t.step_id {
            by_step.entry(step.0).or_default().push(t);
        }
    }
    let lanes: Vec<(&StepRecord, Vec<Bar>)> = steps
        .iter()
        .map(|s| {
            let bars = by_step
                .get(&s.step_id.0)
                .map(|ts| bars(ts, now))
                .unwrap_or_default();
            (*s, bars)
        })
        .collect();
    let end = lanes
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|b| b.end))
        .max()
        .unwrap_or(now)
        .max(start + Duration::milliseconds(1));
    let span = (end - start).num_milliseconds().max(1) as f64;
    let x = |t: DateTime<Utc>| {
        LABEL_W + (((t - start).num_milliseconds().max(0) as f64 / span) * PLOT_W as f64) as i64
    };
    let height = 28 + lanes.len() as i64 * LANE_H;
    let width = LABEL_W + PLOT_W + 10;
    html! {
        svg.timeline xmlns="http://www.w3.org/2000/svg" role="img"
            aria-label={ "Timeline of the task's steps over " (human(end - start)) "; the audit trail below lists every transition" }
            viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height) {
            @for i in 0..=4i64 {
                @let tx = LABEL_W + PLOT_W * i / 4;
                line.tick x1=(tx) x2=(tx) y1="0" y2=(height - 16) {}
                text.axis x=(tx) y=(height - 3) text-anchor=(if i == 4 { "end" } else if i == 0 { "start" } else { "middle" }) {
                    "+" (human(Duration::milliseconds((span as i64) * i / 4)))
                }
            }
            @for (lane, (step, bars)) in lanes.iter().enumerate() {
                @let y = 4 + lane as i64 * LANE_H;
                text.lane x="4" y=(y + 16) { (fit(&step.name, 26)) }
                @for bar in bars {
                    @let x1 = x(bar.start);
                    @let w = (x(bar.end) - x1).max(2);
                    rect class={ "bar " (bar.kind.class()) } x=(x1) y=(y + 3) width=(w) height=(LANE_H - 8) {
                        title {
                            (step.name) ": " (bar.kind.describe())
                            @if let Some(a) = bar.attempt { " (attempt " (a) ")" }
                            " for " (human(bar.end - bar.start))
                            @if let Some(e) = &bar.error { " — " (e) }
                        }
                    }
                }
            }
        }
    }
}

/// The overview's chart: attempts completed and failed per minute over the
/// last hour, failures stacked on top in their own colour and pattern.
pub(super) fn activity_chart(minutes: &[ActivityMinute], now: DateTime<Utc>) -> Markup {
    const BAR: i64 = 11;
    const PLOT_H: i64 = 140;
    let by_minute: HashMap<i64, &ActivityMinute> = minutes
        .iter()
        .map(|m| (m.minute.timestamp() / 60, m))
        .collect();
    let this_minute = now.timestamp() / 60;
    let peak = minutes
        .iter()
        .map(|m| m.completed + m.failed)
        .max()
        .unwrap_or(0)
        .max(1);
    let width = 60 * BAR + 50;
    let height = PLOT_H + 24;
    let total: i64 = minutes.iter().map(|m| m.completed).sum();
    let failed: i64 = minutes.iter().map(|m| m.failed).sum();
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img"
            aria-label={ (total) " steps completed and " (failed) " attempts failed in the last hour" }
            viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height) {
            line.tick x1="40" x2=(width) y1=(PLOT_H) y2=(PLOT_H) {}
            text.axis x="36" y="10" text-anchor="end" { (peak) }
            text.axis x="36" y=(PLOT_H) text-anchor="end" { "0" }
            @for i in 0..60i64 {
                @let minute = this_minute - 59 + i;
                @if let Some(m) = by_minute.get(&minute) {
                    @let x = 40 + i * BAR;
                    @let done_h = m.completed * PLOT_H / peak;
                    @let fail_h = (m.failed * PLOT_H / peak).max(if m.failed > 0 { 2 } else { 0 });
                    g {
                        title { (m.minute.format("%H:%M")) ": " (m.completed) " completed, " (m.failed) " failed" }
                        rect.bar.done x=(x) y=(PLOT_H - done_h) width=(BAR - 2) height=(done_h) {}
                        @if m.failed > 0 {
                            rect.bar.failed x=(x) y=(PLOT_H - done_h - fail_h) width=(BAR - 2) height=(fail_h) {}
                        }
                    }
                }
            }
            text.axis x="40" y=(height - 4) { "60 min ago" }
            text.axis x=(width) y=(height - 4) text-anchor="end" { "now" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{StepId, TaskId};

    fn t(
        ms: i64,
        from: Option<&str>,
        to: &str,
        attempt: Option<u32>,
        error: Option<&str>,
    ) -> Transition {
        Transition {
            task_id: TaskId(1),
            step_id: Some(StepId(7)),
            from_state: from.map(str::to_owned),
            to_state: to.to_owned(),
            attempt,
            actor: None,
            error: error.map(str::to_owned),
            at: DateTime::from_timestamp_millis(ms).unwrap(),
            seq: ms,
        }
    }

    #[test]
    fn a_retried_step_has_waits_a_failed_and_a_completed_attempt() {
        let ts = [
            t(0, None, "pending", None, None),
            t(10, Some("pending"), "ready", None, None),
            t(30, Some("ready"), "in_progress", Some(1), None),
            t(80, Some("in_progress"), "ready", Some(1), Some("timeout")),
            t(200, Some("ready"), "in_progress", Some(2), None),
            t(260, Some("in_progress"), "complete", Some(2), None),
        ];
        let refs: Vec<&Transition> = ts.iter().collect();
        let kinds: Vec<(BarKind, i64, i64)> = bars(&refs, Utc::now())
            .iter()
            .map(|b| (b.kind, b.start.timestamp_millis(), b.end.timestamp_millis()))
            .collect();
        assert_eq!(
            kinds,
            [
                (BarKind::Wait, 10, 30),
                (BarKind::Failed, 30, 80),
                (BarKind::Wait, 80, 200),
                (BarKind::Done, 200, 260),
            ]
        );
    }

    #[test]
    fn an_attempt_in_flight_runs_until_now() {
        let ts = [t(10, Some("ready"), "in_progress", Some(1), None)];
        let refs: Vec<&Transition> = ts.iter().collect();
        let now = DateTime::from_timestamp_millis(500).unwrap();
        let b = bars(&refs, now);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].kind, BarKind::Running);
        assert_eq!(b[0].end, now);
    }

    #[test]
    fn graph_text_is_escaped_and_states_are_written_out() {
        let graph = Graph::new([("fetch", vec![]), ("load", vec!["fetch"])]).unwrap();
        let marks = HashMap::from([
            (
                "fetch",
                StepMark {
                    state: "complete",
                    items: None,
                },
            ),
            (
                "load",
                StepMark {
                    state: "in_progress",
                    items: None,
                },
            ),
        ]);
        let svg = step_graph(&graph, &marks).into_string();
        assert!(svg.contains("data-step=\"fetch\""), "{svg}");
        assert!(svg.contains("in progress"), "{svg}");
        assert!(svg.contains("class=\"node state-complete\""), "{svg}");
        assert_eq!(svg.matches("class=\"edge\"").count(), 1, "{svg}");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::milliseconds(840)), "840 ms");
        assert_eq!(human(Duration::milliseconds(12_400)), "12.4 s");
        assert_eq!(human(Duration::milliseconds(185_000)), "3 min 5 s");
    }
}
