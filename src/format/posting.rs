//! How one term's record ids are stored (index-format.md, "Postings"): one id as itself, a few
//! as gaps in LEB128 varints, more as a portable roaring bitmap. Most terms of addresses and
//! ports occur a handful of times in a segment, where roaring's container headers cost more
//! than the ids: on 20 M records the postings of 2 to 16 ids took 26 to 70 bytes each.

use roaring::RoaringBitmap;

use super::bits::{read_varint, write_varint};

/// The first format version that stores postings of up to [`MAX_GAPS`] ids as gaps; version 3
/// stored them as roaring bitmaps.
const GAPS_SINCE: u32 = 4;

/// Most ids a posting stored as gaps holds. Below this, gaps (at most 5 bytes an id, mostly 2
/// or 3) are smaller than roaring's 8-byte header and 8 bytes per container besides 2 bytes an
/// id; above it, ids grow dense enough for roaring's bitmaps and runs to pay.
pub const MAX_GAPS: u32 = 64;

/// Appends the posting of `ids` (sorted, distinct, at least one) in the current version.
pub fn encode(ids: &[u32], out: &mut Vec<u8>) {
    match ids {
        [single] => out.extend_from_slice(&single.to_le_bytes()),
        _ if ids.len() <= MAX_GAPS as usize => {
            let mut previous: Option<u32> = None;
            for &id in ids {
                // The first id as is, then each id's distance from the previous one, less one
                // (ids are distinct, so no distance is 0).
                let value = match previous {
                    None => id,
                    Some(p) => id - p - 1,
                };
                write_varint(value, out);
                previous = Some(id);
            }
        }
        _ => {
            let mut bitmap = RoaringBitmap::from_sorted_iter(ids.iter().copied()).expect("posting ids are sorted");
            bitmap.optimize();
            bitmap.serialize_into(out).expect("writing to a Vec cannot fail");
        }
    }
}

/// Decodes a posting of `count` ids written by format `version`; `Err` says what is wrong.
pub fn decode(bytes: &[u8], count: u32, version: u32) -> Result<RoaringBitmap, String> {
    match (count, bytes) {
        (1, &[a, b, c, d]) => Ok(RoaringBitmap::from_iter([u32::from_le_bytes([a, b, c, d])])),
        (1, _) => Err("a one-record posting is not 4 bytes".into()),
        (2.., _) if count <= MAX_GAPS && version >= GAPS_SINCE => decode_gaps(bytes, count),
        _ => RoaringBitmap::deserialize_from(bytes).map_err(|e| format!("bad roaring bitmap: {e}")),
    }
}

fn decode_gaps(mut bytes: &[u8], count: u32) -> Result<RoaringBitmap, String> {
    let mut ids = Vec::with_capacity(count as usize);
    let mut previous: Option<u32> = None;
    while !bytes.is_empty() && ids.len() <= count as usize {
        let value = read_varint(&mut bytes)?;
        let id = match previous {
            None => Some(value),
            Some(p) => p.checked_add(value).and_then(|n| n.checked_add(1)),
        }
        .ok_or("a posting's ids run past 2^32")?;
        ids.push(id);
        previous = Some(id);
    }
    if ids.len() != count as usize || !bytes.is_empty() {
        return Err(format!("a posting of {count} ids holds another number"));
    }
    Ok(RoaringBitmap::from_sorted_iter(ids).expect("each id exceeds the one before"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_of_posting_comes_back() {
        let shapes: Vec<Vec<u32>> = vec![
            vec![7],
            vec![0, 1],
            vec![0, u32::MAX],
            vec![5, 300, 70_000, 1 << 20, u32::MAX - 1],
            (0..MAX_GAPS).map(|i| i * 5_000).collect(),
            (0..=MAX_GAPS).map(|i| i * 3).collect(),
            (100..10_000).collect(),
        ];
        for ids in shapes {
            let mut bytes = Vec::new();
            encode(&ids, &mut bytes);
            let back = decode(&bytes, ids.len() as u32, GAPS_SINCE).unwrap();
            assert_eq!(back.iter().collect::<Vec<_>>(), ids);
        }
    }

    #[test]
    fn a_few_ids_take_a_few_bytes() {
        let mut bytes = Vec::new();
        encode(&[1_000, 1_200, 300_000], &mut bytes);
        // 1000 and 199 take two bytes each, 298,799 three.
        assert_eq!(bytes.len(), 7);
    }

    #[test]
    fn damaged_gaps_are_errors() {
        let mut bytes = Vec::new();
        encode(&[1, 2, 3], &mut bytes);
        assert!(decode(&bytes, 4, GAPS_SINCE).is_err(), "fewer ids than counted");
        assert!(decode(&bytes[..2], 3, GAPS_SINCE).is_err(), "fewer ids than counted");
        assert!(
            decode(&[0xff, 0xff, 0xff, 0xff, 0x7f, 0], 2, GAPS_SINCE).is_err(),
            "past 32 bits"
        );
        assert!(decode(&[0xff, 0xff], 2, GAPS_SINCE).is_err(), "cut off");
        assert!(
            decode(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0], 2, GAPS_SINCE).is_err(),
            "wraps past 2^32"
        );
        assert!(decode(&[], 2, GAPS_SINCE).is_err(), "empty");
    }

    #[test]
    fn version_3_postings_are_roaring_bitmaps() {
        let ids = [3u32, 9, 27];
        let mut bytes = Vec::new();
        RoaringBitmap::from_sorted_iter(ids)
            .unwrap()
            .serialize_into(&mut bytes)
            .unwrap();
        assert_eq!(decode(&bytes, 3, 3).unwrap().iter().collect::<Vec<_>>(), ids);
    }
}
