//! The on-disk format: the only module that knows byte offsets. Encodes and decodes segment
//! headers, footers, section directories, column blocks, dictionaries and the manifest, as
//! `index-format.md` specifies them. Decoding never panics and never reads out of bounds:
//! damaged bytes give [`Corrupt`].
//!
//! Everything is little-endian. Checksums are CRC-32 (ISO-HDLC, as in gzip and zip).

pub mod bits;
pub mod column;
pub mod dictionary;
pub mod manifest;
pub mod pages;
pub mod posting;
pub mod schema;
pub mod skipdata;
pub mod slots;
pub mod sources;

use std::fmt;

/// The format version this code writes (`index-format.md`, "Version history").
pub const FORMAT_VERSION: u32 = 10;

/// The oldest format version this code reads: a reader tells what versions 4 to 8 changed
/// (postings as gaps; packed references, narrow terms, twins, `end` minus `start`; bit-packed
/// columns; the SKIPDATA section; byte planes) by the segment's version and by flags that only
/// those versions may set. Version 9 changed only the record order, which readers need not know;
/// version 10, what the time spans of posting references cover ([`COVERED_SPANS_SINCE`]),
/// which only `verify` needs to know.
pub const OLDEST_READABLE_VERSION: u32 = 3;

/// The first format version whose posting references give the seconds their term's records
/// cover (`record::covered_span`: a record with one time at that time, one whose end is before
/// its start at its start), not their smallest start and largest end (`index-format.md`,
/// "Dictionaries").
pub const COVERED_SPANS_SINCE: u32 = 10;

/// The first format version whose `pkt-srcaddr` and `pkt-dstaddr` may share terms and
/// postings with `srcaddr` and `dstaddr` (`index-format.md`, "Twins").
pub const TWINS_SINCE: u32 = 5;

/// The first format version whose `end` columns may be stored minus `start` (`index-format.md`,
/// "Column data section").
pub const MINUS_START_SINCE: u32 = 5;

/// The first format version whose stored column frames may pack numbers in bits
/// (`index-format.md`, "Column data section").
pub const BIT_PACKED_SINCE: u32 = 6;

/// The first format version whose segments list their SKIPDATA records, and their subjects'
/// slot runs, in sections of their own (`index-format.md`, "SKIPDATA section", "Slot-runs
/// section").
pub const SKIPDATA_SINCE: u32 = 7;

/// The first format version whose compressed column frames may hold their numbers in byte
/// planes (`index-format.md`, "Column data section").
pub const PLANES_SINCE: u32 = 8;

/// Most bytes a zstd frame can decompress to per compressed byte: its densest block (RLE) is
/// 4 bytes (3 of header, 1 repeated) for at most 128 KiB. Readers refuse a stated length
/// above this before allocating it.
pub const ZSTD_MAX_RATIO: u64 = 128 * 1024 / 4;

/// Whether this code reads files of format `version`.
pub fn is_readable(version: u32) -> bool {
    (OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version)
}

/// Damage found while decoding: which section, where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corrupt {
    pub section: String,
    pub offset: u64,
    pub what: String,
}

impl Corrupt {
    pub fn new(section: impl Into<String>, offset: u64, what: impl Into<String>) -> Corrupt {
        Corrupt {
            section: section.into(),
            offset,
            what: what.into(),
        }
    }
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}: {}", self.section, self.offset, self.what)
    }
}

pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

thread_local! {
    /// One zstd decompression context per thread. Making one costs more than decompressing a
    /// small frame: its 100-odd KiB are mapped, faulted in and unmapped each time (a search
    /// for an absent address made one per segment for the SKIPDATA section alone).
    static DECOMPRESSOR: std::cell::RefCell<zstd::bulk::Decompressor<'static>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().expect("a zstd context"));
}

