//! Accounts end to end: the first owner and its one-time password, login
//! and logout with the session cookie, CSRF, login throttling, and every
//! route tried by every kind of caller.

use std::sync::atomic::{AtomicU32, Ordering};

use reqwest::Method;
use serde_json::{Value, json};

mod common;

use common::*;

/// A logged-in user: the session cookie and the CSRF token.
#[derive(Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

async fn login(server: &Server, email: &str, password: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = server
        .http
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

async fn session(server: &Server, email: &str, password: &str) -> Session {
    let (status, headers, body) = login(server, email, password).await;
    assert_eq!(status, 200, "{body}");
    let set_cookie = headers["set-cookie"].to_str().unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    Session { cookie, csrf: body["csrf_token"].as_str().unwrap().to_owned() }
}

async fn send(server: &Server, method: Method, path: &str, session: &Session, csrf: bool, body: Value) -> (u16, Value) {
    let mut req = server.http.request(method, server.url(path)).header("cookie", &session.cookie).json(&body);
    if csrf {
        req = req.header("x-csrf-token", &session.csrf);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn admin_post(server: &Server, path: &str, body: Value) -> Value {
    let r = server.http.post(server.url(path)).bearer_auth(ADMIN).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

#[tokio::test]
async fn first_start_makes_an_owner_whose_one_time_password_must_be_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (server, password) = Server::start_first_time(dir.path()).await;
    assert!(password.len() >= 12, "{password}");

    let (status, headers, body) = login(&server, "admin@localhost", &password).await;
    assert_eq!(status, 200, "{body}");
    let set_cookie = headers["set-cookie"].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "no TLS here: {set_cookie}");
    assert_eq!(body["user"]["is_owner"], true);
    assert_eq!(body["user"]["must_change_password"], true);
    let owner = Session {
        cookie: set_cookie.split(';').next().unwrap().to_owned(),
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
    };

    // Only the password can be changed until it is.
    let (status, body) = send(&server, Method::GET, "/api/v1/projects", &owner, false, Value::Null).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("password_change_required")));
    let change = json!({ "current_password": password, "new_password": "the owner's own password" });
    let (status, body) = send(&server, Method::POST, "/api/v1/auth/password", &owner, false, change.clone()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("csrf_failed")), "no CSRF token");
    let wrong = json!({ "current_password": "not it at all", "new_password": "the owner's own password" });
    let (status, body) = send(&server, Method::POST, "/api/v1/auth/password", &owner, true, wrong).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("current_password")));
    let (status, _) = send(&server, Method::POST, "/api/v1/auth/password", &owner, true, change).await;
    assert_eq!(status, 204);

    // Now the owner administers the organization.
    let (status, body) = send(&server, Method::POST, "/api/v1/projects", &owner, true, json!({ "name": "shop" })).await;
    assert_eq!(status, 201, "{body}");
    let project = body["id"].as_str().unwrap().to_owned();
    let (status, body) = send(&server, Method::GET, "/api/v1/auth/session", &owner, false, Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(body["projects"], json!([{ "project_id": project, "role": "admin" }]));
    assert_eq!(body["user"]["must_change_password"], false);

    // The one-time password is spent; logout ends the session.
    assert_eq!(login(&server, "admin@localhost", &password).await.0, 401);
    let (status, _) = send(&server, Method::POST, "/api/v1/auth/logout", &owner, true, Value::Null).await;
    assert_eq!(status, 204);
    let (status, _) = send(&server, Method::GET, "/api/v1/projects", &owner, false, Value::Null).await;
    assert_eq!(status, 401, "a revoked session authenticates nothing");
    session(&server, "admin@localhost", "the owner's own password").await;
    drop(server);

    // A second start makes no second owner and prints no password.
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    session(&server, "admin@localhost", "the owner's own password").await;
}

#[tokio::test]
async fn repeated_failures_are_throttled_per_account_and_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    for (email, password) in [("ada@example.com", "ada's long password"), ("bob@example.com", "bob's long password")] {
        admin_post(&server, "/api/v1/users", json!({ "email": email, "password": password, "name": "x" })).await;
    }
    for _ in 0..5 {
        let (status, _, body) = login(&server, "ada@example.com", "a wrong password").await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("wrong_credentials")));
    }
    let (status, headers, body) = login(&server, " ADA@Example.com ", "ada's long password").await;
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("too_many_attempts")), "even the right password");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    // Another account from this address is not throttled yet...
    assert_eq!(login(&server, "bob@example.com", "bob's long password").await.0, 200);
    // ...until the address has failed 20 times, with any accounts.
    for i in 0..15 {
        assert_eq!(login(&server, &format!("nobody{i}@example.com"), "a wrong password").await.0, 401);
    }
    assert_eq!(login(&server, "bob@example.com", "bob's long password").await.0, 429);
    let metrics = server.http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"sightline_auth_refused_total{reason="throttled"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"sightline_auth_refused_total{reason="wrong_credentials"} 20"#), "{metrics}");
}

