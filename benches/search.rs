//! Search: the eight incident-response queries of the searcher's issue (and query 1 for a scattered address), as whole-process
//! `flowdex search` runs on a synthetic v5 corpus (30 days) with injected incidents, beside three
//! peers measured in the same run: a tantivy index of the same records (through
//! `peers/tantivy-peer`, in-process and warm, when that binary is built), DuckDB over a zstd
//! Parquet copy sorted by start (through `../shared/tools/duckdb-peer`, in-process and warm, when
//! that tool and the duckdb Python package are there), and a linear scan of the parsed `.log.gz`
//! (the reader and the query's own filter, all cores). Medians of several runs. Not a timed
//! test: it prints numbers, and a warning wherever a peer's answer is not the size of flowdex's.
//!
//!     cargo build --release && cargo bench --bench search          # 2 M records
//!     cargo build --release --manifest-path peers/tantivy-peer/Cargo.toml   # the tantivy peer
//!     FLOWDEX_BENCH_RECORDS=20000000 cargo bench --bench search
//!
//! The corpus and index are shared with `benches/build.rs` under `target/bench-corpus/`; the
//! tantivy index is built there once too, and reused.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{env_or, median};
use flowdex::input::{self, ReadOptions};
use rayon::prelude::*;
use serde_json::json;

struct Query {
    name: &'static str,
    flowdex: String,
    sql: String,
    /// The same query for `tantivy-peer query` (its `Spec`).
    tantivy: serde_json::Value,
}

/// A peer's answer to one query: its median time, the records or rows it returned and, when the
/// peer can say, how many records the filter matched.
struct PeerAnswer {
    time: Duration,
    rows: u64,
    matched: Option<u64>,
}

fn main() {
    let records: u64 = env_or("FLOWDEX_BENCH_RECORDS", 2_000_000);
    let runs: usize = env_or("FLOWDEX_BENCH_RUNS", 5) as usize;
    let root = common::root();
    let corpus = common::corpus(records);
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/flowdex");
    assert!(exe.exists(), "build the binary first: cargo build --release");
    let index = root.join(format!("v5-{records}-gz6.idx"));
    // An index of an older format still opens, but the bench measures the current one.
    let current = flowdex::read::Index::open(&index)
        .is_ok_and(|i| i.manifest().format_version == flowdex::format::FORMAT_VERSION);
    if !current {
        let _ = std::fs::remove_dir_all(&index);
        let ok = Command::new(&exe)
            .args(["build", "--quiet", "--output"])
            .arg(&index)
            .arg(&corpus)
            .status()
            .expect("flowdex build")
            .success();
        assert!(ok, "flowdex build failed");
    }
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(corpus.join("truth.json")).expect("truth.json")).expect("JSON");
    let iocs = root.join(format!("v5-{records}-iocs.txt"));
    write_iocs(&exe, &index, &iocs);
    let client = scattered_client(&exe, &index);
    let queries = queries(&truth, &iocs, &client);

    println!("corpus: {records} records, 30 days; flowdex: whole process, median of {runs}");
    let tantivy = tantivy_answers(&corpus, &root.join(format!("v5-{records}-gz6.tantivy")), &queries, runs);
    let duckdb = duckdb_answers(&corpus, &queries, runs);
    let opened = flowdex::read::Index::open(&index).expect("the index opens");
    println!(
        "{:<34} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}",
        "query", "rows", "flowdex", "tantivy", "DuckDB", "scan", "vs tantivy", "vs DuckDB", "vs scan"
    );
    for (i, q) in queries.iter().enumerate() {
        let search = || {
            let mut cmd = Command::new(&exe);
            cmd.args(["search", "--format", "jsonl"]).arg(&index).arg(&q.flowdex);
            cmd
        };
        // An untimed run first: it warms the page cache and gives the answer's size.
        let out = search().stderr(Stdio::null()).output().expect("flowdex search");
        assert!(out.status.code().is_some_and(|c| c <= 1), "{}: {}", q.name, out.status);
        let rows = out.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
        let times: Vec<Duration> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                let status = search()
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("flowdex search");
                assert!(status.code().is_some_and(|c| c <= 1), "{}: {status}", q.name);
                t.elapsed()
            })
            .collect();
        let ours = median(times);
        let bound = bind(&q.flowdex);
        let matched = flowdex::exec::count(&opened, &bound.filter).expect("flowdex count");
        let (scan, scanned) = scan(&corpus, &bound.filter);
        let tant = tantivy.as_ref().map(|t| &t[i]);
        let duck = duckdb.as_ref().map(|d| &d[i]);
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
        let ratio = |a: Option<&PeerAnswer>| {
            a.map_or("-".into(), |a| {
                format!("{:.2}x", a.time.as_secs_f64() / ours.as_secs_f64())
            })
        };
        println!(
            "{:<34} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}",
            q.name,
            rows,
            ms(ours),
            tant.map_or("-".into(), |a| ms(a.time)),
            duck.map_or("-".into(), |a| ms(a.time)),
            ms(scan),
            ratio(tant),
            ratio(duck),
            format!("{:.0}x", scan.as_secs_f64() / ours.as_secs_f64()),
        );
        for (peer, answer) in [("tantivy", tant), ("DuckDB", duck)] {
            if let Some(a) = answer {
                disagree(q.name, peer, "rows", a.rows, rows);
                if let Some(m) = a.matched {
                    disagree(q.name, peer, "matched records", m, matched);
                }
            }
        }
        disagree(q.name, "scan", "matched records", scanned, matched);
    }
}

