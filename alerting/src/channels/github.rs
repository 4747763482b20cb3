//! GitHub issues (REST, API version 2022-11-28): a firing opens an issue in
//! the configured repository, labelled `sightline`; once the incident has an
//! issue, every later notification (the resolve, a redelivered firing) is a
//! comment on it. A resolve whose incident has no issue opens one that says
//! it resolved. The issue is left open for people to close. User input goes
//! into the Markdown as code spans, so it cannot mention people, reference
//! issues or format.

use serde_json::{Value, json};

use super::{HttpRequest, TEST_NOTICE, facts, join_url, one_line, path_segment, truncate_chars};
use crate::{AlertState, Notification};

pub const DEFAULT_API_URL: &str = "https://api.github.com";
pub const API_VERSION: &str = "2022-11-28";
pub const TITLE_MAX: usize = 256;
pub const LABEL: &str = "sightline";

/// `POST /repos/{owner}/{repo}/issues` without an issue number, else
/// `POST /repos/{owner}/{repo}/issues/{number}/comments`. `repo` is
/// `owner/name`; `api_url` is GitHub Enterprise Server's
/// `https://host/api/v3`, or None for github.com.
pub fn request(repo: &str, token: &str, api_url: Option<&str>, n: &Notification, issue: Option<&str>) -> HttpRequest {
    let (owner, name) = repo.split_once('/').unwrap_or((repo, ""));
    let issues = format!("repos/{}/{}/issues", path_segment(owner), path_segment(name));
    let base = api_url.filter(|u| !u.trim().is_empty()).unwrap_or(DEFAULT_API_URL);
    let (url, body) = match issue {
        Some(number) => {
            (join_url(base, &format!("{issues}/{}/comments", path_segment(number))), json!({"body": markdown(n)}))
        }
        None => (join_url(base, &issues), create_body(n)),
    };
    HttpRequest {
        method: "POST",
        url,
        headers: vec![
            ("Authorization".to_owned(), format!("Bearer {token}")),
            ("Accept".to_owned(), "application/vnd.github+json".to_owned()),
            ("X-GitHub-Api-Version".to_owned(), API_VERSION.to_owned()),
            ("User-Agent".to_owned(), "sightline".to_owned()),
        ],
        body: serde_json::to_vec(&body).expect("a body serializes"),
    }
}

/// The create request's body: `{"title", "body", "labels"}`.
pub fn create_body(n: &Notification) -> Value {
    json!({
        "title": truncate_chars(one_line(&n.summary()).trim(), TITLE_MAX),
        "body": markdown(n),
        "labels": [LABEL],
    })
}

/// The issue's (or comment's) Markdown: a sentence, the facts, the link.
pub fn markdown(n: &Notification) -> String {
    let mut md = String::new();
    if n.test {
        md.push_str(&format!("> [!NOTE]\n> **Test message.** {TEST_NOTICE}\n\n"));
    }
    let verb = match n.state {
        AlertState::Firing => "is firing",
        AlertState::Resolved => "has resolved",
    };
    md.push_str(&format!(
        "Sightline alert {} **{verb}** in project {}.\n\n",
        code(&n.alert.name),
        code(&n.project.name)
    ));
    for f in facts(n) {
        let value = match f.label {
            "Alert" | "Metric" | "Project" => code(&f.value),
            _ => f.value,
        };
        md.push_str(&format!("- **{}:** {value}\n", f.label));
    }
    md.push_str(&format!("\n[Open in Sightline](<{}>)\n\n", link_destination(&n.link)));
    md.push_str(&format!("<sub>Incident {}</sub>\n", code(&n.incident_id)));
    md
}

/// A CommonMark code span of `s` on one line: fenced by one backtick more
/// than the longest run inside, padded when `s` starts or ends with one.
fn code(s: &str) -> String {
    let s = truncate_chars(one_line(s).trim(), 1000);
    if s.is_empty() {
        return "`(none)`".to_owned();
    }
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A link destination inside `<…>`: the characters that would end it or
/// break the line percent-encoded.
fn link_destination(url: &str) -> String {
    url.chars()
        .map(|c| match c {
            '<' => "%3C".to_owned(),
            '>' => "%3E".to_owned(),
            c if c.is_whitespace() || c.is_control() => c.to_string().bytes().map(|b| format!("%{b:02X}")).collect(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::fixture::notification;

    #[test]
    fn user_input_is_a_code_span() {
        assert_eq!(code("@octocat #1"), "`@octocat #1`");
        assert_eq!(code("a `b` c"), "``a `b` c``");
        assert_eq!(code("`x``"), "``` `x`` ```");
        assert_eq!(code("two\nlines"), "`two lines`");
        assert_eq!(code(""), "`(none)`");
        assert_eq!(link_destination("https://x.example/a b>\u{a0}"), "https://x.example/a%20b%3E%C2%A0");
    }

    #[test]
    fn a_firing_opens_an_issue_and_a_resolve_comments_on_it() {
        let create = request("acme/shop", "ghp_secret", None, &notification(AlertState::Firing), None);
        assert_eq!(create.url, "https://api.github.com/repos/acme/shop/issues");
        assert!(create.headers.contains(&("Authorization".into(), "Bearer ghp_secret".into())));
        assert!(create.headers.contains(&("X-GitHub-Api-Version".into(), "2022-11-28".into())));
        let body: Value = serde_json::from_slice(&create.body).unwrap();
        assert_eq!(body["title"], notification(AlertState::Firing).summary());
        assert_eq!(body["labels"], json!(["sightline"]));
        let md = body["body"].as_str().unwrap();
        assert!(md.contains("[Open in Sightline](<https://sightline.example/projects/pr_1/errors?from=1&to=2>)"));
        assert!(md.contains("- **Metric:** `error_rate`\n"));

        let n = notification(AlertState::Resolved);
        let comment = request("acme/shop", "ghp_secret", Some("https://ghe.example/api/v3/"), &n, Some("7"));
        assert_eq!(comment.url, "https://ghe.example/api/v3/repos/acme/shop/issues/7/comments");
        assert!(!String::from_utf8(comment.body).unwrap().contains("ghp_secret"));
    }
}