/// Who asks, in the order of each row's expected answers.
#[derive(Clone, Copy, Debug)]
enum Caller {
    Nobody,
    WrongSecret,
    IngestKey,
    Viewer,
    AdminOfOtherProject,
    Admin,
    AdminToken,
}

const CALLERS: [Caller; 7] = [
    Caller::Nobody,
    Caller::WrongSecret,
    Caller::IngestKey,
    Caller::Viewer,
    Caller::AdminOfOtherProject,
    Caller::Admin,
    Caller::AdminToken,
];

#[tokio::test]
async fn every_route_answers_every_caller_exactly_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    every_route_answers_every_caller_exactly(&Server::start(Mode::Embedded, dir.path(), "").await).await;
}

#[tokio::test]
async fn every_route_answers_every_caller_exactly_on_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let url = postgres_database();
    let server = Server::start_with(Mode::Embedded, dir.path(), "", &["--database-url", &url]).await;
    every_route_answers_every_caller_exactly(&server).await;
    drop(server);
    drop_postgres_database(&url);
}

async fn every_route_answers_every_caller_exactly(server: &Server) {
    let (a, ingest_key) = server.create_project("A").await;
    let (b, _) = server.create_project("B").await;
    let mut users = Vec::new();
    for (email, project, role) in
        [("viewer@example.com", &a, "viewer"), ("other@example.com", &b, "admin"), ("admin@example.com", &a, "admin")]
    {
        let body = json!({ "email": email, "password": "a long enough password", "name": email });
        let id = admin_post(server, "/api/v1/users", body).await["id"].as_str().unwrap().to_owned();
        let r = server
            .http
            .put(server.url(&format!("/api/v1/projects/{project}/members/{id}")))
            .bearer_auth(ADMIN)
            .json(&json!({ "role": role }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        users.push((id, session(server, email, "a long enough password").await));
    }
    let (viewer_id, viewer) = users[0].clone();
    let (other_id, other_admin) = users[1].clone();
    let admin = users[2].1.clone();
    let unique = AtomicU32::new(0);
    let map = r#"{"version":3,"sources":["a.js"],"names":[],"mappings":"AAAA"}"#;

    // method, path, body, the answer of each caller in CALLERS' order.
    let rows: Vec<(Method, String, Option<Value>, [u16; 7])> = vec![
        (Method::GET, "/api/v1/projects".into(), None, [401, 401, 401, 200, 200, 200, 200]),
        (Method::POST, "/api/v1/projects".into(), Some(json!({ "name": "x" })), [401, 401, 401, 403, 403, 403, 201]),
        (Method::GET, format!("/api/v1/projects/{a}"), None, [401, 401, 401, 200, 403, 200, 200]),
        (
            Method::PATCH,
            format!("/api/v1/projects/{a}"),
            Some(json!({ "name": "A" })),
            [401, 401, 401, 403, 403, 200, 200],
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{a}/keys"),
            Some(json!({ "name": "ci", "role": "viewer" })),
            [401, 401, 401, 403, 403, 201, 201],
        ),
        (Method::GET, format!("/api/v1/projects/{a}/members"), None, [401, 401, 401, 200, 403, 200, 200]),
        (Method::GET, format!("/api/v1/projects/{a}/keys"), None, [401, 401, 401, 403, 403, 200, 200]),
        (Method::DELETE, format!("/api/v1/projects/{a}/keys/key_missing"), None, [401, 401, 401, 403, 403, 404, 404]),
        (Method::GET, format!("/api/v1/projects/{a}/ingest-keys"), None, [401, 401, 401, 200, 403, 200, 200]),
        (Method::GET, format!("/api/v1/projects/{a}/segments"), None, [401, 401, 401, 200, 403, 200, 200]),
        (
            Method::POST,
            format!("/api/v1/projects/{a}/segments"),
            Some(json!({ "name": "mobile", "filters": { "device": "mobile" } })),
            [401, 401, 401, 403, 403, 201, 201],
        ),
        (
            Method::DELETE,
            format!("/api/v1/projects/{a}/segments/seg_missing"),
            None,
            [401, 401, 401, 403, 403, 404, 404],
        ),
        (Method::GET, format!("/api/v1/projects/{a}/channels"), None, [401, 401, 401, 200, 403, 200, 200]),
        (
            Method::POST,
            format!("/api/v1/projects/{a}/channels"),
            Some(
                json!({ "name": "hook", "kind": "webhook", "config": { "url": "http://127.0.0.1:9/h", "secret": "sixteen chars at least" } }),
            ),
            [401, 401, 401, 403, 403, 201, 201],
        ),
        (
            Method::PUT,
            format!("/api/v1/projects/{a}/channels/ch_missing"),
            Some(json!({ "name": "hook", "kind": "webhook", "config": {} })),
            [401, 401, 401, 403, 403, 404, 404],
        ),
        (
            Method::DELETE,
            format!("/api/v1/projects/{a}/channels/ch_missing"),
            None,
            [401, 401, 401, 403, 403, 404, 404],
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{a}/channels/ch_missing/test"),
            None,
            [401, 401, 401, 403, 403, 404, 404],
        ),
        (Method::GET, format!("/api/v1/projects/{a}/alerts"), None, [401, 401, 401, 200, 403, 200, 200]),
        (
            Method::POST,
            format!("/api/v1/projects/{a}/alerts"),
            Some(
                json!({ "name": "e", "metric": "error_count", "comparison": "gt", "threshold": 1, "window_s": 60, "channels": [] }),
            ),
            [401, 401, 401, 403, 403, 201, 201],
        ),
        (Method::GET, format!("/api/v1/projects/{a}/alerts/al_missing"), None, [401, 401, 401, 404, 403, 404, 404]),
        (
            Method::PUT,
            format!("/api/v1/projects/{a}/alerts/al_missing"),
            Some(
                json!({ "name": "e", "metric": "error_count", "comparison": "gt", "threshold": 1, "window_s": 60, "channels": [] }),
            ),
            [401, 401, 401, 403, 403, 404, 404],
        ),
        (Method::DELETE, format!("/api/v1/projects/{a}/alerts/al_missing"), None, [401, 401, 401, 403, 403, 404, 404]),
        (
            Method::GET,
            format!("/api/v1/projects/{a}/alerts/al_missing/history"),
            None,
            [401, 401, 401, 404, 403, 404, 404],
        ),
        (Method::GET, format!("/api/v1/projects/{a}/dashboards"), None, [401, 401, 401, 200, 403, 200, 200]),
        (
            Method::POST,
            format!("/api/v1/projects/{a}/dashboards"),
            Some(json!({ "name": "Launch", "widgets": [] })),
            [401, 401, 401, 403, 403, 201, 201],
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{a}/dashboards/dsh_missing"),
            None,
            [401, 401, 401, 404, 403, 404, 404],
        ),
        (
            Method::PUT,
            format!("/api/v1/projects/{a}/dashboards/dsh_missing"),
            Some(json!({ "name": "Launch", "widgets": [] })),
            [401, 401, 401, 403, 403, 404, 404],
        ),
        (
            Method::DELETE,
            format!("/api/v1/projects/{a}/dashboards/dsh_missing"),
            None,
            [401, 401, 401, 403, 403, 404, 404],
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{a}/ingest-keys"),
            Some(json!({ "name": "site" })),
            [401, 401, 401, 403, 403, 201, 201],
        ),
        (
            Method::PATCH,
            format!("/api/v1/projects/{a}/ingest-keys/ik_missing"),
            Some(json!({ "rate_limit_per_s": null })),
            [401, 401, 401, 403, 403, 404, 404],
        ),
        (
            Method::DELETE,
            format!("/api/v1/projects/{a}/ingest-keys/ik_missing"),
            None,
            [401, 401, 401, 403, 403, 404, 404],
        ),
        (
            Method::PUT,
            format!("/api/v1/projects/{a}/members/{viewer_id}"),
            Some(json!({ "role": "viewer" })),
            [401, 401, 401, 403, 403, 204, 204],
        ),
        (Method::DELETE, format!("/api/v1/projects/{a}/members/{other_id}"), None, [401, 401, 401, 403, 403, 404, 404]),
        (Method::POST, "/api/v1/users".into(), Some(json!({})), [401, 401, 401, 403, 201, 201, 201]),
        (Method::GET, "/api/v1/users".into(), None, [401, 401, 401, 403, 200, 200, 200]),
        (Method::GET, "/api/v1/auth/session".into(), None, [401, 401, 401, 200, 200, 200, 401]),
        (Method::GET, "/api/v1/auth/sessions".into(), None, [401, 401, 401, 200, 200, 200, 401]),
        (
            Method::POST,
            "/api/v1/auth/sessions/revoke".into(),
            Some(json!({ "password": "not the password" })),
            [401, 401, 401, 400, 400, 400, 401],
        ),
        (Method::GET, "/api/v1/audit".into(), None, [401, 401, 401, 403, 200, 200, 200]),
        (Method::GET, "/api/v1/audit/verify".into(), None, [401, 401, 401, 403, 403, 403, 200]),
        (
            Method::POST,
            format!("/api/v1/projects/{a}/sourcemaps?release=1&url=https://x.example/a.js"),
            Some(Value::String(map.into())),
            [401, 401, 401, 403, 403, 201, 201],
        ),
        (Method::GET, format!("/api/v1/projects/{a}/errors/0123"), None, [401, 401, 401, 404, 403, 404, 404]),
    ];
    let reads = [
        "pageviews",
        "errors",
        "error-rate",
        "events",
        "sessions/summary",
        "breakdown?dimension=browser",
        "visitors/current",
        "vitals?name=LCP",
        "vitals/pages?name=LCP",
        "live",
    ];
    let (c, _) = server.create_project("C, nobody's but the admin token's").await;
    let pageview = json!({ "events": [{ "type": "pageview", "url": "https://shop.example/", "anonymous_id": "v" }] });
    // Routes anyone may call, whatever they send; then the ones that end
    // a session, last.
    let open_and_last: Vec<(Method, String, Option<Value>, [u16; 7])> = vec![
        (Method::GET, "/healthz".into(), None, [200; 7]),
        (Method::GET, "/metrics".into(), None, [200; 7]),
        (Method::GET, "/api/v1/openapi.json".into(), None, [200; 7]),
        (Method::POST, format!("/api/v1/ingest?key={ingest_key}"), Some(pageview), [202; 7]),
        (
            Method::POST,
            "/api/v1/auth/login".into(),
            // A new email each time: failures for one account are throttled after five.
            Some(json!({ "email": "unique", "password": "not the password" })),
            [401; 7],
        ),
        (
            Method::POST,
            "/api/v1/auth/password".into(),
            Some(json!({ "current_password": "not the password", "new_password": "another long password" })),
            [401, 401, 401, 400, 400, 400, 401],
        ),
        (Method::DELETE, format!("/api/v1/projects/{c}"), None, [401, 401, 401, 403, 403, 403, 204]),
        (Method::POST, "/api/v1/auth/logout".into(), None, [401, 401, 401, 204, 204, 204, 401]),
    ];
    let rows = rows
        .into_iter()
        .chain(reads.iter().map(|read| {
            (Method::GET, format!("/api/v1/projects/{a}/{read}"), None, [401, 401, 401, 200, 403, 200, 200])
        }))
        .chain(open_and_last);

    for (method, path, body, expected) in rows {
        for (caller, expected) in CALLERS.into_iter().zip(expected) {
            let mut req = server.http.request(method.clone(), server.url(&path));
            let body = match &body {
                // Each user made is new.
                Some(Value::Object(o)) if o.get("email").is_some_and(|e| e == "unique") => {
                    let n = unique.fetch_add(1, Ordering::Relaxed);
                    Some(json!({ "email": format!("nobody{n}@example.com"), "password": o["password"] }))
                }
                Some(Value::Object(o)) if o.is_empty() => {
                    let n = unique.fetch_add(1, Ordering::Relaxed);
                    Some(
                        json!({ "email": format!("new{n}@example.com"), "password": "a long enough password", "name": "n" }),
                    )
                }
                other => other.clone(),
            };
            req = match body {
                Some(Value::String(raw)) => req.body(raw),
                Some(json) => req.json(&json),
                None => req,
            };
            req = match caller {
                Caller::Nobody => req,
                Caller::WrongSecret => req.bearer_auth("sk_000000000000000000000000000000000000000000000000"),
                Caller::IngestKey => req.bearer_auth(&ingest_key),
                Caller::AdminToken => req.bearer_auth(ADMIN),
                Caller::Viewer | Caller::AdminOfOtherProject | Caller::Admin => {
                    let s = match caller {
                        Caller::Viewer => &viewer,
                        Caller::AdminOfOtherProject => &other_admin,
                        _ => &admin,
                    };
                    req.header("cookie", &s.cookie).header("x-csrf-token", &s.csrf)
                }
            };
            let status = req.send().await.unwrap().status().as_u16();
            assert_eq!(status, expected, "{method} {path} as {caller:?}");
        }
    }

    // A cookie without the CSRF token changes nothing; with a bearer token
    // the cookie is not what authenticates, so no token is needed.
    let (status, body) = send(
        server,
        Method::POST,
        &format!("/api/v1/projects/{a}/keys"),
        &admin,
        false,
        json!({ "name": "k", "role": "viewer" }),
    )
    .await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("csrf_failed")));
    let stolen = Session { csrf: other_admin.csrf.clone(), ..admin.clone() };
    let (status, _) = send(
        server,
        Method::POST,
        &format!("/api/v1/projects/{a}/keys"),
        &stolen,
        true,
        json!({ "name": "k", "role": "viewer" }),
    )
    .await;
    assert_eq!(status, 403, "another session's token does not do");
    let r = server
        .http
        .post(server.url(&format!("/api/v1/projects/{a}/keys")))
        .header("cookie", &viewer.cookie)
        .bearer_auth(ADMIN)
        .json(&json!({ "name": "k", "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

async fn ingest_from(server: &Server, key: &str, origin: Option<&str>) -> (u16, Option<String>, Value) {
    let mut req = server
        .http
        .post(server.url(&format!("/api/v1/ingest?key={key}")))
        .json(&json!({ "events": [{ "type": "pageview", "url": "https://shop.example/", "anonymous_id": "v" }] }));
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    let r = req.send().await.unwrap();
    let allowed = r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), allowed, r.json().await.unwrap_or(Value::Null))
}

async fn preflight(server: &Server, query: &str, origin: &str) -> (u16, Option<String>) {
    let r = server
        .http
        .request(Method::OPTIONS, server.url(&format!("/api/v1/ingest{query}")))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    let allowed = r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), allowed)
}

