//! The delivery outbox: pending deliveries live in the store, so a restart
//! loses none. One task sends whatever is due, one at a time per channel
//! and within each channel's rate limit; a delivery is retried with
//! exponential backoff and jitter (or when `Retry-After` says) until the
//! receiver answers 2xx. A 4xx other than 408 and 429 stops it and is shown
//! on the channel; so is a destination `--deny-private-egress` refuses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use sightline_store::{Channel, Delivery, DeliveryStatus, Store, StoreError};
use tokio::sync::Notify;

use crate::Notification;
use crate::channels::{self, ChannelConfig};

/// The first retry waits about this long; each next one twice as long.
const FIRST_BACKOFF_MS: i64 = 1_000;
/// No wait between retries is longer.
const MAX_BACKOFF_MS: i64 = 3_600_000;
/// A delivery still failing after this many attempts fails for good (with
/// the doubling capped at an hour, about a day of trying).
const MAX_ATTEMPTS: i64 = 30;
/// Longest a receiver may take to answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries read from the store per round.
const BATCH: i64 = 50;

/// How email channels send.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// `smtp://host:port`, `smtps://...` or with `?tls=required`.
    pub url: String,
    pub from: String,
}

#[derive(Debug, Clone, Default)]
pub struct OutboxSettings {
    pub smtp: Option<SmtpSettings>,
    /// Refuse loopback, private, link-local and unique-local destinations.
    pub deny_private_egress: bool,
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub status: DeliveryStatus,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    /// What the receiver's `Retry-After` asked, in ms.
    pub retry_after_ms: Option<i64>,
}

pub struct Outbox {
    store: Store,
    http: reqwest::Client,
    settings: OutboxSettings,
    wake: Notify,
    /// Per channel: the minute window's start (ms) and deliveries sent in it.
    sent: Mutex<HashMap<String, (i64, i64)>>,
}

impl Outbox {
    pub fn new(store: Store, settings: OutboxSettings) -> Outbox {
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Sightline")
            .build()
            .expect("an HTTP client builds");
        Outbox { store, http, settings, wake: Notify::new(), sent: Mutex::default() }
    }

    /// Says new deliveries are queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Sends what is due, for ever.
    pub async fn run(&self) {
        loop {
            let wait = match self.round().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(error = %e, "the outbox could not read the store");
                    Duration::from_secs(1)
                }
            };
            let _ = tokio::time::timeout(wait, self.wake.notified()).await;
        }
    }

    /// Attempts every due delivery once; says how long to wait for the next.
    async fn round(&self) -> Result<Duration, StoreError> {
        loop {
            let due = self.store.due_deliveries(crate::now_ms(), BATCH).await?;
            if due.is_empty() {
                break;
            }
            for delivery in &due {
                self.attempt(delivery).await?;
            }
            if (due.len() as i64) < BATCH {
                break;
            }
        }
        let next = self.store.next_delivery_due().await?;
        let wait_ms = next.map_or(1_000, |at| (at - crate::now_ms()).clamp(0, 1_000));
        Ok(Duration::from_millis(wait_ms as u64))
    }

    /// Makes one attempt at a delivery and records what came of it.
    pub async fn attempt(&self, delivery: &Delivery) -> Result<Attempt, StoreError> {
        let now = crate::now_ms();
        let Some(channel) = self.store.channel_by_id(&delivery.channel_id).await? else {
            let outcome = failed(None, "the channel was deleted".into());
            self.record(delivery, &outcome, now).await?;
            return Ok(outcome);
        };
        if let Some(until) = self.rate_limited(&channel, now) {
            self.store.postpone_delivery(&delivery.id, until).await?;
            metrics::counter!("sightline_alert_deliveries_total", "outcome" => "rate_limited").increment(1);
            return Ok(Attempt { error: Some("rate limited".into()), ..retry(None, String::new(), None) });
        }
        let outcome = self.send(&channel, delivery).await?;
        let next = match outcome.status {
            DeliveryStatus::Pending => now + backoff_ms(delivery.attempts, outcome.retry_after_ms),
            _ => now,
        };
        self.record(delivery, &outcome, next).await?;
        match outcome.status {
            DeliveryStatus::Delivered if channel.last_error.is_some() => {
                self.store.set_channel_error(&channel.id, None).await?
            }
            DeliveryStatus::Failed => self.store.set_channel_error(&channel.id, outcome.error.as_deref()).await?,
            _ => {}
        }
        Ok(outcome)
    }

    async fn record(&self, delivery: &Delivery, outcome: &Attempt, next: i64) -> Result<(), StoreError> {
        let mut status = outcome.status.clone();
        let mut error = outcome.error.clone();
        if status == DeliveryStatus::Pending && delivery.attempts + 1 >= MAX_ATTEMPTS {
            status = DeliveryStatus::Failed;
            error = Some(format!("gave up after {MAX_ATTEMPTS} attempts: {}", error.unwrap_or_default()));
        }
        let label = match status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Pending => "retry",
            DeliveryStatus::Failed => "failed",
        };
        metrics::counter!("sightline_alert_deliveries_total", "outcome" => label).increment(1);
        let http_status = outcome.http_status.map(i64::from);
        self.store.record_attempt(&delivery.id, status, http_status, error.as_deref(), next).await
    }

    /// `Some(until)` when the channel has used its deliveries of this minute.
    fn rate_limited(&self, channel: &Channel, now: i64) -> Option<i64> {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let (start, count) = sent.entry(channel.id.clone()).or_insert((now, 0));
        if now - *start >= 60_000 {
            (*start, *count) = (now, 0);
        }
        if *count >= channel.rate_limit_per_min {
            return Some(*start + 60_000);
        }
        *count += 1;
        None
    }

    async fn send(&self, channel: &Channel, delivery: &Delivery) -> Result<Attempt, StoreError> {
        let config: ChannelConfig = match serde_json::from_value(serde_json::json!({
            "kind": channel.kind,
            "config": channel.config,
        })) {
            Ok(config) => config,
            Err(e) => return Ok(failed(None, format!("the channel's config does not read: {e}"))),
        };
        let notification: Notification = match serde_json::from_value(delivery.payload.clone()) {
            Ok(n) => n,
            Err(e) => return Ok(failed(None, format!("the delivery's payload does not read: {e}"))),
        };
        if let ChannelConfig::Email { to } = &config {
            return Ok(self.send_email(to, &notification).await);
        }
        let issue = match &delivery.incident_id {
            Some(incident) => self.store.issue_ref(incident, &channel.id).await?,
            None => None,
        };
        let Some(request) = channels::http_request(&config, &notification, issue.as_deref()) else {
            return Ok(failed(None, format!("a {} channel does not send over HTTP", channel.kind)));
        };
        if self.settings.deny_private_egress
            && let Err(refused) = check_public(&request.url).await
        {
            return Ok(failed(None, refused));
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("a known method");
        let mut builder = self
            .http
            .request(method, &request.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Sightline-Delivery", &delivery.id)
            .body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => return Ok(retry(None, format!("could not reach the receiver: {e}"), None)),
        };
        let status = response.status().as_u16();
        let retry_after =
            response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.bytes().await.unwrap_or_default();
        if (200..300).contains(&status) {
            if let (Some(incident), None) = (&delivery.incident_id, &issue)
                && let Some(made) = channels::issue_ref_from_response(&config, status, &body)
            {
                self.store.remember_issue_ref(incident, &channel.id, &made).await?;
            }
            return Ok(delivered(Some(status)));
        }
        let excerpt: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        let message = format!("the receiver answered {status}: {excerpt}");
        Ok(if status == 408 || status == 429 || status >= 500 {
            retry(Some(status), message, retry_after.as_deref().and_then(parse_retry_after))
        } else {
            failed(Some(status), message)
        })
    }

    async fn send_email(&self, to: &[String], n: &Notification) -> Attempt {
        let Some(smtp) = &self.settings.smtp else {
            return failed(None, "no SMTP server is configured (--smtp-url)".into());
        };
        let message = match channels::email::message(&smtp.from, to, n) {
            Ok(message) => message,
            Err(e) => return failed(None, e),
        };
        match channels::email::send(&smtp.url, message).await {
            Ok(()) => delivered(None),
            Err(e) => retry(None, e, None),
        }
    }
}

