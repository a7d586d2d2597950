//! A segment file, read in place: typed views of its dictionaries, postings and blocks. Opening
//! checks only what every read relies on (header, footer, directory, the formats table and the
//! sizes of the others); the block entries are checked on first use, and [`Segment::verify`]
//! walks every byte.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use roaring::RoaringBitmap;

use super::IndexError;
use crate::format::column::{self, Column as ColumnValues};
use crate::format::dictionary::{ip_from_bytes, Dictionary, NullPosting, Term};
use crate::format::pages::{self, PageCheck};
use crate::format::schema::{
    enum_word, original_line, Column, COLUMN_COUNT, FORMAT_KNOWN, FORMAT_UNKNOWN, POSTING_FIELDS,
};
use crate::format::skipdata::{self, SkipRecord};
use crate::format::slots::{self, RunsBuilder, SlotRuns};
use crate::format::{
    check_header, crc32, decode_block_entry, decode_footer, decompress_frame, posting, BlockEntry, Bytes, Codec,
    ColumnRef, Corrupt, DirectoryEntry, HeaderProblem, SectionKind, BIT_PACKED_SINCE, BLOCK_ENTRY_SIZE,
    COLUMN_REF_SIZE, COVERED_SPANS_SINCE, FORMAT_VERSION, HEADER_SIZE, MINUS_START_SINCE, PLANES_SINCE, SKIPDATA_SINCE,
    TWINS_SINCE,
};
use crate::record::{
    covered_span, ExtraField, Field, FieldKind, FieldSet, FlowRecord, FormatField, LogStatus, Provenance, Value,
};

/// The bytes of a segment: a memory map, or any buffer (tests use `Vec<u8>`).
pub type SegmentBytes = Box<dyn AsRef<[u8]> + Send + Sync>;

/// The `start` and `end` values at some offsets of a block ([`Segment::read_times_at`]).
pub type TimesAt = (Option<Vec<Option<u64>>>, Option<Vec<Option<u64>>>);

/// One record format of the segment: the fields its lines carried, in line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordFormat {
    pub order: Arc<[FormatField]>,
    /// The known fields of `order`.
    pub fields: FieldSet,
    /// The unknown field names of `order`, in order.
    pub extras: Vec<Arc<str>>,
}

/// A record with the format its line had and the line itself, byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordLine {
    pub record: FlowRecord,
    pub format: Arc<[FormatField]>,
    pub line: Vec<u8>,
}

/// Terms from which [`Segment::postings_union`] gathers postings in a bit per record rather
/// than in a roaring bitmap.
const DENSE_UNION_TERMS: usize = 16;

/// Where a term's posting is ([`Segment::posting_place`]).
struct PostingPlace {
    kind: PostingKind,
    /// Ids the dictionary counts for the term.
    count: u32,
    /// Offset of the posting in the file, for errors.
    at: u64,
}

enum PostingKind {
    /// Stored as no bytes: the same address's posting in the base column.
    Twin(Column),
    /// Stored as no bytes: every id in no other term's posting and not null.
    Complement(NullPosting),
    /// Bytes `lo .. hi` of the column's postings section.
    Stored { lo: u64, hi: u64 },
}

impl PostingPlace {
    fn wrong_size(&self) -> Corrupt {
        Corrupt::new("postings", self.at, "posting size differs from the dictionary's count")
    }
}

pub struct Segment {
    path: PathBuf,
    data: SegmentBytes,
    /// The format version the segment was written in (its postings depend on it).
    version: u32,
    record_count: u64,
    directory_offset: u64,
    /// The footer's CRC-32 of the section directory (checked against the directory on open).
    directory_crc: u32,
    sections: Vec<DirectoryEntry>,
    /// Per section, whether its checksum held, once checked (on first use).
    checked: Vec<OnceLock<bool>>,
    /// Per section with page checksums: the directory index of its page-checksums section,
    /// and which pages were checked.
    pages: Vec<Option<(usize, pages::Checked)>>,
    formats: Vec<RecordFormat>,
    /// Columns present, in the order the column index lists them per block.
    columns: Vec<Column>,
    slot_of: Vec<Option<usize>>,
    /// Blocks, known from the blocks section's size at open.
    block_count: usize,
    /// The block entries, decoded and checked on first use: a search whose postings find
    /// nothing in a segment never needs them (decoding them at open was 14% of the time of a
    /// search for an absent address).
    blocks: OnceLock<Result<Vec<BlockEntry>, Corrupt>>,
}

impl Segment {
    /// Maps a segment file and checks its structure.
    pub fn open(path: &Path) -> Result<Segment, IndexError> {
        let file = std::fs::File::open(path).map_err(|e| IndexError::io(path, e))?;
        let data = super::map(&file).map_err(|e| IndexError::io(path, e))?;
        Segment::from_bytes(path, Box::new(data))
    }

    /// Reads a segment from bytes in memory, with the same checks as [`Segment::open`].
    pub fn from_bytes(path: &Path, data: SegmentBytes) -> Result<Segment, IndexError> {
        let corrupt = |c: Corrupt| IndexError::corrupt(path, c);
        let bytes = (*data).as_ref();
        let version = match check_header(bytes) {
            Ok(version) => version,
            Err(HeaderProblem::NotASegment) => {
                return Err(IndexError::NotASegment {
                    path: path.to_path_buf(),
                })
            }
            Err(HeaderProblem::Version(found)) => {
                return Err(IndexError::Version {
                    path: path.to_path_buf(),
                    found,
                    expected: FORMAT_VERSION,
                })
            }
            Err(HeaderProblem::Corrupt(c)) => return Err(corrupt(c)),
        };
        let (footer, sections) = decode_footer(bytes).map_err(corrupt)?;
        let mut segment = Segment {
            path: path.to_path_buf(),
            version,
            record_count: footer.record_count,
            directory_offset: footer.directory_offset,
            directory_crc: footer.directory_crc,
            checked: sections.iter().map(|_| OnceLock::new()).collect(),
            pages: page_checksums(&sections).map_err(corrupt)?,
            sections,
            formats: Vec::new(),
            columns: Vec::new(),
            slot_of: vec![None; COLUMN_COUNT],
            block_count: 0,
            blocks: OnceLock::new(),
            data,
        };
        segment.load_tables().map_err(corrupt)?;
        Ok(segment)
    }

