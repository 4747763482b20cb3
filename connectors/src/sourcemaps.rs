//! Uploaded source maps: stored as files (in a folder, or in the object
//! store's bucket under `sourcemaps/`), parsed once, kept in a bounded
//! cache. Maps only ever come in through the upload API; nothing here
//! fetches a URL (another product's SSRF hole).
//!
//! Several API nodes share the bucket (or a folder on a shared volume): a
//! node sees a map uploaded through another within [`RECHECK`], as a cached
//! lookup older than that asks the store whether the file changed.

use std::cell::RefCell;
use std::fs;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use sha2::{Digest, Sha256};
use sightline_errors::IndexedMap;
use sourcemap::SourceMap;

use crate::objects::{Objects, ObjectsError};

/// Largest accepted map.
pub const MAX_MAP_BYTES: usize = 64 * 1024 * 1024;
/// The cache holds parsed maps of at most this many source-map bytes.
const CACHE_BYTES: usize = 256 * 1024 * 1024;
/// And remembers at most this many lookups (including misses).
const CACHE_ENTRIES: usize = 4096;
/// A lookup cached this long is checked against the store again.
pub const RECHECK: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SourceMapError {
    #[error("not a source map: {0}")]
    Invalid(String),
    #[error("source map is larger than {MAX_MAP_BYTES} bytes")]
    TooLarge,
    #[error("source map storage at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("source map storage: {0}")]
    Objects(#[from] ObjectsError),
}

/// A cache slot: the indexed map and its size, or a known miss; when it
/// was looked up, and the stored file's version then.
struct Slot {
    map: Option<(Arc<IndexedMap>, usize)>,
    checked: Instant,
    version: Option<String>,
}

impl Slot {
    fn size(&self) -> usize {
        self.map.as_ref().map_or(0, |(_, size)| *size)
    }
}

/// Where the map files are.
enum Files {
    Dir(PathBuf),
    Bucket(Objects),
}

/// The maps of every project and release.
pub struct SourceMapStore {
    files: Files,
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
    /// Maps as files in `dir`.
    pub fn open(dir: &Path) -> Result<SourceMapStore, SourceMapError> {
        fs::create_dir_all(dir).map_err(|source| SourceMapError::Io { path: dir.to_owned(), source })?;
        Ok(SourceMapStore::with_files(Files::Dir(dir.to_owned())))
    }

    /// Maps in the object store's bucket, under `sourcemaps/`.
    pub fn in_bucket(objects: Objects) -> SourceMapStore {
        SourceMapStore::with_files(Files::Bucket(objects))
    }

    fn with_files(files: Files) -> SourceMapStore {
        SourceMapStore {
            files,
            cache: Mutex::new(Cache {
                entries: LruCache::new(NonZeroUsize::new(CACHE_ENTRIES).expect("non-zero")),
                bytes: 0,
            }),
            generation: AtomicU64::new(0),
        }
    }

    /// A map's file, relative to the folder or the bucket's `sourcemaps/`.
    fn relative(project: &str, release: &str, url: &str) -> String {
        format!("{}/{}/{}.map", hashed(project), hashed(release), hashed(normalize_url(url)))
    }

    /// The stored file's bytes and version (`None`: no such map).
    fn read(&self, relative: &str) -> Result<Option<(Vec<u8>, String)>, SourceMapError> {
        match &self.files {
            Files::Dir(dir) => {
                let path = dir.join(relative);
                match fs::read(&path) {
                    Ok(bytes) => Ok(Some((bytes, file_version(&path)))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(SourceMapError::Io { path, source }),
                }
            }
            Files::Bucket(objects) => Ok(objects.block(objects.get(&format!("sourcemaps/{relative}")))?),
        }
    }

    /// The stored file's version now (`None`: no such map).
    fn version(&self, relative: &str) -> Option<String> {
        match &self.files {
            Files::Dir(dir) => {
                let path = dir.join(relative);
                path.exists().then(|| file_version(&path))
            }
            Files::Bucket(objects) => objects.block(objects.version(&format!("sourcemaps/{relative}"))).ok()?,
        }
    }

    /// Validates and stores a map for the minified file at `url` in
    /// `release`; returns how many sources it maps.
    pub fn put(&self, project: &str, release: &str, url: &str, bytes: &[u8]) -> Result<u32, SourceMapError> {
        if bytes.len() > MAX_MAP_BYTES {
            return Err(SourceMapError::TooLarge);
        }
        let map = SourceMap::from_slice(bytes).map_err(|e| SourceMapError::Invalid(e.to_string()))?;
        let relative = SourceMapStore::relative(project, release, url);
        match &self.files {
            Files::Dir(dir) => {
                let path = dir.join(&relative);
                let io = |source| SourceMapError::Io { path: path.clone(), source };
                fs::create_dir_all(path.parent().expect("a map path has a parent")).map_err(io)?;
                let tmp = path.with_extension("map.tmp");
                fs::write(&tmp, bytes).map_err(io)?;
                fs::rename(&tmp, &path).map_err(io)?;
            }
            Files::Bucket(objects) => objects.block(objects.put(&format!("sourcemaps/{relative}"), bytes.to_vec()))?,
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = cache.entries.pop(&cache_key(project, release, url)) {
            cache.bytes -= slot.size();
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(map.get_source_count())
    }

    /// Removes every map of a deleted project.
    pub fn delete_project(&self, project: &str) -> Result<(), SourceMapError> {
        match &self.files {
            Files::Dir(dir) => {
                let dir = dir.join(hashed(project));
                match fs::remove_dir_all(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(SourceMapError::Io { path: dir, source }),
                }
            }
            Files::Bucket(objects) => {
                for listed in objects.block(objects.list(&format!("sourcemaps/{}/", hashed(project))))? {
                    objects.block(objects.delete(&listed.key))?;
                }
            }
        }
        let prefix = format!("{project}\0");
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let stale: Vec<String> =
            cache.entries.iter().map(|(k, _)| k).filter(|k| k.starts_with(&prefix)).cloned().collect();
        for key in stale {
            if let Some(slot) = cache.entries.pop(&key) {
                cache.bytes -= slot.size();
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
        let relative = SourceMapStore::relative(project, release, url);
        let recheck = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.entries.get_mut(&key) {
                Some(slot) if slot.checked.elapsed() < RECHECK => return slot.map.as_ref().map(|(map, _)| map.clone()),
                Some(slot) => Some(slot.version.clone()),
                None => None,
            }
        };
        // Checked again after a while: another node may have uploaded it.
        if let Some(version) = recheck
            && self.version(&relative) == version
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = cache.entries.get_mut(&key) {
                slot.checked = Instant::now();
                return slot.map.as_ref().map(|(map, _)| map.clone());
            }
        }
        let read = match self.read(&relative) {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = %e, "reading a source map");
                return None;
            }
        };
        let version = read.as_ref().map(|(_, version)| version.clone());
        let map = read.and_then(|(bytes, _)| {
            let map = IndexedMap::new(SourceMap::from_slice(&bytes).ok()?);
            let size = bytes.len() + map.index_bytes();
            Some((Arc::new(map), size))
        });
        let found = map.as_ref().map(|(map, _)| map.clone());
        let slot = Slot { map, checked: Instant::now(), version };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.bytes += slot.size();
        if let Some((_, old)) = cache.entries.push(key, slot) {
            cache.bytes -= old.size();
        }
        while cache.bytes > CACHE_BYTES {
            match cache.entries.pop_lru() {
                Some((_, old)) => cache.bytes -= old.size(),
                None => break,
            }
        }
        found
    }
}

/// A file's version: its modification time and length.
fn file_version(path: &Path) -> String {
    match fs::metadata(path) {
        Ok(meta) => format!("{:?}/{}", meta.modified().ok(), meta.len()),
        Err(_) => String::new(),
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
