//! Aggregation: `stats` over matching records (grouped by fields and time bins), then the row
//! stages after it (`filter`, `sort`, `limit`, `fields`). Rows come out ordered by their group
//! keys unless the query sorts them.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use hashbrown::HashTable;

use crate::query::{Aggregate, AggregateFn, CmpOp, GroupBy, KeyOf, RowFilter, RowNumber, RowStage, RowValue};
use crate::record::{Field, FlowRecord, Value};

/// One cell of an aggregate row.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
pub enum Cell {
    Null,
    /// A count, a key number, or a sum (which may pass 2⁶⁴ when byte counts are absurd).
    Int(u128),
    Float(f64),
    Text(String),
    /// An address key: ordered as addresses, written as text.
    Ip(IpAddr),
}

impl Cell {
    /// How the cell's number compares with `n`, exactly; `None` when it holds no number.
    fn compare_number(&self, n: RowNumber) -> Option<std::cmp::Ordering> {
        match (self, n) {
            (Cell::Int(a), RowNumber::Int(b)) => Some(a.cmp(&b)),
            (Cell::Int(a), RowNumber::Float(x)) => integer_against_float(*a, x),
            (Cell::Float(f), RowNumber::Int(b)) => integer_against_float(b, *f).map(std::cmp::Ordering::reverse),
            (Cell::Float(f), RowNumber::Float(x)) => f.partial_cmp(&x),
            _ => None,
        }
    }
}

/// How `n` compares with `x`, without rounding `n` to a float; `None` against NaN.
fn integer_against_float(n: u128, x: f64) -> Option<std::cmp::Ordering> {
    use std::cmp::Ordering;
    if x.is_nan() {
        return None;
    }
    if x < 0.0 {
        return Some(Ordering::Greater);
    }
    // `u128::MAX as f64` is 2^128, above every u128 (infinity included).
    if x >= u128::MAX as f64 {
        return Some(Ordering::Less);
    }
    let whole = x.trunc();
    // `whole` is an integer below 2^128: the cast is exact.
    let by_whole = n.cmp(&(whole as u128));
    Some(by_whole.then(if x > whole { Ordering::Less } else { Ordering::Equal }))
}

/// A group key cell: what rows are grouped and ordered by. Addresses stay addresses (no text
/// made per record), and sort in address order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Null,
    Int(u64),
    Ip(IpAddr),
    Text(String),
}

impl From<Key> for Cell {
    fn from(k: Key) -> Cell {
        match k {
            Key::Null => Cell::Null,
            Key::Int(n) => Cell::Int(n.into()),
            Key::Ip(ip) => Cell::Ip(ip),
            Key::Text(t) => Cell::Text(t),
        }
    }
}

/// The key of a field's value.
pub fn key_of(v: Option<Value<'_>>) -> Key {
    match v {
        None => Key::Null,
        Some(Value::UInt(n)) => Key::Int(n),
        Some(Value::Ip(ip)) => Key::Ip(ip),
        Some(Value::Str(s)) => Key::Text(s.to_owned()),
    }
}

/// What the numbers of a column of aggregate rows are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unit {
    #[default]
    Number,
    /// A `bytes` key, or the sum, minimum, maximum or average of `bytes`.
    Bytes,
    /// Unix seconds: a `start` or `end` key, or the minimum, maximum or average of one.
    Time,
}

impl Unit {
    fn of_key(field: Field) -> Unit {
        match field {
            Field::Bytes => Unit::Bytes,
            Field::Start | Field::End => Unit::Time,
            _ => Unit::Number,
        }
    }

    fn of_aggregate(a: &Aggregate) -> Unit {
        match (a.function, a.field) {
            (AggregateFn::Sum | AggregateFn::Min | AggregateFn::Max | AggregateFn::Avg, Some(Field::Bytes)) => {
                Unit::Bytes
            }
            (AggregateFn::Min | AggregateFn::Max | AggregateFn::Avg, Some(Field::Start | Field::End)) => Unit::Time,
            _ => Unit::Number,
        }
    }
}