    fn load_tables(&mut self) -> Result<(), Corrupt> {
        let (formats, columns) = {
            let b = self
                .section_bytes(SectionKind::Formats)?
                .ok_or_else(|| missing("formats"))?;
            decode_formats(&b)?
        };
        for (slot, c) in columns.iter().enumerate() {
            self.slot_of[c.id()] = Some(slot);
        }
        self.formats = formats;
        self.columns = columns;
        let blocks = self
            .sections
            .iter()
            .find(|s| s.kind == SectionKind::Blocks)
            .ok_or_else(|| missing("blocks"))?;
        if blocks.length % BLOCK_ENTRY_SIZE as u64 != 0 {
            return Err(Corrupt::new(
                "blocks",
                blocks.offset,
                "blocks section is not a whole number of entries",
            ));
        }
        self.block_count = (blocks.length / BLOCK_ENTRY_SIZE as u64) as usize;
        // Record ids are 32 bits, and each block holds at least one record: what the block
        // entries, decoded later, must then agree with.
        if self.record_count > u64::from(u32::MAX) || self.block_count as u64 > self.record_count {
            return Err(Corrupt::new(
                "blocks",
                blocks.offset,
                format!(
                    "{} blocks cannot hold the footer's {} records",
                    self.block_count, self.record_count
                ),
            ));
        }
        let ci = self
            .sections
            .iter()
            .find(|s| s.kind == SectionKind::ColumnIndex)
            .ok_or_else(|| missing("column index"))?;
        if ci.length != (self.block_count * self.columns.len() * COLUMN_REF_SIZE) as u64 {
            return Err(Corrupt::new(
                "column index",
                ci.offset,
                "column index size does not match blocks × columns",
            ));
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn bytes(&self) -> &[u8] {
        (*self.data).as_ref()
    }

    /// The format version of the segment's file.
    pub fn format_version(&self) -> u32 {
        self.version
    }

    pub fn record_count(&self) -> u64 {
        self.record_count
    }

    /// The CRC-32 of the section directory, as the footer gives it (a manifest records it).
    pub fn directory_crc(&self) -> u32 {
        self.directory_crc
    }

    pub fn block_count(&self) -> usize {
        self.block_count
    }

    /// The block entries (zone maps), checked to cover the records in order.
    pub fn blocks(&self) -> Result<&[BlockEntry], IndexError> {
        self.block_entries().map_err(|c| IndexError::corrupt(&self.path, c))
    }

    /// The blocks holding any of `ids` (record ids of this segment), in order. Finds each
    /// from the next id instead of testing every block, and reads no block entry when `ids`
    /// is empty.
    pub fn blocks_holding<'a>(&'a self, ids: &'a RoaringBitmap) -> Result<BlocksHolding<'a>, IndexError> {
        Ok(BlocksHolding {
            blocks: if ids.is_empty() { &[] } else { self.blocks()? },
            ids,
            next: ids.min(),
        })
    }

    fn block_entries(&self) -> Result<&[BlockEntry], Corrupt> {
        self.blocks
            .get_or_init(|| self.decode_blocks())
            .as_deref()
            .map_err(Clone::clone)
    }

    fn block(&self, block: usize) -> Result<&BlockEntry, Corrupt> {
        self.block_entries()?
            .get(block)
            .ok_or_else(|| Corrupt::new("blocks", block as u64, "no such block"))
    }

    fn decode_blocks(&self) -> Result<Vec<BlockEntry>, Corrupt> {
        let b = self
            .section_bytes(SectionKind::Blocks)?
            .ok_or_else(|| missing("blocks"))?;
        let mut next = 0u64;
        let mut blocks = Vec::with_capacity(self.block_count);
        // Whole entries: `open` refused a section of any other length.
        for (i, entry) in b.data().chunks_exact(BLOCK_ENTRY_SIZE).enumerate() {
            let e = decode_block_entry(entry.try_into().expect("a whole entry"));
            let at = i * BLOCK_ENTRY_SIZE;
            if u64::from(e.first_record) != next || e.record_count == 0 {
                return Err(b.corrupt(at, "blocks do not cover the records in order"));
            }
            next += u64::from(e.record_count);
            blocks.push(e);
        }
        if next != self.record_count {
            return Err(b.corrupt(
                0,
                format!("blocks hold {next} records, the footer says {}", self.record_count),
            ));
        }
        Ok(blocks)
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    pub fn formats(&self) -> &[RecordFormat] {
        &self.formats
    }

    /// Bytes per section kind, for `flowdex info`.
    pub fn section_sizes(&self) -> Vec<(SectionKind, u64)> {
        let mut sizes: Vec<(SectionKind, u64)> = Vec::new();
        for s in &self.sections {
            match sizes.iter_mut().find(|(k, _)| *k == s.kind) {
                Some((_, n)) => *n += s.length,
                None => sizes.push((s.kind, s.length)),
            }
        }
        sizes.sort();
        sizes
    }

    /// A section's entry and bytes, with the checker of its pages when it has page checksums.
    /// Every section but the column data is checked before use, so damage gives an error,
    /// never a wrong answer: a dictionary or posting is read in place and nothing else would
    /// notice a changed term or id. A section with page checksums is checked page by page as
    /// it is read (through the returned checker); any other, whole on first use. Column data,
    /// the bulk of a segment, is covered frame by frame by its own checksums instead.
    fn section_data(&self, kind: SectionKind, param: Option<usize>) -> Result<Option<SectionRead<'_>>, Corrupt> {
        let Some(i) = self
            .sections
            .iter()
            .position(|s| s.kind == kind && param.is_none_or(|p| s.param as usize == p))
        else {
            return Ok(None);
        };
        let s = &self.sections[i];
        let data = self.section_at(i);
        if let Some((crcs, checked)) = &self.pages[i] {
            let crcs = self.checked_whole(*crcs)?;
            let check = PageCheck::new(data, crcs, checked, kind.name(), s.offset)?;
            return Ok(Some(SectionRead {
                entry: s,
                data,
                pages: Some(check),
            }));
        }
        if kind != SectionKind::ColumnData {
            self.checked_whole(i)?;
        }
        Ok(Some(SectionRead {
            entry: s,
            data,
            pages: None,
        }))
    }

    /// The bytes of section `i`; the directory was checked to point inside the file.
    fn section_at(&self, i: usize) -> &[u8] {
        let s = &self.sections[i];
        &self.bytes()[s.offset as usize..(s.offset + s.length) as usize]
    }

    /// The bytes of section `i`, after checking its checksum (once per process).
    fn checked_whole(&self, i: usize) -> Result<&[u8], Corrupt> {
        let data = self.section_at(i);
        let s = &self.sections[i];
        if !*self.checked[i].get_or_init(|| crc32(data) == s.crc) {
            return Err(Corrupt::new(s.kind.name(), s.offset, "section checksum mismatch"));
        }
        Ok(data)
    }

    /// Checks every section against its CRC-32: what a rewrite of all the segment's records
    /// needs, since it reads its dictionaries and postings only in part.
    pub fn check_sections(&self) -> Result<(), IndexError> {
        for (i, s) in self.sections.iter().enumerate() {
            if crc32(self.section_at(i)) != s.crc {
                let corrupt = match s.kind {
                    SectionKind::ColumnData => self.damaged_frame(i),
                    _ => None,
                };
                let corrupt =
                    corrupt.unwrap_or_else(|| Corrupt::new(s.kind.name(), s.offset, "section checksum mismatch"));
                return Err(IndexError::corrupt(&self.path, corrupt));
            }
        }
        Ok(())
    }

    /// The first frame of column data section `i` whose own CRC-32 fails, named by its block
    /// and column: the section is hundreds of megabytes, its start says little. `None` when
    /// every frame holds (the damage is between frames) or the column index cannot tell.
    fn damaged_frame(&self, i: usize) -> Option<Corrupt> {
        let data = self.section_at(i);
        for block in 0..self.block_count {
            for (slot, column) in self.columns.iter().enumerate() {
                let r = self.column_ref(block, slot).ok()?;
                let end = r.offset.checked_add(u64::from(r.length))?;
                let frame = data.get(usize::try_from(r.offset).ok()?..usize::try_from(end).ok()?)?;
                if crc32(frame) != r.crc {
                    let what = format!("block {block}, column {}: frame checksum mismatch", column.name());
                    return Some(Corrupt::new("column data", self.sections[i].offset + r.offset, what));
                }
            }
        }
        None
    }

    /// A section without page checksums (formats, blocks), checked whole.
    fn section_bytes(&self, kind: SectionKind) -> Result<Option<Bytes<'_, 'static>>, Corrupt> {
        Ok(self
            .section_data(kind, None)?
            .map(|s| Bytes::new(s.data, kind.name(), s.entry.offset)))
    }

    /// The segment's SKIPDATA records with both times, in record order, from its SKIPDATA
    /// section; `None` for a segment older than the section, whose SKIPDATA records only its
    /// log-status posting finds.
    pub fn skipdata(&self) -> Result<Option<Vec<SkipRecord>>, IndexError> {
        self.summary(SectionKind::SkipData, |b, records| skipdata::decode(&b, records))
    }

    /// The segment's (interface, account) subjects with their runs of 5-minute slots, read in
    /// place from its slot-runs section; `None` for a segment older than the section.
    pub fn slot_runs(&self) -> Result<Option<SlotRuns<'_>>, IndexError> {
        self.summary(SectionKind::SlotRuns, SlotRuns::parse)
    }

    /// A section that version 7 added: required from then on, refused before.
    fn summary<'a, T>(
        &'a self,
        kind: SectionKind,
        decode: impl FnOnce(Bytes<'a, 'static>, u64) -> Result<T, Corrupt>,
    ) -> Result<Option<T>, IndexError> {
        let err = |c: Corrupt| IndexError::corrupt(&self.path, c);
        match self.section_bytes(kind).map_err(err)? {
            None if self.version < SKIPDATA_SINCE => Ok(None),
            None => Err(err(missing(kind.name()))),
            Some(b) if self.version < SKIPDATA_SINCE => Err(err(b.corrupt(
                0,
                format!("a version {} segment has no {} section", self.version, kind.name()),
            ))),
            Some(b) => decode(b, self.record_count).map(Some).map_err(err),
        }
    }

