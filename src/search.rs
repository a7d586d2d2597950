//! Searching: a query's text → bound query → matching records from the index (`exec`) → the
//! record stages, or aggregate rows (`agg`) and the row stages. The library entry point the CLI
//! and the tests share.

use std::cmp::Ordering;
use std::num::NonZeroU32;

use rayon::prelude::*;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap as HashMap;

use crate::agg::Budget;
use crate::agg::{self, Rows};
use crate::exec::{self, HeldRecord, Hit, Keeper, SearchError, RECORD_BYTES};
use crate::format::column::{self, Column as ColumnValues};
use crate::format::dictionary::Dictionary;
use crate::format::schema::Column;
use crate::query::GroupBy;
use crate::query::{AggregateFn, Bound, RecordStage};
use crate::read::IndexError;
use crate::read::{Index, Segment};
use crate::record::FieldKind;
use crate::record::{Field, FlowRecord};

/// What a query returns.
#[derive(Debug)]
pub enum Answer {
    /// Matching records in output order, and the fields to show (`None`: all).
    Records {
        hits: Vec<Hit>,
        fields: Option<Vec<Field>>,
    },
    Rows(Rows),
}

impl Answer {
    pub fn is_empty(&self) -> bool {
        match self {
            Answer::Records { hits, .. } => hits.is_empty(),
            Answer::Rows(r) => r.rows.is_empty() || r.of_no_record,
        }
    }
}

/// Memory a search holds by default (`--memory 1600M`): about 700,000 matching records, or
/// that much of aggregate groups.
pub const DEFAULT_MEMORY: usize = 1600 << 20;

/// Runs a bound query on an index within [`DEFAULT_MEMORY`].
pub fn run(index: &Index, bound: &Bound) -> Result<Answer, SearchError> {
    run_within(index, bound, DEFAULT_MEMORY)
}

/// Runs a bound query on an index, holding at most about `memory` bytes of matching records or
/// aggregate groups; a query that needs more fails with an error saying so.
pub fn run_within(index: &Index, bound: &Bound, memory: usize) -> Result<Answer, SearchError> {
    let budget = Budget::new(memory);
    // `stats count()` with nothing else: postings alone answer it when they are exact.
    if let Some((by, aggs)) = &bound.stats {
        let count_only = by.is_empty()
            && bound.records.is_empty()
            && aggs
                .iter()
                .all(|a| a.function == AggregateFn::Count && a.field.is_none());
        if count_only {
            let n = exec::count(index, &bound.filter)?;
            let mut rows = Rows {
                columns: aggs.iter().map(|a| a.name.clone()).collect(),
                units: vec![agg::Unit::Number; aggs.len()],
                rows: vec![vec![agg::Cell::Int(n.into()); aggs.len()]],
                of_no_record: n == 0,
            };
            agg::apply(&mut rows, &bound.rows);
            return Ok(Answer::Rows(rows));
        }
    }
    // Stats over records that no sort, limit or dedup reorders: aggregate per segment while
    // reading, without holding the records.
    let streaming = bound.passes_every_match();
    if let (Some((by, aggs)), true) = (&bound.stats, streaming) {
        if bound.records.iter().all(|s| matches!(s, RecordStage::Fields(_))) {
            if let Some(rows) = stats_over_columns(index, &bound.filter, by, aggs, &bound.rows, &budget, memory)? {
                return Ok(Answer::Rows(rows));
            }
        }
        let filters = bound.filter_stages();
        let partials = exec::fold(
            index,
            &bound.filter,
            bound.needed_fields(),
            || agg::Aggregator::new(by, aggs, &budget),
            |a, r| {
                if filters.iter().all(|f| f.matches(r)) {
                    a.add(r);
                }
            },
        )?;
        // Merging moves the partials' groups: nothing more is taken from the budget.
        let unlimited = Budget::new(usize::MAX);
        let mut total = agg::Aggregator::new(by, aggs, &unlimited);
        for p in partials {
            total.merge(p);
        }
        if total.over_budget() {
            return Err(SearchError::TooManyGroups { limit: memory });
        }
        return Ok(Answer::Rows(total.finish(&bound.rows)));
    }
    let max_records = memory as u64 / RECORD_BYTES;
    // Filters before any limit or dedup run as records are decoded: what they drop is never
    // held. With a limit after only filters, field lists and sorts, only what can be among the
    // first records of the order it limits is held.
    let first = first_limit(bound);
    let early_filters: Vec<&crate::query::Filter> = bound
        .records
        .iter()
        .take_while(|s| !matches!(s, RecordStage::Limit(_) | RecordStage::Dedup(_)))
        .filter_map(|s| match s {
            RecordStage::Filter(f) => Some(f),
            _ => None,
        })
        .collect();
    let keys = first.map_or(&[][..], |(_, keys)| keys);
    // Held records are boxed.
    #[allow(clippy::borrowed_box)]
    let by_keys_then_time = |a: &Box<FlowRecord>, b: &Box<FlowRecord>| {
        by_keys(keys, a, b).then_with(|| (a.start, a.end).cmp(&(b.start, b.end)))
    };
    let zone_keys = zone_keys(keys);
    #[allow(clippy::borrowed_box)]
    let zone_value = |r: &Box<FlowRecord>, f: Field| match r.get(f) {
        Some(crate::record::Value::UInt(n)) => Some(n),
        _ => None,
    };
    let keeper = Keeper {
        least: first.map(|(n, _)| exec::Least {
            n: usize::try_from(n).unwrap_or(usize::MAX),
            cmp: &by_keys_then_time,
            zone: (!zone_keys.is_empty()).then(|| exec::ZoneKeys {
                keys: zone_keys.clone(),
                value: &zone_value,
            }),
        }),
        ..Keeper::records()
    };
    let keep = |r: &FlowRecord| early_filters.iter().all(|f| f.matches(r));
    let mut hits = sorted(
        exec::records(
            index,
            &bound.filter,
            bound.needed_fields(),
            &keeper,
            max_records,
            (!early_filters.is_empty()).then_some(&keep),
        )?,
        output_order,
    );
    let mut fields = None;
    for stage in &bound.records {
        match stage {
            RecordStage::Filter(f) => hits.retain(|h| f.matches(&h.record)),
            RecordStage::Fields(f) => fields = Some(f.clone()),
            RecordStage::Dedup(f) => {
                let mut seen = std::collections::HashSet::new();
                hits.retain(|h| {
                    seen.insert(
                        f.iter()
                            .map(|x| h.record.get(*x).map(|v| v.to_string()))
                            .collect::<Vec<_>>(),
                    )
                });
            }
            RecordStage::Sort(keys) => {
                hits = sorted(std::mem::take(&mut hits), |a, b| {
                    by_keys(keys, &a.record, &b.record).then_with(|| output_order(a, b))
                })
            }
            RecordStage::Limit(n) => hits.truncate(usize::try_from(*n).unwrap_or(usize::MAX)),
        }
    }
    match &bound.stats {
        None => Ok(Answer::Records { hits, fields }),
        Some((by, aggs)) => {
            let mut rows = agg::aggregate(hits.iter().map(|h| &*h.record), by, aggs);
            agg::apply(&mut rows, &bound.rows);
            Ok(Answer::Rows(rows))
        }
    }
}

