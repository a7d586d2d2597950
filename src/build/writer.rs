//! Writing into an index folder: the lock that keeps two builds apart, segment files written
//! under temporary names and renamed into place, and the manifest published last, atomically
//! (`index-format.md`, "Publishing"). A build killed at any moment leaves the previous manifest,
//! and so the previous index, intact; files it left behind are removed by the next build.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::segment::{Mark, SegmentBuilder};
use crate::format::manifest::{
    failed_with_records, is_index_file, is_segment_file, is_sources_file, is_temporary, Manifest, RejectEntry,
    SegmentMeta, SourceEntry, LOCK_FILE, MANIFEST_FILE, TMP_SUFFIX,
};
use crate::format::sources;
use crate::input::{LogFormat, RecordSink, Rejection, SourceError, SourceMeta, SourceReport};
use crate::read::{Index, IndexError, Segment};
use crate::record::FlowRecord;

/// Tries for the build lock, 50 ms apart, before saying another build holds it.
const LOCK_ATTEMPTS: u32 = 20;

/// Holds an index folder for one build: only one writer at a time.
pub struct IndexWriter {
    dir: PathBuf,
    _lock: File,
    base: Manifest,
    /// The sources of the base index, in id order.
    base_sources: Vec<SourceEntry>,
    /// Segments of the base manifest that the published manifest drops (compaction).
    dropped: Vec<String>,
    /// The SHA-256 of each source held (the base index's and this build's), with its name
    /// and whether the base index holds it.
    known: Mutex<HashMap<String, Held>>,
    /// The base index's failures with nothing read (a FIFO, an empty folder, a bundle's failed
    /// check), by name and error: met again, they are reported and not added once more (the id
    /// they were handed is not reused, as for a copy).
    failures_in_index: HashSet<(String, String)>,
    /// Failures of this build's inputs that the base index already records: `NAME: ERROR`.
    repeated_failures: Mutex<Vec<String>>,
    /// Notices of this build's sources, with the group and local id that order them.
    notices: Mutex<Vec<((usize, u32), String)>>,
    /// The names of the sources held that were read (the base index's and this build's): a
    /// changed file at an indexed path is added under a name of its own, so that `NAME:LINE`
    /// points at one line.
    names: Mutex<crate::input::UniqueNames>,
    turn: Mutex<Turn>,
    turn_moved: Condvar,
    added_segments: Mutex<Vec<SegmentMeta>>,
    added_sources: Mutex<Vec<SourceEntry>>,
    skipped: Mutex<Vec<Skipped>>,
    memory_budget: usize,
    /// Removes this build's files if it ends without publishing.
    cleanup: Cleanup,
}

/// Until disarmed, removes on drop every file of the index folder that the base manifest does
/// not name: what a build that failed (a full disk, an unreadable input folder) wrote. The
/// previous index stays exactly as it was.
struct Cleanup {
    dir: PathBuf,
    live: HashSet<String>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: what cannot be removed now is removed by the next build.
            let _ = remove_leftovers(&self.dir, &self.live);
        }
    }
}

/// Most segments being built at once. The memory budget is split into this many segments'
/// worth whatever the thread count, so that where segments end, and so every byte of the index,
/// does not depend on how many threads built it.
pub const BUILDERS: usize = 4;

/// Whose turn it is to number its sources and segments: groups of inputs take turns in input
/// order, so ids and file names do not depend on which thread finished first.
struct Turn {
    /// The group that may number now; every earlier group is done.
    group: usize,
    next_source: u32,
    next_segment: u64,
    /// A worker failed: nobody waits for a turn any more.
    failed: Option<IndexError>,
}

/// A source already held, by its name and whether the base index holds it (with the lines it
/// rejected then).
#[derive(Clone, Debug)]
struct Held {
    name: String,
    in_index: Option<u64>,
}

impl Held {
    /// The input `name`, skipped as a copy of this source.
    fn skip(&self, name: String) -> Skipped {
        Skipped {
            name,
            same_as: self.name.clone(),
            in_index: self.in_index.is_some(),
            rejected_in_index: self.in_index.unwrap_or(0),
        }
    }
}