/// Decompresses `frame`, a zstd frame stated to hold `length` bytes, into `out` (cleared
/// first). The stated length is checked against what the frame can hold before it is
/// allocated, and against what the frame gives after.
pub fn decompress_frame(frame: &[u8], length: usize, out: &mut Vec<u8>) -> Result<(), String> {
    if length as u64 > frame.len() as u64 * ZSTD_MAX_RATIO {
        return Err(format!(
            "a stated size of {length} bytes is more than a {}-byte zstd frame can hold",
            frame.len()
        ));
    }
    out.clear();
    out.reserve(length);
    DECOMPRESSOR
        .with(|d| d.borrow_mut().decompress_to_buffer(frame, out))
        .map_err(|e| format!("zstd: {e}"))?;
    if out.len() != length {
        return Err(format!(
            "the zstd frame holds {} bytes, not the {length} stated",
            out.len()
        ));
    }
    Ok(())
}

/// Bounds-checked little-endian reads from a byte slice.
pub struct Bytes<'a, 's> {
    data: &'a [u8],
    section: &'s str,
    /// Offset of `data[0]` in the file, for error messages.
    base: u64,
}

impl<'a, 's> Bytes<'a, 's> {
    pub fn new(data: &'a [u8], section: &'s str, base: u64) -> Bytes<'a, 's> {
        Bytes { data, section, base }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The bytes themselves, for decoding fixed-size entries without a check per field.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    pub fn corrupt(&self, at: usize, what: impl Into<String>) -> Corrupt {
        // `at` comes from the damaged bytes themselves and may be anything.
        Corrupt::new(self.section, self.base.saturating_add(at as u64), what)
    }

    pub fn slice(&self, at: usize, len: usize) -> Result<&'a [u8], Corrupt> {
        at.checked_add(len)
            .and_then(|end| self.data.get(at..end))
            .ok_or_else(|| {
                self.corrupt(
                    at,
                    format!("{len} bytes needed, {} available", self.data.len().saturating_sub(at)),
                )
            })
    }

    pub fn u8(&self, at: usize) -> Result<u8, Corrupt> {
        Ok(self.slice(at, 1)?[0])
    }

    pub fn u16(&self, at: usize) -> Result<u16, Corrupt> {
        Ok(u16::from_le_bytes(self.slice(at, 2)?.try_into().expect("2 bytes")))
    }

    pub fn u32(&self, at: usize) -> Result<u32, Corrupt> {
        Ok(u32::from_le_bytes(self.slice(at, 4)?.try_into().expect("4 bytes")))
    }

    pub fn u64(&self, at: usize) -> Result<u64, Corrupt> {
        Ok(u64::from_le_bytes(self.slice(at, 8)?.try_into().expect("8 bytes")))
    }

    pub fn u128(&self, at: usize) -> Result<u128, Corrupt> {
        Ok(u128::from_le_bytes(self.slice(at, 16)?.try_into().expect("16 bytes")))
    }

