//! Alerts end to end: channels and rules through the API, a rule that
//! fires within a second of the event that crosses it and resolves when its
//! window empties, each once, signed webhook deliveries to a local
//! receiver, retries across a restart, the test endpoint, and the refusals.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

mod common;

use common::*;

const SECRET: &str = "a webhook secret of some length";

/// What the receiver saw, and the statuses it answers with before 200s.
#[derive(Default)]
struct Receiver {
    requests: Mutex<Vec<(HeaderMap, Value, Instant)>>,
    fail_first: Mutex<Vec<u16>>,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let signature = headers.get("x-sightline-signature").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let signed = signature == format!("sha256={}", hmac_sha256_hex(SECRET.as_bytes(), &body));
    r.requests.lock().unwrap().push((headers, json, Instant::now()));
    if !signed {
        return (StatusCode::UNAUTHORIZED, [("Retry-After", "0")], "bad signature");
    }
    let status = { r.fail_first.lock().unwrap().pop() };
    match status {
        Some(status) => (StatusCode::from_u16(status).unwrap(), [("Retry-After", "1")], "not now"),
        None => (StatusCode::OK, [("Retry-After", "0")], "ok"),
    }
}

/// HMAC-SHA256 (RFC 2104), written out so the test does not trust the
/// server's own signing code.
fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    let outer = Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

async fn start_receiver() -> (String, Arc<Receiver>) {
    let receiver = Arc::new(Receiver::default());
    let app = Router::new().route("/hook", post(receive)).route("/gone", post(gone)).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, receiver)
}

async fn gone() -> impl IntoResponse {
    (StatusCode::UNAUTHORIZED, "token revoked")
}

