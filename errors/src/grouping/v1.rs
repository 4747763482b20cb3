//! Grouping v1. Shipped: never edit; add `v2` instead.
//!
//! Rules, first that applies:
//! 1. An explicit client `fingerprint` wins; a `{{ default }}` part in it
//!    stands for what the default rules would have used.
//! 2. Exception type plus the in-app frames, each as (module, function):
//!    the file's basename without query, fragment or build hash, and the
//!    function's own name (receiver, `async`, `new` and engine decorations
//!    dropped, so Chrome, Firefox and Safari agree). Top-level and anonymous
//!    frames are ignored; direct recursion is collapsed.
//! 3. When no frame is in-app: the same over all frames.
//! 4. Without any usable frame: the type plus the message with numbers,
//!    hex, UUIDs, emails, URLs, IPs and dates replaced by placeholders.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;
use sha2::{Digest, Sha256};

use super::{GroupFrame, Grouping, GroupingBasis, GroupingInput};
use crate::stack::trim;

pub const VERSION: &str = "v1";

/// Groups one error.
pub fn group<F: GroupFrame>(input: &GroupingInput<'_, F>) -> Grouping {
    // The parts are written out whole, each followed by a zero byte, and
    // hashed once.
    let mut default = Vec::with_capacity(256);
    let default_basis = write_default(input, &mut default);
    let (basis, hashed) = match input.fingerprint {
        Some(custom) if !custom.is_empty() => {
            let mut hashed = Vec::with_capacity(default.len() + 64);
            write_text(&mut hashed, "custom");
            for part in custom {
                if part.trim() == "{{ default }}" || part.trim() == "{{default}}" {
                    hashed.extend_from_slice(&default);
                } else {
                    write_text(&mut hashed, part);
                }
            }
            (GroupingBasis::Custom, hashed)
        }
        _ => (default_basis, default),
    };
    let digest = Sha256::digest(&hashed);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut fingerprint = String::with_capacity(32);
    for byte in &digest[..16] {
        fingerprint.push(char::from(HEX[usize::from(byte >> 4)]));
        fingerprint.push(char::from(HEX[usize::from(byte & 15)]));
    }
    Grouping { fingerprint, version: VERSION.to_owned(), basis }
}

fn write_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.push(0);
}

/// Writes what the default rules group by; returns the rule that applied.
fn write_default<F: GroupFrame>(input: &GroupingInput<'_, F>, out: &mut Vec<u8>) -> GroupingBasis {
    let error_type = input.error_type.map(str::trim).filter(|t| !t.is_empty()).unwrap_or("Error");
    write_text(out, error_type);
    if write_frames(out, input.frames.iter().filter(|f| f.in_app())) {
        return GroupingBasis::InAppFrames;
    }
    if write_frames(out, input.frames.iter()) {
        return GroupingBasis::AllFrames;
    }
    write_text(out, &normalize_message(input.message.unwrap_or("")));
    GroupingBasis::Message
}

/// Each frame as `module:function`, with direct recursion collapsed;
/// whether any frame was written.
fn write_frames<'a, F: GroupFrame + 'a>(out: &mut Vec<u8>, frames: impl Iterator<Item = &'a F>) -> bool {
    let mut last: Option<FramePart<'a>> = None;
    for frame in frames {
        let Some(part) = frame_part(frame) else { continue };
        if last.as_ref() == Some(&part) {
            continue;
        }
        out.extend_from_slice(part.0.as_bytes());
        out.push(b':');
        write_text(out, part.1);
        last = Some(part);
    }
    last.is_some()
}

/// A frame's module and function.
type FramePart<'a> = (Cow<'a, str>, &'a str);

/// `None` for a frame grouping ignores.
fn frame_part<'a>(frame: &'a impl GroupFrame) -> Option<FramePart<'a>> {
    let function = match frame.known_function() {
        Some(known) => known?,
        None => function_name(frame.function()?)?,
    };
    let module = match frame.known_module() {
        Some(known) => Cow::Borrowed(known),
        None => frame.file().map(module_name).unwrap_or_default(),
    };
    Some((module, function))
}

/// Names of top-level code; frames with these are ignored.
const TOP_LEVEL: [&str; 6] = ["global code", "eval code", "module code", "<anonymous>", "anonymous", "eval"];

/// The function's own name, as every engine would print it.
pub fn function_name(raw: &str) -> Option<&str> {
    let mut name = trim(raw);
    for prefix in ["async ", "new "] {
        name = name.strip_prefix(prefix).unwrap_or(name);
    }
    // Chrome's `Foo.bar [as baz]`: the alias is call-site noise.
    if memchr::memchr(b'[', name.as_bytes()).is_some()
        && let Some(i) = name.find(" [as ")
    {
        name = &name[..i];
    }
    // Firefox's nesting decorations: `outer/inner<`, `Foo/<.bar`, `a/b/<`.
    let name = trim_decorations_end(name);
    let name = name.bytes().rposition(|b| b == b'/' || b == b'.').map_or(name, |at| &name[at + 1..]);
    // `<computed>`, `<anonymous>`: no name of its own.
    if name.starts_with('<') && name.ends_with('>') {
        return None;
    }
    let name = trim_decorations_end(name);
    let name = &name[name.bytes().take_while(|&b| is_decoration(b)).count()..];
    if name.is_empty() || TOP_LEVEL.contains(&name) {
        return None;
    }
    Some(name)
}

