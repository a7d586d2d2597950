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

/// Record ids as a bit per record: where many postings are gathered into one set. OR-ing
/// postings one by one into a roaring bitmap merges its growing arrays again for each one (the
/// 362 terms of `10.0.0.0/8` on 20 M records took 50 ms so), and a roaring bitmap's iterator
/// costs several nanoseconds an id; reading each stored posting straight into bits does neither.
pub struct DenseIds {
    words: Vec<u64>,
    records: u64,
}

impl DenseIds {
    /// An empty set of ids below `records`.
    pub fn new(records: u64) -> DenseIds {
        DenseIds {
            words: vec![0; records.div_ceil(64) as usize],
            records,
        }
    }

    /// Adds the ids of a decoded posting.
    pub fn add_bitmap(&mut self, ids: &RoaringBitmap) -> Result<(), String> {
        ids.iter().try_for_each(|id| self.insert(id))
    }

    fn insert(&mut self, id: u32) -> Result<(), String> {
        if u64::from(id) >= self.records {
            return Err(past_records(id));
        }
        self.words[id as usize / 64] |= 1 << (id % 64);
        Ok(())
    }

    /// Adds ids `lo ..= hi`.
    fn insert_range(&mut self, lo: u32, hi: u32) -> Result<(), String> {
        if u64::from(hi) >= self.records {
            return Err(past_records(hi));
        }
        let (lo, hi) = (lo as usize, hi as usize);
        let (first, last) = (lo / 64, hi / 64);
        let from = u64::MAX << (lo % 64);
        let to = u64::MAX >> (63 - hi % 64);
        if first == last {
            self.words[first] |= from & to;
        } else {
            self.words[first] |= from;
            self.words[first + 1..last].fill(u64::MAX);
            self.words[last] |= to;
        }
        Ok(())
    }

    /// ORs in a roaring bitmap container's 1024 words, the ids from `first_id` on.
    fn or_container(&mut self, first_id: u32, container: &[u8]) -> Result<(), String> {
        let first = first_id as usize / 64;
        for (i, word) in container.chunks_exact(8).enumerate() {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            if word == 0 {
                continue;
            }
            match self.words.get_mut(first + i) {
                // The last word may hold bits past the records.
                Some(w) if (first + i) as u64 * 64 + 63 - u64::from(word.leading_zeros()) < self.records => *w |= word,
                _ => return Err(past_records(first_id + (i as u32) * 64 + 63 - word.leading_zeros())),
            }
        }
        Ok(())
    }

    /// The set as a roaring bitmap.
    pub fn into_bitmap(self) -> RoaringBitmap {
        let bytes: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        RoaringBitmap::from_lsb0_bytes(0, &bytes)
    }
}

fn past_records(id: u32) -> String {
    format!("posting holds id {id}, past the record count")
}

/// Adds the ids of a posting of `count` ids written by format `version` to `dense`, with the
/// checks [`decode`] makes: a posting that `decode` refuses is refused here too.
pub fn decode_into(bytes: &[u8], count: u32, version: u32, dense: &mut DenseIds) -> Result<(), String> {
    // The same forms as `decode`: one id as itself (version 3 too), a few as gaps, else roaring.
    let few = count == 1 || ((2..=MAX_GAPS).contains(&count) && version >= GAPS_SINCE);
    if !few {
        return roaring_into(bytes, count, dense);
    }
    let ids = decode(bytes, count, version)?;
    if ids.len() != u64::from(count) {
        return Err(format!("a posting of {count} ids holds {}", ids.len()));
    }
    dense.add_bitmap(&ids)
}

/// Cookies of the portable roaring format: without run containers (then a 32-bit container
/// count follows), and with them (the count less one in the high 16 bits).
const COOKIE_NO_RUNS: u32 = 12346;
const COOKIE_RUNS: u32 = 12347;
/// Containers from which a bitmap with run containers has an offset header.
const OFFSETS_FROM: usize = 4;
/// Most ids of an array container; more are a bitmap of 1024 words.
const ARRAY_MAX: u32 = 4096;

