//! The web UI's pages, as maud templates (checked at compile time; every interpolation is
//! HTML-escaped). Handlers in `ui` gather the data into the view structs here.

use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use vcds_monitor::history::Sample;
use vcds_placement::{PNodeState, Resources};

use crate::events::Event;
use vcds_model::{Lifecycle, Phase};

use super::Action;

/// The caller as the page header shows them.
pub struct Viewer<'a> {
    pub account: &'a str,
    pub admin: bool,
}

/// A host's Ganglia figures, or why there are none.
pub enum Load {
    Known {
        load_one: Option<f64>,
        cpus: Option<f64>,
        /// Why the host counts as down (its figures are the last known).
        stale: Option<String>,
        series: Vec<Sample>,
    },
    NoData(&'static str),
}

pub struct PNodeRow {
    pub name: String,
    pub state: PNodeState,
    pub gw_capable: bool,
    pub capacity: Resources,
    /// What reservations in force now take of it.
    pub booked: Resources,
    pub load: Load,
    /// (System id, node name) of the virtual nodes it hosts now.
    pub vnodes: Vec<(String, String)>,
    /// Systems whose GW-node it is now.
    pub gw_for: Vec<String>,
    /// Reservations that use it later.
    pub later: usize,
}

pub struct PNodePage {
    pub rows: Vec<PNodeRow>,
    pub page: usize,
    pub pages: usize,
    pub total: usize,
}

pub struct ClusterRow {
    pub id: String,
    pub name: Option<String>,
    pub owner: String,
    pub lifecycle: Lifecycle,
    pub phase: Option<Phase>,
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// `active` or `released`, with a reservation.
    pub reservation: Option<&'static str>,
    /// E.g. `VXLAN 4097`.
    pub network: Option<String>,
    pub subnet: Option<String>,
    /// GW-node P-node and address.
    pub gw: Option<(String, String)>,
    pub nodes: usize,
}

pub struct NodeRow {
    pub name: String,
    pub appliance: String,
    pub pnode: String,
    pub ip: String,
    pub resources: Resources,
    pub state: &'static str,
    pub message: Option<String>,
    /// The node's state in the cluster's batch scheduler, as the frontend last reported.
    pub scheduler_state: Option<String>,
    pub load: Load,
}

/// What the cluster's batch scheduler sees, as its frontend last reported.
pub struct SchedulerLine {
    pub name: String,
    pub running: u32,
    pub pending: u32,
    pub at: DateTime<Utc>,
}

pub struct ClusterPage {
    pub row: ClusterRow,
    pub gw_mac: Option<String>,
    pub termination: Option<DateTime<Utc>>,
    pub failure: Option<String>,
    pub nodes: Vec<NodeRow>,
    pub scheduler: Option<SchedulerLine>,
    pub events: Vec<Event>,
    pub actions: Vec<Action>,
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn cluster_href(id: &str) -> String {
    format!("/ui/clusters/{id}")
}

fn resources(r: &Resources) -> String {
    format!(
        "{} CPU, {} GiB RAM, {} GiB disk",
        r.cpu,
        r.memory_mib / 1024,
        r.disk_gib
    )
}

fn pnode_state(s: PNodeState) -> &'static str {
    match s {
        PNodeState::Up => "up",
        PNodeState::Down => "down",
        PNodeState::Maintenance => "maintenance",
    }
}

/// The page frame: header with the caller, the content, the live-update script.
pub fn layout(title: &str, viewer: Option<&Viewer<'_>>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · vcds" }
                link rel="stylesheet" href="/ui/static/ui.css";
                script src="/ui/static/ui.js" defer {}
            }
            body {
                header {
                    a.brand href="/ui/" { "vcds" }
                    span.sub { "Virtual Cluster Deployment Service" }
                    @if let Some(v) = viewer {
                        span.who {
                            "signed in as " strong { (v.account) }
                            @if v.admin { " " span.badge { "admin" } }
                        }
                    }
                }
                main { (content) }
            }
        }
    }
}

