//! `synth` against the real reader: a corpus written to disk and read back with `input` gives
//! exactly the records `generate` makes, every file has one header, nothing is rejected, and the
//! counts in `truth.json` are those of the records read back.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use proptest::prelude::*;
use serde_json::Value as Json;

use flowdex::input::{self, Form, ReadOptions, RecordSink, SourceMeta, SourceReport};
use flowdex::record::{Action, FlowRecord, LogStatus, Provenance};
use flowdex::synth::{self, SynthConfig};

/// Collects what the reader finds, keyed by source name.
#[derive(Default)]
struct Collect {
    names: Vec<String>,
    records: Vec<(String, FlowRecord)>,
    reports: Vec<SourceReport>,
    rejected: u64,
}

impl RecordSink for Collect {
    fn begin_source(&mut self, meta: &SourceMeta) -> u32 {
        self.names.push(meta.name.clone());
        (self.names.len() - 1) as u32
    }

    fn record(&mut self, record: &FlowRecord, _raw: &[u8], _format: &flowdex::input::LogFormat) {
        let mut r = record.clone();
        let name = self.names[r.provenance.source as usize].clone();
        r.provenance = Provenance::default();
        self.records.push((name, r));
    }

    fn reject(&mut self, _rejection: &input::Rejection<'_>) {
        self.rejected += 1;
    }

    fn end_source(&mut self, report: SourceReport) {
        self.reports.push(report);
    }
}

fn read_back(dir: &Path) -> Collect {
    let mut sink = Collect::default();
    let options = ReadOptions::default();
    for file in input::discover(&[dir.to_path_buf()]) {
        input::read_input(&file, &options, &mut sink);
    }
    sink
}

fn config(records: u64, days: u32, seed: u64, format: &str) -> SynthConfig {
    SynthConfig {
        records,
        days,
        seed,
        format: synth::format_by_name(format).expect("a known format"),
        ..SynthConfig::default()
    }
}

/// What the truth file says about an incident, recomputed from the records read back.
#[derive(Debug, Default, PartialEq)]
struct Counted {
    records: u64,
    bytes: u64,
    reject_records: u64,
    ports: BTreeSet<u64>,
    first: Option<u64>,
    last: Option<u64>,
    interfaces: BTreeSet<String>,
    reverse_records: u64,
    reverse_bytes: u64,
}

fn count_incident(kind: &str, src: IpAddr, dst: IpAddr, records: &[(String, FlowRecord)]) -> Counted {
    let admin_port = |p: Option<u16>| matches!(p, Some(22 | 3389));
    let mut c = Counted::default();
    for (_, r) in records {
        let forward = r.srcaddr == Some(src) && r.dstaddr == Some(dst);
        let backward = r.srcaddr == Some(dst) && r.dstaddr == Some(src);
        let (matches, reverse) = match kind {
            "port-scan" => (r.srcaddr == Some(src), false),
            "exfiltration" => (forward && r.dstport == Some(443), backward && r.srcport == Some(443)),
            "rejected-database-access" => (forward && r.dstport == Some(5432), false),
            "lateral-movement" => (forward && admin_port(r.dstport), backward && admin_port(r.srcport)),
            other => panic!("unknown incident kind {other}"),
        };
        if matches {
            c.records += 1;
            c.bytes += r.bytes.unwrap_or(0);
            c.reject_records += u64::from(r.action == Some(Action::Reject));
            c.ports.extend(r.dstport.map(u64::from));
            if let Some(s) = r.start {
                c.first = Some(c.first.map_or(s, |f| f.min(s)));
                c.last = Some(c.last.map_or(s, |l| l.max(s)));
            }
            c.interfaces.extend(r.interface_id.clone());
        }
        if reverse {
            c.reverse_records += 1;
            c.reverse_bytes += r.bytes.unwrap_or(0);
        }
    }
    c
}

