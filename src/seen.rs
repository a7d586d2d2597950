//! Index-only answers: whether values (addresses, CIDRs, ports, ENIs and other AWS ids) appear
//! in an index, how often, as source and as destination, and when first and last — from the
//! dictionaries (each term's posting count and time span) and, for addresses and ports seen on
//! both sides, the postings; no record block is read.

use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::exec::matching_terms;
use crate::format::schema::Column;
use crate::query::{ip_ranges, Cond};
use crate::read::{Dictionaries, Index, IndexError, Segment};
use crate::record::Field;

/// What a value is looked up as.
#[derive(Clone, Debug)]
pub struct Lookup {
    /// The fields holding the value as a source (for ids: every field that holds such ids).
    pub src: &'static [Field],
    /// The fields holding it as a destination (none for ids).
    pub dst: &'static [Field],
    cond: Cond,
}

/// Why a value cannot be looked up.
#[derive(Debug, thiserror::Error)]
pub enum SeenError {
    #[error(
        "`{0}` is not an address, CIDR, port, account id (12 digits) or id starting with \
         eni-, i-, vpc-, subnet-, tgw-attach- or tgw-"
    )]
    Unknown(String),
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// Id prefixes and the indexed fields that hold such ids (a Transit Gateway flow log names
/// the ENIs, subnets and VPCs at both ends of a flow); longer prefixes first.
const ID_FIELDS: &[(&str, &[Field])] = &[
    ("tgw-attach-", &[Field::TgwAttachmentId, Field::TgwPairAttachmentId]),
    ("tgw-", &[Field::TgwId]),
    (
        "subnet-",
        &[Field::SubnetId, Field::TgwSrcSubnetId, Field::TgwDstSubnetId],
    ),
    ("vpc-", &[Field::VpcId, Field::TgwSrcVpcId, Field::TgwDstVpcId]),
    ("eni-", &[Field::InterfaceId, Field::TgwSrcEni, Field::TgwDstEni]),
    ("i-", &[Field::InstanceId]),
];

/// The fields of a 12-digit account id.
const ACCOUNT_FIELDS: &[Field] = &[Field::AccountId, Field::TgwSrcVpcAccountId, Field::TgwDstVpcAccountId];

impl Lookup {
    /// Tells what `value` is: an address or CIDR (as source `srcaddr` or `pkt-srcaddr`, as
    /// destination `dstaddr` or `pkt-dstaddr`: behind a NAT gateway the far end is only in the
    /// packet addresses), a port (srcport/dstport), a 12-digit account id, or an AWS id by its
    /// prefix.
    pub fn parse(value: &str) -> Result<Lookup, SeenError> {
        if let Some(ranges) = ip_ranges(value) {
            return Ok(Lookup {
                src: &[Field::Srcaddr, Field::PktSrcaddr],
                dst: &[Field::Dstaddr, Field::PktDstaddr],
                cond: Cond::Ips(ranges),
            });
        }
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Lookup {
                src: ACCOUNT_FIELDS,
                dst: &[],
                cond: Cond::Words(vec![value.to_owned()]),
            });
        }
        if let Ok(port) = value.parse::<u16>() {
            return Ok(Lookup {
                src: &[Field::Srcport],
                dst: &[Field::Dstport],
                cond: Cond::Numbers(vec![(u64::from(port), u64::from(port))]),
            });
        }
        ID_FIELDS
            .iter()
            .find(|(prefix, _)| value.starts_with(prefix))
            .map(|(_, fields)| Lookup {
                src: fields,
                dst: &[],
                cond: Cond::Words(vec![value.to_owned()]),
            })
            .ok_or_else(|| SeenError::Unknown(value.to_owned()))
    }
}

/// What the index knows of one value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Records holding the value (in either field for addresses and ports).
    pub records: u64,
    /// Records holding it as source / as destination (addresses and ports only).
    pub as_src: Option<u64>,
    pub as_dst: Option<u64>,
    /// Earliest `start` and latest `end` of those records.
    pub first_seen: Option<u64>,
    pub last_seen: Option<u64>,
}

impl Seen {
    fn merge(&mut self, other: Seen) {
        self.records += other.records;
        let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(x), Some(y)) => Some(x + y),
            (x, y) => x.or(y),
        };
        self.as_src = add(self.as_src, other.as_src);
        self.as_dst = add(self.as_dst, other.as_dst);
        self.first_seen = self.first_seen.into_iter().chain(other.first_seen).min();
        self.last_seen = self.last_seen.into_iter().chain(other.last_seen).max();
    }
}

