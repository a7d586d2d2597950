//! The searcher against an independent oracle: a linear scan over the records the reader parses
//! (no index) evaluates the same queries. Random corpora, random queries: fields present and
//! absent, values present and absent, CIDRs, lists, negations, time windows, patterns, stats.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{build, fixture, read_with, Collected};
use flowdex::agg;
use flowdex::input::ReadOptions;
use flowdex::query;
use flowdex::read::Index;
use flowdex::record::{Field, FieldKind, FlowRecord, Value};
use flowdex::search::{self, Answer};

/// A small deterministic generator (xorshift), so a failing case can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

const FIELDS: &[Field] = &[
    Field::Srcaddr,
    Field::Dstaddr,
    Field::PktSrcaddr,
    Field::Srcport,
    Field::Dstport,
    Field::Protocol,
    Field::Action,
    Field::LogStatus,
    Field::InterfaceId,
    Field::InstanceId,
    Field::SubnetId,
    Field::VpcId,
    Field::AccountId,
    Field::TcpFlags,
    Field::FlowDirection,
    Field::TrafficPath,
    Field::Type,
    Field::Bytes,
    Field::Packets,
    Field::Start,
    Field::Region,
    Field::AzId,
];

fn literal(v: Value<'_>) -> String {
    match v {
        Value::Str(s) => format!("\"{s}\""),
        v => v.to_string(),
    }
}

/// A random filter expression over values seen in `records` (and some never seen).
fn random_filter(rng: &mut Rng, records: &[&FlowRecord], depth: u32) -> String {
    if depth > 0 && rng.below(3) == 0 {
        let a = random_filter(rng, records, depth - 1);
        let b = random_filter(rng, records, depth - 1);
        return match rng.below(3) {
            0 => format!("({a}) and ({b})"),
            1 => format!("({a}) or ({b})"),
            _ => format!("not ({a})"),
        };
    }
    let field = *rng.pick(FIELDS);
    let r = records[rng.below(records.len())];
    let name = if rng.below(2) == 0 {
        field.key().to_owned()
    } else {
        field.name().to_owned()
    };
    // `-` is no value: some records lack the field, the others have one.
    match rng.below(16) {
        0 => return format!("{name} != -"),
        1 => return format!("{name} = -"),
        _ => {}
    }
    let Some(v) = r.get(field) else {
        return match field.kind() {
            FieldKind::Ip => format!("{name} = 192.0.2.254"),
            // In range for the field (253 for a byte: an experimental protocol number).
            FieldKind::UInt => format!("{name} = {}", field.max_number().map_or(4242, |max| max.min(4244) - 2)),
            FieldKind::Text => format!("{name} = \"absent-value\""),
            FieldKind::Enum => "action = REJECT".to_owned(),
        };
    };
    match (field.kind(), rng.below(8)) {
        (FieldKind::Ip, 0) => {
            let s = v.to_string();
            match s.rsplit_once('.') {
                Some((net, _)) if !s.contains(':') => format!("{name} = {net}.0/{}", *rng.pick(&[24, 16, 8, 30])),
                _ => format!("{name} = {s}"),
            }
        }
        (FieldKind::Ip, 1) => format!("{} = {v}", rng.pick(&["addr", "any_addr"])),
        (FieldKind::UInt, 0) => format!("{name} > {v}"),
        (FieldKind::UInt, 1) => format!("{name} <= {v}"),
        (FieldKind::UInt, 2) if matches!(v, Value::UInt(n) if n <= u64::from(u16::MAX)) => format!("port = {v}"),
        (FieldKind::UInt, 3) => format!("{name} != {v}"),
        (_, 4) => {
            let other = records[rng.below(records.len())]
                .get(field)
                .map_or_else(|| literal(v), literal);
            format!("{name} in ({}, {other})", literal(v))
        }
        (FieldKind::Text | FieldKind::Ip, 5) => {
            let s = v.to_string();
            let anchor = if rng.below(2) == 0 { "^" } else { "" };
            format!("{name} like /{anchor}{}/", regex::escape(&s[..s.len().min(4)]))
        }
        (_, 5) if field == Field::Start => {
            let instant = flowdex::time::format_rfc3339(r.start.unwrap_or(0) as i64);
            // An instant, or its whole day: a day's window cuts every interface's run of
            // records, so its edge blocks hold records on both sides of it.
            match rng.below(2) {
                0 => format!("time = {instant}"),
                _ => format!("time = {}", &instant[..10]),
            }
        }
        // Negations, answered from postings: records with a value, less those matching.
        (FieldKind::Ip, 6) => format!("{} != {v}", rng.pick(&[name.as_str(), "addr"])),
        (_, 6) => format!("{name} != {}", literal(v)),
        (FieldKind::Text | FieldKind::Ip, 7) if rng.below(2) == 0 => {
            let s = v.to_string();
            format!("{name} not like /^{}/", regex::escape(&s[..s.len().min(3)]))
        }
        (_, 7) => {
            let other = records[rng.below(records.len())]
                .get(field)
                .map_or_else(|| literal(v), literal);
            format!("{name} not in ({}, {other})", literal(v))
        }
        _ => format!("{name} = {}", literal(v)),
    }
}

fn random_query(rng: &mut Rng, records: &[&FlowRecord]) -> String {
    let filter = random_filter(rng, records, 2);
    match rng.below(7) {
        0 => format!("{filter} | stats count() as n by srcaddr | sort n desc | limit 5"),
        6 => format!("{filter} | stats count() as n, sum(bytes) as b by dstport | filter n > 1 or not b >= 500 | sort b desc, n | limit 4"),
        5 => format!("{filter} | stats sum(bytes) as b, min(start), max(packets), avg(bytes), count(srcport) by action, interface_id, bin(1h)"),
        1 => format!("filter {filter} | stats sum(bytes) as b, count_distinct(dstport) as d, min(start), max(packets), avg(bytes) by action, bin(1h)"),
        2 => format!("{filter} | stats count()"),
        3 => format!("fields srcaddr, dstport | filter {filter} | sort bytes desc | limit 7"),
        _ => filter,
    }
}

