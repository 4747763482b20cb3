//! The archive: every accepted batch, appended to segment files and flushed
//! to disk before anyone is told it was accepted.
//!
//! Record framing: `len: u32 LE | crc32: u32 LE | source_seq: u64 LE | payload`,
//! where `len` is the payload length, the CRC covers `source_seq` and the
//! payload, and `source_seq` is the JetStream stream sequence the batch came
//! from (0 in embedded mode). A torn record at the end of the newest segment
//! (a crash mid-write) is cut off on open; it was never acknowledged.
//!
//! Appends go through one writer thread that writes everything queued and
//! then calls `fdatasync` once for all of it (group commit), so many
//! concurrent requests share one flush.
//!
//! With an object store (`--object-store s3://…`), sealed segments are
//! shipped to the bucket (`archive/<node>/segment-N.log`) and then removed
//! from the disk: [`Archive::ship`] seals the segment being written if it
//! holds anything, uploads every sealed one and deletes it locally
//! (`sightline serve` and `worker` do so every minute). The disk then holds
//! at most a minute or a segment of batches; a replay reads the bucket's
//! segments, then the disk's. Numbering goes on after the bucket's highest,
//! so a fresh disk (a new machine) never overwrites a shipped segment.
//!
//! Retention: [`Archive::delete_sealed_before`] removes closed segments last
//! written before a cutoff. The caller picks the cutoff so every event in
//! such a segment is past the window (an event's time is at most a day
//! ahead of when it was received, and so of when its segment was written).

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::objects::{Listed, Objects, ObjectsError};

/// A segment is closed and a new one started past this size.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
const HEADER_BYTES: usize = 16;
/// No record is larger than this; a bigger length means corruption.
const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive I/O on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("archive writer failed: {0}")]
    Write(String),
    #[error("archive writer has stopped")]
    Closed,
    #[error("archive in the object store: {0}")]
    Objects(#[from] ObjectsError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io { path: path.to_owned(), source }
}

/// One archived batch as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedBatch {
    /// The JetStream stream sequence, `None` for embedded-mode batches.
    pub source_seq: Option<u64>,
    /// The encoded [`sightline_model::Envelope`].
    pub payload: Vec<u8>,
}

struct WriteRequest {
    source_seq: u64,
    payload: Vec<u8>,
    done: oneshot::Sender<Result<(), String>>,
}

/// What the writer thread is asked.
enum ToWriter {
    Write(WriteRequest),
    /// Close the segment being written, if it holds anything.
    Seal(oneshot::Sender<Result<(), String>>),
}

/// A handle to the archive; cheap to clone.
#[derive(Clone)]
pub struct Archive {
    dir: PathBuf,
    writer: mpsc::Sender<ToWriter>,
    /// Segments and their lengths as found on open: what [`Archive::replay`] reads.
    existing: std::sync::Arc<Vec<(PathBuf, u64)>>,
    remote: Option<std::sync::Arc<Remote>>,
}

/// Where sealed segments are shipped.
struct Remote {
    objects: Objects,
    /// `archive/<node>/`.
    prefix: String,
    /// The shipped segments as found on open.
    shipped: Vec<Listed>,
}

/// What [`Archive::delete_sealed_before`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    pub segments: u64,
    pub bytes: u64,
}

impl Archive {
    /// Opens (or creates) the archive in `dir`, repairing a torn tail, and
    /// starts its writer thread.
    pub fn open(dir: &Path) -> Result<Archive, ArchiveError> {
        Archive::open_with_segment_bytes(dir, SEGMENT_BYTES)
    }

    /// [`Archive::open`] with segments closed past `segment_bytes`.
    pub fn open_with_segment_bytes(dir: &Path, segment_bytes: u64) -> Result<Archive, ArchiveError> {
        Archive::open_after(dir, segment_bytes, 0, None)
    }

    /// Opens the archive in `dir` whose sealed segments are shipped to
    /// `objects` under `archive/<node>/` ([`Archive::ship`]).
    pub async fn open_shipping(dir: &Path, objects: Objects, node: &str) -> Result<Archive, ArchiveError> {
        let prefix = format!("archive/{node}/");
        let shipped: Vec<Listed> = objects
            .list(&prefix)
            .await?
            .into_iter()
            .filter(|listed| segment_number(Path::new(&listed.key)).is_some())
            .collect();
        let highest = shipped.iter().filter_map(|l| segment_number(Path::new(&l.key))).max().unwrap_or(0);
        let remote = Remote { objects, prefix, shipped };
        Archive::open_after(dir, SEGMENT_BYTES, highest, Some(remote))
    }