/// Whether [`records_in_batches`] answers `bound`: records with filters and field lists only
/// (no `sort`, `dedup`, `limit` or `stats`, which need every record at once).
pub fn answers_in_batches(bound: &Bound) -> bool {
    bound.stats.is_none()
        && bound
            .records
            .iter()
            .all(|s| matches!(s, RecordStage::Filter(_) | RecordStage::Fields(_)))
}

/// The fields a record query shows (its last `fields` stage); `None`: all.
pub fn shown_fields(bound: &Bound) -> Option<Vec<Field>> {
    bound.records.iter().rev().find_map(|s| match s {
        RecordStage::Fields(f) => Some(f.clone()),
        _ => None,
    })
}

/// What [`records_in_batches`] lends each batch of records to.
pub type Emit<'a, R> = dyn FnMut(&mut Vec<Hit<R>>) -> Result<(), SearchError> + 'a;

/// Hands the records of a query that [`answers_in_batches`] to `emit`, as `keeper` makes them
/// (each counted at `keeper.bytes`; with their original lines read in the same pass when
/// `keeper.lines`; `keeper.least` must be `None`, as every record is wanted), in output order,
/// in batches that each fit in `memory`: the whole answer at once when it fits, else slices of
/// time. "All records touching this address" on a busy host of 100 M records is 3.3 million
/// records, five times what 1.6 GB holds; sorting them all at once is what made such a search
/// fail.
///
/// To cut the slices, the `start` column of every candidate block is read (one frame a block)
/// and the candidates' starts are sorted (16 bytes a candidate at the peak, within `memory`,
/// and freed before any slice is read), then cut every so many records, never inside one
/// second. Each slice is read from
/// the blocks whose zone map meets it. Records without a `start` come first in output order,
/// and go first. Every slice is cut before anything is handed out, so a search refused for a
/// second of more records than fit (known from exact postings) writes nothing; with a filter
/// the postings do not answer exactly, such a second is tried, and refused only if its matches
/// do not fit.
///
/// `emit` may take the records out of the batch it is lent; what it leaves is freed here before
/// the next batch is gathered, and the last batch on an idle core while the caller goes on (a
/// hot address's 653,283 printed records took 7% of its search to free one by one).
pub fn records_in_batches<R: HeldRecord + Send + 'static>(
    index: &Index,
    bound: &Bound,
    memory: usize,
    keeper: &Keeper<'_, R>,
    emit: &mut Emit<'_, R>,
) -> Result<(), SearchError> {
    debug_assert!(answers_in_batches(bound) && keeper.least.is_none());
    let plans = exec::plan(index, &bound.filter)?;
    // The filter stages run while decoding, so what they drop takes no room.
    let stages = bound.filter_stages();
    // Decoded: the fields the keeper reads, the filters test, and output order sorts by; all
    // when the keeper reads them all or writes original lines (from every field).
    let only = keeper.fields.filter(|_| !keeper.lines).map(|mut set| {
        bound.filter.fields(&mut set);
        stages.iter().for_each(|f| f.fields(&mut set));
        set.insert(Field::Start);
        set.insert(Field::End);
        set
    });
    let mut hand_out =
        |plans: &[exec::Candidates], max: u64, within: &(dyn Fn(Option<u64>) -> bool + Sync), last: bool| {
            let keep = |r: &crate::record::FlowRecord| within(r.start) && stages.iter().all(|f| f.matches(r));
            let mut hits = sorted(
                exec::gather(index, &bound.filter, plans, only, keeper, max, &keep)?,
                output_order,
            );
            let emitted = emit(&mut hits);
            if last {
                rayon::spawn(move || drop(hits));
            }
            emitted
        };
    // A keeper that claims to cost nothing is counted at a byte a record.
    let record_bytes = keeper.bytes.max(1);
    let whole = memory as u64 / record_bytes;
    let candidates: u64 = plans.iter().map(|c| c.ids.len()).sum();
    let exact = plans.iter().all(|c| c.exact);
    if candidates <= whole || !exact {
        // Inexact candidates may be many more than the matches: try the answer whole first.
        match hand_out(&plans, whole, &|_| true, true) {
            Err(SearchError::TooManyRecords { .. }) if !exact => {}
            done => return done,
        }
    }
    if 16 * candidates > memory as u64 {
        return Err(SearchError::TooManyToSlice { candidates, memory });
    }
    let max = whole;
    if max == 0 {
        return Err(SearchError::TooManyRecords {
            limit: 0,
            sliced: false,
        });
    }
    // The candidates' starts, from the `start` column of their blocks: the ids without one,
    // and the start of each of the others.
    let scanned = index
        .segments()
        .par_iter()
        .zip(plans.par_iter())
        .map(|(seg, c)| {
            let (mut nulls, mut starts) = (RoaringBitmap::new(), Vec::new());
            for (i, b) in seg.blocks_holding(&c.ids)? {
                let range = b.first_record..b.first_record + b.record_count;
                let column = seg.read_column(i, Column::Field(Field::Start))?;
                for id in c.ids.range(range) {
                    match column.as_ref().and_then(|v| v.get((id - b.first_record) as usize)) {
                        Some(start) => starts.push(start),
                        None => {
                            nulls.insert(id);
                        }
                    }
                }
            }
            Ok((nulls, starts))
        })
        .collect::<Result<Vec<_>, IndexError>>()?;
    let mut starts = Vec::with_capacity(scanned.iter().map(|(_, s)| s.len()).sum());
    let without_start: Vec<exec::Candidates> = scanned
        .into_iter()
        .map(|(nulls, mut s)| {
            starts.append(&mut s);
            // Counted as they are kept: a slice's candidates include records outside it.
            exec::Candidates {
                ids: nulls,
                exact: false,
            }
        })
        .collect();
    starts.sort_unstable();
    // Slices of `start` holding at most `max` candidates each, never splitting one second: a
    // second with more is a slice of its own, refused here when the postings were exact.
    let mut slices = Vec::new();
    let mut at = 0;
    while at < starts.len() {
        let lo = starts[at];
        let mut end = (at + max as usize).min(starts.len());
        while end < starts.len() && end > at && starts[end] == starts[end - 1] {
            end -= 1;
        }
        if end == at {
            if exact {
                return Err(SearchError::TooManyRecords {
                    limit: max,
                    sliced: true,
                });
            }
            end = at + starts[at..].partition_point(|&t| t == lo);
        }
        slices.push((lo, starts[end - 1]));
        at = end;
    }
    if without_start.iter().map(|c| c.ids.len()).sum::<u64>() > max && exact {
        return Err(SearchError::TooManyRecords {
            limit: max,
            sliced: true,
        });
    }
    // A slice refused for holding too many says how the slices were cut.
    let sliced = |e: SearchError| match e {
        SearchError::TooManyRecords { limit, .. } => SearchError::TooManyRecords { limit, sliced: true },
        e => e,
    };
    drop(starts);
    if without_start.iter().any(|c| !c.ids.is_empty()) {
        hand_out(&without_start, max, &|start| start.is_none(), slices.is_empty()).map_err(sliced)?;
    }
    let count = slices.len();
    for (n, (lo, hi)) in slices.into_iter().enumerate() {
        let slice: Vec<exec::Candidates> = index
            .segments()
            .iter()
            .zip(&plans)
            .zip(&without_start)
            .map(|((seg, c), nulls)| {
                let mut meeting = RoaringBitmap::new();
                for b in seg
                    .blocks()?
                    .iter()
                    .filter(|b| !b.start.is_empty() && b.start.min <= hi && b.start.max >= lo)
                {
                    meeting.insert_range(b.first_record..b.first_record + b.record_count);
                }
                Ok(exec::Candidates {
                    ids: (&c.ids & &meeting) - &nulls.ids,
                    exact: false,
                })
            })
            .collect::<Result<_, IndexError>>()?;
        hand_out(
            &slice,
            max,
            &|start| start.is_some_and(|t| lo <= t && t <= hi),
            n + 1 == count,
        )
        .map_err(sliced)?;
    }
    Ok(())
}

