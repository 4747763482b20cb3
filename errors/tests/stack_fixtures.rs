//! Fixture stacks from V8 (Chrome, Node), SpiderMonkey (Firefox) and
//! JavaScriptCore (Safari), each asserted frame by frame.

use sightline_errors::stack::{StackFrame, parse_stack};

/// Expected frame: (function, file, line, column, in_app).
type Expected<'a> = (Option<&'a str>, Option<&'a str>, Option<u32>, Option<u32>, bool);

fn frame((function, file, line, column, in_app): Expected<'_>) -> StackFrame<'_> {
    StackFrame { function, file, line, column, in_app }
}

#[track_caller]
fn assert_frames(stack: &str, expected: &[Expected<'_>]) {
    let parsed = parse_stack(stack);
    let expected: Vec<StackFrame> = expected.iter().copied().map(frame).collect();
    for (i, (got, want)) in parsed.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "frame {i}");
    }
    assert_eq!(parsed.len(), expected.len(), "frame count; parsed: {parsed:#?}");
}

const APP: &str = "https://cdn.shop.example/static/app.3f9a1c.js";

#[test]
fn chrome_anonymous_named_async_new_eval() {
    assert_frames(
        include_str!("fixtures/chrome_mixed.txt"),
        &[
            (Some("renderCart"), Some(APP), Some(1), Some(48213), true),
            (None, Some(APP), Some(1), Some(50122), true),
            (Some("loadCart"), Some(APP), Some(1), Some(47001), true),
            (Some("new CartView"), Some(APP), Some(1), Some(45870), true),
            (Some("eval"), Some(APP), Some(1), Some(12031), true),
            (Some("Object.eval"), Some(APP), Some(1), Some(9000), true),
            (Some("eval"), Some(APP), Some(2), Some(77), true),
            (Some("Foo.<computed> [as bar]"), Some(APP), Some(1), Some(400), true),
            (Some("Array.map"), Some("<anonymous>"), None, None, false),
            (Some("HTMLButtonElement.<anonymous>"), Some(APP), Some(1), Some(39002), true),
            (None, Some("https://cdn.jsdelivr.net/npm/jquery@3.7.1/dist/jquery.min.js"), Some(2), Some(43184), false),
            // `at <anonymous>` has nothing usable and is skipped.
            (None, Some("chrome-extension://abcdefghijklmnopabcdefghijklmnop/content.js"), Some(12), Some(9), false),
        ],
    );
}

#[test]
fn node_with_node_modules_and_internals() {
    assert_frames(
        include_str!("fixtures/node.txt"),
        &[
            (Some("sendReceipt"), Some("/srv/app/src/mailer.js"), Some(88), Some(23), true),
            (Some("handler"), Some("/srv/app/server.js"), Some(42), Some(7), true),
            (
                Some("Layer.handle [as handle_request]"),
                Some("/srv/app/node_modules/express/lib/router/layer.js"),
                Some(95),
                Some(5),
                false,
            ),
            (Some("next"), Some("/srv/app/node_modules/express/lib/router/route.js"), Some(149), Some(13), false),
            (Some("Object.<anonymous>"), Some("/srv/app/index.js"), Some(1), Some(1), true),
            (Some("Module._compile"), Some("node:internal/modules/cjs/loader"), Some(1256), Some(14), false),
            (Some("new Promise"), Some("<anonymous>"), None, None, false),
            (Some("Promise.then"), Some("native"), None, None, false),
            (Some("Promise.all"), None, None, None, false),
            (
                Some("process.processTicksAndRejections"),
                Some("node:internal/process/task_queues"),
                Some(95),
                Some(5),
                false,
            ),
            (Some("listOnTimeout"), Some("internal/timers.js"), Some(554), Some(17), false),
            (None, Some("file:///srv/app/esm/entry.mjs"), Some(10), Some(3), true),
        ],
    );
}