    /// Opens `dir`; a new segment is numbered after `highest_shipped`.
    fn open_after(
        dir: &Path,
        segment_bytes: u64,
        highest_shipped: u64,
        remote: Option<Remote>,
    ) -> Result<Archive, ArchiveError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut segments = list_segments(dir)?;
        if let Some(last) = segments.last() {
            repair_tail(last)?;
        }
        let existing = segments
            .iter()
            .map(|p| Ok((p.clone(), fs::metadata(p).map_err(io_err(p))?.len())))
            .collect::<Result<Vec<_>, ArchiveError>>()?;
        let next_number = segments.last().map(|p| segment_number(p).unwrap_or(0)).unwrap_or(0);
        let current = match segments.pop() {
            Some(p) if next_number > highest_shipped => p,
            _ => dir.join(segment_name(next_number.max(highest_shipped) + 1)),
        };
        let file = OpenOptions::new().create(true).append(true).open(&current).map_err(io_err(&current))?;
        let size = file.metadata().map_err(io_err(&current))?.len();
        let (tx, rx) = mpsc::channel();
        let writer = Writer { dir: dir.to_owned(), path: current, file, size, segment_bytes };
        std::thread::Builder::new().name("archive-writer".into()).spawn(move || writer.run(rx)).map_err(io_err(dir))?;
        Ok(Archive {
            dir: dir.to_owned(),
            writer: tx,
            existing: std::sync::Arc::new(existing),
            remote: remote.map(std::sync::Arc::new),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one batch and returns once it is flushed to disk.
    pub async fn append(&self, source_seq: Option<u64>, payload: Vec<u8>) -> Result<(), ArchiveError> {
        let (done, wait) = oneshot::channel();
        self.writer
            .send(ToWriter::Write(WriteRequest { source_seq: source_seq.unwrap_or(0), payload, done }))
            .map_err(|_| ArchiveError::Closed)?;
        wait.await.map_err(|_| ArchiveError::Closed)?.map_err(ArchiveError::Write)
    }

    /// Seals the segment being written (if it holds anything), uploads
    /// every sealed segment to the object store and deletes it from the
    /// disk; returns how many. Without an object store, does nothing. Call
    /// it only once the replay has finished.
    pub async fn ship(&self) -> Result<u64, ArchiveError> {
        let Some(remote) = &self.remote else {
            return Ok(0);
        };
        let (done, wait) = oneshot::channel();
        self.writer.send(ToWriter::Seal(done)).map_err(|_| ArchiveError::Closed)?;
        wait.await.map_err(|_| ArchiveError::Closed)?.map_err(ArchiveError::Write)?;
        let mut sealed = list_segments(&self.dir)?;
        sealed.pop(); // the one the writer appends to
        for path in &sealed {
            let bytes = fs::read(path).map_err(io_err(path))?;
            let name = path.file_name().and_then(|n| n.to_str()).expect("a segment's name");
            remote.objects.put(&format!("{}{name}", remote.prefix), bytes).await?;
            fs::remove_file(path).map_err(io_err(path))?;
            metrics::counter!(crate::telemetry::ARCHIVE_SEGMENTS_SHIPPED).increment(1);
        }
        if !sealed.is_empty() {
            File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io_err(&self.dir))?;
        }
        Ok(sealed.len() as u64)
    }

    /// Deletes every closed segment (all but the newest) last written
    /// before `cutoff`. Call it only once the replay has finished.
    pub fn delete_sealed_before(&self, cutoff: std::time::SystemTime) -> Result<Deleted, ArchiveError> {
        let mut segments = list_segments(&self.dir)?;
        segments.pop(); // the one the writer appends to
        let mut deleted = Deleted::default();
        for path in segments {
            let meta = fs::metadata(&path).map_err(io_err(&path))?;
            if meta.modified().map_err(io_err(&path))? < cutoff {
                fs::remove_file(&path).map_err(io_err(&path))?;
                deleted.segments += 1;
                deleted.bytes += meta.len();
            }
        }
        if deleted.segments > 0 {
            File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io_err(&self.dir))?;
        }
        if let Some(remote) = &self.remote {
            for listed in remote.objects.block(remote.objects.list(&remote.prefix))? {
                if segment_number(Path::new(&listed.key)).is_some() && listed.last_modified < cutoff {
                    remote.objects.block(remote.objects.delete(&listed.key))?;
                    deleted.segments += 1;
                    deleted.bytes += listed.size;
                }
            }
        }
        if deleted.segments > 0 {
            metrics::counter!(crate::telemetry::ARCHIVE_SEGMENTS_DELETED).increment(deleted.segments);
        }
        Ok(deleted)
    }

