//! Uploaded source maps: stored as files, parsed once, kept in a bounded
//! cache. Maps only ever come in through the upload API; nothing here
//! fetches a URL (another product's SSRF hole).

use std::cell::RefCell;
use std::fs;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lru::LruCache;
use sha2::{Digest, Sha256};
use sightline_errors::IndexedMap;
use sourcemap::SourceMap;

/// Largest accepted map.
pub const MAX_MAP_BYTES: usize = 64 * 1024 * 1024;
/// The cache holds parsed maps of at most this many source-map bytes.
const CACHE_BYTES: usize = 256 * 1024 * 1024;
/// And remembers at most this many lookups (including misses).
const CACHE_ENTRIES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum SourceMapError {
    #[error("not a source map: {0}")]
    Invalid(String),
    #[error("source map is larger than {MAX_MAP_BYTES} bytes")]
    TooLarge,
    #[error("source map storage at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// What a cache slot holds: the indexed map and its size, or a known miss.
type Slot = Option<(Arc<IndexedMap>, usize)>;

/// The maps of every project and release.
pub struct SourceMapStore {
    dir: PathBuf,
    cache: Mutex<Cache>,
    /// Counts uploads, so results derived from maps can tell they are stale.
    generation: AtomicU64,
}

/// Keyed by `project \0 release \0 url`: cheap to build on the hot path;
/// the file path (hashed names) is only made on a miss.
struct Cache {
    entries: LruCache<String, Slot>,
    bytes: usize,
}

fn cache_key(project: &str, release: &str, url: &str) -> String {
    let url = normalize_url(url);
    let mut key = String::with_capacity(project.len() + release.len() + url.len() + 2);
    for part in [project, "\0", release, "\0", url] {
        key.push_str(part);
    }
    key
}

/// The file URL a map is stored under: without query or fragment, so
/// `app.js?v=3` finds the map of `app.js`.
pub fn normalize_url(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

fn hashed(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..16])
}

impl SourceMapStore {
    pub fn open(dir: &Path) -> Result<SourceMapStore, SourceMapError> {
        fs::create_dir_all(dir).map_err(|source| SourceMapError::Io { path: dir.to_owned(), source })?;
        Ok(SourceMapStore {
            dir: dir.to_owned(),
            cache: Mutex::new(Cache {
                entries: LruCache::new(NonZeroUsize::new(CACHE_ENTRIES).expect("non-zero")),
                bytes: 0,
            }),
            generation: AtomicU64::new(0),
        })
    }

    fn path(&self, project: &str, release: &str, url: &str) -> PathBuf {
        self.dir.join(hashed(project)).join(hashed(release)).join(format!("{}.map", hashed(normalize_url(url))))
    }

    /// Validates and stores a map for the minified file at `url` in
    /// `release`; returns how many sources it maps.
    pub fn put(&self, project: &str, release: &str, url: &str, bytes: &[u8]) -> Result<u32, SourceMapError> {
        if bytes.len() > MAX_MAP_BYTES {
            return Err(SourceMapError::TooLarge);
        }
        let map = SourceMap::from_slice(bytes).map_err(|e| SourceMapError::Invalid(e.to_string()))?;
        let path = self.path(project, release, url);
        let io = |source| SourceMapError::Io { path: path.clone(), source };
        fs::create_dir_all(path.parent().expect("a map path has a parent")).map_err(io)?;
        let tmp = path.with_extension("map.tmp");
        fs::write(&tmp, bytes).map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Some((_, size))) = cache.entries.pop(&cache_key(project, release, url)) {
            cache.bytes -= size;
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(map.get_source_count())
    }

    /// Removes every map of a deleted project.
    pub fn delete_project(&self, project: &str) -> Result<(), SourceMapError> {
        let dir = self.dir.join(hashed(project));
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(SourceMapError::Io { path: dir, source }),
        }
        let prefix = format!("{project}\0");
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let stale: Vec<String> =
            cache.entries.iter().map(|(k, _)| k).filter(|k| k.starts_with(&prefix)).cloned().collect();
        for key in stale {
            if let Some(Some((_, size))) = cache.entries.pop(&key) {
                cache.bytes -= size;
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Changes with every upload: results derived from maps (processed
    /// stacks) made before it are stale.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The parsed map of the minified file at `url` in `release`.
    pub fn get(&self, project: &str, release: &str, url: &str) -> Option<Arc<IndexedMap>> {
        let key = cache_key(project, release, url);
        if let Some(slot) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).entries.get(&key) {
            return slot.as_ref().map(|(map, _)| map.clone());
        }
        let loaded = fs::read(self.path(project, release, url)).ok().and_then(|bytes| {
            let map = IndexedMap::new(SourceMap::from_slice(&bytes).ok()?);
            let size = bytes.len() + map.index_bytes();
            Some((Arc::new(map), size))
        });
        let found = loaded.as_ref().map(|(map, _)| map.clone());
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, size)) = &loaded {
            cache.bytes += size;
        }
        if let Some((_, Some((_, size)))) = cache.entries.push(key, loaded) {
            cache.bytes -= size;
        }
        while cache.bytes > CACHE_BYTES {
            match cache.entries.pop_lru() {
                Some((_, Some((_, size)))) => cache.bytes -= size,
                Some((_, None)) => {}
                None => break,
            }
        }
        found
    }
}