/// Aggregate rows with their column names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    /// Per column, what its numbers are: a table prints byte counts in KiB, MiB, ... and
    /// times as UTC date and time, whatever the column is named (`sum(bytes) as b` too, and
    /// not `count() as bytes_seen`).
    pub units: Vec<Unit>,
    pub rows: Vec<Vec<Cell>>,
    /// No record was aggregated: the row of a `stats` without `by` then says so (a count of
    /// 0), and the search exits as one that matched nothing.
    pub of_no_record: bool,
}

enum Acc {
    Count(u64),
    /// `None` until a value comes: the sum of no values is null, as in SQL.
    Sum(Option<u128>),
    Min(Option<u64>),
    Max(Option<u64>),
    Avg(u128, u64),
    Distinct(HashSet<Key>),
}

impl Acc {
    fn new(f: AggregateFn) -> Acc {
        match f {
            AggregateFn::Count => Acc::Count(0),
            AggregateFn::Sum => Acc::Sum(None),
            AggregateFn::Min => Acc::Min(None),
            AggregateFn::Max => Acc::Max(None),
            AggregateFn::Avg => Acc::Avg(0, 0),
            AggregateFn::CountDistinct => Acc::Distinct(HashSet::new()),
        }
    }

    /// Adds a record's value; returns the text bytes of a value new to a distinct set.
    fn add(&mut self, a: &Aggregate, r: &FlowRecord) -> Option<usize> {
        let v = a.field.and_then(|f| r.get(f));
        let n = match v {
            Some(Value::UInt(n)) => Some(n),
            _ => None,
        };
        match self {
            Acc::Count(c) => *c += u64::from(a.field.is_none() || v.is_some()),
            Acc::Sum(s) => {
                if let Some(n) = n {
                    *s = Some(s.unwrap_or(0) + u128::from(n));
                }
            }
            Acc::Min(m) => {
                if let Some(n) = n {
                    *m = Some(m.map_or(n, |x| x.min(n)));
                }
            }
            Acc::Max(m) => {
                if let Some(n) = n {
                    *m = Some(m.map_or(n, |x| x.max(n)));
                }
            }
            Acc::Avg(s, c) => {
                if let Some(n) = n {
                    *s += u128::from(n);
                    *c += 1;
                }
            }
            Acc::Distinct(set) => {
                if v.is_some() {
                    let k = key_of(v);
                    let bytes = key_bytes(&k);
                    return set.insert(k).then_some(bytes);
                }
            }
        }
        None
    }

    fn merge(&mut self, other: Acc) {
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) => *a += b,
            (Acc::Sum(a), Acc::Sum(b)) => {
                *a = match (*a, b) {
                    (Some(x), Some(y)) => Some(x + y),
                    (x, y) => x.or(y),
                }
            }
            (Acc::Min(a), Acc::Min(b)) => {
                *a = match (*a, b) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                }
            }
            (Acc::Max(a), Acc::Max(b)) => *a = (*a).max(b),
            (Acc::Avg(s, c), Acc::Avg(s2, c2)) => {
                *s += s2;
                *c += c2;
            }
            (Acc::Distinct(a), Acc::Distinct(b)) => a.extend(b),
            _ => unreachable!("accumulators of one aggregate have one kind"),
        }
    }

    fn cell(&self) -> Cell {
        match self {
            Acc::Count(c) => Cell::Int((*c).into()),
            Acc::Sum(s) => s.map_or(Cell::Null, Cell::Int),
            Acc::Min(m) | Acc::Max(m) => m.map_or(Cell::Null, |m| Cell::Int(m.into())),
            Acc::Avg(s, c) if *c > 0 => Cell::Float(*s as f64 / *c as f64),
            Acc::Avg(..) => Cell::Null,
            Acc::Distinct(set) => Cell::Int(set.len() as u128),
        }
    }
}

/// The key of the time bin of `seconds` holding `start`.
pub fn bin_key(start: Option<u64>, seconds: u64) -> Key {
    match start {
        Some(s) => Key::Text(crate::time::format_rfc3339((s - s % seconds) as i64)),
        None => Key::Null,
    }
}

/// One aggregate over one group's values, as an aggregation over raw columns keeps it; any of
/// `count`, `sum`, `min`, `max` and `avg` follows from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Partial {
    /// Records of the group.
    pub records: u64,
    /// Records with a value in the aggregate's field.
    pub present: u64,
    pub sum: u128,
    pub min: Option<u64>,
    pub max: Option<u64>,
}

