//! Accumulating records column by column, then writing them as one immutable segment file:
//! records sorted by day, interface and time, cut into blocks of compressed columns with zone
//! maps, every text and address field dictionary-coded, and a roaring posting per distinct value
//! of the indexed fields. The byte layout is `format`'s; this module decides what goes into it.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::format::dictionary::{self, ip_bytes, PostingRef, Term, TermKind};
use crate::format::manifest::SegmentMeta;
use crate::format::pages;
use crate::format::posting;
use crate::format::schema::{
    Column, BLOCK_RECORDS, COLUMN_COUNT, FORMAT_KNOWN, FORMAT_UNKNOWN, ORIGINAL_PREFIX, ORIGINAL_WHOLE, POSTING_FIELDS,
};
use crate::format::skipdata::{self, SkipRecord};
use crate::format::slots::{self, RunsBuilder, SubjectRuns};
use crate::format::{
    column, crc32, encode_block_entry, encode_directory, encode_footer, encode_header, BlockEntry, Codec, ColumnRef,
    DirectoryEntry, Footer, Range, SectionKind, COLUMN_REF_SIZE, NO_PARAM, SECTION_ALIGN,
};
use crate::input::FieldSpans;
use crate::record::{
    covered_span, Action, Field, FieldKind, FieldSet, FlowDirection, FlowRecord, FormatField, LogStatus, TrafficType,
};

/// Values of one column as accumulated, in arrival order, in the narrowest integer width that
/// holds them so far (most columns are ports, codes and flags): memory per record decides how
/// many records a segment gets, and bigger segments repeat fewer dictionary terms.
#[derive(Default)]
struct ColumnBuf {
    values: Widths,
    /// Bit `i` set: value `i` is null.
    nulls: Vec<u64>,
    len: usize,
}

enum Widths {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
}

impl Default for Widths {
    fn default() -> Widths {
        Widths::U8(Vec::new())
    }
}

impl Widths {
    fn push(&mut self, v: u64) {
        // Widen when a value does not fit; values already held keep their meaning.
        let needed = match v {
            0..=0xff => 1,
            0x100..=0xffff => 2,
            0x1_0000..=0xffff_ffff => 4,
            _ => 8,
        };
        if needed > self.width() {
            let all: Vec<u64> = (0..self.len()).map(|i| self.get(i)).collect();
            *self = match needed {
                2 => Widths::U16(all.iter().map(|&x| x as u16).collect()),
                4 => Widths::U32(all.iter().map(|&x| x as u32).collect()),
                _ => Widths::U64(all),
            };
        }
        match self {
            Widths::U8(x) => x.push(v as u8),
            Widths::U16(x) => x.push(v as u16),
            Widths::U32(x) => x.push(v as u32),
            Widths::U64(x) => x.push(v),
        }
    }

    fn width(&self) -> usize {
        match self {
            Widths::U8(_) => 1,
            Widths::U16(_) => 2,
            Widths::U32(_) => 4,
            Widths::U64(_) => 8,
        }
    }

    fn len(&self) -> usize {
        match self {
            Widths::U8(x) => x.len(),
            Widths::U16(x) => x.len(),
            Widths::U32(x) => x.len(),
            Widths::U64(x) => x.len(),
        }
    }

    /// Bytes the values take: their count, not the vector's capacity, which the allocator
    /// reserves but the process does not touch until it pushes there.
    fn bytes(&self) -> usize {
        self.len() * self.width()
    }

    fn get(&self, i: usize) -> u64 {
        match self {
            Widths::U8(x) => u64::from(x[i]),
            Widths::U16(x) => u64::from(x[i]),
            Widths::U32(x) => u64::from(x[i]),
            Widths::U64(x) => x[i],
        }
    }

    fn truncate(&mut self, n: usize) {
        match self {
            Widths::U8(x) => x.truncate(n),
            Widths::U16(x) => x.truncate(n),
            Widths::U32(x) => x.truncate(n),
            Widths::U64(x) => x.truncate(n),
        }
    }
}

impl ColumnBuf {
    fn nulls(len: usize) -> ColumnBuf {
        let mut c = ColumnBuf::default();
        for _ in 0..len {
            c.push(None);
        }
        c
    }

    fn push(&mut self, v: Option<u64>) {
        if self.len.is_multiple_of(64) {
            self.nulls.push(0);
        }
        if v.is_none() {
            self.nulls[self.len / 64] |= 1 << (self.len % 64);
        }
        self.values.push(v.unwrap_or(0));
        self.len += 1;
    }

    fn is_null(&self, i: usize) -> bool {
        self.nulls[i / 64] & (1 << (i % 64)) != 0
    }

    fn get(&self, i: usize) -> Option<u64> {
        (!self.is_null(i)).then(|| self.values.get(i))
    }

    fn truncate(&mut self, n: usize) {
        self.values.truncate(n);
        self.nulls.truncate(n.div_ceil(64));
        if !n.is_multiple_of(64) {
            self.nulls[n / 64] &= (1u64 << (n % 64)) - 1;
        }
        self.len = n;
    }

    fn memory(&self) -> usize {
        self.values.bytes() + self.nulls.len() * 8
    }
}

/// Distinct values of an address or text field, numbered in arrival order.
struct Interner<K> {
    codes: HashMap<K, u32>,
    terms: Vec<K>,
    bytes: usize,
    /// The last code handed out: neighbouring records often repeat a value (same ENI, VPC,
    /// account), and comparing is cheaper than hashing.
    last: Option<u32>,
}