    /// The dictionary of a column, if the segment has one.
    pub fn dictionary(&self, column: Column) -> Result<Option<Dictionary<'_>>, IndexError> {
        let err = |c: Corrupt| IndexError::corrupt(&self.path, c);
        let Some(s) = self
            .section_data(SectionKind::Dictionary, Some(column.id()))
            .map_err(err)?
        else {
            return Ok(None);
        };
        let mut dict = Dictionary::parse(s.data, "dictionary", s.entry.offset, s.pages).map_err(err)?;
        if dict.form_versions().is_some_and(|v| !v.contains(&self.version)) {
            return Err(err(Corrupt::new(
                "dictionary",
                s.entry.offset,
                format!("dictionary stored as no version {} dictionary is", self.version),
            )));
        }
        if dict.has_twin_terms() {
            let base = column.twin_base().ok_or_else(|| {
                err(Corrupt::new(
                    "dictionary",
                    s.entry.offset,
                    "only a twin may share terms",
                ))
            })?;
            let base = self
                .dictionary(base)?
                .ok_or_else(|| err(missing("dictionary of the twin base")))?;
            dict.adopt_terms(&base).map_err(err)?;
        }
        Ok(Some(dict))
    }

    /// The record ids of term `term` of a field's dictionary.
    pub fn posting(&self, column: Column, dict: &Dictionary<'_>, term: usize) -> Result<RoaringBitmap, IndexError> {
        let place = self.posting_place(column, dict, term)?;
        let bitmap = match place.kind {
            PostingKind::Twin(base) => self.twin_posting(base, dict, term, place.at)?,
            PostingKind::Complement(nulls) => self.complement_posting(column, dict, term, nulls)?,
            PostingKind::Stored { lo, hi } => self.stored_posting(column, lo, hi, place.count)?,
        };
        if bitmap.len() != u64::from(place.count) {
            return Err(IndexError::corrupt(&self.path, place.wrong_size()));
        }
        Ok(bitmap)
    }

    /// Whether term `term`'s posting is its twin base's (index-format.md, "Twins"): the same
    /// ids as the same address in the base column, so a union with that adds nothing.
    pub fn posting_is_twin(&self, column: Column, dict: &Dictionary<'_>, term: usize) -> Result<bool, IndexError> {
        Ok(matches!(
            self.posting_place(column, dict, term)?.kind,
            PostingKind::Twin(_)
        ))
    }

    /// The record ids of any of `terms` of a field's dictionary. From [`DENSE_UNION_TERMS`]
    /// terms on, stored postings are read straight into a bit per record
    /// ([`posting::DenseIds`]), with the same checks as [`Segment::posting`].
    pub fn postings_union(
        &self,
        column: Column,
        dict: &Dictionary<'_>,
        terms: &[usize],
    ) -> Result<RoaringBitmap, IndexError> {
        if terms.len() < DENSE_UNION_TERMS {
            let mut ids = RoaringBitmap::new();
            for &t in terms {
                ids |= self.posting(column, dict, t)?;
            }
            return Ok(ids);
        }
        let err = |at: u64| move |what: String| IndexError::corrupt(&self.path, Corrupt::new("postings", at, what));
        let mut dense = posting::DenseIds::new(self.record_count);
        for &t in terms {
            let place = self.posting_place(column, dict, t)?;
            match place.kind {
                PostingKind::Stored { lo, hi } => {
                    let (bytes, _) = self.stored_posting_bytes(column, lo, hi)?;
                    posting::decode_into(bytes, place.count, self.version, &mut dense).map_err(err(place.at))?
                }
                _ => dense
                    .add_bitmap(&self.posting(column, dict, t)?)
                    .map_err(err(place.at))?,
            }
        }
        Ok(dense.into_bitmap())
    }

    /// Where term `term`'s posting is, and how many ids it holds.
    fn posting_place(&self, column: Column, dict: &Dictionary<'_>, term: usize) -> Result<PostingPlace, IndexError> {
        let err = |c: Corrupt| IndexError::corrupt(&self.path, c);
        let count = dict
            .posting_ref(term)
            .map_err(err)?
            .ok_or_else(|| err(missing("posting reference")))?
            .count;
        let section = self.postings_section(column)?.entry;
        let (lo, hi) = dict
            .posting_range(term, section.length)
            .map_err(err)?
            .ok_or_else(|| err(missing("posting reference")))?;
        let complement = dict.complement_nulls(section.length).map_err(err)?;
        let kind = match (column.twin_base(), complement) {
            (Some(base), _) if lo == hi && count > 0 && self.version >= TWINS_SINCE => PostingKind::Twin(base),
            (_, Some(nulls)) if lo == hi && count > 0 => PostingKind::Complement(nulls),
            _ => PostingKind::Stored { lo, hi },
        };
        Ok(PostingPlace {
            kind,
            count,
            at: section.offset + lo,
        })
    }

    fn postings_section(&self, column: Column) -> Result<SectionRead<'_>, IndexError> {
        let err = |c: Corrupt| IndexError::corrupt(&self.path, c);
        self.section_data(SectionKind::Postings, Some(column.id()))
            .map_err(err)?
            .ok_or_else(|| err(missing("postings")))
    }

    /// The `count` ids stored in bytes `lo .. hi` of a column's postings section.
    fn stored_posting(&self, column: Column, lo: u64, hi: u64, count: u32) -> Result<RoaringBitmap, IndexError> {
        let (bytes, start) = self.stored_posting_bytes(column, lo, hi)?;
        let err = |what| IndexError::corrupt(&self.path, Corrupt::new("postings", start, what));
        let bitmap = posting::decode(bytes, count, self.version).map_err(err)?;
        if bitmap.max().is_some_and(|m| u64::from(m) >= self.record_count) {
            return Err(err("posting holds an id past the record count".into()));
        }
        Ok(bitmap)
    }

    /// Bytes `lo .. hi` of a column's postings section, checked, with their offset in the file.
    fn stored_posting_bytes(&self, column: Column, lo: u64, hi: u64) -> Result<(&[u8], u64), IndexError> {
        let err = |c: Corrupt| IndexError::corrupt(&self.path, c);
        let SectionRead { entry: s, pages, .. } = self.postings_section(column)?;
        if lo > hi || hi > s.length {
            return Err(err(Corrupt::new(
                "postings",
                s.offset,
                "a posting lies outside its section",
            )));
        }
        if let Some(p) = pages {
            p.range(lo as usize, (hi - lo) as usize).map_err(err)?;
        }
        Ok((
            &self.bytes()[(s.offset + lo) as usize..(s.offset + hi) as usize],
            s.offset + lo,
        ))
    }

    /// The ids of a column's complement posting (stored as no bytes): every record id in no
    /// other term's posting and not null.
    fn complement_posting(
        &self,
        column: Column,
        dict: &Dictionary<'_>,
        term: usize,
        nulls: NullPosting,
    ) -> Result<RoaringBitmap, IndexError> {
        let err = |c: Corrupt| IndexError::corrupt(&self.path, c);
        let all = u32::try_from(self.record_count)
            .map_err(|_| err(Corrupt::new("postings", nulls.range.0, "too many records")))?;
        let mut ids = RoaringBitmap::new();
        ids.insert_range(0..all);
        // Removing ids from a run is a search per id; from a bitmap it is a word operation.
        ids.remove_run_compression();
        ids -= self.null_posting(column, nulls)?;
        let section_len = self.postings_section(column)?.entry.length;
        for other in (0..dict.len()).filter(|&t| t != term) {
            let (a, b) = dict
                .posting_range(other, section_len)
                .map_err(err)?
                .ok_or_else(|| err(missing("posting reference")))?;
            // Only one posting may be the complement: another empty one would be read as one too.
            if a == b {
                return Err(err(Corrupt::new("postings", a, "two postings are stored as no bytes")));
            }
            ids -= self.posting(column, dict, other)?;
        }
        Ok(ids)
    }

    /// The null ids of a column with a complement posting.
    fn null_posting(&self, column: Column, nulls: NullPosting) -> Result<RoaringBitmap, IndexError> {
        let NullPosting { count, range: (lo, hi) } = nulls;
        if count == 0 && lo == hi {
            return Ok(RoaringBitmap::new());
        }
        let bitmap = self.stored_posting(column, lo, hi, count)?;
        if bitmap.len() != u64::from(count) {
            return Err(IndexError::corrupt(
                &self.path,
                Corrupt::new("postings", lo, "null posting size differs from the dictionary's count"),
            ));
        }
        Ok(bitmap)
    }

    /// The ids among `within` whose value of `column` is null: a column with a complement
    /// posting stores them as the null posting; others are found in the column's frames of the
    /// blocks holding `within` that may have nulls (the column index tells most that have none).
    pub fn null_ids(&self, column: Column, within: &RoaringBitmap) -> Result<RoaringBitmap, IndexError> {
        if let Some(dict) = self.dictionary(column)?.filter(Dictionary::has_postings) {
            let section = self.postings_section(column)?.entry;
            let complement = dict
                .complement_nulls(section.length)
                .map_err(|c| IndexError::corrupt(&self.path, c))?;
            if let Some(nulls) = complement {
                return Ok(self.null_posting(column, nulls)? & within);
            }
        }
        let mut ids = RoaringBitmap::new();
        for (i, b) in self.blocks_holding(within)? {
            if self.has_no_nulls(i, column)? {
                continue;
            }
            let Some(values) = self.read_column(i, column)? else {
                // The segment lacks the column: every value is null.
                ids.insert_range(b.first_record..b.first_record + b.record_count);
                continue;
            };
            ids.extend(
                (0..values.len())
                    .filter(|&k| values.get(k).is_none())
                    .map(|k| b.first_record + k as u32),
            );
        }
        Ok(ids & within)
    }

    /// A twin's posting stored as no bytes (at `at`): the ids of the same address in the base
    /// column.
    fn twin_posting(
        &self,
        base: Column,
        dict: &Dictionary<'_>,
        term: usize,
        at: u64,
    ) -> Result<RoaringBitmap, IndexError> {
        let err = |c: Corrupt| IndexError::corrupt(&self.path, c);
        let base_dict = self
            .dictionary(base)?
            .ok_or_else(|| err(missing("dictionary of the twin base")))?;
        // Shared terms are numbered alike; others are found by value.
        let base_term = if dict.has_twin_terms() {
            term
        } else {
            let value = dict.term(term).map_err(err)?;
            base_dict.find(&value).map_err(err)?.ok_or_else(|| {
                err(Corrupt::new(
                    "postings",
                    at,
                    "an empty posting's term is not in the twin base",
                ))
            })?
        };
        self.posting(base, &base_dict, base_term)
    }

    fn column_ref(&self, block: usize, slot: usize) -> Result<ColumnRef, Corrupt> {
        let SectionRead { entry: s, data, pages } = self
            .section_data(SectionKind::ColumnIndex, None)?
            .ok_or_else(|| missing("column index"))?;
        let ci = Bytes::new(data, SectionKind::ColumnIndex.name(), s.offset);
        let at = (block * self.columns.len() + slot) * COLUMN_REF_SIZE;
        if let Some(p) = pages {
            p.range(at, COLUMN_REF_SIZE)?;
        }
        ColumnRef::decode(&ci, at)
    }

    /// Whether no value of number column `column` in `block` is null, told from the column's
    /// decoded length in the column index alone, without reading the frame: index-format.md
    /// ("Column data section") makes it `16 + n·w` without a null bitmap and `16 + ⌈n/8⌉ + n·w`
    /// with one, `w` being 0, 1, 2, 4 or 8, or, bit-packed in `k` bits (version 6, stored frames,
    /// never with a null bitmap), `16 + ⌈n·k/8⌉`. `true` only for a length that a frame without
    /// nulls has and no frame with nulls has; `false` when the length cannot tell (a block of one
    /// record, a packed length equal to one with nulls) or the segment lacks the column.
    pub fn has_no_nulls(&self, block: usize, column: Column) -> Result<bool, IndexError> {
        let (Some(slot), Some(b)) = (self.slot_of[column.id()], self.blocks()?.get(block)) else {
            return Ok(false);
        };
        let r = self
            .column_ref(block, slot)
            .map_err(|c| IndexError::corrupt(&self.path, c))?;
        let n = u64::from(b.record_count);
        let Some(v) = u64::from(r.raw_length).checked_sub(16) else {
            return Ok(false);
        };
        let widths = [0, 1, 2, 4, 8];
        let with_nulls = widths.iter().any(|w| v == n.div_ceil(8) + n * w);
        let whole_bytes = widths.iter().any(|w| v == n * w);
        let packed = self.version >= BIT_PACKED_SINCE
            && r.codec == Codec::Stored
            && (1..=u64::from(column::MAX_PACKED_BITS)).any(|k| v == (n * k).div_ceil(8));
        Ok(n >= 2 && !with_nulls && (whole_bytes || packed))
    }

    /// One column of one block, decompressed; `None` when the segment lacks the column.
    pub fn read_column(&self, block: usize, column: Column) -> Result<Option<ColumnValues>, IndexError> {
        let Some(slot) = self.slot_of[column.id()] else {
            return Ok(None);
        };
        self.read_slot(block, slot)
            .map(Some)
            .map_err(|c| IndexError::corrupt(&self.path, c))
    }

    /// The values at `offsets` (ascending, within the block) of one column of a block, without
    /// decoding the rest; `None` when the segment lacks the column.
    pub fn read_column_at(
        &self,
        block: usize,
        column: Column,
        offsets: &[u32],
    ) -> Result<Option<Vec<Option<u64>>>, IndexError> {
        let Some(slot) = self.slot_of[column.id()] else {
            return Ok(None);
        };
        self.read_slot_at(block, slot, offsets)
            .map(Some)
            .map_err(|c| IndexError::corrupt(&self.path, c))
    }

    /// The `start` and `end` columns of a block (`None` where the segment lacks one), decoding
    /// `start` once though `end` is stored minus it.
    pub fn read_times(&self, block: usize) -> Result<(Option<ColumnValues>, Option<ColumnValues>), IndexError> {
        let err = |c: Corrupt| IndexError::corrupt(&self.path, c);
        let slot = |f: Field| self.slot_of[Column::Field(f).id()];
        let starts = slot(Field::Start)
            .map(|s| self.read_slot(block, s))
            .transpose()
            .map_err(err)?;
        let ends = slot(Field::End)
            .map(|s| self.read_slot_given(block, s, starts.as_ref()))
            .transpose()
            .map_err(err)?;
        Ok((starts, ends))
    }

    /// The `start` and `end` values at `offsets` of a block, as [`Segment::read_times`].
    pub fn read_times_at(&self, block: usize, offsets: &[u32]) -> Result<TimesAt, IndexError> {
        let err = |c: Corrupt| IndexError::corrupt(&self.path, c);
        let slot = |f: Field| self.slot_of[Column::Field(f).id()];
        let starts = slot(Field::Start)
            .map(|s| self.read_slot_at(block, s, offsets))
            .transpose()
            .map_err(err)?;
        let ends = slot(Field::End)
            .map(|s| self.read_slot_at_given(block, s, offsets, starts.as_deref()))
            .transpose()
            .map_err(err)?;
        Ok((starts, ends))
    }

    fn read_slot(&self, block: usize, slot: usize) -> Result<ColumnValues, Corrupt> {
        self.read_slot_given(block, slot, None)
    }

    /// A column of a block; `starts`, when given, is the block's decoded `start` column, which
    /// an `end` stored minus it then does not decode again.
    fn read_slot_given(
        &self,
        block: usize,
        slot: usize,
        starts: Option<&ColumnValues>,
    ) -> Result<ColumnValues, Corrupt> {
        let mut values = self.with_frame(block, slot, |raw, records, encodings, offset| {
            column::decode(raw, records, encodings, "column data", offset)
        })?;
        if values.is_minus_start() {
            let start_slot = self.start_slot_for(block, slot)?;
            match starts {
                Some(starts) => values.add_starts(starts),
                None => values.add_starts(&self.read_slot(block, start_slot)?),
            }
        }
        Ok(values)
    }

    /// The values at `offsets` (ascending) of one column of a block.
    fn read_slot_at(&self, block: usize, slot: usize, offsets: &[u32]) -> Result<Vec<Option<u64>>, Corrupt> {
        self.read_slot_at_given(block, slot, offsets, None)
    }

    /// [`Segment::read_slot_at`], with the `start` values at the same offsets when known.
    fn read_slot_at_given(
        &self,
        block: usize,
        slot: usize,
        offsets: &[u32],
        starts: Option<&[Option<u64>]>,
    ) -> Result<Vec<Option<u64>>, Corrupt> {
        let mut sparse = self.with_frame(block, slot, |raw, records, encodings, offset| {
            column::decode_at(raw, records, offsets, encodings, "column data", offset)
        })?;
        if sparse.minus_start {
            let start_slot = self.start_slot_for(block, slot)?;
            let read;
            let starts = match starts {
                Some(starts) => starts,
                None => {
                    read = self.read_slot_at(block, start_slot, offsets)?;
                    &read
                }
            };
            for (v, start) in sparse.values.iter_mut().zip(starts) {
                *v = v.map(|v| v.wrapping_add(start.unwrap_or(0)));
            }
        }
        Ok(sparse.values)
    }

    /// The slot of `start`, for the `end` column in `slot`, stored minus it: only `end` may be,
    /// and only from version 5.
    fn start_slot_for(&self, block: usize, slot: usize) -> Result<usize, Corrupt> {
        let start = self.slot_of[Column::Field(Field::Start).id()];
        match (self.columns[slot], start) {
            (Column::Field(Field::End), Some(start)) if self.version >= MINUS_START_SINCE => Ok(start),
            (c, _) => Err(Corrupt::new(
                format!("column {} of block {block}", c.name()),
                0,
                "only `end` may be stored minus `start`, and only with a `start` column",
            )),
        }
    }

    /// Decompresses one column of a block into this thread's buffer and hands `decode` its
    /// bytes, the block's record count and the frame's file offset. Errors name the column
    /// and block; the name is built only then, as a needle decodes thousands of frames.
    fn with_frame<T>(
        &self,
        block: usize,
        slot: usize,
        decode: impl FnOnce(&[u8], usize, column::Encodings, u64) -> Result<T, Corrupt>,
    ) -> Result<T, Corrupt> {
        let entry = self.block(block)?;
        let r = self.column_ref(block, slot)?;
        let SectionRead {
            entry: section,
            data: bytes,
            ..
        } = self
            .section_data(SectionKind::ColumnData, None)?
            .ok_or_else(|| missing("column data"))?;
        let data = Bytes::new(bytes, SectionKind::ColumnData.name(), section.offset);
        let stored = data.slice(r.offset as usize, r.length as usize)?;
        if crc32(stored) != r.crc {
            return Err(data.corrupt(r.offset as usize, "column frame checksum mismatch"));
        }
        let frame_offset = section.offset.saturating_add(r.offset);
        let named = |mut c: Corrupt| {
            c.section = format!("column {} of block {block}", self.columns[slot].name());
            c
        };
        let records = entry.record_count as usize;
        // Only stored frames may be bit-packed: a compressed frame's stated length then tells
        // whether it has a null bitmap (`has_no_nulls`). Only compressed frames hold planes:
        // planes help zstd, and a stored frame is packed in bits instead.
        let encodings = column::Encodings {
            bit_packed: self.version >= BIT_PACKED_SINCE && r.codec == Codec::Stored,
            planes: self.version >= PLANES_SINCE && r.codec == Codec::Zstd,
        };
        if r.codec == Codec::Stored {
            return decode(stored, records, encodings, frame_offset).map_err(named);
        }
        FRAME.with(|buffer| {
            let buffer = &mut *buffer.borrow_mut();
            decompress_frame(stored, r.raw_length as usize, buffer)
                .map_err(|e| data.corrupt(r.offset as usize, format!("column frame: {e}")))?;
            decode(buffer, records, encodings, frame_offset).map_err(named)
        })
    }

    /// Every record of a block, rebuilt with all its fields and provenance.
    pub fn read_records(&self, block: usize) -> Result<Vec<FlowRecord>, IndexError> {
        let n = self.blocks()?.get(block).map_or(0, |b| b.record_count);
        self.read_records_at(block, &(0..n).collect::<Vec<_>>(), None, &self.dictionaries())
    }

    /// A cache of the segment's dictionaries for reading records of many of its blocks: each
    /// is parsed once instead of once per block (a search for 1,000 addresses reads 751
    /// blocks, each with a dozen dictionary-coded columns).
    pub fn dictionaries(&self) -> Dictionaries<'_> {
        Dictionaries {
            segment: self,
            parsed: self.columns.iter().map(|_| std::cell::OnceCell::new()).collect(),
        }
    }

    /// The records at `offsets` (ascending, within the block) of a block. Each needed column of
    /// the block is decompressed once; only the asked-for records are rebuilt. With `only`, just
    /// those fields are decoded and set (unknown fields are left out): what an aggregation needs.
    pub fn read_records_at(
        &self,
        block: usize,
        offsets: &[u32],
        only: Option<FieldSet>,
        dicts: &Dictionaries<'_>,
    ) -> Result<Vec<FlowRecord>, IndexError> {
        let mut records = Vec::new();
        self.decode_records(block, offsets, only, dicts, &mut records)?;
        Ok(records)
    }

    /// [`Segment::read_records_at`] into the first `offsets.len()` records of `records`,
    /// reusing the records (and their text buffers) already there, and adding records where
    /// there are too few; records after those are left as they were. A search that reads many
    /// blocks allocates once, not per record and field (a hot address's 650,000 records spent a
    /// tenth of their time in malloc). Returns the number of each record's format, for
    /// [`Segment::original_lines`]. On an error `records` is left empty.
    pub fn read_records_into(
        &self,
        block: usize,
        offsets: &[u32],
        only: Option<FieldSet>,
        dicts: &Dictionaries<'_>,
        records: &mut Vec<FlowRecord>,
    ) -> Result<Vec<usize>, IndexError> {
        self.decode_records(block, offsets, only, dicts, records)
            .inspect_err(|_| records.clear())
    }

    /// The records at `offsets` of a block with their formats and original lines.
    pub fn read_lines_at(
        &self,
        block: usize,
        offsets: &[u32],
        dicts: &Dictionaries<'_>,
    ) -> Result<Vec<RecordLine>, IndexError> {
        let mut records = Vec::new();
        let formats = self.decode_records(block, offsets, None, dicts, &mut records)?;
        let given = records.iter().zip(formats.iter().copied()).zip(offsets.iter().copied());
        let lines = self.original_lines(block, given)?;
        Ok(records
            .into_iter()
            .zip(formats)
            .zip(lines)
            .map(|((record, format_no), line)| RecordLine {
                record,
                format: self.formats[format_no].order.clone(),
                line,
            })
            .collect())
    }

    /// The original lines of records of a block, each given with its format number (from
    /// [`Segment::read_records_into`], all fields decoded) and its offset: the stored line
    /// where the index keeps one, else the line the record writes (`index-format.md`,
    /// "Original lines").
    pub fn original_lines<'r>(
        &self,
        block: usize,
        records: impl IntoIterator<Item = ((&'r FlowRecord, usize), u32)>,
    ) -> Result<Vec<Vec<u8>>, IndexError> {
        let err = |c: Corrupt| IndexError::corrupt(&self.path, c);
        // The stored lines, decompressed when the first record is asked for.
        let mut stored: Option<Option<column::BytesColumn>> = None;
        let mut out = Vec::new();
        for ((record, format_no), offset) in records {
            if stored.is_none() {
                stored = Some(match self.slot_of[Column::OriginalLine.id()] {
                    None => None,
                    Some(slot) => Some(
                        self.with_frame(block, slot, |raw, records, _, offset| {
                            column::decode_bytes(raw, records, "column data", offset)
                        })
                        .map_err(err)?,
                    ),
                });
            }
            let format = self
                .formats
                .get(format_no)
                .ok_or_else(|| err(bad_value("format", offset as usize)))?;
            let mut written = Vec::new();
            record.write_line(&format.order, &mut written);
            let kept = stored
                .as_ref()
                .and_then(Option::as_ref)
                .and_then(|s| s.get(offset as usize));
            out.push(original_line(kept, written).ok_or_else(|| err(bad_value("original line", offset as usize)))?);
        }
        Ok(out)
    }

    /// Decodes the records at `offsets` of a block into the first `offsets.len()` of
    /// `records` (reusing those there, adding records where too few); returns the number of
    /// each one's format.
    fn decode_records(
        &self,
        block: usize,
        offsets: &[u32],
        only: Option<FieldSet>,
        dicts: &Dictionaries<'_>,
        records: &mut Vec<FlowRecord>,
    ) -> Result<Vec<usize>, IndexError> {
        let err = |c: Corrupt| IndexError::corrupt(&self.path, c);
        let n = self.block(block).map_err(err)?.record_count as usize;
        if offsets.iter().any(|&o| o as usize >= n) {
            return Err(err(Corrupt::new(
                "blocks",
                block as u64,
                "record offset outside the block",
            )));
        }
        // Records past the block's count are kept, with their text buffers, for later blocks:
        // truncating to each block's count dropped them, and a needle's blocks hold from one to
        // dozens of matches, so most blocks allocated their records' text again.
        if records.len() < offsets.len() {
            records.resize_with(offsets.len(), FlowRecord::default);
        }
        let mut format_numbers = Vec::with_capacity(offsets.len());
        let mut column_dicts: Vec<Option<&Dictionary<'_>>> = Vec::with_capacity(self.columns.len());
        // Per column, its values at `offsets` (empty for a column not wanted).
        let mut values: Vec<Vec<Option<u64>>> = Vec::with_capacity(self.columns.len());
        let wanted = |c: Column| match (c, only) {
            (Column::OriginalLine, _) | (Column::Extras, Some(_)) => false,
            (_, None) | (Column::Format | Column::Source | Column::Line, _) => true,
            (Column::Field(f), Some(set)) => set.contains(f),
        };
        for (slot, &c) in self.columns.iter().enumerate() {
            if !wanted(c) {
                column_dicts.push(None);
                values.push(Vec::new());
                continue;
            }
            column_dicts.push(if c.stores_term_numbers() {
                dicts.get(slot)?
            } else {
                None
            });
            // Slots are in column-id order: `start` (if wanted) is read before `end`.
            let starts = self.slot_of[Column::Field(Field::Start).id()]
                .filter(|&s| s < slot && c == Column::Field(Field::End))
                .map(|s| &values[s])
                .filter(|v| !v.is_empty() || offsets.is_empty());
            let read = self.read_slot_at_given(block, slot, offsets, starts.map(|v| &v[..]));
            values.push(read.map_err(err)?);
        }
        let loaded: Vec<bool> = self.columns.iter().map(|c| wanted(*c)).collect();
        let slot = |c: Column| self.slot_of[c.id()].ok_or_else(|| err(missing(c.name())));
        let (fmt, src, line) = (slot(Column::Format)?, slot(Column::Source)?, slot(Column::Line)?);
        // Per dictionary column, the last term looked up and its value: a block's records
        // mostly repeat their neighbours' interface, subnet, account and one of their
        // addresses, and each look-up checks pages and (for text) UTF-8.
        let mut last_terms: Vec<Option<(u64, Value<'_>)>> = vec![None; self.columns.len()];
        for (k, (rec, &offset)) in records.iter_mut().zip(offsets).enumerate() {
            let i = offset as usize;
            let format_no = values[fmt][k].unwrap_or(u64::MAX);
            let format = self
                .formats
                .get(format_no as usize)
                .ok_or_else(|| err(bad_value("format", i)))?;
            format_numbers.push(format_no as usize);
            rec.fields = match only {
                Some(set) => FieldSet::from_bits(format.fields.bits() & set.bits()),
                None => format.fields,
            };
            let source = values[src][k]
                .and_then(|s| u32::try_from(s).ok())
                .ok_or_else(|| err(bad_value("source", i)))?;
            rec.provenance = Provenance {
                source,
                line: values[line][k].ok_or_else(|| err(bad_value("line", i)))?,
            };
            rec.extra.clear();
            // The fields given a value or a null here; the record's others are cleared after.
            let mut assigned = FieldSet::EMPTY;
            for (s, &c) in self.columns.iter().enumerate() {
                if !loaded[s] {
                    continue;
                }
                match (c, values[s][k]) {
                    (Column::Field(f), v) if format.fields.contains(f) => {
                        let value = match (v, last_terms[s]) {
                            (Some(v), Some((term, value))) if term == v => Some(value),
                            (Some(v), _) => {
                                let value = self.value(f, v, column_dicts[s]).map_err(err)?;
                                if column_dicts[s].is_some() {
                                    last_terms[s] = Some((v, value));
                                }
                                Some(value)
                            }
                            (None, _) => None,
                        };
                        rec.set_value(f, value)
                            .map_err(|e| err(Corrupt::new(f.name(), i as u64, e.to_string())))?;
                        assigned.insert(f);
                    }
                    (_, None) => {}
                    (Column::Field(f), Some(_)) => return Err(err(bad_value(f.name(), i))),
                    (Column::Extras, Some(v)) => {
                        let d = column_dicts[s].ok_or_else(|| err(missing("extras dictionary")))?;
                        let Term::Bytes(b) = d.term(v as usize).map_err(err)? else {
                            return Err(err(bad_value("extras", i)));
                        };
                        rec.extra = decode_extras(b, &format.extras).ok_or_else(|| err(bad_value("extras", i)))?;
                    }
                    _ => {}
                }
            }
            rec.clear_except(assigned);
        }
        Ok(format_numbers)
    }

    /// The value a column of field `f` stores as `v`: a number, an enum word, or a term of the
    /// field's dictionary `dict`.
    pub fn value<'d>(&self, f: Field, v: u64, dict: Option<&Dictionary<'d>>) -> Result<Value<'d>, Corrupt> {
        let term = |v: u64| -> Result<Term<'d>, Corrupt> {
            let d = dict.ok_or_else(|| missing("dictionary"))?;
            d.term(usize::try_from(v).unwrap_or(usize::MAX))
        };
        Ok(match f.kind() {
            FieldKind::UInt => Value::UInt(v),
            FieldKind::Enum => {
                Value::Str(enum_word(f, v).ok_or_else(|| Corrupt::new(f.name(), v, "enum code out of range"))?)
            }
            FieldKind::Ip => match term(v)? {
                Term::Ip(b) => Value::Ip(ip_from_bytes(b)),
                _ => return Err(Corrupt::new(f.name(), v, "dictionary holds no addresses")),
            },
            FieldKind::Text => match term(v)? {
                Term::Bytes(b) => {
                    Value::Str(std::str::from_utf8(b).map_err(|_| Corrupt::new(f.name(), v, "term is not UTF-8"))?)
                }
                _ => return Err(Corrupt::new(f.name(), v, "dictionary holds no text")),
            },
        })
    }

    /// Checks every checksum and structural invariant: sections, blocks, dictionaries (sorted),
    /// postings (ids in range, equal to the ids whose column holds the term).
    pub fn verify(&self) -> Result<(), IndexError> {
        let err = |c: Corrupt| IndexError::corrupt(&self.path, c);
        self.check_sections()?;
        // Bytes no section covers (alignment padding) must be zero, so that no byte of the file
        // can change unnoticed.
        let mut spans: Vec<(u64, u64)> = self.sections.iter().map(|s| (s.offset, s.offset + s.length)).collect();
        spans.sort();
        let mut at = HEADER_SIZE as u64;
        for (start, end) in spans
            .into_iter()
            .chain([(self.directory_offset, self.directory_offset)])
        {
            if start < at {
                return Err(err(Corrupt::new("directory", start, "sections overlap")));
            }
            if let Some(p) = self.bytes()[at as usize..start as usize].iter().position(|b| *b != 0) {
                return Err(err(Corrupt::new("padding", at + p as u64, "padding byte is not zero")));
            }
            at = end;
        }
        // Page checksums agree with their pages (the whole-section checksums above cover the
        // checksum tables themselves).
        for (i, s) in self.sections.iter().enumerate() {
            if self.pages[i].is_some() {
                let read = self
                    .section_data(s.kind, Some(s.param as usize))
                    .map_err(err)?
                    .expect("the section exists");
                if let Some(check) = read.pages {
                    check.range(0, read.data.len()).map_err(err)?;
                }
            }
        }
        // Every record and original line decodes; the time columns give each term's span.
        // The block entries first: they prove the footer's record count.
        let blocks = self.blocks()?;
        let mut times = Vec::with_capacity(self.record_count as usize);
        let dicts = self.dictionaries();
        for (block, b) in blocks.iter().enumerate() {
            self.read_lines_at(block, &(0..b.record_count).collect::<Vec<_>>(), &dicts)?;
            let start = self.read_column(block, Column::Field(Field::Start))?;
            let end = self.read_column(block, Column::Field(Field::End))?;
            for i in 0..b.record_count as usize {
                let at = |c: &Option<ColumnValues>| c.as_ref().and_then(|c| c.get(i));
                times.push((at(&start), at(&end)));
            }
        }
        for &c in &self.columns {
            let Some(d) = self.dictionary(c)? else {
                if c.stores_term_numbers() {
                    return Err(err(missing("dictionary")));
                }
                continue;
            };
            d.verify().map_err(err)?;
            let indexed = matches!(c, Column::Field(f) if POSTING_FIELDS.contains(&f));
            if indexed != d.has_postings() {
                return Err(err(Corrupt::new(
                    "dictionary",
                    0,
                    format!("{}: postings expected: {indexed}", c.name()),
                )));
            }
            let mut expected = vec![RoaringBitmap::new(); if indexed { d.len() } else { 0 }];
            // Each term's time span: the seconds its records cover, or before version 10 their
            // smallest start and largest end.
            let mut spans = vec![(u64::MAX, 0u64); expected.len()];
            let mut legacy_spans = spans.clone();
            let mut nulls = RoaringBitmap::new();
            let mut first_id = 0u32;
            for block in 0..self.block_count {
                let col = self.read_column(block, c)?.ok_or_else(|| err(missing(c.name())))?;
                for i in 0..col.len() {
                    let Some(v) = col.get(i) else {
                        nulls.insert(first_id + i as u32);
                        continue;
                    };
                    let term = if c.stores_term_numbers() {
                        v
                    } else {
                        match d.find(&Term::UInt(v)).map_err(err)? {
                            Some(t) => t as u64,
                            None => return Err(err(bad_value(c.name(), i))),
                        }
                    };
                    if term >= d.len() as u64 {
                        return Err(err(bad_value(c.name(), i)));
                    }
                    if indexed {
                        let id = first_id + i as u32;
                        expected[term as usize].insert(id);
                        let (start, end) = times[id as usize];
                        if let Some((lo, hi)) = covered_span(start, end) {
                            let span = &mut spans[term as usize];
                            (span.0, span.1) = (span.0.min(lo), span.1.max(hi));
                        }
                        let legacy = &mut legacy_spans[term as usize];
                        legacy.0 = legacy.0.min(start.unwrap_or(u64::MAX));
                        legacy.1 = legacy.1.max(end.unwrap_or(0));
                    }
                }
                first_id += col.len() as u32;
            }
            let section_len = if indexed {
                self.postings_section(c)?.entry.length
            } else {
                0
            };
            if let Some(null_posting) = d.complement_nulls(section_len).map_err(err)? {
                let empty = (0..d.len())
                    .filter_map(|t| d.posting_range(t, section_len).transpose())
                    .filter(|r| r.as_ref().is_ok_and(|(a, b)| a == b))
                    .count();
                if empty != 1 {
                    return Err(err(Corrupt::new(
                        "postings",
                        null_posting.range.0,
                        format!("{}: {empty} postings stored as no bytes, not one complement", c.name()),
                    )));
                }
                if self.null_posting(c, null_posting)? != nulls {
                    return Err(err(Corrupt::new(
                        "postings",
                        null_posting.range.0,
                        format!("{}: null posting differs from the column", c.name()),
                    )));
                }
            }
            for (t, want) in expected.iter().enumerate() {
                if self.posting(c, &d, t)? != *want {
                    return Err(err(Corrupt::new(
                        "postings",
                        t as u64,
                        format!("{} term {t}: posting differs from the column", c.name()),
                    )));
                }
                let r = d
                    .posting_ref(t)
                    .map_err(err)?
                    .expect("indexed dictionaries have references");
                let span = if self.version >= COVERED_SPANS_SINCE {
                    spans[t]
                } else {
                    legacy_spans[t]
                };
                if (r.first_start, r.last_end) != span {
                    return Err(err(Corrupt::new(
                        "dictionary",
                        t as u64,
                        format!("{} term {t}: time span differs from the records", c.name()),
                    )));
                }
            }
        }
        self.verify_summaries()
    }

    /// The SKIPDATA section lists exactly the SKIPDATA records with both times, with the values
    /// their columns hold, and the slot-runs section the runs those columns make.
    fn verify_summaries(&self) -> Result<(), IndexError> {
        let (Some(listed), Some(runs)) = (self.skipdata()?, self.slot_runs()?) else {
            return Ok(());
        };
        let runs = runs.all().map_err(|c| IndexError::corrupt(&self.path, c))?;
        let mut found = Vec::new();
        let mut found_runs = RunsBuilder::default();
        for (block, b) in self.blocks()?.iter().enumerate() {
            let field = |f: Field| self.read_column(block, Column::Field(f));
            let (status, interface, account) = (
                field(Field::LogStatus)?,
                field(Field::InterfaceId)?,
                field(Field::AccountId)?,
            );
            let (start, end) = self.read_times(block)?;
            let source = self.read_column(block, Column::Source)?;
            let at = |c: &Option<ColumnValues>, i: usize| c.as_ref().and_then(|c| c.get(i));
            let term = |c: &Option<ColumnValues>, i: usize| at(c, i).map(|t| u32::try_from(t).unwrap_or(u32::MAX));
            for i in 0..b.record_count as usize {
                let code = at(&status, i).unwrap_or(LogStatus::Ok as u64);
                let status = LogStatus::ALL.get(code as usize).copied().ok_or_else(|| {
                    IndexError::corrupt(&self.path, Corrupt::new("log-status", code, "enum code out of range"))
                })?;
                let times = at(&start, i).zip(at(&end, i));
                if let Some(interface) = term(&interface, i) {
                    found_runs.add(interface, term(&account, i), times, 1 << status as u8);
                }
                let Some((start, end)) = times.filter(|_| status == LogStatus::SkipData) else {
                    continue;
                };
                found.push(SkipRecord {
                    record: b.first_record + i as u32,
                    source: at(&source, i).map_or(u32::MAX, |s| u32::try_from(s).unwrap_or(u32::MAX)),
                    interface: term(&interface, i),
                    account: term(&account, i),
                    start,
                    end,
                });
            }
        }
        let differ = |kind: SectionKind, what: String| {
            let offset = self.sections.iter().find(|s| s.kind == kind).map_or(0, |s| s.offset);
            Err(IndexError::corrupt(&self.path, Corrupt::new(kind.name(), offset, what)))
        };
        let first_difference =
            |a: usize, b: usize, same: &dyn Fn(usize) -> bool| (0..a.min(b)).find(|&k| !same(k)).unwrap_or(a.min(b));
        if found != listed {
            let entry = first_difference(found.len(), listed.len(), &|k| found[k] == listed[k]);
            return differ(
                SectionKind::SkipData,
                format!(
                    "entry {entry}: the section lists {} SKIPDATA records, the columns hold {}, and they differ",
                    listed.len(),
                    found.len()
                ),
            );
        }
        let found_runs = found_runs.finish();
        if found_runs != runs {
            let subject = first_difference(found_runs.len(), runs.len(), &|k| found_runs[k] == runs[k]);
            return differ(
                SectionKind::SlotRuns,
                format!(
                    "subject {subject}: the section holds {} subjects, the columns make {}, and they differ",
                    runs.len(),
                    found_runs.len()
                ),
            );
        }
        // The same runs in another encoding (longer varints, bytes no subject reaches) would
        // let bytes change unnoticed by a reader.
        let stored = self
            .section_data(SectionKind::SlotRuns, None)
            .map_err(|c| IndexError::corrupt(&self.path, c))?
            .map(|s| s.data);
        if stored != Some(&slots::encode(&found_runs)[..]) {
            return differ(
                SectionKind::SlotRuns,
                "the runs are not stored as writers store them".into(),
            );
        }
        Ok(())
    }
}