fn is_decoration(byte: u8) -> bool {
    byte == b'<' || byte == b'/'
}

/// Without trailing `<` and `/`.
fn trim_decorations_end(name: &str) -> &str {
    &name[..name.bytes().rposition(|b| !is_decoration(b)).map_or(0, |last| last + 1)]
}

/// The file's basename without query, fragment or build hash.
pub fn module_name(file: &str) -> Cow<'_, str> {
    // Byte scans: these run for every frame of every error event.
    let file = file.bytes().position(|b| b == b'?' || b == b'#').map_or(file, |end| &file[..end]);
    let base = file.bytes().rposition(|b| b == b'/' || b == b'\\').map_or(file, |slash| &file[slash + 1..]);
    // Most names carry no hash (a hash has a digit): return them without
    // splitting and joining.
    let hashed = base.bytes().any(|b| b.is_ascii_digit())
        && base
            .as_bytes()
            .split(|&b| b == b'.')
            .enumerate()
            .any(|(i, part)| (i > 0 && looks_like_hash(part)) || has_hash_suffix(part));
    if !hashed {
        return Cow::Borrowed(base);
    }
    let parts: Vec<&str> = base.split('.').collect();
    let kept: Vec<&str> = parts
        .iter()
        .enumerate()
        .filter(|(i, p)| *i == 0 || !looks_like_hash(p.as_bytes()))
        .map(|(_, p)| strip_hash_suffix(p))
        .collect();
    Cow::Owned(kept.join("."))
}

fn looks_like_hash(part: &[u8]) -> bool {
    part.len() >= 6 && part.iter().all(u8::is_ascii_alphanumeric) && part.iter().any(u8::is_ascii_digit)
}

fn has_hash_suffix(part: &[u8]) -> bool {
    hash_separator(part).is_some_and(|i| i > 0 && looks_like_hash(&part[i + 1..]))
}

/// The last `-` or `_`.
fn hash_separator(part: &[u8]) -> Option<usize> {
    part.iter().rposition(|&b| b == b'-' || b == b'_')
}

/// `app-3f9a1c2b` → `app`, `chunk_8d7e6f5a` → `chunk`.
fn strip_hash_suffix(part: &str) -> &str {
    match hash_separator(part.as_bytes()) {
        Some(i) if has_hash_suffix(part.as_bytes()) => &part[..i],
        _ => part,
    }
}

static NORMALIZERS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r#"(?i)\b[a-z][a-z0-9+.-]*://[^\s'"<>)]+"#, "<url>"),
        (r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b", "<email>"),
        (r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<uuid>"),
        (r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b", "<date>"),
        (r"\b(?:\d{1,3}\.){3}\d{1,3}\b", "<ip>"),
        (r"(?i)\b[0-9a-f:]*::[0-9a-f:]+\b", "<ip>"),
        (r"(?i)\b0x[0-9a-f]+\b", "<hex>"),
        (r"(?i)\b[0-9a-f]*[0-9][0-9a-f]*[a-f][0-9a-f]*\b|\b[0-9a-f]*[a-f][0-9a-f]*[0-9][0-9a-f]*\b", "<hex>"),
        (r"\b\d+(?:\.\d+)?", "<n>"),
    ]
    .into_iter()
    .map(|(pattern, placeholder)| (Regex::new(pattern).expect("a valid pattern"), placeholder))
    .collect()
});

