//! Property tests: `parse_stack` never panics, caps its output, only reports
//! numbers that appear in the input, and round-trips well-formed lines.

use proptest::prelude::*;
use sightline_errors::stack::{is_in_app, parse_stack};

/// Lines that look frame-ish: V8 `at` prefixes and the characters the parser
/// splits on.
fn frameish_line() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,60}",
        "[a-z@():/ .<>\\[\\]0-9*]{0,60}".prop_map(|s| format!("    at {s}")),
        "[a-z@():/ .<>0-9]{0,60}",
        "[a-z ]{0,10}\\(eval at [a-z<>() ,:0-9]{0,40}\\)".prop_map(|s| format!("    at {s}")),
        "[a-z./:]{0,20} line [0-9]{1,4} > [a-z]{0,8}(:[0-9]{1,3}){0,2}".prop_map(|s| format!("f@{s}")),
        Just("[native code]".to_owned()),
    ]
}

fn stack_text() -> impl Strategy<Value = String> {
    prop::collection::vec(frameish_line(), 0..40).prop_map(|lines| lines.join("\n"))
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_$][A-Za-z0-9_$.<>]{0,20}"
}

fn url() -> impl Strategy<Value = String> {
    (
        "https?",
        "[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,8}){0,2}",
        proptest::option::of(1u16..),
        "(/[A-Za-z0-9_.()@~-]{1,12}){0,4}",
        "[A-Za-z0-9_-]{1,10}",
    )
        .prop_map(|(scheme, host, port, dirs, stem)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("{scheme}://{host}{port}{dirs}/{stem}.js")
        })
}

/// Every decimal number in a frame must occur in the input.
fn numbers_come_from_input(input: &str) -> Result<(), TestCaseError> {
    for frame in parse_stack(input) {
        for n in [frame.line, frame.column].into_iter().flatten() {
            prop_assert!(input.contains(&n.to_string()), "{n} not in input {input:?}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_strings(input in any::<String>()) {
        let frames = parse_stack(&input);
        prop_assert!(frames.len() <= 256);
        numbers_come_from_input(&input)?;
    }

    #[test]
    fn never_panics_on_frameish_stacks(input in stack_text()) {
        let frames = parse_stack(&input);
        prop_assert!(frames.len() <= 256);
        for frame in &frames {
            prop_assert!(frame.file.is_some() || frame.function.is_some());
            prop_assert_eq!(frame.in_app, frame.file.is_some_and(is_in_app));
        }
        numbers_come_from_input(&input)?;
    }

    #[test]
    fn caps_at_256_frames(n in 250usize..400, line in 0u32..100_000) {
        let stack: String = (0..n).map(|i| format!("    at f{i} (https://x.example/a.js:{line}:{i})\n")).collect();
        let frames = parse_stack(&stack);
        prop_assert_eq!(frames.len(), n.min(256));
        prop_assert_eq!(frames[0].column, Some(0));
    }

    #[test]
    fn v8_named_frame_round_trips(name in name(), url in url(), line in any::<u32>(), col in any::<u32>()) {
        let stack = format!("Error: boom\n    at {name} ({url}:{line}:{col})\n");
        let frames = parse_stack(&stack);
        prop_assert_eq!(frames.len(), 1);
        let f = &frames[0];
        prop_assert_eq!(f.function, Some(name.as_str()));
        prop_assert_eq!(f.file, Some(url.as_str()));
        prop_assert_eq!(f.line, Some(line));
        prop_assert_eq!(f.column, Some(col));
        prop_assert_eq!(f.in_app, is_in_app(&url));
    }

    #[test]
    fn v8_anonymous_frame_round_trips(url in url(), line in any::<u32>(), col in any::<u32>()) {
        let stack = format!("    at {url}:{line}:{col}");
        let frames = parse_stack(&stack);
        prop_assert_eq!(frames.len(), 1);
        let f = &frames[0];
        prop_assert_eq!(f.function, None);
        prop_assert_eq!(f.file, Some(url.as_str()));
        prop_assert_eq!((f.line, f.column), (Some(line), Some(col)));
    }

    #[test]
    fn v8_eval_frame_reports_origin(name in name(), url in url(), line in any::<u32>(), col in any::<u32>(), l2 in any::<u32>(), c2 in any::<u32>()) {
        let stack = format!("    at eval (eval at {name} ({url}:{line}:{col}), <anonymous>:{l2}:{c2})");
        let frames = parse_stack(&stack);
        prop_assert_eq!(frames.len(), 1);
        let f = &frames[0];
        prop_assert_eq!(f.function, Some("eval"));
        prop_assert_eq!(f.file, Some(url.as_str()));
        prop_assert_eq!((f.line, f.column), (Some(line), Some(col)));
    }

    #[test]
    fn at_sign_frame_round_trips(name in proptest::option::of(name()), url in url(), line in any::<u32>(), col in any::<u32>()) {
        let stack = format!("{}@{url}:{line}:{col}", name.as_deref().unwrap_or(""));
        let frames = parse_stack(&stack);
        prop_assert_eq!(frames.len(), 1);
        let f = &frames[0];
        prop_assert_eq!(f.function, name.as_deref());
        prop_assert_eq!(f.file, Some(url.as_str()));
        prop_assert_eq!((f.line, f.column), (Some(line), Some(col)));
        prop_assert_eq!(f.in_app, is_in_app(&url));
    }
}