/// An input not read because a source with the same bytes (SHA-256) is already held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub name: String,
    /// The source holding those bytes.
    pub same_as: String,
    /// Whether that source is in the index already (else it is an input of this build).
    pub in_index: bool,
    /// Lines of that source the index rejected (0 for an input of this build): a copy is not
    /// read again, under another `--log-format` either.
    pub rejected_in_index: u64,
}

/// Problems of a build's sources its summary lists, and skipped inputs its command names (the
/// sources file keeps up to 100,000 rejected lines a source: `flowdex info --format json`).
pub const SUMMARY_LISTS: usize = 5;

/// What a build added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildSummary {
    pub sources_added: u64,
    /// The first failures, in source order: `NAME: ERROR` for an added source that failed,
    /// then the failures the index already recorded, which were not added again. Listed apart
    /// from rejected lines, so that a file's many bad lines never hide a source that broke.
    pub first_failures: Vec<String>,
    /// The first rejected lines of the added sources, in source order: `NAME:LINE: rejected:
    /// REASON`.
    pub first_rejects: Vec<String>,
    /// Inputs left out as copies of sources already held, by name.
    pub skipped: Vec<Skipped>,
    pub segments_added: u64,
    pub records_added: u64,
    pub rejected_added: u64,
    /// Sources that failed, added or already recorded.
    pub failed_sources: u64,
    /// `NAME: NOTICE` of the added sources that read without error but deserve a word
    /// ([`crate::input::SourceReport::notice`]), in source order.
    pub notices: Vec<String>,
}