async fn send(server: &Server, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = server.http.request(method, server.url(path)).bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn wait_for<T>(within: Duration, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn error_event(i: usize) -> Value {
    json!({ "type": "error", "url": "https://shop.example/cart", "anonymous_id": format!("u{i}"),
            "error_type": "TypeError", "message": "boom", "stack": "TypeError: boom\n    at f (https://shop.example/a.js:1:1)" })
}

fn states(receiver: &Receiver) -> Vec<String> {
    let requests = receiver.requests.lock().unwrap();
    requests.iter().map(|(_, body, _)| body["state"].as_str().unwrap_or("?").to_owned()).collect()
}

#[tokio::test]
async fn a_rule_fires_within_a_second_and_resolves_once_with_signed_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    let (receiver_url, receiver) = start_receiver().await;

    let channels = format!("/api/v1/projects/{project}/channels");
    let hook = json!({ "name": "Ops hook", "kind": "webhook", "config": { "url": format!("{receiver_url}/hook"), "secret": SECRET } });
    let (status, channel) = send(&server, reqwest::Method::POST, &channels, Some(hook)).await;
    assert_eq!(status, 201, "{channel}");
    let channel_id = channel["id"].as_str().unwrap().to_owned();
    assert!(!channel.to_string().contains(SECRET), "the secret never comes back: {channel}");
    assert_eq!(channel["secrets"], json!(["secret"]));
    let (_, listed) = send(&server, reqwest::Method::GET, &channels, None).await;
    assert!(!listed.to_string().contains(SECRET), "{listed}");

    // Refused, naming the field.
    let alerts = format!("/api/v1/projects/{project}/alerts");
    let rule = |window_s: i64, channels: Value| {
        json!({ "name": "Cart errors", "metric": "error_count", "comparison": "gt", "threshold": 2,
                "window_s": window_s, "channels": channels, "filters": { "path": "/cart" } })
    };
    let bad = [
        (rule(0, json!([channel_id])), "window_s"),
        (rule(4, json!(["ch_nothing"])), "channels[0]"),
        (
            json!({ "name": "LCP", "metric": "vital_p75", "comparison": "gt", "threshold": 2500, "window_s": 60, "channels": [] }),
            "vital",
        ),
        (
            json!({ "name": "x", "metric": "error_count", "comparison": "gte", "threshold": 1, "window_s": 60, "channels": [] }),
            "body",
        ),
    ];
    for (body, field) in bad {
        let (status, answer) = send(&server, reqwest::Method::POST, &alerts, Some(body)).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (400, Some(field)), "{answer}");
    }
    let bad_hook = json!({ "name": "x", "kind": "webhook", "config": { "url": "ftp://x/", "secret": SECRET } });
    let (status, answer) = send(&server, reqwest::Method::POST, &channels, Some(bad_hook)).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("config.url")), "{answer}");

    let (status, made) = send(&server, reqwest::Method::POST, &alerts, Some(rule(4, json!([channel_id])))).await;
    assert_eq!(status, 201, "{made}");
    let alert_id = made["id"].as_str().unwrap().to_owned();

    // Two errors: not over 2. One on another path: filtered out.
    let mut other = error_event(9);
    other["url"] = json!("https://shop.example/home");
    server.ingest(&key, json!([error_event(0), error_event(1), other])).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(receiver.requests.lock().unwrap().is_empty(), "2 is not over 2");
    // The third crosses it: delivered within a second of the 202.
    server.ingest(&key, json!([error_event(2)])).await;
    let accepted = Instant::now();
    let fired_at = wait_for(Duration::from_secs(5), "the firing", async || {
        receiver.requests.lock().unwrap().first().map(|(_, _, at)| *at)
    })
    .await;
    let latency = fired_at - accepted;
    assert!(latency < Duration::from_secs(1), "fired {latency:?} after the 202");

    let (headers, firing, _) = receiver.requests.lock().unwrap()[0].clone();
    assert_eq!(firing["state"], "firing");
    assert_eq!(firing["alert"], json!({ "id": alert_id, "name": "Cart errors", "metric": "error_count" }));
    assert_eq!(firing["project"], json!({ "id": project, "name": "shop" }));
    assert_eq!((firing["value"].as_f64(), firing["threshold"].as_f64()), (Some(3.0), Some(2.0)));
    assert!(firing["at"].as_i64().unwrap() > 0 && firing["link"].as_str().unwrap().ends_with("/errors"), "{firing}");
    assert!(headers.contains_key("x-sightline-delivery"));
    let (_, shown) = send(&server, reqwest::Method::GET, &format!("{alerts}/{alert_id}"), None).await;
    assert_eq!((shown["status"].as_str(), shown["value"].as_f64()), (Some("firing"), Some(3.0)), "{shown}");

    // The 4 s window empties by itself: resolved, once.
    let resolved = wait_for(Duration::from_secs(10), "the resolve", async || {
        let requests = receiver.requests.lock().unwrap();
        requests.get(1).map(|(_, body, _)| body.clone())
    })
    .await;
    // Resolved once the first two leave the window (the third may leave with
    // them, in the same received second).
    assert_eq!(resolved["state"], "resolved");
    assert!(resolved["value"].as_f64().unwrap() <= 1.0, "{resolved}");
    assert_eq!(resolved["incident_id"], firing["incident_id"], "one incident");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(states(&receiver), ["firing", "resolved"], "each transition delivered once");

    let (_, history) = send(&server, reqwest::Method::GET, &format!("{alerts}/{alert_id}/history"), None).await;
    let delivered: Vec<(&str, &str)> = history["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["state"].as_str().unwrap(), d["status"].as_str().unwrap()))
        .collect();
    assert_eq!(delivered, [("resolved", "delivered"), ("firing", "delivered")], "{history}");
    assert_eq!(history["incidents"][0]["opened_value"], 3.0);

    // The test endpoint sends now and says how it went.
    let (status, tested) = send(&server, reqwest::Method::POST, &format!("{channels}/{channel_id}/test"), None).await;
    assert_eq!(
        (status, tested["status"].as_str(), tested["last_status"].as_i64()),
        (200, Some("delivered"), Some(200)),
        "{tested}"
    );
    let test_body = receiver.requests.lock().unwrap().last().unwrap().1.clone();
    assert_eq!((test_body["test"].as_bool(), test_body["state"].as_str()), (Some(true), Some("firing")));

    // A 4xx other than 408/429 stops and shows on the channel.
    let revoked = json!({ "name": "Revoked", "kind": "webhook", "config": { "url": format!("{receiver_url}/gone"), "secret": SECRET } });
    let (_, revoked) = send(&server, reqwest::Method::POST, &channels, Some(revoked)).await;
    let revoked_id = revoked["id"].as_str().unwrap();
    let (_, tested) = send(&server, reqwest::Method::POST, &format!("{channels}/{revoked_id}/test"), None).await;
    assert_eq!((tested["status"].as_str(), tested["last_status"].as_i64()), (Some("failed"), Some(401)), "{tested}");
    let (_, listed) = send(&server, reqwest::Method::GET, &channels, None).await;
    let shown = listed["channels"].as_array().unwrap().iter().find(|c| c["id"] == revoked_id).unwrap().clone();
    assert!(shown["last_error"].as_str().unwrap().contains("401"), "{shown}");

    let audit: Value =
        server.http.get(server.url("/api/v1/audit")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    let actions: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in ["channel_created", "alert_created", "channel_tested"] {
        assert!(actions.contains(&action), "{action} audited: {actions:?}");
    }
}

#[tokio::test]
async fn a_delivery_pending_a_retry_is_delivered_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    let (receiver_url, receiver) = start_receiver().await;
    // The receiver is down for the first two attempts.
    receiver.fail_first.lock().unwrap().extend([503, 503]);
    let hook = json!({ "name": "Ops hook", "kind": "webhook", "config": { "url": format!("{receiver_url}/hook"), "secret": SECRET } });
    let (_, channel) =
        send(&server, reqwest::Method::POST, &format!("/api/v1/projects/{project}/channels"), Some(hook)).await;
    let rule = json!({ "name": "Any error", "metric": "error_count", "comparison": "gt", "threshold": 0, "window_s": 3600,
                       "channels": [channel["id"]] });
    let (status, made) =
        send(&server, reqwest::Method::POST, &format!("/api/v1/projects/{project}/alerts"), Some(rule)).await;
    assert_eq!(status, 201, "{made}");
    server.ingest(&key, json!([error_event(0)])).await;
    wait_for(Duration::from_secs(5), "the first attempt", async || {
        (!receiver.requests.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    // Stopped hard while the delivery waits for its retry.
    server.kill9();
    let seen_before_restart = receiver.requests.lock().unwrap().len();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let delivered = wait_for(Duration::from_secs(15), "the delivery after the restart", async || {
        let requests = receiver.requests.lock().unwrap();
        (requests.len() >= 3).then(|| requests[2].1.clone())
    })
    .await;
    assert_eq!(delivered["state"], "firing");
    assert!(seen_before_restart < 3, "the delivery was still pending at the restart");
    // The restart did not fire the open incident again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(states(&receiver), ["firing", "firing", "firing"], "three attempts at one delivery, no new one");
    let history = format!("/api/v1/projects/{project}/alerts/{}/history", made["id"].as_str().unwrap());
    let (_, history) = send(&server, reqwest::Method::GET, &history, None).await;
    assert_eq!(history["deliveries"].as_array().unwrap().len(), 1, "{history}");
    assert_eq!(history["deliveries"][0]["status"], "delivered", "{history}");
    // Three requests reached the receiver; the kill may land before the
    // first attempt was recorded, and a lost record is an attempt made again.
    let attempts = history["deliveries"][0]["attempts"].as_i64().unwrap();
    assert!((2..=3).contains(&attempts), "{history}");
}

#[tokio::test]
async fn a_new_error_group_fires_a_rule_and_a_repeat_of_it_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    let (receiver_url, receiver) = start_receiver().await;
    let hook = json!({ "name": "Ops hook", "kind": "webhook", "config": { "url": format!("{receiver_url}/hook"), "secret": SECRET } });
    let (_, channel) =
        send(&server, reqwest::Method::POST, &format!("/api/v1/projects/{project}/channels"), Some(hook)).await;
    let alerts = format!("/api/v1/projects/{project}/alerts");
    let filtered = json!({ "name": "New", "metric": "new_error_group", "comparison": "gt", "threshold": 1, "window_s": 3600,
                           "channels": [channel["id"]], "filters": { "path": "/x" } });
    let (status, answer) = send(&server, reqwest::Method::POST, &alerts, Some(filtered)).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("filters")), "{answer}");
    // More than one new group within the hour.
    let rule = json!({ "name": "New groups", "metric": "new_error_group", "comparison": "gt", "threshold": 1,
                       "window_s": 3600, "channels": [channel["id"]] });
    let (status, made) = send(&server, reqwest::Method::POST, &alerts, Some(rule)).await;
    assert_eq!(status, 201, "{made}");
    // One group, many times: one new group.
    server.ingest(&key, json!([error_event(0), error_event(1), error_event(2)])).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, shown) =
        send(&server, reqwest::Method::GET, &format!("{alerts}/{}", made["id"].as_str().unwrap()), None).await;
    assert_eq!((shown["value"].as_f64(), shown["status"].as_str()), (Some(1.0), Some("ok")), "{shown}");
    assert!(receiver.requests.lock().unwrap().is_empty());
    // A second group: fires.
    let mut other = error_event(3);
    other["error_type"] = json!("RangeError");
    other["stack"] = json!("RangeError: far\n    at g (https://shop.example/b.js:2:2)");
    server.ingest(&key, json!([other])).await;
    let firing = wait_for(Duration::from_secs(5), "the firing", async || {
        receiver.requests.lock().unwrap().first().map(|(_, body, _)| body.clone())
    })
    .await;
    assert_eq!((firing["state"].as_str(), firing["value"].as_f64()), (Some("firing"), Some(2.0)), "{firing}");
    assert_eq!(firing["alert"]["metric"], "new_error_group");
}

