//! Grouping over parsed fixture stacks: one bug, one issue, whichever
//! browser reported it.

use sightline_errors::grouping::{GroupingBasis, GroupingInput, group};
use sightline_errors::parse_stack;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn fingerprint(stack: &str, error_type: &str, message: &str) -> (String, GroupingBasis) {
    let frames = parse_stack(stack);
    let g = group(&GroupingInput {
        error_type: Some(error_type),
        message: Some(message),
        frames: &frames,
        fingerprint: None,
    });
    (g.fingerprint, g.basis)
}

#[test]
fn the_same_bug_from_chrome_firefox_and_safari_is_one_issue() {
    // Each engine words the message its own way; the frames agree.
    let chrome =
        fingerprint(&fixture("same_bug_chrome.txt"), "TypeError", "Cannot read properties of undefined (reading 'id')");
    let firefox = fingerprint(&fixture("same_bug_firefox.txt"), "TypeError", "cart.items is undefined");
    let safari = fingerprint(
        &fixture("same_bug_safari.txt"),
        "TypeError",
        "undefined is not an object (evaluating 'cart.items.id')",
    );
    assert_eq!(chrome.1, GroupingBasis::InAppFrames);
    assert_eq!(chrome, firefox);
    assert_eq!(chrome, safari);
}

#[test]
fn a_different_bug_in_the_same_file_is_another_issue() {
    let chrome = fingerprint(&fixture("same_bug_chrome.txt"), "TypeError", "x");
    let other = fingerprint(&fixture("chrome_mixed.txt"), "TypeError", "x");
    assert_ne!(chrome.0, other.0);
}

/// Grouping v1 is shipped: its fingerprints are stored on every group and
/// must never change, however its code is reworked. These were computed by
/// the first release of v1; one case per rule.
#[test]
fn v1_fingerprints_never_change() {
    let in_app = fingerprint(&fixture("same_bug_chrome.txt"), "TypeError", "x");
    assert_eq!(in_app, ("c743676e952e6801f6d1e2ba224fa428".to_owned(), GroupingBasis::InAppFrames));
    let all = fingerprint(
        "Error: x\n    at a (https://unpkg.com/lib@1/dist/lib.min.js:1:10)\n    at b (/srv/node_modules/x/i.js:2:3)\n    at b (/srv/node_modules/x/i.js:9:3)",
        "Error",
        "x",
    );
    assert_eq!(all, ("3e217f7b5a29acc216452f4a1d76f439".to_owned(), GroupingBasis::AllFrames));
    let message = fingerprint("", "RangeError", "Index 42 out of range at 2026-11-26 for 10.0.0.1");
    assert_eq!(message, ("df0e299549eeecc46444eacb069c804a".to_owned(), GroupingBasis::Message));
    let chrome = fixture("same_bug_chrome.txt");
    let frames = parse_stack(&chrome);
    let custom = |parts: &[&str]| {
        let parts: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
        group(&GroupingInput {
            error_type: Some("TypeError"),
            message: Some("x"),
            frames: &frames,
            fingerprint: Some(&parts),
        })
        .fingerprint
    };
    assert_eq!(custom(&["checkout", "{{ default }}"]), "558fd04e2be5e93109e8021662b10be7");
    assert_eq!(custom(&["payment-timeout"]), "370db99f53a9fb5d6c615463aada3dc6");
}

/// Ingest groups from frames that borrow the stack and the maps; the group
/// page shows owned frames. Both must agree, with and without a map.
#[test]
fn ingest_groups_exactly_as_the_shown_frames_would() {
    use std::sync::Arc;

    use sightline_errors::{process_error, resolve_frames};
    use sightline_model::{DeviceClass, Event, EventKind};

    const BUNDLE: &str = "https://shop.example/static/app.js";
    let mut builder = sourcemap::SourceMapBuilder::new(Some("app.js"));
    builder.add(9, 14, 99, 2, Some("src/cart.js"), Some("renderCart"), false);
    builder.add(19, 4, 49, 2, Some("src/cart.js"), Some("loadCart"), false);
    builder.add(29, 2, 9, 0, Some("src/main.js"), None, false);
    let map = Arc::new(sightline_errors::IndexedMap::new(builder.into_sourcemap()));
    let with_map = |url: &str| (url == BUNDLE).then(|| map.clone());
    let no_map = |_: &str| None;
    let lookups: [sightline_errors::MapLookup; 2] = [&with_map, &no_map];
    let fixtures =
        ["same_bug_chrome.txt", "same_bug_firefox.txt", "same_bug_safari.txt", "chrome_mixed.txt", "node.txt"];
    for name in fixtures {
        let stack = fixture(name);
        for maps in lookups {
            let mut event = Event {
                id: uuid::Uuid::nil(),
                project_id: "p".into(),
                received_at: 0,
                ts: 0,
                client_ts: None,
                anonymous_id: "v".into(),
                session_id: None,
                url: None,
                path: String::new(),
                release: None,
                device: DeviceClass::Desktop,
                browser: String::new(),
                os: String::new(),
                kind: EventKind::Error {
                    error_type: Some("TypeError".into()),
                    message: Some("x".into()),
                    stack: Some(stack.clone()),
                    frames: Vec::new(),
                    fingerprint: None,
                    group: None,
                },
            };
            process_error(&mut event, maps);
            let EventKind::Error { group: Some(group), frames, .. } = &event.kind else { unreachable!() };
            assert!(frames.is_empty(), "{name}: parsed frames are not kept");
            let mut shown = Vec::new();
            resolve_frames(Some(&stack), &mut shown, maps);
            let owned = sightline_errors::grouping::group(&GroupingInput {
                error_type: Some("TypeError"),
                message: Some("x"),
                frames: &shown,
                fingerprint: None,
            });
            assert_eq!(group.fingerprint, owned.fingerprint, "{name}");
            assert_eq!(group.basis, owned.basis.as_str(), "{name}");
        }
    }
    // And the pinned v1 fingerprint holds through ingest.
    let mut shown = Vec::new();
    resolve_frames(Some(&fixture("same_bug_chrome.txt")), &mut shown, &no_map);
    assert!(shown[0].file.as_deref() == Some(BUNDLE) && shown[0].minified.is_none());
}
