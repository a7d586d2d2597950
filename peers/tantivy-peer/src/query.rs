//! Queries, described in JSON ([`Spec`]), run against the index in-process: each once untimed
//! (warming the caches, and giving the answer's size), then `runs` times timed; the median is
//! printed. Records are loaded whole from the document store, since a responder needs them;
//! aggregations read fast fields through tantivy's aggregation collector.

use std::net::{IpAddr, Ipv6Addr};
use std::ops::Bound;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;
use serde_json::json;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::agg_result::{AggregationResult, BucketResult};
use tantivy::aggregation::{AggContextParams, AggregationCollector, AggregationLimitsGuard};
use tantivy::collector::{Count, DocSetCollector};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery};
use tantivy::schema::{FieldType, IndexRecordOption, IntoIpv6Addr, Schema, Value};
use tantivy::{DocAddress, Index, Searcher, TantivyDocument, Term};

/// One query of the file.
#[derive(Deserialize)]
pub struct Spec {
    name: String,
    filter: Clause,
    answer: Answer,
}

/// A filter. Values are text, typed by their field's type in the schema (a number, an address,
/// a word), as a query parser would.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Clause {
    All(Vec<Clause>),
    Any(Vec<Clause>),
    Not(Box<Clause>),
    /// The field has one of the values.
    Term {
        field: String,
        values: Vec<String>,
    },
    /// The field's value is within the inclusive bounds (a missing bound: unbounded).
    Range {
        field: String,
        lo: Option<String>,
        hi: Option<String>,
    },
    /// The address field is in the CIDR block, with the bounds flowdex gives a CIDR.
    Cidr {
        field: String,
        cidr: String,
    },
}

/// What the query returns.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    /// Every matching record, sorted by a number field.
    Records { sort: String, desc: bool },
    /// The count, or per group of `by` the count or the `sum` of a field, largest first, groups
    /// with fewer than `min_count` records left out, the first `limit` kept.
    Stats {
        by: Option<String>,
        sum: Option<String>,
        min_count: Option<u64>,
        limit: Option<u32>,
    },
}

/// What a search may hold for aggregate groups: flowdex's default, so both work in the same room.
const AGG_MEMORY: u64 = flowdex::search::DEFAULT_MEMORY as u64;

/// Runs every query of `queries` against the index `runs` times and prints the medians.
pub fn run(index: &Path, queries: &Path, runs: usize) -> anyhow::Result<()> {
    let specs: Vec<Spec> =
        serde_json::from_slice(&std::fs::read(queries).with_context(|| format!("{}: reading", queries.display()))?)
            .with_context(|| format!("{}: not a JSON array of queries", queries.display()))?;
    let mut index = Index::open_in_dir(index).with_context(|| format!("{}: opening", index.display()))?;
    // Segments are searched in parallel, one thread per core, as flowdex and DuckDB use every core.
    index.set_multithread_executor(threads())?;
    let searcher = index.reader()?.searcher();
    for spec in &specs {
        let once = || answer(&searcher, spec).with_context(|| spec.name.clone());
        let rows = once()?;
        let matched = searcher.search(&*filter(searcher.schema(), &spec.filter)?, &Count)?;
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            std::hint::black_box(once()?);
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "{:.6} s  {rows} rows  {matched} matched  {}",
            times[runs / 2].as_secs_f64(),
            spec.name
        );
    }
    Ok(())
}

/// Answers one query from its description; returns the number of records or rows.
fn answer(searcher: &Searcher, spec: &Spec) -> anyhow::Result<usize> {
    let schema = searcher.schema();
    let query = filter(schema, &spec.filter)?;
    match &spec.answer {
        Answer::Records { sort, desc } => {
            let key = schema.get_field(sort)?;
            let mut docs = load(
                searcher,
                searcher.search(&*query, &DocSetCollector)?.into_iter().collect(),
            )?;
            docs.sort_by_cached_key(|d| d.get_first(key).and_then(|v| v.as_u64()));
            if *desc {
                docs.reverse();
            }
            Ok(docs.len())
        }
        Answer::Stats {
            by: None, sum: None, ..
        } => {
            std::hint::black_box(searcher.search(&*query, &Count)?);
            Ok(1)
        }
        Answer::Stats {
            by: None, sum: Some(_), ..
        } => bail!("a sum needs a group (`by`)"),
        Answer::Stats {
            by: Some(by),
            sum,
            min_count,
            limit,
        } => {
            let order = if sum.is_some() {
                json!({ "value": "desc" })
            } else {
                json!({ "_count": "desc" })
            };
            let terms = json!({
                "field": by,
                "size": limit.unwrap_or(u32::MAX),
                // Every group of every segment goes to the merge: tantivy's default keeps each
                // segment's top 10 × size, which can drop a group whose total makes the top.
                "segment_size": u32::MAX,
                "min_doc_count": min_count.unwrap_or(1),
                "order": order,
            });
            let mut request = json!({ "groups": { "terms": terms } });
            if let Some(field) = sum {
                request["groups"]["aggs"] = json!({ "value": { "sum": { "field": field } } });
            }
            let aggs: Aggregations = serde_json::from_value(request)?;
            let context = AggContextParams {
                limits: AggregationLimitsGuard::new(Some(AGG_MEMORY), Some(u32::MAX)),
                ..AggContextParams::default()
            };
            let results = searcher.search(&*query, &AggregationCollector::from_aggs(aggs, context))?;
            match results.0.get("groups") {
                Some(AggregationResult::BucketResult(BucketResult::Terms { buckets, .. })) => Ok(buckets.len()),
                _ => Err(anyhow!("the terms aggregation gave no buckets")),
            }
        }
    }
}

