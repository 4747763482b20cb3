//! Stack trace parsing: turns a raw JavaScript `Error.stack` string from V8
//! (Chrome, Edge, Node), SpiderMonkey (Firefox) or JavaScriptCore (Safari)
//! into [`StackFrame`]s, innermost first, and decides which frames belong to
//! the application ([`is_in_app`]).
//!
//! The parser is hand-written (no regex) and works line by line. Every line is
//! classified as:
//!
//! * a V8 frame: `at <function> (<location>)` or `at <location>`;
//! * a SpiderMonkey / JavaScriptCore frame: `<function>@<location>`, or the
//!   bare JavaScriptCore line `[native code]`;
//! * anything else (the `TypeError: message` header, blank lines, message
//!   continuation lines), which is skipped.
//!
//! Line and column numbers are split off the *end* of a location, so paths
//! containing colons or parentheses (Windows drives, `webpack-internal:///`,
//! URLs with ports, `Program Files (x86)`) keep their full file name. For
//! eval'd code the location of the eval call site in the enclosing script is
//! reported (V8 `eval at f (file:L:C), <anonymous>:l:c` → `file`, `L`, `C`;
//! SpiderMonkey `file line L > eval:l:c` → `file`, `L`, no column).
//!
//! The parser never panics, returns at most 256 frames and ignores lines
//! longer than 4096 bytes.

use std::sync::LazyLock;

use memchr::memmem;

/// Most frames [`parse_stack`] returns; later frames are dropped.
const MAX_FRAMES: usize = 256;
/// Lines longer than this (in bytes) are treated as not-a-frame.
const MAX_LINE_LEN: usize = 4096;

/// Browser-extension URL schemes (never the application's code).
const EXTENSION_SCHEMES: [&str; 4] =
    ["chrome-extension://", "moz-extension://", "safari-extension://", "safari-web-extension://"];

/// Public CDNs / third-party script hosts (never the application's code).
/// A host matches if it is equal to one of these or a subdomain of one.
const PUBLIC_CDN_HOSTS: [&str; 11] = [
    "cdn.jsdelivr.net",
    "unpkg.com",
    "cdnjs.cloudflare.com",
    "ajax.googleapis.com",
    "code.jquery.com",
    "cdn.skypack.dev",
    "esm.sh",
    "static.cloudflareinsights.com",
    "www.googletagmanager.com",
    "www.google-analytics.com",
    "connect.facebook.net",
];

/// Pseudo-locations engines print instead of a file; never in-app.
const PSEUDO_FILES: [&str; 3] = ["[native code]", "<anonymous>", "native"];

/// One parsed frame, borrowing the stack text: parsing allocates nothing
/// but the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackFrame<'a> {
    /// Function name as written (trimmed; V8's `async ` and SpiderMonkey's
    /// `cause*` prefixes removed); `None` for anonymous / top-level code.
    pub function: Option<&'a str>,
    /// URL or path as written in the stack, e.g.
    /// `https://cdn.shop.example/static/app.3f9a1c.js`,
    /// `/srv/app/node_modules/x/index.js` or `node:internal/timers`.
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// [`is_in_app`] of `file`; `false` when there is no file.
    pub in_app: bool,
}

/// Parses a raw `Error.stack` string from V8, SpiderMonkey or
/// JavaScriptCore; innermost frame first (the order the engines print).
///
/// Lines that are not frames (the `TypeError: message` header, blank lines,
/// a V8 `at <anonymous>` with neither function nor position) are skipped.
/// At most 256 frames are returned (the first 256); lines longer than 4096
/// bytes are ignored. Never panics on any input.
pub fn parse_stack(stack: &str) -> Vec<StackFrame<'_>> {
    let line_count = memchr::memchr_iter(b'\n', stack.as_bytes()).count() + 1;
    let mut frames: Vec<StackFrame> = Vec::with_capacity(line_count.min(MAX_FRAMES));
    for raw in lines(stack) {
        if frames.len() >= MAX_FRAMES {
            break;
        }
        if raw.len() > MAX_LINE_LEN {
            continue;
        }
        // A frame with neither a file nor a function (`at :0`) says nothing.
        if let Some(mut frame) = parse_line(raw).filter(|f| f.file.is_some() || f.function.is_some()) {
            frame.in_app = match (frames.last(), frame.file) {
                (Some(prev), Some(file)) if prev.file == Some(file) => prev.in_app,
                (_, file) => file.is_some_and(is_in_app),
            };
            frames.push(frame);
        }
    }
    frames
}