#[tokio::test]
async fn anomaly_scores_flag_an_injected_spike_and_an_anomaly_rule_fires_on_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    let (receiver_url, receiver) = start_receiver().await;
    const HOUR: i64 = 3_600_000;
    let this_hour = now_ms() / HOUR * HOUR;
    // Two days of page views, 20 to 26 an hour; five hours ago, 200.
    let spike = this_hour - 5 * HOUR;
    let mut pageviews = Vec::new();
    for back in 1..=48 {
        let hour = this_hour - back * HOUR;
        let n = if hour == spike { 200 } else { 20 + (back * 5) % 7 };
        for i in 0..n {
            pageviews.push(json!({ "type": "pageview", "url": "https://shop.example/", "anonymous_id": format!("v{i}"), "ts": hour + 60_000 + i }));
        }
    }
    for batch in pageviews.chunks(1000) {
        server.ingest(&key, Value::Array(batch.to_vec())).await;
    }
    let anomalies = format!("/api/v1/projects/{project}/anomalies?series=pageviews");
    let answer = wait_for(Duration::from_secs(10), "the scored hours", async || {
        let (_, answer) = send(&server, reqwest::Method::GET, &anomalies, None).await;
        (answer["points"].as_array().map_or(0, Vec::len) >= 40).then_some(answer)
    })
    .await;
    let points = answer["points"].as_array().unwrap();
    let at = |t: i64| points.iter().find(|p| p["t"] == t).unwrap().clone();
    let spiked = at(spike);
    assert_eq!(spiked["value"], 200.0);
    assert!(spiked["score"].as_f64().unwrap() > 10.0, "{spiked}");
    let ordinary =
        points.iter().filter(|p| p["t"] != spike).map(|p| p["score"].as_f64().unwrap().abs()).fold(0.0, f64::max);
    assert!(ordinary < 4.0, "no ordinary hour looks anomalous: {ordinary} in {answer}");
    let (status, bad) =
        send(&server, reqwest::Method::GET, &format!("/api/v1/projects/{project}/anomalies?series=vital_p75"), None)
            .await;
    assert_eq!((status, bad["error"]["field"].as_str()), (400, Some("vital")), "{bad}");

    // An anomaly rule on the error rate: the current hour's half errors fire it.
    let hook = json!({ "name": "Ops hook", "kind": "webhook", "config": { "url": format!("{receiver_url}/hook"), "secret": SECRET } });
    let (_, channel) =
        send(&server, reqwest::Method::POST, &format!("/api/v1/projects/{project}/channels"), Some(hook)).await;
    let rule = json!({ "name": "Error rate anomaly", "metric": "anomaly", "series": "error_rate", "comparison": "gt", "threshold": 5,
                       "window_s": 3600, "channels": [channel["id"]] });
    let (status, made) =
        send(&server, reqwest::Method::POST, &format!("/api/v1/projects/{project}/alerts"), Some(rule)).await;
    assert_eq!(status, 201, "{made}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(receiver.requests.lock().unwrap().is_empty(), "ordinary so far");
    let now: Vec<Value> = (0..10)
        .map(|i| json!({ "type": "pageview", "url": "https://shop.example/", "anonymous_id": format!("n{i}") }))
        .collect();
    server.ingest(&key, Value::Array(now)).await;
    server.ingest(&key, Value::Array((0..5).map(error_event).collect())).await;
    let firing = wait_for(Duration::from_secs(5), "the anomaly firing", async || {
        receiver.requests.lock().unwrap().first().map(|(_, body, _)| body.clone())
    })
    .await;
    assert_eq!(
        (firing["state"].as_str(), firing["alert"]["metric"].as_str()),
        (Some("firing"), Some("anomaly")),
        "{firing}"
    );
    assert!(firing["value"].as_f64().unwrap() > 5.0, "{firing}");
}

