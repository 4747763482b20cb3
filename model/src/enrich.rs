//! Edge enrichment: what the server adds to a validated event.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use crate::event::{ClientEvent, DeviceClass, Event};
use crate::limits::MAX_CLOCK_SKEW_MS;

/// Device, browser and OS read from a `User-Agent` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgentInfo {
    pub device: DeviceClass,
    pub browser: String,
    pub os: String,
}

impl UserAgentInfo {
    /// Parses a `User-Agent`; unknown parts are `"unknown"`.
    pub fn parse(user_agent: Option<&str>) -> UserAgentInfo {
        let Some(ua) = user_agent.filter(|ua| !ua.is_empty()) else {
            return UserAgentInfo::unknown();
        };
        let Some(parsed) = woothee::parser::Parser::new().parse(ua) else {
            return UserAgentInfo::unknown();
        };
        // woothee has no tablet class: iPads and Android without "Mobile"
        // are the well-known tablet signatures.
        let tablet = ua.contains("iPad") || (ua.contains("Android") && !ua.contains("Mobile"));
        let device = match parsed.category {
            _ if tablet => DeviceClass::Tablet,
            "pc" => DeviceClass::Desktop,
            "smartphone" | "mobilephone" => DeviceClass::Mobile,
            "crawler" => DeviceClass::Bot,
            _ => DeviceClass::Unknown,
        };
        let known = |s: &str| if s.is_empty() || s == "UNKNOWN" { "unknown".to_owned() } else { s.to_owned() };
        UserAgentInfo { device, browser: known(parsed.name), os: known(parsed.os) }
    }

    fn unknown() -> UserAgentInfo {
        UserAgentInfo { device: DeviceClass::Unknown, browser: "unknown".into(), os: "unknown".into() }
    }
}

/// `User-Agent`s parsed before, by their text: a site's visitors send a
/// few thousand distinct ones, and woothee's parse of each request's took
/// 3 % of the ingest threads' time (perf at 230k events/s).
#[derive(Default)]
pub struct UserAgentCache(Mutex<HashMap<Box<str>, UserAgentInfo>>);

impl UserAgentCache {
    /// Distinct `User-Agent`s held; past that the cache starts over.
    pub const MAX_ENTRIES: usize = 4_096;

    /// [`UserAgentInfo::parse`], remembered.
    pub fn parse(&self, user_agent: Option<&str>) -> UserAgentInfo {
        let Some(ua) = user_agent else {
            return UserAgentInfo::parse(None);
        };
        if let Some(known) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(ua) {
            return known.clone();
        }
        let parsed = UserAgentInfo::parse(Some(ua));
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= Self::MAX_ENTRIES {
            known.clear();
        }
        known.insert(ua.into(), parsed.clone());
        parsed
    }
}

/// What the server knows about the request a batch came in.
#[derive(Debug, Clone)]
pub struct IngestContext {
    pub project_id: String,
    /// Server receive time, ms since the epoch.
    pub received_at: i64,
    pub user_agent: UserAgentInfo,
    /// The batch's event ids.
    pub ids: EventIds,
}

impl IngestContext {
    /// The context of a batch received now, its ids starting from now.
    pub fn new(project_id: String, received_at: i64, user_agent: UserAgentInfo) -> IngestContext {
        IngestContext { project_id, received_at, user_agent, ids: EventIds::starting_now() }
    }
}

/// A batch's event ids: UUIDv7s from one reading of the clock. The first
/// is [`Uuid::now_v7`]; each next one adds one to the 62 random bits after
/// the variant (RFC 9562, section 6.2, method 2: monotonic random), so a
/// batch's ids are unique and in order, and as hard to guess as the
/// first. `now_v7` for each event took a lock and read the clock each
/// time: 4 % of the ingest threads' instructions (bench/README.md).
#[derive(Debug, Clone)]
pub struct EventIds(Cell<u128>);

impl EventIds {
    /// The random bits of a v7 id below its variant.
    const RANDOM: u128 = (1 << 62) - 1;

