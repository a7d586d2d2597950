//! One column of one block, before compression: frame-of-reference integers with an optional
//! null bitmap (`index-format.md`, "Column encoding"). Every column is stored this way: numbers,
//! enum codes, dictionary codes, source ids and line numbers.

use super::{Bytes, Corrupt};

pub const COLUMN_WIDTH: usize = 0;
pub const COLUMN_FLAGS: usize = COLUMN_WIDTH + 1;
pub const COLUMN_RESERVED: usize = COLUMN_FLAGS + 1;
pub const COLUMN_COUNT: usize = COLUMN_RESERVED + 2;
pub const COLUMN_BASE: usize = COLUMN_COUNT + 4;
pub const COLUMN_HEADER_SIZE: usize = COLUMN_BASE + 8;

const FLAG_NULLS: u8 = 1;
const FLAG_DELTA: u8 = 2;

fn width_of(span: u64) -> u8 {
    match span {
        0 => 0,
        1..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    }
}

fn zigzag(d: u64) -> u64 {
    let d = d as i64;
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(z: u64) -> u64 {
    ((z >> 1) as i64 ^ -((z & 1) as i64)) as u64
}

/// Encodes `values` (with `nulls[i]` marking null slots, whose value is ignored), as offsets
/// from the block minimum or, when narrower (sorted times, line numbers), as differences from
/// the previous value.
pub fn encode(values: &[u64], nulls: &[bool], out: &mut Vec<u8>) {
    debug_assert_eq!(values.len(), nulls.len());
    let present = || values.iter().zip(nulls).filter(|(_, n)| !**n).map(|(v, _)| *v);
    let (min, max) = present().fold((u64::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let first = present().next().unwrap_or(0);
    let mut prev = first;
    let max_delta = present()
        .map(|v| {
            let z = zigzag(v.wrapping_sub(prev));
            prev = v;
            z
        })
        .max()
        .unwrap_or(0);
    let delta = width_of(max_delta) < width_of(max.saturating_sub(min));
    let (base, width) = if delta {
        (first, width_of(max_delta))
    } else if min > max {
        (0, 0)
    } else {
        (min, width_of(max - min))
    };
    let has_nulls = nulls.iter().any(|n| *n);
    out.push(width);
    out.push(if has_nulls { FLAG_NULLS } else { 0 } | if delta { FLAG_DELTA } else { 0 });
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    out.extend_from_slice(&base.to_le_bytes());
    if has_nulls {
        let mut bits = vec![0u8; values.len().div_ceil(8)];
        for (i, _) in nulls.iter().enumerate().filter(|(_, n)| **n) {
            bits[i / 8] |= 1 << (i % 8);
        }
        out.extend_from_slice(&bits);
    }
    let mut prev = base;
    for (v, null) in values.iter().zip(nulls) {
        let d = match (*null, delta) {
            (true, _) => 0,
            (false, false) => v - base,
            (false, true) => {
                let z = zigzag(v.wrapping_sub(prev));
                prev = *v;
                z
            }
        };
        out.extend_from_slice(&d.to_le_bytes()[..usize::from(width)]);
    }
}

/// A decoded column: values with their null bitmap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Column {
    values: Vec<u64>,
    nulls: Option<Vec<u8>>,
}

impl Column {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<u64> {
        let null = self.nulls.as_ref().is_some_and(|b| b[i / 8] & (1 << (i % 8)) != 0);
        (!null).then(|| self.values[i])
    }
}

/// Decodes a column that must hold `expect` values.
pub fn decode(raw: &[u8], expect: usize, section: &str, base_offset: u64) -> Result<Column, Corrupt> {
    let b = Bytes::new(raw, section, base_offset);
    let width = usize::from(b.u8(COLUMN_WIDTH)?);
    let flags = b.u8(COLUMN_FLAGS)?;
    if !matches!(width, 0 | 1 | 2 | 4 | 8) || flags & !(FLAG_NULLS | FLAG_DELTA) != 0 || b.u16(COLUMN_RESERVED)? != 0 {
        return Err(b.corrupt(COLUMN_WIDTH, "bad column header"));
    }
    let n = b.u32(COLUMN_COUNT)? as usize;
    if n != expect {
        return Err(b.corrupt(COLUMN_COUNT, format!("column holds {n} values, the block {expect}")));
    }
    let base = b.u64(COLUMN_BASE)?;
    let mut at = COLUMN_HEADER_SIZE;
    let nulls = if flags & FLAG_NULLS != 0 {
        let bits = b.slice(at, n.div_ceil(8))?.to_vec();
        at += bits.len();
        Some(bits)
    } else {
        None
    };
    let data = b.slice(at, n * width)?;
    if at + n * width != raw.len() {
        return Err(b.corrupt(at + n * width, "trailing bytes after the column values"));
    }
    // The stored numbers, widened; one tight loop per width (this is the search's hottest
    // decode).
    let mut values: Vec<u64> = match width {
        0 => vec![0; n],
        1 => data.iter().map(|&b| u64::from(b)).collect(),
        2 => data
            .chunks_exact(2)
            .map(|c| u64::from(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        4 => data
            .chunks_exact(4)
            .map(|c| u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => data
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    };
    if flags & FLAG_DELTA != 0 {
        let mut prev = base;
        for (i, v) in values.iter_mut().enumerate() {
            let null = nulls.as_ref().is_some_and(|bits| bits[i / 8] & (1 << (i % 8)) != 0);
            if !null {
                prev = prev.wrapping_add(unzigzag(*v));
                *v = prev;
            }
        }
    } else {
        let max = values.iter().copied().max().unwrap_or(0);
        if base.checked_add(max).is_none() {
            return Err(b.corrupt(at, "value overflows 64 bits"));
        }
        for v in &mut values {
            *v += base;
        }
    }
    Ok(Column { values, nulls })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(values in proptest::collection::vec((any::<u64>(), any::<bool>()), 0..300), shape in 0..3u8) {
            let (mut vals, nulls): (Vec<u64>, Vec<bool>) = values.into_iter().unzip();
            match shape {
                0 => for v in &mut vals { *v %= 1000; },
                // Sorted, large values: the delta encoding.
                1 => {
                    vals.sort_unstable();
                    for v in &mut vals { *v = u64::MAX - 5000 + *v % 5000; }
                    vals.sort_unstable();
                }
                _ => {}
            }
            let mut raw = Vec::new();
            encode(&vals, &nulls, &mut raw);
            let col = decode(&raw, vals.len(), "t", 0).unwrap();
            for i in 0..vals.len() {
                prop_assert_eq!(col.get(i), (!nulls[i]).then_some(vals[i]));
            }
            // Any truncation is an error, never a panic.
            for cut in 0..raw.len() {
                prop_assert!(decode(&raw[..cut], vals.len(), "t", 0).is_err());
            }
        }
    }
}