/// Prints a warning when a peer's count is not flowdex's: then the times compare different work.
fn disagree(query: &str, peer: &str, what: &str, theirs: u64, ours: u64) {
    if theirs != ours {
        println!("  warning: {query}: {peer} gives {theirs} {what}, flowdex {ours}");
    }
}

fn bind(query: &str) -> flowdex::query::Bound {
    let read_file = |p: &str| std::fs::read_to_string(p);
    let parsed = flowdex::query::parse(query, &read_file).expect("query parses");
    flowdex::query::bind(&parsed, query).expect("query binds")
}

/// The eight queries, and query 1 for an address whose records are scattered (`client`), in
/// flowdex syntax and as SQL over the Parquet copy (`flows`).
fn queries(truth: &serde_json::Value, iocs: &Path, client: &str) -> Vec<Query> {
    let incident = |kind: &str| {
        truth["incidents"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["kind"] == kind))
            .unwrap_or_else(|| panic!("truth.json has no {kind}"))
            .clone()
    };
    let (exfil, scan, db) = (
        incident("exfiltration"),
        incident("port-scan"),
        incident("rejected-database-access"),
    );
    let s = |v: &serde_json::Value| v.as_str().expect("a string").to_owned();
    let (one_ip, scanned_day, db_host) = (
        s(&exfil["src"]),
        s(&scan["first_start"])[..10].to_owned(),
        s(&db["dst"]),
    );
    let day_start = scan["first_start_unix"].as_u64().expect("a time") / 86_400 * 86_400;
    let day = |cond: &str| format!("{cond} start <= {} AND \"end\" >= {day_start}", day_start + 86_399);
    let month = &scanned_day[..7];
    let list = std::fs::read_to_string(iocs).expect("the IOC list");
    let sql_list = list.lines().map(|l| format!("'{l}'")).collect::<Vec<_>>().join(",");
    // The tantivy twins, in `tantivy-peer`'s query language (values as text, typed by field).
    let term = |field: &str, values: &[&str]| json!({ "term": { "field": field, "values": values } });
    let not_in = |field: &str, cidr: &str| json!({ "not": { "cidr": { "field": field, "cidr": cidr } } });
    let cidr = |field: &str, cidr: &str| json!({ "cidr": { "field": field, "cidr": cidr } });
    // `time = T`: the record's [start, end] overlaps T, with flowdex's own bounds for T.
    let overlaps = |t: &str| {
        let (lo, hi) = flowdex::query::time_range(t).expect("a time");
        json!({ "all": [
            { "range": { "field": "start", "hi": hi.to_string() } },
            { "range": { "field": "end", "lo": lo.to_string() } },
        ] })
    };
    let (in_day, in_month) = (overlaps(&scanned_day), overlaps(month));
    let records = |desc: bool| json!({ "records": { "sort": "start", "desc": desc } });
    let stats = |by: Option<&str>, sum: Option<&str>, min_count: Option<u64>, limit: Option<u32>| json!({ "stats": { "by": by, "sum": sum, "min_count": min_count, "limit": limit } });
    let ioc_list: Vec<&str> = list.lines().collect();
    let twin = |filter: serde_json::Value, answer: serde_json::Value| json!({ "filter": filter, "answer": answer });
    vec![
        Query {
            name: "1 one IP, 30 days",
            flowdex: format!("addr = {one_ip}"),
            sql: format!("SELECT * FROM flows WHERE srcaddr = '{one_ip}' OR dstaddr = '{one_ip}' ORDER BY start"),
            tantivy: twin(
                json!({ "any": [term("srcaddr", &[&one_ip]), term("dstaddr", &[&one_ip])] }),
                records(false),
            ),
        },
        // Query 1's address is an application server, a thirtieth of all records, each of its
        // interface's runs contiguous; the needle is an address with a couple of thousand
        // records spread over every interface and day, one a block.
        Query {
            name: "1b a scattered client, 30 days",
            flowdex: format!("addr = {client}"),
            sql: format!("SELECT * FROM flows WHERE srcaddr = '{client}' OR dstaddr = '{client}' ORDER BY start"),
            tantivy: twin(
                json!({ "any": [term("srcaddr", &[client]), term("dstaddr", &[client])] }),
                records(false),
            ),
        },
        Query {
            name: "2 REJECT to one host, a month",
            flowdex: format!("dstaddr = {db_host} and action = REJECT and time = {month} | sort start desc"),
            sql: format!("SELECT * FROM flows WHERE dstaddr = '{db_host}' AND action = 'REJECT' ORDER BY start DESC"),
            tantivy: twin(
                json!({ "all": [term("dstaddr", &[&db_host]), term("action", &["REJECT"]), in_month] }),
                records(true),
            ),
        },
        Query {
            name: "3 port scans in a day",
            flowdex: format!(
                "tcp_flags = 2 and action = REJECT and time = {scanned_day} | stats count() as syn_count by srcaddr | filter syn_count > 100 | sort syn_count desc"
            ),
            sql: format!(
                "SELECT srcaddr, count(*) AS n FROM flows WHERE {} GROUP BY srcaddr HAVING count(*) > 100 ORDER BY n DESC",
                day("tcp_flags = 2 AND action = 'REJECT' AND")
            ),
            tantivy: twin(
                json!({ "all": [term("tcp_flags", &["2"]), term("action", &["REJECT"]), in_day.clone()] }),
                stats(Some("srcaddr"), None, Some(101), None),
            ),
        },
        Query {
            name: "4 top 10 sources by bytes, a day",
            flowdex: format!("time = {scanned_day} | stats sum(bytes) as b by srcaddr | sort b desc | limit 10"),
            sql: format!(
                "SELECT srcaddr, sum(bytes) AS b FROM flows WHERE {} GROUP BY srcaddr ORDER BY b DESC LIMIT 10",
                day("")
            ),
            tantivy: twin(in_day, stats(Some("srcaddr"), Some("bytes"), None, Some(10))),
        },
        Query {
            name: "5 top talkers on 443, 30 days",
            flowdex: "fields srcaddr, dstaddr, bytes | filter dstport = 443 and action = \"ACCEPT\" | stats sum(bytes) as total_bytes by srcaddr | sort total_bytes desc | limit 10".into(),
            sql: "SELECT srcaddr, sum(bytes) AS t FROM flows WHERE dstport = 443 AND action = 'ACCEPT' GROUP BY srcaddr ORDER BY t DESC LIMIT 10".into(),
            tantivy: twin(
                json!({ "all": [term("dstport", &["443"]), term("action", &["ACCEPT"])] }),
                stats(Some("srcaddr"), Some("bytes"), None, Some(10)),
            ),
        },
        Query {
            name: "6 egress to non-RFC1918",
            flowdex: "fields srcaddr, dstaddr, dstport, bytes | filter flow_direction = \"egress\" and not srcaddr like /^10\\./ and not srcaddr like /^172\\.1[6-9]\\./ and not srcaddr like /^192\\.168\\./ | stats sum(bytes) as total_bytes by dstaddr | sort total_bytes desc".into(),
            sql: "SELECT dstaddr, sum(bytes) AS t FROM flows WHERE flow_direction = 'egress' AND NOT regexp_matches(srcaddr, '^10\\.') AND NOT regexp_matches(srcaddr, '^172\\.1[6-9]\\.') AND NOT regexp_matches(srcaddr, '^192\\.168\\.') GROUP BY dstaddr ORDER BY t DESC".into(),
            // The three regexes as the CIDRs they spell on IPv4 text (1[6-9] is 16-19: a /14).
            tantivy: twin(
                json!({ "all": [
                    term("flow_direction", &["egress"]),
                    not_in("srcaddr", "10.0.0.0/8"),
                    not_in("srcaddr", "172.16.0.0/14"),
                    not_in("srcaddr", "192.168.0.0/16"),
                ] }),
                stats(Some("dstaddr"), Some("bytes"), None, None),
            ),
        },
        Query {
            name: "7 ACCEPT 10.1/16 -> 10.2/16 count",
            flowdex: "action = ACCEPT and srcaddr = 10.1.0.0/16 and dstaddr = 10.2.0.0/16 | stats count()".into(),
            sql: "SELECT count(*) FROM flows WHERE action = 'ACCEPT' AND srcaddr LIKE '10.1.%' AND dstaddr LIKE '10.2.%'".into(),
            tantivy: twin(
                json!({ "all": [
                    term("action", &["ACCEPT"]),
                    cidr("srcaddr", "10.1.0.0/16"),
                    cidr("dstaddr", "10.2.0.0/16"),
                ] }),
                stats(None, None, None, None),
            ),
        },
        Query {
            name: "8 any of 1,000 IOC IPs",
            flowdex: format!("addr in @{}", iocs.display()),
            sql: format!("SELECT * FROM flows WHERE srcaddr IN ({sql_list}) OR dstaddr IN ({sql_list}) ORDER BY start"),
            tantivy: twin(
                json!({ "any": [term("srcaddr", &ioc_list), term("dstaddr", &ioc_list)] }),
                records(false),
            ),
        },
    ]
}

