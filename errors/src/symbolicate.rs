//! Source maps: minified frames back to original file, line, column and
//! function. Pure: the caller supplies the maps (Sightline never fetches a
//! map from a URL found in an event).

use std::sync::Arc;

use sightline_model::{Frame, MinifiedLocation, SourceContext};
use sourcemap::SourceMap;

use crate::grouping::v1;
use crate::stack::{StackFrame, is_in_app};

/// Finds the source map for a minified file URL, if one was uploaded.
pub type MapLookup<'a> = &'a dyn Fn(&str) -> Option<Arc<IndexedMap>>;

/// A parsed source map, indexed once when it is loaded for what resolving
/// and grouping a frame ask of it: every token's minified position packed
/// in a `u64` (a binary search over 8-byte keys rather than the map's
/// 28-byte tokens) and, for each original source, whether it is the
/// application's code and its grouping module name; for each name, its
/// grouping function name.
pub struct IndexedMap {
    map: SourceMap,
    /// `line << 32 | column` of each token, in the map's (sorted) token order.
    positions: Vec<u64>,
    /// By source id.
    sources: Vec<SourceFacts>,
    /// By name id: the byte range of the name that
    /// [`grouping::v1::function_name`] keeps; empty when it keeps none.
    function_names: Vec<(u32, u32)>,
}

struct SourceFacts {
    in_app: bool,
    /// [`grouping::v1::module_name`] of the source.
    module: Box<str>,
}

/// An original position a minified one resolves to.
struct Original<'a> {
    source: &'a str,
    facts: &'a SourceFacts,
    line: u32,
    column: u32,
    /// The original name at that position (what the frame was calling).
    name: Option<CallName<'a>>,
}

/// A name a map records at a call site, and the part of it grouping keeps.
#[derive(Clone, Copy)]
struct CallName<'a> {
    name: &'a str,
    function: Option<&'a str>,
}

impl IndexedMap {
    pub fn new(map: SourceMap) -> IndexedMap {
        let positions = map.tokens().map(|t| position(t.get_dst_line(), t.get_dst_col())).collect();
        let sources = map
            .sources()
            .map(|source| SourceFacts { in_app: is_in_app(source), module: v1::module_name(source).into() })
            .collect();
        let function_names = map
            .names()
            .map(|name| match v1::function_name(name) {
                Some(kept) => {
                    let start = kept.as_ptr() as usize - name.as_ptr() as usize;
                    (start as u32, (start + kept.len()) as u32)
                }
                None => (0, 0),
            })
            .collect();
        IndexedMap { map, positions, sources, function_names }
    }

    pub fn source_map(&self) -> &SourceMap {
        &self.map
    }

    /// Bytes the index holds besides the map.
    pub fn index_bytes(&self) -> usize {
        self.positions.len() * size_of::<u64>()
            + self.sources.iter().map(|s| size_of::<SourceFacts>() + s.module.len()).sum::<usize>()
            + self.function_names.len() * size_of::<(u32, u32)>()
    }

    /// The token at or before a 0-based minified position, as the
    /// `sourcemap` crate's `lookup_token` finds it (of equal positions the
    /// first), resolved to its original position.
    fn lookup(&self, line: u32, column: u32) -> Option<Original<'_>> {
        let key = position(line, column);
        let at = self.positions.partition_point(|&p| p < key);
        let index = if self.positions.get(at) == Some(&key) { at } else { at.checked_sub(1)? };
        let raw = self.map.get_token(index)?.get_raw_token();
        // A range mapping covers the columns after it one for one.
        let offset = if raw.is_range && raw.dst_line == line { column - raw.dst_col } else { 0 };
        Some(Original {
            source: self.map.get_source(raw.src_id)?,
            facts: self.sources.get(raw.src_id as usize)?,
            line: raw.src_line,
            column: raw.src_col.saturating_add(offset),
            name: self.call_name(raw.name_id),
        })
    }

    fn call_name(&self, name_id: u32) -> Option<CallName<'_>> {
        let name = self.map.get_name(name_id)?;
        let (start, end) = *self.function_names.get(name_id as usize)?;
        let function = (start < end).then(|| &name[start as usize..end as usize]);
        Some(CallName { name, function })
    }
}

fn position(line: u32, column: u32) -> u64 {
    u64::from(line) << 32 | u64::from(column)
}

/// A frame being resolved: it borrows the stack text (or the client's
/// frames) and the maps, so resolving and grouping a new stack allocates
/// nothing per frame. [`FrameRef::to_frame`] makes the owned frame when one
/// is kept or shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    pub function: Option<&'a str>,
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub in_app: bool,
    /// Where the frame was before a map resolved it.
    pub minified: Option<MinifiedRef<'a>>,
    /// The grouping module name of `file`, when the map that resolved the
    /// frame derived it in advance.
    pub grouping_module: Option<&'a str>,
    /// The grouping function name of `function`, when the map derived it
    /// in advance; `Some(None)` when grouping ignores the function.
    pub grouping_function: Option<Option<&'a str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinifiedRef<'a> {
    pub function: Option<&'a str>,
    pub file: &'a str,
    pub line: u32,
    pub column: u32,
}