impl<K> Default for Interner<K> {
    fn default() -> Self {
        Interner {
            codes: HashMap::default(),
            terms: Vec::new(),
            bytes: 0,
            last: None,
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Interner<K> {
    fn code(&mut self, key: &K, size: usize) -> u32 {
        if let Some(c) = self.codes.get(key) {
            self.last = Some(*c);
            return *c;
        }
        let c = self.terms.len() as u32;
        self.last = Some(c);
        self.codes.insert(key.clone(), c);
        self.terms.push(key.clone());
        self.bytes += size + 48;
        c
    }
}

/// Records of one segment being accumulated.
#[derive(Default)]
pub struct SegmentBuilder {
    len: usize,
    columns: Vec<Option<ColumnBuf>>,
    /// One interner for all address fields: `pkt-srcaddr` usually equals `srcaddr`, and the
    /// record's addresses interned so far are reused without a second lookup.
    ips: Interner<IpAddr>,
    record_ips: Vec<(IpAddr, u32)>,
    texts: HashMap<Field, Interner<Box<str>>>,
    extras: Interner<Box<[u8]>>,
    formats: Vec<Arc<[FormatField]>>,
    last_format: Option<u32>,
    /// Original lines of the records whose line is not what `FlowRecord::write_line` writes:
    /// (record number, start in `original_bytes`), in record order.
    originals: Vec<(u32, usize)>,
    original_bytes: Vec<u8>,
    /// Scratch for the written form of the current record's line, and for its fields.
    written: Vec<u8>,
    spans: FieldSpans,
    /// Fields that have a column, as a set and in creation order.
    active: FieldSet,
    active_list: Vec<Field>,
}

/// A point to roll back to (a source turned out to be a duplicate).
#[derive(Clone, Copy, Debug)]
pub struct Mark(usize);

impl SegmentBuilder {
    pub fn new() -> SegmentBuilder {
        SegmentBuilder {
            columns: (0..COLUMN_COUNT).map(|_| None).collect(),
            ..SegmentBuilder::default()
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Approximate heap bytes held, plus what writing the segment will take (sort keys,
    /// gathered columns, posting terms and ids), for the build's memory budget.
    pub fn memory(&self) -> usize {
        self.held_memory() + self.len * FLUSH_BYTES_PER_RECORD
    }

    fn held_memory(&self) -> usize {
        let cols: usize = self.columns.iter().flatten().map(ColumnBuf::memory).sum();
        let ips = self.ips.bytes;
        let texts: usize = self.texts.values().map(|i| i.bytes).sum();
        cols + ips + texts + self.extras.bytes + self.originals.len() * 16 + self.original_bytes.len()
    }

    pub fn mark(&self) -> Mark {
        Mark(self.len)
    }

    /// Forgets every record pushed since `mark`. Terms they introduced stay interned but are
    /// not written: dictionaries hold only terms some record uses.
    pub fn rollback(&mut self, mark: Mark) {
        for c in self.columns.iter_mut().flatten() {
            c.truncate(mark.0);
        }
        let kept = self
            .originals
            .partition_point(|(record, _)| (*record as usize) < mark.0);
        if let Some(&(_, start)) = self.originals.get(kept) {
            self.original_bytes.truncate(start);
        }
        self.originals.truncate(kept);
        self.len = mark.0;
    }

    /// Adds a record read from `line` under `format` (the record's fields in line order).
    pub fn push(&mut self, record: &FlowRecord, line: &[u8], format: &[FormatField]) {
        self.record_ips.clear();
        self.keep_original_line(record, line, format);
        let format = self.format_code(format);
        self.column(Column::Format).push(Some(u64::from(format)));
        self.column(Column::Source)
            .push(Some(u64::from(record.provenance.source)));
        self.column(Column::Line).push(Some(record.provenance.line));
        let extras = (!record.extra.is_empty()).then(|| {
            let mut term = Vec::new();
            for e in &record.extra {
                match &e.value {
                    None => term.push(0),
                    Some(v) => {
                        term.push(1);
                        term.extend_from_slice(&(v.len() as u32).to_le_bytes());
                        term.extend_from_slice(v.as_bytes());
                    }
                }
            }
            let term = term.into_boxed_slice();
            u64::from(self.extras.code(&term, term.len()))
        });
        self.column(Column::Extras).push(extras);
        // A field new to the segment gets a column (null for every earlier record); every
        // column gets a value or a null for this record.
        let new_fields = FieldSet::from_bits(record.fields.bits() & !self.active.bits());
        for field in new_fields.iter() {
            self.column(Column::Field(field));
            self.active.insert(field);
            self.active_list.push(field);
        }
        for i in 0..self.active_list.len() {
            let field = self.active_list[i];
            let value = if record.fields.contains(field) {
                self.encode_value(record, field)
            } else {
                None
            };
            self.columns[usize::from(field.id())]
                .as_mut()
                .expect("active column")
                .push(value);
        }
        self.len += 1;
    }

    fn column(&mut self, c: Column) -> &mut ColumnBuf {
        let len = self.len;
        self.columns[c.id()].get_or_insert_with(|| {
            // A column first seen now is null for every earlier record.
            ColumnBuf::nulls(len)
        })
    }

    /// Keeps `line` when the line the record's values write under `format` differs from it: as
    /// the part before the written line when only a prefix differs (CloudWatch export time
    /// stamps), else whole (`index-format.md`, "Original lines").
    fn keep_original_line(&mut self, record: &FlowRecord, line: &[u8], format: &[FormatField]) {
        if is_written_form(line, record, format, &mut self.spans) {
            return;
        }
        self.written.clear();
        record.write_line(format, &mut self.written);
        if line == self.written.as_slice() {
            return;
        }
        self.originals.push((self.len as u32, self.original_bytes.len()));
        match line.strip_suffix(self.written.as_slice()) {
            Some(prefix) => {
                self.original_bytes.push(ORIGINAL_PREFIX);
                self.original_bytes.extend_from_slice(prefix);
            }
            None => {
                self.original_bytes.push(ORIGINAL_WHOLE);
                self.original_bytes.extend_from_slice(line);
            }
        }
    }

    fn format_code(&mut self, format: &[FormatField]) -> u32 {
        if let Some(c) = self.last_format.filter(|c| *self.formats[*c as usize] == *format) {
            return c;
        }
        let code = match self.formats.iter().position(|f| **f == *format) {
            Some(p) => p as u32,
            None => {
                self.formats.push(Arc::from(format));
                (self.formats.len() - 1) as u32
            }
        };
        self.last_format = Some(code);
        code
    }

    fn encode_value(&mut self, record: &FlowRecord, field: Field) -> Option<u64> {
        match field.kind() {
            FieldKind::UInt => match record.get(field)? {
                crate::record::Value::UInt(n) => Some(n),
                _ => None,
            },
            FieldKind::Enum => enum_code(record, field),
            FieldKind::Ip => {
                let ip = match record.get(field)? {
                    crate::record::Value::Ip(ip) => ip,
                    _ => return None,
                };
                let code = match self.record_ips.iter().find(|(seen, _)| *seen == ip) {
                    Some((_, code)) => *code,
                    None => {
                        let code = self.ips.code(&ip, 16);
                        self.record_ips.push((ip, code));
                        code
                    }
                };
                Some(u64::from(code))
            }
            FieldKind::Text => {
                let text = match record.get(field)? {
                    crate::record::Value::Str(s) => s,
                    _ => return None,
                };
                let interner = self.texts.entry(field).or_default();
                if let Some(last) = interner.last.filter(|c| &*interner.terms[*c as usize] == text) {
                    return Some(u64::from(last));
                }
                let code = match interner.codes.get(text) {
                    Some(c) => {
                        interner.last = Some(*c);
                        *c
                    }
                    None => interner.code(&Box::from(text), text.len()),
                };
                Some(u64::from(code))
            }
        }
    }

    /// Writes the segment to `path` (fsynced), with `source_base` added to every record's
    /// source id, and returns what the manifest records of it.
    pub fn write(&self, path: &Path, file_name: &str, source_base: u32) -> io::Result<SegmentMeta> {
        let mut f = BufWriter::new(File::create(path)?);
        let (size, directory_crc) = self.encode(source_base, &mut f)?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        let start = self.columns[Column::Field(Field::Start).id()].as_ref();
        let end = self.columns[Column::Field(Field::End).id()].as_ref();
        let range = |c: Option<&ColumnBuf>, max: bool| -> Option<u64> {
            let c = c?;
            let it = (0..self.len).filter_map(|i| c.get(i));
            if max {
                it.max()
            } else {
                it.min()
            }
        };
        // The earliest and latest seconds a record covers: searches place a record whose end
        // is before its start at its start, and one with a single time at that time.
        let min_start = [range(start, false), range(end, false)].into_iter().flatten().min();
        let max_end = range(end, true).max(range(start, true));
        Ok(SegmentMeta {
            file: file_name.to_owned(),
            records: self.len as u64,
            size,
            min_start,
            max_end,
            directory_crc: Some(directory_crc),
        })
    }

    /// The segment's bytes in memory, as [`SegmentBuilder::encode`] writes them.
    pub fn to_bytes(&self, source_base: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.encode(source_base, &mut bytes)
            .expect("writing to a vector cannot fail");
        bytes
    }

    /// Writes the segment's bytes (`index-format.md`, "Segment files") to `out`, with
    /// `source_base` added to every record's source id; returns how many were written, and
    /// the CRC-32 of the section directory.
    pub fn encode<W: Write>(&self, source_base: u32, out: W) -> io::Result<(u64, u32)> {
        let n = self.len;
        let order = self.segment_order();
        let present: Vec<Column> = Column::all()
            .filter(|c| match c {
                Column::OriginalLine => !self.originals.is_empty(),
                _ => self.columns[c.id()].is_some(),
            })
            .collect();

        // Dictionaries: map each column's accumulated codes or values to sorted term numbers.
        let mut dicts: Vec<(Column, DictionaryPlan)> = Vec::new();
        for &c in &present {
            if let Some(plan) = self.plan_dictionary(c) {
                dicts.push((c, plan));
            }
        }
        let dict_of = |c: Column| dicts.iter().find(|(d, _)| *d == c).map(|(_, p)| p);
        // A twin with its base's terms numbers them alike, so its blocks, and often its
        // postings, equal the base's (index-format.md, "Twins").
        let twin_of = |c: Column| {
            let base = c.twin_base()?;
            let (plan, base_plan) = (dict_of(c)?, dict_of(base)?);
            (plan.codes == base_plan.codes).then_some(base)
        };

        let mut out = SectionWriter::new(out)?;
        out.section(SectionKind::Formats, NO_PARAM, &self.encode_formats(&present))?;
        // Column data goes out frame by frame as it is compressed: held, with the whole file,
        // it was a third of what writing a segment took (index-format.md, "Sections").
        out.begin_section(SectionKind::ColumnData)?;

        // Column by column: gather the values once in segment order, cut them into blocks,
        // encode and compress each block; build the column's postings from the same values.
        let n_blocks = n.div_ceil(BLOCK_RECORDS);
        let mut blocks: Vec<BlockEntry> = (0..n_blocks)
            .map(|b| BlockEntry {
                first_record: (b * BLOCK_RECORDS) as u32,
                record_count: (n - b * BLOCK_RECORDS).min(BLOCK_RECORDS) as u32,
                start: Range::EMPTY,
                end: Range::EMPTY,
                bytes: Range::EMPTY,
                packets: Range::EMPTY,
            })
            .collect();
        let empty = ColumnRef {
            offset: 0,
            length: 0,
            raw_length: 0,
            crc: 0,
            codec: Codec::Stored,
        };
        let mut refs = vec![empty; n_blocks * present.len()];
        let mut postings: Vec<(Column, ColumnPostings)> = Vec::new();
        let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("zstd level is valid");
        let mut planes_compressor = zstd::bulk::Compressor::new(PLANES_ZSTD_LEVEL).expect("zstd level is valid");
        let mut raw = Vec::new();
        let mut compress = |raw: &[u8], out: &mut SectionWriter<W>| -> io::Result<ColumnRef> {
            let mut compressed = compressor
                .compress(raw)
                .expect("zstd compresses into a growable buffer");
            // Byte planes at zstd's fast level, where they are no larger: they decompress more
            // than twice as fast.
            let planes = column::to_planes(raw).and_then(|planes| {
                let fast = planes_compressor
                    .compress(&planes)
                    .expect("zstd compresses into a growable buffer");
                (fast.len() <= compressed.len()).then(|| {
                    compressed = fast;
                    planes
                })
            });
            // A stored frame is read in place: zstd must save a quarter of the whole-byte
            // form, and still a tenth of the bit-packed one.
            let packed = column::pack_bits(raw);
            let stored = packed.as_deref().unwrap_or(raw);
            let (codec, bytes, decoded) =
                if compressed.len() * 4 < raw.len() * 3 && compressed.len() * 10 < stored.len() * 9 {
                    (Codec::Zstd, &compressed[..], planes.as_deref().unwrap_or(raw))
                } else {
                    (Codec::Stored, stored, stored)
                };
            Ok(ColumnRef {
                offset: out.append(bytes)?,
                length: bytes.len() as u32,
                raw_length: decoded.len() as u32,
                crc: crc32(bytes),
                codec,
            })
        };
        // Each term's time span goes into its posting reference.
        let times = |f: Field| {
            self.columns[Column::Field(f).id()]
                .is_some()
                .then(|| self.gather(Column::Field(f), &order, None))
        };
        let (starts, ends) = (times(Field::Start), times(Field::End));
        for (slot, &c) in present.iter().enumerate() {
            if c == Column::OriginalLine {
                let lines = self.originals_in_order(&order);
                for (b, block) in lines.chunks(BLOCK_RECORDS).enumerate() {
                    raw.clear();
                    column::encode_bytes(block, &mut raw);
                    refs[b * present.len() + slot] = compress(&raw, &mut out)?;
                }
                continue;
            }
            let plan = dict_of(c);
            let (mut values, nulls) = self.gather(c, &order, plan.filter(|_| c.stores_term_numbers()));
            if c == Column::Source {
                values.iter_mut().for_each(|v| *v += u64::from(source_base));
            }
            let twin = twin_of(c).map(|base| {
                let base_slot = present
                    .iter()
                    .position(|p| *p == base)
                    .expect("a base has a dictionary");
                (base_slot, self.gather(base, &order, dict_of(base)))
            });
            for (b, (vals, nls)) in values
                .chunks(BLOCK_RECORDS)
                .zip(nulls.chunks(BLOCK_RECORDS))
                .enumerate()
            {
                if let Some((base_slot, (base_values, base_nulls))) = &twin {
                    let range = b * BLOCK_RECORDS..b * BLOCK_RECORDS + vals.len();
                    if base_values[range.clone()] == *vals && base_nulls[range] == *nls {
                        // The same frame: stored once, referenced by both columns.
                        refs[b * present.len() + slot] = refs[b * present.len() + base_slot];
                        continue;
                    }
                }
                let zone = match c {
                    Column::Field(Field::Start) => Some(&mut blocks[b].start),
                    Column::Field(Field::End) => Some(&mut blocks[b].end),
                    Column::Field(Field::Bytes) => Some(&mut blocks[b].bytes),
                    Column::Field(Field::Packets) => Some(&mut blocks[b].packets),
                    _ => None,
                };
                if let Some(range) = zone {
                    vals.iter()
                        .zip(nls)
                        .filter(|(_, null)| !**null)
                        .for_each(|(v, _)| range.add(*v));
                }
                raw.clear();
                match (c, &starts) {
                    (Column::Field(Field::End), Some((start_values, start_nulls))) => {
                        let range = b * BLOCK_RECORDS..b * BLOCK_RECORDS + vals.len();
                        column::encode_minus_start(
                            vals,
                            nls,
                            &start_values[range.clone()],
                            &start_nulls[range],
                            &mut raw,
                        );
                    }
                    _ => column::encode(vals, nls, &mut raw),
                }
                refs[b * present.len() + slot] = compress(&raw, &mut out)?;
            }
            if let (Some(plan), Column::Field(f)) = (plan, c) {
                if POSTING_FIELDS.contains(&f) {
                    let spans = TimeSpans {
                        starts: starts.as_ref(),
                        ends: ends.as_ref(),
                    };
                    let built = build_postings(plan, &values, &nulls, c.stores_term_numbers(), &spans);
                    postings.push((c, built));
                }
            }
        }
        let mut block_bytes = Vec::with_capacity(n_blocks * crate::format::BLOCK_ENTRY_SIZE);
        for b in &blocks {
            encode_block_entry(b, &mut block_bytes);
        }
        let mut column_index = Vec::with_capacity(refs.len() * COLUMN_REF_SIZE);
        for r in &refs {
            r.encode(&mut column_index);
        }
        out.end_section()?;
        out.section(SectionKind::Blocks, NO_PARAM, &block_bytes)?;
        out.section(SectionKind::ColumnIndex, NO_PARAM, &column_index)?;
        let skipped = self.skipdata_records(&order, &dict_of, source_base);
        out.section(SectionKind::SkipData, NO_PARAM, &skipdata::encode(&skipped))?;
        let runs = self.slot_runs(&order, &dict_of);
        out.section(SectionKind::SlotRuns, NO_PARAM, &slots::encode(&runs))?;

        // Dictionaries, each followed by its postings for the indexed fields.
        for (c, plan) in &dicts {
            let built = postings.iter().find(|(p, _)| p == c).map(|(_, built)| built);
            let mut column_postings = built.map(|p| (Cow::Borrowed(&p.bytes[..]), Cow::Borrowed(&p.refs[..])));
            let complement_nulls = built.and_then(|p| p.complement_nulls);
            let base = c.twin_base().and_then(|base| {
                let (_, p) = postings.iter().find(|(p, _)| *p == base)?;
                Some((dict_of(base)?, &p.bytes[..], &p.refs[..]))
            });
            let mut own = None;
            if let (Some((bytes, refs)), Some(base)) = (&column_postings, base) {
                let (bytes, refs, own_terms) = share_twin_postings(plan, bytes, refs, base);
                column_postings = Some((Cow::Owned(bytes), Cow::Owned(refs)));
                own = Some(own_terms);
            }
            let mut dict = Vec::new();
            match (&column_postings, own, twin_of(*c)) {
                (Some((_, refs)), Some(own), Some(_)) => {
                    let own_refs: Vec<PostingRef> =
                        refs.iter().zip(&own).filter(|(_, o)| **o).map(|(r, _)| *r).collect();
                    dictionary::encode_twin(plan.kind, &own, &own_refs, &mut dict);
                }
                _ => {
                    let terms = plan.terms(self, *c);
                    dictionary::encode(
                        plan.kind,
                        &terms,
                        column_postings.as_ref().map(|(_, r)| &r[..]),
                        complement_nulls,
                        &mut dict,
                    );
                }
            }
            out.section(SectionKind::Dictionary, c.id() as u32, &dict)?;
            if let Some((bytes, _)) = &column_postings {
                out.section(SectionKind::Postings, c.id() as u32, bytes)?;
            }
        }
        out.finish(n as u64)
    }

    /// The SKIPDATA records that have both times, in segment order, with their values as the
    /// columns store them (`index-format.md`, "SKIPDATA section").
    fn skipdata_records<'p>(
        &self,
        order: &[u32],
        dict_of: &dyn Fn(Column) -> Option<&'p DictionaryPlan>,
        source_base: u32,
    ) -> Vec<SkipRecord> {
        let field = |f: Field| self.columns[Column::Field(f).id()].as_ref();
        let (Some(status), Some(start), Some(end)) = (field(Field::LogStatus), field(Field::Start), field(Field::End))
        else {
            return Vec::new();
        };
        let source = self.columns[Column::Source.id()]
            .as_ref()
            .expect("every record has a source");
        // Enum columns hold the value's position in `LogStatus::ALL`, its declaration order.
        let skipdata = LogStatus::SkipData as u64;
        let (interface, account) = (
            self.terms(Field::InterfaceId, dict_of),
            self.terms(Field::AccountId, dict_of),
        );
        order
            .iter()
            .enumerate()
            .filter(|(_, &i)| status.get(i as usize) == Some(skipdata))
            .filter_map(|(id, &i)| {
                let i = i as usize;
                Some(SkipRecord {
                    record: id as u32,
                    source: u32::try_from(source.values.get(i) + u64::from(source_base)).unwrap_or(u32::MAX),
                    interface: interface(i),
                    account: account(i),
                    start: start.get(i)?,
                    end: end.get(i)?,
                })
            })
            .collect()
    }

    /// Each (interface, account) subject's runs of 5-minute slots (`index-format.md`,
    /// "Slot-runs section").
    fn slot_runs<'p>(&self, order: &[u32], dict_of: &dyn Fn(Column) -> Option<&'p DictionaryPlan>) -> Vec<SubjectRuns> {
        let field = |f: Field| self.columns[Column::Field(f).id()].as_ref();
        let (start, end, status) = (field(Field::Start), field(Field::End), field(Field::LogStatus));
        let (interface, account) = (
            self.terms(Field::InterfaceId, dict_of),
            self.terms(Field::AccountId, dict_of),
        );
        let mut runs = RunsBuilder::default();
        for &i in order {
            let i = i as usize;
            let Some(interface) = interface(i) else {
                continue;
            };
            let times = start.and_then(|c| c.get(i)).zip(end.and_then(|c| c.get(i)));
            // A record without a log-status counts as OK, as in coverage.
            let code = status.and_then(|c| c.get(i)).unwrap_or(LogStatus::Ok as u64);
            runs.add(interface, account(i), times, 1 << code);
        }
        runs.finish()
    }

    /// The term number a text field's column stores, by record (arrival order). The column and
    /// its plan are looked up once: this runs for every record of the segment.
    fn terms<'s, 'p: 's>(
        &'s self,
        f: Field,
        dict_of: &dyn Fn(Column) -> Option<&'p DictionaryPlan>,
    ) -> impl Fn(usize) -> Option<u32> + 's {
        let column = self.columns[Column::Field(f).id()].as_ref();
        let plan = column.map(|_| dict_of(Column::Field(f)).expect("a text field has a dictionary"));
        move |i| {
            let term = plan?.rank(column?.get(i)?);
            Some(u32::try_from(term).expect("a segment holds fewer than 2^32 terms"))
        }
    }

    /// A column's values in segment order (term numbers for dictionary-coded columns), with nulls.
    fn gather(&self, c: Column, order: &[u32], plan: Option<&DictionaryPlan>) -> (Vec<u64>, Vec<bool>) {
        let buf = self.columns[c.id()].as_ref().expect("present column");
        let mut values: Vec<u64> = match &buf.values {
            Widths::U8(x) => order.iter().map(|&i| u64::from(x[i as usize])).collect(),
            Widths::U16(x) => order.iter().map(|&i| u64::from(x[i as usize])).collect(),
            Widths::U32(x) => order.iter().map(|&i| u64::from(x[i as usize])).collect(),
            Widths::U64(x) => order.iter().map(|&i| x[i as usize]).collect(),
        };
        let nulls: Vec<bool> = order.iter().map(|&i| buf.is_null(i as usize)).collect();
        if let Some(plan) = plan {
            for (v, null) in values.iter_mut().zip(&nulls) {
                if !*null {
                    *v = plan.rank(*v);
                }
            }
        }
        (values, nulls)
    }

    /// The original-line values in segment order: the tagged line of records that keep one.
    fn originals_in_order(&self, order: &[u32]) -> Vec<Option<&[u8]>> {
        let mut by_record: Vec<Option<&[u8]>> = vec![None; self.len];
        for (k, &(record, start)) in self.originals.iter().enumerate() {
            let end = self
                .originals
                .get(k + 1)
                .map_or(self.original_bytes.len(), |next| next.1);
            by_record[record as usize] = Some(&self.original_bytes[start..end]);
        }
        order.iter().map(|&i| by_record[i as usize]).collect()
    }

    /// Record numbers in segment order: by the UTC day of the start time, then interface, then
    /// start time, then source and line. Keeping an interface's records together turns the
    /// postings of every per-interface field (interface, instance, subnet, VPC, account,
    /// region) into a few runs and halves the cost of the interface's own address in
    /// `srcaddr`/`dstaddr`. Days first, because a segment holds about a day of a time-sorted
    /// build: a day's records are then one stretch of blocks, where interface runs spanning
    /// midnight made nearly every block an edge block of a day's window, read and checked
    /// record by record (819 K candidates for 515 K records). Each interface's records stay in
    /// time order (index-format.md, "Record order").
    fn segment_order(&self) -> Vec<u32> {
        let col = |c: Column| self.columns[c.id()].as_ref();
        let interface = col(Column::Field(Field::InterfaceId));
        let start = col(Column::Field(Field::Start));
        let source = col(Column::Source).expect("every record has a source");
        let line = col(Column::Line).expect("every record has a line");
        // Arrival codes of interfaces are ranked so the order follows the dictionary.
        let rank = self
            .plan_dictionary(Column::Field(Field::InterfaceId))
            .and_then(|p| p.rank);
        let mut keys: Vec<(u64, u64, u64, u64, u32)> = (0..self.len)
            .map(|i| {
                // Term numbers fit in 32 bits (u32::MAX: no interface), so the day and the
                // interface share a word of the key. Readers take times below 10^11 seconds;
                // a later day (a library caller's record) counts as the last one.
                let eni = interface.and_then(|c| c.get(i)).map_or(u64::from(u32::MAX), |code| {
                    rank.as_ref().map_or(code, |r| u64::from(r[code as usize]))
                });
                let start = start.and_then(|s| s.get(i)).unwrap_or(0);
                (
                    (start / SECONDS_PER_DAY).min(u64::from(u32::MAX)) << 32 | eni,
                    start,
                    source.values.get(i),
                    line.values.get(i),
                    i as u32,
                )
            })
            .collect();
        keys.sort_unstable();
        keys.into_iter().map(|k| k.4).collect()
    }

    fn encode_formats(&self, present: &[Column]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.formats.len() as u32).to_le_bytes());
        for format in &self.formats {
            out.extend_from_slice(&(format.len() as u32).to_le_bytes());
            for position in format.iter() {
                match position {
                    FormatField::Known(f) => out.extend_from_slice(&[FORMAT_KNOWN, f.id()]),
                    FormatField::Unknown(name) => {
                        out.push(FORMAT_UNKNOWN);
                        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
                        out.extend_from_slice(name.as_bytes());
                    }
                }
            }
        }
        out.extend_from_slice(&(present.len() as u32).to_le_bytes());
        for c in present {
            out.extend_from_slice(&(c.id() as u32).to_le_bytes());
        }
        out
    }

