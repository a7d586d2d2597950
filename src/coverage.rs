//! Coverage: for each interface (or flow log), which time slots of a window the index has
//! records for, which only NODATA, which SKIPDATA (AWS dropped records), and which nothing at
//! all. "No record matched" only means something where the logs cover that interface at that
//! time; this module says where they do. It reads the few columns it needs (interface-id,
//! account-id, start, end, log-status; the source only for records without an interface), never
//! whole records.
//!
//! **The grid.** Time is cut into slots of `bin` seconds aligned on the Unix epoch (default
//! [`DEFAULT_BIN`], 5 minutes: AWS delivers one S3 object per flow log every 5 minutes, so a
//! lost object is whole slots, and 5 minutes is not finer than the 10-minute aggregation
//! interval's records can fill, because a record marks every slot its `[start, end]` overlaps).
//! Consecutive slots in the same state are merged into ranges.
//!
//! **States of a slot**, for one subject: `skipdata` when a SKIPDATA record overlaps it (AWS
//! says records were dropped, whatever else arrived); else `records` when a record with
//! log-status OK (or without a log-status field) overlaps it; else `nodata` when only NODATA
//! records do; else `gap`: nothing arrived, so the logs say nothing about that slot. A slot at
//! a window's edge is judged by all its records, also those outside the window (shown clipped
//! to the window), but for SKIPDATA outside it, which says nothing of a drop inside.
//!
//! **Where gaps are reported.** With an explicit window (`from`/`to`), the question is "what do
//! the logs say about this window", so gaps run to the window's edges, and an interface named
//! in [`Options::interfaces`] that has no record in the window's slots is one gap over all of
//! it. With
//! no window, the window is the index's time span and each subject's ranges run from its first
//! to its last covered slot: before and after that the interface may simply not have existed.
//!
//! **Subjects.** Records are grouped by (account-id, interface-id). Records without an
//! interface-id (transit-gateway logs, custom formats without the field) are grouped by the
//! flow-log id of their source's S3 object key, or by the source itself when its key has none;
//! their account is the record's account-id, else the object key's.
//!
//! **Counting.** A range's `records` counts the records (of any status) that overlap the window
//! and start in it; one starting before the window counts in the window's first slot. Each record
//! is therefore counted once, and the counts of a subject's ranges add up to its records in the
//! window. Records without `start` or `end` cannot be placed and are left out (AWS writes both on
//! every line, NODATA and SKIPDATA included).
//!
//! Memory grows with the occupied (subject, slot) pairs, at most subjects × slots of the window;
//! gaps take none. Segments are read in parallel; blocks outside the window are skipped by their
//! zone maps and, for named interfaces, only the records their postings name are read. SKIPDATA
//! alone comes from each segment's SKIPDATA section, and the named interfaces' slots without
//! record counts from its slot runs (format 7 on; before, from the postings and records).

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::format::column::Column as ColumnValues;
use crate::format::dictionary::{Dictionary, Term};
use crate::format::manifest::SourceEntry;
use crate::format::schema::Column;
use crate::format::slots::{SLOT_LIMIT, SLOT_SECONDS};
use crate::query::{Cond, Filter, Test};
use crate::read::{Index, IndexError, Segment};
use crate::record::{Field, LogStatus};
use crate::time::format_seconds as shown_time;

/// Default slot width in seconds: the S3 delivery period.
pub const DEFAULT_BIN: u64 = 300;

/// Most slots a window may have: slot numbers are `u32`, and a grid finer than a second per slot
/// over decades answers no question a responder asks.
pub const MAX_SLOTS: u64 = u32::MAX as u64;

#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("a slot of 0 seconds; give a bin of at least 1 second")]
    ZeroBin,
    #[error("the window {} .. {} ends before it starts", shown_time(*from), shown_time(*to))]
    EmptyWindow { from: u64, to: u64 },
    #[error(
        "no record of the index is in the window {}: its records span {} .. {}",
        shown_window(*window),
        shown_time(*first),
        shown_time(*last)
    )]
    OutsideIndex { window: (u64, u64), first: u64, last: u64 },
    #[error("the window has {slots} slots of {bin} s, more than {MAX_SLOTS}; use a wider bin or a shorter window")]
    TooManySlots { slots: u64, bin: u64 },
}

/// A window as given: an open end is left open.
fn shown_window((lo, hi): (u64, u64)) -> String {
    match (lo, hi) {
        (0, hi) => format!("up to {}", shown_time(hi)),
        (lo, u64::MAX) => format!("from {}", shown_time(lo)),
        (lo, hi) => format!("{} .. {}", shown_time(lo), shown_time(hi)),
    }
}

/// What the logs say about one slot (or a range of slots) of one subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Records with log-status OK arrived.
    Records,
    /// Only NODATA records arrived: the interface was logged and idle.
    NoData,
    /// A SKIPDATA record arrived: AWS dropped records in this interval.
    SkipData,
    /// Nothing arrived.
    Gap,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Records => "records",
            State::NoData => "nodata",
            State::SkipData => "skipdata",
            State::Gap => "gap",
        }
    }

    /// Whether absence of records in this state proves nothing.
    pub fn is_blind(self) -> bool {
        matches!(self, State::SkipData | State::Gap)
    }
}

/// What a set of ranges is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    Interface(String),
    /// Records without an interface-id, by the flow-log id of their S3 object key.
    FlowLog(String),
    /// Records without an interface-id from a source whose name carries no flow-log id.
    Source(String),
}

impl Subject {
    pub fn name(&self) -> &str {
        match self {
            Subject::Interface(s) | Subject::FlowLog(s) | Subject::Source(s) => s,
        }
    }
}

/// Who the ranges are about: an account (when known) and a subject.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub account_id: Option<String>,
    pub subject: Subject,
}

/// Slots `[from, to)` in Unix seconds (clipped to the window), all in one state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub from: u64,
    /// Exclusive.
    pub to: u64,
    pub state: State,
    pub records: u64,
}