/// The contract receiver standing in for Slack, Teams, Jira and GitHub
/// (`alerting/tests/receiver`), on a free port; it exits when dropped.
struct ContractReceiver {
    child: std::process::Child,
    url: String,
}

impl ContractReceiver {
    fn start() -> ContractReceiver {
        use std::io::BufRead;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../alerting/tests/receiver");
        assert!(dir.join("node_modules").exists(), "run `npm ci --prefix alerting/tests/receiver` (make test does)");
        let mut child = std::process::Command::new("node")
            .arg(dir.join("receiver.mjs"))
            .arg("0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("node runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = serde_json::from_str::<Value>(&line).unwrap()["port"].as_u64().unwrap();
        ContractReceiver { child, url: format!("http://127.0.0.1:{port}") }
    }

    async fn requests(&self) -> Vec<Value> {
        let answer: Value = reqwest::get(format!("{}/_requests", self.url)).await.unwrap().json().await.unwrap();
        answer.as_array().unwrap().clone()
    }
}

impl Drop for ContractReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn jira_and_github_get_one_issue_per_incident_through_the_outbox_and_a_comment_when_it_resolves() {
    let receiver = ContractReceiver::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    let channels = format!("/api/v1/projects/{project}/channels");
    let jira = json!({ "name": "Jira", "kind": "jira", "config": { "base_url": format!("{}/jira", receiver.url),
        "email": "bot@shop.example", "api_token": "jira-token-1", "project_key": "OPS" } });
    let github = json!({ "name": "GitHub", "kind": "github", "config": { "repo": "shop/web", "token": "ghp-token-1",
        "api_url": format!("{}/github", receiver.url) } });
    let mut ids = Vec::new();
    for body in [jira, github] {
        let (status, channel) = send(&server, reqwest::Method::POST, &channels, Some(body)).await;
        assert_eq!(status, 201, "{channel}");
        assert!(!channel.to_string().contains("token-1"), "{channel}");
        ids.push(channel["id"].clone());
    }
    // The first Jira attempt is refused with a 503: retried.
    let fail = json!({ "path_prefix": "/jira/rest/api/3/issue", "status": 503, "times": 1, "retry_after": 1 });
    reqwest::Client::new().post(format!("{}/_fail", receiver.url)).json(&fail).send().await.unwrap();
    let rule = json!({ "name": "Cart errors", "metric": "error_count", "comparison": "gt", "threshold": 0, "window_s": 3,
                       "channels": ids });
    let (status, made) =
        send(&server, reqwest::Method::POST, &format!("/api/v1/projects/{project}/alerts"), Some(rule)).await;
    assert_eq!(status, 201, "{made}");
    server.ingest(&key, json!([error_event(0)])).await;

