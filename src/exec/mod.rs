//! Running a bound query on an index: per segment, the filter is answered from postings where it
//! can be (dictionary lookups, CIDR term ranges, unions, intersections, differences) and from
//! the blocks' zone maps for times and counters; only candidate blocks are decoded, and only when
//! the postings answer is not already exact. Segments run in parallel.

mod columns;

pub use columns::{candidates_of, scan as scan_columns, split_at_blocks, ColumnFilter};

use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::format::dictionary::{ip_bytes, ip_from_bytes, Dictionary, Term, TermKind};
use crate::format::schema::{enum_word, Column, POSTING_FIELDS};
use crate::format::sources::SourceLabel;
use crate::format::{BlockEntry, Range};
use crate::query::{Cond, Filter, Test};
use crate::read::{Index, IndexError, RecordAt, Segment};
use crate::record::{Field, FieldKind, FlowRecord, Provenance, Value};

/// Record ids that may match, and whether all of them do.
#[derive(Clone, Debug)]
pub struct Candidates {
    pub ids: RoaringBitmap,
    pub exact: bool,
}

/// What a search touched, for `--explain` and for the benchmark.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentPlan {
    pub file: String,
    pub records: u64,
    pub candidates: u64,
    pub exact: bool,
    pub blocks_to_read: usize,
    pub blocks: usize,
}

/// How the searcher answers one condition of a filter, as `--explain` tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The postings of its fields' values: exact, no record read.
    Postings,
    /// Blocks chosen by their zone maps, then each candidate record's values.
    ZoneMaps,
    /// Each candidate record's values.
    Records,
}

impl Route {
    pub fn of(t: &Test) -> Route {
        match &t.cond {
            Cond::TimeOverlap(..) => Route::ZoneMaps,
            _ if t.fields.iter().all(|f| POSTING_FIELDS.contains(f)) => Route::Postings,
            _ if t.negate => Route::Records,
            Cond::Numbers(_) if t.fields.iter().all(|&f| zone_of(f).is_some()) => Route::ZoneMaps,
            _ => Route::Records,
        }
    }
}

/// The conditions of `filter`, in order, each with how it is answered.
pub fn routes(filter: &Filter) -> Vec<(&Test, Route)> {
    match filter {
        Filter::All => Vec::new(),
        Filter::And(parts) | Filter::Or(parts) => parts.iter().flat_map(routes).collect(),
        Filter::Not(inner) => routes(inner),
        Filter::Test(t) => vec![(t, Route::of(t))],
    }
}

/// Candidate ids of one segment for `filter`.
pub fn candidates(seg: &Segment, filter: &Filter) -> Result<Candidates, IndexError> {
    candidates_within(seg, filter, None)
}

/// [`candidates`] among `within` only, when given (a time window's blocks): a negated test
/// then looks for its fields' nulls there alone. Ids outside `within` may be left out of the
/// answer, so the caller keeps only those inside.
pub fn candidates_within(
    seg: &Segment,
    filter: &Filter,
    within: Option<&RoaringBitmap>,
) -> Result<Candidates, IndexError> {
    // Every record: an exact answer counts them without reading a block, so the block entries
    // are checked to hold the footer's count first.
    let all = || -> Result<RoaringBitmap, IndexError> {
        seg.blocks()?;
        let mut b = RoaringBitmap::new();
        b.insert_range(0..seg.record_count() as u32);
        Ok(b)
    };
    Ok(match filter {
        Filter::All => Candidates {
            ids: all()?,
            exact: true,
        },
        Filter::And(parts) => {
            // Time windows first: they cost a pass over the zone maps, and a segment with no
            // block in the window then reads no dictionary or posting (a one-day query over
            // 55 segments read the big postings of `action` and `tcp_flags` in all of them).
            let is_window = |p: &&Filter| {
                matches!(
                    p,
                    Filter::Test(Test {
                        cond: Cond::TimeOverlap(..),
                        ..
                    })
                )
            };
            // A negated test comes last, among the others' candidates: it finds the nulls of
            // its fields in their blocks only, not in the whole segment.
            let mut computed = Vec::with_capacity(parts.len());
            for p in parts
                .iter()
                .filter(is_window)
                .chain(parts.iter().filter(|p| !is_window(p) && negated_test(p).is_none()))
            {
                let c = candidates(seg, p)?;
                // Candidates hold every match: none here, none at all.
                if c.ids.is_empty() {
                    return Ok(Candidates {
                        ids: c.ids,
                        exact: true,
                    });
                }
                computed.push(c);
            }
            // Smallest first: each intersection is then at most as large as the smallest set.
            computed.sort_by_key(|c| c.ids.len());
            let mut it = computed.into_iter();
            let mut acc = match it.next() {
                Some(first) => first,
                None => Candidates {
                    ids: all()?,
                    exact: true,
                },
            };
            for c in it {
                acc.ids &= c.ids;
                acc.exact &= c.exact;
            }
            if let Some(within) = within.filter(|_| parts.iter().any(|p| negated_test(p).is_some())) {
                acc.ids &= within;
            }
            for t in parts.iter().filter_map(negated_test) {
                let c = negated_candidates(seg, t, &acc.ids)?;
                acc.ids = c.ids;
                acc.exact &= c.exact;
            }
            acc
        }
        Filter::Or(parts) => {
            let mut acc = Candidates {
                ids: RoaringBitmap::new(),
                exact: true,
            };
            for p in parts {
                let c = candidates(seg, p)?;
                acc.ids |= c.ids;
                acc.exact &= c.exact;
            }
            acc
        }
        Filter::Not(inner) => {
            let c = candidates(seg, inner)?;
            if c.exact {
                Candidates {
                    ids: all()? - c.ids,
                    exact: true,
                }
            } else {
                Candidates {
                    ids: all()?,
                    exact: false,
                }
            }
        }
        Filter::Test(t) if t.negate => match within {
            Some(within) => negated_candidates(seg, t, within)?,
            None => negated_candidates(seg, t, &all()?)?,
        },
        Filter::Test(t) => test_candidates(seg, t)?,
    })
}