impl Partial {
    /// Adds a record whose field value is `v`.
    pub fn add(&mut self, v: Option<u64>) {
        self.records += 1;
        if let Some(v) = v {
            self.present += 1;
            self.sum += u128::from(v);
            self.min = Some(self.min.map_or(v, |m| m.min(v)));
            self.max = Some(self.max.map_or(v, |m| m.max(v)));
        }
    }

    /// Adds the records of `other`, a partial of the same group.
    pub fn merge(&mut self, other: &Partial) {
        self.records += other.records;
        self.present += other.present;
        self.sum += other.sum;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = self.max.max(other.max);
    }

    /// Whether `function` can be computed from partials.
    pub fn supports(function: AggregateFn) -> bool {
        !matches!(function, AggregateFn::CountDistinct)
    }

    /// The accumulator of `a` for a group that so far holds just this partial's records.
    fn acc(&self, a: &Aggregate) -> Acc {
        match a.function {
            AggregateFn::Count if a.field.is_none() => Acc::Count(self.records),
            AggregateFn::Count => Acc::Count(self.present),
            AggregateFn::Sum => Acc::Sum((self.present > 0).then_some(self.sum)),
            AggregateFn::Min => Acc::Min(self.min),
            AggregateFn::Max => Acc::Max(self.max),
            AggregateFn::Avg => Acc::Avg(self.sum, self.present),
            AggregateFn::CountDistinct => unreachable!("count_distinct is not computed from partials"),
        }
    }
}

/// Memory an aggregation may hold, shared by the partial aggregators that run at once. What
/// they take is an upper bound of what they hold (a group merged into another aggregator is
/// counted in both until its first holder is freed), so a query is refused a little early
/// rather than late.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    taken: AtomicUsize,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit,
            taken: AtomicUsize::new(0),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes `bytes`; `false` once the budget is spent.
    pub fn take(&self, bytes: usize) -> bool {
        self.taken.fetch_add(bytes, Ordering::Relaxed) + bytes <= self.limit
    }

    /// Gives back `bytes` taken earlier, for memory that is freed.
    pub fn give(&self, bytes: usize) {
        self.taken.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Bytes a group costs besides its key's text: its table slot, keys and accumulators, with the
/// spare room of the vectors that hold them.
const GROUP_BYTES: usize = 160;
/// Bytes a group merged from partials ([`Aggregator::add_partials`]) costs besides its key's
/// text: a group, and its output row. Measured: `stats count() by srcaddr, dstaddr, srcport`
/// over 2 M records, 982,314 groups, peaked at 440 bytes a group over the process's own memory,
/// 140 of them the rows (a `limit 10` peaked at 300).
const MERGED_GROUP_BYTES: usize = GROUP_BYTES + 160;
/// Bytes a `count_distinct` value costs besides its text.
const DISTINCT_BYTES: usize = 48;

/// Groups records and computes the aggregates of each group, one record at a time; partial
/// aggregators (one per segment) merge. Stops taking new groups or distinct values once the
/// budget is spent ([`Aggregator::over_budget`]).
pub struct Aggregator<'q> {
    by: &'q [GroupBy],
    aggs: &'q [Aggregate],
    /// Group numbers, found by hashing their keys; put in key order once at the end: merging
    /// the groups of 55 segments into an ordered map was most of a 30-day aggregation's time.
    table: HashTable<u32>,
    /// Group `g`'s key is `keys[g * by.len()..]` and its accumulators `accs[g * aggs.len()..]`:
    /// two vectors for all groups rather than two per group, whose allocating and freeing was
    /// most of merging the groups of a day's top sources.
    keys: Vec<Key>,
    accs: Vec<Acc>,
    /// The key of the record being added, kept so that a record of a known group allocates
    /// nothing.
    key: Vec<Key>,
    budget: &'q Budget,
    over_budget: bool,
}

fn key_bytes(k: &Key) -> usize {
    match k {
        Key::Text(t) => t.len(),
        Key::Ip(_) => 16,
        _ => 0,
    }
}

fn hash(key: &[Key]) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(key)
}

