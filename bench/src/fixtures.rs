//! Error events with minified stacks, and the source map that resolves them.

use serde_json::{Value, json};
use sourcemap::SourceMapBuilder;

/// Frames in each benchmark error's stack.
pub const FRAMES: u32 = 12;
/// The minified file the stacks point into.
pub const MINIFIED: &str = "https://shop.example/static/app.min.js";
/// The release the map is uploaded for.
pub const RELEASE: &str = "bench-1";

/// A map of a one-line bundle with 4000 mapped positions over 40 sources,
/// with the sources' contents.
pub fn source_map() -> Vec<u8> {
    let mut b = SourceMapBuilder::new(Some("app.min.js"));
    for s in 0..40 {
        let id = b.add_source(&format!("src/module{s}.js"));
        let lines: Vec<String> = (0..200).map(|l| format!("  const value{l} = compute({l});")).collect();
        b.set_source_contents(id, Some(&lines.join("\n")));
    }
    for i in 0..4000u32 {
        let source = format!("src/module{}.js", i % 40);
        b.add(0, i * 25, i % 200, 2, Some(&source), Some(&format!("fn{i}")), false);
    }
    let mut out = Vec::new();
    b.into_sourcemap().to_writer(&mut out).expect("a map serializes");
    out
}

/// One error event whose stack has [`FRAMES`] frames into [`MINIFIED`];
/// `variant` moves the throwing frame, so events fall into a few groups.
/// A `build` other than 0 is appended to the bundle URL as a query (the map
/// still applies), which makes the stack text unique without changing its
/// group.
pub fn error_event(visitor: &str, variant: u32, build: u32) -> Value {
    let bundle = if build == 0 { MINIFIED.to_owned() } else { format!("{MINIFIED}?build={build}") };
    let frames: Vec<String> =
        (0..FRAMES).map(|i| format!("    at f{i} ({bundle}:1:{})", 1 + (i + variant) * 2500)).collect();
    let message = "Cannot read properties of undefined (reading 'price')";
    json!({
        "type": "error", "anonymous_id": visitor, "url": "https://shop.example/cart", "release": RELEASE,
        "error_type": "TypeError", "message": message,
        "stack": format!("TypeError: {message}\n{}", frames.join("\n")),
    })
}
