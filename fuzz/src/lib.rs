//! Fuzz harnesses for flowdex: one function per fuzz target, each taking the fuzzer's bytes and
//! panicking only when flowdex breaks an invariant (a panic inside flowdex, counts that do not
//! reconcile, an index answer that differs from a linear scan).
//!
//! The functions live in a library, not in the targets, so that `tests/fuzz_regressions.rs`
//! replays the committed seeds and crash reproducers through exactly the same code on stable
//! (it includes this file with `#[path]`). Hence std and flowdex only: no `arbitrary`, which the
//! main crate does not depend on; structure is drawn from the bytes by [`Bytes`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use flowdex::build::SegmentBuilder;
use flowdex::format::schema::Column;
use flowdex::input::{self, InputFile, LogFormat, ReadOptions, Rejection, SourceMeta, SourceReport};
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

/// Reads `bytes` as one input file, as `flowdex cat` would, and checks that every source's
/// counts reconcile and match what the sink was told.
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
    for r in &sink.reports {
        assert_eq!(
            r.lines,
            r.headers + r.records + r.rejected,
            "counts must reconcile: {r}"
        );
        let (records, rejects) = sink.seen.get(&r.id).copied().unwrap_or_default();
        assert_eq!((r.records, r.rejected), (records, rejects), "report vs sink: {r}");
    }
    sink
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

/// Any bytes as an input file: gzip, tar, zip, JSON or text, told apart by the readers.
pub fn container(data: &[u8]) {
    read_bytes(data, &ReadOptions::default());
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
    for column in Column::all() {
        if let Ok(Some(dict)) = seg.dictionary(column) {
            let _ = dict.verify();
            for term in 0..dict.len().min(64) {
                let _ = dict.term(term);
                let _ = seg.posting(column, &dict, term);
            }
        }
    }
    for (block, b) in seg.blocks().iter().enumerate().take(8) {
        let _ = seg.read_records(block);
        let offsets: Vec<u32> = (0..b.record_count.min(4096)).collect();
        let _ = seg.read_lines_at(block, &offsets);
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
    let seg = Segment::from_bytes(Path::new("fuzz.fdx"), Box::new(builder.encode(0))).expect("a built segment opens");
    seg.verify().expect("a built segment verifies");

    // Every record and line comes back; ids are positions in the segment.
    let by_line: BTreeMap<u64, &(FlowRecord, Vec<u8>, LogFormat)> =
        read.records.iter().map(|e| (e.0.provenance.line, e)).collect();
    let mut id_of_line = BTreeMap::new();
    for (block, entry) in seg.blocks().iter().enumerate() {
        let offsets: Vec<u32> = (0..entry.record_count).collect();
        for (i, l) in seg
            .read_lines_at(block, &offsets)
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