    fn plan_dictionary(&self, c: Column) -> Option<DictionaryPlan> {
        let buf = self.columns[c.id()].as_ref()?;
        let used = |n_terms: usize| {
            let mut used = vec![false; n_terms];
            for i in 0..self.len {
                if let Some(v) = buf.get(i) {
                    used[v as usize] = true;
                }
            }
            used
        };
        // Interned columns: sort the used terms; the plan maps arrival codes to ranks.
        let ranked = |order: Vec<u32>, n_terms: usize| -> (Vec<u64>, Vec<u32>) {
            let mut rank = vec![u32::MAX; n_terms];
            for (r, &code) in order.iter().enumerate() {
                rank[code as usize] = r as u32;
            }
            (order.into_iter().map(u64::from).collect(), rank)
        };
        match c {
            Column::Field(f) if f.kind() == FieldKind::Ip => {
                let interner = &self.ips;
                let used = used(interner.terms.len());
                let mut order: Vec<u32> = (0..interner.terms.len() as u32).filter(|&c| used[c as usize]).collect();
                order.sort_by_key(|&c| ip_bytes(interner.terms[c as usize]));
                let (codes, rank) = ranked(order, interner.terms.len());
                let kind = TermKind::Ip;
                Some(DictionaryPlan {
                    kind,
                    codes,
                    rank: Some(rank),
                })
            }
            Column::Field(f) if f.kind() == FieldKind::Text => {
                // A column whose every value is `-` has no interner: its dictionary is empty.
                let empty = Interner::default();
                let interner = self.texts.get(&f).unwrap_or(&empty);
                let used = used(interner.terms.len());
                let mut order: Vec<u32> = (0..interner.terms.len() as u32).filter(|&c| used[c as usize]).collect();
                order.sort_by(|&a, &b| {
                    interner.terms[a as usize]
                        .as_bytes()
                        .cmp(interner.terms[b as usize].as_bytes())
                });
                let (codes, rank) = ranked(order, interner.terms.len());
                Some(DictionaryPlan {
                    kind: TermKind::Bytes,
                    codes,
                    rank: Some(rank),
                })
            }
            Column::Extras => {
                let used = used(self.extras.terms.len());
                let mut order: Vec<u32> = (0..self.extras.terms.len() as u32)
                    .filter(|&c| used[c as usize])
                    .collect();
                order.sort_by(|&a, &b| self.extras.terms[a as usize].cmp(&self.extras.terms[b as usize]));
                let (codes, rank) = ranked(order, self.extras.terms.len());
                Some(DictionaryPlan {
                    kind: TermKind::Bytes,
                    codes,
                    rank: Some(rank),
                })
            }
            Column::Field(f) if POSTING_FIELDS.contains(&f) => {
                // Numbers and enums keep their values in the column; the dictionary lists the
                // distinct values so each gets a posting. Gathered through a set, not sorted
                // and deduplicated in place: the plans of a dozen columns are held while the
                // segment is written, and each kept a vector of all its records' values (71 MB
                // of a 750 K-record segment, more than the records themselves).
                let distinct: HashSet<u64> = (0..self.len).filter_map(|i| buf.get(i)).collect();
                let mut values: Vec<u64> = distinct.into_iter().collect();
                values.sort_unstable();
                Some(DictionaryPlan {
                    kind: TermKind::UInt,
                    codes: values,
                    rank: None,
                })
            }
            _ => None,
        }
    }
}