/// The oracle: the same bound query answered by a linear scan over the reader's records.
fn oracle(bound: &query::Bound, read: &Collected) -> Answer {
    let mut hits: Vec<flowdex::exec::Hit> = read
        .records
        .iter()
        .filter(|(_, r, _)| bound.filter.matches(r))
        .map(|(name, r, _)| flowdex::exec::Hit {
            record: Box::new(r.clone()),
            source: std::sync::Arc::new(flowdex::format::sources::SourceLabel {
                id: 0,
                name: name.clone(),
                error: None,
            }),
            // A scan has no place in an index; `same` does not compare it.
            at: flowdex::read::RecordAt {
                segment: u32::MAX,
                block: 0,
                offset: 0,
            },
        })
        .collect();
    hits.sort_by(search::output_order);
    let mut fields = None;
    for stage in &bound.records {
        match stage {
            query::RecordStage::Filter(f) => hits.retain(|h| f.matches(&h.record)),
            query::RecordStage::Fields(f) => fields = Some(f.clone()),
            query::RecordStage::Sort(keys) => {
                // A stable sort on the keys keeps the (time, source, line) order within ties.
                hits.sort_by(|a, b| {
                    keys.iter()
                        .map(|(f, desc)| {
                            let o = a.record.get(*f).cmp(&b.record.get(*f));
                            if *desc {
                                o.reverse()
                            } else {
                                o
                            }
                        })
                        .find(|o| o.is_ne())
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
            }
            query::RecordStage::Limit(n) => hits.truncate(*n as usize),
            query::RecordStage::Dedup(_) => unreachable!("not generated"),
        }
    }
    match &bound.stats {
        None => Answer::Records { hits, fields },
        Some((by, aggs)) => {
            let mut rows = agg::aggregate(hits.iter().map(|h| &*h.record), by, aggs);
            agg::apply(&mut rows, &bound.rows);
            Answer::Rows(rows)
        }
    }
}

fn same(a: &Answer, b: &Answer) -> bool {
    match (a, b) {
        (Answer::Records { hits: x, fields: fx }, Answer::Records { hits: y, fields: fy }) => {
            fx == fy
                && x.len() == y.len()
                && x.iter().zip(y).all(|(p, q)| {
                    let mut pr = p.record.clone();
                    pr.provenance.source = q.record.provenance.source;
                    p.source.name == q.source.name && pr == q.record
                })
        }
        (Answer::Rows(x), Answer::Rows(y)) => x == y,
        _ => false,
    }
}

fn check_corpus(paths: &[PathBuf], seed: u64, queries: usize) {
    let dir = tempfile::tempdir().unwrap();
    let options = ReadOptions::default();
    build(dir.path(), paths, &options, 2);
    let index = Index::open(dir.path()).unwrap();
    let read = read_with(paths, &options).without_duplicate_sources();
    let records: Vec<&FlowRecord> = read.records.iter().map(|(_, r, _)| r).collect();
    let raw: std::collections::HashMap<(String, u64), &Vec<u8>> = read
        .records
        .iter()
        .map(|(n, r, l)| ((n.clone(), r.provenance.line), l))
        .collect();
    let mut rng = Rng(seed | 1);
    let (mut nonempty, mut sliced, mut several) = (0, 0, 0);
    for i in 0..queries {
        let text = random_query(&mut rng, &records);
        let parsed = query::parse(&text, &|_| Ok(String::new())).unwrap_or_else(|e| panic!("#{i} {text}: {e}"));
        let bound = query::bind(&parsed, &text).unwrap_or_else(|e| panic!("#{i} {text}: {e}"));
        let got = search::run(&index, &bound).unwrap();
        let want = oracle(&bound, &read);
        assert!(
            same(&got, &want),
            "seed {seed} query #{i}: {text}\n index:  {got:?}\n oracle: {want:?}"
        );
        nonempty += usize::from(!want.is_empty());
        // Handed out in slices of time (room for 40 records), the records are the oracle's too;
        // unless one second holds more than that, which is refused.
        if search::answers_in_batches(&bound) {
            let (mut batches, mut count) = (Vec::new(), 0);
            let room = 40 * flowdex::exec::RECORD_BYTES as usize;
            match search::records_in_batches(&index, &bound, room, &flowdex::exec::Keeper::records(), &mut |hits| {
                batches.append(hits);
                count += 1;
                Ok(())
            }) {
                Ok(()) => {
                    let got = Answer::Records {
                        hits: batches,
                        fields: search::shown_fields(&bound),
                    };
                    assert!(
                        same(&got, &want),
                        "seed {seed} query #{i} in slices: {text}\n index:  {got:?}\n oracle: {want:?}"
                    );
                    sliced += 1;
                    several += usize::from(count > 1);
                }
                Err(
                    flowdex::exec::SearchError::TooManyRecords { .. }
                    | flowdex::exec::SearchError::TooManyToSlice { .. },
                ) => {}
                Err(e) => panic!("#{i} {text}: {e}"),
            }
        }
        // Each hit's place in the index leads to its original line (`--format raw`).
        if let Answer::Records { hits, .. } = &got {
            let at: Vec<_> = hits.iter().map(|h| h.at).collect();
            for (h, l) in hits.iter().zip(index.original_lines(&at).unwrap()) {
                assert_eq!(
                    *raw[&(h.source.name.clone(), h.record.provenance.line)],
                    l,
                    "#{i} {text}"
                );
            }
        }
    }
    assert!(
        nonempty * 3 > queries,
        "too few queries matched anything ({nonempty}/{queries})"
    );
    assert!(
        sliced >= 10 && several >= 3,
        "too few queries compared in slices ({sliced}, {several} in several)"
    );
}

/// Aggregations over a time window check the times of the blocks at its edges only, and
/// of some of those only the starts (`exec::columns`): windows at random instants and whole
/// days, over a corpus whose records are in time order by interface, against the oracle.
#[test]
fn windowed_aggregations_agree_with_a_linear_scan_at_every_edge() {
    let corpus = common::synth_corpus(30_000, 3, 43, "v5");
    let paths = [corpus.path().to_path_buf()];
    let dir = tempfile::tempdir().unwrap();
    let options = ReadOptions::default();
    build(dir.path(), &paths, &options, 2);
    let index = Index::open(dir.path()).unwrap();
    let read = read_with(&paths, &options).without_duplicate_sources();
    let starts: Vec<u64> = read.records.iter().filter_map(|(_, r, _)| r.start).collect();
    let mut rng = Rng(43);
    let mut texts = Vec::new();
    for _ in 0..12 {
        let (a, b) = (starts[rng.below(starts.len())], starts[rng.below(starts.len())]);
        let (lo, hi) = (a.min(b), a.max(b));
        let day = &flowdex::time::format_rfc3339(a as i64)[..10];
        texts.push(format!(
            "time >= {lo} and time <= {hi} | stats count() as n, sum(bytes) as b by srcaddr | sort n desc, b | limit 8"
        ));
        texts.push(format!(
            "time = {day} and action = ACCEPT | stats count(), sum(bytes), min(start), max(end) by dstport"
        ));
        texts.push(format!("time <= {hi} | stats count() by action"));
        // Counted apart from aggregations: from postings, time columns or records.
        texts.push(format!(
            "time >= {lo} and time <= {hi} and action = ACCEPT | stats count()"
        ));
        texts.push(format!("time = {day} | stats count() as n"));
        texts.push(format!("time != {day} | stats count()"));
        let other_day = &flowdex::time::format_rfc3339(b as i64)[..10];
        texts.push(format!("(time = {day} or time = {other_day}) | stats count()"));
    }
    for text in texts {
        let parsed = query::parse(&text, &|_| Ok(String::new())).unwrap();
        let bound = query::bind(&parsed, &text).unwrap();
        let got = search::run(&index, &bound).unwrap();
        let want = oracle(&bound, &read);
        assert!(!want.is_empty(), "{text}: nothing to compare");
        assert!(same(&got, &want), "{text}\n index:  {got:?}\n oracle: {want:?}");
    }
}

/// A synthetic v5 corpus of 30,000 records over three days and its index, built on one thread
/// (a segment or two of many blocks).
fn three_days_on_one_thread(seed: u64) -> (tempfile::TempDir, tempfile::TempDir, Index) {
    let corpus = common::synth_corpus(30_000, 3, seed, "v5");
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &[corpus.path().to_path_buf()], &ReadOptions::default(), 1);
    let index = Index::open(dir.path()).unwrap();
    (corpus, dir, index)
}

/// An aggregation scans a segment holding more than its share of the candidates in parts, a
/// thread each: the parts are the candidates exactly, apart, in order and cut between blocks.
#[test]
fn a_segment_with_many_candidates_is_cut_into_parts_between_blocks() {
    let (_corpus, _dir, index) = three_days_on_one_thread(43);
    let text = "action = ACCEPT and time >= 2024-04-01T06:00:00Z";
    let bound = query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
    let filter = flowdex::exec::ColumnFilter::new(&bound.filter).expect("postings and a window");
    let mut split = false;
    for seg in index.segments() {
        let ids = flowdex::exec::candidates_of(seg, &filter).unwrap();
        let share = ids.len() / 5 + 1;
        let parts = flowdex::exec::split_at_blocks(seg, ids.clone(), share).unwrap();
        split |= parts.len() > 1;
        let starts: BTreeSet<u32> = seg.blocks().unwrap().iter().map(|b| b.first_record).collect();
        let mut union = roaring::RoaringBitmap::new();
        for (k, part) in parts.iter().enumerate() {
            assert!(!part.is_empty());
            assert!(
                union.max() < part.min(),
                "parts {} and {k} overlap or are out of order",
                k - 1
            );
            if k > 0 {
                // The first block a part reads starts it: no block is read by two parts.
                let first = *starts.range(..=part.min().unwrap()).next_back().unwrap();
                assert!(union.max().unwrap() < first, "part {k} begins inside a block");
            }
            assert!(
                part.len() <= share + 1024,
                "part {k} holds {} of a share of {share}",
                part.len()
            );
            union |= part;
        }
        assert_eq!(union, ids);
    }
    assert!(split, "some segment was cut");
}

/// With more threads than segments, each segment is scanned in parts whose groups merge by
/// raw key before their keys are resolved: the answers are the linear scan's, for keys of terms,
/// numbers, enums, time bins and nulls.
#[test]
fn parts_of_a_segment_merge_their_groups_like_a_linear_scan() {
    let (corpus, _dir, index) = three_days_on_one_thread(47);
    assert!(index.segments().len() < 4, "{} segments", index.segments().len());
    let read = read_with(&[corpus.path().to_path_buf()], &ReadOptions::default()).without_duplicate_sources();
    // Every record is a candidate of the first query: a quarter share each cuts a segment.
    let records: u64 = index.segments().iter().map(|s| s.record_count()).sum();
    let cut = index.segments().iter().any(|seg| {
        let all = roaring::RoaringBitmap::from_iter(0..seg.record_count() as u32);
        flowdex::exec::split_at_blocks(seg, all, records.div_ceil(4))
            .unwrap()
            .len()
            > 1
    });
    assert!(cut, "no segment is scanned in parts");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    for text in [
        "stats count() as n, sum(bytes) as b, min(bytes), max(packets), avg(bytes) by srcaddr",
        "action = ACCEPT | stats count() by dstport, bin(1h)",
        "stats sum(bytes) by flow_direction, pkt_srcaddr",
        "time >= 2024-04-01T06:00:00Z | stats count() by tcp_flags",
    ] {
        let bound = query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
        let got = pool.install(|| search::run(&index, &bound)).unwrap();
        let want = oracle(&bound, &read);
        assert!(!want.is_empty(), "{text}: nothing to compare");
        assert!(same(&got, &want), "{text}\n index:  {got:?}\n oracle: {want:?}");
    }
}

#[test]
fn an_index_opened_for_a_window_answers_like_the_whole_index() {
    let corpus = common::synth_corpus(30_000, 6, 41, "v5");
    let dir = tempfile::tempdir().unwrap();
    // A small budget: many segments, each covering part of the six days.
    common::build_within(
        dir.path(),
        &[corpus.path().to_path_buf()],
        &ReadOptions::default(),
        2,
        2 << 20,
    );
    let whole = Index::open(dir.path()).unwrap();
    let first = whole
        .manifest()
        .segments
        .iter()
        .filter_map(|s| s.min_start)
        .min()
        .unwrap();
    let mut fewer = 0;
    for hours in [0u64, 7, 30, 61, 100, 143] {
        let t = flowdex::time::format_rfc3339((first + hours * 3600) as i64);
        let day = &t[..10];
        for text in [
            format!("time = {day}"),
            format!(
                "time = {day} and action = REJECT | stats count() as n, sum(bytes) by srcaddr | sort n desc | limit 5"
            ),
            format!("time >= {t} and dstport = 443"),
            format!("time <= {t} | stats count() by action"),
        ] {
            let parsed = query::parse(&text, &|_| Ok(String::new())).unwrap();
            let bound = query::bind(&parsed, &text).unwrap();
            let window = flowdex::coverage::searched_window(&bound.filter).expect("a window");
            let part = Index::open_window(dir.path(), window).unwrap();
            fewer += usize::from(part.segments().len() < whole.segments().len());
            assert_eq!(part.segments().len(), part.segment_metas().len());
            let (got, want) = (
                search::run(&part, &bound).unwrap(),
                search::run(&whole, &bound).unwrap(),
            );
            assert!(same(&got, &want), "{text}\n window: {got:?}\n whole: {want:?}");
        }
    }
    assert!(
        whole.segments().len() > 3 && fewer > 10,
        "{} segments, {fewer} windows opened fewer",
        whole.segments().len()
    );
}

#[test]
fn random_queries_on_synthetic_corpora_agree_with_a_linear_scan() {
    for (seed, format) in [(11u64, "v5"), (12, "v3"), (13, "v11")] {
        let corpus = common::synth_corpus(8000, 2, seed, format);
        check_corpus(&[corpus.path().to_path_buf()], seed, 200);
    }
}

#[test]
fn random_queries_on_the_fixtures_agree_with_a_linear_scan() {
    let mut paths = vec![fixture("")];
    paths.extend(common::real_fixtures());
    check_corpus(&paths, 99, 300);
}

fn samples_index() -> (tempfile::TempDir, Index) {
    let dir = tempfile::tempdir().unwrap();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    build(dir.path(), &[samples], &ReadOptions::default(), 2);
    let index = Index::open(dir.path()).unwrap();
    (dir, index)
}

fn run(index: &Index, text: &str) -> Answer {
    let parsed = query::parse(text, &|_| Ok(String::new())).unwrap();
    search::run(index, &query::bind(&parsed, text).unwrap()).unwrap()
}

#[test]
fn the_aws_insights_queries_run_on_the_samples() {
    let (_dir, index) = samples_index();
    for text in [
        "fields srcaddr, dstaddr, dstport, action, bytes\n| filter action = \"REJECT\"\n| stats sum(bytes) as total_bytes by srcaddr, dstaddr\n| sort total_bytes desc\n| limit 20",
        "fields srcaddr, dstaddr, bytes\n| filter dstport = 443 and action = \"ACCEPT\"\n| stats sum(bytes) as total_bytes by srcaddr\n| sort total_bytes desc\n| limit 10",
        "fields srcaddr, dstaddr, dstport, bytes\n| filter flow_direction = \"egress\"\n  and not srcaddr like /^10\\./\n  and not srcaddr like /^172\\.1[6-9]\\./\n  and not srcaddr like /^192\\.168\\./\n| stats sum(bytes) as total_bytes by dstaddr\n| sort total_bytes desc",
    ] {
        let Answer::Rows(rows) = run(&index, text) else { panic!("{text}") };
        assert!(!rows.rows.is_empty(), "{text}");
        let sums: Vec<f64> = rows.rows.iter().map(|r| match r.last() { Some(agg::Cell::Int(n)) => *n as f64, _ => 0.0 }).collect();
        assert!(sums.windows(2).all(|w| w[0] >= w[1]), "{text}: sorted descending");
    }
}

#[test]
fn the_injected_port_scan_is_found_as_truth_json_describes_it() {
    let (_dir, index) = samples_index();
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/truth.json")).unwrap(),
    )
    .unwrap();
    let scan = truth["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "port-scan")
        .expect("a port scan in truth.json");
    let day = scan["first_start"].as_str().unwrap()[..10].to_owned();
    let text = format!("tcp_flags = 2 and action = REJECT and time = {day} | stats count() as syn_count by srcaddr | filter syn_count > 100 | sort syn_count desc");
    let Answer::Rows(rows) = run(&index, &text) else {
        panic!()
    };
    assert_eq!(
        rows.rows[0][0],
        agg::Cell::Ip(scan["src"].as_str().unwrap().parse().unwrap()),
        "{rows:?}"
    );
    let Answer::Records { hits, .. } = run(&index, &format!("srcaddr = {}", scan["src"].as_str().unwrap())) else {
        panic!()
    };
    assert_eq!(hits.len() as u64, scan["records"].as_u64().unwrap());
    let ports: BTreeSet<u16> = hits.iter().filter_map(|h| h.record.dstport).collect();
    assert_eq!(ports.len() as u64, scan["distinct_dst_ports"].as_u64().unwrap());
}

#[test]
fn a_search_refuses_to_hold_more_records_than_its_limit() {
    let (_dir, index) = samples_index();
    let parsed = query::parse("action = ACCEPT", &|_| Ok(String::new())).unwrap();
    let bound = query::bind(&parsed, "action = ACCEPT").unwrap();
    let err = flowdex::exec::records(
        &index,
        &bound.filter,
        None,
        &flowdex::exec::Keeper::records(),
        100,
        None,
    )
    .unwrap_err();
    assert!(
        matches!(err, flowdex::exec::SearchError::TooManyRecords { limit: 100, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("stats"), "{err}");
    // An inexact filter (a zone-map range) stops while decoding.
    let parsed = query::parse("bytes > 0", &|_| Ok(String::new())).unwrap();
    let bound = query::bind(&parsed, "bytes > 0").unwrap();
    assert!(flowdex::exec::records(
        &index,
        &bound.filter,
        None,
        &flowdex::exec::Keeper::records(),
        100,
        None
    )
    .is_err());
}

#[test]
fn a_search_stays_within_its_memory_or_says_so() {
    let (_dir, index) = samples_index();
    let bind = |text: &str| query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
    // Groups by three keys: one per flow, nearly. 64 KiB holds a few hundred.
    let wide = bind("stats count() as n, count_distinct(dstport) as d by srcaddr, dstaddr, srcport");
    let err = search::run_within(&index, &wide, 64 << 10).unwrap_err();
    assert!(
        matches!(err, flowdex::exec::SearchError::TooManyGroups { limit } if limit == 64 << 10),
        "{err}"
    );
    assert!(err.to_string().contains("--memory"), "{err}");
    // With room it answers, and the same as without a limit.
    let roomy = search::run_within(&index, &wide, 256 << 20).unwrap();
    assert!(same(&roomy, &search::run(&index, &wide).unwrap()));
    // Records are held within the budget too.
    let all = bind("action = ACCEPT");
    let err = search::run_within(&index, &all, 1 << 20).unwrap_err();
    assert!(
        matches!(err, flowdex::exec::SearchError::TooManyRecords { .. }),
        "{err}"
    );
    // The command says so and exits 2.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args([
            "search",
            _dir.path().to_str().unwrap(),
            "stats count() by srcaddr, dstaddr, srcport",
            "--memory",
            "64K",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("raise --memory"));
}

/// A `limit` above a segment's share of memory (each thread may hold a sixth of it) still
/// gives the first records, as with room to spare, on segments read at once by two threads;
/// and so does one whose threads could not each hold half again the limit.
#[test]
fn a_limit_above_a_segments_share_of_memory_gives_the_first_records() {
    let dir = tempfile::tempdir().unwrap();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    common::build_within(dir.path(), &[samples], &ReadOptions::default(), 2, 4 << 20);
    let index = Index::open(dir.path()).unwrap();
    assert!(index.segments().len() >= 4, "{}", index.segments().len());
    let bind = |text: &str| query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    // Room for 12,000 held records (a share of 2,000, below the limit), and for 7,000 (two
    // threads with half again 3,000 each and the answer's 3,000 would not fit).
    for held in [12_000, 7_000] {
        let memory = held * flowdex::exec::RECORD_BYTES as usize;
        for text in [
            "sort bytes desc | limit 3000",
            "limit 3000",
            "action = ACCEPT | sort start desc, srcport | limit 2500",
        ] {
            let q = bind(text);
            let tight = pool.install(|| search::run_within(&index, &q, memory)).unwrap();
            assert!(same(&tight, &search::run(&index, &q).unwrap()), "{held}: {text}");
        }
    }
}

#[test]
fn an_aggregation_needs_the_memory_of_its_groups_however_many_segments_hold_them() {
    // 200 sources, in turn, in each of 40 files: every segment holds every group.
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    for file in 0..40u32 {
        let mut text = String::from("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n");
        for i in file * 1000..(file + 1) * 1000 {
            let (g, t) = (i % 200, 1_714_000_000 + i);
            text += &format!(
                "2 123456789012 eni-1 10.0.0.{g} 10.9.9.9 443 {} 6 1 {i} {t} {t} ACCEPT OK\n",
                1024 + i
            );
        }
        std::fs::write(logs.join(format!("{file:02}.log")), text).unwrap();
    }
    let index_dir = dir.path().join("idx");
    common::build_within(&index_dir, &[logs], &ReadOptions::default(), 2, 1 << 20);
    let index = Index::open(&index_dir).unwrap();
    let segments = index.segments().len();
    assert!(segments >= 10, "{segments} segments");
    let text = "stats count() as n, sum(bytes) as b by srcaddr";
    let q = query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
    let roomy = search::run(&index, &q).unwrap();
    let Answer::Rows(rows) = &roomy else { panic!("rows") };
    assert_eq!(rows.rows.len(), 200);
    // Each thread keeps a total of the groups it merged: with two, 3 KB a group is several
    // times what the groups cost, and less than their copies in ten segments would take.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let within = pool.install(|| search::run_within(&index, &q, 200 * 3 * 1024)).unwrap();
    assert!(same(&within, &roomy));
}

#[test]
fn an_answer_larger_than_memory_comes_out_whole_in_slices_of_time() {
    // Records over a few minutes, several per second, some without a start (they come first),
    // from two sources so that ties in time are broken by source and line.
    let dir = tempfile::tempdir().unwrap();
    let header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n";
    for (name, offset) in [("a.log", 0u64), ("b.log", 1)] {
        let mut text = String::from(header);
        for i in 0..300u64 {
            let start = if i % 37 == 5 {
                "-".to_string()
            } else {
                (1_700_000_000 + (i * 7 + offset) % 90).to_string()
            };
            text += &format!(
                "2 123456789012 eni-{} 10.0.0.{} 10.0.1.1 {} 443 6 1 100 {start} 1700000200 ACCEPT OK\n",
                i % 3,
                i % 50,
                40000 + i
            );
        }
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    // A burst in one second, to one host: more than some memories hold.
    let mut burst = String::from(header);
    for i in 0..40 {
        burst += &format!(
            "2 123456789012 eni-9 10.0.3.3 10.0.2.2 {} 443 6 1 10 1700000050 1700000051 REJECT OK\n",
            30000 + i
        );
    }
    std::fs::write(dir.path().join("c.log"), burst).unwrap();
    let idx = tempfile::tempdir().unwrap();
    build(idx.path(), &[dir.path().to_path_buf()], &ReadOptions::default(), 1);
    let index = Index::open(idx.path()).unwrap();
    let key = |h: &flowdex::exec::Hit| (h.source.name.clone(), h.record.provenance.line, h.record.start);
    for text in [
        "dstaddr = 10.0.1.1",
        "srcaddr = 10.0.0.0/28 | fields srcaddr, start",
        "bytes > 50",
    ] {
        let bound = query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
        assert!(search::answers_in_batches(&bound));
        let Answer::Records { hits: whole, .. } = search::run(&index, &bound).unwrap() else {
            panic!("records")
        };
        assert!(whole.len() > 100, "{text}: {}", whole.len());
        // Room for 25 records: the answer comes in slices, each within it, in output order.
        let memory = 25 * flowdex::exec::RECORD_BYTES as usize;
        let mut batches = Vec::new();
        search::records_in_batches(&index, &bound, memory, &flowdex::exec::Keeper::records(), &mut |hits| {
            batches.push(std::mem::take(hits));
            Ok(())
        })
        .unwrap();
        assert!(batches.len() > 4, "{text}: {} batches", batches.len());
        assert!(batches.iter().all(|b| b.len() <= 25), "{text}");
        let sliced: Vec<_> = batches.iter().flatten().map(key).collect();
        assert_eq!(sliced, whole.iter().map(key).collect::<Vec<_>>(), "{text}");
        // Ample memory: one batch, the same.
        let mut one = Vec::new();
        search::records_in_batches(
            &index,
            &bound,
            1 << 30,
            &flowdex::exec::Keeper::records(),
            &mut |hits| {
                one.push(hits.len());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(one, [whole.len()], "{text}");
    }
    // A filter the postings do not answer exactly: far more candidates than room, but the
    // matches fit, so they come whole.
    let room = |records: usize| records * flowdex::exec::RECORD_BYTES as usize;
    let text = "bytes > 50 | filter srcport = 40001";
    let bound = query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
    let mut batches = Vec::new();
    search::records_in_batches(
        &index,
        &bound,
        room(25),
        &flowdex::exec::Keeper::records(),
        &mut |hits| {
            batches.push(hits.len());
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(batches, [2]);
    // More records in one second than memory holds: refused before anything is handed out.
    let text = "dstaddr = 10.0.2.2";
    let bound = query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
    for records in [3, 20] {
        let mut handed = 0;
        let err = search::records_in_batches(
            &index,
            &bound,
            room(records),
            &flowdex::exec::Keeper::records(),
            &mut |h| {
                handed += h.len();
                Ok(())
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, flowdex::exec::SearchError::TooManyRecords { sliced: true, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("in one second of its answer"), "{err}");
        assert_eq!(handed, 0);
    }
    // Room for exactly the busiest second's records: the slices take all of it (the sorted
    // starts are freed before), and one record less is refused.
    let text = "dstport = 443";
    let bound = query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
    let Answer::Records { hits: whole, .. } = search::run(&index, &bound).unwrap() else {
        panic!("records")
    };
    let mut per_second = std::collections::HashMap::new();
    for h in whole.iter().filter(|h| h.record.start.is_some()) {
        *per_second.entry(h.record.start).or_insert(0usize) += 1;
    }
    let busiest = *per_second.values().max().unwrap();
    assert!(
        busiest > 40 && whole.len() > 10 * busiest,
        "{busiest} of {}",
        whole.len()
    );
    let mut largest = 0;
    search::records_in_batches(
        &index,
        &bound,
        room(busiest),
        &flowdex::exec::Keeper::records(),
        &mut |h| {
            largest = largest.max(h.len());
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(largest, busiest);
    assert!(search::records_in_batches(
        &index,
        &bound,
        room(busiest - 1),
        &flowdex::exec::Keeper::records(),
        &mut |_| Ok(())
    )
    .is_err());
    // Too little memory to sort the candidates' starts (16 bytes each) and cut slices.
    let text = "bytes > 50";
    let bound = query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
    let err = search::records_in_batches(
        &index,
        &bound,
        1_000,
        &flowdex::exec::Keeper::records(),
        &mut |_| Ok(()),
    )
    .unwrap_err();
    assert!(
        matches!(err, flowdex::exec::SearchError::TooManyToSlice { memory: 1_000, .. }),
        "{err}"
    );
}

#[test]
fn a_limit_reads_blocks_best_first_and_still_gives_the_first_records() {
    // Two builds, one segment each, of two sources: `b.log` of one interface, `a.log` of
    // another, their records twins in times, packets and bytes (2,048 each: two blocks). A
    // segment orders records by interface, so each block holds successive times of one
    // interface (a time-ordered read takes the earlier block of each first), and a twin sits
    // in another block than its first twin while coming before it in output order (its source
    // name is first): a block whose best values tie with the n-th record must be read. Bytes
    // grow with time, so blocks' zone maps of bytes barely overlap; packets spread over all
    // blocks (each holds a 1-packet flow: the order's next key, `start`, decides which blocks
    // to read). Some records of the last minutes have no packets or bytes: a missing value
    // comes first in ascending order, so the blocks holding them, whose zone minima are the
    // largest, must be read first.
    let header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n";
    let idx = tempfile::tempdir().unwrap();
    let inputs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for (segment, dir) in inputs.iter().enumerate() {
        for (name, interface) in [("b.log", 2 * segment), ("a.log", 2 * segment + 1)] {
            let mut text = String::from(header);
            for k in 0..2_048u64 {
                let i = 2_048 * segment as u64 + k;
                let offset = (i * 7_919) % 3_600;
                let start = 1_700_000_000 + offset;
                let (packets, bytes) = if offset >= 3_400 && i.is_multiple_of(5) {
                    ("-".to_owned(), "-".to_owned())
                } else {
                    ((1 + i % 13).to_string(), (40 + 10 * offset + i % 9).to_string())
                };
                text += &format!(
                    "2 123456789012 eni-{interface} 10.0.0.{} 10.0.1.1 {} 443 6 {packets} {bytes} {start} {} {} OK\n",
                    i % 200,
                    1024 + i,
                    start + 60,
                    if i.is_multiple_of(3) { "REJECT" } else { "ACCEPT" },
                );
            }
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        build(idx.path(), &[dir.path().to_path_buf()], &ReadOptions::default(), 1);
    }
    let index = Index::open(idx.path()).unwrap();
    assert_eq!(index.segments().len(), 2);
    assert!(index.segments().iter().map(|s| s.block_count()).sum::<usize>() >= 6);
    // The oracle: a linear scan of the parsed records, sorted and cut.
    let inputs: Vec<PathBuf> = inputs.iter().map(|d| d.path().to_path_buf()).collect();
    let read = read_with(&inputs, &ReadOptions::default());
    for (sort, n) in [
        ("sort bytes", 70),
        ("sort bytes desc", 5),
        ("sort packets", 9),
        ("sort packets desc", 3),
        ("sort start desc", 3),
        ("sort end", 4),
        ("sort bytes desc, start", 20),
        ("action = REJECT | sort bytes desc", 5),
        ("action = REJECT | sort start", 8),
        ("", 1),
        ("", 6),
        ("action = ACCEPT", 11),
    ] {
        let text = if sort.is_empty() {
            format!("limit {n}")
        } else {
            format!("{sort} | limit {n}")
        };
        let bound = query::bind(&query::parse(&text, &|_| Ok(String::new())).unwrap(), &text).unwrap();
        let (got, want) = (search::run(&index, &bound).unwrap(), oracle(&bound, &read));
        assert!(
            matches!(&want, Answer::Records { hits, .. } if hits.len() == n),
            "{text}"
        );
        assert!(same(&got, &want), "{text}\n index: {got:?}\n scan: {want:?}");
    }
}

#[test]
fn sort_then_limit_holds_only_the_first_records_whatever_matches() {
    // 600 records with many ties in bytes and start, from two sources: more than room for 25.
    let dir = tempfile::tempdir().unwrap();
    let header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n";
    for (name, ports) in [("a.log", 40000), ("b.log", 50000)] {
        let mut text = String::from(header);
        for i in 0..300u64 {
            text += &format!(
                "2 123456789012 eni-{} 10.0.0.{} 10.0.1.1 {} 443 6 1 {} {} 1700000200 {} OK\n",
                i % 3,
                i % 50,
                ports + i,
                100 * (i % 7),
                1_700_000_000 + i % 40,
                if i % 5 == 0 { "REJECT" } else { "ACCEPT" },
            );
        }
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let idx = tempfile::tempdir().unwrap();
    build(idx.path(), &[dir.path().to_path_buf()], &ReadOptions::default(), 1);
    let index = Index::open(idx.path()).unwrap();
    let room = 25 * flowdex::exec::RECORD_BYTES as usize;
    let key = |h: &flowdex::exec::Hit| (h.source.name.clone(), h.record.provenance.line);
    // Each answer, held in room for 25 records, is the first records of the same query without
    // its limit (answered with ample room, every match held).
    let answer = |text: &str, memory: usize| {
        let bound = query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
        match search::run_within(&index, &bound, memory).unwrap() {
            Answer::Records { hits, .. } => hits.iter().map(key).collect::<Vec<_>>(),
            Answer::Rows(_) => panic!("records"),
        }
    };
    for (text, unlimited, want) in [
        (
            "dstport = 443 | sort bytes desc | limit 5",
            "dstport = 443 | sort bytes desc",
            5,
        ),
        (
            "dstport = 443 | sort bytes, start desc | limit 12 | fields srcaddr",
            "dstport = 443 | sort bytes, start desc",
            12,
        ),
        (
            "dstport = 443 | filter action = REJECT | sort srcport desc | limit 3",
            "dstport = 443 | filter action = REJECT | sort srcport desc",
            3,
        ),
        ("dstport = 443 | limit 4", "dstport = 443", 4),
        ("dstport = 443 | sort bytes | limit 0", "dstport = 443", 0),
    ] {
        let small = answer(text, room);
        assert_eq!(small.len(), want, "{text}");
        assert_eq!(small, answer(unlimited, 1 << 30)[..want], "{text}");
    }
    // Filters before any limit or dedup drop records as they are decoded: 120 REJECTs fit in
    // room for 150 records where all 600 do not.
    let roomier = 150 * flowdex::exec::RECORD_BYTES as usize;
    let rejects = answer("dstport = 443 | filter action = REJECT | sort srcport desc", roomier);
    assert_eq!(rejects.len(), 120);
    let text = "dstport = 443 | sort srcport desc | filter action = REJECT";
    let bound = query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
    assert_eq!(
        search::run_within(&index, &bound, roomier)
            .map_err(|e| e.to_string())
            .map(|_| ()),
        Ok(()),
        "a filter after a sort runs early too"
    );
    let text = "dstport = 443 | sort srcport desc";
    let bound = query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
    assert!(search::run_within(&index, &bound, roomier).is_err());
    // Without the limit, or with a dedup before it, every match is held: refused.
    for text in [
        "dstport = 443 | sort bytes desc",
        "dstport = 443 | dedup srcaddr | limit 3",
    ] {
        let bound = query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
        let err = search::run_within(&index, &bound, room).unwrap_err();
        assert!(
            matches!(err, flowdex::exec::SearchError::TooManyRecords { .. }),
            "{text}: {err}"
        );
    }
}

#[test]
fn a_keeper_that_reads_some_fields_gets_them_and_the_same_matches() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status vpc-id\n",
    );
    for i in 0..400u64 {
        text += &format!(
            "3 123456789012 eni-{} 10.0.0.{} 10.0.1.{} {} {} 6 1 {} {} 1700000200 ACCEPT OK vpc-{}\n",
            i % 4,
            i % 50,
            i % 7,
            40000 + i,
            [22, 443][i as usize % 2],
            i * 13 % 2000,
            1_700_000_000 + i % 90,
            i % 3,
        );
    }
    std::fs::write(dir.path().join("a.log"), text).unwrap();
    let idx = tempfile::tempdir().unwrap();
    build(idx.path(), &[dir.path().to_path_buf()], &ReadOptions::default(), 1);
    let index = Index::open(idx.path()).unwrap();
    // A filter on `dstport`, a stage on `bytes`, columns `srcaddr` and `vpc_id`.
    let text = "dstport = 443 | fields srcaddr, vpc_id | filter bytes > 700";
    let bound = query::bind(&query::parse(text, &|_| Ok(String::new())).unwrap(), text).unwrap();
    let gather = |fields: Option<flowdex::record::FieldSet>| {
        let keeper = flowdex::exec::Keeper {
            fields,
            ..flowdex::exec::Keeper::records()
        };
        let mut hits = Vec::new();
        search::records_in_batches(&index, &bound, 1 << 30, &keeper, &mut |h| {
            hits.append(h);
            Ok(())
        })
        .unwrap();
        hits
    };
    let all = gather(None);
    let mut chosen = flowdex::record::FieldSet::EMPTY;
    [Field::Srcaddr, Field::VpcId]
        .into_iter()
        .for_each(|f| chosen.insert(f));
    let some = gather(Some(chosen));
    assert!(all.len() > 50, "{}", all.len());
    assert_eq!(all.len(), some.len());
    for (a, s) in all.iter().zip(&some) {
        assert_eq!(a.record.provenance, s.record.provenance);
        // The chosen fields, and those the filters and output order need, are there.
        for f in [
            Field::Srcaddr,
            Field::VpcId,
            Field::Dstport,
            Field::Bytes,
            Field::Start,
            Field::End,
        ] {
            assert_eq!(a.record.get(f), s.record.get(f), "{f:?}");
        }
        // Others are not decoded.
        assert_eq!(s.record.get(Field::Dstaddr), None);
        assert!(a.record.get(Field::Dstaddr).is_some());
    }
}

#[test]
fn explain_says_how_a_limit_reads_its_blocks() {
    let (dir, _index) = samples_index();
    let explain = |query: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
            .args(["search", "--explain"])
            .arg(dir.path())
            .arg(query)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines().find(|l| l.starts_with("limit ")).map(str::to_owned)
    };
    let best_first = explain("action = REJECT | sort bytes desc | limit 5").unwrap();
    assert!(
        best_first.starts_with("limit 5: blocks are read best first by their zone maps (bytes desc, start, end)"),
        "{best_first}"
    );
    assert_eq!(
        explain("limit 3").unwrap(),
        "limit 3: blocks are read best first by their zone maps (start, end), and each segment stops at the \
         first block that cannot hold one of its first 3 records: at most the blocks above"
    );
    assert_eq!(
        explain("action = REJECT | sort srcport | limit 5").unwrap(),
        "limit 5: every block above is read"
    );
    assert_eq!(
        explain("action = REJECT | sort bytes desc | limit 0").unwrap(),
        "limit 0: no block is read"
    );
    // A limit before `stats` limits the records it aggregates; one after it, the rows.
    let before_stats = explain("action = REJECT | sort bytes desc | limit 10 | stats count()").unwrap();
    assert!(
        before_stats.starts_with("limit 10: blocks are read best first"),
        "{before_stats}"
    );
    assert_eq!(explain("action = REJECT | sort bytes desc"), None);
    assert_eq!(explain("action = REJECT | stats count() | limit 1"), None);
}

#[test]
fn explain_writes_the_filter_back_as_a_query_and_says_how_each_part_is_answered() {
    let (dir, _index) = samples_index();
    let iocs = tempfile::NamedTempFile::new().unwrap();
    // Addresses apart from each other, which no range joins.
    let list: String = (0..1000).map(|i| format!("10.{}.{}.7\n", i / 250, i % 250)).collect();
    std::fs::write(iocs.path(), list).unwrap();
    let query = format!(
        "addr in @{} and time = 2024-04-28 and bytes > 1000",
        iocs.path().display()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args(["search", "--explain"])
        .arg(dir.path())
        .arg(&query)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().take(4).collect();
    let list = "addr in (10.0.0.7, 10.0.1.7, 10.0.2.7, 10.0.3.7, 10.0.4.7, … 995 more)";
    let day = "time overlaps 2024-04-28T00:00:00Z .. 2024-04-28T23:59:59Z";
    assert_eq!(
        lines,
        [
            format!("filter: {list} and {day} and bytes >= 1001"),
            format!("  {list}: postings of srcaddr and dstaddr"),
            format!("  {day}: zone maps of start and end, then each candidate record's times"),
            "  bytes >= 1001: zone maps of bytes, then each candidate record".to_string(),
        ]
    );
}

#[test]
fn a_record_whose_end_is_before_its_start_is_found_at_its_start() {
    let (_dir, index) = common::index_of_text(
        "version account-id interface-id srcaddr start end log-status\n\
         2 123 eni-r 10.9.9.9 1711944000 0 OK\n",
    );
    let found = |query: &str| match run(&index, query) {
        Answer::Records { hits, .. } => hits.len(),
        other => panic!("{other:?}"),
    };
    // Its start, 2024-04-01T04:00:00Z, is in these windows; the one after it is not.
    assert_eq!(found("srcaddr = 10.9.9.9 and time = 2024-04-01"), 1);
    assert_eq!(found("srcaddr = 10.9.9.9 and time >= 2024-04-01T04:00:00Z"), 1);
    assert_eq!(found("time = 2024-04-01T04:00Z"), 1);
    assert_eq!(found("srcaddr = 10.9.9.9 and time >= 2024-04-01T04:00:01Z"), 0);
    assert_eq!(found("srcaddr = 10.9.9.9 and time < 2024-04-01T04:00:00Z"), 0);
}

/// A record with only a start, or only an end (the other `-`), is at that time for every time
/// window, in record searches and in aggregations alike; one with neither is in none.
#[test]
fn a_record_with_one_time_is_found_at_it() {
    let (_dir, index) = common::index_of_text(
        "version account-id interface-id srcaddr start end log-status\n\
         2 123 eni-r 10.9.9.1 1711944000 - OK\n\
         2 123 eni-r 10.9.9.2 - 1711951200 OK\n\
         2 123 eni-r 10.9.9.3 - - NODATA\n\
         2 123 eni-r 10.9.9.4 1711940400 1711940460 OK\n",
    );
    let found = |query: &str| match run(&index, query) {
        Answer::Records { hits, .. } => hits
            .iter()
            .map(|h| h.record.srcaddr.unwrap().to_string())
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    // 04:00 is the first's start, 06:00 the second's end, 03:00..03:01 the fourth's span.
    for (window, want) in [
        ("time = 2024-04-01T04:00Z", vec!["10.9.9.1"]),
        ("time = 2024-04-01T06:00Z", vec!["10.9.9.2"]),
        ("time >= 2024-04-01T05:00:00Z", vec!["10.9.9.2"]),
        ("time <= 2024-04-01T03:30:00Z", vec!["10.9.9.4"]),
        ("time = 2024-04-01", vec!["10.9.9.4", "10.9.9.1", "10.9.9.2"]),
        ("time = 2024-04-02", vec![]),
    ] {
        let mut want: Vec<String> = want.into_iter().map(String::from).collect();
        let mut got = found(window);
        got.sort();
        want.sort();
        assert_eq!(got, want, "{window}");
        // Counted from the postings and time columns, and aggregated over raw columns.
        assert_eq!(
            row_texts(&index, &format!("{window} | stats count()")),
            [want.len().to_string()],
            "{window}"
        );
        let by = row_texts(
            &index,
            &format!("{window} and account_id = 123 | stats count() by srcaddr"),
        );
        assert_eq!(by.len(), want.len(), "{window}: {by:?}");
    }
}

/// Rows as text, one `a,b,c` string per row.
fn row_texts(index: &Index, query: &str) -> Vec<String> {
    let Answer::Rows(rows) = run(index, query) else {
        panic!("{query}")
    };
    rows.rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .map(|c| match c {
                    agg::Cell::Null => "-".to_owned(),
                    agg::Cell::Int(n) => n.to_string(),
                    agg::Cell::Float(x) => x.to_string(),
                    agg::Cell::Text(t) => t.clone(),
                    agg::Cell::Ip(ip) => ip.to_string(),
                })
                .collect();
            cells.join(",")
        })
        .collect()
}

#[test]
fn group_keys_after_stats_mean_what_their_fields_mean_before_it() {
    let (_dir, index) = common::index_of_text(
        "srcaddr dstaddr bytes start end action protocol\n\
         10.0.0.9 10.0.0.1 5 1714262400 1714262460 REJECT 6\n\
         10.0.0.10 10.0.0.1 7 1714262400 1714262460 ACCEPT 17\n\
         192.0.2.1 10.0.0.3 9223372036854775807 1714348800 1714348860 ACCEPT 6\n\
         192.0.2.1 10.0.0.3 9223372036854775807 1714348800 1714348860 ACCEPT 6\n\
         192.0.2.1 192.0.2.1 9223372036854775807 1714348800 1714348860 ACCEPT 6\n",
    );
    let rows = |q: &str| row_texts(&index, q);
    // A CIDR, an action word in any case, a protocol name and a date, as before `stats`.
    assert_eq!(
        rows("stats sum(bytes) by srcaddr | filter srcaddr = 10.0.0.0/8"),
        ["10.0.0.9,5", "10.0.0.10,7"]
    );
    assert_eq!(rows("stats count() by action | filter action = reject"), ["REJECT,1"]);
    assert_eq!(rows("stats count() by protocol | filter protocol = tcp"), ["6,4"]);
    assert_eq!(
        rows("stats count() by bin(1d) | filter bin(1d) = 2024-04-29"),
        ["2024-04-29T00:00:00Z,3"]
    );
    assert_eq!(
        rows("stats count() by dstaddr | filter dstaddr in (10.0.0.1, 192.0.2.0/24)"),
        ["10.0.0.1,2", "192.0.2.1,1"]
    );
    // Addresses sort as addresses, not as text (10.0.0.10 after 10.0.0.9).
    assert_eq!(
        rows("stats count() by srcaddr | sort srcaddr desc"),
        ["192.0.2.1,3", "10.0.0.10,1", "10.0.0.9,1"]
    );
    // A time bin is the span it covers; `display` leaves later stages the columns it keeps.
    assert_eq!(
        rows("stats count() by bin(1h) | filter bin(1h) = 2024-04-29T00:30Z"),
        ["2024-04-29T00:00:00Z,3"]
    );
    assert_eq!(
        rows("stats sum(bytes) as s by srcaddr | display s, srcaddr | filter srcaddr = 10.0.0.10 or s = 5"),
        ["5,10.0.0.9", "7,10.0.0.10"]
    );
    let removed = "stats sum(bytes) as s by srcaddr, dstaddr | display s | sort dstaddr";
    let parsed = query::parse(removed, &|_| Ok(String::new())).unwrap();
    assert!(query::bind(&parsed, removed).is_err());
    // A sum past 2^64 is exact: three times 2^63 - 1.
    assert_eq!(
        rows("srcaddr = 192.0.2.1 | stats sum(bytes), count()"),
        ["27670116110564327421,3"]
    );
    // `addr != X` leaves X out at either end.
    let Answer::Records { hits, .. } = run(&index, "addr != 10.0.0.1 and addr != 10.0.0.3") else {
        panic!("records")
    };
    assert_eq!(hits.len(), 1, "only 192.0.2.1 to itself: {hits:?}");
    let Answer::Records { hits, .. } = run(&index, "addr != 192.0.2.1") else {
        panic!("records")
    };
    assert_eq!(hits.len(), 2);
    // The log has no packet addresses: `any_addr` is its two ends.
    let Answer::Records { hits, .. } = run(&index, "any_addr != 192.0.2.1") else {
        panic!("records")
    };
    assert_eq!(hits.len(), 2);
}

/// A table prints the byte counts of aggregates in KiB, MiB, ... by what they aggregate, not by
/// their name: `sum(bytes) as b` is bytes, `count() as bytes_seen` is a count; and the first
/// and last times of a group as times, as it prints a record's.
#[test]
fn a_table_of_rows_prints_aggregates_of_bytes_and_times_in_their_units_whatever_their_names() {
    let (dir, _index) = common::index_of_text(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
         2 123 eni-a 10.0.0.1 10.0.0.2 40000 443 6 10 1536 1711944000 1711944060 ACCEPT OK\n\
         2 123 eni-a 10.0.0.1 10.0.0.2 40001 443 6 20 3221225472 1711944000 1711944060 ACCEPT OK\n\
         2 123 eni-a 10.0.0.3 10.0.0.2 40002 22 6 1 40 1711944000 1711944060 REJECT OK\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args(["search", "--format", "table"])
        .arg(dir.path().join("idx"))
        .arg("stats sum(bytes) as b, avg(bytes), max(packets), count() as bytes_seen, min(start) as first, max(end) by srcaddr | sort b desc")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/search-bytes.table");
    let want = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        want,
        "{} differs",
        path.display()
    );
}

/// `x not in [...]` and `x not like ...` are comparisons, as `!=`: a record without the field
/// (`-`) is left out, where `not x in [...]` keeps it. After `stats`, on a group key, likewise.
#[test]
fn not_in_and_not_like_leave_out_records_without_the_field_as_not_equal_does() {
    let (_dir, index) = common::index_of_text(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
         2 123 eni-a 10.0.0.1 10.0.0.2 40000 443 6 10 100 1711944000 1711944060 ACCEPT OK\n\
         2 123 eni-a 192.0.2.9 10.0.0.2 40001 22 6 20 200 1711944000 1711944060 REJECT OK\n\
         2 123 eni-a - - - - - - - 1711944000 1711944060 - NODATA\n",
    );
    let count = |query: &str| match run(&index, query) {
        Answer::Records { hits, .. } => hits.len(),
        Answer::Rows(rows) => rows.rows.len(),
    };
    for (excluding, not_equal, negated) in [
        ("action not in [ACCEPT]", "action != ACCEPT", "not action in [ACCEPT]"),
        (
            "dstport not in [22, 23]",
            "dstport != 22 and dstport != 23",
            "not dstport in [22, 23]",
        ),
        (
            "srcaddr not in [10.0.0.0/8]",
            "srcaddr != 10.0.0.0/8",
            "not srcaddr in [10.0.0.0/8]",
        ),
        (
            "addr not in [192.0.2.9]",
            "addr != 192.0.2.9",
            "not addr in [192.0.2.9]",
        ),
    ] {
        assert_eq!(count(excluding), count(not_equal), "{excluding}");
        assert_eq!(count(excluding) + 1, count(negated), "{excluding}: the NODATA line");
    }
    assert_eq!(count("srcaddr not like /^10\\./"), 1);
    assert_eq!(count("not srcaddr like /^10\\./"), 2);
    assert_eq!(count("stats count() by dstport | filter dstport not in [22]"), 1);
    assert_eq!(count("stats count() by dstport | filter not dstport in [22]"), 2);
    assert_eq!(count("stats count() by srcaddr | filter srcaddr not like /^10\\./"), 1);
    assert_eq!(count("stats count() by srcaddr | filter not srcaddr like /^10\\./"), 2);
    // An aggregate of no value (the NODATA line's bytes) is `-`, in no list.
    assert_eq!(count("stats sum(bytes) as b by srcaddr | filter b not in [100]"), 1);
    assert_eq!(count("stats sum(bytes) as b by srcaddr | filter not b in [100]"), 2);
}

/// An empty CSV answer still has its header row: a script reads the columns either way.
#[test]
fn a_csv_answer_with_no_record_has_its_header() {
    let (dir, _index) = common::index_of_text(
        "version account-id interface-id srcaddr dstaddr start end log-status\n\
         2 123 eni-a 10.0.0.1 10.0.0.2 1711944000 1711944060 OK\n",
    );
    let csv = |query: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
            .args(["search", "--format", "csv"])
            .arg(dir.path().join("idx"))
            .arg(query)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    assert_eq!(
        csv("addr = 192.0.2.1 | fields srcaddr, dstaddr"),
        (Some(1), "srcaddr,dstaddr\n".to_string())
    );
    assert_eq!(
        csv("addr = 10.0.0.1 | fields srcaddr, dstaddr"),
        (Some(0), "srcaddr,dstaddr\n10.0.0.1,10.0.0.2\n".to_string())
    );
}

/// `f = -` finds the records without a value (a `-` in the line, or a format without the
/// field), and `f != -` those with one; for several fields (`addr`), no field has one, and
/// some field has one. Counted against the parsed records, not against the query's own
/// definition.
#[test]
fn a_dash_finds_the_records_without_a_value() {
    let (_dir, index) = samples_index();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let read = read_with(&[samples], &ReadOptions::default()).without_duplicate_sources();
    let records: Vec<&FlowRecord> = read.records.iter().map(|(_, r, _)| r).collect();
    let count = |query: &str| {
        row_texts(&index, &format!("{query} | stats count()"))[0]
            .parse::<usize>()
            .unwrap()
    };
    for (name, fields) in [
        ("instance_id", &[Field::InstanceId][..]),
        ("dstport", &[Field::Dstport]),
        ("action", &[Field::Action]),
        ("pkt-srcaddr", &[Field::PktSrcaddr]),
        ("addr", &[Field::Srcaddr, Field::Dstaddr]),
    ] {
        let without = records
            .iter()
            .filter(|r| fields.iter().all(|f| r.get(*f).is_none()))
            .count();
        assert!(without > 0 && without < records.len(), "{name}: {without}");
        assert_eq!(count(&format!("{name} = -")), without, "{name}");
        assert_eq!(count(&format!("{name} != -")), records.len() - without, "{name}");
        assert_eq!(count(&format!("{name} in (-)")), without, "{name}");
    }
    // `time = -`: no start and no end (none in the samples; one in a log of three).
    let timeless = records.iter().filter(|r| r.start.is_none() && r.end.is_none()).count();
    assert_eq!(count("time = -"), timeless);
    assert_eq!(count("time != -"), records.len() - timeless);
    let (_odd, odd) = common::index_of_text(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
         2 1 eni-1 10.9.9.9 10.1.2.3 1 2 6 1 60 - - ACCEPT OK\n\
         2 1 eni-1 10.9.9.9 10.1.2.4 1 2 6 1 60 1712000300 - ACCEPT OK\n\
         2 1 eni-1 10.9.9.9 10.1.2.4 1 2 6 1 60 1712000300 1712000360 ACCEPT OK\n",
    );
    assert_eq!(row_texts(&odd, "time = - | stats count()"), ["1"]);
    assert_eq!(row_texts(&odd, "time != - | stats count()"), ["2"]);
    // After `stats`, on a group key as before it: the bucket of no time, the null key.
    assert_eq!(
        row_texts(&odd, "stats count() by bin(1d) | filter bin(1d) = -"),
        ["-,1"]
    );
    assert_eq!(
        row_texts(&index, "stats count() by instance_id | filter instance_id = -"),
        [format!("-,{}", count("instance_id = -"))]
    );
    // The plan says it as written, and that postings answer it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowdex"))
        .args(["search", "--explain"])
        .arg(_dir.path())
        .arg("instance_id = -")
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.starts_with("filter: instance_id = -\n"), "{plan}");
    assert!(
        plan.contains("postings of instance-id: the records with a value\n"),
        "{plan}"
    );
}