    pub fn starting_now() -> EventIds {
        EventIds(Cell::new(Uuid::now_v7().as_u128()))
    }

    /// The next id.
    pub fn next_id(&self) -> Uuid {
        let id = self.0.get();
        self.0.set((id & !Self::RANDOM) | (id.wrapping_add(1) & Self::RANDOM));
        Uuid::from_u128(id)
    }
}

/// Turns a validated client event into the event the pipeline sees.
pub fn enrich(event: ClientEvent, ctx: &IngestContext) -> Event {
    let ts = match event.ts {
        Some(ts) if ts <= ctx.received_at + MAX_CLOCK_SKEW_MS => ts,
        _ => ctx.received_at,
    };
    Event {
        id: ctx.ids.next_id(),
        project_id: ctx.project_id.clone(),
        received_at: ctx.received_at,
        ts,
        client_ts: event.ts,
        anonymous_id: event.anonymous_id,
        session_id: event.session_id,
        url: event.url,
        path: event.path,
        release: event.release,
        device: ctx.user_agent.device,
        browser: ctx.user_agent.browser.clone(),
        os: ctx.user_agent.os.clone(),
        kind: event.kind,
    }
}

/// The path of a page's URL, without query or fragment (`/` when empty);
/// `None` when `url` is neither an absolute URL nor a path.
pub fn path_of(url: &str) -> Option<String> {
    match plain_http_path(url) {
        Some("") => Some("/".to_owned()),
        Some(path) => Some(path.to_owned()),
        None => parsed_path(url),
    }
}

/// [`path_of`] by the WHATWG parser, for any URL.
fn parsed_path(url: &str) -> Option<String> {
    let path = match url::Url::parse(url) {
        Ok(parsed) => parsed.path().to_owned(),
        Err(_) if url.starts_with('/') => url.split(['?', '#']).next().unwrap_or("").to_owned(),
        Err(_) => return None,
    };
    Some(if path.is_empty() { "/".to_owned() } else { path })
}

/// The path of an `http(s)` URL that the WHATWG parser would take as it is
/// (a lowercase host name, a path without percent signs, dot segments or
/// characters to encode; printable ASCII throughout), found by a byte scan;
/// `None` for any other URL, which the parser then reads. The parser took
/// 8 % of the ingest threads' time, most of it on URLs like these.
fn plain_http_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let bytes = rest.as_bytes();
    // A host of lowercase letters, digits, dots and hyphens, with no empty
    // label, no punycode label to check and no last label the parser would
    // read as an IPv4 number. (Labels are found in the one scan: searching
    // the host again for `xn--` and its last dot took half of this
    // function's instructions, callgrind.)
    let (mut at, mut label_start, mut label_before) = (0, 0, 0..0);
    while let Some(&b) = bytes.get(at) {
        match b {
            b'/' | b'?' | b'#' => break,
            b'.' if at == label_start => return None,
            b'.' => (label_before, label_start) = (label_start..at, at + 1),
            b'x' if at == label_start && bytes[at..].starts_with(b"xn--") => return None,
            b'a'..=b'z' | b'0'..=b'9' | b'-' => {}
            _ => return None,
        }
        at += 1;
    }
    // The last label, or the one before a trailing dot.
    let last = &bytes[if label_start < at { label_start..at } else { label_before }];
    if at == 0 || last.iter().all(u8::is_ascii_digit) || last.starts_with(b"0x") {
        return None;
    }
    let host_end = at;
    // A path with nothing to encode or resolve.
    let mut previous = b'/';
    while let Some(&b) = bytes.get(at) {
        match b {
            b'?' | b'#' => break,
            b'.' if previous == b'/' => return None,
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => {}
            b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'('..=b',' | b';' | b'=' | b':' | b'@' | b'/' => {
            }
            _ => return None,
        }
        previous = b;
        at += 1;
    }
    // Printable ASCII after it: nothing the parser strips.
    bytes[at..].iter().all(u8::is_ascii_graphic).then_some(&rest[host_end..at])
}

