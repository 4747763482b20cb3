//! Microsoft Teams through a Workflows webhook ("When a Teams webhook request
//! is received"): a message with one Adaptive Card 1.4 attachment — a title,
//! the facts and an "Open in Sightline" action.

use serde_json::{Value, json};

use super::{HttpRequest, TEST_NOTICE, facts, one_line, truncate_chars};
use crate::{AlertState, Notification};

pub const CARD_CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";
/// The newest card version every Teams client renders.
pub const CARD_VERSION: &str = "1.4";

pub fn request(webhook_url: &str, n: &Notification) -> HttpRequest {
    HttpRequest {
        method: "POST",
        url: webhook_url.to_owned(),
        headers: vec![],
        body: serde_json::to_vec(&message(n)).expect("a message serializes"),
    }
}

/// `{"type": "message", "attachments": [<the card>]}`.
pub fn message(n: &Notification) -> Value {
    json!({
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": null, "content": card(n)}],
    })
}

fn card(n: &Notification) -> Value {
    let color = match n.state {
        AlertState::Firing => "Attention",
        AlertState::Resolved => "Good",
    };
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": truncate_chars(&one_line(&n.summary()), 500),
        "weight": "Bolder",
        "size": "Medium",
        "color": color,
        "wrap": true,
    })];
    if n.test {
        let notice = format!("Test message. {TEST_NOTICE}");
        body.push(json!({"type": "TextBlock", "text": notice, "isSubtle": true, "wrap": true}));
    }
    let facts: Vec<Value> = facts(n)
        .into_iter()
        .map(|f| json!({"title": f.label, "value": truncate_chars(&one_line(&f.value), 500)}))
        .collect();
    body.push(json!({"type": "FactSet", "facts": facts}));
    json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "fallbackText": one_line(&n.summary()),
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open in Sightline", "url": n.link}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::fixture::notification;

    #[test]
    fn the_card_lists_the_facts_and_opens_the_link() {
        let mut n = notification(AlertState::Resolved);
        n.test = true;
        let m = message(&n);
        assert_eq!(m["type"], "message");
        let attachment = &m["attachments"][0];
        assert_eq!(attachment["contentType"], CARD_CONTENT_TYPE);
        assert!(attachment["contentUrl"].is_null());
        let card = &attachment["content"];
        assert_eq!(card["version"], "1.4");
        assert_eq!(card["body"][0]["text"], n.summary());
        assert_eq!(card["body"][0]["color"], "Good");
        assert!(card["body"][1]["text"].as_str().unwrap().starts_with("Test message."));
        let facts = card["body"][2]["facts"].as_array().unwrap();
        assert_eq!(facts[0], json!({"title": "Alert", "value": "Checkout errors"}));
        assert_eq!(facts[6], json!({"title": "Time", "value": "Wed, 01 May 2024 13:45:07 GMT"}));
        assert_eq!(card["actions"][0], json!({"type": "Action.OpenUrl", "title": "Open in Sightline", "url": n.link}));
    }
}
