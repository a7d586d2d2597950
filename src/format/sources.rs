//! The sources file: every source of an index (what the reader saw of it, as JSON) behind a
//! table of ids and offsets, so that a search printing three records parses three entries
//! rather than the thousands a month of S3 objects makes (`index-format.md`, "Sources file").
//! From version 6 the entries are zstd-compressed in chunks of [`SOURCES_PER_CHUNK`]: their
//! paths and S3 keys repeat from one source to the next, and a chunk costs tens of
//! microseconds to decompress.

use super::manifest::SourceEntry;
use super::{crc32, decompress_frame, Bytes, Corrupt, FORMAT_VERSION};

pub const SOURCES_MAGIC: [u8; 8] = *b"FDXSRCS\0";
pub const SOURCES_MAGIC_OFFSET: usize = 0;
pub const SOURCES_VERSION_OFFSET: usize = SOURCES_MAGIC_OFFSET + 8;
pub const SOURCES_RESERVED_OFFSET: usize = SOURCES_VERSION_OFFSET + 4;
pub const SOURCES_COUNT_OFFSET: usize = SOURCES_RESERVED_OFFSET + 4;
pub const SOURCES_HEADER_SIZE: usize = SOURCES_COUNT_OFFSET + 8;

pub const SOURCE_REF_ID: usize = 0;
pub const SOURCE_REF_CHUNK_LENGTH: usize = SOURCE_REF_ID + 4;
pub const SOURCE_REF_OFFSET: usize = SOURCE_REF_CHUNK_LENGTH + 4;
pub const SOURCE_REF_SIZE: usize = SOURCE_REF_OFFSET + 8;

/// What printing a record needs of its source: its name, and whether reading it failed (its
/// records may then hold corrupt values). The entry's other fields are skipped unparsed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct SourceLabel {
    pub id: u32,
    pub name: String,
    pub error: Option<String>,
}

impl SourceLabel {
    pub fn of(source: &SourceEntry) -> SourceLabel {
        SourceLabel {
            id: source.id,
            name: source.name.clone(),
            error: source.error.clone(),
        }
    }

    /// The label of a record whose source the index lacks.
    pub fn unknown() -> SourceLabel {
        SourceLabel {
            id: u32::MAX,
            name: "(unknown source)".into(),
            error: None,
        }
    }
}

/// What an entry parsed in part or whole must hold: the id its table names.
trait HasId {
    fn id(&self) -> u32;
}

impl HasId for SourceLabel {
    fn id(&self) -> u32 {
        self.id
    }
}

impl HasId for SourceEntry {
    fn id(&self) -> u32 {
        self.id
    }
}

/// Entries per compressed chunk (version 6).
pub const SOURCES_PER_CHUNK: usize = 64;

/// The first version whose entries are compressed in chunks.
const CHUNKS_SINCE: u32 = 6;