/// The referring site of a page view: the referrer's host without `www.`,
/// lowercase; empty when there is none or it is the page's own site (an
/// internal navigation).
pub fn referrer_domain<'a>(referrer: Option<&'a str>, page_url: Option<&str>) -> Cow<'a, str> {
    let Some(host) = referrer.and_then(host_of) else {
        return Cow::Borrowed("");
    };
    fn site(host: &str) -> &str {
        host.strip_prefix("www.").unwrap_or(host)
    }
    let host = site(host);
    if page_url.and_then(host_of).is_some_and(|page| site(page).eq_ignore_ascii_case(host)) {
        Cow::Borrowed("")
    } else if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// The host of an absolute URL, without user info or port.
fn host_of(url: &str) -> Option<&str> {
    let scheme_end = url.as_bytes().windows(3).position(|w| w == b"://")?;
    let rest = &url[scheme_end + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    #[test]
    fn the_user_agent_cache_answers_as_the_parser_and_stays_bounded() {
        let cache = UserAgentCache::default();
        for ua in [Some(CHROME_MAC), Some(SAFARI_IPHONE), Some(IPAD), Some(GOOGLEBOT), Some(""), None] {
            assert_eq!(cache.parse(ua), UserAgentInfo::parse(ua), "{ua:?}, first");
            assert_eq!(cache.parse(ua), UserAgentInfo::parse(ua), "{ua:?}, remembered");
        }
        for i in 0..UserAgentCache::MAX_ENTRIES + 10 {
            let ua = format!("{CHROME_MAC} build/{i}");
            assert_eq!(cache.parse(Some(&ua)).browser, "Chrome");
            assert!(cache.0.lock().unwrap().len() <= UserAgentCache::MAX_ENTRIES);
        }
    }

    #[test]
    fn referrer_domains_drop_www_and_internal_navigation() {
        let page = Some("https://shop.example/cart");
        assert_eq!(referrer_domain(Some("https://www.Google.com/search?q=x"), page), "google.com");
        assert_eq!(referrer_domain(Some("https://u:p@news.example:8443/a"), page), "news.example");
        assert_eq!(referrer_domain(Some("https://www.shop.example/"), page), "");
        assert_eq!(referrer_domain(Some("https://www.Shop.EXAMPLE/"), page), "");
        assert_eq!(referrer_domain(Some("https://WWW.Shop.example/"), page), "www.shop.example");
        assert_eq!(referrer_domain(None, page), "");
        assert_eq!(referrer_domain(Some("android-app://com.slack"), None), "com.slack");
        assert_eq!(referrer_domain(Some("not a url"), page), "");
    }

    const CHROME_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
    const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

    #[test]
    fn user_agents_are_classified() {
        let chrome = UserAgentInfo::parse(Some(CHROME_MAC));
        assert_eq!(
            (chrome.device, chrome.browser.as_str(), chrome.os.as_str()),
            (DeviceClass::Desktop, "Chrome", "Mac OSX")
        );
        let iphone = UserAgentInfo::parse(Some(SAFARI_IPHONE));
        assert_eq!(
            (iphone.device, iphone.browser.as_str(), iphone.os.as_str()),
            (DeviceClass::Mobile, "Safari", "iPhone")
        );
        assert_eq!(UserAgentInfo::parse(Some(IPAD)).device, DeviceClass::Tablet);
        assert_eq!(UserAgentInfo::parse(Some(GOOGLEBOT)).device, DeviceClass::Bot);
        assert_eq!(UserAgentInfo::parse(None).device, DeviceClass::Unknown);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        #[test]
        fn the_byte_scan_finds_the_paths_the_parser_finds(
            scheme in proptest::sample::select(vec!["https://", "http://", "HTTP://", "https:/", "ftp://", "/", ""]),
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "a", "Z", "x", "xn--", "0", "9", "0x", "1.2", "255", ".", "..", "-", "/", "/.", "%", "%2e", "%2E",
                "?", "#", ":", ":80", ":99999", "@", "\\", " ", "\t", "\n", "é", "~", "!", "'", "\"", "<", "{",
                "shop.example", "www.", "/cart", "/a/../b",
            ]), 0..12),
        ) {
            let url = format!("{scheme}{}", parts.concat());
            proptest::prop_assert_eq!(path_of(&url), parsed_path(&url), "{:?}", url);
        }
    }

    #[test]
    fn plain_urls_take_the_byte_scan_and_the_rest_the_parser() {
        assert_eq!(plain_http_path("https://shop.example/cart?id=3#top"), Some("/cart"));
        assert_eq!(plain_http_path("http://a.b.example"), Some(""));
        for url in [
            "https://shop.example/a/../b",
            "https://SHOP.example/cart",
            "https://shop.example:8080/cart",
            "https://1.2.3.4/cart",
            "https://1.2.3.4.0xa/cart",
            "https://1.2.3.4.5./cart",
            "https://shop.example/caf%C3%A9",
            "https://shop.example/a b",
            "https://xn--caf-dma.example/",
        ] {
            assert_eq!(plain_http_path(url), None, "{url}");
            assert_eq!(path_of(url), parsed_path(url), "{url}");
        }
    }

    #[test]
    fn paths_come_from_urls() {
        assert_eq!(path_of("https://shop.example/cart?id=3#top").as_deref(), Some("/cart"));
        assert_eq!(path_of("https://shop.example").as_deref(), Some("/"));
        assert_eq!(path_of("/docs/intro?x").as_deref(), Some("/docs/intro"));
        assert_eq!(path_of("docs/intro"), None);
    }

    #[test]
    fn a_clock_far_ahead_is_corrected() {
        let ctx = IngestContext::new("p".into(), 1_000_000_000_000, UserAgentInfo::parse(None));
        let ev = |ts| ClientEvent {
            ts,
            anonymous_id: "a".into(),
            session_id: None,
            url: Some("https://x.example/a".into()),
            path: "/a".into(),
            release: None,
            kind: EventKind::Pageview { referrer: None, title: None },
        };
        let day = MAX_CLOCK_SKEW_MS;
        assert_eq!(enrich(ev(Some(ctx.received_at + day + 1)), &ctx).ts, ctx.received_at);
        assert_eq!(enrich(ev(Some(ctx.received_at + day)), &ctx).ts, ctx.received_at + day);
        assert_eq!(enrich(ev(Some(ctx.received_at - 5_000)), &ctx).ts, ctx.received_at - 5_000);
        assert_eq!(enrich(ev(None), &ctx).ts, ctx.received_at);
        let a = enrich(ev(None), &ctx);
        let b = enrich(ev(None), &ctx);
        assert_ne!(a.id, b.id);
        assert_eq!(a.path, "/a");
    }

    #[test]
    fn a_batch_s_ids_are_distinct_ordered_version_7_ids_of_its_time() {
        let before = Uuid::now_v7();
        let ids = EventIds::starting_now();
        let batch: Vec<Uuid> = (0..1_000).map(|_| ids.next_id()).collect();
        for pair in batch.windows(2) {
            assert!(pair[0] < pair[1]);
        }
        for id in &batch {
            assert_eq!((id.get_version_num(), id.get_variant()), (7, uuid::Variant::RFC4122));
            assert_eq!(id.get_timestamp(), batch[0].get_timestamp());
        }
        assert!(before < batch[0]);
        // Another batch's ids start from their own random bits.
        let other = EventIds::starting_now().next_id();
        assert!(!batch.contains(&other));
        // Past the last random value, the count goes around within the
        // random bits: version and variant stay.
        let last = EventIds(Cell::new(batch[0].as_u128() | EventIds::RANDOM));
        let (top, wrapped) = (last.next_id(), last.next_id());
        assert_eq!(wrapped.as_u128(), top.as_u128() & !EventIds::RANDOM);
        assert_eq!((wrapped.get_version_num(), wrapped.get_variant()), (7, uuid::Variant::RFC4122));
    }
}
