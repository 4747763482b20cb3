//! A channel's configuration on its way in and out of the API: read and
//! checked field by field before it is saved, its secrets kept when a
//! change leaves them out, and shown without them.

use serde_json::{Map, Value};

use crate::channels::ChannelConfig;
use crate::outbox::check_public;

/// The config fields that are secrets, whatever the kind. Slack and Teams
/// webhook URLs carry their token in the path, so they count too.
const SECRETS: [&str; 3] = ["secret", "api_token", "token"];
const SECRET_URLS: [&str; 1] = ["webhook_url"];

/// A config that cannot be saved: the field (`config.url`) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub field: String,
    pub message: String,
}

fn refuse(field: &str, message: impl Into<String>) -> Refused {
    Refused { field: format!("config.{field}"), message: message.into() }
}

/// Reads a kind's config, checks its URLs, addresses and names, and with
/// `deny_private_egress` refuses destinations on private networks.
pub async fn read(kind: &str, config: &Value, deny_private_egress: bool) -> Result<ChannelConfig, Refused> {
    if !config.is_object() {
        return Err(Refused { field: "config".into(), message: "an object".into() });
    }
    let parsed: ChannelConfig = serde_json::from_value(serde_json::json!({ "kind": kind, "config": config }))
        .map_err(|e| Refused { field: "config".into(), message: format!("not a {kind} config: {e}") })?;
    let urls: Vec<(&str, &str)> = match &parsed {
        ChannelConfig::Webhook { url, secret } => {
            if secret.len() < 16 {
                return Err(refuse("secret", "at least 16 characters"));
            }
            vec![("url", url)]
        }
        ChannelConfig::Slack { webhook_url } | ChannelConfig::Teams { webhook_url } => {
            vec![("webhook_url", webhook_url)]
        }
        ChannelConfig::Jira { base_url, email, api_token, project_key, .. } => {
            if !email.contains('@') {
                return Err(refuse("email", "the Atlassian account's email"));
            }
            if api_token.is_empty() {
                return Err(refuse("api_token", "must not be empty"));
            }
            if project_key.is_empty() || !project_key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(refuse("project_key", "a Jira project key such as OPS"));
            }
            vec![("base_url", base_url)]
        }
        ChannelConfig::Github { repo, token, api_url } => {
            let parts: Vec<&str> = repo.split('/').collect();
            let part_ok =
                |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if parts.len() != 2 || !parts.iter().all(part_ok) {
                return Err(refuse("repo", "owner/name"));
            }
            if token.is_empty() {
                return Err(refuse("token", "must not be empty"));
            }
            api_url.as_deref().map(|u| vec![("api_url", u)]).unwrap_or_default()
        }
        ChannelConfig::Email { to } => {
            if to.is_empty() || to.len() > 50 {
                return Err(refuse("to", "1 to 50 addresses"));
            }
            if let Some(bad) = to.iter().find(|a| a.parse::<lettre::Address>().is_err()) {
                return Err(refuse("to", format!("{bad:?} is not an email address")));
            }
            vec![]
        }
    };
    for (field, url) in urls {
        let parsed = reqwest::Url::parse(url).map_err(|e| refuse(field, format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(refuse(field, "an http or https URL"));
        }
        if deny_private_egress {
            check_public(url).await.map_err(|message| refuse(field, message))?;
        }
    }
    Ok(parsed)
}

/// A change's config with the secrets it left out taken from the saved one
/// (so a channel can be renamed without typing its token again).
pub fn keep_secrets(saved: &Value, change: &Value) -> Value {
    let mut merged = change.clone();
    if let (Some(saved), Some(merged)) = (saved.as_object(), merged.as_object_mut()) {
        for name in SECRETS.iter().chain(&SECRET_URLS) {
            if !merged.contains_key(*name)
                && let Some(value) = saved.get(*name)
            {
                merged.insert((*name).to_owned(), value.clone());
            }
        }
    }
    merged
}

/// A config as the API shows it: secrets left out (their names listed),
/// secret URLs cut to their origin.
pub fn shown(config: &Value) -> (Value, Vec<String>) {
    let mut hidden = Vec::new();
    let mut out = Map::new();
    for (name, value) in config.as_object().into_iter().flatten() {
        if SECRETS.contains(&name.as_str()) {
            hidden.push(name.clone());
        } else if SECRET_URLS.contains(&name.as_str()) {
            hidden.push(name.clone());
            let origin =
                value.as_str().and_then(|u| reqwest::Url::parse(u).ok()).map(|u| u.origin().ascii_serialization());
            out.insert(name.clone(), Value::String(format!("{}/…", origin.unwrap_or_default())));
        } else {
            out.insert(name.clone(), value.clone());
        }
    }
    (Value::Object(out), hidden)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn configs_are_checked_field_by_field() {
        let ok = json!({ "url": "http://127.0.0.1:9000/hook", "secret": "a long enough secret" });
        assert!(read("webhook", &ok, false).await.is_ok());
        let cases = [
            ("webhook", json!({ "url": "ftp://x/", "secret": "a long enough secret" }), "config.url"),
            ("webhook", json!({ "url": "http://x/", "secret": "short" }), "config.secret"),
            ("webhook", json!({ "url": "http://x/" }), "config"),
            ("slack", json!({ "webhook_url": "not a url" }), "config.webhook_url"),
            ("github", json!({ "repo": "no-slash", "token": "t" }), "config.repo"),
            (
                "jira",
                json!({ "base_url": "https://x.atlassian.net", "email": "a@b.c", "api_token": "t", "project_key": "O P" }),
                "config.project_key",
            ),
            ("email", json!({ "to": ["not an address"] }), "config.to"),
            ("pager", json!({}), "config"),
        ];
        for (kind, config, field) in cases {
            assert_eq!(read(kind, &config, false).await.unwrap_err().field, field, "{kind} {config}");
        }
        assert_eq!(read("webhook", &ok, true).await.unwrap_err().field, "config.url", "private, refused when asked");
    }

    #[test]
    fn secrets_are_never_shown_and_kept_when_left_out() {
        let saved = json!({ "webhook_url": "https://hooks.slack.com/services/T1/B2/XYZ" });
        let (config, hidden) = shown(&saved);
        assert_eq!(config, json!({ "webhook_url": "https://hooks.slack.com/…" }));
        assert_eq!(hidden, ["webhook_url"]);
        let jira = json!({ "base_url": "https://x.atlassian.net", "email": "a@b.c", "api_token": "tok", "project_key": "OPS" });
        let (config, hidden) = shown(&jira);
        assert!(!config.to_string().contains("tok") && hidden == ["api_token"]);
        let change = json!({ "base_url": "https://y.atlassian.net", "email": "a@b.c", "project_key": "OPS" });
        assert_eq!(keep_secrets(&jira, &change)["api_token"], "tok");
        let replaced = json!({ "api_token": "new" });
        assert_eq!(keep_secrets(&jira, &replaced)["api_token"], "new");
    }
}
