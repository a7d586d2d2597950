//! Fuzz harnesses for flowdex: one function per fuzz target, each taking the fuzzer's bytes and
//! panicking only when flowdex breaks an invariant (a panic inside flowdex, counts that do not
//! reconcile, an index answer that differs from a linear scan).
//!
//! The functions live in a library, not in the targets, so that `tests/fuzz_regressions.rs`
//! replays the committed seeds and crash reproducers through exactly the same code on stable
//! (it includes this file with `#[path]`). Hence std and flowdex only: no `arbitrary`, which the
//! main crate does not depend on; structure is drawn from the bytes by [`Bytes`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};

use flowdex::build::SegmentBuilder;
use flowdex::format::schema::Column;
use flowdex::format::sources::{ChunkCache, Sources};
use flowdex::input::{
    self, Form, InputFile, Limits, LogFormat, ReadOptions, RejectedLine, Rejection, SourceError, SourceMeta,
    SourceReport,
};
use flowdex::query;
use flowdex::read::Segment;
use flowdex::record::{Field, FieldKind, FlowRecord, FormatField};

// ---------------------------------------------------------------------------------------------
// Reading inputs

/// Collects what the readers say and checks the sink protocol as it goes.
#[derive(Default)]
struct Sink {
    /// Sources begun and not yet ended.
    open: BTreeSet<u32>,
    begun: u32,
    records: Vec<(FlowRecord, Vec<u8>, LogFormat)>,
    /// Records and rejects seen per source, to hold against its report.
    seen: BTreeMap<u32, (u64, u64)>,
    reports: Vec<SourceReport>,
}

impl input::RecordSink for Sink {
    fn begin_source(&mut self, _meta: &SourceMeta) -> u32 {
        let id = self.begun;
        self.begun += 1;
        self.open.insert(id);
        id
    }
    fn record(&mut self, record: &FlowRecord, raw: &[u8], format: &LogFormat) {
        let source = record.provenance.source;
        assert!(
            self.open.contains(&source),
            "record of source {source}, which is not open"
        );
        self.seen.entry(source).or_default().0 += 1;
        self.records.push((record.clone(), raw.to_vec(), format.clone()));
    }
    fn reject(&mut self, r: &Rejection<'_>) {
        assert!(
            self.open.contains(&r.source),
            "reject of source {}, which is not open",
            r.source
        );
        self.seen.entry(r.source).or_default().1 += 1;
    }
    fn end_source(&mut self, report: SourceReport) {
        assert!(self.open.remove(&report.id), "source ended twice or never begun");
        self.reports.push(report);
    }
}

/// A file of its own in memory (`/dev/shm`) when there is one: the readers take paths. Numbered,
/// because the regression tests run harnesses on several threads of one process.
fn scratch_file(what: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = Path::new("/dev/shm");
    let dir = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("flowdex-fuzz-{}-{n}-{what}", std::process::id()))
}

/// Reads `bytes` as one input file, as `flowdex cat` would, and checks what the readers promise
/// whatever the bytes: every source ends, its counts reconcile and match what the sink was told,
/// line numbers only grow, a hostile entry name is never read, and a whole file's hash covers
/// every byte of it (also those past a point where decoding broke off).
fn read_bytes(bytes: &[u8], options: &ReadOptions) -> Sink {
    let path = scratch_file("input");
    std::fs::write(&path, bytes).expect("scratch file");
    let file = InputFile {
        path: path.clone(),
        name: "input".to_owned(),
        error: None,
    };
    let mut sink = Sink::default();
    input::read_input(&file, options, &mut sink);
    let _ = std::fs::remove_file(&path);
    assert!(sink.open.is_empty(), "sources begun and never ended: {:?}", sink.open);
    let mut last_line: BTreeMap<u32, u64> = BTreeMap::new();
    for (record, _, _) in &sink.records {
        let p = record.provenance;
        let last = last_line.insert(p.source, p.line).unwrap_or(0);
        assert!(
            p.line > last,
            "line {} of source {} after line {last}",
            p.line,
            p.source
        );
    }
    for r in &sink.reports {
        assert_eq!(
            r.lines,
            r.headers + r.records + r.rejected,
            "counts must reconcile: {r}"
        );
        let (records, rejects) = sink.seen.get(&r.id).copied().unwrap_or_default();
        assert_eq!((r.records, r.rejected), (records, rejects), "report vs sink: {r}");
        assert_eq!(r.rejects.len() as u64, r.rejected.min(MAX_REJECTS_KEPT), "{r}");
        let numbered = r.lines + r.blank_lines;
        assert!(
            r.rejects.windows(2).all(|w| w[0].line < w[1].line)
                && r.rejects.iter().all(|j| (1..=numbered).contains(&j.line)),
            "reject line numbers out of order or past the source's {numbered} lines: {r}"
        );
        assert!(last_line.get(&r.id).copied().unwrap_or(0) <= numbered, "{r}");
        if let Some(name) = r.meta.entry.as_deref().filter(|n| hostile_name(n)) {
            assert!(r.lines == 0 && r.error.is_some(), "entry `{name}` was read: {r}");
        }
        if r.meta.entry.is_none() && !r.sha256.is_empty() {
            assert_eq!(r.size, bytes.len() as u64, "{r}");
            assert_eq!(r.sha256, sha256_hex(bytes), "{r}");
        }
    }
    sink
}