fn negated_test(f: &Filter) -> Option<&Test> {
    match f {
        Filter::Test(t) if t.negate => Some(t),
        _ => None,
    }
}

fn block_ids(seg: &Segment, keep: impl Fn(&BlockEntry) -> bool) -> Result<RoaringBitmap, IndexError> {
    let mut ids = RoaringBitmap::new();
    // Neighbouring blocks kept go in as one range: a window over a whole segment is then one
    // insertion, not 588.
    let mut run: Option<std::ops::Range<u32>> = None;
    for b in seg.blocks()? {
        let (first, end) = (b.first_record, b.first_record + b.record_count);
        match &mut run {
            _ if !keep(b) => {}
            Some(r) if r.end == first => r.end = end,
            _ => {
                if let Some(r) = run.replace(first..end) {
                    ids.insert_range(r);
                }
            }
        }
    }
    if let Some(r) = run {
        ids.insert_range(r);
    }
    Ok(ids)
}

fn test_candidates(seg: &Segment, t: &Test) -> Result<Candidates, IndexError> {
    if let Cond::TimeOverlap(lo, hi) = t.cond {
        let ids = block_ids(seg, |b| b.may_overlap(lo, hi))?;
        return Ok(Candidates { ids, exact: false });
    }
    let mut acc = Candidates {
        ids: RoaringBitmap::new(),
        exact: true,
    };
    for &field in &t.fields {
        let c = field_candidates(seg, field, &t.cond)?;
        acc.ids |= c.ids;
        acc.exact &= c.exact;
    }
    Ok(acc)
}

/// The records among `within` where some field of negated test `t` has a value its condition
/// does not meet. A record has one value per field, so a column's postings split its records
/// with a value: those are the ones not null and in no posting of a matching term (`srcaddr !=
/// X` over 20 M records read every record, 1.2 s).
fn negated_candidates(seg: &Segment, t: &Test, within: &RoaringBitmap) -> Result<Candidates, IndexError> {
    let mut acc = Candidates {
        ids: RoaringBitmap::new(),
        exact: true,
    };
    for &field in &t.fields {
        let column = Column::Field(field);
        if !seg.columns().contains(&column) {
            // No record of the segment has a value for the field.
            continue;
        }
        let dict = match seg.dictionary(column)? {
            Some(d) if POSTING_FIELDS.contains(&field) => d,
            _ => {
                acc.ids |= within;
                acc.exact = false;
                continue;
            }
        };
        let terms = matching_terms(&dict, field, &t.cond).map_err(|c| IndexError::corrupt(seg.path(), c))?;
        let mut ids = within - seg.null_ids(column, within)?;
        ids -= seg.postings_union(column, &dict, &terms)?;
        acc.ids |= ids;
    }
    Ok(acc)
}

fn field_candidates(seg: &Segment, field: Field, cond: &Cond) -> Result<Candidates, IndexError> {
    let column = Column::Field(field);
    if !seg.columns().contains(&column) {
        // No record of the segment has a value for the field: nothing matches.
        return Ok(Candidates {
            ids: RoaringBitmap::new(),
            exact: true,
        });
    }
    let everything = || {
        Ok(Candidates {
            ids: block_ids(seg, |_| true)?,
            exact: false,
        })
    };
    let dict = match seg.dictionary(column)? {
        Some(d) if POSTING_FIELDS.contains(&field) => d,
        _ => return zone_candidates(seg, field, cond).unwrap_or_else(everything),
    };
    let terms = matching_terms(&dict, field, cond).map_err(|c| IndexError::corrupt(seg.path(), c))?;
    Ok(Candidates {
        ids: seg.postings_union(column, &dict, &terms)?,
        exact: true,
    })
}