    /// Reads back, in order, every batch that was in the archive when it was
    /// opened: the shipped segments (those not also on the disk, where a
    /// crash between upload and removal leaves one), then the disk's.
    /// Appends made since are not included: they reach the pipeline through
    /// the bus.
    pub fn replay(&self, mut each: impl FnMut(ArchivedBatch)) -> Result<u64, ArchiveError> {
        let mut count = 0;
        if let Some(remote) = &self.remote {
            let local: Vec<Option<u64>> = self.existing.iter().map(|(p, _)| segment_number(p)).collect();
            for listed in &remote.shipped {
                if local.contains(&segment_number(Path::new(&listed.key))) {
                    continue;
                }
                let Some((bytes, _)) = remote.objects.block(remote.objects.get(&listed.key))? else {
                    continue; // deleted past retention meanwhile
                };
                let mut reader = std::io::Cursor::new(bytes);
                while let Some(batch) = read_record(&mut reader).map_err(io_err(&self.dir))? {
                    each(batch);
                    count += 1;
                }
            }
        }
        for (path, len) in self.existing.iter() {
            let file = File::open(path).map_err(io_err(path))?;
            let mut reader = BufReader::with_capacity(1 << 20, file.take(*len));
            while let Some(batch) = read_record(&mut reader).map_err(io_err(path))? {
                each(batch);
                count += 1;
            }
        }
        Ok(count)
    }
}

struct Writer {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    size: u64,
    segment_bytes: u64,
}

impl Writer {
    fn run(mut self, requests: mpsc::Receiver<ToWriter>) {
        let mut buf = Vec::with_capacity(1 << 20);
        while let Ok(first) = requests.recv() {
            let mut group = Vec::new();
            for message in std::iter::once(first).chain(requests.try_iter()) {
                match message {
                    ToWriter::Write(request) => group.push(request),
                    ToWriter::Seal(done) => {
                        let sealed = self.seal().map_err(|e| format!("{}: {e}", self.path.display()));
                        let _ = done.send(sealed);
                    }
                }
            }
            if group.is_empty() {
                continue;
            }
            buf.clear();
            for req in &group {
                encode_record(&mut buf, req.source_seq, &req.payload);
            }
            let result = self.write_and_sync(&buf).map_err(|e| format!("{}: {e}", self.path.display()));
            metrics::counter!(crate::telemetry::ARCHIVE_SYNCS).increment(1);
            for req in group {
                let _ = req.done.send(result.clone());
            }
        }
    }

    fn write_and_sync(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.size + buf.len() as u64 > self.segment_bytes {
            self.seal()?;
        }
        self.file.write_all(buf)?;
        self.file.sync_data()?;
        self.size += buf.len() as u64;
        Ok(())
    }

    /// Closes the segment being written and starts the next, unless it is empty.
    fn seal(&mut self) -> std::io::Result<()> {
        if self.size == 0 {
            return Ok(());
        }
        self.file.sync_all()?;
        let number = segment_number(&self.path).unwrap_or(0) + 1;
        self.path = self.dir.join(segment_name(number));
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = 0;
        File::open(&self.dir)?.sync_all()
    }
}

