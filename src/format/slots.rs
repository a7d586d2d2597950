//! The slot-runs section (format 7): for each (interface, account) subject of a segment, the
//! runs of 5-minute slots its records overlap, with the log-status values seen in each
//! (`index-format.md`, "Slot-runs section"). A search warns about gaps and SKIPDATA of the
//! interfaces it matched, in its window; reading that from the records meant decoding the
//! times, status and subject of every record of those interfaces (427,000 for one instance over
//! a month). A search reads the runs of a few subjects in place: a table of subjects sorted by
//! interface, then each subject's runs as varints.

use std::collections::HashMap;

use super::bits::{read_varint, write_varint};
use super::skipdata::NO_TERM;
use super::{Bytes, Corrupt};

/// Seconds per slot: the S3 delivery period, the grid of search warnings.
pub const SLOT_SECONDS: u64 = 300;

/// Bytes of the header: the subject count and the length of the runs.
pub const HEADER_SIZE: usize = 8;

/// Bytes of a subject's entry: interface, account, where its runs start, how many.
pub const SUBJECT_SIZE: usize = 16;

/// Slots end before this: a slot number and a gap shifted left 3 bits fit in 32 bits. Times a
/// reader accepts (below 10^11 seconds) stay below slot 333,333,334.
pub const SLOT_LIMIT: u32 = 1 << 29;

/// Slots `first .. first + count` (epoch-aligned slot numbers: seconds / [`SLOT_SECONDS`]), in
/// each of which the subject's records showed the statuses of `seen` (bit `LogStatus as u8`:
/// 1 OK or no log-status, 2 NODATA, 4 SKIPDATA) and no others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotRun {
    pub first: u32,
    pub count: u32,
    pub seen: u8,
}

impl SlotRun {
    /// The slot after the run.
    pub fn end(&self) -> u64 {
        u64::from(self.first) + u64::from(self.count)
    }
}

/// One subject's runs, in slot order, disjoint; touching runs differ in `seen`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectRuns {
    /// Term numbers, as the segment's columns hold them.
    pub interface: u32,
    pub account: Option<u32>,
    pub runs: Vec<SlotRun>,
}

/// The slot of a time, saturating below [`SLOT_LIMIT`].
fn slot(t: u64) -> u32 {
    u32::try_from(t / SLOT_SECONDS).unwrap_or(u32::MAX).min(SLOT_LIMIT - 1)
}

/// Collects the records of a segment, in record order, into its subjects' runs. Memory stays
/// within a few spans per run: each subject's spans are merged into runs whenever they double.
#[derive(Default)]
pub struct RunsBuilder {
    /// Subjects in order of their first record.
    subjects: Vec<(u32, Option<u32>, Spans)>,
    places: HashMap<(u32, Option<u32>), usize>,
    last: Option<((u32, Option<u32>), usize)>,
}

#[derive(Default)]
struct Spans {
    /// Inclusive slot spans and their seen bits; the first `merged` are disjoint runs.
    spans: Vec<(u32, u32, u8)>,
    merged: usize,
}

impl RunsBuilder {
    /// Adds a record of `interface` and `account` (term numbers) with its `start`, `end` (when
    /// it has both; a record without them still makes its subject known) and status bit.
    pub fn add(&mut self, interface: u32, account: Option<u32>, times: Option<(u64, u64)>, seen: u8) {
        let subject = (interface, account);
        let at = match self.last {
            Some((s, at)) if s == subject => at,
            _ => {
                let at = *self.places.entry(subject).or_insert_with(|| {
                    self.subjects.push((interface, account, Spans::default()));
                    self.subjects.len() - 1
                });
                self.last = Some((subject, at));
                at
            }
        };
        let Some((start, end)) = times else {
            return;
        };
        let (first, last) = (slot(start.min(end)), slot(start.max(end)));
        let spans = &mut self.subjects[at].2;
        // Records of an interface come in time order: most extend the last span.
        match spans.spans.last_mut() {
            Some(prev) if prev.2 == seen && prev.0 <= first && first <= prev.1.saturating_add(1) => {
                prev.1 = prev.1.max(last);
            }
            _ => {
                spans.spans.push((first, last, seen));
                if spans.spans.len() > 2 * spans.merged + 1024 {
                    spans.merge();
                }
            }
        }
    }