/// A segment's dictionaries, each parsed on first use ([`Segment::dictionaries`]).
pub struct Dictionaries<'s> {
    segment: &'s Segment,
    /// Per column slot of the segment.
    parsed: Vec<std::cell::OnceCell<Option<Dictionary<'s>>>>,
}

impl<'s> Dictionaries<'s> {
    /// The dictionary of `column`, if the segment has one.
    pub fn of(&self, column: Column) -> Result<Option<&Dictionary<'s>>, IndexError> {
        match self.segment.slot_of[column.id()] {
            Some(slot) => self.get(slot),
            None => Ok(None),
        }
    }

    /// The dictionary of the column in `slot`, if it has one.
    fn get(&self, slot: usize) -> Result<Option<&Dictionary<'s>>, IndexError> {
        let cell = &self.parsed[slot];
        if cell.get().is_none() {
            let _ = cell.set(self.segment.dictionary(self.segment.columns[slot])?);
        }
        Ok(cell.get().and_then(Option::as_ref))
    }
}

thread_local! {
    /// One output buffer per thread for column frames, kept at the size of the largest.
    static FRAME: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Iterator of [`Segment::blocks_holding`]: each block's number and entry.
pub struct BlocksHolding<'a> {
    blocks: &'a [BlockEntry],
    ids: &'a RoaringBitmap,
    next: Option<u32>,
}