/// Reads a portable roaring bitmap (<https://github.com/RoaringBitmap/RoaringFormatSpec>) into
/// `dense`: keys ascending, each array's and run's values ascending, every container's size as
/// its header says, no byte left over, `count` ids in all.
fn roaring_into(mut bytes: &[u8], count: u32, dense: &mut DenseIds) -> Result<(), String> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        let (head, rest) = bytes.split_at_checked(n).ok_or("a roaring bitmap is cut short")?;
        *bytes = rest;
        Ok(head)
    }
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let cookie = u32::from_le_bytes(take(&mut bytes, 4)?.try_into().expect("4 bytes"));
    let (containers, runs) = if cookie == COOKIE_NO_RUNS {
        let n = u32::from_le_bytes(take(&mut bytes, 4)?.try_into().expect("4 bytes")) as usize;
        (n, None)
    } else if cookie & 0xffff == COOKIE_RUNS {
        let n = (cookie >> 16) as usize + 1;
        (n, Some(take(&mut bytes, n.div_ceil(8))?))
    } else {
        return Err("bad roaring bitmap: unknown cookie".into());
    };
    if containers > 1 << 16 {
        return Err("bad roaring bitmap: more containers than keys".into());
    }
    let headers = take(&mut bytes, containers * 4)?;
    if runs.is_none() || containers >= OFFSETS_FROM {
        // The containers follow one another; their offsets are not needed to read them in order.
        take(&mut bytes, containers * 4)?;
    }
    let mut total = 0u64;
    let mut previous_key: Option<u16> = None;
    for i in 0..containers {
        let key = u16_at(headers, i * 4);
        if previous_key.is_some_and(|p| p >= key) {
            return Err("bad roaring bitmap: keys out of order".into());
        }
        previous_key = Some(key);
        let cardinality = u32::from(u16_at(headers, i * 4 + 2)) + 1;
        let base = u32::from(key) << 16;
        let is_run = runs.is_some_and(|r| r[i / 8] & (1 << (i % 8)) != 0);
        if is_run {
            let n = usize::from(u16_at(take(&mut bytes, 2)?, 0));
            let mut held = 0u32;
            let mut next_free = 0u32;
            for run in take(&mut bytes, n * 4)?.chunks_exact(4) {
                let (start, len) = (u32::from(u16_at(run, 0)), u32::from(u16_at(run, 2)));
                let end = start + len;
                // Runs neither overlap nor touch (roaring-rs refuses both), nor leave the container.
                if start < next_free || end > 0xffff {
                    return Err("bad roaring bitmap: runs overlap, touch or leave their container".into());
                }
                dense.insert_range(base + start, base + end)?;
                held += len + 1;
                next_free = end + 2;
            }
            if held != cardinality {
                return Err("bad roaring bitmap: a run container's size differs from its header".into());
            }
        } else if cardinality <= ARRAY_MAX {
            let values = take(&mut bytes, cardinality as usize * 2)?;
            let mut previous: Option<u16> = None;
            for v in values.chunks_exact(2).map(|v| u16::from_le_bytes([v[0], v[1]])) {
                if previous.is_some_and(|p| p >= v) {
                    return Err("bad roaring bitmap: an array is out of order".into());
                }
                previous = Some(v);
                dense.insert(base + u32::from(v))?;
            }
        } else {
            let words = take(&mut bytes, 8192)?;
            let ones: u32 = words
                .chunks_exact(8)
                .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")).count_ones())
                .sum();
            if ones != cardinality {
                return Err("bad roaring bitmap: a bitmap container's size differs from its header".into());
            }
            dense.or_container(base, words)?;
        }
        total += u64::from(cardinality);
    }
    if !bytes.is_empty() {
        return Err("bad roaring bitmap: bytes after its last container".into());
    }
    if total != u64::from(count) {
        return Err(format!("a posting of {count} ids holds {total}"));
    }
    Ok(())
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

    /// The ids of `posting` gathered by [`decode_into`], or its error.
    fn dense(posting: &[u8], count: u32, records: u64) -> Result<Vec<u32>, String> {
        let mut dense = DenseIds::new(records);
        decode_into(posting, count, GAPS_SINCE, &mut dense)?;
        Ok(dense.into_bitmap().iter().collect())
    }

    /// Ids in the shapes roaring stores them: arrays, bitmaps, runs, across containers, up to
    /// the last record.
    fn shaped_ids(shape: u8, seed: u64, records: u32) -> Vec<u32> {
        let mut x = seed | 1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut ids: Vec<u32> = match shape {
            0 => (0..200).map(|_| (next() % u64::from(records)) as u32).collect(),
            1 => (0..20_000).map(|_| (next() % u64::from(records)) as u32).collect(),
            2 => {
                let start = (next() % u64::from(records)) as u32;
                (start..records.min(start + 100_000)).collect()
            }
            // Many short runs with gaps: run containers of many runs.
            3 => {
                let start = (next() % u64::from(records)) as u32;
                (start..records).filter(|i| (i / 50) % 3 != 0).take(60_000).collect()
            }
            _ => (0..records).filter(|_| next() % 3 != 0).collect(),
        };
        ids.push(records - 1);
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    #[test]
    fn dense_decoding_reads_every_form_of_every_version() {
        let mut dense = DenseIds::new(100);
        // Version 3 stored one id as itself, and more as roaring.
        decode_into(&7u32.to_le_bytes(), 1, 3, &mut dense).unwrap();
        let mut roaring = Vec::new();
        RoaringBitmap::from_sorted_iter([3u32, 9, 27])
            .unwrap()
            .serialize_into(&mut roaring)
            .unwrap();
        decode_into(&roaring, 3, 3, &mut dense).unwrap();
        assert!(decode_into(&roaring, 4, 3, &mut dense).is_err(), "the count is checked");
        let mut gaps = Vec::new();
        encode(&[50, 60, 99], &mut gaps);
        decode_into(&gaps, 3, GAPS_SINCE, &mut dense).unwrap();
        assert!(decode_into(&gaps, 4, GAPS_SINCE, &mut dense).is_err());
        let mut empty = Vec::new();
        RoaringBitmap::new().serialize_into(&mut empty).unwrap();
        decode_into(&empty, 0, GAPS_SINCE, &mut dense).unwrap();
        assert!(
            decode_into(&roaring, 0, GAPS_SINCE, &mut dense).is_err(),
            "a count of 0 is checked too"
        );
        assert_eq!(
            dense.into_bitmap().iter().collect::<Vec<_>>(),
            [3, 7, 9, 27, 50, 60, 99]
        );
    }

    #[test]
    fn runs_that_touch_are_refused_as_roaring_refuses_them() {
        // One run container holding 0..=99 and 100..=199: two runs that should have been one.
        // (More than MAX_GAPS ids, or the posting would be stored as gaps.)
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&COOKIE_RUNS.to_le_bytes());
        bytes.push(1); // the one container is a run container
        bytes.extend_from_slice(&[0, 0, 199, 0]); // key 0, 200 ids
        bytes.extend_from_slice(&[2, 0, 0, 0, 99, 0, 100, 0, 99, 0]); // runs (0, +99), (100, +99)
        assert!(
            decode(&bytes, 200, GAPS_SINCE).is_err(),
            "roaring refuses touching runs"
        );
        assert!(decode_into(&bytes, 200, GAPS_SINCE, &mut DenseIds::new(1000)).is_err());
        // A gap of one id between them: two runs, 199 ids.
        let second = bytes.len() - 4;
        bytes[second] = 101;
        bytes[second + 2] = 98;
        bytes[4 + 1 + 2] = 198;
        assert_eq!(decode(&bytes, 199, GAPS_SINCE).unwrap().len(), 199);
        decode_into(&bytes, 199, GAPS_SINCE, &mut DenseIds::new(1000)).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn dense_decoding_gives_the_ids_of_the_posting(shape in 0..5u8, seed in proptest::prelude::any::<u64>(), records in 70_000..300_000u32) {
            let ids = shaped_ids(shape, seed, records);
            let mut bytes = Vec::new();
            encode(&ids, &mut bytes);
            proptest::prop_assert_eq!(dense(&bytes, ids.len() as u32, u64::from(records)), Ok(ids.clone()));
            // One record fewer: the last id is past the records.
            proptest::prop_assert!(dense(&bytes, ids.len() as u32, u64::from(records) - 1).is_err());
            // A one-id posting is its four bytes, which may also read as two gaps: the count,
            // checksummed in the dictionary, is what tells the forms apart.
            if ids.len() > 1 {
                proptest::prop_assert!(dense(&bytes, ids.len() as u32 + 1, u64::from(records)).is_err());
            }
        }

        #[test]
        fn dense_decoding_accepts_no_posting_that_decoding_refuses(shape in 0..5u8, seed in proptest::prelude::any::<u64>(), flips in proptest::collection::vec((proptest::prelude::any::<usize>(), 1..=255u8), 1..4), cut in proptest::prelude::any::<bool>()) {
            let records = 200_000u32;
            let ids = shaped_ids(shape, seed, records);
            let mut bytes = Vec::new();
            encode(&ids, &mut bytes);
            // Damage the headers more often than the payload: that is where the checks are.
            for (at, mask) in flips {
                let at = if at % 2 == 0 { at % 64.min(bytes.len()) } else { at % bytes.len() };
                bytes[at] ^= mask;
            }
            if cut {
                bytes.pop();
            }
            let count = ids.len() as u32;
            if let Ok(got) = dense(&bytes, count, u64::from(records)) {
                let decoded = decode(&bytes, count, GAPS_SINCE);
                proptest::prop_assert!(decoded.is_ok(), "dense decoding accepted what decoding refuses");
                let decoded = decoded.unwrap();
                proptest::prop_assert_eq!(decoded.len(), u64::from(count));
                proptest::prop_assert_eq!(decoded.iter().collect::<Vec<_>>(), got);
            }
        }
    }
}
