//! A field's dictionary: its distinct values sorted, each with a reference to its posting
//! (`index-format.md`, "Dictionaries"). Sorted terms make a CIDR a contiguous range of term
//! numbers and let a regex run over the distinct values instead of the records.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv6Addr};

use super::bits::{read_bits, BitWriter};
use super::pages::PageCheck;
use super::{Bytes, Corrupt, FORMAT_VERSION};

pub const DICTIONARY_COUNT: usize = 0;
pub const DICTIONARY_KIND: usize = DICTIONARY_COUNT + 4;
pub const DICTIONARY_FLAGS: usize = DICTIONARY_KIND + 1;
pub const DICTIONARY_TERM_WIDTH: usize = DICTIONARY_FLAGS + 1;
pub const DICTIONARY_RESERVED: usize = DICTIONARY_TERM_WIDTH + 1;
pub const DICTIONARY_HEADER_SIZE: usize = DICTIONARY_RESERVED + 1;

// Posting references of versions 3 and 4, one fixed-size entry a term.
pub const POSTING_REF_OFFSET: usize = 0;
pub const POSTING_REF_COUNT: usize = POSTING_REF_OFFSET + 4;
pub const POSTING_REF_FIRST_START: usize = POSTING_REF_COUNT + 4;
pub const POSTING_REF_LAST_END: usize = POSTING_REF_FIRST_START + 8;
pub const POSTING_REF_SIZE: usize = POSTING_REF_LAST_END + 8;

// A narrow posting reference: the same fields, times in 4 bytes.
pub const NARROW_REF_FIRST_START: usize = POSTING_REF_COUNT + 4;
pub const NARROW_REF_LAST_END: usize = NARROW_REF_FIRST_START + 4;
pub const NARROW_REF_SIZE: usize = NARROW_REF_LAST_END + 4;

// The header of bit-packed posting references (version 5): four widths in bits, then the
// bases the times are stored above.
pub const PACKED_WIDTHS: usize = 0;
pub const PACKED_NULLS: usize = PACKED_WIDTHS + 4;
pub const PACKED_START_BASE: usize = PACKED_NULLS + 4;
pub const PACKED_END_BASE: usize = PACKED_START_BASE + 8;
pub const PACKED_HEADER_SIZE: usize = PACKED_END_BASE + 8;

const FLAG_POSTINGS: u8 = 1;
/// Posting references are narrow: every term's time span fits in 32 bits (flow logs' Unix
/// seconds do until 2106), which saves a third of the references.
const FLAG_NARROW: u8 = 2;
/// Posting references are bit-packed (version 5): a term's offset, count and times take the
/// bits the largest of them in the dictionary needs, about 8 bytes instead of 16, and
/// references are a quarter of a 20 M-record index's dictionaries and postings together.
const FLAG_PACKED: u8 = 4;
/// Integer terms take the width in header byte 6 (version 5): ports need 2 bytes, not 8.
const FLAG_NARROW_TERMS: u8 = 8;
/// The terms are those of the twin base's dictionary and are not stored (version 5):
/// `pkt-srcaddr` nearly always holds the same addresses as `srcaddr` (`Column::twin_base`).
const FLAG_TWIN_TERMS: u8 = 16;
/// One term's posting is stored as no bytes and is every record id that is in no other term's
/// posting and not null (version 6; "Complement postings"): in a column of a few values, the
/// most common one's posting is the largest, often a bitmap of a bit per record.
const FLAG_COMPLEMENT: u8 = 32;
/// Most terms a dictionary may have for one of its postings to be the complement: reading it
/// unions all the others.
pub const COMPLEMENT_MAX_TERMS: usize = 64;

/// The widest field of a packed reference: offsets and counts are 32-bit, times 64-bit.
const PACKED_MAX_WIDTHS: [u32; 4] = [32, 32, 64, 64];

/// How a dictionary's terms are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TermKind {
    /// Unsigned integers (numbers, enum codes) in 8 bytes, or in 1, 2 or 4 when flagged.
    UInt = 1,
    /// Addresses in IPv6 order, IPv4 as IPv4-mapped (`::ffff:a.b.c.d`): IPv6 addresses below
    /// the mapped range in 16 bytes, then the IPv4 ones in 4, then the IPv6 ones above in 16.
    Ip = 2,
    /// Byte strings (identifiers), with an offset table.
    Bytes = 3,
}

/// Bytes after the header of an address dictionary: how many IPv6 terms precede the IPv4 ones,
/// and how many IPv4 terms there are.
const ADDRESS_COUNTS_SIZE: usize = 8;

/// The IPv4-mapped range `::ffff:0:0/96`, as the first 12 bytes of a 16-byte address.
const MAPPED_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/// One term, borrowed from the dictionary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Term<'a> {
    UInt(u64),
    Ip([u8; 16]),
    Bytes(&'a [u8]),
}

/// The 16-byte form of an address, ordered so that IPv4 sorts as its mapped range.
pub fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The address of a 16-byte term. IPv4-mapped addresses are IPv4 (flow logs never write the
/// mapped form, so nothing is lost: `index-format.md`, "Known limits").
pub fn ip_from_bytes(b: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(b);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// Where a term's posting is in the field's postings section, how many ids it holds, and when
/// its records were seen. The posting ends where the next term's begins (the last one at the
/// end of the section).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostingRef {
    pub offset: u32,
    pub count: u32,
    /// Smallest `start` of the term's records (`u64::MAX` when none has one).
    pub first_start: u64,
    /// Largest `end` of the term's records (`0` when none has one).
    pub last_end: u64,
}

/// In a dictionary with a complement posting: how many ids are null, and the byte range of
/// their posting in the column's postings section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NullPosting {
    pub count: u32,
    pub range: (u64, u64),
}

/// Encodes the dictionary of a column whose terms are its twin base's (`own.len()` of them, of
/// the base's kind): which terms have their own posting, and the references of those, in term
/// order (the others' are the base's).
pub fn encode_twin(kind: TermKind, own: &[bool], own_postings: &[PostingRef], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&(own.len() as u32).to_le_bytes());
    out.push(kind as u8);
    out.push(FLAG_POSTINGS | FLAG_PACKED | FLAG_TWIN_TERMS);
    out.extend_from_slice(&[0, 0]);
    let words: Vec<u64> = own
        .chunks(64)
        .map(|bits| {
            bits.iter()
                .enumerate()
                .fold(0, |w, (k, own)| w | (u64::from(*own) << k))
        })
        .collect();
    words.iter().for_each(|w| out.extend_from_slice(&w.to_le_bytes()));
    let mut before = 0u32;
    for w in &words {
        out.extend_from_slice(&before.to_le_bytes());
        before += w.count_ones();
    }
    debug_assert_eq!(before as usize, own_postings.len());
    while !(out.len() - start).is_multiple_of(super::SECTION_ALIGN) {
        out.push(0);
    }
    encode_packed(own_postings, 0, out);
}