fn from_truth(i: &Json) -> Counted {
    let n = |k: &str| i[k].as_u64().unwrap_or_else(|| panic!("{k} in {i}"));
    let ports: BTreeSet<u64> = match i.get("dst_ports") {
        Some(list) => list.as_array().unwrap().iter().map(|p| p.as_u64().unwrap()).collect(),
        None => BTreeSet::new(),
    };
    Counted {
        records: n("records"),
        bytes: n("bytes"),
        reject_records: n("reject_records"),
        ports,
        first: i["first_start_unix"].as_u64(),
        last: i["last_start_unix"].as_u64(),
        interfaces: i["interface_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
        reverse_records: n("reverse_records"),
        reverse_bytes: n("reverse_bytes"),
    }
}

/// Writes, reads back and compares; panics with the first difference.
fn round_trip(cfg: &SynthConfig) {
    let dir = tempfile::tempdir().unwrap();
    let report = synth::write_corpus(cfg, dir.path()).unwrap();
    assert_eq!(report.records, cfg.records);

    let mut generated = Vec::new();
    synth::generate(cfg, |key, r| generated.push((key.to_owned(), r.clone()))).unwrap();
    assert_eq!(generated.len() as u64, cfg.records);

    let back = read_back(dir.path());
    assert_eq!(back.rejected, 0, "rejected lines");
    let mut files = 0;
    for r in &back.reports {
        assert_eq!(r.error, None, "{}", r.meta.name);
        assert_eq!(r.rejected, 0, "{}", r.meta.name);
        if r.meta.name.ends_with(".log.gz") {
            files += 1;
            assert_eq!(r.headers, 1, "{}: one header line", r.meta.name);
            assert_eq!(r.form, Form::S3Text, "{}", r.meta.name);
            assert!(r.gzip && r.records > 0, "{}", r.meta.name);
            // The reader reads the account and flow log back from the key.
            assert!(r.meta.s3.flow_log_id.as_deref().is_some_and(|f| f.starts_with("fl-")));
        } else {
            assert!(r.meta.name.ends_with("truth.json"), "unexpected source {}", r.meta.name);
            assert_eq!(r.records, 0);
        }
    }
    assert_eq!(files, report.files);

    assert_eq!(back.records.len(), generated.len());
    let root = dir.path().to_string_lossy().into_owned();
    for (i, ((name, got), (key, want))) in back.records.iter().zip(&generated).enumerate() {
        let rel = name
            .strip_prefix(&root)
            .map(|r| r.trim_start_matches(['/', '\\']).replace('\\', "/"));
        assert_eq!(rel.as_deref(), Some(key.as_str()), "record {i}: source");
        assert_eq!(got, want, "record {i} of {key}");
        assert_eq!(got.fields, cfg.format.known_fields());
    }

    let truth: Json = serde_json::from_slice(&std::fs::read(dir.path().join("truth.json")).unwrap()).unwrap();
    let records: Vec<&FlowRecord> = back.records.iter().map(|(_, r)| r).collect();
    let totals = &truth["totals"];
    let count = |f: &dyn Fn(&FlowRecord) -> bool| records.iter().filter(|r| f(r)).count() as u64;
    assert_eq!(totals["records"], cfg.records);
    assert_eq!(totals["files"], files);
    assert_eq!(totals["nodata"], count(&|r| r.log_status == Some(LogStatus::NoData)));
    assert_eq!(
        totals["skipdata"],
        count(&|r| r.log_status == Some(LogStatus::SkipData))
    );
    assert_eq!(totals["reject"], count(&|r| r.action == Some(Action::Reject)));
    assert_eq!(totals["ipv6"], count(&|r| r.srcaddr.is_some_and(|a| a.is_ipv6())));
    assert_eq!(totals["tcp"], count(&|r| r.protocol == Some(6)));
    assert_eq!(totals["udp"], count(&|r| r.protocol == Some(17)));
    assert_eq!(totals["icmp"], count(&|r| r.protocol == Some(1)));

    let incidents = truth["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 4);
    for inc in incidents {
        let kind = inc["kind"].as_str().unwrap();
        let ip = |k: &str| inc[k].as_str().unwrap().parse::<IpAddr>().unwrap();
        let counted = count_incident(kind, ip("src"), ip("dst"), &back.records);
        let mut told = from_truth(inc);
        if inc.get("dst_ports").is_none() {
            // Long port lists are given as a count.
            assert_eq!(inc["distinct_dst_ports"], counted.ports.len() as u64);
            told.ports = counted.ports.clone();
        }
        assert_eq!(told, counted, "{kind}");
        assert!(counted.records > 0, "{kind} is present");
        assert_eq!(inc["distinct_dst_ports"], counted.ports.len() as u64, "{kind}");
    }
    let scan = &incidents[0];
    assert!(scan["distinct_dst_ports"].as_u64().unwrap() >= 10);
    // The incidents happen on day min(27, days - 1).
    let day = u64::from(cfg.days.min(28) - 1);
    let day_start = cfg.start as u64 + day * 86_400;
    for inc in incidents {
        let first = inc["first_start_unix"].as_u64().unwrap();
        assert!((day_start..day_start + 86_400).contains(&first), "{}", inc["kind"]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn corpus_reads_back_as_generated(
        records in 200u64..3000,
        days in 1u32..=3,
        seed in any::<u64>(),
        format in prop::sample::select(vec!["v2", "v3", "v5", "v8", "v11", "tgw"]),
    ) {
        round_trip(&config(records, days, seed, format));
    }
}

#[test]
fn every_format_reads_back() {
    for (i, format) in synth::FORMAT_NAMES.iter().enumerate() {
        round_trip(&config(400 + 50 * i as u64, 1, 7 + i as u64, format));
    }
}

#[test]
fn a_start_off_midnight_spreads_days_over_two_dates() {
    let mut cfg = config(1500, 2, 11, "v5");
    cfg.start += 12 * 3600 + 5 * 60;
    round_trip(&cfg);
}

/// Every file under `dir`, by relative path.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    input::discover(&[dir.to_path_buf()])
        .into_iter()
        .map(|f| {
            let rel = f.path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (rel, std::fs::read(&f.path).unwrap())
        })
        .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let write = |seed| {
        let dir = tempfile::tempdir().unwrap();
        synth::write_corpus(&config(5000, 2, seed, "v5"), dir.path()).unwrap();
        let files = snapshot(dir.path());
        assert!(files.len() > 100);
        files
    };
    let a = write(42);
    let b = write(42);
    assert!(a == b, "same seed, different corpus");
    let c = write(43);
    let same = a.iter().filter(|(k, v)| c.get(*k) == Some(*v)).count();
    assert_eq!(same, 0, "another seed must give other files");
}

#[test]
fn refuses_a_folder_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.log"), "x").unwrap();
    let err = synth::write_corpus(&config(1000, 1, 1, "v2"), dir.path()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
}