/// 1,000 IOC addresses: 100 public addresses the corpus holds, 900 it does not.
/// The internet address that sent the number of records nearest 1,000 over the whole corpus
/// (about 2,000 touch it, answers included): the needle of the searcher's issue, an address
/// seen on many interfaces on every day.
fn scattered_client(exe: &Path, index: &Path) -> String {
    let out = Command::new(exe)
        .args(["search", "--format", "jsonl"])
        .arg(index)
        .arg("not srcaddr = 10.0.0.0/8 and type = IPv4 | stats count() as n by srcaddr")
        .stderr(Stdio::null())
        .output()
        .expect("flowdex search");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((v["n"].as_u64()?.abs_diff(1000), v["srcaddr"].as_str()?.to_owned())))
        .min()
        .expect("an internet source")
        .1
}

fn write_iocs(exe: &Path, index: &Path, path: &Path) {
    let out = Command::new(exe)
        .args(["search", "--format", "jsonl"])
        .arg(index)
        .arg(
            "flow_direction = egress and not dstaddr = 10.0.0.0/8 | stats count() as n by dstaddr | sort n | limit 100",
        )
        .output()
        .expect("flowdex search");
    let mut ips: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["dstaddr"].as_str().map(str::to_owned))
        .collect();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    while ips.len() < 1000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ips.push(format!(
            "{}.{}.{}.{}",
            11 + x % 180,
            (x >> 8) % 256,
            (x >> 16) % 256,
            1 + (x >> 24) % 254
        ));
    }
    std::fs::write(path, ips.join("\n") + "\n").expect("write the IOC list");
}