/// The ranges of one subject, in time order, each next one starting where the previous ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    pub key: Key,
    pub ranges: Vec<Range>,
}

/// What to compute.
#[derive(Clone, Debug)]
pub struct Options {
    /// Inclusive Unix seconds; `None`: the index's time span, each subject trimmed to the slots
    /// between its first and last record.
    pub window: Option<(u64, u64)>,
    /// Slot width in seconds.
    pub bin: u64,
    /// Only these interfaces (records without an interface-id are then left out).
    pub interfaces: Option<Vec<String>>,
    /// Whether ranges count their records. Without counts (all 0), the named interfaces' slots
    /// come from the segments' slot runs when the grid is theirs and the window on its edges,
    /// instead of from every record of those interfaces.
    pub counts: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            window: None,
            bin: DEFAULT_BIN,
            interfaces: None,
            counts: true,
        }
    }
}

/// The coverage of an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The window looked at (inclusive); `None` when the index has no dated record and no
    /// window was given.
    pub window: Option<(u64, u64)>,
    pub bin: u64,
    /// By account, then subject.
    pub subjects: Vec<Coverage>,
    /// Interfaces asked for that no segment of the index knows.
    pub unknown_interfaces: Vec<String>,
}

/// Computes the coverage of `index` as `options` say.
pub fn coverage(index: &Index, options: &Options) -> Result<Report, CoverageError> {
    let Some(grid) = Grid::new(index, options.window, options.bin)? else {
        return Ok(Report {
            window: None,
            bin: options.bin,
            subjects: Vec::new(),
            unknown_interfaces: options.interfaces.clone().unwrap_or_default(),
        });
    };
    let from_runs = match &options.interfaces {
        Some(names) if !options.counts => scan_runs(index, &grid, names)?,
        _ => None,
    };
    let scanned = match (from_runs, &options.interfaces) {
        (Some(scanned), _) => scanned,
        (None, None) => scan(index, &grid, &Select::All)?,
        (None, Some(names)) => scan(index, &grid, &Select::Interfaces(names))?,
    };
    let mut unknown = Vec::new();
    let mut slots = scanned.slots;
    if let Some(names) = &options.interfaces {
        for name in names {
            let seen = slots
                .keys()
                .any(|k| matches!(&k.subject, Subject::Interface(s) if s == name));
            if seen {
                continue;
            }
            match scanned.accounts.get(name.as_str()) {
                // Known to the index but silent in the window: with an explicit window, that is
                // one gap over all of it.
                Some(account) if options.window.is_some() => {
                    slots.insert(
                        Key {
                            account_id: account.clone(),
                            subject: Subject::Interface(name.clone()),
                        },
                        SlotList::default(),
                    );
                }
                Some(_) => {}
                None => unknown.push(name.clone()),
            }
        }
    }
    let trim = options.window.is_none();
    let subjects = slots
        .into_iter()
        .map(|(key, list)| {
            let mut ranges = grid.ranges(&list.finish(), trim);
            if !options.counts {
                ranges.iter_mut().for_each(|r| r.records = 0);
            }
            Coverage { ranges, key }
        })
        .filter(|c| !c.ranges.is_empty())
        .collect();
    Ok(Report {
        window: Some((grid.lo, grid.hi)),
        bin: grid.bin,
        subjects,
        unknown_interfaces: unknown,
    })
}

/// The slots with SKIPDATA inside the window, for every subject, or only for the `interfaces`
/// given: read from the segments' SKIPDATA sections (older segments: from the log-status
/// postings, intersected with the interfaces' postings), so it costs little when SKIPDATA is
/// rare (as it is). Only `skipdata` ranges are returned, and their `records` count only the
/// SKIPDATA records.
pub fn skipdata(
    index: &Index,
    window: Option<(u64, u64)>,
    bin: u64,
    interfaces: Option<&[String]>,
) -> Result<Vec<Coverage>, CoverageError> {
    let Some(grid) = Grid::new(index, window, bin)? else {
        return Ok(Vec::new());
    };
    let scanned = scan(index, &grid, &Select::SkipData(interfaces))?;
    Ok(scanned
        .slots
        .into_iter()
        .map(|(key, list)| Coverage {
            ranges: grid
                .ranges(&list.finish(), true)
                .into_iter()
                .filter(|r| r.state == State::SkipData)
                .collect(),
            key,
        })
        .filter(|c| !c.ranges.is_empty())
        .collect())
}

/// Whose coverage a search's warning looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The interfaces the filter requires (`interface_id = eni-...`): gaps and SKIPDATA in the
    /// searched window; without a window, SKIPDATA only (finding gaps over the whole index
    /// would scan every record of the interfaces, costing a needle search more than itself).
    Named,
    /// The interfaces of the matching records, as for `Named`.
    Matched,
    /// The search names no interface and none is known from its answer (nothing matched, or
    /// it aggregated): SKIPDATA on any interface, from the SKIPDATA sections; gaps are not looked for,
    /// since idle interfaces leave gaps everywhere.
    Everything,
}

/// Where a search could not see: the blind (gap and SKIPDATA) ranges in its time window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlindSpots {
    pub scope: Scope,
    /// The searched window (inclusive), when the search had one.
    pub window: Option<(u64, u64)>,
    /// Subjects with at least one blind range; only blind ranges are kept, without record
    /// counts (0): a warning says where the search was blind, and the slot runs that tell it
    /// fast do not count records.
    pub subjects: Vec<Coverage>,
    /// Interfaces the filter names that are nowhere in the index.
    pub unknown_interfaces: Vec<String>,
}

/// The interfaces a search named (`scope` says whether it did) that the index lacks.
fn named_but_nowhere(index: &Index, scope: Scope, interfaces: &[String]) -> Result<Vec<String>, IndexError> {
    match scope {
        Scope::Named => nowhere(index, interfaces),
        _ => Ok(Vec::new()),
    }
}

