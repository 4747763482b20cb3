//! The browser SDK end to end: its script-tag build on a page of another
//! origin, in Debian's Chromium driven by playwright-core, sending to the
//! real server; the views must show what the page did.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::{Value, json};

mod common;

use common::*;

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sdk/browser")
}

/// Serves the page and the script-tag build on a port of its own (another
/// origin than Sightline's, so CORS is exercised); returns its origin.
async fn serve_page(endpoint: String, key: String) -> String {
    let script = std::fs::read_to_string(sdk_dir().join("dist/sightline.iife.js"))
        .expect("the SDK is built: run `npm ci --prefix sdk && npm run build --prefix sdk` (make test does)");
    let page = format!(
        r#"<!doctype html><html><head><title>Shop</title>
<script src="/sightline.iife.js"></script>
<script>Sightline.init({{ key: "{key}", endpoint: "{endpoint}", release: "web-1", flushDelayMs: 50 }});</script>
</head><body><p>A shop.</p></body></html>"#
    );
    let app = Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route("/favicon.ico", get(|| async { axum::http::StatusCode::NO_CONTENT }))
        .route(
            "/sightline.iife.js",
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

#[tokio::test]
async fn a_page_with_the_browser_sdk_reports_views_navigation_events_errors_and_vitals() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: run ./scripts/chromium.sh (make test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    let origin = serve_page(server.base.clone(), key).await;
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

    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(sdk_dir().join("e2e/chromium.mjs"))
            .arg(format!("{origin}/"))
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    assert!(run.status.success(), "{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));

    let now = now_ms();
    let range = format!("from={}&to={}", now - 3_600_000, now + 60_000);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (pageviews, events, errors, fcp) = loop {
        let pageviews =
            get_json(&server, &format!("/api/v1/projects/{project}/breakdown?dimension=page&{range}")).await;
        let events = get_json(&server, &format!("/api/v1/projects/{project}/events?{range}")).await;
        let errors = get_json(&server, &format!("/api/v1/projects/{project}/errors?{range}")).await;
        let fcp = get_json(&server, &format!("/api/v1/projects/{project}/vitals?name=FCP&{range}")).await;
        let done = errors["groups"].as_array().is_some_and(|g| g.len() == 2)
            && pageviews.to_string().contains("/cart")
            && fcp["count"].as_i64().unwrap_or(0) > 0;
        if done || Instant::now() > deadline {
            break (pageviews, events, errors, fcp);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let paths: Vec<(String, i64)> = pageviews["rows"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|r| (r["value"].as_str().unwrap_or_default().to_owned(), r["pageviews"].as_i64().unwrap_or_default()))
        .collect();
    assert!(paths.contains(&("/".into(), 1)) && paths.contains(&("/cart".into(), 1)), "{pageviews}");
    assert!(events.to_string().contains("signup"), "{events}");
    let mut types: Vec<&str> =
        errors["groups"].as_array().unwrap().iter().map(|g| g["error_type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, ["RangeError", "TypeError"], "{errors}");
    assert!(fcp["count"].as_i64().unwrap() >= 1, "{fcp}");
    let summary = get_json(&server, &format!("/api/v1/projects/{project}/sessions/summary?{range}")).await;
    assert_eq!(summary["sessions"], 1, "one visitor, one session: {summary}");
}