/// The maps one ingest batch asks for, each minified file looked up in the
/// store once per batch however many of its events point into it (the
/// store's lookup takes a lock shared by every request and builds a key).
pub struct BatchMaps<'s> {
    store: &'s SourceMapStore,
    project: &'s str,
    /// `(release, url without query)`: a batch's events come from one app,
    /// so a few entries; past [`BatchMaps::MAX_FILES`] the store answers.
    found: RefCell<Vec<FoundMap>>,
}

/// A release, a file URL without query, and its map if one was uploaded.
type FoundMap = (String, String, Option<Arc<IndexedMap>>);

impl<'s> BatchMaps<'s> {
    const MAX_FILES: usize = 16;

    pub fn new(store: &'s SourceMapStore, project: &'s str) -> BatchMaps<'s> {
        BatchMaps { store, project, found: RefCell::new(Vec::new()) }
    }

    /// [`SourceMapStore::get`], remembered for the batch.
    pub fn get(&self, release: &str, url: &str) -> Option<Arc<IndexedMap>> {
        let url = normalize_url(url);
        if let Some((_, _, map)) = self.found.borrow().iter().find(|(r, u, _)| r == release && u == url) {
            return map.clone();
        }
        let map = self.store.get(self.project, release, url);
        let mut found = self.found.borrow_mut();
        if found.len() < Self::MAX_FILES {
            found.push((release.to_owned(), url.to_owned(), map.clone()));
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = r#"{"version":3,"file":"app.min.js","sources":["src/app.js"],"sourcesContent":["let x = 1;\n"],"names":[],"mappings":"AAAA"}"#;

    #[test]
    fn maps_are_stored_found_by_url_and_release_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let store = SourceMapStore::open(dir.path()).unwrap();
        assert!(store.get("p", "1.0", "https://x.example/app.min.js").is_none(), "a miss first");
        assert_eq!(store.put("p", "1.0", "https://x.example/app.min.js", MAP.as_bytes()).unwrap(), 1);
        let map = store.get("p", "1.0", "https://x.example/app.min.js?v=2").expect("found despite the query");
        assert_eq!(map.source_map().get_source(0), Some("src/app.js"));
        assert!(store.get("p", "1.1", "https://x.example/app.min.js").is_none(), "other release");
        assert!(store.get("q", "1.0", "https://x.example/app.min.js").is_none(), "other project");
        assert!(matches!(store.put("p", "1.0", "u", b"{not json"), Err(SourceMapError::Invalid(_))));
        // A new store over the same folder finds it too.
        let again = SourceMapStore::open(dir.path()).unwrap();
        assert!(again.get("p", "1.0", "https://x.example/app.min.js").is_some());
    }

    #[test]
    fn a_batch_finds_what_the_store_finds_and_remembers_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = SourceMapStore::open(dir.path()).unwrap();
        store.put("p", "1.0", "https://x.example/app.min.js", MAP.as_bytes()).unwrap();
        store.put("q", "1.0", "https://x.example/app.min.js", MAP.as_bytes()).unwrap();
        let batch = BatchMaps::new(&store, "p");
        let first = batch.get("1.0", "https://x.example/app.min.js?v=1").expect("found despite the query");
        let again = batch.get("1.0", "https://x.example/app.min.js#top").expect("remembered");
        assert!(Arc::ptr_eq(&first, &again));
        assert!(batch.get("1.1", "https://x.example/app.min.js").is_none(), "other release");
        assert!(batch.get("1.0", "https://x.example/other.min.js").is_none(), "other file");
        assert!(!Arc::ptr_eq(&first, &store.get("q", "1.0", "https://x.example/app.min.js").unwrap()));
        for i in 0..100 {
            assert!(batch.get("1.0", &format!("https://x.example/chunk{i}.js")).is_none());
        }
        assert_eq!(batch.found.borrow().len(), BatchMaps::MAX_FILES);
        assert!(batch.get("1.0", "https://x.example/app.min.js").is_some(), "still found");
        drop(batch);
        store.delete_project("p").unwrap();
        assert!(store.get("p", "1.0", "https://x.example/app.min.js").is_none(), "deleted with its project");
        assert!(store.get("q", "1.0", "https://x.example/app.min.js").is_some(), "others stay");
        assert!(SourceMapStore::open(dir.path()).unwrap().get("p", "1.0", "https://x.example/app.min.js").is_none());
    }
}