/// The zone map of `field` in a block entry: `start`, `end`, `bytes` and `packets` have one.
fn zone_of(field: Field) -> Option<fn(&BlockEntry) -> Range> {
    Some(match field {
        Field::Start => |b| b.start,
        Field::End => |b| b.end,
        Field::Bytes => |b| b.bytes,
        Field::Packets => |b| b.packets,
        _ => return None,
    })
}

/// Blocks whose zone map can hold a matching `start`, `end`, `bytes` or `packets`.
fn zone_candidates(seg: &Segment, field: Field, cond: &Cond) -> Option<Result<Candidates, IndexError>> {
    let Cond::Numbers(ranges) = cond else { return None };
    let zone = zone_of(field)?;
    let ids = block_ids(seg, |b| ranges.iter().any(|(lo, hi)| zone(b).overlaps(*lo, *hi)));
    Some(ids.map(|ids| Candidates { ids, exact: false }))
}

/// Term numbers of a dictionary whose value meets `cond`: ranges by binary search, patterns by
/// a pass over the distinct values.
pub fn matching_terms(dict: &Dictionary<'_>, field: Field, cond: &Cond) -> Result<Vec<usize>, crate::format::Corrupt> {
    let mut out = Vec::new();
    let range = |lo: Term<'_>, hi: Term<'_>, out: &mut Vec<usize>| -> Result<(), crate::format::Corrupt> {
        let mut i = dict.lower_bound(&lo)?;
        while i < dict.len() && dict.term(i)? <= hi {
            out.push(i);
            i += 1;
        }
        Ok(())
    };
    // Whether term `i`'s value meets `cond`, told by writing it: for patterns.
    let meets = |i: usize| -> Result<bool, crate::format::Corrupt> {
        let value = match dict.term(i)? {
            Term::UInt(n) if field.kind() == FieldKind::Enum => enum_word(field, n).map(Value::Str),
            Term::UInt(n) => Some(Value::UInt(n)),
            Term::Ip(b) => Some(Value::Ip(ip_from_bytes(b))),
            Term::Bytes(b) => std::str::from_utf8(b).ok().map(Value::Str),
        };
        Ok(value.is_some_and(|v| cond.matches(v)))
    };
    match cond {
        Cond::Ips(ranges) => {
            for (lo, hi) in ranges {
                range(Term::Ip(*lo), Term::Ip(*hi), &mut out)?;
            }
        }
        Cond::Numbers(ranges) if field.kind() == FieldKind::UInt => {
            for (lo, hi) in ranges {
                range(Term::UInt(*lo), Term::UInt(*hi), &mut out)?;
            }
        }
        Cond::Words(words) => {
            for w in words {
                let probe = match field.kind() {
                    FieldKind::Enum => match (0..8).find(|c| enum_word(field, *c) == Some(w.as_str())) {
                        Some(code) => Term::UInt(code),
                        None => continue,
                    },
                    _ => Term::Bytes(w.as_bytes()),
                };
                out.extend(dict.find(&probe)?);
            }
        }
        Cond::Regex {
            addresses: Some(addresses),
            ..
        } if dict.kind() == TermKind::Ip => {
            let mapped = |n: u32| ip_bytes(std::net::IpAddr::V4(n.into()));
            for (lo, hi) in &addresses.ipv4 {
                range(Term::Ip(mapped(*lo)), Term::Ip(mapped(*hi)), &mut out)?;
            }
            // The IPv6 terms go through the regex when one may match: `^20` matches `2001:db8::1`.
            if addresses.ipv6 {
                let v4 = dict.ipv4_terms();
                for i in (0..v4.start).chain(v4.end..dict.len()) {
                    if meets(i)? {
                        out.push(i);
                    }
                }
            }
        }
        _ => {
            for i in 0..dict.len() {
                if meets(i)? {
                    out.push(i);
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// A matching record (`R`: the record itself, or what a [`Keeper`] made of it) with the name of
/// its source and its place in the index.
#[derive(Clone, Debug)]
pub struct Hit<R = Box<FlowRecord>> {
    /// A record is boxed: it is over a kilobyte, and hits are moved as they are gathered and
    /// sorted (66,000 hits: most of a search's time was memmove).
    pub record: R,
    /// Shared by the hits of one source: a hot address has tens of thousands of hits.
    pub source: std::sync::Arc<SourceLabel>,
    pub at: RecordAt,
}

/// What a search holds of a matching record until the records are in output order.
pub trait HeldRecord: Send {
    /// The record's start, end and provenance: what output order needs of it.
    fn place(&self) -> (Option<u64>, Option<u64>, Provenance);
}

impl HeldRecord for Box<FlowRecord> {
    fn place(&self) -> (Option<u64>, Option<u64>, Provenance) {
        (self.start, self.end, self.provenance)
    }
}

/// What a search makes of each matching record it holds, what that costs, and how many it
/// needs.
pub struct Keeper<'a, R> {
    /// Bytes one held record costs at the peak: the number held is `--memory` over this.
    pub bytes: u64,
    /// Whether `make` is given each record's original line.
    pub lines: bool,
    pub make: &'a (dyn Fn(&FlowRecord, Option<&[u8]>) -> R + Sync),
    /// Only the first records of an order are wanted (`| sort ... | limit n`).
    pub least: Option<Least<'a, R>>,
    /// The fields `make` reads (`None`: all of them). Where a search honours it
    /// ([`crate::search::records_in_batches`]), only these and the fields its filters and
    /// output order need are decoded.
    pub fields: Option<crate::record::FieldSet>,
}

/// The first `n` records of an order are wanted: each segment holds only the records among its
/// own first `n` by `cmp`, and every record tied with its n-th (`cmp` compares the order's keys
/// before source and line, which a segment cannot yet compare: it knows source ids, not names).
/// "The 10 largest rejected flows" then holds tens of records, not millions.
pub struct Least<'a, R> {
    pub n: usize,
    pub cmp: &'a (dyn Fn(&R, &R) -> std::cmp::Ordering + Sync),
    /// The order's first keys, when blocks' zone maps bound them.
    pub zone: Option<ZoneKeys<'a, R>>,
}

/// The first keys of a [`Least`] order that have zone maps (`start`, `end`, `bytes`,
/// `packets`), each ascending or descending (a missing value comes first ascending, last
/// descending). Each record of a block is, key by key, no better than the block's best values
/// (zone minima ascending, maxima descending), so it comes no sooner in the order than they
/// would. A segment reads its candidate blocks best first and stops at the first block whose
/// best values come after its n-th record: "the 20 first rejects" or "the 10 largest flows"
/// read a few blocks per segment, not every block holding a match. Keys after the first break
/// its ties: thousands of blocks hold a 1-packet flow, few of them an early one.
pub struct ZoneKeys<'a, R> {
    pub keys: Vec<(Field, bool)>,
    /// A held record's value of a field.
    pub value: &'a (dyn Fn(&R, Field) -> Option<u64> + Sync),
}

impl<R> ZoneKeys<'_, R> {
    /// Compares values of the keys in the order's directions.
    fn cmp(&self, a: &[Option<u64>], b: &[Option<u64>]) -> std::cmp::Ordering {
        for ((_, desc), (x, y)) in self.keys.iter().zip(a.iter().zip(b)) {
            let o = if *desc { y.cmp(x) } else { x.cmp(y) };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    }

    /// Drops from `offsets` (of block `i`) the records whose values of the keys come after
    /// `nth`, reading only the keys' columns: the rest of a record is rebuilt only if it may
    /// be among the first.
    fn narrow(&self, seg: &Segment, i: usize, offsets: &mut Vec<u32>, nth: &[Option<u64>]) -> Result<(), IndexError> {
        let times = if self.keys.iter().any(|(f, _)| matches!(f, Field::Start | Field::End)) {
            seg.read_times_at(i, offsets)?
        } else {
            (None, None)
        };
        let mut columns = Vec::with_capacity(self.keys.len());
        for &(field, _) in &self.keys {
            columns.push(match field {
                Field::Start => times.0.clone(),
                Field::End => times.1.clone(),
                _ => seg.read_column_at(i, Column::Field(field), offsets)?,
            });
        }
        let mut k = 0;
        offsets.retain(|_| {
            let mut order = std::cmp::Ordering::Equal;
            for (((_, desc), column), y) in self.keys.iter().zip(&columns).zip(nth) {
                let x = column.as_ref().and_then(|c| c.get(k).copied().flatten());
                order = if *desc { y.cmp(&x) } else { x.cmp(y) };
                if order.is_ne() {
                    break;
                }
            }
            k += 1;
            order.is_le()
        });
        Ok(())
    }

    /// A held record's values of the keys.
    fn of(&self, record: &R) -> Vec<Option<u64>> {
        self.keys.iter().map(|(f, _)| (self.value)(record, *f)).collect()
    }

    /// The best values a record of block `i` can have.
    fn best(&self, seg: &Segment, i: usize, b: &BlockEntry) -> Result<Vec<Option<u64>>, IndexError> {
        let mut best = Vec::with_capacity(self.keys.len());
        for &(field, desc) in &self.keys {
            let zone = match field {
                Field::Start => b.start,
                Field::End => b.end,
                Field::Bytes => b.bytes,
                Field::Packets => b.packets,
                // No zone map: the best value there is.
                _ => {
                    best.push(desc.then_some(u64::MAX));
                    continue;
                }
            };
            best.push(if desc {
                (!zone.is_empty()).then_some(zone.max)
            } else if !zone.is_empty() && seg.has_no_nulls(i, Column::Field(field))? {
                Some(zone.min)
            } else {
                None
            });
        }
        Ok(best)
    }
}

/// Hits a segment gathers beyond twice its `n` before it drops those past its first `n`.
const LEAST_SLACK: usize = 4_096;

/// Keeps the `n` least of `items` by `cmp` and every item tied with the n-th, in no particular
/// order.
fn keep_least<T>(items: &mut Vec<T>, n: usize, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) {
    if items.len() <= n {
        return;
    }
    if n == 0 {
        items.clear();
        return;
    }
    items.select_nth_unstable_by(n - 1, &cmp);
    let mut kept = n;
    for i in n..items.len() {
        if cmp(&items[i], &items[n - 1]).is_eq() {
            items.swap(kept, i);
            kept += 1;
        }
    }
    items.truncate(kept);
}

impl Keeper<'static, Box<FlowRecord>> {
    /// Keeps the records themselves.
    pub fn records() -> Keeper<'static, Box<FlowRecord>> {
        fn boxed(record: &FlowRecord, _: Option<&[u8]>) -> Box<FlowRecord> {
            Box::new(record.clone())
        }
        Keeper {
            bytes: RECORD_BYTES,
            lines: false,
            make: &boxed,
            least: None,
            fields: None,
        }
    }
}