/// The records an aggregation of `bound` counted from sources that failed while read (the
/// manifest's `failed_sources`), per source: any of them may hold a corrupt value, and rows do
/// not show their records as a record search does. Reads nothing when no source failed; else
/// the source column of the candidates' blocks, and only the failed sources' records in full,
/// counted as they are decoded (none held). With a `sort`, `limit` or `dedup` before `stats`,
/// which choose among the matches, the counts are of every match: at most what was counted.
pub fn aggregated_from_failed(index: &Index, bound: &Bound) -> Result<FromFailed, SearchError> {
    let failed: std::collections::HashSet<u32> = index.manifest().failed_sources.iter().flatten().copied().collect();
    let mut answer = FromFailed {
        counts: Vec::new(),
        at_most: !bound.passes_every_match(),
    };
    if failed.is_empty() || bound.stats.is_none() {
        return Ok(answer);
    }
    let plans = exec::plan(index, &bound.filter)?;
    let of_failed = index
        .segments()
        .par_iter()
        .zip(&plans)
        .map(|(seg, c)| {
            let mut ids = RoaringBitmap::new();
            for (i, b) in seg.blocks_holding(&c.ids)? {
                let sources = seg.read_column(i, Column::Source)?;
                let source = |id: u32| column::value_at(sources.as_ref(), (id - b.first_record) as usize);
                ids.extend(
                    c.ids
                        .range(b.first_record..b.first_record + b.record_count)
                        .filter(|&id| source(id).is_some_and(|s| u32::try_from(s).is_ok_and(|s| failed.contains(&s)))),
                );
            }
            Ok(exec::Candidates { ids, exact: false })
        })
        .collect::<Result<Vec<_>, IndexError>>()?;
    let stages = bound.filter_stages();
    let per_segment = exec::fold_among(
        index,
        &bound.filter,
        Some(&of_failed),
        bound.needed_fields(),
        std::collections::BTreeMap::<u32, u64>::new,
        |counts, r| {
            if stages.iter().all(|f| f.matches(r)) {
                *counts.entry(r.provenance.source).or_default() += 1;
            }
        },
    )?;
    let mut counts = std::collections::BTreeMap::<u32, u64>::new();
    for (id, n) in per_segment.into_iter().flatten() {
        *counts.entry(id).or_default() += n;
    }
    let ids: Vec<u32> = counts.keys().copied().collect();
    let labels = index.source_labels(&ids)?;
    answer.counts = labels
        .into_iter()
        .map(|(id, label)| (std::sync::Arc::new(label), counts[&id]))
        .collect();
    Ok(answer)
}

