//! One column of one block, before compression: frame-of-reference integers with an optional
//! null bitmap (`index-format.md`, "Column data section"). Every column is stored this way:
//! numbers, enum codes, dictionary codes, source ids and line numbers. A byte-string column
//! (original lines) stores its values' lengths so, followed by the bytes. A frame stored
//! without compression may pack its numbers in fewer bits than whole bytes ([`pack_bits`]); a
//! compressed one may hold their bytes in planes ([`to_planes`]).

use super::bits::{read_bits, BitWriter};
use super::{Bytes, Corrupt};

pub const COLUMN_WIDTH: usize = 0;
pub const COLUMN_FLAGS: usize = COLUMN_WIDTH + 1;
pub const COLUMN_RESERVED: usize = COLUMN_FLAGS + 1;
pub const COLUMN_COUNT: usize = COLUMN_RESERVED + 2;
pub const COLUMN_BASE: usize = COLUMN_COUNT + 4;
pub const COLUMN_HEADER_SIZE: usize = COLUMN_BASE + 8;

const FLAG_NULLS: u8 = 1;
const FLAG_DELTA: u8 = 2;
const FLAG_BYTES: u8 = 4;
/// The stored values are each record's `end` minus its `start` (version 5): an `end` lies
/// a few seconds to a minute after its `start`, which takes fewer bits than the step from
/// the previous `end`.
const FLAG_MINUS_START: u8 = 8;
/// The width byte counts bits, not bytes (version 6): line numbers of a few hundred take 9 or
/// 10 bits, which whole bytes round up to 16, and zstd rarely wins back a quarter of that.
const FLAG_BITS: u8 = 16;
/// The stored numbers' bytes are in planes (version 8): the first byte of every number, then
/// the second, and so on. The high bytes of byte counts and times repeat from number to number,
/// so as planes zstd's fast levels compress them as small as level 3 compresses the numbers,
/// and the frames decompress more than twice as fast (`index-format.md`, "Why these choices").
const FLAG_PLANES: u8 = 32;
/// The widest bit-packed value. Readers could take 64; 56 leaves room to read a value with one
/// 8-byte load, whatever its first bit.
pub const MAX_PACKED_BITS: u8 = 56;

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
    encode_flagged(values, nulls, 0, out);
}

/// Encodes each `end` minus its record's `start` (0 where the start is null; null ends stay
/// null), flagged so that readers add the `start` column back.
pub fn encode_minus_start(ends: &[u64], nulls: &[bool], starts: &[u64], start_nulls: &[bool], out: &mut Vec<u8>) {
    let relative: Vec<u64> = ends
        .iter()
        .zip(starts.iter().zip(start_nulls))
        .map(|(end, (start, null))| end.wrapping_sub(if *null { 0 } else { *start }))
        .collect();
    encode_flagged(&relative, nulls, FLAG_MINUS_START, out);
}

fn encode_flagged(values: &[u64], nulls: &[bool], flags: u8, out: &mut Vec<u8>) {
    debug_assert_eq!(values.len(), nulls.len());
    // One pass for the range, the first value and the largest step between present values.
    let (mut min, mut max, mut first, mut max_delta) = (u64::MAX, 0, None, 0);
    let mut prev = 0;
    for (&v, _) in values.iter().zip(nulls).filter(|(_, null)| !**null) {
        (min, max) = (min.min(v), max.max(v));
        if first.is_none() {
            (first, prev) = (Some(v), v);
        }
        max_delta = max_delta.max(zigzag(v.wrapping_sub(prev)));
        prev = v;
    }
    let first = first.unwrap_or(0);
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
    out.push(flags | if has_nulls { FLAG_NULLS } else { 0 } | if delta { FLAG_DELTA } else { 0 });
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
    let packed = values.iter().zip(nulls).map(|(v, null)| match (*null, delta) {
        (true, _) => 0,
        (false, false) => v - base,
        (false, true) => {
            let z = zigzag(v.wrapping_sub(prev));
            prev = *v;
            z
        }
    });
    // A loop per width: copying a variable number of bytes per value was most of the cost.
    out.reserve(values.len() * usize::from(width));
    match width {
        0 => {}
        1 => out.extend(packed.map(|d| d as u8)),
        2 => packed.for_each(|d| out.extend_from_slice(&(d as u16).to_le_bytes())),
        4 => packed.for_each(|d| out.extend_from_slice(&(d as u32).to_le_bytes())),
        _ => packed.for_each(|d| out.extend_from_slice(&d.to_le_bytes())),
    }
}

