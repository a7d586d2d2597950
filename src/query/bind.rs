//! Syntax tree → bound query: names resolved to fields (forgivingly: any case, `-`, `_` or
//! camelCase; pseudo-fields `addr`, `port`, `time`), values typed for their field (addresses and
//! CIDRs, numbers, protocol and TCP-flag names, times as RFC 3339, dates, months or Unix
//! seconds), and the pipeline split into record stages and, after `stats`, row stages.

use std::net::IpAddr;

use regex::Regex;

use super::parse::{self, CmpOp, Expr, GroupKey, Literal, Name, Pattern, Query, Stage};
use super::{QueryError, Span};
use crate::format::dictionary::ip_bytes;
use crate::record::{
    covered_span, Action, Field, FieldKind, FieldSet, FlowDirection, FlowRecord, LogStatus, TrafficType, Value,
};

/// A filter over records.
#[derive(Clone, Debug)]
pub enum Filter {
    All,
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Test(Test),
}

/// A condition on one or more fields (`addr` is srcaddr or dstaddr): true when any of the
/// fields has a value meeting `cond` (or, with `negate`, a value not meeting it: `!=`).
#[derive(Clone, Debug)]
pub struct Test {
    pub fields: Vec<Field>,
    pub cond: Cond,
    pub negate: bool,
}

#[derive(Clone, Debug)]
pub enum Cond {
    /// Inclusive ranges of 16-byte addresses (IPv4 as IPv4-mapped): addresses and CIDRs.
    Ips(Vec<([u8; 16], [u8; 16])>),
    /// Inclusive ranges of numbers (ports, counters, times, enum codes are not numbers).
    Numbers(Vec<(u64, u64)>),
    /// Exact words (text fields; enum fields in their AWS spelling).
    Words(Vec<String>),
    /// `like /regex/`, with the addresses it matches when it is a literal prefix
    /// ([`prefix::address_prefixes`](super::prefix::address_prefixes)), for searching address
    /// dictionaries by range.
    Regex {
        regex: Regex,
        addresses: Option<super::prefix::AddressPrefixes>,
    },
    Contains(String),
    /// Every bit of the mask set (`tcp_flags has SYN`).
    FlagsAll(u64),
    /// The record's [start, end] overlaps [lo, hi] (the `time` pseudo-field, `--from/--to`;
    /// [`overlaps`]).
    TimeOverlap(u64, u64),
}

impl Filter {
    /// Evaluates the filter on one record: the definition every index answer must agree with.
    pub fn matches(&self, r: &FlowRecord) -> bool {
        self.holds(&|f| r.get(f))
    }

    /// Evaluates the filter on the values `value` gives by field (`None`: null or absent), as
    /// [`Filter::matches`] does on a record's.
    pub fn holds<'v>(&self, value: &impl Fn(Field) -> Option<Value<'v>>) -> bool {
        match self {
            Filter::All => true,
            Filter::And(v) => v.iter().all(|f| f.holds(value)),
            Filter::Or(v) => v.iter().any(|f| f.holds(value)),
            Filter::Not(f) => !f.holds(value),
            Filter::Test(t) => t.holds(value),
        }
    }

    /// Adds the fields the filter reads to `out`.
    pub fn fields(&self, out: &mut FieldSet) {
        match self {
            Filter::All => {}
            Filter::And(v) | Filter::Or(v) => v.iter().for_each(|f| f.fields(out)),
            Filter::Not(f) => f.fields(out),
            Filter::Test(t) => {
                t.fields.iter().for_each(|f| out.insert(*f));
                if matches!(t.cond, Cond::TimeOverlap(..)) {
                    out.insert(Field::Start);
                    out.insert(Field::End);
                }
            }
        }
    }

    /// The time window of a top-level `time` condition (`time = ...`, `--from/--to`): a test
    /// every match must pass. `None` for anything else.
    pub fn time_window(&self) -> Option<(u64, u64)> {
        match self {
            Filter::Test(Test {
                cond: Cond::TimeOverlap(lo, hi),
                negate: false,
                ..
            }) => Some((*lo, *hi)),
            _ => None,
        }
    }

    /// The parts every match must pass: those of a top-level `and`, else the filter itself.
    pub fn conjuncts(&self) -> Vec<&Filter> {
        match self {
            Filter::And(parts) => parts.iter().collect(),
            f => vec![f],
        }
    }

    fn and(self, other: Filter) -> Filter {
        match (self, other) {
            (Filter::All, f) | (f, Filter::All) => f,
            (Filter::And(mut a), Filter::And(b)) => {
                a.extend(b);
                Filter::And(a)
            }
            (Filter::And(mut a), f) => {
                a.push(f);
                Filter::And(a)
            }
            (f, g) => Filter::And(vec![f, g]),
        }
    }
}

/// Whether a record of `start` and `end` is in the window `lo..=hi`: the seconds it covers
/// ([`covered_span`]) overlap it. A record with one time is not left out of every window; one
/// with neither is in none.
pub fn overlaps(start: Option<u64>, end: Option<u64>, lo: u64, hi: u64) -> bool {
    covered_span(start, end).is_some_and(|(first, last)| first <= hi && last >= lo)
}

impl Test {
    pub fn matches(&self, r: &FlowRecord) -> bool {
        self.holds(&|f| r.get(f))
    }

    fn holds<'v>(&self, value: &impl Fn(Field) -> Option<Value<'v>>) -> bool {
        if let Cond::TimeOverlap(lo, hi) = self.cond {
            let time = |f: Field| match value(f) {
                Some(Value::UInt(t)) => Some(t),
                _ => None,
            };
            return overlaps(time(Field::Start), time(Field::End), lo, hi);
        }
        self.fields.iter().any(|f| match value(*f) {
            None => false,
            Some(v) => self.cond.matches(v) != self.negate,
        })
    }
}

impl Cond {
    /// Whether no value passes: the test of `f = -` and `f != -` (see `Binder::compare`).
    pub fn is_empty(&self) -> bool {
        match self {
            Cond::Ips(ranges) => ranges.is_empty(),
            Cond::Numbers(ranges) => ranges.is_empty(),
            Cond::Words(words) => words.is_empty(),
            _ => false,
        }
    }