#[test]
fn firefox_eval_and_nested_names() {
    assert_frames(
        include_str!("fixtures/firefox.txt"),
        &[
            (Some("renderCart"), Some(APP), Some(1), Some(48213), true),
            (Some("CartView/<.render"), Some(APP), Some(1), Some(45990), true),
            (Some("loadCart/promise<"), Some(APP), Some(1), Some(47001), true),
            (Some("evalTemplate"), Some(APP), Some(3), None, true),
            (Some("makeHandler"), Some(APP), Some(7), None, true),
            (None, Some(APP), Some(3), None, true),
            (Some("loadCart"), Some(APP), Some(1), Some(47100), true),
            (None, Some(APP), Some(1), Some(50122), true),
            (
                Some("dispatch"),
                Some("moz-extension://2b5d7c4e-1f3a-4b8e-9c6d-0a1b2c3d4e5f/content.js"),
                Some(4),
                Some(11),
                false,
            ),
            (None, Some("debugger eval code"), Some(1), Some(1), true),
        ],
    );
}

#[test]
fn safari_global_code_and_native_code() {
    assert_frames(
        include_str!("fixtures/safari.txt"),
        &[
            (Some("renderCart"), Some(APP), Some(1), Some(48213), true),
            (Some("map"), Some("[native code]"), None, None, false),
            (None, Some(APP), Some(1), Some(50122), true),
            (Some("eval code"), None, None, None, false),
            (Some("eval"), Some("[native code]"), None, None, false),
            (Some("loadCart"), Some(APP), Some(1), Some(47001), true),
            (Some("asyncFunctionResume"), Some("[native code]"), None, None, false),
            (None, Some("[native code]"), None, None, false),
            (Some("module code"), Some("https://cdn.shop.example/static/entry.js"), Some(5), Some(10), true),
            (
                Some("dispatch"),
                Some("safari-web-extension://E1F2A3B4-C5D6-7890-ABCD-EF1234567890/content.js"),
                Some(20),
                Some(3),
                false,
            ),
            (Some("global code"), Some(APP), Some(1), Some(1), true),
        ],
    );
}

#[test]
fn windows_paths_with_crlf() {
    assert_frames(
        include_str!("fixtures/windows.txt"),
        &[
            (Some("Object.openSync"), Some("node:fs"), Some(603), Some(3), false),
            (Some("readConfig"), Some(r"C:\Program Files (x86)\Shop\app\config.js"), Some(12), Some(20), true),
            (None, Some(r"C:\Users\dev\shop\src\index.js"), Some(4), Some(1), true),
            (Some("load"), Some("file:///C:/Users/dev/shop/src/loader.mjs"), Some(7), Some(9), true),
            (Some("parse"), Some(r"C:\Users\dev\shop\node_modules\dotenv\lib\main.js"), Some(30), Some(5), false),
        ],
    );
}

#[test]
fn webpack_internal_and_url_with_port() {
    assert_frames(
        include_str!("fixtures/webpack_dev.txt"),
        &[
            (
                Some("Checkout.submit"),
                Some("webpack-internal:///./src/components/Checkout.vue?vue&type=script&lang=js"),
                Some(10),
                Some(5),
                true,
            ),
            (Some("onClick"), Some("webpack-internal:///./src/a.js"), Some(10), Some(5), true),
            (
                Some("invokeWithErrorHandling"),
                Some("webpack-internal:///./node_modules/vue/dist/vue.runtime.esm.js"),
                Some(1863),
                Some(26),
                false,
            ),
            (Some("HTMLFormElement.invoker"), Some("http://localhost:8080/js/app.js"), Some(125), Some(18), true),
            (None, Some("http://localhost:8080/js/chunk-vendors.js"), Some(1), Some(2), true),
        ],
    );
}

#[test]
fn firefox_url_with_port() {
    assert_frames(
        include_str!("fixtures/firefox_port.txt"),
        &[
            (Some("submit"), Some("http://localhost:8080/js/app.js"), Some(125), Some(18), true),
            (None, Some("http://127.0.0.1:3000/static/main.js"), Some(9), Some(1), true),
        ],
    );
}

