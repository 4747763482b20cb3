//! Contract tests of the channels. Every request Sightline builds for Slack,
//! Teams, Jira and GitHub is sent over HTTP to a local receiver
//! (`tests/receiver/receiver.mjs`) that checks it against what the service
//! documents (GitHub's and Jira's OpenAPI request schemas, the Atlassian
//! Document Format schema, Block Kit's and Adaptive Cards' shapes) and
//! answers as the service would; email goes through a real SMTP server
//! (aiosmtpd, `tests/smtp_maildir.py`) into a Maildir and is read back.
//!
//! Setup (`make test` does it): `npm ci --prefix alerting/tests/receiver` and
//! `./scripts/aiosmtpd.sh`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use sightline_alerting::channels::{
    ChannelConfig, HttpRequest, TEST_NOTICE, email, http_request, issue_ref_from_response,
};
use sightline_alerting::{AlertRef, AlertState, Notification, ProjectRef};

const JIRA_TOKEN: &str = "jira-token-7f3a9c";
const GITHUB_TOKEN: &str = "ghp_secret_5d2e8b";
const LINK: &str = "https://sightline.example/projects/pr_1/alerts/al_1?from=1714560000000&to=1714571107000";

fn notification(state: AlertState, test: bool) -> Notification {
    Notification {
        alert: AlertRef { id: "al_1".into(), name: "Checkout <errors> & \"co\"".into(), metric: "error_rate".into() },
        project: ProjectRef { id: "pr_1".into(), name: "Shop & Co".into() },
        state,
        value: 0.0725,
        threshold: 0.05,
        at: 1_714_571_107_000,
        incident_id: "inc_42".into(),
        link: LINK.into(),
        test,
    }
}

/// Every kind of notification a channel is told: a firing, its resolve, a test.
fn notifications() -> [Notification; 3] {
    [
        notification(AlertState::Firing, false),
        notification(AlertState::Resolved, false),
        notification(AlertState::Firing, true),
    ]
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the crate is in the workspace").to_owned()
}

/// A helper process that prints `{"port": N}` as its first line; killed when dropped.
struct Service {
    child: Child,
    port: u16,
    // Held open: each helper exits when its stdin closes, so a test that
    // dies leaves none behind.
    _stdin: ChildStdin,
    _stdout: BufReader<ChildStdout>,
}

impl Service {
    fn spawn(mut command: Command, what: &str) -> Service {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({command:?}): {e}"));
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = stdout.read_line(&mut line);
            let _ = tx.send((read.map(|_| line), stdout));
        });
        let Ok((Ok(line), stdout)) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!("{what} did not start within 30 s; see its stderr above");
        };
        let announced: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("{what} did not announce its port (first line {line:?}); see its stderr above"));
        let port = announced["port"].as_u64().and_then(|p| u16::try_from(p).ok()).expect("a port");
        Service { child, port, _stdin: stdin, _stdout: stdout }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The local stand-in for Slack, Teams, Jira and GitHub.
struct Receiver {
    _service: Service,
    base: String,
    http: reqwest::Client,
}

/// What a service answered.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Receiver {
    fn start() -> Receiver {
        let dir = root().join("alerting/tests/receiver");
        assert!(
            dir.join("node_modules").is_dir(),
            "the receiver's dependencies are missing: run `npm ci --prefix alerting/tests/receiver` (make test does)"
        );
        let mut command = Command::new("node");
        command.arg(dir.join("receiver.mjs")).arg("0");
        let service = Service::spawn(command, "the receiver (node tests/receiver/receiver.mjs)");
        let base = format!("http://127.0.0.1:{}", service.port);
        Receiver { _service: service, base, http: reqwest::Client::new() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a channel's request as the outbox would: its method, URL,
    /// headers and body, plus `Content-Type: application/json`.
    async fn send(&self, request: &HttpRequest) -> Answer {
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
        let mut builder = self
            .http
            .request(method, &request.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = builder.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap().to_vec();
        Answer { status, headers, body }
    }

    /// Every request the receiver has had, as it recorded them.
    async fn requests(&self) -> Vec<Value> {
        let answer = self.http.get(self.url("/_requests")).send().await.unwrap();
        answer.json::<Vec<Value>>().await.unwrap()
    }

    async fn last_request(&self) -> Value {
        self.requests().await.pop().expect("the receiver recorded a request")
    }
}

fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(map) => map.values().flat_map(strings).collect(),
        _ => vec![],
    }
}