/// Writes a segment's sections one after another, each aligned and entered in the directory;
/// a section read in place is followed by its page checksums. A section may also be written
/// piece by piece ([`SectionWriter::begin_section`]), its checksum kept as it goes.
struct SectionWriter<W: Write> {
    out: W,
    written: u64,
    directory: Vec<DirectoryEntry>,
    /// The section being written piece by piece: its kind, start and checksum so far.
    open: Option<(SectionKind, u64, crc32fast::Hasher)>,
}

impl<W: Write> SectionWriter<W> {
    fn new(mut out: W) -> io::Result<SectionWriter<W>> {
        let header = encode_header();
        out.write_all(&header)?;
        Ok(SectionWriter {
            out,
            written: header.len() as u64,
            directory: Vec::new(),
            open: None,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn align(&mut self) -> io::Result<()> {
        let pad = self.written.next_multiple_of(SECTION_ALIGN as u64) - self.written;
        self.write(&[0; SECTION_ALIGN][..pad as usize])
    }

    fn section(&mut self, kind: SectionKind, param: u32, bytes: &[u8]) -> io::Result<()> {
        debug_assert!(self.open.is_none(), "sections do not nest");
        let covered = self.directory.len() as u32;
        self.align()?;
        self.directory.push(DirectoryEntry {
            kind,
            param,
            offset: self.written,
            length: bytes.len() as u64,
            crc: crc32(bytes),
        });
        self.write(bytes)?;
        if matches!(
            kind,
            SectionKind::Dictionary | SectionKind::Postings | SectionKind::ColumnIndex
        ) {
            self.section(SectionKind::PageChecksums, covered, &pages::encode(bytes))?;
        }
        Ok(())
    }

    fn begin_section(&mut self, kind: SectionKind) -> io::Result<()> {
        self.align()?;
        self.open = Some((kind, self.written, crc32fast::Hasher::new()));
        Ok(())
    }

    /// Appends to the open section; returns where the bytes start within it.
    fn append(&mut self, bytes: &[u8]) -> io::Result<u64> {
        let (_, start, crc) = self.open.as_mut().expect("a section is open");
        let at = self.written - *start;
        crc.update(bytes);
        self.write(bytes)?;
        Ok(at)
    }

    fn end_section(&mut self) -> io::Result<()> {
        let (kind, offset, crc) = self.open.take().expect("a section is open");
        self.directory.push(DirectoryEntry {
            kind,
            param: NO_PARAM,
            offset,
            length: self.written - offset,
            crc: crc.finalize(),
        });
        Ok(())
    }

    /// Writes the directory and the footer; returns the file's length and the directory's
    /// CRC-32.
    fn finish(mut self, records: u64) -> io::Result<(u64, u32)> {
        self.align()?;
        let dir = encode_directory(&self.directory);
        let footer = Footer {
            directory_offset: self.written,
            directory_count: self.directory.len() as u32,
            directory_crc: crc32(&dir),
            record_count: records,
        };
        self.write(&dir)?;
        self.write(&encode_footer(&footer))?;
        Ok((self.written, footer.directory_crc))
    }
}

/// The span of the first key of the record order.
const SECONDS_PER_DAY: u64 = 86_400;

/// Transient bytes per record while a segment is written, beyond the records held: a 40-byte
/// sort key, then gathered columns, the gathered start and end, posting terms and ids, and the
/// postings held until the dictionaries are written. Measured, not summed (those parts do not
/// all live at once): a one-thread build of the bench corpus grew by 113 bytes of resident
/// memory per record of its segment, which held 58 bytes a record before writing.
const FLUSH_BYTES_PER_RECORD: usize = 55;

/// zstd level for column blocks: level 3 is zstd's default, and measured (index-format.md,
/// "Why these choices") close to higher levels in size at a fraction of the time.
const ZSTD_LEVEL: i32 = 3;

/// zstd level for column blocks in byte planes: the planes of byte counts and times compress as
/// small at -1 as the numbers do at 3 (index-format.md, "Why these choices"), and frames of
/// negative levels, mostly literals, decompress more than twice as fast.
const PLANES_ZSTD_LEVEL: i32 = -1;

/// How one column's accumulated values become dictionary terms.
struct DictionaryPlan {
    kind: TermKind,
    /// For interned columns: the arrival codes of the terms in sorted order. For value columns:
    /// the sorted distinct values.
    codes: Vec<u64>,
    /// For interned columns: arrival code → term number (the column stores term numbers).
    rank: Option<Vec<u32>>,
}

impl DictionaryPlan {
    fn len(&self) -> usize {
        self.codes.len()
    }

    /// The value the column stores for an accumulated value, or for value columns the term
    /// number (used for postings; the column keeps the value itself).
    fn rank(&self, v: u64) -> u64 {
        match &self.rank {
            Some(rank) => u64::from(rank[v as usize]),
            None => self.codes.binary_search(&v).expect("value is in the dictionary") as u64,
        }
    }

    fn terms<'a>(&'a self, b: &'a SegmentBuilder, c: Column) -> Vec<Term<'a>> {
        match (c, self.kind) {
            (Column::Field(_), TermKind::Ip) => self
                .codes
                .iter()
                .map(|&code| Term::Ip(ip_bytes(b.ips.terms[code as usize])))
                .collect(),
            (Column::Field(f), TermKind::Bytes) => self
                .codes
                .iter()
                .map(|&code| Term::Bytes(b.texts[&f].terms[code as usize].as_bytes()))
                .collect(),
            (Column::Extras, _) => self
                .codes
                .iter()
                .map(|&code| Term::Bytes(&b.extras.terms[code as usize]))
                .collect(),
            _ => self.codes.iter().map(|&v| Term::UInt(v)).collect(),
        }
    }
}

/// The `start` and `end` columns in segment order, when the segment has them.
struct TimeSpans<'a> {
    starts: Option<&'a (Vec<u64>, Vec<bool>)>,
    ends: Option<&'a (Vec<u64>, Vec<bool>)>,
}

impl TimeSpans<'_> {
    /// The earliest and latest second the records `ids` cover ([`covered_span`]), `u64::MAX`
    /// and `0` when none has a time.
    fn of(&self, ids: &[u32]) -> (u64, u64) {
        let time = |column: Option<&(Vec<u64>, Vec<bool>)>, i: usize| {
            column.and_then(|(values, nulls)| (!nulls[i]).then(|| values[i]))
        };
        let (mut first, mut last) = (u64::MAX, 0);
        for &i in ids {
            let i = i as usize;
            if let Some((lo, hi)) = covered_span(time(self.starts, i), time(self.ends, i)) {
                first = first.min(lo);
                last = last.max(hi);
            }
        }
        (first, last)
    }
}

/// A column's postings section and the references to its postings.
struct ColumnPostings {
    bytes: Vec<u8>,
    refs: Vec<PostingRef>,
    /// The number of null ids when one posting is the complement (index-format.md, "Complement
    /// postings").
    complement_nulls: Option<u32>,
}

/// Serialized postings of one column from its values in segment order (record id = position):
/// term numbers for dictionary-coded columns, values to look up for number and enum columns.
fn build_postings(
    plan: &DictionaryPlan,
    values: &[u64],
    nulls: &[bool],
    term_numbers: bool,
    spans: &TimeSpans<'_>,
) -> ColumnPostings {
    // Record ids grouped by term with a counting sort: one pass counts each term's records,
    // one puts each id after those of smaller terms, so a term's ids come out ascending and
    // each posting is built in one sequential pass. Sorting (term, id) pairs instead was the
    // largest cost of writing a segment after compression; pushing ids into one bitmap per
    // term misses the cache on every id.
    const NULL: u32 = u32::MAX;
    let terms: Vec<u32> = values
        .iter()
        .zip(nulls)
        .map(|(v, null)| match (*null, term_numbers) {
            (true, _) => NULL,
            (false, true) => *v as u32,
            (false, false) => plan.rank(*v) as u32,
        })
        .collect();
    let mut starts = vec![0u32; plan.len() + 1];
    for &t in terms.iter().filter(|t| **t != NULL) {
        starts[t as usize + 1] += 1;
    }
    for t in 1..starts.len() {
        starts[t] += starts[t - 1];
    }
    let mut next = starts.clone();
    let mut ids = vec![0u32; starts[plan.len()] as usize];
    for (id, &t) in terms.iter().enumerate().filter(|(_, t)| **t != NULL) {
        let at = &mut next[t as usize];
        ids[*at as usize] = id as u32;
        *at += 1;
    }
    let mut bytes = Vec::new();
    let mut refs = Vec::with_capacity(plan.len());
    for bounds in starts.windows(2) {
        let group = &ids[bounds[0] as usize..bounds[1] as usize];
        debug_assert!(!group.is_empty(), "every term has records");
        let offset = u32::try_from(bytes.len())
            .expect("postings of one column stay under 4 GiB (index-format.md, Known limits)");
        posting::encode(group, &mut bytes);
        let (first_start, last_end) = spans.of(group);
        refs.push(PostingRef {
            offset,
            count: group.len() as u32,
            first_start,
            last_end,
        });
    }
    if plan.kind == TermKind::Ip || plan.len() > dictionary::COMPLEMENT_MAX_TERMS {
        return ColumnPostings {
            bytes,
            refs,
            complement_nulls: None,
        };
    }
    // The largest posting becomes the complement of the others and the nulls', when the nulls'
    // posting is smaller than it.
    let range = |t: usize| refs[t].offset as usize..refs.get(t + 1).map_or(bytes.len(), |r| r.offset as usize);
    let Some(largest) = (0..refs.len()).max_by_key(|&t| (range(t).len(), std::cmp::Reverse(t))) else {
        return ColumnPostings {
            bytes,
            refs,
            complement_nulls: None,
        };
    };
    let null_ids: Vec<u32> = (0..terms.len() as u32)
        .filter(|&id| terms[id as usize] == NULL)
        .collect();
    let mut complemented = Vec::new();
    posting::encode(&null_ids, &mut complemented);
    if complemented.len() >= range(largest).len() {
        return ColumnPostings {
            bytes,
            refs,
            complement_nulls: None,
        };
    }
    let mut complemented_refs = Vec::with_capacity(refs.len());
    for (t, r) in refs.iter().enumerate() {
        let offset = complemented.len() as u32;
        if t != largest {
            complemented.extend_from_slice(&bytes[range(t)]);
        }
        complemented_refs.push(PostingRef { offset, ..*r });
    }
    ColumnPostings {
        bytes: complemented,
        refs: complemented_refs,
        complement_nulls: Some(null_ids.len() as u32),
    }
}

/// A twin's postings with each one that equals its base's (same term, same ids) stored as no
/// bytes (index-format.md, "Twins"), and which terms keep their own. Equal bytes are equal ids:
/// a posting's encoding depends on its ids alone.
fn share_twin_postings(
    plan: &DictionaryPlan,
    bytes: &[u8],
    refs: &[PostingRef],
    (base_plan, base_bytes, base_refs): (&DictionaryPlan, &[u8], &[PostingRef]),
) -> (Vec<u8>, Vec<PostingRef>, Vec<bool>) {
    let posting = |bytes: &'_ [u8], refs: &[PostingRef], t: usize| -> std::ops::Range<usize> {
        refs[t].offset as usize..refs.get(t + 1).map_or(bytes.len(), |next| next.offset as usize)
    };
    let base_rank = base_plan.rank.as_ref().expect("addresses are interned");
    let mut shared = Vec::with_capacity(bytes.len());
    let mut shared_refs = Vec::with_capacity(refs.len());
    let mut own_terms = Vec::with_capacity(refs.len());
    for (t, r) in refs.iter().enumerate() {
        let own = &bytes[posting(bytes, refs, t)];
        let same = match base_rank[plan.codes[t] as usize] {
            u32::MAX => false,
            b => {
                base_refs[b as usize].count == r.count && base_bytes[posting(base_bytes, base_refs, b as usize)] == *own
            }
        };
        let offset = shared.len() as u32;
        if !same {
            shared.extend_from_slice(own);
        }
        shared_refs.push(PostingRef { offset, ..*r });
        own_terms.push(!same);
    }
    (shared, shared_refs, own_terms)
}

