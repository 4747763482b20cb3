//! The seeded workload: which events a population of sites and visitors
//! produces over a day.
//!
//! Projects get a Zipf share of the traffic and each project's pages a Zipf
//! share of its page views. Visitors come back in sessions (about 45 % of
//! them a single page view, the rest a few pages, a few minutes long) that
//! enter on a page with a referrer and carry the visitor's browser. Every
//! event belongs to a live session: 70 % page views, 15 % custom events with
//! properties, 10 % web vitals drawn around each page's own level, 5 %
//! errors with Chrome, Firefox or Safari stack shapes. Event times advance
//! evenly over the workload's span, and a share of events arrives late, with
//! a time up to an hour before the rest.
//!
//! The same seed and settings give the same events, so a load run and the
//! baselines' CSV (see [`crate::csv`]) describe the same traffic.

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sightline_model::{ClientEvent, EventKind, PropValue, VitalName};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Workload {
    pub seed: u64,
    /// Events in all.
    pub events: u64,
    /// Projects (sites), with a Zipf spread of traffic.
    pub projects: usize,
    /// Distinct pages per project, with a Zipf spread of page views.
    pub pages: usize,
    /// The last event's time, ms since the epoch; the first is `span_ms`
    /// earlier.
    pub end_ms: i64,
    pub span_ms: i64,
    /// Share of events that arrive late (1 to 60 minutes behind).
    pub late_share: f64,
}

impl Workload {
    /// A day of traffic ending at `end_ms`, over 20 projects of 500 pages.
    pub fn day(seed: u64, events: u64, end_ms: i64) -> Workload {
        Workload { seed, events, projects: 20, pages: 500, end_ms, span_ms: 86_400_000, late_share: 0.02 }
    }
}

/// The browsers visitors use, with their shares of visitors.
pub const USER_AGENTS: [(&str, u32); 6] = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        35,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        25,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        15,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        10,
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", 8),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        7,
    ),
];

/// How a browser writes a stack: V8's `    at f (url:line:col)` lines
/// under the message (Chrome, Edge), or `f@url:line:col` lines alone
/// (Firefox, Safari).
#[derive(Clone, Copy)]
enum StackShape {
    V8,
    AtSign,
}

fn stack_shape(agent: usize) -> StackShape {
    match agent {
        1 | 3 | 4 => StackShape::AtSign,
        _ => StackShape::V8,
    }
}

const REFERRERS: [&str; 7] = [
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://news.ycombinator.com/item?id=42",
    "https://t.co/x7Gq2",
    "https://github.com/sightline/sightline",
    "https://www.reddit.com/r/webdev/",
    "https://www.bing.com/search?q=analytics",
];

const EVENT_NAMES: [&str; 8] =
    ["add_to_cart", "search", "signup", "checkout", "share", "video_play", "download", "invite"];
const PLANS: [&str; 3] = ["free", "pro", "team"];

/// Error kinds a site throws, most common first: type, message, and the
/// functions of its stack, innermost first.
const ERRORS: [(&str, &str, [&str; 4]); 12] = [
    (
        "TypeError",
        "Cannot read properties of undefined (reading 'price')",
        ["renderCart", "updateTotals", "onClick", "dispatch"],
    ),
    (
        "TypeError",
        "x.map is not a function",
        ["ProductList", "renderWithHooks", "mountIndeterminateComponent", "beginWork"],
    ),
    ("ReferenceError", "gtag is not defined", ["trackConversion", "onSubmit", "handleSubmit", "callCallback"]),
    ("Error", "Request failed with status code 502", ["settle", "onloadend", "fetchCart", "refresh"]),
    ("ChunkLoadError", "Loading chunk 7 failed.", ["requireEnsure", "loadRoute", "navigate", "onPopState"]),
    ("TypeError", "Failed to fetch", ["apiGet", "loadRecommendations", "useEffect", "commitHookEffectListMount"]),
    ("SyntaxError", "Unexpected token '<', \"<!DOCTYPE \" is not valid JSON", ["parse", "readSession", "init", "main"]),
    ("RangeError", "Maximum call stack size exceeded", ["walk", "walk", "walk", "serializeTree"]),
    (
        "TypeError",
        "null is not an object (evaluating 'el.offsetTop')",
        ["scrollToAnchor", "onHashChange", "later", "flush"],
    ),
    (
        "Error",
        "ResizeObserver loop completed with undelivered notifications.",
        ["observe", "layout", "measure", "frame"],
    ),
    (
        "TypeError",
        "Cannot set properties of null (setting 'innerHTML')",
        ["showBanner", "consentLoaded", "onLoad", "run"],
    ),
    ("UnhandledRejection", "AbortError: The user aborted a request.", ["abortable", "search", "debounced", "timeout"]),
];

