//! The manifest: the one file that says what an index is (its segments and its sources file).
//! A build publishes a new index by renaming a new manifest over the old one
//! (`index-format.md`, "Manifest" and "Publishing").

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{crc32, Bytes, Corrupt, FORMAT_VERSION};
use crate::input::S3Key;

pub const MANIFEST_MAGIC: [u8; 8] = *b"FDXMANIF";
pub const MANIFEST_MAGIC_OFFSET: usize = 0;
pub const MANIFEST_VERSION_OFFSET: usize = MANIFEST_MAGIC_OFFSET + 8;
pub const MANIFEST_RESERVED_OFFSET: usize = MANIFEST_VERSION_OFFSET + 4;
pub const MANIFEST_LENGTH_OFFSET: usize = MANIFEST_RESERVED_OFFSET + 4;
pub const MANIFEST_HEADER_SIZE: usize = MANIFEST_LENGTH_OFFSET + 8;

/// The index's table of contents. Serialized as JSON inside the binary envelope; field order is
/// fixed and nothing depends on hash-map order, so equal indexes have equal manifests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Increases by one with every published build.
    pub generation: u64,
    /// The number the next new segment file gets.
    pub next_segment: u64,
    pub segments: Vec<SegmentMeta>,
    /// The sources file (`None` while the index has no source).
    pub sources_file: Option<String>,
    /// The checksum that ends the sources file: it tells this file from another build's of
    /// the same name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources_crc: Option<u32>,
    pub source_count: u64,
    /// The id the next new source gets.
    pub next_source: u32,
    /// Rejected lines over all sources.
    pub rejected_lines: u64,
    /// The ids of the sources that failed while read and gave records (any of which may hold a
    /// corrupt value), in id order: an aggregation checks whether it counted theirs. `None` in
    /// indexes built before builds recorded them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_sources: Option<Vec<u32>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// File name inside the index folder.
    pub file: String,
    pub records: u64,
    /// Size of the file in bytes.
    pub size: u64,
    /// Earliest `start` and latest `end` in the segment (absent when no record has one).
    pub min_start: Option<u64>,
    pub max_end: Option<u64>,
    /// The CRC-32 of the segment's section directory, which holds every section's CRC-32:
    /// it tells this segment from another build's of the same name and size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_crc: Option<u32>,
}

/// One source as the reader saw it: identity, hash, counts and every rejected line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceEntry {
    /// The id records carry in their `source` column.
    pub id: u32,
    pub name: String,
    pub path: String,
    /// The path's bytes in hex when they are not UTF-8: `path` then holds U+FFFD in place of
    /// what is not, which names no file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<String>,
    pub entry: Option<String>,
    pub size: u64,
    pub sha256: String,
    pub s3: S3Key,
    pub form: String,
    pub gzip: bool,
    pub lines: u64,
    pub blank_lines: u64,
    pub headers: u64,
    pub records: u64,
    pub rejected: u64,
    pub rejects: Vec<RejectEntry>,
    pub error: Option<String>,
}

impl SourceEntry {
    /// `path` and `path_bytes` for the file at `path`.
    pub fn path_fields(path: &Path) -> (String, Option<String>) {
        #[cfg(unix)]
        let bytes = {
            use std::os::unix::ffi::OsStrExt;
            path.to_str()
                .is_none()
                .then(|| crate::input::hex(path.as_os_str().as_bytes()))
        };
        #[cfg(not(unix))]
        let bytes = None;
        (path.to_string_lossy().into_owned(), bytes)
    }

    /// The file the source was read from, named as it was (its name need not be UTF-8).
    pub fn file_path(&self) -> PathBuf {
        #[cfg(unix)]
        if let Some(bytes) = self.path_bytes.as_deref().and_then(unhex) {
            use std::os::unix::ffi::OsStringExt;
            return PathBuf::from(std::ffi::OsString::from_vec(bytes));
        }
        PathBuf::from(&self.path)
    }
}

