//! Going back to an index's sources: are the files still there, are their bytes still the
//! bytes that were indexed (SHA-256 as read), and what exactly did a line say. `flowdex show`
//! and `flowdex verify --sources` stand on this.
//!
//! Sources are found again by their recorded path (relative paths are taken from the current
//! folder, as they were given to `flowdex build`), or, when folders are given, by content: every
//! file under the folders is hashed and matched to the manifest's SHA-256, so a copy of the
//! evidence moved to another disk still verifies.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::format::manifest::SourceEntry;
use crate::input::{self, InputFile, LogFormat, ReadOptions, RecordSink, Rejection, SourceMeta, SourceReport};
use crate::read::{Index, IndexError};
use crate::record::{FlowRecord, Provenance};

/// What became of a source since it was indexed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceState {
    /// Found, with the bytes that were indexed (at `at`: its name where it was found; `moved`
    /// when that is not its recorded place).
    Intact { at: String, moved: bool },
    /// Found at its recorded place with other bytes.
    Changed { at: String, sha256: String },
    /// Not found.
    Missing,
    /// Found but it could not be read to its end.
    Unreadable { at: String, why: String },
}

impl SourceState {
    pub fn is_intact(&self) -> bool {
        matches!(self, SourceState::Intact { .. })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            SourceState::Intact { .. } => "intact",
            SourceState::Changed { .. } => "changed",
            SourceState::Missing => "missing",
            SourceState::Unreadable { .. } => "unreadable",
        }
    }
}

/// One source of one input file, read again.
#[derive(Clone, Debug)]
struct Reread {
    /// The source's name as the reader gives it (`path` or `bundle!entry`).
    name: String,
    /// The file it was read from, and its entry there.
    path: PathBuf,
    entry: Option<String>,
    sha256: String,
    error: Option<String>,
    /// The lines that were asked for, by number, without their line terminator.
    lines: BTreeMap<u64, Vec<u8>>,
}

/// Reads an input file again (every source in it), hashing each source and keeping the lines
/// `wanted` lists for it (by bundle entry, `None` for a plain file). A single-source file from
/// which no line is wanted is only hashed, not parsed.
fn reread(file: &InputFile, wanted: &HashMap<Option<String>, BTreeSet<u64>>) -> Vec<Reread> {
    if wanted.is_empty() {
        if let Some(sha256) = input::single_source_hash(file) {
            return vec![Reread {
                name: file.name.clone(),
                path: file.path.clone(),
                entry: None,
                sha256,
                error: None,
                lines: BTreeMap::new(),
            }];
        }
    }
    let mut catcher = LineCatcher {
        wanted,
        current: None,
        found: Vec::new(),
    };
    // Which fields a line holds does not matter here: a line the default format rejects is
    // caught as a rejection, with the same bytes.
    input::read_input(file, &ReadOptions::default(), &mut catcher);
    catcher.found
}

struct LineCatcher<'w> {
    wanted: &'w HashMap<Option<String>, BTreeSet<u64>>,
    current: Option<&'w BTreeSet<u64>>,
    found: Vec<Reread>,
}

impl LineCatcher<'_> {
    fn keep(&mut self, line: u64, raw: &[u8]) {
        if self.current.is_some_and(|lines| lines.contains(&line)) {
            if let Some(r) = self.found.last_mut() {
                r.lines.insert(line, raw.to_vec());
            }
        }
    }
}