/// Encodes sorted, distinct `terms` (all of one kind) with optional posting references.
/// `complement_nulls` is the number of null ids when one of the postings is the complement
/// of the others and of the nulls' (stored as no bytes, after the nulls' posting).
pub fn encode(
    kind: TermKind,
    terms: &[Term<'_>],
    postings: Option<&[PostingRef]>,
    complement_nulls: Option<u32>,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    let term_width = match kind {
        TermKind::UInt => {
            let max = terms.iter().map(|t| uint(t)).max().unwrap_or(0);
            [1, 2, 4, 8]
                .into_iter()
                .find(|w| *w == 8 || max >> (8 * w) == 0)
                .expect("8 fits")
        }
        _ => 8,
    };
    let narrow_terms = term_width < 8;
    out.extend_from_slice(&(terms.len() as u32).to_le_bytes());
    out.push(kind as u8);
    out.push(
        if postings.is_some() {
            FLAG_POSTINGS | FLAG_PACKED
        } else {
            0
        } | if narrow_terms { FLAG_NARROW_TERMS } else { 0 }
            | if complement_nulls.is_some() { FLAG_COMPLEMENT } else { 0 },
    );
    out.push(if narrow_terms { term_width as u8 } else { 0 });
    out.push(0);
    match kind {
        TermKind::UInt => {
            for t in terms {
                out.extend_from_slice(&uint(t).to_le_bytes()[..term_width]);
            }
        }
        TermKind::Ip => {
            let ips: Vec<&[u8; 16]> = terms
                .iter()
                .map(|t| match t {
                    Term::Ip(b) => b,
                    _ => unreachable!("terms of one kind"),
                })
                .collect();
            let below = ips.iter().take_while(|b| b[..12] < MAPPED_PREFIX[..]).count();
            let v4 = ips[below..].iter().take_while(|b| b[..12] == MAPPED_PREFIX).count();
            out.extend_from_slice(&(below as u32).to_le_bytes());
            out.extend_from_slice(&(v4 as u32).to_le_bytes());
            for (i, b) in ips.iter().enumerate() {
                let mapped = (below..below + v4).contains(&i);
                out.extend_from_slice(if mapped { &b[12..] } else { &b[..] });
            }
        }
        TermKind::Bytes => {
            let mut offset = 0u32;
            out.extend_from_slice(&offset.to_le_bytes());
            for t in terms {
                let Term::Bytes(b) = t else {
                    unreachable!("terms of one kind")
                };
                offset += b.len() as u32;
                out.extend_from_slice(&offset.to_le_bytes());
            }
            for t in terms {
                let Term::Bytes(b) = t else {
                    unreachable!("terms of one kind")
                };
                out.extend_from_slice(b);
            }
        }
    }
    while !(out.len() - start).is_multiple_of(super::SECTION_ALIGN) {
        out.push(0);
    }
    if let Some(refs) = postings {
        encode_packed(refs, complement_nulls.unwrap_or(0), out);
    }
}

fn uint(t: &Term<'_>) -> u64 {
    match t {
        Term::UInt(v) => *v,
        _ => unreachable!("terms of one kind"),
    }
}

/// A packed reference's four numbers: offset, count, `start` code (0 for none, else the first
/// start above the base, plus one), last end above the base.
fn packed_fields(r: &PostingRef, start_base: u64, end_base: u64) -> [u64; 4] {
    let start = if r.first_start == u64::MAX {
        0
    } else {
        r.first_start - start_base + 1
    };
    [u64::from(r.offset), u64::from(r.count), start, r.last_end - end_base]
}

/// Packed references, with `nulls` (the null ids of a dictionary with a complement posting,
/// else 0) in the header.
fn encode_packed(refs: &[PostingRef], nulls: u32, out: &mut Vec<u8>) {
    let start_base = refs
        .iter()
        .map(|r| r.first_start)
        .filter(|&s| s != u64::MAX)
        .min()
        .unwrap_or(0);
    let end_base = refs.iter().map(|r| r.last_end).min().unwrap_or(0);
    let mut widths = [0u32; 4];
    for r in refs {
        for (w, v) in widths.iter_mut().zip(packed_fields(r, start_base, end_base)) {
            *w = (*w).max(u64::BITS - v.leading_zeros());
        }
    }
    out.extend(widths.map(|w| w as u8));
    out.extend_from_slice(&nulls.to_le_bytes());
    out.extend_from_slice(&start_base.to_le_bytes());
    out.extend_from_slice(&end_base.to_le_bytes());
    let mut bits = BitWriter::new(out);
    for r in refs {
        for (w, v) in widths.iter().zip(packed_fields(r, start_base, end_base)) {
            bits.push(v, *w);
        }
    }
    bits.finish();
}

fn not_adopted() -> Corrupt {
    Corrupt::new("dictionary", 0, "a twin dictionary's terms were not adopted")
}

/// How a dictionary's posting references are laid out.
#[derive(Clone, Copy, Debug)]
enum RefLayout {
    /// Versions 3 and 4: [`POSTING_REF_SIZE`] or [`NARROW_REF_SIZE`] bytes a term.
    Fixed(usize),
    /// Version 5: `bits` a term, split by `widths`, times above their bases.
    Packed {
        widths: [u32; 4],
        bits: usize,
        start_base: u64,
        end_base: u64,
    },
}

/// Posting references read in place.
#[derive(Clone, Copy, Debug)]
struct Refs<'a> {
    data: &'a [u8],
    layout: RefLayout,
    /// How many references there are.
    count: usize,
    /// Where `data` starts in its section, for page checks.
    at: usize,
    pages: Option<PageCheck<'a>>,
}