/// The interfaces of `names` that no segment of `index` holds: a mistyped ID, or one the
/// inputs never had.
fn nowhere(index: &Index, names: &[String]) -> Result<Vec<String>, IndexError> {
    let mut missing = names.to_vec();
    for seg in index.segments() {
        let Some(dict) = seg.dictionary(Column::Field(Field::InterfaceId))? else {
            continue;
        };
        let mut kept = Vec::with_capacity(missing.len());
        for name in missing {
            let found = dict
                .find(&Term::Bytes(name.as_bytes()))
                .map_err(|c| IndexError::corrupt(seg.path(), c))?;
            if found.is_none() {
                kept.push(name);
            }
        }
        missing = kept;
        if missing.is_empty() {
            break;
        }
    }
    Ok(missing)
}

/// The text fields other than `interface-id` that hold `name` in some segment: an ENI that is
/// no record's interface may be a Transit Gateway's end or a next hop, where a search by that
/// field finds it.
pub fn other_fields_holding(index: &Index, name: &str) -> Result<Vec<Field>, IndexError> {
    let mut found = Vec::new();
    for &field in Field::ALL {
        if field == Field::InterfaceId || field.kind() != crate::record::FieldKind::Text {
            continue;
        }
        for seg in index.segments() {
            let Some(dict) = seg.dictionary(Column::Field(field))? else {
                continue;
            };
            let held = dict
                .find(&Term::Bytes(name.as_bytes()))
                .map_err(|c| IndexError::corrupt(seg.path(), c))?;
            if held.is_some() {
                found.push(field);
                break;
            }
        }
    }
    Ok(found)
}

/// The blind spots of a search with `filter` whose matching records were on `matched`
/// interfaces (`None` when the answer did not say, as for `stats`). The window is the one the
/// filter's time conditions (`time`, `--from`, `--to`) require, with the gap rules of an explicit
/// window; without one, each interface's span in the index.
pub fn blind_spots(index: &Index, filter: &Filter, matched: Option<&[String]>) -> Result<BlindSpots, CoverageError> {
    let window = searched_window(filter);
    if window.is_some_and(|(lo, hi)| lo > hi) {
        // No record can match an empty window, and no interface was expected to have one.
        return Ok(BlindSpots {
            scope: Scope::Everything,
            window,
            subjects: Vec::new(),
            unknown_interfaces: Vec::new(),
        });
    }
    let (scope, interfaces) = match (named_interfaces(filter), matched) {
        (Some(named), _) => (Scope::Named, named),
        (None, Some(m)) if !m.is_empty() => (Scope::Matched, m.to_vec()),
        _ => {
            let subjects = match skipdata(index, window, DEFAULT_BIN, None) {
                // A window beyond the index's records: no SKIPDATA in it.
                Err(CoverageError::OutsideIndex { .. }) => Vec::new(),
                r => blind_only(r?),
            };
            return Ok(BlindSpots {
                scope: Scope::Everything,
                window,
                subjects,
                unknown_interfaces: Vec::new(),
            });
        }
    };
    if window.is_none() {
        // Only these interfaces' SKIPDATA: on 100 M records, reading every interface's to keep
        // a few was most of a needle search's time.
        let subjects = blind_only(skipdata(index, window, DEFAULT_BIN, Some(&interfaces))?);
        let unknown_interfaces = named_but_nowhere(index, scope, &interfaces)?;
        return Ok(BlindSpots {
            scope,
            window,
            subjects,
            unknown_interfaces,
        });
    }
    let options = Options {
        window,
        bin: DEFAULT_BIN,
        interfaces: Some(interfaces),
        counts: false,
    };
    let report = match coverage(index, &options) {
        // A window that ends before the index begins (or the like): no blind spot in it, but a
        // named interface the index lacks is still worth saying.
        Err(CoverageError::EmptyWindow { .. } | CoverageError::OutsideIndex { .. }) => {
            let interfaces = options.interfaces.as_deref().unwrap_or_default();
            let unknown_interfaces = named_but_nowhere(index, scope, interfaces)?;
            return Ok(BlindSpots {
                scope,
                window,
                subjects: Vec::new(),
                unknown_interfaces,
            });
        }
        r => r?,
    };
    Ok(BlindSpots {
        scope,
        window,
        subjects: blind_only(report.subjects),
        unknown_interfaces: report.unknown_interfaces,
    })
}

/// The blind ranges of the subjects that have any, without record counts.
fn blind_only(subjects: Vec<Coverage>) -> Vec<Coverage> {
    subjects
        .into_iter()
        .map(|c| Coverage {
            ranges: c
                .ranges
                .into_iter()
                .filter(|r| r.state.is_blind())
                .map(|r| Range { records: 0, ..r })
                .collect(),
            key: c.key,
        })
        .filter(|c| !c.ranges.is_empty())
        .collect()
}

/// The time window every match must overlap: the intersection of the filter's top-level time
/// conditions. Times inside `or` and `not` bound nothing for sure, and are not looked at.
pub fn searched_window(filter: &Filter) -> Option<(u64, u64)> {
    filter
        .conjuncts()
        .into_iter()
        .filter_map(Filter::time_window)
        .reduce(|(a, b), (c, d)| (a.max(c), b.min(d)))
}

/// The interfaces every match must be on: a top-level `interface_id = ...` (or `in [...]`).
pub fn named_interfaces(filter: &Filter) -> Option<Vec<String>> {
    let names = |f: &Filter| match f {
        Filter::Test(Test {
            fields,
            cond: Cond::Words(words),
            negate: false,
        }) if fields.as_slice() == [Field::InterfaceId] => Some(words.clone()),
        _ => None,
    };
    match filter {
        Filter::And(parts) => parts.iter().find_map(names),
        f => names(f),
    }
}

/// The slot grid over the window.
struct Grid {
    /// Inclusive window in Unix seconds.
    lo: u64,
    hi: u64,
    bin: u64,
    /// Number (epoch-aligned) of the slot holding `lo`, and how many slots the window has.
    first: u64,
    count: u64,
}