impl RecordSink for LineCatcher<'_> {
    fn begin_source(&mut self, meta: &SourceMeta) -> u32 {
        self.current = self.wanted.get(&meta.entry);
        self.found.push(Reread {
            name: meta.name.clone(),
            path: meta.path.clone(),
            entry: meta.entry.clone(),
            sha256: String::new(),
            error: None,
            lines: BTreeMap::new(),
        });
        (self.found.len() - 1) as u32
    }

    fn record(&mut self, record: &FlowRecord, raw: &[u8], _format: &LogFormat) {
        self.keep(record.provenance.line, raw);
    }

    fn reject(&mut self, rejection: &Rejection<'_>) {
        self.keep(rejection.line, rejection.raw);
    }

    fn header(&mut self, line: u64, raw: &[u8]) {
        self.keep(line, raw);
    }

    fn end_source(&mut self, report: SourceReport) {
        if let Some(r) = self.found.last_mut() {
            r.sha256 = report.sha256;
            r.error = report.error.map(|e| e.to_string());
        }
    }
}

/// The state of `source` given what re-reading the file at its recorded path found.
fn state_at(source: &SourceEntry, found: &[Reread]) -> SourceState {
    let Some(r) = found.iter().find(|r| r.entry == source.entry) else {
        return SourceState::Missing;
    };
    if r.sha256 == source.sha256 {
        return SourceState::Intact {
            at: r.name.clone(),
            moved: false,
        };
    }
    match &r.error {
        Some(why) if r.sha256.is_empty() => SourceState::Unreadable {
            at: r.name.clone(),
            why: why.clone(),
        },
        _ => SourceState::Changed {
            at: r.name.clone(),
            sha256: r.sha256.clone(),
        },
    }
}

/// The file at a source's recorded path, when anything is there: what is not a regular file
/// (a folder, a FIFO, a link to a device) is then reported unreadable, with why, not missing.
/// A link whose target is gone is missing.
fn recorded_file(source: &SourceEntry) -> Option<InputFile> {
    let path = source.file_path();
    path.exists().then(|| InputFile {
        name: input::printable(&path.to_string_lossy()).into_owned(),
        path,
        error: None,
    })
}

/// Every source of a manifest checked against the disk.
#[derive(Clone, Debug)]
pub struct SourcesCheck<'m> {
    /// The sources that were read when indexed, with their state now, in id order.
    pub sources: Vec<(&'m SourceEntry, SourceState)>,
    /// Sources under the given folders that the index does not hold (name, SHA-256).
    pub extra: Vec<(String, String)>,
}

impl SourcesCheck<'_> {
    pub fn all_intact(&self) -> bool {
        self.sources.iter().all(|(_, s)| s.is_intact()) && self.extra.is_empty()
    }
}

/// Checks an index's `sources`: at their recorded paths when `dirs` is empty, else by
/// content among the files under `dirs` (also reporting files the index lacks; the folder
/// `index`, when it lies under them, is not evidence). Sources that could not be read when
/// indexed (no SHA-256) are left out: they contributed nothing.
pub fn check_sources<'m>(sources: &'m [SourceEntry], dirs: &[PathBuf], index: Option<&Path>) -> SourcesCheck<'m> {
    let hashed: Vec<&SourceEntry> = sources.iter().filter(|s| !s.sha256.is_empty()).collect();
    let no_lines = HashMap::new();
    if dirs.is_empty() {
        let mut by_path: BTreeMap<PathBuf, Vec<&SourceEntry>> = BTreeMap::new();
        for s in &hashed {
            by_path.entry(s.file_path()).or_default().push(s);
        }
        let states: Vec<Vec<(&SourceEntry, SourceState)>> = by_path
            .into_par_iter()
            .map(|(_, sources)| {
                let found = recorded_file(sources[0]).map_or_else(Vec::new, |f| reread(&f, &no_lines));
                sources.into_iter().map(|s| (s, state_at(s, &found))).collect()
            })
            .collect();
        let mut sources: Vec<_> = states.into_iter().flatten().collect();
        sources.sort_by_key(|(s, _)| s.id);
        return SourcesCheck {
            sources,
            extra: Vec::new(),
        };
    }
    let files = input::discover_outside(dirs, index);
    let found: Vec<Reread> = files.par_iter().flat_map_iter(|f| reread(f, &no_lines)).collect();
    let mut by_hash: HashMap<&str, Vec<&Reread>> = HashMap::new();
    for r in &found {
        by_hash.entry(r.sha256.as_str()).or_default().push(r);
    }
    let indexed: BTreeSet<&str> = hashed.iter().map(|s| s.sha256.as_str()).collect();
    let sources: Vec<(&SourceEntry, SourceState)> = hashed
        .iter()
        .map(|s| {
            // Of copies, the one at the recorded path: a copy elsewhere is not where it went.
            let intact = by_hash
                .get(s.sha256.as_str())
                .and_then(|copies| copies.iter().find(|r| same_file(r, s)).or(copies.first()));
            let state = match intact {
                Some(r) => SourceState::Intact {
                    at: r.name.clone(),
                    moved: !same_file(r, s),
                },
                // Not found by content: what is at its recorded path (if under the folders)?
                None => {
                    let here: Vec<Reread> = found.iter().filter(|r| same_file(r, s)).cloned().collect();
                    state_at(s, &here)
                }
            };
            (*s, state)
        })
        .collect();
    // A source changed in place is reported as changed, not also as a file the index lacks.
    let changed: BTreeSet<&str> = sources
        .iter()
        .filter_map(|(_, state)| match state {
            SourceState::Changed { at, .. } => Some(at.as_str()),
            _ => None,
        })
        .collect();
    let extra = found
        .iter()
        .filter(|r| !r.sha256.is_empty() && !indexed.contains(r.sha256.as_str()) && !changed.contains(r.name.as_str()))
        .map(|r| (r.name.clone(), r.sha256.clone()))
        .collect();
    SourcesCheck { sources, extra }
}