impl Refs<'_> {
    /// Reference `i` (`< count`).
    fn get(&self, i: usize) -> Result<PostingRef, Corrupt> {
        let b = Bytes::new(self.data, "posting references", 0);
        if i >= self.count {
            return Err(b.corrupt(0, format!("reference {i} is outside the dictionary")));
        }
        let check = |at: usize, len: usize| self.pages.map_or(Ok(()), |p| p.range(self.at + at, len));
        match self.layout {
            RefLayout::Fixed(size) => {
                let at = i * size;
                check(at, size)?;
                let (first_start, last_end) = if size == NARROW_REF_SIZE {
                    let first = b.u32(at + NARROW_REF_FIRST_START)?;
                    let first = if first == u32::MAX { u64::MAX } else { u64::from(first) };
                    (first, u64::from(b.u32(at + NARROW_REF_LAST_END)?))
                } else {
                    (b.u64(at + POSTING_REF_FIRST_START)?, b.u64(at + POSTING_REF_LAST_END)?)
                };
                Ok(PostingRef {
                    offset: b.u32(at + POSTING_REF_OFFSET)?,
                    count: b.u32(at + POSTING_REF_COUNT)?,
                    first_start,
                    last_end,
                })
            }
            RefLayout::Packed {
                widths,
                bits,
                start_base,
                end_base,
            } => {
                let mut bit = i * bits;
                let (lo, hi) = (bit / 8, (bit + bits).div_ceil(8));
                check(lo, hi - lo)?;
                let [offset, count, start, end] = widths.map(|w| {
                    let v = read_bits(&self.data[..hi], bit, w);
                    bit += w as usize;
                    v
                });
                let overflow = || b.corrupt(lo, "a packed time overflows");
                let first_start = match start {
                    0 => u64::MAX,
                    s => start_base.checked_add(s - 1).ok_or_else(overflow)?,
                };
                Ok(PostingRef {
                    // Widths of offsets and counts are at most 32 bits.
                    offset: offset as u32,
                    count: count as u32,
                    first_start,
                    last_end: end_base.checked_add(end).ok_or_else(overflow)?,
                })
            }
        }
    }
}

/// Which terms of a twin dictionary have a posting of their own: a bit per term, and per 64
/// terms the number of own terms before them, so that an own term's reference is found in
/// constant time.
#[derive(Clone, Copy, Debug)]
struct OwnTerms<'a> {
    words: &'a [u8],
    ranks: &'a [u8],
    /// Where `words` and `ranks` start in the section, for page checks.
    words_at: usize,
    ranks_at: usize,
    pages: Option<PageCheck<'a>>,
}

impl OwnTerms<'_> {
    /// The number of term `i`'s own reference, or `None` when its posting is the base's.
    fn rank(&self, i: usize) -> Result<Option<usize>, Corrupt> {
        let (k, bit) = (i / 64, i % 64);
        if let Some(p) = self.pages {
            p.range(self.words_at + k * 8, 8)?;
            p.range(self.ranks_at + k * 4, 4)?;
        }
        let word = Bytes::new(self.words, "own terms", 0).u64(k * 8)?;
        if word & (1 << bit) == 0 {
            return Ok(None);
        }
        let before = Bytes::new(self.ranks, "own terms", 0).u32(k * 4)? as usize;
        Ok(Some(before + (word & ((1u64 << bit) - 1)).count_ones() as usize))
    }
}

/// A dictionary read in place from its section bytes.
#[derive(Clone, Copy, Debug)]
pub struct Dictionary<'a> {
    kind: TermKind,
    len: usize,
    terms: &'a [u8],
    /// For byte-string terms: the offset table, then the strings.
    offsets: &'a [u8],
    refs: Option<Refs<'a>>,
    /// In a twin dictionary: which terms have their own posting (the others' are the base's,
    /// whose references come with its terms).
    own: Option<OwnTerms<'a>>,
    base_refs: Option<Refs<'a>>,
    /// Bytes of an integer term.
    term_width: usize,
    /// In an address dictionary: the IPv6 terms before the IPv4 ones, and the IPv4 ones.
    below_v4: usize,
    v4: usize,
    /// Where `terms` and `offsets` start in the section.
    terms_at: usize,
    offsets_at: usize,
    /// Checks the pages each term lookup reads; `None` when the caller checked the whole
    /// section. A twin's terms are in its base's section, checked by the base's pages.
    term_pages: Option<PageCheck<'a>>,
    /// The terms are the twin base's, to be adopted with [`Dictionary::adopt_terms`].
    twin_terms: bool,
    adopted: bool,
    /// With a complement posting: the number of null ids, whose posting starts the section.
    complement_nulls: Option<u32>,
}