/// What [`aggregated_from_failed`] found.
#[derive(Debug, Default)]
pub struct FromFailed {
    /// Per failed source with matching records, in id order: its label and how many.
    pub counts: Vec<(std::sync::Arc<crate::format::sources::SourceLabel>, u64)>,
    /// The aggregation chose among the matches (a `sort`, `limit` or `dedup` before `stats`):
    /// it counted at most these.
    pub at_most: bool,
}

/// Bytes of a memory page, as far as touching memory goes.
const PAGE: usize = 4096;

/// Most `by` keys an aggregation over raw columns handles (its group keys are fixed arrays).
const COLUMN_KEYS: usize = 4;

/// A group's key as raw column values (term numbers, codes, numbers, bin starts), with a bit
/// per null.
type RawKey = ([u64; COLUMN_KEYS], u8);

/// One segment's groups, laid out flat (a vector per group made merging 55 segments' groups
/// allocation-bound): group `g` has keys `g * by.len()..` and partials `g * aggs.len()..`.
struct SegmentGroups {
    count: usize,
    keys: Vec<agg::Key>,
    partials: Vec<agg::Partial>,
}

/// The groups of one segment, or of a part of one, while its matching records are scanned
/// (parts of a segment merge by raw key: [`SegmentAggregation::absorb`]). Each group's partials sit
/// in one vector, at the place its key maps to. A single key of term numbers (an address or
/// text field) finds that place in a vector indexed by term: hashing every record's key was the
/// largest cost after decompression. Other keys, nulls, and term numbers past the dictionary
/// (damage, reported by [`SegmentAggregation::finish`]) go through a hash map.
struct SegmentAggregation<'q> {
    by: &'q [GroupBy],
    aggs: usize,
    /// Per term, its group's place plus one (`None`: no group yet). All zeros, so that the
    /// vector is allocated zeroed and only the pages of terms met are touched: a dictionary of
    /// 80 K addresses filled with a sentinel faulted in 640 KB per segment.
    by_term: Vec<Option<NonZeroU32>>,
    /// A bit per memory page of `by_term`: set once the page was first written. The first
    /// access to a page is made a write: a read maps the shared zero page, and the write
    /// that follows replaces it, flushing the page tables of every core the process runs on
    /// (TLB shootdowns were 13% of query 3's time).
    written_pages: Vec<u64>,
    places: HashMap<RawKey, usize>,
    partials: Vec<agg::Partial>,
}

