//! The SDKs end to end against the real server. The browser SDK: its
//! script-tag build, and its ESM build bundled into an app, on a page of
//! another origin, in Debian's Chromium driven by playwright-core. The Node
//! SDK: a node:http service whose requests, thrown error and crash must
//! reach the server. The query API must then show what they did.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::{Value, json};

mod common;

use common::*;

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sdk/browser")
}

/// How the page loads the SDK.
#[derive(Clone, Copy, Debug)]
enum Build {
    /// `dist/sightline.iife.js` in a script tag.
    ScriptTag,
    /// An app importing the ESM build, bundled by esbuild.
    Esm,
    /// A React app using @sightline/react, bundled by esbuild.
    React,
}

/// The script the page loads for `build`.
fn page_script(build: Build) -> String {
    let built = "the SDK is built: run `npm ci --prefix sdk && npm run build --prefix sdk` (make test does)";
    match build {
        Build::ScriptTag => std::fs::read_to_string(sdk_dir().join("dist/sightline.iife.js")).expect(built),
        Build::Esm | Build::React => {
            let out = tempfile::tempdir().unwrap();
            let bundle = out.path().join("app.js");
            let app = match build {
                Build::React => sdk_dir().join("../react/e2e/app.mjs"),
                _ => sdk_dir().join("e2e/app.mjs"),
            };
            let run = Command::new(sdk_dir().join("../node_modules/.bin/esbuild"))
                .arg(app)
                .args(["--bundle", "--format=esm", "--minify", "--define:process.env.NODE_ENV=\"production\""])
                .arg(format!("--outfile={}", bundle.display()))
                .output()
                .expect(built);
            assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
            std::fs::read_to_string(bundle).unwrap()
        }
    }
}