impl Grid {
    /// The grid of the window, or of the index's time span; `None` when there is neither.
    fn new(index: &Index, window: Option<(u64, u64)>, bin: u64) -> Result<Option<Grid>, CoverageError> {
        if bin == 0 {
            return Err(CoverageError::ZeroBin);
        }
        let segments = &index.manifest().segments;
        let span = segments
            .iter()
            .filter_map(|s| s.min_start)
            .min()
            .zip(segments.iter().filter_map(|s| s.max_end).max())
            .map(|(lo, hi)| (lo, hi.max(lo)));
        // An open end of a window (`time >= T`, `--from` alone) is the index's end.
        let clipped = match (window, span) {
            (None, span) => span,
            (Some((0, u64::MAX)), span) => span,
            (Some((0, hi)), Some((lo, _))) => Some((lo, hi)),
            (Some((lo, u64::MAX)), Some((_, hi))) => Some((lo, hi)),
            (Some((lo, u64::MAX)), None) => Some((lo, lo)),
            (Some(w), _) => Some(w),
        };
        let Some((lo, hi)) = clipped else {
            return Ok(None);
        };
        if hi < lo {
            return Err(match (window, span) {
                // The user's window is fine; the index has nothing in it.
                (Some(window @ ((0, _) | (_, u64::MAX))), Some((first, last))) => {
                    CoverageError::OutsideIndex { window, first, last }
                }
                _ => CoverageError::EmptyWindow { from: lo, to: hi },
            });
        }
        let first = lo / bin;
        let count = hi / bin - first + 1;
        if count > MAX_SLOTS {
            return Err(CoverageError::TooManySlots { slots: count, bin });
        }
        Ok(Some(Grid {
            lo,
            hi,
            bin,
            first,
            count,
        }))
    }

    /// The window widened to its slots' edges: a slot's state is what its records say, also
    /// those outside a window that ends inside the slot (else a window ending at 03:20:00
    /// shows the second 03:20:00..03:20:01 as a gap of an interface that delivered all
    /// through the slot).
    fn slot_edges(&self) -> (u64, u64) {
        let lo = self.first * self.bin;
        (
            lo,
            lo.saturating_add(self.count.saturating_mul(self.bin).saturating_sub(1)),
        )
    }

    /// A record's span `[s, e]` from its `start` and `end` (either order), if it overlaps one
    /// of the window's slots.
    fn overlap(&self, start: u64, end: u64) -> Option<(u64, u64)> {
        let (s, e) = (start.min(end), start.max(end));
        let (lo, hi) = self.slot_edges();
        (s <= hi && e >= lo).then_some((s, e))
    }

    /// Slot of a time inside the window's slots, relative to the window's first slot.
    fn slot(&self, t: u64) -> u32 {
        // `t` is within the slots' edges, so this is below `count`, which fits in u32.
        (t / self.bin - self.first) as u32
    }

    /// Merges the occupied slots (sorted, distinct) and the gaps between them into ranges.
    fn ranges(&self, occupied: &[(u32, Slot)], trim: bool) -> Vec<Range> {
        let (begin, end) = if trim {
            match (occupied.first(), occupied.last()) {
                (Some(f), Some(l)) => (u64::from(f.0), u64::from(l.0) + 1),
                _ => return Vec::new(),
            }
        } else {
            (0, self.count)
        };
        let mut out: Vec<Range> = Vec::new();
        let mut push = |from_slot: u64, to_slot: u64, state: State, records: u64| {
            let from = ((self.first + from_slot) * self.bin).max(self.lo);
            let to = ((self.first + to_slot) * self.bin).min(self.hi + 1);
            match out.last_mut() {
                Some(last) if last.state == state && last.to == from => {
                    last.to = to;
                    last.records += records;
                }
                _ => out.push(Range {
                    from,
                    to,
                    state,
                    records,
                }),
            }
        };
        let mut at = begin;
        for &(slot, s) in occupied {
            let slot = u64::from(slot);
            if slot > at {
                push(at, slot, State::Gap, 0);
            }
            push(slot, slot + 1, s.state(), u64::from(s.records));
            at = slot + 1;
        }
        if at < end {
            push(at, end, State::Gap, 0);
        }
        out
    }
}

/// What one slot of one subject saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slot {
    /// Bit `LogStatus as u8`: OK, NODATA, SKIPDATA seen.
    seen: u8,
    /// Records counted in this slot (see the module's "Counting").
    records: u32,
}

impl Slot {
    fn state(self) -> State {
        if self.seen & bit(LogStatus::SkipData) != 0 {
            State::SkipData
        } else if self.seen & bit(LogStatus::Ok) != 0 {
            State::Records
        } else if self.seen & bit(LogStatus::NoData) != 0 {
            State::NoData
        } else {
            // A slot is only stored once a record marked it.
            State::Gap
        }
    }

    fn merge(&mut self, other: Slot) {
        self.seen |= other.seen;
        self.records = self.records.saturating_add(other.records);
    }
}

fn bit(status: LogStatus) -> u8 {
    1 << status as u8
}

/// Occupied slots of one subject. Records of an interface come mostly in time order, so a mark
/// usually lands on the last entry; otherwise it is appended, and the list is sorted and merged
/// whenever it doubles, which keeps it within twice the number of distinct slots.
#[derive(Debug, Default)]
struct SlotList {
    slots: Vec<(u32, Slot)>,
    compacted: usize,
}

impl SlotList {
    fn mark(&mut self, slot: u32, s: Slot) {
        match self.slots.last_mut() {
            Some((last, acc)) if *last == slot => acc.merge(s),
            _ => {
                self.slots.push((slot, s));
                if self.slots.len() > 2 * self.compacted + 1024 {
                    self.compact();
                }
            }
        }
    }