/// The plan of every segment for `filter`, without reading any block.
pub fn explain(index: &Index, filter: &Filter) -> Result<Vec<SegmentPlan>, IndexError> {
    index
        .segments()
        .iter()
        .zip(index.segment_metas())
        .map(|(seg, meta)| {
            let c = candidates(seg, filter)?;
            let blocks_to_read = if c.exact && c.ids.is_empty() {
                0
            } else {
                blocks_touched(seg, &c.ids)?
            };
            Ok(SegmentPlan {
                file: meta.file.clone(),
                records: seg.record_count(),
                candidates: c.ids.len(),
                exact: c.exact,
                blocks_to_read,
                blocks: seg.block_count(),
            })
        })
        .collect()
}

fn blocks_touched(seg: &Segment, ids: &RoaringBitmap) -> Result<usize, IndexError> {
    Ok(seg.blocks_holding(ids)?.count())
}

/// How many records match: from postings alone when they answer the filter exactly, from the
/// `start` and `end` columns when only top-level time windows are left to check, else from
/// records.
pub fn count(index: &Index, filter: &Filter) -> Result<u64, IndexError> {
    let by_columns = ColumnFilter::new(filter);
    let counts = index
        .segments()
        .par_iter()
        .map(|seg| {
            // `time = 2024-04-28 | stats count()` built every record of the day: 90 ms on 20 M
            // records, against 7 ms reading times at the day's edges only.
            if let Some(column_filter) = &by_columns {
                return columns::count(seg, column_filter);
            }
            let c = candidates(seg, filter)?;
            if c.exact {
                Ok(c.ids.len())
            } else {
                let mut only = crate::record::FieldSet::EMPTY;
                filter.fields(&mut only);
                let blocks = seg.blocks_holding(&c.ids)?;
                Ok(matching(
                    seg,
                    filter,
                    &c.ids,
                    blocks,
                    None,
                    Some(only),
                    false,
                    &mut |_, _, _, _| {},
                )?)
            }
        })
        .collect::<Result<Vec<u64>, IndexError>>()?;
    Ok(counts.iter().sum())
}