impl IndexWriter {
    /// Opens (creating if needed) the index in `dir` for writing. Fails if another build holds
    /// it. `memory_budget` bounds the records each worker holds before writing a segment.
    pub fn open(dir: &Path, memory_budget: usize) -> Result<IndexWriter, IndexError> {
        if dir.exists() && !dir.is_dir() {
            return Err(IndexError::Other {
                path: dir.to_path_buf(),
                what: "is a file; give the index a folder (new, empty, or an index)".into(),
            });
        }
        fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        // Building into a folder of other files would mix the index with them, and clearing an
        // interrupted build's leftovers would then touch files that are not the index's.
        if !dir.join(MANIFEST_FILE).exists() {
            let mut entries = fs::read_dir(dir).map_err(|e| IndexError::io(dir, e))?;
            if let Some(other) = entries.find_map(|e| {
                e.ok()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| !is_index_file(name))
            }) {
                return Err(IndexError::Other {
                    path: dir.to_path_buf(),
                    what: format!("holds `{other}` and is not a flowdex index; give the index a new or empty folder"),
                });
            }
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| IndexError::io(&lock_path, e))?;
        // A lock held a moment longer than its build: a process forked by the program that
        // ran the build shares the lock until it execs. Such a lock goes within milliseconds;
        // a build's does not.
        let mut attempts = 0;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if attempts < LOCK_ATTEMPTS => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(IndexError::Other {
                        path: dir.to_path_buf(),
                        what: "another flowdex build is writing this index; wait for it to finish".into(),
                    })
                }
                Err(fs::TryLockError::Error(e)) => return Err(IndexError::io(&lock_path, e)),
            }
        }
        let (base, base_sources) = match Index::open(dir) {
            Ok(index) => (index.manifest().clone(), index.sources()?.to_vec()),
            Err(IndexError::NotAnIndex { .. }) => (Manifest::new(), Vec::new()),
            Err(e) => return Err(e),
        };
        let live = live_files(&base);
        remove_leftovers(dir, &live)?;
        let known = base_sources
            .iter()
            .filter(|s| !s.sha256.is_empty())
            .map(|s| {
                let held = Held {
                    name: s.name.clone(),
                    in_index: Some(s.rejected),
                };
                (s.sha256.clone(), held)
            })
            .collect();
        let names = crate::input::UniqueNames::with_taken(
            base_sources
                .iter()
                .filter(|s| !s.sha256.is_empty())
                .map(|s| s.name.clone()),
        );
        let failures_in_index = base_sources
            .iter()
            .filter(|s| nothing_read(&s.sha256, s.lines, s.blank_lines))
            .filter_map(|s| Some((s.name.clone(), s.error.clone()?)))
            .collect();
        let next_source = base.next_source;
        Ok(IndexWriter {
            dir: dir.to_path_buf(),
            _lock: lock,
            turn: Mutex::new(Turn {
                group: 0,
                next_source,
                next_segment: base.next_segment,
                failed: None,
            }),
            turn_moved: Condvar::new(),
            base,
            base_sources,
            dropped: Vec::new(),
            known: Mutex::new(known),
            failures_in_index,
            repeated_failures: Mutex::new(Vec::new()),
            notices: Mutex::new(Vec::new()),
            names: Mutex::new(names),
            added_segments: Mutex::new(Vec::new()),
            added_sources: Mutex::new(Vec::new()),
            skipped: Mutex::new(Vec::new()),
            memory_budget,
            cleanup: Cleanup {
                dir: dir.to_path_buf(),
                live,
                armed: true,
            },
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.base
    }

    /// Drops the items whose content an index already holds or an earlier item repeats (by
    /// the SHA-256 `hash` gives; `None` means "unknown until read"), keeping the first of equal
    /// items so that which copy is indexed does not depend on thread timing. Returns the items
    /// to read; the dropped ones are listed in the summary, under the `name` given.
    pub fn drop_known<T: Send + Sync>(
        &self,
        items: Vec<T>,
        hash: impl Fn(&T) -> Option<String> + Sync,
        name: impl Fn(&T) -> String,
    ) -> Vec<T> {
        use rayon::prelude::*;
        let hashes: Vec<Option<String>> = items.par_iter().map(&hash).collect();
        let mut seen = self.known.lock().expect("no panics while locked").clone();
        let mut skipped = self.skipped.lock().expect("no panics while locked");
        let mut keep = Vec::with_capacity(items.len());
        for (item, h) in items.into_iter().zip(hashes) {
            let Some(h) = h else {
                keep.push(item);
                continue;
            };
            match seen.entry(h) {
                std::collections::hash_map::Entry::Occupied(held) => skipped.push(held.get().skip(name(&item))),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(Held {
                        name: name(&item),
                        in_index: None,
                    });
                    keep.push(item);
                }
            }
        }
        keep
    }

    /// Reads `items` into segments with up to `threads` workers (at most [`BUILDERS`]): `read`
    /// sends one item's records to a worker, `done` is told when an item is finished.
    ///
    /// The items, in the order given, are cut into groups of about one segment's worth by
    /// `decoded_size` (the bytes reading an item decodes); each group is read by one worker in
    /// order, so the index's bytes depend only on the items and the memory budget, never on
    /// thread timing (`index-format.md`, "Reproducible builds"). Returns the first error.
    pub fn add_parallel<T: Sync>(
        &self,
        items: &[T],
        threads: usize,
        decoded_size: impl Fn(&T) -> u64 + Sync,
        read: impl Fn(&T, &mut Worker<'_>) + Sync,
        done: impl Fn(&T) + Sync,
    ) -> Result<(), IndexError> {
        use rayon::prelude::*;
        let budget = self.segment_budget();
        let sizes: Vec<u64> = items.par_iter().map(&decoded_size).collect();
        let groups = plan_groups(sizes.into_iter(), budget);
        let next_group = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..threads.clamp(1, BUILDERS) {
                scope.spawn(|| loop {
                    let g = next_group.fetch_add(1, Ordering::SeqCst);
                    let Some(range) = groups.get(g) else { break };
                    let mut worker = Worker::new(self, g, budget);
                    let mut result = Ok(());
                    for item in &items[range.clone()] {
                        read(item, &mut worker);
                        done(item);
                        result = worker.flush_between_sources();
                        if result.is_err() {
                            break;
                        }
                    }
                    if let Err(e) = result.and_then(|()| worker.finish()) {
                        let mut turn = self.turn.lock().expect("no panics while locked");
                        turn.failed.get_or_insert(e);
                        self.turn_moved.notify_all();
                        break;
                    }
                });
            }
        });
        match self.turn.lock().expect("no panics while locked").failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Memory for one segment being built.
    fn segment_budget(&self) -> usize {
        self.memory_budget / BUILDERS
    }

    /// Waits for group `group`'s turn; `Err` when another worker failed meanwhile.
    fn wait_turn(&self, group: usize) -> Result<MutexGuard<'_, Turn>, IndexError> {
        let mut turn = self.turn.lock().expect("no panics while locked");
        while turn.group < group && turn.failed.is_none() {
            turn = self.turn_moved.wait(turn).expect("no panics while locked");
        }
        match turn.failed {
            Some(_) => Err(IndexError::Other {
                path: self.dir.clone(),
                what: "build stopped: another worker failed".into(),
            }),
            None => Ok(turn),
        }
    }

    /// Writes the builder's records as segment number `number`, its source ids offset by
    /// `source_base`.
    fn write_segment(&self, builder: &SegmentBuilder, number: u64, source_base: u32) -> Result<(), IndexError> {
        let name = format!("seg-{number:08}.fdx");
        let tmp = self.dir.join(format!("{name}{TMP_SUFFIX}"));
        let meta = builder
            .write(&tmp, &name, source_base)
            .map_err(|e| IndexError::io(&tmp, e))?;
        let path = self.dir.join(&name);
        fs::rename(&tmp, &path).map_err(|e| IndexError::io(&path, e))?;
        self.added_segments.lock().expect("no panics while locked").push(meta);
        Ok(())
    }

    /// Writes the builder's records (whose source ids are final) as the next segment.
    fn flush(&self, builder: &mut SegmentBuilder) -> Result<(), IndexError> {
        if builder.is_empty() {
            return Ok(());
        }
        let number = {
            let mut turn = self.turn.lock().expect("no panics while locked");
            turn.next_segment += 1;
            turn.next_segment - 1
        };
        self.write_segment(builder, number, 0)?;
        *builder = SegmentBuilder::new();
        Ok(())
    }

    /// Replaces every existing segment by the records of the existing index, rewritten into as
    /// few segments as the memory budget allows (`flowdex compact`).
    pub fn compact(&mut self) -> Result<(), IndexError> {
        let mut builder = SegmentBuilder::new();
        for meta in &self.base.segments {
            let seg = Segment::open(&self.dir.join(&meta.file))?;
            // Damage in a section the rewrite does not read would vanish with the segment,
            // and with it the only sign that the storage failed.
            seg.check_sections()?;
            let dicts = seg.dictionaries();
            for (block, b) in seg.blocks()?.iter().enumerate() {
                for r in seg.read_lines_at(block, &(0..b.record_count).collect::<Vec<_>>(), &dicts)? {
                    builder.push(&r.record, &r.line, &r.format);
                }
                if builder.memory() > self.memory_budget {
                    self.flush(&mut builder)?;
                }
            }
        }
        self.flush(&mut builder)?;
        self.dropped = self.base.segments.iter().map(|s| s.file.clone()).collect();
        Ok(())
    }

    /// Publishes the new manifest: written to a temporary file, fsynced, renamed over the old
    /// one, and the folder fsynced. Only then are dropped segment files removed.
    pub fn publish(self) -> Result<BuildSummary, IndexError> {
        let mut added_segments = self.added_segments.into_inner().expect("no panics while locked");
        let mut added_sources = self.added_sources.into_inner().expect("no panics while locked");
        added_segments.sort_by(|a, b| a.file.cmp(&b.file));
        added_sources.sort_by_key(|s| s.id);
        let mut repeated_failures = self.repeated_failures.into_inner().expect("no panics while locked");
        repeated_failures.sort();
        let mut notices = self.notices.into_inner().expect("no panics while locked");
        notices.sort();
        let summary = BuildSummary {
            sources_added: added_sources.len() as u64,
            skipped: {
                // Bundle entries are found skipped as workers read them: sorted, the list does
                // not depend on thread timing.
                let mut skipped = self.skipped.into_inner().expect("no panics while locked");
                skipped.sort_by(|a, b| a.name.cmp(&b.name));
                skipped
            },
            segments_added: added_segments.len() as u64,
            records_added: added_sources.iter().map(|s| s.records).sum(),
            rejected_added: added_sources.iter().map(|s| s.rejected).sum(),
            failed_sources: (added_sources.iter().filter(|s| s.error.is_some()).count() + repeated_failures.len())
                as u64,
            first_failures: added_sources
                .iter()
                .filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.name)))
                .chain(
                    repeated_failures
                        .iter()
                        .map(|f| format!("{f} (the index records this failure already)")),
                )
                .take(SUMMARY_LISTS)
                .collect(),
            first_rejects: added_sources
                .iter()
                .flat_map(|s| {
                    s.rejects
                        .iter()
                        .map(move |r| format!("{}:{}: rejected: {}", s.name, r.line, r.reason))
                })
                .take(SUMMARY_LISTS)
                .collect(),
            notices: notices.into_iter().map(|(_, n)| n).collect(),
        };
        let mut cleanup = self.cleanup;
        if added_segments.is_empty()
            && added_sources.is_empty()
            && self.dropped.is_empty()
            && self.dir.join(MANIFEST_FILE).exists()
        {
            return Ok(summary);
        }
        let mut manifest = self.base;
        let turn = self.turn.into_inner().expect("no panics while locked");
        manifest.generation += 1;
        // The manifest is rewritten in this version even when it extends an older index.
        manifest.format_version = crate::format::FORMAT_VERSION;
        manifest.next_segment = turn.next_segment;
        manifest.segments.retain(|s| !self.dropped.contains(&s.file));
        manifest.segments.extend(added_segments);
        let old_sources_file = manifest.sources_file.clone();
        if !added_sources.is_empty() {
            manifest.rejected_lines += summary.rejected_added;
            manifest.next_source = turn.next_source;
            let mut sources = self.base_sources;
            sources.extend(added_sources);
            manifest.source_count = sources.len() as u64;
            manifest.failed_sources = Some(failed_with_records(&sources));
            let name = format!("sources-{:08}.fdx", manifest.generation);
            let tmp = self.dir.join(format!("{name}{TMP_SUFFIX}"));
            let encoded = sources::encode(&sources);
            write_synced(&tmp, &encoded).map_err(|e| IndexError::io(&tmp, e))?;
            let path = self.dir.join(&name);
            fs::rename(&tmp, &path).map_err(|e| IndexError::io(&path, e))?;
            manifest.sources_file = Some(name);
            manifest.sources_crc = Some(sources::stored_crc(&encoded));
        }
        let tmp = self.dir.join(format!("{MANIFEST_FILE}{TMP_SUFFIX}"));
        write_synced(&tmp, &manifest.encode()).map_err(|e| IndexError::io(&tmp, e))?;
        let path = self.dir.join(MANIFEST_FILE);
        fs::rename(&tmp, &path).map_err(|e| IndexError::io(&path, e))?;
        // Published: the new files are the index now.
        cleanup.armed = false;
        sync_dir(&self.dir).map_err(|e| IndexError::io(&self.dir, e))?;
        // Readers that still map a dropped file keep reading it until they close it.
        let replaced_sources = old_sources_file.filter(|old| manifest.sources_file.as_ref() != Some(old));
        for file in self.dropped.iter().chain(&replaced_sources) {
            let _ = fs::remove_file(self.dir.join(file));
        }
        Ok(summary)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The segment and sources files `manifest` names.