    pub fn matches(&self, v: Value<'_>) -> bool {
        match (self, v) {
            (Cond::Ips(ranges), Value::Ip(ip)) => {
                let b = ip_bytes(ip);
                ranges.iter().any(|(lo, hi)| *lo <= b && b <= *hi)
            }
            (Cond::Numbers(ranges), Value::UInt(n)) => ranges.iter().any(|(lo, hi)| *lo <= n && n <= *hi),
            (Cond::Words(words), Value::Str(s)) => words.iter().any(|w| w == s),
            (Cond::Regex { regex, .. }, v) => v.with_text(|text| regex.is_match(text)),
            (Cond::Contains(t), v) => v.with_text(|text| text.contains(t.as_str())),
            (Cond::FlagsAll(mask), Value::UInt(n)) => n & mask == *mask,
            _ => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateFn {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    CountDistinct,
}

#[derive(Clone, Debug)]
pub struct Aggregate {
    pub function: AggregateFn,
    pub field: Option<Field>,
    pub name: String,
}

#[derive(Clone, Debug)]
pub enum GroupBy {
    Field {
        field: Field,
        name: String,
    },
    /// Buckets of this many seconds of `start`; the key is the bucket's first second.
    Bin {
        seconds: u64,
        name: String,
    },
}

/// Stages applied to records, in order.
#[derive(Clone, Debug)]
pub enum RecordStage {
    Filter(Filter),
    Fields(Vec<Field>),
    Dedup(Vec<Field>),
    Sort(Vec<(Field, bool)>),
    Limit(u64),
}

/// A condition on an aggregate row's column.
#[derive(Clone, Debug)]
pub enum RowFilter {
    And(Box<RowFilter>, Box<RowFilter>),
    Or(Box<RowFilter>, Box<RowFilter>),
    Not(Box<RowFilter>),
    /// A condition on a group key column: the record filter on the key's field (`time` for a
    /// time bin), so that a CIDR, a protocol name or a date means what it means before `stats`.
    Key(usize, KeyOf, Filter),
    /// Column, operator, number or text.
    Compare(usize, CmpOp, RowValue),
    In(usize, Vec<RowValue>),
    Like(usize, Regex),
    /// The column's cell has a value (is not `-`): what `x not in [...]` and `x not like ...`
    /// ask of it besides, as `!=` does.
    Present(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub enum RowValue {
    Number(RowNumber),
    Text(String),
}

/// A number in a row filter. An integer stays exact: sums of bytes pass 2^53, beyond which an
/// `f64` no longer tells neighbouring integers apart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RowNumber {
    Int(u128),
    Float(f64),
}

/// Stages applied to aggregate rows, in order.
#[derive(Clone, Debug)]
pub enum RowStage {
    Filter(RowFilter),
    Sort(Vec<(usize, bool)>),
    Limit(u64),
    Columns(Vec<usize>),
}

/// A query ready to run.
#[derive(Clone, Debug)]
pub struct Bound {
    /// Filters before any other stage: what the index can answer.
    pub filter: Filter,
    pub records: Vec<RecordStage>,
    pub stats: Option<(Vec<GroupBy>, Vec<Aggregate>)>,
    pub rows: Vec<RowStage>,
}

impl Bound {
    /// The `filter` stages among the record stages, in order: where no limit or dedup comes
    /// first, they can run on each record as it is decoded.
    pub fn filter_stages(&self) -> Vec<&Filter> {
        self.records
            .iter()
            .filter_map(|s| match s {
                RecordStage::Filter(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    /// Whether every record the filter matches reaches `stats` or the output, save those a
    /// `filter` stage drops: no `sort`, `limit` or `dedup` chooses among them, so they can be
    /// taken as they are decoded.
    pub fn passes_every_match(&self) -> bool {
        self.records
            .iter()
            .all(|s| matches!(s, RecordStage::Filter(_) | RecordStage::Fields(_)))
    }

    /// The fields a query that ends in `stats` reads (the filters, record stages, group keys
    /// and aggregates); `None` when it prints records, which need every field.
    pub fn needed_fields(&self) -> Option<FieldSet> {
        let (by, aggs) = self.stats.as_ref()?;
        let mut set = FieldSet::EMPTY;
        self.filter.fields(&mut set);
        for stage in &self.records {
            match stage {
                RecordStage::Filter(f) => f.fields(&mut set),
                RecordStage::Fields(_) | RecordStage::Limit(_) => {}
                RecordStage::Dedup(fields) => fields.iter().for_each(|f| set.insert(*f)),
                RecordStage::Sort(keys) => keys.iter().for_each(|(f, _)| set.insert(*f)),
            }
        }
        for g in by {
            set.insert(match g {
                GroupBy::Field { field, .. } => *field,
                GroupBy::Bin { .. } => Field::Start,
            });
        }
        aggs.iter().filter_map(|a| a.field).for_each(|f| set.insert(f));
        // Output order (time, source, line) is computed before the stages.
        set.insert(Field::Start);
        set.insert(Field::End);
        Some(set)
    }

    /// Names of the row columns after `stats`: group keys, then aggregates.
    pub fn row_columns(&self) -> Vec<String> {
        match &self.stats {
            None => Vec::new(),
            Some((by, aggs)) => RowColumn::of(by, aggs).into_iter().map(|c| c.name).collect(),
        }
    }
}

/// Adds `--from` / `--to` to a bound query: records whose [start, end] overlaps the window.
pub fn bind_time_window(bound: &mut Bound, from: Option<&str>, to: Option<&str>) -> Result<(), QueryError> {
    let parse = |t: &str, flag: &'static str| {
        time_range(t).ok_or_else(|| QueryError::option(flag, t, &format!("not a time ({TIME_FORMS})")))
    };
    let lo = from.map(|t| parse(t, "--from")).transpose()?.map_or(0, |r| r.0);
    let hi = to.map(|t| parse(t, "--to")).transpose()?.map_or(u64::MAX, |r| r.1);
    if let (Some(from), Some(to), true) = (from, to, lo > hi) {
        return Err(QueryError::option(
            "--to",
            to,
            &format!("is before --from `{from}`: the window holds no second (swap them?)"),
        ));
    }
    if from.is_some() || to.is_some() {
        let window = Filter::Test(Test {
            fields: Vec::new(),
            cond: Cond::TimeOverlap(lo, hi),
            negate: false,
        });
        bound.filter = std::mem::replace(&mut bound.filter, Filter::All).and(window);
    }
    Ok(())
}

/// The forms a time value takes, for error messages ([`time_range`]).
pub const TIME_FORMS: &str =
    "RFC 3339, 2024-04-28 10:05:00 (UTC, as tables print it), 2024-04-28T10:05Z, 2024-04-28, 2024-04 or Unix seconds";

/// Binds a parsed query.
pub fn bind(query: &Query, text: &str) -> Result<Bound, QueryError> {
    let b = Binder { text };
    let mut bound = Bound {
        filter: Filter::All,
        records: Vec::new(),
        stats: None,
        rows: Vec::new(),
    };
    let mut leading = true;
    // The columns of the rows after `stats`, as its stages leave them (`display` picks some).
    let mut columns: Vec<RowColumn> = Vec::new();
    for stage in &query.stages {
        if let Some((by, aggs)) = &bound.stats {
            if columns.is_empty() {
                columns = RowColumn::of(by, aggs);
            }
            let stage = b.row_stage(stage, &columns)?;
            if let RowStage::Columns(kept) = &stage {
                columns = kept.iter().map(|&c| columns[c].clone()).collect();
            }
            bound.rows.push(stage);
            continue;
        }
        match stage {
            Stage::Filter(e) if leading => {
                let f = b.filter(e)?;
                bound.filter = std::mem::replace(&mut bound.filter, Filter::All).and(f);
            }
            Stage::Filter(e) => bound.records.push(RecordStage::Filter(b.filter(e)?)),
            // A projection does not change which records pass; later filters stay on the index.
            Stage::Fields(names) | Stage::Display(names) => bound.records.push(RecordStage::Fields(first_of_each(
                names.iter().map(|n| b.field(n)).collect::<Result<_, _>>()?,
            ))),
            Stage::Dedup(names) => {
                leading = false;
                bound.records.push(RecordStage::Dedup(
                    names.iter().map(|n| b.field(n)).collect::<Result<_, _>>()?,
                ));
            }
            Stage::Sort(keys) => {
                leading = false;
                let keys = keys
                    .iter()
                    .map(|(n, desc)| Ok((b.field(n)?, *desc)))
                    .collect::<Result<_, QueryError>>()?;
                bound.records.push(RecordStage::Sort(keys));
            }
            Stage::Limit(n) => {
                leading = false;
                bound.records.push(RecordStage::Limit(*n));
            }
            Stage::Stats(s) => bound.stats = Some(b.stats(s)?),
        }
    }
    Ok(bound)
}

struct Binder<'a> {
    text: &'a str,
}

/// A column of the rows after `stats`: its name, and what a group key column holds.
#[derive(Clone, Debug)]
struct RowColumn {
    name: String,
    key: Option<KeyOf>,
}

impl RowColumn {
    fn of(by: &[GroupBy], aggs: &[Aggregate]) -> Vec<RowColumn> {
        let keys = by.iter().map(|g| match g {
            GroupBy::Field { field, name } => RowColumn {
                name: name.clone(),
                key: Some(KeyOf::Field(*field)),
            },
            GroupBy::Bin { seconds, name } => RowColumn {
                name: name.clone(),
                key: Some(KeyOf::Bin(*seconds)),
            },
        });
        let aggregates = aggs.iter().map(|a| RowColumn {
            name: a.name.clone(),
            key: None,
        });
        keys.chain(aggregates).collect()
    }
}

/// What a group key holds: a field's value, or the first second of a time bin this long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOf {
    Field(Field),
    Bin(u64),
}

/// What a name in a filter stands for.
enum Target {
    Fields(Vec<Field>),
    Time,
}

const PSEUDO: &[&str] = &["addr", "any_addr", "port", "time"];

impl Binder<'_> {
    fn error(&self, span: Span, message: &str) -> QueryError {
        QueryError::at(self.text, span, message, None)
    }

    /// An error about a value: one from a list file names its line there.
    fn value_error(&self, value: &Literal, message: &str) -> QueryError {
        match &value.list_line {
            None => self.error(value.span, message),
            Some((path, line)) => self.error(value.span, &format!("{path} line {line}: {message}")),
        }
    }

    fn unknown(&self, name: &Name) -> QueryError {
        let candidates = Field::ALL.iter().map(|f| f.key()).chain(PSEUDO.iter().copied());
        let best = crate::record::nearest_name(&name.text, candidates).map(str::to_owned);
        QueryError::at(self.text, name.span, &format!("unknown field `{}`", name.text), best)
    }

    fn field(&self, name: &Name) -> Result<Field, QueryError> {
        Field::lookup(&name.text).ok_or_else(|| {
            let instead = match crate::record::fold_name(&name.text).as_str() {
                "addr" => "srcaddr or dstaddr",
                "anyaddr" => "srcaddr, dstaddr, pkt_srcaddr or pkt_dstaddr",
                "port" => "srcport or dstport",
                "time" => "start or end (or bin(5m) in stats by)",
                _ => return self.unknown(name),
            };
            self.error(
                name.span,
                &format!(
                    "`{}` covers several fields and is for filters only; here use {instead}",
                    name.text
                ),
            )
        })
    }

    fn target(&self, name: &Name) -> Result<Target, QueryError> {
        Ok(match crate::record::fold_name(&name.text).as_str() {
            "addr" => Target::Fields(vec![Field::Srcaddr, Field::Dstaddr]),
            // Behind a NAT gateway the far end is only in the packet addresses.
            "anyaddr" => Target::Fields(vec![
                Field::Srcaddr,
                Field::Dstaddr,
                Field::PktSrcaddr,
                Field::PktDstaddr,
            ]),
            "port" => Target::Fields(vec![Field::Srcport, Field::Dstport]),
            "time" => Target::Time,
            _ => Target::Fields(vec![self.field(name)?]),
        })
    }

    fn filter(&self, e: &Expr) -> Result<Filter, QueryError> {
        Ok(match e {
            Expr::And(a, b) => self.filter(a)?.and(self.filter(b)?),
            Expr::Or(a, b) => Filter::Or(vec![self.filter(a)?, self.filter(b)?]),
            Expr::Not(a) => Filter::Not(Box::new(self.filter(a)?)),
            Expr::Excluding(a) => excluding(self.filter(a)?),
            Expr::Compare { name, op, value } => {
                let target = self.target(name)?;
                self.compare(&target, *op, value)?
            }
            Expr::In { name, values } => self.in_list(&self.target(name)?, values)?,
            Expr::Like { name, pattern, span } => {
                let Target::Fields(fields) = self.target(name)? else {
                    return Err(self.error(name.span, "`time` takes comparisons, not like"));
                };
                let cond = match pattern {
                    Pattern::Regex(r) => Cond::Regex {
                        regex: Regex::new(r).map_err(|e| self.error(*span, &bad_regex(&e)))?,
                        addresses: fields
                            .iter()
                            .any(|f| f.kind() == FieldKind::Ip)
                            .then(|| super::prefix::address_prefixes(r))
                            .flatten(),
                    },
                    Pattern::Text(t) => Cond::Contains(t.clone()),
                };
                Filter::Test(Test {
                    fields,
                    cond,
                    negate: false,
                })
            }
            Expr::Has { name, value } => {
                let Target::Fields(fields) = self.target(name)? else {
                    return Err(self.error(name.span, "`has` is for tcp_flags"));
                };
                if fields != [Field::TcpFlags] {
                    return Err(self.error(name.span, "`has` is for tcp_flags (as in tcp_flags has SYN)"));
                }
                let mask = tcp_flags(&value.text)
                    .ok_or_else(|| self.value_error(value, "not a TCP flag (FIN, SYN, RST, SYN-ACK or a number)"))?;
                Filter::Test(Test {
                    fields,
                    cond: Cond::FlagsAll(mask),
                    negate: false,
                })
            }
        })
    }

    /// `target in (values)`: one test for them all where they share a condition kind.
    fn in_list(&self, target: &Target, values: &[Literal]) -> Result<Filter, QueryError> {
        let parts = values
            .iter()
            .map(|v| self.compare(target, CmpOp::Eq, v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(merge_in(parts))
    }

    /// `x = -` (no value) and `x != -` (a value), from the test of "has a value".
    fn no_value(&self, has_value: Test, op: CmpOp, value: &Literal) -> Result<Filter, QueryError> {
        match op {
            CmpOp::Eq => Ok(Filter::Not(Box::new(Filter::Test(has_value)))),
            CmpOp::Ne => Ok(Filter::Test(has_value)),
            _ => Err(self.value_error(value, "`-` (no value) takes = and !=")),
        }
    }

    fn compare(&self, target: &Target, op: CmpOp, value: &Literal) -> Result<Filter, QueryError> {
        let fields = match target {
            Target::Time => {
                // `time != -`: the records with a time, which all overlap all of time; `time =
                // -`, those with neither.
                if value.text == "-" {
                    let has_time = Test {
                        fields: vec![],
                        cond: Cond::TimeOverlap(0, u64::MAX),
                        negate: false,
                    };
                    return self.no_value(has_time, op, value);
                }
                let (lo, hi) = time_range(&value.text)
                    .ok_or_else(|| self.value_error(value, &format!("not a time ({TIME_FORMS})")))?;
                let (lo, hi) = match op {
                    CmpOp::Eq => (lo, hi),
                    CmpOp::Lt => (0, lo.saturating_sub(1)),
                    CmpOp::Le => (0, hi),
                    CmpOp::Gt => (hi.saturating_add(1), u64::MAX),
                    CmpOp::Ge => (lo, u64::MAX),
                    CmpOp::Ne => {
                        let t = Filter::Test(Test {
                            fields: vec![],
                            cond: Cond::TimeOverlap(lo, hi),
                            negate: false,
                        });
                        return Ok(Filter::Not(Box::new(t)));
                    }
                };
                return Ok(Filter::Test(Test {
                    fields: vec![],
                    cond: Cond::TimeOverlap(lo, hi),
                    negate: false,
                }));
            }
            Target::Fields(f) => f.clone(),
        };
        let kind = fields[0].kind();
        // `-` is how a flow log writes "no value": `f = -` holds where no field has one, and
        // `f != -` where some field does: a test that no value passes, negated.
        if value.text == "-" {
            let has_value = Test {
                cond: match kind {
                    FieldKind::Ip => Cond::Ips(Vec::new()),
                    FieldKind::UInt => Cond::Numbers(Vec::new()),
                    FieldKind::Enum | FieldKind::Text => Cond::Words(Vec::new()),
                },
                fields,
                negate: true,
            };
            return self.no_value(has_value, op, value);
        }
        let bad = |what: &str| {
            self.value_error(
                value,
                &format!(
                    "`{}` is not {what} for {}",
                    value.text,
                    super::show::target_name(&fields)
                ),
            )
        };
        let ordered = matches!(op, CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge);
        let cond = match kind {
            FieldKind::Ip => {
                if ordered {
                    return Err(self.value_error(value, "addresses take =, !=, in and like; use a CIDR for ranges"));
                }
                Cond::Ips(ip_ranges(&value.text).ok_or_else(|| bad("an address or CIDR"))?)
            }
            FieldKind::UInt => {
                let (lo, hi) = number_range(fields[0], &value.text).ok_or_else(|| bad(expected_number(fields[0])))?;
                // No record holds more than its type does: `dstport = 70000` is a typo.
                if let Some(max) = fields[0].max_number().filter(|&max| lo > max) {
                    return Err(self.value_error(
                        value,
                        &format!(
                            "`{}` is out of range for {} (at most {max})",
                            value.text,
                            super::show::target_name(&fields)
                        ),
                    ));
                }
                let range = match op {
                    CmpOp::Eq | CmpOp::Ne => (lo, hi),
                    CmpOp::Lt => {
                        if lo == 0 {
                            return Ok(Filter::Or(Vec::new()));
                        }
                        (0, lo - 1)
                    }
                    CmpOp::Le => (0, hi),
                    CmpOp::Gt => {
                        if hi == u64::MAX {
                            return Ok(Filter::Or(Vec::new()));
                        }
                        (hi + 1, u64::MAX)
                    }
                    CmpOp::Ge => (lo, u64::MAX),
                };
                Cond::Numbers(vec![range])
            }
            FieldKind::Enum => {
                if ordered {
                    return Err(self.value_error(value, "this field takes =, !=, in and like"));
                }
                let word = enum_word(fields[0], &value.text).ok_or_else(|| bad(enum_words(fields[0])))?;
                Cond::Words(vec![word.to_owned()])
            }
            FieldKind::Text => {
                if ordered {
                    return Err(self.value_error(value, "text fields take =, !=, in and like"));
                }
                Cond::Words(vec![value.text.clone()])
            }
        };
        let is_x = Test {
            fields,
            cond,
            negate: false,
        };
        // `addr != X` excludes X at either end: a responder leaving out a noisy host means
        // "no end is X", not "some end is not X" (which keeps every record it sent). Like any
        // `!=` it needs a value: some field has one, and it is not X. A field the record lacks
        // (`pkt-srcaddr` in a v2 log, for `any_addr`) is no end.
        Ok(match op {
            CmpOp::Ne => none_of(is_x),
            _ => Filter::Test(is_x),
        })
    }

    fn stats(&self, s: &parse::Stats) -> Result<(Vec<GroupBy>, Vec<Aggregate>), QueryError> {
        let mut aggs = Vec::new();
        for a in &s.aggregates {
            let function = match a.function.text.to_ascii_lowercase().as_str() {
                "count" => AggregateFn::Count,
                "sum" => AggregateFn::Sum,
                "min" => AggregateFn::Min,
                "max" => AggregateFn::Max,
                "avg" => AggregateFn::Avg,
                "count_distinct" => AggregateFn::CountDistinct,
                _ => {
                    return Err(QueryError::at(
                        self.text,
                        a.function.span,
                        &format!(
                            "unknown aggregate `{}` (count, sum, min, max, avg, count_distinct)",
                            a.function.text
                        ),
                        None,
                    ))
                }
            };
            let field = a.argument.as_ref().map(|n| self.field(n)).transpose()?;
            match (function, field) {
                (AggregateFn::Count, _) => {}
                (_, None) => return Err(self.error(a.span, "this aggregate needs a field")),
                (AggregateFn::Sum | AggregateFn::Avg | AggregateFn::Min | AggregateFn::Max, Some(f))
                    if f.kind() != FieldKind::UInt =>
                {
                    return Err(self.error(a.span, &format!("{} is not a number", f.name())))
                }
                _ => {}
            }
            let name = match &a.alias {
                Some(n) => n.text.clone(),
                None => self.text[a.span.start..a.span.end].split_whitespace().collect(),
            };
            aggs.push(Aggregate { function, field, name });
        }
        let mut by = Vec::new();
        for g in &s.by {
            by.push(match g {
                GroupKey::Field { name, alias } => {
                    let field = self.field(name)?;
                    GroupBy::Field {
                        field,
                        name: alias
                            .as_ref()
                            .map_or_else(|| field.key().to_owned(), |a| a.text.clone()),
                    }
                }
                GroupKey::Bin { seconds, alias, span } => GroupBy::Bin {
                    seconds: *seconds,
                    name: alias
                        .as_ref()
                        .map_or_else(|| self.text[span.start..span.end].to_owned(), |a| a.text.clone()),
                },
            });
        }
        // A row is keyed by its column names: two of one name would make a JSON object with the
        // key twice (parsers keep the last) and leave `sort` and `filter` one to choose.
        let spans =
            s.by.iter()
                .map(|g| g.alias().map_or(g.span(), |a| a.span))
                .chain(s.aggregates.iter().map(|a| a.alias.as_ref().map_or(a.span, |n| n.span)));
        let names = by
            .iter()
            .map(|g| match g {
                GroupBy::Field { name, .. } | GroupBy::Bin { name, .. } => name,
            })
            .chain(aggs.iter().map(|a| &a.name));
        let mut seen = std::collections::HashSet::new();
        for (name, span) in names.zip(spans) {
            if !seen.insert(name) {
                return Err(self.error(
                    span,
                    &format!("a second column named `{name}`; name one of them otherwise with `as`"),
                ));
            }
        }
        Ok((by, aggs))
    }

    fn column(&self, name: &Name, columns: &[RowColumn]) -> Result<usize, QueryError> {
        columns.iter().position(|c| c.name == name.text).ok_or_else(|| {
            let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            let message = format!(
                "`{}` is not a column after stats (columns: {})",
                name.text,
                names.join(", ")
            );
            // Only a column may be meant: a field `display` left out is no answer.
            let nearest = crate::record::nearest_name(&name.text, names.iter().copied()).map(str::to_owned);
            QueryError::at(self.text, name.span, &message, nearest)
        })
    }

    fn row_stage(&self, stage: &Stage, columns: &[RowColumn]) -> Result<RowStage, QueryError> {
        Ok(match stage {
            Stage::Filter(e) => RowStage::Filter(self.row_filter(e, columns)?),
            Stage::Sort(keys) => RowStage::Sort(
                keys.iter()
                    .map(|(n, d)| Ok((self.column(n, columns)?, *d)))
                    .collect::<Result<_, QueryError>>()?,
            ),
            Stage::Limit(n) => RowStage::Limit(*n),
            Stage::Fields(names) | Stage::Display(names) => RowStage::Columns(first_of_each(
                names
                    .iter()
                    .map(|n| self.column(n, columns))
                    .collect::<Result<_, _>>()?,
            )),
            Stage::Stats(s) => {
                // Under the second stats' first aggregate (or key).
                let at = s
                    .aggregates
                    .first()
                    .map(|a| a.span)
                    .or_else(|| s.by.first().map(GroupKey::span))
                    .unwrap_or(Span::new(0, 0));
                return Err(self.error(at, "only one stats per query"));
            }
            Stage::Dedup(names) => {
                let at = names.first().map_or(Span::new(0, 0), |n| n.span);
                return Err(self.error(
                    at,
                    "no dedup after stats: its rows are distinct already (dedup records before it)",
                ));
            }
        })
    }

    fn row_filter(&self, e: &Expr, columns: &[RowColumn]) -> Result<RowFilter, QueryError> {
        let value = |l: &Literal| {
            let number = match l.text.parse::<u128>() {
                Ok(n) => Some(RowNumber::Int(n)),
                Err(_) => l.text.parse::<f64>().ok().map(RowNumber::Float),
            };
            match number {
                Some(n) if !l.quoted => RowValue::Number(n),
                _ => RowValue::Text(l.text.clone()),
            }
        };
        // A key is compared as its field is before `stats`; a time bin as the span it covers,
        // as `time` compares a record's.
        let target = |key: KeyOf| match key {
            KeyOf::Field(field) => Target::Fields(vec![field]),
            KeyOf::Bin(_) => Target::Time,
        };
        Ok(match e {
            Expr::And(a, b) => RowFilter::And(
                Box::new(self.row_filter(a, columns)?),
                Box::new(self.row_filter(b, columns)?),
            ),
            Expr::Or(a, b) => RowFilter::Or(
                Box::new(self.row_filter(a, columns)?),
                Box::new(self.row_filter(b, columns)?),
            ),
            Expr::Not(a) => RowFilter::Not(Box::new(self.row_filter(a, columns)?)),
            // On a group key, as before `stats`; an aggregate's cell is a number or `-`.
            Expr::Excluding(a) => match self.row_filter(a, columns)? {
                RowFilter::Key(column, key, filter) => RowFilter::Key(column, key, excluding(filter)),
                other @ (RowFilter::In(column, _) | RowFilter::Like(column, _)) => RowFilter::And(
                    Box::new(RowFilter::Not(Box::new(other))),
                    Box::new(RowFilter::Present(column)),
                ),
                other => RowFilter::Not(Box::new(other)),
            },
            Expr::Compare { name, op, value: v } => {
                let column = self.column(name, columns)?;
                match columns[column].key {
                    Some(key) => RowFilter::Key(column, key, self.compare(&target(key), *op, v)?),
                    None => RowFilter::Compare(column, *op, value(v)),
                }
            }
            Expr::In { name, values } => {
                let column = self.column(name, columns)?;
                match columns[column].key {
                    Some(key) => RowFilter::Key(column, key, self.in_list(&target(key), values)?),
                    None => RowFilter::In(column, values.iter().map(value).collect()),
                }
            }
            Expr::Like { name, pattern, span } => {
                let re = match pattern {
                    Pattern::Regex(r) => r.clone(),
                    Pattern::Text(t) => regex::escape(t),
                };
                RowFilter::Like(
                    self.column(name, columns)?,
                    Regex::new(&re).map_err(|e| self.error(*span, &bad_regex(&e)))?,
                )
            }
            Expr::Has { name, .. } => return Err(self.error(name.span, "`has` is for tcp_flags before stats")),
        })
    }
}

/// `x not in [...]` or `x not like ...`, as `!=`: the field has a value, and it is none of them.
/// For several fields (`addr`), as `addr != X`: no end is one of them, and some end has a value.
fn excluding(f: Filter) -> Filter {
    match f {
        Filter::Test(t) if !t.negate && !t.fields.is_empty() => none_of(t),
        Filter::Or(parts) => Filter::And(parts.into_iter().map(excluding).collect()),
        // `time not in [...]`: a time is no value a record may lack.
        f => Filter::Not(Box::new(f)),
    }
}

/// The records where `is_x` does not hold as `!=` means it: some field has a value, and (for
/// several fields, as `addr`) no field holds one that `is_x` matches.
fn none_of(is_x: Test) -> Filter {
    let has_other = Test {
        negate: true,
        ..is_x.clone()
    };
    if is_x.fields.len() == 1 {
        return Filter::Test(has_other);
    }
    Filter::And(vec![Filter::Not(Box::new(Filter::Test(is_x))), Filter::Test(has_other)])
}

/// The regex crate's error on one line: its syntax errors repeat the pattern with a caret of
/// their own, which under the query's caret only confuses.
fn bad_regex(e: &regex::Error) -> String {
    let text = e.to_string();
    let why = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or(text.lines().next().unwrap_or_default());
    format!("bad regex: {why}")
}

/// `in (a, b, c)`: one test with every value when they share fields and condition kind.
fn merge_in(parts: Vec<Filter>) -> Filter {
    let mut merged: Option<Test> = None;
    let mut rest = Vec::new();
    for p in parts {
        match (p, merged.as_mut()) {
            (Filter::Test(t), None) if !t.negate => merged = Some(t),
            (Filter::Test(t), Some(m)) if !t.negate && t.fields == m.fields => match (&mut m.cond, t.cond) {
                (Cond::Ips(a), Cond::Ips(b)) => a.extend(b),
                (Cond::Numbers(a), Cond::Numbers(b)) => a.extend(b),
                (Cond::Words(a), Cond::Words(b)) => a.extend(b),
                (_, cond) => rest.push(Filter::Test(Test { cond, ..t })),
            },
            (p, _) => rest.push(p),
        }
    }
    rest.extend(merged.map(Filter::Test));
    if rest.len() == 1 {
        rest.pop().expect("one element")
    } else {
        Filter::Or(rest)
    }
}

/// An address or CIDR as an inclusive range of 16-byte addresses.
pub fn ip_range(text: &str) -> Option<([u8; 16], [u8; 16])> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u32>().ok()?)),
        None => (text, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let bits = match (ip, len) {
        (_, None) => 128,
        (IpAddr::V4(_), Some(l)) if l <= 32 => 96 + l,
        (IpAddr::V6(_), Some(l)) if l <= 128 => l,
        _ => return None,
    };
    let base = u128::from_be_bytes(ip_bytes(ip));
    let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
    Some(((base & mask).to_be_bytes(), (base | !mask).to_be_bytes()))
}

/// The addresses an address or CIDR of a query means: [`ip_range`], less the IPv4-mapped block
/// (`::ffff:0:0/96`, where IPv4 addresses are kept) when an IPv6 CIDR holds more than it.
/// `srcaddr = ::/0` means every IPv6 address, as a responder means it, not every address.
pub fn ip_ranges(text: &str) -> Option<Vec<([u8; 16], [u8; 16])>> {
    let (lo, hi) = ip_range(text)?;
    let (l, h) = (u128::from_be_bytes(lo), u128::from_be_bytes(hi));
    let (mapped_lo, mapped_hi) = (0xffff_u128 << 32, (0xffff_u128 << 32) | 0xffff_ffff);
    if !(l <= mapped_lo && mapped_hi <= h) || (l, h) == (mapped_lo, mapped_hi) {
        return Some(vec![(lo, hi)]);
    }
    let below = (l < mapped_lo).then(|| (lo, (mapped_lo - 1).to_be_bytes()));
    let above = (mapped_hi < h).then(|| ((mapped_hi + 1).to_be_bytes(), hi));
    Some(below.into_iter().chain(above).collect())
}

/// A time as an inclusive range of Unix seconds: an RFC 3339 instant, a date (the whole UTC
/// day), a month, or Unix seconds.
pub fn time_range(text: &str) -> Option<(u64, u64)> {
    if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() && text.len() != 4 {
        // Milliseconds are read as the reader reads them in logs, so that a time copied from
        // a line finds its record.
        let t: u64 = text.parse().ok()?;
        // A number past any time (a bound: `time < 18446744073709551615`) stays what it says.
        let t = crate::record::unix_seconds(t).unwrap_or(t);
        return Some((t, t));
    }
    // A second without a zone (`2024-04-28 10:05:00`) is UTC, as tables print times.
    let zoned = (text.len() == 19).then(|| format!("{text}Z"));
    if let Some(t) = crate::time::parse_rfc3339(zoned.as_deref().unwrap_or(text)) {
        let t = u64::try_from(t).ok()?;
        return Some((t, t));
    }
    // A minute, as warnings and coverage write times (`2024-04-28T10:05Z`): all of it.
    if let Some(minute) = text.strip_suffix(['Z', 'z']).filter(|m| m.len() == 16) {
        let t = u64::try_from(crate::time::parse_rfc3339(&format!("{minute}:00Z"))?).ok()?;
        return Some((t, t + 59));
    }
    let parts: Vec<&str> = text.split('-').collect();
    let num = |s: &str| s.parse::<u32>().ok();
    match parts.as_slice() {
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            let start = crate::time::unix_seconds(i64::from(num(y)?), num(m)?, num(d)?, 0, 0, 0)?;
            Some((u64::try_from(start).ok()?, u64::try_from(start + 86_399).ok()?))
        }
        [y, m] if y.len() == 4 && m.len() == 2 => {
            let (y, m) = (i64::from(num(y)?), num(m)?);
            let start = crate::time::unix_seconds(y, m, 1, 0, 0, 0)?;
            let days = i64::from(crate::time::days_in_month(y, m));
            Some((
                u64::try_from(start).ok()?,
                u64::try_from(start + days * 86_400 - 1).ok()?,
            ))
        }
        _ => None,
    }
}

fn number_range(field: Field, text: &str) -> Option<(u64, u64)> {
    let time = matches!(field, Field::Start | Field::End);
    if let Ok(n) = text.parse::<u64>() {
        // Milliseconds are read as the reader reads them in logs; a number past any time (as
        // a bound: `start < 18446744073709551615`) stays what it says.
        let n = if time {
            crate::record::unix_seconds(n).unwrap_or(n)
        } else {
            n
        };
        return Some((n, n));
    }
    if time {
        return time_range(text);
    }
    match field {
        Field::Protocol => {
            let n = match text.to_ascii_lowercase().as_str() {
                "icmp" => 1,
                "tcp" => 6,
                "udp" => 17,
                "icmpv6" | "ipv6-icmp" => 58,
                "esp" => 50,
                "gre" => 47,
                _ => return None,
            };
            Some((n, n))
        }
        Field::TcpFlags => tcp_flags(text).map(|n| (n, n)),
        _ => None,
    }
}

fn expected_number(field: Field) -> &'static str {
    match field {
        Field::Protocol => "a protocol number or name (tcp, udp, icmp, icmpv6)",
        Field::TcpFlags => "a TCP flag value or name (FIN, SYN, RST, SYN-ACK)",
        Field::Start | Field::End => "a time (RFC 3339, 2024-04-28T10:05Z, 2024-04-28, 2024-04 or Unix seconds)",
        _ => "a number",
    }
}

fn tcp_flags(text: &str) -> Option<u64> {
    if let Ok(n) = text.parse() {
        return Some(n);
    }
    Some(match text.to_ascii_uppercase().as_str() {
        "FIN" => 1,
        "SYN" => 2,
        "RST" => 4,
        "SYN-ACK" | "SYNACK" | "SYN_ACK" => 18,
        _ => return None,
    })
}

fn enum_word(field: Field, text: &str) -> Option<&'static str> {
    let find = |words: Vec<&'static str>| words.into_iter().find(|w| w.eq_ignore_ascii_case(text));
    match field {
        Field::Action => find(Action::ALL.iter().map(|a| a.as_str()).collect()),
        Field::LogStatus => find(LogStatus::ALL.iter().map(|a| a.as_str()).collect()),
        Field::FlowDirection => find(FlowDirection::ALL.iter().map(|a| a.as_str()).collect()),
        Field::Type => find(TrafficType::ALL.iter().map(|a| a.as_str()).collect()),
        _ => None,
    }
}

fn enum_words(field: Field) -> &'static str {
    match field {
        Field::Action => "ACCEPT or REJECT",
        Field::LogStatus => "OK, NODATA or SKIPDATA",
        Field::FlowDirection => "ingress or egress",
        _ => "IPv4, IPv6 or EFA",
    }
}

