//! `sightline loadgen` against the real server: over HTTP, and straight onto
//! the JetStream stream of a server in NATS mode. The views must hold
//! exactly the workload's page views and errors, and its visitors within
//! the visitor sketch's error.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ADMIN, Mode, NATS_URL, Server, nats_is_up, now_ms};
use serde_json::Value;
use sightline_loadgen::{Generator, Workload};
use sightline_model::EventKind;

const EVENTS: u64 = 20_000;
const PROJECTS: usize = 3;

/// Page views, distinct visitors and errors per workload project.
fn expected(end_ms: i64) -> Vec<(i64, i64, i64)> {
    let workload = Workload { projects: PROJECTS, ..Workload::day(11, EVENTS, end_ms) };
    let mut pageviews = [0i64; PROJECTS];
    let mut visitors: Vec<HashSet<String>> = vec![HashSet::new(); PROJECTS];
    let mut errors = [0i64; PROJECTS];
    for generated in Generator::new(workload) {
        match generated.event.kind {
            EventKind::Pageview { .. } => {
                pageviews[generated.project] += 1;
                visitors[generated.project].insert(generated.event.anonymous_id);
            }
            EventKind::Error { .. } => errors[generated.project] += 1,
            _ => {}
        }
    }
    (0..PROJECTS).map(|p| (pageviews[p], visitors[p].len() as i64, errors[p])).collect()
}

async fn get(server: &Server, path: &str) -> Value {
    server.http.get(server.url(path)).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap()
}

/// Runs the load generator against `server`; the server's project ids.
fn loadgen(server: &Server, end_ms: i64, nats: Option<&str>) -> Vec<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sightline"));
    cmd.args(["loadgen", "--seed", "11", "--events", &EVENTS.to_string(), "--projects", &PROJECTS.to_string()]).args([
        "--end-ms",
        &end_ms.to_string(),
        "--server",
        &server.base,
        "--admin-token",
        ADMIN,
    ]);
    if let Some(stream) = nats {
        cmd.args(["--nats", NATS_URL, "--nats-stream", stream]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sent"]["events_accepted"], EVENTS, "{report}");
    assert_eq!(report["sent"]["batches_lost"], 0, "{report}");
    report["projects"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect()
}

async fn the_views_hold_the_workload(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let stream = format!("LOADGEN_{}_{}", std::process::id(), now_ms());
    let server = Server::start(mode, dir.path(), &stream).await;
    let end_ms = now_ms();
    let projects = loadgen(&server, end_ms, matches!(mode, Mode::Nats).then_some(stream.as_str()));
    let range = format!("from={}&to={}", end_ms - 90_000_000, end_ms + 60_000);
    for (id, (pageviews, visitors, errors)) in projects.iter().zip(expected(end_ms)) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let total = loop {
            let answer = get(&server, &format!("/api/v1/projects/{id}/pageviews?interval=day&{range}")).await;
            let total = (answer["total"]["pageviews"].as_i64().unwrap(), answer["total"]["visitors"].as_i64().unwrap());
            // Each read model takes a tick under its own lock: the error
            // counts may land a moment after the page views.
            let groups = get(&server, &format!("/api/v1/projects/{id}/errors?{range}")).await;
            let counted: i64 = groups["groups"].as_array().unwrap().iter().map(|g| g["count"].as_i64().unwrap()).sum();
            if (total.0 == pageviews && counted == errors) || Instant::now() > deadline {
                break total;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(total.0, pageviews, "{mode:?}: page views of {id}");
        // Visitors are a sketch's count: the range's two days merge into
        // registers past 128 visitors, within their 1.6 % standard error
        // (three of them here).
        let error = (total.1 - visitors).abs() as f64 / visitors as f64;
        assert!(visitors > 128 && error < 0.05, "{mode:?}: {} visitors of {id}, {visitors} distinct", total.1);
        let groups = get(&server, &format!("/api/v1/projects/{id}/errors?{range}")).await;
        let counted: i64 = groups["groups"].as_array().unwrap().iter().map(|g| g["count"].as_i64().unwrap()).sum();
        assert_eq!(counted, errors, "{mode:?}: errors of {id}");
        let grouped: HashMap<&str, i64> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g["error_type"].as_str().unwrap_or(""), g["count"].as_i64().unwrap()))
            .collect();
        assert!(grouped.contains_key("TypeError"), "{mode:?}: errors are grouped by their stacks: {groups}");
    }
    server.stop();
}

#[tokio::test]
async fn loadgen_over_http_is_held_by_the_views() {
    the_views_hold_the_workload(Mode::Embedded).await;
}

#[tokio::test]
async fn loadgen_straight_onto_the_stream_is_held_by_the_views() {
    nats_is_up();
    the_views_hold_the_workload(Mode::Nats).await;
}

#[test]
fn loadgen_writes_the_same_events_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.csv");
    let end_ms = 1_795_000_000_000i64;
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["loadgen", "--seed", "11", "--events", &EVENTS.to_string(), "--projects", &PROJECTS.to_string()])
        .args(["--end-ms", &end_ms.to_string(), "--csv"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&path).unwrap();
    // Page view rows are one line each (only error stacks span lines).
    let mut pageviews = vec![0i64; PROJECTS];
    for line in text.lines().filter(|l| l.split(',').nth(2) == Some("pageview")) {
        let project: usize = line.strip_prefix("proj_").unwrap().split(',').next().unwrap().parse().unwrap();
        pageviews[project] += 1;
    }
    let expected: Vec<i64> = expected(end_ms).iter().map(|e| e.0).collect();
    assert_eq!(pageviews, expected);
}