/// Whether a re-read source is the recorded source `s`: the same entry of the same file,
/// compared as a place, not as spelt (`./logs/a.log` under `--sources ./logs` is `logs/a.log`
/// as built), and by path, not by name (names escape control characters).
fn same_file(r: &Reread, s: &SourceEntry) -> bool {
    r.entry == s.entry && same_place(&r.path, &s.file_path())
}

/// Whether two paths name one file: by their canonical forms when both exist, else by their
/// components without `.`.
fn same_place(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => {
            let plain =
                |p: &Path| -> PathBuf { p.components().filter(|c| *c != std::path::Component::CurDir).collect() };
            plain(a) == plain(b)
        }
    }
}

/// A reference to a record's line as `search --with-source` prints it: `SOURCE:LINE`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineRef {
    pub source: String,
    pub line: u64,
}

impl LineRef {
    /// Parses `SOURCE:LINE` (the last `:` separates them: source names may hold colons).
    pub fn parse(text: &str) -> Option<LineRef> {
        let (source, line) = text.rsplit_once(':')?;
        Some(LineRef {
            source: source.to_owned(),
            line: line.parse().ok().filter(|&n| n > 0)?,
        })
    }
}

/// The lines of one source asked for by `flowdex show`.
#[derive(Clone, Debug)]
pub struct ShownSource<'m> {
    pub source: &'m SourceEntry,
    pub state: SourceState,
    pub lines: Vec<ShownLine>,
}

/// One asked line of a source.
#[derive(Clone, Debug)]
pub struct ShownLine {
    pub line: u64,
    /// The line as the index holds it; `None` when no record of the index is at that line.
    pub indexed: Option<Vec<u8>>,
    /// The line as the file holds it now; `None` when the file or the line is gone.
    pub on_disk: Option<Vec<u8>>,
}