/// Encodes byte strings (`None` = null) as their lengths, then the bytes of the present values.
pub fn encode_bytes(values: &[Option<&[u8]>], out: &mut Vec<u8>) {
    let lengths: Vec<u64> = values.iter().map(|v| v.map_or(0, |b| b.len() as u64)).collect();
    let nulls: Vec<bool> = values.iter().map(Option::is_none).collect();
    let header = out.len();
    encode(&lengths, &nulls, out);
    out[header + COLUMN_FLAGS] |= FLAG_BYTES;
    for v in values.iter().flatten() {
        out.extend_from_slice(v);
    }
}

/// The bit-packed form of a number column encoded by [`encode`] or [`encode_minus_start`],
/// when its numbers need fewer bits than their bytes hold; `None` otherwise (byte strings,
/// constant columns, numbers that use their bytes, and columns with nulls: a packed frame's
/// length then never hides a null bitmap).
pub fn pack_bits(raw: &[u8]) -> Option<Vec<u8>> {
    let width = usize::from(raw[COLUMN_WIDTH]);
    let flags = raw[COLUMN_FLAGS];
    if width == 0 || flags & (FLAG_BYTES | FLAG_NULLS) != 0 {
        return None;
    }
    let n = u32::from_le_bytes(raw[COLUMN_COUNT..COLUMN_BASE].try_into().expect("4 bytes")) as usize;
    let data = raw.len() - n * width;
    let stored = |i: usize| {
        let mut le = [0u8; 8];
        le[..width].copy_from_slice(&raw[data + i * width..data + (i + 1) * width]);
        u64::from_le_bytes(le)
    };
    let max = (0..n).map(stored).max().unwrap_or(0);
    let bits = 64 - max.leading_zeros() as usize;
    if bits == 0 || bits > usize::from(MAX_PACKED_BITS) || (n * bits).div_ceil(8) >= n * width {
        return None;
    }
    let mut out = Vec::with_capacity(data + (n * bits).div_ceil(8));
    out.extend_from_slice(&raw[..data]);
    out[COLUMN_WIDTH] = bits as u8;
    out[COLUMN_FLAGS] |= FLAG_BITS;
    let mut packed = BitWriter::new(&mut out);
    for i in 0..n {
        packed.push(stored(i), bits as u32);
    }
    packed.finish();
    Some(out)
}

/// The byte-plane form of a number column encoded by [`encode`] or [`encode_minus_start`], for
/// zstd's fast levels ([`FLAG_PLANES`]); `None` for byte strings and numbers narrower than two
/// bytes.
pub fn to_planes(raw: &[u8]) -> Option<Vec<u8>> {
    let width = usize::from(raw[COLUMN_WIDTH]);
    if width < 2 || raw[COLUMN_FLAGS] & (FLAG_BYTES | FLAG_BITS) != 0 {
        return None;
    }
    let n = u32::from_le_bytes(raw[COLUMN_COUNT..COLUMN_BASE].try_into().expect("4 bytes")) as usize;
    let data = raw.len() - n * width;
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..data]);
    out[COLUMN_FLAGS] |= FLAG_PLANES;
    for byte in 0..width {
        out.extend(raw[data..].chunks_exact(width).map(|number| number[byte]));
    }
    Some(out)
}