/// One linear scan: every `.log.gz` read and parsed (files in parallel), the query's filter
/// applied to each record. Returns its time and the records matched.
fn scan(corpus: &Path, filter: &flowdex::query::Filter) -> (Duration, u64) {
    let t = Instant::now();
    let files = input::discover(&[corpus.to_path_buf()]);
    let matched: u64 = files
        .par_iter()
        .map(|f| {
            let mut sink = Matching { filter, matched: 0 };
            input::read_input(f, &ReadOptions::default(), &mut sink);
            sink.matched
        })
        .sum();
    (t.elapsed(), matched)
}

/// tantivy's answers, one per query, or `None` when the peer is not built. Its index of the
/// corpus is built on first use and kept at `index`.
fn tantivy_answers(corpus: &Path, index: &Path, queries: &[Query], runs: usize) -> Option<Vec<PeerAnswer>> {
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/tantivy-peer/target/release/tantivy-peer");
    if !peer.exists() {
        println!(
            "tantivy peer: {} not found; skipped (cargo build --release --manifest-path peers/tantivy-peer/Cargo.toml)",
            peer.display()
        );
        return None;
    }
    if !index.exists() {
        let ok = Command::new(&peer)
            .arg("build")
            .args([corpus, index])
            .status()
            .expect("tantivy-peer build")
            .success();
        assert!(ok, "tantivy-peer build failed");
    }
    let specs: Vec<serde_json::Value> = queries
        .iter()
        .map(|q| {
            let mut spec = q.tantivy.clone();
            spec["name"] = q.name.into();
            spec
        })
        .collect();
    let file = index.with_extension("queries.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&specs).expect("JSON")).expect("write the tantivy queries");
    let out = Command::new(&peer)
        .arg("query")
        .args([index, &file])
        .arg(runs.to_string())
        .output()
        .expect("tantivy-peer query");
    assert!(
        out.status.success(),
        "tantivy-peer query failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    // `MEDIAN s  ROWS rows  MATCHED matched  NAME`
    let answers: Vec<PeerAnswer> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some(PeerAnswer {
                time: Duration::from_secs_f64(w.first()?.parse().ok()?),
                rows: w.get(2)?.parse().ok()?,
                matched: Some(w.get(4)?.parse().ok()?),
            })
        })
        .collect();
    assert_eq!(answers.len(), queries.len(), "tantivy-peer answered every query");
    Some(answers)
}

