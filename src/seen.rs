//! Index-only answers: whether values (addresses, CIDRs, ports, ENIs and other AWS ids) appear
//! in an index, how often, as source and as destination, and when first and last — from the
//! dictionaries (each term's posting count and time span) and, for addresses and ports seen on
//! both sides, the postings; no record block is read.

use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::exec::matching_terms;
use crate::format::schema::Column;
use crate::query::{ip_ranges, Cond};
use crate::read::{Index, IndexError, Segment};
use crate::record::Field;

/// What a value is looked up as.
#[derive(Clone, Debug)]
pub struct Lookup {
    /// The field of the value as a source (or the only field), and as a destination.
    pub fields: (Field, Option<Field>),
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

/// Id prefixes and the field whose dictionary holds them; longer prefixes first.
const ID_FIELDS: &[(&str, Field)] = &[
    ("tgw-attach-", Field::TgwAttachmentId),
    ("tgw-", Field::TgwId),
    ("subnet-", Field::SubnetId),
    ("vpc-", Field::VpcId),
    ("eni-", Field::InterfaceId),
    ("i-", Field::InstanceId),
];

impl Lookup {
    /// Tells what `value` is: an address or CIDR (srcaddr/dstaddr), a port (srcport/dstport),
    /// a 12-digit account id, or an AWS id by its prefix.
    pub fn parse(value: &str) -> Result<Lookup, SeenError> {
        if let Some(ranges) = ip_ranges(value) {
            return Ok(Lookup {
                fields: (Field::Srcaddr, Some(Field::Dstaddr)),
                cond: Cond::Ips(ranges),
            });
        }
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Lookup {
                fields: (Field::AccountId, None),
                cond: Cond::Words(vec![value.to_owned()]),
            });
        }
        if let Ok(port) = value.parse::<u16>() {
            return Ok(Lookup {
                fields: (Field::Srcport, Some(Field::Dstport)),
                cond: Cond::Numbers(vec![(u64::from(port), u64::from(port))]),
            });
        }
        ID_FIELDS
            .iter()
            .find(|(prefix, _)| value.starts_with(prefix))
            .map(|(_, field)| Lookup {
                fields: (*field, None),
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
        .map(|seg| lookups.iter().map(|l| seen_in(seg, l)).collect::<Result<Vec<_>, _>>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut total = vec![Seen::default(); lookups.len()];
    for seg in per_segment {
        for (t, s) in total.iter_mut().zip(seg) {
            t.merge(s);
        }
    }
    for (t, l) in total.iter_mut().zip(lookups) {
        if l.fields.1.is_some() {
            t.as_src.get_or_insert(0);
            t.as_dst.get_or_insert(0);
        }
    }
    Ok(total)
}

/// One side of a lookup in one segment: records, time span, and the terms to read postings of.
struct Side {
    records: u64,
    first: Option<u64>,
    last: Option<u64>,
    terms: Vec<usize>,
}

fn side(seg: &Segment, field: Field, cond: &Cond) -> Result<Side, IndexError> {
    let column = Column::Field(field);
    let mut s = Side {
        records: 0,
        first: None,
        last: None,
        terms: Vec::new(),
    };
    let Some(dict) = seg.dictionary(column)? else {
        return Ok(s);
    };
    let corrupt = |c| IndexError::corrupt(seg.path(), c);
    s.terms = matching_terms(&dict, field, cond).map_err(corrupt)?;
    for &t in &s.terms {
        let r = dict.posting_ref(t).map_err(corrupt)?.ok_or_else(|| {
            IndexError::corrupt(seg.path(), crate::format::Corrupt::new(field.name(), 0, "no postings"))
        })?;
        s.records += u64::from(r.count);
        if r.first_start != u64::MAX {
            s.first = s.first.into_iter().chain([r.first_start]).min();
        }
        if r.last_end != 0 {
            s.last = s.last.into_iter().chain([r.last_end]).max();
        }
    }
    Ok(s)
}

fn seen_in(seg: &Segment, lookup: &Lookup) -> Result<Seen, IndexError> {
    let src = side(seg, lookup.fields.0, &lookup.cond)?;
    let Some(dst_field) = lookup.fields.1 else {
        return Ok(Seen {
            records: src.records,
            first_seen: src.first,
            last_seen: src.last,
            ..Seen::default()
        });
    };
    let dst = side(seg, dst_field, &lookup.cond)?;
    // A record with the value on both sides counts once: only then are postings read.
    let records = if src.records == 0 || dst.records == 0 {
        src.records + dst.records
    } else {
        let union = |field: Field, terms: &[usize]| -> Result<RoaringBitmap, IndexError> {
            let column = Column::Field(field);
            let dict = seg.dictionary(column)?.expect("a side with records has a dictionary");
            seg.postings_union(column, &dict, terms)
        };
        (union(lookup.fields.0, &src.terms)? | union(dst_field, &dst.terms)?).len()
    };
    Ok(Seen {
        records,
        as_src: Some(src.records),
        as_dst: Some(dst.records),
        first_seen: src.first.into_iter().chain(dst.first).min(),
        last_seen: src.last.into_iter().chain(dst.last).max(),
    })
}