fn live_files(manifest: &Manifest) -> HashSet<String> {
    manifest
        .segments
        .iter()
        .map(|s| s.file.clone())
        .chain(manifest.sources_file.clone())
        .collect()
}

/// Removes what an interrupted build left: temporary files, and segment and sources files not
/// in `live`.
fn remove_leftovers(dir: &Path, live: &HashSet<String>) -> Result<(), IndexError> {
    for entry in fs::read_dir(dir).map_err(|e| IndexError::io(dir, e))? {
        let name = entry.map_err(|e| IndexError::io(dir, e))?.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_temporary(name) || (is_data_file(name) && !live.contains(name)) {
            let path = dir.join(name);
            fs::remove_file(&path).map_err(|e| IndexError::Other {
                what: format!(
                    "cannot remove this leftover of an interrupted build ({e}); it bears a name the index \
                     uses: move it out of the index folder"
                ),
                path,
            })?;
        }
    }
    Ok(())
}

fn is_data_file(name: &str) -> bool {
    is_segment_file(name) || is_sources_file(name)
}

/// Cuts items of the given decoded sizes into consecutive groups each expected to fill about
/// one segment of `budget` bytes (an item bigger than that is a group of its own).
fn plan_groups(decoded_sizes: impl Iterator<Item = u64>, budget: usize) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut held) = (0, 0u64);
    let mut n = 0;
    for (i, size) in decoded_sizes.enumerate() {
        n = i + 1;
        held = held.saturating_add(size.saturating_mul(MEMORY_PER_DECODED_BYTE.0) / MEMORY_PER_DECODED_BYTE.1);
        if held >= budget as u64 {
            groups.push(start..n);
            (start, held) = (n, 0);
        }
    }
    if start < n {
        groups.push(start..n);
    }
    groups
}

