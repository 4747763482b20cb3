//! The dashboard end to end: served by the binary under a strict
//! Content-Security-Policy, logged into in Debian's Chromium, its overview
//! showing the API's numbers and moving with the live feed within a second
//! of an event, without a reload, filtered by a click, an error's group page
//! with its source-mapped stack, the events explorer, performance, settings
//! (changed by an admin, only shown to a viewer), and dashboards of widgets
//! laid out by drag and drop; markup in event data never runs, axe-core finds
//! no WCAG A/AA violation, and every page is photographed into
//! `target/tmp/dashboard-screenshots`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

mod common;

use common::*;

fn dashboard_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dashboard")
}

const ADA: (&str, &str) = ("ada@example.com", "ada's long password");
const VIC: (&str, &str) = ("vic@example.com", "vic's long password");

/// Ada administers the project, Vic views it.
async fn add_users(server: &Server, project: &str) {
    for ((email, password), role) in [(ADA, "admin"), (VIC, "viewer")] {
        let body = json!({ "email": email, "password": password, "name": email });
        let r = server.http.post(server.url("/api/v1/users")).bearer_auth(ADMIN).json(&body).send().await.unwrap();
        let user: Value = r.json().await.unwrap();
        let member = format!("/api/v1/projects/{project}/members/{}", user["id"].as_str().unwrap());
        let r = server
            .http
            .put(server.url(&member))
            .bearer_auth(ADMIN)
            .json(&json!({ "role": role }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
}

/// A webhook receiver on a free port, and the bodies it received.
async fn webhook_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let received: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = sink.clone();
            async move { sink.lock().unwrap().push(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// Runs a script of `dashboard/e2e` in Node with the server, Ada, the
/// ingest key and Vic, and returns the JSON it printed.
async fn run_script(script: &str, server: &Server, key: &str, extra: &[&str]) -> Value {
    let mut args = vec![server.base.clone(), ADA.0.into(), ADA.1.into(), key.into(), VIC.0.into(), VIC.1.into()];
    args.extend(extra.iter().map(|a| a.to_string()));
    let script = dashboard_dir().join(script);
    let run =
        tokio::task::spawn_blocking(move || Command::new("node").arg(script).args(args).output().expect("node runs"))
            .await
            .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    eprintln!("{}", String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{stdout}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test]
async fn the_dashboard_logs_in_and_its_overview_moves_with_the_live_feed() {
    assert!(
        dashboard_dir().join("dist/index.html").exists(),
        "the dashboard is built: run `npm ci --prefix dashboard && npm run build --prefix dashboard` (make test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    add_users(&server, &project).await;
    server.ingest(&key, json!([{ "type": "pageview", "url": "https://shop.example/", "anonymous_id": "v1" }])).await;

    // The page and its assets come with the security headers.
    let page = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    for directive in ["default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script: {html}");
    // The app's own routes get the app; unknown API paths stay JSON 404s.
    assert_eq!(server.http.get(server.url("/settings")).send().await.unwrap().status(), 200);
    let missing = server.http.get(server.url("/api/v1/nothing")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"]["code"], "not_found");

    // Release r1's source map: app.js 10:5 is src/cart.ts 42:3 (reading
    // `items`), app.js 20:3 is 60:1, where `renderCart` is called; a frame is
    // named by its caller's call site, as Sentry does.
    let source: Vec<String> = (1..=70).map(|n| format!("  step({n});")).collect();
    let map = json!({
        "version": 3, "sources": ["src/cart.ts"], "names": ["items", "renderCart"], "sourcesContent": [source.join("\n")],
        "mappings": ";;;;;;;;;IAyCEA;;;;;;;;;;EAkBFC",
    });
    let upload = format!("/api/v1/projects/{project}/sourcemaps?release=r1&url=https://shop.example/static/app.js");
    let r = server.http.post(server.url(&upload)).bearer_auth(ADMIN).json(&map).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // The overview must show what the API answers before the page sends anything.
    let api = |path: String| {
        let request = server.http.get(server.url(&path)).bearer_auth(ADMIN).send();
        async move { request.await.unwrap().json::<Value>().await.unwrap() }
    };
    server.totals_reaching(&project, 1, std::time::Duration::from_secs(5)).await;
    let day = format!("from={}&to={}", now_ms() - 86_400_000, now_ms());
    let pageviews = api(format!("/api/v1/projects/{project}/pageviews?{day}&interval=hour")).await;
    let summary = api(format!("/api/v1/projects/{project}/sessions/summary?{day}")).await;
    let (hook_url, hook) = webhook_receiver().await;
    let result = run_script("e2e/chromium.mjs", &server, &key, &[&hook_url]).await;
    assert_eq!((result["before"].as_i64(), result["after"].as_i64()), (Some(1), Some(2)), "{result}");
    let shown = &result["cards"];
    assert_eq!(shown["visitors"], pageviews["total"]["visitors"].to_string(), "{result}");
    assert_eq!(shown["pageviews"], pageviews["total"]["pageviews"].to_string(), "{result}");
    assert_eq!(shown["sessions"], summary["sessions"].to_string(), "{result}");
    let bounce = (summary["bounce_rate"].as_f64().unwrap() * 100.0).round();
    assert_eq!(shown["bounce"], format!("{bounce}%"), "{result}");
    assert_eq!(shown["duration"], "0s", "one page view, no duration: {result}");
    assert!(result["movedMs"].as_i64().unwrap() < 1_000, "the overview moved within a second: {result}");
    assert_eq!(result["chart"], 1, "the live chart is drawn: {result}");
    assert_eq!(result["chip"].as_str().map(str::trim), Some("path: /live ×"), "the filter is shown: {result}");
    assert_eq!(
        result["segmentChip"].as_str().map(str::trim),
        Some("path: /live ×"),
        "a segment applies its filters: {result}"
    );
    assert_eq!(result["errorTitle"], "TypeError: cart is undefined", "{result}");
    let sparkline = result["sparkline"].as_str().unwrap();
    assert!(sparkline.starts_with("events over the range: ") && sparkline.contains('1'), "{result}");
    assert_eq!(result["frames"], json!(["renderCart", "b"]), "the mapped stack, innermost first: {result}");
    assert_eq!(result["frameFile"], "src/cart.ts:42:3", "the original file, line and column: {result}");
    assert_eq!(result["contextLine"], ">   step(42);\n", "the original source line: {result}");
    assert!(result["url"].as_str().unwrap().contains("/errors/"), "the group page has its own URL: {result}");
    assert_eq!(result["latestEvents"], 1, "the group's events are listed: {result}");
    // LCP 1200, 1800, 2600 and 4200 ms: the p75 lies in 2600's bucket.
    let p75: f64 = result["lcpP75"].as_str().unwrap().trim_end_matches(" ms").parse().unwrap();
    assert!((2_500.0..=2_700.0).contains(&p75), "LCP p75 {p75}: {result}");
    assert!(result["lcpPages"].as_i64().unwrap() >= 1, "{result}");
    assert_eq!(result["proSignups"], 2, "the events explorer filters by a property: {result}");
    assert_eq!(result["eventsChip"], json!(["path: /live ×"]), "a segment applies on the events explorer: {result}");
    assert_eq!(result["theme"], json!(["dark", "rgb(15, 15, 18)"]), "the dark theme stays after a reload: {result}");
    // Settings changed through the page are the server's now.
    assert!(result["secret"].as_str().unwrap().starts_with("sk_"), "the new secret is shown once: {result}");
    assert_eq!(result["viewerSees"], "https://shop.example", "{result}");
    assert_eq!(result["viewerControls"], 0, "a viewer gets no control to change settings: {result}");
    let shown = api(format!("/api/v1/projects/{project}")).await;
    assert_eq!(shown["allowed_origins"], json!(["https://shop.example"]));
    // Alerting through the page: the channel shows no secret, its test and
    // the rule's firing reached the receiver.
    let channel_row = result["channelRow"].as_str().unwrap();
    assert!(channel_row.contains("Ops hook") && !channel_row.contains("some length"), "{result}");
    assert!(result["alertRow"].as_str().unwrap().contains("firing"), "{result}");
    assert_eq!(result["viewerAlerts"], 1, "a viewer sees the rules: {result}");
    let received = hook.lock().unwrap().clone();
    let tests: Vec<bool> = received.iter().map(|body| body["test"].as_bool().unwrap()).collect();
    assert_eq!(tests, [true, false], "the test message, then the firing: {received:?}");
    assert_eq!(received[1]["alert"]["name"], "Any error");
    let keys = api(format!("/api/v1/projects/{project}/ingest-keys")).await;
    assert_eq!(keys["keys"][1]["name"], "landing");
}

#[tokio::test]
async fn dashboards_are_laid_out_by_drag_and_drop_kept_after_a_reload_fixed_for_viewers_and_never_run_event_markup() {
    assert!(dashboard_dir().join("dist/index.html").exists(), "the dashboard is built (make test does)");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    add_users(&server, &project).await;
    server.ingest(&key, json!([{ "type": "pageview", "url": "https://shop.example/", "anonymous_id": "v1" }])).await;

    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let result = run_script("e2e/dashboards.mjs", &server, &key, &[artifacts.to_str().unwrap()]).await;
    let place = |layout: &Value, widget: &str| {
        let found = layout.as_array().unwrap().iter().find(|w| w["widget"] == widget);
        found.map(|w| (w["x"].as_i64().unwrap(), w["y"].as_i64().unwrap(), w["w"].as_i64().unwrap()))
    };
    assert_eq!(result["visitorsWidget"], "1", "the number widget shows the API's visitors: {result}");
    assert_eq!(result["added"].as_array().unwrap().len(), 3, "{result}");
    assert_eq!(place(&result["added"], "table:page").map(|p| p.1 > 0), Some(true), "added below the others: {result}");
    assert_eq!(place(&result["dragged"], "table:page").map(|p| p.1), Some(0), "dragged to the top: {result}");
    let visitors_before = place(&result["dragged"], "number:visitors").unwrap();
    let visitors_after = place(&result["edited"], "number:visitors").unwrap();
    assert_eq!(visitors_after.2, visitors_before.2 + 1, "one column wider: {result}");
    assert_eq!(place(&result["edited"], "chart:pageviews"), None, "removed: {result}");
    assert_eq!(result["reloaded"], result["edited"], "the layout is kept across a reload: {result}");
    assert_eq!(result["viewerLayout"], result["edited"], "the viewer sees the same grid: {result}");
    assert_eq!(result["viewerControls"], 0, "no edit control for a viewer: {result}");
    assert_eq!(result["viewerStatic"], "true", "a viewer's grid does not move: {result}");
    assert_eq!(result["viewerResizeHandles"], 0, "{result}");

    // The server has what the page shows.
    let id = result["url"].as_str().unwrap().trim_start_matches("/dashboards/").to_owned();
    let stored: Value = server
        .http
        .get(server.url(&format!("/api/v1/projects/{project}/dashboards/{id}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let widgets = stored["widgets"].as_array().unwrap();
    assert_eq!(widgets.len(), 2, "{stored}");
    for w in widgets {
        let kind = &w["view"]["kind"];
        let key = format!(
            "{}:{}",
            kind.as_str().unwrap(),
            w["view"][if kind == "number" { "metric" } else { "table" }].as_str().unwrap()
        );
        assert_eq!(
            place(&result["edited"], &key),
            Some((w["x"].as_i64().unwrap(), w["y"].as_i64().unwrap(), w["w"].as_i64().unwrap())),
            "{stored}"
        );
    }

    assert_eq!(result["xssRan"], false, "event markup never runs: {result}");
    assert_eq!(result["injectedImages"], 0, "{result}");
    assert_eq!(
        result["markupShownOn"],
        json!(["overview", "events", "dashboard", "performance", "errors", "group"]),
        "shown as text: {result}"
    );
    assert_eq!(result["problems"], json!([]), "no console error (a CSP violation is one): {result}");
    assert_eq!(result["accessibility"], json!([]), "axe-core finds no WCAG 2.1 A or AA violation: {result}");
    let shots =
        ["dashboard-admin", "dashboard-viewer", "overview", "events", "dashboard", "performance", "settings", "errors"];
    for shot in shots.into_iter().chain(["error-group", "overview-dark", "login"]) {
        assert!(artifacts.join(format!("{shot}.png")).metadata().unwrap().len() > 1_000, "screenshot {shot}");
    }
}

#[tokio::test]
async fn dashboards_are_kept_per_project_across_a_restart_and_bad_widgets_are_refused_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, _) = server.create_project("shop").await;
    let (other, _) = server.create_project("blog").await;
    let send = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = server.http.request(method, server.url(&path)).bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let dashboards = format!("/api/v1/projects/{project}/dashboards");
    let widgets = json!([
        { "id": "visitors", "x": 0, "y": 0, "w": 3, "h": 2, "view": { "kind": "number", "metric": "visitors" } },
        { "id": "pages", "title": "Top pages", "x": 3, "y": 0, "w": 9, "h": 4, "view": { "kind": "table", "table": "page" } },
    ]);
    let (status, made) =
        send(reqwest::Method::POST, dashboards.clone(), Some(json!({ "name": "Launch", "widgets": widgets }))).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["widgets"], widgets, "kept as sent: {made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let one = format!("{dashboards}/{id}");

    // Moved and resized: the new places replace the old.
    let moved = json!([
        { "id": "pages", "title": "Top pages", "x": 0, "y": 0, "w": 12, "h": 5, "view": { "kind": "table", "table": "page" } },
        { "id": "visitors", "x": 0, "y": 5, "w": 4, "h": 2, "view": { "kind": "number", "metric": "visitors" } },
    ]);
    let (status, changed) =
        send(reqwest::Method::PUT, one.clone(), Some(json!({ "name": "Launch day", "widgets": moved }))).await;
    assert_eq!((status, &changed["name"]), (200, &json!("Launch day")), "{changed}");
    assert!(changed["updated_at"].as_i64() >= made["updated_at"].as_i64());

    // Refused, naming the field; the dashboard stays as it was.
    let bad = [
        (
            json!({ "name": "x", "widgets": [{ "id": "a", "x": 10, "y": 0, "w": 4, "h": 1, "view": { "kind": "number", "metric": "visitors" } }] }),
            "widgets[0].x",
        ),
        (
            json!({ "name": "x", "widgets": [{ "id": "a", "x": 0, "y": 0, "w": 4, "h": 1, "view": { "kind": "number", "metric": "revenue" } }] }),
            "body",
        ),
        (json!({ "name": " ", "widgets": [] }), "name"),
    ];
    for (body, field) in bad {
        let (status, answer) = send(reqwest::Method::PUT, one.clone(), Some(body)).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (400, Some(field)), "{answer}");
        if field == "body" {
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains("widgets[0].view"), "the message names the field: {message}");
        }
    }
    // Another project does not reach it.
    let (status, _) = send(reqwest::Method::GET, format!("/api/v1/projects/{other}/dashboards/{id}"), None).await;
    assert_eq!(status, 404);

    let data_dir = dir.path().to_owned();
    server.stop();
    let server = Server::start(Mode::Embedded, &data_dir, "").await;
    let r = server.http.get(server.url(&one)).bearer_auth(ADMIN).send().await.unwrap();
    let kept: Value = r.json().await.unwrap();
    assert_eq!((&kept["name"], &kept["widgets"]), (&json!("Launch day"), &moved), "after a restart: {kept}");
    let r = server.http.delete(server.url(&one)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let list: Value =
        server.http.get(server.url(&dashboards)).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["dashboards"], json!([]));
    let audit: Value =
        server.http.get(server.url("/api/v1/audit")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    let actions: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(&actions[..3], ["dashboard_deleted", "dashboard_changed", "dashboard_created"], "{audit}");
}
