//! Bit strings of packed numbers, least significant bit first: bit `k` of the string is bit
//! `k mod 8` of byte `⌊k/8⌋` (`index-format.md`: packed posting references, bit-packed column
//! frames); and LEB128 varints (postings as gaps, slot runs).

/// Appends `value` as a LEB128 varint: 7 bits a byte, low first, the high bit set on all but
/// the last.
pub fn write_varint(mut value: u32, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads one LEB128 number of at most 32 bits from the front of `bytes`.
pub fn read_varint(bytes: &mut &[u8]) -> Result<u32, String> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return u32::try_from(value).map_err(|_| "a varint exceeds 32 bits".into());
        }
    }
    Err("a varint is cut off or longer than 5 bytes".into())
}

/// Appends numbers of given widths to a byte string; [`BitWriter::finish`] writes the last,
/// partial byte with zero high bits.
pub struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Bits not yet written, fewer than 8 between numbers.
    held: u128,
    held_bits: u32,
}

impl<'a> BitWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> BitWriter<'a> {
        BitWriter {
            out,
            held: 0,
            held_bits: 0,
        }
    }

    /// Appends the low `width` bits of `value` (at most 64; `value` must fit).
    pub fn push(&mut self, value: u64, width: u32) {
        self.held |= u128::from(value) << self.held_bits;
        self.held_bits += width;
        while self.held_bits >= 8 {
            self.out.push(self.held as u8);
            self.held >>= 8;
            self.held_bits -= 8;
        }
    }

    pub fn finish(self) {
        if self.held_bits > 0 {
            self.out.push(self.held as u8);
        }
    }
}

/// `width` bits (at most 64) from bit `bit` of `data`; bits past the end read as zero (callers
/// check that what they read lies inside).
pub fn read_bits(data: &[u8], bit: usize, width: u32) -> u64 {
    let first = bit / 8;
    let mut buf = [0u8; 16];
    let avail = data.len().saturating_sub(first).min(16);
    buf[..avail].copy_from_slice(&data[first..first + avail]);
    let v = u128::from_le_bytes(buf) >> (bit % 8);
    (v & ((1u128 << width) - 1)) as u64
}