/// Encodes `entries` (in increasing id order) as a sources file.
pub fn encode(entries: &[SourceEntry]) -> Vec<u8> {
    let mut chunks: Vec<(Vec<u8>, u32)> = Vec::with_capacity(entries.len().div_ceil(SOURCES_PER_CHUNK));
    for chunk in entries.chunks(SOURCES_PER_CHUNK) {
        let mut text = Vec::new();
        for e in chunk {
            serde_json::to_writer(&mut text, e).expect("a source entry serializes");
            text.push(b'\n');
        }
        let compressed = zstd::bulk::compress(&text, 3).expect("zstd compresses into a growable buffer");
        let length = u32::try_from(text.len()).expect("a chunk of source entries is under 4 GiB");
        chunks.push((compressed, length));
    }
    let mut out = Vec::with_capacity(SOURCES_HEADER_SIZE + entries.len() * SOURCE_REF_SIZE);
    out.extend_from_slice(&SOURCES_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    let mut offset = (SOURCES_HEADER_SIZE + entries.len() * SOURCE_REF_SIZE) as u64;
    for (chunk, (compressed, length)) in entries.chunks(SOURCES_PER_CHUNK).zip(&chunks) {
        for e in chunk {
            out.extend_from_slice(&e.id.to_le_bytes());
            out.extend_from_slice(&length.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
        }
        offset += compressed.len() as u64;
    }
    for (compressed, _) in &chunks {
        out.extend_from_slice(compressed);
    }
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The checksum a sources file ends with, which a manifest records.
pub fn stored_crc(file: &[u8]) -> u32 {
    let tail: [u8; 4] = file[file.len().saturating_sub(4)..].try_into().unwrap_or_default();
    u32::from_le_bytes(tail)
}

/// The last decompressed chunk of a sources file: lookups in id order (a search naming the
/// sources of its hits) decompress each chunk once.
#[derive(Debug, Default)]
pub struct ChunkCache {
    chunk: Option<usize>,
    text: Vec<u8>,
    /// Where each entry's line starts in `text`, and where the last one ends.
    lines: Vec<usize>,
}

/// A sources file read in place. Opening checks the header and the table's size; entries are
/// parsed when asked for; [`Sources::verify`] checks everything.
#[derive(Clone, Copy, Debug)]
pub struct Sources<'a> {
    file: &'a [u8],
    count: usize,
    /// Where the entries end (the checksum follows).
    end: usize,
    /// Entries are compressed in chunks (version 6).
    chunked: bool,
}

impl<'a> Sources<'a> {
    /// Reads the header. A version this code does not read is `Err(Ok(version))`.
    pub fn parse(file: &'a [u8]) -> Result<Sources<'a>, Result<u32, Corrupt>> {
        let b = Bytes::new(file, "sources", 0);
        if b.slice(SOURCES_MAGIC_OFFSET, 8).map_err(Err)? != SOURCES_MAGIC {
            return Err(Err(b.corrupt(0, "not a flowdex sources file (magic missing)")));
        }
        let version = b.u32(SOURCES_VERSION_OFFSET).map_err(Err)?;
        if !super::is_readable(version) {
            return Err(Ok(version));
        }
        if b.u32(SOURCES_RESERVED_OFFSET).map_err(Err)? != 0 {
            return Err(Err(b.corrupt(SOURCES_RESERVED_OFFSET, "reserved bytes are not zero")));
        }
        let count = usize::try_from(b.u64(SOURCES_COUNT_OFFSET).map_err(Err)?).unwrap_or(usize::MAX);
        let fits = count
            .checked_mul(SOURCE_REF_SIZE)
            .and_then(|t| t.checked_add(SOURCES_HEADER_SIZE + 4))
            .is_some_and(|n| n <= file.len());
        if !fits {
            return Err(Err(
                b.corrupt(SOURCES_COUNT_OFFSET, "source count does not fit in the file")
            ));
        }
        Ok(Sources {
            file,
            count,
            end: file.len() - 4,
            chunked: version >= CHUNKS_SINCE,
        })
    }

    fn b(&self) -> Bytes<'a, 'static> {
        Bytes::new(self.file, "sources", 0)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Entry `i`'s id, chunk length (version 6; zero before) and offset.
    fn reference(&self, i: usize) -> Result<(u32, u32, usize), Corrupt> {
        let at = SOURCES_HEADER_SIZE + i * SOURCE_REF_SIZE;
        let chunk_length = self.b().u32(at + SOURCE_REF_CHUNK_LENGTH)?;
        if chunk_length != 0 && !self.chunked {
            return Err(self
                .b()
                .corrupt(at + SOURCE_REF_CHUNK_LENGTH, "reserved bytes are not zero"));
        }
        let offset = usize::try_from(self.b().u64(at + SOURCE_REF_OFFSET)?).unwrap_or(usize::MAX);
        Ok((self.b().u32(at + SOURCE_REF_ID)?, chunk_length, offset))
    }

    /// The id of entry `i`.
    pub fn id(&self, i: usize) -> Result<u32, Corrupt> {
        Ok(self.reference(i)?.0)
    }

    /// The bytes of what entry `i` is stored in: the entry itself before version 6, else its
    /// chunk (compressed), with the chunk's decompressed length.
    fn stored(&self, i: usize) -> Result<(usize, &'a [u8], u32), Corrupt> {
        let step = if self.chunked { SOURCES_PER_CHUNK } else { 1 };
        let first = i / step * step;
        let (_, length, start) = self.reference(first)?;
        let end = match first + step {
            next if next < self.count => self.reference(next)?.2,
            _ => self.end,
        };
        let table_end = SOURCES_HEADER_SIZE + self.count * SOURCE_REF_SIZE;
        if start < table_end || start >= end || end > self.end {
            return Err(self.b().corrupt(
                SOURCES_HEADER_SIZE + i * SOURCE_REF_SIZE,
                "entry offsets are out of order or past the file",
            ));
        }
        let (_, own_length, own_start) = self.reference(i)?;
        if (own_length, own_start) != (length, start) {
            return Err(self.b().corrupt(
                SOURCES_HEADER_SIZE + i * SOURCE_REF_SIZE,
                "entry's chunk differs from its chunk's first entry's",
            ));
        }
        Ok((start, self.b().slice(start, end - start)?, length))
    }

    /// Entry `i`, parsed; `cache` keeps the last chunk decompressed.
    pub fn entry(&self, i: usize, cache: &mut ChunkCache) -> Result<SourceEntry, Corrupt> {
        self.read_entry(i, cache)
    }

    /// Entry `i`'s name and error, the only fields parsed: what printing a record needs.
    pub fn label(&self, i: usize, cache: &mut ChunkCache) -> Result<SourceLabel, Corrupt> {
        self.read_entry(i, cache)
    }

    /// Entry `i`'s JSON read as `T`, whose id must be the table's.
    fn read_entry<T: serde::de::DeserializeOwned + HasId>(
        &self,
        i: usize,
        cache: &mut ChunkCache,
    ) -> Result<T, Corrupt> {
        let (id, ..) = self.reference(i)?;
        let (start, stored, length) = self.stored(i)?;
        let json = if self.chunked {
            let chunk = i / SOURCES_PER_CHUNK;
            if cache.chunk != Some(chunk) {
                cache.chunk = None;
                cache.text = self.decompress(start, stored, length)?;
                cache.lines.clear();
                cache.lines.push(0);
                cache
                    .lines
                    .extend(memchr::memchr_iter(b'\n', &cache.text).map(|at| at + 1));
                let entries = SOURCES_PER_CHUNK.min(self.count - chunk * SOURCES_PER_CHUNK);
                if cache.lines.len() != entries + 1 || cache.text.last() != Some(&b'\n') {
                    return Err(self.b().corrupt(start, "a chunk holds other entries than its table"));
                }
                cache.chunk = Some(chunk);
            }
            let k = i % SOURCES_PER_CHUNK;
            &cache.text[cache.lines[k]..cache.lines[k + 1] - 1]
        } else {
            stored.strip_suffix(b"\n").unwrap_or(stored)
        };
        let parsed: T =
            serde_json::from_slice(json).map_err(|e| self.b().corrupt(start, format!("bad source entry: {e}")))?;
        if parsed.id() != id {
            return Err(self.b().corrupt(start, "entry id differs from the table"));
        }
        Ok(parsed)
    }

    /// A chunk's text, of the length its table states, which the chunk must be able to hold.
    fn decompress(&self, start: usize, stored: &[u8], length: u32) -> Result<Vec<u8>, Corrupt> {
        let mut text = Vec::new();
        decompress_frame(stored, length as usize, &mut text)
            .map_err(|e| self.b().corrupt(start, format!("chunk: {e}")))?;
        Ok(text)
    }

    /// The position of the entry with `id`, by binary search (ids increase).
    pub fn find(&self, id: u32) -> Result<Option<usize>, Corrupt> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.id(mid)?.cmp(&id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(mid)),
            }
        }
        Ok(None)
    }

    /// Checks the file's checksum: what a reader does before it uses any entry, since the
    /// entries' compressed chunks carry no checksum of their own (2.2 MB for 25,921 sources:
    /// a fraction of a millisecond).
    pub fn check(&self) -> Result<(), Corrupt> {
        let bytes = self.b().slice(0, self.end + 4)?;
        if self.b().u32(self.end)? != crc32(&bytes[..self.end]) {
            return Err(self.b().corrupt(self.end, "sources checksum mismatch"));
        }
        Ok(())
    }

    /// Every entry, after checking the file's checksum, that ids strictly increase and that
    /// every entry parses (each chunk holding exactly its entries).
    pub fn verify(&self) -> Result<Vec<SourceEntry>, Corrupt> {
        self.check()?;
        let mut entries = Vec::with_capacity(self.count);
        let mut cache = ChunkCache::default();
        for i in 0..self.count {
            let e = self.entry(i, &mut cache)?;
            if entries.last().is_some_and(|prev: &SourceEntry| prev.id >= e.id) {
                return Err(self
                    .b()
                    .corrupt(SOURCES_HEADER_SIZE + i * SOURCE_REF_SIZE, "ids do not increase"));
            }
            entries.push(e);
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u32, name: &str) -> SourceEntry {
        SourceEntry {
            id,
            name: name.into(),
            path: name.into(),
            path_bytes: None,
            entry: None,
            size: 10,
            sha256: "ab".repeat(32),
            s3: Default::default(),
            form: "s3-text".into(),
            gzip: true,
            lines: 3,
            blank_lines: 0,
            headers: 1,
            records: 2,
            rejected: 0,
            rejects: Vec::new(),
            error: None,
        }
    }

    #[test]
    fn round_trip_lookup_and_every_damage_is_caught_by_verify() {
        // Three chunks, the last one short.
        let entries: Vec<SourceEntry> = (0..150u32).map(|i| entry(i * 3, &format!("{i}.log"))).collect();
        let bytes = encode(&entries);
        let s = Sources::parse(&bytes).unwrap();
        assert_eq!(s.verify().unwrap(), entries);
        assert_eq!(s.find(3).unwrap(), Some(1));
        assert_eq!(s.find(4).unwrap(), None);
        let mut cache = ChunkCache::default();
        for i in [2, 149, 64, 63, 0, 128] {
            assert_eq!(s.entry(i, &mut cache).unwrap(), entries[i]);
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            let caught = Sources::parse(&bad).map_or(true, |s| s.verify().is_err());
            assert!(caught, "flip at {i}");
        }
        for cut in 0..bytes.len() {
            let caught = Sources::parse(&bytes[..cut]).map_or(true, |s| s.verify().is_err());
            assert!(caught, "cut at {cut}");
        }
    }

    #[test]
    fn chunks_that_disagree_with_their_table_are_refused_even_under_a_good_checksum() {
        let entries: Vec<SourceEntry> = (0..150u32).map(|i| entry(i, &format!("{i}.log"))).collect();
        let bytes = encode(&entries);
        let resealed = |mut b: Vec<u8>| {
            let end = b.len() - 4;
            let crc = crc32(&b[..end]);
            b[end..].copy_from_slice(&crc.to_le_bytes());
            b
        };
        let reference = |i: usize| SOURCES_HEADER_SIZE + i * SOURCE_REF_SIZE;
        let length_at = |i: usize| reference(i) + SOURCE_REF_CHUNK_LENGTH;
        let mut damaged = Vec::new();
        // One entry's chunk length or offset differs from its chunk's first entry's.
        let mut b = bytes.clone();
        b[length_at(5)] ^= 1;
        damaged.push(b);
        let mut b = bytes.clone();
        b[reference(70) + SOURCE_REF_OFFSET] ^= 1;
        damaged.push(b);
        // A whole chunk states a length one longer than its text.
        let mut b = bytes.clone();
        for i in 64..128 {
            let at = length_at(i);
            let length = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) + 1;
            b[at..at + 4].copy_from_slice(&length.to_le_bytes());
        }
        damaged.push(b);
        // The table claims one entry fewer: the last chunk holds one line too many.
        let mut b = bytes.clone();
        b[SOURCES_COUNT_OFFSET..SOURCES_COUNT_OFFSET + 8].copy_from_slice(&149u64.to_le_bytes());
        damaged.push(b);
        // A version 5 file has no chunk lengths.
        let mut b = bytes.clone();
        b[SOURCES_VERSION_OFFSET..SOURCES_VERSION_OFFSET + 4].copy_from_slice(&5u32.to_le_bytes());
        damaged.push(b);
        for (k, b) in damaged.into_iter().enumerate() {
            let b = resealed(b);
            let caught = Sources::parse(&b).map_or(true, |s| s.verify().is_err());
            assert!(caught, "damage {k}");
        }
    }
}