/// The message with its variable parts replaced, for grouping by message.
pub fn normalize_message(message: &str) -> String {
    let mut out = message.trim().to_owned();
    for (pattern, placeholder) in NORMALIZERS.iter() {
        out = pattern.replace_all(&out, *placeholder).into_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::StackFrame;

    fn frame<'a>(function: Option<&'a str>, file: &'a str, line: u32, in_app: bool) -> StackFrame<'a> {
        StackFrame { function, file: Some(file), line: Some(line), column: Some(1), in_app }
    }

    fn input<'a>(
        error_type: &'a str,
        message: &'a str,
        frames: &'a [StackFrame<'a>],
    ) -> GroupingInput<'a, StackFrame<'a>> {
        GroupingInput { error_type: Some(error_type), message: Some(message), frames, fingerprint: None }
    }

    #[test]
    fn messages_that_differ_only_in_variables_group_together() {
        let a = normalize_message(
            "User 4213 not found at https://api.example/u/4213?x=1 (id 6f1c2a9e-1b2c-4d3e-8f90-aabbccddeeff)",
        );
        let b = normalize_message(
            "User 77 not found at https://api.example/u/77 (id 0a1b2c3d-0000-4d3e-8f90-000000000001)",
        );
        assert_eq!(a, b);
        assert_eq!(a, "User <n> not found at <url> (id <uuid>)");
        assert_eq!(
            normalize_message(
                "timeout after 3.5s contacting 10.0.0.12 for bob@shop.example on 2026-11-26T10:00:00Z, code 0xDEAD"
            ),
            "timeout after <n>s contacting <ip> for <email> on <date>, code <hex>"
        );
        assert_eq!(normalize_message("hash 9f86d081884c7d65 mismatch"), "hash <hex> mismatch");
        assert_ne!(
            normalize_message("Cannot read properties of undefined (reading 'id')"),
            normalize_message("Cannot read properties of undefined (reading 'name')")
        );
        let g1 = group(&input("NetworkError", "request 1 failed", &[]));
        let g2 = group(&input("NetworkError", "request 2 failed", &[]));
        assert_eq!(g1, g2);
        assert_eq!(g1.basis, GroupingBasis::Message);
        assert_ne!(g1, group(&input("TypeError", "request 1 failed", &[])));
    }

    #[test]
    fn in_app_frames_decide_and_library_frames_do_not() {
        let ours = [frame(Some("render"), "https://shop.example/static/app.3f9a1c.js", 10, true)];
        let with_lib = [
            frame(Some("dispatch"), "https://cdn.jsdelivr.net/npm/react-dom.js", 99, false),
            frame(Some("render"), "https://shop.example/static/app.77aa01.js?v=2", 11, true),
        ];
        let a = group(&input("TypeError", "x is undefined", &ours));
        let b = group(&input("TypeError", "y is not a function", &with_lib));
        assert_eq!(a.basis, GroupingBasis::InAppFrames);
        assert_eq!(a.fingerprint, b.fingerprint, "same in-app frames, other message, other build hash");
        let other = [frame(Some("checkout"), "https://shop.example/static/app.3f9a1c.js", 10, true)];
        assert_ne!(a.fingerprint, group(&input("TypeError", "x is undefined", &other)).fingerprint);
    }

    #[test]
    fn without_in_app_frames_all_frames_count() {
        let lib_a = [frame(Some("parse"), "https://unpkg.com/lib.js", 1, false)];
        let lib_b = [frame(Some("stringify"), "https://unpkg.com/lib.js", 1, false)];
        let a = group(&input("SyntaxError", "bad", &lib_a));
        assert_eq!(a.basis, GroupingBasis::AllFrames);
        assert_ne!(a.fingerprint, group(&input("SyntaxError", "bad", &lib_b)).fingerprint, "no over-grouping");
    }

    #[test]
    fn top_level_frames_are_ignored_and_recursion_collapsed() {
        let once = [frame(Some("walk"), "/srv/tree.js", 3, true), frame(Some("global code"), "/srv/tree.js", 1, true)];
        let deep = [
            frame(Some("walk"), "/srv/tree.js", 3, true),
            frame(Some("walk"), "/srv/tree.js", 3, true),
            frame(Some("walk"), "/srv/tree.js", 3, true),
            frame(None, "/srv/tree.js", 1, true),
        ];
        assert_eq!(
            group(&input("RangeError", "a", &once)).fingerprint,
            group(&input("RangeError", "b", &deep)).fingerprint
        );
    }

    #[test]
    fn engines_name_functions_alike() {
        for (raw, want) in [
            ("Object.outer", Some("outer")),
            ("Foo.prototype.bar", Some("bar")),
            ("async handler", Some("handler")),
            ("new Widget", Some("Widget")),
            ("Foo.<computed> [as bar]", None),
            ("outer/inner<", Some("inner")),
            ("Foo/<.bar", Some("bar")),
            ("a/b/<", Some("b")),
            ("global code", None),
            ("<anonymous>", None),
        ] {
            assert_eq!(function_name(raw), want, "{raw}");
        }
        assert_eq!(module_name("https://x.example/static/js/main.a1b2c3d4.chunk.js?v=1#x"), "main.chunk.js");
        assert_eq!(module_name("/srv/app/dist/app-3f9a1c2b.js"), "app.js");
        assert_eq!(module_name("C:\\app\\src\\cart.js"), "cart.js");
        assert_eq!(module_name("webpack-internal:///./src/cart.ts"), "cart.ts");
    }

    #[test]
    fn a_custom_fingerprint_wins_and_can_extend_the_default() {
        let frames = [frame(Some("render"), "https://shop.example/app.js", 1, true)];
        let custom = ["payment-provider-down".to_owned()];
        let a = group(&GroupingInput { fingerprint: Some(&custom), ..input("TypeError", "a", &frames) });
        let b = group(&GroupingInput { fingerprint: Some(&custom), ..input("RangeError", "b", &[]) });
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.basis, GroupingBasis::Custom);
        let extended = ["{{ default }}".to_owned(), "eu".to_owned()];
        let c = group(&GroupingInput { fingerprint: Some(&extended), ..input("TypeError", "a", &frames) });
        assert_ne!(c.fingerprint, a.fingerprint);
        assert_ne!(c.fingerprint, group(&input("TypeError", "a", &frames)).fingerprint);
        assert_eq!(c.version, "v1");
    }
}
