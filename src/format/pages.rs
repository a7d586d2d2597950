//! Page checksums: a CRC-32 per 4 KiB page of a section that queries read in place
//! (dictionaries, postings, the column index), so that a query checks the pages it reads and
//! nothing more (`index-format.md`, "Page checksums"). A whole-section checksum would make
//! every needle pay for reading every dictionary and posting list it touches once per segment,
//! which grows with the data; a page costs the same however large the index.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{crc32, Corrupt};

/// Bytes of section a page checksum covers (the last page may be shorter).
pub const PAGE_SIZE: usize = 4096;

/// Pages of a section of `len` bytes.
pub fn page_count(len: usize) -> usize {
    len.div_ceil(PAGE_SIZE)
}

/// The page-checksums section of `section`: one little-endian CRC-32 per page, in order.
pub fn encode(section: &[u8]) -> Vec<u8> {
    section
        .chunks(PAGE_SIZE)
        .flat_map(|page| crc32(page).to_le_bytes())
        .collect()
}

/// Which pages of a section were checked, shared by every reader of a segment in a process.
#[derive(Debug, Default)]
pub struct Checked(Vec<AtomicU64>);

impl Checked {
    pub fn for_section(len: usize) -> Checked {
        Checked((0..page_count(len).div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }
}

/// Checks the pages of one section as they are read, each at most once per process.
#[derive(Clone, Copy, Debug)]
pub struct PageCheck<'a> {
    data: &'a [u8],
    crcs: &'a [u8],
    checked: &'a Checked,
    section: &'static str,
    /// File offset of `data[0]`, for error messages.
    base: u64,
}

impl<'a> PageCheck<'a> {
    /// A checker for `data` from its page-checksums section `crcs` (itself already checked).
    pub fn new(
        data: &'a [u8],
        crcs: &'a [u8],
        checked: &'a Checked,
        section: &'static str,
        base: u64,
    ) -> Result<PageCheck<'a>, Corrupt> {
        let pages = page_count(data.len());
        if crcs.len() != pages * 4 || checked.0.len() != pages.div_ceil(64) {
            return Err(Corrupt::new(
                section,
                base,
                format!("{} page checksums for {pages} pages", crcs.len() / 4),
            ));
        }
        Ok(PageCheck {
            data,
            crcs,
            checked,
            section,
            base,
        })
    }

    /// Checks the pages holding `data[at..at + len]` (clamped to the section: reading past it
    /// is the caller's error to report).
    pub fn range(&self, at: usize, len: usize) -> Result<(), Corrupt> {
        let end = at.saturating_add(len).min(self.data.len());
        if at >= end {
            return Ok(());
        }
        for page in at / PAGE_SIZE..=(end - 1) / PAGE_SIZE {
            let (word, bit) = (&self.checked.0[page / 64], 1u64 << (page % 64));
            if word.load(Ordering::Relaxed) & bit != 0 {
                continue;
            }
            let bytes = &self.data[page * PAGE_SIZE..((page + 1) * PAGE_SIZE).min(self.data.len())];
            let want = u32::from_le_bytes(self.crcs[page * 4..page * 4 + 4].try_into().expect("4 bytes"));
            if crc32(bytes) != want {
                return Err(Corrupt::new(
                    self.section,
                    self.base + (page * PAGE_SIZE) as u64,
                    "page checksum mismatch",
                ));
            }
            word.fetch_or(bit, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_flipped_bit_in_the_page_read_only() {
        let mut data: Vec<u8> = (0..3 * PAGE_SIZE + 100).map(|i| (i * 7) as u8).collect();
        let crcs = encode(&data);
        assert_eq!(crcs.len(), 16);
        data[2 * PAGE_SIZE + 5] ^= 1;
        let checked = Checked::for_section(data.len());
        let check = PageCheck::new(&data, &crcs, &checked, "t", 1000).unwrap();
        assert!(check.range(0, 2 * PAGE_SIZE).is_ok());
        assert!(check.range(3 * PAGE_SIZE, 100).is_ok());
        let e = check.range(2 * PAGE_SIZE - 1, 2).unwrap_err();
        assert_eq!(e.offset, 1000 + 2 * PAGE_SIZE as u64);
        // A bad page stays bad; past the end is not this checker's business.
        assert!(check.range(2 * PAGE_SIZE + 5, 1).is_err());
        assert!(check.range(10 * PAGE_SIZE, 5).is_ok());
        assert!(PageCheck::new(&data, &crcs[..12], &checked, "t", 0).is_err());
    }
}