    // Fired, then resolved when the 3 s window empties: per service, an
    // issue and a comment on that issue.
    let requests = wait_for(Duration::from_secs(20), "issues and comments", async || {
        let requests = receiver.requests().await;
        let comments = requests
            .iter()
            .filter(|r| {
                r["path"].as_str().unwrap().ends_with("comments") || r["path"].as_str().unwrap().ends_with("/comment")
            })
            .count();
        (comments == 2).then_some(requests)
    })
    .await;
    assert!(requests.iter().all(|r| r["valid"] == true), "every request is what the service documents: {requests:?}");
    let paths: Vec<&str> =
        requests.iter().filter(|r| r["injected"] != true).map(|r| r["path"].as_str().unwrap()).collect();
    let jira_issue = paths.iter().position(|p| *p == "/jira/rest/api/3/issue").expect("a Jira issue");
    assert_eq!(
        paths.iter().filter(|p| **p == "/jira/rest/api/3/issue").count(),
        1,
        "one issue per incident: {paths:?}"
    );
    assert!(
        paths[jira_issue + 1..].contains(&"/jira/rest/api/3/issue/OPS-1/comment"),
        "the resolve comments on it: {paths:?}"
    );
    assert_eq!(paths.iter().filter(|p| **p == "/github/repos/shop/web/issues").count(), 1, "{paths:?}");
    assert!(paths.contains(&"/github/repos/shop/web/issues/1/comments"), "{paths:?}");
    assert!(requests.iter().any(|r| r["injected"] == true && r["status"] == 503), "the refused attempt was made");
    let basic = requests.iter().find(|r| r["path"] == "/jira/rest/api/3/issue" && r["injected"] != true).unwrap();
    assert_eq!(basic["basic_auth"], "bot@shop.example:jira-token-1");
}

#[tokio::test]
async fn a_projects_first_rule_is_evaluated_at_once_over_the_windows_past_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Embedded, dir.path(), "").await;
    let (project, key) = server.create_project("shop").await;
    let (receiver_url, receiver) = start_receiver().await;
    server.ingest(&key, json!([error_event(0), error_event(1), error_event(2)])).await;
    let errors = format!("/api/v1/projects/{project}/errors?from=0&to={}", now_ms() + 60_000);
    wait_for(Duration::from_secs(5), "the errors in the views", async || {
        let (_, answer) = send(&server, reqwest::Method::GET, &errors, None).await;
        (answer["groups"][0]["count"] == 3).then_some(())
    })
    .await;
    let hook = json!({ "name": "Ops hook", "kind": "webhook", "config": { "url": format!("{receiver_url}/hook"), "secret": SECRET } });
    let (_, channel) =
        send(&server, reqwest::Method::POST, &format!("/api/v1/projects/{project}/channels"), Some(hook)).await;
    let rule = json!({ "name": "Errors this hour", "metric": "error_count", "comparison": "gt", "threshold": 2, "window_s": 3600,
                       "channels": [channel["id"]] });
    let (status, made) =
        send(&server, reqwest::Method::POST, &format!("/api/v1/projects/{project}/alerts"), Some(rule)).await;
    assert_eq!(status, 201, "{made}");
    let firing = wait_for(Duration::from_secs(5), "the firing", async || {
        receiver.requests.lock().unwrap().first().map(|(_, body, _)| body.clone())
    })
    .await;
    assert_eq!((firing["state"].as_str(), firing["value"].as_f64()), (Some("firing"), Some(3.0)), "{firing}");
}
