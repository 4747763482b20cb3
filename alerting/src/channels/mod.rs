//! The kinds of channel and what each is sent. Building a request is pure
//! (this module); sending it, retrying it and remembering what the service
//! answered (a Jira issue key, a GitHub issue number) is the outbox's work.
//!
//! Besides the dispatch (`http_request`) and the issue reference of a create
//! answer (`issue_ref_from_response`), this module holds what the channels'
//! builders share: the facts every message lists, times, truncation, and the
//! percent-encoding of URL path segments.

use serde::{Deserialize, Serialize};

use crate::{AlertState, Notification, format_value};

/// A channel's configuration, by kind, as the contract gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "config", rename_all = "snake_case")]
pub enum ChannelConfig {
    Webhook { url: String, secret: String },
    Slack { webhook_url: String },
    Teams { webhook_url: String },
    Jira { base_url: String, email: String, api_token: String, project_key: String, issue_type: Option<String> },
    Github { repo: String, token: String, api_url: Option<String> },
    Email { to: Vec<String> },
}

/// An HTTP request to send to a channel's service.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    /// Besides `Content-Type: application/json`, which every request has.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What an issue tracker answered when the incident's issue was made: the
/// Jira issue key (`OPS-12`) or the GitHub issue number, kept so the
/// resolve comments on that issue.
pub type IssueRef = String;

/// The request that tells an HTTP channel of a notification. For Jira and
/// GitHub: a firing makes an issue, a resolve comments on the incident's
/// issue (`issue`, when one was made). Email is not HTTP: `None`.
pub fn http_request(config: &ChannelConfig, n: &Notification, issue: Option<&str>) -> Option<HttpRequest> {
    match config {
        ChannelConfig::Webhook { url, secret } => Some(webhook::request(url, secret, n)),
        ChannelConfig::Slack { webhook_url } => Some(slack::request(webhook_url, n)),
        ChannelConfig::Teams { webhook_url } => Some(teams::request(webhook_url, n)),
        ChannelConfig::Jira { base_url, email, api_token, project_key, issue_type } => {
            let target = jira::Target { base_url, email, api_token, project_key, issue_type: issue_type.as_deref() };
            Some(jira::request(&target, n, issue))
        }
        ChannelConfig::Github { repo, token, api_url } => {
            Some(github::request(repo, token, api_url.as_deref(), n, issue))
        }
        ChannelConfig::Email { .. } => None,
    }
}

/// The issue a successful create answer names: Jira's `key` (the 201 of
/// `POST /rest/api/3/issue`) or GitHub's `number` (the 201 of
/// `POST /repos/{owner}/{repo}/issues`). `None` for any other status, body
/// or kind of channel (a comment's answer names no issue).
pub fn issue_ref_from_response(config: &ChannelConfig, status: u16, body: &[u8]) -> Option<IssueRef> {
    if !(200..300).contains(&status) {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    match config {
        ChannelConfig::Jira { .. } => {
            let key = answer.get("key")?.as_str()?;
            jira::is_issue_key(key).then(|| key.to_owned())
        }
        ChannelConfig::Github { .. } => {
            let number = answer.get("number")?.as_u64().filter(|&n| n > 0)?;
            Some(number.to_string())
        }
        _ => None,
    }
}

/// One line of what every message lists, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub label: &'static str,
    pub value: String,
}

/// The facts of a notification: alert, metric, value, threshold, project,
/// state and time (an HTTP date, UTC). No value is empty: an empty name reads `(none)`.
pub fn facts(n: &Notification) -> Vec<Fact> {
    let non_empty = |s: &str| if s.trim().is_empty() { "(none)".to_owned() } else { s.to_owned() };
    vec![
        Fact { label: "Alert", value: non_empty(&n.alert.name) },
        Fact { label: "Metric", value: non_empty(&n.alert.metric) },
        Fact { label: "Value", value: format_value(n.value) },
        Fact { label: "Threshold", value: format_value(n.threshold) },
        Fact { label: "Project", value: non_empty(&n.project.name) },
        Fact { label: "State", value: state_word(n.state).to_owned() },
        Fact { label: "Time", value: format_time(n.at) },
    ]
}

