//! Search: the eight incident-response queries of the searcher's issue, as whole-process
//! `flowdex search` runs on a synthetic v5 corpus (30 days) with injected incidents, beside two
//! peers measured in the same run: a linear scan of the parsed `.log.gz` (the reader and the
//! query's own filter, all cores), and DuckDB over a zstd Parquet copy sorted by start (through
//! `../shared/tools/duckdb-peer`, in-process and warm, when that tool and the duckdb Python
//! package are there). Medians of several runs. Not a timed test: it prints numbers.
//!
//!     cargo build --release && cargo bench --bench search          # 2 M records
//!     FLOWDEX_BENCH_RECORDS=20000000 cargo bench --bench search
//!
//! The corpus and index are shared with `benches/build.rs` under `target/bench-corpus/`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{env_or, median};
use flowdex::input::{self, ReadOptions};
use rayon::prelude::*;

struct Query {
    name: &'static str,
    flowdex: String,
    sql: String,
}

fn main() {
    let records: u64 = env_or("FLOWDEX_BENCH_RECORDS", 2_000_000);
    let runs: usize = env_or("FLOWDEX_BENCH_RUNS", 5) as usize;
    let root = common::root();
    let corpus = common::corpus(records);
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/flowdex");
    assert!(exe.exists(), "build the binary first: cargo build --release");
    let index = root.join(format!("v5-{records}-gz6.idx"));
    if flowdex::read::Index::open(&index).is_err() {
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
    let queries = queries(&truth, &iocs);

    println!("corpus: {records} records, 30 days; flowdex: whole process, median of {runs}");
    let duckdb = duckdb_times(&corpus, &queries, runs);
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>9} {:>9}",
        "query", "flowdex", "DuckDB", "scan", "vs DuckDB", "vs scan"
    );
    for (i, q) in queries.iter().enumerate() {
        let times: Vec<Duration> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                let status = Command::new(&exe)
                    .args(["search", "--format", "jsonl"])
                    .arg(&index)
                    .arg(&q.flowdex)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("flowdex search");
                assert!(status.code().is_some_and(|c| c <= 1), "{}: {status}", q.name);
                t.elapsed()
            })
            .collect();
        let ours = median(times);
        let scan = scan_time(&corpus, &q.flowdex);
        let duck = duckdb.as_ref().and_then(|d| d.get(i).copied());
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
        println!(
            "{:<34} {:>10} {:>10} {:>10} {:>9} {:>9}",
            q.name,
            ms(ours),
            duck.map_or("-".into(), ms),
            ms(scan),
            duck.map_or("-".into(), |d| format!("{:.2}x", d.as_secs_f64() / ours.as_secs_f64())),
            format!("{:.0}x", scan.as_secs_f64() / ours.as_secs_f64()),
        );
    }
}

/// The eight queries, in flowdex syntax and as SQL over the Parquet copy (`flows`).
fn queries(truth: &serde_json::Value, iocs: &Path) -> Vec<Query> {
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
    vec![
        Query {
            name: "1 one IP, 30 days",
            flowdex: format!("addr = {one_ip}"),
            sql: format!("SELECT * FROM flows WHERE srcaddr = '{one_ip}' OR dstaddr = '{one_ip}' ORDER BY start"),
        },
        Query {
            name: "2 REJECT to one host, a month",
            flowdex: format!("dstaddr = {db_host} and action = REJECT and time = {month} | sort start desc"),
            sql: format!("SELECT * FROM flows WHERE dstaddr = '{db_host}' AND action = 'REJECT' ORDER BY start DESC"),
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
        },
        Query {
            name: "4 top 10 sources by bytes, a day",
            flowdex: format!("time = {scanned_day} | stats sum(bytes) as b by srcaddr | sort b desc | limit 10"),
            sql: format!(
                "SELECT srcaddr, sum(bytes) AS b FROM flows WHERE {} GROUP BY srcaddr ORDER BY b DESC LIMIT 10",
                day("")
            ),
        },
        Query {
            name: "5 top talkers on 443, 30 days",
            flowdex: "fields srcaddr, dstaddr, bytes | filter dstport = 443 and action = \"ACCEPT\" | stats sum(bytes) as total_bytes by srcaddr | sort total_bytes desc | limit 10".into(),
            sql: "SELECT srcaddr, sum(bytes) AS t FROM flows WHERE dstport = 443 AND action = 'ACCEPT' GROUP BY srcaddr ORDER BY t DESC LIMIT 10".into(),
        },
        Query {
            name: "6 egress to non-RFC1918",
            flowdex: "fields srcaddr, dstaddr, dstport, bytes | filter flow_direction = \"egress\" and not srcaddr like /^10\\./ and not srcaddr like /^172\\.1[6-9]\\./ and not srcaddr like /^192\\.168\\./ | stats sum(bytes) as total_bytes by dstaddr | sort total_bytes desc".into(),
            sql: "SELECT dstaddr, sum(bytes) AS t FROM flows WHERE flow_direction = 'egress' AND NOT regexp_matches(srcaddr, '^10\\.') AND NOT regexp_matches(srcaddr, '^172\\.1[6-9]\\.') AND NOT regexp_matches(srcaddr, '^192\\.168\\.') GROUP BY dstaddr ORDER BY t DESC".into(),
        },
        Query {
            name: "7 ACCEPT 10.1/16 -> 10.2/16 count",
            flowdex: "action = ACCEPT and srcaddr = 10.1.0.0/16 and dstaddr = 10.2.0.0/16 | stats count()".into(),
            sql: "SELECT count(*) FROM flows WHERE action = 'ACCEPT' AND srcaddr LIKE '10.1.%' AND dstaddr LIKE '10.2.%'".into(),
        },
        Query {
            name: "8 any of 1,000 IOC IPs",
            flowdex: format!("addr in @{}", iocs.display()),
            sql: format!("SELECT * FROM flows WHERE srcaddr IN ({sql_list}) OR dstaddr IN ({sql_list}) ORDER BY start"),
        },
    ]
}

/// 1,000 IOC addresses: 100 public addresses the corpus holds, 900 it does not.
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
/// applied to each record.
fn scan_time(corpus: &Path, query: &str) -> Duration {
    let read_file = |p: &str| std::fs::read_to_string(p);
    let parsed = flowdex::query::parse(query, &read_file).expect("query parses");
    let bound = flowdex::query::bind(&parsed, query).expect("query binds");
    let t = Instant::now();
    let files = input::discover(&[corpus.to_path_buf()]);
    let matched: u64 = files
        .par_iter()
        .map(|f| {
            let mut sink = Matching {
                filter: &bound.filter,
                matched: 0,
            };
            input::read_input(f, &ReadOptions::default(), &mut sink);
            sink.matched
        })
        .sum();
    std::hint::black_box(matched);
    t.elapsed()
}

/// DuckDB's times, one per query, or `None` when the peer tool or duckdb is missing.
fn duckdb_times(corpus: &Path, queries: &[Query], runs: usize) -> Option<Vec<Duration>> {
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
    let times: Vec<Duration> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(" s  "))
        .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .collect();
    (times.len() == queries.len()).then_some(times)
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