/// A load sparkline: the recorded `load_one` samples as an inline SVG polyline.
pub fn sparkline(series: &[Sample]) -> Markup {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    if series.len() < 2 {
        return html! { span.nodata { "no history yet" } };
    }
    let (t0, t1) = (series[0].t, series[series.len() - 1].t);
    let span = (t1.saturating_sub(t0)).max(1) as f64;
    let top = series.iter().map(|s| s.v).fold(0.0_f64, f64::max).max(1.0);
    let points: Vec<String> = series
        .iter()
        .map(|s| {
            let x = (s.t.saturating_sub(t0)) as f64 / span * W;
            let y = H - (s.v.max(0.0) / top * (H - 2.0)) - 1.0;
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let last = series[series.len() - 1].v;
    html! {
        svg.spark width="120" height="24" viewBox="0 0 120 24" role="img"
            aria-label=(format!("load over {} samples, last {last:.2}, peak scale {top:.2}", series.len())) {
            polyline points=(points.join(" ")) fill="none" stroke="currentColor" stroke-width="1.5" {}
        }
    }
}

fn load_cell(load: &Load) -> Markup {
    match load {
        Load::NoData(why) => html! { td.load { span.nodata title=(why) { "no data" } } td {} },
        Load::Known {
            load_one,
            cpus,
            stale,
            series,
        } => html! {
            td.load {
                @match load_one {
                    Some(l) => { (format!("{l:.2}")) }
                    None => { span.nodata { "no load_one" } }
                }
                @if let Some(c) = cpus { span.dim { " / " (c) " CPU" } }
                @if let Some(why) = stale { br; span.stale title=(why) { "stale: " (why) } }
            }
            td { (sparkline(series)) }
        },
    }
}

fn phase_badge(lifecycle: Lifecycle, phase: Option<Phase>) -> Markup {
    let phase = phase.map_or("none", Phase::as_str);
    html! {
        span class={ "phase phase-" (phase) } data-phase=(phase) { (phase) }
        span.dim { " (" (lifecycle.as_str()) ")" }
    }
}

fn window_cell(row: &ClusterRow) -> Markup {
    html! {
        @match row.window {
            Some((start, end)) => {
                (time(start)) " – " (time(end))
                @if let Some(state) = row.reservation { br; span.dim { "reservation " (state) } }
            }
            None => { span.dim { "no reservation" } }
        }
    }
}

pub fn clusters_table(rows: &[ClusterRow], total: usize, admin: bool) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { "No virtual clusters." }
        } @else {
            table.clusters {
                thead { tr {
                    th { "cluster" } th { "owner" } th { "phase" } th { "reservation window" }
                    th { "network id" } th { "subnet" } th { "GW-node" } th { "nodes" }
                } }
                tbody {
                    @for r in rows {
                        tr data-cluster=(r.id) {
                            td { a href=(cluster_href(&r.id)) title=(r.id) {
                                (r.name.as_deref().unwrap_or("(no descriptor)")) " " span.dim { (short(&r.id)) }
                            } }
                            td { (r.owner) }
                            td { (phase_badge(r.lifecycle, r.phase)) }
                            td { (window_cell(r)) }
                            td { (r.network.as_deref().unwrap_or("–")) }
                            td { (r.subnet.as_deref().unwrap_or("–")) }
                            td { @match &r.gw { Some((p, ip)) => { (p) br; span.dim { (ip) } } None => { "–" } } }
                            td { (r.nodes) }
                        }
                    }
                }
            }
            @if total > rows.len() {
                p.dim { "Showing the newest " (rows.len()) " of " (total) " virtual clusters." }
            }
            @if !admin { p.dim { "You see the virtual clusters you own." } }
        }
    }
}