impl<'a> Dictionary<'a> {
    /// Checks the shape (sizes, offsets) cheaply; term order is checked by [`Dictionary::verify`].
    ///
    /// With `pages`, every byte read (here and by later lookups) is first checked against its
    /// page's checksum; without, the caller vouches for the whole section.
    pub fn parse(
        section: &'a [u8],
        name: &str,
        base: u64,
        pages: Option<PageCheck<'a>>,
    ) -> Result<Dictionary<'a>, Corrupt> {
        let check = |at: usize, len: usize| pages.map_or(Ok(()), |p| p.range(at, len));
        check(0, DICTIONARY_HEADER_SIZE)?;
        let b = Bytes::new(section, name, base);
        let len = b.u32(DICTIONARY_COUNT)? as usize;
        let kind = match b.u8(DICTIONARY_KIND)? {
            1 => TermKind::UInt,
            2 => TermKind::Ip,
            3 => TermKind::Bytes,
            k => return Err(b.corrupt(DICTIONARY_KIND, format!("unknown term kind {k}"))),
        };
        let flags = b.u8(DICTIONARY_FLAGS)?;
        let width_byte = b.u8(DICTIONARY_TERM_WIDTH)?;
        let twin_terms = flags & FLAG_TWIN_TERMS != 0;
        let complement = flags & FLAG_COMPLEMENT != 0;
        if flags & !(FLAG_POSTINGS | FLAG_NARROW | FLAG_PACKED | FLAG_NARROW_TERMS | FLAG_TWIN_TERMS | FLAG_COMPLEMENT)
            != 0
            || twin_terms && (kind != TermKind::Ip || flags & FLAG_PACKED == 0)
            || complement && (kind == TermKind::Ip || flags & FLAG_PACKED == 0 || len > COMPLEMENT_MAX_TERMS)
            || flags & (FLAG_NARROW | FLAG_PACKED) != 0 && flags & FLAG_POSTINGS == 0
            || flags & FLAG_NARROW != 0 && flags & FLAG_PACKED != 0
            || flags & FLAG_NARROW_TERMS == 0 && width_byte != 0
            || b.u8(DICTIONARY_RESERVED)? != 0
        {
            return Err(b.corrupt(DICTIONARY_FLAGS, "reserved bits are not zero"));
        }
        let term_width = if flags & FLAG_NARROW_TERMS != 0 {
            if kind != TermKind::UInt || ![1, 2, 4].contains(&width_byte) {
                return Err(b.corrupt(DICTIONARY_TERM_WIDTH, "bad integer term width"));
            }
            usize::from(width_byte)
        } else {
            8
        };
        let mut at = DICTIONARY_HEADER_SIZE;
        let (mut below_v4, mut v4) = (0, 0);
        let (terms, offsets, end) = match kind {
            _ if twin_terms => (&[][..], &[][..], at),
            TermKind::UInt => {
                let size = len
                    .checked_mul(term_width)
                    .ok_or_else(|| b.corrupt(0, "term count overflows"))?;
                (b.slice(at, size)?, &[][..], at + size)
            }
            TermKind::Ip => {
                check(at, ADDRESS_COUNTS_SIZE)?;
                (below_v4, v4) = (b.u32(at)? as usize, b.u32(at + 4)? as usize);
                if below_v4.checked_add(v4).is_none_or(|n| n > len) {
                    return Err(b.corrupt(at, "more IPv4 and low IPv6 terms than terms"));
                }
                at += ADDRESS_COUNTS_SIZE;
                // Counts are at most 2^32 each: these products cannot overflow a 64-bit usize.
                let size = (len - v4) * 16 + v4 * 4;
                (b.slice(at, size)?, &[][..], at + size)
            }
            TermKind::Bytes => {
                let table = (len + 1)
                    .checked_mul(4)
                    .ok_or_else(|| b.corrupt(0, "term count overflows"))?;
                let offsets = b.slice(at, table)?;
                check(at + table - 4, 4)?;
                let total = u32::from_le_bytes(offsets[table - 4..].try_into().expect("4 bytes")) as usize;
                (b.slice(at + table, total)?, offsets, at + table + total)
            }
        };
        // A twin's own-terms bitset and ranks come first.
        let (own, refs_at, ref_count) = if twin_terms {
            let words = len.div_ceil(64);
            let (words_at, ranks_at) = (end, end + words * 8);
            check(words_at, words * 12)?;
            let own = OwnTerms {
                words: b.slice(words_at, words * 8)?,
                ranks: b.slice(ranks_at, words * 4)?,
                words_at,
                ranks_at,
                pages,
            };
            // The ranks must count the bits before them, and no bit may lie past the terms:
            // lookups trust both.
            let mut before = 0usize;
            for k in 0..words {
                let word = Bytes::new(own.words, name, base).u64(k * 8)?;
                let tail = len - k * 64;
                if Bytes::new(own.ranks, name, base).u32(k * 4)? as usize != before || tail < 64 && word >> tail != 0 {
                    return Err(b.corrupt(ranks_at + k * 4, "bad own-terms bitset"));
                }
                before += word.count_ones() as usize;
            }
            let refs_at = (ranks_at + words * 4).next_multiple_of(super::SECTION_ALIGN);
            if b.slice(ranks_at + words * 4, refs_at - ranks_at - words * 4)?
                .iter()
                .any(|&p| p != 0)
            {
                return Err(b.corrupt(ranks_at + words * 4, "padding byte is not zero"));
            }
            (Some(own), refs_at, before)
        } else {
            (None, end.next_multiple_of(super::SECTION_ALIGN), len)
        };
        let mut complement_nulls = None;
        let refs = if flags & FLAG_POSTINGS != 0 {
            let (layout, first) = if flags & FLAG_PACKED != 0 {
                check(refs_at, PACKED_HEADER_SIZE)?;
                let w = b.slice(refs_at + PACKED_WIDTHS, 4)?;
                let widths: [u32; 4] = std::array::from_fn(|k| u32::from(w[k]));
                let nulls = b.u32(refs_at + PACKED_NULLS)?;
                complement_nulls = complement.then_some(nulls);
                if nulls != 0 && !complement {
                    return Err(b.corrupt(refs_at + PACKED_NULLS, "a null count without a complement posting"));
                }
                if widths.iter().zip(PACKED_MAX_WIDTHS).any(|(w, max)| *w > max) {
                    return Err(b.corrupt(refs_at, "bad packed reference widths"));
                }
                let layout = RefLayout::Packed {
                    widths,
                    bits: widths.iter().sum::<u32>() as usize,
                    start_base: b.u64(refs_at + PACKED_START_BASE)?,
                    end_base: b.u64(refs_at + PACKED_END_BASE)?,
                };
                (layout, refs_at + PACKED_HEADER_SIZE)
            } else if flags & FLAG_NARROW != 0 {
                (RefLayout::Fixed(NARROW_REF_SIZE), refs_at)
            } else {
                (RefLayout::Fixed(POSTING_REF_SIZE), refs_at)
            };
            // At most 192 bits or 24 bytes a term, so at most 2^32 terms cannot overflow.
            let size = match layout {
                RefLayout::Fixed(size) => ref_count * size,
                RefLayout::Packed { bits, .. } => (ref_count * bits).div_ceil(8),
            };
            let data = b.slice(first, size)?;
            if first + size != section.len() {
                return Err(b.corrupt(first + size, "trailing bytes after the posting references"));
            }
            Some(Refs {
                data,
                layout,
                count: ref_count,
                at: first,
                pages,
            })
        } else {
            if refs_at.max(end) != section.len() && end != section.len() {
                return Err(b.corrupt(end, "trailing bytes after the terms"));
            }
            None
        };
        let terms_at = match kind {
            TermKind::Bytes => at + offsets.len(),
            _ => at,
        };
        Ok(Dictionary {
            kind,
            len,
            terms,
            offsets,
            refs,
            own,
            base_refs: None,
            term_width,
            below_v4,
            v4,
            terms_at,
            offsets_at: at,
            term_pages: pages,
            twin_terms,
            adopted: false,
            complement_nulls,
        })
    }

    /// The format versions whose segments may hold a dictionary stored as this one: fixed
    /// references only versions 3 and 4; packed references, narrow integer terms and twin
    /// terms versions 5 on; a complement posting versions 6 on; `None` when its form is common
    /// to all.
    pub fn form_versions(&self) -> Option<std::ops::RangeInclusive<u32>> {
        match self.refs.map(|r| r.layout) {
            _ if self.complement_nulls.is_some() => Some(6..=FORMAT_VERSION),
            Some(RefLayout::Fixed(_)) => Some(3..=4),
            Some(RefLayout::Packed { .. }) => Some(5..=FORMAT_VERSION),
            None if self.term_width < 8 || self.twin_terms => Some(5..=FORMAT_VERSION),
            None => None,
        }
    }

    /// With a complement posting (its term's posting is stored as no bytes): the null ids'
    /// posting, at the start of a postings section of `section_len` bytes.
    pub fn complement_nulls(&self, section_len: u64) -> Result<Option<NullPosting>, Corrupt> {
        let (Some(count), Some(refs)) = (self.complement_nulls, self.refs) else {
            return Ok(None);
        };
        let end = if refs.count == 0 {
            section_len
        } else {
            u64::from(refs.get(0)?.offset)
        };
        if end > section_len {
            return Err(Corrupt::new(
                "posting references",
                0,
                "the null posting runs past the section",
            ));
        }
        Ok(Some(NullPosting { count, range: (0, end) }))
    }

    /// Whether the terms are the twin base's, stored only there.
    pub fn has_twin_terms(&self) -> bool {
        self.twin_terms
    }

    /// Whether the terms still have to be adopted from the twin base.
    fn lacks_terms(&self) -> bool {
        self.twin_terms && !self.adopted
    }

    /// Takes the terms of `base`, the dictionary of this column's twin base, for a dictionary
    /// that does not store its own.
    pub fn adopt_terms(&mut self, base: &Dictionary<'a>) -> Result<(), Corrupt> {
        if !self.lacks_terms()
            || base.twin_terms
            || base.kind != self.kind
            || base.len != self.len
            || self.refs.is_some() && base.refs.is_none()
        {
            return Err(Corrupt::new(
                "dictionary",
                0,
                "a twin dictionary differs from its base in kind or term count",
            ));
        }
        self.terms = base.terms;
        self.offsets = base.offsets;
        self.term_width = base.term_width;
        self.below_v4 = base.below_v4;
        self.v4 = base.v4;
        self.terms_at = base.terms_at;
        self.offsets_at = base.offsets_at;
        self.term_pages = base.term_pages;
        self.base_refs = base.refs;
        self.adopted = true;
        Ok(())
    }

    pub fn kind(&self) -> TermKind {
        self.kind
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The term numbers of the IPv4 addresses of an address dictionary (empty for other kinds).
    pub fn ipv4_terms(&self) -> std::ops::Range<usize> {
        self.below_v4..self.below_v4 + self.v4
    }

    pub fn has_postings(&self) -> bool {
        self.refs.is_some()
    }

    /// Term `i`. Panics never: `i` out of range or a bad offset table is an error.
    pub fn term(&self, i: usize) -> Result<Term<'a>, Corrupt> {
        let bad = || Corrupt::new("dictionary", i as u64, format!("term {i} is outside the dictionary"));
        // Term numbers come from column data; a huge one would wrap `i * width` onto a real term.
        if i >= self.len {
            return Err(bad());
        }
        if self.lacks_terms() {
            return Err(Corrupt::new(
                "dictionary",
                0,
                "a twin dictionary's terms were not adopted",
            ));
        }
        let check = |at: usize, len: usize| self.term_pages.map_or(Ok(()), |p| p.range(at, len));
        match self.kind {
            TermKind::UInt => {
                let w = self.term_width;
                check(self.terms_at + i * w, w)?;
                let b = self.terms.get(i * w..i * w + w).ok_or_else(bad)?;
                let mut v = [0u8; 8];
                v[..w].copy_from_slice(b);
                Ok(Term::UInt(u64::from_le_bytes(v)))
            }
            TermKind::Ip => {
                let (below, v4) = (self.below_v4, self.v4);
                let (at, width) = if i < below {
                    (i * 16, 16)
                } else if i < below + v4 {
                    (below * 16 + (i - below) * 4, 4)
                } else {
                    (below * 16 + v4 * 4 + (i - below - v4) * 16, 16)
                };
                check(self.terms_at + at, width)?;
                let b = self.terms.get(at..at + width).ok_or_else(bad)?;
                Ok(Term::Ip(match *b {
                    [a, b, c, d] => std::net::Ipv4Addr::new(a, b, c, d).to_ipv6_mapped().octets(),
                    _ => b.try_into().expect("16 bytes"),
                }))
            }
            TermKind::Bytes => {
                check(self.offsets_at + i * 4, 8)?;
                let off = |k: usize| -> Option<usize> {
                    self.offsets
                        .get(k * 4..k * 4 + 4)
                        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
                };
                let (lo, hi) = (off(i).ok_or_else(bad)?, off(i + 1).ok_or_else(bad)?);
                check(self.terms_at + lo, hi.saturating_sub(lo))?;
                self.terms.get(lo..hi).map(Term::Bytes).ok_or_else(bad)
            }
        }
    }

    /// The first term number whose term is `>= probe` (binary search).
    pub fn lower_bound(&self, probe: &Term<'_>) -> Result<usize, Corrupt> {
        if self.lacks_terms() {
            return Err(Corrupt::new(
                "dictionary",
                0,
                "a twin dictionary's terms were not adopted",
            ));
        }
        if let (TermKind::Ip, Term::Ip(b)) = (self.kind, probe) {
            if let Some(v4) = std::net::Ipv6Addr::from(*b).to_ipv4_mapped() {
                return self.lower_bound_v4(u32::from(v4));
            }
        }
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.term(mid)?.cmp(probe) == Ordering::Less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// [`Dictionary::lower_bound`] of an IPv4 address in an address dictionary: every IPv6 term
    /// below the IPv4-mapped range sorts before it and every one above after it, so the search
    /// runs over the 4-byte terms alone, as numbers (1,000 IOC addresses make 110,000 searches
    /// on 20 M records, and building 16-byte terms to compare was most of their cost).
    fn lower_bound_v4(&self, probe: u32) -> Result<usize, Corrupt> {
        let first = self.below_v4 * 16;
        let (mut lo, mut hi) = (0, self.v4);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = first + mid * 4;
            if let Some(p) = self.term_pages {
                p.range(self.terms_at + at, 4)?;
            }
            let b = self
                .terms
                .get(at..at + 4)
                .ok_or_else(|| Corrupt::new("dictionary", mid as u64, "an IPv4 term is outside the dictionary"))?;
            if u32::from_be_bytes(b.try_into().expect("4 bytes")) < probe {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(self.below_v4 + lo)
    }

    /// The term number of `probe`, if present.
    pub fn find(&self, probe: &Term<'_>) -> Result<Option<usize>, Corrupt> {
        let i = self.lower_bound(probe)?;
        Ok((i < self.len && self.term(i)? == *probe).then_some(i))
    }

    pub fn posting_ref(&self, i: usize) -> Result<Option<PostingRef>, Corrupt> {
        let Some(refs) = self.refs else { return Ok(None) };
        match self.own_reference(i)? {
            Some(r) => refs.get(r).map(Some),
            None => self.base_refs.ok_or_else(not_adopted)?.get(i).map(Some),
        }
    }

    /// The number of term `i`'s reference among this dictionary's, or `None` for a twin's term
    /// whose reference and posting are the base's.
    fn own_reference(&self, i: usize) -> Result<Option<usize>, Corrupt> {
        if i >= self.len {
            return Err(Corrupt::new(
                "posting references",
                i as u64,
                format!("term {i} is outside the dictionary"),
            ));
        }
        match self.own {
            None => Ok(Some(i)),
            Some(own) => own.rank(i),
        }
    }

    /// Byte range of term `i`'s posting in a postings section of `section_len` bytes; empty
    /// for a twin's term whose posting is its base's.
    pub fn posting_range(&self, i: usize, section_len: u64) -> Result<Option<(u64, u64)>, Corrupt> {
        let Some(refs) = self.refs else { return Ok(None) };
        let Some(r) = self.own_reference(i)? else {
            return Ok(Some((0, 0)));
        };
        let start = u64::from(refs.get(r)?.offset);
        let end = if r + 1 < refs.count {
            u64::from(refs.get(r + 1)?.offset)
        } else {
            section_len
        };
        if start > end || end > section_len {
            return Err(Corrupt::new(
                "posting references",
                i as u64,
                "posting offsets are out of order or past the section",
            ));
        }
        Ok(Some((start, end)))
    }

    /// Checks that terms are strictly increasing (the order every lookup relies on).
    pub fn verify(&self) -> Result<(), Corrupt> {
        let mut prev: Option<Term<'a>> = None;
        for i in 0..self.len {
            let t = self.term(i)?;
            // An address stored in 16 bytes inside the IPv4 range would be a second spelling
            // of an IPv4 term, which lookups would miss.
            let in_v4_run = (self.below_v4..self.below_v4 + self.v4).contains(&i);
            if matches!(t, Term::Ip(b) if b[..12] == MAPPED_PREFIX && !in_v4_run) {
                return Err(Corrupt::new(
                    "dictionary",
                    i as u64,
                    format!("term {i} is an IPv4 address in 16 bytes"),
                ));
            }
            if prev.is_some_and(|p| p >= t) {
                return Err(Corrupt::new(
                    "dictionary",
                    i as u64,
                    format!("term {i} is out of order"),
                ));
            }
            prev = Some(t);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_number_past_the_dictionary_is_an_error_even_when_its_offset_wraps() {
        // Found by fuzzing: (2^61 + 1) * 8 wrapped to 8 and gave back term 1 (or panicked).
        let mut out = Vec::new();
        encode(TermKind::UInt, &[Term::UInt(1), Term::UInt(2)], None, None, &mut out);
        let d = Dictionary::parse(&out, "dictionary", 0, None).unwrap();
        assert_eq!(d.term(1).unwrap(), Term::UInt(2));
        assert!(d.term((1 << 61) + 1).is_err());
        assert!(d.term(2).is_err());
    }

    #[test]
    fn lower_bound_agrees_with_a_scan_for_every_kind_of_address() {
        // IPv6 below the IPv4-mapped range, IPv4, IPv6 above it; probes between and on them.
        let terms: Vec<[u8; 16]> = {
            let mut v: Vec<[u8; 16]> = [
                "::1",
                "::fffe:1.2.3.4",
                "0.0.0.0",
                "9.255.255.255",
                "10.0.0.1",
                "10.0.0.9",
                "192.168.1.1",
                "255.255.255.255",
                "::1:0:0:0",
                "2001:db8::1",
            ]
            .iter()
            .map(|s| ip_bytes(s.parse().unwrap()))
            .collect();
            v.sort();
            v
        };
        let probes = [
            "::",
            "::1",
            "::2",
            "0.0.0.0",
            "0.0.0.1",
            "10.0.0.0",
            "10.0.0.1",
            "10.0.0.5",
            "10.0.0.9",
            "11.0.0.0",
            "255.255.255.255",
            "::1:0:0:0",
            "2001:db8::",
            "2001:db8::2",
            "ffff::",
        ];
        for n in 0..=terms.len() {
            for skip in 0..terms.len().saturating_sub(n).max(1) {
                let subset: Vec<Term<'_>> = terms[skip..(skip + n).min(terms.len())]
                    .iter()
                    .map(|b| Term::Ip(*b))
                    .collect();
                let mut out = Vec::new();
                encode(TermKind::Ip, &subset, None, None, &mut out);
                let d = Dictionary::parse(&out, "d", 0, None).unwrap();
                for p in probes {
                    let probe = Term::Ip(ip_bytes(p.parse().unwrap()));
                    let scan = subset.iter().take_while(|t| **t < probe).count();
                    assert_eq!(d.lower_bound(&probe).unwrap(), scan, "{p} in {subset:?}");
                }
            }
        }
    }

    #[test]
    fn round_trip_every_kind_and_search() {
        let ips: Vec<[u8; 16]> = {
            let mut v: Vec<[u8; 16]> = ["10.0.0.1", "10.0.0.9", "2001:db8::1", "192.168.1.1"]
                .iter()
                .map(|s| ip_bytes(s.parse().unwrap()))
                .collect();
            v.sort();
            v
        };
        let strings: [&[u8]; 3] = [b"eni-1", b"eni-2", b"i-0"];
        let cases: Vec<(TermKind, Vec<Term<'_>>)> = vec![
            (TermKind::UInt, vec![Term::UInt(1), Term::UInt(22), Term::UInt(443)]),
            (TermKind::Ip, ips.iter().map(|b| Term::Ip(*b)).collect()),
            (TermKind::Ip, ips[..2].iter().map(|b| Term::Ip(*b)).collect()),
            (TermKind::Ip, ips[2..3].iter().map(|b| Term::Ip(*b)).collect()),
            (TermKind::Bytes, strings.iter().map(|s| Term::Bytes(s)).collect()),
        ];
        for (kind, terms) in cases {
            // Without references; packed ones, with a term without times and one past 32 bits;
            // the fixed-size ones of versions 3 and 4, narrow and wide.
            for (refs_form, wide) in [
                (None, false),
                (Some(FLAG_PACKED), true),
                (Some(FLAG_NARROW), false),
                (Some(0), true),
            ] {
                let mut refs: Vec<PostingRef> = (0..terms.len())
                    .map(|i| PostingRef {
                        offset: i as u32 * 10,
                        count: i as u32 + 1,
                        first_start: 1_700_000_000 + i as u64,
                        last_end: 1_700_000_600 + i as u64,
                    })
                    .collect();
                (refs[0].first_start, refs[0].last_end) = (u64::MAX, 0);
                if wide {
                    refs.last_mut().expect("terms").last_end = 1 << 40;
                }
                let mut out = Vec::new();
                match refs_form {
                    Some(FLAG_PACKED) => encode(kind, &terms, Some(&refs), None, &mut out),
                    Some(flag) => encode_fixed_refs(kind, &terms, &refs, flag, &mut out),
                    None => encode(kind, &terms, None, None, &mut out),
                }
                let d = Dictionary::parse(&out, "d", 0, None).unwrap();
                d.verify().unwrap();
                assert_eq!(d.len(), terms.len());
                for (i, t) in terms.iter().enumerate() {
                    assert_eq!(d.term(i).unwrap(), *t);
                    assert_eq!(d.find(t).unwrap(), Some(i));
                    assert_eq!(d.posting_ref(i).unwrap(), refs_form.map(|_| refs[i]));
                }
                assert!(d.term(terms.len()).is_err());
                if refs_form.is_some() {
                    assert!(d.posting_ref(terms.len()).is_err());
                }
                for cut in 0..out.len() {
                    if let Ok(d) = Dictionary::parse(&out[..cut], "d", 0, None) {
                        // A cut that still parses must have lost only padding.
                        assert!(d.verify().is_ok());
                    }
                }
            }
        }
        assert_eq!(
            ip_from_bytes(ip_bytes("10.1.2.3".parse().unwrap())),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
    }

    /// A dictionary as versions 3 and 4 wrote it: integer terms in 8 bytes, fixed-size
    /// references (`flag` 0: wide).
    fn encode_fixed_refs(kind: TermKind, terms: &[Term<'_>], refs: &[PostingRef], flag: u8, out: &mut Vec<u8>) {
        encode(kind, terms, None, None, out);
        if kind == TermKind::UInt {
            out.truncate(DICTIONARY_HEADER_SIZE);
            (out[DICTIONARY_FLAGS], out[DICTIONARY_TERM_WIDTH]) = (0, 0);
            terms.iter().for_each(|t| out.extend_from_slice(&uint(t).to_le_bytes()));
        }
        out[DICTIONARY_FLAGS] |= FLAG_POSTINGS | flag;
        for r in refs {
            out.extend_from_slice(&r.offset.to_le_bytes());
            out.extend_from_slice(&r.count.to_le_bytes());
            if flag == FLAG_NARROW {
                out.extend_from_slice(&u32::try_from(r.first_start).unwrap_or(u32::MAX).to_le_bytes());
                out.extend_from_slice(&(r.last_end as u32).to_le_bytes());
            } else {
                out.extend_from_slice(&r.first_start.to_le_bytes());
                out.extend_from_slice(&r.last_end.to_le_bytes());
            }
        }
    }

    #[test]
    fn twin_terms_are_adopted_only_from_a_matching_base() {
        let ips: Vec<Term<'_>> = ["10.0.0.1", "10.0.0.2"]
            .iter()
            .map(|s| Term::Ip(ip_bytes(s.parse().unwrap())))
            .collect();
        let refs: Vec<PostingRef> = (0..2)
            .map(|i| PostingRef {
                offset: 0,
                count: 1,
                first_start: 100 + i,
                last_end: 160 + i,
            })
            .collect();
        let (mut base, mut other, mut twin_bytes) = (Vec::new(), Vec::new(), Vec::new());
        encode(TermKind::Ip, &ips, Some(&refs), None, &mut base);
        encode(TermKind::Ip, &ips[..1], Some(&refs[..1]), None, &mut other);
        // Term 0 has a posting of its own, term 1 its base's.
        let own_ref = PostingRef { count: 2, ..refs[0] };
        encode_twin(TermKind::Ip, &[true, false], &[own_ref], &mut twin_bytes);
        let base = Dictionary::parse(&base, "d", 0, None).unwrap();
        let other = Dictionary::parse(&other, "d", 0, None).unwrap();
        let twin = Dictionary::parse(&twin_bytes, "d", 0, None).unwrap();
        assert!(twin.has_twin_terms() && twin.form_versions() == Some(5..=FORMAT_VERSION));
        // Before adoption no term can be looked up, nor a reference kept by the base.
        assert!(twin.term(0).is_err() && twin.find(&ips[0]).is_err());
        assert_eq!(twin.posting_ref(0).unwrap(), Some(own_ref));
        assert!(twin.posting_ref(1).is_err());
        assert_eq!(twin.posting_range(1, 100).unwrap(), Some((0, 0)));
        assert_eq!(twin.posting_range(0, 100).unwrap(), Some((0, 100)));
        // A base of another length, or a twin as base, is refused.
        assert!(twin.clone().adopt_terms(&other).is_err());
        assert!(twin.clone().adopt_terms(&twin).is_err());
        let mut adopted = twin;
        adopted.adopt_terms(&base).unwrap();
        assert!(adopted.clone().adopt_terms(&base).is_err(), "adopted twice");
        assert_eq!(adopted.find(&ips[1]).unwrap(), Some(1));
        assert_eq!(adopted.posting_ref(1).unwrap(), Some(refs[1]));
        assert_eq!(adopted.posting_ref(0).unwrap(), Some(own_ref));
        // Ranks that do not count the bits before them, or a bit past the terms, are refused.
        for (at, flip) in [(DICTIONARY_HEADER_SIZE, 4u8), (DICTIONARY_HEADER_SIZE + 8, 1)] {
            let mut bad = twin_bytes.clone();
            bad[at] ^= flip;
            assert!(Dictionary::parse(&bad, "d", 0, None).is_err(), "flip at {at}");
        }
        // Twin terms only in an address dictionary with packed references.
        let mut bad = twin_bytes.clone();
        bad[DICTIONARY_KIND] = TermKind::Bytes as u8;
        assert!(Dictionary::parse(&bad, "d", 0, None).is_err());
    }

    #[test]
    fn a_twin_finds_each_terms_reference_its_own_or_its_bases() {
        // Own terms at every position of a word, whole words and a last partial one, none,
        // all; no terms at all.
        type IsOwn = fn(u32) -> bool;
        let patterns: [(u32, IsOwn); 6] = [
            (300, |i| i % 7 == 0 || i % 64 > 60 || (100..140).contains(&i)),
            (128, |i| i % 64 == 63 || i == 0),
            (64, |i| i % 2 == 1),
            (65, |_| false),
            (70, |_| true),
            (0, |_| true),
        ];
        for (terms, is_own) in patterns {
            let ips: Vec<Term<'_>> = (0..terms)
                .map(|i| Term::Ip(ip_bytes(std::net::Ipv4Addr::from(0x0a00_0000 + i).into())))
                .collect();
            let refs = |count: u32| -> Vec<PostingRef> {
                (0..terms)
                    .map(|i| PostingRef {
                        offset: i * 7,
                        count: count + i % 3,
                        first_start: 1_712_000_000 + u64::from(i),
                        last_end: 1_712_000_100 + u64::from(i),
                    })
                    .collect()
            };
            let (base_refs, twin_refs) = (refs(1), refs(10));
            let own: Vec<bool> = (0..terms).map(is_own).collect();
            let own_refs: Vec<PostingRef> = twin_refs
                .iter()
                .zip(&own)
                .filter(|(_, o)| **o)
                .map(|(r, _)| *r)
                .collect();
            let (mut base, mut twin) = (Vec::new(), Vec::new());
            encode(TermKind::Ip, &ips, Some(&base_refs), None, &mut base);
            encode_twin(TermKind::Ip, &own, &own_refs, &mut twin);
            let base = Dictionary::parse(&base, "d", 0, None).unwrap();
            let mut twin = Dictionary::parse(&twin, "d", 0, None).unwrap();
            twin.adopt_terms(&base).unwrap();
            let end = 10_000;
            for i in 0..terms as usize {
                let want = if own[i] { twin_refs[i] } else { base_refs[i] };
                assert_eq!(twin.posting_ref(i).unwrap(), Some(want), "{terms} terms, term {i}");
                let next_own = (i + 1..terms as usize)
                    .find(|&j| own[j])
                    .map_or(end, |j| u64::from(twin_refs[j].offset));
                let range = if own[i] {
                    (u64::from(twin_refs[i].offset), next_own)
                } else {
                    (0, 0)
                };
                assert_eq!(
                    twin.posting_range(i, end).unwrap(),
                    Some(range),
                    "{terms} terms, term {i}"
                );
            }
            assert!(twin.posting_ref(terms as usize).is_err());
        }
    }

    #[test]
    fn integer_terms_take_the_narrowest_width_that_holds_them() {
        for (max, width) in [
            (0, 1),
            (255, 1),
            (256, 2),
            (65_535, 2),
            (65_536, 4),
            (u64::from(u32::MAX), 4),
            (1 << 32, 8),
        ] {
            let terms = [Term::UInt(0), Term::UInt(max)];
            let mut out = Vec::new();
            encode(
                TermKind::UInt,
                &terms[..if max == 0 { 1 } else { 2 }],
                None,
                None,
                &mut out,
            );
            let d = Dictionary::parse(&out, "d", 0, None).unwrap();
            assert_eq!(d.term_width, width, "{max}");
            assert_eq!(d.term(d.len() - 1).unwrap(), Term::UInt(max));
            assert_eq!(d.find(&Term::UInt(max)).unwrap(), Some(d.len() - 1));
        }
    }

    #[test]
    fn packed_references_take_the_bits_their_largest_values_need() {
        let refs: Vec<PostingRef> = (0..1000u32)
            .map(|i| PostingRef {
                offset: i * 37,
                count: 1 + i % 5,
                first_start: 1_712_000_000 + u64::from(i) * 40,
                last_end: 1_712_000_060 + u64::from(i) * 40,
            })
            .collect();
        let terms: Vec<Term<'_>> = (0..1000).map(Term::UInt).collect();
        let mut out = Vec::new();
        encode(TermKind::UInt, &terms, Some(&refs), None, &mut out);
        let d = Dictionary::parse(&out, "d", 0, None).unwrap();
        // Offsets below 37,000 take 16 bits, counts up to 5 take 3, times 16 each: 51 bits.
        let layout = d.refs.unwrap().layout;
        assert!(matches!(layout, RefLayout::Packed { bits: 51, .. }), "{layout:?}");
        for (i, r) in refs.iter().enumerate() {
            assert_eq!(d.posting_ref(i).unwrap(), Some(*r));
        }
    }

    #[test]
    fn a_complement_posting_is_allowed_only_in_small_packed_dictionaries_without_addresses() {
        let refs = |n: u32| -> Vec<PostingRef> {
            (0..n)
                .map(|i| PostingRef {
                    offset: 10 + i * 4,
                    count: 1,
                    first_start: 1_712_000_000,
                    last_end: 1_712_000_060,
                })
                .collect()
        };
        let terms: Vec<Term<'_>> = (0..65).map(Term::UInt).collect();
        let mut out = Vec::new();
        encode(TermKind::UInt, &terms[..3], Some(&refs(3)), Some(2), &mut out);
        let d = Dictionary::parse(&out, "d", 0, None).unwrap();
        assert_eq!(
            d.complement_nulls(100).unwrap(),
            Some(NullPosting {
                count: 2,
                range: (0, 10)
            })
        );
        assert_eq!(d.form_versions(), Some(6..=FORMAT_VERSION));
        // A null posting past its section.
        assert!(d.complement_nulls(9).is_err());
        // A null count without the flag is refused.
        let flags = DICTIONARY_FLAGS;
        let mut unflagged = out.clone();
        unflagged[flags] &= !FLAG_COMPLEMENT;
        assert!(Dictionary::parse(&unflagged, "d", 0, None).is_err());
        let mut out = Vec::new();
        encode(TermKind::UInt, &terms[..3], Some(&refs(3)), Some(0), &mut out);
        unflagged = out.clone();
        unflagged[flags] &= !FLAG_COMPLEMENT;
        assert_eq!(
            Dictionary::parse(&unflagged, "d", 0, None)
                .unwrap()
                .complement_nulls(100)
                .unwrap(),
            None
        );
        // Too many terms, addresses, or no references.
        let mut out = Vec::new();
        encode(TermKind::UInt, &terms, Some(&refs(65)), Some(0), &mut out);
        assert!(Dictionary::parse(&out, "d", 0, None).is_err());
        let ips = [Term::Ip(ip_bytes("10.0.0.1".parse().unwrap()))];
        let mut out = Vec::new();
        encode(TermKind::Ip, &ips, Some(&refs(1)), Some(0), &mut out);
        assert!(Dictionary::parse(&out, "d", 0, None).is_err());
        let mut out = Vec::new();
        encode(TermKind::UInt, &terms[..3], None, Some(0), &mut out);
        assert!(Dictionary::parse(&out, "d", 0, None).is_err());
    }
}