/// What holds for every request to every service: it was valid, it links
/// back, it is marked as a test exactly when it is one, and no secret is in
/// its path or body.
fn assert_contract(record: &Value, n: &Notification) {
    assert_eq!(record["valid"], true, "the receiver refused {}: {:#}", record["path"], record["errors"]);
    let body = &record["body"];
    let texts = strings(body);
    assert!(texts.iter().any(|s| s.contains(&n.link)), "no link to {} in {body:#}", n.link);
    let marked = texts.iter().any(|s| s.contains(TEST_NOTICE));
    assert_eq!(marked, n.test, "test notice present: {marked}, test message: {} in {body:#}", n.test);
    let sent = format!("{} {}", record["path"], body);
    for secret in [JIRA_TOKEN, GITHUB_TOKEN] {
        assert!(!sent.contains(secret), "a secret was sent in {sent}");
    }
}

#[tokio::test]
async fn slack_gets_block_kit_messages_with_a_fallback_text_and_escaped_input() {
    let receiver = Receiver::start();
    let config = ChannelConfig::Slack { webhook_url: receiver.url("/slack/services/T000/B000/XXXX") };
    for n in notifications() {
        let answer = receiver.send(&http_request(&config, &n, None).unwrap()).await;
        assert_eq!((answer.status, String::from_utf8_lossy(&answer.body).as_ref()), (200, "ok"));
        let record = receiver.last_request().await;
        assert_contract(&record, &n);

        let body = &record["body"];
        let text = body["text"].as_str().unwrap();
        assert!(text.contains("Checkout &lt;errors&gt; &amp; \"co\""), "{text}");
        assert_eq!(text.starts_with("[test] "), n.test);
        let blocks = body["blocks"].as_array().unwrap();
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(header.contains("Checkout <errors> & \"co\""), "plain_text is not escaped: {header}");
        let section = blocks.iter().find(|b| b["type"] == "section").unwrap();
        assert!(section["text"]["text"].as_str().unwrap().contains("*Shop &amp; Co*"));
        let fields: Vec<&str> =
            section["fields"].as_array().unwrap().iter().map(|f| f["text"].as_str().unwrap()).collect();
        assert!(fields.contains(&"*Value*\n0.0725") && fields.contains(&"*Threshold*\n0.05"), "{fields:?}");
        let state = if n.state == AlertState::Firing { "*State*\nfiring" } else { "*State*\nresolved" };
        assert!(fields.contains(&state), "{fields:?}");
        let button = &blocks.last().unwrap()["elements"][0];
        assert_eq!((button["type"].as_str(), button["url"].as_str()), (Some("button"), Some(LINK)));
    }
}

#[tokio::test]
async fn teams_gets_an_adaptive_card_with_the_facts_and_a_link() {
    let receiver = Receiver::start();
    let config =
        ChannelConfig::Teams { webhook_url: receiver.url("/teams/workflows/abc/triggers/manual/paths/invoke") };
    for n in notifications() {
        let answer = receiver.send(&http_request(&config, &n, None).unwrap()).await;
        assert_eq!(answer.status, 202, "{}", String::from_utf8_lossy(&answer.body));
        let record = receiver.last_request().await;
        assert_contract(&record, &n);

        let card = &record["body"]["attachments"][0]["content"];
        assert_eq!(card["body"][0]["text"], n.summary());
        let facts = card["body"].as_array().unwrap().iter().find(|e| e["type"] == "FactSet").unwrap();
        assert!(facts["facts"].as_array().unwrap().contains(&json!({"title": "Project", "value": "Shop & Co"})));
        assert_eq!(card["actions"][0]["url"], LINK);
    }
}