pub fn pnodes_table(p: &PNodePage) -> Markup {
    html! {
        table.pnodes {
            thead { tr {
                th { "P-node" } th { "state" } th { "capacity" } th { "booked now" }
                th { "load" } th { "load history" } th { "virtual nodes" }
            } }
            tbody {
                @for r in &p.rows {
                    tr data-pnode=(r.name) {
                        td { strong { (r.name) } @if r.gw_capable { " " span.badge title="can host GW-nodes" { "GW" } } }
                        td class={ "pstate-" (pnode_state(r.state)) } { (pnode_state(r.state)) }
                        td { (resources(&r.capacity)) }
                        td { (r.booked.cpu) " CPU, " (r.booked.memory_mib / 1024) " GiB" }
                        (load_cell(&r.load))
                        td.vnodes {
                            @for (id, node) in &r.vnodes {
                                a href=(cluster_href(id)) title=(id) { (node) "@" (short(id)) } " "
                            }
                            @for id in &r.gw_for {
                                a.gw href=(cluster_href(id)) title=(id) { "GW-node@" (short(id)) } " "
                            }
                            @if r.vnodes.is_empty() && r.gw_for.is_empty() { span.dim { "none" } }
                            @if r.later > 0 { br; span.dim { (r.later) " later reservation(s)" } }
                        }
                    }
                }
            }
        }
        @if p.pages > 1 {
            nav.pager {
                "P-nodes page " (p.page + 1) " of " (p.pages) " (" (p.total) " P-nodes, busiest first) "
                @if p.page > 0 { a href=(format!("/ui/?page={}", p.page - 1)) { "← previous" } " " }
                @if p.page + 1 < p.pages { a href=(format!("/ui/?page={}", p.page + 1)) { "next →" } }
            }
        }
    }
}

pub fn dashboard(
    viewer: &Viewer<'_>,
    pnodes: Option<&PNodePage>,
    clusters: &[ClusterRow],
    total: usize,
) -> Markup {
    layout(
        "Dashboard",
        Some(viewer),
        html! {
            section {
                h2 { "Virtual clusters" }
                div #live-clusters data-live="" { (clusters_table(clusters, total, viewer.admin)) }
            }
            @if let Some(p) = pnodes {
                section {
                    h2 { "P-nodes" }
                    div #live-pnodes data-live="" { (pnodes_table(p)) }
                }
            }
        },
    )
}

fn action_button(id: &str, action: Action) -> Markup {
    html! {
        form.action method="get" action=(format!("/ui/clusters/{id}/{}", action.path())) {
            @if action == Action::Extend {
                label { "by " input type="number" name="hours" min="1" value="24" required; " hours" }
                " "
            }
            button type="submit" class={ "btn btn-" (action.path()) } { (action.label()) }
        }
    }
}

fn cluster_status(c: &ClusterPage) -> Markup {
    let r = &c.row;
    html! {
        dl.facts {
            dt { "phase" } dd #phase { (phase_badge(r.lifecycle, r.phase)) }
            @if let Some(why) = &c.failure { dt { "failure" } dd.stale { (why) } }
            dt { "owner" } dd { (r.owner) }
            dt { "reservation window" } dd { (window_cell(r)) }
            dt { "termination time" } dd { @match c.termination { Some(t) => { (time(t)) } None => { "none (lives until destroyed)" } } }
            dt { "network" } dd {
                @match &r.network { Some(n) => { (n) } None => { "–" } }
                @if let Some(s) = &r.subnet { ", subnet " (s) }
            }
            dt { "GW-node" } dd {
                @match &r.gw {
                    Some((p, ip)) => { (p) ", " (ip) @if let Some(mac) = &c.gw_mac { span.dim { " (" (mac) ")" } } }
                    None => { "–" }
                }
            }
        }
        h2 { "Nodes" }
        @if c.nodes.is_empty() {
            p.empty { "No nodes are placed yet (the descriptor is not initialized)." }
        } @else {
            @if let Some(s) = &c.scheduler {
                p.scheduler { "Scheduler " (s.name) ": " (s.running) " running, " (s.pending)
                    " pending " span.dim { "(reported " (time(s.at)) ")" } }
            }
            table.nodes {
                thead { tr {
                    th { "node" } th { "appliance" } th { "P-node" } th { "address" } th { "size" }
                    th { "install" } th { "scheduler" } th { "load" } th { "load history" }
                } }
                tbody {
                    @for n in &c.nodes {
                        tr data-node=(n.name) {
                            td { (n.name) } td { (n.appliance) } td { (n.pnode) } td { (n.ip) }
                            td { (resources(&n.resources)) }
                            td { span class={ "install install-" (n.state) } { (n.state) }
                                 @if let Some(m) = &n.message { br; span.dim { (m) } } }
                            td { (n.scheduler_state.as_deref().unwrap_or("–")) }
                            (load_cell(&n.load))
                        }
                    }
                }
            }
        }
        h2 { "Events" }
        @if c.events.is_empty() {
            p.empty { "No events since the service started." }
        } @else {
            ol.events {
                @for e in &c.events { li { time datetime=(e.at.to_rfc3339()) { (time(e.at)) } " " (e.what) } }
            }
        }
    }
}