    /// The subjects in the order the section keeps them: by interface, and an interface's in the
    /// order of their first records. Records come by day, then interface, so an interface met
    /// first on a later day may have come first; the sort is stable, so the subjects of one
    /// interface keep their order (and segments of versions before 9, whose records came by
    /// interface, are rebuilt exactly as they were written when verified).
    pub fn finish(mut self) -> Vec<SubjectRuns> {
        self.subjects.sort_by_key(|(interface, _, _)| *interface);
        self.subjects
            .into_iter()
            .map(|(interface, account, mut spans)| {
                spans.merge();
                let runs = spans
                    .spans
                    .iter()
                    .map(|&(first, last, seen)| SlotRun {
                        first,
                        count: last - first + 1,
                        seen,
                    })
                    .collect();
                SubjectRuns {
                    interface,
                    account,
                    runs,
                }
            })
            .collect()
    }
}

impl Spans {
    /// Replaces the spans by the runs they make: disjoint, in order, touching ones unequal.
    fn merge(&mut self) {
        // Each span opens its bits at its first slot and closes them after its last.
        let mut events: Vec<(u64, bool, u8)> = Vec::with_capacity(self.spans.len() * 2);
        for &(first, last, seen) in &self.spans {
            events.push((u64::from(first), true, seen));
            events.push((u64::from(last) + 1, false, seen));
        }
        events.sort_unstable();
        let mut open = [0u32; 8];
        let mut runs: Vec<(u32, u32, u8)> = Vec::new();
        let mut at = 0u64;
        for (slot, opens, seen) in events {
            let bits = (0..8).filter(|b| open[*b] > 0).fold(0u8, |acc, b| acc | (1 << b));
            if slot > at && bits != 0 {
                let (first, last) = (at as u32, (slot - 1) as u32);
                match runs.last_mut() {
                    Some(prev) if prev.2 == bits && u64::from(prev.1) + 1 == at => prev.1 = last,
                    _ => runs.push((first, last, bits)),
                }
            }
            at = slot;
            for (b, count) in open.iter_mut().enumerate() {
                if seen & (1 << b) != 0 {
                    if opens {
                        *count += 1;
                    } else {
                        *count -= 1;
                    }
                }
            }
        }
        self.merged = runs.len();
        self.spans = runs;
    }
}

/// The section's bytes for `subjects`: interface terms must not decrease.
pub fn encode(subjects: &[SubjectRuns]) -> Vec<u8> {
    let mut table = Vec::with_capacity(subjects.len() * SUBJECT_SIZE);
    let mut runs = Vec::new();
    for s in subjects {
        table.extend_from_slice(&s.interface.to_le_bytes());
        table.extend_from_slice(&s.account.unwrap_or(NO_TERM).to_le_bytes());
        table.extend_from_slice(&(runs.len() as u32).to_le_bytes());
        table.extend_from_slice(&(s.runs.len() as u32).to_le_bytes());
        let mut end = 0;
        for r in &s.runs {
            write_varint((r.first - end) << 3 | u32::from(r.seen), &mut runs);
            write_varint(r.count - 1, &mut runs);
            end = r.first + r.count;
        }
    }
    let mut out = Vec::with_capacity(HEADER_SIZE + table.len() + runs.len());
    out.extend_from_slice(&(subjects.len() as u32).to_le_bytes());
    out.extend_from_slice(&(runs.len() as u32).to_le_bytes());
    out.extend_from_slice(&table);
    out.extend_from_slice(&runs);
    out
}

/// A slot-runs section, read in place: a search decodes the runs of the subjects it asks for.
pub struct SlotRuns<'a> {
    b: Bytes<'a, 'static>,
    subjects: usize,
    runs_at: usize,
}

