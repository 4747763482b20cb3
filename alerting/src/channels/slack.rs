//! Slack through an incoming webhook: a Block Kit message (header, a section
//! of facts, an "Open in Sightline" button) with `text` as the notification
//! fallback, within Block Kit's length limits and with user input escaped
//! for mrkdwn.

use serde_json::{Value, json};

use super::{HttpRequest, TEST_NOTICE, facts, one_line, state_word, truncate_chars};
use crate::{AlertState, Notification};

/// Block Kit's limits (api.slack.com/reference/block-kit/blocks).
pub const HEADER_MAX: usize = 150;
pub const SECTION_TEXT_MAX: usize = 3000;
pub const FIELD_TEXT_MAX: usize = 2000;
pub const FIELDS_MAX: usize = 10;
pub const BUTTON_URL_MAX: usize = 3000;

pub fn request(webhook_url: &str, n: &Notification) -> HttpRequest {
    HttpRequest {
        method: "POST",
        url: webhook_url.to_owned(),
        headers: vec![],
        body: serde_json::to_vec(&message(n)).expect("a message serializes"),
    }
}

/// The message: `{"text", "blocks"}`.
pub fn message(n: &Notification) -> Value {
    let (emoji, verb) = match n.state {
        AlertState::Firing => (":rotating_light:", "is firing"),
        AlertState::Resolved => (":white_check_mark:", "has resolved"),
    };
    let test = if n.test { "[test] " } else { "" };
    let header = format!("{emoji} {test}{}: {}", capitalized(state_word(n.state)), one_line(&n.alert.name));

    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate_chars(&header, HEADER_MAX), "emoji": true},
    })];
    if n.test {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!(":test_tube: *Test message.* {}", escape(TEST_NOTICE))}],
        }));
    }
    // The sentence's fixed words take some 40 characters; the two names
    // share the rest of the section's limit.
    let name_budget = (SECTION_TEXT_MAX - 100) / 2;
    let sentence = format!(
        "*{}* {verb} in *{}*.",
        escape_within(&one_line(&n.alert.name), name_budget),
        escape_within(&one_line(&n.project.name), name_budget)
    );
    let fields: Vec<Value> = facts(n)
        .into_iter()
        .filter(|f| f.label != "Alert")
        .take(FIELDS_MAX)
        .map(|f| {
            let value = match f.label {
                "Time" => date_token(n.at, &f.value),
                "Metric" => format!("`{}`", escape_within(&one_line(&f.value), FIELD_TEXT_MAX - 40)),
                _ => escape_within(&one_line(&f.value), FIELD_TEXT_MAX - 40),
            };
            json!({"type": "mrkdwn", "text": format!("*{}*\n{value}", f.label)})
        })
        .collect();
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": sentence}, "fields": fields}));
    blocks.push(link_block(&n.link, n.state));

    json!({"text": fallback(n), "blocks": blocks})
}

/// The notification text (what a phone's banner shows): the summary, escaped
/// since Slack reads the top-level `text` as mrkdwn.
fn fallback(n: &Notification) -> String {
    escape_within(&one_line(&n.summary()), SECTION_TEXT_MAX)
}

/// The button to the dashboard page; a link in a context block when the URL
/// is longer than a button takes.
fn link_block(link: &str, state: AlertState) -> Value {
    if link.chars().count() <= BUTTON_URL_MAX {
        let mut button = json!({
            "type": "button",
            "text": {"type": "plain_text", "text": "Open in Sightline"},
            "url": link,
            "action_id": "open_in_sightline",
        });
        if state == AlertState::Firing {
            button["style"] = json!("danger");
        }
        json!({"type": "actions", "elements": [button]})
    } else {
        json!({"type": "context", "elements": [{"type": "plain_text", "text": truncate_chars(link, SECTION_TEXT_MAX)}]})
    }
}

/// A Slack date token: each reader sees the time in their own zone; clients
/// that cannot show it show `fallback`.
fn date_token(at_ms: i64, fallback: &str) -> String {
    format!("<!date^{}^{{date_short_pretty}} {{time_secs}}|{fallback}>", at_ms.div_euclid(1000))
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// `&`, `<` and `>` as Slack's mrkdwn wants them (`&amp;`, `&lt;`, `&gt;`),
/// so user input cannot open a link, a mention or a date token.
pub fn escape(s: &str) -> String {
    escape_within(s, usize::MAX)
}

/// [`escape`], cut so the escaped text is at most `max` characters (never
/// inside an entity), ending in `…` when cut.
pub fn escape_within(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut len = 0;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let piece = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            _ => "",
        };
        let piece_len = if piece.is_empty() { 1 } else { piece.len() };
        // Room for the ellipsis unless this is the last character.
        let reserve = usize::from(chars.peek().is_some());
        if len + piece_len + reserve > max {
            out.push('…');
            return out;
        }
        if piece.is_empty() {
            out.push(c)
        } else {
            out.push_str(piece)
        }
        len += piece_len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::fixture::notification;

    #[test]
    fn mrkdwn_specials_are_escaped_and_cuts_never_split_an_entity() {
        assert_eq!(escape("a <b> & c"), "a &lt;b&gt; &amp; c");
        assert_eq!(escape_within("&&&", 15), "&amp;&amp;&amp;");
        let cut = escape_within("&&&&", 12);
        assert_eq!(cut, "&amp;&amp;…");
        assert!(escape_within(&"<".repeat(5000), 3000).chars().count() <= 3000);
    }

    #[test]
    fn the_message_has_a_fallback_a_header_facts_and_the_link() {
        let mut n = notification(AlertState::Firing);
        n.alert.name = "<!channel> & co".into();
        let m = message(&n);
        assert!(m["text"].as_str().unwrap().contains("&lt;!channel&gt; &amp; co"));
        let blocks = m["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], ":rotating_light: Firing: <!channel> & co");
        let section = &blocks[1];
        assert_eq!(section["text"]["text"], "*&lt;!channel&gt; &amp; co* is firing in *Shop*.");
        let fields = section["fields"].as_array().unwrap();
        assert_eq!(fields.len(), 6);
        assert_eq!(fields[0]["text"], "*Metric*\n`error_rate`");
        assert_eq!(
            fields[5]["text"],
            "*Time*\n<!date^1714571107^{date_short_pretty} {time_secs}|Wed, 01 May 2024 13:45:07 GMT>"
        );
        assert_eq!(blocks[2]["elements"][0]["url"], n.link.as_str());
    }

    #[test]
    fn long_names_stay_within_the_limits() {
        let mut n = notification(AlertState::Resolved);
        n.alert.name = "&".repeat(4000);
        n.project.name = "p".repeat(4000);
        n.test = true;
        let m = message(&n);
        let blocks = m["blocks"].as_array().unwrap();
        let chars = |v: &Value| v.as_str().unwrap().chars().count();
        assert!(chars(&blocks[0]["text"]["text"]) <= HEADER_MAX);
        assert!(blocks[1]["elements"][0]["text"].as_str().unwrap().contains("Test message"));
        assert!(chars(&blocks[2]["text"]["text"]) <= SECTION_TEXT_MAX);
        assert!(blocks[2]["fields"].as_array().unwrap().iter().all(|f| chars(&f["text"]) <= FIELD_TEXT_MAX));
        assert!(m["text"].as_str().unwrap().starts_with("[test] Resolved: &amp;&amp;"));
    }
}