/// One event, with its project (an index) and its visitor's browser (an
/// index into [`USER_AGENTS`]).
#[derive(Debug, Clone)]
pub struct GeneratedEvent {
    pub project: usize,
    pub agent: usize,
    pub event: ClientEvent,
}

/// Draws indices with probability proportional to `1 / (i + 1)^s`.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (1..=n.max(1))
            .map(|k| {
                total += (k as f64).powf(-s);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn share(&self, i: usize) -> f64 {
        let before = if i == 0 { 0.0 } else { self.cumulative[i - 1] };
        (self.cumulative[i] - before) / self.cumulative.last().unwrap()
    }

    fn sample(&self, rng: &mut SmallRng) -> usize {
        let x = rng.random::<f64>() * self.cumulative.last().unwrap();
        self.cumulative.partition_point(|&c| c < x).min(self.cumulative.len() - 1)
    }
}

struct Session {
    id: u64,
    visitor: u64,
    agent: usize,
    page: usize,
    referrer: Option<&'static str>,
    pageviews_left: u32,
    entered: bool,
}

/// The workload's events in order; an iterator of exactly
/// `Workload::events` events.
pub struct Generator {
    workload: Workload,
    rng: SmallRng,
    project_weights: Zipf,
    pages: Zipf,
    event_names: Zipf,
    errors: Zipf,
    paths: Vec<String>,
    hosts: Vec<String>,
    /// Visitors each project draws from.
    visitors: Vec<u64>,
    sessions: Vec<Vec<Session>>,
    next_session: u64,
    emitted: u64,
}

impl Generator {
    pub fn new(workload: Workload) -> Generator {
        let mut rng = SmallRng::seed_from_u64(workload.seed);
        let projects = workload.projects.max(1);
        let project_weights = Zipf::new(projects, 1.1);
        let pages = Zipf::new(workload.pages.max(1), 1.0);
        let paths = (0..workload.pages.max(1)).map(page_path).collect();
        let hosts = (0..projects).map(|p| format!("site{p}.example")).collect();
        // A session's events come about 40 s apart: as many sessions are
        // open at once as that takes at the workload's event rate.
        let ms_per_event = workload.span_ms as f64 / workload.events.max(1) as f64;
        let open_sessions = (40_000.0 / ms_per_event).clamp(20.0, 200_000.0);
        // About 15 events per visitor over the span.
        let all_visitors = (workload.events as f64 / 15.0).max(100.0);
        let visitors: Vec<u64> =
            (0..projects).map(|p| (all_visitors * project_weights.share(p)).ceil().max(5.0) as u64).collect();
        let mut next_session = 0;
        let sessions = (0..projects)
            .map(|p| {
                let open = (open_sessions * project_weights.share(p)).ceil().max(2.0) as usize;
                (0..open).map(|_| new_session(&mut rng, &mut next_session, visitors[p], &pages)).collect()
            })
            .collect();
        Generator {
            workload,
            rng,
            project_weights,
            pages,
            event_names: Zipf::new(EVENT_NAMES.len(), 1.0),
            errors: Zipf::new(ERRORS.len(), 1.2),
            paths,
            hosts,
            visitors,
            sessions,
            next_session,
            emitted: 0,
        }
    }

    /// The share of all events that go to project `p`.
    pub fn project_share(&self, p: usize) -> f64 {
        self.project_weights.share(p)
    }
}

fn page_path(k: usize) -> String {
    match k {
        0 => "/".to_owned(),
        1 => "/pricing".to_owned(),
        2 => "/blog".to_owned(),
        3 => "/docs".to_owned(),
        _ => match k % 4 {
            0 => format!("/products/{k}"),
            1 => format!("/blog/post-{k}"),
            2 => format!("/docs/guide-{k}"),
            _ => format!("/category/{k}"),
        },
    }
}

fn agent_of(visitor: u64) -> usize {
    let total: u32 = USER_AGENTS.iter().map(|(_, share)| share).sum();
    // A fixed mix of the visitor id, so a visitor keeps one browser.
    let mut x = (visitor.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32 % total;
    for (i, (_, share)) in USER_AGENTS.iter().enumerate() {
        if x < *share {
            return i;
        }
        x -= share;
    }
    0
}

fn new_session(rng: &mut SmallRng, next_id: &mut u64, visitors: u64, pages: &Zipf) -> Session {
    let visitor = rng.random_range(0..visitors);
    // 45 % bounce; the rest see 2 and more pages, 5 on average.
    let pageviews_left = if rng.random_bool(0.45) {
        1
    } else {
        let mut n = 2;
        while n < 60 && rng.random_bool(0.75) {
            n += 1;
        }
        n
    };
    let referrer = if rng.random_bool(0.4) { None } else { Some(REFERRERS[rng.random_range(0..REFERRERS.len())]) };
    *next_id += 1;
    Session {
        id: *next_id,
        visitor,
        agent: agent_of(visitor),
        page: pages.sample(rng),
        referrer,
        pageviews_left,
        entered: false,
    }
}

impl Iterator for Generator {
    type Item = GeneratedEvent;

    fn next(&mut self) -> Option<GeneratedEvent> {
        if self.emitted >= self.workload.events {
            return None;
        }
        let w = &self.workload;
        let start = w.end_ms - w.span_ms;
        let mut ts = start + (w.span_ms as f64 * self.emitted as f64 / w.events.max(1) as f64) as i64;
        self.emitted += 1;
        if self.rng.random_bool(w.late_share) {
            ts -= self.rng.random_range(60_000..3_600_000);
        }
        let rng = &mut self.rng;
        let project = self.project_weights.sample(rng);
        let open = &mut self.sessions[project];
        let slot = rng.random_range(0..open.len());
        let roll = rng.random_range(0..100);
        let session = &mut open[slot];
        let kind = match roll {
            0..70 => {
                let referrer = if session.entered {
                    session.page = self.pages.sample(rng);
                    None
                } else {
                    session.entered = true;
                    session.referrer
                };
                session.pageviews_left -= 1;
                EventKind::Pageview { referrer: referrer.map(str::to_owned), title: None }
            }
            70..85 => {
                let name = EVENT_NAMES[self.event_names.sample(rng)];
                let mut props = BTreeMap::new();
                props.insert("plan".to_owned(), PropValue::Str(PLANS[rng.random_range(0..PLANS.len())].to_owned()));
                props.insert("seats".to_owned(), PropValue::Num(rng.random_range(1..20) as f64));
                if name == "search" {
                    props.insert("results".to_owned(), PropValue::Num(rng.random_range(0..50) as f64));
                }
                EventKind::Event { name: name.to_owned(), props }
            }
            85..95 => {
                let (name, value) = vital(rng, session.page, session.agent);
                EventKind::Vital { name, value }
            }
            _ => {
                let which = self.errors.sample(rng);
                let (error_type, message, functions) = ERRORS[which];
                let stack = error_stack(
                    stack_shape(session.agent),
                    &self.hosts[project],
                    which,
                    error_type,
                    message,
                    &functions,
                );
                EventKind::Error {
                    error_type: Some(error_type.to_owned()),
                    message: Some(message.to_owned()),
                    stack: Some(stack),
                    frames: Vec::new(),
                    fingerprint: None,
                    group: None,
                }
            }
        };
        let page = &self.paths[session.page];
        let event = ClientEvent {
            ts: Some(ts),
            anonymous_id: format!("v{project}-{}", session.visitor),
            session_id: Some(format!("s{}", session.id)),
            url: Some(format!("https://{}{page}", self.hosts[project])),
            path: page.clone(),
            release: Some("web@2026.11.3".to_owned()),
            kind,
        };
        let agent = session.agent;
        if session.pageviews_left == 0 {
            open[slot] = new_session(rng, &mut self.next_session, self.visitors[project], &self.pages);
        }
        Some(GeneratedEvent { project, agent, event })
    }
}

/// A web vital for a page and browser: each page has its own level (some
/// pages are slow), mobile browsers are slower, and values spread
/// log-normally around the level.
fn vital(rng: &mut SmallRng, page: usize, agent: usize) -> (VitalName, f64) {
    let page_factor = 0.6 + ((page.wrapping_mul(2_654_435_761) >> 7) % 100) as f64 / 60.0;
    let device_factor = if matches!(agent, 1 | 2) { 1.4 } else { 1.0 };
    let (name, median) = match rng.random_range(0..100) {
        0..25 => (VitalName::Lcp, 1_900.0),
        25..45 => (VitalName::Inp, 140.0),
        45..65 => (VitalName::Cls, 0.06),
        65..80 => (VitalName::Fcp, 1_200.0),
        80..95 => (VitalName::Ttfb, 450.0),
        _ => (VitalName::Fid, 40.0),
    };
    // Box-Muller: a standard normal from two uniforms.
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    let value = median * page_factor * device_factor * (0.5 * normal).exp();
    let value = if name == VitalName::Cls { (value * 1000.0).round() / 1000.0 } else { value.round() };
    (name, value)
}

/// A stack in the shape the browser prints, through a minified bundle.
fn error_stack(
    shape: StackShape,
    host: &str,
    which: usize,
    error_type: &str,
    message: &str,
    functions: &[&str; 4],
) -> String {
    let mut stack = match shape {
        StackShape::V8 => format!("{error_type}: {message}\n"),
        StackShape::AtSign => String::new(),
    };
    for (depth, function) in functions.iter().enumerate() {
        let file = if depth < 2 { "main.4f9c2a1b.js" } else { "vendor.81d3e0c7.js" };
        let line = 1 + (which * 7 + depth) % 3;
        let column = 1_000 + which * 997 + depth * 131;
        let url = format!("https://{host}/static/js/{file}");
        match shape {
            StackShape::V8 => stack.push_str(&format!("    at {function} ({url}:{line}:{column})\n")),
            StackShape::AtSign => stack.push_str(&format!("{function}@{url}:{line}:{column}\n")),
        }
    }
    stack.pop();
    stack
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(events: u64) -> Vec<GeneratedEvent> {
        Generator::new(Workload::day(7, events, 1_800_000_000_000)).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let a = day(5_000);
        let b = day(5_000);
        assert_eq!(a.len(), 5_000);
        assert!(a.iter().zip(&b).all(|(a, b)| a.event == b.event && a.project == b.project && a.agent == b.agent));
        let other: Vec<_> = Generator::new(Workload::day(8, 5_000, 1_800_000_000_000)).collect();
        assert!(a.iter().zip(&other).any(|(a, b)| a.event != b.event));
    }

    #[test]
    fn the_mix_projects_and_pages_are_spread_as_documented() {
        let events = day(200_000);
        let share = |f: &dyn Fn(&GeneratedEvent) -> bool| events.iter().filter(|e| f(e)).count() as f64 / 200_000.0;
        let pageviews = share(&|e| matches!(e.event.kind, EventKind::Pageview { .. }));
        let custom = share(&|e| matches!(e.event.kind, EventKind::Event { .. }));
        let vitals = share(&|e| matches!(e.event.kind, EventKind::Vital { .. }));
        let errors = share(&|e| matches!(e.event.kind, EventKind::Error { .. }));
        assert!((pageviews - 0.70).abs() < 0.01, "{pageviews}");
        assert!((custom - 0.15).abs() < 0.01, "{custom}");
        assert!((vitals - 0.10).abs() < 0.01, "{vitals}");
        assert!((errors - 0.05).abs() < 0.01, "{errors}");
        // Zipf over 20 projects with s = 1.1: the first has about 31 %.
        let first = share(&|e| e.project == 0);
        let last = share(&|e| e.project == 19);
        assert!((0.28..0.34).contains(&first) && last < 0.03, "{first} {last}");
        let home = share(&|e| e.event.url.as_deref().is_some_and(|u| u.ends_with(".example/")));
        assert!(home > 0.08, "the first page is the most visited: {home}");
    }

    #[test]
    fn sessions_have_realistic_lengths_and_some_events_are_late() {
        let events = day(300_000);
        let mut sessions: std::collections::HashMap<&str, (i64, i64, u32)> = Default::default();
        let mut late = 0;
        let mut previous = i64::MIN;
        for e in &events {
            let ts = e.event.ts.unwrap();
            if ts + 60_000 <= previous {
                late += 1;
            }
            previous = previous.max(ts);
            if matches!(e.event.kind, EventKind::Pageview { .. }) {
                let s = sessions.entry(e.event.session_id.as_deref().unwrap()).or_insert((ts, ts, 0));
                s.0 = s.0.min(ts);
                s.1 = s.1.max(ts);
                s.2 += 1;
            }
        }
        let n = sessions.len() as f64;
        let bounces = sessions.values().filter(|s| s.2 == 1).count() as f64 / n;
        let pages = sessions.values().map(|s| s.2 as f64).sum::<f64>() / n;
        let multi: Vec<_> = sessions.values().filter(|s| s.2 > 1).map(|s| (s.1 - s.0) as f64).collect();
        let minutes = multi.iter().sum::<f64>() / multi.len() as f64 / 60_000.0;
        assert!((0.40..0.55).contains(&bounces), "bounce rate {bounces}");
        assert!((2.0..4.5).contains(&pages), "pages per session {pages}");
        assert!((1.0..10.0).contains(&minutes), "minutes per multi-page session {minutes}");
        let late = late as f64 / events.len() as f64;
        assert!((0.01..0.03).contains(&late), "late share {late}");
    }

    #[test]
    fn error_stacks_have_each_browsers_shape() {
        let (t, m, f) = ERRORS[0];
        let v8 = error_stack(StackShape::V8, "site0.example", 0, t, m, &f);
        assert!(
            v8.starts_with("TypeError: Cannot read")
                && v8.contains("\n    at renderCart (https://site0.example/static/js/main.4f9c2a1b.js:1:1000)")
        );
        let gecko = error_stack(StackShape::AtSign, "h", 0, t, m, &f);
        assert!(gecko.starts_with("renderCart@https://h/static/js/main.4f9c2a1b.js:1:1000\n"));
        assert_eq!(gecko.lines().count(), 4);
    }
}