impl ShownLine {
    /// Why the index rejected this line, when it did and kept the reason.
    pub fn rejected_reason<'s>(&self, source: &'s SourceEntry) -> Option<&'s str> {
        let i = source.rejects.binary_search_by_key(&self.line, |r| r.line).ok()?;
        Some(&source.rejects[i].reason)
    }

    /// Why no record of the index is at this line of `source`: the reason it was rejected,
    /// or what else the line is (a header, a blank line, past the end), so that `show` never
    /// leaves a responder guessing. `None` when a record is there. `state` is the source
    /// file's: read again intact, it tells a header (its text was caught) from a blank line.
    pub fn no_record_reason(&self, source: &SourceEntry, state: &SourceState) -> Option<String> {
        if self.indexed.is_some() {
            return None;
        }
        if let Some(reason) = self.rejected_reason(source) {
            return Some(format!("the index rejected this line: {reason}"));
        }
        // Blank lines are numbered but not counted among the source's lines. JSON sources
        // number their log events instead.
        let read = source.lines + source.blank_lines;
        let unit = if source.form == "json" { "events" } else { "lines" };
        if self.line > read {
            return Some(match &source.error {
                Some(error) => format!("the index read only {read} {unit} of this source, which failed: {error}"),
                None => format!("the source has {read} {unit}"),
            });
        }
        // The index keeps the reasons of a source's first rejects only: a line after the last
        // kept may be a rejected one.
        let unkept_rejects =
            source.rejected > source.rejects.len() as u64 && source.rejects.last().is_none_or(|r| self.line > r.line);
        if unkept_rejects {
            return Some("a header, a blank line, or a rejected line whose reason the index did not keep".into());
        }
        // Text read again from a file that changed is no evidence of what the line was.
        let blank = match (&self.on_disk, state.is_intact()) {
            (Some(_), true) => false,
            (None, true) => true,
            (_, false) if source.headers == 0 => true,
            (_, false) if source.blank_lines == 0 => false,
            (_, false) => return Some("a header or a blank line".into()),
        };
        Some(
            if blank {
                "a blank line"
            } else {
                "a header line (field names)"
            }
            .into(),
        )
    }
}

/// Why `show` cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("no source named `{0}` in the index; `flowdex info` lists them")]
    UnknownSource(String),
}

/// The lines `refs` point at, from the index and from the sources where they still are.
pub fn show<'i>(index: &'i Index, refs: &[LineRef]) -> Result<Vec<ShownSource<'i>>, ShowError> {
    let by_name: HashMap<&str, &SourceEntry> = index.sources()?.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut asked: BTreeMap<u32, (&SourceEntry, BTreeSet<u64>)> = BTreeMap::new();
    for r in refs {
        let s = by_name
            .get(r.source.as_str())
            .ok_or_else(|| ShowError::UnknownSource(r.source.clone()))?;
        asked
            .entry(s.id)
            .or_insert_with(|| (s, BTreeSet::new()))
            .1
            .insert(r.line);
    }
    let wanted: Vec<Provenance> = asked
        .iter()
        .flat_map(|(&source, (_, lines))| lines.iter().map(move |&line| Provenance { source, line }))
        .collect();
    let places = index.locate(&wanted)?;
    let present: Vec<_> = places.iter().flatten().copied().collect();
    let mut indexed = index.original_lines(&present)?.into_iter();
    let mut from_index: HashMap<Provenance, Vec<u8>> = HashMap::new();
    for (p, place) in wanted.iter().zip(&places) {
        if place.is_some() {
            from_index.insert(*p, indexed.next().expect("one line per place"));
        }
    }
    let shown = asked
        .into_par_iter()
        .map(|(id, (source, lines))| {
            let wanted = HashMap::from([(source.entry.clone(), lines.clone())]);
            let found = recorded_file(source).map_or_else(Vec::new, |f| reread(&f, &wanted));
            let state = state_at(source, &found);
            let on_disk = found.iter().find(|r| r.entry == source.entry);
            let lines = lines
                .iter()
                .map(|&line| ShownLine {
                    line,
                    indexed: from_index.get(&Provenance { source: id, line }).cloned(),
                    on_disk: on_disk.and_then(|r| r.lines.get(&line).cloned()),
                })
                .collect();
            ShownSource { source, state, lines }
        })
        .collect();
    Ok(shown)
}