/// What a refused search that cut its answer into slices of time spent its memory on.
fn too_many_records(limit: u64, sliced: bool) -> String {
    if limit == 0 {
        return format!("--memory holds no matching record (one takes about {RECORD_BYTES} bytes); raise --memory");
    }
    let held = if sliced {
        " in one second of its answer, which is handed out a slice of time at a time and never \
         splits a second"
    } else {
        " at once"
    };
    format!(
        "the query needs more than {limit} matching records held{held}, more than a search holds \
         (--memory) to put them in order (by time, or as it sorts) or to deduplicate them; \
         narrow it (a time window, an address), aggregate with `| stats ...`, or raise --memory"
    )
}

/// Why a search stopped.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("{}", too_many_records(*limit, *sliced))]
    TooManyRecords {
        limit: u64,
        /// Whether the answer was cut into slices of time, `limit` records each at most.
        sliced: bool,
    },
    #[error(
        "the query has {candidates} candidate records, too many to cut its answer into slices \
         of time within --memory ({memory} bytes; cutting takes 16 bytes a candidate); narrow \
         it (a time window, an address), aggregate with `| stats ...`, or raise --memory"
    )]
    TooManyToSlice { candidates: u64, memory: usize },
    #[error(
        "the aggregation's groups need more than {limit} bytes (--memory); narrow the query (a time \
         window, fewer or coarser `by` keys) or raise --memory"
    )]
    TooManyGroups { limit: usize },
    /// Handing out a batch of records failed (the output closed, a disk filled).
    #[error("writing the answer: {0}")]
    Output(#[source] std::io::Error),
}