impl<'q> SegmentAggregation<'q> {
    /// `None` when the budget cannot hold the vector of places by term (given back when the
    /// groups are resolved or taken in by another part). A part waiting for the others keeps
    /// it: a segment in parts can hold a vector per part at once.
    fn new(
        by: &'q [GroupBy],
        aggs: usize,
        dicts: &[Option<Dictionary<'_>>],
        budget: &Budget,
    ) -> Option<SegmentAggregation<'q>> {
        let terms = match (by, dicts) {
            ([GroupBy::Field { .. }], [Some(dict)]) => dict.len(),
            _ => 0,
        };
        budget.take(Self::by_term_bytes(terms)).then(|| SegmentAggregation {
            by,
            aggs,
            by_term: vec![None; terms],
            // The vector need not start on a page: it may reach into one page more.
            written_pages: vec![0; (Self::by_term_bytes(terms).div_ceil(PAGE) + 1).div_ceil(64)],
            places: HashMap::default(),
            partials: Vec::new(),
        })
    }

    fn by_term_bytes(terms: usize) -> usize {
        terms * std::mem::size_of::<Option<NonZeroU32>>()
    }

    /// Where `term`'s slot of `by_term` lies in `written_pages`: its word and bit.
    fn written_bit(by_term: &[Option<NonZeroU32>], term: usize) -> (usize, u64) {
        let start = by_term.as_ptr() as usize % PAGE;
        let page = (start + term * std::mem::size_of::<Option<NonZeroU32>>()) / PAGE;
        (page / 64, 1 << (page % 64))
    }

    /// The place of `term`'s group when the segment has met the term: read only from a
    /// written page (see `written_pages`).
    fn known(&self, term: u64) -> Option<usize> {
        let term = usize::try_from(term).ok().filter(|&t| t < self.by_term.len())?;
        let (word, bit) = Self::written_bit(&self.by_term, term);
        (self.written_pages[word] & bit != 0)
            .then(|| self.by_term[term])
            .flatten()
            .map(|place| place.get() as usize - 1)
    }

    /// Adds the records at `offsets` of a block, whose columns `cols` hold the keys, then one
    /// value per aggregate; `false` when a new group did not fit in the budget (its records
    /// are then left out).
    fn add_block(&mut self, cols: &[Option<ColumnValues>], offsets: &[u32], budget: &Budget) -> bool {
        let mut fits = true;
        let mut values = vec![None; cols.len()];
        let by_term = self.by.len() == 1 && !self.by_term.is_empty();
        for &at in offsets {
            let at = at as usize;
            // A term met before in this segment: its place without building the record's
            // values (most records of a 30-day aggregation).
            let place = if by_term {
                column::value_at(cols[0].as_ref(), at).and_then(|term| self.known(term))
            } else {
                None
            };
            let place = match place {
                Some(place) => place,
                None => {
                    for (v, c) in values.iter_mut().zip(cols) {
                        *v = column::value_at(c.as_ref(), at);
                    }
                    match self.place(&values, budget) {
                        Some(place) => place,
                        None => {
                            fits = false;
                            continue;
                        }
                    }
                }
            };
            for (p, c) in self.partials[place..place + self.aggs]
                .iter_mut()
                .zip(&cols[self.by.len()..])
            {
                p.add(column::value_at(c.as_ref(), at));
            }
        }
        fits
    }