    /// A count read from the file, refused when `count * unit` bytes cannot follow `at`.
    pub fn count(&self, at: usize, unit: usize, what: &str) -> Result<usize, Corrupt> {
        let n = self.u32(at)? as usize;
        let fits = n
            .checked_mul(unit)
            .is_some_and(|b| b <= self.data.len().saturating_sub(at + 4));
        if !fits {
            return Err(self.corrupt(at, format!("{what} count {n} does not fit in the section")));
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// Segment files (index-format.md, "Segment files").

pub const SEGMENT_MAGIC: [u8; 8] = *b"FDXSEG\0\x01";
pub const FOOTER_MAGIC: [u8; 8] = *b"FDXEND\0\x01";

pub const HEADER_MAGIC_OFFSET: usize = 0;
pub const HEADER_VERSION_OFFSET: usize = HEADER_MAGIC_OFFSET + 8;
pub const HEADER_CRC_OFFSET: usize = HEADER_VERSION_OFFSET + 4;
pub const HEADER_SIZE: usize = HEADER_CRC_OFFSET + 4;

pub const FOOTER_DIRECTORY_OFFSET: usize = 0;
pub const FOOTER_DIRECTORY_COUNT: usize = FOOTER_DIRECTORY_OFFSET + 8;
pub const FOOTER_DIRECTORY_CRC: usize = FOOTER_DIRECTORY_COUNT + 4;
pub const FOOTER_RECORD_COUNT: usize = FOOTER_DIRECTORY_CRC + 4;
pub const FOOTER_CRC: usize = FOOTER_RECORD_COUNT + 8;
pub const FOOTER_RESERVED: usize = FOOTER_CRC + 4;
pub const FOOTER_MAGIC_OFFSET: usize = FOOTER_RESERVED + 4;
pub const FOOTER_SIZE: usize = FOOTER_MAGIC_OFFSET + 8;

pub const DIRECTORY_ENTRY_KIND: usize = 0;
pub const DIRECTORY_ENTRY_PARAM: usize = DIRECTORY_ENTRY_KIND + 4;
pub const DIRECTORY_ENTRY_OFFSET: usize = DIRECTORY_ENTRY_PARAM + 4;
pub const DIRECTORY_ENTRY_LENGTH: usize = DIRECTORY_ENTRY_OFFSET + 8;
pub const DIRECTORY_ENTRY_CRC: usize = DIRECTORY_ENTRY_LENGTH + 8;
pub const DIRECTORY_ENTRY_RESERVED: usize = DIRECTORY_ENTRY_CRC + 4;
pub const DIRECTORY_ENTRY_SIZE: usize = DIRECTORY_ENTRY_RESERVED + 4;

/// Sections are aligned to this many bytes (zero padding between them).
pub const SECTION_ALIGN: usize = 8;

/// What a section holds (`index-format.md`, "Sections").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum SectionKind {
    /// The record formats table (which fields each record's format carried).
    Formats = 1,
    /// Per block: record range and zone map.
    Blocks = 2,
    /// Per block and column: where the column's compressed bytes are.
    ColumnIndex = 3,
    /// Compressed column data.
    ColumnData = 4,
    /// One field's sorted terms (param = column id), with posting references if indexed.
    Dictionary = 5,
    /// One field's postings (param = column id): portable roaring bitmaps.
    Postings = 6,
    /// A CRC-32 per page of another section (param = that section's directory index).
    PageChecksums = 7,
    /// The SKIPDATA records with the values a coverage check needs (format 7 on).
    SkipData = 8,
    /// Per (interface, account): the runs of 5-minute slots its records overlap (format 7 on).
    SlotRuns = 9,
}

impl SectionKind {
    pub fn from_u32(v: u32) -> Option<SectionKind> {
        Some(match v {
            1 => SectionKind::Formats,
            2 => SectionKind::Blocks,
            3 => SectionKind::ColumnIndex,
            4 => SectionKind::ColumnData,
            5 => SectionKind::Dictionary,
            6 => SectionKind::Postings,
            7 => SectionKind::PageChecksums,
            8 => SectionKind::SkipData,
            9 => SectionKind::SlotRuns,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Formats => "formats",
            SectionKind::Blocks => "blocks",
            SectionKind::ColumnIndex => "column index",
            SectionKind::ColumnData => "column data",
            SectionKind::Dictionary => "dictionary",
            SectionKind::Postings => "postings",
            SectionKind::PageChecksums => "page checksums",
            SectionKind::SkipData => "skipdata",
            SectionKind::SlotRuns => "slot runs",
        }
    }
}

/// A section directory entry: no param.
pub const NO_PARAM: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub kind: SectionKind,
    pub param: u32,
    pub offset: u64,
    pub length: u64,
    pub crc: u32,
}

pub fn encode_header() -> [u8; HEADER_SIZE] {
    let mut h = [0u8; HEADER_SIZE];
    h[HEADER_MAGIC_OFFSET..HEADER_VERSION_OFFSET].copy_from_slice(&SEGMENT_MAGIC);
    h[HEADER_VERSION_OFFSET..HEADER_CRC_OFFSET].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = crc32(&h[..HEADER_CRC_OFFSET]);
    h[HEADER_CRC_OFFSET..HEADER_SIZE].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a file is not a segment this code can read (before any damage question).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    NotASegment,
    Version(u32),
    Corrupt(Corrupt),
}

/// Checks a segment header; `Ok` holds the segment's format version.
pub fn check_header(file: &[u8]) -> Result<u32, HeaderProblem> {
    let b = Bytes::new(file, "header", 0);
    let magic = b.slice(HEADER_MAGIC_OFFSET, 8).map_err(HeaderProblem::Corrupt)?;
    if magic != SEGMENT_MAGIC {
        return Err(HeaderProblem::NotASegment);
    }
    let version = b.u32(HEADER_VERSION_OFFSET).map_err(HeaderProblem::Corrupt)?;
    let crc = b.u32(HEADER_CRC_OFFSET).map_err(HeaderProblem::Corrupt)?;
    if crc != crc32(&file[..HEADER_CRC_OFFSET]) {
        return Err(HeaderProblem::Corrupt(Corrupt::new(
            "header",
            HEADER_CRC_OFFSET as u64,
            "header checksum mismatch",
        )));
    }
    if !is_readable(version) {
        return Err(HeaderProblem::Version(version));
    }
    Ok(version)
}

pub struct Footer {
    pub directory_offset: u64,
    pub directory_count: u32,
    pub directory_crc: u32,
    pub record_count: u64,
}

pub fn encode_footer(f: &Footer) -> [u8; FOOTER_SIZE] {
    let mut out = [0u8; FOOTER_SIZE];
    out[FOOTER_DIRECTORY_OFFSET..FOOTER_DIRECTORY_COUNT].copy_from_slice(&f.directory_offset.to_le_bytes());
    out[FOOTER_DIRECTORY_COUNT..FOOTER_DIRECTORY_CRC].copy_from_slice(&f.directory_count.to_le_bytes());
    out[FOOTER_DIRECTORY_CRC..FOOTER_RECORD_COUNT].copy_from_slice(&f.directory_crc.to_le_bytes());
    out[FOOTER_RECORD_COUNT..FOOTER_CRC].copy_from_slice(&f.record_count.to_le_bytes());
    let crc = crc32(&out[..FOOTER_CRC]);
    out[FOOTER_CRC..FOOTER_RESERVED].copy_from_slice(&crc.to_le_bytes());
    out[FOOTER_MAGIC_OFFSET..FOOTER_SIZE].copy_from_slice(&FOOTER_MAGIC);
    out
}

/// Decodes the footer at the end of `file` and the directory it points to.
pub fn decode_footer(file: &[u8]) -> Result<(Footer, Vec<DirectoryEntry>), Corrupt> {
    if file.len() < HEADER_SIZE + FOOTER_SIZE {
        return Err(Corrupt::new(
            "footer",
            file.len() as u64,
            "file too short to hold a header and a footer",
        ));
    }
    let start = file.len() - FOOTER_SIZE;
    let b = Bytes::new(&file[start..], "footer", start as u64);
    if b.slice(FOOTER_MAGIC_OFFSET, 8)? != FOOTER_MAGIC {
        return Err(b.corrupt(FOOTER_MAGIC_OFFSET, "footer magic missing (truncated file?)"));
    }
    if b.u32(FOOTER_CRC)? != crc32(b.slice(0, FOOTER_CRC)?) {
        return Err(b.corrupt(FOOTER_CRC, "footer checksum mismatch"));
    }
    if b.u32(FOOTER_RESERVED)? != 0 {
        return Err(b.corrupt(FOOTER_RESERVED, "reserved bytes are not zero"));
    }
    let footer = Footer {
        directory_offset: b.u64(FOOTER_DIRECTORY_OFFSET)?,
        directory_count: b.u32(FOOTER_DIRECTORY_COUNT)?,
        directory_crc: b.u32(FOOTER_DIRECTORY_CRC)?,
        record_count: b.u64(FOOTER_RECORD_COUNT)?,
    };
    let dir_len = (footer.directory_count as u64).checked_mul(DIRECTORY_ENTRY_SIZE as u64);
    let dir_end = dir_len.and_then(|l| footer.directory_offset.checked_add(l));
    if dir_end != Some(start as u64) || footer.directory_offset < HEADER_SIZE as u64 {
        return Err(b.corrupt(
            FOOTER_DIRECTORY_OFFSET,
            "directory does not end where the footer starts",
        ));
    }
    let dir = &file[footer.directory_offset as usize..start];
    if crc32(dir) != footer.directory_crc {
        return Err(Corrupt::new(
            "directory",
            footer.directory_offset,
            "directory checksum mismatch",
        ));
    }
    let d = Bytes::new(dir, "directory", footer.directory_offset);
    let mut entries = Vec::with_capacity(footer.directory_count as usize);
    for i in 0..footer.directory_count as usize {
        let at = i * DIRECTORY_ENTRY_SIZE;
        let kind_raw = d.u32(at + DIRECTORY_ENTRY_KIND)?;
        let kind =
            SectionKind::from_u32(kind_raw).ok_or_else(|| d.corrupt(at, format!("unknown section kind {kind_raw}")))?;
        let e = DirectoryEntry {
            kind,
            param: d.u32(at + DIRECTORY_ENTRY_PARAM)?,
            offset: d.u64(at + DIRECTORY_ENTRY_OFFSET)?,
            length: d.u64(at + DIRECTORY_ENTRY_LENGTH)?,
            crc: d.u32(at + DIRECTORY_ENTRY_CRC)?,
        };
        if d.u32(at + DIRECTORY_ENTRY_RESERVED)? != 0 {
            return Err(d.corrupt(at + DIRECTORY_ENTRY_RESERVED, "reserved bytes are not zero"));
        }
        let end = e.offset.checked_add(e.length);
        if e.offset < HEADER_SIZE as u64 || end.is_none_or(|end| end > footer.directory_offset) {
            return Err(d.corrupt(at, format!("{} section points outside the file", kind.name())));
        }
        entries.push(e);
    }
    Ok((footer, entries))
}

pub fn encode_directory(entries: &[DirectoryEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * DIRECTORY_ENTRY_SIZE);
    for e in entries {
        out.extend_from_slice(&(e.kind as u32).to_le_bytes());
        out.extend_from_slice(&e.param.to_le_bytes());
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.length.to_le_bytes());
        out.extend_from_slice(&e.crc.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Blocks section: one fixed-size entry per block.

pub const BLOCK_FIRST_RECORD: usize = 0;
pub const BLOCK_RECORD_COUNT: usize = BLOCK_FIRST_RECORD + 4;
pub const BLOCK_MIN_START: usize = BLOCK_RECORD_COUNT + 4;
pub const BLOCK_MAX_START: usize = BLOCK_MIN_START + 8;
pub const BLOCK_MIN_END: usize = BLOCK_MAX_START + 8;
pub const BLOCK_MAX_END: usize = BLOCK_MIN_END + 8;
pub const BLOCK_MIN_BYTES: usize = BLOCK_MAX_END + 8;
pub const BLOCK_MAX_BYTES: usize = BLOCK_MIN_BYTES + 8;
pub const BLOCK_MIN_PACKETS: usize = BLOCK_MAX_BYTES + 8;
pub const BLOCK_MAX_PACKETS: usize = BLOCK_MIN_PACKETS + 8;
pub const BLOCK_ENTRY_SIZE: usize = BLOCK_MAX_PACKETS + 8;

/// Minimum and maximum of a column over a block's non-null values; `min > max` when every
/// value is null.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub min: u64,
    pub max: u64,
}

impl Range {
    pub const EMPTY: Range = Range { min: u64::MAX, max: 0 };

    pub fn add(&mut self, v: u64) {
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub fn is_empty(self) -> bool {
        self.min > self.max
    }

    pub fn overlaps(self, lo: u64, hi: u64) -> bool {
        !self.is_empty() && self.min <= hi && lo <= self.max
    }
}

/// A block's record range and zone map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    pub first_record: u32,
    pub record_count: u32,
    pub start: Range,
    pub end: Range,
    pub bytes: Range,
    pub packets: Range,
}

impl BlockEntry {
    /// Whether a record of the block may be in the window `lo..=hi` (`query::overlaps`): one
    /// with a start, when the earliest start is by its end and the latest end, or start, is no
    /// earlier than its start; one with an end only (its start `-`), when some end is in it.
    pub fn may_overlap(&self, lo: u64, hi: u64) -> bool {
        let by_start = !self.start.is_empty() && self.start.min <= hi && self.end.max.max(self.start.max) >= lo;
        let by_end = !self.end.is_empty() && self.end.min <= hi && self.end.max >= lo;
        by_start || by_end
    }
}

pub fn encode_block_entry(b: &BlockEntry, out: &mut Vec<u8>) {
    out.extend_from_slice(&b.first_record.to_le_bytes());
    out.extend_from_slice(&b.record_count.to_le_bytes());
    for r in [b.start, b.end, b.bytes, b.packets] {
        out.extend_from_slice(&r.min.to_le_bytes());
        out.extend_from_slice(&r.max.to_le_bytes());
    }
}

/// Decodes one block entry. Every byte pattern is an entry; whether the entries cover the
/// records is the reader's check. Fixed offsets into a fixed-size array, because a search
/// decodes every entry of every segment it touches (588 per segment) and checked reads at
/// each field made that a tenth of a month's window.
pub fn decode_block_entry(e: &[u8; BLOCK_ENTRY_SIZE]) -> BlockEntry {
    let u32_at = |o: usize| u32::from_le_bytes(e[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(e[o..o + 8].try_into().expect("8 bytes"));
    let range = |o: usize| Range {
        min: u64_at(o),
        max: u64_at(o + 8),
    };
    BlockEntry {
        first_record: u32_at(BLOCK_FIRST_RECORD),
        record_count: u32_at(BLOCK_RECORD_COUNT),
        start: range(BLOCK_MIN_START),
        end: range(BLOCK_MIN_END),
        bytes: range(BLOCK_MIN_BYTES),
        packets: range(BLOCK_MIN_PACKETS),
    }
}

// Column index section: per block, per column slot.
pub const COLUMN_REF_OFFSET: usize = 0;
pub const COLUMN_REF_LENGTH: usize = COLUMN_REF_OFFSET + 8;
pub const COLUMN_REF_RAW_LENGTH: usize = COLUMN_REF_LENGTH + 4;
pub const COLUMN_REF_CRC: usize = COLUMN_REF_RAW_LENGTH + 4;
pub const COLUMN_REF_CODEC: usize = COLUMN_REF_CRC + 4;
pub const COLUMN_REF_RESERVED: usize = COLUMN_REF_CODEC + 1;
pub const COLUMN_REF_SIZE: usize = COLUMN_REF_RESERVED + 3;

/// How a column frame is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Codec {
    /// The column's bytes as they are: zstd would save less than a quarter (constant columns,
    /// ports, line numbers), and a stored frame is read without decompressing.
    Stored = 0,
    /// One zstd frame.
    Zstd = 1,
}

/// Where one block's column is in the column data section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnRef {
    pub offset: u64,
    pub length: u32,
    /// Size after decompression, bounding the decompressor's output.
    pub raw_length: u32,
    /// CRC-32 of the `length` bytes as stored.
    pub crc: u32,
    pub codec: Codec,
}

impl ColumnRef {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.length.to_le_bytes());
        out.extend_from_slice(&self.raw_length.to_le_bytes());
        out.extend_from_slice(&self.crc.to_le_bytes());
        out.push(self.codec as u8);
        out.extend_from_slice(&[0; 3]);
    }

    pub fn decode(b: &Bytes<'_, '_>, at: usize) -> Result<ColumnRef, Corrupt> {
        let codec = match b.u8(at + COLUMN_REF_CODEC)? {
            0 => Codec::Stored,
            1 => Codec::Zstd,
            c => return Err(b.corrupt(at + COLUMN_REF_CODEC, format!("unknown codec {c}"))),
        };
        if b.slice(at + COLUMN_REF_RESERVED, 3)? != [0; 3] {
            return Err(b.corrupt(at + COLUMN_REF_RESERVED, "reserved bytes are not zero"));
        }
        let r = ColumnRef {
            offset: b.u64(at + COLUMN_REF_OFFSET)?,
            length: b.u32(at + COLUMN_REF_LENGTH)?,
            raw_length: b.u32(at + COLUMN_REF_RAW_LENGTH)?,
            crc: b.u32(at + COLUMN_REF_CRC)?,
            codec,
        };
        if codec == Codec::Stored && r.length != r.raw_length {
            return Err(b.corrupt(at + COLUMN_REF_LENGTH, "a stored column's sizes differ"));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_past_the_file_in_damaged_bytes_is_reported_not_overflowed() {
        // Found by fuzzing: a column reference's offset near 2^64 overflowed the error's offset.
        let e = Bytes::new(&[0; 4], "column data", 100)
            .slice(usize::MAX - 1, 1)
            .unwrap_err();
        assert_eq!(e.offset, u64::MAX);
    }

    /// The fixed sizes `index-format.md` states.
    #[test]
    fn fixed_sizes_match_the_spec() {
        assert_eq!(HEADER_SIZE, 16);
        assert_eq!(FOOTER_SIZE, 40);
        assert_eq!(DIRECTORY_ENTRY_SIZE, 32);
        assert_eq!(BLOCK_ENTRY_SIZE, 72);
        assert_eq!(COLUMN_REF_SIZE, 24);
        assert_eq!(column::COLUMN_HEADER_SIZE, 16);
        assert_eq!(dictionary::DICTIONARY_HEADER_SIZE, 8);
        assert_eq!(dictionary::POSTING_REF_SIZE, 24);
        assert_eq!(dictionary::NARROW_REF_SIZE, 16);
        assert_eq!(dictionary::PACKED_HEADER_SIZE, 24);
        assert_eq!(manifest::MANIFEST_HEADER_SIZE, 24);
        assert_eq!(sources::SOURCES_HEADER_SIZE, 24);
        assert_eq!(sources::SOURCE_REF_SIZE, 16);
        let spec = include_str!("../../index-format.md");
        assert!(spec.starts_with(&format!("# flowdex index format, version {FORMAT_VERSION}\n")));
        for (name, size) in [
            ("Segment header", HEADER_SIZE),
            ("Segment footer", FOOTER_SIZE),
            ("Directory entry", DIRECTORY_ENTRY_SIZE),
            ("Block entry", BLOCK_ENTRY_SIZE),
            ("Column reference", COLUMN_REF_SIZE),
            ("Column header", column::COLUMN_HEADER_SIZE),
            ("Dictionary header", dictionary::DICTIONARY_HEADER_SIZE),
            ("Posting reference", dictionary::POSTING_REF_SIZE),
            ("Narrow posting reference", dictionary::NARROW_REF_SIZE),
            ("Packed references header", dictionary::PACKED_HEADER_SIZE),
            ("Manifest header", manifest::MANIFEST_HEADER_SIZE),
            ("Sources header", sources::SOURCES_HEADER_SIZE),
            ("Source reference", sources::SOURCE_REF_SIZE),
            ("SKIPDATA header", skipdata::HEADER_SIZE),
            ("SKIPDATA entry", skipdata::ENTRY_SIZE),
            ("Slot-runs header", slots::HEADER_SIZE),
            ("Slot-runs subject", slots::SUBJECT_SIZE),
        ] {
            let line = format!("{name} ({size} bytes)");
            assert!(spec.contains(&line), "index-format.md must say `{line}`");
        }
    }

    #[test]
    fn footer_round_trip_and_damage() {
        let mut file = encode_header().to_vec();
        file.extend([0u8; 8]);
        let entries = [DirectoryEntry {
            kind: SectionKind::Formats,
            param: NO_PARAM,
            offset: 16,
            length: 8,
            crc: 0,
        }];
        let dir = encode_directory(&entries);
        let footer = Footer {
            directory_offset: file.len() as u64,
            directory_count: 1,
            directory_crc: crc32(&dir),
            record_count: 7,
        };
        file.extend(&dir);
        file.extend(encode_footer(&footer));
        let (f, e) = decode_footer(&file).unwrap();
        assert_eq!((f.record_count, e), (7, entries.to_vec()));
        assert!(check_header(&file).is_ok());
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x40;
            let header_ok = check_header(&bad).is_ok();
            let footer_ok = decode_footer(&bad).is_ok();
            // Every flipped bit outside the (checksummed elsewhere) section bytes is caught.
            if !(16..24).contains(&i) {
                assert!(!(header_ok && footer_ok), "flip at {i} went unnoticed");
            }
        }
        for len in 0..file.len() {
            assert!(decode_footer(&file[..len]).is_err());
        }
    }
}