impl<'q> Aggregator<'q> {
    pub fn new(by: &'q [GroupBy], aggs: &'q [Aggregate], budget: &'q Budget) -> Aggregator<'q> {
        Aggregator {
            by,
            aggs,
            table: HashTable::new(),
            keys: Vec::new(),
            accs: Vec::new(),
            key: Vec::new(),
            budget,
            over_budget: false,
        }
    }

    /// Whether the groups needed more memory than the budget: the answer is then incomplete.
    pub fn over_budget(&self) -> bool {
        self.over_budget
    }

    /// How many groups it holds.
    pub fn group_count(&self) -> usize {
        self.table.len()
    }

    fn key_of_group(&self, g: usize) -> &[Key] {
        let w = self.by.len();
        &self.keys[g * w..(g + 1) * w]
    }

    /// The number of the group with `key`, if there is one.
    fn find(&self, key: &[Key], hash: u64) -> Option<usize> {
        let w = self.by.len();
        self.table
            .find(hash, |&g| &self.keys[g as usize * w..(g as usize + 1) * w] == key)
            .map(|&g| g as usize)
    }

    /// Adds a group with `key` and `accs`; it must not be there yet.
    fn insert(&mut self, key: &[Key], hash: u64, accs: impl IntoIterator<Item = Acc>) -> usize {
        let g = self.group_count();
        let number = u32::try_from(g).expect("fewer than 2^32 groups fit in memory");
        let (keys, w) = (&self.keys, self.by.len());
        self.table
            .insert_unique(hash, number, |&h| hash_of_group(keys, w, h as usize));
        self.keys.extend_from_slice(key);
        self.accs.extend(accs);
        g
    }

    pub fn add(&mut self, r: &FlowRecord) {
        if self.over_budget {
            return;
        }
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        key.extend(self.by.iter().map(|g| match g {
            GroupBy::Field { field, .. } => key_of(r.get(*field)),
            GroupBy::Bin { seconds, .. } => bin_key(r.start, *seconds),
        }));
        let h = hash(&key);
        let g = match self.find(&key, h) {
            Some(g) => Some(g),
            None if self.budget.take(GROUP_BYTES + key.iter().map(key_bytes).sum::<usize>()) => {
                Some(self.insert(&key, h, self.aggs.iter().map(|a| Acc::new(a.function))))
            }
            None => None,
        };
        self.key = key;
        let Some(g) = g else {
            self.over_budget = true;
            return;
        };
        let n = self.aggs.len();
        for (acc, a) in self.accs[g * n..(g + 1) * n].iter_mut().zip(self.aggs) {
            if let Some(new_distinct) = acc.add(a, r) {
                if !self.budget.take(DISTINCT_BYTES + new_distinct) {
                    self.over_budget = true;
                }
            }
        }
    }

    /// Makes room for `groups` more groups at once (merging partial aggregations would
    /// otherwise grow the table step by step).
    pub fn reserve(&mut self, groups: usize) {
        let (keys, w) = (&self.keys, self.by.len());
        self.table.reserve(groups, |&g| hash_of_group(keys, w, g as usize));
        self.keys.reserve(groups * w);
        self.accs.reserve(groups * self.aggs.len());
    }

    /// Adds a group aggregated elsewhere (one partial per aggregate, in order). A new group
    /// takes its bytes from the budget, and is left out when they do not fit
    /// ([`Aggregator::over_budget`]).
    pub fn add_partials(&mut self, key: &[Key], partials: &[Partial]) {
        if self.over_budget {
            return;
        }
        let h = hash(key);
        let n = self.aggs.len();
        match self.find(key, h) {
            Some(g) => {
                for ((acc, a), p) in self.accs[g * n..(g + 1) * n].iter_mut().zip(self.aggs).zip(partials) {
                    acc.merge(p.acc(a));
                }
            }
            None if self
                .budget
                .take(MERGED_GROUP_BYTES + key.iter().map(key_bytes).sum::<usize>()) =>
            {
                let aggs = self.aggs;
                self.insert(key, h, aggs.iter().zip(partials).map(|(a, p)| p.acc(a)));
            }
            None => self.over_budget = true,
        }
    }

    pub fn merge(&mut self, other: Aggregator<'q>) {
        self.over_budget |= other.over_budget;
        let (w, n) = (self.by.len(), self.aggs.len());
        let mut accs = other.accs.into_iter();
        for g in 0..other.table.len() {
            let theirs = accs.by_ref().take(n);
            let key = &other.keys[g * w..(g + 1) * w];
            let h = hash(key);
            match self.find(key, h) {
                Some(g) => {
                    for (mine, theirs) in self.accs[g * n..(g + 1) * n].iter_mut().zip(theirs) {
                        mine.merge(theirs);
                    }
                }
                None => {
                    self.insert(key, h, theirs);
                }
            }
        }
    }

    /// The groups' rows in key order, then the row `stages` after `stats` applied to them.
    pub fn finish(mut self, stages: &[RowStage]) -> Rows {
        // Without groups there is always one row (a count of 0 is an answer).
        let of_no_record = self.group_count() == 0;
        if of_no_record && self.by.is_empty() {
            let aggs = self.aggs;
            self.insert(&[], hash(&[]), aggs.iter().map(|a| Acc::new(a.function)));
        }
        let columns = self
            .by
            .iter()
            .map(|g| match g {
                GroupBy::Field { name, .. } | GroupBy::Bin { name, .. } => name.clone(),
            })
            .chain(self.aggs.iter().map(|a| a.name.clone()))
            .collect();
        let units = self
            .by
            .iter()
            .map(|g| match g {
                GroupBy::Field { field, .. } => Unit::of_key(*field),
                // A bin's key is already a time as text.
                GroupBy::Bin { .. } => Unit::Number,
            })
            .chain(self.aggs.iter().map(Unit::of_aggregate))
            .collect();
        let (w, n) = (self.by.len(), self.aggs.len());
        let cell = |g: usize, c: usize| self.accs[g * n + c - w].cell();
        let by_key = |a: &usize, b: &usize| self.key_of_group(*a).cmp(self.key_of_group(*b));
        let mut order: Vec<usize> = (0..self.group_count()).collect();
        // Leading stages that look at aggregates only run on the groups, before any key
        // becomes text (`filter syn_count > 100` or a top 10 of 40,000 addresses).
        let mut stages = stages;
        loop {
            match stages {
                [RowStage::Filter(f), rest @ ..] if reads_only_aggregates(f, w) => {
                    order.retain(|&g| row_matches(f, &|c| cell(g, c)));
                    stages = rest;
                }
                // The groups a `sort | limit n` keeps; ties go by key order, the order rows
                // are sorted into. The stages still sort and cut the rows made of them.
                [RowStage::Sort(keys), RowStage::Limit(limit), ..] if keys.iter().all(|(c, _)| *c >= w) => {
                    let limit = usize::try_from(*limit).unwrap_or(usize::MAX);
                    keep_first(&mut order, limit, |a, b| {
                        compare_columns(keys, |c| cell(*a, c), |c| cell(*b, c)).then_with(|| by_key(a, b))
                    });
                    break;
                }
                _ => break,
            }
        }
        order.sort_unstable_by(by_key);
        let rows = order
            .into_iter()
            .map(|g| {
                self.key_of_group(g)
                    .iter()
                    .cloned()
                    .map(Cell::from)
                    .chain(self.accs[g * n..(g + 1) * n].iter().map(Acc::cell))
                    .collect()
            })
            .collect();
        let mut rows = Rows {
            columns,
            units,
            rows,
            of_no_record,
        };
        apply(&mut rows, stages);
        rows
    }
}

/// The hash of group `g`'s key, when its keys are `width` each in `keys`.
fn hash_of_group(keys: &[Key], width: usize, g: usize) -> u64 {
    hash(&keys[g * width..(g + 1) * width])
}

/// Groups records already held and computes the aggregates of each group (the records took
/// the memory; their groups are at most as many), in key order.
pub fn aggregate<'r>(records: impl IntoIterator<Item = &'r FlowRecord>, by: &[GroupBy], aggs: &[Aggregate]) -> Rows {
    let unlimited = Budget::new(usize::MAX);
    let mut a = Aggregator::new(by, aggs, &unlimited);
    for r in records {
        a.add(r);
    }
    a.finish(&[])
}