    fn place(&mut self, values: &[Option<u64>], budget: &Budget) -> Option<usize> {
        let (aggs, partials) = (self.aggs, &mut self.partials);
        // The place a new group takes, plus one, as a place by term holds it: checked to fit
        // before the place is taken.
        let next_by_term = u32::try_from(partials.len() + 1).ok().and_then(NonZeroU32::new);
        let mut new_place = || {
            budget.take(SEGMENT_GROUP_BYTES).then(|| {
                partials.resize(partials.len() + aggs, agg::Partial::default());
                partials.len() - aggs
            })
        };
        let by_term = match values.first() {
            Some(Some(term)) if (*term as usize) < self.by_term.len() => {
                let term = *term as usize;
                let (word, bit) = Self::written_bit(&self.by_term, term);
                let word = &mut self.written_pages[word];
                if *word & bit == 0 {
                    // Never written, so still `None`: written as such.
                    self.by_term[term] = None;
                    *word |= bit;
                }
                Some(&mut self.by_term[term])
            }
            _ => None,
        };
        if let Some(slot) = by_term {
            return match *slot {
                Some(place) => Some(place.get() as usize - 1),
                None => {
                    let next = next_by_term?;
                    let place = new_place()?;
                    *slot = Some(next);
                    Some(place)
                }
            };
        }
        let mut key: RawKey = ([0; COLUMN_KEYS], 0);
        for (k, (g, v)) in self.by.iter().zip(values).enumerate() {
            match (g, v) {
                (_, None) => key.1 |= 1 << k,
                (GroupBy::Bin { seconds, .. }, Some(s)) => key.0[k] = s - s % seconds,
                (GroupBy::Field { .. }, Some(v)) => key.0[k] = *v,
            }
        }
        match self.places.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => Some(*o.get()),
            std::collections::hash_map::Entry::Vacant(v) => Some(*v.insert(new_place()?)),
        }
    }

    /// Takes in the groups of another part of the same segment, by their raw keys (term
    /// numbers are the segment's): cheaper than resolving both parts' keys and merging them
    /// by value. `false` when a new group did not fit in the budget.
    fn absorb(&mut self, mut other: SegmentAggregation<'q>, budget: &Budget) -> bool {
        // The larger takes in the smaller: fewer groups to place, under the segment's lock.
        if other.partials.len() > self.partials.len() {
            std::mem::swap(self, &mut other);
        }
        let aggs = self.aggs;
        let mut fits = true;
        let mut values = vec![None; self.by.len()];
        for ((raw, nulls), at) in other.places() {
            for (k, v) in values.iter_mut().enumerate() {
                *v = (nulls & (1 << k) == 0).then_some(raw[k]);
            }
            let Some(place) = self.place(&values, budget) else {
                fits = false;
                continue;
            };
            for (mine, theirs) in self.partials[place..place + aggs]
                .iter_mut()
                .zip(&other.partials[at..at + aggs])
            {
                mine.merge(theirs);
            }
        }
        budget.give(Self::by_term_bytes(other.by_term.len()) + other.partials.len() / aggs * SEGMENT_GROUP_BYTES);
        fits
    }

    /// Each group's raw key and place, in no particular order; read without collecting them
    /// (a day's 40,000 groups are 2 MB of keys).
    fn places(&self) -> impl Iterator<Item = (RawKey, usize)> + '_ {
        self.by_term
            .iter()
            .enumerate()
            .filter_map(|(term, at)| at.map(|at| (([term as u64, 0, 0, 0], 0), at.get() as usize - 1)))
            .chain(self.places.iter().map(|(key, &at)| (*key, at)))
    }

    /// The groups with their keys as values: term numbers and codes are looked up once per
    /// group, not once per record, and here, where segments run in parallel.
    fn finish(
        self,
        seg: &Segment,
        dicts: &[Option<Dictionary<'_>>],
        budget: &Budget,
    ) -> Result<SegmentGroups, IndexError> {
        let places: Vec<(RawKey, usize)> = self.places().collect();
        budget.give(Self::by_term_bytes(self.by_term.len()));
        // The partials stay where they are; each group's key is written at its place.
        let width = self.by.len();
        let mut groups = SegmentGroups {
            count: places.len(),
            keys: vec![agg::Key::Null; places.len() * width],
            partials: self.partials,
        };
        debug_assert!(self.aggs > 0, "stats has at least one aggregate");
        for ((raw, nulls), at) in places {
            let group = at / self.aggs;
            for (k, (g, dict)) in self.by.iter().zip(dicts).enumerate() {
                let v = (nulls & (1 << k) == 0).then_some(raw[k]);
                groups.keys[group * width + k] = match g {
                    GroupBy::Bin { seconds, .. } => agg::bin_key(v, *seconds),
                    GroupBy::Field { field, .. } => match v {
                        None => agg::key_of(None),
                        Some(v) => agg::key_of(Some(
                            seg.value(*field, v, dict.as_ref())
                                .map_err(|c| IndexError::corrupt(seg.path(), c))?,
                        )),
                    },
                };
            }
        }
        Ok(groups)
    }
}