    /// Sorts and merges in place: a month of 5-minute slots is 200 KB, which a new vector
    /// per merge would map, fault in and unmap each time.
    fn compact(&mut self) {
        // Merging is commutative: the order among equal slots does not matter.
        self.slots.sort_unstable_by_key(|(slot, _)| *slot);
        let mut kept: usize = 0;
        for i in 0..self.slots.len() {
            let (slot, s) = self.slots[i];
            match kept.checked_sub(1).map(|last| &mut self.slots[last]) {
                Some((last, acc)) if *last == slot => acc.merge(s),
                _ => {
                    self.slots[kept] = (slot, s);
                    kept += 1;
                }
            }
        }
        self.slots.truncate(kept);
        self.compacted = kept;
    }

    /// Adds another list's slots, merging them in as marks do (when the list has doubled);
    /// `finish` merges the rest.
    fn append(&mut self, other: SlotList) {
        self.slots.extend(other.slots);
        if self.slots.len() > 2 * self.compacted + 1024 {
            self.compact();
        }
    }

    fn finish(mut self) -> Vec<(u32, Slot)> {
        self.compact();
        self.slots
    }
}

/// Which records a scan reads.
enum Select<'a> {
    All,
    Interfaces(&'a [String]),
    /// SKIPDATA records, of these interfaces only when given.
    SkipData(Option<&'a [String]>),
}

/// What a scan found: occupied slots per subject, and the account of every asked-for interface
/// the index knows (whether or not it has records in the window).
struct Scanned {
    slots: BTreeMap<Key, SlotList>,
    accounts: HashMap<String, Option<String>>,
}

fn scan(index: &Index, grid: &Grid, select: &Select<'_>) -> Result<Scanned, IndexError> {
    let per_segment = index
        .segments()
        .par_iter()
        .map(|seg| scan_segment(seg, grid, select, index))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(merged(per_segment))
}

/// The named interfaces' slots from the segments' slot runs instead of their records, when the
/// runs answer exactly: the grid is theirs and the window starts and ends on slot edges (a
/// slot at a ragged edge would count records that overlap it but not the window). `None` when
/// they do not, or a segment has none (before format 7). The slots count no records.
fn scan_runs(index: &Index, grid: &Grid, names: &[String]) -> Result<Option<Scanned>, IndexError> {
    let on_edges = grid.lo.is_multiple_of(SLOT_SECONDS) && grid.hi % SLOT_SECONDS == SLOT_SECONDS - 1;
    // Runs end before SLOT_LIMIT: records a library caller made past it are only in the records.
    if grid.bin != SLOT_SECONDS || !on_edges || grid.first + grid.count > u64::from(SLOT_LIMIT) {
        return Ok(None);
    }
    let per_segment = index
        .segments()
        .par_iter()
        .map(|seg| runs_segment(seg, grid, names, index))
        .collect::<Result<Option<Vec<_>>, _>>()?;
    Ok(per_segment.map(merged))
}

fn runs_segment(seg: &Segment, grid: &Grid, names: &[String], index: &Index) -> Result<Option<Scanned>, IndexError> {
    let Some(slot_runs) = seg.slot_runs()? else {
        return Ok(None);
    };
    let mut out = Scanned {
        slots: BTreeMap::new(),
        accounts: HashMap::new(),
    };
    let mut subjects = Subjects::new(seg, index)?;
    let window = grid.first..grid.first + grid.count;
    for name in names {
        let Some(term) = subjects.interface_term(name)? else {
            continue;
        };
        // An interface's subjects come in the order of their first records: the first one's
        // account is the interface's, as a scan takes it from its first record.
        let of_interface = slot_runs
            .of_interface(term)
            .map_err(|c| IndexError::corrupt(seg.path(), c))?;
        for (k, s) in of_interface.iter().enumerate() {
            let account = s.account.map(u64::from);
            if k == 0 {
                let text = account.map(|t| subjects.text(&subjects.accounts, t)).transpose()?;
                out.accounts.insert(name.clone(), text);
            }
            for run in &s.runs {
                let (first, end) = (u64::from(run.first).max(window.start), run.end().min(window.end));
                if first < end {
                    let slots = (first - grid.first) as u32..=(end - 1 - grid.first) as u32;
                    subjects.mark_slots((account, Ok(u64::from(term))), slots, run.seen, false)?;
                }
            }
        }
    }
    subjects.into_slots(&mut out.slots);
    Ok(Some(out))
}

/// One scan of the index from its segments' scans.
fn merged(per_segment: Vec<Scanned>) -> Scanned {
    let mut out = Scanned {
        slots: BTreeMap::new(),
        accounts: HashMap::new(),
    };
    for s in per_segment {
        for (key, list) in s.slots {
            out.slots.entry(key).or_default().append(list);
        }
        for (name, account) in s.accounts {
            let known = out.accounts.entry(name).or_insert(None);
            if known.is_none() {
                *known = account;
            }
        }
    }
    out
}

/// The records of the named interfaces in `seg`, noting each found interface's account when
/// asked to (it costs reading a record).
fn interface_ids(
    seg: &Segment,
    interfaces: &Option<Dictionary<'_>>,
    names: &[String],
    accounts: &Option<Dictionary<'_>>,
    mut found_accounts: Option<&mut HashMap<String, Option<String>>>,
) -> Result<RoaringBitmap, IndexError> {
    let mut ids = RoaringBitmap::new();
    let Some(d) = interfaces else {
        return Ok(ids);
    };
    let column = Column::Field(Field::InterfaceId);
    for name in names {
        let found = d
            .find(&Term::Bytes(name.as_bytes()))
            .map_err(|c| IndexError::corrupt(seg.path(), c))?;
        if let Some(t) = found {
            let posting = seg.posting(column, d, t)?;
            if let Some(found) = found_accounts.as_deref_mut() {
                let account = match posting.min() {
                    Some(id) => account_of(seg, id, accounts)?,
                    None => None,
                };
                found.insert(name.clone(), account);
            }
            ids |= posting;
        }
    }
    Ok(ids)
}

/// A record's subject as a segment codes it: the account's term, and the interface's term or
/// else the source's id.
type SubjectCodes = (Option<u64>, Result<u64, u32>);

fn scan_segment(
    seg: &Segment,
    grid: &Grid,
    select: &Select<'_>,
    // Sources are looked up (one entry parsed) only for records without an interface.
    index: &Index,
) -> Result<Scanned, IndexError> {
    let mut out = Scanned {
        slots: BTreeMap::new(),
        accounts: HashMap::new(),
    };
    let mut subjects = Subjects::new(seg, index)?;
    if let Select::SkipData(names) = select {
        if let Some(listed) = seg.skipdata()? {
            let named = match names {
                None => None,
                Some(names) => Some(subjects.interface_terms(names)?),
            };
            for r in listed {
                if named
                    .as_ref()
                    .is_some_and(|terms| !r.interface.is_some_and(|t| terms.contains(&t)))
                {
                    continue;
                }
                let Some(span) = grid.overlap(r.start, r.end) else {
                    continue;
                };
                let who = r.interface.map(u64::from).ok_or(r.source);
                subjects.mark(grid, (r.account.map(u64::from), who), span, LogStatus::SkipData)?;
            }
            subjects.into_slots(&mut out.slots);
            return Ok(out);
        }
    }
    // Record ids to read; `None`: every record of the blocks in the window.
    let wanted: Option<RoaringBitmap> = match select {
        Select::All => None,
        Select::Interfaces(names) => Some(interface_ids(
            seg,
            &subjects.interfaces,
            names,
            &subjects.accounts,
            Some(&mut out.accounts),
        )?),
        Select::SkipData(names) => {
            let column = Column::Field(Field::LogStatus);
            let code = Term::UInt(LogStatus::SkipData as u64);
            let mut ids = RoaringBitmap::new();
            if let Some(d) = seg.dictionary(column)? {
                if let Some(t) = d.find(&code).map_err(|c| IndexError::corrupt(seg.path(), c))? {
                    ids = seg.posting(column, &d, t)?;
                }
            }
            if let Some(names) = names {
                ids &= interface_ids(seg, &subjects.interfaces, names, &subjects.accounts, None)?;
            }
            Some(ids)
        }
    };
    for (block, b) in seg.blocks()?.iter().enumerate() {
        // A record's span runs from the smaller of its times to the larger (`Grid::overlap`).
        if b.start.is_empty()
            || b.end.is_empty()
            || b.start.min.min(b.end.min) > grid.slot_edges().1
            || b.start.max.max(b.end.max) < grid.slot_edges().0
        {
            continue;
        }
        let range = b.first_record..b.first_record + b.record_count;
        let offsets: Option<Vec<u32>> = match wanted.as_ref().map(|ids| (ids, ids.range_cardinality(range.clone()))) {
            None => None,
            Some((_, 0)) => continue,
            // Every record of the block (inside an interface's run): no list of offsets to make.
            Some((_, all)) if all == u64::from(b.record_count) => None,
            Some((ids, _)) => Some(ids.range(range).map(|id| id - b.first_record).collect()),
        };
        // A few selected records (a SKIPDATA scan): read just their values; many (an
        // interface's run of blocks): whole columns decode faster.
        let sparse = offsets
            .as_ref()
            .filter(|o| o.len() * SPARSE_FRACTION < b.record_count as usize);
        let read = |c: Column| -> Result<Picked, IndexError> {
            Ok(match sparse {
                None => Picked::Whole(seg.read_column(block, c)?),
                Some(o) => Picked::At(seg.read_column_at(block, c, o)?),
            })
        };
        let field = |f: Field| read(Column::Field(f));
        let (interface_col, account_col) = (field(Field::InterfaceId)?, field(Field::AccountId)?);
        let (start_col, end_col) = match sparse {
            None => {
                let (starts, ends) = seg.read_times(block)?;
                (Picked::Whole(starts), Picked::Whole(ends))
            }
            Some(o) => {
                let (starts, ends) = seg.read_times_at(block, o)?;
                (Picked::At(starts), Picked::At(ends))
            }
        };
        // Each column read costs a decompression: a SKIPDATA scan knows the status, and the
        // source is only needed for records without an interface-id.
        let status_col = match select {
            Select::SkipData(_) => Picked::At(None),
            _ => field(Field::LogStatus)?,
        };
        let mut source_col: Option<Picked> = None;
        let n = b.record_count as usize;
        // Record `i` of the block, the `k`-th selected.
        let mut visit = |i: usize, k: usize| -> Result<(), IndexError> {
            let get = |c: &Picked| c.get(i, k);
            let (Some(s), Some(e)) = (get(&start_col), get(&end_col)) else {
                return Ok(());
            };
            let Some(span) = grid.overlap(s, e) else {
                return Ok(());
            };
            let status = match (select, get(&status_col)) {
                (Select::SkipData(_), _) => LogStatus::SkipData,
                (_, None) => LogStatus::Ok,
                (_, Some(code)) => LogStatus::ALL.get(code as usize).copied().ok_or_else(|| {
                    IndexError::corrupt(
                        seg.path(),
                        crate::format::Corrupt::new("log-status", code, "enum code out of range"),
                    )
                })?,
            };
            let who = match get(&interface_col) {
                Some(t) => Ok(t),
                None => {
                    if source_col.is_none() {
                        source_col = Some(read(Column::Source)?);
                    }
                    let source = source_col.as_ref().and_then(get);
                    Err(source.and_then(|s| u32::try_from(s).ok()).unwrap_or(u32::MAX))
                }
            };
            subjects.mark(grid, (get(&account_col), who), span, status)
        };
        match (&offsets, sparse) {
            (None, _) => (0..n).try_for_each(|i| visit(i, i))?,
            (Some(o), None) => o.iter().try_for_each(|&i| visit(i as usize, i as usize))?,
            (Some(o), Some(_)) => o.iter().enumerate().try_for_each(|(k, &i)| visit(i as usize, k))?,
        }
    }
    subjects.into_slots(&mut out.slots);
    Ok(out)
}

/// The subjects one segment's scan met, each with its occupied slots.
struct Subjects<'s> {
    seg: &'s Segment,
    index: &'s Index,
    interfaces: Option<Dictionary<'s>>,
    accounts: Option<Dictionary<'s>>,
    /// Each (account, interface or source) met has a place in `lists`. Records of an interface
    /// come in runs, so the previous record's place is tried first; hashing, cloning the key's
    /// text and an ordered-map look-up per record were most of a windowed search's warning.
    places: rustc_hash::FxHashMap<SubjectCodes, usize>,
    lists: Vec<(Key, SlotList)>,
    last_place: Option<(SubjectCodes, usize)>,
}

