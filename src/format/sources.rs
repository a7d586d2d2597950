//! The sources file: every source of an index (what the reader saw of it, as JSON) behind a
//! table of ids and offsets, so that a search printing three records parses three entries
//! rather than the thousands a month of S3 objects makes (`index-format.md`, "Sources file").

use super::manifest::SourceEntry;
use super::{crc32, Bytes, Corrupt, FORMAT_VERSION};

pub const SOURCES_MAGIC: [u8; 8] = *b"FDXSRCS\0";
pub const SOURCES_MAGIC_OFFSET: usize = 0;
pub const SOURCES_VERSION_OFFSET: usize = SOURCES_MAGIC_OFFSET + 8;
pub const SOURCES_RESERVED_OFFSET: usize = SOURCES_VERSION_OFFSET + 4;
pub const SOURCES_COUNT_OFFSET: usize = SOURCES_RESERVED_OFFSET + 4;
pub const SOURCES_HEADER_SIZE: usize = SOURCES_COUNT_OFFSET + 8;

pub const SOURCE_REF_ID: usize = 0;
pub const SOURCE_REF_RESERVED: usize = SOURCE_REF_ID + 4;
pub const SOURCE_REF_OFFSET: usize = SOURCE_REF_RESERVED + 4;
pub const SOURCE_REF_SIZE: usize = SOURCE_REF_OFFSET + 8;

/// Encodes `entries` (in increasing id order) as a sources file.
pub fn encode(entries: &[SourceEntry]) -> Vec<u8> {
    let jsons: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| serde_json::to_vec(e).expect("a source entry serializes"))
        .collect();
    let mut out = Vec::with_capacity(SOURCES_HEADER_SIZE + entries.len() * SOURCE_REF_SIZE);
    out.extend_from_slice(&SOURCES_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    let mut offset = (SOURCES_HEADER_SIZE + entries.len() * SOURCE_REF_SIZE) as u64;
    for (e, json) in entries.iter().zip(&jsons) {
        out.extend_from_slice(&e.id.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset += json.len() as u64 + 1;
    }
    for json in &jsons {
        out.extend_from_slice(json);
        out.push(b'\n');
    }
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A sources file read in place. Opening checks the header and the table's size; entries are
/// parsed when asked for; [`Sources::verify`] checks everything.
#[derive(Clone, Copy, Debug)]
pub struct Sources<'a> {
    file: &'a [u8],
    count: usize,
    /// Where the entries end (the checksum follows).
    end: usize,
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

    fn reference(&self, i: usize) -> Result<(u32, usize), Corrupt> {
        let at = SOURCES_HEADER_SIZE + i * SOURCE_REF_SIZE;
        if self.b().u32(at + SOURCE_REF_RESERVED)? != 0 {
            return Err(self
                .b()
                .corrupt(at + SOURCE_REF_RESERVED, "reserved bytes are not zero"));
        }
        let offset = usize::try_from(self.b().u64(at + SOURCE_REF_OFFSET)?).unwrap_or(usize::MAX);
        Ok((self.b().u32(at + SOURCE_REF_ID)?, offset))
    }

    /// The id of entry `i`.
    pub fn id(&self, i: usize) -> Result<u32, Corrupt> {
        Ok(self.reference(i)?.0)
    }

    /// Entry `i`, parsed.
    pub fn entry(&self, i: usize) -> Result<SourceEntry, Corrupt> {
        let (id, start) = self.reference(i)?;
        let end = if i + 1 < self.count {
            self.reference(i + 1)?.1
        } else {
            self.end
        };
        let table_end = SOURCES_HEADER_SIZE + self.count * SOURCE_REF_SIZE;
        if start < table_end || start >= end || end > self.end {
            return Err(self.b().corrupt(
                SOURCES_HEADER_SIZE + i * SOURCE_REF_SIZE,
                "entry offsets are out of order or past the file",
            ));
        }
        let json = self.b().slice(start, end - start)?;
        let entry: SourceEntry = serde_json::from_slice(json.strip_suffix(b"\n").unwrap_or(json))
            .map_err(|e| self.b().corrupt(start, format!("bad source entry: {e}")))?;
        if entry.id != id {
            return Err(self.b().corrupt(start, "entry id differs from the table"));
        }
        Ok(entry)
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

    /// Every entry, after checking the file's checksum, that ids strictly increase and that
    /// every entry parses.
    pub fn verify(&self) -> Result<Vec<SourceEntry>, Corrupt> {
        let bytes = self.b().slice(0, self.end + 4)?;
        if self.b().u32(self.end)? != crc32(&bytes[..self.end]) {
            return Err(self.b().corrupt(self.end, "sources checksum mismatch"));
        }
        let mut entries = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let e = self.entry(i)?;
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
        let entries = vec![entry(0, "a.log"), entry(3, "b.log"), entry(7, "c.log")];
        let bytes = encode(&entries);
        let s = Sources::parse(&bytes).unwrap();
        assert_eq!(s.verify().unwrap(), entries);
        assert_eq!(s.find(3).unwrap(), Some(1));
        assert_eq!(s.find(4).unwrap(), None);
        assert_eq!(s.entry(2).unwrap(), entries[2]);
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
}