/// Looks every value up in every segment (segments in parallel).
pub fn seen(index: &Index, lookups: &[Lookup]) -> Result<Vec<Seen>, IndexError> {
    let per_segment = index
        .segments()
        .par_iter()
        .map(|seg| {
            // Parsed once for all the values: 1,000 addresses look in four fields each.
            let dicts = seg.dictionaries();
            lookups
                .iter()
                .map(|l| seen_in(seg, &dicts, l))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut total = vec![Seen::default(); lookups.len()];
    for seg in per_segment {
        for (t, s) in total.iter_mut().zip(seg) {
            t.merge(s);
        }
    }
    for (t, l) in total.iter_mut().zip(lookups) {
        if !l.dst.is_empty() {
            t.as_src.get_or_insert(0);
            t.as_dst.get_or_insert(0);
        }
    }
    Ok(total)
}

/// One field of a lookup in one segment: records, time span, and the terms whose postings
/// hold them.
struct Side {
    field: Field,
    records: u64,
    first: Option<u64>,
    last: Option<u64>,
    terms: Vec<usize>,
    /// For a twin (`pkt-srcaddr`, `pkt-dstaddr`): the terms whose postings are not their
    /// base's, and their records. The others hold only records the base's side holds.
    own_terms: Vec<usize>,
    own_records: u64,
}

impl Side {
    /// The ids of the side's terms, or of its own terms only.
    fn ids(&self, seg: &Segment, dicts: &Dictionaries<'_>, own: bool) -> Result<RoaringBitmap, IndexError> {
        let column = Column::Field(self.field);
        let terms = if own { &self.own_terms } else { &self.terms };
        match dicts.of(column)? {
            Some(dict) => seg.postings_union(column, dict, terms),
            None => Ok(RoaringBitmap::new()),
        }
    }
}

fn side(seg: &Segment, dicts: &Dictionaries<'_>, field: Field, cond: &Cond) -> Result<Side, IndexError> {
    let column = Column::Field(field);
    let mut s = Side {
        field,
        records: 0,
        first: None,
        last: None,
        terms: Vec::new(),
        own_terms: Vec::new(),
        own_records: 0,
    };
    let Some(dict) = dicts.of(column)? else {
        return Ok(s);
    };
    let corrupt = |c| IndexError::corrupt(seg.path(), c);
    s.terms = matching_terms(dict, field, cond).map_err(corrupt)?;
    for &t in &s.terms {
        let r = dict.posting_ref(t).map_err(corrupt)?.ok_or_else(|| {
            IndexError::corrupt(seg.path(), crate::format::Corrupt::new(field.name(), 0, "no postings"))
        })?;
        s.records += u64::from(r.count);
        if column.twin_base().is_none() || !seg.posting_is_twin(column, dict, t)? {
            s.own_terms.push(t);
            s.own_records += u64::from(r.count);
        }
        if r.first_start != u64::MAX {
            s.first = s.first.into_iter().chain([r.first_start]).min();
        }
        if r.last_end != 0 {
            s.last = s.last.into_iter().chain([r.last_end]).max();
        }
    }
    Ok(s)
}

/// The records holding the value in any of `sides`. A record may hold it in two fields
/// (`srcaddr` and `pkt-srcaddr` mostly agree), so the postings are read and joined, unless at
/// most one field holds it in records of its own. A twin's postings that are its base's add
/// nothing when its base is among `sides`: on 20 M records, every address of 1,000 has them.
fn records_in(seg: &Segment, dicts: &Dictionaries<'_>, sides: &[&Side]) -> Result<u64, IndexError> {
    let with_base = |s: &Side| {
        Column::Field(s.field)
            .twin_base()
            .is_some_and(|base| sides.iter().any(|b| Column::Field(b.field) == base))
    };
    // Each side's records, or only its own beside its base; the posting terms to join likewise.
    let counted: Vec<(&Side, u64)> = sides
        .iter()
        .map(|&s| (s, if with_base(s) { s.own_records } else { s.records }))
        .filter(|&(_, n)| n > 0)
        .collect();
    if counted.len() <= 1 {
        return Ok(counted.iter().map(|(_, n)| n).sum());
    }
    let mut ids = RoaringBitmap::new();
    for (s, _) in counted {
        ids |= s.ids(seg, dicts, with_base(s))?;
    }
    Ok(ids.len())
}

fn seen_in(seg: &Segment, dicts: &Dictionaries<'_>, lookup: &Lookup) -> Result<Seen, IndexError> {
    let sides = |fields: &[Field]| {
        fields
            .iter()
            .map(|&f| side(seg, dicts, f, &lookup.cond))
            .collect::<Result<Vec<_>, _>>()
    };
    let (src, dst) = (sides(lookup.src)?, sides(lookup.dst)?);
    let all: Vec<&Side> = src.iter().chain(&dst).collect();
    let with_sides = !lookup.dst.is_empty();
    Ok(Seen {
        records: records_in(seg, dicts, &all)?,
        as_src: with_sides
            .then(|| records_in(seg, dicts, &src.iter().collect::<Vec<_>>()))
            .transpose()?,
        as_dst: with_sides
            .then(|| records_in(seg, dicts, &dst.iter().collect::<Vec<_>>()))
            .transpose()?,
        first_seen: all.iter().filter_map(|s| s.first).min(),
        last_seen: all.iter().filter_map(|s| s.last).max(),
    })
}
