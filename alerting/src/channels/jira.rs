//! Jira Cloud (REST v3): a firing creates an issue in the configured project,
//! described in Atlassian Document Format; once the incident has an issue,
//! every later notification (the resolve, a redelivered firing) is a comment
//! on it. A resolve whose incident has no issue (its firing was never
//! delivered) creates one that says it resolved, so the incident is on
//! record either way. Basic auth with the account's email and API token.

use serde_json::{Value, json};

use super::{HttpRequest, TEST_NOTICE, facts, join_url, one_line, path_segment, state_word, truncate_chars};
use crate::Notification;

/// Jira's limit on an issue's summary.
pub const SUMMARY_MAX: usize = 255;
pub const DEFAULT_ISSUE_TYPE: &str = "Bug";
pub const LABEL: &str = "sightline";

/// Where and as whom the issue is made: a Jira channel's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// `https://your-domain.atlassian.net`, with or without a trailing `/`.
    pub base_url: &'a str,
    pub email: &'a str,
    pub api_token: &'a str,
    pub project_key: &'a str,
    /// `Bug` when not given.
    pub issue_type: Option<&'a str>,
}

/// `POST /rest/api/3/issue` without an issue key, else
/// `POST /rest/api/3/issue/{key}/comment`.
pub fn request(target: &Target<'_>, n: &Notification, issue: Option<&str>) -> HttpRequest {
    let headers = vec![
        ("Authorization".to_owned(), basic_auth(target.email, target.api_token)),
        ("Accept".to_owned(), "application/json".to_owned()),
    ];
    let (url, body) = match issue {
        Some(key) => {
            let url = join_url(target.base_url, &format!("rest/api/3/issue/{}/comment", path_segment(key)));
            (url, json!({"body": document(n)}))
        }
        None => (join_url(target.base_url, "rest/api/3/issue"), create_body(target, n)),
    };
    HttpRequest { method: "POST", url, headers, body: serde_json::to_vec(&body).expect("a body serializes") }
}

/// The create request's body: `{"fields": {...}}`.
pub fn create_body(target: &Target<'_>, n: &Notification) -> Value {
    let issue_type = target.issue_type.filter(|t| !t.trim().is_empty()).unwrap_or(DEFAULT_ISSUE_TYPE);
    json!({
        "fields": {
            "project": {"key": target.project_key},
            "issuetype": {"name": issue_type},
            "summary": truncate_chars(one_line(&n.summary()).trim(), SUMMARY_MAX),
            "description": document(n),
            "labels": [LABEL],
        }
    })
}

/// The Atlassian Document Format document of a notification: a sentence, a
/// bullet list of the facts, and a paragraph linking to the dashboard page.
pub fn document(n: &Notification) -> Value {
    let verb = match n.state {
        crate::AlertState::Firing => " is firing in project ",
        crate::AlertState::Resolved => " has resolved in project ",
    };
    let mut content = vec![paragraph(vec![
        text("Sightline alert "),
        strong(&n.alert.name),
        text(verb),
        strong(&n.project.name),
        text("."),
    ])];
    if n.test {
        content.push(paragraph(vec![strong("Test message."), text(&format!(" {TEST_NOTICE}"))]));
    }
    let items: Vec<Value> = facts(n)
        .into_iter()
        .map(|f| {
            let line = paragraph(vec![strong(&format!("{}:", f.label)), text(&format!(" {}", f.value))]);
            json!({"type": "listItem", "content": [line]})
        })
        .collect();
    content.push(json!({"type": "bulletList", "content": items}));
    content.push(paragraph(vec![json!({
        "type": "text",
        "text": "Open in Sightline",
        "marks": [{"type": "link", "attrs": {"href": n.link}}],
    })]));
    content.push(paragraph(vec![text(&format!("Incident {} ({}).", n.incident_id, state_word(n.state)))]));
    json!({"type": "doc", "version": 1, "content": content})
}

fn paragraph(inline: Vec<Value>) -> Value {
    json!({"type": "paragraph", "content": inline})
}

/// A text node. ADF refuses empty text, so an empty string reads `(none)`.
fn text(s: &str) -> Value {
    json!({"type": "text", "text": if s.is_empty() { "(none)" } else { s }})
}

fn strong(s: &str) -> Value {
    let mut node = text(s);
    node["marks"] = json!([{"type": "strong"}]);
    node
}

/// Whether `s` is an issue key as Jira makes them: a project key, `-`, a number.
pub fn is_issue_key(s: &str) -> bool {
    let Some((project, number)) = s.rsplit_once('-') else { return false };
    project.starts_with(|c: char| c.is_ascii_alphabetic())
        && project.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
}

/// `Basic base64(email:api_token)`.
pub fn basic_auth(email: &str, api_token: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{email}:{api_token}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AlertState;
    use crate::channels::fixture::notification;

    const TARGET: Target<'static> = Target {
        base_url: "https://acme.atlassian.net/",
        email: "bot@acme.example",
        api_token: "jira-secret-token",
        project_key: "OPS",
        issue_type: None,
    };

    #[test]
    fn basic_auth_is_the_base64_of_email_and_token() {
        // RFC 7617's example.
        assert_eq!(basic_auth("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn a_firing_creates_an_issue_and_a_resolve_comments_on_it() {
        let create = request(&TARGET, &notification(AlertState::Firing), None);
        assert_eq!(create.url, "https://acme.atlassian.net/rest/api/3/issue");
        assert_eq!(create.headers[0], ("Authorization".into(), basic_auth("bot@acme.example", "jira-secret-token")));
        let body: Value = serde_json::from_slice(&create.body).unwrap();
        let fields = &body["fields"];
        assert_eq!(fields["project"]["key"], "OPS");
        assert_eq!(fields["issuetype"]["name"], "Bug");
        assert_eq!(fields["labels"], json!(["sightline"]));
        assert_eq!(fields["description"]["type"], "doc");

        let resolve = request(&TARGET, &notification(AlertState::Resolved), Some("OPS-12"));
        assert_eq!(resolve.url, "https://acme.atlassian.net/rest/api/3/issue/OPS-12/comment");
        let body: Value = serde_json::from_slice(&resolve.body).unwrap();
        assert_eq!(body["body"]["version"], 1);
        assert!(!String::from_utf8(resolve.body).unwrap().contains("jira-secret-token"));
    }

    #[test]
    fn the_summary_is_one_line_within_the_limit() {
        let mut n = notification(AlertState::Firing);
        n.alert.name = format!("line one\nline two {}", "x".repeat(400));
        let body = create_body(&Target { issue_type: Some("Incident"), ..TARGET }, &n);
        let summary = body["fields"]["summary"].as_str().unwrap();
        assert!(summary.chars().count() <= SUMMARY_MAX && !summary.contains('\n'));
        assert_eq!(body["fields"]["issuetype"]["name"], "Incident");
    }

    #[test]
    fn issue_keys_are_recognized() {
        assert!(is_issue_key("OPS-12") && is_issue_key("A_B2-1"));
        assert!(!is_issue_key("OPS-") && !is_issue_key("-12") && !is_issue_key("12-3") && !is_issue_key("OPS 1-2"));
    }
}
