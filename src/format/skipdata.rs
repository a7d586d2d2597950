//! The SKIPDATA section (format 7): every SKIPDATA record of a segment with the values a
//! coverage check needs (`index-format.md`, "SKIPDATA section"). A search that names no
//! interface warns about SKIPDATA anywhere in its window; finding it through the log-status
//! posting meant decompressing four columns of every block holding one (1,640 of 19,545 blocks
//! for 1,923 records of 20 M), half the time of a needle search. AWS writes SKIPDATA rarely, so the section is
//! small; it is a zstd frame so that a log made of little else does not double the index.

use super::{decompress_frame, Bytes, Corrupt};

/// Bytes before the zstd frame: the entry count and the frame's decompressed length.
pub const HEADER_SIZE: usize = 8;

/// Bytes of one entry.
pub const ENTRY_SIZE: usize = 32;

/// A term number field holding no term (the record has no value for the field).
pub const NO_TERM: u32 = u32::MAX;

/// One SKIPDATA record: its id in the segment, and its values as the segment's columns hold
/// them (term numbers for the text fields, the source id with the segment's base added).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkipRecord {
    pub record: u32,
    pub source: u32,
    pub interface: Option<u32>,
    pub account: Option<u32>,
    pub start: u64,
    pub end: u64,
}

/// The section's bytes for `records` (in record order).
pub fn encode(records: &[SkipRecord]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(records.len() * ENTRY_SIZE);
    for r in records {
        raw.extend_from_slice(&r.record.to_le_bytes());
        raw.extend_from_slice(&r.source.to_le_bytes());
        raw.extend_from_slice(&r.interface.unwrap_or(NO_TERM).to_le_bytes());
        raw.extend_from_slice(&r.account.unwrap_or(NO_TERM).to_le_bytes());
        raw.extend_from_slice(&r.start.to_le_bytes());
        raw.extend_from_slice(&r.end.to_le_bytes());
    }
    let frame = zstd::bulk::compress(&raw, 3).expect("zstd compresses into a growable buffer");
    let mut out = Vec::with_capacity(HEADER_SIZE + frame.len());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&frame);
    out
}

/// The records of a section, checked to be in strictly rising record order below
/// `record_count`.
pub fn decode(b: &Bytes<'_, '_>, record_count: u64) -> Result<Vec<SkipRecord>, Corrupt> {
    let count = b.u32(0)? as usize;
    // Ids rise strictly below the record count: a larger count is refused before allocating.
    if count as u64 > record_count {
        return Err(b.corrupt(0, format!("{count} entries in a segment of {record_count} records")));
    }
    let length = b.u32(4)? as usize;
    let frame = b.slice(HEADER_SIZE, b.len().saturating_sub(HEADER_SIZE))?;
    if count.checked_mul(ENTRY_SIZE) != Some(length) {
        return Err(b.corrupt(4, format!("{length} bytes do not hold {count} entries")));
    }
    let mut raw = Vec::new();
    decompress_frame(frame, length, &mut raw).map_err(|e| b.corrupt(HEADER_SIZE, e))?;
    let entries = Bytes::new(&raw, "skipdata entries", 0);
    let term = |at: usize| -> Result<Option<u32>, Corrupt> { Ok(Some(entries.u32(at)?).filter(|t| *t != NO_TERM)) };
    let mut out = Vec::with_capacity(count);
    for at in (0..length).step_by(ENTRY_SIZE) {
        let r = SkipRecord {
            record: entries.u32(at)?,
            source: entries.u32(at + 4)?,
            interface: term(at + 8)?,
            account: term(at + 12)?,
            start: entries.u64(at + 16)?,
            end: entries.u64(at + 24)?,
        };
        let rising = out.last().is_none_or(|p: &SkipRecord| p.record < r.record);
        if !rising || u64::from(r.record) >= record_count {
            return Err(entries.corrupt(at, format!("record {} out of order or past the segment", r.record)));
        }
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u32) -> SkipRecord {
        SkipRecord {
            record: id,
            source: 7,
            interface: Some(id * 2),
            account: None,
            start: 1_700_000_000 + u64::from(id),
            end: 1_700_000_060,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let records: Vec<SkipRecord> = [0, 5, 9].map(record).to_vec();
        let bytes = encode(&records);
        assert_eq!(decode(&Bytes::new(&bytes, "skipdata", 0), 10).unwrap(), records);
        assert_eq!(decode(&Bytes::new(&encode(&[]), "skipdata", 0), 0).unwrap(), []);
        // A record past the segment, and records out of order.
        assert!(decode(&Bytes::new(&bytes, "skipdata", 0), 9).is_err());
        let swapped = encode(&[record(5), record(0)]);
        assert!(decode(&Bytes::new(&swapped, "skipdata", 0), 10).is_err());
        // A count that disagrees with the length, a frame cut short, a length beyond any frame.
        let mut wrong = bytes.clone();
        wrong[0] = 4;
        assert!(decode(&Bytes::new(&wrong, "skipdata", 0), 10).is_err());
        assert!(decode(&Bytes::new(&bytes[..bytes.len() - 1], "skipdata", 0), 10).is_err());
        let mut huge = bytes.clone();
        huge[..8].copy_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0x20]);
        assert!(decode(&Bytes::new(&huge, "skipdata", 0), 10).is_err());
        assert!(decode(&Bytes::new(&huge, "skipdata", 0), u64::MAX).is_err());
        assert!(decode(&Bytes::new(&bytes[..6], "skipdata", 0), 10).is_err());
    }
}
