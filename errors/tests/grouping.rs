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