pub fn cluster(viewer: &Viewer<'_>, c: &ClusterPage) -> Markup {
    let r = &c.row;
    layout(
        &format!("Cluster {}", short(&r.id)),
        Some(viewer),
        html! {
            p.crumbs { a href="/ui/" { "← dashboard" } }
            h1 { "Virtual cluster " (r.name.as_deref().unwrap_or("")) " " code { (r.id) } }
            div #live-status data-live="" { (cluster_status(c)) }
            section.actions {
                h2 { "Actions" }
                @if c.actions.is_empty() { p.dim { "No action applies in this phase." } }
                @for a in &c.actions { (action_button(&r.id, *a)) }
                p.dim { "Every action asks for confirmation first." }
            }
        },
    )
}

/// What an action confirmation page shows.
pub struct Confirm<'a> {
    pub action: Action,
    pub row: &'a ClusterRow,
    pub csrf: &'a str,
    /// Extend: the hours asked for and the new end they give.
    pub extend: Option<(u32, DateTime<Utc>)>,
}

pub fn confirm(viewer: &Viewer<'_>, c: &Confirm<'_>) -> Markup {
    let r = c.row;
    layout(
        &format!("{} {}?", c.action.label(), short(&r.id)),
        Some(viewer),
        html! {
            h1 { (c.action.label()) " virtual cluster " (r.name.as_deref().unwrap_or("")) " " code { (r.id) } "?" }
            p { "Owner " strong { (r.owner) } ", now " (phase_badge(r.lifecycle, r.phase)) "." }
            p.explain { (c.action.explain()) }
            @if let Some((hours, end)) = c.extend {
                p { "New end: " strong { (time(end)) } " (" (hours) " hours later than now planned)." }
            }
            form.confirm method="post" action=(format!("/ui/clusters/{}/{}", r.id, c.action.path())) {
                input type="hidden" name="csrf" value=(c.csrf);
                input type="hidden" name="confirm" value="yes";
                @if let Some((hours, _)) = c.extend { input type="hidden" name="hours" value=(hours); }
                button #confirm type="submit" class={ "btn btn-" (c.action.path()) } { "Yes, " (c.action.label().to_lowercase()) }
                " "
                a.cancel href=(cluster_href(&r.id)) { "Cancel" }
            }
        },
    )
}

pub fn error(status: u16, title: &str, message: &str) -> Markup {
    layout(
        title,
        None,
        html! {
            h1 { (title) }
            p.error data-status=(status) { (message) }
            p { "Nothing was changed." }
            p { a href="/ui/" { "← dashboard" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_samples_into_the_box() {
        let samples = [
            Sample { t: 100, v: 0.0 },
            Sample { t: 110, v: 2.0 },
            Sample { t: 120, v: 1.0 },
        ];
        let svg = sparkline(&samples).into_string();
        assert!(
            svg.contains("points=\"0.0,23.0 60.0,1.0 120.0,12.0\""),
            "{svg}"
        );
        assert!(sparkline(&samples[..1])
            .into_string()
            .contains("no history"));
    }

    #[test]
    fn text_is_escaped() {
        let page = error(400, "<b>", "\"><script>alert(1)</script>").into_string();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;"), "{page}");
    }
}