/// Memory one held matching record costs: the boxed record (1.6 KB) with its strings, the hit,
/// and its share of decoding and output. Measured: 562,921 records of one address held on
/// 20 M records peaked at 1.45 GB, about 2.4 KB each over the process's own 100 MB.
pub const RECORD_BYTES: u64 = 2_400;

/// The matching records that pass `keep` (all without it), as [`gather`] holds them for
/// `keeper`. With `only`, records carry just those fields.
pub fn records(
    index: &Index,
    filter: &Filter,
    only: Option<crate::record::FieldSet>,
    keeper: &Keeper<'_, Box<FlowRecord>>,
    max: u64,
    keep: Option<&(dyn Fn(&FlowRecord) -> bool + Sync)>,
) -> Result<Vec<Hit>, SearchError> {
    let mut plans = plan(index, filter)?;
    if keep.is_some() {
        // What `keep` drops is not held: exact candidates are no longer the answer's size.
        plans.iter_mut().for_each(|c| c.exact = false);
    }
    gather(index, filter, &plans, only, keeper, max, keep.unwrap_or(&|_| true))
}

/// The candidates of every segment, segments in parallel: for 1,000 IOC addresses that is
/// 110,000 dictionary look-ups on 20 M records.
pub fn plan(index: &Index, filter: &Filter) -> Result<Vec<Candidates>, IndexError> {
    index.segments().par_iter().map(|seg| candidates(seg, filter)).collect()
}