/// Whether `line` is exactly what `record.write_line(format)` writes, told from the line's
/// fields without writing it: fields apart by single spaces, and each one the only text its value
/// writes as. `false` means "not sure": the caller writes the line and compares. Writing every
/// record's line to compare was a seventh of a build's time, and almost every line is in
/// written form.
///
/// A field is in written form when it is `-` (a null writes `-`), text or an unknown field's
/// value (kept as read), an IPv4 address (the parsers refuse leading zeros, so the text is the
/// address's only form), or a number without leading zeros whose value kept its digits (times in
/// milliseconds become seconds). Enum words and IPv6 addresses are compared with what they write.
fn is_written_form(line: &[u8], record: &FlowRecord, format: &[FormatField], spans: &mut FieldSpans) -> bool {
    // A byte-order mark before a file's first line was not parsed: the line is not the
    // record's written form whatever its fields say.
    if line.first().is_some_and(|b| !b.is_ascii()) {
        return false;
    }
    spans.split(line);
    if spans.len() != format.len() || memchr::memchr(b'\t', line).is_some() {
        return false;
    }
    let mut expected_start = 0;
    for ((start, end), column) in spans.spans().zip(format) {
        if start != expected_start {
            return false;
        }
        expected_start = end + 1;
        let token = &line[start..end];
        let FormatField::Known(field) = column else {
            continue;
        };
        if token == b"-" {
            continue;
        }
        let written = match field.kind() {
            FieldKind::Text => true,
            FieldKind::Ip => !token.contains(&b':'),
            FieldKind::UInt => {
                let kept_digits = match field {
                    Field::Start | Field::End => record
                        .get(*field)
                        .is_some_and(|v| v.with_text(|text| text.len() == token.len())),
                    _ => true,
                };
                (token.len() == 1 || token[0] != b'0') && kept_digits
            }
            FieldKind::Enum => false,
        };
        if !written
            && !record
                .get(*field)
                .is_some_and(|v| v.with_text(|text| text.as_bytes() == token))
        {
            return false;
        }
    }
    expected_start == line.len() + 1
}