/// Bytes a segment builder accounts per decoded input byte, as a fraction: measured on the
/// bench corpus, records of 240 decoded bytes each (newlines and headers counted) took 113
/// bytes each of columns, interned terms and write-time buffers ([`SegmentBuilder::memory`])
/// when their segment was written. A higher guess cuts segments smaller than the budget allows,
/// and every segment repeats its dictionaries.
const MEMORY_PER_DECODED_BYTE: (u64, u64) = (47, 100);

/// One group's share of a build: receives the group's records from the readers, and writes a
/// segment when the budget is reached (only between sources, so a duplicate source can be
/// rolled back). Sources get group-local ids while read; the group's turn turns them into
/// index ids.
pub struct Worker<'w> {
    writer: &'w IndexWriter,
    group: usize,
    builder: SegmentBuilder,
    budget: usize,
    current: Option<Mark>,
    /// Sources begun so far (their local ids are `0..sources`).
    sources: u32,
    /// Finished sources, with local ids.
    entries: Vec<SourceEntry>,
    /// The id of local source 0, known once the group's turn came.
    source_base: Option<u32>,
}

impl<'w> Worker<'w> {
    fn new(writer: &'w IndexWriter, group: usize, budget: usize) -> Worker<'w> {
        Worker {
            writer,
            group,
            builder: SegmentBuilder::new(),
            budget,
            current: None,
            sources: 0,
            entries: Vec::new(),
            source_base: None,
        }
    }

    /// Writes a segment if the budget is reached. Call it between input files: the sink's
    /// methods cannot return the error of a segment write, and a flush must not split a source.
    fn flush_between_sources(&mut self) -> Result<(), IndexError> {
        if self.builder.memory() > self.budget {
            self.write()?;
        }
        Ok(())
    }

    /// Writes the builder as a segment, in the group's turn (waiting for it).
    fn write(&mut self) -> Result<(), IndexError> {
        let mut turn = self.writer.wait_turn(self.group)?;
        let base = *self.source_base.get_or_insert(turn.next_source);
        if self.builder.is_empty() {
            return Ok(());
        }
        let number = turn.next_segment;
        turn.next_segment += 1;
        // Later groups wait for this one's turn to end, not for its writing.
        drop(turn);
        self.writer.write_segment(&self.builder, number, base)?;
        self.builder = SegmentBuilder::new();
        Ok(())
    }

    /// Ends the group's turn, then writes what is left. The next group's turn needs only this
    /// one's numbers (its sources and its last segment's), not its writing: ending the turn
    /// after writing kept the next worker idle while this one encoded, on a 2 M-record build
    /// a second of each worker's eight.
    fn finish(mut self) -> Result<(), IndexError> {
        let mut turn = self.writer.wait_turn(self.group)?;
        let base = *self.source_base.get_or_insert(turn.next_source);
        let number = (!self.builder.is_empty()).then(|| {
            turn.next_segment += 1;
            turn.next_segment - 1
        });
        turn.next_source = base + self.sources;
        turn.group += 1;
        self.writer.turn_moved.notify_all();
        drop(turn);
        if let Some(number) = number {
            self.writer.write_segment(&self.builder, number, base)?;
        }
        let mut added = self.writer.added_sources.lock().expect("no panics while locked");
        for mut entry in self.entries {
            entry.id += base;
            added.push(entry);
        }
        Ok(())
    }

    fn source_entry(report: &SourceReport) -> SourceEntry {
        let (path, path_bytes) = SourceEntry::path_fields(&report.meta.path);
        SourceEntry {
            id: report.id,
            name: report.meta.name.clone(),
            path,
            path_bytes,
            entry: report.meta.entry.clone(),
            size: report.size,
            sha256: report.sha256.clone(),
            s3: report.meta.s3.clone(),
            form: report.form.as_str().to_owned(),
            gzip: report.gzip,
            lines: report.lines,
            blank_lines: report.blank_lines,
            headers: report.headers,
            records: report.records,
            rejected: report.rejected,
            rejects: report
                .rejects
                .iter()
                .map(|r| RejectEntry {
                    line: r.line,
                    reason: r.reason.to_string(),
                })
                .collect(),
            error: report.error.as_ref().map(ToString::to_string),
        }
    }
}

impl RecordSink for Worker<'_> {
    fn begin_source(&mut self, _meta: &SourceMeta) -> u32 {
        self.current = Some(self.builder.mark());
        self.sources += 1;
        self.sources - 1
    }