#[tokio::test]
async fn ingest_accepts_only_listed_browser_origins_and_cors_answers_only_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;

    // No list yet: any origin, and CORS reflects it.
    let (status, allowed, _) = ingest_from(&server, &key, Some("https://anywhere.example")).await;
    assert_eq!((status, allowed.as_deref()), (202, Some("https://anywhere.example")));

    let patch = |body: Value| {
        server.http.patch(server.url(&format!("/api/v1/projects/{project}"))).bearer_auth(ADMIN).json(&body).send()
    };
    let r = patch(json!({ "allowed_origins": ["https://shop.example/path"] })).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "allowed_origins");
    let r = patch(json!({ "allowed_origins": ["https://Shop.Example", "http://localhost:5173"] })).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["allowed_origins"], json!(["http://localhost:5173", "https://shop.example"]));
    assert_eq!(body["name"], "shop", "a patch changes only what it names");

    let (status, allowed, _) = ingest_from(&server, &key, Some("https://shop.example")).await;
    assert_eq!((status, allowed.as_deref()), (202, Some("https://shop.example")));
    let (status, allowed, body) = ingest_from(&server, &key, Some("https://evil.example")).await;
    assert_eq!((status, allowed, body["error"]["code"].as_str()), (403, None, Some("origin_not_allowed")));
    assert_eq!(body["error"]["field"], "origin");
    let (status, _, _) = ingest_from(&server, &key, None).await;
    assert_eq!(status, 202, "requests without an Origin are not a browser's");

    assert_eq!(
        preflight(&server, &format!("?key={key}"), "https://shop.example").await,
        (204, Some("https://shop.example".into()))
    );
    assert_eq!(preflight(&server, &format!("?key={key}"), "https://evil.example").await, (403, None));
    // Without a key the preflight cannot name the project; the request is checked.
    assert_eq!(preflight(&server, "", "https://evil.example").await.0, 204);

    let metrics = server.http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"sightline_ingest_requests_refused_total{reason="origin_not_allowed"} 2"#), "{metrics}");

    // Emptying the list opens ingest again.
    assert_eq!(patch(json!({ "allowed_origins": [] })).await.unwrap().status(), 200);
    assert_eq!(ingest_from(&server, &key, Some("https://evil.example")).await.0, 202);
    let r = patch(json!({ "name": "  store  " })).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "store");
}