impl<'a> Iterator for BlocksHolding<'a> {
    type Item = (usize, &'a BlockEntry);

    fn next(&mut self) -> Option<(usize, &'a BlockEntry)> {
        let id = self.next?;
        let at = self.blocks.partition_point(|b| b.first_record + b.record_count <= id);
        let b = self.blocks.get(at)?;
        self.next = self.ids.range(b.first_record + b.record_count..).next();
        Some((at, b))
    }
}

/// A section as a reader may use it: its directory entry, its bytes, and the checker of its
/// pages when it has page checksums (every byte read must go through it first).
struct SectionRead<'a> {
    entry: &'a DirectoryEntry,
    data: &'a [u8],
    pages: Option<PageCheck<'a>>,
}

/// Per section, its page-checksums section if it has one. A page-checksums section must cover
/// a dictionary, postings or column index section, one page checksum per page, once.
fn page_checksums(sections: &[DirectoryEntry]) -> Result<Vec<Option<(usize, pages::Checked)>>, Corrupt> {
    let mut out: Vec<Option<(usize, pages::Checked)>> = sections.iter().map(|_| None).collect();
    for (i, s) in sections.iter().enumerate() {
        if s.kind != SectionKind::PageChecksums {
            continue;
        }
        let bad = |what: &str| Corrupt::new("page checksums", s.offset, what.to_owned());
        let covered = sections.get(s.param as usize).ok_or_else(|| bad("covers no section"))?;
        if !matches!(
            covered.kind,
            SectionKind::Dictionary | SectionKind::Postings | SectionKind::ColumnIndex
        ) {
            return Err(bad("covers a section without pages"));
        }
        if s.length != pages::page_count(covered.length as usize) as u64 * 4 {
            return Err(bad("is not one checksum per page"));
        }
        let slot = &mut out[s.param as usize];
        if slot.is_some() {
            return Err(bad("covers a section twice"));
        }
        *slot = Some((i, pages::Checked::for_section(covered.length as usize)));
    }
    Ok(out)
}