fn delivered(http_status: Option<u16>) -> Attempt {
    Attempt { status: DeliveryStatus::Delivered, http_status, error: None, retry_after_ms: None }
}

fn failed(http_status: Option<u16>, error: String) -> Attempt {
    Attempt { status: DeliveryStatus::Failed, http_status, error: Some(error), retry_after_ms: None }
}

fn retry(http_status: Option<u16>, error: String, retry_after_ms: Option<i64>) -> Attempt {
    Attempt { status: DeliveryStatus::Pending, http_status, error: Some(error), retry_after_ms }
}

/// `Retry-After` in ms: delta-seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<i64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<i64>() {
        return Some(seconds.max(0) * 1000);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64;
    Some((at_ms - crate::now_ms()).max(0))
}

/// The wait before attempt `attempts + 1`: doubling from a second, capped
/// at an hour, times a jitter of 0.5 to 1.5, and never shorter than what
/// the receiver's `Retry-After` asked.
pub fn backoff_ms(attempts: i64, retry_after_ms: Option<i64>) -> i64 {
    let base = FIRST_BACKOFF_MS.saturating_mul(1_i64 << attempts.clamp(0, 30)).min(MAX_BACKOFF_MS);
    let jittered = (base as f64 * rand::rng().random_range(0.5..1.5)) as i64;
    jittered.max(retry_after_ms.unwrap_or(0)).min(24 * MAX_BACKOFF_MS)
}

/// Refuses a URL whose host is, or resolves to, a loopback, private,
/// link-local or unique-local address.
pub async fn check_public(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let host = parsed.host_str().ok_or_else(|| format!("{url:?} has no host"))?.trim_matches(['[', ']']);
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("{host} does not resolve: {e}"))?
            .map(|a| a.ip())
            .collect(),
    };
    match addresses.iter().find(|ip| is_private(ip)) {
        Some(ip) => Err(format!("{host} is a private address ({ip}) and --deny-private-egress is set")),
        None => Ok(()),
    }
}

fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(&IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_caps_at_an_hour_and_honours_retry_after() {
        for attempts in 0..6 {
            let base = 1_000 * (1 << attempts);
            for _ in 0..50 {
                let wait = backoff_ms(attempts, None);
                assert!((base / 2..=base * 3 / 2).contains(&wait), "attempt {attempts}: {wait}");
            }
        }
        assert!(backoff_ms(40, None) <= 5_400_000);
        assert!(backoff_ms(0, Some(120_000)) >= 120_000);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("7"), Some(7_000));
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        assert!((28_000..=30_000).contains(&parse_retry_after(&soon).unwrap()), "{soon}");
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(0), "a past date: now");
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[tokio::test]
    async fn private_destinations_are_named() {
        for url in [
            "http://127.0.0.1:9/x",
            "http://10.1.2.3/",
            "http://[::1]:80/",
            "http://192.168.0.1",
            "http://localhost:8080/",
        ] {
            assert!(check_public(url).await.is_err(), "{url}");
        }
        assert!(check_public("https://93.184.215.14/").await.is_ok());
        assert!(check_public("http://100.64.1.1/").await.is_err());
    }
}