#[tokio::test]
async fn every_kind_of_change_and_login_is_audited_and_tampering_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, _) = server.create_project("shop").await;
    let body = json!({ "email": "ada@example.com", "password": "ada's long password", "name": "Ada" });
    let ada = admin_post(&server, "/api/v1/users", body).await["id"].as_str().unwrap().to_owned();
    let r = server
        .http
        .put(server.url(&format!("/api/v1/projects/{project}/members/{ada}")))
        .bearer_auth(ADMIN)
        .json(&json!({ "role": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(login(&server, "Ada@example.com", "not the password").await.0, 401);
    let ada_session = session(&server, "ada@example.com", "ada's long password").await;
    let changes = [
        (Method::PATCH, format!("/api/v1/projects/{project}"), json!({ "allowed_origins": ["https://shop.example"] })),
        (Method::POST, format!("/api/v1/projects/{project}/keys"), json!({ "name": "ci", "role": "viewer" })),
        (
            Method::POST,
            "/api/v1/auth/password".to_owned(),
            json!({ "current_password": "ada's long password", "new_password": "ada's newer password" }),
        ),
        (Method::DELETE, format!("/api/v1/projects/{project}/members/{ada}"), Value::Null),
        (Method::POST, "/api/v1/auth/logout".to_owned(), Value::Null),
    ];
    for (method, path, body) in changes {
        let (status, answer) = send(&server, method.clone(), &path, &ada_session, true, body).await;
        assert!(status < 300, "{method} {path}: {status} {answer}");
    }
    let map = r#"{"version":3,"sources":["a.js"],"names":[],"mappings":"AAAA"}"#;
    let r = server
        .http
        .post(server.url(&format!("/api/v1/projects/{project}/sourcemaps?release=1&url=https://x.example/a.js")))
        .bearer_auth(ADMIN)
        .body(map)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let audit =
        |query: &'static str| server.http.get(server.url(&format!("/api/v1/audit{query}"))).bearer_auth(ADMIN).send();
    let page: Value = audit("").await.unwrap().json().await.unwrap();
    let entries = page["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "sourcemap_uploaded",
            "logout",
            "member_removed",
            "password_changed",
            "key_created",
            "project_updated",
            "login",
            "login_failed",
            "member_set",
            "user_created",
            "project_created",
        ],
        "newest first"
    );
    let by_action = |action: &str| entries.iter().find(|e| e["action"] == action).unwrap();
    assert_eq!(by_action("project_created")["actor"], "admin-token");
    assert_eq!(by_action("project_updated")["actor"], ada.as_str());
    assert_eq!(by_action("project_updated")["object"], format!("project:{project}"));
    assert_eq!(by_action("member_removed")["project_id"], project.as_str());
    assert_eq!(by_action("login_failed")["actor"], "ada@example.com");
    assert!(entries.iter().all(|e| e["source_ip"] == "127.0.0.1" && e["at"].as_i64().unwrap() > 0));
    assert!(!page.to_string().contains("newer password") && !page.to_string().contains("sk_"), "no secrets");
    let older: Value = audit("?before=3&limit=1").await.unwrap().json().await.unwrap();
    assert_eq!(older["entries"][0]["action"], "user_created");

    // The chain verifies.
    let check: Value = audit("/verify").await.unwrap().json().await.unwrap();
    assert_eq!((check["entries"].as_i64(), check["broken_at"].is_null()), (Some(11), true), "{check}");

    // An entry edited in the database breaks the chain there.
    sqlx::any::install_default_drivers();
    let db = format!("sqlite://{}", dir.path().join("sightline.db").display());
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'someone else' WHERE seq = 4").execute(&pool).await.unwrap();
    pool.close().await;
    let check: Value = audit("/verify").await.unwrap().json().await.unwrap();
    assert_eq!(check["broken_at"], 4, "{check}");
}

#[tokio::test]
async fn ingest_keys_rotate_and_are_rate_limited_and_secret_keys_are_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, first_key) = server.create_project("shop").await;
    let (other, _) = server.create_project("other").await;
    let admin = |method: Method, path: String, body: Value| {
        let req = server.http.request(method, server.url(&path)).bearer_auth(ADMIN);
        let req = if body.is_null() { req } else { req.json(&body) };
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let keys_path = format!("/api/v1/projects/{project}/ingest-keys");

    // A second key with a limit of 1 event/s: a full batch fits its burst,
    // the next event waits.
    let (status, limited) =
        admin(Method::POST, keys_path.clone(), json!({ "name": "beta", "rate_limit_per_s": 1 })).await;
    assert_eq!(status, 201, "{limited}");
    let limited_key = limited["key"].as_str().unwrap().to_owned();
    let batch: Vec<Value> = (0..1000)
        .map(|i| json!({ "type": "pageview", "url": "https://shop.example/", "anonymous_id": format!("v{i}") }))
        .collect();
    server.ingest(&limited_key, json!(batch)).await;
    let body = serde_json::to_vec(&json!({ "events": [batch[0]] })).unwrap();
    let r = server
        .http
        .post(server.url("/api/v1/ingest"))
        .header("x-sightline-key", &limited_key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        (answer["error"]["code"].as_str(), answer["error"]["field"].as_str()),
        (Some("key_rate_limited"), Some("key"))
    );
    server.ingest(&first_key, json!([batch[0]])).await; // other keys are not limited
    let metrics = server.http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"sightline_ingest_requests_refused_total{reason="key_rate_limited"} 1"#), "{metrics}");

    // Last use is recorded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, list) = admin(Method::GET, keys_path.clone(), Value::Null).await;
        if list["keys"].as_array().unwrap().iter().all(|k| k["last_used_at"].is_i64()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "last use not recorded: {list}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Rotation: revoke the first key; it stops working at once.
    let (_, list) = admin(Method::GET, keys_path.clone(), Value::Null).await;
    let first_id = list["keys"][0]["id"].as_str().unwrap().to_owned();
    let limited_id = limited["id"].as_str().unwrap().to_owned();
    assert_eq!(admin(Method::DELETE, format!("{keys_path}/{first_id}"), Value::Null).await.0, 204);
    let body = serde_json::to_vec(&json!({ "events": [batch[0]] })).unwrap();
    let (status, answer) = server.ingest_raw(&first_key, body, &[("Content-Type", "application/json")]).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("invalid_key")));
    let (_, shown) = admin(Method::GET, format!("/api/v1/projects/{project}"), Value::Null).await;
    assert_eq!(shown["ingest_key"], limited_key.as_str(), "the project shows its oldest active key");
    let (status, answer) = admin(Method::DELETE, format!("{keys_path}/{limited_id}"), Value::Null).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("key_id")), "the last active key stays");
    assert_eq!(
        admin(Method::DELETE, format!("/api/v1/projects/{other}/ingest-keys/{limited_id}"), Value::Null).await.0,
        404
    );
    // Lifting the limit applies at once.
    assert_eq!(
        admin(Method::PATCH, format!("{keys_path}/{limited_id}"), json!({ "rate_limit_per_s": null })).await.0,
        204
    );
    server.ingest(&limited_key, json!([batch[0]])).await;

    // Secret keys: listed without secrets, revoked per project.
    let (_, created) =
        admin(Method::POST, format!("/api/v1/projects/{project}/keys"), json!({ "name": "ci", "role": "viewer" }))
            .await;
    let (secret, secret_id) =
        (created["secret"].as_str().unwrap().to_owned(), created["id"].as_str().unwrap().to_owned());
    let read =
        || server.http.get(server.url(&format!("/api/v1/projects/{project}/pageviews"))).bearer_auth(&secret).send();
    assert_eq!(read().await.unwrap().status(), 200);
    let (_, list) = admin(Method::GET, format!("/api/v1/projects/{project}/keys"), Value::Null).await;
    assert_eq!(list["keys"][0]["id"], secret_id.as_str());
    assert!(list["keys"][0]["last_used_at"].is_i64());
    assert!(!list.to_string().contains(&secret[3..]), "no secret is listed");
    assert_eq!(admin(Method::DELETE, format!("/api/v1/projects/{other}/keys/{secret_id}"), Value::Null).await.0, 404);
    assert_eq!(admin(Method::DELETE, format!("/api/v1/projects/{project}/keys/{secret_id}"), Value::Null).await.0, 204);
    assert_eq!(read().await.unwrap().status(), 401);

    let (_, audit) = admin(Method::GET, "/api/v1/audit".to_owned(), Value::Null).await;
    let actions: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in ["ingest_key_created", "ingest_key_revoked", "ingest_key_updated", "key_created", "key_revoked"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}