    fn record(&mut self, record: &FlowRecord, raw: &[u8], format: &LogFormat) {
        self.builder.push(record, raw, format.columns());
    }

    fn reject(&mut self, _rejection: &Rejection<'_>) {}

    fn end_source(&mut self, report: SourceReport) {
        let mark = self.current.take().expect("end_source follows begin_source");
        // A `.tar.gz` whose gzip check fails at its end fails as the bundle, after its entries
        // were read: any of them may hold a corrupt value, so each says so, and a search
        // showing their records warns. Done first: the bundle's own failure may be one the
        // index already records, while these entries are new.
        if let (None, Some(error @ SourceError::Unverified { .. })) = (&report.meta.entry, &report.error) {
            for read in self
                .entries
                .iter_mut()
                .filter(|e| e.path == report.meta.path.to_string_lossy() && e.entry.is_some() && e.error.is_none())
            {
                read.error = Some(format!(
                    "read from the bundle {}, which failed: {error}",
                    report.meta.name
                ));
            }
        }
        let read_nothing = nothing_read(&report.sha256, report.lines, report.blank_lines);
        if let Some(error) = report.error.as_ref().filter(|_| read_nothing) {
            let failure = (report.meta.name.clone(), error.to_string());
            if self.writer.failures_in_index.contains(&failure) {
                self.writer
                    .repeated_failures
                    .lock()
                    .expect("no panics while locked")
                    .push(format!("{}: {}", failure.0, failure.1));
                return;
            }
        }
        if !report.sha256.is_empty() {
            let mut known = self.writer.known.lock().expect("no panics while locked");
            match known.entry(report.sha256.clone()) {
                std::collections::hash_map::Entry::Occupied(held) => {
                    let skipped = held.get().skip(report.meta.name.clone());
                    drop(known);
                    self.builder.rollback(mark);
                    self.writer
                        .skipped
                        .lock()
                        .expect("no panics while locked")
                        .push(skipped);
                    return;
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(Held {
                        name: report.meta.name.clone(),
                        in_index: None,
                    });
                }
            }
        }
        let mut entry = Worker::source_entry(&report);
        let mut notices = report.notice().into_iter().map(str::to_owned).collect::<Vec<_>>();
        if !report.sha256.is_empty() {
            let name = self
                .writer
                .names
                .lock()
                .expect("no panics while locked")
                .take(&entry.name);
            if name != entry.name {
                notices.push(format!(
                    "the index holds other content under this name; this content is added as {name}"
                ));
                entry.name = name;
            }
        }
        if !notices.is_empty() {
            let mut all = self.writer.notices.lock().expect("no panics while locked");
            for notice in notices {
                all.push(((self.group, report.id), format!("{}: {notice}", report.meta.name)));
            }
        }
        self.entries.push(entry);
    }
}

/// Whether a source read nothing (no byte hashed, no line): its failure says all there is of
/// it, and is recorded once however often builds meet it.
fn nothing_read(sha256: &str, lines: u64, blank_lines: u64) -> bool {
    sha256.is_empty() && lines == 0 && blank_lines == 0
}