#[tokio::test]
async fn jira_gets_an_issue_for_a_firing_and_a_comment_on_it_for_the_resolve() {
    let receiver = Receiver::start();
    for base_url in [receiver.url("/jira"), receiver.url("/jira/")] {
        let config = ChannelConfig::Jira {
            base_url,
            email: "alerts@acme.example".into(),
            api_token: JIRA_TOKEN.into(),
            project_key: "OPS".into(),
            issue_type: None,
        };
        let [firing, resolved, test] = notifications();

        let answer = receiver.send(&http_request(&config, &firing, None).unwrap()).await;
        assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
        let created = receiver.last_request().await;
        assert_contract(&created, &firing);
        assert_eq!(created["path"], "/jira/rest/api/3/issue");
        assert_eq!(created["basic_auth"], format!("alerts@acme.example:{JIRA_TOKEN}"));
        let fields = &created["body"]["fields"];
        assert_eq!(fields["summary"], firing.summary());
        assert_eq!(fields["issuetype"]["name"], "Bug");
        assert_eq!(fields["labels"], json!(["sightline"]));
        let answered: Value = serde_json::from_slice(&answer.body).unwrap();
        let key = issue_ref_from_response(&config, answer.status, &answer.body).expect("the create names its issue");
        assert_eq!(key, answered["key"].as_str().unwrap());

        let answer = receiver.send(&http_request(&config, &resolved, Some(&key)).unwrap()).await;
        assert_eq!(
            answer.status,
            201,
            "the resolve did not comment on {key}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let comment = receiver.last_request().await;
        assert_contract(&comment, &resolved);
        assert_eq!(comment["path"], format!("/jira/rest/api/3/issue/{key}/comment"));
        assert!(strings(&comment["body"]).contains(&" has resolved in project "));
        assert_eq!(issue_ref_from_response(&config, answer.status, &answer.body), None);

        // A resolve whose firing never made an issue makes one that says so.
        let answer = receiver.send(&http_request(&config, &resolved, None).unwrap()).await;
        assert_eq!(answer.status, 201);
        let orphan = receiver.last_request().await;
        assert_contract(&orphan, &resolved);
        assert!(orphan["body"]["fields"]["summary"].as_str().unwrap().starts_with("Resolved: "));

        let answer = receiver.send(&http_request(&config, &test, None).unwrap()).await;
        assert_eq!(answer.status, 201);
        let record = receiver.last_request().await;
        assert_contract(&record, &test);
        assert!(record["body"]["fields"]["summary"].as_str().unwrap().starts_with("[test] "));
    }
}

#[tokio::test]
async fn github_gets_an_issue_for_a_firing_and_a_comment_on_it_for_the_resolve() {
    let receiver = Receiver::start();
    for api_url in [receiver.url("/github"), receiver.url("/github/")] {
        let config =
            ChannelConfig::Github { repo: "acme/shop".into(), token: GITHUB_TOKEN.into(), api_url: Some(api_url) };
        let [firing, resolved, test] = notifications();

        let answer = receiver.send(&http_request(&config, &firing, None).unwrap()).await;
        assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
        let created = receiver.last_request().await;
        assert_contract(&created, &firing);
        assert_eq!(created["path"], "/github/repos/acme/shop/issues");
        assert_eq!(created["headers"]["authorization"], format!("Bearer {GITHUB_TOKEN}"));
        assert_eq!(created["body"]["title"], firing.summary());
        assert_eq!(created["body"]["labels"], json!(["sightline"]));
        let markdown = created["body"]["body"].as_str().unwrap();
        assert!(markdown.contains("`Checkout <errors> & \"co\"`"), "user input is not a code span: {markdown}");
        assert!(markdown.contains(&format!("[Open in Sightline](<{LINK}>)")), "{markdown}");
        let answered: Value = serde_json::from_slice(&answer.body).unwrap();
        let number = issue_ref_from_response(&config, answer.status, &answer.body).expect("the create names its issue");
        assert_eq!(number, answered["number"].to_string());

        let answer = receiver.send(&http_request(&config, &resolved, Some(&number)).unwrap()).await;
        assert_eq!(
            answer.status,
            201,
            "the resolve did not comment on #{number}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let comment = receiver.last_request().await;
        assert_contract(&comment, &resolved);
        assert_eq!(comment["path"], format!("/github/repos/acme/shop/issues/{number}/comments"));
        assert!(comment["body"]["body"].as_str().unwrap().contains("**has resolved**"));
        assert_eq!(issue_ref_from_response(&config, answer.status, &answer.body), None);

        let answer = receiver.send(&http_request(&config, &test, None).unwrap()).await;
        assert_eq!(answer.status, 201);
        let record = receiver.last_request().await;
        assert_contract(&record, &test);
        assert!(record["body"]["title"].as_str().unwrap().starts_with("[test] "));
    }
}

/// A request built by a channel, its body changed by `edit` and its headers
/// by `headers`.
fn altered(
    config: &ChannelConfig,
    issue: Option<&str>,
    edit: impl FnOnce(&mut Value),
    headers: impl FnOnce(&mut Vec<(String, String)>),
) -> HttpRequest {
    let mut request = http_request(config, &notification(AlertState::Firing, false), issue).unwrap();
    let mut body: Value = serde_json::from_slice(&request.body).unwrap();
    edit(&mut body);
    request.body = serde_json::to_vec(&body).unwrap();
    headers(&mut request.headers);
    request
}

#[tokio::test]
async fn the_receiver_refuses_what_the_services_would() {
    let receiver = Receiver::start();
    let slack = ChannelConfig::Slack { webhook_url: receiver.url("/slack/hook") };
    let teams = ChannelConfig::Teams { webhook_url: receiver.url("/teams/hook") };
    let jira = ChannelConfig::Jira {
        base_url: receiver.url("/jira"),
        email: "alerts@acme.example".into(),
        api_token: JIRA_TOKEN.into(),
        project_key: "OPS".into(),
        issue_type: None,
    };
    let github = ChannelConfig::Github {
        repo: "acme/shop".into(),
        token: GITHUB_TOKEN.into(),
        api_url: Some(receiver.url("/github")),
    };
    let keep = |_: &mut Vec<(String, String)>| {};
    let without = |name: &'static str| move |h: &mut Vec<(String, String)>| h.retain(|(n, _)| n != name);

    let cases: Vec<(&str, HttpRequest, &str)> = vec![
        (
            "slack without text",
            altered(
                &slack,
                None,
                |b| {
                    b.as_object_mut().unwrap().remove("text");
                },
                keep,
            ),
            "text",
        ),
        (
            "slack with unescaped mrkdwn",
            altered(&slack, None, |b| b["blocks"][1]["text"]["text"] = json!("*a <b> & c*"), keep),
            "unescaped",
        ),
        (
            "slack header over 150 characters",
            altered(&slack, None, |b| b["blocks"][0]["text"]["text"] = json!("x".repeat(151)), keep),
            "150",
        ),
        (
            "slack with an unknown block type",
            altered(&slack, None, |b| b["blocks"][1]["type"] = json!("sektion"), keep),
            "sektion",
        ),
        (
            "teams card version 1.5",
            altered(&teams, None, |b| b["attachments"][0]["content"]["version"] = json!("1.5"), keep),
            "version",
        ),
        (
            "teams without the adaptive card content type",
            altered(&teams, None, |b| b["attachments"][0]["contentType"] = json!("application/json"), keep),
            "contentType",
        ),
        (
            "jira description that is not ADF",
            altered(&jira, None, |b| b["fields"]["description"] = json!("plain text"), keep),
            "/fields/description",
        ),
        (
            "jira description with an empty text node",
            altered(&jira, None, |b| b["fields"]["description"]["content"][0]["content"][1]["text"] = json!(""), keep),
            "/fields/description",
        ),
        (
            "jira summary with a newline",
            altered(&jira, None, |b| b["fields"]["summary"] = json!("two\nlines"), keep),
            "/fields/summary",
        ),
        ("jira without auth", altered(&jira, None, |_| {}, without("Authorization")), "Authorization"),
        (
            "jira comment that is not ADF",
            altered(&jira, Some("OPS-1"), |b| b["body"] = json!({"type": "doc"}), keep),
            "/body",
        ),
        (
            "github without title",
            altered(
                &github,
                None,
                |b| {
                    b.as_object_mut().unwrap().remove("title");
                },
                keep,
            ),
            "title",
        ),
        ("github with a number body", altered(&github, None, |b| b["body"] = json!(7), keep), "/body"),
        (
            "github without an API version",
            altered(&github, None, |_| {}, without("X-GitHub-Api-Version")),
            "X-GitHub-Api-Version",
        ),
        ("github without a User-Agent", altered(&github, None, |_| {}, without("User-Agent")), "User-Agent"),
        (
            "github comment without body",
            altered(
                &github,
                Some("1"),
                |b| {
                    b.as_object_mut().unwrap().remove("body");
                },
                keep,
            ),
            "body",
        ),
    ];
    for (what, request, error) in &cases {
        let answer = receiver.send(request).await;
        assert_eq!(answer.status, 400, "{what}: the receiver took it");
        let record = receiver.last_request().await;
        assert_eq!(record["valid"], false, "{what}");
        let errors: Vec<&str> = record["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
        assert!(errors.iter().any(|e| e.contains(error)), "{what}: no error mentions {error:?}: {errors:?}");
        let answered: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(answered["errors"], record["errors"], "{what}");
    }

    // A comment on an issue the tracker never made is valid but not found.
    let answer =
        receiver.send(&http_request(&jira, &notification(AlertState::Resolved, false), Some("OPS-404")).unwrap()).await;
    assert_eq!(answer.status, 404);
    let answer =
        receiver.send(&http_request(&github, &notification(AlertState::Resolved, false), Some("404")).unwrap()).await;
    assert_eq!(answer.status, 404);
    assert_eq!(receiver.requests().await.len(), cases.len() + 2);
}

#[tokio::test]
async fn injected_failures_answer_with_their_status_and_retry_after() {
    let receiver = Receiver::start();
    let rule = json!({"path_prefix": "/slack/", "status": 429, "times": 2, "retry_after": 7});
    let set = receiver.http.post(receiver.url("/_fail")).json(&rule).send().await.unwrap();
    assert_eq!(set.status(), 200);
    let slack = ChannelConfig::Slack { webhook_url: receiver.url("/slack/hook") };
    let teams = ChannelConfig::Teams { webhook_url: receiver.url("/teams/hook") };
    let n = notification(AlertState::Firing, false);
    let request = http_request(&slack, &n, None).unwrap();

    let teams_answer = receiver.send(&http_request(&teams, &n, None).unwrap()).await;
    assert_eq!(teams_answer.status, 202, "another path is not failed");
    for _ in 0..2 {
        let answer = receiver.send(&request).await;
        assert_eq!(answer.status, 429);
        assert_eq!(answer.headers.get("retry-after").unwrap(), "7");
    }
    assert_eq!(receiver.send(&request).await.status, 200);
    let statuses: Vec<(u64, bool)> = receiver
        .requests()
        .await
        .iter()
        .map(|r| (r["status"].as_u64().unwrap(), r["injected"].as_bool().unwrap()))
        .collect();
    assert_eq!(statuses, [(202, false), (429, true), (429, true), (200, false)]);

    // An injected failure has no effect: the issue is made by the retry.
    let jira = ChannelConfig::Jira {
        base_url: receiver.url("/jira"),
        email: "alerts@acme.example".into(),
        api_token: JIRA_TOKEN.into(),
        project_key: "OPS".into(),
        issue_type: None,
    };
    let rule = json!({"path_prefix": "/jira/", "status": 503});
    receiver.http.post(receiver.url("/_fail")).json(&rule).send().await.unwrap();
    let create = http_request(&jira, &n, None).unwrap();
    let failed = receiver.send(&create).await;
    assert_eq!((failed.status, failed.headers.get("retry-after")), (503, None));
    assert_eq!(issue_ref_from_response(&jira, failed.status, &failed.body), None);
    let retried = receiver.send(&create).await;
    assert_eq!(issue_ref_from_response(&jira, retried.status, &retried.body).as_deref(), Some("OPS-1"));
}

// ---- email --------------------------------------------------------------

/// The python of the venv `scripts/aiosmtpd.sh` keeps (installing it if needed).
fn aiosmtpd_python() -> String {
    let script = root().join("scripts/aiosmtpd.sh");
    let out = Command::new(&script).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({}); aiosmtpd is needed for the email tests:\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().last().expect("the script prints the venv's python").trim().to_owned()
}

fn smtp_maildir_py() -> PathBuf {
    root().join("alerting/tests/smtp_maildir.py")
}

/// The messages in the Maildir's `new/`, oldest first, each parsed by
/// Python's `email` package.
fn delivered(python: &str, maildir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(maildir.join("new")).unwrap().map(|entry| entry.unwrap().path()).collect();
    files.sort_by_key(|path| std::fs::metadata(path).unwrap().modified().unwrap());
    files
        .iter()
        .map(|file| {
            let out = Command::new(python).arg(smtp_maildir_py()).arg("dump").arg(file).output().unwrap();
            assert!(out.status.success(), "dump failed: {}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn email_reaches_an_smtp_server_with_plain_and_escaped_html_parts() {
    let python = aiosmtpd_python();
    let maildir = tempfile::tempdir().unwrap();
    let mut command = Command::new(&python);
    command.arg(smtp_maildir_py()).arg("serve").arg(maildir.path()).arg("0");
    let smtp = Service::spawn(command, "the SMTP server (tests/smtp_maildir.py)");
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);

    let mut firing = notification(AlertState::Firing, false);
    firing.alert.name = "<b>Caisse</b> & \"co\" — é".into();
    let to = ["ops@acme.example".to_owned(), "On-call <oncall@acme.example>".to_owned()];
    let from = "Sightline <alerts@sightline.example>";
    email::send(&smtp_url, email::message(from, &to, &firing).unwrap()).await.unwrap();
    let mut resolved = firing.clone();
    resolved.state = AlertState::Resolved;
    email::send(&smtp_url, email::message(from, &to, &resolved).unwrap()).await.unwrap();

    let messages = delivered(&python, maildir.path());
    assert_eq!(messages.len(), 2);
    for (message, n) in messages.iter().zip([&firing, &resolved]) {
        let headers = &message["headers"];
        assert_eq!(headers["subject"], n.summary());
        assert_eq!(headers["from"], from);
        assert_eq!(headers["to"], "ops@acme.example, On-call <oncall@acme.example>");
        assert_eq!(headers["x-mailfrom"], "alerts@sightline.example");
        assert_eq!(headers["x-rcptto"], "ops@acme.example, oncall@acme.example");
        assert_eq!(message["content_type"], "multipart/alternative");

        let parts = message["parts"].as_array().unwrap();
        let types: Vec<&str> = parts.iter().map(|p| p["content_type"].as_str().unwrap()).collect();
        assert_eq!(types, ["text/plain", "text/html"]);
        let plain = parts[0]["content"].as_str().unwrap();
        assert!(plain.contains(&n.summary()), "{plain}");
        assert!(plain.contains(&format!("Open in Sightline: {LINK}")), "{plain}");
        assert!(plain.contains("Project: Shop & Co"), "{plain}");
        let html = parts[1]["content"].as_str().unwrap();
        assert!(html.contains("<strong>&lt;b&gt;Caisse&lt;/b&gt; &amp; &quot;co&quot; — é</strong>"), "{html}");
        assert!(!html.contains("<b>Caisse"), "the alert name is not escaped: {html}");
        assert!(html.contains("<strong>Shop &amp; Co</strong>"), "{html}");
        assert!(html.contains(&format!("<a href=\"{}\">Open in Sightline</a>", LINK.replace('&', "&amp;"))), "{html}");
        assert!(!plain.contains("Test message") && !html.contains("Test message"));
    }
    let firing_id = messages[0]["headers"]["message-id"].as_str().unwrap();
    assert_eq!(firing_id, "<sightline.inc_42.firing@sightline.example>");
    assert_eq!(messages[1]["headers"]["in-reply-to"], firing_id, "the resolve is not in the firing's thread");
    assert_eq!(messages[1]["headers"]["references"], firing_id);
}

#[tokio::test]
async fn a_test_email_is_marked_and_an_unreachable_server_is_an_error() {
    let python = aiosmtpd_python();
    let maildir = tempfile::tempdir().unwrap();
    let mut command = Command::new(&python);
    command.arg(smtp_maildir_py()).arg("serve").arg(maildir.path()).arg("0");
    let smtp = Service::spawn(command, "the SMTP server (tests/smtp_maildir.py)");

    let test = notification(AlertState::Firing, true);
    let message = email::message("alerts@sightline.example", &["ops@acme.example".into()], &test).unwrap();
    email::send(&format!("smtp://127.0.0.1:{}", smtp.port), message).await.unwrap();
    let messages = delivered(&python, maildir.path());
    assert_eq!(messages.len(), 1);
    assert!(messages[0]["headers"]["subject"].as_str().unwrap().starts_with("[test] "));
    let parts = messages[0]["parts"].as_array().unwrap();
    assert!(parts[0]["content"].as_str().unwrap().contains(TEST_NOTICE), "{:#}", parts[0]);
    let html_notice = TEST_NOTICE.replace('\'', "&#39;");
    assert!(parts[1]["content"].as_str().unwrap().contains(&html_notice), "{:#}", parts[1]);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let message = email::message("alerts@sightline.example", &["ops@acme.example".into()], &test).unwrap();
    let error = email::send(&format!("smtp://127.0.0.1:{closed}"), message).await.unwrap_err();
    assert!(!error.is_empty());
    let error = email::send("http://not-smtp", email::message("a@b.example", &["c@d.example".into()], &test).unwrap())
        .await
        .unwrap_err();
    assert!(!error.is_empty());
}