/// A decoded byte-string column.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BytesColumn {
    /// Per value, its range in `data`; `None` for null.
    ranges: Vec<Option<(usize, usize)>>,
    data: Vec<u8>,
}

impl BytesColumn {
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.ranges[i].map(|(start, end)| &self.data[start..end])
    }
}

/// A decoded column: values with their null bitmap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Column {
    values: Vec<u64>,
    nulls: Option<Vec<u8>>,
    minus_start: bool,
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

    /// Whether the values are `end − start` until [`Column::add_starts`] is called.
    pub fn is_minus_start(&self) -> bool {
        self.minus_start
    }

    /// Adds each record's `start` (0 where null) back to an `end` column stored minus it.
    pub fn add_starts(&mut self, starts: &Column) {
        for (i, v) in self.values.iter_mut().enumerate() {
            *v = v.wrapping_add(starts.get(i).unwrap_or(0));
        }
        self.minus_start = false;
    }
}

/// The value at `i` of a column that may be missing (one the segment lacks, or not read).
pub fn value_at(column: Option<&Column>, i: usize) -> Option<u64> {
    column.and_then(|c| c.get(i))
}

/// Values read at some offsets of a column: [`decode_at`]'s answer.
pub struct SparseValues {
    pub values: Vec<Option<u64>>,
    /// The values are `end − start`: add the `start`s at the same offsets.
    pub minus_start: bool,
}

/// Which column encodings a frame may use.
#[derive(Clone, Copy, Debug)]
pub struct Encodings {
    /// Bit-packed numbers: version 6, in stored (uncompressed) frames.
    pub bit_packed: bool,
    /// Numbers in byte planes: version 8, in compressed frames.
    pub planes: bool,
}

/// Decodes a number column that must hold `expect` values.
pub fn decode(
    raw: &[u8],
    expect: usize,
    allowed: Encodings,
    section: &str,
    base_offset: u64,
) -> Result<Column, Corrupt> {
    let (column, end) = decode_numbers(raw, expect, section, base_offset, Some(allowed))?;
    if end != raw.len() {
        return Err(Bytes::new(raw, section, base_offset).corrupt(end, "trailing bytes after the column values"));
    }
    Ok(column)
}

/// Decodes a byte-string column that must hold `expect` values.
pub fn decode_bytes(raw: &[u8], expect: usize, section: &str, base_offset: u64) -> Result<BytesColumn, Corrupt> {
    let (lengths, mut at) = decode_numbers(raw, expect, section, base_offset, None)?;
    let data_start = at;
    let mut ranges = Vec::with_capacity(expect);
    for i in 0..expect {
        ranges.push(match lengths.get(i) {
            None => None,
            Some(len) => {
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|len| at.checked_add(len))
                    .filter(|&end| end <= raw.len())
                    .ok_or_else(|| Bytes::new(raw, section, base_offset).corrupt(at, "value runs past the column"))?;
                let range = (at - data_start, end - data_start);
                at = end;
                Some(range)
            }
        });
    }
    if at != raw.len() {
        return Err(Bytes::new(raw, section, base_offset).corrupt(at, "trailing bytes after the column values"));
    }
    Ok(BytesColumn {
        ranges,
        data: raw[data_start..].to_vec(),
    })
}

/// Where a column's parts are, from its header: what a full and a sparse decode share.
struct Layout {
    /// Bits of each stored number: 8 times its bytes, or fewer when bit-packed.
    bits: usize,
    /// The numbers' bytes are in planes, each `count` bytes long.
    planes: bool,
    count: usize,
    delta: bool,
    minus_start: bool,
    base: u64,
    /// The null bitmap, when the column has nulls.
    nulls: Option<std::ops::Range<usize>>,
    /// The stored numbers.
    data: std::ops::Range<usize>,
}