fn missing(what: &str) -> Corrupt {
    Corrupt::new(what, 0, "section missing")
}

fn bad_value(column: &str, record: usize) -> Corrupt {
    Corrupt::new(
        column,
        record as u64,
        format!("record {record} holds a value out of range"),
    )
}

fn decode_formats(b: &Bytes<'_, '_>) -> Result<(Vec<RecordFormat>, Vec<Column>), Corrupt> {
    let n = b.count(0, 4, "format")?;
    let mut at = 4;
    let mut formats = Vec::with_capacity(n);
    for _ in 0..n {
        let positions = b.count(at, 2, "format position")?;
        at += 4;
        let mut order = Vec::with_capacity(positions);
        let mut fields = FieldSet::EMPTY;
        let mut extras: Vec<Arc<str>> = Vec::new();
        for _ in 0..positions {
            match b.u8(at)? {
                FORMAT_KNOWN => {
                    let id = b.u8(at + 1)?;
                    let field = Field::from_id(id)
                        .ok_or_else(|| b.corrupt(at + 1, "format names a field this version does not know"))?;
                    if fields.contains(field) {
                        return Err(b.corrupt(at + 1, "format names a field twice"));
                    }
                    fields.insert(field);
                    order.push(FormatField::Known(field));
                    at += 2;
                }
                FORMAT_UNKNOWN => {
                    let len = b.u32(at + 1)? as usize;
                    let name = std::str::from_utf8(b.slice(at + 5, len)?)
                        .map_err(|_| b.corrupt(at + 5, "field name is not UTF-8"))?;
                    if extras.iter().any(|e| **e == *name) {
                        return Err(b.corrupt(at + 5, "format names a field twice"));
                    }
                    let name: Arc<str> = Arc::from(name);
                    extras.push(name.clone());
                    order.push(FormatField::Unknown(name));
                    at += 5 + len;
                }
                _ => return Err(b.corrupt(at, "bad format position tag")),
            }
        }
        formats.push(RecordFormat {
            order: order.into(),
            fields,
            extras,
        });
    }
    let cols = b.count(at, 4, "column")?;
    let mut columns = Vec::with_capacity(cols);
    for k in 0..cols {
        let id = b.u32(at + 4 + 4 * k)? as usize;
        let c = Column::from_id(id).ok_or_else(|| b.corrupt(at + 4 + 4 * k, format!("unknown column id {id}")))?;
        if columns.last().is_some_and(|last: &Column| last.id() >= id) {
            return Err(b.corrupt(at + 4 + 4 * k, "column ids are not increasing"));
        }
        columns.push(c);
    }
    if at + 4 + 4 * cols != b.len() {
        return Err(b.corrupt(at + 4 + 4 * cols, "trailing bytes after the column list"));
    }
    Ok((formats, columns))
}

fn decode_extras(mut b: &[u8], names: &[Arc<str>]) -> Option<Vec<ExtraField>> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let (&flag, rest) = b.split_first()?;
        b = rest;
        let value = match flag {
            0 => None,
            1 => {
                let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
                let v = std::str::from_utf8(b.get(4..4 + len)?).ok()?.to_owned();
                b = &b[4 + len..];
                Some(v)
            }
            _ => return None,
        };
        out.push(ExtraField {
            name: name.clone(),
            value,
        });
    }
    b.is_empty().then_some(out)
}