/// Enum fields are stored as the position of their value in the enum's `ALL` list.
fn enum_code(record: &FlowRecord, field: Field) -> Option<u64> {
    fn pos<T: PartialEq>(all: &[T], v: &T) -> u64 {
        all.iter().position(|a| a == v).expect("a value of the enum") as u64
    }
    match field {
        Field::Action => record.action.map(|v| pos(Action::ALL, &v)),
        Field::LogStatus => record.log_status.map(|v| pos(LogStatus::ALL, &v)),
        Field::FlowDirection => record.flow_direction.map(|v| pos(FlowDirection::ALL, &v)),
        Field::Type => record.traffic_type.map(|v| pos(TrafficType::ALL, &v)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::LogFormat;

    /// The record a line reads as under `format` (fields apart by runs of blanks).
    fn read(line: &str, format: &LogFormat) -> FlowRecord {
        let mut r = FlowRecord {
            fields: format.known_fields(),
            ..FlowRecord::default()
        };
        let tokens = line.split([' ', '\t']).filter(|t| !t.is_empty());
        for (column, token) in format.columns().iter().zip(tokens) {
            match column {
                FormatField::Known(f) => r.set_text(*f, token).unwrap(),
                FormatField::Unknown(name) => r.extra.push(crate::record::ExtraField {
                    name: name.clone(),
                    value: (token != "-").then(|| token.to_owned()),
                }),
            }
        }
        r
    }

    #[test]
    fn a_line_is_taken_as_written_only_when_writing_gives_it_back() {
        let format = LogFormat::parse(
            "version srcaddr dstaddr srcport start end action flow-direction traffic-path future-field account-id",
        )
        .unwrap();
        let written = [
            "2 10.0.0.1 10.0.0.2 443 1700000000 1700000060 ACCEPT egress 1 x 123456789012",
            "2 - - - 1700000000 1700000060 - - - - -",
            "2 0.0.0.0 255.255.255.255 0 1700000000 1700000060 REJECT ingress 8 - acct",
        ];
        let not_written = [
            "2  10.0.0.1 10.0.0.2 443 1700000000 1700000060 ACCEPT egress 1 x 1",
            " 2 10.0.0.1 10.0.0.2 443 1700000000 1700000060 ACCEPT egress 1 x 1",
            "2 10.0.0.1 10.0.0.2 443 1700000000 1700000060 ACCEPT egress 1 x 1 ",
            "2\t10.0.0.1 10.0.0.2 443 1700000000 1700000060 ACCEPT egress 1 x 1",
            "02 10.0.0.1 10.0.0.2 443 1700000000 1700000060 ACCEPT egress 1 x 1",
            "2 10.0.0.1 10.0.0.2 0443 1700000000 1700000060 ACCEPT egress 1 x 1",
            "2 10.0.0.1 10.0.0.2 443 1700000000000 1700000060000 ACCEPT egress 1 x 1",
            "2 10.0.0.1 10.0.0.2 443 1700000000 1700000060 ACCEPT egress 01 x 1",
            "2 2001:DB8::1 10.0.0.2 443 1700000000 1700000060 ACCEPT egress 1 x 1",
            "2 2001:db8:0:0::1 10.0.0.2 443 1700000000 1700000060 ACCEPT egress 1 x 1",
            // The record holds the IPv4 address it maps, and writes that.
            "2 ::ffff:10.0.0.1 10.0.0.2 443 1700000000 1700000060 ACCEPT egress 1 x 1",
        ];
        let mut spans = FieldSpans::default();
        for line in written.iter().chain(&not_written) {
            let record = read(line, &format);
            let mut out = Vec::new();
            record.write_line(format.columns(), &mut out);
            let fast = is_written_form(line.as_bytes(), &record, format.columns(), &mut spans);
            assert!(
                !fast || out == line.as_bytes(),
                "{line:?} taken as written, writes {:?}",
                String::from_utf8_lossy(&out)
            );
            assert_eq!(fast, written.contains(line), "{line:?}");
        }
        // IPv6 in written form is compared, and passes.
        let line = "2 2001:db8::1 ::1 1 2 3 REJECT egress 2 - -";
        let record = read(line, &format);
        assert!(is_written_form(line.as_bytes(), &record, format.columns(), &mut spans));
    }

    #[test]
    fn the_skipdata_section_lists_the_skipdata_records_and_verify_holds_it_to_them() {
        use crate::format::{decode_footer, FOOTER_SIZE};
        use crate::read::Segment;
        let format = LogFormat::parse("version account-id interface-id srcaddr start end log-status").unwrap();
        let lines = [
            "2 111 eni-b 10.0.0.1 1700000000 1700000060 OK",
            "2 111 eni-a 10.0.0.2 1700000100 1700000160 SKIPDATA",
            "2 111 - - 1700000200 1700000260 SKIPDATA",
            // Without a start it cannot be placed in time: not listed.
            "2 - eni-a - - 1700000300 SKIPDATA",
            "2 222 eni-b - 1700000400 1700000460 SKIPDATA",
        ];
        let mut builder = SegmentBuilder::new();
        for (i, line) in lines.iter().enumerate() {
            let mut record = read(line, &format);
            record.provenance = crate::record::Provenance {
                source: i as u32 % 2,
                line: i as u64 + 1,
            };
            builder.push(&record, line.as_bytes(), format.columns());
        }
        let bytes = builder.to_bytes(10);
        let open = |bytes: Vec<u8>| Segment::from_bytes(Path::new("t.fdx"), Box::new(bytes)).unwrap();
        let seg = open(bytes.clone());
        seg.verify().unwrap();
        // Segment order: eni-a (the record without a start first), eni-b, then no interface.
        let listed = seg.skipdata().unwrap().unwrap();
        let entry = |record, source: u32, interface, account, start: u64| SkipRecord {
            record,
            source: 10 + source,
            interface,
            account,
            start,
            end: start + 60,
        };
        assert_eq!(
            listed,
            [
                entry(1, 1, Some(0), Some(0), 1_700_000_100),
                entry(3, 0, Some(1), Some(1), 1_700_000_400),
                entry(4, 0, None, Some(0), 1_700_000_200),
            ]
        );

        // Each (interface, account) in the order of its first record: eni-a's record without
        // an account and without times first; the record without an interface in none.
        let runs = seg.slot_runs().unwrap().unwrap().all().unwrap();
        let subject = |interface, account, runs: &[(u32, u8)]| SubjectRuns {
            interface,
            account,
            runs: runs
                .iter()
                .map(|&(first, seen)| slots::SlotRun { first, count: 1, seen })
                .collect(),
        };
        let (ok, skip) = (1 << LogStatus::Ok as u8, 1 << LogStatus::SkipData as u8);
        let expected_runs = [
            subject(0, None, &[]),
            subject(0, Some(0), &[(5_666_667, skip)]),
            subject(1, Some(0), &[(5_666_666, ok)]),
            subject(1, Some(1), &[(5_666_668, skip)]),
        ];
        assert_eq!(runs, expected_runs);

        // A section that disagrees with the columns, its checksums repaired, opens but fails
        // verify.
        let with_section = |kind: SectionKind, section: Vec<u8>| {
            let (mut footer, mut directory) = decode_footer(&bytes).unwrap();
            let at = directory.iter().position(|e| e.kind == kind).unwrap();
            let (offset, length) = (directory[at].offset as usize, directory[at].length as usize);
            assert_eq!(section.len(), length, "the same length, to splice in place");
            let mut tampered = bytes.clone();
            tampered[offset..offset + length].copy_from_slice(&section);
            directory[at].crc = crc32(&section);
            let dir = encode_directory(&directory);
            footer.directory_crc = crc32(&dir);
            let dir_at = footer.directory_offset as usize;
            tampered[dir_at..dir_at + dir.len()].copy_from_slice(&dir);
            let end = tampered.len();
            tampered[end - FOOTER_SIZE..].copy_from_slice(&encode_footer(&footer));
            open(tampered)
        };
        let mut changed = listed.clone();
        changed[1].start += 1;
        let seg = with_section(SectionKind::SkipData, skipdata::encode(&changed));
        assert_eq!(seg.skipdata().unwrap().unwrap(), changed);
        let err = seg.verify().unwrap_err().to_string();
        assert!(err.contains("skipdata") && err.contains("entry 1"), "{err}");
        let mut changed = expected_runs.to_vec();
        changed[2].runs[0].seen = 2;
        let seg = with_section(SectionKind::SlotRuns, slots::encode(&changed));
        let err = seg.verify().unwrap_err().to_string();
        assert!(err.contains("slot runs") && err.contains("subject 2"), "{err}");
    }
}