fn encode_record(buf: &mut Vec<u8>, source_seq: u64, payload: &[u8]) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&source_seq.to_le_bytes());
    crc.update(payload);
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc.finalize().to_le_bytes());
    buf.extend_from_slice(&source_seq.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Reads one record; `None` at a clean end or at a torn or corrupt record.
fn read_record(reader: &mut impl Read) -> std::io::Result<Option<ArchivedBatch>> {
    let mut header = [0u8; HEADER_BYTES];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    if len > MAX_RECORD_BYTES {
        return Ok(None);
    }
    let mut payload = vec![0u8; len];
    match reader.read_exact(&mut payload) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut check = crc32fast::Hasher::new();
    check.update(&seq.to_le_bytes());
    check.update(&payload);
    if check.finalize() != crc {
        return Ok(None);
    }
    Ok(Some(ArchivedBatch { source_seq: (seq != 0).then_some(seq), payload }))
}

/// Cuts the newest segment after its last whole record.
fn repair_tail(path: &Path) -> Result<(), ArchiveError> {
    let file = File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut good = 0u64;
    while let Some(batch) = read_record(&mut reader).map_err(io_err(path))? {
        good += (HEADER_BYTES + batch.payload.len()) as u64;
    }
    if good < len {
        tracing::warn!(path = %path.display(), kept = good, dropped = len - good, "cutting a torn archive tail");
        let mut f = OpenOptions::new().write(true).open(path).map_err(io_err(path))?;
        f.set_len(good).map_err(io_err(path))?;
        f.seek(SeekFrom::End(0)).map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))?;
    }
    Ok(())
}

fn segment_name(number: u64) -> String {
    format!("segment-{number:012}.log")
}

fn segment_number(path: &Path) -> Option<u64> {
    path.file_name()?.to_str()?.strip_prefix("segment-")?.strip_suffix(".log")?.parse().ok()
}

fn list_segments(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let mut segments: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| segment_number(p).is_some())
        .collect();
    segments.sort_by_key(|p| segment_number(p));
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_survive_reopen_and_torn_tails_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path()).unwrap();
        let appends = (0..50u64).map(|i| {
            let a = archive.clone();
            async move { a.append((i % 2 == 0).then_some(i + 1), vec![i as u8; i as usize]).await }
        });
        for r in futures::future::join_all(appends).await {
            r.unwrap();
        }
        drop(archive);
        // Simulate a crash mid-write: half a record at the end.
        let seg = list_segments(dir.path()).unwrap().pop().unwrap();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(f);

        let reopened = Archive::open(dir.path()).unwrap();
        let mut seen = Vec::new();
        assert_eq!(reopened.replay(|b| seen.push(b)).unwrap(), 50);
        seen.sort_by_key(|b| b.payload.len());
        for (i, b) in seen.iter().enumerate() {
            assert_eq!(b.payload, vec![i as u8; i]);
            assert_eq!(b.source_seq, (i % 2 == 0).then_some(i as u64 + 1));
        }
        reopened.append(None, b"after".to_vec()).await.unwrap();
        drop(reopened);
        let again = Archive::open(dir.path()).unwrap();
        let mut last = None;
        assert_eq!(again.replay(|b| last = Some(b)).unwrap(), 51);
        assert_eq!(last.unwrap().payload, b"after");
    }

    #[tokio::test]
    async fn retention_deletes_old_closed_segments_only() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open_with_segment_bytes(dir.path(), 100).unwrap();
        for i in 0..6u8 {
            archive.append(None, vec![i; 60]).await.unwrap();
        }
        let segments = list_segments(dir.path()).unwrap();
        assert_eq!(segments.len(), 6, "one 76-byte record per 100-byte segment");
        // The first three were last written ten days ago.
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(10 * 86_400);
        for path in &segments[..3] {
            File::options().append(true).open(path).unwrap().set_modified(old).unwrap();
        }
        let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
        assert_eq!(archive.delete_sealed_before(cutoff).unwrap(), Deleted { segments: 3, bytes: 3 * 76 });
        // Even an old newest segment stays: it is still being written.
        File::options().append(true).open(&segments[5]).unwrap().set_modified(old).unwrap();
        assert_eq!(archive.delete_sealed_before(cutoff).unwrap().segments, 0);
        drop(archive);
        let mut kept = Vec::new();
        Archive::open(dir.path()).unwrap().replay(|b| kept.push(b.payload[0])).unwrap();
        assert_eq!(kept, vec![3, 4, 5]);
    }
}
