//! Reading an index: the manifest, and each segment mapped into memory. Opening is cheap
//! (manifest checksum; per segment its header, footer, directory and formats table);
//! [`Index::verify`] walks everything. Damaged bytes give [`IndexError::Corrupt`], never a panic
//! or a read out of bounds.

mod segment;

pub use segment::{Dictionaries, RecordFormat, RecordLine, Segment, SegmentBytes};

use rayon::prelude::*;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::format::manifest::{Manifest, SegmentMeta, SourceEntry};
use crate::format::schema::Column;
use crate::format::sources::{self, ChunkCache, SourceLabel, Sources};
use crate::format::{Corrupt, FORMAT_VERSION};
use crate::record::{FieldSet, Provenance};

pub use crate::format::manifest::MANIFEST_FILE;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    // Not `source`: the message already holds it, and a chain would print it twice.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error("{}", not_an_index(.path, .holds.as_deref()))]
    NotAnIndex {
        path: PathBuf,
        /// A file or folder the folder holds (flow logs, most likely), when it is not empty.
        holds: Option<String>,
    },
    #[error("{path}: no such folder; give an index folder (`flowdex build --output IDX INPUT...` makes one)", path = .path.display())]
    NoSuchIndex { path: PathBuf },
    #[error(
        "{path}: not a flowdex segment file (section header, offset 0: its magic is wrong); the index lists it, \
         so it is damaged or was replaced: rebuild the index from its sources",
        path = .path.display()
    )]
    NotASegment { path: PathBuf },
    #[error("{path}: {}", version_advice(*found, *expected), path = .path.display())]
    Version { path: PathBuf, found: u32, expected: u32 },
    #[error("{path}: damaged: {corrupt}; run `flowdex verify` on the index, and rebuild it from its sources", path = .path.display())]
    Corrupt { path: PathBuf, corrupt: Corrupt },
    #[error("{path}: {what}", path = .path.display())]
    Other { path: PathBuf, what: String },
}

/// What to do with a file of format version `found`: a release not far ahead wrote it, or its
/// version bytes are damaged.
fn version_advice(found: u32, expected: u32) -> String {
    let oldest = crate::format::OLDEST_READABLE_VERSION;
    let why = if found > expected && found - expected <= 100 {
        format!("use a flowdex release that reads version {found}, or rebuild the index from its sources")
    } else {
        "no flowdex release wrote such a version: the header is damaged (offset 8); rebuild the index from its \
         sources"
            .to_owned()
    };
    format!("format version {found}; this flowdex reads versions {oldest} to {expected}: {why}")
}

impl IndexError {
    pub fn io(path: &Path, source: io::Error) -> IndexError {
        IndexError::Io {
            path: path.to_path_buf(),
            error: source,
        }
    }

    pub fn corrupt(path: &Path, corrupt: Corrupt) -> IndexError {
        IndexError::Corrupt {
            path: path.to_path_buf(),
            corrupt,
        }
    }
}

/// The source with `id` among all sources (in id order).
fn by_id(all: &[SourceEntry], id: u32) -> Option<&SourceEntry> {
    all.binary_search_by_key(&id, |s| s.id).ok().map(|i| &all[i])
}

/// A segment's time span as verify tells it: `1711929600..1711929660`, `-` for no time.
fn span_text(lo: Option<u64>, hi: Option<u64>) -> String {
    let t = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    format!("{}..{}", t(lo), t(hi))
}

/// Maps a file read-only.
fn map(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: the mapping is read-only and flowdex never writes a published file: segments and
    // manifests are written under temporary names and renamed into place, then never modified
    // (ARCHITECTURE.md). Another program truncating a mapped file could still fault the
    // process (SIGBUS); that is the documented limit of reading through mmap
    // (index-format.md, "Known limits"). All decoding of the mapped bytes is bounds-checked.
    #[allow(unsafe_code)]
    unsafe {
        memmap2::Mmap::map(file)
    }
}

/// How many times opening starts over because builds kept publishing meanwhile.
const OPEN_ATTEMPTS: u32 = 10;