/// Loads the documents at `addresses` from the store, in index order, one thread per core;
/// each thread reads its own run of documents with its own store reader, so that the block
/// caches do not contend.
fn load(searcher: &Searcher, mut addresses: Vec<DocAddress>) -> anyhow::Result<Vec<TantivyDocument>> {
    addresses.sort_unstable();
    let per_thread = addresses.len().div_ceil(threads()).max(1);
    let parts: Vec<Vec<TantivyDocument>> = std::thread::scope(|s| {
        let handles: Vec<_> = addresses
            .chunks(per_thread)
            .map(|part| s.spawn(move || load_run(searcher, part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a loading thread panicked"))
            .collect::<anyhow::Result<_>>()
    })?;
    Ok(parts.concat())
}

/// Blocks a store reader caches: tantivy's own default for a searcher.
const STORE_CACHE_BLOCKS: usize = 100;

fn load_run(searcher: &Searcher, addresses: &[DocAddress]) -> anyhow::Result<Vec<TantivyDocument>> {
    let mut docs = Vec::with_capacity(addresses.len());
    let mut store = None;
    for a in addresses {
        let reader = match &store {
            Some((ord, reader)) if *ord == a.segment_ord => reader,
            _ => {
                let reader = searcher
                    .segment_reader(a.segment_ord)
                    .get_store_reader(STORE_CACHE_BLOCKS)?;
                &store.insert((a.segment_ord, reader)).1
            }
        };
        docs.push(reader.get(a.doc_id)?);
    }
    Ok(docs)
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The tantivy query of a clause.
fn filter(schema: &Schema, clause: &Clause) -> anyhow::Result<Box<dyn Query>> {
    Ok(match clause {
        Clause::All(parts) => {
            let mut clauses = Vec::with_capacity(parts.len() + 1);
            for p in parts {
                clauses.push(match p {
                    Clause::Not(inner) => (Occur::MustNot, filter(schema, inner)?),
                    p => (Occur::Must, filter(schema, p)?),
                });
            }
            // Tantivy matches nothing with only exclusions: they exclude from everything here.
            if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
                clauses.push((Occur::Must, Box::new(AllQuery)));
            }
            Box::new(BooleanQuery::new(clauses))
        }
        Clause::Any(parts) => Box::new(BooleanQuery::new(
            parts
                .iter()
                .map(|p| Ok((Occur::Should, filter(schema, p)?)))
                .collect::<anyhow::Result<_>>()?,
        )),
        Clause::Not(inner) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, Box::new(AllQuery)),
            (Occur::MustNot, filter(schema, inner)?),
        ])),
        Clause::Term { field, values } => {
            let terms = values
                .iter()
                .map(|v| term(schema, field, v))
                .collect::<anyhow::Result<Vec<_>>>()?;
            match terms.as_slice() {
                [one] => Box::new(TermQuery::new(one.clone(), IndexRecordOption::Basic)),
                _ => Box::new(TermSetQuery::new(terms)),
            }
        }
        Clause::Range { field, lo, hi } => {
            let bound = |v: &Option<String>| match v {
                Some(v) => term(schema, field, v).map(Bound::Included),
                None => Ok(Bound::Unbounded),
            };
            Box::new(RangeQuery::new(bound(lo)?, bound(hi)?))
        }
        Clause::Cidr { field, cidr } => {
            let (lo, hi) =
                flowdex::query::ip_range(cidr).ok_or_else(|| anyhow!("`{cidr}` is not an address or CIDR"))?;
            let field = schema.get_field(field)?;
            let bound = |b: [u8; 16]| Bound::Included(Term::from_field_ip_addr(field, Ipv6Addr::from(b)));
            Box::new(RangeQuery::new(bound(lo), bound(hi)))
        }
    })
}

/// The term of a value written as text, typed by the field's schema type.
fn term(schema: &Schema, name: &str, text: &str) -> anyhow::Result<Term> {
    let field = schema.get_field(name)?;
    Ok(match schema.get_field_entry(field).field_type() {
        FieldType::U64(_) => Term::from_field_u64(field, text.parse().with_context(|| format!("{name}: `{text}`"))?),
        FieldType::IpAddr(_) => Term::from_field_ip_addr(
            field,
            text.parse::<IpAddr>()
                .with_context(|| format!("{name}: `{text}`"))?
                .into_ipv6_addr(),
        ),
        FieldType::Str(_) => Term::from_field_text(field, text),
        other => bail!(
            "{name}: a {:?} field; this peer makes only u64, IP and string fields",
            other.value_type()
        ),
    })
}