/// Applies the stages after `stats`.
pub fn apply(rows: &mut Rows, stages: &[RowStage]) {
    for (i, stage) in stages.iter().enumerate() {
        match stage {
            RowStage::Filter(f) => rows.rows.retain(|r| row_matches(f, &|c| &r[c])),
            RowStage::Sort(keys) => {
                let cmp = |a: &Vec<Cell>, b: &Vec<Cell>| compare_rows(keys, a, b);
                match stages.get(i + 1) {
                    // `sort | limit n` keeps the first n of a stable sort without sorting the
                    // rest (a top 10 of 50,000 groups): ties keep their order by position.
                    Some(RowStage::Limit(n)) if usize::try_from(*n).is_ok_and(|n| n < rows.rows.len()) => {
                        let n = usize::try_from(*n).expect("checked above");
                        let mut numbered: Vec<(usize, Vec<Cell>)> =
                            std::mem::take(&mut rows.rows).into_iter().enumerate().collect();
                        let by_position =
                            |a: &(usize, Vec<Cell>), b: &(usize, Vec<Cell>)| cmp(&a.1, &b.1).then(a.0.cmp(&b.0));
                        keep_first(&mut numbered, n, by_position);
                        numbered.sort_unstable_by(by_position);
                        rows.rows = numbered.into_iter().map(|(_, row)| row).collect();
                    }
                    _ => rows.rows.sort_by(cmp),
                }
            }
            RowStage::Limit(n) => rows.rows.truncate(usize::try_from(*n).unwrap_or(usize::MAX)),
            RowStage::Columns(cols) => {
                rows.columns = cols.iter().map(|c| rows.columns[*c].clone()).collect();
                rows.units = cols.iter().map(|c| rows.units[*c]).collect();
                for r in &mut rows.rows {
                    *r = cols.iter().map(|c| r[*c].clone()).collect();
                }
            }
        }
    }
}