/// The stack's lines, split at `\n` (a `\r` before it is trimmed with the
/// rest of the line's whitespace).
fn lines(stack: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', stack.as_bytes()).chain(std::iter::once(stack.len())).map(move |end| {
        let line = &stack[start..end];
        start = end + 1;
        line
    })
}

/// Whether a frame file belongs to the application.
///
/// `false` for browser extensions (`chrome-extension://`, `moz-extension://`,
/// `safari-extension://`, `safari-web-extension://`), anything under a
/// `node_modules/` directory, Node internals (`node:…`, `internal/…`),
/// engine pseudo-files (`[native code]`, `<anonymous>`, V8's `native`), the
/// empty string, and well-known public CDNs (see the host list in the
/// source; subdomains of those hosts included); `true` otherwise.
pub fn is_in_app(file: &str) -> bool {
    let file = trim(file);
    if file.is_empty() || PSEUDO_FILES.contains(&file) {
        return false;
    }
    if EXTENSION_SCHEMES.iter().any(|scheme| starts_with_ignore_ascii_case(file, scheme)) {
        return false;
    }
    if file.starts_with("node:") || file.starts_with("internal/") {
        return false;
    }
    if has_node_modules_dir(file) {
        return false;
    }
    if let Some(host) = url_host(file)
        && is_public_cdn(host)
    {
        return false;
    }
    true
}

// ---------------------------------------------------------------------------
// Line classification

fn parse_line(raw: &str) -> Option<StackFrame<'_>> {
    let line = trim(raw);
    if line.is_empty() {
        return None;
    }
    if let Some(rest) = line.strip_prefix("at ") {
        return parse_v8(rest);
    }
    if line == "[native code]" {
        return Some(make_frame(None, Some(line), None, None));
    }
    if let Some((function, location)) = line.split_once('@') {
        return parse_at_sign(function, location);
    }
    None
}

// ---------------------------------------------------------------------------
// V8: `at <function> (<location>)` / `at <location>`

fn parse_v8(rest: &str) -> Option<StackFrame<'_>> {
    let mut rest = trim(rest);
    // `at async handler (...)`: the `async ` marker is not part of the name.
    // (`at async (...)` is a function literally named `async`.)
    if let Some(stripped) = rest.strip_prefix("async ") {
        let stripped = stripped.trim_start();
        if !stripped.is_empty() && !stripped.starts_with('(') {
            rest = stripped;
        }
    }

    if let Some(inner) = rest.strip_suffix(')') {
        // The location starts at the first " (" (function names practically
        // never contain one; locations may: `eval at f (...)`,
        // `C:\Program Files (x86)\...`) or at a leading '('.
        let open = if inner.starts_with('(') { Some(0) } else { find_space_paren(inner).map(|i| i + 1) };
        if let Some(open) = open {
            let function = &inner[..open];
            let location = &inner[open + 1..];
            return v8_paren_frame(function, location);
        }
    }

    // Bare location: anonymous function. Only a real position is usable;
    // `at <anonymous>` / `at native` and message text starting with "at " are
    // skipped.
    let (file, line, column) = split_line_col(rest);
    line?;
    Some(make_frame(None, Some(file), line, column))
}

fn v8_paren_frame<'a>(function: &'a str, location: &'a str) -> Option<StackFrame<'a>> {
    let function = clean_function(function);
    let location = trim(location);

    let (file, line, column) = if let Some(origin) = location.strip_prefix("eval at ") {
        split_line_col(v8_eval_origin(origin))
    } else if is_promise_index(location) {
        // `at async Promise.all (index 0)`: no file at all.
        ("", None, None)
    } else {
        split_line_col(location)
    };

    if line.is_none() {
        // Without a position the frame is only worth keeping if it has a name
        // and what is in the parentheses looks like a location (this keeps
        // `at Array.map (<anonymous>)` but skips prose such as
        // "at least one item (or more)" from multi-line messages).
        let looks_like_location =
            file.is_empty() || PSEUDO_FILES.contains(&file) || file.contains('/') || file.contains('\\');
        if function.is_none() || !looks_like_location {
            return None;
        }
    }
    Some(make_frame(function, Some(file), line, column))
}

/// The first `" ("`; this runs on every V8 frame.
fn find_space_paren(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    memchr::memchr_iter(b'(', bytes).find(|&at| at > 0 && bytes[at - 1] == b' ').map(|at| at - 1)
}