/// The bytes `hex` spells, if it spells any.
#[cfg(unix)]
fn unhex(hex: &str) -> Option<Vec<u8>> {
    let digits = hex.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// The ids of `sources` that failed while read and gave records: the manifest's
/// `failed_sources`.
pub fn failed_with_records(sources: &[SourceEntry]) -> Vec<u32> {
    sources
        .iter()
        .filter(|s| s.error.is_some() && s.records > 0)
        .map(|s| s.id)
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectEntry {
    pub line: u64,
    pub reason: String,
}

/// The file that says what the index is.
pub const MANIFEST_FILE: &str = "MANIFEST";

/// The file a build holds locked while it writes the index.
pub const LOCK_FILE: &str = "LOCK";

/// What a build appends to the name of a file it is writing, until it is complete.
pub const TMP_SUFFIX: &str = ".tmp";

/// Whether a file name is a build's temporary name for a manifest, segment or sources file.
pub fn is_temporary(name: &str) -> bool {
    name.strip_suffix(TMP_SUFFIX)
        .is_some_and(|name| name == MANIFEST_FILE || is_segment_file(name) || is_sources_file(name))
}

/// Whether a file name is one an index folder holds: its lock, manifest, segments and sources
/// files, and their temporary names while a build writes them.
pub fn is_index_file(name: &str) -> bool {
    name == LOCK_FILE || name == MANIFEST_FILE || is_segment_file(name) || is_sources_file(name) || is_temporary(name)
}

/// Whether `name` is a segment file's name (`seg-N.fdx`): a file of the index folder itself.
pub fn is_segment_file(name: &str) -> bool {
    is_data_file(name, "seg-")
}

/// Whether `name` is a sources file's name (`sources-N.fdx`), in the index folder itself.
pub fn is_sources_file(name: &str) -> bool {
    is_data_file(name, "sources-")
}

fn is_data_file(name: &str, prefix: &str) -> bool {
    name.starts_with(prefix) && name.ends_with(".fdx") && !name.contains(['/', '\\'])
}

impl Manifest {
    pub fn new() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            ..Manifest::default()
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let payload = serde_json::to_vec(self).expect("a manifest serializes");
        let mut out = Vec::with_capacity(MANIFEST_HEADER_SIZE + payload.len() + 4);
        out.extend_from_slice(&MANIFEST_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&payload);
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a manifest file. A version this code does not read is reported as
    /// `Err(Ok(version))`; damage as `Err(Err(corrupt))`.
    pub fn decode(file: &[u8]) -> Result<Manifest, Result<u32, Corrupt>> {
        let b = Bytes::new(file, "manifest", 0);
        if b.slice(MANIFEST_MAGIC_OFFSET, 8).map_err(Err)? != MANIFEST_MAGIC {
            return Err(Err(b.corrupt(0, "not a flowdex manifest (magic missing)")));
        }
        let len = b.u64(MANIFEST_LENGTH_OFFSET).map_err(Err)?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(MANIFEST_HEADER_SIZE));
        let Some(end) = end.filter(|e| e.checked_add(4) == Some(file.len())) else {
            return Err(Err(b.corrupt(
                MANIFEST_LENGTH_OFFSET,
                "payload length does not match the file size (truncated?)",
            )));
        };
        if b.u32(end).map_err(Err)? != crc32(&file[..end]) {
            return Err(Err(b.corrupt(end, "manifest checksum mismatch")));
        }
        let version = b.u32(MANIFEST_VERSION_OFFSET).map_err(Err)?;
        if !super::is_readable(version) {
            return Err(Ok(version));
        }
        if b.u32(MANIFEST_RESERVED_OFFSET).map_err(Err)? != 0 {
            return Err(Err(b.corrupt(MANIFEST_RESERVED_OFFSET, "reserved bytes are not zero")));
        }
        let manifest: Manifest = serde_json::from_slice(&file[MANIFEST_HEADER_SIZE..end]).map_err(|e| {
            Err(Corrupt::new(
                "manifest",
                MANIFEST_HEADER_SIZE as u64,
                format!("bad payload: {e}"),
            ))
        })?;
        manifest
            .check_names(version)
            .map_err(|why| Err(Corrupt::new("manifest", MANIFEST_HEADER_SIZE as u64, why)))?;
        Ok(manifest)
    }

    /// Checks what a checksum cannot: that the payload's version is the header's, and that every
    /// file it names is a file of the index folder, named once. A hand-edited manifest could
    /// otherwise name `../other/seg-1.fdx`, or one segment twice (doubling its records).
    fn check_names(&self, version: u32) -> Result<(), String> {
        // Builds of version 4 that added to a version 3 index wrote the new header over the old
        // payload version: a payload older than its header is such an index, not damage.
        if self.format_version > version {
            return Err(format!(
                "the payload says version {}, the header {version}",
                self.format_version
            ));
        }
        if self.generation == 0 {
            return Err("generation 0, which no published index has".into());
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.segments {
            if !is_segment_file(&s.file) {
                return Err(format!("`{}` is not a segment file name of the index folder", s.file));
            }
            if !seen.insert(s.file.as_str()) {
                return Err(format!("segment `{}` is listed twice", s.file));
            }
            // The next build names its segments from `next_segment` on: never an existing one.
            let number = s.file["seg-".len()..s.file.len() - ".fdx".len()].parse::<u64>();
            if number.is_ok_and(|n| n >= self.next_segment) {
                return Err(format!(
                    "segment `{}` is not below the next segment number {}",
                    s.file, self.next_segment
                ));
            }
        }
        match &self.sources_file {
            Some(name) if !is_sources_file(name) => {
                Err(format!("`{name}` is not a sources file name of the index folder"))
            }
            _ => Ok(()),
        }
    }

    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_damage_is_caught() {
        let mut m = Manifest::new();
        m.segments.push(SegmentMeta {
            file: "seg-1.fdx".into(),
            records: 3,
            size: 100,
            min_start: Some(1),
            max_end: Some(2),
            directory_crc: Some(7),
        });
        m.next_segment = 2;
        m.generation = 1;
        let bytes = m.encode();
        assert_eq!(Manifest::decode(&bytes), Ok(m.clone()));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(Manifest::decode(&bad).is_err(), "flip at {i}");
        }
        for cut in 0..bytes.len() {
            assert!(Manifest::decode(&bytes[..cut]).is_err());
        }
        // Edits a checksum cannot catch: files outside the folder, a segment twice, a next
        // segment number already taken, a payload of another version.
        let refused = |edit: &dyn Fn(&mut Manifest)| {
            let mut edited = m.clone();
            edit(&mut edited);
            Manifest::decode(&edited.encode()).is_err()
        };
        assert!(refused(&|m| m.segments[0].file = "../other/seg-1.fdx".into()));
        assert!(refused(&|m| m.segments[0].file = "/tmp/seg-1.fdx".into()));
        assert!(refused(&|m| m.segments[0].file = "MANIFEST".into()));
        assert!(refused(&|m| m.segments.push(m.segments[0].clone())));
        assert!(refused(&|m| m.next_segment = 1));
        assert!(refused(&|m| m.sources_file = Some("../sources-1.fdx".into())));
        assert!(refused(&|m| m.format_version = FORMAT_VERSION + 1));
        assert!(refused(&|m| m.generation = 0));
        assert!(!refused(&|m| m.format_version = 3));
        assert!(!refused(&|m| m.sources_file = Some("sources-00000001.fdx".into())));
    }
}