/// Keeps the first `n` of `items` in the total order `cmp`, in no particular order, without
/// sorting the rest.
fn keep_first<T>(items: &mut Vec<T>, n: usize, mut cmp: impl FnMut(&T, &T) -> std::cmp::Ordering) {
    if n < items.len() {
        if n > 0 {
            items.select_nth_unstable_by(n - 1, &mut cmp);
        }
        items.truncate(n);
    }
}

/// Orders rows by `keys` (column, descending).
fn compare_rows(keys: &[(usize, bool)], a: &[Cell], b: &[Cell]) -> std::cmp::Ordering {
    compare_columns(keys, |c| &a[c], |c| &b[c])
}

/// Orders two rows, given as their cells by column, by `keys` (column, descending).
fn compare_columns<C: std::borrow::Borrow<Cell>>(
    keys: &[(usize, bool)],
    a: impl Fn(usize) -> C,
    b: impl Fn(usize) -> C,
) -> std::cmp::Ordering {
    for (col, desc) in keys {
        let o = a(*col)
            .borrow()
            .partial_cmp(b(*col).borrow())
            .unwrap_or(std::cmp::Ordering::Equal);
        let o = if *desc { o.reverse() } else { o };
        if o.is_ne() {
            return o;
        }
    }
    std::cmp::Ordering::Equal
}

/// Whether a row filter looks at aggregate columns only (not at the first `group_columns`).
fn reads_only_aggregates(f: &RowFilter, group_columns: usize) -> bool {
    match f {
        RowFilter::And(a, b) | RowFilter::Or(a, b) => {
            reads_only_aggregates(a, group_columns) && reads_only_aggregates(b, group_columns)
        }
        RowFilter::Not(a) => reads_only_aggregates(a, group_columns),
        RowFilter::Compare(c, ..)
        | RowFilter::In(c, _)
        | RowFilter::Like(c, _)
        | RowFilter::Key(c, ..)
        | RowFilter::Present(c) => *c >= group_columns,
    }
}