/// `stats` computed from the raw values of the columns it reads, without building records or a
/// text key per record; `None` when the query needs records (a filter the postings do not
/// answer exactly, `count_distinct`, a non-number field, more than four keys).
fn stats_over_columns(
    index: &Index,
    filter: &crate::query::Filter,
    by: &[GroupBy],
    aggs: &[crate::query::Aggregate],
    stages: &[crate::query::RowStage],
    budget: &Budget,
    memory: usize,
) -> Result<Option<agg::Rows>, SearchError> {
    let numbers = |f: Option<Field>| f.is_none_or(|f| f.kind() == crate::record::FieldKind::UInt);
    if by.len() > COLUMN_KEYS
        || !aggs
            .iter()
            .all(|a| agg::Partial::supports(a.function) && numbers(a.field))
    {
        return Ok(None);
    }
    let Some(column_filter) = exec::ColumnFilter::new(filter) else {
        return Ok(None);
    };
    let key_column = |g: &GroupBy| match g {
        GroupBy::Field { field, .. } => Column::Field(*field),
        GroupBy::Bin { .. } => Column::Field(Field::Start),
    };
    // `count()` counts records, whatever their values: it reads no column.
    let columns: Vec<Option<Column>> = by
        .iter()
        .map(|g| Some(key_column(g)))
        .chain(aggs.iter().map(|a| a.field.map(Column::Field)))
        .collect();
    let over_budget = std::sync::atomic::AtomicBool::new(false);
    // Each thread merges the groups of the segments whose last part it scanned into its own
    // total, while the other threads still scan: merged after the scans, 33 segments' groups
    // of a 30-day top talkers took 28 ms on one core, and freeing them 6 ms more.
    let threads = rayon::current_num_threads();
    let totals: Vec<std::sync::Mutex<Option<agg::Aggregator>>> =
        (0..=threads).map(|_| std::sync::Mutex::new(None)).collect();
    let candidates = index
        .segments()
        .par_iter()
        .map(|seg| exec::candidates_of(seg, &column_filter))
        .collect::<Result<Vec<_>, _>>()?;
    // A segment with more than a thread's share of the candidates is scanned in parts of
    // that size, a thread each: a day's records lie in one or two segments, unevenly (one
    // thread scanned 487 blocks of a day while the other was done with 314). No smaller parts
    // (halves of a share made a day's top sources 16.1 -> 18.7 ms: each part has its own
    // vector of places by term, and more parts merge), and none on one thread.
    let share = match threads {
        1 => u64::MAX,
        _ => candidates
            .iter()
            .map(RoaringBitmap::len)
            .sum::<u64>()
            .div_ceil(threads as u64),
    };
    let mut parts = Vec::new();
    for (s, (seg, ids)) in index.segments().iter().zip(candidates).enumerate() {
        if !ids.is_empty() {
            parts.extend(
                exec::split_at_blocks(seg, ids, share)?
                    .into_iter()
                    .map(|ids| (s, seg, ids)),
            );
        }
    }
    // The parts of a segment still to be scanned, and one that is done and waits for the
    // others to take it in: a segment's parts merge by raw key, and only the last one resolves
    // the keys and merges them into a total (a day's top sources: 40,000 groups resolved and
    // merged once instead of once a part).
    let unscanned: Vec<std::sync::atomic::AtomicUsize> = (0..index.segments().len())
        .map(|s| std::sync::atomic::AtomicUsize::new(parts.iter().filter(|p| p.0 == s).count()))
        .collect();
    let parked: Vec<std::sync::Mutex<Option<SegmentAggregation>>> = (0..index.segments().len())
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    parts
        .par_iter()
        // One part per task: a part is a segment, or a thread's share of one.
        .with_max_len(1)
        .try_for_each(|(s, seg, ids)| {
            // The answer is already refused: no more parts to scan.
            if over_budget.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(());
            }
            let dicts = by
                .iter()
                .map(|g| match g {
                    GroupBy::Field { field, .. } if matches!(field.kind(), FieldKind::Ip | FieldKind::Text) => {
                        seg.dictionary(Column::Field(*field))
                    }
                    _ => Ok(None),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let Some(mut groups) = SegmentAggregation::new(by, aggs.len(), &dicts, budget) else {
                over_budget.store(true, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            };
            exec::scan_columns(seg, &column_filter, ids, &columns, &mut |cols, offsets| {
                if !groups.add_block(cols, offsets, budget) {
                    over_budget.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            })?;
            let groups = {
                let mut waiting = parked[*s].lock().expect("no panics while locked");
                if let Some(other) = waiting.take() {
                    if !groups.absorb(other, budget) {
                        over_budget.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                if unscanned[*s].fetch_sub(1, std::sync::atomic::Ordering::AcqRel) > 1 {
                    *waiting = Some(groups);
                    return Ok(());
                }
                groups
            };
            let groups = groups.finish(seg, &dicts, budget)?;
            // Outside the pool (no index) is a slot of its own.
            let slot = rayon::current_thread_index().unwrap_or(threads);
            let mut total = totals[slot].lock().expect("no panics while locked");
            let total = total.get_or_insert_with(|| {
                let mut total = agg::Aggregator::new(by, aggs, budget);
                // Segments mostly share their groups: the first one's count is a good first size.
                total.reserve(groups.count);
                total
            });
            for g in 0..groups.count {
                let key = &groups.keys[g * by.len()..(g + 1) * by.len()];
                total.add_partials(key, &groups.partials[g * aggs.len()..(g + 1) * aggs.len()]);
            }
            // The total took what its new groups cost; the segment's are freed below. Kept,
            // their bytes summed over segments: 165 segments of 100 M records refused a `stats
            // by srcaddr` of 182,099 groups under the default 1.6 GB.
            budget.give(groups.count * SEGMENT_GROUP_BYTES);
            if total.over_budget() {
                over_budget.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Ok::<(), IndexError>(())
        })?;
    if over_budget.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(SearchError::TooManyGroups { limit: memory });
    }
    let mut totals: Vec<agg::Aggregator> = totals
        .into_iter()
        .filter_map(|t| t.into_inner().expect("no panics while locked"))
        .collect();
    // The largest total takes in the others.
    totals.sort_by_key(|t| std::cmp::Reverse(t.group_count()));
    let mut totals = totals.into_iter();
    let mut total = totals.next().unwrap_or_else(|| agg::Aggregator::new(by, aggs, budget));
    // The others' groups were taken from the budget when they were made: moved, they take
    // nothing more.
    totals.for_each(|t| total.merge(t));
    Ok(Some(total.finish(stages)))
}

/// Bytes a group costs in its segment until merged into a thread's total (where it takes
/// [`agg::Aggregator`]'s own share, 320 bytes and its key's): its raw key, partials and map
/// slot, then its key as a value. Measured: `stats count() by srcaddr, dstaddr, srcport` over
/// 2 M records (982,314 groups) peaked at 440 bytes a group over the process's own memory, and
/// is answered from `--memory 450M` up.
const SEGMENT_GROUP_BYTES: usize = 192;

/// The `limit` of a record query and the keys of the last `sort` before it (none: output
/// order), when only filters, field lists and sorts come before it (a `dedup` needs every
/// record). Each sort orders by its keys, then in output order, so only the last one decides
/// which records the limit keeps.
fn first_limit(bound: &Bound) -> Option<(u64, &[(Field, bool)])> {
    let mut keys: &[(Field, bool)] = &[];
    for stage in &bound.records {
        match stage {
            RecordStage::Filter(_) | RecordStage::Fields(_) => {}
            RecordStage::Sort(k) => keys = k,
            RecordStage::Limit(n) => return Some((*n, keys)),
            RecordStage::Dedup(_) => return None,
        }
    }
    None
}

/// The keys of a limit's order (the last sort's keys, then `start` and `end`: see
/// `by_keys_then_time` in [`run_within`]) that blocks' zone maps bound, as far as each has zone
/// maps: by these, a limit reads blocks best first and stops early ([`exec::ZoneKeys`]).
fn zone_keys(sort: &[(Field, bool)]) -> Vec<(Field, bool)> {
    sort.iter()
        .copied()
        .chain([(Field::Start, false), (Field::End, false)])
        .take_while(|(f, _)| matches!(f, Field::Start | Field::End | Field::Bytes | Field::Packets))
        .collect()
}

/// A query's first limit on records (before any `stats`) and the keys by which it reads blocks
/// best first (empty when its order's first key has no zone maps): what `--explain` says of it.
pub fn limit_plan(bound: &Bound) -> Option<(u64, Vec<(Field, bool)>)> {
    first_limit(bound).map(|(n, sort)| (n, zone_keys(sort)))
}

/// Compares records by `sort` keys (descending where flagged).
fn by_keys(keys: &[(Field, bool)], a: &FlowRecord, b: &FlowRecord) -> Ordering {
    for (f, desc) in keys {
        let o = a.get(*f).cmp(&b.get(*f));
        let o = if *desc { o.reverse() } else { o };
        if o.is_ne() {
            return o;
        }
    }
    Ordering::Equal
}

/// `hits` in the order of `cmp` (stable), sorted on every core: a hot address's 653,283 hits
/// took 160 ms to sort on one. rayon's merge sort borrows room for all the hits (48 bytes
/// each), within what a held record is counted at ([`exec::RECORD_BYTES`]).
fn sorted<R: Send>(mut hits: Vec<Hit<R>>, cmp: impl Fn(&Hit<R>, &Hit<R>) -> Ordering + Sync) -> Vec<Hit<R>> {
    hits.par_sort_by(cmp);
    hits
}

/// Records come out by time, then source, then line; then by place in the index (two inputs
/// may hold sources of the same name).
pub fn output_order<R: HeldRecord>(a: &Hit<R>, b: &Hit<R>) -> Ordering {
    let ((a_start, a_end, a_from), (b_start, b_end, b_from)) = (a.record.place(), b.record.place());
    (a_start, a_end)
        .cmp(&(b_start, b_end))
        .then_with(|| a.source.name.cmp(&b.source.name))
        .then_with(|| a_from.line.cmp(&b_from.line))
        .then_with(|| a.at.cmp(&b.at))
}