/// `firing` or `resolved`.
pub fn state_word(state: AlertState) -> &'static str {
    match state {
        AlertState::Firing => "firing",
        AlertState::Resolved => "resolved",
    }
}

/// The sentence every channel puts on a test message.
pub const TEST_NOTICE: &str = "This is a test message sent from Sightline's channel settings; no alert fired.";

/// A time in ms since the epoch as an HTTP date, `Wed, 01 May 2024 13:45:07 GMT`.
pub fn format_time(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    httpdate::fmt_http_date(at)
}

/// `s` with every control character (newlines included) as a space.
pub fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// `s` cut to at most `max` characters, ending in `…` when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A configured base URL and a path, with exactly one `/` between them.
pub fn join_url(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// A URL path segment: every byte but RFC 3986's unreserved characters
/// percent-encoded, so a repository or issue key cannot change the path.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub mod email;
pub mod github;
pub mod jira;
pub mod slack;
pub mod teams;
pub mod webhook;

#[cfg(test)]
pub(crate) mod fixture {
    use crate::{AlertRef, AlertState, Notification, ProjectRef};

    pub fn notification(state: AlertState) -> Notification {
        Notification {
            alert: AlertRef { id: "al_1".into(), name: "Checkout errors".into(), metric: "error_rate".into() },
            project: ProjectRef { id: "pr_1".into(), name: "Shop".into() },
            state,
            value: 0.0725,
            threshold: 0.05,
            at: 1_714_571_107_000,
            incident_id: "inc_42".into(),
            link: "https://sightline.example/projects/pr_1/errors?from=1&to=2".into(),
            test: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(format_time(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(format_time(1_714_571_107_999), "Wed, 01 May 2024 13:45:07 GMT");
    }

    #[test]
    fn truncation_counts_characters_and_marks_the_cut() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        assert_eq!(truncate_chars("ééééé", 4).chars().count(), 4);
    }

    #[test]
    fn urls_join_with_one_slash_and_segments_are_encoded() {
        assert_eq!(
            join_url("https://x.atlassian.net/", "/rest/api/3/issue"),
            "https://x.atlassian.net/rest/api/3/issue"
        );
        assert_eq!(join_url("https://x.atlassian.net", "rest/api/3/issue"), "https://x.atlassian.net/rest/api/3/issue");
        assert_eq!(path_segment("OPS-12"), "OPS-12");
        assert_eq!(path_segment("a/../b c?"), "a%2F..%2Fb%20c%3F");
    }

    #[test]
    fn facts_never_have_an_empty_value() {
        let mut n = fixture::notification(AlertState::Firing);
        n.project.name = " ".into();
        let facts = facts(&n);
        assert_eq!(facts.len(), 7);
        assert!(facts.iter().all(|f| !f.value.is_empty()));
        assert_eq!(facts[4].value, "(none)");
        assert_eq!(facts[2].value, "0.0725");
    }

    #[test]
    fn issue_refs_come_from_successful_creates_only() {
        let jira = ChannelConfig::Jira {
            base_url: "https://x".into(),
            email: "a@b".into(),
            api_token: "t".into(),
            project_key: "OPS".into(),
            issue_type: None,
        };
        let github = ChannelConfig::Github { repo: "o/r".into(), token: "t".into(), api_url: None };
        let created = br#"{"id":"10000","key":"OPS-7","self":"https://x/rest/api/3/issue/10000"}"#;
        assert_eq!(issue_ref_from_response(&jira, 201, created).as_deref(), Some("OPS-7"));
        assert_eq!(issue_ref_from_response(&jira, 400, created), None);
        assert_eq!(issue_ref_from_response(&jira, 201, br#"{"key":"not a key"}"#), None);
        assert_eq!(issue_ref_from_response(&jira, 201, b"not json"), None);
        let issue = br#"{"number":1347,"html_url":"https://github.com/o/r/issues/1347"}"#;
        assert_eq!(issue_ref_from_response(&github, 201, issue).as_deref(), Some("1347"));
        assert_eq!(issue_ref_from_response(&github, 201, br#"{"id":5}"#), None);
        assert_eq!(issue_ref_from_response(&github, 503, issue), None);
        let slack = ChannelConfig::Slack { webhook_url: "https://hooks.slack.com/x".into() };
        assert_eq!(issue_ref_from_response(&slack, 201, created), None);
    }
}