/// Evaluates a row filter on the row whose cell in column `c` is `cell(c)`.
fn row_matches<C: std::borrow::Borrow<Cell>>(f: &RowFilter, cell: &impl Fn(usize) -> C) -> bool {
    let text = |c: &Cell| match c {
        Cell::Null => String::new(),
        Cell::Int(n) => n.to_string(),
        Cell::Float(x) => x.to_string(),
        Cell::Text(t) => t.clone(),
        Cell::Ip(ip) => Value::Ip(*ip).with_text(str::to_owned),
    };
    let equal = |c: &Cell, v: &RowValue| match v {
        RowValue::Number(n) => c.compare_number(*n) == Some(std::cmp::Ordering::Equal),
        RowValue::Text(t) => text(c) == *t,
    };
    match f {
        RowFilter::And(a, b) => row_matches(a, cell) && row_matches(b, cell),
        RowFilter::Or(a, b) => row_matches(a, cell) || row_matches(b, cell),
        RowFilter::Not(a) => !row_matches(a, cell),
        RowFilter::Key(col, key, filter) => {
            let c = cell(*col);
            let value = match c.borrow() {
                Cell::Null | Cell::Float(_) => None,
                Cell::Int(n) => u64::try_from(*n).ok().map(Value::UInt),
                Cell::Ip(ip) => Some(Value::Ip(*ip)),
                // A time bin's key: its first second, written in RFC 3339.
                Cell::Text(t) if matches!(key, KeyOf::Bin(_)) => crate::time::parse_rfc3339(t)
                    .and_then(|s| u64::try_from(s).ok())
                    .map(Value::UInt),
                Cell::Text(t) => Some(Value::Str(t)),
            };
            match *key {
                KeyOf::Field(field) => filter.holds(&|f| if f == field { value } else { None }),
                // The bin as a record spanning it, for the `time` condition bound on it.
                KeyOf::Bin(seconds) => filter.holds(&|f| match (f, value) {
                    (Field::Start, v) => v,
                    (Field::End, Some(Value::UInt(s))) => Some(Value::UInt(s.saturating_add(seconds - 1))),
                    _ => None,
                }),
            }
        }
        RowFilter::In(col, values) => values.iter().any(|v| equal(cell(*col).borrow(), v)),
        RowFilter::Present(col) => !matches!(cell(*col).borrow(), Cell::Null),
        RowFilter::Like(col, re) => re.is_match(&text(cell(*col).borrow())),
        RowFilter::Compare(col, op, v) => {
            let c = cell(*col);
            let c = c.borrow();
            let ord = match v {
                RowValue::Number(n) => c.compare_number(*n),
                RowValue::Text(t) => Some(text(c).as_str().cmp(t.as_str())),
            };
            let Some(ord) = ord else { return false };
            match op {
                CmpOp::Eq => ord.is_eq(),
                CmpOp::Ne => ord.is_ne(),
                CmpOp::Lt => ord.is_lt(),
                CmpOp::Le => ord.is_le(),
                CmpOp::Gt => ord.is_gt(),
                CmpOp::Ge => ord.is_ge(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Field;

    #[test]
    fn groups_added_and_merged_in_any_order_sum_like_an_ordered_map() {
        let by = [
            GroupBy::Field {
                field: Field::Srcaddr,
                name: "srcaddr".into(),
            },
            GroupBy::Field {
                field: Field::Dstport,
                name: "dstport".into(),
            },
        ];
        let aggs = [Aggregate {
            function: AggregateFn::Sum,
            field: Some(Field::Bytes),
            name: "b".into(),
        }];
        let budget = Budget::new(usize::MAX);
        let (mut a, mut b) = (
            Aggregator::new(&by, &aggs, &budget),
            Aggregator::new(&by, &aggs, &budget),
        );
        let mut want: std::collections::BTreeMap<Vec<Key>, u128> = Default::default();
        // Keys repeat often, nulls included, and land in both halves before the merge.
        for i in 0..20_000u64 {
            let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
            let ip = Key::Ip(std::net::Ipv4Addr::from((x % 300) as u32).into());
            let port = if x % 7 == 0 { Key::Null } else { Key::Int(x % 11) };
            let key = vec![ip, port];
            let partial = Partial {
                records: 1,
                present: 1,
                sum: u128::from(i),
                min: Some(i),
                max: Some(i),
            };
            *want.entry(key.clone()).or_default() += u128::from(i);
            let half = if x % 2 == 0 { &mut a } else { &mut b };
            half.add_partials(&key, &[partial]);
        }
        a.merge(b);
        let rows = a.finish(&[]);
        let expected: Vec<Vec<Cell>> = want
            .into_iter()
            .map(|(k, sum)| k.into_iter().map(Cell::from).chain([Cell::Int(sum)]).collect())
            .collect();
        assert_eq!(rows.rows, expected);
    }

    #[test]
    fn the_sum_of_no_values_is_null_on_both_paths() {
        let by = [GroupBy::Field {
            field: Field::LogStatus,
            name: "log_status".into(),
        }];
        let aggs = [Aggregate {
            function: AggregateFn::Sum,
            field: Some(Field::Bytes),
            name: "b".into(),
        }];
        let nodata = FlowRecord {
            log_status: Some(crate::record::LogStatus::NoData),
            ..FlowRecord::default()
        };
        let ok = FlowRecord {
            log_status: Some(crate::record::LogStatus::Ok),
            bytes: Some(40),
            ..FlowRecord::default()
        };
        let rows = aggregate([&nodata, &ok], &by, &aggs).rows;
        assert_eq!(rows[0], [Cell::Text("NODATA".into()), Cell::Null]);
        assert_eq!(rows[1], [Cell::Text("OK".into()), Cell::Int(40)]);
        // From partials, as an aggregation over columns merges them.
        let budget = Budget::new(usize::MAX);
        let none = Partial {
            records: 3,
            ..Partial::default()
        };
        let mut total = Aggregator::new(&by, &aggs, &budget);
        total.insert(&[Key::Null], hash(&[Key::Null]), [none.acc(&aggs[0])]);
        assert_eq!(total.finish(&[]).rows, [vec![Cell::Null, Cell::Null]]);
    }

    #[test]
    fn sort_then_limit_keeps_what_a_full_stable_sort_keeps() {
        // Few distinct values in the sort column: ties everywhere, told apart by position.
        let rows: Vec<Vec<Cell>> = (0..500u64)
            .map(|i| vec![Cell::Int((i * 7919 % 13).into()), Cell::Int(i.into())])
            .collect();
        for keys in [vec![(0, true)], vec![(0, false)], vec![(0, true), (1, false)]] {
            for n in [0, 1, 5, 13, 100, 499, 500, 800] {
                let mut expected = rows.clone();
                expected.sort_by(|a, b| compare_rows(&keys, a, b));
                expected.truncate(n as usize);
                let mut got = Rows {
                    columns: vec!["k".into(), "i".into()],
                    units: vec![Unit::Number; 2],
                    rows: rows.clone(),
                    of_no_record: false,
                };
                apply(&mut got, &[RowStage::Sort(keys.clone()), RowStage::Limit(n)]);
                assert_eq!(got.rows, expected, "keys {keys:?}, limit {n}");
            }
        }
    }

    #[test]
    fn row_filters_compare_numbers_exactly_past_two_to_the_53() {
        use std::cmp::Ordering::*;
        let big = (1u128 << 53) + 1;
        // As floats, 2^53 + 1 and 2^53 are the same number.
        assert_eq!(Cell::Int(big).compare_number(RowNumber::Int(big - 1)), Some(Greater));
        assert_eq!(Cell::Int(big).compare_number(RowNumber::Int(big)), Some(Equal));
        assert_eq!(
            Cell::Int(big).compare_number(RowNumber::Float((1u64 << 53) as f64)),
            Some(Greater)
        );
        assert_eq!(Cell::Int(5).compare_number(RowNumber::Float(5.5)), Some(Less));
        assert_eq!(Cell::Int(6).compare_number(RowNumber::Float(5.5)), Some(Greater));
        assert_eq!(Cell::Int(0).compare_number(RowNumber::Float(-0.5)), Some(Greater));
        assert_eq!(
            Cell::Int(u128::MAX).compare_number(RowNumber::Float(f64::INFINITY)),
            Some(Less)
        );
        assert_eq!(Cell::Int(1).compare_number(RowNumber::Float(f64::NAN)), None);
        assert_eq!(Cell::Float(2.5).compare_number(RowNumber::Int(2)), Some(Greater));
        assert_eq!(Cell::Float(2.0).compare_number(RowNumber::Int(2)), Some(Equal));
        assert_eq!(Cell::Text("7".into()).compare_number(RowNumber::Int(7)), None);
        let mut rows = Rows {
            columns: vec!["total".into()],
            units: vec![Unit::Bytes],
            rows: vec![vec![Cell::Int(big - 1)], vec![Cell::Int(big)], vec![Cell::Int(big + 1)]],
            of_no_record: false,
        };
        let filter = RowFilter::Compare(0, CmpOp::Gt, RowValue::Number(RowNumber::Int(big)));
        apply(&mut rows, &[RowStage::Filter(filter)]);
        assert_eq!(rows.rows, [vec![Cell::Int(big + 1)]]);
    }
}
