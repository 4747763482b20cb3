//! The kinds of channel and what each is sent. Building a request is pure
//! (this module); sending it, retrying it and remembering what the service
//! answered (a Jira issue key, a GitHub issue number) is the outbox's work.

use serde::{Deserialize, Serialize};

use crate::Notification;

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
        _ => {
            let _ = issue;
            None
        }
    }
}

pub mod webhook;
