//! End-to-end: the real binary on a free port, in embedded and NATS mode,
//! over HTTP, with restarts and kill -9.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::*;

fn stream_name() -> String {
    format!("E2E_{}_{}", std::process::id(), now_ms())
}

/// Removes a test's JetStream stream so runs leave nothing behind.
async fn delete_stream(stream: &str) {
    let client = async_nats::connect(NATS_URL).await.unwrap();
    let _ = async_nats::jetstream::new(client).delete_stream(stream).await;
}

fn pageview(visitor: &str, path: &str) -> Value {
    json!({ "type": "pageview", "anonymous_id": visitor, "url": format!("https://shop.example{path}?utm=x"), "ts": now_ms() })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

async fn formats_reach_the_views(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let stream = stream_name();
    let server = Server::start(mode, dir.path(), &stream).await;
    let (project, key) = server.create_project("shop").await;

    let json_batch = json!([pageview("a", "/"), pageview("b", "/cart"), pageview("a", "/cart")]);
    assert_eq!(server.ingest(&key, json_batch).await["accepted"], 3);

    let msgpack = rmp_serde::to_vec_named(&json!({ "events": [pageview("c", "/"), pageview("a", "/")] })).unwrap();
    let (status, answer) = server.ingest_raw(&key, msgpack, &[("Content-Type", "application/msgpack")]).await;
    assert_eq!((status, answer["accepted"].as_i64()), (202, Some(2)), "{answer}");

    let body = serde_json::to_vec(&json!({ "events": [pageview("d", "/x"), pageview("d", "/y")] })).unwrap();
    let (status, answer) = server
        .ingest_raw(&key, gzip(&body), &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
        .await;
    assert_eq!((status, answer["accepted"].as_i64()), (202, Some(2)), "{answer}");

    // Every accepted event shows within a second.
    assert_eq!(server.totals_reaching(&project, 7, Duration::from_secs(1)).await, (7, 4));
    let now = now_ms();
    let cart =
        server.pageviews(&project, &format!("interval=minute&from={}&to={}&path=/cart", now - 600_000, now + 1)).await;
    assert_eq!(cart["total"], json!({ "pageviews": 2, "visitors": 2 }));
    assert_eq!(cart["series"].as_array().unwrap().len(), 11);
    if let Mode::Nats = mode {
        // The archiver's lag is reported, and drains to zero.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let metrics = server.http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
            if metrics.lines().any(|l| l == "sightline_nats_consumer_pending_messages 0") {
                break;
            }
            assert!(Instant::now() < deadline, "no consumer lag gauge in\n{metrics}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    server.stop();
    if let Mode::Nats = mode {
        delete_stream(&stream).await;
    }
}

#[tokio::test]
async fn embedded_json_msgpack_and_gzip_reach_the_views() {
    formats_reach_the_views(Mode::Embedded).await;
}

#[tokio::test]
async fn nats_json_msgpack_and_gzip_reach_the_views() {
    formats_reach_the_views(Mode::Nats).await;
}

async fn restarts_lose_nothing_and_count_nothing_twice(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let stream = stream_name();
    let server = Server::start(mode, dir.path(), &stream).await;
    let (project, key) = server.create_project("shop").await;
    for i in 0..5 {
        server.ingest(&key, json!([pageview(&format!("v{i}"), "/"), pageview("same", "/p")])).await;
    }
    assert_eq!(server.totals_reaching(&project, 10, Duration::from_secs(5)).await, (10, 6));
    server.stop();

    // Graceful restart: the same numbers.
    let server = Server::start(mode, dir.path(), &stream).await;
    assert_eq!(server.totals_reaching(&project, 10, Duration::from_secs(5)).await, (10, 6));

    // Many batches in flight, kill -9 right after the last 202.
    let mut sends = Vec::new();
    for i in 0..40 {
        let http = server.http.clone();
        let url = server.url("/api/v1/ingest");
        let key = key.clone();
        sends.push(tokio::spawn(async move {
            let body = json!({ "events": [pageview(&format!("k{i}"), "/k"), pageview(&format!("k{i}"), "/k2")] });
            http.post(url).header("X-Sightline-Key", key).json(&body).send().await.map(|r| r.status().as_u16())
        }));
    }
    let mut acknowledged = 0;
    for send in sends {
        if let Ok(Ok(202)) = send.await {
            acknowledged += 2;
        }
    }
    server.kill9();
    assert_eq!(acknowledged, 80);

    let server = Server::start(mode, dir.path(), &stream).await;
    let expected = 10 + acknowledged;
    let got = server.totals_reaching(&project, expected, Duration::from_secs(10)).await;
    // Settle, then check again: nothing counted twice by a late redelivery.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = server.totals_reaching(&project, expected, Duration::from_secs(1)).await;
    assert_eq!(got, (expected, 6 + 40));
    assert_eq!(settled, got);
    server.stop();
    if let Mode::Nats = mode {
        delete_stream(&stream).await;
    }
}

#[tokio::test]
async fn embedded_restart_and_kill9_lose_nothing_and_count_nothing_twice() {
    restarts_lose_nothing_and_count_nothing_twice(Mode::Embedded).await;
}

#[tokio::test]
async fn nats_restart_and_kill9_lose_nothing_and_count_nothing_twice() {
    restarts_lose_nothing_and_count_nothing_twice(Mode::Nats).await;
}

#[tokio::test]
async fn bad_input_is_answered_per_contract_and_the_process_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    let json_ct = [("Content-Type", "application/json")];

    let expect_error = |status: u16, answer: &Value, want_status: u16, code: &str, field: &str| {
        assert_eq!(status, want_status, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    };

    // Malformed.
    let (s, a) = server.ingest_raw(&key, b"{\"events\": [".to_vec(), &json_ct).await;
    expect_error(s, &a, 400, "invalid_batch", "body");
    let (s, a) = server.ingest_raw(&key, b"[1,2,3]".to_vec(), &json_ct).await;
    expect_error(s, &a, 400, "invalid_batch", "body");
    // Wrong key, no key.
    for _ in 0..2 {
        // The second try is answered from the cache of unknown keys.
        let (s, a) = server.ingest_raw("pk_wrong", b"{\"events\":[]}".to_vec(), &json_ct).await;
        expect_error(s, &a, 401, "invalid_key", "key");
    }
    let r = server.http.post(server.url("/api/v1/ingest")).body("{\"events\":[]}").send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Over 5 MiB on the wire.
    let big = format!(r#"{{"events":[],"pad":"{}"}}"#, "x".repeat(6 * 1024 * 1024));
    let (s, a) = server.ingest_raw(&key, big.into_bytes(), &json_ct).await;
    expect_error(s, &a, 413, "body_too_large", "body");
    // A gzip bomb: small on the wire, 200 MiB inflated.
    let bomb = gzip(&vec![b' '; 200 * 1024 * 1024]);
    let (s, a) =
        server.ingest_raw(&key, bomb, &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")]).await;
    expect_error(s, &a, 413, "body_too_large", "body");
    // Too many events.
    let many: Vec<Value> = (0..1001).map(|i| pageview(&format!("m{i}"), "/")).collect();
    let (s, a) = server.ingest_raw(&key, serde_json::to_vec(&json!({ "events": many })).unwrap(), &json_ct).await;
    expect_error(s, &a, 413, "too_many_events", "events");
    // Nesting bomb.
    let deep = format!(r#"{{"events":[{}]}}"#, "[".repeat(50_000));
    let (s, a) = server.ingest_raw(&key, deep.into_bytes(), &json_ct).await;
    expect_error(s, &a, 400, "invalid_batch", "body");
    // Unsupported media type.
    let (s, a) = server.ingest_raw(&key, b"{}".to_vec(), &[("Content-Type", "image/png")]).await;
    expect_error(s, &a, 415, "unsupported_media_type", "content-type");

    // A partly invalid batch keeps its valid events.
    let nested = json!({ "type": "event", "name": "x", "props": { "deep": [[[[[[[[[1]]]]]]]]] } });
    let answer = server
        .ingest(
            &key,
            json!([
                pageview("ok1", "/"),
                { "type": "pageview", "url": "/" },
                nested,
                { "type": "vital", "name": "LCP", "value": "slow", "url": "/" },
                { "type": "teleport" },
                pageview("ok2", "/"),
            ]),
        )
        .await;
    assert_eq!(answer["accepted"], 2, "{answer}");
    let rejected: Vec<(i64, &str, &str)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_i64().unwrap(), r["code"].as_str().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (1, "missing_field", "anonymous_id"),
            (2, "too_deep", "props.deep[0][0][0][0][0][0]"),
            (3, "invalid_type", "value"),
            (4, "unknown_type", "type"),
        ]
    );

    // Still healthy, and the valid events were counted.
    let health: Value = server.http.get(server.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(server.totals_reaching(&project, 2, Duration::from_secs(2)).await, (2, 2));

    let metrics = server.http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for line in [
        r#"sightline_ingest_requests_refused_total{reason="invalid_key"} 2"#,
        r#"sightline_ingest_key_lookups_total{result="unknown"} 1"#,
        r#"sightline_ingest_requests_refused_total{reason="body_too_large"} 2"#,
        r#"sightline_events_rejected_total{reason="unknown_type"} 1"#,
        r#"sightline_events_accepted_total{type="pageview"} 2"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing `{line}` in\n{metrics}");
    }
    assert!(metrics.contains("sightline_view_freshness_seconds"));
    assert!(metrics.contains("sightline_bus_lag_batches"));
    server.stop();
}

#[tokio::test]
async fn keys_read_only_their_own_project() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (a, _) = server.create_project("a").await;
    let (b, _) = server.create_project("b").await;
    let r = server
        .http
        .post(server.url(&format!("/api/v1/projects/{a}/keys")))
        .bearer_auth(ADMIN)
        .json(&json!({ "name": "ci", "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let key: Value = r.json().await.unwrap();
    let secret = key["secret"].as_str().unwrap();
    let get = |path: String, token: Option<String>| {
        let mut req = server.http.get(server.url(&path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(format!("/api/v1/projects/{a}/pageviews"), Some(secret.into())).await, 200);
    assert_eq!(get(format!("/api/v1/projects/{b}/pageviews"), Some(secret.into())).await, 403);
    assert_eq!(get(format!("/api/v1/projects/{a}/pageviews"), None).await, 401);
    assert_eq!(get(format!("/api/v1/projects/{a}/pageviews"), Some("sk_nope".into())).await, 401);
    // A viewer cannot create keys or projects.
    let r = server
        .http
        .post(server.url(&format!("/api/v1/projects/{a}/keys")))
        .bearer_auth(secret)
        .json(&json!({ "name": "x", "role": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let listed: Value =
        server.http.get(server.url("/api/v1/projects")).bearer_auth(secret).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["projects"].as_array().unwrap().len(), 1);
    assert_eq!(listed["projects"][0]["id"], a.as_str());
    server.stop();
}

#[tokio::test]
async fn live_feed_streams_an_update_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    let mut live = server
        .http
        .get(server.url(&format!("/api/v1/projects/{project}/live")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let sent = Instant::now();
    server.ingest(&key, json!([pageview("live", "/marker")])).await;
    let mut seen = String::new();
    while !seen.contains("/marker") {
        let chunk = tokio::time::timeout(Duration::from_secs(1), live.chunk()).await;
        let chunk = chunk.expect("no live update within a second").unwrap().expect("stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(sent.elapsed() < Duration::from_secs(1));
    assert!(seen.contains("event: pageviews"), "{seen}");
    assert!(seen.contains(r#""pageviews":1"#), "{seen}");
    server.stop();
}

#[tokio::test]
async fn openapi_document_describes_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let doc: Value = server.http.get(server.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/ingest",
        "/api/v1/projects",
        "/api/v1/projects/{id}/pageviews",
        "/api/v1/projects/{id}/vitals",
        "/api/v1/projects/{id}/vitals/pages",
        "/api/v1/projects/{id}/live",
    ] {
        assert!(doc["paths"].get(path).is_some(), "missing {path}");
    }
    server.stop();
}

#[tokio::test]
async fn events_older_than_the_retention_window_are_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(Mode::Embedded, dir.path(), "", &["--retention-days", "1"]).await;
    let (project, key) = server.create_project("shop").await;
    let day = 86_400_000;
    let old = json!({ "type": "pageview", "anonymous_id": "old", "url": "/", "ts": now_ms() - 3 * day });
    let yesterday = json!({ "type": "pageview", "anonymous_id": "y", "url": "/", "ts": now_ms() - day });
    assert_eq!(server.ingest(&key, json!([old, yesterday, pageview("now", "/")])).await["accepted"], 3);
    let now = now_ms();
    let deadline = Instant::now() + Duration::from_secs(2);
    let week = loop {
        let week = server.pageviews(&project, &format!("interval=day&from={}&to={}", now - 7 * day, now + 1)).await;
        if week["total"]["pageviews"].as_i64() == Some(2) || Instant::now() > deadline {
            break week;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Three days back is past a one-day window; yesterday's bucket is kept
    // until a day after it ends.
    assert_eq!(week["total"], json!({ "pageviews": 2, "visitors": 2 }), "{week}");
    server.stop();
}

/// Creates a fresh PostgreSQL database and returns its URL.

#[tokio::test]
async fn serves_with_postgresql_as_the_metadata_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = postgres_database();
    let server = Server::start_with(Mode::Embedded, dir.path(), "", &["--database-url", &url]).await;
    let (project, key) = server.create_project("on-postgres").await;
    server.ingest(&key, json!([pageview("p", "/")])).await;
    assert_eq!(server.totals_reaching(&project, 1, Duration::from_secs(2)).await, (1, 1));
    server.stop();
    // A restart finds the project (and its key) in PostgreSQL.
    let server = Server::start_with(Mode::Embedded, dir.path(), "", &["--database-url", &url]).await;
    server.ingest(&key, json!([pageview("q", "/")])).await;
    assert_eq!(server.totals_reaching(&project, 2, Duration::from_secs(2)).await, (2, 2));
    server.stop();
    drop_postgres_database(&url);
}

/// Golden pipeline cases: `golden/<case>/input.jsonl` is sent in two halves
/// with a restart between them; every query in `expected.json` must then
/// answer exactly as written there.
#[tokio::test]
async fn golden_pipeline_cases_survive_a_restart() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for case in std::fs::read_dir(&root).unwrap() {
        let case = case.unwrap().path();
        let input = std::fs::read_to_string(case.join("input.jsonl")).unwrap();
        let events: Vec<Value> = input.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let expected: serde_json::Map<String, Value> =
            serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // The cases carry fixed dates; keep them inside the window for years.
        let args = ["--retention-days", "3650"];
        let server = Server::start_with(Mode::Embedded, dir.path(), "", &args).await;
        let (project, key) = server.create_project("golden").await;
        let (first, second) = events.split_at(events.len() / 2);
        assert_eq!(server.ingest(&key, Value::from(first.to_vec())).await["accepted"], first.len());
        server.stop();
        let server = Server::start_with(Mode::Embedded, dir.path(), "", &args).await;
        assert_eq!(server.ingest(&key, Value::from(second.to_vec())).await["accepted"], second.len());
        let deadline = Instant::now() + Duration::from_secs(3);
        for (query, want) in &expected {
            loop {
                let got = server.pageviews(&project, query).await;
                if &got == want {
                    break;
                }
                assert!(Instant::now() < deadline, "{}: `{query}`\n got {got}\nwant {want}", case.display());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        server.stop();
    }
}

fn engine_stack(engine: &str) -> String {
    let path = format!("{}/../errors/tests/fixtures/same_bug_{engine}.txt", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

fn error_event(visitor: &str, stack: &str, message: &str, release: &str) -> Value {
    json!({
        "type": "error", "anonymous_id": visitor, "url": "https://shop.example/cart", "release": release,
        "error_type": "TypeError", "message": message, "stack": stack, "ts": now_ms(),
    })
}

#[tokio::test]
async fn errors_group_across_browsers_and_are_served_with_their_frames() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    let get = |path: String| {
        let req = server.http.get(server.url(&path)).bearer_auth(ADMIN);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let mut live = server
        .http
        .get(server.url(&format!("/api/v1/projects/{project}/live")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();

    server
        .ingest(
            &key,
            json!([
                error_event("u1", &engine_stack("chrome"), "Cannot read properties of undefined (reading 'price')", "1.0"),
                error_event("u2", &engine_stack("firefox"), "cart.items[0] is undefined", "1.0"),
                error_event("u3", &engine_stack("safari"), "undefined is not an object (evaluating 'cart.items[0].price')", "1.1"),
                error_event("u1", &engine_stack("chrome"), "Cannot read properties of undefined (reading 'price')", "1.1"),
                // No stack: grouped by the message with its numbers replaced.
                { "type": "error", "anonymous_id": "u4", "error_type": "NetworkError", "message": "request 17 timed out after 3000 ms" },
                { "type": "error", "anonymous_id": "u5", "error_type": "NetworkError", "message": "request 42 timed out after 5000 ms" },
                // An explicit fingerprint wins.
                { "type": "error", "anonymous_id": "u6", "message": "a", "fingerprint": ["checkout-down"] },
                { "type": "error", "anonymous_id": "u6", "message": "b", "fingerprint": ["checkout-down"] },
                pageview("u1", "/cart"),
            ]),
        )
        .await;

    // A new group reaches the live feed as soon as it forms.
    let mut seen = String::new();
    while !seen.contains("event: error_groups") {
        let chunk = tokio::time::timeout(Duration::from_secs(2), live.chunk()).await.expect("no error_groups event");
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }

    let deadline = Instant::now() + Duration::from_secs(2);
    let groups = loop {
        let (status, answer) = get(format!("/api/v1/projects/{project}/errors")).await;
        assert_eq!(status, 200, "{answer}");
        let groups = answer["groups"].as_array().unwrap().clone();
        if groups.iter().map(|g| g["count"].as_i64().unwrap()).sum::<i64>() == 8 || Instant::now() > deadline {
            break groups;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut summary: Vec<(i64, i64, Vec<Value>)> = groups
        .iter()
        .map(|g| {
            (g["count"].as_i64().unwrap(), g["users"].as_i64().unwrap(), g["releases"].as_array().unwrap().clone())
        })
        .collect();
    // Most frequent first; the two groups of 2 may come in either order.
    summary[1..].sort_by_key(|(_, users, _)| std::cmp::Reverse(*users));
    assert_eq!(summary, vec![(4, 3, vec![json!("1.0"), json!("1.1")]), (2, 2, vec![]), (2, 1, vec![])], "{groups:#?}");
    let browser_bug = groups[0]["fingerprint"].as_str().unwrap();
    assert!(groups[0]["first_seen"].as_i64().unwrap() <= groups[0]["last_seen"].as_i64().unwrap());

    // Filters: a release, a path.
    let (_, r11) = get(format!("/api/v1/projects/{project}/errors?release=1.1")).await;
    assert_eq!(r11["groups"].as_array().unwrap().len(), 1);
    assert_eq!(r11["groups"][0]["count"], 2);
    let (_, none) = get(format!("/api/v1/projects/{project}/errors?path=/nowhere")).await;
    assert_eq!(none["groups"], json!([]));

    // The group page: latest event with parsed, in-app frames, and how it was grouped.
    let (status, detail) = get(format!("/api/v1/projects/{project}/errors/{browser_bug}")).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["count"], 4);
    assert_eq!(detail["grouping"]["version"], "v1");
    assert_eq!(detail["grouping"]["basis"], "in_app_frames");
    let frames = detail["latest_event"]["frames"].as_array().unwrap();
    assert_eq!(frames[0]["function"], "inner");
    assert_eq!(frames[0]["file"], "https://shop.example/static/app.js");
    assert_eq!((frames[0]["line"].as_i64(), frames[0]["column"].as_i64()), (Some(10), Some(15)));
    assert_eq!(frames[0]["in_app"], true);
    assert_eq!(detail["series"].as_array().unwrap().iter().map(|p| p["count"].as_i64().unwrap()).sum::<i64>(), 4);
    let (status, _) = get(format!("/api/v1/projects/{project}/errors/0000000000000000000000000000dead")).await;
    assert_eq!(status, 404);

    // Error rate against page views.
    let (_, rate) = get(format!("/api/v1/projects/{project}/error-rate?interval=day")).await;
    let today = rate.as_array().unwrap().last().unwrap();
    assert_eq!((today["errors"].as_i64(), today["pageviews"].as_i64()), (Some(8), Some(1)), "{rate}");
    assert_eq!(today["rate"].as_f64(), Some(8.0));
    drop(live);
    server.stop();
}

fn bundle_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bundle")
}

/// Bundles `tests/bundle/src/<entry>` with esbuild (with a source map) into
/// `out/<outfile>`.
fn esbuild(entry: &str, out: &Path, outfile: &str, args: &[&str]) {
    let esbuild = bundle_dir().join("node_modules/.bin/esbuild");
    assert!(esbuild.exists(), "esbuild is not installed: run `npm ci --prefix cli/tests/bundle` (make test does)");
    let status = Command::new(&esbuild)
        .arg(bundle_dir().join("src").join(entry))
        .args(["--bundle", "--sourcemap", "--log-level=warning"])
        .args(args)
        .arg(format!("--outfile={}", out.join(outfile).display()))
        .status()
        .unwrap();
    assert!(status.success());
}

/// Bundles the app for Node into `out/app.min.js`, runs it and returns the
/// error it threw.
fn bundle_and_run(out: &Path, extra_esbuild_args: &[&str]) -> Value {
    esbuild("main.js", out, "app.min.js", &[&["--platform=node"], extra_esbuild_args].concat());
    let run = Command::new("node").arg(out.join("app.min.js")).output().expect("node runs");
    serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&run.stdout)))
}

/// Bundles the app for the browser into `out/app.browser.min.js`, loads it
/// in headless Chromium and returns the error it threw.
fn bundle_and_run_in_chromium(out: &Path) -> Value {
    esbuild("browser.js", out, "app.browser.min.js", &["--platform=browser", "--minify"]);
    std::fs::copy(bundle_dir().join("index.html"), out.join("index.html")).unwrap();
    assert!(Path::new("/usr/bin/chromium").exists(), "Chromium is missing: run ./scripts/chromium.sh (make test does)");
    let profile = tempfile::tempdir().unwrap();
    let run = Command::new("/usr/bin/chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", out.join("index.html").display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&run.stdout);
    let start = dom.find("<pre id=\"thrown\">").map(|i| i + "<pre id=\"thrown\">".len());
    let text = start.and_then(|s| dom[s..].find("</pre>").map(|e| &dom[s..s + e]));
    let text = text.unwrap_or_else(|| panic!("no error in the page: {dom}"));
    let text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn a_real_minified_bundle_is_source_mapped_and_groups_across_builds() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    let builds = tempfile::tempdir().unwrap();
    let mut fingerprints = Vec::new();
    for (release, flags) in [("r1", &["--minify"][..]), ("r2", &["--minify-whitespace", "--minify-syntax"][..])] {
        let out = builds.path().join(release);
        std::fs::create_dir_all(&out).unwrap();
        let thrown = bundle_and_run(&out, flags);
        let stack = thrown["stack"].as_str().unwrap();
        assert!(stack.contains("app.min.js:1:"), "a minified stack: {stack}");
        let upload = Command::new(env!("CARGO_BIN_EXE_sightline"))
            .args(["sourcemaps", "upload", "--release", release, "--project", &project, "--token", ADMIN])
            .arg("--url-prefix")
            .arg(format!("{}/", out.display()))
            .arg("--server")
            .arg(&server.base)
            .arg(&out)
            .output()
            .unwrap();
        assert!(upload.status.success(), "{}", String::from_utf8_lossy(&upload.stderr));
        assert!(String::from_utf8_lossy(&upload.stdout).contains("1 source maps uploaded"));
        let event = json!({
            "type": "error", "anonymous_id": format!("u-{release}"), "release": release, "url": "https://shop.example/cart",
            "error_type": thrown["type"], "message": thrown["message"], "stack": stack,
        });
        server.ingest(&key, json!([event])).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        let groups = loop {
            let r = server
                .http
                .get(server.url(&format!("/api/v1/projects/{project}/errors?release={release}")))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            let answer: Value = r.json().await.unwrap();
            if !answer["groups"].as_array().unwrap().is_empty() || Instant::now() > deadline {
                break answer["groups"].clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        fingerprints.push(groups[0]["fingerprint"].as_str().unwrap().to_owned());
    }
    // Two builds, different minified names and columns: one issue.
    assert_eq!(fingerprints[0], fingerprints[1]);

    let r = server
        .http
        .get(server.url(&format!("/api/v1/projects/{project}/errors/{}", fingerprints[0])))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let detail: Value = r.json().await.unwrap();
    assert_eq!(detail["count"], 2, "{detail:#}");
    let frames = detail["latest_event"]["frames"].as_array().unwrap();
    // esbuild names sources relative to the output folder.
    let top: Vec<(&str, &str, i64)> = frames
        .iter()
        .take(3)
        .map(|f| {
            let file = f["file"].as_str().unwrap();
            let file = &file[file.rfind("src/").unwrap_or(0)..];
            (f["function"].as_str().unwrap(), file, f["line"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(
        top,
        vec![("lineTotal", "src/cart.js", 3), ("cartTotal", "src/cart.js", 10), ("checkout", "src/checkout.js", 4)],
        "{detail:#}"
    );
    assert!(frames[0]["minified"]["file"].as_str().unwrap().ends_with("app.min.js"));
    assert_eq!(frames[0]["context"]["context_line"], "  const price = item.details.price;");
    assert_eq!(frames[0]["context"]["pre_context"].as_array().unwrap().len(), 2);
    assert_eq!(detail["grouping"]["basis"], "in_app_frames");
    server.stop();
}

#[tokio::test]
async fn node_and_chromium_stacks_of_one_build_are_one_issue() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    let build = tempfile::tempdir().unwrap();
    let from_node = bundle_and_run(build.path(), &["--minify"]);
    let from_chromium = bundle_and_run_in_chromium(build.path());
    let chromium_stack = from_chromium["stack"].as_str().unwrap();
    assert!(chromium_stack.contains("app.browser.min.js:1:"), "{chromium_stack}");

    // One upload for the whole build folder: both maps.
    let prefix = format!("file://{}/", build.path().display());
    let upload = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["sourcemaps", "upload", "--release", "r3", "--project", &project, "--token", ADMIN])
        .args(["--url-prefix", &prefix, "--server", &server.base])
        .arg(build.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&upload.stdout).contains("2 source maps uploaded"), "{upload:?}");
    // Node prints plain paths, Chromium file:// URLs: the Node map is also
    // uploaded under the plain path.
    let node_prefix = format!("{}/", build.path().display());
    let upload = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["sourcemaps", "upload", "--release", "r3", "--project", &project, "--token", ADMIN])
        .args(["--url-prefix", &node_prefix, "--server", &server.base])
        .arg(build.path())
        .output()
        .unwrap();
    assert!(upload.status.success());

    let event = |thrown: &Value, visitor: &str| {
        json!({ "type": "error", "anonymous_id": visitor, "release": "r3", "error_type": thrown["type"],
                "message": thrown["message"], "stack": thrown["stack"] })
    };
    server.ingest(&key, json!([event(&from_node, "node"), event(&from_chromium, "chrome")])).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    let groups = loop {
        let answer: Value = server
            .http
            .get(server.url(&format!("/api/v1/projects/{project}/errors")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let groups = answer["groups"].as_array().unwrap().clone();
        if groups.iter().filter_map(|g| g["count"].as_i64()).sum::<i64>() == 2 || Instant::now() > deadline {
            break groups;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(groups.len(), 1, "one issue for both runtimes: {groups:#?}");
    assert_eq!((groups[0]["count"].as_i64(), groups[0]["users"].as_i64()), (Some(2), Some(2)));
    // Grouped by the original frames, not by the message or minified names.
    let fingerprint = groups[0]["fingerprint"].as_str().unwrap();
    let detail: Value = server
        .http
        .get(server.url(&format!("/api/v1/projects/{project}/errors/{fingerprint}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["grouping"]["basis"], "in_app_frames");
    let functions: Vec<&str> = detail["latest_event"]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .filter_map(|f| f["function"].as_str())
        .collect();
    assert_eq!(functions, ["lineTotal", "cartTotal", "checkout"], "{detail:#}");
    server.stop();
}

#[tokio::test]
async fn vitals_are_served_as_percentiles_and_google_ratings() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    // LCP of 100 ms, 200 ms, … 10 s on /cart, and one on /home; CLS beside.
    let mut events: Vec<Value> = (1..=100)
        .map(|i| json!({ "type": "vital", "name": "LCP", "value": i * 100, "anonymous_id": "v", "url": "https://shop.example/cart" }))
        .collect();
    events.push(json!({ "type": "vital", "name": "LCP", "value": 50_000, "anonymous_id": "v", "url": "https://shop.example/home" }));
    events.push(json!({ "type": "vital", "name": "CLS", "value": 0.12, "anonymous_id": "v", "url": "https://shop.example/cart" }));
    events.push(json!({ "type": "vital", "name": "LCP", "value": -1, "anonymous_id": "v" }));
    let answer = server.ingest(&key, Value::Array(events)).await;
    assert_eq!(answer["accepted"], 102, "{answer}");
    assert_eq!(answer["rejected"][0]["field"], "value");
    let vitals = |query: String| {
        let http = server.http.clone();
        let url = server.url(&format!("/api/v1/projects/{project}/vitals?{query}"));
        async move {
            let r = http.get(url).bearer_auth(ADMIN).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let now = now_ms();
    let range = format!("from={}&to={}", now - 3_600_000, now + 60_000);
    let deadline = Instant::now() + Duration::from_secs(2);
    let cart = loop {
        let (status, cart) = vitals(format!("name=LCP&path=/cart&{range}")).await;
        assert_eq!(status, 200, "{cart}");
        if cart["count"] == 100 || Instant::now() > deadline {
            break cart;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(cart["name"], "LCP");
    assert_eq!(cart["count"], 100, "{cart}");
    for (field, exact) in [("p50", 5_000.0), ("p75", 7_500.0), ("p95", 9_500.0), ("p99", 9_900.0)] {
        let got = cart[field].as_f64().unwrap();
        assert!((got - exact).abs() / exact <= 0.01, "{field}: {got} against {exact}");
    }
    // Good up to 2.5 s (25 values), needs improvement up to 4 s (15), poor above.
    assert_eq!((cart["good"].as_f64(), cart["needs_improvement"].as_f64()), (Some(0.25), Some(0.15)));
    assert_eq!(cart["poor"].as_f64(), Some(0.6));
    let (_, all) = vitals(format!("name=LCP&{range}")).await;
    assert_eq!(all["count"], 101);
    let (_, cls) = vitals(format!("name=cls&{range}")).await;
    assert_eq!((cls["count"].as_i64(), cls["needs_improvement"].as_f64()), (Some(1), Some(1.0)), "{cls}");
    assert!((cls["p75"].as_f64().unwrap() - 0.12).abs() < 0.0012, "{cls}");
    let (_, none) = vitals(format!("name=LCP&device=tablet&{range}")).await;
    assert_eq!((none["count"].as_i64(), none["p75"].is_null()), (Some(0), true));
    // Filters by release and browser: a slow LCP of release 2.0.
    let slow = json!({ "type": "vital", "name": "LCP", "value": 9_000, "anonymous_id": "v", "release": "2.0", "url": "https://shop.example/cart" });
    server.ingest(&key, json!([slow])).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    let release = loop {
        let (_, release) = vitals(format!("name=LCP&release=2.0&{range}")).await;
        if release["count"] == 1 || Instant::now() > deadline {
            break release;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((release["count"].as_i64(), release["poor"].as_f64()), (Some(1), Some(1.0)), "{release}");
    let (_, firefox) = vitals(format!("name=LCP&browser=Firefox&{range}")).await;
    assert_eq!(firefox["count"], 0, "the test client is no Firefox");
    let (status, missing) = vitals(range.clone()).await;
    assert_eq!((status, missing["error"]["field"].as_str()), (400, Some("name")));
    let (status, unknown) = vitals(format!("name=XYZ&{range}")).await;
    assert_eq!((status, unknown["error"]["field"].as_str()), (400, Some("name")));
    // Per page: /cart's 101 measurements (release 2.0's too) before /home's one.
    let (status, pages) = vitals_pages(&server, &project, &format!("name=LCP&{range}")).await;
    assert_eq!(status, 200, "{pages}");
    assert_eq!((pages["name"].as_str(), pages["pages"].as_array().map(Vec::len)), (Some("LCP"), Some(2)), "{pages}");
    let (cart, home) = (&pages["pages"][0], &pages["pages"][1]);
    assert_eq!((cart["path"].as_str(), cart["count"].as_i64()), (Some("/cart"), Some(101)), "{pages}");
    assert!((cart["p75"].as_f64().unwrap() - 7_600.0).abs() <= 76.0, "{cart}");
    assert_eq!(
        (home["path"].as_str(), home["count"].as_i64(), home["poor"].as_f64()),
        (Some("/home"), Some(1), Some(1.0))
    );
    let (_, top) = vitals_pages(&server, &project, &format!("name=LCP&limit=1&{range}")).await;
    assert_eq!(top["pages"].as_array().unwrap().len(), 1);
    let (_, none) = vitals_pages(&server, &project, &format!("name=INP&{range}")).await;
    assert_eq!(none["pages"], json!([]));
    let (status, missing) = vitals_pages(&server, &project, &range).await;
    assert_eq!((status, missing["error"]["field"].as_str()), (400, Some("name")));
    server.stop();
}

async fn vitals_pages(server: &Server, project: &str, query: &str) -> (u16, Value) {
    let url = server.url(&format!("/api/v1/projects/{project}/vitals/pages?{query}"));
    let r = server.http.get(url).bearer_auth(ADMIN).send().await.unwrap();
    (r.status().as_u16(), r.json::<Value>().await.unwrap())
}

#[tokio::test]
async fn custom_events_are_counted_filtered_and_broken_down_by_property() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    let event = |name: &str, plan: &str, seats: u32, path: &str, release: &str| {
        json!({ "type": "event", "name": name, "anonymous_id": "v", "url": format!("https://shop.example{path}"),
                "release": release, "props": { "plan": plan, "seats": seats, "trial": plan == "free" } })
    };
    let events = json!([
        event("signup", "pro", 3, "/pricing", "1.0"),
        event("signup", "pro", 5, "/pricing", "1.1"),
        event("signup", "free", 1, "/", "1.1"),
        event("purchase", "pro", 3, "/checkout", "1.1"),
    ]);
    assert_eq!(server.ingest(&key, events).await["accepted"], 4);
    let get = |query: String| {
        let http = server.http.clone();
        let url = server.url(&format!("/api/v1/projects/{project}/events?{query}"));
        async move {
            let r = http.get(url).bearer_auth(ADMIN).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let now = now_ms();
    let range = format!("from={}&to={}", now - 3_600_000, now + 60_000);
    let deadline = Instant::now() + Duration::from_secs(2);
    let signups = loop {
        let (status, answer) = get(format!("name=signup&{range}")).await;
        assert_eq!(status, 200, "{answer}");
        if answer["total"] == 3 || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(signups["total"], 3, "{signups}");
    let series_sum: i64 = signups["series"].as_array().unwrap().iter().map(|p| p["count"].as_i64().unwrap()).sum();
    assert_eq!(series_sum, 3);
    assert_eq!(signups["breakdown"]["plan"], json!([{ "value": "pro", "count": 2 }, { "value": "free", "count": 1 }]));
    assert_eq!(signups["breakdown"]["trial"][0], json!({ "value": "false", "count": 2 }));
    // Filters combine: property, path and release.
    let (_, pro) = get(format!("prop.plan=pro&release=1.1&{range}")).await;
    assert_eq!(pro["total"], 2, "{pro}");
    assert_eq!(pro["names"], json!([{ "name": "purchase", "count": 1 }, { "name": "signup", "count": 1 }]));
    let (_, three_seats) = get(format!("prop.seats=3&prop.plan=pro&path=/pricing&{range}")).await;
    assert_eq!(three_seats["total"], 1, "{three_seats}");
    let (_, nobody) = get(format!("name=signup&prop.plan=enterprise&{range}")).await;
    assert_eq!(nobody["total"], 0);
    let (status, bad) = get(format!("colour=red&{range}")).await;
    assert_eq!((status, bad["error"]["field"].as_str()), (400, Some("colour")), "{bad}");
    let (status, bad) = get("from=yesterday".into()).await;
    assert_eq!((status, bad["error"]["field"].as_str()), (400, Some("from")), "{bad}");
    server.stop();
}

#[tokio::test]
async fn sessions_breakdowns_and_current_visitors() {
    const CHROME: &str =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    // Noon yesterday (UTC), so no session crosses midnight.
    let t0 = now_ms() / 86_400_000 * 86_400_000 - 12 * 3_600_000;
    let min = 60_000;
    let view = |visitor: &str, at: i64, path: &str, extra: Value| {
        let mut e = json!({ "type": "pageview", "anonymous_id": visitor, "ts": at, "url": format!("https://shop.example{path}") });
        e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        e
    };
    let chrome = json!([
        // a: came from Google, read two pages, signed up: one session, no bounce.
        view("a", t0, "/", json!({ "referrer": "https://www.google.com/search?q=shop" })),
        view("a", t0 + min, "/pricing", json!({ "referrer": "https://shop.example/" })),
        { "type": "event", "name": "signup", "anonymous_id": "a", "ts": t0 + 2 * min, "url": "https://shop.example/pricing" },
        // c: one SDK session across a 50-minute gap.
        view("c", t0 - 50 * min, "/blog", json!({ "session_id": "s1" })),
        view("c", t0, "/", json!({ "session_id": "s1" })),
        // d: no session id; 50 idle minutes split two bounces.
        view("d", t0 - 50 * min, "/docs", json!({})),
        view("d", t0, "/docs", json!({})),
    ]);
    let send = |events: Value, ua: &'static str| {
        let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
        let server = &server;
        let key = key.clone();
        async move {
            let (status, answer) =
                server.ingest_raw(&key, body, &[("Content-Type", "application/json"), ("User-Agent", ua)]).await;
            assert_eq!(status, 202, "{answer}");
        }
    };
    send(chrome, CHROME).await;
    // b: one page in Firefox, a bounce.
    send(json!([view("b", t0, "/", json!({}))]), FIREFOX).await;
    let get = |path: String| {
        let http = server.http.clone();
        let url = server.url(&format!("/api/v1/projects/{project}/{path}"));
        async move {
            let r = http.get(url).bearer_auth(ADMIN).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let range = format!("from={}&to={}", t0 - 2 * 3_600_000, t0 + 2 * 3_600_000);
    let deadline = Instant::now() + Duration::from_secs(2);
    let summary = loop {
        let (status, summary) = get(format!("sessions/summary?{range}")).await;
        assert_eq!(status, 200, "{summary}");
        if summary["sessions"] == 5 || Instant::now() > deadline {
            break summary;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        summary,
        json!({ "sessions": 5, "bounce_rate": 0.6, "avg_duration_ms": 624_000.0, "pages_per_session": 1.4 })
    );
    let rows = |answer: &Value| -> Vec<(String, i64, i64)> {
        answer["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let n = |f: &str| r[f].as_i64().unwrap_or(-1);
                (r["value"].as_str().unwrap().to_owned(), n("visitors").max(n("sessions")), n("pageviews"))
            })
            .collect()
    };
    let owned = |v: &[(&str, i64, i64)]| -> Vec<(String, i64, i64)> {
        v.iter().map(|(s, a, b)| (s.to_string(), *a, *b)).collect()
    };
    let (_, pages) = get(format!("breakdown?dimension=page&{range}")).await;
    assert_eq!(rows(&pages), owned(&[("/", 3, 3), ("/docs", 1, 2), ("/blog", 1, 1), ("/pricing", 1, 1)]), "{pages}");
    let (_, entries) = get(format!("breakdown?dimension=entry_page&{range}")).await;
    assert_eq!(rows(&entries), owned(&[("/", 2, -1), ("/docs", 2, -1), ("/blog", 1, -1)]), "{entries}");
    let (_, exits) = get(format!("breakdown?dimension=exit_page&{range}")).await;
    assert_eq!(rows(&exits), owned(&[("/", 2, -1), ("/docs", 2, -1), ("/pricing", 1, -1)]), "{exits}");
    let (_, referrers) = get(format!("breakdown?dimension=referrer&{range}")).await;
    assert_eq!(rows(&referrers), owned(&[("", 4, 6), ("google.com", 1, 1)]), "{referrers}");
    let (_, browsers) = get(format!("breakdown?dimension=browser&{range}")).await;
    assert_eq!(rows(&browsers), owned(&[("Chrome", 3, 6), ("Firefox", 1, 1)]), "{browsers}");
    let (_, releases) = get(format!("breakdown?dimension=release&{range}")).await;
    assert_eq!(rows(&releases), owned(&[("", 4, 7)]), "no page view carried a release: {releases}");
    let (_, release_pages) = get(format!("pageviews?interval=hour&release=9.9&{range}")).await;
    assert_eq!(release_pages["total"]["pageviews"], 0);
    let (_, firefox_pages) = get(format!("pageviews?interval=hour&browser=Firefox&{range}")).await;
    assert_eq!(firefox_pages["total"], json!({ "pageviews": 1, "visitors": 1 }));
    let (_, from_google) = get(format!("breakdown?dimension=page&referrer=google.com&{range}")).await;
    assert_eq!(rows(&from_google), owned(&[("/", 1, 1)]));
    let (status, bad) = get(format!("breakdown?dimension=country&{range}")).await;
    assert_eq!((status, bad["error"]["field"].as_str()), (400, Some("dimension")));
    // Session filters match the entry page view.
    let (_, chrome_entries) = get(format!("breakdown?dimension=entry_page&browser=Chrome&{range}")).await;
    assert_eq!(rows(&chrome_entries), owned(&[("/docs", 2, -1), ("/", 1, -1), ("/blog", 1, -1)]), "{chrome_entries}");
    let (_, from_google) = get(format!("sessions/summary?referrer=google.com&{range}")).await;
    assert_eq!((from_google["sessions"].as_i64(), from_google["bounce_rate"].as_f64()), (Some(1), Some(0.0)));
    let (_, firefox) = get(format!("sessions/summary?browser=Firefox&{range}")).await;
    assert_eq!((firefox["sessions"].as_i64(), firefox["bounce_rate"].as_f64()), (Some(1), Some(1.0)));
    let (_, entered_docs) = get(format!("sessions/summary?path=/docs&{range}")).await;
    assert_eq!(entered_docs["sessions"], 2);
    // Current visitors: only who was seen in the last five minutes.
    assert_eq!(get("visitors/current".into()).await.1["visitors"], 0);
    send(json!([{ "type": "pageview", "anonymous_id": "e", "url": "https://shop.example/" }]), CHROME).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while get("visitors/current".into()).await.1["visitors"] != 1 {
        assert!(Instant::now() < deadline, "the new visitor did not show as current");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop();
}