/// `items` without repeats, each where it first appears: a field listed twice is shown once
/// (twice, a JSON object would hold the key twice).
fn first_of_each<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !kept.contains(&item) {
            kept.push(item);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(text: &str) -> Result<Bound, QueryError> {
        let q = super::super::parse(text, &|_| Ok(String::new()))?;
        bind(&q, text)
    }

    #[test]
    fn unknown_fields_get_a_suggestion_and_a_caret() {
        let e = bound("dstprt = 22").unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("dstport"));
        let shown = e.to_string();
        assert!(
            shown.contains("unknown field `dstprt`; did you mean `dstport`?"),
            "{shown}"
        );
        assert!(shown.ends_with("  dstprt = 22\n  ^^^^^^"), "{shown}");
    }

    #[test]
    fn pseudo_fields_are_spelled_as_fields_are() {
        for (a, b) in [
            ("any_addr = 10.0.0.1", "any-addr = 10.0.0.1"),
            ("any_addr = 10.0.0.1", "AnyAddr = 10.0.0.1"),
            ("addr = 10.0.0.1", "ADDR = 10.0.0.1"),
            ("port = 22", "Port = 22"),
            ("time = 2024-04-28", "TIME = 2024-04-28"),
        ] {
            assert_eq!(
                bound(a).unwrap().filter.to_string(),
                bound(b).unwrap().filter.to_string(),
                "{b}"
            );
        }
        let e = bound("stats count() by any-addr").unwrap_err().to_string();
        assert!(e.contains("covers several fields and is for filters only"), "{e}");
    }

    #[test]
    fn a_bad_regex_is_one_line_above_the_query_s_caret() {
        let shown = bound("srcaddr like /[/").unwrap_err().to_string();
        assert_eq!(
            shown,
            "query line 1, column 14: bad regex: unclosed character class\n  srcaddr like /[/\n               ^^^"
        );
    }

    #[test]
    fn values_are_typed_for_their_field() {
        let mut r = FlowRecord::default();
        for (f, t) in [
            (Field::Srcaddr, "10.1.2.3"),
            (Field::Protocol, "6"),
            (Field::TcpFlags, "18"),
            (Field::Action, "REJECT"),
            (Field::Start, "1714262400"),
            (Field::End, "1714262460"),
        ] {
            r.set_text(f, t).unwrap();
            r.fields.insert(f);
        }
        let yes = [
            "srcaddr = 10.0.0.0/8",
            "addr = 10.1.2.3",
            "protocol = tcp",
            "tcp_flags has SYN",
            "tcp_flags = SYN-ACK",
            "action = reject",
            "time = 2024-04-28",
            "time = 2024-04",
            "start >= 2024-04-28T00:00:00Z",
            "srcaddr like /^10\\./",
            "srcaddr in (1.1.1.1, 10.1.2.0/24)",
            "not dstport = 22",
            "protocol != 17",
        ];
        for q in yes {
            assert!(bound(q).unwrap().filter.matches(&r), "{q}");
        }
        let no = [
            "srcaddr = 10.2.0.0/16",
            "protocol = udp",
            "tcp_flags has RST",
            "time = 2024-04-29",
            "start < 2024-04-28",
            "dstport = 22",
            "srcport != 22",
            "protocol != 6",
        ];
        for q in no {
            assert!(!bound(q).unwrap().filter.matches(&r), "{q}");
        }
    }

    #[test]
    fn a_second_stats_or_a_dedup_after_stats_is_pointed_at() {
        let text = "stats count() as n by srcaddr | sort n desc | stats count() as m";
        let e = bound(text).unwrap_err();
        assert_eq!(
            (e.span.start, e.message.as_str()),
            (text.rfind("count()").unwrap(), "only one stats per query")
        );
        let text = "stats count() as n by srcaddr | dedup srcaddr";
        let e = bound(text).unwrap_err();
        assert_eq!(e.span.start, text.rfind("srcaddr").unwrap(), "{}", e.message);
    }

    #[test]
    fn two_columns_of_one_name_after_stats_are_refused_at_the_second() {
        for (text, at) in [
            ("stats count() as n, sum(bytes) as n by srcaddr", 34),
            ("stats sum(bytes) as srcaddr by srcaddr", 20),
            ("stats count(), count() by dstport", 15),
        ] {
            let e = bound(text).unwrap_err();
            assert!(e.message.contains("a second column named"), "{text}: {}", e.message);
            assert_eq!(e.span.start, at, "{text}");
        }
        assert!(bound("stats count() as n, count() by dstport as port").is_ok());
    }

    #[test]
    fn a_field_listed_twice_is_shown_once() {
        let b = bound("fields srcaddr, dstport, srcAddr | display dstport, dstport").unwrap();
        assert!(matches!(&b.records[0], RecordStage::Fields(f) if f[..] == [Field::Srcaddr, Field::Dstport]));
        assert!(matches!(&b.records[1], RecordStage::Fields(f) if f[..] == [Field::Dstport]));
        let b = bound("stats count() as s by srcaddr | display s, srcaddr, s").unwrap();
        assert!(matches!(&b.rows[0], RowStage::Columns(c) if c[..] == [1, 0]));
    }

    #[test]
    fn stats_and_rows() {
        let b = bound("tcp_flags = 2 and action = REJECT | stats count() as syn_count by srcaddr | filter syn_count > 100 | sort syn_count desc").unwrap();
        assert_eq!(b.row_columns(), ["srcaddr", "syn_count"]);
        assert!(matches!(
            b.rows[0],
            RowStage::Filter(RowFilter::Compare(1, CmpOp::Gt, RowValue::Number(RowNumber::Int(100))))
        ));
        assert!(bound("stats sum(action)").is_err());
        assert!(bound("stats count() | sort nope")
            .unwrap_err()
            .message
            .contains("not a column"));
    }

    #[test]
    fn aggregates_are_named_after_stats_as_their_columns_read_and_lists_take_brackets() {
        let b =
            bound("stats count(*), sum(bytes) by srcaddr | filter count(*) > 100 | sort sum( bytes ) desc").unwrap();
        assert_eq!(b.row_columns(), ["srcaddr", "count(*)", "sum(bytes)"]);
        assert!(matches!(
            b.rows[0],
            RowStage::Filter(RowFilter::Compare(1, CmpOp::Gt, RowValue::Number(RowNumber::Int(100))))
        ));
        assert!(matches!(&b.rows[1], RowStage::Sort(keys) if keys[..] == [(2, true)]));
        assert!(bound("stats count() | sort count(*)")
            .unwrap_err()
            .message
            .contains("not a column"));
        let brackets = bound("dstport in [22, 443]").unwrap().filter.to_string();
        assert_eq!(brackets, bound("dstport in (22, 443)").unwrap().filter.to_string());
        assert!(bound("dstport in [22, 443)").is_err());
    }

    #[test]
    fn values_out_of_their_field_s_range_and_bad_list_lines_are_named() {
        let err = bound("dstport = 70000").unwrap_err();
        assert_eq!(err.message, "`70000` is out of range for dstport (at most 65535)");
        assert!(bound("port > 65536")
            .unwrap_err()
            .message
            .contains("for port (at most 65535)"));
        assert!(bound("dstport = 65535 and protocol = 255").is_ok());
        let text = "addr in @iocs.txt";
        let q = super::super::parse(text, &|_| Ok("1.2.3.4\n# comment\n\nnot-an-ip\n".into())).unwrap();
        let err = bind(&q, text).unwrap_err();
        assert_eq!(
            err.message,
            "iocs.txt line 4: `not-an-ip` is not an address or CIDR for addr"
        );
        let mut b = bound("action = ACCEPT").unwrap();
        let err = bind_time_window(&mut b, Some("yesterday"), None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--from `yesterday`: not a time ("), "{err}");
        assert_eq!(time_range("2024-04-28T10:05Z"), Some((1_714_298_700, 1_714_298_759)));
    }

    #[test]
    fn wide_ipv6_cidrs_leave_out_the_ipv4_addresses() {
        let v4 = |a: &str| ip_bytes(a.parse().unwrap());
        let holds = |cidr: &str, addr: &str| {
            ip_ranges(cidr)
                .unwrap()
                .iter()
                .any(|(lo, hi)| (*lo..=*hi).contains(&v4(addr)))
        };
        assert!(!holds("::/0", "10.1.0.181"));
        assert!(holds("::/0", "2001:db8::1"));
        assert!(holds("::/0", "::1"));
        assert!(!holds("::/64", "10.1.0.181"));
        assert!(holds("::ffff:0:0/96", "10.1.0.181"));
        assert!(holds("0.0.0.0/0", "10.1.0.181"));
        assert!(holds("::ffff:10.1.0.181", "10.1.0.181"));
        assert!(!holds("0.0.0.0/0", "2001:db8::1"));
    }

    #[test]
    fn cloudwatch_s_own_fields_get_the_flow_log_field_to_use() {
        let err = bound("fields @timestamp, srcaddr | sort @timestamp desc").unwrap_err();
        assert!(
            err.message
                .contains("`@timestamp` is a CloudWatch Logs field; here use `start`"),
            "{}",
            err.message
        );
        let err = bound("fields @message").unwrap_err();
        assert!(err.message.contains("`--format raw`"), "{}", err.message);
    }

    #[test]
    fn cidr_ranges() {
        let (lo, hi) = ip_range("10.1.0.0/16").unwrap();
        assert_eq!(lo, ip_bytes("10.1.0.0".parse().unwrap()));
        assert_eq!(hi, ip_bytes("10.1.255.255".parse().unwrap()));
        assert!(ip_range("10.0.0.0/33").is_none());
        assert_eq!(time_range("2024-04-28"), Some((1_714_262_400, 1_714_348_799)));
        assert_eq!(time_range("2024-02"), Some((1_706_745_600, 1_709_251_199)));
    }

    #[test]
    fn a_time_as_a_table_prints_it_is_that_second_in_utc() {
        assert_eq!(time_range("2024-04-28 10:05:00"), Some((1_714_298_700, 1_714_298_700)));
        assert_eq!(time_range("2024-04-28T10:05:00"), Some((1_714_298_700, 1_714_298_700)));
        assert_eq!(
            time_range("2024-04-28 10:05:00+02:00"),
            Some((1_714_291_500, 1_714_291_500))
        );
        assert_eq!(time_range("2024-04-28 25:05:00"), None);
    }

    #[test]
    fn unix_times_in_milliseconds_are_read_as_the_logs_are() {
        assert_eq!(time_range("1714262700"), Some((1_714_262_700, 1_714_262_700)));
        assert_eq!(time_range("1714262700123"), Some((1_714_262_700, 1_714_262_700)));
        assert_eq!(time_range("18446744073709551615"), Some((u64::MAX, u64::MAX)));
        let b = bound("start = 1714262700000").unwrap();
        let Filter::Test(Test {
            cond: Cond::Numbers(ranges),
            ..
        }) = b.filter
        else {
            panic!("{:?}", b.filter)
        };
        assert_eq!(ranges, [(1_714_262_700, 1_714_262_700)]);
    }
}