#[tokio::test]
async fn a_deleted_project_takes_its_keys_members_maps_and_events_and_stays_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (gone, gone_key) = server.create_project("gone").await;
    let (kept, kept_key) = server.create_project("kept").await;
    let now = now_ms();
    let events = |n: usize| -> Value {
        (0..n).map(|i| json!({ "type": "pageview", "url": "https://shop.example/", "anonymous_id": format!("v{i}"), "ts": now - 1000 })).collect()
    };
    server.ingest(&gone_key, events(5)).await;
    server.ingest(&kept_key, events(3)).await;
    assert_eq!(server.totals_reaching(&gone, 5, std::time::Duration::from_secs(5)).await.0, 5);
    assert_eq!(server.totals_reaching(&kept, 3, std::time::Duration::from_secs(5)).await.0, 3);
    let map = r#"{"version":3,"sources":["a.js"],"names":[],"mappings":"AAAA"}"#;
    let upload = server
        .http
        .post(server.url(&format!("/api/v1/projects/{gone}/sourcemaps?release=1&url=https://x.example/a.js")))
        .bearer_auth(ADMIN)
        .body(map)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let body = json!({ "email": "m@example.com", "password": "a long enough password", "name": "m" });
    let member = admin_post(&server, "/api/v1/users", body).await["id"].as_str().unwrap().to_owned();
    for (project, role) in [(&gone, "viewer"), (&kept, "admin")] {
        let r = server
            .http
            .put(server.url(&format!("/api/v1/projects/{project}/members/{member}")))
            .bearer_auth(ADMIN)
            .json(&json!({ "role": role }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let m = session(&server, "m@example.com", "a long enough password").await;
    let delete = format!("/api/v1/projects/{gone}");
    assert_eq!(send(&server, Method::DELETE, &delete, &m, true, Value::Null).await.0, 403, "a viewer of it");
    assert_eq!(send(&server, Method::DELETE, &delete, &m, false, Value::Null).await.0, 403, "no CSRF token");
    let r = server.http.delete(server.url(&delete)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = server.http.delete(server.url(&delete)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 404, "gone already");

    let gone_state = |server: &Server| {
        let (http, url) = (server.http.clone(), server.url(&format!("/api/v1/projects/{gone}")));
        async move { http.get(url).bearer_auth(ADMIN).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(gone_state(&server).await, 404);
    let body = serde_json::to_vec(&json!({ "events": events(1) })).unwrap();
    let (status, _) = server.ingest_raw(&gone_key, body, &[("Content-Type", "application/json")]).await;
    assert_eq!(status, 401, "its ingest key is gone");
    assert_eq!(
        server.totals_reaching(&gone, 1, std::time::Duration::from_millis(200)).await,
        (0, 0),
        "its events are gone"
    );
    let (_, after) = send(&server, Method::GET, "/api/v1/auth/session", &m, false, Value::Null).await;
    assert_eq!(after["projects"], json!([{ "project_id": kept, "role": "admin" }]), "its memberships are gone");
    let maps = dir.path().join("archive").join("sourcemaps");
    let remaining = std::fs::read_dir(&maps).map(|d| d.count()).unwrap_or(0);
    assert_eq!(remaining, 0, "its source maps are gone");
    server.stop();

    // A restart does not bring it back; the other project is whole.
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    assert_eq!(server.totals_reaching(&kept, 3, std::time::Duration::from_secs(5)).await, (3, 3));
    assert_eq!(server.totals_reaching(&gone, 1, std::time::Duration::from_millis(200)).await, (0, 0));
    assert_eq!(gone_state(&server).await, 404);
    let audit: Value = server
        .http
        .get(server.url("/api/v1/audit?limit=1"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["entries"][0]["action"], "project_deleted");
}

#[tokio::test]
async fn users_see_their_sessions_and_end_any_or_all_after_entering_the_password_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    for email in ["ada@example.com", "bob@example.com"] {
        admin_post(
            &server,
            "/api/v1/users",
            json!({ "email": email, "password": "a long enough password", "name": "x" }),
        )
        .await;
    }
    let laptop = session(&server, "ada@example.com", "a long enough password").await;
    let phone = session(&server, "ada@example.com", "a long enough password").await;
    let bob = session(&server, "bob@example.com", "a long enough password").await;
    let (status, list) = send(&server, Method::GET, "/api/v1/auth/sessions", &laptop, false, Value::Null).await;
    assert_eq!(status, 200);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{list}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let phone_id = sessions.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    let (_, bobs) = send(&server, Method::GET, "/api/v1/auth/sessions", &bob, false, Value::Null).await;
    let bob_id = bobs["sessions"][0]["id"].as_str().unwrap().to_owned();

    let revoke = |password: &str, session_id: Option<&str>| json!({ "password": password, "session_id": session_id });
    let path = "/api/v1/auth/sessions/revoke";
    let (status, body) =
        send(&server, Method::POST, path, &laptop, true, revoke("wrong password!", Some(&phone_id))).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("password")));
    let (status, _) =
        send(&server, Method::POST, path, &laptop, true, revoke("a long enough password", Some(&bob_id))).await;
    assert_eq!(status, 404, "another user's session is not yours to end");
    let (status, _) =
        send(&server, Method::POST, path, &laptop, true, revoke("a long enough password", Some(&phone_id))).await;
    assert_eq!(status, 204);
    assert_eq!(send(&server, Method::GET, "/api/v1/auth/session", &phone, false, Value::Null).await.0, 401);
    assert_eq!(send(&server, Method::GET, "/api/v1/auth/session", &bob, false, Value::Null).await.0, 200);

    let tablet = session(&server, "ada@example.com", "a long enough password").await;
    let (status, _) = send(&server, Method::POST, path, &laptop, true, revoke("a long enough password", None)).await;
    assert_eq!(status, 204);
    assert_eq!(send(&server, Method::GET, "/api/v1/auth/session", &tablet, false, Value::Null).await.0, 401);
    assert_eq!(
        send(&server, Method::GET, "/api/v1/auth/session", &laptop, false, Value::Null).await.0,
        200,
        "this one stays"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_throttled_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(Mode::Embedded, dir.path(), "", &["--trusted-proxy", "127.0.0.1"]).await;
    admin_post(
        &server,
        "/api/v1/users",
        json!({ "email": "bob@example.com", "password": "bob's long password", "name": "b" }),
    )
    .await;
    let login_via = |client: &'static str, email: String, password: &'static str| {
        server
            .http
            .post(server.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("198.51.100.9, {client}"))
            .json(&json!({ "email": email, "password": password }))
            .send()
    };
    for i in 0..20 {
        let r = login_via("203.0.113.1", format!("nobody{i}@example.com"), "a wrong password").await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = login_via("203.0.113.1", "bob@example.com".into(), "bob's long password").await.unwrap();
    assert_eq!(r.status(), 429, "the forwarded client is throttled");
    let r = login_via("203.0.113.2", "bob@example.com".into(), "bob's long password").await.unwrap();
    assert_eq!(r.status(), 200, "another client behind the same proxy is not");
    let audit: Value =
        server.http.get(server.url("/api/v1/audit")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries[0]["action"], "login");
    assert_eq!(entries[0]["source_ip"], "203.0.113.2");
    assert_eq!(entries[2]["source_ip"], "203.0.113.1");
}
