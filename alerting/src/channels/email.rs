//! Email: a multipart/alternative message (plain text and HTML, every user
//! string HTML-escaped) whose subject is the summary, and its delivery over
//! SMTP with lettre. A firing and its resolve share a thread: the resolve
//! answers the firing's Message-ID, both derived from the incident.

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{TEST_NOTICE, facts, one_line, state_word};
use crate::{AlertState, Notification};

/// The message telling `to` of `n`, from `from` (`Name <addr>` or `addr`).
pub fn message(from: &str, to: &[String], n: &Notification) -> Result<Message, String> {
    let from: Mailbox = from.parse().map_err(|e| format!("from address {from:?}: {e}"))?;
    if to.is_empty() {
        return Err("no recipient".to_owned());
    }
    let domain = from.email.domain().to_owned();
    let mut builder = Message::builder().from(from).subject(one_line(&n.summary())).message_id(Some(message_id(
        &n.incident_id,
        n.state,
        &domain,
    )));
    for address in to {
        builder = builder.to(address.parse().map_err(|e| format!("recipient {address:?}: {e}"))?);
    }
    if n.state == AlertState::Resolved {
        let firing = message_id(&n.incident_id, AlertState::Firing, &domain);
        builder = builder.in_reply_to(firing.clone()).references(firing);
    }
    builder.multipart(MultiPart::alternative_plain_html(plain(n), html(n))).map_err(|e| e.to_string())
}

/// Sends `message` through the SMTP server at `smtp_url`:
/// `smtp://host:port` (plain), `smtp://host:port?tls=required` (STARTTLS),
/// `smtps://host:port` (TLS), with `user:password@` when the server wants it.
pub async fn send(smtp_url: &str, message: Message) -> Result<(), String> {
    // lettre's URL errors never repeat the URL, so no password leaks here.
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url).map_err(|e| e.to_string())?.build();
    transport.send(message).await.map(|_| ()).map_err(|e| e.to_string())
}

/// `<sightline.{incident}.{state}@{domain}>`, the incident reduced to
/// characters a Message-ID may hold.
fn message_id(incident_id: &str, state: AlertState, domain: &str) -> String {
    let incident: String =
        incident_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("<sightline.{incident}.{}@{domain}>", state_word(state))
}

fn plain(n: &Notification) -> String {
    let mut text = String::new();
    if n.test {
        text.push_str(&format!("TEST MESSAGE: {TEST_NOTICE}\n\n"));
    }
    text.push_str(&format!("{}\n\n", one_line(&n.summary())));
    for f in facts(n) {
        text.push_str(&format!("{}: {}\n", f.label, one_line(&f.value)));
    }
    text.push_str(&format!("\nOpen in Sightline: {}\n", n.link));
    text
}

fn html(n: &Notification) -> String {
    let mut body = String::new();
    if n.test {
        body.push_str(&format!(
            "<p style=\"padding:8px;border:1px solid #b58900;background:#fdf6e3\">\
             <strong>Test message.</strong> {}</p>\n",
            escape(TEST_NOTICE)
        ));
    }
    let (color, verb) = match n.state {
        AlertState::Firing => ("#c0392b", "is firing"),
        AlertState::Resolved => ("#1e8449", "has resolved"),
    };
    body.push_str(&format!(
        "<h2 style=\"color:{color}\">{}</h2>\n\
         <p>Sightline alert <strong>{}</strong> {verb} in project <strong>{}</strong>.</p>\n<table>\n",
        escape(&n.summary()),
        escape(&n.alert.name),
        escape(&n.project.name)
    ));
    for f in facts(n) {
        body.push_str(&format!(
            "<tr><th align=\"left\" style=\"padding-right:12px\">{}</th><td>{}</td></tr>\n",
            f.label,
            escape(&f.value)
        ));
    }
    body.push_str(&format!("</table>\n<p><a href=\"{}\">Open in Sightline</a></p>\n", escape(&n.link)));
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}</body></html>\n",
        escape(&n.summary())
    )
}

/// `s` safe in HTML text and in a double- or single-quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::fixture::notification;

    #[test]
    fn html_specials_are_escaped() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn the_parts_escape_user_input_and_link_back() {
        let mut n = notification(AlertState::Firing);
        n.alert.name = "<script>alert(1)</script>".into();
        let html = html(&n);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("<a href=\"https://sightline.example/projects/pr_1/errors?from=1&amp;to=2\">"));
        assert!(plain(&n).contains("Open in Sightline: https://sightline.example/projects/pr_1/errors?from=1&to=2\n"));
    }

    #[test]
    fn bad_addresses_are_errors() {
        let n = notification(AlertState::Firing);
        assert!(message("not an address", &["a@b.example".into()], &n).unwrap_err().starts_with("from address"));
        assert!(message("s@x.example", &["nope".into()], &n).unwrap_err().starts_with("recipient"));
        assert_eq!(message("s@x.example", &[], &n).unwrap_err(), "no recipient");
        assert!(message("Sightline <s@x.example>", &["a@b.example".into()], &n).is_ok());
    }

    #[test]
    fn a_resolve_answers_its_firing() {
        let id = message_id("inc/42", AlertState::Firing, "x.example");
        assert_eq!(id, "<sightline.inc_42.firing@x.example>");
        let resolved = notification(AlertState::Resolved);
        let m = message("s@x.example", &["a@b.example".into()], &resolved).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("In-Reply-To: <sightline.inc_42.firing@x.example>"), "{raw}");
    }
}
