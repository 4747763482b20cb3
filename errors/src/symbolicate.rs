//! Source maps: minified frames back to original file, line, column and
//! function. Pure: the caller supplies the maps (Sightline never fetches a
//! map from a URL found in an event).

use std::sync::Arc;

use sightline_model::{Frame, MinifiedLocation, SourceContext};
use sourcemap::SourceMap;

use crate::stack::is_in_app;

/// Finds the source map for a minified file URL, if one was uploaded.
pub type MapLookup<'a> = &'a dyn Fn(&str) -> Option<Arc<SourceMap>>;

/// Resolves every frame whose file has a map. Innermost frame first.
///
/// The original function of frame *i* is the name at its caller's call site
/// (frame *i + 1*), which the map records; the outermost frame keeps its
/// minified name when the map has none.
pub fn symbolicate(frames: &mut [Frame], maps: MapLookup<'_>) {
    let mut memo = Memo { maps, files: Vec::new(), sources_in_app: Vec::new() };
    // Resolve positions first, remembering each frame's token name.
    let mut call_names: Vec<Option<String>> = Vec::with_capacity(frames.len());
    for frame in frames.iter_mut() {
        call_names.push(resolve_position(frame, &mut memo));
    }
    for i in 0..frames.len() {
        let Some(minified) = &frames[i].minified else {
            continue;
        };
        let caller_name = match frames.get(i + 1) {
            Some(caller) if caller.minified.is_some() => call_names[i + 1].take(),
            _ => None,
        };
        frames[i].function = caller_name.or_else(|| minified.function.clone());
    }
}

/// What one stack looks up more than once: frames of one bundle share a
/// minified file and, often, an original source.
struct Memo<'a> {
    maps: MapLookup<'a>,
    /// Each minified file's map.
    files: Vec<(String, Option<Arc<SourceMap>>)>,
    /// [`is_in_app`] of each original source, by map and source index.
    sources_in_app: Vec<(*const SourceMap, u32, bool)>,
}

impl Memo<'_> {
    fn map(&mut self, file: &str) -> Option<Arc<SourceMap>> {
        if let Some((_, map)) = self.files.iter().find(|(f, _)| f == file) {
            return map.clone();
        }
        let map = (self.maps)(file);
        self.files.push((file.to_owned(), map.clone()));
        map
    }

    fn source_in_app(&mut self, map: &Arc<SourceMap>, source_id: u32, source: &str) -> bool {
        let key = Arc::as_ptr(map);
        if let Some(&(_, _, in_app)) = self.sources_in_app.iter().find(|(m, id, _)| *m == key && *id == source_id) {
            return in_app;
        }
        let in_app = is_in_app(source);
        self.sources_in_app.push((key, source_id, in_app));
        in_app
    }
}

/// Moves one frame to its original position; returns the original name at
/// that position (what the frame was calling).
fn resolve_position(frame: &mut Frame, memo: &mut Memo<'_>) -> Option<String> {
    let (file, line, column) = (frame.file.as_deref()?, frame.line?, frame.column?);
    let map = memo.map(file)?;
    let token = map.lookup_token(line.checked_sub(1)?, column.checked_sub(1)?)?;
    let source = token.get_source()?;
    frame.in_app = frame.in_app && memo.source_in_app(&map, token.get_src_id(), source);
    let name = token.get_name().map(str::to_owned);
    let minified_file = frame.file.replace(source.to_owned()).unwrap_or_default();
    // The frame's function is set again once its caller's call site is known.
    frame.minified = Some(MinifiedLocation { function: frame.function.take(), file: minified_file, line, column });
    frame.line = Some(token.get_src_line() + 1);
    frame.column = Some(token.get_src_col() + 1);
    name
}

/// Up to `around` lines before and after the frame's original line.
pub fn source_context(map: &SourceMap, frame: &Frame, around: usize) -> Option<SourceContext> {
    let (file, line) = (frame.file.as_deref()?, frame.line? as usize);
    let index = (0..map.get_source_count()).find(|&i| map.get_source(i) == Some(file))?;
    let contents = map.get_source_contents(index)?;
    let lines: Vec<&str> = contents.lines().collect();
    let at = line.checked_sub(1).filter(|&i| i < lines.len())?;
    let own = |s: &[&str]| s.iter().map(|l| l.chars().take(500).collect()).collect();
    Some(SourceContext {
        pre_context: own(&lines[at.saturating_sub(around)..at]),
        context_line: lines[at].chars().take(500).collect(),
        post_context: own(&lines[at + 1..(at + 1 + around).min(lines.len())]),
    })
}

#[cfg(test)]
mod tests {
    use sourcemap::SourceMapBuilder;

    use super::*;

    /// A map for a one-line bundle `function a(){b()}function b(){throw x}`
    /// of original `src/app.js`, where `outer` calls `inner` which throws.
    fn map() -> Arc<SourceMap> {
        let mut b = SourceMapBuilder::new(Some("app.min.js"));
        let src = b.add_source("src/app.js");
        b.set_source_contents(
            src,
            Some("function outer() {\n  inner();\n}\nfunction inner() {\n  throw new Error('x');\n}\n"),
        );
        // `b()` in the minified outer (col 13) is `inner()` at src 2:3.
        b.add(0, 13, 1, 2, Some("src/app.js"), Some("inner"), false);
        // `throw` in the minified inner (col 30) is at src 5:3.
        b.add(0, 30, 4, 2, Some("src/app.js"), None, false);
        Arc::new(b.into_sourcemap())
    }

    fn frame(function: &str, column: u32) -> Frame {
        Frame {
            function: Some(function.into()),
            file: Some("https://shop.example/static/app.min.js".into()),
            line: Some(1),
            column: Some(column),
            in_app: true,
            minified: None,
        }
    }

    #[test]
    fn frames_resolve_to_original_file_line_and_function() {
        let map = map();
        let lookup = |url: &str| (url == "https://shop.example/static/app.min.js").then(|| map.clone());
        let mut frames = vec![frame("b", 31), frame("a", 14)];
        symbolicate(&mut frames, &lookup);
        assert_eq!(frames[0].file.as_deref(), Some("src/app.js"));
        assert_eq!((frames[0].line, frames[0].column), (Some(5), Some(3)));
        assert_eq!(frames[0].function.as_deref(), Some("inner"), "named by its caller's call site");
        assert_eq!((frames[1].line, frames[1].column), (Some(2), Some(3)));
        assert_eq!(frames[1].function.as_deref(), Some("a"), "the outermost keeps its minified name");
        assert_eq!(frames[0].minified.as_ref().unwrap().column, 31);
        let context = source_context(&map, &frames[0], 2).unwrap();
        assert_eq!(context.context_line, "  throw new Error('x');");
        assert_eq!(context.pre_context, vec!["}", "function inner() {"]);
        assert_eq!(context.post_context, vec!["}"]);
    }

    #[test]
    fn frames_without_a_map_are_left_alone() {
        let mut frames = vec![frame("b", 31)];
        let before = frames.clone();
        symbolicate(&mut frames, &|_| None);
        assert_eq!(frames, before);
    }
}