/// DuckDB's answers, one per query, or `None` when the peer tool or duckdb is missing.
fn duckdb_answers(corpus: &Path, queries: &[Query], runs: usize) -> Option<Vec<PeerAnswer>> {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/duckdb-peer");
    if !tool.exists() {
        println!("DuckDB peer: {} not found; skipped", tool.display());
        return None;
    }
    let mut cmd = Command::new("python3");
    cmd.arg(&tool).arg(corpus).args(["--runs", &runs.to_string()]);
    for q in queries {
        cmd.args(["--sql", &q.sql]);
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        println!(
            "DuckDB peer failed (pip install duckdb?): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    // `MEDIAN s  ROWS rows  SQL`
    let answers: Vec<PeerAnswer> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(" s  "))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some(PeerAnswer {
                time: Duration::from_secs_f64(w.first()?.parse().ok()?),
                rows: w.get(2)?.parse().ok()?,
                matched: None,
            })
        })
        .collect();
    (answers.len() == queries.len()).then_some(answers)
}

/// Counts the records a filter matches.
struct Matching<'f> {
    filter: &'f flowdex::query::Filter,
    matched: u64,
}

impl input::RecordSink for Matching<'_> {
    fn begin_source(&mut self, _: &input::SourceMeta) -> u32 {
        0
    }
    fn record(&mut self, record: &flowdex::record::FlowRecord, _: &[u8], _: &input::LogFormat) {
        self.matched += u64::from(self.filter.matches(record));
    }
    fn end_source(&mut self, _: input::SourceReport) {}
}