/// Resolves the text after `eval at ` to the outermost real script location:
/// `f (file:1:2), <anonymous>:3:4` → `file:1:2`, recursing through nested
/// `eval at g (eval at f (file:1:2), <anonymous>:3:4), <anonymous>:5:6`.
fn v8_eval_origin(mut origin: &str) -> &str {
    loop {
        let Some(open) = origin.find(" (") else {
            // No parenthesised origin: use whatever follows the last ", ".
            return origin.rsplit_once(", ").map_or(origin, |(_, tail)| tail);
        };
        let after = &origin[open + 2..];
        let inner = match after.rfind("), ") {
            Some(close) => &after[..close],
            None => after.strip_suffix(')').unwrap_or(after),
        };
        match inner.trim_start().strip_prefix("eval at ") {
            Some(nested) => origin = nested,
            None => return inner,
        }
    }
}

/// `index 0` as in Node's `at async Promise.all (index 0)`.
fn is_promise_index(location: &str) -> bool {
    location.strip_prefix("index ").is_some_and(is_digits)
}

// ---------------------------------------------------------------------------
// SpiderMonkey / JavaScriptCore: `<function>@<location>`

fn parse_at_sign<'a>(function: &'a str, location: &'a str) -> Option<StackFrame<'a>> {
    let function = trim(function);
    // "Error: contact me@example.com:80" is a message header, not a frame;
    // engine function names never contain ": ".
    if function.contains(": ") {
        return None;
    }
    // Firefox marks async boundaries as `async*name@…`,
    // `promise callback*name@…`, `setTimeout handler*name@…`.
    let function = clean_function(function.rsplit_once('*').map_or(function, |(_, name)| name));
    let location = trim(location);

    if location.is_empty() {
        // JavaScriptCore `eval code@`: a name with no location.
        return function.is_some().then(|| make_frame(function, None, None, None));
    }
    if location == "[native code]" {
        return Some(make_frame(function, Some(location), None, None));
    }

    let (mut file, mut line, mut column) = split_line_col(location);
    if let Some((script, eval_line)) = gecko_eval_origin(file) {
        (file, line, column) = (script, Some(eval_line), None);
    }
    let bare_url = file.contains("://") && !file.contains(char::is_whitespace);
    if line.is_none() && !bare_url {
        return None;
    }
    Some(make_frame(function, Some(file), line, column))
}

/// SpiderMonkey eval / `new Function` locations:
/// `https://x/a.js line 3 > eval` → (`https://x/a.js`, 3). With nesting
/// (`a.js line 3 > eval line 1 > eval`) the outermost script wins.
fn gecko_eval_origin(file: &str) -> Option<(&str, u32)> {
    const MARKER: &str = " line ";
    let mut from = 0;
    while let Some(found) = file.get(from..).and_then(|s| s.find(MARKER)) {
        let at = from + found;
        let after = &file[at + MARKER.len()..];
        let digits_len = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits_len > 0
            && after[digits_len..].starts_with(" > ")
            && let Ok(line) = after[..digits_len].parse::<u32>()
        {
            return Some((&file[..at], line));
        }
        from = at + MARKER.len();
    }
    None
}

// ---------------------------------------------------------------------------
// Shared helpers

/// Splits `file:line:column` / `file:line` from the end. Numbers that do not
/// fit in `u32` are left in the file.
fn split_line_col(location: &str) -> (&str, Option<u32>, Option<u32>) {
    let Some((rest, last)) = split_trailing_number(location) else {
        return (location, None, None);
    };
    match split_trailing_number(rest) {
        Some((file, line)) => (file, Some(line), Some(last)),
        None => (rest, Some(last), None),
    }
}

/// `head:123` → (`head`, 123); a byte scan from the end.
fn split_trailing_number(s: &str) -> Option<(&str, u32)> {
    let bytes = s.as_bytes();
    let digits = bytes.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let colon = bytes.len().checked_sub(digits + 1)?;
    if digits == 0 || bytes[colon] != b':' {
        return None;
    }
    let mut number: u32 = 0;
    for &digit in &bytes[colon + 1..] {
        number = number.checked_mul(10)?.checked_add(u32::from(digit - b'0'))?;
    }
    Some((&s[..colon], number))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Trims a function name; empty and V8's bare `<anonymous>` become `None`.
fn clean_function(function: &str) -> Option<&str> {
    let function = trim(function);
    (!function.is_empty() && function != "<anonymous>").then_some(function)
}

fn make_frame<'a>(
    function: Option<&'a str>,
    file: Option<&'a str>,
    line: Option<u32>,
    column: Option<u32>,
) -> StackFrame<'a> {
    StackFrame {
        function: function.map(trim).filter(|f| !f.is_empty()),
        file: file.map(trim).filter(|f| !f.is_empty()),
        line,
        column,
        // Decided by `parse_stack`, once per run of frames in one file.
        in_app: false,
    }
}