#[test]
fn same_bug_in_three_engines() {
    fn key<'a>(f: &StackFrame<'a>) -> (Option<&'a str>, Option<&'a str>, Option<u32>, Option<u32>) {
        (f.function, f.file, f.line, f.column)
    }
    let chrome = parse_stack(include_str!("fixtures/same_bug_chrome.txt"));
    let firefox = parse_stack(include_str!("fixtures/same_bug_firefox.txt"));
    let safari = parse_stack(include_str!("fixtures/same_bug_safari.txt"));
    assert_eq!(chrome.len(), 4);
    assert_eq!(firefox.len(), 4);
    assert_eq!(safari.len(), 4);

    let file = Some("https://shop.example/static/app.js");
    let expected = [
        (Some("inner"), file, Some(10), Some(15)),
        (Some("middle"), file, Some(20), Some(5)),
        (Some("outer"), file, Some(30), Some(3)),
    ];
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&key(&chrome[i]), want, "chrome frame {i}");
        assert_eq!(&key(&firefox[i]), want, "firefox frame {i}");
        assert_eq!(&key(&safari[i]), want, "safari frame {i}");
        assert!(chrome[i].in_app && firefox[i].in_app && safari[i].in_app);
    }
    // The top-level frame: anonymous in V8 and SpiderMonkey, `global code` in JSC.
    assert_eq!(chrome[3].function, None);
    assert_eq!(firefox[3].function, None);
    assert_eq!(safari[3].function, Some("global code"));
    for frames in [&chrome, &firefox, &safari] {
        assert_eq!((frames[3].file, frames[3].line, frames[3].column), (file, Some(40), Some(1)));
    }
}

#[test]
fn non_frames_are_skipped() {
    assert!(parse_stack("").is_empty());
    assert!(parse_stack("\n\n   \n").is_empty());
    assert!(parse_stack("TypeError: x is not a function").is_empty());
    assert!(parse_stack("Error: contact me@example.com:80").is_empty());
    assert!(parse_stack("Error: multi-line\nat least one item (or more) is required\n    at <anonymous>").is_empty());
    assert!(parse_stack("    at native\n    at (<anonymous>)").is_empty());
    assert!(parse_stack("oops@not a location").is_empty());
}

#[test]
fn function_named_async_is_kept() {
    assert_frames(
        "    at async (https://x.example/a.js:1:2)",
        &[(Some("async"), Some("https://x.example/a.js"), Some(1), Some(2), true)],
    );
}

#[test]
fn caps_frames_and_line_length() {
    let stack: String = (0..300).map(|i| format!("    at f{i} (https://x.example/a.js:{i}:1)\n")).collect();
    let frames = parse_stack(&stack);
    assert_eq!(frames.len(), 256);
    assert_eq!(frames[0].function, Some("f0"));
    assert_eq!(frames[255].function, Some("f255"));

    let long_name = "a".repeat(5000);
    let stack = format!("    at {long_name} (https://x.example/a.js:1:1)\n    at ok (https://x.example/a.js:2:2)");
    let frames = parse_stack(&stack);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].function, Some("ok"));

    // Exactly 4096 bytes is still a frame.
    let prefix = "    at f (https://x.example/";
    let suffix = ".js:1:1)";
    let line = format!("{prefix}{}{suffix}", "b".repeat(4096 - prefix.len() - suffix.len()));
    assert_eq!(line.len(), 4096);
    assert_eq!(parse_stack(&line).len(), 1);
}

#[test]
fn names_and_files_are_trimmed() {
    assert_frames(
        "\t  at   handler   (  /srv/app.js:3:4  )  \n   go  @  https://x.example/a.js:5:6  ",
        &[
            (Some("handler"), Some("/srv/app.js"), Some(3), Some(4), true),
            (Some("go"), Some("https://x.example/a.js"), Some(5), Some(6), true),
        ],
    );
}

/// Found by the property test: a position with nothing else is no frame.
#[test]
fn a_bare_position_is_not_a_frame() {
    assert!(parse_stack("    at :0").is_empty());
    assert!(parse_stack("    at (:1:2)").is_empty());
    assert!(parse_stack("@:3:4").is_empty());
}