/// `SourceReport::rejects` keeps this many (the count goes on).
const MAX_REJECTS_KEPT: u64 = 100_000;

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A name that would leave the bundle if extracted: absolute, a drive, or a `..` component.
/// Names come with control characters escaped (`\t` for a tab), which are judged as the
/// character they stand for, never a separator: each is read as `?` first.
fn hostile_name(name: &str) -> bool {
    let mut plain = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        let escape = ["\\t", "\\n", "\\r"]
            .iter()
            .find(|e| rest.starts_with(**e))
            .map(|e| e.len())
            .or_else(|| rest.strip_prefix("\\u{").and_then(|r| r.find('}')).map(|end| end + 4));
        match escape {
            Some(len) => {
                plain.push('?');
                rest = &rest[len..];
            }
            None => {
                plain.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    let name = plain.as_str();
    name.starts_with(['/', '\\']) || name.as_bytes().get(1) == Some(&b':') || name.split(['/', '\\']).any(|c| c == "..")
}

/// Whether a line's first token would be taken for a header line (then it is not a record).
fn looks_like_header(line: &[u8]) -> bool {
    let first = line.split(|b| *b == b' ').next().unwrap_or_default();
    let name = String::from_utf8_lossy(first);
    Field::from_name(name.trim_matches(|c| c == '$' || c == '{' || c == '}')).is_some()
}

/// Writing a record back as a line and reading that line gives the same record
/// (`FlowRecord::write_line`'s promise, which the index's original-line column relies on).
fn check_written_lines_read_back(records: &[(FlowRecord, Vec<u8>, LogFormat)]) {
    for (record, _, format) in records {
        // A header names the fields; a format whose first position is unknown has none.
        if !matches!(format.columns().first(), Some(FormatField::Known(_))) {
            continue;
        }
        let mut line = Vec::new();
        record.write_line(format.columns(), &mut line);
        // Such a line alone would be a header, or (with a NUL) binary: the form is told from
        // the bytes, and within a longer source these lines were records only by their place.
        if looks_like_header(&line) || line.contains(&0) {
            continue;
        }
        let mut text = format.to_string().into_bytes();
        text.push(b'\n');
        text.extend_from_slice(&line);
        text.push(b'\n');
        let back = read_bytes(&text, &ReadOptions::default());
        assert_eq!(
            back.records.len(),
            1,
            "written line {:?} did not read back",
            String::from_utf8_lossy(&line)
        );
        let mut got = back.records[0].0.clone();
        got.provenance = record.provenance;
        assert_eq!(&got, record, "line {:?}", String::from_utf8_lossy(&line));
    }
}

/// The first byte picks the format of headerless lines; the rest is a text source.
pub fn line_parser(data: &[u8]) {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let log_format = match pick % 4 {
        0 => None,
        1 => Some(LogFormat::vpc_up_to_version(11)),
        2 => Some(LogFormat::default_tgw()),
        _ => Some(LogFormat::vpc_up_to_version(5)),
    };
    let options = ReadOptions {
        log_format,
        ..Default::default()
    };
    let sink = read_bytes(text, &options);
    check_written_lines_read_back(&sink.records);
}

/// The default options, or with `tight`, limits small enough that a few kilobytes of fuzzer
/// input reach them: an over-long line, a bomb's ratio, a source's size.
fn read_options(tight: bool) -> ReadOptions {
    if !tight {
        return ReadOptions::default();
    }
    ReadOptions {
        log_format: None,
        limits: Limits {
            max_line_bytes: 4096,
            max_ratio: 20,
            ratio_grace_bytes: 64 << 10,
            max_source_bytes: 1 << 20,
        },
    }
}

/// What a source gave, less what depends on how it was delivered: the same text must read the
/// same as a file, a bundle entry, gzip members or JSON messages.
#[derive(Debug, PartialEq)]
struct Reading {
    lines: u64,
    blank_lines: u64,
    headers: u64,
    records: u64,
    rejected: u64,
    rejects: Vec<RejectedLine>,
    /// With `provenance.source` zeroed: ids differ between readings.
    seen: Vec<(FlowRecord, Vec<u8>, LogFormat)>,
}

fn reading(sink: &Sink, r: &SourceReport) -> Reading {
    let seen = sink
        .records
        .iter()
        .filter(|(record, _, _)| record.provenance.source == r.id)
        .map(|(record, raw, format)| {
            let mut record = record.clone();
            record.provenance.source = 0;
            (record, raw.clone(), format.clone())
        })
        .collect();
    Reading {
        lines: r.lines,
        blank_lines: r.blank_lines,
        headers: r.headers,
        records: r.records,
        rejected: r.rejected,
        rejects: r.rejects.clone(),
        seen,
    }
}

/// The one whole-file source `text` gives when read as a file, if it reads without error as
/// lines (not JSON, a bundle or anything refused): the reading others are held to.
fn plain_text(text: &[u8]) -> Option<(Reading, Form)> {
    let sink = read_bytes(text, &ReadOptions::default());
    match sink.reports.as_slice() {
        [r] if r.meta.entry.is_none() && r.error.is_none() && !r.gzip && r.form != Form::Json => {
            Some((reading(&sink, r), r.form))
        }
        _ => None,
    }
}

fn gzip_member(text: &[u8], level: u32, named: bool) -> Vec<u8> {
    let mut builder = flate2::GzBuilder::new();
    if named {
        builder = builder.filename("flow.log").comment("fuzz");
    }
    let mut e = builder.write(Vec::new(), flate2::Compression::new(level));
    e.write_all(text).unwrap();
    e.finish().unwrap()
}

/// Gzip text objects. First byte even: the rest is the file (gzip's magic put in front when
/// missing), read under tight limits when its bit 1 is set. First byte odd: the rest after a
/// second byte is text, compressed here into 1-4 members (bits 1-2) at a level (bits 3-6), with
/// a file name when bit 3 is set; bit 7 cuts the file inside its last member, at a point the
/// second byte picks. Whole members must read as the text read as a file; a cut stream must give
/// a prefix of those records and a corrupt-gzip error.
pub fn gzip(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    if flags & 1 == 0 {
        let mut file = rest.to_vec();
        if !file.starts_with(&[0x1f, 0x8b]) {
            file.splice(0..0, [0x1f, 0x8b]);
        }
        let options = read_options(flags & 2 == 2);
        let sink = read_bytes(&file, &options);
        for r in sink
            .reports
            .iter()
            .filter(|r| r.meta.entry.is_none() && !r.sha256.is_empty())
        {
            assert!(r.gzip, "a gzip file read as not gzip: {r}");
        }
        return;
    }
    let Some((&cut, text)) = rest.split_first() else {
        return;
    };
    let members = 1 + usize::from(flags >> 1 & 3);
    let level = u32::from(flags >> 3 & 15) % 10;
    let part = text.len().div_ceil(members).max(1);
    let mut file = Vec::new();
    let mut last_start = 0;
    for (i, piece) in text.chunks(part).enumerate() {
        last_start = file.len();
        file.extend(gzip_member(piece, level, flags & 8 == 8 && i == 0));
    }
    if text.is_empty() {
        file = gzip_member(b"", level, false);
    }
    let truncated = flags & 0x80 == 0x80;
    if truncated {
        // Past the last member's magic: cut before it, the file would be whole members or,
        // cut to one byte, not gzip at all.
        let last_len = file.len() - last_start;
        file.truncate(last_start + 2 + usize::from(cut) * (last_len - 2) / 256);
    }
    let sink = read_bytes(&file, &ReadOptions::default());
    let Some((want, form)) = plain_text(text) else {
        return;
    };
    let [r] = sink.reports.as_slice() else {
        panic!("text in gzip gave {} sources", sink.reports.len());
    };
    let got = reading(&sink, r);
    if truncated {
        assert!(
            matches!(
                r.error,
                Some(SourceError::Corrupt {
                    what: "gzip stream",
                    ..
                })
            ),
            "a cut gzip stream read without its error: {r}"
        );
        assert!(
            got.seen.len() <= want.seen.len() && got.seen[..] == want.seen[..got.seen.len()],
            "a cut gzip stream gave records the whole one does not"
        );
    } else {
        assert!(r.error.is_none(), "{r}");
        assert_eq!((r.form, r.gzip), (form, true), "{r}");
        assert_eq!(got, want, "text read from gzip members");
    }
}

/// Names for entries of the bundles built here: ordinary, longer than tar's 100-byte name field,
/// a duplicate, and names that would leave the bundle (never to be read).
const ENTRY_NAMES: &[&str] = &[
    "a.log",
    "AWSLogs/123456789010/vpcflowlogs/us-east-1/2023/11/14/\
     123456789010_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20231114T0000Z_0a1b2c3d.log.gz",
    "a.log",
    "../escape.log",
    "/etc/cron.d/flow.log",
    "logs/../../up.log",
    "C:\\Windows\\flow.log",
    "logs\\..\\..\\up.log",
    "logs/../../../../../../../../../../../../../../../../../../../../../../../../../../../../../long.log",
];

/// What a bundle built here holds, in order, and what reading each entry must give.
enum Entry<'a> {
    /// Regular content: reads as the same bytes read as a file, or is refused for its name.
    File(&'a str, Vec<u8>),
    /// A link: refused, not followed.
    Link(&'a str),
    /// A folder: no source at all.
    Folder,
}

/// Bundle entries from the fuzzer's bytes: pieces split at NUL (so contents are never binary),
/// each piece's first byte picking the name and the kind (`kinds` of them: regular text,
/// gzip'd text, link, folder), the rest its content.
fn bundle_entries(data: &[u8], kinds: usize) -> Vec<(usize, &'static str, &[u8])> {
    data.split(|b| *b == 0)
        .take(8)
        .filter_map(|piece| piece.split_first())
        .map(|(&c, content)| {
            let c = usize::from(c);
            (
                c / ENTRY_NAMES.len() % kinds,
                ENTRY_NAMES[c % ENTRY_NAMES.len()],
                content,
            )
        })
        .collect()
}

/// Checks a bundle's sources against what it holds.
fn check_bundle(sink: &Sink, entries: &[Entry<'_>]) {
    let sources: Vec<&Entry<'_>> = entries.iter().filter(|e| !matches!(e, Entry::Folder)).collect();
    assert_eq!(sink.reports.len(), sources.len(), "one source per file or link entry");
    // A name taken by an earlier entry is followed by the first free number from 2.
    let mut taken = std::collections::HashSet::new();
    let names: Vec<String> = sources
        .iter()
        .map(|e| {
            let (Entry::File(name, _) | Entry::Link(name)) = e else {
                unreachable!()
            };
            let unique = (1..)
                .map(|k| {
                    if k == 1 {
                        name.to_string()
                    } else {
                        format!("{name}#{k}")
                    }
                })
                .find(|n| !taken.contains(n))
                .expect("a free name");
            taken.insert(unique.clone());
            unique
        })
        .collect();
    for ((r, entry), name) in sink.reports.iter().zip(sources).zip(&names) {
        assert_eq!(r.meta.entry.as_ref(), Some(name), "{r}");
        match entry {
            Entry::Link(_) => assert!(
                r.lines == 0 && matches!(r.error, Some(SourceError::UnsafeEntry { .. })),
                "a link was followed: {r}"
            ),
            Entry::File(name, _) if hostile_name(name) => {} // read_bytes checked it
            Entry::File(_, content) => {
                let alone = read_bytes(content, &ReadOptions::default());
                let [a] = alone.reports.as_slice() else { continue };
                if a.meta.entry.is_some() {
                    continue;
                }
                // Refused as a file (a zip, Parquet, broken gzip), refused as an entry, though
                // not always for the same reason: a bundle in a bundle is refused unopened.
                if a.error.is_some() {
                    assert!(r.error.is_some(), "entry {r} read, file {a} refused");
                    continue;
                }
                assert_eq!(
                    (r.form, r.gzip, r.size, &r.sha256, r.error.is_some()),
                    (a.form, a.gzip, a.size, &a.sha256, false),
                    "entry {r} vs file {a}"
                );
                assert_eq!(
                    reading(sink, r),
                    reading(&alone, a),
                    "entry `{name}` vs the same bytes as a file"
                );
            }
            Entry::Folder => unreachable!(),
        }
    }
}

fn gzip_whole(bytes: &[u8]) -> Vec<u8> {
    gzip_member(bytes, 6, false)
}

/// A tar header for `name`, preceded by a GNU long-name entry when the name does not fit. Built
/// by hand: `tar::Builder` refuses the hostile names this harness needs.
fn append_tar(out: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, content: &[u8]) {
    let name = name.as_bytes();
    if name.len() > 100 {
        let mut long = tar::Header::new_gnu();
        long.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
        long.set_entry_type(tar::EntryType::GNULongName);
        long.set_mode(0o644);
        long.set_size(name.len() as u64 + 1);
        long.set_cksum();
        out.append(&long, [name, b"\0"].concat().as_slice()).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    let n = name.len().min(100);
    h.as_gnu_mut().unwrap().name[..n].copy_from_slice(&name[..n]);
    h.set_entry_type(kind);
    h.set_mode(0o644);
    if kind == tar::EntryType::Symlink {
        h.set_link_name("a.log").unwrap();
    }
    h.set_size(content.len() as u64);
    h.set_cksum();
    out.append(&h, content).unwrap();
}

/// Tar bundles, plain and gzip'd. First byte mod 3: 0, the rest is the bundle (tar's magic put
/// in place unless it is gzip, whose compressed bytes are then what is mutated; read under tight
/// limits when bit 2 is set); 1, the same gzip'd here; 2, a bundle
/// built here from [`bundle_entries`] (regular, gzip'd, symlink, folder), gzip'd when bit 2 is
/// set, whose entries must read as their bytes would alone.
pub fn tar(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let options = read_options(flags & 4 == 4);
    if flags % 3 < 2 {
        let mut file = rest.to_vec();
        if flags % 3 == 0 && file.starts_with(&[0x1f, 0x8b]) {
            return drop(read_bytes(&file, &options));
        }
        file.resize(file.len().max(512), 0);
        file[257..262].copy_from_slice(b"ustar");
        if flags % 3 == 1 {
            file = gzip_whole(&file);
        }
        read_bytes(&file, &options);
        return;
    }
    let mut out = tar::Builder::new(Vec::new());
    let mut entries = Vec::new();
    for (kind, name, content) in bundle_entries(rest, 4) {
        let entry = match kind {
            0 => Entry::File(name, content.to_vec()),
            1 => Entry::File(name, gzip_whole(content)),
            2 => Entry::Link(name),
            _ => Entry::Folder,
        };
        match &entry {
            Entry::File(_, bytes) => append_tar(&mut out, name, tar::EntryType::Regular, bytes),
            Entry::Link(_) => append_tar(&mut out, name, tar::EntryType::Symlink, b""),
            Entry::Folder => append_tar(&mut out, &format!("{name}/"), tar::EntryType::Directory, b""),
        }
        entries.push(entry);
    }
    let mut file = out.into_inner().unwrap();
    if flags & 4 == 4 {
        file = gzip_whole(&file);
    }
    if entries.is_empty() {
        return drop(read_bytes(&file, &ReadOptions::default()));
    }
    check_bundle(&read_bytes(&file, &ReadOptions::default()), &entries);
}

/// Zip bundles. First byte even: the rest is the bundle (zip's magic put in front when missing),
/// under tight limits when bit 1 is set. Odd: a bundle built here from [`bundle_entries`]
/// (stored, deflated, symlink, folder), whose entries must read as their bytes would alone.
pub fn zip(data: &[u8]) {
    use zip::write::SimpleFileOptions;
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    if flags & 1 == 0 {
        let mut file = rest.to_vec();
        if !file.starts_with(b"PK\x03\x04") && !file.starts_with(b"PK\x05\x06") {
            file.splice(0..0, *b"PK\x03\x04");
        }
        let options = read_options(flags & 2 == 2);
        read_bytes(&file, &options);
        return;
    }
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut entries = Vec::new();
    for (kind, name, content) in bundle_entries(rest, 4) {
        // The writer refuses a name it already holds: such an entry is not in the bundle.
        let written = match kind {
            0 | 1 => out
                .start_file(name, if kind == 0 { stored } else { deflated })
                .and_then(|()| Ok(out.write_all(content)?))
                .map(|()| Entry::File(name, content.to_vec())),
            2 => out.add_symlink(name, "a.log", stored).map(|()| Entry::Link(name)),
            _ => out.add_directory(name, stored).map(|()| Entry::Folder),
        };
        if let Ok(entry) = written {
            entries.push(entry);
        }
    }
    let file = out.finish().unwrap().into_inner();
    let sink = read_bytes(&file, &ReadOptions::default());
    if !entries.is_empty() {
        check_bundle(&sink, &entries);
    }
}

/// CloudWatch and Firehose JSON. First byte even: the rest is the file, `[` put in front unless
/// it starts like JSON or gzip; tight limits when bit 1 is set. Odd: the rest's lines (blank
/// ones, carriage returns and leading byte-order marks left out) become log events in the shape
/// bits 1-3 pick, the file gzip'd when bit 4 is set; their records, rejects and line numbers must
/// be those of the same lines read as text.
pub fn cloudwatch_json(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    if flags & 1 == 0 {
        let mut file = rest.to_vec();
        let first = file.iter().find(|b| !b.is_ascii_whitespace());
        if !matches!(first, Some(b'{' | b'[')) && !file.starts_with(&[0x1f, 0x8b]) {
            file.insert(0, b'[');
        }
        let options = read_options(flags & 2 == 2);
        read_bytes(&file, &options);
        return;
    }
    let text = String::from_utf8_lossy(rest).replace('\r', "");
    let messages: Vec<&str> = text
        .split('\n')
        .map(|m| m.trim_start_matches('\u{feff}'))
        .filter(|m| !m.bytes().all(|b| b.is_ascii_whitespace()) && !m.starts_with("CWL CONTROL MESSAGE"))
        .collect();
    let document = cloudwatch_document(&messages, flags >> 1 & 7);
    let file = if flags & 16 == 16 {
        gzip_whole(&document)
    } else {
        document.clone()
    };
    let sink = read_bytes(&file, &ReadOptions::default());
    let [r] = sink.reports.as_slice() else {
        panic!("one JSON file gave {} sources", sink.reports.len());
    };
    assert!(r.error.is_none(), "JSON written here did not read: {r}");
    // No Firehose records, no JSON: an empty object reads as empty text.
    if !document.is_empty() {
        assert_eq!(r.form, Form::Json, "{r}");
    }
    let lines: String = messages.iter().flat_map(|m| [m, "\n"]).collect();
    if let Some((want, _)) = plain_text(lines.as_bytes()) {
        assert_eq!(reading(&sink, r), want, "log events vs the same lines as text");
    }
}

/// `messages` as one of the JSON documents CloudWatch Logs, its subscriptions and Firehose write.
fn cloudwatch_document(messages: &[&str], shape: u8) -> Vec<u8> {
    use serde_json::json;
    let events = |ms: &[&str]| -> Vec<serde_json::Value> {
        ms.iter()
            .enumerate()
            .map(|(i, m)| json!({"id": i.to_string(), "timestamp": 1_700_000_000_000u64 + i as u64, "message": m}))
            .collect()
    };
    let subscription = |ms: &[&str]| {
        json!({
            "messageType": "DATA_MESSAGE",
            "owner": "123456789010",
            "logGroup": "vpc-flow-logs",
            "logStream": "eni-1-all",
            "subscriptionFilters": ["to-firehose"],
            "logEvents": events(ms),
        })
    };
    // Lambda and Firehose transform events carry subscription payloads gzip'd, then base64.
    let payload = |ms: &[&str]| {
        base64::engine::general_purpose::STANDARD.encode(gzip_whole(subscription(ms).to_string().as_bytes()))
    };
    let document = match shape {
        0 => json!({"events": events(messages), "nextForwardToken": "f/1", "nextBackwardToken": "b/1"}),
        1 => json!({
            "events": events(messages),
            "searchedLogStreams": [{"logStreamName": "eni-1-all", "searchedCompletely": true}],
        }),
        2 => subscription(messages),
        3 => json!({"awslogs": {"data": payload(messages)}}),
        4 | 5 => {
            let separator = if shape == 4 { "" } else { "\n" };
            let records: Vec<String> = messages.iter().map(|m| json!({ "message": m }).to_string()).collect();
            return records.join(separator).into_bytes();
        }
        6 => {
            let records: Vec<serde_json::Value> = messages
                .chunks(3)
                .enumerate()
                .map(|(i, ms)| json!({"recordId": i.to_string(), "approximateArrivalTimestamp": 1_700_000_000_000u64, "data": payload(ms)}))
                .collect();
            json!({"invocationId": "fuzz", "deliveryStreamArn": "arn:aws:firehose:x", "records": records})
        }
        _ => {
            let pages: Vec<serde_json::Value> = messages.chunks(2).map(|ms| json!({ "events": events(ms) })).collect();
            json!(pages)
        }
    };
    serde_json::to_vec_pretty(&document).unwrap()
}

/// A `--log-format` string: parses or fails cleanly, and what parses prints back as itself.
pub fn log_format(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match LogFormat::parse(text) {
        Ok(f) => {
            assert!(!f.is_empty());
            let again = LogFormat::parse(&f.to_string()).expect("a printed format parses");
            assert_eq!(again, f);
            let known = f
                .columns()
                .iter()
                .filter(|c| matches!(c, FormatField::Known(_)))
                .count();
            assert_eq!(f.known_fields().len(), known);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Queries

/// Records to evaluate bound filters on: every kind of value, nulls, and a TGW record.
fn sample_records() -> Vec<FlowRecord> {
    let text = format!(
        "{}\n\
         2 123456789010 eni-1 10.0.0.1 2001:db8::7 443 49152 6 10 5000 1700000000 1700000060 ACCEPT OK\n\
         2 123456789010 eni-2 - - - - - - - 1700000000 1700000060 - NODATA\n\
         {}\n\
         6 TransitGatewayAttachment 123456789010 tgw-1 tgw-attach-1 123456789010 210987654321 vpc-1 vpc-2 \
         subnet-1 subnet-2 eni-1 eni-2 use1-az1 use1-az2 tgw-attach-2 10.1.2.3 10.2.3.4 44321 443 6 10 5200 \
         1700000000 1700000060 OK IPv4 0 0 0 0 18 us-east-1 ingress - -\n",
        input::DEFAULT_V2,
        input::DEFAULT_TGW
    );
    read_bytes(text.as_bytes(), &ReadOptions::default())
        .records
        .into_iter()
        .map(|(r, _, _)| r)
        .collect()
}

/// Query text up to the first zero byte; the rest is what every `@file` holds.
pub fn query_parser(data: &[u8]) {
    let (text, file) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let file = String::from_utf8_lossy(file).into_owned();
    let parsed = match query::parse(text, &|_| Ok(file.clone())) {
        Ok(q) => q,
        Err(e) => return drop(e.to_string()),
    };
    let bound = match query::bind(&parsed, text) {
        Ok(b) => b,
        Err(e) => return drop(e.to_string()),
    };
    let _ = bound.needed_fields();
    let _ = bound.row_columns();
    for r in sample_records() {
        let _ = bound.filter.matches(&r);
        for stage in &bound.records {
            if let query::RecordStage::Filter(f) = stage {
                let _ = f.matches(&r);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Segments

/// Rewrites every checksum of a segment (column frames, pages, sections, directory, footer:
/// `index-format.md`, "Segment files") so that mutated bytes get past the checksums to the decoders
/// behind them. Offsets that do not fit are left alone: opening then reports them.
pub fn fix_checksums(b: &mut [u8]) {
    const HEADER: usize = 16;
    const FOOTER: usize = 40;
    const ENTRY: usize = 32;
    const COLUMN_REF: usize = 24;
    const PAGE: usize = 4096;
    if b.len() < HEADER + FOOTER {
        return;
    }
    let crc = crc32fast::hash(&b[..12]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    let footer = b.len() - FOOTER;
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let dir = u64_at(b, footer) as usize;
    let count = u32_at(b, footer + 8) as usize;
    if dir <= footer && count.checked_mul(ENTRY) == Some(footer - dir) {
        // Sections as (kind, param, byte range), for those inside the file.
        let sections: Vec<(u32, u32, Option<std::ops::Range<usize>>)> = (dir..footer)
            .step_by(ENTRY)
            .map(|e| {
                let (offset, length) = (u64_at(b, e + 8), u64_at(b, e + 16));
                let range = offset
                    .checked_add(length)
                    .filter(|end| *end <= b.len() as u64)
                    .map(|end| offset as usize..end as usize);
                (u32_at(b, e), u32_at(b, e + 4), range)
            })
            .collect();
        let range_of = |kind: u32| sections.iter().find(|s| s.0 == kind).and_then(|s| s.2.clone());
        // Column frames first (their checksums sit in the column index), then pages, then
        // whole sections.
        if let (Some(index), Some(data)) = (range_of(3), range_of(4)) {
            for r in index.clone().step_by(COLUMN_REF) {
                if r + COLUMN_REF > index.end {
                    break;
                }
                let (offset, length) = (u64_at(b, r), u32_at(b, r + 8) as u64);
                let frame = (data.start as u64)
                    .checked_add(offset)
                    .and_then(|start| Some(start..start.checked_add(length)?))
                    .filter(|f| f.end <= data.end as u64);
                if let Some(f) = frame {
                    let crc = crc32fast::hash(&b[f.start as usize..f.end as usize]);
                    b[r + 16..r + 20].copy_from_slice(&crc.to_le_bytes());
                }
            }
        }
        for (kind, param, range) in &sections {
            let covered = sections.get(*param as usize).and_then(|s| s.2.clone());
            if let (7, Some(pages), Some(covered)) = (kind, range, covered) {
                if pages.len() == covered.len().div_ceil(PAGE) * 4 {
                    let crcs: Vec<u8> = b[covered]
                        .chunks(PAGE)
                        .flat_map(|p| crc32fast::hash(p).to_le_bytes())
                        .collect();
                    b[pages.clone()].copy_from_slice(&crcs);
                }
            }
        }
        for (e, (_, _, range)) in (dir..footer).step_by(ENTRY).zip(&sections) {
            if let Some(range) = range {
                let crc = crc32fast::hash(&b[range.clone()]);
                b[e + 24..e + 28].copy_from_slice(&crc.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&b[dir..footer]);
        b[footer + 12..footer + 16].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32fast::hash(&b[footer..footer + 24]);
    b[footer + 24..footer + 28].copy_from_slice(&crc.to_le_bytes());
}

/// Filters that touch postings, zone maps and every kind of dictionary.
const PROBE_QUERIES: &[&str] = &[
    "srcaddr = 10.0.0.0/8 or dstport = 443",
    "interface_id = eni-1 and start >= 1700000000",
    "action = REJECT or log_status = NODATA",
    "not (protocol = tcp) and bytes > 100",
    "addr = 2001:db8::/32",
    "vpc_id like /a/",
];

/// Everything a search, `verify`, `seen` and `show` do with a segment, on a segment's bytes.
/// The first byte's low bit says whether to repair the checksums first.
pub fn segment(data: &[u8]) {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let mut bytes = bytes.to_vec();
    if flags & 1 == 1 {
        fix_checksums(&mut bytes);
    }
    let Ok(seg) = Segment::from_bytes(Path::new("fuzz.fdx"), Box::new(bytes)) else {
        return;
    };
    let _ = seg.verify();
    let _ = seg.section_sizes();
    let _ = seg.skipdata();
    if let Ok(Some(runs)) = seg.slot_runs() {
        let _ = runs.all();
        let _ = runs.of_interface(0);
    }
    for column in Column::all() {
        if let Ok(Some(dict)) = seg.dictionary(column) {
            let _ = dict.verify();
            for term in 0..dict.len().min(64) {
                let _ = dict.term(term);
                let _ = seg.posting(column, &dict, term);
            }
            // Sixteen terms or more take the dense union, which reads stored postings itself.
            let terms: Vec<usize> = (0..dict.len().min(64)).collect();
            let _ = seg.postings_union(column, &dict, &terms);
        }
    }
    let dicts = seg.dictionaries();
    for (block, b) in seg.blocks().unwrap_or_default().iter().enumerate().take(8) {
        let _ = seg.read_records(block);
        let offsets: Vec<u32> = (0..b.record_count.min(4096)).collect();
        let _ = seg.read_lines_at(block, &offsets, &dicts);
        for column in seg.columns().iter().take(8) {
            let _ = seg.read_column(block, *column);
        }
    }
    for text in PROBE_QUERIES {
        let parsed = query::parse(text, &|_| Ok(String::new())).unwrap();
        let bound = query::bind(&parsed, text).unwrap();
        let _ = flowdex::exec::candidates(&seg, &bound.filter);
    }
}

/// A sources file: looking entries up out of order, by id and all at once never panics, and
/// what `verify` accepts, single lookups return alike.
pub fn sources(data: &[u8]) {
    let Ok(sources) = Sources::parse(data) else {
        return;
    };
    let mut cache = ChunkCache::default();
    let looked_up: Vec<_> = (0..sources.len().min(300))
        .rev()
        .map(|i| sources.entry(i, &mut cache).ok())
        .collect();
    let _ = sources.find(3);
    if let Ok(all) = sources.verify() {
        for (entry, i) in looked_up.iter().zip((0..all.len().min(300)).rev()) {
            assert_eq!(entry.as_ref(), Some(&all[i]), "entry {i}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Differential: index answer = linear scan

/// Draws choices from the fuzzer's bytes; zeros once they run out, so every input is valid.
pub struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }
    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }
    fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }
}

/// Not `::ffff:a.b.c.d`: it reads back as the IPv4 address (`index-format.md`, "Known limits").
const IPS: &[&str] = &[
    "10.0.0.1",
    "10.0.0.2",
    "10.0.1.5",
    "10.255.255.255",
    "192.168.1.1",
    "172.31.16.139",
    "0.0.0.0",
    "255.255.255.255",
    "2001:db8::1",
    "2001:db8::2",
    "2001:DB8::1",
    "fe80::1",
    "::",
];
const NUMBERS: &[&str] = &["0", "1", "2", "6", "17", "22", "80", "443", "3389", "65535", "007"];
const TIMES: &[&str] = &[
    "1700000000",
    "1700000060",
    "1700003600",
    "1700086400",
    "0",
    "1700000000123",
];
const TEXTS: &[&str] = &[
    "eni-1",
    "eni-2",
    "eni-0aaaaaaaaaaaaaaaa",
    "vpc-1",
    "i-1",
    "us-east-1",
    "123456789010",
    "a",
    "S3",
];

/// The enum words AWS writes for each enum field (`index-format.md`, "Columns").
fn enum_words(field: Field) -> &'static [&'static str] {
    match field {
        Field::Action => &["ACCEPT", "REJECT"],
        Field::LogStatus => &["OK", "NODATA", "SKIPDATA"],
        Field::FlowDirection => &["ingress", "egress"],
        _ => &["IPv4", "IPv6", "EFA"],
    }
}

fn value_text(b: &mut Bytes<'_>, field: Field) -> String {
    if b.below(8) == 0 {
        return "-".to_owned();
    }
    match field.kind() {
        FieldKind::Ip => b.pick(IPS).to_string(),
        FieldKind::UInt if matches!(field, Field::Start | Field::End) => b.pick(TIMES).to_string(),
        FieldKind::UInt => b.pick(NUMBERS).to_string(),
        FieldKind::Text => b.pick(TEXTS).to_string(),
        FieldKind::Enum => b.pick(enum_words(field)).to_string(),
    }
}

/// A format whose first position is a known field (so a header line announces it), with an
/// unknown field now and then.
fn random_format(b: &mut Bytes<'_>) -> LogFormat {
    match b.below(5) {
        0 => LogFormat::default_v2(),
        1 => LogFormat::vpc_up_to_version(5),
        2 => LogFormat::default_tgw(),
        _ => {
            let mut names: Vec<&str> = Vec::new();
            for _ in 0..1 + b.below(10) {
                let f = *b.pick(Field::ALL);
                if !names.contains(&f.name()) {
                    names.push(f.name());
                }
            }
            if b.below(4) == 0 {
                names.push("future-field");
            }
            LogFormat::from_names(names).expect("distinct field names")
        }
    }
}

/// A filter's text over values from the same pools the records draw from, so it matches some.
fn random_filter(b: &mut Bytes<'_>, depth: u32) -> String {
    if depth > 0 {
        match b.below(6) {
            0 => {
                return format!(
                    "({}) and ({})",
                    random_filter(b, depth - 1),
                    random_filter(b, depth - 1)
                )
            }
            1 => return format!("({}) or ({})", random_filter(b, depth - 1), random_filter(b, depth - 1)),
            2 => return format!("not ({})", random_filter(b, depth - 1)),
            _ => {}
        }
    }
    let field = *b.pick(Field::ALL);
    let name = field.name();
    match (field.kind(), b.below(6)) {
        (FieldKind::Ip, 0) => format!("{name} = 10.0.{}.0/{}", b.below(2), b.pick(&[8, 16, 24, 31, 32])),
        (FieldKind::Ip, 1) => format!("addr = {}", b.pick(IPS)),
        (FieldKind::Ip, 2) => format!("{name} = 2001:db8::/{}", b.pick(&[32, 64, 127, 128])),
        (FieldKind::UInt, 0) if matches!(field, Field::Start | Field::End) => {
            format!("time = {}", b.pick(&["2023-11-14", "2023-11-14T22:13:20Z", "2023-11"]))
        }
        (FieldKind::UInt, 1) => format!("port = {}", b.pick(NUMBERS)),
        (FieldKind::UInt, 2) => {
            let op = b.pick(&["<", "<=", ">", ">=", "!="]);
            let v = if matches!(field, Field::Start | Field::End) {
                b.pick(TIMES)
            } else {
                b.pick(NUMBERS)
            };
            format!("{name} {op} {v}")
        }
        (FieldKind::UInt, 3) if field == Field::TcpFlags => "tcp_flags has SYN".to_owned(),
        (FieldKind::Text, 0) => format!("{name} like /{}/", b.pick(&["^eni-", "1$", "a", "."])),
        (FieldKind::Text, 1) => format!("{name} in (\"{}\", \"{}\")", b.pick(TEXTS), b.pick(TEXTS)),
        (FieldKind::Enum, _) => format!("{name} = {}", b.pick(enum_words(field))),
        (_, 4) => format!("{name} != {}", value_text(b, field).replace('-', "0")),
        (_, _) => {
            let v = value_text(b, field);
            if v == "-" || field.kind() == FieldKind::Text {
                format!("{name} = \"{}\"", v.trim_matches('-'))
            } else {
                format!("{name} = {v}")
            }
        }
    }
}

/// Random records under random formats are written as an S3 text source, read back, encoded as
/// one segment and opened; a random filter is then answered from the segment's postings and zone
/// maps (`exec::candidates`) and by a linear scan (`Filter::matches`) over the records the reader
/// gave. Candidates must include every match (and be the matches when they claim to be exact);
/// the segment must verify and give back every record and original line.
pub fn differential(data: &[u8]) {
    let mut b = Bytes(data);
    let mut text = Vec::new();
    for _ in 0..1 + b.below(3) {
        let format = random_format(&mut b);
        text.extend_from_slice(format.to_string().as_bytes());
        text.push(b'\n');
        for _ in 0..1 + b.below(40) {
            let values: Vec<String> = format
                .columns()
                .iter()
                .map(|c| match c {
                    FormatField::Known(f) => value_text(&mut b, *f),
                    FormatField::Unknown(_) => b.pick(&["x", "-", "y z"]).to_string(),
                })
                .collect();
            text.extend_from_slice(values.join(if b.below(16) == 0 { "  " } else { " " }).as_bytes());
            text.extend_from_slice(if b.below(16) == 0 { b"\r\n" } else { b"\n" });
        }
    }
    // Past one block of 1024 records, zone maps and block boundaries come into play.
    if b.below(4) == 0 {
        let once = text.clone();
        while text.len() < 1100 * once.len() / once.iter().filter(|c| **c == b'\n').count() {
            text.extend_from_slice(&once);
        }
    }
    let filter_text = random_filter(&mut b, 3);

    let read = read_bytes(&text, &ReadOptions::default());
    if read.records.is_empty() {
        return;
    }
    let mut builder = SegmentBuilder::new();
    for (record, raw, format) in &read.records {
        builder.push(record, raw, format.columns());
    }
    let seg = Segment::from_bytes(Path::new("fuzz.fdx"), Box::new(builder.to_bytes(0))).expect("a built segment opens");
    seg.verify().expect("a built segment verifies");

    // Every record and line comes back; ids are positions in the segment.
    let by_line: BTreeMap<u64, &(FlowRecord, Vec<u8>, LogFormat)> =
        read.records.iter().map(|e| (e.0.provenance.line, e)).collect();
    let mut id_of_line = BTreeMap::new();
    let dicts = seg.dictionaries();
    for (block, entry) in seg.blocks().expect("a built segment has blocks").iter().enumerate() {
        let offsets: Vec<u32> = (0..entry.record_count).collect();
        for (i, l) in seg
            .read_lines_at(block, &offsets, &dicts)
            .expect("lines decode")
            .into_iter()
            .enumerate()
        {
            let (record, raw, _) = by_line[&l.record.provenance.line];
            assert_eq!(&l.record, record, "record read back from the segment");
            assert_eq!(&l.line, raw, "original line read back from the segment");
            id_of_line.insert(l.record.provenance.line, entry.first_record + i as u32);
        }
    }
    assert_eq!(id_of_line.len(), read.records.len(), "records missing from the segment");

    let parsed = query::parse(&filter_text, &|_| Ok(String::new()));
    let Ok(bound) = parsed.and_then(|q| query::bind(&q, &filter_text)) else {
        return;
    };
    let want: BTreeSet<u32> = read
        .records
        .iter()
        .filter(|(r, _, _)| bound.filter.matches(r))
        .map(|(r, _, _)| id_of_line[&r.provenance.line])
        .collect();
    let c = flowdex::exec::candidates(&seg, &bound.filter).expect("candidates");
    let got: BTreeSet<u32> = c.ids.iter().collect();
    let missing: Vec<_> = want.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "{filter_text}: matching records {missing:?} are not candidates"
    );
    if c.exact {
        assert_eq!(got, want, "{filter_text}: exact candidates differ from the matches");
    }
}
