//! Matching records as raw column values, without building records: what aggregations over
//! millions of records need. Possible when the postings answer the filter exactly, apart from
//! top-level time windows, which are checked on the `start` and `end` columns.

use roaring::RoaringBitmap;

use super::candidates;
use crate::format::schema::Column;
use crate::query::{Cond, Filter};
use crate::read::{IndexError, Segment};
use crate::record::Field;

/// A filter split into what the postings answer and the time windows checked per record.
#[derive(Clone, Debug)]
pub struct ColumnFilter {
    postings: Filter,
    windows: Vec<(u64, u64)>,
}

impl ColumnFilter {
    /// Splits `filter`; `None` when a part other than a time window may need records to decide
    /// (the caller then reads records).
    pub fn new(filter: &Filter) -> Option<ColumnFilter> {
        let parts = filter.conjuncts();
        let windows: Vec<(u64, u64)> = parts.iter().filter_map(|f| f.time_window()).collect();
        let rest: Vec<Filter> = parts
            .into_iter()
            .filter(|f| f.time_window().is_none())
            .cloned()
            .collect();
        let postings = match rest.len() {
            0 => Filter::All,
            1 => rest.into_iter().next().expect("one part"),
            _ => Filter::And(rest),
        };
        answerable(&postings).then_some(ColumnFilter { postings, windows })
    }
}

/// Whether the postings answer `filter` exactly in every segment: any condition on indexed
/// fields (patterns and flag masks run over the dictionary's distinct values), combined by
/// and, or and not.
fn answerable(filter: &Filter) -> bool {
    match filter {
        Filter::All => true,
        Filter::And(v) | Filter::Or(v) => v.iter().all(answerable),
        Filter::Not(f) => answerable(f),
        Filter::Test(t) => {
            !t.negate
                && t.fields
                    .iter()
                    .all(|f| crate::format::schema::POSTING_FIELDS.contains(f))
                && !matches!(t.cond, Cond::TimeOverlap(..))
        }
    }
}

/// Calls `found` with the values of `columns` (in order; `None` for null, for a column the
/// segment lacks, and for a `None` column, which is not read) of every record of `seg` that
/// matches.
pub fn scan(
    seg: &Segment,
    filter: &ColumnFilter,
    columns: &[Option<Column>],
    found: &mut dyn FnMut(&[Option<u64>]),
) -> Result<(), IndexError> {
    let mut ids = postings_answer(seg, filter)?;
    for &(lo, hi) in &filter.windows {
        // Blocks whose zone maps cannot overlap the window go first.
        let mut keep = RoaringBitmap::new();
        for b in seg.blocks()? {
            if !b.start.is_empty() && b.start.min <= hi && b.end.max >= lo {
                keep.insert_range(b.first_record..b.first_record + b.record_count);
            }
        }
        ids &= keep;
    }
    let mut values = vec![None; columns.len()];
    for (i, b) in seg.blocks_holding(&ids)? {
        let range = b.first_record..b.first_record + b.record_count;
        // Whether every record of the block is a candidate: a range check, where counting the
        // range's ids popped every word of its bitmap container below the block (3% of a
        // 30-day aggregation's instructions).
        let whole = ids.contains_range(range.clone());
        let read = |c: Option<Column>| c.map_or(Ok(None), |c| seg.read_column(i, c));
        let cols = columns.iter().map(|&c| read(c)).collect::<Result<Vec<_>, _>>()?;
        let (start, end) = (Column::Field(Field::Start), Column::Field(Field::End));
        // A block whose every record starts and ends inside the windows (its zone maps say so
        // for the values it has, and it has no null time) needs no time checked: a day's
        // aggregation then reads two columns fewer in all but the blocks at its edges. A block
        // whose every record ends late enough needs only its starts checked: records are in
        // time order by interface, so a day has edge blocks at its end for every interface
        // (177 of the 624 edge blocks of a day on the 20 M bench index).
        let check = if filter.windows.is_empty() {
            TimeCheck::None
        } else {
            let ends_inside = filter.windows.iter().all(|&(lo, _)| b.end.min >= lo) && seg.has_no_nulls(i, end)?;
            let starts_inside =
                filter.windows.iter().all(|&(_, hi)| b.start.max <= hi) && seg.has_no_nulls(i, start)?;
            match (starts_inside, ends_inside) {
                (true, true) => TimeCheck::None,
                (false, true) => TimeCheck::Starts(seg.read_column(i, start)?),
                _ => {
                    let (starts, ends) = seg.read_times(i)?;
                    TimeCheck::Both(starts, ends)
                }
            }
        };
        let mut visit = |at: usize| {
            let value = |c: &Option<crate::format::column::Column>| c.as_ref().and_then(|c| c.get(at));
            let in_windows = match &check {
                TimeCheck::None => true,
                TimeCheck::Starts(starts) => {
                    value(starts).is_some_and(|s| filter.windows.iter().all(|&(_, hi)| s <= hi))
                }
                TimeCheck::Both(starts, ends) => match (value(starts), value(ends)) {
                    (Some(s), Some(e)) => filter.windows.iter().all(|&(lo, hi)| s <= hi && e >= lo),
                    _ => false,
                },
            };
            if !in_windows {
                return;
            }
            for (v, col) in values.iter_mut().zip(&cols) {
                *v = col.as_ref().and_then(|c| c.get(at));
            }
            found(&values);
        };
        // A whole block of candidates (a time window's inner blocks) is walked by offset, not
        // through the bitmap's iterator, a tenth of a day's aggregation.
        if whole {
            (0..b.record_count as usize).for_each(&mut visit);
        } else {
            ids.range(range).for_each(|id| visit((id - b.first_record) as usize));
        }
    }
    Ok(())
}

/// How many records of `seg` match: the postings' answer alone when no window is left to check,
/// else counted by [`scan`], which reads the times of the windows' edge blocks only.
pub fn count(seg: &Segment, filter: &ColumnFilter) -> Result<u64, IndexError> {
    if filter.windows.is_empty() {
        return Ok(postings_answer(seg, filter)?.len());
    }
    let mut n = 0;
    scan(seg, filter, &[], &mut |_| n += 1)?;
    Ok(n)
}

/// The records of `seg` that match all but the windows, from the postings.
fn postings_answer(seg: &Segment, filter: &ColumnFilter) -> Result<RoaringBitmap, IndexError> {
    let c = candidates(seg, &filter.postings)?;
    if !c.exact {
        return Err(IndexError::Other {
            path: seg.path().to_path_buf(),
            what: "the postings did not answer a filter that they answer exactly".into(),
        });
    }
    Ok(c.ids)
}

/// What of a block's times shows which of its records lie in the windows.
enum TimeCheck {
    /// Every record does.
    None,
    /// Those that start early enough: every record ends late enough.
    Starts(Option<crate::format::column::Column>),
    Both(
        Option<crate::format::column::Column>,
        Option<crate::format::column::Column>,
    ),
}