/// `str::trim`, with ASCII whitespace trimmed by a byte scan (stack lines
/// are indented); only text that then starts or ends with a non-ASCII
/// character goes through the Unicode-aware `str::trim`.
#[inline]
pub(crate) fn trim(s: &str) -> &str {
    let bytes = s.as_bytes();
    let Some(start) = bytes.iter().position(|b| !is_ascii_space(*b)) else {
        return "";
    };
    let end = bytes.iter().rposition(|b| !is_ascii_space(*b)).map_or(start, |last| last + 1);
    let s = &s[start..end];
    if s.as_bytes()[0].is_ascii() && s.as_bytes()[s.len() - 1].is_ascii() { s } else { s.trim() }
}

/// The ASCII characters `char::is_whitespace` accepts.
fn is_ascii_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn starts_with_ignore_ascii_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// A `node_modules` path segment followed by a separator (`/` or `\`).
fn has_node_modules_dir(file: &str) -> bool {
    const SEGMENT: &str = "node_modules";
    static FINDER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(SEGMENT));
    FINDER.find_iter(file.as_bytes()).any(|at| {
        let before_ok = at == 0 || matches!(file.as_bytes()[at - 1], b'/' | b'\\');
        let after_ok = matches!(file.as_bytes().get(at + SEGMENT.len()), Some(b'/' | b'\\'));
        before_ok && after_ok
    })
}

/// Host of an absolute (`scheme://host/…`) or protocol-relative (`//host/…`)
/// URL, without user info and port.
fn url_host(file: &str) -> Option<&str> {
    static FINDER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new("://"));
    let after_scheme = match FINDER.find(file.as_bytes()) {
        Some(at) => &file[at + 3..],
        None => file.strip_prefix("//")?,
    };
    let authority_end = after_scheme.find(['/', '?', '#', '\\']).unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host =
        match host_port.rsplit_once(':') {
            Some((host, port)) if !host.starts_with('[') || host.ends_with(']') => {
                if port.is_empty() || is_digits(port) { host } else { host_port }
            }
            _ => host_port,
        };
    let host = host.trim_end_matches('.');
    (!host.is_empty()).then_some(host)
}

fn is_public_cdn(host: &str) -> bool {
    PUBLIC_CDN_HOSTS.iter().any(|cdn| {
        host.eq_ignore_ascii_case(cdn)
            || (host.len() > cdn.len()
                && host.as_bytes()[host.len() - cdn.len() - 1] == b'.'
                && host.get(host.len() - cdn.len()..).is_some_and(|tail| tail.eq_ignore_ascii_case(cdn)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_line_col_from_the_end() {
        assert_eq!(split_line_col("C:\\app\\x.js:1:2"), ("C:\\app\\x.js", Some(1), Some(2)));
        assert_eq!(split_line_col("http://localhost:8080/a.js:1:2"), ("http://localhost:8080/a.js", Some(1), Some(2)));
        assert_eq!(split_line_col("x.js:7"), ("x.js", Some(7), None));
        assert_eq!(split_line_col("<anonymous>"), ("<anonymous>", None, None));
        assert_eq!(split_line_col("x.js:99999999999:3"), ("x.js:99999999999", Some(3), None));
    }

    #[test]
    fn nested_v8_eval_uses_outermost_script() {
        let origin = "g (eval at f (https://x.example/a.js:1:2), <anonymous>:3:4), <anonymous>:5:6";
        assert_eq!(v8_eval_origin(origin), "https://x.example/a.js:1:2");
    }

    #[test]
    fn url_host_strips_userinfo_and_port() {
        assert_eq!(url_host("https://u:p@unpkg.com:443/x.js"), Some("unpkg.com"));
        assert_eq!(url_host("//code.jquery.com/jquery.js"), Some("code.jquery.com"));
        assert_eq!(url_host("/srv/app.js"), None);
        assert_eq!(url_host("http://[::1]:8080/a.js"), Some("[::1]"));
    }
}