/// Where a record is in an index: its segment (position in the manifest), block, and offset
/// in the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordAt {
    pub segment: u32,
    pub block: u32,
    pub offset: u32,
}

/// An index: its manifest, its segments and its sources file, opened.
pub struct Index {
    dir: PathBuf,
    manifest: Manifest,
    segments: Vec<Segment>,
    /// The manifest's entry of each opened segment, in the same order.
    metas: Vec<SegmentMeta>,
    /// The sources file's bytes (empty when the index has no source).
    sources: SegmentBytes,
    /// Every source, parsed on first use.
    all_sources: OnceLock<Vec<SourceEntry>>,
    /// Set once the sources file's checksum held.
    sources_checked: OnceLock<()>,
    /// The sources file's last decompressed chunk, for lookups one source at a time.
    source_chunk: Mutex<ChunkCache>,
}

impl Index {
    /// Opens the index in `dir` with the cheap checks. A build that publishes while the index
    /// is being opened may remove a file the manifest just read names (the previous sources
    /// file, segments dropped by compaction): then the new manifest is read and opening starts
    /// over, so the opened index is always one published state.
    pub fn open(dir: &Path) -> Result<Index, IndexError> {
        Index::open_segments(dir, |_| true)
    }

    /// Opens the index in `dir` with only the segments whose records can overlap the time
    /// window `[lo, hi]` (by the manifest's time spans): for a search whose every match lies
    /// in the window, the others cannot answer, and opening and unmapping 51 of 55 segments
    /// was a sixth of a one-day aggregation on 20 M records. [`Index::segments`] then lists
    /// only those, so what is asked of the index must concern the window alone (an interface
    /// missing from these segments may be elsewhere in the index).
    pub fn open_window(dir: &Path, (lo, hi): (u64, u64)) -> Result<Index, IndexError> {
        Index::open_segments(dir, |m| match (m.min_start, m.max_end) {
            (Some(s), Some(e)) => s <= hi && e >= lo,
            // No time at all: in no window.
            (None, None) => false,
            // Earlier builds wrote no `min_start` for a segment of ends only, and no `max_end`
            // for one of starts only: its records may be anywhere.
            _ => true,
        })
    }

    fn open_segments(dir: &Path, keep: impl Fn(&SegmentMeta) -> bool) -> Result<Index, IndexError> {
        let mut attempts = 0;
        loop {
            let manifest = read_manifest(dir)?;
            let generation = manifest.generation;
            match Index::open_files(dir, manifest, &keep) {
                Err(IndexError::Io { error, .. })
                    if error.kind() == io::ErrorKind::NotFound
                        && attempts < OPEN_ATTEMPTS
                        && read_manifest(dir).is_ok_and(|m| m.generation != generation) =>
                {
                    attempts += 1;
                }
                result => return result,
            }
        }
    }

    fn open_files(dir: &Path, manifest: Manifest, keep: &impl Fn(&SegmentMeta) -> bool) -> Result<Index, IndexError> {
        let metas: Vec<SegmentMeta> = manifest.segments.iter().filter(|m| keep(m)).cloned().collect();
        // In parallel: on 100 M records (273 segments) opening was half a needle search.
        let segments = metas
            .par_iter()
            .map(|s| Segment::open(&dir.join(&s.file)))
            .collect::<Result<Vec<_>, _>>()?;
        for (meta, seg) in metas.iter().zip(&segments) {
            if meta.directory_crc.is_some_and(|crc| crc != seg.directory_crc()) {
                return Err(IndexError::Other {
                    path: seg.path().to_path_buf(),
                    what: "is not the segment the manifest lists (its sections differ: a file of another build?); \
                           rebuild the index from its sources"
                        .into(),
                });
            }
            if meta.records != seg.record_count() {
                return Err(IndexError::Other {
                    path: seg.path().to_path_buf(),
                    what: format!(
                        "holds {} records, the manifest says {}",
                        seg.record_count(),
                        meta.records
                    ),
                });
            }
        }
        let sources: SegmentBytes = match &manifest.sources_file {
            None => Box::new(Vec::new()),
            Some(name) => {
                let path = dir.join(name);
                let file = File::open(&path).map_err(|e| IndexError::io(&path, e))?;
                Box::new(map(&file).map_err(|e| IndexError::io(&path, e))?)
            }
        };
        let index = Index {
            dir: dir.to_path_buf(),
            manifest,
            segments,
            metas,
            sources,
            all_sources: OnceLock::new(),
            sources_checked: OnceLock::new(),
            source_chunk: Mutex::default(),
        };
        if let Some(crc) = index
            .manifest
            .sources_crc
            .filter(|_| index.manifest.sources_file.is_some())
        {
            if sources::stored_crc((*index.sources).as_ref()) != crc {
                return Err(IndexError::Other {
                    path: index.sources_path(),
                    what: "is not the sources file the manifest lists (a file of another build?); \
                           rebuild the index from its sources"
                        .into(),
                });
            }
        }
        let count = index.sources_header()?.map_or(0, |t| t.len() as u64);
        if count != index.manifest.source_count {
            return Err(index.sources_error(Corrupt::new(
                "sources",
                0,
                format!(
                    "holds {count} sources, the manifest says {}",
                    index.manifest.source_count
                ),
            )));
        }
        Ok(index)
    }