/// The records among each segment's candidates (`plans`, one per segment) that match `filter`
/// and pass `keep`, as `keeper` makes them, with their source names, in no particular order.
/// `only` limits the fields decoded, unless `keeper` asks for original lines (written from all
/// fields). With `keeper.least`, only a set that holds the first `n` records of its order.
/// Fails rather than hold more than `max` records at once (with `least`, when more than `max`
/// records tie for the first places).
#[allow(clippy::too_many_arguments)]
pub fn gather<R: HeldRecord>(
    index: &Index,
    filter: &Filter,
    plans: &[Candidates],
    only: Option<crate::record::FieldSet>,
    keeper: &Keeper<'_, R>,
    max: u64,
    keep: &(dyn Fn(&FlowRecord) -> bool + Sync),
) -> Result<Vec<Hit<R>>, SearchError> {
    // Exact candidates are the answer's size, unless only the first few are wanted: refuse
    // before decoding anything.
    let counted_first = keeper.least.is_none();
    let exact: u64 = plans
        .iter()
        .filter(|c| c.exact && counted_first)
        .map(|c| c.ids.len())
        .sum();
    if exact > max {
        return Err(SearchError::TooManyRecords {
            limit: max,
            sliced: false,
        });
    }
    // The first `n` records, held in full, and each thread's `n` and a half (see `trim_at`)
    // may not fit: then one thread, with all the room beside the answer, trims less often
    // than several with a part of it each.
    let threads = rayon::current_num_threads();
    if let Some(least) = keeper.least.as_ref().filter(|_| threads > 1) {
        let n = least.n as u64;
        if max.saturating_sub(n) / threads as u64 <= n + n / 2 {
            if let Ok(one) = rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                return one.install(|| gather(index, filter, plans, only, keeper, max, keep));
            }
        }
    }
    use std::sync::atomic::Ordering::Relaxed;
    // Until the sources are looked up, after the records are gathered.
    let unknown = std::sync::Arc::new(SourceLabel::unknown());
    let held = std::sync::atomic::AtomicU64::new(exact);
    // Takes one more record unless `max` are held.
    let take_one = || {
        if held.fetch_add(1, Relaxed) < max {
            true
        } else {
            held.fetch_sub(1, Relaxed);
            false
        }
    };
    // With `least`: drops what cannot be among the first records, and says so in `held`.
    let trim = |hits: &mut Vec<Hit<R>>| {
        if let Some(least) = &keeper.least {
            let before = hits.len();
            keep_least(hits, least.n, |a, b| (least.cmp)(&a.record, &b.record));
            held.fetch_sub((before - hits.len()) as u64, Relaxed);
        }
    };
    // With `least`, each segment's first records join these as the segment ends (or when
    // memory runs short), trimmed again.
    let first = std::sync::Mutex::new(Vec::new());
    let join_first = |hits: &mut Vec<Hit<R>>| {
        let mut first = first.lock().expect("no panics while locked");
        first.append(hits);
        trim(&mut first);
    };
    // A segment trims its hits when they reach twice `n` and some, or its share of `max`: the
    // threads' untrimmed hits must leave room for the answer. Not below half again `n` while
    // the threads have room for that beside the answer's `n`: a trim costs as many steps as
    // hits are held, so it must drop a good part of them (trimming at `n + 1`, a `limit 130000`
    // took 100 s instead of 1). Never beyond that room: a thread cannot trim another's hits,
    // and the answer would be refused for want of memory.
    let share = usize::try_from(max).unwrap_or(usize::MAX) / (2 * (threads + 1));
    let trim_at = keeper.least.as_ref().map_or(usize::MAX, |l| {
        let room = usize::try_from(max).unwrap_or(usize::MAX).saturating_sub(l.n) / threads;
        l.n.saturating_mul(2)
            .saturating_add(LEAST_SLACK)
            .min(share)
            .max(l.n.saturating_add(l.n / 2).saturating_add(1))
            .min(room)
            .max(l.n.saturating_add(1))
    });
    let per_segment = index
        .segments()
        .par_iter()
        .zip(plans.par_iter())
        .enumerate()
        .map(|(s, (seg, c))| {
            // Exact candidates bound the hits: room for them all at once, not grown by copying
            // (a hot address: 653,283 hits).
            let room = if c.exact && counted_first {
                c.ids.len() as usize
            } else {
                0
            };
            let hits = std::cell::RefCell::new(Vec::with_capacity(room));
            let mut over = false;
            let zone = keeper.least.as_ref().and_then(|l| Some((l, l.zone.as_ref()?)));
            let mut blocks = Vec::new();
            for (i, b) in seg.blocks_holding(&c.ids)? {
                let best = match zone {
                    Some((_, z)) => z.best(seg, i, b)?,
                    None => Vec::new(),
                };
                blocks.push((i, b, best));
            }
            if let Some((_, z)) = zone {
                blocks.sort_by(|a, b| z.cmp(&a.2, &b.2));
            }
            // The keys' values of the segment's n-th record, once it holds `n`: no record after
            // them can be among the first. Set between blocks; a record of the block being read
            // is compared with the previous block's, which is no tighter.
            let nth = std::cell::RefCell::new(None::<Vec<Option<u64>>>);
            // Set when hits were trimmed since `nth` was found: finding it reads every hit, so it
            // is found again only then, not before each block (a `limit 100000` sorted by bytes
            // spent 60 % of its time so). A stale `nth` is no tighter, never wrong.
            let retrimmed = std::cell::Cell::new(false);
            // Whether a block whose records are at best `best` may hold one of the first records:
            // not when the segment already holds `n` records all better than it.
            let may_hold = |best: &[Option<u64>]| {
                let Some((least, z)) = zone else { return true };
                let mut hits = hits.borrow_mut();
                if least.n == 0 || hits.len() < least.n {
                    return least.n > 0;
                }
                if nth.borrow().is_none() || retrimmed.replace(false) {
                    trim(&mut hits);
                    let worst = hits.iter().max_by(|a, b| (least.cmp)(&a.record, &b.record));
                    *nth.borrow_mut() = worst.map(|h| z.of(&h.record));
                }
                nth.borrow().as_ref().is_none_or(|v| z.cmp(best, v).is_le())
            };
            let blocks = blocks
                .iter()
                .take_while(|(_, _, best)| may_hold(best))
                .map(|&(i, b, _)| (i, b));
            // Records after the n-th are dropped on their keys' columns, before being rebuilt (a
            // tied block of a bare `limit` holds a thousand records, few of them among the first).
            let narrow = |i: usize, offsets: &mut Vec<u32>| match (zone, nth.borrow().as_deref()) {
                (Some((_, z)), Some(nth)) => z.narrow(seg, i, offsets, nth),
                _ => Ok(()),
            };
            matching(
                seg,
                filter,
                &c.ids,
                blocks,
                Some(&narrow),
                only,
                keeper.lines,
                &mut |r, line, block, offset| {
                    if !keep(r) {
                        return;
                    }
                    let mut hits = hits.borrow_mut();
                    let counted = c.exact && counted_first;
                    if !counted && !take_one() {
                        // Room may come from dropping what cannot be among the first records:
                        // of this segment's, then of all segments' so far.
                        trim(&mut hits);
                        if keeper.least.is_some() && !take_one() {
                            join_first(&mut hits);
                        }
                        if keeper.least.is_none() || !take_one() {
                            over = true;
                            return;
                        }
                    }
                    let at = RecordAt {
                        segment: s as u32,
                        block,
                        offset,
                    };
                    hits.push(Hit {
                        record: (keeper.make)(r, line),
                        source: unknown.clone(),
                        at,
                    });
                    if hits.len() >= trim_at {
                        trim(&mut hits);
                        retrimmed.set(true);
                    }
                },
            )?;
            if over {
                return Err(SearchError::TooManyRecords {
                    limit: max,
                    sliced: false,
                });
            }
            let mut hits = hits.into_inner();
            if keeper.least.is_some() {
                join_first(&mut hits);
                return Ok(Vec::new());
            }
            Ok(hits)
        })
        .collect::<Result<Vec<_>, SearchError>>()?;
    let mut first = first.into_inner().expect("no panics while locked");
    let mut hits: Vec<Hit<R>> = Vec::with_capacity(per_segment.iter().map(Vec::len).sum::<usize>() + first.len());
    per_segment
        .into_iter()
        .for_each(|mut segment| hits.append(&mut segment));
    hits.append(&mut first);
    // Labels of the sources the hits came from: one entry of the sources file read for each,
    // in id order, so that each compressed chunk of entries is decompressed once.
    let ids: std::collections::BTreeSet<u32> = hits.iter().map(|h| h.record.place().2.source).collect();
    let ids: Vec<u32> = ids.into_iter().collect();
    let labels: std::collections::HashMap<u32, std::sync::Arc<SourceLabel>> = index
        .source_labels(&ids)?
        .into_iter()
        .map(|(id, label)| (id, label.into()))
        .collect();
    for h in &mut hits {
        if let Some(label) = labels.get(&h.record.place().2.source) {
            h.source = label.clone();
        }
    }
    Ok(hits)
}