impl<'s> Subjects<'s> {
    fn new(seg: &'s Segment, index: &'s Index) -> Result<Subjects<'s>, IndexError> {
        Ok(Subjects {
            seg,
            index,
            interfaces: seg.dictionary(Column::Field(Field::InterfaceId))?,
            accounts: seg.dictionary(Column::Field(Field::AccountId))?,
            places: Default::default(),
            lists: Vec::new(),
            last_place: None,
        })
    }

    /// Marks the slots that a record of `codes` spanning `[s, e]`, which overlaps one of the
    /// window's slots, overlaps there, counting the record in the first when it overlaps the
    /// window itself.
    fn mark(
        &mut self,
        grid: &Grid,
        codes: SubjectCodes,
        (s, e): (u64, u64),
        status: LogStatus,
    ) -> Result<(), IndexError> {
        let (lo, hi) = grid.slot_edges();
        let slots = grid.slot(s.max(lo))..=grid.slot(e.min(hi));
        // Counted only when it overlaps the window itself. Records outside it say the slot was
        // delivered; a SKIPDATA outside it would be reported as a drop inside the window.
        let in_window = s <= grid.hi && e >= grid.lo;
        if !in_window && status == LogStatus::SkipData {
            return Ok(());
        }
        self.mark_slots(codes, slots, bit(status), in_window)
    }

    /// Marks `slots` of the subject `codes` as having seen the statuses of `seen`, counting one
    /// record in the first when `count`.
    fn mark_slots(
        &mut self,
        codes: SubjectCodes,
        slots: std::ops::RangeInclusive<u32>,
        seen: u8,
        count: bool,
    ) -> Result<(), IndexError> {
        let at = match self.last_place {
            Some((known, at)) if known == codes => at,
            _ => {
                let at = match self.places.get(&codes) {
                    Some(&at) => at,
                    None => {
                        let key = self.key(codes)?;
                        self.lists.push((key, SlotList::default()));
                        self.places.insert(codes, self.lists.len() - 1);
                        self.lists.len() - 1
                    }
                };
                self.last_place = Some((codes, at));
                at
            }
        };
        let list = &mut self.lists[at].1;
        let (first, last) = slots.into_inner();
        list.mark(
            first,
            Slot {
                seen,
                records: u32::from(count),
            },
        );
        for slot in first + 1..=last {
            list.mark(slot, Slot { seen, records: 0 });
        }
        Ok(())
    }

    fn key(&self, (account, who): SubjectCodes) -> Result<Key, IndexError> {
        let account_id = account.map(|t| self.text(&self.accounts, t)).transpose()?;
        Ok(match who {
            Ok(t) => Key {
                account_id,
                subject: Subject::Interface(self.text(&self.interfaces, t)?),
            },
            Err(src) => fallback_key(account_id, self.index.source(src)?.as_ref()),
        })
    }

    fn text(&self, dict: &Option<Dictionary<'_>>, term: u64) -> Result<String, IndexError> {
        let corrupt =
            |what: &str| IndexError::corrupt(self.seg.path(), crate::format::Corrupt::new(what, term, "bad term"));
        let d = dict.as_ref().ok_or_else(|| corrupt("dictionary"))?;
        match d.term(usize::try_from(term).unwrap_or(usize::MAX)) {
            Ok(Term::Bytes(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
            Ok(_) => Err(corrupt("dictionary holds no text")),
            Err(c) => Err(IndexError::corrupt(self.seg.path(), c)),
        }
    }

    /// The term numbers of the named interfaces this segment has.
    fn interface_terms(&self, names: &[String]) -> Result<Vec<u32>, IndexError> {
        let mut terms = Vec::new();
        for name in names {
            terms.extend(self.interface_term(name)?);
        }
        Ok(terms)
    }

    /// The term number of an interface, if this segment has it.
    fn interface_term(&self, name: &str) -> Result<Option<u32>, IndexError> {
        let Some(d) = &self.interfaces else {
            return Ok(None);
        };
        let found = d
            .find(&Term::Bytes(name.as_bytes()))
            .map_err(|c| IndexError::corrupt(self.seg.path(), c))?;
        Ok(found.map(|t| t as u32))
    }

    fn into_slots(self, slots: &mut BTreeMap<Key, SlotList>) {
        for (key, list) in self.lists {
            match slots.entry(key) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(list);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().append(list),
            }
        }
    }
}