    fn sources_error(&self, corrupt: Corrupt) -> IndexError {
        IndexError::corrupt(&self.sources_path(), corrupt)
    }

    /// The sources file's path, for messages (`sources` while the index has none).
    fn sources_path(&self) -> PathBuf {
        self.dir
            .join(self.manifest.sources_file.as_deref().unwrap_or("sources"))
    }

    /// The sources file's header and table, unchecked; `None` when the index has no source.
    fn sources_header(&self) -> Result<Option<Sources<'_>>, IndexError> {
        let Some(name) = &self.manifest.sources_file else {
            return Ok(None);
        };
        Sources::parse((*self.sources).as_ref()).map(Some).map_err(|e| match e {
            Ok(found) => IndexError::Version {
                path: self.dir.join(name),
                found,
                expected: FORMAT_VERSION,
            },
            Err(c) => self.sources_error(c),
        })
    }

    /// The sources file's table for reading entries, its checksum checked on first use (once
    /// per process). A name read from an unchecked chunk could be another file's: one flipped
    /// bit made a search, and an export's manifest, name a file that does not exist.
    fn sources_table(&self) -> Result<Option<Sources<'_>>, IndexError> {
        let table = self.sources_header()?;
        if let (Some(t), None) = (&table, self.sources_checked.get()) {
            t.check().map_err(|c| self.sources_error(c))?;
            let _ = self.sources_checked.set(());
        }
        Ok(table)
    }

    /// Every source, in id order (parsed and checked on first use).
    pub fn sources(&self) -> Result<&[SourceEntry], IndexError> {
        if let Some(all) = self.all_sources.get() {
            return Ok(all);
        }
        let all = match self.sources_header()? {
            None => Vec::new(),
            // Checks the checksum too.
            Some(t) => t.verify().map_err(|c| self.sources_error(c))?,
        };
        Ok(self.all_sources.get_or_init(|| all))
    }

    /// The source with `id`, parsing only its entry.
    pub fn source(&self, id: u32) -> Result<Option<SourceEntry>, IndexError> {
        if let Some(all) = self.all_sources.get() {
            return Ok(by_id(all, id).cloned());
        }
        let Some(t) = self.sources_table()? else {
            return Ok(None);
        };
        let err = |c| self.sources_error(c);
        let mut cache = self
            .source_chunk
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.find(id)
            .map_err(err)?
            .map(|i| t.entry(i, &mut cache).map_err(err))
            .transpose()
    }

    /// The labels (name, error) of the sources with `ids` (ascending; ids the index lacks are
    /// left out), parsing only those fields, runs of ids on every core: a search printing
    /// records from 886 sources parsed their whole entries one after another for a tenth of its
    /// time.
    pub fn source_labels(&self, ids: &[u32]) -> Result<Vec<(u32, SourceLabel)>, IndexError> {
        if let Some(all) = self.all_sources.get() {
            return Ok(ids
                .iter()
                .filter_map(|&id| {
                    let s = by_id(all, id)?;
                    Some((id, SourceLabel::of(s)))
                })
                .collect());
        }
        let Some(t) = self.sources_table()? else {
            return Ok(Vec::new());
        };
        let err = |c| self.sources_error(c);
        // Runs of at least 64 ids (a chunk's entries), one per task: a chunk whose entries fall
        // in two runs is decompressed by both.
        let run = ids.len().div_ceil(rayon::current_num_threads() * 4).max(64);
        let runs = ids
            .par_chunks(run)
            .map(|run| {
                let mut cache = ChunkCache::default();
                let mut labels = Vec::with_capacity(run.len());
                for &id in run {
                    if let Some(i) = t.find(id).map_err(err)? {
                        labels.push((id, t.label(i, &mut cache).map_err(err)?));
                    }
                }
                Ok(labels)
            })
            .collect::<Result<Vec<_>, IndexError>>()?;
        Ok(runs.into_iter().flatten().collect())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The opened segments: all of the manifest's, unless opened for a window.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The names of fields flowdex does not know that some record of the open segments
    /// carries, in the order first met.
    pub fn extra_fields(&self) -> Vec<std::sync::Arc<str>> {
        let mut names: Vec<std::sync::Arc<str>> = Vec::new();
        for format in self.segments.iter().flat_map(|s| s.formats()) {
            for name in &format.extras {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    /// The fields some record of the open segments carries.
    pub fn fields(&self) -> FieldSet {
        let mut fields = FieldSet::EMPTY;
        for seg in &self.segments {
            for column in seg.columns() {
                if let Column::Field(f) = column {
                    fields.insert(*f);
                }
            }
        }
        fields
    }

    /// The manifest's entry of each of [`Index::segments`], in the same order.
    pub fn segment_metas(&self) -> &[SegmentMeta] {
        &self.metas
    }

    /// The original lines of the records at `at`, in the order asked. Each block is decoded
    /// once however many of its records are asked for.
    pub fn original_lines(&self, at: &[RecordAt]) -> Result<Vec<Vec<u8>>, IndexError> {
        let mut order: Vec<usize> = (0..at.len()).collect();
        order.sort_by_key(|&i| at[i]);
        let mut out: Vec<Vec<u8>> = vec![Vec::new(); at.len()];
        // Groups come segment by segment: one segment's dictionaries at a time.
        let mut dicts: Option<(u32, Dictionaries<'_>)> = None;
        let mut records = Vec::new();
        for group in order.chunk_by(|&a, &b| (at[a].segment, at[a].block) == (at[b].segment, at[b].block)) {
            let first = at[group[0]];
            let seg = self
                .segments
                .get(first.segment as usize)
                .ok_or_else(|| IndexError::Other {
                    path: self.dir.clone(),
                    what: format!("no segment {}", first.segment),
                })?;
            let mut offsets: Vec<u32> = group.iter().map(|&i| at[i].offset).collect();
            offsets.dedup();
            if dicts.as_ref().is_none_or(|(s, _)| *s != first.segment) {
                dicts = Some((first.segment, seg.dictionaries()));
            }
            let (_, segment_dicts) = dicts.as_ref().expect("set for this segment");
            let block = first.block as usize;
            let formats = seg.read_records_into(block, &offsets, None, segment_dicts, &mut records)?;
            let given = records.iter().zip(formats).zip(offsets.iter().copied());
            let mut lines = seg.original_lines(block, given)?;
            // A place asked for more than once (next to itself in the sorted group) gets
            // copies, cloned before the first takes the line.
            for (n, &i) in group.iter().enumerate().rev() {
                let k = offsets.binary_search(&at[i].offset).expect("offset was asked for");
                out[i] = if n > 0 && at[group[n - 1]] == at[i] {
                    lines[k].clone()
                } else {
                    std::mem::take(&mut lines[k])
                };
            }
        }
        Ok(out)
    }

    /// Where the records with the given provenances are (`None` when the index has no such
    /// record). Scans the source and line columns, which are small and need no dictionary.
    pub fn locate(&self, wanted: &[Provenance]) -> Result<Vec<Option<RecordAt>>, IndexError> {
        let mut found = vec![None; wanted.len()];
        let sources: std::collections::BTreeSet<u32> = wanted.iter().map(|p| p.source).collect();
        for (s, seg) in self.segments.iter().enumerate() {
            for block in 0..seg.block_count() {
                let Some(src) = seg.read_column(block, Column::Source)? else {
                    continue;
                };
                let hits: Vec<usize> = (0..src.len())
                    .filter(|&i| {
                        src.get(i)
                            .is_some_and(|id| u32::try_from(id).is_ok_and(|id| sources.contains(&id)))
                    })
                    .collect();
                if hits.is_empty() {
                    continue;
                }
                let Some(lines) = seg.read_column(block, Column::Line)? else {
                    continue;
                };
                for i in hits {
                    let here = (src.get(i), lines.get(i));
                    for (k, p) in wanted.iter().enumerate() {
                        if here == (Some(u64::from(p.source)), Some(p.line)) {
                            found[k] = Some(RecordAt {
                                segment: s as u32,
                                block: block as u32,
                                offset: i as u32,
                            });
                        }
                    }
                }
            }
        }
        Ok(found)
    }

    /// Walks every segment completely (see [`Segment::verify`]) and the sources file, and
    /// checks that every record's source is in it.
    pub fn verify(&self) -> Result<(), IndexError> {
        let sources = self.sources()?;
        let known: std::collections::BTreeSet<u32> = sources.iter().map(|s| s.id).collect();
        // The next build numbers its sources from `next_source` on: never an existing id.
        if let Some(last) = sources
            .iter()
            .map(|s| s.id)
            .max()
            .filter(|&id| id >= self.manifest.next_source)
        {
            return Err(IndexError::Other {
                path: self.dir.join(MANIFEST_FILE),
                what: format!(
                    "gives {} as the next source id, not above the largest, {last}",
                    self.manifest.next_source
                ),
            });
        }
        // Each entry's own counts: every line one of header, record or rejected; every hash a
        // SHA-256.
        for s in sources {
            let sha256 = s.sha256.is_empty()
                || (s.sha256.len() == 64
                    && s.sha256
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            let why = if s.headers + s.records + s.rejected != s.lines {
                format!(
                    "{} lines, but {} headers + {} records + {} rejected",
                    s.lines, s.headers, s.records, s.rejected
                )
            } else if s.rejects.len() as u64 > s.rejected {
                format!("{} rejected lines listed of {} rejected", s.rejects.len(), s.rejected)
            } else if !sha256 {
                format!("`{}` is no SHA-256", s.sha256)
            } else {
                continue;
            };
            return Err(IndexError::Other {
                path: self.sources_path(),
                what: format!("source {} ({}): {why}", s.id, s.name),
            });
        }
        let failed = crate::format::manifest::failed_with_records(sources);
        if self
            .manifest
            .failed_sources
            .as_ref()
            .is_some_and(|listed| *listed != failed)
        {
            return Err(IndexError::Other {
                path: self.dir.join(MANIFEST_FILE),
                what: format!(
                    "lists {:?} as the sources that failed with records, its sources {failed:?}",
                    self.manifest.failed_sources.as_deref().unwrap_or_default()
                ),
            });
        }
        // A segment left out of the manifest (or listed with another count) loses records its
        // sources say they gave.
        let given: u64 = sources.iter().map(|s| s.records).sum();
        if given != self.manifest.records() {
            return Err(IndexError::Other {
                path: self.dir.join(MANIFEST_FILE),
                what: format!(
                    "counts {} records in its segments and {given} from its sources",
                    self.manifest.records()
                ),
            });
        }
        let rejected: u64 = sources.iter().map(|s| s.rejected).sum();
        if rejected != self.manifest.rejected_lines {
            return Err(IndexError::Other {
                path: self.dir.join(MANIFEST_FILE),
                what: format!(
                    "says {} rejected lines, its sources {rejected}",
                    self.manifest.rejected_lines
                ),
            });
        }
        for (meta, seg) in self.metas.iter().zip(&self.segments) {
            let size = std::fs::metadata(seg.path())
                .map_err(|e| IndexError::io(seg.path(), e))?
                .len();
            if size != meta.size {
                return Err(IndexError::Other {
                    path: seg.path().to_path_buf(),
                    what: format!("is {size} bytes, the manifest says {}", meta.size),
                });
            }
            seg.verify()?;
            // The span the manifest gives prunes segments from time windows: it must be the
            // blocks' own, as a build writes it (every time a record has), or as earlier builds
            // of this version did (the earliest start; the latest end, or later start when the
            // segment has ends).
            let blocks = seg.blocks()?;
            let starts = || blocks.iter().filter(|b| !b.start.is_empty());
            let ends = || blocks.iter().filter(|b| !b.end.is_empty());
            let min_start = starts().map(|b| b.start.min).min();
            let min_covered = min_start.into_iter().chain(ends().map(|b| b.end.min)).min();
            let max_end = ends().map(|b| b.end.max).max();
            let max_start = starts().map(|b| b.start.max).max();
            let max_covered = max_end.max(max_start);
            let has_end = seg.columns().contains(&Column::Field(crate::record::Field::End));
            let max_earlier = max_end.max(max_start.filter(|_| has_end));
            if ![min_covered, min_start].contains(&meta.min_start)
                || ![max_covered, max_end, max_earlier].contains(&meta.max_end)
            {
                return Err(IndexError::Other {
                    path: seg.path().to_path_buf(),
                    what: format!(
                        "spans {}, the manifest says {}",
                        span_text(min_covered, max_covered),
                        span_text(meta.min_start, meta.max_end)
                    ),
                });
            }
            for block in 0..seg.block_count() {
                let col = seg.read_column(block, Column::Source)?;
                for i in 0..col.as_ref().map_or(0, |c| c.len()) {
                    let id = col.as_ref().and_then(|c| c.get(i)).unwrap_or(u64::MAX);
                    if !u32::try_from(id).is_ok_and(|id| known.contains(&id)) {
                        return Err(IndexError::Other {
                            path: seg.path().to_path_buf(),
                            what: format!("block {block} record {i} names source {id}, which the sources file lacks"),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// What to tell of a folder without a manifest: an empty one may become an index; one that
/// holds files is most likely the flow logs themselves.
fn not_an_index(path: &Path, holds: Option<&str>) -> String {
    let path = path.display();
    match holds {
        None => format!(
            "{path}: not a flowdex index (no {MANIFEST_FILE}); build one with `flowdex build --output {path} INPUT...`"
        ),
        Some(name) => format!(
            "{path}: not a flowdex index (no {MANIFEST_FILE}; it holds `{name}`); to index the flow logs in it: \
             `flowdex build --output NEW.idx {path}`"
        ),
    }
}

/// Reads and checks the manifest of the index in `dir`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, IndexError> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(_) if !dir.exists() => {
            return Err(IndexError::NoSuchIndex {
                path: dir.to_path_buf(),
            })
        }
        Err(_) if !dir.is_dir() => {
            return Err(IndexError::Other {
                path: dir.to_path_buf(),
                what: "is a file, not an index folder; give the folder `flowdex build --output IDX` made".into(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Named by the first (in name order) file that is not an index's own: a folder of
            // only those is an interrupted first build's, which building again takes over.
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            let holds = names
                .into_iter()
                .find(|name| !crate::format::manifest::is_index_file(name));
            return Err(IndexError::NotAnIndex {
                path: dir.to_path_buf(),
                holds,
            });
        }
        Err(e) => return Err(IndexError::io(&path, e)),
    };
    Manifest::decode(&bytes).map_err(|e| match e {
        Ok(found) => IndexError::Version {
            path: path.clone(),
            found,
            expected: FORMAT_VERSION,
        },
        Err(c) => IndexError::corrupt(&path, c),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_no_release_wrote_is_called_damage() {
        assert!(version_advice(10, 9).contains("use a flowdex release that reads version 10"));
        let damaged = version_advice(65545, 9);
        assert!(damaged.contains("the header is damaged (offset 8)"), "{damaged}");
        assert!(version_advice(0, 9).contains("damaged"));
        assert_eq!(span_text(Some(1), None), "1..-");
    }
}