impl<'a> SlotRuns<'a> {
    /// Checks the header: at most one subject per record, and sizes that add up.
    pub fn parse(b: Bytes<'a, 'static>, record_count: u64) -> Result<SlotRuns<'a>, Corrupt> {
        let subjects = b.u32(0)? as usize;
        let runs_len = b.u32(4)? as usize;
        let runs_at = subjects
            .checked_mul(SUBJECT_SIZE)
            .and_then(|t| t.checked_add(HEADER_SIZE));
        if subjects as u64 > record_count || runs_at.and_then(|a| a.checked_add(runs_len)) != Some(b.len()) {
            return Err(b.corrupt(
                0,
                format!("{subjects} subjects and {runs_len} bytes of runs do not make the section"),
            ));
        }
        let runs = SlotRuns {
            b,
            subjects,
            runs_at: runs_at.expect("checked above"),
        };
        // Searches find an interface's subjects by binary search: the table must be in order,
        // and its runs' offsets rise from 0 within the runs.
        let mut previous = (0, 0);
        for k in 0..subjects {
            let at = HEADER_SIZE + k * SUBJECT_SIZE;
            let entry = (runs.b.u32(at)?, runs.b.u32(at + 8)? as usize);
            let first_at_zero = k > 0 || entry.1 == 0;
            if entry.0 < previous.0 || entry.1 < previous.1 || entry.1 > runs_len || !first_at_zero {
                return Err(runs.b.corrupt(at, format!("subject {k} out of order")));
            }
            previous = entry;
        }
        Ok(runs)
    }

    pub fn len(&self) -> usize {
        self.subjects
    }

    pub fn is_empty(&self) -> bool {
        self.subjects == 0
    }

    fn interface(&self, k: usize) -> Result<u32, Corrupt> {
        self.b.u32(HEADER_SIZE + k * SUBJECT_SIZE)
    }

    /// Subject `k` with its runs, checked: in order, disjoint, touching ones unequal, none
    /// empty or past [`SLOT_LIMIT`], and ending where the next subject's begin.
    pub fn subject(&self, k: usize) -> Result<SubjectRuns, Corrupt> {
        let at = HEADER_SIZE + k * SUBJECT_SIZE;
        let (interface, account) = (self.b.u32(at)?, Some(self.b.u32(at + 4)?).filter(|t| *t != NO_TERM));
        let (from, count) = (self.b.u32(at + 8)? as usize, self.b.u32(at + 12)? as usize);
        let to = if k + 1 < self.subjects {
            self.b.u32(at + SUBJECT_SIZE + 8)? as usize
        } else {
            self.b.len() - self.runs_at
        };
        let bad = |what: &str| self.b.corrupt(at, format!("subject {k}: {what}"));
        if from > to || self.runs_at + to > self.b.len() || count > to - from {
            return Err(bad("its runs lie outside the section"));
        }
        let mut bytes = self.b.slice(self.runs_at + from, to - from)?;
        let mut runs: Vec<SlotRun> = Vec::with_capacity(count);
        let mut end = 0u64;
        for _ in 0..count {
            let head = read_varint(&mut bytes).map_err(|e| bad(&e))?;
            let rest = read_varint(&mut bytes).map_err(|e| bad(&e))?;
            let (gap, seen) = (head >> 3, (head & 7) as u8);
            let first = end + u64::from(gap);
            let run_end = first + u64::from(rest) + 1;
            let touching_equal = gap == 0 && runs.last().is_some_and(|p| p.seen == seen);
            if seen == 0 || touching_equal || run_end > u64::from(SLOT_LIMIT) {
                return Err(bad(
                    "a run of no status, equal to the one it touches, or past the last slot",
                ));
            }
            runs.push(SlotRun {
                first: first as u32,
                count: rest + 1,
                seen,
            });
            end = run_end;
        }
        if !bytes.is_empty() {
            return Err(bad("bytes left after its runs"));
        }
        Ok(SubjectRuns {
            interface,
            account,
            runs,
        })
    }

    /// The subjects of `interface`, in the order of their first records.
    pub fn of_interface(&self, interface: u32) -> Result<Vec<SubjectRuns>, Corrupt> {
        let (mut lo, mut hi) = (0, self.subjects);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.interface(mid)? < interface {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out = Vec::new();
        for k in lo..self.subjects {
            if self.interface(k)? != interface {
                break;
            }
            out.push(self.subject(k)?);
        }
        Ok(out)
    }

    pub fn all(&self) -> Result<Vec<SubjectRuns>, Corrupt> {
        (0..self.subjects).map(|k| self.subject(k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: u8 = 1;
    const NODATA: u8 = 2;
    const SKIPDATA: u8 = 4;

    fn runs(records: &[(u64, u64, u8)]) -> Vec<(u32, u32, u8)> {
        let mut b = RunsBuilder::default();
        for &(s, e, seen) in records {
            b.add(7, Some(1), Some((s, e)), seen);
        }
        let subjects = b.finish();
        assert_eq!(subjects.len(), 1);
        subjects[0].runs.iter().map(|r| (r.first, r.count, r.seen)).collect()
    }

    #[test]
    fn spans_become_disjoint_runs_of_the_statuses_seen() {
        let m = 300;
        // Two OK records over slots 0-1 and 1-2, NODATA in slot 2, a gap, SKIPDATA in slot 5.
        assert_eq!(
            runs(&[
                (10, m + 10, OK),
                (m + 20, 2 * m + 5, OK),
                (2 * m, 2 * m + 1, NODATA),
                (5 * m, 5 * m, SKIPDATA)
            ]),
            [(0, 2, OK), (2, 1, OK | NODATA), (5, 1, SKIPDATA)]
        );
        // Reversed times span the slots between; touching equal runs merge.
        assert_eq!(runs(&[(3 * m, m, OK), (4 * m, 4 * m + 1, OK)]), [(1, 4, OK)]);
        // Out of order and many: the same as in order.
        let mut many: Vec<(u64, u64, u8)> = (0..5000u64).map(|i| (i * 7 * m, i * 7 * m + 60, OK)).collect();
        let in_order = runs(&many);
        many.reverse();
        assert_eq!(runs(&many), in_order);
        assert_eq!(in_order.len(), 5000);
        // A span of ages is one run, not one entry per slot.
        assert_eq!(runs(&[(0, u64::MAX, OK)]), [(0, SLOT_LIMIT, OK)]);
    }

    fn parsed(bytes: &[u8], records: u64) -> Result<Vec<SubjectRuns>, Corrupt> {
        SlotRuns::parse(Bytes::new(bytes, "slot runs", 0), records)?.all()
    }

    #[test]
    fn subjects_are_ordered_by_interface_then_by_their_first_record() {
        let mut b = RunsBuilder::default();
        // One day's records of interface 5 come before the next day's of interface 3.
        b.add(5, None, Some((0, 9000)), SKIPDATA);
        b.add(3, Some(9), None, OK);
        b.add(3, Some(2), Some((600, 600)), OK);
        b.add(3, Some(9), Some((0, 0)), NODATA);
        let subjects = b.finish();
        let heads: Vec<(u32, Option<u32>, usize)> = subjects
            .iter()
            .map(|s| (s.interface, s.account, s.runs.len()))
            .collect();
        assert_eq!(heads, [(3, Some(9), 1), (3, Some(2), 1), (5, None, 1)]);
        let bytes = encode(&subjects);
        assert_eq!(parsed(&bytes, 4).unwrap(), subjects);
        let view = SlotRuns::parse(Bytes::new(&bytes, "slot runs", 0), 4).unwrap();
        assert_eq!(view.of_interface(3).unwrap(), subjects[..2]);
        assert_eq!(view.of_interface(5).unwrap(), subjects[2..]);
        assert!(view.of_interface(4).unwrap().is_empty());
    }

    #[test]
    fn damaged_sections_are_refused() {
        let run = |first, count, seen| SlotRun { first, count, seen };
        let subject = |interface, runs: Vec<SlotRun>| SubjectRuns {
            interface,
            account: None,
            runs,
        };
        let good = vec![subject(1, vec![run(10, 2, OK), run(12, 1, SKIPDATA)])];
        assert_eq!(parsed(&encode(&good), 5).unwrap(), good);
        assert!(parsed(&encode(&good), 0).is_err(), "more subjects than records");
        for bad in [
            vec![subject(1, vec![run(10, 2, OK), run(12, 1, OK)])], // touching and equal
            vec![subject(1, vec![run(10, 2, 0)])],                  // no status
            vec![subject(1, vec![run(SLOT_LIMIT - 1, 2, OK)])],     // past the last slot
            vec![subject(2, vec![]), subject(1, vec![])],           // out of interface order
        ] {
            assert!(parsed(&encode(&bad), 5).is_err(), "{bad:?}");
        }
        let bytes = encode(&good);
        assert!(parsed(&bytes[..bytes.len() - 1], 5).is_err(), "cut short");
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(parsed(&longer, 5).is_err(), "a byte too many");
        // A second subject whose runs would start before the first's.
        let two = encode(&[subject(1, vec![run(1, 1, OK)]), subject(1, vec![run(1, 1, OK)])]);
        let mut swapped = two.clone();
        swapped[HEADER_SIZE + SUBJECT_SIZE + 8] = 0;
        swapped[HEADER_SIZE + 8] = 2;
        assert!(parsed(&swapped, 5).is_err());
    }
}