/// Folds every matching record into one value per segment (segments in parallel): how
/// aggregations run without holding the matching records.
pub fn fold<T: Send>(
    index: &Index,
    filter: &Filter,
    only: Option<crate::record::FieldSet>,
    init: impl Fn() -> T + Sync,
    add: impl Fn(&mut T, &FlowRecord) + Sync,
) -> Result<Vec<T>, IndexError> {
    fold_among(index, filter, None, only, init, add)
}

/// [`fold`] over the records among `plans` (one set of candidates per segment) only.
pub fn fold_among<T: Send>(
    index: &Index,
    filter: &Filter,
    plans: Option<&[Candidates]>,
    only: Option<crate::record::FieldSet>,
    init: impl Fn() -> T + Sync,
    add: impl Fn(&mut T, &FlowRecord) + Sync,
) -> Result<Vec<T>, IndexError> {
    index
        .segments()
        .par_iter()
        .enumerate()
        .map(|(s, seg)| {
            let computed;
            let c = match plans {
                Some(plans) => &plans[s],
                None => {
                    computed = candidates(seg, filter)?;
                    &computed
                }
            };
            let mut acc = init();
            let blocks = seg.blocks_holding(&c.ids)?;
            matching(seg, filter, &c.ids, blocks, None, only, false, &mut |r, _, _, _| {
                add(&mut acc, r)
            })?;
            Ok(acc)
        })
        .collect()
}

/// Takes each match of [`matching`]: the record, its original line when asked for, its block and
/// its place in the block.
type Found<'a> = dyn FnMut(&FlowRecord, Option<&[u8]>, u32, u32) + 'a;

/// Drops from a block's candidate offsets, before their records are rebuilt, those that cannot
/// be wanted.
type Narrow<'a> = dyn Fn(usize, &mut Vec<u32>) -> Result<(), IndexError> + 'a;

/// Decodes `blocks` (those holding candidates `ids`, in the order to read them) and hands out
/// the records that match, with their original lines when `lines` asks for them; returns their
/// number.
#[allow(clippy::too_many_arguments)]
fn matching<'s>(
    seg: &'s Segment,
    filter: &Filter,
    ids: &RoaringBitmap,
    blocks: impl Iterator<Item = (usize, &'s BlockEntry)>,
    narrow: Option<&Narrow<'_>>,
    only: Option<crate::record::FieldSet>,
    lines: bool,
    found: &mut Found<'_>,
) -> Result<u64, IndexError> {
    let mut n = 0;
    let dicts = seg.dictionaries();
    // Decoded into again for each block: its records' text buffers are reused.
    let mut records = Vec::new();
    for (i, b) in blocks {
        let range = b.first_record..b.first_record + b.record_count;
        let mut offsets: Vec<u32> = ids.range(range).map(|id| id - b.first_record).collect();
        if let Some(narrow) = narrow {
            narrow(i, &mut offsets)?;
            if offsets.is_empty() {
                continue;
            }
        }
        // Original lines are written from all of a record's fields.
        let only = if lines { None } else { only };
        let formats = seg.read_records_into(i, &offsets, only, &dicts, &mut records)?;
        let matches: Vec<usize> = (0..offsets.len()).filter(|&k| filter.matches(&records[k])).collect();
        let original = if lines {
            let of_matches = matches.iter().map(|&k| ((&records[k], formats[k]), offsets[k]));
            seg.original_lines(i, of_matches)?
        } else {
            Vec::new()
        };
        for (j, &k) in matches.iter().enumerate() {
            found(&records[k], original.get(j).map(Vec::as_slice), i as u32, offsets[k]);
        }
        n += matches.len() as u64;
    }
    Ok(n)
}