/// Serves the page and the SDK on a port of its own (another origin than
/// Sightline's, so CORS is exercised); returns its origin.
async fn serve_page(build: Build, endpoint: &str, key: &str) -> String {
    let script = page_script(build);
    let config = format!(r#"{{ "key": "{key}", "endpoint": "{endpoint}", "release": "web-1", "flushDelayMs": 50 }}"#);
    let head = match build {
        Build::ScriptTag => format!(r#"<script src="/sdk.js"></script><script>Sightline.init({config});</script>"#),
        Build::Esm | Build::React => {
            format!(
                r#"<script>window.SIGHTLINE_CONFIG = {config};</script><script type="module" src="/sdk.js"></script>"#
            )
        }
    };
    let page = format!(
        r#"<!doctype html><html><head><title>Shop</title>{head}</head><body><div id="root"><p>A shop.</p></div></body></html>"#
    );
    let app = Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/sdk.js",
            get(move || async move { ([(header::CONTENT_TYPE, "text/javascript")], script).into_response() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

async fn get_json(server: &Server, path: &str) -> Value {
    let r = server.http.get(server.url(path)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// A page with `build` navigates (SPA), tracks, throws, rejects, is left;
/// the views must show all of it.
async fn a_page_reports_to_the_server(build: Build) {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: run ./scripts/chromium.sh (make test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    let origin = serve_page(build, &server.base, &key).await;
    // Only the page's origin may send: the SDK's requests must pass CORS.
    let r = server
        .http
        .patch(server.url(&format!("/api/v1/projects/{project}")))
        .bearer_auth(ADMIN)
        .json(&json!({ "allowed_origins": [origin] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let page_url = format!("{origin}/");
    let driver = match build {
        Build::React => sdk_dir().join("../react/e2e/chromium.mjs"),
        _ => sdk_dir().join("e2e/chromium.mjs"),
    };
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node").arg(driver).arg(page_url).output().expect("node runs")
    })
    .await
    .unwrap();
    assert!(run.status.success(), "{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));

    // The React app throws while rendering; the others throw and reject.
    let expected_errors: &[&str] = match build {
        Build::React => &["TypeError"],
        _ => &["RangeError", "TypeError"],
    };
    let now = now_ms();
    let range = format!("from={}&to={}", now - 3_600_000, now + 60_000);
    let vital = |name: &str| format!("/api/v1/projects/{project}/vitals?name={name}&{range}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (pageviews, events, errors, fcp, ttfb) = loop {
        let pageviews =
            get_json(&server, &format!("/api/v1/projects/{project}/breakdown?dimension=page&{range}")).await;
        let events = get_json(&server, &format!("/api/v1/projects/{project}/events?{range}")).await;
        let errors = get_json(&server, &format!("/api/v1/projects/{project}/errors?{range}")).await;
        let (fcp, ttfb) = (get_json(&server, &vital("FCP")).await, get_json(&server, &vital("TTFB")).await);
        let done = errors["groups"].as_array().is_some_and(|g| g.len() == expected_errors.len())
            && pageviews.to_string().contains("/cart")
            && events.to_string().contains("signup")
            && fcp["count"].as_i64().unwrap_or(0) > 0
            && ttfb["count"].as_i64().unwrap_or(0) > 0;
        if done || Instant::now() > deadline {
            break (pageviews, events, errors, fcp, ttfb);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let paths: Vec<(String, i64)> = pageviews["rows"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|r| (r["value"].as_str().unwrap_or_default().to_owned(), r["pageviews"].as_i64().unwrap_or_default()))
        .collect();
    assert!(paths.contains(&("/".into(), 1)) && paths.contains(&("/cart".into(), 1)), "{build:?}: {pageviews}");
    assert!(events.to_string().contains("signup"), "{build:?}: {events}");
    assert!(fcp["count"].as_i64().unwrap() >= 1 && ttfb["count"].as_i64().unwrap() >= 1, "{fcp} {ttfb}");
    let groups = errors["groups"].as_array().unwrap();
    let mut types: Vec<&str> = groups.iter().map(|g| g["error_type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, expected_errors, "{build:?}: {errors}");
    // The thrown error arrives with its stack, served as frames.
    let thrown = groups.iter().find(|g| g["error_type"] == "TypeError").unwrap();
    let fingerprint = thrown["fingerprint"].as_str().unwrap();
    let group = get_json(&server, &format!("/api/v1/projects/{project}/errors/{fingerprint}?{range}")).await;
    let frames = group["latest_event"]["frames"].as_array().cloned().unwrap_or_default();
    assert!(!frames.is_empty(), "{build:?}: the error has frames: {group}");
    let summary = get_json(&server, &format!("/api/v1/projects/{project}/sessions/summary?{range}")).await;
    assert_eq!(summary["sessions"], 1, "one visitor, one session: {summary}");
}

#[tokio::test]
async fn a_page_with_the_script_tag_build_reports_views_navigation_events_errors_and_vitals() {
    a_page_reports_to_the_server(Build::ScriptTag).await;
}

#[tokio::test]
async fn an_app_with_the_esm_build_reports_views_navigation_events_errors_and_vitals() {
    a_page_reports_to_the_server(Build::Esm).await;
}

#[tokio::test]
async fn a_react_app_reports_views_navigation_events_errors_its_boundary_caught_and_vitals() {
    a_page_reports_to_the_server(Build::React).await;
}

#[tokio::test]
async fn a_node_service_reports_its_requests_a_thrown_error_and_its_crash() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("api").await;
    let endpoint = server.base.clone();
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(sdk_dir().join("../node/e2e/service.mjs"))
            .args([&endpoint, &key])
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "an uncaught exception still ends the process: {stderr}");
    assert!(stderr.contains("the worker crashed"), "and is shown as Node shows it: {stderr}");

    let now = now_ms();
    let range = format!("from={}&to={}", now - 3_600_000, now + 60_000);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (events, errors) = loop {
        let events = get_json(&server, &format!("/api/v1/projects/{project}/events?{range}")).await;
        let errors = get_json(&server, &format!("/api/v1/projects/{project}/errors?{range}")).await;
        // Every request and the crash come in their own batches: wait for all.
        let requests = events["names"].as_array().and_then(|n| n.iter().find(|n| n["name"] == "http_request"));
        let all_requests = requests.is_some_and(|r| r["count"] == 4);
        let deploy = events.to_string().contains("deploy");
        let both_errors = errors["groups"].as_array().is_some_and(|g| g.len() == 2);
        if (all_requests && deploy && both_errors) || Instant::now() > deadline {
            break (events, errors);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let count = |name: &str| {
        events["names"].as_array().unwrap().iter().find(|n| n["name"] == name).map(|n| n["count"].as_i64().unwrap())
    };
    assert_eq!((count("http_request"), count("deploy")), (Some(4), Some(1)), "{events}");
    let routes = get_json(&server, &format!("/api/v1/projects/{project}/events?name=http_request&{range}")).await;
    let route_values: Vec<&str> =
        routes["breakdown"]["route"].as_array().unwrap().iter().map(|v| v["value"].as_str().unwrap()).collect();
    assert!(route_values.contains(&"/orders/:id"), "ids are folded: {routes}");
    let mut messages: Vec<&str> =
        errors["groups"].as_array().unwrap().iter().map(|g| g["message"].as_str().unwrap()).collect();
    messages.sort();
    assert_eq!(messages, ["the order store is down", "the worker crashed"], "{errors}");
}