impl Layout {
    /// Reads and checks a column's header; `expect` is the block's record count. `numbers`
    /// says which encodings a number column may use; `None` reads a byte-string column.
    fn read(b: &Bytes<'_, '_>, expect: usize, numbers: Option<Encodings>) -> Result<Layout, Corrupt> {
        let width = b.u8(COLUMN_WIDTH)?;
        let flags = b.u8(COLUMN_FLAGS)?;
        let kind = if numbers.is_none() { FLAG_BYTES } else { 0 };
        let bit_packed = flags & FLAG_BITS != 0;
        let planes = flags & FLAG_PLANES != 0;
        if flags & !(FLAG_NULLS | FLAG_DELTA | FLAG_BYTES | FLAG_MINUS_START | FLAG_BITS | FLAG_PLANES) != 0
            || flags & FLAG_BYTES != kind
            || flags & FLAG_BYTES != 0 && flags & FLAG_MINUS_START != 0
            || b.u16(COLUMN_RESERVED)? != 0
        {
            return Err(b.corrupt(COLUMN_WIDTH, "bad column header"));
        }
        let bits = if bit_packed {
            if !numbers.is_some_and(|e| e.bit_packed) {
                return Err(b.corrupt(COLUMN_FLAGS, "bit-packed column where none may be"));
            }
            if flags & FLAG_NULLS != 0 {
                return Err(b.corrupt(COLUMN_FLAGS, "bit-packed column with a null bitmap"));
            }
            if !(1..=MAX_PACKED_BITS).contains(&width) {
                return Err(b.corrupt(
                    COLUMN_WIDTH,
                    format!("bit-packed width {width} outside 1 to {MAX_PACKED_BITS}"),
                ));
            }
            usize::from(width)
        } else if matches!(width, 0 | 1 | 2 | 4 | 8) {
            8 * usize::from(width)
        } else {
            return Err(b.corrupt(COLUMN_WIDTH, "bad column header"));
        };
        if planes {
            if !numbers.is_some_and(|e| e.planes) {
                return Err(b.corrupt(COLUMN_FLAGS, "byte planes where none may be"));
            }
            if bit_packed || bits < 16 {
                return Err(b.corrupt(
                    COLUMN_FLAGS,
                    "byte planes of bit-packed numbers or numbers narrower than two bytes",
                ));
            }
        }
        let n = b.u32(COLUMN_COUNT)? as usize;
        if n != expect {
            return Err(b.corrupt(COLUMN_COUNT, format!("column holds {n} values, the block {expect}")));
        }
        let base = b.u64(COLUMN_BASE)?;
        let mut at = COLUMN_HEADER_SIZE;
        let nulls = if flags & FLAG_NULLS != 0 {
            let len = n.div_ceil(8);
            b.slice(at, len)?;
            at += len;
            Some(at - len..at)
        } else {
            None
        };
        let len = (n * bits).div_ceil(8);
        let data = b.slice(at, len)?;
        // The bits after the last packed number are zero: a frame has one spelling.
        let used = n * bits % 8;
        if used != 0 && data.last().is_some_and(|last| last >> used != 0) {
            return Err(b.corrupt(at + len - 1, "padding bits are not zero"));
        }
        Ok(Layout {
            bits,
            planes,
            count: n,
            delta: flags & FLAG_DELTA != 0,
            minus_start: flags & FLAG_MINUS_START != 0,
            base,
            nulls,
            data: at..at + len,
        })
    }

    fn is_null(&self, raw: &[u8], i: usize) -> bool {
        self.nulls
            .as_ref()
            .is_some_and(|r| raw[r.start + i / 8] & (1 << (i % 8)) != 0)
    }