/// Selected records below one in this many of a block are read value by value.
const SPARSE_FRACTION: usize = 8;

/// One column of a block as a scan read it: whole, or only the selected records' values.
enum Picked {
    Whole(Option<ColumnValues>),
    At(Option<Vec<Option<u64>>>),
}

impl Picked {
    /// The value of record `i` of the block, the `k`-th selected one.
    fn get(&self, i: usize, k: usize) -> Option<u64> {
        match self {
            Picked::Whole(c) => c.as_ref().and_then(|c| c.get(i)),
            Picked::At(v) => v.as_ref().and_then(|v| v[k]),
        }
    }
}

/// The subject of records without an interface-id: their source's flow log, else the source.
fn fallback_key(account_id: Option<String>, source: Option<&SourceEntry>) -> Key {
    let account_id = account_id.or_else(|| source.and_then(|s| s.s3.account_id.clone()));
    let subject = match source {
        Some(s) => match &s.s3.flow_log_id {
            Some(id) => Subject::FlowLog(id.clone()),
            None => Subject::Source(s.name.clone()),
        },
        None => Subject::Source("(unknown source)".to_owned()),
    };
    Key { account_id, subject }
}

/// The account-id of record `id`: what an interface silent in the window is listed under.
fn account_of(seg: &Segment, id: u32, accounts: &Option<Dictionary<'_>>) -> Result<Option<String>, IndexError> {
    let Some(dict) = accounts else { return Ok(None) };
    let blocks = seg.blocks()?;
    let Some(block) = blocks
        .iter()
        .position(|b| (b.first_record..b.first_record + b.record_count).contains(&id))
    else {
        return Ok(None);
    };
    let col = seg.read_column(block, Column::Field(Field::AccountId))?;
    let i = (id - blocks[block].first_record) as usize;
    match col.and_then(|c| c.get(i)) {
        None => Ok(None),
        Some(t) => match dict.term(usize::try_from(t).unwrap_or(usize::MAX)) {
            Ok(Term::Bytes(b)) => Ok(Some(String::from_utf8_lossy(b).into_owned())),
            Ok(_) => Ok(None),
            Err(c) => Err(IndexError::corrupt(seg.path(), c)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(lo: u64, hi: u64, bin: u64) -> Grid {
        Grid {
            lo,
            hi,
            bin,
            first: lo / bin,
            count: hi / bin - lo / bin + 1,
        }
    }

    fn slot(status: LogStatus, records: u32) -> Slot {
        Slot {
            seen: bit(status),
            records,
        }
    }

    #[test]
    fn slot_runs_answer_as_the_records_do_on_their_own_grid_only() {
        // The fixtures' golden index: interfaces with OK, NODATA and SKIPDATA records, records
        // without a log-status, spread over years.
        let index = Index::open(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/v7")).unwrap();
        let d = index.segments()[0]
            .dictionary(Column::Field(Field::InterfaceId))
            .unwrap()
            .unwrap();
        let mut names: Vec<String> = (0..d.len())
            .map(|t| match d.term(t).unwrap() {
                Term::Bytes(b) => String::from_utf8(b.to_vec()).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(names.len() > 3, "{names:?}");
        names.push("eni-nowhere".into());
        let m = &index.manifest().segments[0];
        let (lo, hi) = (m.min_start.unwrap() / 300 * 300, m.max_end.unwrap() / 300 * 300 + 299);
        // Occupied slots with their statuses (not their counts), and the interfaces' accounts.
        type Seen = BTreeMap<Key, Vec<(u32, u8)>>;
        let slots = |s: Scanned| -> (Seen, HashMap<String, Option<String>>) {
            let seen = |list: SlotList| list.finish().into_iter().map(|(k, s)| (k, s.seen)).collect();
            (
                s.slots.into_iter().map(|(key, list)| (key, seen(list))).collect(),
                s.accounts,
            )
        };
        for (from, to) in [(lo, hi), (lo + 600, hi - 900)] {
            let on_edges = grid(from, to, 300);
            let fast = scan_runs(&index, &on_edges, &names)
                .unwrap()
                .expect("runs on their grid");
            let slow = scan(&index, &on_edges, &Select::Interfaces(&names)).unwrap();
            let (fast, slow) = (slots(fast), slots(slow));
            assert!(fast.0.len() > 3 && fast.0.values().any(|v| v.iter().any(|(_, s)| *s == 4)));
            assert_eq!(fast, slow);
        }
        // Ragged edges, another slot width, slots past the runs' last: the records answer.
        for off_grid in [grid(lo + 1, hi, 300), grid(lo, hi - 1, 300), grid(lo, hi, 60)] {
            assert!(scan_runs(&index, &off_grid, &names).unwrap().is_none());
        }
        let far = u64::from(SLOT_LIMIT) * 300;
        assert!(scan_runs(&index, &grid(far - 300, far + 299, 300), &names)
            .unwrap()
            .is_none());
    }

    #[test]
    fn skipdata_wins_over_records_and_records_over_nodata() {
        let mut s = slot(LogStatus::NoData, 1);
        assert_eq!(s.state(), State::NoData);
        s.merge(slot(LogStatus::Ok, 2));
        assert_eq!(s.state(), State::Records);
        s.merge(slot(LogStatus::SkipData, 0));
        assert_eq!((s.state(), s.records), (State::SkipData, 3));
    }

    #[test]
    fn ranges_merge_equal_slots_fill_gaps_and_clip_to_the_window() {
        // Window 10:03:00 .. 10:31:59 on a 5-minute grid: slots 10:00 .. 10:30.
        let g = grid(36_180, 37_919, 300);
        let occupied = [
            (1, slot(LogStatus::Ok, 4)),
            (2, slot(LogStatus::Ok, 1)),
            (4, slot(LogStatus::SkipData, 2)),
        ];
        let r = g.ranges(&occupied, false);
        let got: Vec<(u64, u64, State, u64)> = r.iter().map(|r| (r.from, r.to, r.state, r.records)).collect();
        assert_eq!(
            got,
            [
                (36_180, 36_300, State::Gap, 0),
                (36_300, 36_900, State::Records, 5),
                (36_900, 37_200, State::Gap, 0),
                (37_200, 37_500, State::SkipData, 2),
                (37_500, 37_920, State::Gap, 0),
            ]
        );
        // Trimmed: from the first to the last occupied slot only.
        let t = g.ranges(&occupied, true);
        assert_eq!((t[0].from, t.last().unwrap().to, t.len()), (36_300, 37_500, 3));
    }

    #[test]
    fn out_of_order_marks_are_sorted_and_merged() {
        let mut l = SlotList::default();
        for i in (0..5000u32).rev() {
            l.mark(i % 7, slot(LogStatus::Ok, 1));
        }
        let done = l.finish();
        assert_eq!(done.len(), 7);
        assert_eq!(done.iter().map(|(_, s)| s.records).sum::<u32>(), 5000);
    }
}