impl<'a> FrameRef<'a> {
    pub fn from_stack(frame: &StackFrame<'a>) -> FrameRef<'a> {
        let StackFrame { function, file, line, column, in_app } = *frame;
        FrameRef {
            function,
            file,
            line,
            column,
            in_app,
            minified: None,
            grouping_module: None,
            grouping_function: None,
        }
    }

    /// A frame the client sent, with `in_app` decided here.
    pub fn from_client(frame: &'a Frame) -> FrameRef<'a> {
        FrameRef {
            function: frame.function.as_deref(),
            file: frame.file.as_deref(),
            line: frame.line,
            column: frame.column,
            in_app: frame.file.as_deref().is_some_and(is_in_app),
            minified: None,
            grouping_module: None,
            grouping_function: None,
        }
    }

    pub fn to_frame(&self) -> Frame {
        Frame {
            function: self.function.map(str::to_owned),
            file: self.file.map(str::to_owned),
            line: self.line,
            column: self.column,
            in_app: self.in_app,
            minified: self.minified.map(|m| MinifiedLocation {
                function: m.function.map(str::to_owned),
                file: m.file.to_owned(),
                line: m.line,
                column: m.column,
            }),
        }
    }
}

/// The maps of one stack's minified files, each looked up once.
pub struct StackMaps<'s> {
    files: Vec<(&'s str, Option<Arc<IndexedMap>>)>,
}

impl<'s> StackMaps<'s> {
    pub fn load(frames: &[FrameRef<'s>], maps: MapLookup<'_>) -> StackMaps<'s> {
        let mut files: Vec<(&'s str, Option<Arc<IndexedMap>>)> = Vec::new();
        for file in frames.iter().filter_map(|f| f.file) {
            if !files.iter().any(|(f, _)| *f == file) {
                files.push((file, maps(file)));
            }
        }
        StackMaps { files }
    }

    fn get(&self, file: &str) -> Option<&IndexedMap> {
        self.files.iter().find(|(f, _)| *f == file).and_then(|(_, map)| map.as_deref())
    }
}

/// Resolves every frame whose file has a map. Innermost frame first.
///
/// The original function of frame *i* is the name at its caller's call site
/// (frame *i + 1*), which the map records; the outermost frame keeps its
/// minified name when the map has none.
pub fn resolve<'a>(mut frames: Vec<FrameRef<'a>>, maps: &'a StackMaps<'_>) -> Vec<FrameRef<'a>> {
    // Outermost first, so each frame's caller is resolved before it.
    let mut caller_name: Option<CallName<'a>> = None;
    for frame in frames.iter_mut().rev() {
        let call_name = resolve_position(frame, maps);
        caller_name = match frame.minified {
            Some(minified) => {
                frame.function = caller_name.map(|c| c.name).or(minified.function);
                frame.grouping_function = caller_name.map(|c| c.function);
                call_name
            }
            None => None,
        };
    }
    frames
}

/// Moves one frame to its original position; returns the original name at
/// that position (what the frame was calling).
fn resolve_position<'a>(frame: &mut FrameRef<'a>, maps: &'a StackMaps<'_>) -> Option<CallName<'a>> {
    let (file, line, column) = (frame.file?, frame.line?, frame.column?);
    let map = maps.get(file)?;
    let original = map.lookup(line.checked_sub(1)?, column.checked_sub(1)?)?;
    frame.in_app = frame.in_app && original.facts.in_app;
    frame.grouping_module = Some(&original.facts.module);
    // The frame's function is set again once its caller's call site is known.
    frame.minified = Some(MinifiedRef { function: frame.function.take(), file, line, column });
    frame.file = Some(original.source);
    frame.line = Some(original.line.saturating_add(1));
    frame.column = Some(original.column.saturating_add(1));
    original.name
}

/// Up to `around` lines before and after the frame's original line.
pub fn source_context(map: &IndexedMap, frame: &Frame, around: usize) -> Option<SourceContext> {
    let (file, line) = (frame.file.as_deref()?, frame.line? as usize);
    let map = &map.map;
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
    fn map() -> Arc<IndexedMap> {
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
        Arc::new(IndexedMap::new(b.into_sourcemap()))
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
        crate::resolve_frames(None, &mut frames, &lookup);
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

    proptest::proptest! {
        /// The index finds the token the `sourcemap` crate's own search finds,
        /// positions shared by several tokens and positions before the
        /// first token included.
        #[test]
        fn the_index_finds_the_token_the_crate_finds(
            tokens in proptest::collection::vec((0u32..4, 0u32..200, 0u32..50, 0u32..6), 1..60),
            probes in proptest::collection::vec((0u32..5, 0u32..220), 1..40),
        ) {
            let mut b = SourceMapBuilder::new(None);
            for &(line, column, src_line, id) in &tokens {
                let source = format!("src/m{}.js", id % 3);
                // Names that grouping keeps whole, in part, or not at all.
                let names = ["f{id}", " Foo.bar{id} [as baz]", "async handler{id}", "<anonymous>", "a/b{id}/<"];
                let name = names[id as usize % names.len()].replace("{id}", &id.to_string());
                b.add(line, column, src_line, id, Some(&source), Some(&name), false);
            }
            let indexed = IndexedMap::new(b.into_sourcemap());
            for (line, column) in probes {
                let found = indexed.lookup(line, column);
                let ours = found.as_ref().map(|o| (o.source, o.line, o.column, o.name.map(|c| c.name)));
                let function = found.and_then(|o| o.name).and_then(|c| c.function);
                proptest::prop_assert_eq!(function, ours.and_then(|o| o.3).and_then(v1::function_name));
                let theirs = indexed.map.lookup_token(line, column).map(|t| {
                    (t.get_source().unwrap(), t.get_src_line(), t.get_src_col(), t.get_name())
                });
                proptest::prop_assert_eq!(ours, theirs);
            }
        }
    }

    #[test]
    fn frames_without_a_map_are_left_alone() {
        let mut frames = vec![frame("b", 31)];
        let before = frames.clone();
        crate::resolve_frames(None, &mut frames, &|_| None);
        assert_eq!(frames, before);
    }
}