    /// The stored (not yet based or summed) number at `i`.
    fn stored(&self, raw: &[u8], i: usize) -> u64 {
        if self.planes {
            let at = self.data.start + i;
            return (0..self.bits / 8).fold(0, |v, byte| v | u64::from(raw[at + byte * self.count]) << (8 * byte));
        }
        if self.bits.is_multiple_of(8) {
            let width = self.bits / 8;
            let at = self.data.start + i * width;
            let mut le = [0u8; 8];
            le[..width].copy_from_slice(&raw[at..at + width]);
            return u64::from_le_bytes(le);
        }
        read_bits(&raw[self.data.clone()], i * self.bits, self.bits as u32)
    }
}

/// Decodes the numbers of a column (for a byte-string column, the lengths) and returns them with
/// the offset where they end.
fn decode_numbers(
    raw: &[u8],
    expect: usize,
    section: &str,
    base_offset: u64,
    numbers: Option<Encodings>,
) -> Result<(Column, usize), Corrupt> {
    let b = Bytes::new(raw, section, base_offset);
    let layout = Layout::read(&b, expect, numbers)?;
    let nulls = layout.nulls.clone().map(|r| raw[r].to_vec());
    let data = &raw[layout.data.clone()];
    let base = layout.base;
    // The stored numbers, widened; one tight loop per width (this is the search's hottest
    // decode).
    let minus_start = layout.minus_start;
    let mut values: Vec<u64> = match layout.bits {
        _ if layout.planes => from_planes(data, expect),
        0 => vec![0; expect],
        8 => data.iter().map(|&b| u64::from(b)).collect(),
        16 => data
            .chunks_exact(2)
            .map(|c| u64::from(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        32 => data
            .chunks_exact(4)
            .map(|c| u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        bits if bits < 64 => (0..expect).map(|i| read_bits(data, i * bits, bits as u32)).collect(),
        _ => data
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    };
    if layout.delta {
        let mut prev = base;
        for (i, v) in values.iter_mut().enumerate() {
            let null = nulls.as_ref().is_some_and(|bits| bits[i / 8] & (1 << (i % 8)) != 0);
            if !null {
                prev = prev.wrapping_add(unzigzag(*v));
                *v = prev;
            }
        }
    } else {
        // Narrow numbers cannot overflow from most bases: the scan for the largest (a tenth of
        // decoding a day's `bytes`) only runs when the width's own limit might.
        let limit = if layout.bits >= 64 {
            u64::MAX
        } else {
            (1u64 << layout.bits) - 1
        };
        let overflows = || base.checked_add(values.iter().copied().max().unwrap_or(0)).is_none();
        if base.checked_add(limit).is_none() && overflows() {
            return Err(b.corrupt(layout.data.start, "value overflows 64 bits"));
        }
        for v in &mut values {
            *v += base;
        }
    }
    Ok((
        Column {
            values,
            nulls,
            minus_start,
        },
        layout.data.end,
    ))
}

/// Numbers from their byte planes (`planes.len() / n` planes of `n` bytes, least significant
/// first). Two or four planes are zipped whole, in a loop the compiler vectorizes: a byte at a
/// time, widening took twice as long as decompressing. Eight (a span wider than 32 bits) take
/// the byte-at-a-time loop.
fn from_planes(planes: &[u8], n: usize) -> Vec<u64> {
    let p: Vec<&[u8]> = planes.chunks_exact(n.max(1)).collect();
    match p[..] {
        [a, b] => a
            .iter()
            .zip(b)
            .map(|(&a, &b)| u64::from(u16::from_le_bytes([a, b])))
            .collect(),
        [a, b, c, d] => a
            .iter()
            .zip(b)
            .zip(c)
            .zip(d)
            .map(|(((&a, &b), &c), &d)| u64::from(u32::from_le_bytes([a, b, c, d])))
            .collect(),
        _ => {
            let mut values = vec![0u64; n];
            for (byte, plane) in p.iter().enumerate() {
                for (v, &b) in values.iter_mut().zip(*plane) {
                    *v |= u64::from(b) << (8 * byte);
                }
            }
            values
        }
    }
}

/// The values at `offsets` (ascending) of a number column that must hold `expect` values,
/// without widening the rest: reading a few records of a block (a needle's one record in each
/// of hundreds of blocks) should not cost a whole column per record.
pub fn decode_at(
    raw: &[u8],
    expect: usize,
    offsets: &[u32],
    allowed: Encodings,
    section: &str,
    base_offset: u64,
) -> Result<SparseValues, Corrupt> {
    let b = Bytes::new(raw, section, base_offset);
    let layout = Layout::read(&b, expect, Some(allowed))?;
    if layout.data.end != raw.len() {
        return Err(b.corrupt(layout.data.end, "trailing bytes after the column values"));
    }
    let mut out = Vec::with_capacity(offsets.len());
    // A delta column's value is the sum of the deltas before it: walk to each offset once.
    let (mut next, mut prev) = (0usize, layout.base);
    for &o in offsets {
        let i = o as usize;
        if i >= expect || i < next && layout.delta {
            return Err(b.corrupt(COLUMN_COUNT, format!("no value {i} in order in the column")));
        }
        if layout.delta {
            for j in next..=i {
                if !layout.is_null(raw, j) {
                    prev = prev.wrapping_add(unzigzag(layout.stored(raw, j)));
                }
            }
            next = i + 1;
            out.push((!layout.is_null(raw, i)).then_some(prev));
        } else if layout.is_null(raw, i) {
            out.push(None);
        } else {
            let v = layout
                .base
                .checked_add(layout.stored(raw, i))
                .ok_or_else(|| b.corrupt(layout.data.start, "value overflows 64 bits"))?;
            out.push(Some(v));
        }
    }
    Ok(SparseValues {
        values: out,
        minus_start: layout.minus_start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const V8: Encodings = Encodings {
        bit_packed: false,
        planes: true,
    };
    const V6: Encodings = Encodings {
        bit_packed: true,
        planes: false,
    };
    const V5: Encodings = Encodings {
        bit_packed: false,
        planes: false,
    };

    /// `other`, another form of the column `raw` of `n` values, decodes to the same values in
    /// full and at every offset under `allowed`, is refused under `refused`, and no truncation
    /// of it decodes.
    fn check_same_values(
        raw: &[u8],
        other: &[u8],
        n: usize,
        allowed: Encodings,
        refused: Encodings,
    ) -> Result<(), TestCaseError> {
        let (want, got) = (
            decode(raw, n, allowed, "t", 0).unwrap(),
            decode(other, n, allowed, "t", 0).unwrap(),
        );
        prop_assert_eq!(&got, &want);
        let all: Vec<u32> = (0..n as u32).collect();
        let sparse = decode_at(other, n, &all, allowed, "t", 0).unwrap();
        for (i, v) in sparse.values.into_iter().enumerate() {
            prop_assert_eq!(v, want.get(i));
        }
        prop_assert!(decode(other, n, refused, "t", 0).is_err());
        prop_assert!(decode_at(other, n, &all, refused, "t", 0).is_err());
        for cut in 0..other.len() {
            prop_assert!(decode(&other[..cut], n, allowed, "t", 0).is_err());
            prop_assert!(decode_at(&other[..cut], n, &all, allowed, "t", 0).is_err());
        }
        Ok(())
    }

    /// The byte-plane form of a column decodes to the same values, in full and at offsets,
    /// only where the version allows it, and no truncation of it decodes.
    fn check_planes(raw: &[u8], n: usize) -> Result<(), TestCaseError> {
        // The planes flag on one-byte numbers, on bit-packed ones, or on byte strings: refused.
        let any = Encodings {
            bit_packed: true,
            planes: true,
        };
        let flagged = |frame: &[u8]| {
            let mut bad = frame.to_vec();
            bad[COLUMN_FLAGS] |= FLAG_PLANES;
            bad
        };
        if raw[COLUMN_WIDTH] == 1 {
            prop_assert!(decode(&flagged(raw), n, any, "t", 0).is_err());
        }
        if let Some(packed) = pack_bits(raw) {
            prop_assert!(decode(&flagged(&packed), n, any, "t", 0).is_err());
        }
        let Some(planes) = to_planes(raw) else {
            prop_assert!(raw[COLUMN_WIDTH] < 2 || raw[COLUMN_FLAGS] & FLAG_BYTES != 0);
            return Ok(());
        };
        prop_assert_eq!(planes.len(), raw.len());
        check_same_values(raw, &planes, n, V8, V6)?;
        let mut strings = planes.clone();
        strings[COLUMN_FLAGS] |= FLAG_BYTES;
        prop_assert!(decode_bytes(&strings, n, "t", 0).is_err());
        Ok(())
    }

    /// The bit-packed form of a column decodes to the same values, in full and at offsets,
    /// only where the version allows it, and no truncation of it decodes.
    fn check_packed(raw: &[u8], n: usize) -> Result<(), TestCaseError> {
        let Some(packed) = pack_bits(raw) else {
            return Ok(());
        };
        prop_assert!(packed.len() < raw.len());
        check_same_values(raw, &packed, n, V6, V5)?;
        // A set padding bit, a width out of range, a null bitmap or byte strings: refused.
        let used = n * usize::from(packed[COLUMN_WIDTH]) % 8;
        if used != 0 {
            let mut padded = packed.clone();
            *padded.last_mut().unwrap() |= 0x80;
            prop_assert!(decode(&padded, n, V6, "t", 0).is_err());
        }
        for (at, value) in [
            (COLUMN_WIDTH, 0),
            (COLUMN_WIDTH, MAX_PACKED_BITS + 1),
            (COLUMN_FLAGS, packed[COLUMN_FLAGS] | FLAG_NULLS),
        ] {
            let mut bad = packed.clone();
            bad[at] = value;
            prop_assert!(decode(&bad, n, V6, "t", 0).is_err());
        }
        let mut strings = packed.clone();
        strings[COLUMN_FLAGS] |= FLAG_BYTES;
        prop_assert!(decode_bytes(&strings, n, "t", 0).is_err());
        Ok(())
    }

    /// A base that the stored numbers overflow is refused, whether or not the width alone
    /// could have told that no value overflows.
    #[test]
    fn a_base_that_values_overflow_is_refused() {
        let mut raw = Vec::new();
        encode(&[0, 200, 7], &[false; 3], &mut raw);
        assert_eq!(raw[COLUMN_WIDTH], 1, "one byte a value");
        for (base, overflows) in [(u64::MAX - 255, false), (u64::MAX - 200, false), (u64::MAX - 199, true)] {
            raw[COLUMN_BASE..COLUMN_BASE + 8].copy_from_slice(&base.to_le_bytes());
            let all = [0, 1, 2];
            let whole = decode(&raw, 3, V5, "t", 0);
            let sparse = decode_at(&raw, 3, &all, V5, "t", 0);
            assert_eq!(whole.is_err(), overflows, "base {base}");
            assert_eq!(sparse.is_err(), overflows, "base {base}");
            if !overflows {
                assert_eq!(whole.unwrap().get(1), Some(base + 200));
            }
        }
    }

    proptest! {
        #[test]
        fn round_trips(values in proptest::collection::vec((any::<u64>(), any::<bool>()), 0..300), shape in 0..5u8, bits in 1..64u32, none_null in any::<bool>()) {
            let (mut vals, mut nulls): (Vec<u64>, Vec<bool>) = values.into_iter().unzip();
            // Only columns without nulls are bit-packed.
            if none_null {
                nulls.fill(false);
            }
            match shape {
                0 => for v in &mut vals { *v %= 1000; },
                // 40-bit values: 8 bytes each, or 40 bits packed.
                3 => for v in &mut vals { *v %= 1 << 40; },
                // Any width, packed up to 56 bits.
                4 => for v in &mut vals { *v %= 1 << bits; },
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
            let col = decode(&raw, vals.len(), V6, "t", 0).unwrap();
            for i in 0..vals.len() {
                prop_assert_eq!(col.get(i), (!nulls[i]).then_some(vals[i]));
            }
            let every_third: Vec<u32> = (0..vals.len() as u32).step_by(3).collect();
            let sparse = decode_at(&raw, vals.len(), &every_third, V6, "t", 0).unwrap();
            prop_assert!(!sparse.minus_start && !col.is_minus_start());
            for (&i, v) in every_third.iter().zip(sparse.values) {
                prop_assert_eq!(v, col.get(i as usize));
            }
            // Any truncation is an error, never a panic.
            for cut in 0..raw.len() {
                prop_assert!(decode(&raw[..cut], vals.len(), V6, "t", 0).is_err());
                prop_assert!(decode_at(&raw[..cut], vals.len(), &every_third, V6, "t", 0).is_err());
            }
            prop_assert!(decode_bytes(&raw, vals.len(), "t", 0).is_err());
            check_packed(&raw, vals.len())?;
            check_planes(&raw, vals.len())?;
        }

        #[test]
        fn ends_minus_starts_round_trip(records in proptest::collection::vec((any::<u64>(), any::<bool>(), 0..700u64, any::<bool>()), 0..300), wild in any::<bool>()) {
            // Ends a little after their starts, or (wild) anywhere, even before them.
            let starts: Vec<u64> = records.iter().map(|r| 1_712_000_000 + r.0 % 100_000).collect();
            let start_nulls: Vec<bool> = records.iter().map(|r| r.1).collect();
            let ends: Vec<u64> = records.iter().zip(&starts).map(|(r, s)| if wild { r.0 } else { s + r.2 }).collect();
            let end_nulls: Vec<bool> = records.iter().map(|r| r.3).collect();
            let (mut raw_starts, mut raw) = (Vec::new(), Vec::new());
            encode(&starts, &start_nulls, &mut raw_starts);
            encode_minus_start(&ends, &end_nulls, &starts, &start_nulls, &mut raw);
            let start_col = decode(&raw_starts, starts.len(), V6, "t", 0).unwrap();
            let mut col = decode(&raw, ends.len(), V6, "t", 0).unwrap();
            prop_assert!(col.is_minus_start());
            col.add_starts(&start_col);
            let all: Vec<u32> = (0..ends.len() as u32).collect();
            let sparse = decode_at(&raw, ends.len(), &all, V6, "t", 0).unwrap();
            prop_assert!(sparse.minus_start);
            check_packed(&raw, ends.len())?;
            check_planes(&raw, ends.len())?;
            for i in 0..ends.len() {
                let want = (!end_nulls[i]).then_some(ends[i]);
                prop_assert_eq!(col.get(i), want);
                let start = (!start_nulls[i]).then_some(starts[i]);
                prop_assert_eq!(sparse.values[i].map(|v| v.wrapping_add(start.unwrap_or(0))), want);
            }
        }

        #[test]
        fn byte_strings_round_trip(values in proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)), 0..100)) {
            let borrowed: Vec<Option<&[u8]>> = values.iter().map(|v| v.as_deref()).collect();
            let mut raw = Vec::new();
            encode_bytes(&borrowed, &mut raw);
            let col = decode_bytes(&raw, values.len(), "t", 0).unwrap();
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(col.get(i), v.as_deref());
            }
            for cut in 0..raw.len() {
                prop_assert!(decode_bytes(&raw[..cut], values.len(), "t", 0).is_err());
            }
            prop_assert!(decode(&raw, values.len(), V6, "t", 0).is_err());
            prop_assert!(pack_bits(&raw).is_none());
        }
    }
}
